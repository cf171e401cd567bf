"""`patrol stats`: the registry's figures per period (README: Figures for the council), on a registry built from the
sample drive's two passes (`patrol locate --store` on their oracle detections: 31 damages, first seen 2026-11-20
09:00–09:02 JST) whose statuses the office then set on chosen dates:

- R-000002 (D00) repaired 2026-12-04, R-000021 (D40) 2026-12-10, R-000006 (D20) 2026-12-20: 14, 20, 30 days
  (calendar days from the first sighting on the 20th);
- R-000003 (D10) not_an_issue 2026-12-15;
- R-000010 (D00) repaired 2026-11-21 (1 day), before its sighting of 2026-11-27 09:01: reopened at once, its history
  row at the clock's time: the office typed the repairs on 2026-12-22 10:00 (the clock pinned:
  ``detector.config.now``); the figures count the reopen at the sighting, 2026-11-27;
- R-000031 (D10) repaired 2026-12-05, then merged into R-000030: no damage of its own, its repair not counted."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import TOYAMA, need

ROOT = Path(__file__).resolve().parent.parent
P1, P2 = "toyama-2026-11-p1", "toyama-2026-11-p2"
JST = ZoneInfo("Asia/Tokyo")
TYPED = datetime(2026, 12, 22, 10, 0, tzinfo=JST)  # when the office typed the fixture's statuses in (its clock)


def patrol(*args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATROL_") or k == "PATROL_SHARED"}
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> dict:
    from detector.config import load_config
    from detector.store import Store

    oracles = [need(TOYAMA / f"{P1}.oracle.csv"), need(TOYAMA / f"{P2}.oracle.csv")]
    roads = need(TOYAMA / "roads.geojson")
    d = tmp_path_factory.mktemp("stats")
    store = d / "registry.gpkg"
    ok(patrol("locate", *oracles, "--roads", roads, "--out", d / "out", "--store", store))
    cfg = load_config(ROOT / "configs" / "default.yaml")
    with pytest.MonkeyPatch.context() as mp, Store.for_config(store, cfg) as st:
        mp.setattr("detector.config.now", lambda tz=None: TYPED.astimezone(tz))
        st.set_status("R-000002", "repaired", when=date(2026, 12, 4))
        st.set_status("R-000021", "repaired", when=date(2026, 12, 10))
        st.set_status("R-000006", "repaired", when=date(2026, 12, 20))
        st.set_status("R-000003", "not_an_issue", when=date(2026, 12, 15))
        seen: list = []
        st.set_status("R-000010", "repaired", when=date(2026, 11, 21), seen=seen)
        assert seen and st.status_of("R-000010") == "reopened"  # seen 2026-11-27, after the repair
        st.set_status("R-000031", "repaired", when=date(2026, 12, 5))
        st.merge_candidates("R-000031", "R-000030", cfg=cfg, force=True)
        (reopen_at,) = st.con.execute("SELECT at FROM status_history WHERE candidate_id='R-000010' AND "
                                      "to_status='reopened'").fetchone()
    return {"store": store, "roads": roads, "dir": d, "reopened": datetime.fromisoformat(reopen_at)}


def _rows(path: Path) -> tuple[list[str], dict[tuple[str, str], dict]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rd = csv.reader(fh)
        head = next(rd)
        rows = [dict(zip(head, r)) for r in rd]
    return head, {(r["期間 period"], r["分類 class"]): r for r in rows}


def _v(row: dict, key: str):
    col = {"found": "発見 found", "repaired": "補修 repaired", "not_an_issue": "対象外 not an issue",
           "reopened": "再発 reopened", "open": "期末未対応 open at end",
           "median": "補修日数(中央値) days to repair (median)",
           "p90": "補修日数(90%) days to repair (90th percentile)",
           "open_area": "補修対象面積(m²) open area (m²)", "open_no": "未対応 面積推定なし open, no size estimate",
           "open_cost": "概算補修費(円) repair cost estimate, open (円)",
           "rep_area": "補修面積(m²) repaired area (m²)", "rep_no": "補修 面積推定なし repaired, no size estimate",
           "rep_cost": "補修費概算(円) repair cost estimate, repaired (円)"}[key]
    v = row[col]
    return v if key in ("median", "p90") else float(v) if key.endswith("_area") else int(v)


def test_stats_by_month_counts_repairs_backlog_and_days(registry, tmp_path):
    out = tmp_path / "stats.csv"
    r = ok(patrol("stats", registry["store"], "--until", "2027-01-31", "--out", out))
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Japanese Excel
    head, rows = _rows(out)
    assert head[:5] == ["期間 period", "開始日 start", "終了日 end", "分類 class", "損傷種別 damage type (ja)"]
    assert {p for p, _ in rows} == {"2026-11", "2026-12", "2027-01"}  # from the first sighting to --until
    assert rows[("2026-11", "total")]["開始日 start"] == "2026-11-20"  # the registry's first record
    nov, dec, jan = rows[("2026-11", "total")], rows[("2026-12", "total")], rows[("2027-01", "total")]
    # found: 31 damages less the one merged into another
    assert (_v(nov, "found"), _v(dec, "found"), _v(jan, "found")) == (30, 0, 0)
    assert (_v(nov, "repaired"), _v(dec, "repaired"), _v(jan, "repaired")) == (1, 3, 0)  # not R-000031's
    assert (_v(nov, "not_an_issue"), _v(dec, "not_an_issue")) == (0, 1)
    # the reopen's history row is dated by the clock (a repair dated before a sighting held is reopened at once:
    # when typed in); the figures count it at the sighting after the repair (11-27), as "found" by its sighting
    assert registry["reopened"] == TYPED
    assert (_v(nov, "reopened"), _v(dec, "reopened"), _v(jan, "reopened")) == (1, 0, 0)
    # the backlog as it was at each month's end (today's statuses would give 26 in November too): R-000010 open
    # again at November's end, seen after its repair
    assert _v(nov, "open") == 30
    assert _v(dec, "open") == 26 and _v(jan, "open") == 26
    # days to repair (calendar days): 14, 20, 30 in December; R-000010's 1 in November (2.6 / 0.6 by the hours)
    assert (_v(dec, "median"), _v(dec, "p90")) == ("20.0", "28.0")
    assert (_v(nov, "median"), _v(nov, "p90")) == ("1.0", "1.0")
    assert _v(jan, "median") == ""
    # per class
    assert _v(rows[("2026-12", "D40")], "repaired") == 1 and _v(rows[("2026-12", "D40")], "median") == "20.0"
    assert _v(rows[("2026-12", "D10")], "not_an_issue") == 1 and _v(rows[("2026-12", "D10")], "repaired") == 0
    assert _v(rows[("2026-11", "D10")], "found") == 7  # 8 D10 less R-000031
    assert _v(rows[("2026-12", "D00")], "open") == 15 and _v(rows[("2026-12", "D20")], "open") == 3
    # the console: the periods and the summary line
    assert "2026-12" in r.stdout and "open now 26" in r.stdout
    assert "median days to repair 17.0 days (4 repairs" in r.stdout  # 1, 14, 20, 30


def test_stats_without_repairs_says_no_repairs(registry):
    """Periods without a repair printed `median days to repair none repaired (0 repairs, …)`; now `no repairs (…)`.
    From 2026-11-22 to 11-26 the sample registry holds no repair (R-000010's is dated 11-21)."""
    r = ok(patrol("stats", registry["store"], "--since", "2026-11-22", "--until", "2026-11-26"))
    line = r.stdout.splitlines()[-1]
    assert line.startswith("open now 26, ") and line.endswith(" m²; no repairs (2026-11 – 2026-11)"), r.stdout


def test_stats_by_week_and_since(registry, tmp_path):
    out = tmp_path / "weeks.csv"
    ok(patrol("stats", registry["store"], "--by", "week", "--since", "2026-12-01", "--until", "2026/12/31",
              "--out", out))
    _, rows = _rows(out)
    weeks = sorted({p for p, _ in rows})
    assert weeks == ["2026-W49", "2026-W50", "2026-W51", "2026-W52", "2026-W53"]
    assert rows[("2026-W49", "total")]["開始日 start"] == "2026-12-01"  # cut at --since (a Tuesday)
    assert rows[("2026-W53", "total")]["終了日 end"] == "2026-12-31"  # cut at --until
    rep = [_v(rows[(w, "total")], "repaired") for w in weeks]
    assert rep == [1, 1, 1, 0, 0]  # Fri 12-04, Thu 12-10, Sun 12-20
    # R-000010 open throughout: reopened by its sighting of 11-27 (before these weeks), not when typed in (W52)
    assert [_v(rows[(w, "total")], "open") for w in weeks] == [29, 28, 26, 26, 26]
    assert [_v(rows[(w, "total")], "reopened") for w in weeks] == [0, 0, 0, 0, 0]
    assert _v(rows[("2026-W51", "total")], "not_an_issue") == 1  # Tue 12-15
    assert all(_v(rows[(w, "total")], "found") == 0 for w in weeks)


def test_stats_counts_a_reopen_at_the_sighting_after_the_repair(registry, tmp_path):
    """A repair dated before a sighting the registry holds (R-000010: repaired Sat 11-21, seen Fri 11-27 09:01, typed
    in on 12-22): its reopen was counted when typed in (W52) and the weeks between showed it closed although the
    registry holds a sighting after the repair. Now the reopen counts in the week of that sighting (W48), and the
    damage is open at that week's end."""
    out = tmp_path / "weeks.csv"
    ok(patrol("stats", registry["store"], "--by", "week", "--since", "2026-11-16", "--until", "2026-12-27",
              "--out", out))
    _, rows = _rows(out)
    weeks = sorted({p for p, _ in rows})
    assert weeks == ["2026-W47", "2026-W48", "2026-W49", "2026-W50", "2026-W51", "2026-W52"]
    tot = {w: rows[(w, "total")] for w in weeks}
    assert [_v(tot[w], "reopened") for w in weeks] == [1 if w == "2026-W48" else 0 for w in weeks]
    assert _v(rows[("2026-W48", "D00")], "reopened") == 1  # R-000010's class
    assert [_v(tot[w], "repaired") for w in weeks] == [1, 0, 1, 1, 1, 0]  # 11-21, 12-04, 12-10, 12-20
    # found 30 on 11-20, R-000010 repaired on 11-21: 29; seen again on 11-27: 30 open at W48's end
    assert [_v(tot[w], "open") for w in weeks] == [29, 30, 29, 28, 26, 26]
    assert registry["reopened"] == TYPED  # the stored history keeps the time the reopen was recorded


def _located(d: Path, oracle: Path, roads: Path) -> None:
    """``patrol locate --store`` of one drive in this process (its merge's time on ``detector.config.now``, as
    pinned): the registry ``d/registry.gpkg``."""
    from cli import main

    main(["locate", str(oracle), "--roads", str(roads), "--out", str(d / oracle.stem), "--store",
          str(d / "registry.gpkg")])


def test_stats_counts_a_late_drives_reopen_at_its_sighting(tmp_path, monkeypatch):
    """A drive merged late (the second pass, driven 11-27, merged on 2027-01-08) reopens the damage repaired on
    11-21 at the merge's time: the figures counted the reopen in January while "found" counts by the sighting.
    Now it counts in November (its sighting of 11-27), and the damage is open at November's end."""
    from detector.config import load_config
    from detector.store import Store

    roads = need(TOYAMA / "roads.geojson")
    clock = [datetime(2026, 11, 25, 10, 0, tzinfo=JST)]
    monkeypatch.setattr("detector.config.now", lambda tz=None: clock[0].astimezone(tz))
    _located(tmp_path, need(TOYAMA / f"{P1}.oracle.csv"), roads)
    store = tmp_path / "registry.gpkg"
    with Store.for_config(store, load_config(ROOT / "configs" / "default.yaml")) as st:
        st.set_status("R-000010", "repaired", when=date(2026, 11, 21))
    clock[0] = datetime(2027, 1, 8, 10, 0, tzinfo=JST)  # the second pass merged late
    _located(tmp_path, need(TOYAMA / f"{P2}.oracle.csv"), roads)
    with Store.for_config(store, load_config(ROOT / "configs" / "default.yaml")) as st:
        assert st.status_of("R-000010") == "reopened"
        (at,) = st.con.execute("SELECT at FROM status_history WHERE candidate_id='R-000010' AND "
                               "to_status='reopened'").fetchone()
    assert datetime.fromisoformat(at) == clock[0]  # recorded at the merge
    out = tmp_path / "stats.csv"
    ok(patrol("stats", store, "--until", "2027-01-31", "--out", out))
    _, rows = _rows(out)
    tot = [rows[(m, "total")] for m in ("2026-11", "2026-12", "2027-01")]
    assert [_v(r, "found") for r in tot] == [31, 0, 0]  # the first pass's 31 damages, by their sighting
    assert [_v(r, "reopened") for r in tot] == [1, 0, 0] and [_v(r, "repaired") for r in tot] == [1, 0, 0]
    assert [_v(r, "open") for r in tot] == [31, 31, 31]  # R-000010 open again from its sighting of 11-27


def test_stats_reopen_without_a_sighting_time_keeps_the_recorded_time(registry, tmp_path):
    """Where the registry holds no time of a sighting after the repair (here R-000010's sightings without times),
    the reopen counts when it was recorded (12-22, W52), as before."""
    import shutil
    import sqlite3

    store = tmp_path / "registry.gpkg"
    shutil.copy(registry["store"], store)
    con = sqlite3.connect(store)
    with con:
        con.execute("UPDATE observations SET first_t=NULL, last_t=NULL WHERE candidate_id='R-000010'")
    con.close()
    out = tmp_path / "weeks.csv"
    ok(patrol("stats", store, "--by", "week", "--since", "2026-11-16", "--until", "2026-12-27", "--out", out))
    _, rows = _rows(out)
    weeks = sorted({p for p, _ in rows})
    assert [_v(rows[(w, "total")], "reopened") for w in weeks] == [0, 0, 0, 0, 0, 1]
    assert [_v(rows[(w, "total")], "open") for w in weeks] == [29, 29, 28, 27, 25, 26]


def test_stats_xlsx_is_one_printable_sheet(registry, tmp_path):
    from openpyxl import load_workbook

    out = tmp_path / "stats.xlsx"
    ok(patrol("stats", registry["store"], "--by", "year", "--until", "2027-01-31", "--out", out))
    wb = load_workbook(out)
    assert wb.sheetnames == ["stats"]
    ws = wb["stats"]
    head = [c.value for c in ws[1]]
    assert head[0] == "期間\nperiod" and "補修\nrepaired" in head and "期末未対応\nopen at end" in head
    assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.paperSize) == 9  # A4
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=2)]
    total = {r[0]: dict(zip(head, r)) for r in rows if r[3] == "total"}
    assert set(total) == {"2026", "2027"}
    assert total["2026"]["補修\nrepaired"] == 4 and total["2026"]["発見\nfound"] == 30
    assert total["2026"]["補修日数(中央値)\ndays to repair (median)"] == 17.0


