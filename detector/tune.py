"""`patrol tune`: per-class confidence thresholds that maximise the challenge F1 on a labelled split.

Predict once (conf >= 0.001), then coordinate ascent over classes: for each class try every threshold of the grid
(0.05..0.90 step 0.01) with the others fixed, keep the best, repeat up to 3 rounds (the 5-boxes-per-image cap
couples the classes). Of a plateau of equal F1 the middle is taken; a class whose current threshold is already
optimal keeps it; a class without a labelled box in the split is not tuned (kept as it was). Only
``classes.<id>.threshold`` is written back to the YAML, comments and everything else kept, with one comment line
above ``classes:`` saying at which ``detect.imgsz``, for which model (its path and short sha256), on which data they
were chosen and which classes were kept: thresholds hold for that size and model only, and ``patrol eval``/``run``/
``detect`` warn when the config now runs at another size or another model (:func:`thresholds_tuned_at`).
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import yaml

from . import CLASS_IDS
from .config import Config, _UniqueKeyLoader, load_config, read_yaml
from .errors import ConfigError, InputError
from .evaluate import IOU_THR, MAX_BOXES, ImagePreds, box_iou, greedy_match, predict_split, prf

GRID = np.round(np.arange(0.05, 0.9 + 1e-9, 0.01), 2)
# below this many labelled boxes of a class in the split, its chosen threshold is mostly chance (one box more found
# or missed moves it across the grid): tune still writes it, with a warning naming the class (README: tune)
MIN_BOXES = 20


class _Image:
    """Pre-computed matching data of one image: predictions sorted by confidence, IoU with the ground truth."""

    __slots__ = ("conf", "cls", "cls_idx", "xyxy", "gt_cls", "iou", "n_gt")

    def __init__(self, ip: ImagePreds):
        o = np.argsort(-ip.pred_conf, kind="stable")
        self.conf = ip.pred_conf[o]
        self.cls = np.asarray(ip.pred_cls, dtype=object)[o]
        self.cls_idx = np.array([CLASS_IDS.index(c) for c in self.cls], dtype=np.int64)
        self.xyxy = ip.pred_xyxy[o]
        self.gt_cls = np.asarray(ip.gt_cls, dtype=object)
        self.n_gt = len(self.gt_cls)
        self.iou = box_iou(self.xyxy, ip.gt_xyxy) if len(self.conf) and self.n_gt else None

    def counts(self, thr: np.ndarray, max_boxes: int, iou_thr: float) -> tuple[int, int, int]:
        keep = np.flatnonzero(self.conf >= thr[self.cls_idx])[:max_boxes]
        if not keep.size:
            return 0, 0, self.n_gt
        if self.iou is None:
            return 0, int(keep.size), self.n_gt
        tp = int(greedy_match(self.xyxy[keep], self.cls[keep], None, self.gt_cls, iou_thr, iou=self.iou[keep]).sum())
        return tp, int(keep.size) - tp, self.n_gt - tp


def _f1(c: np.ndarray) -> float:
    return prf(int(c[0]), int(c[1]), int(c[2]))["f1"]


def choose_thresholds(preds: Sequence[ImagePreds], init: dict[str, float] | None = None, grid: Sequence[float] | None = None,
                      rounds: int = 3, max_boxes: int = MAX_BOXES, iou_thr: float = IOU_THR,
                      keep: Sequence[str] = ()) -> tuple[dict[str, float], float]:
    """Per-class thresholds maximising the micro F1 (max ``max_boxes`` per image). Returns (thresholds, F1).

    Classes in ``keep`` keep their ``init`` threshold (e.g. a class without one labelled box in the split: its
    threshold would be tuned on false positives alone and rise until it hides the class)."""
    grid = np.asarray(GRID if grid is None else grid, dtype=np.float64)
    imgs = [_Image(ip) for ip in preds]
    thr = np.array([float((init or {}).get(c, 0.25)) for c in CLASS_IDS])
    per_img = np.array([im.counts(thr, max_boxes, iou_thr) for im in imgs], dtype=np.int64).reshape(-1, 3)
    total = per_img.sum(0)
    best_f1 = _f1(total)
    for _ in range(rounds):
        changed = False
        for ci in range(len(CLASS_IDS)):
            if CLASS_IDS[ci] in keep:
                continue
            lo = min(grid.min(), thr[ci])
            affected = [i for i, im in enumerate(imgs) if np.any((im.cls_idx == ci) & (im.conf >= lo))]
            if not affected:
                continue
            base = total - per_img[affected].sum(0)
            f1s = np.empty(len(grid))
            cand = []
            for gi, t in enumerate(grid):
                trial = thr.copy()
                trial[ci] = t
                rows = np.array([imgs[i].counts(trial, max_boxes, iou_thr) for i in affected], dtype=np.int64)
                cand.append(rows)
                f1s[gi] = _f1(base + rows.sum(0))
            top = f1s.max()
            if top <= best_f1 + 1e-12:
                continue  # the current threshold is already optimal for this class
            first = int(np.flatnonzero(f1s >= top - 1e-12)[0])
            last = first
            while last + 1 < len(grid) and f1s[last + 1] >= top - 1e-12:
                last += 1
            gi = (first + last) // 2
            thr[ci] = grid[gi]
            per_img[affected] = cand[gi]
            total = per_img.sum(0)
            best_f1 = _f1(total)
            changed = True
        if not changed:
            break
    return {c: round(float(t), 4) for c, t in zip(CLASS_IDS, thr)}, best_f1


# ----------------------------------------------------------------------------------------------------------------
# writing thresholds into a YAML, keeping everything else

_TOP_CLASSES = re.compile(r"^classes\s*:\s*(#.*)?$")
_CLASS_KEY = re.compile(r"^(?P<ind>[ ]+)(?P<q>[\"']?)(?P<id>D\d\d)(?P=q)\s*:\s*(#.*)?$")
_THRESHOLD = re.compile(r"^(?P<ind>[ ]+)threshold\s*:\s*(?P<val>[^#\s][^#]*?|)(?P<rest>\s*(#.*)?)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    s = line.strip()
    return bool(s) and not s.startswith("#")


def _fmt(v: float) -> str:
    return repr(round(float(v), 4))


def _text_edit(text: str, thresholds: dict[str, float]) -> str | None:
    """Replace/insert the threshold lines of block-style ``classes:``; None when the layout is not understood."""
    lines = text.splitlines(keepends=True)
    nl = "\r\n" if "\r\n" in text else "\n"
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += nl
    start = next((i for i, ln in enumerate(lines) if _TOP_CLASSES.match(ln.rstrip("\r\n"))), None)
    if start is None:
        if any(re.match(r"^classes\s*:", ln) for ln in lines):
            return None  # flow style or other layout
        body = "".join(f"  {c}:{nl}    threshold: {_fmt(v)}{nl}" for c, v in thresholds.items())
        return "".join(lines) + f"classes:{nl}" + body
    end = start + 1
    while end < len(lines) and (not _is_content(lines[end]) or _indent(lines[end]) > 0):
        end += 1
    # the classes block is lines[start+1:end]
    keys: dict[str, int] = {}
    child_indent = None
    for i in range(start + 1, end):
        ln = lines[i].rstrip("\r\n")
        if not _is_content(ln):
            continue
        if child_indent is None:
            child_indent = _indent(ln)
        if _indent(ln) == child_indent:
            m = _CLASS_KEY.match(ln)
            if not m:
                return None
            keys[m["id"]] = i
    child_indent = child_indent or 2
    edits: dict[int, str] = {}
    inserts: dict[int, str] = {}
    appends: list[str] = []
    for cid, v in thresholds.items():
        if cid not in keys:
            appends.append(f"{' ' * child_indent}{cid}:{nl}{' ' * (child_indent * 2)}threshold: {_fmt(v)}{nl}")
            continue
        k = keys[cid]
        j = k + 1
        grand = None
        found = None
        while j < end and (not _is_content(lines[j]) or _indent(lines[j]) > child_indent):
            if _is_content(lines[j]):
                if grand is None:
                    grand = _indent(lines[j])
                if _indent(lines[j]) == grand:
                    m = _THRESHOLD.match(lines[j].rstrip("\r\n"))
                    if m:
                        found = (j, m)
            j += 1
        if found:
            j, m = found
            eol = lines[j][len(lines[j].rstrip("\r\n")):]
            edits[j] = f"{m['ind']}threshold: {_fmt(v)}{m['rest']}{eol}"
        else:
            ind = grand if grand is not None else child_indent * 2
            inserts[k] = f"{' ' * ind}threshold: {_fmt(v)}{nl}"
    out = []
    for i, ln in enumerate(lines):
        out.append(edits.get(i, ln))
        if i in inserts:
            out.append(inserts[i])
    if appends:
        last_content = max((i for i in range(start, end) if _is_content(lines[i])), default=start)
        # after the block's last content line (trailing blank/comment lines stay below); shift by inserted lines
        pos = last_content + 1 + sum(1 for k in inserts if k <= last_content)
        out[pos:pos] = appends
    return "".join(out)


def _expected(data: dict[str, Any], thresholds: dict[str, float]) -> dict[str, Any]:
    exp = copy.deepcopy(data)
    classes = exp.setdefault("classes", {})
    for c, v in thresholds.items():
        spec = classes.get(c)
        if not isinstance(spec, dict):
            spec = classes[c] = {}
        spec["threshold"] = round(float(v), 4)
    return exp


def thresholds_text(text: str, thresholds: dict[str, float]) -> str:
    """New YAML text with ``classes.<id>.threshold`` set; a targeted line edit when the layout allows (comments
    kept), else a safe_load/safe_dump round trip. Either way nothing else changes in the parsed document."""
    return _thresholds_text(text, thresholds)[0]


def _thresholds_text(text: str, thresholds: dict[str, float]) -> tuple[str, bool]:
    """thresholds_text, and whether the layout (comments) was kept: the line edit, or an empty file."""
    data = yaml.safe_load(text) if text.strip() else {}
    data = data or {}
    if not isinstance(data, dict) or not isinstance(data.get("classes", {}), dict):
        raise ConfigError("cannot set thresholds: the file's top level or its 'classes' is not a mapping")
    exp = _expected(data, thresholds)
    bom = "\ufeff" if text.startswith("\ufeff") else ""  # Notepad's UTF-8: line 1 is "\ufeffclasses:"
    new = _text_edit(text[len(bom):], thresholds)
    if new is not None:
        try:  # refusing a key given twice, as load_config does: a classes: block appended beside one not recognised
            if yaml.load(new, Loader=_UniqueKeyLoader) == exp:  # noqa: S506 - a SafeLoader
                return bom + new, True
        except yaml.YAMLError:
            pass
    return yaml.safe_dump(exp, allow_unicode=True, sort_keys=False), not text.strip()


# the comment `patrol tune` writes above `classes:`: at which detect.imgsz, for which model (its name and the start of
# its content's sha256: a city's retrained best.onnx at the same path is another model), and the sha256 of the model's
# twin beside it (best.pt for best.onnx, and the other way) when there was one: a stale .onnx beside a retrained .pt
# is told from a true export (a stamp written before the twin was recorded has no "(twin …)")
_STAMP = re.compile(r"^# patrol tune\b[^\n]*?\bat (?P<imgsz>\d+) px\b(?: \(detect\.imgsz\))?"
                    r"(?: for (?P<model>[^\n]*?) \[sha256:(?P<sha>[0-9a-f]{12,64})\]"
                    r"(?: \(twin (?P<twin>[^\n]*?) \[sha256:(?P<twin_sha>[0-9a-f]{12,64})\]\))?)?", re.M)
#: hex digits of the model's sha256 the stamp records (enough to tell two models apart; a line a person reads)
SHA_CHARS = 12


class TunedFor(NamedTuple):
    """What the stamp above a config's ``classes:`` says its thresholds were tuned for (:func:`thresholds_tuned_at`):
    the detect.imgsz, the file holding the stamp, the model as named there and its short sha256 (None in a stamp
    written before the model's hash was recorded), and its twin (:func:`twin_of`) as named there and its short sha256
    when there was one at tune time (None in a stamp written before twins were recorded, or without a twin)."""

    imgsz: int
    path: Path
    model: str | None = None
    sha256: str | None = None
    twin: str | None = None
    twin_sha256: str | None = None


def twin_of(path: str | Path) -> Path:
    """The other file of a model's pair beside it: ``best.onnx`` for ``best.pt`` and the other way (``patrol train``
    and ``average-weights`` export the .onnx next to the .pt; ``weights/rdd-yolo.pt``/``.onnx`` ship so)."""
    p = Path(path)
    return p.with_suffix(".onnx" if p.suffix.lower() == ".pt" else ".pt")


def model_sha256(path: str | Path) -> str | None:
    """The first :data:`SHA_CHARS` hex digits of the file's sha256 (the model's content: renamed or moved it is
    the same model, retrained into the same path it is not); None when it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()[:SHA_CHARS]


