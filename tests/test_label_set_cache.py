"""`patrol label-set`'s prediction cache (OUT/.work): a re-run into the same folder (another --n, a drive added, a
re-run after an error) predicts only the frames it has not predicted, with the model, its settings and the frame's
file as before; on frames of the sample drive and the shipped ONNX model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")

from detector.config import DEFAULT_CONFIG, DEFAULT_WEIGHTS_ONNX, load_config  # noqa: E402

from conftest import TOYAMA, need  # noqa: E402

P1 = TOYAMA / "toyama-2026-11-p1"


@pytest.fixture
def counted(monkeypatch):
    """How many images the model was asked to predict (every detector label-set loads)."""
    import detector.infer as infer

    calls = {"images": 0, "loads": 0}
    real = infer.load_detector

    def load(*a, **k):
        det = real(*a, **k)
        predict_all = det.predict_all
        calls["loads"] += 1

        def counting(images, *aa, **kk):
            calls["images"] += len(images)
            return predict_all(images, *aa, **kk)

        det.predict_all = counting
        return det

    monkeypatch.setattr(infer, "load_detector", load)
    return calls


def _drive(tmp: Path, k: int) -> Path:
    need(P1)
    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    d = tmp / "p1"
    d.mkdir()
    for f in sorted(P1.glob("IMG_2026*.jpg"))[:k]:
        shutil.copy2(f, d / f.name)
    return d


def _same(a, b) -> None:
    assert [p.frame.name for p in a] == [p.frame.name for p in b]
    for p, q in zip(a, b):
        assert np.array_equal(p.xyxy, q.xyxy) and np.array_equal(p.conf, q.conf), p.frame.name
        assert list(p.cls) == list(q.cls) and (p.width, p.height) == (q.width, q.height), p.frame.name


def test_a_rerun_into_out_predicts_only_the_frames_not_yet_predicted(tmp_path, counted):
    from detector import labelset
    from detector.labelset import CSV_NAME, make_label_set, read_and_predict

    drive = _drive(tmp_path, 12)
    cfg = load_config(DEFAULT_CONFIG)
    out = tmp_path / "set"
    s = make_label_set([drive], out, cfg, DEFAULT_WEIGHTS_ONNX, n=5)
    assert counted["images"] == 12
    # another --n into the same folder: nothing predicted, the model not even loaded
    s = make_label_set([drive], out, cfg, DEFAULT_WEIGHTS_ONNX, n=8)
    assert (counted["images"], counted["loads"]) == (12, 1)
    assert (s.predicted, s.from_cache, counted["images"], counted["loads"]) == (0, 12, 12, 1)
    assert s.replaced  # the earlier set replaced
    # the cache survived the earlier set's replacement, and is nowhere a training data set reads
    assert (out / ".work" / labelset.CACHE_NAME).is_file()
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(p.image for p in s.picks)
    assert sorted(p.name for p in (out / "annotations" / "xmls").iterdir()) == sorted(
        p.image[:-4] + ".xml" for p in s.picks)
    assert ".work" not in (out / "train.txt").read_text() + (out / "val.txt").read_text()
    # the cached predictions are those of a fresh run, to the bit
    fresh = read_and_predict([drive], cfg, DEFAULT_WEIGHTS_ONNX, tmp_path / "fresh", tmp_path / "v1")
    assert counted["images"] == 24
    _same(read_and_predict([drive], cfg, DEFAULT_WEIGHTS_ONNX, out, tmp_path / "v2"), fresh)
    assert counted["images"] == 24
    # a frame added to the drive, and one replaced under its name (another picture): those two predicted
    extra = sorted(P1.glob("IMG_2026*.jpg"))[12:14]
    shutil.copy2(extra[0], drive / extra[0].name)
    victim = sorted(drive.glob("*.jpg"))[3]
    shutil.copyfile(extra[1], victim)
    s = make_label_set([drive], out, cfg, DEFAULT_WEIGHTS_ONNX, n=8)
    assert (s.predicted, s.from_cache, counted["images"]) == (2, 11, 26)
    # a label-set stopped before it wrote anything (Ctrl+C while predicting) left only the cache: that folder is
    # taken as new, its predictions used; one holding anything else besides is still refused
    stopped = tmp_path / "stopped"
    shutil.copytree(out / ".work", stopped / ".work")
    s = make_label_set([drive], stopped, cfg, DEFAULT_WEIGHTS_ONNX, n=4)
    assert (s.predicted, s.from_cache, (stopped / CSV_NAME).is_file()) == (0, 13, True)
    other = tmp_path / "other"
    shutil.copytree(out / ".work", other / ".work")
    (other / "notes.txt").write_text("mine")
    from detector.errors import UsageError

    with pytest.raises(UsageError):
        make_label_set([drive], other, cfg, DEFAULT_WEIGHTS_ONNX, n=4)


def test_the_cache_is_started_afresh_for_other_weights_or_another_imgsz(tmp_path, counted):
    import onnx

    from detector.labelset import make_label_set

    drive = _drive(tmp_path, 6)
    cfg = load_config(DEFAULT_CONFIG)
    out = tmp_path / "set"
    make_label_set([drive], out, cfg, DEFAULT_WEIGHTS_ONNX, n=3)
    make_label_set([drive], out, cfg, DEFAULT_WEIGHTS_ONNX, n=3)
    assert counted["images"] == 6  # (the second from the cache)
    # the same network in a file of other bytes (retrained weights keep the name): predicted again
    m = onnx.load(str(DEFAULT_WEIGHTS_ONNX))
    m.doc_string = "retrained"
    other = tmp_path / "rdd-yolo.onnx"
    onnx.save(m, str(other))
    s = make_label_set([drive], out, cfg, other, n=3)
    assert (s.predicted, s.from_cache, counted["images"]) == (6, 0, 12)
    s = make_label_set([drive], out, cfg, other, n=3)
    assert (s.predicted, s.from_cache) == (0, 6)
    # another imgsz
    cfg.detect.imgsz += 32
    s = make_label_set([drive], out, cfg, other, n=3)
    assert (s.predicted, s.from_cache, counted["images"]) == (6, 0, 18)


def _lines(out: Path) -> int:
    from detector.labelset import CACHE_NAME

    return len((out / ".work" / CACHE_NAME).read_bytes().splitlines()) - 1  # (the header line)


def test_the_cache_is_compacted_once_its_stale_lines_outnumber_the_live_ones_and_still_serves_a_rerun(tmp_path,
                                                                                                     counted):
    """Photos touched (a copy again from the card: a new modification time, a new identity) are predicted again,
    their old lines left behind; once those stale lines outnumber the live ones the file is rewritten with the live
    ones alone: this drive's and another drive's whose photos are still as they were (not given this time). A
    re-run then takes every frame from it. Before, the file only grew (6 lines a touch here)."""
    from detector import labelset
    from detector.labelset import make_label_set

    a = _drive(tmp_path, 6)
    b = tmp_path / "p1b"
    b.mkdir()
    for f in sorted(P1.glob("IMG_2026*.jpg"))[6:9]:
        shutil.copy2(f, b / f.name)
    cfg = load_config(DEFAULT_CONFIG)
    out = tmp_path / "set"
    s = make_label_set([a, b], out, cfg, DEFAULT_WEIGHTS_ONNX, n=3)
    assert (s.predicted, _lines(out)) == (9, 9)

    def touch(k: int) -> None:
        for p in a.iterdir():
            st = p.stat()
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + k * 10 ** 9))

    touch(1)
    s = make_label_set([a], out, cfg, DEFAULT_WEIGHTS_ONNX, n=3)
    # 6 stale lines, 9 live (a's 6 new ones, b's 3): not rewritten
    assert (s.predicted, s.from_cache, _lines(out)) == (6, 0, 15)
    size = (out / ".work" / "label-set-predictions.jsonl").stat().st_size
    touch(2)
    s = make_label_set([a], out, cfg, DEFAULT_WEIGHTS_ONNX, n=3)
    # 12 stale, 9 live: rewritten with the 9
    assert (s.predicted, s.from_cache, _lines(out)) == (6, 0, 9)
    assert s.cache_dropped == 12 and 6 <= labelset.COMPACT_STALE_SHARE * 9 < 12
    assert (out / ".work" / "label-set-predictions.jsonl").stat().st_size < size
    assert not list((out / ".work").glob(".*.tmp"))  # (atomic_write's temp file gone)
    # a re-run of both drives: everything from the compacted cache, nothing appended
    s = make_label_set([a, b], out, cfg, DEFAULT_WEIGHTS_ONNX, n=3)
    assert (s.predicted, s.from_cache, _lines(out), s.cache_dropped) == (0, 9, 9, 0)
    assert counted["images"] == 21
    # and its boxes are those of a fresh prediction
    from detector.labelset import read_and_predict

    _same(read_and_predict([a, b], cfg, DEFAULT_WEIGHTS_ONNX, out, tmp_path / "v1"),
          read_and_predict([a, b], cfg, DEFAULT_WEIGHTS_ONNX, tmp_path / "fresh", tmp_path / "v2"))
