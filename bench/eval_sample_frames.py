"""Detector accuracy on the sample drive's frames: F1 against the true boxes of every frame (``*.oracle.csv``).

    .venv/bin/python bench/eval_sample_frames.py [--weights W] [--config CFG] [--imgsz S] [--thresholds JSON]

A second check of a model beside ``patrol eval`` on the RDD val split: 200 dashboard frames of a Japanese city
(both passes of ../shared/sample_drives/toyama; broken files skipped as the pipeline skips them), scored like the
challenge metric (IoU > 0.5 with the right class, at most 5 boxes a frame) at the config's per-class thresholds
(or --thresholds '{"D00": 0.4, ...}'). Nothing here is tuned on these frames: use it to confirm that a model chosen
on val also finds more damage on a city's frames, not to choose thresholds. Prints F1, precision, recall, TP/FP/FN
and mAP50, per class too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("PATROL_SHARED", ROOT.parent / "shared"))
DRIVE = SHARED / "sample_drives" / "toyama"
PASSES = ("toyama-2026-11-p1", "toyama-2026-11-p2")


def frame_preds(det, drive: Path = DRIVE, passes=PASSES):
    """ImagePreds of every decodable frame of ``passes`` (predictions at conf >= 0.001, truth from the oracle csv)."""
    import numpy as np
    import pandas as pd

    from detector.evaluate import EVAL_CONF, EVAL_MAX_DET, ImagePreds, _order
    from detector.frames import FrameError, load_image

    out, skipped = [], []
    for name in passes:
        truth = pd.read_csv(drive / f"{name}.oracle.csv")
        by_image = {k: g for k, g in truth.groupby("image")}
        for f in sorted((drive / name).iterdir()):
            try:
                im = load_image(f)
            except FrameError:
                skipped.append(f.name)
                continue
            g = by_image.get(f.name)
            gt_xyxy = g[["x1", "y1", "x2", "y2"]].to_numpy(float) if g is not None else np.zeros((0, 4))
            gt_cls = g["class"].to_numpy(str).astype(object) if g is not None else np.zeros(0, dtype=object)
            (xyxy, conf, cls), = det.predict_all([im], EVAL_CONF, EVAL_MAX_DET)
            o = _order(conf)
            out.append(ImagePreds(name=f.name, source=name, width=im.shape[1], height=im.shape[0],
                                  pred_xyxy=xyxy[o], pred_conf=conf[o], pred_cls=cls[o], gt_xyxy=gt_xyxy, gt_cls=gt_cls))
    return out, skipped


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", help=".pt or .onnx (default: the config's detect.weights, else the shipped model)")
    ap.add_argument("--config", default=str(ROOT / "configs" / "default.yaml"))
    ap.add_argument("--imgsz", type=int, help="inference size (default: the config's detect.imgsz)")
    ap.add_argument("--thresholds", help='per-class thresholds as JSON, e.g. \'{"D00": 0.4, "D10": 0.3, ...}\'')
    a = ap.parse_args()
    if not DRIVE.is_dir():
        print(f"skipped: the sample drive is not at {DRIVE} (set PATROL_SHARED)", file=sys.stderr)
        return 0
    from detector.config import load_config
    from detector.evaluate import score
    from detector.infer import load_detector, resolve_weights

    cfg = load_config(a.config)
    if a.imgsz:
        cfg.detect.imgsz = a.imgsz
    thr = cfg.thresholds()
    if a.thresholds:
        thr.update({k: float(v) for k, v in json.loads(a.thresholds).items()})
    weights = resolve_weights(cfg, a.weights)
    preds, skipped = frame_preds(load_detector(weights, cfg))
    r = score(preds, thr)
    print(f"{weights.name} at {cfg.detect.imgsz} px, {len(preds)} frames ({len(skipped)} unreadable skipped), "
          f"thresholds {thr}")
    print(f"F1 {r['f1']:.3f}  precision {r['precision']:.3f}  recall {r['recall']:.3f}  "
          f"TP {r['tp']} FP {r['fp']} FN {r['fn']}  mAP50 {r['map50']:.3f}")
    for cid, c in r["per_class"].items():
        ap50 = c.get("ap50")
        print(f"  {cid}: {c['n_gt']} true, TP {c['tp']} FP {c['fp']} FN {c['fn']}, F1 {c['f1']:.3f}, "
              f"AP50 {'-' if ap50 is None else f'{ap50:.3f}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
