"""`patrol label-set`: which frames of a city's own drives to label first, with the model's boxes as a head start.

The drives' frames are read as ``patrol detect`` reads them (``pipeline.scan_drives``: a broken file is a rejected
frame with its reason, a video's frames are taken as JPEGs, frames without a GPS fix placed from the track files in
the drives and the ``--track`` ones, a frame without a position still used), every usable frame is predicted at a
low confidence, and ``n`` frames are chosen:

* **uncertain** (``UNCERTAIN_SHARE``): frames with a borderline call, a detection whose confidence lies within
  ``BORDER`` of its class's tuned threshold; the more such calls and the nearer the threshold, the sooner taken;
* **confident** (``CONFIDENT_SHARE``): frames with a hit at least ``BORDER`` above its threshold (and no borderline
  call), the most confident first, so the set also holds what the model gets right;
* **background** (``BACKGROUND_SHARE``): frames with nothing at or above the pre-label confidence (YOLO trains on
  empty photos too), taken evenly along the drive.

Every frame is one of the three. A share its kind cannot fill is filled from the others (uncertain first). A frame
too dark, glared or blurred to show the road (its ``look``, measured as the detect stage measures it and judged by
the config's ``frames.look_*``) is taken only where frames of a good look cannot fill ``n`` (``POOR_LOOK_LAST``). The
picks are spread: two chosen frames
lie at least ``MIN_GAP_S`` seconds apart in their drive (frames without a time: ``MIN_GAP_FRAMES`` frames) and at
least ``MIN_GAP_M`` metres apart where both have a position (in any drive: two passes over one spot are one spot).
Where the drives are too short for ``n`` frames so spread, both gaps are halved until ``n`` are found (the summary
says the gap used).

Written into OUT in the layout ``patrol train`` reads with Pascal VOC labels: ``images/<name>.jpg`` (the frame as the
pipeline sees it: EXIF orientation applied, saved without an orientation tag), ``annotations/xmls/<name>.xml``
(LabelImg's own format; the detections at or above their class's threshold less ``PRELABEL_BELOW``: every
borderline call and every hit), ``train.txt`` and
``val.txt`` (the split below), ``data.yaml`` over them (``path: .``: the folder may be copied elsewhere),
``README.txt`` (the next steps, Japanese and English, its paths relative to OUT), ``label-set.json`` (each label
file's boxes as written: train, tune and eval tell the unchecked ones, :func:`unchecked_prelabels`; each label file
also carries its own mark, :data:`MARK_TAG`, which LabelImg's save drops), ``frames.csv`` (every file read, as
detect's: rejected ones with their reason; a video frame's ``path`` one that outlives label-set, :func:`kept_paths`)
and ``label-set.csv`` (UTF-8 with BOM, one row per chosen frame, its ``split``).

The split is by place, not every k-th pick: consecutive picks can show one pothole (from 25 m and from 5 m), and a
val photo of a damage that is also in train makes the val score optimistic. Val is whole stretches of road
(:func:`val_zone`): in each drive the frames around ``VAL_STRETCHES`` along it (by time; frames without one by their
order), ``VAL_SHARE`` of its frames in all (one stretch at the middle of a drive of fewer than
``VAL_TWO_STRETCHES`` frames), and the frames of any drive within ``VAL_REACH_M`` of them (another
pass over the same stretch; a drive that such passes already give half its share gets no stretch of its own).
``VAL_SHARE`` of the picks (at least one where two or more are chosen) are taken from there, with the kinds' shares;
the train picks from the other frames, none within ``SPLIT_GAP_M`` of a val pick where both have a position, else
(in the same drive) ``SPLIT_GAP_S`` seconds (``SPLIT_GAP_FRAMES`` frames without a time). Where train runs short
(``n`` near the usable frames) val is cut to ``VAL_SHARE`` of the picks (:func:`val_share`), not grown. Where no
stretch can be set apart (drives of one frame) the last pick is val and the summary says val is not kept apart. Where no frame
has a position (no GPS, no track file) all of this is by time within each drive, and nothing keeps two drives apart:
the summary warns once (:func:`unplaced_warning`), naming ``--track``; it warns once per drive where some of the
drive's frames have no position (none, or GPS lost in a tunnel, a track covering part of the drive), with how many.

Every frame's predictions and look are kept in ``OUT/.work`` (:class:`PredictionCache`): a label-set again into OUT
predicts only the frames not predicted there before with this model and these settings; the file is compacted
(rewritten with its live lines) once its stale lines outnumber them.

A drive is named by its folder; two drives of one folder name (two cars' ``2026-11-20``) by the shortest end of
their paths that tells them apart (``car1/2026-11-20``), and are separate drives for the spread rule."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import Config
from .errors import InputError, UsageError

# the mix of the chosen frames (shares of n; a share its kind cannot fill goes to the others)
UNCERTAIN_SHARE = 0.60
CONFIDENT_SHARE = 0.25
BACKGROUND_SHARE = 0.15
BORDER = 0.15  # a detection within this of its class's threshold is a borderline call
PREDICT_CONF = 0.10  # every frame is predicted at this confidence (lower where a threshold needs it)
# pre-labels: detections at or above their class's threshold less this (the borderline band's floor). On the sample
# drive's 192 frames against their true boxes (shipped model) it leaves the labeller 107 wrong boxes to delete and 67
# to draw (174 edits); half the threshold: 127 and 63 (190); the threshold itself: 73 and 78 (151, but the borderline
# calls below it, the reason a frame was chosen, would not be shown)
PRELABEL_BELOW = BORDER  # (not more: a frame below the band and above the floor would be of no kind)
# spread: two chosen frames at least this far apart (halved until n frames are found)
MIN_GAP_S = 3.0
MIN_GAP_M = 20.0
MIN_GAP_FRAMES = 3  # frames without a time: this many frames apart in their drive
# the split (module docstring): val is VAL_SHARE of the picks, taken from stretches of road around VAL_STRETCHES (the
# fraction of each drive's frames at their middle), every train pick at least SPLIT_GAP_M from every val pick (a
# dashcam frame shows the road ~30 m ahead: one damage is seen from 25 m and from 5 m), or SPLIT_GAP_S seconds in the
# same drive where one of the two has no position (SPLIT_GAP_FRAMES frames without a time)
VAL_SHARE = 0.20
VAL_STRETCHES = (0.25, 0.75)  # a drive of fewer than VAL_TWO_STRETCHES frames: one stretch, at the middle (each
# stretch costs the frames of its gaps on both sides)
VAL_TWO_STRETCHES = 200
VAL_REACH_M = 25.0  # another drive's frame this near a stretch's frame is on that stretch (val)
SPLIT_GAP_M = 50.0
SPLIT_GAP_S = 10.0
SPLIT_GAP_FRAMES = 10
JPEG_QUALITY = 95
# frames whose look (frames.csv: too dark, glared, blurred by the config's frames.look_* thresholds, as a run judges
# them) are chosen only where frames of a good look cannot fill n (in val or train): a person cannot label a damage
# the frame does not show, and its label without a box would teach the model that there is none
POOR_LOOK_LAST = True

# every frame's predictions (at low_conf) kept in OUT/.work for the next label-set into OUT (another --n, a drive
# added, a re-run after an error): a frame whose file, model and settings are as before is not predicted again
# (:class:`PredictionCache`). Outside images/ and annotations/ (nothing of it is trained on), kept by _clear_earlier
CACHE_NAME = "label-set-predictions.jsonl"
# the cache is rewritten with its live lines alone once its stale ones (lines no label-set can look up again: a photo
# replaced or touched, deleted, predicted twice) are more than this many times the live ones: the file stays under
# about twice what the frames it serves need, and the rewrite (one line per live frame) is paid at most once per so
# many appended lines
COMPACT_STALE_SHARE = 1.0
CSV_NAME = "label-set.csv"
FRAMES_CSV = "frames.csv"  # every file of the drives read, as a run's frames.csv: rejected ones with their reason
# what label-set wrote into each label file (its boxes' key, :func:`boxes_key`), so that train, tune and eval can tell
# the label files nobody has checked yet (:func:`unchecked_prelabels`); a visible file beside label-set.csv: it goes
# wherever the folder is copied (a dot file is left behind by `cp DIR/*`, and hidden by Finder and Explorer's zips)
RECORD_NAME = "label-set.json"
# label-set's mark in each label file it writes (``<prelabel by="patrol label-set" boxes="KEY"/>``, KEY the
# :func:`boxes_key` of the boxes written): LabelImg rewrites a file from its own writer when it saves
# (libs/pascal_voc_io.py: folder, filename, path, source, size, segmented, the objects; ``verified`` once Space is
# pressed), so a file still marked with its boxes unchanged was not saved in LabelImg since: unchecked, with or
# without label-set.json (deleted, or the images and annotations copied elsewhere without it). Pascal VOC readers
# (ours, ultralytics', LabelImg's) read <object> and <size> and pass over other elements
MARK_TAG = "prelabel"
# patrol train refuses a label-set more than this share of whose label files are unchecked (--unchecked-ok goes on)
UNCHECKED_REFUSE = 0.5
COLUMNS = ("image", "drive", "frame", "time", "lat", "lon", "reason", "split", "prelabels", "borderline")
REASONS = ("uncertain", "confident", "background")


@dataclass
class FramePred:
    frame: object  # frames.Frame
    xyxy: np.ndarray
    conf: np.ndarray
    cls: np.ndarray  # class ids (D00 …)
    width: int
    height: int


@dataclass
class Pick:
    pred: FramePred
    reason: str
    image: str = ""  # the file name in OUT/images
    split: str = "train"  # or "val"


@dataclass
class LabelSetSummary:
    out: Path
    frames_total: int = 0
    frames_ok: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (drive/name, reason)
    available: Counter = field(default_factory=Counter)  # usable frames by kind (uncertain, confident, …)
    chosen: Counter = field(default_factory=Counter)
    gap_s: float = MIN_GAP_S
    gap_m: float = MIN_GAP_M
    gap_frames: float = MIN_GAP_FRAMES
    replaced: int = 0
    val_apart: bool = True  # False: no stretch could be set apart (drives of one frame), the last pick is val
    seconds: float = 0.0
    predict_seconds: float = 0.0
    predicted: int = 0  # frames the model was run on (decoded: rejected ones too)
    from_cache: int = 0  # frames whose predictions (or decode rejection) came from OUT/.work (PredictionCache)
    cache_dropped: int = 0  # stale lines dropped from the cache (PredictionCache.compact; 0: not rewritten)
    poor_look: int = 0  # usable frames too dark, glared or blurred to show the road (frames.csv's look)
    chosen_poor: int = 0  # of them chosen (only where good ones could not fill n)
    picks: list[Pick] = field(default_factory=list)
    videos: list = field(default_factory=list)
    tracks: list = field(default_factory=list)  # frames.TrackUse per track file, found in a drive or given (--track)
    frames_from_track: int = 0  # usable frames placed from a track file
    frames_placed: int = 0  # usable frames with a position (EXIF GPS, interpolated or a track's)
    warnings: list[str] = field(default_factory=list)  # the track files', videos' and datums' (as run), no position
    frames: list = field(default_factory=list)  # every frame read (frames.csv)


# --------------------------------------------------------------------------------------------- the folder


def check_dir(out: str | Path) -> None:
    """Before anything is predicted: OUT must be new, empty or an earlier label-set (its label-set.csv there) in
    which no label file was saved after it was written (labelling has begun: nothing of it is replaced); else a
    UsageError (exit 2)."""
    from .atomic import own_folder

    d = Path(out)
    if _only_cache(d) or not own_folder(d, CSV_NAME, "--out", "patrol label-set"):
        return
    written = (d / CSV_NAME).stat().st_mtime
    xmls = d / "annotations" / "xmls"
    if xmls.is_dir():
        later = sorted(p.name for p in xmls.glob("*.xml") if p.stat().st_mtime > written + 1.0)
        if later:
            raise UsageError(f"an earlier label-set whose labels are being edited ({len(later)} saved after it was "
                             f"written, e.g. {later[0]}): nothing of it is replaced; give a new folder", d, "--out")


def _only_cache(d: Path) -> bool:
    """Does ``d`` hold nothing but label-set's prediction cache (a label-set stopped while predicting, Ctrl+C or an
    error, before it wrote anything else)? Such a folder is taken as new, its cache used."""
    from .pipeline import WORK

    try:  # (a compaction's temp file, left by a label-set killed while rewriting it: PredictionCache.compact)
        return ({e.name for e in os.scandir(d)} == {WORK}
                and all(e.name == CACHE_NAME or (e.name.startswith(f".{CACHE_NAME}.") and e.name.endswith(".tmp"))
                        for e in os.scandir(d / WORK)))
    except OSError:
        return False


def _clear_earlier(d: Path) -> int:
    """Remove what an earlier label-set wrote into ``d`` (the images and labels its csv names, its other files);
    other files stay, the prediction cache (``.work``, :class:`PredictionCache`) too. Returns how many were
    removed."""
    csv_path = d / CSV_NAME
    if not csv_path.is_file():
        return 0
    paths = [d / n for n in (CSV_NAME, RECORD_NAME, FRAMES_CSV, "README.txt", "data.yaml", "train.txt", "val.txt")]
    with open(csv_path, encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            n = (row.get("image") or "").strip()
            if n and n == Path(n).name and n.lower().endswith(".jpg"):
                paths += [d / "images" / n, d / "annotations" / "xmls" / (n[:-4] + ".xml")]
    n = 0
    for p in paths:
        if p.is_file():
            p.unlink()
            n += 1
    return n


# ------------------------------------------------------------------------------------------ prediction


def low_conf(thresholds: dict[str, float]) -> float:
    """The confidence every frame is predicted at: low enough for every borderline call and pre-label."""
    lows = [t - max(BORDER, PRELABEL_BELOW) for t in thresholds.values()]
    return max(0.001, min([PREDICT_CONF, *lows]))


class PredictionCache:
    """Every frame's predictions at :func:`low_conf` and its look (``pipeline.look_record``: brightness, clipped
    share, sharpness), kept in ``OUT/.work/`` :data:`CACHE_NAME` for the next label-set into OUT: the detect stage's
    journal (``pipeline.DetectJournal``: a header line with the key, one line per frame appended and synced per
    batch, a torn last line cut off, a journal of another key started afresh), its key what decides the boxes (the
    weights file's whole-file hash, ``detect:`` imgsz, iou, max_det and device, the confidence floor), each line
    looked up by the frame file's identity (:func:`frame_id`). Lines are full-precision floats: a frame taken from
    the cache has the boxes a fresh prediction gives.

    Appended to, so it holds lines no run can look up again: a photo replaced or touched under its name (a new
    identity; its old line stays), deleted, or one frame predicted twice (a folder given twice). :meth:`compact`,
    after a label-set has predicted: where such stale lines outnumber the live ones (:data:`COMPACT_STALE_SHARE`),
    the file is rewritten atomically (``atomic.atomic_write``) with one line per live frame."""

    def __init__(self, out: Path, weights: Path, cfg: Config, conf: float):
        from .pipeline import WORK, DetectJournal, weights_fingerprint

        detect = cfg.detect.model_dump(mode="json")
        # v2: each line carries the frame's look
        key = {"weights": weights_fingerprint(Path(weights)), "conf": conf, "v": 2,
               "detect": {k: v for k, v in detect.items() if k not in ("weights", "batch")}}
        self.key = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()
        self.path = Path(out) / WORK / CACHE_NAME
        self.journal = DetectJournal(self.path, self.key, record_key=lambda r: r["id"])
        self.used: set[str] = set()  # the ids this label-set looked up and found, or added

    def get(self, fid: str | None) -> dict | None:
        rec = None if fid is None else self.journal.done.get(fid)
        if rec is not None:
            self.used.add(fid)
        return rec

    def add(self, records: Sequence[dict]) -> None:
        self.journal.append([r for r in records if r["id"] is not None])
        for r in records:
            if r["id"] is not None:
                self.journal.done[r["id"]] = r
                self.used.add(r["id"])

    def close(self) -> None:
        self.journal.close()

    def live(self) -> dict[str, dict]:
        """The records a label-set can still look up, the last line of each id: those this one used or added, a
        video frame's (its JPEG's hash: not told without decoding the video again), and a photo's whose file is
        still there with the size and modification time of its id (a drive not given this time stays cached)."""
        from .pipeline import _file_id

        keep = {}
        for fid, rec in self.journal.done.items():
            if fid in self.used or not fid.startswith("["):
                keep[fid] = rec
                continue
            try:
                path, *ident = json.loads(fid)
            except (ValueError, TypeError):
                continue
            if _file_id(Path(path)) == ident:
                keep[fid] = rec
        return keep

    def compact(self) -> int:
        """Rewrite the file with :meth:`live`'s records alone where its stale lines (the others, and every line but
        the last of an id) are more than :data:`COMPACT_STALE_SHARE` of the live ones; atomically: a label-set
        killed meanwhile leaves the file as it was. Returns the lines dropped (0: not rewritten). After
        :meth:`close`."""
        from .atomic import atomic_write

        lines = self.journal.lines
        if lines - len(self.used) <= COMPACT_STALE_SHARE * len(self.used):
            return 0  # (live holds at least the used ones: no file to stat)
        live = self.live()
        if lines - len(live) <= COMPACT_STALE_SHARE * len(live):
            return 0
        with atomic_write(self.path, "wb") as fh:
            fh.write(json.dumps({"key": self.key}).encode() + b"\n")
            fh.writelines(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in live.values())
        return lines - len(live)


def frame_id(f, video_dir: Path | None = None) -> str | None:
    """What a frame's predictions are kept by (:class:`PredictionCache`): a photo's file by its path (links
    resolved), size and modification time (``pipeline._file_id``, as the detect stage's journal: a file replaced
    under its name is predicted again); a frame taken from a video into ``video_dir`` (a temporary folder, written
    anew by each label-set) by its JPEG's bytes (sha1). None where the file cannot be read (not kept)."""
    from .pipeline import _file_id

    p = Path(f.path)
    if video_dir is not None and p.absolute().is_relative_to(Path(video_dir).absolute()):
        try:
            return "sha1:" + hashlib.sha1(p.read_bytes()).hexdigest()
        except OSError:
            return None
    fid = _file_id(p)
    return None if fid is None else json.dumps([str(p.resolve()), *fid])


