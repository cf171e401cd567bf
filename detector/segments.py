"""Segment condition: per road segment and per fixed bin along it (segments.geojson).

``segment_condition(net, cands, frames, cfg)`` returns one row per (level, segment, bin):

- ``level``: ``segment`` (the whole segment) or ``bin<L>`` for each ``cfg.segments.bins_m`` (``bin20``,
  ``bin100``).  Bins start at the segment's first vertex; every bin is ``L`` long except the last, which takes
  the remainder (the number of bins is ``round(length / L)``, at least 1, so the last bin is 0.5 L .. 1.5 L).
  A bin's geometry is ``shapely.ops.substring`` of the line.
- ``n_D00 .. n_D40``, ``n_total``: candidates (``class``, ``segment_id``, ``chainage_m``) on the segment / in
  the bin (a candidate belongs to the bin holding its chainage).  Count what you pass: filter statuses
  before calling (``condition_damages``, ``condition_statuses``: the open ones, for a run with ``--store`` and the
  registry's export alike).
- ``surveyed_m``: length of the segment/bin within ``cfg.segments.coverage_radius_m`` of an ``ok`` frame
  position, counting a frame only for roads whose direction agrees with its heading (within
  ``cfg.locate.heading_tolerance_deg``, either direction; frames without heading count for every road
  near them).  The covered piece of a line around a frame at distance d is ``s +- sqrt(r^2 - d^2)`` along it
  (exact for a straight line); the pieces are unioned per segment.  ``coverage`` = surveyed_m / length_m.
- ``valid``: coverage >= ``cfg.segments.min_coverage`` (default 50 %).
- ``damage_index``: weighted damage count per 100 m *surveyed*:
  ``100 * sum_c weight_c * n_c / surveyed_m`` with ``cfg.segments.weights`` (D00 1, D10 1, D20 3, D40 5):
  a pothole weighs like five linear cracks.  NaN when nothing was surveyed.  (The crack rate below estimates
  the MCI's crack ratio from the damages' sizes; this count-based index and ``condition`` stay as they were.)
- ``condition``: 1 (good) .. 5 (bad) from ``damage_index`` and ``cfg.segments.thresholds`` (upper bounds of
  classes 1..4; default 2, 5, 10, 20 per 100 m: one crack in a fully surveyed 100 m bin is class 1, one
  pothole is 3; one pothole in a 20 m bin is 5).  Null (pandas ``<NA>``) when not ``valid``: an unsurveyed road
  is never called good.
- ``severity_max``: the largest candidate ``severity`` (NaN without candidates / column).
- ``crack_area_m2``: the crack area of the counted candidates (``crack_area``: from each one's class and estimated
  size, ``est_width_m`` across the road × ``est_length_m`` along it, as the 舗装調査・試験法便覧 mesh method counts
  area: a linear crack 0.3 m² per metre, D00 along its length, D10 along its width; D20 and D40 width × length).
  An estimate from the best box on a flat-road camera model, not a measured area (no mesh survey).  A length over
  ``RELIABLE_LENGTH_M`` (10 m) counts 10 m (``crack_lengths``).  A candidate's area is spread over the chainage
  interval it covers (``crack_extent``: from its chainage, its near edge, away from the camera of its best sighting,
  the candidates' optional ``look_heading``, degrees true; centred where unknown; clipped to the segment), each bin
  the share of it that overlaps the bin, so the segment row's area is the sum of its bins'.  ``n_no_estimate``: the
  counted candidates without a size (not in the area; the rate is low by theirs).  ``n_capped``: those whose length
  counted 10 m (in the bin holding their chainage, as the counts).
- ``crack_rate``: ひび割れ率 %, ``100 * crack_area_m2 / (surveyed_m * cfg.segments.survey_width_m)`` (default 3.0 m,
  one lane), one decimal, at most 100; NaN when nothing was surveyed (as ``damage_index``).
- ``diagnosis``: 診断区分 of 舗装点検要領 (H28.10) from the crack rate as written: "I" (健全) below 20 %, "II"
  (表層機能保持段階) from 20 %, "III" (修繕段階) from 40 % (``DIAGNOSIS_BOUNDS``); None when not ``valid``, as
  ``condition``.
- ``mci_crack``: MCI1 = 10 - 2.23 C^0.3 of the crack rate, one decimal: an UPPER bound of the MCI (the least of MCI,
  MCI0, MCI1, MCI2; rutting and roughness are not measured by a camera).
- the kept road fields (``roads.keep_fields``, under their output names ``export.road_columns``: ``road_<name>``
  where one is named like a column of ours, ``level`` and ``condition`` included) right after ``road_name``, on every
  row of the segment, its bins too: the segment's own values as ``RoadNetwork.fields`` holds them (int, float, str,
  bool, None), in object columns so that an integer field with gaps stays integers. From a ``RoadNetwork``'s
  ``fields``, or from a GeoDataFrame's columns of those names.

Segments with neither a surveyed metre nor a candidate are omitted (they were not driven).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from shapely.ops import substring

from . import CLASS_IDS
from .atomic import atomic_write_text
from .config import bin_level
from .export import SEGMENT_COLUMNS as OUT_COLUMNS  # in export: a kept road field named like one gets road_
from .export import _after_road_name, road_columns

#: the registry's export (``patrol export --format segments``): when the frames that surveyed a segment were taken
PERIOD_COLUMNS = ["first_surveyed", "last_surveyed"]

#: crack area per metre of a linear crack (D00, D10), m²/m: the mesh method (舗装調査・試験法便覧 S029) counts a
#: 0.5 m cell crossed by one crack as 0.15 m², so a crack L m long crossing L / 0.5 cells is 0.3 L m²
CRACK_M2_PER_M = 0.15 / 0.5
#: the crack rate's bounds of 診断区分 II and III (舗装点検要領, 平成28年10月: 損傷レベル 小 0-20 %, 中 20-40 %,
#: 大 40 % or more): below the first I, from the first II, from the second III
DIAGNOSIS_BOUNDS = (20.0, 40.0)
#: 診断区分 (I, II, III) and their words (日本語, English)
DIAGNOSIS = ("I", "II", "III")
DIAGNOSIS_WORDS = (("健全", "sound"), ("表層機能保持段階", "surface repair stage"), ("修繕段階", "repair stage"))


def crack_area(cls, width, length) -> tuple[np.ndarray, np.ndarray]:
    """Each damage's crack area (m², as the mesh method counts it) from its class and estimated size (``est_width_m``
    across the road, ``est_length_m`` along it), and whether it has none: a longitudinal crack D00
    ``CRACK_M2_PER_M`` × its length, a transverse crack D10 ``CRACK_M2_PER_M`` × its width (the crack runs across),
    alligator cracking D20 and a pothole D40 (the mesh method counts patching and potholes whole) width × length;
    a size missing, non-positive or unreadable: area 0 and ``no_estimate`` True (another class: area 0, not
    counted as missing)."""
    cls = np.asarray(cls, dtype=object).astype(str)
    w = pd.to_numeric(pd.Series(np.asarray(width, dtype=object)), errors="coerce").to_numpy(float)
    ln = pd.to_numeric(pd.Series(np.asarray(length, dtype=object)), errors="coerce").to_numpy(float)
    area = np.zeros(len(cls))
    missing = np.zeros(len(cls), bool)
    for kind, a in (("D00", CRACK_M2_PER_M * ln), ("D10", CRACK_M2_PER_M * w), ("D20", w * ln), ("D40", w * ln)):
        m = cls == kind
        has = np.isfinite(a) & (a > 0)
        area[m & has] = a[m & has]
        missing |= m & ~has
    return area, missing


#: the along-road length one frame measures reliably, m. The ground-plane model puts a pixel row at
#: d = h / tan(angle below the horizon), so a 1° error of the pitch (a phone's mount, the road's slope, the car's
#: pitching) moves a point 10 m ahead by -13..+18 % (the default mounting: 1.3 m, 8°), 20 m ahead by -21..+38 %,
#: 30 m ahead by -26..+72 %; and a box whose far edge reaches ``camera.max_distance_m`` gives a length that ends
#: where the camera stops measuring, not where the crack does (the sample's 28.4-28.5 m cracks). A box's near edge
#: is ~1.5-5 m ahead, so a length over this has its far edge where a frame no longer measures: for the crack rate
#: it counts this long (``crack_lengths``; the registry's ``est_length_m`` is not changed)
RELIABLE_LENGTH_M = 10.0


def crack_lengths(cands: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(the along-road length of each damage that the crack rate counts, m; whether it was limited). A length over
    ``RELIABLE_LENGTH_M`` counts that long: its box's far edge lies beyond what one frame measures reliably, at
    ``camera.max_distance_m`` for most (the length then ends where the camera stops measuring). Judged from
    ``est_length_m`` alone: a registry's damage keeps the length of the box its run measured, which need not be
    its best box now (a later sighting's), so the box cannot tell."""
    n = len(cands)
    ln = (pd.to_numeric(cands["est_length_m"], errors="coerce").to_numpy(float) if "est_length_m" in cands.columns
          else np.full(n, np.nan))
    capped = np.isfinite(ln) & (ln > RELIABLE_LENGTH_M)
    return np.where(capped, RELIABLE_LENGTH_M, ln), capped


