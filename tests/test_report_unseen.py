"""report.html's triage of the registry's passes: "which damages have we driven past twice or more without seeing
them since?" (``n_unseen``, README passes). A registry of the real sample drive: p1, p2 without its sighting of one
damage p1 saw (tests/test_store_passes.py), and a third drive, p2 driven again a week later (its oracle boxes, its
frames shifted in time) that does not see that damage either: n_unseen 2 there, 1 on damages only p1 saw that the
later drives passed. ``patrol export --format html`` of it, in headless Chromium."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, TOYAMA, in_phone
from detector.store import Store
from test_report import FRAMES, PHONES, console_errors, probe_of, render, selfcheck
from test_store_passes import P2, _merge, _rid, sample  # noqa: F401 (the fixture)

P1 = "toyama-2026-11-p1"
P3 = "toyama-2026-12-p3"


@pytest.fixture(scope="module")
def registry(sample, tmp_path_factory):  # noqa: F811
    from detector.dedupe import dedupe
    from detector.detections import read_detections_csv
    from detector.locate import locate
    from detector.roads import load_roads

    cfg, p1, p2, label, keys = sample
    week = timedelta(days=7)
    det = read_detections_csv(TOYAMA / f"{P2}.oracle.csv", drive=P3)
    det.time = np.array([(datetime.fromisoformat(t) + week).isoformat() if t else t for t in det.time], dtype=object)
    p3 = dedupe(locate(det, load_roads(TOYAMA / "roads.geojson", cfg), cfg), cfg)
    c = p1.loc[label]  # p3 misses the damage p2 missed (n_unseen 2) ...
    d = np.hypot((p3["lat"] - c["lat"]) * 111_000, (p3["lon"] - c["lon"]) * 90_000)
    p3 = p3[~((p3["class"] == c["class"]) & (d < 25)).to_numpy()]
    # ... and one that p1 and p2 saw, the first of the route alone within 40 m and 100 m from that one (n_unseen 1)
    lat, lon = p3["lat"].to_numpy(float), p3["lon"].to_numpy(float)
    dd = np.hypot((lat[:, None] - lat) * 111_000, (lon[:, None] - lon) * 90_000)
    far = np.hypot((lat - c["lat"]) * 111_000, (lon - c["lon"]) * 90_000) > 100
    alone = ((dd < 40).sum(axis=1) == 1) & far
    assert alone.any()
    p3 = p3.drop(p3.index[np.flatnonzero(alone)[0]])
    # another drive: other photos (frame keys), a week later; the same route and positions
    frames3 = [(P3, name, k ^ 1, t + week if t is not None else t, la, lo, h) for _, name, k, t, la, lo, h, *_ in keys[P2]]
    path = tmp_path_factory.mktemp("unseen") / "registry.gpkg"
    _merge(path, [("p1", p1, keys[P1]), ("p2", p2, keys[P2]), ("p3", p3, frames3)], cfg)
    return path, _rid(path, p1, label)


def test_unseen_filter_and_marker_in_chromium(registry, tmp_path):
    """The filter bar's 未検出通過 select lists (table rows and map markers) exactly the damages the registry passed
    unseen that many times or more, for 1, 2 and 3; the damages at 2 or more are drawn as a dotted hollow ring (other
    markers solid), the legend explains it, the count line says the filter in words (a printout hides the bar), and
    the table sorts by n_unseen, the most first."""
    path, rid = registry
    with Store(path) as st:
        q = st.query().set_index("candidate_id")
    assert q.loc[rid, ["n_passes", "n_unseen"]].tolist() == [3, 2]
    want = {t: sorted(q.index[q["n_unseen"] >= t]) for t in (1, 2, 3)}
    assert len(want[1]) > len(want[2]) >= 1 and rid in want[2] and want[3] == [], {t: len(v) for t, v in want.items()}
    out = tmp_path / "map.html"
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "export", str(path), "--format", "html",
                        "--roads", str(TOYAMA / "roads.geojson"), "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    page = out.read_text(encoding="utf-8")
    # for each threshold: the select set, then the rows shown and the markers drawn (their popups' ids)
    probe = """(function () {
      var f = document.getElementById('f-unseen'), res = {}, lab = document.getElementById('l-unseen');
      function shownRows() { return [].filter.call(document.querySelectorAll('#tbl tbody tr'), function (r) {
        return r.style.display !== 'none'; }).map(function (r) { return r.firstChild.textContent; }).sort(); }
      function drawn() { var out = [];
        document.querySelectorAll('#map path.leaflet-interactive').forEach(function (p) { out.push(p); }); return out; }
      ['1', '2', '3', ''].forEach(function (v) {
        f.value = v; f.dispatchEvent(new Event('change'));
        res[v || 'all'] = {rows: shownRows(), markers: drawn().length, count: document.getElementById('count').textContent};
      });
      var rings = [].map.call(document.querySelectorAll('#map path.unseen'), function (p) {
        return {dash: p.getAttribute('stroke-dasharray'), fill: p.getAttribute('fill-opacity')}; });
      var solid = [].filter.call(document.querySelectorAll('#map path.leaflet-interactive'), function (p) {
        return !p.classList.contains('unseen'); }).map(function (p) { return p.getAttribute('stroke-dasharray'); });
      var th = [].filter.call(document.querySelectorAll('#tbl th'), function (t) { return /未検出通過/.test(t.textContent); })[0];
      th.click();
      var first = document.querySelector('#tbl tbody tr').firstChild.textContent;
      var sb = f.getBoundingClientRect();
      return {res: res, rings: rings, solid: solid, first: first, shown: !lab.hidden, selH: sb.height, vw: window.innerWidth,
              selIn: sb.left >= 0 && sb.right <= window.innerWidth, sideways: document.scrollingElement.scrollWidth - window.innerWidth,
              legend: document.querySelector('.legend').textContent}; })()"""
    script = ("<script>setTimeout(function () { document.documentElement.setAttribute('data-probe', JSON.stringify("
              + probe + ")); }, 2000);</script>")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("<script", FRAMES + "<script", 1).replace("</body>", script + "</body>"),
                      encoding="utf-8")
    dom, err = render(probed, "", "--window-size=1400,1000")
    n = len(q)
    assert selfcheck(dom) == f"report-ok:{n}:{n}" and not console_errors(err), (selfcheck(dom), console_errors(err))
    p = probe_of(dom)
    assert p["shown"], "the 未検出通過 filter is hidden on a registry's export"
    for t in (1, 2, 3):
        got = p["res"][str(t)]
        assert got["rows"] == want[t], (t, got["rows"], want[t])
        assert got["markers"] == len(want[t]), (t, got)
        assert f"未検出通過 {t}回以上 / not seen on the last {t}+ passes" in got["count"], got["count"]
        assert got["count"].startswith(f"{len(want[t])} / {n} 件 shown"), got["count"]
    assert len(p["res"]["all"]["rows"]) == n and p["res"]["all"]["count"] == f"{n} / {n} 件 shown"
    open_ = [cid for cid in want[2] if q.loc[cid, "status"] not in ("repaired", "not_an_issue")]
    assert len(p["rings"]) == len(open_) >= 1 and all(r["dash"] == "1,5" and float(r["fill"]) < 0.5 for r in p["rings"]), p
    assert len(p["solid"]) == n - len(open_) and "1,5" not in p["solid"], p["solid"]
    assert "点線の中抜き円" in p["legend"] and "not seen on the last 2+ passes" in p["legend"], p["legend"]
    assert q.loc[p["first"], "n_unseen"] == q["n_unseen"].max() == 2, p["first"]
    # on a phone (375 and 320 px, in a frame of that width): the same, finger-sized, within the width, nothing
    # scrolls sideways (before: the status filter's drop-down, 450 px wide, moved the page 85 px sideways)
    for width in PHONES:
        page_w = tmp_path / f"phone{width}.html"
        page_w.write_text(page, encoding="utf-8")
        m = in_phone(page_w, "", probe, width, 844)
        assert m["vw"] == width and m["res"]["2"]["rows"] == want[2], (width, m)
        assert m["selH"] >= 40 and m["selIn"] and m["sideways"] <= 0, (width, m)


def test_no_unseen_filter_without_a_registry(tmp_path):
    """A run without --store knows no passes: the filter is not offered, no ring drawn, no legend line."""
    from test_report import make_candidates
    from detector import report
    from detector.config import Config

    cfg = Config()
    df = make_candidates(cfg, 5)
    out = report.export(df, "html", tmp_path / "r.html", cfg)
    probed = tmp_path / "p.html"
    script = ("<script>setTimeout(function () { document.documentElement.setAttribute('data-probe', JSON.stringify({"
              "hidden: document.getElementById('l-unseen').hidden, rings: document.querySelectorAll('#map path.unseen').length,"
              " legend: document.querySelector('.legend').textContent})); }, 1000);</script>")
    probed.write_text(out.read_text(encoding="utf-8").replace("</body>", script + "</body>"), encoding="utf-8")
    dom, err = render(probed)
    p = probe_of(dom)
    assert p["hidden"] is True and p["rings"] == 0 and "点線の中抜き円" not in p["legend"], p


def test_a_filtered_report_prints_what_it_lists(registry, tmp_path):
    """Printed with the filter set (the bar itself is not printed): the count line above the table says the filter
    (in the PDF's title at print time: rows listed, the line shown, the rings on the map)."""
    import re

    from test_report import chromium

    path, rid = registry
    out = tmp_path / "map.html"
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "export", str(path), "--format", "html",
                        "--roads", str(TOYAMA / "roads.geojson"), "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    script = """<script>(function () { var f = document.getElementById('f-unseen'); f.value = '2';
      f.dispatchEvent(new Event('change'));
      window.matchMedia('print').addEventListener('change', function (e) { if (!e.matches) return;
        var c = document.getElementById('count'), rows = [].filter.call(document.querySelectorAll('#tbl tbody tr'),
          function (r) { return r.offsetHeight > 0; }).length;
        document.title = 'probe ' + rows + ' ' + (c.offsetHeight > 0 && /not seen on the last 2\\+ passes/.test(c.textContent))
          + ' ' + document.querySelectorAll('#map path.unseen').length
          + ' ' + (document.getElementById('f-unseen').offsetHeight > 0); }); })();</script>"""
    out.write_text(out.read_text(encoding="utf-8").replace("</body>", script + "</body>"), encoding="utf-8")
    pdf = tmp_path / "r.pdf"
    r = chromium(out.resolve().as_uri(), "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    assert r.returncode == 0 and pdf.exists(), r.stderr[-2000:]
    title = re.search(rb"/Title \(([^)]*)\)", pdf.read_bytes()).group(1).decode()
    assert title == "probe 1 true 1 false", title  # one row, the line saying why, its ring; the bar not printed
