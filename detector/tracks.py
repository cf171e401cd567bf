"""GPS track files (GPX, NMEA 0183, CSV, KML/KMZ): positions for frames from cameras that write no GPS into their photos.

A dashcam, an action camera or an interval camera often writes no GPS EXIF while a phone logger app (GPX, CSV, KML),
a GPS receiver (NMEA sentences) or a fleet/telematics system (CSV) logs the position beside it. ``scan_drive``
places such frames by linear interpolation in time along a track, as exiftool's ``-geotag`` does.

Contracts:

* ``read_track(path, kind=None, tz=None)`` -> ``Track`` or raises ``TrackError`` with one reason (not XML, no time
  stamps, no valid fixes...). Times are UTC epoch seconds, sorted, one point per time. ``tz`` (the config's zone)
  is the zone of CSV and KML times written without one, as for EXIF local times.
* GPX 1.0/1.1: every ``trkpt`` with ``lat``, ``lon`` and ``time`` of every ``trk``/``trkseg`` (namespaces ignored);
  a time with ``Z`` or an offset, one without is UTC (the GPX schema says so); ``<fix>none</fix>`` points are
  skipped; ``course`` (degrees) and ``speed`` (m/s) from the point itself (GPX 1.0) or its ``extensions`` (Garmin
  TrackPointExtension and the like). Each ``trkseg`` is its own segment: never interpolated across.
* NMEA 0183: ``$--RMC`` (any talker: GP, GN, GL, GA, BD...) gives date, time, position, speed (knots) and course;
  status ``V`` or mode ``N`` is skipped; ``$--GGA`` with fix quality 0 drops the RMC of its epoch (sent just before
  or after it). A log without RMC is read from its GGA fixes (time of day and position: no date): the date comes
  from the file name where it holds one (``20261120_090000``: the UTC day putting the first fix nearest that
  local time; a date alone: the day whose local date the first fix falls on), else the ``Track`` is ``undated``
  and ``frames.scan`` puts it on the day of the frames in its reach (``Track.on_day``; a ``--track`` log per drive,
  with a warning when the drives date it differently). A sentence whose ``*hh``
  checksum does not match is skipped and counted (``Track.broken``). Text before the ``$`` (a logger's own time
  stamp) is ignored. ``$--DTM`` sets the datum of the fixes after it (``_dtm_datums``): W84 as is, the Tokyo datum
  (``TOY``/``TOKYO``) converted, another local datum's offsets (minutes) taken off, else kept with one note.
* CSV/TSV (``,`` ``;`` or tab; UTF-8, UTF-16 with BOM or Shift_JIS/cp932): the first of the first 30 lines that
  names a latitude (``lat``/``latitude``/``緯度``), a longitude (``lon``/``lng``/``longitude``/``経度``) and a time
  (``time``/``timestamp``/``datetime``/``UTC``/``日時``..., or ``date`` + ``time`` of day) is the header; a unit in
  brackets or after ``_`` is read (``速度(km/h)``, ``speed_kmh``, ``緯度(秒)``). Times: epoch seconds or ms (by their
  size), ISO 8601 or ``2026/11/20 9:00:05`` or ``2026年11月20日 9時00分05秒``, with ``Z``/``UTC``/``JST``/an offset
  (or a header saying ``UTC``/``JST``), else in ``tz``; ``11/20/2026`` (day/month order) is not guessed. Positions:
  decimal degrees, DMS (``36°41'44.4"N``, ``36:41:44.4``, ``36.41.44.4``, ``36度41分44.4秒``) or 1/3600 or
  1/3,600,000 degree (from the header's unit, else from their size, with a note); a decimal comma (``"36,69567"``,
  one comma between digits in a cell without a point) is a point, in speed and course too. Speed only with a unit in its
  header (else derived from the points, with a note); ``bearing``/``course``/``heading``/``方位`` in degrees.
  Datum: a file whose title lines or header say its coordinates are in the Tokyo datum (``_text_datum``: the datum
  converted TO, else the one named plainly, else the other of one converted FROM; ``日本測地系2011`` is JGD2011;
  both named unclearly: ``TrackError``) is converted to WGS 84 by ``datum.tokyo_to_wgs84`` (``Track.datum``
  ``"tokyo"``, with a note); a datum column (``測地系``/``datum``/``座標系``) decides per row (each distinct value
  classified once; an empty cell: the title; a value not known: kept, one note); of latitude/longitude pairs whose
  headers name their datum (``緯度(世界測地系)``, ``緯度(日本測地系)``), the WGS 84 pair is read. Unreadable rows are
  skipped and counted.
* KML (and every ``.kml`` document of a KMZ, each its own segments): ``gx:Track`` (``<when>`` paired with ``<gx:coord>``; each track a segment,
  also in ``gx:MultiTrack``; ``gx:angles`` heading as course) and Placemarks with a ``TimeStamp`` and a ``Point``;
  ``<when>`` without a zone in ``tz``, a date alone is no time. A ``LineString`` has no times: refused, saying so.
* ``Track.place(t, max_gap)``: vectorised (``searchsorted``) positions at frame times, between the two points
  around each time when they are at most ``max_gap`` s apart and in one segment; else NaN with a reason; and the
  datum of those points (``Track.datum``, or ``Track.point_datum`` where a file's points differ: "" WGS 84,
  "tokyo" converted, else a datum not known as written).
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path

import numpy as np

from .geo import distance_bearing
from .textio import TextEncodingError, decode_text

__all__ = ["Track", "TrackError", "read_track", "track_kind", "TRACK_SUFFIXES"]

# a track file whatever it holds (a bad one is a warning); a CSV only by its header (time, latitude, longitude)
TRACK_SUFFIXES = {".gpx": "gpx", ".nmea": "nmea", ".nma": "nmea", ".kml": "kml", ".kmz": "kmz"}
_CSV_SUFFIXES = (".csv", ".tsv")
_KML_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?kml[\s>/]")
_DAY = 86400.0
_SNIFF_BYTES = 65536
_MAX_BYTES = 512 * 1024 * 1024
_GPX_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?gpx[\s>/]")
_NMEA_LINE = re.compile(rb"\$(?:GP|GN|GL|GA|BD|GB|GQ|GI)(?:RMC|GGA),")
_KNOTS_KMH = 1.852


class TrackError(Exception):
    """A track file that cannot be used; ``reason`` says why (one line)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass
