"""A detections.csv opened in Japanese Excel and saved again, then given to ``patrol locate``: Excel's "CSV (comma
delimited)" writes Shift_JIS (cp932), its "Unicode text" UTF-16 with tabs, "CSV UTF-8" a BOM; all are read as the
file patrol wrote. A time Excel rewrote as a date (``2026/11/20 9:00``, seconds and offset gone) is refused with
what happened and what to do. Real data: the sample drive's oracle detections (the detections.csv schema)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detector.detections import _ARRAYS, read_detections_csv
from detector.errors import InputError

ORACLE = "toyama-2026-11-p1.oracle.csv"
DRIVE = "富山市道 11月20日 1回目"  # a drive folder named in Japanese (the column patrol writes for several passes)


def _with_drive(text: str) -> str:
    lines = text.splitlines()
    return "\n".join([lines[0] + ",drive"] + [ln + "," + DRIVE for ln in lines[1:] if ln]) + "\n"


def _same(a, b) -> None:
    assert len(a) == len(b) >= 100
    for name in _ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        if x.dtype.kind == "f":
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            assert x.tolist() == y.tolist(), name


def _saved_by_excel(toyama: Path, tmp: Path) -> dict[str, Path]:
    """The oracle detections with a Japanese drive column, as each of Excel's save formats writes them (CRLF)."""
    text = _with_drive((toyama / ORACLE).read_text(encoding="utf-8"))
    crlf = text.replace("\n", "\r\n")
    out = {"utf-8": tmp / "utf8.csv", "csv utf-8": tmp / "utf8bom.csv", "csv (sjis)": tmp / "sjis.csv",
           "unicode text": tmp / "unicode.txt"}
    out["utf-8"].write_bytes(text.encode("utf-8"))
    out["csv utf-8"].write_bytes(b"\xef\xbb\xbf" + crlf.encode("utf-8"))
    out["csv (sjis)"].write_bytes(crlf.encode("cp932"))
    out["unicode text"].write_bytes(b"\xff\xfe" + crlf.replace(",", "\t").encode("utf-16-le"))
    return out


def test_detections_saved_by_japanese_excel_read_as_written(toyama, tmp_path):
    files = _saved_by_excel(toyama, tmp_path)
    want = read_detections_csv(files["utf-8"])
    assert set(want.drive.tolist()) == {DRIVE}
    for how, path in files.items():
        _same(read_detections_csv(path), want)


def test_detections_in_no_known_encoding_name_the_file(toyama, tmp_path):
    text = _with_drive((toyama / ORACLE).read_text(encoding="utf-8")).replace(DRIVE, "Ñandú-Straße")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(text.encode("latin-1"))
    with pytest.raises(InputError) as e:
        read_detections_csv(bad)
    msg = str(e.value)
    assert str(bad) in msg and "neither UTF-8, UTF-16 nor Shift_JIS" in msg and "CSV UTF-8" in msg


@pytest.mark.parametrize("excel, lost", [("2026/11/20 9:00", "the seconds and the UTC offset"),
                                         ("2026/11/20 9:00:00", "the UTC offset")])
def test_a_time_excel_rewrote_is_refused_saying_what_happened(toyama, tmp_path, excel, lost):
    text = (toyama / ORACLE).read_text(encoding="utf-8")
    first = text.splitlines()[1].split(",")[1]
    assert first == "2026-11-20T09:00:00+09:00"
    path = tmp_path / "excel.csv"
    path.write_bytes(text.replace(first, excel).replace("\n", "\r\n").encode("cp932"))
    with pytest.raises(InputError) as e:
        read_detections_csv(path)
    msg = str(e.value)
    assert str(path) in msg and "line 2" in msg and repr(excel) in msg
    assert f"Excel) rewrote the time column as a date" in msg and f"{lost} are lost" in msg
    assert "From Text/CSV" in msg and "2026-11-20T09:30:05+09:00" in msg


def test_patrol_locate_on_excels_unicode_text(toyama, tmp_path):
    """The command an engineer runs: exit 0 and the same damages as from the file patrol wrote; a rewritten time:
    exit 3, one message naming the file."""
    root = Path(__file__).resolve().parent.parent
    files = _saved_by_excel(toyama, tmp_path)

    def locate(path: Path, out: str):
        return subprocess.run([sys.executable, "-m", "cli", "locate", str(path), "--roads",
                               str(toyama / "roads.geojson"), "--out", str(tmp_path / out)], cwd=root,
                              capture_output=True, text=True, timeout=300)

    r = locate(files["unicode text"], "u")
    assert r.returncode == 0, r.stderr
    r0 = locate(files["utf-8"], "a")
    assert r0.returncode == 0, r0.stderr
    assert (tmp_path / "u" / "candidates.geojson").read_bytes() == (tmp_path / "a" / "candidates.geojson").read_bytes()
    bad = tmp_path / "excel.csv"
    bad.write_text((toyama / ORACLE).read_text(encoding="utf-8").replace("2026-11-20T09:00:00+09:00",
                                                                          "2026/11/20 9:00"), encoding="cp932")
    r = locate(bad, "b")
    assert r.returncode == 3 and str(bad) in r.stderr + r.stdout and "rewrote the time column" in r.stderr + r.stdout
