"""`patrol eval --errors DIR`: the mistakes behind the score drawn and listed, on a few real labelled photos
(copied from ../shared/data/rdd at test time) scored by the shipped ONNX model."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

os.environ.setdefault("YOLO_OFFLINE", "1")

from detector import CLASS_IDS  # noqa: E402
from detector.config import DEFAULT_WEIGHTS_ONNX, Config  # noqa: E402
from detector.evaluate import evaluate, image_matches, predict_split  # noqa: E402

from conftest import ROOT  # noqa: E402

# photos of the val split on which the shipped model makes every kind of mistake (FP, FN, a wrong class, a misplaced
# box; at Config()'s 640 px and 0.25 a duplicate on Japan_000774 and China_MotorBike_001541, a misplaced box and a
# wrong class on Japan_000767)
PICKED = ("Japan_000762", "Japan_000694", "China_MotorBike_001453", "China_MotorBike_001532", "Czech_002752",
          "Czech_002529", "Japan_000774", "China_MotorBike_001541", "Japan_000767")


def _set(rdd: Path, dst: Path, stems=PICKED) -> Path:
    for sub in ("images", "labels"):
        (dst / sub / "val").mkdir(parents=True)
    for s in stems:
        shutil.copy(rdd / "images" / "val" / f"{s}.jpg", dst / "images" / "val")
        shutil.copy(rdd / "labels" / "val" / f"{s}.txt", dst / "labels" / "val")
    (dst / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images/val", "val": "images/val",
                                                  "names": {0: "D00", 1: "D10", 2: "D20", 3: "D40"}}))
    return dst


@pytest.fixture
def picked(rdd, tmp_path):
    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    return _set(rdd, tmp_path / "set")


def _patrol(*args, cwd=None):
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=600)


def _rows(d: Path) -> list[dict]:
    raw = (d / "errors.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Japanese Excel reads 種別 right
    return list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))


def _tally(rows: list[dict]) -> tuple[int, int]:
    """FP and FN as the metric counts them: a wrong class or a misplaced box is one of each, a duplicate one FP."""
    k = Counter(r["kind"] for r in rows)
    assert set(k) <= {"fp", "fn", "wrong_class", "duplicate", "misplaced"}, k
    return k["fp"] + k["duplicate"] + k["wrong_class"] + k["misplaced"], k["fn"] + k["wrong_class"] + k["misplaced"]


def test_errors_csv_counts_are_the_eval_jsons_and_a_rerun_replaces_only_its_files(picked, tmp_path):
    out, errs = tmp_path / "e.json", tmp_path / "errs"
    # a folder of other files is refused before the model runs
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    run = _patrol("eval", picked / "data.yaml", "--out", out, "--errors", tmp_path / "mine")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "notes.txt" in run.stderr and not out.exists()

    run = _patrol("eval", picked / "data.yaml", "--out", out, "--errors", errs)
    assert run.returncode == 0, run.stdout + run.stderr
    res = json.loads(out.read_text())
    rows = _rows(errs)
    assert _tally(rows) == (res["fp"], res["fn"]) and res["fp"] and res["fn"]
    kinds = Counter(r["kind"] for r in rows)
    assert kinds["wrong_class"] >= 1 and kinds["fp"] >= 1 and kinds["fn"] >= 1
    assert kinds["misplaced"] >= 1  # Japan_000762, Czech_002529 (no duplicate at the shipped 448 px and thresholds)
    for src, e in res["per_source"].items():  # and per source
        assert _tally([r for r in rows if r["source"] == src]) == (e["fp"], e["fn"])
    for cid in CLASS_IDS:  # per class: an FP under its predicted class, an FN (a wrong class's too) under the true one
        fp = sum(1 for r in rows if r["kind"] != "fn" and r["class"] == cid)
        fn = sum(1 for r in rows if (r["kind"] == "fn" and r["class"] == cid)
                 or (r["kind"] in ("wrong_class", "misplaced") and r["true_class"] == cid))
        assert (fp, fn) == (res["per_class"][cid]["fp"], res["per_class"][cid]["fn"]), cid
    assert {r["種別"] for r in rows if r["class"] == "D00"} == {"縦ひび割れ"}
    # the worst photos first
    per_image = Counter()
    for r in rows:
        per_image[r["image"]] += 2 if r["kind"] in ("wrong_class", "misplaced") else 1
    order = list(dict.fromkeys(r["image"] for r in rows))
    assert [per_image[i] for i in order] == sorted(per_image.values(), reverse=True)
    # one drawing per photo with a mistake, named after it; the console names the folder and the counts
    drawn = sorted(p.name for p in errs.glob("*.jpg"))
    assert drawn == sorted(f"{Path(i).stem}.jpg" for i in order) == sorted({r["drawn"] for r in rows})
    assert f"errors: {errs}" in " ".join(run.stdout.split())
    assert (f"{kinds['fp']} false alarms, {kinds['duplicate']} duplicates, {kinds['fn']} missed, "
            f"{kinds['wrong_class']} wrong class, {kinds['misplaced']} misplaced") in " ".join(run.stdout.split())
    assert (errs / "index.html").is_file() and "http" not in (errs / "index.html").read_text()

    # again into the same folder, one source only: the earlier drawings go, a file of the user's stays
    (errs / "keep.txt").write_text("mine")
    run = _patrol("eval", picked / "data.yaml", "--out", out, "--errors", errs, "--prefix", "Japan_")
    assert run.returncode == 0, run.stdout + run.stderr
    res = json.loads(out.read_text())
    rows = _rows(errs)
    assert rows and {r["source"] for r in rows} == {"Japan"} and _tally(rows) == (res["fp"], res["fn"])
    assert sorted(p.name for p in errs.glob("*.jpg")) == sorted({r["drawn"] for r in rows})
    assert (errs / "keep.txt").read_text() == "mine"


def _edge(img: np.ndarray, box, side: str) -> np.ndarray:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    xs, ys = np.arange(x1 + 4, x2 - 3), np.arange(y1 + 4, y2 - 3)
    if side == "left":
        return img[ys, min(max(x1, 0), img.shape[1] - 1)]
    return img[min(max(y2, 0), img.shape[0] - 1), xs]


def _share(px: np.ndarray, color: str) -> float:
    b, g, r = (px[:, i].astype(int) for i in range(3))
    hit = {"red": (r > 150) & (r - g > 80) & (r - b > 80), "green": (g > 120) & (g - r > 60) & (g - b > 60),
           "orange": (r > 190) & (g > 90) & (g < 185) & (b < 90), "cyan": (b > 170) & (g > 150) & (r < 100),
           "magenta": (r > 150) & (b > 150) & (g < 100)}[color]
    return float(hit.mean()) if len(hit) else 1.0


def _check_drawn(preds, thr, errs: Path, rows: list[dict]) -> int:
    """Each false positive's box is red and each true positive's green in the drawing, at the photo's pixels."""
    import cv2

    checked = 0
    by_image = {ip.name: ip for ip in preds}
    for name in {r["image"] for r in rows}:
        ip = by_image[name]
        img = cv2.imread(str(errs / f"{Path(name).stem}.jpg"))
        assert img.shape[1] == ip.width and img.shape[0] > ip.height  # the photo, upright, and the legend below
        mt = image_matches(ip, thr)
        for r in rows:
            if r["image"] == name and r["kind"] == "fp" and float(r["x2"]) - float(r["x1"]) > 20 and float(r["y2"]) - float(r["y1"]) > 20:
                box = [float(r[k]) for k in ("x1", "y1", "x2", "y2")]
                assert max(_share(_edge(img, box, s), "red") for s in ("left", "bottom")) > 0.6, (name, box)
                checked += 1
        for box in ip.pred_xyxy[mt.kept[mt.gt_of >= 0]]:
            if box[2] - box[0] > 20 and box[3] - box[1] > 20:
                assert max(_share(_edge(img, box, s), "green") for s in ("left", "bottom")) > 0.6, (name, box)
                checked += 1
    return checked


