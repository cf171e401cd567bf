"""The photo ledger (写真台帳 / 損傷写真台帳): ``patrol export STORE --format ledger --out X.xlsx``.

A printable workbook of the damages, one block each, in the repair list's order (``export.route_order``, as every
list): the damage's crop as a picture on the left, scaled to fit the block's photo area (its aspect kept, centred),
and its particulars in a small table beside it (``LEDGER_ROWS``: 番号, ID, 種別 with its code, 状態 (the crew's status
cell: the status, under the xlsx list's drop-down of the crew's words, ``report.status_validation``), 発見日, 最終確認,
路線 and the config's kept road fields, 緯度/経度 and a map link (the config's web map, ``export.map_url``, 地理院地図
by default, which desktop Excel opens in the browser; a ``geo:`` link for a phone's map app where it is null), then
blank cells for the field crew: 確認者, 確認日 (a date cell), 備考; 工区, the damage's repair job, after the road where the
registry holds a job record: ``report.job_columns``). The ID row's cell in the hidden column
``STAMP_COLUMN`` (outside the print area) holds the damage's ``status_changed_at`` as the xlsx list's column does. The
crop is the registry's own (``crop_jpeg``: the bytes ``report.write_photos`` writes beside the csv and xlsx lists, as
``crops.make_crop`` cut them in the run), embedded as it is: nothing is cut or encoded again.

Printing: A4 portrait, ``BLOCKS_PER_PAGE`` blocks a page with a page break after each page's last block, one page
wide (where many kept road fields make a block taller, printed smaller so a page still holds its blocks:
``print_scale``; not Excel's "fit to pages", which ignores the page breaks); the page
header names the municipality, the ledger and the day it was made, the footer the page of the ledger's own pages
(``1 / 11``: ``ledger_footer``, numbered from 1 and counting none of the legend's, however the workbook is printed). A
``legend`` sheet as the repair list's (``report.xlsx_legend``), its pages numbered on their own (``凡例 legend 1``).

Taken back: ``patrol import-verification STORE 写真台帳.xlsx`` (``store._read_xlsx`` knows the ledger by its sheet or
layout: ``is_ledger_sheet``) reads each block as a crew's list row (``read_blocks``: ID, 状態, 備考, 確認者, 確認日 and
that hidden time), named ``block 4 (R-000007)`` in its messages.

A damage without a photo (no crop stored: a registry of ``patrol locate``, whose detections come without images;
or a stored crop that cannot be read) keeps its block, its photo area saying ``NO_PHOTO``, and a note names it
(the console's warning): no damage is ever left out.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from .atomic import atomic_write
from .errors import UsageError, plural
from .pages import A4_IN, col_px, count, fit_scale, footer

LEDGER = "ledger"
BLOCKS_PER_PAGE = 3
NO_PHOTO = "写真なし / no photo"
#: the ledger sheet's columns (Excel character widths): A the photo, B a gap, C the labels, D the values
COLUMN_WIDTHS = {"A": 44, "B": 1.5, "C": 18, "D": 30}
#: a block's rows together, in points: the height of its photo area (3 blocks and 2 gaps: 680 pt of A4's ~750)
BLOCK_PT = 216.0
GAP_PT = 16.0
#: the least height of a table row (a 10 pt font): a block with many kept road fields grows (and the page shrinks)
ROW_MIN_PT = 13.0
#: the 備考 row is as tall as this many rows (room to write by hand)
NOTE_ROWS = 3
#: the page's margins (A4 portrait, ``pages.A4_IN``): what a page holds
MARGIN_SIDE_IN = 0.4
MARGIN_TOP_IN = 0.7
#: the photo's margin inside its area, in pixels
PHOTO_PAD_PX = 6
#: the table's rows: (key, Japanese label, English label); the kept road fields follow road_name (``report._columns``)
LEDGER_ROWS: list[tuple[str, str, str]] = [
    ("no", "番号", "No."),
    ("candidate_id", "ID", "id"),
    ("class", "種別", "damage type"),
    ("status_ja", "状態", "status"),  # the crew's: a drop-down of the words the import takes, the status pre-filled
    ("first_seen", "発見日", "first seen"),
    ("last_seen", "最終確認", "last seen"),
    ("road_name", "路線", "road"),
    ("lat", "緯度", "latitude"),
    ("lon", "経度", "longitude"),
    ("map", "地図", "map"),
    ("checked_by", "確認者", "checked by"),  # blank: for the field crew
    ("checked_at", "確認日", "checked at"),
    ("note", "備考", "note"),
]
#: the row after 最終確認 where any damage of the ledger was compared between two drives (grown since first seen,
#: ``Store.growth``, a registry's): ``悪化 ×2.25 (0.48 → 1.08 m²)`` where grown, ``×1.02 (…)`` where not, empty where
#: no two drives compare; as report.html's popup row 面積の変化 (``size_change``)
SIZE_ROW = ("size_change", "面積の変化", "size change")
CREW_ROWS = ("checked_by", "checked_at", "note")
#: the hidden column beside the table (not printed: the print area ends at D) whose cell on a block's ID row holds the
#: damage's ``status_changed_at`` (状態更新日時) as the xlsx list's column does: the import's stale-list check
STAMP_COLUMN = "E"
#: the Excel format of the 確認日 cell: a date the clerk types (2026/11/26) is kept as a date
CHECKED_AT_FORMAT = "yyyy-mm-dd"
MAP_TEXT = "地図アプリで開く / open in maps"  # the geo: link (no web map set: export.map_url null)
WEB_MAP_TEXT = "Web地図で開く / open the web map"  # the config's web map (export.map_url)


def check_options(out: str | Path, crs=None, encoding=None, max_mb=None) -> None:
    """``patrol export --format ledger``'s options, checked before any work: ``--out`` an .xlsx, and none of
    ``--crs``, ``--encoding``, ``--max-mb`` (UsageError, exit 2)."""
    for flag, v, why in (("--crs", crs, "its position is WGS 84 lat/lon with a map link; --crs is for the lists "
                                        "and the GIS files"),
                         ("--encoding", encoding, "an .xlsx workbook is Unicode; --encoding is the Shapefile's"),
                         ("--max-mb", max_mb, "--max-mb fits the html map for a mail; narrow the ledger with "
                                              "--status or --since")):
        if v is not None and not (isinstance(v, str) and not v.strip()):
            raise UsageError(f"is not for --format ledger ({why})", None, flag)
    if Path(out).suffix.lower() != ".xlsx":
        raise UsageError(f"{Path(out).name}: --format ledger writes an Excel workbook, X.xlsx", None, "--out")


def ledger_rows(df: pd.DataFrame, cfg) -> list[tuple[str, str, str]]:
    """``LEDGER_ROWS`` with the config's kept road fields that ``df`` carries after road_name (headed by their name)."""
    from .report import _columns

    rows = _columns(df, cfg, LEDGER_ROWS)
    if any(isinstance(v, (int, float)) and v == v for v in df.get("growth", [])):
        at = [k for k, *_ in rows].index("last_seen") + 1
        rows = [*rows[:at], SIZE_ROW, *rows[at:]]
    return rows


