"""QGIS default styles inside the GeoPackages patrol writes, so that every office opens them drawn as report.html
draws them, not in QGIS's random single colour (README: opens styled in QGIS).

A GeoPackage holds them in the table ``layer_styles`` that QGIS itself creates when a style is saved into one
("Save style → in database"), through GDAL, with the schema of its PostgreSQL and SpatiaLite providers: one row per
style, ``f_table_name`` / ``f_geometry_column`` naming the layer, ``styleQML`` the style as a .qml file holds it,
``useAsDefault`` 1 for the one QGIS applies by itself when the layer is added (``QgsOgrUtils::loadStoredStyle``:
``f_table_schema=''`` AND the layer's table and geometry column, the default first). GDAL registers such a table in
``gpkg_contents`` as ``attributes`` (srs_id 0) and counts its rows in ``gpkg_ogr_contents``; ``write`` does the
same with sqlite3, after GDAL has written the layers and before the file is moved into place (``atomic``): GDAL,
pyogrio and geopandas list it as a table without geometry, read every layer as before, and QGIS's own "save style"
adds its rows to it. ArcGIS reads no QGIS style (it shows the table as a table).

The styles (``damages``, ``damage_status``, ``condition``, ``due``, ``jobs``) take their colours and words from
report.py, where report.html's take them (``CLASS_COLORS``, ``STATUS_COLORS`` and ``store.STATUS_LABELS``,
``CONDITION_COLORS`` and ``CONDITION_WORDS``, ``DUE_COLORS`` and ``DUE_WORDS``, ``JOB_COLOR``): the map and QGIS
agree, and change together. Each lists what its layer holds, no more: the damages' classes (statuses) present, the
conditions (and grey kinds) present at each level, the due states present. A layer may have several styles, one
the default (``useAsDefault``), the others listed by QGIS under Layer Properties → Style → Load Style → from
database: the damages by class (default) and by status.

The registry (``store.Store``) carries its own styles of its layer ``candidates`` (``registry``: by status, the
default, every status; by class, every class and QGIS's "all other values"), added in its write transactions where
missing by name (``add_missing``), never changing a row an office saved there from QGIS.

Lines and marker sizes are report.html's pixels in millimetres (``PX_MM``, QGIS's default unit: a printed layout
keeps them). A style is a QGIS 3.16 .qml (symbol layers' properties as ``<prop k v/>``, which every QGIS 3 reads;
data-defined properties and labels as QGIS 3 writes them), without the parts QGIS fills in with its defaults. A
rule's or category's filter uses only what QGIS expressions and SQLite read alike (``"field" = 1``, ``IS NULL``,
``AND``, ``NOT``, ``coalesce``): the tests count its rows with sqlite3.
"""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import CLASS_IDS, __version__

#: the table QGIS reads a GeoPackage's styles from
TABLE = "layer_styles"
#: its schema as QGIS creates it through GDAL (QgsOgrUtils::saveStyle's fields, GDAL's GPKG column types)
CREATE_SQL = (
    f'CREATE TABLE "{TABLE}" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "f_table_catalog" TEXT(256), '
    '"f_table_schema" TEXT(256), "f_table_name" TEXT(256), "f_geometry_column" TEXT(256), "styleName" TEXT(30), '
    '"styleQML" TEXT, "styleSLD" TEXT, "useAsDefault" BOOLEAN, "description" TEXT, "owner" TEXT(30), "ui" TEXT(30), '
    "\"update_time\" DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))")
DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
#: the .qml format written: QGIS 3.16's, which every QGIS 3 reads (a later one as it reads its own 3.16 styles)
QGIS_VERSION = "3.16.0-Hannover"
#: report.html's pixel (Leaflet, 96 dpi) in millimetres, QGIS's unit for widths and sizes
PX_MM = 0.26
#: a damage's marker: report.html's 16 px circle at severity 60, 2.5 mm (0) .. 5.5 mm (100), severity-less 4 mm
DAMAGE_SIZE = 'coalesce(scale_linear("severity", 0, 100, 2.5, 5.5), 4)'


