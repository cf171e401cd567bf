"""Evidence crops (detector.crops): size, clipping, borders, and that privacy hits are really blurred before
the box is drawn. No face or plate photos ship with the project, so blurring is tested with the detectors
monkeypatched; the numpy Haar evaluator is tested on the shipped cascades and synthetic images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detector import crops
from detector.config import Config


@pytest.fixture
def cfg() -> Config:
    return Config()


def scene(h=720, w=1280, seed=0) -> np.ndarray:
    """A textured 'road' image: high local variance everywhere, so a blur is measurable anywhere."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return cv2.GaussianBlur(img, (3, 3), 0)


def sharpness(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def decode(b: bytes) -> np.ndarray:
    assert b[:3] == b"\xff\xd8\xff"
    img = cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


@pytest.fixture
def no_detections(monkeypatch):
    monkeypatch.setattr(crops, "detect_faces", lambda gray: [])
    monkeypatch.setattr(crops, "detect_plates", lambda gray: [])


def test_crop_bounded_and_box_drawn(cfg, no_detections):
    img = scene()
    out = decode(crops.make_crop(img, (400, 300, 1000, 500), cfg, label="D40 0.87", max_side=320))
    assert max(out.shape[:2]) == 320
    b, g, r = (out[..., i].astype(int) for i in range(3))
    yellow = ((r > 170) & (g > 140) & (b < 110)).sum()
    assert yellow > 200  # the box outline


def test_small_box_gets_context_and_is_not_upscaled(cfg, no_detections):
    out = decode(crops.make_crop(scene(), (600, 400, 610, 405), cfg))
    assert 64 <= min(out.shape[:2]) and max(out.shape[:2]) <= 480


@pytest.mark.parametrize("box", [(0, 0, 50, 40), (1240, 690, 1280, 720), (-200, -100, 60, 50), (1200, 600, 5000, 9000),
                                 (-500, -500, -100, -100), (3000, 3000, 4000, 4000), (np.nan, 10, 20, 30), (900, 500, 800, 400)])
def test_border_and_outside_boxes_are_clipped(cfg, no_detections, box):
    out = decode(crops.make_crop(scene(), box, cfg, label="D00"))
    assert out.shape[0] >= 16 and out.shape[1] >= 16 and max(out.shape[:2]) <= 480


def test_gray_and_bgra_input(cfg, no_detections):
    img = scene(200, 300)
    decode(crops.make_crop(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), (10, 10, 100, 100), cfg))
    decode(crops.make_crop(cv2.cvtColor(img, cv2.COLOR_BGR2BGRA), (10, 10, 100, 100), cfg, label="ポットホール"))


def test_blur_privacy_blurs_hits_only(cfg, monkeypatch):
    img = scene(480, 640)
    monkeypatch.setattr(crops, "detect_faces", lambda gray: [(100, 100, 60, 60)])
    monkeypatch.setattr(crops, "detect_plates", lambda gray: [(400, 300, 120, 30)])
    out, nf, npl = crops.blur_privacy(img, cfg)
    assert (nf, npl) == (1, 1)
    assert sharpness(out[100:160, 100:160]) < 0.05 * sharpness(img[100:160, 100:160])
    assert sharpness(out[300:330, 400:520]) < 0.05 * sharpness(img[300:330, 400:520])
    assert np.array_equal(out[200:280, 200:380], img[200:280, 200:380])  # elsewhere untouched
    assert np.array_equal(img, scene(480, 640))  # input not modified


def test_blur_privacy_switched_off(monkeypatch):
    cfg = Config()
    cfg.privacy.blur_faces = False
    cfg.privacy.blur_plates = False
    monkeypatch.setattr(crops, "detect_faces", lambda gray: pytest.fail("face detector must not run"))
    out, nf, npl = crops.blur_privacy(scene(100, 100), cfg)
    assert (nf, npl) == (0, 0)


