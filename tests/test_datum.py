"""Positions in Japan's old Tokyo datum (旧日本測地系, EPSG:4301): EXIF GPSMapDatum TOKYO and Tokyo-datum track files
are converted to WGS 84 (detector/datum.py).

References, independent of pyproj:

* GSI's published coordinates of the Japanese geodetic origin (日本経緯度原点, 測量法施行令): Tokyo datum
  35°39'17.5148"N 139°44'40.5020"E, JGD2000 35°39'29.1572"N 139°44'28.8759"E;
* the worked example shipped with BLconverter, a TKY2JGD front end (TKY2JGD.par; "within ~0.005″"):
  35°43'18.0000"N 138°44'36.1809"E (Tokyo) -> 35°43'29.55634"N 138°44'24.90110"E (JGD2000), Yamanashi;
* the approximate affine formula common in Japanese GIS practice (lat_w = lat_t − 0.00010695·lat_t +
  0.000017464·lon_t + 0.0046017, lon_w = lon_t − 0.000046038·lat_t − 0.000083043·lon_t + 0.010040): a cross-check,
  not truth; its inverse writes the sample drive's photos "as a Tokyo-datum GPS would", so the test of the
  pipeline does not round-trip through the conversion it tests.

Real data: the sample drive's pass 1 (its GPS EXIF rewritten into the Tokyo datum, pixels untouched) and the real
Kubicka track as a Tokyo-datum CSV.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from badinputs import dms_rationals, rewrite_gps
from conftest import TOYAMA, need
from detector.config import Config
from detector.datum import classify, tokyo_to_wgs84
from detector.frames import datum_warnings, read_frames_csv, scan, scan_drive, write_frames_csv
from detector.geo import distance_bearing
from test_tracks import P1, metres, original  # noqa: F401

_A = np.array([[1 - 0.00010695, 0.000017464], [-0.000046038, 1 - 0.000083043]])
_C = np.array([0.0046017, 0.010040])


def approx_to_wgs84(lat, lon):
    """The approximate formula of Japanese GIS practice, Tokyo -> WGS 84."""
    w = _A @ np.vstack([np.asarray(lat, float).ravel(), np.asarray(lon, float).ravel()]) + _C[:, None]
    return w[0], w[1]


def approx_to_tokyo(lat, lon):
    """Its exact inverse (it is affine): WGS 84 -> the Tokyo datum, as an old GPS unit set to Tokyo writes it."""
    t = np.linalg.solve(_A, np.vstack([np.asarray(lat, float).ravel(), np.asarray(lon, float).ravel()]) - _C[:, None])
    return t[0], t[1]


def dms(d, m, s):
    return d + m / 60 + s / 3600


def m_between(lat1, lon1, lat2, lon2):
    return distance_bearing(np.asarray(lat1), np.asarray(lon1), np.asarray(lat2), np.asarray(lon2))[0]


# ------------------------------------------------------------------------------------------------ the conversion

@pytest.mark.parametrize("tokyo, jgd, within_m", [
    ((dms(35, 39, 17.5148), dms(139, 44, 40.5020)), (dms(35, 39, 29.1572), dms(139, 44, 28.8759)), 1.5),  # origin
    ((dms(35, 43, 18.0), dms(138, 44, 36.1809)), (dms(35, 43, 29.55634), dms(138, 44, 24.90110)), 2.0),  # Yamanashi
])
def test_conversion_matches_published_tky2jgd_results(tokyo, jgd, within_m):
    """Against GSI's grid conversion (TKY2JGD) at two published points: ~460 m shift, off by at most 1.5 / 2 m
    (measured 0.8 and 1.4 m; EPSG states 9 m for all of Japan)."""
    la, lo = tokyo_to_wgs84(*tokyo)
    assert m_between(*tokyo, *jgd) > 450
    assert m_between(la, lo, *jgd) < within_m


def test_conversion_agrees_with_the_gis_formula_on_the_sample_drive(original):
    """Over every position of pass 1 (Toyama, as a Tokyo datum unit writes it): the pyproj operation and the GIS
    formula agree within 3 m (measured 2.0-2.1 m), both moving the points ~435 m; vectorised, NaN passes through."""
    lat = np.array([f.lat for f in original.values()])
    lon = np.array([f.lon for f in original.values()])
    tl, tn = approx_to_tokyo(lat, lon)
    la, lo = tokyo_to_wgs84(tl, tn)
    al, an = approx_to_wgs84(tl, tn)
    d = m_between(la, lo, al, an)
    assert d.max() < 3.0, d.max()
    assert (m_between(la, lo, tl, tn) > 420).all() and (m_between(la, lo, tl, tn) < 450).all()
    assert m_between(la, lo, lat, lon).max() < 3.0  # the round trip through the formula's inverse
    nl, nn = tokyo_to_wgs84([tl[0], np.nan], [np.nan, tn[0]])
    assert np.isnan(nl).all() and np.isnan(nn).all()
    assert tokyo_to_wgs84([], [])[0].shape == (0,)


@pytest.mark.parametrize("text, kind", [
    ("WGS-84", "wgs84"), ("WGS-84   ", "wgs84"), ("WGS84", "wgs84"), ("WGS 84", "wgs84"), ("WGS 1984", "wgs84"),
    ("JGD2000", "wgs84"), ("JGD2011", "wgs84"), ("ITRF2008", "wgs84"), ("ITRF94", "wgs84"), ("", "wgs84"),
    ("   ", "wgs84"), ("\x00\x00", "wgs84"), ("日本測地系2011", "wgs84"), ("世界測地系", "wgs84"),
    ("TOKYO", "tokyo"), ("Tokyo", "tokyo"), ("TOKYO\x00\x00", "tokyo"), (b"TOKYO   \x00", "tokyo"),
    ("Tokyo Datum", "tokyo"), ("日本測地系", "tokyo"), ("旧日本測地系", "tokyo"), ("EPSG:4301", "tokyo"),
    ("NAD27", "unknown"), ("WGS72", "unknown"), ("Pulkovo 1942", "unknown"),
])
def test_datum_names_seen_in_the_wild(text, kind):
    assert classify(text)[0] == kind


def test_exif_samples_with_a_datum_read_it(tmp_path):
    """Real files: the Nikon DSCN samples write 'WGS-84   ' (padded), exiftool's GPS sample 'WGS84': read, as is."""
    from detector.frames import read_exif

    d = need(TOYAMA.parent.parent / "data" / "exif")
    assert read_exif(d / "DSCN0010.jpg").datum == "WGS-84"
    assert read_exif(d / "exiftool-GPS.jpg").datum == "WGS84"
    assert read_exif(d / "Canon_40D.jpg").datum == ""
    fr = {f.name: f for f in scan_drive(d, Config())}
    assert fr["DSCN0010.jpg"].position_source == "gps" and fr["DSCN0010.jpg"].datum == ""