def size_change(rec: dict, flat=lambda v: v) -> str | None:
    """The ledger's 面積の変化 cell of a damage (``SIZE_ROW``): ``悪化 ×2.25 (0.48 → 1.08 m²)`` where grown, ``×1.02
    (0.48 → 0.49 m²)`` where compared and not, None where no two drives compare."""
    g, a, b = (flat(rec.get(k)) for k in ("growth", "area_first_m2", "area_last_m2"))
    if not all(isinstance(v, (int, float)) and v == v for v in (g, a, b)):
        return None
    return f"{'悪化 ' if flat(rec.get('grown')) == 1 else ''}×{g:.2f} ({a:.2f} → {b:.2f} m²)"


def geo_uri(lat: float, lon: float, label: str) -> str:
    """The map link of a damage without a web map (``export.map_url: null``): RFC 5870 ``geo:`` with a pin named
    ``label``, as report.html's "open in maps" (Android's map apps open it; desktop Excel on Windows cannot)."""
    from urllib.parse import quote

    ll = f"{lat:.7f},{lon:.7f}"
    return f"geo:{ll}?q={ll}({quote(label, safe='')})"


def _photo(crop: Any):
    """(openpyxl Image, None) of a stored crop, or (None, why) where there is none to show."""
    from openpyxl.drawing.image import Image

    data = bytes(crop) if isinstance(crop, (bytes, bytearray, memoryview)) else b""
    if not data:
        return None, "no crop stored"
    if not data.startswith(b"\xff\xd8\xff"):  # the registry keeps JPEGs (report.write_photos: the same test)
        return None, "its stored crop is not a JPEG"
    try:
        img = Image(io.BytesIO(data))  # embedded as these bytes (openpyxl keeps a JPEG as it is)
    except Exception:  # PIL cannot read it: a damaged crop
        return None, "its stored crop cannot be read"
    if not (img.width > 0 and img.height > 0):
        return None, "its stored crop is empty"
    return img, None


