"""Stage 4: Located -> Candidates (one row per damage, across passes).

1. Sightings. The boxes of one class in one frame (drive, image) are one sighting per damage: boxes whose
   damage points lie within ``dedupe.distance_m`` of each other are linked, and boxes whose distance is not
   reliable (the ray does not reach the ground before ``camera.max_distance_m``) join the frame's nearest
   box. A sighting is placed at its nearest box (the largest bottom y / height: the ground point closest to
   the camera, whose estimate is the most accurate). So a frame with two boxes of one class on one damage (a
   long crack drawn as pieces) counts once; ``n_obs`` counts distinct frames.
2. Along the road. Sightings are grouped by (class, segment_id) [and drive when ``cross_drive`` is off],
   sorted by chainage and linked while the gap is <= ``distance_m`` (single linkage); a chain longer than
   ``max_extent_m`` is cut greedily from its start, so cracks every 10 m along a street become candidates
   of at most ``max_extent_m`` each, not one 200 m candidate.
3. Across segment ends: clusters of one class whose ends lie within ``distance_m`` of each other through a
   shared node (a damage at a segment boundary), or whose end sightings lie within ``distance_m`` on the
   ground (a damage at a sharp turn, seen on both streets), are merged, within the same extent cap. Each
   cluster merges at most once at each of its ends, so one on a short segment between two others (a corner cut
   into pieces) joins both; the merged group as a whole keeps the cap.
4. Unsnapped sightings (no road within ``locate.max_snap_m``): single linkage by planar distance.
5. Far sightings (``distance_ahead_m`` > ``dedupe.far_m``: placed far from their camera, ahead or, for a rear
   camera, behind): a cluster of only such sightings joins the same-class cluster with a near sighting of the same
   drive *and camera* seen closest in time, within ``dedupe.link_s`` (``_link_far``).
6. A candidate seen in one frame only with a confidence below ``dedupe.single_sighting_min_conf`` is dropped
   (``attrs["hits"]["weak"]`` counts its boxes; ``"same_frame"`` the other boxes of a damage in a counted frame).

Candidate position: the confidence-weighted mean of the members' damage points on the road, put back on the
main segment (the segment with most member confidence); chainage from that segment's first vertex.
``candidate_id`` = ``C-`` + sha1(class | main segment_id | obs_id of the first member box)[:10]: stable across
identical runs and independent of the exact position (a box belongs to one candidate, so ids are unique).
Severity (0-100) = 100 * (0.6 * class weight / max weight + 0.4 * size), size = min(1, est. area / 2 m^2)
with a camera (est_width_m * est_length_m of the best box), else sqrt(box area fraction).
``observations``: every sighting of the candidate (``OBSERVATION_KEYS``: the frame's most confident box of it, its
confidence and the frame's time), in time order: what ``Store.merge`` stores; no output file writes it.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from .config import Config

CANDIDATE_COLUMNS = [
    "candidate_id", "class", "class_name", "class_name_ja", "confidence", "n_obs", "first_seen", "last_seen",
    "segment_id", "road_name", "chainage_m", "lat", "lon", "best_image", "best_drive", "best_x1", "best_y1",
    "best_x2", "best_y2", "best_width", "best_height", "drives", "images", "severity", "est_width_m", "est_length_m",
    "last_drive", "observations",
]
#: a sighting in ``observations``: the candidate's most confident box in one frame (the best box in the best one)
OBSERVATION_KEYS = ("drive", "image", "x1", "y1", "x2", "y2", "confidence", "time", "width", "height")


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of an undirected graph (vectorised min-label propagation with pointer jumping)."""
    lab = np.arange(n)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if len(a) == 0:
        return lab
    while True:
        la, lb = lab[a], lab[b]
        m = np.minimum(la, lb)
        new = lab.copy()
        np.minimum.at(new, a, m)
        np.minimum.at(new, b, m)
        np.minimum.at(new, la, m)
        np.minimum.at(new, lb, m)
        new = new[new]
        if np.array_equal(new, lab):
            break
        lab = new
    return lab


