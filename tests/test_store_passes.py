"""The registry's passes (schema 4): a drive whose frames drove past a known damage, sighted or not. "R-000123 was seen
in October and the car has driven past it four times since without seeing it": ``n_passes``, ``n_unseen``,
``last_passed``. Real data: the sample drive's two passes (oracle detections through locate/dedupe, the drives' own
frames with their positions and headings)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detector.config import Config
from detector.frames import frame_keys, scan_drive
from detector.store import SCHEMA_SINCE, SCHEMA_VERSION, Store

from test_store import _oracle_candidates, dump, old_store

P1, P2 = "toyama-2026-11-p1", "toyama-2026-11-p2"
SCHEMA3_COMMIT = "a650877"  # the last patrol writing schema 3: frames recorded without position, no passes
_WHOLE: dict = {}


@pytest.fixture(scope="module")
def sample(request):
    """(cfg, p1 candidates, p2 candidates without their sighting of one damage p1 saw, that damage's p1 row label,
    the frames of each pass as ``frame_keys`` gives them)."""
    from conftest import TOYAMA, need

    toyama = need(TOYAMA)
    cfg = Config()
    passes, _ = _oracle_candidates(toyama, cfg)
    p1, p2 = passes[0], passes[1]
    keys = {d: frame_keys([f for f in scan_drive(toyama / d, cfg) if f.ok]) for d in (P1, P2)}
    # a damage of the middle of the route (p2 drives past it on both sides), seen by both passes: p2's sighting dropped
    lat = p1["lat"].to_numpy(float)
    mid = np.argsort(np.abs(lat - np.median(lat)))
    for i in mid:
        c = p1.iloc[i]
        d = np.hypot((p2["lat"] - c["lat"]) * 111_000, (p2["lon"] - c["lon"]) * 90_000)
        same = (p2["class"] == c["class"]) & (d < 25)
        near_other = (d < 40) & ~same
        if same.sum() == 1 and not near_other.any():
            # (p2 with its sighting of the damage, and its row: ``test_frames_of_schema_3_merged_again_…``)
            _WHOLE.update(p2=p2, label=p2.index[same.to_numpy()][0])
            return cfg, p1, p2[~same.to_numpy()], p1.index[i], keys
    pytest.skip("no damage of the sample seen once by each pass, apart from the others")


def _merge(path: Path, runs, cfg) -> dict:
    with Store(path) as st:
        for name, cands, frames in runs:
            st.merge(cands, {"run_id": name}, cfg, frames=frames)
    return passes_by_damage(path)


def passes_by_damage(path: Path) -> dict:
    """{a damage, by its sightings: [(drive, time, distance, sighted)]} and its aggregates: comparable across registries
    whose ids differ (merged in another order)."""
    con = sqlite3.connect(path)
    try:
        obs = pd.read_sql_query("SELECT candidate_id, drive, image, class, x1, y1, x2, y2 FROM observations", con)
        who = {cid: frozenset(map(tuple, g.drop(columns="candidate_id").to_numpy().tolist()))
               for cid, g in obs.groupby("candidate_id")}
        rows = con.execute("SELECT candidate_id, drive, time, t, distance_m, sighted FROM passes").fetchall()
        agg = con.execute("SELECT candidate_id, n_passes, n_unseen, last_passed FROM candidates").fetchall()
    finally:
        con.close()
    out: dict = {}
    for cid, *r in rows:
        out.setdefault(who[cid], []).append(tuple(r))
    return {k: (sorted(v), next(a[1:] for a in agg if who[a[0]] == k)) for k, v in out.items()}


def _rid(path: Path, cands: pd.DataFrame, label) -> str:
    """The registry id of the run candidate ``label`` (by its best sighting)."""
    c = cands.loc[label]
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT candidate_id FROM observations WHERE image=? AND x1=?",
                           (c["best_image"], int(round(c["best_x1"])))).fetchone()[0]
    finally:
        con.close()


def _passes(path: Path, rid: str) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT drive, sighted, distance_m, time FROM passes WHERE candidate_id=? ORDER BY drive",
                           (rid,)).fetchall()
    finally:
        con.close()


def _recomputed(path: Path, cfg) -> dict:
    """The registry's dump after every damage's passes were found again among all frames held (``_update_passes``
    without ``newf``): what the merges kept up to date incrementally must be this."""
    with Store(path) as st, st._txn():
        st._update_passes([c for (c,) in st.con.execute("SELECT candidate_id FROM candidates")],
                          cfg.store.pass_radius_m, cfg.locate.heading_tolerance_deg)
    return dump(path, skip=())


def test_a_damage_driven_past_without_a_sighting(sample, tmp_path):
    """p1 saw the damage, p2 drove past it a week later without seeing it: two drives passed it, one of them after its
    last sighting without a sighting; ``last_passed`` is p2's nearest frame's time. Every damage both saw: two passes,
    none unseen. The exports' registry frame (``query``) carries the three columns."""
    cfg, p1, p2, label, keys = sample
    store = tmp_path / "r.gpkg"
    _merge(store, [("p1", p1, keys[P1]), ("p2", p2, keys[P2])], cfg)
    rid = _rid(store, p1, label)
    rows = _passes(store, rid)
    assert [(d, s) for d, s, _, _ in rows] == [(P1, 1), (P2, 0)]
    assert all(dm is not None and dm <= cfg.store.pass_radius_m for _, _, dm, _ in rows)
    assert rows[1][3].startswith("2026-11-27T09:")
    with Store(store) as st:
        q = st.query().set_index("candidate_id")
    assert q.loc[rid, "drives"] == [P1]
    assert (q.loc[rid, "n_passes"], q.loc[rid, "n_unseen"], q.loc[rid, "last_passed"]) == (2, 1, rows[1][3])
    both = q[q["drives"].map(len) == 2]
    assert len(both) > 10 and (both["n_passes"] == 2).all() and (both["n_unseen"] == 0).all()


