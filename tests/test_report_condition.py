"""report.html's road-condition layer (路面状態; README: report.html): the surveyed segments coloured by their condition
1-5, toggled from the map, a click on one shows its figures. Real data: a run of the sample drive's two passes (its
report against its own segments.geojson, in headless Chromium), and the registry of tests/test_export_segments.py
(``patrol export --format html --roads`` against ``--format segments`` of the same registry)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, TOYAMA, in_phone, need
from test_export_segments import registry  # noqa: F401 (the fixture)
from test_report import console_errors, probe_of, render, selfcheck, with_probe
from test_store_passes import P1, P2, sample  # noqa: F401 (the fixture)


def patrol(*args) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def page_data(path: Path) -> dict:
    html = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1))


def surveyed_segments(path: Path) -> dict[str, dict]:
    """segments.geojson's whole segments (not the bins) that some frame surveyed or that carry a damage (the layer
    draws those no frame surveyed apart), by segment_id."""
    gj = json.loads(path.read_text(encoding="utf-8"))
    return {f["properties"]["segment_id"]: f["properties"] for f in gj["features"]
            if f["properties"]["level"] == "segment" and (f["properties"]["surveyed_m"] > 0
                                                          or f["properties"]["n_total"] > 0)}


def assert_layer_is(layer: dict, seg: dict[str, dict], days: dict[str, tuple] | None | bool = None) -> None:
    """The page's condition layer holds exactly these segments, each with their condition and figures (rounded), one
    no frame surveyed marked ``ns``; the days first/last surveyed those of ``days`` (by segment id) where given, else
    the rows' own (False: not compared; a run's segments.geojson has none, its report has the frames' days)."""
    got = {s["id"]: s for s in layer["segments"]}
    assert sorted(got) == sorted(seg) and len(got) == len(layer["segments"]), (sorted(got), sorted(seg))
    for sid, p in seg.items():
        s = got[sid]
        assert s["c"] == p["condition"], (sid, s, p)
        assert s["k"] == [p["n_D00"], p["n_D10"], p["n_D20"], p["n_D40"]], (sid, s, p)
        assert s["m"] == round(p["surveyed_m"]) and s["L"] == round(p["length_m"]), (sid, s, p)
        assert s["cov"] == pytest.approx(100 * p["coverage"], abs=0.051), (sid, s, p)
        assert (s["di"] is None) == (p["damage_index"] is None), (sid, s, p)
        if s["di"] is not None:
            assert s["di"] == pytest.approx(p["damage_index"], abs=0.006), (sid, s, p)
        assert s["n"] == p["road_name"], (sid, s, p)
        # the estimated crack rate, 診断区分 (null where not valid) and MCI's upper bound, as the file has them
        assert (s["cr"], s["dg"], s["mci"], s.get("ne", 0)) == (
            p["crack_rate"], p["diagnosis"], p["mci_crack"], p["n_no_estimate"]), (sid, s, p)
        want = days[sid] if days else tuple((p.get(c) or "")[:10] or None
                                                          for c in ("first_surveyed", "last_surveyed"))
        assert days is False or (s.get("t0"), s.get("t1")) == want, (sid, s, p)
        assert bool(s.get("ns")) == (p["surveyed_m"] == 0), (sid, s, p)
        assert len(s["d"]) >= 4 and len(s["d"]) % 2 == 0  # a line of 2+ points


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """``patrol run`` of the sample's two passes (as ``make sample``, no blur: not what is tested): its OUT."""
    p1, p2 = need(TOYAMA / P1), need(TOYAMA / P2)
    d = tmp_path_factory.mktemp("cond")
    cfg = d / "city.yaml"
    cfg.write_text("privacy:\n  blur_faces: false\n  blur_plates: false\n", encoding="utf-8")
    patrol("run", p1, p2, "--roads", TOYAMA / "roads.geojson", "--out", d / "out", "--config", cfg)
    return d / "out"


