"""Roads due for a patrol (道路パトロールの巡回頻度): ``patrol export REGISTRY --format due --roads R``.

A road department patrols each road at a set frequency by its class (``cfg.survey``: every ``every_days`` days, or per
value of a road field, ``survey.by``). ``due_table(net, frames, cfg, at)`` gives one row per segment of the whole
network, never-surveyed ones included:

- a segment is *surveyed on a day* when that day's frames of good look (``Store.survey_frames``, the frames the
  segments export counts) cover at least ``cfg.segments.min_coverage`` of it: the coverage rule of
  ``segments.segment_condition`` (within ``segments.coverage_radius_m`` of a frame, heading agreeing within
  ``locate.heading_tolerance_deg``; its ``valid``), computed by its helpers over one day's frames at a time (the
  day on the config's clock; all the drives of a day together: a road patrolled half in the morning, half in the
  afternoon was patrolled that day). Frames without a time date no survey and are left out; so are days after ``at``
  (the network as it stood on that day);
- ``last_surveyed``: the latest such day on or before ``at``; ``coverage``: that day's coverage of the segment;
- ``every_days``: the segment's frequency; ``due`` = last_surveyed + every_days; ``days_overdue`` = at − due (> 0
  overdue, 0 due that day, < 0 not yet); a segment never surveyed has neither, ``never_surveyed`` true, and counts as
  due (it is the most overdue);
- sorted most overdue first: never surveyed (the most frequently patrolled first), then days_overdue descending;
- a segment whose frequency is null (``survey.every_days: null`` for the values ``survey.by`` does not list, or a
  listed value's null: a road on no patrol cycle, patrolled on request) is left out of the list (``Due.off_cycle``);
- so is a segment of no length (shorter than ``MIN_LENGTH_M``: two equal points in the network, as the sample's
  ``00000037-374-1303``): no frame covers any share of a point, so it would be listed never surveyed and due for ever,
  whatever the patrols (``Due.no_length``; counted apart from the roads on no patrol cycle).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from .atomic import atomic_write
from .config import _value_key
from .errors import UsageError
from .export import _after_road_name, safe_cell, write_headed_csv
from .segments import SEGMENT_FILES, _covering, _frame_xy, _kept_fields, _lines, _union, write_segments

#: the columns (the kept road fields go after road_name): name, 日本語, English
COLUMNS = [("segment_id", "区間ID", "segment_id"), ("road_name", "路線名", "road_name"),
           ("length_m", "延長(m)", "length_m"), ("coverage", "調査率", "coverage"),
           ("last_surveyed", "最終巡回日", "last_surveyed"), ("every_days", "巡回間隔(日)", "every_days"),
           ("due", "巡回期限", "due"), ("days_overdue", "超過日数", "days_overdue"),
           ("never_surveyed", "未巡回", "never_surveyed")]
#: the xlsx legend's words on each column (README: Roads due for a patrol): name -> (日本語, English)
COLUMN_NOTES = {
    "segment_id": ("道路網の区間ID", "the road network's segment id"),
    "road_name": ("道路網の名前の列の値", "the road's name (the network's name column)"),
    "length_m": ("区間の延長 (m)", "the segment's length (m)"),
    "coverage": ("最終巡回日にその日の画像が覆った区間の割合 (空欄: 未巡回)",
                 "the share of the segment its last patrol day's frames covered (empty: never surveyed)"),
    "last_surveyed": ("基準日以前で、その日の撮影良好な画像が区間の調査率の基準以上を覆った最後の日 (上の「巡回の判定」)",
                      "the latest day on or before the day planned for whose good-look frames covered the coverage "
                      "rule's share of the segment (above: the coverage rule)"),
    "every_days": ("巡回と巡回の間の日数 (上の「巡回頻度」)", "days between patrols (the frequency above)"),
    "due": ("最終巡回日 + 巡回間隔", "the due day: last_surveyed + every_days"),
    "days_overdue": ("基準日 − 巡回期限: 正は期限切れ、0 は基準日が期限 (どちらも巡回対象)、負は期限まであと何日",
                     "the day planned for − due: above 0 overdue, 0 due that day (both due), below 0 days left"),
    "never_surveyed": ("TRUE: どの日も巡回の判定を満たさなかった区間。最終巡回日・巡回期限・超過日数は空欄で、巡回対象 "
                       "(最も優先: 一覧の先頭)",
                       "TRUE: no day made a patrol of it; last_surveyed, due and days_overdue are empty and it is due "
                       "(the most overdue: listed first)"),
}
#: ``--out``: the list (csv, xlsx) or the map (geojson, gpkg: ``segments.write_segments``, layer ``DUE_LAYER``)
DUE_FILES = (".csv", ".xlsx", *SEGMENT_FILES)
#: the GeoPackage's layer: named for what it holds (the segments export's is ``segments``: a QGIS project holding both
#: tells them apart)
DUE_LAYER = "patrol_due"
#: a segment shorter than this (m) has no length to patrol: two equal points (or equal but for rounding) in the
#: network, which no drive can cover (coverage is a share of the length). The shortest real pieces of a ledger network
#: are some decimetres (the sample's: 0.22 m, 0.24 m, 0.35 m) and a drive along them covers them: those stay listed
MIN_LENGTH_M = 0.01


@dataclass
class Due:
    table: pd.DataFrame  # a GeoDataFrame: one row per segment, most overdue first
    at: date
    kept: list[str]  # the kept road fields' output names, in the table after road_name
    notes: list[str] = field(default_factory=list)  # survey.by values that match no segment, …
    off_cycle: int = 0  # segments on no patrol cycle (a null frequency): left out of ``table``
    off_cycle_m: float = 0.0  # and their length
    no_length: int = 0  # segments of no length (``MIN_LENGTH_M``): left out of ``table``, whatever their cycle

    @property
    def due(self) -> pd.Series:
        """The rows due on ``at``: never surveyed, or days_overdue >= 0."""
        return self.table["never_surveyed"] | (self.table["days_overdue"].fillna(-1) >= 0)


def latest_surveys(net, frames: pd.DataFrame | None, cfg, at: date) -> tuple[list, np.ndarray]:
    """Per segment of ``net`` (in its order): the local day of its latest survey on or before ``at`` (None: never) and
    that day's coverage (NaN: never); see the module doc. Vectorised: one ``segments._covering`` over every frame, the
    pieces unioned per (segment, day)."""
    gdf = getattr(net, "gdf", net)
    lines, lengths = _lines(gdf)
    n = len(lengths)
    none = [None] * n, np.full(n, np.nan)
    if frames is None or len(frames) == 0:
        return none
    xs, ys, hs, ts = [], [], [], []
    groups = frames.groupby("drive", sort=False, dropna=False) if "drive" in frames.columns else [(None, frames)]
    for _, f in groups:  # per drive, as a run of it: a standing vehicle's repeated positions dropped within a drive
        x, y, h, t = _frame_xy(f, gdf, with_t=True)
        xs.append(x), ys.append(y), hs.append(h), ts.append(t)
    x, y, h, t = (np.concatenate(a) for a in (xs, ys, hs, ts))
    dated = np.isfinite(t)
    x, y, h, t = x[dated], y[dated], h[dated], t[dated]
    if not len(t):
        return none
    local = pd.to_datetime(t, unit="s", utc=True).tz_convert(cfg.tz)
    day_ord = _ordinals(local)
    keep = day_ord <= at.toordinal()
    x, y, h, day_ord = x[keep], y[keep], h[keep], day_ord[keep]
    if not len(x):
        return none
    days, day_idx = np.unique(day_ord, return_inverse=True)
    tol = float(getattr(cfg.locate, "heading_tolerance_deg", 60.0))
    pi, si, st, en = _covering(lines, lengths, x, y, h, float(cfg.segments.coverage_radius_m), tol)
    if not len(pi):
        return none
    key = si.astype(np.int64) * len(days) + day_idx[pi]
    iv = _union(lengths, key, st, en)  # (only lengths.max() is read: the offset between keys)
    k, inv = np.unique(iv["seg"].to_numpy(np.int64), return_inverse=True)
    seg, day = k // len(days), k % len(days)
    surveyed = np.minimum(np.bincount(np.ravel(inv), weights=(iv["end"] - iv["start"]).to_numpy(float)), lengths[seg])
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = np.where(lengths[seg] > 0, surveyed / lengths[seg], 0.0)
    valid = (cov >= cfg.segments.min_coverage) & (surveyed > 0)  # segment_condition's ``valid``
    seg, day, cov = seg[valid], day[valid], cov[valid]
    last_day = np.full(n, -1, np.int64)
    np.maximum.at(last_day, seg, day)  # days ascending: the latest valid day per segment
    coverage = np.full(n, np.nan)
    latest = day == last_day[seg]
    coverage[seg[latest]] = cov[latest]
    last = [None if d < 0 else date.fromordinal(int(days[d])) for d in last_day]
    return last, coverage


def _ordinals(local: pd.DatetimeIndex) -> np.ndarray:
    """Proleptic ordinals (``date.toordinal``) of local times' days, vectorised."""
    naive = local.tz_localize(None).normalize().to_numpy("datetime64[D]").astype(np.int64)
    return naive + date(1970, 1, 1).toordinal()


