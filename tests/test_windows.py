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
    assert (lin / "candidates.geojson").read_bytes() == (located["out"] / "candidates.geojson").read_bytes()
    # the repair lists alike but for status_changed_at, the last column: each registry's own merge time
    lists = [[ln.rsplit(b",", 1) for ln in (d / "repair_list.csv").read_bytes().split(b"\r\n")]
             for d in (lin, located["out"])]
    assert [ln[0] for ln in lists[0]] == [ln[0] for ln in lists[1]]
    assert lists[0][0][1] == b"status_changed_at" and all(len(ln[1]) == 25 for ln in lists[0][1:-1])
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


def test_shapefile_with_one_of_its_files_open_is_left_whole(located, tmp_path):
    """QGIS (or Excel, showing the .dbf) holds one file of an exported Shapefile open while the export runs again.
    Only a held .shp stopped the export before any file changed: a held .dbf (.shx, .prj, .cpg) left a new .shp and
    .shx beside the old .dbf, the attributes of other damages shown at the points. Now, whichever file is held
    (a stale QGIS index .qix too), exit 2 names it and the old set is left exactly as it was, still readable; once
    it is closed, the same command writes the new set and removes the stale index."""
    import pyogrio

    from detector.store import Store
    from test_cli import ok, patrol

    store = tmp_path / "registry.gpkg"
    store.write_bytes(located["store"].read_bytes())
    with Store(store) as st:
        ids = st.query(lists=False)["candidate_id"].tolist()
    ok(patrol("status", store, ids[0], "--set", "confirmed"))
    folder = tmp_path / "gis"
    shp = folder / "損傷.shp"
    # the old set: one damage, plane coordinates, UTF-8 (every file of it differs from the new one's)
    r = win_patrol("export", store, "--format", "shp", "--status", "confirmed", "--crs", "EPSG:6675",
                   "--encoding", "utf-8", "--out", shp)
    assert r.returncode == 0, r.stderr
    (folder / "損傷.qix").write_bytes(b"QGIS's spatial index of the old set")
    old = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert sorted(old) == sorted(f"損傷{e}" for e in (".cpg", ".dbf", ".prj", ".qix", ".shp", ".shx"))
    for held in (".dbf", ".shx", ".prj", ".cpg", ".shp", ".qix"):
        r = win_patrol("export", store, "--format", "shp", "--out", shp, open_in_excel=f"gis/損傷{held}")
        line = one_error_line(r, 2)
        assert line.startswith(f"error: {folder / ('損傷' + held)}: cannot "), line
        assert "QGIS" in line and "close it and run the same command again" in line, line
        assert "none of 損傷.shp's files was changed" in line, line
        assert sorted(p.name for p in folder.iterdir()) == sorted(old), held  # no temp file or folder left
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == old, held
        back = pyogrio.read_dataframe(shp)
        assert len(back) == 1 and back["cand_id"].tolist() == [ids[0]] and back.crs.to_epsg() == 6675, held
    r = win_patrol("export", store, "--format", "shp", "--out", shp)  # closed: the new set
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"損傷{e}" for e in (".cpg", ".dbf", ".prj", ".shp", ".shx"))
    new = pyogrio.read_dataframe(shp)
    assert sorted(new["cand_id"]) == sorted(ids) and new.crs.to_epsg() == 4326
    assert (folder / "損傷.cpg").read_text() == "932"


def test_a_set_whose_new_file_cannot_be_moved_in_is_put_back(tmp_path, monkeypatch):
    """replace_together's second half: the old files are aside and a new one still cannot be moved in (refused
    on every try): the new files placed are taken out, the old ones put back, the held name in the error."""
    from detector import atomic

    new = tmp_path / "new"
    new.mkdir()
    names = ["a.shp", "a.shx", "a.dbf"]
    for n in names:
        (tmp_path / n).write_text("old " + n)
        (new / n).write_text("new " + n)
    (tmp_path / "a.qix").write_text("old index")
    real = os.replace

    def refuse_dbf_in(src, dst):
        if Path(src) == new / "a.dbf":
            raise PermissionError(13, "The process cannot access the file because it is being used by another process")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", refuse_dbf_in)
    monkeypatch.setattr(atomic, "_REPLACE_RETRY_S", (0.0,))
    with pytest.raises(atomic.OutputInUseError) as e:
        atomic.replace_together([(new / n, tmp_path / n) for n in names], [tmp_path / "a.qix"], what="a.shp")
    assert Path(e.value.path) == tmp_path / "a.dbf" and "a.dbf" in str(e.value)
    assert {p.name: p.read_text() for p in tmp_path.iterdir() if p.is_file()} == {
        **{n: "old " + n for n in names}, "a.qix": "old index"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names, "a.qix", "new"])  # no folder left aside


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


