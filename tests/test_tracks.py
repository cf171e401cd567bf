"""Track files (GPX / NMEA 0183) position frames from cameras without GPS in EXIF.

Real data: copies of the sample drive's pass-1 frames with their GPS EXIF removed (the pixels untouched: only the
EXIF segment is rewritten), and track files written from the real 1 Hz Kubicka track the sample drive follows
(``kubicka/00000037``: frame i of pass 1 is track point 100 + i, with the track's own times and gaps) or from the
original frames' EXIF (NMEA with course and speed). Placed positions are checked against the original EXIF ones.
"""

from __future__ import annotations

import json
import re
import math
import shutil
from datetime import datetime, timedelta, timezone
from functools import reduce
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROADS, TOYAMA, need
from detector.config import Config, load_config
from detector.errors import ConfigError
from detector.frames import scan, scan_drive
from detector.geo import distance_bearing as _distance_bearing
from detector.tracks import TrackError, read_track

P1 = "toyama-2026-11-p1"
KUBICKA = ROADS / "kubicka" / "00000037" / "00000037.track"
FIRST_POINT = 100  # the Kubicka point of pass 1's first frame


# ------------------------------------------------------------------------------------------------ helpers

def strip_gps(src: Path, dst: Path) -> None:
    """``src`` without its GPS IFD (a camera that writes none): the EXIF APP1 segment is rebuilt, every other byte
    (the image data) is copied as is, so detection sees the same pixels."""
    data = src.read_bytes()
    assert data[2:4] == b"\xff\xe1" and data[6:12] == b"Exif\x00\x00", src
    seg_len = int.from_bytes(data[4:6], "big")
    exif = Image.open(src).getexif()
    new = Image.Exif()
    for k, v in exif.items():
        if k not in (0x8825, 0x8769):  # GPS IFD out; the Exif IFD (times) copied below
            new[k] = v
    new.get_ifd(0x8769).update(exif.get_ifd(0x8769))
    payload = new.tobytes()
    dst.write_bytes(data[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + data[4 + seg_len:])


@pytest.fixture(scope="module")
def original():
    """The original pass-1 frames (with GPS) by name."""
    return {f.name: f for f in scan_drive(need(TOYAMA / P1), Config()) if f.ok}


def no_gps_drive(folder: Path, names=None, keep_gps=()) -> Path:
    """Copies of pass 1 (all files, or ``names``) with the GPS removed, except the frames in ``keep_gps``."""
    src = need(TOYAMA / P1)
    folder.mkdir(parents=True, exist_ok=True)
    for p in sorted(src.iterdir()):
        if names is not None and p.name not in names:
            continue
        if p.name.startswith("IMG_2026") and p.name not in keep_gps:
            strip_gps(p, folder / p.name)
        else:
            shutil.copy(p, folder / p.name)
    return folder


def kubicka_points(t0: datetime) -> np.ndarray:
    """(utc epoch s, lat, lon) of the real Kubicka track, timed so that point 100 is ``t0``."""
    tr = np.loadtxt(need(KUBICKA), ndmin=2)
    return np.column_stack([t0.timestamp() + tr[:, 2] - tr[FIRST_POINT, 2], tr[:, 1], tr[:, 0]])


def write_gpx(path: Path, pts: np.ndarray, version: str = "1.1", split: tuple = (), offset: str = "Z") -> Path:
    """A GPX file of the points (utc s, lat, lon), one track segment, or one from each index in ``split`` on."""
    ns = "http://www.topografix.com/GPX/1/1" if version == "1.1" else "http://www.topografix.com/GPX/1/0"
    tz = timezone(timedelta(hours=9)) if offset == "+09:00" else timezone.utc
    segs = []
    for chunk in np.split(pts, list(split)):
        rows = "".join(
            f'<trkpt lat="{la:.7f}" lon="{lo:.7f}"><ele>12.5</ele>'
            f"<time>{datetime.fromtimestamp(t, tz).isoformat().replace('+00:00', 'Z')}</time></trkpt>\n"
            for t, la, lo in chunk.tolist())
        segs.append(f"<trkseg>\n{rows}</trkseg>")
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="{version}" creator="test" xmlns="{ns}">'
                    f"<trk><name>patrol</name>{''.join(segs)}</trk></gpx>\n", encoding="utf-8")
    return path


