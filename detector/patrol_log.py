"""The patrol log (道路巡回日誌): ``patrol_log.csv`` (UTF-8 with BOM) and ``patrol_log.xlsx``, one row per drive of
a run (each drive is one patrol), with what a road administrator files for it: date, start and end time, distance
driven, road surveyed, the roads, frames, hits and damages per class, the registry's new / seen again with
``--store``, and the columns a person fills in (inspector, vehicle, weather, notes; inspector and vehicle
prefilled from ``cfg.patrol_log`` where set).

Where each number comes from (the same sources as the run's other outputs):

- ``date``, ``start``, ``end``: the drive's first and last ``ok`` frame time, on the config's ``timezone`` clock;
  ``duration`` the time between.
- ``distance_km``: along the drive's ``ok`` frame positions in time order (frame index where a frame has no time),
  haversine (``geo.distance_bearing``), vectorised. GPS jumps are not in it: the frames stage rejects them
  (``bad_gps``); a stretch without usable frames counts as the straight line across it.
- ``surveyed_km``, ``segments``, ``roads``: the drive's frames through ``segments.surveyed_by_drive``, the
  segment-level ``surveyed_m`` of segments.geojson (a run of this drive alone writes exactly these segments and
  metres; a run of several drives writes their union). ``roads``: ``name km; …`` longest first, unnamed segments
  summed as ``その他/other`` (last).
- ``frames_used`` / ``frames_rejected``: frames.csv's rows of the drive.
- ``poor_look_frames`` (撮影不良画像数): the used frames too dark, glared or blurred to show the road (frames.csv's
  ``look`` not empty, ``detector/look.py``), summary.json's ``frames.poor_look`` of the drive; ``poor_look_km``
  (撮影不良区間): of ``distance_km``, the steps between two such frames in a row (time order): road driven seen
  only in poor frames, where a damage could not have been seen (a patrol at dusk, into a low sun).
- ``hits`` and ``hits_<class>``: detections.csv's rows of the drive (their sum over the drives is summary.json's
  ``hits.total``).
- ``candidates`` and ``candidates_<class>``: the run's damages (candidates.geojson) this drive saw (its name in
  ``drives``); a damage seen on two drives counts on both rows.
- with ``--store``: ``new`` (damages new to the registry, counted on the drive that saw them first), ``seen_again``
  (damages this drive saw that the registry knew: from an earlier merge, or new on an earlier drive of this run),
  ``reopened`` (a repaired damage seen again, on the drive that saw it first); for a run of one drive these are
  summary.json's ``registry`` counts; ``passed_unseen`` (未検出通過): known damages the drive's frames drove past
  after their last sighting without seeing them (the registry's passes, ``n_unseen``), summary.json's
  ``registry.passed_unseen.by_drive``.

The workbook's second sheet ``roads`` has one row per drive and road: surveyed km, segments and the damages the
drive saw on that road per class (damages off the network: ``道路外/off the network``).
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from . import CLASS_IDS, __version__
from .atomic import BusyOutputs, atomic_write
from .export import _num, safe_cell
from .geo import distance_bearing

OTHER_ROADS = "その他/other"  # unnamed segments, summed
OFF_NETWORK = "道路外/off the network"  # damages placed on no segment
REGISTRY_COLUMNS = ("new", "seen_again", "reopened", "passed_unseen")
FILL_IN = [("inspector", "巡回者", "inspector"), ("vehicle", "車両", "vehicle"), ("weather", "天候", "weather"),
           ("notes", "備考", "notes")]


def log_columns(cfg, registry: bool = False) -> list[tuple[str, str, str]]:
    """(column, Japanese heading, English heading) of the log, the class columns named by the config."""
    def ja(c: str) -> str:
        return cfg.class_name(c, "ja") if cfg is not None else c

    cols = [("drive", "走行", "drive"), ("date", "巡回日", "date"), ("start", "開始時刻", "start"),
            ("end", "終了時刻", "end"), ("duration", "所要時間", "duration"),
            ("distance_km", "走行距離(km)", "distance driven (km)"),
            ("surveyed_km", "調査延長(km)", "road surveyed (km)"), ("segments", "調査区間数", "segments surveyed"),
            ("roads", "調査路線 (km)", "roads surveyed (km)"),
            ("frames_used", "使用画像数", "frames used"), ("frames_rejected", "除外画像数", "frames rejected"),
            ("poor_look_frames", "撮影不良画像数", "frames too dark, glared or blurred"),
            ("poor_look_km", "撮影不良区間(km)", "driven in poor frames only (km)"),
            ("hits", "検出数", "hits")]
    cols += [(f"hits_{c}", f"{ja(c)} 検出数", f"{c} hits") for c in CLASS_IDS]
    cols += [("candidates", "損傷件数", "damages")]
    cols += [(f"candidates_{c}", f"{ja(c)} 件数", f"{c} damages") for c in CLASS_IDS]
    if registry:
        cols += [("new", "新規", "new"), ("seen_again", "再確認", "seen again"), ("reopened", "再発", "reopened"),
                 ("passed_unseen", "未検出通過", "passed unseen")]
    return cols + FILL_IN


def road_columns(cfg) -> list[tuple[str, str, str]]:
    """The ``roads`` sheet's columns."""
    ja = (lambda c: cfg.class_name(c, "ja")) if cfg is not None else (lambda c: c)
    return ([("drive", "走行", "drive"), ("date", "巡回日", "date"), ("road_name", "路線名", "road name"),
             ("surveyed_km", "調査延長(km)", "road surveyed (km)"), ("segments", "調査区間数", "segments surveyed"),
             ("candidates", "損傷件数", "damages")]
            + [(f"candidates_{c}", f"{ja(c)} 件数", f"{c} damages") for c in CLASS_IDS])


