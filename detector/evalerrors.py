"""`patrol eval --errors DIR`: the mistakes behind the score, drawn on the photos and listed in a CSV.

For each scored photo with at least one mistake at the thresholds ``eval`` used: ``DIR/<stem>.jpg`` (the photo as the
scorer read it, EXIF orientation applied; true positives thin green, false positives red with class and confidence,
missed true boxes dashed yellow with class, wrong class magenta with its true box thin dashed magenta, a duplicate
orange, a misplaced box cyan with the true box it missed dashed cyan; a legend strip below the photo), and ``DIR/errors.csv``
(one row per mistake, worst photos first) and ``DIR/index.html`` (the photos, worst first, under the legend; no
scripts, no network).

The matching is the metric's own (:func:`detector.evaluate.image_matches`): an FP is a scored prediction matching
no true box of its class at IoU > 0.5, an FN a true box no scored prediction matched; an FP and an FN overlapping at
IoU > 0.5 (of different classes, necessarily: same-class ones would have matched) are one ``wrong_class`` mistake,
counted by the metric as one FP and one FN. Of the other FPs, one overlapping at IoU > 0.5 a true box of its own class
that a higher-confidence prediction already matched is a ``duplicate`` (NMS let two boxes through for one damage; one
FP); one overlapping a missed true box of its own class at 0.3 < IoU <= 0.5 is paired with it as one ``misplaced``
mistake (the damage found, the box drawn off: one FP and one FN, as ``wrong_class``); one left overlapping a found true
box of its own class at 0.3 < IoU <= 0.5 is a ``duplicate`` too (a second box, drawn off, on a damage another box
found; one FP), and so is one left over a missed true box of its own class at 0.3 < IoU <= 0.5 that a misplaced box
already claimed (the damage found by that box, drawn off: a second box on it, not a false alarm; one FP).
"""

from __future__ import annotations

import csv
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import Config
from .errors import InputError, UsageError
from .evaluate import IOU_THR, MAX_BOXES, ImagePreds, Matches, box_iou, image_matches, prefetch

CSV_NAME = "errors.csv"
INDEX_NAME = "index.html"
COLUMNS = ("image", "source", "kind", "class", "種別", "true_class", "正解種別", "confidence", "best_iou",
           "x1", "y1", "x2", "y2", "drawn", "true_x1", "true_y1", "true_x2", "true_y2")
KIND_ORDER = {"wrong_class": 0, "misplaced": 1, "fp": 2, "duplicate": 3, "fn": 4}
FN_KINDS = ("fn", "wrong_class", "misplaced")  # the kinds the metric counts as an FN (all but fn: as an FP too)
LOOSE_IOU = 0.3  # an FP over a missed true box of its class at LOOSE_IOU < IoU <= 0.5 is that box, misplaced

# BGR
GREEN = (0, 200, 0)
RED = (0, 0, 255)
YELLOW = (0, 230, 255)
MAGENTA = (255, 0, 255)
ORANGE = (0, 140, 255)
CYAN = (255, 220, 0)
# the legend, as the boxes are drawn: (colour, text, swatches: (line, weight) each; a wrong class and a misplaced box
# show the predicted box solid and the true box thin dashed beside it)
LEGEND = ((GREEN, "right", (("solid", "thin"),)),
          (RED, "false alarm: class conf", (("solid", "thick"),)),
          (YELLOW, "missed: true class", (("dashed", "thick"),)),
          (MAGENTA, "wrong class: class conf (true), true box dashed", (("solid", "thick"), ("dashed", "thin"))),
          (ORANGE, "duplicate: dup class conf", (("solid", "thick"),)),
          (CYAN, "misplaced: off class conf, true box dashed", (("solid", "thick"), ("dashed", "thin"))))


