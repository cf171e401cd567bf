"""`patrol label-set`'s train/val split (by place: no damage in both), its drive names (two folders of one name
told apart) and a label-set folder copied elsewhere (README.txt's paths relative to it), on the sample drives."""

from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")

from detector.config import DEFAULT_WEIGHTS_ONNX  # noqa: E402

from conftest import ROOT, TOYAMA, need  # noqa: E402

P1, P2 = TOYAMA / "toyama-2026-11-p1", TOYAMA / "toyama-2026-11-p2"


def _patrol(*args):
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, env={**os.environ, "COLUMNS": "200"})


def _rows(d: Path) -> list[dict]:
    return list(csv.DictReader((d / "label-set.csv").read_text(encoding="utf-8-sig").splitlines()))


def _metres(a: list[dict], b: list[dict]) -> np.ndarray:
    """Distances (m) between rows ``a`` and rows ``b`` (NaN where one has no position)."""
    def ll(rows):
        return np.radians([[float(r["lat"] or "nan"), float(r["lon"] or "nan")] for r in rows]).reshape(-1, 2)

    (la, oa), (lb, ob) = ll(a).T, ll(b).T
    c = math.cos(np.nanmean(np.r_[la, lb]))
    return 6371008.8 * np.hypot(la[:, None] - lb[None, :], (oa[:, None] - ob[None, :]) * c)


def _need_model():
    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")


@pytest.fixture(scope="module")
def two_passes(tmp_path_factory):
    """Both passes of the sample route (p2 drives p1's road a week later), 30 frames chosen."""
    need(P1), need(P2), _need_model()
    out = tmp_path_factory.mktemp("split") / "set"
    run = _patrol("label-set", P1, P2, "--out", out, "--n", 30)
    assert run.returncode == 0, run.stdout + run.stderr
    return out, run.stdout


def test_no_val_pick_is_within_the_gap_of_a_train_pick_on_either_pass(two_passes):
    """Val is whole stretches of road: every val photo at least SPLIT_GAP_M from every train photo, in either pass
    (p2 drives p1's road: a val stretch of p1 is val in p2 too). Before, every 5th pick was val and its neighbours
    (3 s / 20 m away, the same pothole seen from 25 m and 5 m) were train."""
    from detector.labelset import SPLIT_GAP_M

    out, said = two_passes
    rows = _rows(out)
    train = (out / "train.txt").read_text().split()
    val = (out / "val.txt").read_text().split()
    assert len(rows) == 30 and len(train) + len(val) == 30 and len(val) == 6, (len(train), len(val))
    vr = [r for r in rows if f"images/{r['image']}" in val]
    tr = [r for r in rows if f"images/{r['image']}" in train]
    dm = _metres(vr, tr)
    assert np.isfinite(dm).all() and dm.min() >= SPLIT_GAP_M, dm.min()
    # label-set.csv's split column says which list each photo is in
    assert all(r["split"] == "val" for r in vr) and all(r["split"] == "train" for r in tr)
    # the kinds are in val too, and both passes in train
    assert {"uncertain", "confident"} <= {r["reason"] for r in vr}, vr
    assert {r["drive"] for r in tr} == {P1.name, P2.name}
    assert "6 val: val is whole stretches of the drives" in said, said


def _without_gps(src: Path, dst: Path) -> None:
    """``src`` saved as ``dst`` with its time kept and its GPS block removed (a phone with location off)."""
    from PIL import Image

    with Image.open(src) as im:
        exif = im.getexif()
        exif.get_ifd(0x8769)  # the Exif block (DateTimeOriginal), loaded so that it is written back
        del exif[0x8825]
        im.save(dst, quality=95, exif=exif)


