"""Pascal VOC XML labels (RDD2020's own `annotations/xmls/`, LabelImg's default) read by eval, tune and train as
YOLO .txt labels are: real RDD photos whose YOLO labels are written back as the XML LabelImg saves, scored and
trained on exactly as the originals."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

os.environ.setdefault("YOLO_OFFLINE", "1")

from detector import CLASS_IDS  # noqa: E402
from detector.config import DEFAULT_WEIGHTS_ONNX, Config  # noqa: E402
from detector.errors import InputError  # noqa: E402

from conftest import RDD, ROOT, need  # noqa: E402

# as a city names them: English, Japanese or the id
CLASS_NAMES = {"D00": "longitudinal crack", "D10": "横ひび割れ", "D20": "D20", "D40": "pothole"}


def _voc_xml(img: Path, boxes: list[tuple[str, float, float, float, float]], size: tuple[int, int]) -> str:
    """A Pascal VOC annotation as LabelImg saves it (tabs, <path> of the labeller's PC, 1-based integer corners)."""
    objs = "".join(
        f"\t<object>\n\t\t<name>{n}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
        f"\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{x1}</xmin>\n\t\t\t<ymin>{y1}</ymin>\n"
        f"\t\t\t<xmax>{x2}</xmax>\n\t\t\t<ymax>{y2}</ymax>\n\t\t</bndbox>\n\t</object>\n"
        for n, x1, y1, x2, y2 in boxes)
    return (f"<annotation>\n\t<folder>images</folder>\n\t<filename>{img.name}</filename>\n"
            f"\t<path>C:\\Users\\doboku\\rdd\\{img.name}</path>\n\t<source>\n\t\t<database>Unknown</database>\n"
            f"\t</source>\n\t<size>\n\t\t<width>{size[0]}</width>\n\t\t<height>{size[1]}</height>\n"
            f"\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n{objs}</annotation>\n")


def _size(img: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(img) as im:
        return im.size


def _yolo_to_voc(lab: Path, img: Path, names=lambda c: c) -> list[tuple[str, int, int, int, int]]:
    """An RDD YOLO label's boxes as VOC corners: the 1-based first pixel and the last pixel of each box."""
    w, h = _size(img)
    out = []
    for r in (ln.split() for ln in lab.read_text().splitlines() if ln.split()):
        cx, cy, bw, bh = (float(v) for v in r[1:])
        out.append((names(CLASS_IDS[int(r[0])]), round((cx - bw / 2) * w) + 1, round((cy - bh / 2) * h) + 1,
                    round((cx + bw / 2) * w), round((cy + bh / 2) * h)))
    return out


def _labelled(split: str, n: int) -> list[Path]:
    src = need(RDD)
    labs = [p for p in sorted((src / "labels" / split).glob("Japan_*.txt")) if p.stat().st_size > 0][:n]
    assert len(labs) == n
    return labs


def test_eval_on_rdd2020_voc_layout_scores_as_the_yolo_original(tmp_path, capsys):
    """8 real Japan val photos, their YOLO labels and the same boxes as LabelImg's VOC XML in RDD2020's layout
    (`val/Japan/images/` + `val/Japan/annotations/xmls/`), with boxes of classes the model does not detect (D43,
    Repair) and an XML whose <size> is 0 (as some of RDD2020's): eval gives exactly the TP/FP/FN of the YOLO original,
    one note counts the left-out boxes by class, one the wrong sizes; a data.yaml without names: is read (VOC
    labels name their classes). Before, no label file was found (exit 3: 0 of 8 photos have a label file)."""
    from detector.evaluate import evaluate, predict_split
    from detector.tune import tune

    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    labs = _labelled("val", 8)
    yolo, voc = tmp_path / "yolo", tmp_path / "rdd2020"
    for d in (yolo / "images" / "val", yolo / "labels" / "val", voc / "val" / "Japan" / "images",
              voc / "val" / "Japan" / "annotations" / "xmls"):
        d.mkdir(parents=True)
    for i, lab in enumerate(labs):
        img = RDD / "images" / "val" / (lab.stem + ".jpg")
        shutil.copy(img, yolo / "images" / "val" / img.name)
        shutil.copy(lab, yolo / "labels" / "val" / lab.name)
        shutil.copy(img, voc / "val" / "Japan" / "images" / img.name)
        boxes = _yolo_to_voc(lab, img, lambda c: CLASS_NAMES[c] if i % 2 else c)  # names or ids, as a city writes
        if i in (1, 4):
            boxes.insert(0, ("D43", 10, 400, 200, 450))
        if i == 4:
            boxes.append(("Repair", 1, 1, 600, 600))
        size = (0, 0) if i == 6 else _size(img)
        (voc / "val" / "Japan" / "annotations" / "xmls" / (lab.stem + ".xml")).write_text(
            _voc_xml(img, boxes, size), encoding="utf-8")
    (yolo / "data.yaml").write_text("train: images/val\nval: images/val\nnames: [D00, D10, D20, D40]\n")
    (voc / "data.yaml").write_text("train: val/Japan/images\nval: val/Japan/images\n")  # no names:
    cfg = Config()
    want = predict_split(yolo / "data.yaml", DEFAULT_WEIGHTS_ONNX, cfg, "val", use_cache=False)
    capsys.readouterr()
    got = predict_split(voc / "data.yaml", DEFAULT_WEIGHTS_ONNX, cfg, "val", use_cache=False)
    err = capsys.readouterr().err
    assert [ip.name for ip in got] == [ip.name for ip in want]
    for a, b in zip(got, want):
        assert list(a.gt_cls) == list(b.gt_cls)
        # LabelImg writes whole pixels: RDD's 640 px photos' YOLO boxes lie within half a pixel of them
        assert np.allclose(a.gt_xyxy, b.gt_xyxy, atol=0.5), (a.name, a.gt_xyxy, b.gt_xyxy)
    r_voc = evaluate(voc / "data.yaml", DEFAULT_WEIGHTS_ONNX, cfg, preds=got)
    r_yolo = evaluate(yolo / "data.yaml", DEFAULT_WEIGHTS_ONNX, cfg, preds=want)
    assert r_voc["tp"] + r_voc["fn"] == sum(len(ip.gt_cls) for ip in want) > 0
    assert ({c: (e["tp"], e["fp"], e["fn"]) for c, e in r_voc["per_class"].items()}
            == {c: (e["tp"], e["fp"], e["fn"]) for c, e in r_yolo["per_class"].items()})
    where = f"{voc / 'data.yaml'}: val"
    assert f"note: {where}: left out 3 boxes of classes the model does not detect: D43 (2), Repair (1)" in err, err
    xml6 = voc / "val" / "Japan" / "annotations" / "xmls" / (labs[6].stem + ".xml")
    w6, h6 = _size(voc / "val" / "Japan" / "images" / (labs[6].stem + ".jpg"))
    assert (f"note: {where}: 1 Pascal VOC files' <size> is missing, 0 or not their photo's: the photo's own size is "
            f"used (e.g. {xml6}: <size> 0x0, photo {w6}x{h6})") in err, err
    assert err.count("note:") == 2 and "warning" not in err, err
    # tune reads them the same way (the same predictions, its own label reading)
    config = tmp_path / "city.yaml"
    shutil.copy(ROOT / "configs" / "default.yaml", config)
    n_yolo = {c: int(sum(np.sum(ip.gt_cls == c) for ip in want)) for c in CLASS_IDS}
    assert tune(voc / "data.yaml", DEFAULT_WEIGHTS_ONNX, config, cfg=cfg)["n_boxes"] == n_yolo


def _voc_city(root: Path, layout: str) -> tuple[Path, list[Path]]:
    """6 real Japan train photos (4 train, 2 val) with their boxes as LabelImg's VOC XML, in ``layout``: ``voc``
    (JPEGImages/ + Annotations/), ``labels`` (images/ + labels/, the XML where the .txt would be) or ``flat`` (the
    XML beside each photo, LabelImg's default). Returns the data.yaml and the YOLO originals."""
    labs = _labelled("train", 6)
    for i, lab in enumerate(labs):
        split = "train" if i < 4 else "val"
        img_dir, xml_dir = {"voc": (root / split / "JPEGImages", root / split / "Annotations"),
                            "labels": (root / "images" / split, root / "labels" / split),
                            "flat": (root / split, root / split)}[layout]
        img_dir.mkdir(parents=True, exist_ok=True)
        xml_dir.mkdir(parents=True, exist_ok=True)
        img = RDD / "images" / "train" / (lab.stem + ".jpg")
        shutil.copy(img, img_dir / img.name)
        (xml_dir / (lab.stem + ".xml")).write_text(_voc_xml(img, _yolo_to_voc(lab, img), _size(img)), encoding="utf-8")
    y = root / "data.yaml"
    dirs = {"voc": ("train/JPEGImages", "val/JPEGImages"), "labels": ("images/train", "images/val"),
            "flat": ("train", "val")}[layout]
    y.write_text(f"train: {dirs[0]}\nval: {dirs[1]}\nnames: [D10, D00, D20, D40]\n")  # order: for .txt only
    return y, labs


@pytest.mark.parametrize("layout", ["voc", "labels", "flat"])
def test_train_writes_the_yolo_originals_from_voc_labels(tmp_path, capfd, layout):
    """`patrol train`'s data preparation converts VOC XML into the same renumbered YOLO labels in OUT/.NAME-data as
    it writes from the RDD YOLO originals, line for line (the classes alike, each coordinate within the half pixel
    LabelImg's whole pixels round to), and writes nothing beside the city's data. Before, no label file was found
    (exit 3)."""
    from detector.train import resolve_data_yaml

    y, labs = _voc_city(tmp_path / "city", layout)
    before = {p: p.read_bytes() for p in (tmp_path / "city").rglob("*") if p.is_file()}
    d = yaml.safe_load(resolve_data_yaml(y, tmp_path / "w").read_text(encoding="utf-8"))
    err = capfd.readouterr().err
    assert "train: 4 images" in err and "val: 2 images" in err, err
    # the same photos with their YOLO originals, through the same preparation
    ref = tmp_path / "ref"
    for i, lab in enumerate(labs):
        split = "train" if i < 4 else "val"
        for sub, f in (("images", RDD / "images" / "train" / (lab.stem + ".jpg")), ("labels", lab)):
            (ref / sub / split).mkdir(parents=True, exist_ok=True)
            shutil.copy(f, ref / sub / split / f.name)
    (ref / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [D00, D10, D20, D40]\n")
    r = yaml.safe_load(resolve_data_yaml(ref / "data.yaml", tmp_path / "wref").read_text(encoding="utf-8"))
    for i, lab in enumerate(labs):
        split = "train" if i < 4 else "val"
        mine = Path(d["path"]) / "labels" / split / (lab.stem + ".txt")
        theirs = Path(r["path"]) / "labels" / split / (lab.stem + ".txt")
        a, b = ([ln.split() for ln in f.read_text().splitlines()] for f in (mine, theirs))
        assert [r[0] for r in a] == [r[0] for r in b] and a, (mine, a, b)  # renumbered alike
        # LabelImg writes whole pixels; each edge of RDD's YOLO boxes of its 640 px photos lies within half a pixel
        w, h = _size(RDD / "images" / "train" / (lab.stem + ".jpg"))
        px = np.array([[float(v) for v in row[1:]] for row in a]) - np.array([[float(v) for v in row[1:]] for row in b])
        assert np.all(np.abs(px * [w, h, w, h]) <= [0.501, 0.501, 1.001, 1.001]), (mine, a, b)
    assert {p: p.read_bytes() for p in (tmp_path / "city").rglob("*") if p.is_file()} == before


def test_a_photo_with_both_formats_reads_its_txt_with_one_note(tmp_path, capfd):
    """A split whose photos have a YOLO .txt and a VOC .xml (an RDD2020 copy converted for YOLO into labels/ beside
    its annotations/xmls/), or some one and some the other: the .txt is read, one note counts them. A data.yaml
    without names: and YOLO .txt labels is refused, naming it (their class numbers mean nothing without names)."""
    from detector.evaluate import label_paths_for, resolve_split
    from detector.train import check_data_yaml

    y, labs = _voc_city(tmp_path / "city", "labels")
    city = tmp_path / "city"
    (city / "annotations" / "xmls" / "train").mkdir(parents=True)
    for lab in labs[:3]:  # a conversion: .txt in labels/, the XML originals in annotations/xmls/
        shutil.move(city / "labels" / "train" / (lab.stem + ".xml"), city / "annotations" / "xmls" / "train")
        rows = [ln.split() for ln in lab.read_text().splitlines() if ln.split()]
        # the yaml says D10 D00 D20 D40: written in that order
        (city / "labels" / "train" / (lab.stem + ".txt")).write_text(
            "".join(f"{[1, 0, 2, 3][int(r[0])]} {' '.join(r[1:])}\n" for r in rows))
    images = resolve_split(y, "train")[0]
    paths = label_paths_for(images)
    assert [p.suffix for p in paths] == [".txt"] * 3 + [".xml"]
    assert [b[1].parent for b in paths.both] == [city / "annotations" / "xmls" / "train"] * 3
    plan = check_data_yaml(y)
    err = capfd.readouterr().err
    txt0 = city / "labels" / "train" / (labs[0].stem + ".txt")
    xml0 = city / "annotations" / "xmls" / "train" / (labs[0].stem + ".xml")
    assert (f"note: {y}: train: labels in two formats: 3 YOLO .txt, 1 Pascal VOC .xml; 3 photos have both a YOLO "
            f".txt and a Pascal VOC .xml label file: the .txt is read, not the .xml (e.g. {txt0}, not {xml0})"
            ) in err, err
    assert err.count("labels in two formats") == 1 and f"{y}: val" not in err, err
    assert [len(lines) for _, _, lines in plan.splits["train"]] == [len(lab.read_text().split("\n")) - 1
                                                                    for lab in labs[:4]]
    y.write_text("train: images/train\nval: images/val\n")
    with pytest.raises(InputError) as e:
        check_data_yaml(y)
    assert str(e.value).startswith(f"{y}: names: missing, but 3 train photos have YOLO .txt labels (e.g. {txt0}), "
                                   "whose class numbers mean the names in order: add names:"), str(e.value)


BILLION_LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
                  + "".join(f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
                            for i in range(1, 10))
                  + ']>\n<annotation><object><name>&lol9;</name></object></annotation>\n')


def test_bad_voc_files_stop_train_naming_every_one(tmp_path, capfd):
    """Malformed XML (not XML, a bndbox without xmax, a number that is not one, entity declarations: a billion laughs
    must not hang) stops `patrol train` before training with exit 3, one line naming the first file, what is wrong
    and the other files, as a bad YOLO label line does. A box with no area left inside the photo is dropped with a
    warning naming its file; a difficult box is kept."""
    from detector.evaluate import VocNotes, read_voc_labels
    from detector.train import check_data_yaml

    model = need(ROOT / "weights" / "rdd-yolo.pt")
    y, labs = _voc_city(tmp_path / "city", "voc")
    ann = tmp_path / "city" / "train" / "Annotations"
    xmls = [ann / (lab.stem + ".xml") for lab in labs[:4]]
    xmls[0].write_text(xmls[0].read_text().replace("</annotation>", ""))
    xmls[1].write_text(xmls[1].read_text().replace("<xmax>", "<xmaximum>", 1).replace("</xmax>", "</xmaximum>", 1))
    xmls[3].write_text(BILLION_LAUGHS)
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", str(y), "--model", str(model), "--epochs", "1",
                        "--imgsz", "64", "--workers", "0", "--device", "cpu", "--out", str(tmp_path / "runs")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.returncode == 3 and len(errors) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"{xmls[0]}: not a Pascal VOC label file: not XML (no element found" in errors[0], errors[0]
    assert f"and 2 more label files: {xmls[1]}, {xmls[3]})" in errors[0], errors[0]
    assert not (tmp_path / "runs").exists()

    ok = xmls[2].read_text()
    for text, why in (
            (xmls[1].read_text(), r"object 1 \(D\d0\): <bndbox> has no <xmax> number"),
            (ok.replace("<ymin>", "<ymin>12px", 1), r"object 1 \(D\d0\): <ymin> is not a number: '12px"),
            (re.sub(r"<bndbox>.*?</bndbox>", "", ok, count=1, flags=re.S), r"object 1 \(D\d0\): no <bndbox>"),
            (re.sub(r"<name>[^<]*</name>", "<name> </name>", ok, count=1), "object 1: no class <name>"),
            (BILLION_LAUGHS, "XML entity declarations"),
            ("<gpx></gpx>", "the XML root is <gpx>, not <annotation>")):
        bad = tmp_path / "bad.xml"
        bad.write_text(text)
        with pytest.raises(InputError, match=why) as e:
            read_voc_labels(bad, 600, 600)
        assert str(bad) in str(e.value)
    # degenerate (after clipping) and swapped boxes are dropped, named; a difficult one kept; clipped to the photo
    good = tmp_path / "g.xml"
    good.write_text(_voc_xml(tmp_path / "g.jpg", [("D00", 10, 10, 50, 50), ("D20", 700, 10, 800, 50),
                                                  ("D40", 60, 60, 40, 80), ("D10", 0, -5, 650, 30)], (600, 600))
                    .replace("<difficult>0</difficult>", "<difficult>1</difficult>", 1))
    notes = VocNotes()
    xyxy, cls = read_voc_labels(good, 600, 600, notes)
    assert list(cls) == ["D00", "D10"] and np.allclose(xyxy, [[9, 9, 50, 50], [0, 0, 600, 30]])
    assert notes.degenerate == {good: 2}
    shutil.copy(good, xmls[0])
    for f in xmls[1:]:
        f.write_text(_voc_xml(f, [("D00", 10, 10, 50, 50)], (600, 600)))
    capfd.readouterr()
    check_data_yaml(y)
    err = capfd.readouterr().err
    assert (f"warning: {y}: train: dropped 2 Pascal VOC boxes with no area left inside the photo (xmax <= xmin or "
            f"ymax <= ymin after clipping): {xmls[0]} (2)") in err, err
