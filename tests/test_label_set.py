"""`patrol label-set`: the frames of a real drive worth labelling, written with LabelImg pre-labels in the layout
`patrol train` reads (Pascal VOC), scored by the shipped ONNX model."""

from __future__ import annotations

import csv
import math
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")

from detector.config import DEFAULT_CONFIG, DEFAULT_WEIGHTS_ONNX, load_config  # noqa: E402

from conftest import ROOT, TOYAMA, need  # noqa: E402

DRIVE = TOYAMA / "toyama-2026-11-p1"


def _cfg():
    """The config patrol uses without --config (configs/default.yaml: its tuned thresholds and detect.imgsz)."""
    return load_config(DEFAULT_CONFIG)


def _patrol(*args):
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, env={**os.environ, "COLUMNS": "200"})


def _rows(d: Path) -> list[dict]:
    raw = (d / "label-set.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Japanese Excel
    return list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    need(DRIVE)
    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    out = tmp_path_factory.mktemp("ls") / "set"
    run = _patrol("label-set", DRIVE, "--out", out, "--n", 20)
    assert run.returncode == 0, run.stdout + run.stderr
    return out, run.stdout


def test_label_set_writes_n_frames_whose_xmls_read_back_as_the_models_boxes(made):
    from detector.evaluate import read_voc_labels
    from detector.frames import load_image
    from detector.infer import load_detector
    from detector.labelset import PRELABEL_BELOW, low_conf

    out, said = made
    rows = _rows(out)
    assert len(rows) == 20
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(r["image"] for r in rows)
    assert sorted(p.stem for p in (out / "annotations" / "xmls").iterdir()) == sorted(r["image"][:-4] for r in rows)
    # the broken files of the drive are named and skipped
    for bad in ("IMG_broken_upload.jpg", "IMG_empty.jpg"):
        assert bad in said and all(r["frame"] != bad for r in rows)
    assert re.search(r"100 read, 4 rejected", said) and re.search(r"chosen +20: uncertain", said), said
    cfg = _cfg()
    thr = cfg.thresholds()
    det = load_detector(DEFAULT_WEIGHTS_ONNX, cfg)
    n_boxes = 0
    for r in rows:
        src = load_image(DRIVE / r["frame"])
        mine = load_image(out / "images" / r["image"])
        assert mine.shape == src.shape and np.abs(mine.astype(int) - src.astype(int)).mean() < 3
        h, w = src.shape[:2]
        xyxy, conf, cls = det.predict_all([src], low_conf(thr))[0]
        keep = conf >= np.array([thr[c] for c in cls]) - PRELABEL_BELOW
        xml = out / "annotations" / "xmls" / (r["image"][:-4] + ".xml")
        got, got_cls = read_voc_labels(xml, w, h)
        assert len(got) == keep.sum() == int(r["prelabels"]), r
        used = set()
        for b, c in zip(xyxy[keep], cls[keep]):
            hit = [j for j in range(len(got)) if j not in used and got_cls[j] == c and np.abs(got[j] - b).max() <= 1.0]
            assert hit, (r["image"], c, b, got)
            used.add(hit[0])
        n_boxes += len(got)
        text = xml.read_text(encoding="utf-8")  # LabelImg's own layout
        assert text.startswith("<annotation>\n\t<folder>images</folder>\n\t<filename>" + r["image"])
        assert f"<width>{w}</width>" in text and "<segmented>0</segmented>" in text
    assert n_boxes > 20


def test_picks_are_spread_along_the_drive_and_mixed(made):
    out, said = made
    m = re.search(r"at least ([\d.]+) s apart in a drive and ([\d.]+) m apart", said)
    assert m, said
    gap_s, gap_m = float(m.group(1)), float(m.group(2))
    assert gap_s >= 1 and gap_m >= 5
    rows = _rows(out)
    from datetime import datetime

    t = np.array([datetime.fromisoformat(r["time"]).timestamp() for r in rows])
    lat = np.radians([float(r["lat"]) for r in rows])
    lon = np.radians([float(r["lon"]) for r in rows])
    dt = np.abs(t[:, None] - t[None, :])
    dm = 6371008.8 * np.hypot((lat[:, None] - lat[None, :]), (lon[:, None] - lon[None, :]) * math.cos(lat.mean()))
    off = ~np.eye(len(rows), dtype=bool)
    assert dt[off].min() >= gap_s and dm[off].min() >= gap_m * 0.99
    reasons = [r["reason"] for r in rows]
    assert {"uncertain", "confident", "background"} <= set(reasons)
    assert reasons.count("uncertain") > reasons.count("confident") > 0
    from detector.labelset import BORDER

    thr = _cfg().thresholds()
    for r in rows:
        if r["reason"] == "uncertain":
            calls = [c.split() for c in r["borderline"].split("; ")]
            assert calls and all(abs(float(v) - thr[c]) <= BORDER + 0.005 for c, v in calls)
        if r["reason"] == "background":
            assert r["prelabels"] == "0" and not r["borderline"]


def test_its_data_yaml_split_passes_trains_data_check(made):
    from detector.train import check_data_yaml

    out, _ = made
    train = (out / "train.txt").read_text().split()
    val = (out / "val.txt").read_text().split()
    assert len(train) + len(val) == 20 and len(val) == 4 and not set(train) & set(val)
    plan = check_data_yaml(out / "data.yaml")
    assert sorted(len(v) for v in plan.splits.values()) == [4, 16]
    readme = (out / "README.txt").read_text(encoding="utf-8-sig")
    assert "Change Save Dir\": annotations/xmls" in readme and str(out.resolve()) not in readme
    # trained with the RDD photos the model learnt from, not on these alone
    assert "patrol train data.yaml --with <RDD" in readme
    assert "--with <RDD data.yaml>" in (out / "data.yaml").read_text(encoding="utf-8").splitlines()[0]
    # tune tunes the config's detect.weights: the retrained model's line goes into the config first
    en = readme[readme.index("How to use this folder"):]
    assert en.index("detect: {weights: …/best.onnx") < en.index("into <your city's config.yaml>, then") < en.index(
        "patrol tune")
    assert "detect: {weights: …/best.onnx" in readme[:readme.index("How to use this folder")]
    assert "3. put the detect: line train prints at its end into <your city's config>, then patrol tune" in made[1]


def _labelimg_save(xml: Path, objects: list[tuple[str, tuple[int, int, int, int]]] | None = None,
                   verified: bool = True, path: str | None = None) -> None:
    """Save ``xml`` as LabelImg does (tab-indented, no XML declaration, ``verified="yes"`` after Space; written anew
    by its PascalVocWriter, which knows only the elements below: label-set's <prelabel> mark is dropped), its
    objects replaced by ``objects`` where given (``path``: its ``<path>``, the photo on the labeller's PC)."""
    import xml.etree.ElementTree as ET

    root = ET.parse(xml).getroot()
    for e in list(root):
        if e.tag not in ("folder", "filename", "path", "source", "size", "segmented", "object"):
            root.remove(e)
    if path is not None:
        root.find("path").text = path
    if objects is not None:
        for o in root.findall("object"):
            root.remove(o)
        for name, box in objects:
            o = ET.SubElement(root, "object")
            for k, v in (("name", name), ("pose", "Unspecified"), ("truncated", "0"), ("difficult", "0")):
                ET.SubElement(o, k).text = v
            b = ET.SubElement(o, "bndbox")
            for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box):
                ET.SubElement(b, k).text = str(v)
    if verified:
        root.set("verified", "yes")
    else:  # (Space again: LabelImg writes no verified attribute)
        root.attrib.pop("verified", None)
    for e in root.iter():
        e.tail = None
        if e.text is not None and not e.text.strip():
            e.text = None
    ET.indent(root, space="\t")
    xml.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=False) + b"\n")


