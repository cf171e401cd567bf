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

import pytest

from conftest import ROOT, TOYAMA, need
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
    """segments.geojson's whole segments (not the bins) that some frame surveyed, by segment_id."""
    gj = json.loads(path.read_text(encoding="utf-8"))
    return {f["properties"]["segment_id"]: f["properties"] for f in gj["features"]
            if f["properties"]["level"] == "segment" and f["properties"]["surveyed_m"] > 0}


def assert_layer_is(layer: dict, seg: dict[str, dict]) -> None:
    """The page's condition layer holds exactly these segments, each with their condition and figures (rounded)."""
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
        days = tuple((p.get(c) or "")[:10] or None for c in ("first_surveyed", "last_surveyed"))
        assert (s.get("t0"), s.get("t1")) == days, (sid, s, p)
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
    assert_layer_is(data["conditions"], seg)
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
