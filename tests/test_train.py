"""`patrol train` resumes after a hard kill: the run continues at the next epoch and exports best.onnx."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import PRETRAINED, RDD, ROOT, need


def _tiny_dataset(root: Path, n: int = 8) -> Path:
    src = need(RDD)
    labelled = [p for p in sorted((src / "labels" / "train").glob("*.txt")) if p.stat().st_size > 0][:n]
    assert len(labelled) == n
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for lab in labelled:
            img = src / "images" / "train" / (lab.stem + ".jpg")
            shutil.copy(img, root / "images" / split / img.name)
            shutil.copy(lab, root / "labels" / split / lab.name)
    y = root / "data.yaml"
    y.write_text("path: .\ntrain: images/train\nval: images/val\nnames:\n  0: D00\n  1: D10\n  2: D20\n  3: D40\n")
    return y


def _run(code: str, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_train_resumes_after_kill(tmp_path):
    model = need(PRETRAINED / "yolov5nu-coco-backbone-4cls.pt")
    data = _tiny_dataset(tmp_path / "ds")
    out = tmp_path / "runs"
    call = f"train({str(data)!r}, {str(model)!r}, out={str(out)!r}, name='t', epochs=2, imgsz=64, batch=4, workers=0)"
    # 1) killed with SIGKILL right after the first epoch's checkpoint is written (deterministic, unlike polling)
    r1 = _run(f"""
        import os, signal
        import detector.train as t
        orig = t._patch_threads
        def patched(yolo):
            orig(yolo)
            yolo.add_callback("on_model_save", lambda tr: os.kill(os.getpid(), signal.SIGKILL))
        t._patch_threads = patched
        from detector.train import train
        {call}
    """)
    assert r1.returncode == -9, r1.stderr[-3000:]
    run = out / "t"
    last = run / "weights" / "last.pt"
    assert last.is_file()
    rows1 = _rows(run / "results.csv")
    assert len(rows1) == 1
    assert not (run / "weights" / "best.onnx").exists()

    # 2) the same command again resumes at epoch 2 and finishes
    r2 = _run(f"""
        import torch
        from detector.train import train
        epoch = lambda: torch.load({str(last)!r}, map_location="cpu", weights_only=False)["epoch"]
        print("EPOCH_BEFORE", epoch())
        print("BEST", {call})
        print("EPOCH_AFTER", epoch())
    """)
    assert r2.returncode == 0, r2.stderr[-3000:]
    log = r2.stdout + r2.stderr
    assert "Resuming training" in log and "note: resuming the interrupted training" in r2.stderr
    rows2 = _rows(run / "results.csv")
    assert len(rows2) == 2  # a fresh start would have appended two more rows
    assert rows2[0] == rows1[0]
    assert [int(float(r["epoch"])) for r in rows2] == [1, 2]
    best = Path(log.split("BEST", 1)[1].split()[0])
    assert best == run / "weights" / "best.pt" and best.is_file()
    assert (run / "weights" / "best.onnx").is_file()
    # killed after epoch index 0; the finished checkpoint is marked -1
    assert "EPOCH_BEFORE 0\n" in r2.stdout and "EPOCH_AFTER -1\n" in r2.stdout
    # 3) once finished, the same command refuses (exit 2) rather than train afresh over best.pt
    before = best.read_bytes()
    r3 = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", str(data), "--model", str(model), "--out", str(out),
                         "--name", "t", "--epochs", "2", "--imgsz", "64", "--device", "cpu"], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
    assert r3.returncode == 2 and "holds a finished training" in r3.stderr, r3.stderr[-2000:]
    assert best.read_bytes() == before and len(_rows(run / "results.csv")) == 2


def test_oversample_repeats_source_and_class_images(tmp_path):
    """--oversample Japan_=2 --oversample D40=3 on the real train split: every Japan image listed twice, every
    image with a pothole three times, the rest once; the written data yaml trains on that list."""
    import yaml

    from detector.train import resolve_data_yaml

    src = need(RDD)
    data = resolve_data_yaml(src / "data.yaml", tmp_path, oversample={"Japan_": 2, "D40": 3})
    d = yaml.safe_load(data.read_text())
    listing = Path(d["train"])
    assert listing.parent == tmp_path and d["val"] == "images/val"
    lines = listing.read_text().splitlines()
    counts: dict[str, int] = {}
    for line in lines:
        assert Path(line).is_absolute() and Path(line).is_file()
        counts[Path(line).name] = counts.get(Path(line).name, 0) + 1
    images = sorted((src / "images" / "train").glob("*.jpg"))
    assert set(counts) == {p.name for p in images}  # nothing lost, nothing from val
    for img in images:
        lab = src / "labels" / "train" / (img.stem + ".txt")
        has_pothole = lab.is_file() and any(r.split()[:1] == ["3"] for r in lab.read_text().splitlines())
        want = 3 if has_pothole else 2 if img.name.startswith("Japan_") else 1
        assert counts[img.name] == want, img.name
    n_japan = sum(1 for p in images if p.name.startswith("Japan_"))
    assert n_japan > 100 and len(lines) > len(images) + n_japan


def test_oversample_rejects_unknown_key_and_bad_factor(tmp_path):
    from detector.errors import UsageError
    from detector.train import parse_oversample, resolve_data_yaml

    assert parse_oversample(["Japan_=2", "D40=3"]) == {"Japan_": 2, "D40": 3}
    for bad in (["Japan_"], ["Japan_=0"], ["=2"], ["D40=x"]):
        with pytest.raises(UsageError, match="--oversample"):
            parse_oversample(bad)
    with pytest.raises(UsageError, match="Osaka_"):  # the option's mistake, not the data's: exit 2
        resolve_data_yaml(need(RDD) / "data.yaml", tmp_path, oversample={"Osaka_": 2})


def test_train_cli_no_val_no_export_and_offline_amp_check(tmp_path):
    """The GPU recipe in the model card: --no-val validates only after the last epoch, --no-export leaves no
    ONNX, and ultralytics' AMP self-test (which would download yolo26n.pt) is replaced before training."""
    model = need(PRETRAINED / "yolov5nu-coco-backbone-4cls.pt")
    data = _tiny_dataset(tmp_path / "ds")
    out = tmp_path / "runs"
    hyp_file = tmp_path / "city-aug.yaml"
    hyp_file.write_text("scale: 0.7\nsave_period: 1\n")
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", str(data), "--model", str(model), "--epochs", "2",
                        "--imgsz", "64", "--batch", "4", "--workers", "0", "--device", "cpu", "--out", str(out),
                        "--name", "nv", "--no-val", "--no-export", "--hyp", "mixup=0.2", "--hyp", str(hyp_file),
                        "--hyp", "multi_scale=0.25"], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    run = out / "nv"
    assert (run / "weights" / "best.pt").is_file()
    # --hyp reached ultralytics: the run's own record of its arguments, and the per-epoch snapshots save_period asks for
    args = yaml.safe_load((run / "args.yaml").read_text())
    assert (args["mixup"], args["scale"], args["multi_scale"], args["save_period"]) == (0.2, 0.7, 0.25, 1)
    assert (run / "weights" / "epoch0.pt").is_file() and (run / "weights" / "epoch1.pt").is_file()
    assert not list(run.rglob("*.onnx"))
    assert "ONNX:" not in r.stdout
    # what the city config must set to use this model at the size it was trained at (eval/tune/run use detect.imgsz)
    # (the run lies outside the folder patrol ran in: the absolute path, said to be one)
    assert (f"trained at 64 px. For your city config: detect: {{weights: {run / 'weights' / 'best.pt'}, imgsz: 64}} "
            "(an absolute path" in r.stdout), r.stdout
    # the line's parentheses match (a stray ')' after "compare with patrol eval" closed nothing)
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("trained at "))
    assert line.count("(") == line.count(")"), line
    assert line.endswith("compare with patrol eval; then patrol tune at that size"), line
    rows = _rows(run / "results.csv")
    assert len(rows) == 2
    # epoch 1 was not validated (ultralytics writes zero val losses), the last epoch was
    assert float(rows[0]["val/box_loss"]) == 0.0
    assert float(rows[1]["val/box_loss"]) > 0.0

    check = _run("""
        import torch
        from ultralytics.engine import trainer
        import detector.train as t
        t._skip_amp_download()
        m = torch.nn.Linear(2, 2)
        print("AMP_CPU", trainer.check_amp(m))
    """)
    assert check.returncode == 0, check.stderr[-2000:]
    assert "AMP_CPU False" in check.stdout


