"""`patrol export … --area FILE [--area-where FIELD=VALUE]` and `patrol stats … --area`: a district office's own list,
map, condition, due list and figures (README: One district's lists and figures). Real data: the sample registry of
test_stats (the two sample passes' oracle detections located on the sample network, 31 damages, statuses set) and
the sample network (11,239 segments). The districts are made here from the damages' extent: its bounding box cut in
two halves (south, north) between the two middle latitudes, written as GeoJSON in EPSG:4326 and as a GeoPackage in the
network's metric CRS with a name field (名称) and a number field (code)."""

from __future__ import annotations

import csv
import json
import re
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


# ------------------------------------------------------------------------------ a file of every district, shared out

#: a file of five districts (管区) in file order, drawn as separately digitised offices' files are: 北部 and 中部
#: overlap in a ~90 m sliver (R-000001 14 m inside 北部's edge, 74 m inside 中部's; R-000009 78 m and 11 m), 中部 and
#: 南部 share an edge drawn through R-000016, 南部 and 最南部 leave a ~144 m gap (R-000025 9 m from 南部, R-000027 and
#: R-000028 14 and 13 m from 最南部, R-000026 60 m from 南部 and 84 m from 最南部), 東部 east of them all, no damage in it.
#: Boxes of latitudes (the network's extent east-west): a damage's depth in one is its distance to the nearest
#: horizontal edge (the vertical ones are kilometres away), by hand below.
OFFICES = ("北部", "中部", "南部", "最南部", "東部")
EAST = 137.2400


def _boxes(lat16: float) -> dict:
    return {"北部": (36.6840, None), "中部": (lat16, 36.6848), "南部": (36.6790, lat16), "最南部": (None, 36.6777)}


@pytest.fixture(scope="module")
def offices(registry, tmp_path_factory):  # noqa: F811
    """管区.gpkg (lon/lat, its edge exactly through R-000016: a GeoPackage keeps the doubles), the same file with
    南部 before 中部 (the tie the other way) and in metres (EPSG:6675, the boxes' edges densified to 1 m first: a
    parallel stays a parallel to the micrometre); the damages; the oracle by latitude."""
    con = sqlite3.connect(registry["store"])
    dmg = pd.read_sql_query("SELECT candidate_id, class, lat, lon, merged_into FROM candidates", con)
    con.close()
    lat = dict(zip(dmg["candidate_id"], dmg["lat"]))
    x0, y0, x1, y1 = gpd.read_file(ROADS).total_bounds
    boxes = {k: (y0 if lo is None else lo, y1 if hi is None else hi) for k, (lo, hi) in _boxes(lat["R-000016"]).items()}
    geoms = {k: shapely.box(x0, lo, EAST, hi) for k, (lo, hi) in boxes.items()}
    geoms["東部"] = shapely.box(EAST, y0, x1, y1)
    assert (dmg["lon"] < EAST).all()
    d = tmp_path_factory.mktemp("offices")

    def write(name, order, crs=4326):
        gdf = gpd.GeoDataFrame({"名称": list(order)}, geometry=[geoms[k] for k in order], crs=4326)
        if crs != 4326:
            gdf = gpd.GeoDataFrame(gdf.drop(columns="geometry"), geometry=shapely.segmentize(gdf.geometry.values, 1e-5),
                                   crs=4326).to_crs(crs)
        gdf.to_file(d / name)
        return d / name

    # the oracle: each damage's boxes; the deepest (its latitude's distance to the nearer edge), the first on a tie
    want, gap = {k: set() for k in OFFICES}, {}
    for cid, y in lat.items():
        depth = {k: min(y - lo, hi - y) for k, (lo, hi) in boxes.items() if lo <= y <= hi}
        if depth:
            want[max(depth, key=lambda k: (depth[k], -OFFICES.index(k)))].add(cid)
        else:  # in the gap: the vertical distance to each box (m: ~110,950 m a degree of latitude here)
            gap[cid] = {k: 110950 * max(lo - y, y - hi) for k, (lo, hi) in boxes.items()}
    assert set(gap) == {"R-000025", "R-000026", "R-000027", "R-000028"}, gap
    assert {"R-000001", "R-000009"} <= want["中部"] | want["北部"] and "R-000016" in want["中部"]
    swapped = ("北部", "南部", "中部", "最南部", "東部")
    return {"file": write("管区.gpkg", OFFICES), "swapped": write("管区-swapped.gpkg", swapped),
            "metric": write("管区-6675.gpkg", OFFICES, 6675), "dmg": dmg, "want": want, "gap": gap}


