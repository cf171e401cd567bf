"""Exports for people (detector.report): every format written and read back; the HTML report in headless
Chromium (self-check attribute, console errors, a screenshot that shows the map). Chromium tests skip with a
reason when no Chromium is installed (CI installs Debian's ``chromium`` and ``fonts-noto-cjk``)."""

from __future__ import annotations

import base64
import csv
import functools
import json
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pandas as pd
import pytest

from conftest import TOYAMA, in_phone, need
from detector import report
from detector.config import Config
from detector.errors import InputError

KML_NS = "{http://www.opengis.net/kml/2.2}"
STATUSES = ["new", "confirmed", "scheduled", "repaired", "not_an_issue", "reopened"]
CLASSES = ["D00", "D10", "D20", "D40"]
# --dump-dom draws no frames: animation frames on a timer, so Leaflet's animated pans run (put before Leaflet loads)
FRAMES = "<script>window.requestAnimationFrame = function (f) { return setTimeout(function () { f(performance.now()); }, 16); };</script>"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def cfg() -> Config:
    return Config()


def tiny_jpeg(color=(40, 120, 200)) -> bytes:
    import cv2

    img = np.full((60, 80, 3), color, np.uint8)
    cv2.rectangle(img, (10, 10), (70, 50), (0, 215, 255), 2)
    return cv2.imencode(".jpg", img)[1].tobytes()


def make_candidates(cfg: Config, n: int = 10, lines=None, with_status: bool = True, **override) -> pd.DataFrame:
    """A hand-made registry frame; candidates placed on ``lines`` (shapely lines in WGS84) when given."""
    rows = []
    for i in range(n):
        if lines is not None:
            p = lines[(i * 7) % len(lines)].interpolate(0.5, normalized=True)
            lat, lon = p.y, p.x
        else:
            lat, lon = 36.66 + 0.001 * i, 137.20 + 0.0012 * i
        c = CLASSES[i % 4]
        row = {
            "candidate_id": f"C{i:04d}", "class": c, "class_name": cfg.class_name(c), "class_name_ja": cfg.class_name(c, "ja"),
            "confidence": 0.4 + i / 40, "n_obs": 1 + i % 3,
            # first seen in row order: the exports' route order is the rows' order
            "first_seen": f"2026-11-{1 + i % 28:02d}T10:{i % 60:02d}:00+09:00", "last_seen": f"2026-11-{10 + i % 9:02d}T11:{i:02d}:30+09:00",
            "segment_id": f"seg-{i % 4}", "road_name": ["県道富山高岡線", "市道 1-23号", None][i % 3], "chainage_m": 12.5 * i,
            "lat": lat, "lon": lon, "best_image": f"IMG_{i:04d}.jpg", "best_drive": "toyama-2026-11-p1",
            "best_x1": 100.0, "best_y1": 300.0, "best_x2": 260.0, "best_y2": 400.0, "best_width": 640, "best_height": 640,
            "drives": ["toyama-2026-11-p1", "toyama-2026-11-p2"][: 1 + i % 2], "images": [f"IMG_{i:04d}.jpg"],
            "severity": round(0.35 * i, 2), "est_width_m": 0.4, "est_length_m": 1.2,
        }
        if with_status:
            row.update({"status": STATUSES[i % 6], "status_note": "段差あり" if i % 2 else None,
                        "status_changed_at": "2026-11-20T09:00:00+09:00", "repaired_at": None, "checked_by": "山田",
                        "issue_type": None, "crop_jpeg": tiny_jpeg() if i % 5 else None})
        rows.append(row)
    df = pd.DataFrame(rows)
    for k, v in override.items():
        df[k] = v
    return df


@pytest.fixture(scope="module")
def toyama_roads():
    import geopandas as gpd

    path = need(TOYAMA / "roads.geojson")
    g = gpd.read_file(path, bbox=(137.185, 36.65, 137.215, 36.67))
    g["road_name"] = [f"富山市道 {i}号" for i in range(len(g))]
    return g


# ------------------------------------------------------------------------------------------------ formats


def test_geojson(tmp_path, cfg):
    df = make_candidates(cfg)
    out = report.export(df, "geojson", tmp_path / "c.geojson", cfg)
    fc = json.loads(out.read_text(encoding="utf-8"))
    assert fc["type"] == "FeatureCollection" and "crs" not in fc and len(fc["features"]) == 10
    f = fc["features"][3]
    assert f["geometry"]["type"] == "Point"
    assert f["geometry"]["coordinates"] == pytest.approx([df.lon[3], df.lat[3]])
    p = f["properties"]
    assert "crop_jpeg" not in p and p["class_name_ja"] == "ポットホール" and p["status"] == "repaired"
    assert (p["n_drives"], p["last_drive"]) == (2, "toyama-2026-11-p1") and p["severity"] == pytest.approx(1.05)
    assert "drives" not in p and "images" not in p


def test_without_status_columns_everything_is_new(tmp_path, cfg):
    df = make_candidates(cfg, 4, with_status=False).drop(columns=["class_name_ja"])
    out = report.export(df, "geojson", tmp_path / "c.geojson", cfg)
    props = [f["properties"] for f in json.loads(out.read_text(encoding="utf-8"))["features"]]
    assert [p["status"] for p in props] == ["new"] * 4
    assert props[1]["class_name_ja"] == "横ひび割れ"  # filled from the config


def test_gpkg(tmp_path, cfg, toyama_roads):
    import geopandas as gpd
    import pyogrio

    df = make_candidates(cfg)
    out = report.export(df, "gpkg", tmp_path / "c.gpkg", cfg, segments=toyama_roads)
    layers = dict(pyogrio.list_layers(out))
    assert set(layers) == {"candidates", "segments", "layer_styles"}  # + QGIS's styles (tests/test_export_qgis_style)
    assert layers["layer_styles"] is None
    g = gpd.read_file(out, layer="candidates")
    assert len(g) == 10 and g.crs.to_epsg() == 4326
    for col in ("candidate_id", "class", "class_name_ja", "confidence", "n_obs", "first_seen", "segment_id", "road_name",
                "chainage_m", "status", "severity"):
        assert col in g.columns, col
    assert g.geometry.x.iloc[2] == pytest.approx(df.lon[2]) and g.class_name_ja.iloc[3] == "ポットホール"
    assert g.n_drives.iloc[1] == 2 and g.last_drive.iloc[1] == "toyama-2026-11-p1" and "images" not in g
    assert len(gpd.read_file(out, layer="segments")) == len(toyama_roads)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_csv_bom_and_formula_guard(tmp_path, cfg):
    df = make_candidates(cfg, 3)
    df.loc[0, "status_note"] = "=HYPERLINK(\"x\")"
    df.loc[1, "road_name"] = "+1 road"
    df.loc[2, "checked_by"] = "@sum"
    out = report.export(df, "csv", tmp_path / "c.csv", cfg)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert len(rows) == 3 and rows[0]["class_name_ja"] == "縦ひび割れ"
    assert rows[0]["status_note"] == "'=HYPERLINK(\"x\")" and rows[1]["road_name"] == "'+1 road" and rows[2]["checked_by"] == "'@sum"


