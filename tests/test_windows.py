"""patrol on a Windows PC (what most Japanese municipal offices use), simulated on Linux (``winsim``): no
``os.fchmod``, no ``fcntl`` (``msvcrt.locking`` instead), ``os.replace`` refused while Excel holds the target open,
a cp932 console. The real sample drive's oracle detections and roads are the input."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import winsim
from conftest import TOYAMA, need

ROOT = Path(__file__).resolve().parent.parent
P1, P2 = "toyama-2026-11-p1", "toyama-2026-11-p2"


def _env(**extra) -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith("PATROL_") or k == "PATROL_SHARED"}
    e.update(extra)
    return e


def win_patrol(*args, open_in_excel: str = "", **env) -> subprocess.CompletedProcess:
    return subprocess.run(winsim.cli_argv(*args), cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=_env(PATROL_TEST_OPEN_IN_EXCEL=open_in_excel, **env))


def one_error_line(r: subprocess.CompletedProcess, code: int) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == code, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert "Traceback" not in r.stderr and len(lines) == 1, r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def oracles() -> list[Path]:
    return [need(TOYAMA / f"{P1}.oracle.csv"), need(TOYAMA / f"{P2}.oracle.csv")]


@pytest.fixture(scope="module")
def located(tmp_path_factory, oracles) -> dict:
    """``patrol locate --store`` on simulated Windows: the reference for the tests below."""
    d = tmp_path_factory.mktemp("win")
    out, store = d / "out", d / "registry.gpkg"
    r = win_patrol("locate", *oracles, "--roads", TOYAMA / "roads.geojson", "--out", out, "--store", store)
    assert r.returncode == 0, r.stderr
    return {"dir": d, "out": out, "store": store}


def test_locate_and_export_run_without_fchmod_and_fcntl(located, oracles, tmp_path):
    """Every output is written atomically; the atomic write called os.fchmod, which Windows lacks: every command
    stopped with an internal error (AttributeError). The outputs are those a Linux run writes."""
    feats = json.loads((located["out"] / "candidates.geojson").read_text(encoding="utf-8"))["features"]
    assert len(feats) == 31
    lin = tmp_path / "linux"
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "locate", *map(str, oracles), "--roads",
                        str(TOYAMA / "roads.geojson"), "--out", str(lin), "--store", str(tmp_path / "l.gpkg")], cwd=ROOT, capture_output=True, text=True,
                       env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    for name in ("candidates.geojson", "repair_list.csv"):
        assert (lin / name).read_bytes() == (located["out"] / name).read_bytes(), name
    r = win_patrol("export", located["store"], "--format", "xlsx", "--out", tmp_path / "list.xlsx")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "list.xlsx").read_bytes()[:2] == b"PK"  # a zip: the workbook


def test_repair_list_open_in_excel_is_one_line_and_the_other_outputs_are_written(located, oracles, tmp_path):
    """The crew has repair_list.csv open in Excel when the next locate runs: Windows refuses to replace it. It was
    an internal error (exit 1) with nothing after it written; now exit 2, one line naming the file and what to do,
    candidates.geojson still written, the open file untouched, no temp file left, no summary.json (failed run)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "repair_list.csv").write_text("the crew's open copy\n", encoding="utf-8")
    r = win_patrol("locate", *oracles, "--roads", TOYAMA / "roads.geojson", "--out", out,
                   open_in_excel="repair_list.csv")
    line = one_error_line(r, 2)
    assert line.startswith(f"error: {out / 'repair_list.csv'}: cannot replace this file") and "Excel" in line, line
    assert "close it and run the same command again" in line and "the other outputs are written" in line, line
    assert (out / "repair_list.csv").read_text(encoding="utf-8") == "the crew's open copy\n"
    assert len(json.loads((out / "candidates.geojson").read_text(encoding="utf-8"))["features"]) == 31
    assert not list(out.glob(".*.tmp")) and not (out / "summary.json").exists()
    # Excel closed: the same command writes it
    r = win_patrol("locate", *oracles, "--roads", TOYAMA / "roads.geojson", "--out", out)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader((out / "repair_list.csv").open(encoding="utf-8-sig")))
    assert len(rows) == 31 and not list(out.glob(".*.tmp")) and (out / "summary.json").is_file()


def test_two_outputs_open_are_named_in_one_line(oracles, tmp_path):
    out = tmp_path / "out"
    r = win_patrol("locate", *oracles, "--roads", TOYAMA / "roads.geojson", "--out", out,
                   open_in_excel="repair_list.csv,candidates.geojson")
    line = one_error_line(r, 2)
    assert f"{out / 'candidates.geojson'}, {out / 'repair_list.csv'}: cannot replace these files" in line, line


@pytest.mark.parametrize("fmt,name", [("xlsx", "list.xlsx"), ("html", "report.html"), ("gpkg", "list.gpkg")])
def test_export_over_a_file_open_elsewhere_is_one_line(located, tmp_path, fmt, name):
    """patrol export --out list.xlsx while list.xlsx is open in Excel (or report.html in a browser that locks it,
    the GeoPackage in QGIS): exit 2 naming it, the open file untouched, no temp file (a GeoPackage's too) left."""
    target = tmp_path / name
    target.write_bytes(b"open elsewhere")
    r = win_patrol("export", located["store"], "--format", fmt, "--out", target, open_in_excel=name)
    line = one_error_line(r, 2)
    assert line.startswith(f"error: {target}: cannot replace this file") and "Excel" in line, line
    assert target.read_bytes() == b"open elsewhere"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_rename_refused_for_a_moment_is_tried_again(tmp_path, monkeypatch):
    """A virus scanner or the search indexer holds a fresh file for a moment: the rename is tried again."""
    from detector import atomic

    real, calls = os.replace, []

    def busy_twice(src, dst):
        calls.append(dst)
        if len(calls) <= 2:
            raise PermissionError(13, "The process cannot access the file because it is being used by another process")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", busy_twice)
    target = tmp_path / "repair_list.csv"
    atomic.atomic_write_text(target, "id\n")
    assert target.read_text() == "id\n" and len(calls) == 3 and not list(tmp_path.glob(".*"))