def test_labels_saved_by_labelimg_are_read_and_its_yolo_format_beside_them_is_refused(made, tmp_path):
    """LabelImg's Pascal VOC saves (verified, a Japanese class name, no box) are what trains; a photo LabelImg saved
    in its YOLO format (a .txt, in the save folder or beside the photo) left its .xml as label-set wrote it: the
    unchecked pre-labels would train in place of the labeller's boxes, so the check refuses it, naming the .txt."""
    from detector.errors import InputError
    from detector.train import check_data_yaml

    d = tmp_path / "set"
    shutil.copytree(made[0], d)
    xmls = d / "annotations" / "xmls"
    train = [Path(p).stem for p in (d / "train.txt").read_text().split()]
    _labelimg_save(xmls / f"{train[0]}.xml", [("ポットホール", (10, 20, 60, 50))])
    _labelimg_save(xmls / f"{train[1]}.xml", [])  # no damage: saved with no box
    plan = check_data_yaml(d / "data.yaml")
    lines = {name[:-4]: ln for name, ln in ((n, ln) for _, n, ln in plan.splits["train"])}
    assert len(lines[train[0]]) == 1 and lines[train[0]][0].startswith("3 ") and not lines[train[1]]
    for where in (xmls, d / "images"):  # LabelImg's YOLO format: NAME.txt and classes.txt in the save folder
        (where / "classes.txt").write_text("D40\nD00\n")
        (where / f"{train[2]}.txt").write_text("0 0.500000 0.500000 0.100000 0.100000\n")
        with pytest.raises(InputError) as e:
            check_data_yaml(d / "data.yaml")
        msg = str(e.value)
        assert f"{train[2]}.txt" in msg and "1 train photo has" in msg and "PascalVOC" in msg, msg
        (where / f"{train[2]}.txt").unlink()
        (where / "classes.txt").unlink()


