"""Does a change to the crops' privacy search still blur what it blurred? Records, then checks, every face and plate
that ``make_crop`` blurs in a corpus of real crops.

``--record FILE`` runs the code as it is and writes, for every crop of the corpus, the faces and plates blurred in it
(image pixels, the regions whose blurred rectangle reaches into the crop window) and the sha1 of its JPEG bytes;
``--check FILE`` runs the code as it is now against that record and prints how many of the recorded regions it still
blurs: the same box, or failing that how much of that region's blurred pixels inside the crop it still blurs; any
region not kept whole is listed. CPU seconds of the privacy search alone (one thread, ``cv2.setNumThreads(1)``), per
part of the corpus, before (the record's) and now.

The corpus (real images only; ../shared):
  * sample: every box the sample drive's oracle detections hold (both passes) and every detection of a ``patrol run``
    of both passes (``--run-detections`` CSV, the run's ``detections.csv``), each on its frame;
  * sample-1080p: the candidates' best boxes (bench_crops.candidates) on their frames scaled to 1920x1080 and written
    as JPEG 92, as found and widened to the frame's width (the search image downscaled to ``detect_max_side``);
  * rdd: the RDD label boxes (data/rdd/labels, YOLO) of every val image and of every ``--rdd-every``-th train image
    (China_MotorBike: riders; Czech, Japan: cars, plates);
  * exif: every photo in data/exif (faces, a profile face) and its mirror, each cut as a 3x3 grid of crop windows.

The region search is the one ``make_crop`` runs: ``crops.crop_privacy_regions`` where the module has it, else
``find_privacy_regions`` on ``search_region(crop)`` keeping what reaches into the crop window (what the crop blurs).

Usage: .venv/bin/python bench/check_crops_recall.py --record /tmp/recall-before.json [--jobs 2]
       .venv/bin/python bench/check_crops_recall.py --check /tmp/recall-before.json [--jobs 2]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
TOYAMA = SHARED / "sample_drives" / "toyama"
RDD = SHARED / "data" / "rdd"
EXIF = SHARED / "data" / "exif"
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from detector import crops  # noqa: E402
from detector.config import Config  # noqa: E402


def corpus(run_detections: Path | None, rdd_every: int, parts: set[str]) -> list[dict]:
    """Items: part, key (unique), path, mirror, box (x1, y1, x2, y2 image pixels)."""
    items: list[dict] = []
    seen: set[str] = set()

    def add(part, path, box, mirror=False, tag=""):
        key = (f"{part}:{Path(path).parent.name}/{Path(path).name}:{'m' if mirror else ''}"
               f"{','.join(f'{float(v):.1f}' for v in box)}{tag}")
        if key not in seen:  # a box the oracle lists twice is one crop
            seen.add(key)
            items.append({"part": part, "path": str(path), "mirror": mirror, "box": [float(v) for v in box],
                          "key": key})

    if "sample" in parts:
        for p in ("p1", "p2"):
            drive = TOYAMA / f"toyama-2026-11-{p}"
            with open(TOYAMA / f"toyama-2026-11-{p}.oracle.csv", encoding="utf-8") as f:
                for r in csv.DictReader(f):
                    add("sample", drive / r["image"], [r["x1"], r["y1"], r["x2"], r["y2"]], tag=":oracle")
        if run_detections is not None:
            with open(run_detections, encoding="utf-8") as f:
                for r in csv.DictReader(f):
                    add("sample", TOYAMA / r["drive"] / r["image"], [r["x1"], r["y1"], r["x2"], r["y2"]], tag=":run")
    if "sample-1080p" in parts:
        import bench_crops

        cands = bench_crops.candidates(None)
        for boxes in ("as-found", "full-width"):
            work = Path("/tmp/patrol-bench-crops") / f"1920x1080-{boxes}"
            for path, box in bench_crops.as_video_frames(cands, "1920x1080", boxes, work):
                add("sample-1080p", path, box, tag=f":{boxes}")
    if "rdd" in parts:
        for split in ("val", "train"):
            names = sorted((RDD / "images" / split).iterdir())
            for i, img in enumerate(names):
                if split == "train" and i % rdd_every:
                    continue
                lab = RDD / "labels" / split / f"{img.stem}.txt"
                if not lab.is_file():
                    continue
                im = cv2.imread(str(img))
                if im is None:
                    continue
                H, W = im.shape[:2]
                for line in lab.read_text().split("\n"):
                    v = line.split()
                    if len(v) != 5:
                        continue
                    cx, cy, w, h = (float(a) for a in v[1:])
                    add("rdd", img, [(cx - w / 2) * W, (cy - h / 2) * H, (cx + w / 2) * W, (cy + h / 2) * H])
    if "exif" in parts:
        for img in sorted(EXIF.glob("*.jpg")):
            im = cv2.imread(str(img))
            if im is None:
                continue
            H, W = im.shape[:2]
            for mirror in (False, True):
                for i in range(3):
                    for j in range(3):
                        add("exif", img, [W * (0.06 + 0.3 * i), H * (0.06 + 0.3 * j),
                                          W * (0.06 + 0.3 * i + 0.22), H * (0.06 + 0.3 * j + 0.22)], mirror)
    return items


def crop_regions(img: np.ndarray, box, cfg) -> tuple[list, list]:
    """The faces and plates ``make_crop`` blurs for this box (image pixels)."""
    H, W = img.shape[:2]
    win = crops.crop_region(box, W, H)
    new = getattr(crops, "crop_privacy_regions", None)
    if new is not None:
        return new(img, win, cfg)
    faces, plates = crops.find_privacy_regions(img, cfg, crops.search_region(win))
    return [r for r in faces if reaches(r, 0.15, win)], [r for r in plates if reaches(r, 0.12, win)]


def reaches(r, f: float, win) -> bool:
    """Whether make_crop's blur of region r (enlarged by f) changes a pixel of the crop window."""
    x0, y0, x1, y1 = crops._enlarge(r, f)
    cx0, cy0, cx1, cy1 = win
    return min(x1, cx1) - max(x0, cx0) >= 2 and min(y1, cy1) - max(y0, cy0) >= 2


