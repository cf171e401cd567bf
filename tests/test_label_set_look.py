"""`patrol label-set` measures each frame's look as the detect stage does (frames.csv's brightness, clipped,
sharpness, look), keeps it with the predictions in OUT/.work, and chooses a frame too dark to show the road only where
frames of a good look cannot fill --n.

Real data: the first 20 photos of the sample drive's pass 1, every other one darkened as at night (gamma 2.5, gain
0.25, as bench/bench_look.py: all of them ``dark``), their EXIF (time, GPS) kept; the shipped ONNX model."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")

from detector.config import DEFAULT_CONFIG, DEFAULT_WEIGHTS_ONNX, load_config  # noqa: E402

from conftest import TOYAMA, need  # noqa: E402

P1 = TOYAMA / "toyama-2026-11-p1"
N_PHOTOS = 20
N = 5


def _frames_csv(out: Path) -> dict[str, dict]:
    with open(out / "frames.csv", encoding="utf-8-sig", newline="") as fh:
        return {r["name"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """(the drive folder, the names of its darkened photos)."""
    from PIL import Image

    need(P1)
    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    d = tmp_path_factory.mktemp("lslook") / "p1"
    d.mkdir()
    lut = [round(255 * 0.25 * (v / 255) ** 2.5) for v in range(256)]
    dark = set()
    for k, p in enumerate(sorted(P1.glob("IMG_2026*.jpg"))[:N_PHOTOS]):
        if k % 2:
            with Image.open(p) as im:
                im.point(lut * len(im.getbands())).save(d / p.name, quality=95, exif=im.info["exif"])
            dark.add(p.name)
        else:
            shutil.copy2(p, d / p.name)
    return d, dark


def test_frames_csv_has_each_frames_look_as_detect_measures_it_and_a_rerun_reads_it_from_the_cache(night, tmp_path):
    """frames.csv's look columns as the detect stage fills them (the same numbers for the same pixels), the
    darkened photos ``dark``; a second label-set into OUT predicts nothing and writes the same looks."""
    from detector.frames import load_image
    from detector.labelset import make_label_set
    from detector.look import measure_look

    drive, dark = night
    cfg = load_config(DEFAULT_CONFIG)
    out = tmp_path / "set"
    s = make_label_set([drive], out, cfg, DEFAULT_WEIGHTS_ONNX, n=N)
    fr = _frames_csv(out)
    assert len(fr) == N_PHOTOS and all(r["status"] == "ok" for r in fr.values())
    assert {n for n, r in fr.items() if r["look"]} == dark, {n: r["look"] for n, r in fr.items()}
    assert all(fr[n]["look"] == "dark" and float(fr[n]["brightness"]) < cfg.frames.look_min_brightness for n in dark)
    for f in s.frames:  # the detect stage's numbers (pipeline.look_record on the decoded picture), to the digit
        b, c, sh = measure_look(load_image(f))
        r = fr[f.name]
        assert (float(r["brightness"]), float(r["clipped"]), float(r["sharpness"])) == (b, c, sh), f.name
    assert s.poor_look == len(dark)
    again = make_label_set([drive], out, cfg, DEFAULT_WEIGHTS_ONNX, n=N)
    assert (again.predicted, again.from_cache) == (0, N_PHOTOS)
    cols = ("brightness", "clipped", "sharpness", "look")
    assert {n: [r[k] for k in cols] for n, r in _frames_csv(out).items()} == {
        n: [r[k] for k in cols] for n, r in fr.items()}
    # a stricter threshold: the verdict follows this run's config, the numbers still from the cache
    cfg.frames.look_min_brightness = 200.0
    strict = make_label_set([drive], out, cfg, DEFAULT_WEIGHTS_ONNX, n=N)
    assert strict.predicted == 0 and all(r["look"] == "dark" for r in _frames_csv(out).values())


def test_frames_too_dark_are_chosen_only_where_good_ones_run_short(night, tmp_path, monkeypatch):
    """Half the frames darkened: with --n 5 none of them is chosen (ten of a good look are there); taking no account
    of the look (POOR_LOOK_LAST off) the same run chooses some of them (their borderline calls rank high), so the
    rule is what keeps them out. With every frame dark they are chosen all the same (nothing better)."""
    from detector import labelset
    from detector.labelset import make_label_set

    drive, dark = night
    cfg = load_config(DEFAULT_CONFIG)
    s = make_label_set([drive], tmp_path / "set", cfg, DEFAULT_WEIGHTS_ONNX, n=N)
    assert len(s.picks) == N
    assert not [p.pred.frame.name for p in s.picks if p.pred.frame.name in dark]
    assert s.chosen_poor == 0
    monkeypatch.setattr(labelset, "POOR_LOOK_LAST", False)
    blind = make_label_set([drive], tmp_path / "blind", cfg, DEFAULT_WEIGHTS_ONNX, n=N)
    assert [p.pred.frame.name for p in blind.picks if p.pred.frame.name in dark]
    monkeypatch.setattr(labelset, "POOR_LOOK_LAST", True)
    cfg.frames.look_min_brightness = 250.0  # every frame dark: still N chosen
    allpoor = make_label_set([drive], tmp_path / "set", cfg, DEFAULT_WEIGHTS_ONNX, n=N)
    assert len(allpoor.picks) == N and allpoor.chosen_poor == N and allpoor.poor_look == N_PHOTOS
