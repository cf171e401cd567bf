"""`patrol export REGISTRY --format jobs --roads R`: repair jobs (補修工区), the damages within ``jobs.gap_m`` of each
other on one road bundled by single linkage (README: Repair jobs). Real data: the sample registry of test_stats (the
two sample passes' oracle detections located on the sample network, 31 damages: 3 repaired, 1 not an issue, 1 merged
into another, 26 open) and the sample network; the same network with made-up road names (``test_stats._name_of``) for
the same-road rule. The oracle: every pair of damages measured (pyproj into the network's CRS, numpy), joined by a
union-find in plain Python."""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import TOYAMA
from test_area import districts  # noqa: F401 (the fixture)
from test_stats import JST, ROOT, _name_of, ok, patrol, registry  # noqa: F401 (the fixture)

ROADS = TOYAMA / "roads.geojson"
OPEN = ("new", "confirmed", "scheduled", "reopened")


def jobs(store, out, *args, roads=ROADS):
    """The exported jobs (csv: its ``ja en`` headings as the English names) and the console's last line."""
    r = ok(patrol("export", store, "--format", "jobs", "--roads", roads, "--out", out, *args))
    with open(out, encoding="utf-8-sig", newline="") as fh:
        df = pd.DataFrame(list(csv.DictReader(fh)))
    return df.rename(columns=lambda c: c.split(" ")[-1]), r.stdout.strip().splitlines()[-1]


def groups(df) -> set[frozenset]:
    return {frozenset(s.split(";")) for s in df["candidate_ids"]}


def damages(store, statuses=OPEN) -> pd.DataFrame:
    con = sqlite3.connect(store)
    d = pd.read_sql_query("SELECT candidate_id, lat, lon, status, segment_id, severity, est_width_m, est_length_m "
                          "FROM candidates WHERE merged_into IS NULL", con)
    con.close()
    return d[d["status"].isin(statuses)].reset_index(drop=True)


def oracle(d: pd.DataFrame, gap_m: float, road=None) -> set[frozenset]:
    """Single linkage by hand: all pairs within ``gap_m`` (on the ground, in the network's metric CRS) of one road
    (``road``: a key per damage; None: any road) joined, union-find."""
    from pyproj import Transformer

    from detector.config import Config
    from detector.roads import load_roads

    crs = load_roads(ROADS, Config()).crs
    x, y = Transformer.from_crs(4326, crs, always_xy=True).transform(d["lon"].to_numpy(float), d["lat"].to_numpy(float))
    x, y = np.asarray(x), np.asarray(y)
    dist = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    parent = list(range(len(d)))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(d)):
        for j in range(i + 1, len(d)):
            if dist[i, j] <= gap_m and (road is None or road[i] == road[j]):
                parent[find(i)] = find(j)
    out: dict[int, set] = {}
    for i, cid in enumerate(d["candidate_id"]):
        out.setdefault(find(i), set()).add(cid)
    return {frozenset(v) for v in out.values()}


def gap_config(tmp_path, gap) -> str:
    p = tmp_path / f"gap-{gap}.yaml"
    p.write_text(f"jobs:\n  gap_m: {gap}\n", encoding="utf-8")
    return str(p)


@pytest.fixture(scope="module", autouse=True)
def blank(registry, tmp_path_factory):  # noqa: F811
    """A copy of the registry as the fixture made it, before this module's lists recorded any job (autouse: made
    before the first test exports a list)."""
    import shutil

    path = tmp_path_factory.mktemp("blank") / "registry.gpkg"
    shutil.copy(registry["store"], path)
    return path


def fresh(blank, tmp_path, name="registry.gpkg") -> Path:  # noqa: F811
    """A copy of ``blank``: a registry that no jobs list has numbered yet."""
    import shutil

    store = tmp_path / name
    shutil.copy(blank, store)
    return store


def held(store) -> pd.DataFrame:
    """The registry's recorded jobs (table job_ids), by number."""
    con = sqlite3.connect(store)
    df = pd.read_sql_query("SELECT * FROM job_ids ORDER BY number", con)
    con.close()
    return df


def test_small_and_large_gap_give_the_known_jobs(blank, tmp_path):  # noqa: F811
    """The default 50 m, a small gap (10 m: mostly single damages) and a large one (300 m: the whole route one job)
    each give exactly the oracle's groups of the 26 open damages; every job's counts add up; the order is the largest
    severity first, ranked 1 …; the first list of a registry: ids 工区-001 … in that order, recorded; the line says
    the counts and where it went."""
    d = damages(blank)
    assert len(d) == 26
    # the line's area: the damages' estimated areas summed unrounded, rounded once, as `patrol stats` gives the
    # backlog's (it summed the jobs' rounded area_m2: 144.1 m² where stats said 144.0 for the same damages)
    total = (d["est_width_m"] * d["est_length_m"]).clip(lower=0).fillna(0).sum()
    got = {}
    for gap, n_jobs in ((10, 20), (50, 9), (300, 1)):
        store = fresh(blank, tmp_path, f"registry-{gap}.gpkg")
        args = ("--config", gap_config(tmp_path, gap)) if gap != 50 else ()
        out = tmp_path / f"jobs-{gap}.csv"
        df, line = jobs(store, out, *args)
        got[gap] = df
        assert groups(df) == oracle(d, gap), gap
        assert len(df) == n_jobs, gap
        assert df["job_id"].tolist() == [f"工区-{i:03d}" for i in range(1, n_jobs + 1)]
        assert df["rank"].tolist() == [str(i) for i in range(1, n_jobs + 1)]
        rec = held(store)
        assert rec["job_id"].tolist() == df["job_id"].tolist() and rec["number"].tolist() == list(range(1, n_jobs + 1))
        assert rec["candidate_ids"].tolist() == df["candidate_ids"].tolist()
        n = df["n_damages"].astype(int)
        assert n.sum() == 26 and (n == df["candidate_ids"].str.count(";") + 1).all()
        assert (df[[f"n_{c}" for c in ("D00", "D10", "D20", "D40")]].astype(int).sum(axis=1) == n).all()
        sev = df["severity_max"].astype(float).to_numpy()
        assert (np.diff(sev) <= 0).all()  # most severe first
        assert line == (f"26 damages (new/confirmed/scheduled/reopened) → {n_jobs} repair job"
                        f"{'s' if n_jobs > 1 else ''} ({int((n > 1).sum())} of more than one damage; within {gap} m on "
                        f"one road), {total:.1f} m² → {out}"), line
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Japanese Excel
    # a job's severity and area are its damages' (largest; summed), its extent the largest distance between two
    by_id = d.set_index("candidate_id")
    whole = got[300].iloc[0]
    assert float(whole["severity_max"]) == pytest.approx(by_id["severity"].max(), abs=1e-3)
    area = (by_id["est_width_m"] * by_id["est_length_m"]).clip(lower=0).fillna(0).sum()
    assert float(whole["area_m2"]) == pytest.approx(area, abs=0.1)
    assert float(whole["extent_m"]) > 900  # the whole route (about 1 km north to south)
    assert (got[10]["extent_m"].astype(float) <= 10 * (got[10]["n_damages"].astype(int) - 1) + 0.1).all()


def _roads_named(path: Path, field: str) -> Path:
    """The sample network written to ``path`` with each segment's made-up road (``_name_of``) in column ``field``."""
    doc = json.loads(ROADS.read_text(encoding="utf-8"))
    for f in doc["features"]:
        if (name := _name_of(f["properties"]["segment_id"])) is not None:
            f["properties"][field] = name
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def test_same_road_rule_splits_a_job_at_a_road_change(registry, tmp_path):  # noqa: F811
    """With a network that names its roads, damages within the gap but on two roads are two jobs: the oracle's groups
    by the name of each damage's segment (an unnamed one: one "road" of its own); each job has one road_name. The
    same registry on the unnamed network is fewer jobs (the rule is what splits them)."""
    store = registry["store"]
    roads = _roads_named(tmp_path / "roads-named.geojson", "name")
    d = damages(store)
    road = [(_name_of(s) or "") for s in d["segment_id"]]
    cfg = gap_config(tmp_path, 300)
    named, _ = jobs(store, tmp_path / "named.csv", "--config", cfg, roads=roads)
    unnamed, _ = jobs(store, tmp_path / "unnamed.csv", "--config", cfg)
    assert groups(named) == oracle(d, 300, road)
    assert len(unnamed) == 1 and len(named) > 3
    name_of = dict(zip(d["candidate_id"], road))
    for ids, rn in zip(named["candidate_ids"], named["road_name"]):
        assert {name_of[c] for c in ids.split(";")} == {rn}