def test_average_weights_is_the_weighted_mean_and_loads(tmp_path):
    """`patrol average-weights`: the shipped model is the mean of two GPU runs; check the arithmetic on two real
    checkpoints of one architecture (the shipped model and the pretrained start) and that the result detects."""
    import torch

    from detector.train import average_weights

    a = ROOT / "weights" / "rdd-yolo.pt"
    b = need(PRETRAINED / "yolov5nu-coco-backbone-4cls.pt")
    sd = lambda p: {k: v.float() for k, v in  # noqa: E731
                    (lambda c: (c.get("ema") or c["model"]))(torch.load(p, map_location="cpu", weights_only=False)).state_dict().items()}
    sa, sb = sd(a), sd(b)
    key = next(k for k in sa if sa[k].is_floating_point() and not torch.equal(sa[k], sb[k]) and sa[k].numel() > 100)

    mean = average_weights([a, b], tmp_path / "mean.pt")
    sm = sd(mean)
    assert torch.allclose(sm[key], (sa[key] + sb[key]) / 2, atol=2e-3, rtol=1e-3)
    first = average_weights([a, b], tmp_path / "first.pt", weights=[3, 0])
    assert torch.allclose(sd(first)[key], sa[key], atol=2e-3, rtol=1e-3)
    ck = torch.load(mean, map_location="cpu", weights_only=False)
    assert ck["epoch"] == -1 and ck["optimizer"] is None and ck["averaged_from"] == [str(a), str(b)]

    # the averaged file is an ordinary model for the detector, and the CLI writes it plus its ONNX
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "average-weights", str(a), str(a), "--out",
                        str(tmp_path / "self.pt"), "--imgsz", "320"], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "self.onnx").is_file()
    det = _run(f"""
        import cv2
        from detector.config import Config
        from detector.infer import load_detector
        cfg = Config(); cfg.detect.imgsz = 320
        img = cv2.imread({str(next((need(RDD) / 'images' / 'val').glob('*.jpg')))!r})
        for w in ({str(a)!r}, {str(tmp_path / 'self.pt')!r}):
            xyxy, conf, cls = load_detector(w, cfg).predict_all([img], 0.05, 100)[0]
            print("N", len(conf), round(float(conf.max()) if len(conf) else 0.0, 2))
    """)
    assert det.returncode == 0, det.stderr[-3000:]
    n = [line.split()[1:] for line in det.stdout.splitlines() if line.startswith("N ")]
    assert len(n) == 2 and n[0] == n[1]  # a model averaged with itself predicts what it did


