"""The repair registry (detector/store.py): GeoPackage validity, merge/idempotency, life cycle, verification
import, crash safety, concurrency, and a three-pass acceptance run."""

from __future__ import annotations

import csv
import json
import math
import os
import pickle
import re
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detector.config import Config
from detector.errors import InputError, StoreError, UsageError
from detector.store import SCHEMA_VERSION, TRANSITIONS, Store, gpkg_point, parse_gpkg_point

ROOT = Path(__file__).resolve().parent.parent
LAT0, LON0 = 36.69, 137.21
M_LAT = 1 / 111_195.0  # degrees per metre north
M_LON = M_LAT / math.cos(math.radians(LAT0))


def cand(cid, cls="D00", north_m=0.0, east_m=0.0, seg="s1", ch=None, conf=0.8, drive="d1", image=None,
         t="2026-11-20T09:00:00+09:00", n_images=2, box=(100, 200, 180, 300), **kw):
    image = image or f"IMG_{cid}.jpg"
    images = [image] + [f"IMG_{cid}_{k}.jpg" for k in range(1, n_images)]
    row = dict(
        candidate_id=cid, **{"class": cls}, class_name="x", class_name_ja="x", confidence=conf, n_obs=len(images),
        first_seen=t, last_seen=t, segment_id=seg, road_name="Main St",
        chainage_m=north_m if ch is None else ch, lat=LAT0 + north_m * M_LAT, lon=LON0 + east_m * M_LON,
        best_image=image, best_drive=drive, best_x1=box[0], best_y1=box[1], best_x2=box[2], best_y2=box[3],
        best_width=640, best_height=640, drives=[drive], images=images, severity=1.0, est_width_m=0.3,
        est_length_m=1.0)
    row.update(kw)
    return row


def frame(rows):
    return pd.DataFrame(rows)


@pytest.fixture
def cfg():
    """Defaults, with the matching distance pinned so the hand-made geometry below stays meaningful."""
    c = Config()
    c.dedupe.distance_m = 12.0
    c.store.match_distance_m = 12.0
    return c


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "registry.gpkg"


def dump(path, skip=("runs",)):
    con = sqlite3.connect(path)
    try:
        tabs = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {t: con.execute(f'SELECT * FROM "{t}" ORDER BY 1').fetchall() for t in tabs if t not in skip}
    finally:
        con.close()


#: an import's time after the dates these crew lists write (December 2026; the sample's drives are of November): the
#: import refuses a row dated after its day (a typed 2062 for 2026)
_LATER = datetime.fromisoformat("2026-12-10T10:00:00+09:00")


def run1():
    return frame([cand("a", north_m=0), cand("b", north_m=50), cand("c", cls="D40", north_m=100, conf=0.6)])


# --------------------------------------------------------------------------------------------- format
def test_valid_geopackage_readable_by_geopandas(store_path, cfg):
    import geopandas as gpd
    import pyogrio

    with Store(store_path) as st:
        res = st.merge(run1(), {"run_id": "r1"}, cfg)
    assert res.new == ["R-000001", "R-000002", "R-000003"]
    con = sqlite3.connect(store_path)
    assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
    assert con.execute("PRAGMA user_version").fetchone()[0] == 10400
    srs = {r[0] for r in con.execute("SELECT srs_id FROM gpkg_spatial_ref_sys")}
    assert {-1, 0, 4326} <= srs
    contents = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents"))
    assert contents["candidates"] == "features"
    assert contents["observations"] == contents["status_history"] == contents["runs"] == "attributes"
    blob = con.execute("SELECT geom FROM candidates WHERE candidate_id='R-000001'").fetchone()[0]
    assert blob[:2] == b"GP" and blob[2] == 0 and blob[3] == 1
    con.close()
    layers = {name for name, _ in pyogrio.list_layers(store_path)}
    assert {"candidates", "observations", "status_history", "runs"} <= layers
    gdf = gpd.read_file(store_path, layer="candidates")
    assert len(gdf) == 3 and gdf.crs.to_epsg() == 4326
    r = gdf.set_index("candidate_id").loc["R-000002"]
    assert r.geometry.x == pytest.approx(LON0) and r.geometry.y == pytest.approx(LAT0 + 50 * M_LAT)
    assert set(gdf["status"]) == {"new"}
    obs = gpd.read_file(store_path, layer="observations")
    assert len(obs) == 6


def test_gpkg_point_roundtrip():
    assert parse_gpkg_point(gpkg_point(137.5, 36.1)) == (137.5, 36.1)
    assert gpkg_point(float("nan"), 1.0) is None


@pytest.mark.parametrize("content", [b"hello, this is not a database at all" * 10, b"PK\x03\x04zipzip" * 50])
def test_not_a_geopackage_is_one_line_store_error(tmp_path, content):
    p = tmp_path / "bad.gpkg"
    p.write_bytes(content)
    with pytest.raises(StoreError) as ei:
        Store(p)
    assert "\n" not in str(ei.value) and str(p) in str(ei.value)
    assert p.read_bytes() == content  # untouched


def test_foreign_sqlite_is_refused(tmp_path):
    p = tmp_path / "other.sqlite"
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE things (a)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="not a patrol registry"):
        Store(p)


def test_truncated_sqlite_is_store_error(tmp_path, cfg):
    p = tmp_path / "r.gpkg"
    with Store(p) as st:
        st.merge(run1(), {}, cfg)
    data = p.read_bytes()
    p.write_bytes(data[:1500])
    with pytest.raises(StoreError):
        with Store(p) as st:
            st.query()


# ---------------------------------------------------------------------------------------------- merge
def test_merge_is_idempotent(store_path, cfg):
    with Store(store_path) as st:
        st.merge(run1(), {"run_id": "r1"}, cfg)
    before = dump(store_path, skip=())
    with Store(store_path) as st:
        res = st.merge(run1(), {"run_id": "r1-again"}, cfg)
    assert res.new == [] and res.seen_again == [] and sorted(res.unchanged) == ["R-000001", "R-000002", "R-000003"]
    assert dump(store_path, skip=()) == before  # runs included: a no-op merge leaves no trace


def test_seen_again_updates_aggregates(store_path, cfg):
    with Store(store_path) as st:
        st.merge(run1(), {"run_id": "r1"}, cfg)
        p2 = frame([
            cand("a2", north_m=3, east_m=2, drive="d2", conf=0.95, t="2026-11-27T09:00:00+09:00", n_images=3),
            cand("b2", north_m=58, drive="d2", conf=0.5, t="2026-11-27T09:00:00+09:00"),  # 8 m: same damage
            cand("c2", cls="D00", north_m=100, drive="d2", t="2026-11-27T09:00:00+09:00"),  # other class: new
            cand("z2", north_m=400, drive="d2", t="2026-11-27T09:00:00+09:00"),
        ])
        res = st.merge(p2, {"run_id": "r2"}, cfg)
        assert sorted(res.seen_again) == ["R-000001", "R-000002"]
        assert res.new == ["R-000004", "R-000005"]
        q = st.query().set_index("candidate_id")
    a = q.loc["R-000001"]
    assert a.n_obs == 5 and a.drives == ["d1", "d2"]
    assert a.first_seen == "2026-11-20T09:00:00+09:00" and a.last_seen == "2026-11-27T09:00:00+09:00"
    assert a.confidence == pytest.approx(0.95) and a.best_drive == "d2" and a.best_image == "IMG_a2.jpg"
    assert a.lat == pytest.approx(LAT0 + 3 * M_LAT)  # position of the best sighting
    b = q.loc["R-000002"]
    assert b.confidence == pytest.approx(0.8) and b.best_drive == "d1" and b.n_obs == 4
    assert q.loc["R-000003", "class"] == "D40" and q.loc["R-000004", "class"] == "D00"


def test_nearest_wins_and_each_registry_candidate_once(store_path, cfg):
    with Store(store_path) as st:
        st.merge(frame([cand("p", north_m=0), cand("q", north_m=10)]), {}, cfg)
        # x at 8 m: nearest is q (2 m) although p (8 m) is within distance too
        res = st.merge(frame([cand("x", north_m=8, drive="d2")]), {}, cfg)
        assert res.seen_again == ["R-000002"]
        # two run candidates near one registry candidate (p at 0 m; q at 10 m is too far for both): with
        # absorb_fragments off, the nearer one matches it and the other is new ...
        strict = cfg.model_copy(deep=True)
        strict.store.absorb_fragments = False
        two = frame([cand("y", north_m=-3, drive="d3"), cand("w", north_m=-1, drive="d3")])
        res = st.merge(two, {}, strict)
        assert res.seen_again == ["R-000001"] and res.new == ["R-000003"]
        assert res.mapping == {0: "R-000003", 1: "R-000001"}
        q = st.query().set_index("candidate_id")
        assert q.loc["R-000003", "best_image"] == "IMG_y.jpg"


def test_fragments_of_one_damage_are_absorbed(store_path, cfg):
    with Store(store_path) as st:
        st.merge(frame([cand("p", north_m=0), cand("q", north_m=30)]), {}, cfg)
        # ... by default a leftover within distance of a registry candidate taken in this merge joins it
        # (the run split one damage in two pieces 11 m apart)
        res = st.merge(frame([cand("y", north_m=-6, drive="d3"), cand("w", north_m=5, drive="d3")]), {}, cfg)
        assert res.seen_again == ["R-000001"] and res.new == [] and res.mapping == {0: "R-000001", 1: "R-000001"}
        assert st.query().set_index("candidate_id").loc["R-000001", "n_obs"] == 6


def test_distance_along_road_and_across_segments(store_path, cfg):
    with Store(store_path) as st:
        st.merge(frame([cand("p", north_m=0, seg="s1", ch=100.0)]), {}, cfg)
        # same segment: chainage decides (5 m along, though the point was placed 30 m off)
        res = st.merge(frame([cand("q", north_m=0, east_m=30, seg="s1", ch=105.0, drive="d2")]), {}, cfg)
        assert res.seen_again == ["R-000001"]
        # other segment (a crossing): planar distance 6 m
        res = st.merge(frame([cand("r", north_m=6, seg="s2", ch=0.0, drive="d3")]), {}, cfg)
        assert res.seen_again == ["R-000001"]
        res = st.merge(frame([cand("s", north_m=13, seg="s2", ch=0.0, drive="d4")]), {}, cfg)
        assert res.new == ["R-000002"]


