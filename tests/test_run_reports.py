"""Citizen reports (住民通報) in a run's own report.html (``patrol run … --store``), and the map's report column and
search. Real data: the sample's first pass run into a registry (no reports yet), a city's reports export made from
the drive's true damage sites (truth.geojson, as test_citizen_reports makes it) with one report on the drive's road
where no damage is (未確認, near its track), one 200 m off the road and two kilometres away; then the second pass run
into the same registry. The run's map shows the reports of the damages it saw and the 未確認 ones on its roads."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import TOYAMA, need
from test_citizen_reports import (FAR, RADIUS, _expected, _export_rows, _m, _match_label, _page_data, _read_csv,
                                  _sites, _write)
from test_cli import P1, P2, _read_list, _write_list, ok, patrol

ROADS = TOYAMA / "roads.geojson"


def _frames(out: Path) -> tuple[np.ndarray, np.ndarray]:
    """The used frames' positions of a run (its frames.csv): its track."""
    with open(out / "frames.csv", encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["status"] == "ok" and r["lat"] and r["lon"]]
    return np.array([float(r["lat"]) for r in rows]), np.array([float(r["lon"]) for r in rows])


def _damages(store: Path) -> tuple:
    """(the registry, its damages: candidate_id -> (lat, lon), their classes), as test_citizen_reports' fixture."""
    from detector.store import Store

    with Store(store) as st:
        q = st.query(lists=False)
    return (store, {c: (la, lo) for c, la, lo in zip(q["candidate_id"], q["lat"], q["lon"])},
            dict(zip(q["candidate_id"], q["class"])))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """p1 run with --store (the registry holds no reports), the reports imported, then p2 run with --store."""
    p1, p2 = need(TOYAMA / P1), need(TOYAMA / P2)
    d = tmp_path_factory.mktemp("runreports")
    cfg, store = d / "city.yaml", d / "registry.gpkg"
    cfg.write_text("privacy:\n  blur_faces: false\n  blur_plates: false\n", encoding="utf-8")  # (blur: the slow part)
    ok(patrol("run", p1, "--roads", ROADS, "--out", d / "p1", "--config", cfg, "--store", store))
    sites = _sites()
    damages = _damages(store)[1]
    lat, lon = _frames(d / "p1")
    sla, slo = np.array([s[1] for s in sites]), np.array([s[2] for s in sites])
    dla, dlo = np.array([v[0] for v in damages.values()]), np.array([v[1] for v in damages.values()])
    # the frame of the drive farthest from every damage and true site (30 m: the sample is dense with damage): a report there is on the drive's road
    # and 未確認
    far_from = [min(_m(a, b, dla, dlo).min(), _m(a, b, sla, slo).min()) for a, b in zip(lat, lon)]
    k = int(np.argmax(far_from))
    assert far_from[k] >= RADIUS + 5, far_from[k]
    # 200 m off that frame, across the road (of north, east, south, west: the one farthest from the track)
    dy, dx = 200 / 111_195, 200 / (111_195 * np.cos(np.radians(lat[k])))
    off = max(((lat[k] + a, lon[k] + b) for a, b in ((dy, 0), (0, dx), (-dy, 0), (0, -dx))),
              key=lambda p: _m(p[0], p[1], lat, lon).min())
    assert _m(off[0], off[1], lat, lon).min() > 100
    extra = [("MCR-950", lat[k], lon[k]), ("MCR-951", *off)]
    rows = _export_rows(sites) + [[rid, "2026/11/25 8:00", f"{a:.7f}", f"{b:.7f}", "道路", "段差", "", "受付"]
                                  for rid, a, b in extra]
    ok(patrol("import-reports", store, _write(d / "mcr.csv", rows, "utf-8")))
    shutil.copy(store, d / "registry-nr.gpkg")  # the same registry for p2 run with --no-report
    ok(patrol("run", p2, "--roads", ROADS, "--out", d / "p2", "--config", cfg, "--store", store))
    shutil.copytree(d / "p2", d / "p2nr")  # (its resume state: the detections are not made again)
    ok(patrol("run", p2, "--roads", ROADS, "--out", d / "p2nr", "--config", cfg, "--store", d / "registry-nr.gpkg",
              "--no-report"))
    return {"dir": d, "store": store, "cfg": cfg, "sites": sites + FAR + extra, "extra": extra}


