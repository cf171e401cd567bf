"""GIS interop of ``patrol export``: another coordinate reference system (``--crs``) and the Shapefile
(``--format shp``) that Japanese municipal desktop GIS still exchange.

``export_options(fmt, out, crs, encoding)``: the export's ``--crs`` (``target_crs``), ``--encoding``
(``shp_encoding``) and a Shapefile's ``--out`` (``shp_out``) checked together, before any work.
``target_crs(text, fmt)``: the CRS ``--crs`` names (a ``pyproj.CRS``), checked: a 2D projected CRS, such as the
JGD2011 plane rectangular zones (平面直角座標系, EPSG:6669–6687; Toyama: zone VII, EPSG:6675); None for WGS 84
itself (the exports' own). Refused with one ``UsageError`` line (exit 2): a format that must stay WGS 84
(``WGS84_FORMATS``: RFC 7946 GeoJSON, KML, the html map), an unknown CRS, a geographic one (degrees: JGD2011
EPSG:6668 is not what a road ledger's plane coordinates are), or any other kind (geocentric, vertical, compound).

A CRS whose axes are not in metres (a US state plane in feet, EPSG:2965) is refused too (``not_metres``): the
``x``/``y`` columns and the README say metres, and no Japanese ledger uses feet.

``project(lat, lon, crs)``: WGS 84 lat/lon arrays to the CRS's ``x`` (easting) and ``y`` (northing), in one
vectorised pyproj call. ``outside(lat, lon, crs)``: a one-line note when damages lie outside the CRS's area of use
(a zone picked for another prefecture): the CRS, how many, the first three ids, and the JGD2011 zone(s) whose area
holds them all.

``write_shp(df, path, crs=None, encoding="cp932")``: the damages as a point Shapefile (``.shp .shx .dbf .prj
.cpg``) or the same set zipped (``path`` ending in ``.zip``); returns the notes for the console (text replaced or
cut). dBASE limits, each handled here: field names of at most 10 ASCII characters (``SHP_FIELDS``, the README's
table); text at most ``DBF_TEXT_MAX`` bytes in the file's encoding, cut on a character boundary ending in "…"
(``last_images``, a list of up to 20 frames, is left out, as in repair_list.csv); times as ISO 8601 text (a dBASE
date has no time); numbers as numeric fields. In cp932 (Shift_JIS as Windows writes it, the default) the Unicode
characters JIS text is typed with that cp932 spells otherwise (``CP932_VARIANTS``: 〜 as ～, − as －, …) are written
as cp932's, and a character cp932 lacks (an emoji, 𠮷) as ``[U+1F697]``, told in a note; nothing is dropped
silently (GDAL's own conversion would drop such a character with only a warning, so its warnings are errors here).
The .dbf carries the code page twice: the ``.cpg`` (``932`` / ``UTF-8``) and, for cp932, the dBASE language
driver id 0x13 in its header (older software that reads no .cpg).
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_replace_file, replace_together
from .errors import PatrolError, UsageError

#: the export formats that can carry another CRS than WGS 84 (``--crs``)
CRS_FORMATS = ("gpkg", "shp", "csv", "xlsx")
#: the formats whose standard fixes WGS 84: RFC 7946 GeoJSON, KML 2.2, the html map (Leaflet, lat/lon)
WGS84_FORMATS = ("geojson", "kml", "html")

#: ``--encoding`` of the Shapefile's text: python codec -> (the .cpg's text, GDAL's ENCODING, dBASE language driver id)
SHP_ENCODINGS = {"cp932": ("932", "CP932", 0x13), "utf-8": ("UTF-8", "UTF-8", 0)}
SHP_DEFAULT_ENCODING = "cp932"
#: the most bytes a dBASE character field holds
DBF_TEXT_MAX = 254
#: the most bytes a dBASE field name holds (in the .dbf's encoding)
DBF_NAME_MAX = 10
CUT_MARK = "…"  # in cp932 too (0x8163)

#: the registry's columns in the Shapefile: (column, dBASE field name (<= 10 ASCII characters), type)
#: type: "str" (text), "float", "int". Not in it: last_images (a list, up to 20 frames: the csv/xlsx/gpkg give it),
#: checked_at (the crew's column of the lists, always empty in an export).
SHP_FIELDS: list[tuple[str, str, str]] = [
    ("candidate_id", "cand_id", "str"),
    ("class", "class", "str"),
    ("class_name_ja", "class_ja", "str"),
    ("class_name", "class_en", "str"),
    ("severity", "severity", "float"),
    ("confidence", "confidence", "float"),
    ("n_obs", "n_obs", "int"),
    ("first_seen", "first_seen", "str"),
    ("last_seen", "last_seen", "str"),
    ("segment_id", "segment_id", "str"),
    ("road_name", "road_name", "str"),
    ("chainage_m", "chainage_m", "float"),
    ("lat", "lat", "float"),
    ("lon", "lon", "float"),
    ("status", "status", "str"),
    ("status_ja", "status_ja", "str"),
    ("status_note", "note", "str"),
    ("status_changed_at", "status_at", "str"),
    ("repaired_at", "repaired", "str"),
    ("checked_by", "checked_by", "str"),
    ("issue_type", "issue_type", "str"),
    ("est_width_m", "est_w_m", "float"),
    ("est_length_m", "est_len_m", "float"),
    ("best_drive", "best_drive", "str"),
    ("best_image", "best_image", "str"),
    ("n_drives", "n_drives", "int"),
    ("last_drive", "last_drive", "str"),
    # the registry's passes (README passes): drives past it, unseen since its last sighting, in poor frames only
    ("n_passes", "n_passes", "int"),
    ("n_unseen", "n_unseen", "int"),
    ("n_poor_look", "n_poorlook", "int"),
    ("last_passed", "last_pass", "str"),
    # citizen reports matched to it (住民通報, patrol import-reports) and the first one's time
    ("reports", "reports", "int"),
    ("reported_first", "reported1", "str"),
    # grown since first seen (悪化, Store.growth): the first and latest drive's est. area (m²), their ratio, 1 grown
    ("area_first_m2", "area1_m2", "float"),
    ("area_last_m2", "area2_m2", "float"),
    ("growth", "growth", "float"),
    ("grown", "grown", "int"),
]
#: the damage's repair job (補修工区, ``report.JOB_COLUMN``), where the registry holds a job record: after
#: ``reported1`` and before the growth fields, as the lists (csv, xlsx) and the other GIS files have it (``shp_fields``)
SHP_JOB_FIELD = ("job_id", "job_id", "str")


def shp_fields(job: bool) -> list[tuple[str, str, str]]:
    """``SHP_FIELDS``, with ``SHP_JOB_FIELD`` after ``reported_first`` where ``job`` (the lists' order)."""
    if not job:
        return list(SHP_FIELDS)
    at = [c for c, *_ in SHP_FIELDS].index("reported_first") + 1
    return [*SHP_FIELDS[:at], SHP_JOB_FIELD, *SHP_FIELDS[at:]]

#: Unicode characters Japanese text is typed with (a Mac, Linux, a web form: JIS X 0208's mapping) that cp932 holds
#: under another code point (Windows' mapping of the same Shift_JIS bytes): written as cp932's, as Windows shows them.
#: Python's cp932 encoder takes most of them one way already, but not — (U+2014), and GDAL converts with iconv: the
#: text handed to it is cp932's own, so both agree
CP932_VARIANTS = str.maketrans({
    "\u301c": "\uff5e",  # 〜 WAVE DASH -> ～ FULLWIDTH TILDE
    "\u2016": "\u2225",  # ‖ DOUBLE VERTICAL LINE -> ∥ PARALLEL TO
    "\u2212": "\uff0d",  # − MINUS SIGN -> － FULLWIDTH HYPHEN-MINUS
    "\u2014": "\u2015",  # — EM DASH -> ― HORIZONTAL BAR
    "\u00a2": "\uffe0",  # ¢ -> ￠
    "\u00a3": "\uffe1",  # £ -> ￡
    "\u00ac": "\uffe2",  # ¬ -> ￢
})

_SHP_SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
#: index files other programs keep beside a Shapefile (ArcGIS .sbn/.sbx, QGIS/MapServer .qix, GDAL .fix, ArcView
#: attribute indexes): left beside a replaced Shapefile they index the old one (features missing on the map)
_STALE_INDEXES = (".sbn", ".sbx", ".qix", ".fix", ".atx", ".ain", ".aih")


# ----------------------------------------------------------------------------------------------------------
# CRS
# ----------------------------------------------------------------------------------------------------------


def target_crs(text, fmt: str):
    """The CRS ``--crs TEXT`` names for format ``fmt`` (see the module doc); None for none or WGS 84 itself."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    if fmt in WGS84_FORMATS:
        raise UsageError(f"--format {fmt} is always WGS 84 lat/lon ("
                         + {"geojson": "RFC 7946 requires it", "kml": "KML requires it",
                            "html": "the map is drawn in lat/lon"}[fmt]
                         + f"); --crs is for {', '.join(CRS_FORMATS)}", field="--crs")
    if isinstance(text, CRS):
        crs, name = text, text.to_string()
    else:
        name = str(text).strip()
        try:
            crs = CRS.from_user_input(int(name) if name.isdigit() else name)
        except CRSError:
            raise UsageError(f"unknown coordinate reference system {name!r}: give an EPSG code such as EPSG:6675 "
                             "(JGD2011 plane rectangular zone VII, Toyama; zones I–XIX are EPSG:6669–6687)",
                             field="--crs") from None
    if crs.is_geographic:
        if crs.equals(CRS.from_epsg(4326), ignore_axis_order=True):
            return None  # the exports' own lat/lon
        raise UsageError(f"{name} ({crs.name}) is a geographic CRS (degrees), not plane coordinates: --crs takes a "
                         "projected CRS in metres such as the JGD2011 plane rectangular zones EPSG:6669–6687 "
                         "(Toyama: EPSG:6675); every export gives WGS 84 lat/lon already", field="--crs")
    if not crs.is_projected or crs.is_compound or len(crs.axis_info) != 2:
        raise UsageError(f"{name} ({crs.name}) is not a 2D projected CRS: --crs takes plane coordinates such as the "
                         "JGD2011 plane rectangular zones EPSG:6669–6687 (Toyama: EPSG:6675)", field="--crs")
    unit = not_metres(crs)
    if unit:
        raise UsageError(f"{name} ({crs.name}) is in {unit}, not metres: --crs takes a projected CRS in metres (the "
                         "x, y columns and every distance patrol writes are metres), such as the JGD2011 plane "
                         "rectangular zones EPSG:6669–6687 (Toyama: EPSG:6675)", field="--crs")
    return crs


#: the file endings of the damages' formats: an ``--out`` ending in another format's is refused (``--format csv --out
#: list.xlsx`` wrote a CSV that Excel will not open as a workbook); other endings are the user's choice
FORMAT_SUFFIXES = {"geojson": (".geojson", ".json"), "gpkg": (".gpkg",), "shp": (".shp", ".zip"), "csv": (".csv",),
                   "xlsx": (".xlsx",), "kml": (".kml",), "html": (".html", ".htm")}


def export_options(fmt: str, out: str | Path, crs=None, encoding: str | None = None):
    """``--crs``, ``--encoding`` and a Shapefile's ``--out`` of an export in format ``fmt``, checked before any work
    (``patrol export`` calls it before reading the registry, ``report.export`` again for other callers): returns
    (``target_crs``, ``shp_encoding`` or None); UsageError (exit 2) for what does not fit the format, an ``--out``
    named for another format (``FORMAT_SUFFIXES``) included."""
    suffix = Path(out).suffix.lower()
    other = next((f for f, ends in FORMAT_SUFFIXES.items() if f != fmt and suffix in ends), None)
    if fmt in FORMAT_SUFFIXES and fmt != "shp" and other is not None:
        ends = " or ".join(FORMAT_SUFFIXES[fmt])
        raise UsageError(f"--format {fmt} writes a {ends} file, this name is for --format {other}: name it "
                         f"{Path(out).with_suffix(FORMAT_SUFFIXES[fmt][0]).name}, or give --format {other}",
                         Path(out), "--out")
    crs = target_crs(crs, fmt)
    if encoding is not None:
        if fmt != "shp":
            raise UsageError(f"--encoding is for --format shp (the {fmt} export is UTF-8"
                             + (" with BOM, which Japanese Excel opens)" if fmt == "csv" else ")"), field="--encoding")
        encoding = shp_encoding(encoding)
    if fmt == "shp":
        shp_out(out)
    return crs, encoding


def shp_out(path: str | Path) -> str:
    """The Shapefile's kind of ``--out``: ".shp" (the set of files beside it) or ".zip"; else UsageError."""
    ext = Path(path).suffix.lower()
    if ext not in (".shp", ".zip"):
        raise UsageError("a Shapefile export is written to X.shp (its .shx .dbf .prj .cpg beside it) or X.zip "
                         "(the same files zipped)", Path(path), "--out")
    return ext


def not_metres(crs) -> str | None:
    """The unit of a CRS whose axes are not in metres (``US survey foot``, ``foot``), else None. A US state plane
    in feet would give numbers 3.28 times a metre's in columns read as metres; patrol refuses it (``--crs``,
    ``locate.crs``) rather than write a unit no Japanese road ledger uses."""
    for a in crs.axis_info:
        if abs(float(a.unit_conversion_factor) - 1.0) > 1e-9:
            return a.unit_name
    return None


def crs_label(crs) -> str:
    """``EPSG:6675 JGD2011 / Japan Plane Rectangular CS VII`` (or the CRS's name where it has no EPSG code)."""
    code = crs.to_epsg()
    return f"EPSG:{code} {crs.name}" if code else crs.name


def crs_code(crs) -> str:
    """``EPSG:6675``: the CRS as pyproj, GDAL and QGIS take it back (its authority code; else its definition)."""
    return crs.to_string()


def project(lat, lon, crs) -> tuple[np.ndarray, np.ndarray]:
    """WGS 84 ``lat``/``lon`` (arrays) as ``crs``'s ``x`` (easting) and ``y`` (northing), whatever axis order the
    CRS's definition has (the JGD2011 zones' EPSG order is northing first, as Japanese surveyors write X, Y);
    NaN where a position is missing. One vectorised pyproj call."""
    from pyproj import Transformer

    lat = np.asarray(pd.to_numeric(pd.Series(lat, dtype=object), errors="coerce"), dtype=float)
    lon = np.asarray(pd.to_numeric(pd.Series(lon, dtype=object), errors="coerce"), dtype=float)
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    bad = ~(np.isfinite(lat) & np.isfinite(lon) & np.isfinite(x) & np.isfinite(y))
    x[bad] = np.nan
    y[bad] = np.nan
    return x, y


#: JGD2011's plane rectangular zones I-XIX (平面直角座標系), the CRSs a Japanese road ledger is kept in
JGD2011_ZONES = range(6669, 6688)


def _zones_of(lat: np.ndarray, lon: np.ndarray) -> list[str]:
    """The JGD2011 plane rectangular zones whose area of use holds every position (``EPSG:6674 (zone VI)``), the
    one whose origin is nearest their centre first. The zones' areas are boxes that overlap well beyond the
    prefecture borders (Tokyo lies in the boxes of zones VIII and IX, Sapporo in XI and XII), so two are often
    named; the nearest origin is the prefecture's zone where the boxes overlap away from a border (Tokyo: IX,
    Sapporo: XII), not a rule (a zone is the prefecture's by law, not by distance)."""
    from pyproj import CRS

    if not len(lat):
        return []
    found = []
    clat, clon = float(np.mean(lat)), float(np.mean(lon))
    for code in JGD2011_ZONES:
        crs = CRS.from_epsg(code)
        a = crs.area_of_use
        if a and np.all((lon >= a.west) & (lon <= a.east) & (lat >= a.south) & (lat <= a.north)):
            p = {q.name: q.value for q in crs.coordinate_operation.params}
            lon0, lat0 = p.get("Longitude of natural origin", clon), p.get("Latitude of natural origin", clat)
            far = np.hypot((clon - lon0) * np.cos(np.radians(clat)), clat - lat0)  # degrees of latitude
            found.append((far, f"EPSG:{code} (zone {crs.name.rsplit(' ', 1)[-1]})"))
    return [z for _, z in sorted(found)]


def outside(lat, lon, crs, ids=None) -> str | None:
    """A note when damages lie outside ``crs``'s area of use (a plane rectangular zone of another prefecture:
    valid numbers, but distorted), else None."""
    area = crs.area_of_use
    if area is None:
        return None
    lat = np.asarray(pd.to_numeric(pd.Series(lat, dtype=object), errors="coerce"), dtype=float)
    lon = np.asarray(pd.to_numeric(pd.Series(lon, dtype=object), errors="coerce"), dtype=float)
    ok = np.isfinite(lat) & np.isfinite(lon)
    out = ok & ~((lon >= area.west) & (lon <= area.east) & (lat >= area.south) & (lat <= area.north))
    n = int(out.sum())
    if not n:
        return None
    named = ""
    if ids is not None:
        first = [str(i) for i in np.asarray(ids, dtype=object)[out][:3]]
        named = f" ({', '.join(first)}{' …' if n > 3 else ''})"
    # one short line: PROJ's area of use is a paragraph for some CRSs (a US zone lists its counties); the zone(s)
    # the damages lie in, where they are in Japan (the README's EPSG:6675 is Toyama's zone, copied by another city)
    zones = _zones_of(lat[ok], lon[ok])
    hint = (f": they lie in the area of {' or '.join(zones)}; give that as --crs (a city's zone is its prefecture's)"
            if zones else ": is it your area's zone?")
    return f"{n} of {int(ok.sum())} damages{named} lie outside {crs_label(crs)}'s area of use{hint}"


# ----------------------------------------------------------------------------------------------------------
# Shapefile
# ----------------------------------------------------------------------------------------------------------


def shp_encoding(text: str | None) -> str:
    """``--encoding`` as a python codec name: cp932 (also Shift_JIS, sjis, 932) or utf-8."""
    if text is None:
        return SHP_DEFAULT_ENCODING
    t = text.strip().lower().replace("_", "-")
    if t in ("cp932", "932", "shift-jis", "sjis", "s-jis", "windows-31j", "ms932"):
        return "cp932"
    if t in ("utf-8", "utf8"):
        return "utf-8"
    raise UsageError(f"unknown encoding {text!r}; choose cp932 (Shift_JIS, the default) or utf-8", field="--encoding")


def _unencodable(ch: str) -> str:
    return f"[U+{ord(ch):04X}]"


def dbf_text(v, encoding: str) -> tuple[str | None, str, bool]:
    """One text value as the .dbf holds it: (text, the characters replaced, it was cut). None stays None."""
    if v is None or (isinstance(v, float) and not np.isfinite(v)) or v is pd.NA:
        return None, "", False
    s = str(v).replace("\x00", "")
    replaced = ""
    if encoding == "cp932":
        s = s.translate(CP932_VARIANTS)
        try:
            s.encode("cp932")
        except UnicodeEncodeError:
            out = []
            for ch in s:
                try:
                    ch.encode("cp932")
                    out.append(ch)
                except UnicodeEncodeError:
                    out.append(_unencodable(ch))
                    replaced += ch
            s = "".join(out)
    b = s.encode(encoding)
    if len(b) <= DBF_TEXT_MAX:
        return s, replaced, False
    room = DBF_TEXT_MAX - len(CUT_MARK.encode(encoding))
    # a cut inside a multi-byte character leaves an incomplete sequence at the end: dropped by the decode
    return b[:room].decode(encoding, errors="ignore") + CUT_MARK, replaced, True


def kept_field_names(kept: list[str], encoding: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The dBASE field names of the kept road fields (``roads.keep_fields``, their output names): a field name is
    at most 10 bytes in the .dbf's encoding (5 kanji in cp932, 3 in UTF-8), so a longer one is cut on a character
    boundary, and made unique (case-insensitively, as GIS compare them) among ours and the others by a ``~N`` at
    its end. Returns ([(column, field name)], notes naming the shortened ones)."""
    used = {f.lower() for _, f, _ in SHP_FIELDS + [SHP_JOB_FIELD]}
    out, renamed = [], []
    for col in kept:
        name = dbf_text(col, encoding)[0] or "field"
        b = name.encode(encoding)
        base = b[:DBF_NAME_MAX].decode(encoding, errors="ignore") if len(b) > DBF_NAME_MAX else name
        field, n = base, 1
        while field.lower() in used:
            tail = f"~{n}"
            room = DBF_NAME_MAX - len(tail)
            field = base.encode(encoding)[:room].decode(encoding, errors="ignore") + tail
            n += 1
        used.add(field.lower())
        out.append((col, field))
        if field != col:
            renamed.append(f"{col} as {field}")
    notes = [f"road fields renamed for the Shapefile's {DBF_NAME_MAX}-byte field names ({encoding}): "
             + ", ".join(renamed)] if renamed else []
    return out, notes


def _kind(vals: pd.Series) -> str:
    """A kept road field's dBASE type: "bool" for true/false (a logical field: T, F, ? when empty), "int" for whole
    numbers, "float" for other numbers, else "str"."""
    got = [v for v in vals if v is not None and not (isinstance(v, float) and np.isnan(v)) and v is not pd.NA]
    if got and all(isinstance(v, (bool, np.bool_)) for v in got):
        return "bool"
    if got and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in got):
        return "int"
    if got and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in got):
        return "float"
    return "str"


def shp_table(df: pd.DataFrame, encoding: str, kept: list[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The attribute table of the Shapefile (dBASE field names, typed columns) and the notes on what was replaced
    or cut (each naming the fields and the first candidates). ``kept``: the kept road fields' columns of ``df``
    (``roads.keep_fields``), after ours under ``kept_field_names``."""
    table = {}
    ids = [str(v) for v in df["candidate_id"]] if "candidate_id" in df else [str(i) for i in range(len(df))]
    replaced: dict[str, list[str]] = {}
    cut: dict[str, list[str]] = {}
    chars: list[str] = []
    extra, notes = kept_field_names([c for c in (kept or []) if c in df.columns], encoding)
    ours = shp_fields("job_id" in df.columns)
    for col, field, kind in ours + [(c, f, _kind(df[c])) for c, f in extra]:
        vals = df[col] if col in df.columns else pd.Series([None] * len(df), dtype=object)
        if kind == "float":
            table[field] = pd.to_numeric(vals, errors="coerce").astype(float).to_numpy()
        elif kind == "int":
            table[field] = pd.array(pd.to_numeric(vals, errors="coerce").round(), dtype="Int64")
        elif kind == "bool":  # GDAL writes a dBASE logical field (L)
            table[field] = pd.array([None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))
                                     else bool(v) for v in vals], dtype="boolean")
        else:
            texts = []
            for cid, v in zip(ids, vals):
                t, rep, was_cut = dbf_text(v, encoding)
                if rep:
                    replaced.setdefault(field, []).append(cid)
                    chars.extend(ch for ch in rep if ch not in chars)
                if was_cut:
                    cut.setdefault(field, []).append(cid)
                texts.append(t)
            table[field] = pd.array(texts, dtype="string")

    def where(d: dict[str, list[str]]) -> str:
        return "; ".join(f"{f} of {len(c)} ({', '.join(c[:3])}{' …' if len(c) > 3 else ''})" for f, c in d.items())

    if replaced:
        shown = ", ".join(f"{ch} as {_unencodable(ch)}" for ch in chars[:3]) + (" …" if len(chars) > 3 else "")
        notes.append(f"characters that {encoding} cannot hold written as [U+XXXX] ({shown}): {where(replaced)}; "
                     "--encoding utf-8 keeps them")
    if cut:
        notes.append(f"text longer than a dBASE field's {DBF_TEXT_MAX} bytes cut, ending in {CUT_MARK}: "
                     f"{where(cut)}; the registry keeps it whole (the csv, xlsx and gpkg exports give it)")
    return pd.DataFrame(table), notes