def test_crop_of_best_observation_is_kept(store_path, cfg):
    with Store(store_path) as st:
        st.merge(frame([cand("a", conf=0.5, crop_jpeg=b"\xff\xd8first")]), {}, cfg)
        st.merge(frame([cand("a2", conf=0.4, drive="d2", crop_jpeg=b"\xff\xd8weaker")]), {}, cfg)
        assert st.query()["crop_jpeg"][0] == b"\xff\xd8first"
        st.merge(frame([cand("a3", conf=0.9, drive="d3", crop_jpeg=b"\xff\xd8best")]), {}, cfg)
        assert st.query()["crop_jpeg"][0] == b"\xff\xd8best"
        # stored once: in the candidate (the layer QGIS opens), none in the sightings; crop_obs_id names the sighting
        assert "crop_jpeg" not in {r[1] for r in st.con.execute("PRAGMA table_info(observations)")}
        held = st.con.execute("SELECT o.drive FROM candidates c JOIN observations o ON o.obs_id = c.crop_obs_id").fetchall()
        assert held == [("d3",)]
        st.merge(frame([cand("a4", conf=0.6, drive="d4", crop_jpeg=b"\xff\xd8weaker again")]), {}, cfg)
        assert st.query()["crop_jpeg"][0] == b"\xff\xd8best"


def test_explicit_observations_column(store_path, cfg):
    obs = [dict(drive="d1", image="i1.jpg", x1=1, y1=2, x2=30, y2=40, confidence=0.5, time="2026-11-20T09:00:00+09:00"),
           dict(drive="d1", image="i1.jpg", x1=300, y1=2, x2=330, y2=40, confidence=0.7,
                time="2026-11-20T09:00:00+09:00"),
           dict(drive="d1", image="i2.jpg", x1=1, y1=2, x2=30, y2=40, confidence=0.6, time="2026-11-20T09:00:01+09:00")]
    c = cand("a", image="i1.jpg", conf=0.7, box=(300, 2, 330, 40), observations=obs)
    with Store(store_path) as st:
        st.merge(frame([c]), {}, cfg)
        q = st.query()
        assert q.n_obs[0] == 3 and q.last_seen[0] == "2026-11-20T09:00:01+09:00" and q.best_x1[0] == 300
        res = st.merge(frame([c]), {}, cfg)
        assert res.unchanged == ["R-000001"] and st.query().n_obs[0] == 3


def test_query_filters(store_path, cfg):
    from datetime import date

    with Store(store_path) as st:
        st.merge(run1(), {}, cfg)
        st.merge(frame([cand("z", north_m=900, t="2026-12-01T09:00:00+09:00")]), {}, cfg)
        st.set_status("R-000001", "confirmed")
        assert list(st.query(status=["confirmed"]).candidate_id) == ["R-000001"]
        assert list(st.query(classes=["D40"]).candidate_id) == ["R-000003"]
        assert list(st.query(since=date(2026, 11, 30)).candidate_id) == ["R-000004"]
        q = st.query()
        for col in ("candidate_id", "class", "n_obs", "drives", "images", "status", "status_note",
                    "status_changed_at", "repaired_at", "checked_by", "issue_type", "crop_jpeg"):
            assert col in q.columns
        assert isinstance(q.drives[0], list)


# ---------------------------------------------------------------------------------------- life cycle
def test_transitions_and_history(store_path, cfg):
    with Store(store_path) as st:
        st.merge(run1(), {}, cfg)
        # the merge stamps new candidates on the municipality's clock (Asia/Tokyo), as `patrol status` does
        assert st.query()["status_changed_at"].str.endswith("+09:00").all()
        assert st.set_status("R-000001", "confirmed", note="deep", who="tanaka", when="2026-11-21")
        assert not st.set_status("R-000001", "confirmed")  # same status: no-op
        st.set_status("R-000001", "scheduled", who="tanaka")
        st.set_status("R-000001", "repaired", when="2026-11-25", who="crew 3")
        # open (未対応): every status a crew still goes out for, not the repaired (nor the ruled-out) ones
        every = st.query().set_index("candidate_id")["status"]
        assert every["R-000001"] == "repaired" and len(every) > 1
        for words in (["open"], ["未対応"], ["Open", "new"]):
            assert sorted(st.query(status=words)["candidate_id"]) == sorted(set(every.index) - {"R-000001"}), words
        with pytest.raises(UsageError, match=r"R-000001: transition repaired -> scheduled not allowed"):
            st.set_status("R-000001", "scheduled")
        # repaired on the spot (応急処置): new -> repaired in one step, the history says it was never confirmed
        assert st.set_status("R-000003", "応急処置済", when="2026-11-20", note="常温合材")
        assert st.history("R-000003").to_status.tolist() == ["new", "repaired"]
        with pytest.raises(UsageError, match="unknown candidate id"):
            st.set_status("R-999999", "confirmed")
        with pytest.raises(UsageError, match="unknown status"):
            st.set_status("R-000002", "fixed-ish")
        with pytest.raises(UsageError, match="new -> reopened"):
            st.set_status("R-000002", "reopened")
        st.set_status("R-000002", "not_an_issue", note="manhole")
        with pytest.raises(UsageError, match=r"R-000002: transition not_an_issue -> repaired not allowed "
                                             r"\(from not_an_issue: confirmed\)"):
            st.set_status("R-000002", "repaired")
        with pytest.raises(UsageError, match="unknown status 'fixed'"):
            st.query(status=["new", "fixed"])
        h = st.history("R-000001")
        assert list(zip(h.from_status.fillna(""), h.to_status)) == [
            ("", "new"), ("new", "confirmed"), ("confirmed", "scheduled"), ("scheduled", "repaired")]
        assert h.who.iloc[1] == "tanaka" and h.note.iloc[1] == "deep"
        q = st.query().set_index("candidate_id")
        assert q.loc["R-000001", "repaired_at"] == "2026-11-25T00:00:00+09:00" and q.loc["R-000001", "checked_by"] == "crew 3"
    # the table is what the docs say
    assert TRANSITIONS["new"] == {"confirmed", "scheduled", "repaired", "not_an_issue"}


def test_repaired_seen_again_after_repair_is_reopened(store_path, cfg):
    with Store(store_path) as st:
        st.merge(run1(), {}, cfg)
        for s in ("confirmed", "scheduled"):
            st.set_status("R-000001", s)
            st.set_status("R-000002", s)
        st.set_status("R-000001", "repaired", when="2026-11-25", note="常温合材で補修 / cold-mix patch")
        st.set_status("R-000002", "repaired", when="2026-11-25")
        # a late upload of a drive from before the repair: seen again, stays repaired
        res = st.merge(frame([cand("a0", north_m=1, drive="d0", t="2026-11-24T10:00:00+09:00")]), {}, cfg)
        assert res.seen_again == ["R-000001"] and res.reopened == []
        # the same day as the repair (a date): not after it
        res = st.merge(frame([cand("a1", north_m=1, drive="d1b", t="2026-11-25T16:00:00+09:00")]), {}, cfg)
        assert res.reopened == []
        res = st.merge(frame([cand("a2", north_m=1, drive="d2", t="2026-12-02T10:00:00+09:00"),
                              cand("b2", north_m=51, drive="d2", t="2026-12-02T10:00:00+09:00")]), {}, cfg)
        assert sorted(res.reopened) == ["R-000001", "R-000002"] and res.seen_again == []
        q = st.query().set_index("candidate_id")
        assert q.loc["R-000001", "status"] == "reopened"
        assert q.loc["R-000001", "status_note"] == "常温合材で補修 / cold-mix patch"  # the crew's note stays
        h = st.history("R-000001")
        assert (h.to_status.iloc[-1], h.from_status.iloc[-1], h.source.iloc[-1]) == ("reopened", "repaired", "merge")
        assert h.note.iloc[-1] == "seen again after repair"
        before = dump(store_path, skip=())
        st.merge(frame([cand("a2", north_m=1, drive="d2", t="2026-12-02T10:00:00+09:00")]), {}, cfg)
        assert dump(store_path, skip=()) == before
        st.set_status("R-000001", "scheduled")
        st.set_status("R-000001", "repaired", when="2026-12-05")
        assert st.query(status=["repaired"]).candidate_id.tolist() == ["R-000001"]


def test_not_an_issue_stays_but_counts(store_path, cfg):
    with Store(store_path) as st:
        st.merge(run1(), {}, cfg)
        st.set_status("R-000003", "not_an_issue", note="manhole cover")
        res = st.merge(frame([cand("c2", cls="D40", north_m=101, drive="d2", t="2026-12-02T10:00:00+09:00")]), {},
                       cfg)
        assert res.seen_again == ["R-000003"]
        q = st.query().set_index("candidate_id")
        assert q.loc["R-000003", "status"] == "not_an_issue" and q.loc["R-000003", "n_obs"] == 4
        assert "R-000003" not in set(st.query(status=["new", "confirmed", "reopened"]).candidate_id)


# ------------------------------------------------------------------------------------- verification
def _read_csv(path):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def _write_csv(path, rows, bom):
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)


