"""The CRDDC/ORDDC metric on hand-made boxes, mAP50, and one small real `evaluate` run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")

from detector import CLASS_IDS  # noqa: E402
from detector.config import DEFAULT_WEIGHTS_ONNX, Config  # noqa: E402
from detector.errors import InputError  # noqa: E402
from detector.evaluate import (  # noqa: E402
    ClassIds, ImagePreds, SplitPreds, average_precision, dataset_names, evaluate, format_table, match_image, prf,
    predict_split, resolve_split, score, source_of, write_eval_json,
)

from conftest import PRETRAINED, RDD, ROOT, need  # noqa: E402

A = np.array([[0, 0, 100, 100]], dtype=float)


def _c(*cls):
    return np.array(cls, dtype=object)


def _counts(*args, **kw):
    tp, fp, fn = match_image(*args, **kw)
    return int(tp.sum()), int(fp.sum()), int(fn.sum())


def test_exact_match_is_tp():
    tp, fp, fn = match_image(A, _c("D00"), [0.9], A, _c("D00"))
    assert list(tp) == [1, 0, 0, 0] and fp.sum() == 0 and fn.sum() == 0


def test_wrong_class_is_fp_and_fn():
    tp, fp, fn = match_image(A, _c("D10"), [0.9], A, _c("D00"))
    assert tp.sum() == 0
    assert list(fp) == [0, 1, 0, 0]  # the D10 prediction
    assert list(fn) == [1, 0, 0, 0]  # the D00 ground truth


def test_iou_exactly_half_is_not_a_match():
    # pred [0,0,100,100] vs gt [0,0,100,50]: inter 5000, union 10000 -> IoU 0.5 exactly
    gt = np.array([[0, 0, 100, 50]], dtype=float)
    assert _counts(A, _c("D00"), [0.9], gt, _c("D00")) == (0, 1, 1)
    gt2 = np.array([[0, 0, 100, 51]], dtype=float)  # IoU 0.51
    assert _counts(A, _c("D00"), [0.9], gt2, _c("D00")) == (1, 0, 0)


def test_duplicates_are_fp():
    preds = np.repeat(A, 3, axis=0)
    assert _counts(preds, _c("D20", "D20", "D20"), [0.9, 0.8, 0.7], A, _c("D20")) == (1, 2, 0)


def test_max_five_per_image():
    boxes = np.array([[i * 100, 0, i * 100 + 50, 50] for i in range(6)], dtype=float)
    cls = _c(*["D40"] * 6)
    conf = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert _counts(boxes, cls, conf, boxes, cls) == (5, 0, 1)
    assert _counts(boxes, cls, conf, boxes, cls, max_det=None) == (6, 0, 0)
    # the cap keeps the highest-confidence ones whatever the input order
    perm = np.array([5, 0, 3, 1, 4, 2])
    tp, fp, fn = match_image(boxes[perm], cls, conf[perm], boxes[:5], cls[:5])
    assert (tp.sum(), fp.sum(), fn.sum()) == (5, 0, 0)


def test_empty_gt_all_fp_and_empty_preds_all_fn():
    assert _counts(np.repeat(A, 2, 0), _c("D00", "D10"), [0.5, 0.4], np.zeros((0, 4)), _c()) == (0, 2, 0)
    assert _counts(np.zeros((0, 4)), _c(), [], np.repeat(A, 2, 0), _c("D00", "D10")) == (0, 0, 2)


def test_greedy_highest_confidence_first():
    # two preds overlap one gt; the higher-confidence one is the TP even with the lower IoU
    gt = np.array([[0, 0, 100, 100]], dtype=float)
    preds = np.array([[0, 0, 100, 70], [0, 0, 100, 95]], dtype=float)
    tp, fp, fn = match_image(preds, _c("D00", "D00"), [0.9, 0.3], gt, _c("D00"))
    assert (tp.sum(), fp.sum(), fn.sum()) == (1, 1, 0)
    # each gt matched once, each pred takes its best unmatched gt
    gts = np.array([[0, 0, 100, 100], [0, 0, 100, 90]], dtype=float)
    assert _counts(preds, _c("D00", "D00"), [0.9, 0.3], gts, _c("D00", "D00")) == (2, 0, 0)


def _ip(name, px, pc, pk, gx, gk):
    return ImagePreds(name=name, source=source_of(name), width=640, height=640,
                      pred_xyxy=np.asarray(px, float).reshape(-1, 4), pred_conf=np.asarray(pc, float),
                      pred_cls=np.asarray(pk, dtype=object), gt_xyxy=np.asarray(gx, float).reshape(-1, 4),
                      gt_cls=np.asarray(gk, dtype=object))


def test_score_f1_precision_recall_exact():
    b1, b2 = [0, 0, 100, 100], [200, 200, 300, 300]
    preds = [
        # Japan: 1 TP (D00), 1 FP (D10 where nothing is)
        _ip("Japan_000700.jpg", [b1, b2], [0.9, 0.8], ["D00", "D10"], [b1], ["D00"]),
        # Czech: a D20 below its threshold (dropped -> FN), gt D40 missed (FN); one D40 TP
        _ip("Czech_000001.jpg", [b1, b2], [0.2, 0.7], ["D20", "D40"], [b1, b2], ["D20", "D40"]),
        # other: background image with one FP
        _ip("misc.jpg", [b1], [0.95], ["D00"], [], []),
    ]
    thr = {"D00": 0.25, "D10": 0.25, "D20": 0.25, "D40": 0.25}
    r = score(preds, thr)
    assert (r["tp"], r["fp"], r["fn"]) == (2, 2, 1)
    assert r["precision"] == pytest.approx(2 / 4)
    assert r["recall"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert r["n_images"] == 3
    assert r["per_class"]["D00"] == pytest.approx(
        {"tp": 1, "fp": 1, "fn": 0, "n_gt": 1, "precision": 0.5, "recall": 1.0, "f1": 2 / 3, "threshold": 0.25,
         "ap50": 0.5}  # the 0.95 FP on misc.jpg ranks above the TP

    )
    assert r["per_class"]["D20"]["fn"] == 1 and r["per_class"]["D20"]["tp"] == 0
    assert r["per_class"]["D10"]["ap50"] is None  # no ground truth: AP undefined, left out of mAP
    assert set(r["per_source"]) == {"Japan", "Czech", "other"}
    assert r["per_source"]["Japan"] == pytest.approx({"n_images": 1, "tp": 1, "fp": 1, "fn": 0, **prf(1, 1, 0)})
    assert r["per_source"]["other"]["fp"] == 1
    # mAP uses every prediction (no threshold): the 0.2 D20 box is a TP for AP
    assert r["per_class"]["D20"]["ap50"] == 1.0
    assert r["map50"] == pytest.approx(np.mean([0.5, 1.0, 1.0]))  # D10 (no gt) left out
    # lowering the D20 threshold recovers the TP
    r2 = score(preds, {**thr, "D20": 0.1})
    assert (r2["tp"], r2["fp"], r2["fn"]) == (3, 2, 0)


def test_map_perfect_and_partial():
    gts = [np.array([[i * 10, 0, i * 10 + 8, 8]], float) for i in range(4)]
    preds = [_ip(f"Japan_{i}.jpg", g, [0.9 - 0.1 * i], [CLASS_IDS[i % 4]], g, [CLASS_IDS[i % 4]]) for i, g in enumerate(gts)]
    r = score(preds, dict.fromkeys(CLASS_IDS, 0.5))
    assert r["map50"] == 1.0
    assert r["f1"] == 1.0
    # AP: one TP at top, one FP, then recall stays 1/2 -> precision envelope 1.0 up to r=0.5, 0 after
    ap = average_precision(np.array([True, False]), np.array([0.9, 0.8]), n_gt=2)
    assert ap == pytest.approx(51 / 101)
    assert average_precision(np.array([], bool), np.array([]), 3) == 0.0
    assert np.isnan(average_precision(np.array([False]), np.array([0.5]), 0))


def test_source_of():
    assert source_of("Japan_000001.jpg") == "Japan"
    assert source_of("China_MotorBike_000001.jpg") == "China_MotorBike"
    assert source_of("a/b/Czech_000001.jpg") == "Czech"
    assert source_of("IMG_0001.jpg") == "other"


def test_split_test_missing_is_input_error(tmp_path):
    data = need(RDD) / "data.yaml"
    with pytest.raises(InputError, match="no 'test' split"):
        resolve_split(data, "test")
    # a yaml with a test key works
    y = tmp_path / "data.yaml"
    y.write_text(f"path: {RDD}\ntrain: images/train\nval: images/val\ntest: images/val\nnames: [D00, D10, D20, D40]\n")
    imgs, names = resolve_split(y, "test")
    assert len(imgs) > 100 and names == list(CLASS_IDS)


def test_split_preds_and_class_ids_do_not_share_their_lists():
    """``SplitPreds.skipped`` and ``ClassIds.written`` were class-level ``[]``: an instance made without setting
    them (every one but those predict_split / dataset_names build) appended to the one list all instances share,
    so a photo skipped in one evaluation showed as skipped in the next one's JSON."""
    a, b = SplitPreds(), SplitPreds()
    a.skipped.append("Japan_000001.jpg")
    assert b.skipped == [] and SplitPreds().skipped == [] and a.skipped == ["Japan_000001.jpg"]
    assert SplitPreds([1, 2], ["x.jpg"]) == [1, 2] and SplitPreds([1, 2], ["x.jpg"]).skipped == ["x.jpg"]
    c, d = ClassIds(["D00"]), ClassIds(["D10"])
    c.written.append("縦ひび割れ")
    assert d.written == [] and ClassIds().written == []
    # as a real data.yaml's names are read: ids and the names as the file writes them, per instance
    import yaml

    names = yaml.safe_load((need(RDD) / "data.yaml").read_text(encoding="utf-8"))["names"]
    ids = dataset_names({"names": names}, RDD / "data.yaml")
    ja = dataset_names({"names": ["縦ひび割れ", "横ひび割れ", "亀甲状ひび割れ", "ポットホール"]}, "ja.yaml")
    assert list(ids) == list(ja) == list(CLASS_IDS)
    assert ids.written == [str(names[i]) for i in sorted(names)] and ja.written[0] == "縦ひび割れ"