class Track:
    path: Path
    kind: str  # "gpx" | "nmea" | "csv" | "kml" | "kmz"
    t: np.ndarray  # UTC epoch seconds, strictly increasing
    lat: np.ndarray
    lon: np.ndarray
    course: np.ndarray  # degrees from north, NaN where not logged
    speed: np.ndarray  # km/h, NaN where not logged
    seg: np.ndarray  # segment number (GPX trkseg); never interpolated across
    broken: int = 0  # NMEA sentences skipped for a bad checksum or unreadable fields
    notes: list[str] = field(default_factory=list)
    undated: bool = False  # NMEA GGA only, no date anywhere: ``t`` counts from an unknown UTC day (``on_day``)
    # "" WGS 84 as written; "tokyo": the file said Tokyo datum, lat/lon converted (detector/datum.py) - of some
    # points at least; else a datum not known, kept as written (a note names it)
    datum: str = ""
    point_datum: np.ndarray | None = None  # per point (object array) where they differ, as ``datum`` says; else None

    def on_day(self, day: float, note: str) -> "Track":
        """An undated track put on the UTC day starting at ``day`` (epoch s), ``note`` saying where that came from."""
        return replace(self, t=self.t + day, undated=False, notes=[note] + self.notes)

    def __len__(self) -> int:
        return len(self.t)

    def place(self, q: np.ndarray, max_gap: float) -> dict[str, np.ndarray]:
        """Positions at times ``q`` (UTC epoch s): ``lat``, ``lon``, ``heading`` (the track's course, else the bearing
        between the two points), ``speed`` (km/h: the track's, else distance over time), and ``why`` (object array:
        "" where placed, else the reason). Linear in time between the points just before and after each time
        (an exact time takes its point); vectorised. ``datum``: the datum of the points used (``Track.datum``, or
        per point where they differ)."""
        q = np.asarray(q, dtype=float)
        n, m = len(self.t), len(q)
        t = self.t
        b = np.searchsorted(t, q, side="left")  # first point at or after q
        exact = (b < n) & (t[np.minimum(b, n - 1)] == q)
        a = np.where(exact, b, b - 1)  # the point at or before q; b the one at or after
        inside = (a >= 0) & (b < n)
        ai, bi = np.clip(a, 0, n - 1), np.clip(b, 0, n - 1)
        gap = t[bi] - t[ai]
        same_seg = self.seg[ai] == self.seg[bi]
        ok = inside & same_seg & (gap <= max_gap)
        w = np.divide(q - t[ai], gap, out=np.zeros(m), where=gap > 0)
        dlon = (self.lon[bi] - self.lon[ai] + 180.0) % 360.0 - 180.0
        lat = self.lat[ai] + w * (self.lat[bi] - self.lat[ai])
        lon = (self.lon[ai] + w * dlon + 180.0) % 360.0 - 180.0
        # the way the vehicle went: between the points around q; at a point's own time, between its neighbours
        ha, hb = ai.copy(), bi.copy()
        if exact.any():
            pa, pb = np.clip(ai - 1, 0, n - 1), np.clip(bi + 1, 0, n - 1)
            use_a = exact & (ai > 0) & (self.seg[pa] == self.seg[ai]) & (t[ai] - t[pa] <= max_gap)
            use_b = exact & (bi < n - 1) & (self.seg[pb] == self.seg[bi]) & (t[pb] - t[bi] <= max_gap)
            ha, hb = np.where(use_a, pa, ha), np.where(use_b, pb, hb)
        dist, bearing = distance_bearing(self.lat[ha], self.lon[ha], self.lat[hb], self.lon[hb])
        hgap = t[hb] - t[ha]
        ca, cb = self.course[ai], self.course[bi]
        dc = (cb - ca + 180.0) % 360.0 - 180.0
        course = np.where(np.isnan(ca), cb, np.where(np.isnan(cb), ca, (ca + w * dc) % 360.0))
        heading = np.where(~np.isnan(course), course, np.where(dist >= 1.0, bearing, np.nan))
        sa, sb = self.speed[ai], self.speed[bi]
        speed = np.where(np.isnan(sa) | np.isnan(sb), np.where(np.isnan(sa), sb, sa), sa + w * (sb - sa))
        derived = np.divide(dist * 3.6, hgap, out=np.full(m, np.nan), where=hgap > 0)
        speed = np.where(np.isnan(speed), derived, speed)
        why = np.full(m, "", dtype=object)
        if not ok.all():
            for i in np.flatnonzero(~ok).tolist():  # the few frames not placed get a sentence each
                if a[i] < 0:
                    why[i] = f"{t[0] - q[i]:.0f} s before the track starts ({_hms(t[0])} UTC)"
                elif b[i] >= n:
                    why[i] = f"{q[i] - t[-1]:.0f} s after the track ends ({_hms(t[-1])} UTC)"
                elif not same_seg[i]:
                    why[i] = f"between two track segments ({gap[i]:.0f} s apart)"
                else:
                    why[i] = f"in a gap of {gap[i]:.0f} s in the track (frames.track_max_gap_s {max_gap:g})"
        nan = np.full(m, np.nan)
        if self.point_datum is None:
            datum = np.full(m, self.datum, dtype=object)
        else:  # between a converted point and another: converted (as frames between converted EXIF fixes)
            da, db = self.point_datum[ai], self.point_datum[bi]
            datum = np.where(da == db, da, np.where((da == "tokyo") | (db == "tokyo"), "tokyo",
                                                    np.where(da == "", db, da)))
        return {"lat": np.where(ok, lat, nan), "lon": np.where(ok, lon, nan), "heading": np.where(ok, heading, nan),
                "speed": np.where(ok, speed, nan), "ok": ok, "why": why, "datum": np.where(ok, datum, "")}


def _hms(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# ----------------------------------------------------------------------------------------------- detection

def track_kind(path: Path, head: bytes | None = None) -> str:
    """"gpx" | "nmea" | "kml" | "kmz" | "csv" | "" (not a track file): by the suffix (.gpx, .nmea, .nma, .kml,
    .kmz), else by the content (a GPX or KML root element; NMEA RMC/GGA sentences, as a dashcam writes them into
    .log or .txt files; a CSV/TSV whose header names a time, a latitude and a longitude column)."""
    kind = TRACK_SUFFIXES.get(path.suffix.lower())
    if kind:
        return kind
    if head is None:
        try:
            with open(path, "rb") as fh:
                head = fh.read(_SNIFF_BYTES)
        except OSError:
            return ""
    if b"<" in head[:256]:
        if _GPX_ROOT.search(head[:4096]):
            return "gpx"
        if _KML_ROOT.search(head[:4096]):
            return "kml"
    if _NMEA_LINE.search(head):
        return "nmea"
    if _csv_header(_decode(head, partial=True)[0]) is not None:
        return "csv"
    return ""


def read_track(path: str | Path, kind: str | None = None, tz: tzinfo | None = None) -> Track:
    """The track in a GPX, NMEA, CSV, KML or KMZ file. Raises TrackError with the reason. ``tz`` (the config's
    time zone; default Asia/Tokyo, the config's default) is the zone of times written without one (CSV, KML) and
    of a date in an NMEA GGA log's file name."""
    path = Path(path)
    kind = kind or track_kind(path) or ("csv" if path.suffix.lower() in _CSV_SUFFIXES else "")
    if tz is None:
        from zoneinfo import ZoneInfo
        tz = ZoneInfo("Asia/Tokyo")
    try:
        size = path.stat().st_size
        if size == 0:
            raise TrackError("empty file")
        if size > _MAX_BYTES:
            raise TrackError(f"{size / 2**20:.0f} MB: larger than a track file can be (limit {_MAX_BYTES // 2**20} MB)")
        data = path.read_bytes()
    except OSError as e:
        raise TrackError(f"cannot read: {e.strerror or type(e).__name__}") from None
    if kind == "gpx":
        tr = _read_gpx(path, data)
    elif kind == "nmea":
        tr = _read_nmea(path, data, tz)
    elif kind == "csv":
        tr = _read_csv(path, data, tz)
    elif kind == "kml":
        tr = _read_kml(path, data, tz)
    elif kind == "kmz":
        tr = _read_kmz(path, data, tz)
    else:
        raise TrackError("not a track file (GPX, KML/KMZ, NMEA 0183 or CSV with time, latitude and longitude)")
    return tr


def _finish(path: Path, kind: str, pts: list[tuple], broken: int = 0, notes: list[str] | None = None,
            datums: np.ndarray | None = None) -> Track:
    """Sort the points (t, lat, lon, course, speed, seg) by time and keep one per time. ``datums``: each point's
    datum as ``Track.point_datum`` holds it, in the order of ``pts``; ``Track.datum`` "tokyo" when any was
    converted, else the one label all share."""
    arr = np.array(pts, dtype=float).reshape(-1, 6)
    order = np.lexsort((arr[:, 5], arr[:, 0]))
    arr = arr[order]
    keep = np.ones(len(arr), dtype=bool)
    keep[1:] = np.diff(arr[:, 0]) > 0
    arr = arr[keep]
    tr = Track(path=path, kind=kind, t=arr[:, 0], lat=arr[:, 1], lon=arr[:, 2], course=arr[:, 3],
               speed=arr[:, 4], seg=arr[:, 5].astype(np.int64), broken=broken, notes=notes or [])
    if datums is not None and len(datums):
        d = np.asarray(datums, dtype=object)[order][keep]
        kinds = set(d.tolist())
        tr.datum = "tokyo" if "tokyo" in kinds else next(iter(kinds)) if len(kinds) == 1 else ""
        if len(kinds) > 1:
            tr.point_datum = d
    return tr


# ----------------------------------------------------------------------------------------------- GPX

def _local(tag: str) -> str:
    return tag.rpartition("}")[2].rpartition(":")[2]


def _gpx_time(s: str) -> float | None:
    s = s.strip()
    if not s:
        return None
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)  # the GPX schema: times are UTC
    if not 1980 <= dt.year <= 2100:
        return None
    return dt.timestamp()


