"""Each photo's own field of view from its EXIF focal length (frames.csv ``hfov_deg``), used by locate.

A phone on its ultra-wide lens (13 mm equivalent, ~100°), a dashcam (120-140°) or a 2x tele sees another field of
view than ``camera.hfov_deg``; the EXIF FocalLengthIn35mmFilm (times DigitalZoomRatio above 1) says which. Real data:
the files of shared/data/exif that carry the tags (values read with exifread by hand), and sample-drive frames
(square, 512-640 px, no focal length of their own) given one by rewriting their EXIF block only.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import TiffImagePlugin

from badinputs import rewrite_gps
from conftest import ROOT, TOYAMA, need
from detector.config import CameraSpec, load_config
from detector.detections import read_detections_csv
from detector.frames import (hfov_from_focal35, read_exif, read_frames_csv, scan_drive, write_frames_csv)
from detector.locate import frame_heading_sources, frame_hfovs, frame_sequences, ground_from_pixel, locate
from detector.roads import load_roads

R = TiffImagePlugin.IFDRational
P1 = "toyama-2026-11-p1"
N_FRAMES = 10  # IMG_…_0000 .. _0009: 12 oracle boxes on 6 frames
# Exif IFD tags
FOCAL, ZOOM, FOCAL35 = 0x920A, 0xA404, 0xA405
PLANE_X, PLANE_Y, PLANE_UNIT = 0xA20E, 0xA20F, 0xA210


def _hfov(f35: float, w: float, h: float) -> float:
    """The README's formula, written out: diagonal FOV from the 43.27 mm diagonal, the long side's share of it."""
    half_diag = math.hypot(36, 24) / (2 * f35)
    return math.degrees(2 * math.atan(half_diag * max(w, h) / math.hypot(w, h)))


# name -> the 35 mm equivalent focal length read (digital zoom applied), None: none usable
FOCAL35_OF = {
    "DSCN0010.jpg": 112.0,  # Nikon P6000; DigitalZoomRatio 0 = no digital zoom
    "DSCN0021.jpg": 77.0,
    "IMG_5195.HEIC": 26.0,  # iPhone 11 Pro Max main lens (HEIC: EXIF through pillow-heif)
    "Kodak_CX7530.jpg": 102.0,  # DigitalZoomRatio 0
    "exiftool-Apple.jpg": 28.0,  # iPhone 7
    "exiftool-GoPro.jpg": 15.0,  # DigitalZoomRatio 1: none
    "exiftool-Google.jpg": 48.0,  # Pixel 8 Pro: 24 mm lens, DigitalZoomRatio 2
    "pillow-empty_gps_ifd.jpg": 26.0,
    # FocalLength 135 with FocalPlaneX/YResolution in inches: for ExifImageWidth 100 px (the photo was resized, its
    # plane resolution is still the camera's 4438 px/inch) a sensor 0.6 mm across: not derived
    "Canon_40D.jpg": None,
    "exiftool-GPS.jpg": None,  # FocalLength 0 (FujiFilm S1 Pro), plane resolution present
    "45-gps_ifd.jpg": None,  # FocalLength 59.5 alone: no sensor size, no 35 mm equivalent
    "67-0_length_string.jpg": None, "exiftool-InfiRay.jpg": None, "no_exif.jpg": None, "pillow-exif_gps.jpg": None,
    "pillow-exif_gps_zero_denominator.jpg": None, "portrait_4.jpg": None,
}


def test_field_of_view_formula():
    assert hfov_from_focal35(26, 4032, 3024) == pytest.approx(67.30, abs=0.01)  # a phone's main lens, 4:3
    assert hfov_from_focal35(13, 4032, 3024) == pytest.approx(106.18, abs=0.01)  # its ultra-wide
    assert hfov_from_focal35(13, 3024, 4032) == hfov_from_focal35(13, 4032, 3024)  # across the long side, upright
    assert hfov_from_focal35(26, 1920, 1080) == pytest.approx(_hfov(26, 16, 9), abs=1e-9)
    assert hfov_from_focal35(52, 4000, 3000) == pytest.approx(_hfov(52, 4, 3), abs=1e-9)
    for bad in (0, 1, 1.5, 2001, -26, math.nan, None):  # 1.5 mm: wider than 170°
        assert math.isnan(hfov_from_focal35(bad, 4032, 3024)), bad
    assert math.isnan(hfov_from_focal35(26, 0, 3024))
    got = hfov_from_focal35(np.array([13.0, 26.0, 0.0]), np.array([4, 4, 4]), np.array([3, 3, 3]))
    np.testing.assert_allclose(got, [_hfov(13, 4, 3), _hfov(26, 4, 3), np.nan])


@pytest.mark.parametrize("name", sorted(FOCAL35_OF))
def test_focal_length_of_real_files(exif_dir, name):
    assert read_exif(exif_dir / name).focal35 == FOCAL35_OF[name]


def test_scan_gives_hfov_per_frame_and_frames_csv_keeps_it(exif_dir, tmp_path):
    frames = {f.name: f for f in scan_drive(exif_dir, load_config(ROOT / "configs" / "default.yaml"))}
    assert frames["DSCN0010.jpg"].hfov_deg == pytest.approx(_hfov(112, 640, 480), abs=1e-9)  # 17.57°
    assert frames["DSCN0021.jpg"].hfov_deg == pytest.approx(_hfov(77, 640, 480), abs=1e-9)
    assert frames["Kodak_CX7530.jpg"].hfov_deg == pytest.approx(_hfov(102, 100, 78), abs=1e-9)
    # the HEIC was cropped in Photos (2566x3313 shown of the 4032x3024 the camera recorded, EXIF kept): its field of
    # view and optical axis are not the camera's; the mounting's hfov_deg is used
    assert math.isnan(frames["IMG_5195.HEIC"].hfov_deg) and frames["IMG_5195.HEIC"].status == "ok"
    for name in ("exiftool-GPS.jpg", "67-0_length_string.jpg", "Canon_40D.jpg", "no_exif.jpg"):
        assert math.isnan(frames[name].hfov_deg), name
    write_frames_csv(frames.values(), tmp_path / "frames.csv")
    back = {f.name: f for f in read_frames_csv(tmp_path / "frames.csv")}
    assert back["DSCN0010.jpg"].hfov_deg == pytest.approx(17.57, abs=0.005)
    assert math.isnan(back["IMG_5195.HEIC"].hfov_deg)
    # a frames.csv of an older patrol (no hfov_deg column) still reads: every frame on camera.hfov_deg
    lines = (tmp_path / "frames.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    col = header.index("hfov_deg")
    old = "\n".join(",".join(c for i, c in enumerate(ln.split(",")) if i != col) for ln in lines)
    (tmp_path / "old.csv").write_text(old + "\n", encoding="utf-8")
    olds = read_frames_csv(tmp_path / "old.csv")
    assert len(olds) == len(back) and all(math.isnan(f.hfov_deg) for f in olds)
    assert frame_hfovs(olds) == {}


def _sources() -> list[Path]:
    return sorted(need(TOYAMA / P1).glob("IMG_2026*.jpg"))[:N_FRAMES]


def _drive(root: Path, exif_edit) -> Path:
    """Pass 1's first frames (same pixels, GPS, time) with their Exif IFD edited, in a folder named as pass 1."""
    d = root / P1
    for src in _sources():
        rewrite_gps(src, d / src.name, lambda gps: None, exif_edit)
    return d