def _pairs_within(key: np.ndarray, x: np.ndarray, y: np.ndarray, r: float):
    """Index pairs (i<j) with equal key and planar distance <= r (self-join per key)."""
    df = pd.DataFrame({"k": key, "i": np.arange(len(key))})
    m = df.merge(df, on="k")
    m = m[m["i_x"] < m["i_y"]]
    i, j = m["i_x"].to_numpy(), m["i_y"].to_numpy()
    ok = np.hypot(x[i] - x[j], y[i] - y[j]) <= r
    return i[ok], j[ok]


def _camera(L: pd.DataFrame) -> np.ndarray:
    """Each row's camera ("front" | "rear"; Located without the column: front)."""
    return L["camera"].astype(str).to_numpy() if "camera" in L.columns else np.full(len(L), "front", dtype=object)


def _sightings(L: pd.DataFrame, cfg: Config) -> np.ndarray:
    """Sighting label per row (row index of the sighting's anchor box)."""
    n = len(L)
    px = np.where(np.isfinite(L["road_x"]), L["road_x"], L["dmg_x"]).astype(float)
    py = np.where(np.isfinite(L["road_y"]), L["road_y"], L["dmg_y"]).astype(float)
    key = pd.factorize(L["drive"].astype(str) + "\x00" + L["image"].astype(str) + "\x00" + L["class"].astype(str))[0]
    cap = np.full(n, cfg.camera.max_distance_m if cfg.camera is not None else np.inf)
    if cfg.camera is not None:  # a rear camera's hits have the rear mounting's cap
        cap[_camera(L) == "rear"] = cfg.camera.of("rear").max_distance_m
    d = L["distance_ahead_m"].to_numpy(dtype=float)
    reliable = ~(np.isfinite(d) & (d >= cap - 1e-6))
    near = L["y2"].to_numpy(dtype=float) / L["height"].to_numpy(dtype=float)
    # the frame-class anchor: nearest box (tie: confidence, then row order)
    order = np.lexsort((np.arange(n), -L["confidence"].to_numpy(), -near, key))
    first = np.ones(n, dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    anchor_of_key = np.empty(key.max() + 1 if n else 0, dtype=np.int64)
    anchor_of_key[key[order][first]] = order[first]
    i, j = _pairs_within(key, px, py, cfg.dedupe.distance_m)
    ok = reliable[i] & reliable[j]
    a, b = list(i[ok]), list(j[ok])
    un = np.flatnonzero(~reliable)
    a = np.r_[np.asarray(a, dtype=np.int64), un]
    b = np.r_[np.asarray(b, dtype=np.int64), anchor_of_key[key[un]]]
    lab = _components(n, a, b)
    # label = the nearest box of each component
    order2 = np.lexsort((np.arange(n), -L["confidence"].to_numpy(), -near, lab))
    f2 = np.ones(n, dtype=bool)
    f2[1:] = lab[order2][1:] != lab[order2][:-1]
    anchor = np.empty(n, dtype=np.int64)
    anchor_lab = dict(zip(lab[order2][f2], order2[f2]))
    anchor[:] = [anchor_lab[v] for v in lab]
    return anchor


def _chain_clusters(groups: np.ndarray, pos: np.ndarray, gap: float, extent: float) -> np.ndarray:
    """Single linkage on sorted 1-D positions within groups, a chain cut when its extent would exceed ``extent``.
    Returns a cluster label per item. The loop runs over sorted items (cheap scalar work)."""
    n = len(pos)
    order = np.lexsort((pos, groups))
    lab = np.empty(n, dtype=np.int64)
    cur = -1
    start = prev = 0.0
    pg = None
    for k in order:
        g, p = groups[k], pos[k]
        if g != pg or p - prev > gap or p - start > extent:
            cur += 1
            start = p
        lab[k] = cur
        prev = p
        pg = g
    return lab


def dedupe(located: pd.DataFrame, cfg: Config | None = None, net=None) -> pd.DataFrame:
    """Candidates from Located. ``net`` (optional, the RoadNetwork the hits were located on) puts each candidate
    exactly back on its main segment; without it the position is the weighted mean of the members' road points."""
    cfg = cfg or Config()
    ds = cfg.dedupe
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in CANDIDATE_COLUMNS})
    empty.attrs["hits"] = {"unplaced": len(located), "weak": 0, "same_frame": 0}
    if len(located) == 0:
        return empty
    L = located
    if "located" in L.columns:
        L = L[L["located"].astype(bool)]
    L = L[np.isfinite(L["dmg_x"]) & np.isfinite(L["dmg_y"])].reset_index(drop=True)
    if len(L) == 0:
        return empty
    anchor = _sightings(L, cfg)
    S = L.loc[np.unique(anchor)].copy()  # one row per sighting (its anchor box)
    S["sid"] = S.index.to_numpy()
    seg = S["segment_id"].fillna("").astype(str).to_numpy()
    snapped = seg != ""
    drive_key = S["drive"].astype(str).to_numpy() if not ds.cross_drive else np.full(len(S), "")
    cls = S["class"].astype(str).to_numpy()
    lab = np.full(len(S), -1, dtype=np.int64)
    if snapped.any():
        gkey = pd.factorize(pd.Series(cls[snapped]) + "\x00" + seg[snapped] + "\x00" + drive_key[snapped])[0]
        lab[snapped] = _chain_clusters(gkey, S["chainage_m"].to_numpy(dtype=float)[snapped], ds.distance_m, ds.max_extent_m)
    nxt = lab.max() + 1
    if (~snapped).any():
        u = np.flatnonzero(~snapped)
        ux, uy = S["dmg_x"].to_numpy(dtype=float)[u], S["dmg_y"].to_numpy(dtype=float)[u]
        k = pd.factorize(pd.Series(cls[u]) + "\x00" + drive_key[u])[0]
        i, j = _pairs_within(k, ux, uy, ds.distance_m)
        c = _components(len(u), i, j)
        lab[u] = nxt + pd.factorize(c)[0]
    # merge across segment ends through shared nodes
    if snapped.any() and {"seg_length_m", "seg_node_a", "seg_node_b"} <= set(S.columns):
        lab = _merge_at_nodes(S, lab, snapped, cls, drive_key, cfg)
    lab = _link_far(S, lab, cfg)
    S["cluster"] = pd.factorize(lab)[0]
    L["cluster"] = S.set_index("sid")["cluster"].reindex(anchor).to_numpy()
    out = _aggregate(L, S, cfg, net)
    out.attrs["hits"]["unplaced"] = len(located) - len(L)
    return out


