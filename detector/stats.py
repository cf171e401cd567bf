"""``patrol stats``: the registry's figures a road department reports upward (月報 / 年報): per period (calendar month,
ISO week or year, in the config's timezone) and class, the damages found, repaired, written off (not_an_issue),
reopened, the backlog (open at the period's end) and the days repairs took.

Everything is read from the registry as it is (``candidates``, ``status_history``, and the sightings of the damages
ever reopened or seen at more than one size) and counted with pandas over the
whole history at once: a city's registry (~7,000 damages, tens of thousands of history rows) in well under a second.

The rules (README: "Figures for the council"):

- a damage is *found* in the period of its ``first_seen``; a candidate the office merged into another
  (``merged_into``) is no damage of its own and is left out everywhere (its sightings count under the other);
- the history rows of an import undone since (``patrol import-verification … --undo``: those of the damages its undo
  gave back) and the undo's own rows are left out (``Store.undone_history_rows``), as if that list had not been
  imported;
- *repaired*, *not_an_issue*, *reopened*: the history rows that changed the status to it, dated by the row's time;
  a damage's latest repair by its ``repaired_at`` (the repair date a crew gave) where set; a reopen, as *found*, by
  the sighting: the first the registry holds (``observations``) after the repair it follows (a repair dated by its
  day: after that day, as the store compares them), not when the drive was merged or a repair dated before a
  sighting held was typed in (the row's time where no sighting time after the repair is held);
- *open at the period's end*: the damages found by then whose status then (the last change recorded, in the
  history's order, dated as above at or before the end; before any change: ``new``) is open
  (``store.OPEN_STATUSES``): a reopened damage open again from its sighting;
- *days to repair*: for each repair in the period, the repair's calendar day − ``first_seen``'s, on the config's clock
  (a repair dated before the first sighting: 0); median and 90th percentile (linear), one decimal;
- *area* (補修対象面積): each damage's size estimate (``est_width_m`` × ``est_length_m``; none where either is missing
  or the product is not positive) as it stood then: the store's rule (its best sighting, ``Store._recompute``) over
  its sightings dated up to the period's end, for a repair up to the repair (``_sizes_then``); summed over the damages
  open at the period's end and over the repairs counted in it, one decimal; those without one counted
  (``…_no_estimate``);
- *cost* (概算補修費), only with the config's ``repair_cost``: Σ max(area × the class's price per m², minimum) over the
  same damages, one without a size estimate at the minimum (none set: left out), whole units.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from . import CLASS_IDS
from .atomic import atomic_write
from .errors import UsageError
from .store import _BEST_ORDER, OPEN_STATUSES, Store

PERIODS = ("month", "week", "year")
TOTAL = "total"
#: the rows of a group whose damages lie on no road of the network (or the network lacks their segment)
NO_GROUP = "(なし none)"
#: the events counted per period, from the history's changes to these statuses
EVENTS = ("repaired", "not_an_issue", "reopened")

#: output columns: (column, Japanese header, English header); ``group`` only with --group (its header the field's)
COLUMNS: list[tuple[str, str, str]] = [
    ("period", "期間", "period"),
    ("start", "開始日", "start"),
    ("end", "終了日", "end"),
    ("group", "区分", "group"),
    ("class", "分類", "class"),
    ("class_name_ja", "損傷種別", "damage type (ja)"),
    ("found", "発見", "found"),
    ("repaired", "補修", "repaired"),
    ("not_an_issue", "対象外", "not an issue"),
    ("reopened", "再発", "reopened"),
    ("open", "期末未対応", "open at end"),
    ("days_median", "補修日数(中央値)", "days to repair (median)"),
    ("days_p90", "補修日数(90%)", "days to repair (90th percentile)"),
    ("open_area_m2", "補修対象面積(m²)", "open area (m²)"),
    ("open_no_estimate", "未対応 面積推定なし", "open, no size estimate"),
    ("open_cost", "概算補修費{cur}", "repair cost estimate, open{cur}"),
    ("repaired_area_m2", "補修面積(m²)", "repaired area (m²)"),
    ("repaired_no_estimate", "補修 面積推定なし", "repaired, no size estimate"),
    ("repaired_cost", "補修費概算{cur}", "repair cost estimate, repaired{cur}"),
]
COUNT_COLUMNS = ("found", "repaired", "not_an_issue", "reopened", "open")
#: the columns only a config with unit prices (``repair_cost``) gets
COST_COLUMNS = ("open_cost", "repaired_cost")
#: summed over the repairs counted in a period: (column, the value per damage) of ``_sizes``
REPAIR_SUMS = (("repaired_area_m2", "area"), ("repaired_no_estimate", "no_estimate"), ("repaired_cost", "cost"))


@dataclass
class Stats:
    table: pd.DataFrame  # one row per period (× group) × class and total, COLUMNS
    totals: pd.DataFrame  # one row per period, all classes (and groups)
    open_now: int  # damages open today (their stored status)
    days_median: float | None  # over every repair in the periods shown
    n_repairs: int
    by: str
    group: str | None
    open_now_area_m2: float = 0.0  # the estimated area of the damages open today
    open_now_no_estimate: int = 0  # of those, the ones without a size estimate
    open_now_cost: float | None = None  # their cost estimate (repair_cost), None without unit prices
    currency: str | None = None  # repair_cost.currency where the config sets unit prices, else None


def period_starts(first: date, last: date, by: str, tz) -> list[datetime]:
    """The local starts of the periods from the one holding ``first`` to the one holding ``last``, and the start of
    the one after (calendar months, ISO weeks from Monday, calendar years)."""
    if by == "month":
        d = first.replace(day=1)
    elif by == "week":
        d = first - timedelta(days=first.weekday())
    else:
        d = first.replace(month=1, day=1)
    out = [d]
    while out[-1] <= last:
        d = out[-1]
        out.append(d + timedelta(days=7) if by == "week" else
                   date(d.year + (d.month == 12), d.month % 12 + 1, 1) if by == "month" else date(d.year + 1, 1, 1))
    return [datetime.combine(x, time(0), tzinfo=tz) for x in out]


def _label(start: datetime, by: str) -> str:
    if by == "month":
        return f"{start:%Y-%m}"
    if by == "week":
        y, w, _ = start.isocalendar()
        return f"{y}-W{w:02d}"
    return f"{start:%Y}"


def _times(s: pd.Series) -> np.ndarray:
    """ISO times (any offset) as unix seconds (float, NaN where empty or unreadable)."""
    t = pd.to_datetime(s, utc=True, errors="coerce", format="ISO8601")
    out = (t - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float)
    return out


def _local_day(t: np.ndarray, tz) -> np.ndarray:
    """Unix seconds as the number of their calendar day on ``tz``'s clock (float; NaN where ``t`` is)."""
    t = np.asarray(t, dtype=float)
    ok = ~np.isnan(t)
    out = np.full(len(t), np.nan)
    if ok.any():
        local = pd.to_datetime(t[ok], unit="s", utc=True).tz_convert(tz).tz_localize(None).normalize()
        out[ok] = ((local - pd.Timestamp(0)) // pd.Timedelta(days=1)).to_numpy(dtype=float)
    return out


def read_registry(st: Store) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(the damages: candidate_id, class, first_seen, repaired_at, status, segment_id, road_name, lat, lon,
    est_width_m, est_length_m; the
    history rows of those damages: hid, candidate_id, at, from_status, to_status; the sightings of the damages ever
    reopened or whose sightings differ in size: candidate_id, first_t, last_t (unix seconds), est_width_m,
    est_length_m, as ``observations`` holds them, and ``best_rank``, each sighting's place among its damage's by the
    store's own ORDER BY (``store._BEST_ORDER``, as SQLite sorts: 1 the best, whose size the damage holds)), merged-away
    records left out (their sightings are the damage's they went into)."""
    merged = "merged_into IS NULL" if st._has_column("candidates", "merged_into") else "1"
    size = ", ".join(c if st._has_column("candidates", c) else f"NULL AS {c}" for c in ("est_width_m", "est_length_m"))
    cands = pd.read_sql_query(
        "SELECT candidate_id, class, first_seen, repaired_at, status, segment_id, road_name, lat, lon, "
        f"{size} FROM candidates WHERE {merged} ORDER BY fid", st.con)
    hist = pd.read_sql_query(
        "SELECT h.hid, h.candidate_id, h.at, h.from_status, h.to_status FROM status_history h JOIN candidates c "
        f"ON c.candidate_id = h.candidate_id WHERE c.{merged} ORDER BY h.hid", st.con)
    # an import undone (``patrol import-verification … --undo``): its changes of the damages given back, and the undo's
    # rows, left out, as if it had not been (a repair a wrong list gave is no repair of its month)
    gone = st.undone_history_rows()
    if gone:
        hist = hist[~hist["hid"].isin(gone)].reset_index(drop=True)
    # only the few damages with a reopen (their sightings date it) or whose sightings do not all give one size
    # (the size as it stood at a period's end, ``_sizes_then``): a city's registry holds hundreds of thousands of
    # sightings, most of a damage seen at one size
    obs_size = ", ".join(c if st._has_column("observations", c) else f"NULL AS {c}"
                         for c in ("est_width_m", "est_length_m"))
    varied = ("OR candidate_id IN (SELECT candidate_id FROM observations GROUP BY candidate_id HAVING "
              "MIN(COALESCE(est_width_m, -1)) < MAX(COALESCE(est_width_m, -1)) OR "
              "MIN(COALESCE(est_length_m, -1)) < MAX(COALESCE(est_length_m, -1)))"
              if st._has_column("observations", "est_width_m") else "")
    # in the store's order (its ORDER BY, SQLite's collation and ties: what ``_recompute`` takes the best by), each
    # damage's sightings best first
    seen = pd.read_sql_query(
        f"SELECT candidate_id, first_t, last_t, {obs_size} FROM observations WHERE candidate_id IN (SELECT "
        "candidate_id FROM status_history WHERE from_status = 'repaired' AND to_status = 'reopened') "
        f"{varied} ORDER BY candidate_id, {_BEST_ORDER}, obs_id", st.con)
    seen["best_rank"] = seen.groupby("candidate_id", sort=False).cumcount() + 1
    return cands, hist, seen


def _day_end(t: np.ndarray, tz) -> np.ndarray:
    """Unix seconds, those at a local midnight (a date: ``Store._when`` stores a repair dated by its day as that
    day's 00:00) moved to the end of that day, as the store compares a repair with a sighting (a damage seen again
    on its repair's day is not seen after it); NaN stays."""
    t = np.asarray(t, dtype=float)
    out = t.copy()
    ok = ~np.isnan(t)
    if ok.any():
        local = pd.to_datetime(t[ok], unit="s", utc=True).tz_convert(tz)
        midnight = np.asarray(local == local.normalize())
        # the next local midnight (a day of 23 or 25 hours where the zone keeps summer time: its true end)
        nxt = (pd.DatetimeIndex(local.tz_localize(None).normalize() + pd.Timedelta(days=1))
               .tz_localize(tz, ambiguous=True, nonexistent="shift_forward"))
        nxt = np.asarray((nxt - pd.Timestamp(0, tz="UTC")).total_seconds(), dtype=float)
        out[np.flatnonzero(ok)[midnight]] = nxt[midnight]
    return out


def _reopen_sightings(ci: np.ndarray, rep: np.ndarray, cands: pd.DataFrame, seen: pd.DataFrame | None,
                      tz) -> np.ndarray:
    """For reopens (their damage's row ``ci``, the time of the repair each follows, ``rep``): the first sighting the
    registry holds after that repair (unix seconds; a sighting's ``first_t``, or its ``last_t`` where only that is
    after the repair, as the store compares the latest), NaN where it holds none (no sighting times, or a sighting
    taken away since)."""
    out = np.full(len(ci), np.nan)
    if seen is None or not len(seen) or not len(ci):
        return out
    si = pd.Index(cands["candidate_id"]).get_indexer(seen["candidate_id"])
    s = pd.DataFrame({"ci": si, "f": pd.to_numeric(seen["first_t"], errors="coerce"),
                      "l": pd.to_numeric(seen["last_t"], errors="coerce")})
    s = s[(si >= 0) & (s["f"].notna() | s["l"].notna()).to_numpy()]
    r = pd.DataFrame({"i": np.arange(len(ci)), "ci": ci, "rep": _day_end(rep, tz)})
    j = r.merge(s, on="ci")
    after = np.where(j["f"] > j["rep"], j["f"], np.where(j["l"] > j["rep"], j["l"], np.nan))
    first = pd.Series(after).groupby(j["i"].to_numpy()).min()
    out[first.index.to_numpy()] = first.to_numpy()
    return out


def _sizes(cands: pd.DataFrame, cfg, width=None, length=None, rows=None) -> dict[str, np.ndarray]:
    """Per damage: ``area`` its estimated area (est_width_m × est_length_m, m²; 0 where it has none), ``no_estimate``
    1 where it has none (a missing, non-positive or unreadable width or length: no camera mounting, a box off the
    road), ``cost`` (config ``repair_cost``) max(area × its class's price per m², minimum), the minimum where it has
    no size, 0 where it has none and no minimum is set (left out, counted in no_estimate); NaN without unit
    prices. ``width``, ``length``: the sizes to take instead of ``cands``' (of the damages ``rows``, rows of
    ``cands``: ``_sizes_then``), the results of their shape."""
    n = len(cands)

    def num(c: str) -> np.ndarray:
        return (pd.to_numeric(cands[c], errors="coerce").to_numpy(dtype=float) if c in cands
                else np.full(n, np.nan))

    w = num("est_width_m") if width is None else np.asarray(width, dtype=float)
    ln = num("est_length_m") if length is None else np.asarray(length, dtype=float)
    area = w * ln
    has = np.isfinite(area) & (area > 0)
    area = np.where(has, area, 0.0)
    cost = np.full(area.shape, np.nan)
    rc = cfg.repair_cost
    if rc is not None:
        price = cands["class"].map(rc.per_m2).to_numpy(dtype=float)  # a class not priced (not D00-D40): NaN
        price = price if rows is None else price[rows]
        low = rc.minimum if rc.minimum is not None else 0.0
        cost = np.where(has, np.maximum(area * price, low), low)
        cost = np.where(np.isnan(cost), 0.0, cost)
    return {"area": area, "no_estimate": (~has).astype(float), "cost": cost}


def _best_so_far(cands: pd.DataFrame, seen: pd.DataFrame | None):
    """The store's rule (``Store._recompute``: a damage's size estimate is its best sighting's, ranked by
    ``store._BEST_ORDER``) as it stood after each sighting: (the sightings of ``seen`` sorted by damage and time, a
    frame of ``ci`` (row of ``cands``), ``t`` (its ``first_t``, its ``last_t`` where it has none, -inf where it has
    neither: held from the start) and ``best`` (the rank of the best sighting of the damage up to then, one rank
    over all damages); the rank of each damage's best of all (a Series by ``ci``); (width, length) by rank). None
    where ``seen`` holds no ranked sightings of ``cands``' damages (``read_registry``)."""
    if seen is None or not len(seen) or "best_rank" not in seen:
        return None
    si = pd.Index(cands["candidate_id"]).get_indexer(seen["candidate_id"])
    s = seen[si >= 0]
    si = si[si >= 0]
    if not len(s):
        return None
    num = lambda c: pd.to_numeric(s[c], errors="coerce").to_numpy(dtype=float)  # noqa: E731
    ft, lt = num("first_t"), num("last_t")
    # the store's ranking (its ORDER BY, as SQLite ranked them: ``read_registry``), one rank over all damages
    rank = np.empty(len(s), dtype=np.int64)
    rank[np.lexsort((num("best_rank"), si))] = np.arange(len(s))
    t = np.where(np.isnan(ft), lt, ft)
    t = np.where(np.isnan(t), -np.inf, t)
    o = pd.DataFrame({"ci": si, "t": t, "rank": rank}).sort_values(["ci", "t"], kind="stable")
    o["best"] = o.groupby("ci")["rank"].cummin()  # the best sighting so far, at each sighting's time
    by_rank = np.empty((len(s), 2))
    by_rank[rank] = np.c_[num("est_width_m"), num("est_length_m")]
    return o.reset_index(drop=True), o.groupby("ci")["rank"].min(), by_rank


def _sizes_then(cands: pd.DataFrame, seen: pd.DataFrame | None, qi: np.ndarray, qt: np.ndarray,
                before: bool = False, ranked=None) -> tuple[np.ndarray, np.ndarray]:
    """(est_width_m, est_length_m) of damages ``qi`` (rows of ``cands``) as the registry's estimate stood at times
    ``qt`` (unix seconds; ``before``: just before them, a sighting at ``qt`` not yet held): the store's rule over
    its sightings up to then (``_best_so_far``; ``ranked``: its result, where made already). Where that is the best
    of all its sightings, or the registry holds no sightings of it that differ in size (``read_registry``), the size
    ``cands`` holds (today's: the same sighting's). Before its first sighting a damage has its first sighting's size
    (it is not counted then). One ``merge_asof``: no loop per damage."""
    w = pd.to_numeric(cands["est_width_m"], errors="coerce").to_numpy(dtype=float)[qi]
    ln = pd.to_numeric(cands["est_length_m"], errors="coerce").to_numpy(dtype=float)[qi]
    ranked = ranked or _best_so_far(cands, seen)
    if ranked is None or not len(qi):
        return w, ln
    o, final, by_rank = ranked
    q = pd.DataFrame({"i": np.arange(len(qi)), "ci": qi, "t": np.asarray(qt, dtype=float)})
    q = q[np.isin(qi, final.index.to_numpy()) & ~np.isnan(q["t"].to_numpy())]
    if not len(q):
        return w, ln
    j = pd.merge_asof(q.sort_values("t"), o.sort_values("t")[["ci", "t", "best"]], on="t", by="ci",
                      direction="backward", allow_exact_matches=not before)
    jci = j["ci"].to_numpy()
    best = np.array(j["best"], dtype=float)  # (a copy: pandas hands out read-only views)
    unseen = np.isnan(best)  # before any sighting (not counted then): the first's
    best[unseen] = o.groupby("ci")["best"].first().reindex(jci[unseen]).to_numpy(dtype=float)
    then = best != final.reindex(jci).to_numpy(dtype=float)  # the best of all: ``cands``'
    i = j["i"].to_numpy()[then]
    w[i], ln[i] = by_rank[best[then].astype(np.int64)].T
    return w, ln


def _sizes_at_ends(cands: pd.DataFrame, ranked, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the damages with ranked sightings, rows of ``cands``; their est_width_m and est_length_m at each period's
    end, damage × period) as ``_sizes_then`` gives them just before each of ``ends``: the best sighting so far at
    the last sighting before each end, carried forward along the periods (as the backlog's statuses are), no query
    per damage and period."""
    o, final, by_rank = ranked
    moved = final.index.to_numpy()
    n_per = len(ends)
    mi = np.searchsorted(moved, o["ci"].to_numpy())
    k = np.searchsorted(ends, o["t"].to_numpy(), side="right")  # the first period whose end is after the sighting
    best = o["best"].to_numpy()
    last = np.ones(len(o), dtype=bool)  # the last sighting of each (damage, period): its best so far by the end
    last[:-1] = (mi[1:] != mi[:-1]) | (k[1:] != k[:-1])
    last &= k < n_per
    grid = np.full((len(moved), n_per), -1, dtype=np.int64)
    grid[mi[last], k[last]] = best[last]
    idx = np.where(grid >= 0, np.arange(n_per)[None, :], -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    first = o.groupby("ci")["best"].first().to_numpy()  # before any sighting (not counted then): the first's
    filled = np.where(idx >= 0, np.take_along_axis(grid, np.maximum(idx, 0), axis=1), first[:, None])
    then = filled != final.to_numpy()[:, None]  # the best of all: ``cands``'
    num = lambda c: pd.to_numeric(cands[c], errors="coerce").to_numpy(dtype=float)[moved]  # noqa: E731
    w = np.where(then, by_rank[filled, 0], num("est_width_m")[:, None])
    ln = np.where(then, by_rank[filled, 1], num("est_length_m")[:, None])
    return moved, w, ln


def compute(cands: pd.DataFrame, hist: pd.DataFrame, cfg, by: str = "month", since: date | None = None,
            until: date | None = None, group: str | None = None, today: date | None = None,
            seen: pd.DataFrame | None = None) -> Stats:
    """The figures (see the module's rules). ``cands`` carries ``group`` where grouped (a column of it); ``seen``:
    the sightings that date the reopens (``read_registry``; None: each reopen at the time it was recorded)."""
    if by not in PERIODS:
        raise UsageError(f"unknown period {by!r}; choose one of {', '.join(PERIODS)}", field="--by")
    tz = cfg.tz
    today = today or cfg.today()
    cands = cands.reset_index(drop=True)
    n = len(cands)
    first_t = _times(cands["first_seen"])
    rep_t = _times(cands["repaired_at"])
    ci = pd.Index(cands["candidate_id"]).get_indexer(hist["candidate_id"])
    hist = hist.assign(ci=ci)[ci >= 0].reset_index(drop=True)
    ci = hist["ci"].to_numpy()
    at = _times(hist["at"])
    created = hist["from_status"].isna().to_numpy()
    at = np.where(created & ~np.isnan(first_t[ci]), first_t[ci], at)  # new from its first sighting, not the merge
    change = (hist["from_status"].fillna("") != hist["to_status"]).to_numpy()
    to = hist["to_status"].to_numpy(dtype=object)
    # a damage's latest repair: the repair date it holds (repaired_at), where set
    is_rep = change & (to == "repaired")
    last_rep = np.zeros(len(hist), dtype=bool)
    if is_rep.any():
        last_rep[hist.index[is_rep].to_series().groupby(ci[is_rep]).max().to_numpy()] = True
    at = np.where(last_rep & ~np.isnan(rep_t[ci]), rep_t[ci], at)
    # a reopen from the first sighting after the repair it follows, as "found" is from the first sighting: not when
    # the drive was merged, nor when a repair dated before a sighting held was typed in (the recorded time where the
    # registry holds no sighting time after the repair)
    is_reo = change & (to == "reopened") & (hist["from_status"] == "repaired").to_numpy()
    if is_reo.any():
        # the repair each follows: its damage's latest repair row before it (hid order), dated as counted above
        prev = pd.Series(np.where(is_rep, np.arange(len(hist)), np.nan)).groupby(ci).ffill().to_numpy()[is_reo]
        rep_before = np.where(np.isnan(prev), np.nan, at[np.nan_to_num(prev).astype(np.int64)])
        sighted = _reopen_sightings(ci[is_reo], rep_before, cands, seen, tz)
        at[is_reo] = np.where(np.isnan(sighted), at[is_reo], sighted)

    # the periods: from the first record (or --since) to --until (or today)
    known = np.concatenate([first_t[~np.isnan(first_t)], at[~np.isnan(at)]])
    if since is None:
        since = (datetime.fromtimestamp(known.min(), tz).date() if len(known) else today)
    until = until or today
    if until < since:
        raise UsageError(f"--until {until} is before --since {since}", field="--until")
    starts = period_starts(since, until, by, tz)
    lo = datetime.combine(since, time(0), tzinfo=tz).timestamp()
    hi = datetime.combine(until + timedelta(days=1), time(0), tzinfo=tz).timestamp()
    edges = np.array([s.timestamp() for s in starts], dtype=float)
    edges[0], edges[-1] = max(edges[0], lo), min(edges[-1], hi)  # the first and last periods cut at since / until
    n_per = len(edges) - 1

    def period_of(t: np.ndarray) -> np.ndarray:  # -1: outside the periods shown
        k = np.searchsorted(edges, t, side="right") - 1
        return np.where(np.isnan(t) | (k < 0) | (k >= n_per), -1, k)

    cls = cands["class"].fillna("").astype(str).to_numpy(dtype=object)
    grp = cands["group"].to_numpy(dtype=object) if group else np.full(n, "", dtype=object)
    # each event keyed by its damage's (group, class); the totals: the same rows with class = total
    frames = []

    def add(kind: str, cand_idx: np.ndarray, k: np.ndarray, value: np.ndarray | None = None) -> None:
        ok = k >= 0
        frames.append(pd.DataFrame({"kind": kind, "k": k[ok], "group": grp[cand_idx[ok]], "class": cls[cand_idx[ok]],
                                    "v": value[ok] if value is not None else 1.0}))

    add("found", np.arange(n), period_of(first_t))
    for ev in EVENTS:
        m = change & (to == ev)
        add(ev, ci[m], period_of(at[m]))
    m = is_rep
    # days as a road department counts them (対応日数): calendar days on the config's clock, the repair's date minus
    # the first sighting's (found on the 20th at 09:00, repaired on the 23rd: 3, not the 2.6 of the hours between)
    days = np.maximum(0.0, _local_day(at[m], tz) - _local_day(first_t[ci[m]], tz))
    add("days", ci[m], period_of(np.where(np.isnan(days), np.nan, at[m])), days)
    # the repairs' estimated area, those without one, their cost (each repair counted, as ``repaired`` counts them),
    # each damage's size as it stood at the repair (a sighting on a repair's day before it, as the store compares)
    size = _sizes(cands, cfg)
    ranked = _best_so_far(cands, seen)
    w_rep, l_rep = _sizes_then(cands, seen, ci[m], _day_end(at[m], tz), ranked=ranked)
    size_rep = _sizes(cands, cfg, w_rep, l_rep, rows=ci[m])
    for col, key in REPAIR_SUMS:
        if key != "cost" or cfg.repair_cost is not None:
            add(col, ci[m], period_of(at[m]), size_rep[key])

    # the backlog: each damage's status at each period's end, the last change (in hid order) dated before it
    open_codes = np.array([s in OPEN_STATUSES for s in pd.unique(to)] + [True], dtype=bool)
    codes = pd.Index(pd.unique(to))
    code = codes.get_indexer(to)
    kend = np.searchsorted(edges[1:], at, side="right")  # the first period whose end is after the change
    valid = ~np.isnan(at) & (kend < n_per)
    order = np.lexsort((hist["hid"].to_numpy()[valid], kend[valid], ci[valid]))
    c_v, k_v, code_v = ci[valid][order], kend[valid][order], code[valid][order]
    hids = hist["hid"].to_numpy()[valid][order]
    # within a candidate, the running latest (largest hid) change as the periods advance
    run = pd.Series(hids).groupby(c_v).cummax().to_numpy()
    code_of_hid = pd.Series(code_v, index=hids)
    run_code = code_of_hid.reindex(run).to_numpy()
    grid = np.full((n, n_per), -1, dtype=np.int64)
    last = np.ones(len(c_v), dtype=bool)  # the last row of each (candidate, period): the latest change by its end
    last[:-1] = (c_v[1:] != c_v[:-1]) | (k_v[1:] != k_v[:-1])
    grid[c_v[last], k_v[last]] = run_code[last]
    # forward fill along the periods
    idx = np.where(grid >= 0, np.arange(n_per)[None, :], -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = np.where(idx >= 0, np.take_along_axis(grid, np.maximum(idx, 0), axis=1), len(codes))  # none: new
    is_open = open_codes[filled]
    found_by = first_t[:, None] < edges[None, 1:]
    if np.isnan(first_t).any():  # a damage without a first sighting: found with its first history row
        first_row = pd.Series(at).groupby(ci).min().reindex(range(n)).to_numpy()
        found_by = np.where(np.isnan(first_t)[:, None], first_row[:, None] < edges[None, 1:], found_by)
    op = is_open & found_by  # (damage, period): open at the period's end

    classes = list(CLASS_IDS) + sorted(set(cls) - set(CLASS_IDS) - {""}) + [TOTAL]
    groups = sorted(set(grp), key=lambda g: (g == NO_GROUP, g)) if group else [""]
    full = pd.MultiIndex.from_product([range(n_per), groups, classes], names=["k", "group", "class"])
    # the backlog summed by (group, class) over the damages, a row of periods each: no row per damage and period
    gi, ki = pd.Index(groups).get_indexer(grp), pd.Index(classes).get_indexer(cls)
    open_n = np.zeros((len(groups), len(classes), n_per), dtype=np.int64)
    np.add.at(open_n, (gi, ki), op.astype(np.int64))
    open_n[:, -1] = open_n[:, :-1].sum(axis=1)  # total
    open_s = pd.Series(open_n.transpose(2, 0, 1).ravel(), index=full)  # (k, group, class) as ``full`` orders them
    # the backlog's estimated area, those without one, its cost: the same sums weighted by each damage's size as it
    # stood at the period's end (one pass over the damages sorted by their (group, class): no ufunc.at over every
    # damage and period); the sizes then of the damages whose sightings differ in size, today's of the others
    size_end = {key: np.repeat(size[key][:, None], n_per, axis=1) for key in size}
    if ranked is not None:
        moved, w_end, l_end = _sizes_at_ends(cands, ranked, edges[1:])
        for key, v in _sizes(cands, cfg, w_end, l_end, rows=moved[:, None]).items():
            size_end[key][moved] = v
    priced = cfg.repair_cost is not None
    keys = ("area", "no_estimate", "cost") if priced else ("area", "no_estimate")
    cell = gi * len(classes) + ki
    order = np.argsort(cell, kind="stable")
    firsts = np.flatnonzero(np.r_[True, cell[order][1:] != cell[order][:-1]]) if n else np.zeros(0, dtype=np.int64)
    op_sorted = op[order].astype(float)
    open_sums, open_totals = {}, {}  # (k, group, class) as ``full`` orders them; per period, every group and class
    for key in keys:
        w = np.zeros((len(groups) * len(classes), n_per))
        if n:
            w[cell[order][firsts]] = np.add.reduceat(op_sorted * size_end[key][order], firsts, axis=0)
        w = w.reshape(len(groups), len(classes), n_per)
        w[:, -1] = w[:, :-1].sum(axis=1)  # total
        open_sums[key] = w.transpose(2, 0, 1).ravel()
        open_totals[key] = w[:, -1].sum(axis=0)
    if not priced:  # no cost columns
        open_sums["cost"], open_totals["cost"] = np.full(len(full), np.nan), np.full(n_per, np.nan)

    ev = pd.concat(frames, ignore_index=True)
    ev_total = ev.assign(**{"class": TOTAL})
    all_ev = pd.concat([ev, ev_total], ignore_index=True)
    is_count = all_ev["kind"].isin(COUNT_COLUMNS)
    counts = all_ev[is_count].groupby(["k", "group", "class", "kind"]).size().unstack("kind")
    sums = (all_ev[all_ev["kind"].isin([c for c, _ in REPAIR_SUMS])].groupby(["k", "group", "class", "kind"])["v"]
            .sum().unstack("kind").reindex(columns=[c for c, _ in REPAIR_SUMS]))
    d = all_ev[all_ev["kind"] == "days"].groupby(["k", "group", "class"])["v"]
    med, p90 = d.median(), d.quantile(0.9)

    tab = counts.reindex(full).reindex(columns=list(COUNT_COLUMNS)).fillna(0).astype(int)
    tab["open"] = open_s.to_numpy()
    tab["days_median"] = med.reindex(full).round(1)
    tab["days_p90"] = p90.reindex(full).round(1)
    sums = sums.reindex(full).fillna(0.0)
    _size_columns(tab, open_sums["area"], open_sums["no_estimate"], open_sums["cost"],
                  *(sums[c].to_numpy() for c, _ in REPAIR_SUMS))
    tab = tab.reset_index()
    labels = [_label(s, by) for s in starts[:-1]]
    first_day = [datetime.fromtimestamp(e, tz).date() for e in edges[:-1]]
    last_day = [datetime.fromtimestamp(e, tz).date() - timedelta(days=1) for e in edges[1:]]
    tab.insert(0, "period", [labels[k] for k in tab["k"]])
    tab.insert(1, "start", [first_day[k] for k in tab["k"]])
    tab.insert(2, "end", [last_day[k] for k in tab["k"]])
    tab["class_name_ja"] = ["計" if c == TOTAL else cfg.class_name(c, "ja") for c in tab["class"]]

    # the totals of the periods (every class, every group): the console's table
    tot_ev = ev_total.assign(group="")
    tc = tot_ev[tot_ev["kind"].isin(COUNT_COLUMNS)].groupby(["k", "kind"]).size().unstack("kind")
    ts = (tot_ev[tot_ev["kind"].isin([c for c, _ in REPAIR_SUMS])].groupby(["k", "kind"])["v"].sum()
          .unstack("kind").reindex(index=range(n_per), columns=[c for c, _ in REPAIR_SUMS]).fillna(0.0))
    td = tot_ev[tot_ev["kind"] == "days"].groupby("k")["v"]
    totals = tc.reindex(range(n_per)).reindex(columns=list(COUNT_COLUMNS)).fillna(0).astype(int)
    totals["open"] = op.sum(axis=0)
    totals["days_median"] = td.median().reindex(range(n_per)).round(1)
    totals["days_p90"] = td.quantile(0.9).reindex(range(n_per)).round(1)
    _size_columns(totals, *(open_totals[key] for key in ("area", "no_estimate", "cost")),
                  *(ts[c].to_numpy() for c, _ in REPAIR_SUMS))
    totals.insert(0, "period", labels)
    totals = totals.reset_index(drop=True)

    all_days = ev.loc[ev["kind"] == "days", "v"]
    out_cols = [c for c, *_ in COLUMNS if (group or c != "group") and (priced or c not in COST_COLUMNS)]
    now_open = cands["status"].isin(OPEN_STATUSES).to_numpy()
    return Stats(table=tab[out_cols], totals=totals,
                 open_now=int(now_open.sum()),
                 days_median=round(float(all_days.median()), 1) if len(all_days) else None,
                 n_repairs=int(len(all_days)), by=by, group=group,
                 open_now_area_m2=round(float(size["area"][now_open].sum()), 1),
                 open_now_no_estimate=int(size["no_estimate"][now_open].sum()),
                 open_now_cost=round(float(size["cost"][now_open].sum())) if priced else None,
                 currency=cfg.repair_cost.currency if priced else None)


def _size_columns(tab: pd.DataFrame, open_area, open_no, open_cost, rep_area, rep_no, rep_cost) -> None:
    """The backlog's and the repairs' area (m², one decimal), their damages without a size estimate (a count) and
    their cost estimate (whole units; NaN: no unit prices) as ``tab``'s columns."""
    tab["open_area_m2"] = np.round(np.asarray(open_area, dtype=float), 1)
    tab["open_no_estimate"] = np.rint(open_no).astype(np.int64)
    tab["open_cost"] = _whole(open_cost)
    tab["repaired_area_m2"] = np.round(np.asarray(rep_area, dtype=float), 1)
    tab["repaired_no_estimate"] = np.rint(rep_no).astype(np.int64)
    tab["repaired_cost"] = _whole(rep_cost)


def _whole(v) -> np.ndarray:
    """Amounts rounded to whole units, as integers (NaN kept: no unit prices)."""
    v = np.round(np.asarray(v, dtype=float))
    return v if np.isnan(v).any() else v.astype(np.int64)


def columns(st: Stats) -> list[tuple[str, str, str]]:
    """The table's (column, Japanese heading, English heading): ``group`` headed by its field, the cost columns by
    their currency (``概算補修費(円)``)."""
    cur = f"({st.currency})" if st.currency else ""
    shown = set(st.table.columns)
    return [(c, st.group, st.group) if c == "group" else (c, ja.format(cur=cur), en.format(cur=cur and " " + cur))
            for c, ja, en in COLUMNS if c in shown]


def _cell(v):
    from .export import safe_cell

    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, (np.integer, int)):
        return str(int(v))
    if isinstance(v, (np.floating, float)):
        return f"{float(v):.1f}"
    if isinstance(v, date):
        return v.isoformat()
    return safe_cell(str(v))


def write_csv(st: Stats, path: Path) -> None:
    """UTF-8 with BOM (Japanese Excel); each heading ``ja en`` (``発見 found``), the values formula-safe."""
    from .export import write_headed_csv

    write_headed_csv(path, columns(st), st.table.itertuples(index=False, name=None), _cell)


def write_xlsx(st: Stats, path: Path, cfg=None) -> None:
    """One sheet, headed ``ja`` over ``en`` as the repair list's workbook, printable (A4 landscape, one page wide)."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    from .report import xlsx_cell, xlsx_header, xlsx_print_setup

    cols = columns(st)
    wb = Workbook()
    ws = wb.active
    ws.title = "stats"
    widths = xlsx_header(ws, cols)
    for i, row in enumerate(st.table.itertuples(index=False, name=None), 2):
        for j, ((name, _, _), v) in enumerate(zip(cols, row), 1):
            fmt = ("0.0" if name.startswith("days_") or name.endswith("_area_m2") else
                   "#,##0" if name.endswith("_cost") else None)
            widths[j - 1] = max(widths[j - 1], xlsx_cell(ws.cell(row=i, column=j), v, fmt))
    for j, wd in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(j)].width = wd
    ws.freeze_panes = "A2"
    xlsx_print_setup(ws, len(cols), len(st.table))
    with atomic_write(path, "wb") as fh:
        buf = io.BytesIO()
        wb.save(buf)
        fh.write(buf.getvalue())


def write(st: Stats, path: Path, cfg=None) -> None:
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        write_csv(st, path)
    elif suffix == ".xlsx":
        write_xlsx(st, path, cfg)
    else:
        raise UsageError(f"{path}: --out must end in .csv or .xlsx", field="--out")