def crack_extent(lines: np.ndarray, lengths: np.ndarray, seg: np.ndarray, ch: np.ndarray, along: np.ndarray,
                 look, true_to_grid=None) -> tuple[np.ndarray, np.ndarray]:
    """The chainage interval (from, to) each damage covers on its segment, clipped to it. A damage's chainage is its
    near edge (``locate``: the bottom centre of its boxes, the ground point nearest the camera, put on the road), and
    the crack runs ``along`` metres from there away from the camera: towards the segment's end where ``look`` (the
    direction the camera of its best sighting looked, degrees true: the frame's heading, reversed for a rear camera)
    agrees with the segment's direction at the chainage (within 90°), towards its start where it opposes it, centred
    on the chainage where it is unknown (NaN) or square to the road."""
    n = len(seg)
    along = np.where(np.isfinite(along) & (along > 0), along, 0.0)
    dirn = np.zeros(n)
    look = np.asarray(look, float) if look is not None else np.full(n, np.nan)
    known = np.isfinite(look) & (along > 0)
    if known.any():
        k = np.flatnonzero(known)
        L = lengths[seg[k]]
        a = shapely.line_interpolate_point(lines[seg[k]], np.clip(ch[k] - 1.0, 0, L))
        b = shapely.line_interpolate_point(lines[seg[k]], np.clip(ch[k] + 1.0, 0, L))
        dx, dy = shapely.get_x(b) - shapely.get_x(a), shapely.get_y(b) - shapely.get_y(a)
        h = look[k] if true_to_grid is None else true_to_grid(look[k])
        c = np.cos(np.radians(h)) * dy + np.sin(np.radians(h)) * dx  # |ab| cos(look - bearing)
        norm = np.hypot(dx, dy)
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.where(norm > 0, c / norm, 0.0)
        dirn[k] = np.where(c > 1e-3, 1.0, np.where(c < -1e-3, -1.0, 0.0))
    lo = ch + np.where(dirn > 0, 0.0, np.where(dirn < 0, -along, -along / 2.0))
    L = lengths[seg] if n else np.zeros(0)
    return np.clip(lo, 0, L), np.clip(lo + along, 0, L)


def look_headings(cands: pd.DataFrame, frame_heading: dict, cfg, rear: dict | None = None) -> np.ndarray:
    """Each damage's ``look_heading`` for ``segment_condition`` (degrees true; NaN where unknown): the heading of its
    best sighting's frame (``frame_heading``: (drive, image) -> heading, the driving direction), reversed where
    that frame is a rear camera's (``rear``: (drive, image) -> True, else ``frames.rear`` matched on the name): the
    direction its crack runs on from its chainage (``crack_extent``)."""
    if cands is None or not len(cands) or not {"best_drive", "best_image"} <= set(cands.columns):
        return np.full(0 if cands is None else len(cands), np.nan)
    keys = list(zip(cands["best_drive"].astype(str), cands["best_image"].astype(str)))
    h = pd.to_numeric(pd.Series([frame_heading.get(k) for k in keys], dtype=object), errors="coerce").to_numpy(float)
    patterns = list(getattr(getattr(cfg, "frames", None), "rear", None) or [])
    if rear is not None:
        back = np.array([bool(rear.get(k, False)) for k in keys], bool)
    elif patterns:
        from .frames import camera_of

        back = np.array([camera_of(i, patterns) == "rear" for _, i in keys], bool)
    else:
        back = np.zeros(len(keys), bool)
    return np.where(back, (h + 180.0) % 360.0, h)


