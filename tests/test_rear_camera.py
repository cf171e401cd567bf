"""Rear camera (two-channel dashcams): ``frames.rear`` frames are placed behind the vehicle and merge with the
front camera's sightings of the same damage.

Real data: the sample drive's pass 1 and a "rear" version of it as the rear camera of a vehicle driving the route
the other way would shoot it (it looks the way the front camera looked): the same pictures (pixels untouched, only
the EXIF segment rewritten) with the EXIF heading + 180° and the times reversed, starting a minute after the front
drive ends (the same vehicle driving back). Its oracle boxes likewise. Every damage must land where the front
camera put it, and a drive holding both must give each damage once.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import TOYAMA, need
from detector.config import Config, load_config
from detector.errors import ConfigError
from detector.frames import camera_of, read_frames_csv, scan_drive

P1 = "toyama-2026-11-p1"
GAP_S = 60.0  # the rear drive starts this long after the front one ends


# ------------------------------------------------------------------------------------------------ helpers

def rear_copy(src: Path, dst: Path, t_end: datetime) -> None:
    """``src`` as the rear camera of a vehicle driving the route backwards shoots it: GPS and camera time mirrored
    about ``t_end`` (+ GAP_S), GPSImgDirection / GPSTrack + 180°. Only the EXIF APP1 segment is rebuilt."""
    data = src.read_bytes()
    assert data[2:4] == b"\xff\xe1" and data[6:12] == b"Exif\x00\x00", src
    seg_len = int.from_bytes(data[4:6], "big")
    exif = Image.open(src).getexif()
    ex, gps = exif.get_ifd(0x8769), exif.get_ifd(0x8825)
    t = datetime.strptime(ex[0x9003] + ex[0x9011].replace(":", ""), "%Y:%m:%d %H:%M:%S%z")
    t2 = t_end + timedelta(seconds=GAP_S) + (t_end - t)
    new = Image.Exif()
    for k, v in exif.items():
        if k not in (0x8825, 0x8769):
            new[k] = v
    nex = new.get_ifd(0x8769)
    nex.update(ex)
    nex[0x9003] = t2.strftime("%Y:%m:%d %H:%M:%S")
    ng = new.get_ifd(0x8825)
    ng.update(gps)
    u = t2.astimezone(timezone.utc)
    if 7 in gps:
        ng[7], ng[29] = (float(u.hour), float(u.minute), float(u.second)), u.strftime("%Y:%m:%d")
    for tag in (15, 17):  # GPSTrack, GPSImgDirection
        if tag in gps:
            ng[tag] = (float(gps[tag]) + 180.0) % 360.0
    payload = new.tobytes()
    dst.write_bytes(data[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + data[4 + seg_len:])


@pytest.fixture(scope="module")
def t_end() -> datetime:
    return max(f.time for f in scan_drive(need(TOYAMA / P1), Config()) if f.ok)


def make_drive(folder: Path, front: bool, rear: bool, t_end: datetime) -> Path:
    """Pass 1 (every file, the 4 broken ones too) and/or its rear version (``…_R.jpg``) in one folder."""
    folder.mkdir(parents=True)
    for p in sorted(need(TOYAMA / P1).iterdir()):
        if front:
            shutil.copy(p, folder / p.name)
        if rear and p.name.startswith("IMG_2026"):
            rear_copy(p, folder / f"{p.stem}_R.jpg", t_end)
    return folder


def rear_oracle(t_end: datetime, column: bool) -> pd.DataFrame:
    """The oracle boxes of pass 1 as its rear version's (``…_R.jpg``, heading + 180, times mirrored)."""
    df = pd.read_csv(need(TOYAMA / f"{P1}.oracle.csv"), dtype=str, keep_default_na=False)
    t = [datetime.fromisoformat(s) for s in df["time"]]
    df["time"] = [(t_end + timedelta(seconds=GAP_S) + (t_end - x)).isoformat() for x in t]
    df["heading"] = [f"{(float(h) + 180) % 360:.1f}" if h else "" for h in df["heading"]]
    df["image"] = df["image"].str.replace(".jpg", "_R.jpg", regex=False)
    df["drive"] = P1
    if column:
        df["camera"] = "rear"
    return df


def front_oracle() -> pd.DataFrame:
    df = pd.read_csv(need(TOYAMA / f"{P1}.oracle.csv"), dtype=str, keep_default_na=False)
    df["drive"] = P1
    return df