def test_evaluate_real_small(tmp_path):
    """A few real val images of each source with the (untrained-head) pretrained weights: structure only."""
    val = need(RDD) / "images" / "val"
    pt = need(PRETRAINED / "yolov5nu-coco-backbone-4cls.pt")
    root = tmp_path / "ds"
    for sub in ("images", "labels"):
        (root / sub / "val").mkdir(parents=True)
    for pre in ("Japan_", "Czech_", "China_MotorBike_"):
        for p in sorted(val.glob(f"{pre}*.jpg"))[:2]:
            shutil.copy(p, root / "images" / "val" / p.name)
            lab = RDD / "labels" / "val" / (p.stem + ".txt")
            if lab.exists():
                shutil.copy(lab, root / "labels" / "val" / lab.name)
    cfg = Config()
    cfg.detect.imgsz = 320
    cfg.detect.batch = 4
    res = evaluate(root / "images" / "val", pt, cfg, thresholds=dict.fromkeys(CLASS_IDS, 0.001))
    assert res["n_images"] == 6
    assert set(res["per_source"]) == {"Japan", "Czech", "China_MotorBike"}
    assert all(v["n_images"] == 2 for v in res["per_source"].values())
    assert set(res["per_class"]) == set(CLASS_IDS)
    for k in ("f1", "precision", "recall", "tp", "fp", "fn", "map50"):
        assert k in res
    assert res["fp"] > 0  # the untrained head fires everywhere at conf 0.001
    assert res["fp"] + res["tp"] <= 5 * 6  # at most 5 per image
    assert 0.0 <= res["f1"] <= 1.0
    out = tmp_path / "eval.json"
    write_eval_json(res, out)
    assert json.loads(out.read_text())["n_images"] == 6
    from rich.console import Console

    con = Console(record=True, width=120)
    con.print(format_table(res))
    text = con.export_text()
    assert "D40" in text and "Japan" in text