def test_crop_blurs_plate_at_crop_edge_before_drawing(cfg, monkeypatch):
    """A plate half outside the crop is still found (the search region is twice the crop) and blurred in
    the crop; the box is drawn afterwards, so its outline stays crisp."""
    img = scene()
    box = (500, 300, 700, 400)
    x0, y0, x1, y1 = crops.crop_region(box, 1280, 720)
    sx0, sy0 = x0 - (x1 - x0) // 2, y0 - (y1 - y0) // 2  # the search region's corner
    plate = (x0 - 90, y0 + 75, 160, 40)  # image coordinates, straddling the crop's left edge
    shapes = []

    def plates(gray):
        shapes.append(gray.shape)
        return [(plate[0] - sx0, plate[1] - sy0, plate[2], plate[3])]  # search-region coordinates

    monkeypatch.setattr(crops, "detect_faces", lambda gray: [])
    monkeypatch.setattr(crops, "detect_plates", plates)
    blurred = decode(crops.make_crop(img, box, cfg, max_side=2000, quality=100))
    assert shapes and shapes[0][1] == 2 * (x1 - x0)  # searched a region wider than the crop
    monkeypatch.setattr(crops, "detect_plates", lambda gray: [])
    ref = decode(crops.make_crop(img, box, cfg, max_side=2000, quality=100))
    py0, py1, px1 = plate[1] - y0, plate[1] - y0 + plate[3], plate[0] + plate[2] - x0
    assert px1 > 60
    cols = slice(0, 40)  # left of the damage box outline, which is drawn over the blur
    assert sharpness(blurred[py0:py1, cols]) < 0.1 * sharpness(ref[py0:py1, cols])
    # the damage box outline is drawn after the blur and is identical in both
    bx0, by0 = box[0] - x0, box[1] - y0
    assert np.abs(blurred[by0 - 2:by0 + 3, bx0 + 20:bx0 + 120].astype(int) - ref[by0 - 2:by0 + 3, bx0 + 20:bx0 + 120]).max() < 30


def test_a_thin_box_gets_the_lane_around_it():
    """A transverse crack's box is a thin strip (on the sample drive a crop came out 480x76): the crop window keeps
    at most 3:1, so the crew sees more of the lane around the damage; at the image's edge it moves inside, not shrinks."""
    x0, y0, x1, y1 = crops.crop_region((400, 500, 800, 530), 1280, 720)  # 400x30 box
    assert (x1 - x0) / (y1 - y0) <= 3.0 + 1e-6 and x0 <= 400 and x1 >= 800 and y0 <= 500 and y1 >= 530
    x0, y0, x1, y1 = crops.crop_region((1100, 690, 1280, 720), 1280, 720)  # at the bottom-right corner
    assert (x1, y1) == (1280, 720) and (x1 - x0) / (y1 - y0) <= 3.0 + 1e-6 and y1 - y0 >= 90
    x0, y0, x1, y1 = crops.crop_region((500, 300, 700, 400), 1280, 720)  # 2:1: as before
    assert (x0, y0, x1, y1) == (450, 275, 750, 425)


def test_blur_outside_box(monkeypatch):
    cfg = Config()
    cfg.privacy.blur_outside_box = True
    monkeypatch.setattr(crops, "detect_faces", lambda gray: [])
    monkeypatch.setattr(crops, "detect_plates", lambda gray: [])
    img = scene()
    box = (500, 300, 700, 400)
    out = decode(crops.make_crop(img, box, cfg, max_side=2000, quality=100))
    x0, y0, _, _ = crops.crop_region(box, 1280, 720)
    inside = out[300 - y0 + 15:400 - y0 - 15, 500 - x0 + 15:700 - x0 - 15]
    outside = out[0:15, 0:40]  # clear of the box outline
    assert sharpness(outside) < 0.1 * sharpness(inside)


def test_shipped_cascades_parse():
    for name in crops.FACE_CASCADES + crops.PLATE_CASCADES:
        c = crops.HaarCascade(crops.CASCADE_DIR / name)
        assert c.stages and c.features and c.w >= 20 and c.h >= 16
    assert len(crops.HaarCascade(crops.CASCADE_DIR / crops.FACE_CASCADES[0]).stages) == 25


def test_numpy_haar_on_plain_images_finds_nothing():
    casc = crops.HaarCascade(crops.CASCADE_DIR / crops.PLATE_CASCADES[0])
    assert casc.detect(np.full((120, 200), 128, np.uint8)) == []
    assert casc.detect(np.zeros((10, 10), np.uint8)) == []  # smaller than the window


def test_real_detectors_run_on_a_frame(cfg):
    """The actual detectors (native OpenCV or the numpy evaluator) run end to end on a synthetic frame with
    a plate-like pattern; whether the Russian-plate cascade fires on it is not asserted (see the docstring)."""
    img = scene(240, 320)
    cv2.rectangle(img, (100, 150), (220, 180), (240, 240, 240), -1)
    cv2.putText(img, "A123BC77", (104, 174), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (10, 10, 10), 2)
    out, nf, npl = crops.blur_privacy(img, cfg)
    assert out.shape == img.shape and nf >= 0 and npl >= 0