def test_the_drawing_has_red_false_alarms_and_green_hits_where_the_boxes_are(picked, tmp_path):
    from detector.evalerrors import write_errors

    cfg = Config()
    preds = predict_split(picked / "data.yaml", DEFAULT_WEIGHTS_ONNX, cfg, "val", use_cache=False)
    res = evaluate(picked / "data.yaml", DEFAULT_WEIGHTS_ONNX, cfg, preds=preds)
    summ = write_errors(preds, res["thresholds"], tmp_path / "errs", cfg)
    rows = _rows(tmp_path / "errs")
    assert (summ.n_fp + summ.n_duplicate + summ.n_wrong_class + summ.n_misplaced,
            summ.n_fn + summ.n_wrong_class + summ.n_misplaced) == (res["fp"], res["fn"]) == _tally(rows)
    assert _check_drawn(preds, res["thresholds"], tmp_path / "errs", rows) >= 4


def test_a_photo_turned_by_exif_is_drawn_upright_as_it_was_scored(rdd, tmp_path):
    """A phone photo stored on its side with EXIF Orientation 6: the scorer reads it upright (as the labels are), so
    the drawing is the upright photo with the boxes on the damages, not the stored pixels."""
    import cv2
    from PIL import Image

    from detector.evalerrors import write_errors

    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    root = _set(rdd, tmp_path / "set", ("Japan_000762",))
    photo = root / "images" / "val" / "Japan_000762.jpg"
    upright = cv2.imread(str(photo))
    h, w = upright.shape[:2]
    stored = Image.fromarray(cv2.cvtColor(cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE), cv2.COLOR_BGR2RGB))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to show
    stored.save(photo, quality=98, exif=exif)
    # the stored pixels are not the upright photo (the test would not tell them apart otherwise)
    raw = cv2.imread(str(photo), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    assert raw.shape != upright.shape or np.abs(raw.astype(int) - upright.astype(int)).mean() > 20

    cfg = Config()
    preds = predict_split(root / "data.yaml", DEFAULT_WEIGHTS_ONNX, cfg, "val", use_cache=False)
    res = evaluate(root / "data.yaml", DEFAULT_WEIGHTS_ONNX, cfg, preds=preds)
    write_errors(preds, res["thresholds"], tmp_path / "errs", cfg)
    rows = _rows(tmp_path / "errs")
    assert rows and _tally(rows) == (res["fp"], res["fn"])
    drawn = cv2.imread(str(tmp_path / "errs" / "Japan_000762.jpg"))
    assert drawn.shape[1] == w and drawn.shape[0] > h
    # away from the boxes the drawing is the upright photo
    mask = np.ones((h, w), bool)
    for ip in preds:
        for b in np.vstack([ip.pred_xyxy, ip.gt_xyxy]):
            x1, y1, x2, y2 = (int(v) for v in b)
            mask[max(y1 - 40, 0):y2 + 40, max(x1 - 10, 0):x2 + 10] = False
    assert mask.mean() > 0.2
    assert np.abs(drawn[:h].astype(int) - upright.astype(int))[mask].mean() < 6
    assert _check_drawn(preds, res["thresholds"], tmp_path / "errs", rows) >= 1


def _sides(img: np.ndarray, box) -> list[np.ndarray]:
    """The pixels along each of the box's four sides (4 px short of the corners)."""
    x1, y1, x2, y2 = (min(max(int(round(v)), 0), n - 1) for v, n in zip(box, (img.shape[1], img.shape[0]) * 2))
    xs, ys = np.arange(x1 + 4, x2 - 3), np.arange(y1 + 4, y2 - 3)
    return [img[ys, x1], img[ys, x2], img[y1, xs], img[y2, xs]]


def test_duplicates_and_misplaced_boxes_are_their_own_kinds_with_the_true_box_given_and_drawn(picked, tmp_path):
    """A second box on a damage already found is a ``duplicate`` (one FP, no FN), a box of the right class drawn off a
    missed damage (0.3 < IoU <= 0.5) is ``misplaced`` (one FP and its FN, one row); the true box each is about is in
    ``true_x1 … true_y2`` (wrong classes too) and drawn thin dashed beside the predicted one."""
    import cv2

    from detector.evalerrors import write_errors
    from detector.evaluate import box_iou

    cfg = Config()
    preds = predict_split(picked / "data.yaml", DEFAULT_WEIGHTS_ONNX, cfg, "val", use_cache=False)
    res = evaluate(picked / "data.yaml", DEFAULT_WEIGHTS_ONNX, cfg, preds=preds)
    errs = tmp_path / "errs"
    summ = write_errors(preds, res["thresholds"], errs, cfg)
    raw = (errs / "errors.csv").read_bytes().decode("utf-8-sig")
    header = raw.splitlines()[0].split(",")
    assert header[-5:] == ["drawn", "true_x1", "true_y1", "true_x2", "true_y2"]  # the new columns at the end only
    rows = _rows(errs)
    assert _tally(rows) == (res["fp"], res["fn"])
    kinds = Counter(r["kind"] for r in rows)
    assert (summ.n_duplicate, summ.n_misplaced) == (kinds["duplicate"], kinds["misplaced"])
    assert kinds["duplicate"] >= 2 and kinds["misplaced"] >= 1 and kinds["wrong_class"] >= 1
    by_image = {ip.name: ip for ip in preds}
    checked = Counter()
    for r in rows:
        tb = [r[k] for k in ("true_x1", "true_y1", "true_x2", "true_y2")]
        if r["kind"] in ("fp", "fn"):
            assert tb == [""] * 4 and not r["true_class"], r
            continue
        ip = by_image[r["image"]]
        mt = image_matches(ip, res["thresholds"])
        box, tb = np.array([[float(r[k]) for k in ("x1", "y1", "x2", "y2")]]), np.array([[float(v) for v in tb]])
        g = int(np.argmin(np.abs(ip.gt_xyxy - tb).sum(1)))  # the true box named: one of the photo's, as labelled
        assert np.abs(ip.gt_xyxy[g] - tb[0]).max() < 0.06 and ip.gt_cls[g] == r["true_class"], r
        iou = float(box_iou(box, tb)[0, 0])
        if r["kind"] == "duplicate":  # its own class, found by another box (at IoU > 0.5: a higher-confidence one)
            assert r["true_class"] == r["class"] and iou > 0.3 and mt.gt_matched[g], r
            assert iou <= 0.5 or ip.pred_conf[mt.kept[mt.gt_of == g]][0] > float(r["confidence"]), r
        elif r["kind"] == "misplaced":  # its own class, missed
            assert r["true_class"] == r["class"] and 0.3 < iou <= 0.5 and not mt.gt_matched[g], r
        else:
            assert r["true_class"] != r["class"] and iou > 0.5 and not mt.gt_matched[g], r
        # drawn: the predicted box solid, the true box thin dashed, in the kind's colour
        img = cv2.imread(str(errs / r["drawn"]))
        color = {"duplicate": "orange", "misplaced": "cyan", "wrong_class": "magenta"}[r["kind"]]
        if box[0, 2] - box[0, 0] > 20 and box[0, 3] - box[0, 1] > 20:
            assert max(_share(_edge(img, box[0], s), color) for s in ("left", "bottom")) > 0.6, (r, color)
        if r["kind"] != "duplicate" and tb[0, 2] - tb[0, 0] > 20 and tb[0, 3] - tb[0, 1] > 20:
            shares = sorted(_share(px, color) for px in _sides(img, tb[0]))
            assert shares[-2] > 0.3, (r, color, shares)  # dashed: about half of two sides at least
        checked[r["kind"]] += 1
    assert checked["duplicate"] >= 2 and checked["misplaced"] >= 1 and checked["wrong_class"] >= 1, checked


def test_a_second_box_drawn_off_a_found_damage_is_a_duplicate_not_a_false_alarm(rdd, tmp_path):
    """At the shipped settings (configs/default.yaml: 448 px, tuned thresholds) two val photos have a D20 box over a
    pothole area another D20 box found, at 0.3 < IoU <= 0.5 with it (Czech_002682: 0.41, Czech_002857: 0.46; both
    higher-confidence than the box that matched): each is a ``duplicate`` row (one FP, the found true box given),
    drawn orange, and no ``fp`` row is left at IoU > 0.3 over a found true box of its class. Before: plain ``fp``."""
    import cv2

    from detector.config import DEFAULT_CONFIG, load_config
    from detector.evalerrors import write_errors
    from detector.evaluate import box_iou
    from detector.infer import resolve_weights

    cfg = load_config(DEFAULT_CONFIG)
    w = resolve_weights(cfg, None)
    if not w.is_file():
        pytest.skip(f"shipped model missing: {w}")
    root = _set(rdd, tmp_path / "set", ("Czech_002682", "Czech_002857", "Japan_000762"))
    preds = predict_split(root / "data.yaml", w, cfg, "val", use_cache=False)
    res = evaluate(root / "data.yaml", w, cfg, preds=preds)
    errs = tmp_path / "errs"
    summ = write_errors(preds, res["thresholds"], errs, cfg, res["max_boxes"], res["iou"])
    rows = _rows(errs)
    assert _tally(rows) == (res["fp"], res["fn"]) and summ.n_duplicate == 2
    by_image = {ip.name: ip for ip in preds}
    for name in ("Czech_002682.jpg", "Czech_002857.jpg"):
        dup = [r for r in rows if r["image"] == name and r["kind"] == "duplicate"]
        assert len(dup) == 1 and dup[0]["class"] == dup[0]["true_class"] == "D20", rows
        box = np.array([[float(dup[0][k]) for k in ("x1", "y1", "x2", "y2")]])
        tb = np.array([[float(dup[0][k]) for k in ("true_x1", "true_y1", "true_x2", "true_y2")]])
        assert 0.3 < float(box_iou(box, tb)[0, 0]) <= 0.5, dup
        img = cv2.imread(str(errs / dup[0]["drawn"]))
        assert max(_share(_edge(img, box[0], s), "orange") for s in ("left", "bottom")) > 0.6, dup
    for name, ip in by_image.items():  # no plain false alarm is left on a found damage of its class
        mt = image_matches(ip, res["thresholds"], res["max_boxes"], res["iou"])
        found = ip.gt_xyxy[mt.gt_matched]
        found_cls = np.asarray(ip.gt_cls, dtype=object)[mt.gt_matched]
        for r in rows:
            if r["image"] == name and r["kind"] == "fp":
                iou = box_iou(np.array([[float(r[k]) for k in ("x1", "y1", "x2", "y2")]]), found)[0]
                assert not ((iou > 0.3) & (found_cls == r["class"])).any(), r


def test_index_html_has_the_legend_with_swatches_dashed_where_the_boxes_are_drawn_dashed(rdd, tmp_path):
    """index.html shows the drawings' legend as CSS swatches in the boxes' colours, dashed where the drawn boxes are
    dashed (a missed box; a wrong class's and a misplaced box's true box, thin, beside their solid predicted box),
    solid where they are solid; on the drawings of real val photos a missed box is dashed and a false alarm solid."""
    import re

    import cv2

    from detector.evalerrors import write_errors

    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    root = _set(rdd, tmp_path / "set", ("Czech_002682", "Czech_002857", "Japan_000762", "Japan_000767", "Japan_000694",
                                           "Czech_002529"))
    cfg = Config()
    preds = predict_split(root / "data.yaml", DEFAULT_WEIGHTS_ONNX, cfg, "val", use_cache=False)
    res = evaluate(root / "data.yaml", DEFAULT_WEIGHTS_ONNX, cfg, preds=preds)
    errs = tmp_path / "errs"
    write_errors(preds, res["thresholds"], errs, cfg)
    page = (errs / "index.html").read_text()
    legend = re.search(r"<p class='legend'>(.*?)</p>", page)
    assert legend, page[:2000]
    items = {}
    for it in re.findall(r"<span class='it'>(.*?)</span>(?=\s*<span class='it'>|$)", legend.group(1)):
        text = re.sub(r"<[^>]*>", "", it).strip().split(":")[0]
        items[text] = [(style, color) for _, style, color in
                       re.findall(r"border:(\d+)px (solid|dashed) #([0-9a-f]{6})", it)]
    styles = {k: [s for s, _ in v] for k, v in items.items()}
    assert styles == {"right": ["solid"], "false alarm": ["solid"], "missed": ["dashed"],
                      "wrong class": ["solid", "dashed"], "duplicate": ["solid"], "misplaced": ["solid", "dashed"]}
    named = {"right": "green", "false alarm": "red", "wrong class": "magenta", "duplicate": "orange", "misplaced": "cyan"}
    for k, color in named.items():  # the swatches are in the boxes' colours
        for _, hexc in items[k]:
            px = np.array([[int(hexc[4:6], 16), int(hexc[2:4], 16), int(hexc[0:2], 16)]])  # BGR
            assert _share(px, color) == 1.0, (k, hexc)
    # and the drawings: a missed box dashed yellow, a false alarm solid red
    rows = _rows(errs)
    seen = Counter()
    for r in rows:
        box = [float(r[k]) for k in ("x1", "y1", "x2", "y2")]
        if r["kind"] not in ("fn", "fp") or box[2] - box[0] < 20 or box[3] - box[1] < 20:
            continue
        img = cv2.imread(str(errs / r["drawn"]))
        if r["kind"] == "fn":
            b, g, rr = (np.concatenate(_sides(img, box))[:, i].astype(int) for i in range(3))
            yellow = float(((rr > 170) & (g > 170) & (b < 110)).mean())
            assert 0.25 < yellow < 0.8, (r, yellow)  # about half: dashes and gaps
        else:
            assert max(_share(_edge(img, box, s), "red") for s in ("left", "bottom")) > 0.9, r  # no gaps
        seen[r["kind"]] += 1
    assert seen["fn"] >= 2 and seen["fp"] >= 1, seen


def test_a_second_box_drawn_off_a_damage_a_misplaced_box_claimed_is_a_duplicate(rdd, tmp_path):
    """At Config()'s 640 px and 0.25, China_MotorBike_001507 has two D10 boxes drawn off one missed D10 crack (IoU
    0.47 and 0.38 with it): the more confident is ``misplaced`` (the damage found, the box drawn off: one FP and its
    FN), the other a second box on that damage, a ``duplicate`` of it (one FP, the same true box given, drawn orange),
    not a false alarm. Before: ``fp``. The rows still add up to the metric's FP and FN."""
    import cv2

    from detector.evalerrors import write_errors
    from detector.evaluate import box_iou

    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    root = _set(rdd, tmp_path / "set", ("China_MotorBike_001507",))
    cfg = Config()
    preds = predict_split(root / "data.yaml", DEFAULT_WEIGHTS_ONNX, cfg, "val", use_cache=False)
    res = evaluate(root / "data.yaml", DEFAULT_WEIGHTS_ONNX, cfg, preds=preds)
    errs = tmp_path / "errs"
    summ = write_errors(preds, res["thresholds"], errs, cfg, res["max_boxes"], res["iou"])
    rows = _rows(errs)
    assert _tally(rows) == (res["fp"], res["fn"]), rows
    mis = [r for r in rows if r["kind"] == "misplaced"]
    dup = [r for r in rows if r["kind"] == "duplicate"]
    assert len(mis) == len(dup) == 1 and summ.n_duplicate == 1 and not [r for r in rows if r["kind"] == "fp"], rows
    true = [tuple(r[k] for k in ("true_x1", "true_y1", "true_x2", "true_y2")) for r in (mis[0], dup[0])]
    assert true[0] == true[1] and mis[0]["true_class"] == dup[0]["true_class"] == dup[0]["class"] == "D10", rows
    assert float(mis[0]["confidence"]) > float(dup[0]["confidence"])
    box = np.array([[float(dup[0][k]) for k in ("x1", "y1", "x2", "y2")]])
    assert 0.3 < float(box_iou(box, np.array([[float(v) for v in true[1]]]))[0, 0]) <= 0.5
    img = cv2.imread(str(errs / dup[0]["drawn"]))
    assert max(_share(_edge(img, box[0], s), "orange") for s in ("left", "bottom", "right")) > 0.6, dup