def every_days(net, cfg) -> tuple[np.ndarray, list[str]]:
    """Each segment's patrol frequency (days; ``cfg.survey``; 0: on no patrol cycle, a null frequency) and notes:
    configured values of ``survey.by.field`` that no segment has (a typo in the config?)."""
    gdf = getattr(net, "gdf", net)
    spec = cfg.survey
    out = np.full(len(gdf), int(spec.every_days or 0), np.int64)
    by = spec.by
    if by is None or not by.every_days:
        return out, []
    from .export import road_field_names

    if by.field == "road_name":
        name = "road_name"
        vals = gdf["road_name"].tolist() if "road_name" in gdf.columns else [None] * len(gdf)
    else:
        name = next(o for src, o in road_field_names(cfg.roads.keep_fields) if by.field in (src, o))
        vals = _kept_fields(net, gdf, cfg).get(name, [None] * len(gdf))
    keys = pd.Series([_value_key(v) if v is not None and v == v else None for v in vals], dtype=object)
    hit = keys.isin(list(by.every_days)).to_numpy()  # a listed value: its days, or 0 where it is null (no cycle)
    out[hit] = keys[hit].map(lambda k: by.every_days[k] or 0).astype(np.int64).to_numpy()
    unused = sorted(set(by.every_days) - set(keys.dropna()))
    others = f"every {spec.every_days} days apply to the others" if spec.every_days else "the others are on no cycle"
    notes = [f"survey.by.every_days: {name} {', '.join(map(repr, unused))} matches no segment of the network "
             f"({others})"] if unused else []
    return out, notes