def _float(s: str | None) -> float:
    try:
        f = float(s) if s is not None else math.nan
    except ValueError:
        return math.nan
    return f if math.isfinite(f) else math.nan


def _xml_root(data: bytes, root_tag: str, what: str) -> ET.Element:
    """The root element of a GPX or KML document, which must be ``<root_tag>``; TrackError saying why not (no
    entity declarations: a billion-laughs file is refused before parsing)."""
    if b"<!ENTITY" in data[:_SNIFF_BYTES]:
        raise TrackError(f"not a {what} file: XML entity declarations are not read")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise TrackError(f"not XML ({e})") from None
    if _local(root.tag) != root_tag:
        raise TrackError(f"not a {what} file (the XML root is <{_local(root.tag)}>)")
    return root


def _read_gpx(path: Path, data: bytes) -> Track:
    root = _xml_root(data, "gpx", "GPX")
    pts: list[tuple] = []
    seg = 0
    n_pts = no_time = bad = no_fix = 0
    for trk in root:
        if _local(trk.tag) != "trk":
            continue
        for ts in trk:
            if _local(ts.tag) != "trkseg":
                continue
            seg += 1
            for pt in ts:
                if _local(pt.tag) != "trkpt":
                    continue
                n_pts += 1
                lat, lon = _float(pt.get("lat")), _float(pt.get("lon"))
                t = course = speed = None
                fix = ""
                for el in pt.iter():
                    name = _local(el.tag)
                    if name == "time" and t is None:
                        t = _gpx_time(el.text or "")
                    elif name == "course" and course is None:
                        course = _float(el.text)
                    elif name == "speed" and speed is None:
                        speed = _float(el.text)
                    elif name == "fix":
                        fix = (el.text or "").strip().lower()
                if t is None:
                    no_time += 1
                    continue
                if fix == "none":
                    no_fix += 1
                    continue
                if not (abs(lat) <= 90 and abs(lon) <= 180) or (lat == 0 and lon == 0):
                    bad += 1
                    continue
                c = course if course is not None and 0 <= course <= 360 else math.nan
                v = speed * 3.6 if speed is not None and 0 <= speed < 300 else math.nan
                pts.append((t, lat, lon, c % 360.0 if not math.isnan(c) else c, v, seg))
    if not n_pts:
        raise TrackError("no track points (trkpt) in the GPX file")
    if not pts:
        why = ("no time stamps on its track points" if no_time == n_pts else
               f"no usable track points ({no_time} without time, {bad} with bad coordinates, {no_fix} without fix)")
        raise TrackError(why)
    notes = []
    if no_time or bad:
        notes.append(f"{no_time + bad} of {n_pts} track points skipped (without time or with bad coordinates)")
    return _finish(path, "gpx", pts, notes=notes)


# ----------------------------------------------------------------------------------------------- NMEA

def _nmea_checksum_ok(body: str, given: str) -> bool:
    x = 0
    for ch in body.encode("ascii", "replace"):
        x ^= ch
    try:
        return x == int(given, 16)
    except ValueError:
        return False


