"""roads.keep_fields: the road network's own attributes (路線番号, 道路種別, 管理事務所 …) copied from the segment each
candidate is placed on into every output a road department acts on: a run's candidates.geojson, repair_list.csv and
report.html, and the registry's exports (joined by segment_id from ``patrol export --roads``).

One ``patrol run --store`` of the sample drive (both passes) per module, on a ledger derived from the sample network
with columns computed from its real segments (length, position, arc number), then every export format of the registry.
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROADS, TOYAMA, need
from detector.config import Config, RoadsSpec, load_config
from detector.errors import ConfigError, InputError
from detector.roads import load_roads
from test_cli import assert_user_error, ok, patrol
from test_store_drive_identity import quick_config

P1, P2 = "toyama-2026-11-p1", "toyama-2026-11-p2"
KEEP = ["路線番号", "道路種別", "管理事務所", "延長", "備考", "class"]
OUT_NAMES = ["路線番号", "道路種別", "管理事務所", "延長", "備考", "road_class"]  # `class` is ours: road_class
FORMATS = ("csv", "xlsx", "geojson", "gpkg", "kml", "html", "shp")
KML = "{http://www.opengis.net/kml/2.2}"


def ledger(src: Path, dst: Path, drop: set[str] = frozenset()) -> dict[str, dict]:
    """A road ledger (道路台帳) from the sample network: its segments and ids, with ledger columns computed from each
    segment's real length, position and arc number; ``drop``: segments left out (a network edited since). Returns
    {segment_id: {output column: expected value}}."""
    import geopandas as gpd

    g = gpd.read_file(src)
    g = g[~g["segment_id"].isin(drop)].reset_index(drop=True)
    m = g.to_crs(g.estimate_utm_crs())
    length = m.length.to_numpy()
    arc = g["segment_id"].str.split("-").str[-1].astype(int)
    g["路線番号"] = arc.astype("Int64").where(arc % 7 != 0)  # 1 in 7 without a number: an integer column with gaps
    g["道路種別"] = np.where(length >= 100, "1級市道", np.where(length >= 30, "2級市道", "その他市道"))
    east = m.geometry.centroid.x.to_numpy() >= np.median(m.geometry.centroid.x)
    g["管理事務所"] = np.where(east, "東部道路維持事務所", "西部道路維持事務所")
    g["延長"] = np.round(length, 1)
    g["備考"] = np.where(length < 30, "-", "=市道認定")  # a ledger's "-" (none) and text that starts like a formula
    g["class"] = np.where(length >= 100, "A", "B")  # named like our damage class
    g.to_file(dst, driver="GPKG")
    want = {}
    for r in g.drop(columns="geometry").to_dict("records"):
        want[r["segment_id"]] = {"路線番号": None if pd.isna(r["路線番号"]) else int(r["路線番号"]),
                                 "道路種別": r["道路種別"], "管理事務所": r["管理事務所"], "延長": float(r["延長"]),
                                 "備考": r["備考"], "road_class": r["class"]}
    return want


def csv_text(v) -> str:
    """A value as patrol's CSVs write it: numbers plain, text formula-safe (a leading ' before = + - @)."""
    if v is None:
        return ""
    if isinstance(v, (int, float)):
        return str(v)
    return "'" + v if v[:1] in ("=", "+", "-", "@") else v


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict:
    toyama = need(TOYAMA)
    work = tmp_path_factory.mktemp("road_fields")
    want = ledger(toyama / "roads.geojson", work / "ledger.gpkg")
    cfg = quick_config(work)
    cfg.write_text(cfg.read_text(encoding="utf-8") + "roads:\n  keep_fields: [" + ", ".join(KEEP) + "]\n",
                   encoding="utf-8")
    out, store = work / "out", work / "registry.gpkg"
    ok(patrol("run", toyama / P1, toyama / P2, "--roads", work / "ledger.gpkg", "--out", out, "--store", store,
              "--config", cfg))
    exports = {}
    for fmt in FORMATS:
        exports[fmt] = work / f"list.{fmt}"
        ok(patrol("export", store, "--format", fmt, "--out", exports[fmt], "--roads", work / "ledger.gpkg",
                  "--config", cfg))
    return {"work": work, "want": want, "cfg": cfg, "out": out, "store": store, "exports": exports}


def _features(path: Path) -> list[dict]:
    return [f["properties"] for f in json.loads(path.read_text(encoding="utf-8"))["features"]]


def test_candidates_geojson_carries_the_segments_fields(sample):
    props = _features(sample["out"] / "candidates.geojson")
    assert len(props) >= 10 and all(p["segment_id"] for p in props)
    for p in props:
        keys = list(p)
        assert keys[keys.index("road_name") + 1: keys.index("road_name") + 7] == OUT_NAMES
        assert {k: p[k] for k in OUT_NAMES} == sample["want"][p["segment_id"]], p["candidate_id"]
        assert p["class"] in ("D00", "D10", "D20", "D40")  # ours, not the ledger's `class`
    assert any(p["路線番号"] is None for p in props) and any(isinstance(p["路線番号"], int) for p in props)
    assert {type(p["延長"]) for p in props} == {float}


def test_repair_list_keeps_japanese_numbers_and_formula_safety(sample):
    raw = (sample["out"] / "repair_list.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    head = rows[0]
    at = head.index("road_name") + 1
    assert head[at: at + 6] == OUT_NAMES and head[at + 6] == "chainage_m"
    seg, cls = head.index("segment_id"), head.index("class")
    for r in rows[1:]:
        want = sample["want"][r[seg]]
        assert r[at: at + 6] == [csv_text(want[k]) for k in OUT_NAMES], r
        assert r[cls] in ("D00", "D10", "D20", "D40")
    cells = {c for r in rows[1:] for c in r[at: at + 6]}
    assert "'=市道認定" in cells  # formula-safe
    assert cells & {"東部道路維持事務所", "西部道路維持事務所"} and cells & {"1級市道", "2級市道", "その他市道"}


def test_report_html_table_and_popup(sample):
    html = (sample["out"] / "report.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1))
    assert data["roadFields"] == OUT_NAMES
    cols = [c["id"] for c in data["columns"]]
    assert cols[cols.index("road_name") + 1: cols.index("road_name") + 7] == OUT_NAMES
    for c in data["candidates"]:
        assert {k: c[k] for k in OUT_NAMES} == sample["want"][c["segment_id"]]


def test_report_html_shows_them_in_chromium(sample):
    from test_report import console_errors, render, selfcheck

    html = sample["out"] / "report.html"
    first = _features(sample["out"] / "candidates.geojson")[0]
    dom, err = render(html, f"#c={first['candidate_id']}")
    assert selfcheck(dom).startswith("report-ok:"), selfcheck(dom)
    assert not console_errors(err), console_errors(err)
    head = dom[dom.index("<thead"): dom.index("</thead>")]
    assert all(f">{k}<" in head for k in OUT_NAMES)  # table columns after 路線名
    popup = dom[dom.index('class="leaflet-popup-content'):][:20000]
    want = sample["want"][first["segment_id"]]
    assert "管理事務所" in popup and want["管理事務所"] in popup and want["道路種別"] in popup


def test_segments_geojson_carries_the_segments_fields(sample):
    """segments.geojson, the layer a road department plans pavement repair from (which office's 1級市道 are in
    condition 4-5): every row, the whole segment's and each 20 m / 100 m bin's, carries its network segment's kept
    fields after road_name, under the same names as the candidates (road_class), with the network's types."""
    props = _features(sample["out"] / "segments.geojson")
    levels = {p["level"] for p in props}
    assert levels == {"segment", "bin20", "bin100"}, levels
    for p in props:
        keys = list(p)
        assert keys[keys.index("road_name") + 1: keys.index("road_name") + 7] == OUT_NAMES, keys
        assert {k: p[k] for k in OUT_NAMES} == sample["want"][p["segment_id"]], (p["segment_id"], p["level"])
        assert p["level"] in levels and (p["condition"] is None or 1 <= p["condition"] <= 5)  # ours, not the ledger's
    assert any(p["路線番号"] is None for p in props) and any(isinstance(p["路線番号"], int) for p in props)
    assert {type(p["延長"]) for p in props} == {float}
    # what the layer is for: condition per office and road class, bins included
    offices = {p["管理事務所"] for p in props if p["valid"]}
    assert offices <= {"東部道路維持事務所", "西部道路維持事務所"} and offices