@dataclass
class LayerStyle:
    """One layer's style: its table, the .qml text, the style's name (QGIS: at most 30 characters), what it draws
    (the description QGIS shows in its list of stored styles) and whether it is the layer's default (the one QGIS
    applies as the layer is added; another is one choice away: Layer Properties → Style → Load Style → from
    database)."""

    layer: str
    qml: str
    name: str
    description: str
    default: bool = True


#: the damages' styles' names, as QGIS's list of a layer's stored styles shows them (export and registry alike)
CLASS_STYLE = "patrol: damages by class"
STATUS_STYLE = "patrol: 状態 / status"


# ----------------------------------------------------------------------------------------------------------
# the table
# ----------------------------------------------------------------------------------------------------------


def write(path: str | Path, styles: list[LayerStyle]) -> None:
    """Add ``styles`` to the GeoPackage ``path`` (GDAL has written and closed it), in their order: ``layer_styles``
    created and registered as QGIS/GDAL do where it is not there yet; a default style the default of its layer (an
    earlier default of the same layer no longer), another beside it. ValueError for a layer the file has no
    geometry column of."""
    if not styles:
        return
    con = sqlite3.connect(path)
    try:
        with con:
            geom = dict(con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
            missing = [s.layer for s in styles if s.layer not in geom]
            if missing:
                raise ValueError(f"{Path(path).name}: no layer {', '.join(missing)} to style")
            _table(con)
            for s in styles:
                if s.default:
                    con.execute(f'UPDATE "{TABLE}" SET "useAsDefault" = 0 WHERE "f_table_name" = ? AND '
                                '"f_geometry_column" = ?', (s.layer, geom[s.layer]))
                _insert(con, s, geom[s.layer], s.default)
            _count(con)
    finally:
        con.close()


def add_missing(con: sqlite3.Connection, names: list[tuple[str, str]], make) -> list[str]:
    """Inside the caller's transaction on the GeoPackage ``con`` (the registry: ``store.Store``): the styles ``names``
    (layer, style name) the file lacks, made by ``make()`` (a list of LayerStyle: built only when one is missing),
    added, and the names added returned. A row of ``layer_styles`` is never changed nor removed (an office's own
    style, saved from QGIS, stays as it was, its default too): a style of ours is added where no style of its layer
    has its name, as its layer's default only where the layer has no default and no style but ours (QGIS applies
    an office's style saved without "use as default" too, the latest, where none is the default: it still does). A
    layer the file has no geometry column of is skipped."""
    geom = dict(con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
    names = [(layer, name[:30]) for layer, name in names if layer in geom]
    exists = bool(con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (TABLE,)).fetchone())
    # (the names only, in every write of the registry: useAsDefault lies after the .qml's overflow pages)
    have = set(con.execute(f'SELECT "f_table_name", "styleName" FROM "{TABLE}"')) if exists else set()
    if all(n in have for n in names):
        return []
    # the layers QGIS applies a style of the office's to (its default, else its latest: loadStoredStyle's ORDER BY
    # useAsDefault, update_time DESC) or one of ours as the default: ours is no default there
    ours = {name for _, name in names}
    defaults = {layer for layer, name, default in con.execute(
        f'SELECT "f_table_name", "styleName", "useAsDefault" FROM "{TABLE}"') if default or name not in ours} \
        if exists else set()
    _table(con)
    added = []
    for s in make():
        if s.layer not in geom or (s.layer, s.name[:30]) in have or (s.layer, s.name[:30]) not in names:
            continue
        default = s.default and s.layer not in defaults
        _insert(con, s, geom[s.layer], default)
        defaults |= {s.layer} if default else set()
        have.add((s.layer, s.name[:30]))
        added.append(s.name[:30])
    _count(con)
    return added


def _table(con: sqlite3.Connection) -> None:
    """``layer_styles`` created and registered in ``gpkg_contents`` (as GDAL registers the one QGIS makes) where the
    file has none."""
    if not con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (TABLE,)).fetchone():
        con.execute(CREATE_SQL)
        con.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, "
                    "last_change, srs_id) VALUES (?, 'attributes', ?, '', strftime('%Y-%m-%dT%H:%M:%fZ','now'), 0)",
                    (TABLE, TABLE))


