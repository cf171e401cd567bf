"""The registry map's repair jobs layer (補修工区 / repair jobs; README: report.html): ``patrol export REGISTRY --format
html --roads R`` draws each repair job of the open damages it shows, as ``--format jobs`` bundles them (``job_table``,
computed once), as its outline with a popup. Real data: the sample registry of test_stats (31 damages, 26 open: 9
jobs at the default 50 m) on the sample network."""

from __future__ import annotations

import shutil

import numpy as np
import shapely

from test_export_jobs import ROADS, blank, groups, jobs  # noqa: F401 (blank: the registry before any list, autouse)
from test_report import console_errors, probe_of, render, selfcheck, with_probe
from test_report_condition import page_data
from test_stats import ok, patrol, registry  # noqa: F401 (the fixture)


def test_jobs_layer_holds_the_jobs_list_and_opens_a_popup_in_chromium(registry, tmp_path):  # noqa: F811
    """The map's data holds --format jobs' list: the same jobs in the same order (ids, each job's damages, area), each
    outline a ring holding its damages' markers; off when the page opens, its checkbox draws one dashed filled outline
    per job and adds jobs=1 to the link; a click on the first job's outline opens its popup (job id, road, damages per
    class, area, each damage's id); a click on an id there selects that damage (its table row, its popup). A link with
    #jobs=1 opens with it on. Without --roads: no such layer."""
    store = registry["store"]
    listed, _ = jobs(store, tmp_path / "jobs.csv")
    out = tmp_path / "map.html"
    ok(patrol("export", store, "--format", "html", "--roads", ROADS, "--out", out))
    data = page_data(out)
    jb = data["jobs"]
    cands = data["candidates"]
    assert [r["id"] for r in jb["rows"]] == listed["job_id"].tolist() and jb["gap"] == 50
    assert groups(listed) == {frozenset(cands[i]["candidate_id"] for i in r["i"]) for r in jb["rows"]}
    assert [r["a"] for r in jb["rows"]] == listed["area_m2"].astype(float).tolist()
    for r in jb["rows"]:
        d = r["d"]
        lat, lon = (np.cumsum(d[0::2]) / 1e5, np.cumsum(d[1::2]) / 1e5)  # (the page's coords)
        ring = shapely.Polygon(list(zip(lon, lat)))
        assert all(ring.buffer(2e-5).contains(shapely.Point(cands[i]["lon"], cands[i]["lat"])) for i in r["i"]), r["id"]
    page = tmp_path / "j.html"
    shutil.copy(out, page)
    with_probe(page, """(function () {
      function paths() { return document.querySelectorAll('#map path.job'); }
      var cb = document.getElementById('jobs-on'), r = {box: !!cb, checked0: cb && cb.checked, before: paths().length};
      cb.click();
      r.after = paths().length; r.hash = location.hash;
      r.dash = paths()[0].getAttribute('stroke-dasharray'); r.fill = paths()[0].getAttribute('fill-opacity');
      r.label = document.querySelector('.jobsctl label').textContent;
      var p = paths()[0], b = p.getBoundingClientRect();
      p.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true, clientX: (b.left + b.right) / 2,
                                               clientY: (b.top + b.bottom) / 2, view: window}));
      var c = document.querySelector('.leaflet-popup-content .pop.job');
      r.popup = c ? c.textContent : null;
      var a = c ? c.querySelector('.ids a') : null;
      r.link = a ? a.textContent : null;
      if (a) a.click();
      var sel = document.querySelector('#tbl tbody tr.sel');
      r.sel = sel ? sel.textContent : null;
      var pc = document.querySelectorAll('.leaflet-popup-content');
      r.after_link = pc.length ? pc[pc.length - 1].textContent : null;
      return r; })()""", when="setTimeout(probe, 2500)")
    dom, err = render(page, "", "--window-size=1400,1000")
    assert selfcheck(dom).startswith("report-ok:") and not console_errors(err), (selfcheck(dom), console_errors(err))
    p = probe_of(dom)
    assert p["box"] and p["checked0"] is False and p["before"] == 0, p
    assert p["after"] == len(jb["rows"]) == 9 and "jobs=1" in p["hash"], p
    assert p["dash"] == "5,4" and float(p["fill"]) > 0 and p["label"].strip() == "補修工区 / repair jobs (9)", p
    first = jb["rows"][0]
    ids = [cands[i]["candidate_id"] for i in first["i"]]
    row = listed.iloc[0]
    assert p["popup"] is not None and f"repair job {first['id']}" in p["popup"], p
    for text in (f"損傷数 damages{row['n_damages']} 件", f"補修面積 area{row['area_m2']} m²", *ids):
        assert text in p["popup"], (text, p["popup"])
    assert p["link"] == ids[0] and ids[0] in p["sel"] and ids[0] in p["after_link"], p
    # a link with the layer on
    page2 = tmp_path / "j2.html"
    shutil.copy(out, page2)
    with_probe(page2, """(function () { return {on: document.querySelectorAll('#map path.job').length,
        cb: document.getElementById('jobs-on').checked}; })()""")
    dom, err = render(page2, "#jobs=1", "--window-size=1400,1000")
    assert selfcheck(dom).startswith("report-ok:") and not console_errors(err), (selfcheck(dom), console_errors(err))
    assert probe_of(dom) == {"on": 9, "cb": True}
    ok(patrol("export", store, "--format", "html", "--out", tmp_path / "bare.html"))
    assert "jobs" not in page_data(tmp_path / "bare.html")