def test_segment_columns_are_reserved():
    """A ledger column named like a column of segments.geojson (level, condition, length_m …) gets road_ too."""
    from detector.export import RESERVED_COLUMNS, road_field_names
    from detector.segments import OUT_COLUMNS

    assert {c.casefold() for c in OUT_COLUMNS} <= RESERVED_COLUMNS
    assert road_field_names(["condition", "Length_m", "level"]) == [
        ("condition", "road_condition"), ("Length_m", "road_Length_m"), ("level", "road_level")]


def _check_rows(rows: list[dict], want: dict, text: bool = False) -> None:
    assert rows
    for r in rows:
        exp = want[r["segment_id"]]
        got = {k: r[k] for k in OUT_NAMES}
        assert got == ({k: csv_text(v) for k, v in exp.items()} if text else exp), r["candidate_id"]


def test_registry_exports(sample):
    """Every `patrol export` format carries the fields, joined from --roads by segment_id, types kept."""
    import openpyxl

    want, ex = sample["want"], sample["exports"]
    # geojson: numbers as numbers
    _check_rows(_features(ex["geojson"]), want)
    # csv (UTF-8 with BOM, Japanese headers as the network names them, formula-safe)
    text = ex["csv"].read_bytes()
    assert text.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(text.decode("utf-8-sig").splitlines()))
    head = list(rows[0])
    assert head[head.index("road_name") + 1: head.index("road_name") + 7] == OUT_NAMES
    _check_rows(rows, want, text=True)
    # xlsx: the network's names as headers, numbers as numbers
    ws = openpyxl.load_workbook(ex["xlsx"])["candidates"]
    heads = [c.value for c in ws[1]]
    seg = heads.index("区間ID\nsegment id")
    assert heads[seg + 2: seg + 8] == OUT_NAMES
    xrows = [dict(zip(["segment_id", "candidate_id", *OUT_NAMES], [r[seg], r[0], *r[seg + 2: seg + 8]]))
             for r in ws.iter_rows(min_row=2, values_only=True)]
    _check_rows(xrows, want)
    assert any(isinstance(r["路線番号"], int) for r in xrows)
    # gpkg: INTEGER, REAL and TEXT columns
    con = sqlite3.connect(ex["gpkg"])
    try:
        cur = con.execute('SELECT candidate_id, segment_id, "路線番号", "道路種別", "管理事務所", "延長", "備考", '
                          'road_class, typeof("路線番号"), typeof("延長") FROM candidates')
        grows = [dict(zip(["candidate_id", "segment_id", *OUT_NAMES, "t1", "t2"], r)) for r in cur]
    finally:
        con.close()
    assert {r["t1"] for r in grows} <= {"integer", "null"} and {r["t2"] for r in grows} == {"real"}
    _check_rows([{k: v for k, v in r.items() if k not in ("t1", "t2")} for r in grows], want)
    # kml: ExtendedData under the network's names
    doc = ET.parse(ex["kml"])
    krows = []
    for pm in doc.iter(f"{KML}Placemark"):
        d = {e.get("name"): (e.find(f"{KML}value").text or "") for e in pm.iter(f"{KML}Data")}
        krows.append(d)
    assert krows
    for d in krows:
        exp = want[d["segment_id"]]
        assert {k: d[k] for k in OUT_NAMES} == {k: "" if v is None else str(v) for k, v in exp.items()}
    # html
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>',
                                ex["html"].read_text(encoding="utf-8"), re.S).group(1))
    _check_rows(data["candidates"], want)


