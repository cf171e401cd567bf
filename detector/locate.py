"""Stage 3: Detections -> Located (one row per detection): damage position, road segment, chainage.

1. Frames: the unique (drive, image) positions. A missing heading is taken from the track (the fixes before
   and after in the same sequence — drive and image folders one after another, see ``frames.chain_folders``, and
   vehicle track within it, ``frames.split_tracks`` —, each only within ``frames.interpolate_max_gap_s`` seconds
   and reachable (``frames.reachable``), when they are >= 2 m apart; from one side when only one is; else none).
2. The road being driven: every frame's vehicle position is snapped to a segment. Candidates are the segments
   within ``locate.max_snap_m`` (STRtree, vectorised). Emission cost (metres)
   ``distance + heading_weight_m * (1 - |cos(heading - segment direction)|)`` (two-way: either direction), plus a
   large penalty where the angle (mod 180) exceeds ``heading_tolerance_deg`` so such a segment is chosen only when
   nothing else is in range. ``locate.method``:
   - ``nearest``: distance only (the baseline);
   - ``heading``: the emission cost per frame;
   - ``hmm`` (default): Viterbi over the frames of each track (chains broken at gaps > ``max_gap_s``) with a
     transition cost 0 (same segment) / ``switch_m`` (connected segment) / ``jump_m`` (not connected), plus
     ``route_weight * |distance along the road - straight distance between the fixes|``.
3. The damage: with ``locate.place_ahead`` and a camera, the box's bottom-centre pixel is put on the ground
   plane (pinhole model: lens height, downward pitch, the FOV across the upright frame's long side — a portrait
   frame of the phone has the focal length of its landscape ones —; capped at
   ``camera.max_distance_m``, and placed at the cap when the ray does not reach the ground) and rotated by the
   heading. The damage point is then projected on a road segment chosen with the same heading-aware cost plus a
   preference for the driven segment (0) or one connected to it (``switch_m``) over any other (``jump_m``):
   a damage ahead past a junction lands on the next segment of the road, not back on the driven one, and a
   damage is never put on a parallel road merely because it lies closer to it.
   A rear camera's hit (``camera`` "rear": ``frames.rear``) is placed the same way with the rear mounting
   (``camera.rear`` over the front's) and the heading reversed: it lies behind the vehicle. The frame's heading
   (EXIF, track) stays the driving direction, and so does everything the vehicle's own position uses (the track
   heading, the snapping of the vehicle to the road it drives). A rear camera's EXIF heading is the driving
   direction (dashcams) or the direction the camera faces (a phone looking back, as the EXIF standard has it);
   which, is decided once per drive by a vote of its rear frames where the vehicle clearly moves straight on
   (``_rear_convention``), and the other kind is turned 180° in every rear frame of the drive; too few or split
   votes: each frame compared with the track heading on its own.
Hits without position stay in the frame with ``located == False`` (``df.attrs["n_unlocated"]``); hits with no
road within ``max_snap_m`` keep their raw position with ``segment_id == ""``.

Located columns: the Detections columns (image, time, lat, lon, heading, class, confidence, x1, y1, x2, y2, width,
height, drive, camera) plus x, y, dmg_x, dmg_y, dmg_lat, dmg_lon, distance_ahead_m, segment_id, road_name, chainage_m,
snap_m, t, obs_id, and: located, lateral_m, road_x, road_y (damage projected on its segment, metric),
road_lat, road_lon, seg_length_m, seg_node_a, seg_node_b (the segment's end node ids in this network load, used
by dedupe to merge across segment ends), veh_segment_id, veh_snap_m, heading_grid, est_width_m, est_length_m.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import shapely

from .config import HFOV_RANGE, CameraSpec, Config
from .detections import Detections
from .frames import camera_of, chain_folders, reachable, sequence_of, split_tracks
from .roads import RoadNetwork

PENALTY_M = 1.0e4  # heading outside tolerance: only when nothing else is in range
INF = np.inf


# ----------------------------------------------------------------------------------------------- camera
def ground_from_pixel(u: np.ndarray, v: np.ndarray, width: np.ndarray, height: np.ndarray,
                      cam: CameraSpec, hfov_deg: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole ground-plane model: pixel (u, v) -> (forward d, lateral l) metres; l > 0 right of the camera.

    f = (max(width, height)/2) / tan(hfov/2): ``hfov_deg`` is the field of view across the frame's long side (the
    horizontal one of a landscape frame), so one setting serves a phone held either way: a portrait frame (EXIF
    orientation 6/8 applied, a portrait video turned upright) of the same phone has the same focal length in
    pixels, its long side upright. Landscape (width >= height): f = (width/2) / tan(hfov/2), as ever. Principal
    point at the image centre. Ray angle below the horizon is pitch + atan((v - cy)/f); d = h / tan(angle). Rays
    at or above the horizon and d beyond the cap -> cap. (u, v) and (width, height) are the upright frame's.
    ``hfov_deg``: per pixel, the frame's own field of view (from its EXIF focal length, frames.csv ``hfov_deg``);
    NaN, or None for all, is ``cam.hfov_deg``.
    """
    u = np.asarray(u, dtype=float)
    v = np.asarray(v, dtype=float)
    w = np.asarray(width, dtype=float)
    h = np.asarray(height, dtype=float)
    tan_half = math.tan(math.radians(cam.hfov_deg) / 2.0)
    if hfov_deg is not None:
        own = np.isfinite(np.asarray(hfov_deg, dtype=float))
        if own.any():  # the others keep the scalar, bit for bit
            tan_half = np.where(own, np.tan(np.radians(np.where(own, hfov_deg, cam.hfov_deg)) / 2.0), tan_half)
    f = (np.maximum(w, h) / 2.0) / tan_half
    xn = (u - w / 2.0) / f
    yn = (np.clip(v, 0, h) - h / 2.0) / f
    th = math.radians(cam.pitch_deg)
    down = yn * math.cos(th) + math.sin(th)  # vertical (downward) component of the ray
    fwd = math.cos(th) - yn * math.sin(th)  # horizontal forward component
    fwd = np.maximum(fwd, 1e-6)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(down > 1e-9, cam.height_m / down, INF)
        d = k * fwd
    capped = ~(d <= cam.max_distance_m)
    k = np.where(capped, cam.max_distance_m / fwd, k)
    d = np.where(capped, cam.max_distance_m, d)
    return d, k * xn


