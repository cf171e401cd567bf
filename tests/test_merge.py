"""``patrol merge`` (``Store.merge_candidates``): the office says two registry candidates are one damage. Real data: the
sample drive's two oracle passes (locate + dedupe, the drives' own frames with their positions and headings), one
damage seen once by each pass, apart from the others; the registry made to hold it twice as a road department gets it:
p2's GPS 40 m off for it (more than ``store.match_distance_m``), or p2's detection of it in another class (D20)."""

from __future__ import annotations

import copy
import csv
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detector.config import Config
from detector.errors import StoreError, UsageError
from detector.store import SCHEMA_VERSION, Store

from test_store import _oracle_candidates, dump, old_store
from test_store_passes import _recomputed

ROOT = Path(__file__).resolve().parent.parent
P1, P2, P3 = "toyama-2026-11-p1", "toyama-2026-11-p2", "toyama-2026-12-p3"
SHIFT_M = 40.0  # p2's GPS error at the damage: more than store.match_distance_m (25 m)
SCHEMA4_COMMIT = "e0679d4"  # the last patrol writing schema 4 (no merged_into)
_QUERY_SKIP = ("status_changed_at",)  # (a new damage's: the time of the merge that made it)


@pytest.fixture(scope="module")
def sample():
    """(cfg, [p1, p2, p3] candidates (p3: p1 read again as another drive, 14 days later), frames of p1 and p2 as
    ``frame_keys`` gives them, the damage's row label in p1, in p2, in p3)."""
    from conftest import TOYAMA, need
    from detector.frames import frame_keys, scan_drive

    toyama = need(TOYAMA)
    cfg = Config()
    passes, how = _oracle_candidates(toyama, cfg)
    if how != "locate+dedupe":
        pytest.skip("locate/dedupe not importable: the candidates' positions would be hand-made")
    keys = {d: frame_keys([f for f in scan_drive(toyama / d, cfg) if f.ok]) for d in (P1, P2)}
    p1, p2, p3 = passes

    def near(df, c, m):
        return np.hypot((df["lat"] - c["lat"]) * 111_000, (df["lon"] - c["lon"]) * 90_000) < m

    lat = p1["lat"].to_numpy(float)
    for i in np.argsort(np.abs(lat - np.median(lat))):  # (the middle of the route first)
        c = p1.iloc[i]
        if c["class"] != "D00" or (near(p1, c, 60) & (p1["class"].isin(["D00", "D20"]))).sum() != 1:
            continue
        for other in (p2, p3):  # once, and no D00/D20 but it within 60 m (the shift and the relabel stay apart)
            if (near(other, c, 25) & (other["class"] == "D00")).sum() != 1 or (
                    near(other, c, 60) & other["class"].isin(["D00", "D20"])).sum() != 1:
                break
        else:
            l2 = p2.index[(near(p2, c, 25) & (p2["class"] == "D00")).to_numpy()][0]
            l3 = p3.index[(near(p3, c, 25) & (p3["class"] == "D00")).to_numpy()][0]
            return cfg, [p1, p2, p3], keys, p1.index[i], l2, l3
    pytest.skip("no D00 damage of the sample seen once by each pass, apart from the others")


def _shifted(p2: pd.DataFrame, label) -> pd.DataFrame:
    """p2 with the damage placed SHIFT_M north (along its road: chainage too), as a week's GPS error puts it."""
    p = p2.copy()
    p.loc[label, "lat"] = p.loc[label, "lat"] + SHIFT_M / 111_195.0
    p.loc[label, "chainage_m"] = p.loc[label, "chainage_m"] + SHIFT_M
    return p


def _relabelled(cands: pd.DataFrame, label, cls: str = "D20", drive: str | None = None) -> pd.DataFrame:
    """The damage detected as ``cls`` (its observations' class is the candidate's); ``drive``: every row read again
    as that drive (a later week's drive: new sighting keys)."""
    p = cands.copy()
    p.loc[label, "class"] = cls
    if drive is not None:
        old = p["best_drive"].iloc[0]
        p["best_drive"] = drive
        p["last_drive"] = drive
        p["drives"] = [[drive] for _ in range(len(p))]
        p["images"] = [[i.replace(old + "/", drive + "/") for i in v] for v in p["images"]]
        p["observations"] = [[{**o, "drive": drive} for o in copy.deepcopy(v)] for v in p["observations"]]
    return p


def _registry(path: Path, cfg, runs) -> Path:
    with Store(path) as st:
        for name, cands, frames in runs:
            st.merge(cands, {"run_id": name}, cfg, frames=frames)
    return path


def _ids(path: Path, cands: pd.DataFrame, label) -> set[str]:
    """The registry ids holding the run candidate ``label``'s sightings."""
    con = sqlite3.connect(path)
    try:
        return {cid for o in cands.loc[label, "observations"] for (cid,) in con.execute(
            "SELECT candidate_id FROM observations WHERE drive=? AND image=? AND x1=?",
            (o["drive"], o["image"], int(round(o["x1"]))))}
    finally:
        con.close()


def _split(sample, tmp_path: Path, name: str = "split.gpkg"):
    """(the registry holding the damage twice, the target (p1's), the id to merge (p2's, 40 m off))."""
    cfg, (p1, p2, _), keys, l1, l2, _ = sample
    path = _registry(tmp_path / name, cfg, [("p1", p1, keys[P1]), ("p2", _shifted(p2, l2), keys[P2])])
    (target,), (dup,) = _ids(path, p1, l1), _ids(path, p2, l2)
    assert target != dup  # (40 m off: p2's sighting became a new damage)
    return path, target, dup


def _query(path: Path) -> pd.DataFrame:
    with Store(path) as st:
        q = st.query()
    return q[[c for c in q.columns if c not in _QUERY_SKIP]]


