"""`patrol export --format ledger`: the photo ledger (写真台帳), an A4 workbook of one block a damage, its crop
embedded beside its particulars, 3 blocks a page. Real data: the sample drive's registry (`patrol locate` of the two
passes' detections, the `located` fixture of test_cli) given the crops `patrol run` cuts (``crops.make_crop`` of each
damage's best frame of the sample drive and box), one of them then lost (NULL) and one damaged."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import TOYAMA, need, print_tools
from test_cli import assert_user_error, located, ok, patrol, roads  # noqa: F401 (fixtures)

LABELS = {"番号 No.": "no", "ID id": "candidate_id", "種別 damage type": "class", "状態 status": "status",
          "発見日 first seen": "first_seen", "最終確認 last seen": "last_seen", "路線 road": "road_name",
          "緯度 latitude": "lat", "経度 longitude": "lon", "地図 map": "map", "確認者 checked by": "checked_by",
          "確認日 checked at": "checked_at", "備考 note": "note"}


def _crops(store: Path) -> dict[str, bytes]:
    """Each damage's crop as `patrol run` cuts it (make_crop of its best frame and box; no privacy search: fast)."""
    import cv2

    from detector.config import Config
    from detector.crops import make_crop
    from detector.store import Store

    cfg = Config(privacy={"blur_faces": False, "blur_plates": False})
    with Store(store) as st:
        df = st.query(lists=False)
    out = {}
    for r in df.to_dict("records"):
        img = cv2.imread(str(need(TOYAMA / r["best_drive"] / r["best_image"])))
        out[r["candidate_id"]] = make_crop(img, [r[f"best_{k}"] for k in ("x1", "y1", "x2", "y2")], cfg,
                                           label=f"{r['class']} {r['confidence']:.2f}")
    return out


@pytest.fixture(scope="module")
def photographed(located, tmp_path_factory) -> dict:
    """The sample registry with every damage's crop, then R-… #4 (route order) without one and #8 damaged."""
    from detector.store import Store

    tmp = tmp_path_factory.mktemp("ledger")
    store = tmp / "registry.gpkg"
    store.write_bytes(located["store"].read_bytes())
    crops = _crops(store)
    ok(patrol("export", store, "--format", "csv", "--out", tmp / "route.csv"))
    with open(tmp / "route.csv", encoding="utf-8-sig", newline="") as fh:
        route = [r["candidate_id"] for r in csv.DictReader(fh)]
    lost, damaged = route[3], route[7]
    with Store(store) as st:
        for cid, b in crops.items():
            st.con.execute("UPDATE candidates SET crop_jpeg=? WHERE candidate_id=?", (b, cid))
        st.con.execute("UPDATE candidates SET crop_jpeg=NULL WHERE candidate_id=?", (lost,))
        st.con.execute("UPDATE candidates SET crop_jpeg=? WHERE candidate_id=?", (b"\xff\xd8\xff\xe0 torn", damaged))
        st.con.commit()
        q = st.query(lists=False).set_index("candidate_id")
    crops[damaged] = b"\xff\xd8\xff\xe0 torn"
    del crops[lost]
    return {"store": store, "q": q, "route": route, "crops": crops, "lost": lost, "damaged": damaged, "tmp": tmp}


def _blocks(ws) -> list[dict]:
    """The ledger sheet's blocks: first and last row, the table's values by key, the photo area's text."""
    blocks, cur = [], None
    for r in range(1, ws.max_row + 1):
        label = ws.cell(row=r, column=3).value
        if label == "番号 No.":
            cur = {"top": r, "values": {}, "area": ws.cell(row=r, column=1).value}
            blocks.append(cur)
        if label is not None:
            key = LABELS.get(label, label)  # a kept road field: its own name
            cur["values"][key] = ws.cell(row=r, column=4)
            cur["bottom"] = r
    return blocks


