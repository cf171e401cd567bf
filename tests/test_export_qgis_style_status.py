"""The damages by status in QGIS (README: opens styled in QGIS): the damages GeoPackage (`--format gpkg`) carries a
second style of its layer, by status, beside the default by class, and the registry itself carries its own styles of
`candidates` (by status, the default, and by class), added by the first write of this patrol where they are missing,
never changing a style an office saved itself, and still read and written by the patrol before it. No QGIS here:
each style's categories counted against the layer with SQLite, as test_export_qgis_style.py does. Real data: the
registry of the sample drive's two passes (tests/test_export_segments.py's fixture), its damages given every status."""

from __future__ import annotations

import shutil
import sqlite3
import xml.etree.ElementTree as ET

import pytest

from detector import qgisstyle, report
from detector.qgisstyle import rgba
from detector.store import CLOSED_STATUSES, STATUS_LABELS, STATUSES, Store
from test_export_qgis_style import count, qml_of, styles, symbol_color
from test_export_segments import patrol, registry  # noqa: F401 (the fixture)
from test_store import old_store
from test_store_passes import sample  # noqa: F401 (the fixture registry needs)

#: the patrol before the registry's styles (0.11.0): what a PC not yet updated runs
BEFORE_STYLES_COMMIT = "ccf1a70"


@pytest.fixture(scope="module")
def statuses(registry, tmp_path_factory):  # noqa: F811
    """A copy of the registry whose damages have every status: R-000001 confirmed, 2 scheduled, 3 repaired, 4 not
    an issue, 5 repaired on a day before its sightings (reopened at once), the others new."""
    path, cfg, _ = registry
    store = tmp_path_factory.mktemp("qgis-status") / "registry.gpkg"
    shutil.copy(path, store)
    with Store.for_config(store, cfg) as st:
        st.set_status("R-000001", "confirmed")
        st.set_status("R-000002", "scheduled")
        st.set_status("R-000003", "repaired")
        st.set_status("R-000004", "not_an_issue")
        st.set_status("R-000005", "repaired", when="2020-01-06")
    return store


def style_row(path, layer: str, name: str) -> dict:
    (row,) = [r for r in styles(path) if r["f_table_name"] == layer and r["styleName"] == name]
    return row


def categories(path, layer: str, name: str) -> tuple[ET.Element, list[ET.Element]]:
    ren = ET.fromstring(style_row(path, layer, name)["styleQML"]).find("renderer-v2")
    return ren, list(ren.find("categories"))


def assert_status_categories(path, layer: str, ren: ET.Element, cats: list[ET.Element], every: bool) -> None:
    """By ``status``, each category's value a status, in report.html's list's words and badge colours, the damages of
    each status counted on the layer: every damage in one category (``every``: every status listed, else the statuses
    the layer holds, each with damages)."""
    assert (ren.get("type"), ren.get("attr")) == ("categorizedSymbol", "status")
    values = [c.get("value") for c in cats]
    held = {st: count(path, layer, '"status" = ?', st) for st in STATUSES}
    assert values == (list(STATUSES) if every else [st for st in STATUSES if held[st]])
    assert sum(count(path, layer, '"status" = ?', v) for v in values) == count(path, layer, "1")
    for c in cats:
        st = c.get("value")
        ja, en = STATUS_LABELS[st]
        assert c.get("label") == f"{ja} / {en}"
        (sym,) = [s for s in ren.find("symbols") if s.get("name") == c.get("symbol")]
        props = {p.get("k"): p.get("v") for p in sym.iter("prop")}
        bg, rim = report.STATUS_COLORS[st]
        assert (props["color"], props["outline_color"]) == (rgba(bg, 0.92), rgba(rim)), st
    # drawn in this order: the damages done with first (under), then the open ones, each by severity (on top)
    first, second = [o.text for o in ren.find("orderby")]
    assert second == '"severity"'
    drawn = [r[0] for r in sqlite3.connect(path).execute(
        f'SELECT "status" FROM "{layer}" ORDER BY {first}, "severity" IS NOT NULL, "severity"')]
    closed = sum(held[st] for st in CLOSED_STATUSES)
    assert set(drawn[:closed]) <= set(CLOSED_STATUSES) and not set(drawn[closed:]) & set(CLOSED_STATUSES)


def test_damages_gpkg_by_status_beside_the_default_by_class(statuses, tmp_path):
    """`--format gpkg`: the class style stays the default; the status style beside it (not the default, under the
    name an office looks for), one category per status the damages have, report.html's list colours and words."""
    out = tmp_path / "damages.gpkg"
    r = patrol("export", statuses, "--format", "gpkg", "--out", out)
    assert r.returncode == 0, r.stderr
    assert [(s["styleName"], s["useAsDefault"]) for s in styles(out)] == [
        ("patrol: damages by class", 1), ("patrol: 状態 / status", 0)]
    assert qml_of(out, "candidates").find("renderer-v2").get("attr") == "class"
    ren, cats = categories(out, "candidates", qgisstyle.STATUS_STYLE)
    assert_status_categories(out, "candidates", ren, cats, every=False)
    assert [count(out, "candidates", '"status" = ?', st) for st in STATUSES] == [26, 1, 1, 1, 1, 1]
    assert "新規" in style_row(out, "candidates", qgisstyle.STATUS_STYLE)["description"]