def test_group_rectangles():
    rs = [(10, 10, 20, 20), (11, 10, 20, 20), (10, 11, 20, 21), (12, 12, 20, 20), (100, 100, 20, 20)]
    assert crops.group_rectangles(rs, 3) == [(11, 11, 20, 20)]
    assert crops.group_rectangles(rs, 0) == [(11, 11, 20, 20), (100, 100, 20, 20)]


def test_crops_are_reused_by_what_decides_their_pixels_not_by_candidate_id(toyama, tmp_path, monkeypatch):
    """Another road network renames the segments, so every candidate id changes; the crops do not (same frame
    file, box, label, privacy settings) and are reused from the last run's files, not cut again. A frame file
    replaced under its name is cut again. Real data: the sample drive's oracle boxes and frames."""
    import json

    from detector.detections import read_detections_csv
    from detector.frames import scan_drive
    from detector.pipeline import attach_crops, locate_and_dedupe

    cfg = Config()
    det = read_detections_csv(toyama / "toyama-2026-11-p1.oracle.csv")
    frames = scan_drive(toyama / "toyama-2026-11-p1", cfg)
    roads = json.loads((toyama / "roads.geojson").read_text(encoding="utf-8"))
    for f in roads["features"]:
        f["properties"]["segment_id"] = f"other-{f['properties']['segment_id']}"
    (tmp_path / "other.geojson").write_text(json.dumps(roads), encoding="utf-8")
    out = tmp_path / "out"
    (out / ".work").mkdir(parents=True)
    first = attach_crops(locate_and_dedupe(det, toyama / "roads.geojson", cfg)[2], frames, cfg, out)
    cut = []
    real = crops.make_crop
    monkeypatch.setattr(crops, "make_crop", lambda *a, **k: cut.append(1) or real(*a, **k))
    second = attach_crops(locate_and_dedupe(det, tmp_path / "other.geojson", cfg)[2], frames, cfg, out)
    assert len(first) == len(second) >= 10
    assert not set(first["candidate_id"]) & set(second["candidate_id"])  # every id changed
    assert cut == []  # ... and no crop was cut again
    by_box = lambda df: {(r.best_image, r.best_x1, r.best_y1): r.crop_jpeg for r in df.itertuples()}
    assert by_box(first) == by_box(second)
    assert all((out / "crops" / f"{c}.jpg").read_bytes() == j for c, j in zip(second["candidate_id"], second["crop_jpeg"]))
    # a frame replaced under its name (another size or mtime) is cut again
    img = next(f for f in frames if f.name == second["best_image"].iloc[0])
    monkeypatch.setattr(img, "path", tmp_path / img.name)
    (tmp_path / img.name).write_bytes(toyama.joinpath("toyama-2026-11-p1", img.name).read_bytes() + b"\0")
    attach_crops(locate_and_dedupe(det, tmp_path / "other.geojson", cfg)[2], frames, cfg, out)
    assert len(cut) == (second["best_image"] == img.name).sum()


def test_a_crop_that_cannot_be_cut_again_leaves_no_older_photo_under_its_id(toyama, tmp_path, monkeypatch):
    """Privacy settings made stricter, and this time a frame cannot be cut (it went away, or does not decode):
    the candidate has no crop, and crops/<id>.jpg must not still hold the last run's photo (cut with the laxer
    settings, or another candidate's when ids moved): the repair list's photo column and prune_crops go by the
    file, so the crew would be shown that older, less blurred photo."""
    from detector.detections import read_detections_csv
    from detector.export import write_repair_list
    from detector.frames import scan_drive
    from detector.pipeline import attach_crops, locate_and_dedupe

    cfg = Config()
    det = read_detections_csv(toyama / "toyama-2026-11-p1.oracle.csv")
    frames = scan_drive(toyama / "toyama-2026-11-p1", cfg)
    cands = locate_and_dedupe(det, toyama / "roads.geojson", cfg)[2]
    out = tmp_path / "out"
    (out / ".work").mkdir(parents=True)
    first = attach_crops(cands, frames, cfg, out)
    assert first["crop_jpeg"].notna().all()
    stricter = cfg.model_copy(deep=True)
    stricter.privacy.blur_outside_box = not cfg.privacy.blur_outside_box

    def fails(*a, **k):
        raise ValueError("cannot cut")

    monkeypatch.setattr(crops, "make_crop", fails)
    second = attach_crops(cands, frames, stricter, out)
    assert second["crop_jpeg"].isna().all()
    assert not any((out / "crops" / f"{c}.jpg").exists() for c in second["candidate_id"])
    write_repair_list(second, out / "repair_list.csv")
    import csv

    rows = list(csv.DictReader((out / "repair_list.csv").open(encoding="utf-8-sig")))
    assert rows and all(r["photo"] == "" for r in rows)