def _nmea(body: str) -> str:
    return f"${body}*{reduce(lambda a, c: a ^ ord(c), body, 0):02X}"


def _dm(v: float, pos: str, neg: str, width: int) -> tuple[str, str]:
    a = abs(v)
    d = int(a)
    return f"{d:0{width}d}{(a - d) * 60:07.4f}", pos if v >= 0 else neg


def nmea_lines(frames, shift_s: float = 0.0) -> list[str]:
    """RMC + GGA sentences at each frame's time (+ ``shift_s``), from its EXIF position, course and speed."""
    out = []
    for f in frames:
        t = f.time.astimezone(timezone.utc) + timedelta(seconds=shift_s)
        lat, ns = _dm(f.lat, "N", "S", 2)
        lon, ew = _dm(f.lon, "E", "W", 3)
        hms = f"{t:%H%M%S}.00"
        out.append(_nmea(f"GPGGA,{hms},{lat},{ns},{lon},{ew},1,09,0.9,12.5,M,35.0,M,,"))
        out.append(_nmea(f"GNRMC,{hms},A,{lat},{ns},{lon},{ew},{f.speed / 1.852:.2f},{f.heading:.2f},{t:%d%m%y},,,A"))
    return out


def metres(a, b) -> float:
    return _distance_bearing(a.lat, a.lon, b.lat, b.lon)[0]


# ------------------------------------------------------------------------------------------------ GPX

