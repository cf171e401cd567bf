"""Every GeoPackage `patrol export` writes opens styled in QGIS (README: opens styled in QGIS): the damages
(`--format gpkg`), the condition of the network (`--format segments`), the segments due (`--format due`) and the
repair jobs (`--format jobs`) each carry their layer's default style in `layer_styles`, as QGIS saves one. No QGIS
here: the table is checked as QGIS selects from it (QgsOgrUtils::loadStoredStyle), each .qml parsed, its categories
or rules against the layer's own values, each rule's filter run by SQLite on the file (the filters use only what QGIS
expressions and SQLite read alike), and GDAL/pyogrio/geopandas read every layer as before, with no warning. Real
data: the registry of the sample drive's two passes with their frames (tests/test_export_segments.py's fixture)."""

from __future__ import annotations

import shutil
import sqlite3
import warnings
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from conftest import TOYAMA
from detector import report
from detector.qgisstyle import rgba
from test_export_segments import patrol, registry  # noqa: F401 (the fixture)
from test_store_passes import sample  # noqa: F401 (the fixture registry needs)

ROADS = TOYAMA / "roads.geojson"
#: file -> (its export's arguments, its layer, the layer's geometry type)
EXPORTS = {"damages.gpkg": (("--format", "gpkg"), "candidates", "Point"),
           "condition.gpkg": (("--format", "segments", "--roads", ROADS), "segments", "LineString"),
           "due.gpkg": (("--format", "due", "--roads", ROADS, "--at", "2026-12-20"), "patrol_due", "LineString"),
           "jobs.gpkg": (("--format", "jobs", "--roads", ROADS), "repair_jobs", "Polygon")}


@pytest.fixture(scope="module")
def exports(registry, tmp_path_factory):  # noqa: F811
    """The four GeoPackages of one registry, as `patrol export` writes them (a copy of the registry: the jobs list
    records its ids)."""
    tmp = tmp_path_factory.mktemp("qgis")
    store = tmp / "registry.gpkg"
    shutil.copy(registry[0], store)
    for name, (args, _, _) in EXPORTS.items():
        r = patrol("export", store, *args, "--out", tmp / name)
        assert r.returncode == 0, f"{name}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return tmp


def styles(path) -> list[dict]:
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM layer_styles ORDER BY id")]
    finally:
        con.close()


def qml_of(path, layer: str) -> ET.Element:
    """The .qml QGIS applies when ``layer`` is added: its table's default row (loadStoredStyle's selection)."""
    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT styleQML FROM layer_styles WHERE f_table_schema = '' AND f_table_name = ? AND "
                           "f_geometry_column = (SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?) "
                           "AND useAsDefault", (layer, layer)).fetchall()
    finally:
        con.close()
    assert len(rows) == 1, rows
    text = rows[0][0]
    assert text.startswith("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>")
    return ET.fromstring(text)


def count(path, layer: str, where: str, *args) -> int:
    con = sqlite3.connect(path)
    try:
        return con.execute(f'SELECT COUNT(*) FROM "{layer}" WHERE {where}', args).fetchone()[0]
    finally:
        con.close()


def symbol_color(ren: ET.Element, name: str) -> str:
    (sym,) = [s for s in ren.find("symbols") if s.get("name") == name]
    props = {p.get("k"): p.get("v") for p in sym.iter("prop")}
    return props.get("color") or props["line_color"]