def box_extent_m(xyxy: np.ndarray, width: np.ndarray, height: np.ndarray, cam: CameraSpec,
                 hfov_deg: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Estimated physical width (across, at the box bottom) and length (along the road) of boxes, metres.
    ``hfov_deg``: each box's frame's own field of view, as for ``ground_from_pixel``."""
    xyxy = np.asarray(xyxy, dtype=float).reshape(-1, 4)
    d1, l1 = ground_from_pixel(xyxy[:, 0], xyxy[:, 3], width, height, cam, hfov_deg)
    d2, l2 = ground_from_pixel(xyxy[:, 2], xyxy[:, 3], width, height, cam, hfov_deg)
    dt, _ = ground_from_pixel((xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 1], width, height, cam, hfov_deg)
    # a box whose bottom is at or above the horizon (or beyond the distance cap) does not fit the assumed
    # mounting: its size is unknown rather than the size it would have at the cap
    unknown = d1 >= cam.max_distance_m
    w_m = np.where(unknown, np.nan, np.abs(l2 - l1))
    l_m = np.where(unknown, np.nan, np.maximum(dt - d1, 0.0))
    return w_m, l_m


# ----------------------------------------------------------------------------------------------- snapping
def _angle_cost(heading_grid: np.ndarray, seg_bearing: np.ndarray, cfg: Config) -> np.ndarray:
    """(1 - |cos|) * weight + penalty beyond tolerance; 0 where the heading is unknown."""
    diff = np.radians(heading_grid - seg_bearing)
    c = np.abs(np.cos(diff))
    cost = cfg.locate.heading_weight_m * (1.0 - c)
    ang = np.degrees(np.arccos(np.clip(c, 0.0, 1.0)))  # 0..90, the angle mod 180 folded
    cost = cost + np.where(ang > cfg.locate.heading_tolerance_deg, PENALTY_M, 0.0)
    return np.where(np.isfinite(heading_grid), cost, 0.0)


def candidates(px: np.ndarray, py: np.ndarray, heading_grid: np.ndarray, net: RoadNetwork, cfg: Config,
               use_heading: bool = True):
    """All (point, segment) pairs within max_snap_m with distance, chainage and emission cost."""
    pts = shapely.points(px, py)
    ok = np.isfinite(px) & np.isfinite(py)
    pi, si = net.tree.query(pts[ok], predicate="dwithin", distance=cfg.locate.max_snap_m)
    pi = np.flatnonzero(ok)[pi]
    g = net.geoms[si]
    dist = shapely.distance(g, pts[pi])
    s = shapely.line_locate_point(g, pts[pi])
    cost = dist.copy()
    if use_heading:
        cost += _angle_cost(heading_grid[pi], net.bearing_at(si, s), cfg)
    return pi, si, dist, s, cost


def _topk(pi: np.ndarray, cost: np.ndarray, n: int, k: int):
    """Per point, the k cheapest candidate rows -> padded (n, k) row indices (-1 pad), sorted by cost."""
    order = np.lexsort((cost, pi))
    pi_s = pi[order]
    starts = np.searchsorted(pi_s, np.arange(n))
    rank = np.arange(len(pi_s)) - starts[pi_s]
    keep = rank < k
    out = np.full((n, k), -1, dtype=np.int64)
    out[pi_s[keep], rank[keep]] = order[keep]
    return out


def _transition(net: RoadNetwork, seg_a, s_a, seg_b, s_b, straight, cfg: Config) -> np.ndarray:
    """Transition cost between candidates (vectorised over pairs)."""
    lc = cfg.locate
    same = seg_a == seg_b
    cost = np.full(len(seg_a), np.nan)
    cost[same] = lc.route_weight * np.abs(np.abs(s_b[same] - s_a[same]) - straight[same])
    rest = np.flatnonzero(~same)
    if len(rest):
        a, b = seg_a[rest], seg_b[rest]
        la, lb = net.lengths[a], net.lengths[b]
        sa, sb = s_a[rest], s_b[rest]
        # route distance via a shared end node (the cheapest of the combinations that exist)
        route = np.full(len(rest), INF)
        for na, da in ((net.start_node[a], sa), (net.end_node[a], la - sa)):
            for nb, db in ((net.start_node[b], sb), (net.end_node[b], lb - sb)):
                route = np.where(na == nb, np.minimum(route, da + db), route)
        node_shared = np.isfinite(route)
        c = np.empty(len(rest))
        c[node_shared] = lc.switch_m + lc.route_weight * np.abs(route[node_shared] - straight[rest][node_shared])
        other = np.flatnonzero(~node_shared)
        if len(other):
            touch = net.touching(a[other], b[other])
            c[other] = np.where(touch, lc.switch_m, lc.jump_m)
        cost[rest] = c
    return cost


def _viterbi(emis: np.ndarray, trans: np.ndarray, start_new: np.ndarray) -> np.ndarray:
    """emis (F, K) with inf pads, trans (F, K, K) cost from frame f-1 state i to frame f state j.
    start_new[f]: frame f starts a new chain. Returns the chosen state per frame (-1 where no candidate).
    The loop runs over frames (inherently sequential); each step is a vectorised K x K min."""
    F, K = emis.shape
    back = np.zeros((F, K), dtype=np.int64)
    acc = np.empty((F, K))
    restart = np.zeros(F, dtype=bool)
    cols = np.arange(K)
    for f in range(F):
        if start_new[f] or not np.isfinite(acc[f - 1]).any():
            acc[f] = emis[f]
            restart[f] = True
        else:
            tot = acc[f - 1][:, None] + trans[f]
            j = np.argmin(tot, axis=0)
            back[f] = j
            acc[f] = tot[j, cols] + emis[f]
            if not np.isfinite(acc[f]).any():  # no allowed transition: restart here
                acc[f] = emis[f]
                restart[f] = True
    state = np.full(F, -1, dtype=np.int64)
    f = F - 1
    while f >= 0:
        if np.isfinite(acc[f]).any():
            st = int(np.argmin(acc[f]))
            state[f] = st
            while not restart[f]:
                st = int(back[f, st])
                f -= 1
                state[f] = st
        f -= 1
    return state


def snap_frames(x: np.ndarray, y: np.ndarray, heading_grid: np.ndarray, t: np.ndarray, chain: np.ndarray,
                net: RoadNetwork, cfg: Config, method: str | None = None):
    """Snap vehicle positions (frames sorted by chain then time). ``chain`` labels the drive of each frame.

    Returns (segment index or -1, chainage, snap distance) per frame."""
    method = method or cfg.locate.method
    n = len(x)
    seg = np.full(n, -1, dtype=np.int64)
    ch = np.full(n, np.nan)
    dd = np.full(n, np.nan)
    if n == 0 or len(net) == 0:
        return seg, ch, dd
    pi, si, dist, s, cost = candidates(x, y, heading_grid, net, cfg, use_heading=method != "nearest")
    if len(pi) == 0:
        return seg, ch, dd
    if method in ("nearest", "heading"):
        best = _topk(pi, dist if method == "nearest" else cost, n, 1)[:, 0]
        ok = best >= 0
        seg[ok], ch[ok], dd[ok] = si[best[ok]], s[best[ok]], dist[best[ok]]
        return seg, ch, dd
    K = cfg.locate.candidates
    top = _topk(pi, cost, n, K)
    valid = top >= 0
    emis = np.where(valid, cost[np.maximum(top, 0)], INF)
    cseg = np.where(valid, si[np.maximum(top, 0)], -1)
    cs = np.where(valid, s[np.maximum(top, 0)], np.nan)
    step = np.hypot(np.diff(x), np.diff(y))
    dt = np.diff(t)
    start_new = np.ones(n, dtype=bool)
    start_new[1:] = (chain[1:] != chain[:-1]) | (np.abs(dt) > cfg.locate.max_gap_s)
    trans = np.full((n, K, K), INF)
    # all candidate pairs of consecutive frames in one vectorised call
    f_idx = np.flatnonzero(~start_new)
    if len(f_idx):
        fa = np.repeat(f_idx, K * K)
        ia = np.tile(np.repeat(np.arange(K), K), len(f_idx))
        jb = np.tile(np.tile(np.arange(K), K), len(f_idx))
        ok = valid[fa - 1, ia] & valid[fa, jb]
        fa, ia, jb = fa[ok], ia[ok], jb[ok]
        c = _transition(net, cseg[fa - 1, ia], cs[fa - 1, ia], cseg[fa, jb], cs[fa, jb], step[fa - 1], cfg)
        trans[fa, ia, jb] = c
    state = _viterbi(emis, trans, start_new)
    ok = state >= 0
    rows = top[np.flatnonzero(ok), state[ok]]
    seg[ok], ch[ok], dd[ok] = si[rows], s[rows], dist[rows]
    return seg, ch, dd


# ----------------------------------------------------------------------------------------------- locate
def _track_heading(x: np.ndarray, y: np.ndarray, t: np.ndarray, chain: np.ndarray, max_gap_s: float,
                   min_step: float = 2.0) -> np.ndarray:
    """Grid heading from the previous and next frames of the same chain (frames sorted by time), as
    ``frames._track_headings`` has it: a neighbour counts only within ``max_gap_s`` seconds
    (``frames.interpolate_max_gap_s``) and when reachable from the frame (``frames.reachable``). A frame after a
    stop or a gap in the frames (a lunch break, frames dropped, the next folder an hour later, or simply no hit in
    between) would otherwise take its bearing towards a far-away position that says nothing about where the vehicle
    was heading. With one neighbour left, the bearing between it and the frame; NaN without one, without a time,
    or when not moving (``min_step`` metres)."""
    n = len(x)
    out = np.full(n, np.nan)
    if n < 2:
        return out
    dt = np.diff(t)
    near = (chain[1:] == chain[:-1]) & (np.abs(dt) <= max_gap_s) & reachable(dt, np.hypot(np.diff(x), np.diff(y)))
    prev_ok = np.r_[False, near]
    next_ok = np.r_[near, False]
    prev = np.maximum(np.arange(n) - 1, 0)
    nxt = np.minimum(np.arange(n) + 1, n - 1)
    px = np.where(prev_ok, x[prev], x)
    py = np.where(prev_ok, y[prev], y)
    nx = np.where(next_ok, x[nxt], x)
    ny = np.where(next_ok, y[nxt], y)
    dx, dy = nx - px, ny - py
    moving = np.hypot(dx, dy) >= min_step
    out[moving] = np.degrees(np.arctan2(dx[moving], dy[moving])) % 360.0
    return out


#: the rear heading vote (_rear_convention): a frame votes when the vehicle moves at least this fast (m/s, between
#: the frames before and after it: not GPS jitter at walking pace, a stop, manoeuvring or reversing) ...
VOTE_MIN_SPEED = 3.0
#: ... and straight on (the bearings from the frame before and to the frame after within this many degrees: not at
#: a corner or a U-turn, where the frames' bearing says little about the heading at the frame) ...
VOTE_MAX_TURN_DEG = 30.0
#: ... its EXIF heading within 45° of the track's (the driving direction) or of its reverse (the camera faces);
#: a drive's convention is decided with at least VOTE_MIN of such votes, VOTE_SHARE of them for one convention
VOTE_MIN = 5
VOTE_SHARE = 0.8


def _rear_convention(drive: np.ndarray, rear: np.ndarray, exif: np.ndarray, hd: np.ndarray, trk: np.ndarray,
                     x: np.ndarray, y: np.ndarray, t: np.ndarray, chain: np.ndarray,
                     max_gap_s: float) -> tuple[np.ndarray, dict[str, dict]]:
    """Which rear frames' headings to turn by 180°, and per drive with rear frames the convention found.

    A rear camera's EXIF heading is the driving direction (dashcams) or the direction the camera faces (the
    driving direction + 180, as the EXIF standard has it: a phone looking back). One camera writes one of the
    two, so it is decided once per drive: by a vote of the rear frames with an EXIF heading whose vehicle clearly
    moves straight on (the frames before and after in the same chain, within ``max_gap_s`` and reachable, at
    least :data:`VOTE_MIN_SPEED` apart per second, the bearing turning less than :data:`VOTE_MAX_TURN_DEG`), each
    saying whether its heading agrees with the track's (within 45°) or its reverse. A frame at a U-turn between
    sparse hits, in GPS jitter at a stop or while reversing no longer turns its own heading the wrong way.

    With fewer than :data:`VOTE_MIN` votes, or no :data:`VOTE_SHARE` majority (a drive holding two rear cameras
    of both kinds), each frame is compared with the track heading on its own, as before (``per frame``): the best
    there is frame by frame, where never turning would put every hit of a phone looking back twice its distance
    off; the drive's entry says so, with ``decided`` False.

    Returns (turn: bool per frame, {drive: {"convention": "vehicle" | "camera" | "per frame", "decided": bool,
    "vehicle": votes, "camera": votes, "frames": rear frames}})."""
    n = len(hd)
    turn = np.zeros(n, dtype=bool)
    out: dict[str, dict] = {}
    rear_exif = rear & exif & np.isfinite(hd)
    if not rear.any():
        return turn, out
    diff = np.abs((hd - trk + 180.0) % 360.0 - 180.0)
    per_frame = rear_exif & np.isfinite(trk) & (diff > 90.0)  # the rule before: each frame on its own
    # moving clearly: two-sided neighbours, fast enough, straight on
    vote = np.zeros(n, dtype=bool)
    if n >= 3:
        dt = np.diff(t)
        step = np.hypot(np.diff(x), np.diff(y))
        near = (chain[1:] == chain[:-1]) & (np.abs(dt) <= max_gap_s) & reachable(dt, step)
        both = np.r_[False, near[:-1] & near[1:], False]
        span = np.r_[np.nan, t[2:] - t[:-2], np.nan]
        way = np.r_[np.nan, np.hypot(x[2:] - x[:-2], y[2:] - y[:-2]), np.nan]
        b = np.degrees(np.arctan2(np.diff(x), np.diff(y)))
        turned = np.r_[np.nan, np.abs((b[1:] - b[:-1] + 180.0) % 360.0 - 180.0), np.nan]
        with np.errstate(invalid="ignore", divide="ignore"):
            fast = way / span >= VOTE_MIN_SPEED
        vote = rear_exif & np.isfinite(trk) & both & fast & (turned <= VOTE_MAX_TURN_DEG)
    same = vote & (diff <= 45.0)
    faces = vote & (diff >= 135.0)
    for d in pd.unique(drive[rear]):
        rows = drive == d
        nv, nc = int(same[rows].sum()), int(faces[rows].sum())
        total = nv + nc
        if total >= VOTE_MIN and max(nv, nc) >= VOTE_SHARE * total:
            conv = "camera" if nc > nv else "vehicle"
            turn[rows] = rear_exif[rows] & (conv == "camera")
        else:
            conv = "per frame"
            turn[rows] = per_frame[rows]
        out[str(d)] = {"convention": conv, "decided": conv != "per frame", "vehicle": nv, "camera": nc,
                       "frames": int((rows & rear).sum())}
    return turn, out


def rear_heading_notes(conventions: dict[str, dict]) -> tuple[list[str], list[str]]:
    """(notes, warnings) for the summary from ``locate``'s ``df.attrs["rear_heading"]``: per drive, which convention
    its rear camera's EXIF heading was found in, or why it could not be told."""
    notes, warns = [], []
    for d, c in conventions.items():
        votes = f"{c['vehicle']} moving frames agree with the track, {c['camera']} point against it"
        if c["convention"] == "vehicle":
            notes.append(f"{d}: the rear camera's EXIF heading is the driving direction (as dashcams write it; {votes})")
        elif c["convention"] == "camera":
            notes.append(f"{d}: the rear camera's EXIF heading is the direction it faces, turned 180° for every rear "
                         f"frame (as a phone looking back writes it; {votes})")
        elif c["vehicle"] + c["camera"]:
            warns.append(f"{d}: could not tell how the rear camera writes its heading ({votes}; {VOTE_MIN} needed, "
                         f"{VOTE_SHARE:.0%} of them one way): each rear frame's heading was compared with the track on "
                         "its own")
    return notes, warns