def test_default_eval_json_is_named_after_what_was_evaluated(tmp_path):
    """`patrol eval` without --out: a data.yaml's split, an images folder and another data set each get their own
    file in the current folder (a data.yaml's val split and any folder named val were all ./eval-val.json)."""
    from detector.evaluate import default_eval_json

    for d in ("city/images/val", "city/flat/val", "other/images/val"):
        (tmp_path / d).mkdir(parents=True)
    for y in ("city/data.yaml", "city/japan.yaml", "other/data.yaml"):
        (tmp_path / y).write_text("train: images/val\nval: images/val\nnames: [D00, D10, D20, D40]\n")
    got = {
        "city/data.yaml": default_eval_json(tmp_path / "city" / "data.yaml", "val"),
        "city/data.yaml test": default_eval_json(tmp_path / "city" / "data.yaml", "test"),
        "city/japan.yaml": default_eval_json(tmp_path / "city" / "japan.yaml", "val"),
        "other/data.yaml": default_eval_json(tmp_path / "other" / "data.yaml", "val"),
        "city/images/val": default_eval_json(tmp_path / "city" / "images" / "val", "val"),
        "city/flat/val": default_eval_json(tmp_path / "city" / "flat" / "val", "val"),
        "other/images/val": default_eval_json(tmp_path / "other" / "images" / "val", "val"),
        "city/data.yaml Japan_": default_eval_json(tmp_path / "city" / "data.yaml", "val", ["Japan_"]),
    }
    assert {k: str(v) for k, v in got.items()} == {
        "city/data.yaml": "eval-city-val.json", "city/data.yaml test": "eval-city-test.json",
        "city/japan.yaml": "eval-japan-val.json", "other/data.yaml": "eval-other-val.json",
        "city/images/val": "eval-city-val-folder.json", "city/flat/val": "eval-flat-val-folder.json",
        "other/images/val": "eval-other-val-folder.json", "city/data.yaml Japan_": "eval-city-val-Japan.json"}
    assert len(set(got.values())) == len(got)