def test_each_gpkg_carries_one_default_style_per_layer_and_reads_as_before(exports):
    """layer_styles is a table QGIS and GDAL know: registered as attributes (as GDAL registers the one QGIS makes),
    GDAL's row count right, listed after the layer (read_file without a layer name still reads the layer); one
    default row per layer, named as QGIS selects it; every layer reads with no GDAL warning, and exactly as it reads
    without the table; GDAL writes a further style into it (QGIS's "save style") as into its own."""
    import geopandas as gpd
    import pyogrio
    from geopandas.testing import assert_geodataframe_equal

    for name, (_, layer, kind) in EXPORTS.items():
        path = exports / name
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert [tuple(x) for x in pyogrio.list_layers(path)] == [(layer, kind), ("layer_styles", None)], name
            info = pyogrio.read_info(path, layer="layer_styles")
            g = gpd.read_file(path, layer=layer)
            table = pyogrio.read_dataframe(path, layer="layer_styles")
        assert not caught, (name, [str(w.message) for w in caught])
        n = 2 if name == "damages.gpkg" else 1  # the damages: by class (the default) and by status
        assert info["features"] == n and info["geometry_type"] is None and info["fid_column"] == "id"
        assert dict(zip(info["fields"], info["ogr_subtypes"]))["useAsDefault"] == "OFSTBoolean"
        assert str(table["update_time"].dtype).startswith("datetime64")
        con = sqlite3.connect(path)
        try:
            assert con.execute("SELECT data_type, identifier FROM gpkg_contents WHERE table_name = 'layer_styles'"
                               ).fetchone() == ("attributes", "layer_styles")
            (geom,) = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?",
                                  (layer,)).fetchone()
        finally:
            con.close()
        rows = styles(path)
        assert [r["useAsDefault"] for r in rows] == [1, 0][:n], name
        for row in rows:
            assert (row["f_table_catalog"], row["f_table_schema"], row["f_table_name"], row["f_geometry_column"]
                    ) == ("", "", layer, geom), name
            assert len(row["styleName"]) <= 30 and "patrol" in row["description"]

        bare = exports / f"bare-{name}"  # the same file without the table
        shutil.copy(path, bare)
        con = sqlite3.connect(bare)
        with con:
            con.execute("DROP TABLE layer_styles")
            con.execute("DELETE FROM gpkg_contents WHERE table_name = 'layer_styles'")
            con.execute("DELETE FROM gpkg_ogr_contents WHERE table_name = 'layer_styles'")
        con.close()
        assert_geodataframe_equal(g, gpd.read_file(bare, layer=layer))
        packed = exports / f"packed-{name}"
        shutil.copy(path, packed)
        for f in (packed, bare):  # each as small as SQLite packs it: the table's own pages apart
            con = sqlite3.connect(f)
            con.execute("VACUUM")
            con.close()
        # at most three pages (the damages' two styles: four)
        assert len(g) and 0 < packed.stat().st_size - bare.stat().st_size <= 4096 * (2 + n), name

    path = exports / "jobs.gpkg"  # a style saved through GDAL, as QGIS saves one: a second row, counted
    more = table.assign(styleName="mine", useAsDefault=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pyogrio.write_dataframe(more, path, layer="layer_styles", driver="GPKG", append=True)
        assert pyogrio.read_info(path, layer="layer_styles")["features"] == 2
    assert not caught, [str(w.message) for w in caught]
    assert qml_of(path, "repair_jobs").get("labelsEnabled") == "1"  # still the default


def test_damages_by_class_in_the_maps_colours(exports):
    """Categorized by class: exactly the layer's classes, in report.html's colours, labelled as its legend; sized by
    severity (a column of the layer); the damage ids as labels, set up but off."""
    path = exports / "damages.gpkg"
    root = qml_of(path, "candidates")
    ren = root.find("renderer-v2")
    assert (ren.get("type"), ren.get("attr")) == ("categorizedSymbol", "class")
    cats = ren.find("categories")
    values = [c.get("value") for c in cats]
    con = sqlite3.connect(path)
    names = dict((c, (ja, en)) for c, ja, en in con.execute("SELECT DISTINCT class, class_name_ja, class_name "
                                                            "FROM candidates"))
    con.close()
    assert values == sorted(names) == ["D00", "D10", "D20", "D40"]
    for c in cats:
        v = c.get("value")
        assert c.get("label") == f"{v} {names[v][0]} / {names[v][1]}"
        assert symbol_color(ren, c.get("symbol")) == rgba(report.CLASS_COLORS[v], 0.92)
    assert "D40 ポットホール / pothole" in [c.get("label") for c in cats]
    sizes = {o.get("value") for o in ren.iter("Option") if o.get("name") == "expression"}
    assert sizes == {'coalesce(scale_linear("severity", 0, 100, 2.5, 5.5), 4)'}
    assert count(path, "candidates", '"severity" IS NOT NULL') == count(path, "candidates", "1") == 31
    assert ren.find("orderby/orderByClause").text == '"severity"'
    assert root.get("labelsEnabled") == "0" and root.find("labeling/settings/text-style").get("fieldName") == \
        "candidate_id"


def test_condition_by_level_and_condition_as_the_maps_condition_layer(exports):
    """One group of rules per level (the whole segments on, the bins off: they lie over their segment); under each,
    the conditions its rows have, in report.html's colours and words, and the grey kinds: each rule selects rows, the
    rules of a level select every row of it once (but for a bin neither surveyed nor damaged, which is not drawn, as
    report.html draws none)."""
    path = exports / "condition.gpkg"
    ren = qml_of(path, "segments").find("renderer-v2")
    assert ren.get("type") == "RuleRenderer"
    groups = list(ren.find("rules"))
    con = sqlite3.connect(path)
    levels = [r[0] for r in con.execute('SELECT DISTINCT "level" FROM segments')]
    con.close()
    assert [g.get("filter") for g in groups] == [f"\"level\" = '{v}'" for v in levels]
    assert levels[0] == "segment" and {"bin20", "bin100"} <= set(levels)
    assert [g.get("checkstate", "1") for g in groups] == ["1"] + ["0"] * (len(levels) - 1)
    assert [g.get("label") for g in groups][:2] == ["区間 / whole segments", "20 m ごと / 20 m bins"]
    words = dict(enumerate(report.CONDITION_WORDS, start=1))
    for level, group in zip(levels, groups):
        rules = list(group)
        shown = 0
        conditions = []
        for r in rules:
            n = count(path, "segments", f"({group.get('filter')}) AND ({r.get('filter')})")
            assert n > 0, (level, r.get("filter"))
            shown += n
            if r.get("filter").startswith('"condition" = '):
                k = int(r.get("filter").split("= ")[1])
                conditions.append(k)
                assert r.get("label").startswith(f"{k} {words[k][0]} / {words[k][1]} (")
                assert symbol_color(ren, r.get("symbol")) == rgba(report.CONDITION_COLORS[k - 1], 0.9)
            else:
                assert symbol_color(ren, r.get("symbol")) in (rgba(report.NOT_VALID_COLOR, 0.9),
                                                             rgba(report.NOT_SURVEYED_COLOR, 0.9))
        have = count(path, "segments", '"level" = ? AND NOT ("condition" IS NULL AND "surveyed_m" = 0 AND '
                                       '"n_total" = 0)', level)
        assert shown == have, level
        con = sqlite3.connect(path)
        present = sorted(r[0] for r in con.execute('SELECT DISTINCT "condition" FROM segments WHERE "level" = ? AND '
                                                   '"condition" IS NOT NULL', (level,)))
        con.close()
        assert sorted(conditions) == present, level
    seg_rules = {r.get("label") for r in groups[0]}
    assert "1 良い / good (< 2)" in seg_rules and "4 やや悪い / fairly poor (10–20)" in seg_rules
    assert "判定不可 (調査 50 % 未満) / not rated (under 50 % surveyed)" in seg_rules  # the key's words


def test_due_by_state_on_the_day_planned_for(exports):
    """The due states the rows have on --at, report.html's patrol-due colours and words: every segment in exactly one
    (11,215 never surveyed, the p2 pass's 22 due within 7 days, the p1 pass's 1 due that day; none not yet due);
    jobs: the outline in the map's colour, filled at 15 %, labelled by job_id (on)."""
    path = exports / "due.gpkg"
    ren = qml_of(path, "patrol_due").find("renderer-v2")
    assert ren.get("type") == "RuleRenderer"
    rules = list(ren.find("rules"))
    got = {r.get("label"): count(path, "patrol_due", r.get("filter")) for r in rules}
    words = [f"{ja} / {en}" for ja, en in report.DUE_WORDS]
    assert got == {words[3]: 11215, words[1]: 22, words[0]: 1}
    assert sum(got.values()) == count(path, "patrol_due", "1") == 11238
    assert [symbol_color(ren, r.get("symbol")) for r in rules] == [rgba(report.DUE_COLORS[k], 0.9) for k in (3, 1, 0)]

    root = qml_of(exports / "jobs.gpkg", "repair_jobs")
    ren = root.find("renderer-v2")
    assert ren.get("type") == "singleSymbol"
    props = {p.get("k"): p.get("v") for p in ren.iter("prop")}
    assert props["color"] == rgba(report.JOB_COLOR, 0.15) and props["outline_color"] == rgba(report.JOB_COLOR, 0.9)
    assert root.get("labelsEnabled") == "1" and root.find("labeling/settings/text-style").get("fieldName") == "job_id"
    assert count(exports / "jobs.gpkg", "repair_jobs", "\"job_id\" LIKE '工区-%'") == 10


def test_second_layers_beside_the_damages(registry, tmp_path):  # noqa: F811
    """report.export's gpkg with a second layer: the registry's condition rows (registry_condition's, as the html's
    condition layer takes them) styled as the segments export's, every rule selecting rows as written; a second
    layer of other rows (a road network) left to QGIS (no style naming columns it lacks)."""
    import geopandas as gpd

    from detector.roads import load_roads
    from detector.segments import registry_condition
    from detector.store import Store

    path, cfg, _ = registry
    net = load_roads(ROADS, cfg)
    with Store.for_config(path, cfg) as st:
        df = st.query(lists=False)
        seg = registry_condition(st, net, cfg)[0]
    out = report.export(df, "gpkg", tmp_path / "c.gpkg", cfg, segments=seg)
    assert [r["f_table_name"] for r in styles(out)] == ["candidates", "candidates", "segments"]
    ren = qml_of(out, "segments").find("renderer-v2")
    assert [g.get("filter") for g in ren.find("rules")] == [f"\"level\" = '{v}'" for v in pd.unique(seg["level"])]
    for group in ren.find("rules"):
        for r in group:
            assert count(out, "segments", f"({group.get('filter')}) AND ({r.get('filter')})") > 0
    labels = {r.get("label") for r in ren.iter("rule")}
    assert "判定不可 (調査 50 % 未満) / not rated (under 50 % surveyed)" in labels

    roads = gpd.read_file(ROADS, bbox=(137.185, 36.65, 137.215, 36.67))
    out = report.export(df, "gpkg", tmp_path / "r.gpkg", cfg, segments=roads)
    assert [r["f_table_name"] for r in styles(out)] == ["candidates", "candidates"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left