def due_table(net, frames: pd.DataFrame | None, cfg, at: date) -> Due:
    """The rows of ``patrol export --format due`` (module doc): a GeoDataFrame in the network's CRS."""
    import geopandas as gpd

    gdf = getattr(net, "gdf", net)
    lines, lengths = _lines(gdf)
    kept = _kept_fields(net, gdf, cfg)
    last, coverage = latest_surveys(net, frames, cfg, at)
    every, notes = every_days(net, cfg)
    never = np.array([d is None for d in last], bool)
    due = [None if d is None else d + timedelta(days=int(e)) for d, e in zip(last, every)]
    overdue = pd.array([None if d is None else (at - d).days for d in due], dtype="Int64")
    df = pd.DataFrame({
        "segment_id": gdf["segment_id"].astype(str).to_numpy(),
        "road_name": gdf["road_name"].fillna("").astype(str).to_numpy() if "road_name" in gdf.columns else "",
        "length_m": np.round(lengths, 2), "coverage": np.round(coverage, 4),
        "last_surveyed": pd.Series([None if d is None else d.isoformat() for d in last], dtype=object),
        "every_days": every, "due": pd.Series([None if d is None else d.isoformat() for d in due], dtype=object),
        "days_overdue": overdue, "never_surveyed": never})
    for name, vals in kept.items():  # object columns: an integer field with gaps stays integers
        df[name] = pd.Series(vals, index=df.index, dtype=object)
    df = df[_after_road_name([c for c, _, _ in COLUMNS], list(kept))]
    # most overdue first: never surveyed (the most frequent first), then by days overdue; the network's order after
    order = np.lexsort((np.arange(len(df)), every, -overdue.to_numpy(np.int64, na_value=0), ~never))
    # left out of the list: a segment of no length (two equal points: the sample's 00000037-374-1303; no drive covers
    # a point, it would be due for ever; its merged line is an empty collection, which made the GeoPackage's layer
    # GEOMETRY), then one on no patrol cycle (a null frequency)
    point = ~(lengths >= MIN_LENGTH_M) | shapely.is_empty(lines)
    off = (every == 0) & ~point
    order = order[(every[order] > 0) & ~point[order]]
    geo = gpd.GeoSeries(lines[order], crs=gdf.crs)
    table = gpd.GeoDataFrame(df.iloc[order].reset_index(drop=True), geometry=geo.values, crs=gdf.crs)
    return Due(table, at, list(kept), notes, off_cycle=int(off.sum()), off_cycle_m=float(lengths[off].sum()),
               no_length=int(point.sum()))