def test_run_report_carries_its_segments_condition(run):
    """The run's report.html carries the condition layer of its own segments.geojson: every surveyed segment (the
    whole segment, not the 20/100 m bins), its condition 1..5 (None where not valid), counts, damage index,
    coverage, surveyed metres; the legend's classes are the config's thresholds."""
    data = page_data(run / "report.html")
    seg = surveyed_segments(run / "segments.geojson")
    assert len(seg) >= 10 and {p["condition"] for p in seg.values()} >= {1, 2, 3, None}, seg  # a real spread
    assert_layer_is(data["conditions"], seg, days=False)  # the days: test_run_report_dates_its_segments_as_…
    assert data["conditions"]["thresholds"] == [2.0, 5.0, 10.0, 20.0] and len(data["conditions"]["colors"]) == 5


def test_layer_toggles_and_a_segment_shows_its_figures_in_chromium(run, tmp_path):
    """Off when the page opens (no segment drawn, the damages as before); its checkbox draws every surveyed segment
    under the markers, coloured by condition (not valid: dashed) and adds cond=1 to the link; a click on a segment (a
    point of it the browser hits: not under a marker or a control) opens its popup with the road, its segment id,
    condition, damage index, coverage, surveyed metres and counts per class; unticked, the layer goes. A link
    with #cond=1 opens with the layer on."""
    data = page_data(run / "report.html")
    seg = {s["id"]: s for s in data["conditions"]["segments"]}
    page = tmp_path / "r.html"
    shutil.copy(run / "report.html", page)
    with_probe(page, """(function () {
      function paths() { return document.querySelectorAll('#map path.cond'); }
      var cb = document.getElementById('cond-on'), r = {box: !!cb, checked0: cb && cb.checked, before: paths().length};
      cb.click();
      r.after = paths().length; r.hash = location.hash; r.dashed = document.querySelectorAll('#map path.cond-nv[stroke-dasharray]').length;
      r.colors = [].map.call(paths(), function (p) { return p.getAttribute('stroke'); });
      var hit = null;
      [].some.call(paths(), function (p) {
        var pt = p.getPointAtLength(p.getTotalLength() / 2), m = p.getScreenCTM(), x = m.a * pt.x + m.e, y = m.d * pt.y + m.f;
        if (document.elementFromPoint(x, y) !== p) return false;
        hit = p; p.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true, clientX: x, clientY: y, view: window}));
        return true;
      });
      r.hit = !!hit;
      r.popup = (document.querySelector('.leaflet-popup-content') || {}).textContent || null;
      cb.click();
      r.off = paths().length; r.hashOff = location.hash;
      return r; })()""", when="setTimeout(probe, 2500)")
    dom, err = render(page, "", "--window-size=1400,1000")
    assert selfcheck(dom) == f"report-ok:{len(data['candidates'])}:{len(data['candidates'])}", selfcheck(dom)
    assert not console_errors(err), console_errors(err)
    p = probe_of(dom)
    assert p["box"] and p["checked0"] is False and p["before"] == 0, p
    assert p["after"] == len(seg) and "cond=1" in p["hash"], p
    assert p["dashed"] == sum(1 for s in seg.values() if s["c"] is None) >= 1, p
    want = sorted(data["conditions"]["colors"][s["c"] - 1] if s["c"] else data["conditions"]["notValid"] for s in seg.values())
    assert sorted(p["colors"]) == want, p
    assert p["hit"] and p["popup"], p
    sid = re.search(r"区間ID segment(\S+?)損傷指数", p["popup"]).group(1)
    s = seg[sid]
    cond = f"road condition: {s['c']} " if s["c"] else "not rated"
    assert cond in p["popup"] and f"{s['m']} m / {s['L']} m" in p["popup"] and f"{s['cov']:g} %" in p["popup"], p
    assert "D40 " in p["popup"] and "damage index" in p["popup"], p
    cr = f"{s['cr']:.1f} % (幅 width 3 m" if s["cr"] is not None else "est. crack rate—"
    dg = f"diagnosis{s['dg']} {data['conditions']['diagnosis'][s['dg']][0]}" if s["dg"] else "diagnosis—"
    assert cr in p["popup"] and dg in p["popup"] and f"cracks only)≤ {s['mci']:.1f}" in p["popup"], p
    assert p["off"] == 0 and "cond=1" not in p["hashOff"], p
    # a link with the layer on
    page2 = tmp_path / "r2.html"
    shutil.copy(run / "report.html", page2)
    with_probe(page2, "{on: document.querySelectorAll('#map path.cond').length, cb: document.getElementById('cond-on').checked}")
    dom, err = render(page2, "#cond=1", "--window-size=1400,1000")
    assert selfcheck(dom).startswith("report-ok:") and not console_errors(err), (selfcheck(dom), console_errors(err))
    assert probe_of(dom) == {"on": len(seg), "cb": True}


