"""Track files as road departments also get them: CSV from logger apps and fleet systems, KML/KMZ, NMEA with GGA only.

Real data as in ``test_tracks.py``: the sample drive's pass 1 with its GPS EXIF removed, and the real 1 Hz Kubicka
track it follows (frame i is track point 100 + i) written in each format; every frame must land where the GPX of the
same points puts it (those numbers are in ``test_tracks.py`` and the README), and so within metres of its own fix.
"""

from __future__ import annotations

import re
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from detector.config import Config
from detector.frames import load_tracks, merge_track_uses, scan, scan_drive, track_warnings
from detector.tracks import TrackError, read_track
from conftest import TOYAMA
from test_tracks import kubicka_points, metres, nmea_lines, no_gps_drive, original, write_gpx  # noqa: F401

JST = ZoneInfo("Asia/Tokyo")


@pytest.fixture(scope="module")
def drive(tmp_path_factory, original):
    return no_gps_drive(tmp_path_factory.mktemp("nogps") / "d")


@pytest.fixture(scope="module")
def pts(original):
    """The real track (utc s, lat, lon), timed as the frames were taken."""
    return kubicka_points(original[min(original)].time)


@pytest.fixture(scope="module")
def gpx_placed(tmp_path_factory, drive, pts):
    """The frames placed from a GPX of the track (the reference every other format must match)."""
    gpx = write_gpx(tmp_path_factory.mktemp("gpx") / "t.gpx", pts)
    return {f.name: f for f in scan_drive(drive, Config(), tracks=[read_track(gpx)]) if f.ok}


def _iso(t: float, tz=timezone.utc, fmt: str = "%Y-%m-%dT%H:%M:%S") -> str:
    return datetime.fromtimestamp(t, tz).strftime(fmt)


def _dms(v: float) -> str:
    d = int(v)
    m = int((v - d) * 60)
    return f"{d}°{m:02d}'{(v - d - m / 60) * 3600:06.3f}\""


# each writer: (file name, bytes) of the track points in one CSV/KML style seen in the field
def csv_gpslogger(p):  # GPSLogger for Android: ISO times in UTC with "Z", speed in m/s without a unit in the header
    rows = [f"{_iso(t)}.000Z,{la:.7f},{lo:.7f},12.5,4.0,,8.3,9,gps" for t, la, lo in p]
    return "gpslogger.csv", ("time,lat,lon,elevation,accuracy,bearing,speed,satellites,provider\n"
                             + "\n".join(rows) + "\n").encode()


def csv_date_time_local(p):  # date and time of day in two columns, ";", local time without a zone (config: JST)
    rows = [f"{_iso(t, JST, '%Y/%m/%d')};{_iso(t, JST, '%H:%M:%S')};{la:.7f};{lo:.7f}" for t, la, lo in p]
    return "logger-export.csv", ("Date;Time;Latitude;Longitude\n" + "\n".join(rows) + "\n").encode()


def csv_fleet_cp932_dms(p):  # a Japanese fleet system: Shift_JIS, a title line, 日時/緯度/経度 in DMS, JST times
    rows = [f"{_iso(t, JST, '%Y/%m/%d')} {int(_iso(t, JST, '%H'))}{_iso(t, JST, ':%M:%S')},{_dms(la)},{_dms(lo)},32,"
            for t, la, lo in p]
    return "運行記録.csv", ("車両運行記録 富山市道路課 1号車 (世界測地系)\n日時,緯度,経度,速度(km/h),方位\n"
                          + "\n".join(rows) + "\n").encode("cp932")


def csv_fleet_cp932_arcsec(p):  # the same in 1/3600 degree (seconds of arc), no unit in the header
    rows = [f"{_iso(t, JST, '%Y年%m月%d日 %H時%M分%S秒')},{la * 3600:.3f},{lo * 3600:.3f}" for t, la, lo in p]
    return "gps_log.csv", ("記録日時,緯度,経度\n" + "\n".join(rows) + "\n").encode("cp932")


def csv_epoch_ms(p):  # a telematics export: epoch milliseconds, lng, speed with its unit in the name
    rows = [f"{int(round(t * 1000))},{la:.7f},{lo:.7f},30.5" for t, la, lo in p]
    return "telematics.csv", ("timestamp,lat,lng,speed_kmh\n" + "\n".join(rows) + "\n").encode()


def tsv_utc(p):  # a tab-separated export whose time column says UTC, times without a zone
    rows = [f"{_iso(t, fmt='%Y-%m-%d %H:%M:%S')}\t{la:.7f}\t{lo:.7f}" for t, la, lo in p]
    return "track.tsv", ("UTC\tLatitude\tLongitude\n" + "\n".join(rows) + "\n").encode()


def _kml(p, tz=timezone.utc) -> str:
    zone = "Z" if tz is timezone.utc else ""
    whens = "".join(f"<when>{_iso(t, tz)}{zone}</when>" for t, _, _ in p)
    coords = "".join(f"<gx:coord>{lo:.7f} {la:.7f} 12.5</gx:coord>" for _, la, lo in p)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2" '
            'xmlns:gx="http://www.google.com/kml/ext/2.2"><Document><Placemark><name>drive</name>'
            f"<gx:Track><altitudeMode>clampToGround</altitudeMode>{whens}{coords}</gx:Track></Placemark></Document></kml>")