def _far(S: pd.DataFrame, cfg: Config) -> np.ndarray:
    d = S["distance_ahead_m"].to_numpy(dtype=float)
    return np.isfinite(d) & (d > cfg.dedupe.far_m)


def _link_far(S: pd.DataFrame, lab: np.ndarray, cfg: Config) -> np.ndarray:
    """A cluster made only of far sightings joins the same-class cluster (with a near sighting) of the same drive
    and camera seen closest in time, within ``link_s``: the far estimate is weak, the near one of the same pass is
    not. Of the same camera: a rear camera sees a damage far behind after the vehicle passed it, while the front
    camera already sees the next damage near ahead; the rear's near sighting of that damage came just before."""
    far = _far(S, cfg)
    if not far.any() or cfg.dedupe.link_s <= 0:
        return lab
    allfar = pd.Series(far).groupby(lab).transform("all").to_numpy()
    if not allfar.any() or allfar.all():
        return lab
    t = S["t"].to_numpy(dtype=float)
    key = S["drive"].astype(str).to_numpy() + "\x00" + S["class"].astype(str).to_numpy() + "\x00" + _camera(S)
    A = pd.DataFrame({"k": key[allfar], "i": np.flatnonzero(allfar)})
    B = pd.DataFrame({"k": key[~far], "j": np.flatnonzero(~far)})
    P = A.merge(B, on="k")
    if len(P) == 0:
        return lab
    P["dt"] = np.abs(t[P["i"].to_numpy()] - t[P["j"].to_numpy()])
    P = P[P["dt"] <= cfg.dedupe.link_s]
    if len(P) == 0:
        return lab
    P["src"], P["dst"] = lab[P["i"].to_numpy()], lab[P["j"].to_numpy()]
    P = P.sort_values(["src", "dt", "dst"], kind="mergesort").drop_duplicates("src")
    out = lab.copy()
    m = dict(zip(P["src"], P["dst"]))
    return np.array([m.get(v, v) for v in out], dtype=np.int64)


