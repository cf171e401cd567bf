"""patrol_log.csv / patrol_log.xlsx (道路巡回日誌) on the real sample drive: one row per drive, every number the same
as the run's other outputs say (segments.geojson's surveyed_m, detections.csv, candidates.geojson, summary.json,
frames.csv), the workbook printable. The sample network has no road names: the runs use a copy (in tmp) with names
on two of its ways, so the per-road lengths are checked too."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from conftest import TOYAMA, need
from test_cli import ok, patrol

P1, P2 = "toyama-2026-11-p1", "toyama-2026-11-p2"
CLASSES = ("D00", "D10", "D20", "D40")


def _read_csv(path: Path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM, as the other lists: opens in Japanese Excel
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _segments(out: Path) -> list[dict]:
    doc = json.loads((out / "segments.geojson").read_text(encoding="utf-8"))
    return [f["properties"] for f in doc["features"] if f["properties"]["level"] == "segment"]


def _named_roads(tmp: Path) -> tuple[Path, dict[str, str]]:
    """The sample network (no names) with a ``name`` on the segments near the drive: the first 40 % of them (by id)
    one road, the next 30 % another, the rest unnamed."""
    doc = json.loads(need(TOYAMA / "roads.geojson").read_text(encoding="utf-8"))
    # the segments of the drive: those with a vertex near the positions of its hits (the frames' positions)
    with open(need(TOYAMA / f"{P1}.oracle.csv"), encoding="utf-8") as fh:
        pts = [(float(r["lat"]), float(r["lon"])) for r in csv.DictReader(fh)]
    near = sorted(f["properties"]["segment_id"] for f in doc["features"] if f["geometry"]["type"] == "LineString"
                  and any(abs(y - a) < 3e-4 and abs(x - b) < 4e-4 for x, y in f["geometry"]["coordinates"]
                          for a, b in pts))
    assert len(near) >= 10
    cut1, cut2 = int(0.4 * len(near)), int(0.7 * len(near))
    names = {**{s: "国道41号" for s in near[:cut1]}, **{s: "市道 堀川線" for s in near[cut1:cut2]}}
    for f in doc["features"]:
        if f["properties"]["segment_id"] in names:
            f["properties"]["name"] = names[f["properties"]["segment_id"]]
    p = tmp / "roads-named.geojson"
    p.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return p, names


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """p1 + p2 into a registry (vehicle from --vehicle, inspector from the config), and p1 alone (its own
    segments.geojson: the drive's surveyed metres as segments.geojson gives them)."""
    d = tmp_path_factory.mktemp("plog")
    roads, names = _named_roads(d)
    cfg = d / "city.yaml"  # no blur (the slow part of crops; not what is tested here)
    cfg.write_text("privacy:\n  blur_faces: false\n  blur_plates: false\npatrol_log:\n  inspector: 道路維持課 山田\n",
                   encoding="utf-8")
    p1, p2 = need(TOYAMA / P1), need(TOYAMA / P2)
    both, alone, store = d / "both", d / "p1", d / "registry.gpkg"
    r = ok(patrol("run", p1, p2, "--roads", roads, "--out", both, "--config", cfg, "--store", store,
                  "--vehicle", "富山 300 さ 12-34"))
    ok(patrol("run", p1, "--roads", roads, "--out", alone, "--config", cfg))
    return {"dir": d, "both": both, "p1": alone, "roads": roads, "names": names, "cfg": cfg, "stdout": r.stdout}


def test_one_row_per_drive_with_its_times(runs):
    """Two passes, two patrols: each row's date, start and end are its first and last used frame on the config's
    clock (frames.csv), the duration between; frames used/rejected are frames.csv's rows of that drive."""
    rows = _read_csv(runs["both"] / "patrol_log.csv")
    assert [r["drive"] for r in rows] == [P1, P2]
    with open(runs["both"] / "frames.csv", encoding="utf-8", newline="") as fh:
        frames = list(csv.DictReader(fh))
    for r in rows:
        mine = [f for f in frames if f["drive"] == r["drive"]]
        t = sorted(datetime.fromisoformat(f["time"]) for f in mine if f["status"] == "ok")
        assert r["date"] == t[0].date().isoformat()
        assert (r["start"], r["end"]) == (t[0].strftime("%H:%M:%S"), t[-1].strftime("%H:%M:%S"))
        s = int((t[-1] - t[0]).total_seconds())
        assert r["duration"] == f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
        assert int(r["frames_used"]) == sum(f["status"] == "ok" for f in mine) == 100
        assert int(r["frames_rejected"]) == sum(f["status"] != "ok" for f in mine) == 4
        # 撮影不良: frames.csv's used frames with a look (the sample's daylight frames: none), summary.json's
        assert int(r["poor_look_frames"]) == sum(f["status"] == "ok" and f["look"] != "" for f in mine) == 0
        assert r["poor_look_km"] == "0.000"
    assert (rows[0]["date"], rows[1]["date"]) == ("2026-11-20", "2026-11-27")


def test_distance_driven_along_the_used_frames(runs):
    """distance_km: along the drive's used frames in time order (an independent haversine, one pair at a time)."""
    rows = {r["drive"]: r for r in _read_csv(runs["both"] / "patrol_log.csv")}
    with open(runs["both"] / "frames.csv", encoding="utf-8", newline="") as fh:
        frames = [f for f in csv.DictReader(fh) if f["status"] == "ok"]
    for drive, r in rows.items():
        pts = sorted((datetime.fromisoformat(f["time"]), float(f["lat"]), float(f["lon"]))
                     for f in frames if f["drive"] == drive)
        m = 0.0
        for (_, a, b), (_, c, d) in zip(pts, pts[1:]):
            h = (math.sin(math.radians(c - a) / 2) ** 2
                 + math.cos(math.radians(a)) * math.cos(math.radians(c)) * math.sin(math.radians(d - b) / 2) ** 2)
            m += 2 * 6_371_008.8 * math.asin(math.sqrt(h))
        assert abs(float(r["distance_km"]) - m / 1000) < 0.0015, (drive, r["distance_km"], m)
        assert 0.9 < float(r["distance_km"]) < 1.3  # ~1.1 km in 2:20 (28 km/h)


def test_surveyed_km_is_segments_geojson_of_the_drive(runs):
    """The drive's road surveyed is the sum of segments.geojson's segment-level surveyed_m for that drive (the run of
    p1 alone), and its segments those with surveyed_m > 0: in p1's own run and on p1's row of the two-drive run."""
    segs = [s for s in _segments(runs["p1"]) if s["surveyed_m"] > 0]
    want_km = round(sum(s["surveyed_m"] for s in segs) / 1000, 3)
    for out in (runs["p1"], runs["both"]):
        row = next(r for r in _read_csv(out / "patrol_log.csv") if r["drive"] == P1)
        assert float(row["surveyed_km"]) == want_km
        assert int(row["segments"]) == len(segs)
    # the two-drive run's segments.geojson is the union of the passes: each row at most that, together at least
    both = sum(s["surveyed_m"] for s in _segments(runs["both"])) / 1000
    rows = _read_csv(runs["both"] / "patrol_log.csv")
    assert all(float(r["surveyed_km"]) <= both + 1e-9 for r in rows)
    assert sum(float(r["surveyed_km"]) for r in rows) >= both - 0.002


def test_roads_by_name_longest_first_unnamed_as_other(runs):
    """roads: each road name with its km as segments.geojson gives them (road_name of each segment), longest first,
    the unnamed segments summed as その他/other at the end; the workbook's roads sheet has the same."""
    km = defaultdict(float)
    for s in _segments(runs["p1"]):
        if s["surveyed_m"] > 0:
            km[s["road_name"] or "その他/other"] += s["surveyed_m"] / 1000
    named = sorted((n for n in km if n != "その他/other"), key=lambda n: -km[n])
    assert set(named) == set(runs["names"].values())  # the sample drive runs on both named ways
    want = "; ".join(f"{n} {km[n]:.3f} km" for n in named + ["その他/other"])
    row = next(r for r in _read_csv(runs["p1"] / "patrol_log.csv") if r["drive"] == P1)
    assert row["roads"] == want

    from openpyxl import load_workbook

    ws = load_workbook(runs["p1"] / "patrol_log.xlsx")["roads"]
    got = [r for r in ws.iter_rows(min_row=2, values_only=True) if r[0] == P1]
    assert [(r[2], r[3]) for r in got][:len(km)] == [(n, round(km[n], 3)) for n in named + ["その他/other"]]


def test_hits_and_damages_per_drive_and_class_agree_with_the_run(runs):
    """hits per drive and class are detections.csv's, and add up to summary.json's hits.total; damages per drive are
    candidates.geojson's damages that drive saw; for a run of one drive both are summary.json's numbers."""
    for out in (runs["both"], runs["p1"]):
        rows = _read_csv(out / "patrol_log.csv")
        doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        with open(out / "detections.csv", encoding="utf-8", newline="") as fh:
            det = Counter((r["drive"], r["class"]) for r in csv.DictReader(fh))
        feats = [f["properties"] for f in
                 json.loads((out / "candidates.geojson").read_text(encoding="utf-8"))["features"]]
        for r in rows:
            assert int(r["hits"]) == sum(n for (d, _), n in det.items() if d == r["drive"])
            seen = [f for f in feats if r["drive"] in f["drives"]]
            assert int(r["candidates"]) == len(seen)
            for c in CLASSES:
                assert int(r[f"hits_{c}"]) == det[(r["drive"], c)]
                assert int(r[f"candidates_{c}"]) == sum(f["class"] == c for f in seen)
        assert sum(int(r["hits"]) for r in rows) == doc["hits"]["total"]
        if len(rows) == 1:
            assert int(rows[0]["candidates"]) == doc["candidates"] == len(feats)
    rows = _read_csv(runs["both"] / "patrol_log.csv")
    assert [int(r["candidates"]) for r in rows] == [31, 29]


def test_registry_new_and_seen_again_per_drive(runs):
    """With --store: a damage new to the registry counts as new on the drive that saw it first (so the new add up to
    summary.json's), and as seen again on a later drive of the run; each drive's damages are new, seen again or
    reopened. Without --store the columns are not there."""
    rows = _read_csv(runs["both"] / "patrol_log.csv")
    doc = json.loads((runs["both"] / "summary.json").read_text(encoding="utf-8"))
    assert sum(int(r["new"]) for r in rows) == doc["registry"]["new"] == 31
    assert [(int(r["new"]), int(r["seen_again"]), int(r["reopened"])) for r in rows] == [(31, 0, 0), (0, 29, 0)]
    assert all(int(r["new"]) + int(r["seen_again"]) + int(r["reopened"]) == int(r["candidates"]) for r in rows)
    assert "new" not in _read_csv(runs["p1"] / "patrol_log.csv")[0]
    # 未検出通過: the damages each drive drove past after their last sighting unseen, as summary.json counts them (one
    # run of both passes: p1 drove past nothing after it was seen, a damage p1 saw and p2 missed is p2's)
    unseen = doc["registry"]["passed_unseen"]
    assert {r["drive"]: int(r["passed_unseen"]) for r in rows} == unseen["by_drive"]
    assert unseen["by_drive"][P1] == 0 and unseen["damages"] == 0  # (the run saw each: p1 did)
    assert "passed_unseen" not in _read_csv(runs["p1"] / "patrol_log.csv")[0]


def test_fill_in_columns_prefilled_from_config_and_cli(runs):
    """巡回者 from the config's patrol_log.inspector, 車両 from --vehicle, 天候 and 備考 blank for the person."""
    rows = _read_csv(runs["both"] / "patrol_log.csv")
    assert list(rows[0])[-4:] == ["inspector", "vehicle", "weather", "notes"]
    assert {(r["inspector"], r["vehicle"], r["weather"], r["notes"]) for r in rows} == {
        ("道路維持課 山田", "富山 300 さ 12-34", "", "")}
    assert {r["vehicle"] for r in _read_csv(runs["p1"] / "patrol_log.csv")} == {""}  # no --vehicle: blank


def test_workbook_prints_on_a4_landscape_with_bilingual_headers(runs):
    """patrol_log.xlsx: the csv's rows, headed 日本語 over English (class names from the config), dates and times as
    Excel dates and times, printed A4 landscape one page wide with the header row on every page; listed in the
    summary."""
    from openpyxl import load_workbook

    wb = load_workbook(runs["both"] / "patrol_log.xlsx")
    assert wb.sheetnames == ["patrol_log", "roads", "legend"]
    ws = wb["patrol_log"]
    head = [c.value for c in ws[1]]
    assert head[:3] == ["走行\ndrive", "巡回日\ndate", "開始時刻\nstart"]
    assert "ポットホール 件数\nD40 damages" in head and "巡回者\ninspector" in head and "天候\nweather" in head
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    csv_rows = _read_csv(runs["both"] / "patrol_log.csv")
    assert len(rows) == 2
    for r, c in zip(rows, csv_rows):
        assert r[0] == c["drive"] and r[1].date() == date.fromisoformat(c["date"])
        assert isinstance(r[2], time) and r[2].strftime("%H:%M:%S") == c["start"]
        assert isinstance(r[4], timedelta) and r[6] == float(c["surveyed_km"])
    for sheet in (ws, wb["roads"]):
        assert int(sheet.page_setup.paperSize) == 9 and sheet.page_setup.orientation == "landscape"
        assert sheet.print_title_rows == "$1:$1" and 10 <= int(sheet.page_setup.scale) <= 100  # one page wide
        assert sheet.oddFooter.center.text == "&P / 1" and sheet.page_setup.firstPageNumber == 1  # its own pages
    assert all(ws.column_dimensions[k].width >= 10 for k in "ABCDE")
    doc = json.loads((runs["both"] / "summary.json").read_text(encoding="utf-8"))
    assert doc["outputs"]["patrol_log"] == "patrol_log.csv" and doc["outputs"]["patrol_log_xlsx"] == "patrol_log.xlsx"


def test_locate_writes_the_log_where_frames_csv_is_beside(runs, tmp_path):
    """patrol locate on a run's detections.csv (its frames.csv beside it) writes the same log rows; on detections
    without frames.csv (the oracle files) it writes none."""
    out = tmp_path / "loc"
    ok(patrol("locate", runs["p1"] / "detections.csv", "--roads", runs["roads"], "--out", out,
              "--config", runs["cfg"]))
    assert _read_csv(out / "patrol_log.csv") == _read_csv(runs["p1"] / "patrol_log.csv")
    ok(patrol("locate", need(TOYAMA / f"{P1}.oracle.csv"), "--roads", runs["roads"], "--out", tmp_path / "oracle"))
    assert not (tmp_path / "oracle" / "patrol_log.csv").exists()


def test_locate_logs_a_drive_without_hits_from_its_frames(runs, tmp_path):
    """patrol locate of detections where one drive had no hit over the thresholds (a clean road), its frames.csv
    beside: that patrol still gets its row (times, distance, road surveyed from its frames; no hits, no damages), as
    patrol run writes it; before, the log's drives were the detections' only and the clean patrol was left out."""
    src = tmp_path / "p2clean"
    src.mkdir()
    with open(runs["both"] / "detections.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    drive_col = rows[0].index("drive")
    with open(src / "detections.csv", "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([rows[0]] + [r for r in rows[1:] if r[drive_col] != P2])
    (src / "frames.csv").write_bytes((runs["both"] / "frames.csv").read_bytes())
    out = tmp_path / "loc"
    ok(patrol("locate", src / "detections.csv", "--roads", runs["roads"], "--out", out, "--config", runs["cfg"]))
    got = {r["drive"]: r for r in _read_csv(out / "patrol_log.csv")}
    assert list(got) == [P1, P2]
    run_p2 = {r["drive"]: r for r in _read_csv(runs["both"] / "patrol_log.csv")}[P2]
    for k in ("date", "start", "end", "duration", "distance_km", "surveyed_km", "segments", "roads", "frames_used",
              "frames_rejected"):
        assert got[P2][k] == run_p2[k], k
    assert got[P2]["hits"] == "0" and got[P2]["candidates"] == "0"


def test_legend_explains_surveyed_longer_than_driven(runs):
    """The sample's drives survey more road than they drive (the road within segments.coverage_radius_m of a frame:
    past the first and last frame, into side roads at junctions): the workbook's legend says why, with the radius,
    so an office does not take 調査延長 > 走行距離 for an error."""
    from openpyxl import load_workbook

    rows = _read_csv(runs["both"] / "patrol_log.csv")
    assert any(float(r["surveyed_km"]) > float(r["distance_km"]) for r in rows), rows
    legend = {r[0]: r[1:] for r in load_workbook(runs["both"] / "patrol_log.xlsx")["legend"].iter_rows(
        values_only=True) if r and r[0]}
    ja, en = legend["調査延長 surveyed"][:2]
    assert "15 m" in ja and "走行距離より長い" in ja and "脇道" in ja
    assert "within 15 m" in en and "can exceed the distance driven" in en and "side roads" in en
    # printed whole, as the repair list's legend: one page wide, the long note's row as high as its wrapped lines
    # (a renderer does not grow a row: one line of it printed, the rest cut), its own page numbers
    lg = load_workbook(runs["both"] / "patrol_log.xlsx")["legend"]
    row = next(c.row for c in lg["A"] if c.value == "調査延長 surveyed")
    assert lg.row_dimensions[row].height >= 3 * 15 and lg.cell(row, 3).alignment.wrap_text
    assert lg.sheet_properties.pageSetUpPr.fitToPage and lg.page_setup.fitToWidth == 1
    assert lg.oddFooter.center.text == "凡例 legend &P"


def test_network_prepared_once_for_all_drives(runs, tmp_path, monkeypatch):
    """The log of a run of several drives prepares the road network (merged lines, their STRtree) once, not once per
    drive (on a city's network that costs more than a drive's frames: bench_long_drive), and writes the same rows
    as the two-drive run (p1's surveyed metres those of p1 alone: test above)."""
    import detector.patrol_log as plog
    import detector.segments as segments
    from detector.config import load_config
    from detector.pipeline import locate_only

    calls = {"in_log": 0}
    inside = {"on": False}
    lines, build = segments._lines, plog.build

    def counted(gdf):
        calls["in_log"] += inside["on"]
        return lines(gdf)

    def traced(*a, **k):
        inside["on"] = True
        try:
            return build(*a, **k)
        finally:
            inside["on"] = False

    monkeypatch.setattr(segments, "_lines", counted)
    monkeypatch.setattr(plog, "build", traced)
    out = tmp_path / "loc"
    locate_only([runs["both"] / "detections.csv"], runs["roads"], out, load_config(runs["cfg"]))
    assert calls["in_log"] == 1
    got = {r["drive"]: r for r in _read_csv(out / "patrol_log.csv")}
    want = {r["drive"]: r for r in _read_csv(runs["both"] / "patrol_log.csv")}
    assert set(got) == set(want) == {P1, P2}
    for d in got:
        for k in ("surveyed_km", "segments", "roads", "distance_km", "frames_used", "hits", "candidates"):
            assert got[d][k] == want[d][k], (d, k)


def test_poor_look_frames_and_km_per_drive(tmp_path):
    """撮影不良: a patrol whose frames could not show the road says so on its row. Eight frames of p2 (a copy in tmp)
    of which four in a row darkened as at night, eight of p1 as they are, their look measured for real by the detect
    stage: p2's row counts 4 poor frames and the road driven between them (three steps, an independent haversine),
    p1's 0 and 0.000 km; the same as summary.json's frames.poor_look; in the csv, the workbook and its legend."""
    import shutil

    import cv2
    import numpy as np
    from openpyxl import load_workbook

    from detector.config import Config
    from detector.frames import scan_drive
    from detector.patrol_log import build, write_csv, write_xlsx
    from detector.pipeline import Manifest, RunSummary, _fill_frame_counts, stage_detect
    from detector.roads import load_roads
    from test_look import NoBoxes

    cfg = Config()
    p1 = [f for f in scan_drive(need(TOYAMA / P1), cfg) if f.ok][:8]
    p2 = [f for f in scan_drive(need(TOYAMA / P2), cfg) if f.ok][:8]
    (tmp_path / P2).mkdir()
    for f in p2:
        shutil.copy(f.path, tmp_path / P2 / f.name)
        f.path = tmp_path / P2 / f.name
    dark = p2[2:6]
    for f in dark:  # night (as tests/test_look.py): gamma 2.5, gain 0.25
        img = cv2.imread(str(f.path))
        cv2.imwrite(str(f.path), np.clip((img / 255.0) ** 2.5 * 0.25 * 255, 0, 255).astype(np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    (out / "w.onnx").write_bytes(b"\x08none")
    frames, _ = stage_detect(p1 + p2, cfg, out, out / "w.onnx", Manifest(out), RunSummary(out=out),
                             detector=NoBoxes())
    assert [f.look for f in frames if f.drive == P2] == [""] * 2 + ["dark"] * 4 + [""] * 2
    log, roads = build([P1, P2], frames, None, None, load_roads(need(TOYAMA / "roads.geojson"), cfg), cfg)
    rows = {r["drive"]: r for r in log.to_dict("records")}
    assert {d: r["poor_look_frames"] for d, r in rows.items()} == {P1: 0, P2: 4}
    s = RunSummary(out=out)
    _fill_frame_counts(s, frames)
    assert s.poor_look == {P2: 4}  # summary.json's frames.poor_look
    pts = sorted((f.time, f.lat, f.lon) for f in frames if f.drive == P2 and f.look)
    m = 0.0
    for (_, a, b), (_, c, d) in zip(pts, pts[1:]):
        h = (math.sin(math.radians(c - a) / 2) ** 2
             + math.cos(math.radians(a)) * math.cos(math.radians(c)) * math.sin(math.radians(d - b) / 2) ** 2)
        m += 2 * 6_371_008.8 * math.asin(math.sqrt(h))
    assert 0.01 < m / 1000 < 0.1  # three steps of ~11 m
    assert abs(rows[P2]["poor_look_km"] - m / 1000) < 0.0015 and rows[P1]["poor_look_km"] == 0.0
    assert rows[P2]["poor_look_km"] < rows[P2]["distance_km"]
    write_csv(log, out / "patrol_log.csv", cfg)
    write_xlsx(log, roads, out / "patrol_log.xlsx", cfg)
    got = {r["drive"]: r for r in _read_csv(out / "patrol_log.csv")}
    assert (got[P1]["poor_look_frames"], got[P1]["poor_look_km"]) == ("0", "0.000")
    assert (got[P2]["poor_look_frames"], got[P2]["poor_look_km"]) == ("4", f"{rows[P2]['poor_look_km']:.3f}")
    wb = load_workbook(out / "patrol_log.xlsx")
    head = [c.value for c in wb["patrol_log"][1]]
    j = head.index("撮影不良画像数\nframes too dark, glared or blurred")
    assert head[j + 1] == "撮影不良区間(km)\ndriven in poor frames only (km)"
    assert [r[j:j + 2] for r in wb["patrol_log"].iter_rows(min_row=2, values_only=True)] == [
        (0, 0.0), (4, rows[P2]["poor_look_km"])]
    legend = {r[0]: r[1:] for r in wb["legend"].iter_rows(values_only=True) if r and r[0]}
    assert "路面が見えない" in legend["撮影不良 poor look"][0] and "not checked" in legend["撮影不良 poor look"][1]
    assert legend["poor_look_frames"][:2] == ("撮影不良画像数", "frames too dark, glared or blurred")


def test_page_header_names_the_town_only_when_a_config_does(tmp_path):
    """patrol_log.xlsx's page header printed `道路巡回日誌 / patrol log  default` without --config (the default
    config's placeholder name), where the due and jobs lists leave it out; now it leaves it out too, and a city's
    config names its town. Real data: the sample drive's first frames (EXIF, GPS) on the sample network."""
    from openpyxl import load_workbook

    from detector.config import load_config
    from detector.frames import scan_drive
    from detector.patrol_log import build, write_xlsx
    from detector.roads import load_roads

    default = load_config(Path(__file__).resolve().parent.parent / "configs" / "default.yaml")
    assert default.municipality == "default"
    frames = [f for f in scan_drive(need(TOYAMA / P1), default) if f.ok][:8]
    net = load_roads(need(TOYAMA / "roads.geojson"), default)
    for cfg, want in ((default, "道路巡回日誌 / patrol log"),
                      (default.model_copy(update={"municipality": "富山市"}), "道路巡回日誌 / patrol log  富山市")):
        log, roads = build([P1], frames, None, None, net, cfg)
        out = tmp_path / f"{cfg.municipality}.xlsx"
        write_xlsx(log, roads, out, cfg)
        assert load_workbook(out)["patrol_log"].oddHeader.center.text == want