def columns(d: Due) -> list[tuple[str, str, str]]:
    ours = {c: (c, ja, en) for c, ja, en in COLUMNS}
    return [ours.get(c, (c, c, c)) for c in d.table.columns if c != d.table.geometry.name]


def _csv_cell(v) -> str:
    if v is None or v is pd.NA:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "TRUE" if v else "FALSE"  # as Excel writes and reads them
    if isinstance(v, (np.integer,)):
        return str(int(v))
    return safe_cell(v)


def write_csv(d: Due, path: Path) -> None:
    """UTF-8 with BOM (Japanese Excel); each heading ``ja en`` (``最終巡回日 last_surveyed``), values formula-safe."""
    cols = columns(d)
    write_headed_csv(path, cols, d.table[[c for c, _, _ in cols]].itertuples(index=False, name=None), _csv_cell)


def _frequency(cfg) -> tuple[str, str]:
    """The config's patrol frequency (``survey``) in words: (日本語, English)."""
    every = cfg.survey.every_days
    by = cfg.survey.by
    base_ja, base_en = (f"{every} 日ごと", f"every {every} days") if every else ("定期巡回の対象外 (一覧に載せない)",
                                                                           "on no patrol cycle (left out of the list)")
    if by is None or not by.every_days:
        return f"survey.every_days: 全区間 {base_ja}", f"survey.every_days: every segment {base_en}"
    days = lambda v, ja: (f"{v} 日" if ja else f"{v} days") if v else ("対象外" if ja else "no cycle")  # noqa: E731
    return (f"survey.by: {by.field} ごと: " + ", ".join(f"{k} {days(v, True)}" for k, v in by.every_days.items())
            + f"; その他 (survey.every_days) {base_ja}",
            f"survey.by: per {by.field}: " + ", ".join(f"{k} {days(v, False)}" for k, v in by.every_days.items())
            + f"; the others (survey.every_days) {base_en}")


def _legend(wb, d: Due, cfg, cols) -> None:
    """The workbook's sheet ``legend``, as the repair list's and the patrol log's: what the list is for, the day it
    plans for, the counts, the config's frequency and coverage rule, and each column's meaning, 日本語 and English;
    printed as the repair list's (``report.xlsx_legend_print``: one page wide, its notes wrapped and their rows sized
    to them, its own pages ``凡例 legend 1`` …), on A4 landscape."""
    from . import __version__
    from .report import _now, xlsx_legend_rows

    lg = wb.create_sheet("legend")
    for col, w in zip("ABC", (24, 60, 70)):
        lg.column_dimensions[col].width = w
    t = d.table
    n_due = int(d.due.sum())
    rows: list[tuple] = [("巡回予定 / Patrol due",), ()]
    if cfg is not None:
        rows += [("自治体 municipality", getattr(cfg, "municipality", "")),
                 ("作成日時 generated", _now(cfg).strftime("%Y-%m-%d %H:%M:%S %z"))]
    rows += [("version", f"road-patrol {__version__}"),
             ("基準日 as of (--at)", f"{d.at.isoformat()}: 計画する日 (--at、省略時は出力した日)。巡回期限がこの日以前 "
              "(超過日数 0 以上) の区間と未巡回の区間が巡回対象。この日より後の巡回は数えない",
              f"{d.at.isoformat()}: the day planned for (--at; default the day of the export). A segment is due when "
              "its due day is this day or before it (days_overdue 0 or more) or it was never surveyed; patrols after "
              "this day are not counted"),
             ("件数 segments", f"{len(t)} 区間 (巡回対象 {n_due}、うち未巡回 {int(t['never_surveyed'].sum())})"
              + (f"。定期巡回の対象外 {d.off_cycle} 区間は載せない" if d.off_cycle else "")
              + (f"。長さのない区間 (2 点が同じ位置) {d.no_length} 区間は載せない" if d.no_length else ""),
              f"{len(t)} segments ({n_due} due, {int(t['never_surveyed'].sum())} of them never surveyed)"
              + (f"; {d.off_cycle} segments on no patrol cycle left out" if d.off_cycle else "")
              + (f"; {d.no_length} segments of no length (two equal points) left out" if d.no_length else ""))]
    if cfg is not None:
        rows.append(("巡回頻度 frequency", *_frequency(cfg)))
        c = float(cfg.segments.min_coverage)
        r = float(cfg.segments.coverage_radius_m)
        h = float(getattr(cfg.locate, "heading_tolerance_deg", 60.0))
        rows.append(("巡回の判定 coverage rule",
                     f"ある日の撮影良好な画像が区間の {c:.0%} 以上 (segments.min_coverage) を覆った日を、その区間の巡回日"
                     f"とする。画像の位置から {r:g} m 以内 (segments.coverage_radius_m) で、進行方向が道路に沿う "
                     f"({h:g}° 以内、locate.heading_tolerance_deg) 部分を覆ったとみなす。同じ日の走行はあわせて数え、"
                     "別の日に分けて覆った分は足さない。時刻のない画像は数えない",
                     f"a day is a patrol of a segment when that day's good-look frames covered at least {c:.0%} of it "
                     f"(segments.min_coverage): the road within {r:g} m of a frame (segments.coverage_radius_m), "
                     f"heading along it (within {h:g}°, locate.heading_tolerance_deg). A day's drives count together; "
                     "parts covered on different days do not add up. Frames without a time are not counted"))
    rows += [("並び順 order", "未巡回 (巡回間隔の短い路線から)、次に超過日数の多い順",
              "never surveyed first (the most frequently patrolled first), then by days overdue, most first"),
             (), ("列 column", "見出し (ja): 説明", "heading (en): description")]
    kept = "道路台帳の項目 (roads.keep_fields)", "a road ledger field kept (roads.keep_fields)"
    rows += [(c, f"{ja}: {COLUMN_NOTES.get(c, kept)[0]}", f"{en}: {COLUMN_NOTES.get(c, kept)[1]}")
             for c, ja, en in cols]
    xlsx_legend_rows(lg, rows)  # (text never a formula: a road value of survey.by may start with "=")


