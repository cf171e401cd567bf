"""One columnar ``Detections`` type (numpy arrays, like supervision's) and the detections.csv schema.

detections.csv columns (contract): image,time,lat,lon,heading,class,confidence,x1,y1,x2,y2,width,height
Extra columns may follow; this project writes ``drive`` (several passes in one run) and ``camera`` ("front" or
"rear": a two-channel dashcam's rear camera, ``frames.rear``, whose damages lie behind the vehicle; a file without
the column, or an empty cell, leaves it to ``locate``, which applies the config's ``frames.rear`` to the image name).
Empty lat/lon/heading/time are allowed (images without EXIF) and read back as NaN / "".
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from . import CLASS_IDS
from .errors import InputError, read_input_bytes
from .textio import TextEncodingError, decode_text, table_delimiter

COLUMNS = ["image", "time", "lat", "lon", "heading", "class", "confidence", "x1", "y1", "x2", "y2", "width", "height"]
EXTRA_COLUMNS = ["drive", "camera"]
CAMERAS = ("front", "rear")


@dataclass
class Detections:
    """Columnar detections. All arrays have length N; ``xyxy`` is (N, 4) float pixel boxes."""

    image: np.ndarray  # object (str)
    time: np.ndarray  # object (ISO 8601 str with offset, or "")
    lat: np.ndarray  # float64, NaN when unknown
    lon: np.ndarray  # float64
    heading: np.ndarray  # float64 degrees clockwise from true north, NaN when unknown
    class_id: np.ndarray  # object (D00|D10|D20|D40)
    confidence: np.ndarray  # float64
    xyxy: np.ndarray  # float64 (N, 4)
    width: np.ndarray  # int64 image width
    height: np.ndarray  # int64 image height
    drive: np.ndarray  # object (drive / pass name)
    camera: np.ndarray = None  # object: "front" | "rear" | "" (unknown: locate applies frames.rear to the name)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.camera is None:
            self.camera = np.full(len(self.image), "front", dtype=object)

    def __len__(self) -> int:
        return len(self.image)

    def __getitem__(self, idx) -> "Detections":
        if isinstance(idx, (int, np.integer)):
            idx = [idx]
        return Detections(
            **{name: getattr(self, name)[idx] for name in _ARRAYS},
            extra={k: v[idx] for k, v in self.extra.items()},
        )

    @classmethod
    def empty(cls) -> "Detections":
        return cls(
            image=np.array([], dtype=object), time=np.array([], dtype=object),
            lat=np.array([], dtype=float), lon=np.array([], dtype=float), heading=np.array([], dtype=float),
            class_id=np.array([], dtype=object), confidence=np.array([], dtype=float),
            xyxy=np.zeros((0, 4), dtype=float), width=np.array([], dtype=np.int64),
            height=np.array([], dtype=np.int64), drive=np.array([], dtype=object), camera=np.array([], dtype=object),
        )

    @classmethod
    def from_arrays(cls, *, image, class_id, confidence, xyxy, width, height, time="", lat=np.nan, lon=np.nan,
                    heading=np.nan, drive="", camera="front", extra: dict | None = None) -> "Detections":
        n = len(confidence)

        def col(v, dtype):
            if isinstance(v, (str, float, int)) or v is None:
                return np.full(n, v if v is not None else (np.nan if dtype is float else ""), dtype=dtype)
            return np.asarray(v, dtype=dtype)

        return cls(
            image=col(image, object), time=col(time, object), lat=col(lat, float), lon=col(lon, float),
            heading=col(heading, float), class_id=col(class_id, object), confidence=col(confidence, float),
            xyxy=np.asarray(xyxy, dtype=float).reshape(n, 4), width=col(width, np.int64), height=col(height, np.int64),
            drive=col(drive, object), camera=col(camera, object), extra={k: np.asarray(v) for k, v in (extra or {}).items()},
        )

    @classmethod
    def concat(cls, parts: Sequence["Detections"]) -> "Detections":
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        keys = set(parts[0].extra)
        for p in parts[1:]:
            keys &= set(p.extra)
        return cls(
            **{name: np.concatenate([getattr(p, name) for p in parts]) for name in _ARRAYS},
            extra={k: np.concatenate([p.extra[k] for p in parts]) for k in sorted(keys)},
        )

    def filter(self, mask: np.ndarray) -> "Detections":
        return self[np.asarray(mask, dtype=bool)]

    def apply_thresholds(self, thresholds: dict[str, float]) -> "Detections":
        thr = np.array([thresholds.get(c, 1.01) for c in self.class_id], dtype=float)
        return self.filter(self.confidence >= thr)

    @property
    def has_position(self) -> np.ndarray:
        return np.isfinite(self.lat) & np.isfinite(self.lon)

    def times(self) -> np.ndarray:
        """Times as float UNIX seconds (NaN where unknown)."""
        out = np.full(len(self), np.nan)
        cache: dict[str, float] = {}
        for i, t in enumerate(self.time):
            if t:
                if t not in cache:
                    try:
                        cache[t] = datetime.fromisoformat(t).timestamp()
                    except ValueError:
                        cache[t] = math.nan
                out[i] = cache[t]
        return out


_ARRAYS = ["image", "time", "lat", "lon", "heading", "class_id", "confidence", "xyxy", "width", "height", "drive",
           "camera"]


def _fmt_float(v: float, nd: int) -> str:
    return "" if not np.isfinite(v) else f"{v:.{nd}f}"


def detections_rows(det: Detections, with_drive: bool = True) -> Iterable[list[str]]:
    for i in range(len(det)):
        x1, y1, x2, y2 = det.xyxy[i]
        row = [
            det.image[i], det.time[i] or "", _fmt_float(det.lat[i], 7), _fmt_float(det.lon[i], 7),
            _fmt_float(det.heading[i], 1), det.class_id[i], f"{det.confidence[i]:.4f}",
            f"{x1:.1f}", f"{y1:.1f}", f"{x2:.1f}", f"{y2:.1f}", str(int(det.width[i])), str(int(det.height[i])),
        ]
        if with_drive:
            row += [det.drive[i] or "", det.camera[i] or ""]
        yield row


def header(with_drive: bool = True) -> list[str]:
    return COLUMNS + (EXTRA_COLUMNS if with_drive else [])


def write_detections_csv(det: Detections, path: str | Path, with_drive: bool = True) -> None:
    from .atomic import atomic_write

    with atomic_write(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header(with_drive))
        w.writerows(detections_rows(det, with_drive))


def _parse_float(s: str, path: Path, line: int, col: str, allow_empty: bool) -> float:
    s = (s or "").strip()
    if not s:
        if allow_empty:
            return math.nan
        raise InputError(f"line {line}: empty value", path, col)
    try:
        v = float(s)
    except ValueError:
        raise InputError(f"line {line}: not a number: {s[:40]!r}", path, col) from None
    if not math.isfinite(v):
        raise InputError(f"line {line}: not a finite number: {s[:40]!r}", path, col)
    return v


#: a time as Excel shows and saves one it has read as a date (``2026/11/20 9:30``, ``2026-11-20 9:30``: the seconds
#: shown only where the cell's format has them, never the offset)
_EXCEL_TIME = re.compile(r"\d{4}[/-]\d{1,2}[/-]\d{1,2}[ T]\d{1,2}:\d{2}(:\d{2})?")


def _excel_time(t: str) -> str:
    """What to add to the message of a refused time that looks like Excel rewrote it: what happened, what to do."""
    if not _EXCEL_TIME.fullmatch(t):
        return " (expected e.g. 2026-11-20T09:30:05+09:00)"
    lost = "the seconds and the UTC offset" if t.count(":") == 1 else "the UTC offset"
    return (f": a spreadsheet (Excel) rewrote the time column as a date when it opened the file, and {lost} are lost, "
            "which patrol does not guess (the sightings' times place and count them); use the detections.csv "
            "patrol wrote, or open it in Excel by Data > From Text/CSV with the time column as Text before saving "
            "(expected e.g. 2026-11-20T09:30:05+09:00)")


def read_detections_csv(path: str | Path, drive: str | None = None) -> Detections:
    """Read a detections.csv (ours or anyone's in the schema), validating every field.

    Text by :mod:`detector.textio`'s rule (UTF-8 with or without BOM, UTF-16 with a BOM, Shift_JIS (cp932): Excel's
    "CSV UTF-8", "Unicode text" and "CSV (comma delimited)"); tab-separated where the header row has tabs and no comma
    (Excel's "Unicode text"). Times must be ISO 8601 with seconds and UTC offset, as patrol writes them (like
    frames.csv's): a time Excel rewrote (``2026/11/20 9:30``) is refused with what happened and what to do.

    ``drive``: the pass name for rows without a ``drive`` column; default: the file's stem
    (``toyama-2026-11-p1.oracle.csv`` -> ``toyama-2026-11-p1``).
    """
    path = Path(path)
    if drive is None:
        drive = path.name.split(".")[0]
    raw = read_input_bytes(path)
    try:
        text, _ = decode_text(raw)  # detector.textio's rule: UTF-8, UTF-16 with a BOM, else Shift_JIS (cp932)
    except TextEncodingError:
        raise InputError("neither UTF-8, UTF-16 nor Shift_JIS (cp932) text: use the detections.csv patrol wrote, or "
                         "save it from Excel as \"CSV UTF-8\"", path) from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=table_delimiter(text))
    try:
        head = next(reader)
    except StopIteration:
        raise InputError("empty file: expected a header row " + ",".join(COLUMNS), path) from None
    except csv.Error as e:
        raise InputError(f"not CSV: {e}", path) from None
    head = [h.strip() for h in head]
    missing = [c for c in COLUMNS if c not in head]
    if missing:
        raise InputError(f"missing column(s) {','.join(missing)}; expected header {','.join(COLUMNS)}", path, missing[0])
    ix = {c: head.index(c) for c in head}
    cols: dict[str, list] = {k: [] for k in ("image", "time", "lat", "lon", "heading", "class", "conf", "xyxy", "w", "h", "drive",
                                             "camera")}
    try:
        for line, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < len(head):
                raise InputError(f"line {line}: {len(row)} fields, header has {len(head)}", path)
            get = lambda c: row[ix[c]]  # noqa: E731
            img = get("image").strip()
            if not img:
                raise InputError(f"line {line}: empty image name", path, "image")
            t = get("time").strip()
            if t:
                try:
                    dt = datetime.fromisoformat(t)
                except ValueError:
                    raise InputError(f"line {line}: not an ISO 8601 time: {t[:40]!r}{_excel_time(t)}", path,
                                     "time") from None
                if dt.tzinfo is None:
                    raise InputError(f"line {line}: time without UTC offset: {t[:40]!r}{_excel_time(t)}", path,
                                     "time")
            lat = _parse_float(get("lat"), path, line, "lat", True)
            lon = _parse_float(get("lon"), path, line, "lon", True)
            if math.isfinite(lat) and not -90 <= lat <= 90:
                raise InputError(f"line {line}: latitude out of range: {lat}", path, "lat")
            if math.isfinite(lon) and not -180 <= lon <= 180:
                raise InputError(f"line {line}: longitude out of range: {lon}", path, "lon")
            hd = _parse_float(get("heading"), path, line, "heading", True)
            c = get("class").strip()
            if c not in CLASS_IDS:
                raise InputError(f"line {line}: unknown class {c[:20]!r}; expected one of {'|'.join(CLASS_IDS)}", path, "class")
            conf = _parse_float(get("confidence"), path, line, "confidence", False)
            if not 0.0 <= conf <= 1.0:
                raise InputError(f"line {line}: confidence outside 0..1: {conf}", path, "confidence")
            box = [_parse_float(get(k), path, line, k, False) for k in ("x1", "y1", "x2", "y2")]
            for lo, hi, col in ((0, 2, "x2"), (1, 3, "y2")):
                if box[hi] < box[lo]:
                    raise InputError(f"line {line}: box corner {col}={box[hi]:g} is before {'x1' if col == 'x2' else 'y1'}="
                                     f"{box[lo]:g}", path, col)
            w = _parse_float(get("width"), path, line, "width", False)
            h = _parse_float(get("height"), path, line, "height", False)
            if w <= 0 or h <= 0:
                raise InputError(f"line {line}: image size must be positive", path, "width")
            cols["image"].append(img)
            cols["time"].append(t)
            cols["lat"].append(lat)
            cols["lon"].append(lon)
            cols["heading"].append(hd % 360.0 if math.isfinite(hd) else hd)
            cols["class"].append(c)
            cols["conf"].append(conf)
            cols["xyxy"].append(box)
            cols["w"].append(int(w))
            cols["h"].append(int(h))
            cols["drive"].append((row[ix["drive"]].strip() if "drive" in ix else "") or drive)
            cam = row[ix["camera"]].strip().lower() if "camera" in ix else ""
            if cam not in CAMERAS + ("",):
                raise InputError(f"line {line}: unknown camera {cam[:20]!r}; expected front or rear (or empty: "
                                 "frames.rear decides)", path, "camera")
            cols["camera"].append(cam)
    except csv.Error as e:
        raise InputError(f"not CSV: {e}", path) from None
    n = len(cols["image"])
    return Detections(
        image=np.array(cols["image"], dtype=object), time=np.array(cols["time"], dtype=object),
        lat=np.array(cols["lat"], dtype=float), lon=np.array(cols["lon"], dtype=float),
        heading=np.array(cols["heading"], dtype=float), class_id=np.array(cols["class"], dtype=object),
        confidence=np.array(cols["conf"], dtype=float), xyxy=np.array(cols["xyxy"], dtype=float).reshape(n, 4),
        width=np.array(cols["w"], dtype=np.int64), height=np.array(cols["h"], dtype=np.int64),
        drive=np.array(cols["drive"], dtype=object), camera=np.array(cols["camera"], dtype=object),
    )