def test_merged_sightings_count_on_the_target_as_if_never_split(sample, tmp_path):
    """After ``merge_candidates(dup, target)`` the registry lists what it lists had p2's GPS been right: every damage's
    n_obs, first/last seen, drives, images, best sighting, position, severity, n_drives, last drive and its images,
    n_passes / n_unseen / last_passed (the exports' frame, ``query``) equal those of the registry of p1 + p2 as
    driven. The passes are those every frame held gives (a full recompute changes nothing). The merged id stays as a
    record: merged_into, no sighting, no passes, no point; a history row on both."""
    cfg, (p1, p2, _), keys, l1, l2, _ = sample
    ref = _registry(tmp_path / "ref.gpkg", cfg, [("p1", p1, keys[P1]), ("p2", p2, keys[P2])])
    path, target, dup = _split(sample, tmp_path)
    n_dup = int(_query(path).set_index("candidate_id").loc[dup, "n_obs"])
    with Store(path) as st:
        res = st.merge_candidates(dup, target, note="GPS off 40 m", who="Tanaka", cfg=cfg)
    assert (res.candidate_id, res.into, res.sightings, res.drives) == (dup, target, n_dup, 1)
    assert 30 <= res.apart_m <= 60  # (p2's GPS 40 m off)
    assert res.message == (f"{dup} merged into {target} (D00 縦ひび割れ, {res.apart_m:.0f} m apart): {n_dup} "
                           f"sighting{'s' * (n_dup != 1)}, 1 drive moved; {target} now {res.n_obs} sightings over 2 "
                           "drives")
    pd.testing.assert_frame_equal(_query(path), _query(ref))
    assert dump(path, skip=()) == _recomputed(path, cfg)  # (passes: what every frame held gives)
    con = sqlite3.connect(path)
    try:
        row = con.execute("SELECT merged_into, n_obs, geom, crop_jpeg, n_passes FROM candidates WHERE candidate_id=?",
                          (dup,)).fetchone()
        assert row == (target, 0, None, None, None)
        assert con.execute("SELECT COUNT(*) FROM observations WHERE candidate_id=?", (dup,)).fetchone() == (0,)
        assert con.execute("SELECT COUNT(*) FROM passes WHERE candidate_id=?", (dup,)).fetchone() == (0,)
        hist = con.execute("SELECT candidate_id, from_status, to_status, who, note, source FROM status_history WHERE "
                           "source LIKE 'merged-%' ORDER BY hid").fetchall()
    finally:
        con.close()
    assert hist == [(dup, "new", "new", "Tanaka", f"merged into {target} ({n_dup} sighting{'s' * (n_dup != 1)} moved): "
                                                  "GPS off 40 m", f"merged-into:{target}"),
                    (target, "new", "new", "Tanaka", f"{dup} merged into it ({n_dup} sighting{'s' * (n_dup != 1)}, "
                                                     f"{dup} was D00 new): GPS off 40 m", f"merged-from:{dup}")]


def test_a_later_run_does_not_bring_the_merged_id_back(sample, tmp_path):
    """p2 merged again (with its GPS 40 m off, or right), and a later drive (p3): the damage is the target's, the
    merged id gets nothing; the same drives again change nothing at all."""
    cfg, (p1, p2, p3), keys, l1, l2, l3 = sample
    path, target, dup = _split(sample, tmp_path)
    with Store(path) as st:
        st.merge_candidates(dup, target, cfg=cfg)
    before = dump(path, skip=())
    with Store(path) as st:
        for name, cands in (("p2 again", _shifted(p2, l2)), ("p2 right", p2)):
            res = st.merge(cands, {"run_id": name}, cfg, frames=keys[P2])
            assert not res.new and res.mapping[l2] == target and not res.changed, name
    assert dump(path, skip=()) == before
    with Store(path) as st:
        res = st.merge(p3, {"run_id": "p3"}, cfg)
    assert not res.new and res.mapping[l3] == target and target in res.seen_again
    q = _query(path).set_index("candidate_id")
    assert dup not in q.index and P3 in q.loc[target, "drives"]


def test_classes_differ_the_target_keeps_its_class_and_takes_the_class_merged(sample, tmp_path):
    """p2 detected the damage as D20 (a crack read as two classes): two damages, D00 and D20, at one place. Merged:
    the target keeps D00 and says so; p2 again matches it by its sightings, and a later drive's D20 there (p3,
    new sighting keys) is the target seen again, not a new damage."""
    cfg, (p1, p2, p3), keys, l1, l2, l3 = sample
    path = _registry(tmp_path / "cls.gpkg", cfg, [("p1", p1, keys[P1]),
                                                   ("p2", _relabelled(p2, l2), keys[P2])])
    (target,), (dup,) = _ids(path, p1, l1), _ids(path, p2, l2)
    assert target != dup
    with Store(path) as st:
        res = st.merge_candidates(dup, target, cfg=cfg)
    assert (res.cls, res.into_cls) == ("D20", "D00")
    assert any(f"classes differ: {dup} was D20, {target} keeps its class D00" in n for n in res.notes), res.notes
    q = _query(path).set_index("candidate_id")
    assert dup not in q.index and q.loc[target, "class"] == "D00" and q.loc[target, "n_drives"] == 2
    before = dump(path, skip=())
    with Store(path) as st:
        res = st.merge(_relabelled(p2, l2), {"run_id": "p2 again"}, cfg, frames=keys[P2])
        assert not res.new and res.mapping[l2] == target
    assert dump(path, skip=()) == before
    with Store(path) as st:
        res = st.merge(_relabelled(p3, l3, drive=P3), {"run_id": "p3"}, cfg)
    assert not res.new and res.mapping[l3] == target and target in res.seen_again