def _objects(xml: Path) -> list[tuple[str, tuple[int, int, int, int]]]:
    import xml.etree.ElementTree as ET

    return [(o.findtext("name"), tuple(int(o.findtext(f"bndbox/{t}")) for t in ("xmin", "ymin", "xmax", "ymax")))
            for o in ET.parse(xml).getroot().findall("object")]


def test_train_refuses_a_label_set_mostly_as_written_and_eval_warns_once(made, tmp_path, monkeypatch, capsys):
    """A label-set trained on before its labels were checked teaches the model its own guesses. A label file counts as
    checked once LabelImg marked it verified (Space) or its boxes differ from those written; one saved again with
    the same boxes (its <path> and layout LabelImg's, its objects in another order) and not verified does not. More
    than half unchecked: train refuses before anything is written, naming --unchecked-ok; half or fewer, or with
    --unchecked-ok: a warning, and training goes on. Eval (and tune, through predict_split) warn, once."""
    import detector.train as tr
    from detector.errors import UsageError
    from detector.config import DEFAULT_WEIGHTS_PT
    from detector.labelset import RECORD_NAME, unchecked_prelabels

    d = tmp_path / "copied set"  # the folder copied elsewhere (its record with it)
    shutil.copytree(made[0], d)
    assert (d / RECORD_NAME).is_file()
    xmls = d / "annotations" / "xmls"
    names = sorted(p.name for p in xmls.iterdir())
    assert len(names) == 20
    # as written: refused before anything trains or is written (the CLI, as the engineer runs it)
    runs = tmp_path / "runs"
    run = _patrol("train", d / "data.yaml", "--out", runs, "--epochs", 1, "--imgsz", 64, "--device", "cpu",
                  "--no-export")
    assert run.returncode == 2, run.stdout + run.stderr
    err = " ".join(run.stderr.split())
    assert f"20 of 20 label files in {xmls} are as patrol label-set wrote them (not checked in LabelImg): the model " \
           "would learn its own guesses" in err and "--unchecked-ok" in err and "README.txt" in err, err
    assert not runs.exists() and "Epoch" not in run.stdout + run.stderr
    boxed = [n for n in names if _objects(xmls / n)]
    # LabelImg: Space on 6 (verified, boxes as they were), 3 boxes moved (no Space), 1 box deleted
    for n in names[:6]:
        _labelimg_save(xmls / n, path=f"C:\\Users\\doboku\\set\\images\\{n[:-4]}.jpg")
    moved = [n for n in boxed if n not in names[:6]][:4]
    for n in moved[:3]:
        obj = _objects(xmls / n)
        c, (x1, y1, x2, y2) = obj[0]
        _labelimg_save(xmls / n, [(c, (x1 + 5, y1, x2 + 5, y2)), *obj[1:]], verified=False)
    _labelimg_save(xmls / moved[3], _objects(xmls / moved[3])[1:], verified=False)
    # saved again unchanged (another layout, path and object order, no Space): still the model's guesses
    again = [n for n in boxed if n not in names[:6] and n not in moved][0]
    before = (xmls / again).read_bytes()
    _labelimg_save(xmls / again, _objects(xmls / again)[::-1], verified=False, path="D:/labels/x.jpg")
    assert (xmls / again).read_bytes() != before
    checked = set(names[:6]) | set(moved)
    plan = tr.check_data_yaml(d / "data.yaml")
    (u,) = unchecked_prelabels(plan.label_files)
    assert u.total == 20 and u.names == sorted(set(names) - checked) and again in u.names, u
    # 10 of 20 unchecked: not more than half, a warning, and training goes on
    started = []
    monkeypatch.setattr(tr, "_train_locked", lambda *a, **k: started.append(a) or Path("best.pt"))
    capsys.readouterr()
    tr.train(d / "data.yaml", DEFAULT_WEIGHTS_PT, out=tmp_path / "runs2", name="c", device="cpu")
    err = " ".join(capsys.readouterr().err.split())
    assert len(started) == 1 and err.count("10 of 20 label files") == 1 and "warning: " in err, err
    # 11 of 20: refused; with unchecked_ok it goes on, warned
    _labelimg_save(xmls / names[0], verified=False)  # un-verified (Space again), its boxes as written
    unchecked = set(u.names) | {names[0]}
    with pytest.raises(UsageError) as e:
        tr.train(d / "data.yaml", DEFAULT_WEIGHTS_PT, out=tmp_path / "runs3", name="c",
                 device="cpu")
    assert "11 of 20 label files" in str(e.value) and "--unchecked-ok" in str(e.value)
    assert len(started) == 1 and not (tmp_path / "runs3").exists()
    tr.train(d / "data.yaml", DEFAULT_WEIGHTS_PT, out=tmp_path / "runs3", name="c",
             device="cpu", unchecked_ok=True)
    assert len(started) == 2 and "11 of 20 label files" in capsys.readouterr().err
    # eval with --errors predicts the val split twice (cached): one warning, naming eval's harm
    run = _patrol("eval", d / "data.yaml", "--errors", tmp_path / "errs", "--out", tmp_path / "e.json")
    assert run.returncode == 0, run.stdout + run.stderr
    err = " ".join(run.stderr.split())
    val = [Path(p).stem + ".xml" for p in (d / "val.txt").read_text().split()]
    n_val = sum(n in unchecked for n in val)
    assert n_val, (val, unchecked)  # (val: the middle of the drive; the files checked above: its start)
    assert err.count("label files in") == 1 and f"{n_val} of {len(val)} label files in {xmls}" in err and \
        "scored against its own guesses" in err, err