def _pred_of(f, rec: dict) -> FramePred:
    b = np.asarray([x[:5] for x in rec["boxes"]], dtype=float).reshape(-1, 5)
    return FramePred(f, b[:, :4].copy(), b[:, 4].copy(), np.asarray([x[5] for x in rec["boxes"]], dtype=object),
                     int(rec["w"]), int(rec["h"]))


def drive_labels(drives: Sequence[Path]) -> list[str]:
    """Each drive's name in label-set.csv and the image names: its folder's name (``frames.drive_name``), or where
    two drives share it (two cars' ``2026-11-20``) the shortest end of its path (links resolved, ``/``-separated)
    that no other drive's path ends in: ``car1/2026-11-20``, ``car2/2026-11-20``. The same folder given twice is
    named by its whole path both times."""
    parts = [Path(d).resolve().parts for d in drives]
    labels = []
    for i, p in enumerate(parts):
        k = 1
        while k < len(p) and any(q[-k:] == p[-k:] for j, q in enumerate(parts) if j != i):
            k += 1
        labels.append(Path(*p[-k:]).as_posix())
    return labels


def read_and_predict(drives: Sequence[Path], cfg: Config, weights: Path, out: Path, video_dir: Path,
                     progress=None, summary: LabelSetSummary | None = None, tracks: Sequence[Path] = ()
                     ) -> list[FramePred]:
    """The drives' frames (``pipeline.scan_drives``, as ``patrol detect`` reads them: the ``tracks`` (``--track``)
    placing frames without their own fix in every drive, a frame without a position still predicted) and the
    model's boxes on each usable one at :func:`low_conf`. ``summary.frames`` gets every frame (rejected ones with
    their reason, frames.csv)."""
    from .frames import _decode, apply_look, decoded_batches
    from .infer import load_detector
    from .pipeline import detect_unplaced, look_record, scan_drives, take_look

    summary = summary or LabelSetSummary(out=out)
    drives = [Path(d) for d in drives]
    for d in drives:
        if not d.is_dir():
            raise InputError("not a folder" if d.exists() else "folder not found", d)
    task = progress.add_task("Reading frames", total=len(drives)) if progress else None
    # each drive's video frames in a folder of its own: two drives of one name (a/day1, b/day1), each with its
    # dashcam.mp4, would share one (scan keys it by the drive's name), the second's extraction replacing the
    # first's frames (its JPEGs then show the other video, or are gone); two drives of one folder name are told
    # apart (drive_labels: label-set.csv, names, the spread rule)
    frames = scan_drives(drives, cfg, out, tracks, summary, progress,
                         done=(lambda i: progress.advance(task)) if progress else None,
                         video_dirs=[video_dir / str(i) for i in range(len(drives))], names=drive_labels(drives))
    detect_unplaced(frames)  # as patrol detect
    summary.frames = frames
    summary.frames_total = len(frames)
    todo = [f for f in frames if f.status == "ok"]
    summary.rejected = [(f"{f.drive}/{f.name}", f.reason) for f in frames if f.status != "ok"]
    if not todo:
        raise InputError(f"no usable frames ({len(frames)} files, all rejected: "
                         + "; ".join(f"{n}: {r}" for n, r in summary.rejected[:5]) + ")" if frames else
                         "no image files", drives[0])
    conf = low_conf(cfg.thresholds())
    t0 = time.perf_counter()
    cache = PredictionCache(out, weights, cfg, conf)
    ids = [frame_id(f, video_dir) for f in todo]
    got: dict[int, FramePred | str] = {}  # by position in todo: its prediction, or why it could not be decoded
    for i, (f, fid) in enumerate(zip(todo, ids)):
        rec = cache.get(fid)
        if rec is not None:
            got[i] = str(rec["reject"]) if "reject" in rec else _pred_of(f, rec)
            take_look(f, rec)
    summary.from_cache = len(got)
    rest = [i for i in range(len(todo)) if i not in got]
    summary.predicted = len(rest)
    task = (progress.add_task("Predicting", total=len(todo), completed=len(got)) if progress else None)

    def reject(i, err):  # decoded badly: rejected with its reason, as the detect stage does
        got[i] = err or "decode_failed"
        cache.add([{"id": ids[i], "reject": got[i]}])
        if progress:
            progress.advance(task, 1)

    try:
        if rest:
            detector = load_detector(weights, cfg)
            for pending in decoded_batches(rest, cfg.detect.batch, reject, decode=lambda i: _decode(todo[i])):
                recs = []
                for (i, im), (xyxy, c, k) in zip(pending, detector.predict_all([im for _, im in pending], conf)):
                    xyxy, c = np.asarray(xyxy, float).reshape(-1, 4), np.asarray(c, float).reshape(-1)
                    got[i] = FramePred(todo[i], xyxy, c, np.asarray(k, dtype=object), int(im.shape[1]),
                                       int(im.shape[0]))
                    # its look, as the detect stage measures it on the pixels decoded (frames.csv; the choice)
                    recs.append({"id": ids[i], "w": int(im.shape[1]), "h": int(im.shape[0]), "look": look_record(im),
                                 "boxes": [[*map(float, b), float(v), str(kk)] for b, v, kk in zip(xyxy, c, k)]})
                    take_look(todo[i], recs[-1])
                cache.add(recs)
                if progress:
                    progress.advance(task, len(pending))
    finally:
        cache.close()
    summary.cache_dropped = cache.compact()
    preds: list[FramePred] = []
    for i, f in enumerate(todo):  # in the frames' order, wherever their predictions came from
        if isinstance(got[i], FramePred):
            preds.append(got[i])
            continue
        f.status, f.reason = "rejected", got[i]
        summary.rejected.append((f"{f.drive}/{f.name}", f.reason))
    summary.predict_seconds = time.perf_counter() - t0
    apply_look(frames, cfg.frames)  # the verdict by this config's thresholds, as the detect stage gives it
    summary.frames_ok = len(preds)
    summary.poor_look = sum(bool(p.frame.look) for p in preds)
    summary.frames_from_track = sum(p.frame.position_source == "track_file" for p in preds)
    summary.frames_placed = sum(math.isfinite(p.frame.lat) and math.isfinite(p.frame.lon) for p in preds)
    placed = Counter(p.frame.drive for p in preds if math.isfinite(p.frame.lat) and math.isfinite(p.frame.lon))
    if not summary.frames_placed:
        summary.warnings.append(unplaced_warning(summary.frames_ok))
    else:
        usable = Counter(p.frame.drive for p in preds)
        summary.warnings.extend(unplaced_warning(k, d, k - placed[d]) for d, k in usable.items() if placed[d] < k)
    return preds


