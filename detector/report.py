"""Exports of the candidate registry for people: GeoJSON, GeoPackage, Shapefile, CSV, Excel, KML and an offline
HTML map.

``export(df, fmt, out_path, cfg, roads_wgs84=None, segments=None, crs=None, encoding=None)`` writes one file
(atomically; a Shapefile: its set of files, ``gis.write_shp``), the rows in route order (``export.route_order``, as
the run's repair_list.csv). ``crs`` (``gis.target_crs``, for ``gis.CRS_FORMATS``): the gpkg's and the Shapefile's
geometry in that CRS, and the csv's and xlsx's ``x``/``y`` columns (beside lat/lon) in it.
``df`` is ``Store.query()`` output (the Candidates columns + status columns + ``crop_jpeg`` bytes) or a plain
Candidates frame (then every status is ``new``). ``roads_wgs84``: a GeoDataFrame in EPSG:4326 with
``segment_id``, ``road_name`` (optional) and line geometry, drawn by the HTML report; ``segments``: a
GeoDataFrame (e.g. segment conditions) added as a second GeoPackage layer; for the HTML report
``segments.segment_condition``'s rows, its road-condition layer (``condition_lines``: the surveyed whole segments
coloured by condition, the damaged ones no frame surveyed dotted grey, off when the page opens, ``#cond=1`` on);
``due`` (``due.due_table``'s ``Due``): the HTML report's patrol-due layer (``due_lines``: the segments on a patrol
cycle coloured by their due state on ``Due.at``, merged per road and last patrol day, ``#due=1`` on).
The config's kept road fields (``roads.keep_fields``, joined onto ``df`` by ``roads.join_fields``) follow
``road_name`` in every format, headed by the network's own column names (``road_<name>`` where one is named like
ours), numbers kept as numbers.

The HTML report is one self-contained file: Leaflet (detector/assets/leaflet, BSD-2) and its CSS are
inlined, the road network is drawn as polylines (no tiles; links merged end to end, simplified, delta-encoded:
``_road_lines``), crops are data: URIs of thumbnails that fit the
popup (320x240, WebP quality 60: ``crops.thumbnail``), each linked (relative URL) to its full crop in the folder
beside the file (a run's crops/, an export's ``<name>_html_crops/``). All data sits in a
``<script type="application/json">`` block with ``<``, ``>``, ``&`` escaped, the thumbnails one a line in a
``<script type="text/plain" id="thumbs">`` block after it, read only when a popup first shows one (a candidate's
``thumb``: its line); the page only ever puts data into the DOM with ``textContent``. On load it checks itself and sets ``<html data-selfcheck=...>`` to
``report-ok:<markers>:<rows>`` or ``report-error:<message>`` (read by tests through headless Chromium). The page
keeps its view (filters, search, selected damage, map zoom and centre) in the URL fragment (``#id=R-000012&class=D40
&z=17/36.68300/137.23600``; README "links to a view") and restores it from there; the dotted ring's cut-off is the
config's ``store.unseen_ring_passes`` (``meta.unseenRing``). A report of registry ids (``meta.crew``, ``crew_meta``)
has a form in each popup where a crew records its check (kept in localStorage, ``patrol:reg-<registry>:<id>``: the
registry's ``Store.identity()``, so an entry follows its damage into the registry's next report, with the
``status_changed_at`` its report had) and a button that downloads them as the CSV ``import-verification`` reads
(README "recording a check in report.html").
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import math
import os
import re
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from . import CLASS_IDS, __version__
from .atomic import (
    BusyOutputs, OutputInUseError, atomic_replace_file, atomic_write, atomic_write_text, keep_only_photos, safe_child,
    can_sync_batch, sync_batch, write_photo,
)
from .errors import InputError, UsageError
from .export import BOOL_TEXT, _after_road_name, map_links, road_columns, route_order, sightings
from .store import CLOSED_STATUSES, STATUS_LABELS, STATUSES, SYSTEM_STATUSES, TRANSITIONS  # the exports' status labels (status_ja) with the statuses

FORMATS = ("geojson", "gpkg", "shp", "csv", "xlsx", "kml", "html")
#: ``patrol export --format``'s choices: the damages' formats above (``export``), ``ledger``, the damages' photo ledger
#: (写真台帳, an .xlsx with each crop embedded: ``ledger.write_ledger``, through ``export`` too), and ``segments``, the
#: condition of the network from every drive the registry holds (``segments.segment_condition``; cli.py
#: ``_export_segments``)
EXPORT_FORMATS = FORMATS + ("ledger", "segments")
#: the exports for people that give each row's full crop, in a folder beside the file (``photo_folder``)
PHOTO_FORMATS = ("csv", "xlsx", "html")
ASSETS = Path(__file__).resolve().parent / "assets"

#: a registry's candidate id (``Store.merge``): a report listing only these offers the crew's form (``crew_meta``)
REGISTRY_ID = re.compile(r"R-\d+")
#: the statuses the crew's form offers: those a crew sets (import-verification refuses new / reopened from a crew)
CREW_STATUSES = [s for s in STATUSES if s not in SYSTEM_STATUSES]

#: ``store.unseen_ring_passes``'s default (see config), for an export without config: the map's dotted ring marks an
#: open damage passed unseen this many times or more
UNSEEN_RING_PASSES = 2

CLASS_COLORS = {"D00": "#2f6fd0", "D10": "#0e9f8e", "D20": "#e08a00", "D40": "#d62728"}
OTHER_COLOR = "#7f7f7f"
#: each status's colours as report.html's list shows it (its badge: background, border): new white, confirmed amber,
#: scheduled blue, repaired green, not an issue grey, reopened red; also the QGIS style of the damages by status
#: (``qgisstyle.damage_status``: the marker filled with the background, rimmed in the border colour)
STATUS_COLORS = {"new": ("#ffffff", "#9aa5b1"), "confirmed": ("#fff1cc", "#c98a00"),
                 "scheduled": ("#dcebff", "#2f6fd0"), "repaired": ("#e0f3e3", "#3b8a4a"),
                 "not_an_issue": ("#eceff1", "#9aa5b1"), "reopened": ("#ffe1e1", "#d62728")}

#: output columns (flat formats), in order: (column, Japanese header, English header)
COLUMNS: list[tuple[str, str, str]] = [
    ("candidate_id", "候補ID", "candidate id"),
    ("class", "分類", "class"),
    ("class_name_ja", "損傷種別", "damage type (ja)"),
    ("class_name", "damage type", "damage type"),
    ("severity", "重要度", "severity"),
    ("confidence", "確信度", "confidence"),
    ("n_obs", "検出回数", "observations"),
    ("first_seen", "初回検出", "first seen"),
    ("last_seen", "最終検出", "last seen"),
    ("segment_id", "区間ID", "segment id"),
    ("road_name", "路線名", "road name"),
    ("chainage_m", "距離標(m)", "chainage (m)"),
    ("lat", "緯度", "latitude"),
    ("lon", "経度", "longitude"),
    ("status", "状態", "status"),
    ("status_ja", "状態(和)", "status (ja)"),
    ("status_note", "備考", "status note"),
    ("status_changed_at", "状態更新日時", "status changed at"),
    ("repaired_at", "補修日", "repaired at"),
    ("checked_by", "確認者", "checked by"),
    ("checked_at", "確認日", "checked at"),  # empty in exports: where a crew writes the date of its check
    ("issue_type", "問題種別", "issue type"),
    ("est_width_m", "推定幅(m)", "est. width (m)"),
    ("est_length_m", "推定長(m)", "est. length (m)"),
    ("best_drive", "走行", "best drive"),
    ("best_image", "画像", "best image"),
    ("n_drives", "走行回数", "drives seen"),
    ("last_drive", "最新走行", "latest drive"),
    ("last_images", "最新走行の画像", "latest drive's images"),
    # the registry's passes (Store.query; empty in a run's own outputs): drives past the damage, sighted or not
    ("n_passes", "通過回数", "drives past"),
    ("n_unseen", "未検出通過", "passed unseen since"),
    # of n_passes, the drives that passed it only in frames too dark, glared or blurred to show the road (dark, glare,
    # blurred: frames.csv's look): not in n_unseen (Store.query's n_poor_look)
    ("n_poor_look", "撮影不良通過", "passed in poor frames"),
    ("last_passed", "最終通過", "last passed"),
    # citizen reports (住民通報, patrol import-reports) of the damage, matched when exported (citizen.match_reports):
    # how many, and when the first was posted; empty where the registry holds none (a run's own outputs too)
    ("reports", "住民通報", "citizen reports"),
    ("reported_first", "初回通報", "first reported"),
    # grown since first seen (悪化, Store.growth): the est. area as its first and its latest drive saw it, their ratio,
    # 1 where config store.grown_* call it grown; empty where no two drives compare (a run's own outputs too)
    ("area_first_m2", "初回面積(m²)", "first area (m²)"),
    ("area_last_m2", "最新面積(m²)", "latest area (m²)"),
    ("growth", "拡大率(倍)", "growth (×)"),
    ("grown", "悪化", "grown"),
]
#: grown since first seen (Store.growth, store.GROWTH_COLUMNS): report.html's popup row 面積の変化 and 悪化 filter
GROWTH_KEYS = ("area_first_m2", "area_last_m2", "growth", "grown")
#: the lists a crew works from (csv, xlsx) also give each row's photo: the crop written beside the list
LIST_COLUMNS = COLUMNS + [("photo", "写真", "photo"), ("map", "地図", "map")]
#: the repair job (補修工区) the latest jobs list naming the damage gave it, an open one's (``Store.damage_jobs``,
#: ``jobs.add_job_column``): only where the registry holds a job record (a jobs list was exported from it), so a
#: registry without one exports as before; after ``reported_first`` (the lists, the GIS files, the map), in the photo
#: ledger after the road (``job_columns``)
JOB_COLUMN = ("job_id", "工区", "job id")
#: the xlsx list's ``map`` cells show this, linked to the damage's web map (the csv: the address itself)
MAP_LINK_TEXT = "地図 / map"
#: with ``--crs``: the position in that CRS, after lon (x easting, y northing: the GIS order, not the surveyors' X/Y),
#: and the CRS on every row (``EPSG:6675``): a CSV travels alone, without the console line or the workbook's legend,
#: and a row copied out of it still says what its x, y are
XY_COLUMNS = [("x", "東距 x", "x (easting)"), ("y", "北距 y", "y (northing)"), ("crs", "座標系", "crs")]
#: in the xlsx these are folded away (an outline group: "+" above the columns shows them), so the sheet opens, and
#: prints one page wide, with what a crew works from; the data is all there (and read back by import-verification)
XLSX_FOLDED = ("class_name", "confidence", "first_seen", "status_changed_at", "repaired_at", "est_width_m",
               "est_length_m", "best_drive", "best_image", "n_drives", "last_drive", "last_images", "reported_first",
               "area_first_m2", "area_last_m2")
#: Excel's limit of characters in a cell: a longer one makes Excel "repair" the workbook and drop content
EXCEL_CELL_MAX = 32_767
TIME_COLUMNS = ("first_seen", "last_seen", "status_changed_at", "repaired_at", "last_passed", "reported_first")
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not allowed in XML 1.0 / Excel


# ----------------------------------------------------------------------------------------------------------
# preparing the frame
# ----------------------------------------------------------------------------------------------------------


def _kept(df: pd.DataFrame, cfg) -> list[str]:
    """The config's kept road fields (``roads.keep_fields``, output names) that ``df`` carries."""
    return [c for c in road_columns(cfg) if c in df.columns]


def job_columns(df: pd.DataFrame, base: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """``base`` with ``JOB_COLUMN`` where ``df`` has a ``job_id`` column (the registry holds a job record): after
    ``reported_first``, else after ``road_name`` (the photo ledger's rows), else last."""
    names = [c for c, *_ in base]
    if "job_id" not in df.columns or "job_id" in names:
        return list(base)
    at = next((names.index(c) + 1 for c in ("reported_first", "road_name") if c in names), len(names))
    return [*base[:at], JOB_COLUMN, *base[at:]]


def _columns(df: pd.DataFrame, cfg, base: list[tuple[str, str, str]] | None = None) -> list[tuple[str, str, str]]:
    """``base`` (``COLUMNS``) with the kept road fields after road_name, headed by their own name (ja = en), and the
    job id where ``df`` has one (``job_columns``)."""
    base = job_columns(df, COLUMNS if base is None else base)
    heads = {c: (c, ja, en) for c, ja, en in base}
    kept = _kept(df, cfg)
    heads.update({c: (c, c, c) for c in kept})
    return [heads[c] for c in _after_road_name([c for c, *_ in base], kept)]


def _tz(cfg):
    """The municipality's time zone (config ``timezone``), or None without a config."""
    name = getattr(cfg, "timezone", None)
    if not name:
        return None
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _now(cfg) -> datetime:
    """Now in the municipality's time zone (its staff read the report), not the server's."""
    from .config import now

    return now(_tz(cfg))


def _clean(v: Any) -> Any:
    """Plain JSON-able Python value: NaN/NaT -> None, numpy scalars -> Python."""
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray, memoryview)):
        return None
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_clean(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, pd.Timestamp):
        return None if pd.isna(v) else v.isoformat()
    if v is pd.NaT:
        return None
    return v


def prepare(df: pd.DataFrame, cfg) -> pd.DataFrame:
    """A copy with every output column present: status 'new' when the frame has no status, class names from
    the config where missing, the sightings as ``export.sightings`` gives them (``n_drives``, ``last_drive``,
    ``last_images``; no complete ``drives``/``images`` lists: a registry's damage gathers a drive a week), ``status_ja`` added."""
    out = sightings(df).drop(columns=["drives"], errors="ignore").reset_index(drop=True)
    n = len(out)
    for c, *_ in COLUMNS:
        if c not in out.columns:
            out[c] = None
    out["status"] = [s if isinstance(s, str) and s else "new" for s in out["status"]]
    out["status_ja"] = [STATUS_LABELS.get(s, (s, s))[0] for s in out["status"]]
    cls = [str(c) if c is not None else "" for c in out["class"]]
    out["class"] = cls
    if cfg is not None:
        out["class_name"] = [v if isinstance(v, str) and v else cfg.class_name(c, "en") for v, c in zip(out["class_name"], cls)]
        out["class_name_ja"] = [v if isinstance(v, str) and v else cfg.class_name(c, "ja") for v, c in zip(out["class_name_ja"], cls)]
    if "crop_jpeg" not in out.columns:
        out["crop_jpeg"] = [None] * n
    if "job_id" in out.columns:  # the GIS files' order: the job id after the citizen reports, as the lists have it
        cols = [c for c in out.columns if c != "job_id"]
        at = cols.index("reported_first") + 1
        out = out[cols[:at] + ["job_id"] + cols[at:]]
    # the GIS files' order: grown since first seen (Store.growth) last, the columns before as they were without it
    out = out[[c for c in out.columns if c not in GROWTH_KEYS] + list(GROWTH_KEYS)]
    out["candidate_id"] = [str(v) if v is not None else str(i) for i, v in enumerate(out["candidate_id"])]
    return out


def _records(df: pd.DataFrame, drop_binary: bool = True) -> list[dict[str, Any]]:
    cols = [c for c in df.columns if not (drop_binary and c == "crop_jpeg")]
    return [{c: _clean(v) for c, v in zip(cols, row)} for row in df[cols].itertuples(index=False, name=None)]


def _flat(v: Any) -> Any:
    v = _clean(v)
    if isinstance(v, list):
        return "; ".join(str(x) for x in v)
    return v


# ----------------------------------------------------------------------------------------------------------
# dispatcher
# ----------------------------------------------------------------------------------------------------------


def list_columns(df: pd.DataFrame, cfg=None) -> list[tuple[str, str, str]]:
    """The csv's and xlsx's columns: ``LIST_COLUMNS``, with ``XY_COLUMNS`` after lon where ``df`` has them and the
    kept road fields after road_name (``_columns``)."""
    base = LIST_COLUMNS
    if "x" in df.columns:
        at = [c for c, *_ in LIST_COLUMNS].index("lon") + 1
        base = LIST_COLUMNS[:at] + XY_COLUMNS + LIST_COLUMNS[at:]
    return _columns(df, cfg, base)


def export(df: pd.DataFrame, fmt: str, out_path: str | Path, cfg, roads_wgs84=None, segments=None,
           photos: list[str] | None = None, crs=None, encoding: str | None = None,
           notes: list[str] | None = None, max_mb: float | None = None, said: list[str] | None = None,
           thumb_cache: str | Path | None = None, due=None, reports=None, jobs=None) -> Path:
    """Write ``df`` (registry or Candidates frame) as ``fmt`` to ``out_path`` atomically; returns the path.

    The crew's lists and the map (csv, xlsx, html) give each row's full crop as a path relative to ``out_path``:
    ``photos`` (one per row of ``df``, '' for none: a run's report links OUT/crops/, ``export.run_photos``), else
    ``df``'s ``crop_jpeg`` written beside the file (``write_photos``: ``map.html`` -> ``map_html_crops/``).

    A photo beside it that another program holds open (a photo viewer, on Windows) does not stop the export: the
    file and every other photo are written, then one OutputInUseError names what could not be replaced or removed.

    ``crs``: ``--crs`` (text or a pyproj CRS) and ``encoding``: the Shapefile's, both checked by
    ``gis.export_options`` (``encoding`` refused for the other formats). ``notes``: a list that gets what the console should tell
    (a Shapefile's replaced or cut text, damages outside the CRS's area of use). ``max_mb`` (html only, ``--max-mb``):
    the map fitted to that many MB (``fit_html``), ``said`` gets the line saying how. ``thumb_cache`` (html only):
    the registry's thumbnail cache (``thumb_cache_path``, ``ThumbCache``): thumbnails of crops made by an earlier
    export are read from it, not made again. ``reports`` (html only): the citizen reports to map
    (``citizen.match_reports``' rows: each with its damage's ``candidate_id`` or None), the map's 住民通報 layer
    (``report_rows``); None or none: the page as without. ``jobs`` (html only): ``jobs.job_table``'s ``Jobs`` of the
    map's open damages, its repair jobs layer (``job_shapes``).

    ``fmt`` ``ledger``: the photo ledger (``ledger.write_ledger``): the crops embedded in the workbook, none written
    beside it; ``notes`` gets the damages without a photo, ``said`` the photos' count."""
    from . import gis, ledger

    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS and fmt != ledger.LEDGER:
        raise InputError(f"unknown format {fmt!r}; one of {', '.join(FORMATS + (ledger.LEDGER,))}", out_path,
                         "--format")
    if fmt == ledger.LEDGER:
        ledger.check_options(out_path, crs, encoding, max_mb)
    check_max_mb(fmt, max_mb)
    crs, encoding = gis.export_options(fmt, out_path, crs, encoding)
    notes = [] if notes is None else notes
    out_path = Path(out_path)
    registry = df.attrs.get("registry")  # Store.identity(), set by the export and a run with --store: the html's crew
    data = prepare(df, cfg)
    if photos is not None:
        if len(photos) != len(data):
            raise ValueError(f"{len(photos)} photos for {len(data)} rows")
        data["photo"] = list(photos)
    data = route_order(data)  # the order of the run's repair list: the crew's list either way
    if crs is not None:
        note = gis.outside(data["lat"], data["lon"], crs, data["candidate_id"])
        if note:
            notes.append(note)
        if fmt in ("csv", "xlsx"):
            x, y = gis.project(data["lat"], data["lon"], crs)
            data["x"], data["y"] = np.round(x, 3), np.round(y, 3)  # mm: the phone's GPS is metres off anyway
            data["crs"] = gis.crs_code(crs)  # what QGIS's and pyproj's "EPSG:6675" box takes as it is
            data.attrs["crs"] = gis.crs_label(crs)  # the workbook's legend names it
    if fmt in ("csv", "xlsx"):  # the lists' map column: the config's web map at each damage (empty without one)
        data["map"] = map_links(map_url(cfg), data["lat"], data["lon"], data["candidate_id"])
    data = data[_after_road_name(list(data.columns), _kept(data, cfg))]  # geojson, gpkg: kept fields after road_name
    if fmt == "shp":
        notes.extend(gis.write_shp(data, out_path, crs=crs, encoding=encoding, kept=_kept(data, cfg)))
        return out_path
    writer = {"geojson": write_geojson, "gpkg": write_gpkg, "csv": write_csv, "xlsx": write_xlsx,
              "kml": write_kml, "html": write_html, ledger.LEDGER: ledger.write_ledger}[fmt]
    busy = BusyOutputs()
    if fmt in PHOTO_FORMATS and photos is None:
        data["photo"] = write_photos(data, out_path, busy)
    data.attrs["registry"] = registry
    with busy.write():
        if fmt == "gpkg":
            writer(data, out_path, cfg, segments=segments, crs=crs)
        elif fmt == "html":
            writer(data, out_path, cfg, roads_wgs84=roads_wgs84, max_mb=max_mb, notes=notes, said=said,
                   thumb_cache=thumb_cache, segments=segments, due=due, reports=reports, jobs=jobs)
        elif fmt == ledger.LEDGER:  # the crops embedded (the registry's crop_jpeg, as write_photos writes them)
            writer(data, out_path, cfg, notes=notes, said=said)
        else:
            writer(data, out_path, cfg)
    busy.check()
    return out_path


def map_url(cfg) -> str | None:
    """The config's web map template (``export.map_url``), None without a config or with ``map_url: null``."""
    return getattr(getattr(cfg, "export", None), "map_url", None)


#: the web maps report.html's popups name by their host (README: Map links); any other: WEB_MAP_NAME
WEB_MAP_NAMES = {"maps.gsi.go.jp": "地理院地図"}
WEB_MAP_NAME = "Web地図"


def web_map(cfg) -> dict[str, str] | None:
    """report.html's web map (``export.map_url``) for its popups' link: ``url`` the template as given (the page fills
    it as ``export.map_links`` does: 7 decimals, the id URL-encoded), ``text`` the link's text, named from the URL's
    host (地理院地図 / web map) or neutral (Web地図 / web map); None with ``map_url: null`` (no web link)."""
    from urllib.parse import urlsplit

    url = map_url(cfg)
    if not url:
        return None
    host = (urlsplit(url.format(lat="0", lon="0", id="")).hostname or "").lower()
    return {"url": url, "text": f"{WEB_MAP_NAMES.get(host, WEB_MAP_NAME)} / web map"}


def check_max_mb(fmt: str, max_mb: float | None) -> None:
    """``--max-mb``: the html map's size cap, a positive number of MB; refused for the other formats."""
    if max_mb is None:
        return
    if fmt != "html":
        raise UsageError("is for --format html (it fits the photos the map carries inside it to a mail's size; "
                         f"a {fmt} export embeds none)", None, "--max-mb")
    if not (isinstance(max_mb, (int, float)) and math.isfinite(max_mb) and max_mb > 0):
        raise UsageError(f"{max_mb}: give the file's size limit in MB, e.g. 5 or 7.5", None, "--max-mb")


# ----------------------------------------------------------------------------------------------------------
# GeoJSON / GeoPackage / CSV
# ----------------------------------------------------------------------------------------------------------


def _point(lat: Any, lon: Any) -> dict | None:
    lat, lon = _clean(lat), _clean(lon)
    if lat is None or lon is None:
        return None
    return {"type": "Point", "coordinates": [round(float(lon), 7), round(float(lat), 7)]}


def write_geojson(df: pd.DataFrame, path: Path, cfg=None) -> None:
    feats = []
    for rec in _records(df):
        feats.append({"type": "Feature", "id": rec["candidate_id"], "geometry": _point(rec.get("lat"), rec.get("lon")),
                      "properties": rec})
    text = json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False, allow_nan=False)
    atomic_write_text(path, text + "\n")


def _gdf(df: pd.DataFrame):
    import geopandas as gpd
    from shapely.geometry import Point

    flat = pd.DataFrame({c: _gpkg_column([_flat(v) for v in df[c]]) for c in df.columns if c != "crop_jpeg"})
    geom = [Point(float(lo), float(la)) if _clean(la) is not None and _clean(lo) is not None else None
            for la, lo in zip(df["lat"], df["lon"])]
    for c in flat.columns:
        if flat[c].dtype == object and c not in ("lat", "lon"):
            vals = [v for v in flat[c] if v is not None]
            if not vals or all(isinstance(v, str) for v in vals):
                flat[c] = flat[c].astype("string")

    for c in ("confidence", "severity", "chainage_m", "lat", "lon", "est_width_m", "est_length_m"):
        flat[c] = pd.to_numeric(flat[c], errors="coerce").astype(float)
    flat["n_obs"] = pd.to_numeric(flat["n_obs"], errors="coerce").astype("Int64")
    return gpd.GeoDataFrame(flat, geometry=geom, crs="EPSG:4326")


def _gpkg_column(vals: list) -> Any:
    """A column's values for the GeoPackage: whole numbers with gaps (a kept road field such as 路線番号) as an
    integer column (pandas would make them REAL), true/false with gaps as a BOOLEAN one, anything else as given."""
    got = [v for v in vals if v is not None]
    if got and any(v is None for v in vals) and all(isinstance(v, int) and not isinstance(v, bool) for v in got):
        return pd.array(vals, dtype="Int64")
    if got and any(v is None for v in vals) and all(isinstance(v, bool) for v in got):
        return pd.array(vals, dtype="boolean")  # BOOLEAN with NULLs (an object column would be TEXT)
    return vals