def test_xlsx(tmp_path, cfg):
    import openpyxl

    df = make_candidates(cfg)
    df.loc[0, "status_note"] = "=1+1"
    df.loc[1, "status_changed_at"] = "2026-11-20T01:00:00+00:00"  # a registry stamped on a UTC server
    out = report.export(df, "xlsx", tmp_path / "c.xlsx", cfg)
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["candidates", "legend"]
    ws = wb["candidates"]
    head = [c.value for c in ws[1]]
    cols = [c for c, *_ in report.LIST_COLUMNS]
    assert [h.split("\n")[-1] for h in head] == [en for _, _, en in report.LIST_COLUMNS]
    assert ws.max_row == 11 and ws.freeze_panes == "B2" and ws.auto_filter.ref.startswith("A1:")
    r = {c: ws.cell(row=5, column=j + 1) for j, c in enumerate(cols)}
    assert r["class_name_ja"].value == "ポットホール" and r["status_ja"].value == "補修済み"
    assert r["first_seen"].is_date and r["first_seen"].value.hour == 10  # local time of the sighting
    changed = ws.cell(row=3, column=cols.index("status_changed_at") + 1).value
    assert changed == datetime(2026, 11, 20, 10, 0)  # shown on the municipality's clock (Asia/Tokyo)
    note = ws.cell(row=2, column=cols.index("status_note") + 1)
    assert note.value == "=1+1" and note.data_type == "s"  # text, never a formula
    assert ws.column_dimensions["K"].width >= 10
    legend = [c.value for row in wb["legend"].iter_rows() for c in row if c.value]
    assert "ポットホール" in legend and "補修済み" in legend
    # made "now" on the municipality's clock (config timezone, Asia/Tokyo), whatever the server's zone
    generated = legend[legend.index("作成日時 generated") + 1]
    assert generated.endswith("+0900"), generated


def test_kml(tmp_path, cfg):
    df = make_candidates(cfg)
    out = report.export(df, "kml", tmp_path / "c.kml", cfg)
    root = ET.parse(out).getroot()
    pms = root.findall(f".//{KML_NS}Placemark")
    assert len(pms) == 10
    styles = {s.get("id") for s in root.iter(f"{KML_NS}Style")}
    for pm in pms:
        assert pm.findtext(f"{KML_NS}styleUrl")[1:] in styles
    pm = next(p for p in pms if "C0003" in p.findtext(f"{KML_NS}name"))
    data = {d.get("name"): d.findtext(f"{KML_NS}value") for d in pm.iter(f"{KML_NS}Data")}
    assert data["class_name_ja"] == "ポットホール" and data["status"] == "repaired" and data["segment_id"] == "seg-3"
    lon, lat, _ = pm.findtext(f".//{KML_NS}coordinates").split(",")
    assert float(lon) == pytest.approx(df.lon[3]) and float(lat) == pytest.approx(df.lat[3])
    assert "http" not in out.read_text(encoding="utf-8").replace("http://www.opengis.net/kml/2.2", "")


def test_kml_greys_the_closed_damages(tmp_path, cfg):
    """The KML's icon is grey (and small) for a damage done with, store.CLOSED_STATUSES: repaired, not an issue; a
    reopened one (open again) and the other open ones keep their class colour."""
    from detector.store import CLOSED_STATUSES

    df = make_candidates(cfg)
    out = report.export(df, "kml", tmp_path / "c.kml", cfg)
    root = ET.parse(out).getroot()
    color = {s.get("id"): s.findtext(f"{KML_NS}IconStyle/{KML_NS}color") for s in root.iter(f"{KML_NS}Style")}
    by_status = {}
    for pm in root.iter(f"{KML_NS}Placemark"):
        st = {d.get("name"): d.findtext(f"{KML_NS}value") for d in pm.iter(f"{KML_NS}Data")}["status"]
        by_status.setdefault(st, set()).add(color[pm.findtext(f"{KML_NS}styleUrl")[1:]])
    grey = report._kml_color("#9e9e9e")
    assert set(CLOSED_STATUSES) == {"repaired", "not_an_issue"}
    assert by_status["repaired"] == by_status["not_an_issue"] == {grey}, by_status
    for st in ("reopened", "new", "confirmed", "scheduled"):
        assert grey not in by_status[st], (st, by_status)


def test_unknown_format(tmp_path, cfg):
    df = make_candidates(cfg)
    with pytest.raises(InputError):
        report.export(df, "pdf", tmp_path / "x.pdf", cfg)


def test_json_for_script_escapes():
    s = report.json_for_script({"a": "</script><!-- & \u2028"})
    assert "<" not in s and ">" not in s and "&" not in s and "\u2028" not in s
    assert json.loads(s) == {"a": "</script><!-- & \u2028"}


def test_html_is_self_contained(tmp_path, cfg, toyama_roads):
    df = make_candidates(cfg, lines=list(toyama_roads.geometry))
    out = report.export(df, "html", tmp_path / "r.html", cfg, roads_wgs84=toyama_roads)
    html = out.read_text(encoding="utf-8")
    assert html.count("<script") == 4  # data, thumbnails, Leaflet, the app
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1))
    assert len(data["candidates"]) == 10 and len(data["roads"]) >= 1
    assert thumbs_of(html, data)[1].startswith("data:image/webp;base64,")
    assert [c["thumb"] is None for c in data["candidates"]] == [i % 5 == 0 for i in range(10)]  # no crop, no thumb
    # no resource from anywhere: outside the inlined Leaflet only the SVG namespace and Leaflet's own home
    # page (attribution prefix, disabled) may be spelled, and no src/href attribute points anywhere; the one address
    # the page holds is the web map a popup's link opens when tapped (config export.map_url: a link, not a resource)
    web = data["meta"]["webMap"]["url"]
    assert web == cfg.export.map_url and web.startswith("https://maps.gsi.go.jp/")
    rest = html.replace(report._asset("leaflet.js"), "").replace(web, "")
    assert not re.search(r"https?://", rest)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", rest, re.I)
    assert "url(images/" not in html
    assert out.stat().st_size < 3_000_000


def thumbs_of(html: str, data: dict) -> list[str | None]:
    """Each candidate's thumbnail data: URI (None without): its line of the page's thumbnails block."""
    lines = re.search(r'<script type="text/plain" id="thumbs">(.*?)</script>', html, re.S).group(1).split("\n")
    return [None if c["thumb"] is None else lines[c["thumb"]] for c in data["candidates"]]


def test_html_road_network_trimmed_and_simplified(cfg, toyama_roads):
    import geopandas as gpd

    big = gpd.read_file(need(TOYAMA / "roads.geojson"))
    df = make_candidates(cfg, 3, lines=list(toyama_roads.geometry[:3]))
    lines = report._road_lines(big, df, max_full=100)
    assert 0 < len(lines) < len(big) / 5
    n_in = sum(len(g.coords) for g in big.geometry)
    assert sum(len(report.road_coords(r)) for r in report._road_lines(big, df, max_full=10**9)) <= n_in


def test_html_road_network_is_compact_and_keeps_its_shape(cfg):
    """A whole city's network goes into the mailed map: the Toyama network (11,239 links, 453 km) drawn whole is
    links merged end to end, simplified and delta-encoded in 1e-5 degrees: under 600 bytes a km of road (it was
    ~2,170: one {"c": [[lat, lon], ...], "n", "s"} a two-point link; 4.5 MB of a 2,000-damage city map,
    bench/bench_report.py), and the lines drawn are the network's own to within 3 m with its length kept."""
    import geopandas as gpd
    import shapely

    big = gpd.read_file(need(TOYAMA / "roads.geojson"))
    lines = report._road_lines(big, make_candidates(cfg, 1), max_full=10**9)
    km = big.to_crs("EPSG:6675").length.sum() / 1e3
    size = len(report.json_for_script(lines).encode())
    assert size / km < 600, (size, km)
    drawn = shapely.multilinestrings([shapely.linestrings(np.array(report.road_coords(r))[:, ::-1]) for r in lines])
    g = gpd.GeoSeries([drawn, shapely.union_all(big.geometry.to_numpy())], crs="EPSG:4326").to_crs("EPSG:6675")
    assert g[0].hausdorff_distance(g[1]) < 3.0 and g[0].length == pytest.approx(g[1].length, rel=0.005)