def _spread(edges: np.ndarray, which: np.ndarray, lo: np.ndarray, hi: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Each bin's share of the damages' ``area``: a damage's area over its interval (lo, hi), each bin the part its
    overlap with the interval is of it (interval overlaps by the bin edges, damages × bins at once); a damage of no
    extent all in the bin holding its chainage (``which``)."""
    a, b = edges[:-1], edges[1:]
    ext = hi - lo
    pos = ext > 0
    out = np.bincount(which[~pos], weights=area[~pos], minlength=len(a)) if (~pos).any() else np.zeros(len(a))
    if pos.any():
        ov = np.clip(np.minimum(hi[pos, None], b[None, :]) - np.maximum(lo[pos, None], a[None, :]), 0, None)
        out = out + (area[pos] / ext[pos]) @ ov
    return out


def crack_mci(rate) -> np.ndarray:
    """MCI from the crack rate alone (%, MCI1 = 10 - 2.23 C^0.3; NaN stays NaN): an upper bound of the MCI, which is
    the least of MCI, MCI0, MCI1 and MCI2 and also takes rutting and roughness that a camera does not measure."""
    c = np.asarray(rate, dtype=float)
    with np.errstate(invalid="ignore"):
        return 10.0 - 2.23 * np.power(np.clip(c, 0.0, None), 0.3)


def diagnosis(rate) -> list:
    """診断区分 ("I", "II", "III") of each crack rate (%, ``DIAGNOSIS_BOUNDS``); None where NaN."""
    c = np.asarray(rate, dtype=float)
    k = np.searchsorted(np.asarray(DIAGNOSIS_BOUNDS), c, side="right")
    return [DIAGNOSIS[int(i)] if np.isfinite(v) else None for i, v in zip(np.ravel(k), np.ravel(c))]


def _bin_edges(length: float, size: float) -> np.ndarray:
    n = max(1, int(math.floor(length / size + 0.5)))
    edges = np.arange(n + 1, dtype=float) * size
    edges[-1] = length
    return edges


def _frame_xy(frames: pd.DataFrame, gdf, with_t: bool = False) -> tuple[np.ndarray, ...]:
    """Metric x, y and true heading of the ok frames (unique positions per drive); ``with_t``: and their time (``t``,
    unix s; NaN where unknown or without the column), of the first frame kept at a position; NaN too for a frame of
    poor look (a ``look`` column's dark, glare, blurred: it showed nothing of the road, so it dates no survey; None,
    NaN or "" a good look or not measured, as ``Frame.look`` and the registry's ``frames.look``)."""
    if frames is None or len(frames) == 0:
        return (np.zeros(0),) * (4 if with_t else 3)
    f = frames
    if "status" in f.columns:
        f = f[f["status"].astype(str) == "ok"]
    if "x" in f.columns and "y" in f.columns:
        x = pd.to_numeric(f["x"], errors="coerce").to_numpy(float)
        y = pd.to_numeric(f["y"], errors="coerce").to_numpy(float)
    elif "lat" in f.columns and "lon" in f.columns:
        from pyproj import Transformer

        tr = Transformer.from_crs("EPSG:4326", gdf.crs, always_xy=True)
        lon = pd.to_numeric(f["lon"], errors="coerce").to_numpy(float)
        lat = pd.to_numeric(f["lat"], errors="coerce").to_numpy(float)
        x, y = tr.transform(lon, lat)
        x, y = np.asarray(x, float), np.asarray(y, float)
    else:
        raise ValueError("frames need x/y (metric) or lat/lon columns")
    h = pd.to_numeric(f["heading"], errors="coerce").to_numpy(float) if "heading" in f.columns else np.full(len(x), np.nan)
    t = pd.to_numeric(f["t"], errors="coerce").to_numpy(float) if "t" in f.columns else np.full(len(x), np.nan)
    if with_t and "look" in f.columns:
        look = f["look"]
        t = np.where(look.notna().to_numpy() & (look.astype(str).str.strip() != "").to_numpy(), np.nan, t)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, h, t = x[ok], y[ok], h[ok], t[ok]
    if len(x):  # a standing vehicle repeats its position: one row per (position, heading) is enough (with_t: and
        # per dated or not, so a poor-look frame kept at a position does not hide a good one's time there)
        key = np.round(np.c_[x, y, np.nan_to_num(h, nan=-1.0)] if not with_t else
                       np.c_[x, y, np.nan_to_num(h, nan=-1.0), np.isfinite(t)], 1)
        _, first = np.unique(key, axis=0, return_index=True)
        first.sort()
        x, y, h, t = x[first], y[first], h[first], t[first]
    return (x, y, h, t) if with_t else (x, y, h)


def _coverage_intervals(lines: np.ndarray, lengths: np.ndarray, x, y, heading, radius: float,
                        tol_deg: float, tree=None) -> pd.DataFrame:
    """Covered intervals (seg_idx, start, end) along each line, unioned per segment (vectorised). ``tree``: an
    STRtree of ``lines`` already built (one per network for several calls)."""
    return _union(lengths, *_covering(lines, lengths, x, y, heading, radius, tol_deg, tree)[1:])


#: frames a step of ``_covering``: the pairs' shapely points of a year of a city's frames at once (208,000,
#: bench_registry_scale.py) took the registry's export to a 629 MB peak, 406 MB in these steps (the same pairs)
COVER_CHUNK = 50_000


def _covering(lines: np.ndarray, lengths: np.ndarray, x, y, heading, radius: float, tol_deg: float, tree=None):
    """Every (frame, segment) pair where the frame surveys the segment: (frame index, segment index, start, end of
    the covered piece along the line), vectorised (see module doc), ``COVER_CHUNK`` frames a step."""
    if len(x) == 0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0), np.zeros(0)
    tree = shapely.STRtree(lines) if tree is None else tree
    if len(x) > COVER_CHUNK:
        parts = [_covering(lines, lengths, x[i:i + COVER_CHUNK], y[i:i + COVER_CHUNK], heading[i:i + COVER_CHUNK],
                           radius, tol_deg, tree) for i in range(0, len(x), COVER_CHUNK)]
        starts = np.arange(0, len(x), COVER_CHUNK)
        return (np.concatenate([p[0] + o for p, o in zip(parts, starts)]),
                *(np.concatenate([p[j] for p in parts]) for j in (1, 2, 3)))
    pts = shapely.points(x, y)
    pi, si = tree.query(pts, predicate="dwithin", distance=radius)
    g = lines[si]
    p = pts[pi]
    d = shapely.distance(g, p)
    s = shapely.line_locate_point(g, p)
    L = lengths[si]
    # heading agreement with the road direction at the projection (either way along the road)
    h = heading[pi]
    has_h = np.isfinite(h)
    keep = np.ones(len(pi), bool)
    if has_h.any():
        a = shapely.line_interpolate_point(g[has_h], np.clip(s[has_h] - 2.0, 0, L[has_h]))
        b = shapely.line_interpolate_point(g[has_h], np.clip(s[has_h] + 2.0, 0, L[has_h]))
        bearing = np.degrees(np.arctan2(shapely.get_x(b) - shapely.get_x(a), shapely.get_y(b) - shapely.get_y(a)))
        diff = np.abs((h[has_h] - bearing + 180.0) % 360.0 - 180.0)
        diff = np.minimum(diff, 180.0 - diff)
        keep[has_h] = diff <= tol_deg
    half = np.sqrt(np.maximum(radius ** 2 - d ** 2, 0.0))
    return pi[keep], si[keep], np.clip(s - half, 0, L)[keep], np.clip(s + half, 0, L)[keep]


def _union(lengths: np.ndarray, seg: np.ndarray, st: np.ndarray, en: np.ndarray) -> pd.DataFrame:
    """The pieces (segment index, start, end) unioned per segment, sorted by (segment, start)."""
    if len(seg) == 0:
        return pd.DataFrame({"seg": np.zeros(0, int), "start": np.zeros(0), "end": np.zeros(0)})
    # union per segment: sort by (seg, start); offset each segment so one running max works for all
    order = np.lexsort((st, seg))
    seg, st, en = seg[order], st[order], en[order]
    uniq, rank = np.unique(seg, return_inverse=True)
    off = rank * (float(lengths.max()) + 1.0)
    so, eo = st + off, en + off
    run_end = np.maximum.accumulate(eo)
    new = np.r_[True, so[1:] > run_end[:-1]]
    m_start = so[new] - off[new]
    m_end = np.maximum.reduceat(eo, np.nonzero(new)[0]) - off[new]
    return pd.DataFrame({"seg": seg[new], "start": m_start, "end": m_end})


def _covered(intervals: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Covered length of each [a_k, b_k] by disjoint intervals (n, 2) (broadcast)."""
    if len(intervals) == 0:
        return np.zeros(len(a))
    s, e = intervals[:, 0][None, :], intervals[:, 1][None, :]
    return np.clip(np.minimum(e, b[:, None]) - np.maximum(s, a[:, None]), 0, None).sum(axis=1)


def _kept_fields(net, gdf, cfg) -> dict[str, list]:
    """The kept road fields (output name -> values aligned with ``gdf``'s rows) that ``net`` carries."""
    have = getattr(net, "fields", None) or {}
    out = {}
    for name in road_columns(cfg):
        if name in have:
            out[name] = list(have[name])
        elif name in gdf.columns:
            out[name] = [None if v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v
                         for v in gdf[name].astype(object)]
    return out


def _lines(gdf) -> tuple[np.ndarray, np.ndarray]:
    """Each segment as one line (merged; a MultiLineString that does not merge: its longest part, as bins need one
    line) and its length."""
    lines = np.asarray(shapely.line_merge(np.asarray(gdf.geometry.values, dtype=object)), dtype=object)
    multi = shapely.get_type_id(lines) == 5
    for k in np.nonzero(multi)[0]:
        parts = shapely.get_parts(lines[k])
        lines[k] = parts[np.argmax(shapely.length(parts))]
    return lines, shapely.length(lines)


def surveyed_by_drive(net, frames_by_drive: dict, cfg) -> dict[str, pd.DataFrame]:
    """Per drive (drive -> its frames): ``segment_id``, ``road_name`` and ``surveyed_m`` of every segment its frames
    surveyed (surveyed_m > 0), in network order: the segment-level ``surveyed_m`` of ``segment_condition`` over the
    same frames, computed the same way (so one drive's numbers are what a run of that drive alone writes to
    segments.geojson), without the bins and counts; the network prepared once (its merged lines and their STRtree:
    on a city's network these cost more than a drive's frames). The patrol log's surveyed length per drive and
    per road."""
    gdf = getattr(net, "gdf", net)
    lines, lengths = _lines(gdf)
    tree = shapely.STRtree(lines)
    tol = float(getattr(cfg.locate, "heading_tolerance_deg", 60.0))
    radius = float(cfg.segments.coverage_radius_m)
    ids = gdf["segment_id"].astype(str).to_numpy()
    names = gdf["road_name"].fillna("").astype(str).to_numpy() if "road_name" in gdf.columns else np.full(len(ids), "")
    out = {}
    for drive, frames in frames_by_drive.items():
        x, y, h = _frame_xy(frames, gdf)
        iv = _coverage_intervals(lines, lengths, x, y, h, radius, tol, tree)
        # as segment_condition's segment row: the intervals within [0, L], at most L (iv is sorted by seg, start)
        seg = iv["seg"].to_numpy(int)
        se = iv[["start", "end"]].to_numpy(float)
        cut = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]]) if len(seg) else np.zeros(0, int)
        segs, surveyed = [], []
        for a, b in zip(cut, np.r_[cut[1:], len(seg)]):
            k = int(seg[a])
            L = float(lengths[k])
            m = round(float(np.minimum(_covered(se[a:b], np.array([0.0]), np.array([L])), L)[0]), 2)
            if m > 0:
                segs.append(k)
                surveyed.append(m)
        segs = np.asarray(segs, int)
        out[drive] = pd.DataFrame({"segment_id": ids[segs], "road_name": names[segs],
                                   "surveyed_m": np.asarray(surveyed, float)})
    return out