def kml_gx_track(p):
    return "drive.kml", _kml(p).encode()


def kmz_local_times(p):  # a KMZ whose <when> have no zone: the config's (JST)
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("doc.kml", _kml(p, JST))
    return "drive.kmz", buf.getvalue()


def kml_placemarks(p):  # a logger's KML of one Placemark per point (TimeStamp + Point), with a +09:00 offset
    marks = "".join(f"<Placemark><TimeStamp><when>{_iso(t, JST)}+09:00</when></TimeStamp>"
                    f"<Point><coordinates>{lo:.7f},{la:.7f},12.5</coordinates></Point></Placemark>" for t, la, lo in p)
    return "points.kml", f'<kml xmlns="http://www.opengis.net/kml/2.2"><Document>{marks}</Document></kml>'.encode()


def csv_decimal_comma(p):  # Excel in a locale with a decimal comma: ";", quoted "36,6956710", a trailing ";"
    def dc(v: float) -> str:
        return f'"{v:.7f}"'.replace(".", ",")

    rows = [f"{_iso(t, JST, '%Y-%m-%d %H:%M:%S')};{dc(la)};{dc(lo)};{dc(30.5)};" for t, la, lo in p]
    return "excel-export.csv", ("Time;Latitude;Longitude;Speed (km/h);\r\n" + "\r\n".join(rows) + "\r\n").encode()


def tsv_decimal_comma(p):  # the same as a tab-separated export, unquoted
    rows = [f"{_iso(t)}Z\t{la:.7f}\t{lo:.7f}".replace(".", ",") for t, la, lo in p]
    return "track.tsv", ("time\tlat\tlon\n" + "\n".join(rows) + "\n").encode()


def _kmz(files: dict[str, str]) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def kmz_doc_links_parts(p):  # a KMZ whose doc.kml only links the track's two parts (NetworkLink), each its own .kml
    links = "".join(f"<NetworkLink><Link><href>{n}</href></Link></NetworkLink>" for n in ("files/1.kml", "files/2.kml"))
    return "drive-parts.kmz", _kmz({"doc.kml": f'<kml xmlns="http://www.opengis.net/kml/2.2"><Document>{links}'
                                               "</Document></kml>",
                                    "files/1.kml": _kml(p[:151]), "files/2.kml": _kml(p[150:])})


def kmz_two_kml(p):  # a KMZ of two .kml files and no doc.kml (a logger's morning and afternoon)
    return "day.kmz", _kmz({"track_am.kml": _kml(p[:151]), "track_pm.kml": _kml(p[150:])})


WRITERS = [csv_gpslogger, csv_date_time_local, csv_fleet_cp932_dms, csv_fleet_cp932_arcsec, csv_epoch_ms, tsv_utc,
           csv_decimal_comma, tsv_decimal_comma, kml_gx_track, kmz_local_times, kml_placemarks, kmz_doc_links_parts,
           kmz_two_kml]


@pytest.mark.parametrize("writer", WRITERS, ids=lambda w: w.__name__)
def test_formats_place_frames_as_the_gpx_does(tmp_path, writer, drive, pts, original, gpx_placed):
    """The real track in each format, given as ``--track``: every frame the GPX places is placed, within 0.05 m of
    where the GPX puts it (DMS and 1/3600 degree are written to 0.001″, 3 cm), so within 0.33 m of its own fix."""
    name, data = writer(pts)
    path = tmp_path / name
    path.write_bytes(data)
    tracks, uses = load_tracks([path], Config().tz)
    assert not uses[0].problem, uses[0].problem
    (tr,) = tracks
    assert len(tr) == len(pts) and tr.kind == ("kml" if name.endswith(".kml") else "kmz" if name.endswith(".kmz") else "csv")
    assert np.allclose(tr.t, pts[:, 0], atol=0.001), np.abs(tr.t - pts[:, 0]).max()
    placed = {f.name: f for f in scan_drive(drive, Config(), tracks=tracks) if f.ok}
    assert set(placed) == set(gpx_placed) and len(placed) == 100
    off = np.array([metres(placed[n], gpx_placed[n]) for n in placed])
    own = np.array([metres(placed[n], original[n]) for n in placed])
    assert off.max() < 0.05 and own.max() < 0.35, (off.max(), own.max())
    assert all(f.position_source == "track_file" for f in placed.values())
    if writer is csv_gpslogger:  # a speed without its unit is not guessed: derived from the points, and said so
        assert any("speed column 'speed' not used: no unit" in n for n in tr.notes)
        assert np.isnan(tr.speed).all()
    if writer in (csv_epoch_ms, csv_decimal_comma):
        assert np.allclose(tr.speed, 30.5)
    if writer is csv_fleet_cp932_arcsec:
        assert any("1/3600 degree (seconds of arc)" in n for n in tr.notes)


