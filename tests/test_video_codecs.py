"""Video sampling on clips as phones and dashcams write them, not only as OpenCV's VideoWriter does (mp4v, CFR, no
B-frames): every frame of the fixture clips (``tests/data/video``, made by ``make_clips.py`` with ffmpeg; none is
needed to run these tests) shows its own index as a row of binary blocks, and ``clips.json`` holds each frame's
presentation time as ffprobe reads it. A kept frame must show the frame of the time ``extract`` gives it: a seek
that lands a few frames off, or a time taken from the frame count of a variable frame rate, places every damage
of the video metres off on the track, silently.

The track: a synthetic vehicle at 8 m/s (a frame every 2 m kept) with stops of 6 and 6.5 s (the seek path over stops is taken) on a straight
line; the clips are ~20 s of 320x240.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

import detector.video as video

DATA = Path(__file__).resolve().parent / "data" / "video"
CLIPS = json.loads((DATA / "clips.json").read_text())
T0 = 1_763_000_000.0  # the recordings' start (UTC epoch s)
LAT0, LON0, SPEED = 36.7, 137.2, 8.0
STOPS = ((3.0, 9.0), (11.0, 17.5))  # seconds into the recording the vehicle stands still


def _maker():
    spec = importlib.util.spec_from_file_location("make_clips", DATA / "make_clips.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # the pattern's reader (numpy only; ffmpeg is needed only to make the clips)
    return mod


read_index = _maker().read_index


def metres_at(s: np.ndarray) -> np.ndarray:
    """Distance driven at s seconds into the recording."""
    moving = np.asarray(s, float).copy()
    for a, b in STOPS:
        moving -= np.clip(s - a, 0.0, b - a)
    return SPEED * np.maximum(moving, 0.0)


def locate_from(ts: np.ndarray, t0: float) -> tuple[np.ndarray, np.ndarray]:
    """The vehicle's (lat, lon) at UTC epoch ``ts`` on a drive recorded from ``t0``: due east from LAT0, LON0."""
    d = metres_at(np.asarray(ts, float) - t0)
    return np.full(len(d), LAT0), LON0 + d / (111_320.0 * math.cos(math.radians(LAT0)))


def locate(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return locate_from(ts, T0)


def run(name: str, folder: Path, skip: float | None = 2.0, monkeypatch=None) -> video.Extracted:
    if monkeypatch is not None:
        monkeypatch.setattr(video, "SKIP_MIN_S", skip)
    return video.extract(DATA / name, folder, T0, locate, every_m=2.0, max_interval_s=10.0)


def shown(folder: Path, f: dict) -> int | None:
    import cv2

    img = cv2.imread(str(folder / f["file"]), cv2.IMREAD_GRAYSCALE)
    assert img is not None and (img.shape[1], img.shape[0]) == (f["width"], f["height"])
    return read_index(img)


def check_frames(name: str, folder: Path, got: video.Extracted) -> None:
    """Each kept frame shows the frame whose presentation time is the time extract gives it."""
    clip = CLIPS[name]
    pts = np.array(clip["pts"])
    first = 600 - len(pts)  # a clip trimmed by its edit list shows frames from this index on
    wrong = []
    for f in got.frames:
        i = shown(folder, f)
        if i is None:
            wrong.append((f["t"], "pattern unreadable (a frame turned, or not decoded)"))
        elif not abs(pts[i - first] - f["t"]) < 0.0011:  # t is rounded to the millisecond
            wrong.append((f["t"], f"shows frame {i - first} of time {pts[i - first]:.4f}"))
    assert not wrong, (name, wrong[:5], len(wrong), len(got.frames))


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_kept_frames_show_the_frame_of_their_time(tmp_path, monkeypatch, name):
    """For every clip: the frames kept with seeking over the stops are frames of the time they are given (the
    index drawn in each is the frame ffprobe times there), the same as decoding every frame keeps; the video's
    whole length is decoded and it is not reported as cut off."""
    seek = run(name, tmp_path / "seek", 2.0, monkeypatch)
    every = run(name, tmp_path / "every", None, monkeypatch)
    check_frames(name, tmp_path / "seek", seek)
    check_frames(name, tmp_path / "every", every)
    assert [f["t"] for f in seek.frames] == [f["t"] for f in every.frames]
    assert seek.decoded == every.decoded == len(CLIPS[name]["pts"])
    assert not seek.notes and not every.notes, (seek.notes, every.notes)
    # a frame every 2 m while moving (8 m/s: 7.5 s of the clip)
    assert 15 <= len(seek.frames) <= 40, len(seek.frames)
    print(f"\n{name}: {len(seek.frames)} kept, {seek.skipped} of {seek.decoded} frames passed over by seeks", end="")


@pytest.mark.parametrize("name", ["h264_offset.mp4", "h264_high_bf.mp4", "h264_vfr.mp4"])
def test_patrol_scan_places_each_frame_where_the_track_was_when_it_was_shown(tmp_path, name):
    """Through the frames stage (``scan``: start from the file name, positions from a GPX track of the synthetic
    drive at 1 Hz): each video frame's time is the recording's start + the presentation time of the frame it shows
    (a video track starting 1.5 s into the movie included: before, its frames were 1.5 s early, 12 m on this drive
    at 8 m/s), and its place is the track's there."""
    import shutil
    from datetime import datetime

    import cv2

    from detector.config import Config
    from detector.frames import scan
    from detector.geo import distance_bearing
    from test_tracks import write_gpx

    cfg = Config()
    start = datetime(2025, 11, 13, 11, 13, 20, tzinfo=cfg.tz)
    drive = tmp_path / "d"
    drive.mkdir()
    shutil.copy(DATA / name, drive / f"{start:%Y%m%d_%H%M%S}.mp4")
    ts = start.timestamp() + np.arange(0.0, 30.0, 1.0)
    lat, lon = locate_from(ts, start.timestamp())
    write_gpx(drive / "log.gpx", np.column_stack([ts, lat, lon]))
    sc = scan(drive, cfg, video_dir=tmp_path / "frames")
    frames = [f for f in sc.frames if "@" in f.name]
    assert sc.videos[0].problem == "" and sc.videos[0].time_source == "video_name" and len(frames) >= 10
    pts = np.array(CLIPS[name]["pts"])
    for f in frames:
        assert f.ok, (f.name, f.reason)
        i = read_index(cv2.imread(str(f.path), cv2.IMREAD_GRAYSCALE))
        t = (f.time - start).total_seconds()
        assert abs(pts[i] - t) < 0.0011, (f.name, i, pts[i], t)
        want = np.interp(f.time.timestamp(), ts, lon)  # the GPX is linear between its points
        assert distance_bearing(f.lat, f.lon, LAT0, want)[0] < 0.05, f.name