@dataclass
class Mistake:
    kind: str  # fp | duplicate | misplaced | fn | wrong_class
    cls: str  # the predicted class (all but fn), the true class (fn)
    true_cls: str | None  # wrong_class, misplaced: the missed true box's class; duplicate: the found one's
    conf: float | None  # all but fn
    best_iou: float  # a prediction: the highest IoU with any true box; fn: with any scored prediction
    box: np.ndarray  # xyxy pixels: the predicted box (all but fn), the true box (fn)
    true_box: np.ndarray | None = None  # wrong_class, misplaced: the missed true box; duplicate: the found one


@dataclass
class ImageErrors:
    ip: ImagePreds
    tp_boxes: np.ndarray
    mistakes: list[Mistake]
    drawn: str = ""

    @property
    def n_fp(self) -> int:  # as the metric counts: a wrong class is one FP and one FN
        return sum(m.kind != "fn" for m in self.mistakes)

    @property
    def n_fn(self) -> int:  # a duplicate is an FP only
        return sum(m.kind in FN_KINDS for m in self.mistakes)

    def n_kind(self, kind: str) -> int:
        return sum(m.kind == kind for m in self.mistakes)


@dataclass
class ErrorsSummary:
    folder: Path
    n_images: int = 0  # photos with at least one mistake
    n_drawn: int = 0  # of them drawn (not: re-read failed)
    n_fp: int = 0  # plain false positives (wrong classes, duplicates, misplaced boxes not included)
    n_fn: int = 0  # plain false negatives (wrong classes, misplaced boxes not included)
    n_wrong_class: int = 0
    n_duplicate: int = 0
    n_misplaced: int = 0
    replaced: int = 0  # files of an earlier --errors run removed
    failed: list[str] = field(default_factory=list)  # photos that could not be re-read or written


def image_errors(ip: ImagePreds, mt: Matches, iou_thr: float = IOU_THR) -> ImageErrors:
    """The mistakes of one photo from its metric matching ``mt``."""
    k = mt.kept
    pxy = ip.pred_xyxy[k].reshape(-1, 4)
    gxy = np.asarray(ip.gt_xyxy, dtype=np.float64).reshape(-1, 4)
    iou = box_iou(pxy, gxy)  # (kept, gt)
    fp = np.flatnonzero(mt.gt_of < 0)
    matched = mt.gt_matched
    fn = np.flatnonzero(~matched)
    same = np.asarray(ip.pred_cls, dtype=object)[k][:, None] == np.asarray(ip.gt_cls, dtype=object)[None, :]
    # fp row -> (kind, true box); fps in descending confidence take the best free true box
    paired: dict[int, tuple[str, int]] = {}
    free = set(fn.tolist())

    def pair_missed(kind: str, fits) -> None:
        """Each unpaired fp takes the missed true box it ``fits`` best (highest IoU), which is then taken."""
        for i in fp:
            cand = [j for j in free if fits(i, j)] if int(i) not in paired else []
            if cand:
                j = max(cand, key=lambda j: iou[i, j])
                paired[int(i)] = (kind, j)
                free.discard(j)

    def pair_found(lo: float, found: np.ndarray) -> None:
        """Each unpaired fp over a ``found`` true box of its class at IoU > ``lo`` is a duplicate of the one it
        overlaps most (found boxes are not taken: any number of second boxes may sit on one damage)."""
        for i in fp:
            if int(i) not in paired:
                dup = np.where(same[i] & found & (iou[i] > lo), iou[i], -1.0)
                if dup.size and dup.max() > lo:
                    paired[int(i)] = ("duplicate", int(dup.argmax()))

    pair_missed("wrong_class", lambda i, j: iou[i, j] > iou_thr and not same[i, j])  # first: it explains a miss
    pair_found(iou_thr, matched)  # a second box on a damage already found (greedy matching: by a higher-confidence prediction)
    # a box drawn off a damage of its class that was missed (a same-class IoU > iou_thr would have matched)
    pair_missed("misplaced", lambda i, j: same[i, j] and iou[i, j] > LOOSE_IOU)
    # last (a missed damage it may be drawn off comes first): a second box drawn off a damage already found
    # (LOOSE_IOU < IoU <= iou_thr; it could not have matched, so the box that did may have a lower confidence), or
    # found by a misplaced box (the damage found, that box drawn off: this one is a second box on it, no false alarm)
    claimed = np.zeros_like(matched)
    claimed[[j for kind, j in paired.values() if kind == "misplaced"]] = True
    pair_found(LOOSE_IOU, matched | claimed)
    out: list[Mistake] = []
    for i in fp:
        best = float(iou[i].max()) if iou.shape[1] else 0.0
        kind, j = paired.get(int(i), ("fp", None))
        out.append(Mistake(kind, str(ip.pred_cls[k[i]]), None if j is None else str(ip.gt_cls[j]),
                           float(ip.pred_conf[k[i]]), best, pxy[i], None if j is None else gxy[j]))
    for j in fn:
        if j in free:
            best = float(iou[:, j].max()) if iou.shape[0] else 0.0
            out.append(Mistake("fn", str(ip.gt_cls[j]), None, None, best, gxy[j]))
    out.sort(key=lambda m: (KIND_ORDER[m.kind], -(m.conf or 0.0), m.cls, float(m.box[0])))
    return ImageErrors(ip, pxy[mt.gt_of >= 0], out)


