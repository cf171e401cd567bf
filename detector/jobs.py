"""Repair jobs (補修工区, まとめて発注): ``patrol export REGISTRY --format jobs --roads R``.

A contractor under a unit-price contract (単価契約) repairs everything on one stretch of road in one visit, so the
office orders repairs per stretch, not per damage. ``job_table(df, net, cfg)`` bundles the registry's damages (the
open ones unless ``--status`` says; the caller selects them) into jobs:

- **the rule** (single linkage): two damages are in one job when they lie within ``cfg.jobs.gap_m`` (default 50 m) of
  each other on the ground AND on the same road: the same ``road_name`` of the network given (``--roads``, by the
  damage's segment as the registry stores it, placed anew where the network no longer holds it:
  ``segments.on_network``); a network that names no road (every name empty) but whose config keeps road fields
  (``roads.keep_fields``) tells its roads by the first of them (``road_key``: a ledger's 路線番号), one that names
  none and keeps none puts every damage on one "road"; a damage on an unnamed segment (or off the network, or of an
  empty field) is with the others of those. A job is then every damage
  reachable from one another by such steps: a chain of damages 40 m apart along 1 km of one road is one job, two
  damages 10 m apart across a junction of two named roads are two. One STRtree ``dwithin`` query of every damage in
  the network's metric CRS gives the pairs, their connected components (``components``: vectorised hooking and
  pointer jumping in numpy) the jobs: no loop per damage. A damage without a position is a job of its own (it has no neighbours to measure).
- **each job**: its road, the kept road fields (after ``road_name``, under the network's own names, as the other
  lists; a field its damages differ in: their values joined with ';'), how many damages (and per class), their
  ids, its extent (``extent_m``: the largest distance between two of its damages, straight), their estimated area and how many have none, the cost where the
  config has ``repair_cost`` (the pricing of ``patrol stats``: ``stats._sizes``), the largest severity, the oldest
  ``first_seen``, the citizen reports of its damages (where the registry holds some), a position (its damage nearest
  the middle of its outline: a point on the road, for the map link) and the segments it covers;
- **order**: the largest severity first (a job with a pothole before one of cracks), then the largest area, then the
  smallest damage id (so the same registry gives the same list): ``rank`` 1, 2 …;
- **ids** (``assign_ids``): a job keeps its ``job_id`` (``工区-001``) from list to list, as an office orders a job by it
  and the crew reports against it. The registry records the jobs its lists handed out (``Store.record_jobs``, table
  ``job_ids``: each id's damages, first and last export); each job gets the id of the recorded job that shares
  most of its damages (ties: the older id), one job per id (the job sharing most keeps it, the other takes its next
  such id if free), a job sharing none a new one after the largest ever given: an id is never given to another
  stretch, also once its damages are all repaired. ``match_ids``: one count of the (job, recorded job) pairs and a few
  rounds of mutual best choices over them, vectorised; the record also keeps each damage's job by the latest list
  naming it (table ``job_damages``: ``Store.damage_jobs``), which the other lists show in their ``job_id`` column
  (``add_job_column``) and ``patrol status REGISTRY 工区-003`` reads (``parse_job_id``, ``Store.job_record``);
  a district's list (``--area``: ``area_jobs``) is the whole city's jobs' parts in the district, their ids matched
  over the whole city's jobs (``CityJobs``), so either list may come first and the ids agree;
- **on a map** (GeoJSON, GeoPackage): each job is the convex hull of its damages buffered by ``OUTLINE_M`` (a
  polygon: a single damage a disc, two a capsule along the road), not a MultiPoint. A QGIS user draws the damages
  from the registry's own layers (``--format gpkg``); a job layer of points would sit on them, hide them and be
  clicked in their stead. An outline is one shape per job to fill, label (``job_id``) and click, seen around the
  damage points, as a work area (工区) is drawn on a plan.
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from . import CLASS_IDS
from .atomic import atomic_write
from .errors import UsageError
from .segments import SEGMENT_FILES, write_segments

#: ``--out``: the list (csv, xlsx) or the map (geojson, json, gpkg: layer ``JOB_LAYER``)
JOB_FILES = (".csv", ".xlsx", *SEGMENT_FILES)
#: the GeoPackage's layer (the segments export's is ``segments``, the due list's ``patrol_due``)
JOB_LAYER = "repair_jobs"
#: a job's outline on the map: the convex hull of its damages buffered by this (m), so one damage is a disc
OUTLINE_M = 5.0
#: ``job_id``: this and the job's number (``job_ids.number``: given once, kept), at least 3 digits (工区-001)
ID_PREFIX = "工区-"

#: the columns: name, 日本語, English (``cost`` only with ``repair_cost``, ``reports`` only where the registry holds
#: citizen reports)
COLUMNS = [("rank", "順位", "rank"), ("job_id", "工区", "job_id"), ("road_name", "路線名", "road_name"),
           ("n_damages", "損傷数", "n_damages"),
           *[(f"n_{c}", f"{c} 件数", f"n_{c}") for c in CLASS_IDS],
           ("candidate_ids", "損傷ID", "candidate_ids"), ("extent_m", "範囲(m)", "extent_m"),
           ("area_m2", "補修面積(m²)", "area_m2"), ("no_estimate", "面積推定なし", "no_estimate"),
           ("cost", "概算補修費{cur}", "repair cost estimate{cur}"), ("severity_max", "最大重要度", "severity_max"),
           ("first_seen", "最古発見日時", "first_seen"), ("reports", "住民通報", "citizen reports"),
           ("lat", "緯度", "lat"), ("lon", "経度", "lon"), ("map", "地図", "map"),
           ("segment_ids", "区間ID", "segment_ids"),
           # the crew's and the office's (``CREW_COLUMNS``), last as in the repair list, the repair list workbook's
           # Japanese headings: ``patrol import-verification`` applies a row to every damage of the job
           ("status", "状態", "status"), ("note", "備考", "note"), ("checked_by", "確認者", "checked_by"),
           ("checked_at", "確認日", "checked_at"), ("status_changed_at", "状態更新日時", "status_changed_at")]
#: the workbook's date cells (the csv and the maps keep the ISO text with its offset)
XLSX_TIMES = ("first_seen", "status_changed_at")
#: the columns a filled-in jobs list gives back (``crew_rows``): each row's status, note, who and when, for every
#: damage of ``candidate_ids``; ``status_changed_at`` (not for the crew): the latest of its damages' at the export
CREW_COLUMNS = ("status", "note", "checked_by", "checked_at", "status_changed_at")
#: the xlsx legend's words on each column: name -> (日本語, English)
COLUMN_NOTES = {
    "rank": ("順位: 一覧の順 (優先順)。損傷の追加・補修で変わる", "the job's place in the list's order (priority): it changes "
             "as damages are added or repaired"),
    "job_id": ("工区番号: 初めて一覧に出たときに付き、同じ区間 (損傷の多くが同じ工区) には以後も同じ番号 (台帳に記録、"
               "再使用なし)。発注・報告はこの番号で",
               "the job's id: given when it was first listed, kept for the same stretch (the job sharing most of its "
               "damages) in every later list (recorded in the registry, never given again): order and report by it"),
    "road_name": ("路線名 (道路網の名前の列、--roads)", "the road (the network's name column, --roads)"),
    "n_damages": ("工区の損傷の数", "its damages"),
    **{f"n_{c}": (f"{c} の損傷の数", f"its damages of class {c}") for c in CLASS_IDS},
    "candidate_ids": ("工区の損傷の ID (; 区切り)", "its damages' ids (; between them)"),
    "extent_m": ("工区の損傷のうち最も離れた 2 つの間の距離 (m、直線)",
                 "the largest distance between two of its damages (m, straight)"),
    "area_m2": ("推定面積 (幅 × 長さ) の合計 (m²)", "their estimated area summed (width × length, m²)"),
    "no_estimate": ("面積の推定がない損傷の数 (面積に含まない)", "those without a size estimate (not in the area)"),
    "cost": ("概算補修費: 損傷ごとに max(面積 × 分類の単価, 最低額) の合計 (repair_cost、patrol stats と同じ)",
             "Σ max(area × the class's price per m², minimum) over its damages (repair_cost, as patrol stats)"),
    "severity_max": ("工区の損傷の重要度の最大", "the largest severity of its damages"),
    "first_seen": ("工区で最も古い損傷の初回発見日時", "when its oldest damage was first seen"),
    "reports": ("工区の損傷についての住民通報の数", "citizen reports of its damages"),
    "lat": ("工区の外形の中心に最も近い損傷の緯度", "latitude of its damage nearest the middle of its outline"),
    "lon": ("同じ損傷の経度", "that damage's longitude"),
    "map": ("その位置の地図へのリンク (export.map_url)", "a web map link to that position (export.map_url)"),
    "segment_ids": ("工区の損傷がある区間の ID (; 区切り)", "the segments its damages are on (; between them)"),
    "status": ("状態: 工区の損傷がすべて同じ状態ならその状態、違えば空欄。発注したら 補修予定、補修が済んだら 補修済み "
               "(確認日に補修日) と書き、patrol import-verification で工区の全損傷に反映",
               "its damages' status where they all have one, else empty: write scheduled (補修予定) when ordered, "
               "repaired (補修済み, the repair date in checked_at) when done; patrol import-verification sets it on "
               "every damage of the job"),
    "note": ("備考: 工区の損傷の備考がすべて同じならそれ、違えば空欄 (書けば全損傷の備考に)",
             "its damages' note where they all have one, else empty (written: every damage's note)"),
    "checked_by": ("確認者: 工区の損傷で同じならそれ、違えば空欄", "who checked, where its damages agree, else empty"),
    "checked_at": ("確認日 (補修済みなら補修日): 空欄なら取り込んだ日時", "the day of the check (of a repair: the "
                   "repair date); empty: the time of the import"),
    "status_changed_at": ("状態更新日時: 工区の損傷のうち最新の状態変更 (取り込み時、その後に変わった損傷の行は反映しない)",
                          "the latest status change of its damages at the export: the import holds a damage changed "
                          "since (a stale list)"),
}


#: the legend's words on a kept road field (``roads.keep_fields``), as the due list's
KEPT_NOTE = ("道路台帳の項目 (roads.keep_fields; 工区の損傷で異なれば ; 区切り)",
             "a road ledger field kept (roads.keep_fields; its damages' values joined with ; where they differ)")


@dataclass
class CityJobs:
    """The whole city's jobs a district's list (``--area``: ``area_jobs``) takes its ids from: each damage of the
    city's (the same statuses) and its city job (0 .. ``k``-1, in the city list's order), and ``row``: each of the
    district's jobs' city job. ``assign_ids`` matches the city's jobs to the record, as the city's list would."""
    member_job: np.ndarray
    member_id: np.ndarray
    k: int
    row: np.ndarray


@dataclass
class Jobs:
    table: pd.DataFrame  # a GeoDataFrame in the network's CRS: one row per job, in priority order
    gap_m: float
    n_damages: int
    currency: str | None = None  # repair_cost's where the config prices repairs (a cost column), else None
    with_reports: bool = False  # the registry holds citizen reports (a reports column)
    placed: int = 0  # damages placed on the network anew (their stored segment not in it)
    notes: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # the kept road fields' columns (after road_name)
    road_field: str | None = None  # the kept field that is the road where the network names none (road_key)
    #: each damage's job (its row in ``table``) and id, the membership ``assign_ids`` matches to the recorded jobs
    member_job: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    member_id: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    #: each job's number (``job_id`` is ``工区-`` and it) and whether it is new: no recorded job shares its damages
    number: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    fresh: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    url: str | None = None  # export.map_url: the map column's links, labelled by job_id
    city: CityJobs | None = None  # a district's list (area_jobs): the whole city's jobs its ids are matched over
    #: the damages' estimated area summed unrounded (m²): the console's total, rounded once (the sum of the jobs'
    #: rounded ``area_m2`` drifts by up to 0.05 m² a job from what ``patrol stats`` says of the same damages)
    area_m2: float = 0.0


def job_labels(x: np.ndarray, y: np.ndarray, road: np.ndarray, gap_m: float) -> np.ndarray:
    """Each point's job (0 .. k-1, in no particular order): the connected components of the graph joining two points
    within ``gap_m`` (metric ``x``, ``y``) of the same ``road`` (any hashable key; one key for all: any road). A point
    without a position (NaN) is a component of its own. One STRtree query for the pairs, ``components`` for the
    jobs: no loop per point."""
    n = len(x)
    if n == 0:
        return np.zeros(0, np.int64)
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    pts = shapely.points(x[ok], y[ok])
    a, b = shapely.STRtree(pts).query(pts, predicate="dwithin", distance=float(gap_m))
    code = pd.factorize(pd.Series(road, dtype=object).fillna(""))[0][ok]
    keep = (a < b) & (code[a] == code[b])
    return components(n, ok[a[keep]], ok[b[keep]])


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The connected components (0 .. k-1, numbered by their smallest node) of the graph of ``n`` nodes and the edges
    (``a``, ``b``), vectorised (what ``scipy.sparse.csgraph.connected_components`` gives, without scipy, which patrol
    does not depend on): each edge hooks the larger of its two roots under the smaller (``np.minimum.at``), then
    every node jumps to its root (``lab = lab[lab]`` until nothing moves); repeated until no edge joins two roots.
    The hooks point to smaller nodes only, so no cycle forms; each round joins at least one pair of components, and a
    few rounds do on real pairs (a chain along a road: one)."""
    lab = np.arange(n, dtype=np.int64)
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    while len(a):
        la, lb = lab[a], lab[b]
        apart = la != lb
        if not apart.any():
            break
        a, b, la, lb = a[apart], b[apart], la[apart], lb[apart]  # an edge inside a component never joins again
        np.minimum.at(lab, np.maximum(la, lb), np.minimum(la, lb))
        while True:
            nxt = lab[lab]
            if np.array_equal(nxt, lab):
                break
            lab = nxt
    return np.unique(lab, return_inverse=True)[1].astype(np.int64).ravel()