def test_ledger_has_a_block_per_damage_with_its_photo_and_particulars(photographed, tmp_path):
    """Every damage of the registry in the repair list's order, one block each: its crop embedded (the registry's
    bytes as they are) and anchored in the block's photo area, aspect kept; the table's cells as the registry's row
    (the class in Japanese with its code, the status in Japanese, first/last seen on the municipality's clock,
    lat/lon as numbers, a link to GSI Maps: the shipped export.map_url), the crew's cells blank; a page break after every 3rd block; A4 portrait
    with the municipality and the day in the header, the page in the footer. The damage whose crop is lost and the
    one whose crop is damaged keep their blocks, saying 写真なし, and the warning names both."""
    import openpyxl
    from PIL import Image

    from detector.ledger import BLOCKS_PER_PAGE, NO_PHOTO

    q, route, crops = photographed["q"], photographed["route"], photographed["crops"]
    out = tmp_path / "写真台帳.xlsx"
    r = ok(patrol("export", photographed["store"], "--format", "ledger", "--out", out))
    assert f"{len(route)} damages → {out}" in " ".join(r.stdout.split())
    assert "29 photos in the ledger" in r.stdout, r.stdout
    warning = " ".join(r.stderr.split())
    assert "warning:" in warning and "2 damages without a photo" in warning, r.stderr
    assert photographed["lost"] in warning and photographed["damaged"] in warning
    assert "no crop stored" in warning and "cannot be read" in warning
    assert not list(tmp_path.glob("*_crops"))  # the photos are in the workbook, no folder beside it

    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["ledger", "legend"]
    ws = wb["ledger"]
    blocks = _blocks(ws)
    assert [b["values"]["candidate_id"].value for b in blocks] == route  # every damage, the lists' order
    tz = ZoneInfo("Asia/Tokyo")
    for no, b in enumerate(blocks, 1):
        v, row = b["values"], q.loc[b["values"]["candidate_id"].value]
        assert v["no"].value == no
        assert v["class"].value == f"{row['class_name_ja']} ({row['class']})"
        assert v["status"].value == "新規"
        for k in ("first_seen", "last_seen"):
            assert v[k].value == datetime.fromisoformat(row[k]).astimezone(tz).replace(tzinfo=None)
        assert v["road_name"].value == row["road_name"]  # None: the sample's roads have no names
        assert v["lat"].value == pytest.approx(row["lat"], abs=1e-9)
        assert v["lon"].value == pytest.approx(row["lon"], abs=1e-9)
        assert v["map"].hyperlink.target == f"https://maps.gsi.go.jp/#18/{row['lat']:.7f}/{row['lon']:.7f}/"
        assert all(v[k].value is None for k in ("checked_by", "checked_at", "note"))
    by_top = {b["top"]: b for b in blocks}
    pictures = {}
    for img in ws._images:
        a = img.anchor
        b = by_top[a._from.row + 1]  # anchored at its block's first row, in the photo column
        assert a._from.col == 0 and b["values"]["candidate_id"].value not in pictures
        data = img._data()
        w, h = Image.open(io.BytesIO(data)).size
        assert a.ext.width / a.ext.height == pytest.approx(w / h, rel=0.02)  # aspect kept
        col_px = ws.column_dimensions["A"].width * 7 + 5
        rows_px = sum(ws.row_dimensions[i].height for i in range(b["top"], b["bottom"] + 1)) * 96 / 72
        assert a._from.colOff + a.ext.width <= col_px * 9525 and a._from.rowOff + a.ext.height <= rows_px * 9525
        pictures[b["values"]["candidate_id"].value] = data
    no_photo = {photographed["lost"], photographed["damaged"]}
    assert set(pictures) == set(route) - no_photo
    assert all(pictures[c] == crops[c] for c in pictures)  # the registry's crop as it is, in its own block
    for b in blocks:
        assert (b["area"] == NO_PHOTO) == (b["values"]["candidate_id"].value in no_photo)
    breaks = [br.id for br in ws.row_breaks.brk]
    assert breaks == [blocks[i]["bottom"] for i in range(BLOCKS_PER_PAGE - 1, len(blocks) - 1, BLOCKS_PER_PAGE)]
    assert len(breaks) == (len(route) - 1) // BLOCKS_PER_PAGE == 10
    assert str(ws.page_setup.paperSize) == ws.PAPERSIZE_A4 and ws.page_setup.orientation == "portrait"
    assert not ws.sheet_properties.pageSetUpPr.fitToPage  # "fit to pages" would ignore the page breaks
    # no --config: no town in the header (it printed "default", the default config's placeholder name)
    assert not ws.oddHeader.left.text and ws.oddHeader.right.text.startswith("出力日 20")
    city = tmp_path / "city.yaml"
    city.write_text("municipality: 富山市 & 道路課\n", encoding="utf-8")
    named = tmp_path / "写真台帳-富山市.xlsx"
    ok(patrol("export", photographed["store"], "--format", "ledger", "--out", named, "--config", city))
    assert openpyxl.load_workbook(named).worksheets[0].oddHeader.left.text == "富山市 && 道路課"  # (& is a header code)
    # the ledger's own 11 pages, written as a number (&N would count the legend's too), numbered from 1 on each sheet
    assert ws.oddFooter.center.text == f"&P / {len(breaks) + 1}" == "&P / 11"
    assert wb["legend"].oddFooter.center.text == "凡例 legend &P"
    for sheet in (ws, wb["legend"]):
        assert sheet.page_setup.useFirstPageNumber and sheet.page_setup.firstPageNumber == 1
    legend = [c.value for c in wb["legend"]["A"]]
    assert "自治体 municipality" in legend and "件数 damages" in legend