def collect(preds: Sequence[ImagePreds], thresholds: dict[str, float], max_boxes: int = MAX_BOXES,
            iou_thr: float = IOU_THR) -> list[ImageErrors]:
    """The photos with at least one mistake, worst first (most FP + FN, as the metric counts them), then by name."""
    found = []
    for ip in preds:
        e = image_errors(ip, image_matches(ip, thresholds, max_boxes, iou_thr), iou_thr)
        if e.mistakes:
            found.append(e)
    found.sort(key=lambda e: (-(e.n_fp + e.n_fn), e.ip.name))
    return found


# ----------------------------------------------------------------------------------------------------------------
# the folder


def check_dir(folder: str | Path) -> None:
    """Before the predictions: ``folder`` must be new, empty, or an earlier ``--errors`` folder (holding its
    errors.csv); anything else is a UsageError (exit 2), so that no folder of other files is written into."""
    from .atomic import own_folder

    own_folder(folder, CSV_NAME, "--errors", "patrol eval --errors")


def _clear_earlier(d: Path) -> int:
    """Remove what an earlier ``--errors`` run wrote into ``d`` (the photos its errors.csv names, the csv, the
    index), so that photos now right leave no stale drawing; other files stay. Returns how many were removed."""
    csv_path = d / CSV_NAME
    if not csv_path.is_file():
        return 0
    names = {CSV_NAME, INDEX_NAME}
    try:
        with open(csv_path, encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                n = (row.get("drawn") or "").strip()
                if n and n == Path(n).name and n.lower().endswith(".jpg"):
                    names.add(n)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UsageError(f"cannot read the earlier {CSV_NAME}: {e}; give a new or empty folder", d, "--errors") from None
    n = 0
    for name in sorted(names):
        try:
            (d / name).unlink()
            n += 1
        except FileNotFoundError:
            pass
    return n


def _drawn_names(found: list[ImageErrors]) -> None:
    """``<stem>.jpg`` per photo; two photos of one stem (a.jpg and a.png, or in two subfolders): ``<stem>-2.jpg``."""
    used: set[str] = {CSV_NAME.lower(), INDEX_NAME.lower()}
    for e in sorted(found, key=lambda e: e.ip.path or e.ip.name):
        stem = Path(e.ip.name).stem
        name, i = f"{stem}.jpg", 1
        while name.lower() in used:
            i += 1
            name = f"{stem}-{i}.jpg"
        used.add(name.lower())
        e.drawn = name


# ----------------------------------------------------------------------------------------------------------------
# drawing


def _dashed_rect(img, box, color, t: int, dash: int) -> None:
    import cv2

    x1, y1, x2, y2 = (int(round(v)) for v in box)
    for (ax, ay, bx, by) in ((x1, y1, x2, y1), (x2, y1, x2, y2), (x2, y2, x1, y2), (x1, y2, x1, y1)):
        length = max(abs(bx - ax), abs(by - ay))
        for s in range(0, max(length, 1), 2 * dash):
            e = min(s + dash, length)
            f0, f1 = s / max(length, 1), e / max(length, 1)
            cv2.line(img, (int(ax + (bx - ax) * f0), int(ay + (by - ay) * f0)),
                     (int(ax + (bx - ax) * f1), int(ay + (by - ay) * f1)), color, t, cv2.LINE_AA)


def _label(img, text: str, x: int, y: int, color, fs: float, t: int, below: bool = False) -> None:
    """Text on a filled box of ``color`` just above (x, y) (``below``: just below it), on the other side where the
    photo's edge leaves no room."""
    import cv2

    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, t)
    x = int(min(max(x, 0), max(img.shape[1] - w - 2, 0)))
    above, under = y - h - base - 2, y + 1
    y0 = (under if under + h + base + 2 <= img.shape[0] else above) if below else (above if above >= 0 else under)
    cv2.rectangle(img, (x, y0), (x + w + 2, y0 + h + base + 2), color, -1)
    dark = sum(color) / 3 > 110
    cv2.putText(img, text, (x + 1, y0 + h + 1), cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0) if dark else (255, 255, 255),
                t, cv2.LINE_AA)


