"""Hardening of `patrol run` end to end (issue 5): bad uploads cost no good frame or candidate, a run killed
anywhere (kill -9) resumes to byte-identical outputs, two runs into one registry are serialised and both
land, outputs are atomic, hostile names are escaped and never escape OUT.

Every run here goes through the real CLI (a subprocess, so kill -9 is real) over 12 frames of the sample
drive with a low-threshold config (the shipped model is an early checkpoint), detection at 320 px in
batches of 2 (so `detect_batch` is passed several times) and no privacy blur (the slow part of crops).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from badinputs import SKIPPED, corrupt_scans, make_bad_corpus
from conftest import TOYAMA, need

ROOT = Path(__file__).resolve().parent.parent
P1, P2 = "toyama-2026-11-p1", "toyama-2026-11-p2"
N_FRAMES = 12
OUTPUTS = ["frames.csv", "detections.csv", "candidates.geojson", "repair_list.csv", "segments.geojson", "report.html"]
CONFIG = """\
classes:
  D00: {threshold: 0.05}
  D10: {threshold: 0.05}
  D20: {threshold: 0.05}
  D40: {threshold: 0.05}
detect:
  imgsz: 320
  batch: 2
privacy:
  blur_faces: false
  blur_plates: false
"""
# registry columns that legitimately differ between two runs of the same inputs (wall-clock times, and the run ids
# named after the merge time)
TIME_COLUMNS = {"status_changed_at", "at", "merged_at", "run_id", "created_run"}
RUN_IN_WHO = re.compile(r"run \d{8}T\d{6}[^,)]*")  # a run id named in a history row's who (patrol (run <id>, …))


# ------------------------------------------------------------------------------------------------ helpers


def _sigint_default() -> None:
    """In the child before it starts: Ctrl-C as a terminal gives it. A test run started in the background by a shell
    without job control (`cmd &` in a script, nohup, some CI runners) ignores SIGINT, and a Python started with it
    ignored never turns it into KeyboardInterrupt: the Ctrl-C test then saw the run finish (exit 0)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def patrol(*args, env: dict | None = None, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith("PATROL_") or k == "PATROL_SHARED"}
    e.update(env or {})
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], cwd=cwd or ROOT, env=e,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=_sigint_default)


def patrol_bg(*args, env: dict | None = None) -> subprocess.Popen:
    e = {k: v for k, v in os.environ.items() if not k.startswith("PATROL_") or k == "PATROL_SHARED"}
    e.update(env or {})
    return subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *map(str, args)], cwd=ROOT, env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_default)


def ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


def copy_frames(drive: str, dest: Path, n: int = N_FRAMES) -> list[Path]:
    src = need(TOYAMA / drive)
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for p in sorted(src.glob("IMG_2026*.jpg"))[:n]:
        shutil.copy2(p, dest / p.name)
        out.append(dest / p.name)
    return out


def run_args(drive_dir: Path, out: Path, cfg: Path, store: Path | None = None, roads: Path | None = None) -> list:
    a = ["run", drive_dir, "--roads", roads or TOYAMA / "roads.geojson", "--out", out, "--config", cfg]
    return a + (["--store", store] if store else [])


def outputs(out: Path) -> dict[str, bytes]:
    d = {}
    for name in OUTPUTS:
        data = (out / name).read_bytes()
        if name == "report.html":  # the report says when it was generated (minute resolution)
            data = re.sub(rb'"generated":"[^"]*"', b'"generated":""', data)
            data = re.sub(rb'"status_changed_at":"[^"]*"', b'"status_changed_at":""', data)  # with --store (below)
            data = re.sub(rb'"crew":\{[^}]*\}', b'"crew":{}', data)  # its key: a hash of those times, and the day
        if name == "repair_list.csv" and data.split(b"\r\n", 1)[0].endswith(b",status_changed_at"):
            # with --store, its last column is the registry's wall-clock time of the status (as TIME_COLUMNS)
            data = re.sub(rb",[^,\r\n]*\r\n", b",\r\n", data)
        d[name] = data
    d["crops"] = sorted(p.name for p in (out / "crops").iterdir()) if (out / "crops").is_dir() else []
    return d


def registry(store: Path, tables=("candidates", "observations", "status_history", "patrol_meta")) -> dict:
    """Every row of the registry tables, minus the wall-clock columns."""
    con = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        res = {}
        for t in tables:
            cur = con.execute(f'SELECT * FROM "{t}" ORDER BY 1')
            cols = [c[0] for c in cur.description]
            keep = [i for i, c in enumerate(cols) if c not in TIME_COLUMNS]
            who = cols.index("who") if "who" in cols else -1  # "patrol (run <id>, …)": the run id is wall-clock too
            res[t] = [tuple(RUN_IN_WHO.sub("run <id>", row[i]) if i == who and isinstance(row[i], str) else row[i]
                            for i in keep) for row in cur.fetchall()]
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return res
    finally:
        con.close()


