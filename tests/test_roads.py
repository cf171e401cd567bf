"""load_roads: formats, ids, names, CRS, errors."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString, MultiLineString, Point

from conftest import need
from detector.config import Config, RoadsSpec
from detector.errors import InputError
from detector.roads import load_roads


def _gj(tmp_path, feats, name="r.geojson", crs=None):
    d = {"type": "FeatureCollection", "features": feats}
    if crs:
        d["crs"] = {"type": "name", "properties": {"name": crs}}
    p = tmp_path / name
    p.write_text(json.dumps(d))
    return p


def _line(coords, **props):
    return {"type": "Feature", "properties": props, "geometry": {"type": "LineString", "coordinates": coords}}


def test_toyama_geojson(toyama):
    net = load_roads(toyama / "roads.geojson", Config())
    assert len(net) > 10_000
    assert net.crs.to_epsg() == 32653  # UTM 53N
    assert net.ids[0].startswith("00000037-")
    assert len(set(net.ids)) == len(net.ids)
    lon, lat = net.lonlat(*net.xy([137.2363], [36.6869]))
    assert lon[0] == pytest.approx(137.2363, abs=1e-7) and lat[0] == pytest.approx(36.6869, abs=1e-7)


@pytest.mark.parametrize("name,epsg", [("andorra.osm.pbf", 32631), ("campo-grande.osm.gz", 32721)])
def test_osm(roads_dir, name, epsg):
    net = load_roads(roads_dir / "osm" / name, Config())
    assert net.crs.to_epsg() == epsg  # Campo Grande: southern hemisphere, western longitude
    assert len(net) > 1000
    assert any(n for n in net.names)  # names kept
    assert net.ids.dtype == object and len(set(net.ids)) == len(net.ids)


def test_multiline_exploded_ids_and_name(tmp_path):
    feats = [
        {"type": "Feature", "properties": {"id": "A", "road_name": "国道8号"},
         "geometry": {"type": "MultiLineString", "coordinates": [[[137.0, 36.0], [137.001, 36.0]], [[137.002, 36.0], [137.003, 36.0]]]}},
        _line([[137.0, 36.001], [137.001, 36.001]], id="B", road_name="x"),
    ]
    net = load_roads(_gj(tmp_path, feats), Config())
    assert list(net.ids) == ["A#0", "A#1", "B"]
    assert list(net.names) == ["国道8号", "国道8号", "x"]


def test_stable_hash_ids_and_configured_fields(tmp_path):
    feats = [_line([[137.0, 36.0], [137.001, 36.0]], name="n1"), _line([[137.0, 36.001], [137.001, 36.001]], name="n2")]
    a = load_roads(_gj(tmp_path, feats), Config())
    b = load_roads(_gj(tmp_path, feats, "r2.geojson"), Config())
    assert list(a.ids) == list(b.ids)
    assert all(i.startswith("seg-") and len(i) == 12 for i in a.ids)
    cfg = Config(roads=RoadsSpec(id_field="name", name_field="name"))
    assert list(load_roads(_gj(tmp_path, feats), cfg).ids) == ["n1", "n2"]
    with pytest.raises(InputError, match="id_x"):
        load_roads(_gj(tmp_path, feats), Config(roads=RoadsSpec(id_field="id_x")))
    assert load_roads(_gj(tmp_path, feats), cfg).warnings == []
    # a configured id column with repeated values: told apart, and said (the run summary shows net.warnings)
    dup = feats + [_line([[137.0, 36.002], [137.001, 36.002]], name="n1")]
    net = load_roads(_gj(tmp_path, dup, "dup.geojson"), cfg)
    assert list(net.ids) == ["n1", "n2", "n1-1"]
    assert len(net.warnings) == 1 and "1 segment repeats an id of the 'name' column" in net.warnings[0]


def test_gpkg_and_shapefile_and_projected_crs(tmp_path):
    g = gpd.GeoDataFrame({"segment_id": ["s1", "s2"]},
                         geometry=[LineString([(500000, 4000000), (500100, 4000000)]), LineString([(500000, 4000050), (500100, 4000050)])],
                         crs=32653)
    g.to_file(tmp_path / "r.gpkg")
    g.to_file(tmp_path / "r.shp")
    for p in (tmp_path / "r.gpkg", tmp_path / "r.shp"):
        net = load_roads(p, Config())
        assert list(net.ids) == ["s1", "s2"]
        assert net.lengths[0] == pytest.approx(100.0, abs=0.01)


@pytest.mark.filterwarnings("ignore:.crs. was not provided")
def test_no_crs_lonlat_assumed_and_metric_rejected(tmp_path):
    g = gpd.GeoDataFrame({"segment_id": ["s1"]}, geometry=[LineString([(137.0, 36.0), (137.001, 36.0)])])
    g.to_file(tmp_path / "a.shp")
    assert load_roads(tmp_path / "a.shp", Config()).crs.to_epsg() == 32653
    g = gpd.GeoDataFrame({"segment_id": ["s1"]}, geometry=[LineString([(500000, 4000000), (500100, 4000000)])])
    g.to_file(tmp_path / "b.shp")
    with pytest.raises(InputError, match="no CRS.*roads.crs"):
        load_roads(tmp_path / "b.shp", Config())


@pytest.mark.filterwarnings("ignore:.crs. was not provided")
def test_roads_crs_names_the_crs_of_a_file_without_one(tmp_path):
    """A municipal Shapefile in JGD2011 (EPSG:6675) that lost its .prj, and a GeoJSON in projected metres: with
    roads.crs they load where the same network with its CRS does; a file that has a CRS keeps it."""
    ref = gpd.GeoDataFrame({"segment_id": ["s1"]}, geometry=[LineString([(137.2, 36.68), (137.201, 36.68)])], crs=4326)
    jgd = ref.to_crs(6675)
    jgd.to_file(tmp_path / "with.shp")
    jgd.set_crs(None, allow_override=True).to_file(tmp_path / "without.shp")
    fc = json.loads(jgd.to_json(drop_id=True))
    fc.pop("crs", None)
    (tmp_path / "gj.geojson").write_text(json.dumps(fc))  # metres, no crs member
    cfg = Config(roads=RoadsSpec(crs="EPSG:6675"))
    want = load_roads(tmp_path / "with.shp", Config())
    for p in (tmp_path / "without.shp", tmp_path / "gj.geojson"):
        with pytest.raises(InputError, match="roads.crs"):
            load_roads(p, Config())
        net = load_roads(p, cfg)
        assert net.crs == want.crs and net.lengths[0] == pytest.approx(want.lengths[0], abs=0.01)
        assert np.allclose(net.xy([137.2005], [36.68]), want.xy([137.2005], [36.68]))
    wrong = Config(roads=RoadsSpec(crs="EPSG:6677"))  # another zone: ignored, the file's own CRS wins
    assert load_roads(tmp_path / "with.shp", wrong).lengths[0] == pytest.approx(want.lengths[0], abs=0.01)
    with pytest.raises(ValueError, match="unknown CRS 'EPSG:99999999'"):  # refused with the config (exit 4)
        RoadsSpec(crs="EPSG:99999999")


@pytest.mark.filterwarnings("ignore:.crs. was not provided")
def test_roads_crs_in_degrees_for_projected_coordinates_is_refused(tmp_path):
    """roads.crs: JGD2011 (the datum, in degrees) for a zone VI Shapefile without .prj read its metres as degrees
    and ended in 'network lon inf..inf'; it is refused naming roads.crs and what to write instead."""
    ref = gpd.GeoDataFrame({"路線ID": ["u1"]}, geometry=[LineString([(135.8, 34.9), (135.801, 34.9)])], crs=4326)
    ref.to_crs(6674).set_crs(None, allow_override=True).to_file(tmp_path / "uji.shp")
    for given in ("JGD2011", "EPSG:4326"):
        with pytest.raises(InputError, match=r"roads\.crs: .*longitude/latitude.*projected CRS") as e:
            load_roads(tmp_path / "uji.shp", Config(roads=RoadsSpec(crs=given)))
        assert str(e.value).startswith(str(tmp_path / "uji.shp"))
    assert load_roads(tmp_path / "uji.shp", Config(roads=RoadsSpec(crs="EPSG:6674"))).lengths[0] > 80


def test_errors_one_line(tmp_path):
    (tmp_path / "empty.geojson").write_text("")
    pts = _gj(tmp_path, [{"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [137, 36]}}], "p.geojson")
    (tmp_path / "bad.geojson").write_text("{not json")
    (tmp_path / "r.txt").write_text("x")
    cases = [(tmp_path / "empty.geojson", "empty"), (pts, r"no LineString features \(found Point\)"),
             (tmp_path / "bad.geojson", "cannot read"), (tmp_path / "r.txt", "unknown road network format"),
             (tmp_path / "missing.geojson", "not found")]
    for p, msg in cases:
        with pytest.raises(InputError, match=msg) as e:
            load_roads(p, Config())
        assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_bearing_and_touching(tmp_path):
    feats = [_line([[137.0, 36.0], [137.0, 36.001]], id="N"), _line([[137.0, 36.001], [137.001, 36.001]], id="E"),
             _line([[137.002, 36.0], [137.002, 36.001]], id="F")]
    net = load_roads(_gj(tmp_path, feats), Config())
    b = net.bearing_at(np.array([0, 1]), np.array([10.0, 10.0]))
    assert (b[0] + net.convergence_deg) % 360 == pytest.approx(0.0, abs=0.5) or abs(b[0] + net.convergence_deg - 360) < 0.5
    assert (b[1] + net.convergence_deg) == pytest.approx(90.0, abs=0.5)
    assert list(net.touching(np.array([0, 0]), np.array([1, 2]))) == [True, False]


def test_geopackage_with_several_layers(tmp_path):
    """The one layer of lines is found by itself; otherwise the error lists the layers for roads.layer."""
    lines = gpd.GeoDataFrame({"segment_id": ["s1", "s2"]}, geometry=[LineString([(137.0, 36.0), (137.001, 36.0)]),
                                                                     LineString([(137.0, 36.001), (137.001, 36.001)])], crs=4326)
    pts = gpd.GeoDataFrame({"a": [1]}, geometry=[Point(137.0, 36.0)], crs=4326)
    two, three = tmp_path / "two.gpkg", tmp_path / "three.gpkg"
    pts.to_file(two, layer="a_points")
    lines.to_file(two, layer="b_roads")
    assert list(load_roads(two, Config()).ids) == ["s1", "s2"]
    pts.to_file(three, layer="a_points")
    lines.to_file(three, layer="b_roads")
    lines.head(1).to_file(three, layer="c_more")
    with pytest.raises(InputError, match=r"several layers \(a_points \(Point\), b_roads \(LineString\), c_more"):
        load_roads(three, Config())
    assert list(load_roads(three, Config(roads=RoadsSpec(layer="c_more"))).ids) == ["s1"]
    with pytest.raises(InputError, match=r"roads.layer: no layer 'nope'; layers: a_points \(Point\)"):
        load_roads(two, Config(roads=RoadsSpec(layer="nope")))


# ------------------------------------------------------------------------- a Shapefile .dbf that names no encoding
def _ledger_shp(roads_dir, folder, encoding: str, columns=("路線ID", "路線名", "事務所")):
    """The real Kyoto–Uji network (Kubicka 00000099) as a city's road ledger Shapefile: JGD2011 zone VI (EPSG:6674)
    metres, Japanese route ids, names and offices written in ``encoding``, without the .cpg and .prj that older
    Japanese GIS and ledger systems do not write (the .dbf's language driver id left 0, as GDAL writes it)."""
    from pathlib import Path

    from conftest import need
    from test_locate import kubicka_network

    folder.mkdir(parents=True, exist_ok=True)
    gj, _ = kubicka_network(need(roads_dir / "kubicka" / "00000099"), folder)
    g = gpd.read_file(gj)
    route = np.arange(len(g)) // 7
    offices = np.array(["宇治土木事務所", "北部道路維持事務所", "南部道路維持事務所"])
    led = gpd.GeoDataFrame({columns[0]: [f"宇治{r:05d}" for r in route], columns[1]: [f"市道宇治{r}号線" for r in route],
                            columns[2]: offices[route % 3]}, geometry=g.geometry, crs=4326).to_crs(6674)
    shp = Path(folder) / "道路台帳.shp"
    led.to_file(shp, encoding=encoding)
    for ext in (".cpg", ".prj"):
        shp.with_suffix(ext).unlink(missing_ok=True)
    assert shp.with_suffix(".dbf").read_bytes()[29] == 0
    return shp, led


@pytest.mark.parametrize("encoding,label", [("cp932", "Shift_JIS (cp932)"), ("utf-8", "UTF-8")])
def test_shapefile_without_cpg_is_read_in_the_encoding_its_text_has(roads_dir, tmp_path, encoding, label):
    """GDAL reads such a .dbf as ISO-8859-1: the Japanese column names no config could name (路線ID came out as
    'HüID') and, with ASCII column names, every road name and office silently garbled in every output. patrol reads
    it as the encoding its text decodes in and says so once, with what to do if that is wrong."""
    shp, led = _ledger_shp(roads_dir, tmp_path / encoding, encoding)
    cfg = Config(roads=RoadsSpec(id_field="路線ID", name_field="路線名", keep_fields=["事務所"], crs="EPSG:6674"))
    net = load_roads(shp, cfg)
    assert len(net.ids) == len(led)
    assert net.names[:8].tolist() == led["路線名"][:8].tolist()
    assert set(net.fields["事務所"]) == set(led["事務所"])
    said = [w for w in net.warnings if "道路台帳.dbf" in w]
    assert len(said) == 1 and f"read as {label}" in said[0] and "roads.encoding" in said[0] and ".cpg" in said[0]

    # ASCII column names (the 10-byte limit makes ledgers use romaji) with Japanese values: nothing failed before,
    # the names were simply wrong
    shp2, led2 = _ledger_shp(roads_dir, tmp_path / f"{encoding}-ascii", encoding, ("ROSEN_ID", "ROSEN_MEI", "OFFICE"))
    net2 = load_roads(shp2, Config(roads=RoadsSpec(id_field="ROSEN_ID", name_field="ROSEN_MEI", crs="EPSG:6674")))
    assert net2.names[:8].tolist() == led2["ROSEN_MEI"][:8].tolist()
    assert net2.ids[0] == "宇治00000"


def test_shapefile_encoding_setting_and_cpg_win(roads_dir, tmp_path):
    """``roads.encoding`` reads such a file as told, without a warning; a .cpg beside it is GDAL's to read (no guess,
    no warning); an unknown encoding is a config error naming the field."""
    from detector.config import load_config
    from detector.errors import ConfigError

    shp, led = _ledger_shp(roads_dir, tmp_path / "a", "cp932")
    net = load_roads(shp, Config(roads=RoadsSpec(id_field="路線ID", name_field="路線名", crs="EPSG:6674",
                                                 encoding="cp932")))
    assert net.names[0] == led["路線名"][0] and not [w for w in net.warnings if ".dbf" in w]
    shp.with_suffix(".cpg").write_text("932")
    net = load_roads(shp, Config(roads=RoadsSpec(id_field="路線ID", name_field="路線名", crs="EPSG:6674")))
    assert net.names[0] == led["路線名"][0] and not [w for w in net.warnings if ".dbf" in w]
    bad = tmp_path / "city.yaml"
    bad.write_text("roads:\n  encoding: shift-jiss\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    assert "roads.encoding" in str(e.value) and "shift-jiss" in str(e.value)


def test_locate_crs_that_stretches_distances_at_the_network_is_refused(tmp_path):
    """locate.crs in metres but not on the ground here: Web Mercator (EPSG:3857) makes every distance at Toyama
    25 % long (snap, dedupe and match distances of the config would shrink by that), a UTM zone of Europe 22 %:
    refused naming locate.crs, the stretch and what to give. The plane rectangular zone and the UTM zone pass,
    and so does another Japanese zone (0.6 % off at Toyama: within MAX_SCALE_ERROR)."""
    from conftest import TOYAMA, need
    from detector.config import LocateSpec

    roads = need(TOYAMA / "roads.geojson")
    for code, pct in (("EPSG:3857", "24.7%"), ("EPSG:32631", "22.2%")):
        with pytest.raises(InputError, match=rf"locate\.crs: locate\.crs {code} .* stretches distances by {pct}") as e:
            load_roads(roads, Config(locate=LocateSpec(crs=code)))
        assert "EPSG:6675" in str(e.value) and "roads.geojson" in str(e.value)
    base = load_roads(roads, Config(locate=LocateSpec(crs="EPSG:6675")))
    for code in ("EPSG:32653", "EPSG:6669"):
        net = load_roads(roads, Config(locate=LocateSpec(crs=code)))
        assert net.lengths.sum() == pytest.approx(base.lengths.sum(), rel=0.01)


def test_wrong_name_field_lists_the_columns(roads_dir):
    """A mistyped roads.name_field (`nom` for an OSM `name`) is refused naming the file, the field and the columns
    the network has, as a mistyped id_field is: the engineer sees the right spelling in the one line."""
    path = need(roads_dir / "osm" / "andorra.osm.pbf")
    for spec, field in ((RoadsSpec(name_field="nom"), "nom"), (RoadsSpec(id_field="ID"), "ID")):
        with pytest.raises(InputError) as e:
            load_roads(path, Config(roads=spec))
        msg = str(e.value)
        assert msg.startswith(str(path)) and f": {field}: " in msg, msg
        assert "columns: osm_id, name, highway" in msg, msg