# ------------------------------------------------------------------------------------------------ Chromium


def chromium_bin() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        p = shutil.which(name)
        if p:
            return p
    pytest.skip("headless Chromium not installed (apt-get install chromium)")


def chromium(url: str, *extra: str, timeout: int = 120, budget: int = 8000) -> subprocess.CompletedProcess:
    """Chromium run on ``url`` for ``budget`` ms of virtual time: timers run on it (idle time skipped, a page's
    setTimeout(f, 1500) costs far less than 1.5 s), but a frame's rendering (a resize event, a layout) runs in real
    time: a probe must not wait a fixed time for it (under load the timers run past it: conftest.in_phone's turn)."""
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium_bin(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
               f"--virtual-time-budget={budget}", *extra, url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def console_errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines()
            if ("CONSOLE" in ln and ("ERROR" in ln.split("CONSOLE")[0] or "Uncaught" in ln)) or "Uncaught" in ln
            or "Content Security Policy" in ln or "Refused to" in ln]


def selfcheck(dom: str) -> str:
    m = re.search(r'<html[^>]*data-selfcheck="([^"]*)"', dom)
    return m.group(1) if m else "missing"


class TagCounter(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def parse_tags(html: str) -> list[tuple[str, dict]]:
    p = TagCounter()
    p.feed(html)
    return p.tags


def render(out: Path, fragment: str = "", *extra: str, budget: int = 8000) -> tuple[str, str]:
    r = chromium(out.resolve().as_uri() + fragment, "--dump-dom", *extra, budget=budget)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout, r.stderr


def test_html_in_chromium(tmp_path, cfg, toyama_roads):
    import cv2

    df = make_candidates(cfg, lines=list(toyama_roads.geometry))
    df.loc[9, ["lat", "lon"]] = np.nan  # no position: listed, not drawn
    out = report.export(df, "html", tmp_path / "r.html", cfg, roads_wgs84=toyama_roads)
    dom, err = render(out)
    assert selfcheck(dom) == "report-ok:9:10", selfcheck(dom)
    assert not console_errors(err), console_errors(err)
    # a row chosen through the URL opens its popup with the crop and the Japanese name
    dom, err = render(out, "#c=C0003")
    assert selfcheck(dom) == "report-ok:9:10"
    popup = dom[dom.index('class="leaflet-popup-content'):]  # "… leaflet-popup-scrolled" when taller than the map
    assert "ポットホール" in popup[:5000] and 'src="data:image/webp;base64,' in popup[:20000]
    # ... shown whole at a 1400×1000 window with a real crop's size (a tall box, the pothole of the sample's
    # R-000026): inside the map, clear of the legend (before: panned for the popup without its photo, which then
    # loaded and pushed the top out of the map, under the legend)
    crop = np.full((288, 120, 3), 128, np.uint8)
    df.at[3, "crop_jpeg"] = cv2.imencode(".jpg", crop)[1].tobytes()
    out = report.export(df, "html", tmp_path / "tall.html", cfg, roads_wgs84=toyama_roads)
    probe = ("<script>setTimeout(function () { function r(s) { var b = document.querySelector(s).getBoundingClientRect();"
             " return [b.left, b.top, b.right, b.bottom]; } document.documentElement.setAttribute('data-probe',"
             " JSON.stringify({popup: r('.leaflet-popup'), map: r('#map'), legend: r('.legend')})); }, 3000);</script>")
    html = out.read_text(encoding="utf-8").replace("<script", FRAMES + "<script", 1).replace("</body>", probe + "</body>")
    out.write_text(html, encoding="utf-8")
    dom, _ = render(out, "#c=C0003", "--window-size=1400,1000")
    box = json.loads(re.search(r'data-probe="([^"]*)"', dom).group(1).replace("&quot;", '"'))
    (px1, py1, px2, py2), (mx1, my1, mx2, my2), (lx1, ly1, lx2, ly2) = box["popup"], box["map"], box["legend"]
    assert mx1 <= px1 and my1 <= py1 and px2 <= mx2 and py2 <= my2, box  # the whole popup inside the map
    assert px2 <= lx1 or lx2 <= px1 or py2 <= ly1 or ly2 <= py1, box  # not under the legend
    # the screenshot shows a map: many colours, the road grey, the pothole red of the markers
    png = tmp_path / "shot.png"
    r = chromium(out.resolve().as_uri(), "--window-size=1280,900", f"--screenshot={png}")
    assert r.returncode == 0 and png.exists(), r.stderr[-2000:]
    img = cv2.imread(str(png))
    assert img.shape[:2] == (900, 1280)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 200

    def has(bgr, tol=25, min_px=20):
        return int((np.abs(img.astype(int) - np.array(bgr)).max(axis=2) <= tol).sum()) >= min_px

    assert has((0x28, 0x27, 0xD6)), "no pothole-red marker in the screenshot"
    assert has((0xD0, 0x6F, 0x2F)), "no longitudinal-crack-blue marker in the screenshot"
    assert has((0xA6, 0x9A, 0x8F), tol=12, min_px=200), "no road polylines in the screenshot"
    shutil.copy(png, Path(tempfile.gettempdir()) / "patrol-report-screenshot.png")  # for a person to look at


def test_html_without_roads_or_rows_in_chromium(tmp_path, cfg):
    out = report.export(make_candidates(cfg, 0), "html", tmp_path / "empty.html", cfg)
    dom, err = render(out)
    assert selfcheck(dom) == "report-ok:0:0" and not console_errors(err)
    out = report.export(make_candidates(cfg, 3, with_status=False), "html", tmp_path / "noroads.html", cfg)
    dom, err = render(out)
    assert selfcheck(dom) == "report-ok:3:3" and not console_errors(err)


def with_probe(out: Path, expr: str, when: str = "setTimeout(probe, 2000)") -> Path:
    """The report with a script after the app's that writes JSON.stringify(``expr``) into <html data-probe>
    (``when`` calls ``probe``), and animation frames on a timer (FRAMES); read back with ``probe_of``."""
    script = (f"<script>(function () {{ function probe() {{ document.documentElement.setAttribute('data-probe',"
              f" JSON.stringify({expr})); }} {when}; }})();</script>")
    html = out.read_text(encoding="utf-8").replace("<script", FRAMES + "<script", 1).replace("</body>", script + "</body>")
    out.write_text(html, encoding="utf-8")
    return out


def probe_of(dom: str):
    m = re.search(r'data-probe="([^"]*)"', dom)
    assert m, "no data-probe: the page's probe did not run within Chromium's virtual-time budget"
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))


#: phones' widths in CSS px: a current iPhone (375-390), an iPhone SE (1st generation) / the narrowest in use
PHONES = (375, 320)
#: page helpers for the phone probes: a box's [left, top, right, bottom]; whether one lies within another
BOXES = """function box(e) { var r = (typeof e === 'string' ? document.querySelector(e) : e).getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom]; }
  function within(a, b) { return a[0] >= b[0] - 0.5 && a[1] >= b[1] - 0.5 && a[2] <= b[2] + 0.5 && a[3] <= b[3] + 0.5; }
  function shown(e) { return e.getClientRects().length > 0; }"""