def test_gpx_places_frames_between_track_points(tmp_path, original):
    """A GPX 1.1 track of every other real Kubicka point (2 s apart, the track's own gaps kept): the frames are
    placed between the points around them, within metres of where their own GPS put them; the frame in the
    track's 31 s gap is rejected with the gap named; the GPX itself is no frame."""
    drive = no_gps_drive(tmp_path / "d")
    first = original[min(original)].time
    pts = kubicka_points(first)
    write_gpx(drive / "logger.gpx", pts[::2])
    sc = scan(drive, Config())
    by = {f.name: f for f in sc.frames}
    assert "logger.gpx" not in by
    assert {by[n].reason.split(":")[0] for n in ("Thumbs.db", "notes.txt")} == {"not_an_image"}
    placed = [by[n] for n in original if by[n].ok]
    assert len(placed) == 99 and all(f.position_source == "track_file" for f in placed)
    err = np.array([metres(f, original[f.name]) for f in placed])
    assert np.median(err) < 0.5 and err.max() < 8.0, (np.median(err), err.max())
    assert all(f.time_source == "exif_offset" for f in placed)  # camera time, as the frames say
    head = np.array([abs((f.heading - original[f.name].heading + 180) % 360 - 180) for f in placed
                     if not math.isnan(f.heading)])
    assert len(head) >= 95 and np.median(head) < 5 and {f.heading_source for f in placed} <= {"track_file", ""}
    missed = [f for f in sc.frames if f.name in original and not f.ok]
    assert len(missed) == 1 and missed[0].reason.startswith("no_gps_fix")
    assert "track logger.gpx: in a gap of 31 s in the track (frames.track_max_gap_s 10)" in missed[0].reason
    # no frame of this drive has its own fix: the reason says so, not "no fixed frames within 5 s on both sides"
    assert missed[0].reason.startswith("no_gps_fix: no GPS position in it nor in any frame beside it; track "), missed[0].reason
    (use,) = sc.tracks
    assert (use.kind, use.points, use.placed, use.needed, use.problem) == ("gpx", (len(pts) + 1) // 2, 99, 100, "")


def test_gpx_segments_offsets_and_gpx10(tmp_path, original):
    """GPX 1.0, times with a +09:00 offset, the track in 3 segments: same positions; a frame between two
    segments is not interpolated across them."""
    names = sorted(original)[:40]
    drive = no_gps_drive(tmp_path / "d", names)
    pts = kubicka_points(original[names[0]].time)[FIRST_POINT - 5:FIRST_POINT + 45]
    pts = np.delete(pts, [19], axis=0)  # the point of frame 14: between segments after the split below
    gpx = write_gpx(tmp_path / "t.gpx", pts, version="1.0", split=(19, 34), offset="+09:00")
    tr = read_track(gpx)
    assert len(tr) == len(pts) and len(set(tr.seg.tolist())) == 3
    frames = scan_drive(drive, Config(), tracks=[tr])
    ok = [f for f in frames if f.ok]
    assert all(metres(f, original[f.name]) < 0.5 for f in ok)
    bad = [f for f in frames if f.name in original and not f.ok]
    assert [f.name for f in bad] == [names[14]] and "between two track segments" in bad[0].reason


def test_frames_own_gps_wins_and_track_in_subfolder_only(tmp_path, original):
    """A frame's own EXIF fix wins over the track; a track file in a subfolder applies to that folder only."""
    names = sorted(original)[:20]
    drive = tmp_path / "d"
    no_gps_drive(drive / "cam", names[:10])
    no_gps_drive(drive / "phone", names[10:], keep_gps=names[10:15])
    far = kubicka_points(original[names[0]].time)
    far[:, 1] += 0.01  # a track 1.1 km north: a frame placed from it is easy to tell
    write_gpx(drive / "cam" / "cam.gpx", far)
    by = {f.name: f for f in scan_drive(drive, Config())}
    for n in names[:10]:
        f = by[f"cam/{n}"]
        assert f.position_source == "track_file" and 1000 < metres(f, original[n]) < 1200
    for n in names[10:15]:
        f = by[f"phone/{n}"]
        assert f.position_source == "gps" and metres(f, original[n]) < 0.01
    assert not any(by[f"phone/{n}"].ok for n in names[15:])  # no track in reach, no fix around: rejected


def test_track_in_a_folder_without_frames_places_the_drives_other_frames(tmp_path, original):
    """A dashcam card: its log in ``GPS/`` (an NMEA ``.LOG``), the recordings in ``Movie/F/``. The log's folder holds
    no frames, so it places the frames no other track reaches; a folder with a track of its own keeps it."""
    names = sorted(original)[:20]
    drive = tmp_path / "card"
    no_gps_drive(drive / "Movie" / "F", names[:10])
    no_gps_drive(drive / "cam", names[10:])
    (drive / "GPS").mkdir()
    (drive / "GPS" / "20261120_090000.LOG").write_text(
        "\r\n".join(nmea_lines([original[n] for n in names])) + "\r\n", encoding="ascii")
    far = kubicka_points(original[names[0]].time)
    far[:, 1] += 0.01  # 1.1 km north
    write_gpx(drive / "cam" / "cam.gpx", far)
    sc = scan(drive, Config())
    by = {f.name: f for f in sc.frames}
    for n in names[:10]:
        f = by[f"Movie/F/{n}"]
        assert f.ok and f.position_source == "track_file" and metres(f, original[n]) < 1.0, (n, f.reason)
    for n in names[10:]:
        f = by[f"cam/{n}"]
        assert f.position_source == "track_file" and 1000 < metres(f, original[n]) < 1200
    log = next(u for u in sc.tracks if u.path.endswith(".LOG"))
    assert (log.frames, log.placed) == (10, 10)


# ------------------------------------------------------------------------------------------------ NMEA

def test_nmea_rmc_course_speed_checksums_and_void(tmp_path, original):
    """An NMEA log as a dashcam writes it (RMC + GGA, a time stamp before each sentence): position, course and
    speed come from RMC; a sentence with a wrong checksum, a void (V) RMC and one whose GGA says no fix are skipped,
    and their frames interpolated between the neighbouring fixes; the broken line is counted in a warning."""
    names = sorted(original)[:30]
    drive = no_gps_drive(tmp_path / "d", names)
    lines = nmea_lines([original[n] for n in names])
    lines[2 * 5 + 1] = lines[2 * 5 + 1][:-2] + ("00" if not lines[2 * 5 + 1].endswith("00") else "11")  # frame 5
    lines[2 * 8 + 1] = _nmea(lines[2 * 8 + 1][1:-3].replace(",A,", ",V,", 1))  # frame 8: void
    lines[2 * 12] = _nmea(lines[2 * 12][1:-3].replace(",1,09,", ",0,00,", 1))  # frame 12: GGA without fix
    (drive / "GPS0001.LOG").write_text("".join(f"[{i:06d}] {ln}\r\n" for i, ln in enumerate(lines)), encoding="ascii")
    sc = scan(drive, Config())
    by = {f.name: f for f in sc.frames}
    assert "GPS0001.LOG" not in by  # found by its content, not listed as a frame
    for i, n in enumerate(names):
        f, o = by[n], original[n]
        assert f.ok and f.position_source == "track_file", (n, f.reason)
        assert metres(f, o) < (8.0 if i in (5, 8, 12) else 0.2)  # NMEA: 0.0001 minute = 0.19 m
        if i not in (5, 8, 12):
            assert abs((f.heading - o.heading + 180) % 360 - 180) < 0.01 and f.heading_source == "track_file"
            assert abs(f.speed - o.speed) < 0.02
    (use,) = sc.tracks
    assert use.kind == "nmea" and use.points == len(names) - 3 and use.placed == len(names)
    assert "1 broken sentences skipped (bad checksum or fields)" in use.notes


def test_nmea_gga_without_fix_drops_only_its_own_epoch(tmp_path, original):
    """A GGA with fix quality 0 drops the RMC of its own epoch (before or after it), not every RMC of that time of
    day: a log of two days has 09:00:05 twice, and the second day's fix at that time is good."""
    frames = [original[n] for n in sorted(original)[:10]]
    day1, day2 = nmea_lines(frames), nmea_lines(frames, shift_s=86400.0)
    day1[2 * 3] = _nmea(day1[2 * 3][1:-3].replace(",1,09,", ",0,00,", 1))  # GGA before its RMC
    day2[2 * 6] = _nmea(day2[2 * 6][1:-3].replace(",1,09,", ",0,00,", 1))
    day2[2 * 6], day2[2 * 6 + 1] = day2[2 * 6 + 1], day2[2 * 6]  # RMC, then its GGA
    path = tmp_path / "two days.nmea"
    path.write_text("\n".join(day1 + day2) + "\n", encoding="ascii")
    tr = read_track(path)
    t = [f.time.timestamp() for f in frames]
    want = [x for i, x in enumerate(t) if i != 3] + [x + 86400 for i, x in enumerate(t) if i != 6]
    assert tr.t.tolist() == pytest.approx(want, rel=0, abs=0.01)


# ------------------------------------------------------------------------------------------------ clock offset

def test_camera_clock_offset(tmp_path, original):
    """A camera clock 10 s fast (frames.camera_clock_offset_s: 10): frames land where they were only with the
    setting; the frames' times are corrected too."""
    names = sorted(original)[30:60]
    drive = no_gps_drive(tmp_path / "d", names)
    (drive / "gps.nmea").write_text("\n".join(nmea_lines([original[n] for n in names], shift_s=-10)) + "\n")
    # without the setting: the frames the track covers land 10 s of driving away, the others find no point
    plain = {f.name: f for f in scan_drive(drive, Config()) if f.ok}
    assert plain and min(metres(plain[n], original[n]) for n in plain) > 50
    cfg = Config.model_validate({"frames": {"camera_clock_offset_s": 10}})
    fixed = {f.name: f for f in scan_drive(drive, cfg)}
    for n in names:
        assert fixed[n].ok and metres(fixed[n], original[n]) < 0.2
        assert fixed[n].time == original[n].time - timedelta(seconds=10)


@pytest.mark.parametrize("value, word", [("1e9", "less than or equal"), (".inf", "finite"), ("abc", "number")])
def test_camera_clock_offset_validated(tmp_path, value, word):
    p = tmp_path / "c.yaml"
    p.write_text(f"frames:\n  camera_clock_offset_s: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "frames.camera_clock_offset_s" in str(e.value) and word in str(e.value)
    p.write_text("frames:\n  camera_clock_offset_s: －１２．５\n  track_max_gap_s: 30\n", encoding="utf-8")
    assert load_config(p).frames.camera_clock_offset_s == -12.5


# ------------------------------------------------------------------------------------------------ bad files

def test_bad_track_files_warn_and_keep_good_frames(tmp_path, original):
    """Not XML, no time stamps, NMEA with only broken lines, a track of another day: one warning each naming the
    file and the reason; none is a frame; frames with their own GPS are all kept."""
    from detector.frames import track_warnings

    names = sorted(original)[:12]
    drive = no_gps_drive(tmp_path / "d", names, keep_gps=names[:6])
    (drive / "notxml.gpx").write_text("this is not a GPX file\n", encoding="utf-8")
    (drive / "notime.gpx").write_text('<gpx xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
                                      '<trkpt lat="36.68" lon="137.23"/><trkpt lat="36.69" lon="137.23"/>'
                                      "</trkseg></trk></gpx>", encoding="utf-8")
    broken = [ln[:-2] + "ZZ" for ln in nmea_lines([original[n] for n in names])]
    (drive / "broken.nmea").write_text("\n".join(broken) + "\n", encoding="ascii")
    (drive / "empty.gpx").write_bytes(b"")
    write_gpx(drive / "yesterday.gpx", kubicka_points(original[names[0]].time - timedelta(days=1)))
    sc = scan(drive, Config())
    assert not {f.name for f in sc.frames} & {"notxml.gpx", "notime.gpx", "broken.nmea", "empty.gpx", "yesterday.gpx"}
    warn = {Path(w.split(": ", 1)[0]).name: w for w in track_warnings(sc.tracks, Config().tz)}
    assert set(warn) == {"notxml.gpx", "notime.gpx", "broken.nmea", "empty.gpx", "yesterday.gpx"}
    assert "track file not used: not XML" in warn["notxml.gpx"]
    assert "track file not used: no time stamps on its track points" in warn["notime.gpx"]
    assert "track file not used: no valid fixes" in warn["broken.nmea"] and "24 sentences broken (bad checksum" in warn["broken.nmea"]
    assert "track file not used: empty file" in warn["empty.gpx"]
    assert "covers none of the 12 frames" in warn["yesterday.gpx"] and "2026-11-19" in warn["yesterday.gpx"]
    by = {f.name: f for f in sc.frames}
    assert all(by[n].ok and by[n].position_source == "gps" for n in names[:6])
    for n in names[6:]:
        assert by[n].reason.startswith("no_gps_fix") and "track yesterday.gpx: " in by[n].reason


def test_track_reader_messages(tmp_path):
    for name, text, why in [
        ("a.gpx", "<kml/>", "not a GPX file (the XML root is <kml>)"),
        ("b.gpx", '<gpx xmlns="http://www.topografix.com/GPX/1/1"/>', "no track points"),
        ("c.gpx", '<!DOCTYPE gpx [<!ENTITY a "aaaa">]><gpx>&a;</gpx>', "entity"),
        ("d.nmea", _nmea("GPGSV,3,1,11,03,03,111,00") + "\n", "no RMC or GGA fixes"),
    ]:
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(TrackError) as e:
            read_track(tmp_path / name)
        assert why in e.value.reason


# ------------------------------------------------------------------------------------------------ patrol run

def test_a_drive_without_gps_names_every_track_format_it_takes(tmp_path, original):
    """A drive of photos without GPS and no track file stops with exit 3 and says a track is needed; it named only
    "GPX, or NMEA in a .LOG/.TXT/.nmea", so the office whose logger app writes CSV (or KML) took it that patrol does not
    read those (README: track files are GPX, NMEA, CSV/TSV, KML/KMZ). Real data: 5 frames of pass 1, GPS removed."""
    from test_cli import assert_user_error, patrol

    drive = no_gps_drive(tmp_path / P1, sorted(original)[:5])
    line = assert_user_error(patrol("run", drive, "--roads", need(TOYAMA / "roads.geojson"), "--out", tmp_path / "out"),
                             3, "no usable frames", "no_gps_fix 5")
    assert "no GPS track file (GPX, NMEA, a logger's CSV, KML or KMZ) in the drive nor given with --track" in line, line


def test_patrol_run_with_track_matches_original_drive(tmp_path, original):
    """`patrol run` on the sample pass without GPS EXIF, with `--track` GPX from the real track: the candidates are
    those of the original drive (same class within 5 m, as many within 2); summary.json names the track and how
    many frames it placed; a `--track` that does not exist is refused before any work (exit 3)."""
    from test_cli import ok, patrol

    roads = need(TOYAMA / "roads.geojson")
    drive = no_gps_drive(tmp_path / P1)
    gpx = write_gpx(tmp_path / "phone-logger.gpx", kubicka_points(original[min(original)].time))
    r = patrol("run", drive, "--roads", roads, "--out", tmp_path / "out", "--track", gpx, "--no-report")
    ok(r)
    flat = re.sub(r"[\s│┃]", "", r.stdout)  # the console table wraps long paths at the terminal's width
    assert "placedfromtrack" in flat and "phone-logger.gpx:GPX,677points:100framesplaced" in flat, r.stdout
    doc = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert doc["frames"]["used"] == 100 and doc["frames"]["placed_from_track"] == 100
    assert doc["tracks"] == [{"file": str(gpx), "format": "gpx", "points": 677, "used": True, "problem": None,
                              "frames_placed": 100, "notes": []}]
    ok(patrol("run", need(TOYAMA / P1), "--roads", roads, "--out", tmp_path / "orig", "--no-report"))
    import geopandas as gpd

    a = gpd.read_file(tmp_path / "orig" / "candidates.geojson").to_crs(6675)
    b = gpd.read_file(tmp_path / "out" / "candidates.geojson").to_crs(6675)
    assert abs(len(a) - len(b)) <= 2
    for _, c in a.iterrows():
        same = b[b["class"] == c["class"]]
        assert same.distance(c.geometry).min() < 5.0, c["candidate_id"]
    # resumed: the frames stage is skipped, the track's line is still in the summary
    again = patrol("run", drive, "--roads", roads, "--out", tmp_path / "out", "--track", gpx, "--no-report")
    assert json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))["tracks"] == doc["tracks"]
    assert "frames" in json.loads((tmp_path / "out" / "summary.json").read_text())["skipped_stages"], again.stdout
    from test_cli import assert_user_error

    assert_user_error(patrol("run", drive, "--roads", roads, "--out", tmp_path / "x", "--track", tmp_path / "no.gpx"),
                      3, "no.gpx", "track file not found")