def test_each_label_file_carries_its_mark_so_a_set_copied_without_label_set_json_is_still_checked(
        made, tmp_path, monkeypatch, capsys):
    """label-set.json deleted, or the images and annotations copied elsewhere without it: each label file's own mark
    (<prelabel boxes="KEY"/>, the key of the boxes written) still tells the untouched pre-labels, and train refuses
    (more than half) or warns as with the record. LabelImg's save drops the mark (its writer knows no such element):
    a saved or verified file is checked. The readers pass over the mark: the boxes read are those of the objects.
    Before: without label-set.json nothing was checked and the model's guesses trained as labels."""
    import xml.etree.ElementTree as ET

    import detector.train as tr
    from detector.config import DEFAULT_WEIGHTS_PT
    from detector.errors import UsageError
    from detector.evaluate import read_voc_labels
    from detector.labelset import MARK_TAG, RECORD_NAME, boxes_key, unchecked_prelabels

    d = tmp_path / "contractor copy"
    (d / "annotations").mkdir(parents=True)
    for sub in ("images", "annotations/xmls"):
        shutil.copytree(made[0] / sub, d / sub)
    for f in ("data.yaml", "train.txt", "val.txt"):
        shutil.copy(made[0] / f, d / f)
    assert not (d / RECORD_NAME).exists() and not (d / "README.txt").exists()
    xmls = d / "annotations" / "xmls"
    names = sorted(p.name for p in xmls.iterdir())
    assert len(names) == 20
    boxed = [n for n in names if _objects(xmls / n)]
    for n in names:  # the mark: the key of the file's own boxes; the objects read as without it
        root = ET.parse(xmls / n).getroot()
        (mark,) = root.findall(MARK_TAG)
        assert mark.get("boxes") == boxes_key(root) and mark.get("by") == "patrol label-set"
    w, h = _size(d / "images" / (boxed[0][:-4] + ".jpg"))
    xyxy, cls = read_voc_labels(xmls / boxed[0], w, h)
    assert [(c, tuple(int(v) for v in b)) for c, b in zip(cls, xyxy + [1, 1, 0, 0])] == _objects(xmls / boxed[0])
    plan = tr.check_data_yaml(d / "data.yaml")
    (u,) = unchecked_prelabels(plan.label_files)
    assert (u.total, u.names, u.xmls) == (20, names, xmls), u
    started = []
    monkeypatch.setattr(tr, "_train_locked", lambda *a, **k: started.append(a) or Path("best.pt"))
    with pytest.raises(UsageError) as e:
        tr.train(d / "data.yaml", DEFAULT_WEIGHTS_PT, out=tmp_path / "runs", name="c", device="cpu")
    msg = " ".join(str(e.value).split())
    assert f"20 of 20 label files in {xmls}" in msg and "--unchecked-ok" in msg and "in LabelImg: fix" in msg, msg
    assert not started and not (tmp_path / "runs").exists()
    # LabelImg: Space on 8, one box moved on 3 (saved, no Space); 9 left untouched: 9 of 20, a warning
    for n in names[:8]:
        _labelimg_save(xmls / n)
    moved = [n for n in boxed if n not in names[:8]][:3]
    for n in moved:
        c, (x1, y1, x2, y2) = _objects(xmls / n)[0]
        _labelimg_save(xmls / n, [(c, (x1 + 5, y1, x2 + 5, y2)), *_objects(xmls / n)[1:]], verified=False)
    assert not any(MARK_TAG in (xmls / n).read_text() for n in [*names[:8], *moved])
    left = sorted(set(names) - set(names[:8]) - set(moved))
    (u,) = unchecked_prelabels(plan.label_files)
    assert (u.total, u.names) == (20, left), u
    capsys.readouterr()
    tr.train(d / "data.yaml", DEFAULT_WEIGHTS_PT, out=tmp_path / "runs", name="c", device="cpu")
    err = " ".join(capsys.readouterr().err.split())
    assert len(started) == 1 and f"warning: {len(left)} of 20 label files in {xmls}" in err, err
    # another tool that keeps the mark but changes the boxes: checked (the mark's key is the boxes written)
    other = next(n for n in left if n in boxed)
    text = (xmls / other).read_text()
    (xmls / other).write_text(text.replace("<xmin>", "<xmin>1", 1))
    assert MARK_TAG in (xmls / other).read_text()
    (u,) = unchecked_prelabels(plan.label_files)
    assert u.names == sorted(set(left) - {other}), u


