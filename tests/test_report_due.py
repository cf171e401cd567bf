"""The registry map's patrol-due layer (巡回予定 / patrol due; README: report.html): ``patrol export REGISTRY --format
html --roads R`` draws the segments on a patrol cycle coloured by when their next patrol is due on the day the map is
made, as ``--format due`` lists them (``due.due_table``). Real data: the registry of the sample drive's two passes (p1
2026-11-20, p2 2026-11-27, with their frames: tests/test_export_segments.py's fixture) on a copy of the sample network
(11,239 segments; the one of no length left out) naming its roads (``test_stats._name_of``), frequencies per road
chosen from today so that every state shows, and a road due exactly today: the export has no ``--at``, so the
expectations are ``due_table`` at today too."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from conftest import TOYAMA, in_phone
from test_export_segments import registry  # noqa: F401 (the fixture)
from test_report import console_errors, probe_of, render, selfcheck, with_probe
from test_report_condition import page_data, patrol
from test_stats import _name_of
from test_store_passes import sample  # noqa: F401 (the fixture registry needs)

ROADS = TOYAMA / "roads.geojson"
P2_DAY = date(2026, 11, 27)  # the sample's later pass: every surveyed segment's last patrol is it or p1's 11-20
STATES = ("over", "soon", "ok", "never")


def state_of(last: str | None, every: int, at: date, soon: int = 7) -> str:
    """The page's colour of a segment (README): due (that day or overdue: the list's ``days_overdue`` >= 0, as its
    console line counts due; class ``due-over``), due within ``soon`` days after it, not yet due, never surveyed."""
    if not last:
        return "never"
    over = (at - (date.fromisoformat(last) + timedelta(days=int(every)))).days
    return "over" if over >= 0 else "soon" if over >= -soon else "ok"


@pytest.fixture(scope="module")
def due_map(registry, tmp_path_factory):  # noqa: F811
    """(the map, its data, the expected rows: ``due_table`` at today, each with its state, the config, today) of a
    registry map on the named network, its frequencies set so that today one road is overdue (p1's segment that p2
    covered too little, last patrolled 11-20), one due today (p2's 線 137: 11-27 + the days since), one due within the
    week, the others not yet due; the expected rows carry the list's own ``Due.due`` (``is_due``)."""
    path, _, _ = registry
    from detector.config import load_config
    from detector.due import due_table
    from detector.roads import load_roads
    from detector.store import Store

    d = tmp_path_factory.mktemp("duemap")
    doc = json.loads(ROADS.read_text(encoding="utf-8"))
    for f in doc["features"]:
        f["properties"]["name"] = _name_of(f["properties"]["segment_id"])
    roads = d / "roads-named.geojson"
    roads.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    config = d / "city.yaml"
    config.write_text("municipality: test\n", encoding="utf-8")
    cfg = load_config(config)
    today = datetime.now(cfg.tz).date()
    if today < P2_DAY:
        pytest.skip(f"the machine's clock ({today}) is before the sample's passes ({P2_DAY}): nothing patrolled yet")
    since = (today - P2_DAY).days
    if since < 1:
        pytest.skip(f"the machine's clock ({today}) is the sample's last pass's day: no road can fall due today")
    # 00000037-2721-2731 (線 680): p1 covered it, p2 too little: due 11-20 + every, 3 days overdue today; 線 137's 4
    # segments (p2) due exactly today; 線 139's (p2) due in 3 days; the others every since + 30: not yet due (the never
    # surveyed: due)
    freq = {"線 680": since + 7 - 3, "線 137": since, "線 139": since + 3}
    config.write_text(f"municipality: test\nsurvey:\n  every_days: {since + 30}\n  by:\n    field: road_name\n"
                      "    every_days:\n" + "".join(f"      {k}: {v}\n" for k, v in freq.items()), encoding="utf-8")
    cfg = load_config(config)
    out = d / "map.html"
    patrol("export", path, "--format", "html", "--roads", roads, "--config", config, "--out", out)
    with Store.for_config(path, cfg) as st:
        frames = st.survey_frames(until=today)
    due = due_table(load_roads(roads, cfg), frames, cfg, today)
    t = due.table.assign(is_due=due.due.to_numpy())
    t = t.assign(state=[state_of(a, e, today) for a, e in zip(t["last_surveyed"], t["every_days"])])
    return out, page_data(out), t, cfg, today


def test_registry_map_carries_the_due_layer_as_the_due_list(due_map, registry, tmp_path):  # noqa: F811
    """The map's patrol-due layer holds every segment ``--format due`` lists today, in lines merged per road,
    frequency and last patrol (each line's segment count and metres those of its rows), each state as many segments
    as the list's: overdue, due within 7 days, not yet due, never surveyed; its day is today. Without --roads: none."""
    out, data, t, _, today = due_map
    du = data["due"]
    assert du["at"] == today.isoformat() and du["soon"] == 7 and len(du["colors"]) == 4
    want = t.groupby(["road_name", "every_days", t["last_surveyed"].fillna("")]).agg(k=("segment_id", "size"),
                                                                                     m=("length_m", "sum"))
    got = {(s["n"] or "", s["e"], s["t"] or ""): s for s in du["lines"]}
    assert len(got) == len(du["lines"]) == len(want), (len(got), len(want))
    for key, row in want.iterrows():
        s = got[key]
        assert s["k"] == row["k"] and s["m"] == pytest.approx(row["m"], abs=1), (key, s["k"], s["m"], row)
        assert all(len(line) >= 4 and len(line) % 2 == 0 for line in s["d"]), key
    per_state = {st: sum(s["k"] for s in du["lines"] if state_of(s["t"], s["e"], today) == st) for st in STATES}
    assert per_state == t["state"].value_counts().reindex(list(STATES), fill_value=0).to_dict(), per_state
    assert all(per_state[st] >= 1 for st in STATES) and per_state["never"] > 11000, per_state  # a real spread
    # every segment of the network but its one of no length (two equal points, never coverable: left out, as the list)
    assert sum(per_state.values()) == len(t) == 11238 and "00000037-374-1303" not in set(t["segment_id"])
    # the map says due what the list says due (due today included): red plus dashed grey = the console line's count
    today_k = int((t["days_overdue"] == 0).sum())
    assert today_k == 4 and per_state["over"] == today_k + 1, per_state
    assert per_state["over"] + per_state["never"] == int(t["is_due"].sum()), (per_state, int(t["is_due"].sum()))
    path, _, _ = registry
    patrol("export", path, "--format", "html", "--out", tmp_path / "bare.html")
    assert page_data(tmp_path / "bare.html")["due"]["lines"] == []


def test_due_layer_toggles_and_a_segment_shows_when_it_is_due_in_chromium(due_map, tmp_path):
    """Off when the page opens; its checkbox draws one line per road/frequency/last patrol, coloured by its state
    (due, today or overdue, red; within 7 days orange; not yet due green; never surveyed dark grey dashed: as many of
    each as the data's groups), its key counting each state's segments as the due list does (red and grey together the
    list's due count: a road due today is red, not orange), and adds due=1 to the link; a click on the overdue road
    opens its popup: road, last patrolled, every N days, due day, days overdue; one on the road due today says "due
    today"; unticked, the layer goes. A link with #due=1 opens with it on."""
    out, data, t, _, today = due_map
    du = data["due"]
    page = tmp_path / "d.html"
    shutil.copy(out, page)
    with_probe(page, """(function () {
      function paths(c) { return document.querySelectorAll('#map path.due' + (c ? '.due-' + c : '')); }
      var cb = document.getElementById('due-on'), r = {box: !!cb, checked0: cb && cb.checked, before: paths().length};
      cb.click();
      r.after = paths().length; r.hash = location.hash;
      r.n = {}; r.colors = {}; r.dash = {};
      ['over', 'soon', 'ok', 'never'].forEach(function (c) {
        var ps = paths(c); r.n[c] = ps.length;
        r.colors[c] = [].map.call(ps, function (p) { return p.getAttribute('stroke'); }).filter(function (v, i, a) { return a.indexOf(v) === i; });
        r.dash[c] = ps.length ? ps[0].getAttribute('stroke-dasharray') : null;
      });
      r.key = document.querySelector('.duekey').textContent;
      r.label = document.querySelector('.duectl label').textContent;
      r.popups = [].map.call(paths('over'), function (p) {  // each due line's popup (its middle: the popup's place)
        var pt = p.getPointAtLength(p.getTotalLength() / 2), m = p.getScreenCTM(), x = m.a * pt.x + m.e, y = m.d * pt.y + m.f;
        p.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true, clientX: x, clientY: y, view: window}));
        var c = document.querySelectorAll('.leaflet-popup-content');  // (the one before fades out: the last is it)
        return c.length ? c[c.length - 1].textContent : null;
      });
      cb.click();
      r.off = paths().length; r.hashOff = location.hash;
      return r; })()""", when="setTimeout(probe, 2500)")
    dom, err = render(page, "", "--window-size=1400,1000")
    assert selfcheck(dom).startswith("report-ok:") and not console_errors(err), (selfcheck(dom), console_errors(err))
    p = probe_of(dom)
    assert p["box"] and p["checked0"] is False and p["before"] == 0, p
    groups = {st: [s for s in du["lines"] if state_of(s["t"], s["e"], today) == st] for st in STATES}
    assert p["after"] == len(du["lines"]) and "due=1" in p["hash"], p
    assert p["n"] == {st: len(groups[st]) for st in STATES}, p
    colours = dict(zip(STATES, du["colors"]))
    assert p["colors"] == {st: [colours[st]] if groups[st] else [] for st in STATES}, p
    assert p["dash"]["never"] == "6,6" and p["dash"]["over"] is None, p
    counts = t["state"].value_counts()
    for st, words in zip(STATES, ("due (today or overdue)", "due within 7 days", "not yet due", "never surveyed")):
        assert f"{words}: {counts.get(st, 0)} 区間 segments" in p["key"], (st, p["key"])
    assert counts["over"] + counts["never"] == t["is_due"].sum() and (t["days_overdue"] == 0).sum() == 4, counts
    assert f"as of {today.isoformat()}" in p["key"] and f"({len(t)} 区間 segments)" in p["label"], p
    # the overdue road: 00000037-2721-2731, last patrolled by p1, 3 days overdue; 線 137, due today
    row = t[t["state"] == "over"].iloc[0]
    due_day = date.fromisoformat(row["last_surveyed"]) + timedelta(days=int(row["every_days"]))
    assert len(p["popups"]) == 2 and all(p["popups"]), p
    popup = next(x for x in p["popups"] if f"路線名 road{row['road_name']}" in x)
    for text in (f"patrol due: 期限超過 / overdue", f"last patrolled{row['last_surveyed']}",
                 f"every{row['every_days']} 日 / days", f"巡回期限 due{due_day.isoformat()}",
                 f"{(today - due_day).days} days overdue"):
        assert text in popup, (text, popup)
    (popup,) = [x for x in p["popups"] if "路線名 road線 137" in x] or [p["popups"]]
    for text in ("patrol due: 本日が期限 / due today", f"巡回期限 due{today.isoformat()}", "超過日数 days overdue本日が期限 / due today",
                 "区間 segments4 区間 segments"):
        assert text in popup, (text, popup)
    assert p["off"] == 0 and "due=1" not in p["hashOff"], p
    # a link with the layer on; a never-surveyed road's popup says so
    page2 = tmp_path / "d2.html"
    shutil.copy(out, page2)
    with_probe(page2, """(function () { var r = {on: document.querySelectorAll('#map path.due').length,
        cb: document.getElementById('due-on').checked}, p = document.querySelector('#map path.due-never');
      p.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true, view: window}));
      r.popup = (document.querySelector('.leaflet-popup-content') || {}).textContent || null; return r; })()""")
    dom, err = render(page2, "#due=1", "--window-size=1400,1000")
    assert selfcheck(dom).startswith("report-ok:") and not console_errors(err), (selfcheck(dom), console_errors(err))
    p = probe_of(dom)
    assert p["on"] == len(du["lines"]) and p["cb"] is True, p
    assert "patrol due: 未巡回 / never surveyed" in p["popup"] and "last patrolled未巡回 / never surveyed" in p["popup"], p


def test_due_and_condition_keys_fit_a_phone(due_map, tmp_path):
    """Both layers on, the legend opened: on a 375 and a 320 px phone the layer controls (the repair jobs' too, a
    line of its own) and the legend, listed under the one button they fold into there (表示 / layers, tapped), keep
    within the viewport's width, clear of the zoom buttons, the list within the map's height (scrolled where taller)
    and the boxes clear of each other, their
    keys folded and their tick boxes and folding lines finger-sized (40 px); on a 1280 px desktop the keys open, the
    three boxes still apart and clear of the zoom buttons, no button."""
    out = due_map[0]
    expr = """(function () { function r(s) { var b = document.querySelector(s).getBoundingClientRect();
        return [b.left, b.top, b.right, b.bottom]; }
      var btn = document.querySelector('.layerstog button'), tog = btn && btn.getClientRects().length > 0;
      if (tog) btn.click();
      document.querySelector('.legend').open = true;
      return {vw: window.innerWidth, sideways: document.scrollingElement.scrollWidth - window.innerWidth, tog: tog,
              list: r('.leaflet-top.leaflet-right'),
              taps: ['.duectl label', '.duekey summary'].map(function (s) { var b = r(s); return b[3] - b[1]; }),
              map: r('#map'), zoom: r('.leaflet-control-zoom'), cond: r('.condctl'), due: r('.duectl'), legend: r('.legend'),
              jobs: r('.jobsctl'), keyOpen: [document.querySelector('.condkey').open, document.querySelector('.duekey').open],
              paths: document.querySelectorAll('#map path.due').length}; })()"""

    def apart(a, b):
        return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]

    for width, height in ((375, 812), (320, 568), (1280, 812)):
        page = tmp_path / f"d{width}.html"
        shutil.copy(out, page)
        p = in_phone(page, "#cond=1&due=1", expr, width, height)
        assert p["vw"] == width and p["paths"] >= 4 and p["sideways"] <= 0, p
        boxes = ("cond", "due", "jobs", "legend")  # (the repair jobs' box: one line, no key)
        assert p["tog"] is (width < 600), (width, p)  # a phone's: folded into the button, here tapped open
        for i, a in enumerate(boxes):
            assert apart(p[a], p["zoom"]) and p[a][2] <= p["vw"], (width, a, p)
            assert p["map"][1] <= p[a][1] and (p[a][3] <= p["map"][3] or p["tog"]), (width, a, p)
            for b in boxes[i + 1:]:
                assert apart(p[a], p[b]), (width, a, b, p)
        if width < 600:
            assert min(p["taps"]) >= 40 and p["keyOpen"] == [False, False], (width, p)
            assert p["map"][1] <= p["list"][1] and p["list"][3] <= p["map"][3], (width, p)  # (scrolled within)
        else:
            assert p["keyOpen"] == [True, True], p


