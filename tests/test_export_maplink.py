"""The lists' and the photo ledger's link to a web map (config ``export.map_url``, 地理院地図 by default): office staff
on a desktop PC click through from a damage's row to the map at its position (the ledger's ``geo:`` link, which
desktop Excel on Windows cannot open, only where no web map is set). Real data: the sample drive's registry and its
run's repair_list.csv (``patrol locate`` of the two passes' detections, the ``located`` fixture of test_cli)."""

from __future__ import annotations

import csv
import json

import pytest

from detector.config import GSI_MAP_URL, load_config
from detector.errors import ConfigError
from test_cli import _read_list, _write_list, assert_user_error, located, ok, patrol, roads  # noqa: F401 (fixtures)

GSI = "https://maps.gsi.go.jp/#18/{lat}/{lon}/"


def _gsi(lat, lon) -> str:
    """The shipped template filled with a damage's position, 7 decimals (the lists' lat/lon)."""
    return GSI.format(lat=f"{float(lat):.7f}", lon=f"{float(lon):.7f}")


def _registry(located, tmp_path):
    store = tmp_path / "registry.gpkg"
    store.write_bytes(located["store"].read_bytes())
    return store


def _positions(located) -> dict[str, tuple[float, float]]:
    """Each damage's position as the run's candidates.geojson gives it: id -> (lat, lon)."""
    feats = json.loads((located["out"] / "candidates.geojson").read_text(encoding="utf-8"))["features"]
    return {f["properties"]["candidate_id"]: (f["geometry"]["coordinates"][1], f["geometry"]["coordinates"][0])
            for f in feats}


def test_the_shipped_config_links_gsi_maps():
    assert GSI_MAP_URL == GSI
    assert load_config().export.map_url == GSI  # configs/default.yaml