def test_registry_opens_in_qgis_by_status_and_by_class(statuses):
    """The registry itself: by status the default (every status, the registry's damages change status), by class
    beside it (every class, any other grey); each category counted on the registry's candidates."""
    rows = styles(statuses)
    assert [(s["f_table_name"], s["f_geometry_column"], s["styleName"], s["useAsDefault"]) for s in rows] == [
        ("candidates", "geom", "patrol: 状態 / status", 1), ("candidates", "geom", "patrol: damages by class", 0)]
    assert qml_of(statuses, "candidates").find("renderer-v2").get("attr") == "status"
    ren, cats = categories(statuses, "candidates", qgisstyle.STATUS_STYLE)
    assert_status_categories(statuses, "candidates", ren, cats, every=True)

    ren, cats = categories(statuses, "candidates", qgisstyle.CLASS_STYLE)
    assert (ren.get("type"), ren.get("attr")) == ("categorizedSymbol", "class")
    assert [c.get("value") for c in cats] == ["D00", "D10", "D20", "D40", ""]  # "": QGIS's all other values
    con = sqlite3.connect(statuses)
    names = dict((c, (ja, en)) for c, ja, en in con.execute("SELECT DISTINCT class, class_name_ja, class_name "
                                                            "FROM candidates"))
    con.close()
    for c in cats[:-1]:
        v = c.get("value")
        assert count(statuses, "candidates", '"class" = ?', v) > 0
        assert c.get("label") == f"{v} {names[v][0]} / {names[v][1]}"
        assert symbol_color(ren, c.get("symbol")) == rgba(report.CLASS_COLORS[v], 0.92)
    assert (cats[-1].get("label"), symbol_color(ren, cats[-1].get("symbol"))) == (
        "その他 / other", rgba(report.OTHER_COLOR, 0.92))
    assert count(statuses, "candidates", "\"class\" NOT IN ('D00', 'D10', 'D20', 'D40')") == 0


def older_registry(registry, store, default: int | None) -> None:  # noqa: F811
    """``store``: the registry as the patrol before left it (no ``layer_styles``), where ``default`` is not None with
    a style the office saved from QGIS (Save Style → In Database), as default (1) or not (0)."""
    shutil.copy(registry[0], store)
    con = sqlite3.connect(store)
    with con:
        con.execute("DROP TABLE layer_styles")
        con.execute("DELETE FROM gpkg_contents WHERE table_name = 'layer_styles'")
        if default is not None:
            con.execute(qgisstyle.CREATE_SQL)
            con.execute("INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
                        "styleName, styleQML, styleSLD, useAsDefault, description, owner, update_time) VALUES "
                        "('', '', 'candidates', 'geom', 'mine', '<qgis/>', '', ?, 'ours', '', '2026-01-01T00:00:00Z')",
                        (default,))
            con.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) VALUES "
                        "('layer_styles', 'attributes', 'layer_styles', 0)")
    con.close()


def test_an_older_registry_gets_them_beside_an_offices_own_style(registry, tmp_path):  # noqa: F811
    """A registry the patrol before wrote (no `layer_styles`): its next write adds ours, by status the default. One
    in which an office saved its own style from QGIS, as default or not (QGIS applies it then too: the latest where
    none is the default): ours are added, neither the default, the office's row as it was; a write again adds
    nothing; a style of ours deleted comes back, the office's untouched."""
    path, cfg, _ = registry
    for default in (None, 0):
        store = tmp_path / f"registry-{default}.gpkg"
        older_registry(registry, store, default)
        with Store.for_config(store, cfg) as st:
            st.set_status("R-000001", "confirmed")
        assert [(r["styleName"], r["useAsDefault"]) for r in styles(store)] == (
            [("patrol: 状態 / status", 1), ("patrol: damages by class", 0)] if default is None else
            [("mine", 0), ("patrol: 状態 / status", 0), ("patrol: damages by class", 0)])

    store = tmp_path / "registry.gpkg"
    older_registry(registry, store, 1)
    mine = styles(store)
    with Store.for_config(store, cfg) as st:
        st.set_status("R-000001", "confirmed")
    rows = styles(store)
    assert rows[0] == mine[0]
    assert [(r["styleName"], r["useAsDefault"]) for r in rows] == [
        ("mine", 1), ("patrol: 状態 / status", 0), ("patrol: damages by class", 0)]
    with Store.for_config(store, cfg) as st:
        st.set_status("R-000001", "scheduled")
    assert styles(store) == rows
    con = sqlite3.connect(store)
    with con:
        con.execute("DELETE FROM layer_styles WHERE styleName = 'patrol: damages by class'")
    con.close()
    with Store.for_config(store, cfg) as st:
        st.set_status("R-000001", "repaired")
    again = styles(store)
    assert again[:2] == rows[:2] and [(r["styleName"], r["useAsDefault"]) for r in again[2:]] == [
        ("patrol: damages by class", 0)]


def test_the_patrol_before_reads_and_writes_a_styled_registry(statuses, tmp_path):
    """The extra table is no schema change: the patrol before the styles (BEFORE_STYLES_COMMIT) opens the styled
    registry, sets a status in it and leaves the styles as they were; GDAL lists the table without geometry."""
    import pyogrio

    old = old_store(tmp_path, BEFORE_STYLES_COMMIT, "store_before_styles")
    store = tmp_path / "registry.gpkg"
    shutil.copy(statuses, store)
    before = styles(store)
    with old.Store(store) as st:
        assert len(st.query()) == 31
        assert st.set_status("R-000006", "confirmed")
    assert styles(store) == before
    assert dict(pyogrio.list_layers(store))["layer_styles"] is None
    with Store(store) as st:
        assert st.integrity() == "ok"
        assert st.query().set_index("candidate_id").loc["R-000006", "status"] == "confirmed"