def test_html_on_a_phone_in_chromium(tmp_path, cfg, toyama_roads):
    """A phone in the patrol vehicle, 375 and 320 px wide (an iPhone SE; in a frame of that width: conftest.in_phone):
    the map keeps most of the screen above the list (the page scrolls, not a squeezed table), the legend starts
    folded and fits the map, nothing scrolls sideways (before: the status filter's long option made its drop-down
    450 px wide and the whole page moved 85 px sideways), every filter is finger-sized (40 px) and within the width,
    and a damage chosen from the list shows its popup inside the map with a link that opens its position in the
    phone's map app."""
    df = make_candidates(cfg, lines=list(toyama_roads.geometry))
    out = report.export(df, "html", tmp_path / "r.html", cfg, roads_wgs84=toyama_roads)
    expr = """(function () { %s
      var vw = window.innerWidth, map = box('#map'), a = document.querySelector('.leaflet-popup a.nav');
      return {vw: vw, sideways: document.scrollingElement.scrollWidth - vw, check: document.documentElement.getAttribute('data-selfcheck'),
        map: (map[3] - map[1]) / window.innerHeight, legendOpen: document.querySelector('.legend').open,
        legendIn: within(box('.legend'), map) && box('.legend')[2] <= vw, legendTap: box('.legend summary')[3] - box('.legend summary')[1],
        filters: [].filter.call(document.querySelectorAll('#filters select, #filters input'), shown).map(function (e) {
          var b = box(e); return [e.id, b[3] - b[1], b[0] >= 0 && b[2] <= vw]; }),
        hiddenCols: [].filter.call(document.querySelectorAll('#tbl th'), function (t) { return !t.offsetWidth; }).length,
        popIn: !!document.querySelector('.leaflet-popup') && within(box('.leaflet-popup-content-wrapper'), map) && map[2] <= vw,
        nav: a ? a.href : null, navIn: !!a && within(box(a), map) && box(a)[2] <= vw}; })()""" % BOXES
    lat, lon = round(df.lat[3], 7), round(df.lon[3], 7)
    for width in PHONES:
        page = tmp_path / f"r{width}.html"
        shutil.copy(out, page)
        p = in_phone(page, "#c=C0003", expr, width, 844)
        assert p["vw"] == width and p["check"] == "report-ok:10:10", p
        assert p["nav"] == f"geo:{lat},{lon}?q={lat},{lon}(C0003)", p
        assert p["navIn"] and p["popIn"], (width, p)  # shown in the map, not cut off below it or at its side
        assert p["sideways"] <= 0 and p["map"] >= 0.5 and p["legendOpen"] is False and p["legendIn"], (width, p)
        assert p["legendTap"] >= 40, (width, p)
        assert len(p["filters"]) == 4 and all(h >= 40 and inside for _, h, inside in p["filters"]), (width, p)
        # confidence, sightings, last seen: in the popup; at 320 px the chainage too; the rest fits the width
        assert p["hiddenCols"] == (3 if width > 360 else 4), p
    iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
    page = tmp_path / "iphone.html"
    shutil.copy(out, page)
    assert in_phone(page, "#c=C0003", expr, extra=(f"--user-agent={iphone}",))["nav"] == f"maps://?ll={lat},{lon}&q=C0003"
    # on a desktop the legend is open and every column is shown
    page = tmp_path / "desk.html"
    shutil.copy(out, page)
    p = in_phone(page, "", expr, 1400, 1000)
    assert p["legendOpen"] is True and p["hiddenCols"] == 0 and p["sideways"] <= 0, p


def test_html_popup_fits_the_map_when_the_phone_turns_in_chromium(tmp_path, cfg, toyama_roads):
    """A phone turned with a damage's popup open, portrait (375×667) to landscape (667×375) and back: the popup's
    size limits follow the map's new size (before: those of the page's opening: in landscape the popup stayed as tall
    as the portrait map allowed and ran out of the now 280 px map; turned back, it stayed 360 px wide in a 375 px
    map), and it is laid out again inside the map."""
    df = make_candidates(cfg, lines=list(toyama_roads.geometry))
    out = report.export(df, "html", tmp_path / "r.html", cfg, roads_wgs84=toyama_roads)
    expr = """(function () { %s
      var map = box('#map'), w = document.querySelector('.leaflet-popup-content-wrapper');
      return {vw: window.innerWidth, vh: window.innerHeight, map: map, pop: w && box(w), in: !!w && within(box(w), map),
              width: w && document.querySelector('.leaflet-popup-content').offsetWidth}; })()""" % BOXES
    for (w, h), turn in (((375, 667), (667, 375)), ((667, 375), (375, 667))):
        page = tmp_path / f"r{w}.html"
        shutil.copy(out, page)
        p = in_phone(page, "#c=C0003", expr, w, h, turn=turn, after=1500)
        assert (p["vw"], p["vh"]) == turn and p["pop"], p
        assert p["in"], (w, h, turn, p)  # the whole popup inside the map, not cut off at its bottom or side
        # the width the map allows: 360 px across a landscape phone, 305 px (the map less 70 px) across a portrait one
        assert p["width"] == (361 if turn[0] > 600 else 306), p


#: a tablet (or a phone): a touch screen its primary pointer, so CSS's (pointer: coarse) holds, and touch events
TOUCH = ("--blink-settings=primaryPointerType=2,availablePointerTypes=2", "--touch-events=enabled")
#: the tap targets' sizes: the zoom buttons' [width, height], the table rows' and the popup's links' heights
TAPS = """(function () { %s
  function hgt(e) { var b = box(e); return b[3] - b[1]; }
  var pop = document.querySelector('.leaflet-popup');
  return {vw: window.innerWidth, coarse: matchMedia('(pointer: coarse)').matches,
    zoom: ['.leaflet-control-zoom-in', '.leaflet-control-zoom-out'].map(function (s) { var b = box(s); return [b[2] - b[0], b[3] - b[1]]; }),
    rows: [].map.call(document.querySelectorAll('#tbl tbody tr'), hgt),
    links: pop ? [].map.call(pop.querySelectorAll('a.photo, a.link'), hgt) : []}; })()""" % BOXES
#: where the taps are measured: phones (375, 320 px), a tablet in landscape (1280 px, a touch screen), a desktop
TAP_SCREENS = ((375, 812, ()), (320, 812, ()), (1280, 800, TOUCH), (1280, 800, ()))


@pytest.fixture(scope="module")
def taps(tmp_path_factory, cfg, toyama_roads):
    """TAPS on each of TAP_SCREENS, a damage's popup (with its crop) open: {(width, touch): probe}."""
    tmp = tmp_path_factory.mktemp("taps")
    df = make_candidates(cfg, lines=list(toyama_roads.geometry))
    out = report.export(df, "html", tmp / "r.html", cfg, roads_wgs84=toyama_roads)
    found = {}
    for width, height, extra in TAP_SCREENS:
        page = tmp / f"r{width}{'t' if extra else ''}.html"
        shutil.copy(out, page)
        found[width, bool(extra)] = in_phone(page, "#c=C0004", TAPS, width, height, extra=extra)
    return found