def test_average_weights_errors_name_the_file(tmp_path):
    a = ROOT / "weights" / "rdd-yolo.pt"
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    other, reordered = tmp_path / "other.pt", tmp_path / "reordered.pt"
    mk = _run(f"""
        import torch
        from ultralytics.nn.tasks import DetectionModel
        ck = torch.load({str(a)!r}, map_location="cpu", weights_only=False)
        ck["model"].names = {{0: "D10", 1: "D00", 2: "D20", 3: "D40"}}  # trained on a data.yaml in another order
        torch.save(ck, {str(reordered)!r})
        ck["model"] = DetectionModel("yolov5n.yaml", nc=80, verbose=False).half()
        torch.save(ck, {str(other)!r})
    """)
    assert mk.returncode == 0, mk.stderr[-2000:]
    cases = [([str(a)], 2, "at least two"), ([str(a), str(tmp_path / "missing.pt")], 5, "missing.pt"),
             ([str(a), str(junk)], 5, "junk.pt"), ([str(a), str(other)], 5, "architecture differs"),
             ([str(a), str(reordered)], 5, "mix the outputs of different classes"),
             ([str(a), str(a), "--weight", "1"], 2, "one non-negative number per checkpoint")]
    for args, code, text in cases:
        r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "average-weights", *args, "--out", str(tmp_path / "o.pt"),
                            "--no-onnx"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert r.returncode == code, (args, r.returncode, r.stderr[-2000:])
        assert text in r.stderr + r.stdout, (args, r.stderr[-2000:])
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "o.pt").exists()


def test_hyp_is_checked_before_training(tmp_path):
    """`--hyp`: values are read as YAML, from KEY=VALUE or a file; unknown keys, keys patrol train sets itself and
    out-of-range values fail at once (exit 2) naming the key and the file, before anything trains."""
    from detector.errors import InputError, UsageError
    from detector.train import parse_hyp

    f = tmp_path / "aug.yaml"
    f.write_text("mixup: 0.1\ndegrees: 3\n")
    assert parse_hyp(["scale=0.7", str(f), "mixup=0.3", "cos_lr=true"]) == {"scale": 0.7, "mixup": 0.3, "degrees": 3,
                                                                         "cos_lr": True}
    for bad, msg in [("mixupp=0.1", "not an ultralytics training argument"), ("epochs=5", "use its own option"),
                     ("mixup=2", "between 0.0 and 1.0"), ("cos_lr=3", "must be a bool"), ("mixup=", "no value"),
                     (str(tmp_path / "missing.yaml"), "file not found")]:
        with pytest.raises(InputError if bad.endswith(".yaml") else UsageError, match=msg):
            parse_hyp([bad])
    f.write_text("- mixup\n")
    with pytest.raises(InputError, match="mapping") as e:
        parse_hyp([str(f)])
    assert str(f) in str(e.value)

    f.write_text("imgsz: 320\n")
    data = need(RDD) / "data.yaml"
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", str(data), "--out", str(tmp_path / "runs"),
                        "--hyp", str(f)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]  # usage (a file that cannot be read would be 3)
    assert str(f) in r.stderr and "--hyp imgsz" in r.stderr and "own option" in r.stderr
    assert not list((tmp_path / "runs").rglob("*.pt"))


def test_train_mistakes_fail_before_training_with_the_documented_codes(tmp_path):
    """A data.yaml without val, classes that are not ours, a GPU that is not there, an initial model that is not a
    model: one line each, exit 3 / 2 / 5, nothing trained. Japanese class names in our order are understood."""
    from detector.train import resolve_data_yaml

    model = need(PRETRAINED / "yolov5nu-coco-backbone-4cls.pt")
    data = _tiny_dataset(tmp_path / "ds", n=2)
    text = data.read_text()

    def train(yaml_text: str | None = None, *extra: str) -> subprocess.CompletedProcess:
        y = data
        if yaml_text is not None:
            y = data.with_name("variant.yaml")
            y.write_text(yaml_text)
        return subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", str(y), "--model", str(model), "--epochs",
                               "1", "--imgsz", "64", "--workers", "0", "--out", str(tmp_path / "runs"), *extra],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)

    ja = text.replace("0: D00", "0: 縦ひび割れ").replace("1: D10", "1: 横ひび割れ").replace("2: D20", "2: 亀甲状ひび割れ") \
        .replace("3: D40", "3: ポットホール")
    ja_yaml = data.with_name("ja.yaml")
    ja_yaml.write_text(ja)
    resolved = resolve_data_yaml(ja_yaml, tmp_path / "w")
    assert yaml.safe_load(resolved.read_text())["names"] == {0: "D00", 1: "D10", 2: "D20", 3: "D40"}

    cases = [
        (train(text.replace("val: images/val\n", ""), "--device", "cpu"), 3, "no val split"),
        (train(text.replace("0: D00", "0: crack"), "--device", "cpu"), 3, "names"),
        (train(None, "--device", "cpu", "--model", str(ROOT / "README.md")), 5, "README.md"),
    ]
    import torch

    if not torch.cuda.is_available():
        cases.append((train(None, "--device", "0"), 2, "no CUDA GPU"))
    for r, code, text_ in cases:
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == code, (code, r.returncode, r.stderr[-2000:])
        assert "Traceback" not in r.stderr and len(lines) == 1 and text_ in lines[0], r.stderr[-2000:]
    assert not list((tmp_path / "runs").rglob("*.pt"))


