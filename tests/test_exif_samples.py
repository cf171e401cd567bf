"""Every real file in shared/data/exif parsed with exact expectations (values read with exifread by hand)."""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from detector.config import Config
from detector.frames import read_exif, reason_code, scan_drive
from conftest import EXIF_DIR

# name -> expected ExifInfo fields. lat/lon in degrees (None: no fix), time ISO (None: no time).
EXPECTED: dict[str, dict] = {
    "45-gps_ifd.jpg": dict(lat=None, time="2012-06-23T06:55:49+09:00", time_source="exif_tz",
                           make="Polyphony Digital Inc.", model="Gran Turismo 5", software="PMB Service Uploader"),
    # GPS without any timestamp; no DateTimeOriginal either -> the IFD0 DateTime; magnetic image direction
    "67-0_length_string.jpg": dict(lat=51.025, lon=7 + 35 / 60 + 31 / 3600, time="2016-09-12T10:05:31+09:00",
                                   time_source="exif_tz", heading=291.39, heading_ref="M", make="samsung"),
    "Canon_40D.jpg": dict(lat=None, gps_problem="", time="2008-05-30T15:56:01+09:00", make="Canon",
                          exif_width=100, exif_height=68),
    # GPS date a day after DateTimeOriginal: GPS time of day kept, date corrected to the camera's day
    "DSCN0010.jpg": dict(lat=43 + 28 / 60 + 2.814 / 3600, lon=11 + 53 / 60 + 6.45599999 / 3600,
                         time="2008-10-22T14:27:07.240000+00:00", time_source="gps_date_fixed", heading=None),
    "DSCN0021.jpg": dict(lat=43 + 28 / 60 + 1.49399999 / 3600, lon=11 + 53 / 60 + 4.33799999 / 3600,
                         time="2008-10-22T14:36:47.230000+00:00", time_source="gps_date_fixed"),
    # HEIC: GPS position but no GPS time -> DateTimeOriginal with its offset; western hemisphere
    "IMG_5195.HEIC": dict(lat=39 + 3 / 60 + 4.84 / 3600, lon=-(94 + 17 / 60 + 19.58 / 3600),
                          time="2021-04-11T15:47:53-05:00", time_source="exif_offset",
                          heading=1107164 / 3181, heading_ref="M", speed=17726 / 34601, make="Apple",
                          model="iPhone 11 Pro Max", software="14.4.2"),
    # southern hemisphere, fractional minutes
    "Kodak_CX7530.jpg": dict(lat=-(11139 / 500) / 60, lon=36 + (677 / 200) / 60, time="2005-08-13T09:47:23+09:00",
                             make="EASTMAN KODAK COMPANY"),
    # no offset: wall time 18:18 (BST) vs GPS 17:17Z is a real zone offset -> GPS time; heading true
    "exiftool-Apple.jpg": dict(lat=53 + 22 / 60 + 58.25 / 3600, lon=-(1 + 27 / 60 + 24.04 / 3600),
                               time="2016-09-28T17:17:58.650000+00:00", time_source="gps",
                               heading=137162 / 401, heading_ref="T", speed=0.0, model="iPhone 7"),
    # GPS time without date -> DateTimeOriginal in the configured zone
    "exiftool-GPS.jpg": dict(lat=54 + 59.38 / 60, lon=-(1 + 54.85 / 60), time="2002-07-13T15:58:28+09:00",
                             time_source="exif_tz"),
    # camera 10:58 local (New York), GPS 14:58Z same date: consistent (-4 h), GPS kept
    "exiftool-GoPro.jpg": dict(lat=40 + 39 / 60 + 30.3091199 / 3600, lon=-(73 + 59 / 60 + 36.0754799 / 3600),
                               time="2017-10-03T14:58:14+00:00", time_source="gps"),
    "exiftool-Google.jpg": dict(lat=40 + 24 / 60 + 0.25 / 3600, lon=-(3 + 42 / 60 + 52.73 / 3600),
                                time="2023-10-06T20:52:10+00:00", time_source="gps", heading=164.0, heading_ref="M",
                                speed=None),
    # all-zero rationals (0/0): no fix, no exception; time from DateTime
    "exiftool-InfiRay.jpg": dict(lat=None, gps_problem="latitude zero denominator", time="2023-02-08T12:24:35+09:00",
                                 speed=None, make="Infisense", model="P2_USB_IR"),
    "no_exif.jpg": dict(lat=None, time=None, heading=None, speed=None, orientation=1, make="", model="",
                        software="", gps_problem="", exif_width=None),
    "pillow-empty_gps_ifd.jpg": dict(lat=None, gps_problem="", orientation=6, time="2020-07-27T14:46:48+09:00",
                                     make="Xiaomi", model="Redmi Note 9S"),
    # bogus GPS date (1999:99:99) and a lone latitude: ignored; DateTimeOriginal (2099) used as written
    "pillow-exif_gps.jpg": dict(lat=None, gps_problem="latitude or longitude missing",
                                time="2099-09-29T10:10:10+09:00", time_source="exif_tz", make="Make",
                                model="XXX-XXX", software="PIL"),
    "pillow-exif_gps_zero_denominator.jpg": dict(lat=None, gps_problem="latitude or longitude missing", time=None),
    "portrait_4.jpg": dict(lat=None, time=None, orientation=4, exif_width=450, exif_height=600),
}

