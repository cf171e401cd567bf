"""`patrol run`: frames -> detections -> located -> candidates -> exports over one run folder.

OpenSfM-style: each stage writes its artifact into OUT and records a fingerprint of its inputs in
``OUT/.work/manifest.json``; a stage whose inputs did not change is skipped. Detection, the only slow
stage, journals every finished frame to ``OUT/.work/detect.jsonl`` (append + fsync per batch), so a run
killed at any point (kill -9) resumes where it stopped and ends with the same outputs as an
uninterrupted run. Every output is written atomically (temp file + rename).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .atomic import BusyOutputs, FileLock, atomic_write_text
from .config import Config, config_fingerprint
from .detections import Detections, read_detections_csv, write_detections_csv
from .errors import InputError

WORK = ".work"
VIDEO_FRAMES = "frames"  # OUT/frames/<drive>/<folder>/<video name>/: the frames taken from each video
_KILL_COUNTS: dict[str, int] = {}


def checkpoint(name: str) -> None:
    """Test hook: ``PATROL_KILL_AT=name[:n]`` kills this process with SIGKILL the n-th time (default 1st) it passes
    ``name`` — how the tests prove that a run killed anywhere resumes to identical outputs
    (``PATROL_KILL_SIGNAL=SIGINT``: a Ctrl-C there instead). No-op otherwise."""
    spec = os.environ.get("PATROL_KILL_AT")
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _KILL_COUNTS[name] = _KILL_COUNTS.get(name, 0) + 1
    if _KILL_COUNTS[name] >= int(nth or 1):
        import signal

        os.kill(os.getpid(), getattr(signal, os.environ.get("PATROL_KILL_SIGNAL", "SIGKILL")))


@dataclass
class RunSummary:
    out: Path
    drives: list[str] = field(default_factory=list)
    frames_total: int = 0
    frames_ok: int = 0
    frames_rejected: int = 0
    frames_interpolated: int = 0
    frames_from_track: int = 0  # placed from a track file (GPX/NMEA)
    frames_rear: int = 0  # used frames of a rear camera (frames.rear)
    # per drive with rear frames with hits: how its rear camera writes its heading (locate.rear_heading_notes)
    rear_heading: dict[str, dict] = field(default_factory=dict)
    tracks: list = field(default_factory=list)  # frames.TrackUse per track file, found in a drive or given (--track)
    videos: list = field(default_factory=list)  # frames.VideoUse per video file
    rejected_reasons: dict[str, int] = field(default_factory=dict)
    hits: int = 0
    hits_unlocated: int = 0
    # where the hits went (locate + dedupe): hits = sightings + same_frame + weak + unplaced
    sightings: int | None = None  # candidate-frames: the candidates' n_obs add up to it
    hits_same_frame: int = 0  # further boxes of a damage in a frame where it already counts
    hits_weak: int = 0  # boxes of single low-confidence sightings, not kept (dedupe.single_sighting_min_conf)
    hits_unplaced: int = 0  # without a position to place them at
    candidates: int | None = None
    new: int | None = None
    seen_again: int | None = None
    reopened: int | None = None
    unchanged: int | None = None  # matched, but every sighting already in the registry (the same drive again)
    run_id: str | None = None  # the registry's id of this merge (None when it changed nothing)
    copies: list = field(default_factory=list)  # store.DriveCopy.as_dict(): drives the registry held under another name
    renamed: list = field(default_factory=list)  # store.DriveRename.as_dict(): drives merged under another name
    # drive known by name only (merged before the registry recorded frames) -> its frames recorded by this merge
    backfilled: dict = field(default_factory=dict)
    # registry id -> new | seen_again | reopened | already_there of this run's merge (the patrol log's per drive)
    registry_outcome: dict = field(default_factory=dict)
    # registry damages this run drove past after their last sighting without seeing them (store.MergeResult
    # .passed_unseen), their n_unseen now, and per drive of the run (the patrol log's); None: merged without frames
    passed_unseen: list | None = None
    passed_unseen_n: dict = field(default_factory=dict)
    passed_unseen_by_drive: dict | None = None
    # config store.unseen_ring_passes of the merge: the n_unseen from which report.html draws the dotted ring, and
    # summary.json / the console count a damage passed unseen as one to check
    unseen_ring_passes: int = 2
    # the registry's citizen reports (住民通報), each matched to its damage after this run's merge
    # (citizen.registry_matches); None: no --store, or a registry without reports. report.html draws this run's
    # (citizen.run_reports); not in summary.json
    reports: Any = field(default=None, repr=False)
    # drive -> its ok frames whose look was poor (Frame.look: dark, glare, blurred; frames.look_*): detected, but no
    # unseen pass of a damage (the registry's passes)
    poor_look: dict = field(default_factory=dict)
    skipped_stages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    weights: Path | None = None
    outputs: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)  # roads, frames, detect, locate, crops, …
    detect_fps: float | None = None

    def lap(self, stage: str, since: float) -> float:
        """Record ``stage`` as taking the time since ``since`` (perf_counter); returns now."""
        now = time.perf_counter()
        self.stage_seconds[stage] = round(now - since, 2)
        return now


def write_summary_json(summary: RunSummary, command: str, cfg: Config) -> Path:
    """``OUT/summary.json``: what the console summary says, as numbers, for a scheduled weekly job's log or a
    dashboard (frames used/rejected by reason, where the hits went, registry new/seen again, warnings, model,
    outputs relative to OUT, seconds per stage). Written last, atomically; a failed run writes none (its exit
    code says why)."""
    from . import __version__

    out = Path(summary.out)
    path = out / "summary.json"
    summary.outputs["summary"] = path

    def rel(p) -> str:
        p = Path(p)
        try:
            return p.resolve().relative_to(out.resolve()).as_posix()
        except ValueError:
            return str(p)

    doc = {
        "patrol": __version__, "command": command,
        "finished_at": cfg.now().isoformat(timespec="seconds"), "municipality": cfg.municipality,
        "drives": list(summary.drives),
        "frames": None if not summary.frames_total else {  # (patrol locate reads no frames)
            "total": summary.frames_total, "used": summary.frames_ok, "rejected": summary.frames_rejected,
            "interpolated": summary.frames_interpolated, "placed_from_track": summary.frames_from_track,
            "rear": summary.frames_rear,
            "rejected_by_reason": dict(summary.rejected_reasons),
            # used frames too dark, glared or blurred to show the road (Frame.look), by drive: with or without --store
            "poor_look": dict(summary.poor_look)},
        # per drive: "vehicle" | "camera" | "per frame" (undecided), and the votes (locate._rear_convention)
        "rear_heading": dict(summary.rear_heading),
        "tracks": [{"file": u.path, "format": u.kind or None, "points": u.points, "used": not u.problem,
                    "problem": u.problem or None, "frames_placed": u.placed, "notes": list(u.notes)}
                   for u in summary.tracks],
        "videos": [{"file": u.path, "start": u.start or None, "time_source": u.time_source or None,
                    "duration_s": None if u.duration_s != u.duration_s else round(u.duration_s, 2),
                    "frames": u.frames, "reused": u.reused, "problem": u.problem or None, "notes": u.notes}
                   for u in summary.videos],
        # run and locate: total = sightings + same_frame + weak + without_position (see the console's hits row)
        "hits": {"total": summary.hits, "sightings": summary.sightings, "same_frame": summary.hits_same_frame,
                 "weak": summary.hits_weak,
                 "without_position": summary.hits_unlocated if summary.sightings is None else summary.hits_unplaced},
        "candidates": summary.candidates,
        "registry": None if summary.new is None else {
            "new": summary.new, "seen_again": summary.seen_again, "reopened": summary.reopened,
            "already_there": summary.unchanged, "run_id": summary.run_id, "copies": list(summary.copies),
            "renamed": list(summary.renamed), "backfilled": dict(summary.backfilled),
            "passed_unseen": passed_unseen_doc(summary)},
        "skipped_stages": list(summary.skipped_stages), "warnings": list(summary.warnings),
        "model": str(summary.weights) if summary.weights else None,
        "outputs": {k: rel(v) for k, v in summary.outputs.items()},
        "seconds": round(summary.seconds, 2), "stage_seconds": dict(summary.stage_seconds),
    }
    atomic_write_text(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return path


def passed_unseen_doc(summary: RunSummary) -> dict | None:
    """summary.json's ``registry.passed_unseen``: the known damages this run drove past without a sighting (after
    their last sighting: the passes the registry's ``n_unseen`` counts), the cut-off of report.html's dotted ring
    (``unseen_ring_passes``, config ``store.unseen_ring_passes``) and how many of them reach it now
    (``unseen_ring_damages``), their ids, and the count per drive; None when the run merged no frames (``patrol
    locate`` without frames.csv: where the car drove is not known). ``unseen_2_or_more`` (n_unseen >= 2 whatever the
    config) is kept for readers of 0.3.0's summary.json: deprecated."""
    if summary.passed_unseen is None:
        return None
    n, ring = summary.passed_unseen_n, summary.unseen_ring_passes
    return {"damages": len(summary.passed_unseen),
            "unseen_ring_passes": ring,
            "unseen_ring_damages": sum(n.get(c, 0) >= ring for c in summary.passed_unseen),
            "unseen_2_or_more": sum(n.get(c, 0) >= 2 for c in summary.passed_unseen),
            "poor_look_frames": dict(summary.poor_look),
            "ids": list(summary.passed_unseen),
            "by_drive": {d: len(ids) for d, ids in (summary.passed_unseen_by_drive or {}).items()}}


