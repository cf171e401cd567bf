"""`patrol eval`: the CRDDC/ORDDC score of a model on a labelled YOLO split, plus mAP50.

Metric (as the Road Damage Detection challenges): per image at most 5 highest-confidence predictions (after the
per-class thresholds); greedy matching in descending confidence to ground truth of the *same* class with
IoU > 0.5, each ground-truth box matched at most once -> TP / FP / FN; F1 = 2PR / (P + R) micro-averaged over
all images. Also per class, per image source (file-name prefix) and mAP50 (101-point interpolated AP per class
over all predictions with confidence >= 0.001, no 5-box cap).

Predictions are computed once (:func:`predict_split`, cached in-process) so ``tune`` can re-score them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import yaml

from . import CLASS_IDS
from .config import Config
from .errors import InputError, UsageError
from .textio import TextEncodingError, decode_text

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
SOURCES = ("Japan_", "Czech_", "China_MotorBike_")
EVAL_CONF = 0.001  # predictions kept for scoring/tuning/mAP
EVAL_MAX_DET = 100
MAX_BOXES = 5
IOU_THR = 0.5


@dataclass
class ImagePreds:
    """All predictions (conf >= 0.001, sorted by descending confidence) and the ground truth of one image."""

    name: str
    source: str
    width: int
    height: int
    pred_xyxy: np.ndarray  # (k,4) float
    pred_conf: np.ndarray  # (k,)
    pred_cls: np.ndarray  # (k,) object D00..
    gt_xyxy: np.ndarray  # (g,4)
    gt_cls: np.ndarray  # (g,) object
    extra: dict[str, Any] = field(default_factory=dict)
    path: str = ""  # the photo's file, as predict_split read it (``patrol eval --errors`` draws on it)


class SplitPreds(list):
    """The ImagePreds of a split, and ``skipped``: the images that could not be decoded (warned, not scored)."""

    def __init__(self, preds: Iterable[ImagePreds] = (), skipped: Iterable[str] = ()):
        super().__init__(preds)
        self.skipped: list[str] = list(skipped)  # each instance its own (a class-level [] is shared by all)


def source_of(name: str) -> str:
    """Image source from the file-name prefix: Japan, Czech, China_MotorBike or other."""
    base = Path(name).name
    for p in SOURCES:
        if base.startswith(p):
            return p.rstrip("_")
    return "other"


# ----------------------------------------------------------------------------------------------------------------
# pure metric code (numpy arrays in, counts out)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of xyxy boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def greedy_assign(pred_xyxy, pred_cls, gt_xyxy, gt_cls, iou_thr: float = IOU_THR, iou: np.ndarray | None = None) -> np.ndarray:
    """Predictions already in descending confidence -> the index of the ground-truth box each one matched, -1 where
    none (a false positive).

    Each prediction takes the unmatched ground-truth box of its own class with the highest IoU, if IoU > iou_thr.
    """
    pred_cls = np.asarray(pred_cls, dtype=object)
    gt_cls = np.asarray(gt_cls, dtype=object)
    n, g = len(pred_cls), len(gt_cls)
    gt_of = np.full(n, -1, dtype=np.int64)
    if not n or not g:
        return gt_of
    if iou is None:
        iou = box_iou(pred_xyxy, gt_xyxy)
    ok = (iou > iou_thr) & (pred_cls[:, None] == gt_cls[None, :])
    if not ok.any():
        return gt_of
    iou = np.where(ok, iou, -1.0)
    used = np.zeros(g, dtype=bool)
    for i in np.flatnonzero(ok.any(1)):
        row = np.where(used, -1.0, iou[i])
        j = int(row.argmax())
        if row[j] > iou_thr:
            used[j] = True
            gt_of[i] = j
    return gt_of


def greedy_match(pred_xyxy, pred_cls, gt_xyxy, gt_cls, iou_thr: float = IOU_THR, iou: np.ndarray | None = None) -> np.ndarray:
    """Predictions already in descending confidence -> bool TP flag per prediction (:func:`greedy_assign`)."""
    return greedy_assign(pred_xyxy, pred_cls, gt_xyxy, gt_cls, iou_thr, iou) >= 0


def _order(conf: np.ndarray) -> np.ndarray:
    return np.argsort(-np.asarray(conf, dtype=np.float64), kind="stable")


@dataclass
class Matches:
    """How one image's scored predictions met its ground truth (what :func:`match_image` counts and
    ``patrol eval --errors`` draws)."""

    kept: np.ndarray  # indices into the predictions given: the scored ones (≤ max_det), in descending confidence
    gt_of: np.ndarray  # per kept prediction: the index of the true box it matched, -1 for a false positive
    n_gt: int

    @property
    def gt_matched(self) -> np.ndarray:
        """Bool per true box: matched by a kept prediction (False: a false negative)."""
        m = np.zeros(self.n_gt, dtype=bool)
        m[self.gt_of[self.gt_of >= 0]] = True
        return m

    def counts(self, pred_cls, gt_cls, classes: Sequence[str] = CLASS_IDS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """TP, FP, FN per class (int arrays aligned with ``classes``)."""
        pc = np.asarray(pred_cls, dtype=object).reshape(-1)[self.kept]
        gt_cls = np.asarray(gt_cls, dtype=object).reshape(-1)
        tpf = self.gt_of >= 0
        cls_arr = np.asarray(classes, dtype=object)
        tp = np.array([np.sum(tpf & (pc == c)) for c in cls_arr], dtype=np.int64)
        npred = np.array([np.sum(pc == c) for c in cls_arr], dtype=np.int64)
        ngt = np.array([np.sum(gt_cls == c) for c in cls_arr], dtype=np.int64)
        return tp, npred - tp, ngt - tp


def match_boxes(pred_xyxy, pred_cls, pred_conf, gt_xyxy, gt_cls, iou_thr: float = IOU_THR,
                max_det: int | None = MAX_BOXES) -> Matches:
    """The metric's matching for one image: keeps the ``max_det`` highest-confidence predictions (thresholds must
    already be applied), matches them greedily to ground truth of the same class at IoU > ``iou_thr``."""
    pred_cls = np.asarray(pred_cls, dtype=object).reshape(-1)
    gt_cls = np.asarray(gt_cls, dtype=object).reshape(-1)
    pred_xyxy = np.asarray(pred_xyxy, dtype=np.float64).reshape(-1, 4)
    gt_xyxy = np.asarray(gt_xyxy, dtype=np.float64).reshape(-1, 4)
    order = _order(pred_conf)
    if max_det is not None:
        order = order[:max_det]
    return Matches(order, greedy_assign(pred_xyxy[order], pred_cls[order], gt_xyxy, gt_cls, iou_thr), len(gt_cls))


def match_image(pred_xyxy, pred_cls, pred_conf, gt_xyxy, gt_cls, iou_thr: float = IOU_THR, max_det: int | None = MAX_BOXES,
                classes: Sequence[str] = CLASS_IDS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TP, FP, FN per class (int arrays aligned with ``classes``) for one image (:func:`match_boxes`, counted)."""
    return match_boxes(pred_xyxy, pred_cls, pred_conf, gt_xyxy, gt_cls, iou_thr, max_det).counts(pred_cls, gt_cls, classes)