def _fit(w: int, h: int, box_w: float, box_h: float) -> tuple[int, int]:
    """``w`` x ``h`` scaled to fit ``box_w`` x ``box_h`` (pixels), aspect kept."""
    s = min(box_w / w, box_h / h)
    return max(1, int(w * s)), max(1, int(h * s))


_col_px = col_px  # an Excel column width in pixels (pages.col_px, shared with the list sheets')


def print_scale(block_pt: float) -> int:
    """The print scale (%) at which a page holds its ``BLOCKS_PER_PAGE`` blocks of ``block_pt`` points (and the gaps
    between them) and the sheet's width: 100 unless many kept road fields make the blocks taller (at least 40)."""
    width_in = sum(_col_px(w) for w in COLUMN_WIDTHS.values()) / 96
    height_in = (BLOCKS_PER_PAGE * block_pt + (BLOCKS_PER_PAGE - 1) * GAP_PT) / 72
    room_w, room_h = A4_IN[0] - 2 * MARGIN_SIDE_IN, A4_IN[1] - 2 * MARGIN_TOP_IN
    return fit_scale(width_in, height_in, room_w, room_h, least=40)  # pages.SLACK: room for the renderer's rounding


def _header_text(v: str) -> str:
    """Text for a page header: ``&`` doubled (Excel's header codes start with it)."""
    return str(v).replace("&", "&&")


class _PhotoAreas:
    """The blocks' photo areas merged (column A, a block's rows) in linear time, as ``ws.merge_cells`` merges them.

    ``ws.merge_cells`` adds the range to ``ws.merged_cells`` after checking it against every range merged before
    (openpyxl 3.1's ``MultiCellRange.add``: ``if cr not in self``), so a ledger's merges cost the square of its blocks
    (~14 s of a 3,000-damage export). The blocks' areas never overlap (each is its own rows, ``top``..``bottom``, a
    gap row or a page break between blocks), so that check is not needed: each block is merged by the public
    ``ws.merge_cells`` against an empty ``ws.merged_cells`` (it makes the area's other cells MergedCells, as ever),
    and ``close`` sets them all back, added in the order merged: the same sheet XML (tests/test_export_ledger.py)."""

    def __init__(self, ws):
        self.ws, self.ranges = ws, []

    def merge(self, top: int, bottom: int) -> None:
        from openpyxl.worksheet.cell_range import MultiCellRange

        self.ws.merged_cells = MultiCellRange()
        self.ws.merge_cells(start_row=top, start_column=1, end_row=bottom, end_column=1)
        self.ranges.extend(self.ws.merged_cells.ranges)

    def close(self) -> None:
        from openpyxl.worksheet.cell_range import MultiCellRange

        merged = MultiCellRange()
        for cr in self.ranges:  # one by one, as merge_cells adds them: the set's order, the XML's, is the same
            merged.ranges.add(cr)
        self.ws.merged_cells = merged