# ----------------------------------------------------------------------------------------------------
# manifest / fingerprints


def _sha1(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def file_fingerprint(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def weights_fingerprint(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Manifest:
    def __init__(self, out: Path):
        self.path = out / WORK / "manifest.json"
        try:
            self.data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(self.data, dict):
                self.data = {}
        except (OSError, ValueError):
            self.data = {}

    def fresh(self, stage: str, key: str, *outputs: Path) -> bool:
        return self.data.get(stage) == key and all(p.is_file() for p in outputs)

    def mark(self, stage: str, key: str) -> None:
        self.data[stage] = key
        atomic_write_text(self.path, json.dumps(self.data, indent=1, sort_keys=True))

    def forget(self, *stages: str) -> None:
        for s in stages:
            self.data.pop(s, None)
        atomic_write_text(self.path, json.dumps(self.data, indent=1, sort_keys=True))


# ----------------------------------------------------------------------------------------------------
# detection journal


class DetectJournal:
    """Append-only JSONL: a header line with the model's key (weights, detect settings, thresholds), then one line
    per finished frame (drive, name, the file's size and mtime, boxes or the reason it was rejected).

    Only complete lines count: a torn last line (kill -9 during a write) is cut off on open, and a journal
    written for another model (another key) is started afresh. Frames added to a drive later (a late upload)
    are appended; the others keep their lines. ``record_key``: what a line is looked up by in ``done`` (a run's:
    its drive and name; label-set's cache: the frame file's identity, ``labelset.PredictionCache``). ``lines``: the
    record lines in the file (read and appended; more than ``len(done)`` where a key has several: the last counts).
    """

    def __init__(self, path: Path, key: str, record_key: Callable[[dict], Any] = lambda r: (r["drive"], r["name"])):
        self.path = path
        self.done: dict[Any, dict] = {}
        self.lines = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        data = path.read_bytes() if path.is_file() else b""
        keep = 0
        pos = 0
        while True:
            nl = data.find(b"\n", pos)
            if nl < 0:
                break  # no newline: torn tail
            try:
                rec = json.loads(data[pos:nl])
            except ValueError:
                break
            if pos == 0:
                if not isinstance(rec, dict) or rec.get("key") != key:
                    break
            else:
                try:
                    self.done[record_key(rec)] = rec
                except (KeyError, TypeError):  # not a line of this journal's kind: the rest is started afresh
                    break
                self.lines += 1
            pos = keep = nl + 1
        with open(path, "r+b" if path.is_file() else "wb") as fh:
            fh.truncate(keep)
            if keep == 0:
                self.done.clear()
                self.lines = 0
                fh.write(json.dumps({"key": key}).encode() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._fh = open(path, "ab")

    def append(self, records: Iterable[dict]) -> None:
        lines = [json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records]
        data = b"".join(lines)
        self.lines += len(lines)
        if data:
            self._fh.write(data)
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


# ----------------------------------------------------------------------------------------------------
# stages


def check_track_files(tracks: Iterable[Path]) -> list[Path]:
    """The ``--track`` files, refused before any work when one is not a file (exit 3); what they hold is read in
    the frames stage, where a bad one is a warning."""
    out = []
    for t in tracks:
        t = Path(t)
        if not t.is_file():
            raise InputError("track file not found" if not t.exists() else "not a file (give the track file: GPX, NMEA, CSV or KML)", t)
        out.append(t)
    return out


def _video_frame_there(f, out: Path) -> bool:
    """False for a frame taken from a video (its JPEG under OUT/frames) whose file is gone; True otherwise."""
    if f.status != "ok" or "@" not in f.name:
        return True
    p = Path(f.path)
    return not p.is_relative_to(out.absolute() / VIDEO_FRAMES) or p.is_file()


def _source_warnings(summary: RunSummary, cfg: Config, frames) -> None:
    """One warning per track file or video that was not used or did not help (frames.track_warnings, video_warnings),
    and per drive for EXIF fixes converted from the Tokyo datum or in a datum not known (frames.datum_warnings)."""
    from .frames import datum_warnings, track_warnings, video_warnings

    summary.warnings.extend(track_warnings(summary.tracks, cfg.tz) + video_warnings(summary.videos)
                            + datum_warnings(frames))


def scan_drives(drives: list[Path], cfg: Config, out: Path, tracks: Iterable[Path], summary,
                progress=None, done: Callable[[int], None] | None = None, busy: BusyOutputs | None = None,
                video_dirs: Sequence[Path] | None = None, names: Sequence[str] | None = None) -> list:
    """The frames of ``drives`` (``frames.scan``: OUT left out, a video's frames taken into OUT/frames), the
    ``--track`` files read once for all of them (run, detect and label-set: one code path). ``summary`` (a
    RunSummary, or anything with ``tracks``, ``videos`` and ``warnings``) gets one TrackUse per track file (a
    ``--track`` file over every drive), the VideoUses and their warnings; ``done(i)`` is called after drive ``i``.
    ``busy``: a video frame file held open by another program is noted there (``frames.scan``). ``video_dirs``:
    drive ``i``'s video frames go into ``video_dirs[i]`` instead; ``names``: drive ``i``'s frames are of drive
    ``names[i]`` (label-set's names of two drives of one folder name)."""
    from .frames import load_tracks, merge_track_uses, scan

    read, uses = load_tracks(tracks, cfg.tz)
    frames = []
    for i, d in enumerate(drives):
        sc = scan(d, cfg, exclude=[out], tracks=read, video_dir=video_dirs[i] if video_dirs else out / VIDEO_FRAMES,
                  progress=progress, busy=busy)
        if names is not None:
            for f in sc.frames:
                f.drive = names[i]
        frames.extend(sc.frames)
        uses.extend(sc.tracks)
        summary.videos.extend(sc.videos)
        if done is not None:
            done(i)
    summary.tracks = merge_track_uses(uses)
    _source_warnings(summary, cfg, frames)
    return frames


def stage_frames(drives: list[Path], cfg: Config, out: Path, man: Manifest, summary: RunSummary, progress=None,
                 tracks: Iterable[Path] = (), busy: BusyOutputs | None = None):
    """The frames of the drives, skipped when nothing they are made of changed. ``busy``: as for ``scan_drives``
    (without it, OutputInUseError is raised); a scan that could not write or remove a video's frame file is not
    marked done, so the next run takes that video again."""
    from .frames import TrackUse, VideoUse, read_frames_csv, walk_drive, write_frames_csv
    from .video import stopped_early

    # the fingerprint lists exactly the files the scan reads: linked phone folders included, OUT left out when it
    # lies inside a drive folder (its crops and CSVs are not frames, and change every run)
    listing, per_drive = [], []
    for d in drives:
        if not d.is_dir():
            raise InputError("not a folder", d)
        per_drive.append(len(listing))
        for _name, p, _why in walk_drive(d, exclude=[out]):
            try:
                st = p.stat()
                listing.append((str(p), st.st_size, st.st_mtime_ns))
            except OSError:
                listing.append((str(p), -1, -1))
    tracks = [Path(t) for t in tracks]
    given = [file_fingerprint(t) for t in tracks]
    key = _sha1({"drives": [str(d.resolve()) for d in drives], "files": sorted(listing), "tracks": given,
                 "cfg": {k: v for k, v in config_fingerprint(cfg)["frames"].items() if not k.startswith("look_")},
                 "tz": cfg.timezone, "v": 6})  # v5: datum; v6: hfov_deg. (frames.look_*: the detect stage's, applied
    # every run to the numbers it measured: a changed threshold reads no file again)
    scan_csv, uses_json = out / WORK / "frames.scan.csv", out / WORK / "frames.tracks.json"
    videos_json = out / WORK / "frames.videos.json"
    if man.fresh("frames", key, scan_csv, uses_json, videos_json):
        frames = read_frames_csv(scan_csv)
        videos = [VideoUse.from_dict(d) for d in json.loads(videos_json.read_text(encoding="utf-8"))]
        # the frames taken from videos live in OUT/frames, outside the drives' fingerprint: if they were deleted
        # (to free space), scan again, which takes them again (else detection and crops would find no image). A
        # video whose decoding stopped early is looked at again too: copied again right, it has the damaged copy's
        # size and (a copy keeps the camera file's) mtime, so only its whole-file hash tells (video.extract)
        if all(_video_frame_there(f, out) for f in frames) and not any(stopped_early(u.notes) for u in videos):
            summary.skipped_stages.append("frames")
            summary.tracks = [TrackUse.from_dict(d) for d in json.loads(uses_json.read_text(encoding="utf-8"))]
            summary.videos = videos
            for u in summary.videos:  # nothing decoded this time: the frames are those taken before
                u.reused = not u.problem
            _source_warnings(summary, cfg, frames)
            return frames
    task = progress.add_task("Reading EXIF", total=len(listing)) if progress else None
    ends = per_drive[1:] + [len(listing)]

    def done(i: int) -> None:
        if progress:
            progress.advance(task, ends[i] - per_drive[i])  # the drive's files (a video's frames have their own bar)

    own = busy is None
    busy = BusyOutputs() if own else busy
    n_busy = len(busy.errors)
    frames = scan_drives(drives, cfg, out, tracks, summary, progress, done, busy)
    write_frames_csv(frames, scan_csv)
    atomic_write_text(uses_json, json.dumps([u.as_dict() for u in summary.tracks], ensure_ascii=False, indent=1))
    atomic_write_text(videos_json, json.dumps([u.as_dict() for u in summary.videos], ensure_ascii=False, indent=1))
    checkpoint("frames_written")
    if len(busy.errors) == n_busy:
        man.mark("frames", key)
    else:  # a video frame held open: taken again by the next run
        man.forget("frames")
    man.forget("detect")
    if own:
        busy.check()
    # what the next stages see is what a resumed run reads back (frames.csv rounds lat/lon/heading), so a
    # run killed after this point ends with byte-identical outputs, not merely close ones
    return read_frames_csv(scan_csv)


def _check_usable(frames, drives: list[Path], cfg: Config, out: Path, summary: RunSummary) -> None:
    """A drive without one usable frame is a warning in the summary; a run without any is an error (exit 3)
    naming the folder and why, with frames.csv written so every rejected file's reason can be read (a frames.csv
    open in Excel is kept and the error says so)."""
    from .atomic import OutputInUseError
    from collections import Counter

    from .frames import drive_name, track_warnings, write_frames_csv

    usable = Counter(f.drive for f in frames if f.status == "ok")
    listed = Counter(f.drive for f in frames)
    why = {}
    for d in drives:
        name = drive_name(d)
        if usable[name]:
            continue
        if listed[name]:
            rows = [f for f in frames if f.drive == name]
            reasons = Counter(f.reason.split(":")[0] for f in rows)
            taken = [f for f in rows if "@" in f.name and f.time_source.startswith("video")]  # frames of videos
            def count(n: int, word: str) -> str:
                return f"{n} {word}{'s' * (n != 1)}"

            what = count(len(rows), "file")
            if taken:
                n_videos = len({f.name.rsplit("@", 1)[0] for f in taken})
                what = f"{count(len(rows) - len(taken), 'file')} and {count(len(taken), 'frame')} of {count(n_videos, 'video')}"
            why[d] = (f"no usable frames: {'all ' * (len(rows) > 1)}{what} rejected "
                      f"({', '.join(f'{k} {v}' for k, v in reasons.most_common())}; per file in {out / 'frames.csv'})")
            if reasons.get("no_gps_fix"):  # what the track files did, or that there is none
                root = d.absolute()
                mine = [u for u in summary.tracks
                        if Path(u.path).is_relative_to(root) or not any(Path(u.path).is_relative_to(x.absolute())
                                                                        for x in drives)]
                hints = [w for u in mine for w in track_warnings([u], cfg.tz)]
                if hints:
                    why[d] += "; " + "; ".join(hints)
                elif not mine:
                    why[d] += ("; no GPS track file (GPX, NMEA, a logger's CSV, KML or KMZ) in the drive nor given with "
                               "--track: frames without their own GPS fix need one")
        else:
            why[d] = f"no image files ({' '.join(cfg.frames.extensions)})"
    if len(why) == len(drives):
        d0 = drives[0]
        msg = why[d0] + ("; nor has any other drive" if len(drives) > 1 else "")
        try:
            write_frames_csv(frames, out / "frames.csv")
        except OutputInUseError as e:  # the input is the problem (exit 3); the open frames.csv is an old one
            msg += (f"; {e.path} is open in {e.program} or another program and holds an earlier run's rows: close it "
                    "and run the same command again to read them")
        raise InputError(msg, d0)
    summary.warnings.extend(f"{d}: {w}" for d, w in why.items())
    if cfg.frames.rear and not any(f.camera == "rear" for f in frames):  # a pattern with a typo: all seen as front
        summary.warnings.append(f"frames.rear {', '.join(map(repr, cfg.frames.rear))} matched no file: every frame "
                                "was taken as the front camera's (patterns are on the name within the drive)")


def _frame_key(f) -> tuple[str, str]:
    return (f.drive, f.name)


def _file_id(path: Path) -> list[int] | None:
    """[size, mtime_ns] of a frame's file: a file replaced under the same name is detected again."""
    try:
        st = os.stat(path)
        return [st.st_size, st.st_mtime_ns]
    except OSError:
        return None


def detectable(frame) -> bool:
    """Frames we run the detector on: every readable image (position problems don't stop detection)."""
    return frame.status == "ok"


def look_record(im) -> list:
    """A journal record's ``look`` (the detect stage's, label-set's prediction cache): the decoded picture's
    brightness, clipped share and sharpness (``look.measure_look``), measured on the pixels decoded for the
    detector anyway, so that a resumed run (a re-run of label-set) has them without decoding the frame again."""
    from .look import measure_look

    return list(measure_look(im))


def take_look(f, rec: dict) -> None:
    """Frame ``f``'s look numbers from its journal record (:func:`look_record`; NaN: not measured); its verdict
    (``Frame.look``) is ``frames.apply_look``'s, from the config's thresholds of this run."""
    f.brightness, f.clipped, f.sharpness = rec.get("look") or (math.nan,) * 3


def stage_detect(frames: list, cfg: Config, out: Path, weights: Path, man: Manifest, summary: RunSummary,
                 progress=None, detector=None, batch: int | None = None, on_batch: Callable | None = None,
                 busy: BusyOutputs | None = None):
    """Run the detector over the ok frames with a resumable journal. Returns (frames, Detections).

    The stage's own copy is ``.work/detections.detect.csv``; ``OUT/detections.csv`` is published from it (a copy, written
    only when it differs), so one open in Excel (``busy``: noted there, else OutputInUseError) neither stops the
    run nor leaves the stage reading an old file."""
    from .frames import apply_look, decoded_batches

    det_csv = out / WORK / "detections.detect.csv"
    own = busy is None
    busy = BusyOutputs() if own else busy

    def publish():
        from .atomic import atomic_write_bytes

        with busy.write():
            atomic_write_bytes(out / "detections.csv", det_csv.read_bytes())
        if own:
            busy.check()

    # the journal holds per-frame results: valid for any list of frames (a late upload adds frames, it does not
    # redo the others), as long as the model, its settings and the frame's file are the same
    model_key = _sha1({"weights": weights_fingerprint(weights), "detect": config_fingerprint(cfg)["detect"],
                       "thr": cfg.thresholds(), "v": 3})  # v2: records carry the file's size and mtime; v3: its look
    # a rear frame (frames.rear) says so: its hits are written with camera "rear" (a front frame's key is as before)
    key = _sha1({"frames": [(f.drive, f.name, f.status) + (("rear",) if f.camera == "rear" else ()) for f in frames],
                 "model": model_key})
    frames_csv = out / WORK / "frames.detect.csv"
    if man.fresh("detect", key, det_csv, frames_csv):
        from .frames import read_frames_csv

        summary.skipped_stages.append("detect")
        publish()
        frames = read_frames_csv(frames_csv)
        apply_look(frames, cfg.frames)  # (the thresholds may have changed: the numbers are the frames')
        return frames, read_detections_csv(det_csv)
    journal = DetectJournal(out / WORK / "detect.jsonl", model_key)
    file_id = {_frame_key(f): _file_id(f.path) for f in frames if detectable(f)}

    def done(f) -> dict | None:
        rec = journal.done.get(_frame_key(f))
        return rec if rec is not None and detectable(f) and rec.get("file") == file_id[_frame_key(f)] else None

    todo = [f for f in frames if detectable(f) and done(f) is None]
    n_target = sum(1 for f in frames if detectable(f))
    task = progress.add_task("Detecting damage", total=n_target, completed=n_target - len(todo)) if progress else None
    if todo:
        if detector is None:
            from .infer import load_detector

            detector = load_detector(weights, cfg)
        t0 = time.perf_counter()
        n_done = 0

        def reject(f, err):
            rec = {"drive": f.drive, "name": f.name, "file": file_id[_frame_key(f)], "reject": err or "decode_failed"}
            journal.append([rec])
            journal.done[_frame_key(f)] = rec
            if progress:
                progress.advance(task, 1)

        for pending in decoded_batches(todo, batch or cfg.detect.batch, reject):
            preds = detector.predict([im for _, im in pending])
            # its look on the pixels decoded anyway (brightness, clipped, sharpness; detector/look.py): kept in the
            # journal, so a resumed run has it without decoding the frame again
            recs = [{"drive": f.drive, "name": f.name, "file": file_id[_frame_key(f)],
                     "h": int(im.shape[0]), "w": int(im.shape[1]), "look": look_record(im),
                     "boxes": [[round(float(v), 1) for v in b] + [round(float(c), 4), str(k)]
                               for b, c, k in zip(np.asarray(xyxy).reshape(-1, 4), conf, cls)]}
                    for (f, im), (xyxy, conf, cls) in zip(pending, preds)]
            journal.append(recs)
            checkpoint("detect_batch")
            for r in recs:
                journal.done[(r["drive"], r["name"])] = r
            n_done += len(pending)
            if progress:
                progress.advance(task, len(pending))
            if on_batch:
                on_batch(n_done)
        dt = time.perf_counter() - t0
        summary.detect_fps = n_done / dt if dt > 0 else None
    journal.close()
    # finalise in frame order: deterministic whatever the interruptions were
    parts = []
    for f in frames:
        rec = done(f)
        if rec is None:
            continue
        if "reject" in rec:
            f.status, f.reason = "rejected", rec["reject"]
            continue
        take_look(f, rec)
        boxes = rec["boxes"]
        if not boxes:
            continue
        arr = np.array([b[:5] for b in boxes], dtype=float)
        parts.append(Detections.from_arrays(
            image=[f.name] * len(boxes), class_id=[b[5] for b in boxes], confidence=arr[:, 4], xyxy=arr[:, :4],
            width=rec["w"], height=rec["h"], time=f.time.isoformat() if f.time else "",
            lat=f.lat, lon=f.lon, heading=f.heading, drive=f.drive, camera=f.camera))
    det = Detections.concat(parts)
    from .frames import read_frames_csv, write_frames_csv

    write_detections_csv(det, det_csv)
    checkpoint("detections_written")
    apply_look(frames, cfg.frames)
    write_frames_csv(frames, frames_csv)
    man.mark("detect", key)
    publish()
    # as read back by a resumed run (detections.csv rounds lat/lon/heading): identical outputs either way (the
    # looks as written just above, from this config)
    return read_frames_csv(frames_csv), read_detections_csv(det_csv)


def locate_and_dedupe(det: Detections, roads: Path, cfg: Config, net=None, frames=None):
    """Returns (network, located hits, candidates, warnings for the summary: the network's and its coverage).
    ``frames``: the drives' frames, when known: sequences are told apart by the times of all of them. The
    candidates carry the kept road fields of their segments (``roads.keep_fields``, ``roads.join_fields``)."""
    from .dedupe import dedupe
    from .locate import frame_heading_sources, frame_hfovs, frame_sequences, locate, rear_heading_notes
    from .roads import join_fields, load_roads

    if net is None:
        net = load_roads(roads, cfg)
    located = locate(det, net, cfg, sequences=frame_sequences(frames) if frames is not None else None,
                     heading_sources=frame_heading_sources(frames) if frames is not None else None,
                     hfovs=frame_hfovs(frames) if frames is not None else None)
    coverage = check_coverage(located, net, roads, cfg)
    cands, _ = join_fields(dedupe(located, cfg), net, cfg)  # the run's own network: every segment is there
    rear = rear_heading_notes(located.attrs.get("rear_heading", {}))[1]
    return net, located, cands, net.warnings + ([coverage] if coverage else []) + rear


def count_sightings(summary: RunSummary, cands) -> None:
    """The summary's account of the hits, as dedupe made candidates of them (before the registry folds any)."""
    acc = cands.attrs.get("hits", {})
    summary.sightings = int(cands["n_obs"].sum()) if len(cands) else 0
    summary.hits_same_frame, summary.hits_weak = acc.get("same_frame", 0), acc.get("weak", 0)
    summary.hits_unplaced = acc.get("unplaced", 0)


def check_coverage(located, net, roads: Path, cfg: Config) -> str | None:
    """Is ROADS the network of this drive? An error (exit 3) when every positioned hit is more than 5 km outside
    the network's extent (a wrong roads file: nothing can be placed, and distances measured in the network's
    projection are distorted so far from it); a warning (returned) when fewer than half lie within
    ``locate.max_snap_m`` of a road."""
    pos = located[np.isfinite(located["lat"].to_numpy(float)) & np.isfinite(located["lon"].to_numpy(float))]
    if pos.empty:
        return None
    w, s_, e, n = net.gdf.to_crs(4326).total_bounds
    lat, lon = pos["lat"].to_numpy(float), pos["lon"].to_numpy(float)
    km_lat = 111.0
    km_lon = 111.0 * np.cos(np.radians(np.clip(lat, -89, 89)))
    dx = np.maximum(0, np.maximum(w - lon, lon - e)) * km_lon
    dy = np.maximum(0, np.maximum(s_ - lat, lat - n)) * km_lat
    if (np.hypot(dx, dy) > 5.0).all():
        raise InputError(
            f"the road network does not cover this drive: all {len(pos)} hits with a position lie more than 5 km "
            f"outside it (network lon {w:.3f}..{e:.3f}, lat {s_:.3f}..{n:.3f}; hits around lon {np.median(lon):.3f}, "
            f"lat {np.median(lat):.3f}); is this the right roads file?", roads)
    placed = (pos["segment_id"].fillna("").astype(str) != "").sum()
    if placed < 0.5 * len(pos):
        return (f"only {placed} of {len(pos)} hits lie within {cfg.locate.max_snap_m:g} m of a road of {Path(roads).name}: "
                "the rest keep their GPS position without a segment (a network missing these streets?)")
    return None


def merge_into_store(cands, store: Path, run_info: dict, cfg: Config, summary: RunSummary, frames=None,
                     reports: bool = False):
    """Merge into the registry (one transaction, idempotent). The run's outputs then carry the registry ids
    (the ids the crew, `patrol status` and `patrol import-verification` use) and registry statuses.

    ``frames`` (the run's Frames, whose files are read for ``frames.frame_key``): the registry knows the drive's
    photos by content, so a drive it holds under another folder name is not counted again; each such drive is one
    warning naming both drives and the date the first was merged (``summary.copies``). A drive whose folder name
    the registry holds for another drive (a weekly card folder always called DCIM) is merged under a name of its own,
    ``DCIM (2026-11-27)``: one warning each (``summary.renamed``); the run's own outputs keep its folder name.

    ``reports`` (a run that writes report.html): the registry's citizen reports, matched after the merge, in
    ``summary.reports`` (None where it holds none). The outputs get each damage's ``reports`` and ``reported_first``
    (``citizen.damage_columns``; without report.html matched only near the run's damages: ``citizen.damage_matches``),
    None where the registry holds no reports. Where the registry holds a jobs list (``patrol export --format jobs``),
    they get ``job_id``: each open damage's repair job by the latest list naming it (``jobs.add_job_column``, as the
    registry's exports); no such column where it holds none."""
    from .citizen import damage_columns
    from .frames import frame_keys
    from .jobs import add_job_column
    from .store import Store

    keys = frame_keys(frames) if frames else None
    with Store.for_config(store, cfg) as st:
        # run id: <time>-<OUT name>
        res = st.merge(cands, {"label": Path(run_info["out"]).name, **run_info}, cfg, frames=keys)
        reg = st.states(res.mapping.values())  # this run's registry candidates only, not the whole registry
        registry = st.identity()  # report.html's crew entries: those of this registry's reports (report.crew_meta)
        matched = None  # citizen reports (住民通報), matched to the damages as they are now: the lists' columns
        if st.has_reports():
            from .citizen import damage_matches, registry_matches

            if reports:  # report.html's 住民通報 layer: the registry's all (citizen.run_reports picks the run's)
                matched = summary.reports = registry_matches(st, cfg)[0]
            else:  # the lists' counts only: the reports near this run's damages
                matched = damage_matches(st, cfg, res.mapping.values())
        # each damage's repair job by the latest jobs list naming it (None: the registry holds no jobs list; read only)
        jobs_of = st.damage_jobs()
        converted = st.conversion_notice()  # the first write of a new release: older PCs now refuse the registry
    if converted:
        summary.warnings.append(converted)
    summary.new, summary.seen_again, summary.reopened = len(res.new), len(res.seen_again), len(res.reopened)
    summary.run_id = res.run_id if res.changed else None
    summary.unchanged = len(res.unchanged)
    summary.copies = [c.as_dict() for c in res.copies]
    summary.warnings.extend(c.message for c in res.copies)
    summary.renamed = [r.as_dict() for r in res.renamed]
    summary.warnings.extend(r.message for r in res.renamed)
    summary.backfilled = dict(res.backfilled)
    summary.registry_outcome = {r: k for k, ids in (("already_there", res.unchanged), ("seen_again", res.seen_again),
                                                    ("reopened", res.reopened), ("new", res.new)) for r in ids}
    summary.passed_unseen, summary.passed_unseen_by_drive = res.passed_unseen, res.passed_unseen_by_drive
    summary.passed_unseen_n = dict(res.n_unseen)
    summary.unseen_ring_passes = int(cfg.store.unseen_ring_passes)
    summary.outputs["store"] = store
    if len(cands):
        cands = cands.copy()
        cands["run_candidate_id"] = cands["candidate_id"]
        cands["candidate_id"] = [res.mapping.get(i, c) for i, c in zip(cands.index, cands["candidate_id"])]
        status = dict(zip(reg["candidate_id"], reg["status"])) if len(reg) else {}
        note = dict(zip(reg["candidate_id"], reg["status_note"])) if len(reg) else {}
        changed = dict(zip(reg["candidate_id"], reg["status_changed_at"])) if len(reg) else {}
        cands["status"] = [status.get(c, "new") for c in cands["candidate_id"]]
        cands["status_note"] = [note.get(c) for c in cands["candidate_id"]]
        # when the status last changed: the repair list carries it, so that a crew's list filled in after the
        # office changed a damage is held or outdated on import, not applied over the office's change
        cands["status_changed_at"] = [changed.get(c) for c in cands["candidate_id"]]
        # the drives past each damage, sighted or not (the registry's passes; the repair list's 通過 columns)
        for col in ("n_passes", "n_unseen", "n_poor_look", "last_passed"):
            got = dict(zip(reg["candidate_id"], reg[col])) if len(reg) else {}
            cands[col] = [got.get(c) for c in cands["candidate_id"]]
        # its citizen reports (the lists' 住民通報 columns, as the registry's exports: 0 for none, empty where the
        # registry holds no reports)
        if matched is not None:
            cands["reports"], cands["reported_first"] = damage_columns(matched, cands["candidate_id"])
        else:
            cands["reports"] = cands["reported_first"] = None
        # its repair job (補修工区), an open one's, as the registry's exports give it: a job_id column only where the
        # registry holds a jobs list (repair_list.csv, candidates.geojson and report.html then carry it)
        cands = add_job_column(cands, jobs_of)
        cands = one_row_per_registry_id(cands)
        cands.attrs["registry"] = registry
    return cands


def one_row_per_registry_id(cands):
    """The registry may fold two of a run's candidates into one known damage (pieces of one crack the run placed
    more than distance_m apart: ``store.absorb_fragments``). The run's outputs then show that damage once, as the
    registry does: the most confident piece, with the sightings, drives and images of all pieces."""
    import pandas as pd

    dup = cands["candidate_id"].duplicated(keep=False)
    if not dup.any():
        return cands
    keep = []
    for _, g in cands[dup].groupby("candidate_id", sort=False):
        best = g.loc[g["confidence"].idxmax()].copy()
        best["n_obs"] = int(g["n_obs"].sum())
        if "severity" in g:
            best["severity"] = g["severity"].max()
        for col, pick in (("first_seen", min), ("last_seen", max)):
            if col in g:
                vals = [v for v in g[col] if isinstance(v, str) and v]
                if vals:
                    best[col] = pick(vals, key=lambda v: pd.Timestamp(v))
        if "last_drive" in g and "last_seen" in g:  # the latest sighting's drive: of the piece seen last
            seen = [(pd.Timestamp(t), str(d)) for t, d in zip(g["last_seen"], g["last_drive"])
                    if isinstance(t, str) and t and isinstance(d, str) and d]
            if seen:
                best["last_drive"] = max(seen)[1]
        for col in ("drives", "images", "observations"):
            if col in g:
                merged: list = []
                for v in g[col]:
                    for x in (list(v) if isinstance(v, (list, tuple, np.ndarray)) else []):
                        if col == "observations" or x not in merged:
                            merged.append(x)
                best[col] = sorted(merged) if col != "observations" else merged
        keep.append(best)
    out = pd.concat([cands[~dup], pd.DataFrame(keep)])
    return out.loc[[i for i in cands.index if i in out.index]]


def write_candidate_outputs(cands, out: Path, summary: RunSummary, busy: BusyOutputs | None = None,
                            cfg: Config | None = None) -> None:
    """candidates.geojson and repair_list.csv (with ``cfg``'s kept road fields, ``roads.keep_fields``). With
    ``busy``, a file another program holds open (the crew's Excel on Windows) is noted there and the other is still
    written; without, it raises OutputInUseError."""
    from .export import road_columns, write_candidates_geojson, write_repair_list

    own = busy is None
    busy = BusyOutputs() if own else busy
    kept = road_columns(cfg)
    with busy.write():
        write_candidates_geojson(cands, out / "candidates.geojson", road_fields=kept)
    with busy.write():  # a crop that could not be replaced holds another photo: not linked
        write_repair_list(cands, out / "repair_list.csv", stale=busy.paths, road_fields=kept,
                          map_url=cfg.export.map_url if cfg is not None else None)
    summary.outputs["candidates"] = out / "candidates.geojson"
    summary.outputs["repair_list"] = out / "repair_list.csv"
    if own:
        busy.check()


def _out_not_a_drive(out: Path, drives: list[Path]) -> None:
    """OUT may lie inside a drive folder (it is skipped as frames), but not be one: every output (crops, CSVs, the
    resume state) would be read as that drive's frames."""
    for d in drives:
        if out.resolve() == d.resolve():
            raise InputError("the output folder is the drive folder: its outputs would be read as frames; "
                             "give --out another folder (a subfolder of it will do)", out)


def run_pipeline(drives: list[Path], roads: Path, out: Path, cfg: Config, weights: Path | None = None,
                 store: Path | None = None, progress=None, detector=None, report: bool = True,
                 tracks: Iterable[Path] = (), warnings: Iterable[str] = ()) -> RunSummary:
    """The whole job for ``patrol run``. Returns a RunSummary; outputs are in ``out``. ``warnings``: the caller's
    (e.g. thresholds tuned at another image size), put first in the summary and summary.json."""
    from .frames import drive_name
    from .infer import resolve_weights
    from .roads import load_roads

    t0 = time.perf_counter()
    names = [drive_name(d) for d in drives]  # `patrol run .` or a link: the folder's own name, as in frames.csv
    summary = RunSummary(out=out, drives=names, warnings=list(warnings))
    real = [d.resolve() for d in drives]
    for i, a in enumerate(real):  # one folder twice (another path, a link) or a drive inside another: frames read twice
        for j, b in enumerate(real):
            if i < j and a == b:
                raise InputError(f"the same folder is given twice (also as {drives[i]})", drives[j])
            if a != b and a.is_relative_to(b):
                raise InputError(f"lies inside the drive folder {drives[j]}: its frames would be read twice, "
                                 "as two passes; pass one of them", drives[i])
    _out_not_a_drive(out, drives)
    tracks = check_track_files(tracks)
    if len(set(names)) != len(names):
        raise InputError(f"two drives share the folder name {sorted(n for n in names if names.count(n) > 1)[0]!r}; "
                         "drive names identify passes", drives[0])
    # fail fast on the cheap inputs before the slow stage
    net = load_roads(roads, cfg)
    summary.lap("roads", t0)
    weights = resolve_weights(cfg, weights)  # ModelError when the file is missing
    summary.weights = weights
    if store is not None:
        from .store import check_store

        check_store(store, cfg)
    out.mkdir(parents=True, exist_ok=True)
    with OutLock(out):
        return _run_locked(drives, roads, out, cfg, weights, store, progress, detector, report, net, names, summary, t0,
                           tracks)


def _run_locked(drives, roads, out, cfg, weights, store, progress, detector, report, net, names, summary, t0,
                tracks=()):
    from .frames import write_frames_csv

    remove_stale_temps(out)
    man = Manifest(out)
    # a file another program holds open (Excel, a photo viewer) does not keep the others from being written; every
    # such file is named at the end, in one line (exit 2)
    busy = BusyOutputs()

    lap = time.perf_counter()
    frames = stage_frames(drives, cfg, out, man, summary, progress, tracks=tracks, busy=busy)
    _check_usable(frames, drives, cfg, out, summary)
    lap = summary.lap("frames", lap)
    frames, det = stage_detect(frames, cfg, out, weights, man, summary, progress, detector=detector, busy=busy)
    with busy.write():
        write_frames_csv(frames, out / "frames.csv")
    summary.outputs["frames"] = out / "frames.csv"
    summary.outputs["detections"] = out / "detections.csv"
    lap = summary.lap("detect", lap)

    _, located, cands, warnings = locate_and_dedupe(det, roads, cfg, net=net, frames=frames)
    summary.warnings.extend(warnings)
    summary.rear_heading = located.attrs.get("rear_heading", {})
    count_sightings(summary, cands)
    lap = summary.lap("locate", lap)
    if len(cands):
        cands = attach_crops(cands, frames, cfg, out, progress, busy)
    lap = summary.lap("crops", lap)
    checkpoint("before_store")
    if store is not None:
        cands = merge_into_store(cands, store, {"drives": names, "out": str(out.resolve()), "weights": str(weights)},
                                 cfg, summary, frames=frames, reports=report)
        lap = summary.lap("registry", lap)
    prune_crops(cands, out, busy)
    write_candidate_outputs(cands, out, summary, busy, cfg)
    checkpoint("candidates_written")
    from .patrol_log import write_patrol_log

    write_patrol_log(names, frames, det, cands, net, cfg, out, summary, busy)  # patrol_log.csv/.xlsx

    if report:
        write_run_reports(cands, frames, net, cfg, out, summary, busy)
    summary.lap("exports", lap)
    busy.check()  # before summary.json: a failed run writes none

    _fill_frame_counts(summary, frames)
    summary.hits = len(det)
    summary.hits_unlocated = int((~det.has_position).sum()) if len(det) else 0
    summary.candidates = len(cands)
    summary.seconds = time.perf_counter() - t0
    write_summary_json(summary, "run", cfg)
    return summary


def _fill_frame_counts(summary: RunSummary, frames) -> None:
    summary.frames_total = len(frames)
    summary.frames_ok = sum(f.status == "ok" for f in frames)
    summary.frames_rejected = summary.frames_total - summary.frames_ok
    summary.frames_interpolated = sum(f.status == "ok" and f.position_source == "interpolated" for f in frames)
    summary.frames_from_track = sum(f.status == "ok" and f.position_source == "track_file" for f in frames)
    summary.frames_rear = sum(f.status == "ok" and f.camera == "rear" for f in frames)
    poor: dict[str, int] = {}
    for f in frames:
        if f.status == "ok" and f.look:
            poor[f.drive] = poor.get(f.drive, 0) + 1
    summary.poor_look = poor
    reasons: dict[str, int] = {}
    for f in frames:
        if f.status != "ok":
            code = (f.reason or "unknown").split(":")[0]
            reasons[code] = reasons.get(code, 0) + 1
    summary.rejected_reasons = dict(sorted(reasons.items()))


def attach_crops(cands, frames, cfg: Config, out: Path, progress=None, busy: BusyOutputs | None = None):
    """Cut the best frame of each candidate (box drawn, faces/plates blurred) into OUT/crops/ and a column.

    A crop is reused when what decides its pixels (the frame file's path, size and mtime, the box, the label and
    the privacy settings) is what ``.work/crops.json`` recorded for any crop of the last run, whatever that
    candidate's id was then: the blur is the slow part, and a resumed run, or one with another road network
    (other segment ids, so other candidate ids), would otherwise redo every crop.

    A crop file another program holds open (a photo viewer, on Windows) that would change stays as it is, is not
    recorded in the index (the next run cuts it again) and is noted in ``busy`` (else OutputInUseError once every
    other crop is cut); the candidate keeps the new crop's bytes (the registry, report.html's thumbnail)."""
    from .atomic import OutputInUseError, remove_output, safe_child, write_photo
    from .crops import CROP_VERSION, make_crop
    from .frames import FrameError, load_image

    by_key = {(f.drive, f.name): f for f in frames}
    crop_dir = out / "crops"
    index_path = out / WORK / "crops.json"
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = {}
    privacy = config_fingerprint(cfg)["privacy"]

    def save_index():
        atomic_write_text(index_path, json.dumps(index, indent=0, sort_keys=True))

    def key_of(row, cls):
        f = by_key.get((row.best_drive, row.best_image))
        box = [float(row.best_x1), float(row.best_y1), float(row.best_x2), float(row.best_y2)]
        label = f"{cls} {row.confidence:.2f}"
        try:
            return f, box, label, _sha1([file_fingerprint(Path(f.path)), box, label, privacy, CROP_VERSION]) if f else None
        except OSError:
            return f, box, label, None

    # zip the class column in: itertuples renames ``class`` (a keyword) to a positional name
    rows = [(row.candidate_id, *key_of(row, cls)) for row, cls in zip(cands.itertuples(index=False), cands["class"])]
    # the crops recorded under any id are read before any is written (ids can swap between runs), and an id whose
    # file is about to change leaves the index first, so a run killed meanwhile never reuses a wrong photo
    wanted = {r[-1] for r in rows}
    known: dict[str, bytes] = {}
    for cid, key in index.items():
        if key in wanted and key not in known:
            try:
                known[key] = safe_child(crop_dir, f"{cid}.jpg").read_bytes()
            except (OSError, ValueError):
                pass
    index = {cid: index[cid] for cid, *_, key in rows if cid in index and index[cid] == key and key in known}
    save_index()

    def one(item):
        cid, f, box, label, key = item
        path = safe_child(crop_dir, f"{cid}.jpg")
        data = known.get(key) if key is not None else None
        if data is not None and index.get(cid) == key and path.is_file():
            return data, key
        try:
            if key is None:
                raise FrameError("decode_failed: the frame file is gone")
            data = data if data is not None else make_crop(load_image(f), box, cfg, label=label)
            write_photo(path, data)
            return data, key
        except OutputInUseError as e:  # the old file stays: not recorded, so cut again by the next run
            held.add(e)
            return data, None
        except (FrameError, OSError, ValueError):
            # no crop this time: an older file under this id (other privacy settings, or another candidate's
            # photo when ids moved) must not stay for the repair list's photo column to point at
            try:
                remove_output(path)
            except OutputInUseError as e:
                held.add(e)
            except OSError:
                pass
            return None, None

    # the cascades and JPEG coding release the GIL: crops run on all cores
    from concurrent.futures import ThreadPoolExecutor

    held = BusyOutputs() if busy is None else busy
    crops = []
    # the index is saved every 5 % of the crops (at most ~20 writes), so a run killed while cutting the crops of
    # a long drive (minutes: the blur costs more than detection per candidate) keeps what it had cut
    every = max(1, len(rows) // 20)
    # minutes on a long drive, after the detection bar is full: say so, or the run looks hung
    task = progress.add_task("Cutting crops (privacy blur)", total=len(rows)) if progress else None
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for n, (cid, (data, key)) in enumerate(zip((r[0] for r in rows), pool.map(one, rows)), start=1):
            if progress:
                progress.advance(task, 1)
            crops.append(data)
            if key is not None:
                index[cid] = key
            if n % every == 0 and n < len(rows):
                save_index()
                checkpoint("crops_index_saved")
    save_index()
    if busy is None:
        held.check()
    cands = cands.copy()
    cands["crop_jpeg"] = crops
    return cands


def prune_crops(cands, out: Path, busy: BusyOutputs | None = None) -> None:
    """OUT/crops/ holds exactly the photos of the rows written: not those of run pieces the registry folded into
    another row (``one_row_per_registry_id``), nor those of an earlier run into the same OUT. One held open by a
    photo viewer stays and is noted in ``busy`` (``atomic.keep_only_photos``)."""
    from .atomic import keep_only_photos, safe_child

    crop_dir = out / "crops"
    col = "run_candidate_id" if "run_candidate_id" in cands.columns else "candidate_id"
    keep_only_photos(crop_dir, {safe_child(crop_dir, f"{c}.jpg").name for c in cands[col]} if len(cands) else set(),
                     busy)


class OutLock(FileLock):
    """One run at a time per OUT folder (two clerks running into the same OUT would interleave artifacts).
    A second run waits for the first (flock; released by the OS even after kill -9)."""

    def __init__(self, out: Path):
        def busy(_pid) -> None:
            import sys

            print(f"{out}: another run is using this folder; waiting for it", file=sys.stderr)

        super().__init__(out / WORK / "run.lock", busy)


def remove_stale_temps(out: Path) -> None:
    """Temp files of atomic writes left by a killed run (``.<name>.<random>.tmp``) are removed on the next run."""
    for folder in (out, out / WORK, out / "crops"):
        if folder.is_dir():
            for p in folder.glob(".*.tmp"):
                try:
                    p.unlink()
                except OSError:
                    pass


def write_run_reports(cands, frames, net, cfg: Config, out: Path, summary: RunSummary,
                      busy: BusyOutputs | None = None) -> None:
    """segments.geojson and report.html for this run (the registry has its own exports). ``busy``: as for
    ``write_candidate_outputs``."""
    import pandas as pd

    from .export import run_photos
    from .report import export
    from .segments import condition_damages, look_headings, segment_condition, write_segments_geojson

    ok = [f for f in frames if f.status == "ok" and np.isfinite(f.lat)]
    tz = cfg.tz  # a frame's time without its zone is on the config's clock (as the registry reads it)
    fdf = pd.DataFrame({"lat": [f.lat for f in ok], "lon": [f.lon for f in ok], "heading": [f.heading for f in ok],
                        "drive": [f.drive for f in ok], "status": ["ok"] * len(ok),
                        "t": [np.nan if f.time is None else (f.time if f.time.tzinfo else f.time.replace(tzinfo=tz))
                              .timestamp() for f in ok], "look": [f.look for f in ok]})
    # the network's kept road fields on every row; the period (the first and last good-look frame of this run over
    # each segment, as the registry's export dates them: first_surveyed, last_surveyed) in segments.geojson and the
    # report's condition layer; with --store the damages the registry's condition counts (condition_damages: a
    # repaired or not-an-issue one is no damage of the road), all of them without
    # each damage's best frame's heading (reversed for a rear camera): which way its crack runs from its chainage
    dmg = condition_damages(cands)
    if dmg is not None and len(dmg):
        dmg = dmg.assign(look_heading=look_headings(
            dmg, {(f.drive, f.name): f.heading for f in ok}, cfg, {(f.drive, f.name): f.camera == "rear" for f in ok}))
    seg = segment_condition(net, dmg, fdf, cfg, period=True)
    own = busy is None
    busy = BusyOutputs() if own else busy
    with busy.write():  # the width the crack rates took, as the registry's export records it in its meta
        write_segments_geojson(seg, out / "segments.geojson",
                               meta={"survey_width_m": float(cfg.segments.survey_width_m)})
    summary.outputs["segments"] = out / "segments.geojson"
    roads_wgs84 = net.gdf.to_crs(4326)
    # with --store, the registry's citizen reports of this run (README: citizen reports): those of the damages it saw
    # and those 未確認 within reports.radius_m of its track (its used frames); none: the page as without reports
    shown, reports = cands, None
    if summary.reports is not None and len(summary.reports):
        from .citizen import add_report_columns, run_reports

        ids = cands["candidate_id"] if "candidate_id" in cands.columns else []
        reports = run_reports(summary.reports, ids, fdf["lat"], fdf["lon"], cfg.reports.radius_m)
        if len(reports):
            shown = add_report_columns(cands, reports)  # (its rows and order: run_photos' of cands)
            shown.attrs = dict(cands.attrs)
        else:
            reports = None
    if reports is None and "reports" in cands.columns:  # the lists' columns: none in a page without reports
        shown = cands.drop(columns=["reports", "reported_first"])
        shown.attrs = dict(cands.attrs)
    # the popups link each crop's full photo in OUT/crops/ (cut before; the registry export writes its own folder)
    with busy.write():
        export(shown, "html", out / "report.html", cfg, roads_wgs84=roads_wgs84, segments=seg,  # its condition layer
               photos=run_photos(cands, out, stale=busy.paths), reports=reports)
    summary.outputs["report"] = out / "report.html"
    if own:
        busy.check()


def locate_only(csvs: list[Path], roads: Path, out: Path, cfg: Config, store: Path | None = None) -> RunSummary:
    """`patrol locate`: detections files in, candidates out (no images needed)."""
    t0 = time.perf_counter()
    summary = RunSummary(out=out)
    if store is not None:
        from .store import check_store

        check_store(store, cfg)
    det = Detections.concat([read_detections_csv(p) for p in csvs])
    det = det.apply_thresholds(cfg.thresholds())
    summary.drives = sorted(set(det.drive.tolist()))
    out.mkdir(parents=True, exist_ok=True)
    frames = _frames_beside(csvs)
    net, located, cands, warnings = locate_and_dedupe(det, roads, cfg, frames=frames)
    summary.warnings.extend(warnings)
    summary.rear_heading = located.attrs.get("rear_heading", {})
    count_sightings(summary, cands)
    if store is not None:
        cands = merge_into_store(cands, store, {"drives": summary.drives, "out": str(out.resolve()),
                                                "detections": [str(p) for p in csvs]}, cfg, summary, frames=frames)
    write_candidate_outputs(cands, out, summary, cfg=cfg)
    if frames is not None:  # the frames.csv beside each detections file: the drives' patrol log
        from .patrol_log import write_patrol_log

        # every drive of those frames.csv files, a patrol without a hit over the thresholds (a clean road) included:
        # one row each, as patrol run writes (summary.drives names only the drives with detections)
        drives = sorted(set(summary.drives) | {f.drive for f in frames if f.drive})
        write_patrol_log(drives, frames, det, cands, net, cfg, out, summary)
    summary.hits = len(det)
    summary.hits_unlocated = int((~det.has_position).sum()) if len(det) else 0
    if summary.hits and summary.hits_unlocated == summary.hits:  # photos without GPS detected without --track
        summary.warnings.append(
            f"{', '.join(Path(p).name for p in csvs)}: none of the {summary.hits} hits has a position (lat/lon "
            "empty: photos without GPS), so no damage was placed; give the drive's GPS log to patrol detect "
            "--track FILE (or patrol run --track FILE) and locate its detections.csv again")
    summary.candidates = len(cands)
    summary.seconds = time.perf_counter() - t0
    write_summary_json(summary, "locate", cfg)
    return summary


def _frames_beside(csvs: list[Path]) -> list | None:
    """The frames of the drives of these detections files, from the ``frames.csv`` a run or detect wrote beside
    each (so `patrol locate` tells phones' folders apart as the run did); None when one has none."""
    from .frames import read_frames_csv

    frames = []
    for p in csvs:
        fc = Path(p).parent / "frames.csv"
        if not fc.is_file():
            return None
        try:
            frames += read_frames_csv(fc)
        except InputError:
            return None
    return frames


def detect_only(images: Path, out: Path, cfg: Config, weights: Path | None = None, progress=None,
                tracks: Iterable[Path] = (), warnings: Iterable[str] = ()) -> RunSummary:
    """`patrol detect`: detection over a folder of images, with or without EXIF (positions from track files too);
    ``warnings`` as in run_pipeline."""
    from .frames import drive_name, write_frames_csv
    from .infer import resolve_weights

    t0 = time.perf_counter()
    if not images.is_dir():
        raise InputError("not a folder", images)
    _out_not_a_drive(out, [images])
    tracks = check_track_files(tracks)
    out.mkdir(parents=True, exist_ok=True)
    weights = resolve_weights(cfg, weights)
    summary = RunSummary(out=out, drives=[drive_name(images)], weights=weights, warnings=list(warnings))
    busy = BusyOutputs()  # detections.csv or frames.csv open in Excel: the other is still written, then exit 2
    frames = scan_drives([images], cfg, out, tracks, summary, progress, busy=busy)
    detect_unplaced(frames)
    _check_usable(frames, [images], cfg, out, summary)
    man = Manifest(out)
    # the detect stage's key holds the frames' names and statuses only: in a run, the frames stage forgets it when any
    # file changed. Here the scan is done every time, so the journal decides (each file's size and mtime): a photo
    # changed under its name (its EXIF back, another picture) is read again, the others are not detected again
    man.forget("detect")
    frames, det = stage_detect(frames, cfg, out, weights, man, summary, progress, busy=busy)
    with busy.write():
        write_frames_csv(frames, out / "frames.csv")
    summary.outputs["detections"] = out / "detections.csv"
    summary.outputs["frames"] = out / "frames.csv"
    busy.check()  # before summary.json: a failed run writes none
    _fill_frame_counts(summary, frames)
    summary.hits = len(det)
    summary.seconds = time.perf_counter() - t0
    write_summary_json(summary, "detect", cfg)
    return summary


POSITION_REASONS = {"no_gps_fix", "bad_gps"}


def detect_unplaced(frames) -> None:
    """Detection only (detect, label-set): an image without a position is still an image to detect on (its
    ``no_gps_fix`` / ``bad_gps`` rejection taken back)."""
    for f in frames:
        if f.status != "ok" and f.reason.split(":")[0] in POSITION_REASONS:
            f.status, f.reason = "ok", ""