def test_run_report_html_maps_the_reports_of_its_damages_and_roads(runs):
    """The run's report.html (with --store, the registry holding reports) draws the reports of the damages the run
    saw (by their registry ids: the same damage as the registry's own report) and the 未確認 ones within
    reports.radius_m of its used frames; not a report of a damage it did not see, nor an 未確認 one off its roads
    (200 m off, kilometres away). Each damage's report count is in its data. The first run, into a registry without
    reports, has none of the layer (the page as before). Before: no reports in a run's map at all."""
    d = runs["dir"]
    html0 = (d / "p1" / "report.html").read_text(encoding="utf-8")
    assert "reports" not in _page_data(html0) and "repPopup" not in html0 and "@reports" not in html0
    assert '["reports", "通報"' not in html0
    html = (d / "p2" / "report.html").read_text(encoding="utf-8")
    assert "@reports" not in html
    data = _page_data(html)
    assert "reports" in data, "the run's map has no citizen reports"
    damages = _damages(runs["store"])
    expected = _expected(runs["sites"], damages)  # every report's damage (None: 未確認) in the registry now
    cands = {c["candidate_id"]: c for c in data["candidates"]}
    lat, lon = _frames(d / "p2")
    site = {rid: (a, b) for rid, a, b in runs["sites"]}
    on_track = {rid for rid, c in expected.items() if c is None and _m(*site[rid], lat, lon).min() <= RADIUS}
    want = {rid for rid, c in expected.items() if c in cands} | on_track
    got = {r[1]: r for r in data["reports"]["rows"]}
    assert set(got) == want, (sorted(set(got) - want), sorted(want - set(got)))
    assert {rid: r[5] for rid, r in got.items()} == {rid: expected[rid] for rid in want}
    assert "MCR-950" in on_track and not {"MCR-951", FAR[0][0], FAR[1][0]} & set(got)
    assert len(want) - len(on_track) >= 10  # the drive's damages reported at the true sites
    counts = {c: sum(1 for r in got.values() if r[5] == c) for c in cands}
    assert {c: x["reports"] for c, x in cands.items()} == counts
    # the registry's own map holds them all (the run's map: the run's share)
    out = d / "registry.html"
    ok(patrol("export", runs["store"], "--format", "html", "--out", out))
    assert len(_page_data(out.read_text(encoding="utf-8"))["reports"]["rows"]) == len(expected)