def test_ledger_follows_status_and_keeps_road_fields(photographed, tmp_path):
    """--status narrows the ledger as the lists; a config keeping road fields puts them after 路線, as the lists do,
    with the road ledger's values of each damage's segment."""
    import openpyxl

    from test_road_fields import KEEP, OUT_NAMES
    from test_road_fields import ledger as road_ledger

    store = tmp_path / "registry.gpkg"
    store.write_bytes(photographed["store"].read_bytes())
    keep = photographed["route"][:4]
    for cid in keep:
        ok(patrol("status", store, cid, "--set", "confirmed"))
    net = tmp_path / "ledger.gpkg"
    want = road_ledger(need(TOYAMA / "roads.geojson"), net)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("roads:\n  keep_fields: [" + ", ".join(KEEP) + "]\n", encoding="utf-8")
    out = tmp_path / "確認済み.xlsx"
    ok(patrol("export", store, "--format", "ledger", "--status", "確認済み", "--roads", net, "--config", cfg,
              "--out", out))
    ws = openpyxl.load_workbook(out)["ledger"]
    blocks = _blocks(ws)
    assert [b["values"]["candidate_id"].value for b in blocks] == keep
    q = photographed["q"]
    for b in blocks:
        labels = list(b["values"])
        at = labels.index("road_name") + 1
        assert labels[at:at + len(OUT_NAMES)] == OUT_NAMES
        seg = q.loc[b["values"]["candidate_id"].value, "segment_id"]
        assert {k: b["values"][k].value for k in OUT_NAMES} == want[seg]
        assert b["values"]["status"].value == "確認済み"
    assert [br.id for br in ws.row_breaks.brk] == [blocks[2]["bottom"]]
    assert 40 <= ws.page_setup.scale < 100  # taller blocks: printed smaller, 3 still on a page


@pytest.mark.parametrize("args, flag", [(["--out", "台帳.pdf"], "--out"),
                                        (["--out", "台帳.xlsx", "--crs", "EPSG:6675"], "--crs"),
                                        (["--out", "台帳.xlsx", "--encoding", "utf-8"], "--encoding"),
                                        (["--out", "台帳.xlsx", "--max-mb", "5"], "--max-mb")])