def _checkout_root(folder: Path) -> Path | None:
    """The nearest folder at or above ``folder`` holding ``.git`` (a folder, or a worktree's file): a checkout is
    cloned and moved as a whole, so a path inside it stays true."""
    return next((d for d in (folder, *folder.parents) if (d / ".git").exists()), None)


def model_name(weights: str | Path, config_path: str | Path) -> str:
    """How the stamp in ``config_path`` names the model: relative to the config's folder when the model lies below
    it (``models/best.onnx``, as detect.weights would name it), or when both lie in one checkout (the shipped
    configs/default.yaml: ``../weights/rdd-yolo.onnx``) — the two move together; else its absolute path. A path
    climbing out of the config's folder into an unrelated place (``../../../work/other/weights/rdd-yolo.onnx``)
    says nothing to whoever reads the config later, and breaks when the config is copied elsewhere."""
    model = Path(weights).resolve()
    folder = Path(config_path).resolve().parent
    root = _checkout_root(folder)
    if model.is_relative_to(folder) or (root is not None and model.is_relative_to(root)):
        return os.path.relpath(model, folder)  # one drive (Windows): no ValueError
    return str(model)


def tune_stamp(imgsz: int, weights: str | Path, data: str | Path, split: str, prefixes: Sequence[str] | None = None,
               when: str = "", config_path: str | Path | None = None, kept: Sequence[str] = ()) -> str:
    """The comment line recording how the thresholds were chosen (thresholds depend on the size the model runs at,
    and on the model): the size, the model (named as :func:`model_name` says: relative to ``config_path``'s folder
    when it lies below it or in the config's checkout, else absolute; and the start of its sha256 when the file can
    be read; and so its twin's beside it, when there is one:
    thresholds tuned with the .onnx hold for the .pt it was exported from, and only for that one), the data, and — when some classes were
    ``kept`` (no labelled box of theirs in the split) — which classes were tuned and which kept as they were. The data
    is named as the model is (a path that does not exist as given, as typed)."""
    w = str(weights) if config_path is None else model_name(weights, config_path)
    # the data by the same rule: as typed it was relative to the folder tune ran in, which nobody reading the config
    # later knows (the shipped config said ../shared/data/rdd/data.yaml, relative to the checkout, not to configs/)
    data = model_name(data, config_path) if config_path is not None and Path(data).exists() else data
    sha = model_sha256(weights)
    twin = twin_of(weights)
    twin_sha = model_sha256(twin) if sha and twin.is_file() else None
    also = f" (twin {Path(w).with_suffix(twin.suffix)} [sha256:{twin_sha}])" if twin_sha else ""
    only = f", {' '.join(prefixes)} only" if prefixes else ""
    kept = [c for c in CLASS_IDS if c in set(kept)]
    tuned = [c for c in CLASS_IDS if c not in kept]
    which = f"of {' '.join(tuned)} " if kept else ""
    why = f"; left as they were (no labelled box in the split): {' '.join(kept)}" if kept else ""
    return (f"# patrol tune{f' {when}' if when else ''}: thresholds {which}chosen at {imgsz} px (detect.imgsz) for "
            f"{w}{f' [sha256:{sha}]' if sha else ''}{also} on {data} ({split}{only}){why}")