def test_run_map_table_counts_reports_and_enter_reopens_a_report(runs, tmp_path):
    """In Chromium, the run's map: the run's reports drawn (未確認 large, matched small) with the rings of its reported
    damages; the table has a 通報 column (each damage's number of reports; a secondary column: class opt, hidden on a
    phone's width) whose first click puts the most reported first; a report's id typed in the search opens its popup,
    and once the popup is closed, Enter in the search opens it again (before: no column; Enter did nothing, the text
    unchanged)."""
    from test_report import console_errors, probe_of, render, selfcheck, with_probe

    page = tmp_path / "report.html"
    page.write_text((runs["dir"] / "p2" / "report.html").read_text(encoding="utf-8"), encoding="utf-8")
    data = _page_data(page.read_text(encoding="utf-8"))
    rows = data["reports"]["rows"]
    n_unseen = sum(r[5] is None for r in rows)
    unseen = next(r[1] for r in rows if r[5] is None)
    probe = "window.__found"
    when = f"""var f = document.getElementById('f-text'), found = window.__found = {{}};
        function pop() {{ var pp = document.querySelector('.leaflet-popup'); return pp && pp.textContent; }}
        var q = function (s) {{ return document.querySelectorAll(s).length; }};
        found.unseen = q('.leaflet-rep-pane path.rep-unseen'); found.seen = q('.leaflet-rep-pane path.rep-seen');
        found.rings = q('.leaflet-repring-pane path.rep-ring');
        var ths = [].slice.call(document.querySelectorAll('#tbl thead th')), k = -1;
        ths.forEach(function (th, i) {{ if (th.textContent.indexOf('通報') === 0) k = i; }});
        found.col = k; found.opt = k >= 0 && ths[k].classList.contains('opt');
        if (k >= 0) {{ ths[k].click();
          found.sorted = [].map.call(document.querySelectorAll('#tbl tbody tr'), function (r) {{
            return [r.cells[0].textContent, r.cells[k].textContent]; }}); }}
        setTimeout(function () {{
          f.value = '{unseen}'; f.dispatchEvent(new Event('input', {{bubbles: true}}));
          setTimeout(function () {{ found.typed = pop();
            document.querySelector('.leaflet-popup-close-button').click();
            setTimeout(function () {{ found.closed = pop();
              f.dispatchEvent(new KeyboardEvent('keydown', {{key: 'Enter', bubbles: true, cancelable: true}}));
              setTimeout(function () {{ found.enter = pop(); probe(); }}, 600); }}, 600); }}, 600); }}, 1500)"""
    dom, err = render(with_probe(page, probe, when))
    n = len(data["candidates"])
    assert selfcheck(dom) == f"report-ok:{n}:{n}" and not console_errors(err), (selfcheck(dom), console_errors(err))
    p = probe_of(dom)
    assert (p["unseen"], p["seen"]) == (n_unseen, len(rows) - n_unseen), p
    assert p["rings"] == len({r[5] for r in rows if r[5]}), p
    assert p["col"] >= 0 and p["opt"], p
    want = {c["candidate_id"]: c["reports"] for c in data["candidates"]}
    got = [(cid.split()[0], int(v)) for cid, v in p["sorted"]]
    assert dict(got) == want and [v for _, v in got] == sorted(want.values(), reverse=True), got
    assert p["typed"] and p["typed"].startswith(f"住民通報 / citizen report {unseen}") and "未確認" in p["typed"], p
    assert p["closed"] is None, p
    assert p["enter"] and p["enter"].startswith(f"住民通報 / citizen report {unseen}"), p


def _list_reports(path: Path) -> dict[str, tuple[str, str]]:
    """A repair list's (or an export's) candidate_id -> (reports, reported_first), as written."""
    return {r["candidate_id"]: (r["reports"], r["reported_first"]) for r in _read_csv(path)}