def _city_set(root: Path, names: list[str], remap: dict[int, int], flat: bool = False) -> Path:
    """A city's own labelled photos as a city has them: 5 real Japan_ train images (one renamed with Japanese
    characters and a space, one without a label file: background) and 2 val images, classes written in the order
    ``names`` (``remap``: our class index -> the file's), plus a truncated JPEG and a text file named .jpg."""
    src = need(RDD)
    labelled = [p for p in sorted((src / "labels" / "train").glob("Japan_*.txt")) if p.stat().st_size > 0][:7]
    for i, lab in enumerate(labelled):
        split = "train" if i < 5 else "val"
        img_dir = root / split if flat else root / "images" / split
        lab_dir = img_dir if flat else root / "labels" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        lab_dir.mkdir(parents=True, exist_ok=True)
        stem = "富山 市道 1" if i == 0 else lab.stem
        shutil.copy(src / "images" / "train" / (lab.stem + ".jpg"), img_dir / f"{stem}.jpg")
        if i == 4:
            continue  # a photo without damage: no label file
        rows = [ln.split() for ln in lab.read_text().splitlines() if ln.split()]
        (lab_dir / f"{stem}.txt").write_text("".join(f"{remap[int(r[0])]} {' '.join(r[1:])}\n" for r in rows))
    train_dir = root / "train" if flat else root / "images" / "train"
    first = src / "images" / "train" / (labelled[0].stem + ".jpg")
    (train_dir / "truncated.jpg").write_bytes(first.read_bytes()[:20000])
    (train_dir / "notes.jpg").write_text("撮影メモ\n")
    y = root / "data.yaml"
    split_dirs = "train: train\nval: val\n" if flat else "train: images/train\nval: images/val\n"
    y.write_text("# 道路点検\n" + split_dirs + "names:\n" + "".join(f"  {i}: {n}\n" for i, n in enumerate(names)),
                 encoding="utf-8")
    return y


def test_city_dataset_is_checked_and_mapped_before_training(tmp_path, capfd):
    """`patrol train` on a city's data.yaml: classes by English name in another order are renumbered to the model's
    order (not re-learned from the shipped head), a flat folder (labels beside the images) is read like ultralytics
    does, unreadable photos are left out with a warning naming each, a photo without a label file is background,
    and nothing is written beside the city's data (ultralytics' label caches, its in-place 'restored' JPEG)."""
    from detector.train import resolve_data_yaml

    src = need(RDD)
    names = ["transverse crack", "longitudinal crack", "alligator crack", "pothole"]  # D10 first
    for flat in (False, True):
        city = tmp_path / ("flat" if flat else "yolo")
        y = _city_set(city, names, {0: 1, 1: 0, 2: 2, 3: 3}, flat=flat)
        before = {p: p.read_bytes() for p in city.rglob("*") if p.is_file()}
        resolved = resolve_data_yaml(y, tmp_path / f"w-{city.name}")
        err = capfd.readouterr().err
        d = yaml.safe_load(resolved.read_text(encoding="utf-8"))
        assert d["names"] == {0: "D00", 1: "D10", 2: "D20", 3: "D40"}
        base = Path(d["path"])
        train = sorted(p.name for p in (base / d["train"]).iterdir())
        assert "truncated.jpg" not in train and "notes.jpg" not in train and "富山 市道 1.jpg" in train
        assert len(train) == 5 and len(list((base / d["val"]).iterdir())) == 2
        for bad, why in (("truncated.jpg", "truncated: no JPEG end marker"), ("notes.jpg", "not an image")):
            line = next(ln for ln in err.splitlines() if bad in ln)
            assert line.startswith("warning: ") and str(city) in line and why in line
        assert "renumbered" in err and "train: 5 images" in err and "1 without a box" in err
        # each mirrored label is the RDD original again (our class order), the background has none
        labelled = [p for p in sorted((src / "labels" / "train").glob("Japan_*.txt")) if p.stat().st_size > 0][:5]
        for i, lab in enumerate(labelled):
            mine = base / "labels" / "train" / (("富山 市道 1" if i == 0 else lab.stem) + ".txt")
            if i == 4:
                assert not mine.exists()
                continue
            want = [[int(r[0])] + [float(v) for v in r[1:]] for r in map(str.split, lab.read_text().splitlines()) if r]
            got = [[int(r[0])] + [float(v) for v in r[1:]] for r in map(str.split, mine.read_text().splitlines()) if r]
            assert [r[0] for r in got] == [r[0] for r in want]
            assert np.allclose([r[1:] for r in got], [r[1:] for r in want], atol=1e-5)
        assert {p: p.read_bytes() for p in city.rglob("*") if p.is_file()} == before  # the city's data untouched


def test_label_mistakes_are_refused_naming_every_file(tmp_path):
    """A label of a class the data.yaml does not name, a line of 4 numbers, coordinates in pixels: ultralytics drops
    each such image with all its boxes and trains on (exit 0). patrol train refuses before training (exit 3), one
    line naming the first file, its line and reason, and the other files."""
    model = need(PRETRAINED / "yolov5nu-coco-backbone-4cls.pt")
    y = _city_set(tmp_path / "city", ["D00", "D10", "D20", "D40"], {0: 0, 1: 1, 2: 2, 3: 3})
    labs = sorted((tmp_path / "city" / "labels" / "train").glob("Japan_*.txt"))
    with open(labs[0], "a") as fh:
        fh.write("4 0.5 0.5 0.1 0.1\n")  # a class of the city's own (manholes?) the model does not have
    with open(labs[1], "a") as fh:
        fh.write("0 0.5 0.5 0.1\n")
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", str(y), "--model", str(model), "--epochs", "1",
                        "--imgsz", "64", "--workers", "0", "--device", "cpu", "--out", str(tmp_path / "runs")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.returncode == 3 and len(errors) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"{labs[0]}: line " in errors[0] and "class 4 is not one of the data yaml's 4 classes" in errors[0]
    assert str(labs[1]) in errors[0] and "and 1 more label files" in errors[0]
    assert not list((tmp_path / "runs").rglob("*.pt"))

    from detector.errors import InputError
    from detector.evaluate import read_labels

    lab = tmp_path / "l.txt"
    for text, why in (("1 320 240 50 20\n", "normalised to 0..1"), ("0 0.5 0.5 0.1 0.1 0.9\n", "got 6 values"),
                      ("D00 0.5 0.5 0.1 0.1\n", "not numbers"), ("1.5 0.5 0.5 0.1 0.1\n", "class 1.5")):
        lab.write_text(text)
        with pytest.raises(InputError, match=why) as e:
            read_labels(lab, ["D00", "D10", "D20", "D40"], 100, 100)
        assert str(lab) in str(e.value) and "line 1" in str(e.value)
    lab.write_text("3 0.1 0.2 0.5 0.2 0.3 0.6\n")  # a polygon: its bounding box, as ultralytics trains it
    xyxy, cls = read_labels(lab, ["D00", "D10", "D20", "D40"], 100, 100)
    assert list(cls) == ["D40"] and np.allclose(xyxy, [[10, 20, 50, 60]])


