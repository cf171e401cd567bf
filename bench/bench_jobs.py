"""How long does ``patrol export --format jobs`` take on a city's registry? Measured in one run.

The registry of ``bench_stats.py`` (``fill``: ~7,000 damages over four years with their histories, sizes and statuses,
written straight into a registry ``patrol locate --store`` made from the sample drive's oracle detections), its damages
then given positions: each on a random segment of the sample network (11,239 segments, 453 km; the longer ones
likelier, at a random chainage), so the open ones lie some 60-100 m apart along the roads, some closer: the jobs are
real groups. Then ``job_table`` in this process (the grouping and the rows, without reading or writing: best of
``--repeat``) of every damage not merged into another (every status: ~6,300 of 7,031) at ``jobs.gap_m`` 50 m and
500 m (one component); the ids (``match_ids``) matched to a record of those 50 m jobs numbered in a shuffled order
(each keeps its recorded number) and, every 10th damage left out (repaired), to the same record (jobs cut in two:
new numbers); ``Store.record_jobs`` on a copy of the registry, its first list (every id new) and the next (every id
kept); and ``patrol export --format jobs`` (the CLI, a
process of its own: what a user waits for; it records the ids: the first of the repeats inserts, the others update)
to csv, xlsx and gpkg, beside ``--format csv`` of the same damages (the repair list: reading the registry and the
network, the process's start).

    .venv/bin/python bench/bench_jobs.py [--damages 7000] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_stats import TOYAMA, fill, patrol  # noqa: E402


def place(store: Path, seed: int = 1) -> int:
    """Every damage of ``store`` put on a random segment of the sample network (by length) at a random chainage: its
    lat, lon, segment_id, chainage_m, road_name and a severity; returns how many."""
    import shapely

    from detector.config import Config
    from detector.roads import load_roads
    from detector.store import Store

    net = load_roads(TOYAMA / "roads.geojson", Config())
    rng = np.random.default_rng(seed)
    with Store(store) as st, st._txn():
        ids = [r[0] for r in st.con.execute("SELECT candidate_id FROM candidates")]
        n = len(ids)
        seg = rng.choice(len(net.ids), n, p=net.lengths / net.lengths.sum())
        ch = rng.uniform(0, 1, n) * net.lengths[seg]
        pts = shapely.line_interpolate_point(net.geoms[seg], ch)
        lon, lat = net.to_wgs84.transform(shapely.get_x(pts), shapely.get_y(pts))
        sev = rng.uniform(5, 100, n).round(1)
        st.con.executemany("UPDATE candidates SET lat=?, lon=?, segment_id=?, chainage_m=?, road_name=?, severity=? "
                           "WHERE candidate_id=?",
                           [(float(a), float(o), str(net.ids[s]), float(c), str(net.names[s]), float(v), i)
                            for a, o, s, c, v, i in zip(lat, lon, seg, ch, sev, ids)])
    return n


def city(d: Path, damages: int, sightings: int = 0) -> Path:
    """``d``/city.gpkg (made once, kept where ``d`` is kept): the sample registry (both passes' true boxes located)
    with ``damages`` more and their histories (``bench_stats.fill``: 4 years, ~``sightings`` sightings each), every
    damage on a segment of the sample network (``place``)."""
    d.mkdir(parents=True, exist_ok=True)
    big = d / "city.gpkg"
    if not big.exists():
        small = d / "sample.gpkg"
        patrol("locate", TOYAMA / "toyama-2026-11-p1.oracle.csv", TOYAMA / "toyama-2026-11-p2.oracle.csv",
               "--roads", TOYAMA / "roads.geojson", "--out", d / "out", "--store", small)
        shutil.copyfile(small, big)
        fill(big, damages, 4, sightings=sightings)
        place(big)
    return big


def ids(big: Path, df, net, cfg, repeat: int) -> None:
    """The id matching (``match_ids``) and recording (``Store.record_jobs``) of the 50 m jobs, timed (best of
    ``repeat``)."""
    import pandas as pd

    from detector.jobs import job_table, match_ids
    from detector.store import Store

    cfg.jobs.gap_m = 50.0
    j = job_table(df, net, cfg)
    t = j.table
    rng = np.random.default_rng(2)
    held = pd.DataFrame({"number": rng.permutation(len(t)) + 1, "candidate_ids": t["candidate_ids"]})
    cut = job_table(df.iloc[np.arange(len(df)) % 10 != 0], net, cfg)
    for label, jobs in (("the same jobs", j), ("every 10th damage repaired", cut)):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            number, fresh = match_ids(jobs.member_job, jobs.member_id, len(jobs.table), held)
            times.append(time.perf_counter() - t0)
        print(f"match_ids, {label}: {min(times) * 1000:.1f} ms → {len(number):,} jobs, {int((~fresh).sum()):,} ids "
              f"kept of {len(held):,} recorded, {int(fresh.sum()):,} new")
    copy = big.with_name("ids.gpkg")
    shutil.copyfile(big, copy)
    with Store.for_config(copy, cfg) as st:
        for label in ("first list", "next list"):
            t0 = time.perf_counter()
            kept, new = st.record_jobs(j)
            print(f"Store.record_jobs, {label}: {(time.perf_counter() - t0) * 1000:.0f} ms ({kept:,} kept, "
                  f"{new:,} new)")
    copy.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--damages", type=int, default=7000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="build the registry here and keep it")
    a = ap.parse_args()
    d = a.keep or Path(tempfile.mkdtemp(prefix="bench_jobs_"))
    big = city(d, a.damages)
    from detector.config import Config
    from detector.jobs import job_table
    from detector.roads import load_roads
    from detector.store import STATUSES, Store

    roads = TOYAMA / "roads.geojson"
    cfg = Config()
    net = load_roads(roads, cfg)
    with Store.for_config(big, cfg) as st:
        df = st.query(status=list(STATUSES), lists=False)  # every status: ~7,000 damages bundled (the open ones ~4,400)
    print(f"registry: {a.damages:,} damages (+31 of the sample), {len(df):,} not merged into another (every status: "
          f"the jobs' damages here), on the sample "
          f"network ({len(net.ids):,} segments, {net.lengths.sum() / 1000:.0f} km)")
    for gap in (50.0, 500.0):
        cfg.jobs.gap_m = gap
        times = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            j = job_table(df, net, cfg)
            times.append(time.perf_counter() - t0)
        t = j.table
        print(f"job_table, gap {gap:g} m: {min(times):.2f} s → {len(t):,} jobs ({int((t['n_damages'] > 1).sum()):,} "
              f"of more than one damage, the largest {int(t['n_damages'].max())})")
    ids(big, df, net, cfg, a.repeat)
    every = ("--status", ",".join(STATUSES))
    base = min(patrol("export", big, "--format", "csv", "--roads", roads, "--out", d / "list.csv", *every)
               for _ in range(a.repeat))
    print(f"patrol export --format csv (the repair list, for comparison): {base:.2f} s")
    for suffix in ("csv", "xlsx", "gpkg"):
        t = min(patrol("export", big, "--format", "jobs", "--roads", roads, "--out", d / f"jobs.{suffix}", *every)
                for _ in range(a.repeat))
        print(f"patrol export --format jobs → {suffix:<5} {t:6.2f} s  ({t - base:+.2f} s over the list's)")
    if a.keep is None:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