_IMG: dict[tuple[str, bool], np.ndarray] = {}


def one(item: dict) -> dict:
    cv2.setNumThreads(1)
    key = (item["path"], item["mirror"])
    if key not in _IMG:
        _IMG.clear()
        from detector.frames import load_image

        img = load_image(item["path"])
        _IMG[key] = np.ascontiguousarray(img[:, ::-1]) if item["mirror"] else img
    img, cfg = _IMG[key], Config()
    # the search is timed once; the crop's JPEG then takes what it found from a memo (not searched twice)
    memo: dict = {}
    saved = {n: getattr(crops, n) for n in ("find_privacy_regions", "crop_privacy_regions") if hasattr(crops, n)}

    def remembered(fn):
        def f(*a):
            k = (fn.__name__, *(tuple(v) if isinstance(v, (list, tuple)) else id(v) for v in a))
            if k not in memo:
                memo[k] = fn(*a)
            return memo[k]
        return f

    for n, fn in saved.items():
        setattr(crops, n, remembered(fn))
    try:
        c = time.process_time()
        faces, plates = crop_regions(img, item["box"], cfg)
        cpu = time.process_time() - c
        jpeg = crops.make_crop(img, item["box"], cfg, label="D00 0.80")
    finally:
        for n, fn in saved.items():
            setattr(crops, n, fn)
    return {"key": item["key"], "part": item["part"], "cpu": cpu,
            "faces": sorted(list(map(int, r)) for r in faces), "plates": sorted(list(map(int, r)) for r in plates),
            "sha1": hashlib.sha1(jpeg).hexdigest(), "path": item["path"], "mirror": item["mirror"], "box": item["box"]}


def run_all(items: list[dict], jobs: int) -> list[dict]:
    t = time.perf_counter()
    if jobs > 1:
        import multiprocessing

        # spawned, not forked: a fork of a process whose OpenCV threads already ran can hang in the child
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as ex:
            out = list(ex.map(one, items, chunksize=8))
    else:
        out = [one(i) for i in items]
    print(f"{len(items)} crops in {time.perf_counter() - t:.0f} s wall ({jobs} processes)", flush=True)
    return out