def test_csv_and_kmz_found_in_the_drive(tmp_path, pts, original, gpx_placed):
    """A cp932 fleet CSV and a KMZ beside the frames are found (the CSV by its header, the KMZ by its suffix), are
    no frames and place the frames of their folders; a CSV that is no track (no time/latitude/longitude header)
    stays an ordinary not_an_image row and is no track warning."""
    names = sorted(original)
    d = tmp_path / "d"
    no_gps_drive(d / "a", names[:50])
    no_gps_drive(d / "b", names[50:])
    name, data = csv_fleet_cp932_dms(pts)
    (d / "a" / "export.txt").write_bytes(data)  # by content, whatever its suffix
    (d / "a" / "repairs.csv").write_text("路線名,補修内容\n市道1号,ひび割れ\n", encoding="cp932")
    name, data = kmz_local_times(pts)
    (d / "b" / name).write_bytes(data)
    sc = scan(d, Config())
    by = {f.name: f for f in sc.frames}
    assert "a/export.txt" not in by and "b/drive.kmz" not in by
    assert by["a/repairs.csv"].reason.startswith("not_an_image")
    for n in names:
        f = by[f"{'a' if n < names[50] else 'b'}/{n}"]
        assert f.ok and f.position_source == "track_file" and metres(f, gpx_placed[n]) < 0.05
    assert sorted((u.kind, u.placed) for u in sc.tracks) == [("csv", 50), ("kmz", 50)]
    assert not [w for w in track_warnings(sc.tracks, Config().tz) if "not used" in w or "none" in w]


# ------------------------------------------------------------------------------------------------ NMEA GGA only

def _gga_only(frames) -> str:
    return "\r\n".join(ln for ln in nmea_lines(frames) if "GGA," in ln) + "\r\n"


def test_gga_only_date_from_file_name_or_frames(tmp_path, original):
    """A log of GGA sentences only (time of day, no date): dated by its file name (a dashcam's local
    20261120_090000) where it has one, else by the frames in its reach; a name of another day is not overruled by
    the frames (the track then covers none of them: a warning)."""
    names = sorted(original)[:40]
    frames = [original[n] for n in names]
    for log, how in [("20261120_090000.LOG", "from the file name"), ("gps.nmea", "from the times of the frames")]:
        d = no_gps_drive(tmp_path / log.replace(".", "_"), names)
        (d / log).write_text(_gga_only(frames), encoding="ascii")
        sc = scan(d, Config())
        (use,) = sc.tracks
        assert use.kind == "nmea" and not use.problem and use.placed == 40, (use.problem, use.example)
        assert any(how in n and "2026-11-20" in n for n in use.notes), use.notes
        for f in sc.frames:
            if f.name in original:
                assert f.ok and metres(f, original[f.name]) < 0.2
    d = no_gps_drive(tmp_path / "other_day", names)
    (d / "20261119_090000.LOG").write_text(_gga_only(frames), encoding="ascii")
    (w,) = [w for w in track_warnings(scan(d, Config()).tracks, Config().tz) if "covers none" in w]
    assert "20261119_090000.LOG" in w and "2026-11-19" in w


def test_gga_only_as_track_option_over_drives(tmp_path, original):
    """``--track`` with an undated GGA log: each drive dates it by its own frames; the summary's record is the
    dated one; a drive with no timed frame in reach is no problem when another drive dated it. Alone (no frame
    with a time anywhere), the file is one warning saying why."""
    names = sorted(original)[:30]
    log = tmp_path / "gps.nmea"
    log.write_text(_gga_only([original[n] for n in names]), encoding="ascii")
    tracks, uses = load_tracks([log], Config().tz)
    assert tracks[0].undated and uses[0].undated
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no photos today\n", encoding="utf-8")
    d = no_gps_drive(tmp_path / "d", names)
    for drives in ([empty, d], [d, empty]):
        all_uses = list(uses)
        for dr in drives:
            sc = scan(dr, Config(), tracks=tracks)
            all_uses += sc.tracks
        (m,) = merge_track_uses(all_uses)
        assert not m.problem and m.placed == 30 and not m.undated
        assert datetime.fromtimestamp(m.start, JST).date().isoformat() == "2026-11-20"
    (m,) = merge_track_uses(list(uses) + scan(empty, Config(), tracks=tracks).tracks)
    (w,) = track_warnings([m], Config().tz)
    assert "gps.nmea: track file not used: NMEA GGA sentences carry no date" in w


def test_gga_only_track_option_dated_differently_by_drives_warns(tmp_path, original):
    """``--track`` with one undated GGA log over two drives of different days (the same photos, one drive's camera
    clock a day later): each drive dates the log by its own frames, so the other day's frames are placed by the
    wrong day's positions. The summary says so, naming both dates (it gave two unrelated date notes before)."""
    names = sorted(original)[:20]
    log = tmp_path / "gps.nmea"
    log.write_text(_gga_only([original[n] for n in names]), encoding="ascii")
    tracks, uses = load_tracks([log], Config().tz)
    d = no_gps_drive(tmp_path / "d", names)
    later = Config(frames={"camera_clock_offset_s": -86400})  # the frames' times read a day later
    (m,) = merge_track_uses(list(uses) + scan(d, Config(), tracks=tracks).tracks + scan(d, later, tracks=tracks).tracks)
    (w,) = [w for w in track_warnings([m], Config().tz) if "dated it differently" in w]
    assert w.startswith(f"{log.absolute()}: ") and "2026-11-20, 2026-11-21" in w, w
    (m,) = merge_track_uses(list(uses) + scan(d, Config(), tracks=tracks).tracks + scan(d, Config(), tracks=tracks).tracks)
    assert not [w for w in track_warnings([m], Config().tz) if "dated it differently" in w]
    # the next day's drive of another hour: dated 2026-11-21 by its frames, but the log places none of them (the
    # track's own warning says so): nothing misplaced, no clash
    other = Config(frames={"camera_clock_offset_s": -86400 - 5 * 3600})
    (m,) = merge_track_uses(list(uses) + scan(d, Config(), tracks=tracks).tracks + scan(d, other, tracks=tracks).tracks)
    assert m.placed == 20 and not [w for w in track_warnings([m], Config().tz) if "dated it differently" in w], m


