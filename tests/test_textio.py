"""detector.textio: the one "UTF-8, else Shift_JIS" rule every hand-made text file is read by (a data.yaml, a
track CSV, a crew's verification list, a Shapefile .dbf without a code page), and each reader following it."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest

from detector.config import Config, RoadsSpec
from detector.errors import InputError
from detector.textio import TextEncodingError, decode_text

from conftest import need


def test_the_rule():
    ja = "路線名,補修内容\n市道1号,ひび割れ\n"
    assert decode_text(ja.encode()) == (ja, "utf-8")
    assert decode_text(b"\xef\xbb\xbf" + ja.encode()) == (ja, "utf-8")  # the BOM taken off
    assert decode_text(ja.encode("cp932")) == (ja, "cp932")
    assert decode_text(ja.encode("utf-16")) == (ja, "utf-16")  # Notepad's "Unicode" (a BOM first)
    assert decode_text("a\x00b\x1a".encode("cp932")) == ("a\x00b\x1a", "utf-8")  # ASCII controls: UTF-8's too
    # bytes Shift_JIS has no character for decode in Python's cp932 (to C1 / private use): not Shift_JIS text
    for data in (b"a,\x80\n", b"a,\xa0\n", b"id\n\xff\xfe\xff\n", "Calle España\n".encode("latin-1")):
        with pytest.raises(TextEncodingError, match="neither UTF-8 nor Shift_JIS"):
            decode_text(data)
    # the head of a file, cut inside a character
    assert decode_text(ja.encode()[:-2][:8], partial=True) == ("路線", "utf-8")
    cut = ja.encode("cp932")[:5]
    assert decode_text(cut, partial=True) == ("路線", "cp932")
    # lenient (a .dbf whose writer cut values at a byte limit): a few bad sequences pass, Latin-1 text does not
    cut_names = b"\n".join("市道宇治{}号線".format(i).encode()[:-1] for i in range(3)) + "".join(
        f"市道宇治{i}号線" for i in range(300)).encode()
    assert decode_text(cut_names, lenient=True)[1] == "utf-8"
    with pytest.raises(TextEncodingError):
        decode_text(cut_names)
    latin = "\n".join(f"Calle España nº {i}" for i in range(50)).encode("latin-1")
    with pytest.raises(TextEncodingError):
        decode_text(latin, lenient=True)


def test_a_data_yaml_saved_as_notepads_unicode_is_read(tmp_path):
    """Notepad's "Unicode" (UTF-16 with a BOM) data.yaml: it decoded as Shift_JIS before (every ASCII byte followed
    by a NUL), and YAML refused its control characters; the track CSV reader alone took UTF-16. Real photos."""
    from detector.evaluate import resolve_split

    from test_evaluate import _windows_set

    y, _ = _windows_set(tmp_path / "city", n=3)
    y.write_bytes(y.read_text().encode("utf-16"))
    imgs = resolve_split(y, "val")[0]
    assert len(imgs) == 3
    y.write_bytes(b"train: images/val\nval: images/val\nnames: [D00, D10, \x80\x80]\n")
    with pytest.raises(InputError, match="data yaml is neither UTF-8 nor Shift_JIS text: save it as UTF-8") as e:
        resolve_split(y, "val")
    assert str(y) in str(e.value)


def test_a_crew_list_saved_as_excels_unicode_text_is_imported(toyama, tmp_path):
    """Excel's "Unicode text" (UTF-16, tab-separated: what "Save as" offers next to CSV) was refused as "neither
    UTF-8 nor Shift_JIS". Real data: the sample drive's two oracle passes merged into a registry."""
    from detector.store import Store

    from test_store import _two_pass_registry

    cfg = Config()
    path = _two_pass_registry(toyama, tmp_path / "registry.gpkg", cfg)
    with Store(path) as st:
        ids = list(st.query(lists=False).candidate_id[:2])
    crew = tmp_path / "crew.txt"
    crew.write_bytes(("candidate_id\tstatus\tnote\tchecked_by\r\n" + f"{ids[0]}\t確認済み\t縁石側のひび\t山田\r\n"
                      + f"{ids[1]}\t補修予定\t来週\t山田\r\n").encode("utf-16"))
    with Store(path) as st:
        rep = st.import_verification(crew)
        q = st.query(lists=False).set_index("candidate_id")
    assert rep.applied == ids, rep
    assert (q.loc[ids[0], "status"], q.loc[ids[0], "status_note"], q.loc[ids[1], "status"]) == (
        "confirmed", "縁石側のひび", "scheduled")


