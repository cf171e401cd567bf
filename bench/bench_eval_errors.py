"""What ``patrol eval --errors DIR`` adds to ``patrol eval``, in CPU seconds (``time.process_time``, which other load
on a shared machine does not inflate), on the val split of ../shared/data/rdd with the shipped ONNX model.

Prints: the predictions (once, as eval makes them), ``score`` (eval's scoring: the matching that --errors reuses,
so this is the line that must not grow without --errors), and ``write_errors`` (collect the mistakes, re-read and
draw each photo with one, JPEG encode, errors.csv, index.html), and the ratio of eval with --errors to without.

Usage: .venv/bin/python bench/bench_eval_errors.py [DATA_YAML] [--split val]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("YOLO_OFFLINE", "1")


def main() -> None:
    from detector.config import DEFAULT_CONFIG, DEFAULT_WEIGHTS_ONNX, load_config
    from detector.evalerrors import write_errors
    from detector.evaluate import predict_split, score

    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=str(ROOT.parent / "shared" / "data" / "rdd" / "data.yaml"))
    ap.add_argument("--split", default="val")
    a = ap.parse_args()
    cfg = load_config(DEFAULT_CONFIG)  # as patrol eval without --config: its tuned thresholds
    t = time.process_time()
    preds = predict_split(a.data, DEFAULT_WEIGHTS_ONNX, cfg, a.split, use_cache=False)
    t_pred = time.process_time() - t
    t = time.process_time()
    for _ in range(5):
        res = score(preds, cfg.thresholds())
    t_score = (time.process_time() - t) / 5
    with tempfile.TemporaryDirectory() as d:
        t = time.process_time()
        summ = write_errors(preds, res["thresholds"], Path(d) / "errs", cfg)
        t_err = time.process_time() - t
    base = t_pred + t_score
    print(f"{len(preds)} photos; {summ.n_images} with mistakes ({summ.n_fp} FP, {summ.n_fn} FN, "
          f"{summ.n_wrong_class} wrong class)")
    print(f"predict      {t_pred:7.2f} s CPU")
    print(f"score        {t_score:7.3f} s CPU (eval's scoring, mean of 5)")
    print(f"write_errors {t_err:7.2f} s CPU ({1000 * t_err / max(summ.n_images, 1):.1f} ms a drawn photo)")
    print(f"eval --errors / eval: {(base + t_err) / base:.2f}")


if __name__ == "__main__":
    main()