def test_zero_denominator_or_absurd_focal_is_ignored_and_the_frame_kept(tmp_path):
    edits = {
        "zero_den": lambda ifd: ifd.update({FOCAL: R(5, 0)}),
        "zero_over_zero": lambda ifd: ifd.update({FOCAL: R(0, 0), PLANE_X: R(0, 0), PLANE_Y: R(0, 0), PLANE_UNIT: 2}),
        "f35_zero": lambda ifd: ifd.update({FOCAL35: 0, FOCAL: R(0, 1)}),
        "f35_one": lambda ifd: ifd.update({FOCAL35: 1}),
        "f35_huge": lambda ifd: ifd.update({FOCAL35: 65535}),
        "plane_den0": lambda ifd: ifd.update({FOCAL: R(47, 10), PLANE_X: R(4000, 0), PLANE_UNIT: 2,
                                              0xA002: 4000, 0xA003: 3000}),
    }
    base = [f for f in scan_drive(need(TOYAMA / P1), load_config(ROOT / "configs" / "toyama-city.yaml"))
            if f.name in {p.name for p in _sources()}]
    for what, edit in edits.items():
        frames = [f for f in scan_drive(_drive(tmp_path / what, edit), load_config(ROOT / "configs" / "toyama-city.yaml"))]
        assert [(f.name, f.status, f.reason, f.lat, f.lon, f.time) for f in frames] == \
            [(f.name, f.status, f.reason, f.lat, f.lon, f.time) for f in base], what
        assert all(math.isnan(f.hfov_deg) for f in frames), what
    # a zero-denominator digital zoom is no zoom: the lens's own 35 mm equivalent is used
    frames = scan_drive(_drive(tmp_path / "zoom0", lambda ifd: ifd.update({FOCAL35: 26, ZOOM: R(0, 0)})))
    assert {round(f.hfov_deg, 9) for f in frames} == {round(_hfov(26, 1, 1), 9)}
    frames = scan_drive(_drive(tmp_path / "zoom2", lambda ifd: ifd.update({FOCAL35: 26, ZOOM: R(2, 1)})))
    assert {round(f.hfov_deg, 9) for f in frames} == {round(_hfov(52, 1, 1), 9)}
    # FocalLength over a sensor size the plane resolution gives (4.7 mm on a square 3000x3000 crop 4.2 mm across)
    frames = scan_drive(_drive(tmp_path / "plane", lambda ifd: ifd.update(
        {FOCAL: R(47, 10), PLANE_X: R(3000 * 254, 42), PLANE_Y: R(3000 * 254, 42), PLANE_UNIT: 2,
         0xA002: 3000, 0xA003: 3000})))
    f35 = 4.7 * math.hypot(36, 24) / math.hypot(4.2, 4.2)  # diagonal 5.9 mm: a 34 mm equivalent
    assert {round(f.hfov_deg, 9) for f in frames} == {round(_hfov(f35, 1, 1), 9)}
    # ... but not when the aspect ratio is not the recorded one (ExifImageWidth/Length 4000x3000, the frames square)
    frames = scan_drive(_drive(tmp_path / "cropped", lambda ifd: ifd.update({FOCAL35: 26, 0xA002: 4000, 0xA003: 3000})))
    assert all(math.isnan(f.hfov_deg) for f in frames)