def test_shapefile_export_names_them_within_ten_bytes(sample):
    """A Shapefile's field names are at most 10 bytes in the .dbf's encoding: 管理事務所 fits cp932 (10 bytes) but
    not UTF-8 (15), where the names are cut on a character boundary and the console says how; the values keep their
    types (an integer field with gaps, a real field) and Japanese text in both encodings."""
    import pyogrio

    want = sample["want"]
    cp = pyogrio.read_dataframe(sample["exports"]["shp"])
    names = dict(zip(OUT_NAMES, ["路線番号", "道路種別", "管理事務所", "延長", "備考", "road_class"]))
    assert set(names.values()) <= set(cp.columns), list(cp.columns)
    rows = [{"segment_id": r["segment_id"], "candidate_id": r["cand_id"],
             **{k: (None if pd.isna(r[f]) else r[f].item() if hasattr(r[f], "item") else r[f]) for k, f in names.items()}}
            for _, r in cp.iterrows()]
    _check_rows(rows, want)
    info = pyogrio.read_info(sample["exports"]["shp"])
    types = dict(zip(info["fields"], info["dtypes"]))
    assert types["路線番号"].startswith("int") and types["延長"] == "float64", types

    out = sample["work"] / "utf8.zip"
    r = ok(patrol("export", sample["store"], "--format", "shp", "--encoding", "utf-8", "--out", out,
                  "--roads", sample["work"] / "ledger.gpkg", "--config", sample["cfg"]))
    said = " ".join(r.stderr.split())
    assert "路線番号 as 路線番, 道路種別 as 道路種, 管理事務所 as 管理事" in said, r.stderr
    u8 = pyogrio.read_dataframe(f"/vsizip/{out}/utf8.shp")
    short = dict(zip(OUT_NAMES, ["路線番", "道路種", "管理事", "延長", "備考", "road_class"]))
    rows = [{"segment_id": r["segment_id"], "candidate_id": r["cand_id"],
             **{k: (None if pd.isna(r[f]) else r[f].item() if hasattr(r[f], "item") else r[f]) for k, f in short.items()}}
            for _, r in u8.iterrows()]
    _check_rows(rows, want)


def test_export_without_roads_is_refused(sample):
    r = patrol("export", sample["store"], "--format", "csv", "--out", sample["work"] / "x.csv", "--config", sample["cfg"])
    assert_user_error(r, 2, "--roads", "roads.keep_fields")
    assert not (sample["work"] / "x.csv").exists()


def test_export_joins_the_network_as_it_is_now(sample):
    """The network edited after the run: a candidate's segment gone gets empty fields and one warning; the others
    take the ledger's current values (not those at the time of the run)."""
    props = _features(sample["out"] / "candidates.geojson")
    gone = props[0]["segment_id"]
    work = sample["work"]
    now = ledger(TOYAMA / "roads.geojson", work / "edited.gpkg", drop={gone})
    out = work / "edited.geojson"
    r = ok(patrol("export", sample["store"], "--format", "geojson", "--out", out, "--roads", work / "edited.gpkg",
                  "--config", sample["cfg"]))
    n_gone = sum(p["segment_id"] == gone for p in props)
    assert f"{n_gone} of {len(props)} candidates lie on segments that edited.gpkg does not have" in r.stderr
    for p in _features(out):
        exp = now.get(p["segment_id"], dict.fromkeys(OUT_NAMES))
        assert {k: p[k] for k in OUT_NAMES} == exp