# ------------------------------------------------------------------------------------------------ files held open
# A road department's PC: the crew has detections.csv or frames.csv open in Excel, a crop in the photo viewer, while
# the next run goes. Windows refuses to replace, delete or rename such a file (winsim: PATROL_TEST_OPEN_IN_EXCEL).

from test_hardening import CONFIG as RUN_CONFIG  # noqa: E402  (low thresholds, 320 px, no blur: quick and many hits)

N_FRAMES = 12


@pytest.fixture(scope="module")
def run12(tmp_path_factory) -> dict:
    """`patrol run --store` on simulated Windows over the sample drive's first 12 frames (low thresholds, no blur:
    fast); the 13th frame is kept aside as a late upload."""
    d = tmp_path_factory.mktemp("run12")
    src = sorted(need(TOYAMA / P1).glob("IMG_2026*.jpg"))[:N_FRAMES + 1]
    drive = d / P1
    drive.mkdir()
    for p in src[:N_FRAMES]:
        (drive / p.name).write_bytes(p.read_bytes())
    cfg = d / "city.yaml"
    cfg.write_text(RUN_CONFIG, encoding="utf-8")
    out, store = d / "out", d / "registry.gpkg"
    r = win_patrol("run", drive, "--roads", TOYAMA / "roads.geojson", "--out", out, "--config", cfg, "--store", store)
    assert r.returncode == 0, r.stderr
    assert len(list((out / "crops").glob("*.jpg"))) >= 3
    return {"dir": d, "drive": drive, "late": src[N_FRAMES], "cfg": cfg, "out": out, "store": store}


def _copy_run(run12: dict, tmp_path: Path) -> tuple[Path, Path]:
    import shutil

    drive, out = tmp_path / P1, tmp_path / "out"
    shutil.copytree(run12["drive"], drive)
    shutil.copytree(run12["out"], out)
    return drive, out


def _run(drive, out, cfg, held: str = "") -> subprocess.CompletedProcess:
    return win_patrol("run", drive, "--roads", TOYAMA / "roads.geojson", "--out", out, "--config", cfg,
                      open_in_excel=held)


def test_detections_and_frames_csv_open_in_excel_while_the_run_rewrites_them(run12, tmp_path):
    """A late upload (a 13th frame) changes detections.csv and frames.csv while the crew has both open in Excel.
    detections.csv was the detect stage's own file, written outside BusyOutputs: the run stopped there (nothing
    after detection written, frames.csv not named). Now every other output is written from the new detections, the
    two open files are untouched, one line names both (exit 2), and the next run, Excel closed, writes them without
    detecting again."""
    drive, out = _copy_run(run12, tmp_path)
    (drive / run12["late"].name).write_bytes(run12["late"].read_bytes())
    for name in ("detections.csv", "frames.csv"):
        (out / name).write_text("the crew's open copy\n", encoding="utf-8")
    for name in ("candidates.geojson", "repair_list.csv", "report.html"):
        (out / name).unlink()
    r = _run(drive, out, run12["cfg"], held="out/detections.csv,out/frames.csv")
    line = one_error_line(r, 2)
    assert line.startswith(f"error: {out / 'detections.csv'}, {out / 'frames.csv'}: cannot replace these files"), line
    assert "Excel" in line and "close them and run the same command again" in line, line
    for name in ("detections.csv", "frames.csv"):
        assert (out / name).read_text(encoding="utf-8") == "the crew's open copy\n"
    feats = json.loads((out / "candidates.geojson").read_text(encoding="utf-8"))["features"]
    assert len(feats) == 4  # the late frame's damage is in: placed from the new detections
    assert (out / "repair_list.csv").is_file() and (out / "report.html").is_file()
    assert not (out / "summary.json").exists() or json.loads((out / "summary.json").read_text())["frames"]["total"] == N_FRAMES
    assert not list(out.glob(".*.tmp"))
    # Excel closed: the same command writes them; the detect stage is not redone (nothing detected again)
    r = _run(drive, out, run12["cfg"])
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert "detect" in doc["skipped_stages"] and doc["frames"]["total"] == N_FRAMES + 1
    rows = list(csv.DictReader((out / "detections.csv").open(encoding="utf-8")))
    assert run12["late"].name in {r["image"] for r in rows}
    assert (out / "detections.csv").read_bytes() == (out / ".work" / "detections.detect.csv").read_bytes()
    assert len(list(csv.DictReader((out / "frames.csv").open(encoding="utf-8")))) == N_FRAMES + 1


