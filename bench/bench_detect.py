"""Detector throughput on the same frames: plain ultralytics predict loop vs our .pt backend vs our ONNX backend.

    .venv/bin/python bench/bench_detect.py [--frames DIR] [--n 100] [--weights W.pt] [--onnx W.onnx]
                                           [--imgsz 640] [--batch 8] [--repeat 1]

Frames are decoded once beforehand (decode time is not measured). The ONNX backend runs in a subprocess that
never imports torch (ONNX Runtime is ~3x slower in a process that did). All ratios come from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as detector.infer sets it before torch loads
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("PATROL_SHARED", ROOT.parent / "shared"))
DEFAULT_FRAMES = SHARED / "sample_drives" / "toyama" / "toyama-2026-11-p1"
PRETRAINED = SHARED / "data" / "pretrained" / "yolov5nu-coco-backbone-4cls.pt"
WARMUP = 3


def load_frames(folder: Path, n: int):
    import cv2

    out = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        im = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if im is not None:
            out.append(im)
        if len(out) >= n:
            break
    if not out:
        sys.exit(f"no readable frames in {folder}")
    return out


def _cfg(args):
    from detector.config import Config

    cfg = Config()
    cfg.detect.imgsz = args.imgsz
    cfg.detect.batch = args.batch
    return cfg


def time_detector(weights: str, frames, args) -> dict:
    from detector.infer import detect_images, load_detector

    det = load_detector(weights, _cfg(args), conf=args.conf)
    list(detect_images(enumerate(frames[:WARMUP]), det, args.batch))
    best = float("inf")
    n_boxes = 0
    for _ in range(args.repeat):
        t = time.perf_counter()
        n_boxes = sum(len(x) for _, x, _, _ in detect_images(enumerate(frames), det, args.batch))
        best = min(best, time.perf_counter() - t)
    return {"seconds": best, "frames": len(frames), "boxes": n_boxes}


def time_plain_ultralytics(weights: str, frames, args) -> dict:
    import torch
    from ultralytics import YOLO

    model = YOLO(weights)
    kw = dict(imgsz=args.imgsz, conf=args.conf, iou=0.5, max_det=100, verbose=False)
    for im in frames[:WARMUP]:
        model.predict(im, **kw)
    threads = torch.get_num_threads()
    best = float("inf")
    n_boxes = 0
    for _ in range(args.repeat):
        t = time.perf_counter()
        n_boxes = sum(len(model.predict(im, **kw)[0].boxes) for im in frames)
        best = min(best, time.perf_counter() - t)
    return {"seconds": best, "frames": len(frames), "boxes": n_boxes, "torch_threads": threads}


def onnx_worker(args) -> None:
    frames = load_frames(Path(args.frames), args.n)
    res = time_detector(args.onnx, frames, args)
    res["torch_imported"] = "torch" in sys.modules or "ultralytics" in sys.modules
    print("RESULT " + json.dumps(res))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", default=str(DEFAULT_FRAMES))
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--weights", default=None, help=".pt (default: weights/rdd-yolo.pt, else the shared pretrained)")
    ap.add_argument("--onnx", default=None, help=".onnx (default: beside --weights, else exported to a temp dir)")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--repeat", type=int, default=1, help="timed passes per backend; the fastest is reported")
    ap.add_argument("--onnx-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.onnx_worker:
        return onnx_worker(args)

    from detector.config import DEFAULT_WEIGHTS_PT

    pt = Path(args.weights) if args.weights else (DEFAULT_WEIGHTS_PT if DEFAULT_WEIGHTS_PT.is_file() else PRETRAINED)
    tmp = Path(tempfile.mkdtemp(prefix="bench_detect_"))
    try:
        onnx = Path(args.onnx) if args.onnx else pt.with_suffix(".onnx")
        if not onnx.is_file():
            from detector.train import export_onnx

            shutil.copy(pt, tmp / pt.name)
            onnx = export_onnx(tmp / pt.name, imgsz=args.imgsz)
        frames = load_frames(Path(args.frames), args.n)
        print(f"{len(frames)} frames from {args.frames} ({frames[0].shape[1]}x{frames[0].shape[0]}), weights {pt.name}, "
              f"imgsz {args.imgsz}, batch {args.batch}, conf {args.conf}, cpus {os.cpu_count()}", flush=True)

        cmd = [sys.executable, __file__, "--onnx-worker", "--onnx", str(onnx), "--frames", args.frames, "--n", str(args.n),
               "--imgsz", str(args.imgsz), "--batch", str(args.batch), "--conf", str(args.conf), "--repeat", str(args.repeat)]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
        if r.returncode or not line:
            sys.exit(f"ONNX worker failed:\n{r.stderr[-3000:]}")
        res = {"onnx": json.loads(line[-1][7:])}
        res["plain"] = time_plain_ultralytics(str(pt), frames, args)
        res["pt"] = time_detector(str(pt), frames, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    labels = {"plain": "ultralytics predict loop (batch 1)", "pt": "Detector .pt backend", "onnx": "Detector .onnx backend"}
    print(f"{'backend':<38}{'frames/s':>10}{'ms/frame':>10}{'boxes':>8}")
    for k in ("plain", "pt", "onnx"):
        v = res[k]
        fps = v["frames"] / v["seconds"]
        extra = f"  (torch threads {v['torch_threads']})" if "torch_threads" in v else ""
        extra += "  (torch imported!)" if v.get("torch_imported") else ""
        print(f"{labels[k]:<38}{fps:>10.2f}{1000 / fps:>10.1f}{v['boxes']:>8}{extra}")
    fps = {k: res[k]["frames"] / res[k]["seconds"] for k in res}
    print(f"ratio .pt backend / plain loop : {fps['pt'] / fps['plain']:.2f}x")
    print(f"ratio ONNX backend / plain loop: {fps['onnx'] / fps['plain']:.2f}x")
    print(f"ratio ONNX / .pt backend       : {fps['onnx'] / fps['pt']:.2f}x")


if __name__ == "__main__":
    main()
