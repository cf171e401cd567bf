"""`patrol export --format shp` and `--crs`: the registry for Japanese municipal desktop GIS (Shift_JIS Shapefiles,
JGD2011 plane rectangular coordinates). Real data: a registry of the sample drive's two passes, merged by
`patrol run --store` from folders named as a Japanese office names them (a Japanese folder; one with an emoji, which
cp932 cannot hold), a crew's Japanese note set by `patrol status --note`."""

from __future__ import annotations

import csv
import json
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import TOYAMA, need
from test_cli import assert_user_error, ok, patrol
from test_store_drive_identity import P1, P2, _photos, quick_config, run_store

D1 = "富山 2026-11 第1回"   # cp932 holds it
D2 = "第2回 🚗"               # cp932 lacks the emoji
NOTE = "路肩側に縦ひび割れ 〜3cm − 要補修 —班長"  # 〜 (U+301C), − (U+2212), — (U+2014): cp932 spells them ～ － ―
CP932_NOTE = NOTE.replace("〜", "～").replace("−", "－").replace("—", "―")
LONG_NOTE = "舗装の端部から中央にかけて亀裂が連続している。" * 12  # 264 characters: 528 bytes in cp932, 792 in UTF-8


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> dict:
    toyama = need(TOYAMA)
    tmp = tmp_path_factory.mktemp("gis")
    cfg = quick_config(tmp)
    store = tmp / "registry.gpkg"
    for src, name in ((P1, D1), (P2, D2)):
        drive = tmp / name
        _photos(toyama / src, drive)
        run_store(toyama, drive, store, tmp / f"out-{src}", cfg)
    from detector.store import Store

    with Store(store) as st:
        q = st.query(lists=False)
    d00 = q[q["class"] == "D00"]["candidate_id"].tolist()
    noted, long_noted = d00[0], d00[1]
    ok(patrol("status", store, noted, "--set", "confirmed", "--note", NOTE, "--who", "佐藤"))
    ok(patrol("status", store, long_noted, "--set", "confirmed", "--note", LONG_NOTE))
    with Store(store) as st:
        q = st.query(lists=False).set_index("candidate_id")
    assert (q["last_drive"] == D2).any() and (q["best_drive"] == D1).any()  # both names are in the export
    return {"store": store, "q": q, "noted": noted, "long": long_noted, "tmp": tmp}


def read_dbf(path: Path, encoding: str) -> tuple[list[str], list[dict], int]:
    """A .dbf read as old software reads it: the header's fields, each record's text decoded with ``encoding``
    (no .cpg consulted), and the header's language driver id."""
    data = path.read_bytes()
    n, header_len, rec_len = struct.unpack("<IHH", data[4:12])
    fields = []
    for off in range(32, header_len - 1, 32):
        name = data[off:off + 11].split(b"\0")[0].decode("ascii")
        fields.append((name, chr(data[off + 11]), data[off + 16]))
    rows = []
    for i in range(n):
        rec = data[header_len + i * rec_len: header_len + (i + 1) * rec_len]
        pos, row = 1, {}
        for name, _, width in fields:
            row[name] = rec[pos:pos + width].decode(encoding).strip()
            pos += width
        rows.append(row)
    return [f[0] for f in fields], rows, data[29]