def _merge_at_nodes(S, lab, snapped, cls, drive_key, cfg):
    """Merge clusters of one class whose ends meet at a shared node: within ``distance_m`` of each other along
    the road through the node, or in the plane (the registry's measure across segments). The plane catches a
    damage at a sharp turn, whose sightings land on both streets farther apart by road than on the ground."""
    ds = cfg.dedupe
    idx = np.flatnonzero(snapped)
    df = pd.DataFrame({"lab": lab[idx], "ch": S["chainage_m"].to_numpy(dtype=float)[idx],
                       "len": S["seg_length_m"].to_numpy(dtype=float)[idx],
                       "na": S["seg_node_a"].to_numpy(dtype=np.int64)[idx], "nb": S["seg_node_b"].to_numpy(dtype=np.int64)[idx],
                       "x": S["dmg_x"].to_numpy(dtype=float)[idx], "y": S["dmg_y"].to_numpy(dtype=float)[idx],
                       "cls": cls[idx], "dk": drive_key[idx]})
    # the member at each end of each cluster (segment, class and drive key are the same for all its members)
    first = df.loc[df.groupby("lab")["ch"].idxmin()].set_index("lab")
    last = df.loc[df.groupby("lab")["ch"].idxmax()].set_index("lab")
    lo, hi = first["ch"].to_numpy(), last["ch"].to_numpy()
    ext = hi - lo
    key = (first["cls"] + "\x00" + first["dk"]).to_numpy()
    ends = []
    for node, dist, member in ((first["na"].to_numpy(), lo, first), (first["nb"].to_numpy(), first["len"].to_numpy() - hi, last)):
        m = dist <= ds.distance_m
        ends.append(pd.DataFrame({"lab": first.index.to_numpy()[m], "node": node[m], "d": dist[m], "ext": ext[m],
                                  "x": member["x"].to_numpy()[m], "y": member["y"].to_numpy()[m], "key": key[m]}))
    E = pd.concat(ends, ignore_index=True)
    if len(E) < 2:
        return lab
    P = E.merge(E, on=["node", "key"])
    P = P[P["lab_x"] < P["lab_y"]].copy()
    P["gap"] = np.fmin(P["d_x"] + P["d_y"], np.hypot(P["x_x"] - P["x_y"], P["y_x"] - P["y_y"]))
    P = P[(P["gap"] <= ds.distance_m) & (P["gap"] + P["ext_x"] + P["ext_y"] <= ds.max_extent_m)]
    if len(P) == 0:
        return lab
    # greedy: closest pairs first, each cluster merged at most once per node side, and a merged group (a cluster
    # on a short segment at a corner meets one neighbour at each end) at most max_extent_m long along the road
    P = P.sort_values(["gap", "lab_x", "lab_y"], kind="mergesort")
    used: set = set()
    root: dict = {}
    extent = dict(zip(first.index.to_numpy(), ext))

    def find(v):
        while root.get(v, v) != v:
            v = root[v]
        return v

    a, b = [], []
    for la, lb, node, gap in zip(P["lab_x"].to_numpy(), P["lab_y"].to_numpy(), P["node"].to_numpy(), P["gap"].to_numpy()):
        ra, rb = find(la), find(lb)
        if (la, node) in used or (lb, node) in used or ra == rb or extent[ra] + gap + extent[rb] > ds.max_extent_m:
            continue
        used.update(((la, node), (lb, node)))
        root[rb], extent[ra] = ra, extent[ra] + gap + extent[rb]
        a.append(la)
        b.append(lb)
    uniq, inv = np.unique(lab, return_inverse=True)
    pos = {v: k for k, v in enumerate(uniq)}
    comp = _components(len(uniq), np.array([pos[v] for v in a]), np.array([pos[v] for v in b]))
    return uniq[comp][inv]


