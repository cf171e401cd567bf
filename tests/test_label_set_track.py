"""`patrol label-set --track`: frames of a camera that writes no GPS, placed from a track file as `patrol run` and
`patrol detect` place them, are spread and split by place as the same frames with their own GPS are; without a
position the console says once how the split is made; frames.csv in OUT names every file read and why one was
rejected.

Real data: the first 30 photos of the sample drive's pass 1 (``IMG_broken_upload.jpg`` and ``IMG_empty.jpg`` beside
them), as they are, and copied with their GPS EXIF removed (the pixels untouched: tests/test_tracks.strip_gps) with a
GPX of the originals' EXIF positions at their times."""

from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")

from detector.config import DEFAULT_WEIGHTS_ONNX  # noqa: E402

from conftest import ROOT, TOYAMA, need  # noqa: E402
from test_tracks import strip_gps, write_gpx  # noqa: E402

P1 = TOYAMA / "toyama-2026-11-p1"
N_PHOTOS = 30
N = 8
BROKEN = ("IMG_broken_upload.jpg", "IMG_empty.jpg")


def _patrol(*args):
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, env={**os.environ, "COLUMNS": "200"})


def _rows(d: Path, name: str = "label-set.csv") -> list[dict]:
    return list(csv.DictReader((d / name).read_text(encoding="utf-8-sig").splitlines()))


@pytest.fixture(scope="module")
def drives(tmp_path_factory):
    """(the drive with GPS, the same drive without, a GPX of the first's positions); both folders named p1, so that
    label-set's image names are the same."""
    from detector.config import Config
    from detector.frames import scan

    need(P1)
    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    root = tmp_path_factory.mktemp("lstrack")
    gps, bare = root / "gps" / "p1", root / "bare" / "p1"
    gps.mkdir(parents=True), bare.mkdir(parents=True)
    for p in sorted(P1.glob("IMG_2026*.jpg"))[:N_PHOTOS]:
        shutil.copy(p, gps / p.name)
        strip_gps(p, bare / p.name)
    for name in BROKEN:
        shutil.copy(P1 / name, gps / name)
        shutil.copy(P1 / name, bare / name)
    orig = [f for f in scan(gps, Config()).frames if f.ok]
    assert len(orig) == N_PHOTOS and all(math.isfinite(f.lat) and f.time for f in orig)
    assert not any(f.ok for f in scan(bare, Config()).frames)  # no position: a run rejects them all (no_gps_fix)
    pts = np.array([[f.time.timestamp(), f.lat, f.lon] for f in orig])
    gpx = write_gpx(root / "logger.gpx", pts)  # beside the drive, not in it: found only through --track
    return gps, bare, gpx


@pytest.fixture(scope="module")
def with_gps(drives, tmp_path_factory):
    out = tmp_path_factory.mktemp("lsgps") / "set"
    run = _patrol("label-set", drives[0], "--out", out, "--n", N)
    assert run.returncode == 0, run.stdout + run.stderr
    return out, run.stdout


def test_track_places_frames_that_are_chosen_and_split_as_with_their_own_gps(drives, with_gps, tmp_path):
    """The GPS-less copies with --track logger.gpx: the same frames chosen, the same split and the same positions
    (to the GPX's 7 decimals) as the originals; the summary says how many frames the track placed."""
    _, bare, gpx = drives
    ref, _ = with_gps
    out = tmp_path / "set"
    run = _patrol("label-set", bare, "--out", out, "--n", N, "--track", gpx)
    assert run.returncode == 0, run.stdout + run.stderr
    said = run.stdout
    assert f"{N_PHOTOS} placed from track files" in said, said
    assert f"{gpx}: GPX, {N_PHOTOS} points: {N_PHOTOS} frames placed" in said, said
    assert "has a position" not in said, said  # no warning: every frame is placed
    a, b = _rows(ref), _rows(out)
    assert len(a) == len(b) == N
    key = ("image", "frame", "time", "reason", "split", "prelabels")
    assert [[r[k] for k in key] for r in b] == [[r[k] for k in key] for r in a]
    assert {r["split"] for r in b} == {"train", "val"}
    for k in ("lat", "lon"):
        assert np.abs(np.array([float(r[k]) for r in b]) - [float(r[k]) for r in a]).max() <= 2e-6
    assert (out / "val.txt").read_text() == (ref / "val.txt").read_text()
    # frames.csv: every file read, the broken ones with their reason, the photos placed from the track
    fr = {r["name"]: r for r in _rows(out, "frames.csv")}
    assert set(fr) == {p.name for p in bare.iterdir()}
    for name in BROKEN:
        assert fr[name]["status"] == "rejected" and fr[name]["reason"], fr[name]
    photos = [r for n, r in fr.items() if n not in BROKEN]
    assert all(r["status"] == "ok" and r["position_source"] == "track_file" and r["lat"] for r in photos)


