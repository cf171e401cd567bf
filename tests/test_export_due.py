"""`patrol export REGISTRY --format due --roads R [--at DATE]`: every segment of the network with its last patrol and
when the next is due (config ``survey``; README: Roads due for a patrol). Real data: the registry of the sample drive's
two passes (p1 2026-11-20, p2 2026-11-27, with their frames: tests/test_export_segments.py's fixture) on the sample
network (11,239 segments, 27 of them driven; one of no length, left out of the list: 11,238 listed)."""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, TOYAMA
from detector.store import Store
from test_export_segments import patrol, registry  # noqa: F401 (the fixture)
from test_stats import _name_of
from test_store_passes import sample  # noqa: F401 (the fixture registry needs)

ROADS = TOYAMA / "roads.geojson"


def due(store: Path, out: Path, *args) -> tuple[pd.DataFrame, str]:
    """The exported rows (csv, its ``ja en`` headings as the column names) and the closing console line."""
    r = patrol("export", store, "--format", "due", "--out", out, *args)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    with open(out, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    df = pd.DataFrame(rows).rename(columns=lambda c: c.split(" ")[-1])
    return df, r.stdout.strip().splitlines()[-1] + "\n" + r.stderr


def named_roads(tmp_path: Path) -> tuple[dict, Path]:
    """A copy of the sample network with a made-up road per segment (``test_stats._name_of``) in a column 路線: its
    GeoJSON document and file."""
    doc = json.loads(ROADS.read_text(encoding="utf-8"))
    for f in doc["features"]:
        f["properties"]["路線"] = _name_of(f["properties"]["segment_id"])
    roads = tmp_path / "roads-named.geojson"
    roads.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return doc, roads


def surveyed_days(path: Path, cfg) -> dict[str, dict[date, float]]:
    """The oracle: segment -> {day: coverage} of each day whose frames alone make the segment ``valid`` as
    ``segment_condition`` rates it (a run of that day's drives writes it so to segments.geojson)."""
    from detector.roads import load_roads
    from detector.segments import segment_condition

    with Store.for_config(path, cfg) as st:
        frames = st.survey_frames()
    net = load_roads(ROADS, cfg)
    day = pd.to_datetime(frames["t"], unit="s", utc=True).dt.tz_convert(cfg.tz).dt.date
    out: dict[str, dict[date, float]] = {}
    for d, f in frames.groupby(day):
        seg = segment_condition(net, None, f, cfg)
        seg = seg[(seg["level"] == "segment") & seg["valid"]]
        for sid, cov in zip(seg["segment_id"], seg["coverage"]):
            out.setdefault(sid, {})[d] = cov
    return out


def test_due_at_a_fixed_day(registry, tmp_path):  # noqa: F811
    """Every segment of the network, once; the driven ones with the day of their latest survey (the day's frames cover
    min_coverage of it: the oracle ``surveyed_days``) and its coverage, due 30 days later (default survey.every_days);
    the others never surveyed and due. Exact counts at three days: before p2 (only p1 counts), when one segment p2
    covered too little (its last survey is p1's) falls due, and a week later. (The network's segment of no length is
    left out: test_due_leaves_out_a_segment_of_no_length.)"""
    path, cfg, _ = registry
    oracle = surveyed_days(path, cfg)
    assert len(oracle) == 23 and len({d for v in oracle.values() for d in v}) == 2
    n = 11238
    for at, n_due, n_never in [("2026-11-25", None, None), ("2026-12-20", 11216, 11215), ("2026-12-27", n, 11215)]:
        at_d = date.fromisoformat(at)
        df, said = due(path, tmp_path / f"due-{at}.csv", "--roads", ROADS, "--at", at)
        assert len(df) == n and df["segment_id"].is_unique
        want = {s: max((d, c) for d, c in v.items() if d <= at_d) for s, v in oracle.items()
                if any(d <= at_d for d in v)}
        got = df[df["never_surveyed"] == "FALSE"].set_index("segment_id")
        assert set(got.index) == set(want)
        for sid, (d, c) in want.items():
            row = got.loc[sid]
            assert row["last_surveyed"] == d.isoformat() and float(row["coverage"]) == pytest.approx(c, abs=1e-4)
            assert row["every_days"] == "30" and row["due"] == (d + timedelta(days=30)).isoformat()
            assert int(row["days_overdue"]) == (at_d - d - timedelta(days=30)).days
        never = df[df["never_surveyed"] == "TRUE"]
        assert (never[["last_surveyed", "due", "days_overdue", "coverage"]] == "").all().all()
        is_due = (df["never_surveyed"] == "TRUE") | (pd.to_numeric(df["days_overdue"]).fillna(-1) >= 0)
        if n_due is not None:
            assert (int(is_due.sum()), len(never)) == (n_due, n_never)
        km = lambda s: f"{pd.to_numeric(s).sum() / 1000:.1f}"  # noqa: E731
        assert (f"{int(is_due.sum())} of {n} segments ({km(df['length_m'][is_due])} of {km(df['length_m'])} km) due "
                f"on {at}, {len(never)} never surveyed; 1 segment of no length (two equal points, which no drive "
                "covers) left out → ") in said, said
        # most overdue first: the never surveyed, then by days overdue
        k = len(never)
        assert (df["never_surveyed"].iloc[:k] == "TRUE").all()
        assert pd.to_numeric(df["days_overdue"].iloc[k:]).is_monotonic_decreasing
    # p2 on 2026-11-27 covered 00000037-2721-2731 too little: its latest survey stays p1's, due first
    assert got.index[0] == "00000037-2721-2731" and got.iloc[0]["last_surveyed"] == "2026-11-20"
    assert oracle["00000037-2721-2731"].keys() == {date(2026, 11, 20)}


def test_due_by_a_road_field(registry, tmp_path):  # noqa: F811
    """survey.by: a frequency per value of a kept road field, on a copy of the network with a made-up road per segment
    (``test_stats._name_of``) in a column 路線: each row's every_days is its road's (others: survey.every_days), its due
    date follows; a configured value no segment has is a warning."""
    path, _, _ = registry
    _, roads = named_roads(tmp_path)
    freq = {"線 137": 3, "線 138": 7, "線 680": 14, "線 9999": 1}
    config = tmp_path / "city.yaml"
    config.write_text("roads:\n  keep_fields: [路線]\nsurvey:\n  every_days: 60\n  by:\n    field: 路線\n    every_days:\n"
                      + "".join(f"      {k}: {v}\n" for k, v in freq.items()), encoding="utf-8")
    df, said = due(path, tmp_path / "due.csv", "--roads", roads, "--config", config, "--at", "2026-12-01")
    assert list(df.columns[:3]) == ["segment_id", "road_name", "路線"]  # the kept field after road_name
    want = df["segment_id"].map(lambda s: freq.get(_name_of(s), 60))
    assert (pd.to_numeric(df["every_days"]) == want).all()
    assert {3, 7, 14, 60} <= set(want[df["never_surveyed"] == "FALSE"])  # the driven roads have each frequency
    got = df[df["never_surveyed"] == "FALSE"]
    for r in got.itertuples():
        d = date.fromisoformat(r.last_surveyed) + timedelta(days=int(r.every_days))
        assert r.due == d.isoformat() and int(r.days_overdue) == (date(2026, 12, 1) - d).days
    overdue = got[pd.to_numeric(got["days_overdue"]) >= 0]
    assert set(overdue["路線"]) == {"線 137"}  # 3 days after 11-27: due 11-30, a day overdue; the others not yet
    assert f"{len(df) - len(got) + len(overdue)} of 11238 segments" in said
    assert "warning: survey.by.every_days: 路線 '線 9999' matches no segment" in said, said


def test_due_lists_only_the_roads_on_a_patrol_cycle(registry, tmp_path):  # noqa: F811
    """A null frequency (``survey.every_days: null`` for the values not listed, or a listed value's null) puts a road
    on no patrol cycle (patrolled on request): it is left out of the list, and the closing line says how many."""
    path, _, _ = registry
    doc, roads = named_roads(tmp_path)
    names = pd.Series([_name_of(f["properties"]["segment_id"]) for f in doc["features"]])
    config = tmp_path / "city.yaml"
    config.write_text("roads:\n  keep_fields: [路線]\nsurvey:\n  every_days: null\n  by:\n    field: 路線\n"
                      "    every_days: {線 137: 3, 線 138: 7, 線 680: null}\n", encoding="utf-8")
    df, said = due(path, tmp_path / "due.csv", "--roads", roads, "--config", config, "--at", "2026-12-01")
    assert set(df["路線"]) == {"線 137", "線 138"}
    assert len(df) == int(names.isin(["線 137", "線 138"]).sum())
    assert set(pd.to_numeric(df["every_days"])) == {3, 7}
    off = len(doc["features"]) - len(df) - 1  # (the segment of no length: 線 93, left out and said apart)
    assert f"of {len(df)} segments" in said and "; 1 segment of no length" in said
    assert f"; {off} segments (" in said and "on no patrol cycle left out" in said
    # the same roads on the default cycle: all of the network listed, nothing said of a cycle
    config.write_text("roads:\n  keep_fields: [路線]\n", encoding="utf-8")
    df, said = due(path, tmp_path / "due.csv", "--roads", roads, "--config", config, "--at", "2026-12-01")
    assert len(df) == len(doc["features"]) - 1 and "no patrol cycle" not in said


def test_due_leaves_out_a_segment_of_no_length(registry, tmp_path):  # noqa: F811
    """A segment of the network of no length (two equal points: the sample's 00000037-374-1303) was listed due and
    never surveyed on every day, whatever the patrols: no frame covers a share of a point. It is left out of the list
    and its counts, and the closing line says how many (as it says the roads on no patrol cycle); the legend counts
    it; the network's shortest real pieces (0.22–0.35 m) stay listed. ``due_table``: the map's due layer's rows."""
    from openpyxl import load_workbook

    from detector.config import Config
    from detector.due import due_table
    from detector.roads import load_roads

    path, _, _ = registry
    doc = json.loads(ROADS.read_text(encoding="utf-8"))
    ends = {f["properties"]["segment_id"]: f["geometry"]["coordinates"] for f in doc["features"]}
    assert ends["00000037-374-1303"][0] == ends["00000037-374-1303"][-1]  # (the network's own: two equal points)
    df, said = due(path, tmp_path / "due.csv", "--roads", ROADS, "--at", "2026-12-20")
    assert len(df) == len(doc["features"]) - 1 and "00000037-374-1303" not in set(df["segment_id"])
    assert (pd.to_numeric(df["length_m"]) > 0).all() and pd.to_numeric(df["length_m"]).min() == pytest.approx(0.22)
    assert said.count("of no length") == 1 and "never surveyed; 1 segment of no length (two equal points, " in said
    x = tmp_path / "due.xlsx"
    r = patrol("export", path, "--format", "due", "--roads", ROADS, "--out", x, "--at", "2026-12-20")
    assert r.returncode == 0, r.stderr
    lg = {row[0].value: row[1].value for row in load_workbook(x)["legend"].iter_rows() if row[0].value}
    assert "長さのない区間 (2 点が同じ位置) 1 区間は載せない" in lg["件数 segments"], lg["件数 segments"]
    cfg = Config()
    with Store.for_config(path, cfg) as st:
        frames = st.survey_frames()
    d = due_table(load_roads(ROADS, cfg), frames, cfg, date(2026, 12, 20))
    assert (d.no_length, d.off_cycle, len(d.table)) == (1, 0, len(doc["features"]) - 1)
    assert int(d.due.sum()) == 11216 and int(d.table["never_surveyed"].sum()) == 11215


def test_due_at_without_a_year_is_the_nearest_such_day(registry, tmp_path):  # noqa: F811
    """``--at 12/7`` typed on 11/28 plans for this 7 December (it was read as last year's, the latest such day not
    after today, as a crew's past dates are: every segment then never surveyed): a day without a year is the nearest
    such day, up to half a year ahead; one 10 days back stays in the past."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    path, _, _ = registry
    today = datetime.now(ZoneInfo("Asia/Tokyo")).date()
    for delta in (10, -10, 150):
        day = today + timedelta(days=delta)
        _, said = due(path, tmp_path / "due.csv", "--roads", ROADS, "--at", f"{day.month}/{day.day}")
        assert f"due on {day.isoformat()}," in said, (delta, said)


def test_due_xlsx_and_map(registry, tmp_path):  # noqa: F811
    """The xlsx is a printable list (A4 landscape, one page wide, dates as dates, the day in the page header); the
    GeoJSON and the GeoPackage carry every segment with the same columns; the GeoPackage's one layer is named for what
    it is, ``patrol_due`` (README), the settings and the day in its description."""
    import geopandas as gpd
    from openpyxl import load_workbook

    path, _, _ = registry
    x = tmp_path / "due.xlsx"
    r = patrol("export", path, "--format", "due", "--roads", ROADS, "--out", x, "--at", "2026-12-20")
    assert r.returncode == 0, r.stderr
    ws = load_workbook(x).active
    assert ws.max_row == 11238 + 1 and ws.page_setup.orientation == "landscape"
    per_page = ws.row_breaks.brk[0].id - 1  # its own pages counted (one page wide at a fixed scale): not &N
    assert ws.oddFooter.center.text == f"&P / {len(ws.row_breaks.brk) + 1}" == f"&P / {-(-11238 // per_page)}"
    assert "2026-12-20" in ws.oddHeader.center.text and ws.print_title_rows == "$1:$1"
    heads = [c.value.split("\n")[-1] for c in ws[1]]
    assert heads == ["segment_id", "road_name", "length_m", "coverage", "last_surveyed", "every_days", "due",
                     "days_overdue", "never_surveyed"]
    row = {h: c.value for h, c in zip(heads, ws[11238 + 1])}  # the last row: the least overdue
    assert row["last_surveyed"].date() == date(2026, 11, 27) and row["days_overdue"] == -7
    assert row["never_surveyed"] is False
    for out in (tmp_path / "due.geojson", tmp_path / "due.gpkg"):
        r = patrol("export", path, "--format", "due", "--roads", ROADS, "--out", out, "--at", "2026-12-20")
        assert r.returncode == 0, r.stderr
        g = gpd.read_file(out, **({"layer": "patrol_due"} if out.suffix == ".gpkg" else {}))
        assert len(g) == 11238 and int(g["never_surveyed"].sum()) == 11215
        assert int((g["days_overdue"] == -7).sum()) == 22
        # every segment a line: the network's zero-length one (two equal points), which merged to an empty
        # GEOMETRYCOLLECTION (the GeoPackage's layer GEOMETRY: two sublayers in QGIS), is left out
        assert set(g.geom_type) == {"LineString"}, g.geom_type.value_counts()
        assert "00000037-374-1303" not in set(g["segment_id"])
    import pyogrio

    # the layer, then QGIS's default style of it (tests/test_export_qgis_style.py)
    assert [name for name, _ in pyogrio.list_layers(out)] == ["patrol_due", "layer_styles"]
    con = sqlite3.connect(out)
    (desc,) = con.execute("SELECT description FROM gpkg_contents WHERE table_name='patrol_due'").fetchone()
    (kind,) = con.execute("SELECT geometry_type_name FROM gpkg_geometry_columns WHERE table_name='patrol_due'").fetchone()
    con.close()
    assert kind == "LINESTRING"
    meta = json.loads(desc)
    assert meta["at"] == "2026-12-20" and meta["every_days"] == 30 and meta["min_coverage"] == 0.5, meta
    assert (meta["segments"], meta["no_length"]) == (11238, 1), meta


def test_due_xlsx_legend(registry, tmp_path):  # noqa: F811
    """The workbook's second sheet ``legend`` (as the repair list's and the patrol log's) says, in 日本語 and English,
    the day planned for (--at) and that due means that day or before it, the counts of the console line, the config's
    frequency (survey.by per value, its nulls, the others' survey.every_days) and coverage rule (segments.min_coverage,
    coverage_radius_m), and each column of the list, the kept road field too; a survey.by value that starts with "="
    is text, not a formula."""
    from openpyxl import load_workbook

    path, _, _ = registry
    _, roads = named_roads(tmp_path)
    config = tmp_path / "city.yaml"
    config.write_text("municipality: 富山市\nroads:\n  keep_fields: [路線]\nsurvey:\n  every_days: 60\n  by:\n"
                      "    field: 路線\n    every_days: {線 137: 3, 線 138: 7, 線 680: null, '=1+1': 5}\n"
                      "segments:\n  min_coverage: 0.4\n", encoding="utf-8")
    x = tmp_path / "due.xlsx"
    r = patrol("export", path, "--format", "due", "--roads", roads, "--config", config, "--out", x,
               "--at", "2026-12-01")
    assert r.returncode == 0, r.stderr
    wb = load_workbook(x)
    assert wb.sheetnames == ["due", "legend"]
    ws, lg = wb["due"], wb["legend"]
    rows = {row[0]: row[1:] for row in lg.iter_rows(values_only=True) if row[0]}
    assert rows["巡回予定 / Patrol due"] and rows["自治体 municipality"][0] == "富山市"
    ja, en = rows["基準日 as of (--at)"]
    assert ja.startswith("2026-12-01: ") and "巡回期限がこの日以前" in ja and "this day or before it" in en, (ja, en)
    n = ws.max_row - 1
    heads = [c.value.split("\n")[-1] for c in ws[1]]
    def column(h):
        j = heads.index(h) + 1
        return [v for (v,) in ws.iter_rows(min_row=2, min_col=j, max_col=j, values_only=True)]

    never = sum(1 for v in column("never_surveyed") if v)
    over = sum(1 for v in column("days_overdue") if v is not None and v >= 0)
    said = r.stdout.strip().splitlines()[-1]
    assert said.startswith(f"{over + never} of {n} segments") and f", {never} never surveyed;" in said, said
    ja, en = rows["件数 segments"]
    assert ja.startswith(f"{n} 区間 (巡回対象 {over + never}、うち未巡回 {never})") and "対象外" in ja, ja
    assert en.startswith(f"{n} segments ({over + never} due, {never} of them never surveyed); ") and "cycle" in en
    ja, en = rows["巡回頻度 frequency"]
    assert ja == "survey.by: 路線 ごと: 線 137 3 日, 線 138 7 日, 線 680 対象外, =1+1 5 日; その他 (survey.every_days) 60 日ごと", ja
    assert en == "survey.by: per 路線: 線 137 3 days, 線 138 7 days, 線 680 no cycle, =1+1 5 days; the others " \
                 "(survey.every_days) every 60 days", en
    assert lg.cell(row=[row[0] for row in lg.iter_rows(values_only=True)].index("巡回頻度 frequency") + 1,
                   column=2).data_type == "s"  # the "=1+1" value: text
    ja, en = rows["巡回の判定 coverage rule"]
    assert "40% 以上 (segments.min_coverage)" in ja and "15 m 以内 (segments.coverage_radius_m)" in ja, ja
    assert "at least 40% of it (segments.min_coverage)" in en and "within 15 m of a frame" in en, en
    assert list(rows)[list(rows).index("列 column") + 1:] == heads  # every column of the list, in its order
    ja, en = rows["days_overdue"]
    assert ja.startswith("超過日数: ") and "0 は基準日が期限 (どちらも巡回対象)" in ja, ja
    assert en.startswith("days_overdue: ") and "0 due that day (both due)" in en, en
    assert rows["路線"] == ("路線: 道路台帳の項目 (roads.keep_fields)", "路線: a road ledger field kept (roads.keep_fields)")
    assert lg.page_setup.orientation == "landscape" and lg.page_setup.fitToWidth == 1


def test_due_refused(registry, tmp_path):  # noqa: F811
    """What the due export cannot do: exit 2 naming the option (4 for a config naming a field it does not keep, the
    file and the setting named), nothing written."""
    path, _, _ = registry
    for args, flag in [(["--out", tmp_path / "a.txt"], "--out"),
                       (["--status", "new", "--out", tmp_path / "a.csv"], "--status"),
                       (["--since", "2026-11-01", "--out", tmp_path / "a.csv"], "--since"),
                       (["--crs", "EPSG:6675", "--out", tmp_path / "a.gpkg"], "--crs"),
                       (["--at", "2026-13-45", "--out", tmp_path / "a.csv"], "--at")]:
        r = patrol("export", path, "--format", "due", "--roads", ROADS, *args)
        assert r.returncode == 2 and flag in r.stderr, (args, r.returncode, r.stderr)
    r = patrol("export", path, "--format", "due", "--out", tmp_path / "a.csv")
    assert r.returncode == 2 and "--roads" in r.stderr, r.stderr
    r = patrol("export", path, "--format", "csv", "--at", "2026-12-01", "--out", tmp_path / "a.csv")
    assert r.returncode == 2 and "--at" in r.stderr and "--format due" in r.stderr, r.stderr
    config = tmp_path / "city.yaml"
    config.write_text("roads:\n  keep_fields: [管理事務所]\nsurvey:\n  by:\n    field: 道路種別\n    every_days: {幹線: 7}\n",
                      encoding="utf-8")
    r = patrol("export", path, "--format", "due", "--roads", ROADS, "--config", config, "--out", tmp_path / "a.csv")
    assert r.returncode == 4, r.stderr
    assert f"{config}: survey.by.field: '道路種別' is not a kept road field" in r.stderr and "(管理事務所)" in r.stderr
    config.write_text("survey:\n  every_days: 0\n", encoding="utf-8")
    r = patrol("export", path, "--format", "due", "--roads", ROADS, "--config", config, "--out", tmp_path / "a.csv")
    assert r.returncode == 4 and "survey.every_days" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["city.yaml"]


def test_due_help_names_every_suffix_it_writes():
    """`patrol export --help` and the due export's refusal of another --out list exactly the suffixes it writes."""
    import re

    import typer

    import cli
    from detector.due import DUE_FILES

    cmd = typer.main.get_command(cli.app).commands["export"]
    (out,) = [p for p in cmd.params if "--out" in p.opts]
    said = re.search(r"due(?:, jobs)?: (.*?);", out.help).group(1)  # (jobs writes the same files)
    assert sorted(re.findall(r"X(\.\w+)", said)) == sorted(DUE_FILES), said
    (fmt,) = [p for p in cmd.params if "--format" in p.opts]
    assert "due:" in fmt.help
    # what the list holds: the segments on a patrol cycle, not the zero-length ones (before: "every segment of the
    # network", while those on no cycle and of no length are left out: test_due_lists_only_the_roads_on_a_patrol_cycle,
    # test_due_leaves_out_a_segment_of_no_length)
    due = fmt.help[fmt.help.index("due:"):]
    assert "every segment" not in due and "on a patrol cycle" in due and "zero-length ones left out" in due, due
    r = patrol("export", TOYAMA / "none.gpkg", "--format", "due", "--roads", ROADS, "--out", "a.shp")
    assert r.returncode == 2 and sorted(re.findall(r"X(\.\w+)", r.stderr)) == sorted(DUE_FILES), r.stderr
