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


def label_path_for(img: Path, _listed: dict | None = None) -> Path:
    """The label file of an image, as ultralytics trains it: the last ``images`` folder in the path becomes
    ``labels``, suffix ``.txt``; an image path without an ``images`` folder has its label file beside it (a flat
    folder).

    Whatever the case of the folders and of the file name, as on Windows where a data set is often made:
    ``Images/val/a.JPG`` finds ``Labels/val/a.TXT`` (or ``labels/val/a.txt``) where exactly one such folder and file
    exists; two that differ only in case (``labels/`` and ``Labels/``, ``a.txt`` and ``a.TXT``) are an InputError
    naming both. A label file that is not there comes back as the path it was looked for at (a background photo).
    For many photos use :func:`label_paths_for` (each folder listed once)."""
    listed = {} if _listed is None else _listed
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


def label_paths_for(images: Sequence[Path]) -> list[Path]:
    """:func:`label_path_for` of each image, each folder listed once."""
    listed: dict = {}
    return [label_path_for(p, listed) for p in images]


def _resolve_below(folder: Path, subfolders: Sequence[str], img: Path, listed: dict) -> Path:
    """``folder/<subfolders…>/<img stem>.txt``, each name matched whatever its case."""
    for sub in subfolders:
        found = _case_match(folder, sub, True, listed)
        folder = folder / (found if found is not None else sub)
    name = img.stem + ".txt"
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


def require_labels(images: Sequence[Path], labels: Sequence[Path], source: str | Path, split: str | None) -> int:
    """How many of ``images`` have a label file (``labels``, from :func:`label_path_for`); none is an InputError
    saying where they were looked for: scored or trained on, every photo would count as background (no damage)."""
    n = sum(1 for lp in labels if lp.is_file())
    if n == 0 and images:
        where = labels[0].parent
        others = len({lp.parent for lp in labels}) - 1
        raise InputError(f"0 of {len(images)} photos have a label file: "
                         f"expected labels in {where}{f' (and {others} more folders)' if others else ''}, "
                         f"e.g. {labels[0].name} for {images[0].name} (labels/ beside images/: images/val/a.jpg → "
                         "labels/val/a.txt, or a.txt beside a.jpg in a flat folder)",
                         source, *([split] if split else []))
    if n < len(images):
        # YOLO's rule: a photo without a label file shows no damage (a background photo), so it is not refused; but
        # a split only partly labelled is often labels not copied, and every detection on those photos would count
        # as a false positive (eval, tune) or be trained as background: said once, with an example
        k = next(i for i, lp in enumerate(labels) if not lp.is_file())
        _warn_once(f"{source}: {f'{split}: ' if split else ''}{len(images) - n} of {len(images)} photos have no label "
                   f"file, e.g. {labels[k]} for {images[k]}: they count as photos without damage (YOLO's rule); "
                   "if their labels were not copied, copy them")
    return n


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

    def __init__(self, ids: Iterable[str] = (), written: Iterable[str] = ()):
        super().__init__(ids)
        self.written: list[str] = list(written)  # each instance its own (a class-level [] is shared by all)


def dataset_names(d: dict, source: str | Path) -> ClassIds:
    """A data.yaml's ``names`` (a list, or an index -> name mapping) as our class ids, index-aligned."""
    raw = d.get("names")
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


def read_labels(path: Path, names: Sequence[str], width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """YOLO label file -> xyxy pixel boxes, class ids. A missing file is a background image.

    Each line is ``class cx cy w h`` (normalised 0..1) or a polygon ``class x1 y1 x2 y2 x3 y3 …`` (its bounding
    box, as ultralytics trains it). Anything else — a class index outside the data yaml's names, too few or too many
    numbers, a coordinate outside 0..1 — is an InputError naming the file and the line: ultralytics would drop the
    whole image, with all its other boxes, for it. The error names the classes as the data yaml writes them
    (``names.written`` of a :class:`ClassIds`)."""
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
                  prefixes: Sequence[str] | None = None) -> list[ImagePreds]:
    """Predict every image of a split once (conf >= ``conf``, at most ``max_det`` per image) with its ground truth.

    Cached in-process by (weights file, images, imgsz, iou, conf, max_det); ``limit`` takes the first N images;
    ``prefixes`` keeps only images whose file name starts with one of them (e.g. ``Japan_``).
    """
    from .infer import load_detector, resolve_weights

    images, names = resolve_split(source, split)
    images = filter_prefixes(images, prefixes, source)
    if limit:
        images = images[:limit]
    labels = label_paths_for(images)
    require_labels(images, labels, source, split if not Path(source).is_dir() else None)
    label_of = dict(zip(images, labels))
    if detector is None:
        weights = resolve_weights(cfg, weights)
    else:
        weights = detector.weights
    key = _key(weights, images, cfg, conf, max_det) if use_cache else None
    if key is not None and key in _CACHE:
        return _CACHE[key]
    if detector is None:
        detector = load_detector(weights, cfg)

    def read(p: Path) -> np.ndarray | str:
        from .frames import FrameError, load_image

        try:
            return load_image(p)  # EXIF orientation applied, as ultralytics trains; corrupt JPEG data refused
        except FrameError as e:
            return str(e)

    out: list[ImagePreds] = []
    batch = max(1, cfg.detect.batch)
    buf: list[tuple[Path, np.ndarray]] = []

    def flush():
        res = detector.predict_all([im for _, im in buf], conf, max_det)
        for (p, im), (xyxy, c, k) in zip(buf, res):
            h, w = im.shape[:2]
            gx, gk = read_labels(label_of[p], names, w, h)
            o = _order(c)
            out.append(ImagePreds(name=p.name, source=source_of(p.name), width=w, height=h, pred_xyxy=xyxy[o],
                                  pred_conf=c[o], pred_cls=k[o], gt_xyxy=gx, gt_cls=gk, path=str(p)))
        buf.clear()

    skipped: list[str] = []
    for p, im in prefetch(read, images):
        if isinstance(im, str):  # one damaged photo does not cost the score of the others
            print(f"warning: {p}: {im}; not scored", file=sys.stderr)
            skipped.append(str(p))
            continue
        buf.append((p, im))
        if len(buf) >= batch:
            flush()
    if buf:
        flush()
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