def _extents(x: np.ndarray, y: np.ndarray, lab: np.ndarray, k: int):
    """Per job (``lab`` 0 .. k-1): the convex hull of its points (metric; None where it has no position) and its
    extent, the largest distance between two of its points: the hull's vertices paired within their job (a hull has
    few), vectorised."""
    ok = np.isfinite(x) & np.isfinite(y)
    hulls = np.full(k, None, dtype=object)
    extent = np.zeros(k)
    if not ok.any():
        return hulls, extent
    order = np.argsort(lab[ok], kind="stable")
    li = lab[ok][order]
    mp = shapely.multipoints(np.c_[x[ok][order], y[ok][order]], indices=li)  # one per job that has a position
    has = np.unique(li)
    h = shapely.convex_hull(mp)
    hulls[has] = h
    xy, gi = shapely.get_coordinates(h, return_index=True)  # gi: index into ``has``, ascending
    cnt = np.bincount(gi, minlength=len(has))
    start = np.cumsum(cnt) - cnt
    rep = np.repeat(np.arange(len(gi)), cnt[gi])  # each vertex once per vertex of its hull
    partner = start[gi[rep]] + (np.arange(len(rep)) - np.repeat(np.cumsum(cnt[gi]) - cnt[gi], cnt[gi]))
    d = np.hypot(xy[rep, 0] - xy[partner, 0], xy[rep, 1] - xy[partner, 1])
    best = np.zeros(len(has))
    np.maximum.at(best, gi[rep], d)
    extent[has] = best
    return hulls, extent