def unplaced_warning(n: int, drive: str | None = None, unplaced: int | None = None) -> str:
    """What label-set says once when none of its ``n`` usable frames has a position (no EXIF GPS, no track file),
    or (``drive``) once per drive with frames without one while other frames have one: none of its ``n``, or
    ``unplaced`` of them (GPS lost in a tunnel, a track file that covers part of the drive)."""
    if drive is not None and unplaced is not None and unplaced < n:
        return (f"{drive}: {unplaced} of its {n} frames have no position (GPS lost, in a tunnel or under an elevated "
                "road, or a track file that covers only part of the drive): those are spread and split by time "
                f"alone, kept {SPLIT_GAP_S:g} s from the val or train frames of the drive, not {SPLIT_GAP_M:g} m from "
                "the other frames by place (another pass over the same road may show one damage in both); give a "
                "GPS log that covers them with --track FILE for a split by place")
    if drive is not None:
        return (f"{drive}: none of its {n} frames has a position (no GPS in the photos or videos, no track file): its "
                f"val and train frames are kept {SPLIT_GAP_S:g} s apart in the drive, not {SPLIT_GAP_M:g} m from "
                "the other drives' (a pass over the same road may show one damage in both); give its GPS log with "
                "--track FILE for a split by place")
    return (f"none of the {n} frames has a position (no GPS in the photos or videos, no track file in the drives nor "
            "given with --track): the picks are spread and val is split by time alone, whole stretches of each drive "
            f"(by the frames' order where they have no time), every train frame at least {SPLIT_GAP_S:g} s from "
            "every val frame of its drive, and nothing keeps two drives apart: another pass over the same road may "
            "show a val frame's damage in train; give the drive's GPS log with --track FILE (GPX, NMEA, CSV, KML) "
            "for a split by place")


