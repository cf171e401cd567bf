"""Where the look thresholds (frames.look_*) fall, on real frames, and what measuring a frame's look costs.

    python bench/bench_look.py [--rdd N] [--no-detector]

Prints the percentiles of brightness, clipped share and sharpness (detector/look.py) on the sample drive's frames
(../shared/sample_drives/toyama: every one should pass), on the RDD images (../shared/data/rdd: nearly all should),
and on the sample frames degraded with OpenCV (darkened by gamma and gain: dusk, night; brightened into clipping:
low sun; blurred: motion blur, a wet lens), with the share of each set the default config calls poor and the share of the detector's hits on the originals
it still finds on the degraded frames (where a frame stops showing damage); then the cost
of measuring one frame at 512 px, 1920x1080 and 4032x3024, against the time to decode it.
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detector.config import Config  # noqa: E402
from detector.look import look_verdict, measure_look  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"


def darken(img, gain, gamma):
    x = (img.astype(np.float32) / 255.0) ** gamma * gain
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def motion(img, k):
    ker = np.zeros((k, k), np.float32)
    ker[k // 2, :] = 1.0 / k
    return cv2.filter2D(img, -1, ker)


DEGRADE = {
    "dusk (gamma 2.2, gain 0.5)": lambda im: darken(im, 0.5, 2.2),
    "night (gamma 2.5, gain 0.25)": lambda im: darken(im, 0.25, 2.5),
    "dim (gain 0.6)": lambda im: darken(im, 0.6, 1.0),
    "low sun (gain 1.8)": lambda im: darken(im, 1.8, 1.0),
    "low sun (gain 2.5)": lambda im: darken(im, 2.5, 1.0),
    "gauss blur s=1.5": lambda im: cv2.GaussianBlur(im, (0, 0), 1.5),
    "gauss blur s=3 (wet lens)": lambda im: cv2.GaussianBlur(im, (0, 0), 3),
    "motion blur 9 px": lambda im: motion(im, 9),
    "motion blur 21 px": lambda im: motion(im, 21),
    "jpeg q=30 (not poor)": lambda im: cv2.imdecode(cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, 30])[1], 1),
}


def kept(det, imgs, ref):
    """The share of the reference hits (the detector on the original frames) found again on ``imgs``: a box of the
    same class overlapping it (IoU 0.3)."""
    if det is None:
        return None
    n = k = 0
    for p0, p1 in zip(ref, det.predict(imgs)):
        for b, c in zip(p0[0], p0[2]):
            n += 1
            for b1, c1 in zip(p1[0], p1[2]):
                ix = max(0.0, min(b[2], b1[2]) - max(b[0], b1[0])) * max(0.0, min(b[3], b1[3]) - max(b[1], b1[1]))
                u = (b[2] - b[0]) * (b[3] - b[1]) + (b1[2] - b1[0]) * (b1[3] - b1[1]) - ix
                if c1 == c and u > 0 and ix / u >= 0.3:
                    k += 1
                    break
    return k / max(n, 1)


def table(name, imgs, spec, det=None, ref=None):
    m = np.array([measure_look(im) for im in imgs], float)
    poor = [look_verdict(*r, spec) for r in m]
    q = [1, 5, 50, 95, 99]
    bad = sum(bool(p) for p in poor)
    words = {}
    for p in poor:
        for w in filter(None, p.split("+")):
            words[w] = words.get(w, 0) + 1
    kp = kept(det, imgs, ref) if ref is not None else None
    print(f"{name}: {len(imgs)} frames, poor {bad} ({100 * bad / max(1, len(imgs)):.1f}%) {words or ''}"
          + (f"; the detector finds {kp:.0%} of its hits on the originals again" if kp is not None else ""))
    for j, col in enumerate(("brightness", "clipped", "sharpness")):
        print(f"   {col:<10} " + "  ".join(f"p{k}={v:.3f}" if col == "clipped" else f"p{k}={v:.1f}"
                                           for k, v in zip(q, np.percentile(m[:, j], q))))
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rdd", type=int, default=0, help="RDD images to measure (0: all)")
    ap.add_argument("--no-detector", action="store_true", help="skip the hits kept on degraded frames")
    a = ap.parse_args()
    spec = Config().frames
    print(f"thresholds: look_min_brightness {spec.look_min_brightness}, look_max_clipped {spec.look_max_clipped}, "
          f"look_min_sharpness {spec.look_min_sharpness}")
    sample = sorted(glob.glob(str(SHARED / "sample_drives/toyama/*/*.jpg")))
    imgs = [im for p in sample if (im := cv2.imread(p)) is not None]  # (the drive holds broken files)
    det = ref = None
    if not a.no_detector:
        from detector.infer import default_weights, load_detector

        det = load_detector(default_weights(), Config())
        ref = det.predict(imgs)
        print(f"detector {default_weights().name}: {sum(len(r[0]) for r in ref)} hits on the sample frames")
    table("sample drive toyama", imgs, spec)
    rdd = sorted(glob.glob(str(SHARED / "data/rdd/images/*/*.jpg")))
    if a.rdd:
        rdd = rdd[:: max(1, len(rdd) // a.rdd)][: a.rdd]
    table("RDD images", [im for p in rdd if (im := cv2.imread(p)) is not None], spec)
    for name, f in DEGRADE.items():
        table(f"sample drive, {name}", [f(im) for im in imgs], spec, det, ref)
    # cost: the measure against decoding, on sizes a phone or dashcam writes
    base = imgs[0]
    for w, h in ((512, 512), (1920, 1080), (4032, 3024)):
        im = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
        enc = cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
        n = 200 if w < 1000 else 40
        t0 = time.perf_counter()
        for _ in range(n):
            measure_look(im)
        tm = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        for _ in range(max(5, n // 4)):
            cv2.imdecode(enc, cv2.IMREAD_COLOR)
        td = (time.perf_counter() - t0) / max(5, n // 4)
        print(f"cost {w}x{h}: measure_look {tm * 1000:.2f} ms a frame, decode {td * 1000:.1f} ms "
              f"(measure / decode {tm / td:.2f}; against 25-40 ms detection: {tm / 0.025:.1%}-{tm / 0.040:.1%})")


if __name__ == "__main__":
    main()
