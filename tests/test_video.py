"""Dashcam / phone video as patrol input: frames sampled by distance along a GPS track file.

Real data: a short MP4 written with cv2.VideoWriter from the sample drive's first 41 pass-1 photos (0:00–1:10 of
the drive, a red-light stop of 31 s in it), in real time at 2 fps (each frame shows the photo taken last before
it), with the real 1 Hz Kubicka track that pass 1 follows as a GPX beside it (``test_tracks``). Photo i's EXIF
position is the track's point at its time, so a video frame at a photo's time must land on that photo's position.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from conftest import TOYAMA, need
from detector.config import Config
from detector.frames import scan, scan_drive, sniff_format
from detector.geo import distance_bearing as _distance_bearing
from detector.geo import distance_bearing as distances
from detector.video import clock_label, name_time, read_video_info
from test_tracks import P1, kubicka_points, write_gpx

N_PHOTOS = 41
FPS = 2
MAC_EPOCH = 2082844800  # seconds from 1904-01-01 to 1970-01-01


@pytest.fixture(scope="module")
def photos():
    return [f for f in scan_drive(need(TOYAMA / P1), Config()) if f.ok][:N_PHOTOS]


def write_video(path: Path, photos, fps: float = FPS, size: int = 512) -> Path:
    """An MP4 (``mp4v``; mvhd creation time 0 as OpenCV writes it) of ``photos`` in real time: each frame the photo
    taken last before it, scaled to ``size`` px square (the sample's photos are 512, 600 and 640 px square; a video
    has one size)."""
    import cv2

    t0 = photos[0].time.timestamp()
    ts = np.array([f.time.timestamp() - t0 for f in photos])
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
    cur, img = -1, None
    for k in range(int(ts[-1] * fps) + 1):
        i = int(np.searchsorted(ts, k / fps, side="right") - 1)
        if i != cur:
            img, cur = cv2.resize(cv2.imread(str(photos[i].path)), (size, size), interpolation=cv2.INTER_AREA), i
        w.write(img)
    w.release()
    return path


@pytest.fixture(scope="module")
def video_src(tmp_path_factory, photos) -> Path:
    """The MP4 built once for the module."""
    path = write_video(tmp_path_factory.mktemp("video") / "src.mp4", photos)
    assert path.stat().st_size > 100_000
    return path


def with_creation(src: Path, dst: Path, epoch_s: float | None) -> Path:
    """A copy of ``src`` with its mvhd creation time set to ``epoch_s`` (Unix seconds; None = 0, never set)."""
    data = bytearray(src.read_bytes())
    j = data.find(b"mvhd")
    assert j > 0 and data[j + 4] == 0, "version-0 mvhd expected"
    data[j + 8:j + 12] = (0 if epoch_s is None else int(epoch_s) + MAC_EPOCH).to_bytes(4, "big")
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(bytes(data))
    return dst


def video_drive(folder: Path, video_src: Path, photos, name="dashcam.mp4", epoch_s="utc") -> Path:
    t0 = photos[0].time
    epoch = t0.timestamp() if epoch_s == "utc" else epoch_s
    with_creation(video_src, folder / name, epoch)
    write_gpx(folder / "log.gpx", kubicka_points(t0))
    return folder


def metres(a, b) -> float:
    return _distance_bearing(a.lat, a.lon, b.lat, b.lon)[0]


def cfg_with(**frames) -> Config:
    c = Config()
    return c.model_copy(update={"frames": c.frames.model_copy(update=frames)})


# ------------------------------------------------------------------------------------------------ sampling

def test_video_frames_sampled_by_distance_and_placed_from_track(tmp_path, video_src, photos):
    """Every 10 m while moving, one frame per 10 s at the red light; the video itself gets no row; the frames are
    on the track where the photos' own GPS put them; a rerun reuses the JPEGs, a changed video is taken again."""
    drive = video_drive(tmp_path / "d", video_src, photos)
    cfg = cfg_with(video_every_m=10.0, video_stopped_every_s=10.0, track_max_gap_s=20.0)  # the stop's 17 s track gap
    vdir = tmp_path / "out" / "frames"
    sc = scan(drive, cfg, video_dir=vdir)
    frames = [f for f in sc.frames if f.name.startswith("dashcam.mp4@")]
    assert [f.name for f in sc.frames if "@" not in f.name] == []  # no row for the video, nor the GPX
    assert len(frames) == sc.videos[0].frames and sc.videos[0].problem == ""
    assert all(f.ok and f.position_source == "track_file" and f.time_source == "video_utc" for f in frames)
    n_video = int((photos[-1].time - photos[0].time).total_seconds() * FPS) + 1
    assert 25 <= len(frames) < n_video / 3, (len(frames), n_video)
    print(f"\n{n_video} video frames -> {len(frames)} kept", end=" ")
    t0 = photos[0].time
    secs = np.array([(f.time - t0).total_seconds() for f in frames])
    assert frames[0].name == "dashcam.mp4@0:00.0" and frames[5].name == f"dashcam.mp4@{clock_label(secs[5])}"
    steps = np.array([metres(a, b) for a, b in zip(frames, frames[1:])])
    dt = np.diff(secs)
    assert np.all((steps >= 10.0) | (dt >= 10.0 - 1e-6)), list(zip(steps.round(1), dt))
    stop = (secs > 29) & (secs < 59)  # photos 28-30: 0.2-1 km/h for 31 s
    assert 2 <= stop.sum() <= 4 and np.all(np.diff(secs[stop]) >= 10.0 - 1e-6), secs[stop]
    # where the photos' own GPS put the vehicle: exactly at a photo's time, and between photos
    by_t = {round((p.time - t0).total_seconds(), 3): p for p in photos}
    at_photo = [(f, by_t[s]) for f, s in zip(frames, secs.round(3).tolist()) if s in by_t]
    assert len(at_photo) >= 15
    assert max(metres(f, p) for f, p in at_photo) < 1.0
    print(f"({stop.sum()} during the stop; {len(at_photo)} at a photo's time, at most "
          f"{max(metres(f, p) for f, p in at_photo):.2f} m from its GPS)", end=" ")
    pt = np.array([(p.time - t0).total_seconds() for p in photos])
    lat, lon = np.interp(secs, pt, [p.lat for p in photos]), np.interp(secs, pt, [p.lon for p in photos])
    err = distances(np.array([f.lat for f in frames]), np.array([f.lon for f in frames]), lat, lon)[0]
    assert np.median(err) < 0.5 and err.max() < 5.0, (np.median(err), err.max())
    assert all(Path(f.path).is_file() and Path(f.path).parent == vdir / "d" / "dashcam_mp4" for f in frames)
    # rerun: nothing decoded, the same files
    mtimes = {f.path: os.stat(f.path).st_mtime_ns for f in frames}
    again = scan(drive, cfg, video_dir=vdir)
    assert again.videos[0].reused and [f.name for f in again.frames] == [f.name for f in sc.frames]
    assert {f.path: os.stat(f.path).st_mtime_ns for f in again.frames if "@" in f.name} == mtimes
    # other settings, or the video replaced: taken again, the old frames gone
    other = scan(drive, cfg_with(video_every_m=20.0, track_max_gap_s=20.0), video_dir=vdir)
    assert not other.videos[0].reused and len(other.frames) < len(frames)
    assert len(list((vdir / "d" / "dashcam_mp4").glob("*.jpg"))) == len(other.frames)