def _joined(keys: np.ndarray, values: pd.Series, k: int) -> list[str]:
    """Per job 0 .. k-1: its distinct non-empty ``values`` sorted, joined with ';' (one ``str.join`` of them all, cut
    at the jobs' ends: no loop per job)."""
    v = values.astype(object).to_numpy()
    has = pd.notna(v)
    v = v[has].astype(str)
    key = np.asarray(keys)[has][v != ""]
    v = v[v != ""]
    if not len(v):
        return [""] * k
    o = np.lexsort((v, key))
    key, v = key[o], v[o]
    first = np.r_[True, (key[1:] != key[:-1]) | (v[1:] != v[:-1])]  # distinct (job, value)
    key, v = key[first], v[first]
    end = np.r_[key[1:] != key[:-1], True]
    parts = np.empty(2 * len(v), dtype=object)
    parts[0::2] = v
    sep = np.full(len(v), ";", dtype=object)
    sep[end] = "\x00"  # (an object array: numpy's own strings drop a trailing NUL)
    parts[1::2] = sep
    joined = np.full(k, "", dtype=object)
    joined[key[end]] = "".join(parts).split("\x00")[:-1]
    return joined.tolist()


def _first_of(lab: np.ndarray, key: np.ndarray) -> np.ndarray:
    """The row (index into ``lab``) of the smallest ``key`` of each label present, ties by row: one lexsort."""
    if not len(lab):
        return np.zeros(0, np.int64)
    o = np.lexsort((np.arange(len(lab)), key, lab))
    return o[np.r_[True, lab[o][1:] != lab[o][:-1]]]