def test_a_kept_road_field_is_the_road_where_the_network_names_none(registry, tmp_path):  # noqa: F811
    """A network naming no road (the sample's, its made-up roads in a column 路線, not ``name``) with ``roads.keep_fields:
    [路線]``: the jobs are the oracle's groups by each damage's 路線 (README: Repair jobs, the same road), not one job of
    every damage as without the kept field; the jobs carry 路線 right after road_name (each job's one value, its
    damages'), the GeoJSON's patrol member names the field; the workbook's legend says the rule."""
    import openpyxl

    store = registry["store"]
    roads = _roads_named(tmp_path / "roads-ledger.geojson", "路線")
    d = damages(store)
    road = [(_name_of(s) or "") for s in d["segment_id"]]
    cfg = tmp_path / "ledger.yaml"
    cfg.write_text("roads:\n  keep_fields: [路線]\njobs:\n  gap_m: 300\n", encoding="utf-8")
    df, _ = jobs(store, tmp_path / "ledger.csv", "--config", cfg, roads=roads)
    assert groups(df) == oracle(d, 300, road) and len(df) > 3
    assert list(df.columns[:4]) == ["rank", "job_id", "road_name", "路線"] and (df["road_name"] == "").all()
    name_of = dict(zip(d["candidate_id"], road))
    for ids, rn in zip(df["candidate_ids"], df["路線"]):
        assert {name_of[c] for c in ids.split(";")} == {rn}
    bare, _ = jobs(store, tmp_path / "bare.csv", "--config", gap_config(tmp_path, 300), roads=roads)
    assert len(bare) == 1 and "路線" not in bare.columns  # no kept field: any road
    gj = tmp_path / "ledger.geojson"
    ok(patrol("export", store, "--format", "jobs", "--roads", roads, "--config", cfg, "--out", gj))
    got = json.loads(gj.read_text(encoding="utf-8"))
    assert got["patrol"]["road_field"] == "路線"
    assert [f["properties"]["路線"] or "" for f in got["features"]] == df["路線"].tolist()
    xl = tmp_path / "ledger.xlsx"
    ok(patrol("export", store, "--format", "jobs", "--roads", roads, "--config", cfg, "--out", xl))
    wb = openpyxl.load_workbook(xl)
    assert [c.value for c in wb["jobs"][1]][:4] == ["順位\nrank", "工区\njob_id", "路線名\nroad_name", "路線"]
    legend = " ".join(str(c.value) for row in wb["legend"].iter_rows() for c in row if c.value)
    assert "the same 路線, the first of roads.keep_fields" in legend and "路線: 道路台帳の項目" in legend


def test_kept_road_fields_follow_road_name_on_a_named_network(registry, tmp_path):  # noqa: F811
    """A network naming its roads with a kept field (路線 again, the same values as the names): road_name is still the
    key, the kept field follows it, one value a job."""
    store = registry["store"]
    doc = json.loads(ROADS.read_text(encoding="utf-8"))
    for f in doc["features"]:
        if (name := _name_of(f["properties"]["segment_id"])) is not None:
            f["properties"]["name"] = f["properties"]["路線"] = name
    roads = tmp_path / "roads-both.geojson"
    roads.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    cfg = tmp_path / "both.yaml"
    cfg.write_text("roads:\n  keep_fields: [路線]\n", encoding="utf-8")
    df, _ = jobs(store, tmp_path / "both.csv", "--config", cfg, roads=roads)
    assert list(df.columns[:4]) == ["rank", "job_id", "road_name", "路線"]
    assert (df["road_name"] == df["路線"]).all() and (df["road_name"] != "").any()


def test_status_filter(registry, tmp_path):  # noqa: F811
    """Default: the open damages (not the repaired R-000002, R-000006, R-000021, the not-an-issue R-000003, the merged
    R-000031); --status repaired: exactly the three repaired ones, grouped as the oracle groups them."""
    store = registry["store"]
    df, _ = jobs(store, tmp_path / "open.csv")
    held = set().union(*groups(df))
    assert not held & {"R-000002", "R-000003", "R-000006", "R-000021", "R-000031"} and "R-000010" in held
    rep, line = jobs(store, tmp_path / "rep.csv", "--status", "repaired")
    assert set().union(*groups(rep)) == {"R-000002", "R-000006", "R-000021"}
    assert groups(rep) == oracle(damages(store, ("repaired",)), 50)
    assert line.startswith("3 damages (repaired) → ")


def test_area_bundles_the_districts_damages_only(registry, districts, tmp_path):  # noqa: F811
    """--area: the jobs of the open damages inside the district (by position), grouped among themselves; the line ends
    as the lists' do."""
    store = registry["store"]
    d = damages(store)
    south = d[d["candidate_id"].isin(districts["damages"]["south"])].reset_index(drop=True)
    df, line = jobs(store, tmp_path / "south.csv", "--area", districts["dir"] / "south.geojson")
    assert groups(df) == oracle(south, 50) and 0 < len(south) < len(d)
    assert line.endswith(f"in area south.geojson: {len(south)} of 26 damages"), line


def test_map_files_and_workbook(registry, tmp_path):  # noqa: F811
    """GeoJSON: one polygon per job holding its damages, the patrol member with the rule; GeoPackage layer
    repair_jobs; xlsx: sheet jobs headed ja over en, and a legend; with repair_cost a cost column of stats' pricing."""
    import geopandas as gpd
    import openpyxl
    import shapely

    store = registry["store"]
    d = damages(store).set_index("candidate_id")
    gj = tmp_path / "jobs.geojson"
    ok(patrol("export", store, "--format", "jobs", "--roads", ROADS, "--out", gj))
    doc = json.loads(gj.read_text(encoding="utf-8"))
    assert doc["patrol"]["gap_m"] == 50 and doc["patrol"]["damages"] == 26 and doc["patrol"]["jobs"] == 9
    for f in doc["features"]:
        poly = shapely.geometry.shape(f["geometry"])
        assert poly.geom_type == "Polygon"
        ids = f["properties"]["candidate_ids"].split(";")
        assert all(poly.contains(shapely.Point(d.loc[c, "lon"], d.loc[c, "lat"])) for c in ids)
    gp = tmp_path / "jobs.gpkg"
    ok(patrol("export", store, "--format", "jobs", "--roads", ROADS, "--out", gp))
    assert len(gpd.read_file(gp, layer="repair_jobs")) == 9
    prices = tmp_path / "prices.yaml"
    prices.write_text("repair_cost:\n  per_m2: {D00: 3000, D10: 3000, D20: 8000, D40: 15000}\n  minimum: 20000\n",
                      encoding="utf-8")
    xl = tmp_path / "jobs.xlsx"
    ok(patrol("export", store, "--format", "jobs", "--roads", ROADS, "--out", xl, "--config", prices))
    wb = openpyxl.load_workbook(xl)
    assert wb.sheetnames == ["jobs", "legend"]
    head = [c.value for c in wb["jobs"][1]]
    assert head[:2] == ["順位\nrank", "工区\njob_id"] and "概算補修費(円)\nrepair cost estimate (円)" in head
    con = sqlite3.connect(store)
    cls = dict(con.execute("SELECT candidate_id, class FROM candidates"))
    con.close()
    price = {"D00": 3000, "D10": 3000, "D20": 8000, "D40": 15000}
    col = head.index("概算補修費(円)\nrepair cost estimate (円)")
    ids_col = head.index("損傷ID\ncandidate_ids")
    for row in wb["jobs"].iter_rows(min_row=2, values_only=True):
        want = 0.0
        for c in row[ids_col].split(";"):
            a = d.loc[c, "est_width_m"] * d.loc[c, "est_length_m"]
            want += max(a * price[cls[c]], 20000) if a == a and a > 0 else 20000
        assert row[col] == round(want)


@pytest.mark.parametrize("args, code, words", [
    (("--roads", ROADS, "--out", "x.csv", "--config", "GAP0"), 4, "jobs.gap_m: 0 is not a distance: give more than 0 m"),
    (("--roads", ROADS, "--out", "x.csv", "--config", "GAP-5"), 4, "jobs.gap_m: -5 is not a distance"),
    (("--out", "x.csv"), 2, "--format jobs needs the road network (--roads ROADS)"),
    (("--roads", ROADS, "--out", "x.shp"), 2, "x.shp: --format jobs writes X.csv, X.xlsx, X.geojson, X.json or X.gpkg"),
    (("--roads", ROADS, "--out", "x.gpkg", "--crs", "EPSG:6675"), 2, "is not for --format jobs"),
    (("--roads", ROADS, "--out", "x.csv", "--since", "2026-11-01"), 2, "is not for --format jobs"),
    (("--roads", ROADS, "--out", "x.csv", "--at", "2026-11-01"), 2, "is not for --format jobs"),
    (("--roads", ROADS, "--out", "x.csv", "--status", "fixed"), 2, "unknown status 'fixed'"),
])
def test_refusals(registry, tmp_path, args, code, words):  # noqa: F811
    """A bad jobs.gap_m (0, negative) exits 4 naming the setting and the file; a missing --roads, another --out,
    --crs, --since, --at, an unknown status exit 2; nothing is written."""
    args = [a.replace("x.", str(tmp_path / "x.")) if isinstance(a, str) and a.startswith("x.") else a for a in args]
    for i, a in enumerate(args):
        if isinstance(a, str) and a.startswith("GAP"):
            args[i] = gap_config(tmp_path, a[3:])
    r = patrol("export", registry["store"], "--format", "jobs", *args)
    assert r.returncode == code, f"{r.returncode}\n{r.stdout}\n{r.stderr}"
    assert words in " ".join(r.stderr.split()) and "Traceback" not in r.stderr
    assert not list(tmp_path.glob("x.*"))


def test_reports_of_a_jobs_damages(registry, tmp_path):  # noqa: F811
    """A registry holding citizen reports: each job's `reports` is the reports matched to its damages (two reports at
    two open damages, one far from every damage: in none); a registry without reports has no such column."""
    import shutil

    store = tmp_path / "registry.gpkg"
    shutil.copy(registry["store"], store)
    df, _ = jobs(store, tmp_path / "none.csv")
    assert "reports" not in df.columns
    d = damages(store).set_index("candidate_id")
    at = ["R-000001", "R-000024"]
    rep = tmp_path / "rep.csv"
    rep.write_text("id,lat,lon\n" + "".join(f"A{i},{d.loc[c, 'lat']:.7f},{d.loc[c, 'lon']:.7f}\n" for i, c in
                                            enumerate(at)) + "A9,36.60,137.20\n", encoding="utf-8")
    ok(patrol("import-reports", store, rep))
    df, _ = jobs(store, tmp_path / "jobs.csv")
    want = [sum(c in at for c in ids.split(";")) for ids in df["candidate_ids"]]
    assert df["reports"].astype(int).tolist() == want and sum(want) == 2