def test_refusals(sample, tmp_path):
    """Unknown id, the same id twice, an id merged before (naming where it went), into a merged id (naming the damage
    it is part of now), a status set on a merged id: refused, nothing written."""
    cfg = sample[0]
    path, target, dup = _split(sample, tmp_path)
    with Store(path) as st:
        st.merge_candidates(dup, target, cfg=cfg)
        other = next(c for c in st.query()["candidate_id"] if c != target)
    before = dump(path, skip=())
    cases = [((dup, "R-999999"), "unknown candidate id 'R-999999'"),
             ((target, target), "cannot merge a candidate into itself"),
             ((dup, other), f"{dup} was merged into {target} on "),
             ((other, dup), f"{dup} was merged into {target} on .*merge into {target} instead \\(patrol merge "
                            f"{re.escape(str(path))} {other} --into {target}\\)"),
             ((target, dup), "already one damage")]
    with Store(path) as st:
        for (a, b), msg in cases:
            with pytest.raises(UsageError, match=msg):
                st.merge_candidates(a, b, cfg=cfg)
        with pytest.raises(UsageError, match=f"{dup} was merged into {target} .*patrol status "
                                                 f"{re.escape(str(path))} {target} --set"):
            st.set_status(dup, "confirmed")
    assert dump(path, skip=()) == before


def _patrol(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, encoding="utf-8", timeout=300)