def draw(img: np.ndarray, e: ImageErrors) -> np.ndarray:
    """The photo with its matches and mistakes drawn, and a legend strip below it (the photo's pixels keep their
    coordinates: box (x, y) is pixel (x, y) of the result)."""
    import cv2

    h, w = img.shape[:2]
    s = max(1.0, max(h, w) / 640)
    t1, t2 = max(1, round(s)), max(2, round(2 * s))
    fs, ft = 0.45 * s, max(1, round(s))
    out = img.copy()
    for b in e.tp_boxes:
        cv2.rectangle(out, (int(round(b[0])), int(round(b[1]))), (int(round(b[2])), int(round(b[3]))), GREEN, t1)
    for m in e.mistakes:  # the misses first: an FP's label goes on top of them
        if m.kind == "fn":
            _dashed_rect(out, m.box, YELLOW, t2, max(4, round(6 * s)))
        elif m.kind in ("wrong_class", "misplaced"):  # the true box it missed, thin
            _dashed_rect(out, m.true_box, MAGENTA if m.kind == "wrong_class" else CYAN, t1, max(4, round(6 * s)))
    for m in e.mistakes:
        b = [int(round(v)) for v in m.box]
        if m.kind == "fn":
            _label(out, f"missed {m.cls}", b[0], b[3] + t2, YELLOW, fs, ft, below=True)  # not over a small crack
        elif m.kind == "fp":
            cv2.rectangle(out, (b[0], b[1]), (b[2], b[3]), RED, t2)
            _label(out, f"{m.cls} {m.conf:.2f}", b[0], b[1], RED, fs, ft)
        elif m.kind == "duplicate":
            cv2.rectangle(out, (b[0], b[1]), (b[2], b[3]), ORANGE, t2)
            _label(out, f"dup {m.cls} {m.conf:.2f}", b[0], b[1], ORANGE, fs, ft)
        elif m.kind == "misplaced":
            cv2.rectangle(out, (b[0], b[1]), (b[2], b[3]), CYAN, t2)
            _label(out, f"off {m.cls} {m.conf:.2f}", b[0], b[1], CYAN, fs, ft)
        else:
            cv2.rectangle(out, (b[0], b[1]), (b[2], b[3]), MAGENTA, t2)
            _label(out, f"{m.cls} {m.conf:.2f} (true {m.true_cls})", b[0], b[1], MAGENTA, fs, ft)
    return np.vstack([out, _legend(w, e, s)])