def test_registry_map_draws_the_registrys_condition(registry, tmp_path):  # noqa: F811
    """``patrol export --format html --roads`` of a registry carries the condition layer ``--format segments`` of the
    same registry writes (open damages, every good-look frame, first/last surveyed), whatever --status the map's
    damages have; without --roads none. With --max-mb below the page without photos, the layer is left out and the
    console's line says so."""
    path, cfg, _ = registry
    roads = TOYAMA / "roads.geojson"
    patrol("export", path, "--format", "segments", "--roads", roads, "--out", tmp_path / "s.geojson")
    seg = surveyed_segments(tmp_path / "s.geojson")
    assert len(seg) >= 10 and all(p["first_surveyed"] for p in seg.values())
    patrol("export", path, "--format", "html", "--roads", roads, "--out", tmp_path / "map.html", "--status", "new")
    assert_layer_is(page_data(tmp_path / "map.html")["conditions"], seg)
    patrol("export", path, "--format", "html", "--out", tmp_path / "bare.html")
    assert page_data(tmp_path / "bare.html")["conditions"]["segments"] == []
    # --max-mb: the layer (a few KB here) goes only where the damages' data alone does not fit with it. A cap no page
    # fits: written without photos and without the layer (its size: the damages' data alone) ...
    r = patrol("export", path, "--format", "html", "--roads", roads, "--out", tmp_path / "cap.html", "--max-mb", "0.01")
    assert "road condition layer (" in r.stdout and "left out to fit 0.01 MB" in r.stdout, r.stdout
    assert page_data(tmp_path / "cap.html")["conditions"]["segments"] == []
    bare = (tmp_path / "cap.html").stat().st_size
    # the size the line gives a page over the cap is not rounded down to the cap or under it (was "0.2 MB" for 0.24)
    said = float(re.match(r"cap\.html: ([0-9.]+) MB;", r.stdout).group(1))
    assert said * 1e6 >= bare > 0.01e6, (said, bare, r.stdout)
    # ... a cap 1 KB above that: the layer (its data > 1 KB) does not fit with the damages, the damages do
    assert len(json.dumps(page_data(tmp_path / "map.html")["conditions"]["segments"], ensure_ascii=False)) > 2000
    cap = (bare + 1000) / 1e6
    r = patrol("export", path, "--format", "html", "--roads", roads, "--out", tmp_path / "cap.html", "--max-mb", f"{cap:.6f}")
    assert "road condition layer (" in r.stdout and "left out to fit" in r.stdout, r.stdout
    assert page_data(tmp_path / "cap.html")["conditions"]["segments"] == []
    assert (tmp_path / "cap.html").stat().st_size <= cap * 1e6
    r = patrol("export", path, "--format", "html", "--roads", roads, "--out", tmp_path / "fits.html", "--max-mb", "50")
    assert "road condition" not in r.stdout and len(page_data(tmp_path / "fits.html")["conditions"]["segments"]) == len(seg)