# ---- job ids kept from list to list (README: Repair jobs, job ids are kept)

def _set(store, monkeypatch, *changes, at=None):
    """``Store.set_status`` of each (id, status) on the clock ``at`` (default AFTER: the fixture's statuses are dated
    after the real clock), as the office's ``patrol status``."""
    from detector.config import load_config
    from detector.store import Store

    monkeypatch.setattr("detector.config.now", lambda tz=None: (at or AFTER).astimezone(tz))
    with Store.for_config(store, load_config(ROOT / "configs" / "default.yaml")) as st:
        for cid, status in changes:
            assert st.set_status(cid, status, when=(at or AFTER).date()), cid
    monkeypatch.undo()


def _end_of_a_chain(listed: pd.DataFrame, d: pd.DataFrame, skip=()) -> tuple[list[str], str]:
    """A job of 3 or more damages (none in ``skip``) and the one of them whose removal leaves the others one job
    (the oracle's groups of the open damages ``d`` without it): a chain's end."""
    for ids in listed["candidate_ids"]:
        members = ids.split(";")
        if len(members) < 3 or set(members) & set(skip):
            continue
        for c in members:
            if frozenset(members) - {c} in oracle(d[d["candidate_id"] != c].reset_index(drop=True), 50):
                return members, c
    raise AssertionError("no job of 3 damages with an end to take away")


def listed(store, out, *args) -> tuple[pd.DataFrame, str]:
    """``jobs`` in this process (typer's runner: 0.6 s a list where a process of its own takes 2 s): the list and the
    console's line on the ids (the one before the last)."""
    from typer.testing import CliRunner

    import cli

    r = CliRunner().invoke(cli.app, ["export", str(store), "--format", "jobs", "--roads", str(ROADS), "--out", str(out),
                                     *map(str, args)])
    assert r.exit_code == 0, r.output
    with open(out, encoding="utf-8-sig", newline="") as fh:
        df = pd.DataFrame(list(csv.DictReader(fh)))
    return df.rename(columns=lambda c: c.split(" ")[-1]), r.output.strip().splitlines()[-2]


def test_job_ids_are_kept_from_list_to_list(blank, tmp_path, monkeypatch):  # noqa: F811
    """The registry records the ids its lists hand out: the same registry exported again (csv, then xlsx) gives every
    job the same id and rank; a damage written off at one job's end and another repaired at another's: those jobs
    keep their ids (their rank may move), so does every other; the write-off taken back (confirmed again: a damage
    added next to its job): the job, whole again, keeps its id. The record holds each id's damages, every list's."""
    import openpyxl

    store = fresh(blank, tmp_path)
    first, line = listed(store, tmp_path / "1.csv")
    ids1 = dict(zip(first["candidate_ids"], first["job_id"]))
    assert len(ids1) == 9
    assert line == "job ids: 0 kept from earlier lists, 9 new (工区-001, 工区-002, 工区-003 …), recorded in registry.gpkg"
    again, line = listed(store, tmp_path / "2.csv")
    assert line == "job ids: 9 kept from earlier lists, 0 new, recorded in registry.gpkg", line
    assert again[["rank", "job_id", "candidate_ids"]].equals(first[["rank", "job_id", "candidate_ids"]])
    xl = tmp_path / "3.xlsx"
    ok(patrol("export", store, "--format", "jobs", "--roads", ROADS, "--out", xl))  # (a process of its own)
    ws = openpyxl.load_workbook(xl)["jobs"]
    head = [str(c.value).split("\n")[-1] for c in ws[1]]
    rows = [dict(zip(head, (c.value for c in r))) for r in ws.iter_rows(min_row=2)]
    assert {r["candidate_ids"]: r["job_id"] for r in rows} == ids1 and [r["rank"] for r in rows] == list(range(1, 10))
    rec = held(store)
    assert len(rec) == 9 and (rec["first_exported"] <= rec["last_exported"]).all()
    # one damage at a job's end written off, one at another's repaired
    d = damages(store)
    a, x = _end_of_a_chain(first, d)
    b, y = _end_of_a_chain(first, d, skip=a)
    _set(store, monkeypatch, (x, "not_an_issue"), (y, "repaired"))
    after, _ = listed(store, tmp_path / "4.csv")
    got = dict(zip(after["candidate_ids"], after["job_id"]))
    less = {";".join(c for c in ids.split(";") if c not in (x, y)): job for ids, job in ids1.items()}
    assert got == less  # every job its id: the two shorter by a damage, the others as they were
    assert after["rank"].tolist() == [str(i) for i in range(1, 10)]
    assert (np.diff(after["severity_max"].astype(float)) <= 0).all()
    # the write-off taken back: the damage is listed again, next to its job, which keeps its id
    _set(store, monkeypatch, (x, "confirmed"))
    back, _ = listed(store, tmp_path / "5.csv")
    got = dict(zip(back["candidate_ids"], back["job_id"]))
    assert got[";".join(a)] == ids1[";".join(a)]
    assert {k: v for k, v in got.items() if v != ids1[";".join(a)]} == \
        {k: v for k, v in less.items() if v != ids1[";".join(a)]}
    rec = held(store).set_index("job_id")
    assert rec.loc[ids1[";".join(b)], "candidate_ids"] == ";".join(b)  # (the repaired damage: still of its job)
    assert len(rec) == 9


def _a_cut(listing: pd.DataFrame, d: pd.DataFrame) -> tuple[str, str, list[set]]:
    """A job of ``listing`` that the repair of one of its damages cuts in two unequal parts (the oracle's groups of
    the open damages ``d`` without it): (its id, that damage, [the smaller part, the larger])."""
    for job, ids in zip(listing["job_id"], listing["candidate_ids"]):
        members = ids.split(";")
        for c in members[1:-1] if len(members) > 2 else ():
            parts = [g for g in oracle(d[d["candidate_id"] != c].reset_index(drop=True), 50) if g <= set(members)]
            if len(parts) == 2 and len(parts[0]) != len(parts[1]):
                return job, c, sorted(parts, key=len)
    raise AssertionError("a job the repair of one damage cuts in two unequal parts")


def test_an_id_is_never_given_again(blank, tmp_path, monkeypatch):  # noqa: F811
    """Every damage of the last-numbered job repaired: its id leaves the list, and the next new job (a damage the
    office had written off, confirmed after all: a job of its own) gets the number after it, not it; the repaired
    job's record stays. A job cut in two (the damage that joined it repaired): the larger part keeps the id, the
    other gets a new one."""
    store = fresh(blank, tmp_path)
    first, _ = listed(store, tmp_path / "1.csv")
    ids1 = dict(zip(first["job_id"], first["candidate_ids"]))
    last = max(ids1)
    assert last == "工区-009"
    _set(store, monkeypatch, *((c, "repaired") for c in ids1[last].split(";")))
    gone, _ = listed(store, tmp_path / "2.csv")
    assert last not in set(gone["job_id"]) and len(gone) == 8
    assert dict(zip(gone["job_id"], gone["candidate_ids"])) == {k: v for k, v in ids1.items() if k != last}
    # R-000003, written off by the fixture, alone since its neighbour R-000002 was repaired: confirmed, a new job
    assert "R-000003" not in set().union(*groups(first))
    _set(store, monkeypatch, ("R-000003", "confirmed"))
    new, line = listed(store, tmp_path / "3.csv")
    assert line == "job ids: 8 kept from earlier lists, 1 new (工区-010), recorded in registry.gpkg", line
    got = dict(zip(new["candidate_ids"], new["job_id"]))
    assert got["R-000003"] == "工区-010" and last not in got.values()
    rec = held(store).set_index("job_id")
    assert rec.loc[last, "candidate_ids"] == ids1[last] and rec.loc[last, "last_exported"] <= \
        rec.loc["工区-010", "first_exported"]
    # a job cut in two by the repair of the damage joining its parts
    job, c, (small, large) = _a_cut(new, damages(store))
    _set(store, monkeypatch, (c, "repaired"))
    split, _ = listed(store, tmp_path / "4.csv")
    got = dict(zip(split["candidate_ids"], split["job_id"]))
    assert got[";".join(sorted(large))] == job and got[";".join(sorted(small))] == "工区-011"


def test_a_districts_list_gives_the_ids_of_the_whole_list(blank, districts, tmp_path):  # noqa: F811
    """--area lists record their ids too, from the one sequence: the south's list first (ids 工区-001 …), then the
    whole city's: each of the south's jobs keeps its id there (a job of the whole list that holds it), the north's
    jobs numbered after them (no id given twice); the north's list then: the whole list's ids."""
    store = fresh(blank, tmp_path)
    south, _ = listed(store, tmp_path / "south.csv", "--area", districts["dir"] / "south.geojson")
    assert south["job_id"].tolist() == [f"工区-{i:03d}" for i in range(1, len(south) + 1)]
    whole, _ = listed(store, tmp_path / "whole.csv")
    of = {c: job for ids, job in zip(whole["candidate_ids"], whole["job_id"]) for c in ids.split(";")}
    for ids, job in zip(south["candidate_ids"], south["job_id"]):
        assert {of[c] for c in ids.split(";")} == {job}
    others = set(whole["job_id"]) - set(south["job_id"])
    assert others and min(others) > max(south["job_id"]) and whole["job_id"].is_unique
    north, _ = listed(store, tmp_path / "north.csv", "--area", districts["dir"] / "north.geojson")
    for ids, job in zip(north["candidate_ids"], north["job_id"]):
        assert {of[c] for c in ids.split(";")} == {job}
    assert len(held(store)) == len(whole)