def job_table(df: pd.DataFrame, net, cfg, held: pd.DataFrame | None = None, labels: pd.Series | None = None) -> Jobs:
    """The rows of ``patrol export --format jobs`` (module doc) from the damages ``df`` (the registry's query, the
    statuses chosen; ``reports`` where the registry holds citizen reports) on the network ``net``,
    their ids matched to the jobs ``held`` (``Store.held_jobs``; None: none recorded: 工区-001 … in the list's order).
    ``labels`` (``area_jobs``: a district's damages): each damage's job given (candidate_id -> its city job), not
    bundled here. Nothing is recorded here: ``Store.record_jobs`` matches them again as it records them."""
    import geopandas as gpd

    from .export import _after_road_name, road_columns
    from .report import map_url
    from .roads import join_fields
    from .segments import on_network
    from .stats import _sizes

    gdf = net.gdf
    gap = float(cfg.jobs.gap_m)
    df, placed = on_network(df.reset_index(drop=True), net, cfg)
    n = len(df)
    names = pd.Series(np.asarray(net.names, dtype=object), index=np.asarray(net.ids, dtype=object))
    names = names[~names.index.duplicated()]
    road = df["segment_id"].map(names).fillna("").astype(str).to_numpy(object)
    kept = road_columns(cfg)  # the kept road fields (roads.keep_fields), after road_name as in every list
    notes: list[str] = []
    if kept:
        df, note = join_fields(df, net, cfg)
        notes += [note] if note else []
    key_field = road_key(net, cfg)
    if key_field is not None:  # a network naming no road: its first kept field (路線番号) tells the roads apart
        road = df[key_field].astype(object).where(df[key_field].notna(), "").astype(str).to_numpy(object)
    lat = pd.to_numeric(df.get("lat"), errors="coerce").to_numpy(float) if n else np.zeros(0)
    lon = pd.to_numeric(df.get("lon"), errors="coerce").to_numpy(float) if n else np.zeros(0)
    x, y = (np.asarray(v, float) for v in net.from_wgs84.transform(lon, lat)) if n else (np.zeros(0), np.zeros(0))
    if labels is None:
        lab = job_labels(x, y, road, gap)
    else:  # a district's damages: each in its city job (those of one city job one job, numbered 0 .. k-1)
        lab = pd.factorize(df["candidate_id"].astype(str).map(labels))[0].astype(np.int64)
        if (lab < 0).any():
            raise ValueError("a district's damage is in no job of the city's")
    k = int(lab.max()) + 1 if n else 0
    hulls, extent = _extents(x, y, lab, k)
    size = _sizes(df, cfg)
    priced = cfg.repair_cost is not None
    sev = pd.to_numeric(df["severity"], errors="coerce") if "severity" in df else pd.Series(np.nan, index=df.index)
    g = pd.DataFrame({"lab": lab, "area": size["area"], "no": size["no_estimate"], "cost": size["cost"],
                      "sev": sev.to_numpy(float)})
    by = g.groupby("lab")
    area = by["area"].sum().reindex(range(k), fill_value=0.0).to_numpy()
    sev_max = by["sev"].max().reindex(range(k)).to_numpy(float)
    ids = df["candidate_id"].astype(str)
    first_id = np.full(k, "", dtype=object)  # each job's smallest damage id (the order's last key)
    if n:
        o = np.lexsort((ids.to_numpy(str), lab))
        start = np.r_[True, lab[o][1:] != lab[o][:-1]]
        first_id[lab[o][start]] = ids.to_numpy(object)[o][start]
    # the first seen: the earliest time (a text whose offset differs compares by its instant), shown as stored
    t = pd.to_datetime(df["first_seen"], errors="coerce", utc=True, format="ISO8601") if n else pd.Series([])
    tns = np.where(t.isna().to_numpy(), np.iinfo(np.int64).max, t.to_numpy("datetime64[ns]").view(np.int64)) if n \
        else np.zeros(0, np.int64)
    first_seen = np.full(k, None, dtype=object)
    fr = _first_of(lab, tns)
    fr = fr[fr >= 0]
    fr = fr[tns[fr] != np.iinfo(np.int64).max]
    first_seen[lab[fr]] = df["first_seen"].to_numpy(object)[fr]
    # the job's position: its damage nearest the middle of its outline (the hull's centroid)
    centre = np.full(k, None, dtype=object)
    hv = np.array([h is not None for h in hulls], bool) if k else np.zeros(0, bool)
    centre[hv] = shapely.centroid(hulls[hv].astype(object))
    ok = np.isfinite(x) & np.isfinite(y)
    pos = np.full(k, -1, np.int64)
    if ok.any():
        rows = np.flatnonzero(ok)
        dist = shapely.distance(shapely.points(x[rows], y[rows]), centre[lab[rows]].astype(object))
        near = rows[_first_of(lab[rows], dist)]
        pos[lab[near]] = near
    job_lat = np.where(pos >= 0, lat[np.maximum(pos, 0)] if n else np.nan, np.nan)
    job_lon = np.where(pos >= 0, lon[np.maximum(pos, 0)] if n else np.nan, np.nan)
    counts = pd.crosstab(lab, df["class"].astype(str)).reindex(index=range(k), columns=list(CLASS_IDS),
                                                                 fill_value=0) if n else None
    first_row = _first_of(lab, np.zeros(n))
    job_names = np.asarray(df["segment_id"].map(names).fillna("").astype(str).to_numpy(object)[first_row],
                           dtype=object)  # (one road per job: the pairs joined are of one road)
    table = pd.DataFrame({
        "road_name": job_names,
        **{c: _kept_values(lab, df[c], k) for c in kept},
        "n_damages": np.bincount(lab, minlength=k).astype(np.int64),
        **{f"n_{c}": (counts[c].to_numpy(np.int64) if n else np.zeros(0, np.int64)) for c in CLASS_IDS},
        "candidate_ids": _joined(lab, ids, k), "extent_m": np.round(extent, 1), "area_m2": np.round(area, 1),
        "no_estimate": np.rint(by["no"].sum().reindex(range(k), fill_value=0).to_numpy()).astype(np.int64),
        "cost": (np.round(by["cost"].sum().reindex(range(k), fill_value=0).to_numpy()).astype(np.int64)
                 if priced else np.full(k, np.nan)),
        "severity_max": np.round(sev_max, 3), "first_seen": first_seen,
        "reports": (pd.Series(pd.to_numeric(df["reports"], errors="coerce").fillna(0).to_numpy(), index=lab)
                    .groupby(level=0).sum().reindex(range(k), fill_value=0).to_numpy().astype(np.int64)
                    if "reports" in df and n else np.zeros(k, np.int64)),
        "lat": np.round(job_lat, 7), "lon": np.round(job_lon, 7),
        "segment_ids": _joined(lab, df["segment_id"], k),
        "status": _common(lab, df.get("status"), k), "note": _common(lab, df.get("status_note"), k),
        "checked_by": _common(lab, df.get("checked_by"), k), "checked_at": np.full(k, None, dtype=object),
        "status_changed_at": _latest(lab, df.get("status_changed_at"), k)})
    # priority: the largest severity first (none last), then the largest area, then the smallest damage id
    order = np.lexsort((first_id.astype(str), -area, -np.nan_to_num(sev_max, nan=-np.inf)))
    table = table.iloc[order].reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, k + 1, dtype=np.int64))
    table.insert(1, "job_id", "")
    table["map"] = ""
    rank_of = np.empty(k, np.int64)
    rank_of[order] = np.arange(k)
    with_reports = "reports" in df.columns
    drop = ([] if priced else ["cost"]) + ([] if with_reports else ["reports"])
    table = table[_after_road_name([c for c, _, _ in COLUMNS if c not in drop], kept)]
    outline = hulls[order]
    has = np.array([h is not None for h in outline], bool)
    geom = np.full(len(outline), None, dtype=object)
    if has.any():
        geom[has] = shapely.buffer(outline[has].astype(object), OUTLINE_M)
    out = gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(geom, crs=gdf.crs).values, crs=gdf.crs)
    j = Jobs(out, gap, n, currency=cfg.repair_cost.currency if priced else None, with_reports=with_reports,
             placed=placed, notes=notes, kept=kept, road_field=key_field, member_job=rank_of[lab],
             member_id=ids.to_numpy(object), url=map_url(cfg), area_m2=float(area.sum()))
    assign_ids(j, held)
    return j


