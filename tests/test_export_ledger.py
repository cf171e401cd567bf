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

from conftest import TOYAMA, need
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
    assert f"{len(route)} candidates → {out}" in " ".join(r.stdout.split())
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
    assert ws.oddHeader.left.text == "default" and ws.oddHeader.right.text.startswith("出力日 20")
    assert ws.oddFooter.center.text == "&P / &N"
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