# ------------------------------------------------------------------------------------------------ bad files

def test_bad_csv_and_kml_files_warn_once_and_keep_good_frames(tmp_path, pts, original):
    """Each unusable file is one warning naming it and the reason; frames with their own GPS stay as they were."""
    names = sorted(original)[:12]
    d = no_gps_drive(tmp_path / "d", names, keep_gps=names[:6])
    p = pts[100:112]
    (d / "us-dates.csv").write_text("time,lat,lon\n" + "".join(
        f"{_iso(t, JST, '%m/%d/%Y %H:%M:%S')},{la},{lo}\n" for t, la, lo in p), encoding="utf-8")
    (d / "e7.csv").write_text("timestamp,lat,lon\n" + "".join(
        f"{int(t)},{int(la * 1e7)},{int(lo * 1e7)}\n" for t, la, lo in p), encoding="utf-8")
    (d / "time-of-day.csv").write_text("time,latitude,longitude\n" + "".join(
        f"{_iso(t, JST, '%H:%M:%S')},{la},{lo}\n" for t, la, lo in p), encoding="utf-8")
    (d / "route.kml").write_text('<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><LineString><coordinates>'
                                 + " ".join(f"{lo},{la},0" for _, la, lo in p)
                                 + "</coordinates></LineString></Placemark></kml>", encoding="utf-8")
    (d / "dates-only.kml").write_text(re.sub(r"<when>(\d{4}-\d\d-\d\d)T[^<]*</when>", r"<when>\1</when>", _kml(p)),
                                      encoding="utf-8")
    (d / "broken.kmz").write_bytes(b"PK\x03\x04 not really a zip")
    sc = scan(d, Config())
    warn: dict[str, list[str]] = {}
    for w in track_warnings(sc.tracks, Config().tz):
        warn.setdefault(Path(w.split(": ", 1)[0]).name, []).append(w)
    assert {k: len(v) for k, v in warn.items()} == {k: 1 for k in (
        "us-dates.csv", "e7.csv", "time-of-day.csv", "route.kml", "dates-only.kml", "broken.kmz")}
    assert "day and month order like 11/20/2026 is not guessed" in warn["us-dates.csv"][0]
    assert "unit not known" in warn["e7.csv"][0]
    assert "time not read (e.g. '09:00:00'" in warn["time-of-day.csv"][0]
    assert "a LineString has no times: it cannot place frames by time" in warn["route.kml"][0]
    assert "none of its 12 points has a time" in warn["dates-only.kml"][0]
    assert "not a KMZ (ZIP) archive" in warn["broken.kmz"][0]
    assert all("track file not used" in v[0] for v in warn.values())
    by = {f.name: f for f in sc.frames}
    assert not set(warn) & set(by)
    assert all(by[n].ok and by[n].position_source == "gps" for n in names[:6])
    assert all(by[n].reason.startswith("no_gps_fix") for n in names[6:])


def test_csv_rows_skipped_are_counted_not_lost(tmp_path, pts):
    """Unreadable rows among good ones: the good rows make the track, the others are one note with an example."""
    p = pts[:50]
    lines = [f"{_iso(t)}Z,{la:.7f},{lo:.7f}" for t, la, lo in p]
    lines[10] = "2026-13-45T99:00:00Z,36.7,137.2"
    lines[20] = f"{_iso(p[20, 0])}Z,,"
    path = tmp_path / "t.csv"
    path.write_text("time,lat,lon\n" + "\n".join(lines) + "\n\n", encoding="utf-8")
    tr = read_track(path)
    assert len(tr) == 48 and "2 of 50 rows skipped (1 time not read, e.g. '2026-13-45T99:00:00Z'" in tr.notes[0]


def test_track_option_messages(tmp_path):
    """A ``--track`` file of a kind the suffix names but that holds no track: the reason, not "not a track file"."""
    for name, data, why in [
        ("a.csv", "name,comment\nx,y\n".encode(), "no header row naming a time, a latitude and a longitude"),
        ("b.csv", b"time,lat,lon\n", "no rows under the CSV header"),
        ("c.csv", b"time,lat,lon\n\x82\xa0\x81\x20,1,2\n", "neither UTF-8 nor Shift_JIS"),
        ("d.kml", b'<kml xmlns="http://www.opengis.net/kml/2.2"><Document/></kml>', "no gx:Track"),
        ("e.kmz", _zip({"x.txt": "hi"}), "no .kml document in the KMZ archive"),
        ("f.kml", b"<gpx/>", "not a KML file (the XML root is <gpx>)"),
    ]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(TrackError) as e:
            read_track(tmp_path / name)
        assert why in e.value.reason, (name, e.value.reason)


