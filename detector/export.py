"""Stage 5: candidates.geojson (RFC 7946) and repair_list.csv (UTF-8 with BOM for Japanese Excel).

Both are written atomically. The CSV is formula-injection safe: a text cell starting with = + - @ (or a tab /
carriage return) gets a leading ``'``; numeric columns are written as plain numbers.

Sightings in the outputs (``sightings``): a damage left unrepaired is seen every week for years (hundreds of
frames), so no output lists them all. Every output, of a run and of the registry, carries ``n_obs`` (sightings),
``n_drives`` (drives that saw it), ``first_seen``/``last_seen``, the best frame (``best_drive``, ``best_image``,
the crop) and ``last_drive``; the latest drive's frames (``last_images``:
``drive/name``, at most ``LAST_IMAGES_MAX``) are in ``candidates.geojson`` and the registry's csv/xlsx/geojson/gpkg/kml
exports, not in ``repair_list.csv`` (``REPAIR_COLUMNS``) or the html maps. A run's ``candidates.geojson`` and
``repair_list.csv`` also list the run's ``drives`` (one name each, a handful). The complete lists: a run's
``detections.csv``, the registry's ``observations`` table.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from . import CLASS_IDS
from .atomic import atomic_write

GEOJSON_PROPERTIES = [
    "candidate_id", "class", "class_name", "class_name_ja", "confidence", "n_obs", "first_seen", "last_seen",
    "segment_id", "road_name", "chainage_m", "best_image", "best_drive", "drives", "n_drives", "last_drive",
    "severity",
    "last_images", "best_x1", "best_y1", "best_x2", "best_y2", "best_width", "best_height", "est_width_m", "est_length_m",
    "run_candidate_id", "status", "reports", "reported_first",
    # with --store where the registry holds a jobs list (``jobs.add_job_column``): the damage's repair job; absent
    # otherwise (a property of GEOJSON_PROPERTIES is written where the frame has its column)
    "job_id",
]
REPAIR_COLUMNS = [
    "No", "candidate_id", "segment_id", "road_name", "chainage_m", "class", "種別", "class_name", "confidence",
    "n_obs", "severity", "lat", "lon", "first_seen", "last_seen", "best_drive", "best_image", "photo", "map", "drives", "n_drives",
    "last_drive", "n_passes", "n_unseen", "n_poor_look", "last_passed", "reports", "reported_first", "status", "note",
    "issue_type", "checked_by", "checked_at", "status_changed_at",
]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: the columns of segments.geojson (``segments.OUT_COLUMNS``; tests keep them in sync), which carries the kept road
#: fields too
SEGMENT_COLUMNS = ["level", "segment_id", "road_name", "bin_index", "from_m", "to_m", "length_m", "surveyed_m",
                   "coverage", "valid", *[f"n_{c}" for c in CLASS_IDS], "n_total", "damage_index", "condition",
                   "severity_max", "crack_area_m2", "crack_rate", "diagnosis", "mci_crack", "n_no_estimate",
                   "n_capped"]
#: every column name patrol itself writes or reads in a candidates frame, a run's outputs (segments.geojson too),
#: the registry and its exports (``report.LIST_COLUMNS``, ``store`` columns, the html's per-candidate keys; tests
#: keep it in sync): a kept
#: road field (``roads.keep_fields``) named like one is written as ``road_<name>`` (``road_field_names``). Compared
#: case-insensitively: GeoPackage (SQLite) column names and Excel's filter are
RESERVED_COLUMNS = frozenset(c.casefold() for c in [
    *GEOJSON_PROPERTIES, *REPAIR_COLUMNS, "lat", "lon", "drives", "images", "observations", "status_ja",
    "status_note", "status_changed_at", "repaired_at", "checked_by", "checked_at", "issue_type", "photo",
    "crop_jpeg", "crop_obs_id", "first_t", "last_t", "repaired_t", "created_run", "n_passes", "n_unseen",
    "n_poor_look", "last_passed", "merged_into", "merged_at", "fid", "geom", "geometry", "reports", "reported_first",
    "crop", "i", "make", "model", "map", "_t", "_u", "x", "y", "crs", *SEGMENT_COLUMNS,  # x, y, crs: --crs's (report.XY_COLUMNS)
    "first_surveyed", "last_surveyed",  # the registry's segments export (segments.PERIOD_COLUMNS)
    "job_id",  # the damage's repair job (report.JOB_COLUMN), and the jobs list's own
    "area_first_m2", "area_last_m2", "growth", "grown",  # grown since first seen (store.GROWTH_COLUMNS)
])
#: what a kept road field named like a patrol column gets in front of its name
ROAD_FIELD_PREFIX = "road_"


def header_key(text) -> str:
    """A column heading as ``patrol import-verification`` matches it: its last line (the xlsx's English one), lower
    case, each run of characters other than a-z and 0-9 as one ``_`` (``状態(和)\nstatus (ja)`` -> ``status_ja``,
    ``Checked-By`` -> ``checked_by``). ``road_field_names`` prefixes a kept field whose key is one of ours, so a
    list's ledger column is never read as the crew's."""
    return re.sub(r"[^a-z0-9]+", "_", str(text).strip().split("\n")[-1].strip().lower()).strip("_")


#: ``RESERVED_COLUMNS`` as ``header_key`` gives them (not the internal ``_t``/``_u``, nor "": a Japanese name such as
#: 種別 has no key, and the import reads no column without one)
RESERVED_KEYS = frozenset(header_key(c) for c in RESERVED_COLUMNS if not c.startswith("_")) - {""}
#: the most frames of the latest drive an output lists (a vehicle waiting at a light films a damage for minutes)
LAST_IMAGES_MAX = 20


def road_field_names(fields) -> list[tuple[str, str]]:
    """``roads.keep_fields`` as (the network's column, the output column): the network's name as written, or
    ``road_<name>`` where it is named like a patrol column (``RESERVED_COLUMNS``: ``status`` -> ``road_status``;
    compared ignoring case, and as import-verification reads a heading, ``header_key``: ``Status Note`` ->
    ``road_Status Note``), so a kept field never overwrites ours nor is read back as ours. ValueError for an empty name, a name given twice, or two names written
    alike (``class`` and ``road_class``; ``width`` and ``WIDTH``: GeoPackage column names ignore case)."""
    out: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for f in fields:
        if not isinstance(f, str) or not f.strip():
            raise ValueError(f"empty field name {f!r}")
        ours = f.casefold() in RESERVED_COLUMNS or header_key(f) in RESERVED_KEYS  # `Status Note` is status_note
        name = ROAD_FIELD_PREFIX + f if ours else f
        if name.casefold() in RESERVED_COLUMNS or header_key(name) in RESERVED_KEYS:  # only road_name (not: name)
            raise ValueError(f"{f!r} would be written as {name!r}, a column of patrol's own")
        if name.casefold() in seen:
            other = seen[name.casefold()]
            raise ValueError(f"{f!r} is given twice" if other == f else
                             f"{f!r} and {other!r} would both be written as {name!r} (column names are compared "
                             "whatever their case)")
        seen[name.casefold()] = f
        out.append((f, name))
    return out


def road_columns(cfg) -> list[str]:
    """The output names of the config's kept road fields (``roads.keep_fields``), in the configured order."""
    roads = getattr(cfg, "roads", None)
    return [name for _, name in road_field_names(getattr(roads, "keep_fields", None) or [])]


def _after_road_name(cols: list[str], extra: list[str]) -> list[str]:
    """``cols`` with ``extra`` (kept road fields) right after road_name (at the end without one)."""
    cols = [c for c in cols if c not in extra]
    at = cols.index("road_name") + 1 if "road_name" in cols else len(cols)
    return cols[:at] + list(extra) + cols[at:]


def _jsonable(v):
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return None if not math.isfinite(f) else f
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return v


def _prop(v):
    """A GeoJSON property: JSON-able, and missing text (an empty string: no road name, no segment) as null, as the
    registry and its exports have it."""
    return None if isinstance(v, str) and not v else _jsonable(v)


def _names(v) -> list[str]:
    if isinstance(v, (list, tuple, np.ndarray)):
        return [str(x) for x in v]
    if isinstance(v, str) and v:
        if v.startswith("["):
            try:
                got = json.loads(v)
            except ValueError:
                got = None
            if isinstance(got, list):
                return [str(x) for x in got]
        return [v]
    return []


def sightings(cands: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``cands`` whose sightings are summarised as every output gives them (see the module doc):
    ``n_drives``, ``last_drive``, ``last_images`` (sorted, at most ``LAST_IMAGES_MAX``), ``drives`` sorted where
    given (a run's frame; ``Store.query(lists=False)`` reads none), without the complete ``images`` list. A
    registry frame (``Store.query``) brings the three columns, computed from its observations; a run's Candidates frame brings ``drives``, ``images`` (``drive/name``) and ``last_drive`` (the
    drive of its latest sighting; missing in an older frame: its only drive, else the best drive)."""
    out = cands.copy()
    n = len(out)
    drives = [_names(v) for v in out["drives"]] if "drives" in out else [[] for _ in range(n)]
    images = [_names(v) for v in out["images"]] if "images" in out else [[] for _ in range(n)]
    if "n_drives" not in out:
        out["n_drives"] = [len(set(d)) for d in drives]
    if "last_drive" not in out or "last_images" not in out:
        last = list(out["last_drive"]) if "last_drive" in out else [None] * n
        best = list(out["best_drive"]) if "best_drive" in out else [None] * n
        lasts, imgs = [], []
        for ld, bd, ds, ims in zip(last, best, drives, images):
            if not (isinstance(ld, str) and ld):
                ld = ds[0] if len(set(ds)) == 1 else (bd if isinstance(bd, str) and bd else None)
            # names of a run are drive/name; a bare name (a single-drive frame, an older file) is that drive's
            pre = f"{ld}/" if ld else None
            mine = [im for im in ims if pre and im.startswith(pre)]
            if not mine and len(set(ds)) <= 1:
                mine = [f"{ld}/{im}" if ld else im for im in ims]
            lasts.append(ld)
            imgs.append(mine)
        out["last_drive"] = lasts
        out["last_images"] = imgs
    out["last_images"] = [sorted(set(_names(v)))[:LAST_IMAGES_MAX] for v in out["last_images"]]
    out["n_drives"] = pd.to_numeric(out["n_drives"], errors="coerce").fillna(0).astype(int)
    if "drives" in out:  # a run's: one name a drive of this run; a registry export reads none (a drive a week)
        out["drives"] = [sorted(set(d)) for d in drives]
    return out.drop(columns=[c for c in ("images",) if c in out.columns])


def route_order(cands: pd.DataFrame) -> pd.DataFrame:
    """Route order: by the time the patrol first saw each damage (a crew driving the route meets them in this
    order; segment ids say nothing about it), then segment, chainage, class and id."""
    if len(cands) == 0:
        return cands
    un = cands["segment_id"].fillna("").astype(str) == ""
    first = pd.to_datetime(cands["first_seen"], errors="coerce", utc=True) if "first_seen" in cands else pd.NaT
    return (cands.assign(_t=first, _u=un)
            .sort_values(["_t", "_u", "segment_id", "chainage_m", "class", "candidate_id"], kind="mergesort",
                         na_position="last")
            .drop(columns=["_t", "_u"]).reset_index(drop=True))


def candidates_geojson(cands: pd.DataFrame, road_fields=()) -> dict:
    """``road_fields``: the kept road fields' columns of ``cands`` (``road_columns(cfg)``), after road_name."""
    feats = []
    cands = sightings(cands)
    props_cols = [c for c in _after_road_name(GEOJSON_PROPERTIES, list(road_fields)) if c in cands.columns]
    for rec in route_order(cands).to_dict("records"):
        lon, lat = float(rec["lon"]), float(rec["lat"])
        props = {c: _prop(rec[c]) for c in props_cols}
        feats.append({
            "type": "Feature", "id": rec["candidate_id"],
            "geometry": {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]},
            "properties": props,
        })
    return {"type": "FeatureCollection", "features": feats}


def write_candidates_geojson(cands: pd.DataFrame, path: str | Path, road_fields=()) -> Path:
    path = Path(path)
    text = json.dumps(candidates_geojson(cands, road_fields), ensure_ascii=False, indent=None, separators=(",", ":"), allow_nan=False)
    with atomic_write(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.write("\n")
    return path


def safe_cell(v) -> str:
    """Text for a CSV cell; neutralises spreadsheet formulas (OWASP CSV injection)."""
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)) and not math.isfinite(float(v)):
        return ""
    s = str(v)
    if s.startswith(_FORMULA_START):
        return "'" + s
    return s


def write_headed_csv(path: str | Path, cols, rows, cell=None) -> None:
    """A figures list as CSV (``patrol stats``, ``--format due``, ``--format jobs``): UTF-8 with BOM (Japanese Excel),
    CRLF, each heading ``ja en`` (``損傷数 n_damages``; one word where they are the same), written atomically;
    ``cols`` (name, 日本語, English) per column, ``rows`` tuples in that order, each value through ``cell`` (the
    list's own number format; default :func:`safe_cell`), formula-safe."""
    cell = cell or safe_cell
    with atomic_write(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow([ja if ja == en else f"{ja} {en}" for _, ja, en in cols])
        for row in rows:
            w.writerow([cell(v) for v in row])


def unguard(s: str) -> str:
    """A cell as read back (``patrol import-verification``): the apostrophe :func:`safe_cell` (and report.html's
    download list) put before text starting with = + - @ (or a tab / CR) taken off, so a note written ``=1+1`` reads
    back as ``=1+1``; any other text as it is."""
    return s[1:] if len(s) > 1 and s[0] == "'" and s[1] in _FORMULA_START else s


def _num(v, nd: int | None = None) -> str:
    if v is None:
        return ""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return safe_cell(v)
    if not math.isfinite(f):
        return ""
    if nd is None:
        return str(int(round(f)))
    return f"{f:.{nd}f}"


#: a kept road field's true/false where a format has no boolean (csv, kml): what Excel writes and reads back as one
BOOL_TEXT = {True: "TRUE", False: "FALSE"}


def _value(v) -> str:
    """A kept road field's cell: a number as a plain number (``3``, ``5.5``), true/false as ``TRUE``/``FALSE``
    (``BOOL_TEXT``), text formula-safe, missing empty."""
    v = _jsonable(v)
    if isinstance(v, bool) or v is None:
        return "" if v is None else BOOL_TEXT[v]
    if isinstance(v, (int, float)):
        return repr(v) if isinstance(v, float) else str(v)
    return safe_cell(v)


def _text(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def map_links(template: str | None, lat, lon, ids) -> list[str]:
    """Each damage's web map link (config ``export.map_url``, checked at load: ``config.check_map_url``): the template
    with ``{lat}``, ``{lon}`` as 7 decimals (1 cm, as the lists' lat/lon) and ``{id}`` URL-encoded; '' where the
    position is missing, and for every row without a template (``map_url: null``). The lists' ``map`` column (地図) and
    the photo ledger's 地図 link."""
    from urllib.parse import quote

    lat, lon = (pd.to_numeric(pd.Series(list(v), dtype=object), errors="coerce").to_numpy(float) for v in (lat, lon))
    if not template:
        return [""] * len(lat)
    ok = np.isfinite(lat) & np.isfinite(lon)
    return [template.format(lat=f"{a:.7f}", lon=f"{o:.7f}", id=quote(_text(i), safe="")) if good else ""
            for a, o, i, good in zip(lat, lon, ids, ok)]


def run_photos(cands: pd.DataFrame, out: str | Path, stale: set[str] = frozenset()) -> list[str]:
    """Each candidate's crop in a run's ``OUT/crops/`` as a path relative to OUT (``crops/<run candidate id>.jpg``;
    with ``--store`` the run's id, not the registry's), '' where none was written; in the frame's row order. The
    repair list's ``photo`` column and report.html's photo links. ``stale``: crop files that could not be replaced
    (a photo viewer held them open) and so show another photo: not linked."""
    crops = Path(out) / "crops"
    skip = {Path(p).resolve() for p in stale}
    names = []
    for r in cands.to_dict("records"):
        name = ""
        for key in ("run_candidate_id", "candidate_id"):
            v = _text(r.get(key))
            if v and (crops / f"{v}.jpg").is_file() and not (skip and (crops / f"{v}.jpg").resolve() in skip):
                name = f"crops/{v}.jpg"
                break
        names.append(name)
    return names


def write_repair_list(cands: pd.DataFrame, path: str | Path, stale: set[str] = frozenset(), road_fields=(),
                      map_url: str | None = None) -> Path:
    """One row per candidate for a field crew, in route order (see route_order); UTF-8 with BOM.

    ``road_fields``: the kept road fields' columns of ``cands`` (``road_columns(cfg)``), written after road_name
    under those names: numbers as numbers, text formula-safe, empty off the network.

    ``status`` and ``note`` carry the registry's status and note when the run merged into a registry (empty
    otherwise); the crew edits them and the rest of the verification columns, then `patrol import-verification`.
    ``status_changed_at`` (last, not for the crew): the registry's time of the damage's last status change, as
    `patrol export` writes it; the import's stale-list check compares it with the registry's changes since.
    ``n_passes``, ``n_unseen``, ``n_poor_look``, ``last_passed`` (with ``--store``, else empty): the registry's drives
    past the damage, those after its last sighting that did not see it, those that passed it only in frames too dark,
    glared or blurred (not in n_unseen), the latest one's time (``Store._update_passes``), as
    `patrol export`'s lists carry them. ``reports``, ``reported_first`` (with ``--store`` where the registry holds
    citizen reports, else empty): how many of its reports are of the damage (``citizen.match_reports`` after the
    merge; 0 for none) and when the first was posted, as `patrol export`'s lists carry them. ``job_id`` (only where
    ``cands`` has the column: with ``--store`` where the registry holds a jobs list, ``jobs.add_job_column``): the
    open damage's repair job, after ``reported_first`` as the registry's lists have it. ``photo`` is the candidate's crop beside the list (``crops/<run candidate id>.jpg``), where one was written
    (``stale``: as for ``run_photos``); ``map`` its web map link (``map_links`` of ``map_url``, config
    ``export.map_url``; empty without one)."""
    path = Path(path)
    ordered = route_order(sightings(cands))
    road_fields = list(road_fields)
    job = "job_id" in ordered.columns  # the registry holds a jobs list: after reported_first, as its exports
    head = _after_road_name(REPAIR_COLUMNS, road_fields)
    if job:
        head.insert(head.index("reported_first") + 1, "job_id")
    photos = run_photos(ordered, path.parent, stale)
    maps = map_links(map_url, ordered.get("lat", [None] * len(ordered)), ordered.get("lon", [None] * len(ordered)),
                     ordered["candidate_id"])
    with atomic_write(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(head)
        for no, (r, photo, link) in enumerate(zip(ordered.to_dict("records"), photos, maps), start=1):
            drives = r.get("drives")
            drives = ";".join(drives) if isinstance(drives, (list, tuple, np.ndarray)) else (drives or "")
            w.writerow([
                str(no), safe_cell(r["candidate_id"]), safe_cell(r.get("segment_id", "")), safe_cell(r.get("road_name", "")),
                *(_value(r.get(c)) for c in road_fields), _num(r.get("chainage_m"), 1), safe_cell(r["class"]), safe_cell(r.get("class_name_ja", "")),
                safe_cell(r.get("class_name", "")), _num(r.get("confidence"), 3), _num(r.get("n_obs")),
                _num(r.get("severity"), 1), _num(r.get("lat"), 7), _num(r.get("lon"), 7),
                safe_cell(r.get("first_seen", "")), safe_cell(r.get("last_seen", "")),
                safe_cell(_text(r.get("best_drive"))), safe_cell(r.get("best_image", "")),
                safe_cell(photo), safe_cell(link), safe_cell(drives), _num(r.get("n_drives")), safe_cell(_text(r.get("last_drive"))),
                _num(r.get("n_passes")), _num(r.get("n_unseen")), _num(r.get("n_poor_look")),
                safe_cell(_text(r.get("last_passed"))), _num(r.get("reports")), safe_cell(_text(r.get("reported_first"))),
                *([safe_cell(_text(r.get("job_id")))] if job else []), safe_cell(_text(r.get("status"))), safe_cell(_text(r.get("status_note"))), "", "", "",
                safe_cell(_text(r.get("status_changed_at"))),
            ])
    return path
