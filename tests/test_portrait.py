"""Frames shot in portrait: a phone on a dashboard mount held upright.

A photo with EXIF orientation 6 is stored sideways and shown upright; a portrait video's frames are turned upright
(detector/video.py). Detection must run on the upright picture (the model learnt upright roads) and the boxes must
be that picture's pixels, and the camera model must give the same phone the same focal length held either way:
``camera.hfov_deg`` is the field of view across the frame's long side.

Real data: frames of the sample drive's pass 1 (square, 512-640 px) as one phone sees them held landscape (the
frame with a grey border left and right: 3:2) and held upright (the border above and below: 2:3, stored sideways
with EXIF orientation 6; pixels and GPS/time/heading EXIF otherwise the sample's). The same road pixel lies on the
same ray in both, so every hit must land on the same ground point with the same size estimate. The detector is a
template matcher of the oracle boxes' patches cut from the upright sample frames: like the model, it finds the
damage only in an upright picture, and its boxes are wherever the pixels are.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import ROOT, TOYAMA, need
from detector.config import CameraSpec, load_config
from detector.frames import load_image, scan_drive
from detector.locate import box_extent_m, frame_heading_sources, frame_sequences, ground_from_pixel, locate
from detector.pipeline import Manifest, RunSummary, stage_detect
from detector.roads import load_roads

P1 = "toyama-2026-11-p1"
N_FRAMES = 10  # IMG_…_0000 .. _0009: 12 oracle boxes on 6 frames, 512 and 600 px
GREY = (114, 114, 114)
CAM = CameraSpec(height_m=1.3, pitch_deg=8.0, hfov_deg=66.0, max_distance_m=30.0)


# ------------------------------------------------------------------------------------------------ helpers

def _sources() -> list[Path]:
    return sorted(need(TOYAMA / P1).glob("IMG_2026*.jpg"))[:N_FRAMES]


def _pad(n: int) -> int:
    return n // 4  # n x n -> 1.5n x n (landscape) or n x 1.5n (portrait)


def _write(src: Path, dst: Path, pixels: np.ndarray, orientation: int) -> None:
    """``pixels`` (BGR, as stored) as a JPEG with ``src``'s EXIF (GPS, time, heading) and the given orientation."""
    exif = Image.open(src).getexif()
    exif.get_ifd(0x8825), exif.get_ifd(0x8769)  # load the GPS and Exif IFDs so that tobytes writes them
    exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(pixels[:, :, ::-1])).save(dst, quality=95, exif=exif.tobytes())


def make_drives(root: Path) -> tuple[Path, Path]:
    """(landscape drive, portrait drive) from the same sample frames."""
    land, port = root / "toyama-land", root / "toyama-port"
    land.mkdir(parents=True)
    port.mkdir(parents=True)
    for src in _sources():
        up = cv2.imread(str(src))
        p = _pad(up.shape[0])
        _write(src, land / src.name, cv2.copyMakeBorder(up, 0, 0, p, p, cv2.BORDER_CONSTANT, value=GREY), 1)
        upright = cv2.copyMakeBorder(up, p, p, 0, 0, cv2.BORDER_CONSTANT, value=GREY)
        # orientation 6: the stored picture is turned 90° clockwise to be shown, i.e. it is the upright one turned
        # 90° counter-clockwise (np.rot90's k=1)
        _write(src, port / src.name, np.rot90(upright, 1), 6)
    return land, port


class TemplateDetector:
    """Finds the oracle boxes of the sample frames by their pixels (normalised cross-correlation >= 0.9)."""

    def __init__(self):
        oracle = pd.read_csv(need(TOYAMA / f"{P1}.oracle.csv"))
        self.templates = []
        for src in _sources():
            grey = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2GRAY)
            rows = oracle[oracle["image"] == src.name]
            for name, *xyxy in zip(rows["class"], rows["x1"], rows["y1"], rows["x2"], rows["y2"]):
                x1, y1, x2, y2 = (int(round(v)) for v in xyxy)
                self.templates.append((name, grey[y1:y2, x1:x2]))
        assert self.templates

    def predict(self, images):
        out = []
        for im in images:
            grey = cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)
            boxes, conf, cls = [], [], []
            for name, t in self.templates:
                if t.shape[0] > grey.shape[0] or t.shape[1] > grey.shape[1]:
                    continue
                res = np.nan_to_num(cv2.matchTemplate(grey, t, cv2.TM_CCOEFF_NORMED), nan=0.0)
                _, score, _, (x, y) = cv2.minMaxLoc(res)
                if score >= 0.9:
                    boxes.append([x, y, x + t.shape[1], y + t.shape[0]])
                    conf.append(score)
                    cls.append(name)
            out.append((np.array(boxes, dtype=float).reshape(-1, 4), np.array(conf, dtype=float),
                        np.array(cls, dtype=object)))
        return out


def detect(drive: Path, out: Path, cfg):
    frames = scan_drive(drive, cfg)
    weights = out / "template.onnx"
    out.mkdir(parents=True)
    weights.write_bytes(b"\x08template")  # stage_detect keys its journal on the weights file; never loaded
    frames, det = stage_detect(frames, cfg, out, weights, Manifest(out), RunSummary(out=out), detector=TemplateDetector())
    return frames, det


# ------------------------------------------------------------------------------------------------ tests