def _zip(files: dict[str, str]) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in files.items():
            z.writestr(k, v)
    return buf.getvalue()


def test_kmz_document_that_is_no_kml_is_named_and_the_others_kept(tmp_path, pts):
    """A KMZ's documents are read one by one: one that is no KML is a note naming it, the others make the track;
    when none is usable the warning names each document and its reason."""
    path = tmp_path / "mixed.kmz"
    path.write_bytes(_kmz({"doc.kml": _kml(pts[:151]), "files/broken.kml": "<kml><Document>", "z.kml": _kml(pts[150:])}))
    tr = read_track(path)
    assert len(tr) == len(pts) and any(n.startswith("files/broken.kml: not XML") for n in tr.notes), tr.notes
    path.write_bytes(_kmz({"a.kml": "<gpx/>", "b.kml": "<kml><Document>"}))
    with pytest.raises(TrackError) as e:
        read_track(path)
    assert e.value.reason.startswith("a.kml: not a KML file (the XML root is <gpx>); b.kml: not XML"), e.value.reason


# ------------------------------------------------------------------------------------------------ Tokyo datum

def tokyo_csv(p, title: str = "車両運行記録 1号車 測地系：日本測地系", tokyo=None, column=None) -> bytes:
    """A cp932 fleet export in the Tokyo datum (positions by the inverse of the GIS formula, as an old unit writes
    them), its title line saying so. ``tokyo``: which rows are written in the Tokyo datum (default all; the others
    in WGS 84 as the track has them); ``column``: (header, each row's value) of a datum column after the position."""
    from test_datum import approx_to_tokyo

    tl, tn = approx_to_tokyo(p[:, 1], p[:, 2])
    if tokyo is not None:
        tl, tn = np.where(tokyo, tl, p[:, 1]), np.where(tokyo, tn, p[:, 2])
    extra = [f",{v}" for v in column[1]] if column else [""] * len(p)
    rows = [f"{_iso(t, JST, '%Y/%m/%d %H:%M:%S')},{la:.7f},{lo:.7f}{x}" for t, la, lo, x in zip(p[:, 0], tl, tn, extra)]
    head = "日時,緯度,経度" + (f",{column[0]}" if column else "")
    return (f"{title}\n{head}\n" + "\n".join(rows) + "\n").encode("cp932")


@pytest.mark.parametrize("title", ["車両運行記録 1号車 測地系：日本測地系", "# datum: Tokyo", "Tokyo Datum"])
def test_tokyo_datum_csv_is_converted_and_places_frames_as_the_wgs84_one(tmp_path, drive, pts, gpx_placed, title):
    """A fleet CSV in the Tokyo datum (refused before): converted to WGS 84 by the conversion EXIF fixes get, the
    frames land within 3 m of where the WGS 84 GPX places them (measured 2.1 m; unconverted they would be 437 m
    off); frames.csv's datum says tokyo, and the track's note says what was done (one line, not 'not used')."""
    (tmp_path / "fleet.csv").write_bytes(tokyo_csv(pts, title))
    tracks, uses = load_tracks([tmp_path / "fleet.csv"])
    assert tracks[0].datum == "tokyo" and any("converted to WGS 84 (EPSG:15484" in n for n in uses[0].notes)
    sc = scan(drive, Config(), tracks=tracks)
    by = {f.name: f for f in sc.frames if f.ok}
    assert set(by) == set(gpx_placed)
    off = [metres(by[n], gpx_placed[n]) for n in by]
    assert max(off) < 3.0, max(off)
    assert {f.position_source for f in by.values()} == {"track_file"} and {f.datum for f in by.values()} == {"tokyo"}
    (w,) = track_warnings(merge_track_uses(uses + sc.tracks), Config().tz)
    assert "Tokyo datum (日本測地系), converted to WGS 84" in w and "not used" not in w, w


def test_jgd2011_csv_is_not_taken_for_the_tokyo_datum(tmp_path, drive, pts, gpx_placed):
    """日本測地系2011 (JGD2011) and 日本測地系2000 contain 日本測地系 but are WGS 84 here: placed as the GPX (0 m)."""
    for title in ("測地系：日本測地系2011", "日本測地系2000 (JGD2000)"):
        rows = [f"{_iso(t, JST, '%Y/%m/%d %H:%M:%S')},{la:.7f},{lo:.7f}" for t, la, lo in pts]
        (tmp_path / "fleet.csv").write_bytes((f"{title}\n日時,緯度,経度\n" + "\n".join(rows) + "\n").encode("cp932"))
        tracks, _ = load_tracks([tmp_path / "fleet.csv"])
        assert tracks[0].datum == "" and not tracks[0].notes
        by = {f.name: f for f in scan_drive(drive, Config(), tracks=tracks) if f.ok}
        assert max(metres(by[n], gpx_placed[n]) for n in by) < 0.02