def area_jobs(df: pd.DataFrame, inside, net, cfg, held: pd.DataFrame | None = None) -> Jobs:
    """``job_table`` of a district (``--area``): the damages ``df`` (the whole city's, the statuses chosen) bundled as
    the whole city's list bundles them, then each city job's damages ``inside`` the district (a bool mask of ``df``)
    one job of the district's list (its part in the district: pieces the city's list joins through damages beyond the
    edge are one job, as there), its id matched over the whole city's jobs (``CityJobs``, ``assign_ids``): a stretch
    cut by the district's edge has the city list's id in either district's list, whichever list comes first, and a
    district's new job takes the number the city's list then gives it (README: job ids are kept)."""
    inside = np.asarray(inside, bool)
    whole = job_table(df, net, cfg)
    of = pd.Series(np.asarray(whole.member_job, np.int64), index=pd.Index(np.asarray(whole.member_id).astype(str)))
    part = df[inside].reset_index(drop=True)
    j = job_table(part, net, cfg, labels=of)
    one = _first_of(j.member_job, np.zeros(len(j.member_job)))  # a damage of each of the district's jobs
    row = np.zeros(len(j.table), np.int64)
    row[j.member_job[one]] = of.reindex(np.asarray(j.member_id[one]).astype(str)).to_numpy(np.int64)
    j.city = CityJobs(np.asarray(whole.member_job, np.int64), np.asarray(whole.member_id, object), len(whole.table),
                      row)
    assign_ids(j, held)
    return j


def job_name(number) -> str:
    """``工区-001``: a job's id from its number (at least 3 digits; 工区-1000 after 工区-999: the id never changes)."""
    return f"{ID_PREFIX}{int(number):03d}"


#: a job id as typed: 工区-003, 工区-3, 工区003, 工区 3, full-width digits or dash (NFKC)
_JOB_ID = re.compile(r"工区\s*[-‐‑–—―ー−]?\s*(\d+)")


def parse_job_id(text) -> str | None:
    """``text`` as a job id (``job_name``: 工区-003) where it names one (``_JOB_ID``: 工区-3, 工区００３ …), else None
    (a damage id, R-000024)."""
    m = _JOB_ID.fullmatch(unicodedata.normalize("NFKC", str(text)).strip())
    return job_name(int(m.group(1))) if m else None


def nearest_ids(number: int, held_numbers, n: int = 3) -> list[str]:
    """The ``n`` recorded job ids whose numbers are nearest ``number`` (ties: the smaller), by number: what an
    unknown id's message offers."""
    got = sorted((abs(int(k) - int(number)), int(k)) for k in held_numbers)[:n]
    return [job_name(k) for k in sorted(k for _, k in got)]


def add_job_column(df: pd.DataFrame, of: pd.DataFrame | None) -> pd.DataFrame:
    """``df`` (an export's damages) with ``job_id``: each open damage's job by the latest jobs list that named it
    (``of``: ``Store.damage_jobs``), empty (None) where no list named it or the damage is no longer open
    (``store.OPEN_STATUSES``); ``df`` as it is where ``of`` is None (the registry holds no job record: no column)."""
    from .store import OPEN_STATUSES

    if of is None:
        return df
    df = df.copy()
    got = df["candidate_id"].astype(str).map(pd.Series(of["job_id"].to_numpy(object),
                                                       index=of["candidate_id"].to_numpy(object)))
    keep = got.notna() & df["status"].astype(str).isin(OPEN_STATUSES) if len(df) else got.notna()
    df["job_id"] = got.where(keep, None).astype(object)
    return df


