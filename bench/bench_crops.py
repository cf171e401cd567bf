"""Where the crop stage's time goes, and what the options to cut it would cost in privacy. Measured in one run.

The boxes are the sample drive's candidates (both passes, its oracle detections through locate + dedupe, so no
model is needed), each cut from its best frame as ``make_crop`` does. Everything runs on one thread with OpenCV
on one thread (``cv2.setNumThreads(1)``) and is timed in CPU seconds (``time.process_time``), which other load on
a shared machine does not inflate; the pipeline cuts crops on all cores, so its wall time is about this / cores.

Prints, per crop and in all:
  * the split: frame decode (``load_image``), search image (grey, downscale, equalise), each cascade pass
    (frontal face, profile, profile on the mirror, the two plate cascades), the rest of ``make_crop`` (blur, draw,
    JPEG encode) and the report's ``thumbnail``;
  * the current ``make_crop`` end to end (the "before" of any change to it; "after" is the same line once
    changed);
  * options, each against the current detectors on the same search images: CPU and whether the blurred pixels
    inside every crop stay a superset:
      - skip the mirrored profile pass;
      - scan each band of window sizes only over the crop plus a margin of 1.5 window sizes (native
        ``detectMultiScale`` per band with min/maxSize, raw windows grouped once with ``cv2.groupRectangles``);
      - the numpy ``HaarCascade`` (the fallback for an OpenCV without ``CascadeClassifier``) on the frontal pass.

Video frames: ``--frame 1920x1080`` cuts the same crops from the frames scaled to that size (stretched, the boxes
with them) and written as a video's kept frames are (JPEG quality 92), so the split is per candidate on 1080p
frames; ``--boxes full-width`` makes each box span the frame's width at the candidate's height (a long transverse
crack: a ~1920x640 crop, its search window the whole frame, 960x540 after ``privacy.detect_max_side``).

Usage: .venv/bin/python bench/bench_crops.py [--limit N] [--frame WxH] [--boxes as-found|full-width]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TOYAMA = ROOT.parent / "shared" / "sample_drives" / "toyama"
sys.path[:0] = [str(ROOT)]

from detector import crops  # noqa: E402
from detector.config import Config  # noqa: E402

# (cascade, min size, min neighbours, on the mirror) as detect_faces / detect_plates run them
PASSES = {"frontal face": (crops.FACE_CASCADES[0], (20, 20), 4, False),
          "profile face": (crops.FACE_CASCADES[1], (20, 20), 4, False),
          "profile mirror": (crops.FACE_CASCADES[1], (20, 20), 4, True),
          "plate (ru)": (crops.PLATE_CASCADES[0], (36, 12), 3, False),
          "plate (16 st)": (crops.PLATE_CASCADES[1], (48, 12), 3, False)}


def candidates(limit: int | None):
    """(frame path, box) of each candidate's best frame on the sample drive (both passes)."""
    from detector.detections import read_detections_csv
    from detector.frames import scan_drive
    from detector.pipeline import locate_and_dedupe

    cfg, out = Config(), []
    for p in ("p1", "p2"):
        drive = TOYAMA / f"toyama-2026-11-{p}"
        paths = {f.name: Path(f.path) for f in scan_drive(drive, cfg)}
        cands = locate_and_dedupe(read_detections_csv(TOYAMA / f"toyama-2026-11-{p}.oracle.csv"),
                                  TOYAMA / "roads.geojson", cfg)[2]
        out += [(paths[r.best_image], [r.best_x1, r.best_y1, r.best_x2, r.best_y2]) for r in cands.itertuples()]
    return out[:limit]


def as_video_frames(items, size: str, boxes: str, work: Path):
    """``items`` on frames scaled to ``size`` (WxH; stretched, the boxes with them) written as JPEG quality 92 into
    ``work``; ``boxes`` "full-width": each box widened to the frame's width (a long transverse crack)."""
    from detector.frames import load_image

    W, H = (int(v) for v in size.lower().split("x"))
    work.mkdir(parents=True, exist_ok=True)
    out, done = [], {}
    for path, box in items:
        if path not in done:
            img = load_image(path)
            h, w = img.shape[:2]
            dst = work / f"{path.parent.name}_{path.stem}.jpg"
            cv2.imwrite(str(dst), cv2.resize(img, (W, H), interpolation=cv2.INTER_CUBIC),
                        [cv2.IMWRITE_JPEG_QUALITY, 92])
            done[path] = (dst, W / w, H / h)
        dst, sx, sy = done[path]
        x1, y1, x2, y2 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
        if boxes == "full-width":
            x1, x2 = 0.0, W - 1.0
        out.append((dst, [x1, y1, x2, y2]))
    return out