def test_without_a_position_the_console_says_once_how_the_split_is_made(drives, tmp_path):
    """The GPS-less copies without --track: chosen and split by time in the drive, and the console says so once,
    naming --track; frames.csv lists the photos (ok, no position) and the broken files with their reasons."""
    from detector.labelset import SPLIT_GAP_S

    _, bare, _ = drives
    out = tmp_path / "set"
    run = _patrol("label-set", bare, "--out", out, "--n", N)
    assert run.returncode == 0, run.stdout + run.stderr
    said = " ".join(run.stdout.split())  # the table's wrapped cells joined
    assert said.count(f"none of the {N_PHOTOS} frames has a position") == 1, run.stdout
    assert "split by time alone" in said and "--track FILE" in said and "for a split by place" in said, run.stdout
    assert "val is whole stretches of each drive by time" in said, run.stdout
    rows = _rows(out)
    assert len(rows) == N and not any(r["lat"] for r in rows) and {r["split"] for r in rows} == {"train", "val"}
    from datetime import datetime

    t = {s: [datetime.fromisoformat(r["time"]).timestamp() for r in rows if r["split"] == s] for s in ("train", "val")}
    assert np.abs(np.subtract.outer(t["val"], t["train"])).min() >= SPLIT_GAP_S, t
    fr = {r["name"]: r for r in _rows(out, "frames.csv")}
    assert set(fr) == {p.name for p in bare.iterdir()}
    assert {n for n, r in fr.items() if r["status"] != "ok"} == set(BROKEN)
    assert all(fr[n]["reason"] for n in BROKEN) and not any(r["lat"] for r in fr.values())


def test_a_track_file_not_there_is_refused_before_any_work(drives, tmp_path):
    """--track naming no file: exit 3 with the file named, as run and detect refuse it, and OUT not made."""
    _, bare, gpx = drives
    out = tmp_path / "set"
    run = _patrol("label-set", bare, "--out", out, "--track", gpx.with_name("nope.gpx"))
    assert run.returncode == 3, run.stdout + run.stderr
    assert "nope.gpx" in run.stderr and "track file not found" in run.stderr, run.stderr
    assert not out.exists()


def test_a_partly_placed_drive_is_warned_once_with_how_many_of_its_frames_have_no_position(drives, with_gps,
                                                                                           tmp_path):
    """The GPS-less copies with a GPX of only the first half of the drive (a logger started late, or stopped): the
    frames after its end have no position and are spread and split by time; the console says so once, naming the
    drive and how many of its frames have none (frames.csv: those ok, without lat/lon), and --track. Before, such a
    drive got no warning: only a drive with no position at all did."""
    from detector.config import Config
    from detector.frames import scan

    gps, bare, _ = drives
    orig = [f for f in scan(gps, Config()).frames if f.ok]
    half = np.array([[f.time.timestamp(), f.lat, f.lon] for f in orig[:N_PHOTOS // 2]])
    gpx = write_gpx(tmp_path / "first-half.gpx", half)
    out = tmp_path / "set"
    run = _patrol("label-set", bare, "--out", out, "--n", N, "--track", gpx)
    assert run.returncode == 0, run.stdout + run.stderr
    fr = [r for r in _rows(out, "frames.csv") if r["status"] == "ok"]
    unplaced = sum(not r["lat"] for r in fr)
    assert len(fr) == N_PHOTOS and 0 < unplaced < N_PHOTOS, unplaced
    said = " ".join(run.stdout.split())  # the table's wrapped cells joined
    assert said.count("have no position") == 1, run.stdout
    assert f"p1: {unplaced} of its {N_PHOTOS} frames have no position" in said, run.stdout
    assert "--track FILE for a split by place" in said and "none of" not in said, run.stdout
    rows = _rows(out)
    assert len(rows) == N and {r["split"] for r in rows} == {"train", "val"}
    # the drive with its own GPS on every frame: no such warning
    assert "have no position" not in " ".join(with_gps[1].split()) and "warning" not in with_gps[1], with_gps[1]