HOLD = """
import sys, time
from pathlib import Path
sys.path[:0] = [{tests!r}, {root!r}]
import winsim; winsim.windows()
from detector.atomic import FileLock
with FileLock({lock!r}):
    Path({ready!r}).touch()
    while not Path({go!r}).exists():
        time.sleep(0.05)
"""


def test_windows_lock_waits_for_the_holder_and_names_it(tmp_path, monkeypatch):
    """Without fcntl (Windows) FileLock imported it and failed: every patrol run and train stopped (ImportError).
    Now msvcrt.locking: a second process sees the holder's pid, waits, and gets the lock when the holder ends."""
    import fcntl

    lock, ready, go = tmp_path / "out" / ".work" / "run.lock", tmp_path / "ready", tmp_path / "go"
    holder = subprocess.Popen([sys.executable, "-c", HOLD.format(tests=str(winsim.TESTS), root=str(ROOT),
                                                                 lock=str(lock), ready=str(ready), go=str(go))])
    try:
        for _ in range(600):
            if ready.exists() or holder.poll() is not None:
                break
            time.sleep(0.05)
        assert ready.exists(), "the holder did not take the lock"
        monkeypatch.delattr(os, "fchmod")
        from detector import atomic
        from detector.atomic import FileLock

        fake = winsim.FakeMsvcrt(fcntl)
        monkeypatch.setattr(atomic, "_msvcrt", lambda: fake)
        monkeypatch.setitem(sys.modules, "fcntl", None)

        seen = []

        def busy(pid):
            seen.append(pid)
            go.touch()  # the holder finishes now; this one waits for it

        with FileLock(lock, busy):
            assert holder.wait(timeout=60) == 0
            assert lock.read_text() == f"{os.getpid()}\n"
        assert seen == [holder.pid]
        with FileLock(lock, busy=lambda pid: pytest.fail("released, not busy")):
            pass
    finally:
        go.touch()
        holder.wait(timeout=60)


def test_cp932_console_shows_a_name_it_cannot_encode(oracles, tmp_path):
    """A Japanese Windows PC writes a redirected log (a scheduled job) in cp932, which lacks 🚗 (and 𠮷, —, ≤): the
    summary printing the out folder's name ended the finished run with an internal error (UnicodeEncodeError).
    Now such a character is shown escaped; the rest, Japanese included, as it is."""
    for ch in "🚗𠮷":
        with pytest.raises(UnicodeEncodeError):
            ch.encode("cp932")
    out = tmp_path / "巡回🚗[1]"
    cmd = ["locate", *oracles, "--roads", TOYAMA / "roads.geojson", "--out", out]
    r = subprocess.run(winsim.cli_argv(*cmd), cwd=ROOT, capture_output=True, timeout=300,
                       env=_env(PYTHONIOENCODING="cp932", COLUMNS="300"))  # no wrapping of the long path
    stdout, stderr = r.stdout.decode("cp932"), r.stderr.decode("cp932")
    assert r.returncode == 0, stderr
    assert "巡回\\U0001f697[1]" in stdout and "repair_list.csv" in stdout, stdout
    # an error naming such a file: one line, the name escaped, a [bracket] in it kept (not read as rich markup)
    bad = tmp_path / "𠮷[bold]野.csv"
    r = subprocess.run(winsim.cli_argv("locate", bad, "--roads", TOYAMA / "roads.geojson", "--out", out), cwd=ROOT,
                       capture_output=True, env=_env(PYTHONIOENCODING="cp932"), timeout=300)
    err = r.stderr.decode("cp932")
    assert r.returncode == 3 and err.strip() == f"error: {tmp_path}/\\U00020bb7[bold]野.csv: file not found", err


def test_a_share_without_file_ids_still_walks_every_folder(tmp_path, monkeypatch):
    """Some network shares (a NAS seen from Windows) report st_ino 0 for every folder: the link-loop guard keyed
    folders by (device, inode), so every folder after the first looked visited and its frames were skipped without
    a row. Now such a folder is keyed by its real path."""
    import pathlib

    from detector.frames import walk_drive

    src = sorted(need(TOYAMA / P1).glob("IMG_2026*.jpg"))[:4]
    drive = tmp_path / P1
    for i, p in enumerate(src):
        (drive / f"{i % 2}フォルダ").mkdir(parents=True, exist_ok=True)
        (drive / f"{i % 2}フォルダ" / p.name).write_bytes(p.read_bytes())
    want = [name for name, _, why in walk_drive(drive)]
    real = pathlib.Path.stat

    def no_ids(self, *a, **k):
        st = real(self, *a, **k)
        return os.stat_result((st.st_mode, 0, *tuple(st)[2:10]))

    monkeypatch.setattr(pathlib.Path, "stat", no_ids)
    got = [name for name, _, why in walk_drive(drive)]
    assert got == want and len(got) == 4 and got[-1].startswith("1フォルダ/"), got