def test_legend_keeps_beside_the_keys_on_a_desktop(registry, tmp_path):  # noqa: F811
    """The sample registry's map (``patrol export REGISTRY --format html --roads`` the sample network) on a 1280×800
    desktop, the legend open as it opens there, the layers off and on (their keys open): the legend no wider than 45 %
    of the map, its long lines wrapped (the dotted hollow ring's), clear of the road-condition and patrol-due controls
    and of the zoom buttons, within the map (its own scroll bar where taller). Before: 680 px of the map's 690, its
    ring line on one line, over half the map."""
    path, _, _ = registry
    out = tmp_path / "map.html"
    patrol("export", path, "--format", "html", "--roads", ROADS, "--out", out)
    expr = """(function () { function r(s) { var b = document.querySelector(s).getBoundingClientRect();
        return [b.left, b.top, b.right, b.bottom]; }
      var lg = document.querySelector('.legend');
      return {map: r('#map'), zoom: r('.leaflet-control-zoom'), cond: r('.condctl'), due: r('.duectl'), legend: r('.legend'),
              open: lg.open, text: lg.textContent,
              keyOpen: [document.querySelector('.condkey').open, document.querySelector('.duekey').open]}; })()"""

    def apart(a, b):
        return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]

    for fragment in ("", "#cond=1&due=1"):
        page = tmp_path / f"desk{len(fragment)}.html"
        shutil.copy(out, page)
        p = in_phone(page, fragment, expr, 1280, 800)
        m, lg = p["map"], p["legend"]
        assert p["open"] is True and "dotted hollow ring" in p["text"] and p["keyOpen"] == [True, True], p
        assert lg[2] - lg[0] <= 0.45 * (m[2] - m[0]), (fragment, lg[2] - lg[0], m[2] - m[0], p)
        for key in ("cond", "due", "zoom"):
            assert apart(lg, p[key]), (fragment, key, p)
        assert m[0] <= lg[0] and m[1] <= lg[1] and lg[2] <= m[2] and lg[3] <= m[3], (fragment, p)