# find_privacy_regions on real images, as recorded with the native OpenCV 4 cascades (faces, plates; image pixels).
# A change to the detectors or to what they scan (for speed, say) must still blur every one of these pixels.
PINNED_REGIONS = [
    ("toyama", "toyama-2026-11-p1/IMG_20261120_090003_0003.jpg", None, False,
     [(134, 65, 88, 88), (376, 87, 117, 117), (298, 104, 111, 111)], []),
    ("toyama", "toyama-2026-11-p1/IMG_20261120_090141_0071.jpg", None, False, [(141, 310, 29, 29)], []),
    ("toyama", "toyama-2026-11-p1/IMG_20261120_090024_0024.jpg", None, False, [], [(328, 407, 190, 48)]),
    ("toyama", "toyama-2026-11-p1/IMG_20261120_090151_0081.jpg", None, False, [],
     [(187, 561, 98, 33), (262, 569, 70, 23), (127, 557, 87, 29), (280, 570, 78, 26), (107, 554, 132, 44)]),
    ("toyama", "toyama-2026-11-p2/IMG_20261127_090143_0073.jpg", None, False, [(510, 63, 65, 65)],
     [(126, 556, 92, 31), (180, 560, 85, 28), (225, 564, 85, 28), (48, 546, 144, 48)]),
    # make_crop's search window for a box (150, 480, 300, 540) on the road
    ("toyama", "toyama-2026-11-p2/IMG_20261127_090143_0073.jpg", (0, 420, 449, 600), False, [],
     [(283, 572, 68, 22), (136, 558, 85, 28), (175, 560, 84, 28), (208, 561, 85, 28), (230, 565, 77, 26),
      (50, 546, 141, 47)]),
    # 1600x900: the search image is downscaled to detect_max_side (960)
    ("exif", "45-gps_ifd.jpg", None, False, [(430, 285, 114, 114), (818, 558, 167, 167)], [(438, 696, 134, 45)]),
    # a profile face (found by the profile cascade only) and the same photo mirrored (found by the mirror pass only)
    ("exif", "no_exif.jpg", None, False, [(198, 14, 49, 49)], []),
    ("exif", "no_exif.jpg", None, True, [(75, 14, 49, 49)], []),
]


def blurred_pixels(shape, faces, plates) -> np.ndarray:
    """The pixels blur_privacy obscures for these regions (the same enlargement)."""
    m = np.zeros(shape[:2], bool)
    for rs, f in ((faces, 0.15), (plates, 0.12)):
        for r in rs:
            x0, y0, x1, y1 = crops._enlarge(r, f)
            m[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
    return m


@pytest.mark.parametrize("where,name,region,mirror,faces,plates", PINNED_REGIONS,
                         ids=[f"{n.rsplit('/', 1)[-1]}{'-window' if r else ''}{'-mirrored' if m else ''}"
                              for _, n, r, m, *_ in PINNED_REGIONS])
def test_privacy_regions_on_real_images_stay_blurred(cfg, toyama, exif_dir, where, name, region, mirror, faces, plates):
    """Real sample-drive frames and photos: every pixel the recorded detections blur is still blurred (the same
    regions, or more). Pins the privacy blur against changes made for speed: skipping the mirrored profile pass
    loses the mirrored photo's face, scanning only part of the window or a coarser pyramid loses others."""
    if getattr(cv2, "CascadeClassifier", None) is None:
        pytest.skip("recorded with OpenCV 4's native cascades; this OpenCV has no cv2.CascadeClassifier")
    img = cv2.imread(str((toyama if where == "toyama" else exif_dir) / name))
    assert img is not None
    if mirror:
        img = np.ascontiguousarray(img[:, ::-1])
    got_faces, got_plates = crops.find_privacy_regions(img, cfg, region)
    want = blurred_pixels(img.shape, faces, plates)
    got = blurred_pixels(img.shape, got_faces, got_plates)
    missed = want & ~got
    assert not missed.any(), f"{name}: {missed.sum()} pixels no longer blurred; found {got_faces}, {got_plates}"