def test_ledger_refuses_what_does_not_fit_it(located, tmp_path, args, flag):
    """An --out other than .xlsx, --crs, --encoding and --max-mb are refused (exit 2, naming the option) before the
    registry is read; nothing is written."""
    args = [str(tmp_path / a) if a.startswith("台帳") else a for a in args]
    r = patrol("export", located["store"], "--format", "ledger", *args)
    assert_user_error(r, 2, flag)
    assert "ledger" in r.stderr
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------- the ledger filled in, imported back
#: the xlsx repair list's header (its English line) of each ledger cell a clerk fills
LIST_HEADS = {"status": "status (ja)", "note": "status note", "checked_by": "checked by", "checked_at": "checked at"}
#: the time the in-process imports run at (a pinned clock: the crew's dates below are not in its future)
LATER = datetime(2026, 12, 10, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


def _registry(photographed, tmp_path: Path, name: str = "registry.gpkg") -> Path:
    store = tmp_path / name
    store.write_bytes(photographed["store"].read_bytes())
    return store


def _fill(ledger: Path, cells: dict[str, dict]) -> Path:
    """The ledger as an office clerk fills it in Excel from the crew's sheets: ``cells`` by damage id, by row key
    (``status`` 状態, ``note`` 備考, ``checked_by`` 確認者, ``checked_at`` 確認日)."""
    import openpyxl

    wb = openpyxl.load_workbook(ledger)
    for b in _blocks(wb["ledger"]):
        for key, v in cells.get(b["values"]["candidate_id"].value, {}).items():
            b["values"][key].value = v
    wb.save(ledger)
    return ledger


def _state(store: Path) -> tuple[list, list]:
    """The registry's crew-facing state: each damage's status columns, and its status history (the import's file
    name, in ``source``, left out)."""
    from detector.store import Store

    with Store(store) as st:
        q = st.query(lists=False)
        h = st.history()
    cols = ["candidate_id", "status", "status_note", "status_changed_at", "repaired_at", "checked_by", "issue_type"]
    return (q[cols].astype(object).where(q[cols].notna(), None).values.tolist(),
            h.drop(columns="source").astype(object).where(h.drop(columns="source").notna(), None).values.tolist())


def test_ledger_status_cells_are_the_crews_drop_down_and_carry_the_stale_list_time(photographed, tmp_path):
    """Each block's 状態 cell is the crew's: pre-filled with the status, under the xlsx list's drop-down of the crew's
    words (its 状態(和) column's rule: the same words, prompt and error box); 確認日 is a date cell; the block's ID row
    carries the damage's status_changed_at in the hidden column E, outside the print area, as the xlsx list has it."""
    import openpyxl

    from detector.store import Store

    store = _registry(photographed, tmp_path)
    out, lst = tmp_path / "写真台帳.xlsx", tmp_path / "list.xlsx"
    ok(patrol("export", store, "--format", "ledger", "--out", out))
    ok(patrol("export", store, "--format", "xlsx", "--out", lst))
    ws = openpyxl.load_workbook(out)["ledger"]
    lw = openpyxl.load_workbook(lst)["candidates"]
    ja_col = next(c.column_letter for c in lw[1] if str(c.value).endswith("status (ja)"))
    want = next(dv for dv in lw.data_validations.dataValidation if f"{ja_col}2" in dv.sqref)
    blocks = _blocks(ws)
    dvs = ws.data_validations.dataValidation
    assert dvs and all((dv.formula1, dv.prompt, dv.error, dv.type, dv.errorStyle) ==
                       (want.formula1, want.prompt, want.error, want.type, want.errorStyle) for dv in dvs)
    covered = {str(c) for dv in dvs for rng in dv.sqref.ranges for c in [rng.coord]}
    assert covered == {b["values"]["status"].coordinate for b in blocks}
    with Store(store) as st:
        changed = st.query(lists=False).set_index("candidate_id")["status_changed_at"]
    tz = ZoneInfo("Asia/Tokyo")
    assert ws.column_dimensions["E"].hidden and ws.print_area.endswith(f"$A$1:$D${blocks[-1]['bottom']}")
    for b in blocks:
        cid = b["values"]["candidate_id"]
        assert b["values"]["status"].value == "新規"
        assert b["values"]["checked_at"].number_format == "yyyy-mm-dd"
        stamp = ws.cell(row=cid.row, column=5).value
        assert stamp == datetime.fromisoformat(changed[cid.value]).astimezone(tz).replace(tzinfo=None)


def test_ledger_filled_in_imports_as_the_xlsx_list_does(photographed, tmp_path):
    """The clerk types the crew's sheets into the ledger (補修済み with 確認日 as Excel keeps a typed date, a note, a
    name; 確認済み with 確認日 as text; a note alone): imported, the registry changes exactly as with the same cells
    in the xlsx repair list (statuses, notes, checkers, times and history), the rest unchanged."""
    from detector.store import Store

    route = photographed["route"]
    fill = {route[0]: {"status": "補修済み", "checked_at": datetime(2026, 12, 5), "note": "舗装補修 済",
                       "checked_by": "山田"},
            route[4]: {"status": "確認済み", "checked_at": "2026/12/4", "checked_by": "佐藤"},
            route[9]: {"note": "経過観察"}}
    a, b = _registry(photographed, tmp_path, "a.gpkg"), _registry(photographed, tmp_path, "b.gpkg")
    ledger, lst = tmp_path / "写真台帳.xlsx", tmp_path / "list.xlsx"
    ok(patrol("export", a, "--format", "ledger", "--out", ledger))
    ok(patrol("export", b, "--format", "xlsx", "--out", lst))
    before = _state(a)
    _fill(ledger, fill)
    for cid, cells in fill.items():
        _crew_edits_xlsx(lst, cid, {LIST_HEADS[k]: v for k, v in cells.items()})
    with Store(a) as st:
        rep = st.import_verification(ledger, now=LATER)
    with Store(b) as st:
        want = st.import_verification(lst, now=LATER)
    assert rep.what == "ledger" and (rep.applied, rep.noted, rep.unmatched, rep.held) == (
        [route[0], route[4]], [route[9]], [], []), rep
    assert (rep.applied, rep.noted, rep.unchanged) == (want.applied, want.noted, want.unchanged)
    assert len(rep.unchanged) == len(route) - 3
    after, want_state = _state(a), _state(b)
    assert after[0] == want_state[0] and after != before
    # the histories, row by row (a difference shown as the rows that differ, not the whole list cut short)
    assert [r for r in after[1] if r not in want_state[1]] == [r for r in want_state[1] if r not in after[1]] == []
    assert after[1] == want_state[1]  # and in the same order
    q = {r[0]: r for r in after[0]}
    assert q[route[0]][1:6] == ["repaired", "舗装補修 済", "2026-12-05T00:00:00+09:00", "2026-12-05T00:00:00+09:00",
                                "山田"]
    assert q[route[4]][1:4] == ["confirmed", None, "2026-12-04T00:00:00+09:00"]
    lines = {rep.at(line) for line, *_ in rep.changes}
    assert lines == {f"block 1 ({route[0]})", f"block 5 ({route[4]})"}


def _crew_edits_xlsx(xlsx: Path, cid: str, cells: dict) -> Path:
    from test_store import _crew_edits_xlsx as edit

    return edit(xlsx, cid, cells)


def test_untouched_ledger_imports_as_all_unchanged(photographed, tmp_path):
    """A ledger imported as exported (the crew found every damage as the registry has it): all unchanged, the
    registry as it was."""
    from detector.store import Store

    store = _registry(photographed, tmp_path)
    out = tmp_path / "写真台帳.xlsx"
    ok(patrol("export", store, "--format", "ledger", "--out", out))
    with Store(store) as st:
        before = st.dump()
    r = ok(patrol("import-verification", store, out))
    n = len(photographed["route"])
    assert f"applied 0, notes 0, unchanged {n}, outdated 0, not applied 0, held 0" in r.stdout, r.stdout
    assert not r.stderr.strip(), r.stderr
    with Store(store) as st:
        assert st.dump() == before


def test_stale_ledger_is_held_as_a_stale_list(photographed, tmp_path):
    """The office changed a damage after the ledger was printed (patrol status: confirmed); the crew's 対象外 for it
    is held, not applied, named by its block; another block's word is applied; the registry keeps the office's."""
    from detector.store import Store

    route = photographed["route"]
    store = _registry(photographed, tmp_path)
    out = tmp_path / "写真台帳.xlsx"
    ok(patrol("export", store, "--format", "ledger", "--out", out))
    ok(patrol("status", store, route[2], "--set", "confirmed", "--who", "office"))
    _fill(out, {route[2]: {"status": "対象外", "note": "マンホール"}, route[3]: {"status": "確認済み"}})
    r = ok(patrol("import-verification", store, out))
    assert "applied 1, notes 0" in r.stdout and "held 1" in r.stdout, r.stdout
    err = " ".join(r.stderr.split())
    assert (f"{out}: block 3 ({route[2]}): {route[2]}: not applied: the registry changed the damage after the list "
            "was exported") in err, err
    assert "'マンホール'" in err
    with Store(store) as st:
        q = st.query(lists=False).set_index("candidate_id")
    assert (q.loc[route[2], "status"], q.loc[route[3], "status"]) == ("confirmed", "confirmed")


def test_ledger_edited_out_of_shape_names_the_blocks_and_keeps_the_good_ones(photographed, tmp_path):
    """Block 2's ID cell emptied, block 5 deleted whole, block 7's 状態 row deleted: each named (file, block, why;
    the deleted block as a warning), exit 3; block 3's word and block 8's note are still applied."""
    import openpyxl

    from detector.store import Store

    route = photographed["route"]
    store = _registry(photographed, tmp_path)
    out = tmp_path / "写真台帳.xlsx"
    ok(patrol("export", store, "--format", "ledger", "--out", out))
    _fill(out, {route[1]: {"status": "確認済み"}, route[2]: {"status": "補修予定", "checked_by": "山田"},
                route[6]: {"status": "確認済み"}, route[7]: {"note": "段差"}})
    wb = openpyxl.load_workbook(out)
    ws = wb["ledger"]
    blocks = _blocks(ws)
    blocks[1]["values"]["candidate_id"].value = None
    ws.delete_rows(blocks[6]["values"]["status"].row)  # (from the bottom up: the rows above keep their numbers)
    ws.delete_rows(blocks[4]["top"], blocks[5]["top"] - blocks[4]["top"])
    wb.save(out)
    r = patrol("import-verification", store, out)
    assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr
    err = " ".join(r.stderr.split())
    assert f"{out}: block 2: its ID cell is empty" in err, err
    assert f"{out}: block 7 ({route[6]}): its 状態 (status) row not found" in err, err
    assert f"warning: {out}: block 5 not in the ledger (番号 4 is followed by 6)" in err, err
    assert f"error: {out}: 2 blocks not applied" in err, err
    with Store(store) as st:
        q = st.query(lists=False).set_index("candidate_id")
    assert (q.loc[route[2], "status"], q.loc[route[2], "checked_by"]) == ("scheduled", "山田")
    assert q.loc[route[7], "status_note"] == "段差"
    assert q.loc[route[1], "status"] == q.loc[route[6], "status"] == "new"


# ---------------------------------------------------------------------------- the photo areas merged in linear time
def _many(photographed, copies: int = 4):
    """The sample registry's damages ``copies`` times over (ids R-…-k): a ledger of ~120 blocks, written in-process."""
    import pandas as pd

    from detector.config import Config
    from detector.store import Store

    with Store(photographed["store"]) as st:
        q = st.query(lists=False)
    df = pd.concat([q.assign(candidate_id=q["candidate_id"] + f"-{k}") for k in range(copies)], ignore_index=True)
    return df, Config()


def _sheet_xml(path: Path) -> bytes:
    import zipfile

    with zipfile.ZipFile(path) as z:
        return z.read("xl/worksheets/sheet1.xml")


def test_ledger_merges_each_photo_area_without_checking_it_against_the_others(photographed, tmp_path, monkeypatch):
    """openpyxl's ws.merge_cells checks a new range against every range merged before (MultiCellRange.add), so a
    ledger's merges cost the square of its blocks (~14 s of a 3,000-damage export). The blocks' photo areas never
    overlap: the ledger merges each without that check (no range compared with another), and reads back with one
    merged photo area a block, A{top}:A{bottom}, its other cells merged."""
    import openpyxl
    from openpyxl.cell.cell import MergedCell
    from openpyxl.worksheet.cell_range import CellRange

    from detector import report

    df, cfg = _many(photographed)
    compared = []
    le = CellRange.__le__
    monkeypatch.setattr(CellRange, "__le__", lambda a, b: compared.append(1) or le(a, b))
    out = report.export(df, "ledger", tmp_path / "写真台帳.xlsx", cfg)
    monkeypatch.undo()
    assert len(compared) == 0, f"{len(compared)} merged ranges compared for {len(df)} blocks"  # was n(n-1)/2
    ws = openpyxl.load_workbook(out)["ledger"]
    blocks = _blocks(ws)
    assert len(blocks) == len(df) == 4 * len(photographed["route"])
    assert sorted(str(r) for r in ws.merged_cells.ranges) == sorted(f"A{b['top']}:A{b['bottom']}" for b in blocks)
    assert all(isinstance(ws.cell(row=r, column=1), MergedCell) for b in blocks for r in range(b["top"] + 1,
                                                                                              b["bottom"] + 1))


def test_ledger_merges_write_the_sheet_as_ws_merge_cells_does(photographed, tmp_path, monkeypatch):
    """The ledger's sheet XML is byte for byte the one of plain ws.merge_cells (each block merged against all the
    others, as before): the same merged ranges in the same order, the same cells and styles."""
    from detector import ledger, report

    class MergeCells(ledger._PhotoAreas):  # the way before: openpyxl's own check against every earlier range
        def merge(self, top, bottom):
            self.ws.merge_cells(start_row=top, start_column=1, end_row=bottom, end_column=1)

        def close(self):
            pass

    df, cfg = _many(photographed)
    fast = report.export(df, "ledger", tmp_path / "fast.xlsx", cfg)
    monkeypatch.setattr(ledger, "_PhotoAreas", MergeCells)
    plain = report.export(df, "ledger", tmp_path / "plain.xlsx", cfg)
    a, b = _sheet_xml(fast), _sheet_xml(plain)
    assert a.count(b"<mergeCell ") == len(df)
    assert a == b


def _pdf_text(soffice: str, pdftotext: str, xlsx: Path, tmp_path: Path) -> str:
    """``xlsx`` printed as a whole workbook by LibreOffice (soffice --convert-to pdf), as pdftotext reads it."""
    import subprocess

    r = subprocess.run([soffice, "--headless", f"-env:UserInstallation={(tmp_path / 'lo').as_uri()}",
                        "--convert-to", "pdf", "--outdir", str(tmp_path), str(xlsx)],
                       capture_output=True, text=True, timeout=120)
    pdf = tmp_path / f"{xlsx.stem}.pdf"
    assert r.returncode == 0 and pdf.exists(), r.stdout + r.stderr
    return subprocess.run([pdftotext, "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def _footers(pages: list[str]) -> list[str]:
    """Each printed page's footer: its last line that is a page number (``3 / 11``, ``凡例 legend 2``), or ''."""
    import re

    foot = re.compile(r"^\s*(\d+ / \d+|凡例 legend \d+)\s*$")
    return [next((m.group(1) for ln in reversed(p.splitlines()) if (m := foot.match(ln))), "") for p in pages]


def test_ledger_prints_three_blocks_a_page_without_the_hidden_column(photographed, tmp_path):
    """The ledger printed as LibreOffice prints it (soffice --convert-to pdf): 3 blocks a page (11 pages of the ledger
    sheet for the sample's 31 damages), each 状態 cell showing its status, and the hidden column E (the stale-list
    time) not printed: none of its times, and no ISO timestamp, in the PDF's text. The whole workbook printed, the
    footers count the ledger's own pages, 1 / 11 … 11 / 11 (not 1 / 14 with the legend's 3), and the legend's pages
    are its own (凡例 legend 1 …); the legend moved before the ledger, the ledger's pages still read 1 / 11 …."""
    import re

    import openpyxl

    from detector.ledger import BLOCKS_PER_PAGE

    soffice, pdftotext = print_tools()
    out = tmp_path / "ledger.xlsx"
    ok(patrol("export", photographed["store"], "--format", "ledger", "--out", out))
    text = _pdf_text(soffice, pdftotext, out, tmp_path)
    every = [p for p in text.split("\f") if p.strip()]
    legend = next(i for i, p in enumerate(every) if "Road damage photo ledger" in p)  # the legend sheet's first
    pages = every[:legend]  # the ledger sheet's: a column printed beside D would add pages of its own
    n = len(photographed["route"])
    assert [p.count("番号 No.") for p in pages] == [BLOCKS_PER_PAGE] * (n // BLOCKS_PER_PAGE) + [n % BLOCKS_PER_PAGE]
    assert len(pages) == 11
    assert _footers(pages) == [f"{k} / 11" for k in range(1, 12)], "the footer's total is not the ledger's own"
    assert len(every) > legend + 1  # the legend takes pages of its own (3 for the sample)
    assert _footers(every[legend:]) == [f"凡例 legend {k}" for k in range(1, len(every) - legend + 1)]
    wb = openpyxl.load_workbook(out)
    wb.move_sheet("legend", offset=-1)  # printed first: the ledger's pages still start at 1
    wb.save(tmp_path / "legend_first.xlsx")
    first = [p for p in _pdf_text(soffice, pdftotext, tmp_path / "legend_first.xlsx", tmp_path).split("\f")
             if p.strip()]
    assert _footers(first) == _footers(every[legend:]) + [f"{k} / 11" for k in range(1, 12)]
    assert [ln.split()[-1] for ln in text.splitlines() if "状態 status" in ln][:n] == ["新規"] * n
    ws = openpyxl.load_workbook(out)["ledger"]
    stamps = {c.value.strftime("%Y-%m-%d %H:%M:%S") for c in ws["E"] if c.value is not None}
    assert len([c for c in ws["E"] if c.value is not None]) == n and stamps
    assert not [s for s in stamps if s in text] and "####" not in text, "the hidden column E printed"
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", text)
    ids = [ln.split() for ln in text.splitlines() if ln.split()[:2] == ["ID", "id"]]
    assert len(ids) == n and all(len(x) == 3 for x in ids)  # nothing printed right of the ID


def test_legend_labels_fit_their_column(photographed, tmp_path):
    """The legend's labels (column A, not wrapped) are whole in their column: the ledger's 「状態更新日時 (列 E, 非表示)」
    is wider than the column's 24 characters and ran into column B's note in print."""
    import openpyxl

    from detector.report import xlsx_text_width

    out = tmp_path / "ledger.xlsx"
    ok(patrol("export", photographed["store"], "--format", "ledger", "--out", out))
    lg = openpyxl.load_workbook(out)["legend"]
    labels = [c.value for (c,) in lg.iter_rows(min_row=3, max_col=1) if isinstance(c.value, str)]
    assert "状態更新日時 (列 E, 非表示)" in labels
    assert all(xlsx_text_width(v, None) <= lg.column_dimensions["A"].width for v in labels), (
        lg.column_dimensions["A"].width, max(labels, key=lambda v: xlsx_text_width(v, None)))
