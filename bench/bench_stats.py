"""How long does ``patrol stats`` take on a city's registry? Measured in one run.

A city registry (README: Figures for the council) holds ~7,000 damages and tens of thousands of status changes after a
few years of weekly patrols. Building one through ``Store.merge`` takes long (bench_registry_scale.py); the figures
read only ``candidates`` and ``status_history``, so this script writes those rows straight into a registry that
``patrol locate --store`` made from the sample drive's oracle detections (a valid registry, schema and all): ``--damages``
damages first seen over ``--years`` years, each with its creation row and a life of 0-6 changes (confirmed,
scheduled, repaired, reopened by a later drive, not_an_issue) along ``store.TRANSITIONS``, ~10 % of them merged
into another (left out), ~90 % with a size estimate (``est_width_m`` × ``est_length_m``: the backlog's area; the rest
without, as a drive without a camera mounting leaves them) and, with ``--sightings``, 1 to 2×N-1 sightings each
(``observations``, N on average) over its first year, each with its own size (a damage grows) and score, the
damage's estimate its best sighting's as ``Store._recompute`` keeps it (the figures take each period's size from
them). Then ``patrol stats`` (the CLI, a process of its own:
what a user waits for) by month, week and year, with ``--out`` csv and xlsx, and by week with a config's unit prices
(``repair_cost``: the cost columns; a version without them says so): seconds each (best of ``--repeat``), and the
process's time to start and read nothing (``patrol stats`` of the sample's own registry) for comparison.

    .venv/bin/python bench/bench_stats.py [--damages 7000] [--years 4] [--sightings 0] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TOYAMA = ROOT.parent / "shared" / "sample_drives" / "toyama"
JST = ZoneInfo("Asia/Tokyo")


def patrol(*args, config_refused_ok: bool = False) -> float | None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATROL_")}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode == 4 and config_refused_ok:  # a version without the setting
        return None
    if r.returncode:
        raise SystemExit(f"patrol {' '.join(map(str, args))}: exit {r.returncode}\n{r.stderr}")
    return dt


def fill(store: Path, n: int, years: int, seed: int = 0, sightings: int = 0) -> tuple[int, int, int]:
    """``n`` damages and their histories (and ~``sightings`` sightings each) written into ``store`` (its sample
    damages kept); (damages, history rows, sightings)."""
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 12, 1, tzinfo=JST) - timedelta(days=365 * years)
    span = 365 * years * 86400
    first = np.sort(rng.uniform(0, span, n))
    classes = rng.choice(["D00", "D10", "D20", "D40"], n, p=[0.45, 0.25, 0.15, 0.15])
    iso = lambda s: (t0 + timedelta(seconds=float(s))).replace(microsecond=0).isoformat()  # noqa: E731
    cands, hist, obs = [], [], []
    for i in range(n):
        cid = f"R-{100000 + i:06d}"
        t = first[i]
        hist.append((cid, iso(t), None, "new", "merge"))
        status, rep = "new", None
        for _ in range(rng.integers(0, 7)):
            t += rng.exponential(40 * 86400)
            if t > span:
                break
            nxt = {"new": ["confirmed", "repaired", "not_an_issue"], "confirmed": ["scheduled", "repaired"],
                   "scheduled": ["repaired", "confirmed"], "repaired": ["reopened"],
                   "reopened": ["confirmed", "repaired"], "not_an_issue": ["confirmed"]}[status]
            to = nxt[rng.integers(0, len(nxt))]
            hist.append((cid, iso(t), status, to, "manual"))
            status = to
            if to == "repaired":
                rep = iso(t)
        merged = "R-000001" if rng.random() < 0.1 else None
        sized = rng.random() < 0.9
        w = round(float(rng.uniform(0.1, 2.0)), 2) if sized else None
        ln = round(float(rng.uniform(0.2, 5.0)), 2) if sized else None
        if sightings:  # a damage seen again and again, larger each time; its estimate its best sighting's
            k = int(rng.integers(1, 2 * sightings))
            ts = first[i] + np.sort(rng.uniform(0, 365 * 86400, k))
            ts[0] = first[i]
            grow = np.cumprod(rng.uniform(1.0, 1.3, k))
            conf = rng.uniform(0.3, 1.0, k).round(3)
            ws = [round(w * g, 2) if sized else None for g in grow]
            ls = [round(ln * g, 2) if sized else None for g in grow]
            for j in range(k):
                obs.append((cid, f"bench-{i}", f"IMG_{j:04d}.jpg", classes[i], 0, 0, 10, 10, "", float(conf[j]),
                            float(ts[j]), float(ts[j]), ws[j], ls[j]))
            b = int(np.lexsort((ts, -conf))[0])
            w, ln = ws[b], ls[b]
        cands.append((cid, classes[i], iso(first[i]), iso(first[i] + 86400 * 7), status, iso(t), rep, merged, w, ln))
    sys.path.insert(0, str(ROOT))
    from detector.store import Store

    with Store(store) as st, st._txn():  # (its connection has the functions the spatial index's triggers call)
        con = st.con
        con.executemany("INSERT INTO candidates (candidate_id, class, first_seen, last_seen, status, status_changed_at, "
                        "repaired_at, merged_into, est_width_m, est_length_m) VALUES (?,?,?,?,?,?,?,?,?,?)", cands)
        con.executemany("INSERT INTO status_history (candidate_id, at, from_status, to_status, source) "
                        "VALUES (?,?,?,?,?)", hist)
        con.executemany("INSERT INTO observations (candidate_id, drive, image, class, x1, y1, x2, y2, owner, "
                        "confidence, first_t, last_t, est_width_m, est_length_m) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        [(*o[:10], o[10] + t0.timestamp(), o[11] + t0.timestamp(), *o[12:]) for o in obs])
    return n, len(hist), len(obs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--damages", type=int, default=7000)
    ap.add_argument("--years", type=int, default=4)
    ap.add_argument("--sightings", type=int, default=0, help="sightings per damage on average (0: none)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="build the registries here and keep them")
    a = ap.parse_args()
    d = a.keep or Path(tempfile.mkdtemp(prefix="bench_stats_"))
    d.mkdir(parents=True, exist_ok=True)
    small = d / "sample.gpkg"
    if not small.exists():
        patrol("locate", TOYAMA / "toyama-2026-11-p1.oracle.csv", TOYAMA / "toyama-2026-11-p2.oracle.csv",
               "--roads", TOYAMA / "roads.geojson", "--out", d / "out", "--store", small)
    big = d / "city.gpkg"
    shutil.copyfile(small, big)
    n, h, o = fill(big, a.damages, a.years, sightings=a.sightings)
    print(f"registry: {n:,} damages (+31 of the sample), {h:,} history rows, {o:,} sightings over {a.years} years")

    def best(*args, **kw) -> float | None:
        times = [patrol(*args, **kw) for _ in range(a.repeat)]
        return None if None in times else min(times)

    base = best("stats", small, "--until", "2026-11-30")
    print(f"patrol stats, the sample's registry (31 damages): {base:.2f} s (the process: start, imports)")
    for label, args in (("by month", ()), ("by week", ("--by", "week")), ("by year", ("--by", "year")),
                        ("by month --out csv", ("--out", d / "s.csv")), ("by week --out xlsx",
                                                                          ("--by", "week", "--out", d / "s.xlsx"))):
        t = best("stats", big, "--until", "2026-11-30", *args)
        print(f"patrol stats {label:<20} {t:6.2f} s  ({t - base:+.2f} s over the sample's)")
    prices = d / "prices.yaml"  # a test's unit prices, no city's
    prices.write_text("repair_cost:\n  per_m2: {D00: 3000, D10: 3000, D20: 8000, D40: 15000}\n  minimum: 20000\n",
                      encoding="utf-8")
    t = best("stats", big, "--until", "2026-11-30", "--by", "week", "--config", prices, config_refused_ok=True)
    label = "by week, repair_cost"
    print(f"patrol stats {label:<20} " + ("(refused: this version has no repair_cost)" if t is None else
                                          f"{t:6.2f} s  ({t - base:+.2f} s over the sample's)"))
    if a.keep is None:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