def segment_condition(net, cands: pd.DataFrame | None, frames: pd.DataFrame | None, cfg, period: bool = False):
    """Condition per segment and per bin (see module doc).  ``net``: GeoDataFrame (segment_id, road_name,
    geometry in a metric CRS; the kept road fields as columns) or a ``RoadNetwork``.  Returns a GeoDataFrame in the
    network's CRS. ``period`` (the registry's export, a run's segments.geojson and report.html, frames with their
    time ``t``, unix s, and where known their ``look``): also ``PERIOD_COLUMNS``, the time of the first and the last
    frame of good look that surveyed the segment (``_frame_xy``: a run's coverage counts its poor-look frames, its dates do not; the
    registry's frames are of good look already; on every row of the segment, its bins too; local ISO time in
    ``cfg.tz``; None where none did or their time is unknown)."""
    import geopandas as gpd

    gdf = getattr(net, "gdf", net)
    kept = _kept_fields(net, gdf, cfg)
    spec = cfg.segments
    lines, lengths = _lines(gdf)
    ids = gdf["segment_id"].astype(str).to_numpy()
    names = gdf["road_name"].fillna("").astype(str).to_numpy() if "road_name" in gdf.columns else np.full(len(ids), "")
    x, y, h, ft = _frame_xy(frames, gdf, with_t=True)
    tol = float(getattr(cfg.locate, "heading_tolerance_deg", 60.0))
    pi, si, st, en = _covering(lines, lengths, x, y, h, float(spec.coverage_radius_m), tol)
    iv = _union(lengths, si, st, en)
    t_first = np.full(len(ids), np.nan)
    t_last = np.full(len(ids), np.nan)
    if period and len(pi):  # per segment: the first and last time of the frames surveying it (ufunc.at, no loop)
        tt = ft[pi]
        fin = np.isfinite(tt)
        np.fmin.at(t_first, si[fin], tt[fin])
        np.fmax.at(t_last, si[fin], tt[fin])

    # candidates -> segment index, chainage
    pos = {s: i for i, s in enumerate(ids)}
    if cands is not None and len(cands):
        cseg = cands["segment_id"].map(lambda s: pos.get(str(s), -1) if s is not None and s == s else -1)
        cseg = cseg.to_numpy(int)
        cch = pd.to_numeric(cands["chainage_m"], errors="coerce").to_numpy(float)
        ccls = cands["class"].astype(str).to_numpy()
        csev = (pd.to_numeric(cands["severity"], errors="coerce").to_numpy(float) if "severity" in cands.columns
                else np.full(len(cands), np.nan))
        none = np.full(len(cands), np.nan)
        # the crack rate's length: at most what one frame measures reliably (a box reaching the distance cap)
        along, ccap = crack_lengths(cands)
        carea, cmiss = crack_area(ccls, cands["est_width_m"] if "est_width_m" in cands.columns else none, along)
        look = (pd.to_numeric(cands["look_heading"], errors="coerce").to_numpy(float)
                if "look_heading" in cands.columns else none)
        ok = (cseg >= 0) & np.isfinite(cch)
        cseg, cch, ccls, csev, carea, cmiss = cseg[ok], cch[ok], ccls[ok], csev[ok], carea[ok], cmiss[ok]
        along, ccap, look = along[ok], ccap[ok], look[ok]
        cch = np.clip(cch, 0, lengths[cseg])
        # the interval along the segment each damage's crack area is spread over (its near edge, away from the camera)
        clo, chi = crack_extent(lines, lengths, cseg, cch, along, look, getattr(net, "true_to_grid", None))
    else:
        cseg, cch, ccls, csev = np.zeros(0, int), np.zeros(0), np.zeros(0, object), np.zeros(0)
        carea, cmiss, ccap, clo, chi = np.zeros(0), np.zeros(0, bool), np.zeros(0, bool), np.zeros(0), np.zeros(0)

    todo = np.union1d(iv["seg"].to_numpy(int), cseg)
    weights = np.array([float(spec.weights.get(c, 1.0)) for c in CLASS_IDS])
    thr = np.asarray(spec.thresholds, float)
    width = float(spec.survey_width_m)
    # each segment's covered intervals: a slice of iv (sorted by segment), not a groupby (a city's registry: 6,600
    # segments, 2.9 s of pandas indexing for the dict of groups)
    iv_seg, iv_se = iv["seg"].to_numpy(int), iv[["start", "end"]].to_numpy(float).reshape(-1, 2)
    iv_lo, iv_hi = np.searchsorted(iv_seg, todo, side="left"), np.searchsorted(iv_seg, todo, side="right")
    c_order = np.argsort(cseg, kind="stable")
    c_bounds = np.searchsorted(cseg[c_order], todo, side="left"), np.searchsorted(cseg[c_order], todo, side="right")
    levels = [("segment", None)] + [(bin_level(b), float(b)) for b in spec.bins_m]
    recs: list[dict] = []
    geoms: list = []
    rec_seg: list[int] = []  # each row's segment (index into the network), for the kept road fields
    for t, k in enumerate(todo):  # loop over segments that have data only
        L = float(lengths[k])
        line = lines[k]
        cidx = c_order[c_bounds[0][t]: c_bounds[1][t]]
        ch, cl, sv, ca, cm = cch[cidx], ccls[cidx], csev[cidx], carea[cidx], cmiss[cidx]
        cc, lo, hi = ccap[cidx], clo[cidx], chi[cidx]
        ivk = iv_se[iv_lo[t]: iv_hi[t]]
        for level, size in levels:
            edges = np.array([0.0, L]) if size is None else _bin_edges(L, size)
            a, b = edges[:-1], edges[1:]
            nb = len(a)
            which = np.clip(np.searchsorted(edges, ch, side="right") - 1, 0, nb - 1)
            counts = np.zeros((nb, len(CLASS_IDS)), int)
            for ci, c in enumerate(CLASS_IDS):
                counts[:, ci] = np.bincount(which[cl == c], minlength=nb)
            sev_max = np.full(nb, np.nan)
            fin = np.isfinite(sv)
            if fin.any():
                np.fmax.at(sev_max, which[fin], sv[fin])
            surveyed = np.minimum(_covered(ivk, a, b), b - a)
            length = b - a
            with np.errstate(divide="ignore", invalid="ignore"):
                cov = np.where(length > 0, surveyed / length, 0.0)
                index = np.where(surveyed > 0, 100.0 * (counts * weights).sum(axis=1) / surveyed, np.nan)
            valid = (cov >= spec.min_coverage) & (surveyed > 0)
            cond = np.searchsorted(thr, index, side="right") + 1
            # the crack rate (%, one decimal: what 診断区分 and the MCI are judged from, so a reader's check agrees)
            # (spread over the bins its interval crosses: the segment's row has each damage whole)
            area = _spread(edges, which, lo, hi, ca) if len(ca) else np.zeros(nb)
            n_miss = np.bincount(which, weights=cm.astype(float), minlength=nb) if len(cm) else np.zeros(nb)
            n_cap = np.bincount(which, weights=cc.astype(float), minlength=nb) if len(cc) else np.zeros(nb)
            with np.errstate(divide="ignore", invalid="ignore"):
                rate = np.where(surveyed > 0, np.round(np.minimum(100.0 * area / (surveyed * width), 100.0), 1),
                                np.nan)
            mci = np.round(crack_mci(rate), 1)
            diag = diagnosis(rate)
            for j in range(nb):
                rec = {"level": level, "segment_id": ids[k], "road_name": names[k],
                       "bin_index": -1 if size is None else j, "from_m": round(float(a[j]), 2),
                       "to_m": round(float(b[j]), 2), "length_m": round(float(length[j]), 2),
                       "surveyed_m": round(float(surveyed[j]), 2), "coverage": round(float(cov[j]), 4),
                       "valid": bool(valid[j])}
                for ci, c in enumerate(CLASS_IDS):
                    rec[f"n_{c}"] = int(counts[j, ci])
                rec["n_total"] = int(counts[j].sum())
                rec["damage_index"] = float(index[j]) if np.isfinite(index[j]) else np.nan
                rec["condition"] = int(cond[j]) if valid[j] else pd.NA
                rec["severity_max"] = float(sev_max[j])
                rec["crack_area_m2"] = round(float(area[j]), 2)
                rec["crack_rate"] = float(rate[j])
                rec["diagnosis"] = diag[j] if valid[j] else None
                rec["mci_crack"] = float(mci[j])
                rec["n_no_estimate"] = int(n_miss[j])
                rec["n_capped"] = int(n_cap[j])
                recs.append(rec)
                rec_seg.append(k)
                geoms.append(line if size is None else substring(line, float(a[j]), float(b[j])))
    df = pd.DataFrame(recs, columns=OUT_COLUMNS)
    df["condition"] = df["condition"].astype("Int64")
    df["valid"] = df["valid"].astype(bool)
    df["diagnosis"] = pd.Series([v if isinstance(v, str) else None for v in df["diagnosis"]], index=df.index,
                                dtype=object)
    cols = list(OUT_COLUMNS)
    if period:
        rs = np.asarray(rec_seg, int)
        for name, tv in zip(PERIOD_COLUMNS, (t_first, t_last)):
            df[name] = pd.Series(_local_times(tv[rs] if len(rs) else np.zeros(0), cfg), index=df.index, dtype=object)
        cols += PERIOD_COLUMNS
    for name, vals in kept.items():  # object columns: an integer field with gaps stays integers (not floats)
        df[name] = pd.Series([vals[k] for k in rec_seg], index=df.index, dtype=object)
    df = df[_after_road_name(cols, list(kept))]
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, crs=gdf.crs) if geoms else gpd.GeoSeries([], crs=gdf.crs),
                            crs=gdf.crs)