def period_days(path: Path) -> dict[str, tuple]:
    """A registry's ``--format segments`` file: each segment's days first/last surveyed (YYYY-MM-DD or None)."""
    gj = json.loads(path.read_text(encoding="utf-8"))
    return {p["segment_id"]: tuple((p.get(c) or "")[:10] or None for c in ("first_surveyed", "last_surveyed"))
            for p in (f["properties"] for f in gj["features"]) if p["level"] == "segment"}


def period_times(path: Path) -> dict[tuple, tuple]:
    """A segments file's ``first_surveyed``/``last_surveyed`` as written, by (segment_id, level, bin_index)."""
    gj = json.loads(path.read_text(encoding="utf-8"))
    return {(p["segment_id"], p["level"], p["bin_index"]): (p["first_surveyed"], p["last_surveyed"])
            for p in (f["properties"] for f in gj["features"])}


def test_run_report_dates_its_segments_as_the_registry_does(run, registry, tmp_path):  # noqa: F811
    """A run's report gives each segment the day its frames of good look first and last surveyed it, on the config's
    clock, as the registry's map does: the run of both sample passes (p1 2026-11-20, p2 2026-11-27) dates every
    segment as ``--format segments`` of a registry holding the same two passes (before: the run's popups had no
    dates). Its segments.geojson carries them too, as the registry's export does: ``first_surveyed`` and
    ``last_surveyed`` after ``severity_max``, the same local ISO times on every row, bins included (before: the
    report had them, the file not)."""
    path, _, _ = registry
    patrol("export", path, "--format", "segments", "--roads", TOYAMA / "roads.geojson", "--out", tmp_path / "s.geojson")
    days = period_days(tmp_path / "s.geojson")
    seg = surveyed_segments(run / "segments.geojson")
    assert all(list(p)[-2:] == ["first_surveyed", "last_surveyed"] for p in seg.values())
    assert_layer_is(page_data(run / "report.html")["conditions"], seg, {k: days[k] for k in seg})
    assert_layer_is(page_data(run / "report.html")["conditions"], seg)  # the report's days: the file's
    mine, reg = period_times(run / "segments.geojson"), period_times(tmp_path / "s.geojson")
    assert {k: mine[k] for k in reg} == reg and set(mine) == set(reg), sorted(set(mine) ^ set(reg))
    assert {t[:10] + t[19:] for p in mine.values() for t in p if t} == {"2026-11-20+09:00", "2026-11-27+09:00"}
    got = {(s["t0"], s["t1"]) for s in page_data(run / "report.html")["conditions"]["segments"]}
    assert ("2026-11-20", "2026-11-27") in got and {d for p in got for d in p} <= {"2026-11-20", "2026-11-27"}, got