def test_stats_group_by_kept_road_field(registry, tmp_path):
    cfg = tmp_path / "city.yaml"
    cfg.write_text("roads:\n  keep_fields: [segment_id]\n", encoding="utf-8")  # kept as road_segment_id
    r = patrol("stats", registry["store"], "--config", cfg, "--group", "road_segment_id")
    assert r.returncode == 2 and "--roads" in r.stderr  # copied from the network: refused without it
    r = patrol("stats", registry["store"], "--group", "管理事務所")
    assert r.returncode == 2 and "road_name" in r.stderr
    out = tmp_path / "g.csv"
    ok(patrol("stats", registry["store"], "--config", cfg, "--roads", registry["roads"], "--group",
              "road_segment_id", "--until", "2026-12-31", "--out", out))
    with open(out, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert "road_segment_id" in rows[0]
    tot = [r for r in rows if r["分類 class"] == "total"]
    groups = {r["road_segment_id"] for r in tot}
    assert len(groups) > 5 and "(なし none)" not in groups  # every damage lies on a segment of the network
    for period, found, repaired, open_ in (("2026-11", 30, 1, None), ("2026-12", 0, 3, 26)):
        per = [r for r in tot if r["期間 period"] == period]
        assert sum(int(r["発見 found"]) for r in per) == found
        assert sum(int(r["補修 repaired"]) for r in per) == repaired
        if open_ is not None:
            assert sum(int(r["期末未対応 open at end"]) for r in per) == open_
    (seg,) = {r["road_segment_id"] for r in tot if r["期間 period"] == "2026-12" and r["補修 repaired"] == "1"
              and r["補修日数(中央値) days to repair (median)"] == "30.0"}  # R-000006's segment
    assert seg


def test_stats_refuses_bad_options(registry, tmp_path):
    for args, word in ((("--by", "day"), "--by"), (("--out", tmp_path / "x.json"), "--out"),
                       (("--since", "2026-13-45"), "--since"),
                       (("--since", "2026-12-01", "--until", "2026-11-01"), "--until")):
        r = patrol("stats", registry["store"], *args)
        assert r.returncode == 2, (args, r.stderr)
        assert word in r.stderr and "Traceback" not in r.stderr
    r = patrol("stats", tmp_path / "none.gpkg")
    assert r.returncode == 6


def test_stats_until_after_today_says_the_backlog_is_todays(registry, tmp_path):
    """--until in the future gave periods ahead whose backlog "at their end" was only today's, without a word: now a
    note says so."""
    from datetime import date, timedelta

    later = date.today() + timedelta(days=400)
    r = patrol("stats", registry["store"], "--by", "year", "--until", later.isoformat())
    assert r.returncode == 0, r.stderr
    assert f"--until {later} is after today" in r.stderr and "their backlog is today's" in " ".join(r.stderr.split())


def _name_of(segment_id: str) -> str | None:
    """The sample network has no road names, and its damages all lie on segments of one line (``00000037-547-548``
    …): the test's copy names a segment by a made-up rule on the lower of its id's last two numbers ``n``: ``線 n//4``
    (a road per four consecutive numbers), none where ``n`` is a multiple of 5."""
    n = min(int(x) for x in segment_id.split("-")[1:3])
    return None if n % 5 == 0 else f"線 {n // 4}"


def test_stats_group_by_road_name(tmp_path):
    """`--group road_name` (the registry's own road names, no --roads needed): each road's rows count exactly the
    damages on it, the unnamed ones under (なし none), and the groups add up to the ungrouped figures. Real data:
    the sample's two passes located on a copy of its network with names (``_name_of``), two statuses set."""
    import json
    import sqlite3

    from detector.config import load_config
    from detector.stats import NO_GROUP
    from detector.store import OPEN_STATUSES, Store

    doc = json.loads(need(TOYAMA / "roads.geojson").read_text(encoding="utf-8"))
    for f in doc["features"]:
        if (name := _name_of(f["properties"]["segment_id"])) is not None:
            f["properties"]["name"] = name
    roads = tmp_path / "roads-named.geojson"
    roads.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    store = tmp_path / "registry.gpkg"
    ok(patrol("locate", need(TOYAMA / f"{P1}.oracle.csv"), need(TOYAMA / f"{P2}.oracle.csv"), "--roads", roads,
              "--out", tmp_path / "out", "--store", store))
    with Store.for_config(store, load_config(ROOT / "configs" / "default.yaml")) as st:
        st.set_status("R-000002", "repaired", when=date(2026, 12, 4))
        st.set_status("R-000003", "not_an_issue", when=date(2026, 12, 15))
    con = sqlite3.connect(store)
    try:
        cands = con.execute("SELECT candidate_id, segment_id, road_name, class, status FROM candidates").fetchall()
    finally:
        con.close()
    assert all(rn == _name_of(seg) for _, seg, rn, _, _ in cands), cands  # the registry holds the copy's names
    want = {}  # group -> (found, open now, repaired, not an issue)
    for cid, _, rn, _, status in cands:
        g = rn or NO_GROUP
        f, o, r, n = want.get(g, (0, 0, 0, 0))
        want[g] = (f + 1, o + (status in OPEN_STATUSES), r + (cid == "R-000002"), n + (cid == "R-000003"))
    assert len(want) >= 3 and NO_GROUP in want  # several roads, and damages on unnamed ones

    whole, grouped = tmp_path / "all.csv", tmp_path / "roads.csv"
    ok(patrol("stats", store, "--until", "2026-12-31", "--out", whole))
    ok(patrol("stats", store, "--until", "2026-12-31", "--group", "road_name", "--out", grouped))
    _, rows = _rows(whole)
    with open(grouped, encoding="utf-8-sig", newline="") as fh:
        g_rows = list(csv.DictReader(fh))
    assert {r["road_name"] for r in g_rows} == set(want)
    keys = ("found", "repaired", "not_an_issue", "reopened", "open", "open_no", "rep_no")
    for (period, cls), row in rows.items():  # every period and class: the roads add up to the whole
        per = [r for r in g_rows if (r["期間 period"], r["分類 class"]) == (period, cls)]
        assert per, (period, cls)
        for k in keys:
            assert sum(_v(r, k) for r in per) == _v(row, k), (period, cls, k)
        for k in ("open_area", "rep_area"):  # each rounded to 0.1 m²
            assert abs(sum(_v(r, k) for r in per) - _v(row, k)) <= 0.05 * (len(per) + 1), (period, cls, k)
    assert _v(rows[("2026-12", "total")], "open_area") > 0
    for g, (found, open_, repaired, not_an_issue) in want.items():  # each road's own damages
        tot = {r["期間 period"]: r for r in g_rows if r["road_name"] == g and r["分類 class"] == "total"}
        assert (_v(tot["2026-11"], "found"), _v(tot["2026-12"], "found")) == (found, 0), g
        assert _v(tot["2026-12"], "open") == open_, g
        assert _v(tot["2026-12"], "repaired") == repaired and _v(tot["2026-12"], "not_an_issue") == not_an_issue, g
        by_cls = Counter(c for _, _, rn, c, _ in cands if (rn or NO_GROUP) == g)
        for c, n in by_cls.items():
            (row,) = [r for r in g_rows if (r["road_name"], r["期間 period"], r["分類 class"]) == (g, "2026-11", c)]
            assert _v(row, "found") == n, (g, c)


PRICES = {"D00": 3000.0, "D10": 3000.0, "D20": 8000.0, "D40": 15000.0}  # a test's unit prices (円/m²), no city's


def _sizes(store: Path) -> dict[str, tuple[str, float | None]]:
    """The registry's damages (not merged away): id -> (class, est_width_m × est_length_m, None where either is
    missing), read with sqlite3 alone."""
    import sqlite3

    con = sqlite3.connect(store)
    try:
        rows = con.execute("SELECT candidate_id, class, est_width_m, est_length_m FROM candidates "
                           "WHERE merged_into IS NULL").fetchall()
    finally:
        con.close()
    return {cid: (cls, w * l if w is not None and l is not None else None) for cid, cls, w, l in rows}


def _without_size(registry: dict, tmp_path: Path, ids: tuple[str, ...]) -> tuple[Path, dict]:
    """A copy of the fixture's registry whose damages ``ids`` have no size estimate (as a drive without a camera
    mounting leaves them), and its sizes (``_sizes``)."""
    import shutil

    from detector.store import Store

    store = tmp_path / "registry.gpkg"
    shutil.copy(registry["store"], store)
    with Store(store) as st, st._txn():  # (its connection has the functions the spatial index's triggers call)
        st.con.executemany("UPDATE candidates SET est_width_m=NULL WHERE candidate_id=?", [(i,) for i in ids])
    return store, _sizes(store)


def _cost(sizes: dict, ids, minimum: float | None) -> float:
    """Σ max(area × price, minimum) over ``ids``, a damage without a size the minimum (none: left out)."""
    total = 0.0
    for cid in ids:
        cls, a = sizes[cid]
        if a is None:
            total += minimum or 0.0
        else:
            total += max(a * PRICES[cls], minimum or 0.0)
    return total


def _close(got: float, want: float, places: int = 1) -> bool:
    return abs(got - want) <= 0.5 * 10 ** -places + 1e-9


def test_stats_area_of_the_backlog_and_of_the_repairs(registry, tmp_path):
    """補修対象面積: the backlog's estimated area at each period's end and the repaired area of the period, per class
    and in total, are the sums of est_width_m × est_length_m of exactly those damages (the registry read with
    sqlite3); a damage without a size estimate is counted in no_estimate, not in the area. Without unit prices
    (the default config) there are no cost columns; the console's line gives the backlog's area today."""
    # R-000005 (open throughout) and R-000021 (D40, repaired 12-10) without a size, as a drive without a mounting
    store, sizes = _without_size(registry, tmp_path, ("R-000005", "R-000021"))
    assert len(sizes) == 30 and sum(a is None for _, a in sizes.values()) == 2
    assert all(a is not None and a > 0 for cid, (_, a) in sizes.items() if cid not in ("R-000005", "R-000021"))
    out = tmp_path / "stats.csv"
    r = ok(patrol("stats", store, "--until", "2027-01-31", "--out", out))
    head, rows = _rows(out)
    assert head[12:] == ["補修対象面積(m²) open area (m²)", "未対応 面積推定なし open, no size estimate",
                         "補修面積(m²) repaired area (m²)", "補修 面積推定なし repaired, no size estimate"]
    assert not any("円" in h for h in head)  # no unit prices: no cost
    repaired = {"2026-11": {"R-000010"}, "2026-12": {"R-000002", "R-000021", "R-000006"}, "2027-01": set()}
    # open at each month's end: November all 30 (R-000010 repaired 11-21, open again from its sighting of 11-27);
    # December and January less the three repaired and R-000003 (not an issue)
    open_ = {"2026-11": set(sizes), "2026-12": set(sizes) - repaired["2026-12"] - {"R-000003"}}
    open_["2027-01"] = open_["2026-12"]
    for period in ("2026-11", "2026-12", "2027-01"):
        for cls in ("D00", "D10", "D20", "D40", "total"):
            row = rows[(period, cls)]
            mine = lambda ids: [i for i in ids if cls == "total" or sizes[i][0] == cls]  # noqa: E731
            o, rep = mine(open_[period]), mine(repaired[period])
            assert _v(row, "open") == len(o), (period, cls)
            want = sum(sizes[i][1] for i in o if sizes[i][1] is not None)
            assert _close(_v(row, "open_area"), want), (period, cls, _v(row, "open_area"), want)
            assert _v(row, "open_no") == sum(sizes[i][1] is None for i in o), (period, cls)
            want = sum(sizes[i][1] for i in rep if sizes[i][1] is not None)
            assert _close(_v(row, "rep_area"), want), (period, cls, _v(row, "rep_area"), want)
            assert _v(row, "rep_no") == sum(sizes[i][1] is None for i in rep), (period, cls)
    dec = rows[("2026-12", "total")]
    assert _v(dec, "open_no") == 1 and _v(dec, "rep_no") == 1 and _v(dec, "open_area") > 0  # R-000005, R-000021
    assert _v(rows[("2026-12", "D40")], "rep_area") == 0.0 and _v(rows[("2026-12", "D40")], "rep_no") == 1
    # the console: the damages open today (their stored status; R-000010 reopened), as `open now` counts them
    now = open_["2026-12"]
    area = sum(sizes[i][1] for i in now if sizes[i][1] is not None)
    line = next(x for x in r.stdout.splitlines() if x.startswith("open now"))
    assert line.startswith(f"open now 26, {area:,.1f} m² (1 without a size estimate); median days to repair"), line


def test_stats_cost_estimate_with_the_citys_unit_prices(registry, tmp_path):
    """概算補修費: with repair_cost in the config, open_cost and repaired_cost are Σ max(area × the class's price,
    minimum) over the same damages; one without a size estimate costs the minimum, or is left out without one (and
    counted in no_estimate). csv whole yen, xlsx area 0.0 and cost #,##0; the console's line gives the cost."""
    from openpyxl import load_workbook

    store, sizes = _without_size(registry, tmp_path, ("R-000005", "R-000021"))
    repaired_dec = {"R-000002", "R-000021", "R-000006"}
    open_dec = set(sizes) - repaired_dec - {"R-000003"}
    prices = "{" + ", ".join(f"{k}: {v:g}" for k, v in PRICES.items()) + "}"
    for minimum in (20000.0, None):
        cfg = tmp_path / "city.yaml"
        cfg.write_text(f"repair_cost:\n  per_m2: {prices}\n" + (f"  minimum: {minimum:g}\n" if minimum else ""),
                       encoding="utf-8")
        out = tmp_path / "cost.csv"
        r = ok(patrol("stats", store, "--config", cfg, "--until", "2026-12-31", "--out", out))
        head, rows = _rows(out)
        assert head[12:] == ["補修対象面積(m²) open area (m²)", "未対応 面積推定なし open, no size estimate",
                             "概算補修費(円) repair cost estimate, open (円)", "補修面積(m²) repaired area (m²)",
                             "補修 面積推定なし repaired, no size estimate",
                             "補修費概算(円) repair cost estimate, repaired (円)"]
        for cls in ("D00", "D10", "D20", "D40", "total"):
            row = rows[("2026-12", cls)]
            mine = lambda ids: [i for i in ids if cls == "total" or sizes[i][0] == cls]  # noqa: E731
            assert _close(_v(row, "open_cost"), _cost(sizes, mine(open_dec), minimum), 0), (minimum, cls)
            assert _close(_v(row, "rep_cost"), _cost(sizes, mine(repaired_dec), minimum), 0), (minimum, cls)
        # R-000021 (D40) has no size: the minimum where one is set, else nothing
        assert _v(rows[("2026-12", "D40")], "rep_cost") == (20000 if minimum else 0)
        want = round(_cost(sizes, open_dec, minimum))
        line = next(x for x in r.stdout.splitlines() if x.startswith("open now"))
        assert f"(1 without a size estimate), repair cost est. {want:,} 円; " in line, line
    # (the cost with a minimum is more: every damage at least 20,000 円)
    assert _cost(sizes, open_dec, 20000.0) > _cost(sizes, open_dec, None) > 0
    out = tmp_path / "cost.xlsx"
    cfg.write_text(f"repair_cost:\n  per_m2: {prices}\n  minimum: 20000\n", encoding="utf-8")
    ok(patrol("stats", store, "--config", cfg, "--by", "year", "--until", "2026-12-31", "--out", out))
    ws = load_workbook(out)["stats"]
    head = [c.value for c in ws[1]]
    fmt = {h: c.number_format for h, c in zip(head, ws[2])}
    val = {h: c.value for h, c in zip(head, ws[6])}  # 2026, total
    assert val["分類\nclass"] == "total"
    assert fmt["補修対象面積(m²)\nopen area (m²)"] == "0.0" and fmt["補修面積(m²)\nrepaired area (m²)"] == "0.0"
    assert fmt["概算補修費(円)\nrepair cost estimate, open (円)"] == "#,##0"
    assert fmt["補修費概算(円)\nrepair cost estimate, repaired (円)"] == "#,##0"
    assert val["概算補修費(円)\nrepair cost estimate, open (円)"] == round(_cost(sizes, open_dec, 20000.0))
    # the year's repairs: R-000010's too (11-21)
    assert val["補修費概算(円)\nrepair cost estimate, repaired (円)"] == round(
        _cost(sizes, repaired_dec | {"R-000010"}, 20000.0))
    assert val["未対応 面積推定なし\nopen, no size estimate"] == 1


def test_stats_each_weeks_area_is_the_size_estimate_as_it_stood_then(tmp_path, monkeypatch):
    """A damage the second pass saw larger, and more surely (its detector's score 1.0, the first pass's 0.8: its
    sighting the registry's best from then on, ``Store._recompute``), holds the larger size today. The week before
    that pass (W47) keeps the backlog's area and cost it had when its report was made from the first pass alone, and
    a repair in it (R-000004, dated 11-21: reopened by the second pass's sighting) its size at the repair; the week
    after (W48) the sizes as they stand now. (The figures took every period from today's size: W47 grew.)"""
    import pandas as pd

    from detector.config import load_config
    from detector.store import Store

    roads = need(TOYAMA / "roads.geojson")
    p1 = pd.read_csv(need(TOYAMA / f"{P1}.oracle.csv"))
    p1["confidence"] = 0.8  # the first pass's detections, less sure than the second's
    first = tmp_path / "p1" / f"{P1}.oracle.csv"
    first.parent.mkdir()
    p1.to_csv(first, index=False)
    clock = [datetime(2026, 11, 21, 18, 0, tzinfo=JST)]
    monkeypatch.setattr("detector.config.now", lambda tz=None: clock[0].astimezone(tz))
    _located(tmp_path, first, roads)
    store = tmp_path / "registry.gpkg"
    cfg = tmp_path / "city.yaml"
    cfg.write_text("repair_cost:\n  per_m2: {" + ", ".join(f"{k}: {v:g}" for k, v in PRICES.items()) + "}\n",
                   encoding="utf-8")
    with Store.for_config(store, load_config(cfg)) as st:
        st.set_status("R-000004", "repaired", when=date(2026, 11, 21))
    before = _sizes(store)  # the sizes as they stood on W47's last day (the first pass's)
    args = ("stats", store, "--config", cfg, "--by", "week", "--until", "2026-11-29")
    ok(patrol(*args, "--out", tmp_path / "filed.csv"))  # the report made then
    clock[0] = datetime(2026, 11, 28, 10, 0, tzinfo=JST)
    _located(tmp_path, need(TOYAMA / f"{P2}.oracle.csv"), roads)
    now = _sizes(store)
    with Store(store) as st:
        assert st.status_of("R-000004") == "reopened"
    grew = [i for i in now if now[i][1] is not None and before[i][1] is not None and now[i][1] > before[i][1] + 0.05]
    assert "R-000004" in grew and len(grew) >= 3, (before, now)  # the second pass saw them larger (0.48 -> 0.79 m²)
    ok(patrol(*args, "--since", "2026-11-09", "--out", tmp_path / "again.csv"))  # and a week before any sighting
    _, filed = _rows(tmp_path / "filed.csv")
    _, rows = _rows(tmp_path / "again.csv")
    w47, w48 = rows[("2026-W47", "total")], rows[("2026-W48", "total")]
    open47 = set(before) - {"R-000004"}
    assert _v(rows[("2026-W46", "total")], "open") == 0 and _v(rows[("2026-W46", "total")], "open_area") == 0.0
    assert _v(w47, "open") == 30 and _v(w47, "repaired") == 1 and _v(w48, "open") == 31
    assert _close(_v(w47, "open_area"), sum(before[i][1] for i in open47))
    assert _close(_v(w47, "rep_area"), before["R-000004"][1]) and not _close(_v(w47, "rep_area"), now["R-000004"][1])
    assert _close(_v(w47, "open_cost"), _cost(before, open47, None), 0)
    assert _close(_v(w47, "rep_cost"), _cost(before, ["R-000004"], None), 0)
    assert _close(_v(w48, "open_area"), sum(a for _, a in now.values()))
    assert _v(w48, "open_area") > _v(w47, "open_area") + 0.5
    # the week's figures as its report gave them before the second pass: a filed report does not change
    for cls in ("D00", "D10", "D20", "D40", "total"):
        for k in ("open", "open_area", "open_no", "open_cost", "repaired", "rep_area", "rep_cost"):
            assert _v(rows[("2026-W47", cls)], k) == _v(filed[("2026-W47", cls)], k), (cls, k)


def test_stats_refuses_a_negative_unit_price(registry, tmp_path):
    """A negative price stops the command before any work, naming the setting and the class (exit 4)."""
    cfg = tmp_path / "city.yaml"
    cfg.write_text("repair_cost:\n  per_m2: {D00: 3000, D10: 3000, D20: 8000, D40: -15000}\n", encoding="utf-8")
    r = patrol("stats", registry["store"], "--config", cfg)
    assert r.returncode == 4, r.stderr
    assert "repair_cost.per_m2: D40: -15000 is not a price" in " ".join(r.stderr.split()) and "Traceback" not in r.stderr


def _tables(stdout: str) -> list[dict[str, dict[str, str]]]:
    """The console's tables, each {period: {heading (its lines joined): the cell as printed}}."""
    out, heads, rows = [], [], {}
    for line in stdout.splitlines():
        if line.startswith("┏"):
            heads, rows = [], {}
        elif line.startswith("┃"):
            cells = [x.strip() for x in line.rstrip().split("┃")[1:-1]]
            heads = [" ".join(filter(None, (h, c))) for h, c in zip(heads or [""] * len(cells), cells)]
        elif line.startswith("│ 20"):
            cells = [x.strip() for x in line.rstrip().split("│")[1:-1]]
            rows[cells[0]] = dict(zip(heads, cells))
        elif line.startswith("└"):
            out.append(rows)
    return out


def test_stats_console_table_gives_each_periods_area_and_cost_of_backlog_and_repairs_within_90_columns(
        registry, tmp_path):
    """The console per period gives the backlog's area at the period's end (`open m²`) and the repairs' in it
    (`repaired m²`) and, with the city's unit prices, their cost (`open cost 円`, `repaired cost 円`): the csv's
    figures of the period's total. At 90 columns no line is wider and no number is cut (rich alone cuts the widest
    column: `62,806…`): without prices one table (the headings broken between words); with a cost column, also of 8
    digits, the counts and the sizes in two tables. In a wide console one table of them all."""
    configs = [()]
    for scale in (1, 100):  # ×100: 8-digit costs (62,806,850 円), as a big backlog gives
        prices = "{" + ", ".join(f"{k}: {v * scale:g}" for k, v in PRICES.items()) + "}"
        cfg = tmp_path / f"city{scale}.yaml"
        cfg.write_text(f"repair_cost:\n  per_m2: {prices}\n  minimum: 20000\n", encoding="utf-8")
        configs.append(("--config", cfg))
    keys = {"found": "found", "repaired": "repaired", "not an issue": "not_an_issue", "reopened": "reopened",
            "open": "open", "open m²": "open_area", "repaired m²": "rep_area", "open cost 円": "open_cost",
            "repaired cost 円": "rep_cost"}
    for width in (90, 160):
        for config in configs:
            out = tmp_path / "stats.csv"
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("COLUMNS", str(width))
                r = ok(patrol("stats", registry["store"], *config, "--until", "2027-01-31", "--out", out))
            _, rows = _rows(out)
            lines = r.stdout.splitlines()
            assert max(len(x.rstrip()) for x in lines if x[:1] in "┏┃┡│└") <= width and "…" not in r.stdout, r.stdout
            tables = _tables(r.stdout)
            assert len(tables) == (2 if config and width == 90 else 1), r.stdout
            shown = set()
            for table in tables:
                assert sorted(table) == ["2026-11", "2026-12", "2027-01"], r.stdout
                for period, cells in table.items():
                    row = rows[(period, "total")]
                    for head, v in cells.items():
                        shown.add(head)
                        if head in keys:
                            got = float(v.replace(",", "")) if "m²" in head else int(v.replace(",", ""))
                            assert got == _v(row, keys[head]), (width, config, period, head, v)
            want = {"period", *keys, "days med", "days p90"} - (set() if config else {"open cost 円", "repaired cost 円"})
            assert shown == want, (shown, r.stdout)
            # December's backlog: 26 damages, 149.7 m² as the summary line gives today's; its repairs' area
            dec = next(t["2026-12"] for t in tables if "open m²" in t["2026-12"])
            assert dec["open m²"] == "149.7" and "open now 26, 149.7 m²" in r.stdout
            assert float(dec["repaired m²"]) == _v(rows[("2026-12", "total")], "rep_area") > 0
