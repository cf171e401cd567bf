"""Does `patrol run` scale linearly with the length of a drive? Measured in one run on two synthetic drives.

A drive of N frames and one of K*N frames are built from the sample drive's pixels with their EXIF rewritten
along the real Kubicka Toyama track (out and back, one frame a second, folders of 500 frames as a phone's hourly
uploads), so a longer drive has more distinct damage sites, not the same ones repeated. Each runs end to end
(roads = the Kubicka network, configs/toyama-city.yaml) in its own subprocess. Prints per stage (roads, frames,
detect, locate, crops, exports) the seconds of both and their ratio, with the ratio of frames and of candidates
beside them (a stage growing much faster than those is quadratic somewhere), the peak RSS of both (frames are
streamed: it must not grow K-fold) and report.html's size per candidate.

``--store``: each run merges into a registry of its own (an empty one: stage ``registry``), and the long drive is
then driven again a week later (other pixels, so other photos) into the registry holding the first long drive
(``2nd long``: a non-empty registry with a week's passes to record). ``--before REV``: the same runs also with the
code at REV (``git archive`` into a temporary folder; the drives and the network are built once, shared), printed
before the working tree's, to compare ratios on the same busy machine.

Usage: .venv/bin/python bench/bench_long_drive.py [--frames 200] [--factor 5] [--store] [--before REV]
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
drive, roads, out, cfgp, store = sys.argv[1:6]
s = run_pipeline([Path(drive)], Path(roads), Path(out), load_config(cfgp), store=Path(store) if store else None)
print(json.dumps({"frames": s.frames_ok, "candidates": s.candidates, "seconds": s.seconds, "stages": s.stage_seconds,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "report_bytes": (Path(out) / "report.html").stat().st_size}))
"""


def make_drive(dst: Path, n: int, per_folder: int = 500, week: int = 0) -> None:
    """``week``: the same track that many weeks later, each frame showing the next sample frame's pixels (other
    photos to the registry, which knows a drive's photos by content)."""
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
    t0 = datetime(2026, 11, 20, 9, 0, 0, tzinfo=JST) + timedelta(weeks=week)
    for i, (lon, lat, _) in enumerate(seq):
        t = t0 + timedelta(seconds=i)
        folder = dst / f"h{i // per_folder:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        exif = make_exif(lat=lat, lon=lon, gps_utc=t, local=t, offset="+09:00", speed_kmh=30.0)
        pixels[(i + week) % len(pixels)].save(folder / f"IMG_{i % per_folder:05d}.jpg", "JPEG", quality=90, exif=exif)


def run(code: Path, drive: Path, roads: Path, out: Path, store: Path | None) -> dict:
    r = subprocess.run([sys.executable, "-c", RUN, str(drive), str(roads), str(out),
                        str(code / "configs" / "toyama-city.yaml"), str(store or "")],
                       cwd=code, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"benchmark run failed ({code}):\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def show(title: str, s: dict, l: dict, again: dict | None) -> None:
    print(f"== {title}")
    print(f"frames {s['frames']} -> {l['frames']} (x{l['frames'] / s['frames']:.1f}), "
          f"candidates {s['candidates']} -> {l['candidates']} (x{l['candidates'] / max(1, s['candidates']):.1f})")
    for stage in l["stages"]:
        a_, b_ = s["stages"].get(stage, 0.0), l["stages"][stage]
        line = (f"  {stage:<8} {a_:8.1f} s -> {b_:8.1f} s  (x{b_ / a_:.1f})" if a_ > 0
                else f"  {stage:<8} {a_:8.1f} s -> {b_:8.1f} s        ")
        if again is not None:
            line += f"   2nd long {again['stages'].get(stage, 0.0):8.1f} s"
        print(line)
    print(f"  total    {s['seconds']:8.1f} s -> {l['seconds']:8.1f} s  (x{l['seconds'] / s['seconds']:.1f})"
          + (f"   2nd long {again['seconds']:8.1f} s" if again is not None else ""))
    print(f"peak RSS {s['rss_mb']:.0f} MB -> {l['rss_mb']:.0f} MB (x{l['rss_mb'] / s['rss_mb']:.2f})")
    print(f"report.html {s['report_bytes'] / 1e6:.1f} MB -> {l['report_bytes'] / 1e6:.1f} MB "
          f"({l['report_bytes'] / max(1, l['candidates']) / 1024:.0f} KB per candidate)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--factor", type=int, default=5)
    ap.add_argument("--store", action="store_true", help="merge each run into a registry (see the module doc)")
    ap.add_argument("--before", metavar="REV", help="also run the code at this git revision")
    a = ap.parse_args()
    from test_locate import kubicka_network

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        roads, _ = kubicka_network(KUBICKA, tmp)
        sizes = (a.frames, a.frames * a.factor)
        for n in sizes:
            make_drive(tmp / f"drive-{n}", n)
        if a.store:
            make_drive(tmp / f"drive-{sizes[1]}-week2", sizes[1], week=1)
        codes = [("working tree", ROOT)]
        if a.before:
            code = tmp / "before"
            code.mkdir()
            subprocess.run(f"git archive {a.before} | tar -x -C {code}", shell=True, check=True, cwd=ROOT)
            codes.insert(0, (f"before ({a.before})", code))
        for title, code in codes:
            tag = "b" if code != ROOT else "a"
            res = [run(code, tmp / f"drive-{n}", roads, tmp / f"out-{tag}-{n}",
                       tmp / f"reg-{tag}-{n}.gpkg" if a.store else None) for n in sizes]
            again = (run(code, tmp / f"drive-{sizes[1]}-week2", roads, tmp / f"out-{tag}-{sizes[1]}-week2",
                         tmp / f"reg-{tag}-{sizes[1]}.gpkg") if a.store else None)
            show(title, *res, again)


if __name__ == "__main__":
    main()