def write_ledger(df: pd.DataFrame, path: Path, cfg=None, notes: list[str] | None = None,
                 said: list[str] | None = None) -> Path:
    """Write ``df`` (``report.prepare``d, in route order, as ``report.export`` hands it) as the photo ledger.
    ``notes`` gets the warning naming the damages without a photo; ``said`` the line counting the photos."""
    from openpyxl import Workbook
    from openpyxl.drawing.spreadsheet_drawing import AnchorMarker, OneCellAnchor
    from openpyxl.drawing.xdr import XDRPositiveSize2D
    from openpyxl.styles import Alignment, Border, NamedStyle, PatternFill, Side
    from openpyxl.utils.units import pixels_to_EMU
    from openpyxl.worksheet.cell_range import MultiCellRange
    from openpyxl.worksheet.pagebreak import Break

    from .export import map_links
    from .report import (JOB_NOTE, XLSX_NUMBER_FORMATS, XlsxLink, _excel_time, _flat, _now, _tz, grown_note, map_note,
                         map_url, status_validation, xlsx_cell, xlsx_font, xlsx_legend)

    notes = [] if notes is None else notes
    tz = _tz(cfg)
    rows = ledger_rows(df, cfg)
    units = [NOTE_ROWS if k == "note" else 1 for k, *_ in rows]
    row_pt = max(ROW_MIN_PT, BLOCK_PT / sum(units))
    heights = [u * row_pt for u in units]
    area_w = _col_px(COLUMN_WIDTHS["A"])
    area_h = sum(heights) * 96 / 72

    wb = Workbook()
    ws = wb.active
    ws.title = LEDGER
    for letter, w in COLUMN_WIDTHS.items():
        ws.column_dimensions[letter].width = w
    ws.column_dimensions[STAMP_COLUMN].hidden = True
    stamp_col = len(COLUMN_WIDTHS) + 1
    status_cells: list[str] = []  # the crew's 状態 cells: one drop-down over them all
    thin = Side(style="thin", color="808080")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    label_fill = PatternFill("solid", fgColor="1F3A5F")  # the lists' heading colours (report.xlsx_header)
    label_font = xlsx_font(bold=True, color="FFFFFF", size=9)
    value_font = xlsx_font(size=10)
    centre = Alignment(horizontal="center", vertical="center", wrap_text=True)
    label_align = Alignment(vertical="center", shrink_to_fit=True)
    value_align = Alignment(vertical="center", shrink_to_fit=True)
    note_align = Alignment(vertical="top", wrap_text=True)
    # named styles: one per kind of cell, set by name (a font, fill and border set on each of 30,000 cells cost 3/4
    # of the export)
    for name, font, fill, align in (("ledger label", label_font, label_fill, label_align),
                                    ("ledger value", value_font, None, value_align),
                                    ("ledger note", value_font, None, note_align),
                                    ("ledger photo", xlsx_font(size=14, color="808080"), None, centre)):
        st = NamedStyle(name=name, font=font, border=box, alignment=align)
        if fill is not None:
            st.fill = fill
        wb.add_named_style(st)

    missing: list[tuple[str, str]] = []
    merges = _PhotoAreas(ws)
    n_photos = 0
    r = 1
    n = len(df)
    recs = df.to_dict("records")
    links = map_links(map_url(cfg), df["lat"], df["lon"], df["candidate_id"]) if n else []
    for i, rec in enumerate(recs):
        top = r
        cid = str(rec.get("candidate_id") or "")
        for (key, ja, en), h in zip(rows, heights):
            ws.row_dimensions[r].height = h
            lab = ws.cell(row=r, column=3)
            xlsx_cell(lab, ja if ja == en else f"{ja} {en}")
            lab.style = "ledger label"
            cell = ws.cell(row=r, column=4)
            cell.style = "ledger note" if key == "note" else "ledger value"
            v = _value(key, rec, i, tz, _flat, _excel_time)
            if key == "map" and v:  # the config's web map (export.map_url), else geo: (a phone's map app)
                v = (XlsxLink(WEB_MAP_TEXT, links[i]) if links[i] else
                     XlsxLink(v, geo_uri(float(rec["lat"]), float(rec["lon"]), cid)))
            xlsx_cell(cell, v, XLSX_NUMBER_FORMATS.get(key))
            if isinstance(v, XlsxLink):
                cell.border, cell.alignment = box, value_align  # the Hyperlink style, boxed as the table's cells
            elif key == "status_ja":
                status_cells.append(cell.coordinate)
            elif key == "checked_at":
                cell.number_format = CHECKED_AT_FORMAT
            elif key == "candidate_id":  # the stale-list time, as the xlsx list writes its column
                xlsx_cell(ws.cell(row=r, column=stamp_col),
                          _excel_time(_flat(rec.get("status_changed_at")), tz) or _flat(rec.get("status_changed_at")))
            r += 1
        bottom = r - 1
        merges.merge(top, bottom)
        area = ws.cell(row=top, column=1)
        area.style = "ledger photo"
        for rr in range(top + 1, bottom + 1):  # a merged range's border is drawn from its cells'
            ws.cell(row=rr, column=1).style = "ledger photo"
        img, why = _photo(rec.get("crop_jpeg"))
        if img is None:
            xlsx_cell(area, NO_PHOTO)
            missing.append((cid, why))
        else:
            w, h = _fit(img.width, img.height, area_w - 2 * PHOTO_PAD_PX, area_h - 2 * PHOTO_PAD_PX)
            img.width, img.height = w, h
            off_x, off_y = (area_w - w) / 2, (area_h - h) / 2  # centred in the block's photo area
            img.anchor = OneCellAnchor(_from=AnchorMarker(col=0, colOff=pixels_to_EMU(off_x), row=top - 1,
                                                          rowOff=pixels_to_EMU(off_y)),
                                       ext=XDRPositiveSize2D(pixels_to_EMU(w), pixels_to_EMU(h)))
            ws.add_image(img)
            n_photos += 1
        if (i + 1) % BLOCKS_PER_PAGE == 0 or i + 1 == n:
            if i + 1 < n:
                ws.row_breaks.append(Break(id=bottom))  # the page ends after this block
        else:
            ws.row_dimensions[r].height = GAP_PT
            r += 1
    merges.close()
    for k in range(0, len(status_cells), STATUS_CELLS_A_RULE):
        dv = status_validation(ja_first=True)  # the repair list's drop-down (its 状態(和) column's)
        dv.sqref = MultiCellRange(" ".join(status_cells[k:k + STATUS_CELLS_A_RULE]))
        ws.add_data_validation(dv)
    pages = count(n, BLOCKS_PER_PAGE)
    ws.print_area = f"A1:D{max(1, r - 1)}"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "portrait"
    # a fixed scale, not "fit to pages": Excel and LibreOffice ignore manual page breaks when fitting
    ws.page_setup.scale = print_scale(sum(heights))
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = MARGIN_SIDE_IN
    ws.page_margins.top = ws.page_margins.bottom = MARGIN_TOP_IN
    ws.page_margins.header = ws.page_margins.footer = 0.3
    made = _now(cfg)
    from .config import header_town

    if header_town(cfg):  # (none without --config, not "default"; no empty part either: "&L&C…" reads back wrong)
        ws.oddHeader.left.text = _header_text(header_town(cfg))
    ws.oddHeader.center.text = "損傷写真台帳"
    ws.oddHeader.right.text = f"出力日 {made:%Y-%m-%d}"
    ws.oddFooter.center.text = ledger_footer(pages)
    ws.page_setup.firstPageNumber, ws.page_setup.useFirstPageNumber = 1, True  # 1 even printed after the legend
    ws.sheet_view.showGridLines = False

    xlsx_legend(wb, cfg, "道路損傷 写真台帳 / Road damage photo ledger", ("件数 damages", n),
                [("写真 photos", f"{n_photos} 枚 (写真なし {len(missing)})",
                  "each damage's crop as the registry keeps it (the lists' photo), one block a damage, "
                  f"{BLOCKS_PER_PAGE} a page"),
                 map_note(cfg, geo=True),
                 ("状態 status", "現地確認の結果: 一覧から選ぶ (出力時の状態を記入済み)",
                  "the crew's judgement: pick from the list (filled in with the status when exported); "
                  "patrol import-verification reads it"),
                 ("確認者・確認日・備考", "現地確認の記入欄 (空欄)", "blank: for the field crew"),
                 ("状態更新日時 (列 E, 非表示)", "各ブロックの ID の行: 出力時の状態更新日時",
                  "hidden column E on each block's ID row: the damage's status_changed_at when exported; the import "
                  "holds a block the office changed since (README: Stale lists)"),
                 *([JOB_NOTE] if "job_id" in df else []),
                 *([(f"{SIZE_ROW[1]} {SIZE_ROW[2]}", "推定面積 初回 → 最新 (倍率); 悪化: " + grown_note(cfg)[1],
                     "est. area, first → latest drive (ratio); 悪化: " + grown_note(cfg)[2])]
                   if any(k == SIZE_ROW[0] for k, *_ in rows) else [])],
                [(k, ja, en) for k, ja, en in rows])
    with atomic_write(path, "wb") as fh:
        buf = io.BytesIO()
        wb.save(buf)
        fh.write(buf.getvalue())
    if missing:
        notes.append(missing_note(path, missing))
    if said is not None:
        said.append(f"{plural(n_photos, 'photo')} in the ledger, {BLOCKS_PER_PAGE} damages a page "
                    f"({plural(pages, 'page')}" + (f"; {len(missing)} without a photo)" if missing else ")"))
    return path