def _with_stamp(text: str, stamp: str) -> str:
    """``text`` with ``stamp`` as the line just above the top-level ``classes:`` (replacing an earlier stamp there)."""
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    lines = text[len(bom):].splitlines(keepends=True)
    nl = "\r\n" if "\r\n" in text else "\n"
    i = next((k for k, ln in enumerate(lines) if re.match(r"^classes\s*:", ln)), None)
    if i is None:
        return text
    j = i
    while j > 0 and lines[j - 1].startswith("# patrol tune"):
        j -= 1
    return bom + "".join(lines[:j] + [stamp + nl] + lines[i:])


def thresholds_tuned_at(config_path: str | Path | None) -> TunedFor | None:
    """The detect.imgsz (and model) the config's thresholds were tuned for, and the file saying so, from the comment
    `patrol tune` writes (:func:`tune_stamp`): the config's own, else — when it sets no threshold itself — that of
    configs/default.yaml, whose thresholds it then uses (also when it sets only some classes' by hand: the others are
    default.yaml's). None when unknown (every class's threshold set by hand)."""
    from . import CLASS_IDS
    from .config import DEFAULT_CONFIG

    paths = [Path(config_path)] if config_path is not None else []
    for p in paths + [DEFAULT_CONFIG]:
        try:
            text = p.read_text(encoding="utf-8-sig")  # a BOM before a stamp on line 1
        except (OSError, UnicodeDecodeError):
            return None
        m = _STAMP.search(text)
        if m:
            return TunedFor(int(m["imgsz"]), p, m["model"], m["sha"], m["twin"], m["twin_sha"])
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            return None
        classes = data.get("classes") if isinstance(data, dict) else None
        own = {k for k, v in classes.items() if isinstance(v, dict) and "threshold" in v} if isinstance(
            classes, dict) else set()
        if own >= set(CLASS_IDS):
            return None  # thresholds of its own for every class, not stamped: set by hand
        # some set by hand (`classes: {D40: {threshold: 0.5}}`), the others configs/default.yaml's: its stamp holds
        # for those (before, one hand-set class silenced the warning of a city model run at the shipped thresholds)
    return None