def write_xlsx(d: Due, path: Path, cfg=None) -> None:
    """Sheet ``due``, headed ``ja`` over ``en`` as the repair list's workbook, printable (A4 landscape, one page wide,
    the date planned for in the page header), dates as Excel dates; sheet ``legend`` (``_legend``): the day, the
    frequency and coverage rule of the config, each column's meaning."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    from .report import xlsx_cell, xlsx_header, xlsx_print_setup

    cols = columns(d)
    wb = Workbook()
    ws = wb.active
    ws.title = "due"
    widths = xlsx_header(ws, cols)
    fmt = {"length_m": "0.0", "coverage": "0%", "every_days": "0", "days_overdue": "0"}
    for i, row in enumerate(d.table[[c for c, _, _ in cols]].itertuples(index=False, name=None), 2):
        for j, ((name, _, _), v) in enumerate(zip(cols, row), 1):
            if name in ("last_surveyed", "due") and v:
                v = date.fromisoformat(v)
            elif v is pd.NA:
                v = None
            elif isinstance(v, str) and not v:
                v = None
            widths[j - 1] = max(widths[j - 1], xlsx_cell(ws.cell(row=i, column=j), v, fmt.get(name), 8))
    for j, wd in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(j)].width = wd
    ws.freeze_panes = "B2"
    xlsx_print_setup(ws, len(cols), len(d.table))
    from .config import header_town

    who = header_town(cfg)
    ws.oddHeader.center.text = f"巡回予定 patrol due {d.at.isoformat()}" + (f" — {who}" if who else "")
    _legend(wb, d, cfg, cols)
    with atomic_write(path, "wb") as fh:
        buf = io.BytesIO()
        wb.save(buf)
        fh.write(buf.getvalue())


def write(d: Due, path: Path, cfg=None, meta: dict | None = None) -> None:
    """``d`` to ``path`` by its suffix (``DUE_FILES``): a list (csv, xlsx) or a map (geojson, gpkg)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        write_csv(d, path)
    elif suffix == ".xlsx":
        write_xlsx(d, path, cfg)
    elif suffix in SEGMENT_FILES:
        from . import qgisstyle

        write_segments(d.table, path, meta, layer=DUE_LAYER, style=qgisstyle.due)
    else:
        raise UsageError(f"{Path(path).name}: --format due writes X.csv, X.xlsx, X.geojson, X.json or X.gpkg",
                         field="--out")