def test_ground_model_uses_the_frame_field_of_view():
    cam = CameraSpec(height_m=1.3, pitch_deg=8.0, hfov_deg=66.0, max_distance_m=30.0)
    u, v, w, h = np.array([500.0, 500.0, 500.0]), np.array([560.0] * 3), np.array([600] * 3), np.array([600] * 3)
    d0, l0 = ground_from_pixel(u, v, w, h, cam)
    d, l = ground_from_pixel(u, v, w, h, cam, np.array([np.nan, 66.0, 100.0]))
    assert d[0] == d0[0] and l[0] == l0[0]  # NaN: the mounting's, bit for bit
    assert l[1] == pytest.approx(l0[1], rel=1e-12) and d[1] == pytest.approx(d0[1], rel=1e-12)
    assert l[2] > l0[2] and d[2] < d0[2]  # a wider lens: the same pixel lies more to the side, nearer


@pytest.fixture(scope="module")
def placed(tmp_path_factory):
    """Pass 1's oracle boxes on its first frames located as seen through a 13 mm (ultra-wide) and a 26 mm lens, and
    with camera.hfov_from_exif off, each from frames scanned from the rewritten photos (through frames.csv)."""
    root = tmp_path_factory.mktemp("focal")
    cfg = load_config(ROOT / "configs" / "toyama-city.yaml")
    net = load_roads(TOYAMA / "roads.geojson", cfg)
    det = read_detections_csv(need(TOYAMA / f"{P1}.oracle.csv"), drive=P1)
    det = det.filter(np.isin(det.image, [p.name for p in _sources()]))
    out = {}
    for label, f35 in (("13", 13), ("26", 26), ("none", None)):
        drive = _drive(root / label, (lambda ifd, f35=f35: ifd.update({FOCAL35: f35})) if f35 else (lambda ifd: None))
        write_frames_csv(scan_drive(drive, cfg), root / f"{label}.csv")
        frames = read_frames_csv(root / f"{label}.csv")
        for off, c in ((False, cfg), (True, cfg.model_copy(update={"camera": cfg.camera.model_copy(
                update={"hfov_from_exif": False})}))):
            loc = locate(det, net, c, sequences=frame_sequences(frames), heading_sources=frame_heading_sources(frames),
                         hfovs=frame_hfovs(frames))
            out[label + ("-off" if off else "")] = loc.sort_values("obs_id").reset_index(drop=True)
    out["bare"] = locate(det, net, cfg).sort_values("obs_id").reset_index(drop=True)  # no frames at all
    return out