# ------------------------------------------------------------------------------------------------ real drive

def tokyo_drive(folder: Path, datum="TOKYO", names=None) -> Path:
    """Pass 1 with each photo's GPS rewritten as a GPS unit set to the Tokyo datum writes it (GPSMapDatum
    ``datum``, a str or a function of the frame index; the position by the GIS formula's inverse); the broken files
    copied as they are."""
    src = need(TOYAMA / P1)
    folder.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(sorted(src.iterdir())):
        if names is not None and p.name not in names:
            continue
        if not p.name.startswith("IMG_2026"):
            (folder / p.name).write_bytes(p.read_bytes())
            continue

        def edit(gps, i=i):
            if 2 not in gps:  # a frame the phone wrote without a fix (interpolated between its neighbours)
                return
            lat = gps[2][0] + gps[2][1] / 60 + gps[2][2] / 3600
            lon = gps[4][0] + gps[4][1] / 60 + gps[4][2] / 3600
            tl, tn = approx_to_tokyo(float(lat), float(lon))
            gps[2], gps[4] = dms_rationals(tl[0]), dms_rationals(tn[0])
            gps[18] = datum(i) if callable(datum) else datum

        rewrite_gps(p, folder / p.name, edit)
    return folder


def test_tokyo_datum_photos_are_placed_where_the_originals_are(tmp_path, original):
    """Pass 1 written in the Tokyo datum (GPSMapDatum 'TOKYO', 'Tokyo   ', 'TOKYO' + NULs by turns): every frame
    lands within 3 m of the original's position (measured at most 2.1 m: the GIS formula vs the EPSG operation);
    read as WGS 84, as before, they were ~435 m off. position_source stays gps, frames.csv's datum says tokyo (also
    after a round trip through frames.csv), and the drive gets one warning naming the conversion and files."""
    variants = ["TOKYO", "Tokyo   ", "TOKYO\x00\x00\x00"]
    d = tokyo_drive(tmp_path / P1, lambda i: variants[i % 3])
    sc = scan(d, Config())
    by = {f.name: f for f in sc.frames if f.ok}
    assert set(by) == set(original)
    off = np.array([metres(by[n], original[n]) for n in sorted(original)])
    assert off.max() < 3.0, off.max()
    raw = {n: approx_to_tokyo(original[n].lat, original[n].lon) for n in original}  # what the EXIF says
    assert min(m_between(raw[n][0][0], raw[n][1][0], original[n].lat, original[n].lon) for n in original) > 400
    assert [f.position_source for f in by.values()] == [original[n].position_source for n in by]
    assert {f.datum for f in by.values()} == {"tokyo"}  # the interpolated ones between converted fixes too
    # headings: the EXIF ones as they were; those from the bearing to the neighbours (turned ~0.001°) alike
    assert np.allclose([f.heading for f in by.values()], [original[n].heading for n in by], atol=0.01)
    write_frames_csv(sc.frames, tmp_path / "frames.csv")
    rows = list(csv.DictReader(open(tmp_path / "frames.csv", encoding="utf-8")))
    assert {r["datum"] for r in rows if r["status"] == "ok"} == {"tokyo"}
    assert {r["datum"] for r in rows if r["status"] != "ok"} == {""}
    assert {f.datum for f in read_frames_csv(tmp_path / "frames.csv") if f.ok} == {"tokyo"}
    (w,) = datum_warnings(sc.frames)
    assert w.startswith(f"{P1}: 99 frames with GPS in the Tokyo datum") and "EPSG:15484" in w and "and 96 more" in w