# scan_drive over the folder with the default config: name -> (status or reason code, width, height)
SCAN = {
    "45-gps_ifd.jpg": ("no_gps_fix", 1600, 900),
    "67-0_length_string.jpg": ("ok", 4032, 2012),
    "Canon_40D.jpg": ("no_gps_fix", 100, 68),
    "DSCN0010.jpg": ("ok", 640, 480),
    "DSCN0021.jpg": ("ok", 640, 480),
    "IMG_5195.HEIC": ("ok", 2566, 3313),  # the HEIF primary image, transforms applied by libheif
    "Kodak_CX7530.jpg": ("ok", 100, 78),
    "exiftool-Apple.jpg": ("too_small", 8, 8),
    "exiftool-GPS.jpg": ("ok", 120, 80),
    "exiftool-GoPro.jpg": ("too_small", 8, 8),
    "exiftool-Google.jpg": ("too_small", 8, 8),
    "exiftool-InfiRay.jpg": ("too_small", 8, 8),
    "no_exif.jpg": ("no_gps_fix", 322, 466),
    "pillow-empty_gps_ifd.jpg": ("too_small", 10, 10),
    "pillow-exif_gps.jpg": ("too_small", 8, 8),
    "pillow-exif_gps_zero_denominator.jpg": ("too_small", 1, 1),
    "portrait_4.jpg": ("no_gps_fix", 450, 600),
}

N_FILES = 17


def _listing() -> list[str]:
    return sorted(p.name for p in EXIF_DIR.iterdir()) if EXIF_DIR.is_dir() else []


def test_listing_is_what_we_expect(exif_dir):
    names = sorted(p.name for p in exif_dir.iterdir())
    assert len(names) == N_FILES, "a file was added or removed in data/exif: add its expectations here"
    assert set(names) == set(EXPECTED) == set(SCAN)


@pytest.mark.parametrize("name", _listing() or sorted(EXPECTED))
def test_sample_file(exif_dir, name):
    assert name in EXPECTED, f"no expectations for new file {name}"
    info = read_exif(exif_dir / name, "Asia/Tokyo")
    exp = EXPECTED[name]
    if exp.get("lat", "x") is None:
        assert info.lat is None and info.lon is None
    elif "lat" in exp:
        assert info.lat == pytest.approx(exp["lat"], abs=1e-9)
        assert info.lon == pytest.approx(exp["lon"], abs=1e-9)
    if "time" in exp:
        if exp["time"] is None:
            assert info.time is None
        else:
            want = datetime.fromisoformat(exp["time"])
            assert info.time is not None and info.time.tzinfo is not None
            assert info.time == want, (info.time, want, info.notes)
            assert info.time.utcoffset() is not None
    for key in ("time_source", "heading_ref", "make", "model", "software", "orientation", "gps_problem",
                "exif_width", "exif_height"):
        if key in exp:
            assert getattr(info, key) == exp[key], key
    for key in ("heading", "speed"):
        if key in exp:
            if exp[key] is None:
                assert getattr(info, key) is None
            else:
                assert getattr(info, key) == pytest.approx(exp[key], abs=1e-6), key


def test_southern_and_western_signs(exif_dir):
    assert read_exif(exif_dir / "Kodak_CX7530.jpg").lat < 0
    assert read_exif(exif_dir / "IMG_5195.HEIC").lon < 0
    assert read_exif(exif_dir / "exiftool-Apple.jpg").lon < 0


def test_offsetless_time_follows_configured_zone(exif_dir):
    a = read_exif(exif_dir / "Canon_40D.jpg", "Asia/Tokyo").time
    b = read_exif(exif_dir / "Canon_40D.jpg", "Europe/Berlin").time
    assert a.replace(tzinfo=None) == b.replace(tzinfo=None) == datetime(2008, 5, 30, 15, 56, 1)
    assert (b - a).total_seconds() == 7 * 3600  # CEST vs JST


def test_scan_sample_folder(exif_dir):
    frames = scan_drive(exif_dir, Config())
    assert [f.name for f in frames if f.status == "ok"] == [
        "exiftool-GPS.jpg", "Kodak_CX7530.jpg", "DSCN0010.jpg", "DSCN0021.jpg", "67-0_length_string.jpg",
        "IMG_5195.HEIC"]  # ordered by time
    got = {f.name: (f.status if f.status == "ok" else reason_code(f.reason), f.width, f.height) for f in frames}
    assert got == SCAN
    for f in frames:
        if f.time is not None:
            assert f.time.utcoffset().total_seconds() == 9 * 3600  # expressed in the configured zone
        if f.status == "ok":
            assert f.position_source == "gps" and not math.isnan(f.lat)
    # frames.csv says where each time came from (exif_tz: no offset in the file, the config's zone assumed)
    for f in frames:
        want = EXPECTED.get(f.name, {}).get("time_source")
        if f.time is not None and want:
            assert f.time_source == want, f.name
    assert {f.time_source for f in frames if f.time is not None} >= {"exif_tz", "gps"}
    # a magnetic image direction is used, and frames.csv says it was magnetic
    heic = next(f for f in frames if f.name == "IMG_5195.HEIC")
    assert heic.heading_source == "exif_magnetic" and heic.heading == pytest.approx(1107164 / 3181, abs=1e-3)