def blurred_in_crop(rec: dict, faces, plates) -> np.ndarray:
    """The crop window's pixels blurred for these regions."""
    from detector.frames import load_image

    img = load_image(rec["path"])
    H, W = img.shape[:2]
    x0, y0, x1, y1 = crops.crop_region(rec["box"], W, H)
    m = np.zeros((H, W), bool)
    for rs, f in ((faces, 0.15), (plates, 0.12)):
        for r in rs:
            a, b, c, d = crops._enlarge(r, f)
            m[max(0, b):max(0, d), max(0, a):max(0, c)] = True
    return m[y0:y1, x0:x1]


def check(old: list[dict], new: list[dict]) -> int:
    by = {r["key"]: r for r in new}
    parts = sorted({r["part"] for r in old})
    missing_items = [r["key"] for r in old if r["key"] not in by]
    if missing_items:
        print(f"{len(missing_items)} recorded crops not in this run's corpus, e.g. {missing_items[:3]}")
    print(f"{'part':<14}{'crops':>7}{'regions':>9}{'same box':>10}{'kept':>7}{'lost':>6}{'new':>6}"
          f"{'same JPEG':>11}{'CPU before':>12}{'CPU now':>9}{'x':>6}")
    lost_all = []
    for part in parts:
        rows = [(r, by[r["key"]]) for r in old if r["part"] == part and r["key"] in by]
        n_reg = same = kept = extra = same_jpeg = 0
        for o, n in rows:
            same_jpeg += o["sha1"] == n["sha1"]
            for kind in ("faces", "plates"):
                nb = {tuple(r) for r in n[kind]}
                ob = {tuple(r) for r in o[kind]}
                extra += len(nb - ob)
                for r in ob:
                    n_reg += 1
                    if r in nb:
                        same += 1
                        kept += 1
                        continue
                    want = blurred_in_crop(o, [r] if kind == "faces" else [], [r] if kind == "plates" else [])
                    got = blurred_in_crop(o, n["faces"], n["plates"])
                    cover = (want & got).sum() / max(1, want.sum())
                    if cover >= 1.0:
                        kept += 1
                    else:
                        lost_all.append((o["key"], kind, r, f"{100 * cover:.1f} % of its pixels still blurred",
                                         n[kind]))
        cb, cn = sum(o["cpu"] for o, _ in rows), sum(n["cpu"] for _, n in rows)
        print(f"{part:<14}{len(rows):>7}{n_reg:>9}{same:>10}{kept:>7}{n_reg - kept:>6}{extra:>6}"
              f"{same_jpeg:>7}/{len(rows):<4}{cb:>11.1f}s{cn:>8.1f}s{cb / max(cn, 1e-9):>6.2f}")
    for key, kind, r, why, now in lost_all:
        print(f"LOST {key} {kind[:-1]} {r}: {why}; now {now}")
    print("all recorded regions kept" if not lost_all else f"{len(lost_all)} recorded regions not kept whole")
    return 1 if lost_all else 0


def main() -> None:
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--record", type=Path)
    g.add_argument("--check", type=Path)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--rdd-every", type=int, default=4, help="every n-th RDD train image (all val images)")
    ap.add_argument("--parts", default="sample,sample-1080p,rdd,exif")
    ap.add_argument("--run-detections", type=Path, default=None,
                    help="a patrol run's detections.csv over both sample passes (its boxes are cut too)")
    a = ap.parse_args()
    if not TOYAMA.is_dir():
        sys.exit(f"sample drive not found at {TOYAMA}")
    items = corpus(a.run_detections, a.rdd_every, set(a.parts.split(",")))
    print(f"OpenCV {cv2.__version__}; {len(items)} crops: "
          + ", ".join(f"{p} {sum(i['part'] == p for i in items)}" for p in a.parts.split(",")), flush=True)
    if a.record:
        out = run_all(items, a.jobs)
        a.record.write_text(json.dumps({"opencv": cv2.__version__, "crops": out}), encoding="utf-8")
        n = sum(len(r["faces"]) + len(r["plates"]) for r in out)
        print(f"recorded {n} regions in {sum(bool(r['faces'] or r['plates']) for r in out)} crops -> {a.record}")
    else:
        old = json.loads(a.check.read_text(encoding="utf-8"))["crops"]
        keys = {r["key"] for r in old}
        new = run_all([i for i in items if i["key"] in keys], a.jobs)
        sys.exit(check(old, new))


if __name__ == "__main__":
    main()