def _nmea_deg(v: str, hemi: str) -> float:
    """ddmm.mmmm / dddmm.mmmm with N/S/E/W -> signed degrees (NaN if malformed)."""
    if not v or hemi not in ("N", "S", "E", "W"):
        return math.nan
    try:
        f = float(v)
    except ValueError:
        return math.nan
    deg = int(f // 100)
    minutes = f - deg * 100
    if minutes >= 60 or f < 0:
        return math.nan
    d = deg + minutes / 60.0
    return -d if hemi in ("S", "W") else d


def _nmea_tod(v: str) -> float:
    """hhmmss(.sss) -> seconds of the day (NaN if malformed)."""
    m = re.fullmatch(r"(\d{2})(\d{2})(\d{2}(?:\.\d+)?)", v)
    if not m:
        return math.nan
    h, mi, s = int(m.group(1)), int(m.group(2)), float(m.group(3))
    if h > 23 or mi > 59 or s >= 61:
        return math.nan
    return h * 3600 + mi * 60 + s


def _read_nmea(path: Path, data: bytes, tz: tzinfo) -> Track:
    text = data.decode("ascii", "replace")
    pts: list[tuple] = []
    # a GGA without fix drops the RMC of its epoch: the one just before it with its time of day, or the next RMC
    # when that has its time (a time of day alone: in a log of several days, 10:00:00 comes once a day)
    dropped: set[int] = set()  # indexes into pts
    gga_pending = math.nan  # a GGA's time of day without fix, waiting for its RMC
    broken = void = rmc_n = 0
    gga: list[tuple] = []  # (time of day, lat, lon, datum) of the GGA fixes: the track of a log without RMC
    dtm: dict[tuple, int] = {}  # the DTM sentences seen (their fields), numbered: the datum of the fixes after each
    cur = -1  # the DTM in force (-1: none yet; the fixes before the first DTM take it)
    for line in text.splitlines():
        i = line.find("$")
        if i < 0:
            continue
        s = line[i + 1:].strip()
        body, star, cks = s.partition("*")
        if star:
            if not _nmea_checksum_ok(body, cks.strip()[:2]):
                broken += 1
                continue
        f = body.split(",")
        kind = f[0][2:] if len(f[0]) == 5 else ""
        if kind == "DTM":
            key = tuple(x.strip().upper() for x in (f[1:9] + [""] * 8)[:8])
            cur = dtm.setdefault(key, len(dtm))
            continue
        if kind == "GGA":
            if len(f) < 7:
                broken += 1
                continue
            tod = _nmea_tod(f[1])
            if f[6].strip() in ("", "0") and not math.isnan(tod):
                if pts and pts[-1][6] == round(tod, 2):
                    dropped.add(len(pts) - 1)
                else:
                    gga_pending = round(tod, 2)
            elif not rmc_n and len(f) >= 7:
                lat, lon = _nmea_deg(f[2], f[3]), _nmea_deg(f[4], f[5])
                if math.isnan(tod) or math.isnan(lat) or math.isnan(lon) or abs(lat) > 90 or abs(lon) > 180:
                    broken += 1
                else:
                    gga.append((tod, lat, lon, cur))
            continue
        if kind != "RMC":
            continue
        rmc_n += 1
        if len(f) < 10:
            broken += 1
            continue
        if f[2] != "A" or (len(f) > 12 and f[12][:1] == "N"):
            void += 1
            continue
        tod = _nmea_tod(f[1])
        lat, lon = _nmea_deg(f[3], f[4]), _nmea_deg(f[5], f[6])
        dm = re.fullmatch(r"(\d{2})(\d{2})(\d{2})", f[9])
        if math.isnan(tod) or math.isnan(lat) or math.isnan(lon) or not dm or abs(lat) > 90 or abs(lon) > 180:
            broken += 1
            continue
        dd, mm, yy = int(dm.group(1)), int(dm.group(2)), int(dm.group(3))
        try:
            day = datetime(2000 + yy if yy < 80 else 1900 + yy, mm, dd, tzinfo=timezone.utc).timestamp()
        except ValueError:
            broken += 1
            continue
        speed = _float(f[7]) * _KNOTS_KMH if f[7] else math.nan
        course = _float(f[8]) if f[8] else math.nan
        if not 0 <= course <= 360:
            course = math.nan
        if gga_pending == round(tod, 2):
            dropped.add(len(pts))
        gga_pending = math.nan
        pts.append((day + tod, lat, lon, course % 360.0 if not math.isnan(course) else course, speed, 1, round(tod, 2),
                    cur))
    notes: list[str] = []
    if not rmc_n and gga:
        la, lo, datums = _dtm_datums(list(dtm), np.array([g[3] for g in gga]), np.array([g[1] for g in gga]),
                                     np.array([g[2] for g in gga]), notes)
        return _gga_track(path, [(g[0], a, b) for g, a, b in zip(gga, la.tolist(), lo.tolist())], broken, tz,
                          notes, datums)
    if not rmc_n and not broken:
        raise TrackError("no RMC or GGA fixes (time and position) in the NMEA file")
    kept = [p for k, p in enumerate(pts) if k not in dropped]
    good = [p[:6] for p in kept]
    no_fix = len(pts) - len(good)
    if not good:
        why = [f"{n} {what}" for n, what in ((broken, "sentences broken (bad checksum or fields)"),
                                             (void, "RMC sentences void (status V)"),
                                             (no_fix, "fixes without a GGA fix")) if n]
        raise TrackError("no valid fixes: " + ", ".join(why))
    la, lo, datums = _dtm_datums(list(dtm), np.array([p[7] for p in kept]), np.array([p[1] for p in kept]),
                                 np.array([p[2] for p in kept]), notes)
    good = [(p[0], a, b) + p[3:] for p, a, b in zip(good, la.tolist(), lo.tolist())]
    if broken:
        notes.append(f"{broken} broken sentences skipped (bad checksum or fields)")
    return _finish(path, "nmea", good, broken=broken, notes=notes, datums=datums)


_EARTH_CENTRED = {"", "W84", "W72", "S85", "P90"}  # NMEA 0183's reference datum codes: within metres of WGS 84
_MAX_OFFSET_MIN = 2.0  # a local datum's offset from WGS 84 in minutes of arc (Tokyo: ~0.2'; 2' ~ 3.7 km)


def _dtm_datums(dtm: list[tuple], idx: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                notes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WGS 84 positions of NMEA fixes by the ``$--DTM`` sentence in force at each (``dtm``: the distinct sentences'
    fields local datum, subdivision, lat offset, N/S, lon offset, E/W, altitude offset, reference datum; ``idx``
    each fix's, -1 before the first: the first's). NMEA 0183: the position sentences after a DTM are in its local
    datum, offset from the reference datum by the given minutes of arc (local = reference + offset).

    * local datum ``W84`` (or none sent): as written;
    * the Tokyo datum named (``TOY``, the IHO S-60 / NIMA code, subdivision A Japan, C Okinawa, M mean; or
      ``TOKYO``): converted by ``datum.tokyo_to_wgs84``, as EXIF fixes are (the receiver's own offsets not used);
    * any other local datum (``999`` user defined, ``P90``, ``W72``, an IHO code) with its latitude/longitude
      offsets from an earth-centred reference datum: the offsets taken off;
    * otherwise (no offsets, a null datum code, offsets beyond 2'): kept as written, per point the local datum code
      (frames.csv datum), one note naming it.
    Returns (lat, lon, each fix's datum: "" / "tokyo" / the code) and adds the notes."""
    from .datum import classify

    datums = np.full(len(lat), "", dtype=object)
    if not dtm or not len(lat):
        return lat, lon, datums
    # each distinct sentence once (a receiver's offsets change with the position: one per fix, at worst)
    kind, label = [], []
    dy, dx = np.zeros(len(dtm)), np.zeros(len(dtm))
    for k, (local, sub, dlat, ns, dlon, ew, _alt, ref) in enumerate(dtm):
        label.append(local + (f"-{sub}" if sub else ""))
        y, x = _float(dlat), _float(dlon)
        if local == "W84" or (local and classify(local)[0] == "wgs84"):
            kind.append("")
        elif local == "TOY" or classify(local)[0] == "tokyo":
            kind.append("tokyo")
        elif local and ns in ("N", "S") and ew in ("E", "W") and ref in _EARTH_CENTRED \
                and abs(y) <= _MAX_OFFSET_MIN and abs(x) <= _MAX_OFFSET_MIN:
            kind.append("offset")
            dy[k], dx[k] = (-y if ns == "S" else y) / 60.0, (-x if ew == "W" else x) / 60.0
        else:
            kind.append("unknown")
    idx = np.where(idx < 0, 0, idx)
    kinds, labels = np.array(kind, dtype=object)[idx], np.array(label, dtype=object)[idx]
    off = kinds == "offset"
    if off.any():  # local = reference + offset
        lat, lon = lat - np.where(off, dy[idx], 0.0), lon - np.where(off, dx[idx], 0.0)
        m = distance_bearing(lat[off], lon[off], lat[off] + dy[idx][off], lon[off] + dx[idx][off])[0]
        if np.max(m) >= 0.5:  # a phone's P90 line of centimetres is no news
            notes.append(f"NMEA DTM local datum {', '.join(repr(x) for x in sorted(set(labels[off].tolist())))}: the "
                         f"receiver's latitude/longitude offsets from WGS 84 ({np.min(m):.1f}-{np.max(m):.1f} m) "
                         f"taken off {int(off.sum())} fixes")
    tokyo = kinds == "tokyo"
    if tokyo.any():
        datums[tokyo] = "tokyo"
        notes.append(f"NMEA DTM sentences name the Tokyo datum "
                     f"({', '.join(repr(x) for x in sorted(set(labels[tokyo].tolist())))})")
        lat, lon = _from_tokyo(lat, lon, tokyo, notes)
    unk = kinds == "unknown"
    if unk.any():
        datums[unk] = np.where(labels[unk] == "", "unknown", labels[unk])
        u, c = np.unique(datums[unk].astype(str), return_counts=True)
        notes.append("NMEA DTM sentences name a local datum not known, without usable offsets from WGS 84 ("
                     + ", ".join(f"'{a}': {b} fixes" for a, b in zip(u.tolist(), c.tolist()))
                     + "): placed as if WGS 84 (frames.csv datum names it); if it is a local datum their positions "
                     "may be off")
    return lat, lon, datums


_NAME_DATE = re.compile(r"(?<!\d)(20\d\d)[-_]?(0[1-9]|1[0-2])[-_]?(0[1-9]|[12]\d|3[01])"
                        r"(?:[-_T ]?([01]\d|2[0-3])[-_]?([0-5]\d)[-_]?([0-5]\d))?(?!\d)")


def _gga_track(path: Path, gga: list[tuple], broken: int, tz: tzinfo, notes: list[str] | None = None,
               datums: np.ndarray | None = None) -> Track:
    """A log of GGA sentences only: times of day without a date. The date comes from the file name where it holds
    one (``20261120_090000.LOG``: the UTC day that puts the first fix nearest that local time; ``2026-11-20``
    alone: the day whose local date the first fix falls on), else the track stays ``undated`` and ``frames.scan``
    takes the day from the frames in its reach. Past midnight UTC (a time of day 12 h or more below the one
    before) the next day."""
    tod = np.array([g[0] for g in gga])
    back = np.diff(tod, prepend=tod[0]) < -_DAY / 2
    t = tod + _DAY * np.cumsum(back)
    notes = list(notes or []) + ([f"{broken} broken sentences skipped (bad checksum or fields)"] if broken else [])
    pts = [(ti, la, lo, math.nan, math.nan, 1) for ti, (_, la, lo) in zip(t.tolist(), gga)]
    m = _NAME_DATE.search(path.name)
    day = None
    if m:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        try:
            if m.group(4):
                named = datetime(y, mo, d, int(m.group(4)), int(m.group(5)), int(m.group(6)), tzinfo=tz).timestamp()
                day = _DAY * round((named - t[0]) / _DAY)
            else:
                local0 = datetime(y, mo, d, tzinfo=tz).timestamp()
                day = _DAY * math.ceil((local0 - t[0]) / _DAY)  # the first fix on or after local midnight
        except ValueError:
            day = None
    if day is not None:
        notes.insert(0, f"GGA sentences only (no date): the date {_hms(day + t[0])[:10]} (UTC) from the file name")
        return _finish(path, "nmea", [(p[0] + day,) + p[1:] for p in pts], broken=broken, notes=notes,
                       datums=datums)
    tr = _finish(path, "nmea", pts, broken=broken, notes=notes, datums=datums)
    tr.undated = True
    return tr


# ----------------------------------------------------------------------------------------------- CSV

# header names (NFKC, lower case, units in brackets and after "_"/" " taken off): what a logger app or a fleet
# system writes
_COLS = {
    "time": {"time", "timestamp", "datetime", "date_time", "date time", "utc", "gps time", "gpstime", "time_utc",
             "utc time", "gps_time", "unixtime", "unix time", "epoch", "日時", "日付時刻", "時刻", "記録日時", "測位日時", "取得日時", "年月日時刻"},
    "date": {"date", "日付", "年月日"},
    "lat": {"lat", "latitude", "緯度"},
    "lon": {"lon", "lng", "long", "longitude", "経度"},
    "speed": {"speed", "速度", "車速"},
    "course": {"bearing", "course", "heading", "direction", "方位", "方向", "進行方向", "方位角"},
    # each row's datum (a fleet export mixing units set to the Tokyo datum and to WGS 84): TOKYO, 日本測地系, WGS84...
    "datum": {"datum", "map datum", "geodetic datum", "gps datum", "測地系", "座標系", "測地系種別", "測地系区分"},
}
_UNIT = re.compile(r"[(\[（［【](.*?)[)\]）］】]")


def _decode(data: bytes, partial: bool = False) -> tuple[str, str]:
    """(text, encoding) by :mod:`detector.textio`'s rule: UTF-8 (with or without BOM), UTF-16 with a BOM (Excel's
    "Unicode text"), else Shift_JIS (cp932, a Japanese Windows export). ``partial``: ``data`` may end inside a
    character, and text in neither is ("", ""). Raises TrackError."""
    try:
        return decode_text(data, partial=partial)
    except TextEncodingError as e:
        if partial:
            return "", ""
        raise TrackError(str(e)) from None


def _col_name(h: str) -> tuple[str, str]:
    """(name, unit) of a header cell: "Speed (km/h)" -> ("speed", "km/h"), "time_utc" -> ("time_utc", "")."""
    h = unicodedata.normalize("NFKC", h).strip().strip('"').strip().lower()
    unit = " ".join(_UNIT.findall(h))
    return _UNIT.sub("", h).strip(), unit


def _col_role(name: str) -> tuple[str, str]:
    """(role, unit hint) of a header name: the whole name, else its first word ("speed_kmh": speed, "kmh")."""
    for role, names in _COLS.items():
        if name in names:
            return role, ""
    first, _, rest = re.sub(r"[_\s\-]+", " ", name).partition(" ")
    for role, names in _COLS.items():
        if first in names:
            return role, rest
    return "", ""


def _delimiter(line: str) -> str:
    return max(("\t", ",", ";"), key=line.count)


def _csv_header(text: str) -> tuple[int, str, dict[str, tuple[int, str]]] | None:
    """(line number, delimiter, role -> (column, unit)) of the first of the first 30 lines that names a latitude,
    a longitude and a time (or a date and a time) column; None if there is none."""
    lines = text.splitlines()[:30]
    for i, line in enumerate(lines):
        delim = _delimiter(line)
        cells = next(csv.reader([line], delimiter=delim), [])
        if len(cells) < 3:
            continue
        if {"position_source", "status", "reason"} <= {_col_name(c)[0] for c in cells}:
            return None  # patrol's own frames.csv (an earlier run's output): positions of frames, not a GPS log
        roles: dict[str, tuple[int, str]] = {}
        for j, c in enumerate(cells):
            name, unit = _col_name(c)
            role, hint = _col_role(name)
            if role and role not in roles:
                roles[role] = (j, " ".join(x for x in (unit, hint, name) if x))
        if "lat" in roles and "lon" in roles and ("time" in roles or "date" in roles):
            return i, delim, roles
    return None


_DT = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T\s]+(\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d+)?))?)?"
                 r"\s*(Z|UTC|GMT|JST|[+-]\d{2}:?\d{2})?")