def _insert(con: sqlite3.Connection, s: LayerStyle, geom_column: str, default: bool) -> None:
    con.execute(f'INSERT INTO "{TABLE}" ("f_table_catalog", "f_table_schema", "f_table_name", "f_geometry_column", '
                '"styleName", "styleQML", "styleSLD", "useAsDefault", "description", "owner") VALUES '
                "('', '', ?, ?, ?, ?, '', ?, ?, '')",
                (s.layer, geom_column, s.name[:30], s.qml, 1 if default else 0, s.description))


def _count(con: sqlite3.Connection) -> None:
    if con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='gpkg_ogr_contents'").fetchone():
        # GDAL's own count of a table's rows (it trusts it, and keeps it when QGIS saves a style through it)
        con.execute(f'INSERT OR REPLACE INTO gpkg_ogr_contents (table_name, feature_count) VALUES (?, '
                    f'(SELECT COUNT(*) FROM "{TABLE}"))', (TABLE,))


# ----------------------------------------------------------------------------------------------------------
# the .qml
# ----------------------------------------------------------------------------------------------------------


def rgba(hex_rgb: str, alpha: float = 1.0) -> str:
    """``#d62728`` with opacity 0.9 as QGIS writes a colour: ``214,39,40,230``."""
    h = hex_rgb.lstrip("#")
    return ",".join(str(int(h[i:i + 2], 16)) for i in (0, 2, 4)) + f",{round(255 * alpha)}"


def _mm(px: float) -> str:
    return f"{px * PX_MM:.2f}".rstrip("0").rstrip(".")


def _layer(cls: str, props: dict[str, str], size_expr: str | None = None) -> ET.Element:
    el = ET.Element("layer", {"class": cls, "enabled": "1", "locked": "0", "pass": "0"})
    for k, v in props.items():
        ET.SubElement(el, "prop", {"k": k, "v": v})
    if size_expr:  # a data-defined size (QgsProperty type 3: an expression), as QGIS 3 writes it
        dd = ET.SubElement(ET.SubElement(el, "data_defined_properties"), "Option", {"type": "Map"})
        ET.SubElement(dd, "Option", {"type": "QString", "name": "name", "value": ""})
        size = ET.SubElement(ET.SubElement(dd, "Option", {"type": "Map", "name": "properties"}), "Option",
                             {"type": "Map", "name": "size"})
        ET.SubElement(size, "Option", {"type": "bool", "name": "active", "value": "true"})
        ET.SubElement(size, "Option", {"type": "QString", "name": "expression", "value": size_expr})
        ET.SubElement(size, "Option", {"type": "int", "name": "type", "value": "3"})
        ET.SubElement(dd, "Option", {"type": "QString", "name": "type", "value": "collection"})
    return el


def _symbol(name: str, kind: str, layer: ET.Element) -> ET.Element:
    sym = ET.Element("symbol", {"type": kind, "name": name, "alpha": "1", "clip_to_extent": "1", "force_rhr": "0"})
    sym.append(layer)
    return sym


def marker(color: str, rim: str = "#ffffff", rim_px: float = 2) -> ET.Element:
    """report.html's damage marker: the class's colour (opacity 0.92) in a 2 px white rim, sized by severity (the
    status style's: its badge's background in a 3 px rim of its border colour)."""
    return _layer("SimpleMarker", {"name": "circle", "color": rgba(color, 0.92), "outline_color": rgba(rim),
                                   "outline_style": "solid", "outline_width": _mm(rim_px), "size": "4"}, DAMAGE_SIZE)


def line(color: str, weight_px: float, dash_px: tuple[float, float] | None = None) -> ET.Element:
    """report.html's line (opacity 0.9): ``weight_px`` wide, dashed ``dash_px`` (Leaflet's dashArray) where given."""
    props = {"line_color": rgba(color, 0.9), "line_width": _mm(weight_px), "line_style": "solid",
             "capstyle": "round", "joinstyle": "round"}  # Leaflet's lineCap, lineJoin
    if dash_px:
        props.update({"use_custom_dash": "1", "customdash": ";".join(_mm(v) for v in dash_px),
                      "customdash_unit": "MM"})
    return _layer("SimpleLine", props)