def test_a_resumed_train_is_checked_for_unchecked_labels_as_they_were_when_it_started(made, tmp_path, monkeypatch,
                                                                                     capsys):
    """A resumed `patrol train` goes on with its own copy of the labels, as they were when it started: it is checked
    by the same rule on those (kept in .NAME-data/data.sources.json), --unchecked-ok given at the start holding for
    the resume (a run keeps its own arguments); a run whose record predates this (0.8.0) is checked on its data
    yaml's label files as they are now, refused (exit 2) where more than half are unchecked unless --unchecked-ok is
    given now; a last.pt that is no checkpoint starts afresh, checked as a first start. No training: ultralytics'
    YOLO is replaced by a stand-in that writes an interrupted checkpoint. Before: a resume was never checked."""
    import json

    import torch
    import ultralytics

    import detector.train as tr
    from detector.config import DEFAULT_WEIGHTS_PT
    from detector.errors import UsageError

    d = tmp_path / "set"
    shutil.copytree(made[0], d)
    xmls = d / "annotations" / "xmls"
    names = sorted(p.name for p in xmls.iterdir())
    calls = []

    class FakeYOLO:  # stands in for ultralytics.YOLO: a first start writes an interrupted run's last.pt
        def __init__(self, path):
            self.path = path

        def add_callback(self, *a):
            pass

        def train(self, **kw):
            calls.append(kw)
            if not kw.get("resume"):
                last = Path(kw["project"]) / kw["name"] / "weights" / "last.pt"
                last.parent.mkdir(parents=True)
                torch.save({"epoch": 0, "train_args": {"imgsz": kw["imgsz"], "batch": kw["batch"],
                                                       "epochs": kw["epochs"]}}, last)

    monkeypatch.setattr(ultralytics, "YOLO", FakeYOLO)
    runs = tmp_path / "runs"

    def train(**kw):
        capsys.readouterr()
        try:
            return tr.train(d / "data.yaml", DEFAULT_WEIGHTS_PT, out=runs, name="c", device="cpu", export=False, **kw)
        finally:
            out = capsys.readouterr()
            train.err = " ".join(out.err.split())

    # started with --unchecked-ok on 20 of 20 unchecked; resumed with the same command or without the option: the run
    # keeps it, warned each time
    train(unchecked_ok=True)
    assert len(calls) == 1 and "warning: 20 of 20 label files" in train.err, train.err
    record = runs / ".c-data" / "data.sources.json"
    kept = json.loads(record.read_text(encoding="utf-8"))["unchecked"]
    assert kept["unchecked_ok"] is True and [(u["total"], u["names"]) for u in kept["sets"]] == [(20, names)]
    for n in names:  # checked now: the resumed run still trains on its copy of them, as they were
        _labelimg_save(xmls / n)
    train()
    assert calls[-1] == {"resume": True} and "note: resuming the interrupted training" in train.err
    assert "warning: the resumed run trains on its labels as they were when it started with --unchecked-ok: 20 of "            "20 label files" in train.err, train.err
    # a run started by 0.8.0 (no "unchecked" in its record): its data yaml's label files as they are now
    rec = json.loads(record.read_text(encoding="utf-8"))
    del rec["unchecked"]
    record.write_text(json.dumps(rec), encoding="utf-8")
    train()
    assert calls[-1] == {"resume": True} and "label files" not in train.err, train.err
    shutil.rmtree(xmls)
    shutil.copytree(made[0] / "annotations" / "xmls", xmls)  # the pre-labels as written again
    n = len(calls)
    with pytest.raises(UsageError) as e:
        train()
    msg = " ".join(str(e.value).split())
    assert len(calls) == n and msg.startswith("not resumed: ") and "20 of 20 label files" in msg, msg
    assert "another --name" in msg and "resume anyway with --unchecked-ok" in msg, msg
    train(unchecked_ok=True)
    assert calls[-1] == {"resume": True} and "warning: the resumed run" in train.err and "20 of 20" in train.err
    # a last.pt that cannot be read (killed while writing it): a fresh start, refused as one
    (runs / "c" / "weights" / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UsageError) as e:
        train()
    assert str(e.value).startswith("not trained: 20 of 20 label files") and len(calls) == n + 1, str(e.value)


