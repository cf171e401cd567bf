"""`patrol train CITY --with RDD/data.yaml`: a city's few labelled photos train together with the data the shipped
model learnt from (each data set read with its own class names and label format, their photos kept apart by a name
prefix), validated on the city's val split alone. Data preparation only (resolve_data_yaml): no training epoch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import PRETRAINED, RDD, ROOT, need
from test_voc_labels import _size, _voc_xml, _yolo_to_voc

CITY_NAMES = {"D00": "longitudinal crack", "D10": "横ひび割れ", "D20": "D20", "D40": "pothole"}
OTHER_ORDER = ["D40", "D20", "D10", "D00"]  # the other data set's data.yaml lists its classes reversed


def _rows(path: Path) -> list[list[float]]:
    return [[float(v) for v in r] for r in map(str.split, path.read_text().splitlines()) if r]


def _japan_val(n: int) -> list[Path]:
    labs = [p for p in sorted((need(RDD) / "labels" / "val").glob("Japan_*.txt")) if p.stat().st_size > 0][:n]
    assert len(labs) == n
    return labs


def _city(root: Path, labs: list[Path], names: list[str]) -> Path:
    """A city's VOC set (LabelImg's XML beside each photo, English/Japanese class names, no ``names`` in the yaml) of
    real RDD Japan val photos: ``names[i]`` is photo i's file name; the last 2 are its val split."""
    for i, (lab, name) in enumerate(zip(labs, names)):
        d = root / ("val" if i >= len(labs) - 2 else "train")
        d.mkdir(parents=True, exist_ok=True)
        img = RDD / "images" / "val" / (lab.stem + ".jpg")
        shutil.copy(img, d / name)
        boxes = _yolo_to_voc(lab, img, lambda c: CITY_NAMES[c])
        (d / name).with_suffix(".xml").write_text(_voc_xml(d / name, boxes, _size(img)), encoding="utf-8")
    y = root / "data.yaml"
    y.write_text("train: train\nval: val\n", encoding="utf-8")
    return y


def _other(root: Path, labs: list[Path], names: list[str], val: int = 1) -> Path:
    """Another YOLO data set (a colleague's, say) whose data.yaml lists the classes in OTHER_ORDER, written
    with Windows line ends."""
    for i, (lab, name) in enumerate(zip(labs, names)):
        split = "val" if i >= len(labs) - val else "train"
        for sub in ("images", "labels"):
            (root / sub / split).mkdir(parents=True, exist_ok=True)
        shutil.copy(RDD / "images" / "val" / (lab.stem + ".jpg"), root / "images" / split / name)
        rows = [r.split() for r in lab.read_text().splitlines() if r.split()]
        (root / "labels" / split / name).with_suffix(".txt").write_text(
            "".join(f"{OTHER_ORDER.index(['D00', 'D10', 'D20', 'D40'][int(r[0])])} {' '.join(r[1:])}\n" for r in rows))
    y = root / "data.yaml"
    y.write_bytes(("train: images\\train\r\nval: images\\val\r\nnames: [" + ", ".join(OTHER_ORDER) + "]\r\n").encode())
    return y