def _local_times(t: np.ndarray, cfg) -> list:
    """Unix times as local ISO times (``2026-11-20T09:00:00+09:00``, ``cfg.tz``), None where NaN; each distinct time
    converted once."""
    from datetime import datetime

    tz = getattr(cfg, "tz", None)
    u, inv = np.unique(np.nan_to_num(t, nan=-np.inf), return_inverse=True)
    text = [None if not np.isfinite(v) else datetime.fromtimestamp(float(v), tz).isoformat(timespec="seconds")
            for v in u]
    return [text[i] for i in np.ravel(inv)]


def _road_value(v):
    """A kept road field's value for JSON: numpy scalars as Python's, NaN/NA as None, the rest as it is."""
    if v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and not math.isfinite(float(v))):
        return None
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


#: ``patrol export --format segments``: the file's format by its name (a map: ``write_segments``)
SEGMENT_FILES = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg"}
#: ... and the same rows as a table, without their lines (``write_segments_table``): the 100 m sections a 舗装点検
#: report is typed from
SEGMENT_TABLE_FILES = {".csv": "csv", ".xlsx": "xlsx"}
#: the table's headings (日本語; English: the column's name); a class's count ``n_D00`` … its class name
TABLE_HEADINGS = {
    "level": "区分", "segment_id": "区間ID", "road_name": "路線名", "bin_index": "区間内番号", "from_m": "始点(m)",
    "to_m": "終点(m)", "length_m": "延長(m)", "surveyed_m": "調査延長(m)", "coverage": "調査率", "valid": "判定可",
    "n_total": "損傷数", "damage_index": "損傷指数", "condition": "状態区分", "severity_max": "最大重要度",
    "crack_area_m2": "ひび割れ面積(m²)", "crack_rate": "ひび割れ率(%)", "diagnosis": "診断区分",
    "mci_crack": "MCI上限", "n_no_estimate": "面積推定なし", "n_capped": "長さ上限", "first_surveyed": "初回調査",
    "last_surveyed": "最終調査"}