def test_wgs84_and_unknown_datums_are_kept_as_written(tmp_path, original):
    """'WGS-84   ' / 'JGD2011' photos are placed as before (0 m); an unknown datum ('NAD27') is kept as written
    (not rejected: the frames would be lost, and a camera's unlisted label is mostly WGS 84) with one warning per
    drive naming the datum and the files; frames.csv's datum column shows it."""
    names = sorted(original)[:10]
    src = need(TOYAMA / P1)
    d = tmp_path / "d"
    for i, n in enumerate(names):
        rewrite_gps(src / n, d / n, lambda gps, i=i: gps.__setitem__(18, ["WGS-84   ", "JGD2011", "NAD27"][i % 3]))
    by = {f.name: f for f in scan_drive(d, Config())}
    assert all(metres(by[n], original[n]) < 0.01 for n in names)
    assert {by[n].datum for n in names} == {"", "NAD27"}
    (w,) = datum_warnings(by.values())
    assert w.startswith("d: 3 frames with GPS in a datum not known, 'NAD27'") and names[2] in w and names[8] in w


def test_interpolated_frame_between_converted_fixes_says_so(tmp_path, original):
    """A frame without its own fix between two Tokyo-datum fixes is interpolated between the converted positions
    (within 3 m of where the original drive puts it) and marked tokyo too."""
    names = sorted(original)[10:15]
    d = tokyo_drive(tmp_path / "d", names=names)
    rewrite_gps(d / names[2], d / names[2], lambda gps: [gps.pop(k, None) for k in (1, 2, 3, 4, 18)])
    by = {f.name: f for f in scan_drive(d, Config())}
    f = by[names[2]]
    assert f.position_source == "interpolated" and f.datum == "tokyo"
    assert metres(f, original[names[2]]) < 3.0


def test_patrol_run_on_tokyo_datum_photos_finds_the_original_candidates(tmp_path, original):
    """`patrol run` on pass 1 written in the Tokyo datum finds the candidates of the original drive (same class
    within 5 m, same count), the warning in summary.json; read as WGS 84 they would be ~435 m off, on other roads."""
    from test_cli import ok, patrol

    roads = need(TOYAMA / "roads.geojson")
    d = tokyo_drive(tmp_path / P1)
    ok(patrol("run", d, "--roads", roads, "--out", tmp_path / "out", "--no-report"))
    ok(patrol("run", need(TOYAMA / P1), "--roads", roads, "--out", tmp_path / "orig", "--no-report"))
    import geopandas as gpd

    a = gpd.read_file(tmp_path / "orig" / "candidates.geojson").to_crs(6675)
    b = gpd.read_file(tmp_path / "out" / "candidates.geojson").to_crs(6675)
    assert len(a) == len(b)
    dist = [b[b["class"] == c["class"]].distance(c.geometry).min() for _, c in a.iterrows()]
    assert max(dist) < 5.0, dist
    doc = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert any("Tokyo datum" in w and "99 frames" in w for w in doc["warnings"]), doc["warnings"]
    rows = list(csv.DictReader(open(tmp_path / "out" / "frames.csv", encoding="utf-8")))
    assert sum(r["datum"] == "tokyo" for r in rows) == 100
