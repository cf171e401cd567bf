"""Segment condition per segment and per bin (detector/segments.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString

from detector.config import Config
from detector.segments import segment_condition, write_segments_geojson

CRS = "EPSG:32653"  # UTM 53N (Toyama)
X0, Y0 = 500_000.0, 4_060_000.0


@pytest.fixture
def cfg():
    return Config()


def net(*lines):
    import geopandas as gpd

    return gpd.GeoDataFrame({"segment_id": [f"s{k}" for k in range(len(lines))],
                             "road_name": [f"road {k}" for k in range(len(lines))]},
                            geometry=[LineString([(X0 + a, Y0 + b) for a, b in ln]) for ln in lines], crs=CRS)


def cands(rows):
    return pd.DataFrame([{"class": c, "segment_id": s, "chainage_m": ch, "severity": sev} for c, s, ch, sev in rows])


def frames_along(x_from, x_to, step=2.0, y=3.0, heading=90.0):
    x = np.arange(x_from, x_to + 1e-9, step)
    return pd.DataFrame({"x": X0 + x, "y": Y0 + y, "heading": heading, "status": "ok", "drive": "d1"})


CANDS = [("D00", "s0", 5.0, 10), ("D00", "s0", 15.0, 20), ("D40", "s0", 25.0, 90), ("D20", "s0", 199.9, 40),
         ("D10", "s0", 205.0, 5), ("D40", "nope", 3.0, 1)]


def by(out, level):
    return out[out.level == level].set_index("bin_index")


def test_counts_bins_and_condition_exact(cfg):
    out = segment_condition(net([(0, 0), (205, 0)]), cands(CANDS), frames_along(-20, 225), cfg)
    assert set(out.level) == {"segment", "bin20", "bin100"}
    seg = by(out, "segment").loc[-1]
    assert (seg.n_D00, seg.n_D10, seg.n_D20, seg.n_D40, seg.n_total) == (2, 1, 1, 1, 5)
    assert seg.length_m == pytest.approx(205) and seg.surveyed_m == pytest.approx(205) and seg.valid
    assert seg.damage_index == pytest.approx(100 * 11 / 205) and seg.condition == 3
    assert seg.severity_max == 90
    b20 = by(out, "bin20")
    assert len(b20) == 10  # round(205 / 20) bins; the last takes the remainder
    assert b20.loc[9, "from_m"] == 180 and b20.loc[9, "to_m"] == 205 and b20.loc[9, "length_m"] == 25
    assert list(b20.n_total) == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert list(b20.condition) == [4, 5, 1, 1, 1, 1, 1, 1, 1, 4]  # 10, 25, 0, ..., 16 per 100 m
    assert b20.loc[9, "damage_index"] == pytest.approx(400 / 25)
    assert b20.geometry.length.round(6).tolist() == b20.length_m.tolist()
    assert b20.loc[1].geometry.coords[0] == pytest.approx((X0 + 20, Y0))
    b100 = by(out, "bin100")
    assert list(b100.from_m) == [0, 100] and list(b100.to_m) == [100, 205]
    assert list(b100.condition) == [3, 2]  # 7 per 100 m; 4 per 105 m


def test_coverage_first_half_only(cfg):
    out = segment_condition(net([(0, 0), (205, 0)]), cands(CANDS), frames_along(0, 100), cfg)
    half = np.sqrt(15 ** 2 - 3 ** 2)
    b100 = by(out, "bin100")
    assert b100.loc[0, "valid"] and b100.loc[0, "surveyed_m"] == pytest.approx(100)
    assert not b100.loc[1, "valid"] and b100.loc[1, "surveyed_m"] == pytest.approx(half, abs=0.01)
    assert pd.isna(b100.loc[1, "condition"]) and b100.loc[1, "n_total"] == 2  # counted, but not rated
    b20 = by(out, "bin20")
    assert b20.valid.tolist() == [True] * 6 + [False] * 4
    assert b20.condition.isna().tolist() == [False] * 6 + [True] * 4
    seg = by(out, "segment").loc[-1]
    assert seg.surveyed_m == pytest.approx(100 + half, abs=0.01) and seg.valid


def test_unsurveyed_roads_are_never_good(cfg):
    # s0 driven; s1 (far away) has a candidate but no frame; s2 has nothing: omitted
    # s3 crosses s0 at x=50: frames driving east do not survey it (heading), except the crossing itself
    n = net([(0, 0), (205, 0)], [(0, 500), (100, 500)], [(0, 900), (100, 900)], [(50, -100), (50, 100)])
    c = cands([("D40", "s1", 50.0, 99)])
    out = segment_condition(n, c, frames_along(0, 205), cfg)
    assert set(out.segment_id) == {"s0", "s1"}
    s1 = out[out.segment_id == "s1"]
    assert (~s1.valid).all() and s1.condition.isna().all() and (s1.surveyed_m == 0).all()
    assert by(out[out.segment_id == "s1"], "segment").loc[-1, "n_D40"] == 1
    # without headings every road near a frame counts, so the cross street is partly surveyed
    f = frames_along(0, 205).drop(columns="heading")
    out2 = segment_condition(n, c, f, cfg)
    s3 = by(out2[out2.segment_id == "s3"], "segment").loc[-1]
    assert s3.surveyed_m == pytest.approx(2 * 15, abs=0.01) and not s3.valid  # y = 3 +- 15


def test_rejected_frames_and_repeated_positions_do_not_count(cfg):
    f = frames_along(0, 205)
    f.loc[f.x > X0 + 100, "status"] = "rejected"
    standing = pd.concat([f[f.x == X0 + 50]] * 30)  # a standing vehicle
    out = segment_condition(net([(0, 0), (205, 0)]), None, pd.concat([f, standing]), cfg)
    seg = by(out, "segment").loc[-1]
    assert seg.surveyed_m == pytest.approx(100 + np.sqrt(15 ** 2 - 3 ** 2), abs=0.01)
    assert seg.n_total == 0 and seg.condition == 1


def test_thresholds_configurable(cfg):
    c2 = cfg.model_copy(deep=True)
    c2.segments.thresholds = [20.0, 30.0, 40.0, 50.0]
    out = segment_condition(net([(0, 0), (205, 0)]), cands(CANDS), frames_along(-20, 225), c2)
    assert list(by(out, "bin20").condition) == [1, 2, 1, 1, 1, 1, 1, 1, 1, 1]
    with pytest.raises(ValueError):
        c2.segments.thresholds = [5.0, 2.0, 10.0, 20.0]


def test_write_geojson_rfc7946(tmp_path, cfg):
    out = segment_condition(net([(0, 0), (205, 0)]), cands(CANDS), frames_along(0, 100), cfg)
    p = tmp_path / "segments.geojson"
    write_segments_geojson(out, p)
    d = json.loads(p.read_text(encoding="utf-8"))
    assert d["type"] == "FeatureCollection" and "crs" not in d and len(d["features"]) == len(out)
    lon, lat = d["features"][0]["geometry"]["coordinates"][0]
    assert 134 < lon < 136 and 36 < lat < 37.5  # UTM 53N false easting -> 135 E
    invalid = [f for f in d["features"] if not f["properties"]["valid"]]
    assert invalid and all(f["properties"]["condition"] is None for f in invalid)
    assert all(isinstance(f["properties"]["condition"], int) for f in d["features"] if f["properties"]["valid"])
    # 診断区分 as condition: null where not valid, a class where valid (the sizes unknown: n_no_estimate, rate 0)
    assert all(f["properties"]["diagnosis"] is None for f in invalid)
    assert {f["properties"]["diagnosis"] for f in d["features"] if f["properties"]["valid"]} == {"I"}
    assert sum(f["properties"]["n_no_estimate"] for f in d["features"] if f["properties"]["level"] == "segment") == 5
    assert not list(tmp_path.glob(".*tmp"))


def test_real_toyama_only_segments_near_the_drive(toyama, cfg, tmp_path):
    import geopandas as gpd

    from detector.detections import read_detections_csv

    roads = gpd.read_file(toyama / "roads.geojson").to_crs(CRS)
    roads["road_name"] = ""
    det = read_detections_csv(toyama / "toyama-2026-11-p1.oracle.csv")
    fr = pd.DataFrame({"image": det.image, "lat": det.lat, "lon": det.lon, "heading": det.heading,
                       "status": "ok", "drive": det.drive}).drop_duplicates("image")
    out = segment_condition(roads, None, fr, cfg)
    seg = out[out.level == "segment"]
    pts = gpd.GeoSeries(gpd.points_from_xy(fr.lon, fr.lat), crs=4326).to_crs(CRS)
    track = shapely.union_all(pts.values)
    dist = shapely.distance(seg.geometry.values, track)
    assert 0 < len(seg) < 60 and len(roads) > 10_000
    assert (dist <= 15 + 1e-6).all()  # nothing surveyed away from the drive
    valid = seg[seg.valid]
    assert len(valid) >= 3
    # the surveyed length is about the driven length (100 s of driving, a few hundred metres at most)
    driven = float(shapely.length(LineString(np.c_[shapely.get_x(pts.values), shapely.get_y(pts.values)])))
    assert 0.5 * driven < seg.surveyed_m.sum() < 2.0 * driven + 200
    assert (valid.condition == 1).all()  # no candidates given: surveyed and no damage
    # segments.geojson: an unnamed road is null (as in candidates.geojson and the registry), not ""
    write_segments_geojson(out, tmp_path / "segments.geojson")
    feats = json.loads((tmp_path / "segments.geojson").read_text(encoding="utf-8"))["features"]
    assert feats and all(f["properties"]["road_name"] is None for f in feats)
    assert all(f["properties"]["segment_id"] for f in feats)


def crack_cands(rows):
    """(class, chainage, est_width_m, est_length_m) on s0."""
    return pd.DataFrame([{"class": c, "segment_id": "s0", "chainage_m": ch, "severity": 1.0, "est_width_m": w,
                          "est_length_m": ln} for c, ch, w, ln in rows])


def test_crack_rate_diagnosis_and_mci_exact(cfg):
    """ひび割れ率 per row: the crack area of its damages (a linear crack 0.3 m² per metre of its length: D00 along the
    road, D10 across it; D20 and D40 their whole estimated area) over surveyed_m × segments.survey_width_m (3 m);
    診断区分 I below 20 %, II from 20 %, III from 40 %; MCI1 = 10 - 2.23 C^0.3; a damage without a size counted
    in n_no_estimate and not in the area; the diagnosis null where the row is not valid."""
    from detector.segments import crack_mci

    rows = [("D00", 5.0, 0.3, 10.0),   # 0.3 * 10 = 3.0 m²
            ("D10", 15.0, 3.0, 0.4),   # 0.3 * 3 (across) = 0.9 m²
            ("D20", 25.0, 3.0, 4.0),   # 12 m²: 12 / (20 * 3) = 20.0 %, II at the bound
            ("D40", 46.0, 2.4, 10.0),  # 24 m²: 40.0 %, III at the bound (no heading: 41..51 m, all in 40..60)
            ("D20", 199.9, None, None)]  # no size: counted, no area
    out = segment_condition(net([(0, 0), (205, 0)]), crack_cands(rows), frames_along(-20, 225), cfg)
    b20 = by(out, "bin20")
    assert b20.crack_area_m2.tolist()[:4] == [3.9, 12.0, 24.0, 0.0]
    assert b20.crack_rate.tolist()[:4] == [6.5, 20.0, 40.0, 0.0]  # 3.9 / 60 m²
    assert b20.diagnosis.tolist() == ["I", "II", "III"] + ["I"] * 7
    assert b20.n_no_estimate.tolist() == [0] * 9 + [1] and b20.loc[9, "n_D20"] == 1 and b20.loc[9, "crack_rate"] == 0
    assert b20.mci_crack.tolist()[:4] == [round(10 - 2.23 * 6.5 ** 0.3, 1), 4.5, 3.3, 10.0]
    seg = by(out, "segment").loc[-1]
    assert seg.crack_area_m2 == pytest.approx(39.9) and seg.crack_rate == round(100 * 39.9 / (205 * 3), 1)  # 6.5
    assert seg.diagnosis == "I" and seg.n_no_estimate == 1
    # the width is the config's: 3.5 m lowers every rate by 3/3.5
    c2 = cfg.model_copy(update={"segments": cfg.segments.model_copy(update={"survey_width_m": 3.5})})
    b20w = by(segment_condition(net([(0, 0), (205, 0)]), crack_cands(rows), frames_along(-20, 225), c2), "bin20")
    assert b20w.crack_rate.tolist()[:3] == [5.6, 17.1, 34.3] and b20w.diagnosis.tolist()[:3] == ["I", "I", "II"]
    # half surveyed: the second 100 m bin is not valid, so not judged (an unsurveyed road is never 健全)
    half = segment_condition(net([(0, 0), (205, 0)]), crack_cands(rows), frames_along(0, 100), cfg)
    b100 = by(half, "bin100")
    assert b100.diagnosis.tolist() == ["I", None] and not b100.loc[1, "valid"]
    assert b100.loc[0, "crack_rate"] == 13.3 and np.isfinite(b100.loc[1, "crack_rate"])  # 39.9 m² / 300 m²
    # MCI1 at known crack rates; NaN (nothing surveyed) stays NaN
    assert crack_mci([0.0, 20.0, 40.0, 100.0]).round(2).tolist() == [10.0, 4.52, 3.26, 1.12]
    assert np.isnan(crack_mci([np.nan])[0])


def test_crack_area_spread_over_the_interval_it_covers(cfg):
    """A damage's crack area is spread along the road over the interval it covers: from its chainage (its near edge)
    away from the camera of its best sighting (``look_heading``: with the segment's direction its length runs towards
    the segment's end, against it towards the start), centred on the chainage where the heading is unknown, clipped
    to the segment; each bin its overlap's share; the counts stay in the bin of the chainage, and the segment row's
    area is the sum of its bins'. Before, each counted whole in the bin of its chainage (3.0, 0, 0, 3.0, 0, 2.4...)."""
    rows = [("D00", 15.0, 0.3, 10.0, 90.0),    # east, the segment's way: 15..25 m, 3 m²: half in bin 0, half in 1
            ("D00", 65.0, 0.3, 10.0, 270.0),   # west, against it: 55..65 m
            ("D00", 100.0, 0.3, 8.0, None),    # unknown: 96..104 m, 2.4 m²
            ("D20", 200.0, 1.0, 10.0, 80.0)]   # 200..210 m clipped to 200..205: all its 10 m² in the last bin
    c = crack_cands([r[:4] for r in rows]).assign(look_heading=[r[4] for r in rows])
    out = segment_condition(net([(0, 0), (205, 0)]), c, frames_along(-20, 225), cfg)
    b20, seg = by(out, "bin20"), by(out, "segment").loc[-1]
    assert b20.crack_area_m2.tolist() == [1.5, 1.5, 1.5, 1.5, 1.2, 1.2, 0.0, 0.0, 0.0, 10.0]
    assert b20.n_D00.tolist() == [1, 0, 0, 1, 0, 1, 0, 0, 0, 0]  # counted where the chainage is
    assert b20.crack_rate.tolist()[:4] == [2.5, 2.5, 2.5, 2.5]  # 1.5 / 60 m², not 5.0, 0, 0, 5.0
    assert seg.crack_area_m2 == pytest.approx(18.4) and sum(b20.crack_area_m2) == pytest.approx(18.4)
    assert by(out, "bin100").crack_area_m2.tolist() == [7.2, 11.2]
    # the same damages on the segment drawn the other way (chainage from x = 205): each runs the other way along it,
    # on the same ground: 180..190, 140..150, 101..109, the D20's 5..-5 clipped to 0..5
    rev = c.assign(chainage_m=205 - c["chainage_m"])
    b20r = by(segment_condition(net([(205, 0), (0, 0)]), rev, frames_along(-20, 225, heading=270.0), cfg), "bin20")
    assert b20r.crack_area_m2.tolist() == [10.0, 0.0, 0.0, 0.0, 0.0, 2.4, 0.0, 3.0, 0.0, 3.0]


def test_length_beyond_what_a_frame_measures_limited(cfg):
    """A box whose far edge reaches camera.max_distance_m (30 m) gives the length to where the camera stops
    measuring (locate: 28.5 m for a box from 1.5 m ahead to above the horizon): for the crack rate a length counts
    at most RELIABLE_LENGTH_M (10 m) and the row counts the damage in n_capped; a shorter one keeps its length."""
    from detector.locate import box_extent_m
    from detector.segments import RELIABLE_LENGTH_M, crack_lengths

    boxes = np.array([[200, 150, 300, 510], [200, 300, 300, 510]], float)  # rows of a 512 px frame
    w, ln = box_extent_m(boxes, np.full(2, 512), np.full(2, 512), cfg.camera)
    assert ln[0] == pytest.approx(28.5, abs=0.1) and 2 < ln[1] < 6  # what locate stores as est_length_m
    c = crack_cands([("D00", 5.0, w[0], ln[0]), ("D00", 25.0, w[1], ln[1]), ("D10", 65.0, 3.0, 12.0)]).assign(
        look_heading=90.0)
    lengths, capped = crack_lengths(c)
    assert capped.tolist() == [True, False, True] and lengths.tolist() == [RELIABLE_LENGTH_M, ln[1], 10.0]
    out = segment_condition(net([(0, 0), (205, 0)]), c, frames_along(-20, 225), cfg)
    b20, seg = by(out, "bin20"), by(out, "segment").loc[-1]
    # 5..15 m: 3.0 m², not 8.55; the D10's area is its width's (0.9 m²), over 65..75 m
    assert b20.crack_area_m2.tolist()[:4] == [3.0, round(0.3 * ln[1], 2), 0.0, 0.9]
    assert b20.n_capped.tolist()[:4] == [1, 0, 0, 1] and seg.n_capped == 2 and seg.n_no_estimate == 0