def test_passes_do_not_depend_on_the_order_of_the_merges_and_a_rerun_changes_nothing(sample, tmp_path):
    """p1 then p2 gives the passes of p2 then p1 (a damage made by p1 is checked against p2's frames stored before it);
    merging either again leaves every table byte-identical."""
    cfg, p1, p2, label, keys = sample
    a, b = tmp_path / "a.gpkg", tmp_path / "b.gpkg"
    pa = _merge(a, [("p1", p1, keys[P1]), ("p2", p2, keys[P2])], cfg)
    pb = _merge(b, [("p2", p2, keys[P2]), ("p1", p1, keys[P1])], cfg)
    # the damages both orders make of the same sightings (the matching itself folds a few of p2's split pieces
    # differently when p2 comes first: those are other damages, each with its own passes)
    alike = set(pa) & set(pb)
    assert len(alike) >= 0.8 * len(pa) > 10
    assert {k: pa[k] for k in alike} == {k: pb[k] for k in alike}
    unseen = [k for k in alike if pa[k][1][1]]
    assert len(unseen) == 1 and pa[unseen[0]][1][:2] == (2, 1)  # p1's damage, made by p1 after p2's frames (b)
    before = dump(a, skip=())
    _merge(a, [("p2 again", p2, keys[P2]), ("p1 again", p1, keys[P1])], cfg)
    assert dump(a, skip=()) == before
    # what the merges kept up to date, damage by damage and frame by frame, is what all frames held give
    assert _recomputed(a, cfg) == before