def _size(img: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(img) as im:
        return im.size


def test_a_folder_of_other_files_is_refused_and_an_earlier_label_set_is_replaced(made, tmp_path):
    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("x")
    run = _patrol("label-set", need(DRIVE), "--out", mine, "--n", 3)
    assert run.returncode == 2 and "notes.txt" in run.stderr, run.stdout + run.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"] and "Predicting" not in run.stderr
    again = tmp_path / "again"
    shutil.copytree(made[0], again)
    (again / "mine.txt").write_text("kept")
    run = _patrol("label-set", DRIVE, "--out", again, "--n", 5)
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(_rows(again)) == 5 and len(list((again / "images").iterdir())) == 5
    assert len(list((again / "annotations" / "xmls").iterdir())) == 5 and (again / "mine.txt").is_file()
    # labelling has begun (a label saved after the set was written): nothing is replaced
    xml = next((again / "annotations" / "xmls").iterdir())
    later = (again / "label-set.csv").stat().st_mtime + 60
    os.utime(xml, (later, later))
    run = _patrol("label-set", DRIVE, "--out", again, "--n", 3)
    assert run.returncode == 2 and xml.name in run.stderr, run.stdout + run.stderr
    assert len(_rows(again)) == 5


def test_an_exif_turned_photo_is_written_upright_and_names_are_unique_across_drives(tmp_path):
    """Two phones' folders of one name, each with IMG_0003.jpg (one stored on its side with EXIF Orientation 6):
    two images, the turned one written upright without an orientation tag, its boxes those of the upright photo."""
    import cv2
    from PIL import Image

    from detector.evaluate import read_voc_labels
    from detector.labelset import make_label_set

    src = need(DRIVE) / "IMG_20261120_090004_0004.jpg"
    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    a, b = tmp_path / "a" / "day1", tmp_path / "b" / "day1"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    shutil.copy(src, a / "IMG_0003.jpg")
    upright = cv2.imread(str(src))
    stored = Image.fromarray(cv2.cvtColor(cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE), cv2.COLOR_BGR2RGB))
    exif = Image.open(src).getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to show
    stored.save(b / "IMG_0003.jpg", quality=98, exif=exif)
    raw = cv2.imread(str(b / "IMG_0003.jpg"), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    assert np.abs(cv2.rotate(raw, cv2.ROTATE_90_CLOCKWISE).astype(int) - upright.astype(int)).mean() < 6
    assert np.abs(raw.astype(int) - upright.astype(int)).mean() > 20  # the stored pixels are not the upright ones

    out = tmp_path / "set"
    s = make_label_set([a, b], out, _cfg(), DEFAULT_WEIGHTS_ONNX, n=5)
    names = sorted(p.name for p in (out / "images").iterdir())
    assert len(names) == 2 and len({n.lower() for n in names}) == 2 and s.frames_ok == 2
    boxes = []
    for n in names:
        with Image.open(out / "images" / n) as im:
            assert im.getexif().get(0x0112) is None and im.size == (upright.shape[1], upright.shape[0])
        img = cv2.imread(str(out / "images" / n))
        assert np.abs(img.astype(int) - upright.astype(int)).mean() < 6
        boxes.append(read_voc_labels(out / "annotations" / "xmls" / (n[:-4] + ".xml"), *img.shape[1::-1]))
    assert len(boxes[0][0]) == len(boxes[1][0]) > 0
    assert np.abs(np.sort(boxes[0][0], 0) - np.sort(boxes[1][0], 0)).max() < 12


# ------------------------------------------------------------------------------------------------ videos
# a dashcam drive as tests/test_video.py builds it: an MP4 of the sample drive's first 41 photos in real time (2 fps,
# 512 px, created at the first photo's time in UTC) and the real track pass 1 follows as a GPX beside it

from test_video import FPS, photos, video_drive, video_src, with_creation  # noqa: E402,F401  (fixtures)

VIDEO_FRAME = re.compile(r"dashcam\.mp4@(\d+):(\d\d\.\d)")


def _video_frame(src: Path, seconds: float) -> np.ndarray:
    """The frame of ``src`` (written at ``FPS``) shown at ``seconds``, decoded from the start."""
    import cv2

    cap = cv2.VideoCapture(str(src))
    for _ in range(round(seconds * FPS) + 1):
        ok, img = cap.read()
        assert ok
    cap.release()
    return img


def load_image_bgr(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path))
    assert img is not None, path
    return img


def _label_set_in(tmp: Path, *args):
    """`patrol label-set` with its temporary files in ``tmp`` (TMPDIR), to see what it leaves there."""
    tmp.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), "label-set", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=600, env={**os.environ, "COLUMNS": "200", "TMPDIR": str(tmp)})