def test_resume_after_a_kill_between_an_epochs_row_and_its_checkpoint(tmp_path):
    """Killed after epoch 2's row went into results.csv but before its checkpoint (the checkpoint takes seconds to
    serialise on a loaded CPU): the same command resumes at epoch 2 and results.csv holds epochs 1, 2 once each
    (ultralytics appended epoch 2 a second time). A run folder that lost its last.pt but holds a best.pt is not
    trained over (exit 2)."""
    model = need(PRETRAINED / "yolov5nu-coco-backbone-4cls.pt")
    data = _tiny_dataset(tmp_path / "ds", n=4)
    out = tmp_path / "runs"
    call = f"train({str(data)!r}, {str(model)!r}, out={str(out)!r}, name='t', epochs=2, imgsz=64, batch=4, workers=0, export=False)"
    r1 = _run(f"""
        import os, signal
        from ultralytics.engine.trainer import BaseTrainer
        orig = BaseTrainer.save_model
        def save_model(self):
            if self.epoch == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            return orig(self)
        BaseTrainer.save_model = save_model
        from detector.train import train
        {call}
    """)
    assert r1.returncode == -9, r1.stderr[-3000:]
    run = out / "t"
    assert [r["epoch"] for r in _rows(run / "results.csv")] == ["1", "2"]
    r2 = _run(f"""
        from detector.train import train
        {call}
    """)
    assert r2.returncode == 0 and "note: resuming" in r2.stderr, r2.stderr[-3000:]
    assert [r["epoch"] for r in _rows(run / "results.csv")] == ["1", "2"]

    (run / "weights" / "last.pt").unlink()
    r3 = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", str(data), "--model", str(model), "--out", str(out),
                         "--name", "t", "--epochs", "2", "--imgsz", "64", "--device", "cpu"], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
    assert r3.returncode == 2 and "holds a best.pt but no checkpoint" in r3.stderr, r3.stderr[-2000:]


def test_class_range_error_names_the_classes_as_the_data_yaml_does(tmp_path):
    """A city's data.yaml in Japanese (縦ひび割れ … in its own order) and a label of a class it does not have: the
    error lists the classes as that file names them, in its order (it listed D00, D10, … — names the city's file
    does not use, in the model's order, which is not the index order of its labels)."""
    from detector.errors import InputError
    from detector.evaluate import dataset_names, read_labels
    from detector.train import resolve_data_yaml

    names = ["横ひび割れ", "縦ひび割れ", "亀甲状ひび割れ", "ポットホール"]
    y = _city_set(tmp_path / "city", names, {0: 1, 1: 0, 2: 2, 3: 3})
    lab = sorted((tmp_path / "city" / "labels" / "train").glob("Japan_*.txt"))[0]
    with open(lab, "a") as fh:
        fh.write("4 0.5 0.5 0.1 0.1\n")
    with pytest.raises(InputError) as e:
        resolve_data_yaml(y, tmp_path / "w")
    msg = str(e.value)
    assert str(lab) in msg and "class 4 is not one of the data yaml's 4 classes" in msg
    assert "(0..3: 横ひび割れ, 縦ひび割れ, 亀甲状ひび割れ, ポットホール)" in msg and "D00" not in msg
    # eval and tune read labels with the same names (resolve_split → dataset_names)
    ids = dataset_names(yaml.safe_load(y.read_text(encoding="utf-8")), y)
    assert ids == ["D10", "D00", "D20", "D40"]
    with pytest.raises(InputError, match="0..3: 横ひび割れ, 縦ひび割れ"):
        read_labels(lab, ids, 100, 100)


def _as_windows_wrote_it(y: Path, path_line: str = "path: D:\\道路点検\\city\n") -> None:
    """Rewrite a _city_set data.yaml as a city editing it on Windows has it: its old drive folder in ``path:``,
    backslashes in the split paths, CRLF line ends."""
    text = "".join(ln for ln in y.read_text(encoding="utf-8").splitlines(keepends=True) if not ln.startswith("path:"))
    text = text.replace("images/train", "images\\train").replace("images/val", "images\\val")
    y.write_bytes((path_line + text).replace("\n", "\r\n").encode("utf-8"))