def write_shp(df: pd.DataFrame, path: str | Path, crs=None, encoding: str = SHP_DEFAULT_ENCODING,
              kept: list[str] | None = None) -> list[str]:
    """Write the damages of ``df`` (``report.prepare``'s frame, rows in their order) as a point Shapefile at ``path``
    (``X.shp``: ``X.shp .shx .dbf .prj .cpg``; ``X.zip``: those five, named ``X.*``, zipped); geometry in ``crs``
    (a ``pyproj.CRS``; None: WGS 84). Returns the notes for the console. See the module doc."""
    import geopandas as gpd
    import pyogrio

    path = Path(path)
    ext = shp_out(path)
    encoding = shp_encoding(encoding)
    cpg, gdal_encoding, ldid = SHP_ENCODINGS[encoding]
    table, notes = shp_table(df, encoding, kept)
    lat = pd.to_numeric(df["lat"], errors="coerce").astype(float).to_numpy()
    lon = pd.to_numeric(df["lon"], errors="coerce").astype(float).to_numpy()
    geom = gpd.points_from_xy(lon, lat)
    geom[~(np.isfinite(lat) & np.isfinite(lon))] = None
    gdf = gpd.GeoDataFrame(table, geometry=geom, crs="EPSG:4326")
    if crs is not None:
        gdf = gdf.to_crs(crs)  # vectorised (pyproj over the coordinate arrays)
    stem = path.stem
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{stem}.", dir=path.parent))
    try:
        shp = tmp / f"{stem}.shp"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pyogrio.write_dataframe(gdf, shp, driver="ESRI Shapefile", encoding=gdal_encoding,
                                    geometry_type="Point",  # also an empty export (GDAL would guess a line layer)
                                    layer_options={"RESIZE": "YES", "SPATIAL_INDEX": "NO"})
        lost = [str(w.message) for w in caught if "convert" in str(w.message).lower()]
        if lost:  # a character GDAL's conversion dropped (shp_table leaves none): never write it silently
            raise PatrolError(f"the text could not be written in {encoding}: {lost[0]}", path, "--encoding")
        (tmp / f"{stem}.cpg").write_text(cpg, encoding="ascii")  # "932": what ArcGIS, QGIS and GDAL all read
        if ldid:
            with open(tmp / f"{stem}.dbf", "r+b") as fh:  # the dBASE header's language driver id (byte 29)
                fh.seek(29)
                fh.write(bytes([ldid]))
        files = [tmp / f"{stem}{e}" for e in _SHP_SIDECARS]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise PatrolError(f"GDAL wrote no {', '.join(missing)}", path)
        if ext == ".zip":
            zpath = tmp / f"{stem}.zip"
            with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_DEFLATED) as z:
                for f in files:
                    z.write(f, arcname=f.name)
            atomic_replace_file(zpath, path)
        else:
            # all or nothing: one of the set held open (Windows: QGIS holds the .dbf too, Excel a .dbf it shows)
            # stops the export with no file changed, never a new .shp beside an old .dbf; a stale index of the old
            # one goes with it
            stale = [p for p in path.parent.iterdir()
                     if p.stem == stem and p.suffix.lower() in _STALE_INDEXES and p.is_file()]
            replace_together([(f, path.with_name(f.name)) for f in files], stale, what=path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return notes