@pytest.mark.parametrize("bom", [True, False])
def test_import_roundtrip_changes_exactly_named_rows(tmp_path, store_path, cfg, bom):
    with Store(store_path) as st:
        st.merge(run1(), {}, cfg)
        st.merge(frame([cand(f"k{i}", north_m=200 + 30 * i) for i in range(5)]), {}, cfg)
        st.set_status("R-000004", "confirmed", who="office")
        df = st.query(lists=False)
    # the crew's list as `patrol export --format csv` writes it (the one registry csv there is)
    from detector.report import export

    export(df, "csv", tmp_path / "repair_list.csv", cfg)
    raw = (tmp_path / "repair_list.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = _read_csv(tmp_path / "repair_list.csv")
    head = rows[0]
    ix = {h: k for k, h in enumerate(head)}
    assert [r[ix["candidate_id"]] for r in rows[1:]] == [f"R-{k:06d}" for k in range(1, 9)]  # route order
    con = sqlite3.connect(store_path)  # an old last_change, so the import's stamp differs even within one millisecond
    with con:
        con.execute("UPDATE gpkg_contents SET last_change='2000-01-01T00:00:00.000Z'")
    con.close()
    before = dump(store_path)
    # crew edits two rows; blanks the status of another; everything else as exported
    rows[2][ix["status"]] = "confirmed"
    rows[2][ix["status_note"]] = "深いひび割れ"
    rows[2][ix["checked_by"]] = "山田"
    rows[2][ix["checked_at"]] = "2026-12-01"
    rows[4][ix["status"]] = "補修済"  # R-000004 confirmed -> repaired, Japanese spelling
    rows[4][ix["issue_type"]] = "pothole patch"
    rows[6][ix["status"]] = rows[6][ix["status_ja"]] = ""  # both status columns blanked: the row is skipped
    _write_csv(tmp_path / "back.csv", rows, bom)
    with Store(store_path) as st:
        rep = st.import_verification(tmp_path / "back.csv", now=_LATER)
    assert sorted(rep.applied) == ["R-000002", "R-000004"] and rep.unmatched == [] and rep.skipped == [7]
    assert len(rep.unchanged) == 5
    after = dump(store_path)
    changed_ids = {"R-000002", "R-000004"}
    key = lambda r: r[2]  # noqa: E731 candidates: fid, geom, candidate_id, ...
    for t in before:
        if t == "candidates":
            b = {key(r): r for r in before[t]}
            a = {key(r): r for r in after[t]}
            assert {k for k in a if a[k] != b[k]} == changed_ids
        elif t == "status_history":
            assert after[t][: len(before[t])] == before[t]
            assert [(r[1], r[3], r[4]) for r in after[t][len(before[t]):]] == [
                ("R-000002", "new", "confirmed"), ("R-000004", "confirmed", "repaired")]
        elif t == "gpkg_contents":  # the changed tables say so (last_change); the import's record is new
            b = {r[0]: r for r in before[t]}
            assert {a[0] for a in after[t] if a != b.get(a[0])} == {"candidates", "status_history", "imports"}
        elif t != "sqlite_sequence":  # (the history counter moved by 2)
            assert after[t] == before[t], t
    # the import's record (what its undo gives back): the two damages it changed, before and after
    assert set(after) - set(before) == {"imports"} and len(after["imports"]) == 1
    assert list(json.loads(after["imports"][0][6])) == ["R-000002", "R-000004"]
    with Store(store_path) as st:
        q = st.query().set_index("candidate_id")
        assert q.loc["R-000002", "status_note"] == "深いひび割れ" and q.loc["R-000002", "checked_by"] == "山田"
        assert q.loc["R-000004", "repaired_at"] and q.loc["R-000004", "issue_type"] == "pothole patch"
        # importing the same file again changes nothing
        before2 = dump(store_path)
        rep2 = st.import_verification(tmp_path / "back.csv", now=_LATER)
        assert rep2.applied == [] and dump(store_path) == before2


def test_import_takes_off_the_exports_formula_guard(tmp_path, store_path, cfg):
    """A note or checker starting with = + - @ is exported after an apostrophe (export.safe_cell: text in Excel, not
    a formula); imported back, the apostrophe is taken off: a list imported as exported changes nothing, and a crew's
    '-5cm (written as the export writes it) is the note -5cm."""
    from detector.report import export

    with Store(store_path) as st:
        st.merge(run1(), {}, cfg)
        st.set_status("R-000001", "confirmed", note="=1+1", who="@office")
        df = st.query(lists=False)
    export(df, "csv", tmp_path / "repair_list.csv", cfg)
    rows = _read_csv(tmp_path / "repair_list.csv")
    ix = {h: k for k, h in enumerate(rows[0])}
    (r1,) = [r for r in rows[1:] if r[ix["candidate_id"]] == "R-000001"]
    assert (r1[ix["status_note"]], r1[ix["checked_by"]]) == ("'=1+1", "'@office")
    (r2,) = [r for r in rows[1:] if r[ix["candidate_id"]] == "R-000002"]
    r2[ix["status"]], r2[ix["status_note"]] = "confirmed", "'-5cm"
    _write_csv(tmp_path / "back.csv", rows, True)
    with Store(store_path) as st:
        rep = st.import_verification(tmp_path / "back.csv")
        q = st.query(lists=False).set_index("candidate_id")
    assert rep.applied == ["R-000002"] and rep.noted == [] and "R-000001" in rep.unchanged, rep
    assert (q.loc["R-000001", "status_note"], q.loc["R-000001", "checked_by"]) == ("=1+1", "@office")
    assert q.loc["R-000002", "status_note"] == "-5cm"


def test_import_reports_bad_rows_and_applies_the_rest(tmp_path, store_path, cfg):
    with Store(store_path) as st:
        st.merge(run1(), {}, cfg)
        st.set_status("R-000002", "not_an_issue")
    rows = [["candidate_id", "status", "note", "issue_type", "checked_by", "checked_at"],
            ["R-000001", "confirmed", "", "", "", ""],
            ["R-424242", "confirmed", "", "", "", ""],
            ["R-000002", "repaired", "", "", "", ""],  # not_an_issue -> repaired not allowed
            ["R-000003", "fixed?", "", "", "", ""],
            ["R-000003", "reopened", "", "", "", ""],
            ["R-000003", "scheduled", "", "", "", "not a date"],
            ["", "confirmed", "", "", "", ""]]
    _write_csv(tmp_path / "v.csv", rows, bom=False)
    with Store(store_path) as st:
        rep = st.import_verification(tmp_path / "v.csv")
        assert rep.applied == ["R-000001"]
        assert [r for r, _ in rep.unmatched] == [3, 4, 5, 6, 7, 8]
        assert "unknown candidate id" in rep.unmatched[0][1] and "not_an_issue -> repaired" in rep.unmatched[1][1]
        assert st.query().set_index("candidate_id").status.to_dict() == {
            "R-000001": "confirmed", "R-000002": "not_an_issue", "R-000003": "new"}


def _two_pass_registry(toyama: Path, path: Path, cfg) -> Path:
    """A registry of the sample drive's two oracle passes (runs p1, p2) at ``path``."""
    passes, _ = _oracle_candidates(toyama, cfg)
    with Store(path) as st:
        for k, p in enumerate(passes[:2]):
            st.merge(p, {"run_id": f"p{k + 1}"}, cfg)
    return path


def test_checked_at_as_an_excel_serial_or_without_a_year(toyama, tmp_path):
    """A crew's checked_at as a CSV saved from a sheet holds it when the date column was formatted as number (an
    Excel serial, ``46352`` = 2026-11-26, ``46352.5`` its noon) or when the crew typed ``11/26`` (Japanese Excel
    shows and saves ``11月26日``, no year): all refused before ('not a date'), the row's status change lost. Now a
    serial of 2000-2099 is that day; a number outside is refused as before, saying why. A date without a year is
    the latest such day not after the import (across New Year: ``1/5`` imported on 2027-01-10 is 2027-01-05,
    ``11/26`` 2026-11-26), refused when that is before the damage was first seen. Real data: the sample drive's two
    passes (first seen 2026-11-20) merged into a registry, a cp932 CSV as Japanese Excel saves it."""
    cfg = Config()
    path = _two_pass_registry(toyama, tmp_path / "registry.gpkg", cfg)
    with Store(path) as st:
        q = st.query(lists=False)
    assert set(q.first_seen.str[:10]) == {"2026-11-20"}
    ids = list(q.candidate_id[:11])
    typed = ["46352", "46352.604166667", "11月26日", "11月26日 14時30分", "1/5", "11/20",  # taken
             "11/19", "2/29", "12345", "123", "13/40"]  # refused
    text = "candidate_id,status,checked_at\n" + "".join(f"{i},confirmed,{w}\n" for i, w in zip(ids, typed))
    (tmp_path / "crew.csv").write_bytes(text.encode("cp932"))
    with Store(path) as st:
        rep = st.import_verification(tmp_path / "crew.csv", now=datetime.fromisoformat("2027-01-10T10:00:00+09:00"))
        got = st.query(lists=False).set_index("candidate_id")
    assert rep.applied == ids[:6], rep.unmatched
    assert [got.status_changed_at[i] for i in ids[:6]] == [
        "2026-11-26T00:00:00+09:00", "2026-11-26T14:30:00+09:00", "2026-11-26T00:00:00+09:00",
        "2026-11-26T14:30:00+09:00", "2027-01-05T00:00:00+09:00", "2026-11-20T00:00:00+09:00"]
    why = dict(rep.unmatched)
    assert sorted(why) == [8, 9, 10, 11, 12] and (got.status[ids[6:]] == "new").all()
    assert "'11/19' has no year: read as 2026-11-19" in why[8] and "first seen (2026-11-20)" in why[8]
    assert "read as 2024-02-29" in why[9]
    assert why[10].endswith("checked_at not a date or ISO 8601 time: '12345' (as an Excel date serial 1933-10-18, "
                            "outside 2000-2099)")
    assert why[11].endswith("checked_at not a date or ISO 8601 time: '123'")
    assert why[12].endswith("checked_at not a date or ISO 8601 time: '13/40'")


# -------------------------------------------------------------------------------- crash/concurrency
_WORKER = r"""
import pickle, sys
from detector.config import Config
from detector.store import Store
path, pk = sys.argv[1], sys.argv[2]
cands = pickle.load(open(pk, "rb"))
with Store(path) as st:
    res = st.merge(cands, {"run_id": pk}, Config())
print(len(res.new), len(res.seen_again))
"""


def _worker(tmp_path, store_path, cands, name, env=None):
    pk = tmp_path / f"{name}.pkl"
    pk.write_bytes(pickle.dumps(cands))
    return subprocess.Popen([sys.executable, "-c", _WORKER, str(store_path), str(pk)], cwd=ROOT,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_mid_merge_leaves_previous_state(tmp_path, store_path, cfg):
    with Store(store_path) as st:
        st.merge(run1(), {}, cfg)
    before = dump(store_path, skip=())
    marker = tmp_path / "in_txn"
    p = _worker(tmp_path, store_path, frame([cand("n", north_m=700), cand("a2", north_m=1, drive="d2")]), "kill",
                env={"PATROL_STORE_TEST_SLEEP_IN_TXN": "60", "PATROL_STORE_TEST_MARKER": str(marker)})
    t0 = time.time()
    while not marker.exists():
        assert p.poll() is None, p.communicate()
        assert time.time() - t0 < 60
        time.sleep(0.05)
    p.kill()
    p.wait()
    with Store(store_path) as st:
        assert st.integrity() == "ok"
    assert dump(store_path, skip=()) == before


def test_concurrent_merges_from_processes_all_land(tmp_path, store_path, cfg):
    with Store(store_path) as st:  # three drives of different streets (no overlap), one store
        pass
    runs = [frame([cand(f"{k}-{i}", north_m=1000 * k + 40 * i, drive=f"drive{k}") for i in range(15)])
            for k in range(3)]
    procs = [_worker(tmp_path, store_path, r, f"w{k}") for k, r in enumerate(runs)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "locked" not in err
    with Store(store_path) as st:
        q = st.query()
        assert len(q) == 45 and q.candidate_id.is_unique
        assert sorted(q.candidate_id) == [f"R-{k:06d}" for k in range(1, 46)]
        assert st.con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 3
        assert q.n_obs.sum() == 90


# ---------------------------------------------------------------------------------------- acceptance
def _oracle_candidates(toyama, cfg):
    """The two oracle passes + a synthetic pass 3 (pass 1 re-read as another drive, 14 days later), each
    through the real locate/dedupe when they exist, else positions straight from the camera fixes."""
    from detector.detections import read_detections_csv

    p1 = read_detections_csv(toyama / "toyama-2026-11-p1.oracle.csv")
    p2 = read_detections_csv(toyama / "toyama-2026-11-p2.oracle.csv")
    p3 = read_detections_csv(toyama / "toyama-2026-11-p1.oracle.csv", drive="toyama-2026-12-p3")
    p3.time = np.array([(datetime.fromisoformat(t) + timedelta(days=14)).isoformat() if t else t for t in p3.time],
                       dtype=object)
    try:
        from detector.dedupe import dedupe
        from detector.locate import locate
        from detector.roads import load_roads
    except ImportError:
        return [_naive_candidates(d) for d in (p1, p2, p3)], "hand-made"
    net = load_roads(toyama / "roads.geojson", cfg)
    out = []
    for d in (p1, p2, p3):
        out.append(dedupe(locate(d, net, cfg), cfg))
    return out, "locate+dedupe"


def _naive_candidates(det):
    """One candidate per (class, scene): sightings of one class within 15 m of the first of a group."""
    df = pd.DataFrame(dict(image=det.image, time=det.time, lat=det.lat, lon=det.lon, cls=det.class_id,
                           conf=det.confidence, x1=det.xyxy[:, 0], y1=det.xyxy[:, 1], x2=det.xyxy[:, 2],
                           y2=det.xyxy[:, 3], drive=det.drive))
    rows = []
    for cls, g in df.groupby("cls"):
        used = np.zeros(len(g), bool)
        lat, lon = g.lat.to_numpy(), g.lon.to_numpy()
        for i in range(len(g)):
            if used[i]:
                continue
            d = np.hypot((lat - lat[i]) * 111_195, (lon - lon[i]) * 111_195 * math.cos(math.radians(lat[i])))
            grp = np.nonzero((d < 15) & ~used)[0]
            used[grp] = True
            gg = g.iloc[grp]
            b = gg.iloc[0]
            rows.append(dict(candidate_id=f"{b.drive}-{len(rows)}", **{"class": cls}, confidence=b.conf,
                             first_seen=gg.time.min(), last_seen=gg.time.max(), segment_id=None, road_name=None,
                             chainage_m=np.nan, lat=gg.lat.mean(), lon=gg.lon.mean(), best_image=b.image,
                             best_drive=b.drive, best_x1=b.x1, best_y1=b.y1, best_x2=b.x2, best_y2=b.y2,
                             best_width=512, best_height=512, drives=[b.drive], images=sorted(set(gg.image)),
                             n_obs=len(gg)))
    return pd.DataFrame(rows)


def test_acceptance_three_passes_one_store(toyama, tmp_path):
    cfg = Config()  # the project's defaults, as patrol run uses them
    passes, how = _oracle_candidates(toyama, cfg)
    path = tmp_path / "registry.gpkg"
    with Store(path) as st:
        r1 = st.merge(passes[0], {"run_id": "p1"}, cfg)
        n1 = len(st.query())
        r2 = st.merge(passes[1], {"run_id": "p2"}, cfg)
        r3 = st.merge(passes[2], {"run_id": "p3"}, cfg)
        q = st.query()
        before = dump(path, skip=())
        st.merge(passes[2], {"run_id": "p3-again"}, cfg)
        assert dump(path, skip=()) == before
    print(f"[{how}] pass1 {len(passes[0])} -> {n1} registry; pass2 new {len(r2.new)} seen {len(r2.seen_again)}; "
          f"pass3 new {len(r3.new)} seen {len(r3.seen_again)}; final {len(q)}")
    assert len(r1.new) == n1
    assert len(q) <= 1.05 * n1
    three = q[q.drives.map(len) == 3]
    assert len(three) >= 0.8 * n1
    assert (three.n_obs >= 3).all()
    # no duplicates: no two registry candidates of one class within 10 m
    from detector.scoring import closest_same_class_m

    for cls, d in closest_same_class_m(q).items():
        assert d > 10, cls


def test_foreign_geopackage_is_refused(tmp_path):
    import geopandas as gpd
    from shapely.geometry import Point

    p = tmp_path / "candidates.gpkg"
    gpd.GeoDataFrame({"candidate_id": ["C-1"]}, geometry=[Point(137.2, 36.7)], crs=4326).to_file(p, layer="candidates")
    with pytest.raises(StoreError, match="not a patrol registry"):
        Store(p)


def test_idempotent_for_any_run(tmp_path_factory, cfg):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as S

    item = S.tuples(S.sampled_from(["D00", "D10", "D20", "D40"]), S.floats(0, 300), S.floats(-20, 20),
                    S.floats(0.05, 1.0), S.sampled_from(["d1", "d2"]), S.integers(1, 3))

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(S.lists(item, min_size=1, max_size=12), S.lists(item, min_size=0, max_size=12))
    def prop(first, second):
        path = tmp_path_factory.mktemp("h") / "r.gpkg"
        mk = lambda items, tag: frame([cand(f"{tag}{k}", cls=c, north_m=n, east_m=e, conf=cf, drive=d, n_images=ni)  # noqa: E731
                                       for k, (c, n, e, cf, d, ni) in enumerate(items)])
        with Store(path) as st:
            st.merge(mk(first, "a"), {}, cfg)
            if second:
                st.merge(mk(second, "b"), {}, cfg)
            before = dump(path, skip=())
            res = st.merge(mk(first, "a"), {}, cfg)
            assert not res.changed and dump(path, skip=()) == before
            q = st.query()
            assert q.candidate_id.is_unique
            n = st.con.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
            assert q.n_obs.sum() == n

    prop()


def _crew_edits_xlsx(xlsx, cid: str, cells: dict):
    """Edit the exported workbook as a crew would in Excel: cells of one candidate's row, by English header line."""
    import openpyxl

    wb = openpyxl.load_workbook(xlsx)
    ws = wb["candidates"]
    col = {str(c.value).split("\n")[-1]: c.column for c in ws[1]}
    for row in range(2, ws.max_row + 1):
        if ws.cell(row=row, column=col["candidate id"]).value == cid:
            for head, value in cells.items():
                ws.cell(row=row, column=col[head]).value = value
    wb.save(xlsx)
    return xlsx


def test_import_takes_shift_jis_csv_and_the_exported_xlsx(tmp_path, store_path, cfg, monkeypatch):
    """Japanese Excel saves "CSV (comma delimited)" as cp932, and crews are handed the .xlsx export: both come back."""
    import detector.config
    from detector import report

    # the merge and the CSV import at one instant (the clock pinned): the list's status_changed_at then names the
    # CSV import's change too, so the registry's change is not seen as made after the export (on a loaded machine
    # the two fell in different seconds, and the row was reported with the change since, as a stale list is)
    t0 = datetime.fromisoformat("2026-11-28T09:00:00+09:00")
    monkeypatch.setattr(detector.config, "now", lambda tz=None: t0.astimezone(tz) if tz is not None else t0)
    with Store(store_path) as st:
        st.merge(run1(), {}, cfg)
        df = st.query()
    sjis = tmp_path / "sjis.csv"
    sjis.write_bytes("candidate_id,status,note,checked_by\r\nR-000001,確認済み,縁石側のひび,山田\r\n".encode("cp932"))
    with Store(store_path) as st:
        assert st.import_verification(sjis).applied == ["R-000001"]
        q = st.query().set_index("candidate_id")
    assert (q.loc["R-000001", "status"], q.loc["R-000001", "status_note"], q.loc["R-000001", "checked_by"]) == (
        "confirmed", "縁石側のひび", "山田")

    xlsx = _crew_edits_xlsx(report.export(df, "xlsx", tmp_path / "list.xlsx", cfg), "R-000002",
                            {"status": "補修予定", "status note": "来週 / next week", "checked by": "crew 2",
                             "checked at": datetime(2026, 12, 5, 10, 30)})  # a date typed into Excel
    with Store(store_path) as st:
        rep = st.import_verification(xlsx, now=_LATER)
        q = st.query().set_index("candidate_id")
    # R-000001's row still says "new" (exported before the CSV import; a crew cannot set new): outdated, the
    # registry's "confirmed" stays, and it is no error (it was reported as a refused row, among real errors)
    assert rep.applied == ["R-000002"] and rep.unmatched == [] and "R-000001" not in rep.unchanged, rep
    assert [r for _, r in rep.outdated] == ["R-000001: still 'new' as exported; the registry has it confirmed since: "
                                            "left as it is"]
    assert q.loc["R-000001", "status"] == "confirmed"
    old_row = tmp_path / "old_row.csv"  # an outdated row whose note the crew did write: the note is still taken
    old_row.write_bytes("candidate_id,status,note\r\nR-000001,新規,縁石側 再確認\r\n".encode("cp932"))
    with Store(store_path) as st:
        rep = st.import_verification(old_row)
        q = st.query().set_index("candidate_id")
    assert (rep.noted, rep.unchanged, rep.unmatched, len(rep.outdated)) == (["R-000001"], [], [], 1), rep
    assert (q.loc["R-000001", "status"], q.loc["R-000001", "status_note"]) == ("confirmed", "縁石側 再確認")
    assert (q.loc["R-000002", "status"], q.loc["R-000002", "status_note"], q.loc["R-000002", "checked_by"]) == (
        "scheduled", "来週 / next week", "crew 2")
    assert q.loc["R-000002", "status_changed_at"] == "2026-12-05T10:30:00+09:00"  # the crew's date, Japan time

    bad = tmp_path / "binary.csv"
    bad.write_bytes(b"candidate_id,status\r\n\xff\xfe\xff\r\n")
    with Store(store_path) as st, pytest.raises(InputError, match="neither UTF-8 nor Shift_JIS") as e:
        st.import_verification(bad)
    assert str(bad) in str(e.value)


def test_import_keeps_notes_without_a_status_change_and_reads_the_japanese_status_column(tmp_path, store_path, cfg):
    """A crew often only writes a note (status left as it was, or blank), or edits 状態(和) rather than the status
    code: both are their word and must not be dropped. Ids are matched whatever their case; the exports' own
    Japanese status labels (新規, 再発) work as filters."""
    from detector import report

    with Store(store_path) as st:
        st.merge(run1(), {}, cfg)
        df = st.query()
    notes = tmp_path / "notes.csv"
    _write_csv(notes, [["candidate_id", "status", "note", "checked_by"],
                       ["R-000001", "", "段差あり", "田中"],          # blank status: a note only
                       ["r-000002", "new", "経過観察", "田中"],       # the current status again, and a note
                       ["R-000003", "new", "", ""]], bom=True)       # nothing new
    with Store(store_path) as st:
        rep = st.import_verification(notes)
        q = st.query().set_index("candidate_id")
        h = st.history("R-000001")
        assert st.query(status=["新規"])["candidate_id"].tolist() == ["R-000001", "R-000002", "R-000003"]
        assert st.query(status=["再発"]).empty
    assert (rep.applied, rep.noted, rep.unchanged, rep.unmatched) == ([], ["R-000001", "R-000002"], ["R-000003"], [])
    assert q.loc["R-000001", "status"] == "new" and q.loc["R-000001", "status_note"] == "段差あり"
    assert q.loc["R-000002", "status_note"] == "経過観察" and q.loc["R-000002", "checked_by"] == "田中"
    assert (h.from_status.iloc[-1], h.to_status.iloc[-1], h.note.iloc[-1]) == ("new", "new", "段差あり")

    # the Japanese status column edited, the code column still says new
    xlsx = _crew_edits_xlsx(report.export(df, "xlsx", tmp_path / "list.xlsx", cfg), "R-000003", {"status (ja)": "確認済み"})
    with Store(store_path) as st:
        rep = st.import_verification(xlsx)
        assert st.query().set_index("candidate_id").loc["R-000003", "status"] == "confirmed"
    assert rep.applied == ["R-000003"]



def test_next_weeks_gps_offset_is_the_same_damage_by_default(store_path):
    """Each week's GPS has its own offset (the sample's pass 2 jumps 16.7 m between two frames): with the shipped
    defaults a damage placed 20 m from where the registry has it is that damage seen again, not a new id; 40 m
    away is another damage. (With the match distance equal to dedupe.distance_m, 15 m, a six-week simulation on
    the sample drive gave five duplicate ids; with 25 m, one: a damage the week-3 run itself split in two.)"""
    cfg = Config()
    assert cfg.store.match_distance_m == 25.0 and cfg.store.match_distance_m > cfg.dedupe.distance_m
    with Store(store_path) as st:
        st.merge(frame([cand("a", north_m=0), cand("b", north_m=100)]), {}, cfg)
        res = st.merge(frame([cand("a2", north_m=20, drive="d2"), cand("b2", north_m=140, drive="d2")]), {}, cfg)
    assert res.seen_again == ["R-000001"] and res.new == ["R-000003"]


def test_old_registry_gets_observation_indexes_on_next_write(tmp_path):
    """A registry made before the observation indexes (merge speed over years) gets them in its next write."""
    import pandas as pd

    from detector.store import _INDEX_NAMES, Store

    p = tmp_path / "old.gpkg"
    with Store(p) as st:
        for name in _INDEX_NAMES:
            st.con.execute(f"DROP INDEX {name}")
    with Store(p) as st:
        st.merge(pd.DataFrame())
        have = {r[0] for r in st.con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert set(_INDEX_NAMES) <= have
        assert st.integrity() == "ok"


# ------------------------------------------------------------------------------- schema 1 -> 2, file size
SCHEMA1_COMMIT = "05e08e0"  # the last patrol writing schema 1: the best crop in the candidate AND its sighting's row


def old_store(folder: Path, commit: str, name: str):
    """``detector/store.py`` as of ``commit``, imported beside the current one (``detector.<name>``); the test is
    skipped where the git history lacks it (a registry made by that code is needed)."""
    import importlib.util

    try:
        src = subprocess.run(["git", "show", f"{commit}:detector/store.py"], cwd=ROOT, capture_output=True,
                             text=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip(f"git history with commit {commit} not available (a registry made by that code is needed)")
    path = folder / f"{name}.py"
    path.write_text(src, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"detector.{name}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # (its dataclasses look their module up)
    try:
        spec.loader.exec_module(mod)
    finally:
        del sys.modules[spec.name]
    return mod


def styles_bytes(path: Path, folder: Path) -> int:
    """What the registry's QGIS styles (``layer_styles``, ``Store._ensure_styles``) take of the file ``path``: a copy
    compacted with them less one compacted without them."""
    sizes = []
    for drop in (False, True):
        copy = folder / f"styles-{drop}.gpkg"
        copy.write_bytes(path.read_bytes())
        con = sqlite3.connect(copy)
        if drop:
            con.execute("DROP TABLE layer_styles")
            con.commit()
        con.execute("VACUUM")
        con.close()
        sizes.append(copy.stat().st_size)
        copy.unlink()
    return sizes[0] - sizes[1]


def _schema1_store(folder: Path):
    """``detector/store.py`` as of SCHEMA1_COMMIT (``detector.store_schema1``)."""
    return old_store(folder, SCHEMA1_COMMIT, "store_schema1")


def _with_crops(cands, tag):
    c = cands.copy()
    c["crop_jpeg"] = [b"\xff\xd8\xff" + f"{tag}:{i}".encode() + os.urandom(9000) for i in c["candidate_id"]]
    return c


def test_registry_of_schema_1_is_migrated_on_its_next_write(toyama, tmp_path):
    """A registry written by the code of SCHEMA1_COMMIT (every crop stored twice) keeps working: the current code
    reads it as it is, and its next write migrates it — one crop per damage, in the candidate (the layer QGIS
    opens), images named drive/name — to the very registry the current code builds from the same drives; the
    file is compacted once into incremental auto-vacuum, and the old code refuses it instead of misreading it.
    Real data: the sample's two oracle passes + a third pass two weeks later."""
    import pyogrio

    old = _schema1_store(tmp_path)
    cfg = Config()
    passes, _ = _oracle_candidates(toyama, cfg)
    passes = [_with_crops(p, k) for k, p in enumerate(passes)]
    p_old, p_new = tmp_path / "old.gpkg", tmp_path / "new.gpkg"
    with old.Store(p_old) as st:
        st.merge(passes[0], {"run_id": "p1"}, cfg)
        st.merge(passes[1], {"run_id": "p2"}, cfg)
        rid = st.query().candidate_id[3]
        st.set_status(rid, "confirmed", note="crew A", when="2026-11-25")
        before = st.query()
        # schema 1: the best crop of each damage twice
        assert st.con.execute("SELECT COUNT(*) FROM observations WHERE crop_jpeg IS NOT NULL").fetchone()[0] == len(before)
    with Store(p_new) as st:
        st.merge(passes[0], {"run_id": "p1"}, cfg)
        st.merge(passes[1], {"run_id": "p2"}, cfg)
        st.set_status(rid, "confirmed", note="crew A", when="2026-11-25")
    size_old = p_old.stat().st_size

    with Store(p_old) as st:  # read as it is: the same frame (images still bare names), nothing written
        q = st.query()
        pd.testing.assert_frame_equal(q[before.columns], before)  # (+ the sightings' summary the exports give)
    assert p_old.stat().st_size == size_old

    for p in (p_old, p_new):  # the next write, with the current code
        with Store(p) as st:
            st.merge(passes[2], {"run_id": "p3"}, cfg)
    with Store(p_old) as a, Store(p_new) as b:
        qa, qb = a.query(), b.query()
        same = [c for c in qa.columns if c != "status_changed_at"]  # (the merge time of a new candidate)
        pd.testing.assert_frame_equal(qa[same], qb[same])
        assert qa.crop_jpeg.notna().all() and qa.images.map(lambda v: all("/" in i for i in v)).all()
        assert a.con.execute("SELECT value FROM patrol_meta WHERE key='schema_version'").fetchone() == (
            str(SCHEMA_VERSION),)
        assert a.con.execute("SELECT COUNT(*) FROM observations WHERE crop_jpeg IS NOT NULL").fetchone() == (0,)
        held = "SELECT c.candidate_id, o.drive, o.image FROM candidates c JOIN observations o ON o.obs_id = c.crop_obs_id"
        assert sorted(a.con.execute(held).fetchall()) == sorted(b.con.execute(held).fetchall())
        assert not a.con.execute("SELECT 1 FROM sqlite_master WHERE name='observations_cand_crop'").fetchone()
        for s in (a, b):
            assert s.con.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # incremental
            assert s.con.execute("PRAGMA application_id").fetchone() == (0x47504B47,)
            assert s.integrity() == "ok"
        assert a.con.execute("PRAGMA freelist_count").fetchone()[0] < 256
    # one crop per damage instead of two: the migrated file about as small as the new one, not as the old (its data:
    # the QGIS styles its write added, 20 KB, apart)
    data = p_old.stat().st_size - styles_bytes(p_old, tmp_path)
    assert 0 < data < 0.75 * size_old and p_old.stat().st_size < 1.2 * p_new.stat().st_size
    assert len(pyogrio.read_dataframe(p_old, layer="candidates")) == len(qa)
    # the sightings beside the layer, as QGIS lists them (gpkg_contents 'attributes'): joined on candidate_id
    assert {n: g for n, g in pyogrio.list_layers(p_old)}["observations"] is None
    obs = pyogrio.read_dataframe(p_old, layer="observations")
    assert obs.groupby("candidate_id").size().to_dict() == dict(zip(qa.candidate_id, qa.n_obs))
    with pytest.raises(old.StoreError, match=f"schema version {SCHEMA_VERSION}"):
        old.Store(p_old)


def test_new_registry_hands_freed_pages_back(store_path, cfg):
    """Crops replaced by better ones free their pages: a registry gives them back to the file system when they
    are a quarter of the file (incremental auto-vacuum), instead of keeping a file that never shrinks."""
    rows = [cand(f"a{k}", north_m=30 * k, conf=0.5, crop_jpeg=b"\xff\xd8\xff" + os.urandom(20_000)) for k in range(100)]
    better = [cand(f"b{k}", north_m=30 * k, conf=0.9, drive="d2", crop_jpeg=b"\xff\xd8\xffsmall") for k in range(100)]
    with Store(store_path) as st:
        st.merge(frame(rows), {}, cfg)
        big = store_path.stat().st_size
        st.merge(frame(better), {}, cfg)
        assert set(st.query().crop_jpeg) == {b"\xff\xd8\xffsmall"}
        assert st.con.execute("PRAGMA freelist_count").fetchone()[0] < 256
        assert st.integrity() == "ok"
    assert store_path.stat().st_size < 0.4 * big  # 2.3 MB -> 0.75 MB (the same without it)


def test_two_phones_with_the_same_file_names(toyama, tmp_path):
    """Two phones (two drive folders) each name their frames IMG_0001.jpg, IMG_0002.jpg …: different frames,
    different places. The registry keeps every sighting of both (no "already there" by file name), and names
    images drive/name as the run's outputs do, so the registry's lists and `patrol export` agree with
    candidates.geojson (before: IMG_0003.jpg once for phoneA/IMG_0003.jpg and phoneB/IMG_0003.jpg)."""
    import json
    import shutil

    phones = {"phoneA": "toyama-2026-11-p1", "phoneB": "toyama-2026-11-p2"}
    for phone, src in phones.items():
        (tmp_path / phone).mkdir()
        for k, p in enumerate(sorted((toyama / src).glob("IMG_2026*.jpg"))[:12], start=1):
            shutil.copy2(p, tmp_path / phone / f"IMG_{k:04d}.jpg")
    cfg = tmp_path / "cfg.yaml"  # the shipped model is an early checkpoint: low thresholds, small and fast
    cfg.write_text("classes:\n" + "".join(f"  {c}: {{threshold: 0.05}}\n" for c in ("D00", "D10", "D20", "D40"))
                   + "detect: {imgsz: 320}\nprivacy: {blur_faces: false, blur_plates: false}\n", encoding="utf-8")
    store, out = tmp_path / "registry.gpkg", tmp_path / "out"

    def patrol(*args):
        r = subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args), "--config", cfg], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        return r

    patrol("run", tmp_path / "phoneA", tmp_path / "phoneB", "--roads", toyama / "roads.geojson", "--out", out,
           "--store", store)
    with open(out / "detections.csv", encoding="utf-8") as fh:
        hits = list(csv.DictReader(fh))
    assert {h["drive"] for h in hits} == set(phones)
    both = {h["image"] for h in hits if h["drive"] == "phoneA"} & {h["image"] for h in hits if h["drive"] == "phoneB"}
    assert both, "no file name with hits on both phones: the collision is not exercised"
    run = {f["id"]: f["properties"] for f in json.loads((out / "candidates.geojson").read_text("utf-8"))["features"]}
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    with Store(store) as st:
        q = st.query().set_index("candidate_id")
        by_drive = dict(st.con.execute("SELECT drive, COUNT(*) FROM observations GROUP BY drive").fetchall())
    assert summary["registry"]["new"] == len(q) == len(run)
    assert sum(p["n_obs"] for p in run.values()) == q.n_obs.sum() == sum(by_drive.values())
    assert set(by_drive) == set(phones)
    for cid, p in run.items():
        assert p["n_obs"] == q.n_obs[cid] and p["n_drives"] == len(q.drives[cid])
        assert (p["best_drive"], p["best_image"]) == (q.best_drive[cid], q.best_image[cid])
        assert set(p["last_images"]) <= set(q.images[cid]) and all(i.startswith(p["last_drive"] + "/")
                                                                   for i in p["last_images"])
    assert any(len({i.split("/", 1)[1] for i in ims}) < len(ims) for ims in q.images)  # a name from both phones
    patrol("export", store, "--format", "geojson", "--out", tmp_path / "reg.geojson")
    reg = json.loads((tmp_path / "reg.geojson").read_text("utf-8"))["features"]
    what = ("n_obs", "n_drives", "last_drive", "last_images")
    assert {f["id"]: [f["properties"][k] for k in what] for f in reg} == {c: [p[k] for k in what] for c, p in run.items()}
    # the same two phones again: every sighting is already there, none counted twice
    patrol("run", tmp_path / "phoneA", tmp_path / "phoneB", "--roads", toyama / "roads.geojson", "--out",
           tmp_path / "again", "--store", store)
    again = json.loads((tmp_path / "again" / "summary.json").read_text("utf-8"))["registry"]
    assert again["new"] == again["seen_again"] == 0 and again["already_there"] == len(run)


def _week(cands: pd.DataFrame, w: int) -> pd.DataFrame:
    """A pass as driven again ``w`` weeks later: drives renamed ``<drive>-w<w>``, times + w weeks."""
    c = cands.copy()
    sfx, dt = f"-w{w:03d}", timedelta(days=7 * w)
    c["drives"] = [[d + sfx for d in ds] for ds in c["drives"]]
    c["best_drive"] = [d + sfx for d in c["best_drive"]]
    c["last_drive"] = [d + sfx for d in c["last_drive"]]
    c["images"] = [[i.split("/", 1)[0] + sfx + "/" + i.split("/", 1)[1] for i in ims] for ims in c["images"]]
    for col in ("first_seen", "last_seen"):
        c[col] = [(datetime.fromisoformat(t) + dt).isoformat() for t in c[col]]
    if "observations" in c:  # every sighting, with its drive and time
        c["observations"] = [[{**o, "drive": o["drive"] + sfx, "time": (datetime.fromisoformat(o["time"]) + dt).isoformat()}
                              for o in obs] for obs in c["observations"]]
    return c


def test_exports_of_damages_seen_for_years_stay_small(toyama, tmp_path):
    """Unrepaired damages are seen every week for years: the sample's two real passes (located and deduped), driven
    again every week for 110 weeks, give each damage hundreds of sightings (~6 frames a week at most). Every
    export (csv, xlsx, geojson, kml, html) gives each damage its counts (n_obs, n_drives, first/last seen), its best
    frame and the latest drive's frames (at most LAST_IMAGES_MAX), not the complete lists (the registry's
    observations keep them): every cell stays far below Excel's 32,767 characters (the complete image list of the
    most seen damage is longer), and a file grows with the number of damages, not of sightings. A crew's list
    exported before, with the long columns, is still taken back."""
    import openpyxl

    from detector.export import LAST_IMAGES_MAX
    from detector.report import EXCEL_CELL_MAX, export

    cfg = Config()
    passes, how = _oracle_candidates(toyama, cfg)
    assert how == "locate+dedupe"
    path, weeks, fmts = tmp_path / "registry.gpkg", 110, ("csv", "xlsx", "geojson", "kml", "html")
    per_row, n_obs = {}, {}
    with Store(path) as st:
        for w in range(weeks):
            for k in (0, 1):
                st.merge(_week(passes[k], w), {"run_id": f"p{k + 1}-w{w:03d}"}, cfg)
            if w in (1, weeks - 1):
                q = st.query(lists=False)
                n_obs[w] = q.n_obs.sum()
                for fmt in fmts:
                    f = export(q, fmt, tmp_path / f"w{w}" / f"list.{fmt}", cfg)
                    per_row[w, fmt] = f.stat().st_size / len(q)
        full = st.query()  # with the complete lists
        obs = st.con.execute("SELECT candidate_id, drive, image, last_t FROM observations").fetchall()
    assert full.n_obs.max() >= 600 and full.n_drives.min() >= 2 * weeks - 10
    assert max(len("; ".join(v)) for v in full.images) > EXCEL_CELL_MAX  # what the exports wrote into one cell

    # the lists: the latest sighting's drive, and its frames (drive/name), as the observations have them
    latest: dict[str, tuple] = {}
    for cid, d, im, t in obs:
        latest[cid] = max(latest.get(cid, (-1.0, "")), (t, d))
    for r in full.itertuples():
        d = latest[r.candidate_id][1]
        frames = sorted({f"{d}/{im}" for c, dd, im, _ in obs if c == r.candidate_id and dd == d})
        assert (r.last_drive, r.last_images, r.n_drives) == (d, frames[:LAST_IMAGES_MAX], len(r.drives))
        assert r.last_drive.endswith(f"-w{weeks - 1:03d}") and 1 <= len(r.last_images) <= 6
    last = tmp_path / f"w{weeks - 1}"
    feats = json.loads((last / "list.geojson").read_text("utf-8"))["features"]
    by_id = full.set_index("candidate_id")
    for f in feats:
        p = f["properties"]
        assert "images" not in p and "drives" not in p
        assert p["last_images"] == by_id.last_images[f["id"]] and p["n_obs"] == by_id.n_obs[f["id"]]
        assert (p["n_drives"], p["last_drive"]) == (by_id.n_drives[f["id"]], by_id.last_drive[f["id"]])
    # every cell of the crew's lists far below Excel's limit
    with open(last / "list.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert "last_images" in rows[0] and "images" not in rows[0] and len(rows) == len(full) + 1
    assert max(len(c) for r in rows for c in r) < 2000
    wb = openpyxl.load_workbook(last / "list.xlsx", read_only=True)
    assert max(len(str(v)) for r in wb["candidates"].iter_rows(values_only=True) for v in r if v is not None) < 2000
    wb.close()
    kml = ET.parse(last / "list.kml").getroot()
    ns = "{http://www.opengis.net/kml/2.2}"
    assert max(len(d.text) for d in kml.iter(f"{ns}description")) < 2000
    # a file grows with the damages, not with their sightings (x50 sightings here)
    assert n_obs[weeks - 1] > 50 * n_obs[1]
    for fmt in fmts:
        assert per_row[weeks - 1, fmt] < 1.3 * per_row[1, fmt], (fmt, per_row[1, fmt], per_row[weeks - 1, fmt])

    # a crew's list exported before: the complete drives/images in their cells; one damage seen ~6 times a week for
    # ten years (170,000 characters: more than the csv module reads in a cell by default) — its statuses are read
    old = tmp_path / "old-list.csv"
    decade = "; ".join(f"toyama-2026-11-p1-w{w:03d}/IMG_20261120_0900{k:02d}_00{k:02d}.jpg"
                       for w in range(520) for k in range(6))
    with open(old, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["candidate_id", "status", "note", "drives", "images"])
        for k, r in enumerate(full.head(3).itertuples()):
            w.writerow([r.candidate_id, "confirmed", "crew B", "; ".join(r.drives), decade if k == 0 else "; ".join(r.images)])
    assert len(decade) > 131_072
    with Store(path) as st:
        rep = st.import_verification(old)
        assert rep.applied == list(full.candidate_id[:3]) and not rep.unmatched
        assert list(st.query(lists=False).status[:3]) == ["confirmed"] * 3


@pytest.mark.parametrize("sightings", [True, False], ids=["every-sighting", "best-box-only"])
def test_latest_drive_of_a_run_of_two_drives_is_the_later_not_the_larger_name(toyama, tmp_path, sightings):
    """One run of two drives (`patrol run A B --store`, `patrol locate a.csv b.csv --store`): the registry's latest
    drive (and its frames, what every export gives) is the run's own latest drive (the later drive), not the larger
    drive name. A run gives every sighting with its time (``observations``); a caller that gives only each damage's
    best box stores its other frames without their times, with the damage's last time, so the two drives tie: the
    run's ``last_drive`` then decides. Real data: the sample's two oracle passes, pass 1 driven by car 2 in the
    morning, pass 2 by car 1 later."""
    from detector.detections import Detections, read_detections_csv
    from detector.pipeline import locate_and_dedupe

    cfg = Config()
    early, late = "car2-am", "car1-pm"  # by name the morning drive is the last one
    det = Detections.concat([read_detections_csv(toyama / "toyama-2026-11-p1.oracle.csv", drive=early),
                             read_detections_csv(toyama / "toyama-2026-11-p2.oracle.csv", drive=late)])
    _, _, cands, _ = locate_and_dedupe(det, toyama / "roads.geojson", cfg)
    assert len(cands) == 31 and set(cands.last_drive) == {late}  # the run knows: every site seen last by car 1
    if not sightings:
        cands = cands.drop(columns="observations")
    path = tmp_path / "registry.gpkg"
    with Store(path) as st:
        st.merge(cands, {"run_id": "both"}, cfg)
        # without the sightings the tie is real: every sighting of a damage has one last time; with them, its own
        n, times = st.con.execute("SELECT COUNT(*), COUNT(DISTINCT candidate_id || last_t) FROM observations").fetchone()
        assert times == (n if sightings else 31) and n > 100
        q = st.query()
        before = dump(path, skip=())
        assert not st.merge(cands, {"run_id": "again"}, cfg).changed and dump(path, skip=()) == before
    assert (q.n_drives == 2).all() and set(q.last_drive) == {late}
    # a GIS user has every sighting in the registry: its observations layer (attributes, no geometry), joined on
    # candidate_id (`patrol export --format gpkg` gives the damages only: their counts and latest drive)
    import pyogrio

    assert {n: g for n, g in pyogrio.list_layers(path)}["observations"] is None
    obs = pyogrio.read_dataframe(path, layer="observations")
    assert obs.groupby("candidate_id").size().to_dict() == dict(zip(q.candidate_id, q.n_obs))
    assert obs.groupby("candidate_id").drive.nunique().eq(2).all()
    assert all(ims and all(i.startswith(late + "/") for i in ims) for ims in q.last_images)
    # a later week's drive of car 2 is the latest again: the time decides where it can
    nxt = _week(cands.assign(drives=[[early]] * len(cands), best_drive=early, last_drive=early,
                             images=[[f"{early}/{i.split('/', 1)[1]}" for i in ims] for ims in cands.images]), 1)
    if sightings:
        nxt["observations"] = [[{**o, "drive": f"{early}-w001"} for o in obs] for obs in nxt.observations]
    with Store(path) as st:
        st.merge(nxt, {"run_id": "week2"}, cfg)
        q2 = st.query()
    assert set(q2.last_drive) == {f"{early}-w001"}


def test_a_list_time_written_with_seconds_is_compared_to_the_second(store_path):
    """A list's 状態更新日時 is compared to the registry's time to the precision its cell has: a time Excel re-saved
    without seconds (``2026/11/27 13:40``) to the minute, one written with seconds to the second. A time whose seconds
    happened to be :00 (``13:40:00``) was taken for a minute's, so an office change 37 s later in that minute looked
    like no change: the stale-list check then let a Monday list undo it (seen once in CI, 1 run in ~60)."""
    with Store(store_path) as st:
        stored = "2026-11-27T13:40:37+09:00"
        assert st._same_time_text("2026/11/27 13:40", stored, None)  # Excel's CSV: to the minute
        assert not st._same_time_text("2026-11-27 13:40:00", stored, None)  # written with seconds: to the second
        assert not st._same_time_text("2026-11-27T13:40:00+09:00", stored, None)
        assert st._same_time_text("2026-11-27 13:40:37", stored, None)
        assert st._same_time_text("2026/11/27", stored, None)  # a day: to the day


# ------------------------------------------------------------------------ a repair dated before a sighting held
def _one_pass_registry(toyama: Path, path: Path, cfg) -> tuple[Path, pd.DataFrame]:
    """A registry of the sample drive's first pass (run p1, 2026-11-20) at ``path``, and its second pass's
    candidates (2026-11-27), not merged."""
    passes, _ = _oracle_candidates(toyama, cfg)
    with Store(path) as st:
        st.merge(passes[0], {"run_id": "p1"}, cfg)
    return path, passes[1]


def test_a_repair_dated_before_a_sighting_held_is_reopened_at_once(toyama, tmp_path):
    """The import took 補修日 2026-11-25 for a damage the registry had already seen on 2026-11-27 (a drive merged
    before the crew's list came back): the damage was marked repaired and the sighting that shows it still there was
    ignored until the next drive saw it again. Now the repair is recorded (history, repaired_at) and the damage is
    reopened at once, a history row saying 'seen … after the repair of 2026-11-25', one line in the report: the same
    status and repair date as when the drive is merged after the repair. A repair on the sighting's day (a date
    covers the day) or after it stays repaired; the same list imported again changes nothing; `set_status` with a
    date does the same. Real data: the sample drive's two passes (2026-11-20, 2026-11-27)."""
    cfg = Config()
    late = _two_pass_registry(toyama, tmp_path / "late.gpkg", cfg)  # p2 merged before the crew's list
    early, p2 = _one_pass_registry(toyama, tmp_path / "early.gpkg", cfg)  # p2 merged after it
    with Store(late) as st:
        q = st.query(lists=False)
    assert set(q.last_seen.str[:10]) == {"2026-11-27"}
    a, b, c, d = list(q.candidate_id[:4])
    crew = tmp_path / "crew.csv"
    crew.write_text("candidate_id,status,repaired_at,note\n"
                    f"{a},補修済,2026/11/25,常温合材\n{b},repaired,2026/11/27,\n{c},repaired,2026/11/28,\n",
                    encoding="utf-8")
    with Store(late) as st:
        rep = st.import_verification(crew, now=_LATER)
        got = st.query(lists=False).set_index("candidate_id")
        ha = st.history(a)
    assert rep.applied == [a, b, c] and rep.unmatched == [] and rep.held == []
    assert got.loc[[a, b, c], "status"].tolist() == ["reopened", "repaired", "repaired"]
    assert got.loc[a, "repaired_at"] == "2026-11-25T00:00:00+09:00" and got.loc[a, "status_note"] == "常温合材"
    assert ha[["from_status", "to_status"]].values.tolist()[-2:] == [["new", "repaired"], ["repaired", "reopened"]]
    assert ha.source.iloc[-1] == "import:crew.csv"
    assert re.fullmatch(r"seen 2026-11-27 \d\d:\d\d \(toyama-2026-11-p2\) after the repair of 2026-11-25",
                        ha.note.iloc[-1]), ha.note.iloc[-1]
    assert [ln for ln, _ in rep.seen_after] == [2] and rep.seen_after[0][1].startswith(f"{a}: {ha.note.iloc[-1]}: ")
    # the other order (the repair recorded, then the drive merged): the same statuses and repair dates
    with Store(early) as st:
        st.import_verification(crew, now=_LATER)
        res = st.merge(p2, {"run_id": "p2"}, cfg)
        other = st.query(lists=False).set_index("candidate_id")
    assert res.reopened == [a]
    assert other.loc[[a, b, c], ["status", "repaired_at"]].equals(got.loc[[a, b, c], ["status", "repaired_at"]])
    # the same list again: nothing changes; the line says the repair was recorded before
    before = dump(late, skip=())
    with Store(late) as st:
        rep = st.import_verification(crew, now=_LATER)
    assert rep.applied == [] and sorted(rep.unchanged) == sorted([a, b, c]) and dump(late, skip=()) == before
    assert [ln for ln, _ in rep.seen_after] == [2] and "recorded before, still reopened" in rep.seen_after[0][1]
    # the office, with a date (the API; `patrol status` stamps the clock's time)
    seen: list = []
    with Store(late) as st:
        assert st.set_status(d, "repaired", when="2026-11-22", seen=seen)
        assert st.status_of(d) == "reopened"
        assert [s.candidate_id for s in seen] == [d] and seen[0].repaired_at == "2026-11-22"
        st.set_status(d, "scheduled")
        assert st.set_status(d, "repaired", when="2026-11-30") and st.status_of(d) == "repaired"


def test_a_stale_lists_newer_repair_before_a_sighting_held_is_reopened(toyama, tmp_path):
    """The stale-list rule applies a crew's repair dated after every change the registry made since the list was
    exported (here the office's 補修予定 of 11/21); a drive of 11/27 merged since saw the damage (no status change).
    A repair the crew dated 11/25 is newer than the office's change but older than that sighting: recorded, then
    reopened, and the line of the newer rule says so; 11/28 stays repaired. The list imported again changes
    nothing (the reopened one's row outdated: taken before). Real data: the sample drive's two passes."""
    from detector.report import export

    cfg = Config()
    path, p2 = _one_pass_registry(toyama, tmp_path / "registry.gpkg", cfg)
    with Store(path) as st:
        export(st.query(lists=False), "csv", tmp_path / "mon.csv", cfg)
        a, b = st.query(lists=False).candidate_id[:2]
        for cid in (a, b):
            st.set_status(cid, "scheduled", when="2026-11-21 10:00", who="office")
        st.merge(p2, {"run_id": "p2"}, cfg)
        assert {st.status_of(a), st.status_of(b)} == {"scheduled"}
    rows = _read_csv(tmp_path / "mon.csv")
    ix = {h: k for k, h in enumerate(rows[0])}
    for r in rows[1:]:
        if r[ix["candidate_id"]] in (a, b):
            r[ix["status"]] = "補修済"
            r[ix["repaired_at"]] = "2026/11/25" if r[ix["candidate_id"]] == a else "2026/11/28"
    _write_csv(tmp_path / "fri.csv", rows, bom=True)
    time.sleep(1.1)  # the import's reopen a second after the export at least (the check reads times to the second)
    with Store(path) as st:
        rep = st.import_verification(tmp_path / "fri.csv", now=_LATER)
        assert (st.status_of(a), st.status_of(b)) == ("reopened", "repaired")
    assert sorted(rep.applied) == [a, b] and rep.held == []
    newer = dict((w.split(":")[0], w) for _, w in rep.newer)
    assert re.search(r"is dated after .*: applied, then reopened: seen 2026-11-27 \d\d:\d\d after it$", newer[a]), newer[a]
    assert newer[b].endswith(": applied")
    assert [w.split(":")[0] for _, w in rep.seen_after] == [a]
    before = dump(path, skip=())
    with Store(path) as st:
        rep = st.import_verification(tmp_path / "fri.csv", now=_LATER)
    assert rep.applied == [] and rep.seen_after == [] and dump(path, skip=()) == before
    assert [w.split(":")[0] for _, w in rep.outdated] == [a] and rep.outdated[0][1].endswith("left reopened (再発)")


# ------------------------------------------------------------------------------ an import taken back (--undo)
def _figures(path):
    """The registry's figures (patrol stats) over its whole history: repairs, reopens, not-an-issue, all periods."""
    from detector import stats

    with Store(path) as st:
        cands, hist, seen = stats.read_registry(st)
    s = stats.compute(cands, hist, Config(), seen=seen, until=datetime(2027, 1, 31).date())
    return {k: int(s.totals[k].sum()) for k in ("repaired", "reopened", "not_an_issue")}


def test_an_import_undone_gives_its_damages_back_and_leaves_one_changed_since(toyama, tmp_path, monkeypatch):
    """`patrol import-verification REGISTRY FILE --undo`: the office imported the wrong list (another district's, last
    month's). The undo gives every damage that import changed its status, note, checker and dates back as before the
    import (a repair recorded and reopened at once included), a history row each (``unimport:<file>``; the import's
    rows stay), and leaves a damage the office changed since (`patrol status`) as it is, named. A second undo has
    nothing to undo; the figures (patrol stats) count no repair of the undone import; the same file imported again is
    a fresh import (a crew's edit of 状態(和) alone was read as the import undone: unchanged) and can be undone again.
    Real data: the sample drive's two passes (last seen 2026-11-27), the list as `patrol export --format csv` writes
    it."""
    from detector.report import export

    cfg = Config()
    path = _two_pass_registry(toyama, tmp_path / "registry.gpkg", cfg)
    clock = [datetime.fromisoformat("2026-12-01T09:00:00+09:00")]
    monkeypatch.setattr("detector.config.now", lambda tz=None: clock[0].astimezone(tz))
    with Store(path) as st:
        a, b, c, d, e = list(st.query(lists=False).candidate_id[:5])
        st.set_status(e, "confirmed", note="office's note", who="office")
        export(st.query(lists=False), "csv", tmp_path / "list.csv", cfg)
    rows = _read_csv(tmp_path / "list.csv")
    ix = {h: k for k, h in enumerate(rows[0])}
    pos = {r[ix["candidate_id"]]: k for k, r in enumerate(rows)}
    in_list = lambda *ids: sorted(ids, key=pos.get)  # noqa: E731 (the list's order: along the route)
    crew = {a: {"status": "confirmed", "status_note": "深いひび割れ", "checked_by": "山田"},
            b: {"status": "補修済", "repaired_at": "2026/11/25"},  # before its sighting of 11/27: reopened at once
            c: {"status_ja": "補修予定"},  # the Japanese column alone edited
            d: {"status_note": "縁石際"},  # a note, the status kept
            e: {"status": "scheduled", "checked_by": "佐藤"}}
    for r in rows[1:]:
        for col, v in crew.get(r[ix["candidate_id"]], {}).items():
            r[ix[col]] = v
    name = "補修候補一覧.csv"
    _write_csv(tmp_path / name, rows, bom=True)
    before, figures = dump(path, skip=()), _figures(path)
    clock[0] = datetime.fromisoformat("2026-12-02T10:12:00+09:00")
    with Store(path) as st:
        rep = st.import_verification(tmp_path / name)
        imported = st.query(lists=False).set_index("candidate_id")
    assert rep.applied == in_list(a, b, c, e) and rep.noted == [d] and not rep.unmatched and not rep.held
    assert imported.loc[[a, b, c, d, e], "status"].tolist() == ["confirmed", "reopened", "scheduled", "new", "scheduled"]
    assert _figures(path)["repaired"] == figures["repaired"] + 1
    clock[0] = datetime.fromisoformat("2026-12-03T15:00:00+09:00")
    with Store(path) as st:  # the office, after the import: a is a manhole cover
        st.set_status(a, "not_an_issue", note="manhole", who="office")
        was_a = st.con.execute("SELECT * FROM candidates WHERE candidate_id=?", (a,)).fetchone()
    clock[0] = datetime.fromisoformat("2026-12-04T09:30:00+09:00")
    with Store(path) as st:
        res = st.undo_import(tmp_path / "elsewhere" / name, note="another district's list", who="田中")
    went = {b: ("reopened", "new"), c: ("scheduled", "new"), d: ("new", "new"), e: ("scheduled", "confirmed")}
    assert res.back == [(cid, *went[cid]) for cid in in_list(b, c, d, e)]
    assert [(cid, short) for cid, _, short in res.left] == [(a, "patrol status")]
    assert res.message == (f"import of {name} (2026-12-02 10:12) undone: 4 damages back, 1 left as changed since "
                           f"({a} by patrol status)")
    assert res.left_lines == [
        f"{a}: left as it is: changed since the import of {name}: confirmed -> not_an_issue (対象外) 2026-12-03 15:00 "
        f"by patrol status (office, 'manhole'); now not_an_issue (対象外), before the import new (新規); to change "
        f"it: patrol status {path} {a} --set …"]
    assert f"  reopened -> new (新規): 1 ({b})" in res.notes and f"  new (新規), note / checker back: 1 ({d})" in res.notes
    after = dump(path, skip=())
    # every damage as before the import, but the one changed since (as the office left it)
    cands = {r[2]: r for r in before["candidates"]}
    assert {r[2]: r for r in after["candidates"]} == {**cands, a: was_a}
    # the history: every row kept, the undo's appended
    hist = after["status_history"]
    assert hist[:len(before["status_history"])] == before["status_history"]
    undo = [h for h in hist if h[8] == f"unimport:{name}"]
    assert [(h[1], h[3], h[4], h[5], h[2]) for h in undo] == [
        (cid, fr, to, "田中", "2026-12-04T09:30:00+09:00") for cid, fr, to in res.back]
    assert {h[6] for h in undo} == {f"the import of {name} of 2026-12-02 10:12 undone: another district's list"}
    assert sorted(h[1] for h in hist if h[8] == f"import:{name}") == sorted([a, b, b, c, d, e])  # (b: then reopened)
    # the figures: the undone import's repair (and its reopen) no longer counted; the office's write-off is
    assert _figures(path) == {**figures, "not_an_issue": figures["not_an_issue"] + 1}
    # a second undo: nothing to undo, nothing written
    with Store(path) as st, pytest.raises(UsageError, match=rf"the import of {name} \(2026-12-02 10:12\) was undone "
                                                            r"on 2026-12-04 09:30: nothing to undo"):
        st.undo_import(name)
    assert dump(path, skip=()) == after
    # the same file imported again: a fresh import (c's 補修予定 taken again; a's row was taken before, changed since:
    # outdated, its note taken as on any outdated row)
    clock[0] = datetime.fromisoformat("2026-12-05T08:00:00+09:00")
    with Store(path) as st:
        again = st.import_verification(tmp_path / name)
        got = st.query(lists=False).set_index("candidate_id")
    assert again.applied == in_list(b, c, e) and again.noted == in_list(a, d) and not again.held  # (a: its note)
    assert [w.split(":")[0] for _, w in again.outdated] == [a]
    cols = ["status", "status_note", "checked_by", "repaired_at"]
    assert got.loc[[b, c, d, e], cols].equals(imported.loc[[b, c, d, e], cols])
    with Store(path) as st:
        res2 = st.undo_import(name)
    assert [x[0] for x in res2.back] == in_list(a, b, c, d, e) and not res2.left
    assert {r[2]: r for r in dump(path, skip=())["candidates"]} == {**cands, a: was_a}


def test_an_import_undo_that_cannot_be_done_says_why(toyama, tmp_path, monkeypatch):
    """Refused, the registry unchanged (exit 2 in the console): a file never imported (the files imported named,
    latest first), one imported by a patrol that kept no record of imports, one whose rows were all held, and an
    import whose every damage was changed since. A file's name is matched whatever its case. Real data: the sample
    drive's two passes."""
    cfg = Config()
    path = _two_pass_registry(toyama, tmp_path / "registry.gpkg", cfg)
    monkeypatch.setattr("detector.config.now",
                        lambda tz=None: datetime.fromisoformat("2026-12-01T09:00:00+09:00").astimezone(tz))
    with Store(path) as st:
        a, b, c = list(st.query(lists=False).candidate_id[:3])
        with pytest.raises(UsageError, match=r"list\.csv was never imported into this registry: nothing to undo \(no "
                                             r"crew list was imported into it\)"):
            st.undo_import("list.csv")
    (tmp_path / "old.csv").write_text(f"candidate_id,status\n{a},confirmed\n", encoding="utf-8")
    (tmp_path / "w1.csv").write_text(f"candidate_id,status\n{b},confirmed\n", encoding="utf-8")
    with Store(path) as st:
        st.import_verification(tmp_path / "old.csv")
        st.con.execute("DELETE FROM imports WHERE file='old.csv'")  # as patrol 0.10.0 imported it: no record
        st.import_verification(tmp_path / "w1.csv")
        st.set_status(b, "scheduled")  # the office, after the import
        # a list exported before the office's change, its crew writing another status: held, not applied
        (tmp_path / "held.csv").write_text(f"candidate_id,status,status_changed_at\n{b},not_an_issue,"
                                           "2026-11-20T09:00:00+09:00\n", encoding="utf-8")
        assert st.import_verification(tmp_path / "held.csv").held
    before = dump(path, skip=())
    why = {}
    with Store(path) as st:
        for f in ("list.csv", "old.csv", "held.csv", "W1.CSV"):
            with pytest.raises(UsageError) as e:
                st.undo_import(f)
            why[f] = e.value.reason
    assert dump(path, skip=()) == before
    assert why["list.csv"] == ("list.csv was never imported into this registry: nothing to undo (the files imported, "
                               "latest first: held.csv, w1.csv (2026-12-01 09:00), old.csv)")
    assert why["old.csv"].startswith("the import of old.csv was made by a patrol that kept no record of what the "
                                     "damages had before (0.10.0 or earlier): it cannot be undone")
    assert why["held.csv"].startswith("the import of held.csv changed no damage (its rows were held")
    assert why["W1.CSV"] == (f"the import of w1.csv (2026-12-01 09:00): every damage it changed (1) was changed since "
                             f"({b} by patrol status): nothing undone")
