"""The due list workbook (`patrol export REGISTRY --format due --out X.xlsx`) as it is printed: the ``due`` sheet's
footer counts its own pages (``2 / 4``), its headings read whole on every page, and its ``legend`` prints as the repair
list's (one page wide, its notes wrapped and whole, its own pages ``凡例 legend 1`` …). Real data: the registry of the
sample drive's two passes (tests/test_export_segments.py's fixture) on a part of the sample network: the 23 segments
the passes surveyed and the first 80 never surveyed, 103 rows on 4 pages (the whole network's list: 417 pages)."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from conftest import TOYAMA, print_tools
from test_export_list_print import _footer
from test_export_ledger import _pdf_text
from test_export_segments import patrol, registry  # noqa: F401 (the fixture)
from test_store_passes import sample  # noqa: F401 (the fixture registry needs)

ROADS = TOYAMA / "roads.geojson"
AT = "2026-12-20"


@pytest.fixture(scope="module")
def due_xlsx(registry, tmp_path_factory) -> Path:  # noqa: F811
    """The due list of a part of the sample network: the segments the registry's passes surveyed and the first 80 of
    the others (in the list's order: the whole network's due list, its last_surveyed empty)."""
    path, _, _ = registry
    tmp = tmp_path_factory.mktemp("dueprint")
    r = patrol("export", path, "--format", "due", "--roads", ROADS, "--out", tmp / "all.csv", "--at", AT)
    assert r.returncode == 0, r.stderr
    with open(tmp / "all.csv", encoding="utf-8-sig", newline="") as fh:
        rows = [{k.split(" ")[-1]: v for k, v in row.items()} for row in csv.DictReader(fh)]
    keep = ({row["segment_id"] for row in rows if row["last_surveyed"]}
            | set([row["segment_id"] for row in rows if not row["last_surveyed"]][:80]))
    doc = json.loads(ROADS.read_text(encoding="utf-8"))
    doc["features"] = [f for f in doc["features"] if f["properties"]["segment_id"] in keep]
    roads = tmp / "roads-part.geojson"
    roads.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    x = tmp / "due.xlsx"
    r = patrol("export", path, "--format", "due", "--roads", roads, "--out", x, "--at", AT)
    assert r.returncode == 0, r.stderr
    return x


def test_due_legend_is_set_to_print_as_the_repair_lists(due_xlsx):
    """The due list's legend sheet, as the repair list's (report.xlsx_legend_print): the footer ``凡例 legend &P``
    numbered from 1 (it had none), one page wide on A4 landscape, its notes wrapped and each row as high as its
    longest note's lines (the coverage rule's: several)."""
    import openpyxl

    from detector.report import LEGEND_FOOTER, LIST_ROW_PT

    lg = openpyxl.load_workbook(due_xlsx)["legend"]
    assert lg.oddFooter.center.text == LEGEND_FOOTER
    assert lg.page_setup.firstPageNumber == 1 and lg.page_setup.useFirstPageNumber
    assert lg.page_setup.fitToWidth == 1 and lg.page_setup.fitToHeight == 0
    assert lg.sheet_properties.pageSetUpPr.fitToPage
    assert lg.page_setup.orientation == "landscape" and int(lg.page_setup.paperSize) == int(lg.PAPERSIZE_A4)
    rule = next(r for r in range(1, lg.max_row + 1) if lg.cell(row=r, column=1).value == "巡回の判定 coverage rule")
    assert all(lg.cell(row=rule, column=j).alignment.wrap_text for j in (2, 3))
    assert lg.row_dimensions[rule].height >= 4 * LIST_ROW_PT  # ~400 characters in a 70-wide column


def test_due_list_prints_its_own_pages_and_headings_whole(due_xlsx, tmp_path):
    """The workbook printed whole by LibreOffice (soffice --convert-to pdf): each page of the due sheet reads ``k / n``
    with n its own pages (not counting the legend's), each row printed once and in order, and every column's heading
    whole on every page (``road_na/me``, ``every_day/s`` were cut before the fonts were named); the legend's pages
    read 凡例 legend 1 …, every character of every cell printed (no note cut at its row's foot or the page's edge)."""
    import openpyxl

    soffice, pdftotext = print_tools()
    wb = openpyxl.load_workbook(due_xlsx)
    ws, lg = wb["due"], wb["legend"]
    every = [p for p in _pdf_text(soffice, pdftotext, due_xlsx, tmp_path).split("\f") if p.strip()]
    legend = next(i for i, p in enumerate(every) if "巡回予定 / Patrol due" in p)
    pages = every[:legend]
    assert len(pages) > 2  # several pages, for k / n to mean something
    assert [_footer(p) for p in pages] == [f"{k} / {len(pages)}" for k in range(1, len(pages) + 1)]
    assert ws.oddFooter.center.text == f"&P / {len(pages)}"
    ids = [m for p in pages for m in re.findall(r"^\s*(\d{8}-\d+-\d+)\s", p, re.M)]
    assert ids == [ws.cell(row=r, column=1).value for r in range(2, ws.max_row + 1)]
    heads = [ws.cell(row=1, column=j).value.split("\n") for j in range(1, ws.max_column + 1)]
    for k, p in enumerate(pages, 1):
        top = [ln for ln in p.splitlines() if ln.strip()]
        ja, en = next((top[i], top[i + 1]) for i in range(len(top)) if "segment_id" in top[i + 1])
        assert [h[-1] for h in heads if h[-1] not in en.split()] == [], (k, en)  # each English heading whole
        assert [h[0] for h in heads if len(h) == 2 and h[0] not in ja.split()] == [], (k, ja)
    printed = every[legend:]
    assert [_footer(p) for p in printed] == [f"凡例 legend {k}" for k in range(1, len(printed) + 1)]
    cells = Counter(ch for row in lg.iter_rows(values_only=True) for v in row if isinstance(v, str)
                    for ch in v if not ch.isspace())
    shown = Counter(ch for p in printed for ch in p if not ch.isspace())
    assert cells - shown == Counter()  # every character of the legend printed