def test_unchanged_outputs_open_in_excel_are_no_error(run12, tmp_path):
    """The same run again while the crew has every CSV open: nothing in them changes, so nothing needs replacing
    (it was exit 2 for frames.csv, rewritten on every run)."""
    drive, out = _copy_run(run12, tmp_path)
    assert _run(drive, out, run12["cfg"]).returncode == 0  # here, without --store
    (out / "summary.json").unlink()
    r = _run(drive, out, run12["cfg"], held="out/frames.csv,out/detections.csv,repair_list.csv,candidates.geojson")
    assert r.returncode == 0, r.stderr
    assert (out / "summary.json").is_file()


def test_crops_open_in_a_photo_viewer_while_the_run_rewrites_and_prunes_them(run12, tmp_path):
    """A rerun with other privacy settings cuts every crop again, and an earlier run's crop must go; the crew has
    one crop of each kind open in the photo viewer. The prune (keep_only_photos) deleted without asking: an internal
    error (exit 1, PermissionError) after the crops, no outputs; the crop that could not be replaced was silently
    kept and linked. Now: every other crop and output written, the open crop untouched, not recorded as cut and not
    linked (it shows the old photo), the old crop stays, one line names both (exit 2); the next run fixes both."""
    drive, out = _copy_run(run12, tmp_path)
    crops = sorted((out / "crops").glob("*.jpg"))
    held, old = crops[0], out / "crops" / "C-0000000000.jpg"
    old.write_bytes(crops[1].read_bytes())  # an earlier run's crop, no longer a candidate of this OUT
    before = held.read_bytes()
    others = {p: p.read_bytes() for p in crops[1:]}
    cfg = tmp_path / "city.yaml"
    cfg.write_text(RUN_CONFIG + "  blur_outside_box: true\n", encoding="utf-8")
    r = _run(drive, out, cfg, held=f"crops/{held.name},crops/{old.name}")
    line = one_error_line(r, 2)
    assert line.startswith(f"error: {held}, {old}: cannot replace or remove these files"), line
    assert "photo viewer" in line and "close them and run the same command again" in line, line
    assert held.read_bytes() == before and old.is_file()
    assert all(p.read_bytes() != data for p, data in others.items())  # cut again: blurred outside the box
    assert held.stem not in json.loads((out / ".work" / "crops.json").read_text())
    rows = list(csv.DictReader((out / "repair_list.csv").open(encoding="utf-8-sig")))
    photos = {r["candidate_id"]: r["photo"] for r in rows}
    assert photos[held.stem] == "" and all(photos[p.stem] == f"crops/{p.name}" for p in crops[1:]), photos
    assert f"crops/{held.name}" not in (out / "report.html").read_text(encoding="utf-8")
    # the viewer closed: the crop is cut again, linked, and the old one goes
    r = _run(drive, out, cfg)
    assert r.returncode == 0, r.stderr
    assert held.read_bytes() != before and not old.exists()
    rows = list(csv.DictReader((out / "repair_list.csv").open(encoding="utf-8-sig")))
    assert {r["candidate_id"]: r["photo"] for r in rows}[held.stem] == f"crops/{held.name}"


