"""Pipeline speed and memory, measured in one run on the same frames and weights.

Prints:
  * a plain ultralytics predict loop (YOLO(pt).predict per frame) frames/s,
  * `patrol run` end-to-end frames/s with the .pt and with the .onnx of the same model (EXIF, decode, detect,
    locate, dedupe, exports — everything but interpreter start-up), and the ratios to the plain loop,
  * peak RSS of `patrol run` on a short drive and on a 10x longer drive (frames streamed: it must not grow ~10x).

Each measurement runs in its own subprocess (ONNX Runtime must not share a process with torch).
Usage: .venv/bin/python bench/bench_pipeline.py [--frames 100] [--weights weights/rdd-yolo.pt]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
TOYAMA = SHARED / "sample_drives" / "toyama"

LOOP = r"""
import os, sys, time, json, resource
os.environ["YOLO_OFFLINE"] = "1"
from pathlib import Path
import cv2, torch
from ultralytics import YOLO
files = json.loads(sys.argv[1]); w = sys.argv[2]; imgsz = int(sys.argv[3])
m = YOLO(w)
torch.set_num_threads(os.cpu_count())
m.predict(cv2.imread(files[0]), imgsz=imgsz, verbose=False)  # warm-up
t = time.perf_counter()
for f in files:
    m.predict(cv2.imread(f), imgsz=imgsz, conf=0.25, verbose=False)
dt = time.perf_counter() - t
print(json.dumps({"fps": len(files) / dt, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

RUN = r"""
import sys, time, json, resource
from pathlib import Path
from detector.config import load_config
from detector.pipeline import run_pipeline
drive, roads, out, w, cfgp = sys.argv[1:6]
cfg = load_config(cfgp)
t = time.perf_counter()
s = run_pipeline([Path(drive)], Path(roads), Path(out), cfg, weights=Path(w), report=False)
dt = time.perf_counter() - t
print(json.dumps({"fps": s.frames_ok / dt, "frames": s.frames_ok, "hits": s.hits, "detect_fps": s.detect_fps,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def sub(code: str, *args: str) -> dict:
    r = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"benchmark subprocess failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def make_drive(src: Path, dst: Path, n: int, repeat: int) -> None:
    """A drive of ``n`` sample frames repeated ``repeat`` times (names made unique) — a longer patrol."""
    frames = sorted(p for p in src.glob("IMG_2026*.jpg"))[:n]
    dst.mkdir(parents=True)
    for r in range(repeat):
        for p in frames:
            shutil.copyfile(p, dst / f"r{r:02d}_{p.name}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--weights", type=Path, default=ROOT / "weights" / "rdd-yolo.pt")
    ap.add_argument("--long-factor", type=int, default=10)
    ap.add_argument("--short", type=int, default=100, help="frames in the short drive for the memory test")
    a = ap.parse_args()
    if not TOYAMA.is_dir():
        sys.exit(f"sample drive not found at {TOYAMA}")
    pt = a.weights.resolve()
    onnx = pt.with_suffix(".onnx")
    sys.path.insert(0, str(ROOT))
    from detector.config import DEFAULT_CONFIG, load_config

    cfg = load_config(DEFAULT_CONFIG)
    imgsz = cfg.detect.imgsz
    src = TOYAMA / "toyama-2026-11-p1"
    roads = TOYAMA / "roads.geojson"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        drive = tmp / "drive"
        make_drive(src, drive, a.frames, 1)
        files = sorted(str(p) for p in drive.iterdir())
        loop = sub(LOOP, json.dumps(files), str(pt), str(imgsz))
        run_pt = sub(RUN, str(drive), str(roads), str(tmp / "out-pt"), str(pt), str(DEFAULT_CONFIG))
        run_onnx = sub(RUN, str(drive), str(roads), str(tmp / "out-onnx"), str(onnx), str(DEFAULT_CONFIG))
        print(f"frames: {len(files)}  imgsz: {imgsz}  weights: {pt.name} / {onnx.name}")
        print(f"plain ultralytics predict loop (.pt):  {loop['fps']:6.2f} frames/s")
        print(f"patrol run end-to-end (.pt):           {run_pt['fps']:6.2f} frames/s  (detect stage {run_pt['detect_fps']:.2f})"
              f"  ratio to loop {run_pt['fps'] / loop['fps']:.2f}")
        print(f"patrol run end-to-end (.onnx):         {run_onnx['fps']:6.2f} frames/s  (detect stage {run_onnx['detect_fps']:.2f})"
              f"  ratio to loop {run_onnx['fps'] / loop['fps']:.2f}")
        short, long_ = tmp / "short", tmp / "long"
        make_drive(src, short, a.short, 1)
        make_drive(src, long_, a.short, a.long_factor)
        m_short = sub(RUN, str(short), str(roads), str(tmp / "out-short"), str(onnx), str(DEFAULT_CONFIG))
        m_long = sub(RUN, str(long_), str(roads), str(tmp / "out-long"), str(onnx), str(DEFAULT_CONFIG))
        print(f"peak RSS, short drive ({m_short['frames']} frames):  {m_short['rss_mb']:7.1f} MB")
        print(f"peak RSS, {a.long_factor}x drive ({m_long['frames']} frames):   {m_long['rss_mb']:7.1f} MB"
              f"  ratio {m_long['rss_mb'] / m_short['rss_mb']:.2f}")


if __name__ == "__main__":
    main()
