"""A printed sheet's pages, counted where it is written: the photo ledger's (``ledger.write_ledger``) and the list
sheets' (``report.xlsx_print_setup``: the repair list's, the patrol log's, the due list's, the stats').

The page footer's total is written as a number (``footer``: ``1 / 11``), not the header code ``&N``: ``&N`` counts
every page printed, the other sheets' too when the whole workbook is printed (LibreOffice's PDF export, Excel's "Print
Entire Workbook": ``1 / 14`` on an 11-page sheet), and no header code counts one sheet's. A sheet's pages are known
only where the writer fixes them, so each printed sheet is laid out so that its pages can be counted: a fixed print
scale (``fit_scale``: not Excel's "fit to pages", which ignores manual page breaks, and whose scale is the
renderer's), rows of a fixed height, and a manual page break after each page's last row (or block), each page's rows
chosen with room to spare (``SLACK``) so that the renderer never breaks a page sooner: the pages are
``count(rows, per_page)``, whatever a renderer's fonts (wrapped text or a CJK fallback font never grows a row of a
set height)."""

from __future__ import annotations

import math

#: A4 (inches, portrait: width, height)
A4_IN = (8.27, 11.69)
#: what of a page's room a sheet may fill: a little room for the renderer's rounding (column widths, row heights)
SLACK = 0.97
#: the least print scale Excel takes (%)
LEAST_SCALE = 10


def col_px(width: float) -> float:
    """An Excel column width (characters of the default font) in pixels, as Excel draws it."""
    return int(width * 7 + 5)


def fit_scale(width_in: float, height_in: float | None, room_w_in: float, room_h_in: float,
              least: int = LEAST_SCALE) -> int:
    """The print scale (%, at most 100, at least ``least``) at which ``width_in`` x ``height_in`` inches of sheet fit
    a page's room (``SLACK`` of it); ``height_in`` None: the width alone (one page wide, as many pages down)."""
    fit = room_w_in / width_in if width_in > 0 else math.inf
    if height_in:
        fit = min(fit, room_h_in / height_in)
    return max(least, min(100, int(fit * SLACK * 100)))


def rows_per_page(room_h_in: float, scale: int, title_pt: float, row_pt: float) -> int:
    """How many rows of ``row_pt`` points a page holds at ``scale`` % under the print title rows (``title_pt``
    points, printed on every page), ``SLACK`` of its room (at least 1)."""
    room_pt = room_h_in * 72 * SLACK * 100 / scale
    return max(1, int((room_pt - title_pt) // row_pt))


def count(n: int, per_page: int) -> int:
    """The pages of ``n`` rows (or blocks), ``per_page`` a page and a page break after each page's last: at least 1
    (an empty sheet prints its heading)."""
    return max(1, -(-n // per_page))


def footer(pages: int) -> str:
    """A sheet's page footer: its page of its own ``pages`` (``1 / 11``), the total written as text (not ``&N``)."""
    return f"&P / {pages}"