def test_a_damage_off_a_drives_route_gets_no_pass_of_it(sample, tmp_path):
    """p2 turned off half way (its first half only, and the damages of that half): the damages of the second half get
    no p2 pass, those of the first half theirs."""
    cfg, p1, p2, label, keys = sample
    half = keys[P2][: len(keys[P2]) // 2]
    cut = min(f[4] for f in half)  # (south-bound: the first half is the north)
    store = tmp_path / "r.gpkg"
    _merge(store, [("p1", p1, keys[P1]), ("p2", p2[p2["lat"] > cut + 0.0003], half)], cfg)
    con = sqlite3.connect(store)
    try:
        got = pd.read_sql_query("SELECT c.lat, p.drive, p.sighted FROM candidates c JOIN passes p USING (candidate_id)",
                                con)
    finally:
        con.close()
    p2_rows = got[got["drive"] == P2]
    assert len(p2_rows) > 5 and (p2_rows["lat"] > cut - 0.0003).all()  # (15 m: the radius past the last frame)
    south = got[got["lat"] < cut - 0.0003]
    assert len(south) > 5 and (south["drive"] == P1).all()


def test_a_frame_heading_across_the_damages_road_does_not_pass_it(sample, tmp_path):
    """p2's frames turned 90 degrees (a car crossing the damage's road) pass no damage it did not see; frames without a
    heading pass it, as they count as surveyed road."""
    cfg, p1, p2, label, keys = sample
    across = [(*f[:6], (f[6] + 90.0) % 360.0) for f in keys[P2]]
    unknown = [(*f[:6], float("nan")) for f in keys[P2]]
    for name, frames, want in (("across", across, [(P1, 1)]), ("unknown", unknown, [(P1, 1), (P2, 0)]),
                               ("along", keys[P2], [(P1, 1), (P2, 0)])):
        store = tmp_path / f"{name}.gpkg"
        _merge(store, [("p1", p1, keys[P1]), ("p2", p2, frames)], cfg)
        assert [(d, s) for d, s, _, _ in _passes(store, _rid(store, p1, label))] == want, name


def test_registry_of_schema_3_is_migrated_and_refused_by_schema_3(sample, tmp_path):
    """A registry written by SCHEMA3_COMMIT's code (frames without position): its next write adds the frames' columns
    (NULL for those held), the passes (a damage's sighting drives, from what is known) and records the new run's
    positions: p2 passes p1's damage. The old code refuses the migrated registry."""
    import pyogrio

    cfg, p1, p2, label, keys = sample
    old = old_store(tmp_path, SCHEMA3_COMMIT, "store_schema3")
    store = tmp_path / "old.gpkg"
    with old.Store(store) as st:
        st.merge(p1, {"run_id": "p1"}, cfg, frames=[f[:4] for f in keys[P1]])
    with Store(store) as st:  # read as it is
        q = st.query()
        assert q["n_passes"].isna().all() and len(q)
    _merge(store, [("p2", p2, keys[P2])], cfg)
    con = sqlite3.connect(store)
    try:
        assert con.execute("SELECT value FROM patrol_meta WHERE key='schema_version'").fetchone() == (
            str(SCHEMA_VERSION),)
        held = dict(con.execute("SELECT d.drive, COUNT(f.lat) FROM frames f JOIN drives d USING (did) GROUP BY 1"))
        assert held == {P1: 0, P2: 100}
    finally:
        con.close()
    rid = _rid(store, p1, label)
    rows = _passes(store, rid)
    assert [(d, s, dm is None) for d, s, dm, _ in rows] == [(P1, 1, True), (P2, 0, False)]
    with Store(store) as st:
        q = st.query().set_index("candidate_id")
        assert st.integrity() == "ok"
    assert (q.loc[rid, "n_passes"], q.loc[rid, "n_unseen"]) == (2, 1)
    assert q["n_passes"].notna().all()
    layers = dict(pyogrio.list_layers(store))
    assert layers["passes"] is None
    with pytest.raises(old.StoreError, match=f"schema version {SCHEMA_VERSION}"):
        old.Store(store)


def test_frames_of_schema_3_merged_again_get_their_positions_and_pass_a_damage_found_later(sample, tmp_path):
    """p1 merged by SCHEMA3_COMMIT's code (its frames held without position), then the same drive run again with
    --store by this patrol: the frames it holds get their position, heading and time; p2's damage that p1 did not see
    (found a week later) gets p1's pass (before its sighting: not unseen). The same whether p1 comes again before or
    after p2; a second identical merge changes nothing; what the merges kept is what all frames held give."""
    cfg, p1, p2, label, keys = sample
    p2 = _WHOLE["p2"]  # (with its sighting of the damage)
    p1 = p1.drop(index=label)  # the damage only p2 saw
    old = old_store(tmp_path, SCHEMA3_COMMIT, "store_schema3")
    a, b = tmp_path / "a.gpkg", tmp_path / "b.gpkg"
    for path in (a, b):
        with old.Store(path) as st:
            st.merge(p1, {"run_id": "p1"}, cfg, frames=[f[:4] for f in keys[P1]])

    def placed(path):
        con = sqlite3.connect(path)
        try:
            return dict(con.execute("SELECT d.drive, COUNT(f.lat) FROM frames f JOIN drives d USING (did) GROUP BY 1"))
        finally:
            con.close()

    with Store(a) as st:
        res = st.merge(p1, {"run_id": "p1 again"}, cfg, frames=keys[P1])
    assert res.frames_recorded == 0 and res.frames_placed == len(keys[P1]) and res.changed
    assert placed(a) == {P1: len(keys[P1])}
    pa = _merge(a, [("p2", p2, keys[P2])], cfg)
    rid = _rid(a, p2, _WHOLE["label"])
    rows = _passes(a, rid)
    assert [(d, s) for d, s, _, _ in rows] == [(P1, 0), (P2, 1)]
    assert rows[0][2] is not None and rows[0][2] <= cfg.store.pass_radius_m and rows[0][3].startswith("2026-11-20T")
    with Store(a) as st:
        q = st.query().set_index("candidate_id")
        assert st.integrity() == "ok"
    assert (q.loc[rid, "n_passes"], q.loc[rid, "n_unseen"]) == (2, 0)
    # p1 again after p2: the same passes
    pb = _merge(b, [("p2", p2, keys[P2]), ("p1 again", p1, keys[P1])], cfg)
    assert placed(b) == {P1: len(keys[P1]), P2: len(keys[P2])}
    alike = set(pa) & set(pb)
    assert len(alike) >= 0.8 * len(pa) > 10 and {k: pa[k] for k in alike} == {k: pb[k] for k in alike}
    before = dump(a, skip=())
    with Store(a) as st:
        res = st.merge(p1, {"run_id": "p1 a third time"}, cfg, frames=keys[P1])
    assert res.frames_placed == 0 and not res.changed
    assert dump(a, skip=()) == before
    assert _recomputed(a, cfg) == before


def test_merges_without_frames_record_no_passes(sample, tmp_path):
    """``patrol locate`` of detections without their frames (``merge`` without ``frames``): no frame is recorded, so
    nothing passes a damage; its passes are the drives that sighted it (no distance), none unseen."""
    cfg, p1, p2, label, keys = sample
    store = tmp_path / "r.gpkg"
    _merge(store, [("p1", p1, None), ("p2", p2, None)], cfg)
    rid = _rid(store, p1, label)
    assert [(d, s, dm) for d, s, dm, _ in _passes(store, rid)] == [(P1, 1, None)]
    with Store(store) as st:
        q = st.query().set_index("candidate_id")
    assert (q.loc[rid, "n_passes"], q.loc[rid, "n_unseen"]) == (1, 0)


def test_the_registry_exports_show_the_passes(sample, tmp_path):
    """The office's and the crews' lists (csv, xlsx: 通過回数 / 未検出通過 / 最終通過 under their English names) and the
    map (html: popup fields and the table's column) carry each damage's passes."""
    import csv
    import json

    import openpyxl

    from detector import report

    cfg, p1, p2, label, keys = sample
    store = tmp_path / "r.gpkg"
    _merge(store, [("p1", p1, keys[P1]), ("p2", p2, keys[P2])], cfg)
    rid = _rid(store, p1, label)
    with Store(store) as st:
        q = st.query(lists=False)
    for fmt in ("csv", "xlsx", "geojson", "html"):
        report.export(q, fmt, tmp_path / f"list.{fmt}", cfg)
    rows = {r["candidate_id"]: r for r in csv.DictReader(open(tmp_path / "list.csv", encoding="utf-8-sig"))}
    assert (rows[rid]["n_passes"], rows[rid]["n_unseen"], rows[rid]["last_passed"][:14]) == ("2", "1", "2026-11-27T09:")
    ws = openpyxl.load_workbook(tmp_path / "list.xlsx")["candidates"]
    head = [c.value for c in ws[1]]
    at = {h.split("\n")[0]: j for j, h in enumerate(head) if h}
    row = next(r for r in ws.iter_rows(min_row=2, values_only=True) if r[0] == rid)
    assert (row[at["通過回数"]], row[at["未検出通過"]]) == (2, 1) and row[at["最終通過"]].day == 27
    feats = {f["id"]: f["properties"] for f in json.load(open(tmp_path / "list.geojson", encoding="utf-8"))["features"]}
    assert (feats[rid]["n_passes"], feats[rid]["n_unseen"]) == (2, 1)
    html = (tmp_path / "list.html").read_text(encoding="utf-8")
    assert '"n_unseen": 1' in html or '"n_unseen":1' in html
    assert '"未検出通過", "passed unseen"' in html


def test_merge_result_names_the_damages_the_run_drove_past_without_a_sighting(sample, tmp_path):
    """What a run's summary tells the office: p2 drove past p1's damage a week later without seeing it
    (``passed_unseen``, per drive and for the run, with the damage's n_unseen now); p1 merged after p2 passed p2's
    damages before they were seen (not "not seen again": none); a merge again answers the same and writes nothing;
    a third drive that saw nothing (p2's route two weeks later) passed every damage of its route, p1's damage now
    unseen twice."""
    from datetime import timedelta

    cfg, p1, p2, label, keys = sample
    store = tmp_path / "r.gpkg"
    with Store(store) as st:
        r1 = st.merge(p1, {"run_id": "p1"}, cfg, frames=keys[P1])
        r2 = st.merge(p2, {"run_id": "p2"}, cfg, frames=keys[P2])
    rid = _rid(store, p1, label)
    assert r1.passed_unseen == [] and r1.passed_unseen_by_drive == {P1: []}
    assert r2.passed_unseen == [rid] and r2.passed_unseen_by_drive == {P2: [rid]} and r2.n_unseen == {rid: 1}
    before = dump(store, skip=())
    with Store(store) as st:
        again = st.merge(p2, {"run_id": "p2 again"}, cfg, frames=keys[P2])
    assert not again.changed and again.passed_unseen == [rid] and dump(store, skip=()) == before
    # the other order: p1's frames passed p2's damages a week before p2 saw them
    other = tmp_path / "b.gpkg"
    with Store(other) as st:
        st.merge(p2, {"run_id": "p2"}, cfg, frames=keys[P2])
        assert st.merge(p1, {"run_id": "p1"}, cfg, frames=keys[P1]).passed_unseen == []
    # without frames nothing is known of where the run drove
    with Store(tmp_path / "c.gpkg") as st:
        assert st.merge(p1, {"run_id": "p1"}, cfg).passed_unseen is None
    # p3: p2's route two weeks later (other photos: other keys), nothing seen
    p3 = [("toyama-2026-12-p3", f[1], f[2] + 1, f[3] + timedelta(days=14), *f[4:]) for f in keys[P2]]
    with Store(store) as st:
        r3 = st.merge(p2.iloc[:0], {"run_id": "p3"}, cfg, frames=p3)
        q = st.query().set_index("candidate_id")
    passed = set(q.index[q["last_passed"].fillna("").str.startswith("2026-12-11")])
    assert r3.passed_unseen == sorted(passed) and len(passed) > 10
    assert r3.n_unseen[rid] == 2 and {r3.n_unseen[c] for c in passed - {rid}} == {1}
    assert r3.n_unseen == q.loc[sorted(passed), "n_unseen"].to_dict()


def _drive_dir(tmp: Path, toyama: Path, drive: str, cfg, drop: list[dict] = ()) -> Path:
    """tmp/<drive>/<drive>.csv: the drive's oracle detections without the sightings ``drop`` (a candidate's
    observations), and frames.csv of the drive's real frames beside it: what `patrol locate` reads as a run's."""
    import csv

    from detector.frames import write_frames_csv

    d = tmp / drive
    d.mkdir()
    gone = {(o["image"], round(float(o["x1"]))) for o in drop}
    with open(toyama / f"{drive}.oracle.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    head, body = rows[0], rows[1:]
    im, x1 = head.index("image"), head.index("x1")
    keep = [r for r in body if (r[im], round(float(r[x1]))) not in gone]
    assert len(body) - len(keep) == len(drop)
    with open(d / f"{drive}.csv", "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([head, *keep])
    write_frames_csv(scan_drive(toyama / drive, cfg), d / "frames.csv")
    return d / f"{drive}.csv"


def test_a_runs_summary_patrol_log_and_repair_list_tell_the_damages_it_drove_past_unseen(sample, tmp_path):
    """`patrol locate --store` of p1, then of p2 without its sightings of one damage p1 saw: p2's console summary
    and summary.json (registry.passed_unseen) name that damage, its patrol log row counts it (未検出通過), and its
    repair list carries each damage's n_passes / n_unseen / last_passed as the registry holds them; the crew's list
    with these columns still imports."""
    import csv
    import json

    from conftest import TOYAMA
    from test_cli import ok, patrol

    cfg, p1, p2, label, keys = sample
    full_p2 = _oracle_candidates(TOYAMA, cfg)[0][1]
    dropped = full_p2.loc[sorted(set(full_p2.index) - set(p2.index))]
    assert len(dropped) == 1
    c1 = _drive_dir(tmp_path, TOYAMA, P1, cfg)
    c2 = _drive_dir(tmp_path, TOYAMA, P2, cfg, drop=list(dropped.iloc[0]["observations"]))
    store, roads = tmp_path / "r.gpkg", TOYAMA / "roads.geojson"
    ok(patrol("locate", c1, "--roads", roads, "--out", tmp_path / "o1", "--store", store))
    # config store.unseen_ring_passes 1: report.html rings a damage passed unseen once; summary.json and the console
    # count it with the same cut-off, and say which (unseen_2_or_more, kept for older readers, is still n_unseen >= 2)
    ring = tmp_path / "ring1.yaml"
    ring.write_text("store:\n  unseen_ring_passes: 1\n", encoding="utf-8")
    r = ok(patrol("locate", c2, "--roads", roads, "--out", tmp_path / "o2", "--store", store, "--config", ring))
    rid = _rid(store, p1, label)
    with Store(store) as st:
        q = st.query().set_index("candidate_id")
    assert (q.loc[rid, "n_passes"], q.loc[rid, "n_unseen"]) == (2, 1)
    doc = json.loads((tmp_path / "o2" / "summary.json").read_text(encoding="utf-8"))
    assert doc["registry"]["passed_unseen"] == {"damages": 1, "unseen_ring_passes": 1, "unseen_ring_damages": 1,
                                                "unseen_2_or_more": 0, "ids": [rid],
                                                "by_drive": {P2: 1}, "poor_look_frames": {}}
    assert "1 known damage driven past without a sighting (未検出通過), 1 of them now on 1 or more drives" in " ".join(
        r.stdout.split()), r.stdout
    first = json.loads((tmp_path / "o1" / "summary.json").read_text(encoding="utf-8"))
    assert first["registry"]["passed_unseen"]["damages"] == 0
    assert first["registry"]["passed_unseen"]["unseen_ring_passes"] == 2  # the default
    log = list(csv.DictReader(open(tmp_path / "o2" / "patrol_log.csv", encoding="utf-8-sig", newline="")))
    assert [(x["drive"], x["passed_unseen"]) for x in log] == [(P2, "1")]
    import openpyxl

    head = [c.value for c in openpyxl.load_workbook(tmp_path / "o2" / "patrol_log.xlsx")["patrol_log"][1]]
    assert "未検出通過\npassed unseen" in head
    # the repair list: the run's damages (all seen by p2: none unseen since) with the registry's passes
    rows = list(csv.DictReader(open(tmp_path / "o2" / "repair_list.csv", encoding="utf-8-sig", newline="")))
    assert len(rows) > 20 and rid not in {x["candidate_id"] for x in rows}
    for x in rows:
        reg = q.loc[x["candidate_id"]]
        assert (x["n_passes"], x["n_unseen"], x["last_passed"]) == (
            str(reg["n_passes"]), str(reg["n_unseen"]), reg["last_passed"])
    assert {x["n_passes"] for x in rows} >= {"2"} and {x["n_unseen"] for x in rows} == {"0"}
    # p1's list, written before p2 was merged: its damage then passed once, by p1
    rows1 = {x["candidate_id"]: x for x in csv.DictReader(
        open(tmp_path / "o1" / "repair_list.csv", encoding="utf-8-sig", newline=""))}
    assert (rows1[rid]["n_passes"], rows1[rid]["n_unseen"]) == ("1", "0")
    # a crew's list with the columns imports as before (they are not the crew's)
    with open(tmp_path / "o2" / "repair_list.csv", encoding="utf-8-sig", newline="") as fh:
        head, first_row = list(csv.reader(fh))[:2]
    first_row[head.index("status")] = "confirmed"
    with open(tmp_path / "crew.csv", "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([head, first_row])
    r = ok(patrol("import-verification", store, tmp_path / "crew.csv"))
    assert "applied 1," in r.stdout and "not applied 0" in r.stdout
    with Store(store) as st:
        assert st.states([rows[0]["candidate_id"]])["status"].tolist() == ["confirmed"]


def test_the_conversion_of_a_schema_3_registry_is_told_once(sample, tmp_path):
    """patrol 0.1.0's registry (schema 3) converted by the first write of this release: an office with several PCs on
    one registry must learn that the PCs still on 0.1.0 now refuse it. The run's summary (console, summary.json's
    warnings), ``patrol status`` and ``patrol import-verification`` say so, once: the next write says nothing. A
    registry from a newer patrol is refused naming what to do."""
    import subprocess
    import sys

    from detector.pipeline import RunSummary, merge_into_store

    cfg, p1, p2, label, keys = sample
    old = old_store(tmp_path, SCHEMA3_COMMIT, "store_schema3")
    stores = {}
    for name in ("run", "status"):
        stores[name] = tmp_path / f"{name}.gpkg"
        with old.Store(stores[name]) as st:
            st.merge(p1, {"run_id": "p1"}, cfg, frames=[f[:4] for f in keys[P1]])
    summary = RunSummary(out=tmp_path, drives=[P2])
    merge_into_store(p2, stores["run"], {"drives": [P2], "out": str(tmp_path / "out2")}, cfg, summary)
    told = [w for w in summary.warnings if f"converted from schema 3 to {SCHEMA_VERSION}" in w]
    assert len(told) == 1 and "update patrol on every PC" in told[0] and f"before {SCHEMA_SINCE}" in told[0], (
        summary.warnings)
    again = RunSummary(out=tmp_path, drives=[P2])
    merge_into_store(p2, stores["run"], {"drives": [P2], "out": str(tmp_path / "out3")}, cfg, again)
    assert not [w for w in again.warnings if "converted" in w]

    root = Path(__file__).resolve().parent.parent
    rid = _rid(stores["status"], p1, label)
    cmd = [sys.executable, str(root / "cli.py"), "status", str(stores["status"]), rid, "--set", "confirmed"]
    r = subprocess.run(cmd, cwd=root, capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"converted from schema 3 to {SCHEMA_VERSION}" in r.stderr and "update patrol on every PC" in r.stderr
    r = subprocess.run(cmd[:-1] + ["repaired"], cwd=root, capture_output=True, text=True, encoding="utf-8",
                       timeout=300)
    assert r.returncode == 0 and "converted" not in r.stderr, r.stderr

    con = sqlite3.connect(stores["status"])
    con.execute("UPDATE patrol_meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    from detector.errors import StoreError
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1} .*update patrol on this PC"):
        Store(stores["status"])


def _darkened(toyama: Path, keys: list[tuple], lat: float, lon: float, radius: float, cfg) -> tuple[list, int]:
    """``keys`` (p2's ``frame_keys``) with the look of each frame within ``radius`` + 10 m of (lat, lon) measured on
    its real picture darkened as at dusk (gamma 2.2, gain 0.35; detector/look.py on the decoded pixels, the verdict
    by the config): what the detect stage gives those frames of an evening drive. Returns (keys, frames darkened)."""
    import cv2

    from detector.look import look_verdict, measure_look

    out, n = [], 0
    for k in keys:
        d = np.hypot((k[4] - lat) * 111_000, (k[5] - lon) * 111_000 * np.cos(np.radians(lat)))
        if d <= radius + 10:
            img = cv2.imread(str(toyama / k[0] / k[1]))
            dark = np.clip((img / 255.0) ** 2.2 * 0.35 * 255 + 0.5, 0, 255).astype(np.uint8)
            k = (*k[:7], look_verdict(*measure_look(dark), cfg.frames))
            n += 1
        out.append(k)
    return out, n


def test_a_drive_past_a_damage_only_in_dark_frames_is_no_unseen_pass(sample, tmp_path):
    """p2 without its sighting of p1's damage passes it unseen (test_a_damage_driven_past_without_a_sighting); the same
    p2 whose frames near that damage are dark (real frames darkened, their look measured) could not have seen it: its
    pass is kept (n_passes, the row's look says why) but is no unseen pass: n_unseen 0, not in the run's passed
    unseen. Its original frames' looks are all good. In either merge order, incremental = recomputed."""
    from conftest import TOYAMA

    cfg, p1, p2, label, keys = sample
    assert all(k[7] == "" for k in keys[P1] + keys[P2])  # (frame_keys before detection: not measured)
    c = p1.loc[label]
    k2, n = _darkened(TOYAMA, keys[P2], float(c["lat"]), float(c["lon"]), cfg.store.pass_radius_m, cfg)
    assert n >= 1 and all(k[7] == "dark" for k in k2 if k[7])
    store = tmp_path / "r.gpkg"
    with Store(store) as st:
        st.merge(p1, {"run_id": "p1"}, cfg, frames=keys[P1])
        res = st.merge(p2, {"run_id": "p2"}, cfg, frames=k2)
    rid = _rid(store, p1, label)
    assert rid not in res.passed_unseen_by_drive[P2] and rid not in res.n_unseen
    con = sqlite3.connect(store)
    try:
        rows = con.execute("SELECT drive, sighted, look FROM passes WHERE candidate_id=? ORDER BY drive",
                           (rid,)).fetchall()
        agg = con.execute("SELECT n_passes, n_unseen FROM candidates WHERE candidate_id=?", (rid,)).fetchone()
        n_dark = con.execute("SELECT COUNT(*) FROM frames WHERE look='dark'").fetchone()[0]
    finally:
        con.close()
    assert rows == [(P1, 1, None), (P2, 0, "dark")] and agg == (2, 0) and n_dark == n
    before = dump(store, skip=())
    assert _recomputed(store, cfg) == before
    # p2 first, then p1 (the damage made after the dark frames were held): the same passes
    b = tmp_path / "b.gpkg"
    with Store(b) as st:
        st.merge(p2, {"run_id": "p2"}, cfg, frames=k2)
        st.merge(p1, {"run_id": "p1"}, cfg, frames=keys[P1])
    assert _passes(b, _rid(b, p1, label)) == _passes(store, rid)
    # the original p2 (looks good) over the same p1: the unseen pass it gives
    c2 = tmp_path / "c.gpkg"
    with Store(c2) as st:
        st.merge(p1, {"run_id": "p1"}, cfg, frames=keys[P1])
        res = st.merge(p2, {"run_id": "p2"}, cfg, frames=keys[P2])
    assert rid in res.passed_unseen_by_drive[P2] and res.n_unseen[rid] == 1


def test_the_exports_count_the_passes_in_poor_frames_apart_from_the_unseen(sample, tmp_path):
    """p1, then p2 whose frames near p1's damage are darkened (as in the test above): the damage was passed twice,
    once in the dark. The office's lists (csv, xlsx: 撮影不良通過), the GIS files (geojson, gpkg, Shapefile's
    ``n_poorlook``), the map's popup data and a run's repair list (``states``) say so: n_poor_look 1, n_unseen 0,
    n_passes 2; the other damages none. With p2's frames as they are: the unseen pass, no poor one."""
    import csv
    import json

    import openpyxl
    import pyogrio

    from conftest import TOYAMA
    from detector import report

    cfg, p1, p2, label, keys = sample
    c = p1.loc[label]
    k2, n = _darkened(TOYAMA, keys[P2], float(c["lat"]), float(c["lon"]), cfg.store.pass_radius_m, cfg)
    assert n >= 1
    store = tmp_path / "r.gpkg"
    _merge(store, [("p1", p1, keys[P1]), ("p2", p2, k2)], cfg)
    rid = _rid(store, p1, label)
    with Store(store) as st:
        q = st.query(lists=False)
        states = st.states([rid]).set_index("candidate_id")
    qi = q.set_index("candidate_id")
    assert qi.loc[rid, ["n_passes", "n_unseen", "n_poor_look"]].tolist() == [2, 0, 1]
    assert (qi.drop(index=rid)["n_poor_look"] == 0).all()
    assert states.loc[rid, ["n_passes", "n_unseen", "n_poor_look"]].tolist() == [2, 0, 1]
    for fmt in ("csv", "xlsx", "geojson", "gpkg", "shp", "html"):
        report.export(q, fmt, tmp_path / f"list.{fmt}", cfg)
    rows = {r["candidate_id"]: r for r in csv.DictReader(open(tmp_path / "list.csv", encoding="utf-8-sig"))}
    assert (rows[rid]["n_passes"], rows[rid]["n_unseen"], rows[rid]["n_poor_look"]) == ("2", "0", "1")
    assert {r["n_poor_look"] for k, r in rows.items() if k != rid} == {"0"}
    ws = openpyxl.load_workbook(tmp_path / "list.xlsx")["candidates"]
    at = {h.split("\n")[0]: j for j, h in enumerate(c.value for c in ws[1]) if h}
    row = next(r for r in ws.iter_rows(min_row=2, values_only=True) if r[0] == rid)
    assert (row[at["通過回数"]], row[at["未検出通過"]], row[at["撮影不良通過"]]) == (2, 0, 1)
    feats = {f["id"]: f["properties"] for f in json.load(open(tmp_path / "list.geojson", encoding="utf-8"))["features"]}
    assert (feats[rid]["n_passes"], feats[rid]["n_unseen"], feats[rid]["n_poor_look"]) == (2, 0, 1)
    g = pyogrio.read_dataframe(tmp_path / "list.gpkg", layer="candidates").set_index("candidate_id")
    assert g.loc[rid, ["n_passes", "n_unseen", "n_poor_look"]].tolist() == [2, 0, 1]
    s = pyogrio.read_dataframe(tmp_path / "list.shp").set_index("cand_id")
    assert s.loc[rid, ["n_passes", "n_unseen", "n_poorlook"]].tolist() == [2, 0, 1]
    data, _ = report.html_data(report.prepare(q, cfg), cfg, uris=[None] * len(q))
    pop = next(x for x in data["candidates"] if x["candidate_id"] == rid)
    assert (pop["n_passes"], pop["n_unseen"], pop["n_poor_look"]) == (2, 0, 1)
    html = (tmp_path / "list.html").read_text(encoding="utf-8")
    assert ('"n_poor_look": 1' in html or '"n_poor_look":1' in html) and "not counted unseen" in html
    # `patrol status REGISTRY ID` (no --set): the damage's counts and each pass, the dark one with its look
    from test_cli import ok, patrol

    out = ok(patrol("status", store, rid.lower())).stdout
    lines = [" ".join(x.split()) for x in out.splitlines()]
    assert lines[0] == f"{rid}: new (新規)", out
    k = next(i for i, x in enumerate(lines) if x.startswith("passes:"))
    assert lines[1].startswith("history (状態履歴): ") and k >= 3, out  # its history (one row at least: new) first
    assert "passes: 2 (通過回数), 0 unseen since its last sighting (未検出通過), 1 in frames too dark" in lines[k], out
    assert [x.split()[-1] for x in lines[k + 1:]] == ["dark", "seen"] and P2 in lines[k + 1] and P1 in lines[k + 2], out
    with Store(store) as st:
        assert st.states([rid])["status"].tolist() == ["new"]  # shown, not changed
    # p2 as it is: its pass is an unseen one, none in poor frames
    good = tmp_path / "g.gpkg"
    _merge(good, [("p1", p1, keys[P1]), ("p2", p2, keys[P2])], cfg)
    with Store(good) as st:
        qg = st.query(lists=False).set_index("candidate_id")
    assert qg.loc[_rid(good, p1, label), ["n_passes", "n_unseen", "n_poor_look"]].tolist() == [2, 1, 0]
    assert (qg["n_poor_look"] == 0).all()


def test_jobs_recorded_in_a_schema_3_registry_leave_it_as_it_was(sample, tmp_path):
    """A jobs list's ids recorded (``Store.record_jobs``, what ``patrol export --format jobs`` does) in a registry
    written by SCHEMA3_COMMIT's code: only the tables job_ids and job_damages (each damage's job) and their
    gpkg_contents rows are added, every other
    table as it was and the schema still 3 (no conversion, which a write transaction would make: older patrols go on
    using it); the schema-3 code opens it and merges p2 into it, the recorded jobs left alone; this patrol's next
    list keeps their ids."""
    from conftest import TOYAMA

    from detector.jobs import job_table
    from detector.roads import load_roads

    cfg, p1, p2, label, keys = sample
    old = old_store(tmp_path, SCHEMA3_COMMIT, "store_schema3")
    store = tmp_path / "old.gpkg"
    with old.Store(store) as st:
        st.merge(p1, {"run_id": "p1"}, cfg, frames=[f[:4] for f in keys[P1]])
    before = dump(store, skip=())
    net = load_roads(TOYAMA / "roads.geojson", cfg)
    with Store(store) as st:
        jobs = job_table(st.query(status=["new"], lists=False), net, cfg)
        assert st.record_jobs(jobs) == (0, len(jobs.table)) and len(jobs.table) > 3
    after = dump(store, skip=())
    recorded = after.pop("job_ids")
    assert [(r[0], r[1], r[2]) for r in sorted(recorded, key=lambda r: r[1])] == list(zip(
        jobs.table["job_id"], range(1, len(jobs.table) + 1), jobs.table["candidate_ids"]))
    members = after.pop("job_damages")
    assert sorted((r[0], r[1]) for r in members) == sorted(
        (c, j) for ids, j in zip(jobs.table["candidate_ids"], jobs.table["job_id"]) for c in ids.split(";"))
    assert [r for r in after.pop("gpkg_contents") if r[0] not in ("job_ids", "job_damages")] == \
        before.pop("gpkg_contents")
    assert after == before and ("schema_version", "3") in after["patrol_meta"]
    with old.Store(store) as st:
        st.merge(p2, {"run_id": "p2"}, cfg, frames=[f[:4] for f in keys[P2]])
    assert dump(store, skip=())["job_ids"] == recorded and dump(store, skip=())["job_damages"] == members
    with Store(store) as st:
        again = job_table(st.query(status=["new"], lists=False), net, cfg)
        kept, new = st.record_jobs(again)
    assert kept == len(again.table) and new == 0 and sorted(again.table["job_id"]) == sorted(jobs.table["job_id"])