def image_matches(ip: ImagePreds, thresholds: dict[str, float], max_boxes: int = MAX_BOXES, iou_thr: float = IOU_THR) -> Matches:
    """The scored matching of one image at ``thresholds`` (what :func:`score` counts); ``kept`` indexes
    ``ip.pred_*``."""
    m = np.flatnonzero(apply_thresholds(ip.pred_conf, ip.pred_cls, thresholds))
    mt = match_boxes(ip.pred_xyxy[m], ip.pred_cls[m], ip.pred_conf[m], ip.gt_xyxy, ip.gt_cls, iou_thr, max_boxes)
    mt.kept = m[mt.kept]
    return mt


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall and F1 (0 when undefined)."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f1}


def average_precision(tp: np.ndarray, conf: np.ndarray, n_gt: int) -> float:
    """101-point interpolated AP (COCO style) from TP flags and confidences of all predictions of one class."""
    if n_gt <= 0:
        return math.nan
    if len(tp) == 0:
        return 0.0
    order = _order(conf)
    tpc = np.cumsum(np.asarray(tp, dtype=np.float64)[order])
    fpc = np.cumsum(1.0 - np.asarray(tp, dtype=np.float64)[order])
    recall = tpc / n_gt
    precision = tpc / (tpc + fpc)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]  # max precision at recall >= r
    pts = np.linspace(0.0, 1.0, 101)
    idx = np.searchsorted(recall, pts, side="left")
    q = np.where(idx < len(recall), envelope[np.minimum(idx, len(recall) - 1)], 0.0)
    return float(q.mean())