def _renderer(kind: str, **attrs: str) -> ET.Element:
    return ET.Element("renderer-v2", {"type": kind, "symbollevels": "0", "forceraster": "0", "enableorderby": "0",
                                      **attrs})


def _labels(field: str, color: str, size_pt: float, placement: int) -> ET.Element:
    """Simple labels of ``field`` in a white buffer (``placement``: 0 around a point, 1 over a polygon's centroid)."""
    lab = ET.Element("labeling", {"type": "simple"})
    settings = ET.SubElement(lab, "settings", {"calloutType": "simple"})
    text = ET.SubElement(settings, "text-style", {
        "fieldName": field, "isExpression": "0", "fontSize": f"{size_pt:g}", "fontSizeUnit": "Point",
        "textColor": rgba(color), "textOpacity": "1"})
    ET.SubElement(text, "text-buffer", {"bufferDraw": "1", "bufferSize": "0.8", "bufferSizeUnits": "MM",
                                        "bufferColor": "255,255,255,255", "bufferOpacity": "1"})
    ET.SubElement(settings, "placement", {"placement": str(placement), "dist": "1", "distUnits": "MM"})
    return lab


def qml(renderer: ET.Element, labels: ET.Element | None = None, labels_on: bool = False) -> str:
    """The .qml text of a renderer and its labels (``labels_on``: drawn when the layer is added; else set up, off:
    one click in the layer's label settings turns them on)."""
    root = ET.Element("qgis", {"version": QGIS_VERSION, "styleCategories": "Symbology|Labeling",
                               "labelsEnabled": "1" if labels_on else "0"})
    root.append(renderer)
    if labels is not None:
        root.append(labels)
    return DOCTYPE + "\n" + ET.tostring(root, encoding="unicode") + "\n"


def _rule(parent: ET.Element, filt: str, label: str, symbols: ET.Element | None = None,
          symbol: ET.Element | None = None, active: bool = True) -> ET.Element:
    attrs = {"filter": filt, "label": label}
    if symbol is not None:
        name = str(len(symbols))
        symbols.append(_symbol(name, "line", symbol))
        attrs["symbol"] = name
    if not active:
        attrs["checkstate"] = "0"
    return ET.SubElement(parent, "rule", attrs)


def _present_rules(mem: sqlite3.Connection, parent: ET.Element, symbols: ET.Element, kinds, within: str = "1",
                   params: tuple = ()) -> None:
    """A rule under ``parent`` for each (filter, label, symbol) of ``kinds`` that selects a row of ``mem``'s table
    ``t`` (the layer's columns, ``_rows``) among those ``within`` selects: a style lists what its layer holds."""
    for filt, label, sym in kinds:
        if mem.execute(f"SELECT COUNT(*) FROM t WHERE ({within}) AND ({filt})", params).fetchone()[0]:
            _rule(parent, filt, label, symbols, sym)


def _present(values) -> list:
    return [v for v in pd.unique(pd.Series(values, dtype=object)) if v is not None and not pd.isna(v)]


def _rows(columns: dict[str, tuple[str, object]]) -> sqlite3.Connection:
    """An in-memory table ``t`` of the layer's columns a style's filters read, typed as the GeoPackage holds them
    (``name: (SQL type, values)``; NaN/NA as NULL), to count each filter's rows as QGIS will select them."""
    def cell(v, kind: str):
        if v is None or v is pd.NA or (isinstance(v, float) and v != v):
            return None
        return {"INTEGER": int, "REAL": float, "TEXT": str}[kind](v)

    mem = sqlite3.connect(":memory:")
    mem.execute("CREATE TABLE t (" + ", ".join(f'"{c}" {kind}' for c, (kind, _) in columns.items()) + ")")
    cols = [[cell(v, kind) for v in pd.Series(vals, dtype=object)] for kind, vals in columns.values()]
    mem.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(columns))})", zip(*cols))
    return mem


# ----------------------------------------------------------------------------------------------------------
# the layers
# ----------------------------------------------------------------------------------------------------------