def _windows_set(root: Path, n: int = 8, images: str = "images", labels: str = "labels",
                 label_name=lambda stem, i: f"{stem}.txt") -> tuple[Path, int]:
    """``n`` real Japan_ val photos with their labels, the folders and label files named as given (as a data set made
    on Windows names them); returns the data.yaml and the number of labelled boxes."""
    src = need(RDD)
    labs = [p for p in sorted((src / "labels" / "val").glob("Japan_*.txt")) if p.stat().st_size > 0][:n]
    (root / images / "val").mkdir(parents=True)
    (root / labels / "val").mkdir(parents=True)
    boxes = 0
    for i, lab in enumerate(labs):
        shutil.copy(src / "images" / "val" / (lab.stem + ".jpg"), root / images / "val" / (lab.stem + ".jpg"))
        shutil.copy(lab, root / labels / "val" / label_name(lab.stem, i))
        boxes += len([ln for ln in lab.read_text().splitlines() if ln.split()])
    y = root / "data.yaml"
    y.write_text(f"train: {images}/val\nval: {images}/val\nnames: [D00, D10, D20, D40]\n")
    return y, boxes


@pytest.mark.parametrize("images, labels, label_name", [
    ("Images", "Labels", lambda stem, i: f"{stem}.TXT"),  # Windows Explorer's folders, a tool's .TXT
    ("IMAGES", "labels", lambda stem, i: f"{stem}.txt"),
    ("images", "labels", lambda stem, i: f"{stem}.TXT" if i % 2 else f"{stem.upper()}.txt"),  # half of them
])
def test_labels_are_found_whatever_their_case(tmp_path, images, labels, label_name):
    """On Linux `Images/`+`Labels/`, `.TXT` label files (a data set made on Windows) were not found: eval and tune
    refused the split, or — where only some label files differ in case — scored those photos as background (no
    damage), silently. Each label file is found now, and eval and tune score exactly the boxes labelled."""
    from detector.evaluate import predict_split
    from detector.tune import tune

    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    y, boxes = _windows_set(tmp_path / "city", images=images, labels=labels, label_name=label_name)
    cfg = Config()
    preds = predict_split(y, DEFAULT_WEIGHTS_ONNX, cfg, "val", use_cache=False)
    assert len(preds) == 8 and all(len(ip.gt_cls) for ip in preds)
    assert sum(len(ip.gt_cls) for ip in preds) == boxes
    res = evaluate(y, DEFAULT_WEIGHTS_ONNX, cfg, preds=preds)
    assert res["tp"] + res["fn"] == boxes
    config = tmp_path / "city.yaml"
    shutil.copy(ROOT / "configs" / "default.yaml", config)
    got = tune(y, DEFAULT_WEIGHTS_ONNX, config, cfg=cfg, preds=None)
    assert sum(got["n_boxes"].values()) == boxes


def test_label_folders_or_files_differing_only_in_case_are_refused(tmp_path):
    """`labels/` and `Labels/` (or `a.txt` and `a.TXT`) side by side: which one is the photos' is not clear, and
    Windows cannot hold both; one error naming both rather than a guess."""
    from detector.evaluate import label_path_for, resolve_split

    y, _ = _windows_set(tmp_path / "a", n=2, images="Images", labels="Labels")
    (tmp_path / "a" / "labels" / "val").mkdir(parents=True)
    img = resolve_split(y, "val")[0][0]
    with pytest.raises(InputError, match="label folders Labels and labels differ only in case") as e:
        label_path_for(img)
    assert str(tmp_path / "a") in str(e.value)
    y, _ = _windows_set(tmp_path / "b", n=2)
    img = resolve_split(y, "val")[0][0]
    lab = label_path_for(img)
    shutil.copy(lab, lab.with_suffix(".TXT"))
    with pytest.raises(InputError, match=f"label files {img.stem}.TXT and {img.stem}.txt differ only in case"):
        label_path_for(img)