def apply_thresholds(conf: np.ndarray, cls: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """Boolean mask of predictions at or above their class threshold."""
    thr = np.array([thresholds.get(c, 1.01) for c in cls], dtype=np.float64)
    return np.asarray(conf, dtype=np.float64) >= thr


def score(preds: Sequence[ImagePreds], thresholds: dict[str, float], max_boxes: int = MAX_BOXES, iou_thr: float = IOU_THR,
          with_map: bool = True) -> dict[str, Any]:
    """The metric over cached predictions. Returns the result dict (see :func:`evaluate`)."""
    k = len(CLASS_IDS)
    tot = np.zeros((3, k), dtype=np.int64)
    by_src: dict[str, np.ndarray] = {}
    n_src: dict[str, int] = {}
    ap_tp: list[list[np.ndarray]] = [[] for _ in CLASS_IDS]
    ap_conf: list[list[np.ndarray]] = [[] for _ in CLASS_IDS]
    for ip in preds:
        c = np.stack(image_matches(ip, thresholds, max_boxes, iou_thr).counts(ip.pred_cls, ip.gt_cls))
        tot += c
        by_src[ip.source] = by_src.get(ip.source, np.zeros((3, k), dtype=np.int64)) + c
        n_src[ip.source] = n_src.get(ip.source, 0) + 1
        if with_map and len(ip.pred_conf):
            order = _order(ip.pred_conf)
            flags = greedy_match(ip.pred_xyxy[order], ip.pred_cls[order], ip.gt_xyxy, ip.gt_cls, iou_thr)
            pc = ip.pred_cls[order]
            for ci, cid in enumerate(CLASS_IDS):
                sel = pc == cid
                if sel.any():
                    ap_tp[ci].append(flags[sel])
                    ap_conf[ci].append(ip.pred_conf[order][sel])
    n_gt = {cid: int(sum(np.sum(ip.gt_cls == cid) for ip in preds)) for cid in CLASS_IDS}
    per_class: dict[str, Any] = {}
    aps = []
    for ci, cid in enumerate(CLASS_IDS):
        tp, fp, fn = (int(x) for x in tot[:, ci])
        entry: dict[str, Any] = {"tp": tp, "fp": fp, "fn": fn, "n_gt": n_gt[cid], **prf(tp, fp, fn),
                                 "threshold": float(thresholds.get(cid, math.nan))}
        if with_map:
            ap = average_precision(
                np.concatenate(ap_tp[ci]) if ap_tp[ci] else np.zeros(0, bool),
                np.concatenate(ap_conf[ci]) if ap_conf[ci] else np.zeros(0), n_gt[cid],
            )
            entry["ap50"] = None if math.isnan(ap) else ap
            if not math.isnan(ap):
                aps.append(ap)
        per_class[cid] = entry
    tp, fp, fn = (int(x) for x in tot.sum(1))
    per_source = {}
    for src in sorted(by_src, key=lambda s: (s == "other", s)):
        a, b, c = (int(x) for x in by_src[src].sum(1))
        per_source[src] = {"n_images": n_src[src], "tp": a, "fp": b, "fn": c, **prf(a, b, c)}
    out: dict[str, Any] = {
        "n_images": len(preds), "max_boxes": max_boxes, "iou": iou_thr, "tp": tp, "fp": fp, "fn": fn, **prf(tp, fp, fn),
    }
    if with_map:
        out["map50"] = float(np.mean(aps)) if aps else None
    out["thresholds"] = {c: float(thresholds[c]) for c in CLASS_IDS if c in thresholds}
    out["per_class"] = per_class
    out["per_source"] = per_source
    return out


# ----------------------------------------------------------------------------------------------------------------
# dataset


def label_path_for(img: Path, _listed: dict | None = None, _both: list | None = None) -> Path:
    """The label file of an image: a YOLO ``.txt`` as ultralytics trains it (the last ``images`` folder in the path
    becomes ``labels``, suffix ``.txt``; an image path without an ``images`` folder has its label file beside it: a
    flat folder), else a Pascal VOC ``.xml`` (:func:`voc_path_for`). A photo with both has its ``.txt`` read (what
    ultralytics itself reads; a ``.txt`` beside an ``.xml`` is most often the conversion made from it for YOLO):
    the pair is appended to ``_both`` (:func:`require_labels` says so, counted).

    Whatever the case of the folders and of the file name, as on Windows where a data set is often made:
    ``Images/val/a.JPG`` finds ``Labels/val/a.TXT`` (or ``labels/val/a.txt``) where exactly one such folder and file
    exists; two that differ only in case (``labels/`` and ``Labels/``, ``a.txt`` and ``a.TXT``) are an InputError
    naming both. A label file that is not there comes back as the path it was looked for at (a background photo).
    For many photos use :func:`label_paths_for` (each folder listed once)."""
    listed = {} if _listed is None else _listed
    txt = _yolo_path_for(img, listed)
    xml = voc_path_for(img, listed)
    if xml is None:
        return txt
    if txt.is_file():
        if _both is not None:
            _both.append((txt, xml))
        return txt
    return xml


def _yolo_path_for(img: Path, listed: dict) -> Path:
    """The YOLO label file of an image (:func:`label_path_for`), or where it was looked for."""
    parts = list(img.parts)
    # the images folder: the last one whose name is images in any case and has a labels folder beside it, else
    # the last one spelt images (ultralytics' own rule: its labels/ path is then reported as missing), else none
    fallback = None
    for i in range(len(parts) - 2, -1, -1):
        if parts[i].lower() != "images":
            continue
        parent = Path(*parts[:i]) if i else Path(".")
        found = _case_match(parent, "labels", True, listed)
        if found is not None:
            return _resolve_below(parent / found, parts[i + 1:-1], img, listed)
        if fallback is None and parts[i] == "images":
            fallback = i
    if fallback is not None:
        return Path(*parts[:fallback], "labels", *parts[fallback + 1:]).with_suffix(".txt")
    return _resolve_below(img.parent, [], img, listed)


class LabelPaths(list):
    """:func:`label_path_for` of each photo of a split, and ``both``: the (.txt read, .xml not read) pairs of the
    photos that have both."""

    def __init__(self, paths: Iterable[Path] = (), both: Iterable[tuple[Path, Path]] = ()):
        super().__init__(paths)
        self.both: list[tuple[Path, Path]] = list(both)  # each instance its own


def label_paths_for(images: Sequence[Path]) -> LabelPaths:
    """:func:`label_path_for` of each image, each folder listed once."""
    listed: dict = {}
    both: list = []
    return LabelPaths([label_path_for(p, listed, both) for p in images], both)


def voc_path_for(img: Path, _listed: dict | None = None) -> Path | None:
    """The Pascal VOC label file ``<stem>.xml`` of an image, None where it has none. Looked for, below the last
    ``images`` or ``JPEGImages`` folder of the path that has one beside it (the photo's subfolders kept), in
    ``labels/`` (as a YOLO label), ``annotations/xmls/`` (RDD2020: ``Japan/images/a.jpg`` →
    ``Japan/annotations/xmls/a.xml``) or ``Annotations/`` (Pascal VOC: ``JPEGImages/a.jpg`` → ``Annotations/a.xml``),
    else beside the photo (where LabelImg saves it by default); every name whatever its case."""
    listed = {} if _listed is None else _listed
    parts = list(img.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i].lower() not in ("images", "jpegimages"):
            continue
        parent = Path(*parts[:i]) if i else Path(".")
        for top in ("labels", "annotations"):
            found = _case_match(parent, top, True, listed)
            if found is None:
                continue
            folder = parent / found
            if top == "annotations":
                xmls = _case_match(folder, "xmls", True, listed)
                folder = folder / xmls if xmls is not None else folder
            xml = _resolve_below(folder, parts[i + 1:-1], img, listed, ".xml")
            if xml.is_file():
                return xml
    xml = _resolve_below(img.parent, [], img, listed, ".xml")
    return xml if xml.is_file() else None


def _resolve_below(folder: Path, subfolders: Sequence[str], img: Path, listed: dict, suffix: str = ".txt") -> Path:
    """``folder/<subfolders…>/<img stem><suffix>``, each name matched whatever its case."""
    for sub in subfolders:
        found = _case_match(folder, sub, True, listed)
        folder = folder / (found if found is not None else sub)
    name = img.stem + suffix
    found = _case_match(folder, name, False, listed)
    return folder / (found if found is not None else name)


def _case_match(parent: Path, name: str, want_dir: bool | None, listed: dict, what: str | None = None) -> str | None:
    """The one entry of ``parent`` named ``name`` in any case (a folder if ``want_dir``, else a file), None when
    there is none; two (``labels`` and ``Labels``) are an InputError naming them. ``listed`` keeps each folder's
    listing (lower-case name -> names), so a split of thousands of photos costs one listing, not one per photo.
    ``want_dir`` None: a folder or a file; ``what``: how the error names them (default: label folders / files)."""
    key = str(parent)
    by_lower = listed.get(key)
    if by_lower is None:
        by_lower = {}
        try:
            with os.scandir(parent) as it:
                for e in it:
                    by_lower.setdefault(e.name.lower(), []).append(e.name)
        except OSError:  # not there (or unreadable): nothing found in it
            pass
        listed[key] = by_lower
    kind = Path.exists if want_dir is None else Path.is_dir if want_dir else Path.is_file
    found = sorted(n for n in by_lower.get(name.lower(), ()) if kind(parent / n))
    if len(found) > 1:
        if what is None:
            what = "label folders" if want_dir else "label files"
            whose = "belongs to the photos"
        else:
            whose = "is meant"
        raise InputError(f"{what} {' and '.join(found)} differ only in case, so which one {whose} is "
                         "not clear (Windows cannot even hold both): keep one", parent)
    return found[0] if found else None


def require_labels(images: Sequence[Path], labels: Sequence[Path], source: str | Path, split: str | None,
                   names: Sequence[str] | None = None) -> int:
    """How many of ``images`` have a label file (``labels``, from :func:`label_paths_for`); none is an InputError
    saying where they were looked for: scored or trained on, every photo would count as background (no damage).
    A split whose photos are labelled in both formats (YOLO .txt and Pascal VOC .xml), or some of whose photos have
    both, gets one note counting them; YOLO .txt labels where the data yaml names no classes (``names`` from
    :func:`dataset_names` with ``implied`` set: only VOC labels, which name their classes, can do without) are an
    InputError."""
    found = [lp for lp in labels if lp.is_file()]
    n = len(found)
    if n == 0 and images:
        where = labels[0].parent
        others = len({lp.parent for lp in labels}) - 1
        raise InputError(f"0 of {len(images)} photos have a label file: "
                         f"expected labels in {where}{f' (and {others} more folders)' if others else ''}, "
                         f"e.g. {labels[0].name} for {images[0].name} (labels/ beside images/: images/val/a.jpg → "
                         "labels/val/a.txt, or a.txt beside a.jpg in a flat folder; or Pascal VOC a.xml there, in "
                         "annotations/xmls/ or Annotations/)",
                         source, *([split] if split else []))
    where = f"{source}: {f'{split}: ' if split else ''}"
    n_xml = sum(1 for lp in found if lp.suffix.lower() == ".xml")
    stray = _unread_yolo(images, labels) if n_xml else []
    if stray:
        txt, xml = stray[0]
        k = len(stray)
        raise InputError(f"{k} {f'{split} ' if split else ''}photo{'s have' if k > 1 else ' has'} a YOLO .txt label "
                         f"that is not read beside the Pascal VOC .xml that is (e.g. {txt}, not read; {xml}, read): LabelImg saved "
                         "them in its YOLO format, so their .xml may still hold boxes nobody checked (label-set's "
                         "pre-labels). In LabelImg set the format to PascalVOC (the button under Save), open and save "
                         "those photos again, then delete the .txt files and classes.txt",
                         source, *([split] if split else []))
    if getattr(names, "implied", False) and n_xml < n:
        txt = next(lp for lp in found if lp.suffix.lower() != ".xml")
        raise InputError(f"missing, but {n - n_xml} {f'{split} ' if split else ''}photos have YOLO .txt labels "
                         f"(e.g. {txt}), "
                         "whose class numbers mean the names in order: add names: [D00, D10, D20, D40] in your label "
                         "files' order (only Pascal VOC .xml labels, which name their classes, can do without)",
                         source, "names")
    both = getattr(labels, "both", [])
    if both or 0 < n_xml < n:
        mixed = f"labels in two formats: {n - n_xml} YOLO .txt, {n_xml} Pascal VOC .xml" if n_xml else ""
        dup = (f"{len(both)} photos have both a YOLO .txt and a Pascal VOC .xml label file: the .txt is read, not "
               f"the .xml (e.g. {both[0][0]}, not {both[0][1]}); remove the one you do not mean") if both else ""
        _note_once(where + "; ".join(m for m in (mixed, dup) if m))
    if n < len(images):
        # YOLO's rule: a photo without a label file shows no damage (a background photo), so it is not refused; but
        # a split only partly labelled is often labels not copied, and every detection on those photos would count
        # as a false positive (eval, tune) or be trained as background: said once, with an example
        k = next(i for i, lp in enumerate(labels) if not lp.is_file())
        _warn_once(f"{source}: {f'{split}: ' if split else ''}{len(images) - n} of {len(images)} photos have no label "
                   f"file, e.g. {labels[k]} for {images[k]}: they count as photos without damage (YOLO's rule); "
                   "if their labels were not copied, copy them")
    return n


def _unread_yolo(images: Sequence[Path], labels: Sequence[Path]) -> list[tuple[Path, Path]]:
    """(.txt, .xml) of each photo labelled by a Pascal VOC ``.xml`` that also has a YOLO ``<stem>.txt`` which is not
    read, beside that ``.xml`` or beside the photo: where LabelImg's YOLO format saves (its save folder, by default
    the photo's). A labeller who switched LabelImg to YOLO (its other format) leaves the ``.xml`` as it was: the
    pre-labels of ``patrol label-set``, unchecked, would be read in place of the boxes saved."""
    listed: dict = {}
    out = []
    for img, lp in zip(images, labels):
        if lp.suffix.lower() != ".xml" or not lp.is_file():
            continue
        for folder in dict.fromkeys((lp.parent, img.parent)):
            name = _case_match(folder, lp.stem + ".txt", False, listed)
            if name is not None:
                out.append((folder / name, lp))
                break
    return out


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


_NOTED: set[str] = set()  # notes said once per process (resolve_split runs for each split)


def _note_once(msg: str) -> None:
    if msg not in _NOTED:
        _NOTED.add(msg)
        print(f"note: {msg}", file=sys.stderr)


def _warn_once(msg: str) -> None:
    if msg not in _NOTED:
        _NOTED.add(msg)
        print(f"warning: {msg}", file=sys.stderr)


def _case_path(p: Path, listed: dict | None = None) -> Path | None:
    """``p``, which is not there, found with each name matched whatever its case (a data.yaml written on Windows
    names ``Images/Val`` for the folder ``images/val`` copied to Linux); None where no such path exists. Two
    names differing only in case are an InputError naming them."""
    listed = {} if listed is None else listed
    cur = Path(p.anchor) if p.is_absolute() else Path(".")
    parts = p.parts[1:] if p.is_absolute() else p.parts
    for i, part in enumerate(parts):
        if part in (".", "..") or (cur / part).exists():
            cur = cur / part
            continue
        found = _case_match(cur, part, True if i < len(parts) - 1 else None, listed, "folders or files")
        if found is None:
            return None
        cur = cur / found
    return cur


def read_text_file(path: Path, what: str = "data yaml") -> str:
    """A hand-edited text file of a dataset (data.yaml, a list file) by :mod:`detector.textio`'s rule: UTF-8 with
    or without BOM, UTF-16 with a BOM (Notepad's 'Unicode'), else Shift_JIS (cp932: what Notepad on a Japanese
    Windows saves as 'ANSI') with a note; else an InputError saying to save it as UTF-8."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read {what}: {e.strerror or type(e).__name__}", path) from None
    try:
        text, codec = decode_text(raw)
    except TextEncodingError:
        raise InputError(f"{what} is neither UTF-8 nor Shift_JIS text: save it as UTF-8", path) from None
    if codec == "cp932":
        _note_once(f"{path}: read as Shift_JIS (cp932), not UTF-8; saving it as UTF-8 avoids this guess")
    return text


def read_data_yaml(path: Path) -> dict:
    """A data.yaml as a mapping (its text as :func:`read_text_file` reads it); an InputError naming it else."""
    try:
        d = yaml.safe_load(read_text_file(path))
    except yaml.YAMLError as e:
        raise InputError(f"cannot read data yaml: {' '.join(str(e).split())}", path) from None
    if not isinstance(d, dict):
        raise InputError("not a YOLO data yaml (a mapping with path, train, val, names)", path)
    return d


def _windows_abs(s: str) -> bool:
    """``D:\\data`` or ``\\\\server\\share``: an absolute Windows path (not one on a POSIX system)."""
    return os.sep == "/" and bool(PureWindowsPath(s).drive)


def _data_path(s: str, base: Path) -> Path:
    """A path written in a data.yaml (or its list file) as a Path here: backslashes are separators (a data.yaml
    written on Windows: ``images\\train``) unless a file of that literal name exists; relative to ``base``."""
    p = Path(s)
    if not p.is_absolute():
        p = base / p
    if os.sep == "/" and "\\" in s and not p.exists():
        q = Path(s.replace("\\", "/"))
        p = q if q.is_absolute() else base / q
    return p


def _data_base(d: dict, source: Path) -> tuple[Path | None, str | None]:
    """The folder a data.yaml's split paths are relative to: its ``path:`` (relative to the yaml), or the yaml's
    folder. ``(None, raw)`` when ``path:`` names a folder that is not there (a Windows drive on this computer,
    the folder of the computer that wrote the yaml): :func:`_split_path` then looks beside the yaml."""
    raw = d.get("path")
    if raw is None or str(raw).strip() in ("", "."):
        return source.parent.resolve(), None
    raw = str(raw).strip()
    base = None if _windows_abs(raw) else _data_path(raw, source.parent)
    if base is not None and not base.exists():
        q = _case_path(base)
        if q is not None and q.is_dir():
            _note_once(f"{source}: path: {raw} is not there as written; read {q}, whose name differs only in case")
            base = q
    if base is not None and base.is_dir():
        return base.resolve(), None
    return None, raw


def _split_path(entry: str, base: Path | None, raw_base: str | None, source: Path, split: str) -> tuple[Path, Path]:
    """A split's folder or list file, and the folder its list file's lines are relative to; an InputError saying
    what to write when it is not found."""
    if base is not None:
        p = _data_path(entry, base)
        if p.exists():
            return p, base
        q = _case_path(p)
        if q is not None:
            _note_once(f"{source}: {split}: {entry} is not there as written; read {q}, whose name differs only in case "
                       f"(write {split}: as the folder is named, for Linux)")
            return q, base
        if _windows_abs(entry):
            raise InputError(f"{split} folder not found: {entry} is a path on a Windows drive; write it relative to "
                             f"the data yaml, e.g. {split}: images/{split}", source, split)
        raise InputError(f"{split} folder not found: {p}", source, split)
    here = source.parent.resolve()
    p = _data_path(entry, here)
    if not _windows_abs(entry) and not p.exists():
        p = _case_path(p) or p
    if not _windows_abs(entry) and p.exists():
        _note_once(f"{source}: path: {raw_base} is not a folder on this computer; the splits were found beside the "
                   f"data yaml and are read from {here} (leave path: out, or set it to where the data set is now)")
        return p, here
    raise InputError(f"{raw_base} is not a folder on this computer (written on another one?): set path: to "
                     "the data set's folder here, relative to the data yaml or absolute, or leave it out for the data "
                     "yaml's own folder", source, "path")


def resolve_split(source: str | Path, split: str = "val") -> tuple[list[Path], list[str]]:
    """Images of ``split`` and the dataset's class names (index order) from a data.yaml or an images folder."""
    source = Path(source)
    if source.is_dir():
        images = _list_images(source)
        parts = {q for p in images for q in p.relative_to(source).parts[:-1]}
        if {"train", "val"} <= parts:
            raise InputError("holds both train and val images (a dataset root?): pass its data.yaml, or the images "
                             "folder of one split such as images/val", source)
        names = list(CLASS_IDS)
    elif source.is_file():
        d = read_data_yaml(source)
        if not d.get(split):
            avail = [s for s in ("train", "val", "test") if d.get(s)]
            raise InputError(f"no {split!r} split in the data yaml (has: {', '.join(avail) or 'none'})", source, split)
        base, raw_base = _data_base(d, source)
        entries = d[split] if isinstance(d[split], list) else [d[split]]
        images = []
        for e in entries:
            p, rel = _split_path(str(e), base, raw_base, source, split)
            if p.is_dir():
                images += _list_images(p)
            elif p.suffix.lower() == ".txt":  # a list file of image paths, one a line (relative to path:)
                listed: dict = {}
                cased = []
                for line in read_text_file(p, "list file").splitlines():
                    line = line.strip()
                    if line:
                        img = _data_path(line, rel)
                        if not img.exists():
                            q = _case_path(img, listed)
                            if q is not None:
                                cased.append((line, q))
                                img = q
                        images.append(img)
                if cased:
                    _note_once(f"{p}: {len(cased)} image paths are not there as written and were read with names "
                               f"that differ only in case, e.g. {cased[0][0]} as {cased[0][1]}")
            else:
                raise InputError(f"{split}: {p} is neither a folder of images nor a .txt list of them", source, split)
        names = dataset_names(d, source)
    else:
        raise InputError("not found (expected a data.yaml or an images folder)", source)
    if not images:
        raise InputError(f"no images in the {split!r} split", source)
    return images, names


class ClassIds(list):
    """A dataset's classes as our ids (index-aligned), and ``written``: the names as its data.yaml writes them
    (縦ひび割れ …), for messages the user can match with their own file."""

    def __init__(self, ids: Iterable[str] = (), written: Iterable[str] = (), implied: bool = False):
        super().__init__(ids)
        self.written: list[str] = list(written)  # each instance its own (a class-level [] is shared by all)
        self.implied = implied  # no names: in the data yaml: the model's own, for Pascal VOC labels only


def dataset_names(d: dict, source: str | Path) -> ClassIds:
    """A data.yaml's ``names`` (a list, or an index -> name mapping) as our class ids, index-aligned. Without
    ``names:`` the model's own classes, ``implied``: Pascal VOC labels name their classes, YOLO .txt labels are
    then refused (:func:`require_labels`)."""
    raw = d.get("names")
    if raw is None:
        return ClassIds(CLASS_IDS, CLASS_IDS, implied=True)
    if isinstance(raw, dict):
        names = [str(raw[i]) for i in sorted(raw)]
    elif isinstance(raw, list):
        names = [str(n) for n in raw]
    else:
        raise InputError("data yaml has no class names", source, "names")
    return ClassIds(dataset_class_ids(names, source), [" ".join(n.split()) for n in names])


def dataset_class_ids(names: Sequence[str], source: str | Path) -> list[str]:
    """A data.yaml's class names (index order) as our class ids, index-aligned: the ids themselves, or the
    English or Japanese names of configs/default.yaml, in any order; anything else is an InputError."""
    from .config import load_config
    from .errors import ModelError
    from .infer import map_class_names

    try:
        return map_class_names(list(names), load_config(None), source)
    except ModelError as e:
        raise InputError(e.reason.replace("model", "dataset"), source, "names") from None


def filter_prefixes(images: list[Path], prefixes: Sequence[str] | None, source: str | Path) -> list[Path]:
    """Images whose file name starts with one of ``prefixes`` (all of them when none are given)."""
    if not prefixes:
        return images
    kept = [p for p in images if p.name.startswith(tuple(prefixes))]
    if not kept:  # the option's value is wrong (a typo, another data set's source), not the data: exit 2
        raise UsageError(f"no image name starts with {' or '.join(map(repr, prefixes))} "
                         f"(e.g. {images[0].name})", source, "--prefix")
    return kept


def read_labels(path: Path, names: Sequence[str], width: int, height: int,
                notes: VocNotes | None = None) -> tuple[np.ndarray, np.ndarray]:
    """YOLO label file -> xyxy pixel boxes, class ids. A missing file is a background image. A ``.xml`` is read as
    Pascal VOC (:func:`read_voc_labels`: its classes by name, ``names`` unused; ``width`` and ``height`` must then
    be the photo's real size, what ``notes`` collects is said by its ``report``).

    Each line is ``class cx cy w h`` (normalised 0..1) or a polygon ``class x1 y1 x2 y2 x3 y3 …`` (its bounding
    box, as ultralytics trains it). Anything else — a class index outside the data yaml's names, too few or too many
    numbers, a coordinate outside 0..1 — is an InputError naming the file and the line: ultralytics would drop the
    whole image, with all its other boxes, for it. The error names the classes as the data yaml writes them
    (``names.written`` of a :class:`ClassIds`)."""
    if path.suffix.lower() == ".xml":
        return read_voc_labels(path, width, height, notes)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (Notepad) would read as part of the first number
    except FileNotFoundError:
        return np.zeros((0, 4)), np.array([], dtype=object)
    except UnicodeDecodeError:
        raise InputError("not a text label file (UTF-8 'class cx cy w h' lines)", path) from None
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", path) from None
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        f = line.split()
        if not f:
            continue
        if len(f) != 5 and (len(f) < 7 or len(f) % 2 == 0):
            raise InputError(f"line {i}: expected 'class cx cy w h' (or a polygon 'class x1 y1 x2 y2 x3 y3 …'), "
                             f"got {len(f)} values: {line.strip()[:60]!r}", path)
        try:
            cf = float(f[0])
            v = np.array([float(x) for x in f[1:]])
        except ValueError:
            raise InputError(f"line {i}: not numbers: {line.strip()[:60]!r}", path) from None
        c = int(cf) if cf.is_integer() else -1
        if not 0 <= c < len(names):
            shown = getattr(names, "written", None) or names
            raise InputError(f"line {i}: class {f[0]} is not one of the data yaml's {len(names)} classes "
                             f"(0..{len(names) - 1}: {', '.join(shown)})", path)
        if not np.all(np.isfinite(v)) or v.min() < 0 or v.max() > 1:
            raise InputError(f"line {i}: coordinates must be normalised to 0..1 (YOLO format), got "
                             f"{line.strip()[:60]!r}", path)
        if len(f) == 5:
            rows.append((c, *v))
        else:  # polygon: its bounding box
            xs, ys = v[0::2], v[1::2]
            rows.append((c, (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2, xs.max() - xs.min(), ys.max() - ys.min()))
    if not rows:
        return np.zeros((0, 4)), np.array([], dtype=object)
    a = np.array(rows, dtype=np.float64)
    xyxy = np.stack([(a[:, 1] - a[:, 3] / 2) * width, (a[:, 2] - a[:, 4] / 2) * height,
                     (a[:, 1] + a[:, 3] / 2) * width, (a[:, 2] + a[:, 4] / 2) * height], 1)
    return xyxy, np.array([names[int(c)] for c in a[:, 0]], dtype=object)


class VocNotes:
    """What reading a split's Pascal VOC label files left out or corrected, said once by :meth:`report`: boxes of
    classes the model does not detect (RDD2020's D01, D43, D44, Repair …: the CRDDC scores only D00–D40), files
    whose ``<size>`` is not their photo's, boxes with no area left after clipping to the photo."""

    def __init__(self) -> None:
        from collections import Counter

        self.left_out: Counter = Counter()
        self.resized: list[tuple[Path, str, str]] = []  # (file, its <size>, the photo's)
        self.degenerate: dict[Path, int] = {}

    def report(self, where: str) -> None:
        if self.left_out:
            by = ", ".join(f"{c} ({n})" for c, n in self.left_out.most_common())
            print(f"note: {where}: left out {sum(self.left_out.values())} boxes of classes the model does not "
                  f"detect: {by}", file=sys.stderr)
        if self.resized:
            f, was, real = self.resized[0]
            print(f"note: {where}: {len(self.resized)} Pascal VOC files' <size> is missing, 0 or not their photo's: "
                  f"the photo's own size is used (e.g. {f}: <size> {was}, photo {real})", file=sys.stderr)
        if self.degenerate:
            files = [f"{f} ({n})" if n > 1 else str(f) for f, n in self.degenerate.items()]
            print(f"warning: {where}: dropped {sum(self.degenerate.values())} Pascal VOC boxes with no area left "
                  f"inside the photo (xmax <= xmin or ymax <= ymin after clipping): {', '.join(files[:5])}"
                  + (f" and {len(files) - 5} more files" if len(files) > 5 else ""), file=sys.stderr)


_VOC_BOX = ("xmin", "ymin", "xmax", "ymax")


def _voc_classes() -> dict[str, str]:
    """An object's ``<name>`` (stripped, lower case) -> our class id: the ids (D00 …) and configs/default.yaml's
    English and Japanese names, as a data.yaml's ``names`` accepts them."""
    from .config import load_config
    from .infer import class_names_lookup

    global _VOC_NAMES
    if _VOC_NAMES is None:
        by = {k.lower(): v for k, v in class_names_lookup(load_config(None)).items()}
        _VOC_NAMES = {**by, **{c.lower(): c for c in CLASS_IDS}}
    return _VOC_NAMES


_VOC_NAMES: dict[str, str] | None = None


def read_voc_labels(path: Path, width: int, height: int, notes: VocNotes | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """A Pascal VOC annotation (as LabelImg saves it, and RDD2020's ``annotations/xmls/``) -> xyxy pixel boxes of
    the photo ``width`` x ``height`` and class ids. A missing file is a background image.

    Each ``<object>``'s ``<name>`` is a class id or its English or Japanese name (:func:`_voc_classes`); objects of
    other classes are left out, counted in ``notes``. ``<bndbox>``'s xmin/ymin/xmax/ymax are 1-based pixel numbers
    (the box covers pixels xmin..xmax), so the box is xmin - 1 .. xmax, clipped to the photo; one with no area left
    is dropped (counted in ``notes``, naming the file). The photo's own size is used: ``<size>`` is only checked
    (RDD2020 has files whose size is 0 or another photo's; counted in ``notes``). ``<difficult>1</difficult>`` boxes
    are kept, as ultralytics' own VOC conversion keeps them (RDD2020 has none). An InputError, naming the file, as a
    bad YOLO label line: not XML, entity declarations, a root other than ``<annotation>``, an object without a
    name or with a bndbox number missing or not a number.

    Python's ElementTree (expat) fetches no external entity but expands internal ones; expat 2.4.1 and later stop
    a "billion laughs" expansion, older ones (a Python built with its system's expat) do not. A labelling tool
    writes no ``<!DOCTYPE … [<!ENTITY …>]>``, so a file declaring entities is refused before it is parsed."""
    import xml.etree.ElementTree as ET

    empty = np.zeros((0, 4)), np.array([], dtype=object)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return empty
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", path) from None
    if b"<!ENTITY" in data:
        raise InputError("XML entity declarations (<!ENTITY …>) are not read: not a Pascal VOC label file as a "
                         "labelling tool writes it", path)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise InputError(f"not a Pascal VOC label file: not XML ({e})", path) from None
    if root.tag != "annotation":
        raise InputError(f"not a Pascal VOC label file: the XML root is <{root.tag}>, not <annotation>", path)
    lookup = _voc_classes()
    rows, cls = [], []
    for k, obj in enumerate(root.findall("object"), 1):
        name = " ".join((obj.findtext("name") or "").split())
        if not name:
            raise InputError(f"object {k}: no class <name>", path)
        cid = lookup.get(name.lower())
        if cid is None:  # RDD2020's D01, D11, D43, D44, D50, Repair …: not scored, not trained
            if notes is not None:
                notes.left_out[name] += 1
            continue
        box = obj.find("bndbox")
        if box is None:
            raise InputError(f"object {k} ({name}): no <bndbox>", path)
        v = []
        for tag in _VOC_BOX:
            t = (box.findtext(tag) or "").strip()
            if not t:
                raise InputError(f"object {k} ({name}): <bndbox> has no <{tag}> number", path)
            try:
                x = float(t)
            except ValueError:
                x = math.nan
            if not math.isfinite(x):
                raise InputError(f"object {k} ({name}): <{tag}> is not a number: {t[:30]!r}", path)
            v.append(x)
        rows.append(v)
        cls.append(cid)
    if notes is not None:
        size = [(root.findtext(f"size/{t}") or "").strip() for t in ("width", "height")]
        if size != [str(width), str(height)]:
            try:
                same = [float(x) for x in size] == [width, height]
            except ValueError:
                same = False
            if not same:
                notes.resized.append((path, "x".join(x or "?" for x in size), f"{width}x{height}"))
    if not rows:
        return empty
    a = np.array(rows, dtype=np.float64)
    xyxy = np.stack([np.clip(a[:, 0] - 1, 0, width), np.clip(a[:, 1] - 1, 0, height),
                     np.clip(a[:, 2], 0, width), np.clip(a[:, 3], 0, height)], 1)
    ok = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    if not ok.all() and notes is not None:
        notes.degenerate[path] = notes.degenerate.get(path, 0) + int((~ok).sum())
    return xyxy[ok], np.array(cls, dtype=object)[ok]


def image_size(path: Path) -> tuple[int, int]:
    """A photo's (width, height) as it is trained and scored: EXIF orientation applied (a photo turned by it has
    them swapped), from its header only; an InputError naming it when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
            try:
                turn = im.getexif().get(0x0112)
            except Exception:  # a broken EXIF block: as cv2, the photo as stored
                turn = None
    except Exception as e:
        raise InputError(f"cannot read the photo's size for its Pascal VOC label: {e}", path) from None
    return (h, w) if turn in (5, 6, 7, 8) else (w, h)


def prefetch(fn, items: Iterable, depth: int = 8, workers: int = 2) -> Iterator[tuple[Any, Any]]:
    """Yield ``(item, fn(item))`` in order, computing up to ``depth`` ahead in threads (cv2 releases the GIL)."""
    with ThreadPoolExecutor(max_workers=workers) as ex:
        q: deque = deque()
        for it in items:
            q.append((it, ex.submit(fn, it)))
            if len(q) >= depth:
                a, f = q.popleft()
                yield a, f.result()
        while q:
            a, f = q.popleft()
            yield a, f.result()


_CACHE: dict[tuple, list[ImagePreds]] = {}


def _key(weights: Path, images: list[Path], cfg: Config, conf: float, max_det: int) -> tuple:
    w = Path(weights).resolve()
    st = w.stat()
    return (str(w), st.st_mtime_ns, st.st_size, tuple(str(p) for p in images), cfg.detect.imgsz, cfg.detect.iou, conf, max_det)


def predict_split(source: str | Path, weights: str | Path | None, cfg: Config, split: str = "val", conf: float = EVAL_CONF,
                  max_det: int = EVAL_MAX_DET, detector=None, limit: int | None = None, use_cache: bool = True,
                  prefixes: Sequence[str] | None = None, command: str = "eval") -> list[ImagePreds]:
    """Predict every image of a split once (conf >= ``conf``, at most ``max_det`` per image) with its ground truth.

    Cached in-process by (weights file, images, imgsz, iou, conf, max_det); ``limit`` takes the first N images;
    ``prefixes`` keeps only images whose file name starts with one of them (e.g. ``Japan_``). Before predicting,
    label files a ``patrol label-set`` wrote and nobody has checked get a warning naming ``command`` (eval | tune)
    (:func:`detector.labelset.warn_unchecked`).
    """
    from .infer import load_detector, resolve_weights

    images, names = resolve_split(source, split)
    images = filter_prefixes(images, prefixes, source)
    if limit:
        images = images[:limit]
    labels = label_paths_for(images)
    split_name = split if not Path(source).is_dir() else None
    require_labels(images, labels, source, split_name, names)
    label_of = dict(zip(images, labels))
    voc = VocNotes()
    if detector is None:
        weights = resolve_weights(cfg, weights)
    else:
        weights = detector.weights
    key = _key(weights, images, cfg, conf, max_det) if use_cache else None
    if key is not None and key in _CACHE:
        return _CACHE[key]
    from .labelset import warn_unchecked

    # (once: a second call of one command finds its predictions cached above) label-set's pre-labels still unchecked
    warn_unchecked([lab for lab in labels if lab.is_file()], command)
    if detector is None:
        detector = load_detector(weights, cfg)

    from .frames import FrameError, decoded_batches, load_image

    def read(p: Path) -> tuple[np.ndarray | None, str | None]:
        try:
            return load_image(p), None  # EXIF orientation applied, as ultralytics trains; corrupt JPEG data refused
        except FrameError as e:  # (only that: any other error is a bug, and stops the evaluation)
            return None, str(e)

    out: list[ImagePreds] = []
    skipped: list[str] = []

    def skip(p: Path, why: str) -> None:  # one damaged photo does not cost the score of the others
        print(f"warning: {p}: {why}; not scored", file=sys.stderr)
        skipped.append(str(p))

    def scored(p: Path, im: np.ndarray, xyxy: np.ndarray, c: np.ndarray, k: np.ndarray) -> ImagePreds:
        h, w = im.shape[:2]
        gx, gk = read_labels(label_of[p], names, w, h, voc)
        o = _order(c)
        return ImagePreds(name=p.name, source=source_of(p.name), width=w, height=h, pred_xyxy=xyxy[o],
                          pred_conf=c[o], pred_cls=k[o], gt_xyxy=gx, gt_cls=gk, path=str(p))

    for buf in decoded_batches(images, cfg.detect.batch, skip, decode=read):
        res = detector.predict_all([im for _, im in buf], conf, max_det)
        out.extend(scored(p, im, *r) for (p, im), r in zip(buf, res))
    voc.report(f"{source}: {split_name}" if split_name else str(source))
    if not out:
        raise InputError(f"none of the {len(images)} images can be decoded (e.g. {skipped[0]})", source)
    out = SplitPreds(out, skipped)
    if key is not None:
        _CACHE[key] = out
    return out


def evaluate(source: str | Path, weights: str | Path | None, cfg: Config, split: str = "val",
             thresholds: dict[str, float] | None = None, max_boxes: int = MAX_BOXES, preds: list[ImagePreds] | None = None,
             limit: int | None = None, prefixes: Sequence[str] | None = None) -> dict[str, Any]:
    """Score ``weights`` on a split: F1/precision/recall (micro, max ``max_boxes`` per image, per-class thresholds
    from ``thresholds`` or the config), per class, per source, mAP50 and n_images. ``prefixes`` keeps only the
    images whose file name starts with one of them."""
    if preds is None:
        preds = predict_split(source, weights, cfg, split, limit=limit, prefixes=prefixes)
    thr = dict(cfg.thresholds())
    if thresholds:
        unknown = set(thresholds) - set(CLASS_IDS)
        if unknown:
            raise InputError(f"unknown classes in thresholds: {sorted(unknown)}")
        thr.update({k: float(v) for k, v in thresholds.items()})
    res = score(preds, thr, max_boxes)
    skipped = list(getattr(preds, "skipped", []))
    split_label = split if not Path(source).is_dir() else f"folder {Path(source).name}"  # a folder has no splits
    from .tune import model_sha256

    sha = model_sha256(weights) if weights else None  # the model by content: retrained into one path, it is another
    res = {"source": str(source), "split": split_label, "weights": str(weights) if weights else None,
           **({"weights_sha256": sha} if sha else {}),
           "imgsz": cfg.detect.imgsz,
           **({"prefixes": list(prefixes)} if prefixes else {}), **({"skipped": skipped} if skipped else {}), **res}
    return res


def default_eval_json(source: str | Path, split: str = "val", prefixes: Sequence[str] | None = None) -> Path:
    """``patrol eval``'s JSON when no ``--out`` is given, in the current folder, named after what was evaluated, so
    that evaluating another data set, split or folder does not overwrite it:

    - a data.yaml: ``eval-<data set>-<split>.json``, the data set being the yaml's folder for ``data.yaml`` (the
      usual name), else the yaml's own name: ``city/data.yaml`` → ``eval-city-val.json``;
    - an images folder (no split): ``eval-<data set>-<folder>-folder.json``, the data set being the folder above
      it (above ``images/``): ``city/images/val`` and a flat ``city/val`` → ``eval-city-val-folder.json``;
    - ``--prefix Japan_`` adds ``-Japan``."""
    src = Path(source).resolve()
    if src.is_dir():
        up = src.parent.parent if src.parent.name.lower() == "images" else src.parent
        parts = [up.name or "data", src.name or "data", "folder"]
    else:
        parts = [(src.parent.name or "data") if src.stem.lower() == "data" else src.stem, split]
    parts += [p.rstrip("_") for p in prefixes or []]
    return Path("eval-" + "-".join(parts) + ".json")


def replaced_model(path: str | Path, result: dict[str, Any]) -> str | None:
    """The model whose scores the eval JSON at ``path`` holds, when it is not ``result``'s (so writing ``result``
    there replaces another model's scores), as ``weights [sha256:…]``; None when the file is not there, is not an
    eval JSON, or holds the same model (by content where both record it, else by path)."""
    try:
        old = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict) or not old.get("weights"):
        return None
    a, b = old.get("weights_sha256"), result.get("weights_sha256")
    if a and b:
        same = a == b
    else:
        same = os.path.abspath(str(old["weights"])) == os.path.abspath(str(result.get("weights")))
    return None if same else f"{old['weights']}" + (f" [sha256:{a}]" if a else "")


def write_eval_json(result: dict[str, Any], path: str | Path) -> None:
    from .atomic import atomic_write_text

    atomic_write_text(path, json.dumps(result, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def format_table(result: dict[str, Any]):
    """A rich Table: overall, per class, per source."""
    from rich.table import Table

    def f(v) -> str:
        return "-" if v is None else f"{v:.3f}"

    t = Table(title=f"{result.get('split', '')} · {result.get('n_images', 0)} images · "
                    f"F1 {result['f1']:.3f} · mAP50 {f(result.get('map50'))}")
    for col in ("", "thr", "TP", "FP", "FN", "P", "R", "F1", "AP50"):
        t.add_column(col, justify="left" if not col else "right")
    for cid, e in result["per_class"].items():
        t.add_row(cid, f(e.get("threshold")), str(e["tp"]), str(e["fp"]), str(e["fn"]), f(e["precision"]), f(e["recall"]),
                  f(e["f1"]), f(e.get("ap50")))
    t.add_section()
    for src, e in result["per_source"].items():
        t.add_row(f"{src} ({e['n_images']})", "", str(e["tp"]), str(e["fp"]), str(e["fn"]), f(e["precision"]),
                  f(e["recall"]), f(e["f1"]), "")
    t.add_section()
    t.add_row("all", "", str(result["tp"]), str(result["fp"]), str(result["fn"]), f(result["precision"]),
              f(result["recall"]), f(result["f1"]), f(result.get("map50")), style="bold")
    return t