def _left_in_tmp(tmp: Path) -> list[str]:
    """What patrol left in its TMPDIR (onnxruntime's own .ses file aside)."""
    return sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.name != ".ses")


def test_a_video_drives_frames_are_written_named_by_the_video_and_time_and_nothing_left_behind(tmp_path, video_src,
                                                                                                 photos):
    """On a dashcam video + GPX: the chosen frames are the video's frames of the times label-set.csv gives (frame
    ``dashcam.mp4@m:ss.s`` as a run's frames.csv names it, time = the video's start + that), written upright as
    ``<drive>_dashcam.mp4_m_ss.s.jpg`` with XMLs naming them; spread by the frames' times and positions; the frames
    taken from the video while it was read are gone (TMPDIR and OUT hold nothing else)."""
    from datetime import datetime

    from detector.evaluate import read_voc_labels

    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    drive = video_drive(tmp_path / "patrol-car-3", video_src, photos)
    out, tmp = tmp_path / "set", tmp_path / "tmp"
    run = _label_set_in(tmp, drive, "--out", out, "--n", 10)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"frames +(\d+) read, 0 rejected", run.stdout) and "dashcam.mp4: " in run.stdout, run.stdout
    assert _left_in_tmp(tmp) == [], _left_in_tmp(tmp)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["images", "annotations", "data.yaml", "train.txt", "val.txt", "README.txt", "label-set.csv",
         "label-set.json", "frames.csv", ".work"])
    assert [p.name for p in (out / ".work").iterdir()] == ["label-set-predictions.jsonl"]  # (the predictions' cache)
    rows = _rows(out)
    assert len(rows) == 10 and len({r["image"].lower() for r in rows}) == 10
    # again into the folder: the video's frames, taken again into another temporary folder, are not predicted again
    # (their JPEGs' bytes are those predicted)
    n_frames = int(re.search(r"frames +(\d+) read", run.stdout).group(1))
    again = _label_set_in(tmp, drive, "--out", out, "--n", 10)
    assert again.returncode == 0, again.stdout + again.stderr
    said = " ".join(again.stdout.split())
    assert f"0 frames predicted, {n_frames} taken from the cache" in said, said
    assert _rows(out) == rows and _left_in_tmp(tmp) == []
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(r["image"] for r in rows)
    # frames.csv: every video frame's path is one still there (not the temporary JPEG it was read from): a chosen
    # frame's the image written of it, any other's the video (its time in it: the name's @m:ss.s)
    with open(out / "frames.csv", encoding="utf-8", newline="") as fh:
        frames = list(csv.DictReader(fh))
    assert len(frames) == n_frames and all(VIDEO_FRAME.fullmatch(f["name"]) for f in frames), frames[:3]
    image_of = {r["frame"]: r["image"] for r in rows}
    for f in frames:
        want = (out / "images" / image_of[f["name"]]) if f["name"] in image_of else drive / "dashcam.mp4"
        assert Path(f["path"]) == want.absolute() and Path(f["path"]).is_file(), f
    t0 = photos[0].time
    secs = []
    for r in rows:
        m = VIDEO_FRAME.fullmatch(r["frame"])
        assert m and r["drive"] == "patrol-car-3", r
        s = int(m.group(1)) * 60 + float(m.group(2))
        secs.append(s)
        assert r["image"] == f"patrol-car-3_dashcam.mp4_{m.group(1)}_{m.group(2)}.jpg", r
        assert abs((datetime.fromisoformat(r["time"]) - t0).total_seconds() - s) < 0.01, r
        img = load_image_bgr(out / "images" / r["image"])
        assert img.shape == (512, 512, 3)
        assert np.abs(img.astype(int) - _video_frame(video_src, s).astype(int)).mean() < 3, r
        xml = out / "annotations" / "xmls" / (r["image"][:-4] + ".xml")
        text = xml.read_text(encoding="utf-8")
        assert f"<filename>{r['image']}</filename>" in text
        assert f"<path>{(out / 'images' / r['image']).resolve()}</path>" in text
        assert "<width>512</width>" in text and "<height>512</height>" in text
        assert len(read_voc_labels(xml, 512, 512)[0]) == int(r["prelabels"])
    # spread by the video frames' own times (one drive) and positions (where the track placed them)
    m = re.search(r"at least ([\d.]+) s apart in a drive and ([\d.]+) m apart", run.stdout)
    gap_s, gap_m = float(m.group(1)), float(m.group(2))
    assert gap_s >= 1.5, run.stdout
    secs = np.array(secs)
    assert np.diff(np.sort(secs)).min() >= gap_s
    pos = [(float(r["lat"]), float(r["lon"])) for r in rows if r["lat"]]
    assert len(pos) >= 7
    lat, lon = np.radians(np.array(pos)).T
    dm = 6371008.8 * np.hypot(lat[:, None] - lat[None, :], (lon[:, None] - lon[None, :]) * math.cos(lat.mean()))
    assert dm[~np.eye(len(pos), dtype=bool)].min() >= gap_m * 0.99