def _cut_through_a_job(store, tmp_path) -> tuple[float, dict]:
    """A latitude cutting a job of the whole city's list (on a throw-away copy of ``store``) between two of its
    damages, and the two halves' files (south, north: boxes around every damage, WGS 84)."""
    import shutil

    import geopandas as gpd
    import shapely

    probe = tmp_path / "probe.gpkg"
    shutil.copy(store, probe)
    whole, _ = listed(probe, tmp_path / "probe.csv")
    d = damages(store).set_index("candidate_id")
    ids = max(whole["candidate_ids"].str.split(";"), key=len)
    lat = np.sort(d.loc[ids, "lat"].to_numpy(float))
    k = int(np.argmax(np.diff(lat)))  # (the widest step: no damage of the city on the cut)
    cut = float((lat[k] + lat[k + 1]) / 2)
    assert np.abs(d["lat"].to_numpy(float) - cut).min() > 1e-6
    pad = 0.01
    x0, x1 = d["lon"].min() - pad, d["lon"].max() + pad
    y0, y1 = d["lat"].min() - pad, d["lat"].max() + pad
    files = {}
    for name, box in (("south", shapely.box(x0, y0, x1, cut)), ("north", shapely.box(x0, cut, x1, y1))):
        files[name] = tmp_path / f"cut-{name}.geojson"
        gpd.GeoDataFrame({"名称": [name]}, geometry=[box], crs=4326).to_file(files[name])
    return cut, files


def test_district_lists_first_give_the_city_lists_ids(blank, tmp_path):  # noqa: F811
    """An office that makes the districts' lists before the whole city's (a stretch crossing the districts' edge: its
    part in each district): each district's part of that stretch has one id, the same in both districts' lists
    whichever came first, and the city's list then gives the stretch that id: its ids are the districts' (no number
    the districts took that the city's list skips), the record holds no other id; the districts' lists made again
    give each of their jobs the id the city's list gives its damages; a map of one district (--format html --area)
    draws its jobs with those ids too. (Before, each district numbered its part anew and the city's list kept one
    of the two: the other id was skipped, and one district's list went on giving its own id.)"""
    from typer.testing import CliRunner

    import cli
    from test_report_condition import page_data

    store = fresh(blank, tmp_path)
    cut, files = _cut_through_a_job(store, tmp_path)
    south, _ = listed(store, tmp_path / "south.csv", "--area", files["south"])
    north, _ = listed(store, tmp_path / "north.csv", "--area", files["north"])
    whole, line = listed(store, tmp_path / "whole.csv")
    assert line == f"job ids: {len(whole)} kept from earlier lists, 0 new, recorded in registry.gpkg", line
    of = {c: job for ids, job in zip(whole["candidate_ids"], whole["job_id"]) for c in ids.split(";")}
    d = damages(store).set_index("candidate_id")
    crossing = [job for ids, job in zip(whole["candidate_ids"], whole["job_id"])
                if len({bool(d.loc[c, "lat"] < cut) for c in ids.split(";")}) == 2]
    assert crossing, "no job crosses the cut"
    for part in (south, north):
        for ids, job in zip(part["candidate_ids"], part["job_id"]):
            assert {of[c] for c in ids.split(";")} == {job}, (ids, job)
    assert all(job in set(south["job_id"]) & set(north["job_id"]) for job in crossing)
    given = set(south["job_id"]) | set(north["job_id"])
    assert given == set(whole["job_id"]) and held(store)["job_id"].tolist() == sorted(given)
    assert sorted(given) == [f"工区-{i:03d}" for i in range(1, len(whole) + 1)]  # no number skipped
    for name, first in (("south", south), ("north", north)):
        again, line = listed(store, tmp_path / f"{name}-2.csv", "--area", files[name])
        assert again[["job_id", "candidate_ids"]].equals(first[["job_id", "candidate_ids"]]), name
        assert line.startswith(f"job ids: {len(first)} kept from earlier lists, 0 new"), line
    r = CliRunner().invoke(cli.app, ["export", str(store), "--format", "html", "--roads", str(ROADS), "--area",
                                     str(files["north"]), "--out", str(tmp_path / "north.html")])
    assert r.exit_code == 0, r.output
    rows = page_data(tmp_path / "north.html")["jobs"]["rows"]
    assert [x["id"] for x in rows] == north["job_id"].tolist() and not any("p" in x for x in rows)


# ---- a filled-in jobs list taken back (patrol import-verification): each row applied to every damage of its job

AFTER = datetime(2026, 12, 28, 10, 0, tzinfo=JST)  # the import's clock: after the fixture's statuses (TYPED)


def _states(store) -> dict[str, tuple]:
    con = sqlite3.connect(store)
    out = {c: (s, r, n) for c, s, r, n in con.execute("SELECT candidate_id, status, repaired_at, status_note FROM "
                                                        "candidates WHERE merged_into IS NULL")}
    con.close()
    return out


def _copy(registry, tmp_path):  # noqa: F811
    import shutil

    store = tmp_path / "registry.gpkg"
    shutil.copy(registry["store"], store)
    return store


def _import(store, path, monkeypatch, at=AFTER):
    """``Store.import_verification`` on the clock ``at`` (the fixture's statuses are dated after the real one)."""
    from detector.config import load_config
    from detector.store import Store

    monkeypatch.setattr("detector.config.now", lambda tz=None: at.astimezone(tz))
    with Store.for_config(store, load_config(ROOT / "configs" / "default.yaml")) as st:
        return st.import_verification(path)


def _read_jobs_csv(path: Path) -> tuple[list[list[str]], list[str], list[dict]]:
    """A jobs list's csv as the office's spreadsheet holds it: (its cells, row by row; its columns' English names;
    each job's row by those names)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        raw = list(csv.reader(fh))
    head = [h.split(" ")[-1] for h in raw[0]]
    return raw, head, [dict(zip(head, r)) for r in raw[1:]]


def _two_jobs(rows: list[dict]) -> tuple[dict, dict]:
    """The first two jobs of more than one damage, none of them reopened (R-000010) or merged into (R-000030)."""
    many = [r for r in rows if int(r["n_damages"]) > 1
            and not {"R-000010", "R-000030"} & set(r["candidate_ids"].split(";"))]
    return many[0], many[1]


def test_jobs_xlsx_filled_in_sets_every_damage_of_its_jobs(registry, tmp_path, monkeypatch, capsys):  # noqa: F811
    """The workbook's crew columns last (状態, 備考, 確認者, 確認日, 状態更新日時: the repair list's headings), 状態
    pre-filled where a job's damages have one status; one job written 補修予定, another 補修済み with a repair date
    (openpyxl, as the office fills it in): every damage of the first is scheduled, of the second repaired on that
    day with the note; every other damage as it was; the console says jobs and damages."""
    import openpyxl

    import cli

    store = _copy(registry, tmp_path)
    before = _states(store)
    xl = tmp_path / "jobs.xlsx"
    ok(patrol("export", store, "--format", "jobs", "--roads", ROADS, "--out", xl))
    wb = openpyxl.load_workbook(xl)
    ws = wb["jobs"]
    head = [str(c.value).split("\n")[-1] for c in ws[1]]
    assert head[-5:] == ["status", "note", "checked_by", "checked_at", "status_changed_at"]
    assert [str(c.value).split("\n")[0] for c in ws[1]][-5:] == ["状態", "備考", "確認者", "確認日", "状態更新日時"]
    rows = [dict(zip(head, (c.value for c in r))) for r in ws.iter_rows(min_row=2)]
    for r in rows:  # pre-filled: the one status of its damages, else empty; the latest change of its damages
        st = {before[c][0] for c in r["candidate_ids"].split(";")}
        assert r["status"] == (st.pop() if len(st) == 1 else None)
        assert r["status_changed_at"]
    a, b = _two_jobs(rows)
    col = {h: k for k, h in enumerate(head, 1)}
    for job, status, day, note in ((a, "補修予定", None, "発注 2026-0042"), (b, "補修済み", "2026/12/24", "舗装打換え")):
        i = rows.index(job) + 2
        ws.cell(row=i, column=col["status"], value=status)
        ws.cell(row=i, column=col["note"], value=note)
        ws.cell(row=i, column=col["checked_by"], value="道路維持課")
        ws.cell(row=i, column=col["checked_at"], value=day)
    wb.save(xl)
    monkeypatch.setattr("detector.config.now", lambda tz=None: AFTER.astimezone(tz))
    cli.import_verification(store, xl, undo=False, note=None, who=None, config=None)
    out = " ".join(capsys.readouterr().out.split())
    after = _states(store)
    ids_a, ids_b = a["candidate_ids"].split(";"), b["candidate_ids"].split(";")
    assert all(after[c][:1] == ("scheduled",) and after[c][2] == "発注 2026-0042" for c in ids_a)
    assert all(after[c][0] == "repaired" and str(after[c][1]).startswith("2026-12-24") and after[c][2] == "舗装打換え"
               for c in ids_b)
    assert {c: v for c, v in after.items() if c not in ids_a + ids_b} == \
        {c: v for c, v in before.items() if c not in ids_a + ids_b}
    n = len(ids_a) + len(ids_b)
    assert f"jobs list: 2 of {len(rows)} jobs applied, to {n} damages" in out, out
    assert f"applied {n}," in out
    con = sqlite3.connect(store)
    who = {w for (w,) in con.execute("SELECT who FROM status_history WHERE source='import:jobs.xlsx'")}
    con.close()
    assert who == {"道路維持課"}
    # each damage's history row names the job, as `patrol status STORE 工区-003 --set …` writes it (工区-003: note);
    # the damage's own note (the lists' 備考) is the crew's as written (above)
    hist = _history(store, ids_a + ids_b)
    for ids, job, st, note in ((ids_a, a, "scheduled", "発注 2026-0042"), (ids_b, b, "repaired", "舗装打換え")):
        for c in ids:
            rows_c = [h for h in hist[c] if h[4] == "import:jobs.xlsx"]
            assert [(h[1], h[3]) for h in rows_c] == [(st, f"{job['job_id']}: {note}")], (c, hist[c])


def test_jobs_xlsx_dates_are_date_cells_and_its_map_a_link(registry, tmp_path, monkeypatch):  # noqa: F811
    """The workbook wrote 最古発見日時 and 状態更新日時 as ISO text with an offset ('2026-11-20T09:01:40+09:00', a
    General cell: no date to sort or filter by) and 地図 as the bare address, a text cell Excel does not open (the
    walk-through); the repair list's workbook has date cells on the municipality's clock and a '地図 / map' link. Now
    the jobs workbook has them too (the csv keeps the ISO text), and the untouched workbook still imports as all
    unchanged: its status_changed_at date cells read back as the export's times (the stale-list check)."""
    import openpyxl

    store = _copy(registry, tmp_path)
    xl, cv = tmp_path / "jobs.xlsx", tmp_path / "jobs.csv"
    ok(patrol("export", store, "--format", "jobs", "--roads", ROADS, "--out", xl))
    ok(patrol("export", store, "--format", "jobs", "--roads", ROADS, "--out", cv))
    _, _, rows = _read_jobs_csv(cv)
    ws = openpyxl.load_workbook(xl)["jobs"]
    head = [str(c.value).split("\n")[-1] for c in ws[1]]
    cells = [dict(zip(head, r)) for r in ws.iter_rows(min_row=2)]
    assert [c["job_id"].value for c in cells] == [r["job_id"] for r in rows]
    for c, r in zip(cells, rows):
        for name in ("first_seen", "status_changed_at"):
            want = datetime.fromisoformat(r[name]).astimezone(JST).replace(tzinfo=None)
            assert c[name].value == want and c[name].is_date, (name, c[name].value, r[name])
        assert r["map"].startswith("https://maps.gsi.go.jp/#18/")
        assert c["map"].value == "地図 / map" and c["map"].hyperlink.target == r["map"], r["job_id"]
    rep = _import(store, xl, monkeypatch)
    assert rep.what == "jobs list" and not rep.applied and not rep.held and not rep.outdated and not rep.unmatched
    assert sorted(rep.unchanged) == sorted(c for r in rows if r["status"] for c in r["candidate_ids"].split(";"))