def registry_content(store: Path) -> list[tuple]:
    """Order-independent content of a registry (ids depend on which run merged first)."""
    con = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT candidate_id, class, n_obs, images, status FROM candidates").fetchall()
        obs = {}
        for cid, drive, image, cls, x1, y1, x2, y2 in con.execute(
                "SELECT candidate_id, drive, image, class, x1, y1, x2, y2 FROM observations"):
            obs.setdefault(cid, []).append((drive, image, cls, x1, y1, x2, y2))
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
    return sorted((cls, n, tuple(sorted(json.loads(images))), st, tuple(sorted(obs.get(cid, []))))
                  for cid, cls, n, images, st in rows)


def assert_no_duplicates(store: Path) -> None:
    con = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        n = con.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
        assert n == con.execute("SELECT COUNT(DISTINCT candidate_id) FROM candidates").fetchone()[0]
        dup = con.execute("SELECT drive, image, class, x1, y1, x2, y2, COUNT(*) FROM observations "
                          "GROUP BY drive, image, class, x1, y1, x2, y2, owner HAVING COUNT(*) > 1").fetchall()
        assert not dup, dup
        # n_obs agrees with the observations actually stored
        bad = con.execute("SELECT c.candidate_id, c.n_obs, COUNT(o.obs_id) FROM candidates c LEFT JOIN observations o "
                          "ON o.candidate_id = c.candidate_id GROUP BY c.candidate_id HAVING c.n_obs != COUNT(o.obs_id)"
                          ).fetchall()
        assert not bad, bad
    finally:
        con.close()


def candidate_set(out: Path) -> list[tuple]:
    """candidates.geojson minus ids: what a candidate is (class, where, how often seen, on which frames: the latest
    drive's)."""
    feats = json.loads((out / "candidates.geojson").read_text(encoding="utf-8"))["features"]
    return sorted((p["class"], p["segment_id"], round(float(p["chainage_m"]), 1), int(p["n_obs"]), p["best_image"],
                   p["n_drives"], p["last_drive"], tuple(p["last_images"]), round(float(p["confidence"]), 3)) for p in (f["properties"] for f in feats))


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    need(TOYAMA)
    return tmp_path_factory.mktemp("hardening")