def frame_heading_sources(frames) -> dict[tuple[str, str], str]:
    """(drive, image) -> the frame's ``heading_source`` ("exif", "exif_magnetic", "track", "track_file", ""), for
    ``locate``."""
    return {(str(f.drive), str(f.name)): f.heading_source for f in frames}


def frame_hfovs(frames) -> dict[tuple[str, str], float]:
    """(drive, image) -> the frame's own field of view from its EXIF focal length (frames.csv ``hfov_deg``), for
    ``locate``; frames without one are left out."""
    return {(str(f.drive), str(f.name)): float(f.hfov_deg) for f in frames if math.isfinite(f.hfov_deg)}


def _hit_hfovs(df: pd.DataFrame, hfovs: dict[tuple[str, str], float] | None, cam: CameraSpec | None) -> np.ndarray:
    """Each hit's frame's own field of view (``hfovs``, ``frame_hfovs``) where ``camera.hfov_from_exif``; NaN (the
    mounting's ``hfov_deg``) elsewhere and for a value outside camera.hfov_deg's range (a hand-edited frames.csv)."""
    out = np.full(len(df), np.nan)
    if not hfovs or cam is None or not cam.hfov_from_exif or not len(df):
        return out
    own = pd.Series(list(hfovs.values()), index=pd.MultiIndex.from_tuples(list(hfovs)), dtype=float)
    own = own[~own.index.duplicated()]
    out = own.reindex(pd.MultiIndex.from_arrays([df["drive"].astype(str), df["image"].astype(str)])).to_numpy(float)
    return np.where((out > HFOV_RANGE[0]) & (out < HFOV_RANGE[1]), out, np.nan)