def test_jobs_csv_round_trip_and_again(registry, tmp_path, monkeypatch):  # noqa: F811
    """The csv (its ``ja en`` headings, UTF-8 with BOM) filled in with the csv module: a job's damages scheduled, each
    change numbered as the job's row, the other jobs (their status pre-filled) unchanged; the same list imported again
    changes nothing; the same list then written 補修済み with a later repair date: every damage of the job repaired."""
    store = _copy(registry, tmp_path)
    path = tmp_path / "jobs.csv"
    ok(patrol("export", store, "--format", "jobs", "--roads", ROADS, "--out", path))
    raw, head, rows = _read_jobs_csv(path)
    assert raw[0][-5:] == ["状態 status", "備考 note", "確認者 checked_by", "確認日 checked_at",
                           "状態更新日時 status_changed_at"]
    a, _ = _two_jobs(rows)
    k = rows.index(a) + 1
    raw[k][head.index("status")] = "scheduled"
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(raw)
    rep = _import(store, path, monkeypatch)
    ids = a["candidate_ids"].split(";")
    assert rep.what == "jobs list" and rep.jobs[k + 1] == ids
    assert sorted(rep.applied) == sorted(ids) and {line for line, *_ in rep.changes} == {k + 1}
    assert not rep.unmatched and not rep.held
    assert all(_states(store)[c][0] == "scheduled" for c in ids)
    was = _states(store)
    again = _import(store, path, monkeypatch)  # (the other jobs' pre-filled status: unchanged, as the first time)
    assert not again.applied and set(ids) <= set(again.unchanged) and not again.held and not again.unmatched
    assert _states(store) == was
    # the contractor's report on the same list (exported before the import that scheduled them): repaired on a day
    # after that import, newer information: every damage of the job repaired on that day
    raw[k][head.index("status")] = "補修済み"
    raw[k][head.index("checked_at")] = "2026/12/30"
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(raw)
    done = _import(store, path, monkeypatch, at=datetime(2027, 1, 4, 9, 0, tzinfo=JST))
    assert sorted(done.applied) == sorted(ids) and [line for line, _ in done.newer] == [k + 1] * len(ids)
    assert all(_states(store)[c][0] == "repaired" and _states(store)[c][1].startswith("2026-12-30") for c in ids)


def test_stale_job_row_held_merged_and_unknown_ids_reported(registry, tmp_path, monkeypatch):  # noqa: F811
    """A damage the office changed after the jobs list was exported: that damage of the job is held (the stale-list
    rule, by the job's status_changed_at: the latest of its damages'), its other damages applied; in another job a
    damage merged into another is taken as that one's row and an unknown id is refused, both named by id, the rest
    of that job applied."""
    from detector.config import load_config
    from detector.store import Store

    store = _copy(registry, tmp_path)
    path = tmp_path / "jobs.csv"
    ok(patrol("export", store, "--format", "jobs", "--roads", ROADS, "--out", path))
    raw, head, rows = _read_jobs_csv(path)
    a, b = _two_jobs(rows)
    ka, kb = rows.index(a) + 1, rows.index(b) + 1
    ids_a, ids_b = a["candidate_ids"].split(";"), b["candidate_ids"].split(";")
    changed = ids_a[0]
    before = _states(store)
    assert before[changed][0] == "new"
    monkeypatch.setattr("detector.config.now", lambda tz=None: datetime(2026, 12, 26, 9, 0, tzinfo=JST).astimezone(tz))
    with Store.for_config(store, load_config(ROOT / "configs" / "default.yaml")) as st:  # the office, after the export
        st.set_status(changed, "not_an_issue", note="manhole")
    raw[ka][head.index("status")] = "補修予定"
    raw[kb][head.index("status")] = "scheduled"
    raw[kb][head.index("candidate_ids")] += ";R-000031;R-009999"
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(raw)
    rep = _import(store, path, monkeypatch)
    after = _states(store)
    assert after[changed][0] == "not_an_issue"
    assert [line for line, _ in rep.held] == [ka + 1] and changed in rep.held[0][1]
    assert rep.at(ka + 1) == f"row {ka + 1} ({a['job_id']})"
    assert all(after[c][0] == "scheduled" for c in ids_a[1:] + ids_b + ["R-000030"])
    assert [(line, why) for line, why in rep.unmatched] == [(kb + 1, "unknown candidate id 'R-009999'")]
    assert len(rep.merged) == 1 and rep.merged[0][0] == kb + 1 and "R-000031" in rep.merged[0][1]
    assert sorted(rep.applied) == sorted(ids_a[1:] + ids_b + ["R-000030"])


def _cli(capsys, *args) -> tuple[int, str, str]:
    """``patrol ARGS`` in this process (the clock a test pinned): (exit code, stdout, stderr), each line's runs of white
    space as one."""
    import cli

    try:
        cli.main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code
    got = capsys.readouterr()
    return code, "\n".join(" ".join(ln.split()) for ln in got.out.splitlines()), \
        "\n".join(" ".join(ln.split()) for ln in got.err.splitlines())