def _held_members(held: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """(number, candidate id) of every damage of every recorded job (``held``: ``number``, ``candidate_ids`` joined
    with ';'), one split of them all."""
    if held is None or not len(held):
        return np.zeros(0, np.int64), np.zeros(0, object)
    parts = held["candidate_ids"].fillna("").astype(str).str.split(";")
    num = np.repeat(held["number"].to_numpy(np.int64), parts.str.len().to_numpy())
    cid = np.asarray(parts.explode().to_numpy(object), dtype=object) if len(parts) else np.zeros(0, object)
    keep = cid != ""
    return num[keep], cid[keep]


def match_ids(member_job: np.ndarray, member_id: np.ndarray, k: int, held: pd.DataFrame | None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Each of the ``k`` jobs' number (its damages: ``member_id``, each of job ``member_job``, 0 .. k-1 in the list's
    order) and whether it is new, from the recorded jobs ``held`` (``number``, ``candidate_ids``): a job takes the
    number of the recorded job that shares most of its damages (ties: the older, smaller number); a number goes to
    one job only, the one sharing most with it (ties: the earlier in the list), and a job whose best is taken by
    another takes its next best still free (the greedy matching, heaviest pair first); a job sharing no damage with a
    free recorded one takes a new number, after the largest held, in the list's order. Vectorised: the shared damages
    counted per (job, number) pair in one ``np.unique``, then rounds of the pairs that are both their job's and their
    number's best of the pairs left (the greedy matching's result, each round takes at least the heaviest pair left;
    a few rounds)."""
    number = np.zeros(k, np.int64)
    fresh = np.ones(k, bool)
    hn, hc = _held_members(held)
    top = int(held["number"].max()) if held is not None and len(held) else 0
    if len(hn) and k:
        idx = pd.Index(member_id)
        one = ~idx.duplicated()  # (a damage is in one job: the registry's query lists it once)
        at = idx[one].get_indexer(hc)
        ok = at >= 0
        jb = np.asarray(member_job, np.int64)[one][at[ok]]
        nb = hn[ok]
        if len(jb):
            key, w = np.unique(jb * (top + 1) + nb, return_counts=True)
            jb, nb = key // (top + 1), key % (top + 1)
            o = np.lexsort((jb, nb, -w))  # the heaviest pair first; then the older number, then the earlier job
            jb, nb = jb[o], nb[o]
            left = np.ones(len(jb), bool)
            while left.any():
                idx = np.flatnonzero(left)
                best_j = idx[np.unique(jb[idx], return_index=True)[1]]  # each job's first pair left
                best_n = idx[np.unique(nb[idx], return_index=True)[1]]  # each number's first pair left
                take = np.intersect1d(best_j, best_n)
                number[jb[take]] = nb[take]
                fresh[jb[take]] = False
                taken_j = np.zeros(k, bool)
                taken_j[jb[take]] = True
                taken_n = np.zeros(top + 1, bool)
                taken_n[nb[take]] = True
                left &= ~taken_j[jb] & ~taken_n[nb]
    number[fresh] = top + 1 + np.arange(int(fresh.sum()))
    return number, fresh


def assign_ids(j: Jobs, held: pd.DataFrame | None) -> None:
    """``j``'s ids (``job_id``, ``number``, ``fresh``) from the recorded jobs ``held`` (``match_ids``) and the map
    column's links, labelled by them."""
    from .export import map_links

    t = j.table
    if j.city is None:
        j.number, j.fresh = match_ids(j.member_job, j.member_id, len(t), held)
    else:  # a district's list: the whole city's jobs matched, as the city's list would; each of its jobs its city
        # job's id, a new one numbered first (the district's order), so the city's list finds it recorded, skips none
        c = j.city
        number, fresh = match_ids(c.member_job, c.member_id, c.k, held)
        j.number, j.fresh = number[c.row].copy(), fresh[c.row].copy()
        top = int(held["number"].max()) if held is not None and len(held) else 0
        j.number[j.fresh] = top + 1 + np.arange(int(j.fresh.sum()))
    t["job_id"] = [job_name(v) for v in j.number]
    t["map"] = map_links(j.url, t["lat"], t["lon"], t["job_id"])


def records(j: Jobs, held: pd.DataFrame | None) -> tuple[list[tuple], list[tuple]]:
    """What recording ``j`` (its ids assigned against ``held``) writes: (new rows ``(job_id, number, candidate_ids)``,
    rows of recorded jobs listed again ``(candidate_ids, job_id)``). A recorded job's damages are those of every list
    that named it (the union: a district's list and the whole city's name the same stretch alike), sorted, ';'."""
    hn, hc = _held_members(held)
    listed = np.zeros(int(max(j.number.max(initial=0), hn.max(initial=0))) + 1, bool)
    listed[j.number] = True
    keep = listed[hn]
    num = np.r_[j.number[j.member_job], hn[keep]].astype(np.int64)
    cid = np.r_[j.member_id, hc[keep]].astype(object)
    joined = _joined(num, pd.Series(cid, dtype=object), len(listed))
    new = [(job_name(v), int(v), joined[v]) for v in j.number[j.fresh]]
    again = [(joined[v], job_name(v)) for v in j.number[~j.fresh]]
    return new, again


def _common(lab: np.ndarray, values: pd.Series | None, k: int) -> np.ndarray:
    """Per job 0 .. k-1 the value its damages all have (an empty one: None), else None (they differ): the crew's
    columns pre-filled as the repair list pre-fills them, one groupby."""
    out = np.full(k, None, dtype=object)
    if values is None or not len(lab):
        return out
    v = pd.Series(values.to_numpy(object), index=lab)
    v = v.where(v.notna(), "").astype(str)
    by = v.groupby(level=0)
    one = by.first().reindex(range(k), fill_value="").to_numpy(object)
    same = by.nunique().reindex(range(k), fill_value=2).to_numpy() == 1
    out[same & (one != "")] = one[same & (one != "")]
    return out