def test_long_side_fov_landscape_unchanged_portrait_same_ray():
    """Landscape: f = (width/2)/tan(hfov/2) bit for bit, as before. Portrait: the pixel at the same offset from
    the centre of the same phone's frame is the same ray, so the same ground point."""
    rng = np.random.default_rng(0)
    for w, h in ((1920, 1080), (4032, 3024), (512, 512), (768, 512)):
        u, v = rng.uniform(0, w, 50), rng.uniform(0, h, 50)
        d, l = ground_from_pixel(u, v, np.full(50, w), np.full(50, h), CAM)
        f = (w / 2.0) / math.tan(math.radians(CAM.hfov_deg) / 2.0)  # the former model, width only
        yn = (v - h / 2.0) / f
        th = math.radians(CAM.pitch_deg)
        down, fwd = yn * math.cos(th) + math.sin(th), np.maximum(math.cos(th) - yn * math.sin(th), 1e-6)
        with np.errstate(divide="ignore"):
            k = np.where(down > 1e-9, CAM.height_m / down, np.inf)
        dd = k * fwd
        cap = ~(dd <= CAM.max_distance_m)
        k = np.where(cap, CAM.max_distance_m / fwd, k)
        assert np.array_equal(d, np.where(cap, CAM.max_distance_m, dd))
        assert np.array_equal(l, k * ((u - w / 2.0) / f))
        # the same phone held upright: width and height swap, the picture's centre stays the principal point
        du, dv = u - w / 2.0, v - h / 2.0
        keep = np.abs(du) <= h / 2.0  # rays inside the narrower portrait frame
        d2, l2 = ground_from_pixel(h / 2.0 + du[keep], w / 2.0 + dv[keep], np.full(keep.sum(), h),
                                   np.full(keep.sum(), w), CAM)
        np.testing.assert_allclose(d2, d[keep], rtol=1e-12)
        np.testing.assert_allclose(l2, l[keep], rtol=1e-12, atol=1e-12)
    # the size estimate too: a 1080x1920 portrait box is the 1920x1080 landscape box 420 px right and up
    box = np.array([[900.0, 700.0, 1100.0, 900.0]])
    wl, ll = box_extent_m(box, np.array([1920]), np.array([1080]), CAM)
    wp, lp = box_extent_m(box + [-420, 420, -420, 420], np.array([1080]), np.array([1920]), CAM)
    np.testing.assert_allclose([wp[0], lp[0]], [wl[0], ll[0]], rtol=1e-12)


@pytest.fixture(scope="module")
def drives(tmp_path_factory):
    root = tmp_path_factory.mktemp("portrait")
    land, port = make_drives(root)
    cfg = load_config(ROOT / "configs" / "toyama-city.yaml")
    return root, land, port, cfg


def test_exif6_photo_detected_upright(drives):
    root, land, port, cfg = drives
    frames, det = detect(port, root / "out-port", cfg)
    ok = [f for f in frames if f.status == "ok"]
    assert len(ok) == N_FRAMES
    for f in ok:  # the frame's size as shown: portrait
        n = cv2.imread(str(TOYAMA / P1 / f.name)).shape[0]
        assert (f.width, f.height) == (n, n + 2 * _pad(n)), f.name
    oracle = pd.read_csv(TOYAMA / f"{P1}.oracle.csv")
    oracle = oracle[oracle["image"].isin([p.name for p in _sources()])]
    assert len(det) == len(oracle) == 12
    # every damage found, in the upright frame's pixels: the sample's box moved down by the border above it
    got = pd.DataFrame({"image": det.image, "x1": det.xyxy[:, 0], "y1": det.xyxy[:, 1], "w": det.width, "h": det.height})
    for (name, rows), (_, want) in zip(got.groupby("image"), oracle.groupby("image")):
        p = _pad(int(want["width"].iloc[0]))
        assert (rows["w"] < rows["h"]).all(), name
        np.testing.assert_allclose(np.sort(rows["x1"]), np.sort(np.round(want["x1"])), atol=1.0, err_msg=name)
        np.testing.assert_allclose(np.sort(rows["y1"]), np.sort(np.round(want["y1"]) + p), atol=1.0, err_msg=name)
    # the stored (sideways) picture shows the detector no road damage it knows: detection needs the upright one
    sideways = [load_image(f, ignore_orientation=True) for f in ok]
    assert all(im.shape[1] > im.shape[0] for im in sideways)
    assert sum(len(b) for b, _, _ in TemplateDetector().predict(sideways)) == 0


def test_portrait_and_landscape_place_every_hit_alike(drives):
    """The same phone's landscape and portrait frames of one scene: every hit on the same ground point, road and
    chainage, with the same size estimate (before: the portrait frames' focal length was the landscape one / 1.5:
    hits ~2 m ahead placed ~0.6 m short, up to 0.98 m off, sizes ~10 % too large)."""
    root, land, port, cfg = drives
    net = load_roads(TOYAMA / "roads.geojson", cfg)
    placed = {}
    for name, drive in (("land", land), ("port", port)):
        frames, det = detect(drive, root / f"place-{name}", cfg)
        loc = locate(det, net, cfg, sequences=frame_sequences(frames), heading_sources=frame_heading_sources(frames))
        assert loc["located"].all() and len(loc) == 12
        placed[name] = loc.sort_values(["image", "class", "x1"]).reset_index(drop=True)
    a, b = placed["land"], placed["port"]
    assert (a["width"] > a["height"]).all() and (b["width"] < b["height"]).all()
    assert list(a["image"]) == list(b["image"]) and list(a["segment_id"]) == list(b["segment_id"])
    off = np.hypot(a["dmg_x"] - b["dmg_x"], a["dmg_y"] - b["dmg_y"])
    assert off.max() < 0.01, off.max()
    for col in ("distance_ahead_m", "lateral_m", "chainage_m", "est_width_m", "est_length_m"):
        np.testing.assert_allclose(b[col], a[col], rtol=1e-6, atol=1e-3, err_msg=col)
    assert a["distance_ahead_m"].between(1.0, cfg.camera.max_distance_m).all()