def test_cli_merge_exports_and_an_old_list(sample, tmp_path):
    """``patrol merge`` on a registry made by ``patrol locate --store`` from the oracle CSVs, p2's GPS 40 m off for
    the damage: one line saying what moved; every export format lists the merged id no more; refusals exit 2 with one
    line; ``patrol status`` on the merged id says where it went; a crew list exported before the merge with the
    merged id's row filled in is applied to the target, and held where the target was changed since."""
    import openpyxl
    import pyogrio

    from conftest import TOYAMA

    cfg, (p1, p2, _), _, l1, l2, _ = sample
    roads = TOYAMA / "roads.geojson"
    det = pd.read_csv(TOYAMA / f"{P2}.oracle.csv", dtype=str, keep_default_na=False)
    off = det["image"].isin([o["image"] for o in p2.loc[l2, "observations"]])
    det.loc[off, "lat"] = [f"{float(v) + SHIFT_M / 111_195.0:.7f}" for v in det.loc[off, "lat"]]
    (tmp_path / "gps").mkdir()
    det.to_csv(tmp_path / "gps" / f"{P2}.oracle.csv", index=False)
    reg = tmp_path / "registry.gpkg"
    for k, f in enumerate((TOYAMA / f"{P1}.oracle.csv", tmp_path / "gps" / f"{P2}.oracle.csv")):
        r = _patrol("locate", f, "--roads", roads, "--out", tmp_path / f"o{k}", "--store", reg)
        assert r.returncode == 0, r.stderr
    (target,) = _ids(reg, p1, l1)
    dups = sorted(_ids(reg, p2, l2) - {target})
    assert dups  # (p2's sightings of it 40 m off: new damages)
    r = _patrol("export", reg, "--format", "csv", "--out", tmp_path / "list.csv")
    assert r.returncode == 0, r.stderr
    with Store(reg) as st:
        n_obs = st.query(lists=False).set_index("candidate_id")["n_obs"].to_dict()
    total = n_obs[target]
    for k, dup in enumerate(dups):
        r = _patrol("merge", reg, dup, "--into", target, "--note", "GPS off", "--who", "Tanaka")
        assert r.returncode == 0, r.stderr
        n, total = n_obs[dup], total + n_obs[dup]
        m = re.fullmatch(
            rf"{dup} merged into {target} \(D00 縦ひび割れ, (\d+) m apart\): {n} sighting{'s' * (n != 1)}, "
            rf"{1 - min(k, 1)} drive{'s' * (k > 0)} moved; {target} now {total} sightings over 2 drives",
            r.stdout.splitlines()[0])
        assert m and 20 <= int(m[1]) <= 60, r.stdout  # (p2's GPS 40 m off)
        assert f"{dup} was new (新規); {target} keeps its status new (新規)" in r.stdout
    # a mistyped id: a damage hundreds of metres away is refused (nothing changes), --force merges it
    with Store(reg) as st:
        q = st.query(lists=False).set_index("candidate_id")
    far = (np.hypot((q["lat"] - q.at[target, "lat"]) * 111_195.0,
                    (q["lon"] - q.at[target, "lon"]) * 111_195.0 * np.cos(np.radians(q.at[target, "lat"])))
           .drop(target).idxmax())
    before = _query(reg)
    r = _patrol("merge", reg, far, "--into", target)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert re.search(rf"{far} lies (\d+) m from {target}, more than 100 m .*--force merges them anyway", r.stderr)
    assert int(re.search(r"lies (\d+) m", r.stderr)[1]) > 100, r.stderr
    pd.testing.assert_frame_equal(_query(reg), before)
    forced = tmp_path / "forced.gpkg"
    shutil.copy(reg, forced)
    r = _patrol("merge", forced, far, "--into", target, "--force")
    assert r.returncode == 0 and f"{far} merged into {target}" in r.stdout, r.stderr
    dup = dups[0]
    for args, msg in (((dup, "--into", target), f"{dup} was merged into {target}"),
                      (("R-999999", "--into", target), "unknown candidate id 'R-999999'"),
                      ((target, "--into", target), "cannot merge a candidate into itself")):
        r = _patrol("merge", reg, *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and msg in r.stderr, r.stderr
    r = _patrol("status", reg, dup, "--set", "confirmed")
    assert r.returncode == 2 and f"{dup} was merged into {target}" in r.stderr, r.stderr

    outs = {"geojson": "m.geojson", "gpkg": "m.gpkg", "csv": "m.csv", "xlsx": "m.xlsx", "kml": "m.kml",
            "html": "m.html", "shp": "m.shp"}
    with Store(reg) as st:
        n = len(st.query(lists=False))
    for fmt, name in outs.items():
        r = _patrol("export", reg, "--format", fmt, "--out", tmp_path / name)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"{n} damages"), r.stdout
        out = tmp_path / name
        if fmt in ("gpkg", "shp"):
            # (the shapefile's columns have other names: every text cell; the gpkg's damages by name, beside its
            # QGIS style table)
            df = pyogrio.read_dataframe(out, **({"layer": "candidates"} if fmt == "gpkg" else {}))
            ids = {v for c in df.columns if c != "geometry" for v in df[c] if isinstance(v, str)}
        elif fmt == "xlsx":
            wb = openpyxl.load_workbook(out, read_only=True)
            ids = {str(c) for row in wb["candidates"].iter_rows(values_only=True) for c in row if c}
            wb.close()
        else:
            text = out.read_text(encoding="utf-8-sig")
            ids = {w for w in dups + [target] if w in text}
        assert target in ids and not set(dups) & ids, fmt

    # the crew's list, exported before the merge: the merged id's row filled in
    with open(tmp_path / "list.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    head = rows[0]
    row = next(r for r in rows[1:] if r[head.index("candidate_id")] == dup)
    row[head.index("status")], row[head.index("checked_by")] = "confirmed", "Sato"
    with open(tmp_path / "crew.csv", "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([head, row])
    held = tmp_path / "held.gpkg"
    held.write_bytes(reg.read_bytes())
    r = _patrol("import-verification", reg, tmp_path / "crew.csv")
    assert r.returncode == 0, r.stderr
    assert "applied 1," in r.stdout and f"{dup} was merged into {target} on " in r.stdout, r.stdout
    assert f"the row is taken as {target}'s" in r.stdout and f"new -> confirmed (確認済み): 1 ({target})" in r.stdout
    with Store(reg) as st:
        assert (st.status_of(target), st.status_of(dup)) == ("confirmed", "new")
    r = _patrol("status", held, target, "--set", "scheduled")  # the office changed the target after the export
    assert r.returncode == 0, r.stderr
    r = _patrol("import-verification", held, tmp_path / "crew.csv")
    assert r.returncode == 0 and "held 1" in r.stdout, r.stdout
    assert f"{target}: not applied: the registry changed the damage after the list was exported" in r.stderr
    with Store(held) as st:
        assert st.status_of(target) == "scheduled"


def test_registry_of_schema_4_converts(sample, tmp_path):
    """A registry written by SCHEMA4_COMMIT's code (no merged_into) is read as it is (its exports' frame) and converted
    by the merge, which says so once; the old code then refuses it."""
    cfg, (p1, p2, _), keys, l1, l2, _ = sample
    old = old_store(tmp_path, SCHEMA4_COMMIT, "store_schema4")
    path = tmp_path / "old.gpkg"
    with old.Store(path) as st:
        st.merge(p1, {"run_id": "p1"}, cfg, frames=keys[P1])
        st.merge(_shifted(p2, l2), {"run_id": "p2"}, cfg, frames=keys[P2])
    (target,), (dup,) = _ids(path, p1, l1), _ids(path, p2, l2)
    with Store(path) as st:  # read as it is
        assert dup in set(st.query(lists=False)["candidate_id"]) and st.merged_into(dup) is None
    with Store(path) as st:
        st.merge_candidates(dup, target, cfg=cfg)
        notice = st.conversion_notice()
        assert dup not in set(st.query(lists=False)["candidate_id"])
        assert st.integrity() == "ok"
    assert notice and f"converted from schema 4 to {SCHEMA_VERSION}" in notice
    with Store(path) as st:
        assert st.merged_into(dup)[0] == target
        assert st.con.execute("SELECT value FROM patrol_meta WHERE key='schema_version'").fetchone() == (
            str(SCHEMA_VERSION),)
    with pytest.raises(old.StoreError, match=f"schema version {SCHEMA_VERSION}"):
        old.Store(path)


# --------------------------------------------------------------------------------------------- undo (--undo)
_AT = "2026-12-01 10:15"  # (the merge's stamp: a merge done again stamps the same)
#: (the history grows; gpkg_contents' last_change; the passes' pids; the spatial index's nodes: its rows are compared)
_NOT_STATE = ("status_history", "gpkg_contents", "sqlite_sequence", "passes", "rtree_candidates_geom_node",
              "rtree_candidates_geom_parent", "rtree_candidates_geom_rowid")


def _state(path: Path) -> dict:
    """The registry's rows but the history's (an undo adds rows to it) and the passes' pids (rows written again get
    new ones): every damage, sighting, frame, the ``merges`` records, and the passes by (damage, drive)."""
    d = dump(path, skip=_NOT_STATE)
    con = sqlite3.connect(path)
    try:
        d["passes"] = con.execute("SELECT candidate_id, drive, time, t, distance_m, sighted, frame_key FROM passes "
                                  "ORDER BY candidate_id, drive").fetchall()
    finally:
        con.close()
    return d


def test_merge_then_undo_gives_the_registry_before_the_merge(sample, tmp_path):
    """``unmerge_candidate`` after ``merge_candidates``: every row as before the merge (damages with their point, crop,
    position, status, passes; sightings with their ids), the exports' frame equal; a history row on both; a run of
    p2 again matches its sightings to the merged id again (a damage again), the registry unchanged by it."""
    cfg, (p1, p2, _), keys, l1, l2, _ = sample
    path, target, dup = _split(sample, tmp_path)
    before, q0 = _state(path), _query(path)
    n_dup = int(q0.set_index("candidate_id").loc[dup, "n_obs"])
    with Store(path) as st:
        st.merge_candidates(dup, target, cfg=cfg)
        res = st.unmerge_candidate(dup, note="typed the wrong id", who="Tanaka", cfg=cfg)
    assert (res.candidate_id, res.into, res.final, res.sightings, res.drives, res.later) == (dup, target, target,
                                                                                             n_dup, 1, 0)
    assert res.message.startswith(f"{dup} is its own damage again (D00 縦ひび割れ, new (新規)): "
                                  f"{n_dup} sighting{'s' * (n_dup != 1)} over 1 drive back from {target}; {target} now ")
    assert _state(path) == before
    pd.testing.assert_frame_equal(_query(path), q0)
    assert dump(path, skip=()) == _recomputed(path, cfg)
    con = sqlite3.connect(path)
    try:
        hist = con.execute("SELECT candidate_id, from_status, to_status, who, note, source FROM status_history WHERE "
                           "source LIKE 'unmerged%' ORDER BY hid").fetchall()
    finally:
        con.close()
    s = "s" * (n_dup != 1)
    assert hist == [(dup, "new", "new", "Tanaka", f"merge into {target} undone ({n_dup} sighting{s} back from "
                                                  f"{target}): typed the wrong id", f"unmerged-from:{target}"),
                    (target, "new", "new", "Tanaka", f"{dup} is its own damage again ({n_dup} sighting{s} back to "
                                                     f"{dup}): typed the wrong id", f"unmerged:{dup}")]
    with Store(path) as st:
        res = st.merge(_shifted(p2, l2), {"run_id": "p2 again"}, cfg, frames=keys[P2])
        assert res.mapping[l2] == dup and not res.changed
        assert st.merged_into(dup) is None
    assert _state(path) == before


def _crops(cands: pd.DataFrame, tag: str, at=None, conf: float = 0.5) -> pd.DataFrame:
    """Each damage with a crop of its best sighting (bytes naming it); the damage ``at`` with its sightings' confidence
    ``conf`` (less sure than the oracle's 1.0: another damage's crop wins where their sightings join)."""
    p = cands.copy()
    p["crop_jpeg"] = [f"{tag} {i}".encode() for i in p.index]
    if at is not None:
        p["observations"] = [[{**o, "confidence": conf} for o in v] if i == at else v
                             for i, v in zip(p.index, p["observations"])]
        p.loc[at, "confidence"] = conf
    return p


@pytest.mark.parametrize("wins", ["the merged id's crop", "the target's crop"])
def test_undo_gives_both_their_crops_back(sample, tmp_path, wins):
    """With crops: merged, the better crop is the target's; undone, each damage has its own again (the target the one
    the merged id's replaced), every row as before; merged again, the single merge's rows."""
    cfg, (p1, p2, _), keys, l1, l2, _ = sample
    p1c = _crops(p1, "p1", at=l1 if wins == "the merged id's crop" else None)
    path = _registry(tmp_path / "crops.gpkg", cfg, [("p1", p1c, keys[P1]), ("p2", _crops(_shifted(p2, l2), "p2"),
                                                                          keys[P2])])
    (target,), (dup,) = _ids(path, p1, l1), _ids(path, p2, l2)
    before = _state(path)
    with Store(path) as st:
        st.merge_candidates(dup, target, when=_AT, cfg=cfg)
        (crop,) = st.con.execute("SELECT crop_jpeg FROM candidates WHERE candidate_id=?", (target,)).fetchone()
    assert crop == (f"p2 {l2}" if wins == "the merged id's crop" else f"p1 {l1}").encode()
    once = _state(path)
    with Store(path) as st:
        st.unmerge_candidate(dup, cfg=cfg)
    assert _state(path) == before
    with Store(path) as st:
        st.merge_candidates(dup, target, when=_AT, cfg=cfg)
    assert _state(path) == once


def test_undo_then_merge_again_is_the_single_merge(sample, tmp_path):
    """Merged, undone, merged again (same stamp): every row of the single merge, ``merges`` record included."""
    cfg = sample[0]
    path, target, dup = _split(sample, tmp_path)
    with Store(path) as st:
        st.merge_candidates(dup, target, when=_AT, cfg=cfg)
    once = _state(path)
    assert once["merges"] and once["merges"][0][:3] == (dup, target, once["merges"][0][2])
    with Store(path) as st:
        st.unmerge_candidate(dup, cfg=cfg)
        assert not st.con.execute("SELECT COUNT(*) FROM merges").fetchone()[0]
        st.merge_candidates(dup, target, when=_AT, cfg=cfg)
    assert _state(path) == once


def _image_level(p1: pd.DataFrame, label) -> pd.DataFrame:
    """The damage of p1 alone as a run without sightings' boxes gives it (the best box 1 px over: not the stored one;
    its other photos image-level), SHIFT_M off: a new damage holding image-level sightings of photos p1's damage has
    boxed sightings of (the duplicates a merge sets aside)."""
    p = _shifted(p1.loc[[label]].drop(columns=["observations"]), label)
    p["best_x1"] = p["best_x1"] + 1
    return p


@pytest.mark.parametrize("way", ["into the boxed", "the boxed into it"])
def test_undo_gives_back_the_sightings_set_aside(sample, tmp_path, way):
    """A damage of image-level sightings of p1's photos and p1's damage (boxed sightings of them): merged either way,
    the image-level ones are set aside (the merged id's, or those of the damage merged into); undone, they come back,
    every row as before; merged again: the single merge's rows."""
    cfg, (p1, *_), keys, l1, *_ = sample
    path = _registry(tmp_path / "img.gpkg", cfg, [("p1", p1, keys[P1]), ("img", _image_level(p1, l1), None)])
    (target,) = _ids(path, p1, l1)
    (dup,) = {c for (c,) in sqlite3.connect(path).execute(
        "SELECT candidate_id FROM observations WHERE owner != '' GROUP BY candidate_id")}
    assert dup != target
    a, b = (dup, target) if way == "into the boxed" else (target, dup)
    before, q0 = _state(path), _query(path)
    with Store(path) as st:
        st.merge_candidates(a, b, when=_AT, cfg=cfg)
        (aside,) = st.con.execute("SELECT set_aside FROM merges").fetchone()
        assert len(json.loads(aside)) >= 1 and {r["owner"] for r in json.loads(aside)} == {dup}
    once = _state(path)
    with Store(path) as st:
        st.unmerge_candidate(a, cfg=cfg)
    assert _state(path) == before
    pd.testing.assert_frame_equal(_query(path), q0)
    with Store(path) as st:
        st.merge_candidates(a, b, when=_AT, cfg=cfg)
    assert _state(path) == once


def test_undo_follows_the_chain_and_keeps_the_later_sightings(sample, tmp_path):
    """dup merged into a third id (p2 read as D20 on a later drive), that one into the target since, then a later run
    adds sightings to the target: undoing dup brings its sightings back from the target, leaves the later ones the
    target's and says how many; the registry is the one where only the third was merged into the target (dup's crop,
    the best, had become the target's: the target gets the better of its own and the third's back, the third's)."""
    cfg, (p1, p2, p3), keys, l1, l2, l3 = sample
    runs = [("p1", _crops(p1, "p1", at=l1), keys[P1]), ("p2", _crops(_shifted(p2, l2), "p2"), keys[P2]),
            ("d20", _crops(_relabelled(p2, l2, drive=P3), "d20", at=l2, conf=0.6), None)]
    path = _registry(tmp_path / "chain.gpkg", cfg, runs)
    ref = _registry(tmp_path / "ref.gpkg", cfg, runs)
    (target,), (dup,) = _ids(path, p1, l1), _ids(path, p2, l2)
    (third,) = _ids(path, _relabelled(p2, l2, drive=P3), l2)
    assert len({target, dup, third}) == 3
    # a later drive, its GPS 20 m off: within store.match_distance_m of the target placed by p1 or by p2 40 m off
    w49 = _relabelled(p2.loc[[l2]], l2, "D00", drive="week 49")
    w49["lat"] += 20 / 111_195.0
    w49["chainage_m"] += 20
    with Store(path) as st:
        st.merge_candidates(dup, third, when=_AT, cfg=cfg)
        st.merge_candidates(third, target, when=_AT, cfg=cfg)
        st.merge(w49, {"run_id": "w49"}, cfg)
        n_later = st.con.execute("SELECT COUNT(*) FROM observations WHERE run_id='w49' AND candidate_id=?",
                                 (target,)).fetchone()[0]
        assert n_later >= 1
        assert st.con.execute("SELECT crop_jpeg FROM candidates WHERE candidate_id=?", (target,)).fetchone() == (
            f"p2 {l2}".encode(),)
        res = st.unmerge_candidate(dup, cfg=cfg)
    assert (res.into, res.final, res.later) == (third, target, n_later)
    assert f"{third} was merged into {target} since" in res.notes[0]
    assert f"{n_later} sighting{'s' * (n_later != 1)} that runs added to {target} after the merge stay " \
           f"{target}'s" in res.notes[1]
    with Store(ref) as st:
        st.merge_candidates(third, target, when=_AT, cfg=cfg)
        st.merge(w49, {"run_id": "w49"}, cfg)
    pd.testing.assert_frame_equal(_query(path), _query(ref))
    crops = "SELECT candidate_id, crop_obs_id, crop_jpeg FROM candidates WHERE candidate_id != ? ORDER BY 1"
    assert sqlite3.connect(path).execute(crops, (dup,)).fetchall() == sqlite3.connect(ref).execute(crops, (dup,)).fetchall()
    assert sqlite3.connect(ref).execute("SELECT crop_jpeg FROM candidates WHERE candidate_id=?", (target,)).fetchone() == (
        f"d20 {l2}".encode(),)
    assert sqlite3.connect(path).execute("SELECT crop_jpeg FROM candidates WHERE candidate_id=?", (dup,)).fetchone() == (
        f"p2 {l2}".encode(),)
    assert dump(path, skip=()) == _recomputed(path, cfg)


def test_undo_refusals(sample, tmp_path):
    """Unknown id, an id not merged, an id one of whose sightings a run has since replaced (an image-level sighting
    whose photo a later run brought with its box, matching it to the target by place): refused, nothing written."""
    cfg, (p1, *_), keys, l1, *_ = sample
    w50 = _relabelled(p1, l1, "D00", drive="week 50")  # (p1's photos of it copied as another drive: other keys)
    path = _registry(tmp_path / "img.gpkg", cfg, [("p1", p1, keys[P1]), ("img", _image_level(w50, l1), None)])
    (target,) = _ids(path, p1, l1)
    (dup,) = {c for (c,) in sqlite3.connect(path).execute(
        "SELECT candidate_id FROM observations WHERE owner != '' GROUP BY candidate_id")}
    assert dup != target
    before = dump(path, skip=())
    with Store(path) as st:
        for cid, msg in (("R-999999", "unknown candidate id 'R-999999'"),
                         (dup, f"{dup} was not merged into another damage: nothing to undo")):
            with pytest.raises(UsageError, match=msg):
                st.unmerge_candidate(cid, cfg=cfg)
    assert dump(path, skip=()) == before
    with Store(path) as st:
        st.merge_candidates(dup, target, cfg=cfg)
        res = st.merge(w50.loc[[l1]], {"run_id": "w50 boxed"}, cfg)
        assert res.mapping[l1] == target
    merged = dump(path, skip=())
    with Store(path) as st:
        with pytest.raises(UsageError, match=f"{dup} was merged into {target} on .*: cannot undo the merge exactly: "
                                             f"[0-9]+ sightings? of the [0-9]+ it moved w[a-z]+ since replaced by a run's "
                                             f"boxed sighting of the same photo, which the run matched to {target}"):
            st.unmerge_candidate(dup, cfg=cfg)
    assert dump(path, skip=()) == merged


def test_cli_merge_undo(sample, tmp_path):
    """``patrol merge REGISTRY ID --undo``: one line saying what came back, the notes; the export lists ID again and
    ``patrol status`` sets its status; refused with one line, exit 2: ID not merged (now), unknown, --undo with --into,
    neither of them."""
    cfg = sample[0]
    path, target, dup = _split(sample, tmp_path)
    with Store(path) as st:
        st.merge_candidates(dup, target, cfg=cfg)
    r = _patrol("merge", path, dup, "--undo", "--note", "typed the wrong id", "--who", "Tanaka")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{dup} is its own damage again (D00 縦ひび割れ, new (新規)): ") and \
        f"back from {target}; {target} now " in lines[0], r.stdout
    assert any(f"{dup} has its status new (新規) again" in ln for ln in lines[1:]), r.stdout
    r = _patrol("export", path, "--format", "csv", "--out", tmp_path / "list.csv")
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "list.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {dup, target} <= {row["candidate_id"] for row in rows}
    r = _patrol("status", path, dup, "--set", "confirmed")
    assert r.returncode == 0, r.stderr
    for args, msg in (((dup, "--undo"), f"{dup} was not merged into another damage: nothing to undo"),
                      (("R-999999", "--undo"), "unknown candidate id 'R-999999'"),
                      ((dup, "--undo", "--into", target), "give --into TARGET_ID (merge ID into it) or --undo"),
                      ((dup,), "give --into TARGET_ID (merge ID into it) or --undo")):
        r = _patrol("merge", path, *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and msg in r.stderr, (args, r.stderr)


# ------------------------------------------------------------------ a repaired target seen after its repair (reopen)
_REPAIRED = "2026-11-24"  # (the target's repair: after p1's drive of 11/20, before p2's of 11/27)


def _repaired(path: Path, target: str) -> None:
    with Store(path) as st:
        assert st.set_status(target, "repaired", note="patched", who="Sato", when=_REPAIRED)
        assert st.status_of(target) == "repaired"  # (p1 saw it before the repair: not reopened)


def _hist(path: Path, cid: str, like: str) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT from_status, to_status, who, note, source FROM status_history WHERE candidate_id=? "
                           "AND source LIKE ? ORDER BY hid", (cid, like)).fetchall()
    finally:
        con.close()


def test_merge_reopens_a_repaired_target_seen_after_its_repair_and_undo_takes_it_back(sample, tmp_path):
    """The target repaired on 11/24 (after p1 saw it), the id merged into it seen by p2 on 11/27: the merge reopens the
    target as p2 driven with its GPS right reopens it (the exports' frame equal: status reopened, the crew's note and
    repair date kept), status_changed_at the merge's, a history row ``repaired -> reopened`` of the merge's source
    naming the sighting and the repair date; the notes say so. Undone: the registry's rows as before the merge
    (repaired, its status_changed_at the repair's), a history row saying the undo took the reopen back (the reopen
    row stays); merged again: the single merge's rows."""
    cfg, (p1, p2, _), keys, l1, l2, _ = sample
    ref = _registry(tmp_path / "ref.gpkg", cfg, [("p1", p1, keys[P1])])
    path, target, dup = _split(sample, tmp_path)
    _repaired(ref, target)
    with Store(ref) as st:
        assert st.merge(p2, {"run_id": "p2"}, cfg, frames=keys[P2]).reopened == [target]  # (as driven)
    _repaired(path, target)
    before, q0 = _state(path), _query(path)
    with Store(path) as st:
        res = st.merge_candidates(dup, target, when=_AT, who="Tanaka", cfg=cfg)
        (changed_at, rep_at) = st.con.execute("SELECT status_changed_at, repaired_at FROM candidates WHERE "
                                              "candidate_id=?", (target,)).fetchone()
        at = st._when(_AT)[0]
        # a crew list exported with the repair (状態更新日時 its day) is held as changed since: by the merge
        exported, since = st._since_export(target, changed_at, _REPAIRED, datetime.now(st.tz))
        assert exported == "repaired" and f"by patrol merge of {dup}" in st._changes_text(since)
    q = _query(path).set_index("candidate_id")
    assert q.loc[target, "status"] == "reopened" and q.loc[target, "status_note"] == "patched"
    assert changed_at == at and rep_at.startswith(_REPAIRED)
    assert res.reopened is not None and (res.reopened.candidate_id, res.reopened.merged) == (target, dup)
    assert re.fullmatch(rf"seen 2026-11-27 \d\d:\d\d \({P2}\) after the repair of {_REPAIRED}", res.reopened.note)
    pd.testing.assert_frame_equal(_query(path), _query(ref))
    assert _hist(path, target, "merged-from:%") == [
        ("repaired", "repaired", "Tanaka", f"{dup} merged into it ({_plural_s(q0, dup)}, {dup} was D00 new)",
         f"merged-from:{dup}"),
        ("repaired", "reopened", f"patrol (the merge of {dup} by Tanaka)", res.reopened.note, f"merged-from:{dup}")]
    assert res.notes[0] == f"{dup} was new (新規); {target} was repaired (補修済み), now reopened (再発)"
    assert res.notes[1].startswith(f"{target}: {res.reopened.note}: reopened (再発) by the merge of {dup}; ")
    assert f"patrol merge {path} {dup} --undo" in res.notes[1]
    once = _state(path)
    with Store(path) as st:
        und = st.unmerge_candidate(dup, who="Tanaka", cfg=cfg)
    assert _state(path) == before
    pd.testing.assert_frame_equal(_query(path), q0)
    assert _hist(path, target, "unmerged:%")[-1] == (
        "reopened", "repaired", f"patrol (the undo of the merge of {dup} by Tanaka)",
        f"the reopen by the merge of {dup} taken back ({res.reopened.note}; {dup}'s "
                                      "sightings are its own again)", f"unmerged:{dup}")
    assert und.notes[-1].startswith(f"{target} is repaired (補修済み) again: the merge had reopened it "), und.notes
    assert _hist(path, target, "merged-from:%")[-1][:2] == ("repaired", "reopened")  # (the reopen stays on record)
    with Store(path) as st:
        st.merge_candidates(dup, target, when=_AT, who="Tanaka", cfg=cfg)
    assert _state(path) == once


def _plural_s(q: pd.DataFrame, cid: str) -> str:
    n = int(q.set_index("candidate_id").loc[cid, "n_obs"])
    return f"{n} sighting{'s' * (n != 1)}"


def test_cli_merge_reopens_and_undo_keeps_it_reopened_when_a_later_drive_saw_it(sample, tmp_path):
    """``patrol merge`` into the target repaired on 11/24 of the id p2 saw on 11/27: its lines say the target is
    reopened and why; a later drive (p3, 12/04) sees the target again; ``--undo``: the target stays reopened (p3's
    sighting is after the repair too), and the undo says so; no history row takes the reopen back."""
    cfg, (_, _, p3), *_ = sample
    path, target, dup = _split(sample, tmp_path)
    _repaired(path, target)
    r = _patrol("merge", path, dup, "--into", target)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1] == f"  {dup} was new (新規); {target} was repaired (補修済み), now reopened (再発)", r.stdout
    assert re.match(rf"  {target}: seen 2026-11-27 \d\d:\d\d \({P2}\) after the repair of {_REPAIRED}: reopened "
                    rf"\(再発\) by the merge of {dup}; ", lines[2]), r.stdout
    assert "is repaired, but" not in r.stdout  # (the note of a merge that left it repaired)
    with Store(path) as st:
        assert st.status_of(target) == "reopened"
        res = st.merge(p3, {"run_id": "p3"}, cfg)
        assert target in res.seen_again  # (reopened already: a drive does not reopen it again)
    r = _patrol("merge", path, dup, "--undo")
    assert r.returncode == 0, r.stderr
    assert re.search(rf"the merge had reopened {target} \(seen 2026-11-27 .*\); it stays reopened \(再発\): seen "
                     rf"2026-12-04 \d\d:\d\d \({P3}\) after the repair of {_REPAIRED} \(a sighting not {dup}'s\)",
                     r.stdout), r.stdout
    with Store(path) as st:
        assert st.status_of(target) == "reopened"
    assert [h[:2] for h in _hist(path, target, "unmerged:%")] == [("reopened", "reopened")]


def _statuses(path: Path, ids) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT candidate_id, status, status_changed_at, repaired_at FROM candidates WHERE "
                           "candidate_id IN (SELECT value FROM json_each(?)) ORDER BY 1", (json.dumps(ids),)).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("order", ["first merged first", "middle first"])