def _aggregate(L: pd.DataFrame, S: pd.DataFrame, cfg: Config, net) -> pd.DataFrame:
    import shapely

    w = (S["confidence"].to_numpy(dtype=float) + 1e-9) * np.where(_far(S, cfg), 0.1, 1.0)
    S = S.assign(_w=w, _wx=w * np.where(np.isfinite(S["road_x"]), S["road_x"], S["dmg_x"]),
                 _wy=w * np.where(np.isfinite(S["road_y"]), S["road_y"], S["dmg_y"]))
    g = S.groupby("cluster", sort=True)
    mx = (g["_wx"].sum() / g["_w"].sum()).to_numpy()
    my = (g["_wy"].sum() / g["_w"].sum()).to_numpy()
    # main segment: most member confidence
    segw = S.groupby(["cluster", "segment_id"], sort=True)["_w"].sum().reset_index()
    segw = segw.sort_values(["cluster", "_w", "segment_id"], ascending=[True, False, True]).drop_duplicates("cluster")
    main_seg = segw.set_index("cluster")["segment_id"].reindex(g.size().index).fillna("").astype(str).to_numpy()
    nC = len(mx)
    chain = np.full(nC, np.nan)
    road_name = np.full(nC, "", dtype=object)
    px, py = mx.copy(), my.copy()
    has = main_seg != ""
    if has.any():
        if net is not None:
            si = np.array([net.index_of(s) for s in main_seg[has]], dtype=np.int64)
            geo = net.geoms[si]
            ch = shapely.line_locate_point(geo, shapely.points(mx[has], my[has]))
            p = shapely.line_interpolate_point(geo, ch)
            chain[has], px[has], py[has] = ch, shapely.get_x(p), shapely.get_y(p)
            road_name[has] = net.names[si]
        else:  # no network: weighted mean chainage of the members on the main segment
            mm = S[S["segment_id"].astype(str).to_numpy() == main_seg[S["cluster"].to_numpy()]]
            c = (mm["_w"] * mm["chainage_m"]).groupby(mm["cluster"]).sum() / mm.groupby("cluster")["_w"].sum()
            chain[has] = c.reindex(np.flatnonzero(has)).to_numpy()
            rn = mm.drop_duplicates("cluster").set_index("cluster")["road_name"]
            road_name[has] = rn.reindex(np.flatnonzero(has)).fillna("").to_numpy()
    if net is not None:
        lon, lat = net.lonlat(px, py)
    else:  # no network: weighted mean of the members' WGS84 points on the road (raw damage points when unsnapped)
        la = np.where(np.isfinite(S["road_lat"]), S["road_lat"], S["dmg_lat"]) if "road_lat" in S else S["dmg_lat"].to_numpy()
        lo = np.where(np.isfinite(S["road_lon"]), S["road_lon"], S["dmg_lon"]) if "road_lon" in S else S["dmg_lon"].to_numpy()
        sw = g["_w"].sum().to_numpy()
        lat = pd.Series(S["_w"].to_numpy() * la).groupby(S["cluster"].to_numpy()).sum().to_numpy() / sw
        lon = pd.Series(S["_w"].to_numpy() * lo).groupby(S["cluster"].to_numpy()).sum().to_numpy() / sw

    # per-cluster stats over all member boxes
    L = L.assign(_area=(L["x2"] - L["x1"]).clip(lower=0) * (L["y2"] - L["y1"]).clip(lower=0),
                 _frame=L["drive"].astype(str) + "/" + L["image"].astype(str),
                 _tk=L["t"].fillna(np.inf),
                 _obs=L["obs_id"].astype(str) if "obs_id" in L else L["drive"].astype(str) + "/" + L["image"].astype(str))
    best = L.sort_values(["cluster", "confidence", "_area", "_tk", "_frame"], ascending=[True, False, False, True, True],
                         kind="mergesort").drop_duplicates("cluster").set_index("cluster").sort_index()
    byt = L.sort_values(["cluster", "_tk", "_frame", "_obs"], kind="mergesort")
    first = byt.drop_duplicates("cluster", keep="first").set_index("cluster").sort_index()
    last = byt.drop_duplicates("cluster", keep="last").set_index("cluster").sort_index()
    gl = L.groupby("cluster", sort=True)
    n_obs = gl["_frame"].nunique().to_numpy()
    # every sighting (one per frame: the frame's most confident box, in the order that picks ``best``), for the
    # registry: its box, confidence and time, not only the best one's
    sv = L.sort_values(["cluster", "confidence", "_area", "_tk", "_frame"], ascending=[True, False, False, True, True],
                       kind="mergesort").drop_duplicates(["cluster", "_frame"]).sort_values(
                           ["cluster", "_tk", "_frame"], kind="mergesort")
    recs = pd.DataFrame({
        "drive": sv["drive"].astype(str), "image": sv["image"].astype(str),
        **{k: sv[k].to_numpy(float) for k in ("x1", "y1", "x2", "y2", "confidence")},
        "time": [t if isinstance(t, str) and t else None for t in sv["time"]], "width": sv["width"].to_numpy(np.int64),
        "height": sv["height"].to_numpy(np.int64)}).to_dict("records")
    cut = np.flatnonzero(np.diff(sv["cluster"].to_numpy())) + 1
    sightings = [list(part) for part in np.split(np.array(recs, dtype=object), cut)] if recs else []
    conf = gl["confidence"].max().to_numpy()
    drives = [sorted(set(v)) for v in gl["drive"].agg(lambda s: list(s.astype(str)))]
    images = [sorted(set(v)) for v in gl["_frame"].agg(list)]

    cls = best["class"].astype(str).to_numpy()
    weights = np.array([cfg.classes[c].severity_weight for c in cls], dtype=float)
    wmax = max(s.severity_weight for s in cfg.classes.values()) or 1.0
    area_frac = best["_area"].to_numpy() / (best["width"].to_numpy(dtype=float) * best["height"].to_numpy(dtype=float))
    ew = best["est_width_m"].to_numpy(dtype=float) if "est_width_m" in best else np.full(nC, np.nan)
    el = best["est_length_m"].to_numpy(dtype=float) if "est_length_m" in best else np.full(nC, np.nan)
    phys = np.clip(np.nan_to_num(ew * el, nan=-1.0) / 2.0, 0, 1)
    size = np.where(np.isfinite(ew * el), phys, np.sqrt(np.clip(area_frac, 0, 1)))
    severity = np.round(100.0 * (0.6 * weights / wmax + 0.4 * size), 1)

    firstobs = first["_obs"].to_numpy()
    cid = ["C-" + hashlib.sha1(f"{c}|{s}|{f}".encode()).hexdigest()[:10] for c, s, f in zip(cls, main_seg, firstobs)]
    cid = pd.Series(cid)
    k = cid.groupby(cid).cumcount()
    cid = np.where(k > 0, cid + "-" + k.astype(str), cid)

    out = pd.DataFrame({
        "candidate_id": cid, "class": cls,
        "class_name": [cfg.class_name(c) for c in cls], "class_name_ja": [cfg.class_name(c, "ja") for c in cls],
        "confidence": conf, "n_obs": n_obs.astype(np.int64),
        "first_seen": first["time"].astype(str).to_numpy(), "last_seen": last["time"].astype(str).to_numpy(),
        "segment_id": main_seg, "road_name": road_name, "chainage_m": np.round(chain, 2),
        "lat": np.round(lat, 7), "lon": np.round(lon, 7),
        "best_image": best["image"].astype(str).to_numpy(), "best_drive": best["drive"].astype(str).to_numpy(),
        "best_x1": best["x1"].to_numpy(), "best_y1": best["y1"].to_numpy(), "best_x2": best["x2"].to_numpy(),
        "best_y2": best["y2"].to_numpy(), "best_width": best["width"].to_numpy(np.int64), "best_height": best["height"].to_numpy(np.int64),
        "drives": drives, "images": images, "severity": severity,
        "est_width_m": np.round(ew, 2), "est_length_m": np.round(el, 2),
        "last_drive": last["drive"].astype(str).to_numpy(),  # the drive of the latest sighting (ties: last name)
        "observations": pd.Series(sightings, dtype=object).to_numpy(),  # list[dict] (OBSERVATION_KEYS), by time
    })
    out["_unsnapped"] = out["segment_id"] == ""
    out = out.sort_values(["_unsnapped", "segment_id", "chainage_m", "class", "candidate_id"], kind="mergesort")
    weak = (out["n_obs"].to_numpy() <= 1) & (out["confidence"].to_numpy(dtype=float) < cfg.dedupe.single_sighting_min_conf)
    boxes = gl.size().reindex(out.index).to_numpy()  # out's index is still the cluster label
    res = out[~weak].drop(columns="_unsnapped").reset_index(drop=True)[CANDIDATE_COLUMNS]
    # where the hits went (the run's summary): every placed box is a sighting (n_obs: one per frame and candidate),
    # another box of the damage in a frame that already counts, or in a weak single sighting dropped here
    res.attrs["hits"] = {"weak": int(boxes[weak].sum()),
                         "same_frame": int((boxes[~weak] - out["n_obs"].to_numpy()[~weak]).sum())}
    return res
