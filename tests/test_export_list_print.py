"""The repair list workbook (`patrol export --format xlsx`) as it is printed: the candidates sheet's footer counts its
own pages (``1 / 5``), not every page printed (``&N``: the legend's too when the whole workbook is printed, as
LibreOffice's PDF export and Excel's "Print Entire Workbook" do). Real data: the sample drive's registry (`patrol
locate` of the two passes, the `located` fixture of test_cli), and its 31 candidates ten times over (310 rows)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import print_tools
from test_cli import located, ok, patrol, roads  # noqa: F401 (fixtures)
from test_export_ledger import _pdf_text


def _many(store: Path, copies: int):
    """The sample registry's candidates ``copies`` times over (ids R-…-k), in route order as the export writes them."""
    import pandas as pd

    from detector.config import Config
    from detector.store import Store

    with Store(store) as st:
        q = st.query(lists=False)
    return pd.concat([q.assign(candidate_id=q["candidate_id"] + f"-{k}") for k in range(copies)],
                     ignore_index=True), Config()


def _footer(page: str) -> str:
    """A printed page's footer: its last line that is a page number (``3 / 5``, ``凡例 legend 2``), or ''."""
    foot = re.compile(r"^\s*(\d+ ?/ ?\d+|凡例 legend \d+)\s*$")
    return next((" / ".join(re.split(r" ?/ ?", m.group(1))) for ln in reversed(page.splitlines())
                 if (m := foot.match(ln))), "")


@pytest.fixture(scope="module")
def lists(located, tmp_path_factory) -> dict[str, Path]:
    """The sample's repair list (31 rows: one page) and 310 rows (several pages)."""
    from detector import report

    tmp = tmp_path_factory.mktemp("listprint")
    ok(patrol("export", located["store"], "--format", "xlsx", "--out", tmp / "list.xlsx"))
    df, cfg = _many(located["store"], 10)
    report.export(df, "xlsx", tmp / "many.xlsx", cfg)
    return {"list": tmp / "list.xlsx", "many": tmp / "many.xlsx"}


def test_repair_list_footer_is_its_own_page_count(lists):
    """The candidates sheet's footer writes its page count as a number (&N would count the legend's pages too), its
    pages numbered from 1; a page break after each page's last row, every data row of a set height (no renderer grows
    one), a fixed scale (not fit to width, which ignores page breaks); the legend's pages are its own."""
    import openpyxl

    for name, n in (("list", 31), ("many", 310)):
        wb = openpyxl.load_workbook(lists[name])
        ws = wb["candidates"]
        breaks = [b.id for b in ws.row_breaks.brk]
        per_page = breaks[0] - 1 if breaks else n
        assert breaks == list(range(1 + per_page, n + 1, per_page))
        pages = -(-n // per_page)
        assert ws.oddFooter.center.text == f"&P / {pages}" and "&N" not in ws.oddFooter.center.text
        assert ws.page_setup.firstPageNumber == 1 and ws.page_setup.useFirstPageNumber
        assert not ws.sheet_properties.pageSetUpPr.fitToPage and 10 <= ws.page_setup.scale <= 100
        assert len(heights := {ws.row_dimensions[r].height for r in range(2, n + 2)}) == 1 and None not in heights
        assert wb["legend"].oddFooter.center.text == "凡例 legend &P"
    assert pages > 2  # 310 rows: several pages


def test_repair_list_prints_k_of_its_own_pages(lists, tmp_path):
    """The workbook printed whole by LibreOffice (soffice --convert-to pdf): each page of the candidates sheet reads
    ``k / n`` with n its own pages (the sample's 31 rows: 1 / 1, not 1 / 5 with the legend's 4), each row printed once
    and in order, one page wide (no column printed on pages of its own); the legend's pages 凡例 legend 1 …; the
    legend moved first, the list's pages still read 1 / n."""
    import openpyxl

    soffice, pdftotext = print_tools()
    for name, n in (("list", 31), ("many", 310)):
        every = [p for p in _pdf_text(soffice, pdftotext, lists[name], tmp_path).split("\f") if p.strip()]
        legend = next(i for i, p in enumerate(every) if "Road damage repair candidates" in p)
        pages = every[:legend]
        ids = [m for p in pages for m in re.findall(r"^\s*(R-\d{6}(?:-\d+)?)\s", p, re.M)]
        ws = openpyxl.load_workbook(lists[name])["candidates"]
        assert ids == [ws.cell(row=r, column=1).value for r in range(2, n + 2)]
        assert all(p.count("candidate") == 1 for p in pages)  # the heading on every page, no page of columns alone
        assert [_footer(p) for p in pages] == [f"{k} / {len(pages)}" for k in range(1, len(pages) + 1)]
        assert ws.oddFooter.center.text == f"&P / {len(pages)}"
        assert [_footer(p) for p in every[legend:]] == [f"凡例 legend {k}" for k in range(1, len(every) - legend + 1)]
    assert len(pages) > 2  # 310 rows: several pages
    wb = openpyxl.load_workbook(lists["many"])
    wb.move_sheet("legend", offset=-1)
    wb.save(tmp_path / "legend_first.xlsx")
    first = [p for p in _pdf_text(soffice, pdftotext, tmp_path / "legend_first.xlsx", tmp_path).split("\f")
             if p.strip()]
    assert [_footer(p) for p in first][-len(pages):] == [f"{k} / {len(pages)}" for k in range(1, len(pages) + 1)]


def test_repair_list_headings_and_legend_print_whole(lists, tmp_path):
    """The sample's repair list printed by LibreOffice: every heading reads whole on the candidates page (its font
    named: a bold font without a name printed in LibreOffice's DejaVu Serif Bold, wider, and headings such as
    ``observations``, ``candidate id`` wrapped onto a third line the row does not show), and the legend is one page
    wide: each column row's key, Japanese and English heading on one printed line (its English column was printed
    on pages of its own, its long notes cut at the page's edge)."""
    import openpyxl

    from detector.report import XLSX_FONT

    soffice, pdftotext = print_tools()
    wb = openpyxl.load_workbook(lists["list"])
    ws, lg = wb["candidates"], wb["legend"]
    assert {ws.cell(row=1, column=j).font.name for j in range(1, ws.max_column + 1)} == {XLSX_FONT}
    every = [p for p in _pdf_text(soffice, pdftotext, lists["list"], tmp_path).split("\f") if p.strip()]
    legend = next(i for i, p in enumerate(every) if "Road damage repair candidates" in p)
    assert legend == 1  # the sample's 31 rows: one page
    shown = [ws.cell(row=1, column=j).value.split("\n")
             for j in range(1, ws.max_column + 1)
             if not ws.column_dimensions[ws.cell(row=1, column=j).column_letter].hidden]
    head = every[0].splitlines()[:2]
    assert [en for *_, en in shown if en not in head[1]] == []  # every English heading whole on its line
    assert [h[0] for h in shown if len(h) == 2 and h[0] not in head[0]] == []
    printed = "\n".join(every[legend:])
    keys = [(lg.cell(row=r, column=1).value, lg.cell(row=r, column=3).value) for r in range(1, lg.max_row + 1)]
    start = keys.index(("列 column", "heading (en)"))
    rows = [(k, en) for k, en in keys[start + 1:] if k]
    lines = {ln.split()[0]: ln for ln in printed.splitlines() if ln.split()}
    assert [(k, en) for k, en in rows if en not in lines.get(k, "")] == []
    assert [_footer(p) for p in every[legend:]] == [f"凡例 legend {k}" for k in range(1, len(every) - legend + 1)]