def test_html_zoom_buttons_are_finger_sized_on_touch_screens_in_chromium(taps):
    """The map's zoom buttons are 40 px on a phone and on a tablet's touch screen (before: Leaflet's 30 px), a
    desktop's stay 30 px (the condition key and the legend keep clear of them: test_report_condition)."""
    for (width, touch), p in taps.items():
        assert p["vw"] == width and p["coarse"] is touch, p
        if width < 900 or touch:
            assert all(w >= 40 and h >= 40 for w, h in p["zoom"]), (width, touch, p["zoom"])
        else:
            assert [w for w, _ in p["zoom"]] == [30, 30], p["zoom"]


def test_html_popup_links_and_rows_are_finger_sized_on_touch_screens_in_chromium(taps):
    """A damage's popup on a phone or a tablet's touch screen: its links to the full photo (元画像) and to this damage
    are 40 px tall to tap (before: a 16 px line of 12 px text); the table's rows are 36 px and more there (two lines
    each: the class's and the status's English names; no CSS of their own). A desktop's links keep their size."""
    for (width, touch), p in taps.items():
        assert len(p["links"]) == 2 and p["rows"], p  # C0004 has a crop: its full photo's link and this damage's
        if width < 900 or touch:
            assert min(p["links"]) >= 40 and min(p["rows"]) >= 36, (width, touch, p)
        else:
            assert max(p["links"]) < 20, p  # one line of the popup's 12 px text


def test_html_prints_on_a4_in_chromium(tmp_path, cfg, toyama_roads):
    """Printed: A4 pages, the map and its legend under it on the first one (the map laid out again for the page's
    width and fitted to the candidates; the legend and the layers' keys: test_citizen_reports, printed), then the
    whole table (not the part visible in its scroll box) over as many pages as it needs."""
    df = make_candidates(cfg, 60, lines=list(toyama_roads.geometry))
    out = report.export(df, "html", tmp_path / "r.html", cfg, roads_wgs84=toyama_roads)
    # at print time, the map's width and whether every marker lies inside it go into the title (the PDF's /Title)
    with_probe(out, "0", when="""window.matchMedia('print').addEventListener('change', function (e) {
        if (!e.matches) return;
        var m = document.getElementById('map').getBoundingClientRect(), inside = true;
        document.querySelectorAll('#map path.leaflet-interactive').forEach(function (p) { var r = p.getBoundingClientRect();
          inside = inside && r.left >= m.left && r.right <= m.right && r.top >= m.top && r.bottom <= m.bottom; });
        document.title = 'probe ' + Math.round(m.width) + ' ' + inside; })""")
    pdf = tmp_path / "r.pdf"
    r = chromium(out.resolve().as_uri(), "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    assert r.returncode == 0 and pdf.exists(), r.stderr[-2000:]
    raw = pdf.read_bytes()
    boxes = re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", raw)
    assert boxes and all(abs(float(w) - 595) < 2 and abs(float(h) - 842) < 2 for w, h in boxes), boxes[:2]  # A4
    assert len(re.findall(rb"/Type /Page\b", raw)) >= 3  # the map, then 60 rows
    title = re.search(rb"/Title \(([^)]*)\)", raw).group(1).decode()
    width, inside = title.split()[1:]
    assert abs(int(width) - 718) <= 4 and inside == "true", title  # 190 mm: A4 less its margins


def test_xlsx_prints_for_the_crew(tmp_path, cfg):
    """The clerk prints the list: A4 landscape, one page wide, the header row repeated, page numbers of its own pages; the photo
    cell looks like the link it is."""
    import openpyxl
    from openpyxl.utils import get_column_letter

    ws = openpyxl.load_workbook(report.export(make_candidates(cfg), "xlsx", tmp_path / "c.xlsx", cfg))["candidates"]
    ps = ws.page_setup
    assert str(ps.paperSize) == ws.PAPERSIZE_A4 and ps.orientation == "landscape"
    # one page wide at a fixed scale (not "fit to width", which ignores the page breaks that make its pages
    # countable: tests/test_export_list_print.py), the footer its own pages' count
    assert not ws.sheet_properties.pageSetUpPr.fitToPage and 10 <= int(ps.scale) <= 100
    assert ws.print_title_rows == "$1:$1" and ws.freeze_panes == "B2" and ws.oddFooter.center.text == "&P / 1"
    photo = ws.cell(row=3, column=[c for c, *_ in report.LIST_COLUMNS].index("photo") + 1)
    assert photo.hyperlink.target == photo.value and photo.style == "Hyperlink"
    # detail columns folded away (outline level 1, hidden), so one page wide is readable; the crew's columns show
    letters = {c: get_column_letter(j) for j, (c, *_) in enumerate(report.LIST_COLUMNS, 1)}
    folded = {c for c, L in letters.items() if ws.column_dimensions[L].hidden and ws.column_dimensions[L].outline_level == 1}
    assert folded == set(report.XLSX_FOLDED)
    assert {"candidate_id", "class_name_ja", "severity", "road_name", "chainage_m", "status", "status_note",
            "checked_by", "checked_at", "photo"}.isdisjoint(folded)
    widths = sum(ws.column_dimensions[L].width for c, L in letters.items() if c not in folded)
    assert widths < 0.7 * sum(ws.column_dimensions[L].width for L in letters.values())


@pytest.mark.parametrize("name", ["週報 #1.xlsx", "50%.xlsx", "点検[北] {A}^.xlsx"])
def test_xlsx_photo_links_resolve_to_the_crops(tmp_path, cfg, name):
    """A clerk's workbook name (Japanese, a space, ``#``, ``%``, brackets) in a folder with such characters: each
    photo link (the sheet's relationship target, an ``xsd:anyURI`` that openpyxl writes as given) is a valid relative
    URI, percent-encoded where Excel encodes (a raw ``#`` cut the path at a location, a raw ``%`` or space is no URI;
    Japanese as it is, as Excel writes it), and resolves against the workbook to its real crop; the cell shows the
    plain path."""
    import zipfile
    from urllib.parse import urljoin

    import openpyxl

    full = real_crops(4)
    df = make_candidates(cfg, 4, crop_jpeg=full)
    out = report.export(df, "xlsx", tmp_path / "道路課 #2 100%" / name, cfg)
    ws = openpyxl.load_workbook(out)["candidates"]
    j = [c for c, *_ in report.LIST_COLUMNS].index("photo") + 1
    cells = [ws.cell(row=i, column=j) for i in range(2, 6)]
    with zipfile.ZipFile(out) as z:
        rels = ET.fromstring(z.read("xl/worksheets/_rels/sheet1.xml.rels"))
    targets = sorted(r.get("Target") for r in rels if r.get("Type", "").endswith("/hyperlink")
                     and not r.get("Target").startswith("https://"))  # not the map column's web map links
    assert targets == sorted(c.hyperlink.target for c in cells)  # what the file holds is what openpyxl reads back
    folder = report.photo_folder(out)
    for c, crop in zip(cells, full):
        t = c.hyperlink.target
        assert c.value == f"{folder.name}/{c.value.rsplit('/', 1)[1]}"  # the cell: the readable path
        # RFC 3986 relative path (no scheme, query or fragment; % only as an escape), Japanese as an IRI allows
        assert re.fullmatch(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=@/]|%[0-9A-F]{2}|[^\x00-\x7f])+", t), t
        url = urlparse(urljoin(out.as_uri(), t))
        assert url.scheme == "file" and not url.query and not url.fragment, url
        target = Path(url2pathname(url.path))
        assert target == folder / c.value.rsplit("/", 1)[1] and target.read_bytes() == crop, t


def real_crops(n: int) -> list[bytes]:
    """Crops cut by the pipeline's make_crop from the sample drive's frames and true boxes (480 px, quality 85)."""
    return list(_real_crops(n))