def _shares(path, dmg, gap_m=None) -> dict[str, set]:
    from detector.area import load_area

    return {k: set(dmg.loc[load_area(path, f"名称={k}", gap_m=gap_m).inside(dmg), "candidate_id"]) for k in OFFICES}


def test_a_file_of_districts_shares_the_damages_out(offices):
    """Each damage in at most one district of the file: in an overlap the one it lies deepest in (R-000001 中部,
    R-000009 北部), on the shared edge the first in the file (R-000016: 中部, or 南部 where the file lists it first),
    in a gap none, or with --area-gap the nearest polygon within it; the lon/lat file and the metric one alike (but
    R-000016, which the reprojected edge leaves in one of the two).
    Without --area-where the file's union (the cover) holds the same damages as the districts together."""
    from detector.area import load_area

    dmg, want = offices["dmg"], offices["want"]
    got = _shares(offices["file"], dmg)
    assert got == want
    assert "R-000001" in got["中部"] and "R-000009" in got["北部"] and "R-000016" in got["中部"]
    assert sum(len(v) for v in got.values()) == len(set().union(*got.values())) == len(dmg) - len(offices["gap"])
    cover = set(dmg.loc[load_area(offices["file"]).inside(dmg), "candidate_id"])
    assert cover == set().union(*got.values())
    swapped = _shares(offices["swapped"], dmg)
    assert "R-000016" in swapped["南部"] and swapped["中部"] == want["中部"] - {"R-000016"}
    # in metres the edge is a few nanometres off R-000016 (reprojected): it lies in one of the two, either
    metric = _shares(offices["metric"], dmg)
    assert {k: v - {"R-000016"} for k, v in metric.items()} == {k: v - {"R-000016"} for k, v in want.items()}
    assert sum("R-000016" in v for v in metric.values()) == 1 and "R-000016" in metric["中部"] | metric["南部"]
    # --area-gap 20: R-000025 to 南部 (9 m), R-000027/28 to 最南部 (14, 13 m); R-000026 (60 m) in none; 100: it too
    g = offices["gap"]
    assert min(g["R-000026"].values()) > 20 > max(min(v.values()) for k, v in g.items() if k != "R-000026")
    near = {k: min(v, key=v.get) for k, v in g.items()}
    for gap_m, taken in ((20, {"R-000025", "R-000027", "R-000028"}), (100, set(g))):
        got = _shares(offices["file"], dmg, gap_m)
        assert got == {k: want[k] | {c for c in taken if near[c] == k} for k in OFFICES}, gap_m


def test_the_note_says_what_no_district_holds(offices):
    """One district of the file: a note says how many damages lie in no polygon (the districts' figures add up to
    the rest), how many within 50 m of one and the --area-gap that would count them; with --area-gap those it gave
    across the gap; the damages its polygons share with another's. A file of one polygon, or the file whole: none."""
    from detector.area import load_area

    dmg = offices["dmg"]
    notes: list[str] = []
    load_area(offices["file"], "名称=中部").inside(dmg, notes)
    far = max(min(v.values()) for k, v in offices["gap"].items() if k != "R-000026")  # R-000027: 13.5 m
    assert notes[0].startswith(f"4 of {len(dmg)} damages lie in no polygon of 管区.gpkg: in no district, so the "
                               f"districts' figures add up to {len(dmg) - 4}, not {len(dmg)}; 3 of them within 50 m of "
                               f"one (the farthest "), notes
    said = float(re.search(r"the farthest ([\d.]+) m", notes[0]).group(1))  # rounded up (13.51 m: 13.6)
    assert far - 0.02 < said < far + 0.12, (said, far)
    assert notes[0].endswith(f"--area-gap {int(np.ceil(far))} counts each in its nearest polygon")
    assert notes[1].startswith("3 damages lie in a polygon of 中部 and in another of 管区.gpkg (where they overlap, or on "
                               "their shared edge)") and notes[1].endswith(": 2 in 中部, 1 in another district"), notes
    assert len(notes) == 2
    notes = []
    load_area(offices["file"], "名称=南部", gap_m=20).inside(dmg, notes)
    assert notes[0].startswith(f"1 of {len(dmg)} damages lies in no polygon of 管区.gpkg and farther than --area-gap "
                               f"20 m from every one: in no district"), notes
    assert notes[1] == (f"3 of {len(dmg)} damages lie in no polygon of 管区.gpkg but within --area-gap 20 m of one: each "
                        "counted in its nearest polygon (1 of them in 南部)")
    for where in (None, "名称=東部"):
        notes = []
        load_area(offices["file"], where).inside(dmg, notes)
        assert len(notes) == (0 if where is None else 1), notes  # 東部 shares nothing; the whole file: the summary's