def frame_sequences(frames) -> dict[tuple[str, str], str]:
    """(drive, image) -> sequence label for ``locate``: ``frames.chain_folders`` over the times of all of each
    drive's frames (not only those with hits, whose times can miss that two folders were recorded together)."""
    by_drive: dict[str, list] = {}
    for f in frames:
        by_drive.setdefault(str(f.drive), []).append(f)
    out: dict[tuple[str, str], str] = {}
    for drive, frs in by_drive.items():
        t = np.array([f.time.timestamp() if f.time is not None else np.nan for f in frs], dtype=float)
        for f, k in zip(frs, chain_folders([sequence_of(str(f.name)) for f in frs], t)):
            out[(drive, str(f.name))] = k
    return out


def _cameras(det: Detections, cfg: Config) -> np.ndarray:
    """Each hit's camera: the detections' ``camera`` where given, else (a detections.csv without the column, as
    the oracle files or one of an older patrol) ``frames.rear`` applied to the image name."""
    cam = np.asarray(det.camera, dtype=object).copy()
    unknown = np.flatnonzero(cam == "")
    if len(unknown):
        names = pd.unique(det.image[unknown])
        by_name = {n: camera_of(str(n), cfg.frames.rear) for n in names}
        cam[unknown] = [by_name[n] for n in det.image[unknown]]
    return cam


