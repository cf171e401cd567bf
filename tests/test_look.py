"""A frame's look (detector/look.py): measured in the detect stage on the decoded picture, kept in its journal and
frames.csv (a resumed run keeps it), judged by frames.look_*. Real data: the sample drive's frames, as they are
and darkened, washed out, blurred with OpenCV (bench/bench_look.py measures where the lines fall)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import TOYAMA, need
from detector.config import Config
from detector.frames import read_frames_csv, scan_drive
from detector.look import look_verdict, measure_look
from detector.pipeline import WORK, Manifest, RunSummary, stage_detect

P2 = "toyama-2026-11-p2"


def _frames(n=12):
    toyama = need(TOYAMA)
    return [f for f in scan_drive(toyama / P2, Config()) if f.ok][:n]


def test_the_sample_frames_look_good_and_degraded_ones_do_not():
    """The sample's frames: brightness, clipped share and sharpness in range, no verdict; the same pictures darkened
    as at night are dark, burnt out by a low sun glare, smeared sideways (21 px) blurred."""
    spec = Config().frames
    for f in _frames():
        img = cv2.imread(str(f.path))
        b, c, s = measure_look(img)
        assert 60 < b < 220 and 0 <= c < 0.3 and 4.5 < s < 60, (f.name, b, c, s)
        assert look_verdict(b, c, s, spec) == ""
        night = np.clip((img / 255.0) ** 2.5 * 0.25 * 255 + 0.5, 0, 255).astype(np.uint8)
        assert look_verdict(*measure_look(night), spec) == "dark"
        sun = np.clip(img * 3.0 + 0.5, 0, 255).astype(np.uint8)
        assert "glare" in look_verdict(*measure_look(sun), spec)
        ker = np.zeros((21, 21), np.float32)
        ker[10, :] = 1 / 21
        assert look_verdict(*measure_look(cv2.filter2D(img, -1, ker)), spec) == "blurred"
    assert look_verdict(math.nan, math.nan, math.nan, spec) == ""  # not measured: a look


class NoBoxes:
    """A detector finding nothing (the look is measured whatever it finds); ``calls`` counts its batches."""

    def __init__(self):
        self.calls = 0

    def predict(self, images):
        self.calls += 1
        return [(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=object)) for _ in images]


def test_the_detect_stage_measures_the_look_and_a_resumed_run_keeps_it(tmp_path):
    """stage_detect gives every detected frame its numbers and verdict; frames.csv (as written) carries them. A run
    whose stage was not finished (its journal kept, the stage not marked done) reads them from the journal without
    detecting again; a changed threshold changes the verdict, not the numbers, and needs no detection."""
    frames = _frames(6)
    # one frame made dark for real: a copy of the drive with it darkened (its EXIF is not needed to detect)
    drive = tmp_path / P2
    drive.mkdir()
    for f in frames:
        shutil.copy(f.path, drive / f.name)
        f.path = drive / f.name
    img = cv2.imread(str(frames[0].path))
    cv2.imwrite(str(frames[0].path), np.clip((img / 255.0) ** 2.5 * 0.25 * 255, 0, 255).astype(np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    weights = out / "w.onnx"
    weights.write_bytes(b"\x08none")
    cfg = Config()
    got, _ = stage_detect(frames, cfg, out, weights, Manifest(out), RunSummary(out=out), detector=NoBoxes())
    nums = [(f.brightness, f.clipped, f.sharpness) for f in got]
    assert all(not math.isnan(v) for r in nums for v in r)
    assert [f.look for f in got] == ["dark"] + [""] * 5
    # summary.json counts them by drive, with or without a registry (a run without --store said nothing of them)
    import json

    from detector.pipeline import _fill_frame_counts, write_summary_json

    s0 = RunSummary(out=out)
    _fill_frame_counts(s0, got)
    doc = json.loads(write_summary_json(s0, "run", cfg).read_text(encoding="utf-8"))
    assert doc["frames"]["poor_look"] == {got[0].drive: 1} and doc["registry"] is None, doc["frames"]
    back = read_frames_csv(out / WORK / "frames.detect.csv")
    assert [(f.brightness, f.clipped, f.sharpness, f.look) for f in back] == [(*n, f.look) for n, f in zip(nums, got)]
    # resumed: the stage not marked done, its journal there
    Manifest(out).forget("detect")
    det = NoBoxes()
    again, _ = stage_detect(frames, cfg, out, weights, Manifest(out), RunSummary(out=out), detector=det)
    assert det.calls == 0 and [(f.brightness, f.clipped, f.sharpness, f.look) for f in again] == [
        (f.brightness, f.clipped, f.sharpness, f.look) for f in got]
    # another threshold: the stage is fresh (skipped), the verdict follows the config
    strict = Config.model_validate({"frames": {"look_min_brightness": 255}})
    det = NoBoxes()
    s = RunSummary(out=out)
    third, _ = stage_detect(frames, strict, out, weights, Manifest(out), s, detector=det)
    assert det.calls == 0 and "detect" in s.skipped_stages and all(f.look.startswith("dark") for f in third)