def test_sniffed_by_content(tmp_path, video_src):
    head = video_src.read_bytes()[:64]
    assert sniff_format(head) == "mp4"
    assert sniff_format(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ") == "mov"
    assert sniff_format(b"RIFF\x00\x10\x00\x00AVI LIST") == "avi"
    assert sniff_format(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00") == "heif"
    assert sniff_format(b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00") == ""  # audio, not a video


# ------------------------------------------------------------------------------------------------ time

def test_video_time_sources(tmp_path, video_src, photos):
    """mvhd UTC; mvhd 0 with a dated file name (the config's zone); mvhd holding the local wall time (told by the
    name); neither: one row video_no_time naming why; the camera clock offset is taken off."""
    t0 = photos[0].time  # 2026-11-20 09:00:00+09:00
    utc = scan(video_drive(tmp_path / "a", video_src, photos), Config(), video_dir=tmp_path / "o").frames
    want = [f.time for f in utc]
    cases = {
        "b": ("20261120_090000.mp4", None, "video_name"),
        "c": ("2026_1120_090000_001.MP4", None, "video_name"),
        "d": ("20261120_090000.mp4", t0.replace(tzinfo=timezone.utc).timestamp(), "video_local"),  # JST as UTC
        "e": ("20261120_090000.mp4", t0.timestamp(), "video_utc"),
    }
    for sub, (name, epoch, src) in cases.items():
        fr = [f for f in scan(video_drive(tmp_path / sub, video_src, photos, name, epoch), Config(),
                              video_dir=tmp_path / "o").frames]
        assert [f.time for f in fr] == want and {f.time_source for f in fr} == {src}, (sub, fr[:2])
    # a camera that writes the creation time when the recording ends (UTC, or its wall clock): the start is the
    # creation time - the video's length (70.5 s), when that is the file name's time within 5 s; it was taken as
    # the start (video_utc), every frame 70 s late. The creation time has whole seconds: 09:01:10 - 70.5 s
    length = read_video_info(video_src, "mp4").duration_s
    assert 70 < length < 72
    for sub, epoch, src, late in (("j", t0.timestamp() + length, "video_utc_end", -0.5),
                                  ("k", t0.replace(tzinfo=timezone.utc).timestamp() + length + 3, "video_local_end",
                                   2.5)):  # 3 s after the name's time + the length: the creation time decides
        fr = scan(video_drive(tmp_path / sub, video_src, photos, "20261120_090000.mp4", epoch), Config(),
                  video_dir=tmp_path / "o").frames
        into = [float(Path(f.path).stem.split("@")[1][:-1]) for f in fr]  # the frame's time in the video
        assert max(abs((f.time - t0).total_seconds() - (s + late)) for f, s in zip(fr, into)) < 1e-3, (sub, fr[:2])
        assert {f.time_source for f in fr} == {src} and len(fr) > 20
    assert name_time("VID_20261120_090000.mp4").isoformat() == "2026-11-20T09:00:00"
    assert name_time("FILE0001.MOV") is None
    # a camera 12 s fast: its frames are put 12 s earlier
    fast = scan(video_drive(tmp_path / "f", video_src, photos, epoch_s=t0.timestamp() + 12),
                cfg_with(camera_clock_offset_s=12.0), video_dir=tmp_path / "o").frames
    assert [f.time for f in fast] == want
    for sub, epoch in (("g", None), ("h", 0.0), ("i", 86400 * 3)):  # 0 = 1904, the Unix epoch, 1970-01-04
        rows = scan(video_drive(tmp_path / sub, video_src, photos, "FILE0001.MP4", epoch), Config(),
                    video_dir=tmp_path / "o").frames
        assert [(f.name, f.status, f.reason.split(":")[0]) for f in rows] == [("FILE0001.MP4", "rejected",
                                                                                "video_no_time")]
        assert "file name holds no date-time" in rows[0].reason
        assert ("creation time 0" if epoch is None else "camera clock not set") in rows[0].reason


def test_utc_camera_told_by_the_track(tmp_path, video_src, photos):
    """A camera set to UTC writes UTC in its file name and its creation time (20261120_000000.mp4 for 09:00 JST):
    the same wall clock in both read as local time put every frame 9 h early, where no track places it. With a GPS
    track (a GPX in the drive; not the drive's own geotagged photos) the reading the track covers is taken, and a
    warning says so; so is a creation time holding the local wall clock without a dated name (9 h late). Without a
    track, or a track that covers both readings, today's rule stays."""
    from detector.frames import video_warnings

    t0 = photos[0].time  # 2026-11-20 09:00:00+09:00 = 00:00:00 UTC
    utc_name = "20261120_000000.mp4"
    base = scan(video_drive(tmp_path / "a", video_src, photos), Config(), video_dir=tmp_path / "o").frames
    want, placed = [f.time for f in base], [(f.lat, f.lon) for f in base]
    assert len(want) > 20 and sum(f.ok for f in base) > 20
    length = read_video_info(video_src, "mp4").duration_s
    cases = {  # name, creation time (Unix s), time_source; a GPX beside
        "b": (utc_name, t0.timestamp(), "video_utc"),
        "c": (utc_name, t0.timestamp() + length, "video_utc_end"),  # written when the recording ended, UTC both
        "d": ("FILE0001.MP4", t0.replace(tzinfo=timezone.utc).timestamp(), "video_local"),  # JST written as UTC
    }
    for sub, (name, epoch, src) in cases.items():
        sc = scan(video_drive(tmp_path / sub, video_src, photos, name, epoch), Config(), video_dir=tmp_path / "o")
        fr = [f for f in sc.frames if "@" in f.name]
        assert {f.time_source for f in fr} == {src}
        if sub == "c":  # the creation time has whole seconds: 09:01:10 - 70.5 s, half a second early
            into = [float(Path(f.path).stem.split("@")[1][:-1]) for f in fr]  # the frame's time in the video
            assert max(abs((f.time - t0).total_seconds() - (s - 0.5)) for f, s in zip(fr, into)) < 1e-3
            assert sum(f.ok for f in fr) > 20
        else:
            assert [f.time for f in fr] == want and [(f.lat, f.lon) for f in fr] == placed, (sub, fr[:2])
        (warning,) = video_warnings(sc.videos)
        assert re.search(r" read as (UTC|local time \(Asia/Tokyo\)), the camera's clock set so .*: the GPS track covers [1-9]\d*% of the video so, "
                         r"none of it read as ", warning), warning
        print(f"\n{sub}: {warning}", end="")
    # without a track: the wall clock in both is the camera's local time (today's rule), 9 h early, unplaced
    drive = tmp_path / "e"
    with_creation(video_src, drive / utc_name, t0.timestamp())
    fr = [f for f in scan(drive, Config(), video_dir=tmp_path / "o").frames if "@" in f.name]
    assert {f.time_source for f in fr} == {"video_local"} and fr[0].time == t0 - timedelta(hours=9)
    assert not any(f.ok for f in fr)  # one every 10 s, each no_gps_fix
    # the drive's photos with their GPS (no track file) do not tell it: they place no video frame either way, and a
    # local video of another hour beside them (09:00, photos of 18:00) would be turned 9 h by them just as well
    for p in photos[:10]:
        shutil.copy(p.path, drive / Path(p.path).name)
    sc = scan(drive, Config(), video_dir=tmp_path / "o")
    fr = [f for f in sc.frames if "@" in f.name]
    assert {f.time_source for f in fr} == {"video_local"} and not any(f.ok for f in fr)
    assert sum(f.position_source == "gps" for f in sc.frames) == 10 and video_warnings(sc.videos) == []
    # a track that covers both readings (a day-long log: the route 9 h earlier too) tells nothing: today's rule
    pts = kubicka_points(t0)
    early = pts.copy()
    early[:, 0] -= 9 * 3600
    drive = video_drive(tmp_path / "f", video_src, photos, utc_name, t0.timestamp())
    write_gpx(drive / "log.gpx", np.concatenate([early, pts]), split=(len(pts),))
    sc = scan(drive, Config(), video_dir=tmp_path / "o")
    assert {f.time_source for f in sc.frames if "@" in f.name} == {"video_local"} and video_warnings(sc.videos) == []


def test_resume_after_video_frames_deleted(tmp_path, video_src, photos):
    """OUT/frames deleted between two runs (to free disk space): the resumed frames stage is not skipped but takes
    the video's frames again (else detection and the crops would find no image, silently)."""
    from detector.pipeline import Manifest, RunSummary, VIDEO_FRAMES, stage_frames

    drive = video_drive(tmp_path / "d", video_src, photos)
    out = tmp_path / "out"
    (out / ".work").mkdir(parents=True)
    cfg = cfg_with(video_every_m=20.0)
    first = stage_frames([drive], cfg, out, Manifest(out), RunSummary(out=out))
    taken = [f.name for f in first if f.ok and "@" in f.name]
    assert taken
    s = RunSummary(out=out)
    stage_frames([drive], cfg, out, Manifest(out), s)
    assert "frames" in s.skipped_stages and s.videos[0].reused  # nothing changed: skipped
    shutil.rmtree(out / VIDEO_FRAMES)
    s = RunSummary(out=out)
    again = stage_frames([drive], cfg, out, Manifest(out), s)
    assert "frames" not in s.skipped_stages and not s.videos[0].reused
    assert [f.name for f in again if f.ok and "@" in f.name] == taken
    assert all(Path(f.path).is_file() for f in again if f.ok)
    # a run killed while writing a frame leaves its temp file (no index.json yet): the next extraction removes it
    folder = next((out / VIDEO_FRAMES).rglob("index.json")).parent
    (folder / "index.json").unlink()
    (folder / ".dashcam@0001.500s.jpg.tmp").write_bytes(b"\xff\xd8 half a JPEG")
    man = Manifest(out)
    man.forget("frames")  # killed before the stage was marked done
    stage_frames([drive], cfg, out, man, RunSummary(out=out))
    assert sorted(p.name for p in folder.iterdir() if p.suffix != ".jpg") == ["index.json"]


# ------------------------------------------------------------------------------------------------ bad videos

def test_broken_videos_reported_and_photos_kept(tmp_path, video_src, photos):
    """A video cut off (no moov), one in a codec OpenCV lacks, a file that only starts like a video: one row each
    naming the reason; the photos beside them are all used; no video frames of theirs."""
    drive = tmp_path / "d"
    drive.mkdir()
    for p in photos[:5]:
        shutil.copy(p.path, drive / Path(p.path).name)
    full = with_creation(video_src, tmp_path / "full.mp4", photos[0].time.timestamp()).read_bytes()
    (drive / "20261120_090000_cut.mp4").write_bytes(full[: len(full) // 2])
    data = bytearray(full)
    j = data.find(b"mp4v", data.find(b"stsd"))
    data[j:j + 4] = b"hvc1"  # an HEVC dashcam file where OpenCV's FFmpeg has no HEVC decoder
    e = data.find(b"esds", j)
    data[e:e + 4] = b"free"
    (drive / "20261120_090000_codec.mp4").write_bytes(bytes(data))
    (drive / "20261120_090000_junk.MOV").write_bytes(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  " + b"\x07" * 500)
    write_gpx(drive / "log.gpx", kubicka_points(photos[0].time))
    sc = scan(drive, Config(), video_dir=tmp_path / "o")
    by = {f.name: f for f in sc.frames}
    assert [n for n in by if "@" in n] == []
    assert by["20261120_090000_cut.mp4"].reason.startswith("truncated: video:")
    assert "cut off" in by["20261120_090000_cut.mp4"].reason
    assert by["20261120_090000_codec.mp4"].reason.startswith("decode_failed: video:")
    assert "codec hevc" in by["20261120_090000_codec.mp4"].reason, by["20261120_090000_codec.mp4"].reason
    assert by["20261120_090000_junk.MOV"].status == "rejected" and "video" in by["20261120_090000_junk.MOV"].reason
    assert sum(f.ok for f in sc.frames) == 5
    assert {Path(u.path).name: bool(u.problem) for u in sc.videos} == {
        "20261120_090000_cut.mp4": True, "20261120_090000_codec.mp4": True, "20261120_090000_junk.MOV": True}


# ------------------------------------------------------------------------------------------------ patrol run

def test_patrol_run_video_finds_the_photo_drives_damage(tmp_path, video_src, photos):
    """`patrol run` on the video + GPX finds (against truth.geojson) as many true sites as on the 41 photos it
    was made of, the candidates at the same places; best_image names the video and the time in it; a rerun
    decodes nothing; a cut-off video beside photos is a warning, the photos are used."""
    from test_cli import ok, patrol

    import geopandas as gpd

    from detector.scoring import score_sites

    roads, truth = need(TOYAMA / "roads.geojson"), gpd.read_file(need(TOYAMA / "truth.geojson"))
    vd = video_drive(tmp_path / "video-drive", video_src, photos)
    pd_ = tmp_path / "photo-drive"
    pd_.mkdir()
    for p in photos:
        shutil.copy(p.path, pd_ / Path(p.path).name)
    r = patrol("run", vd, "--roads", roads, "--out", tmp_path / "vo", "--no-report")
    ok(r)
    assert "\nvideos " in r.stdout, r.stdout
    ok(patrol("run", pd_, "--roads", roads, "--out", tmp_path / "po", "--no-report"))

    def score(out):
        c = gpd.read_file(out / "candidates.geojson")
        c["lon"], c["lat"] = c.geometry.x, c.geometry.y
        return c, score_sites(c, truth)

    cv, sv = score(tmp_path / "vo")
    cp, sp = score(tmp_path / "po")
    print(f"\nvideo: {sv['found']} sites found, precision {sv['precision']:.2f}, {len(cv)} candidates; "
          f"photos: {sp['found']} found, precision {sp['precision']:.2f}, {len(cp)} candidates")
    assert sv["found"] >= sp["found"] - 1 and sv["precision"] >= sp["precision"] - 0.15
    assert sv["duplicates"] == 0
    a, b = cp.to_crs(6675), cv.to_crs(6675)
    near = [b[b["class"] == c["class"]].distance(c.geometry).min() for _, c in a.iterrows()]
    assert np.mean(np.array(near) < 10.0) >= 0.8, near
    assert all(s.startswith("dashcam.mp4@") for s in cv["best_image"])
    doc = json.loads((tmp_path / "vo" / "summary.json").read_text(encoding="utf-8"))
    v = doc["videos"][0]
    assert v["file"] == str(vd / "dashcam.mp4") and v["time_source"] == "video_utc" and v["frames"] > 40
    assert v["problem"] is None and not v["reused"]
    used = doc["frames"]["used"]
    rows = (tmp_path / "vo" / "frames.csv").read_text(encoding="utf-8").splitlines()
    assert rows[1].startswith("dashcam.mp4@0:00.0,ok,,2026-11-20T09:00:00+09:00")
    # rerun with one more file in the drive: the frames stage runs again, the video is not decoded again
    jpgs = sorted((tmp_path / "vo" / "frames").rglob("*.jpg"))
    mtimes = [p.stat().st_mtime_ns for p in jpgs]
    full = vd / "dashcam.mp4"
    (vd / "20261120_091000_cut.mp4").write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    shutil.copy(photos[0].path, vd / Path(photos[0].path).name)
    r = patrol("run", vd, "--roads", roads, "--out", tmp_path / "vo", "--no-report")
    ok(r)
    doc = json.loads((tmp_path / "vo" / "summary.json").read_text(encoding="utf-8"))
    assert "frames" not in doc["skipped_stages"]
    assert [(Path(v["file"]).name, v["reused"], bool(v["problem"])) for v in doc["videos"]] == [
        ("20261120_091000_cut.mp4", False, True), ("dashcam.mp4", True, False)]
    assert any("20261120_091000_cut.mp4: video not used: truncated" in w for w in doc["warnings"])
    assert [p.stat().st_mtime_ns for p in jpgs] == mtimes
    assert doc["frames"]["used"] == used + 1  # the photo added beside the videos
    assert doc["frames"]["rejected_by_reason"].get("truncated") == 1


# ------------------------------------------------------------------------------------------------ frames.ignore

def test_rear_camera_videos_ignored_by_pattern(tmp_path, video_src, photos):
    """A two-channel dashcam writes a front and a rear video per clip (``…_F.MP4`` / ``…_R.MP4``, or Front/ and
    Rear/ folders): without frames.ignore the rear video's frames join the front's, placed as if looking ahead;
    with ``["*_R.MP4", "Rear/*"]`` each rear file is one row ``ignored: matches frames.ignore "…"``, never decoded
    (no frames folder), and the front video gives the same frames as alone."""
    t0 = photos[0].time
    drive = tmp_path / "d"
    with_creation(video_src, drive / "DCIM" / "Movie" / "2026_1120_090000_001_F.MP4", t0.timestamp())
    with_creation(video_src, drive / "DCIM" / "Movie" / "2026_1120_090000_001_R.MP4", t0.timestamp())
    with_creation(video_src, drive / "Rear" / "2026_1120_090000_002.MP4", t0.timestamp())
    shutil.copy(photos[0].path, drive / "Rear" / "thumb.jpg")
    write_gpx(drive / "log.gpx", kubicka_points(t0))
    cfg = cfg_with(video_every_m=20.0)
    both = scan(drive, cfg, video_dir=tmp_path / "o1")
    assert len(both.videos) == 3 and all(u.frames > 0 for u in both.videos)  # today's behaviour without the setting
    front = [f for f in both.frames if f.name.startswith("DCIM/Movie/2026_1120_090000_001_F.MP4@")]

    cfg = Config(frames={"video_every_m": 20.0, "ignore": ["*_r.mp4", "Rear\\*"]})  # any case; a Windows path
    vdir = tmp_path / "o2"
    sc = scan(drive, cfg, video_dir=vdir)
    rows = {f.name: f for f in sc.frames}
    assert rows["DCIM/Movie/2026_1120_090000_001_R.MP4"].reason == 'ignored: matches frames.ignore "*_r.mp4"'
    assert rows["Rear/2026_1120_090000_002.MP4"].reason == 'ignored: matches frames.ignore "Rear/*"'
    assert rows["Rear/thumb.jpg"].reason == 'ignored: matches frames.ignore "Rear/*"'
    assert [u.path for u in sc.videos] == [str((drive / "DCIM/Movie/2026_1120_090000_001_F.MP4").absolute())]
    kept = [f for f in sc.frames if "@" in f.name]
    assert [(f.name, f.time, f.lat, f.lon) for f in kept] == [(f.name, f.time, f.lat, f.lon) for f in front]
    assert sorted(p.name for p in (vdir / "d").rglob("*") if p.is_dir()) == ["2026_1120_090000_001_F_MP4",
                                                                             "DCIM", "Movie"]


def test_video_drive_without_usable_frames_says_why_the_track_did_not_place_them(tmp_path, video_src, photos):
    """A dashcam card whose frames no track places stops (exit 3) with one line that counts the videos' frames
    apart from the files and says what the track files did: none found, or one of another time (names it)."""
    from test_cli import assert_user_error, patrol

    roads = need(TOYAMA / "roads.geojson")
    t0 = photos[0].time
    drive = tmp_path / "card"
    with_creation(video_src, drive / "Movie" / "20261120_090000_F.MP4", t0.timestamp())
    (drive / "Movie" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + bytes(200))
    r = patrol("run", drive, "--roads", roads, "--out", tmp_path / "o1", "--no-report")
    line = assert_user_error(r, 3, f"{drive}: no usable frames: all 1 file and ")
    assert "frames of 1 video rejected (no_gps_fix " in line and "no GPS track file" in line, line
    (drive / "GPS").mkdir()
    write_gpx(drive / "GPS" / "log.gpx", kubicka_points(t0 + timedelta(hours=1)))  # a track an hour later
    r = patrol("run", drive, "--roads", roads, "--out", tmp_path / "o2", "--no-report")
    line = assert_user_error(r, 3, "no usable frames")
    assert f"{drive / 'GPS' / 'log.gpx'}: the track covers none of the " in line, line


# ------------------------------------------------------------------------------------------------ reuse

def test_copied_drive_reuses_frames_a_changed_video_does_not(tmp_path, video_src, photos):
    """A drive copied to a NAS (every file a new modification time) reuses the frames taken from its videos (it
    decoded them all again: the reuse key held the mtime); a video replaced by another of the same size (here: its
    ftyp box's minor version changed, the frames identical) is taken again."""
    drive = video_drive(tmp_path / "sd" / "d", video_src, photos)
    cfg = cfg_with(video_every_m=20.0)
    vdir = tmp_path / "out" / "frames"
    first = scan(drive, cfg, video_dir=vdir)
    assert not first.videos[0].reused and first.videos[0].frames > 10
    jpgs = {p: p.stat().st_mtime_ns for p in vdir.rglob("*.jpg")}
    nas = tmp_path / "nas" / "d"
    shutil.copytree(drive, nas, copy_function=shutil.copyfile)  # contents only, as a copy to a share does
    later = drive.joinpath("dashcam.mp4").stat().st_mtime + 86400 * 3
    os.utime(nas / "dashcam.mp4", (later, later))
    again = scan(nas, cfg, video_dir=vdir)
    assert again.videos[0].reused and again.videos[0].frames == first.videos[0].frames
    assert [(f.name, f.time, f.lat) for f in again.frames] == [(f.name, f.time, f.lat) for f in first.frames]
    assert {p: p.stat().st_mtime_ns for p in vdir.rglob("*.jpg")} == jpgs  # not written again
    # the same size, other bytes (another recording cut to the same length would differ at its start and index)
    data = bytearray((nas / "dashcam.mp4").read_bytes())
    assert data[4:8] == b"ftyp"
    data[12:16] = (int.from_bytes(data[12:16], "big") + 1).to_bytes(4, "big")
    (nas / "dashcam.mp4").write_bytes(bytes(data))
    os.utime(nas / "dashcam.mp4", (later, later))
    changed = scan(nas, cfg, video_dir=vdir)
    assert not changed.videos[0].reused and changed.videos[0].frames == first.videos[0].frames


def test_fingerprint_reads_the_ends_of_a_long_video(tmp_path, video_src):
    """A video longer than 8 MB: a byte changed in its first or last 4 MB changes the key (the first frames, the
    index); its modification time does not; only 8 MB are read, whatever its size."""
    from detector.video import fingerprint

    body = video_src.read_bytes()
    p = tmp_path / "long.mp4"
    p.write_bytes(body * (12 * 2**20 // len(body) + 1))  # the real video repeated past 12 MB
    key = fingerprint(p)
    assert key[0] == p.stat().st_size > 12 * 2**20
    os.utime(p, (1, 1))
    assert fingerprint(p) == key
    data = bytearray(p.read_bytes())
    for at in (100, len(data) - 100):
        changed = bytearray(data)
        changed[at] ^= 0xFF
        p.write_bytes(bytes(changed))
        assert fingerprint(p) != key, at


def padded(src: Path, dst: Path, pad: int = 4_500_000) -> Path:
    """``src`` with a ``free`` box of ``pad`` bytes after its ftyp box (its chunk offsets, stco, moved on) and one at
    its end: the same video, its mdat wholly between the first and last 4 MB that ``fingerprint`` reads."""
    data = bytearray(src.read_bytes())
    ftyp = int.from_bytes(data[:4], "big")
    j = data.find(b"stco")
    assert data[4:8] == b"ftyp" and j > 0 and data.find(b"co64") < 0
    n = int.from_bytes(data[j + 8:j + 12], "big")
    for i in range(n):
        at = j + 12 + 4 * i
        data[at:at + 4] = (int.from_bytes(data[at:at + 4], "big") + pad).to_bytes(4, "big")
    box = pad.to_bytes(4, "big") + b"free" + bytes(pad - 8)
    dst.write_bytes(bytes(data[:ftyp]) + box + bytes(data[ftyp:]) + box)
    return dst


def damaged_copy(tmp_path: Path, video_src: Path, photos) -> tuple[Path, Path]:
    """(good, bad): the test video padded past the reuse key's 4 MB ends, and a copy of it with 5 % of its middle
    zeroed, as by a copy error (the same size and key; its decoding stops part-way)."""
    from detector.video import fingerprint

    good = padded(with_creation(video_src, tmp_path / "src.mp4", photos[0].time.timestamp()), tmp_path / "good.mp4")
    data = bytearray(good.read_bytes())
    mdat = data.find(b"mdat")
    assert 4 * 2**20 < mdat and len(data) - 4 * 2**20 > mdat + len(video_src.read_bytes()) // 2
    size = len(data) - 2 * 4_500_000  # the video's own bytes
    at = mdat + size * 2 // 5
    data[at:at + size // 20] = bytes(size // 20)  # 5 % of it zeroed, as by a copy error
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    assert fingerprint(bad) == fingerprint(good) and bad.stat().st_size == good.stat().st_size
    return good, bad


def test_same_size_video_repaired_in_the_middle_taken_again(tmp_path, video_src, photos):
    """A copy that failed in the middle (zeros, the same size: its first and last 4 MB, the reuse key, unchanged)
    stops decoding part-way; copied again right, it was taken as unchanged and its 18 frames (of 37) reused. An
    extraction that stopped early keeps a hash of the whole file, which its reuse checks: the good copy is decoded
    again; the damaged one, unchanged, is still reused. A good extraction is reused whatever its middle becomes
    later (its frames are what the video shows)."""
    good, bad = damaged_copy(tmp_path, video_src, photos)
    drive, vdir = tmp_path / "d", tmp_path / "o"
    drive.mkdir()
    write_gpx(drive / "log.gpx", kubicka_points(photos[0].time))
    cfg = cfg_with(video_every_m=10.0, track_max_gap_s=20.0)

    def run(src: Path):
        shutil.copyfile(src, drive / "dashcam.mp4")
        return scan(drive, cfg, video_dir=vdir).videos[0]

    first = run(bad)
    assert not first.reused and any(n.startswith("decoding stopped after ") for n in first.notes), first.notes
    assert run(bad).reused  # unchanged: not decoded again
    fixed = run(good)
    assert not fixed.reused and fixed.notes == [] and fixed.frames > first.frames, (fixed, first)
    assert len(list((vdir / "d" / "dashcam_mp4").glob("*.jpg"))) == fixed.frames
    print(f"\ndamaged copy: {first.frames} frames; copied again: {fixed.frames} frames", end=" ")
    assert run(good).reused
    later = run(bad)  # a good extraction stays, the damage coming later
    assert later.reused and later.frames == fixed.frames and later.notes == []


def test_repaired_copy_with_the_camera_files_mtime_taken_again_by_the_frames_stage(tmp_path, video_src, photos):
    """patrol run's frames stage is skipped when no drive file changed size or mtime. A copy (Explorer, robocopy,
    cp -p) keeps the camera file's mtime, so the good copy of a video whose damaged copy stopped decoding has the
    damaged one's size and mtime: the stage was skipped and the damaged copy's frames used, the whole-file hash
    never checked. A drive holding a video whose decoding stopped early is scanned again (the video is still
    reused while it is unchanged: the hash decides)."""
    from detector.pipeline import Manifest, RunSummary, stage_frames

    good, bad = damaged_copy(tmp_path, video_src, photos)
    drive, out = tmp_path / "d", tmp_path / "out"
    drive.mkdir()
    (out / ".work").mkdir(parents=True)
    write_gpx(drive / "log.gpx", kubicka_points(photos[0].time))
    cfg = cfg_with(video_every_m=10.0, track_max_gap_s=20.0)
    camera_mtime = photos[0].time.timestamp() + 80

    def run(src: Path) -> tuple[RunSummary, list]:
        shutil.copyfile(src, drive / "dashcam.mp4")
        os.utime(drive / "dashcam.mp4", (camera_mtime, camera_mtime))  # as the card's file: copied with its mtime
        s = RunSummary(out=out)
        return s, stage_frames([drive], cfg, out, Manifest(out), s)

    first, _ = run(bad)
    assert any(n.startswith("decoding stopped after ") for n in first.videos[0].notes), first.videos[0]
    again, _ = run(bad)
    assert again.videos[0].reused and again.videos[0].frames == first.videos[0].frames  # unchanged: not decoded
    fixed, frames = run(good)
    assert "frames" not in fixed.skipped_stages and not fixed.videos[0].reused, fixed.videos[0]
    assert fixed.videos[0].notes == [] and fixed.videos[0].frames > first.videos[0].frames
    assert sum("@" in f.name for f in frames if f.ok) == fixed.videos[0].frames
    done, _ = run(good)  # a good extraction: the stage is skipped again
    assert "frames" in done.skipped_stages and done.videos[0].frames == fixed.videos[0].frames


def test_track_looked_up_per_chunk_not_per_frame(tmp_path, video_src, photos, monkeypatch):
    """The sampling asks the track for 10 s of frames at once (141 frames at 2 fps: 8 lookups, not 141, the
    lookup was ~0.2 ms a frame: 4-7 % of a 720p video's time) and keeps exactly the frames a lookup per frame
    keeps; time stamps off the frame rate's grid (rounded to the millisecond, a phone's variable frame rate) stay
    on the chunk, interpolated at their own time (before, each such frame was looked up alone: no gain on real
    files)."""
    import detector.video as video
    from detector.tracks import read_track

    t0 = photos[0].time.timestamp()
    tr = read_track(write_gpx(tmp_path / "log.gpx", kubicka_points(photos[0].time)))
    asked: list[int] = []

    def locate(ts):
        asked.append(len(ts))
        got = tr.place(ts, 20.0)
        return got["lat"], got["lon"]

    chunked = video.extract(video_src, tmp_path / "a", t0, locate, 10.0, 10.0)
    assert chunked.decoded == 141 and len(asked) == 8 and sum(asked) == 160, asked
    asked.clear()
    monkeypatch.setattr(video, "_CHUNK_S", 0.0)  # no chunks: a lookup per frame
    single = video.extract(video_src, tmp_path / "b", t0, locate, 10.0, 10.0)
    assert asked == [1] * 141
    assert [f["t"] for f in chunked.frames] == [f["t"] for f in single.frames] and len(single.frames) > 25
    # time stamps off the grid (a phone's variable frame rate): each frame alone, at its own time
    import cv2

    real = cv2.VideoCapture

    class Jitter:  # the container's time stamps 7 ms late
        def __init__(self, *a):
            self._c = real(*a)

        def get(self, prop):
            v = self._c.get(prop)
            return v + 7.0 if prop == cv2.CAP_PROP_POS_MSEC else v

        def __getattr__(self, name):
            return getattr(self._c, name)

    monkeypatch.setattr(video, "_CHUNK_S", 10.0)
    monkeypatch.setattr(cv2, "VideoCapture", Jitter)
    asked.clear()
    late = video.extract(video_src, tmp_path / "c", t0, locate, 10.0, 10.0)
    assert len(asked) <= 9 and asked.count(1) == 0, asked
    assert late.frames[1]["t"] == pytest.approx(chunked.frames[1]["t"] + 0.007, abs=1e-3)
    monkeypatch.setattr(video, "_CHUNK_S", 0.0)  # the same frames as a lookup per frame at those times
    alone = video.extract(video_src, tmp_path / "d", t0, locate, 10.0, 10.0)
    assert [f["t"] for f in late.frames] == [f["t"] for f in alone.frames]
    # a broken frame rate does not make one chunk of a million grid points
    assert video._CHUNK_MAX <= 3000


# ------------------------------------------------------------------------------------------------ rear camera

def test_rear_video_frames_placed_behind_the_vehicle(tmp_path, photos):
    """A two-channel dashcam's rear video (``…_R.MP4``, ``frames.rear``): made from the same 41 photos as a rear
    camera of a vehicle driving the route backwards films them (it looks the way the photos looked: the photos
    played backwards in time, the GPX's times mirrored, so the track's heading is reversed), its frames get
    camera "rear" and `patrol run` finds the damages where the photos' run puts them. At 1 fps each frame is a
    photo at its own time and place (the photos and the track points are at whole seconds; at 2 fps a frame between
    two shows the earlier photo a second's drive, ~10 m, early). The same hits placed as a front camera's (the
    camera column taken out, no frames.rear) land farther off."""
    import cv2
    import geopandas as gpd
    import pandas as pd

    from detector.scoring import score_sites
    from test_cli import ok, patrol

    roads, truth = need(TOYAMA / "roads.geojson"), gpd.read_file(need(TOYAMA / "truth.geojson"))
    t0 = photos[0].time
    ts = np.array([f.time.timestamp() - t0.timestamp() for f in photos])
    span = ts[-1]
    drive = tmp_path / "rear-drive"
    src = tmp_path / "rear.mp4"
    w = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 1, (512, 512))
    cur, img = -1, None
    for k in range(int(span) + 1):
        i = int(np.searchsorted(ts, span - k, side="right") - 1)  # the photo of the mirrored time
        if i != cur:
            img, cur = cv2.resize(cv2.imread(str(photos[i].path)), (512, 512), interpolation=cv2.INTER_AREA), i
        w.write(img)
    w.release()
    with_creation(src, drive / "DCIM" / "Movie" / "2026_1120_090000_001_R.MP4", t0.timestamp())
    pts = kubicka_points(t0)
    pts[:, 0] = 2 * t0.timestamp() + span - pts[:, 0]  # the vehicle at time s is where it was at span - s
    write_gpx(drive / "log.gpx", pts[::-1])
    photo_drive = tmp_path / "photo-drive"
    photo_drive.mkdir()
    for p in photos:
        shutil.copy(p.path, photo_drive / Path(p.path).name)
    cfg = tmp_path / "rear.yaml"
    cfg.write_text('frames:\n  rear: ["*_R.MP4"]\n', encoding="utf-8")
    r = ok(patrol("run", drive, "--roads", roads, "--out", tmp_path / "vo", "--config", cfg, "--no-report"))
    assert "of a rear camera" in " ".join(r.stdout.split()), r.stdout
    ok(patrol("run", photo_drive, "--roads", roads, "--out", tmp_path / "po", "--no-report"))
    rows = (tmp_path / "vo" / "frames.csv").read_text(encoding="utf-8").splitlines()
    head = rows[0].split(",")
    cam = head.index("camera")
    assert {r.split(",")[cam] for r in rows[1:]} == {"rear"} and len(rows) > 40
    det = pd.read_csv(tmp_path / "vo" / "detections.csv", keep_default_na=False)
    assert set(det["camera"]) == {"rear"} and len(det) > 10
    # as a front camera's, which is what patrol did before frames.rear
    det.drop(columns="camera").to_csv(tmp_path / "as-front.csv", index=False)
    ok(patrol("locate", tmp_path / "as-front.csv", "--roads", roads, "--out", tmp_path / "fo"))

    def cands(out):
        c = gpd.read_file(out / "candidates.geojson")
        c["lon"], c["lat"] = c.geometry.x, c.geometry.y
        return c, score_sites(c, truth)

    (cv, sv), (cp, sp), (cf, _) = cands(tmp_path / "vo"), cands(tmp_path / "po"), cands(tmp_path / "fo")
    a = cp.to_crs(6675)

    def off(c):
        b = c.to_crs(6675)
        return np.array([b[b["class"] == x["class"]].distance(x.geometry).min() for _, x in a.iterrows()])

    print(f"\nrear video: {sv['found']} sites found, precision {sv['precision']:.2f}, {len(cv)} candidates, median "
          f"{np.median(off(cv)):.1f} m from the photos' candidates; as a front camera's: median "
          f"{np.median(off(cf)):.1f} m; photos: {sp['found']} found, precision {sp['precision']:.2f}")
    assert sv["found"] >= sp["found"] - 1 and sv["precision"] >= sp["precision"] - 0.15 and sv["duplicates"] == 0
    assert np.mean(off(cv) < 10.0) >= 0.8, off(cv)
    assert np.median(off(cv)) < np.median(off(cf)), (off(cv), off(cf))


# ------------------------------------------------------------------------------------------------ stops passed over

@pytest.fixture(scope="module")
def video_10fps(tmp_path_factory, photos) -> Path:
    """The module's video at 10 fps (as a dashcam writes many frames a second) and 320 px: its 27 s in a gap of
    the real track (a stop at a light) and slow stretches hold seconds in which no frame is kept."""
    return write_video(tmp_path_factory.mktemp("video10") / "src.mp4", photos, fps=10, size=320)


def _extract_all(tmp_path, video_src, photos, name, monkeypatch, skip, seek_off=0):
    """scan over a drive of the video + GPX with video.SKIP_MIN_S = ``skip``; a VideoCapture whose seeks land
    ``seek_off`` frames late. Returns (Extracted, {frame name: JPEG bytes})."""
    import cv2

    import detector.video as video

    monkeypatch.setattr(video, "SKIP_MIN_S", skip)
    real_cap, got = cv2.VideoCapture, []

    class Cap:
        def __init__(self, *a):
            self._c = real_cap(*a)

        def set(self, prop, v):
            return self._c.set(prop, v + seek_off if prop == cv2.CAP_PROP_POS_FRAMES else v)

        def __getattr__(self, attr):
            return getattr(self._c, attr)

    real_extract = video.extract

    def extract(*a, **k):
        got.append(real_extract(*a, **k))
        return got[-1]

    monkeypatch.setattr(cv2, "VideoCapture", Cap)
    monkeypatch.setattr(video, "extract", extract)
    drive = video_drive(tmp_path / name, video_src, photos)
    sc = scan(drive, Config(), video_dir=tmp_path / f"{name}-frames")
    monkeypatch.undo()
    frames = {f.name: Path(f.path).read_bytes() for f in sc.frames if "@" in f.name}
    return got[0], frames


def test_stops_passed_over_by_seeking_keep_the_same_frames(tmp_path, video_10fps, photos, monkeypatch):
    """A stretch in which the track says no frame can be kept (the stop in the track's gap, slow driving) is passed
    over by a seek instead of decoding every frame (bench_video_run.py: 23 % of the 1080p video's frames, the frames
    stage's CPU x1.4 less): the frames kept, their times and their JPEG bytes are those of decoding every frame; a seek that
    lands on another frame is noticed and the video decoded frame by frame from its start instead."""
    every, every_frames = _extract_all(tmp_path, video_10fps, photos, "every", monkeypatch, None)
    seek, seek_frames = _extract_all(tmp_path, video_10fps, photos, "seek", monkeypatch, 2.0)
    late, late_frames = _extract_all(tmp_path, video_10fps, photos, "late", monkeypatch, 2.0, seek_off=3)
    assert every.skipped == 0 and every.decoded == seek.decoded == late.decoded > 600
    assert seek.skipped > 0.2 * seek.decoded, (seek.skipped, seek.decoded)
    assert len(every_frames) > 40
    assert seek_frames == every_frames  # the same names (times) and bytes
    assert late_frames == every_frames and late.skipped == 0  # decoded one by one after the first seek
    assert [f["t"] for f in seek.frames] == [f["t"] for f in every.frames] == [f["t"] for f in late.frames]


def test_seeking_looks_ahead_at_most_chunk_max_frames(tmp_path, video_10fps, photos, monkeypatch):
    """The look-ahead before a seek asks the track for at most _CHUNK_MAX frames' positions (a broken frame rate of
    90,000 with an hour's max_interval_s asked for 324 M at once); cut that short, the stops are still passed over
    in shorter seeks and the frames kept are those of decoding every frame."""
    import detector.video as video

    every, every_frames = _extract_all(tmp_path, video_10fps, photos, "every", monkeypatch, None)
    monkeypatch.setattr(video, "_CHUNK_MAX", 60)  # 6 s of this 10 fps video (undone by _extract_all at its end)
    capped, capped_frames = _extract_all(tmp_path, video_10fps, photos, "capped", monkeypatch, 2.0)
    assert capped.skipped > 0.1 * capped.decoded, (capped.skipped, capped.decoded)
    assert capped_frames == every_frames
