"""`patrol train` resumes after a hard kill: the run continues at the next epoch and exports best.onnx."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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
    assert "Resuming training" in log
    rows2 = _rows(run / "results.csv")
    assert len(rows2) == 2  # a fresh start would have appended two more rows
    assert rows2[0] == rows1[0]
    assert [int(float(r["epoch"])) for r in rows2] == [1, 2]
    best = Path(log.split("BEST", 1)[1].split()[0])
    assert best == run / "weights" / "best.pt" and best.is_file()
    assert (run / "weights" / "best.onnx").is_file()
    # killed after epoch index 0; the finished checkpoint is marked -1 (so a later train starts afresh)
    assert "EPOCH_BEFORE 0\n" in r2.stdout and "EPOCH_AFTER -1\n" in r2.stdout


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
    from detector.errors import InputError
    from detector.train import parse_oversample, resolve_data_yaml

    assert parse_oversample(["Japan_=2", "D40=3"]) == {"Japan_": 2, "D40": 3}
    for bad in (["Japan_"], ["Japan_=0"], ["=2"], ["D40=x"]):
        with pytest.raises(InputError, match="--oversample"):
            parse_oversample(bad)
    with pytest.raises(InputError, match="Osaka_"):
        resolve_data_yaml(need(RDD) / "data.yaml", tmp_path, oversample={"Osaka_": 2})