@functools.lru_cache(maxsize=4)
def _real_crops(n: int) -> tuple[bytes, ...]:
    import cv2

    from detector import crops

    rows = list(csv.DictReader(need(TOYAMA / "toyama-2026-11-p1.oracle.csv").open(encoding="utf-8")))
    out = []
    for r in rows[:n]:
        img = cv2.imread(str(TOYAMA / "toyama-2026-11-p1" / r["image"]))
        out.append(crops.make_crop(img, [float(r[k]) for k in ("x1", "y1", "x2", "y2")], Config(), label=f"{r['class']} 1.00"))
    return tuple(out)


def test_html_embeds_popup_sized_thumbnails_not_full_crops(tmp_path, cfg, toyama_roads):
    """The report embeds each crop at the popup's size (320x240, WebP quality 60), not the crew's 480 px crop:
    a 2,000-candidate drive's report was ~45 MB with full crops (22 KB each); crops/ keeps the full ones."""
    import cv2

    full = real_crops(20)
    df = make_candidates(cfg, 20, lines=list(toyama_roads.geometry), crop_jpeg=full)
    out = report.export(df, "html", tmp_path / "r.html", cfg, roads_wgs84=toyama_roads)
    html = out.read_text(encoding="utf-8")
    uris = thumbs_of(html, json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', html,
                                                re.S).group(1)))
    assert all(u.startswith("data:image/webp;base64,") for u in uris)
    for u, b in zip(uris, full):
        img = cv2.imdecode(np.frombuffer(base64.b64decode(u.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
        h, w = cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR).shape[:2]
        s = min(1.0, 320 / w, 240 / h)  # fits the popup, not upscaled
        assert abs(img.shape[1] - w * s) <= 1 and abs(img.shape[0] - h * s) <= 1
    per_candidate, full_b64 = np.mean([len(u) for u in uris]), np.mean([len(b) for b in full]) * 4 / 3
    assert per_candidate < 0.5 * full_b64, (per_candidate, full_b64)  # (13 KB against 37 KB of base64 here)


def test_html_popups_link_the_full_crops_beside_the_file(tmp_path, cfg, toyama_roads):
    """The registry map (`patrol export --format html`) writes the full crops beside it as the crew's lists do
    (``週報 #1.html`` -> ``週報 #1_html_crops/<id>.jpg``; holding exactly the map's photos) and each popup's thumbnail
    links to its full crop with a relative URL: in Chromium the link resolves to that file, which opens as an image
    (the folder and the file copied elsewhere together, it still does), and the thumbnail stays inlined."""
    import cv2

    full = real_crops(12)
    df = make_candidates(cfg, 12, lines=list(toyama_roads.geometry), crop_jpeg=full)
    df.at[5, "crop_jpeg"] = None  # no crop: no photo, no link
    name = "週報 #1.html"  # a clerk's file name: Japanese, a space and a '#' (percent-encoded in the link)
    out = report.export(df, "html", tmp_path / name, cfg, roads_wgs84=toyama_roads)
    folder = report.photo_folder(out)
    assert folder.name == "週報 #1_html_crops"
    assert sorted(p.name for p in folder.iterdir()) == [f"C{i:04d}.jpg" for i in range(12) if i != 5]
    # the whole map copied elsewhere (a USB stick): the html and its folder side by side
    stick = tmp_path / "usb" / "地図"
    shutil.copytree(folder, stick / folder.name)
    out = shutil.copy(out, stick / name)
    probe = """(function () { var p = document.querySelector('.leaflet-popup'); if (!p) return null;
        var a = p.querySelector('a.full'), img = p.querySelector('a.full > img'), t = p.querySelector('a.photo');
        return {full: a && a.href, text: t && t.href, target: a && a.target, thumb: img && img.src.slice(0, 23),
                w: img && img.naturalWidth, h: img && img.naturalHeight}; })()"""
    k = max(range(12), key=lambda i: len(full[i]) if i != 5 else 0)  # a crop larger than the popup's thumbnail
    out = with_probe(Path(out), probe)
    dom, err = render(out, f"#c=C{k:04d}")
    assert selfcheck(dom) == "report-ok:12:12" and not console_errors(err), (selfcheck(dom), console_errors(err))
    p = probe_of(dom)
    assert p["thumb"] == "data:image/webp;base64," and p["full"] == p["text"] and p["target"] == "_blank", p
    target = Path(url2pathname(urlparse(p["full"]).path))
    assert target == stick / folder.name / f"C{k:04d}.jpg" and target.read_bytes() == full[k], p["full"]
    h, w = cv2.imdecode(np.frombuffer(full[k], np.uint8), cv2.IMREAD_COLOR).shape[:2]
    assert (p["w"], p["h"]) != (w, h) and p["w"] <= 320 and p["h"] <= 240, (p, w, h)  # the thumbnail, not the crop
    # the link opens in the browser as the full crop (Chromium titles an image "<name> (<w>×<h>)")
    r = chromium(p["full"], "--dump-dom")
    assert r.returncode == 0 and f"<title>C{k:04d}.jpg ({w}×{h})</title>" in r.stdout, r.stdout[:500]
    # no crop: no link
    dom, _ = render(out, "#c=C0005")
    assert probe_of(dom) == {"full": None, "text": None, "target": None, "thumb": None, "w": None, "h": None}
    # a narrower map (--status) into the same file: its folder holds exactly its photos
    report.export(df[df["status"] == "repaired"], "html", tmp_path / name, cfg)
    assert sorted(p.name for p in folder.iterdir()) == ["C0003.jpg", "C0009.jpg"]


def test_html_size_per_candidate_with_real_crops(tmp_path, cfg):
    """A city's registry holds thousands of damages and the map goes by e-mail: what a damage adds to the file
    (its data and its thumbnail), on 40 real crops of the sample drive, stays under 8 KB. (9.3 KB with JPEG
    quality 70 thumbnails, 22 MB at 2,000 damages; 6.8 KB with WebP quality 60; bench/bench_report.py.)"""
    full = real_crops(40)
    empty = report.export(make_candidates(cfg, 0), "html", tmp_path / "empty.html", cfg).stat().st_size
    out = report.export(make_candidates(cfg, 40, crop_jpeg=full), "html", tmp_path / "r.html", cfg)
    per = (out.stat().st_size - empty) / 40
    assert per < 8_000, per
    html = out.read_text(encoding="utf-8")
    data = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1)
    assert "data:image" not in data  # the photos are not in the data parsed when the page opens
    assert all(u.startswith("data:image/webp;base64,") for u in thumbs_of(html, json.loads(data)))


def test_html_thumbnails_appear_when_a_popup_opens_in_chromium(tmp_path, cfg, toyama_roads):
    """The thumbnails are read from their block only when a popup needs one: a row clicked in the table (not the
    URL) opens its damage's popup with its photo decoded at the thumbnail's size; a second damage's popup shows its
    own photo; a photo the browser cannot show (a WebP on Safari before 14, here a broken one) leaves a line that
    says so and the link to the full photo."""
    import cv2

    full = real_crops(12)
    df = make_candidates(cfg, 12, lines=list(toyama_roads.geometry), crop_jpeg=full)
    out = report.export(df, "html", tmp_path / "r.html", cfg, roads_wgs84=toyama_roads)
    html = out.read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1))
    order = [c["candidate_id"] for c in data["candidates"]]
    # C0007's thumbnail broken (valid base64, not an image)
    bad = thumbs_of(html, data)[order.index("C0007")]
    out.write_text(html.replace(bad, "data:image/webp;base64,UklGRgAAAABXRUJQ"), encoding="utf-8")
    popup = """(function () { var p = document.querySelector('.leaflet-popup'); if (!p) return null;
        var img = p.querySelector('img'), no = p.querySelector('.noimg'), a = p.querySelector('a.photo');
        return {id: p.querySelector('tr:last-child td') && [].map.call(p.querySelectorAll('td'), function (t) {
                  return t.textContent; }).filter(function (t) { return /^C00/.test(t); })[0],
                src: img && img.src.slice(0, 23), w: img && img.naturalWidth, h: img && img.naturalHeight,
                noimg: no && no.textContent, link: a && a.getAttribute('href')}; })()"""
    rows = "document.querySelectorAll('#tbl tbody tr')"
    with_probe(out, "window.__seen", when=f"""window.__seen = [];
        var ids = ['C0004', 'C0009', 'C0007'];
        function rowOf(id) {{ return [].filter.call({rows}, function (r) {{ return r.cells[0].textContent === id; }})[0]; }}
        function next(k) {{
          if (k === ids.length) {{ probe(); return; }}
          rowOf(ids[k]).click();
          setTimeout(function () {{ window.__seen.push({popup}); next(k + 1); }}, 700);
        }}
        setTimeout(function () {{ window.__seen.push(document.querySelector('.leaflet-popup')); next(0); }}, 500)""")
    dom, err = render(out)
    assert selfcheck(dom) == "report-ok:12:12" and not console_errors(err), (selfcheck(dom), console_errors(err))
    seen = probe_of(dom)
    assert seen[0] is None, seen  # no popup (no photo read) until one is asked for
    for p, cid in zip(seen[1:3], ("C0004", "C0009")):
        i = int(cid[1:])
        h, w = cv2.imdecode(np.frombuffer(full[i], np.uint8), cv2.IMREAD_COLOR).shape[:2]
        s = min(1.0, 320 / w, 240 / h)
        assert p["id"] == cid and p["src"] == "data:image/webp;base64," and p["noimg"] is None, p
        assert abs(p["w"] - w * s) <= 1 and abs(p["h"] - h * s) <= 1, (p, w, h)  # decoded, the thumbnail's size
        assert p["link"].endswith(f"/{cid}.jpg"), p
    p = seen[3]
    assert p["id"] == "C0007" and p["src"] is None and "画像を表示できません" in p["noimg"], p
    assert p["link"].endswith("/C0007.jpg"), p