def _latest(lab: np.ndarray, values: pd.Series | None, k: int) -> np.ndarray:
    """Per job 0 .. k-1 the latest of its damages' times (by instant; shown as stored), None where none has one: the
    job's ``status_changed_at``. A damage the registry changes after the export changes after it: the import's
    stale-list rule (``Store._since_export``) then holds that damage's row, as a repair list's."""
    out = np.full(k, None, dtype=object)
    if values is None or not len(lab):
        return out
    t = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
    miss = t.isna().to_numpy()
    tns = np.where(miss, np.iinfo(np.int64).max, -t.to_numpy("datetime64[ns]").view(np.int64))
    fr = _first_of(lab, tns)
    fr = fr[~miss[fr]]
    out[lab[fr]] = values.to_numpy(object)[fr]
    return out


def crew_rows(rows: list[list[str]], lines, key) -> tuple[list[list[str]], list[int], dict[int, str], dict,
                                                         dict[int, str]] | None:
    """A filled-in jobs list (``rows``: the header first, as text; ``lines``: each data row's number, None: 2, 3 …)
    as the repair list's rows ``Store.import_verification`` reads: one row per damage of each job's
    ``candidate_ids`` (``;`` between them; a comma or a space too) with the job's ``CREW_COLUMNS``, each numbered as
    its job's row and named ``row 5 (工区-003)`` in the messages. ``key``: a heading's column name (``header_key``),
    read from its last word (``損傷ID candidate_ids``, the csv's ``ja en``). Returns (the rows, their lines, the names,
    line -> the job's damage ids, line -> its job id: the history's note names it, ``store.job_note``, as ``patrol
    status REGISTRY 工区-003 --set …`` does), or None where ``rows`` is not a jobs list (no job_id and candidate_ids
    columns)."""
    head = [key(str(h).split("\n")[-1].split()[-1]) if str(h).split() else "" for h in rows[0]]
    if "job_id" not in head or "candidate_ids" not in head:
        return None
    ix = {h: k for k, h in enumerate(head)}  # (the crew's columns are the last: a kept road field so named is before)

    def get(row, col):
        k = ix.get(col)
        return row[k].strip() if k is not None and k < len(row) else ""

    out = [["candidate_id", *CREW_COLUMNS]]
    nums: list[int] = []
    where: dict[int, str] = {}
    jobs: dict[int, list[str]] = {}
    names: dict[int, str] = {}
    for line, row in zip(lines if lines is not None else range(2, len(rows) + 1), rows[1:]):
        if not row or all(not c.strip() for c in row):
            continue
        ids = [c.upper() for c in get(row, "candidate_ids").replace(",", ";").replace("、", ";").replace(" ", ";")
               .split(";") if c.strip()] or [""]
        crew = [get(row, c) for c in CREW_COLUMNS]
        out += [[c, *crew] for c in ids]
        nums += [line] * len(ids)
        where[line] = f"row {line} ({get(row, 'job_id') or 'no job_id'})"
        jobs[line] = [c for c in ids if c]
        if get(row, "job_id"):
            names[line] = get(row, "job_id")
    return out, nums, where, jobs, names


def road_key(net, cfg) -> str | None:
    """The kept road field (output name) that tells one road from another where the network names no road (every
    ``road_name`` empty) and the config keeps road fields (``roads.keep_fields``): the first of them (a ledger's
    路線番号: list it first); None where the network names its roads (the name is the key) or nothing is kept (any
    road: one)."""
    from .export import road_columns

    kept = road_columns(cfg)
    if not kept or (np.asarray(net.names, dtype=object).astype(str) != "").any():
        return None
    return kept[0]


def _kept_values(lab: np.ndarray, values: pd.Series, k: int) -> np.ndarray:
    """Per job 0 .. k-1 a kept road field: its damages' value where they agree (a number stays a number; none: None),
    else their distinct values joined with ';' (a job across a change of 幅員)."""
    out = np.full(k, None, dtype=object)
    if not len(lab):
        return out
    v = pd.Series(values.to_numpy(object), index=lab)
    by = v.groupby(level=0)
    one = by.first().reindex(range(k))
    many = by.nunique().reindex(range(k), fill_value=0).to_numpy() > 1
    out[:] = one.astype(object).where(one.notna(), None).to_numpy(object)
    if many.any():
        out[many] = np.asarray(_joined(lab, values, k), dtype=object)[many]
    return out


def columns(j: Jobs) -> list[tuple[str, str, str]]:
    """The table's (column, 日本語, English) headings, the cost's with its currency (``概算補修費(円)``)."""
    cur = f"({j.currency})" if j.currency else ""
    ours = {c: (c, ja.format(cur=cur), en.format(cur=cur and " " + cur)) for c, ja, en in COLUMNS}
    ours.update({c: (c, c, c) for c in j.kept})  # a kept road field: headed by the network's own name
    return [ours[c] for c in j.table.columns if c != j.table.geometry.name]


def _csv_cell(v) -> str:
    from .export import safe_cell

    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, (np.integer, int)) and not isinstance(v, bool):
        return str(int(v))
    if isinstance(v, (np.floating, float)):
        return repr(float(v))  # as rounded in the table (lat, lon 7 decimals: 1 cm)
    return safe_cell(v)


def write_csv(j: Jobs, path: Path) -> None:
    """UTF-8 with BOM (Japanese Excel); each heading ``ja en`` (``損傷数 n_damages``), values formula-safe."""
    from .export import write_headed_csv

    cols = columns(j)
    write_headed_csv(path, cols, j.table[[c for c, _, _ in cols]].itertuples(index=False, name=None), _csv_cell)


def rule_text(cfg, gap_m: float, road_field: str | None = None) -> tuple[str, str]:
    """The grouping rule in words (日本語, English): the legend's, and the README's. ``road_field``: the kept road
    field that is the road (``road_key``: a network naming no road)."""
    if road_field:
        ja_road = f"路線名のない道路網: 道路台帳の項目 {road_field} (roads.keep_fields の最初) が同じ"
        en_road = f"a network without road names: the same {road_field}, the first of roads.keep_fields"
    else:
        ja_road = "--roads の路線名。路線名も roads.keep_fields もない道路網では全路線"
        en_road = "the network's road name, --roads; a network without names nor roads.keep_fields: any road"
    return (f"同じ路線 ({ja_road}) の上で {gap_m:g} m 以内 (jobs.gap_m、地上の直線距離) "
            "にある損傷どうしを同じ工区とし、さらにその隣へとつなげる (単連結)。位置のない損傷は 1 件で 1 工区",
            f"two damages on the same road ({en_road}) within "
            f"{gap_m:g} m of each other (jobs.gap_m, on the ground) are one job, and so on from damage to damage "
            "(single linkage); a damage without a position is a job of its own")