def test_run_lists_say_how_many_reports_each_damage_has(runs):
    """The run's repair_list.csv and candidates.geojson (with --store) carry each damage's citizen reports, as the
    registry's own list: ``reports`` (how many are of it: brute force over the reports' sites; 0 for none) and
    ``reported_first`` (the first one's time), right after the passes' columns (the registry lists' order), the same
    with --no-report (matched only near the run's damages); the first run, into a registry without reports: the
    columns there, empty (null in the geojson). Before: no such columns in a run's lists."""
    d = runs["dir"]
    head, _ = _read_list(d / "p2" / "repair_list.csv")
    at = head.index("last_passed")
    assert head[at + 1:at + 3] == ["reports", "reported_first"] and head[at + 3] == "status", head
    got = _list_reports(d / "p2" / "repair_list.csv")
    damages = _damages(runs["store"])
    expected = _expected(runs["sites"], damages)
    want = {c: sum(1 for v in expected.values() if v == c) for c in got}
    assert {c: int(v[0]) for c, v in got.items()} == want
    assert sum(want.values()) >= 10 and 0 in want.values()  # reported damages and others
    # the registry's list says the same of each (its reported_first too)
    reg = d / "registry-list.csv"
    ok(patrol("export", runs["store"], "--format", "csv", "--out", reg))
    registry = _list_reports(reg)
    assert got == {c: registry[c] for c in got}
    assert all(bool(first) == (n != "0") for n, first in got.values()), got
    # --no-report: the same (its registry a copy of the same one, the same run merged into it)
    assert _list_reports(d / "p2nr" / "repair_list.csv") == got
    # candidates.geojson: the same numbers, after status
    for run in ("p2", "p2nr"):
        feats = json.loads((d / run / "candidates.geojson").read_text(encoding="utf-8"))["features"]
        keys = list(feats[0]["properties"])
        assert keys[keys.index("status") + 1:keys.index("status") + 3] == ["reports", "reported_first"], keys
        assert {f["properties"]["candidate_id"]: (str(f["properties"]["reports"]), f["properties"]["reported_first"] or "")
                for f in feats} == got
    # the first run, into a registry without reports: the columns, empty
    head1, rows1 = _read_list(d / "p1" / "repair_list.csv")
    assert head1 == head and rows1 and all(r["reports"] == r["reported_first"] == "" for r in rows1)
    props = [f["properties"] for f in json.loads((d / "p1" / "candidates.geojson").read_text())["features"]]
    assert all(p["reports"] is None and p["reported_first"] is None for p in props)


def test_crew_list_with_the_report_columns_imports_as_before(runs, tmp_path):
    """The run's repair list, with its reports / reported_first, filled in by a crew imports back (the import reads
    neither column); a list without them (a run's list before them) too."""
    store = tmp_path / "registry.gpkg"
    shutil.copy(runs["store"], store)
    head, rows = _read_list(runs["dir"] / "p2" / "repair_list.csv")
    assert "reports" in head and any(r["reports"] not in ("", "0") for r in rows)
    reported = next(r for r in rows if r["reports"] not in ("", "0"))
    reported.update(status="confirmed", note="通報あり / reported", checked_by="佐藤")
    _write_list(tmp_path / "crew.csv", head, rows)
    r = ok(patrol("import-verification", store, tmp_path / "crew.csv"))
    assert "applied 1" in r.stdout, r.stdout
    # a list without the columns (as a run wrote it before them), into the registry as the run left it
    old = tmp_path / "registry-old.gpkg"
    shutil.copy(runs["store"], old)
    head, rows = _read_list(runs["dir"] / "p2" / "repair_list.csv")
    other = rows[-1]
    other.update(status="confirmed", checked_by="佐藤")
    for x in rows:
        x.pop("reports"), x.pop("reported_first")
    _write_list(tmp_path / "old.csv", [h for h in head if h not in ("reports", "reported_first")], rows)
    r = ok(patrol("import-verification", old, tmp_path / "old.csv"))
    assert "applied 1" in r.stdout, r.stdout
    from detector.store import Store

    for path, cid, note in ((store, reported["candidate_id"], "通報あり / reported"), (old, other["candidate_id"], None)):
        with Store(path) as st:
            q = st.query(lists=False).set_index("candidate_id")
        assert q.loc[cid, "status"] == "confirmed" and (q.loc[cid, "status_note"] or None) == note, q.loc[cid]


def test_locate_into_the_registry_lists_the_reports_too(runs, tmp_path):
    """`patrol locate … --store` (no report.html of its own): its repair list and candidates.geojson carry each
    damage's reports as the registry's list does (the reports near its damages matched: ``damage_matches``)."""
    store = tmp_path / "registry.gpkg"
    shutil.copy(runs["store"], store)
    ok(patrol("locate", need(TOYAMA / f"{P2}.oracle.csv"), "--roads", ROADS, "--out", tmp_path / "loc", "--config",
              runs["cfg"], "--store", store))
    got = _list_reports(tmp_path / "loc" / "repair_list.csv")
    reg = tmp_path / "registry.csv"
    ok(patrol("export", store, "--format", "csv", "--out", reg))
    registry = _list_reports(reg)
    assert got == {c: registry[c] for c in got} and any(n not in ("", "0") for n, _ in got.values()), got
    feats = json.loads((tmp_path / "loc" / "candidates.geojson").read_text(encoding="utf-8"))["features"]
    assert {f["properties"]["candidate_id"]: str(f["properties"]["reports"]) for f in feats} == \
        {c: n for c, (n, _) in got.items()}