def test_a_split_without_any_label_file_says_where_they_were_looked_for(tmp_path):
    """Photos with no label file anywhere (labels in a folder of another name, or not copied): one error saying how
    many photos, where the labels were expected and for which photo, not a score of background photos."""
    y, _ = _windows_set(tmp_path / "city", images="Images", labels="annotations")
    with pytest.raises(InputError) as e:
        predict_split(y, DEFAULT_WEIGHTS_ONNX, Config(), "val", use_cache=False)
    msg = str(e.value)
    assert msg.startswith(f"{y}: val: 0 of 8 photos have a label file: expected labels in "
                          f"{tmp_path / 'city' / 'Images' / 'val'}, e.g. Japan_"), msg


def test_split_paths_written_on_windows_are_found_whatever_their_case(tmp_path, capsys):
    """A data.yaml written on Windows names `Images/Val` (and a list file `Val.TXT` of `Images/Val/…` lines) for
    the folder `images/val` copied to Linux: label files were found whatever their case, the split itself was "val
    folder not found". Now eval, tune and train read the folder or list file whose name differs only in case, with
    a note naming the path used. Real photos and labels."""
    from detector.evaluate import resolve_split
    from detector.train import check_data_yaml

    y, boxes = _windows_set(tmp_path / "city", n=4)
    y.write_text("train: Images/Val\nval: Images/Val\nnames: [D00, D10, D20, D40]\n")
    imgs = resolve_split(y, "val")[0]
    assert [p.parent for p in imgs] == [tmp_path / "city" / "images" / "val"] * 4
    err = capsys.readouterr().err
    assert f"{y}: val: Images/Val is not there as written; read {tmp_path / 'city' / 'images' / 'val'}" in err, err
    plan = check_data_yaml(y)
    assert len(plan.splits["val"]) == 4
    preds = predict_split(y, DEFAULT_WEIGHTS_ONNX, Config(), "val", use_cache=False)
    assert sum(len(ip.gt_cls) for ip in preds) == boxes
    # a list file
    (tmp_path / "city" / "val.txt").write_text("".join(f"Images/Val/{p.name}\n" for p in imgs))
    y.write_text("train: Val.TXT\nval: Val.TXT\nnames: [D00, D10, D20, D40]\n")
    assert resolve_split(y, "val")[0] == imgs
    err = capsys.readouterr().err
    assert f"read {tmp_path / 'city' / 'val.txt'}" in err and "4 image paths are not there as written" in err, err
    # path: too; and two folders differing only in case are refused, naming them
    y.write_text("path: ../City\ntrain: images/val\nval: images/val\nnames: [D00, D10, D20, D40]\n")
    assert resolve_split(y, "val")[0] == imgs
    assert f"path: ../City is not there as written; read {tmp_path / 'city'}" in capsys.readouterr().err
    (tmp_path / "city" / "IMAGES" / "val").mkdir(parents=True)
    y.write_text("train: Images/Val\nval: Images/Val\nnames: [D00, D10, D20, D40]\n")
    with pytest.raises(InputError, match="folders or files IMAGES and images differ only in case"):
        resolve_split(y, "val")


def test_a_split_partly_labelled_is_said_once(tmp_path, capsys):
    """Some photos of a split with label files, others without (labels half copied): eval scored the others as
    photos without damage, every detection on them a false positive, silently. YOLO's rule (no label file: no
    objects) stays, and one warning says how many photos lack a label file, with one of them."""
    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    y, _ = _windows_set(tmp_path / "city", n=8)
    labs = sorted((tmp_path / "city" / "labels" / "val").glob("*.txt"))
    for lab in labs[5:]:
        lab.unlink()
    for _ in range(2):
        preds = predict_split(y, DEFAULT_WEIGHTS_ONNX, Config(), "val", use_cache=False)
    assert len(preds) == 8 and sum(not len(ip.gt_cls) for ip in preds) == 3
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and (f"{y}: val: 3 of 8 photos have no label file, e.g. {labs[5]} for "
                                           f"{tmp_path / 'city' / 'images' / 'val' / (labs[5].stem + '.jpg')}") in err, err