def test_a_jobs_list_import_undone(registry, tmp_path, monkeypatch, capsys):  # noqa: F811
    """`patrol import-verification REGISTRY 補修工区.csv --undo`: a jobs list imported (one job 補修予定, another 補修済み
    with its repair date), then a damage of the first job set by the office (`patrol status`); the undo gives every
    other damage of both jobs its status, repair date and note back, leaves that one as the office set it and names
    it, and ends with its one-line summary (exit 0). Then: a second undo has nothing to undo, a file never imported
    is named with the files imported, --note without --undo is refused: exit 2, the registry unchanged. Real data:
    the sample registry of test_stats, its jobs list through `patrol export --format jobs`."""
    from detector.config import load_config
    from detector.store import Store

    store = _copy(registry, tmp_path)
    path = tmp_path / "補修工区.csv"
    listed(store, path)
    raw, head, rows = _read_jobs_csv(path)
    a, b = _two_jobs(rows)
    ka, kb = rows.index(a) + 1, rows.index(b) + 1
    raw[ka][head.index("status")], raw[ka][head.index("note")] = "補修予定", "発注 2026-0042"
    raw[kb][head.index("status")], raw[kb][head.index("checked_at")] = "補修済み", "2026/12/24"
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(raw)
    ids_a, ids_b = a["candidate_ids"].split(";"), b["candidate_ids"].split(";")
    con = sqlite3.connect(store)
    full = lambda: {r[0]: r[1:] for r in con.execute(  # noqa: E731
        "SELECT candidate_id, status, status_note, status_changed_at, repaired_at, repaired_t, checked_by, issue_type "
        "FROM candidates")}
    before, n_hist = full(), con.execute("SELECT COUNT(*) FROM status_history").fetchone()[0]
    monkeypatch.setattr("detector.config.now", lambda tz=None: AFTER.astimezone(tz))
    code, out, _ = _cli(capsys, "import-verification", store, path)
    assert code == 0 and f"applied {len(ids_a) + len(ids_b)}," in out, out
    assert all(full()[c][0] == "scheduled" for c in ids_a) and all(full()[c][0] == "repaired" for c in ids_b)
    office = ids_a[0]
    monkeypatch.setattr("detector.config.now", lambda tz=None: datetime(2026, 12, 29, 9, 0, tzinfo=JST).astimezone(tz))
    with Store.for_config(store, load_config(ROOT / "configs" / "default.yaml")) as st:
        st.set_status(office, "not_an_issue", note="manhole", who="office")
    set_by_office = full()[office]
    monkeypatch.setattr("detector.config.now", lambda tz=None: datetime(2026, 12, 30, 8, 0, tzinfo=JST).astimezone(tz))
    code, out, err = _cli(capsys, "import-verification", store, path, "--undo", "--who", "道路維持課")
    n = len(ids_a) + len(ids_b) - 1
    assert code == 0, err
    assert out.splitlines()[-1] == (f"import of 補修工区.csv (2026-12-28 10:00) undone: {n} damages back, 1 left as "
                                    f"changed since ({office} by patrol status)")
    assert f"scheduled -> new (新規): {len(ids_a) - 1} (" in out and f"repaired -> new (新規): {len(ids_b)} (" in out
    assert err.startswith(f"{office}: left as it is: changed since the import of 補修工区.csv: scheduled -> "
                          "not_an_issue (対象外) 2026-12-29 09:00 by patrol status (office, 'manhole')"), err
    assert full() == {**before, office: set_by_office}
    who = con.execute("SELECT DISTINCT who, source FROM status_history WHERE hid > ? AND to_status = 'new'",
                      (n_hist,)).fetchall()
    assert who == [("道路維持課", "unimport:補修工区.csv")]
    con.close()
    was = store.read_bytes()
    for args, words in (((path, "--undo"), "error: {s}: the import of 補修工区.csv (2026-12-28 10:00) was undone on "
                                           "2026-12-30 08:00: nothing to undo (import the file again to apply it anew)"),
                        (("補修工区-北部.csv", "--undo"), "error: {s}: 補修工区-北部.csv was never imported into this "
                                                      "registry: nothing to undo (the files imported, latest first: "
                                                      "補修工区.csv (2026-12-28 10:00))"),
                        ((path, "--note", "x"), "error: patrol import-verification: --note and --who go with --undo")):
        code, out, err = _cli(capsys, "import-verification", store, *args)
        assert code == 2 and err.startswith(words.format(s=store)), err
    assert store.read_bytes() == was


def test_status_of_several_ids(registry, tmp_path):  # noqa: F811
    """`patrol status REGISTRY ID ID … --set S`: each set in turn (a jobs list's `candidate_ids` pasted as one, `;`
    between them; an id given twice once); an unknown id and a transition not allowed are named, the others set,
    exit 2."""
    store = _copy(registry, tmp_path)
    before = _states(store)
    assert [before[c][0] for c in ("R-000024", "R-000025", "R-000002")] == ["new", "new", "repaired"]
    r = patrol("status", store, "R-000024;r-000025", "R-000024", "R-009999", "R-000002", "--set", "補修予定",
               "--note", "工区-001")
    assert r.returncode == 2, f"{r.returncode}\n{r.stdout}\n{r.stderr}"
    out, err = " ".join(r.stdout.split()), " ".join(r.stderr.split())
    assert "R-000024: new -> scheduled" in out and "R-000025: new -> scheduled" in out
    assert "2 of 4 damages set to 補修予定; not set: R-009999, R-000002" in out, out
    assert "unknown candidate id 'R-009999'" in err and "R-000002: transition repaired -> scheduled not allowed" in err
    after = _states(store)
    assert after["R-000024"][::2] == ("scheduled", "工区-001") and after["R-000025"][0] == "scheduled"
    assert {c: v for c, v in after.items() if c not in ("R-000024", "R-000025")} == \
        {c: v for c, v in before.items() if c not in ("R-000024", "R-000025")}
    r = patrol("status", store, "R-000024", "R-000025", "--set", "fixed")  # the command's mistake: none set
    assert r.returncode == 2 and "unknown status 'fixed'" in r.stderr and _states(store) == after


# ---- a damage's job on its lists, and `patrol status 工区-003` (README: Repair jobs, a damage's job)

def _export(store, fmt, out, *args):
    """``patrol export STORE --format fmt`` in this process (typer's runner)."""
    from typer.testing import CliRunner

    import cli

    r = CliRunner().invoke(cli.app, ["export", str(store), "--format", fmt, "--out", str(out), *map(str, args)])
    assert r.exit_code == 0, r.output
    return out