#: the xlsx's number formats
TABLE_FORMATS = {"from_m": "0.0", "to_m": "0.0", "length_m": "0.0", "surveyed_m": "0.0", "coverage": "0%",
                 "damage_index": "0.00", "severity_max": "0.00", "crack_area_m2": "0.00", "crack_rate": "0.0",
                 "mci_crack": "0.0"}


def table_columns(gdf, cfg=None) -> list[tuple[str, str, str]]:
    """The table's columns (name, 日本語, English) in the rows' order, without the geometry: ours headed by
    ``TABLE_HEADINGS`` (a class's count by its class name, ``n_D00`` 縦ひび割れ), a kept road field by its own name."""
    classes = getattr(cfg, "classes", None) or {}
    out = []
    for c in gdf.columns:
        if c == gdf.geometry.name:
            continue
        ja = TABLE_HEADINGS.get(c)
        if ja is None and c.startswith("n_") and c[2:] in CLASS_IDS:
            spec = classes.get(c[2:]) if hasattr(classes, "get") else None
            ja = f"{c[2:]} {spec.name_ja}" if spec is not None else c[2:]
        out.append((c, ja or c, c))
    return out


def _table_value(c: str, v):
    """A row's value for the table: None for a gap (NaN, NA, ""), numpy's as Python's, ours rounded as the GeoJSON
    (4 decimals), a kept road field as read."""
    v = _road_value(v)
    if isinstance(v, str) and not v and c in OUT_COLUMNS:
        return None
    if isinstance(v, float) and c in OUT_COLUMNS:
        return round(v, 4)
    return v


def write_segments_table(gdf, path: str | Path, cfg=None, meta: dict | None = None) -> None:
    """``gdf`` (``segment_condition``'s rows, all levels, in their order) as a table, atomically: CSV (UTF-8 with BOM,
    each heading ``日本語 name``, formula-safe: ``export.write_headed_csv``) or an xlsx (sheet ``segments``, headed
    日本語 over the name, printable A4 landscape, filter on the heading row; sheet ``legend``: what the crack rate
    is and how it was estimated, the registry's ``meta``)."""
    from .export import safe_cell, write_headed_csv

    path = Path(path)
    kind = SEGMENT_TABLE_FILES.get(path.suffix.lower())
    cols = table_columns(gdf, cfg)
    names = [c for c, _, _ in cols]
    rows = [tuple(_table_value(c, v) for c, v in zip(names, r)) for r in gdf[names].itertuples(index=False, name=None)]
    if kind == "csv":
        def cell(v):
            if isinstance(v, bool):
                return "TRUE" if v else "FALSE"  # as Excel writes and reads them
            if isinstance(v, (int, float)):  # a number, not a formula (bin_index -1 stays -1)
                return "" if v != v else str(v)
            return safe_cell(v)

        write_headed_csv(path, cols, rows, cell)
        return
    if kind != "xlsx":
        raise ValueError(f"{path.name}: a segments table is X.csv or X.xlsx")
    _write_table_xlsx(path, cols, rows, cfg, meta)