@pytest.mark.parametrize("template, why", [
    ("https://maps.gsi.go.jp/#{zoom}/{lat}/{lon}/", "unknown placeholder {zoom}"),
    ("https://example.jp/map?ll={lat},{lng}", "unknown placeholder {lng}"),
    ("geo:{lat},{lon}", "not an http(s) address"),
    ("ftp://example.jp/{lat}/{lon}", "not an http(s) address"),
    ("maps.gsi.go.jp/#18/{lat}/{lon}/", "not an http(s) address"),
    ("https://example.jp/map?id={id}", "has no {lat} or {lon}"),
    ("https://example.jp/{lat:.3f}/{lon}", "write the placeholder bare"),
    ("https://example.jp/{lat/{lon}", "a literal brace is written twice"),
    ("https://example.jp/{lat}/{lon} map", "holds a space"),
])
def test_a_bad_map_url_is_refused_at_load_naming_the_setting(tmp_path, template, why):
    p = tmp_path / "city.yaml"
    p.write_text(f"export:\n  map_url: {json.dumps(template)}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert msg.startswith(str(p)) and "export.map_url" in msg and why in msg, msg


def test_a_bad_map_url_stops_the_export_with_exit_4(located, tmp_path):
    p = tmp_path / "city.yaml"
    p.write_text('export:\n  map_url: "https://maps.gsi.go.jp/#{z}/{lat}/{lon}/"\n', encoding="utf-8")
    out = tmp_path / "list.xlsx"
    assert_user_error(patrol("export", located["store"], "--format", "xlsx", "--config", p, "--out", out), 4,
                      "export.map_url", "{z}")
    assert not out.exists()


@pytest.mark.parametrize("text", ["null", '""', "  "])
def test_null_or_blank_map_url_is_no_link(tmp_path, text):
    p = tmp_path / "city.yaml"
    p.write_text(f"export:\n  map_url: {text}\n", encoding="utf-8")
    assert load_config(p).export.map_url is None


def test_the_runs_repair_list_links_each_damage_to_gsi_maps(located):
    """repair_list.csv of a run with the shipped config: a map column right after photo, each row's URL the GSI
    template filled with the damage's lat/lon (7 decimals); a known damage's equals its candidates.geojson position's."""
    head, rows = _read_list(located["out"] / "repair_list.csv")
    assert head[head.index("photo") + 1] == "map"
    assert len(rows) == 31
    for r in rows:
        assert r["map"] == _gsi(r["lat"], r["lon"]), r
    pos = _positions(located)
    known = rows[0]["candidate_id"]
    assert rows[0]["map"] == _gsi(*pos[known])
    assert rows[0]["map"].startswith("https://maps.gsi.go.jp/#18/36.") and "/137." in rows[0]["map"]


def test_the_registry_lists_link_each_damage(located, tmp_path):
    """`patrol export --format csv|xlsx`: the csv's map column holds the URL; the xlsx's is a real hyperlink cell
    (text 地図 / map, Excel's Hyperlink style, the URL as its target, fragment and all) headed 地図 / map."""
    import openpyxl

    from detector.store import Store

    store = _registry(located, tmp_path)
    with Store(store) as st:
        q = st.query(lists=False).set_index("candidate_id")
    ok(patrol("export", store, "--format", "csv", "--out", tmp_path / "list.csv"))
    head, rows = _read_list(tmp_path / "list.csv")
    assert head[-2:] == ["photo", "map"]  # appended: every column before keeps its place
    assert len(rows) == 31
    for r in rows:
        assert r["map"] == _gsi(q.loc[r["candidate_id"], "lat"], q.loc[r["candidate_id"], "lon"])

    ok(patrol("export", store, "--format", "xlsx", "--out", tmp_path / "list.xlsx"))
    ws = openpyxl.load_workbook(tmp_path / "list.xlsx")["candidates"]
    heads = [c.value for c in ws[1]]
    j = heads.index("地図\nmap") + 1
    ids = heads.index("候補ID\ncandidate id") + 1
    for i in range(2, ws.max_row + 1):
        cid, cell = ws.cell(row=i, column=ids).value, ws.cell(row=i, column=j)
        assert cell.value == "地図 / map" and cell.style == "Hyperlink"
        assert cell.hyperlink is not None and cell.hyperlink.target == _gsi(q.loc[cid, "lat"], q.loc[cid, "lon"])
    assert ws.max_row == 32
    legend = [tuple(c.value for c in r) for r in openpyxl.load_workbook(tmp_path / "list.xlsx")["legend"].iter_rows()]
    assert any(r[0] == "地図 map" and GSI in str(r[1]) for r in legend)


def test_an_id_placeholder_and_no_web_map(located, tmp_path):
    """{id} is filled URL-encoded; ``map_url: null`` keeps the column (the same columns either way) empty in the csv
    and the xlsx (no hyperlink), and the photo ledger's 地図 falls back to the geo: link."""
    import openpyxl

    store = _registry(located, tmp_path)
    custom = tmp_path / "custom.yaml"
    custom.write_text('export:\n  map_url: "https://gis.example.jp/map?x={lon}&y={lat}&label={id}"\n', encoding="utf-8")
    ok(patrol("export", store, "--format", "csv", "--config", custom, "--out", tmp_path / "custom.csv"))
    _, rows = _read_list(tmp_path / "custom.csv")
    for r in rows:
        assert r["map"] == (f"https://gis.example.jp/map?x={float(r['lon']):.7f}&y={float(r['lat']):.7f}"
                            f"&label={r['candidate_id']}")

    none = tmp_path / "none.yaml"
    none.write_text("export:\n  map_url: null\n", encoding="utf-8")
    ok(patrol("export", store, "--format", "csv", "--config", none, "--out", tmp_path / "none.csv"))
    head, rows = _read_list(tmp_path / "none.csv")
    assert head[-1] == "map" and rows and all(r["map"] == "" for r in rows)
    ok(patrol("export", store, "--format", "xlsx", "--config", none, "--out", tmp_path / "none.xlsx"))
    ws = openpyxl.load_workbook(tmp_path / "none.xlsx")["candidates"]
    j = [c.value for c in ws[1]].index("地図\nmap") + 1
    assert all(ws.cell(row=i, column=j).value is None and ws.cell(row=i, column=j).hyperlink is None
               for i in range(2, ws.max_row + 1))
    ok(patrol("export", store, "--format", "ledger", "--config", none, "--out", tmp_path / "none-ledger.xlsx"))
    ws = openpyxl.load_workbook(tmp_path / "none-ledger.xlsx")["ledger"]
    targets = [ws.cell(row=r, column=4).hyperlink.target for r in range(1, ws.max_row + 1)
               if ws.cell(row=r, column=3).value == "地図 map"]
    assert len(targets) == 31 and all(t.startswith("geo:") for t in targets)


def test_the_ledger_links_the_web_map(located, tmp_path):
    """The photo ledger's 地図 row: the shipped config's GSI Maps link for each damage (desktop Excel opens it in the
    browser; the geo: link it had, it could not)."""
    import openpyxl

    from detector.ledger import WEB_MAP_TEXT
    from detector.store import Store

    store = _registry(located, tmp_path)
    with Store(store) as st:
        q = st.query(lists=False).set_index("candidate_id")
    ok(patrol("export", store, "--format", "ledger", "--out", tmp_path / "ledger.xlsx"))
    ws = openpyxl.load_workbook(tmp_path / "ledger.xlsx")["ledger"]
    cid, seen = None, 0
    for r in range(1, ws.max_row + 1):
        label, cell = ws.cell(row=r, column=3).value, ws.cell(row=r, column=4)
        if label == "ID id":
            cid = cell.value
        elif label == "地図 map":
            assert cell.value == WEB_MAP_TEXT and cell.style == "Hyperlink"
            assert cell.hyperlink.target == _gsi(q.loc[cid, "lat"], q.loc[cid, "lon"])
            seen += 1
    assert seen == 31


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_list_with_the_map_column_imports_back_and_an_old_one_too(located, tmp_path, fmt):
    """import-verification matches headings: the new map column is ignored, not refused; a list of before (no map
    column: the run's repair_list.csv of an earlier version) still imports."""
    import openpyxl

    store = _registry(located, tmp_path)
    out = tmp_path / f"list.{fmt}"
    ok(patrol("export", store, "--format", fmt, "--out", out))
    if fmt == "csv":
        head, rows = _read_list(out)
        assert "map" in head
        rows[0].update(status="confirmed", status_note="地図で確認")
        _write_list(out, head, rows)
        target = rows[0]["candidate_id"]
    else:
        wb = openpyxl.load_workbook(out)
        ws = wb["candidates"]
        heads = [c.value for c in ws[1]]
        assert "地図\nmap" in heads
        ws.cell(row=2, column=heads.index("状態\nstatus") + 1).value = "confirmed"
        target = ws.cell(row=2, column=heads.index("候補ID\ncandidate id") + 1).value
        wb.save(out)
    r = ok(patrol("import-verification", store, out))
    assert "applied 1" in r.stdout, r.stdout
    from detector.store import Store

    with Store(store) as st:
        assert st.query(lists=False).set_index("candidate_id").loc[target, "status"] == "confirmed"

    # an old list: the run's repair_list.csv without the map column
    head, rows = _read_list(located["out"] / "repair_list.csv")
    old_head = [h for h in head if h != "map"]
    rows = [{k: v for k, v in r.items() if k != "map"} for r in rows]
    other = next(r for r in rows if r["candidate_id"] != target)
    other["status"] = "scheduled"
    _write_list(tmp_path / "old.csv", old_head, rows)
    r = ok(patrol("import-verification", store, tmp_path / "old.csv"))
    assert "applied 1" in r.stdout, r.stdout
    with Store(store) as st:
        assert st.query(lists=False).set_index("candidate_id").loc[other["candidate_id"], "status"] == "scheduled"


def test_repair_list_without_config_has_an_empty_map_column(tmp_path):
    """write_repair_list without a template (no config): the column is there, empty (the same columns either way)."""
    import pandas as pd

    from detector.export import REPAIR_COLUMNS, write_repair_list

    cands = pd.DataFrame([{"candidate_id": "C0001", "class": "D40", "lat": 36.6868889, "lon": 137.2363063,
                           "segment_id": "s1", "chainage_m": 3.0, "first_seen": "2026-11-20T09:00:00+09:00"}])
    with open(write_repair_list(cands, tmp_path / "a.csv"), encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["map"] == "" and "map" in REPAIR_COLUMNS
    with open(write_repair_list(cands, tmp_path / "b.csv", map_url=GSI), encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["map"] == "https://maps.gsi.go.jp/#18/36.6868889/137.2363063/"


# ---------------------------------------------------------------------------------- report.html's popups (Chromium)

#: a damage's popup (opened through #c=<id>): its links' hrefs, targets and boxes [left, top, right, bottom]
POPUP = """(function () { %s
  var pop = document.querySelector('.leaflet-popup'), nav = pop && pop.querySelector('a.nav'),
      web = pop && pop.querySelector('a.web');
  function hgt(e) { var b = box(e); return b[3] - b[1]; }
  return {vw: window.innerWidth, pop: !!pop, check: document.documentElement.getAttribute('data-selfcheck'),
    nav: nav && nav.href, web: web && web.href, target: web && web.target, rel: web && web.rel,
    text: web && web.textContent,
    webBox: web && box(web), navBox: nav && box(nav), map: box('#map'),
    links: pop ? [].map.call(pop.querySelectorAll('a.photo, a.link'), hgt) : []}; })()"""


def _popup(page, fragment: str, width: int = 375, height: int = 844, extra=()) -> dict:
    from conftest import in_phone
    from test_report import BOXES

    return in_phone(page, fragment, POPUP % BOXES, width, height, extra=extra)


def _apart(a, b) -> bool:
    """Two boxes that do not overlap (two links a finger tells apart)."""
    return a[2] <= b[0] + 0.5 or b[2] <= a[0] + 0.5 or a[3] <= b[1] + 0.5 or b[3] <= a[1] + 0.5


def test_the_html_popups_link_the_web_map_in_chromium(located, tmp_path):
    """report.html's damage popup (`patrol export --format html`'s; a run's is written by the same code): beside the
    phone's map-app link (geo:), a link to the config's web map (地理院地図 by default) that opens in a new tab, its
    address the one the lists' 地図 column gives that damage (``export.map_links``); 40 px tall to tap on a phone and
    apart from the map-app link, the popup's other links still 40 px. With ``export: {map_url: null}`` no web link
    (the geo: one stays). Real data: the sample drive's registry."""
    from test_report import TOUCH, chromium_bin

    from detector.export import map_links

    chromium_bin()  # skips without Chromium
    store = _registry(located, tmp_path)
    ok(patrol("export", store, "--format", "html", "--out", tmp_path / "map.html"))
    from detector.store import Store

    with Store(store) as st:
        q = st.query(lists=False).set_index("candidate_id")
    reg = q.index[0]
    want = map_links(GSI, [q.loc[reg, "lat"]], [q.loc[reg, "lon"]], [reg])[0]
    assert want == _gsi(q.loc[reg, "lat"], q.loc[reg, "lon"])
    for width, height, extra in ((375, 844, ()), (320, 844, ()), (1280, 800, TOUCH), (1280, 800, ())):
        page = tmp_path / f"map{width}{'t' if extra else ''}.html"
        page.write_bytes((tmp_path / "map.html").read_bytes())
        p = _popup(page, "#c=" + reg, width, height, extra)
        assert p["vw"] == width and p["web"] == want and p["nav"].startswith("geo:"), p
        assert (p["target"], p["rel"], p["text"]) == ("_blank", "noopener", "地理院地図 / web map"), p
        web, nav, m = p["webBox"], p["navBox"], p["map"]
        assert _apart(web, nav) and m[0] <= web[0] and web[2] <= min(m[2], width), (width, p)  # in the map's width
        assert web[3] - web[1] >= 40 and nav[3] - nav[1] >= 40, (width, p)  # finger-sized, as the map-app link
        if width < 900 or extra:
            assert p["links"] and min(p["links"]) >= 40, (width, p)  # this damage's link (元画像's: test_report)

    none = tmp_path / "none.yaml"
    none.write_text("export:\n  map_url: null\n", encoding="utf-8")
    ok(patrol("export", store, "--format", "html", "--config", none, "--out", tmp_path / "none.html"))
    p = _popup(tmp_path / "none.html", "#c=" + reg)
    assert p["pop"] and p["web"] is None and p["nav"].startswith("geo:"), p


def test_the_html_popup_fills_the_web_map_as_the_lists_do_in_chromium(tmp_path):
    """The page fills the template itself (given once in its data): {lat} {lon} with 7 decimals, {id} URL-encoded as
    Python's quote (also ! ' ( ) *, which JavaScript's encodeURIComponent keeps), {{ }} a literal brace; the link named
    neutrally for a host other than 地理院地図's. Equal to ``export.map_links`` for each damage shown."""
    from detector import report
    from detector.config import Config
    from detector.export import map_links
    from test_report import chromium_bin, make_candidates

    chromium_bin()
    template = "https://gis.example.jp/map?c={{{lat},{lon}}}&label={id}"
    cfg = Config(export={"map_url": template})
    df = make_candidates(cfg, 4)
    df["candidate_id"] = ["R-000001", "R 2 (再)!*'~", "R-3/#?&=%", "R-4"]
    df.loc[3, ["lat", "lon"]] = [36.70000005, 137.123456749999]  # on 7 decimals' edge
    df.loc[2, ["lat", "lon"]] = [36.70703125, 137.12890625]  # exact binary ties at 7 decimals: JavaScript's
    # toFixed(7) of the raw value rounds them up (…0063), Python half to even (…0062); the page holds them rounded by
    # Python, so its toFixed(7) gives the lists' digits
    page = tmp_path / "r.html"
    report.export(df, "html", page, cfg)
    want = map_links(template, df["lat"], df["lon"], df["candidate_id"])
    assert want[1] == ("https://gis.example.jp/map?c={%.7f,%.7f}&label=R%%202%%20%%28%%E5%%86%%8D%%29%%21%%2A%%27~"
                       % (df.lat[1], df.lon[1]))
    from urllib.parse import quote

    for i in range(4):
        copy = tmp_path / f"r{i}.html"
        copy.write_bytes(page.read_bytes())
        p = _popup(copy, "#c=" + quote(df.candidate_id[i], safe=""), 1280, 800)
        assert (p["web"], p["text"]) == (want[i], "Web地図 / web map"), (i, p)
