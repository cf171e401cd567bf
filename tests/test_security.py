"""Escaping in the human-facing exports: hostile strings in road names, file names, notes and camera
make/model must come out as the same text, never as markup (HTML report, KML, XLSX, CSV)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from detector import report
from detector.config import Config
from test_report import KML_NS, make_candidates, parse_tags, render, selfcheck, console_errors

NASTY = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "]]><!-- --></Placemark>",
    "&amp; &lt; &#x3C; \\u003c",
    "'single' \"double\" `back`",
    "</script><script>alert(2)</script>",
    "県道富山高岡線 <b>太字</b>",
    "=cmd|' /C calc'!A0",
    "\u2028line\u2029sep",
    "javascript:alert(3)",
]


@pytest.fixture(scope="module")
def cfg() -> Config:
    return Config()


def hostile(cfg: Config):
    df = make_candidates(cfg, len(NASTY))
    for col in ("road_name", "best_image", "status_note", "checked_by", "segment_id"):
        df[col] = NASTY
    df["make"] = list(reversed(NASTY))
    df["model"] = NASTY[3:] + NASTY[:3]
    df["candidate_id"] = [f"id{i}{s}" for i, s in enumerate(NASTY)]
    return df


def test_html_data_block_escaped_and_round_trips(tmp_path, cfg):
    df = hostile(cfg)
    html = report.export(df, "html", tmp_path / "r.html", cfg).read_text(encoding="utf-8")
    scripts = [t for t, _ in parse_tags(html) if t == "script"]
    assert len(scripts) == 4  # only ours: data, thumbnails, Leaflet, app
    m = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    body = m.group(1)
    outside = html.replace(body, "")
    assert "alert(" not in outside and "<img" not in outside and "太字" not in outside
    assert "<" not in body and ">" not in body and "&" not in body
    data = json.loads(body)
    got = data["candidates"]
    assert [c["road_name"] for c in got] == NASTY
    assert [c["status_note"] for c in got] == NASTY
    assert [c["best_image"] for c in got] == NASTY
    assert [c["make"] for c in got] == list(reversed(NASTY))
    assert [c["candidate_id"] for c in got] == list(df.candidate_id)


def test_html_hostile_strings_stay_text_in_chromium(tmp_path, cfg):
    df = hostile(cfg)
    out = report.export(df, "html", tmp_path / "r.html", cfg)
    for frag in ("", "#c=" + "id1" + '"><img src=x onerror=alert(1)>', "#c=id0%3Cscript%3Ealert(1)%3C%2Fscript%3E"):
        dom, err = render(out, frag)
        assert selfcheck(dom).startswith("report-ok:"), selfcheck(dom)
        assert not console_errors(err), console_errors(err)
        tags = parse_tags(dom)
        assert sum(t == "script" for t, _ in tags) == 4
        assert not [t for t, a in tags if t == "img" and a.get("src") == "x"]
        assert not [(t, a) for t, a in tags if any(k.startswith("on") for k in a)]
        assert not [t for t, _ in tags if t == "b"]  # the <b> in a road name is text, not markup
        # and the text is shown as text (serialised escaped) in the table
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    # the popup of a hostile candidate, opened through the URL, shows the strings as text too
    dom, _ = render(out, "#c=id6" + "県道富山高岡線 <b>太字</b>")
    popup = dom[dom.index('class="leaflet-popup-content'):]  # (+ " leaflet-popup-scrolled" when taller than the map)
    assert "県道富山高岡線 &lt;b&gt;太字&lt;/b&gt;" in popup[:20000]


def test_kml_round_trips_text(tmp_path, cfg):
    df = hostile(cfg)
    root = ET.parse(report.export(df, "kml", tmp_path / "c.kml", cfg)).getroot()
    pms = root.findall(f".//{KML_NS}Placemark")
    assert len(pms) == len(NASTY)
    by_id = {}
    for pm in pms:
        d = {x.get("name"): x.findtext(f"{KML_NS}value") for x in pm.iter(f"{KML_NS}Data")}
        by_id[d["candidate_id"]] = d
    for i, s in enumerate(NASTY):
        d = by_id[df.candidate_id[i]]
        assert d["road_name"] == s and d["status_note"] == s and d["best_image"] == s
    desc = pms[0].findtext(f"{KML_NS}description")
    assert NASTY[df.index[df["class"] == pms[0].findtext(f"{KML_NS}name").split()[0]][0]] in desc


def test_kml_and_xlsx_drop_control_characters(tmp_path, cfg):
    import openpyxl

    df = make_candidates(cfg, 2)
    df.loc[0, "road_name"] = "bad\x00\x07\x1bname"
    ET.parse(report.export(df, "kml", tmp_path / "c.kml", cfg))  # still well-formed XML
    wb = openpyxl.load_workbook(report.export(df, "xlsx", tmp_path / "c.xlsx", cfg))
    col = [c for c, *_ in report.COLUMNS].index("road_name") + 1
    assert wb["candidates"].cell(row=2, column=col).value == "badname"


def test_xlsx_and_csv_keep_text_inert(tmp_path, cfg):
    import csv

    import openpyxl

    df = hostile(cfg)
    ws = openpyxl.load_workbook(report.export(df, "xlsx", tmp_path / "c.xlsx", cfg))["candidates"]
    col = [c for c, *_ in report.COLUMNS].index("status_note") + 1
    cells = [ws.cell(row=i + 2, column=col) for i in range(len(NASTY))]
    assert [c.value for c in cells] == NASTY and all(c.data_type == "s" for c in cells)
    text = report.export(df, "csv", tmp_path / "c.csv", cfg).read_text(encoding="utf-8-sig")
    notes = [r["status_note"] for r in csv.DictReader(text.splitlines(keepends=True))]
    assert notes[7] == "'" + NASTY[7] and notes[0] == NASTY[0]