#: a date and time written in Japanese (``2026年11月20日 9時00分05秒``) in Western separators (``2026/11/20 9:00:05``);
#: also the registry's reading of a crew's dates (``store._western``)
JA_DATE_MARKS = str.maketrans({"年": "/", "月": "/", "日": " ", "時": ":", "分": ":", "秒": " "})


def zone_of(s: str | None, default: tzinfo | None) -> tzinfo | None:
    """The zone a time's suffix names (``Z``, ``UTC``, ``GMT``, ``JST``, ``+09:00``, ``-0300``), else ``default``;
    also the registry's for a crew's times (``store._parse_when``)."""
    if not s:
        return default
    s = s.upper()
    if s in ("Z", "UTC", "GMT"):
        return timezone.utc
    if s == "JST":
        return timezone(timedelta(hours=9))
    sign = -1 if s[0] == "-" else 1
    hh, mm = int(s[1:3]), int(s[-2:])
    return timezone(sign * timedelta(hours=hh, minutes=mm))


def _csv_time(s: str, tz: tzinfo) -> float | None:
    """UTC epoch seconds of a CSV time: epoch seconds or milliseconds (told apart by their size), ISO 8601 or
    "2026/11/20 9:00:05" (with "Z", "UTC", "JST" or an offset; else in ``tz``), "2026年11月20日 9時00分05秒".
    None where it cannot be read (day and month order not known, a time of day without a date...)."""
    s = unicodedata.normalize("NFKC", s).strip().strip('"').strip()
    if not s:
        return None
    if re.fullmatch(r"\d{9,13}(?:\.\d+)?", s):
        v = float(s)
        v = v / 1000.0 if v >= 1e11 else v
    else:
        m = _DT.fullmatch(s.translate(JA_DATE_MARKS).strip().rstrip(":").strip())
        if not m:
            try:  # compact ISO 8601: 20261120T090005Z
                dt = datetime.fromisoformat(s.replace("z", "Z"))
            except ValueError:
                return None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=tz)
        else:
            if m.group(4) is None:
                return None
            sec = float(m.group(6) or 0)
            try:
                dt = datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5)),
                              int(sec), min(999999, round((sec % 1) * 1e6)), tzinfo=zone_of(m.group(7), tz))
            except ValueError:
                return None
        v = dt.timestamp()
    return v if 315532800.0 <= v < 4102444800.0 else None  # 1980 to 2100


def _point(s: str) -> str:
    """A decimal comma as a point: "36,6956710" (Excel in a locale that writes one; quoted in a "," CSV) or the
    seconds "44,4" of a DMS cell. Only one comma, between digits, in a cell with no point: "1,234.5" is not
    changed (and then not read)."""
    return s.replace(",", ".") if s.count(",") == 1 and "." not in s and re.search(r"\d,\d", s) else s


def _num(s: str) -> float:
    """A CSV number cell (speed, course): ``_float`` with a decimal comma read as a point."""
    return _float(_point(unicodedata.normalize("NFKC", s).strip().strip('"').strip()))


_DMS_SEP = str.maketrans({c: " " for c in "°度:'′分\"″秒"})


def _coord(s: str) -> tuple[float, str]:
    """(value, form) of a coordinate cell: decimal degrees or a plain number (form "num"), or degrees-minutes-
    seconds / degrees-decimal-minutes ("dms": 36°41'44.4"N, 36:41:44.4, 36.41.44.4, 36度41分44.4秒, N36°41.74');
    a hemisphere letter (N/S/E/W, 北緯/南緯/東経/西経) or a sign. NaN where malformed."""
    s = unicodedata.normalize("NFKC", s).strip().strip('"').strip().upper()
    neg = False
    for pre, sign in (("北緯", 1), ("東経", 1), ("南緯", -1), ("西経", -1)):
        if s.startswith(pre):
            s, neg = s[len(pre):].strip(), sign < 0
    if s and s[0] in "NSEW":
        neg, s = s[0] in "SW", s[1:].strip()
    elif s and s[-1] in "NSEW":
        neg, s = s[-1] in "SW", s[:-1].strip()
    if s and s[0] in "+-":
        neg, s = neg != (s[0] == "-"), s[1:].strip()
    s = _point(s)
    try:
        v = float(s)
        form = "num"
    except ValueError:
        if re.fullmatch(r"\d{1,3}\.\d{1,2}\.\d{1,2}(?:\.\d+)?", s):  # 36.41.44.42 (a fleet export's d.m.s)
            parts = s.split(".", 2)
        else:
            parts = s.translate(_DMS_SEP).split()
        if not 2 <= len(parts) <= 3 or not all(re.fullmatch(r"\d+(?:\.\d+)?", x) for x in parts) \
                or "." in parts[0] or (len(parts) == 3 and "." in parts[1]):
            return math.nan, ""
        d, mi, sec = float(parts[0]), float(parts[1]), float(parts[2]) if len(parts) == 3 else 0.0
        if mi >= 60 or sec >= 60:
            return math.nan, ""
        v, form = d + mi / 60 + sec / 3600, "dms"
    if not math.isfinite(v):
        return math.nan, ""
    return (-v if neg else v), form