def test_two_drives_of_one_folder_name_are_told_apart_and_spread_as_two_drives(tmp_path):
    """Two cars' folders both called 2026-11-20, over the same 30 seconds of road: car1's photos with GPS, car2's
    without (location off). label-set.csv's drive tells them apart (car1/2026-11-20, car2/2026-11-20), and the
    time rule (3 s in a drive) holds within each car, not across them: car2's photo of 09:00:03 is not kept out by
    car1's. Before, both were 2026-11-20, one drive: the gap was halved to find 12 frames."""
    from detector.frames import scan
    from detector.labelset import MIN_GAP_S, SPLIT_GAP_S

    need(P1), _need_model()
    a, b = tmp_path / "car1" / "2026-11-20", tmp_path / "car2" / "2026-11-20"
    a.mkdir(parents=True), b.mkdir(parents=True)
    src = sorted(P1.glob("IMG_20261120_*.jpg"))[:30]
    for p in src:
        (a / p.name).symlink_to(p)
        _without_gps(p, b / p.name)
    got = {f.name: f for f in scan(b).frames}
    assert all(math.isnan(got[p.name].lat) and got[p.name].time for p in src)  # a time, no position
    out = tmp_path / "set"
    run = _patrol("label-set", a, b, "--out", out, "--n", 12)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = _rows(out)
    assert len(rows) == 12
    assert f"at least {MIN_GAP_S:g} s apart in a drive" in run.stdout, run.stdout
    assert {r["drive"] for r in rows} == {"car1/2026-11-20", "car2/2026-11-20"}, [r["drive"] for r in rows]
    assert len({r["image"].lower() for r in rows}) == 12 and all(r["image"].startswith("car") for r in rows)
    for car in ("car1/2026-11-20", "car2/2026-11-20"):
        mine = [r for r in rows if r["drive"] == car]
        t = np.sort([datetime.fromisoformat(r["time"]).timestamp() for r in mine])
        assert len(t) >= 2 and np.diff(t).min() >= MIN_GAP_S, (car, t)
    # car2's photos have no position: its val and train photos are kept apart by time in the drive
    mine = [r for r in rows if r["drive"] == "car2/2026-11-20"]
    t = {s: [datetime.fromisoformat(r["time"]).timestamp() for r in mine if r["split"] == s] for s in ("train", "val")}
    assert t["train"] and t["val"], t
    assert np.abs(np.subtract.outer(t["val"], t["train"])).min() >= SPLIT_GAP_S, t
    # and the console says so, once, for car2 alone (car1's photos have positions), naming --track
    said = " ".join(run.stdout.split())
    assert said.count("none of its 30 frames has a position") == 1 and "car2/2026-11-20: none of its" in said, said
    assert "car1/2026-11-20: none" not in said and "for a split by place" in said, said


def test_a_label_set_copied_elsewhere_reads_and_evaluates_there(two_passes, tmp_path):
    """The folder sent to a contractor and back: copied, the original gone. README.txt names no path outside it
    (LabelImg's folders and the commands relative to it); its data.yaml (path: .) passes train's check and evaluates
    from the copy's own images. Before, README.txt named the original folder's absolute paths."""
    from detector.evaluate import resolve_split
    from detector.train import check_data_yaml

    first = tmp_path / "city" / "set"
    shutil.copytree(two_passes[0], first)
    moved = tmp_path / "contractor" / "受け取り" / "set"
    shutil.copytree(first, moved)
    shutil.rmtree(first)
    readme = (moved / "README.txt").read_text(encoding="utf-8-sig")
    for old in (two_passes[0], first, tmp_path):
        assert str(old) not in readme and str(Path(old).resolve()) not in readme, old
    assert "patrol train data.yaml --with <RDD" in readme and "patrol tune data.yaml --config" in readme
    assert "annotations/xmls" in readme
    plan = check_data_yaml(moved / "data.yaml")
    assert sorted(len(v) for v in plan.splits.values()) == [6, 24]
    images, _ = resolve_split(moved / "data.yaml", "val")
    assert len(images) == 6 and all(moved.resolve() in Path(p).resolve().parents for p in images)
    run = _patrol("eval", moved / "data.yaml", "--out", tmp_path / "eval.json")
    assert run.returncode == 0, run.stdout + run.stderr
    import json

    res = json.loads((tmp_path / "eval.json").read_text())
    # the pre-labels are the model's own boxes at their thresholds: read from the copy, they score as found
    assert res["n_images"] == 6 and res["source"] == str(moved / "data.yaml") and res["tp"] > 0, res


def test_val_keeps_its_share_when_n_takes_nearly_every_frame(tmp_path):
    """--n larger than the drive: val stays VAL_SHARE of the picks (whole stretches, 50 m from every train photo),
    the stretch's other frames left out. Before, val was filled up from its stretches where train ran short: 8 val
    of 24 (33 %) on the drive's first 30 photos (23 of 90 on the whole 100-frame pass)."""
    from detector.labelset import SPLIT_GAP_M, VAL_SHARE

    need(P1), _need_model()
    drive = tmp_path / "p1"
    drive.mkdir()
    for p in sorted(P1.glob("IMG_20261120_*.jpg"))[:30]:
        (drive / p.name).symlink_to(p)
    out = tmp_path / "set"
    run = _patrol("label-set", drive, "--out", out, "--n", 200)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = _rows(out)
    vr, tr = [r for r in rows if r["split"] == "val"], [r for r in rows if r["split"] == "train"]
    assert vr and abs(len(vr) - VAL_SHARE * len(rows)) <= 1, (len(vr), len(rows))
    assert _metres(vr, tr).min() >= SPLIT_GAP_M
    said = " ".join(run.stdout.split())
    assert f"{len(rows)} of --n 200" in said and "beyond val's 20% of the picks" in said, said