# ------------------------------------------------------------------------------------------- the choice


def _thr(p: FramePred, thresholds: dict[str, float]) -> np.ndarray:
    return np.array([thresholds.get(str(c), 1.0) for c in p.cls], dtype=float)


def prelabel_mask(p: FramePred, thresholds: dict[str, float]) -> np.ndarray:
    return p.conf >= _thr(p, thresholds) - PRELABEL_BELOW


def borderline_mask(p: FramePred, thresholds: dict[str, float]) -> np.ndarray:
    return np.abs(p.conf - _thr(p, thresholds)) <= BORDER


def kind_of(p: FramePred, thresholds: dict[str, float]) -> tuple[str, float]:
    """(uncertain | confident | background, its rank score: higher is taken sooner). Every frame is one of them:
    a detection at or above the pre-label floor (its threshold less ``PRELABEL_BELOW`` = ``BORDER``) is borderline
    or confident."""
    thr = _thr(p, thresholds)
    near = np.abs(p.conf - thr) <= BORDER
    if near.any():
        return "uncertain", float((1.0 - np.abs(p.conf[near] - thr[near]) / BORDER).sum())
    sure = p.conf >= thr + BORDER
    if sure.any():
        return "confident", float(p.conf[sure].max())
    return "background", 0.0


def _positions(preds: Sequence[FramePred]) -> tuple[np.ndarray, ...]:
    """Per frame: drive number, seconds (NaN: none), x/y metres (NaN: none), frame index."""
    drives = {d: i for i, d in enumerate(dict.fromkeys(p.frame.drive for p in preds))}
    dr = np.array([drives[p.frame.drive] for p in preds], dtype=int)
    t = np.array([p.frame.time.timestamp() if p.frame.time else math.nan for p in preds], dtype=float)
    lat = np.array([p.frame.lat for p in preds], dtype=float)
    lon = np.array([p.frame.lon for p in preds], dtype=float)
    lat0 = np.nanmean(lat) if np.isfinite(lat).any() else 0.0
    y = np.radians(lat) * 6371008.8
    x = np.radians(lon) * 6371008.8 * math.cos(math.radians(lat0))
    idx = np.array([p.frame.index for p in preds], dtype=float)
    return dr, t, x, y, idx