def test_with_trains_on_every_data_set_and_validates_on_the_citys(tmp_path, capfd):
    """The city's 4 VOC train photos (two named as RDD train photos are, two as the other set's), RDD's 2,292 and a
    third YOLO set's 2 (classes in another order): the prepared train split holds all 2,298, each named
    <tag>_<own name> with its own data set's labels renumbered to the model's classes (none lost to a name clash);
    val is the city's 2 photos only; --oversample city=3 lists the city's photos 3 times; the run records its
    --with list, which a resumed run compares."""
    from detector.train import _differing_sources, resolve_data_yaml

    rdd = need(RDD)
    rdd_train = sorted(p.name for p in (rdd / "images" / "train").iterdir())
    labs = _japan_val(9)
    city_names = [rdd_train[0], rdd_train[1], "0001.jpg", "0002.jpg", "0003.jpg", "0004.jpg"]
    city = _city(tmp_path / "city", labs[:6], city_names)
    other = _other(tmp_path / "other", labs[6:], ["0001.jpg", "0002.jpg", "0009.jpg"])
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    w = tmp_path / "w"
    d = yaml.safe_load(resolve_data_yaml(city, w, oversample={"city": 3}, with_=[rdd / "data.yaml", other])
                       .read_text(encoding="utf-8"))
    err = capfd.readouterr().err
    base = Path(d["path"])
    train = {p.name for p in (base / "images" / "train").iterdir()}
    want = ({f"city_{n}" for n in city_names[:4]} | {f"rdd_{n}" for n in rdd_train}
            | {"other_0001.jpg", "other_0002.jpg"})
    assert len(train) == 4 + len(rdd_train) + 2 and train == want
    assert {p.name for p in (base / "images" / "val").iterdir()} == {"city_0003.jpg", "city_0004.jpg"}
    assert d["val"] == "images/val"
    # each photo is its own data set's: the link points at it, its labels are the RDD original renumbered
    for name, lab in [*(zip(city_names[:4], labs[:4])), ("0001.jpg", labs[6]), ("0002.jpg", labs[7])]:
        tag = "city" if lab in labs[:4] else "other"
        src = (tmp_path / tag / ("train" if tag == "city" else "images/train") / name).resolve()
        assert (base / "images" / "train" / f"{tag}_{name}").resolve() == src
        got, orig = _rows(base / "labels" / "train" / f"{tag}_{Path(name).stem}.txt"), _rows(lab)
        assert [r[0] for r in got] == [r[0] for r in orig] and got, (name, got, orig)
        assert np.allclose([r[1:] for r in got], [r[1:] for r in orig], atol=2 / 600), (name, got, orig)
    for n in rdd_train:  # RDD's own photos (those of the names the city's took too): RDD's labels, as they are
        orig = rdd / "labels" / "train" / (Path(n).stem + ".txt")
        mine = base / "labels" / "train" / f"rdd_{Path(n).stem}.txt"
        a, b = (np.reshape(_rows(f) if f.exists() else [], (-1, 5)) for f in (mine, orig))
        assert a.shape == b.shape and np.allclose(a, b, atol=1e-5), n
    listed = [Path(ln).name for ln in Path(d["train"]).read_text().splitlines()]
    assert sorted(set(listed)) == sorted(train)
    assert all(listed.count(n) == (3 if n.startswith("city_") else 1) for n in train)
    line = next(ln for ln in err.splitlines() if ln.startswith("training on"))
    assert "city 4 images" in line and f"rdd {len(rdd_train)} images" in line and "other 2 images" in line
    assert "the city's val split only (2 images)" in err and "warning: only" not in err
    # the run's --with list, compared by a resumed run
    rec = json.loads((w / "data.sources.json").read_text(encoding="utf-8"))
    assert rec["with"] == [str((rdd / "data.yaml").resolve()), str(other.resolve())]
    assert _differing_sources(w / "data.sources.json", [rdd / "data.yaml", other], False) == []
    # the note names the run's own list as kept and the one asked now as ignored, not the other way round
    assert _differing_sources(w / "data.sources.json", [rdd / "data.yaml"], False) == [
        f"--with {(rdd / 'data.yaml').resolve()}, {other.resolve()} (asked now {(rdd / 'data.yaml').resolve()}: ignored)"]
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and w not in p.parents} == before


def test_a_small_set_alone_is_warned_and_with_val_adds_the_others(tmp_path, capfd):
    """A city's 4 train photos alone: one warning line that the model will forget the rest and how to add RDD with
    --with. Not with --with; --with-val validates on the other data set's val split too."""
    from detector.train import resolve_data_yaml

    labs = _japan_val(9)
    city = _city(tmp_path / "city", labs[:6], [f"{i:04d}.jpg" for i in range(6)])
    resolve_data_yaml(city, tmp_path / "w1")
    warn = [ln for ln in capfd.readouterr().err.splitlines() if ln.startswith("warning:")]
    assert len(warn) == 1 and "only 4 training photos" in warn[0] and "--with" in warn[0], warn

    other = _other(tmp_path / "other", labs[6:], ["a.jpg", "b.jpg", "c.jpg"], val=2)
    d = yaml.safe_load(resolve_data_yaml(city, tmp_path / "w2", with_=[other], with_val=True).read_text())
    err = capfd.readouterr().err
    assert "warning:" not in err and "every data set's val split (4 images)" in err
    assert {p.name for p in (Path(d["path"]) / "images" / "val").iterdir()} == {
        "city_0004.jpg", "city_0005.jpg", "other_b.jpg", "other_c.jpg"}


def test_a_bad_label_in_a_with_set_stops_train_naming_it(tmp_path):
    """`patrol train CITY --with OTHER` where one of OTHER's label files has a class it does not name: exit 3, one
    error naming that file, before anything is written (no OUT/.NAME-data); the city's set is fine."""
    model = need(PRETRAINED / "yolov5nu-coco-backbone-4cls.pt")
    labs = _japan_val(9)
    city = _city(tmp_path / "city", labs[:6], [f"{i:04d}.jpg" for i in range(6)])
    other = _other(tmp_path / "other", labs[6:], ["a.jpg", "b.jpg", "c.jpg"])
    bad = tmp_path / "other" / "labels" / "train" / "b.txt"
    with open(bad, "a") as fh:
        fh.write("4 0.5 0.5 0.1 0.1\n")
    out = tmp_path / "runs"
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", str(city), "--with", str(other), "--model",
                        str(model), "--epochs", "1", "--imgsz", "64", "--workers", "0", "--device", "cpu", "--out",
                        str(out), "--name", "c"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.returncode == 3 and len(errors) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert str(bad) in errors[0] and "class 4" in errors[0], errors
    assert not (out / ".c-data").exists() and not list(out.rglob("*.pt"))