@pytest.mark.parametrize("encoding", ["cp932", "utf-8"])
def test_shapefile_holds_every_damage_and_its_japanese_text(registry, tmp_path, encoding):
    """Every damage, typed numbers, ISO times, the Japanese class name, drive name and crew note back as written
    (cp932: the wave dash and minus as Windows spells them, the emoji as [U+1F697], told once on stderr; a note
    longer than a dBASE field cut on a character boundary, told); field names unique, ASCII, <= 10 characters; the
    .cpg says the encoding; a stale spatial index of an earlier export beside it is removed."""
    import pyogrio

    q = registry["q"]
    out = tmp_path / "損傷.shp"
    (tmp_path / "損傷.qix").write_bytes(b"old index")
    args = ["--encoding", encoding] if encoding == "utf-8" else []  # cp932 is the default
    r = ok(patrol("export", registry["store"], "--format", "shp", "--out", out, *args))
    for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
        assert out.with_suffix(ext).is_file(), ext
    assert not (tmp_path / "損傷.qix").exists()
    assert out.with_suffix(".cpg").read_text("ascii") == {"cp932": "932", "utf-8": "UTF-8"}[encoding]
    df = pyogrio.read_dataframe(out)
    info = pyogrio.read_info(out)
    names = list(info["fields"])
    assert len(names) == len(set(n.lower() for n in names)) and all(len(n) <= 10 and n.isascii() for n in names)
    assert sorted(df["cand_id"]) == sorted(q.index) and len(df) == len(q) > 20
    types = dict(zip(info["fields"], info["ogr_types"]))
    assert types["n_obs"] == types["n_drives"] == "OFTInteger"
    assert types["severity"] == types["confidence"] == types["lat"] == "OFTReal"
    df = df.set_index("cand_id")
    assert (df.loc[q[q["class"] == "D00"].index, "class_ja"] == "縦ひび割れ").all()
    assert df["status_ja"].isin(["新規", "確認済み"]).all()
    assert (df["n_obs"] == q.loc[df.index, "n_obs"]).all()
    assert np.allclose(df["lat"], q.loc[df.index, "lat"], atol=1e-9)
    assert np.allclose(df.geometry.x, q.loc[df.index, "lon"], atol=1e-9)
    assert (df["first_seen"] == q.loc[df.index, "first_seen"]).all()  # ISO 8601 with offset, as the registry
    noted, long_noted = registry["noted"], registry["long"]
    assert df.loc[noted, "checked_by"] == "佐藤"
    if encoding == "cp932":
        assert df.loc[noted, "note"] == CP932_NOTE
    else:
        assert df.loc[noted, "note"] == NOTE
    cut = df.loc[long_noted, "note"]
    assert cut.endswith("…") and LONG_NOTE.startswith(cut[:-1]) and len(cut.encode(encoding)) <= 254
    assert len(cut.encode(encoding)) >= 250  # cut at the limit, not far before it
    assert "cut" in r.stderr and long_noted in r.stderr
    assert (df.loc[q[q["best_drive"] == D1].index, "best_drive"] == D1).all()
    seen2 = q[q["last_drive"] == D2].index
    if encoding == "cp932":
        assert (df.loc[seen2, "last_drive"] == "第2回 [U+1F697]").all()
        assert "[U+1F697]" in r.stderr and "--encoding utf-8" in r.stderr
    else:
        assert (df.loc[seen2, "last_drive"] == D2).all()
        assert "[U+" not in r.stderr
    assert "Traceback" not in r.stderr


def test_cp932_dbf_reads_right_without_its_cpg(registry, tmp_path):
    """Old GIS software on Japanese Windows reads a .dbf in the system code page (cp932) and knows no .cpg: the
    default export reads right that way (and its header names cp932, language driver id 0x13, for software that
    reads that instead); a UTF-8 export read so would be mojibake (why cp932 is the default)."""
    out = tmp_path / "reg.shp"
    ok(patrol("export", registry["store"], "--format", "shp", "--out", out))
    names, rows, ldid = read_dbf(out.with_suffix(".dbf"), "cp932")
    assert ldid == 0x13
    assert "class_ja" in names and "note" in names
    by_id = {r["cand_id"]: r for r in rows}
    q = registry["q"]
    assert sorted(by_id) == sorted(q.index)
    assert {by_id[c]["class_ja"] for c in q[q["class"] == "D00"].index} == {"縦ひび割れ"}
    assert by_id[registry["noted"]]["note"] == CP932_NOTE
    assert {by_id[c]["best_drive"] for c in q[q["best_drive"] == D1].index} == {D1}
    ok(patrol("export", registry["store"], "--format", "shp", "--encoding", "utf-8", "--out", tmp_path / "u.shp"))
    with pytest.raises(UnicodeDecodeError):
        read_dbf(tmp_path / "u.dbf", "cp932")