def test_patrol_run_with_a_tokyo_datum_track_notes_it_in_the_summary(tmp_path, pts, original):
    """`patrol run --track` a Tokyo-datum CSV: summary.json's entry for the track has the note, the frames are
    placed, frames.csv marks them tokyo."""
    import csv
    import json

    from test_cli import ok, patrol

    names = sorted(original)[:12]
    d = no_gps_drive(tmp_path / "d", names)
    (tmp_path / "fleet.csv").write_bytes(tokyo_csv(pts))
    ok(patrol("run", d, "--roads", TOYAMA / "roads.geojson", "--out", tmp_path / "out", "--track",
              tmp_path / "fleet.csv", "--no-report"))
    doc = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    (t,) = doc["tracks"]
    assert t["used"] and t["frames_placed"] == 12 and any("Tokyo datum" in n for n in t["notes"]), t
    rows = list(csv.DictReader(open(tmp_path / "out" / "frames.csv", encoding="utf-8")))
    assert [r["datum"] for r in rows if r["status"] == "ok"] == ["tokyo"] * 12


@pytest.mark.parametrize("order", ["wgs84 first", "tokyo first"])
def test_csv_with_both_datums_uses_its_wgs84_columns(tmp_path, drive, pts, gpx_placed, order):
    """A fleet export that gives each position twice, 緯度(世界測地系)/経度(世界測地系) and 緯度(日本測地系)/
    経度(日本測地系) (the header names the Tokyo datum for its second pair only): the WGS 84 columns are used as
    written, whichever pair comes first (before: the header's 日本測地系 converted the WGS 84 columns, 0.4 km off)."""
    from test_datum import approx_to_tokyo

    tl, tn = approx_to_tokyo(pts[:, 1], pts[:, 2])
    wgs, tky = ("緯度(世界測地系)", "経度(世界測地系)"), ("緯度(日本測地系)", "経度(日本測地系)")
    head = ["日時", *wgs, *tky] if order == "wgs84 first" else ["日時", *tky, *wgs]
    rows = []
    for (t, la, lo), a, b in zip(pts, tl, tn):
        w, k = (f"{la:.7f}", f"{lo:.7f}"), (f"{a:.7f}", f"{b:.7f}")
        rows.append(",".join([_iso(t, JST, '%Y/%m/%d %H:%M:%S'), *(w + k if order == "wgs84 first" else k + w)]))
    (tmp_path / "fleet.csv").write_bytes((",".join(head) + "\n" + "\n".join(rows) + "\n").encode("cp932"))
    tracks, _ = load_tracks([tmp_path / "fleet.csv"])
    assert tracks[0].datum == ""
    by = {f.name: f for f in scan_drive(drive, Config(), tracks=tracks) if f.ok}
    assert set(by) == set(gpx_placed)
    assert max(metres(by[n], gpx_placed[n]) for n in by) < 0.02


# the values a per-row datum column holds in the field, and whether the row's position is in the Tokyo datum
ROW_DATUMS = [("TOKYO", True), ("WGS84", False), ("日本測地系", True), ("世界測地系", False), ("JGD2011", False),
              ("日本", True), ("世界", False), ("Tokyo", True), ("旧日本測地系", True), ("", False)]


