"""GPS track files (GPX, NMEA 0183): positions for frames from cameras that write no GPS into their photos.

A dashcam, an action camera or an interval camera often writes no GPS EXIF while a phone logger app (GPX) or a GPS
receiver (NMEA sentences) logs the position beside it. ``scan_drive`` places such frames by linear interpolation
in time along a track, as exiftool's ``-geotag`` does.

Contracts:

* ``read_track(path)`` -> ``Track`` or raises ``TrackError`` with one reason (not XML, no time stamps, no valid
  fixes...). Times are UTC epoch seconds, sorted, one point per time.
* GPX 1.0/1.1: every ``trkpt`` with ``lat``, ``lon`` and ``time`` of every ``trk``/``trkseg`` (namespaces ignored);
  a time with ``Z`` or an offset, one without is UTC (the GPX schema says so); ``<fix>none</fix>`` points are
  skipped; ``course`` (degrees) and ``speed`` (m/s) from the point itself (GPX 1.0) or its ``extensions`` (Garmin
  TrackPointExtension and the like). Each ``trkseg`` is its own segment: never interpolated across.
* NMEA 0183: ``$--RMC`` (any talker: GP, GN, GL, GA, BD...) gives date, time, position, speed (knots) and course;
  status ``V`` or mode ``N`` is skipped; ``$--GGA`` with fix quality 0 drops the RMC of its epoch (sent just before or after it). A sentence
  whose ``*hh`` checksum does not match is skipped and counted (``Track.broken``). Text before the ``$`` (a
  logger's own time stamp) is ignored.
* ``Track.place(t, max_gap)``: vectorised (``searchsorted``) positions at frame times, between the two points
  around each time when they are at most ``max_gap`` s apart and in one segment; else NaN with a reason.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .geo import distance_bearing

__all__ = ["Track", "TrackError", "read_track", "track_kind", "TRACK_SUFFIXES"]

TRACK_SUFFIXES = {".gpx": "gpx", ".nmea": "nmea", ".nma": "nmea"}
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
    kind: str  # "gpx" | "nmea"
    t: np.ndarray  # UTC epoch seconds, strictly increasing
    lat: np.ndarray
    lon: np.ndarray
    course: np.ndarray  # degrees from north, NaN where not logged
    speed: np.ndarray  # km/h, NaN where not logged
    seg: np.ndarray  # segment number (GPX trkseg); never interpolated across
    broken: int = 0  # NMEA sentences skipped for a bad checksum or unreadable fields
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.t)

    def place(self, q: np.ndarray, max_gap: float) -> dict[str, np.ndarray]:
        """Positions at times ``q`` (UTC epoch s): ``lat``, ``lon``, ``heading`` (the track's course, else the bearing
        between the two points), ``speed`` (km/h: the track's, else distance over time), and ``why`` (object array:
        "" where placed, else the reason). Linear in time between the points just before and after each time
        (an exact time takes its point); vectorised."""
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
        return {"lat": np.where(ok, lat, nan), "lon": np.where(ok, lon, nan), "heading": np.where(ok, heading, nan),
                "speed": np.where(ok, speed, nan), "ok": ok, "why": why}


def _hms(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# ----------------------------------------------------------------------------------------------- detection

def track_kind(path: Path, head: bytes | None = None) -> str:
    """"gpx" | "nmea" | "" (not a track file): by the suffix (.gpx, .nmea, .nma), else by the content (a GPX root
    element, or NMEA RMC/GGA sentences, as a dashcam writes them into .log or .txt files)."""
    kind = TRACK_SUFFIXES.get(path.suffix.lower())
    if kind:
        return kind
    if head is None:
        try:
            with open(path, "rb") as fh:
                head = fh.read(_SNIFF_BYTES)
        except OSError:
            return ""
    if _GPX_ROOT.search(head[:4096]) and b"<" in head[:256]:
        return "gpx"
    if _NMEA_LINE.search(head):
        return "nmea"
    return ""


def read_track(path: str | Path, kind: str | None = None) -> Track:
    """The track in a GPX or NMEA file. Raises TrackError with the reason."""
    path = Path(path)
    kind = kind or track_kind(path)
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
        tr = _read_nmea(path, data)
    else:
        raise TrackError("neither GPX nor NMEA 0183")
    return tr


def _finish(path: Path, kind: str, pts: list[tuple], broken: int = 0, notes: list[str] | None = None) -> Track:
    """Sort the points (t, lat, lon, course, speed, seg) by time and keep one per time."""
    arr = np.array(pts, dtype=float).reshape(-1, 6)
    order = np.lexsort((arr[:, 5], arr[:, 0]))
    arr = arr[order]
    keep = np.ones(len(arr), dtype=bool)
    keep[1:] = np.diff(arr[:, 0]) > 0
    arr = arr[keep]
    return Track(path=path, kind=kind, t=arr[:, 0], lat=arr[:, 1], lon=arr[:, 2], course=arr[:, 3],
                 speed=arr[:, 4], seg=arr[:, 5].astype(np.int64), broken=broken, notes=notes or [])


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


def _read_gpx(path: Path, data: bytes) -> Track:
    if b"<!ENTITY" in data[:_SNIFF_BYTES]:
        raise TrackError("not a GPX file: XML entity declarations are not read")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise TrackError(f"not XML ({e})") from None
    if _local(root.tag) != "gpx":
        raise TrackError(f"not a GPX file (the XML root is <{_local(root.tag)}>)")
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


def _read_nmea(path: Path, data: bytes) -> Track:
    text = data.decode("ascii", "replace")
    pts: list[tuple] = []
    # a GGA without fix drops the RMC of its epoch: the one just before it with its time of day, or the next RMC
    # when that has its time (a time of day alone: in a log of several days, 10:00:00 comes once a day)
    dropped: set[int] = set()  # indexes into pts
    gga_pending = math.nan  # a GGA's time of day without fix, waiting for its RMC
    broken = void = rmc_n = 0
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
        pts.append((day + tod, lat, lon, course % 360.0 if not math.isnan(course) else course, speed, 1, round(tod, 2)))
    if not rmc_n and not broken:
        raise TrackError("no RMC sentences (date, time and position) in the NMEA file")
    good = [p[:6] for k, p in enumerate(pts) if k not in dropped]
    no_fix = len(pts) - len(good)
    if not good:
        why = [f"{n} {what}" for n, what in ((broken, "sentences broken (bad checksum or fields)"),
                                             (void, "RMC sentences void (status V)"),
                                             (no_fix, "fixes without a GGA fix")) if n]
        raise TrackError("no valid fixes: " + ", ".join(why))
    notes = []
    if broken:
        notes.append(f"{broken} broken sentences skipped (bad checksum or fields)")
    return _finish(path, "nmea", good, broken=broken, notes=notes)