def test_run_segments_record_their_width_and_spread_the_cracks(run):
    """The run's segments.geojson records the survey width its crack rates took (``patrol.survey_width_m``, as the
    registry's export does; before: no ``patrol`` member), spreads a crack's area over the 20 m bins it runs into
    (a bin with area and no damage at its chainage; each segment's area the sum of its bins') and counts in
    ``n_capped`` the sample's lengths over 10 m (its 28.4-28.5 m and 17.5 m cracks whose boxes reach the 30 m cap,
    a 14.0 m and a 12.5 m one): 7 damages."""
    gj = json.loads((run / "segments.geojson").read_text(encoding="utf-8"))
    assert gj["patrol"] == {"survey_width_m": 3.0}
    rows = pd.DataFrame([f["properties"] for f in gj["features"]])
    seg, b20 = rows[rows["level"] == "segment"], rows[rows["level"] == "bin20"]
    assert seg["n_capped"].sum() == 7 and b20["n_capped"].sum() == 7
    assert ((b20["n_total"] == 0) & (b20["crack_area_m2"] > 0)).any()
    by_seg = b20.groupby("segment_id")["crack_area_m2"].sum()
    assert (by_seg - seg.set_index("segment_id")["crack_area_m2"].reindex(by_seg.index)).abs().max() < 0.011
    assert seg["crack_rate"].max() < 5  # 10.4 % before: four 28.5 m lengths at 8.5 m² each


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> dict:
    """``patrol run`` of the sample's two passes with ``--store``; the office then marks the damages of the two
    segments holding the most (``patrol status``): of the first, one a false detection (対象外 not_an_issue) and one
    repaired, the rest left open; of the second, every one repaired or not_an_issue; and the same run again (the
    same OUT: detection resumed; the registry holds its drives already, so the statuses stay)."""
    p1, p2 = need(TOYAMA / P1), need(TOYAMA / P2)
    d = tmp_path_factory.mktemp("stored")
    cfg, out, store = d / "city.yaml", d / "out", d / "registry.gpkg"
    cfg.write_text("privacy:\n  blur_faces: false\n  blur_plates: false\n", encoding="utf-8")
    cmd = ("run", p1, p2, "--roads", TOYAMA / "roads.geojson", "--out", out, "--store", store, "--config", cfg)
    patrol(*cmd)
    before = json.loads((out / "segments.geojson").read_text(encoding="utf-8"))
    cands = [f["properties"] for f in json.loads((out / "candidates.geojson").read_text(encoding="utf-8"))["features"]]
    by_seg: dict[str, list] = {}
    for c in cands:
        by_seg.setdefault(c["segment_id"], []).append(c["candidate_id"])
    a, b = sorted(by_seg, key=lambda s: -len(by_seg[s]))[:2]
    assert len(by_seg[a]) >= 3 and len(by_seg[b]) >= 2, by_seg
    marked = {by_seg[a][0]: "not_an_issue", by_seg[a][1]: "repaired"}
    marked.update({c: ("repaired", "not_an_issue")[k % 2] for k, c in enumerate(by_seg[b])})
    for cid, status in marked.items():
        patrol("status", store, cid, "--set", status, "--config", cfg)
    patrol(*cmd)
    return {"out": out, "store": store, "cfg": cfg, "before": before, "marked": marked,
            "open_on": {a: len(by_seg[a]) - 2, b: 0}}


def _rows(gj: dict) -> dict[tuple, dict]:
    return {(p["segment_id"], p["level"], p["bin_index"]): p for p in (f["properties"] for f in gj["features"])}


def test_run_with_store_counts_only_open_damages(stored, tmp_path):
    """A run with --store counts on its segments (segments.geojson, report.html's condition layer) the damages the
    registry's condition counts: the open ones. A damage the office marked a false detection (not_an_issue) or
    repaired no longer makes its segment look damaged; the run's candidates.geojson still lists it with its status.
    The run's segments.geojson is then ``patrol export --format segments`` of the registry holding its drives, row
    for row, period included (before: the run counted every damage, whatever its status)."""
    out, marked = stored["out"], stored["marked"]
    cands = {f["properties"]["candidate_id"]: f["properties"]
             for f in json.loads((out / "candidates.geojson").read_text(encoding="utf-8"))["features"]}
    assert {c: cands[c]["status"] for c in marked} == marked  # listed, with the office's statuses
    gj = json.loads((out / "segments.geojson").read_text(encoding="utf-8"))
    now, before = _rows(gj), _rows(stored["before"])
    assert set(now) == set(before)  # the same segments and bins (they were surveyed)
    for sid, n in stored["open_on"].items():
        assert now[(sid, "segment", -1)]["n_total"] == n < before[(sid, "segment", -1)]["n_total"], sid
    assert now[(sid, "segment", -1)]["damage_index"] == 0 and now[(sid, "segment", -1)]["condition"] in (1, None)
    for level in ("segment", "bin20", "bin100"):
        total = lambda rows: sum(p["n_total"] for k, p in rows.items() if k[1] == level)  # noqa: E731
        assert total(now) == total(before) - len(marked) == len(cands) - len(marked), level
    unmarked = {k for k in now if k[0] not in stored["open_on"]}
    assert {k: now[k] for k in unmarked} == {k: before[k] for k in unmarked}
    # the registry's condition of the same drives: the same rows
    patrol("export", stored["store"], "--format", "segments", "--roads", TOYAMA / "roads.geojson", "--out",
           tmp_path / "s.geojson", "--config", stored["cfg"])
    reg = _rows(json.loads((tmp_path / "s.geojson").read_text(encoding="utf-8")))
    assert reg == now, sorted(k for k in set(reg) | set(now) if reg.get(k) != now.get(k))[:5]
    # report.html's layer: these rows
    assert_layer_is(page_data(out / "report.html")["conditions"], surveyed_segments(out / "segments.geojson"))


