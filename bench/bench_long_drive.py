"""Does `patrol run` scale linearly with the length of a drive? Measured in one run on two synthetic drives.

A drive of N frames and one of K*N frames are built from the sample drive's pixels with their EXIF rewritten
along the real Kubicka Toyama track (out and back, one frame a second, folders of 500 frames as a phone's hourly
uploads), so a longer drive has more distinct damage sites, not the same ones repeated. Each runs end to end
(roads = the Kubicka network, configs/toyama-city.yaml) in its own subprocess. Prints per stage (roads, frames,
detect, locate, crops, exports) the seconds of both and their ratio, with the ratio of frames and of candidates
beside them (a stage growing much faster than those is quadratic somewhere), the peak RSS of both (frames are
streamed: it must not grow K-fold) and report.html's size per candidate.

Usage: .venv/bin/python bench/bench_long_drive.py [--frames 200] [--factor 5]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
TOYAMA = SHARED / "sample_drives" / "toyama"
KUBICKA = SHARED / "data" / "roads" / "kubicka" / "00000037"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

RUN = r"""
import sys, json, resource
from pathlib import Path
from detector.config import load_config
from detector.pipeline import run_pipeline
drive, roads, out, cfgp = sys.argv[1:5]
s = run_pipeline([Path(drive)], Path(roads), Path(out), load_config(cfgp))
print(json.dumps({"frames": s.frames_ok, "candidates": s.candidates, "seconds": s.seconds, "stages": s.stage_seconds,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "report_bytes": (Path(out) / "report.html").stat().st_size}))
"""


def make_drive(dst: Path, n: int, per_folder: int = 500) -> None:
    import numpy as np
    from PIL import Image

    from badinputs import JST, make_exif

    track = np.loadtxt(KUBICKA / "00000037.track", ndmin=2)
    seq = np.concatenate([track, track[::-1]])
    seq = np.concatenate([seq] * math.ceil(n / len(seq)))[:n]
    pixels = []
    for p in sorted(TOYAMA.glob("toyama-2026-11-p*/IMG_2026*.jpg")):
        try:
            with Image.open(p) as im:
                pixels.append(im.convert("RGB"))
        except OSError:  # the sample drives carry broken files on purpose
            continue
    t0 = datetime(2026, 11, 20, 9, 0, 0, tzinfo=JST)
    for i, (lon, lat, _) in enumerate(seq):
        t = t0 + timedelta(seconds=i)
        folder = dst / f"h{i // per_folder:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        exif = make_exif(lat=lat, lon=lon, gps_utc=t, local=t, offset="+09:00", speed_kmh=30.0)
        pixels[i % len(pixels)].save(folder / f"IMG_{i % per_folder:05d}.jpg", "JPEG", quality=90, exif=exif)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--factor", type=int, default=5)
    a = ap.parse_args()
    from test_locate import kubicka_network

    res = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        roads, _ = kubicka_network(KUBICKA, tmp)
        for n in (a.frames, a.frames * a.factor):
            drive = tmp / f"drive-{n}"
            make_drive(drive, n)
            r = subprocess.run([sys.executable, "-c", RUN, str(drive), str(roads), str(tmp / f"out-{n}"),
                                str(ROOT / "configs" / "toyama-city.yaml")], cwd=ROOT, capture_output=True, text=True)
            if r.returncode:
                sys.exit(f"benchmark run failed:\n{r.stderr[-3000:]}")
            res.append(json.loads(r.stdout.strip().splitlines()[-1]))
    s, l = res
    print(f"frames {s['frames']} -> {l['frames']} (x{l['frames'] / s['frames']:.1f}), "
          f"candidates {s['candidates']} -> {l['candidates']} (x{l['candidates'] / max(1, s['candidates']):.1f})")
    for stage in l["stages"]:
        a_, b_ = s["stages"].get(stage, 0.0), l["stages"][stage]
        print(f"  {stage:<8} {a_:8.1f} s -> {b_:8.1f} s  (x{b_ / a_:.1f})" if a_ > 0 else f"  {stage:<8} {a_:8.1f} s -> {b_:8.1f} s")
    print(f"  total    {s['seconds']:8.1f} s -> {l['seconds']:8.1f} s  (x{l['seconds'] / s['seconds']:.1f})")
    print(f"peak RSS {s['rss_mb']:.0f} MB -> {l['rss_mb']:.0f} MB (x{l['rss_mb'] / s['rss_mb']:.2f})")
    print(f"report.html {s['report_bytes'] / 1e6:.1f} MB -> {l['report_bytes'] / 1e6:.1f} MB "
          f"({l['report_bytes'] / max(1, l['candidates']) / 1024:.0f} KB per candidate)")


if __name__ == "__main__":
    main()