def test_run_lists_and_report_give_each_damage_its_repair_job(runs, tmp_path):
    """A run with --store into a registry holding a jobs list (patrol export --format jobs): its repair_list.csv,
    candidates.geojson and report.html give each open damage its repair job (job_id, after reported_first, as the
    registry's own list), the job the registry's list gives it; a damage repaired since the jobs list: empty. Into a
    registry without a jobs list (the fixture's runs): no job_id at all. The run's list, filled in, imports as
    before."""
    from test_report_condition import page_data

    d = runs["dir"]
    head, _ = _read_list(d / "p2" / "repair_list.csv")
    assert "job_id" not in head
    assert "job_id" not in json.loads((d / "p2" / "candidates.geojson").read_text(encoding="utf-8"))["features"][0][
        "properties"]
    assert "job_id" not in [c["id"] for c in page_data(d / "p2" / "report.html")["columns"]]
    store = tmp_path / "registry.gpkg"
    shutil.copy(runs["store"], store)
    ok(patrol("export", store, "--format", "jobs", "--roads", ROADS, "--out", tmp_path / "jobs.csv"))
    of = {c: r["工区 job_id"] for r in _read_csv(tmp_path / "jobs.csv") for c in r["損傷ID candidate_ids"].split(";")}
    _, p2 = _read_list(d / "p2" / "repair_list.csv")
    done = next(r["candidate_id"] for r in p2 if r["candidate_id"] in of)  # repaired after the jobs list
    ok(patrol("status", store, done, "--set", "repaired"))
    shutil.copytree(d / "p2", tmp_path / "p2")  # (its resume state: the detections are not made again)
    ok(patrol("run", need(TOYAMA / P2), "--roads", ROADS, "--out", tmp_path / "p2", "--config", runs["cfg"],
              "--store", store))
    ok(patrol("export", store, "--format", "csv", "--out", tmp_path / "registry.csv"))
    registry = {r["candidate_id"]: r["job_id"] for r in _read_csv(tmp_path / "registry.csv")}
    head, rows = _read_list(tmp_path / "p2" / "repair_list.csv")
    assert head[head.index("reported_first") + 1] == "job_id" and head[head.index("job_id") + 1] == "status", head
    got = {r["candidate_id"]: r["job_id"] for r in rows}
    assert got == {c: registry[c] for c in got}
    assert got[done] == "" and sum(1 for c, v in got.items() if v and v == of[c]) == len(got) - 1 >= 10, got
    feats = json.loads((tmp_path / "p2" / "candidates.geojson").read_text(encoding="utf-8"))["features"]
    keys = list(feats[0]["properties"])
    assert keys[keys.index("reported_first") + 1] == "job_id", keys
    assert {f["properties"]["candidate_id"]: f["properties"]["job_id"] or "" for f in feats} == got
    page = page_data(tmp_path / "p2" / "report.html")
    cols = [c["id"] for c in page["columns"]]
    assert cols[cols.index("reported_first") + 1] == "job_id", cols
    assert {c["candidate_id"]: c.get("job_id") or "" for c in page["candidates"]} == got
    # the crew's list with the job column imports as before (the import reads no job_id of a repair list)
    row = next(r for r in rows if r["job_id"])
    row.update(status="confirmed", checked_by="佐藤")
    _write_list(tmp_path / "crew.csv", head, rows)
    r = ok(patrol("import-verification", store, tmp_path / "crew.csv"))
    assert "applied 1" in r.stdout, r.stdout
