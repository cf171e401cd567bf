"""Dashcam / phone videos as patrol input: the start time from the container, frames sampled by distance travelled.

Contracts:

* ``sniff_video(head)`` -> "mp4" | "mov" | "avi" | "": ISO BMFF (an ``ftyp`` box whose brand is not an image or
  audio brand; a QuickTime file starting with ``moov``/``mdat``/``wide``/``free``) or RIFF ``AVI ``, by content.
* ``read_video_info(path)`` walks the top-level boxes (32- and 64-bit sizes) itself: ``moov/mvhd`` creation time
  (UTC seconds since 1904-01-01; 0, or a date before 2000, is a camera clock never set -> None with a note) and
  duration; the boxes of its tracks are walked for their sizes (the codec a failure names is OpenCV's), the first
  video track's edit list for a leading empty edit (``video_offset_s``: the track shown from that time of the
  movie on; a frame's time in the video is OpenCV's + this). A file
  whose last box runs past its end, or without a ``moov`` box, is ``truncated``. AVI: no creation time is read (the file name gives it).
* ``video_start(info, name, tz, clock_offset_s, covered)``: the recording's start (UTC-aware) and its ``time_source``:
  ``video_utc`` (mvhd creation time, UTC as the format says), ``video_local`` (mvhd holding the camera's local wall
  time, told by a dated file name that shows the same wall time), ``video_utc_end`` / ``video_local_end`` (a camera
  that writes the creation time when the recording ends: creation time − duration is within 5 s of the file name's
  time, and the creation time itself is not), ``video_name`` (the file name's date-time,
  ``20261112_093015.mp4``, ``2026_1112_093015_001.MP4``, ``VID_20261112_093015.mp4``, in the config's time zone).
  Given ``covered`` (the share of the video a GPS track covers), a creation time readable both ways (UTC or the
  camera's wall clock: a camera set to UTC writes UTC in its file name too) is read the way the track covers.
  ``frames.camera_clock_offset_s`` is taken off as for a photo's camera time.
* ``extract(...)`` streams the video with ``cv2.VideoCapture`` (one frame in memory) and keeps a frame when the
  vehicle has moved ``every_m`` since the last kept one (positions from the track files at the frame's time), or
  ``max_interval_s`` has passed (a stopped vehicle, a time without a track position): a survey wants one frame per
  few metres of road, not 30 frames a second of a red light. Kept frames are written as JPEG (quality 92) with an
  ``index.json`` recording what decided them; a later call with the same video (size and a hash of its first and
  last 4 MB: ``fingerprint``; not its mtime, so a copied drive is not decoded again), start, settings and tracks
  reuses them without decoding. Taken again, the old frames go after the new ones are written; a frame file that
  another program holds open (Windows) is handled as ``extract`` says. An extraction whose decoding stopped early
  also keeps the whole file's sha1 (``full_sha1``), checked on reuse: a damaged copy copied again right at the same
  size is decoded again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["VIDEO_FORMATS", "VideoInfo", "VideoError", "Extracted", "sniff_video", "read_video_info", "video_start",
           "name_time", "extract", "clock_label", "video_folder", "fingerprint", "full_sha1", "stopped_early"]

VIDEO_FORMATS = ("mp4", "mov", "avi")
JPEG_QUALITY = 92
_INDEX = "index.json"
_INDEX_VERSION = 2  # 2: the video by size + a hash of its ends, not its mtime
_EPOCH_1904 = datetime(1904, 1, 1, tzinfo=timezone.utc)
_MIN_YEAR = 2000  # a creation time before this is a camera clock never set (0 = 1904, or the 1970 Unix epoch)
_MAX_MOOV = 256 * 1024 * 1024
_HASH_BYTES = 4 * 1024 * 1024  # the video's first and last 4 MB tell it from another (fingerprint)
_CHUNK_S = 10.0  # extract: the track positions of this many seconds of frames are looked up at once
_CHUNK_MAX = 3000  # ... at most this many grid points (a broken frame rate)
#: extract: a stretch of at least this many seconds in which the track says no frame can be kept (a stop at a light,
#: every_m not reached before max_interval_s) is passed over by a seek, not decoded frame by frame (None: never)
SKIP_MIN_S: float | None = 2.0
# ... a frame is passed over only while the track puts it this much short of every_m from the last kept one (the
# loop's own positions are the same track's, interpolated on the frame-rate grid: off by centimetres at a turn)
_SKIP_MARGIN_M = 0.25
_END_TOL_S = 5.0  # a creation time this close to the file name's time + the length was written at the end
_IMAGE_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1", b"mif2",
                 b"miaf", b"avif", b"avis"}
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_QT_START = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}
# a date-time in a file name: 20261112_093015, 2026_1112_093015_001, 2026-11-12_09-30-15, VID_20261112_093015
_NAME_RE = re.compile(r"(?<!\d)(20\d\d)[-_]?(\d\d)[-_]?(\d\d)[-_T ]?(\d\d)[-_.]?(\d\d)[-_.]?(\d\d)(?!\d)")


class VideoError(Exception):
    """A video that gives no frames; ``reason`` is a frames.csv reason (``truncated: …``, ``decode_failed: …``)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def sniff_video(head: bytes) -> str:
    """"mp4" | "mov" | "avi" | "" from a file's first bytes (at least 12)."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS or brand in _AUDIO_BRANDS:
            return ""
        return "mov" if brand == b"qt  " else "mp4"
    if len(head) >= 8 and head[4:8] in _QT_START and not 2 <= int.from_bytes(head[:4], "big") < 8:
        return "mov"  # an older QuickTime file without ftyp
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    return ""


@dataclass
class VideoInfo:
    fmt: str = ""
    creation: datetime | None = None  # mvhd creation_time (UTC as written), None when absent or never set
    duration_s: float = math.nan
    notes: list[str] = field(default_factory=list)  # why the creation time is not used, a cut-off file …
    # where the video track's first frame is shown in the movie: its edit list's leading empty edit (a track that
    # starts after the movie's start, which the creation time is of); OpenCV's frame times count from that frame
    video_offset_s: float = 0.0


def _boxes(fh, start: int, end: int):
    """(type, payload offset, payload end, declared end) of the boxes in [start, end)."""
    pos = start
    while pos + 8 <= end:
        fh.seek(pos)
        hdr = fh.read(8)
        if len(hdr) < 8:
            return
        size, kind = struct.unpack(">I4s", hdr)
        body = pos + 8
        if size == 1:
            ext = fh.read(8)
            if len(ext) < 8:
                yield kind, body, end, math.inf
                return
            size = struct.unpack(">Q", ext)[0]
            body += 8
        elif size == 0:
            size = end - pos
        if size < body - pos:
            raise VideoError(f"corrupt: video: box '{kind.decode('latin-1')}' has a bad size ({size})")
        yield kind, body, min(pos + size, end), pos + size
        pos += size


def read_video_info(path: Path, fmt: str) -> VideoInfo:
    """The container's creation time and duration (MP4/MOV); raises VideoError for a cut-off or damaged
    container. AVI files are left to OpenCV (``fmt`` "avi": only the format is set)."""
    info = VideoInfo(fmt=fmt)
    if fmt == "avi":
        return info
    size = path.stat().st_size
    with open(path, "rb") as fh:
        moov = None
        for kind, body, stop, declared in _boxes(fh, 0, size):
            if declared > size:
                if kind == b"moov" or moov is None:
                    raise VideoError(f"truncated: video: the file ends inside its '{kind.decode('latin-1')}' box and "
                                     "has no index (moov): the recording was cut off before the camera closed it")
                info.notes.append(f"the file ends inside its '{kind.decode('latin-1')}' box (cut off)")
            if kind == b"moov":
                if stop - body > _MAX_MOOV:
                    raise VideoError("corrupt: video: index (moov) larger than 256 MB")
                fh.seek(body)
                moov = fh.read(stop - body)
        if moov is None:
            raise VideoError("truncated: video: no index (moov box): the recording was cut off before the camera "
                             "closed the file")
    _parse_moov(moov, info)
    return info


def _parse_moov(moov: bytes, info: VideoInfo) -> None:
    """The creation time and duration from ``moov``'s ``mvhd`` box; the boxes of its tracks are walked too (a bad
    box size in them is a corrupt video), the first video track's edit list for its leading empty edit."""
    import io

    fh = io.BytesIO(moov)
    scale_of = [0]
    tracks: list[dict] = []  # per trak: handler type, leading empty edit (movie time scale units)

    def walk(start: int, end: int):
        for kind, body, stop, _ in _boxes(fh, start, end):
            if kind == b"trak":
                tracks.append({"hdlr": b"", "empty": 0})
            if kind == b"hdlr" and tracks and not tracks[-1]["hdlr"]:  # mdia's (before a QuickTime minf's)
                fh.seek(body)
                d = fh.read(12)
                if len(d) == 12:
                    tracks[-1]["hdlr"] = d[8:12]
            elif kind == b"elst" and tracks:
                fh.seek(body)
                d = fh.read(min(stop - body, 8 + 20 * 64))
                v = d[0] if d else 0
                fmt_, size = (">QqI", 20) if v == 1 else (">IiI", 12)
                n = struct.unpack(">I", d[4:8])[0] if len(d) >= 8 else 0
                for e in range(min(n, (len(d) - 8) // size)):
                    seg, media_time, _ = struct.unpack(fmt_, d[8 + e * size:8 + (e + 1) * size])
                    if media_time != -1:
                        break
                    tracks[-1]["empty"] += seg  # an empty edit: nothing of this track shown for seg
            if kind == b"mvhd":
                fh.seek(body)
                d = fh.read(stop - body)
                if len(d) >= 20 and d[0] == 1 and len(d) >= 32:
                    created, scale, dur = struct.unpack(">Q", d[4:12])[0], *struct.unpack(">IQ", d[20:32])
                elif len(d) >= 20:
                    created, scale, dur = struct.unpack(">I", d[4:8])[0], *struct.unpack(">II", d[12:20])
                else:
                    continue
                if scale:
                    info.duration_s = dur / scale
                    scale_of[0] = scale
                _creation(created, info)
            elif kind in _CONTAINERS:
                walk(body, stop)

    try:
        walk(0, len(moov))
        video_tracks = [tr for tr in tracks if tr["hdlr"] == b"vide"]
        if video_tracks and scale_of[0] and video_tracks[0]["empty"]:
            info.video_offset_s = video_tracks[0]["empty"] / scale_of[0]
    except VideoError:
        raise
    except Exception as e:  # a damaged index: OpenCV may still read the video; the time falls back to the name
        info.notes.append(f"index (moov) damaged: {type(e).__name__}")


def _creation(seconds: int, info: VideoInfo) -> None:
    if seconds == 0:
        info.notes.append("mvhd creation time 0 (not set)")
        return
    try:
        t = _EPOCH_1904 + timedelta(seconds=seconds)
    except OverflowError:
        info.notes.append(f"mvhd creation time {seconds} out of range")
        return
    if not (_MIN_YEAR <= t.year <= 2100):
        info.notes.append(f"mvhd creation time {t:%Y-%m-%d %H:%M:%S} (camera clock not set)")
        return
    info.creation = t


def name_time(name: str) -> datetime | None:
    """The (naive, local) date-time in a video's file name, or None."""
    m = _NAME_RE.search(Path(name).stem)
    if not m:
        return None
    try:
        return datetime(*map(int, m.groups()))
    except ValueError:
        return None


def video_start(info: VideoInfo, name: str, tz: tzinfo, clock_offset_s: float = 0.0,
                covered: Callable[[float, float], float] | None = None) -> tuple[datetime | None, str, str]:
    """(start as UTC-aware datetime, time_source, note). None and the reason when there is no time at all.

    ``covered(start, duration)`` (UTC epoch s, s), where the drive has a GPS track (the track files in the video's
    reach; not the drive's geotagged photos, ``frames._gps_cover``): the share of the video's span it covers. A creation time that can be read two ways (the name's wall
    clock, or no name: UTC as the format says or the camera's local wall clock) is read the other way when the
    track covers none of the video read today's way and some of it read the other way (a camera set to UTC writes
    UTC in both its file name and its creation time); the note says so."""
    start, src, note, alt = _reading(info, name, tz)
    if start is None:
        why = "; ".join(info.notes) or ("AVI: no creation time read" if info.fmt == "avi" else "no mvhd creation time")
        return None, "", (f"{why}, and the file name holds no date-time (as in 20261112_093015.mp4 or "
                          "2026_1112_093015_001.MP4)")
    try:
        start = (start - timedelta(seconds=clock_offset_s)).astimezone(timezone.utc)
        if alt is not None:
            alt = ((alt[0] - timedelta(seconds=clock_offset_s)).astimezone(timezone.utc), alt[1])
    except (OverflowError, ValueError):
        return None, "", "start time out of range after frames.camera_clock_offset_s"
    if alt is not None and covered is not None and alt[0] != start:
        dur = info.duration_s if math.isfinite(info.duration_s) and info.duration_s > 0 else 0.0
        now, other = covered(start.timestamp(), dur), covered(alt[0].timestamp(), dur)
        if now <= 0.0 < other:
            wall, named = info.creation.replace(tzinfo=None), name_time(name)
            said = (f"the file name's {named:%Y-%m-%d %H:%M:%S} and the mvhd creation time {wall:%H:%M:%S}"
                    if named is not None else f"the mvhd creation time {wall:%Y-%m-%d %H:%M:%S} (no date in the name)")
            how, was = ("UTC", f"local time ({tz})") if alt[1] in ("video_utc", "video_utc_end") else \
                (f"local time ({tz})", "UTC")
            note = "; ".join(filter(None, [note, (
                f"{said} read as {how}, the camera's clock set so "
                f"(start {alt[0].astimezone(tz):%Y-%m-%d %H:%M:%S} {tz}, {alt[1]}): the GPS track covers "
                f"{other:.0%} of the video so, none of it read as {was}")]))
            start, src = alt
    return start, src, note


def _reading(info: VideoInfo, name: str, tz: tzinfo
             ) -> tuple[datetime | None, str, str, tuple[datetime, str] | None]:
    """The start by today's rule (README), its time_source and note, and the other reading of the same creation
    time (UTC <-> the camera's wall clock) where it can be read both ways, else None."""
    named = name_time(name)
    dur = info.duration_s if math.isfinite(info.duration_s) and info.duration_s > 0 else 0.0
    tol = timedelta(seconds=120 + dur)
    if info.creation is not None and named is not None:
        as_local = named.replace(tzinfo=tz)
        wall = info.creation.replace(tzinfo=None)  # the camera's wall clock, if that is what it wrote
        close = timedelta(seconds=_END_TOL_S)
        length = timedelta(seconds=dur)
        ended = dur > 2 * _END_TOL_S and not (abs(info.creation - as_local) <= close or abs(wall - named) <= close)
        if ended and abs(info.creation - length - as_local) <= close:  # written when the recording ended
            return info.creation - length, "video_utc_end", "", None
        if ended and abs(wall - length - named) <= close:  # ... or a name and a creation time both in UTC
            return (wall - length).replace(tzinfo=tz), "video_local_end", "", (info.creation - length, "video_utc_end")
        if abs(info.creation - as_local) <= tol:
            return info.creation, "video_utc", "", None
        if abs(wall - named) <= tol:  # the camera wrote its wall clock there, or UTC in both
            return wall.replace(tzinfo=tz), "video_local", "", (info.creation, "video_utc")
        return as_local, "video_name", (f"mvhd creation time {info.creation:%Y-%m-%d %H:%M:%S} UTC disagrees with "
                                        f"the file name's {named:%Y-%m-%d %H:%M:%S} ({tz}); the file name used"), None
    if info.creation is not None:  # UTC as the format says, or a camera that writes its wall clock there
        return info.creation, "video_utc", "", (info.creation.replace(tzinfo=tz), "video_local")
    if named is not None:
        return named.replace(tzinfo=tz), "video_name", "", None
    return None, "", "", None


def clock_label(t: float) -> str:
    """A time within a video as a player shows it: 1:23.4, 1:02:03.4."""
    t = max(0.0, t)
    tenths = int(round(t * 10))
    s, f = divmod(tenths, 10)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{h}:{m:02d}:{s:02d}.{f}" if h else f"{m}:{s:02d}.{f}"


def video_folder(root: Path, drive: str, name: str) -> Path:
    """Where a video's frames go: ROOT/<drive>/<folder in the drive>/<file name with . as _>/."""
    rel = Path(name)
    return root / drive / rel.parent / rel.name.replace(".", "_")


@dataclass
class Extracted:
    frames: list[dict]  # {"t": seconds into the video, "file": JPEG name, "width", "height"}
    reused: bool = False
    decoded: int = 0  # frames the video has up to where decoding ended (0 when reused), those passed over included
    skipped: int = 0  # ... of them passed over by a seek (SKIP_MIN_S), not decoded one by one
    duration_s: float = math.nan
    notes: list[str] = field(default_factory=list)


def fingerprint(path: Path) -> list:
    """[size, sha1 of the first and last ``_HASH_BYTES``]: what tells a video from another without reading it all
    (8 MB at most). Not its modification time: a drive copied to a NAS keeps its extracted frames. A camera never
    rewrites the middle of a file in place; a video replaced by another, or re-encoded, differs at its start (the
    first frames) and its end (the index, moov, of sample sizes and times)."""
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        h.update(fh.read(_HASH_BYTES))
        if size > _HASH_BYTES:
            fh.seek(max(_HASH_BYTES, size - _HASH_BYTES))
            h.update(fh.read(_HASH_BYTES))
    return [size, h.hexdigest()]


def stopped_early(notes) -> bool:
    """Do an extraction's notes (index.json's, a VideoUse's) say its decoding stopped early? Its reuse then checks
    the whole file's hash (``extract``)."""
    return any(str(n).startswith("decoding stopped") for n in notes)


def _damaged(index: dict) -> bool:
    """An extraction whose decoding stopped early (an index written before its whole-file hash was kept, too)."""
    return stopped_early(index.get("notes", []))


def full_sha1(path: Path) -> str:
    """sha1 of the whole file (read in 1 MB blocks): the reuse key of a video whose decoding stopped early."""
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def extract(path: Path, folder: Path, start: float, locate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
            every_m: float, max_interval_s: float, key: dict | None = None,
            progress: Callable[[int, int], None] | None = None, busy=None, info: VideoInfo | None = None
            ) -> Extracted:
    """Sample ``path`` into JPEGs in ``folder`` (see the module doc); ``start`` is its start (UTC epoch s),
    ``locate(times)`` the vehicle's (lat, lon) arrays at UTC epoch ``times`` (NaN where no track places it); it is
    asked for the next ``_CHUNK_S`` seconds of frames at once (frame k at k / fps, as a constant-frame-rate camera
    writes them) and for one frame alone whose time stamp is another. ``key`` (what else decided the frames: the
    tracks) goes into index.json; a folder whose index matches is reused. ``progress(done, total)`` is called as
    frames are decoded. Raises VideoError when the video cannot be opened or decodes no frame.

    A frame file another program holds open (a photo viewer, on Windows: it can be neither replaced nor deleted)
    stays as it is: one that holds this frame's bytes already is used, one that holds another picture is left out
    (and no index.json is written, so the next call takes the video again), an old one no longer wanted stays. Each
    is an ``atomic.OutputInUseError`` noted in ``busy`` (an ``atomic.BusyOutputs``), else raised at the end.

    A frame's time is its presentation time in the movie: OpenCV's (from the video track's first frame shown) +
    the track's leading empty edit (``info.video_offset_s``, an MP4/MOV edit list; ``info`` is read from the file
    when not given). A container whose frame count holds frames its edit list does not show (a clip cut without
    re-encoding) is counted by its duration (mvhd)."""
    import cv2

    from .atomic import BusyOutputs, OutputInUseError, atomic_write_text, holds, remove_output, replace_output
    from .frames import _fd2_captured
    from .geo import distance_bearing

    own = busy is None
    busy = BusyOutputs() if own else busy
    if info is None:
        with open(path, "rb") as fh:
            fmt = sniff_video(fh.read(64))
        try:
            info = read_video_info(path, fmt) if fmt else VideoInfo()
        except VideoError:
            info = VideoInfo()  # OpenCV says what is wrong with it below
    shift = info.video_offset_s if math.isfinite(info.video_offset_s) else 0.0
    base = start + shift  # the epoch of OpenCV's time 0 (the first frame shown)
    want = {"v": _INDEX_VERSION, "video": fingerprint(path), "start": round(start, 3), "every_m": every_m,
            "max_interval_s": max_interval_s, "quality": JPEG_QUALITY, "key": key or {}}
    if shift:  # (an extraction made before the offset was read is taken again; one without an offset stays)
        want["offset_s"] = round(shift, 6)
    index = folder / _INDEX
    try:
        old = json.loads(index.read_text(encoding="utf-8"))
        if (old.get("want") == want and all((folder / f["file"]).is_file() for f in old["frames"])
                and (not _damaged(old) or old.get("sha1") == full_sha1(path))):
            # frames of an earlier extraction that a viewer kept from being removed go now
            _remove_others(folder, {f["file"] for f in old["frames"]}, busy)
            if own:
                busy.check()
            return Extracted(frames=old["frames"], reused=True, duration_s=old.get("duration_s", math.nan),
                             notes=old.get("notes", []))
    except (OSError, ValueError, KeyError, TypeError):
        old = None
    folder.mkdir(parents=True, exist_ok=True)
    n_busy = len(busy.errors)
    # the index goes first: a run killed from here on takes the video again. The old frames stay until the new
    # ones are written (a frame a viewer holds open is then kept where it has the same bytes) and go after
    with busy.write():
        remove_output(index)

    with _fd2_captured() as said:  # FFmpeg prints why it cannot open a file on stderr ("moov atom not found")
        cap = _capture(cv2, path)
        opened = cap.isOpened()
    ffmpeg_said = " ".join(said[0].split())[-160:] if said and said[0] else ""
    if not opened:
        cap.release()
        raise VideoError("decode_failed: video: OpenCV cannot open it" + (f" ({ffmpeg_said})" if ffmpeg_said else ""))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        shown_s = info.duration_s - shift  # the video track's frames shown (an edit list may leave some out)
        if fps > 0 and math.isfinite(shown_s) and shown_s > 0 and total > round(shown_s * fps) + 1:
            total = int(round(shown_s * fps))
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC) or 0)
        kept: list[dict] = []
        last_t = last_pos = None
        last_label = ""
        k, prev_pts = 0, -math.inf
        stem = path.stem
        # a broken frame rate (90000) must not make one chunk of a million frames
        per_chunk = min(max(2, int(round(fps * _CHUNK_S))), _CHUNK_MAX) if fps > 0 and _CHUNK_S > 0 else 0
        ahead_t, ahead_lat, ahead_lon = np.empty(0), np.empty(0), np.empty(0)

        def position(pts: float) -> tuple[float, float] | None:
            """The track's position at pts: interpolated between the positions taken at once for a chunk of the
            frame rate's grid ahead (one track lookup per chunk, not per frame; the track is linear between its
            points, so this is the lookup's own answer but at a point's corner, within one frame interval), or
            looked up alone where a grid neighbour has none (the track's ends, a gap). Time stamps rounded to
            the millisecond, dropped frames and a variable frame rate all stay on the chunk."""
            nonlocal ahead_t, ahead_lat, ahead_lon
            if per_chunk and not (len(ahead_t) and ahead_t[0] <= pts <= ahead_t[-1]):
                ahead_t = pts + np.arange(per_chunk) / fps
                ahead_lat, ahead_lon = locate(base + ahead_t)
            if per_chunk:
                x = (pts - ahead_t[0]) * fps
                i = min(int(x), per_chunk - 2)
                f = x - i
                a, b = (ahead_lat[i], ahead_lon[i]), (ahead_lat[i + 1], ahead_lon[i + 1])
                if not any(math.isnan(v) for v in (*a, *b)):
                    return float(a[0] + f * (b[0] - a[0])), float(a[1] + f * (b[1] - a[1]))
            la, lo = locate(np.array([base + pts]))
            return None if math.isnan(la[0]) else (float(la[0]), float(lo[0]))

        skipped, passed, cfr, landing = 0, 0, fps > 0 and total > 0 and SKIP_MIN_S is not None, None

        def skip_to(pts: float) -> int | None:
            """After a frame kept at ``pts`` (frame k - 1): the frame to seek to when the track says that none of
            the next SKIP_MIN_S seconds or more can be kept, as the loop decides it: each frame on the frame rate's
            grid up to it is 2 frames short of max_interval_s and placed by the track at least _SKIP_MARGIN_M short
            of every_m from the kept position, or not placed (a gap in the track; not at a gap's edge), so the
            frames sampled are those of decoding every one. None: decode on."""
            # (at most _CHUNK_MAX frames looked up at once: a broken frame rate of 90,000 with an hour's
            # max_interval_s asked for 324 M track positions)
            n = int(min(min(max_interval_s, 3600.0) * fps, _CHUNK_MAX))
            least = max(SKIP_MIN_S * fps, 48)  # a seek decodes from a key frame ~16 frames or more before its frame
            if n < least + 2:  # (no track lookup for it at a low frame rate)
                return None
            j = k + np.arange(n)  # frames k .. k + n - 1
            la, lo = locate(base + j / fps)
            placed = np.isfinite(la) & np.isfinite(lo)
            if last_pos is None:  # the first frame the track places is kept
                near = np.zeros(n, bool)
            else:
                d = distance_bearing(last_pos[0], last_pos[1], np.where(placed, la, 0.0), np.where(placed, lo, 0.0))[0]
                near = d < every_m - min(_SKIP_MARGIN_M, 0.2 * every_m)
            ok = (j / fps - pts < max_interval_s - 2.0 / fps) & np.where(placed, near, True)
            edge = np.flatnonzero(placed[1:] != placed[:-1])  # frames beside a gap's edge are decoded
            ok[edge] = ok[np.minimum(edge + 1, n - 1)] = False
            stop = int(np.argmin(ok)) if not ok.all() else n
            target = int(k + stop - 2)  # the last 2 frames before one that may be kept are decoded
            return target if target - k >= least else None

        while cap.grab():
            pts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if landing is not None:  # the first frame after a seek must be the frame sought, at its time
                if not (math.isfinite(pts) and abs(pts - landing / fps) < 0.5 / fps):
                    cap.release()  # an inexact seek: from the start again, frame by frame, without seeking
                    cap = _capture(cv2, path)
                    for _ in range(landing + 1):
                        if not cap.grab():
                            break
                    pts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                    cfr, skipped = False, skipped - passed  # decoded after all
                landing = None
            if cfr and not (math.isfinite(pts) and abs(pts - k / fps) < 0.5 / fps):
                cfr = False  # time stamps off the frame rate's grid (a variable frame rate): no seeking
            if not math.isfinite(pts) or pts <= prev_pts:  # no or broken time stamps: the frame rate's
                pts = k / fps if fps > 0 else prev_pts + 1 / 30
            prev_pts = pts
            pos = position(pts)
            k += 1
            if progress and (k % 25 == 0):
                progress(k, total)
            if last_t is None:
                keep = True
            elif pos is None or last_pos is None:
                keep = pts - last_t >= max_interval_s or (pos is not None and last_pos is None)
            else:
                keep = distance_bearing(*last_pos, *pos)[0] >= every_m or pts - last_t >= max_interval_s
            if not keep or clock_label(pts + shift) == last_label:
                continue
            ok, img = cap.retrieve()
            if not ok or img is None or img.size == 0:
                continue
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                continue
            fname = f"{stem}@{pts + shift:08.3f}s.jpg"
            data, target = buf.tobytes(), folder / fname
            last_t, last_pos, last_label = pts, pos, clock_label(pts + shift)  # sampled, whether written or not
            if not holds(target, data):  # a frame taken again from the same video, at the same time
                tmp = folder / f".{fname}.tmp"
                tmp.write_bytes(data)
                try:
                    replace_output(tmp, target)
                except OutputInUseError as e:  # held open with another picture: this frame is left out
                    tmp.unlink(missing_ok=True)
                    busy.add(e)
                    continue
            kept.append({"t": round(pts + shift, 3), "file": fname, "width": int(img.shape[1]), "height": int(img.shape[0])})
            target = skip_to(pts) if cfr else None
            if target is not None and target < total and cap.set(cv2.CAP_PROP_POS_FRAMES, target):
                passed = target - k
                skipped += passed
                k = landing = target
        if progress:
            progress(k, max(total, k))
    finally:
        cap.release()
    codec = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00 ") if fourcc else ""
    if not k:
        raise VideoError("decode_failed: video: OpenCV decodes no frame of it"
                         + (f" (codec {codec})" if codec else "") + (f" ({ffmpeg_said})" if ffmpeg_said else ""))
    notes = []
    duration = k / fps if fps > 0 else prev_pts
    doc: dict = {"want": want, "frames": kept, "decoded": k, "duration_s": duration, "notes": notes}
    if total > 0 and k < 0.95 * total - 1:
        notes.append(f"decoding stopped after {k} of {total} frames, at {clock_label(prev_pts + shift)} (the file is cut off "
                     "or damaged); the frames before are used")
        # a damaged video is the one likely to be repaired or copied again at the same size, its middle changed:
        # its reuse also checks a hash of the whole file (read once more here, and on each rerun of it only)
        doc["sha1"] = full_sha1(path)
    left_out = len(busy.errors) > n_busy  # a frame not written (or the old index not removed)
    _remove_others(folder, {f["file"] for f in kept}, busy)  # the old frames; a killed run's temp files
    if not left_out:
        atomic_write_text(index, json.dumps(doc, indent=1))
    if own:
        busy.check()
    return Extracted(frames=kept, decoded=k, skipped=skipped, duration_s=duration, notes=notes)


def _capture(cv2, path: Path):
    """OpenCV's FFmpeg capture of ``path``, turning the frames as the video's display matrix says (a phone held
    upright stores its frames sideways with a 90 degree matrix: OpenCV's default since 4.5, set here in case)."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if cap.isOpened():
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def _remove_others(folder: Path, keep: set[str], busy) -> None:
    """Remove the frames of ``folder`` not in ``keep`` and any temp file; one held open is noted in ``busy``."""
    from .atomic import remove_output

    held = busy.paths
    for p in sorted(folder.glob("*.jpg")):
        if p.name not in keep and str(p) not in held:
            with busy.write():
                remove_output(p)
    for p in folder.glob(".*.tmp"):
        try:
            p.unlink()
        except OSError:
            pass


def track_key(tracks) -> str:
    """A digest of the tracks' points (what positions decided the frames)."""
    h = hashlib.sha1()
    for tr in tracks:
        for a in (tr.t, tr.lat, tr.lon, tr.seg):
            h.update(a.tobytes())
    return h.hexdigest()