def damages(gdf, layer: str = "candidates", cfg=None) -> LayerStyle:
    """The damages (``--format gpkg``'s ``candidates``): categorized by ``class``, each class present in report.html's
    colour (another class, from an older model, grey as there) labelled ``D40 ポットホール / pothole`` (the names the
    layer carries, else the config's), marker size by severity, the most severe drawn on top; labels (the damage id)
    set up but off."""
    present = [str(v) for v in _present(gdf["class"])] if "class" in gdf.columns else []
    ordered = [c for c in CLASS_IDS if c in present] + sorted(set(present) - set(CLASS_IDS))
    names = {}
    for cid in ordered:
        rows = gdf[gdf["class"].astype(str) == cid]

        def name(col: str, lang: str) -> str:
            got = _present(rows[col]) if col in rows.columns else []
            return str(got[0]) if got else (cfg.class_name(cid, lang) if cfg is not None else "")

        names[cid] = (name("class_name_ja", "ja"), name("class_name", "en"))
    return _by_class(layer, names, False, f"patrol {__version__}: 損傷の分類 (report.html の色、大きさは重要度) / "
                     "damages by class (report.html's colours, size by severity)")


def _by_class(layer: str, names: dict[str, tuple[str, str]], others: bool, description: str,
              default: bool = True) -> LayerStyle:
    """The damages by class: a category per class of ``names`` (id: (日本語, English)), in report.html's colours,
    and (``others``) one for any other value, grey as report.html draws an unknown class."""
    from .report import CLASS_COLORS, OTHER_COLOR

    ren = _renderer("categorizedSymbol", attr="class", enableorderby="1")
    cats, syms = ET.SubElement(ren, "categories"), ET.SubElement(ren, "symbols")
    for i, (cid, (ja, en)) in enumerate(names.items()):
        label = f"{cid} {ja} / {en}" if ja and en and (ja, en) != (cid, cid) else cid
        ET.SubElement(cats, "category", {"value": cid, "symbol": str(i), "label": label, "render": "true"})
        syms.append(_symbol(str(i), "marker", marker(CLASS_COLORS.get(cid, OTHER_COLOR))))
    if others:  # QGIS's "all other values": the category of value "" (QgsCategorizedSymbolRenderer)
        ET.SubElement(cats, "category", {"value": "", "symbol": str(len(names)), "label": "その他 / other",
                                         "render": "true"})
        syms.append(_symbol(str(len(names)), "marker", marker(OTHER_COLOR)))
    _order(ren)
    return LayerStyle(layer, qml(ren, _labels("candidate_id", "#1d2733", 8, 0)), CLASS_STYLE, description, default)


#: done with (``store.CLOSED_STATUSES``), drawn under the damages still open in the status style
_CLOSED_FIRST = "CASE WHEN \"status\" IN ({}) THEN 0 ELSE 1 END"


def _order(ren: ET.Element, first: str | None = None) -> None:
    """The renderer's feature order: (``first``: an expression, ascending), then by severity, the most severe last
    (on top)."""
    order = ET.SubElement(ren, "orderby")
    if first:
        ET.SubElement(order, "orderByClause", {"asc": "1", "nullsFirst": "1"}).text = first
    ET.SubElement(order, "orderByClause", {"asc": "1", "nullsFirst": "1"}).text = '"severity"'


def damage_status(gdf, layer: str = "candidates", default: bool = False) -> LayerStyle:
    """The damages by ``status`` (``STATUS_STYLE``, beside the class style: Load Style → from database; ``gdf`` None:
    every status, the registry's own style): a category per status present, labelled as report.html's list names it
    (``新規 / new`` …: ``store.STATUS_LABELS``), each marker its badge (``report.STATUS_COLORS``: the background in
    a 3 px rim of its border colour), sized by severity; the damages done with (repaired, not an issue) drawn under
    the open ones, the most severe on top; labels (the damage id) set up but off."""
    from .report import OTHER_COLOR, STATUS_COLORS
    from .store import CLOSED_STATUSES, STATUS_LABELS, STATUSES

    if gdf is None:
        ordered = list(STATUSES)
    else:
        present = [str(v) for v in _present(gdf["status"])] if "status" in gdf.columns else []
        ordered = [st for st in STATUSES if st in present] + sorted(set(present) - set(STATUSES))
    ren = _renderer("categorizedSymbol", attr="status", enableorderby="1")
    cats, syms = ET.SubElement(ren, "categories"), ET.SubElement(ren, "symbols")
    for i, st in enumerate(ordered):
        ja, en = STATUS_LABELS.get(st, (st, st))
        label = f"{ja} / {en}" if ja != en else st
        ET.SubElement(cats, "category", {"value": st, "symbol": str(i), "label": label, "render": "true"})
        bg, rim = STATUS_COLORS.get(st, ("#ffffff", OTHER_COLOR))
        syms.append(_symbol(str(i), "marker", marker(bg, rim, 3)))
    _order(ren, _CLOSED_FIRST.format(", ".join(f"'{st}'" for st in CLOSED_STATUSES)))
    words = "・".join(STATUS_LABELS[st][0] for st in STATUSES)
    return LayerStyle(layer, qml(ren, _labels("candidate_id", "#1d2733", 8, 0)), STATUS_STYLE,
                      f"patrol {__version__}: 損傷の状態 ({words}: report.html の一覧の色、大きさは重要度) / damages "
                      "by status (report.html's list colours, size by severity)", default)