def _frames_df(frames) -> pd.DataFrame:
    return pd.DataFrame({
        "drive": [f.drive for f in frames], "index": [f.index for f in frames],
        "status": [f.status for f in frames], "camera": [f.camera for f in frames],
        "time": [f.time for f in frames], "look": [getattr(f, "look", "") or "" for f in frames],
        "lat": np.array([f.lat for f in frames], float), "lon": np.array([f.lon for f in frames], float),
        "heading": np.array([f.heading for f in frames], float)})


def step_m(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Metres of each step between neighbours in the given order (haversine; ``[i]``: from position i to i + 1)."""
    if len(lat) < 2:
        return np.zeros(0)
    return distance_bearing(lat[:-1], lon[:-1], lat[1:], lon[1:])[0]


def _first_drive(row, order: dict[str, int]) -> str | None:
    """The drive of a damage's first sighting in this run (``observations`` are in time order), else its first
    drive in the run's order."""
    obs = row.get("observations")
    if isinstance(obs, (list, tuple, np.ndarray)) and len(obs) and isinstance(obs[0], dict) and obs[0].get("drive"):
        return str(obs[0]["drive"])
    ds = _drives(row.get("drives"))
    return min(ds, key=lambda d: order.get(d, len(order))) if ds else None


def _drives(v) -> list[str]:
    if isinstance(v, (list, tuple, np.ndarray)):
        return [str(x) for x in v]
    return [v] if isinstance(v, str) and v else []


def build(drives: list[str], frames, det, cands: pd.DataFrame, net, cfg,
          outcome: dict[str, str] | None = None,
          passed: dict[str, list[str]] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The log (one row per drive of ``drives``, in that order) and the per-road table. ``frames``: the run's
    Frame records (frames.csv); ``det``: its Detections; ``cands``: the candidates as the run writes them (with
    ``--store``: registry ids); ``outcome``: registry id -> ``new`` / ``seen_again`` / ``reopened`` /
    ``already_there`` of the merge, None without ``--store``; ``passed``: drive -> the registry damages it drove past
    without a sighting (``store.MergeResult.passed_unseen_by_drive``; None: not known, the column left empty)."""
    from .segments import surveyed_by_drive

    tz = cfg.tz
    fdf = _frames_df(frames)
    order = {d: i for i, d in enumerate(drives)}
    crecs = cands.to_dict("records") if cands is not None and len(cands) else []
    cdrives = [set(_drives(r.get("drives"))) for r in crecs]
    cfirst = [_first_drive(r, order) for r in crecs]
    ccls = [str(r.get("class")) for r in crecs]
    cseg = [str(r.get("segment_id") or "") if r.get("segment_id") == r.get("segment_id") else "" for r in crecs]
    cname = [str(r.get("road_name") or "") if r.get("road_name") == r.get("road_name") else "" for r in crecs]
    cid = [str(r.get("candidate_id")) for r in crecs]
    det_drive = np.asarray(det.drive, dtype=object) if det is not None and len(det) else np.zeros(0, object)
    det_cls = np.asarray(det.class_id, dtype=object) if det is not None and len(det) else np.zeros(0, object)
    # one pass over the candidates and the detections, not one per drive (a week's drives x a long drive's damages)
    seen_by: dict[str, list[int]] = {}
    for i, ds in enumerate(cdrives):
        for d in ds:
            seen_by.setdefault(d, []).append(i)
    det_codes, det_keys = pd.factorize(pd.Series(det_drive, dtype=object)) if len(det_drive) else (np.zeros(0, int), [])
    det_n = dict(zip(det_keys, np.bincount(det_codes, minlength=len(det_keys)))) if len(det_drive) else {}
    det_cls_n = (pd.DataFrame({"d": det_drive, "c": det_cls}).groupby(["d", "c"], sort=False).size().to_dict()
                 if len(det_drive) else {})
    pl = getattr(cfg, "patrol_log", None)
    fby = dict(tuple(fdf.groupby("drive", sort=False))) if len(fdf) else {}
    empty = fdf.iloc[:0]
    mine_of, pos_of = {}, {}
    for d in drives:
        mine = fby.get(d, empty)
        ok = mine[mine["status"] == "ok"]
        mine_of[d] = (mine, ok)
        pos_of[d] = ok[np.isfinite(ok["lat"].to_numpy()) & np.isfinite(ok["lon"].to_numpy())].sort_values(
            "index", kind="mergesort")  # frames.csv's order: segments.geojson's frames, in its order
    sv_of = surveyed_by_drive(net, {d: pos_of[d][["lat", "lon", "heading", "status"]] for d in drives}, cfg)
    rows, road_rows = [], []
    for d in drives:
        mine, ok = mine_of[d]
        row: dict = {"drive": d, "frames_used": len(ok), "frames_rejected": len(mine) - len(ok),
                     "poor_look_frames": int((ok["look"] != "").sum())}
        times = [t.astimezone(tz) for t in ok["time"] if isinstance(t, datetime)]
        start = min(times) if times else None
        end = max(times) if times else None
        row.update(date=start.date() if start else None, start=start, end=end,
                   duration=(end - start) if start else None)
        pos = pos_of[d]
        along = pos
        if len(pos) and all(isinstance(t, datetime) for t in pos["time"]):
            along = pos.assign(_t=[t.timestamp() for t in pos["time"]]).sort_values("_t", kind="mergesort")
        steps = step_m(along["lat"].to_numpy(), along["lon"].to_numpy())  # (once for both distances)
        row["distance_km"] = round(float(np.sum(steps)) / 1000.0, 3)
        poor = along["look"].to_numpy() != ""
        both = poor[:-1] & poor[1:]  # a step between two poor frames: nothing on it was seen
        row["poor_look_km"] = round(float(np.sum(steps[both])) / 1000.0, 3)
        sv = sv_of[d]
        row["surveyed_km"] = round(float(sv["surveyed_m"].sum()) / 1000.0, 3)
        row["segments"] = len(sv)
        by_road = sv.assign(road=sv["road_name"].where(sv["road_name"] != "", OTHER_ROADS)).groupby("road")
        km = by_road["surveyed_m"].sum() / 1000.0
        nseg = by_road.size()
        named = sorted((r for r in km.index if r != OTHER_ROADS), key=lambda r: (-km[r], r))
        listed = named + ([OTHER_ROADS] if OTHER_ROADS in km.index else [])
        row["roads"] = "; ".join(f"{r} {km[r]:.3f} km" for r in listed)
        row["hits"] = int(det_n.get(d, 0))
        for c in CLASS_IDS:
            row[f"hits_{c}"] = int(det_cls_n.get((d, c), 0))
        seen = seen_by.get(d, [])
        row["candidates"] = len(seen)
        for c in CLASS_IDS:
            row[f"candidates_{c}"] = sum(ccls[i] == c for i in seen)
        if outcome is not None:
            got = [outcome.get(cid[i]) for i in seen]
            first = [cfirst[i] == d for i in seen]
            row["new"] = sum(g == "new" and f for g, f in zip(got, first))
            row["reopened"] = sum(g == "reopened" and f for g, f in zip(got, first))
            row["seen_again"] = sum(g == "seen_again" or (g in ("new", "reopened") and not f)
                                    for g, f in zip(got, first))
            row["passed_unseen"] = len(passed.get(d, ())) if passed is not None else None
        row["inspector"] = (getattr(pl, "inspector", None) or "") if pl is not None else ""
        row["vehicle"] = (getattr(pl, "vehicle", None) or "") if pl is not None else ""
        row["weather"] = row["notes"] = ""
        rows.append(row)
        # per road: the surveyed roads, longest first, then the roads (or no road) of damages seen elsewhere
        road_of = {}
        for i in seen:
            road_of.setdefault(OFF_NETWORK if not cseg[i] else (cname[i] or OTHER_ROADS), []).append(ccls[i])
        for r in listed + sorted(set(road_of) - set(listed), key=lambda r: (r == OFF_NETWORK, r)):
            cls = road_of.get(r, [])
            rr = {"drive": d, "date": row["date"], "road_name": r,
                  "surveyed_km": round(float(km[r]), 3) if r in km.index else 0.0,
                  "segments": int(nseg[r]) if r in nseg.index else 0, "candidates": len(cls)}
            rr.update({f"candidates_{c}": cls.count(c) for c in CLASS_IDS})
            road_rows.append(rr)
    cols = [c for c, *_ in log_columns(cfg, outcome is not None)]
    return (pd.DataFrame(rows, columns=cols),
            pd.DataFrame(road_rows, columns=[c for c, *_ in road_columns(cfg)]))


# ---------------------------------------------------------------------------------------------------- writing


def _duration_text(td: timedelta | None) -> str:
    if td is None or pd.isna(td):
        return ""
    s = int(round(td.total_seconds()))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _known(v) -> bool:
    """A date or time that is there: not None, not pandas' NaT (a drive without a timed frame, in a column pandas made
    datetime64 beside the other drives' times: NaT is a datetime to isinstance, and has no strftime)."""
    return isinstance(v, date) and not pd.isna(v)


def _time_text(t: datetime | None, day: date | None) -> str:
    """``HH:MM:SS``; a time on a later day than the patrol's date (past midnight) with its date."""
    if not isinstance(t, datetime) or not _known(t):
        return ""
    return t.strftime("%H:%M:%S") if day is None or t.date() == day else t.strftime("%Y-%m-%d %H:%M:%S")


def _csv_cell(name: str, v, row: dict) -> str:
    if name == "date":
        return v.isoformat() if _known(v) else ""
    if name in ("start", "end"):
        return _time_text(v, row.get("date"))
    if name == "duration":
        return _duration_text(v)
    if name in ("distance_km", "surveyed_km", "poor_look_km"):
        return _num(v, 3)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return safe_cell(v)


def write_csv(log: pd.DataFrame, path: Path, cfg) -> None:
    """patrol_log.csv: UTF-8 with BOM (opens in Japanese Excel), a header of the column names (``log_columns``)."""
    cols = list(log.columns)
    with atomic_write(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(cols)
        for r in log.to_dict("records"):
            w.writerow([_csv_cell(c, r[c], r) for c in cols])


def _xlsx_sheet(ws, df: pd.DataFrame, cols: list[tuple[str, str, str]]) -> None:
    from openpyxl.utils import get_column_letter

    from .report import xlsx_cell, xlsx_header, xlsx_print_setup

    widths = xlsx_header(ws, cols)
    for i, r in enumerate(df.to_dict("records"), 2):
        for j, (name, _, _) in enumerate(cols, 1):
            v = r.get(name)
            if name in ("start", "end") and isinstance(v, datetime) and _known(v):
                # a time of day; one on a later day than the patrol's date (past midnight) with its date
                if not (_known(r.get("date")) and v.date() != r.get("date")):
                    v = time(v.hour, v.minute, v.second)
            widths[j - 1] = max(widths[j - 1], xlsx_cell(ws.cell(row=i, column=j), v,
                                                         "0.000" if name.endswith("_km") else None))
    for name in ("inspector", "vehicle", "weather", "notes"):  # room to write by hand on the printout
        j = next((k for k, (c, *_) in enumerate(cols, 1) if c == name), None)
        if j is not None:
            widths[j - 1] = max(widths[j - 1], 24 if name == "notes" else 14)
    for j, w in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(j)].width = w
    ws.freeze_panes = "B2"
    xlsx_print_setup(ws, len(cols), len(df))


def write_xlsx(log: pd.DataFrame, roads: pd.DataFrame, path: Path, cfg) -> None:
    """patrol_log.xlsx: sheet ``patrol_log`` (the csv's rows, headed 日本語 over English, dates and times as Excel
    dates and times), sheet ``roads`` (per drive and road), sheet ``legend``; printed A4 landscape, one page wide,
    the header row on every page (``report.xlsx_print_setup``, as the repair list's workbook)."""
    from openpyxl import Workbook

    from .report import _now, xlsx_font, xlsx_legend_print

    wb = Workbook()
    ws = wb.active
    ws.title = "patrol_log"
    cols = log_columns(cfg, registry="new" in log.columns)
    _xlsx_sheet(ws, log, cols)
    from .config import header_town

    ws.oddHeader.center.text = "道路巡回日誌 / patrol log" + (f"  {header_town(cfg)}" if header_town(cfg) else "")
    rs = wb.create_sheet("roads")
    _xlsx_sheet(rs, roads, road_columns(cfg))
    rs.oddHeader.center.text = "路線別 調査延長・損傷 / roads surveyed"
    lg = wb.create_sheet("legend")
    r = float(cfg.segments.coverage_radius_m)  # (segments.coverage_radius_m: how far a frame surveys)
    for col, w in zip("ABC", (24, 40, 50)):
        lg.column_dimensions[col].width = w
    rows: list[tuple] = [("道路巡回日誌 / Patrol log",), (),
                         ("自治体 municipality", getattr(cfg, "municipality", "")),
                         ("作成日時 generated", _now(cfg).strftime("%Y-%m-%d %H:%M:%S %z")),
                         ("version", f"road-patrol {__version__}"),
                         ("時刻 times", f"現地時刻 {getattr(cfg, 'timezone', '')}",
                          "the municipality's local time (config timezone): first and last used frame"),
                         ("走行距離 distance", "使用画像の位置を時刻順に結んだ距離",
                          "along the used frames' positions in time order"),
                         ("調査延長 surveyed", "segments.geojson の区間の surveyed_m の合計: 使用画像から "
                          f"{r:g} m 以内の道路。最初と最後の画像の先 {r:g} m と交差点の脇道も含むため、走行距離より"
                          "長いことがある",
                          "sum of the segments' surveyed_m as in segments.geojson (this drive's frames): the road "
                          f"within {r:g} m of a used frame, so it reaches {r:g} m past the first and last frame and "
                          "into side roads at junctions: it can exceed the distance driven"),
                         ("撮影不良 poor look", "暗すぎる・白飛び・ぶれで路面が見えない使用画像の数 (frames.csv の look)。"
                          "撮影不良区間: そのような画像が続いた区間の走行距離。この区間の損傷は確認されていない",
                          "used frames too dark, glared or blurred to show the road (frames.csv look); km: the "
                          "distance driven between such frames in a row: damages there were not checked"),
                         (), ("列 column", "見出し (ja)", "heading (en)")]
    rows += [(c, ja, en) for c, ja, en in cols]
    for r in rows:
        lg.append(list(r))
        if r and r[0] == "列 column":
            for c in lg[lg.max_row]:
                c.font = xlsx_font(bold=True)
    lg["A1"].font = xlsx_font(bold=True, size=14)
    xlsx_legend_print(lg)  # as the repair list's: one page wide, its long notes wrapped whole, its own page numbers
    with atomic_write(path, "wb") as fh:
        buf = io.BytesIO()
        wb.save(buf)
        fh.write(buf.getvalue())


def write_patrol_log(drives: list[str], frames, det, cands, net, cfg, out: Path, summary=None,
                     busy: BusyOutputs | None = None) -> None:
    """OUT/patrol_log.csv and OUT/patrol_log.xlsx for the run's drives (``summary.registry_outcome`` gives the
    registry's new / seen again with ``--store``); each noted in ``summary.outputs``. ``busy``: as for
    ``pipeline.write_candidate_outputs`` (a workbook open in Excel: the other file is still written)."""
    outcome = getattr(summary, "registry_outcome", None) if summary is not None and summary.new is not None else None
    passed = getattr(summary, "passed_unseen_by_drive", None) if outcome is not None else None
    log, roads = build(drives, frames, det, cands, net, cfg, outcome, passed)
    own = busy is None
    busy = BusyOutputs() if own else busy
    with busy.write():
        write_csv(log, out / "patrol_log.csv", cfg)
    with busy.write():
        write_xlsx(log, roads, out / "patrol_log.xlsx", cfg)
    if summary is not None:
        summary.outputs["patrol_log"] = out / "patrol_log.csv"
        summary.outputs["patrol_log_xlsx"] = out / "patrol_log.xlsx"
    if own:
        busy.check()