def write_thresholds(config_path: str | Path, thresholds: dict[str, float], stamp: str | None = None) -> bool:
    """Write the thresholds into the config YAML (created when missing), atomically; validated before replacing.
    ``stamp`` (:func:`tune_stamp`) goes on the line above ``classes:``.

    Returns False when the file had to be rewritten as a whole (its ``classes`` in a layout the line edit does not
    handle, e.g. ``{…}`` flow style): the values are kept, its comments are not."""
    from .atomic import OutputInUseError, atomic_write_text

    config_path = Path(config_path)
    text = ""
    if config_path.exists():
        read_yaml(config_path)  # readable, a mapping
        text = config_path.read_bytes().decode("utf-8")  # CRLF kept (read_text gives LF: every line changed)
    new, kept = _thresholds_text(text, thresholds)
    if stamp:
        new = _with_stamp(new, stamp)
    fd, tmp = tempfile.mkstemp(prefix=f".{config_path.name}.", suffix=".check.yaml", dir=config_path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(new)
        load_config(tmp)  # still a valid config
    finally:
        os.unlink(tmp)
    try:
        atomic_write_text(config_path, new)
    except OutputInUseError as e:  # open in an editor that locks it (Windows): the tuning is not lost
        raise OutputInUseError(f"{e.reason}; the tuned thresholds, to write in by hand if need be: "
                               + ", ".join(f"{c} {t:.2f}" for c, t in thresholds.items()), e.path, verb=e.verb,
                               program=e.program) from None
    return kept


def tune(data_yaml: str | Path, weights: str | Path | None, config_path: str | Path, split: str = "val",
         cfg: Config | None = None, preds: list[ImagePreds] | None = None, rounds: int = 3,
         prefixes: Sequence[str] | None = None) -> dict[str, float]:
    """Choose per-class thresholds on ``split`` (only images whose name starts with one of ``prefixes``, when
    given — e.g. a municipality tuning on the images that look like its own roads) and write them into
    ``config_path``.

    Returns ``{"D00": t, "D10": t, "D20": t, "D40": t, "f1_before": f, "f1_after": f}``, plus ``"kept"`` (the
    classes without a labelled box in the split, whose thresholds stay), ``"layout_kept"`` (False when the
    config had to be rewritten as a whole, losing its comments; see write_thresholds), ``"n_boxes"`` (labelled
    boxes per class in the split) and ``"few"`` (the tuned classes with fewer than MIN_BOXES of them).
    """
    from .evaluate import score

    config_path = Path(config_path)
    if cfg is None:
        cfg = load_config(config_path if config_path.exists() else None)
    if preds is None:
        preds = predict_split(data_yaml, weights, cfg, split, prefixes=prefixes, command="tune")
    before = score(preds, cfg.thresholds(), with_map=False)["f1"]
    n_boxes = {c: 0 for c in CLASS_IDS}
    for ip in preds:
        for c in ip.gt_cls:
            n_boxes[str(c)] += 1
    keep = [c for c in CLASS_IDS if not n_boxes[c]]
    if len(keep) == len(CLASS_IDS):  # nothing chosen: no stamp saying the thresholds fit this model and size
        only = f" ({' '.join(prefixes)} only)" if prefixes else ""
        raise InputError(f"no labelled box in the {split} split{only}: nothing to tune (every image is background)",
                         data_yaml)
    thr, after = choose_thresholds(preds, cfg.thresholds(), rounds=rounds, keep=keep)
    from .infer import resolve_weights

    stamp = tune_stamp(cfg.detect.imgsz, weights if weights is not None else resolve_weights(cfg, None), data_yaml,
                       split, prefixes, when=cfg.today().isoformat(), config_path=config_path,
                       kept=keep)
    layout_kept = write_thresholds(config_path, thr, stamp)
    few = {c: n for c, n in n_boxes.items() if 0 < n < MIN_BOXES}
    return {**thr, "f1_before": float(before), "f1_after": float(after), "kept": keep, "layout_kept": layout_kept,
            "n_boxes": n_boxes, "few": few}