def write_gpkg(df: pd.DataFrame, path: Path, cfg=None, segments=None, crs=None) -> None:
    """The damages as the layer ``candidates`` (geometry in ``crs``, else WGS 84; lat/lon stay WGS 84 attributes),
    ``segments`` as a second layer (in its own CRS), each with its QGIS default style (``qgisstyle``: the damages by
    class, condition rows by condition; a second layer of other rows, such as a road network, has none); the damages
    also by status, a second style (QGIS: Load Style → from database)."""
    from . import qgisstyle

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".gpkg", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # let GDAL create it
    try:
        gdf = _gdf(df)
        if crs is not None:
            gdf = gdf.to_crs(crs)  # vectorised (pyproj over the coordinate arrays)
        gdf.to_file(tmp, layer="candidates", driver="GPKG", engine="pyogrio")
        styles = [qgisstyle.damages(gdf, "candidates", cfg), qgisstyle.damage_status(gdf, "candidates")]
        if segments is not None and len(segments):
            seg = segments.copy()
            for c in seg.columns:
                if c != seg.geometry.name and seg[c].dtype == object:
                    seg[c] = [_flat(v) for v in seg[c]]
            seg.to_file(tmp, layer="segments", driver="GPKG", engine="pyogrio", mode="a")
            if {"level", "condition", "surveyed_m", "n_total"} <= set(segments.columns):
                styles.append(qgisstyle.condition(segments, "segments", cfg))
        qgisstyle.write(tmp, styles)  # in the file before it is moved into place
        atomic_replace_file(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def safe_cell(v: Any) -> Any:
    """Spreadsheet formula-injection guard: text starting with = + - @ (or tab/CR) gets a leading apostrophe."""
    v = _flat(v)
    if isinstance(v, bool):  # a kept road field's true/false: as Excel writes it (export.BOOL_TEXT)
        return BOOL_TEXT[v]
    if isinstance(v, str) and v and v[0] in "=+-@\t\r":
        return "'" + v
    return v


def photo_folder(path: str | Path) -> Path:
    """The folder of a list's or map's photos, beside it: ``list.csv`` -> ``list_csv_crops``, ``map.html`` ->
    ``map_html_crops`` (one per file: two exports of one registry never share or prune each other's photos)."""
    path = Path(path)
    return path.parent / f"{path.stem}_{path.suffix.lstrip('.')}_crops"


#: the names ``write_photos`` gives the photos (a registry's damage, ``R-000012.jpg``, or a run's, ``C0001.jpg``): the
#: only files of the folder it removes (a photo of a damage no longer listed); anything else there is the user's
OWN_PHOTO = re.compile(r"(?:R-\d+|C\d+)\.jpg")


def write_photos(df: pd.DataFrame, list_path: Path, busy: BusyOutputs | None = None) -> list[str]:
    """Each row's crop as ``<file>_<ext>_crops/<candidate id>.jpg`` beside the list or map
    (``list_csv_crops/R-000012.jpg``; one folder per file, holding exactly its rows' photos: a photo of a row no
    longer listed is removed, a file not named as patrol names the photos, ``OWN_PHOTO``, is left there); returns the
    relative paths ('' for a row without a crop), for the ``photo`` column as in a run's repair_list.csv, and the
    map's photo links. A photo whose file holds its crop already (the same bytes: a weekly export of damages
    unchanged) is not written again (``atomic.write_photo``): its file, inode and time stay as they are; one that
    differs is replaced through a temp file and a rename.

    A photo another program holds open (a photo viewer, on Windows) stays as it is: one that would change is not
    linked (it shows another photo), one no longer listed is not removed; each is noted in ``busy`` (else one
    OutputInUseError at the end)."""
    own = busy is None
    busy = BusyOutputs() if own else busy
    folder = photo_folder(list_path)
    paths, keep = [], set()
    wrote, batch = False, can_sync_batch()  # Windows: no sync(), each photo keeps its fsync
    for cid, crop in zip(df["candidate_id"], df["crop_jpeg"]):
        data = bytes(crop) if isinstance(crop, (bytes, bytearray, memoryview)) else b""
        if not data.startswith(b"\xff\xd8\xff"):  # no crop (the registry keeps JPEGs)
            paths.append("")
            continue
        p = safe_child(folder, f"{cid}.jpg")
        keep.add(p.name)
        try:
            # thousands of photos: made durable together below, not with two fsyncs each (14.8 s -> 0.4 s at 2,000)
            wrote |= write_photo(p, data, durable=not batch)
        except OutputInUseError as e:
            busy.add(e)
            paths.append("")
            continue
        paths.append(f"{folder.name}/{p.name}")
    if wrote and batch:
        sync_batch()
    keep_only_photos(folder, keep, busy, OWN_PHOTO)
    if own:
        busy.check()
    return paths


def write_csv(df: pd.DataFrame, path: Path, cfg=None) -> None:
    cols = [c for c, *_ in list_columns(df, cfg)]
    with atomic_write(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for row in df.reindex(columns=cols).itertuples(index=False, name=None):
            w.writerow(["" if v is None else v for v in (safe_cell(x) for x in row)])


# ----------------------------------------------------------------------------------------------------------
# Excel
# ----------------------------------------------------------------------------------------------------------


def _excel_time(s: Any, tz=None) -> datetime | None:
    """ISO time with offset -> naive datetime on the municipality's clock ``tz`` (Excel has no time zones; the
    legend says so). A time without offset, or no ``tz``, keeps its own wall time."""
    if not isinstance(s, str) or not s:
        return None
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        return None
    if tz is not None and t.tzinfo is not None:
        t = t.astimezone(tz)
    return t.replace(tzinfo=None)


def _excel_text(v: str) -> str:
    """Text Excel opens as it is: no control characters, at most ``EXCEL_CELL_MAX`` characters (a longer note is
    cut, ending in "…"; the registry keeps it whole)."""
    v = _CTRL.sub("", v)
    return v if len(v) <= EXCEL_CELL_MAX else v[: EXCEL_CELL_MAX - 1] + "…"


#: what a file link's target (the sheet's relationship ``Target``, an ``xsd:anyURI``) must not hold as it is: the
#: characters Excel itself percent-encodes in a hyperlink (``%``, space, ``"``, ``<``, ``>``, ``[``, ``]``, ``^``,
#: backquote, ``{``, ``}``), ``#`` (Excel encodes it in a file path: left as it is, the rest of the path would be a
#: location inside the file), ``?`` (a query), ``:`` (``週報:1`` would read as a scheme or a drive), ``|`` and controls
#: (not allowed in a URI). Other characters, Japanese included, stay as they are, as Excel writes them.
_XLSX_HREF_ESCAPE = {ch: f"%{ord(ch):02X}" for ch in '%"<>[]^`{}#?:| ' + "".join(map(chr, range(0x20))) + "\x7f"}


def _xlsx_href(path: str) -> str:
    """A photo path relative to the workbook (``週報 #1_xlsx_crops/R-000012.jpg``) as the hyperlink target Excel and
    LibreOffice resolve to that file: ``週報%20%231_xlsx_crops/R-000012.jpg`` (``_XLSX_HREF_ESCAPE``). openpyxl writes
    the target as given, and a raw space, ``#`` or ``%`` gave a broken link (Excel may even "repair" the workbook)."""
    return "".join(_XLSX_HREF_ESCAPE.get(ch, ch) for ch in path.replace("\\", "/"))  # a Windows path: "/"


#: the status columns' input message and error box (Excel: titles at most 32 characters, texts at most 255)
STATUS_PROMPT = ("状態 / status", "一覧から選ぶ: 確認済み・補修予定・補修済み・対象外 (新規・再発は patrol が付ける。空欄: 変更なし)\n"
                 "Pick: confirmed, scheduled, repaired, not_an_issue (new, reopened: set by patrol; blank: no change)")
STATUS_ERROR = ("状態の値が不正 / invalid status", "一覧の語を選んでください: 確認済み・補修予定・補修済み・対象外 ほか\n"
                "Pick a word of the list: confirmed, scheduled, repaired, not_an_issue or another spelling listed")


def status_validation(ja_first: bool = False):
    """The drop-down on a crew's status cell, offering exactly the words import-verification takes from a crew
    (``store.CREW_STATUS_WORDS``; ``ja_first``: the Japanese words first, for a cell showing the Japanese label): a
    typo (補習済) is refused as it is typed, with a message in Japanese and English (``STATUS_PROMPT``,
    ``STATUS_ERROR``), instead of on import. Blank stays allowed (the import keeps the status). A list literal (no
    cell range, no extra sheet): Excel takes at most 255 characters, the words need 115. The caller ``add``s its
    cells and adds it to the sheet: the repair list's status columns (``_status_choices``), the photo ledger's 状態
    cells (``ledger.write_ledger``)."""
    from openpyxl.worksheet.datavalidation import DataValidation

    from .store import CREW_STATUS_WORDS

    words = CREW_STATUS_WORDS[1 if ja_first else 0]
    return DataValidation(type="list", formula1='"' + ",".join(words) + '"', allow_blank=True,
                          showErrorMessage=True, showInputMessage=True, errorStyle="stop",
                          promptTitle=STATUS_PROMPT[0], prompt=STATUS_PROMPT[1],
                          errorTitle=STATUS_ERROR[0], error=STATUS_ERROR[1])


def _status_choices(ws, cols: list[tuple[str, str, str]], n: int) -> None:
    """``status_validation`` on the repair list's crew status columns (状態: the codes first, 状態(和): the Japanese
    words first), rows 2 to ``n + 1``."""
    from openpyxl.utils import get_column_letter

    for name, ja_first in (("status", False), ("status_ja", True)):
        j = next((k for k, (c, _, _) in enumerate(cols, 1) if c == name), None)
        if j is None or n == 0:
            continue
        letter = get_column_letter(j)
        dv = status_validation(ja_first)
        dv.add(f"{letter}2:{letter}{n + 1}")
        ws.add_data_validation(dv)


#: the workbooks' font, named on every font a cell sets: an openpyxl ``Font(bold=True)`` writes no name, and
#: LibreOffice then prints that cell in its own default (DejaVu Serif Bold), wider than Calibri: the list's headings
#: wrapped to a third line and were cut off the printed page ("candidate" without "id", 候補ID cut at the top)
XLSX_FONT = "Calibri"


def xlsx_font(**kw):
    """An openpyxl ``Font`` in ``XLSX_FONT`` (the workbook's default, 11 pt unless ``size`` is given): ``kw`` as
    ``Font``'s (bold, size, color)."""
    from openpyxl.styles import Font

    return Font(name=XLSX_FONT, **{"size": 11, **kw})


def xlsx_header(ws, cols: list[tuple[str, str, str]]) -> list[int]:
    """Row 1 of a list sheet: each column headed ``ja`` over ``en`` (one line where they are the same), white bold on
    dark blue, wrapped; returns the starting column widths (the English heading's). The repair list's and the patrol
    log's workbooks."""
    from openpyxl.styles import Alignment, PatternFill

    head_fill = PatternFill("solid", fgColor="1F3A5F")
    for j, (_, ja, en) in enumerate(cols, 1):
        c = ws.cell(row=1, column=j, value=f"{ja}\n{en}" if ja != en else en)
        c.font = xlsx_font(bold=True, color="FFFFFF")
        c.fill = head_fill
        c.alignment = Alignment(wrap_text=True, vertical="center")
    ws.row_dimensions[1].height = 32
    return [len(en) + 2 for _, _, en in cols]


def xlsx_text_width(v: str, most: int | None = 60) -> int:
    """A column width that shows ``v`` (full-width characters count twice), at most ``most`` (None: no limit)."""
    w = sum(2 if ord(ch) > 0x2E7F else 1 for ch in v) + 2
    return w if most is None else min(most, w)


class XlsxLink(NamedTuple):
    """A cell ``xlsx_cell`` writes as a hyperlink: ``text`` shown (blue, underlined: Excel's Hyperlink style),
    ``target`` opened by a click (a web address, or a file path relative to the workbook: ``_xlsx_href``)."""
    text: str
    target: str


def xlsx_cell(cell, v: Any, number_format: str | None = None, number_width: int = 0) -> int:
    """Write ``v`` into the openpyxl ``cell`` typed as Excel reads it; returns the column width it needs (0: no more
    than its heading's). The lists' workbooks (repair list, patrol log, stats) write every cell through it:

    - missing (None, NaN, NaT): left empty, 0;
    - text: ``_excel_text`` (no control characters, cut at ``EXCEL_CELL_MAX``), always a string, never a formula,
      whatever it starts with (``=``, ``+``, ``-``, ``@``); its shown width (``xlsx_text_width``);
    - a date and time: an Excel date-time, ``yyyy-mm-dd hh:mm:ss`` (offset dropped: Excel has no time zones; the
      caller puts it on the municipality's clock first), 20; a date: ``yyyy-mm-dd``, 12; a time of day:
      ``hh:mm:ss``, 10; a duration: ``[h]:mm:ss`` (hours past 24), 10;
    - a number (or true/false): as a number, numpy's as Python's, in ``number_format`` where given; ``number_width``;
    - an ``XlsxLink``: its text, as text, a hyperlink to its target in the Hyperlink style (a caller setting its own
      style sets it after); a link without a target: its text alone.
    """
    if v is None or v is pd.NaT or (isinstance(v, (float, np.floating)) and np.isnan(v)):
        return 0
    if isinstance(v, XlsxLink):
        width = xlsx_cell(cell, v.text)
        if v.target:
            cell.hyperlink = v.target
            cell.style = "Hyperlink"  # blue, underlined: seen as a link
        return width
    if isinstance(v, str):
        cell.value = text = _excel_text(v)
        cell.data_type = "s"  # never a formula, whatever the text starts with
        return xlsx_text_width(text)
    if isinstance(v, datetime):
        cell.value, cell.number_format = v.replace(tzinfo=None), "yyyy-mm-dd hh:mm:ss"
        return 20
    if isinstance(v, date):
        cell.value, cell.number_format = v, "yyyy-mm-dd"
        return 12
    if isinstance(v, time_of_day):
        cell.value, cell.number_format = v, "hh:mm:ss"
        return 10
    if isinstance(v, timedelta):
        cell.value, cell.number_format = v, "[h]:mm:ss"
        return 10
    cell.value = v.item() if isinstance(v, np.generic) else v
    if number_format:
        cell.number_format = number_format
    return number_width


#: a list sheet's data rows: their height (points; Excel's for its 11 pt default font), set on each so that no
#: renderer grows one (a CJK fallback font, a line break in a cell) and its pages can be counted (``xlsx_print_setup``)
LIST_ROW_PT = 15.0
#: a list sheet's margins (inches): A4 landscape
LIST_MARGIN_SIDE_IN = 0.4
LIST_MARGIN_TOP_IN = 1.0


def xlsx_print_setup(ws, n_cols: int, n_rows: int) -> int:
    """A list sheet as it is printed and filed: A4 landscape, one page wide, the header row on every page, page
    numbers of its own pages (``1 / 5``, numbered from 1, however the workbook is printed); the header row's filter
    over the ``n_rows`` rows. Called once its columns' widths (and hidden columns) are set; returns its pages.

    The pages are counted here, as the photo ledger's (``pages``): a fixed scale at which the shown columns fit the
    page's width (``pages.fit_scale``; not "fit to width", whose scale is the renderer's and which ignores page
    breaks), each data row ``LIST_ROW_PT`` high, and a page break after each page's last row (``pages.rows_per_page``
    of them, with room to spare); the footer's total is that count (``pages.footer``), not ``&N`` (every page
    printed: the legend's too)."""
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.pagebreak import Break

    from . import pages

    ws.auto_filter.ref = f"A1:{get_column_letter(n_cols)}{max(1, n_rows + 1)}"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape"
    ws.print_title_rows = "1:1"
    ws.page_margins.left = ws.page_margins.right = LIST_MARGIN_SIDE_IN
    ws.page_margins.top = ws.page_margins.bottom = LIST_MARGIN_TOP_IN
    dims = [ws.column_dimensions.get(get_column_letter(j)) for j in range(1, n_cols + 1)]  # none added
    width_in = sum(pages.col_px(8.43 if d is None else d.width) for d in dims if d is None or not d.hidden) / 96
    room_w, room_h = pages.A4_IN[1] - 2 * LIST_MARGIN_SIDE_IN, pages.A4_IN[0] - 2 * LIST_MARGIN_TOP_IN
    ws.page_setup.scale = scale = pages.fit_scale(width_in, None, room_w, room_h)
    per_page = pages.rows_per_page(room_h, scale, ws.row_dimensions[1].height or LIST_ROW_PT, LIST_ROW_PT)
    for r in range(2, n_rows + 2):
        ws.row_dimensions[r].height = LIST_ROW_PT
    for r in range(1 + per_page, n_rows + 1, per_page):  # sheet row r: the page's last (row 1 is the heading)
        ws.row_breaks.append(Break(id=r))
    wide = max(1, math.ceil(width_in * scale / 100 / room_w - 1e-9))  # more than one only at Excel's least scale
    n_pages = pages.count(n_rows, per_page) * wide
    ws.oddFooter.center.text = pages.footer(n_pages)
    ws.page_setup.firstPageNumber, ws.page_setup.useFirstPageNumber = 1, True  # 1, even printed after another sheet
    return n_pages


#: the repair list workbook's number columns and their Excel format (``xlsx_cell``)
XLSX_NUMBER_FORMATS = {"confidence": "0.00", "severity": "0.00", "chainage_m": "0.0", "est_width_m": "0.0",
                       "est_length_m": "0.0", "lat": "0.000000", "lon": "0.000000", "x": "0.000", "y": "0.000",
                       "area_first_m2": "0.00", "area_last_m2": "0.00", "growth": "0.00"}


def write_xlsx(df: pd.DataFrame, path: Path, cfg=None) -> None:
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    tz = _tz(cfg)
    wb = Workbook()
    ws = wb.active
    ws.title = "candidates"
    cols = list_columns(df, cfg)
    widths = xlsx_header(ws, cols)
    for i, row in enumerate(df.reindex(columns=[c for c, *_ in cols]).itertuples(index=False, name=None), 2):
        for j, ((name, _, _), v) in enumerate(zip(cols, row), 1):
            v = _flat(v)
            if name in TIME_COLUMNS:  # ISO text with offset -> the municipality's wall time (text if unreadable)
                v = _excel_time(v, tz) or v
            if name == "photo" and isinstance(v, str) and v:
                v = XlsxLink(v, _xlsx_href(v))  # relative to the workbook: a click opens the crop
            elif name == "map":
                v = XlsxLink(MAP_LINK_TEXT, v) if isinstance(v, str) and v else None  # the web map, in the browser
            cell = ws.cell(row=i, column=j)
            fmt = XLSX_NUMBER_FORMATS.get(name)
            widths[j - 1] = max(widths[j - 1], xlsx_cell(cell, v, fmt, number_width=10))
            if v is None and fmt:
                cell.number_format = fmt  # an empty number cell keeps its column's format
    for j, w in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(j)].width = w
    for j, (name, _, _) in enumerate(cols, 1):
        if name in XLSX_FOLDED or name in ("x", "y", "crs"):  # --crs's x, y: for GIS staff, folded as the detail
            letter = get_column_letter(j)
            ws.column_dimensions.group(letter, letter, outline_level=1, hidden=True)
    _status_choices(ws, cols, len(df))
    ws.freeze_panes = "B2"
    xlsx_print_setup(ws, len(cols), len(df))

    crs_note = [("座標系 x, y", df.attrs.get("crs", ""),
                 "x easting, y northing in this CRS (a JGD2011 zone's surveyors' X is y here)")] if "x" in df else []
    if "job_id" in df:
        crs_note.append(JOB_NOTE)
    if any(v is not None and v == v for v in df.get("growth", [])):  # a registry's list with a damage compared
        crs_note.append(grown_note(cfg))
    xlsx_legend(wb, cfg, "道路損傷 補修候補一覧 / Road damage repair candidates", ("件数 candidates", len(df)),
                [("重要度 severity", "0–100 = 60 × 種別の重み/最大の重み + 40 × 大きさ (推定面積 m² / 2, 上限 1)",
                  "0–100 = 60 × class weight / largest weight + 40 × size (estimated area m² / 2, at most 1)"),
                 ("距離標(m) chainage", "区間の始点からの距離 (m)", "metres from the start of the road segment"),
                 *crs_note, map_note(cfg)], cols)
    with atomic_write(path, "wb") as fh:
        buf = io.BytesIO()
        wb.save(buf)
        fh.write(buf.getvalue())


#: the legend's row on the job id (the xlsx list's and the photo ledger's, where they have it)
JOB_NOTE = ("工区 job id", "最新の補修工区一覧 (--format jobs) でこの損傷が入った工区。未対応の損傷のみ、一覧に出ていなければ空欄 "
            "(patrol status 台帳.gpkg 工区-003 で工区の損傷を表示・一括更新)",
            "the repair job the latest jobs list (--format jobs) naming the damage gave it; open damages only, empty "
            "where no jobs list named it (patrol status REGISTRY 工区-003 shows or sets the job's damages)")


def grown_note(cfg) -> tuple[str, str, str]:
    """The legend's row on 悪化 (grown since first seen, ``Store.growth``): the rule, with the config's values."""
    from .store import GrowthRule

    r = GrowthRule.of(cfg)
    return ("悪化 grown", f"1 = 最新の巡回の推定面積が初回の {r.ratio:g} 倍以上かつ {r.min_m2:g} m² 以上大きい (各巡回の中央値、"
            f"{r.min_sightings} 枚以上に写った最初と最新の巡回を比較; config store.grown_*)。空欄: 比べられる巡回がない",
            f"1 = the latest drive's est. area at least {r.ratio:g} × the first's and {r.min_m2:g} m² larger (each "
            f"drive's median; the first and latest drives that saw it in {r.min_sightings}+ frames; config "
            "store.grown_*); empty: no two drives to compare")


def map_note(cfg, geo: bool = False) -> tuple[str, str, str]:
    """The legend's row on the map links (the xlsx list's map column; ``geo``: the photo ledger's 地図 row, which
    without a web map links ``geo:``): what a click opens."""
    url = map_url(cfg)
    if url:
        return ("地図 map", f"ブラウザで地図を開く: {url}", "a click opens the web map at the damage in the browser "
                "(config export.map_url)")
    if geo:
        return ("地図 map", "地図アプリで開く (geo: リンク; config export.map_url: null)",
                "a geo: link: a phone's map app (no web map set: config export.map_url null)")
    return ("地図 map", "空欄 (config export.map_url: null)", "empty: no web map set (config export.map_url null)")


#: the legend sheet's footer: its page, numbered from 1 (no total: it is printed as the renderer lays it out)
LEGEND_FOOTER = "凡例 legend &P"


def xlsx_legend_rows(lg, rows) -> None:
    """A list's legend sheet (the due list's, the repair jobs'): ``rows`` written from A1 (each a tuple of cells,
    text never a formula: a road value may start with "="), its title (A1) large and bold, the ``列 column`` heading
    row bold, landscape, printed as :func:`xlsx_legend_print` prints a legend."""
    for i, r in enumerate(rows, 1):
        for k, x in enumerate(r, 1):
            cell = lg.cell(row=i, column=k)
            xlsx_cell(cell, x)
            if r[0] == "列 column":
                cell.font = xlsx_font(bold=True)
    lg["A1"].font = xlsx_font(bold=True, size=14)
    lg.page_setup.orientation = "landscape"
    xlsx_legend_print(lg)


def xlsx_legend_print(lg, min_row: int = 3) -> None:
    """A legend sheet as it is printed (the repair list's, the photo ledger's, the due list's): from ``min_row`` on,
    its notes (columns B, C) wrapped in their column, top-aligned, each row as high as its longest note's lines at its
    column's width (a renderer does not grow a row: a longer note was cut), its label (column A) beside their first
    line; one page wide on A4 (its English column was printed on pages of its own, long notes cut at their edge), the
    footer ``LEGEND_FOOTER``: its own pages, from 1, never counted in another sheet's total. The sheet's orientation
    is the caller's."""
    from openpyxl.styles import Alignment

    wrap = Alignment(wrap_text=True, vertical="top")
    widths = {k: lg.column_dimensions[k].width for k in "BC"}
    # its labels (column A, not wrapped) whole: the column as wide as the longest (the ledger's 「状態更新日時 (列 E,
    # 非表示)」 ran into column B's note in print)
    labels = [c.value for (c,) in lg.iter_rows(min_row=min_row, max_col=1) if isinstance(c.value, str)]
    lg.column_dimensions["A"].width = max([lg.column_dimensions["A"].width or 8.43] +
                                          [xlsx_text_width(v, 40) + 1 for v in labels])
    for row in lg.iter_rows(min_row=min_row, min_col=2, max_col=3):  # a long note wraps in its column, not past it
        lg.cell(row=row[0].row, column=1).alignment = Alignment(vertical="top")  # its label beside its first line
        lines = 1
        for c in row:
            c.alignment = wrap
            if isinstance(c.value, str):  # its lines at the column's width (its text's whole width: not capped)
                lines = max(lines, math.ceil((xlsx_text_width(c.value, None) - 2) / (widths[c.column_letter] - 8)))
        if lines > 1:
            lg.row_dimensions[row[0].row].height = LIST_ROW_PT * lines
    lg.page_setup.paperSize = lg.PAPERSIZE_A4
    lg.page_setup.fitToWidth, lg.page_setup.fitToHeight = 1, 0
    lg.sheet_properties.pageSetUpPr.fitToPage = True
    lg.oddFooter.center.text = LEGEND_FOOTER
    lg.page_setup.firstPageNumber, lg.page_setup.useFirstPageNumber = 1, True


def xlsx_legend(wb, cfg, title: str, count: tuple[str, int], notes: list[tuple], cols: list[tuple[str, str, str]]):
    """The workbook's ``legend`` sheet (the repair list's and the photo ledger's): ``title``, the municipality, when it
    was made, ``count`` (label, number), the version, the times' clock, ``notes`` (label, ja, en rows), then the
    classes, the statuses and the ``cols`` (column or row: key, ja, en) with their headings; printed as
    ``xlsx_legend_print`` sets it."""
    lg = wb.create_sheet("legend")
    lg.column_dimensions["A"].width = 24
    lg.column_dimensions["B"].width, lg.column_dimensions["C"].width = 28, 40
    bold = xlsx_font(bold=True)
    rows: list[tuple] = [(title,), ()]
    rows += [("自治体 municipality", getattr(cfg, "municipality", "")),
             ("作成日時 generated", _now(cfg).strftime("%Y-%m-%d %H:%M:%S %z")),
             count, ("version", f"road-patrol {__version__}"),
             ("時刻 times", f"現地時刻 {getattr(cfg, 'timezone', '') or ''}",
              "the municipality's local time (config timezone), offset dropped: Excel has no time zones"),
             *notes,
             (), ("分類 class", "損傷種別 (ja)", "damage type (en)")]
    for cid in CLASS_IDS:
        rows.append((cid, cfg.class_name(cid, "ja") if cfg else cid, cfg.class_name(cid, "en") if cfg else cid))
    rows += [(), ("状態 status", "和名 (ja)", "")]
    rows += [(k, ja, en) for k, (ja, en) in STATUS_LABELS.items()]
    rows += [(), ("列 column", "見出し (ja)", "heading (en)")]
    rows += [(c, ja, en) for c, ja, en in cols]
    for r in rows:
        lg.append([_CTRL.sub("", x) if isinstance(x, str) else x for x in r])
        if r and len(r) > 1 and r[0] in ("分類 class", "状態 status", "列 column"):
            for c in lg[lg.max_row]:
                c.font = bold
    lg["A1"].font = xlsx_font(bold=True, size=14)
    xlsx_legend_print(lg)
    return lg


# ----------------------------------------------------------------------------------------------------------
# KML
# ----------------------------------------------------------------------------------------------------------


def _kml_color(hex_rgb: str, alpha: str = "ff") -> str:
    h = hex_rgb.lstrip("#")
    return alpha + h[4:6] + h[2:4] + h[0:2]  # KML is aabbggrr


def _x(v: Any) -> str:
    v = _flat(v)
    if isinstance(v, bool):
        return BOOL_TEXT[v]
    return "" if v is None else _CTRL.sub("", str(v))


def write_kml(df: pd.DataFrame, path: Path, cfg=None) -> None:
    ns = "http://www.opengis.net/kml/2.2"  # namespace name, not a resource: nothing is fetched
    ET.register_namespace("", ns)
    q = lambda t: f"{{{ns}}}{t}"  # noqa: E731
    kml = ET.Element(q("kml"))
    doc = ET.SubElement(kml, q("Document"))
    ET.SubElement(doc, q("name")).text = "道路損傷 補修候補 / Road damage repair candidates"
    ET.SubElement(doc, q("description")).text = f"{getattr(cfg, 'municipality', '')}: {len(df)} candidates"
    for cid in sorted(set(CLASS_IDS) | set(df["class"])):
        for st in STATUS_LABELS:
            s = ET.SubElement(doc, q("Style"), id=f"{_x(cid)}-{st}")
            icon = ET.SubElement(s, q("IconStyle"))
            done = st in CLOSED_STATUSES
            ET.SubElement(icon, q("color")).text = _kml_color("#9e9e9e" if done else CLASS_COLORS.get(cid, OTHER_COLOR))
            ET.SubElement(icon, q("scale")).text = "0.8" if done else ("1.3" if st in ("confirmed", "scheduled", "reopened") else "1.0")
            lab = ET.SubElement(s, q("LabelStyle"))
            ET.SubElement(lab, q("scale")).text = "0.7"
    folders: dict[str, ET.Element] = {}
    columns = _columns(df, cfg)
    fields = [c for c, *_ in columns]
    heads = {c: (ja if ja == en else f"{ja} / {en}") for c, ja, en in columns}  # "damage type" only once
    told = [c for c in fields if c != "last_images"]  # the balloon: a few lines a crew reads; the frames: ExtendedData
    for rec in _records(df):
        cid = rec.get("class") or ""
        if cid not in folders:
            f = ET.SubElement(doc, q("Folder"))
            ET.SubElement(f, q("name")).text = _x(f"{cid} {rec.get('class_name_ja') or ''} / {rec.get('class_name') or ''}")
            folders[cid] = f
        pm = ET.SubElement(folders[cid], q("Placemark"))
        ET.SubElement(pm, q("name")).text = _x(f"{cid} {rec.get('class_name_ja') or ''} #{rec['candidate_id']}")
        lines = [f"{heads[c]}: {_x(rec.get(c))}" for c in told if _x(rec.get(c)) != ""]
        ET.SubElement(pm, q("description")).text = "\n".join(lines)  # plain text; ElementTree escapes it
        first, last = rec.get("first_seen"), rec.get("last_seen")
        if first or last:
            ts = ET.SubElement(pm, q("TimeSpan"))
            if first:
                ET.SubElement(ts, q("begin")).text = _x(first)
            if last:
                ET.SubElement(ts, q("end")).text = _x(last)
        ET.SubElement(pm, q("styleUrl")).text = f"#{_x(cid)}-{rec.get('status') if rec.get('status') in STATUS_LABELS else 'new'}"
        ed = ET.SubElement(pm, q("ExtendedData"))
        for c in fields:
            d = ET.SubElement(ed, q("Data"), name=c)
            ET.SubElement(d, q("displayName")).text = heads[c]
            ET.SubElement(d, q("value")).text = _x(rec.get(c))
        pt = _point(rec.get("lat"), rec.get("lon"))
        if pt is not None:
            p = ET.SubElement(pm, q("Point"))
            ET.SubElement(p, q("coordinates")).text = f"{pt['coordinates'][0]},{pt['coordinates'][1]},0"
    ET.indent(kml, space=" ")
    data = ET.tostring(kml, encoding="utf-8", xml_declaration=True)
    with atomic_write(path, "wb") as fh:
        fh.write(data)


# ----------------------------------------------------------------------------------------------------------
# HTML
# ----------------------------------------------------------------------------------------------------------


def json_for_script(obj: Any) -> str:
    """JSON safe inside a <script> element: no '<', '>', '&' or line separators can end or confuse it."""
    s = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


# the thumbnail sizes a size cap (--max-mb) steps down through: the popup's (320x240, WebP quality 60: ~7 KB of
# base64 on the sample's crops), 240 px (~3.9 KB), 200 px (~2.9 KB), 160 px (~1.8 KB: a crack still shows;
# at 128 px the box's label no longer reads); below the last, the least urgent damages' photos are left out
THUMB_STEPS = ((320, 240, 60), (240, 180, 45), (200, 150, 45), (160, 120, 40))
# which photos a size cap keeps first: the damages the office still has to decide or fix, then scheduled ones,
# then the closed ones; within each, by severity
PHOTO_RANK = {"new": 0, "reopened": 0, "confirmed": 0, "scheduled": 1, "repaired": 2, "not_an_issue": 2}


def _is_crop(b: Any) -> bool:
    return isinstance(b, (bytes, bytearray, memoryview)) and len(b) >= 4


def _crop_uri(b: Any, step: tuple[int, int, int] = THUMB_STEPS[0]) -> str | None:
    """The crop as a data: URI of its thumbnail (``crops.thumbnail``: the popup's size, not the crew's full crop;
    ``step``: max width, max height, WebP quality)."""
    return _data_uri(_thumb_bytes(b, step))


def _thumb_bytes(b: Any, step: tuple[int, int, int]) -> bytes | None:
    """The crop's thumbnail at ``step`` (``crops.thumbnail``), None for no crop."""
    from .crops import thumbnail

    if isinstance(b, memoryview):
        b = b.tobytes()
    if not isinstance(b, (bytes, bytearray)) or len(b) < 4:
        return None
    w, h, q = step
    return thumbnail(bytes(b), w, h, q)


def _data_uri(b: bytes | None) -> str | None:
    """A thumbnail's bytes as a data: URI (WebP, JPEG or PNG by their first bytes), None for anything else."""
    if not isinstance(b, (bytes, bytearray)):
        return None
    if bytes(b[:4]) == b"RIFF" and bytes(b[8:12]) == b"WEBP":
        mime = "image/webp"
    elif bytes(b[:3]) == b"\xff\xd8\xff":
        mime = "image/jpeg"
    elif bytes(b[:8]) == b"\x89PNG\r\n\x1a\n":
        mime = "image/png"
    else:
        return None
    return f"data:{mime};base64," + base64.b64encode(bytes(b)).decode("ascii")


def _photo_href(path: Any) -> str | None:
    """A photo path relative to the html (``map_html_crops/R-000012.jpg``, ``crops/C0001.jpg``) as a relative URL:
    percent-encoded, so a file or folder name with spaces, ``#``, ``%`` or Japanese resolves to that file when the
    page is opened from disk, and never a scheme (``:`` is encoded)."""
    from urllib.parse import quote

    if not isinstance(path, str) or not path:
        return None
    return quote(path.replace("\\", "/"), safe="/")


def _road_lines(roads_wgs84, df: pd.DataFrame, near_m: float = 300.0, simplify_m: float = 2.0,
                max_full: int = 3000) -> list[dict]:
    """Road polylines for the map, each ``{"d": [lat, lon, dlat, dlon, ...]}`` (1e-5 degrees; ``road_coords``) (grey, not interactive: the page draws only their
    shape): for a large network only the segments within ``near_m`` of a candidate; segments that meet end to end
    merged into one line (``shapely.line_merge``: a ledger network is one line a link between intersections, a
    city's ~50,000 two-point links were ~90 bytes each of brackets, names and ids the page never used), simplified
    by ``simplify_m`` and rounded to 1e-5 degrees (~1 m: the phone's GPS error, under a pixel at the map's street
    zoom), each point but the first as its step from the one before (a few digits, not 20 characters a point)."""
    if roads_wgs84 is None or len(roads_wgs84) == 0:
        return []
    import geopandas as gpd
    import shapely

    g = roads_wgs84
    if g.crs is None:
        g = g.set_crs("EPSG:4326")
    g = g[g.geometry.notna() & ~g.geometry.is_empty]
    if len(g) == 0:
        return []
    try:
        metric = g.estimate_utm_crs()
    except Exception:  # noqa: BLE001 - degenerate extents: fall back to web mercator
        metric = "EPSG:3857"
    gm = g.to_crs(metric)
    pts = [(float(lo), float(la)) for la, lo in zip(df["lat"], df["lon"]) if _clean(la) is not None and _clean(lo) is not None]
    if len(gm) > max_full and pts:
        cand = gpd.GeoSeries(gpd.points_from_xy([p[0] for p in pts], [p[1] for p in pts]), crs="EPSG:4326").to_crs(metric)
        # the links within near_m of a candidate, by an STRtree; it was their intersection with one buffer of all
        # candidates (a MultiPoint of 6,987 damages: 31 s and 3.5 GB, bench_registry_scale.py --export), whose
        # polygon circles left out a few links 299.7-300 m away
        near = shapely.STRtree(cand.to_numpy()).query(gm.geometry.to_numpy(), predicate="dwithin", distance=near_m)[0]
        gm = gm.iloc[np.unique(near)]
    parts = shapely.get_parts(shapely.get_parts(gm.geometry.to_numpy()))  # multi-lines (and collections) to parts
    parts = parts[(shapely.get_type_id(parts) == 1) & ~shapely.is_empty(parts)]  # LineStrings
    if len(parts) == 0:
        return []
    merged = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(parts)))
    merged = shapely.simplify(merged, simplify_m, preserve_topology=False)
    back = gpd.GeoSeries(merged, crs=metric).to_crs("EPSG:4326").to_numpy()
    return [{"d": d} for d in _delta_lines(back) if d is not None]