def ledger_footer(pages: int) -> str:
    """The ledger sheet's footer: its page of its own ``pages`` (``1 / 11``), the total written as text. A header
    code's total (``&N``) counts every page printed, the legend's too when the whole workbook is printed (LibreOffice's
    PDF export, Excel's "Print Entire Workbook": ``1 / 14``), and no code counts one sheet's; the ledger's pages are
    known (``BLOCKS_PER_PAGE`` blocks a page, a page break after each page's last block, one page wide: ``pages``)."""
    return footer(pages)


#: the most cells one drop-down rule lists (its cell list, sqref, kept short: one rule a 1,000 blocks)
STATUS_CELLS_A_RULE = 1000
#: the most damages without a photo the warning names (the rest are counted)
MISSING_NAMED = 20


def missing_note(path: str | Path, missing: list[tuple[str, str]]) -> str:
    """The warning naming the damages without a photo (``(id, why)``, in the ledger's order), grouped by why, the
    first ``MISSING_NAMED`` named."""
    named, by_why = missing[:MISSING_NAMED], {}
    for cid, why in named:
        by_why.setdefault(why, []).append(cid)
    more = f"; and {len(missing) - len(named)} more" if len(missing) > len(named) else ""
    return (f"{Path(path).name}: {plural(len(missing), 'damage')} without a photo, each kept with '{NO_PHOTO}' in "
            "its block: " + "; ".join(f"{', '.join(ids)} ({why})" for why, ids in by_why.items()) + more)


