"""How big and how slow is the photo ledger (`patrol export --format ledger`, 写真台帳) of a city's registry?

The registries are built as bench_report.py builds them (the Toyama oracle damages located and deduped once, copied
onto a ~3 km grid and merged as WEEKS weekly runs; each copy's crop the pipeline's crop of the sample frame, given its
own noise, so no two are the same bytes; a third of the damages confirmed / scheduled / repaired). Then
``patrol export REGISTRY --format ledger --out X.xlsx`` runs in its own process ``--repeat`` times (the whole
command: reading the registry, the workbook, the write), and once with ``--status open`` (what a crew takes out).
Prints per size: damages, file MB, MB and seconds per 1,000 damages, the average crop's KB (what each block
embeds), peak RSS (MB); the same for the xlsx list (its photos written beside it) for comparison.

    .venv/bin/python bench/bench_ledger.py [--candidates 1000,3000] [--weeks 3] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_registry_scale import EXPORT  # noqa: E402  (one export in a process of its own: time, peak memory)
from bench_report import build_registry, sample_base  # noqa: E402
from detector.config import Config  # noqa: E402
from detector.store import Store  # noqa: E402


def export(store: Path, fmt: str, out: Path, *extra: str) -> dict:
    r = subprocess.run([sys.executable, "-c", EXPORT, str(ROOT), "export", str(store), "--format", fmt, "--out",
                        str(out), *extra], capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        sys.exit(f"export failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", default="1000,3000")
    ap.add_argument("--weeks", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--keep", default=None, help="folder to keep the registries and the workbooks in")
    a = ap.parse_args()

    toy = Path(a.shared) / "sample_drives" / "toyama"
    cfg = Config()
    base, crops = sample_base(toy, cfg)
    work = Path(a.keep or tempfile.mkdtemp(prefix="bench_ledger_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"base: {len(base)} damages of the Toyama sample; medians of {a.repeat} runs of the whole command")
    print(f"{'damages':>8s} {'what':>18s} {'MB':>7s} {'s':>6s} {'MB/1000':>8s} {'s/1000':>7s} {'crop KB':>8s} "
          f"{'peak MB':>8s}")
    for n in [int(x) for x in a.candidates.split(",")]:
        d = work / f"n{n}"
        d.mkdir(exist_ok=True)
        store = d / "registry.gpkg"
        if not store.exists():
            t0 = time.perf_counter()
            build_registry(store, base, crops, n, a.weeks, cfg)
            print(f"(registry of ~{n} built in {time.perf_counter() - t0:.0f} s)")
        with Store.for_config(store, cfg) as st:
            q = st.query(lists=False)
        sel = {"all": q, "--status open": q[q["status"].isin(["new", "confirmed", "scheduled", "reopened"])]}
        for fmt, tag, extra in (("ledger", "all", ()), ("ledger", "--status open", ("--status", "open")),
                                ("xlsx", "all", ())):
            out = d / f"{fmt}-{tag.replace(' ', '').replace('-', '')}.xlsx"
            runs = [export(store, fmt, out, *extra) for _ in range(a.repeat)]
            s = statistics.median(r["s"] for r in runs)
            peak = max(r["peak_mb"] for r in runs)
            size = out.stat().st_size + sum(p.stat().st_size for p in out.parent.glob(f"{out.stem}_xlsx_crops/*"))
            k = len(sel[tag])
            kb = np.mean([len(c) for c in sel[tag]["crop_jpeg"] if c is not None]) / 1e3
            print(f"{k:8d} {fmt + ' ' + tag:>18s} {size / 1e6:7.1f} {s:6.1f} {size / 1e3 / k:8.1f} "
                  f"{s * 1000 / k:7.2f} {kb:8.1f} {peak:8.0f}")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