#: the registry's own styles of its layer ``candidates`` (``store.Store``: added where missing), by name
REGISTRY_STYLES = [("candidates", STATUS_STYLE), ("candidates", CLASS_STYLE)]


def registry(names: dict[str, tuple[str, str]]) -> list[LayerStyle]:
    """The registry's ``candidates`` as an office opens it: by status, the default (every status: the file lives on,
    a damage's status changes), and by class beside it (every class of ``CLASS_IDS``, named by ``names``, id: (日本語,
    English), else by its id; any other class grey): the exports' styles, for every value the layer may come to
    hold."""
    return [damage_status(None, "candidates", default=True),
            _by_class("candidates", {c: names.get(c, (c, c)) for c in CLASS_IDS}, True,
                      f"patrol {__version__}: 台帳の損傷の分類 (report.html の色、大きさは重要度) / the registry's "
                      "damages by class (report.html's colours, size by severity)", default=False)]


def level_label(level: str) -> str:
    """A ``level`` of the condition rows as the legend names it: ``区間 / whole segments``, ``20 m ごと / 20 m bins``."""
    if level == "segment":
        return "区間 / whole segments"
    if level.startswith("bin"):
        return f"{level[3:]} m ごと / {level[3:]} m bins"
    return level


def condition_kinds(thresholds=None, min_coverage: float | None = None, good_look: bool = False
                    ) -> list[tuple[str, str, ET.Element]]:
    """The condition layer's kinds as report.html draws and keys them, bottom to top: (filter, label, line symbol):
    not rated (surveyed too little: grey, dashed), damages reported but not surveyed (dark grey, dotted), condition 1
    (good, green) .. 5 (poor, red). A row of none (a bin neither surveyed nor damaged) is not drawn, as there."""
    from .report import (CONDITION_COLORS, CONDITION_THRESHOLDS, CONDITION_WORDS, MIN_COVERAGE, NOT_SURVEYED_COLOR,
                         NOT_VALID_COLOR, condition_keys, condition_range)

    nv, ns = condition_keys(MIN_COVERAGE if min_coverage is None else min_coverage, good_look)
    t = CONDITION_THRESHOLDS if thresholds is None else list(thresholds)
    kinds = [('"condition" IS NULL AND "surveyed_m" > 0', nv, line(NOT_VALID_COLOR, 4, (6, 6))),
             ('"condition" IS NULL AND coalesce("surveyed_m", 0) = 0 AND "n_total" > 0', ns,
              line(NOT_SURVEYED_COLOR, 5, (1, 9)))]
    for k, ((ja, en), color) in enumerate(zip(CONDITION_WORDS, CONDITION_COLORS), start=1):
        kinds.append((f'"condition" = {k}', f"{k} {ja} / {en} ({condition_range(k, t)})", line(color, 6)))
    return kinds


