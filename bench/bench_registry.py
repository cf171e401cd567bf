"""Benchmark the registry over years: the Toyama oracle candidates (p1 + p2, located and deduped once) merged as
WEEKS weekly runs into one registry. Each week holds GROUPS copies of the sample's damages, each copy offset
5 km east (its own segment ids ``<seg>@g<k>``, so copies stay distinct damages "on their road") plus one new
copy a week (new damages appear), with drives and times shifted by a week and a 12 KB crop per candidate.
Prints the time per merge, `patrol export` (csv/xlsx/geojson/gpkg/kml/html: seconds, MB and KB a row),
`import-verification` of a 1,000-row list and `patrol status` at the small and at the large registry, and their
ratios; what a `patrol run --store` reads back after its merge (the statuses of its candidates: ``Store.states``)
against reading the whole registry (``Store.query``, crops included); the file's size and free pages.
``--layouts``: the large registry also as a schema-1 registry migrated in place has it (``crop_jpeg`` in the middle of
``candidates``, first_t, last_t, repaired_t, created_run, crop_obs_id after it; a new registry has the crop last), both
compacted as the migration leaves them: reads of the columns after the crop (warm and with the file evicted from the
OS cache) and weekly merges, side by side.
``--time-form DAYS``: the first write after the upgrade to one status time form (``Store._normalise_times``), on
a copy of the large registry with DAYS distinct bare dates, against the next write.
``--frames N``: every weekly drive merged with N frames (``frames`` table, synthetic keys), plus each week a card
folder called ``DCIM`` with N frames named IMG_0001.jpg … (a folder name held for another drive: the name-reuse
check, ``Store._drive_names``); at the end the per-drive queries on ``frames`` (that check, a drive's frames) and a
weekly merge timed on the registry as it is and on a copy without the index ``frames_did``, and both files' sizes.

    .venv/bin/python bench/bench_registry.py [--weeks 100] [--groups 20] [--layouts] [--frames 100] [--time-form 365]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detector.config import Config  # noqa: E402
from detector.detections import Detections, read_detections_csv  # noqa: E402
from detector.pipeline import locate_and_dedupe  # noqa: E402
from detector.store import _FRAMES_INDEX_SQL, Store  # noqa: E402


def week_cands(base: pd.DataFrame, week: int, groups: list[int]) -> pd.DataFrame:
    """The base candidates as seen in ``week``: one copy per group, 5 km east per group, drives renamed."""
    dt = timedelta(days=7 * week)
    rng = np.random.default_rng(week)
    parts = []
    for g in groups:
        c = base.copy()
        c["lon"] = c["lon"] + 0.056 * g  # ~5 km at 36.7 N
        c["lat"] = c["lat"] + rng.normal(0, 2e-5, len(c))  # this week's GPS offset (~2 m)
        c["segment_id"] = [f"{s}@g{g}" for s in c["segment_id"]]
        sfx = f"-w{week:03d}-g{g:03d}"
        c["drives"] = [[d + sfx for d in ds] for ds in c["drives"]]
        c["best_drive"] = [d + sfx for d in c["best_drive"]]
        if "last_drive" in c:
            c["last_drive"] = [d + sfx for d in c["last_drive"]]
        c["images"] = [[i.split("/", 1)[0] + sfx + "/" + i.split("/", 1)[1] for i in ims] for ims in c["images"]]
        for col in ("first_seen", "last_seen"):
            c[col] = [(datetime.fromisoformat(t) + dt).isoformat() for t in c[col]]
        if "observations" in c:  # every sighting with its box and time (dedupe): the same week and drives
            c["observations"] = [[{**o, "drive": o["drive"] + sfx, "time": o["time"] and (
                datetime.fromisoformat(o["time"]) + dt).isoformat()} for o in obs] for obs in c["observations"]]
        c["candidate_id"] = [f"{x}{sfx}" for x in c["candidate_id"]]
        c["crop_jpeg"] = [os.urandom(12_000) for _ in range(len(c))]
        parts.append(c)
    out = pd.concat(parts, ignore_index=True)
    return out


def week_frames(c: pd.DataFrame, week: int, n: int, t0: datetime) -> list[tuple]:
    """``(drive, image, frame_key, time, lat, lon, heading)`` of ``n`` frames of every drive of the week's candidates
    and of that week's ``DCIM`` card (camera numbering: the same names every week, other photos): what
    ``frames.frame_keys`` gives, the passes (schema 4) made of them."""
    rng = np.random.default_rng(10_000 + week)
    drives = sorted({d for ds in c["drives"] for d in ds}) + ["DCIM"]
    start = t0 + timedelta(days=7 * week)
    keys = rng.integers(0, 2 ** 63 - 1, size=len(drives) * n, dtype=np.int64)
    # positions: each drive's frames along its group's copy of the sample route (south-bound, 36.6870 -> 36.6775, the
    # group's 5 km east), ~10 m apart at n=100, with this week's GPS noise (~2 m); the DCIM card's have none
    lat = np.linspace(36.6870, 36.6775, max(n, 1))
    pos = {}
    for d in drives:
        g = int(d.rsplit("-g", 1)[1]) if "-g" in d else None
        pos[d] = (None if g is None else (lat + rng.normal(0, 2e-5, len(lat)),
                                          137.2364 + 0.056 * g + rng.normal(0, 2e-5, len(lat))))
    nan = float("nan")
    return [(d, f"IMG_{i + 1:04d}.jpg" if d == "DCIM" else f"{d}_{i:05d}.jpg", int(keys[j * n + i]),
             start + timedelta(seconds=i), *((float(pos[d][0][i]), float(pos[d][1][i]), 180.0) if pos[d] else
                                             (nan, nan, nan)))
            for j, d in enumerate(drives) for i in range(n)]


def frames_index(store: Path, work: Path, cfg: Config, base: pd.DataFrame, week: int, groups: int, n: int,
                 t0: datetime) -> None:
    """The per-drive queries on ``frames`` with and without the index ``frames_did``, on two copies
    of the large registry (each compacted, so the sizes compare), and the next weekly merge on each."""
    import shutil
    import sqlite3

    with_ix, without = work / "frames_with_index.gpkg", work / "frames_without_index.gpkg"
    for p, make in ((with_ix, True), (without, False)):
        shutil.copy(store, p)
        con = sqlite3.connect(p)
        con.execute(_FRAMES_INDEX_SQL if make else "DROP INDEX IF EXISTS frames_did")
        con.execute("VACUUM")
        con.close()
    size = {p: p.stat().st_size for p in (with_ix, without)}
    c = week_cands(base, week, list(range(groups)) + [groups + week])
    fr = week_frames(c, week, n, t0)
    print(f"\nframes: {n} a drive; per-drive queries, mean of 20 (ms), and the next weekly merge (s):")
    for p in (without, with_ix):
        con = sqlite3.connect(p)
        nf, nd = con.execute("SELECT (SELECT COUNT(*) FROM frames), (SELECT COUNT(*) FROM drives)").fetchone()
        did = con.execute("SELECT did FROM drives WHERE drive='DCIM'").fetchone()[0]
        names = json.dumps([f"IMG_{i + 1:04d}.jpg" for i in range(n)])
        q = {"name-reuse check (a drive's names)": ("SELECT image FROM frames WHERE did=? AND image IN "
                                                    "(SELECT value FROM json_each(?))", (did, names)),
             "a drive's frames": ("SELECT frame_key, image FROM frames WHERE did=?", (did,)),
             "frames per drive (all)": ("SELECT did, COUNT(*) FROM frames GROUP BY did", ())}
        res = {}
        for k, (sql, args) in q.items():
            con.execute(sql, args).fetchall()  # warm
            t = time.perf_counter()
            for _ in range(20):
                con.execute(sql, args).fetchall()
            res[k] = (time.perf_counter() - t) / 20 * 1e3
        con.close()
        with Store.for_config(p, cfg) as st:
            tm, r = timed(st.merge, c, {"run_id": f"week{week:03d}"}, cfg, frames=fr)
        label = "with index   " if p == with_ix else "without index"
        print(f"  {label}: {nf} frames of {nd} drives, file {size[p] / 1e6:.1f} MB; "
              + ", ".join(f"{k} {v:.2f} ms" for k, v in res.items())
              + f"; merge {tm:.2f} s ({len(r.renamed)} renamed, {r.frames_recorded} frames recorded"
              + (", the index created first: a registry made before it)" if p == without else ")"))


def timed(fn, *a, **k):
    t0 = time.perf_counter()
    r = fn(*a, **k)
    return time.perf_counter() - t0, r


def registry_ops(store: Path, work: Path, cfg: Config, tag: str) -> dict[str, float]:
    from detector.report import export

    out = {}
    with Store.for_config(store, cfg) as st:
        out["query"], df = timed(st.query)
        ids = df["candidate_id"].tolist()[-651:]  # one weekly run's worth
        out["run read-back"], _ = timed(st.states, ids)
    for fmt in ("csv", "xlsx", "geojson", "gpkg", "kml", "html"):
        t0 = time.perf_counter()
        with Store.for_config(store, cfg) as st:
            df = st.query(lists=False)  # as `patrol export` reads it
        export(df, fmt, work / f"{tag}.{fmt}", cfg)
        out[f"export {fmt}"] = time.perf_counter() - t0
        out[f"export {fmt} MB"] = (work / f"{tag}.{fmt}").stat().st_size / 1e6
        out[f"export {fmt} KB/row"] = (work / f"{tag}.{fmt}").stat().st_size / 1e3 / max(len(df), 1)
    ids = df["candidate_id"].tolist()
    news = [i for i, s in zip(ids, df["status"]) if s == "new"][:1000]
    lst = work / f"{tag}-crew.csv"
    with open(lst, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["candidate_id", "status", "note", "checked_by"])
        for k, i in enumerate(news):
            w.writerow([i, "confirmed" if k % 2 else "new", f"checked {tag}", "crew A"])
    with Store.for_config(store, cfg) as st:
        out["import 1000 rows"], rep = timed(st.import_verification, lst)
    with Store.for_config(store, cfg) as st:
        t0 = time.perf_counter()
        st.set_status(news[0], "scheduled", note="bench")
        out["status (one change)"] = time.perf_counter() - t0
    return out


def layouts(store: Path, work: Path, cfg: Config, base: pd.DataFrame, week: int, groups: int) -> None:
    """Crop last (a new registry) against crop in the middle (a schema-1 registry migrated in place): read and merge
    times of two copies of ``store`` (see the module doc)."""
    import shutil
    import sqlite3

    from detector.store import _CAND_SQL_TYPES, _GEOM_FUNCTIONS, _gpkg_geom_function

    cols = list(_CAND_SQL_TYPES)
    mid = cols[: cols.index("issue_type") + 1] + ["crop_jpeg", "first_t", "last_t", "repaired_t", "created_run",
                                                  "crop_obs_id"]
    paths = {"crop last": work / "layout-last.gpkg", "crop mid": work / "layout-mid.gpkg"}
    for k, p in paths.items():
        shutil.copy(store, p)
        con = sqlite3.connect(p, isolation_level=None)
        for name in _GEOM_FUNCTIONS:
            con.create_function(name, 1, _gpkg_geom_function(name))
        if k == "crop mid":  # the table rebuilt in schema 1's order (+ crop_obs_id, added by the migration)
            con.execute("BEGIN")
            trig = con.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger' AND tbl_name='candidates'").fetchall()
            for name, _ in trig:
                con.execute(f'DROP TRIGGER "{name}"')
            con.execute("CREATE TABLE c_mid (fid INTEGER PRIMARY KEY AUTOINCREMENT, geom POINT, "
                        + ", ".join(f'"{c}" {_CAND_SQL_TYPES[c]}' for c in mid) + ")")
            q = ", ".join(f'"{c}"' for c in ["fid", "geom", *mid])
            con.execute(f"INSERT INTO c_mid ({q}) SELECT {q} FROM candidates")
            con.execute("DROP TABLE candidates")
            con.execute("ALTER TABLE c_mid RENAME TO candidates")
            for _, sql in trig:
                con.execute(sql)
            con.execute("COMMIT")
        con.executescript("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")  # as the migration leaves it
        con.close()

    def evict(p: Path) -> None:  # the file out of the OS cache: a first read after a while, or over a network share
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)

    def scan(p: Path) -> None:
        con = sqlite3.connect(p)
        con.execute("SELECT candidate_id, first_t, last_t, repaired_t, crop_obs_id FROM candidates").fetchall()
        con.close()

    def since(p: Path) -> None:
        with Store.for_config(p, cfg) as st:
            st.query(since="2000-01-01", lists=False)  # `patrol export --since`: last_t of every row

    print(f"\ncolumns after the crop ({', '.join(f'{k}: {p.name}' for k, p in paths.items())}), best of 5:")
    for name, fn in (("scan first_t..crop_obs_id", scan), ("query(since)", since)):
        for cold in (False, True):
            got = {}
            for k, p in paths.items():
                ts = []
                for _ in range(5):
                    if cold:
                        evict(p)
                    ts.append(timed(fn, p)[0])
                got[k] = min(ts)
            print(f"  {name + (' (cold)' if cold else ''):32s} " + "  ".join(f"{k} {v * 1000:7.1f} ms" for k, v in got.items())
                  + f"  (x{got['crop mid'] / got['crop last']:.2f})")
    merges: dict[str, list[float]] = {k: [] for k in paths}
    for w in range(week, week + 4):
        c = week_cands(base, w, list(range(groups)) + [groups + w])
        for k in (list(paths) if w % 2 else list(paths)[::-1]):  # alternating, against drift of a shared machine
            with Store.for_config(paths[k], cfg) as st:
                merges[k].append(timed(st.merge, c, {"run_id": f"week{w:03d}"}, cfg)[0])
    print("  weekly merge (4 weeks)           " + "  ".join(f"{k} {min(v):.2f}-{max(v):.2f} s" for k, v in merges.items()))


def time_form(store: Path, work: Path, cfg, days: int) -> None:
    """The first write after the upgrade to one time form (``Store._normalise_times``) on a copy of the large
    registry whose status times are bare dates (a crew's CSV dates before), ``days`` distinct ones, against the
    next write."""
    import shutil
    from datetime import date

    path = work / "bare-dates.gpkg"
    shutil.copy(store, path)
    with Store.for_config(path, cfg) as st:  # (its connection has the functions the spatial index's triggers call)
        vals = json.dumps([(date(2025, 1, 1) + timedelta(days=i)).isoformat() for i in range(days)])
        st.con.execute(f"UPDATE candidates SET status_changed_at = json_extract(?, '$[' || (fid % {days}) || ']')",
                       (vals,))
        st.con.execute(f"UPDATE status_history SET at = json_extract(?, '$[' || (hid % {days}) || ']')", (vals,))
        st.con.execute("DELETE FROM patrol_meta WHERE key='time_form'")
        st.con.commit()
    with Store.for_config(path, cfg) as st:
        n_c, n_h = st.con.execute("SELECT (SELECT COUNT(*) FROM candidates), (SELECT COUNT(*) FROM status_history)"
                                  ).fetchone()
        ids = [r[0] for r in st.con.execute("SELECT candidate_id FROM candidates WHERE status='new' LIMIT 2")]
        t1, _ = timed(st.set_status, ids[0], "confirmed")
        t2, _ = timed(st.set_status, ids[1], "confirmed")
    print(f"\ntime form: {n_c} damages, {n_h} history rows, {days} distinct bare dates: first write after the "
          f"upgrade {t1:.3f} s (rewrites them), the next {t2:.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weeks", type=int, default=100)
    ap.add_argument("--groups", type=int, default=20)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--keep", default=None, help="folder to keep the registry in")
    ap.add_argument("--layouts", action="store_true", help="also crop last against crop in the middle (a migrated "
                    "schema-1 registry): read and merge times")
    ap.add_argument("--frames", type=int, default=0, help="frames a drive (and a weekly DCIM card): the frames "
                    "table's per-drive queries with and without its index")
    ap.add_argument("--time-form", type=int, default=0, metavar="DAYS", help="the first write after the upgrade "
                    "to one status time form, on a copy of the large registry holding DAYS distinct bare dates")
    a = ap.parse_args()
    toy = Path(a.shared) / "sample_drives" / "toyama"
    cfg = Config()
    det = Detections.concat([read_detections_csv(toy / f"toyama-2026-11-p{i}.oracle.csv") for i in (1, 2)])
    _, _, base, _ = locate_and_dedupe(det, toy / "roads.geojson", cfg)
    work = Path(a.keep or tempfile.mkdtemp(prefix="bench_registry_"))
    work.mkdir(parents=True, exist_ok=True)
    store = work / "registry.gpkg"
    if store.exists():
        store.unlink()
    rows = []
    ops = {}
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=cfg.tz)
    for w in range(a.weeks):
        c = week_cands(base, w, list(range(a.groups)) + [a.groups + w])
        with Store.for_config(store, cfg) as st:
            n_c, n_o = st.con.execute("SELECT (SELECT COUNT(*) FROM candidates), (SELECT COUNT(*) FROM observations)").fetchone()
            fr = week_frames(c, w, a.frames, t0) if a.frames else None
            t, res = timed(st.merge, c, {"run_id": f"week{w:03d}"}, cfg, frames=fr)
            t2, _ = timed(st.merge, c, {"run_id": f"week{w:03d}-again"}, cfg, frames=fr)  # the re-run: no-op
        rows.append((w, n_c, n_o, len(c), t, t2, len(res.new), len(res.seen_again)))
        if w in (0, 1, a.weeks // 2) or w == a.weeks - 1 or w % 10 == 0:
            print(f"week {w:3d}: registry {n_c:6d} candidates {n_o:7d} obs, merge {len(c)} cands {t:6.2f} s "
                  f"(re-merge {t2:5.2f} s) new {len(res.new)} seen again {len(res.seen_again)}", flush=True)
        if w == 1:
            ops["small"] = registry_ops(store, work, cfg, "small")
    ops["large"] = registry_ops(store, work, cfg, "large")
    r = pd.DataFrame(rows, columns=["week", "cands", "obs", "n_run", "merge_s", "remerge_s", "new", "seen"])
    small, large = r.iloc[1:4], r.iloc[-3:]
    with Store.for_config(store, cfg) as st:
        free, pages = (st.con.execute(f"PRAGMA {p}").fetchone()[0] for p in ("freelist_count", "page_count"))
    print(f"\nregistry file: {store.stat().st_size / 1e6:.1f} MB ({free / max(pages, 1):.0%} free pages), "
          f"{r['cands'].iloc[-1]} candidates, {r['obs'].iloc[-1]} observations before the last merge")
    print(f"merge:    {small['merge_s'].mean():.3f} s at ~{int(small['cands'].mean())} candidates -> "
          f"{large['merge_s'].mean():.3f} s at ~{int(large['cands'].mean())} (x{large['merge_s'].mean() / small['merge_s'].mean():.2f})")
    print(f"re-merge: {small['remerge_s'].mean():.3f} s -> {large['remerge_s'].mean():.3f} s "
          f"(x{large['remerge_s'].mean() / small['remerge_s'].mean():.2f})")
    print(f"all {a.weeks} merges: {r['merge_s'].sum():.1f} s")
    for k in ops["large"]:
        s, l_ = ops["small"][k], ops["large"][k]
        unit = k.rsplit(" ", 1)[1] if k.endswith(("MB", "KB/row")) else "s"
        k = k if unit == "s" else k.rsplit(" ", 1)[0] + " size"
        print(f"{k:20s} {s:7.3f} {unit} -> {l_:7.3f} {unit} (x{l_ / s:.2f})")
    if a.layouts:
        layouts(store, work, cfg, base, a.weeks, a.groups)
    if a.frames:
        frames_index(store, work, cfg, base, a.weeks, a.groups, a.frames, t0)
    if a.time_form:
        time_form(store, work, cfg, a.time_form)
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