def run_pass(name: str, gray: np.ndarray) -> list:
    casc, size, nb, mirror = PASSES[name]
    if not mirror:
        return list(crops._detector(casc)(gray, size, nb))
    W = gray.shape[1]
    return [(W - x - w, y, w, h) for x, y, w, h in crops._detector(casc)(np.ascontiguousarray(gray[:, ::-1]), size, nb)]


def banded_pass(name: str, gray: np.ndarray, crop: tuple[int, int, int, int], per: int = 3, k: float = 1.5) -> list:
    """The 'scan only near the crop' option: each band of ``per`` pyramid levels over the crop plus k windows."""
    casc, size, nb, mirror = PASSES[name]
    clf = crops._detector(casc).native
    H, W = gray.shape
    g = np.ascontiguousarray(gray[:, ::-1]) if mirror else gray
    cx0, cy0, cx1, cy1 = crop
    if mirror:
        cx0, cx1 = W - cx1, W - cx0
    bw, bh = clf.getOriginalWindowSize()
    sizes, f = [], 1.0
    while round(bw * f) <= W and round(bh * f) <= H:
        if round(bw * f) >= size[0] and round(bh * f) >= size[1]:
            sizes.append((round(bw * f), round(bh * f)))
        f *= 1.1
    raw, i = [], 0
    while i < len(sizes):
        band = sizes[i:i + per]
        mx, my = int(k * band[-1][0]) + 4, int(k * band[-1][1]) + 4
        rx0, ry0, rx1, ry1 = max(0, cx0 - mx), max(0, cy0 - my), min(W, cx1 + mx), min(H, cy1 + my)
        if (rx1 - rx0) * (ry1 - ry0) > 0.8 * W * H:  # nearly all of it: the remaining levels in one call
            rx0, ry0, rx1, ry1, band = 0, 0, W, H, sizes[i:]
        r = clf.detectMultiScale(g[ry0:ry1, rx0:rx1], 1.1, 0, minSize=band[0], maxSize=band[-1])
        raw += [(int(x) + rx0, int(y) + ry0, int(w), int(h)) for x, y, w, h in (r if len(r) else [])]
        i += len(band)
    rs = [tuple(int(v) for v in b) for b in (cv2.groupRectangles(raw, nb, 0.2)[0] if raw else [])]
    return [(W - x - w, y, w, h) for x, y, w, h in rs] if mirror else rs