def _value(key: str, rec: dict, i: int, tz, flat, excel_time) -> Any:
    """The table cell of row ``key`` for the damage ``rec`` (the ``i``-th), typed for ``report.xlsx_cell``."""
    if key == "no":
        return i + 1
    if key in CREW_ROWS:
        return None
    if key == "class":
        code, ja = flat(rec.get("class")) or "", flat(rec.get("class_name_ja")) or ""
        return f"{ja} ({code})" if ja and ja != code else code or None
    if key == "size_change":
        return size_change(rec, flat)
    if key == "map":
        lat, lon = flat(rec.get("lat")), flat(rec.get("lon"))
        return MAP_TEXT if isinstance(lat, (int, float)) and isinstance(lon, (int, float)) else None
    v = flat(rec.get(key))
    if key in ("first_seen", "last_seen"):  # ISO text with offset -> the municipality's wall time
        v = excel_time(v, tz) or v
    return v


# ------------------------------------------------------------------------------ read back (import-verification)
#: what a ledger block gives ``patrol import-verification``: the columns of a crew's list row, the block's cells
#: (ID, 状態, 備考, 確認者, 確認日, and the hidden ``STAMP_COLUMN`` cell of its ID row)
IMPORT_COLUMNS = ["candidate_id", "status", "note", "checked_by", "checked_at", "status_changed_at"]
#: the rows a block must have for the import to read it (its ID, the crew's 状態 and their cells)
IMPORT_ROWS = ("candidate_id", "status_ja", "checked_by", "checked_at", "note")


