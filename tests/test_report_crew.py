"""A crew records its checks in report.html on a tablet (README: recording a check in report.html) and hands back
the CSV ``patrol import-verification`` reads. On the registry of the real sample drive that tests/test_report_unseen.py
builds, exported with ``patrol export --format html``, in headless Chromium: the form filled for damages in their
popups, the browser closed and started again on the same profile (the entries are in its localStorage), the list
downloaded with the page's own button into a download folder (the profile's download preferences: headless Chromium
saves a Blob download there), then imported into the registry: applied; and, where the office changed one of the
damages with ``patrol status`` after the report was made, that row held as for a stale Excel list."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from conftest import TOYAMA, in_phone
from detector import report
from detector.store import Store
from test_report import BOXES, CHROMIUM_FLAGS, FRAMES, PHONES, chromium_bin, console_errors, make_candidates, probe_of, selfcheck
from test_report_unseen import registry  # noqa: F401 (the fixture)
from test_report_urlstate import patrol
from test_store_passes import sample  # noqa: F401 (the fixture)

COLUMNS = ["candidate_id", "status", "note", "checked_by", "checked_at", "repaired_at", "status_changed_at"]

# page helpers for the probes: open a damage's popup by clicking its table row, fill its form and save it
HELPERS = """
  function row(id) { return [].filter.call(document.querySelectorAll('#tbl tbody tr'), function (r) {
    return r.firstChild.textContent.replace(/\\s*\\u2713$/, '') === id; })[0]; }
  function form(id) {  // (the popup closed before fades out for 0.2 s: the open one is the last)
    row(id).click(); var f = document.querySelectorAll('.leaflet-popup-content details.crew form'); return f[f.length - 1]; }
  function fill(id, v) {
    var f = form(id), s = f.querySelector('select'), ins = f.querySelectorAll('input');
    s.value = v.status; s.dispatchEvent(new Event('change'));
    ['note', 'checked_by', 'checked_at', 'repaired_at'].forEach(function (k, j) { if (v[k] !== undefined) ins[j].value = v[k]; });
    f.querySelector('button[type=submit], button:not([type])').click();
    return f;
  }
  function values(id) { var f = form(id); return {status: f.querySelector('select').value,
    inputs: [].map.call(f.querySelectorAll('input'), function (e) { return e.value; }),
    repairedShown: !f.querySelectorAll('label')[4].hidden, said: f.querySelector('.said').textContent}; }
  function counter() { return document.getElementById('crew-n').textContent; }
  function today() { var d = new Date(); function two(n) { return (n < 10 ? '0' : '') + n; }
    return d.getFullYear() + '-' + two(d.getMonth() + 1) + '-' + two(d.getDate()); }  // the browser's own day
  function configToday() { return new Date().toLocaleDateString('sv-SE', {timeZone: 'Asia/Tokyo'}); }  // the config's