def _base_frame(det: Detections) -> pd.DataFrame:
    df = pd.DataFrame({
        "image": det.image.astype(object), "time": det.time.astype(object), "lat": det.lat, "lon": det.lon,
        "heading": det.heading, "class": det.class_id.astype(object), "confidence": det.confidence,
        "x1": det.xyxy[:, 0], "y1": det.xyxy[:, 1], "x2": det.xyxy[:, 2], "y2": det.xyxy[:, 3],
        "width": det.width, "height": det.height, "drive": det.drive.astype(object),
    })
    df["t"] = det.times()
    k = df.groupby(["drive", "image"], sort=False).cumcount()
    df["obs_id"] = df["drive"].astype(str) + "/" + df["image"].astype(str) + "#" + k.astype(str)
    return df


def _per_camera(rear: np.ndarray, cam: CameraSpec, fn) -> tuple[np.ndarray, np.ndarray]:
    """``fn(rows, spec) -> (a, b)`` for the front hits with the front mounting and the rear hits with the rear one
    (``camera.rear`` over the front's), put together in row order."""
    n = len(rear)
    a, b = np.full(n, np.nan), np.full(n, np.nan)
    for rows, spec in ((~rear, cam), (rear, cam.of("rear"))):
        if rows.any():
            a[rows], b[rows] = fn(rows, spec)
    return a, b