def test_video_drives_of_one_name_and_a_photo_drive_in_one_call(tmp_path, video_src, photos):
    """a/day1 with the dashcam video, b/day1 with a portrait phone video also called dashcam.mp4 (an hour later, no
    track), and a folder of photos, in one call: every frame read (before, b's frames replaced a's in the one
    temporary folder both drives' videos were taken into: a's frames unreadable, or showing b's video), each
    written image the frame of its own video (a's 512 px square, b's upright portrait 240 x 320 showing the frame
    of its time), the photos as photos; spread across the drives by position; nothing left in TMPDIR. (b is given
    first: its frames of the test pattern hold no damage, and the background frames are taken evenly from the
    first on, so one of b's is chosen.)"""
    from datetime import datetime

    import cv2
    from test_video_codecs import CLIPS, DATA, read_index

    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    t0 = photos[0].time
    a = video_drive(tmp_path / "a" / "day1", video_src, photos)
    b = tmp_path / "b" / "day1"
    with_creation(DATA / "h264_rot90.mp4", b / "dashcam.mp4", t0.timestamp() + 3600)
    phone = tmp_path / "phone"
    phone.mkdir()
    for p in photos[:15]:
        shutil.copy(p.path, phone / Path(p.path).name)
    out, tmp = tmp_path / "set", tmp_path / "tmp"
    run = _label_set_in(tmp, b, a, phone, "--out", out, "--n", 10)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"frames +\d+ read, 0 rejected", run.stdout), run.stdout
    assert _left_in_tmp(tmp) == [], _left_in_tmp(tmp)
    rows = _rows(out)
    assert len(rows) == 10 and len({r["image"].lower() for r in rows}) == 10
    kinds = Counter()
    pts = np.array(CLIPS["h264_rot90.mp4"]["pts"])
    for r in rows:
        img = load_image_bgr(out / "images" / r["image"])
        if r["drive"] == "phone":
            kinds["photo"] += 1
            assert r["image"] == f"phone_{r['frame'][:-4]}.jpg" and (phone / r["frame"]).is_file()
            assert np.abs(img.astype(int) - load_image_bgr(phone / r["frame"]).astype(int)).mean() < 3, r
            continue
        m = VIDEO_FRAME.fullmatch(r["frame"])
        assert m and r["drive"] in ("a/day1", "b/day1"), r  # two drives of one folder name, told apart
        s = int(m.group(1)) * 60 + float(m.group(2))
        late = (datetime.fromisoformat(r["time"]) - t0).total_seconds() - s
        if abs(late) < 0.01:  # a's video
            kinds["a"] += 1
            assert r["drive"] == "a/day1" and r["image"].startswith("a_day1_dashcam.mp4_"), r
            assert np.abs(img.astype(int) - _video_frame(video_src, s).astype(int)).mean() < 3, r
        else:  # b's: turned upright, the frame of its time
            assert abs(late - 3600) < 0.01 and r["drive"] == "b/day1", r
            kinds["b"] += 1
            assert img.shape == (320, 240, 3), r
            i = read_index(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
            assert i is not None and abs(pts[i] - s) < 0.06, (r, i)
    assert kinds["a"] and kinds["b"] and kinds["photo"], kinds
    # frames.csv: each drive's unchosen video frames name its own video (two drives' dashcam.mp4 told apart)
    with open(out / "frames.csv", encoding="utf-8", newline="") as fh:
        paths = Counter((f["drive"], f["path"]) for f in csv.DictReader(fh) if f["name"] not in
                        {r["frame"] for r in rows if r["drive"] == f["drive"]})
    assert {d for d, _ in paths} == {"a/day1", "b/day1", "phone"}, paths
    for (d, path), k in paths.items():
        assert Path(path).is_file() and (d == "phone" or path == str((tmp_path / d / "dashcam.mp4").absolute())), d
    # the photos and the video frames of a share the road: two chosen frames 20 m apart (or the gap used)
    gap_m = float(re.search(r"and ([\d.]+) m apart", run.stdout).group(1))
    pos = np.radians([(float(r["lat"]), float(r["lon"])) for r in rows if r["lat"]])
    lat, lon = pos.T
    dm = 6371008.8 * np.hypot(lat[:, None] - lat[None, :], (lon[:, None] - lon[None, :]) * math.cos(lat.mean()))
    assert dm[~np.eye(len(pos), dtype=bool)].min() >= gap_m * 0.99
