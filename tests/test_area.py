"""`patrol export … --area FILE [--area-where FIELD=VALUE]` and `patrol stats … --area`: a district office's own list,
map, condition, due list and figures (README: One district's lists and figures). Real data: the sample registry of
test_stats (the two sample passes' oracle detections located on the sample network, 31 damages, statuses set) and
the sample network (11,239 segments). The districts are made here from the damages' extent: its bounding box cut in
two halves (south, north) between the two middle latitudes, written as GeoJSON in EPSG:4326 and as a GeoPackage in the
network's metric CRS with a name field (名称) and a number field (code)."""

from __future__ import annotations

import csv
import json
import sqlite3

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from conftest import TOYAMA
from test_stats import _rows, _v, ok, patrol, registry  # noqa: F401 (the fixture)

ROADS = TOYAMA / "roads.geojson"
NAMES = {"south": "南部土木事務所", "north": "北部土木事務所"}


@pytest.fixture(scope="module")
def districts(registry, tmp_path_factory):  # noqa: F811
    """The district files and the oracle: the damages' ids by half (their latitude against the cut, by hand) and the
    network's segment ids crossing each half (geopandas on the network file itself)."""
    from detector.config import Config
    from detector.roads import load_roads

    con = sqlite3.connect(registry["store"])
    dmg = pd.read_sql_query("SELECT candidate_id, lat, lon, status, merged_into FROM candidates", con)
    con.close()
    lat, lon = dmg["lat"].to_numpy(float), dmg["lon"].to_numpy(float)
    s = np.sort(lat)
    cut = (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
    assert s[len(s) // 2 - 1] < cut < s[len(s) // 2]  # no damage on the edge
    pad = 0.002
    x0, x1, y0, y1 = lon.min() - pad, lon.max() + pad, lat.min() - pad, lat.max() + pad
    halves = {"south": shapely.box(x0, y0, x1, cut), "north": shapely.box(x0, cut, x1, y1)}
    d = tmp_path_factory.mktemp("area")
    both = gpd.GeoDataFrame({"名称": [NAMES[k] for k in halves], "code": [1, 2]}, geometry=list(halves.values()),
                            crs=4326)
    for i, k in enumerate(halves):
        both.iloc[[i]].to_file(d / f"{k}.geojson")
    metric = load_roads(ROADS, Config()).crs
    both.to_crs(metric).to_file(d / "districts.gpkg")  # UTM 53N: the points are taken into it, not the polygons out
    gpd.GeoDataFrame({"名称": ["x"]}, geometry=[shapely.Point(lon[0], lat[0])], crs=4326).to_file(d / "points.geojson")
    net = gpd.read_file(ROADS)
    ids = {k: set(net.loc[net.intersects(g), "segment_id"].astype(str)) for k, g in halves.items()}
    return {"dir": d, "cut": cut, "gpkg": d / "districts.gpkg", "dmg": dmg, "segments": ids, "n_net": len(net),
            "damages": {"south": set(dmg.loc[lat < cut, "candidate_id"]), "north": set(dmg.loc[lat > cut, "candidate_id"])}}


def _ids(path) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [r["candidate_id"] for r in csv.DictReader(fh)]


def _last(r) -> str:
    return r.stdout.strip().splitlines()[-1]


def test_the_two_halves_partition_the_damages(registry, districts, tmp_path):  # noqa: F811
    """Each half's list holds exactly the damages inside it (by position; the CSV and the GeoJSON alike, the
    GeoPackage of metric polygons picked by --area-where as the GeoJSON of the same half): the two are disjoint and
    together the whole list; the summary says how many of all."""
    store = registry["store"]
    ok(patrol("export", store, "--format", "csv", "--out", tmp_path / "all.csv"))
    every = _ids(tmp_path / "all.csv")
    got = {}
    for half in ("south", "north"):
        out = tmp_path / f"{half}.csv"
        r = ok(patrol("export", store, "--format", "csv", "--out", out, "--area", districts["dir"] / f"{half}.geojson"))
        got[half] = _ids(out)
        assert set(got[half]) == districts["damages"][half] & set(every)
        assert _last(r).endswith(f"in area {half}.geojson: {len(got[half])} of {len(every)} damages"), r.stdout
        # the same half from the GeoPackage (UTM metres), picked by its name; the GeoJSON format too
        gj = tmp_path / f"{half}.geojson"
        r = ok(patrol("export", store, "--format", "geojson", "--out", gj, "--area", districts["gpkg"],
                      "--area-where", f"名称={NAMES[half]}"))
        feats = json.loads(gj.read_text(encoding="utf-8"))["features"]
        assert sorted(f["properties"]["candidate_id"] for f in feats) == sorted(got[half])
        assert f"in area {NAMES[half]}: {len(got[half])} of {len(every)} damages" in _last(r)
    assert got["south"] and got["north"] and not set(got["south"]) & set(got["north"])
    assert sorted(got["south"] + got["north"]) == sorted(every)
    # a number field by its value
    r = ok(patrol("export", store, "--format", "csv", "--out", tmp_path / "code.csv", "--area", districts["gpkg"],
                  "--area-where", "code=2"))
    assert _ids(tmp_path / "code.csv") == got["north"] and "in area code=2:" in _last(r)


def test_segments_and_due_keep_the_segments_crossing_the_area(registry, districts, tmp_path):  # noqa: F811
    """--format due lists exactly the network's segments that cross the district (whole: their full length);
    --format segments keeps the rows of those segments, as the whole network's export has them (the damages on them
    counted, also one just outside the polygon: the segment is the district's)."""
    store, half = registry["store"], "north"
    area = ["--area", districts["gpkg"], "--area-where", f"名称={NAMES[half]}"]
    want = districts["segments"][half]
    assert 0 < len(want) < districts["n_net"]
    out = tmp_path / "due.csv"
    r = ok(patrol("export", store, "--format", "due", "--roads", ROADS, "--out", out, "--at", "2026-12-20", *area))
    due = pd.read_csv(out, encoding="utf-8-sig", dtype=str).rename(columns=lambda c: c.split(" ")[-1])
    assert set(due["segment_id"]) == want and due["segment_id"].is_unique
    assert f"in area {NAMES[half]}: {len(want)} of {districts['n_net']} segments" in _last(r)
    net = gpd.read_file(ROADS).set_index("segment_id").to_crs(32653)
    full = net.loc[sorted(want)].length
    got = due.set_index("segment_id")["length_m"].astype(float).loc[full.index]
    assert np.allclose(got, full, atol=0.05)  # whole, not cut at the district's edge

    def seg(path, *args):
        ok(patrol("export", store, "--format", "segments", "--roads", ROADS, "--out", path, *args))
        gj = json.loads(path.read_text(encoding="utf-8"))
        return pd.DataFrame([f["properties"] for f in gj["features"]]), gj.get("patrol")

    whole, _ = seg(tmp_path / "seg-all.geojson")
    part, meta = seg(tmp_path / "seg-north.geojson", *area)
    assert len(part) and set(part["segment_id"]) <= want
    assert len(part) < len(whole)
    mine = whole[whole["segment_id"].isin(want)].reset_index(drop=True)
    pd.testing.assert_frame_equal(part.reset_index(drop=True), mine)
    assert meta["area"]["name"] == NAMES[half] and meta["damages"] == int(
        mine.loc[mine["level"] == "segment", "n_total"].sum())


def test_html_map_draws_the_area_network(registry, districts, tmp_path):  # noqa: F811
    """The map of one district: its damages, and its patrol-due layer over the segments crossing it only."""
    out = tmp_path / "north.html"
    r = ok(patrol("export", registry["store"], "--format", "html", "--roads", ROADS, "--out", out, "--area",
                  districts["dir"] / "north.geojson"))
    text = out.read_text(encoding="utf-8")
    i = text.index('"due":') + len('"due":')
    due, _ = json.JSONDecoder().raw_decode(text[i:])
    assert sum(x["k"] for x in due["lines"]) == len(districts["segments"]["north"])
    assert "in area north.geojson: " in _last(r)


def test_stats_of_the_halves_add_up(registry, districts, tmp_path):  # noqa: F811
    """Each half's figures count its damages only: found per period and class add up to the whole registry's, and
    open now is the half's open damages."""
    store = registry["store"]
    whole_out = tmp_path / "all.csv"
    ok(patrol("stats", store, "--until", "2027-01-31", "--out", whole_out))
    _, whole = _rows(whole_out)
    halves = {}
    for half in ("south", "north"):
        out = tmp_path / f"{half}.csv"
        r = ok(patrol("stats", store, "--until", "2027-01-31", "--out", out, "--area",
                      districts["dir"] / f"{half}.geojson"))
        halves[half] = _rows(out)[1]
        dmg = districts["dmg"]
        mine = dmg[dmg["candidate_id"].isin(districts["damages"][half]) & dmg["merged_into"].isna()]
        n_open = int(mine["status"].isin(["new", "confirmed", "scheduled", "reopened"]).sum())
        assert f"open now {n_open}, " in r.stdout and f"in area {half}.geojson: {len(mine)} of " in r.stdout, r.stdout
    for key, row in whole.items():
        for col in ("found", "repaired", "not_an_issue", "reopened", "open", "open_no", "rep_no"):
            assert _v(row, col) == sum(_v(halves[h][key], col) for h in halves if key in halves[h]), (key, col)
        for col in ("open_area", "rep_area"):  # each of the three rounded to 0.1 m²
            parts = sum(_v(halves[h][key], col) for h in halves if key in halves[h])
            assert abs(_v(row, col) - parts) <= 0.15 + 1e-9, (key, col)
    assert all(_v(halves[h][("2026-11", "total")], "found") > 0 for h in halves)
    assert sum(_v(halves[h][("2026-12", "total")], "repaired") for h in halves) == 3  # test_stats' December repairs


@pytest.mark.parametrize("args, code, words", [
    (["--area-where", "区名=北部"], 2, ["districts.gpkg", "--area-where", "no column '区名'", "columns: 名称, code"]),
    (["--area-where", "名称=東部土木事務所"], 2, ["districts.gpkg", "no polygon has 名称 = '東部土木事務所'",
                                               "南部土木事務所", "北部土木事務所"]),
    (["--area-where", "名称"], 2, ["--area-where", "FIELD=VALUE"]),
])
def test_area_where_errors(registry, districts, tmp_path, args, code, words):  # noqa: F811
    for cmd in (["export", registry["store"], "--format", "csv", "--out", tmp_path / "x.csv"],
                ["stats", registry["store"]]):
        r = patrol(*cmd, "--area", districts["gpkg"], *args)
        assert r.returncode == code, r.stderr
        line = r.stderr.strip()
        assert line.startswith("error: ") and len(line.splitlines()) == 1
        for w in words:
            assert w in line, line
        assert not (tmp_path / "x.csv").exists()


def test_bad_area_files(registry, districts, tmp_path):  # noqa: F811
    """Not found, no polygons (a file of points), not a map layer, projected coordinates without a CRS: exit 3,
    the file named; --area-where without --area: exit 2."""
    table = tmp_path / "districts.csv"
    table.write_text("名称,code\n北部,2\n", encoding="utf-8")
    no_crs = tmp_path / "nocrs.geojson"
    no_crs.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
                                  "geometry": shapely.geometry.mapping(shapely.box(540000, 4060000, 541000, 4061000))}]}),
                      encoding="utf-8")  # UTM metres, no CRS named
    for path, words in ((tmp_path / "nowhere.geojson", "file not found"),
                        (districts["dir"] / "points.geojson", "contains no polygons (found Point)"),
                        (table, "unknown format"),
                        (no_crs, "not longitude/latitude")):
        for cmd in (["export", registry["store"], "--format", "geojson", "--out", tmp_path / "x.geojson"],
                    ["stats", registry["store"]]):
            r = patrol(*cmd, "--area", path)
            assert r.returncode == 3, (path, r.stderr)
            assert str(path) in r.stderr and words in r.stderr, r.stderr
    r = patrol("stats", registry["store"], "--area-where", "名称=北部")
    assert r.returncode == 2 and "needs --area" in r.stderr