def test_period_counts_only_frames_of_good_look(run):
    """The run's frames (frames.csv) with p2's marked dark (a night drive): the period of each segment comes from
    p1's frames alone (2026-11-20), while the coverage still counts the dark frames (a run's segments.geojson does,
    README) — before, a dark frame dated a survey too."""
    from datetime import datetime

    import pandas as pd

    from detector.config import load_config
    from detector.roads import load_roads
    from detector.segments import segment_condition

    cfg = load_config(run.parent / "city.yaml")
    f = pd.read_csv(run / "frames.csv")
    f = f[(f["status"] == "ok") & f["lat"].notna()]
    fdf = pd.DataFrame({"lat": f["lat"], "lon": f["lon"], "heading": f["heading"], "status": "ok",
                        "t": [datetime.fromisoformat(t).timestamp() for t in f["time"]],
                        "look": ["dark" if d == P2 else "" for d in f["drive"]]})
    net = load_roads(TOYAMA / "roads.geojson", cfg)
    got = segment_condition(net, None, fdf, cfg, period=True)
    every = segment_condition(net, None, fdf.drop(columns="look"), cfg, period=True)
    seg, all_ = (g[(g["level"] == "segment") & (g["surveyed_m"] > 0)].set_index("segment_id") for g in (got, every))
    assert seg["surveyed_m"].to_dict() == all_["surveyed_m"].to_dict() and len(seg) >= 10
    assert set(all_["last_surveyed"].str[:10]) == {"2026-11-27"}  # both passes drove the route
    assert set(seg["last_surveyed"].dropna().str[:10]) == {"2026-11-20"}, seg["last_surveyed"]
    assert seg["first_surveyed"].notna().sum() >= 10


@pytest.fixture(scope="module")
def frameless(tmp_path_factory) -> Path:
    """A registry of p1's damages without its frames (``patrol locate --store`` of the oracle detections): it knows
    the damages, not where the drive went."""
    d = tmp_path_factory.mktemp("frameless")
    store = d / "registry.gpkg"
    patrol("locate", need(TOYAMA / f"{P1}.oracle.csv"), "--roads", TOYAMA / "roads.geojson", "--out", d / "o",
           "--store", store)
    return store