def _write_table_xlsx(path: Path, cols, rows, cfg, meta) -> None:
    import io
    from datetime import datetime

    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    from . import __version__
    from .atomic import atomic_write
    from .report import _now, xlsx_cell, xlsx_header, xlsx_legend_rows, xlsx_print_setup

    wb = Workbook()
    ws = wb.active
    ws.title = "segments"
    widths = xlsx_header(ws, cols)
    for i, row in enumerate(rows, 2):
        for j, ((name, _, _), v) in enumerate(zip(cols, row), 1):
            if name in PERIOD_COLUMNS and v:
                v = datetime.fromisoformat(str(v)).replace(tzinfo=None)  # the local time as written (Excel: no zone)
            widths[j - 1] = max(widths[j - 1], xlsx_cell(ws.cell(row=i, column=j), v, TABLE_FORMATS.get(name), 8))
    for j, wd in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(j)].width = wd
    ws.freeze_panes = "D2"
    xlsx_print_setup(ws, len(cols), len(rows))
    from .config import header_town

    who = header_town(cfg)
    ws.oddHeader.center.text = "路面状態 road condition" + (f" — {who}" if who else "")
    width = float(getattr(getattr(cfg, "segments", None), "survey_width_m", 3.0))
    lg = wb.create_sheet("legend")
    for col, w in zip("ABC", (24, 60, 70)):
        lg.column_dimensions[col].width = w
    legend: list[tuple] = [("路面状態 / Road condition",), ()]
    if cfg is not None:
        legend += [("自治体 municipality", who), ("作成日時 generated", _now(cfg).strftime("%Y-%m-%d %H:%M:%S %z"))]
    legend.append(("version", f"road-patrol {__version__}"))
    for key, v in (meta or {}).items():
        if key == "generated" and cfg is not None:
            continue  # (above)
        legend.append((key, json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v))
    legend += [
        ("区分 level", "segment: 区間全体。bin100 / bin20: 区間の始点から 100 m / 20 m ごと (舗装点検の評価単位は bin100)",
         "segment: the whole segment; bin100 / bin20: each 100 m / 20 m from its start (bin100: the 舗装点検 section)"),
        ("ひび割れ率 crack rate",
         f"推定値: 各損傷の推定寸法から求めたひび割れ面積 / (調査延長 × 調査幅 {width:g} m, segments.survey_width_m) × 100。"
         "面積はメッシュ法 (舗装調査・試験法便覧) にならい、縦ひび割れ D00 は長さ 1 m あたり 0.3 m²、横ひび割れ D10 は幅 "
         "1 m あたり 0.3 m²、亀甲状ひび割れ D20・ポットホール D40 は推定面積。寸法の推定がない損傷は面積に入れない "
         "(面積推定なし)。10 m を超える長さは 10 m として数える (長さ上限: 1 枚の写真で確かに測れる長さ)。損傷の面積は"
         "それが道路沿いに延びる範囲の各区間に割り振る。写真からの推定で、メッシュ調査の測定値ではない: 詳細調査に回す"
         "区間を選ぶために使う",
         f"an estimate: the crack area from each damage's estimated size / (surveyed m × {width:g} m surveyed width, "
         "segments.survey_width_m) × 100. Area as the mesh method counts it: a longitudinal crack D00 0.3 m² per "
         "metre of its length, a transverse crack D10 0.3 m² per metre of its width, alligator cracking D20 and a "
         "pothole D40 their estimated area; a damage without a size is left out (n_no_estimate). A length over 10 m "
         "counts 10 m (n_capped: what one photo measures reliably). A damage's area is shared among the bins the "
         "stretch it runs along crosses. From photos, not a mesh survey: for choosing the sections to survey in "
         "detail"),
        ("診断区分 diagnosis", "舗装点検要領 (平成28年10月): I 健全 (ひび割れ率 20 % 未満)、II 表層機能保持段階 (20 % 以上 "
         "40 % 未満)、III 修繕段階 (40 % 以上)。調査率が segments.min_coverage 未満の行は空欄",
         "I sound (crack rate below 20 %), II surface repair stage (20 % to below 40 %), III repair stage (40 % or "
         "more); empty where the row was surveyed too little to rate (valid false)"),
        ("MCI上限 mci_crack", "ひび割れ率だけの MCI (10 − 2.23 C^0.3)。わだち掘れ・平たん性を測っていないので、実際の MCI "
         "はこの値以下", "the MCI from the crack rate alone (10 − 2.23 C^0.3): rutting and roughness are not "
         "measured, so the road's MCI is at most this"),
        (), ("列 column", "見出し (ja)", "heading (en)")]
    legend += [(c, ja, en) for c, ja, en in cols]
    xlsx_legend_rows(lg, legend)
    with atomic_write(path, "wb") as fh:
        buf = io.BytesIO()
        wb.save(buf)
        fh.write(buf.getvalue())


def on_network(cands: pd.DataFrame, net, cfg) -> tuple[pd.DataFrame, int]:
    """The registry's damages with ``segment_id`` and ``chainage_m`` on ``net``: as stored where the network holds
    the stored segment and the chainage is known (locate placed them), else (a network edited since, a damage stored
    without) the nearest segment within ``cfg.locate.max_snap_m`` and the chainage along it (STRtree nearest,
    ``line_locate_point``, vectorised); farther from every road: left off the network (counted nowhere). Returns
    (the frame, the damages placed anew)."""
    gdf = getattr(net, "gdf", net)
    ids = gdf["segment_id"].astype(str)
    out = cands.copy()
    seg = out["segment_id"].astype(object)
    held = seg.notna().to_numpy() & seg.astype(str).isin(set(ids)).to_numpy()
    ch = pd.to_numeric(out["chainage_m"], errors="coerce")
    todo = ~(held & ch.notna().to_numpy())
    lat = pd.to_numeric(out["lat"], errors="coerce").to_numpy(float)
    lon = pd.to_numeric(out["lon"], errors="coerce").to_numpy(float)
    todo &= np.isfinite(lat) & np.isfinite(lon)
    if not todo.any():
        return out, 0
    from pyproj import Transformer

    lines, _ = _lines(gdf)
    x, y = Transformer.from_crs("EPSG:4326", gdf.crs, always_xy=True).transform(lon[todo], lat[todo])
    pts = shapely.points(np.asarray(x, float), np.asarray(y, float))
    pi, li = shapely.STRtree(lines).query_nearest(pts, max_distance=float(cfg.locate.max_snap_m), all_matches=False)
    rows = np.flatnonzero(todo)[pi]
    new_seg = seg.to_numpy(object).copy()
    new_ch = ch.to_numpy(float).copy()
    new_seg[np.flatnonzero(todo)] = None
    new_ch[np.flatnonzero(todo)] = np.nan
    new_seg[rows] = ids.to_numpy()[li]
    new_ch[rows] = shapely.line_locate_point(lines[li], pts[pi])
    out["segment_id"], out["chainage_m"] = new_seg, new_ch
    return out, int(len(rows))