def locate(det: Detections, net: RoadNetwork, cfg: Config | None = None, method: str | None = None,
           sequences: dict[tuple[str, str], str] | None = None,
           heading_sources: dict[tuple[str, str], str] | None = None,
           hfovs: dict[tuple[str, str], float] | None = None) -> pd.DataFrame:
    """``sequences``: (drive, image) -> sequence label from all the drive's frames (``frame_sequences``). Without
    it each folder is a sequence of its own: the times of the frames with hits only cannot tell a camera's folder
    rollover from two phones recording at the same time whose hits do not overlap in time.
    ``heading_sources``: (drive, image) -> the frame's ``heading_source`` (``frame_heading_sources``); a heading
    taken from the track is the driving direction, never turned as a rear camera's EXIF heading may be. Without
    it every heading counts as EXIF. ``hfovs``: (drive, image) -> the frame's own field of view from its EXIF focal
    length (``frame_hfovs``), used over the mounting's ``hfov_deg`` (front or rear) when ``camera.hfov_from_exif``;
    without it every frame has the mounting's. ``df.attrs["rear_heading"]``: per drive with rear frames, the convention of
    their EXIF heading found (:func:`_rear_convention`)."""
    cfg = cfg or Config()
    df = _base_frame(det)
    df["camera"] = _cameras(det, cfg)
    rear = df["camera"].to_numpy() == "rear"
    n = len(df)
    located = np.isfinite(df["lat"].to_numpy()) & np.isfinite(df["lon"].to_numpy())
    df["located"] = located
    df.attrs["n_unlocated"] = int((~located).sum())
    x = np.full(n, np.nan)
    y = np.full(n, np.nan)
    if located.any():
        x[located], y[located] = net.xy(df["lon"].to_numpy()[located], df["lat"].to_numpy()[located])
    df["x"], df["y"] = x, y

    # ---- frames: unique (drive, image) with a position, sorted by drive, sequence (the image's folders one after
    # another in time: one phone's frames, ``frames.chain_folders``), vehicle track within it
    # (``frames.split_tracks``: phones of several vehicles in one folder), time, image; a chain is one track
    fr = df.loc[located, ["drive", "image", "t", "x", "y", "heading", "camera"]].drop_duplicates(["drive", "image"])
    fr = fr.assign(_tk=fr["t"].fillna(np.inf))
    if sequences is not None:  # from all the frames: folders recorded at the same time stay apart
        fr["_seq"] = [sequences.get((str(d), str(i)), "\0" + sequence_of(str(i))) for d, i in zip(fr["drive"], fr["image"])]
    else:  # the hits' times alone cannot tell a folder rollover from two phones recording at once: folders apart
        fr["_seq"] = fr["image"].astype(str).map(sequence_of)
    fr = fr.sort_values(["drive", "_seq", "_tk", "image"], kind="mergesort").reset_index(drop=True)
    fr["_trk"] = -1  # frames without a time: one group, as before
    for rows in fr.groupby(["drive", "_seq"], sort=False).indices.values():
        rows = rows[np.isfinite(fr["t"].to_numpy()[rows])]
        fr.loc[rows, "_trk"] = split_tracks(*(fr[c].to_numpy()[rows] for c in ("t", "x", "y")))
    fr = fr.sort_values(["drive", "_seq", "_trk", "_tk", "image"], kind="mergesort").reset_index(drop=True)
    chain = fr.groupby(["drive", "_seq", "_trk"], sort=False).ngroup().to_numpy()
    fx, fy = fr["x"].to_numpy(), fr["y"].to_numpy()
    hd = net.true_to_grid(fr["heading"].to_numpy())
    tt = fr["t"].to_numpy()
    trk = _track_heading(fx, fy, tt, chain, cfg.frames.interpolate_max_gap_s)
    # a rear camera's EXIF heading: the driving direction as dashcams write it, but the direction the camera faces
    # (the driving direction + 180) as the EXIF standard has it and a phone looking back writes it: one decision per
    # drive, by a vote of its rear frames where the vehicle clearly moves (_rear_convention)
    exif = np.ones(len(fr), dtype=bool) if heading_sources is None else np.array(
        [heading_sources.get((str(d), str(i)), "exif").startswith("exif") for d, i in zip(fr["drive"], fr["image"])],
        dtype=bool)  # "exif" and "exif_magnetic" (GPSImgDirectionRef "M", used as true): written by the camera
    back, conventions = _rear_convention(fr["drive"].to_numpy(), fr["camera"].to_numpy() == "rear", exif, hd, trk,
                                         fx, fy, tt, chain, cfg.frames.interpolate_max_gap_s)
    df.attrs["rear_heading"] = conventions
    hd = np.where(back, (hd + 180.0) % 360.0, hd)
    hd = np.where(np.isfinite(hd), hd, trk)
    tt = np.where(np.isfinite(tt), tt, 0.0)
    vseg, vch, vdist = snap_frames(fx, fy, hd, tt, chain, net, cfg, method)
    fr["_hd"], fr["_vseg"], fr["_vch"], fr["_vdist"] = hd, vseg, vch, vdist
    m = df[["drive", "image"]].merge(fr[["drive", "image", "_hd", "_vseg", "_vch", "_vdist"]], on=["drive", "image"], how="left")
    hdg = m["_hd"].to_numpy(dtype=float)
    vseg_d = m["_vseg"].fillna(-1).to_numpy(dtype=np.int64)

    # ---- the damage ahead of the camera
    cam = cfg.camera
    place = cfg.locate.place_ahead and cam is not None
    dist_ahead = np.full(n, np.nan)
    lateral = np.full(n, np.nan)
    est_w = np.full(n, np.nan)
    est_l = np.full(n, np.nan)
    hfov = _hit_hfovs(df, hfovs, cam)  # the frame's own (EXIF focal length), NaN: the mounting's
    if cam is not None and n:
        xyxy = df[["x1", "y1", "x2", "y2"]].to_numpy()
        est_w, est_l = _per_camera(rear, cam, lambda rows, spec: box_extent_m(
            xyxy[rows], df["width"].to_numpy()[rows], df["height"].to_numpy()[rows], spec, hfov[rows]))
    dx, dy = x.copy(), y.copy()
    if place and n:
        u = (df["x1"].to_numpy() + df["x2"].to_numpy()) / 2.0
        v, w, h = df["y2"].to_numpy(), df["width"].to_numpy(), df["height"].to_numpy()
        d, lat_off = _per_camera(rear, cam, lambda rows, spec: ground_from_pixel(u[rows], v[rows], w[rows], h[rows], spec,
                                                                                 hfov[rows]))
        ok = located & np.isfinite(hdg)
        th = np.radians(np.where(rear, hdg + 180.0, hdg))  # a rear camera looks back: ahead of it is behind the vehicle
        dx = np.where(ok, x + d * np.sin(th) + lat_off * np.cos(th), x)
        dy = np.where(ok, y + d * np.cos(th) - lat_off * np.sin(th), y)
        dist_ahead = np.where(ok, d, np.nan)
        lateral = np.where(ok, lat_off, np.nan)

    # ---- project the damage on a segment: heading-aware, preferring the driven road and what connects to it
    seg = np.full(n, -1, dtype=np.int64)
    chn = np.full(n, np.nan)
    snap = np.full(n, np.nan)
    if located.any() and len(net):
        pi, si, dist, s, cost = candidates(dx, dy, hdg, net, cfg, use_heading=True)
        if len(pi):
            vs = vseg_d[pi]
            pref = np.zeros(len(pi))
            has_v = vs >= 0
            diff = has_v & (si != vs)
            if diff.any():
                idx = np.flatnonzero(diff)
                touch = net.touching(vs[idx], si[idx])
                pref[idx] = np.where(touch, cfg.locate.switch_m, cfg.locate.jump_m)
            best = _topk(pi, cost + pref, n, 1)[:, 0]
            ok = best >= 0
            seg[ok], chn[ok], snap[ok] = si[best[ok]], s[best[ok]], dist[best[ok]]
    has = seg >= 0
    rx, ry = np.full(n, np.nan), np.full(n, np.nan)
    if has.any():
        p = shapely.line_interpolate_point(net.geoms[seg[has]], chn[has])
        rx[has], ry[has] = shapely.get_x(p), shapely.get_y(p)
    dlon, dlat = np.full(n, np.nan), np.full(n, np.nan)
    fin = np.isfinite(dx) & np.isfinite(dy)
    if fin.any():
        dlon[fin], dlat[fin] = net.lonlat(dx[fin], dy[fin])

    df["dmg_x"], df["dmg_y"], df["dmg_lat"], df["dmg_lon"] = dx, dy, dlat, dlon
    df["distance_ahead_m"], df["lateral_m"] = dist_ahead, lateral
    df["segment_id"] = np.where(has, net.ids[np.maximum(seg, 0)], "").astype(object)
    df["road_name"] = np.where(has, net.names[np.maximum(seg, 0)], "").astype(object)
    df["chainage_m"], df["snap_m"] = chn, snap
    df["road_x"], df["road_y"] = rx, ry
    df["road_lat"], df["road_lon"] = np.nan, np.nan
    if has.any():
        rlon, rlat = net.lonlat(rx[has], ry[has])
        df.loc[has, "road_lat"], df.loc[has, "road_lon"] = rlat, rlon
    sg = np.maximum(seg, 0)
    df["seg_length_m"] = np.where(has, net.lengths[sg], np.nan)
    df["seg_node_a"] = np.where(has, net.start_node[sg], -1)
    df["seg_node_b"] = np.where(has, net.end_node[sg], -1)
    df["veh_segment_id"] = np.where(vseg_d >= 0, net.ids[np.maximum(vseg_d, 0)], "").astype(object)
    df["veh_snap_m"] = m["_vdist"].to_numpy(dtype=float)
    df["heading_grid"] = hdg
    df["est_width_m"], df["est_length_m"] = est_w, est_l
    return df
