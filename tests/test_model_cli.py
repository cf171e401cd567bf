"""`patrol eval` and `patrol tune` as a user calls them, on a small real labelled set built in tmp_path
(images copied from ../shared/data/rdd at test time; nothing from shared is committed)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from detector.config import DEFAULT_WEIGHTS_ONNX, DEFAULT_WEIGHTS_PT, load_config

ROOT = Path(__file__).resolve().parent.parent


def _small_set(rdd: Path, dst: Path, n_per_source: int = 3) -> Path:
    for sub in ("images", "labels"):
        (dst / sub / "val").mkdir(parents=True)
    for prefix in ("Japan_", "Czech_", "China_MotorBike_"):
        imgs = sorted((rdd / "images" / "val").glob(f"{prefix}*.jpg"))
        picked = [p for p in imgs if (rdd / "labels" / "val" / (p.stem + ".txt")).stat().st_size > 0][:n_per_source]
        for p in picked:
            shutil.copy(p, dst / "images" / "val" / p.name)
            shutil.copy(rdd / "labels" / "val" / (p.stem + ".txt"), dst / "labels" / "val" / (p.stem + ".txt"))
    (dst / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images/val", "val": "images/val",
                                                  "names": {0: "D00", 1: "D10", 2: "D20", 3: "D40"}}))
    return dst


def _patrol(*args, cwd=None):
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=600)


@pytest.fixture
def small(rdd, tmp_path):
    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    return _small_set(rdd, tmp_path / "set")


def test_eval_images_dir_prints_and_writes_json(small, tmp_path):
    # no --out: named after the folder and its data set, marked as a folder (not a data.yaml's split)
    out = tmp_path / "eval-set-val-folder.json"
    r = _patrol("eval", small / "images" / "val", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [out.name] and f"written: {out.name}" in r.stdout
    res = json.loads(out.read_text())
    assert res["n_images"] == 9
    for k in ("f1", "precision", "recall", "map50", "per_class", "per_source"):
        assert k in res
    assert set(res["per_source"]) >= {"Japan", "Czech", "China_MotorBike"}
    assert set(res["per_class"]) == {"D00", "D10", "D20", "D40"}
    assert "F1" in r.stdout or "f1" in r.stdout.lower()
    assert res["split"] == "folder val" and res["imgsz"] == 448  # a folder has no split; the size is recorded
    # the shipped model (trained at 640) runs at 448 on purpose, with thresholds tuned at 448: no size warning
    assert res["thresholds_tuned_at"] == 448 and "warning" not in r.stderr, r.stderr
    # the dataset root (train and val below it) is not one split: refused rather than scored as a mix
    shutil.copytree(small / "images" / "val", small / "images" / "train")
    r = _patrol("eval", small, "--out", tmp_path / "root.json")
    assert r.returncode == 3 and "pass its data.yaml" in r.stderr and not (tmp_path / "root.json").exists()


def test_tune_changes_only_the_thresholds(small, tmp_path):
    cfg_path = tmp_path / "city.yaml"
    shutil.copy(ROOT / "configs" / "toyama-city.yaml", cfg_path)
    before = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    r = _patrol("tune", small / "data.yaml", "--config", cfg_path)
    assert r.returncode == 0, r.stderr
    after = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    classes = after.pop("classes")
    assert after == before  # nothing but the thresholds changed
    assert set(classes) == {"D00", "D10", "D20", "D40"}
    assert all(set(v) == {"threshold"} for v in classes.values())
    cfg = load_config(cfg_path)
    assert all(0.0 <= s.threshold <= 1.0 for s in cfg.classes.values())
    assert cfg.classes["D00"].name_ja == "縦ひび割れ"  # the defaults still fill in what the file does not say


def test_tune_warns_of_classes_with_few_labelled_boxes(rdd, tmp_path):
    """A city tunes on its own small val split (here 12 real Japan_ photos): a class with a handful of boxes got a
    threshold chosen on them without a word (a pothole threshold of 0.09 from 6 boxes, on the city's 32 photos),
    and every run then lists its false potholes. tune still writes it, prints the boxes per class, and warns on
    stderr for each class under MIN_BOXES, naming the change and what to do. A threshold the few boxes left where it
    was (here D20's 0.36) is not called a change that "rests on chance" (it said "0.36 → 0.36 rests on chance ...
    set it back by hand"): the warning says it was kept, which so few boxes confirm little."""
    from detector.tune import MIN_BOXES

    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    city = tmp_path / "city"
    for sub in ("images", "labels"):
        (city / sub / "val").mkdir(parents=True)
    n_boxes = dict.fromkeys(("D00", "D10", "D20", "D40"), 0)
    for lab in sorted((rdd / "labels" / "val").glob("Japan_*.txt"))[:12]:
        shutil.copy(rdd / "images" / "val" / (lab.stem + ".jpg"), city / "images" / "val")
        shutil.copy(lab, city / "labels" / "val")
        for row in lab.read_text().split("\n"):
            if row.split():
                n_boxes[("D00", "D10", "D20", "D40")[int(row.split()[0])]] += 1
    cfg_path = tmp_path / "city.yaml"
    shutil.copy(ROOT / "configs" / "toyama-city.yaml", cfg_path)
    r = _patrol("tune", city / "images" / "val", "--config", cfg_path)
    assert r.returncode == 0, r.stderr
    few = {c: n for c, n in n_boxes.items() if 0 < n < MIN_BOXES}
    assert few, n_boxes  # the set is small on purpose
    warned = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: D")]
    assert [ln.split(":")[1].strip() for ln in warned] == list(few), r.stderr
    tuned = load_config(cfg_path).thresholds()
    default = load_config(None).thresholds()
    moved = {c for c in few if tuned[c] != default[c]}
    assert moved and moved != set(few), (tuned, default)  # both cases: one threshold moved, one kept
    for ln, (c, n) in zip(warned, few.items()):
        boxes = f"warning: {c}: only {n} labelled box{'es' if n > 1 else ''} in the val split"
        more = f"label more photos with {c} (at least {MIN_BOXES} boxes)"
        if c in moved:
            assert ln == (f"{boxes}, so its threshold {default[c]:.2f} → {tuned[c]:.2f} rests on chance; {more}, or "
                          f"set classes.{c}.threshold in {cfg_path} back to {default[c]:.2f} by hand"), ln
        else:  # nothing to set back
            assert ln == (f"{boxes}: its threshold {default[c]:.2f} was kept (none on the grid scores better on "
                          f"them), which confirms little; {more} and tune again"), ln
    rows = {ln.split()[0]: ln.split() for ln in r.stdout.splitlines() if ln[:3] in n_boxes}
    assert {c: int(rows[c][3]) for c in n_boxes} == n_boxes  # the boxes column

    # a threshold set by hand between the grid's steps, kept: said as it is, not rounded to the grid's 0.36
    kept = next(c for c in few if c not in moved)
    cfg_path.write_text(f"classes:\n  {kept}:\n    threshold: {default[kept] - 0.005:.3f}  # by hand\n",
                        encoding="utf-8")
    r = _patrol("tune", city / "images" / "val", "--config", cfg_path)
    assert r.returncode == 0, r.stderr
    assert load_config(cfg_path).thresholds()[kept] == round(default[kept] - 0.005, 3), cfg_path.read_text()
    assert f"{kept}: only {few[kept]} labelled boxes in the val split: its threshold {default[kept] - 0.005:.3f} was " \
           "kept" in r.stderr, r.stderr


def test_train_bad_oversample_is_one_line_error(rdd, tmp_path):
    r = _patrol("train", rdd / "data.yaml", "--oversample", "Japan")
    assert r.returncode == 2  # a usage mistake
    assert "--oversample wants KEY=N" in r.stderr + r.stdout and "Traceback" not in r.stderr
    # a prefix that matches no image is the option's mistake (a typo), not the data's: usage, exit 2 (README)
    r = _patrol("train", rdd / "data.yaml", "--oversample", "Osaka_=2", "--epochs", "1", "--out", tmp_path / "runs")
    assert r.returncode == 2 and "Osaka_" in r.stderr + r.stdout and "Traceback" not in r.stderr


def test_eval_and_tune_on_one_source_prefix(small, tmp_path):
    out = tmp_path / "eval-japan.json"
    r = _patrol("eval", small / "data.yaml", "--prefix", "Japan_", "--out", out)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["n_images"] == 3 and set(res["per_source"]) == {"Japan"} and res["prefixes"] == ["Japan_"]
    cfg_path = tmp_path / "city.yaml"
    shutil.copy(ROOT / "configs" / "toyama-city.yaml", cfg_path)
    r = _patrol("tune", small / "data.yaml", "--config", cfg_path, "--prefix", "Japan_", "--prefix", "Czech_")
    assert r.returncode == 0, r.stderr
    # what was tuned, on one line that a log keeps whole (it was wrapped to the table's width, paths cut apart)
    assert r.stdout.splitlines()[0] == (f"patrol tune: {DEFAULT_WEIGHTS_ONNX} at {load_config(None).detect.imgsz} px "
                                        f"on {small / 'data.yaml'} (val, Japan_ Czech_ only)")
    assert set(yaml.safe_load(cfg_path.read_text(encoding="utf-8"))["classes"]) == {"D00", "D10", "D20", "D40"}
    # a --prefix that matches no image is a usage mistake (exit 2, README's Exit codes), named with the data it missed
    r = _patrol("eval", small / "data.yaml", "--prefix", "Osaka_", "--out", tmp_path / "x.json")
    assert r.returncode == 2 and "Traceback" not in r.stderr and not (tmp_path / "x.json").exists()
    assert f"{small / 'data.yaml'}: --prefix: no image name starts with 'Osaka_'" in r.stderr, r.stderr
    before = cfg_path.read_bytes()
    r = _patrol("tune", small / "data.yaml", "--config", cfg_path, "--prefix", "Osaka_")
    assert r.returncode == 2 and "--prefix: no image name starts with 'Osaka_'" in r.stderr, r.stderr
    assert cfg_path.read_bytes() == before


def test_eval_and_tune_use_the_configs_weights_and_keep_unlabelled_classes(small, tmp_path):
    """A city config naming its own model (detect.weights, relative to the config file) is what eval and tune
    score, from any working folder; a class without one labelled box in the split keeps its threshold; a config
    whose classes are in {…} style is rewritten with a note; a missing model is exit 5 naming where it came from."""
    city = tmp_path / "city"
    (city / "models").mkdir(parents=True)
    shutil.copy(DEFAULT_WEIGHTS_ONNX, city / "models" / "city.onnx")
    for lab in (small / "labels" / "val").glob("*.txt"):  # this city has no labelled pothole
        lines = [ln for ln in lab.read_text().splitlines() if ln.split() and ln.split()[0] != "3"]
        lab.write_text("\n".join(lines) + ("\n" if lines else ""))
    cfg_path = city / "city.yaml"
    cfg_path.write_text("# our city\nmunicipality: city  # 市\ndetect:\n  weights: models/city.onnx\n"
                        "classes:\n  D40:\n    threshold: 0.42  # keep an eye on potholes\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = _patrol("eval", small / "data.yaml", "--config", cfg_path, cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    res = json.loads((elsewhere / "eval-set-val.json").read_text())  # the data set's folder and the split
    assert Path(res["weights"]) == city / "models" / "city.onnx"
    # the same images as a folder: its own file, the data.yaml's is not overwritten (both were ./eval-val.json)
    r = _patrol("eval", small / "images" / "val", "--config", cfg_path, cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in elsewhere.iterdir()) == ["eval-set-val-folder.json", "eval-set-val.json"]
    assert json.loads((elsewhere / "eval-set-val.json").read_text()) == res
    assert json.loads((elsewhere / "eval-set-val-folder.json").read_text())["split"] == "folder val"
    r = _patrol("tune", small / "data.yaml", "--config", cfg_path, cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    flat = "".join(r.stdout.split())  # rich wraps long lines, even inside a path
    assert str(city / "models" / "city.onnx") in flat and "kept:nolabelledboxofthisclass" in flat
    text = cfg_path.read_text(encoding="utf-8")
    assert "threshold: 0.42  # keep an eye on potholes" in text and "# our city" in text  # D40 untouched
    assert load_config(cfg_path).classes["D40"].threshold == 0.42

    flow = city / "flow.yaml"
    flow.write_text("# flow style\nclasses: {D40: {threshold: 0.5}}\n", encoding="utf-8")
    r = _patrol("tune", small / "data.yaml", "--config", flow)
    assert r.returncode == 0, r.stderr
    assert "commentslost" in "".join(r.stdout.split())
    assert set(yaml.safe_load(flow.read_text(encoding="utf-8"))["classes"]) == {"D00", "D10", "D20", "D40"}

    (city / "models" / "city.onnx").unlink()
    r = _patrol("eval", small / "data.yaml", "--config", cfg_path, "--out", tmp_path / "x.json")
    assert r.returncode == 5 and "weights file not found (detect.weights)" in r.stderr and "city.onnx" in r.stderr
    r = _patrol("eval", small / "data.yaml", "--weights", tmp_path / "nope.onnx", "--out", tmp_path / "x.json")
    assert r.returncode == 5 and "(--weights)" in r.stderr and "Traceback" not in r.stderr


def test_eval_and_tune_on_a_flat_folder_with_damaged_photos(small, tmp_path):
    """A city's val photos with their label files beside them (no images/ and labels/ folders: ultralytics trains on
    that layout), one truncated JPEG and one text file named .jpg: eval and tune score the good photos, warn naming
    each damaged one, and eval's JSON lists them (they stopped eval with exit 3, or were scored as grey blocks)."""
    flat = tmp_path / "flat" / "val"
    flat.mkdir(parents=True)
    for p in (small / "images" / "val").glob("Japan_*.jpg"):
        shutil.copy(p, flat / p.name)
        shutil.copy(small / "labels" / "val" / (p.stem + ".txt"), flat / (p.stem + ".txt"))
    good = sorted(flat.glob("*.jpg"))
    (flat / "半分.jpg").write_bytes(good[0].read_bytes()[:15000])
    (flat / "メモ.jpg").write_text("not a photo\n")
    y = tmp_path / "flat" / "data.yaml"
    y.write_text("train: val\nval: val\nnames: [縦ひび割れ, 横ひび割れ, 亀甲状ひび割れ, ポットホール]\n", encoding="utf-8")
    out = tmp_path / "e.json"
    r = _patrol("eval", y, "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text(encoding="utf-8"))
    assert res["n_images"] == len(good) == 3 and res["tp"] + res["fn"] > 0  # the labels beside the images were read
    assert sorted(Path(p).name for p in res["skipped"]) == ["メモ.jpg", "半分.jpg"]
    warned = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert any("半分.jpg" in ln and "decode_failed" in ln for ln in warned), r.stderr
    assert any("メモ.jpg" in ln and "not a JPEG/PNG/HEIC" in ln for ln in warned), r.stderr
    cfg_path = tmp_path / "city.yaml"
    r = _patrol("tune", y, "--config", cfg_path)
    assert r.returncode == 0 and "半分.jpg" in r.stderr, r.stderr[-2000:]
    assert set(yaml.safe_load(cfg_path.read_text(encoding="utf-8"))) == {"classes"}


def test_thresholds_remember_the_size_they_were_tuned_at(small, tmp_path):
    """Thresholds hold at the detect.imgsz they were tuned at. `tune` writes that size (and the model, the data) as a
    comment above `classes:`; eval and run warn when the config now runs the model at another size — a city config
    that sets detect.imgsz but keeps the default thresholds (tuned at 448), or one re-sized after its own tune —
    and stay quiet at the size tuned for, however far from the training size that is (there was no hint at all)."""
    cfg_path = tmp_path / "city.yaml"
    cfg_path.write_text("# our city\ndetect:\n  imgsz: 320\n", encoding="utf-8")
    default_cfg = ROOT / "configs" / "default.yaml"
    r = _patrol("eval", small / "data.yaml", "--config", cfg_path, "--out", tmp_path / "e.json")
    assert r.returncode == 0, r.stderr
    warned = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert warned == [f"warning: {default_cfg}: its thresholds were chosen by patrol tune at 448 px, but the model now "
                      f"runs at 320 px (detect.imgsz of {cfg_path}): tune them at this size (patrol tune DATA_YAML "
                      f"--config {cfg_path}), or set detect.imgsz: 448"], r.stderr
    assert json.loads((tmp_path / "e.json").read_text())["thresholds_tuned_at"] == 448

    for _ in range(2):  # tuned twice: one comment, the latest
        r = _patrol("tune", small / "data.yaml", "--config", cfg_path)
        assert r.returncode == 0, r.stderr
    lines = cfg_path.read_text(encoding="utf-8").splitlines()
    stamps = [i for i, ln in enumerate(lines) if ln.startswith("# patrol tune")]
    assert len(stamps) == 1 and lines[stamps[0] + 1] == "classes:", lines
    # the model by its path and content; the set has no labelled D10 or D40 box, so only D00 and D20 were tuned
    # (the stamp said "thresholds chosen" of all four)
    # (and its twin beside it, the shipped .pt)
    sha = hashlib.sha256(DEFAULT_WEIGHTS_ONNX.read_bytes()).hexdigest()[:12]
    # (the shipped model is outside the config's folder and checkout: named by its absolute path)
    twin = (f" (twin {DEFAULT_WEIGHTS_PT.resolve()} "
            f"[sha256:{hashlib.sha256(DEFAULT_WEIGHTS_PT.read_bytes()).hexdigest()[:12]}])"
            if DEFAULT_WEIGHTS_PT.is_file() else "")
    assert lines[stamps[0]].endswith(f": thresholds of D00 D20 chosen at 320 px (detect.imgsz) for "
                                     f"{DEFAULT_WEIGHTS_ONNX.resolve()} [sha256:{sha}]{twin} "
                                     f"on {os.path.relpath(small / 'data.yaml', cfg_path.parent)} (val); left as "
                                     "they were (no labelled box in the split): D10 D40"), lines[stamps[0]]
    # (the data by the model's rule: below the config's folder, relative to it; it was as typed, relative to the
    # folder tune ran in)
    assert not os.path.isabs(os.path.relpath(small / 'data.yaml', cfg_path.parent))
    assert lines[0] == "# our city"
    r = _patrol("eval", small / "data.yaml", "--config", cfg_path, "--out", tmp_path / "e.json")
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr  # tuned at the size it runs at

    cfg_path.write_text(cfg_path.read_text(encoding="utf-8").replace("imgsz: 320", "imgsz: 448"), encoding="utf-8")
    r = _patrol("run", tmp_path / "no-drive", "--roads", tmp_path / "no-roads.geojson", "--out", tmp_path / "out",
                "--config", cfg_path)
    assert r.returncode == 3 and (f"warning: {cfg_path}: its thresholds were chosen by patrol tune at 320 px, but the "
                                  "model now runs at 448 px") in r.stderr, r.stderr
    # a scheduled job reads summary.json, not the console: the warning is among its warnings too
    r = _patrol("detect", small / "images" / "val", "--out", tmp_path / "det", "--config", cfg_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "det" / "summary.json").read_text(encoding="utf-8"))
    assert [w for w in doc["warnings"] if "thresholds were chosen by patrol tune at 320 px" in w], doc["warnings"]


def test_tune_names_the_model_by_a_path_a_reader_can_follow(small, tmp_path):
    """The comment tune writes above `classes:` named the model relative to the config's folder even where that
    climbed out into an unrelated place (`../../../work/wt-walk/weights/rdd-yolo.onnx`): whoever reads the config
    later cannot tell which model that was, and a copy of the config elsewhere names another. Now the path is
    relative only when the model lies below the config's folder or in the config's checkout (a folder holding
    .git, as the shipped configs/default.yaml names ../weights/rdd-yolo.onnx: they move together), else absolute;
    the config's other lines and comments stay byte for byte, and the stamp still reads back (eval is quiet)."""
    sha = hashlib.sha256(DEFAULT_WEIGHTS_ONNX.read_bytes()).hexdigest()[:12]
    text = ("# our city  # 市\nmunicipality: city\nclasses:\n  D00:\n    threshold: 0.4  # cracks\n"
            + "".join(f"  {c}:\n    threshold: 0.3\n" for c in ("D10", "D20", "D40")) + "# the end\n")

    def tuned(cfg_path, weights):
        cfg_path.parent.mkdir(parents=True, exist_ok=True)
        cfg_path.write_text(text, encoding="utf-8")
        r = _patrol("tune", small / "data.yaml", "--config", cfg_path, "--weights", weights)
        assert r.returncode == 0, r.stderr
        new = cfg_path.read_text(encoding="utf-8").splitlines()
        stamp = [ln for ln in new if ln.startswith("# patrol tune")]
        assert len(stamp) == 1 and new[new.index(stamp[0]) + 1] == "classes:", new
        keep = [ln for ln in new if ln != stamp[0] and "threshold:" not in ln]
        assert keep == [ln for ln in text.splitlines() if "threshold:" not in ln]  # nothing else changed
        assert new[new.index("  D00:") + 1].endswith("  # cracks"), new  # its comment kept
        return stamp[0]

    def named(stamp):
        return re.search(r" for (.*?) \[sha256:", stamp)[1]

    # a config in a folder of its own, the model elsewhere: its absolute path (it was ../../…/weights/rdd-yolo.onnx)
    far = tmp_path / "cities" / "toyama" / "city.yaml"
    stamp = tuned(far, DEFAULT_WEIGHTS_ONNX)
    assert named(stamp) == str(DEFAULT_WEIGHTS_ONNX.resolve()) and f"[sha256:{sha}]" in stamp, stamp
    r = _patrol("eval", small / "data.yaml", "--config", far, "--weights", DEFAULT_WEIGHTS_ONNX,
                "--out", tmp_path / "e.json")
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr  # read back: the model tuned for
    # the model below the config's folder: relative, as detect.weights names it
    (tmp_path / "cities" / "toyama" / "models").mkdir()
    below = shutil.copy(DEFAULT_WEIGHTS_ONNX, tmp_path / "cities" / "toyama" / "models" / "best.onnx")
    assert named(tuned(far, below)) == os.path.join("models", "best.onnx")
    # a checkout (configs/ beside weights/, as this repository ships them): relative, the two move together
    repo = tmp_path / "repo"
    (repo / "weights").mkdir(parents=True)
    (repo / ".git").mkdir()
    model = shutil.copy(DEFAULT_WEIGHTS_ONNX, repo / "weights" / "city.onnx")
    assert named(tuned(repo / "configs" / "city.yaml", model)) == os.path.join("..", "weights", "city.onnx")
    # the same layout outside any checkout: another folder's file, by its absolute path
    (repo / ".git").rmdir()
    assert named(tuned(repo / "configs" / "city.yaml", model)) == str(Path(model).resolve())


def test_thresholds_warn_when_tuned_for_another_model(small, tmp_path):
    """Thresholds belong to the model they were tuned for as much as to the size. configs/default.yaml's were tuned
    for the shipped weights/rdd-yolo.onnx; a city config that points detect.weights at its retrained model but keeps
    those thresholds (or runs --weights another model) now gets a warning naming both models — it was silent. The
    model is told by its content: the shipped model copied to another name is the same model, no warning."""
    if not DEFAULT_WEIGHTS_PT.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_PT}")
    default_cfg = ROOT / "configs" / "default.yaml"
    sha_onnx = hashlib.sha256(DEFAULT_WEIGHTS_ONNX.read_bytes()).hexdigest()[:12]
    sha_shipped_pt = hashlib.sha256(DEFAULT_WEIGHTS_PT.read_bytes()).hexdigest()[:12]
    city = tmp_path / "city"
    (city / "models").mkdir(parents=True)
    shutil.copy(DEFAULT_WEIGHTS_ONNX, city / "models" / "best.onnx")
    cfg_path = city / "city.yaml"
    cfg_path.write_text("# our city\ndetect:\n  weights: models/best.onnx\n", encoding="utf-8")
    nowhere = ("--roads", tmp_path / "no-roads.geojson", "--out", tmp_path / "out")  # run warns, then stops: exit 3
    r = _patrol("run", tmp_path / "no-drive", *nowhere, "--config", cfg_path)
    assert r.returncode == 3 and "thresholds were chosen" not in r.stderr, r.stderr  # a copy: the same model

    # the shipped .pt beside the onnx the thresholds were tuned with: one model (train exports the onnx next to it)
    r = _patrol("run", tmp_path / "no-drive", *nowhere, "--weights", DEFAULT_WEIGHTS_PT)
    assert r.returncode == 3 and "thresholds were chosen" not in r.stderr, r.stderr

    # the city's retrained model (here: the shipped .pt averaged with itself: the same weights in another file,
    # without its onnx beside it) with the thresholds tuned for the shipped onnx
    (city / "models" / "best.onnx").unlink()
    r = _patrol("average-weights", DEFAULT_WEIGHTS_PT, DEFAULT_WEIGHTS_PT, "--out", city / "models" / "best.pt",
                "--no-onnx")
    assert r.returncode == 0, r.stderr
    sha_pt = hashlib.sha256((city / "models" / "best.pt").read_bytes()).hexdigest()[:12]
    cfg_path.write_text("# our city\ndetect:\n  weights: models/best.pt\n", encoding="utf-8")
    want = (f"warning: {default_cfg}: its thresholds were chosen by patrol tune for ../weights/rdd-yolo.onnx "
            f"[sha256:{sha_onnx}] and its twin ../weights/rdd-yolo.pt [sha256:{sha_shipped_pt}], but the model is now {city / 'models' / 'best.pt'} [sha256:{sha_pt}] "
            f"(detect.weights): tune them for this model (patrol tune DATA_YAML --config {cfg_path})")
    r = _patrol("run", tmp_path / "no-drive", *nowhere, "--config", cfg_path)
    assert r.returncode == 3 and want in r.stderr.splitlines(), r.stderr
    r = _patrol("run", tmp_path / "no-drive", *nowhere, "--config", cfg_path, "--weights", DEFAULT_WEIGHTS_ONNX)
    assert r.returncode == 3 and "thresholds were chosen" not in r.stderr, r.stderr  # --weights: the tuned one
    # a scheduled job reads summary.json: the warning is there too (detect runs the .pt on real photos)
    r = _patrol("detect", small / "images" / "val", "--out", tmp_path / "det", "--config", cfg_path)
    assert r.returncode == 0 and want in r.stderr.splitlines(), r.stderr
    doc = json.loads((tmp_path / "det" / "summary.json").read_text(encoding="utf-8"))
    assert want[len("warning: "):] in doc["warnings"], doc["warnings"]

    # tuned for the city's model: quiet with it, and the stamp now names it; the shipped onnx again warns
    r = _patrol("tune", small / "data.yaml", "--config", cfg_path)
    assert r.returncode == 0, r.stderr
    assert f"for {os.path.join('models', 'best.pt')} [sha256:{sha_pt}] on" in cfg_path.read_text(encoding="utf-8")
    r = _patrol("eval", small / "data.yaml", "--config", cfg_path, "--out", tmp_path / "e.json")
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    other = tmp_path / "alone" / "other.onnx"  # another model file, no .pt beside it
    other.parent.mkdir()
    shutil.copy(DEFAULT_WEIGHTS_ONNX, other)
    r = _patrol("run", tmp_path / "no-drive", *nowhere, "--config", cfg_path, "--weights", other)
    assert r.returncode == 3 and (f"warning: {cfg_path}: its thresholds were chosen by patrol tune for "
                                  f"{os.path.join('models', 'best.pt')} [sha256:{sha_pt}], but the model is now "
                                  f"{other} [sha256:{sha_onnx}] (--weights): tune them for this model "
                                  f"(patrol tune DATA_YAML --config {cfg_path} --weights {other})"
                                  ) in r.stderr.splitlines(), r.stderr
    # the shipped onnx: its .pt beside it is not the model they were tuned for (models/best.pt is another file)
    r = _patrol("run", tmp_path / "no-drive", *nowhere, "--config", cfg_path, "--weights", DEFAULT_WEIGHTS_ONNX)
    assert r.returncode == 3 and f"but the model is now {DEFAULT_WEIGHTS_ONNX} [sha256:{sha_onnx}]" in r.stderr, r.stderr
    # the same weights as models/best.pt copied beside the shipped onnx's name: the twin is the model tuned for
    pair = tmp_path / "pair"
    pair.mkdir()
    shutil.copy(DEFAULT_WEIGHTS_ONNX, pair / "best.onnx")
    shutil.copy(city / "models" / "best.pt", pair / "best.pt")
    r = _patrol("run", tmp_path / "no-drive", *nowhere, "--config", cfg_path, "--weights", pair / "best.onnx")
    assert r.returncode == 3 and "thresholds were chosen" not in r.stderr, r.stderr


def test_thresholds_tell_a_retrained_pt_from_its_stale_onnx_twin(small, tmp_path):
    """A .pt and the .onnx exported beside it are one model, but only while the .onnx is its export: a .pt retrained
    (here: `average-weights --no-onnx` over it, as over an old soup) beside the stale .onnx the thresholds were tuned
    with was taken as the model tuned for, silently. tune now records both twins' sha256; run/detect warn, naming the
    file and what to do, when the file run differs from the one(s) tuned or the twins no longer match each other."""
    if not DEFAULT_WEIGHTS_PT.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_PT}")
    city = tmp_path / "city"
    (city / "models").mkdir(parents=True)
    pt, onnx = city / "models" / "best.pt", city / "models" / "best.onnx"
    shutil.copy(DEFAULT_WEIGHTS_PT, pt)
    shutil.copy(DEFAULT_WEIGHTS_ONNX, onnx)
    sha_pt = hashlib.sha256(pt.read_bytes()).hexdigest()[:12]
    sha_onnx = hashlib.sha256(onnx.read_bytes()).hexdigest()[:12]
    cfg_path = city / "city.yaml"
    cfg_path.write_text("# our city\ndetect:\n  weights: models/best.onnx\n", encoding="utf-8")
    before = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    r = _patrol("tune", small / "data.yaml", "--config", cfg_path)
    assert r.returncode == 0, r.stderr
    text = cfg_path.read_text(encoding="utf-8")
    assert (f"for {os.path.join('models', 'best.onnx')} [sha256:{sha_onnx}] (twin {os.path.join('models', 'best.pt')} "
            f"[sha256:{sha_pt}]) on {small / 'data.yaml'} (val)") in text, text
    after = yaml.safe_load(text)  # tune changed the thresholds (and the stamp) only
    assert {k: v for k, v in after.items() if k != "classes"} == before
    assert all(set(spec) == {"threshold"} for spec in after["classes"].values()), after

    nowhere = ("--roads", tmp_path / "no-roads.geojson", "--out", tmp_path / "out")  # run warns, then stops: exit 3
    for w in (onnx, pt):  # the pair as tuned: quiet with either
        r = _patrol("run", tmp_path / "no-drive", *nowhere, "--config", cfg_path, "--weights", w)
        assert r.returncode == 3 and "thresholds were chosen" not in r.stderr, r.stderr

    # the .pt retrained beside the stale .onnx (no export)
    r = _patrol("average-weights", DEFAULT_WEIGHTS_PT, DEFAULT_WEIGHTS_PT, "--weight", "3", "--weight", "1",
                "--out", pt, "--no-onnx")
    assert r.returncode == 0, r.stderr
    sha_new = hashlib.sha256(pt.read_bytes()).hexdigest()[:12]
    assert sha_new != sha_pt and hashlib.sha256(onnx.read_bytes()).hexdigest()[:12] == sha_onnx
    was = (f"{cfg_path}: its thresholds were chosen by patrol tune for {os.path.join('models', 'best.onnx')} "
           f"[sha256:{sha_onnx}] and its twin {os.path.join('models', 'best.pt')} [sha256:{sha_pt}]")
    export = "export best.onnx from best.pt again (patrol train and average-weights do so unless --no-onnx)"
    # the config's best.onnx: still the model tuned, but no longer the retrained .pt's export
    want = (f"warning: {was}; {city / 'models' / 'best.onnx'} (detect.weights) is still that model, but {pt} beside "
            f"it has changed since [sha256:{sha_new}], so the two are no longer the pair tuned for: if best.pt was "
            f"retrained, best.onnx is stale — {export}; then tune the thresholds again (patrol tune DATA_YAML --config "
            f"{cfg_path})")
    r = _patrol("run", tmp_path / "no-drive", *nowhere, "--config", cfg_path)
    assert r.returncode == 3 and want in r.stderr.splitlines(), r.stderr
    # the retrained .pt itself: not the model tuned for (it passed as the stale .onnx's twin)
    cfg_pt = city / "city-pt.yaml"
    cfg_pt.write_text(text.replace("weights: models/best.onnx", "weights: models/best.pt"), encoding="utf-8")
    want = (f"warning: {was.replace(str(cfg_path), str(cfg_pt))}, but {pt} (detect.weights) has changed since "
            f"[sha256:{sha_new}] and {onnx} beside it has not, so the two are no longer a pair: if best.pt was "
            f"retrained, best.onnx is stale — {export}; then tune the thresholds for the new model (patrol tune "
            f"DATA_YAML --config {cfg_pt})")
    r = _patrol("detect", small / "images" / "val", "--out", tmp_path / "det", "--config", cfg_pt)
    assert r.returncode == 0 and want in r.stderr.splitlines(), r.stderr
    doc = json.loads((tmp_path / "det" / "summary.json").read_text(encoding="utf-8"))
    assert want[len("warning: "):] in doc["warnings"], doc["warnings"]

    # a byte-changed .onnx beside the tuned .pt (restored): the .onnx run is another model, the .pt's twin changed
    shutil.copy(DEFAULT_WEIGHTS_PT, pt)
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    r = _patrol("run", tmp_path / "no-drive", *nowhere, "--config", cfg_path)
    assert r.returncode == 3 and f"but {onnx} (detect.weights) has changed since" in r.stderr, r.stderr
    r = _patrol("run", tmp_path / "no-drive", *nowhere, "--config", cfg_pt)
    assert r.returncode == 3 and f"is still that model, but {onnx} beside it has changed since" in r.stderr, r.stderr

    # configs/default.yaml's stamp names the shipped pair: the shipped .pt beside the tuned .onnx is quiet
    r = _patrol("run", tmp_path / "no-drive", *nowhere, "--weights", DEFAULT_WEIGHTS_PT)
    assert r.returncode == 3 and "thresholds were chosen" not in r.stderr, r.stderr
    # an old stamp (no twin recorded) is still read: the twin beside the tuned file counts as the same model
    old = tmp_path / "old.yaml"
    old.write_text(re.sub(r" \(twin [^)]*\)", "", (ROOT / "configs" / "default.yaml").read_text(encoding="utf-8"))
                   .replace("../weights/", f"{ROOT}/weights/"), encoding="utf-8")
    assert "(twin" not in old.read_text(encoding="utf-8")
    r = _patrol("run", tmp_path / "no-drive", *nowhere, "--weights", DEFAULT_WEIGHTS_PT, "--config", old)
    assert r.returncode == 3 and "thresholds were chosen" not in r.stderr, r.stderr


def test_an_onnx_exported_again_from_the_tuned_pt_is_not_called_stale(tmp_path):
    """Each ONNX export of one .pt differs byte for byte (measured: two exports of the shipped rdd-yolo.pt, two
    sha256). A city tuned with best.onnx beside best.pt, then exported best.onnx from the unchanged best.pt again:
    the warning said "if best.pt was retrained, best.onnx is stale — export best.onnx from best.pt again" (best.pt has
    not changed; the export had just been done, and doing it again changes nothing). Now it says what may have
    happened (exported again: still the model tuned for, tune again to record it; else another model)."""
    if not (DEFAULT_WEIGHTS_PT.is_file() and DEFAULT_WEIGHTS_ONNX.is_file()):
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_PT} / {DEFAULT_WEIGHTS_ONNX}")
    pytest.importorskip("ultralytics")
    from detector.train import export_onnx
    from detector.tune import _with_stamp, tune_stamp

    models = tmp_path / "city" / "models"
    models.mkdir(parents=True)
    pt, onnx = models / "best.pt", models / "best.onnx"
    shutil.copy(DEFAULT_WEIGHTS_PT, pt)
    shutil.copy(DEFAULT_WEIGHTS_ONNX, onnx)
    cfgs = {}
    for w in (onnx, pt):
        p = tmp_path / "city" / f"city-{w.suffix[1:]}.yaml"
        text = f"detect:\n  weights: models/{w.name}\n  imgsz: 448\nclasses:\n  D00: {{threshold: 0.3}}\n"
        p.write_text(_with_stamp(text, tune_stamp(448, w, "data.yaml", "val", config_path=p)), encoding="utf-8")
        cfgs[w.suffix] = p
    nowhere = ("--roads", tmp_path / "no-roads.geojson", "--out", tmp_path / "out")
    for p in cfgs.values():  # as tuned: quiet
        r = _patrol("run", tmp_path / "no-drive", *nowhere, "--config", p)
        assert r.returncode == 3 and "thresholds were chosen" not in r.stderr, r.stderr

    before = hashlib.sha256(onnx.read_bytes()).hexdigest()
    export_onnx(pt, imgsz=448)  # best.onnx beside best.pt, from it, again
    assert hashlib.sha256(onnx.read_bytes()).hexdigest() != before  # not byte for byte the same
    again = "if best.onnx was exported again from best.pt (each ONNX export differs byte for byte)"
    for suffix, says in ((".onnx", f"{again}, it is still the model tuned for — tune again to record it"),
                         (".pt", f"{again}, the thresholds hold for both — tune again to record the new pair")):
        r = _patrol("run", tmp_path / "no-drive", *nowhere, "--config", cfgs[suffix])
        line = next(x for x in r.stderr.splitlines() if "thresholds were chosen" in x)
        assert says in line and "if best.pt was retrained" not in line, line


def test_eval_of_another_model_into_the_same_file_says_whose_scores_it_replaced(small, tmp_path):
    """Comparing models with `patrol eval` on one data set: the default file (eval-<set>-<split>.json) of the second
    model replaced the first's without a word. The JSON names the model by path and content (weights_sha256), and
    replacing another model's scores prints a note naming the file and that model; the same model again is quiet."""
    from detector.tune import model_sha256

    out = tmp_path / "eval-set-val.json"
    r = _patrol("eval", small / "data.yaml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    first = json.loads(out.read_text())
    assert first["weights_sha256"] == model_sha256(DEFAULT_WEIGHTS_ONNX)
    r = _patrol("eval", small / "data.yaml", cwd=tmp_path)
    assert r.returncode == 0 and "note:" not in r.stderr, r.stderr[-2000:]
    r = _patrol("eval", small / "data.yaml", "--weights", DEFAULT_WEIGHTS_PT, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    notes = [ln for ln in r.stderr.splitlines() if ln.startswith("note:")]
    assert notes == [f"note: {out.name} held the scores of another model, {first['weights']} "
                     f"[sha256:{first['weights_sha256']}]; replaced by these (pass --out to keep each model's)"], r.stderr
    assert json.loads(out.read_text())["weights_sha256"] == model_sha256(DEFAULT_WEIGHTS_PT)