def _counts(e: ImageErrors) -> str:
    """The photo's mistakes by kind (a wrong class and a misplaced box are one FP and one FN each, a duplicate one FP)."""
    return (f"{e.n_kind('fp')} FP  {e.n_kind('fn')} FN  {e.n_kind('wrong_class')} wrong class  "
            f"{e.n_kind('duplicate')} duplicate  {e.n_kind('misplaced')} misplaced")


def _legend(w: int, e: ImageErrors, s: float) -> np.ndarray:
    import cv2

    fs, ft = 0.42 * s, max(1, round(s))
    weight = {"thin": max(1, round(s)), "thick": max(2, round(2 * s))}  # as draw()'s t1, t2
    items = [*LEGEND, (None, _counts(e), ())]
    (_, th), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, fs, ft)
    row_h, sw, pad = th + base + int(8 * s), int(18 * s), int(6 * s)
    rows, x = [[]], pad
    for it in items:  # wrap into rows that fit the photo's width
        tw = cv2.getTextSize(it[1], cv2.FONT_HERSHEY_SIMPLEX, fs, ft)[0][0] + len(it[2]) * (sw + pad) + 2 * pad
        if x + tw > w and rows[-1]:
            rows.append([])
            x = pad
        rows[-1].append((x, it))
        x += tw
    strip = np.full((row_h * len(rows) + pad, w, 3), 40, dtype=np.uint8)
    for r, row in enumerate(rows):
        y = pad + r * row_h + row_h // 2
        for x, (color, text, swatches) in row:
            for line, wt in swatches:  # drawn as the boxes are: solid or dashed, thin or thick
                box = (x, y - th // 2, x + sw, y + th // 2)
                if line == "dashed":
                    _dashed_rect(strip, box, color, weight[wt], max(3, round(4 * s)))
                else:
                    cv2.rectangle(strip, box[:2], box[2:], color, weight[wt])
                x += sw + pad
            cv2.putText(strip, text, (x, y + th // 2), cv2.FONT_HERSHEY_SIMPLEX, fs, (235, 235, 235), ft, cv2.LINE_AA)
    return strip


def _legend_html() -> str:
    """The legend of the drawings for index.html: CSS swatches, solid or dashed, thin or thick, as the boxes are
    drawn (on the strip's dark grey, where yellow and cyan show)."""
    px = {"thin": 1, "thick": 2}
    out = []
    for (b, g, r), text, swatches in LEGEND:
        sw = "".join(f"<span class='sw' style='border:{px[wt]}px {line} #{r:02x}{g:02x}{b:02x}'></span>"
                     for line, wt in swatches)
        out.append(f"<span class='it'>{sw} {html.escape(text)}</span>")
    return "<p class='legend'>" + " ".join(out) + "</p>"


# ----------------------------------------------------------------------------------------------------------------
# writing


def _rows(found: list[ImageErrors], cfg: Config):
    from .report import safe_cell

    for e in found:
        for m in e.mistakes:
            yield [safe_cell(e.ip.name), e.ip.source, m.kind, m.cls, cfg.class_name(m.cls, "ja"),
                   m.true_cls or "", cfg.class_name(m.true_cls, "ja") if m.true_cls else "",
                   "" if m.conf is None else f"{m.conf:.3f}", f"{m.best_iou:.3f}",
                   *(f"{v:.1f}" for v in m.box), e.drawn if e.drawn else "",
                   *(("",) * 4 if m.true_box is None else (f"{v:.1f}" for v in m.true_box))]


def write_csv(found: list[ImageErrors], cfg: Config, path: Path) -> None:
    """UTF-8 with BOM (Japanese Excel), one row per mistake, the worst photos first."""
    from .atomic import atomic_write

    with atomic_write(path, "w", encoding="utf-8-sig", newline="") as fh:
        wr = csv.writer(fh, lineterminator="\r\n")
        wr.writerow(COLUMNS)
        wr.writerows(_rows(found, cfg))


def write_index(found: list[ImageErrors], path: Path, title: str) -> None:
    """A plain page of the drawn photos, worst first, under the drawings' legend (no script, no network: opens from
    the folder)."""
    from .atomic import atomic_write_text

    esc = html.escape
    parts = [f"<!doctype html><meta charset='utf-8'><title>{esc(title)}</title>",
             "<style>body{font:14px sans-serif;margin:12px}figure{display:inline-block;margin:6px;vertical-align:top}"
             "img{max-width:420px;height:auto}figcaption{max-width:420px}"
             ".legend{background:#282828;color:#ebebeb;padding:6px 10px;display:inline-block;line-height:1.9}"
             ".it{white-space:nowrap;margin-right:14px}.sw{display:inline-block;box-sizing:border-box;width:24px;"
             "height:14px;margin-right:4px;vertical-align:middle}</style>",
             f"<h1>{esc(title)}</h1><p>{len(found)} photos with mistakes, the worst first; "
             f"<a href='{CSV_NAME}'>{CSV_NAME}</a> lists each one.</p>", _legend_html()]
    for e in found:
        cap = f"{esc(e.ip.name)}: " + esc(_counts(e).replace("  ", ", "))
        if e.drawn:
            parts.append(f"<figure><a href='{esc(e.drawn)}'><img loading='lazy' src='{esc(e.drawn)}' alt=''></a>"
                         f"<figcaption>{cap}</figcaption></figure>")
    atomic_write_text(path, "\n".join(parts) + "\n")


def write_errors(preds: Sequence[ImagePreds], thresholds: dict[str, float], folder: str | Path, cfg: Config,
                 max_boxes: int = MAX_BOXES, iou_thr: float = IOU_THR, title: str = "patrol eval --errors") -> ErrorsSummary:
    """Draw and list the mistakes of ``preds`` at ``thresholds`` into ``folder`` (see the module doc); a folder of an
    earlier run has that run's files replaced (:func:`check_dir` says which folders are accepted)."""
    import cv2

    from .frames import FrameError, load_image

    d = Path(folder)
    check_dir(d)
    found = collect(preds, thresholds, max_boxes, iou_thr)
    _drawn_names(found)
    summ = ErrorsSummary(d)
    summ.replaced = _clear_earlier(d)
    d.mkdir(parents=True, exist_ok=True)

    def one(e: ImageErrors) -> str | None:
        try:
            img = load_image(e.ip.path)  # as predict_split read it: EXIF orientation applied
        except FrameError as err:
            return f"{e.ip.path}: {err}"
        if img.shape[:2] != (e.ip.height, e.ip.width):
            return f"{e.ip.path}: now {img.shape[1]}x{img.shape[0]}, scored at {e.ip.width}x{e.ip.height} (changed since?)"
        params = [cv2.IMWRITE_JPEG_QUALITY, 90]
        if hasattr(cv2, "IMWRITE_JPEG_SAMPLING_FACTOR"):  # full-resolution colour: a 1 px green line stays green
            params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
        ok, buf = cv2.imencode(".jpg", draw(img, e), params)
        if not ok:
            return f"{e.ip.path}: cannot encode the drawing"
        try:
            (d / e.drawn).write_bytes(buf.tobytes())
        except OSError as err:
            raise InputError(f"cannot write: {err.strerror or err}", d / e.drawn) from None
        return None

    for e, problem in prefetch(one, [e for e in found if e.ip.path]):
        if problem:
            summ.failed.append(problem)
            e.drawn = ""
    for e in found:
        if not e.ip.path:
            e.drawn = ""
    write_csv(found, cfg, d / CSV_NAME)
    write_index(found, d / INDEX_NAME, title)
    summ.n_images = len(found)
    summ.n_drawn = sum(1 for e in found if e.drawn)
    for e in found:
        for m in e.mistakes:
            summ.n_fp += m.kind == "fp"
            summ.n_fn += m.kind == "fn"
            summ.n_wrong_class += m.kind == "wrong_class"
            summ.n_duplicate += m.kind == "duplicate"
            summ.n_misplaced += m.kind == "misplaced"
    return summ