def condition(gdf, layer: str = "segments", cfg=None) -> LayerStyle:
    """The condition of the network (``--format segments``' ``segments``): rule-based, a group per ``level``, each
    with the kinds its rows have (``condition_kinds``: the road-condition layer of report.html, its colours, words and
    key; ranges from ``cfg.segments.thresholds``). Only the whole segments are on when the layer is added: a level's
    bins lie over their segment, so drawing all would show whichever is drawn last; a bin level is one click in the
    layer panel (the segments' then off)."""
    seg_cfg = getattr(cfg, "segments", None)
    kinds = condition_kinds(getattr(seg_cfg, "thresholds", None), getattr(seg_cfg, "min_coverage", None),
                            bool(getattr(gdf, "attrs", {}).get("good_look_only", False)))
    mem = _rows({"level": ("TEXT", gdf["level"]), "condition": ("INTEGER", gdf["condition"]),
                 "surveyed_m": ("REAL", gdf["surveyed_m"]), "n_total": ("INTEGER", gdf["n_total"])})
    try:
        ren = _renderer("RuleRenderer")
        root, syms = ET.SubElement(ren, "rules"), ET.Element("symbols")
        for level in _present(gdf["level"]):
            group = _rule(root, f"\"level\" = '{level}'", level_label(str(level)), active=level == "segment")
            _present_rules(mem, group, syms, kinds, '"level" = ?', (level,))
    finally:
        mem.close()
    ren.append(syms)
    return LayerStyle(layer, qml(ren), "patrol: road condition",
                      f"patrol {__version__}: 路面状態 1–5 (report.html の路面状態レイヤー、区間のみ表示) / road "
                      "condition 1–5 (report.html's road-condition layer; whole segments shown, bins one click away)")


def due_kinds() -> list[tuple[str, str, ET.Element]]:
    """The due layer's states as report.html draws and keys them, bottom to top: (filter, label, line symbol): never
    surveyed (dark grey, dashed: due now), not yet due (green), due within ``DUE_SOON_DAYS`` (orange), due that day
    or overdue (red: ``days_overdue`` >= 0)."""
    from .report import DUE_COLORS, DUE_SOON_DAYS, DUE_WORDS

    (over, soon, ok, never), lab = DUE_COLORS, [f"{ja} / {en}" for ja, en in DUE_WORDS]
    return [('"never_surveyed"', lab[3], line(never, 4, (6, 6))),
            (f'"days_overdue" < -{DUE_SOON_DAYS}', lab[2], line(ok, 6)),
            (f'"days_overdue" < 0 AND "days_overdue" >= -{DUE_SOON_DAYS}', lab[1], line(soon, 6)),
            ('"days_overdue" >= 0', lab[0], line(over, 6))]


def due(gdf, layer: str) -> LayerStyle:
    """The segments due for a patrol (``--format due``'s ``patrol_due``): rule-based by due state on the day planned
    for (``due_kinds``: report.html's patrol-due layer), the states its rows have."""
    mem = _rows({"never_surveyed": ("INTEGER", gdf["never_surveyed"]),
                 "days_overdue": ("INTEGER", gdf["days_overdue"])})
    try:
        ren = _renderer("RuleRenderer")
        root, syms = ET.SubElement(ren, "rules"), ET.Element("symbols")
        _present_rules(mem, root, syms, due_kinds())
    finally:
        mem.close()
    ren.append(syms)
    return LayerStyle(layer, qml(ren), "patrol: patrol due",
                      f"patrol {__version__}: 巡回予定 (report.html の巡回予定レイヤー) / patrol due (report.html's "
                      "patrol-due layer)")


def jobs(gdf, layer: str) -> LayerStyle:
    """The repair jobs (``--format jobs``' ``repair_jobs``): report.html's outline (``JOB_COLOR``, dashed, filled at
    15 %), labelled by ``job_id``."""
    from .report import JOB_COLOR

    ren = _renderer("singleSymbol")
    fill = _layer("SimpleFill", {"color": rgba(JOB_COLOR, 0.15), "style": "solid",
                                 "outline_color": rgba(JOB_COLOR, 0.9), "outline_style": "dash",
                                 "outline_width": _mm(2)})
    ET.SubElement(ren, "symbols").append(_symbol("0", "fill", fill))
    return LayerStyle(layer, qml(ren, _labels("job_id", JOB_COLOR, 9, 1), labels_on=True), "patrol: repair jobs",
                      f"patrol {__version__}: 補修工区の外形と工区番号 (report.html の補修工区レイヤー) / repair job "
                      "outlines and ids (report.html's repair jobs layer)")
