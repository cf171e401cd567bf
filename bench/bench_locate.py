"""Benchmark locate + dedupe: the Toyama oracle detections (p1 + p2) replicated N times (each replica a drive
offset by a week), on the Toyama network. Prints detections/s.

    .venv/bin/python bench/bench_locate.py [--reps 100] [--method hmm]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detector.config import Config  # noqa: E402
from detector.dedupe import dedupe  # noqa: E402
from detector.detections import Detections, read_detections_csv  # noqa: E402
from detector.locate import locate  # noqa: E402
from detector.roads import load_roads  # noqa: E402


def replicate(det: Detections, reps: int) -> Detections:
    parts = []
    base = np.array([datetime.fromisoformat(t) for t in det.time], dtype=object)
    for k in range(reps):
        d = det[np.arange(len(det))]
        d.time = np.array([(t + timedelta(days=7 * k)).isoformat() for t in base], dtype=object)
        d.drive = np.array([f"{dr}-r{k:03d}" for dr in det.drive], dtype=object)
        parts.append(d)
    return Detections.concat(parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--method", default=None, choices=["nearest", "heading", "hmm"])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    a = ap.parse_args()
    toy = Path(a.shared) / "sample_drives" / "toyama"
    cfg = Config()
    t0 = time.perf_counter()
    net = load_roads(toy / "roads.geojson", cfg)
    t1 = time.perf_counter()
    det = Detections.concat([read_detections_csv(toy / f"toyama-2026-11-p{i}.oracle.csv") for i in (1, 2)])
    big = replicate(det, a.reps)
    t2 = time.perf_counter()
    loc = locate(big, net, cfg, method=a.method)
    t3 = time.perf_counter()
    cands = dedupe(loc, cfg, net)
    t4 = time.perf_counter()
    n = len(big)
    print(f"roads: {len(net)} segments loaded in {t1 - t0:.2f} s")
    print(f"detections: {n} ({a.reps} x {len(det)}), frames: {loc[['drive', 'image']].drop_duplicates().shape[0]}")
    print(f"locate ({a.method or cfg.locate.method}): {t3 - t2:.2f} s  {n / (t3 - t2):,.0f} det/s")
    print(f"dedupe: {t4 - t3:.2f} s  {n / (t4 - t3):,.0f} det/s  -> {len(cands)} candidates")
    print(f"locate+dedupe: {n / (t4 - t2):,.0f} detections/s")


if __name__ == "__main__":
    main()
