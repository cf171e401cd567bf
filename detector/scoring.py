"""Site-level scoring of candidates against true damage sites (the sample drive's rule).

A candidate finds a site when it has the site's class and lies within ``radius`` metres of it. Each candidate
is matched to at most one site (greedy by distance, nearest pairs first); every further candidate of that
class within ``radius`` of an already found site is a duplicate; a candidate that matches no site is a false
positive (duplicates are false positives too).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _metric(lon, lat, lon0: float, lat0: float):
    """Local equirectangular metres around (lon0, lat0): enough for 15 m matching."""
    r = 6371008.8
    x = np.radians(np.asarray(lon, dtype=float) - lon0) * r * np.cos(np.radians(lat0))
    y = np.radians(np.asarray(lat, dtype=float) - lat0) * r
    return x, y


def score_sites(cands: pd.DataFrame, truth, radius: float = 15.0) -> dict:
    """``cands``: Candidates (class, lat, lon, candidate_id); ``truth``: GeoDataFrame of Points (class, site_id)
    in WGS84 or a DataFrame with class, lat, lon. Returns counts, recall, precision and the matching."""
    if hasattr(truth, "geometry"):
        t = truth.to_crs(4326) if truth.crs is not None else truth
        tl, tb = t.geometry.x.to_numpy(), t.geometry.y.to_numpy()
    else:
        tl, tb = truth["lon"].to_numpy(float), truth["lat"].to_numpy(float)
    tcls = truth["class"].astype(str).to_numpy()
    sid = truth["site_id"].astype(str).to_numpy() if "site_id" in truth else np.arange(len(truth)).astype(str)
    ccls = cands["class"].astype(str).to_numpy() if len(cands) else np.array([], dtype=str)
    cid = cands["candidate_id"].astype(str).to_numpy() if len(cands) else np.array([], dtype=str)
    lon0 = float(np.mean(tl)) if len(tl) else 0.0
    lat0 = float(np.mean(tb)) if len(tb) else 0.0
    tx, ty = _metric(tl, tb, lon0, lat0)
    cx, cy = _metric(cands["lon"].to_numpy(float) if len(cands) else [], cands["lat"].to_numpy(float) if len(cands) else [], lon0, lat0)
    d = np.hypot(cx[:, None] - tx[None, :], cy[:, None] - ty[None, :])
    ok = (d <= radius) & (ccls[:, None] == tcls[None, :])
    ci, ti = np.nonzero(ok)
    order = np.argsort(d[ci, ti], kind="stable")
    found: dict[int, int] = {}
    used: set[int] = set()
    for k in order:
        c, s = int(ci[k]), int(ti[k])
        if c in used or s in found:
            continue
        found[s] = c
        used.add(c)
    matched = np.zeros(len(cid), dtype=bool)
    matched[list(used)] = True
    # duplicates: unmatched candidates of the class within radius of a found site
    dup = np.zeros(len(cid), dtype=bool)
    if found:
        fs = np.array(sorted(found))
        dup = ~matched & ok[:, fs].any(axis=1)
    tp = len(found)
    fp = int((~matched).sum())
    return {
        "n_sites": len(tl), "n_candidates": len(cid), "found": tp, "duplicates": int(dup.sum()),
        "false_positives": fp, "recall": tp / len(tl) if len(tl) else 1.0,
        "precision": tp / len(cid) if len(cid) else 1.0,
        "match": {sid[s]: cid[c] for s, c in sorted(found.items())},
        "missed": [sid[s] for s in range(len(tl)) if s not in found],
        "unmatched": [cid[c] for c in range(len(cid)) if not matched[c]],
    }


def closest_same_class_m(cands: pd.DataFrame) -> dict[str, float]:
    """Per class, the smallest distance in metres between two candidates (inf with fewer than two): the
    duplicate check of the acceptance tests (no two candidates of one class within a few metres)."""
    out: dict[str, float] = {}
    if len(cands) == 0:
        return out
    lat0, lon0 = float(cands["lat"].mean()), float(cands["lon"].mean())
    for cls, g in cands.groupby("class"):
        x, y = _metric(g["lon"].to_numpy(float), g["lat"].to_numpy(float), lon0, lat0)
        d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
        np.fill_diagonal(d, np.inf)
        out[str(cls)] = float(d.min()) if len(g) > 1 else float("inf")
    return out
