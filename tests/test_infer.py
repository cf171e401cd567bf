"""Detector backends: .pt (ultralytics) and .onnx (onnxruntime, no torch) agree; batching is invariant."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")

from detector import CLASS_IDS, infer  # noqa: E402
from detector.config import Config  # noqa: E402
from detector.errors import ModelError  # noqa: E402
from detector.infer import detect_images, load_detector, map_class_names  # noqa: E402

from conftest import PRETRAINED, RDD, ROOT, need  # noqa: E402

IMGSZ = 320
CONF = 0.001  # the 4-class head is untrained: its scores are ~1e-3


def _cfg(imgsz: int = IMGSZ) -> Config:
    cfg = Config()
    cfg.detect.imgsz = imgsz
    return cfg


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """The pretrained .pt copied to a tmp dir and its ONNX export (once per session)."""
    src = need(PRETRAINED / "yolov5nu-coco-backbone-4cls.pt")
    d = tmp_path_factory.mktemp("models")
    pt = d / "m.pt"
    shutil.copy(src, pt)
    from detector.train import export_onnx

    onnx = export_onnx(pt, imgsz=IMGSZ)
    return {"pt": pt, "onnx": onnx}


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    """A few val images of every source (three sizes: 512, 600, 640)."""
    val = sorted((need(RDD) / "images" / "val").glob("*.jpg"))
    picks = [p for pre in ("China_MotorBike_", "Czech_", "Japan_") for p in [q for q in val if q.name.startswith(pre)][:2]]
    ims = [cv2.imread(str(p)) for p in picks]
    assert all(im is not None for im in ims)
    return ims


@pytest.fixture(scope="module")
def detectors(models):
    cfg = _cfg()
    return {k: load_detector(p, cfg, conf=CONF) for k, p in models.items()}


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def test_backends_agree(detectors, images):
    rp = detectors["pt"].predict(images)
    ro = detectors["onnx"].predict(images)
    for (bp, cp, kp), (bo, co, ko) in zip(rp, ro):
        assert len(bo) > 0
        assert abs(len(bo) - len(bp)) <= 1
        top = min(10, len(bo))
        # every top ONNX box has a .pt box of the same class, IoU > 0.9 and (nearly) the same confidence
        iou = _iou(bo[:top], bp)
        same = (ko[:top, None] == kp[None, :]) & (np.abs(co[:top, None] - cp[None, :]) <= 1e-3 * co[:top, None] + 1e-6)
        assert ((iou > 0.9) & same).any(1).all()
        for b in (bp, bo):
            assert b.dtype == np.float64 and b.shape[1] == 4
        assert set(ko) <= set(CLASS_IDS) and ko.dtype == object


@pytest.mark.parametrize("backend", ["onnx", "pt"])
def test_batch_equals_single(detectors, images, backend):
    det = detectors[backend]
    items = list(enumerate(images))
    one = list(detect_images(items, det, batch=1))
    many = list(detect_images(items, det, batch=4))
    assert [k for k, *_ in many] == list(range(len(images)))
    for (k1, b1, c1, s1), (k2, b2, c2, s2) in zip(one, many):
        assert k1 == k2
        assert len(b1) == len(b2)
        np.testing.assert_allclose(b1, b2, atol=0.05)
        np.testing.assert_allclose(c1, c2, rtol=1e-3, atol=1e-6)
        assert list(s1) == list(s2)


def test_per_class_thresholds(models, images):
    cfg = _cfg()
    for c in CLASS_IDS:
        cfg.classes[c].threshold = 1.0
    cfg.classes["D20"].threshold = CONF
    det = load_detector(models["onnx"], cfg)
    assert det.model_conf == CONF
    res = det.predict(images[:2])
    assert sum(len(r[0]) for r in res) > 0
    for _, conf, cls in res:
        assert set(cls) == {"D20"} and (conf >= CONF).all()
    # the same boxes as the unfiltered output restricted to D20
    allr = det.predict_all(images[:2], CONF)
    for (b, c, k), (ba, ca, ka) in zip(res, allr):
        np.testing.assert_allclose(b, ba[ka == "D20"])
    # max_det caps
    cfg.detect.max_det = 3
    det3 = load_detector(models["onnx"], cfg, conf=CONF)
    assert all(len(r[0]) <= 3 for r in det3.predict(images[:2]))


def test_onnx_path_imports_no_torch(models, images):
    src = sorted((RDD / "images" / "val").glob("*.jpg"))[0]
    code = f"""