@pytest.fixture(scope="module")
def cfg_path(work) -> Path:
    p = work / "patrol-test.yaml"
    p.write_text(CONFIG, encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def p1_drive(work) -> Path:
    d = work / "drives" / P1
    copy_frames(P1, d)
    return d


@pytest.fixture(scope="module")
def p2_drive(work) -> Path:
    d = work / "drives" / P2
    copy_frames(P2, d)
    return d


@pytest.fixture(scope="module")
def baseline(work, p1_drive, cfg_path) -> dict:
    """One uninterrupted run over the good frames of p1 into a fresh registry: the reference."""
    out = work / "baseline"
    store = work / "baseline.gpkg"
    ok(patrol(*run_args(p1_drive, out, cfg_path, store)))
    res = {"out": out, "store": store, "outputs": outputs(out), "registry": registry(store)}
    # the test config must make the tests meaningful: there are detections and candidates to lose
    assert len(json.loads((out / "candidates.geojson").read_text())["features"]) >= 3
    # summary.json (for a scheduled job) counts what frames.csv and candidates.geojson hold
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    rows = list(csv.DictReader((out / "frames.csv").open(encoding="utf-8-sig")))
    assert doc["command"] == "run" and doc["frames"]["total"] == len(rows)
    assert doc["frames"]["used"] == sum(r["status"] == "ok" for r in rows) and doc["frames"]["rejected"] == sum(
        r["status"] == "rejected" for r in rows)
    assert doc["candidates"] == len(json.loads((out / "candidates.geojson").read_text())["features"])
    assert doc["registry"]["new"] == doc["candidates"] and set(doc["stage_seconds"]) >= {"frames", "detect", "crops"}
    return res


# ------------------------------------------------------------------------------- (1) bad-input corpus


def _gray_frame(path: Path) -> Path:
    """A featureless frame: the corpus's pixels, so the corpus's usable frames add no damage of their own."""
    from PIL import Image

    Image.new("RGB", (640, 480), (128, 128, 128)).save(path, "JPEG", quality=90)
    return path


def test_bad_inputs_are_used_or_rejected_and_cost_no_candidate(work, cfg_path, baseline):
    drive = work / "corpus" / P1
    good = copy_frames(P1, drive)
    expected = make_bad_corpus(drive, [_gray_frame(work / "gray.jpg")])
    # more litter the corpus cannot make as root (a permission-less file is readable by root)
    os.mkfifo(drive / "pipe.jpg")  # opening a FIFO blocks forever: it must be refused without opening it
    expected["pipe.jpg"] = "not_an_image"  # "not a regular file"
    os.symlink(drive / "gone.jpg", drive / "dangling.jpg")
    expected["dangling.jpg"] = "unreadable"
    for p in good:
        expected[p.name] = "ok"
    for name, data in corrupt_scans(good[0].read_bytes()).items():  # headers fine, image data damaged
        (drive / name).write_bytes(data)
        expected[name] = "decode_failed"

    out = work / "corpus-out"
    r = ok(patrol(*run_args(drive, out, cfg_path), timeout=240))

    import csv

    with open(out / "frames.csv", encoding="utf-8", newline="") as fh:
        rows = {row["name"]: row for row in csv.DictReader(fh)}
    missing = sorted(set(expected) - set(rows))
    assert not missing, f"inputs missing from frames.csv: {missing} (skipped here: {SKIPPED})"
    extra = sorted(set(rows) - set(expected))
    assert not extra, f"unexpected rows in frames.csv: {extra}"
    wrong = {}
    for name, exp in expected.items():
        row = rows[name]
        got = "ok" if row["status"] == "ok" else row["reason"].split(":")[0].strip()
        if row["status"] not in ("ok", "rejected") or got != exp or (row["status"] == "rejected") != bool(row["reason"]):
            wrong[name] = (exp, row["status"], row["reason"])
    assert not wrong, f"wrong status/reason (expected, status, reason): {wrong}"
    # odd but usable frames are placed correctly
    assert float(rows["south_west.jpg"]["lat"]) < 0 and float(rows["south_west.jpg"]["lon"]) < 0
    assert rows["lost_fix.jpg"]["position_source"] == "interpolated"
    assert rows[f"名前 with space ＃1.jpg"]["status"] == "ok"
    assert "rejected" in r.stdout  # the summary counts the rejections
    # libjpeg's bare "Corrupt JPEG data: ..." is replaced by our warning naming the file
    assert "Corrupt JPEG" not in r.stderr and "corrupt_garbage_mid_scan.jpg: corrupt JPEG data" in r.stderr
    # exactly the candidates the good frames give alone
    assert candidate_set(out) == candidate_set(baseline["out"])
    assert len(candidate_set(out)) >= 3
    # detections of the good frames are unchanged too
    import csv as _csv

    def det_rows(p):
        with open(p / "detections.csv", encoding="utf-8", newline="") as fh:
            return sorted(tuple(r.values()) for r in _csv.DictReader(fh) if r["image"] in {g.name for g in good})

    assert det_rows(out) == det_rows(baseline["out"])


def test_frames_added_to_a_linked_phone_folder_are_read_on_the_next_run(work, cfg_path):
    """A phone's upload folder linked into the drive folder (the scan follows folder links): photos that arrive
    after a run are read by the next run, not hidden by a frames stage that thinks nothing changed."""
    upload, drive = work / "linked" / "phone-a-upload", work / "linked" / P1
    first = copy_frames(P1, upload, n=4)
    drive.mkdir()
    (drive / "phone-a").symlink_to(upload)
    out = work / "linked-out"
    ok(patrol(*run_args(drive, out, cfg_path)))
    late = [p for p in copy_frames(P1, upload, n=8) if p not in first]  # the rest of the upload lands later
    r = ok(patrol(*run_args(drive, out, cfg_path)))
    import csv

    with open(out / "frames.csv", encoding="utf-8", newline="") as fh:
        names = {row["name"] for row in csv.DictReader(fh)}
    assert names == {f"phone-a/{p.name}" for p in first + late}
    assert "skipped" not in r.stdout


def test_a_drive_given_as_dot_or_through_a_link_is_the_folder_it_names(work, p1_drive, cfg_path, baseline):
    """`cd DRIVE && patrol run . ...` and a link named otherwise (`latest -> toyama-2026-11-p1`) are that drive:
    its frames are used (they were refused as 'no image files'), under the folder's own name."""
    (work / "latest").symlink_to(p1_drive)
    for arg, cwd in ((".", p1_drive), (work / "latest", None)):
        out = work / f"dot-out-{len(list(work.glob('dot-out-*')))}"
        r = ok(patrol("run", arg, "--roads", TOYAMA / "roads.geojson", "--out", out, "--config", cfg_path, cwd=cwd))
        assert f"patrol run: {P1}" in r.stdout
        assert candidate_set(out) == candidate_set(baseline["out"])


def test_a_late_upload_is_detected_alone_and_a_replaced_file_again(work, cfg_path, baseline):
    """One photo that arrives after the run (a phone that synced late) is detected on the next run without redoing
    the drive's other frames (a full day is minutes of detection); a photo replaced under the same name is
    detected again. Either way the outputs are those of one run over the final folder."""
    drive = work / "late" / P1
    frames = copy_frames(P1, drive)
    late = frames[-1]
    late.rename(work / "late" / late.name)
    out = work / "late-out"
    ok(patrol(*run_args(drive, out, cfg_path)))
    journal = out / ".work" / "detect.jsonl"
    before = journal.read_bytes()
    (work / "late" / late.name).rename(late)
    ok(patrol(*run_args(drive, out, cfg_path)))
    after = journal.read_bytes()
    assert after.startswith(before) and after.count(b"\n") == before.count(b"\n") + 1  # only the late photo
    assert candidate_set(out) == candidate_set(baseline["out"])

    first, other = frames[0], frames[1]  # the crew re-exported the first photo: other pixels, same name
    data = other.read_bytes()
    first.write_bytes(data)
    ok(patrol(*run_args(drive, out, cfg_path)))
    recs = [json.loads(x) for x in journal.read_bytes().splitlines()[1:]]
    mine = [r for r in recs if r["name"] == first.name]
    assert len(mine) == 2 and mine[-1]["boxes"] == next(r for r in recs if r["name"] == other.name)["boxes"]


def test_progress_shows_the_crops(work, p1_drive, cfg_path):
    """Cutting the crops takes about as long as detection on a long drive (the privacy blur): the progress display
    has a bar for it, counting every candidate, instead of sitting on a full detection bar for minutes."""
    out = work / "progress-out"
    r = ok(patrol(*run_args(p1_drive, out, cfg_path), env={"PATROL_PROGRESS": "1"}))
    n = len(json.loads((out / "candidates.geojson").read_text())["features"])
    assert n >= 3
    assert re.search(rf"Cutting crops \(privacy blur\)\s.*\b{n}/{n}\b", r.stderr), r.stderr[-2000:]
    # and the summary says where the time went
    assert re.search(r"time\s+[\d.]+ s \(roads [\d.]+, frames [\d.]+, detect [\d.]+, locate [\d.]+, crops", r.stdout), r.stdout


def test_the_drive_folder_as_its_own_output_folder_is_refused(work, cfg_path):
    """`patrol run . --out .` in a drive folder: its CSVs, crops and resume state would be read as frames of the drive
    (frames.csv listed .work/run.lock even on the first run, and the crops as frames without a fix on the next).
    Refused up front (exit 3), nothing written into the drive folder; a subfolder of it stays a valid OUT."""
    drive = work / "self-out" / P1
    copy_frames(P1, drive, n=2)
    before = sorted(p.name for p in drive.iterdir())
    for args in (run_args(Path("."), Path("."), cfg_path), ["detect", ".", "--out", ".", "--config", cfg_path]):
        r = patrol(*args, cwd=drive)
        assert r.returncode == 3 and "the output folder is the drive folder" in r.stderr, r.stderr
        assert sorted(p.name for p in drive.iterdir()) == before


def test_a_drive_folder_given_twice_is_refused_before_any_work(work, cfg_path):
    """`patrol run D D/hour-10` or one folder under two paths (a link): every frame in both would be detected twice
    and each damage counted as seen on two passes. Refused up front (exit 3, one line naming both), no outputs."""
    drive = work / "twice" / P1
    copy_frames(P1, drive / "hour-10", n=2)
    (work / "twice" / "link").symlink_to(drive)
    for args, says in (((drive, drive / "hour-10"), f"{drive / 'hour-10'}: lies inside the drive folder {drive}"),
                       ((drive, work / "twice" / "link"), "the same folder is given twice")):
        out = work / "twice-out"
        r = patrol("run", *args, "--roads", TOYAMA / "roads.geojson", "--out", out, "--config", cfg_path)
        assert r.returncode == 3 and says in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not out.exists()


def test_out_folder_inside_the_drive_folder_is_not_read_as_frames(work, cfg_path):
    """`patrol run D --out D/out` (a clerk keeping results with the photos): the run's own crops, CSVs and lock file
    are not frames — no rejected rows for them, and a second run still skips the finished stages."""
    drive = work / "out-inside" / P1
    good = copy_frames(P1, drive)
    out = drive / "patrol-out"
    ok(patrol(*run_args(drive, out, cfg_path)))
    assert any((out / "crops").iterdir())  # there are outputs the scan could pick up
    r = ok(patrol(*run_args(drive, out, cfg_path)))
    import csv

    with open(out / "frames.csv", encoding="utf-8", newline="") as fh:
        names = sorted(row["name"] for row in csv.DictReader(fh))
    assert names == sorted(p.name for p in good)
    assert "frames, detect" in r.stdout  # skipped: the inputs did not change


# ------------------------------------------------------------------------------- (2) kill -9 and resume


KILL_POINTS = ["frames_written", "detect_batch", "detect_batch:2", "detections_written", "before_store",
               "candidates_written"]


def resume_to_baseline(drive: Path, out: Path, cfg: Path, store: Path, baseline: dict, what: str) -> None:
    """Run the same command again: it must finish to the uninterrupted run's outputs and registry."""
    ok(patrol(*run_args(drive, out, cfg, store)))
    got = outputs(out)
    for name, data in baseline["outputs"].items():
        assert got[name] == data, f"{name} differs after {what} and resume"
    assert registry(store) == baseline["registry"]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_run_resumes_to_identical_outputs(work, p1_drive, cfg_path, baseline, point):
    tag = point.replace(":", "_")
    out, store = work / f"kill-{tag}", work / f"kill-{tag}.gpkg"
    r = patrol(*run_args(p1_drive, out, cfg_path, store), env={"PATROL_KILL_AT": point})
    assert r.returncode == -signal.SIGKILL, f"not killed at {point}: exit {r.returncode}\n{r.stderr}"
    if point in ("frames_written", "detect_batch", "detect_batch:2", "detections_written", "before_store"):
        # killed before the merge: the registry holds nothing of this run (created empty, or not at all)
        assert not store.exists() or registry(store)["candidates"] == []
    resume_to_baseline(p1_drive, out, cfg_path, store, baseline, f"kill at {point}")
    assert_no_duplicates(store)
    # and a third run changes nothing at all
    before = {p: p.read_bytes() for p in [out / n for n in OUTPUTS[:5]] + [store]}
    ok(patrol(*run_args(p1_drive, out, cfg_path, store)))
    assert {p: p.read_bytes() for p in before} == before


def test_killed_while_cutting_crops_keeps_the_crops_it_had_cut(work, p1_drive, cfg_path, baseline):
    """Crops cost more than detection per candidate (the privacy blur): on a long drive that is minutes. A run
    killed part-way through them resumes with the crops already cut, not from the first one."""
    out, store = work / "kill-crops", work / "kill-crops.gpkg"
    r = patrol(*run_args(p1_drive, out, cfg_path, store), env={"PATROL_KILL_AT": "crops_index_saved"})
    assert r.returncode == -signal.SIGKILL, f"not killed while cutting crops: exit {r.returncode}\n{r.stderr}"
    index = json.loads((out / ".work" / "crops.json").read_text(encoding="utf-8"))
    cut = {c: (out / "crops" / f"{c}.jpg").stat().st_mtime_ns for c in index}
    assert cut and len(cut) < len(baseline["outputs"]["crops"])  # some crops cut, some not yet
    resume_to_baseline(p1_drive, out, cfg_path, store, baseline, "kill while cutting crops")
    assert {c: (out / "crops" / f"{c}.jpg").stat().st_mtime_ns for c in cut} == cut  # reused, not cut again


def test_a_drive_without_usable_frames_is_an_error_alone_and_a_warning_beside_good_ones(work, p1_drive, cfg_path,
                                                                                       baseline):
    empty, texts = work / "empty-drive", work / "notes-drive"
    empty.mkdir()
    texts.mkdir()
    (texts / "memo.txt").write_text("patrol memo\n")
    roads = TOYAMA / "roads.geojson"
    r = patrol("run", empty, "--roads", roads, "--out", work / "empty-out", "--config", cfg_path)
    assert r.returncode == 3 and f"{empty}: no image files" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = patrol("run", texts, empty, "--roads", roads, "--out", work / "texts-out", "--config", cfg_path)
    assert r.returncode == 3, r.stderr
    assert f"{texts}: no usable frames: 1 file rejected (not_an_image 1;" in r.stderr
    assert "frames.csv" in r.stderr and (work / "texts-out" / "frames.csv").is_file()
    r = patrol("detect", empty, "--out", work / "empty-detect", "--config", cfg_path)
    assert r.returncode == 3 and "no image files" in r.stderr, r.stderr
    # beside a good drive: the run goes on, says so, and its candidates are those of the good drive alone
    out = work / "with-empty"
    r = ok(patrol("run", p1_drive, empty, "--roads", roads, "--out", out, "--config", cfg_path))
    text = " ".join(r.stdout.split())  # the summary table wraps long lines
    assert "warning" in text and "no image files" in text
    assert candidate_set(out) == candidate_set(baseline["out"])
    # the patrol log has the empty drive's row, without times (it crashed on them: pandas' NaT beside p1's times)
    log = {r["drive"]: r for r in csv.DictReader(io.StringIO((out / "patrol_log.csv").read_text("utf-8-sig")))}
    assert set(log) == {p1_drive.name, empty.name}, log
    assert (log[empty.name]["frames_used"], log[empty.name]["start"], log[empty.name]["date"]) == ("0", "", "")
    assert log[p1_drive.name]["start"] and int(log[p1_drive.name]["frames_used"]) == N_FRAMES


def test_ctrl_c_exits_130_and_the_same_command_resumes(work, p1_drive, cfg_path, baseline):
    """Ctrl-C in the middle of detection: exit 130 and the README's one line (a cron job must not see success),
    no registry change; running the same command again finishes to the uninterrupted outputs."""
    out, store = work / "ctrl-c", work / "ctrl-c.gpkg"
    r = patrol(*run_args(p1_drive, out, cfg_path, store),
               env={"PATROL_KILL_AT": "detect_batch:2", "PATROL_KILL_SIGNAL": "SIGINT"})
    assert r.returncode == 130, f"exit {r.returncode}\n{r.stderr}"
    assert "interrupted; run the same command again to resume" in r.stderr and "Traceback" not in r.stderr
    assert not (out / "candidates.geojson").exists()
    assert not store.exists() or registry(store)["candidates"] == []
    resume_to_baseline(p1_drive, out, cfg_path, store, baseline, "Ctrl-C")


def test_killed_inside_the_registry_merge_leaves_it_untouched(work, p1_drive, cfg_path, baseline):
    """kill -9 while the merge transaction is open (the store's test hook dirties it first): the registry is
    never half-merged, and the rerun lands exactly once."""
    out, store = work / "kill-merge", work / "kill-merge.gpkg"
    shutil.copytree(baseline["out"], out)  # detection done: straight to the merge
    marker = work / "kill-merge.marker"
    p = patrol_bg(*run_args(p1_drive, out, cfg_path, store),
                  env={"PATROL_STORE_TEST_SLEEP_IN_TXN": "30", "PATROL_STORE_TEST_MARKER": str(marker)})
    try:
        t0 = time.monotonic()
        while not marker.exists():
            assert p.poll() is None, p.communicate()
            assert time.monotonic() - t0 < 120, "merge never started"
            time.sleep(0.05)
        p.send_signal(signal.SIGKILL)
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert registry(store)["candidates"] == []  # the dirty transaction is rolled back on next open
    ok(patrol(*run_args(p1_drive, out, cfg_path, store)))
    assert registry(store) == baseline["registry"]
    assert_no_duplicates(store)


# ------------------------------------------------------------------------------- (3)(4) concurrent runs


def _wait_marker(p: subprocess.Popen, marker: Path, limit: float = 120) -> None:
    t0 = time.monotonic()
    while not marker.exists():
        if p.poll() is not None:
            out, err = p.communicate()
            pytest.fail(f"run ended before its merge: exit {p.returncode}\n{err}")
        assert time.monotonic() - t0 < limit, "merge never started"
        time.sleep(0.05)


def _finish(p: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def test_two_drives_into_one_registry_at_once_both_land(work, p1_drive, p2_drive, cfg_path, baseline):
    # sequential references, both orders (registry ids depend on the order; the content may too)
    out1, out2 = work / "conc-p1", work / "conc-p2"
    shutil.copytree(baseline["out"], out1)
    seq_a, seq_b = work / "seq-a.gpkg", work / "seq-b.gpkg"
    ok(patrol(*run_args(p1_drive, out1, cfg_path, seq_a)))
    ok(patrol(*run_args(p2_drive, out2, cfg_path, seq_a)))
    ok(patrol(*run_args(p2_drive, out2, cfg_path, seq_b)))
    ok(patrol(*run_args(p1_drive, out1, cfg_path, seq_b)))
    refs = [registry_content(seq_a), registry_content(seq_b)]
    n_p2_alone = len(json.loads((out2 / "candidates.geojson").read_text())["features"])
    assert n_p2_alone >= 1

    # at once: A holds the merge transaction for a while; B starts meanwhile and must wait for it
    store = work / "conc.gpkg"
    ma, mb = work / "conc-a.marker", work / "conc-b.marker"
    a = patrol_bg(*run_args(p1_drive, out1, cfg_path, store),
                  env={"PATROL_STORE_TEST_SLEEP_IN_TXN": "4", "PATROL_STORE_TEST_MARKER": str(ma)})
    try:
        _wait_marker(a, ma)
        b = patrol_bg(*run_args(p2_drive, out2, cfg_path, store),
                      env={"PATROL_STORE_TEST_SLEEP_IN_TXN": "0.5", "PATROL_STORE_TEST_MARKER": str(mb)})
        ra = _finish(a)
        t_a_done = time.time()
        rb = _finish(b)
    finally:
        for p in (a, locals().get("b")):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    for rc, so, se in (ra, rb):
        assert rc == 0, se
        assert "locked" not in se.lower() and "Traceback" not in se
    # B entered its transaction only after A committed (serialised, not interleaved)
    assert mb.stat().st_mtime >= ma.stat().st_mtime
    assert mb.stat().st_mtime <= t_a_done + 60
    got = registry_content(store)
    assert got in refs, "concurrent merges differ from both sequential orders"
    assert_no_duplicates(store)
    con = sqlite3.connect(store)
    drives = {x for (d,) in con.execute("SELECT drives FROM candidates") for x in json.loads(d)}
    n_runs = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    con.close()
    assert {P1, P2} <= drives and n_runs == 2


def test_same_drive_twice_at_once_equals_one_run(work, p1_drive, cfg_path, baseline):
    store = work / "twice.gpkg"
    procs = []
    try:
        for k in range(2):
            procs.append(patrol_bg(*run_args(p1_drive, work / f"twice-{k}", cfg_path, store),
                                   env={"PATROL_STORE_TEST_SLEEP_IN_TXN": "1"}))
        results = [_finish(p) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for rc, so, se in results:
        assert rc == 0, se
        assert "locked" not in se.lower()
    assert registry(store) == baseline["registry"]
    assert_no_duplicates(store)
    for k in range(2):
        assert outputs(work / f"twice-{k}") == baseline["outputs"]


# ------------------------------------------------------------------------------- (5) atomic writes


def test_atomic_write_failure_keeps_the_previous_file(tmp_path, monkeypatch):
    from detector import atomic

    target = tmp_path / "candidates.geojson"
    target.write_text("previous", encoding="utf-8")

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError):
        atomic.atomic_write_text(target, "new content that never lands")
    with pytest.raises(RuntimeError):
        with atomic.atomic_write(target) as fh:
            fh.write("half")
            raise RuntimeError("writer died")
    monkeypatch.undo()
    assert target.read_text(encoding="utf-8") == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candidates.geojson"]  # no temp file left
    atomic.atomic_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candidates.geojson"]


_KILL_WRITER = r"""
import os, signal, sys
from detector.atomic import atomic_write
with atomic_write(sys.argv[1]) as fh:
    fh.write("x" * 100000)
    fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_kill_during_atomic_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "repair_list.csv"
    target.write_text("previous", encoding="utf-8")
    r = subprocess.run([sys.executable, "-c", _KILL_WRITER, str(target)], cwd=ROOT, capture_output=True)
    assert r.returncode == -signal.SIGKILL
    assert target.read_text(encoding="utf-8") == "previous"
    # kill -9 cannot clean up: what is left is a hidden temp file, never something that looks like an output
    left = [p.name for p in tmp_path.iterdir() if p.name != target.name]
    assert all(n.startswith(".") and n.endswith(".tmp") for n in left), left


def test_killed_runs_leave_no_visible_temp_files(work):
    """After all the kill -9 tests above: every visible file in every run folder is a real output."""
    seen = 0
    for out in work.glob("kill-*"):
        if not out.is_dir():
            continue
        for p in out.rglob("*"):
            seen += 1
            rel = p.relative_to(out)
            if any(part.startswith(".") for part in rel.parts):
                continue
            assert not p.name.endswith(".tmp"), rel
    if not seen:
        pytest.skip("the kill tests did not run in this session")


# ------------------------------------------------------------------------------- crops/ = the rows' photos


def test_crops_folder_holds_exactly_the_rows_photos(tmp_path):
    """Week 2 of the sample: p1 + p2 into a registry, then p2 again into the same OUT. The registry folds two of
    the run's pieces into one damage, and the earlier run's candidates are gone from the list: crops/ holds the
    listed rows' photos and nothing else (before: 31 JPEGs for 29 rows)."""
    import csv

    cfg = tmp_path / "no-blur.yaml"  # the shipped thresholds; no blur, the slow part of crops
    cfg.write_text("privacy:\n  blur_faces: false\n  blur_plates: false\n", encoding="utf-8")
    out, store = tmp_path / "out", tmp_path / "registry.gpkg"
    p1, p2 = need(TOYAMA / P1), need(TOYAMA / P2)
    ok(patrol("run", p1, p2, "--roads", TOYAMA / "roads.geojson", "--out", out, "--config", cfg, "--store", store))
    assert len(list((out / "crops").glob("*.jpg"))) == 31
    ok(patrol(*run_args(p2, out, cfg, store)))
    with open(out / "repair_list.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    photos = [r["photo"] for r in rows]
    assert len(photos) == 29 and all(photos)
    assert sorted(f"crops/{p.name}" for p in (out / "crops").iterdir()) == sorted(photos)
    # report.html's popups link the same full crops (the run's ids, under the registry's), relative to OUT
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>',
                                (out / "report.html").read_text(encoding="utf-8"), re.S).group(1))
    assert {c["candidate_id"]: c["photo"] for c in data["candidates"]} == {r["candidate_id"]: r["photo"] for r in rows}
    assert not (out / "report_html_crops").exists()  # not a second copy of crops/


# ------------------------------------------------------------------------------- hostile names, escaping


def test_safe_child_never_escapes(tmp_path):
    from detector.atomic import safe_child

    base = tmp_path / "out" / "crops"
    base.mkdir(parents=True)
    for name in ["../../etc/passwd", "..", ".", "", "/etc/passwd", "..\\..\\windows\\system32", "a/../../b.jpg",
                 "C-1234.jpg", ".hidden", "<script>alert(1)</script>.jpg", "x\x00y.jpg", "名前 ＃1.jpg",
                 "....//....//x", "~root", "con:", "\n.jpg"]:
        p = safe_child(base, name)
        assert p.parent == base.resolve(), (name, p)
        assert p.name not in ("", ".", "..") and not p.name.startswith(".")
        assert "/" not in p.name and "\\" not in p.name and "\x00" not in p.name
    assert safe_child(base, "C-1234.jpg").name == "C-1234.jpg"


HOSTILE = ["<script>alert(1)</script>", "\"><img src=x onerror=alert(2)>", "';alert(3)//", "]]></x>&amp;"]


def _hostile_drive(src: list[Path], dest: Path) -> dict[str, str]:
    """Good frames renamed to hostile names, EXIF make/model/software set to markup; returns old -> new name."""
    from PIL import Image

    dest.mkdir(parents=True)
    names = {}
    for i, p in enumerate(src):
        h = HOSTILE[i % len(HOSTILE)]
        new = f"{p.stem}{h.replace('/', '_')}.jpg"
        with Image.open(p) as im:
            exif = im.getexif()
            exif[0x010F] = HOSTILE[0]  # Make
            exif[0x0110] = HOSTILE[1]  # Model
            exif[0x0131] = HOSTILE[2]  # Software
            im.save(dest / new, "JPEG", quality=95, exif=exif)
        names[p.name] = new
    return names


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def test_hostile_names_are_escaped_end_to_end(work, p1_drive, cfg_path, tmp_path):
    drive = tmp_path / f"drive <b onclick=\"x\"> {P1}"
    names = _hostile_drive(sorted(p1_drive.glob("*.jpg")), drive)
    roads = tmp_path / "roads.geojson"
    gj = json.loads((TOYAMA / "roads.geojson").read_text(encoding="utf-8"))
    for i, f in enumerate(gj["features"]):
        f["properties"]["name"] = HOSTILE[i % len(HOSTILE)] + " 通り"
    roads.write_text(json.dumps(gj, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "out"
    store = tmp_path / "reg.gpkg"
    before = set(tmp_path.iterdir())
    ok(patrol(*run_args(drive, out, cfg_path, store, roads=roads)))
    # nothing was written outside OUT (and the store we named)
    assert set(tmp_path.iterdir()) == before | {out, store}
    for p in out.rglob("*"):
        assert p.resolve().is_relative_to(out.resolve())
    crops = sorted((out / "crops").iterdir())
    assert crops and all(re.fullmatch(r"[A-Za-z0-9_-]+\.jpg", p.name) for p in crops)

    feats = json.loads((out / "candidates.geojson").read_text(encoding="utf-8"))["features"]
    assert feats and {f["properties"]["best_image"] for f in feats} <= set(names.values())
    assert any(any(h in f["properties"]["road_name"] for h in HOSTILE) for f in feats)
    # a crew note with markup, through the registry
    cid = feats[0]["properties"]["candidate_id"]
    ok(patrol("status", store, cid, "--set", "confirmed", "--note", HOSTILE[0] + HOSTILE[1]))

    try:
        import detector.report  # noqa: F401
    except Exception as e:  # pragma: no cover - report.py in progress
        pytest.skip(f"detector.report not importable yet: {e}")
    html_reg, kml = tmp_path / "registry.html", tmp_path / "registry.kml"
    ok(patrol("export", store, "--format", "html", "--out", html_reg, "--roads", roads))
    ok(patrol("export", store, "--format", "kml", "--out", kml))

    for path in (out / "report.html", html_reg):
        html = path.read_text(encoding="utf-8")
        for h in HOSTILE[:2] + ["<script>alert", "<img src=x", "<b onclick"]:  # text without "<" is inert
            assert h not in html, f"{path.name}: raw {h!r}"
        assert html.count("<script") == html.count("</script>")  # no script element smuggled in
        m = re.search(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S)
        assert m, "no JSON data block"
        strings = set(_strings(json.loads(m.group(1))))  # \u003c escapes decode back to the original strings
        assert set(names.values()) & strings, "file names missing from the report"
        # the damages' road names (hostile ones among them) reach the page as data, escaped (the network it draws
        # carries no names since it was compacted for the map by mail)
        hostile_roads = {f["properties"]["road_name"] for f in feats
                         if any(h in (f["properties"]["road_name"] or "") for h in HOSTILE)}
        assert hostile_roads and hostile_roads <= strings, hostile_roads - strings
        if path == html_reg:
            assert HOSTILE[0] + HOSTILE[1] in strings  # the crew's note

    import xml.etree.ElementTree as ET

    raw = kml.read_bytes().decode("utf-8")
    for h in HOSTILE[:2]:
        assert h not in raw
    assert "&lt;script&gt;" in raw
    texts = " ".join(t for t in ET.fromstring(kml.read_bytes()).itertext())  # well-formed, and the text is intact
    assert HOSTILE[0] + HOSTILE[1] in texts and any(n in texts for n in names.values())