def _scale(lat: np.ndarray, lon: np.ndarray, units: str) -> tuple[float, str]:
    """The divisor of plain numbers: 1 (degrees), 3600 (seconds of arc, "1/3600 degree") or 3,600,000
    (milliseconds of arc), from the header's unit ("秒", "sec", "ms", "ミリ秒"...) or else from their size (not
    degrees: beyond ±90/±180); with the note to say so. Raises TrackError where none fits."""
    u = units.replace(" ", "")
    said = (3.6e6 if re.search(r"ミリ秒|msec|(?<![a-z])ms(?![a-z])|1/1000秒|1/3600000", u) else
            3600.0 if re.search(r"秒|sec|1/3600|arcs", u) else None)
    lat_max, lon_max = float(np.nanmax(np.abs(lat))), float(np.nanmax(np.abs(lon)))
    if said is None and lat_max <= 90 and lon_max <= 180:
        return 1.0, ""
    tries = ((said, f"1/{said:,.0f} degree"),) if said else ((3600.0, "1/3600 degree (seconds of arc)"),
                                                            (3.6e6, "1/3,600,000 degree (milliseconds of arc)"))
    for k, what in tries:
        # in range, and not all within a degree of 0,0 (where 1/3600 and 1/3,600,000 could both fit)
        if lat_max / k <= 90 and lon_max / k <= 180 and (np.nanmedian(np.abs(lat)) + np.nanmedian(np.abs(lon))) / k > 1:
            why = "as its header says" if said else f"from their size: {lat_max:g}, {lon_max:g} are not degrees"
            return k, f"coordinates read as {what} ({why})"
    raise TrackError(f"latitude/longitude out of range ({lat_max:g}, {lon_max:g}) and not in 1/3600 or "
                     "1/3,600,000 degree either: unit not known")


def _speed_factor(unit: str) -> float | None:
    """km/h per unit of a speed column, from the header's unit; None where it names none (not guessed)."""
    u = unit.replace(" ", "")
    for pat, k in ((r"km/?h|kph|キロ|時速", 1.0), (r"m/?s|mps|秒速", 3.6), (r"knots?|kn|kt|ノット", _KNOTS_KMH),
                   (r"mph", 1.609344)):
        if re.search(pat, u):
            return k
    return None


def _read_csv(path: Path, data: bytes, tz: tzinfo) -> Track:
    """A CSV/TSV from a GPS logger app or a fleet (telematics) system: see the module doc."""
    text, _ = _decode(data)
    head = _csv_header(text)
    if head is None:
        raise TrackError("no header row naming a time, a latitude and a longitude column in the first 30 lines "
                         "(time/timestamp/datetime/UTC or date + time, lat/latitude/緯度, lon/lng/longitude/経度)")
    row0, delim, roles = head
    lines = text.splitlines()
    tokyo, by_columns = _csv_datum(lines, row0, delim, roles)
    # a datum column, unless the latitude/longitude headers name theirs (they say what their cells hold)
    dt_i, dt_name = roles.get("datum", (None, "")) if not by_columns else (None, "")
    rows = list(csv.reader(lines[row0 + 1:], delimiter=delim))
    ti, t_unit = roles.get("time", roles.get("date"))
    di = roles["date"][0] if "date" in roles and roles["date"][0] != ti else None  # date + time of day columns
    zone = re.search(r"(?<![a-z])(utc|gmt|jst)(?![a-z])|([+-]\d{2}:?\d{2})", t_unit)
    ztz = zone_of((zone.group(1) or zone.group(2)), tz) if zone else tz
    la_i, lo_i = roles["lat"][0], roles["lon"][0]
    sp_i, sp_unit = roles.get("speed", (None, ""))
    co_i = roles.get("course", (None, ""))[0]
    sp_k = _speed_factor(sp_unit) if sp_i is not None else None
    t, lat, lon, spd, crs, dat = [], [], [], [], [], []
    n = bad_t = bad_c = 0
    ex_t = ex_c = ""
    forms: set[str] = set()

    def cell(r: list[str], j: int | None) -> str:
        return r[j] if j is not None and j < len(r) else ""

    for r in rows:
        if not any(c.strip() for c in r):
            continue
        n += 1
        ts = cell(r, ti)
        tv = _csv_time(ts, ztz)
        if tv is None and di is not None:  # date + time of day columns: 20261120 / 090005 as well
            ts = f"{cell(r, di).strip()} {ts.strip()}"
            ts = re.sub(r"^(\d{4})(\d{2})(\d{2})\s", r"\1-\2-\3 ", ts)
            ts = re.sub(r"\s(\d{2})(\d{2})(\d{2}(?:\.\d+)?)$", r" \1:\2:\3", ts)
            tv = _csv_time(ts, ztz)
        (la, fa), (lo, fo) = _coord(cell(r, la_i)), _coord(cell(r, lo_i))
        if tv is None:
            bad_t += 1
            ex_t = ex_t or ts.strip()
            continue
        if math.isnan(la) or math.isnan(lo):
            bad_c += 1
            ex_c = ex_c or f"{cell(r, la_i).strip()}, {cell(r, lo_i).strip()}"
            continue
        forms.update((fa, fo))
        t.append(tv)
        lat.append(la)
        lon.append(lo)
        spd.append(_num(cell(r, sp_i)) * sp_k if sp_k is not None else math.nan)
        crs.append(_num(cell(r, co_i)) if co_i is not None else math.nan)
        if dt_i is not None:
            dat.append(cell(r, dt_i))
    if not t:
        if not n:
            raise TrackError("no rows under the CSV header")
        why = [f"{bad_t} with a time not read (e.g. '{ex_t[:40]}': ISO 8601, 2026/11/20 09:00:05 or epoch "
               "seconds/ms; day and month order like 11/20/2026 is not guessed)" if bad_t else "",
               f"{bad_c} with a position not read (e.g. '{ex_c[:40]}')" if bad_c else ""]
        raise TrackError(f"no readable rows: of {n}, " + ", ".join(w for w in why if w))
    lat_a, lon_a = np.array(lat), np.array(lon)
    notes = []
    if "num" in forms:
        k, note = _scale(lat_a, lon_a, f"{roles['lat'][1]} {roles['lon'][1]}")
        if k != 1.0:
            if "dms" in forms:
                raise TrackError("coordinates both in degrees-minutes-seconds and in plain numbers beyond degrees")
            lat_a, lon_a = lat_a / k, lon_a / k
            notes.append(note)
    good = (np.abs(lat_a) <= 90) & (np.abs(lon_a) <= 180) & ~((lat_a == 0) & (lon_a == 0))
    bad_c += int((~good).sum())
    if not good.any():
        raise TrackError(f"no positions in range (latitude ±90, longitude ±180) in {n} rows")
    course = np.array(crs)
    course = np.where((course >= 0) & (course <= 360), course % 360.0, np.nan)
    speed = np.array(spd)
    speed = np.where((speed >= 0) & (speed < 1000), speed, np.nan)
    if dt_i is not None:  # each row's datum; an empty cell: the file's
        datums, note = _row_datums(dat, "tokyo" if tokyo else "", dt_name)
        notes += note
    else:
        datums = np.full(len(t), "tokyo" if tokyo else "", dtype=object)
    lat_a, lon_a = _from_tokyo(lat_a, lon_a, datums == "tokyo", notes)  # the one conversion EXIF fixes get too
    pts = np.column_stack([np.array(t), lat_a, lon_a, course, speed, np.ones(len(t))])[good]
    if sp_i is not None and sp_k is None:
        notes.append(f"speed column '{roles['speed'][1]}' not used: no unit in its header (km/h, m/s, knots); "
                     "speed from the distance between points")
    if bad_t or bad_c:
        notes.append(f"{bad_t + bad_c} of {n} rows skipped ("
                     + ", ".join(w for w in (f"{bad_t} time not read, e.g. '{ex_t[:40]}'" if bad_t else "",
                                             f"{bad_c} position not read or out of range" if bad_c else "") if w)
                     + ")")
    return _finish(path, "csv", pts.tolist(), notes=notes, datums=datums[good])