def write_segments(gdf, path: str | Path, meta: dict | None = None, layer: str = "segments", style=None) -> None:
    """``gdf`` (``segment_condition``'s) to ``path``, atomically: GeoJSON (``.geojson``/``.json``: RFC 7946, WGS84,
    ``meta`` as the collection's ``patrol`` member) or GeoPackage (``.gpkg``: layer ``layer`` in the network's CRS,
    ``meta`` as its description in gpkg_contents; the due list's is ``due.DUE_LAYER``), with the layer's QGIS default
    style ``style(gdf, layer)`` (a ``qgisstyle`` function: ``condition``, ``due``, ``jobs``) in it where given."""
    path = Path(path)
    kind = SEGMENT_FILES.get(path.suffix.lower())
    if kind == "geojson":
        write_segments_geojson(gdf, path, meta=meta)
        return
    import os
    import sqlite3
    import tempfile

    from .atomic import atomic_replace_file

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".gpkg", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # let GDAL create it
    try:
        seg = gdf.copy()
        for c in seg.columns:  # a kept road field: its values as read (None a gap); text where types mix
            if c == "diagnosis":  # TEXT even where every row is null (none valid), not the INTEGER of no values
                seg[c] = pd.array([v if isinstance(v, str) else None for v in seg[c]], dtype="string")
            elif c != seg.geometry.name and seg[c].dtype == object:
                vals = [_road_value(v) for v in seg[c]]
                kinds = {type(v) for v in vals if v is not None}
                if kinds <= {int} or kinds <= {int, float}:
                    seg[c] = pd.array([v if v is not None else None for v in vals],
                                      dtype="Int64" if kinds <= {int} else "Float64")
                elif kinds <= {bool}:
                    seg[c] = pd.array(vals, dtype="boolean")
                else:
                    seg[c] = [None if v is None else str(v) for v in vals]
        seg.to_file(tmp, layer=layer, driver="GPKG", engine="pyogrio")
        if meta:
            con = sqlite3.connect(tmp)
            try:
                with con:
                    con.execute("UPDATE gpkg_contents SET description=? WHERE table_name=?",
                                (json.dumps(meta, ensure_ascii=False), layer))
            finally:
                con.close()
        if style is not None:  # in the file before it is moved into place
            from . import qgisstyle

            qgisstyle.write(tmp, [style(gdf, layer)])
        atomic_replace_file(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_segments_geojson(gdf, path: str | Path, meta: dict | None = None) -> None:
    """RFC 7946 GeoJSON (WGS84 lon/lat, no ``crs`` member), written atomically. Columns other than ours
    (``OUT_COLUMNS``: the kept road fields) are written as they are, numbers unrounded. ``meta``: the collection's
    ``patrol`` member (a foreign member, RFC 7946 6.1: what the registry's export covers)."""
    g = gdf.to_crs("EPSG:4326") if gdf.crs is not None else gdf
    feats = []
    props = [c for c in g.columns if c != g.geometry.name]
    ours = set(OUT_COLUMNS)
    for row, geom in zip(g[props].itertuples(index=False), g.geometry.values):
        p = {}
        for c, v in zip(props, row):
            if c not in ours:  # a kept road field: the network's value as read (None for a gap)
                p[c] = _road_value(v)
            elif v is None or v is pd.NA or (isinstance(v, str) and not v) or (isinstance(v, float) and not math.isfinite(v)):
                p[c] = None  # an unnamed road: null, as in candidates.geojson and the registry
            elif isinstance(v, (np.integer,)):
                p[c] = int(v)
            elif isinstance(v, (np.floating, float)):
                p[c] = round(float(v), 4)
            elif isinstance(v, (np.bool_, bool)):
                p[c] = bool(v)
            else:
                p[c] = v
        gj = None
        if geom is not None and not geom.is_empty:
            gj = json.loads(shapely.to_geojson(shapely.set_precision(geom, 1e-7)))
        feats.append({"type": "Feature", "properties": p, "geometry": gj})
    coll = {"type": "FeatureCollection", **({"patrol": meta} if meta else {}), "features": feats}
    atomic_write_text(path, json.dumps(coll, ensure_ascii=False) + "\n")


def condition_statuses(statuses=None) -> list[str]:
    """The statuses of the damages a road's condition counts: ``statuses`` where given (the segments export's
    ``--status``), else the open ones (``store.OPEN_STATUSES``: a repaired damage is no damage of the road now, a
    not-an-issue (false detection) none at all). The registry's export and a run with ``--store`` alike."""
    from .store import OPEN_STATUSES

    return list(statuses or OPEN_STATUSES)


def condition_damages(cands: pd.DataFrame | None) -> pd.DataFrame | None:
    """A run's candidates that its segments.geojson and report.html's condition layer count: with ``--store`` (a
    ``status`` column, the registry's) those of ``condition_statuses()``, as ``registry_condition`` counts the
    registry's; without (no statuses) all of them."""
    if cands is None or not len(cands) or "status" not in cands.columns:
        return cands
    return cands[cands["status"].astype(str).isin(condition_statuses())]


def registry_condition(st, net, cfg, statuses=None, since=None):
    """The registry's condition of the network (``patrol export --format segments``; README: The condition of the
    network), also drawn by ``patrol export --format html --roads`` (report.html's road-condition layer): the damages
    of ``statuses`` (default the open ones: a repaired damage is no damage of the road now) seen since ``since``,
    placed on ``net`` (``on_network``), and every positioned frame of good look taken since ``since``
    (``Store.survey_frames``), through ``segment_condition(..., period=True)``. ``st``: an open ``Store``. Returns
    (the rows, the damages counted, the frames, the damages placed anew)."""
    df = st.query(status=condition_statuses(statuses), since=since, lists=False, growth=False)  # (unknown status: exit 2)
    # the heading of each damage's best sighting's frame (its observation's): which way its crack runs from its chainage
    # (the damages' own frames only, along the observations' (drive, image) key: not every sighting held)
    heads = {}
    if len(df) and {"best_drive", "best_image"} <= set(df.columns) and st._has_column("observations", "heading"):
        pairs = sorted({(str(d), str(i)) for d, i in zip(df["best_drive"], df["best_image"])})
        heads = {(str(d), str(i)): h for d, i, h in st.con.execute(
            "SELECT o.drive, o.image, o.heading FROM json_each(?) j JOIN observations o ON "
            "o.drive = json_extract(j.value, '$[0]') AND o.image = json_extract(j.value, '$[1]') "
            "WHERE o.heading IS NOT NULL", (json.dumps(pairs, ensure_ascii=False),))}
    if len(df):
        df = df.assign(look_heading=look_headings(df, heads, cfg))
    frames = st.survey_frames(since=since)
    df, placed = on_network(df, net, cfg)
    rows = segment_condition(net, df, frames, cfg, period=True)
    rows.attrs["good_look_only"] = True  # report.html's condition layer says so (a run's rows count poor looks too)
    return rows, df, frames, placed