def test_jobs_layer_ids_are_the_lists_and_the_map_records_none(blank, tmp_path):  # noqa: F811
    """The map reads the ids the jobs lists recorded and records none: on a registry no list numbered yet, the
    layer's jobs are 工区-001 … in the list's order, each marked not yet in a list (its popup says so, in Chromium),
    and the registry file is left byte for byte; the jobs list then gives those very ids, and the map made after it
    the same ids, unmarked."""
    from typer.testing import CliRunner

    import cli
    from test_export_jobs import held, listed

    def html(path):  # (in this process: 1 s where a process of its own takes 3)
        r = CliRunner().invoke(cli.app, ["export", str(store), "--format", "html", "--roads", str(ROADS), "--out",
                                         str(path)])
        assert r.exit_code == 0, r.output

    store = tmp_path / "registry.gpkg"
    shutil.copy(blank, store)
    before = store.read_bytes()
    out = tmp_path / "map.html"
    html(out)
    assert store.read_bytes() == before
    rows = page_data(out)["jobs"]["rows"]
    assert [r["id"] for r in rows] == [f"工区-{i:03d}" for i in range(1, 10)] and all(r.get("p") == 1 for r in rows)
    listing, _ = listed(store, tmp_path / "jobs.csv")
    assert [r["id"] for r in rows] == listing["job_id"].tolist() and len(held(store)) == 9
    html(tmp_path / "after.html")
    after = page_data(tmp_path / "after.html")["jobs"]["rows"]
    assert [r["id"] for r in after] == listing["job_id"].tolist() and not any("p" in r for r in after)
    with_probe(out, """(function () {
      document.getElementById('jobs-on').click();
      var p = document.querySelectorAll('#map path.job')[0], b = p.getBoundingClientRect();
      p.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true, clientX: (b.left + b.right) / 2,
                                               clientY: (b.top + b.bottom) / 2, view: window}));
      var c = document.querySelector('.leaflet-popup-content .pop.job');
      return {popup: c ? c.textContent : null}; })()""", when="setTimeout(probe, 2500)")
    dom, err = render(out, "", "--window-size=1400,1000")
    assert selfcheck(dom).startswith("report-ok:") and not console_errors(err), (selfcheck(dom), console_errors(err))
    assert "not yet in a jobs list" in (probe_of(dom)["popup"] or ""), probe_of(dom)


def test_a_damages_job_in_its_popup_and_the_table_in_chromium(blank, tmp_path):  # noqa: F811
    """A registry with a jobs list: each open damage's job (the latest list naming it) in the map's data, its popup
    (工区 repair job) and the table's 工区 column; the search 工区-00N (a link's q=) lists exactly that job's damages.
    The map of a registry without a jobs list has no such column, in its data or its table."""
    from urllib.parse import quote

    from typer.testing import CliRunner

    import cli
    from test_export_jobs import listed

    def html(path):
        r = CliRunner().invoke(cli.app, ["export", str(store), "--format", "html", "--roads", str(ROADS), "--out",
                                         str(path)])
        assert r.exit_code == 0, r.output
        return path

    store = tmp_path / "registry.gpkg"
    shutil.copy(blank, store)
    data = page_data(html(tmp_path / "none.html"))
    assert "job_id" not in [c["id"] for c in data["columns"]] and not any("job_id" in c for c in data["candidates"])
    listing, _ = listed(store, tmp_path / "jobs.csv")
    row = next(r for _, r in listing.iterrows() if int(r["n_damages"]) > 2)
    job, ids = row["job_id"], row["candidate_ids"].split(";")
    out = html(tmp_path / "map.html")
    cands = page_data(out)["candidates"]
    of = {c: j for cs, j in zip(listing["candidate_ids"], listing["job_id"]) for c in cs.split(";")}
    assert {c["candidate_id"]: c.get("job_id") for c in cands} == {c["candidate_id"]: of.get(c["candidate_id"])
                                                                    for c in cands}
    probe = """(function () {
      var head = [].map.call(document.querySelectorAll('#tbl thead th'), function (t) { return t.firstChild.textContent; });
      var k = head.indexOf('工区');
      var shown = [].filter.call(document.querySelectorAll('#tbl tbody tr'), function (tr) { return tr.style.display !== 'none'; });
      var c = document.querySelector('.leaflet-popup-content .pop');
      return {head: head, k: k, rows: shown.map(function (tr) { return [tr.cells[0].textContent, k >= 0 ? tr.cells[k].textContent : null]; }),
              popup: c ? c.textContent : null}; })()"""
    for page, frag in ((tmp_path / "none-p.html", ""), (tmp_path / "job-p.html", f"#q={quote(job)}&id={ids[0]}")):
        shutil.copy(tmp_path / "none.html" if page.name.startswith("none") else out, page)
        with_probe(page, probe, when="setTimeout(probe, 2500)")
        dom, err = render(page, frag, "--window-size=1400,1000")
        assert selfcheck(dom).startswith("report-ok:") and not console_errors(err), (selfcheck(dom),
                                                                                     console_errors(err))
        p = probe_of(dom)
        if page.name.startswith("none"):
            assert p["k"] == -1 and "工区" not in (p["popup"] or ""), p
            continue
        assert p["head"][p["k"] - 1] == "状態", p  # after the status
        assert sorted(r[0] for r in p["rows"]) == sorted(ids) and {r[1] for r in p["rows"]} == {job}, p
        assert f"工区 repair job{job}" in (p["popup"] or ""), p