"""


def browse(page: Path, profile: Path, actions: str, expr: str, name: str) -> dict:
    """``page`` opened from disk in headless Chromium on ``profile`` (kept: a browser closed and started again),
    ``actions`` (JS, with HELPERS) run 2 s after it opened, then ``expr`` read back (as test_report.with_probe)."""
    probed = page.with_name(name)
    script = (f"<script>(function () {{ {HELPERS} function probe() {{ document.documentElement.setAttribute("
              f"'data-probe', JSON.stringify({expr})); }} setTimeout(function () {{ {actions}; setTimeout(probe, 1500);"
              " }, 2000); })();</script>")
    html = page.read_text(encoding="utf-8").replace("<script", FRAMES + "<script", 1).replace("</body>", script + "</body>")
    probed.write_text(html, encoding="utf-8")
    cmd = [chromium_bin(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           "--virtual-time-budget=8000", "--window-size=1400,1000", "--dump-dom", probed.resolve().as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert selfcheck(r.stdout).startswith("report-ok:") and not console_errors(r.stderr), (
        selfcheck(r.stdout), console_errors(r.stderr))
    return probe_of(r.stdout)


def new_profile(path: Path, downloads: Path) -> Path:
    """A Chromium profile whose downloads go to ``downloads`` without a prompt."""
    (path / "Default").mkdir(parents=True)
    downloads.mkdir()
    (path / "Default" / "Preferences").write_text(json.dumps({"download": {
        "default_directory": str(downloads), "prompt_for_download": False, "directory_upgrade": True}}))
    return path


@pytest.fixture(scope="module")
def crew(registry, tmp_path_factory):  # noqa: F811
    """The registry (a copy), its map exported, and the CSV a crew recorded on it in Chromium: R-a scheduled with a
    note (quotes, a comma, a line of Japanese), R-b repaired on a given day by the checker remembered from R-a, with
    a note a spreadsheet would take for a formula (=1+1), R-c
    recorded and undone. Two browser sessions on one profile: the second finds the entries and downloads the list."""
    path, _ = registry
    work = tmp_path_factory.mktemp("crew")
    reg = work / "registry.gpkg"
    shutil.copy(path, reg)
    with Store(reg) as st:
        st.set_status("R-000006", "confirmed", who="office")
        st.set_status("R-000021", "repaired", who="office")
        q = st.query(lists=False).set_index("candidate_id")
    new = sorted(q.index[q["status"] == "new"])
    a, b, c = new[0], "R-000006", new[1]
    page = work / "map.html"
    r = patrol("export", reg, "--format", "html", "--roads", TOYAMA / "roads.geojson", "--out", page)
    assert r.returncode == 0, r.stderr
    downloads = work / "downloads"
    profile = new_profile(work / "profile", downloads)
    first = browse(page, profile, f"""
      fill('{a}', {{status: 'scheduled', note: '段差 5cm, "要注意"', checked_by: '田中'}});
      window.bAfterA = values('{b}');  // the checker remembered, today's date, no repair date shown
      fill('{b}', {{status: 'repaired', note: '=1+1', checked_at: '2026-11-26', repaired_at: '2026-11-25'}});
      var f = fill('{c}', {{status: 'not_an_issue'}}); window.cSaved = counter();
      f.querySelector('button.undo').click(); window.cUndone = values('{c}')""",
                   "{bAfterA: window.bAfterA, cSaved: window.cSaved, cUndone: window.cUndone, counter: counter(),"
                   " today: configToday(), reportDate: JSON.parse(document.getElementById('data').textContent).meta.crew.date,"
                   " options: [].map.call(form('" + a + "').querySelectorAll('option'),"
                   " function (o) { return o.textContent; }), greyed: [].filter.call(form('R-000021')"
                   ".querySelectorAll('option'), function (o) { return o.disabled; }).map(function (o) { return o.value; })}",
                   "first.html")
    # the browser closed; opened again (another copy of the file: the entries are the report's, not the path's)
    again = browse(page, profile, "document.getElementById('crew-dl').click()",
                   f"{{a: values('{a}'), b: values('{b}'), c: values('{c}'), counter: counter(), csv: window.patrolCrewCsv(),"
                   " marked: [].filter.call(document.querySelectorAll('#tbl tbody tr.rec'), function (r) {"
                   " return true; }).length}", "again.html")
    return {"reg": reg, "page": page, "q": q, "ids": (a, b, c), "first": first, "again": again,
            "downloads": downloads}


def test_the_form_records_and_survives_a_restart(crew):
    """The form offers the statuses a crew sets (in Japanese and English, not new / reopened; a move the life cycle
    refuses from the damage's status greyed out), remembers the
    checker, defaults the check's date to today on the config's clock (Asia/Tokyo), shows 補修日 only for a repair; an entry undone is gone and
    can be saved again from the fields left; the counter counts, and all of it is there after the browser restarts."""
    a, b, c = crew["ids"]
    first, again = crew["first"], crew["again"]
    assert first["options"] == ["— 選ぶ / pick —", "確認済み / confirmed", "補修予定 / scheduled", "補修済み / repaired",
                                "対象外 / not an issue"], first["options"]
    assert first["greyed"] == ["confirmed", "scheduled"], first["greyed"]  # from repaired: only not_an_issue
    assert first["bAfterA"]["inputs"] == ["", "田中", first["today"], ""] and not first["bAfterA"]["repairedShown"]
    assert first["cSaved"] == "3 件 記録済み / 3 recorded" and first["counter"] == "2 件 記録済み / 2 recorded", first
    assert first["cUndone"]["status"] == "not_an_issue" and first["cUndone"]["said"] == "取り消しました / removed", first
    assert again["counter"] == "2 件 記録済み / 2 recorded" and again["marked"] == 2, again
    assert again["a"]["status"] == "scheduled" and again["a"]["inputs"][:3] == ['段差 5cm, "要注意"', "田中", first["today"]]
    assert again["b"]["status"] == "repaired" and again["b"]["repairedShown"], again["b"]
    assert again["b"]["inputs"] == ["=1+1", "田中", "2026-11-26", "2026-11-25"] and again["b"]["said"] == "記録済み / recorded"
    assert again["c"]["status"] == "" and again["c"]["said"] == "", again["c"]  # not kept


def test_the_form_fits_a_phone(crew, tmp_path):
    """On a phone (375 and 320 px, in a frame of that width: conftest.in_phone), a damage chosen from the list, its
    form opened, 補修済み picked (the repair date shown) and saved (the undo button shown): the popup lies inside the
    map, every field and button is within the popup's width and the screen's, finger-sized (40 px: before, the
    buttons 34 px, the fields 36, the form's folding line 23), the buttons reached by scrolling the popup, and the
    page does not scroll sideways; the bar's download button is finger-sized too."""
    a = crew["ids"][0]
    before = f"""{HELPERS} var f = form('{a}'), s = f.querySelector('select'); f.parentNode.open = true;
      s.value = 'repaired'; s.dispatchEvent(new Event('change')); f.querySelector('button:not([type])').click()"""
    expr = """(function () { %s
      var vw = window.innerWidth, map = box('#map'), pop = document.querySelector('.leaflet-popup-content-wrapper'),
          content = document.querySelector('.leaflet-popup-content'), d = content.querySelector('details.crew');
      var cb = box(content), taps = [d.querySelector('summary')].concat([].filter.call(d.querySelectorAll('select, input, button'), shown));
      var out = {vw: vw, sideways: document.scrollingElement.scrollWidth - vw, open: d.open, said: d.querySelector('.said').textContent,
        popIn: within(box(pop), map) && map[2] <= vw,
        taps: taps.map(function (e) { var b = box(e); return [e.tagName + (e.className ? '.' + e.className : ''), b[3] - b[1],
                                                            b[0] >= cb[0] && b[2] <= cb[2] && b[2] <= vw]; }),
        dl: [box('#crew-dl')[3] - box('#crew-dl')[1], box('#crew-dl')[2] <= vw]};
      // the popup's own scroll box scrolled as far as brings the form's last button into view (the damage's table
      // follows the form: the end of the popup is the table's)
      var btns = [].filter.call(d.querySelectorAll('button'), shown);
      content.scrollTop += box(btns[btns.length - 1])[3] - cb[3];
      cb = box(content);
      out.reached = [].filter.call(d.querySelectorAll('button'), shown).map(function (e) { return within(box(e), cb); });
      return out; })()""" % BOXES
    for width in PHONES:
        page = tmp_path / f"phone{width}.html"
        shutil.copy(crew["page"], page)
        p = in_phone(page, "", expr, width, 844, before=before, after=1500)
        assert p["vw"] == width and p["open"] and p["said"] == "記録済み / recorded", p
        assert p["sideways"] <= 0 and p["popIn"], (width, p)
        kinds = sorted(t[0] for t in p["taps"])
        assert kinds == ["BUTTON", "BUTTON.undo", "INPUT", "INPUT", "INPUT", "INPUT", "SELECT", "SUMMARY"], (width, kinds)
        assert all(h >= 40 and inside for _, h, inside in p["taps"]), (width, p["taps"])
        assert p["reached"] == [True, True] and p["dl"][0] >= 40 and p["dl"][1], (width, p)


def test_the_download_is_the_list_import_verification_takes(crew, tmp_path):
    """"リストを保存 / download list" saves 確認結果-<report date>.csv (UTF-8 with BOM): the recorded damages only, in
    the list's order, each with the status_changed_at it has in the report; imported, the statuses are applied
    (the repair on its 補修日), the note and the checker kept. A note starting with = + - @ is written after an
    apostrophe, as the Python exports write it (Excel opens it as text, not a formula), and imported as typed."""
    a, b, c = crew["ids"]
    q = crew["q"]
    got = list(crew["downloads"].glob("*.csv"))
    # named by the report's date on the config's clock (Asia/Tokyo), not the browser's today: they differ from 15:00
    # to 24:00 UTC (this test failed then when it compared with the browser's date)
    assert [p.name for p in got] == [f"確認結果-{crew['first']['reportDate']}.csv"], got
    data = got[0].read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and data.decode("utf-8-sig") == crew["again"]["csv"].lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    page = crew["page"].read_text(encoding="utf-8")
    listed = [c["candidate_id"] for c in json.loads(re.search(r'id="data">(.*?)</script>', page).group(1))["candidates"]]
    assert rows[0] == COLUMNS and [r[0] for r in rows[1:]] == [i for i in listed if i in (a, b)], rows
    by_id = {r[0]: dict(zip(COLUMNS, r)) for r in rows[1:]}
    assert sorted(by_id) == sorted([a, b]) and len(rows) == 3, rows
    assert by_id[a] == {"candidate_id": a, "status": "scheduled", "note": '段差 5cm, "要注意"', "checked_by": "田中",
                        "checked_at": crew["first"]["today"], "repaired_at": "",
                        "status_changed_at": q.loc[a, "status_changed_at"]}, by_id[a]
    assert by_id[b]["status_changed_at"] == q.loc[b, "status_changed_at"] and by_id[b]["repaired_at"] == "2026-11-25"
    assert by_id[b]["note"] == "'=1+1", by_id[b]  # not a formula in Excel
    reg = tmp_path / "registry.gpkg"
    shutil.copy(crew["reg"], reg)
    r = patrol("import-verification", reg, got[0])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "applied 2," in r.stdout, r.stdout
    with Store(reg) as st:
        now = st.query(lists=False).set_index("candidate_id")
    assert (now.loc[a, "status"], now.loc[a, "status_note"], now.loc[a, "checked_by"]) == (
        "scheduled", '段差 5cm, "要注意"', "田中")
    # the repair is recorded on its 補修日; the registry holds a sighting after it (the third drive's, 2026-12-04):
    # reopened at once, one line says so (the office checks the date)
    assert now.loc[b, "status"] == "reopened" and now.loc[b, "repaired_at"].startswith("2026-11-25T00:00:00")
    assert now.loc[b, "status_note"] == "=1+1"  # as typed: the guard's apostrophe taken off (the crew's note stays)
    assert re.search(rf"row \d+: {b}: seen 2026-12-04 \d\d:\d\d \(\S+\) after the repair of 2026-11-25: repair "
                     rf"recorded, reopened", r.stdout), r.stdout
    assert now.loc[c, "status"] == q.loc[c, "status"] == "new"  # undone: not in the list
    # imported again: nothing changes
    r = patrol("import-verification", reg, got[0])
    assert r.returncode == 0 and "applied 0," in r.stdout, r.stdout + r.stderr


def test_an_office_change_after_the_report_holds_the_row(crew, tmp_path):
    """The office sets one of the recorded damages 対象外 with ``patrol status`` after the report was made: the
    crew's row for it is held (not applied, stderr names it), as for an Excel list exported before that change;
    the other row is applied."""
    a, b, c = crew["ids"]
    reg = tmp_path / "registry.gpkg"
    shutil.copy(crew["reg"], reg)
    r = patrol("status", reg, a, "--set", "not_an_issue", "--note", "マンホール蓋", "--who", "office")
    assert r.returncode == 0, r.stderr
    (listed,) = crew["downloads"].glob("*.csv")
    r = patrol("import-verification", reg, listed)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "applied 1," in r.stdout and "held 1" in r.stdout, r.stdout
    assert f"{a}: not applied: the registry changed the damage after the list was exported" in r.stderr, r.stderr
    with Store(reg) as st:
        now = st.query(lists=False).set_index("candidate_id")
    # b: its repair (2026-11-25) recorded, reopened by the sighting of 2026-12-04 the registry holds
    assert now.loc[a, "status"] == "not_an_issue" and now.loc[b, "status"] == "reopened"
    con = sqlite3.connect(reg)
    try:
        held = con.execute("SELECT source, note FROM status_history WHERE candidate_id=? AND source LIKE 'import-held:%'",
                           (a,)).fetchall()
    finally:
        con.close()
    assert len(held) == 1 and "'段差 5cm" in held[0][1], held


def test_no_form_without_registry_ids(tmp_path):
    """A run without --store (ids C0001 …: no registry to import into) offers no form and no download; a registry's
    map does, with the statuses a crew sets."""
    from detector.config import Config

    cfg = Config()
    df = make_candidates(cfg, 4)
    data, _ = report.html_data(report.prepare(df, cfg), cfg)
    assert "crew" not in data["meta"]
    df["candidate_id"] = [f"R-{i:06d}" for i in range(1, 5)]
    data, _ = report.html_data(report.prepare(df, cfg), cfg)
    assert data["meta"]["crew"]["statuses"] == ["confirmed", "scheduled", "repaired", "not_an_issue"]
    assert data["meta"]["crew"]["moves"]["repaired"] == ["not_an_issue"]
    # the entries' name: the registry's (Store.identity, in df.attrs as a run with --store and patrol export set it),
    # through export's preparing; without one, the report's own key
    assert data["meta"]["crew"]["registry"] == data["meta"]["crew"]["key"]
    df.attrs["registry"] = "0123456789abcdef"
    page = report.export(df, "html", tmp_path / "reg.html", cfg)
    assert crew_of(page)["registry"] == "0123456789abcdef"
    out = report.export(make_candidates(cfg, 4), "html", tmp_path / "run.html", cfg)
    profile = new_profile(tmp_path / "profile", tmp_path / "dl")
    p = browse(out, profile, "document.querySelector('#tbl tbody tr').click()",
               "{bar: document.getElementById('crew').hidden, popup: !!document.querySelector('.leaflet-popup-content'),"
               " form: !!document.querySelector('details.crew')}", "p.html")
    assert p == {"bar": True, "popup": True, "form": False}, p


def test_the_check_date_defaults_to_today_on_the_configs_clock(tmp_path, monkeypatch):
    """README: recording a check in report.html: 確認日 defaults to today on the config's timezone clock (Asia/Tokyo),
    the day the import reads it on, on a tablet set to another zone too. The browser on UTC, its clock moved to just
    before and just after midnight in Tokyo (2026-11-30T14:30Z = 23:30 JST, 15:30Z = 2026-12-01 00:30 JST): the
    form gives 2026-11-30, then 2026-12-01, where the browser's own day is still the 30th (it gave that before)."""
    from detector.config import Config

    cfg = Config()
    df = make_candidates(cfg, 4)
    df["candidate_id"] = [f"R-{i:06d}" for i in range(1, 5)]
    page = report.export(df, "html", tmp_path / "reg.html", cfg)
    assert crew_of(page)["timeZone"] == "Asia/Tokyo"
    monkeypatch.setenv("TZ", "UTC")  # the browser's zone (Chromium reads TZ)
    profile = new_profile(tmp_path / "profile", tmp_path / "dl")
    p = browse(page, profile, """
      function shift(iso) {  // new Date() and Date.now() moved to iso, the clock running on from there
        var R = window.RealDate || Date, off = R.parse(iso) - R.now(); window.RealDate = R;
        window.Date = class extends R {
          constructor(...a) { if (a.length) super(...a); else super(R.now() + off); }
          static now() { return R.now() + off; }
        };
      }
      shift('2026-11-30T14:30:00Z'); window.before = values('R-000001').inputs[2];
      shift('2026-11-30T15:30:00Z'); window.after = values('R-000002').inputs[2]; window.browserDay = today()""",
               "{before: window.before, after: window.after, browserDay: window.browserDay}", "clock.html")
    assert p == {"before": "2026-11-30", "after": "2026-12-01", "browserDay": "2026-11-30"}, p


def test_the_form_takes_no_date_after_today_on_the_configs_clock(tmp_path, monkeypatch):
    """README: recording a check in report.html: 確認日 and 補修日 go up to today on the config's clock (their ``max``),
    as ``patrol import-verification`` refuses a date in the future (a crew's 2026/12/02 typed on 12-01: before, the
    form saved it and the import refused the row). The browser on UTC at 2026-11-30T15:30Z (2026-12-01 00:30 in
    Tokyo, the browser's own day still the 30th): both inputs' max is 12-01; an entry checked on 12-02 or repaired on
    12-02 is not saved (the browser's check stops the form), one checked on 12-01 is; a future 補修日 left in the
    field, then another status picked (the field hidden), does not stop the entry."""
    from detector.config import Config

    cfg = Config()
    df = make_candidates(cfg, 4)
    df["candidate_id"] = [f"R-{i:06d}" for i in range(1, 5)]
    page = report.export(df, "html", tmp_path / "reg.html", cfg)
    monkeypatch.setenv("TZ", "UTC")  # the browser's zone (Chromium reads TZ)
    profile = new_profile(tmp_path / "profile", tmp_path / "dl")
    p = browse(page, profile, """
      var R = window.Date, off = R.parse('2026-11-30T15:30:00Z') - R.now();
      window.Date = class extends R {  // new Date() and Date.now() moved, the clock running on from there
        constructor(...a) { if (a.length) super(...a); else super(R.now() + off); }
        static now() { return R.now() + off; }
      };
      function max(id) { return [].map.call(form(id).querySelectorAll('input[type=date]'), function (e) { return e.max; }); }
      window.maxes = max('R-000001');
      fill('R-000001', {status: 'confirmed', checked_at: '2026-12-02'}); window.later = values('R-000001').said;
      fill('R-000002', {status: 'repaired', checked_at: '2026-12-01', repaired_at: '2026-12-02'});
      window.repairLater = values('R-000002').said;
      fill('R-000003', {status: 'confirmed', checked_at: '2026-12-01'}); window.todays = values('R-000003').said;
      var f = form('R-000004'), s = f.querySelector('select'), ins = f.querySelectorAll('input');
      s.value = 'repaired'; s.dispatchEvent(new Event('change')); ins[3].value = '2026-12-09';
      s.value = 'scheduled'; s.dispatchEvent(new Event('change')); f.querySelector('button:not([type])').click();
      window.hiddenLater = values('R-000004').said; window.browserDay = today()""",
               "{maxes: window.maxes, later: window.later, repairLater: window.repairLater, todays: window.todays,"
               " hiddenLater: window.hiddenLater, browserDay: window.browserDay, counter: counter(),"
               " saved: Object.keys(localStorage).filter(function (k) { return /R-00000\\d$/.test(k); }).sort()}",
               "future.html")
    assert p["maxes"] == ["2026-12-01", "2026-12-01"] and p["browserDay"] == "2026-11-30", p
    assert p["later"] == p["repairLater"] == "", p  # not saved
    assert p["todays"] == p["hiddenLater"] == "記録済み / recorded", p
    assert p["counter"] == "2 件 記録済み / 2 recorded" and [k[-8:] for k in p["saved"]] == ["R-000003", "R-000004"], p


def crew_of(page: Path) -> dict:
    """The page's meta.crew (its data block)."""
    return json.loads(re.search(r'id="data">(.*?)</script>', page.read_text(encoding="utf-8")).group(1))["meta"]["crew"]


@pytest.fixture(scope="module")
def weeks(registry, tmp_path_factory):  # noqa: F811
    """A crew's tablet over two reports of one registry, and a third of another (README: recording a check in
    report.html, "a newer report"). Report A: d recorded and the list downloaded (then imported by the office: d
    scheduled), x and y recorded after the download; the office sets y 対象外 with ``patrol status``. Report B,
    exported after both changes (every damage's status the import and the office changed: A's name for the entries
    no longer B's), opened in the same profile: x pending, y recorded on an older report, d gone; its list
    downloaded and imported. Report C: the same registry at B's state under another identity (another city's
    registry whose ids are the same R-…), opened in the same profile, then an entry under the name of the entries
    before this change (``patrol:<key>:<id>``) put in C's storage, found again under C's registry on the next open."""
    path, _ = registry
    work = tmp_path_factory.mktemp("weeks")
    reg = work / "registry.gpkg"
    shutil.copy(path, reg)
    with Store(reg) as st:
        q0 = st.query(lists=False).set_index("candidate_id")
    new = sorted(q0.index[q0["status"] == "new"])
    x, y, d = new[0], new[1], new[2]
    page_a, page_b, page_c = work / "a.html", work / "b.html", work / "c.html"
    r = patrol("export", reg, "--format", "html", "--roads", TOYAMA / "roads.geojson", "--out", page_a)
    assert r.returncode == 0, r.stderr
    downloads, lists = work / "downloads", work / "lists"
    lists.mkdir()
    profile = new_profile(work / "profile", downloads)
    browse(page_a, profile, f"""
      fill('{d}', {{status: 'scheduled', note: '来週', checked_by: '佐藤'}});
      document.getElementById('crew-dl').click();
      fill('{x}', {{status: 'scheduled', note: '段差'}});
      fill('{y}', {{status: 'confirmed', note: 'ひび'}})""", "counter()", "a1.html")
    (list_a,) = downloads.glob("*.csv")
    list_a = shutil.move(list_a, lists / "a.csv")  # (B's list: the same name in the download folder)
    r = patrol("import-verification", reg, list_a)
    assert r.returncode == 0 and "applied 1," in r.stdout, r.stdout + r.stderr
    r = patrol("status", reg, y, "--set", "not_an_issue", "--note", "マンホール蓋", "--who", "office")
    assert r.returncode == 0, r.stderr
    with Store(reg) as st:
        q1 = st.query(lists=False).set_index("candidate_id")
    r = patrol("export", reg, "--format", "html", "--roads", TOYAMA / "roads.geojson", "--out", page_b)
    assert r.returncode == 0, r.stderr
    key_b = crew_of(page_b)["registry"]
    stored = f"localStorage.getItem('patrol:reg-{key_b}:{d}')"
    b = browse(page_b, profile, "window.csvBefore = window.patrolCrewCsv(); document.getElementById('crew-dl').click()",
               f"{{x: values('{x}'), y: values('{y}'), d: values('{d}'), counter: counter(), csv: window.csvBefore,"
               f" dStored: {stored}, stale: [].map.call(document.querySelectorAll('#tbl tbody tr.rec.stale'),"
               " function (r) { return r.firstChild.textContent; }), warned: [].map.call(document.querySelectorAll("
               "'details.crew.stale'), function (e) { return e.querySelector('.said').textContent; })}", "b1.html")
    got = list(downloads.glob("*.csv"))  # (none: B found no entry, its button disabled)
    list_b = shutil.move(got[0], lists / "b.csv") if len(got) == 1 else None
    imported = patrol("import-verification", reg, list_b) if list_b else None
    other = work / "other.gpkg"  # another registry: its first merge another
    shutil.copy(reg, other)
    con = sqlite3.connect(other)
    with con:
        con.execute("UPDATE runs SET run_id = run_id || '-other' WHERE rid = (SELECT MIN(rid) FROM runs)")
    con.close()
    r = patrol("export", other, "--format", "html", "--roads", TOYAMA / "roads.geojson", "--out", page_c)
    assert r.returncode == 0, r.stderr
    old = crew_of(page_c)["key"]
    entry = json.dumps({"status": "confirmed", "note": "前の記録", "checked_by": "鈴木", "checked_at": "2026-11-20",
                        "repaired_at": ""}, ensure_ascii=False)
    c = browse(page_c, profile, f"localStorage.setItem('patrol:{old}:{new[3]}', {json.dumps(entry)})",
               f"{{x: values('{x}'), y: values('{y}'), counter: counter(), csv: window.patrolCrewCsv(),"
               " marked: document.querySelectorAll('#tbl tbody tr.rec').length}", "c1.html")
    c2 = browse(page_c, profile, "", f"{{v: values('{new[3]}'), counter: counter(), csv: window.patrolCrewCsv(),"
                f" old: localStorage.getItem('patrol:{old}:{new[3]}')}}", "c2.html")
    order = [c["candidate_id"] for c in json.loads(re.search(r'id="data">(.*?)</script>', page_b.read_text(
        encoding="utf-8")).group(1))["candidates"]]
    return {"reg": reg, "ids": (x, y, d, new[3]), "order": order, "q0": q0, "q1": q1, "pages": (page_a, page_b, page_c),
            "b": b,
            "list_b": list_b, "imported": imported, "c": c, "c2": c2}


def test_entries_follow_the_damage_into_the_next_report(weeks):
    """An entry recorded in report A and not downloaded is in the registry's next report B, though the import and
    the office changed other damages' statuses in between (A's and B's lists differ): the form filled in as recorded,
    counted, and in B's list with the status_changed_at it was recorded against; imported: applied."""
    x, y, d, _ = weeks["ids"]
    b, q0, q1 = weeks["b"], weeks["q0"], weeks["q1"]
    a_crew, b_crew = crew_of(weeks["pages"][0]), crew_of(weeks["pages"][1])
    assert a_crew["key"] != b_crew["key"] and a_crew["registry"] == b_crew["registry"], (a_crew, b_crew)
    assert q1.loc[x, "status_changed_at"] == q0.loc[x, "status_changed_at"]  # x unchanged
    assert b["x"]["status"] == "scheduled" and b["x"]["inputs"][0] == "段差" and b["x"]["said"] == "記録済み / recorded"
    assert b["counter"] == "2 件 記録済み / 2 recorded (うち 1 件 要確認 / 1 to check)", b["counter"]
    rows = list(csv.reader(io.StringIO(b["csv"].lstrip("\ufeff"), newline="")))
    by_id = {r[0]: dict(zip(COLUMNS, r)) for r in rows[1:]}
    assert rows[0] == COLUMNS and sorted(by_id) == sorted([x, y]), rows
    assert by_id[x]["status"] == "scheduled" and by_id[x]["status_changed_at"] == q0.loc[x, "status_changed_at"]
    assert weeks["list_b"] and weeks["list_b"].read_bytes().decode("utf-8-sig") == b["csv"].lstrip("\ufeff")
    r = weeks["imported"]
    assert r.returncode == 0 and "applied 1," in r.stdout and "held 1" in r.stdout, r.stdout + r.stderr
    with Store(weeks["reg"]) as st:
        now = st.query(lists=False).set_index("candidate_id")
    assert (now.loc[x, "status"], now.loc[x, "status_note"]) == ("scheduled", "段差")


def test_an_entry_the_office_overtook_is_shown_to_check_and_held(weeks):
    """y, recorded in A, then set 対象外 by the office: B shows it as recorded on an older report (the row and the
    form marked), lists it with A's status_changed_at, and the import holds it for the office (not applied over
    the office's change)."""
    x, y, d, _ = weeks["ids"]
    b, q0, q1 = weeks["b"], weeks["q0"], weeks["q1"]
    assert q1.loc[y, "status_changed_at"] != q0.loc[y, "status_changed_at"]
    assert b["y"]["status"] == "confirmed" and b["y"]["inputs"][0] == "ひび", b["y"]
    assert b["y"]["said"] == "古いレポートで記録: 確認してください / recorded on an older report — check", b["y"]
    assert b["stale"] == [y] and len(b["warned"]) == 1, b
    rows = list(csv.reader(io.StringIO(b["csv"].lstrip("\ufeff"), newline="")))
    by_id = {r[0]: dict(zip(COLUMNS, r)) for r in rows[1:]}
    assert by_id[y]["status"] == "confirmed" and by_id[y]["status_changed_at"] == q0.loc[y, "status_changed_at"]
    r = weeks["imported"]
    held = f"{y}: not applied: the registry changed the damage after the list was exported"
    assert r is not None and held in r.stderr, r.stderr
    with Store(weeks["reg"]) as st:
        now = st.query(lists=False).set_index("candidate_id")
    assert now.loc[y, "status"] == "not_an_issue"


def test_an_entry_downloaded_and_imported_is_dropped(weeks):
    """d, downloaded from A and imported (scheduled): B neither shows it nor lists it, and it left the storage; the
    entries recorded after the download (x, y) are there."""
    x, y, d, _ = weeks["ids"]
    b, q1 = weeks["b"], weeks["q1"]
    assert q1.loc[d, "status"] == "scheduled"
    assert b["x"]["status"] == "scheduled" and b["y"]["status"] == "confirmed", b
    assert [r.split(",")[0].strip('"') for r in b["csv"].lstrip("\ufeff").split("\r\n")[1:-1]] == sorted(
        [x, y], key=[c for c in weeks["order"]].index), b["csv"]
    assert b["d"]["status"] == "" and b["d"]["said"] == "" and b["dStored"] is None, b


def test_another_registry_report_shows_none_and_old_entries_move(weeks):
    """A report of another registry whose damages have the same ids, opened on the same tablet, shows none of the
    first registry's entries and lists none; an entry stored under the name before (one a report: its damages and
    their statuses unchanged) is found on the next open, under the registry's name, with the report's
    status_changed_at."""
    x, y, d, w = weeks["ids"]
    c, c2 = weeks["c"], weeks["c2"]
    assert crew_of(weeks["pages"][2])["registry"] != crew_of(weeks["pages"][1])["registry"]
    assert c["counter"] == "0 件 記録済み / 0 recorded" and c["marked"] == 0, c
    assert c["x"]["status"] == "" and c["y"]["status"] == "" and c["csv"].lstrip("\ufeff") == ",".join(COLUMNS) + "\r\n"
    assert c2["v"]["status"] == "confirmed" and c2["v"]["inputs"][:3] == ["前の記録", "鈴木", "2026-11-20"], c2
    assert c2["counter"] == "1 件 記録済み / 1 recorded" and c2["old"] is None, c2
    rows = list(csv.reader(io.StringIO(c2["csv"].lstrip("\ufeff"), newline="")))
    assert [r[0] for r in rows[1:]] == [w] and rows[1][-1] == weeks["q1"].loc[w, "status_changed_at"], rows