def too_close(i: int, chosen: np.ndarray, pos, gap_s: float, gap_m: float, gap_frames: float) -> bool:
    """Is frame ``i`` closer to one of ``chosen`` than the spread rule allows?"""
    if not len(chosen):
        return False
    dr, t, x, y, idx = pos
    same = dr[chosen] == dr[i]
    dt = np.abs(t[chosen] - t[i])
    timed = np.isfinite(dt)
    near_t = same & np.where(timed, dt < gap_s, np.abs(idx[chosen] - idx[i]) < gap_frames)
    dm = np.hypot(x[chosen] - x[i], y[chosen] - y[i])
    near_m = np.isfinite(dm) & (dm < gap_m)
    return bool((near_t | near_m).any())


def _near_any(cand: np.ndarray, picks: Sequence[int], pos, gap_m: float, gap_s: float, gap_frames: float,
              chunk: int = 4096) -> np.ndarray:
    """Per frame of ``cand`` (indices): is it within the split gap of one of ``picks``? Where both have a position:
    nearer than ``gap_m`` (in any drive); else, in the same drive, less than ``gap_s`` seconds apart (frames
    without a time: ``gap_frames`` frames)."""
    dr, t, x, y, idx = pos
    near = np.zeros(len(cand), dtype=bool)
    q = np.asarray(picks, dtype=int)
    if not len(q) or not len(cand):
        return near
    for lo in range(0, len(cand), chunk):
        c = np.asarray(cand[lo:lo + chunk], dtype=int)[:, None]
        dm = np.hypot(x[c] - x[q], y[c] - y[q])
        placed = np.isfinite(dm)
        dt = np.abs(t[c] - t[q])
        by_time = np.where(np.isfinite(dt), dt < gap_s, np.abs(idx[c] - idx[q]) < gap_frames)
        near[lo:lo + chunk] = np.where(placed, dm < gap_m, (dr[c] == dr[q]) & by_time).any(axis=1)
    return near


def val_zone(pos) -> np.ndarray:
    """Per frame: is it on a val stretch (module docstring)? In drive order, each drive's frames by time (without
    one: by their order) around ``VAL_STRETCHES`` (``VAL_SHARE`` of its frames in all; one stretch at the middle of
    a drive of fewer than ``VAL_TWO_STRETCHES``, none in a drive of one frame), and any drive's placed frames within
    ``VAL_REACH_M`` of a placed stretch frame; a drive whose frames such passes already make half its share val
    gets no stretch of its own (the second pass over a route shares the first's stretches)."""
    dr, t, x, y, idx = pos
    zone = np.zeros(len(dr), dtype=bool)
    placed = np.isfinite(x) & np.isfinite(y)
    for d in range(int(dr.max()) + 1 if len(dr) else 0):
        mine = np.flatnonzero(dr == d)
        if len(mine) < 2 or zone[mine].mean() >= VAL_SHARE / 2:
            continue
        key = np.where(np.isfinite(t[mine]), t[mine], -np.inf)  # frames without a time first, by their order
        mine = mine[np.lexsort((idx[mine], key))]
        centres = VAL_STRETCHES if len(mine) >= VAL_TWO_STRETCHES else ((VAL_STRETCHES[0] + VAL_STRETCHES[-1]) / 2,)
        size = max(1, round(len(mine) * VAL_SHARE / len(centres)))
        core = []
        for c in centres:
            lo = min(max(0, round(c * len(mine) - size / 2)), len(mine) - size)
            core.append(mine[lo:lo + size])
        core = np.concatenate(core)
        zone[core] = True
        pc = core[placed[core]]
        if len(pc):  # another pass over the stretch (and the stretch's own ends, within the reach)
            other = np.flatnonzero(placed & ~zone)
            zone[other[_near_any(other, pc, pos, VAL_REACH_M, 0.0, 0.0)]] = True
    return zone


def val_share(n_train: int) -> int:
    """How many val picks go with ``n_train`` train ones: ``VAL_SHARE`` of the picks in all (rounded half up), at
    least one."""
    return max(1, math.floor(n_train * VAL_SHARE / (1.0 - VAL_SHARE) + 0.5))