def test_a_ledgers_own_x_y_beside_the_crs_columns(sample):
    """A ledger that carries its segments' own plane coordinates as columns ``x``, ``y`` (the start point in
    JGD2011 zone VII), kept, and the crew's list exported with ``--crs``: the ledger's are ``road_x``, ``road_y``
    after road_name, the damage's own position is ``x``, ``y`` after lon (before, the projected position overwrote
    the ledger's column and took its place: one x, no ledger value)."""
    import geopandas as gpd
    from pyproj import Transformer

    work = sample["work"]
    g = gpd.read_file(TOYAMA / "roads.geojson")
    start = g.geometry.to_crs(6675).apply(lambda ln: ln.coords[0])
    g["x"], g["y"] = [round(c[0], 3) for c in start], [round(c[1], 3) for c in start]
    g.to_file(work / "ledger_xy.gpkg", driver="GPKG")
    want = {r.segment_id: (r.x, r.y) for r in g.itertuples()}
    cfg = work / "cfg_xy.yaml"
    cfg.write_text(sample["cfg"].read_text(encoding="utf-8").split("roads:")[0] + "roads:\n  keep_fields: [x, y]\n",
                   encoding="utf-8")
    out = work / "list_xy.csv"
    ok(patrol("export", sample["store"], "--format", "csv", "--crs", "EPSG:6675", "--out", out,
              "--roads", work / "ledger_xy.gpkg", "--config", cfg))
    with open(out, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    head = list(rows[0])
    assert head[head.index("road_name") + 1:head.index("road_name") + 3] == ["road_x", "road_y"]
    assert head[head.index("lon") + 1:head.index("lon") + 3] == ["x", "y"] and head.count("x") == 1
    to = Transformer.from_crs(4326, 6675, always_xy=True)
    for r in rows:
        assert (float(r["road_x"]), float(r["road_y"])) == want[r["segment_id"]]
        x, y = to.transform(float(r["lon"]), float(r["lat"]))
        assert abs(float(r["x"]) - x) < 0.01 and abs(float(r["y"]) - y) < 0.01


# ------------------------------------------------------------------------------------------------ config, networks


def test_names_named_like_ours_get_road_prefix():
    from detector.export import road_field_names

    assert road_field_names(["路線番号", "status", "Severity", "class", "lanes", "name", "road_name"]) == [
        ("路線番号", "路線番号"), ("status", "road_status"), ("Severity", "road_Severity"), ("class", "road_class"),
        ("lanes", "lanes"), ("name", "name"), ("road_name", "road_road_name")]


@pytest.mark.parametrize("fields,msg", [
    (["管理事務所", "管理事務所"], "given twice"),
    (["class", "road_class"], "would both be written as 'road_class'"),
    (["width", "WIDTH"], "would both be written as 'WIDTH'"),
    ([" "], "empty field name"),
])
def test_keep_fields_refused_in_config(tmp_path, fields, msg):
    p = tmp_path / "city.yaml"
    p.write_text("roads:\n  keep_fields: " + json.dumps(fields, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value).startswith(str(p)) and "roads.keep_fields" in str(e.value) and msg in str(e.value)
    r = patrol("export", tmp_path / "none.gpkg", "--format", "csv", "--out", tmp_path / "x.csv", "--config", p)
    assert_user_error(r, 4, "roads.keep_fields")


def test_keep_fields_one_name_and_our_own_columns_are_reserved():
    from detector import report, store
    from detector.export import RESERVED_COLUMNS

    cfg = Config(roads=RoadsSpec(keep_fields="管理事務所"))
    assert cfg.roads.keep_fields == ["管理事務所"]
    ours = ({c for c, *_ in report.LIST_COLUMNS + report.XY_COLUMNS} | set(store.CANDIDATE_COLUMNS) | set(store.STATUS_COLUMNS)
            | set(store._CAND_SQL_TYPES))
    assert {c.casefold() for c in ours} <= RESERVED_COLUMNS


def test_missing_field_names_the_file_and_the_field(toyama, tmp_path):
    cfg = tmp_path / "city.yaml"
    cfg.write_text("roads:\n  keep_fields: [路線番号]\n", encoding="utf-8")
    with pytest.raises(InputError) as e:
        load_roads(toyama / "roads.geojson", load_config(cfg))
    assert str(e.value).startswith(str(toyama / "roads.geojson")) and "路線番号" in str(e.value)
    assert "columns: segment_id" in str(e.value)
    r = patrol("export", tmp_path / "none.gpkg", "--format", "csv", "--out", tmp_path / "x.csv",
               "--roads", toyama / "roads.geojson", "--config", cfg)
    assert_user_error(r, 3, "roads.geojson", "路線番号")


def test_osm_tags_from_other_tags(roads_dir):
    """OSM: highway is a column, ref/surface/lanes/maxspeed are in GDAL's other_tags; each segment gets its way's."""
    import geopandas as gpd

    path = need(ROADS / "osm" / "andorra.osm.pbf")
    net = load_roads(path, Config(roads=RoadsSpec(keep_fields=["highway", "ref", "surface", "lanes"])))
    assert list(net.fields) == ["highway", "ref", "surface", "lanes"]
    ways = gpd.read_file(path, layer="lines")
    ways = ways[ways["highway"].notna()].set_index(ways[ways["highway"].notna()]["osm_id"].astype(str))
    i = net.index_of("6165877")  # a way whose other_tags say ref CG-2, surface asphalt
    assert [net.fields[k][i] for k in ("highway", "ref", "surface", "lanes")] == ["primary", "CG-2", "asphalt", None]
    for k in ("ref", "surface", "lanes"):  # every segment: the value of its own way's tag, or None
        tags = ways["other_tags"].reindex(net.ids).fillna("")
        want = [m.group(1) if (m := re.search(rf'"{k}"=>"([^"]*)"', t)) else None for t in tags]
        assert net.fields[k] == want
    assert net.fields["highway"] == ways["highway"].reindex(net.ids).tolist()
    with pytest.raises(InputError) as e:
        load_roads(path, Config(roads=RoadsSpec(keep_fields=["道路種別"])))
    assert "no way of the network has the tag '道路種別'" in str(e.value)


def test_uji_shapefile_in_shift_jis(tmp_path):
    """configs/uji-city.yaml's kind of network: a JGD2011 Shapefile without .prj whose Japanese columns are
    Shift_JIS (cp932, what Japanese GIS writes, 10-byte names); integers with gaps stay integers."""
    import geopandas as gpd
    from shapely.geometry import LineString

    from detector.roads import join_fields

    p = tmp_path / "city.yaml"
    p.write_text((Path(__file__).resolve().parent.parent / "configs" / "uji-city.yaml").read_text(encoding="utf-8")
                 .replace("  crs: EPSG:6674", "  keep_fields: [路線番号, 道路種別, 管理事務所, 幅員]\n  crs: EPSG:6674"),
                 encoding="utf-8")
    cfg = load_config(p)
    lines = [LineString([(135.80, 34.89 + i * 1e-3), (135.801, 34.89 + i * 1e-3)]) for i in range(3)]
    net = gpd.GeoDataFrame({"路線ID": ["U-1", "U-2", "U-3"], "路線名": ["市道宇治線", "府道京都宇治線", "市道"],
                            "路線番号": [1023, None, 7], "道路種別": ["1級市道", "府道", "その他市道"],
                            "管理事務所": ["東部維持管理事務所", "西部維持管理事務所", None], "幅員": [5.5, 12.0, None]},
                           geometry=lines, crs=4326)
    net["路線番号"] = net["路線番号"].astype("Int64")
    with pytest.warns(UserWarning, match="crs"):  # a Shapefile without .prj, as the city's was
        net.to_crs(cfg.roads.crs).set_crs(None, allow_override=True).to_file(tmp_path / "uji.shp", encoding="cp932")
    assert (tmp_path / "uji.cpg").read_text().upper().replace("-", "") in ("CP932", "SHIFT_JIS", "932")
    roads = load_roads(tmp_path / "uji.shp", cfg)
    assert roads.fields == {"路線番号": [1023, None, 7], "道路種別": ["1級市道", "府道", "その他市道"],
                            "管理事務所": ["東部維持管理事務所", "西部維持管理事務所", None], "幅員": [5.5, 12.0, None]}
    df = pd.DataFrame({"candidate_id": ["a", "b", "c", "d"], "segment_id": ["U-3", None, "", "U-1"]})
    got, note = join_fields(df, roads, cfg)
    assert note is None  # off the network (no segment) is not a lost segment
    assert got["路線番号"].tolist() == [7, None, None, 1023] and got["幅員"].tolist() == [None, None, None, 5.5]


# ------------------------------------------------------------------------------------------------ repeated ledger ids


def _config_keeping(sample, roads_yaml: str, name: str) -> Path:
    """The sample's config with another ``roads:`` section."""
    cfg = sample["work"] / name
    cfg.write_text(sample["cfg"].read_text(encoding="utf-8").split("roads:")[0] + "roads:\n" + roads_yaml,
                   encoding="utf-8")
    return cfg


@pytest.fixture(scope="module")
def routes(sample) -> dict:
    """A ledger keyed by 路線ID, which all pieces of a route share (the sample's segments of one arc, ``<arc>-<k>``
    without its last number): patrol tells the pieces apart as ``<路線ID>-1``, ``-2`` … in the file's row order. A run
    of both passes with it into a registry of its own."""
    import geopandas as gpd

    work = sample["work"]
    g = gpd.read_file(work / "ledger.gpkg")
    g.insert(0, "路線ID", g["segment_id"].str.rsplit("-", n=1).str[0])
    g = g.drop(columns="segment_id")
    g.to_file(work / "routes.gpkg", driver="GPKG")
    cfg = _config_keeping(sample, "  id_field: 路線ID\n  keep_fields: [管理事務所, 延長]\n", "cfg_routes.yaml")
    out, store = work / "out_routes", work / "registry_routes.gpkg"
    ok(patrol("run", TOYAMA / P1, TOYAMA / P2, "--roads", work / "routes.gpkg", "--out", out, "--store", store,
              "--config", cfg, "--no-report"))
    return {"g": g, "cfg": cfg, "store": store, "out": out}


def test_repeated_ledger_ids_join_the_piece_the_damage_lies_on(sample, routes):
    """The ledger re-sorted after the run (rows in reverse, as a GIS's sort or an edit leaves them): the pieces'
    ``-n`` now name other pieces, yet every damage gets the 延長 (each piece's own length) of the piece it lies on,
    as the run gave it; before, a damage on ``<id>-1`` took the 延長 of whichever piece is now first. A route moved
    200 m (re-digitised elsewhere): its damages, farther than locate.max_snap_m from every piece, get empty fields
    and one warning naming them."""
    work, g = sample["work"], routes["g"]
    ran = {p["candidate_id"]: p for p in _features(routes["out"] / "candidates.geojson")}
    repeated = set(g["路線ID"][g["路線ID"].duplicated()])
    on_pieces = [p for p in ran.values() if p["segment_id"].rsplit("-", 1)[0] in repeated
                 or p["segment_id"] in repeated]
    assert len(on_pieces) >= 5, "the sample's damages should lie on routes of several pieces"
    # the run gives each piece its own value (the file is as it was)
    same = work / "routes_same.geojson"
    ok(patrol("export", routes["store"], "--format", "geojson", "--out", same, "--roads", work / "routes.gpkg",
              "--config", routes["cfg"]))
    got = {p["candidate_id"]: p for p in _features(same)}
    assert {k: (p["管理事務所"], p["延長"]) for k, p in got.items()} == {
        k: (p["管理事務所"], p["延長"]) for k, p in ran.items()}

    g[::-1].to_file(work / "routes_resorted.gpkg", driver="GPKG")
    out = work / "routes_resorted.geojson"
    r = ok(patrol("export", routes["store"], "--format", "geojson", "--out", out,
                  "--roads", work / "routes_resorted.gpkg", "--config", routes["cfg"]))
    assert "warning" not in r.stderr, r.stderr
    got = {p["candidate_id"]: p for p in _features(out)}
    assert {k: p["延長"] for k, p in got.items()} == {k: p["延長"] for k, p in ran.items()}
    from detector.config import load_config as _load

    net = load_roads(work / "routes_resorted.gpkg", _load(routes["cfg"]))
    moved = [p for p in on_pieces if p["segment_id"] in set(net.ids)
             and net.fields["延長"][net.index_of(p["segment_id"])] != p["延長"]]
    assert moved, "re-sorting should have given some of their ids to other pieces"

    # one route re-digitised 200 m east
    route = on_pieces[0]["segment_id"].rsplit("-", 1)[0]
    route = route if route in repeated else on_pieces[0]["segment_id"]
    m = g.to_crs(6675)
    m.loc[m["路線ID"] == route, "geometry"] = m.loc[m["路線ID"] == route].translate(200, 0)
    m.to_crs(g.crs).to_file(work / "routes_moved.gpkg", driver="GPKG")
    out = work / "routes_moved.geojson"
    r = ok(patrol("export", routes["store"], "--format", "geojson", "--out", out,
                  "--roads", work / "routes_moved.gpkg", "--config", routes["cfg"]))
    gone = sorted(k for k, p in ran.items() if p["segment_id"] == route or p["segment_id"].rsplit("-", 1)[0] == route)
    said = " ".join(r.stderr.split())
    assert f"{len(gone)} of {len(ran)} candidates ({gone[0]}" in said and "farther than 25 m" in said, r.stderr
    assert "'路線ID' value in routes_moved.gpkg" in said, r.stderr
    for k, p in {p["candidate_id"]: p for p in _features(out)}.items():
        assert (p["管理事務所"], p["延長"]) == ((None, None) if k in gone else (ran[k]["管理事務所"], ran[k]["延長"]))


def test_repeated_ids_never_collide_with_an_id_of_the_file(tmp_path):
    """``R``, ``R``, ``R-1``: the second R is ``R-2`` (``R-1`` is the file's own), ids stay unique."""
    from detector.roads import _dedupe_ids

    assert _dedupe_ids(np.array(["R", "R", "R-1", "R"], dtype=object)).tolist() == ["R", "R-2", "R-1", "R-3"]


def test_readme_export_examples_run_as_written(sample, tmp_path):
    """Every `patrol export` line of the README's weekly workflow, run as written with the city's config (here one
    that keeps road fields, as the README asks to pass it to every command): each succeeds. Step 5 (Shapefile,
    --crs) had no --roads and stopped with exit 2 under such a config. Step 9's district file (管区.gpkg) is made
    here: the network's extent cut in a north and a south office."""
    import shlex

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("The registry (`--store`) remembers every damage", 1)[1].split("```", 2)[1]
    lines = [ln.split("#", 1)[0].strip() for ln in block.splitlines() if ln.startswith("patrol export ")]
    assert len(lines) >= 3 and any("--format shp" in ln for ln in lines), lines
    reg = tmp_path / "registry.gpkg"
    reg.write_bytes(sample["store"].read_bytes())
    if any("--area 管区.gpkg" in ln for ln in lines):  # step 9: a district office's file, its polygons named
        import geopandas as gpd
        from shapely.geometry import box

        net = gpd.read_file(sample["work"] / "ledger.gpkg")
        x0, y0, x1, y1 = net.total_bounds
        mid = (y0 + y1) / 2
        gpd.GeoDataFrame({"名称": ["北部土木事務所", "南部土木事務所"]},
                         geometry=[box(x0, mid, x1, y1), box(x0, y0, x1, mid)], crs=net.crs).to_file(
            tmp_path / "管区.gpkg", engine="pyogrio")
    for ln in lines:
        args = shlex.split(ln)[1:]
        args = [str(sample["work"] / "ledger.gpkg") if a == "R" else a for a in args]
        out = args[args.index("--out") + 1]
        ok(patrol(*args, "--config", sample["cfg"], cwd=tmp_path))
        assert (tmp_path / out).is_file(), ln


# ------------------------------------------------------------------------------------------------ kept field types


def _add_blob(gpkg: Path, column: str) -> None:
    """A BLOB column (a scanned drawing, as ledgers keep them) added to a GeoPackage with SQLite, as a GIS would: GDAL
    reads it as binary. The GeoPackage's rtree triggers name spatial functions SQLite must know to prepare the
    UPDATE; they never run (the fids and geometries stay)."""
    con = sqlite3.connect(gpkg)
    try:
        for fn in ("ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):
            con.create_function(fn, 1, lambda g: 0)
        table = con.execute("SELECT table_name FROM gpkg_contents").fetchone()[0]
        con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}" BLOB')
        con.execute(f'UPDATE "{table}" SET "{column}" = x\'ad0100ff\' WHERE fid % 3 = 0')
        con.commit()
    finally:
        con.close()


def test_a_blob_field_is_refused_naming_file_and_field(sample, tmp_path):
    """A kept BLOB column was written as ``b'\\xad\\x01…'`` text in every list: refused when the network is loaded,
    one line naming the file and the field, exit 3, nothing written."""
    import pyogrio

    dst = tmp_path / "drawings.gpkg"
    dst.write_bytes((sample["work"] / "ledger.gpkg").read_bytes())
    _add_blob(dst, "図面")
    info = pyogrio.read_info(dst)
    assert "図面" in list(info["fields"])
    cfg = _config_keeping(sample, "  keep_fields: [管理事務所, 図面]\n", "cfg_blob.yaml")
    r = patrol("export", sample["store"], "--format", "csv", "--out", tmp_path / "x.csv", "--roads", dst,
               "--config", cfg)
    assert_user_error(r, 3, "drawings.gpkg", "'図面'", "binary data (a BLOB)")
    assert not (tmp_path / "x.csv").exists()


def test_booleans_in_every_format(sample, tmp_path):
    """A ledger's true/false field with gaps (舗装済: paved, unknown for some): GeoJSON and the html true/false/null,
    xlsx boolean cells, the GeoPackage a BOOLEAN column, the Shapefile a dBASE logical field (T/F/?), the CSVs
    (repair_list.csv too) and KML the text TRUE/FALSE (as Excel writes them); empty where unknown. Before, GDAL's
    floats for a boolean column with gaps came out as 1.0/0.0."""
    import geopandas as gpd
    import openpyxl
    import pyogrio

    from detector.export import write_repair_list
    from detector.roads import join_fields
    from detector.store import Store

    g = gpd.read_file(sample["work"] / "ledger.gpkg")
    arc = g["segment_id"].str.split("-").str[-1].astype(int)
    g["舗装済"] = pd.array([None if a % 5 == 0 else bool(x >= 50) for a, x in zip(arc, g["延長"])], dtype="boolean")
    g.to_file(tmp_path / "paved.gpkg", driver="GPKG")
    want = {s: (None if pd.isna(v) else bool(v)) for s, v in zip(g["segment_id"], g["舗装済"])}
    cfg_path = _config_keeping(sample, "  keep_fields: [舗装済]\n", "cfg_bool.yaml")
    ex = {}
    for fmt in ("csv", "xlsx", "geojson", "gpkg", "kml", "shp", "html"):
        ex[fmt] = tmp_path / f"b.{fmt}"
        ok(patrol("export", sample["store"], "--format", fmt, "--out", ex[fmt], "--roads", tmp_path / "paved.gpkg",
                  "--config", cfg_path))
    text = {True: "TRUE", False: "FALSE", None: ""}
    geo = _features(ex["geojson"])
    assert {type(p["舗装済"]) for p in geo} == {bool, type(None)}, "the sample's damages should meet all three"
    assert all(p["舗装済"] == want[p["segment_id"]] for p in geo)
    rows = list(csv.DictReader(ex["csv"].read_text(encoding="utf-8-sig").splitlines()))
    assert [r["舗装済"] for r in rows] == [text[want[r["segment_id"]]] for r in rows]
    ws = openpyxl.load_workbook(ex["xlsx"])["candidates"]
    heads = [c.value for c in ws[1]]
    seg, col = heads.index("区間ID\nsegment id"), heads.index("舗装済")
    assert all(r[col] is want[r[seg]] for r in ws.iter_rows(min_row=2, values_only=True))
    con = sqlite3.connect(ex["gpkg"])
    try:
        decl = {r[1]: r[2] for r in con.execute("PRAGMA table_info(candidates)")}
        got = con.execute('SELECT segment_id, "舗装済" FROM candidates').fetchall()
    finally:
        con.close()
    assert decl["舗装済"] == "BOOLEAN" and all(v == (None if want[s] is None else int(want[s])) for s, v in got)
    for pm in ET.parse(ex["kml"]).iter(f"{KML}Placemark"):
        d = {e.get("name"): (e.find(f"{KML}value").text or "") for e in pm.iter(f"{KML}Data")}
        assert d["舗装済"] == text[want[d["segment_id"]]]
    info = pyogrio.read_info(ex["shp"])
    assert dict(zip(info["fields"], info["dtypes"]))["舗装済"] == "bool"
    shp = pyogrio.read_dataframe(ex["shp"])
    assert all((pd.isna(v) and want[s] is None) or (not pd.isna(v) and bool(v) is want[s])
               for s, v in zip(shp["segment_id"], shp["舗装済"]))
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>',
                                ex["html"].read_text(encoding="utf-8"), re.S).group(1))
    assert all(c["舗装済"] == want[c["segment_id"]] for c in data["candidates"])
    # a run's repair_list.csv, written from the registry's frame joined the same way
    with Store(sample["store"]) as st:
        df = st.query(lists=False)
    df, _ = join_fields(df, load_roads(tmp_path / "paved.gpkg", load_config(cfg_path)), load_config(cfg_path))
    write_repair_list(df, tmp_path / "repair_list.csv", road_fields=["舗装済"])
    rows = list(csv.DictReader((tmp_path / "repair_list.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert [r["舗装済"] for r in rows] == [text[want[r["segment_id"]]] for r in rows]


# ------------------------------------------------------------------------------------------------ the crew's list back


def test_ledger_fields_named_like_the_crews_columns_are_not_imported(sample, tmp_path):
    """A ledger's own ``checked-by`` (who checked the ledger entry) and ``Status Note`` columns, kept: import-verification
    matches a list's headings by a normalised English name (``checked-by`` and ``checked_by`` alike), so they are
    written as ``road_checked-by`` and ``road_Status Note``; the crew fills patrol's status, note and checker in the
    csv and in the xlsx, and the import applies the crew's, not the ledger's (before, the ledger's columns, which come
    first, were read as the crew's: every damage got the ledger's checker and note)."""
    import geopandas as gpd
    import openpyxl

    from detector.store import Store

    g = gpd.read_file(sample["work"] / "ledger.gpkg")
    g["checked-by"] = "台帳係"
    g["Status Note"] = np.where(g["延長"] >= 50, "舗装計画あり", "")
    g.to_file(tmp_path / "ledger.gpkg", driver="GPKG")
    cfg = _config_keeping(sample, "  keep_fields: [管理事務所, checked-by, Status Note]\n", "cfg_clash.yaml")
    store = tmp_path / "registry.gpkg"
    store.write_bytes(sample["store"].read_bytes())
    with Store(store) as st:
        new = st.query(status=["new"], lists=False)["candidate_id"].tolist()
    assert len(new) >= 6
    crew = {new[0]: ("confirmed", "幅30cm 要補修", "佐藤"), new[1]: ("not_an_issue", "影", "佐藤"),
            new[2]: ("confirmed", "ひび割れ拡大", "佐藤"), new[3]: ("scheduled", "12月補修", "鈴木"),
            new[4]: ("confirmed", "段差あり", "鈴木")}

    # the csv: headings are column names
    ok(patrol("export", store, "--format", "csv", "--out", tmp_path / "list.csv", "--roads", tmp_path / "ledger.gpkg",
              "--config", cfg))
    text = (tmp_path / "list.csv").read_text(encoding="utf-8-sig")
    rows = list(csv.reader(text.splitlines()))
    head = rows[0]
    assert "road_checked-by" in head and "road_Status Note" in head and "checked-by" not in head, head
    assert head.index("road_checked-by") < head.index("checked_by")  # the ledger's come first, after road_name
    cid, st_, note, who = (head.index(c) for c in ("candidate_id", "status", "status_note", "checked_by"))
    for r in rows[1:]:
        if r[cid] in list(crew)[:3]:
            r[st_], r[note], r[who] = crew[r[cid]]
    with open(tmp_path / "list.csv", "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(rows)
    r = ok(patrol("import-verification", store, tmp_path / "list.csv", "--config", cfg))
    assert "applied 3" in r.stdout and "not applied 0" in r.stdout, r.stdout

    # the workbook: two-line headings, matched by their English line
    ok(patrol("export", store, "--format", "xlsx", "--out", tmp_path / "list.xlsx", "--roads",
              tmp_path / "ledger.gpkg", "--config", cfg))
    wb = openpyxl.load_workbook(tmp_path / "list.xlsx")
    ws = wb["candidates"]
    heads = [c.value for c in ws[1]]
    assert "road_checked-by" in heads and "road_Status Note" in heads, heads
    from detector.report import LIST_COLUMNS

    at = {c: heads.index(f"{ja}\n{en}") for c, ja, en in LIST_COLUMNS if c in ("candidate_id", "status", "status_note",
                                                                                "checked_by")}
    for row in ws.iter_rows(min_row=2):
        k = row[at["candidate_id"]].value
        if k in list(crew)[3:]:
            for c, v in zip(("status", "status_note", "checked_by"), crew[k]):
                row[at[c]].value = v
    wb.save(tmp_path / "list.xlsx")
    r = ok(patrol("import-verification", store, tmp_path / "list.xlsx", "--config", cfg))
    assert "applied 2" in r.stdout and "not applied 0" in r.stdout, r.stdout

    with Store(store) as st:
        q = st.query(lists=False).set_index("candidate_id")
    for k, (status, note, who) in crew.items():
        assert (q.at[k, "status"], q.at[k, "status_note"], q.at[k, "checked_by"]) == (status, note, who), k
    untouched = [k for k in new if k not in crew]
    assert (q.loc[untouched, "status"] == "new").all() and q.loc[untouched, "checked_by"].isna().all()


def test_registry_segments_export_is_the_runs(sample):
    """`patrol export --format segments` of a registry that holds one run (both passes, every damage new) is that
    run's segments.geojson, row for row, kept road fields included (after road_name, the network's types), and the
    period of each segment's frames after them in both (first_surveyed, last_surveyed; before: the run's file had
    none); the GeoPackage holds the same with INTEGER / REAL fields."""
    w = sample["work"]
    for ext in ("geojson", "gpkg"):
        ok(patrol("export", sample["store"], "--format", "segments", "--out", w / f"net.{ext}", "--roads",
                  w / "ledger.gpkg", "--config", sample["cfg"]))
    run = _features(sample["out"] / "segments.geojson")
    reg = _features(w / "net.geojson")
    assert len(reg) == len(run) > 0
    for a, b in zip(run, reg):
        assert list(b) == list(a) and list(a)[-2:] == ["first_surveyed", "last_surveyed"], (list(a), list(b))
        assert {k: b[k] for k in a} == a, (a["segment_id"], a["level"])
    assert {p["first_surveyed"][:10] for p in reg if p["surveyed_m"]} <= {"2026-11-20", "2026-11-27"}
    con = sqlite3.connect(w / "net.gpkg")
    try:
        rows = con.execute('SELECT segment_id, level, "路線番号", "延長", typeof("路線番号"), typeof("延長") '
                           "FROM segments").fetchall()
    finally:
        con.close()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [(p["segment_id"], p["level"], p["路線番号"], p["延長"])
                                                         for p in reg]
    assert {r[4] for r in rows} <= {"integer", "null"} and {r[5] for r in rows} == {"real"}