def test_ultra_wide_frame_places_a_damage_further_to_the_side(placed):
    wide, main = placed["13"], placed["26"]
    assert len(wide) == len(main) == 12 and wide["located"].all()
    near = (wide["distance_ahead_m"] < 30.0) & (main["distance_ahead_m"] < 30.0)  # neither at the distance cap
    off_centre = (np.abs((wide["x1"] + wide["x2"]) / 2 - wide["width"] / 2) > 5)
    sel = near & off_centre
    assert sel.sum() >= 8
    lw, lm = np.abs(wide["lateral_m"][sel]), np.abs(main["lateral_m"][sel])
    assert (lw > 1.05 * lm).all() and (lw - lm).max() > 0.3, (lw, lm)  # 2.15 m to the side, not 1.71 m
    assert (np.sign(wide["lateral_m"][sel]) == np.sign(main["lateral_m"][sel])).all()
    assert (wide["distance_ahead_m"][near] < main["distance_ahead_m"][near]).all()  # and nearer: a wider lens
    moved = np.hypot(wide["dmg_x"] - main["dmg_x"], wide["dmg_y"] - main["dmg_y"])
    assert moved.max() > 0.5, moved.max()
    assert (wide["est_width_m"][sel] > main["est_width_m"][sel]).all()


def test_frames_without_focal_or_switch_off_use_camera_hfov(placed):
    bare = placed["bare"]
    for label in ("none", "none-off", "13-off", "26-off"):
        got = placed[label]
        for col in ("dmg_x", "dmg_y", "distance_ahead_m", "lateral_m", "est_width_m", "est_length_m", "segment_id"):
            np.testing.assert_array_equal(got[col].to_numpy(), bare[col].to_numpy(), err_msg=f"{label} {col}")
    assert not np.allclose(placed["26"]["lateral_m"], bare["lateral_m"])  # 60.9° across a square frame, not 66°


@pytest.mark.parametrize("name, edit, focal35", [
    # an iPhone writes the digital zoom into FocalLengthIn35mmFilm already (iPhone SE at 1.951x: 55 for its 28 mm,
    # Hugin bug 2064625): not multiplied again
    ("exiftool-Apple.jpg", {FOCAL35: 55, ZOOM: R(1951, 1000)}, 55),
    # an iPhone app capturing at 640x480 writes 177 mm for the 3.99 mm lens (Apple developer forum 745938): a crop
    # factor of 44 is no camera's; neither tag is trusted
    ("exiftool-Apple.jpg", {FOCAL35: 177}, None),
    ("exiftool-Apple.jpg", {}, 28),  # the file as it is
    # a Pixel's 2x (in-sensor zoom) keeps the lens's 24 mm: multiplied
    ("exiftool-Google.jpg", {}, 48),
    ("exiftool-Google.jpg", {FOCAL35: 240}, None),  # 240 over 6.9 mm
])
def test_digital_zoom_and_a_focal_length_contradicting_the_lens(exif_dir, tmp_path, name, edit, focal35):
    src = exif_dir / name
    dst = rewrite_gps(src, tmp_path / name, lambda gps: None, lambda ifd: ifd.update(edit))
    got = read_exif(dst).focal35
    assert (got is None) if focal35 is None else got == pytest.approx(focal35), got