def test_crs_jgd2011_zone_vii(registry, tmp_path):
    """--crs EPSG:6675 (Toyama's plane rectangular zone VII): the Shapefile (zipped, opened through /vsizip/ as QGIS
    does) and the GeoPackage carry their geometry in it, the .prj names JGD2011 zone VII, the csv and xlsx get x
    (easting) and y (northing) beside lat/lon; every coordinate within 1 cm of pyproj's transform of lat/lon."""
    import openpyxl
    import pyogrio
    from pyproj import CRS, Transformer

    q = registry["q"]
    to = Transformer.from_crs(4326, 6675, always_xy=True)
    ex, ey = to.transform(q["lon"].to_numpy(), q["lat"].to_numpy())
    want = {cid: (x, y) for cid, x, y in zip(q.index, ex, ey)}

    def close(ids, xs, ys):
        got = np.array([want[c] for c in ids])
        assert len(ids) == len(q) and np.abs(got - np.column_stack([xs, ys])).max() < 0.01

    z = tmp_path / "道路台帳.zip"
    ok(patrol("export", registry["store"], "--format", "shp", "--crs", "EPSG:6675", "--out", z))
    with zipfile.ZipFile(z) as zf:
        assert sorted(zf.namelist()) == sorted(f"道路台帳{e}" for e in (".cpg", ".dbf", ".prj", ".shp", ".shx"))
        prj = zf.read("道路台帳.prj").decode("ascii")
    assert "JGD_2011" in prj and "Zone_7" in prj
    assert CRS.from_wkt(prj).to_epsg(min_confidence=70) == 6675
    df = pyogrio.read_dataframe(f"/vsizip/{z}")
    assert df.crs.to_epsg() == 6675
    close(list(df["cand_id"]), df.geometry.x, df.geometry.y)
    assert (df.loc[df["class"] == "D00", "class_ja"] == "縦ひび割れ").all()

    ok(patrol("export", registry["store"], "--format", "gpkg", "--crs", "EPSG:6675", "--out", tmp_path / "r.gpkg"))
    g = pyogrio.read_dataframe(tmp_path / "r.gpkg", layer="candidates")
    assert g.crs.to_epsg() == 6675
    close(list(g["candidate_id"]), g.geometry.x, g.geometry.y)
    assert np.allclose(g["lat"], q.loc[g["candidate_id"], "lat"])  # lat/lon stay WGS 84 attributes

    ok(patrol("export", registry["store"], "--format", "csv", "--crs", "EPSG:6675", "--out", tmp_path / "l.csv"))
    with open(tmp_path / "l.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    head = list(rows[0])
    assert head[head.index("lon") + 1: head.index("lon") + 3] == ["x", "y"]
    close([r["candidate_id"] for r in rows], [float(r["x"]) for r in rows], [float(r["y"]) for r in rows])

    ok(patrol("export", registry["store"], "--format", "xlsx", "--crs", "EPSG:6675", "--out", tmp_path / "l.xlsx"))
    wb = openpyxl.load_workbook(tmp_path / "l.xlsx", read_only=True)
    rows = list(wb["candidates"].iter_rows(values_only=True))
    eng = [h.split("\n")[-1] for h in rows[0]]
    ix, iy = eng.index("x (easting)"), eng.index("y (northing)")
    close([r[0] for r in rows[1:]], [r[ix] for r in rows[1:]], [r[iy] for r in rows[1:]])
    assert any("EPSG:6675" in str(v) for r in wb["legend"].iter_rows(values_only=True) for v in r)
    # the crew's workbook with x, y is still taken back
    r = ok(patrol("import-verification", registry["store"], tmp_path / "l.xlsx"))
    assert "not applied 0" in r.stdout


def test_csv_with_crs_names_its_crs_on_every_row(registry, tmp_path):
    """`export --format csv --crs EPSG:6675`: the x, y columns named their CRS nowhere in the file (only the console
    line said it; the workbook has a legend): a CSV mailed on its own, or rows copied out of it, gave plane coordinates
    of no known zone. Now a ``crs`` column after y holds ``EPSG:6675`` on every row. The file still reads as points
    the way QGIS's "delimited text" layer does (GDAL's CSV driver, X/Y_POSSIBLE_NAMES=x/y; geopandas
    points_from_xy) in the CRS the column names, back on the damages' lat/lon; Excel and the crew's round trip
    through import-verification take it as before. Real data: the sample drive's registry."""
    import geopandas as gpd
    import pandas as pd
    import pyogrio
    from pyproj import CRS

    q = registry["q"]
    lst = tmp_path / "zone7.csv"
    ok(patrol("export", registry["store"], "--format", "csv", "--crs", "EPSG:6675", "--out", lst))
    with open(lst, encoding="utf-8-sig", newline="") as fh:
        rd = csv.DictReader(fh)
        head, rows = list(rd.fieldnames), list(rd)
    assert head[head.index("lon") + 1: head.index("lon") + 4] == ["x", "y", "crs"]
    assert {r["crs"] for r in rows} == {"EPSG:6675"} and len(rows) == len(q)

    def on_the_damages(ids, pts):  # back in WGS 84, within 1e-7 degrees (1 cm) of the registry's lat/lon
        back = pts.to_crs(4326)
        assert len(ids) == len(q)
        assert np.abs(back.x.to_numpy() - q.loc[ids, "lon"].to_numpy()).max() < 1e-7
        assert np.abs(back.y.to_numpy() - q.loc[ids, "lat"].to_numpy()).max() < 1e-7

    g = pyogrio.read_dataframe(lst, X_POSSIBLE_NAMES="x", Y_POSSIBLE_NAMES="y")  # as QGIS's delimited text layer
    assert list(g.columns[:-1]) == head  # (the BOM is not in the first heading; x, y kept as columns too)
    crs = CRS.from_user_input(g["crs"].iloc[0])
    on_the_damages(list(g["candidate_id"]), g.geometry.set_crs(crs))
    df = pd.read_csv(lst, encoding="utf-8-sig")
    on_the_damages(list(df["candidate_id"]), gpd.GeoSeries(gpd.points_from_xy(df["x"], df["y"]), crs=df["crs"].iloc[0]))

    # the crew's round trip: the list with x, y, crs taken back, its status edit applied

    store = tmp_path / "r.gpkg"
    shutil.copyfile(registry["store"], store)
    new = next(r for r in rows if r["status"] == "new")
    new["status"] = "confirmed"
    with open(tmp_path / "back.csv", "w", encoding="utf-8-sig", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=head)
        wr.writeheader()
        wr.writerows(rows)
    r = ok(patrol("import-verification", store, tmp_path / "back.csv"))
    assert "applied 1," in r.stdout and "not applied 0" in r.stdout, r.stdout + r.stderr


def test_crs_and_encoding_refused_with_one_line(registry, tmp_path):
    """WGS 84 formats refuse --crs (RFC 7946 / KML), an unknown or a geographic CRS is refused, --encoding is for
    shp only, a Shapefile needs .shp or .zip: one line, exit 2, nothing written. A zone of another prefecture is
    written, with a warning."""
    store = registry["store"]
    for fmt in ("geojson", "kml", "html"):
        out = tmp_path / f"x.{fmt}"
        line = assert_user_error(patrol("export", store, "--format", fmt, "--crs", "EPSG:6675", "--out", out), 2,
                                 "--crs", "WGS 84")
        assert "gpkg" in line and not out.exists()
    assert_user_error(patrol("export", store, "--format", "shp", "--crs", "EPSG:99999", "--out", tmp_path / "a.shp"),
                      2, "--crs", "unknown", "EPSG:99999")
    assert_user_error(patrol("export", store, "--format", "gpkg", "--crs", "EPSG:6668", "--out", tmp_path / "a.gpkg"),
                      2, "--crs", "geographic", "EPSG:6669")
    assert_user_error(patrol("export", store, "--format", "csv", "--encoding", "cp932", "--out", tmp_path / "a.csv"),
                      2, "--encoding")
    assert_user_error(patrol("export", store, "--format", "shp", "--encoding", "latin-1", "--out", tmp_path / "a.shp"),
                      2, "--encoding", "cp932")
    assert_user_error(patrol("export", store, "--format", "shp", "--out", tmp_path / "a.dbf"), 2, "--out", ".zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    r = ok(patrol("export", store, "--format", "shp", "--crs", "EPSG:6669", "--out", tmp_path / "nagasaki.shp"))
    assert f"{len(registry['q'])} of {len(registry['q'])} damages" in r.stderr and "EPSG:6669" in r.stderr
    # and which zone they do lie in: the sample's Toyama is zone VII (a city that copied another's --crs)
    assert "they lie in the area of EPSG:6675 (zone VII); give that as --crs" in " ".join(r.stderr.split()), r.stderr
    # a week without a repaired damage: an empty point layer with every field, not a layer of another type
    import pyogrio

    ok(patrol("export", store, "--format", "shp", "--status", "repaired", "--out", tmp_path / "none.shp"))
    info = pyogrio.read_info(tmp_path / "none.shp")
    assert info["features"] == 0 and info["geometry_type"] == "Point" and "note" in list(info["fields"])


def test_an_out_named_for_another_format_is_refused(registry, tmp_path):
    """`--format csv --out list.xlsx` wrote a CSV under a workbook's name (Excel will not open it), `--format xlsx --out
    list.csv` a workbook under a CSV's: an --out ending in another format's ending is refused, one line naming the file
    and the name to give, exit 2, nothing written; the format's own other ending (.json for geojson) is written."""
    store = registry["store"]
    for fmt, name, other, want in (("csv", "list.xlsx", "xlsx", "list.csv"), ("xlsx", "週報.csv", "csv", "週報.xlsx"),
                                   ("geojson", "x.gpkg", "gpkg", "x.geojson"), ("gpkg", "x.zip", "shp", "x.gpkg"),
                                   ("html", "map.kml", "kml", "map.html")):
        assert_user_error(patrol("export", store, "--format", fmt, "--out", tmp_path / name), 2,
                          name, "--out", f"--format {fmt} writes", f"name it {want}, or give --format {other}")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    ok(patrol("export", store, "--format", "geojson", "--out", tmp_path / "x.json"))
    assert json.loads((tmp_path / "x.json").read_text(encoding="utf-8"))["type"] == "FeatureCollection"


def test_shapefile_held_open_is_never_half_replaced(registry, tmp_path):
    """Windows: the .dbf of last week's export still open in another program (Excel or LibreOffice showing the
    table, ArcGIS) while this week's export is written over it: one line naming it, exit 2, and the set on disk is
    still last week's, whole. A new .shp beside the old .dbf would put other damages' fields on the points (GDAL
    pairs them by record number). Closed, the same command replaces all five."""
    import subprocess

    import pyogrio

    import winsim

    store, q = registry["store"], registry["q"]
    out = tmp_path / "週報" / "路面損傷.shp"
    ok(patrol("export", store, "--format", "shp", "--out", out))  # last week's: every damage
    args = ["export", store, "--format", "shp", "--status", "confirmed", "--out", out]
    r = subprocess.run(winsim.cli_argv(*args), capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "PATROL_TEST_OPEN_IN_EXCEL": "週報/路面損傷.dbf",
                            "COLUMNS": "200"})
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "路面損傷.dbf" in lines[0] and "QGIS" in lines[0], r.stderr
    n_dbf = struct.unpack("<I", out.with_suffix(".dbf").read_bytes()[4:8])[0]
    assert pyogrio.read_info(out)["features"] == n_dbf == len(q)  # last week's set, whole
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(f"路面損傷{e}" for e in
                                                                  (".cpg", ".dbf", ".prj", ".shp", ".shx"))
    ok(patrol(*args))
    n_confirmed = int((q["status"] == "confirmed").sum())
    n_dbf = struct.unpack("<I", out.with_suffix(".dbf").read_bytes()[4:8])[0]
    assert pyogrio.read_info(out)["features"] == n_dbf == n_confirmed > 0


def test_crs_of_another_country_warns_in_one_short_line(registry, tmp_path):
    """The sample's damages (Toyama) exported in a US UTM zone: written, with one warning line naming the CRS, how
    many damages lie outside its area of use and the first ids; not PROJ's area text (for EPSG:26916 a paragraph
    listing US states and Canadian provinces)."""
    r = ok(patrol("export", registry["store"], "--format", "csv", "--crs", "EPSG:26916", "--out", tmp_path / "us.csv"))
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    n = len(registry["q"])
    assert len(lines) == 1 and len(lines[0]) < 240, r.stderr  # with the Japanese zone they lie in
    first = list(registry["q"].index)
    assert f"{n} of {n} damages (" in lines[0] and "EPSG:26916 NAD83 / UTM zone 16N" in lines[0], lines[0]
    assert any(c in lines[0] for c in first) and "Alabama" not in lines[0] and "Ontario" not in lines[0]


def test_crs_in_feet_is_refused(registry, tmp_path, toyama):
    """A projected CRS in US survey feet (EPSG:2965, Indiana East) would write x, y 3.28 times the metres the
    columns are documented in: refused, one line, exit 2, nothing written; as locate.crs (every distance of the
    config is metres) the config is refused when it loads, exit 4 naming the config and the unit (it blamed the
    roads file, exit 3); a geographic or unknown locate.crs likewise."""
    for fmt in ("csv", "shp"):
        out = tmp_path / f"feet.{fmt}"
        assert_user_error(patrol("export", registry["store"], "--format", fmt, "--crs", "EPSG:2965", "--out", out),
                          2, "--crs", "US survey foot", "not metres")
        assert not out.exists()
    cfg = tmp_path / "feet.yaml"
    cfg.write_text("locate: {crs: 'EPSG:2965'}\n", encoding="utf-8")
    r = patrol("export", registry["store"], "--format", "html", "--roads", toyama / "roads.geojson",
               "--out", tmp_path / "m.html", "--config", cfg)
    assert_user_error(r, 4, str(cfg), "locate.crs", "metres", "US survey foot")
    assert "roads.geojson" not in r.stderr
    for bad, words in (("EPSG:4326", ("not a projected CRS", "EPSG:6675")), ("EPSG:99999", ("unknown CRS",))):
        cfg.write_text(f"locate: {{crs: '{bad}'}}\n", encoding="utf-8")
        r = patrol("export", registry["store"], "--format", "html", "--roads", toyama / "roads.geojson",
                   "--out", tmp_path / "m.html", "--config", cfg)
        assert_user_error(r, 4, str(cfg), "locate.crs", *words)
    assert not (tmp_path / "m.html").exists()


@pytest.mark.parametrize("kid,given,zone", [("00000099", "EPSG:6675", "EPSG:6674 (zone VI)"),
                                            ("00000037", "EPSG:6674", "EPSG:6675 (zone VII)")])
def test_another_citys_zone_names_the_zone_the_damages_lie_in(roads_dir, kid, given, zone):
    """A city that copies the README's --crs EPSG:6675 (Toyama's zone VII) for Uji, Kyoto (the real Kubicka
    Kyoto–Uji track), or Kyoto's zone VI for Toyama: the warning names the zone the damages do lie in, not only
    "is it your area's zone?"."""
    import numpy as np
    from pyproj import CRS

    from detector import gis

    tr = np.loadtxt(need(roads_dir / "kubicka" / kid / f"{kid}.track"), ndmin=2)
    note = gis.outside(tr[:, 1], tr[:, 0], CRS.from_user_input(given))
    assert note and f"{len(tr)} of {len(tr)} damages" in note and given in note, note
    assert f"they lie in the area of {zone}; give that as --crs" in note, note
    assert gis.outside(tr[:, 1], tr[:, 0], CRS.from_user_input(zone.split()[0])) is None


def test_zone_hint_names_the_nearest_zone_first():
    """The zones' areas of use are boxes that overlap well beyond the prefecture borders: Tokyo lies in the boxes of
    zones VIII and IX, Sapporo in XI and XII, Nagoya in VI and VII. The hint named them in EPSG order, so the wrong
    zone first in all three (review finding); now the zone whose origin is nearest first: each city's own."""
    from detector.gis import _zones_of

    for lat, lon, first, other in ((35.6895, 139.6917, "EPSG:6677 (zone IX)", "EPSG:6676 (zone VIII)"),
                                   (43.0621, 141.3544, "EPSG:6680 (zone XII)", "EPSG:6679 (zone XI)"),
                                   (35.1815, 136.9066, "EPSG:6675 (zone VII)", "EPSG:6674 (zone VI)")):
        assert _zones_of(np.array([lat, lat + 0.01]), np.array([lon, lon + 0.01])) == [first, other]