def test_undo_in_a_chain_gives_each_damage_its_status_back_in_any_order(sample, tmp_path, order):
    """A chain: p2's sighting (11/27, 40 m off: ``a``) merged into ``mid`` (p1's photos read as D20 by a drive
    'week 47': 11/20), repaired on 11/24: the merge reopens it; ``mid`` merged then into the target (p1's, D00, 11/20),
    repaired on 11/24 too: reopened by that merge (a's sighting is after its repair). Undone in either order: every
    row as before the merges, statuses and their dates included (both repaired, status_changed_at the repair's).
    Undoing ``a`` first leaves what merging ``mid`` alone into the target gives: ``mid`` and the target repaired (no
    sighting of theirs is after the repair), a history row taking each reopen back."""
    cfg, (p1, p2, _), keys, l1, l2, _ = sample
    w47 = _relabelled(p1, l1, drive="week 47")
    runs = [("p1", p1, keys[P1]), ("p2", _shifted(p2, l2), keys[P2]), ("w47", w47.loc[[l1]], None)]
    path = _registry(tmp_path / "chain.gpkg", cfg, runs)
    ref = _registry(tmp_path / "ref.gpkg", cfg, runs)
    (target,), (a,), (mid,) = _ids(path, p1, l1), _ids(path, p2, l2), _ids(path, w47, l1)
    assert len({target, a, mid}) == 3
    for p in (path, ref):
        _repaired(p, target)
        _repaired(p, mid)
        with Store(p) as st:
            st.set_status(a, "confirmed", who="Sato", when="2026-11-28 09:00")
    before, q0 = _state(path), _query(path)
    with Store(path) as st:
        assert st.merge_candidates(a, mid, when=_AT, cfg=cfg).reopened is not None
        assert st.merge_candidates(mid, target, when=_AT, cfg=cfg).reopened is not None
        assert (st.status_of(mid), st.status_of(target)) == ("reopened", "reopened")
    with Store(ref) as st:  # (mid alone merged into the target: its sightings are before the repair)
        assert st.merge_candidates(mid, target, when=_AT, cfg=cfg).reopened is None
    first, second = (a, mid) if order == "first merged first" else (mid, a)
    with Store(path) as st:
        res = st.unmerge_candidate(first, cfg=cfg)
    if first == a:
        assert res.notes[-2].startswith(f"{mid} is repaired (補修済み) again (part of {target}: "), res.notes
        assert res.notes[-1].startswith(f"{target} is repaired (補修済み) again: the merge of {mid} had reopened it "), \
            res.notes
        assert _statuses(path, [a, mid, target]) == _statuses(ref, [a, mid, target])
        pd.testing.assert_frame_equal(_query(path), _query(ref))
        for cid in (mid, target):
            assert _hist(path, cid, f"unmerged:{a}")[-1][:2] == ("reopened", "repaired"), cid
    with Store(path) as st:
        st.unmerge_candidate(second, cfg=cfg)
    assert _state(path) == before
    pd.testing.assert_frame_equal(_query(path), q0)
    assert dump(path, skip=()) == _recomputed(path, cfg)