@pytest.fixture(scope="module")
def city_registry(tmp_path_factory) -> Path:
    """A city's registry as bench/bench_report.py builds one, smaller: the sample drive's damages (located and
    deduped from its true boxes) with their real crops, copied into 10 sites on a ~3 km grid (310 damages, each
    crop given its own noise), a third of them confirmed / scheduled / repaired by a crew's list."""
    need(TOYAMA / "roads.geojson")
    sys.path[:0] = [str(Path(__file__).resolve().parent.parent / "bench")]
    from bench_report import build_registry, sample_base

    cfg = Config()
    base, crops = sample_base(TOYAMA, cfg)
    path = tmp_path_factory.mktemp("city") / "registry.gpkg"
    build_registry(path, base, crops, 10 * len(base), 1, cfg)
    return path


def test_html_max_mb_fits_a_mail_and_keeps_the_urgent_photos_in_chromium(tmp_path, city_registry):
    """`patrol export --format html --max-mb N`: a city's map goes by mail (LGWAN and city mail refuse attachments
    over 10 MB, often 5). On a registry of the sample's real crops scaled up (310 damages, ~2.4 MB as it is) a cap
    of 0.6 MB gives a file under it that opens offline: photos at the smallest thumbnail (160 px), those of the
    most urgent damages (new / reopened / confirmed, then scheduled, then closed; by severity) kept and the rest left
    out, the console saying so in one line; a kept damage's popup shows its photo, a left-out one's says why."""
    from conftest import ROOT

    def patrol(*args):
        return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], cwd=ROOT, capture_output=True,
                              text=True, timeout=300)

    roads = TOYAMA / "roads.geojson"
    full = patrol("export", city_registry, "--format", "html", "--roads", roads, "--out", tmp_path / "full.html")
    assert full.returncode == 0, full.stderr
    assert (tmp_path / "full.html").stat().st_size > 3 * 600_000  # the cap has work to do
    r = patrol("export", city_registry, "--format", "html", "--roads", roads, "--out", tmp_path / "map.html",
               "--max-mb", "0.6")
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    size = (tmp_path / "map.html").stat().st_size
    assert size <= 600_000, size
    # (the patrol-due layer, the whole network's 11,238 segments with a length, ~140 KB: the damages without photos do
    # not fit with it under 0.6 MB, so it goes first, as the road-condition layer would: README, the patrol-due layer)
    m = re.search(r"^map\.html: (0\.\d) MB; photos 160 px for (\d+) of 310 damages; left out for (\d+) \((.*)\) "
                  r"to fit 0\.6 MB(; patrol due layer \(11,238 segments\) left out to fit 0\.6 MB)?"
                  r"(; repair jobs layer \((\d+) jobs\) left out to fit 0\.6 MB)?$", r.stdout, re.M)
    assert m and float(m.group(1)) <= size / 1e6 < float(m.group(1)) + 0.1, r.stdout
    shown, left = int(m.group(2)), int(m.group(3))
    # a real spread, not an edge case (how many photos fit follows the page's own size: every ~1.4 KB of script or
    # style costs one 160 px WebP photo: 43 at 0.9.0, 39 with the repair jobs layer's and the phone button's code, 34
    # with the printed legend's, 24 at 0.12.0: 悪化's sizes of 260 damages, ~20 bytes each sent short, ~5 KB, its ring
    # and filter, the crack rate's popup rows), and the photos fill the room: the next one left out would not have
    # fitted (the file is within two of the largest kept thumbnail's lines of the cap)
    assert shown >= 20 and left >= 40 and shown + left == 310, r.stdout
    # the repair jobs layer (~15 KB here) goes rather than cost photos: the map draws jobs from its damages
    assert m.group(6), r.stdout
    html = (tmp_path / "map.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1))
    cands = data["candidates"]
    assert data["jobs"]["rows"] == [] and int(m.group(7)) > 0, data.get("jobs")
    kept = [c for c in cands if isinstance(c["thumb"], int) and c["thumb"] is not False]
    out = [c for c in cands if c["thumb"] is False]
    assert (len(kept), len(out)) == (shown, left) and data["meta"]["photos"]["px"] == 160
    lines = re.search(r'<script type="text/plain" id="thumbs">(.*?)</script>', html, re.S).group(1).split()
    assert 600_000 - size < 2 * max(len(v) for v in lines), (size, max(len(v) for v in lines))
    rank = {"new": 0, "reopened": 0, "confirmed": 0, "scheduled": 1, "repaired": 2, "not_an_issue": 2}
    key = lambda c: (rank[c["status"]], -c["severity"])  # noqa: E731
    assert max(key(c) for c in kept) <= min(key(c) for c in out)  # no photo kept over a more urgent one's
    assert {c["status"] for c in out} >= {"repaired"} and {c["status"] for c in kept} >= {"new", "confirmed"}
    first, gone = min(kept, key=key), max(out, key=key)
    probe = """(function () { var p = document.querySelector('.leaflet-popup'); if (!p) return null;
        var img = p.querySelector('img'), no = p.querySelector('.noimg');
        return {src: img && img.src.slice(0, 23), w: img && img.naturalWidth, h: img && img.naturalHeight,
                noimg: no && no.textContent, head: document.getElementById('meta').textContent}; })()"""
    page = with_probe(tmp_path / "map.html", probe)
    dom, err = render(page, f"#c={first['candidate_id']}")
    assert selfcheck(dom) == "report-ok:310:310" and not console_errors(err), (selfcheck(dom), console_errors(err))
    p = probe_of(dom)
    assert p["src"] == "data:image/webp;base64," and 0 < p["w"] <= 160 and 0 < p["h"] <= 120 and not p["noimg"], p
    assert f"{left} 件省略" in p["head"] and "0.6 MB" in p["head"], p
    dom, err = render(page, f"#c={gone['candidate_id']}")
    p = probe_of(dom)
    assert p["src"] is None and "容量制限のため省略" in p["noimg"], p
    # refused for a format without photos: one line, exit 2, nothing written
    r = patrol("export", city_registry, "--format", "csv", "--out", tmp_path / "l.csv", "--max-mb", "5")
    assert r.returncode == 2 and "--max-mb" in r.stderr and not (tmp_path / "l.csv").exists(), r.stderr


def test_photos_of_an_export_are_made_durable_together(tmp_path, cfg, monkeypatch):
    """An export's photo folder (thousands of crops for a year's registry) is written file by file through a temp
    file and a rename as before, but made durable by one sync() at the end, not by two fsyncs a photo (2,000 photos:
    14.8 s of a 24 s html export, 0.4 s with one sync on ext4); a second export that changes nothing syncs nothing."""
    import os

    full = real_crops(12)
    df = make_candidates(cfg, 12, crop_jpeg=full)
    calls = {"fsync": 0, "sync": 0}
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.__setitem__("fsync", calls["fsync"] + 1), real_fsync(fd))[1])
    monkeypatch.setattr(os, "sync", lambda: calls.__setitem__("sync", calls["sync"] + 1), raising=False)
    out = tmp_path / "list.csv"
    paths = report.write_photos(df, out)
    folder = report.photo_folder(out)
    assert [folder / p.split("/", 1)[1] for p in paths] == [folder / f"{c}.jpg" for c in df["candidate_id"]]
    assert [(folder / f"{c}.jpg").read_bytes() for c in df["candidate_id"]] == full  # every photo, whole
    assert not list(folder.glob(".*"))  # no temp file left
    assert calls == {"fsync": 0, "sync": 1}, calls  # (os.sync set above, so this runs on Windows too)
    report.write_photos(df, out)  # nothing changed: nothing written, nothing synced
    assert calls == {"fsync": 0, "sync": 1}, calls
    # without sync() (Windows) each photo keeps its own fsync: the batch is not left to chance
    monkeypatch.delattr(os, "sync")
    df2 = make_candidates(cfg, 12, crop_jpeg=list(reversed(full)))
    report.write_photos(df2, out)
    assert calls["fsync"] >= 12 and calls["sync"] == 1, calls
    assert [(folder / f"{c}.jpg").read_bytes() for c in df2["candidate_id"]] == list(reversed(full))


