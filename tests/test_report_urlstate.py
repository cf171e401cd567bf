"""report.html keeps its view in the URL's fragment (README: links to a view): ``#id=R-000012&class=D10&status=new
&sev=20&unseen=1&q=553&z=17/36.68/137.23``, written on every change (history.replaceState: no reload, no history
entry) and restored when the file opens from disk; what a fragment holds that the page cannot use is named in one
note line and the map still shows. And the dotted ring's cut-off, config ``store.unseen_ring_passes``. On the
registry of the real sample drive that tests/test_report_unseen.py builds (three passes; R-000012 passed unseen
twice), exported with ``patrol export --format html``, in headless Chromium."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, unquote

import pandas as pd
import pytest

from conftest import ROOT, TOYAMA
from detector.store import Store
from test_report import console_errors, probe_of, render, selfcheck, with_probe
from test_report_unseen import registry  # noqa: F401 (the fixture)
from test_store_passes import sample  # noqa: F401 (the fixture)

# the page's state, read 2 s after it opened (after the probe's actions, where a test adds some)
STATE = """{hash: location.hash, history: history.length,
  cls: document.getElementById('f-class').value, status: document.getElementById('f-status').value,
  sev: document.getElementById('f-sev').value, unseen: document.getElementById('f-unseen').value,
  q: document.getElementById('f-text').value,
  rows: [].filter.call(document.querySelectorAll('#tbl tbody tr'), function (r) { return r.style.display !== 'none'; })
    .map(function (r) { return r.firstChild.textContent; }).sort(),
  sel: [].map.call(document.querySelectorAll('#tbl tbody tr.sel'), function (r) { return r.firstChild.textContent; }),
  popup: (document.querySelector('.leaflet-popup-content') || {}).textContent || null,
  link: (document.querySelector('.leaflet-popup a.link') || {}).href || null,
  note: document.getElementById('note').hidden ? null : document.getElementById('note').textContent,
  markers: document.querySelectorAll('#map path.leaflet-interactive').length,
  rings: document.querySelectorAll('#map path.unseen').length,
  legend: document.querySelector('.legend').textContent}"""


def patrol(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def exported(registry, tmp_path_factory):  # noqa: F811
    """The sample registry (a copy: the fixture is shared) with a few statuses set, its query, and its map."""
    path, rid = registry
    work = tmp_path_factory.mktemp("urlstate")
    reg = work / "registry.gpkg"
    shutil.copy(path, reg)
    with Store(reg) as st:
        for cid, status in (("R-000012", "confirmed"), ("R-000021", "confirmed"), ("R-000006", "scheduled")):
            st.set_status(cid, status, who="test")
        q = st.query().set_index("candidate_id")
    out = work / "map.html"
    r = patrol("export", reg, "--format", "html", "--roads", TOYAMA / "roads.geojson", "--out", out)
    assert r.returncode == 0, r.stderr
    return reg, out, q, rid


def state(page: Path, tmp_path: Path, fragment: str = "", actions: str = "") -> dict:
    """The page opened at ``fragment`` (from disk, file://), ``actions`` (JS) run 2 s later, then ``STATE``."""
    probed = tmp_path / f"p{len(list(tmp_path.glob('p*.html')))}.html"
    shutil.copy(page, probed)
    with_probe(probed, STATE, when=f"setTimeout(function () {{ {actions}; setTimeout(probe, 500); }}, 2000)")
    dom, err = render(probed, fragment, "--window-size=1400,1000")
    assert selfcheck(dom).startswith("report-ok:") and not console_errors(err), (selfcheck(dom), console_errors(err))
    p = probe_of(dom)
    p["selfcheck"] = selfcheck(dom)
    return p


def hash_of(p: dict) -> dict:
    """The written fragment as {key: decoded value} (the page's own encoding: ``,`` and ``/`` left as they are)."""
    return {k: unquote(v) for k, v in (kv.split("=", 1) for kv in p["hash"].lstrip("#").split("&"))}


def listed(q, cls="", status="", sev=0.0, unseen=0, text="") -> list[str]:
    """The damages the page's filters list (its matches(), on the registry's query)."""
    hay = q[["road_name", "segment_id", "class", "class_name", "class_name_ja", "status_note", "best_image",
             "best_drive", "checked_by"]].astype(object).where(q.notna(), "")
    hay = (q.index.to_series() + " " + hay.astype(str).agg(" ".join, axis=1)).str.lower()
    keep = pd.Series(True, index=q.index)
    keep &= (q["class"] == cls) if cls else True
    keep &= (q["status"] == status) if status else True
    keep &= (q["severity"] >= sev) if sev > 0 else True
    keep &= (q["n_unseen"] >= unseen) if unseen else True
    keep &= hay.str.contains(text.lower(), regex=False) if text else True
    return sorted(q.index[keep])


def test_a_fragment_restores_filters_selection_and_view(exported, tmp_path):
    """Opened at a fragment, the page sets its filters from it (the table and the map list what they say), selects
    the damage it names, zoomed to it with its popup open, and takes the map's centre and zoom where it gives them;
    #c=<id> of older links still selects. No note: the fragment was all understood."""
    _, page, q, rid = exported
    n = len(q)
    # filters: class, status and text; the search text in Japanese and percent-encoded as a browser writes it
    p = state(page, tmp_path, "#class=D00&status=new&q=553")
    want = listed(q, cls="D00", status="new", text="553")
    assert 1 <= len(want) < n and p["rows"] == want and p["markers"] == len(want), (p["rows"], want)
    assert (p["cls"], p["status"], p["q"], p["note"], p["sel"]) == ("D00", "new", "553", None, []), p
    p = state(page, tmp_path, "#status=confirmed&sev=50")  # R-000012 (confirmed) has 23.9
    assert p["rows"] == listed(q, status="confirmed", sev=50) == ["R-000021"] and p["sev"] == "50", p
    p = state(page, tmp_path, "#unseen=2")
    assert p["rows"] == listed(q, unseen=2) == [rid] and p["unseen"] == "2" and p["note"] is None, p
    p = state(page, tmp_path, "#q=" + quote("富山"))
    assert p["q"] == "富山" and p["note"] is None, p  # the text filter: a road name in Japanese
    # a damage: selected in the table, its popup open, the map zoomed to it (the written z: the map's own view)
    p = state(page, tmp_path, f"#id={rid}")
    z = hash_of(p)["z"].split("/")
    assert p["sel"] == [rid] and rid in p["popup"] and p["note"] is None and hash_of(p)["id"] == rid, p
    assert int(z[0]) >= 18 and abs(float(z[1]) - q.loc[rid, "lat"]) < 0.002 and abs(float(z[2]) - q.loc[rid, "lon"]) < 0.002, z
    assert len(p["rows"]) == n, "no filter set"
    # with the view the link was made in: that centre and zoom, the damage still selected
    lat, lon = q["lat"].mean(), q["lon"].mean()
    p = state(page, tmp_path, f"#id={rid}&z=16/{lat:.5f}/{lon:.5f}")
    assert p["sel"] == [rid] and rid in p["popup"] and hash_of(p)["z"] == f"16/{lat:.5f}/{lon:.5f}", p
    # the links of before (#c=) select as they did
    p = state(page, tmp_path, "#c=R-000021")
    assert p["sel"] == ["R-000021"] and "R-000021" in p["popup"] and hash_of(p)["id"] == "R-000021", p
    # the popup's "link to this damage": this file at #id=<id>
    assert re.fullmatch(r"file:///.*/p\d+\.html#id=R-000021", p["link"]), p["link"]


def test_filter_changes_write_the_fragment(exported, tmp_path):
    """Each filter change and each damage picked rewrites the fragment in place (no new history entry, no reload),
    and opening the page at what it wrote gives the same view back."""
    _, page, q, rid = exported
    actions = """
      var h0 = history.length, seen = [];
      function set(id, v) { var e = document.getElementById(id); e.value = v; e.dispatchEvent(new Event('input'));
        e.dispatchEvent(new Event('change')); seen.push(location.hash); }
      set('f-class', 'D10'); set('f-status', 'confirmed'); set('f-text', '552 553'); set('f-text', '');
      [].filter.call(document.querySelectorAll('#tbl tbody tr'), function (r) {
        return r.firstChild.textContent === '""" + rid + """'; })[0].click();
      seen.push(location.hash);
      document.documentElement.setAttribute('data-seen', JSON.stringify({h0: h0, seen: seen}))"""
    probed = tmp_path / "w.html"
    shutil.copy(page, probed)
    with_probe(probed, "{hash: location.hash, history: history.length, seen: JSON.parse("
               "document.documentElement.getAttribute('data-seen'))}",
               when=f"setTimeout(function () {{ {actions}; setTimeout(probe, 500); }}, 2000)")
    dom, err = render(probed, "", "--window-size=1400,1000")
    assert selfcheck(dom).startswith("report-ok:") and not console_errors(err), (selfcheck(dom), console_errors(err))
    p = probe_of(dom)
    seen = [dict(kv.split("=", 1) for kv in h.lstrip("#").split("&")) for h in p["seen"]["seen"]]
    assert [{k: v for k, v in s.items() if k != "z"} for s in seen] == [
        {"class": "D10"}, {"class": "D10", "status": "confirmed"}, {"class": "D10", "status": "confirmed", "q": "552%20553"},
        {"class": "D10", "status": "confirmed"}, {"id": rid, "class": "D10", "status": "confirmed"}], p["seen"]
    assert all(re.fullmatch(r"\d{1,2}/-?\d+\.\d{5}/-?\d+\.\d{5}", s["z"]) for s in seen), seen
    assert p["history"] == p["seen"]["h0"], "the fragment was set as a new history entry, not replaced"
    # the popup's pan (to show it whole) moved the map on: the fragment followed it
    assert p["hash"].rsplit("&z=", 1)[0] == p["seen"]["seen"][-1].rsplit("&z=", 1)[0], p
    # reopened at what it wrote: the same filters, rows, damage and view
    back = state(page, tmp_path, p["hash"])
    assert (back["cls"], back["status"], back["sel"], back["note"]) == ("D10", "confirmed", [rid], None), back
    assert back["rows"] == listed(q, cls="D10", status="confirmed") and back["hash"] == p["hash"], back


@pytest.mark.parametrize("fragment, named", [
    ("#id=R-999999", ["id=R-999999 (該当なし / no such damage)"]),
    ("#%E0%A4%A", ["%E0%A4%A"]),
    ("#z=abc&class=D99&foo=1&status=confirmed", ["z=abc", "class=D99", "foo=1"]),
    ("#z=40/36.68/137.23&unseen=9&sev=-1&<img src=x onerror=alert(1)>", ["z=40/36.68/137.23", "unseen=9", "sev=-1",
                                                                         "<img src=x onerror=alert(1)>"]),
    ("#id=R-000012&status=new", ["id=R-000012 (フィルタで非表示 / hidden by the filters)"]),
])
def test_a_bad_fragment_still_shows_the_map(exported, tmp_path, fragment, named):
    """A fragment the page cannot use (an id it does not hold, broken percent-encoding, unknown keys or values, a
    zoom out of range, a damage its own filters hide) is named in one note line; what it can use is applied, and
    the map draws its markers: never a blank page."""
    _, page, q, rid = exported
    p = state(page, tmp_path, fragment)
    assert p["note"] and p["note"].startswith("リンクの一部を無視しました / ignored in the link: "), p
    assert html.unescape(p["note"]).split(": ", 1)[1].split(" · ") == named, p["note"]
    want = listed(q, status="confirmed" if "status=confirmed" in fragment else "new" if "status=new" in fragment else "")
    assert p["rows"] == want and p["markers"] == len(want) > 0 and p["selfcheck"] == f"report-ok:{len(want)}:{len(want)}", p
    assert p["sel"] == [] and p["popup"] is None, p
    assert "foo" not in p["hash"] and "D99" not in p["hash"] and "999999" not in p["hash"], p["hash"]  # left out


def test_the_ring_cut_off_is_the_configs(exported, tmp_path):
    """config store.unseen_ring_passes: the dotted hollow ring marks open damages passed unseen at least that many
    times (default 2: only R-000012, as before; 1: R-000001 too), the legend says the number, and the 未検出通過
    filter offers a cut-off above its 1+ / 2+ / 3+."""
    reg, page, q, rid = exported
    open_ = q[~q["status"].isin(["repaired", "not_an_issue"])]
    p = state(page, tmp_path)
    assert p["rings"] == (open_["n_unseen"] >= 2).sum() == 1 and "not seen on the last 2+ passes" in p["legend"], p
    for k, want in ((1, (open_["n_unseen"] >= 1).sum()), (3, 0)):
        cfg = tmp_path / f"ring{k}.yaml"
        cfg.write_text(f"store:\n  unseen_ring_passes: {k}\n", encoding="utf-8")
        out = tmp_path / f"ring{k}.html"
        r = patrol("export", reg, "--format", "html", "--roads", TOYAMA / "roads.geojson", "--out", out, "--config", cfg)
        assert r.returncode == 0, r.stderr
        p = state(out, tmp_path)
        assert p["rings"] == want and f"not seen on the last {k}+ passes" in p["legend"], (k, p["rings"], want)
    assert want == 0 and (open_["n_unseen"] >= 1).sum() == 2
    cfg.write_text("store:\n  unseen_ring_passes: 5\n", encoding="utf-8")
    r = patrol("export", reg, "--format", "html", "--out", out, "--config", cfg)
    assert r.returncode == 0, r.stderr
    p = state(out, tmp_path, "#unseen=5")
    assert p["unseen"] == "5" and p["rows"] == [] and p["note"] is None, p  # the filter offers the ring's cut-off


def test_the_ring_cut_off_setting_is_checked(tmp_path):
    """store.unseen_ring_passes: a whole number of passes, 1 or more (a full-width １ as typed is 1); the run's
    report and the export both take it from the config their map is written with."""
    from detector import report
    from detector.config import load_config
    from detector.errors import ConfigError
    from test_report import make_candidates

    cfg_path = tmp_path / "c.yaml"
    for bad in ("0", "1.5", "two"):
        cfg_path.write_text(f"store:\n  unseen_ring_passes: {bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="store.unseen_ring_passes"):
            load_config(cfg_path)
    cfg_path.write_text("store:\n  unseen_ring_passes: ３\n", encoding="utf-8")
    cfg = load_config(cfg_path)
    assert cfg.store.unseen_ring_passes == 3 and load_config().store.unseen_ring_passes == 2
    html = report.render_html(report.prepare(make_candidates(cfg, 3), cfg), cfg)
    assert '"unseenRing":3' in html


def test_the_open_status_filter_lists_what_still_needs_the_crew(exported, tmp_path):
    """「未対応 open」: every damage but the repaired and the ruled-out ones (new, confirmed, scheduled, reopened), what a
    crew goes out for; kept in the address as ``status=open`` like any status."""
    reg0, _, _, _ = exported
    reg = tmp_path / "registry.gpkg"
    shutil.copy(reg0, reg)
    with Store(reg) as st:
        st.set_status("R-000003", "repaired", who="test")
        st.set_status("R-000004", "not_an_issue", who="test")
        q = st.query().set_index("candidate_id")
    out = tmp_path / "map.html"
    r = patrol("export", reg, "--format", "html", "--roads", TOYAMA / "roads.geojson", "--out", out)
    assert r.returncode == 0, r.stderr
    want = sorted(q.index[~q["status"].isin(["repaired", "not_an_issue"])])
    assert len(want) == len(q) - 2 and {"confirmed", "scheduled", "new"} <= set(q.loc[want, "status"])
    p = state(out, tmp_path, "#status=open")
    assert p["status"] == "open" and p["rows"] == want and p["note"] is None, p
    assert hash_of(p)["status"] == "open"
    p = state(out, tmp_path, "", "var s = document.getElementById('f-status'); s.value = 'open'; "
                                 "s.dispatchEvent(new Event('change'))")
    assert p["rows"] == want and hash_of(p)["status"] == "open", p