def test_shapefile_zipped_in_shift_jis(registry, districts, tmp_path):  # noqa: F811
    """A district Shapefile as Japanese GIS writes it: Shift_JIS .dbf without a .cpg, zipped: its 名称 column is read
    (as the road network's .dbf is: a warning says so) and picks the same damages as the GeoJSON."""
    import zipfile

    shp = tmp_path / "shp" / "管区.shp"
    shp.parent.mkdir()
    gpd.read_file(districts["gpkg"]).to_file(shp, encoding="cp932")
    for f in shp.parent.glob("*.cpg"):
        f.unlink()
    zipped = tmp_path / "管区.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        for f in shp.parent.iterdir():
            z.write(f, f.name)
    ok(patrol("export", registry["store"], "--format", "csv", "--out", tmp_path / "n.csv", "--area",
              districts["dir"] / "north.geojson"))
    want = _ids(tmp_path / "n.csv")
    for area in (shp, zipped):
        out = tmp_path / f"{area.suffix[1:]}.csv"
        r = ok(patrol("export", registry["store"], "--format", "csv", "--out", out, "--area", area, "--area-where",
                      f"名称={NAMES['north']}"))
        assert _ids(out) == want and f"in area {NAMES['north']}: " in _last(r)
    assert "管区.dbf" in r.stderr and "Shift_JIS" in r.stderr