@pytest.mark.parametrize("header", ["測地系", "datum", "座標系"])
def test_csv_with_a_datum_column_converts_the_rows_it_marks_tokyo(tmp_path, drive, pts, gpx_placed, header):
    """A fleet export whose rows say their own datum (a 測地系/datum/座標系 column; units set to the Tokyo datum and
    to WGS 84 in one file), the title naming none: the rows marked TOKYO/日本測地系/日本/旧日本測地系 are converted,
    those marked WGS84/世界測地系/JGD2011/世界 or left empty are read as written, blocks of 10 rows by turns. Every
    frame lands within 3 m of the GPX's placement (measured 2.1 m; before, the column was ignored and the frames
    placed from Tokyo rows were ~437 m off); frames.csv's datum says tokyo where a converted row placed it."""
    vals = [ROW_DATUMS[(i // 10) % len(ROW_DATUMS)] for i in range(len(pts))]
    tokyo = np.array([k for _, k in vals])
    (tmp_path / "fleet.csv").write_bytes(tokyo_csv(pts, "車両運行記録 1号車", tokyo, (header, [v for v, _ in vals])))
    tracks, uses = load_tracks([tmp_path / "fleet.csv"])
    (tr,) = tracks
    assert tr.datum == "tokyo" and f"{int(tokyo.sum())} of {len(pts)} points in coordinates in the Tokyo datum" \
        in " ".join(uses[0].notes), uses[0].notes
    sc = scan(drive, Config(), tracks=tracks)
    by = {f.name: f for f in sc.frames if f.ok}
    assert set(by) == set(gpx_placed)
    off = {n: metres(by[n], gpx_placed[n]) for n in by}
    assert max(off.values()) < 3.0, max(off.values())
    # frame i is taken at track point 100 + i: tokyo where that row was converted, else as written
    row = {n: 100 + i for i, n in enumerate(sorted(gpx_placed))}
    assert [by[n].datum for n in sorted(by)] == ["tokyo" if tokyo[row[n]] else "" for n in sorted(by)]
    assert max(off[n] for n in by if not tokyo[row[n]]) < 0.02
    (w,) = track_warnings(merge_track_uses(uses + sc.tracks), Config().tz)
    assert "not known" not in w and "not used" not in w, w


def test_csv_datum_column_value_not_known_is_kept_with_one_warning(tmp_path, drive, pts, gpx_placed):
    """Values patrol does not know ('NAD27', a maker's code '1') are kept as written, not rejected (the frames stay
    usable; a GPS computes WGS 84), one warning naming the file, the column and the values; frames.csv's datum names
    the value. The rows marked TOKYO are converted as before."""
    vals = ["NAD27" if i % 30 < 10 else "1" if i % 30 < 20 else "TOKYO" for i in range(len(pts))]
    tokyo = np.array([v == "TOKYO" for v in vals])
    (tmp_path / "fleet.csv").write_bytes(tokyo_csv(pts, "車両運行記録", tokyo, ("測地系", vals)))
    tracks, uses = load_tracks([tmp_path / "fleet.csv"])
    sc = scan(drive, Config(), tracks=tracks)
    by = {f.name: f for f in sc.frames if f.ok}
    assert set(by) == set(gpx_placed) and max(metres(by[n], gpx_placed[n]) for n in by) < 3.0
    assert {f.datum for f in by.values()} == {"tokyo", "NAD27", "1"}
    (w,) = track_warnings(merge_track_uses(uses + sc.tracks), Config().tz)
    assert w.startswith(str(tmp_path / "fleet.csv")) and "not used" not in w, w
    n_unknown = sum(v != "TOKYO" for v in vals)
    assert f"datum column '測地系': {n_unknown} rows in a datum not known ('1', 'NAD27'), placed as if WGS 84" in w, w


# titles as fleet systems and conversion tools write them, and the datum the coordinates are IN by each
TITLES_WGS84 = ["日本測地系から世界測地系に変換済", "日本測地系→世界測地系 変換済み", "世界測地系(変換済み)",
                "converted from Tokyo datum to WGS84", "Tokyo datum converted to WGS84", "WGS84 (converted from Tokyo)",
                "世界測地系に変換（元データ：日本測地系）", "旧日本測地系の座標を世界測地系へ変換", "converted from Tokyo datum",
                "※日本測地系ではありません", "測地系：日本測地系2011"]
TITLES_TOKYO = ["日本測地系（未変換）", "世界測地系から日本測地系に変換", "測地系=TOKYO", "converted to Tokyo datum"]


@pytest.mark.parametrize("title", TITLES_WGS84 + TITLES_TOKYO)
def test_title_says_the_datum_the_coordinates_are_in_not_one_merely_named(tmp_path, drive, pts, gpx_placed, title):
    """A title naming a conversion is read for the datum converted TO (the one the coordinates are in), not the one
    converted FROM: '日本測地系から世界測地系に変換済' is WGS 84, placed as the GPX (0 m; before, its 日本測地系 made it
    converted a second time, 437 m off); '世界測地系から日本測地系に変換' is the Tokyo datum, converted (within 3 m)."""
    tokyo = title in TITLES_TOKYO
    (tmp_path / "fleet.csv").write_bytes(tokyo_csv(pts, title, np.full(len(pts), tokyo)))
    tracks, _ = load_tracks([tmp_path / "fleet.csv"])
    assert tracks[0].datum == ("tokyo" if tokyo else ""), title
    by = {f.name: f for f in scan_drive(drive, Config(), tracks=tracks) if f.ok}
    assert set(by) == set(gpx_placed)
    assert max(metres(by[n], gpx_placed[n]) for n in by) < (3.0 if tokyo else 0.02)


@pytest.mark.parametrize("title", ["測地系: 世界測地系 / 日本測地系", "WGS84・日本測地系 併記",
                                   "日本測地系→世界測地系 / 世界測地系→日本測地系"])
def test_title_naming_both_datums_unclearly_is_refused_naming_the_file(tmp_path, pts, original, title):
    """A title naming both datums without saying which the coordinates are in is not guessed: the file is one
    warning naming it and why (frames with their own GPS keep it; the others are not placed ~440 m off)."""
    names = sorted(original)[:12]
    d = no_gps_drive(tmp_path / "d", names, keep_gps=names[:6])
    (d / "fleet.csv").write_bytes(tokyo_csv(pts, title, np.zeros(len(pts), bool)))
    sc = scan(d, Config())
    (w,) = track_warnings(sc.tracks, Config().tz)
    assert w.startswith(str(d / "fleet.csv")) and "names both the Tokyo datum and WGS 84" in w \
        and "which one the coordinates are in is not clear" in w and "track file not used" in w, w
    by = {f.name: f for f in sc.frames}
    assert all(by[n].ok and by[n].position_source == "gps" for n in names[:6])
    assert all(by[n].reason.startswith("no_gps_fix") for n in names[6:])


def dtm_nmea(p, dtm: str, tokyo: bool, offsets: bool = False, order: str = "before", gga_only: bool = False) -> str:
    """An NMEA log of the track (GGA + RMC per point, as ``test_tracks.nmea_lines`` writes them) whose receiver
    sends ``$GPDTM,{dtm}`` with each epoch (``order``: before its fixes, as NMEA 0183 asks, or after them), the
    positions in the Tokyo datum (``tokyo``: by the GIS formula's inverse) or WGS 84. ``offsets``: the DTM carries
    each point's latitude/longitude offset of the local datum from WGS 84 in minutes (local = WGS 84 + offset)."""
    from types import SimpleNamespace

    from detector.geo import distance_bearing
    from test_datum import approx_to_tokyo
    from test_tracks import _nmea

    la, lo = approx_to_tokyo(p[:, 1], p[:, 2]) if tokyo else (p[:, 1], p[:, 2])
    d, b = distance_bearing(p[:-1, 1], p[:-1, 2], p[1:, 1], p[1:, 2])
    dt = np.diff(p[:, 0])
    speed = np.append(d / np.where(dt > 0, dt, 1) * 3.6, 0.0)
    course = np.append(b, b[-1])
    out = []
    for i, (t, a, o) in enumerate(zip(p[:, 0], la, lo)):
        fr = SimpleNamespace(time=datetime.fromtimestamp(t, timezone.utc), lat=a, lon=o, speed=speed[i],
                             heading=course[i])
        lines = [ln for ln in nmea_lines([fr]) if not gga_only or "GGA," in ln]
        fields = dtm
        if offsets:
            dy, dx = (a - p[i, 1]) * 60, (o - p[i, 2]) * 60
            fields = dtm.format(f"{abs(dy):.6f},{'N' if dy >= 0 else 'S'}", f"{abs(dx):.6f},{'E' if dx >= 0 else 'W'}")
        out += ([_nmea(f"GPDTM,{fields}")] + lines) if order == "before" else (lines + [_nmea(f"GPDTM,{fields}")])
    return "\r\n".join(out) + "\r\n"


@pytest.mark.parametrize("case", ["TOY named", "TOY after the fixes", "TOY, GGA only", "TOKYO named",
                                  "999 with offsets", "W84"])
def test_nmea_dtm_sentences_say_the_datum(tmp_path, drive, pts, gpx_placed, case):
    """An NMEA log whose $GPDTM says the receiver's datum: local datum TOY (the IHO S-60 / NIMA code of the Tokyo
    datum, subdivision A Japan) or TOKYO with positions in the Tokyo datum are converted, within 3 m of the GPX's
    placement (before: read as WGS 84, 437 m off), also with the DTM after each epoch's fixes and in a GGA-only log;
    999 (user defined) with the receiver's offsets in minutes has them taken off (within 0.5 m: NMEA's 0.0001'
    positions); W84 (Trimble's '$GPDTM,W84,,0.0,N,0.0,W,0.0,W84') is read as written, with no note."""
    dtm = {"TOY named": "TOY,A,,,,,,W84", "TOY after the fixes": "TOY,A,,,,,,W84", "TOY, GGA only": "TOY,A,,,,,,W84",
           "TOKYO named": "TOKYO,,,,,,,W84", "999 with offsets": "999,,{},{},0.0,W84",
           "W84": "W84,,0.0,N,0.0,W,0.0,W84"}[case]
    tokyo = case != "W84"
    name = f"{_iso(pts[0, 0], JST, '%Y%m%d_%H%M%S')}.nmea" if "GGA" in case else "gps.nmea"
    (tmp_path / name).write_text(dtm_nmea(pts, dtm, tokyo, offsets="999" in case,
                                          order="after" if "after" in case else "before", gga_only="GGA" in case))
    tracks, uses = load_tracks([tmp_path / name])
    converted = tokyo and "999" not in case
    assert tracks[0].datum == ("tokyo" if converted else ""), uses[0].notes
    by = {f.name: f for f in scan_drive(drive, Config(), tracks=tracks) if f.ok}
    assert set(by) == set(gpx_placed)
    off = max(metres(by[n], gpx_placed[n]) for n in by)
    assert off < (3.0 if converted else 0.5), off
    assert {f.datum for f in by.values()} == {"tokyo" if converted else ""}
    notes = " ".join(uses[0].notes)
    assert ("NMEA DTM sentences name the Tokyo datum" in notes) == converted, notes
    assert ("the receiver's latitude/longitude offsets from WGS 84 (4" in notes) == ("999" in case), notes
    assert case != "W84" or "DTM" not in notes


def test_nmea_dtm_local_datum_not_known_is_kept_with_one_warning(tmp_path, drive, pts, gpx_placed):
    """A DTM naming a local datum without offsets ('999' user defined left empty, as a receiver whose datum is not
    set writes it) or offsets beyond 2' (not a datum shift) is kept as written with one warning naming the file and
    the datum; frames.csv's datum names it."""
    text = dtm_nmea(pts[:150], "999,,,,,,,W84", False) + dtm_nmea(pts[150:], "999,,2.324525,N,1.499476,W,1.365,W84",
                                                                   False)
    (tmp_path / "gps.nmea").write_text(text)
    tracks, uses = load_tracks([tmp_path / "gps.nmea"])
    sc = scan(drive, Config(), tracks=tracks)
    by = {f.name: f for f in sc.frames if f.ok}
    assert set(by) == set(gpx_placed) and max(metres(by[n], gpx_placed[n]) for n in by) < 0.5
    assert {f.datum for f in by.values()} == {"999"}
    (w,) = track_warnings(merge_track_uses(uses + sc.tracks), Config().tz)
    assert w.startswith(str(tmp_path / "gps.nmea")) and "not used" not in w, w
    assert f"NMEA DTM sentences name a local datum not known, without usable offsets from WGS 84 ('999': {len(pts)} " \
           "fixes): placed as if WGS 84" in w, w