def _label_keys() -> dict[str, str]:
    """A table label as the ledger writes it (``ID id``), or its Japanese part alone, -> its row's key."""
    out: dict[str, str] = {}
    for key, ja, en in LEDGER_ROWS:
        for t in (ja if ja == en else f"{ja} {en}", ja):
            out.setdefault(" ".join(t.split()), key)
    return out


def is_ledger_sheet(sheetnames: list[str], first_label: Any) -> bool:
    """Whether a workbook is a photo ledger: it has the ``ledger`` sheet (and no repair list's ``candidates``), or its
    first sheet's C1 is a block's first label (番号 No.: the sheet renamed). Never by the file's name."""
    if "candidates" in sheetnames:
        return False
    return LEDGER in sheetnames or " ".join(str(first_label or "").split()) == "番号 No."


def read_blocks(cells: Iterable[tuple], text: Callable[[Any], str]):
    """The ledger sheet's rows (``cells``: each row's C, D and ``STAMP_COLUMN`` values, from row 1) as a crew's list
    (``store.CrewTable``): one row of ``IMPORT_COLUMNS`` a block, named ``block 4 (R-000007)`` in the import's
    messages (its 番号 as printed; its place in the sheet where that cell is gone) and numbered by its first sheet row.

    A block begins at its 番号 label, or where a label of the block before comes again (its 番号 row deleted). A block
    lacking one of ``IMPORT_ROWS`` (rows deleted), or whose ID cell is empty while the crew's cells say something,
    is out of shape: ``bad`` says which and why, and the other blocks are read as they are. A 番号 that skips (3,
    then 5) is a block deleted: ``notes`` says so (nothing of it is imported)."""
    from .store import CrewTable

    keys = _label_keys()
    blocks: list[dict] = []
    cur: dict | None = None
    for r, row in enumerate(cells, 1):
        row = tuple(row) + (None,) * (3 - len(row))
        key = keys.get(" ".join(str(row[0] or "").split()))
        if key is None:
            continue  # a kept road field, a gap, an empty row
        if cur is None or key == "no" or key in cur["cells"]:
            cur = {"top": r, "cells": {}}
            blocks.append(cur)
        cur["cells"][key] = (row[1], row[2])
    table = CrewTable(rows=[list(IMPORT_COLUMNS)], lines=[], what="ledger")
    if not blocks:
        return table
    prev = 0
    for k, b in enumerate(blocks, 1):
        c = b["cells"]
        no = c.get("no", (None,))[0]
        no = int(no) if isinstance(no, (int, float)) and not isinstance(no, bool) and float(no).is_integer() \
            and no > 0 else None
        if no is not None:
            if no > prev + 1:
                gone = f"block {prev + 1}" if no == prev + 2 else f"blocks {prev + 1}-{no - 1}"
                table.notes.append(f"{gone} not in the ledger (番号 {prev or '-'} is followed by {no}): deleted? "
                                   "nothing of them is imported")
            prev = max(prev, no)
        cid = text(c.get("candidate_id", (None,))[0]).strip()
        name = f"block {no if no is not None else f'#{k}'}" + (f" ({cid})" if cid else "")
        line = b["top"]
        table.where[line] = name
        lacks = [f"{ja} ({en})" for key, ja, en in LEDGER_ROWS if key in IMPORT_ROWS and key not in c]
        crew = [text(c[key][0]).strip() for key in ("status_ja", "checked_by", "checked_at", "note") if key in c]
        if lacks:
            table.bad.append((line, f"its {', '.join(lacks)} row{'s' if len(lacks) > 1 else ''} not found (the "
                                    "block's rows edited out of shape): not applied; copy the block from a newly "
                                    "exported ledger and write the crew's cells again"))
            continue
        if not cid:
            if any(crew):
                table.bad.append((line, "its ID cell is empty: the damage cannot be told; not applied (write the ID "
                                        "back as printed on the crew's sheet)"))
            continue
        table.rows.append([cid, text(c["status_ja"][0]), text(c["note"][0]), text(c["checked_by"][0]),
                           text(c["checked_at"][0]), text(c["candidate_id"][1])])
        table.lines.append(line)
    return table