def _legend(wb, j: Jobs, cfg, cols, statuses) -> None:
    """Sheet ``legend`` as the due list's: what the list is for, the rule, the counts, the order, each column."""
    from . import __version__
    from .report import _now, xlsx_legend_rows

    lg = wb.create_sheet("legend")
    for col, w in zip("ABC", (24, 60, 70)):
        lg.column_dimensions[col].width = w
    rule = rule_text(cfg, j.gap_m, j.road_field)
    rows: list[tuple] = [("補修工区 / Repair jobs",), ()]
    if cfg is not None:
        rows += [("自治体 municipality", getattr(cfg, "municipality", "")),
                 ("作成日時 generated", _now(cfg).strftime("%Y-%m-%d %H:%M:%S %z"))]
    rows += [("version", f"road-patrol {__version__}"),
             ("時刻 times", f"現地時刻 {getattr(cfg, 'timezone', '') or ''}",
              "the municipality's local time (config timezone), offset dropped: Excel has no time zones"),
             ("用途 purpose", "単価契約の業者が一度の出動で補修できるよう、近くの損傷をまとめた発注単位 (補修工区)",
              "nearby damages bundled into one order, for a unit-price contractor (単価契約) to repair in one visit"),
             ("対象 damages", f"状態 {'/'.join(statuses)} の損傷 {j.n_damages} 件",
              f"{j.n_damages} damages of status {'/'.join(statuses)}"),
             ("件数 jobs", f"{len(j.table)} 工区", f"{len(j.table)} jobs"),
             ("まとめ方 rule", *rule),
             ("並び順 order", "最大重要度の大きい順、同じなら補修面積の大きい順、さらに最小の損傷 ID 順 (順位)",
              "the largest severity first, then the largest area, then the smallest damage id (rank)"),
             ("工区番号 ids", "台帳に記録: 前の一覧で損傷が最も多く共通する工区の番号を引き継ぎ、新しい区間には次の番号 "
              "(番号は再使用しない)", "recorded in the registry: each job keeps the id of the listed job sharing most "
              "of its damages, a new stretch gets the next number (an id is never given again)"),
             (), ("列 column", "見出し (ja): 説明", "heading (en): description")]
    rows += [(c, f"{ja}: {COLUMN_NOTES.get(c, KEPT_NOTE)[0]}", f"{en}: {COLUMN_NOTES.get(c, KEPT_NOTE)[1]}")
             for c, ja, en in cols]
    xlsx_legend_rows(lg, rows)


def write_xlsx(j: Jobs, path: Path, cfg=None, statuses=()) -> None:
    """Sheet ``jobs``, headed ``ja`` over ``en`` as the repair list's workbook, printable (A4 landscape, one page
    wide); sheet ``legend`` (``_legend``): the rule, the counts, each column's meaning."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    from .report import (MAP_LINK_TEXT, XlsxLink, _excel_time, _status_choices, _tz, xlsx_cell, xlsx_header,
                         xlsx_print_setup)

    tz = _tz(cfg)
    cols = columns(j)
    wb = Workbook()
    ws = wb.active
    ws.title = "jobs"
    widths = xlsx_header(ws, cols)
    fmt = {"extent_m": "0.0", "area_m2": "0.0", "cost": "#,##0", "severity_max": "0.00", "lat": "0.0000000",
           "lon": "0.0000000"}
    for i, row in enumerate(j.table[[c for c, _, _ in cols]].itertuples(index=False, name=None), 2):
        for k, ((name, _, _), v) in enumerate(zip(cols, row), 1):
            if isinstance(v, str) and not v:
                v = None
            elif name in XLSX_TIMES:  # ISO text with offset -> a date cell on the municipality's clock (the lists')
                v = _excel_time(v, tz) or v
            elif name == "map" and v:
                v = XlsxLink(MAP_LINK_TEXT, v)  # a click opens the web map, as the repair list's 地図 / map
            widths[k - 1] = max(widths[k - 1], xlsx_cell(ws.cell(row=i, column=k), v, fmt.get(name), 8))
    for k, wd in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(k)].width = min(wd, 60)
    _status_choices(ws, cols, len(j.table))  # the crew's 状態: a drop-down of the statuses, as the repair list's
    ws.freeze_panes = "C2"  # 順位 and 工区 kept in view
    xlsx_print_setup(ws, len(cols), len(j.table))
    from .config import header_town

    who = header_town(cfg)
    ws.oddHeader.center.text = "補修工区 repair jobs" + (f" — {who}" if who else "")
    _legend(wb, j, cfg, cols, list(statuses))
    with atomic_write(path, "wb") as fh:
        buf = io.BytesIO()
        wb.save(buf)
        fh.write(buf.getvalue())


def write(j: Jobs, path: Path, cfg=None, meta: dict | None = None, statuses=()) -> None:
    """``j`` to ``path`` by its suffix (``JOB_FILES``): a list (csv, xlsx) or a map (geojson, gpkg)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        write_csv(j, path)
    elif suffix == ".xlsx":
        write_xlsx(j, path, cfg, statuses)
    elif suffix in SEGMENT_FILES:
        from . import qgisstyle

        write_segments(j.table, path, meta, layer=JOB_LAYER, style=qgisstyle.jobs)
    else:
        raise UsageError(f"{Path(path).name}: --format jobs writes X.csv, X.xlsx, X.geojson, X.json or X.gpkg",
                         field="--out")