def test_run_summary_shows_a_track_path_normalised(tmp_path, original, capsys):
    """`--track rt/../kubicka37.gpx` (a path as a script builds it): the run summary's tracks line and a track's
    warning name the file as it is, ``…/kubicka37.gpx``, not ``…/rt/../kubicka37.gpx``; the track still places the
    drive's frames (matching and the record use the path as given)."""
    import cli
    from detector.pipeline import RunSummary, scan_drives

    names = sorted(original)[:12]
    drive = no_gps_drive(tmp_path / "d", names)
    write_gpx(tmp_path / "kubicka37.gpx", kubicka_points(original[names[0]].time))
    write_gpx(tmp_path / "yesterday.gpx", kubicka_points(original[names[0]].time - timedelta(days=1)))
    (tmp_path / "rt").mkdir()
    given = [tmp_path / "rt" / ".." / "kubicka37.gpx", tmp_path / "rt" / ".." / "yesterday.gpx"]
    s = RunSummary(out=str(tmp_path / "out"))
    frames = scan_drives([drive], Config(), tmp_path / "out", given, s)
    assert sum(f.ok and f.position_source == "track_file" for f in frames) == 12
    assert sorted(u.path for u in s.tracks) == sorted(str(p) for p in given)  # the record as given
    (warn,) = [w for w in s.warnings if "yesterday" in w]
    assert warn.startswith(f"{tmp_path / 'yesterday.gpx'}: the track covers none of the 12 frames"), warn
    cli._print_summary(s, "run")
    flat = re.sub(r"[\s│┃]", "", capsys.readouterr().out)  # the console table wraps long paths
    assert re.sub(r"\s", "", f"{tmp_path / 'kubicka37.gpx'}:GPX,") in flat, flat
    assert re.sub(r"\s", "", f"{tmp_path / 'yesterday.gpx'}:GPX,") in flat, flat
    assert "/../" not in flat and "rt/.." not in flat, flat