def _csv_rows(path) -> tuple[list[str], list[dict]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rd = csv.reader(fh)
        head = next(rd)
        return head, [dict(zip(head, r)) for r in rd]


def test_a_damages_job_id_on_its_lists(blank, districts, tmp_path):  # noqa: F811
    """A registry no jobs list was exported from: its repair list, GeoJSON, Shapefile and photo ledger have no job_id
    (as before). After the whole city's jobs list and then the south district's: each open damage's job_id on the
    csv list is the job of the latest list naming it (the south's for its damages, the whole list's for the others),
    each closed one's empty; the column follows reported_first; the GeoJSON, Shapefile, xlsx, photo ledger and map
    data say the same; the exports leave the registry byte for byte."""
    import geopandas as gpd
    import openpyxl

    from detector.report import LIST_COLUMNS
    from test_report_condition import page_data

    store = fresh(blank, tmp_path)
    head, _ = _csv_rows(_export(store, "csv", tmp_path / "none.csv"))
    assert head == [c for c, *_ in LIST_COLUMNS]  # exactly as before
    gj = json.loads(_export(store, "geojson", tmp_path / "none.geojson").read_text(encoding="utf-8"))
    assert "job_id" not in gj["features"][0]["properties"]
    assert "job_id" not in gpd.read_file(_export(store, "shp", tmp_path / "none.shp")).columns
    led = openpyxl.load_workbook(_export(store, "ledger", tmp_path / "none-ledger.xlsx"))["ledger"]
    assert not any("工区" in str(c.value) for c in led["C"])
    whole, _ = listed(store, tmp_path / "whole.csv")
    south, _ = listed(store, tmp_path / "south.csv", "--area", districts["dir"] / "south.geojson")
    want = {c: job for frame in (whole, south) for ids, job in zip(frame["candidate_ids"], frame["job_id"])
            for c in ids.split(";")}  # the latest list naming each damage: the south's where it names it
    assert 0 < len(set().union(*groups(south))) < len(want) == 26
    before = store.read_bytes()
    head, rows = _csv_rows(_export(store, "csv", tmp_path / "list.csv"))
    at = head.index("reported_first") + 1
    assert head[at:at + 2] == ["job_id", "area_first_m2"]  # the job before grown since first seen (悪化)
    d = damages(store, OPEN + ("repaired", "not_an_issue"))
    status = dict(zip(d["candidate_id"], d["status"]))
    assert len(rows) == 30  # (the merged R-000031 is not listed)
    for r in rows:
        assert r["job_id"] == (want[r["candidate_id"]] if status[r["candidate_id"]] in OPEN else ""), r
    got = {r["candidate_id"]: r["job_id"] for r in rows}
    assert sum(1 for v in got.values() if v) == 26
    gj = json.loads(_export(store, "geojson", tmp_path / "list.geojson").read_text(encoding="utf-8"))
    assert {f["id"]: f["properties"]["job_id"] or "" for f in gj["features"]} == got
    props = list(gj["features"][0]["properties"])
    at = props.index("reported_first") + 1
    assert props[at:at + 2] == ["job_id", "area_first_m2"], props
    shp = gpd.read_file(_export(store, "shp", tmp_path / "list.shp"))
    assert dict(zip(shp["cand_id"], shp["job_id"].fillna(""))) == got
    fields = list(shp.columns)  # the lists' order: the job after reported1, the growth fields after it (not last)
    at = fields.index("reported1") + 1
    assert fields[at:at + 5] == ["job_id", "area1_m2", "area2_m2", "growth", "grown"], fields
    ws = openpyxl.load_workbook(_export(store, "xlsx", tmp_path / "list.xlsx"))["candidates"]
    heads = [str(c.value).split("\n")[0] for c in ws[1]]
    k, i = heads.index("工区"), heads.index("候補ID")
    assert {r[i]: r[k] or "" for r in ws.iter_rows(min_row=2, values_only=True)} == got
    led = openpyxl.load_workbook(_export(store, "ledger", tmp_path / "ledger.xlsx"))["ledger"]
    cells = [(c.value, led.cell(row=c.row, column=4).value) for c in led["C"]]
    ids = [v for lab, v in cells if lab == "ID id"]
    assert [v or "" for lab, v in cells if lab == "工区 job id"] == [got[c] for c in ids] and len(ids) == 30
    cands = page_data(_export(store, "html", tmp_path / "map.html"))["candidates"]
    assert {c["candidate_id"]: c.get("job_id") or "" for c in cands} == got
    assert store.read_bytes() == before  # the lists read the record, write nothing
    # ids recorded before each damage's job was (job_ids alone): read from job_ids, the same here
    import shutil

    older = tmp_path / "older.gpkg"
    shutil.copy(store, older)
    con = sqlite3.connect(older)
    con.execute("DROP TABLE job_damages")
    con.execute("DELETE FROM gpkg_contents WHERE table_name='job_damages'")
    con.commit()
    con.close()
    _, rows = _csv_rows(_export(older, "csv", tmp_path / "older.csv"))
    assert {r["candidate_id"]: r["job_id"] for r in rows} == got


def _status(store, monkeypatch, capsys, *ids, set_=None, who=None, at=None, note=None):
    """``patrol status STORE ID … [--set S --note N --who W --at DATE]`` in this process on the clock AFTER: (exit
    code, the console's lines, its error lines)."""
    import cli
    from detector.errors import PatrolError

    monkeypatch.setattr("detector.config.now", lambda tz=None: AFTER.astimezone(tz))
    code = 0
    try:
        cli.status(store, list(ids), set_, note, who, at, None)
    except PatrolError as e:
        code = e.exit_code
        print(f"error: {e}", file=__import__("sys").stderr)
    monkeypatch.undo()
    out, err = capsys.readouterr()
    return code, out.splitlines(), " ".join(err.split())


def test_status_of_a_repair_job(blank, tmp_path, monkeypatch, capsys):  # noqa: F811
    """`patrol status STORE 工区-00N`: the job's damages as the jobs list gave them, each with its status, and when it
    was listed; `--set scheduled` twice (the second: none set, each scheduled already); `--set repaired --at … --who …`: every open one repaired on that day by that checker (the others, and
    the other jobs' damages, as they were); again: each skipped as already repaired, nothing changed, exit 0; --set
    scheduled then: none open, refused (exit 2); an unknown id (工区-099, 工区99 too): exit 2 naming the nearest
    ids; a job id with a damage id: exit 2."""
    store = fresh(blank, tmp_path)
    first, _ = listed(store, tmp_path / "1.csv")
    row = next(r for _, r in first.iterrows() if int(r["n_damages"]) > 2 and "R-000010" not in r["candidate_ids"])
    job, ids = row["job_id"], row["candidate_ids"].split(";")
    code, out, err = _status(store, monkeypatch, capsys, job.replace("-00", ""))  # 工区3 is 工区-003
    assert code == 0, err
    assert out[0].startswith(f"{job}: {len(ids)} damages ({len(ids)} open) by the latest jobs list naming each; "
                             "first listed ") and ", last listed " in out[0]
    assert [ln.split()[0] for ln in out[1:]] == ids and all("new (新規)" in ln for ln in out[1:])
    # scheduled, then scheduled again: the second sets none (it said "N of N set" though each was unchanged)
    code, out, err = _status(store, monkeypatch, capsys, job, set_="scheduled")
    assert code == 0 and out[-1] == f"{job}: {len(ids)} of {len(ids)} open damages set to scheduled", (out, err)
    code, out, err = _status(store, monkeypatch, capsys, job, set_="scheduled")
    assert code == 0 and out[-1] == (f"{job}: 0 of {len(ids)} open damages set to scheduled ({len(ids)} were "
                                     "scheduled already)"), (out, err)
    assert all(ln == f"{c}: already scheduled (補修予定), status unchanged" for c, ln in zip(ids, out[1:-1])), out
    before = _states(store)
    code, out, err = _status(store, monkeypatch, capsys, job, set_="repaired", who="道路維持課", at="2026/12/24")
    assert code == 0, err
    assert out[-1] == f"{job}: {len(ids)} of {len(ids)} open damages set to repaired", out
    after = _states(store)
    assert all(after[c][0] == "repaired" and after[c][1].startswith("2026-12-24") for c in ids)
    assert {c: v for c, v in after.items() if c not in ids} == {c: v for c, v in before.items() if c not in ids}
    con = sqlite3.connect(store)
    who = {w for (w,) in con.execute("SELECT who FROM status_history WHERE to_status='repaired' AND candidate_id IN "
                                     f"({','.join('?' * len(ids))})", ids)}
    con.close()
    assert who == {"道路維持課"}
    code, out, err = _status(store, monkeypatch, capsys, job, set_="補修済み", at="2026/12/25")
    assert code == 0 and _states(store) == after, err
    assert [ln for ln in out[1:-1]] == [f"{c}: already repaired (補修済み), not open: skipped" for c in ids], out
    assert out[-1] == f"{job}: no open damage to set to 補修済み; skipped (not open): {', '.join(ids)}"
    code, out, err = _status(store, monkeypatch, capsys, job, set_="scheduled")
    assert code == 2 and _states(store) == after
    assert f"{job}: none of its {len(ids)} damages is open: none set to scheduled" in err, err
    code, out, _ = _status(store, monkeypatch, capsys, job)  # shown: repaired, with its day
    assert all(ln.split()[1:4] == ["repaired", "(補修済み),", "repaired"] and "2026-12-24" in ln for ln in out[1:])
    for unknown in ("工区-099", "工区99"):
        code, _, err = _status(store, monkeypatch, capsys, unknown)
        assert code == 2 and "工区-099: no such repair job in the registry; nearest: 工区-007, 工区-008, 工区-009" in err
    code, _, err = _status(store, monkeypatch, capsys, job, "R-000001", set_="scheduled")
    assert code == 2 and "not both" in err and _states(store) == after


def test_a_damage_moved_to_another_job_is_of_that_one(blank, tmp_path, monkeypatch, capsys):  # noqa: F811
    """A job cut in two by a repair (the second list: its larger part keeps the id, the smaller gets a new one), then
    a list of the scheduled damages (--status scheduled, an hour later) naming the larger part alone under the old
    id: the smaller part's damages are the new job's on the repair list and in `patrol status` (the latest list
    naming them), though the old job's record holds them and was listed later; `patrol status` of the old job lists
    its larger part and the repaired damage, and says where the smaller part went."""
    store = fresh(blank, tmp_path)

    def at(hour):  # each list on a clock of its own (the record's times a second apart would do)
        monkeypatch.setattr("detector.config.now", lambda tz=None: AFTER.replace(hour=hour).astimezone(tz))

    at(11)
    first, _ = listed(store, tmp_path / "1.csv")
    job, c, (small, large) = _a_cut(first, damages(store))
    _set(store, monkeypatch, (c, "repaired"))
    at(12)
    split, _ = listed(store, tmp_path / "2.csv")
    got = dict(zip(split["candidate_ids"], split["job_id"]))
    new = got[";".join(sorted(small))]
    assert got[";".join(sorted(large))] == job and new != job
    _set(store, monkeypatch, *((x, "scheduled") for x in large))
    at(13)
    sched, _ = listed(store, tmp_path / "3.csv", "--status", "scheduled")
    assert dict(zip(sched["candidate_ids"], sched["job_id"])) == {";".join(sorted(large)): job}
    rec = held(store).set_index("job_id")
    assert set(small) <= set(rec.loc[job, "candidate_ids"].split(";"))  # (the matching's record: every list's)
    assert rec.loc[job, "last_exported"] > rec.loc[new, "last_exported"]
    monkeypatch.undo()
    _, rows = _csv_rows(_export(store, "csv", tmp_path / "list.csv"))
    of = {r["candidate_id"]: r["job_id"] for r in rows}
    assert {of[x] for x in small} == {new} and {of[x] for x in large} == {job} and of[c] == ""
    code, out, err = _status(store, monkeypatch, capsys, job)
    assert code == 0, err
    assert sorted(ln.split()[0] for ln in out[1:-1]) == sorted(large | {c})
    assert out[-1] == "  earlier lists gave it also: " + ", ".join(f"{x} (now {new})" for x in sorted(small))
    code, out, _ = _status(store, monkeypatch, capsys, new)
    assert [ln.split()[0] for ln in out[1:]] == sorted(small)


def _history(store, ids) -> dict[str, list[tuple]]:
    """Each damage's history rows (from, to, who, note, source) in the order recorded."""
    con = sqlite3.connect(store)
    out: dict[str, list[tuple]] = {c: [] for c in ids}
    for c, *row in con.execute("SELECT candidate_id, from_status, to_status, who, note, source FROM status_history "
                               f"WHERE candidate_id IN ({','.join('?' * len(ids))}) ORDER BY hid", list(ids)):
        out[c].append(tuple(row))
    con.close()
    return out


def test_a_jobs_change_names_the_job_in_each_damages_history(blank, tmp_path, monkeypatch, capsys):  # noqa: F811
    """`patrol status STORE 工区-00N --set S`: each damage's history row of the change says the job (its note:
    ``工区-00N`` without --note, ``工区-00N: <note>`` with one), and `patrol status STORE R-…` shows it; the damage's
    own note (the lists' 備考) is the --note as given, or the one it had (a crew's note is not replaced by the job's
    id); a damage set by its own id: its history says no job."""
    store = fresh(blank, tmp_path)
    first, _ = listed(store, tmp_path / "1.csv")
    row = next(r for _, r in first.iterrows() if int(r["n_damages"]) > 2)
    job, ids = row["job_id"], row["candidate_ids"].split(";")
    other = next(c for c in first["candidate_ids"].str.split(";").sum() if c not in ids)
    crew = ids[0]  # a crew's note on one of them before
    code, _, err = _status(store, monkeypatch, capsys, crew, set_="confirmed", note="深さ5cm")
    assert code == 0, err
    code, out, err = _status(store, monkeypatch, capsys, job, set_="scheduled", note="舗装業者A")
    assert code == 0 and out[-1] == f"{job}: {len(ids)} of {len(ids)} open damages set to scheduled", (out, err)
    code, out, err = _status(store, monkeypatch, capsys, job, set_="repaired", who="道路維持課", at="2026/12/24")
    assert code == 0 and out[-1] == f"{job}: {len(ids)} of {len(ids)} open damages set to repaired", (out, err)
    code, _, err = _status(store, monkeypatch, capsys, other, set_="scheduled", note="単独")
    assert code == 0, err
    hist = _history(store, [*ids, other])
    for c in ids:
        moves = [h for h in hist[c] if h[0] is not None]
        assert moves[-2:] == [(moves[-2][0], "scheduled", None, f"{job}: 舗装業者A", "manual"),
                              ("scheduled", "repaired", "道路維持課", job, "manual")], (c, hist[c])
    assert hist[crew][1] == ("new", "confirmed", None, "深さ5cm", "manual")
    assert hist[other][-1] == ("new", "scheduled", None, "単独", "manual")
    notes = {c: n for c, (_, _, n) in _states(store).items()}
    assert {notes[c] for c in ids} == {"舗装業者A"} and notes[other] == "単独"  # (the lists' 備考: the --note)
    code, out, err = _status(store, monkeypatch, capsys, ids[1])
    assert code == 0 and out[0] == f"{ids[1]}: repaired (補修済み) (舗装業者A)", out
    assert any(ln.endswith(f"scheduled -> repaired  by 道路維持課  '{job}'  [manual]") for ln in out), out
    assert any(ln.endswith(f"-> scheduled  '{job}: 舗装業者A'  [manual]") for ln in out), out


def test_a_status_typed_full_width_is_taken(registry, tmp_path, monkeypatch, capsys):  # noqa: F811
    """A status typed with the Japanese IME on — ｃｏｎｆｉｒｍｅｄ, ＣＯＮＦＩＲＭＥＤ, a trailing full-width space — was
    refused by `patrol status --set`, an export's --status and the crew's list (`unknown status`, `invalid status`),
    though full-width digits in its dates were taken. NFKC-folded, each is the status; 確認済み still is."""
    store = _copy(registry, tmp_path)
    new = sorted(c for c, v in _states(store).items() if v[0] == "new")
    monkeypatch.setattr("detector.config.now", lambda tz=None: AFTER.astimezone(tz))
    code, out, err = _cli(capsys, "status", store, new[0], "--set", "ｃｏｎｆｉｒｍｅｄ")
    assert code == 0 and _states(store)[new[0]][0] == "confirmed", (out, err)
    _, rows = _csv_rows(_export(store, "csv", tmp_path / "c.csv", "--status", "ＣＯＮＦＩＲＭＥＤ\u3000"))
    assert [r["candidate_id"] for r in rows if r["candidate_id"] == new[0]] == [new[0]]
    assert {r["status"] for r in rows} == {"confirmed"}
    _, both = _csv_rows(_export(store, "csv", tmp_path / "o.csv", "--status", "ｏｐｅｎ，新規"))
    assert len(both) == sum(v[0] in OPEN for v in _states(store).values())
    path = tmp_path / "list.csv"
    _export(store, "csv", path, "--status", "new")
    head, rows = _csv_rows(path)
    col = next(h for h in head if h.split(" ")[-1] == "status" or h == "status")
    by = {r["candidate_id"]: r for r in rows}
    by[new[1]][col], by[new[2]][col] = "ｓｃｈｅｄｕｌｅｄ\u3000", "確認済み"
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=head)
        w.writeheader()
        w.writerows(rows)
    code, out, err = _cli(capsys, "import-verification", store, path)
    assert code == 0 and "applied 2" in out, (out, err)
    assert [_states(store)[c][0] for c in new[1:3]] == ["scheduled", "confirmed"]