def candidates(out: Path):
    import geopandas as gpd

    c = gpd.read_file(out / "candidates.geojson")
    c["lon"], c["lat"] = c.geometry.x, c.geometry.y
    return c


def offsets(ref, other) -> np.ndarray:
    """Per candidate of ``ref``: metres to the nearest candidate of its class in ``other``."""
    a, b = ref.to_crs(6675), other.to_crs(6675)
    return np.array([b[b["class"] == c["class"]].distance(c.geometry).min() for _, c in a.iterrows()])


def score(c) -> dict:
    import geopandas as gpd

    from detector.scoring import score_sites

    return score_sites(c, gpd.read_file(need(TOYAMA / "truth.geojson")))


# ------------------------------------------------------------------------------------------------ config

def test_config_rear_patterns_and_mounting(tmp_path):
    cfg = Config(frames={"rear": "Movie\\R\\"}, camera={"rear": {"pitch_deg": "１５"}})  # one pattern; full width
    assert cfg.frames.rear == ["Movie/R/*"]
    rear, front = cfg.camera.of("rear"), cfg.camera.of("front")
    assert (rear.pitch_deg, rear.height_m, rear.hfov_deg) == (15.0, 1.3, 66.0)  # the rest as the front camera's
    assert front.pitch_deg == 8.0 and Config().camera.of("rear") == Config().camera
    assert camera_of("DCIM/Movie/R/2026_1120_090000_001.MP4@1:23.5", cfg.frames.rear) == "rear"
    assert camera_of("DCIM/Movie/F/2026_1120_090000_001.MP4@1:23.5", cfg.frames.rear) == "front"
    assert camera_of("a/b_R.mp4@0:00.0", ["*_R.MP4"]) == "rear" and camera_of("a/b_R.mp4.jpg", ["*_R.MP4"]) == "front"
    p = tmp_path / "city.yaml"
    p.write_text("frames:\n  rear: ['*_R.MP4']\ncamera:\n  rear:\n    height_m: 1.6\n", encoding="utf-8")
    c = load_config(p)
    assert c.frames.rear == ["*_R.MP4"] and c.camera.of("rear").height_m == 1.6 and c.camera.height_m == 1.3
    p.write_text("camera:\n  rear:\n    height_m: 9\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.field == "camera.rear.height_m"
    p.write_text("frames:\n  rear: ['']\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="empty pattern"):
        load_config(p)


# ------------------------------------------------------------------------------------------------ oracle boxes

def test_oracle_rear_boxes_land_where_the_front_put_them(tmp_path, t_end):
    """`patrol locate` on the rear version of pass 1's oracle boxes: with the camera column (as patrol writes it),
    or without it and ``frames.rear`` in the config (an older or third-party detections.csv), the 31 candidates lie
    where the front boxes put them (0.0 m); front and rear in one file: 31, each damage once. Placed as a front
    camera's (what patrol did before), the same boxes land up to ~9 m off and the drive holding both has a duplicate."""
    from test_cli import ok, patrol

    roads = need(TOYAMA / "roads.geojson")
    cfg = tmp_path / "rear.yaml"
    cfg.write_text("frames:\n  rear: ['*_R.jpg']\n", encoding="utf-8")
    files = {"front": front_oracle(), "rear": rear_oracle(t_end, True), "rear_nocol": rear_oracle(t_end, False)}
    files["both"] = pd.concat([files["front"], files["rear"]])
    files["both_nocol"] = pd.concat([files["front"], files["rear_nocol"]])
    runs = {}
    for name, df in files.items():
        csv = tmp_path / f"{name}.csv"
        df.to_csv(csv, index=False)
        for conf in ("cfg", "default"):
            out = tmp_path / f"o-{name}-{conf}"
            ok(patrol("locate", csv, "--roads", roads, "--out", out, *(("--config", cfg) if conf == "cfg" else ())))
            runs[name, conf] = candidates(out)
    ref = runs["front", "cfg"]
    assert len(ref) == 31 and score(ref)["found"] == 31
    for name in ("rear", "rear_nocol", "both", "both_nocol"):
        c = runs[name, "cfg"]
        s = score(c)
        assert len(c) == 31 and s["found"] == 31 and s["duplicates"] == 0, (name, s)
        assert offsets(ref, c).max() < 0.5, (name, offsets(ref, c))
    assert (runs["both", "cfg"]["n_obs"].sum() == 2 * ref["n_obs"].sum())  # each damage seen by both cameras
    # the camera column wins over the config: rear without frames.rear too
    assert offsets(ref, runs["rear", "default"]).max() < 0.5
    # as a front camera's (no column, no frames.rear): behind the vehicle is put ahead of it
    off = offsets(ref, runs["rear_nocol", "default"])
    print(f"\nrear boxes placed as front: median {np.median(off):.1f} m, max {off.max():.1f} m off; "
          f"both: {len(runs['both_nocol', 'default'])} candidates")
    assert off.max() > 5.0 and len(runs["both_nocol", "default"]) > 31


def test_rear_heading_written_as_the_camera_faces(tmp_path, t_end):
    """A phone looking back writes, as the EXIF standard has it, the direction its camera faces (the driving
    direction + 180), a dashcam the driving direction. Both place the damage behind the vehicle: the rear boxes
    of pass 1 with the heading the camera faced (pass 1's own heading) land where the front boxes put them. Taken
    as the driving direction (before), they were put ahead of the vehicle, twice the distance off."""
    from test_cli import ok, patrol

    roads = need(TOYAMA / "roads.geojson")
    ref_csv, csv = tmp_path / "front.csv", tmp_path / "rear.csv"
    front_oracle().to_csv(ref_csv, index=False)
    rear = rear_oracle(t_end, True)
    rear["heading"] = front_oracle()["heading"].to_numpy()  # the direction the rear camera faces
    assert (rear["heading"] != "").sum() > 50
    rear.to_csv(csv, index=False)
    ok(patrol("locate", ref_csv, "--roads", roads, "--out", tmp_path / "ref"))
    ok(patrol("locate", csv, "--roads", roads, "--out", tmp_path / "rear"))
    ref, c = candidates(tmp_path / "ref"), candidates(tmp_path / "rear")
    s = score(c)
    assert len(c) == 31 and s["found"] == 31 and s["duplicates"] == 0, s
    assert offsets(ref, c).max() < 0.5, offsets(ref, c)
    # one decision for the drive, said in the summary
    doc = json.loads((tmp_path / "rear" / "summary.json").read_text(encoding="utf-8"))
    conv = doc["rear_heading"][P1]
    assert conv["convention"] == "camera" and conv["decided"] and conv["vehicle"] == 0, conv


# ------------------------------------------------------------------------------------------------ patrol run

def test_patrol_run_rear_photos_found_where_the_front_found_them(tmp_path, t_end):
    """`patrol run` with the shipped model: the rear version of pass 1 alone (``frames.rear: ["*_R.jpg"]``) gives
    the front run's candidates at the same places and the same score against truth.geojson; the drive holding
    both gives each damage once, seen by both cameras. frames.csv and detections.csv say which camera."""
    from test_cli import ok, patrol

    roads = need(TOYAMA / "roads.geojson")
    cfg = tmp_path / "rear.yaml"
    cfg.write_text("frames:\n  rear: ['*_R.jpg']\n", encoding="utf-8")
    out = {}
    for name, front, rear in (("front", True, False), ("rear", False, True), ("both", True, True)):
        drive = make_drive(tmp_path / name / P1, front, rear, t_end)
        out[name] = tmp_path / f"o-{name}"
        r = ok(patrol("run", drive, "--roads", roads, "--out", out[name], "--config", cfg, "--no-report"))
        if rear:
            assert "100 of a rear camera" in " ".join(r.stdout.split()), r.stdout  # (the table wraps at 80)
            assert (f"{P1}: the rear camera's EXIF heading is the driving direction (as dashcams write it;"
                    in " ".join(r.stdout.split())), r.stdout
    c = {k: candidates(v) for k, v in out.items()}
    s = {k: score(v) for k, v in c.items()}
    print("\n" + "; ".join(f"{k}: {len(c[k])} candidates, {s[k]['found']} sites, precision {s[k]['precision']:.2f}, "
                           f"duplicates {s[k]['duplicates']}" for k in c))
    for k in ("rear", "both"):
        assert len(c[k]) == len(c["front"]) and s[k]["found"] >= s["front"]["found"], (k, s[k])
        assert s[k]["precision"] >= s["front"]["precision"] - 1e-9 and s[k]["duplicates"] == 0
        off = offsets(c["front"], c[k])
        assert off.max() < 3.0, (k, off)
    assert c["both"]["n_obs"].sum() == c["front"]["n_obs"].sum() + c["rear"]["n_obs"].sum()
    frames = read_frames_csv(out["both"] / "frames.csv")
    assert {f.camera for f in frames if f.name.endswith("_R.jpg")} == {"rear"}
    assert {f.camera for f in frames if not f.name.endswith("_R.jpg")} == {"front"}
    rear_rows = [f for f in frames if f.name.endswith("_R.jpg") and f.heading_source == "exif"]
    front_by = {f.name: f for f in frames}
    # the frame's heading is the driving direction: the rear drive's, opposite the front drive's
    assert all(abs((f.heading - front_by[f.name[:-6] + ".jpg"].heading) % 360 - 180) < 0.01 for f in rear_rows)
    det = pd.read_csv(out["both"] / "detections.csv", keep_default_na=False)
    assert list(det.columns[-2:]) == ["drive", "camera"]
    assert set(det.loc[det["image"].str.endswith("_R.jpg"), "camera"]) == {"rear"}
    assert set(det.loc[~det["image"].str.endswith("_R.jpg"), "camera"]) == {"front"}
    doc = json.loads((out["both"] / "summary.json").read_text(encoding="utf-8"))
    assert doc["frames"]["rear"] == 100 and doc["frames"]["used"] == 200
    conv = doc["rear_heading"][P1]  # the rear drive's EXIF heading: the driving direction (as a dashcam writes it)
    assert conv["convention"] == "vehicle" and conv["decided"] and conv["camera"] == 0, conv
    # frames.rear taken away: the frames stage runs again and the rear hits are front hits again
    r = ok(patrol("run", tmp_path / "both" / P1, "--roads", roads, "--out", out["both"], "--no-report"))
    assert "rear camera" not in " ".join(r.stdout.split())
    det = pd.read_csv(out["both"] / "detections.csv", keep_default_na=False)
    assert set(det["camera"]) == {"front"}
    assert len(candidates(out["both"])) > len(c["front"])  # the duplicate the rear setting avoids


# ------------------------------------------------------------------------------------------------ dedupe

def test_far_rear_sighting_links_to_its_own_camera():
    """dedupe's time link (``link_s``) of a far-only sighting: a rear camera sees damage A far behind 2 s after
    seeing it near, while the front camera sees damage B near ahead at that moment: A's far sighting joins A."""
    from detector.dedupe import _link_far

    S = pd.DataFrame({"drive": ["d"] * 3, "class": ["D40"] * 3, "camera": ["rear", "rear", "front"],
                      "t": [10.0, 12.0, 12.2], "distance_ahead_m": [5.0, 25.0, 5.0]})
    lab = _link_far(S, np.array([0, 1, 2]), Config())
    assert lab.tolist() == [0, 0, 2]
    # without the camera (Located of an older patrol): the nearest in time, as before
    assert _link_far(S.drop(columns="camera"), np.array([0, 1, 2]), Config()).tolist() == [0, 2, 2]


# ------------------------------------------------------------------------------------------------ heading convention

def _kubicka_rear(roads_dir, tmp_path, kid: str, every: int, faces: bool, source: str | None = None):
    """Kubicka track ``kid`` (real GPS, 1 Hz) as a rear camera's drive whose hits are every ``every``-th fix: one
    box ~15 m behind the vehicle each, the EXIF heading the dense track's bearing at the fix (the driving
    direction, as a dashcam writes it) or its reverse (``faces``: the direction the camera faces, as a phone
    looking back writes it). Returns (located, metres from where the damage lies: behind the vehicle along the
    driving direction)."""
    from datetime import datetime, timezone

    from test_locate import kubicka_network

    from detector.detections import Detections
    from detector.locate import locate
    from detector.roads import load_roads

    folder = need(roads_dir / "kubicka" / kid)
    gj, _ = kubicka_network(folder, tmp_path)
    cfg = Config()
    net = load_roads(gj, cfg)
    tr = np.loadtxt(folder / f"{kid}.track", ndmin=2)
    x, y = net.xy(tr[:, 0], tr[:, 1])
    bearing = np.degrees(np.arctan2(np.r_[x[1:], x[-1]] - np.r_[x[0], x[:-1]],
                                    np.r_[y[1:], y[-1]] - np.r_[y[0], y[:-1]])) % 360  # grid, centred
    idx = np.arange(0, len(tr), every)
    heading = (bearing[idx] - net.true_to_grid(np.zeros(1))[0] + (180.0 if faces else 0.0)) % 360  # true north
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
    n = len(idx)
    det = Detections.from_arrays(
        image=np.array([f"fix{i:05d}_R.jpg" for i in idx], dtype=object), class_id="D40", confidence=np.ones(n),
        xyxy=np.tile([300.0, 195.0, 340.0, 215.0], (n, 1)), width=640, height=480,
        time=np.array([datetime.fromtimestamp(t0 + tr[i, 2], timezone.utc).isoformat() for i in idx], dtype=object),
        lat=tr[idx, 1], lon=tr[idx, 0], heading=heading, drive=kid, camera=np.array(["rear"] * n, dtype=object))
    sources = None if source is None else {(kid, str(im)): source for im in det.image}
    L = locate(det, net, cfg, heading_sources=sources)
    d = L["distance_ahead_m"].to_numpy()
    th = np.radians(bearing[idx] + 180.0)
    off = np.hypot(L["dmg_x"].to_numpy() - (x[idx] + d * np.sin(th)), L["dmg_y"].to_numpy() - (y[idx] + d * np.cos(th)))
    return L, off


@pytest.mark.parametrize("kid, every, faces, misplaced", [
    ("00000037", 3, True, ["fix00036_R.jpg", "fix00129_R.jpg", "fix00249_R.jpg"]),  # Toyama: slow stretches, stops
    ("00000099", 5, False, ["fix00710_R.jpg"]),  # among them a U-turn between two hits 10 s apart
    ("00000099", 5, True, None),
])
def test_rear_heading_convention_decided_once_per_drive(roads_dir, tmp_path, kid, every, faces, misplaced):
    """A rear camera writes its EXIF heading in one convention. Decided frame by frame (the heading turned when it
    points against the bearing between the hit frames before and after), a frame at a stop (GPS jitter at walking
    pace: no bearing, left unturned) or beside a U-turn (the bearing across it) was turned the wrong way and its
    damage put ~29 m off, ahead of the vehicle instead of behind (measured on these real tracks: 3 of 226 frames of
    the Toyama track as a phone looking back, 7 of 465 of 00000099 as a dashcam, the U-turn frame among them, 19 of
    465 as a phone). One vote per drive over the frames where the vehicle clearly moves straight on finds the convention;
    every damage lands behind the vehicle (0 m off), in both conventions."""
    import detector.locate as locate_mod

    L, off = _kubicka_rear(roads_dir, tmp_path, kid, every, faces)
    conv = L.attrs["rear_heading"][kid]
    assert conv["convention"] == ("camera" if faces else "vehicle") and conv["decided"], conv
    assert conv["vehicle" if faces else "camera"] == 0 and conv["camera" if faces else "vehicle"] >= 50, conv
    assert np.nanmax(off) < 0.5, L.loc[off >= 0.5, "image"].tolist()
    # the rule before (each frame on its own: what an undecided drive still gets)
    old = locate_mod.VOTE_MIN
    try:
        locate_mod.VOTE_MIN = 10**9
        L0, off0 = _kubicka_rear(roads_dir, tmp_path, kid, every, faces)
    finally:
        locate_mod.VOTE_MIN = old
    assert L0.attrs["rear_heading"][kid]["convention"] == "per frame"
    bad = L0.loc[off0 > 20, "image"].tolist()
    print(f"\n{kid} every {every}, {'camera' if faces else 'vehicle'} convention: per frame {len(bad)} of "
          f"{len(L0)} damages > 20 m off (max {np.nanmax(off0):.1f} m), voted {np.nanmax(off):.1f} m")
    assert bad and set(misplaced or ()) <= set(bad), bad
    assert np.nanmax(off0) > 25


@pytest.mark.parametrize("source, turned", [("exif", True), ("exif_magnetic", True), ("track", False)])
def test_rear_heading_vote_counts_the_cameras_own_headings_only(roads_dir, tmp_path, source, turned):
    """frames.csv's heading_source decides which headings the camera wrote: "exif" and "exif_magnetic" (a
    GPSImgDirectionRef "M" heading, used as true) are the camera's and follow its convention (here: the direction
    it faces, turned 180°); a heading taken from the track ("track") is the driving direction and never turned.
    (A magnetic heading was once taken for a track heading: a phone looking back then put every damage ahead of
    the vehicle.)"""
    L, off = _kubicka_rear(roads_dir, tmp_path, "00000037", 3, True, source=source)
    conv = L.attrs["rear_heading"]["00000037"]
    if turned:
        assert conv["convention"] == "camera" and conv["decided"], conv
        assert np.nanmax(off) < 0.5
    else:  # no EXIF heading to vote: nothing turned, the heading given is taken as the driving direction
        assert conv["camera"] == conv["vehicle"] == 0, conv
        assert np.nanmin(off) > 20  # (the test wrote the reverse: a track heading is never turned)