def test_html_export_again_reads_the_thumbnails_from_the_registrys_cache(tmp_path, cfg, monkeypatch):
    """A weekly `patrol export --format html` of a year's registry made every thumbnail again (~7,000 WebP, ~26 s of
    2 cores, bench/bench_registry_scale.py --export). With the registry's thumbnail cache the second export makes
    none, the third only the one whose crop changed, and each page's thumbnails are the bytes made without a cache;
    a cache file that is not one (or cannot be read) is as no cache."""
    from detector import crops

    full = real_crops(12)
    df = make_candidates(cfg, 12, crop_jpeg=full)
    made = []
    real = crops.thumbnail
    monkeypatch.setattr(crops, "thumbnail", lambda data, *a, **k: (made.append(data), real(data, *a, **k))[1])

    def page(frame, cache) -> list:
        out = tmp_path / "map.html"
        report.export(frame, "html", out, cfg, thumb_cache=cache)
        html = out.read_text(encoding="utf-8")
        data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1))
        return thumbs_of(html, data)

    plain = page(df, None)
    assert len(made) == 12 and all(u and u.startswith("data:image/webp;base64,") for u in plain)
    cache = report.thumb_cache_path(tmp_path / "registry.gpkg")
    assert cache == tmp_path / "registry.gpkg.thumbs"
    made.clear()
    assert page(df, cache) == plain and len(made) == 12  # the first: every thumbnail made, kept
    made.clear()
    assert page(df, cache) == plain and made == []  # again: none made
    df2 = make_candidates(cfg, 12, crop_jpeg=[full[0], *full[1:11], full[0]])  # the last damage's crop changed
    plain2 = page(df2, None)
    made.clear()
    assert page(df2, cache) == plain2 and made == []  # its new crop's thumbnail: another damage's, kept already
    df3 = make_candidates(cfg, 12, crop_jpeg=[*full[:11], tiny_jpeg()])
    made.clear()
    got = page(df3, cache)
    assert made == [tiny_jpeg()] and got[:11] == plain[:11] and got == page(df3, None)  # only the changed one
    made.clear()
    html, _, _ = report.fit_html(report.prepare(df, cfg), cfg, 10_000_000, thumb_cache=cache)  # --max-mb: cached too
    assert made == [] and "data:image/webp;base64," in html
    cache.write_bytes(b"not a cache")  # broken (or a folder that cannot be written): as no cache
    made.clear()
    assert page(df, cache) == plain and len(made) == 12


def test_html_road_network_trimmed_to_every_link_within_reach():
    """A large network is trimmed to the links within ``near_m`` (300 m) of a damage, all of them: a link 299.9 m
    away drawn, one 310 m away not. (Trimmed by the intersection with one buffer of all damages, the link was left
    out where the buffer's polygon circle cut the arc: 299.64 m at 2.8 degrees between two of its vertices; and that
    buffer of a city's 6,987 damages took 31 s and 3.5 GB, bench/bench_registry_scale.py --export.)"""
    import geopandas as gpd
    import shapely

    utm = "EPSG:32653"  # (the zone _road_lines estimates for Toyama)
    c = shapely.points(700_000.0, 4_065_000.0)
    a = np.radians(2.8125)  # between the buffer polygon's vertices (every 5.625 degrees from 0)
    u, v = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    base = np.array([700_000.0, 4_065_000.0])
    near = [base + 299.9 * u - 5 * v, base + 299.9 * u + 5 * v]  # tangent to the 299.9 m circle
    far = [base - 310.0 * u - 5 * v, base - 310.0 * u + 5 * v]
    roads = gpd.GeoDataFrame({"segment_id": ["near", "far"]}, geometry=[shapely.linestrings(near),
                                                                       shapely.linestrings(far)], crs=utm)
    p = gpd.GeoSeries([c], crs=utm).to_crs("EPSG:4326")[0]
    df = pd.DataFrame({"lat": [p.y], "lon": [p.x]})
    lines = report._road_lines(roads.to_crs("EPSG:4326"), df, max_full=1)
    assert len(lines) == 1
    drawn = gpd.GeoSeries([shapely.linestrings(np.array(report.road_coords(lines[0]))[:, ::-1])],
                          crs="EPSG:4326").to_crs(utm)[0]
    assert drawn.hausdorff_distance(roads.geometry[0]) < 1.5