def test_an_untouched_jobs_list_accounts_for_every_damage(registry, tmp_path, monkeypatch, capsys):  # noqa: F811
    """A jobs list imported as exported said `(of 19 in the list)` and then `unchanged 7`: the damages of the jobs
    whose 状態 the export leaves blank (their damages' statuses differ) were counted nowhere. Now the summary names
    them (`left blank 12 …`) and its counts add up to the damages in the list; none of them changed."""
    import re

    store = _copy(registry, tmp_path)
    path = tmp_path / "補修工区.csv"
    ok(patrol("export", store, "--format", "jobs", "--roads", ROADS, "--out", path))
    _, _, rows = _read_jobs_csv(path)
    before = _states(store)
    blank = [r for r in rows if not r["status"]]
    mixed = sum(len(r["candidate_ids"].split(";")) for r in blank)
    assert blank and all(len({before[c][0] for c in r["candidate_ids"].split(";")}) > 1 for r in blank)
    monkeypatch.setattr("detector.config.now", lambda tz=None: AFTER.astimezone(tz))
    code, out, err = _cli(capsys, "import-verification", store, path)
    assert code == 0, (out, err)
    total = int(re.search(r"\(of (\d+) in the list\)", out).group(1))
    assert total == sum(len(r["candidate_ids"].split(";")) for r in rows)
    line = next(ln for ln in out.splitlines() if ln.startswith("applied "))
    counts = dict((k.strip(), int(v)) for v, k in ((m.group(2), m.group(1)) for m in
                                                   re.finditer(r"([a-z ]+?) (\d+)", line.split(" (")[0])))
    assert counts["left blank"] == mixed and counts["unchanged"] == total - mixed, line
    assert sum(counts.values()) == total, line
    assert f"in {plural_jobs(len(blank))} of mixed status" in line, line
    assert _states(store) == before


def plural_jobs(n: int) -> str:
    return f"{n} job" + ("s" if n != 1 else "")


def test_a_crews_repair_date_on_a_damage_repaired_already_is_named(registry, tmp_path, monkeypatch, capsys):  # noqa: F811
    """The office marked a damage repaired on 12/27 (`patrol status --at`) after the crew's list was exported; the
    crew's list came back with 補修済み and 補修日 12/26 on it. The row counted as "notes" and the office's 12/27
    stayed, with no word that the crew's date was not taken. Now one line names the damage and both dates, the
    registry's kept; the damage's repair date is unchanged. The same with the crew's day in 確認日 only."""
    from detector.config import load_config
    from detector.store import Store

    store = _copy(registry, tmp_path)
    path = tmp_path / "list.csv"
    _export(store, "csv", path, "--status", "new")
    head, rows = _csv_rows(path)
    name = {h.split(" ")[-1]: h for h in head}
    by = {r[name["candidate_id"]]: r for r in rows}
    a, b = sorted(by)[:2]
    office = datetime(2026, 12, 27, 15, 0, tzinfo=JST)
    monkeypatch.setattr("detector.config.now", lambda tz=None: office.astimezone(tz))
    with Store.for_config(store, load_config(ROOT / "configs" / "default.yaml")) as st:
        for cid in (a, b):
            assert st.set_status(cid, "repaired", who="道路維持課", when=office.date())
    stored = {c: _states(store)[c][1] for c in (a, b)}
    by[a][name["status"]], by[a][name["repaired_at"]], by[a][name["checked_by"]] = "補修済み", "2026/12/26", "山田"
    by[b][name["status"]], by[b][name["checked_at"]] = "補修済み", "2026/12/25"
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=head)
        w.writeheader()
        w.writerows(rows)
    code, out, err = _cli(capsys, "import-verification", store, path)
    assert code == 0, (out, err)
    lines = sorted((ln for ln in out.splitlines() if "not taken" in ln), key=lambda ln: ln.split(": ")[2])
    assert len(lines) == 2, (out, err)
    assert f"{a}: the crew's repair date 2026/12/26 (補修日 repaired_at) not taken: the registry has it repaired on " \
           "2026-12-27 already" in lines[0] and "by patrol status" in lines[0] and "2026-12-27 kept" in lines[0], lines
    assert f"{b}: the crew's repair date 2026/12/25 (確認日 checked_at) not taken" in lines[1], lines
    assert {c: _states(store)[c][1] for c in (a, b)} == stored and all(v.startswith("2026-12-27") for v in stored.values())


def test_readme_weekly_step_2_lists_every_open_damage(registry, tmp_path):  # noqa: F811
    """README's weekly workflow, step 2 (the crew's list), exported its `--status` as written on the sample registry:
    every open damage is on the crew's list, the reopened one (再発, R-000010: seen after its repair) and the
    scheduled ones too. It said `--status new,confirmed`: a reopened damage was on no crew's list (guide-ja said
    `--status open`)."""
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8").split("## The weekly registry workflow", 1)[1]
    step = next(ln for ln in readme.split("```")[1].splitlines() if "# 2. the crew's list" in ln)
    status = re.search(r"--status (\S+)", step).group(1)
    store = _copy(registry, tmp_path)
    _, rows = _csv_rows(_export(store, "csv", tmp_path / "list.csv", "--status", status, "--roads", ROADS))
    listed = {r["candidate_id"]: r["status"] for r in rows}
    held = {c: v[0] for c, v in _states(store).items()}
    assert held["R-000010"] == "reopened" and listed.get("R-000010") == "reopened", step
    assert listed == {c: s for c, s in held.items() if s in OPEN}, step