def _delta_lines(lines_wgs84) -> list[list[int] | None]:
    """Each WGS 84 line as the page's ``d`` (``road_coords``): its first point and then each point's step from the
    one before, in 1e-5 degrees, points made equal by the rounding dropped; None for one of fewer than 2 points."""
    import shapely

    lines_wgs84 = np.asarray(lines_wgs84, dtype=object)
    out: list[list[int] | None] = [None] * len(lines_wgs84)
    xy, idx = shapely.get_coordinates(lines_wgs84, return_index=True)
    if len(xy) == 0:
        return out
    lat, lon = np.round(xy[:, 1] * 1e5).astype(np.int64), np.round(xy[:, 0] * 1e5).astype(np.int64)
    cuts = np.flatnonzero(np.diff(idx)) + 1
    for k, la, lo in zip(idx[np.r_[0, cuts]], np.split(lat, cuts), np.split(lon, cuts)):
        keep = np.r_[True, (np.diff(la) != 0) | (np.diff(lo) != 0)]  # points made equal by the rounding
        if keep.sum() >= 2:
            la, lo = la[keep], lo[keep]
            out[k] = np.column_stack([np.r_[la[0], np.diff(la)], np.r_[lo[0], np.diff(lo)]]).ravel().tolist()
    return out


#: report.html's road-condition layer: condition 1 (good) .. 5 (bad), green to red (ColorBrewer RdYlGn, the
#: yellow darkened to show on the map's light background); a segment surveyed too little (not ``valid``): grey, dashed;
#: one with damages that no frame surveyed (no damage index): dark grey, dotted
CONDITION_COLORS = ["#1a9850", "#91cf60", "#e6b800", "#fc8d59", "#d73027"]
NOT_VALID_COLOR = "#7a8591"
NOT_SURVEYED_COLOR = "#4a525c"
#: its key's words for condition 1 .. 5 (日本語, English); the key, these colours and ``condition_keys``' lines are
#: also the QGIS legend of the condition GeoPackages (``qgisstyle``: one place, so the map and QGIS agree)
CONDITION_WORDS = [("良い", "good"), ("やや良い", "fairly good"), ("普通", "moderate"), ("やや悪い", "fairly poor"),
                   ("悪い", "poor")]
#: the condition layer's thresholds and minimum coverage without a config (``SegmentsConfig``'s defaults)
CONDITION_THRESHOLDS = [2.0, 5.0, 10.0, 20.0]
MIN_COVERAGE = 0.5


def condition_range(k: int, thresholds) -> str:
    """The damage index of condition ``k`` (1..5) as the key gives it: ``< 2``, ``2–5`` … ``≥ 20`` (``thresholds``:
    the upper bounds of 1..4, ``segments.thresholds``)."""
    t = [f"{float(v):g}" for v in thresholds]
    return f"< {t[0]}" if k == 1 else f"≥ {t[3]}" if k == 5 else f"{t[k - 2]}–{t[k - 1]}"


def condition_keys(min_coverage: float = MIN_COVERAGE, good_look: bool = False) -> tuple[str, str]:
    """The key's lines of the condition layer's two grey kinds: a segment surveyed too little to rate (under
    ``min_coverage``), one with damages that no frame surveyed (``good_look``: the rows count only frames of good
    look, the registry's)."""
    pc = round(100 * float(min_coverage))
    nv = f"判定不可 (調査 {pc} % 未満) / not rated (under {pc} % surveyed)"
    ns = ("損傷あり・未調査 (良好な写真なし) / damage reported, not surveyed (good look)" if good_look
          else "損傷あり・未調査 / damage reported, not surveyed")
    return nv, ns


def _metric(g):
    """``g`` (a GeoDataFrame; no CRS: WGS 84) in metres for simplifying its lines: as it is where projected, else in
    its UTM zone (Web Mercator where the extent has none)."""
    if g.crs is None:
        g = g.set_crs("EPSG:4326")
    if g.crs.is_geographic:
        try:
            g = g.to_crs(g.estimate_utm_crs())
        except Exception:  # noqa: BLE001 - degenerate extents
            g = g.to_crs("EPSG:3857")
    return g


def _diagnosis_words() -> dict:
    """report.html's words for 診断区分 (``segments.DIAGNOSIS``): {"I": [日本語, English], ...}."""
    from .segments import DIAGNOSIS, DIAGNOSIS_WORDS

    return {k: list(w) for k, w in zip(DIAGNOSIS, DIAGNOSIS_WORDS)}


def condition_lines(segments, simplify_m: float = 2.0) -> list[dict]:
    """report.html's road-condition layer from ``segments.segment_condition`` rows (a run's segments.geojson, the
    registry's ``--format segments``): the whole segments (``level == "segment"``, not the bins) that some frame
    surveyed (``surveyed_m > 0``) or that carry a damage counted there (``n_total > 0``) though no frame surveyed them
    (no damage index, so no condition: ``"ns": 1``, drawn apart from those rated and those surveyed too little to
    rate), each ``{"d": line (as _road_lines, simplified by simplify_m), "id": segment_id, "n": road name,
    "c": condition 1..5 or None (not valid, not surveyed), "di": damage index per 100 m (None: not surveyed),
    "cov": coverage %, "m": surveyed m, "L": length m, "k": [n_D00, n_D10, n_D20, n_D40], "t0"/"t1": the day
    first/last surveyed by a frame of good look (``first_surveyed``/``last_surveyed``, YYYY-MM-DD; where known),
    "cr": the estimated crack rate % (ひび割れ率, ``crack_rate``; None: not surveyed), "dg": 診断区分 I/II/III
    (``diagnosis``; None: not valid), "mci": MCI from the crack rate alone (``mci_crack``, an upper bound), "ne": the
    damages without a size estimate (``n_no_estimate``; only where some)}``, numbers rounded (whole ones as
    integers): a city's 6,634 surveyed segments 1.05 MB."""
    if segments is None or len(segments) == 0:
        return []
    import geopandas as gpd
    import shapely

    some = (pd.to_numeric(segments["surveyed_m"], errors="coerce") > 0) | (pd.to_numeric(segments["n_total"],
                                                                                         errors="coerce") > 0)
    g = segments[(segments["level"] == "segment") & some]
    g = g[g.geometry.notna() & ~g.geometry.is_empty]
    if len(g) == 0:
        return []
    g = _metric(g)
    lines = shapely.simplify(g.geometry.to_numpy(), simplify_m, preserve_topology=False)
    d = _delta_lines(gpd.GeoSeries(lines, crs=g.crs).to_crs("EPSG:4326").to_numpy())
    cond = pd.array(g["condition"], dtype="Int64")
    di = pd.to_numeric(g["damage_index"], errors="coerce").to_numpy(float)
    cov = pd.to_numeric(g["coverage"], errors="coerce").to_numpy(float)
    counts = g[[f"n_{c}" for c in CLASS_IDS]].to_numpy(int).tolist()
    t0 = g["first_surveyed"].tolist() if "first_surveyed" in g.columns else [None] * len(g)
    t1 = g["last_surveyed"].tolist() if "last_surveyed" in g.columns else [None] * len(g)
    m_exact = np.nan_to_num(pd.to_numeric(g["surveyed_m"], errors="coerce").to_numpy(float))
    surveyed = np.round(m_exact).astype(int).tolist()
    length = np.round(pd.to_numeric(g["length_m"], errors="coerce").to_numpy(float)).astype(int).tolist()
    has_cr = "crack_rate" in g.columns  # (segments.segment_condition's rows have it; a table of older columns not)
    cr = pd.to_numeric(g["crack_rate"], errors="coerce").to_numpy(float) if has_cr else None
    mci = pd.to_numeric(g["mci_crack"], errors="coerce").to_numpy(float) if has_cr else None
    dg = [v if isinstance(v, str) else None for v in g["diagnosis"]] if has_cr else None
    ne = pd.to_numeric(g["n_no_estimate"], errors="coerce").fillna(0).to_numpy(int) if has_cr else None

    def num(v: float, nd: int):
        v = round(float(v), nd)
        return int(v) if v.is_integer() else v

    def day(v):  # the local ISO time's day: what planning needs, 10 characters, not 25
        v = _clean(v)
        return str(v)[:10] if v else None

    out = []
    for k, (sid, name) in enumerate(zip(g["segment_id"].astype(str), g["road_name"].tolist())):
        if d[k] is None:
            continue
        rec = {"d": d[k], "id": sid, "n": _clean(name) or None,
               "c": None if cond[k] is pd.NA else int(cond[k]),
               "di": num(di[k], 2) if np.isfinite(di[k]) else None,
               "cov": num(100.0 * cov[k], 1) if np.isfinite(cov[k]) else None,
               "m": surveyed[k], "L": length[k], "k": counts[k]}
        if has_cr:  # the estimated crack rate, 診断区分 (None where not valid, as "c"), MCI's upper bound
            rec["cr"] = num(cr[k], 1) if np.isfinite(cr[k]) else None
            rec["dg"] = dg[k]
            rec["mci"] = num(mci[k], 1) if np.isfinite(mci[k]) else None
            if ne[k]:
                rec["ne"] = int(ne[k])
        if not m_exact[k] > 0:  # damages here, no frame surveyed it (README: the road-condition layer)
            rec["ns"] = 1
        if day(t0[k]) or day(t1[k]):
            rec["t0"], rec["t1"] = day(t0[k]), day(t1[k])
        out.append(rec)
    return out


#: report.html's patrol-due layer (巡回予定): due (that day or overdue: ``days_overdue`` >= 0, what ``Due.due`` and the
#: list's console line count as due), due within ``DUE_SOON_DAYS`` after that day, not yet due, never surveyed (dark
#: grey, dashed: due too, what is due first)
DUE_COLORS = ["#d73027", "#f28e00", "#1a9850", "#4a525c"]
DUE_SOON_DAYS = 7
#: its key's words for the four (日本語, English); also the QGIS legend of the due GeoPackage (``qgisstyle``)
DUE_WORDS = [("期限切れ・本日期限", "due (today or overdue)"),
             (f"期限間近 ({DUE_SOON_DAYS} 日以内)", f"due within {DUE_SOON_DAYS} days"),
             ("期限前", "not yet due"), ("未巡回", "never surveyed")]


def due_lines(due, simplify_m: float = 2.0) -> list[dict]:
    """report.html's patrol-due layer from ``due.due_table``'s ``Due`` (the segments on a patrol cycle): its segments
    merged per road, frequency and last patrol day (never surveyed: one group per road and frequency), as everything
    the popup says is the same along such a group (the due day follows from the last patrol and the frequency): a
    whole network never driven is then a few multi-lines, not one record per segment (the sample network's 11,215
    never-surveyed segments: 134 KB, not 636 KB with their ids). Each ``{"d": [line, ...] (as _road_lines: segments
    that meet end to end merged, simplified by simplify_m, delta-encoded), "n": road name (None: unnamed),
    "t": last patrol day (YYYY-MM-DD; None: never surveyed), "e": every_days, "k": segments, "m": metres}``; the page
    colours each by ``t + e`` against ``Due.at``. Most overdue first, as the list."""
    if due is None or len(due.table) == 0:
        return []
    import geopandas as gpd
    import shapely

    g = due.table  # (a segment without a geometry: counted in its group's "k", not drawn)
    g = _metric(g)
    keys = pd.DataFrame({"n": g["road_name"].fillna("").astype(str).to_numpy(),
                         "t": g["last_surveyed"].fillna("").astype(str).to_numpy(),
                         "e": g["every_days"].to_numpy(np.int64)})
    # the groups in the table's order (most overdue first); a segment's parts (a multi-line) each a line of its group
    gid, first = pd.factorize(pd.MultiIndex.from_frame(keys), sort=False)
    parts, pidx = shapely.get_parts(g.geometry.to_numpy(), return_index=True)
    line = shapely.get_type_id(parts) == 1
    parts, pidx = parts[line], pidx[line]
    order = np.argsort(gid[pidx], kind="stable")  # multilinestrings takes its parts by ascending index, none missing
    present, dense = np.unique(gid[pidx][order], return_inverse=True)
    merged = shapely.line_merge(shapely.multilinestrings(parts[order], indices=dense))
    lines, lidx = shapely.get_parts(merged, return_index=True)
    lines = shapely.simplify(lines, simplify_m, preserve_topology=False)
    d = _delta_lines(gpd.GeoSeries(lines, crs=g.crs).to_crs("EPSG:4326").to_numpy())
    group = present[lidx]
    k = np.bincount(gid, minlength=len(first))
    m = np.bincount(gid, weights=pd.to_numeric(g["length_m"], errors="coerce").fillna(0).to_numpy(float),
                    minlength=len(first))
    out: list[dict] = [{"d": [], "n": n or None, "t": t or None, "e": int(e), "k": int(k[i]), "m": int(round(m[i]))}
                       for i, (n, t, e) in enumerate(first)]
    for grp, dl in zip(group, d):
        if dl is not None:
            out[grp]["d"].append(dl)
    return [o for o in out if o["d"]]