def test_data_yaml_written_on_windows_is_read(tmp_path, capfd):
    """A data.yaml written on the city's Windows PC (``path: D:\\道路点検\\city``, ``train: images\\train``) and
    copied with its folder: train, eval and tune stopped with 'train folder not found: …/city/images\\train'.
    Backslashes are separators; a ``path:`` that is no folder here is looked for beside the yaml, with a note; where
    the splits are not there either, one error says what to write."""
    from detector.errors import InputError
    from detector.evaluate import resolve_split
    from detector.train import resolve_data_yaml

    y = _city_set(tmp_path / "city", ["ポットホール", "縦ひび割れ", "横ひび割れ", "亀甲状ひび割れ"],
                  {0: 1, 1: 2, 2: 3, 3: 0})
    _as_windows_wrote_it(y)
    resolved = resolve_data_yaml(y, tmp_path / "w")
    err = capfd.readouterr().err
    assert "path: D:\\道路点検\\city is not a folder on this computer" in err and str(tmp_path / "city") in err
    assert err.count("is not a folder on this computer") == 1  # once, not per split
    assert "train: 5 images" in err and "val: 2 images" in err
    d = yaml.safe_load(resolved.read_text(encoding="utf-8"))
    assert len(list((Path(d["path"]) / d["val"]).iterdir())) == 2
    images, names = resolve_split(y, "val")  # eval and tune
    assert len(images) == 2 and names == ["D40", "D00", "D10", "D20"]
    # a path: on this computer, splits with backslashes below it
    _as_windows_wrote_it(y, f"path: {tmp_path / 'city'}\n")
    assert "D:" not in y.read_text(encoding="utf-8")
    assert len(resolve_split(y, "train")[0]) == 7  # 5 photos + the truncated and the text file named .jpg
    # moved away from its photos: the error says what to write, naming the yaml
    moved = tmp_path / "elsewhere" / "data.yaml"
    moved.parent.mkdir()
    shutil.copy(y.with_name("data.yaml"), moved)
    _as_windows_wrote_it(moved)
    with pytest.raises(InputError) as e:
        resolve_split(moved, "val")
    msg = str(e.value)
    assert str(moved) in msg and "D:\\道路点検\\city is not a folder on this computer" in msg and "set path:" in msg
    # a split on a Windows drive: named as written, with what to write instead
    y.write_text("train: D:\\city\\images\\train\nval: D:\\city\\images\\val\nnames: [D00, D10, D20, D40]\n",
                 encoding="utf-8")
    with pytest.raises(InputError, match=r"D:\\city\\images\\val is a path on a Windows drive; write it relative "
                                         r"to the data yaml, e.g. val: images/val"):
        resolve_split(y, "val")


def test_shift_jis_data_yaml_and_bom_labels_are_read(tmp_path, capfd):
    """Notepad on a Japanese Windows saves 'ANSI' (Shift_JIS) or UTF-8 with a BOM. A data.yaml in Shift_JIS stopped
    train, eval and tune with "'utf-8' codec can't decode byte 0x93"; a label file fixed by hand in Notepad (BOM
    first) stopped them with "line 1: not numbers: '0 0.49 …'" (the BOM is invisible). Both are read now, the
    Shift_JIS yaml with a note, and the label's boxes are the original's."""
    from detector.evaluate import resolve_split
    from detector.train import resolve_data_yaml

    y = _city_set(tmp_path / "city", ["ポットホール", "縦ひび割れ", "横ひび割れ", "亀甲状ひび割れ"],
                  {0: 1, 1: 2, 2: 3, 3: 0})
    y.write_bytes(y.read_text(encoding="utf-8").replace("\n", "\r\n").encode("cp932"))
    lab = sorted((tmp_path / "city" / "labels" / "train").glob("Japan_*.txt"))[0]
    original = lab.read_text(encoding="utf-8")
    lab.write_bytes(b"\xef\xbb\xbf" + original.replace("\n", "\r\n").encode("utf-8"))
    resolved = resolve_data_yaml(y, tmp_path / "w")
    err = capfd.readouterr().err
    assert f"note: {y}: read as Shift_JIS (cp932)" in err and "train: 5 images" in err
    assert "renumbered" in err  # the Japanese names were read, in the city's order
    assert resolve_split(y, "val")[1] == ["D40", "D00", "D10", "D20"]
    mirrored = Path(yaml.safe_load(resolved.read_text(encoding="utf-8"))["path"]) / "labels" / "train" / lab.name
    back = {0: 1, 1: 2, 2: 3, 3: 0}  # the model's order -> the city's
    got = [[back[int(r[0])]] + [float(v) for v in r[1:]] for r in map(str.split, mirrored.read_text().splitlines())]
    want = [[int(r[0])] + [float(v) for v in r[1:]] for r in map(str.split, original.splitlines()) if r]
    assert got and [r[0] for r in got] == [r[0] for r in want]
    assert np.allclose([r[1:] for r in got], [r[1:] for r in want], atol=1e-5)