def test_a_latin1_shapefile_is_not_taken_for_shift_jis(roads_dir, tmp_path):
    """A .dbf without a code page in Latin-1 (a European GIS's export): ``España`` decodes in Python's cp932 (ñ + a
    letter is a user-defined gaiji) and was read as Shift_JIS, every such name garbled; the crew-list reader had
    already refused such text. Now the .dbf is left to GDAL's ISO-8859-1, with the warning saying so. Real network."""
    from detector.roads import load_roads

    from test_locate import kubicka_network

    gj, _ = kubicka_network(need(roads_dir / "kubicka" / "00000099"), tmp_path)
    g = gpd.read_file(gj)
    route = np.arange(len(g)) // 7
    led = gpd.GeoDataFrame({"CALLE_ID": [f"C{r:05d}" for r in route],
                            "NOMBRE": [f"Calle España nº {r}" for r in route]}, geometry=g.geometry, crs=4326)
    shp = tmp_path / "calles.shp"
    led.to_file(shp, encoding="ISO-8859-1")
    for ext in (".cpg", ".prj"):
        shp.with_suffix(ext).unlink(missing_ok=True)
    assert shp.with_suffix(".dbf").read_bytes()[29] == 0
    net = load_roads(shp, Config(roads=RoadsSpec(id_field="CALLE_ID", name_field="NOMBRE", crs="EPSG:4326")))
    assert net.names[:3].tolist() == led["NOMBRE"][:3].tolist()
    said = [w for w in net.warnings if "calles.dbf" in w]
    assert len(said) == 1 and "neither UTF-8 nor Shift_JIS: read as ISO-8859-1" in said[0], said


def test_gaiji_in_japanese_text_is_shift_jis_but_not_in_latin1():
    """User-defined characters (gaiji, 外字, 0xF040-0xF9FC) are real in Japanese files: a rare kanji of a driver's or
    a place's name that an office PC's font defines. The first shared rule refused any such file as "neither UTF-8
    nor Shift_JIS" (a fleet track lost every position for one name); Latin-1 "ñ" + a letter lands there too."""
    gaiji = b"\xf0\x40"  # the first user-defined character
    name = "高".encode("cp932") + gaiji + "田".encode("cp932")  # 𠮷田-style: the office font's own kanji
    ledger = b"\r\n".join(b"R%03d," % i + "市道".encode("cp932") + name + "線".encode("cp932") for i in range(40))
    text, codec = decode_text(ledger)
    assert codec == "cp932" and text.count("\ue000") == 40 and text.startswith("R000,市道高\ue000田線")
    assert decode_text(ledger, lenient=True)[1] == "cp932"
    # Latin-1: gaiji without Japanese text around them stay refused (strict) and counted against it (lenient)
    for latin in ("Calle España\n".encode("latin-1"),
                  "\n".join(f"Calle España nº {i}, Añorga" for i in range(50)).encode("latin-1")):
        with pytest.raises(TextEncodingError):
            decode_text(latin)
    with pytest.raises(TextEncodingError):  # (lenient lets 2 + 1 % bad characters through: a whole file fails)
        decode_text(latin, lenient=True)
    # more gaiji than Japanese text: not taken (a binary or Latin-1 file that happens to hold a kana or two)
    with pytest.raises(TextEncodingError):
        decode_text("あ".encode("cp932") + gaiji * 3)


def test_a_fleet_track_with_a_gaiji_driver_name_places_the_frames(tmp_path):
    """A Japanese fleet system's Shift_JIS track with a driver column whose name holds a gaiji: the track was
    refused ("neither UTF-8 nor Shift_JIS") and the frames lost their positions. Real points: the Kubicka Toyama
    track the sample drive follows."""
    from detector.tracks import read_track

    from test_tracks import kubicka_points

    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    jst = ZoneInfo("Asia/Tokyo")
    pts = kubicka_points(datetime(2026, 11, 20, 1, 0, tzinfo=timezone.utc))[:120]
    driver = "高".encode("cp932") + b"\xf0\x40" + "田".encode("cp932")
    rows = [datetime.fromtimestamp(t, jst).strftime("%Y/%m/%d %H:%M:%S").encode() + b",%.7f,%.7f," % (la, lo)
            + driver for t, la, lo in pts]
    p = tmp_path / "運行記録.csv"
    p.write_bytes("日時,緯度,経度,運転者\r\n".encode("cp932") + b"\r\n".join(rows) + b"\r\n")
    tr = read_track(p, tz=jst)
    assert len(tr.t) == len(pts)
    assert np.allclose(tr.lat, [la for _, la, _ in pts], atol=1e-6)