def choose(preds: Sequence[FramePred], thresholds: dict[str, float], n: int, summary: LabelSetSummary | None = None
           ) -> list[Pick]:
    """``n`` frames (all of them where there are fewer) by the shares and the spread rule, split into train and
    val by place (module docstring), in drive order."""
    n = min(n, len(preds))
    kinds = [kind_of(p, thresholds) for p in preds]
    if summary is not None:
        summary.available = Counter(k for k, _ in kinds)
    pos = _positions(preds)
    zone = val_zone(pos)
    # a frame too dark, glared or blurred to show the road (its look, frames.csv): a person cannot label what it
    # does not show, and a box-less label of it would teach "no damage here"; taken last (POOR_LOOK_LAST)
    good = np.array([not (POOR_LOOK_LAST and getattr(p.frame, "look", "")) for p in preds], dtype=bool)
    n_val = 0 if n < 2 or not zone.any() else max(1, round(n * VAL_SHARE))

    def quotas(m: int) -> dict[str, int]:
        q = {"confident": round(m * CONFIDENT_SHARE), "background": round(m * BACKGROUND_SHARE)}
        q["uncertain"] = m - q["confident"] - q["background"]
        return q

    order: dict[str, list[int]] = {}
    for k in ("uncertain", "confident"):
        ii = [i for i, (kk, _) in enumerate(kinds) if kk == k]
        order[k] = sorted(ii, key=lambda i: (-kinds[i][1], i))
    bg = [i for i, (kk, _) in enumerate(kinds) if kk == "background"]
    # backgrounds evenly along the drives: every other one by a stride first, the rest after
    stride = max(1, len(bg) // max(1, quotas(n)["background"]))
    first = bg[::stride]
    taken = set(first)
    order["background"] = first + [i for i in bg if i not in taken]
    # the spread rule, halved until n frames are found (the last try: no gap at all)
    tries = [(MIN_GAP_S / 2 ** k, MIN_GAP_M / 2 ** k, MIN_GAP_FRAMES / 2 ** k) for k in range(8)] + [(0.0, 0.0, 0.0)]
    for gap_s, gap_m, gap_f in tries:
        chosen: list[int] = []
        reason: dict[int, str] = {}

        def take(k: str, want: int, allowed: np.ndarray, upto: int) -> int:
            got = 0
            for i in order[k]:
                if got >= want or len(chosen) >= upto:
                    break
                if i in reason or not allowed[i] or too_close(i, np.array(chosen, dtype=int), pos, gap_s, gap_m,
                                                              gap_f):
                    continue
                chosen.append(i)
                reason[i] = k
                got += 1
            return got

        def fill(m: int, allowed: np.ndarray) -> None:
            upto = len(chosen) + m
            want = quotas(m)
            # frames of a poor look (too dark, glared, blurred) only where those of a good look cannot fill m
            for ok in ((allowed & good, allowed) if not good.all() else (allowed,)):
                for k in want:
                    want[k] -= take(k, want[k], ok, upto)
                for k in REASONS:  # shares a kind could not fill
                    take(k, upto - len(chosen), ok, upto)

        everyone = np.arange(len(preds))
        fill(n_val, zone)  # val: from the stretches
        val = list(chosen)
        fill(n - len(chosen), ~zone & ~_near_any(everyone, val, pos, SPLIT_GAP_M, SPLIT_GAP_S, SPLIT_GAP_FRAMES))
        # too few train frames for n (the drives' frames nearly all taken): val is kept to its share of the picks
        # (not filled up from the stretches, as before: 23 val of 90 on the sample pass with --n 200); the val picks
        # beyond it, the last taken (the least wanted of their kinds), are dropped, and the train frames their gap
        # kept out are taken where the spread rule allows (which may let val keep more: until nothing changes)
        while val and len(chosen) < n:
            train = chosen[len(val):]
            keep = val_share(len(train))
            if keep >= len(val):
                break
            for i in val[keep:]:
                del reason[i]
            val = val[:keep]
            chosen[:] = val + train
            had = len(chosen)
            fill(n - len(chosen), ~zone & ~_near_any(everyone, val, pos, SPLIT_GAP_M, SPLIT_GAP_S, SPLIT_GAP_FRAMES))
            if len(chosen) == had:
                break
        if len(chosen) >= n:
            break
    if summary is not None:
        summary.gap_s, summary.gap_m, summary.gap_frames = gap_s, gap_m, gap_f
    val_set = set(val)
    if not val_set and len(chosen) >= 2:  # no stretch to set apart (drives of one frame): the last pick, not apart
        val_set = {max(chosen)}
        if summary is not None:
            summary.val_apart = False
    chosen.sort()
    if summary is not None:
        summary.chosen_poor = sum(not good[i] for i in chosen)
    return [Pick(preds[i], reason[i], split="val" if i in val_set else "train") for i in chosen]


# ------------------------------------------------------------------------------------------------ writing


def unique_names(picks: Sequence[Pick]) -> None:
    """``<drive>_<frame stem>.jpg`` (subfolders and a video's ``@m:ss.s`` kept as ``_``), unique across drives
    whatever the case (two phones both have IMG_0003.jpg)."""
    seen: set[str] = set()
    for p in picks:
        f = p.pred.frame
        stem = f.name.rsplit(".", 1)[0] if "@" not in f.name else f.name
        base = re.sub(r"[^\w.-]+", "_", f"{f.drive}_{stem}").strip("._") or "frame"
        name, k = base, 2
        while name.lower() in seen:
            name, k = f"{base}-{k}", k + 1
        seen.add(name.lower())
        p.image = name + ".jpg"


def voc_xml(filename: str, path: Path, width: int, height: int, boxes: np.ndarray, classes: Sequence[str]) -> str:
    """A Pascal VOC annotation as LabelImg saves it (libs/pascal_voc_io.py: tab-indented, no XML declaration, no
    ``verified`` attribute until a person has checked it): 1-based integer corners, ``truncated`` 1 where the box
    touches the photo's edge, as LabelImg sets it; and label-set's mark (:data:`MARK_TAG`, :func:`boxes_key` of the
    boxes written), which LabelImg's save drops."""
    from xml.sax.saxutils import escape

    obj = []
    for (x1, y1, x2, y2), c in zip(boxes, classes):
        xmin, ymin = int(min(max(round(x1) + 1, 1), width)), int(min(max(round(y1) + 1, 1), height))
        xmax, ymax = int(min(max(round(x2), xmin), width)), int(min(max(round(y2), ymin), height))
        trunc = int(ymax == height or ymin == 1 or xmax == width or xmin == 1)
        obj.append(f"\t<object>\n\t\t<name>{escape(str(c))}</name>\n\t\t<pose>Unspecified</pose>\n"
                   f"\t\t<truncated>{trunc}</truncated>\n\t\t<difficult>0</difficult>\n\t\t<bndbox>\n"
                   f"\t\t\t<xmin>{xmin}</xmin>\n\t\t\t<ymin>{ymin}</ymin>\n\t\t\t<xmax>{xmax}</xmax>\n"
                   f"\t\t\t<ymax>{ymax}</ymax>\n\t\t</bndbox>\n\t</object>\n")
    import xml.etree.ElementTree as ET

    head = ("<annotation>\n\t<folder>images</folder>\n"
            f"\t<filename>{escape(filename)}</filename>\n\t<path>{escape(str(path))}</path>\n"
            "\t<source>\n\t\t<database>Unknown</database>\n\t</source>\n"
            f"\t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>\n\t\t<depth>3</depth>\n\t</size>\n"
            "\t<segmented>0</segmented>\n")
    key = boxes_key(ET.fromstring(head + "".join(obj) + "</annotation>\n"))
    return head + f'\t<{MARK_TAG} by="patrol label-set" boxes="{key}"/>\n' + "".join(obj) + "</annotation>\n"


def boxes_key(root) -> str:
    """What the labeller sees of a Pascal VOC annotation (an ElementTree ``<annotation>``): its objects' class names
    and corners (as LabelImg reads them: ``int(float(text))``), in any order, hashed (16 hex digits). The same for a
    file LabelImg saved again without a change (it rewrites ``<path>``, may reorder or re-indent), another for any
    box moved, added, deleted or renamed."""
    import hashlib

    rows = []
    for obj in root.findall("object"):
        corners = []
        for tag in ("xmin", "ymin", "xmax", "ymax"):
            t = (obj.findtext(f"bndbox/{tag}") or "").strip()
            try:
                corners.append(str(int(float(t))))
            except (ValueError, OverflowError):
                corners.append(t)
        rows.append("\t".join([" ".join((obj.findtext("name") or "").split()), *corners]))
    return hashlib.sha256("\n".join(sorted(rows)).encode("utf-8")).hexdigest()[:16]


def _xml_state(data: bytes) -> tuple[str, bool, str | None] | None:
    """(:func:`boxes_key`, marked verified, the boxes key of label-set's mark or None where unmarked) of a label
    file's bytes, None where they cannot be read as XML (train and eval refuse such a file themselves)."""
    import xml.etree.ElementTree as ET

    if b"<!ENTITY" in data:
        return None
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return None
    mark = root.find(MARK_TAG)
    return boxes_key(root), root.get("verified") == "yes", None if mark is None else mark.get("boxes")


@dataclass
class Unchecked:
    """Label files of one label-set folder as it wrote them: not changed, not marked verified in LabelImg."""
    folder: Path  # the label-set folder (its RECORD_NAME, README.txt)
    xmls: Path  # the folder of its label files
    names: list[str]  # the unchecked label files' names
    total: int  # the label files it wrote that the command reads

    @property
    def share(self) -> float:
        return len(self.names) / self.total if self.total else 0.0


def unchecked_prelabels(label_files: Sequence[Path]) -> list[Unchecked]:
    """Of ``label_files`` (those a command reads), the Pascal VOC files still as ``patrol label-set`` wrote them: not
    marked ``verified="yes"`` on their ``<annotation>`` (LabelImg's Space), and their boxes (:func:`boxes_key`,
    whatever LabelImg did to the rest of the file) those written, by either record of them:

    * the folder's :data:`RECORD_NAME` (``<DIR>/annotations/xmls/<name>.xml``, DIR holding it) names the file with
      its boxes' key (a file saved again in LabelImg with the same boxes is still unchecked);
    * the file carries label-set's mark (:data:`MARK_TAG`) with its boxes' key: not saved in LabelImg since (its
      save drops the mark), wherever the file lies and whether or not the record is there.

    A file whose boxes were changed, or that was marked verified, is checked; a deleted one is not read. One entry
    per folder of label files with any unchecked file; its ``total``: the files the record names, else (no record:
    deleted, or the files copied without it) every label file of that folder read (those LabelImg saved have lost
    their mark), the marked ones the record does not name added."""
    import json

    by_dir: dict[Path, list[Path]] = {}
    for lab in label_files:
        lab = Path(lab)
        if lab.suffix.lower() == ".xml":
            by_dir.setdefault(lab.parent, []).append(lab)
    found = []
    for xmls, labs in by_dir.items():
        layout = xmls.name.lower() == "xmls" and xmls.parent.name.lower() == "annotations"
        folder = xmls.parent.parent if layout else xmls.parent
        written: dict[str, str] | None = None
        if layout:
            try:
                rec = json.loads((folder / RECORD_NAME).read_text(encoding="utf-8"))
                written = {str(k).lower(): str(v) for k, v in rec["prelabels"].items()}
            except (OSError, ValueError, KeyError, TypeError, AttributeError):  # none (not a label-set), or not ours
                written = None
        names, total = [], 0
        for lab in dict.fromkeys(labs):
            try:
                data = lab.read_bytes()
            except OSError:  # deleted: not read
                continue
            key = written.get(lab.name.lower()) if written is not None else None
            has_mark = b"<" + MARK_TAG.encode() in data
            if written is not None and key is None and not has_mark:
                continue  # not one label-set wrote: the record's total leaves it out
            total += 1
            if key is None and not has_mark:
                continue  # (no record) unmarked: saved in LabelImg since, or not label-set's
            state = _xml_state(data)
            if state is not None and not state[1] and state[0] in {key, state[2]}:
                names.append(lab.name)
        if names:
            found.append(Unchecked(folder, xmls, sorted(names), total))
    return found


_UNCHECKED_HARM = {
    "train": "the model would learn its own guesses",
    "tune": "the thresholds would be tuned to the model's own guesses",
    "eval": "the model would be scored against its own guesses (a flattering score)",
}


def unchecked_message(u: Unchecked, command: str, refused: bool = False, go_on: str | None = None) -> str:
    """The one line train, tune or eval prints (or train refuses with) for :func:`unchecked_prelabels`' entry
    (``go_on``: what a refused command may do instead of the default's ``--unchecked-ok``)."""
    eg = ", ".join(u.names[:3]) + (", …" if len(u.names) > 3 else "")
    if go_on is None:
        go_on = "or, if they are right as they are, train anyway with --unchecked-ok" if refused else ""
    readme = str(u.folder / "README.txt")
    return (f"{len(u.names)} of {u.total} label files in {u.xmls} are as patrol label-set wrote them (not checked "
            f"in LabelImg): {_UNCHECKED_HARM.get(command, _UNCHECKED_HARM['train'])}; check them "
            f"({readme + ': ' if (u.folder / 'README.txt').is_file() else 'in LabelImg: '}fix the boxes and save, or "
            "press Space on a photo whose boxes are right) "
            + (go_on + " " if go_on else "") + f"(e.g. {eg})")


def warn_unchecked(label_files: Sequence[Path], command: str) -> list[Unchecked]:
    """Print :func:`unchecked_message` (a warning) for each label-set folder of ``label_files`` with unchecked label
    files; returns them."""
    import sys

    found = unchecked_prelabels(label_files)
    for u in found:
        print("warning: " + unchecked_message(u, command), file=sys.stderr)
    return found


def _csv_row(p: Pick, thresholds: dict[str, float]) -> list[str]:
    from .report import safe_cell

    f, pr = p.pred.frame, p.pred
    near = borderline_mask(pr, thresholds)
    order = np.argsort(-pr.conf[near], kind="stable")
    border = "; ".join(f"{c} {v:.2f}" for c, v in zip(pr.cls[near][order], pr.conf[near][order]))
    return [p.image, safe_cell(f.drive), safe_cell(f.name), f.time.isoformat() if f.time else "",
            "" if not math.isfinite(f.lat) else f"{f.lat:.6f}", "" if not math.isfinite(f.lon) else f"{f.lon:.6f}",
            p.reason, p.split, str(int(prelabel_mask(pr, thresholds).sum())), border]


README_TXT = """patrol label-set: {n} frames to label / ラベル付けする {n} 枚

このフォルダの使い方 (日本語)
このフォルダはどこへコピーしても使えます (パスはすべてこのフォルダからの相対パス)。
1. LabelImg を開き「Open Dir」でこのフォルダの images を、「Change Save Dir」で annotations/xmls を選ぶ。
   保存形式は「PascalVOC」のまま。
2. 各写真の枠 (モデルの予測) を確かめ、直し、足りない損傷を描き足し、誤りを消して保存する
   (Ctrl+S)。損傷のない写真は枠なしのまま保存する。枠を直す必要のなかった写真 (枠のない写真も) は
   スペースキーで「確認済み」にする。枠が書き出したままで確認済みでないラベルは、未確認として
   patrol train が数え、半分を超えると学習を始めない (モデルが自分の予測を学ぶだけになるため)。
   種別名: D00 縦ひび割れ, D10 横ひび割れ, D20 亀甲状ひび割れ, D40 ポットホール。
3. 全部済んだら、このフォルダで (cd して) 学習: patrol train data.yaml --with <RDD の data.yaml>
   (--with: モデルが学んだ RDD の写真と一緒に学習する。この写真だけで学習すると RDD で学んだことを忘れる。
   train.txt と val.txt が学習用と検証用の写真の一覧 (label-set.csv の split 列と同じ)。検証用 {n_val} 枚は
   走行の何か所かの区間ごとまとめて選び、どの学習用の写真からも {gap} m 以上 (位置のない写真は同じ走行で
   {gap_s} 秒以上) 離してある。同じ損傷が学習用と検証用の両方に写らないので、検証の成績が甘くならない。)
4. 学習の最後に表示される 1 行 (detect: {{weights: …/best.onnx, imgsz: …}}) を {config_ja} に書き、
   新しいモデルの閾値を調整する: patrol tune data.yaml --config {config_ja}
   (書かずに tune すると、同梱のモデルの閾値を調整してしまう。)

How to use this folder (English)
The folder can be copied anywhere: every path here is relative to it.
1. Open LabelImg; "Open Dir": this folder's images; "Change Save Dir": annotations/xmls; keep the save format
   PascalVOC.
2. Check each photo's boxes (the model's guesses): fix them, draw the damages it missed, delete the wrong ones,
   save (Ctrl+S). A photo without damage is saved with no box. A photo whose boxes are right as they are (or that
   has none and needs none): press Space (verified). A label file with the boxes as written and not verified is
   unchecked to patrol train, which will not start while more than half are (the model would learn its own guesses).
   Class names: D00 longitudinal crack, D10 transverse crack, D20 alligator crack, D40 pothole.
3. When all are done, train, in this folder: patrol train data.yaml --with <RDD data.yaml>
   (--with: together with the RDD photos the model learnt from; trained on these photos alone it forgets them.
   train.txt and val.txt list the photos of each split (label-set.csv's split column). The {n_val} val photos are
   whole stretches of the drive, each at least {gap} m from every train photo (photos without a position: {gap_s} s
   in the same drive), so no damage is in both and the val score is not flattered.)
4. Put the line train prints at its end (detect: {{weights: …/best.onnx, imgsz: …}}) into {config_en}, then
   tune the new model's thresholds: patrol tune data.yaml --config {config_en}
   (tuned without that line, tune chooses thresholds for the shipped model, not yours.)

label-set.csv: one row per photo: its drive and frame, time, position, why it was chosen (uncertain: the model's
borderline calls; confident: clear hits; background: nothing found), its split (train or val), its pre-labels and
the borderline confidences.
label-set.json: the boxes label-set wrote into each label file (hashed), by which train tells the unchecked ones:
keep it in the folder. Each label file also carries a <prelabel .../> line with the same hash until LabelImg saves it.
"""


def _rel(path: Path, out: Path) -> str:
    """``path`` as README.txt writes it: relative to OUT (the folder it is read in, wherever it is copied)."""
    import os

    try:
        return Path(os.path.relpath(Path(path).resolve(), Path(out).resolve())).as_posix()
    except ValueError:  # another Windows drive: no relative path
        return str(Path(path).resolve())


def write_label_set(picks: Sequence[Pick], out: Path, thresholds: dict[str, float], progress=None,
                    config: Path | None = None) -> None:
    """OUT/images, OUT/annotations/xmls, train.txt, val.txt, data.yaml, README.txt, label-set.json (the boxes
    written, :func:`boxes_key` of each label file) and label-set.csv last (its presence marks OUT as a label-set)."""
    import json
    import xml.etree.ElementTree as ET

    import cv2
    import yaml

    from .atomic import atomic_write, atomic_write_bytes, atomic_write_text
    from .frames import load_image

    images, xmls = out / "images", out / "annotations" / "xmls"
    images.mkdir(parents=True, exist_ok=True)
    xmls.mkdir(parents=True, exist_ok=True)
    task = progress.add_task("Writing images", total=len(picks)) if progress else None
    written: dict[str, str] = {}
    for p in picks:
        img = load_image(p.pred.frame)  # upright, as it was predicted (EXIF orientation applied)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise InputError("could not encode as JPEG", p.pred.frame.path)
        target = images / p.image
        atomic_write_bytes(target, buf.tobytes(), durable=False)
        keep = prelabel_mask(p.pred, thresholds)
        h, w = img.shape[:2]
        text = voc_xml(p.image, target.resolve(), w, h, p.pred.xyxy[keep], p.pred.cls[keep])
        atomic_write_text(xmls / (p.image[:-4] + ".xml"), text)
        written[p.image[:-4] + ".xml"] = boxes_key(ET.fromstring(text))
        if progress:
            progress.advance(task)
    atomic_write_text(out / "train.txt", "".join(f"images/{p.image}\n" for p in picks if p.split == "train"))
    atomic_write_text(out / "val.txt", "".join(f"images/{p.image}\n" for p in picks if p.split == "val"))
    from . import CLASS_IDS

    atomic_write_text(out / "data.yaml", "# patrol label-set: train with `patrol train data.yaml --with <RDD "
                      "data.yaml>` once the labels are checked\n" + yaml.safe_dump({"path": ".", "train": "train.txt", "val": "val.txt",
                                                        "names": dict(enumerate(CLASS_IDS))}, sort_keys=False))
    atomic_write_text(out / "README.txt", README_TXT.format(
        n=len(picks), n_val=sum(p.split == "val" for p in picks), gap=f"{SPLIT_GAP_M:g}", gap_s=f"{SPLIT_GAP_S:g}",
        config_ja=_rel(config, out) if config else "<市の設定.yaml>",
        config_en=_rel(config, out) if config else "<your city's config.yaml>"), encoding="utf-8-sig")
    atomic_write_text(out / RECORD_NAME, json.dumps(
        {"written_by": "patrol label-set",
         "about": "each label file's boxes as label-set wrote them (a hash of their classes and corners): patrol "
                  "train, tune and eval warn about the files still so and not marked verified in LabelImg (Space)",
         "prelabels": written}, ensure_ascii=False, indent=1) + "\n")
    with atomic_write(out / CSV_NAME, "w", encoding="utf-8-sig", newline="") as fh:
        wr = csv.writer(fh, lineterminator="\r\n")
        wr.writerow(COLUMNS)
        wr.writerows(_csv_row(p, thresholds) for p in picks)


def kept_paths(frames: Sequence, picks: Sequence[Pick], drives: Sequence[Path], video_dir: Path, out: Path) -> list:
    """The frames as frames.csv gives them: a frame taken from a video into ``video_dir`` (the temporary folder,
    removed when label-set ends) with a path that is still there afterwards: a chosen one its image in OUT/images
    (the picture labelled), any other its video file (``drives[i] / <video>``, as a video that gave no frame is
    named; the time in it is the ``@m:ss.s`` of its name). Photos and rejected videos as read."""
    from dataclasses import replace

    video_dir = Path(video_dir).absolute()
    chosen = {id(p.pred.frame): (out / "images" / p.image).absolute() for p in picks}
    rows = []
    for f in frames:
        p = Path(f.path)
        if p.is_absolute() and p.is_relative_to(video_dir):
            i = int(p.relative_to(video_dir).parts[0])  # read_and_predict: drive i's videos under video_dir/i
            f = replace(f, path=chosen.get(id(f)) or (Path(drives[i]) / f.name.rpartition("@")[0]).absolute())
        rows.append(f)
    return rows


def make_label_set(drives: Sequence[Path], out: Path, cfg: Config, weights: Path, n: int = 200, progress=None,
                   config: Path | None = None, tracks: Sequence[Path] = ()) -> LabelSetSummary:
    """`patrol label-set`: check OUT, read and predict the drives, choose ``n`` frames, write them (``config``: the
    city config the README.txt names for the new model's line and ``patrol tune``; ``tracks``: the ``--track``
    files, as run and detect read them)."""
    from .frames import write_frames_csv
    from .pipeline import check_track_files

    t0 = time.perf_counter()
    out = Path(out)
    if n < 1:
        raise UsageError("must be 1 or more", n, "--n")
    check_dir(out)
    tracks = check_track_files(tracks)
    summary = LabelSetSummary(out=out)
    with tempfile.TemporaryDirectory(prefix="patrol-label-set-") as tmp:  # a video's frames, while read
        preds = read_and_predict([Path(d) for d in drives], cfg, weights, out, Path(tmp), progress, summary, tracks)
        thresholds = cfg.thresholds()
        picks = choose(preds, thresholds, n, summary)
        unique_names(picks)
        out.mkdir(parents=True, exist_ok=True)
        summary.replaced = _clear_earlier(out)
        # before label-set.csv, which marks OUT as a label-set; a video frame's path: one kept after tmp is gone
        write_frames_csv(kept_paths(summary.frames, picks, drives, Path(tmp), out), out / FRAMES_CSV)
        write_label_set(picks, out, thresholds, progress, config)
    summary.picks = picks
    summary.chosen = Counter(p.reason for p in picks)
    summary.seconds = time.perf_counter() - t0
    return summary