def test_max_mb_leaves_the_due_layer_out_first(due_map, registry, tmp_path):  # noqa: F811
    """--max-mb keeps the patrol-due layer over the photos, as the condition layer: a cap the map fits under keeps
    it; one the damages' data alone only fits without the layers leaves it out (the due layer first; the repair jobs
    layer too) and says so."""
    out, data, t, cfg, _ = due_map
    path, _, _ = registry
    roads, config = out.parent / "roads-named.geojson", out.parent / "city.yaml"
    r = patrol("export", path, "--format", "html", "--roads", roads, "--config", config, "--out", tmp_path / "fits.html",
               "--max-mb", "50")
    assert "layer" not in r.stdout and len(page_data(tmp_path / "fits.html")["due"]["lines"]) == len(data["due"]["lines"])
    r = patrol("export", path, "--format", "html", "--roads", roads, "--config", config, "--out", tmp_path / "cap.html",
               "--max-mb", "0.01")
    assert f"patrol due layer ({len(t):,} segments) left out to fit 0.01 MB" in r.stdout, r.stdout
    assert "road condition layer (" in r.stdout, r.stdout
    assert f"repair jobs layer ({len(data['jobs']['rows'])} jobs) left out to fit 0.01 MB" in r.stdout, r.stdout
    cap_data = page_data(tmp_path / "cap.html")
    assert cap_data["due"]["lines"] == [] and not cap_data["jobs"]["rows"]
    bare = (tmp_path / "cap.html").stat().st_size
    # a cap the page without photos fits with the condition layer, not with the due layer: only the due layer goes
    cond = len(json.dumps(data["conditions"]["segments"], ensure_ascii=False, separators=(",", ":")))
    cond += len(json.dumps(data["jobs"]["rows"], ensure_ascii=False, separators=(",", ":")))  # (and the jobs' kept)
    cap = (bare + cond + 3000) / 1e6
    r = patrol("export", path, "--format", "html", "--roads", roads, "--config", config, "--out", tmp_path / "cap2.html",
               "--max-mb", f"{cap:.6f}")
    assert "patrol due layer (" in r.stdout and "road condition layer" not in r.stdout, r.stdout
    got = page_data(tmp_path / "cap2.html")
    assert got["due"]["lines"] == [] and len(got["conditions"]["segments"]) == len(data["conditions"]["segments"])