def test_export_photos_open_in_a_photo_viewer(run12, tmp_path):
    """`patrol export --format csv` while the crew looks at two of the last list's photos: one of a damage no longer
    listed (the prune deleted it unasked: internal error, exit 1) and one whose file holds another photo (written
    first, it stopped the export: the list not written). Now the list and the other photos are written, the held
    photo not linked, one line names both (exit 2); the next export, viewer closed, makes the folder exact."""
    from detector.store import Store

    store = tmp_path / "registry.gpkg"
    store.write_bytes(run12["store"].read_bytes())
    lst = tmp_path / "list.csv"
    r = win_patrol("export", store, "--format", "csv", "--out", lst)
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "list_csv_crops"
    photos = sorted(folder.glob("*.jpg"))
    assert len(photos) == 3
    gone, other = photos[0], photos[1]
    r = win_patrol("status", store, gone.stem, "--set", "not_an_issue")
    assert r.returncode == 0, r.stderr
    real = other.read_bytes()
    other.write_bytes(photos[2].read_bytes())  # the file holds another damage's photo
    r = win_patrol("export", store, "--format", "csv", "--status", "new", "--out", lst,
                   open_in_excel=f"{gone.name},{other.name}")
    line = one_error_line(r, 2)
    assert line.startswith(f"error: {other}, {gone}: cannot replace or remove these files"), line
    assert "photo viewer" in line, line
    rows = {r["candidate_id"]: r["photo"] for r in csv.DictReader(lst.open(encoding="utf-8-sig"))}
    assert set(rows) == {other.stem, photos[2].stem}
    assert rows[other.stem] == "" and rows[photos[2].stem] == f"list_csv_crops/{photos[2].name}"
    assert gone.is_file() and other.read_bytes() == photos[2].read_bytes()
    r = win_patrol("export", store, "--format", "csv", "--status", "new", "--out", lst)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in folder.iterdir()) == sorted([other.name, photos[2].name])
    assert other.read_bytes() == real
    with Store(store) as st:
        assert bytes(st.query(status=["new"]).set_index("candidate_id").loc[other.stem, "crop_jpeg"]) == real


def test_video_frames_open_in_a_photo_viewer_when_the_video_is_taken_again(tmp_path, monkeypatch):
    """A dashcam video taken again (other frames.video_every_m) while the viewer holds three of its earlier frames:
    one the new sampling keeps too (the same picture), one it no longer keeps, and one whose file holds another
    picture. The old frames were deleted first, unasked: PermissionError, and the whole video was rejected as
    "unreadable", its frames lost. Now the frames are written, the same picture is used as it is, the other picture
    is left out (no index.json: the next run takes the video again), the old frame stays; both named; the frames
    stage is not marked done; once the viewer is closed the next run gives every frame and an exact folder."""
    from test_video import cfg_with, video_drive, write_video

    pytest.importorskip("cv2")
    from detector.atomic import BusyOutputs
    from detector.pipeline import Manifest, RunSummary, VIDEO_FRAMES, stage_frames
    from detector.frames import scan_drive
    from detector.config import Config

    ph = [f for f in scan_drive(need(TOYAMA / P1), Config()) if f.ok][:41]
    src = write_video(tmp_path / "src.mp4", ph, fps=2)  # test_video's MP4 of the first 41 photos
    drive = video_drive(tmp_path / "d", src, ph)
    out = tmp_path / "out"
    (out / ".work").mkdir(parents=True)
    first = stage_frames([drive], cfg_with(video_every_m=20.0), out, Manifest(out), RunSummary(out=out))
    folder = next((out / VIDEO_FRAMES).rglob("index.json")).parent
    old = {f.name: Path(f.path) for f in first if "@" in f.name}
    cfg = cfg_with(video_every_m=10.0)
    want = [f.name for f in stage_frames([drive], cfg, tmp_path / "ref", Manifest(tmp_path / "ref"),
                                         RunSummary(out=tmp_path / "ref")) if "@" in f.name]
    both = sorted(set(old) & set(want))
    dropped = sorted(set(old) - set(want))
    assert len(both) >= 2 and dropped, (sorted(old), want)
    same, changed, stale = old[both[0]], old[both[1]], old[dropped[0]]
    other = stale.read_bytes()
    changed.write_bytes(other)  # another picture under this frame's name
    winsim.held_open(monkeypatch, same.name, changed.name, stale.name)
    busy = BusyOutputs()
    s = RunSummary(out=out)
    got = stage_frames([drive], cfg, out, Manifest(out), s, busy=busy)
    names = [f.name for f in got if "@" in f.name]
    assert not s.videos[0].problem and names == [n for n in want if n != both[1]], s.videos[0]
    assert sorted(busy.paths) == sorted([str(changed), str(stale)])
    assert stale.is_file() and not (folder / "index.json").exists()
    assert "frames" not in Manifest(out).data
    monkeypatch.undo()  # the viewer closed
    s = RunSummary(out=out)
    got = stage_frames([drive], cfg, out, Manifest(out), s)
    assert [f.name for f in got if "@" in f.name] == want and not s.videos[0].reused
    assert sorted(p.name for p in folder.glob("*.jpg")) == sorted(Path(f.path).name for f in got if "@" in f.name)
    assert changed.read_bytes() != other and not stale.exists() and (folder / "index.json").is_file()