def test_train_on_a_folder_says_what_data_yaml_to_write(tmp_path):
    """A city's labelled photos in a plain images/ + labels/ folder (no data.yaml, no splits), given to train: it
    said only 'data yaml not found'. Now one error (exit 3) says to split them into images/train and images/val
    and what data.yaml to write there; a folder holding a data.yaml names it."""
    src = need(RDD)
    plain = tmp_path / "道路 2026"
    (plain / "images").mkdir(parents=True)
    (plain / "labels").mkdir()
    for lab in sorted((src / "labels" / "val").glob("Japan_*.txt"))[:3]:
        shutil.copy(src / "images" / "val" / (lab.stem + ".jpg"), plain / "images")
        shutil.copy(lab, plain / "labels")
    cmd = [sys.executable, str(ROOT / "cli.py"), "train", str(plain), "--epochs", "1", "--imgsz", "64",
           "--out", str(tmp_path / "runs")]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr[-2000:]
    err = " ".join(r.stderr.split())
    assert f"{plain}: a folder, not a data yaml" in err and "images/train" in err and "images/val" in err
    assert str(plain / "data.yaml") in err and "'val: images/val'" in err and "names: [D00, D10, D20, D40]" in err
    y = _city_set(tmp_path / "city", ["D00", "D10", "D20", "D40"], {0: 0, 1: 1, 2: 2, 3: 3})
    r = subprocess.run(cmd[:3] + [str(y.parent)] + cmd[4:], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and "a folder: pass its data yaml (data.yaml)" in " ".join(r.stderr.split()), r.stderr
    assert not list((tmp_path / "runs").rglob("*.pt"))


def test_training_images_are_hard_linked_or_copied_where_symlinks_fail(tmp_path, capfd, monkeypatch):
    """Windows without Developer Mode, some network shares and FAT drives cannot make symbolic links (os.symlink
    raised and `patrol train` stopped with an internal error): the images are hard-linked, else copied (across
    drives), with one note for the whole dataset saying which."""
    import os

    import detector.train as t

    y = _city_set(tmp_path / "city", ["D00", "D10", "D20", "D40"], {0: 0, 1: 1, 2: 2, 3: 3})

    def no_symlink(src, dst, *a, **k):
        raise OSError(1314, "A required privilege is not held by the client")

    monkeypatch.setattr(t.os, "symlink", no_symlink)
    d = yaml.safe_load(t.resolve_data_yaml(y, tmp_path / "w1").read_text(encoding="utf-8"))
    imgs = [p for s in ("train", "val") for p in (Path(d["path"]) / d[s]).iterdir()]
    assert len(imgs) == 7 and not any(p.is_symlink() for p in imgs)
    for p in imgs:
        split = "train" if p.parent.name == "train" else "val"
        assert os.path.samefile(p, tmp_path / "city" / "images" / split / p.name)  # hard links: no copies
    notes = [ln for ln in capfd.readouterr().err.splitlines() if "symbolic links" in ln]
    assert notes == [f"note: cannot make symbolic links in {tmp_path / 'w1'} (A required privilege is not held by "
                     "the client); the training images were 7 hard-linked there instead"]

    def no_link(src, dst, *a, **k):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(t.os, "link", no_link)
    d = yaml.safe_load(t.resolve_data_yaml(y, tmp_path / "w2").read_text(encoding="utf-8"))
    imgs = [p for s in ("train", "val") for p in (Path(d["path"]) / d[s]).iterdir()]
    assert len(imgs) == 7
    for p in imgs:
        orig = tmp_path / "city" / "images" / ("train" if p.parent.name == "train" else "val") / p.name
        assert not p.is_symlink() and not os.path.samefile(p, orig) and p.read_bytes() == orig.read_bytes()
    notes = [ln for ln in capfd.readouterr().err.splitlines() if "symbolic links" in ln]
    assert len(notes) == 1 and "the training images were 7 copied (" in notes[0] and " MB) there instead" in notes[0]


def test_second_training_into_the_same_run_folder_is_refused(tmp_path):
    """Two `patrol train` of the same --out and --name at once mixed their files (the second rebuilt the first's
    dataset under it, both wrote weights/ and results.csv). The second is refused at once (exit 2), naming the
    folder and the first's process, and touches nothing; another --name is not held up; once the first is gone,
    even killed with kill -9, the name is free again. No training: the first is held just after it built its
    dataset."""
    import signal
    import time

    from detector.config import DEFAULT_WEIGHTS_PT

    data = _tiny_dataset(tmp_path / "ds", n=2)
    out, ready, go = tmp_path / "runs", tmp_path / "ready", tmp_path / "go"
    first = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, signal, time
        from pathlib import Path
        import detector.train as t
        real = t.resolve_data_yaml
        def held(*a, **k):
            res = real(*a, **k)
            Path({str(ready)!r}).touch()
            while not Path({str(go)!r}).exists():
                time.sleep(0.1)
            os.kill(os.getpid(), signal.SIGKILL)  # a training killed mid-run: its lock must not outlive it
        t.resolve_data_yaml = held
        t.train({str(data)!r}, {str(DEFAULT_WEIGHTS_PT)!r}, out={str(out)!r}, name="city", epochs=1, imgsz=64,
                device="cpu", workers=0)
    """)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while not ready.exists():
            assert first.poll() is None, first.communicate()[1][-3000:]
            assert time.monotonic() - t0 < 180, "the first training never got to its dataset"
            time.sleep(0.2)
        work = out / ".city-data"
        before = {p: p.stat().st_mtime_ns for p in work.rglob("*")}

        def train(name: str, *extra: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", str(data), "--out", str(out),
                                   "--name", name, "--epochs", "1", "--imgsz", "64", "--device", "cpu", *extra],
                                  cwd=ROOT, capture_output=True, text=True, timeout=120)

        r = train("city")
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
        assert lines[0] == (f"error: {out / 'city'}: another patrol train (process {first.pid}) is training into this "
                            "folder; wait for it to finish (run the same command again afterwards to resume it if it "
                            "was stopped), or pass another --name")
        assert {p: p.stat().st_mtime_ns for p in work.rglob("*")} == before and not (out / "city").exists()
        # another name is not held up: it gets as far as its (here deliberately wrong) initial model, exit 5
        r = train("other", "--model", str(ROOT / "README.md"))
        assert r.returncode == 5 and "README.md" in r.stderr, r.stderr[-2000:]
    finally:
        go.touch()
        first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL
    r = train("city", "--model", str(ROOT / "README.md"))  # the killed one's lock went with it
    assert r.returncode == 5 and "README.md" in r.stderr, r.stderr[-2000:]


def test_lock_on_a_file_system_without_locks_is_a_note_not_a_crash(tmp_path, monkeypatch, capsys):
    """flock fails with ENOLCK/EOPNOTSUPP on some network shares (an SMB or NFS mount without a lock service), the
    very places the hard-link/copy fallback is for: train (which took no lock before) stopped there with an internal
    error. Now it goes on unlocked with one note naming the folder; a lock held elsewhere still waits or refuses."""
    import errno
    import fcntl

    from detector.atomic import FileLock

    real = fcntl.flock

    def no_locks(fh, op):
        if op & fcntl.LOCK_UN:
            raise AssertionError("unlocking a lock never taken")
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    lock = tmp_path / "runs" / ".city-data" / "train.lock"
    with FileLock(lock, busy=lambda pid: pytest.fail("not busy")):
        pass
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(lock.parent) in err and "No locks available" in err, err
    monkeypatch.setattr(fcntl, "flock", real)
    with FileLock(lock):  # a file system that locks: no note
        pass
    assert capsys.readouterr().err == ""


def test_windows_cased_labels_are_trained_on_and_a_refused_train_leaves_nothing(tmp_path, capfd):
    """A data set made on Windows (`Images/`, `Labels/`, `.TXT`): train found no label file (refused, or with only
    some differing in case trained those photos as background) and left OUT/.NAME-data behind with its lock and
    the links it had made. Its labels are mirrored now, box for box; a data.yaml that is not there, and a split with
    no label file at all, are refused before anything is written (no OUT at all)."""
    from detector.config import DEFAULT_WEIGHTS_PT
    from detector.train import resolve_data_yaml

    src = need(RDD)
    labs = [p for p in sorted((src / "labels" / "train").glob("Japan_*.txt")) if p.stat().st_size > 0][:6]
    city = tmp_path / "city"
    for i, lab in enumerate(labs):
        split = "train" if i < 4 else "val"
        (city / "Images" / split).mkdir(parents=True, exist_ok=True)
        (city / "Labels" / split).mkdir(parents=True, exist_ok=True)
        shutil.copy(src / "images" / "train" / (lab.stem + ".jpg"), city / "Images" / split / (lab.stem + ".JPG"))
        shutil.copy(lab, city / "Labels" / split / (lab.stem + (".TXT" if i % 2 else ".txt")))
    y = city / "data.yaml"
    y.write_text("train: Images/train\nval: Images/val\nnames: [D00, D10, D20, D40]\n")
    d = yaml.safe_load(resolve_data_yaml(y, tmp_path / "w").read_text(encoding="utf-8"))
    for i, lab in enumerate(labs):
        mine = Path(d["path"]) / "labels" / ("train" if i < 4 else "val") / (lab.stem + ".txt")
        assert mine.is_file(), mine
        assert len(mine.read_text().splitlines()) == len([ln for ln in lab.read_text().splitlines() if ln.split()])
    assert "train: 4 images" in capfd.readouterr().err

    def train(data: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", str(data), "--model",
                               str(DEFAULT_WEIGHTS_PT), "--epochs", "1", "--imgsz", "64", "--device", "cpu",
                               "--out", str(tmp_path / "runs"), "--name", "city"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)

    r = train(tmp_path / "nope" / "data.yaml")
    assert r.returncode == 3 and "data yaml not found" in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "runs").exists()
    shutil.rmtree(city / "Labels" / "val")
    r = train(y)
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.returncode == 3 and len(lines) == 1, r.stderr[-2000:]
    assert lines[0].startswith(f"error: {y}: val: 0 of 2 photos have a label file: expected labels in "
                               f"{city / 'Labels' / 'val'}"), lines[0]
    assert not (tmp_path / "runs").exists()


def test_train_hint_is_a_config_line_that_loads_the_trained_weights(tmp_path):
    """patrol train's closing hint is the line to put in a city config: weights under the current folder are given
    relative (as the README's 'Retraining for a city' shows) and the hint says what to: a config in that folder,
    with the path for one a folder down (configs/city.yaml); weights elsewhere are absolute. Each line, pasted into
    a config there, loads the trained weights (a relative detect.weights is read from the config file's folder)."""
    import re

    from detector.config import load_config
    from detector.train import config_weights_line

    best = tmp_path / "runs" / "city 2026, 11月" / "weights" / "best.onnx"  # a space, a comma, Japanese
    best.parent.mkdir(parents=True)
    best.write_bytes(b"onnx")

    def config(hint: str, where: Path, pattern: str) -> Path:
        where.mkdir(parents=True, exist_ok=True)
        (where / "city.yaml").write_text(re.search(pattern, hint).group(1) + "\n", encoding="utf-8")
        return Path(load_config(where / "city.yaml").detect.weights)

    hint = config_weights_line(best, 320, cwd=tmp_path)
    assert hint.startswith("detect: {weights: 'runs/city 2026, 11月/weights/best.onnx', imgsz: 320} ("), hint
    assert f"for a config in {tmp_path}" in hint and "configs/city.yaml" in hint
    assert config(hint, tmp_path, r"^(detect: \{.*?\}) \(") == best
    assert load_config(tmp_path / "city.yaml").detect.imgsz == 320
    # the path it gives for a config one folder down
    down = re.search(r"configs/city.yaml: (weights: .*)\)$", hint).group(1)
    assert config("detect: {" + down + "}", tmp_path / "configs", r"^(.*)$") == best

    # run from elsewhere (the folder holding the run's folder's parent is not under it): absolute, said so
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    hint = config_weights_line(best, 320, cwd=elsewhere)
    assert hint.startswith(f"detect: {{weights: '{best}', imgsz: 320}} (an absolute path"), hint
    assert config(hint, tmp_path / "other", r"^(detect: \{.*?\}) \(") == best
    # a relative path given to it (train's --out runs) is taken from the current folder
    assert config_weights_line(Path("runs/x/weights/best.pt"), 640, cwd=tmp_path).startswith(
        "detect: {weights: runs/x/weights/best.pt, imgsz: 640} (a relative weights path")