def blurred_mask(regions: dict[str, list], shape: tuple[int, int], crop: tuple[int, int, int, int]) -> np.ndarray:
    """The crop's pixels make_crop blurs for these regions (search-image coordinates, the crop's window in them)."""
    m = np.zeros(shape, bool)
    for name, rs in regions.items():
        f = 0.15 if "face" in name or "mirror" in name else 0.12
        for r in rs:
            x0, y0, x1, y1 = crops._enlarge(r, f)
            m[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
    x0, y0, x1, y1 = crop
    return m[y0:y1, x0:x1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None, help="at most this many crops")
    ap.add_argument("--frame", default=None, help="WxH: the frames scaled to this size, as a video's frames")
    ap.add_argument("--boxes", default="as-found", choices=["as-found", "full-width"])
    ap.add_argument("--work", default="/tmp/patrol-bench-crops")
    a = ap.parse_args()
    if not TOYAMA.is_dir():
        sys.exit(f"sample drive not found at {TOYAMA}")
    cv2.setNumThreads(1)
    from detector.frames import load_image

    cfg = Config()
    native = crops._detector(crops.FACE_CASCADES[0]).native is not None
    print(f"OpenCV {cv2.__version__}: cascades {'native cv2.CascadeClassifier' if native else 'numpy HaarCascade'}")
    items = candidates(a.limit)
    if a.frame or a.boxes != "as-found":
        first = load_image(items[0][0])
        size = a.frame or f"{first.shape[1]}x{first.shape[0]}"
        items = as_video_frames(items, size, a.boxes, Path(a.work) / f"{size}-{a.boxes}")
        print(f"frames {size} (JPEG 92), boxes {a.boxes}")
    t: dict[str, float] = {}

    def timed(key, fn, *args, **kw):
        c = time.process_time()
        r = fn(*args, **kw)
        t[key] = t.get(key, 0.0) + time.process_time() - c
        return r

    px, lost_mirror, lost_band, shrunk_mirror, shrunk_band = 0, 0, 0, 0, 0
    frame_px, crop_px, region_px = 0, 0, 0
    for path, box in items:
        img = timed("decode frame", load_image, path)  # once a crop, as attach_crops does
        H, W = img.shape[:2]
        crop = crops.crop_region(box, W, H)
        frame_px += W * H
        crop_px += (crop[2] - crop[0]) * (crop[3] - crop[1])
        rx0, ry0, rx1, ry1 = crops.search_region(crop)
        region_px += (min(W, rx1) - max(0, rx0)) * (min(H, ry1) - max(0, ry0))
        gray, s, sx, sy = timed("search image", crops.search_image, img, cfg, crops.search_region(crop))
        px += gray.size
        # the crop window in search-image coordinates
        cw = (int((crop[0] - sx) * s), int((crop[1] - sy) * s), int(np.ceil((crop[2] - sx) * s)),
              int(np.ceil((crop[3] - sy) * s)))
        cur = {n: timed(n, run_pass, n, gray) for n in PASSES}
        data = timed("make_crop (current)", crops.make_crop, img, box, cfg, label="D00 0.80")
        timed("thumbnail", crops.thumbnail, data)
        real, crops.find_privacy_regions = crops.find_privacy_regions, lambda *a: ([], [])
        try:  # the rest of make_crop: cut, blur, draw, encode
            timed("blur, draw, JPEG", crops.make_crop, img, box, cfg, label="D00 0.80")
        finally:
            crops.find_privacy_regions = real
        ref = blurred_mask(cur, gray.shape, cw)
        # option: no mirror pass
        alt = {n: r for n, r in cur.items() if n != "profile mirror"}
        lost_mirror += len(cur["profile mirror"])
        shrunk_mirror += bool((ref & ~blurred_mask(alt, gray.shape, cw)).any())
        # option: banded scan near the crop
        if native:
            band = {n: timed("option: banded " + n, banded_pass, n, gray, cw) for n in PASSES}
            lost_band += sum(len(set(cur[n]) - set(band[n])) for n in PASSES)
            shrunk_band += bool((ref & ~blurred_mask(band, gray.shape, cw)).any())
    for path, box in items[:3]:  # the numpy fallback is slow: three crops
        img = load_image(path)
        gray = crops.search_image(img, cfg, crops.search_region(crops.crop_region(box, *img.shape[1::-1])))[0]
        h = crops.HaarCascade(crops.CASCADE_DIR / crops.FACE_CASCADES[0])
        timed("numpy frontal (3 crops)", h.detect, gray, 1.2, 3, (20, 20), step=2)
        timed("native frontal (3 crops)", run_pass, "frontal face", gray)

    n = len(items)
    split = ["decode frame", "search image", *PASSES]
    total = t["make_crop (current)"] + t["decode frame"] + t["thumbnail"]
    print(f"{n} crops: frames {frame_px / n / 1e3:.0f} kpx, crops {crop_px / n / 1e3:.0f} kpx, search windows "
          f"{region_px / n / 1e3:.0f} kpx, search images {px / n / 1e3:.0f} kpx each (CPU seconds, one thread)")
    for k in split:
        print(f"  {k:<22} {t[k]:7.2f} s  {1e3 * t[k] / n:7.1f} ms/crop  {100 * t[k] / total:5.1f} %")
    for k in ("blur, draw, JPEG", "thumbnail"):
        print(f"  {k:<22} {t[k]:7.2f} s  {1e3 * t[k] / n:7.1f} ms/crop  {100 * t[k] / total:5.1f} %")
    print(f"make_crop (current)      {t['make_crop (current)']:7.2f} s  {1e3 * t['make_crop (current)'] / n:7.1f} ms/crop")
    print(f"a candidate's crop (decode + make_crop + thumbnail) {1e3 * total / n:7.1f} ms")
    print("options (same search images):")
    cas = sum(t[k] for k in PASSES)
    print(f"  no mirror pass:        cascades {cas:6.2f} -> {cas - t['profile mirror']:6.2f} s "
          f"(x{cas / (cas - t['profile mirror']):.2f}); {lost_mirror} face regions lost, "
          f"{shrunk_mirror}/{n} crops with less blurred")
    if native:
        bt = sum(v for k, v in t.items() if k.startswith("option: banded"))
        print(f"  banded scan near crop: cascades {cas:6.2f} -> {bt:6.2f} s (x{cas / bt:.2f}); "
              f"{lost_band} regions not reproduced, {shrunk_band}/{n} crops with less blurred")
    print(f"  numpy HaarCascade (fast mode) frontal: {t['numpy frontal (3 crops)']:.2f} s against native "
          f"{t['native frontal (3 crops)']:.2f} s on 3 crops (x{t['numpy frontal (3 crops)'] / t['native frontal (3 crops)']:.1f})")


if __name__ == "__main__":
    main()