#: report.html's repair jobs layer (補修工区): each job's outline, dashed, lightly filled
JOB_COLOR = "#0b6e99"


def job_shapes(jobs, index: dict[str, int], simplify_m: float = 1.0) -> list[dict]:
    """report.html's repair jobs layer from ``jobs.job_table``'s ``Jobs`` (the map's open damages bundled as
    ``--format jobs`` bundles them; computed once, by the caller): each job's outline (the buffered hull
    ``job_table`` draws in the GeoJSON: simplified by ``simplify_m``, its ring delta-encoded as ``_road_lines``, the
    closing point dropped), in the list's order, each ``{"d": ring, "id": job_id, "n": road name (None: unnamed),
    "f": the kept road fields' values (``Jobs.kept``; only where the config keeps some), "k": [n_D00, n_D10, n_D20,
    n_D40], "a": area m², "no": damages without a size estimate, "c": cost (only with repair_cost), "s": largest
    severity, "x": extent m, "i": its damages' indices in the page's candidates (``index``: candidate_id -> index),
    "p": 1 only where no jobs list named it yet (``Jobs.fresh``: its id is the one the next list gives it)}``.
    A job without a position (no outline) is left out (its damage has no marker either)."""
    if jobs is None or len(jobs.table) == 0:
        return []
    import geopandas as gpd
    import shapely

    t = jobs.table
    g = _metric(t)
    has = g.geometry.notna().to_numpy() & ~g.geometry.is_empty.to_numpy()
    rings = np.full(len(g), None, dtype=object)
    rings[has] = shapely.get_exterior_ring(shapely.simplify(g.geometry.to_numpy()[has], simplify_m))
    d = _delta_lines(gpd.GeoSeries(rings, crs=g.crs).to_crs("EPSG:4326").to_numpy())
    classes = [f"n_{c}" for c in CLASS_IDS]
    out: list[dict] = []
    for k, rec in enumerate(t.drop(columns=t.geometry.name).to_dict("records")):
        if d[k] is None:
            continue
        ring = d[k][:-2] if len(d[k]) > 6 and sum(d[k][2::2]) == 0 and sum(d[k][3::2]) == 0 else d[k]  # (closed)
        o = {"d": ring, "id": rec["job_id"], "n": rec["road_name"] or None}
        if jobs.kept:
            o["f"] = [_clean(rec.get(c)) for c in jobs.kept]
        o.update({"k": [int(rec[c]) for c in classes], "a": _fmt_num(rec["area_m2"], 1), "no": int(rec["no_estimate"]),
                  "s": _fmt_num(rec["severity_max"], 2), "x": _fmt_num(rec["extent_m"], 1),
                  "i": [index[c] for c in str(rec["candidate_ids"]).split(";") if c in index]})
        if "cost" in rec:
            o["c"] = int(rec["cost"])
        if len(jobs.fresh) == len(t) and jobs.fresh[k]:
            o["p"] = 1
        out.append(o)
    return out


def road_coords(line: dict) -> list[list[float]]:
    """A map road line's ``[[lat, lon], ...]`` (as the page decodes ``d``: its first point and then each point's
    step from the one before, in 1e-5 degrees)."""
    d = np.cumsum(np.asarray(line["d"], dtype=np.int64).reshape(-1, 2), axis=0) / 1e5
    return d.tolist()