def _from_tokyo(lat: np.ndarray, lon: np.ndarray, tokyo: np.ndarray, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The points marked ``tokyo`` converted to WGS 84 in one vectorised call (``datum.tokyo_to_wgs84``, as EXIF
    fixes), the note saying so added; the others as they are."""
    if not tokyo.any():
        return lat, lon
    from .datum import TOKYO_NOTE, tokyo_to_wgs84

    lat, lon = lat.copy(), lon.copy()
    lat[tokyo], lon[tokyo] = tokyo_to_wgs84(lat[tokyo], lon[tokyo])
    notes.append(TOKYO_NOTE if tokyo.all() else f"{int(tokyo.sum())} of {len(tokyo)} points in " + TOKYO_NOTE)
    return lat, lon


def _row_datums(values: list[str], default: str, column: str) -> tuple[np.ndarray, list[str]]:
    """Each row's datum from a CSV's datum column (``測地系``, ``datum``...): "tokyo", "" (WGS 84 and what agrees
    with it) or, for a value not known, the value as written (kept as is, one note naming the values); an empty
    cell takes ``default`` (the file's title). Each distinct value is classified once (``datum.classify``;
    ``日本``/``世界``/``旧日本`` alone, as a 測地系 column holds them, read as 日本測地系/世界測地系/旧日本測地系)."""
    from .datum import classify

    uniq, inv = np.unique(np.array([v.strip() for v in values], dtype=str), return_inverse=True)
    res, unknown = [], []
    for v in uniq.tolist():
        kind, label = classify(v)
        if kind == "unknown" and classify(label + "測地系")[0] != "unknown":
            kind = classify(label + "測地系")[0]
        res.append(default if not label else "tokyo" if kind == "tokyo" else "" if kind == "wgs84" else label)
        if label and kind == "unknown":
            unknown.append(label)
    out = np.array(res, dtype=object)[inv] if len(values) else np.array([], dtype=object)
    notes = []
    if unknown:
        n = int(np.isin(out, unknown).sum())
        named = ", ".join(f"'{u}'" for u in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        notes.append(f"datum column '{column}': {n} rows in a datum not known ({named}), placed as if WGS 84 "
                     "(frames.csv datum names it); if it is a local datum their positions may be off")
    return out, notes


# Which datum a CSV's title lines (or header) say its coordinates are IN, not one merely mentioned
# (``_text_datum``). The names, in NFKC lower case: the Tokyo datum (日本測地系 without a year, 旧日本測地系, 旧測地系,
# "Tokyo datum", "datum: Tokyo", "測地系：日本"; bare "Tokyo" only after "from"/"to" or before an arrow) and WGS 84 or
# what agrees with it here (世界測地系, 新測地系, 日本測地系2000/2011 = JGD2000/JGD2011, WGS84, JGD2011, ITRF...).
_T_NAMES = (r"旧日本測地系|日本測地系(?!\s*20\d\d)|旧測地系|tokyo[\s_-]*datum|datum\W{0,3}tokyo|"
            r"測地系\W{1,3}(?:日本|tokyo)(?!\s*測地系)|(?<=from )tokyo\b|(?<=to )tokyo\b|tokyo(?=\s*(?:→|->|=>|⇒))")
_W_NAMES = (r"世界測地系|新測地系|日本測地系\s*20\d\d|wgs[\s_-]*(?:84|1984)|jgd\s*20\d\d|itrf\s*\d*|datum\W{0,3}wgs|"
            r"測地系\W{1,3}世界(?!\s*測地系)")
_DATUM_NAME = re.compile(f"(?P<tokyo>{_T_NAMES})|(?P<wgs84>{_W_NAMES})")
# a name's role from the words around it: the datum converted TO (the coordinates are in it), the one converted
# FROM (they are not), one said not to be it; else a plain statement ("測地系：日本測地系", "日本測地系（未変換）")
_TARGET_AFTER = re.compile(r"^\s*\)?\s*(?:に|へ)\s*(?:座標)?(?:変換|換算|補正)|"
                           r"^\s*[(\[]?\s*(?:変換済|変換後|換算済|補正済|converted|transformed)(?!\s*(?:to|into)\b)")
_TARGET_BEFORE = re.compile(r"(?:→|->|=>|⇒)\s*$|(?:変換後|変換先|converted|output)\W{0,3}$|"
                            r"(?:convert\w*|transform\w*|conversion)\b.{0,40}\b(?:to|into)\s+(?:the\s+)?$")
_SOURCE_AFTER = re.compile(r"^\s*\)?\s*(?:から|より|→|->|=>|⇒)|^\s*(?:converted|transformed)\s+(?:to|into)\b")
_SOURCE_BEFORE = re.compile(r"\bfrom\s+(?:the\s+)?$|(?:元データ|元の測地系|変換前|変換元|original|source)\W{0,3}$")
_NEGATED = re.compile(r"^\s*\)?\s*(?:ではありません|ではない|でない|ではなく|じゃない|以外)")
_NOT_BEFORE = re.compile(r"\b(?:not|non)[\s-]*(?:in\s+)?(?:the\s+)?$")


def _text_datum(text: str, what: str = "title") -> str:
    """The datum the coordinates are in by a CSV's title lines / header: "tokyo", "wgs84" or "" (none said).

    The rule, in order: a datum named as what the data was converted TO ("日本測地系から世界測地系に変換済",
    "converted from Tokyo datum to WGS84", "世界測地系(変換済み)", "Tokyo→WGS84") is the one; else the datums
    named plainly ("測地系：日本測地系", "日本測地系（未変換）"), not as the one converted FROM ("元データ：日本測地系")
    nor negated ("日本測地系ではありません"); else, when only a FROM is named ("converted from Tokyo datum"), the
    other one. Both named as targets, or both plainly, is not guessed: TrackError saying so."""
    t = unicodedata.normalize("NFKC", text).lower()
    found: dict[str, set[str]] = {"target": set(), "plain": set(), "source": set()}
    said = []
    for m in _DATUM_NAME.finditer(t):
        kind = m.lastgroup
        before, after = t[max(0, m.start() - 60):m.start()], t[m.end():m.end() + 20]
        if m.group(0) not in said:
            said.append(m.group(0))
        if _NEGATED.match(after) or _NOT_BEFORE.search(before):
            continue
        if _TARGET_AFTER.match(after) or _TARGET_BEFORE.search(before):
            found["target"].add(kind)
        elif _SOURCE_AFTER.match(after) or _SOURCE_BEFORE.search(before):
            found["source"].add(kind)
        else:
            found["plain"].add(kind)
    for role in ("target", "plain"):
        if len(found[role]) == 1:
            return next(iter(found[role]))
        if len(found[role]) > 1:
            shown = " ".join(t.split())
            shown = shown if len(shown) <= 90 else shown[:87] + "..."
            raise TrackError(f"its {what} names both the Tokyo datum and WGS 84 ({', '.join(said)}: '{shown}'), "
                             f"as {'what it was converted to' if role == 'target' else 'its datum'}: which one the "
                             "coordinates are in is not clear, so the file is not used; make the title say one "
                             "(測地系：日本測地系 or 測地系：世界測地系)")
    if len(found["source"]) == 1:  # converted from one, to the other
        return "wgs84" if "tokyo" in found["source"] else "tokyo"
    return ""


def _csv_datum(lines: list[str], row0: int, delim: str, roles: dict) -> tuple[bool, bool]:
    """(Is the CSV's position in the Tokyo datum?, did the latitude/longitude headers decide?). Where latitude/
    longitude columns name their datum in the header (a fleet export giving both, ``緯度(世界測地系)`` …
    ``緯度(日本測地系)``), the WGS 84 pair is used (``roles`` updated), else a pair named for no datum, else the
    Tokyo one (converted); the header's mention of the other pair says nothing about the pair used. Otherwise the
    title lines and the header as a whole decide (``_text_datum``; TrackError where they are not clear)."""
    cells = next(csv.reader([lines[row0]], delimiter=delim), [])
    marks: dict[str, list[tuple[int, str, str]]] = {"lat": [], "lon": []}
    for j, c in enumerate(cells):
        name, unit = _col_name(c)
        role, hint = _col_role(name)
        if role in marks:
            text = unicodedata.normalize("NFKC", c).lower()
            mark = _text_datum(text, f"column '{c.strip()}'") or ("wgs84" if re.search(r"wgs|jgd|itrf", text) else "")
            marks[role].append((j, mark, " ".join(x for x in (unit, hint, name) if x)))
    if not any(m for cols in marks.values() for _, m, _ in cols):
        return _text_datum(" ".join(lines[:row0 + 1]), "title or header") == "tokyo", False
    rank = {"wgs84": 0, "": 1, "tokyo": 2}
    for role, cols in marks.items():
        j, _, unit = min(cols, key=lambda c: (rank[c[1]], c[0]))
        roles[role] = (j, unit)
    picked = {m for role, cols in marks.items() for j, m, _ in cols if j == roles[role][0]}
    if picked == {""}:  # neither column names its datum (another pair does): the title lines decide
        return _text_datum(" ".join(lines[:row0])) == "tokyo", False
    return "tokyo" in picked, True


# ----------------------------------------------------------------------------------------------- KML / KMZ

def _kmz_docs(data: bytes) -> list[tuple[str, bytes]]:
    """The KML documents in a KMZ (ZIP) archive, (name, bytes): every ``.kml`` file, ``doc.kml`` first, the others
    in name order (a ``doc.kml`` that only links the track's parts by ``NetworkLink``, or a logger's one file per
    trip, keeps them all)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = [i for i in z.infolist() if i.filename.lower().endswith(".kml") and not i.is_dir()]
            if not names:
                raise TrackError("no .kml document in the KMZ archive")
            names.sort(key=lambda i: (i.filename.lower().rpartition("/")[2] != "doc.kml", i.filename))
            size = sum(i.file_size for i in names)
            if size > _MAX_BYTES:
                raise TrackError(f"its .kml documents unpack to {size / 2**20:.0f} MB: larger than a track file can "
                                 f"be (limit {_MAX_BYTES // 2**20} MB)")
            return [(i.filename, z.read(i)) for i in names]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError) as e:
        raise TrackError(f"not a KMZ (ZIP) archive ({e})") from None


def _kml_time(s: str, tz: tzinfo) -> float | None:
    """A KML ``<when>``: xsd:dateTime with "Z" or an offset; without one in ``tz``; a date alone is no time."""
    s = s.strip()
    if "T" not in s:
        return None
    try:
        dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    v = dt.timestamp()
    return v if 315532800.0 <= v < 4102444800.0 else None


def _read_kml(path: Path, data: bytes, tz: tzinfo) -> Track:
    """``gx:Track`` (``<when>`` + ``<gx:coord>`` in order, ``gx:angles`` heading as course; each track a segment,
    also inside ``gx:MultiTrack``) and Placemarks of one ``Point`` with a ``TimeStamp`` each (a logger's points);
    a ``LineString`` has no times and cannot place frames by time."""
    pts, n_pts, skipped, lines = _kml_points(data, tz)
    return _kml_track(path, "kml", pts, n_pts, skipped, lines)


def _read_kmz(path: Path, data: bytes, tz: tzinfo) -> Track:
    """Every KML document of a KMZ, as ``_read_kml``; each one's tracks are segments of their own. A document that
    is no KML beside one that is: a note naming it; none with a point: the first one's reason."""
    pts: list[tuple] = []
    n_pts = skipped = lines = 0
    bad: list[str] = []
    docs = _kmz_docs(data)
    for name, doc in docs:
        try:
            p, n, sk, li = _kml_points(doc, tz, seg0=max((q[5] for q in pts), default=-1) + 1)
        except TrackError as e:
            bad.append(f"{name}: {e.reason}")
            continue
        pts += p
        n_pts, skipped, lines = n_pts + n, skipped + sk, lines + li
    if bad and not pts:
        raise TrackError(bad[0] if len(docs) == 1 else "; ".join(bad[:3]))
    tr = _kml_track(path, "kmz", pts, n_pts, skipped, lines)
    tr.notes += [f"{b} (skipped)" for b in bad]
    return tr


def _kml_points(data: bytes, tz: tzinfo, seg0: int = 0) -> tuple[list[tuple], int, int, int]:
    """(points, points seen, points skipped, LineStrings) of one KML document: its timed Placemarks segment
    ``seg0``, its tracks each the next one."""
    root = _xml_root(data, "kml", "KML")
    pts: list[tuple] = []
    seg, n_pts, skipped, lines = seg0, 0, 0, 0
    for el in root.iter():
        name = _local(el.tag)
        if name == "Track":
            seg += 1
            whens = [c.text or "" for c in el if _local(c.tag) == "when"]
            coords = [c.text or "" for c in el if _local(c.tag) == "coord"]
            angles = [c.text or "" for c in el if _local(c.tag) == "angles"]
            if len(whens) != len(coords):
                raise TrackError(f"a gx:Track with {len(whens)} <when> and {len(coords)} <gx:coord>: they must pair")
            for k, (w, c) in enumerate(zip(whens, coords)):
                n_pts += 1
                xyz = c.split()
                t = _kml_time(w, tz)
                lon, lat = (_float(xyz[0]), _float(xyz[1])) if len(xyz) >= 2 else (math.nan, math.nan)
                hd = _float(angles[k].split()[0]) if len(angles) == len(whens) and angles[k].split() else math.nan
                if t is None or not (abs(lat) <= 90 and abs(lon) <= 180) or (lat == 0 and lon == 0):
                    skipped += 1
                    continue
                pts.append((t, lat, lon, hd % 360.0 if 0 <= hd <= 360 else math.nan, math.nan, seg))
        elif name == "LineString":
            lines += 1
        elif name == "Placemark":
            when = next((w.text or "" for w in el.iter() if _local(w.tag) == "when"), None)
            point = next((p for p in el.iter() if _local(p.tag) == "Point"), None)
            if when is None or point is None or any(_local(x.tag) == "Track" for x in el.iter()):
                continue
            n_pts += 1
            c = next(((x.text or "") for x in point.iter() if _local(x.tag) == "coordinates"), "").strip().split(",")
            t = _kml_time(when, tz)
            lon, lat = (_float(c[0]), _float(c[1])) if len(c) >= 2 else (math.nan, math.nan)
            if t is None or not (abs(lat) <= 90 and abs(lon) <= 180) or (lat == 0 and lon == 0):
                skipped += 1
                continue
            pts.append((t, lat, lon, math.nan, math.nan, seg0))
    return pts, n_pts, skipped, lines


def _kml_track(path: Path, kind: str, pts: list[tuple], n_pts: int, skipped: int, lines: int) -> Track:
    if not pts:
        if lines and not n_pts:
            raise TrackError("a LineString has no times: it cannot place frames by time (record or export the "
                             "track with times: a gx:Track in KML, GPX, NMEA or CSV)")
        if not n_pts:
            raise TrackError("no gx:Track and no timed Placemarks in the KML file")
        raise TrackError(f"none of its {n_pts} points has a time (with its date) and a position")
    notes = [f"{skipped} of {n_pts} points skipped (without time or with bad coordinates)"] if skipped else []
    return _finish(path, kind, pts, notes=notes)