def test_detect_with_frames_csv_open_writes_detections_and_names_it(run12, tmp_path):
    """`patrol detect` while frames.csv of the last detect is open in Excel: detections.csv is written, frames.csv
    left as it was, one line (exit 2), no summary.json."""
    out = tmp_path / "det"
    out.mkdir()
    (out / "frames.csv").write_text("the crew's open copy\n", encoding="utf-8")
    r = win_patrol("detect", run12["drive"], "--out", out, "--config", run12["cfg"], open_in_excel="det/frames.csv")
    line = one_error_line(r, 2)
    assert line.startswith(f"error: {out / 'frames.csv'}: cannot replace this file") and "Excel" in line, line
    assert (out / "frames.csv").read_text(encoding="utf-8") == "the crew's open copy\n"
    assert (out / "detections.csv").read_bytes() == (run12["out"] / "detections.csv").read_bytes()
    assert not (out / "summary.json").exists()


def test_no_usable_frame_while_frames_csv_is_open_is_still_exit_3(tmp_path):
    """A drive without one usable frame is a bad input (exit 3), also when frames.csv, where the reasons go, is open
    in Excel (the OutputInUseError took its place: exit 2, the input's problem unsaid)."""
    drive, out = tmp_path / "texts", tmp_path / "out"
    drive.mkdir()
    out.mkdir()
    (drive / "memo.jpg").write_text("not a photo", encoding="utf-8")
    (out / "frames.csv").write_text("the crew's open copy\n", encoding="utf-8")
    r = win_patrol("run", drive, "--roads", TOYAMA / "roads.geojson", "--out", out, open_in_excel="out/frames.csv")
    line = one_error_line(r, 3)
    assert line.startswith(f"error: {drive}: no usable frames") and "not_an_image 1" in line, line
    assert f"{out / 'frames.csv'} is open in Excel, a browser or another program and holds an earlier run's rows" in line
    assert (out / "frames.csv").read_text(encoding="utf-8") == "the crew's open copy\n"


def test_many_held_files_in_one_line_and_a_delete_refused_for_a_moment(tmp_path, monkeypatch):
    from detector import atomic

    busy = atomic.BusyOutputs()
    for i in range(7):
        busy.add(atomic.in_use(tmp_path / f"C-{i}.jpg", PermissionError(13, "in use"), "remove"))
    with pytest.raises(atomic.OutputInUseError) as e:
        busy.check()
    assert str(e.value).startswith(f"{tmp_path / 'C-0.jpg'}, ") and f"{tmp_path / 'C-4.jpg'} and 2 more: " \
        "cannot remove these files: they are probably open in a photo viewer or another program" in str(e.value)
    # a virus scanner holds a file for a moment: the delete is tried again
    real, calls = os.unlink, []

    def busy_twice(path, *a, **k):
        calls.append(path)
        if len(calls) <= 2:
            raise PermissionError(13, "The process cannot access the file because it is being used by another process")
        return real(path, *a, **k)

    (tmp_path / "old.jpg").write_bytes(b"\xff\xd8\xff")
    monkeypatch.setattr(os, "unlink", busy_twice)
    atomic.keep_only_photos(tmp_path, set())
    assert not (tmp_path / "old.jpg").exists() and len(calls) == 3