def test_the_notes_farthest_gap_is_said_rounded_up_as_the_area_gap_it_names(tmp_path):
    """The note's farthest distance is rounded up as the --area-gap it names is: a damage 5.03 m from the nearest
    district read "the farthest 5.0 m … --area-gap 6" (met on a lon/lat file of the sample); now "5.1 m … 6", and
    --area-gap 6 counts it, 5 does not. Real data: a true damage site of the sample drive (truth.geojson), districts
    drawn in metres (EPSG:6675) 5.03 m north and 8 m south of it."""
    from detector.area import load_area

    feats = json.loads((TOYAMA / "truth.geojson").read_text(encoding="utf-8"))["features"]
    lon, lat = feats[0]["geometry"]["coordinates"]
    (x, y), = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326).to_crs(6675).map(lambda p: (p.x, p.y))
    path = tmp_path / "管区.gpkg"
    gpd.GeoDataFrame({"名称": ["北部", "南部"]}, geometry=[shapely.box(x - 300, y + 5.03, x + 300, y + 400),
                                                       shapely.box(x - 300, y - 400, x + 300, y - 8)],
                     crs=6675).to_file(path)
    dmg = pd.DataFrame({"lat": [lat], "lon": [lon]})
    notes: list[str] = []
    assert not load_area(path, "名称=北部").inside(dmg, notes).any()
    assert "(the farthest 5.1 m: " in notes[0] and notes[0].endswith("--area-gap 6 counts each in its nearest polygon")
    assert load_area(path, "名称=北部", gap_m=6).inside(dmg).all()
    assert not load_area(path, "名称=北部", gap_m=5).inside(dmg).any()


def test_stats_of_every_district_add_up_to_the_cover(registry, offices, tmp_path):  # noqa: F811
    """`patrol stats --area 管区.gpkg --area-where 名称=X` over every X adds up, row by row, to the figures of the file
    whole (`--area 管区.gpkg`), which are the registry's less the damages in no district; each district's run says
    how many those are."""
    store, dmg = registry["store"], offices["dmg"]
    own = dmg[dmg["merged_into"].isna()]
    gone = own[own["candidate_id"].isin(offices["gap"])]

    def stats(name, *area):
        out = tmp_path / f"{name}.csv"
        r = ok(patrol("stats", store, "--until", "2027-01-31", "--out", out, *area))
        return r, _rows(out)[1]

    _, whole = stats("all")
    r, cover = stats("cover", "--area", offices["file"])
    assert f"in area 管区.gpkg: {len(own) - len(gone)} of {len(own)} damages" in r.stdout
    assert "no polygon" not in r.stderr  # the file whole: the summary says it
    parts = {}
    for k in OFFICES:
        r, parts[k] = stats(k, "--area", offices["file"], "--area-where", f"名称={k}")
        assert f"note: {len(gone)} of {len(own)} damages lie in no polygon of 管区.gpkg" in r.stderr, r.stderr
    for key, row in cover.items():
        for col in ("found", "repaired", "not_an_issue", "reopened", "open", "open_no", "rep_no"):
            assert _v(row, col) == sum(_v(parts[k][key], col) for k in OFFICES if key in parts[k]), (key, col)
    found = {c: _v(whole[("2026-11", c)], "found") - int((gone["class"] == c).sum())
             for c in ("D00", "D10", "D20", "D40")}
    assert {c: _v(cover[("2026-11", c)], "found") for c in found} == found


def test_area_gap_refused_where_it_means_nothing(registry, offices, tmp_path):  # noqa: F811
    """--area-gap: without --area, negative, or with --format segments / due (their rows are the segments crossing
    the area, whole): exit 2 naming it."""
    store = registry["store"]
    for args in (["stats", store, "--area-gap", "20"],
                 ["stats", store, "--area", offices["file"], "--area-gap", "-5"],
                 ["export", store, "--format", "due", "--roads", ROADS, "--out", tmp_path / "d.csv", "--area",
                  offices["file"], "--area-where", "名称=中部", "--area-gap", "20"],
                 ["export", store, "--format", "segments", "--roads", ROADS, "--out", tmp_path / "s.geojson",
                  "--area", offices["file"], "--area-gap", "20"]):
        r = patrol(*args)
        assert r.returncode == 2 and "--area-gap" in r.stderr, (args, r.stderr)