import sys, json
from detector.config import Config
from detector.infer import load_detector, detect_images
import cv2
cfg = Config(); cfg.detect.imgsz = {IMGSZ}
det = load_detector({str(models['onnx'])!r}, cfg, conf={CONF})
out = list(detect_images([(0, cv2.imread({str(src)!r}))], det, 2))
print(json.dumps({{"n": len(out[0][1]), "mods": sorted(m for m in sys.modules if m.split('.')[0] in ("torch", "ultralytics", "torchvision"))}}))
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["mods"] == []
    assert res["n"] > 0


def test_bad_weights(tmp_path):
    cfg = _cfg()
    with pytest.raises(ModelError, match="not found"):
        load_detector(tmp_path / "nope.onnx", cfg)
    with pytest.raises(ModelError, match="unsupported"):
        load_detector(tmp_path / "model.tflite", cfg)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ModelError) as e:
        load_detector(bad, cfg)
    assert "\n" not in str(e.value) and str(bad) in str(e.value)
    badpt = tmp_path / "bad.pt"
    badpt.write_bytes(b"garbage" * 10)
    with pytest.raises(ModelError, match="cannot load"):
        load_detector(badpt, cfg)
    empty = tmp_path / "empty.onnx"
    empty.touch()
    with pytest.raises(ModelError, match="empty"):
        load_detector(empty, cfg)


def test_map_class_names(caplog):
    assert map_class_names({0: "D10", 1: "D00", 2: "D40", 3: "D20"}) == ["D10", "D00", "D40", "D20"]
    assert map_class_names(["D00", "D10", "D20", "D40"]) == list(CLASS_IDS)
    cfg = Config()
    en = [cfg.classes[c].name_en for c in CLASS_IDS]
    assert map_class_names(dict(enumerate(en)), cfg) == list(CLASS_IDS)
    with caplog.at_level(logging.WARNING, logger="detector.infer"):
        assert map_class_names({0: "0", 1: "1", 2: "2", 3: "3"}) == list(CLASS_IDS)
        assert map_class_names({"0": "class0", "1": "class1", "2": "class2", "3": "class3"}) == list(CLASS_IDS)
    assert "placeholders" in caplog.text
    with pytest.raises(ModelError, match="80 classes"):
        map_class_names({i: f"class{i}" for i in range(80)})
    with pytest.raises(ModelError, match="not the road-damage classes"):
        map_class_names({0: "person", 1: "bicycle", 2: "car", 3: "motorcycle"})


def test_default_weights(tmp_path, monkeypatch):
    onnx, pt = tmp_path / "rdd-yolo.onnx", tmp_path / "rdd-yolo.pt"
    monkeypatch.setattr(infer, "DEFAULT_WEIGHTS_ONNX", onnx)
    monkeypatch.setattr(infer, "DEFAULT_WEIGHTS_PT", pt)
    with pytest.raises(ModelError, match="--weights"):
        infer.default_weights()
    pt.write_bytes(b"x")
    assert infer.default_weights() == pt
    onnx.write_bytes(b"x")
    assert infer.default_weights() == onnx
    cfg = Config()
    assert infer.resolve_weights(cfg) == onnx
    where, x = tmp_path / "where.pt", tmp_path / "x.onnx"
    cfg.detect.weights = str(where)
    with pytest.raises(ModelError, match=r"weights file not found \(detect.weights\)"):
        infer.resolve_weights(cfg)
    where.write_bytes(b"x")
    assert infer.resolve_weights(cfg) == where
    with pytest.raises(ModelError, match=r"weights file not found \(--weights\)"):
        infer.resolve_weights(cfg, x)
    x.write_bytes(b"x")
    assert infer.resolve_weights(cfg, x) == x


def test_looks_like_weights_tells_a_model_from_other_files(tmp_path):
    """The cheap check the thresholds-for-another-model warning uses (a file that is no model gets its one-line
    error when loaded, no warning about it first): real models of both formats pass, other bytes do not."""
    from detector.config import DEFAULT_WEIGHTS_ONNX, DEFAULT_WEIGHTS_PT
    from detector.infer import looks_like_weights

    pt = need(PRETRAINED / "yolov5nu-coco-backbone-4cls.pt")
    assert looks_like_weights(pt)
    for shipped in (DEFAULT_WEIGHTS_ONNX, DEFAULT_WEIGHTS_PT):
        if shipped.is_file():
            assert looks_like_weights(shipped)
            shutil.copy(shipped, tmp_path / f"copy{shipped.suffix}")
            assert looks_like_weights(tmp_path / f"copy{shipped.suffix}")
    for name, data in [("bad.onnx", b"not a model"), ("empty.onnx", b""), ("bad.pt", b"not a model"),
                       ("model.bin", pt.read_bytes())]:
        (tmp_path / name).write_bytes(data)
        assert not looks_like_weights(tmp_path / name), name
    assert not looks_like_weights(tmp_path / "missing.onnx")