def test_damaged_segments_no_frame_surveyed_are_drawn_apart(frameless, tmp_path):
    """A segment carrying open damages that no frame of good look surveyed (no damage index, so no condition) is
    drawn, not left off as if the road were not driven: dark grey, dotted, its own legend line "damage reported, not
    surveyed (good look)", a popup saying why it has no index (before: not drawn, and this registry's map had no
    layer at all while its markers lay on those roads)."""
    roads = TOYAMA / "roads.geojson"
    patrol("export", frameless, "--format", "segments", "--roads", roads, "--out", tmp_path / "s.geojson")
    seg = surveyed_segments(tmp_path / "s.geojson")
    assert len(seg) >= 3 and all(p["surveyed_m"] == 0 and p["n_total"] > 0 for p in seg.values()), seg
    page = tmp_path / "map.html"
    patrol("export", frameless, "--format", "html", "--roads", roads, "--out", page)
    data = page_data(page)
    assert_layer_is(data["conditions"], seg)
    assert all(s["ns"] == 1 and s["c"] is None and s["di"] is None for s in data["conditions"]["segments"])
    assert data["conditions"]["goodLook"] is True
    with_probe(page, """(function () {
      var ps = document.querySelectorAll('#map path.cond-ns'), hit = null;
      [].some.call(ps, function (p) {  // a point of it the browser hits (its damages' markers lie on it)
        return [0.5, 0.3, 0.7, 0.15, 0.85].some(function (f) {
          var pt = p.getPointAtLength(p.getTotalLength() * f), m = p.getScreenCTM(), x = m.a * pt.x + m.e, y = m.d * pt.y + m.f;
          if (document.elementFromPoint(x, y) !== p) return false;
          hit = p; p.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true, clientX: x, clientY: y, view: window}));
          return true;
        });
      });
      return {ns: ps.length, dash: ps.length ? ps[0].getAttribute('stroke-dasharray') : null, all: document.querySelectorAll('#map path.cond').length,
              key: (document.querySelector('.condkey') || {}).textContent || '',
              popup: (document.querySelector('.leaflet-popup-content') || {}).textContent || null}; })()""",
               when="setTimeout(probe, 2500)")
    dom, err = render(page, "#cond=1", "--window-size=1400,1000")
    assert selfcheck(dom).startswith("report-ok:") and not console_errors(err), (selfcheck(dom), console_errors(err))
    p = probe_of(dom)
    assert p["ns"] == p["all"] == len(seg) and p["dash"] == "1,9", p
    assert "damage reported, not surveyed (good look)" in p["key"], p
    assert p["popup"] and "not surveyed" in p["popup"] and "no frame of good look within 15 m" in p["popup"], p
    assert "no damage index" in p["popup"], p


def test_condition_key_and_legend_fit_a_phone(run, tmp_path):
    """On a 375 px phone with the layer on and the legend opened: the road-condition control and the legend keep
    within the viewport's width, clear of the zoom buttons at the left, and within the map's height (before: the
    key's 250 px and the legend stacked under it ran 55 px off the map's bottom, where the map clips them); the
    condition key starts folded there, as the legend does, and open on a desktop's map; the page does not scroll
    sideways, and the tick box and the folding lines are finger-sized (40 px; before: 19 px lines)."""
    expr = """(function () { function r(s) { var b = document.querySelector(s).getBoundingClientRect();
        return [b.left, b.top, b.right, b.bottom]; }
      document.querySelector('.legend').open = true;
      return {vw: window.innerWidth, sideways: document.scrollingElement.scrollWidth - window.innerWidth,
              taps: ['.condctl label', '.condkey summary', '.legend summary'].map(function (s) { var b = r(s); return b[3] - b[1]; }),
              map: r('#map'), zoom: r('.leaflet-control-zoom'), cond: r('.condctl'), legend: r('.legend'),
              keyOpen: document.querySelector('.condkey').open, paths: document.querySelectorAll('#map path.cond').length}; })()"""
    for width in (375, 320):
        page = tmp_path / f"r{width}.html"
        shutil.copy(run / "report.html", page)
        p = in_phone(page, "#cond=1", expr, width)
        assert p["vw"] == width and p["paths"] >= 10 and p["sideways"] <= 0, p
        assert min(p["taps"]) >= 40, (width, p)  # the layer's tick box, the key's and the legend's folding lines
        for box in ("cond", "legend"):
            left, top, right, bottom = p[box]
            assert p["zoom"][2] < left and right <= p["vw"] and right - left <= p["vw"] - 60, (width, box, p)
            assert p["map"][1] <= top and bottom <= p["map"][3], (width, box, p)
        assert p.get("keyOpen") is False, p
    page = tmp_path / "desk.html"
    shutil.copy(run / "report.html", page)
    p = in_phone(page, "#cond=1", expr, 1400, 1000)
    assert p["keyOpen"] is True and p["cond"][2] - p["cond"][0] == 250, p