def _fmt_num(v: Any, nd: int) -> Any:
    v = _clean(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return round(float(v), nd)
    return v


#: threads making thumbnails (None: min(8, os.cpu_count())); bench_report.py --cold sets 1 to measure what they give
THUMB_WORKERS: int | None = None


def _thumb_uris(crops: list, step: tuple[int, int, int], cache: str | Path | None = None) -> list[str | None]:
    """Each crop's thumbnail data: URI at ``step``; WebP costs ~4 ms of CPU a thumbnail (JPEG 0.5): thousands of
    them in a thread pool. ``cache``: the registry's thumbnail cache (``thumb_cache_path``): a crop whose thumbnail
    at ``step`` it holds is not made again (the same bytes as made now), those made are added to it."""
    from concurrent.futures import ThreadPoolExecutor

    keys: list[bytes | None] = [None] * len(crops)
    got: dict[bytes, bytes] = {}
    if cache is not None:
        keys = [hashlib.sha256(bytes(b)).digest() if _is_crop(b) else None for b in crops]
        got = ThumbCache(cache).read(step, {k for k in keys if k is not None})
    todo = [i for i, k in enumerate(keys) if k is None or k not in got]
    with ThreadPoolExecutor(max_workers=THUMB_WORKERS or min(8, os.cpu_count() or 1)) as pool:
        made = list(pool.map(lambda i: _thumb_bytes(crops[i], step), todo, chunksize=16))
    thumbs: list[bytes | None] = [got.get(k) if k is not None else None for k in keys]
    new: dict[bytes, bytes] = {}
    for i, t in zip(todo, made):
        thumbs[i] = t
        if keys[i] is not None and t is not None:
            new[keys[i]] = t
    if cache is not None:
        ThumbCache(cache).write(step, new, set(got))
    return [_data_uri(t) for t in thumbs]


def thumb_cache_path(registry: str | Path) -> Path:
    """Where ``patrol export --format html`` of a registry keeps its thumbnails: beside it, ``registry.gpkg`` ->
    ``registry.gpkg.thumbs`` (SQLite; deleting it only makes the next export make them all again)."""
    registry = Path(registry)
    return registry.with_name(registry.name + ".thumbs")


class ThumbCache:
    """The report's thumbnails of a registry's crops, kept between exports (a weekly export of a year's registry made
    ~7,000 WebP thumbnails each time, ~26 s of 2 cores, for crops that had not changed): one row per crop (its
    bytes' SHA-256) and ``recipe`` (the step's size and quality, the format and method, the Pillow, libwebp and
    OpenCV versions and ``VERSION``: whatever would make another thumbnail), holding ``crops.thumbnail``'s bytes, so
    an export reads the same bytes it would make. A row not read for ``KEEP_DAYS`` (a crop replaced by a better
    one) is removed at the next write. The cache is a help, never a requirement: a folder that cannot be written
    (a read-only share), a file that is busy (another export writing it) or not a cache are as no cache: every
    thumbnail made, the export as without it."""

    VERSION = 1  # raise when crops.thumbnail makes other bytes from the same inputs
    KEEP_DAYS = 90
    TIMEOUT_S = 5.0

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def recipe(cls, step: tuple[int, int, int]) -> str:
        import cv2
        from PIL import __version__ as pil, features

        from .crops import THUMB_FORMAT, THUMB_WEBP_METHOD

        webp = features.version("webp") if features.check("webp") else None
        w, h, q = step
        return (f"v{cls.VERSION} {THUMB_FORMAT} {w}x{h} q{q} m{THUMB_WEBP_METHOD} pillow {pil} webp {webp} "
                f"opencv {cv2.__version__}")

    def _connect(self, create: bool):
        import sqlite3

        if not create and not self.path.is_file():
            return None
        con = sqlite3.connect(self.path, timeout=self.TIMEOUT_S)
        con.execute("CREATE TABLE IF NOT EXISTS thumbs (hash BLOB NOT NULL, recipe TEXT NOT NULL, data BLOB NOT NULL, "
                    "used INTEGER NOT NULL, PRIMARY KEY (hash, recipe)) WITHOUT ROWID")
        return con

    @staticmethod
    def _today() -> int:
        return int(time.time() // 86400)

    def read(self, step: tuple[int, int, int], keys: set[bytes]) -> dict[bytes, bytes]:
        """{hash: thumbnail} of those ``keys`` the cache holds at ``step`` ({} without a usable cache)."""
        import sqlite3

        out: dict[bytes, bytes] = {}
        if not keys:
            return out
        try:
            con = self._connect(create=False)
            if con is None:
                return out
            try:
                recipe, ks = self.recipe(step), list(keys)
                for i in range(0, len(ks), 500):
                    part = ks[i:i + 500]
                    out.update(con.execute(f"SELECT hash, data FROM thumbs WHERE recipe=? AND hash IN "
                                           f"({','.join('?' * len(part))})", [recipe, *part]).fetchall())
            finally:
                con.close()
        except (sqlite3.Error, OSError):
            return {}
        return {bytes(k): bytes(v) for k, v in out.items()}

    def write(self, step: tuple[int, int, int], new: dict[bytes, bytes], used: set[bytes] = frozenset()) -> None:
        """Add ``new`` ({hash: thumbnail}), mark ``used`` (read from it) as used today, remove rows unused for
        ``KEEP_DAYS``. Quietly nothing where the cache cannot be written."""
        import sqlite3

        if not new and not used:
            return
        today, recipe = self._today(), self.recipe(step)
        try:
            con = self._connect(create=True)
            try:
                with con:
                    con.executemany("INSERT OR REPLACE INTO thumbs VALUES (?, ?, ?, ?)",
                                    [(k, recipe, v, today) for k, v in new.items()])
                    con.executemany("UPDATE thumbs SET used=? WHERE hash=? AND recipe=? AND used<?",
                                    [(today, k, recipe, today) for k in used])
                    con.execute("DELETE FROM thumbs WHERE used<?", (today - self.KEEP_DAYS,))
            finally:
                con.close()
        except (sqlite3.Error, OSError):
            pass


def _set_thumbs(data: dict[str, Any], uris: list) -> list[str]:
    """Each candidate's ``thumb``: its line in the thumbnails block (returned), None without a crop, False for a
    photo a size cap left out (the popup says so)."""
    thumbs: list[str] = []
    for c, uri in zip(data["candidates"], uris):
        c["thumb"] = len(thumbs) if uri else (False if uri is False else None)
        if uri:
            thumbs.append(uri)
    return thumbs


def html_data(df: pd.DataFrame, cfg, roads_wgs84=None, uris: list | None = None,
              thumb_cache: str | Path | None = None, segments=None, due=None,
              reports=None, jobs=None) -> tuple[dict[str, Any], list[str]]:
    """The page's data (candidates, classes, statuses, roads …) and the thumbnails' data: URIs apart from it: a
    candidate's ``thumb`` is its index in that list (None: no crop). The page reads the list only when a popup
    first shows a photo, so thousands of photos are not parsed into objects when the file opens. ``uris``: each
    row's thumbnail (``_set_thumbs``) where the caller made them (a size cap), else the popup's size, through
    ``thumb_cache`` (``ThumbCache``) where given. ``segments``: ``segments.segment_condition``'s rows, drawn as the
    road-condition layer (``condition_lines``; ``conditions`` in the data, with the classes' upper bounds); ``due``:
    ``due.due_table``'s ``Due``, drawn as the patrol-due layer (``due_lines``; ``due`` in the data, with its day);
    ``reports``: citizen reports with their damage (``citizen.match_reports``), drawn as the 住民通報 layer and
    listed in their damages' popups (``report_rows``; ``reports`` in the data only where there are any: a page
    without is the page as before, byte for byte, ``_page``); ``jobs``: ``jobs.job_table``'s ``Jobs``, drawn as the
    repair jobs layer (``job_shapes``; ``jobs`` in the data only where there are any)."""
    cands = []
    columns = _columns(df, cfg)
    if uris is None:
        uris = _thumb_uris(list(df["crop_jpeg"]), THUMB_STEPS[0], thumb_cache)
    for i, rec in enumerate(_records(df)):
        c = {k: rec.get(k) for k, *_ in columns if k != "last_images"}  # the popup shows the best frame's crop
        for k, nd in (("confidence", 3), ("severity", 2), ("chainage_m", 1), ("est_width_m", 2), ("est_length_m", 2)):
            c[k] = _fmt_num(c.get(k), nd)
        c["lat"], c["lon"] = _fmt_num(c.get("lat"), 7), _fmt_num(c.get("lon"), 7)
        for k in ("make", "model"):
            if k in rec:
                c[k] = rec[k]
        # grown since first seen (a registry's): one short array where known, [first m², latest m², ×, 1 where grown]
        # (the page unpacks it: 20 bytes a damage against 54 as four named members; none where not known)
        g = [c.pop(k, None) for k in GROWTH_KEYS]
        if g[2] is not None and g[2] == g[2]:
            c["g"] = g if g[3] == 1 else g[:3]
        c["photo"] = _photo_href(rec.get("photo"))
        c["i"] = i
        cands.append(c)
    classes = [{"id": cid, "ja": cfg.class_name(cid, "ja") if cfg else cid, "en": cfg.class_name(cid, "en") if cfg else cid,
                "color": CLASS_COLORS.get(cid, OTHER_COLOR)} for cid in CLASS_IDS]
    for extra in sorted(set(df["class"]) - set(CLASS_IDS)):
        classes.append({"id": extra, "ja": extra, "en": extra, "color": OTHER_COLOR})
    made = _now(cfg)
    good_look = bool(getattr(segments, "attrs", {}).get("good_look_only", False))
    min_cov = float(getattr(getattr(cfg, "segments", None), "min_coverage", MIN_COVERAGE))
    data = {
        "meta": {"municipality": getattr(cfg, "municipality", ""), "n": len(cands), "version": __version__,
                 "generated": made.strftime("%Y-%m-%d %H:%M %z"),
                 # the dotted ring's cut-off (config store.unseen_ring_passes): n_unseen at least this
                 "unseenRing": int(getattr(getattr(cfg, "store", None), "unseen_ring_passes", UNSEEN_RING_PASSES)),
                 "closed": list(CLOSED_STATUSES),  # done with: no ring, not in the status filter's "open"
                 "webMap": web_map(cfg)},  # the popups' web map link (config export.map_url; None: none)
        "classes": classes,
        "statuses": [{"id": k, "ja": ja, "en": en} for k, (ja, en) in STATUS_LABELS.items()],
        "columns": [{"id": c, "ja": ja, "en": en} for c, ja, en in columns],
        "roadFields": _kept(df, cfg),  # kept road fields: popup rows and table columns after the road name
        "candidates": cands,
        "roads": _road_lines(roads_wgs84, df),
        # the road-condition layer (README: report.html): the surveyed segments, their condition 1..5
        # (goodLook: the rows count only frames of good look, the registry's; a run's count its poor-look frames too)
        "conditions": {"segments": condition_lines(segments), "colors": CONDITION_COLORS, "notValid": NOT_VALID_COLOR,
                       "notSurveyed": NOT_SURVEYED_COLOR, "words": CONDITION_WORDS,
                       "keys": condition_keys(min_cov, good_look), "goodLook": good_look,
                       "radius": float(getattr(getattr(cfg, "segments", None), "coverage_radius_m", 15.0)),
                       "thresholds": [float(t) for t in getattr(getattr(cfg, "segments", None), "thresholds",
                                                                  CONDITION_THRESHOLDS)],
                       "minCoverage": min_cov, "diagnosis": _diagnosis_words(),
                       "width": float(getattr(getattr(cfg, "segments", None), "survey_width_m", 3.0))},
        # the patrol-due layer (README: report.html): the segments on a patrol cycle by their due state on ``at``
        "due": {"lines": due_lines(due), "at": due.at.isoformat() if due is not None else None,
                "soon": DUE_SOON_DAYS, "colors": DUE_COLORS, "words": DUE_WORDS},
    }
    if jobs is not None and len(jobs.table):  # the repair jobs layer (README: report.html): --format jobs' rows
        index = {str(c.get("candidate_id")): c["i"] for c in cands}
        rows = job_shapes(jobs, index)
        if rows:
            data["jobs"] = {"rows": rows, "gap": float(jobs.gap_m), "currency": jobs.currency,
                            "fields": list(jobs.kept), "roadField": jobs.road_field, "color": JOB_COLOR}
    if reports is not None and len(reports):
        data["reports"] = {"rows": report_rows(reports),
                           "radius": float(getattr(getattr(cfg, "reports", None), "radius_m", 20.0)),
                           "kinds": list(REPORT_KIND_LABELS), "matches": list(REPORT_MATCH_LABELS)}
    crew = crew_meta(cands, made, getattr(cfg, "municipality", ""), df.attrs.get("registry"))
    if crew:
        data["meta"]["crew"] = crew
    return data, _set_thumbs(data, uris)


#: report.html's citizen reports: a report's text cut to this many characters (the whole in --format reports)
REPORT_TEXT_CHARS = 60
#: a report in report.html's data, one array (thousands of reports: no key names repeated)
REPORT_ROW = ("source", "report_id", "posted", "lat", "lon", "candidate_id", "distance_m", "text", "city_status",
              "category", "kind", "match", "not_counted")


def _labels() -> tuple[tuple[str, ...], tuple[str, ...]]:
    from .citizen import MATCH_EN, MATCH_LABELS, REPORT_KINDS, UNKNOWN_KIND

    return (tuple(f"{k.ja} / {k.en}" for k in REPORT_KINDS.values()) + (" / ".join(UNKNOWN_KIND),),
            tuple(f"{m} / {MATCH_EN[m]}" for m in MATCH_LABELS))


#: a report row's ``kind`` and ``match``: an index into these (the page's data ``reports.kinds``, ``.matches``; a
#: city's thousands of reports: no label repeated), "Japanese / English"
REPORT_KIND_LABELS, REPORT_MATCH_LABELS = _labels()


def report_rows(matched: pd.DataFrame) -> list[list]:
    """The map's citizen reports (``citizen.match_reports``' rows) as compact arrays (``REPORT_ROW``): the source
    ('' none named), the id, when posted (local ``YYYY-MM-DD HH:MM``), the position (6 decimals: 0.1 m), the damage
    it is of (None: 未確認) and how far (m), the text (``REPORT_TEXT_CHARS``, … where cut), the city's status and
    the category, the report's kind and whether its damage is of it (``match_reports``' ``kind`` and ``match``, as
    ``--format reports`` lists them: indices into ``REPORT_KIND_LABELS`` and ``REPORT_MATCH_LABELS``; None where
    there is none: the match of a report of no known kind, or of none matched), the words of its text not counted
    and why (``citizen.not_counted_text``, "ja / en": ``穴 (否定 / negated)``; None where none); the text shown by
    the page with ``textContent`` only."""
    from .citizen import not_counted_text

    kind_at = {lab.split(" / ")[0]: i for i, lab in enumerate(REPORT_KIND_LABELS)}
    match_at = {lab.split(" / ")[0]: i for i, lab in enumerate(REPORT_MATCH_LABELS)}

    def text(v: Any, n: int | None = None) -> str | None:
        if not isinstance(v, str) or not v.strip():
            return None
        v = " ".join(v.split())
        return v if n is None or len(v) <= n else v[:n - 1] + "…"

    src = matched["source"] if "source" in matched.columns else pd.Series([""] * len(matched), index=matched.index)
    dist = matched["distance_m"].to_numpy(float)
    none = pd.Series([None] * len(matched), index=matched.index, dtype=object)
    kinds = [kind_at.get(k) for k in matched.get("kind", none)]
    matches = [match_at.get(m) for m in matched.get("match", none)]
    gone = [not_counted_text(v, "both") if isinstance(v, tuple) else None for v in matched.get("not_counted", none)]
    return [[s if isinstance(s, str) else "", str(rid), p[:16].replace("T", " ") if isinstance(p, str) else None,
             round(float(la), 6), round(float(lo), 6), c if isinstance(c, str) else None,
             round(float(d), 1) if np.isfinite(d) else None, text(b, REPORT_TEXT_CHARS), text(cs, 40), text(cat, 30),
             k, m if isinstance(c, str) else None, g]
            for s, rid, p, la, lo, c, d, b, cs, cat, k, m, g in zip(
                src, matched["report_id"], matched["posted_at"], matched["lat"], matched["lon"],
                matched["candidate_id"], dist, matched["body"], matched["city_status"], matched["category"], kinds,
                matches, gone)]


def crew_meta(cands: list[dict], made: datetime, municipality: str = "", registry: str | None = None) -> dict | None:
    """What the page's crew form needs (README: recording a check in report.html), or None where the report lists no
    registry damages (a run without ``--store``: ids C0001 … that no registry knows, so no list to import):
    ``registry``, the name of the crew's entries in the browser's storage (``patrol:reg-<registry>:<id>``): the
    registry's ``Store.identity()`` (``df.attrs["registry"]``, set by ``patrol export`` and a run with ``--store``),
    so an entry follows its damage from report to report of that registry (each entry keeps the
    ``status_changed_at`` its report had: the page compares it with its own) and never shows in another registry's
    report; without one (a caller that gave none) the report's own ``key``; ``key``, the name the entries had before
    (``patrol:<key>:<id>``, one name a report: a hash of the damages it lists with the ``status_changed_at`` each
    has in it), from which the page moves the entries of the same damages unchanged; ``date`` (the download's name:
    確認結果-<date>.csv), ``timeZone`` (``made``'s zone, the config's ``timezone``: the form's default 確認日 is today
    on that clock, the day the import reads it on, whatever zone the tablet is set to; None: the tablet's day), the
    ``statuses`` a crew sets and the ``moves`` the life cycle allows from each status
    (``store.TRANSITIONS``: the form offers the others greyed out, as the import would refuse them)."""
    ids = [str(c.get("candidate_id")) for c in cands]
    if not ids or not all(REGISTRY_ID.fullmatch(i) for i in ids):
        return None
    ident = json.dumps([municipality, [[i, c.get("status_changed_at")] for i, c in zip(ids, cands)]], ensure_ascii=False)
    key = hashlib.sha1(ident.encode("utf-8")).hexdigest()[:16]
    return {"registry": str(registry) if registry else key, "key": key, "date": made.strftime("%Y-%m-%d"),
            "timeZone": getattr(made.tzinfo, "key", None),
            "statuses": list(CREW_STATUSES), "moves": {k: sorted(v) for k, v in TRANSITIONS.items()}}


def _asset(name: str) -> str:
    return (ASSETS / "leaflet" / name).read_text(encoding="utf-8")


def render_html(df: pd.DataFrame, cfg, roads_wgs84=None, thumb_cache: str | Path | None = None, segments=None,
                due=None, reports=None, jobs=None) -> str:
    return _page(*html_data(df, cfg, roads_wgs84, thumb_cache=thumb_cache, segments=segments, due=due,
                            reports=reports, jobs=jobs))


def _mb(n: float) -> str:
    return f"{math.floor(n / 1e5) / 10:.1f} MB"  # rounded down: "4.9 MB" is never a 4.96 MB file


def fit_html(df: pd.DataFrame, cfg, max_bytes: int, roads_wgs84=None,
             thumb_cache: str | Path | None = None, segments=None, due=None, reports=None,
             jobs=None) -> tuple[str, str, bool]:
    """The page at most ``max_bytes`` (``--max-mb``) where it can be: every photo at the largest thumbnail of
    ``THUMB_STEPS`` that fits them all (the first: the page as without a cap); where even the smallest does not,
    the photos of the most urgent damages (``PHOTO_RANK``, then severity) at the smallest, as many as fit, and the
    others left out (their popup says so; the full crop's link stays). Returns the page, one line saying what was
    done, and whether it fits (not when the page without any photo is larger: too many damages for the cap).

    The thumbnails' size is estimated on up to 48 crops spread over the rows before all are made (each WebP costs
    ~4 ms); the page is then measured, and photos dropped from the least urgent up until it fits. ``thumb_cache``,
    ``segments``: as for ``html_data``; the road-condition layer is kept over the photos (a segment ~0.2 KB, a photo
    ~5 KB), left out (the line says so) only where the page without any photo does not fit with it; so is ``due``'s
    patrol-due layer, which goes first (the whole network: the larger), then the condition layer if still needed,
    then ``jobs``' repair jobs layer; ``reports`` (the citizen reports, ~0.15 KB each) last of all. The repair jobs
    layer also goes where it would cost a photo (not every photo fits with it at the smallest thumbnail): the map
    draws the jobs from its damages, it cannot draw a photo left out."""
    n = len(df)
    crops = list(df["crop_jpeg"]) if "crop_jpeg" in df.columns else [None] * n
    data, _ = html_data(df, cfg, roads_wgs84, uris=[None] * n, segments=segments, due=due, reports=reports,
                        jobs=jobs)  # no photo
    layers_out = []  # not even the damages fit with a layer: the layers go first, the patrol-due one before
    for name, (part, key), what in (("due", ("due", "lines"), "patrol due layer ({:,} segments)"),
                                    ("cond", ("conditions", "segments"), "road condition layer ({:,} segments)"),
                                    ("jobs", ("jobs", "rows"), "repair jobs layer ({:,} jobs)"),
                                    ("rep", ("reports", "rows"), "citizen reports layer ({:,} reports)")):
        if data.get(part, {}).get(key) and len(_page(data, []).encode("utf-8")) > max_bytes:
            count = sum(x["k"] for x in data[part][key]) if name == "due" else len(data[part][key])  # (a due line:
            # the segments of its group)
            layers_out.append(what.format(count))
            data[part][key] = []
    has = [i for i, b in enumerate(crops) if _is_crop(b)]
    rank = [PHOTO_RANK.get(str(c.get("status")), 1) for c in data["candidates"]]
    sev = [c.get("severity") if isinstance(c.get("severity"), (int, float)) else -1.0 for c in data["candidates"]]
    order = sorted(has, key=lambda i: (rank[i], -sev[i], i))  # the photos a cap keeps first
    cap = max_bytes / 1e6
    data["meta"]["photos"] = {"px": THUMB_STEPS[0][0], "shown": n, "left_out": n, "max_mb": cap}  # the header says
    room = max_bytes - len(_page(data, []).encode("utf-8"))
    per_line = len(str(n)) + 1  # a thumbnail's line break and its index in the data (against "thumb":null)
    sample = has[:: max(1, len(has) // 48)][:48]
    jobs_rows = data.get("jobs", {}).get("rows")
    if jobs_rows and sample and room > 0:
        # the repair jobs layer is kept only where every photo fits with it at the smallest thumbnail: the jobs are
        # drawn from the damages the map holds (their list is `--format jobs`), a left-out photo is not (on a city's
        # 310 damages under 0.6 MB the layer's ~15 KB cost 14 of the most urgent photos)
        small = np.mean([len(u or "") + per_line for u in _thumb_uris([crops[i] for i in sample], THUMB_STEPS[-1],
                                                                        thumb_cache)])
        if small * len(has) > 0.98 * room:
            layers_out.append(f"repair jobs layer ({len(jobs_rows):,} jobs)")
            data["jobs"]["rows"] = []
            room = max_bytes - len(_page(data, []).encode("utf-8"))
    step, uris = THUMB_STEPS[-1], [None] * n
    for st in THUMB_STEPS:
        est = (np.mean([len(u or "") + per_line for u in _thumb_uris([crops[i] for i in sample], st, thumb_cache)])
               if sample else 0.0)
        if est * len(has) <= 0.98 * room:
            step = st
            break
    made = _thumb_uris([crops[i] for i in order], step, thumb_cache) if room > 0 else []
    kept, total = 0, 0
    for u in made:  # a prefix of the urgency order: a photo is never kept over a more urgent one's
        if total + len(u or "") + per_line > room:
            break
        total += len(u or "") + per_line
        kept += 1
    while True:
        for k, i in enumerate(order):
            uris[i] = made[k] if k < kept else False
        shown, left = min(kept, len(order)), order[kept:]
        data["meta"]["photos"] = {"px": step[0], "shown": shown, "left_out": len(left), "max_mb": cap}
        html = _page(data, _set_thumbs(data, uris))
        size = len(html.encode("utf-8"))
        if size <= max_bytes or kept == 0:
            break
        kept = max(0, kept - max(1, (size - max_bytes) // 1000 + 1))  # the estimate was short: the least urgent go
    line = f"photos {step[0]} px for {shown:,} of {n:,} damages" if shown else f"no photos ({n:,} damages)"
    if left:
        parts = []
        for r in sorted({rank[i] for i in left}, reverse=True):  # the least urgent first
            names = "/".join(dict.fromkeys(str(data["candidates"][i].get("status")) for i in left if rank[i] == r))
            partly = any(uris[i] for i in order if rank[i] == r)
            parts.append(f"{names} of severity ≤ {max(sev[i] for i in left if rank[i] == r):.1f}" if partly else names)
        line += f"; left out for {len(left):,} ({', '.join(parts)}) to fit {cap:g} MB"
    if has and n - len(has):
        line += f"; {n - len(has):,} without a crop"
    for what in layers_out:
        line += f"; {what} left out to fit {cap:g} MB"
    fits = size <= max_bytes
    # over the cap: rounded up to 0.01 MB (a 0.24 MB page read "0.2 MB … to fit 0.2 MB"), never at or under it
    return html, f"{_mb(size) if fits else f'{math.ceil(size / 1e4) / 100:.2f} MB'}; {line}", fits


#: the page's style and script for the citizen reports, each part between a line ``// @reports{`` (CSS
#: ``/* @reports{ */``) and ``// }@reports``: kept (without those lines) where the page has reports, else left out
#: whole, so that a page without any is the page as it was before the reports, byte for byte, and no larger
_SECTION = re.compile(r"^[ ]*(?://|/\*) @reports\{(?: \*/)?\n.*?^[ ]*(?://|/\*) \}@reports(?: \*/)?\n", re.M | re.S)
_SECTION_LINE = re.compile(r"^[ ]*(?://|/\*) (?:@reports\{|\}@reports)(?: \*/)?\n", re.M)


def _sections(text: str, reports: bool) -> str:
    """``text`` (``_APP_JS``, ``_APP_CSS``) with its citizen reports' parts (``_SECTION``) kept or left out."""
    return _SECTION_LINE.sub("", text) if reports else _SECTION.sub("", text)


def _status_css() -> str:
    """The list's status badges (``.st-new`` …) in ``STATUS_COLORS``, the colours QGIS's status style takes too."""
    return "\n".join(f".st-{k} {{ background: {bg}; border-color: {border}; }}"
                     for k, (bg, border) in STATUS_COLORS.items())


def _page(data: dict[str, Any], thumbs: list[str]) -> str:
    css = _asset("leaflet.css")
    # images referenced by the CSS belong to controls the report does not use (layers control, default marker
    # icon); drop the references so a file:// page never tries to load anything
    css = re.sub(r"url\((?!#)[^)]*\)", "none", css)
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)  # comments (bug-tracker links) are not needed offline
    js = _asset("leaflet.js")
    for part in (css, js):
        if re.search(r"</(script|style)", part, re.I):
            raise RuntimeError("asset contains a closing script/style tag")
    title = "道路損傷 補修候補 / Road damage repair candidates"
    has_reports = bool(data.get("reports", {}).get("rows"))
    return (_TEMPLATE.replace("@@TITLE@@", title)
            .replace("@@LEAFLET_CSS@@", css)
            .replace("@@APP_CSS@@", _sections(_APP_CSS, has_reports).replace("@@STATUS_CSS@@", _status_css()))
            .replace("@@LEAFLET_JS@@", js)
            .replace("@@APP_JS@@", _sections(_APP_JS, has_reports))
            .replace("@@THUMBS@@", "\n".join(thumbs))  # base64 data: URIs, nothing a script element ends at
            .replace("@@DATA@@", json_for_script(data)))


def write_html(df: pd.DataFrame, path: Path, cfg=None, roads_wgs84=None, max_mb: float | None = None,
               notes: list[str] | None = None, said: list[str] | None = None,
               thumb_cache: str | Path | None = None, segments=None, due=None, reports=None, jobs=None) -> None:
    """The page; with ``max_mb`` fitted to that many MB (10^6 bytes, ``fit_html``): ``said`` gets the line saying
    what was done (``report.html: 4.9 MB; photos 160 px for 2,015 of 2,015 damages``), ``notes`` a warning where
    even no photo at all fits. ``thumb_cache``: the registry's thumbnails (``ThumbCache``); ``segments``: the
    road-condition layer's rows, ``due`` the patrol-due layer's ``Due``, ``reports`` the citizen reports, ``jobs``
    the repair jobs layer's ``Jobs`` (``html_data``)."""
    if max_mb is None:
        atomic_write_text(path, render_html(df, cfg, roads_wgs84, thumb_cache, segments, due, reports, jobs))
        return
    html, line, fits = fit_html(df, cfg, int(max_mb * 1e6), roads_wgs84, thumb_cache, segments, due, reports, jobs)
    atomic_write_text(path, html)
    if said is not None:
        said.append(f"{Path(path).name}: {line}")
    if not fits and notes is not None:
        notes.append(f"{Path(path).name} is larger than --max-mb {max_mb:g} even without photos ({len(df):,} damages): "
                     "narrow it with --status or --since, or split it")


_TEMPLATE = """<!DOCTYPE html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="referrer" content="no-referrer">
<title>@@TITLE@@</title>
<style>@@LEAFLET_CSS@@</style>
<style>@@APP_CSS@@</style>
</head>
<body>
<header>
  <h1><span lang="ja">道路損傷 補修候補</span> <small>Road damage repair candidates</small></h1>
  <div id="meta"></div>
</header>
<main>
  <div id="mappage"><div id="map" role="region" aria-label="地図 map"></div><div id="printkey"></div></div>
  <section id="side">
    <form id="filters">
      <label>分類 class <select id="f-class"><option value="">すべて all</option></select></label>
      <label>状態 status <select id="f-status"><option value="">すべて all</option><option value="open">未対応 open (補修済み・対象外 以外 / not repaired, not ruled out)</option></select></label>
      <label>重要度 ≥ min severity <input id="f-sev" type="number" step="0.1" min="0" value="0"></label>
      <label id="l-unseen" hidden>未検出通過 not seen on the last passes <select id="f-unseen"><option value="">すべて all</option>
        <option value="1">1回以上 / 1+ passes</option><option value="2">2回以上 / 2+ passes</option><option value="3">3回以上 / 3+ passes</option></select></label>
      <label id="l-grown" hidden>悪化 grown since first seen <select id="f-grown"><option value="">すべて all</option>
        <option value="1">悪化のみ / grown only</option></select></label>
      <label class="wide">検索 search <input id="f-text" type="search" placeholder="路線名・区間・ID / road, segment, id"></label>
      <div id="count" aria-live="polite"></div>
      <div id="note" role="status" hidden></div>
      <div id="crew" hidden><span id="crew-n" aria-live="polite"></span> <button type="button" id="crew-dl">リストを保存 / download list</button></div>
    </form>
    <div id="tablewrap">
      <table id="tbl"><thead><tr></tr></thead><tbody></tbody></table>
    </div>
  </section>
</main>
<script type="application/json" id="data">@@DATA@@</script>
<script type="text/plain" id="thumbs">@@THUMBS@@</script>
<script>@@LEAFLET_JS@@</script>
<script>@@APP_JS@@</script>
</body>
</html>
"""

_APP_CSS = """
html, body { margin: 0; height: 100%; font-family: "Noto Sans JP", "Hiragino Sans", "Yu Gothic", Meiryo, system-ui, sans-serif; font-size: 14px; color: #1d2733; }
body { display: flex; flex-direction: column; }
header { background: #1f3a5f; color: #fff; padding: 6px 14px; display: flex; align-items: baseline; gap: 18px; flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; font-weight: 600; }
header h1 small { font-weight: 400; opacity: .8; font-size: 14px; }
#meta { font-size: 12px; opacity: .85; }
main { flex: 1; display: flex; min-height: 0; }
#map { flex: 1 1 54%; min-width: 300px; background: #eef1f4; }
#side { flex: 1 1 46%; display: flex; flex-direction: column; min-width: 340px; max-width: 860px; border-left: 1px solid #c9d1da; }
#filters { display: flex; flex-wrap: wrap; gap: 6px 12px; padding: 8px 10px; background: #f6f8fa; border-bottom: 1px solid #d8dee4; align-items: end; }
#filters label { display: flex; flex-direction: column; font-size: 12px; color: #4a5562; }
#filters label.wide { flex: 1 1 200px; }
#filters select, #filters input { font: inherit; padding: 3px 4px; border: 1px solid #b8c2cc; border-radius: 4px; background: #fff; }
#f-sev { width: 80px; }
#count { font-size: 12px; color: #4a5562; margin-left: auto; }
#tablewrap { flex: 1; overflow: auto; }
#tbl { border-collapse: collapse; width: 100%; font-size: 12.5px; }
#tbl th { position: sticky; top: 0; background: #e9eef3; text-align: left; padding: 4px 6px; border-bottom: 1px solid #c9d1da; font-weight: 600; cursor: pointer; white-space: nowrap; }
#tbl .en { display: block; font-weight: 400; font-size: 11px; color: #5b6673; }
#tbl td { padding: 4px 6px; border-bottom: 1px solid #edf0f3; vertical-align: top; }
#tbl td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
#tbl td:first-child { white-space: nowrap; }
#tbl tbody tr { cursor: pointer; }
#tbl tbody tr:hover { background: #f2f7ff; }
#tbl tbody tr.sel { background: #fff3c4; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 5px; vertical-align: middle; border: 1px solid rgba(0,0,0,.35); }
.badge { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 12px; border: 1px solid #9aa5b1; white-space: nowrap; }
@@STATUS_CSS@@
.st-not_an_issue { color: #66707a; }
.legend { background: rgba(255,255,255,.94); padding: 8px 10px; border-radius: 6px; box-shadow: 0 1px 4px rgba(0,0,0,.3); font-size: 12px; line-height: 1.6; }
.legend h4 { margin: 2px 0 0; font-size: 12px; }
.legend summary { cursor: pointer; font-weight: 600; }
.legend .sw { display: inline-block; width: 12px; height: 12px; border-radius: 50%; margin-right: 6px; vertical-align: -2px; }
.layerctl { background: rgba(255,255,255,.94); padding: 6px 10px; border-radius: 6px; box-shadow: 0 1px 4px rgba(0,0,0,.3); font-size: 12px; line-height: 1.6; max-width: min(250px, calc(100vw - 90px)); box-sizing: border-box; }
.layerctl summary { cursor: pointer; font-weight: 600; }
/* the map's controls at the top right keep clear of the zoom buttons at its left on a phone (375 px: 54 px + gaps);
   the legend no wider than the layers' controls above it (250 px, its long lines wrapped: before, on a desktop, as wide
   as the map, 680 of its 690 px at 1280 px, its ring line on one line), its own scroll bar where taller (fitControls) */
.legend { max-width: min(250px, calc(100vw - 76px)); box-sizing: border-box; overflow-y: auto; }
.layerctl .ln { display: inline-block; width: 22px; margin-right: 6px; vertical-align: middle; border-top: 5px solid; }
.layerctl .ln.nv { border-top-width: 3px; border-top-style: dashed; }
.layerctl .ln.ns { border-top-width: 4px; border-top-style: dotted; }
.layerctl label { font-weight: 600; cursor: pointer; display: block; }
.layerctl .layerkey { display: none; margin-top: 4px; }
.layerctl.on .layerkey { display: block; }
/* a phone's map with two layers or more (fitCompact): the layers' boxes and the legend folded into one button, a
   tap lists them under it, the list scrolled within the map (its height set by fitCompact) */
.layerstog { display: none; }
.compact .layerstog { display: block; }
.layerstog button { font: inherit; font-size: 13px; font-weight: 600; min-height: 40px; padding: 0 12px; border: 0; border-radius: 6px; background: rgba(255,255,255,.94); box-shadow: 0 1px 4px rgba(0,0,0,.3); color: #1f2933; cursor: pointer; }
.compact.ctl-open .layerstog button { background: #1f3a5f; color: #fff; }
.compact:not(.ctl-open) .leaflet-top.leaflet-right > .layerctl, .compact:not(.ctl-open) .leaflet-top.leaflet-right > .legend { display: none; }
.compact.ctl-open .leaflet-top.leaflet-right { overflow-y: auto; overscroll-behavior: contain; pointer-events: auto; }
/* smallMap's measure (never painted): each box at its smallest, its key and the legend folded, a layer's key line
   shown as when it is on */
.ctl-measure > .layerctl, .ctl-measure > .legend { display: block !important; max-height: none !important; }
.ctl-measure details > :not(summary) { display: none !important; }
.ctl-measure .layerkey { display: block !important; }
/* a desktop's map whose boxes, keys open, are taller than it (fitControls: 1280×800 with every layer on): the stack
   scrolls within the map (its height set there), its boxes' shadows inside it */
.ctl-scroll .leaflet-top.leaflet-right { overflow-y: auto; overscroll-behavior: contain; pointer-events: auto; padding: 0 0 6px 6px; box-sizing: border-box; }
/* the panes' SVG boxes let a click through to the panes under them: only the drawn paths take it */
.leaflet-overlay-pane > svg, .leaflet-roads-pane > svg, .leaflet-cond-pane > svg, .leaflet-due-pane > svg, .leaflet-jobs-pane > svg { pointer-events: none; }
.pop .ids a { display: inline-block; margin: 0 8px 2px 0; }
.legend .sw.ring { width: 9px; height: 9px; border: 2px dotted #5b2a86; background: rgba(91,42,134,.2); }
.legend .sw.grownring { width: 8px; height: 8px; border: 3px dashed #f57c00; background: none; }
.leaflet-grownring-pane > svg { pointer-events: none; }
/* @reports{ */
/* the citizen reports (住民通報): their panes let clicks through but on the markers; the legend's ring, the layer's key */
.leaflet-rep-pane > svg, .leaflet-repring-pane > svg { pointer-events: none; }
.legend .sw.repring { width: 9px; height: 9px; border: 2px solid #e4007f; background: none; }
.repctl .sw { display: inline-block; box-sizing: border-box; width: 14px; height: 14px; border-radius: 50%; margin-right: 6px; vertical-align: -2px; }
.repctl .sw.unseen { border: 3px solid #e4007f; background: #fff; }
.repctl .sw.seen { width: 8px; height: 8px; margin: 0 9px 0 3px; background: #e4007f; border: 1px solid #fff; box-shadow: 0 0 0 1px #e4007f; }
.pop .reps h4 { margin: 6px 0 2px; font-size: 12px; color: #a3005a; }
.pop .reps ul { margin: 0 0 6px; padding-left: 16px; overflow-wrap: anywhere; }
/* }@reports */
#filters label[hidden], #note[hidden], #crew[hidden], .crew [hidden] { display: none; }
#crew { flex-basis: 100%; display: flex; gap: 10px; align-items: center; font-size: 12px; }
#crew button, .crew button { font: inherit; padding: 6px 12px; min-height: 34px; border-radius: 6px; border: 1px solid #1f3a5f; background: #1f3a5f; color: #fff; }
.crew { margin: 4px 0 8px; padding: 4px 8px; border: 1px solid #c9d1da; border-radius: 6px; background: #f6f8fa; }
.crew summary { cursor: pointer; font-weight: 600; padding: 4px 0; }
.crew label { display: block; margin: 4px 0; color: #4a5562; }
.crew select, .crew input { display: block; width: 100%; box-sizing: border-box; font-size: 16px; min-height: 36px; }
.crew button.undo { background: #fff; color: #1f3a5f; margin-left: 6px; }
.crew .said { margin-left: 8px; color: #3b8a4a; }
#tbl tbody tr.rec td:first-child::after { content: " ✓"; color: #3b8a4a; font-weight: 700; }
#tbl tbody tr.rec.stale td:first-child::after { content: " ⚠"; color: #c98a00; }
.crew.stale .said { color: #a35a00; font-weight: 600; }
#note { flex-basis: 100%; font-size: 12px; background: #fff3c4; border: 1px solid #c98a00; border-radius: 4px; padding: 2px 6px; overflow-wrap: anywhere; }
.pop { font-size: 12px; min-width: 240px; }
.pop h3 { margin: 0 0 4px; font-size: 14px; }
.pop img { display: block; max-width: 100%; max-height: 240px; margin: 4px 0; border: 1px solid #ccd; }
.pop a.full { display: block; cursor: zoom-in; }
.pop a.photo, .pop a.link { display: inline-block; margin: 0 12px 4px 0; }
.pop a.nav, .pop a.web { display: inline-block; margin: 2px 8px 6px 0; padding: 8px 12px; min-height: 24px; border-radius: 6px; background: #1f3a5f; color: #fff; text-decoration: none; font-size: 14px; }
/* the web map: the same 40 px button, outlined (its border within the nav's size) */
.pop a.web { padding: 7px 11px; border: 1px solid #1f3a5f; background: #fff; color: #1f3a5f; }
.pop table { border-collapse: collapse; }
.pop th { text-align: left; padding: 1px 8px 1px 0; color: #4a5562; font-weight: 500; white-space: nowrap; }
.pop td { padding: 1px 0; }
.noimg { color: #888; font-style: italic; margin: 4px 0; }
.leaflet-container { font: inherit; }
/* phone and tablet in portrait: the page scrolls, the map keeps its height above the whole list */
@media screen and (max-width: 900px) {
  html, body { height: auto; } body { display: block; } main { display: block; }
  header { padding: 4px 10px; } header h1 { font-size: 16px; }
  #map { height: 62vh; min-height: 280px; min-width: 0; }
  #side { min-width: 0; max-width: none; border-left: 0; }
  #tablewrap { overflow: visible; }
  #tbl { font-size: 14px; } #tbl td, #tbl th { padding: 8px 5px; } #tbl td { overflow-wrap: anywhere; }
  /* a status badge may take two lines (未対応 / open): with a phone's CJK font (Noto Sans CJK) the list was 0.6 px
     wider than a 375 px screen, and the page moved sideways */
  #tbl .badge { white-space: normal; }
}
@media (max-width: 600px), (min-width: 901px) and (max-width: 1180px) { #tbl .opt { display: none; } }
/* the narrowest phones (320 px, an iPhone SE): the chainage too is left to the popup, the list fits the width (before:
   a run's ids, C-c142a9bcb2, moved the page 30 px sideways) */
@media (max-width: 360px) { #tbl .opt2 { display: none; } }
@media (max-width: 900px), (pointer: coarse) {
  #filters select, #filters input { font-size: 16px; min-height: 40px; box-sizing: border-box; }
  /* finger-sized (40 px) on a phone or tablet: the crew's form and buttons, the folding lines of the map's boxes */
  #crew button, .crew button, .crew select, .crew input { min-height: 40px; }
  .crew summary { padding: 10px 0; line-height: 20px; }
  .legend, .layerctl { padding-top: 0; padding-bottom: 0; } .legend[open], .layerctl.on { padding-bottom: 6px; }
  .ctl-measure > .legend, .ctl-measure > .layerctl { padding-bottom: 6px; }  /* (smallMap: as when on, whatever is on) */
  .legend summary, .layerctl summary, .layerctl label { padding: 10px 0; line-height: 20px; }
  /* ... the map's zoom buttons (Leaflet's: 30 px on a touch screen) and the popup's links to the full photo and to
     this damage (a 12 px line: 40 px tall to tap; the table's rows are 38 px and more: two lines each) */
  .leaflet-bar a, .leaflet-touch .leaflet-bar a { width: 40px; height: 40px; line-height: 40px; }
  .pop a.photo, .pop a.link { padding: 10px 0; line-height: 20px; }
}
/* a phone (320-375 px): a long option (状態 status: 未対応 open …) no wider than the bar, the page never sideways */
#filters label { max-width: 100%; }
#filters select { max-width: 100%; }
/* print (A4): the map, the legend and shown layers' keys whole under it (printMode), the map what they leave of
   the page (277 mm less a header of 3 lines); then the table, its header on every page */
#mappage { display: contents; }
#printkey { display: none; }
@page { size: A4; margin: 10mm; }
@media print {
  html, body { height: auto; } body, main { display: block; }
  header, .badge, .dot, .sw { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  #mappage { display: flex; flex-direction: column; width: 190mm; height: 253mm; break-after: page; }
  #map { flex: 1; height: auto; min-width: 0; min-height: 100mm; }
  #map .leaflet-right { display: none; }
  #printkey { display: block; columns: 3; column-gap: 6mm; margin-top: 3mm; }
  #printkey > div { max-width: none; padding: 0; margin-bottom: 2mm; background: none; box-shadow: none; font-size: 11px; line-height: 1.4; }
  #printkey h3 { margin: 0; font-size: 12px; break-after: avoid; }
  #printkey .layerctl, #printkey div div { break-inside: avoid; }
  #side { max-width: none; min-width: 0; border: 0; }
  #filters label, #crew, .leaflet-control-zoom { display: none; }
  #tablewrap { overflow: visible; }
  #tbl th { position: static; }
  #tbl thead { display: table-header-group; }
  #tbl tr, img { break-inside: avoid; }
}
"""

_APP_JS = r"""
(function () {
  "use strict";
  var root = document.documentElement;
  function fail(msg) { root.setAttribute("data-selfcheck", "report-error:" + String(msg).slice(0, 200)); }
  window.addEventListener("error", function (e) { fail(e.message || "error"); });
  window.addEventListener("unhandledrejection", function (e) { fail("rejection " + (e.reason && e.reason.message)); });

  var D = JSON.parse(document.getElementById("data").textContent);
  var C = D.candidates;
  C.forEach(function (c) {  // grown since first seen, sent short (html_data): [first m², latest m², ×(, 1: grown)]
    if (c.g) { c.area_first_m2 = c.g[0]; c.area_last_m2 = c.g[1]; c.growth = c.g[2]; c.grown = c.g[3] === 1 ? 1 : 0; delete c.g; }
  });
  var classById = {}; D.classes.forEach(function (c) { classById[c.id] = c; });
  var statusById = {}; D.statuses.forEach(function (s) { statusById[s.id] = s; });

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function fmt(v, nd) {
    if (v === null || v === undefined || v === "") return "";
    if (typeof v === "number") return nd === undefined ? String(v) : v.toFixed(nd);
    if (Array.isArray(v)) return v.join(", ");
    return String(v);
  }
  function day(s) { return s ? String(s).replace("T", " ").slice(0, 16) : ""; }
  function color(c) { return (classById[c.class] || {color: "#7f7f7f"}).color; }

  // header
  var meta = document.getElementById("meta");
  var ph = D.meta.photos;  // a size cap (--max-mb): what it did to the photos
  meta.textContent = [D.meta.municipality, D.meta.n + " 件 candidates", "作成 " + D.meta.generated,
                      ph ? "写真 photos " + ph.px + " px" + (ph.left_out ? ", " + ph.left_out + " 件省略 left out" : "")
                           + " (≤ " + ph.max_mb + " MB)" : "",
                      "road-patrol " + D.meta.version].filter(Boolean).join(" · ");

  // map: no tile layer, the road network is drawn from the data
  var map = L.map("map", {preferCanvas: false, attributionControl: false, zoomControl: true});
  L.control.scale({imperial: false}).addTo(map);
  // panes under the markers' (overlayPane, 400): the grey roads, and over them the line layers' (lineLayer)
  map.createPane("roads").style.zIndex = 380;
  var roadLayer = L.layerGroup().addTo(map);
  function coords(d) {  // d: the first point, then each point's step from the last, in 1e-5 degrees
    var c = [], la = 0, lo = 0;
    for (var k = 0; k + 1 < d.length; k += 2) { la += d[k]; lo += d[k + 1]; c.push([la / 1e5, lo / 1e5]); }
    return c;
  }
  D.roads.forEach(function (r) {
    r.c = coords(r.d);
    L.polyline(r.c, {pane: "roads", color: "#8f9aa6", weight: 3, opacity: 0.9, interactive: false}).addTo(roadLayer);
  });

  // a damage still open that the registry's drives passed UNSEEN_MARK times or more since its last sighting
  // without seeing it (n_unseen): worth a look before a crew goes out (a false alarm, or repaired by someone else)
  var UNSEEN_MARK = D.meta.unseenRing || 2;  // config store.unseen_ring_passes
  // done with (no ring; not in the status filter's "open", 未対応: new, confirmed, scheduled, reopened)
  var CLOSED = D.meta.closed;  // store.CLOSED_STATUSES
  function unseen(c) {
    return typeof c.n_unseen === "number" && c.n_unseen >= UNSEEN_MARK && CLOSED.indexOf(c.status) < 0;
  }
  function styleFor(c) {
    var st = c.status;
    var s = {radius: 8, color: "#ffffff", weight: 2, opacity: 1, fillColor: color(c), fillOpacity: 0.92, dashArray: null};
    if (st === "confirmed" || st === "scheduled") { s.color = "#111"; s.weight = 3; }
    if (st === "reopened") { s.color = "#d62728"; s.weight = 3; s.radius = 9; }
    if (st === "repaired") { s.fillOpacity = 0.2; s.color = color(c); s.weight = 2; s.dashArray = "3,3"; }
    if (st === "not_an_issue") { s.fillColor = "#9e9e9e"; s.fillOpacity = 0.5; s.color = "#666"; s.weight = 1; s.radius = 6; }
    if (unseen(c)) {  // driven past UNSEEN_MARK times or more since its last sighting: a hollow dotted ring (missed, or repaired?)
      s.fillOpacity = 0.25; s.weight = 3; s.dashArray = "1,5"; s.className = "unseen";
      if (s.color === "#ffffff") s.color = "#5b2a86";  // new: purple; confirmed / scheduled / reopened keep their rim
    }
    var sev = typeof c.severity === "number" ? c.severity : 0;
    s.radius += Math.min(4, Math.max(0, sev));
    return s;
  }

  var FIELDS = [["class_name_ja", "損傷種別", "type"], ["severity", "重要度", "severity", 2], ["confidence", "確信度", "confidence", 2],
                ["n_obs", "検出回数", "sightings"], ["n_drives", "走行回数", "drives seen"], ["first_seen", "初回検出", "first seen"], ["last_seen", "最終検出", "last seen"],
                ["n_passes", "通過回数", "drives past"], ["n_unseen", "未検出通過", "passed unseen since"],
                ["n_poor_look", "撮影不良通過", "passed in poor frames"], ["last_passed", "最終通過", "last passed"],
                ["growth", "面積の変化", "size change"],
                ["road_name", "路線名", "road"], ["segment_id", "区間ID", "segment"], ["chainage_m", "距離標", "chainage (m)", 1],
                ["status", "状態", "status"], ["job_id", "工区", "repair job"], ["status_note", "備考", "note"], ["checked_by", "確認者", "checked by"],
                ["repaired_at", "補修日", "repaired"], ["est_width_m", "推定幅", "est. width (m)", 2], ["est_length_m", "推定長", "est. length (m)", 2],
                ["best_drive", "走行", "drive"], ["best_image", "画像", "image"], ["last_drive", "最新走行", "latest drive"], ["make", "機種", "camera make"], ["model", "モデル", "camera model"]];
  // the network's own fields (roads.keep_fields: 路線番号, 管理事務所 …) after the road name, under their own names
  var ROADF = (D.roadFields || []).map(function (k) { return [k, k, ""]; });
  FIELDS.splice.apply(FIELDS, [FIELDS.findIndex(function (f) { return f[0] === "road_name"; }) + 1, 0].concat(ROADF));

  // iPhone / iPad (iPadOS says "Macintosh" but has a touch screen): Safari opens maps:// links, not geo:
  var IOS = /iPhone|iPad|iPod/.test(navigator.userAgent) || (/Macintosh/.test(navigator.userAgent) && navigator.maxTouchPoints > 1);
  // the config's web map (meta.webMap: export.map_url; null: none), for an office's desktop browser, where geo: opens
  // nothing: filled as export.map_links fills the lists' 地図 column: {lat} {lon} with 7 decimals, {id} URL-encoded
  // as Python's quote(safe="") (encodeURIComponent leaves !'()* as they are), {{ }} a literal brace
  var WEB = D.meta.webMap && /^https?:\/\//i.test(D.meta.webMap.url) ? D.meta.webMap : null;
  function webHref(c) {
    var id = c.candidate_id == null ? "" : String(c.candidate_id);
    var v = {lat: c.lat.toFixed(7), lon: c.lon.toFixed(7), id: encodeURIComponent(id).replace(/[!'()*]/g, function (ch) {
      return "%" + ch.charCodeAt(0).toString(16).toUpperCase(); })};
    return WEB.url.replace(/\{\{|\}\}|\{(lat|lon|id)\}/g, function (m, k) { return k ? v[k] : m.charAt(0); });
  }

  // the crew's check, recorded on a tablet (README: recording a check in report.html): a registry's report only
  // (meta.crew: its ids are registry ids). Each entry in the browser's storage under patrol:reg-<the registry>:<id>,
  // so it follows its damage into the registry's next report (never into another registry's), with the damage's
  // status_changed_at as its report had it; the checker's name under patrol:checked_by; "リストを保存 / download
  // list" writes the CSV import-verification reads
  var CREW = D.meta.crew, PFX = CREW ? "patrol:reg-" + CREW.registry + ":" : "", MEM = {}, LS = null;
  var OLD = CREW ? "patrol:" + CREW.key + ":" : "";  // the entries' name before: one a report (moved on load)
  try { LS = window.localStorage; LS.getItem(PFX); } catch (e) { LS = null; }
  function lsGet(k) { try { return LS ? LS.getItem(k) : (k in MEM ? MEM[k] : null); } catch (e) { return MEM[k] || null; } }
  function lsSet(k, v) {
    if (v === null) delete MEM[k]; else MEM[k] = v;
    try { if (!LS) throw 0; if (v === null) LS.removeItem(k); else LS.setItem(k, v); }
    catch (e) { note("この端末では記録を保存できません: 閉じる前にリストを保存 / this browser does not keep the entries: download the list before closing"); }
  }
  function rec(id) {
    try { var r = JSON.parse(lsGet(PFX + id)); return r && typeof r === "object" ? r : null; } catch (e) { return null; }
  }
  function sca(v) { return v === null || v === undefined ? "" : String(v); }
  function atOrAfter(a, b) { var x = Date.parse(a), y = Date.parse(b); return x === x && y === y && x >= y; }
  // an entry in this report: "pending" (recorded against the status_changed_at the damage has here), "stale" (the
  // damage changed since the report it was recorded on: shown to check, listed with its own status_changed_at, so
  // the import holds or outdates it as a stale list's row), "done" (downloaded, and the registry has since taken
  // it: the damage has the status it set, or changed after the download: dropped)
  function entryState(c, r) {
    if (!r) return null;
    var at = "status_changed_at" in r ? sca(r.status_changed_at) : sca(c.status_changed_at);
    if (at === sca(c.status_changed_at)) return "pending";
    if (r.downloaded_at && (r.status === c.status || atOrAfter(c.status_changed_at, r.downloaded_at))) return "done";
    return "stale";
  }
  // today on the config's clock (CREW.timeZone, Asia/Tokyo): the day the import reads the date on; a tablet set to
  // another zone (UTC: 00:00-09:00 JST is yesterday there) gives the municipality's day, not its own
  function today() {
    var d = new Date(); function two(n) { return (n < 10 ? "0" : "") + n; }
    if (CREW.timeZone) {
      try {
        var p = {};
        new Intl.DateTimeFormat("en-US", {timeZone: CREW.timeZone, year: "numeric", month: "2-digit", day: "2-digit"})
          .formatToParts(d).forEach(function (x) { p[x.type] = x.value; });
        if (p.year && p.month && p.day) return p.year + "-" + p.month + "-" + p.day;
      } catch (e) { /* a browser without that zone: its own day */ }
    }
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate());
  }
  var CSV_COLS = ["candidate_id", "status", "note", "checked_by", "checked_at", "repaired_at", "status_changed_at"];
  // the recorded damages in the list's order, each with the status_changed_at it has in this report: the import
  // holds or outdates a row whose damage the office changed after the report was made (README: stale lists)
  // a cell of the list: quoted; text starting with = + - @ (or a tab / CR) after an apostrophe, as the Python exports
  // (export.safe_cell): a note "=HYPERLINK(…)" or "+81 90 …" opens in Excel as text, not a formula; the import takes
  // the apostrophe off again (export.unguard)
  function csvCell(v) {
    var s = String(v || "");
    if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;
    return '"' + s.replace(/"/g, '""') + '"';
  }
  function crewCsv() {
    var out = [CSV_COLS.join(",")];
    C.forEach(function (c) {
      var r = rec(c.candidate_id);
      if (!r) return;
      r.status_changed_at = "status_changed_at" in r ? sca(r.status_changed_at) : sca(c.status_changed_at);
      r.candidate_id = c.candidate_id;
      out.push(CSV_COLS.map(function (k) { return csvCell(r[k]); }).join(","));
    });
    return "\ufeff" + out.join("\r\n") + "\r\n";
  }
  window.patrolCrewCsv = crewCsv;  // read by the tests
  function crewCount() {
    var n = 0, k = 0;
    C.forEach(function (c, i) {
      var s = entryState(c, rec(c.candidate_id)); if (s) n++; if (s === "stale") k++;
      if (rows) { rows[i].classList.toggle("rec", !!s); rows[i].classList.toggle("stale", s === "stale"); }
    });
    document.getElementById("crew-n").textContent = n + " 件 記録済み / " + n + " recorded" +
      (k ? " (うち " + k + " 件 要確認 / " + k + " to check)" : "");
    document.getElementById("crew-dl").disabled = !n;
  }
  function crewForm(c) {
    var id = c.candidate_id, d = el("details", "crew"), f = el("form"), st = el("select");
    d.appendChild(el("summary", null, "確認を記録 / record the check"));
    st.appendChild(el("option", null, "— 選ぶ / pick —")).value = "";
    CREW.statuses.forEach(function (s) {  // a move the life cycle refuses (repaired -> confirmed): greyed out, as the import refuses it
      var o = el("option", null, statusById[s].ja + " / " + statusById[s].en); o.value = s;
      o.disabled = s !== c.status && (CREW.moves[c.status] || []).indexOf(s) < 0; st.appendChild(o);
    });
    var nt = el("input"), by = el("input"), at = el("input"), rp = el("input");
    at.type = rp.type = "date"; nt.maxLength = by.maxLength = 500;
    function row(label, input) { var l = el("label", null, label); l.appendChild(input); f.appendChild(l); return l; }
    row("状態 status", st); row("備考 note", nt); row("確認者 checked by", by); row("確認日 checked at", at);
    var rpl = row("補修日 repaired at (空欄: 確認日 / blank: the check's day)", rp);
    var save = el("button", null, "記録 / save"), undo = el("button", "undo", "記録を取消 / undo"), said = el("span", "said");
    undo.type = "button"; f.appendChild(save); f.appendChild(undo); f.appendChild(said);
    f.addEventListener("keydown", function (e) { e.stopPropagation(); });  // "-" or arrows typed: not the map's zoom / pan
    function show(msg) {  // the entry as stored; without one, the fields as left (an undone entry can be saved again)
      var r = rec(id), stale = entryState(c, r) === "stale";
      if (r) { st.value = r.status; nt.value = r.note; by.value = r.checked_by; at.value = r.checked_at; rp.value = r.repaired_at; d.open = true; }
      if (!by.value) by.value = lsGet("patrol:checked_by") || "";
      if (!at.value) at.value = today();
      // no day after today on the config's clock (the import refuses a date in the future): the picker offers none, a
      // typed one (2062 for 2026) keeps the entry from being saved, the browser saying why
      at.max = rp.max = today();
      repairShown(); undo.hidden = !r; d.classList.toggle("stale", stale);
      // recorded before the office changed the damage: listed as recorded (the import holds it for the office);
      // saved again here, it is recorded against this report
      said.textContent = msg || (stale ? "古いレポートで記録: 確認してください / recorded on an older report — check" :
                                 r ? "記録済み / recorded" : "");
    }
    // 補修日 only for a repair; hidden, it is not checked either (a future day typed, then another status picked)
    function repairShown() { rpl.hidden = rp.disabled = st.value !== "repaired"; }
    st.addEventListener("change", repairShown);
    f.addEventListener("submit", function (e) {
      e.preventDefault();
      if (!st.value) { said.textContent = "状態を選んでください / pick a status"; return; }
      lsSet(PFX + id, JSON.stringify({status: st.value, note: nt.value.trim(), checked_by: by.value.trim(), checked_at: at.value,
                                      repaired_at: st.value === "repaired" ? rp.value : "",
                                      status_changed_at: sca(c.status_changed_at)}));
      if (by.value.trim()) lsSet("patrol:checked_by", by.value.trim());
      show(); crewCount();
    });
    undo.addEventListener("click", function () { lsSet(PFX + id, null); show("取り消しました / removed"); crewCount(); });
    d.show = show;
    show();
    d.appendChild(f);
    return d;
  }

  function popupFor(c) {
    var box = el("div", "pop");
    var cls = classById[c.class] || {ja: c.class, en: c.class};
    box.appendChild(el("h3", null, c.class + " " + (c.class_name_ja || cls.ja) + " / " + (c.class_name || cls.en)));
    // the full crop lies in a folder beside this file (crops/, map_html_crops/): a relative link, so it opens
    // offline wherever the file and its folder were copied together (a USB stick, a shared drive)
    var photo = typeof c.photo === "string" && /^[^:/?#\\]+\/[^:?#\\]+$/.test(c.photo) ? c.photo : null;
    function photoLink(cls, text) {
      var a = el("a", cls, text); a.href = photo; a.target = "_blank"; a.rel = "noopener"; return a;
    }
    var uri = thumb(c);
    if (uri) {
      var img = el("img"), shown = img; img.alt = "crop " + c.candidate_id; img.src = uri;
      if (photo) { shown = photoLink("full"); shown.title = "元画像を開く / open the full photo"; shown.appendChild(img); }
      box.appendChild(shown);
      img.addEventListener("error", function () {  // a browser that shows no WebP (Safari before 14): the link stays
        box.replaceChild(el("div", "noimg", "画像を表示できません / the browser cannot show this photo"), shown);
      }, {once: true});
    } else if (c.thumb === false) {  // patrol export --max-mb left it out: the link to the full photo stays
      box.appendChild(el("div", "noimg", "写真は容量制限のため省略 / photo left out to keep this file small"));
    } else {
      box.appendChild(el("div", "noimg", "画像なし / no crop"));
    }
    if (photo) box.appendChild(photoLink("photo", "元画像 / full photo"));
    // this file's address with #id=<id>: right-click to copy it, or a click copies it (else the note line shows it)
    var link = el("a", "link", "リンク / link to this damage"); link.href = "#id=" + enc(c.candidate_id);
    link.title = "この損傷へのリンクをコピー / copy a link that opens this file at this damage";
    link.addEventListener("click", function (e) {
      e.preventDefault();
      function show() { note("リンク / link: " + link.href); }
      if (navigator.clipboard) navigator.clipboard.writeText(link.href).then(function () { link.textContent = "コピーしました / link copied"; }, show);
      else show();
    });
    box.appendChild(link);
    if (typeof c.lat === "number" && typeof c.lon === "number") {  // a plain link: the phone's map app navigates
      var ll = c.lat + "," + c.lon, nav = el("a", "nav", "地図アプリで開く / open in maps");
      nav.href = IOS ? "maps://?ll=" + ll + "&q=" + encodeURIComponent(c.candidate_id)  // Apple Maps (iOS has no geo:)
                     : "geo:" + ll + "?q=" + ll + "(" + encodeURIComponent(c.candidate_id) + ")";  // RFC 5870: Android
      box.appendChild(nav);
      if (WEB) {  // beside it, the web map in a new tab: the office's desktop browser
        var web = el("a", "web", WEB.text); web.href = webHref(c); web.target = "_blank"; web.rel = "noopener";
        web.title = "ブラウザの新しいタブで地図を開く / open the web map in a new tab";
        box.appendChild(web);
      }
    }
    if (CREW) box.appendChild(crewForm(c));
    var t = el("table");
    FIELDS.forEach(function (f) {
      var v = c[f[0]];
      if (v === null || v === undefined || v === "") return;
      if (f[0] === "status") { var s = statusById[v]; v = s ? s.ja + " / " + s.en : v; }
      if (f[0] === "first_seen" || f[0] === "last_seen" || f[0] === "last_passed") v = day(v);
      if (f[0] === "n_poor_look") {  // of the passes: too dark, glared or blurred to see it, so not counted unseen
        if (!v) return;
        v = v + " (暗い・逆光・ぶれ: 未検出通過に数えず / dark, glare or blur: not counted unseen)";
      }
      if (f[0] === "growth") {  // the est. area as the first and the latest drive saw it (Store.growth): 悪化 where grown
        if (typeof v !== "number") return;
        v = "×" + fmt(v, 2) + (c.grown === 1 ? " 悪化 / grown" : "") + " (" + fmt(c.area_first_m2, 2) + " → " +
            fmt(c.area_last_m2, 2) + " m²)";
      }
      var tr = el("tr"); tr.appendChild(el("th", null, f[1] + " " + f[2])); tr.appendChild(el("td", null, fmt(v, f[3])));
      t.appendChild(tr);
    });
    var tr = el("tr"); tr.appendChild(el("th", null, "ID")); tr.appendChild(el("td", null, c.candidate_id)); t.appendChild(tr);
    var tr2 = el("tr"); tr2.appendChild(el("th", null, "位置 lat, lon")); tr2.appendChild(el("td", null, fmt(c.lat) + ", " + fmt(c.lon))); t.appendChild(tr2);
    box.appendChild(t);
    // @reports{
    if (REP_OF[c.i]) box.appendChild(repList(c));
    // }@reports
    return box;
  }

  // the thumbnails (data: URIs, one a line) are read from their own block when a popup first shows one, not
  // parsed with the data when the page opens: thousands of photos cost nothing until one is looked at
  var THUMBS = null;
  function thumb(c) {
    if (typeof c.thumb !== "number") return null;
    if (THUMBS === null) THUMBS = document.getElementById("thumbs").textContent.split("\n");
    var u = THUMBS[c.thumb];
    return typeof u === "string" && /^data:image\/(webp|jpeg|png);base64,[A-Za-z0-9+\/=]+$/.test(u) ? u : null;
  }

  // a registry's export: n_passes / n_unseen / last_passed known (a run without --store: none)
  var HAS_PASSES = C.some(function (c) { return c.n_passes !== null && c.n_passes !== undefined; });
  var markerLayer = L.featureGroup().addTo(map);
  var markers = [];
  // every popup's size limits from the map's size (a damage's, a road segment's, a citizen report's: its width, and
  // its height, scrolled inside beyond it; a damage's no narrower than 240 px); set again when the map's size changes
  // (a phone or tablet turned between portrait and landscape: below). Kept clear of the map's edges and of the
  // collapsed legend in the top right corner: its box (the content and 28 px of margins, 47 px across) within the
  // pans' padding (10 px at the sides, 50 above, 10 below), on a phone's short landscape map too, where a popup as tall
  // as it gets is pinned 50 px below the top: the point it opened at (its marker) 9 px above the map's bottom (with
  // s.y - 90: 1 px past it, the marker cut in half)
  function popupSize(o, damage) {
    var s = map.getSize();
    o.maxWidth = Math.min(360, s.x - 70); o.maxHeight = s.y - 100;
    o.autoPanPaddingTopLeft = L.point(10, 50); o.autoPanPaddingBottomRight = L.point(10, 10);
    if (damage) o.minWidth = Math.min(240, s.x - 70);
    return o;
  }
  C.forEach(function (c, i) {
    if (typeof c.lat !== "number" || typeof c.lon !== "number") { markers.push(null); return; }
    var m = L.circleMarker([c.lat, c.lon], styleFor(c)), box = null;
    // built once: update() (below) lays out the same content again instead of a new one with a new photo
    m.bindPopup(function () { return box || (box = popupFor(c)); }, popupSize({}, true));
    m.on("click", function () { select(i, false); });
    markers.push(m);
  });
  // grown since first seen (悪化, Store.growth): an orange dashed ring around the marker, shown with it (apply)
  var HAS_GROWTH = C.some(function (c) { return typeof c.growth === "number"; });
  map.createPane("grownring").style.zIndex = 394;  // under the markers (overlayPane, 400) and the reports' rings
  var grownRings = L.layerGroup().addTo(map), GROWN_RING = C.map(function (c, i) {
    return c.grown === 1 && markers[i] ? L.circleMarker([c.lat, c.lon], {pane: "grownring", radius: styleFor(c).radius + 4,
      color: "#f57c00", weight: 3, opacity: 1, dashArray: "6,4", fill: false, interactive: false, className: "grown-ring"})
      .addTo(grownRings) : null;
  });

  // the map's line layers (the road-condition layer, the patrol-due layer, the repair jobs' outlines (o.polygon);
  // README: report.html): each a checkbox at
  // the top right with its key under it (folded on a phone's narrow map, as the legend is), off when the page opens
  // (the damages' colours stay readable; #<key>=1 opens it on), drawn the first time it is shown, in its own pane under
  // the markers; a click on a line shows its popup. o: {key (the link's key, the pane's and the lines' class), z (the
  // pane's z-index), items, label, style(item) (polyline options), popup(item) (a node), fillKey(keyBox) (none: no
  // key), polygon (each item an outline: L.polygon)}
  var LAYERS = [];
  function lineLayer(o) {
    var ly = {key: o.key, items: o.items || [], group: null, box: null};
    map.createPane(o.key).style.zIndex = o.z;
    ly.shown = function () { return !!ly.group && map.hasLayer(ly.group); };
    ly.on = function (on) {
      if (!ly.items.length) return;
      if (on && !ly.group) {
        ly.group = L.layerGroup();
        ly.items.forEach(function (s) {
          var st = o.style(s);
          st.pane = o.key;
          // a line of several parts (d: a list of lines): one multi-line, one popup
          var c = typeof s.d[0] === "number" ? coords(s.d) : s.d.map(coords);
          (o.polygon ? L.polygon : L.polyline)(c, st).bindPopup(function () { return o.popup(s); }, popupSize({}))
            .addTo(ly.group);
        });
      }
      if (ly.group) { if (on && !map.hasLayer(ly.group)) ly.group.addTo(map); if (!on && map.hasLayer(ly.group)) map.removeLayer(ly.group); }
      ly.box.querySelector("input").checked = !!on;
      ly.box.classList.toggle("on", !!on);
      fitControls();
    };
    if (ly.items.length) {
      var ctl = L.control({position: "topright"});
      ctl.onAdd = function () {
        var d = ly.box = el("div", "layerctl " + o.key + "ctl"), lab = el("label"), cb = el("input");
        cb.type = "checkbox"; cb.id = o.key + "-on"; lab.appendChild(cb);
        lab.appendChild(document.createTextNode(" " + o.label));
        d.appendChild(lab);
        // its key folds on a phone's narrow map, as the legend does (the layer itself still draws when ticked); a
        // layer of one look (no fillKey: the repair jobs) has none, its label alone (a phone's four boxes fit the map)
        if (o.fillKey) {
          var keyBox = el("details", "layerkey " + o.key + "key");  // (opened on a desktop's map: smallMap)
          keyBox.appendChild(el("summary", null, "凡例 / key"));
          keyBox.addEventListener("toggle", fitControls);
          o.fillKey(keyBox);
          d.appendChild(keyBox);
        }
        cb.addEventListener("change", function () { ly.on(cb.checked); writeHash(); });
        L.DomEvent.disableClickPropagation(d);
        return d;
      };
      ctl.addTo(map);
    }
    LAYERS.push(ly);
    return ly;
  }
  function keyLine(keyBox, cls, colour, text) {  // a row of a layer's key: its line's look, then what it means
    var r = el("div"), sw = el("span", cls); sw.style.borderTopColor = colour; r.appendChild(sw);
    r.appendChild(document.createTextNode(text));
    keyBox.appendChild(r);
  }
  function popRows(box) {  // a layer's popup table: row(th, value)
    var t = el("table");
    box.appendChild(t);
    return function (th, v) { var tr = el("tr"); tr.appendChild(el("th", null, th)); tr.appendChild(el("td", null, v)); t.appendChild(tr); };
  }

  // the road-condition layer (路面状態, README: report.html): the surveyed segments coloured by their condition 1
  // (good, green) .. 5 (bad, red) from the damage index per 100 m surveyed; one surveyed too little to judge (not
  // valid) grey and dashed; one with damages that no frame surveyed (no damage index: ns) dark grey and dotted, so a
  // damage's road does not look not driven. A click on a segment shows its figures
  var CD = D.conditions || {segments: []}, SEGS = CD.segments || [];
  var COND_WORDS = CD.words || [];  // report.CONDITION_WORDS (the QGIS legend's too)
  function condRange(k) {  // the damage index of class k (1..5): thresholds are the upper bounds of 1..4
    var t = CD.thresholds || [];
    return k === 1 ? "< " + t[0] : k === 5 ? "≥ " + t[3] : t[k - 2] + "–" + t[k - 1];
  }
  // the legend's and popup's words for a segment with damages that no frame surveyed (a registry's map counts only
  // frames of good look; a run's report all of its frames)
  var NS_KEY = (CD.keys || [])[1];  // report.condition_keys (the QGIS legend's too)
  function nsWhy() {
    var r = (CD.radius || 15) + " m";
    return CD.goodLook
      ? "良好な写真 (暗い・逆光・ぶれを除く) で調査されていない区間: 損傷指数なし / no frame of good look within " + r
        + " along this segment (frames too dark, glared or blurred survey nothing): no damage index. The damages were "
        + "seen in such frames, from a crossing road, or the registry holds no frame positions"
      : "この走行の写真が区間上にない: 損傷指数なし / no frame of this run within " + r + " along this segment: no damage "
        + "index. The damages were seen from a crossing road or placed here as the nearest road";
  }
  function condPopup(s) {
    var box = el("div", "pop seg");
    box.appendChild(el("h3", null, "路面状態 / road condition: " + (s.c ? s.c + " " + COND_WORDS[s.c - 1][0] + " / " + COND_WORDS[s.c - 1][1]
                                                                   : s.ns ? "未調査 / not surveyed" : "判定不可 / not rated")));
    var row = popRows(box);
    row("路線名 road", s.n || "—");
    row("区間ID segment", s.id);
    if (s.ns) row("判定 rating", nsWhy());
    else if (!s.c) row("判定 rating", "調査 " + fmt(s.cov) + " % < " + Math.round(100 * (CD.minCoverage || 0.5)) + " %: 判定に不足 / too little surveyed to rate");
    row("損傷指数 damage index", s.di === null ? "—" : fmt(s.di, 2) + " / 100 m");
    if ("cr" in s) {  // the crack rate estimated from the damages' sizes (README: the condition of the network)
      row("ひび割れ率 (推定) est. crack rate", s.cr === null ? "—" : fmt(s.cr, 1) + " % (幅 width " + fmt(CD.width || 3) + " m"
          + (s.ne ? "; 面積推定なし no size estimate: " + s.ne : "") + ")");
      var dw = (CD.diagnosis || {})[s.dg];
      row("診断区分 diagnosis", s.dg ? s.dg + " " + (dw ? dw[0] + " / " + dw[1] : "") : "—");
      row("MCI ≤ (ひび割れのみ / cracks only)", s.mci === null ? "—" : "≤ " + fmt(s.mci, 1));
    }
    row("調査率 coverage", fmt(s.cov) + " %");
    row("調査延長 surveyed", s.m + " m / " + s.L + " m");
    D.classes.forEach(function (c, j) { if (j < s.k.length) row(c.id + " " + c.ja + " / " + c.en, s.k[j]); });
    if (s.t0) row("初回調査 first surveyed", day(s.t0));
    if (s.t1) row("最終調査 last surveyed", day(s.t1));
    return box;
  }
  lineLayer({key: "cond", z: 390, items: SEGS, label: "路面状態 / road condition (" + SEGS.length + " 区間 segments)",
    style: function (s) {
      return s.c ? {color: CD.colors[s.c - 1], weight: 6, opacity: 0.9, className: "cond cond-" + s.c}
           : s.ns ? {color: CD.notSurveyed, weight: 5, opacity: 0.9, dashArray: "1,9", lineCap: "round", className: "cond cond-ns"}
                  : {color: CD.notValid, weight: 4, opacity: 0.9, dashArray: "6,6", className: "cond cond-nv"};
    },
    popup: condPopup,
    fillKey: function (keyBox) {
      for (var k = 1; k <= 5; k++) keyLine(keyBox, "ln", CD.colors[k - 1], k + " " + COND_WORDS[k - 1][0] + " / " + COND_WORDS[k - 1][1] + " (" + condRange(k) + ")");
      keyLine(keyBox, "ln nv", CD.notValid, CD.keys[0]);
      if (SEGS.some(function (s) { return s.ns; })) keyLine(keyBox, "ln ns", CD.notSurveyed, NS_KEY);
      keyBox.appendChild(el("div", null, "損傷指数 (重み付き損傷数 / 100 m 調査) / damage index (weighted damages per 100 m surveyed)"));
    }});

  // the patrol-due layer (巡回予定, README: report.html): the segments on a patrol cycle (config survey) by when their
  // next patrol is due, on the day the map was made (DU.at): due that day or overdue red (the list's "due":
  // days_overdue >= 0), due within DU.soon days after it orange, not yet due green, never surveyed dark grey and
  // dashed (due now).
  // Each line: the segments of one road, frequency
  // and last patrol day, merged (a whole network never driven is a few lines): its popup says what each says
  var DU = D.due || {lines: []}, DUES = DU.lines || [];
  var DUE_WORDS = DU.words || [];  // report.DUE_WORDS (the QGIS legend's too)
  function dayNo(iso) { return Date.UTC(+iso.slice(0, 4), +iso.slice(5, 7) - 1, +iso.slice(8, 10)) / 864e5; }
  function dueOf(s) {  // {due: YYYY-MM-DD, over: days overdue (> 0; 0: due that day), state: 0..3 (DUE_WORDS)}
    if (!s.t) return {due: null, over: null, state: 3};
    var due = dayNo(s.t) + s.e, over = dayNo(DU.at) - due;
    return {due: new Date(due * 864e5).toISOString().slice(0, 10), over: over, state: over >= 0 ? 0 : over >= -DU.soon ? 1 : 2};
  }
  function km(m) { return (m / 1000).toFixed(m < 10000 ? 2 : 1) + " km"; }
  function duePopup(s) {
    var box = el("div", "pop seg"), q = dueOf(s);  // a due one says which: due today, or overdue
    var w = q.state === 0 ? (q.over === 0 ? ["本日が期限", "due today"] : ["期限超過", "overdue"]) : DUE_WORDS[q.state];
    box.appendChild(el("h3", null, "巡回予定 / patrol due: " + w[0] + " / " + w[1]));
    var row = popRows(box);
    row("路線名 road", s.n || "— (路線名なし / unnamed)");
    row("最終巡回 last patrolled", s.t || "未巡回 / never surveyed");
    row("巡回間隔 every", s.e + " 日 / days");
    row("巡回期限 due", q.due || "未巡回: 巡回対象 / never surveyed: due now");
    row("超過日数 days overdue", q.over === null ? "未巡回 / never surveyed"
        : q.over > 0 ? q.over + " 日超過 / " + q.over + " days overdue"
        : q.over === 0 ? "本日が期限 / due today" : -q.over + " 日後 / due in " + -q.over + " days");
    row("区間 segments", s.k + " 区間 segments, " + km(s.m));
    row("基準日 as of", DU.at + " (出力日 / the day the map was made)");
    return box;
  }
  var DUE_N = DUES.reduce(function (a, s) { return a + s.k; }, 0);
  lineLayer({key: "due", z: 392, items: DUES, label: "巡回予定 / patrol due (" + DUE_N + " 区間 segments)",
    style: function (s) {
      var k = dueOf(s).state, cls = "due due-" + ["over", "soon", "ok", "never"][k];
      return k === 3 ? {color: DU.colors[3], weight: 4, opacity: 0.9, dashArray: "6,6", className: cls}
                     : {color: DU.colors[k], weight: 6, opacity: 0.9, className: cls};
    },
    popup: duePopup,
    fillKey: function (keyBox) {
      var n = [0, 0, 0, 0], m = [0, 0, 0, 0];
      DUES.forEach(function (s) { var k = dueOf(s).state; n[k] += s.k; m[k] += s.m; });
      DUE_WORDS.forEach(function (w, k) {
        keyLine(keyBox, k === 3 ? "ln nv" : "ln", DU.colors[k], w[0] + " / " + w[1] + ": " + n[k] + " 区間 segments (" + km(m[k]) + ")");
      });
      keyBox.appendChild(el("div", null, DU.at + " 時点 (出力日) / as of " + DU.at + " (the day the map was made); 巡回間隔: config survey / every_days"));
    }});
  // the repair jobs layer (補修工区, README: report.html): the map's open damages bundled as --format jobs bundles them
  // (within JB.gap m of each other on one road), each job's outline (its damages' hull, buffered) dashed and lightly
  // filled, under the markers (which take a click first); its popup: the job, its road, its damages per class, area,
  // cost, the rule (no key: one look, and a phone's four boxes then fit its map), and each damage's id, a link that
  // selects it and opens its popup (as a citizen report's link). Off when the page opens, as the other layers
  // (#jobs=1 on). A row: {d: ring, id, n: road, f: kept road fields (JB.fields), k: [n per class], a: m², no: without
  // an estimate, c: cost (JB.currency), s: largest severity, x: extent m, i: the damages' indices in C, p: 1 where no
  // jobs list named it yet: its id provisional}
  var JB = D.jobs || {rows: []}, JOBS = JB.rows || [];
  function jobPopup(s) {
    var box = el("div", "pop job");
    box.appendChild(el("h3", null, "補修工区 / repair job " + s.id));
    var row = popRows(box);
    if (s.p) row("工区番号 id", "未発行: 次の工区一覧 (--format jobs) で付く番号 / not yet in a jobs list: the id the next one gives it");
    row("路線名 road", s.n || "— (路線名なし / unnamed)");
    (JB.fields || []).forEach(function (f, k) {
      var v = s.f && s.f[k];
      if (v !== null && v !== undefined && v !== "") row(f, String(v));
    });
    row("損傷数 damages", s.i.length + " 件: " + D.classes.slice(0, s.k.length)
        .map(function (c, k) { return s.k[k] ? c.id + " " + s.k[k] : null; }).filter(Boolean).join(", "));
    row("補修面積 area", s.a + " m²" + (s.no ? " (面積推定なし " + s.no + " 件 / " + s.no + " without an estimate)" : ""));
    if (typeof s.c === "number") row("概算補修費 cost", s.c.toLocaleString("ja-JP") + " " + (JB.currency || ""));
    if (s.s !== null && s.s !== undefined) row("最大重要度 severity", fmt(s.s));
    row("範囲 extent", s.x + " m");
    row("まとめ方 rule", "未対応の損傷を " + JB.gap + " m 以内・同じ路線 (" + (JB.roadField || "路線名") + ") でまとめた工区 / open damages within "
        + JB.gap + " m of each other on one road (" + (JB.roadField || "road name") + "; jobs.gap_m)");
    box.appendChild(el("div", null, "損傷 ID (クリックで表示) / damages (click to show):"));
    var ids = el("div", "ids");
    s.i.forEach(function (i) {
      var a = el("a", "link", C[i].candidate_id); a.href = "#id=" + enc(C[i].candidate_id);
      a.addEventListener("click", function (e) { e.preventDefault(); map.closePopup(); select(i, true); });
      ids.appendChild(a);
    });
    box.appendChild(ids);
    return box;
  }
  lineLayer({key: "jobs", z: 394, items: JOBS, polygon: true,
    label: "補修工区 / repair jobs (" + JOBS.length + ")",  // one line: a 320 px phone's four boxes fit its map
    style: function () {
      return {color: JB.color, weight: 2, opacity: 0.9, dashArray: "5,4", fillColor: JB.color, fillOpacity: 0.15, className: "job"};
    },
    popup: jobPopup});
  // @reports{
  // citizen reports (住民通報, README: report.html; patrol import-reports), D.reports: each at its position, one
  // matched to a damage (the nearest within REP.radius m: citizen.match_reports) small, a thin line to its damage; one
  // 未確認 (no damage that close: not yet seen by a patrol, the next drive's to check) large, a white disc in a thick
  // magenta rim. A damage with reports has a magenta ring around its marker (with the marker: the filters') and lists
  // them in its popup. The layer is on when the page opens (#rep=0: off). A row: REPORT_ROW, [source, id, posted, lat,
  // lon, damage id (null: 未確認), distance m, text, city's status, category, kind, match (null: no kind said, or
  // 未確認), words not counted (null: none)]: kind and match as --format reports lists them, indices into REP.kinds
  // and REP.matches ("ja / en"); the words not counted and why, "穴 (否定 / negated)" (citizen.not_counted_text)
  var REP = D.reports, REP_COL = "#e4007f", REP_OF = {}, REP_IDX = {}, REP_RING = [];
  C.forEach(function (c, i) { REP_IDX[c.candidate_id] = i; });
  REP.rows.forEach(function (r) {  // r.i: its damage's index on this map (-1: 未確認, or a damage this map leaves out)
    r.i = r[5] !== null && REP_IDX.hasOwnProperty(r[5]) ? REP_IDX[r[5]] : -1;
    if (r.i >= 0) (REP_OF[r.i] = REP_OF[r.i] || []).push(r);
  });
  var REP_N_UNSEEN = REP.rows.filter(function (r) { return r[5] === null; }).length;
  function repName(r) { return (r[0] ? r[0] + " " : "") + r[1]; }
  function repList(c) {  // a damage's popup: its reports, the first 5
    var rs = REP_OF[c.i], d = el("div", "reps"), ul = el("ul");
    d.appendChild(el("h4", null, "住民通報 citizen reports: " + rs.length + " 件" +
                                 (c.reported_first ? " (初回 first " + day(c.reported_first) + ")" : "")));
    rs.slice(0, 5).forEach(function (r) {
      ul.appendChild(el("li", null, [repName(r), r[2], r[7]].filter(Boolean).join(" · ") + (r[6] !== null ? " (" + r[6] + " m)" : "")));
    });
    if (rs.length > 5) ul.appendChild(el("li", null, "… 他 " + (rs.length - 5) + " 件 / " + (rs.length - 5) + " more"));
    d.appendChild(ul);
    return d;
  }
  function repPopup(r) {
    var box = el("div", "pop rep"), row;
    box.appendChild(el("h3", null, "住民通報 / citizen report " + repName(r)));
    row = popRows(box);
    if (r[5] === null) row("巡回 patrol", "未確認: " + REP.radius + " m 以内に損傷なし (次の巡回で確認) / not yet seen by a patrol: no damage within " + REP.radius + " m (check on the next drive)");
    else row("損傷 damage", r[5] + " (" + r[6] + " m)" + (r.i < 0 ? " — この地図にない / not on this map" : ""));
    if (r[10] !== null && r[10] !== undefined)  // kind · match, one row (a popup no taller than need be)
      row("通報の種類 kind", REP.kinds[r[10]] + (r[11] !== null && r[11] !== undefined ? " · " + REP.matches[r[11]] : ""));
    if (r[12]) row("数えなかった語 not counted", r[12]);  // why a report saying 穴 is not a pothole's (穴はない)
    if (r[2]) row("投稿日時 posted", r[2]);
    if (r[9]) row("カテゴリ category", r[9]);
    if (r[7]) row("内容 text", r[7]);
    if (r[8]) row("対応状況 city's status", r[8]);
    if (r[0]) row("通報元 source", r[0]);
    row("位置 lat, lon", r[3] + ", " + r[4]);
    if (r.i >= 0) {  // to its damage: selected and its popup opened (the filters as they are)
      var a = el("a", "link", "損傷を開く / open the damage"); a.href = "#id=" + enc(r[5]);
      a.addEventListener("click", function (e) { e.preventDefault(); map.closePopup(); select(r.i, true); });
      box.appendChild(a);
    }
    return box;
  }
  map.createPane("repring").style.zIndex = 395;  // the damages' rings, under the markers (overlayPane, 400)
  map.createPane("rep").style.zIndex = 396;  // the reports: under the damages' markers, which take a click first
  var repRings = L.layerGroup().addTo(map);
  C.forEach(function (c, i) {
    REP_RING.push(REP_OF[i] && markers[i] ? L.circleMarker([c.lat, c.lon], {pane: "repring", radius: styleFor(c).radius + (GROWN_RING[i] ? 8 : 4),
      color: REP_COL, weight: 2, opacity: 0.95, fill: false, interactive: false, className: "rep-ring"}) : null);
  });
  // the layer: in LAYERS (its #rep= key, popups sized on a resize) but on unless the link says rep=0 (fromHash,
  // writeHash), so its shown() never writes rep=1
  var repLy = {key: "rep", items: REP.rows, group: null, lines: null, box: null};
  repLy.shown = function () { return false; };
  repLy.visible = function () { return !!repLy.group && map.hasLayer(repLy.group); };
  repLy.on = function (on) {
    if (on && !repLy.group) {
      repLy.group = L.layerGroup(); repLy.lines = L.layerGroup();
      REP.rows.forEach(function (r) {
        var m = L.circleMarker([r[3], r[4]], r[5] === null
          ? {pane: "rep", radius: 9, color: REP_COL, weight: 4, opacity: 1, fillColor: "#fff", fillOpacity: 0.95, className: "rep rep-unseen"}
          : {pane: "rep", radius: 4, color: "#fff", weight: 1, opacity: 1, fillColor: REP_COL, fillOpacity: 1, className: "rep rep-seen"});
        m.bindPopup(function () { return repPopup(r); }, popupSize({})).addTo(repLy.group);
        r.m = m;  // (repFind: the search opens its popup)
        if (r.i >= 0) L.polyline([[r[3], r[4]], [C[r.i].lat, C[r.i].lon]], {pane: "rep", color: REP_COL, weight: 1.5, opacity: 0.8,
          dashArray: "2,4", interactive: false, className: "rep-link"}).addTo(repLy.lines);
      });
    }
    if (repLy.group) [repLy.lines, repLy.group].forEach(function (g) {
      if (on && !map.hasLayer(g)) g.addTo(map); if (!on && map.hasLayer(g)) map.removeLayer(g);
    });
    repLy.box.querySelector("input").checked = !!on;
    repLy.box.classList.toggle("on", !!on);
    fitControls();
  };
  var repCtl = L.control({position: "topright"});
  repCtl.onAdd = function () {
    var d = repLy.box = el("div", "layerctl repctl"), lab = el("label"), cb = el("input");
    cb.type = "checkbox"; cb.id = "rep-on"; lab.appendChild(cb);
    lab.appendChild(document.createTextNode(" 住民通報 / citizen reports (" + REP.rows.length + " 件, 未確認 " + REP_N_UNSEEN + ")"));
    d.appendChild(lab);
    var keyBox = el("details", "layerkey repkey");  // (opened on a desktop's map: smallMap)
    keyBox.appendChild(el("summary", null, "凡例 / key"));
    keyBox.addEventListener("toggle", fitControls);
    [["sw unseen", "未確認: " + REP.radius + " m 以内に損傷なし (巡回でまだ見ていない: 次の巡回で確認) / not yet seen: no damage within " + REP.radius + " m (to check on the next drive): " + REP_N_UNSEEN],
     ["sw seen", "損傷と照合 (点線で損傷へ) / matched to a damage (dotted line to it): " + (REP.rows.length - REP_N_UNSEEN)]].forEach(function (k) {
      var r = el("div"); r.appendChild(el("span", k[0])); r.appendChild(document.createTextNode(k[1])); keyBox.appendChild(r);
    });
    d.appendChild(keyBox);
    cb.addEventListener("change", function () { repLy.on(cb.checked); writeHash(); });
    L.DomEvent.disableClickPropagation(d);
    return d;
  };
  repCtl.addTo(map);
  LAYERS.push(repLy);
  // }@reports
  // the legend under the layers' controls keeps to the map's height (its own scroll bar where it is taller:
  // on a phone all stacked at the top right would run off the map's bottom, where the map clips them); no lower than
  // its folding line (40 px on a phone: below the four layer boxes of a 320 px phone's map, 352 px tall, it still fits)
  // A desktop's map where the layers' boxes above leave the legend too little room (under 120 px: its folding line
  // and four rows; or none: 1280×800 with every layer on and the keys open, the legend at 928-968 px of an 800 px map,
  // out of reach): the legend whole, the stack of boxes no taller than the map, scrolled within it (ctl-scroll)
  var inPrint = false;  // (printMode)
  function fitControls() {
    if (!legendBox || !corner || inPrint) return;  // (the boxes still being built)
    if (togBtn) fitCompact();
    var mc = map.getContainer(), st = corner.scrollTop;
    mc.classList.remove("ctl-scroll");  // (fitCompact: the stack's height unset on a desktop)
    legendBox.style.maxHeight = "";
    if (compact) return;  // (the list of boxes scrolls instead)
    var h = map.getSize().y, top = legendBox.getBoundingClientRect().top - mc.getBoundingClientRect().top;
    var room = Math.floor(h - top - 10);
    if (room >= Math.min(legendBox.offsetHeight, 120)) { legendBox.style.maxHeight = Math.max(40, room) + "px"; return; }
    mc.classList.add("ctl-scroll");
    corner.style.maxHeight = Math.max(50, h - 10) + "px";
    corner.scrollTop = st;  // (a key opened or folded low in the stack: the stack stays where it was scrolled)
  }

  // legend (built with DOM nodes, no HTML strings)
  var legend = L.control({position: "topright"}), legendBox = null, togBtn = null;
  legend.onAdd = function () {
    var d = legendBox = el("details", "legend");  // folded on a phone, opened on a desktop's map (smallMap)
    d.addEventListener("toggle", fitControls);
    d.appendChild(el("summary", null, "凡例 / legend"));
    d.appendChild(el("h4", null, "分類 / class"));
    D.classes.forEach(function (c) {
      var row = el("div"); var sw = el("span", "sw"); sw.style.background = c.color; row.appendChild(sw);
      row.appendChild(document.createTextNode(c.id + " " + c.ja + " / " + c.en)); d.appendChild(row);
    });
    d.appendChild(el("h4", null, "状態 / status"));
    [["new", "白縁 white rim"], ["confirmed", "黒縁 black rim"], ["scheduled", "黒縁 black rim"], ["reopened", "赤縁 red rim"],
     ["repaired", "薄色・破線 faded, dashed"], ["not_an_issue", "灰色 grey"]].forEach(function (p) {
      var s = statusById[p[0]]; d.appendChild(el("div", null, s.ja + " / " + s.en + " — " + p[1]));
    });
    if (HAS_PASSES) {
      var row = el("div"); row.appendChild(el("span", "sw ring"));
      row.appendChild(document.createTextNode("点線の中抜き円 = " + UNSEEN_MARK + "回以上 検出なしで通過 (誤検出・補修済みか要確認) / dotted hollow ring = not seen on the last "
                                              + UNSEEN_MARK + "+ passes (check: false alarm, or repaired?)"));
      d.appendChild(row);
    }
    if (HAS_GROWTH) {
      var gw = el("div"); gw.appendChild(el("span", "sw grownring"));
      gw.appendChild(document.createTextNode("橙の破線の外円 = 悪化 (推定面積が初回より拡大) / orange dashed outer ring = grown since first seen"));
      d.appendChild(gw);
    }
    // @reports{
    var rr = el("div"); rr.appendChild(el("span", "sw repring"));
    rr.appendChild(document.createTextNode("マゼンタの外円 = 住民通報あり (ポップアップに一覧) / magenta outer ring = reported by residents (listed in its popup)"));
    d.appendChild(rr);
    // }@reports
    d.appendChild(el("div", null, "円の大きさ = 重要度 / size = severity"));
    L.DomEvent.disableClickPropagation(d);
    return d;
  };
  legend.addTo(map);
  // a phone's map (smallMap: the boxes would cover over half its width, or even folded not fit its height) with two
  // layers' boxes or more: the boxes and the legend fold into one button at the top right (表示 / layers, with how
  // many layers are shown),
  // a tap on it lists them under it, scrolled within the map (before: a 320 px phone's five boxes, 60 % of the map,
  // the legend past its bottom with the layers on; on its side, the reports' box and the legend past it); folded
  // again by the button, a tap on the map or a popup opening. Their tick boxes, the links' #cond=1 … and the keys
  // as before; a desktop's map: the boxes each as before, no button
  var corner = map.getContainer().querySelector(".leaflet-top.leaflet-right"), compact = false;
  var togBox = el("div", "leaflet-control layerstog");
  togBtn = el("button");
  togBtn.type = "button"; togBtn.setAttribute("aria-expanded", "false"); togBox.appendChild(togBtn);
  corner.insertBefore(togBox, corner.firstChild);
  L.DomEvent.disableClickPropagation(togBox);
  // the open list, a desktop's scrolled stack, a legend taller than its room scroll themselves (a finger or the wheel
  // on them, between the boxes too): not the map's pan or zoom (before: the wheel on a desktop's legend zoomed the map)
  L.DomEvent.disableScrollPropagation(corner);
  ["mousedown", "touchstart", "pointerdown", "dblclick"].forEach(function (t) {
    corner.addEventListener(t, function (e) { e.stopPropagation(); });
  });
  function openLayers(open) {
    map.getContainer().classList.toggle("ctl-open", !!open);
    togBtn.setAttribute("aria-expanded", open ? "true" : "false");
    fitControls();
  }
  togBtn.addEventListener("click", function () { openLayers(!map.getContainer().classList.contains("ctl-open")); });
  map.on("click", function () { if (compact) openLayers(false); });
  var NBOX = LAYERS.filter(function (ly) { return ly.items.length; }).length;
  // a phone's map, told by what fits in it, not by the window's width (before: a map under 600 px wide or 450 px
  // high, so a 1024×768 desktop's, 552×735 px beside the list, got the phone's button): the boxes are 250 px wide
  // (CSS: .layerctl, .legend) 10 px from the map's edge, so under 520 px of map they cover over half its width (a
  // phone upright, 320-430 px); or the boxes at their smallest (each key and the legend folded, measured as laid out
  // there: ctl-measure) are taller than the map (a phone on its side: its map 280 px high, the five boxes' lines
  // 40 px each). A desktop's or a laptop's window, a tablet's: the boxes open, the stack scrolled where taller
  // (fitControls: ctl-scroll)
  var BOX_W = 260;
  function smallMap() {
    var s = map.getSize(), h = 10;
    if (s.x < 2 * BOX_W) return true;
    corner.classList.add("ctl-measure");
    [].forEach.call(corner.children, function (b) { if (b !== togBox) h += b.offsetHeight + 10; });
    corner.classList.remove("ctl-measure");
    return h > s.y;
  }
  function fitCompact() {
    var s = map.getSize(), was = compact;
    compact = NBOX >= 2 && smallMap();
    map.getContainer().classList.toggle("compact", compact);
    if (!compact) map.getContainer().classList.remove("ctl-open");
    if (compact && !was) {  // folded as a phone's: the legend and the keys (the list short enough to scan)
      legendBox.open = false;
      [].forEach.call(corner.querySelectorAll("details.layerkey"), function (k) { k.open = false; });
    }
    var n = LAYERS.filter(function (ly) { return ly.shown() || (ly.visible && ly.visible()); }).length;
    togBtn.textContent = "表示 / layers" + (n ? " (" + n + ")" : "");
    corner.style.maxHeight = compact ? Math.max(50, s.y - 10) + "px" : "";
  }
  // the keys and the legend open as the page opens on a desktop's map, folded on a phone's (smallMap, as the button:
  // so with one layer too)
  var wideMap = !smallMap();
  legendBox.open = wideMap;
  [].forEach.call(corner.querySelectorAll("details.layerkey"), function (k) { k.open = wideMap; });
  fitControls();
  map.on("resize", fitControls);
  // a phone or tablet turned (portrait ↔ landscape), a window resized: every popup's size limits from the map's new
  // size (before: those of the page's opening, a popup taller than the landscape map or cramped in it), the open
  // one laid out again and panned into view (even one a link's view opened without panning: the view moved anyway)
  var openPop = null;
  map.on("popupopen", function (e) { openPop = e.popup; });
  map.on("resize", function () {
    markers.forEach(function (m) { if (m) popupSize(m.getPopup().options, true); });
    LAYERS.forEach(function (ly) { if (ly.group) ly.group.eachLayer(function (l) { popupSize(l.getPopup().options); }); });
    if (openPop && openPop.isOpen()) {
      var ap = openPop.options.autoPan;
      openPop.options.autoPan = true; openPop.update(); openPop.options.autoPan = ap;
    }
  });
  // some phones' browsers report the new size only after the turn's "orientationchange": measured again then
  window.addEventListener("orientationchange", function () { setTimeout(function () { map.invalidateSize(); }, 300); });
  // an open popup is shown whole: the legend folds away (its summary line stays to open it again), and once the
  // photo has loaded the popup is laid out and panned again for its real height (autoPan ran without it)
  map.on("popupopen", function (e) {
    legendBox.open = false;
    if (compact) openLayers(false);
    var cf = e.popup.getElement().querySelector("details.crew");
    if (cf) {  // the checker's name of the last entry, as stored meanwhile; opened or folded: laid out again
      cf.show();
      cf.ontoggle = function () { if (e.popup.isOpen()) e.popup.update(); };
    }
    var img = e.popup.getElement().querySelector("img");
    if (img && !img.complete) img.addEventListener("load", function () { if (e.popup.isOpen()) e.popup.update(); }, {once: true});
  });

  // table
  var COLS = [["candidate_id", "ID", "id"], ["class", "分類", "class"], ["severity", "重要度", "severity", 2], ["confidence", "確信度", "conf.", 2],
              ["n_obs", "回数", "seen"], ["road_name", "路線名", "road"], ["chainage_m", "距離標", "chainage", 1],
              ["status", "状態", "status"], ["last_seen", "最終検出", "last seen"]];
  COLS.splice.apply(COLS, [COLS.findIndex(function (f) { return f[0] === "road_name"; }) + 1, 0].concat(ROADF));
  // a registry's export: the drives past each damage since its last sighting that did not see it
  if (HAS_PASSES) COLS.push(["n_unseen", "未検出通過", "passed unseen"]);
  var OPTIONAL = {confidence: 1, n_obs: 1, last_seen: 1, n_unseen: 1};  // class "opt": hidden on a phone's width (CSS)
  // a registry with a job record (a jobs list exported from it): each open damage's repair job (工区), after its status
  if (D.columns.some(function (c) { return c.id === "job_id"; })) {
    COLS.splice(COLS.findIndex(function (f) { return f[0] === "status"; }) + 1, 0, ["job_id", "工区", "job"]); OPTIONAL.job_id = 1;
  }
  var NARROW = {chainage_m: 1};  // class "opt2": hidden on the narrowest phones (320 px; in the popup)
  // @reports{
  // a page with citizen reports: each damage's number of them (the data's reports, citizen.add_report_columns; else
  // the layer's own count), a secondary column as 未検出通過 (hidden on a phone's width: the magenta ring and the popup say it there)
  COLS.push(["reports", "通報", "reports"]); OPTIONAL.reports = 1;
  C.forEach(function (c) { if (typeof c.reports !== "number") c.reports = REP_OF[c.i] ? REP_OF[c.i].length : 0; });
  // }@reports
  var headRow = document.querySelector("#tbl thead tr");
  COLS.forEach(function (col, k) {
    var th = el("th", OPTIONAL[col[0]] ? "opt" : NARROW[col[0]] ? "opt2" : null, col[1]); th.appendChild(el("span", "en", col[2]));
    th.addEventListener("click", function () { sortBy(k); });
    headRow.appendChild(th);
  });
  var tbody = document.querySelector("#tbl tbody");
  var rows = C.map(function (c, i) {
    var tr = el("tr"); tr.dataset.i = String(i);
    COLS.forEach(function (col) {
      var td;
      if (col[0] === "class") {
        td = el("td"); var dot = el("span", "dot"); dot.style.background = color(c); td.appendChild(dot);
        td.appendChild(document.createTextNode(c.class + " " + (c.class_name_ja || "")));
        td.appendChild(el("div", "en", c.class_name || ""));
      } else if (col[0] === "status") {
        var s = statusById[c.status]; td = el("td");
        td.appendChild(el("span", "badge st-" + (s ? c.status : "new"), s ? s.ja : c.status));
        td.appendChild(el("div", "en", s ? s.en : ""));
      } else if (col[0] === "last_seen") {
        td = el("td", null, day(c.last_seen));
      } else if (col[0] === "road_name") {
        td = el("td", null, c.road_name || c.segment_id || "");
      } else {
        td = el("td", typeof c[col[0]] === "number" ? "num" : null, fmt(c[col[0]], col[3]));
      }
      if (OPTIONAL[col[0]]) td.classList.add("opt");
      if (NARROW[col[0]]) td.classList.add("opt2");
      tr.appendChild(td);
    });
    tr.addEventListener("click", function () { select(i, true); });
    tbody.appendChild(tr);
    return tr;
  });
  var sortState = {k: -1, dir: 1};
  function sortBy(k) {
    // @reports{
    if (COLS[k][0] === "reports" && sortState.k !== k) sortState = {k: k, dir: 1};  // first click: the most reported first
    // }@reports
    sortState = {k: k, dir: sortState.k === k ? -sortState.dir : (k === 2 || k === 3 || k === 4 || COLS[k][0] === "n_unseen" ? -1 : 1)};
    var key = COLS[k][0];
    var order = C.map(function (_, i) { return i; }).sort(function (a, b) {
      var x = C[a][key], y = C[b][key];
      if (x === y) return a - b;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * sortState.dir;
    });
    order.forEach(function (i) { tbody.appendChild(rows[i]); });
  }
  sortBy(2);

  // filters
  var fClass = document.getElementById("f-class"), fStatus = document.getElementById("f-status");
  var fSev = document.getElementById("f-sev"), fText = document.getElementById("f-text");
  var fUnseen = document.getElementById("f-unseen");
  if (HAS_PASSES) document.getElementById("l-unseen").hidden = false;
  // grown since first seen (悪化): shown where a damage's size was compared between two drives (a registry's)
  var fGrown = document.getElementById("f-grown");
  if (HAS_GROWTH) document.getElementById("l-grown").hidden = false;
  else fGrown.remove(1);  // nothing to choose: a link's grown=1 is named in the note line, not a hidden filter
  if (UNSEEN_MARK > 3) { var uo = el("option", null, UNSEEN_MARK + "回以上 / " + UNSEEN_MARK + "+ passes"); uo.value = String(UNSEEN_MARK); fUnseen.appendChild(uo); }
  D.classes.forEach(function (c) { var o = el("option", null, c.id + " " + c.ja + " / " + c.en); o.value = c.id; fClass.appendChild(o); });
  D.statuses.forEach(function (s) { var o = el("option", null, s.ja + " / " + s.en); o.value = s.id; fStatus.appendChild(o); });
  document.getElementById("filters").addEventListener("submit", function (e) { e.preventDefault(); });
  var countBox = document.getElementById("count");
  var visible = [];
  function matches(c) {
    if (fClass.value && c.class !== fClass.value) return false;
    if (fStatus.value === "open" ? CLOSED.indexOf(c.status) >= 0 : fStatus.value && c.status !== fStatus.value) return false;
    var ms = parseFloat(fSev.value);
    if (isFinite(ms) && ms > 0 && !(typeof c.severity === "number" && c.severity >= ms)) return false;
    var mu = parseInt(fUnseen.value, 10);
    if (mu > 0 && !(typeof c.n_unseen === "number" && c.n_unseen >= mu)) return false;
    if (fGrown.value === "1" && c.grown !== 1) return false;
    var q = fText.value.trim().toLowerCase();
    if (q) {
      var hay = [c.candidate_id, c.road_name, c.segment_id, c.class, c.class_name, c.class_name_ja, c.status_note,
                 c.best_image, c.best_drive, c.checked_by, c.job_id].concat(ROADF.map(function (f) { return c[f[0]]; })).map(function (v) { return v === null || v === undefined ? "" : String(v); })
                 .join(" ").toLowerCase();
      // @reports{
      if (REP_OF[c.i]) hay += " " + REP_OF[c.i].map(repName).join(" ").toLowerCase();  // its reports' ids: repFind
      // }@reports
      if (hay.indexOf(q) < 0) return false;
    }
    return true;
  }
  function apply() {
    var n = 0;
    visible = C.map(function (c, i) {
      var ok = matches(c);
      rows[i].style.display = ok ? "" : "none";
      var m = markers[i];
      if (m) { if (ok && !markerLayer.hasLayer(m)) markerLayer.addLayer(m); if (!ok && markerLayer.hasLayer(m)) markerLayer.removeLayer(m); }
      var gr = GROWN_RING[i];  // a grown damage's ring: with its marker
      if (gr) { if (ok && !grownRings.hasLayer(gr)) grownRings.addLayer(gr); if (!ok && grownRings.hasLayer(gr)) grownRings.removeLayer(gr); }
      // @reports{
      var rg = REP_RING[i];  // a reported damage's ring: with its marker
      if (rg) { if (ok && !repRings.hasLayer(rg)) repRings.addLayer(rg); if (!ok && repRings.hasLayer(rg)) repRings.removeLayer(rg); }
      // }@reports
      if (ok) n++;
      return ok;
    });
    // the filters in words: a printout (which hides the filter bar) says what it lists
    var on = [];
    if (fClass.value) on.push(fClass.options[fClass.selectedIndex].text);
    if (fStatus.value) on.push(fStatus.options[fStatus.selectedIndex].text);
    if (parseFloat(fSev.value) > 0) on.push("重要度 severity ≥ " + fSev.value);
    if (fUnseen.value) on.push("未検出通過 " + fUnseen.value + "回以上 / not seen on the last " + fUnseen.value + "+ passes");
    if (fGrown.value) on.push("悪化 / grown");
    if (fText.value.trim()) on.push("「" + fText.value.trim() + "」");
    countBox.textContent = n + " / " + C.length + " 件 shown" + (on.length ? " · " + on.join(" · ") : "");
    writeHash();
  }
  [fClass, fStatus, fSev, fText, fUnseen, fGrown].forEach(function (e) { e.addEventListener("input", apply); e.addEventListener("change", apply); });
  // @reports{
  // a citizen report's id typed in the search, with or without its source ("MCR-012", "MCR MCR-012"; any case, as
  // the damages' search): the map at the report (zoom 18, as a damage picked) with its popup open, the layer shown
  // where it was off; its damage listed (matches: a damage's haystack holds its reports' ids) as a search for the
  // damage's id lists it. One id two sources hold: the map fitted to both, the first one's popup open. Typed only
  // (the input's own event, after apply): a link's q= filters as before and opens nothing
  function repFind() {
    var q = fText.value.trim().replace(/\s+/g, " ").toLowerCase();
    if (!q) return;
    var hit = REP.rows.filter(function (r) {
      return String(r[1]).replace(/\s+/g, " ").toLowerCase() === q || repName(r).replace(/\s+/g, " ").toLowerCase() === q;
    });
    if (!hit.length) return;
    if (!repLy.visible()) repLy.on(true);
    var mb = map.getContainer().getBoundingClientRect();
    if (mb.top < 0 || mb.bottom > window.innerHeight) map.getContainer().scrollIntoView({block: "start"});
    if (hit.length > 1) map.fitBounds(L.latLngBounds(hit.map(function (r) { return [r[3], r[4]]; })).pad(0.3), {maxZoom: 18, animate: false});
    else map.setView([hit[0][3], hit[0][4]], Math.max(map.getZoom(), 18), {animate: false});
    hit[0].m.openPopup();
    writeHash();
  }
  fText.addEventListener("input", repFind);
  // Enter (not the IME's, which only ends a Japanese word) finds it again: its popup closed, the same id typed, no
  // input event comes (before: nothing opened it again)
  fText.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.isComposing && e.keyCode !== 229) { e.preventDefault(); repFind(); }
  });
  // }@reports

  var selected = -1;
  function select(i, zoom) {
    if (selected >= 0) rows[selected].classList.remove("sel");
    selected = i;
    rows[i].classList.add("sel");
    var m = markers[i];
    if (zoom) {
      rows[i].scrollIntoView({block: "nearest"});
      if (m && markerLayer.hasLayer(m)) {
        var mb = map.getContainer().getBoundingClientRect();
        if (mb.top < 0 || mb.bottom > window.innerHeight) map.getContainer().scrollIntoView({block: "start"});
        map.setView(m.getLatLng(), Math.max(map.getZoom(), 18), {animate: false});
        m.openPopup();
      }
    } else {
      rows[i].scrollIntoView({block: "nearest", behavior: "smooth"});
    }
    writeHash();
  }

  if (CREW) {
    // the entries of the damages this report lists: those under the name before (this report's key: the same
    // damages, unchanged) moved to the registry's; those the registry has taken since their download dropped
    C.forEach(function (c) {
      var id = c.candidate_id, old = lsGet(OLD + id), r;
      if (old !== null && !rec(id)) {
        try { r = JSON.parse(old); } catch (e) { r = null; }
        if (r && typeof r === "object") {
          r.status_changed_at = sca(c.status_changed_at); lsSet(PFX + id, JSON.stringify(r));
        }
      }
      if (old !== null && rec(id)) lsSet(OLD + id, null);
      if (entryState(c, rec(id)) === "done") lsSet(PFX + id, null);
    });
    document.getElementById("crew").hidden = false;
    crewCount();
    // a Blob download (works from file://; Safari on iPad may open it in a tab: "share" → save to Files)
    document.getElementById("crew-dl").addEventListener("click", function () {
      var a = el("a"); a.download = "確認結果-" + CREW.date + ".csv";
      a.href = URL.createObjectURL(new Blob([crewCsv()], {type: "text/csv;charset=utf-8"}));
      var now = new Date().toISOString();  // the entries listed: dropped by a later report once the registry took them
      C.forEach(function (c) {
        var r = rec(c.candidate_id);
        if (r) { r.downloaded_at = now; lsSet(PFX + c.candidate_id, JSON.stringify(r)); }
      });
      document.body.appendChild(a); a.click();
      setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 30000);  // (a slow tablet: not before it saved)
    });
  }

  apply();
  function fit() {
    var b = markerLayer.getBounds();
    if (b.isValid()) { map.fitBounds(b.pad(0.15), {maxZoom: 18, animate: false}); }
    else if (D.roads.length) { map.fitBounds(L.polyline(D.roads[0].c).getBounds()); }
    else { map.setView([36.0, 138.0], 5); }
  }
  fit();
  // printed (README: report.html): the legend and shown layers' keys copied under the map before the page is laid
  // out for paper (beforeprint: Chromium counts the pages then), the map fitted to all candidates once it is (the
  // print media query); back on screen, the view and the stack's scroll as they were
  var printing = window.matchMedia && window.matchMedia("print"), view = null, printKey = document.getElementById("printkey");
  function printCopy(box) {  // a box's heading, its key's rows
    var c = el("div", box.className), rows = box.tagName === "DETAILS" ? box : box.querySelector("details");
    c.appendChild(el("h3", null, box.querySelector("summary, label").textContent.trim()));
    if (rows) [].forEach.call(rows.children, function (k) { if (k.tagName !== "SUMMARY") c.appendChild(k.cloneNode(true)); });
    return c;
  }
  function printMode(on) {
    if (on !== inPrint) {
      inPrint = on;
      printKey.textContent = "";
      if (!on) { map.invalidateSize({pan: false}); map.setView(view[0], view[1], {animate: false}); corner.scrollTop = view[2]; return; }
      view = [map.getCenter(), map.getZoom(), corner.scrollTop];
      printKey.appendChild(printCopy(legendBox));
      LAYERS.forEach(function (ly) { if (ly.box && ly.box.classList.contains("on")) printKey.appendChild(printCopy(ly.box)); });
    }
    if (on && printing && printing.matches) { map.invalidateSize({pan: false}); fit(); }  // (not yet at beforeprint)
  }
  window.addEventListener("beforeprint", function () { printMode(true); });
  window.addEventListener("afterprint", function () { printMode(false); });
  function onPrint(e) { printMode(e.matches); }
  if (printing) { if (printing.addEventListener) printing.addEventListener("change", onPrint); else printing.addListener(onPrint); }

  // the view in the URL's fragment (README: links to a view), e.g. #id=R-000012&class=D40&status=new&sev=20&unseen=2&grown=1
  // &q=text&z=17/36.68000/137.23000 (zoom/lat/lon): rewritten on every change (replaceState: no reload, no history
  // entry), restored when the file opens; #c=<id> (older links) is id=. What it cannot use is named in the note line.
  var hashReady = false, noteBox = document.getElementById("note");
  var HF = [["class", fClass], ["status", fStatus], ["sev", fSev], ["unseen", fUnseen], ["grown", fGrown], ["q", fText]];
  function enc(v) { return encodeURIComponent(String(v)).replace(/%2C/g, ",").replace(/%2F/g, "/"); }
  function note(text) { noteBox.textContent = text; noteBox.hidden = !text; }
  var linkView = null;  // the view (z=zoom/lat/lon) the page was opened at, from its link: writeHash
  function writeHash() {
    if (!hashReady) return;
    var p = selected >= 0 && visible[selected] ? ["id=" + enc(C[selected].candidate_id)] : [];
    HF.forEach(function (f) { var v = f[1].value.trim(); if (v && (f[0] !== "sev" || parseFloat(v) > 0)) p.push(f[0] + "=" + enc(v)); });
    LAYERS.forEach(function (ly) { if (ly.shown()) p.push(ly.key + "=1"); });
    // @reports{
    if (!repLy.visible()) p.push("rep=0");  // the citizen reports: on unless said
    // }@reports
    var c = map.getCenter(), zoom = map.getZoom();
    // the view a link gave, while the map is still there (within a pixel: the map centres on whole pixels, so a
    // window of odd height moves it half a pixel): written as the link wrote it, so a link opened and shared again
    // stays the same link
    var kept = linkView && zoom === linkView.z &&
      map.latLngToContainerPoint(linkView.ll).distanceTo(map.latLngToContainerPoint(c)) < 1;
    p.push("z=" + zoom + "/" + (kept ? linkView.s : c.lat.toFixed(5) + "/" + c.lng.toFixed(5)));
    if ("#" + p.join("&") !== location.hash) try { history.replaceState(null, "", "#" + p.join("&")); } catch (e) { /* not kept */ }
  }
  function findId(id) { for (var i = 0; i < C.length; i++) if (String(C[i].candidate_id) === id) return i; return -1; }
  function fromHash() {
    var bad = [], id = null, z = null, val = {}, on = {};
    (location.hash || "").replace(/^#/, "").split("&").forEach(function (part) {
      if (!part) return;
      var eq = part.indexOf("="), k, v;
      try { k = decodeURIComponent(eq < 0 ? part : part.slice(0, eq)); v = eq < 0 ? null : decodeURIComponent(part.slice(eq + 1)); }
      catch (e) { bad.push(part); return; }
      var f = HF.filter(function (f) { return f[0] === k; })[0], m;
      if (v === null && findId(k) >= 0) id = k;  // #R-000012
      else if (v === null) bad.push(k);
      else if (k === "id" || k === "c") id = v;
      else if ((v === "1" || v === "0") && LAYERS.some(function (ly) { return ly.key === k && ly.items.length; })) on[k] = v === "1";
      else if (k === "z" && (m = /^(\d{1,2})\/(-?\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)$/.exec(v)) && +m[1] <= 22 && Math.abs(m[2]) <= 90 && Math.abs(m[3]) <= 180) z = m;
      else if (f && (f[0] === "q" || (f[0] === "sev" ? isFinite(v) && +v >= 0 : [].some.call(f[1].options, function (o) { return o.value === v; })))) val[k] = v;
      else bad.push(k + "=" + v);
    });
    HF.forEach(function (f) { f[1].value = val[f[0]] !== undefined ? val[f[0]] : f[0] === "sev" ? "0" : ""; });
    hashReady = false;  // one hash written at the end, with the whole view
    LAYERS.forEach(function (ly) { ly.on(!!on[ly.key]); });
    // @reports{
    repLy.on(on.rep !== false);  // the citizen reports: on unless the link says rep=0
    // }@reports
    apply();
    var i = id === null ? -1 : findId(id);
    if (!(i >= 0 && visible[i]) && selected >= 0) { rows[selected].classList.remove("sel"); selected = -1; map.closePopup(); }
    if (id !== null && i < 0) bad.push("id=" + id + " (該当なし / no such damage)");
    else if (i >= 0 && !visible[i]) bad.push("id=" + id + " (フィルタで非表示 / hidden by the filters)");
    if (z) map.setView([+z[2], +z[3]], +z[1], {animate: false});  // the view the link was made in ...
    linkView = z ? {z: +z[1], ll: L.latLng(+z[2], +z[3]), s: z[2] + "/" + z[3]} : null;
    if (i >= 0 && visible[i]) {  // ... else zoomed to the damage; its popup open, not panning the view away
      var po = z && markers[i] && markers[i].getPopup();
      if (po) { po.options.autoPan = false; markers[i].once("popupclose", function () { po.options.autoPan = true; }); }
      select(i, !z);
      if (po) markers[i].openPopup();
    }
    note(bad.length ? "リンクの一部を無視しました / ignored in the link: " + bad.join(" · ") : "");
    hashReady = true;
    writeHash();
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
  map.on("moveend", writeHash);

  // self-check, read by the tests through headless Chromium: markers drawn, rows listed, nothing loaded
  try {
    var drawn = 0;
    markerLayer.eachLayer(function () { drawn++; });
    var svgPaths = document.querySelectorAll("#map .leaflet-overlay-pane path.leaflet-interactive").length;
    var external = (performance.getEntriesByType ? performance.getEntriesByType("resource") : [])
      .filter(function (r) { return !/^(data|blob|about):/.test(r.name); });
    var shown = rows.filter(function (r) { return r.style.display !== "none"; }).length;
    if (external.length) fail("external resource " + external[0].name);
    else if (drawn !== svgPaths) fail("markers " + drawn + " but paths " + svgPaths);
    else if (!root.hasAttribute("data-selfcheck")) root.setAttribute("data-selfcheck", "report-ok:" + drawn + ":" + shown);
  } catch (e) { fail(e && e.message); }
})();
"""
