"""Fuzz: parse_exif_tags on random exifread-like tag dicts, read_exif / scan_drive on random and mutated
files. Nothing may raise; whatever comes out must be sane."""

from __future__ import annotations

import math
import tempfile
from datetime import datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import EXIF_DIR, TOYAMA
from detector.config import Config
from detector.frames import REASONS, ExifInfo, parse_exif_tags, read_exif, reason_code, scan_drive

FAST = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FILES = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class FakeRatio:
    def __init__(self, num, den):
        self.num, self.den = num, den

    def __repr__(self):
        return f"{self.num}/{self.den}"


class FakeTag:
    def __init__(self, values):
        self.values = values


KEYS = ["GPS GPSLatitude", "GPS GPSLongitude", "GPS GPSLatitudeRef", "GPS GPSLongitudeRef", "GPS GPSTimeStamp",
        "GPS GPSDate", "GPS GPSImgDirection", "GPS GPSImgDirectionRef", "GPS GPSTrack", "GPS GPSTrackRef",
        "GPS GPSSpeed", "GPS GPSSpeedRef", "EXIF DateTimeOriginal", "EXIF OffsetTimeOriginal", "EXIF OffsetTime",
        "EXIF DateTimeDigitized", "Image DateTime", "Image Orientation", "Image Make", "Image Model",
        "Image Software", "EXIF ExifImageWidth", "EXIF ExifImageLength"]

ints = st.one_of(st.integers(-5, 100), st.integers(-2**63, 2**64), st.sampled_from([0, 1, 59, 60, 90, 180, 2**32 - 1]))
ratios = st.one_of(
    st.builds(FakeRatio, ints, ints),
    st.builds(FakeRatio, st.sampled_from([0, 1, 36, 137]), st.just(0)),
    st.builds(FakeRatio, st.floats(allow_nan=True, allow_infinity=True), ints),
    st.builds(FakeRatio, st.none(), st.none()),
)
texts = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["N", "S", "E", "W", "K", "M", "N", "T", "", "\x00", "2026:11:20", "1999:99:99 99:99:99",
                     "2026:11:20 09:00:00", "0000:00:00 00:00:00", "+09:00", "-05:00", "+99:99", "2026:02:30",
                     "9999:12:31 23:59:59", "1970:01:01 00:00:00"]),
)
scalars = st.one_of(ratios, ints, st.floats(allow_nan=True, allow_infinity=True), texts, st.none(),
                    st.binary(max_size=20), st.booleans())
value_lists = st.one_of(st.lists(scalars, max_size=5), scalars, st.binary(max_size=40), st.dictionaries(texts, ints, max_size=2))
tags_values = st.one_of(st.builds(FakeTag, value_lists), value_lists, st.none())
tag_dicts = st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=12)), tags_values, max_size=14)


def _sane(info: ExifInfo) -> None:
    assert isinstance(info, ExifInfo)
    if info.lat is not None or info.lon is not None:
        assert info.lat is not None and info.lon is not None
        assert -90 <= info.lat <= 90 and -180 <= info.lon <= 180
        assert not (info.lat == 0 and info.lon == 0)
    if info.time is not None:
        assert isinstance(info.time, datetime) and info.time.utcoffset() is not None
    if info.heading is not None:
        assert 0 <= info.heading < 360
    if info.speed is not None:
        assert math.isfinite(info.speed) and info.speed >= 0
    assert 1 <= info.orientation <= 8
    # robust by construction, not only by the catch-all: no part of the parser raised internally
    assert not any(n.startswith("exif parse error") for n in info.notes), info.notes
    for s in (info.make, info.model, info.software):
        assert isinstance(s, str) and "\x00" not in s and len(s) <= 64


@FAST
@given(tag_dicts)
def test_parse_exif_tags_never_raises(tags):
    _sane(parse_exif_tags(tags))


@FAST
@given(lat=st.lists(ratios, min_size=0, max_size=4), lon=st.lists(ratios, min_size=0, max_size=4),
       lat_ref=texts, lon_ref=texts, ts=st.lists(ratios, max_size=4), date=texts, dto=texts, off=texts,
       tz=st.sampled_from([None, "Asia/Tokyo", "UTC", "America/Argentina/Buenos_Aires", "Not/AZone"]))
def test_parse_gps_and_time_never_raise(lat, lon, lat_ref, lon_ref, ts, date, dto, off, tz):
    tags = {"GPS GPSLatitude": FakeTag(lat), "GPS GPSLongitude": FakeTag(lon),
            "GPS GPSLatitudeRef": FakeTag(lat_ref), "GPS GPSLongitudeRef": FakeTag(lon_ref),
            "GPS GPSTimeStamp": FakeTag(ts), "GPS GPSDate": FakeTag(date),
            "EXIF DateTimeOriginal": FakeTag(dto), "EXIF OffsetTimeOriginal": FakeTag(off)}
    _sane(parse_exif_tags(tags, tz))


def test_parse_exif_tags_on_non_dicts():
    for junk in (None, [], "x", 3, object()):
        _sane(parse_exif_tags(junk))  # type: ignore[arg-type]


def _seeds() -> list[bytes]:
    out = []
    for folder in (EXIF_DIR, TOYAMA / "toyama-2026-11-p1"):
        if folder.is_dir():
            for p in sorted(folder.iterdir())[:40]:
                if p.is_file() and p.stat().st_size:
                    out.append(p.read_bytes()[:6000])
    return out or [b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM\x00*\x00\x00\x00\x08"]


SEEDS = _seeds()
_TMP = Path(tempfile.mkdtemp(prefix="exif-fuzz-"))


def _write(data: bytes, name: str = "f.jpg") -> Path:
    p = _TMP / name
    p.write_bytes(data)
    return p


@FILES
@given(st.binary(max_size=2048))
def test_read_exif_random_bytes(data):
    _sane(read_exif(_write(data)))


@FILES
@given(seed=st.sampled_from(range(len(SEEDS))), flips=st.lists(st.tuples(st.integers(0, 5999), st.integers(0, 255)),
       max_size=12), cut=st.integers(0, 6000))
def test_read_exif_and_scan_mutated_headers(seed, flips, cut):
    data = bytearray(SEEDS[seed])
    for pos, byte in flips:
        if pos < len(data):
            data[pos] = byte
    data = bytes(data[: max(cut, 1)])
    folder = _TMP / "drive"
    folder.mkdir(exist_ok=True)
    p = folder / "x.jpg"
    p.write_bytes(data)
    _sane(read_exif(p))
    (fr,) = scan_drive(folder, Config())
    assert fr.status in ("ok", "rejected")
    if fr.status == "rejected":
        assert reason_code(fr.reason) in REASONS, fr.reason
