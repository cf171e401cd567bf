"""The registry knows a drive by its photos, not by its folder name (``frames.frame_key``, ``Store.merge(frames=)``):
the same SD card copied twice under two names, or last week's photos re-imported into this week's folder, count
once. Real data: the sample drive's two passes, through ``patrol run --store``."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from detector.config import Config
from detector.frames import Frame, frame_key, frame_keys, scan_drive
from detector.store import SCHEMA_VERSION, DriveCopy, Store

from test_store import _oracle_candidates, dump

ROOT = Path(__file__).resolve().parent.parent
P1, P2 = "toyama-2026-11-p1", "toyama-2026-11-p2"
SCHEMA2_COMMIT = "0c51dfd"  # the last patrol writing schema 2: drives known by their folder names only


def _photos(src: Path, dest: Path) -> list[str]:
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for p in sorted(src.glob("IMG_2026*.jpg")):  # the drive's photos (its junk files are rejected frames anyway)
        shutil.copy2(p, dest / p.name)
        names.append(p.name)
    return names


def _obs(store: Path) -> pd.DataFrame:
    con = sqlite3.connect(store)
    try:
        return pd.read_sql_query("SELECT candidate_id, drive, image, class, x1, y1, x2, y2, run_id FROM observations",
                                 con)
    finally:
        con.close()



def quick_config(folder: Path) -> Path:
    """A config for registry runs through the CLI: low thresholds (many hits), 320 px, no blur: small and fast."""
    cfg = folder / "cfg.yaml"
    cfg.write_text("classes:\n" + "".join(f"  {c}: {{threshold: 0.05}}\n" for c in ("D00", "D10", "D20", "D40"))
                   + "detect: {imgsz: 320}\nprivacy: {blur_faces: false, blur_plates: false}\n", encoding="utf-8")
    return cfg


def run_store(toyama: Path, drive: Path, store: Path, out: Path, cfg: Path) -> tuple[dict, str]:
    """`patrol run DRIVE --store STORE` on the sample network (no report): (summary.json, the console text)."""
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "run", str(drive), "--roads",
                        str(toyama / "roads.geojson"), "--out", str(out), "--store", str(store),
                        "--config", str(cfg), "--no-report"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600, env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads((out / "summary.json").read_text("utf-8")), r.stdout

def test_frame_key_is_the_photo_not_its_name(toyama, tmp_path):
    """A photo copied under another drive and file name has its key; every other photo of the two passes another;
    a rejected frame (an empty file, a text file) none. A video frame is its video's content and its time in it."""
    cfg = Config()
    fr = [f for f in scan_drive(toyama / P1, cfg) + scan_drive(toyama / P2, cfg)]
    keys = [frame_key(f) for f in fr]
    ok = [k for f, k in zip(fr, keys) if f.ok]
    assert len(ok) == 200 and len(set(ok)) == 200 and all(0 <= k < 2 ** 63 for k in ok)
    assert all(k is None for f, k in zip(fr, keys) if not f.ok)
    one = next(f for f in fr if f.ok)
    copy = tmp_path / "other folder" / "renamed.jpg"
    copy.parent.mkdir()
    shutil.copy(one.path, copy)
    assert frame_key(Frame(drive="x", name="renamed.jpg", path=copy, index=0, status="ok", reason="",
                           time=None)) == frame_key(one)
    assert frame_keys([one]) == [(one.drive, one.name, frame_key(one), one.time, one.lat, one.lon, one.heading,
                                  one.look)]
    # a frame taken from a video: the video's fingerprint (index.json) and the time, not the JPEG's bytes
    for drive in ("a", "b"):
        folder = tmp_path / drive / "VID_0001_mp4"
        folder.mkdir(parents=True)
        (folder / "index.json").write_text(json.dumps({"want": {"video": [123, "ab" * 20]}}), encoding="utf-8")
        (folder / "f.jpg").write_bytes(drive.encode() * 100)
    vk = [frame_key(Frame(drive=d, name=f"VID_0001.mp4@{t}", path=tmp_path / d / "VID_0001_mp4" / "f.jpg", index=0,
                          status="ok", reason="", time=None)) for d, t in (("a", "0:01.0"), ("b", "0:01.0"),
                                                                           ("a", "0:02.0"))]
    assert vk[0] == vk[1] != vk[2] and None not in vk


def test_copied_drive_is_not_counted_again(toyama, tmp_path):
    """Through the CLI, on the sample drive: (1) pass 1, then the same card copied as ``<name> (copy)``: nothing
    counted again (no seen again, registry unchanged), one warning naming both folders and the date pass 1 was merged,
    the run's own outputs written under the copy's name; (3) pass 1 again under its own name: today's idempotent merge,
    no warning; (2) a folder holding pass 1's photos and pass 2's: pass 2's photos merge as that folder (seen again,
    new), pass 1's are not stored again under the new name, and no damage gets the new folder in its drives without
    a sighting in a new photo."""
    cfg = quick_config(tmp_path)
    store = tmp_path / "registry.gpkg"
    p1, copy, week = tmp_path / P1, tmp_path / f"{P1} (copy)", tmp_path / "2026-11-27"
    n1 = _photos(toyama / P1, p1)
    _photos(toyama / P1, copy)
    n2 = _photos(toyama / P2, week)
    _photos(toyama / P1, week)  # last week's photos, imported again by mistake

    def run(drive: Path, out: str) -> tuple[dict, str]:
        return run_store(toyama, drive, store, tmp_path / out, cfg)

    s1, _ = run(p1, "o1")
    reg1 = s1["registry"]
    assert reg1["new"] > 20 and reg1["copies"] == [] and not s1["warnings"]
    before = dump(store, skip=())
    with Store(store) as st:
        q1 = st.query().set_index("candidate_id")
        merged_at = st.con.execute("SELECT merged_at FROM runs").fetchone()[0]
        assert st.con.execute("SELECT drive, n_frames FROM drives").fetchall() == [(P1, 100)]
    when = merged_at[:10] + " " + merged_at[11:16]

    # (1) the same card under another folder name
    s2, text = run(copy, "o2")
    reg2 = s2["registry"]
    assert (reg2["new"], reg2["seen_again"], reg2["reopened"], reg2["already_there"]) == (0, 0, 0, reg1["new"])
    assert reg2["run_id"] is None and dump(store, skip=()) == before  # not one byte of the registry changed
    assert reg2["copies"] == [{"drive": copy.name, "same_as": P1, "merged_at": merged_at, "frames": 100, "of": 100}]
    (msg,) = s2["warnings"]
    assert msg.startswith(f"{copy.name}: the same frames as drive {P1}, merged into the registry on {when} ")
    assert "not counted again" in msg and " ".join(msg.split()) in " ".join(text.split())  # also on the console
    geo = json.loads((tmp_path / "o2" / "candidates.geojson").read_text("utf-8"))["features"]
    assert len(geo) == reg1["new"] and {f["properties"]["best_drive"] for f in geo} == {copy.name}  # its own names
    assert {f["properties"]["candidate_id"] for f in geo} == set(q1.index)  # under the registry's ids
    assert (tmp_path / "o2" / "repair_list.csv").is_file()

    # (3) the same drive name again: as before this change, nothing new and no warning
    s3, _ = run(p1, "o3")
    assert s3["registry"]["already_there"] == reg1["new"] and s3["registry"]["copies"] == [] and not s3["warnings"]
    assert dump(store, skip=()) == before

    # (2) last week's photos + this week's in one folder
    s4, text = run(week, "o4")
    reg4 = s4["registry"]
    assert reg4["copies"] == [{"drive": week.name, "same_as": P1, "merged_at": merged_at, "frames": 100, "of": 200}]
    (msg,) = s4["warnings"]
    assert msg.startswith(f"{week.name}: 100 of its 200 frames are the same frames as drive {P1}, merged into the "
                          f"registry on {when}") and msg.endswith(f"its other 100 frames merged as {week.name}")
    obs = _obs(store)
    mine = obs[obs.run_id == reg4["run_id"]]
    # no photo of pass 1 stored under the new name, and no photo's sighting stored twice
    assert set(obs[obs.drive == week.name].image) <= set(n2) and set(obs[obs.drive == P1].image) <= set(n1)
    box = ["image", "class", "x1", "y1", "x2", "y2"]  # (a sighting without its box: x1 = -1, once per damage)
    assert not obs[obs.x1 >= 0].duplicated(box).any() and not obs.duplicated(["candidate_id", *box]).any()
    # every sighting pass 1 merged is still there, once, under pass 1
    old = pd.DataFrame(before["observations"]).iloc[:, [1, 2, 3, 4]].set_axis(["candidate_id", "drive", "image", "class"], axis=1)
    assert len(old.merge(obs[obs.drive == P1], on=["candidate_id", "drive", "image", "class"])) == len(old)
    with Store(store) as st:
        q = st.query().set_index("candidate_id")
        assert sorted(st.con.execute("SELECT drive, n_frames FROM drives").fetchall()) == [(week.name, 100), (P1, 100)]
    # seen again: exactly the damages known before with a sighting in a new photo; the new folder in a damage's
    # drives only where a new photo saw it; n_obs = its sightings
    known_seen = set(mine[mine.drive == week.name].candidate_id) & set(q1.index)
    assert reg4["seen_again"] + reg4["reopened"] == len(known_seen) > 20
    has_new = set(obs[obs.drive == week.name].candidate_id)
    assert {c for c, ds in q.drives.items() if week.name in ds} == has_new
    assert q.n_obs.to_dict() == obs.groupby("candidate_id").size().to_dict()
    for cid in set(q1.index) - has_new:  # known damages no new photo saw: untouched by this run
        assert (q.n_obs[cid], q.drives[cid], q.last_seen[cid]) == (q1.n_obs[cid], q1.drives[cid], q1.last_seen[cid])


def test_a_drive_and_its_copy_in_one_run_count_once(toyama, tmp_path):
    """`patrol run A B` where B is A copied: B's frames are A's (``DriveCopy`` without a merge date), the registry
    holds what A alone gives; merged later as B alone, nothing changes."""
    from detector.detections import Detections, read_detections_csv
    from detector.pipeline import locate_and_dedupe

    cfg = Config()
    frames = [f for f in scan_drive(toyama / P1, cfg) if f.ok]
    ka = [(P1, f.name, frame_key(f)) for f in frames]
    kb = [("copy", n, k) for _, n, k in ka]
    one, _ = _oracle_candidates(toyama, cfg)
    det = Detections.concat([read_detections_csv(toyama / f"{P1}.oracle.csv"),
                             read_detections_csv(toyama / f"{P1}.oracle.csv", drive="copy")])
    _, _, both, _ = locate_and_dedupe(det, toyama / "roads.geojson", cfg)
    assert both.n_obs.sum() == 2 * one[0].n_obs.sum()  # the run itself counts each photo twice
    a, b = tmp_path / "a.gpkg", tmp_path / "b.gpkg"
    with Store(a) as st:
        st.merge(one[0], {"run_id": "r"}, cfg, frames=ka)
        qa = st.query()
    with Store(b) as st:
        res = st.merge(both, {"run_id": "r"}, cfg, frames=ka + kb)
        assert res.copies == [DriveCopy("copy", P1, None, 100, 100)] and res.frames_recorded == 100
        assert "the same frames as drive toyama-2026-11-p1 of this run (all 100 of them)" in res.copies[0].message
        qb = st.query()
        assert st.con.execute("SELECT DISTINCT drive FROM observations").fetchall() == [(P1,)]
        again = dump(b, skip=())
        res = st.merge(_oracle_candidates_as(one[0], "copy2"), {"run_id": "r2"}, cfg,
                       frames=[("copy2", n, k) for _, n, k in ka])
        assert not res.changed and [c.merged_at for c in res.copies] == [st.con.execute(
            "SELECT merged_at FROM drives").fetchone()[0]]
    assert dump(b, skip=()) == again
    assert qb.n_obs.sum() == qa.n_obs.sum() and all(list(d) == [P1] for d in qb.drives)


def _oracle_candidates_as(cands: pd.DataFrame, drive: str) -> pd.DataFrame:
    c = cands.copy()
    c["drives"] = [[drive]] * len(c)
    c["best_drive"] = drive
    c["images"] = [[f"{drive}/{i.split('/', 1)[-1]}" for i in ims] for ims in c["images"]]
    if "last_drive" in c:
        c["last_drive"] = drive
    if "observations" in c:
        c["observations"] = [[{**o, "drive": drive} for o in obs] for obs in c["observations"]]
    return c


def _schema2_store(folder: Path):
    """``detector/store.py`` as of SCHEMA2_COMMIT, imported beside the current one."""
    from test_store import old_store

    return old_store(folder, SCHEMA2_COMMIT, "store_schema2")


def test_registry_of_schema_2_is_migrated_on_its_next_write(toyama, tmp_path):
    """A registry written by the code of SCHEMA2_COMMIT (drives known by name only) is read as it is; its next write
    adds the drives/frames tables (schema 3) and records that run's frames, so a later copy of that drive is known;
    the drives merged before stay known by name only. The old code refuses the migrated registry."""
    import pyogrio

    old = _schema2_store(tmp_path)
    cfg = Config()
    passes, _ = _oracle_candidates(toyama, cfg)
    keys = {d: [(d, f.name, frame_key(f)) for f in scan_drive(toyama / d, cfg) if f.ok] for d in (P1, P2)}
    p_old, p_new = tmp_path / "old.gpkg", tmp_path / "new.gpkg"
    with old.Store(p_old) as st:
        st.merge(passes[0], {"run_id": "p1"}, cfg)
        before = st.query()
    with Store(p_new) as st:
        st.merge(passes[0], {"run_id": "p1"}, cfg)
    size = p_old.stat().st_size
    with Store(p_old) as st:  # read as it is
        pd.testing.assert_frame_equal(st.query()[before.columns], before)
        assert "frames" not in {r[0] for r in st.con.execute("SELECT name FROM sqlite_master")}
    assert p_old.stat().st_size == size
    for p in (p_old, p_new):
        with Store(p) as st:
            st.merge(passes[1], {"run_id": "p2"}, cfg, frames=keys[P2])
    with Store(p_old) as a, Store(p_new) as b:
        qa, qb = a.query(), b.query()
        same = [c for c in qa.columns if c != "status_changed_at"]
        pd.testing.assert_frame_equal(qa[same], qb[same])
        assert a.con.execute("SELECT value FROM patrol_meta WHERE key='schema_version'").fetchone() == (
            str(SCHEMA_VERSION),)
        assert a.con.execute("SELECT drive, n_frames FROM drives").fetchall() == [(P2, 100)]
        assert a.integrity() == "ok"
        # pass 2 copied under another name: known
        res = a.merge(_oracle_candidates_as(passes[1], "p2-copy"), {"run_id": "c"}, cfg,
                      frames=[("p2-copy", n, k) for _, n, k in keys[P2]])
        assert not res.changed and [(c.same_as, c.frames) for c in res.copies] == [(P2, 100)]
    layers = {n: g for n, g in pyogrio.list_layers(p_old)}
    assert layers["drives"] is None and layers["frames"] is None  # attributes tables QGIS lists
    assert len(pyogrio.read_dataframe(p_old, layer="frames")) == 100
    with pytest.raises(old.StoreError, match=f"schema version {SCHEMA_VERSION}"):
        old.Store(p_old)


def test_summary_json_says_which_drives_known_by_name_only_got_their_frames(toyama, tmp_path):
    """A drive merged before the registry recorded frames (schema 2) and run again gets its frames recorded
    (``Store._name_only``'s backfill); the run's summary.json says so (``registry.backfilled``: drive -> frames),
    as it says ``copies`` and ``renamed``, so a scheduled job can tell that run from one that merged nothing."""
    from detector.pipeline import RunSummary, merge_into_store, write_summary_json

    old = _schema2_store(tmp_path)
    cfg = Config()
    passes, _ = _oracle_candidates(toyama, cfg)
    store = tmp_path / "old.gpkg"
    with old.Store(store) as st:
        st.merge(passes[0], {"run_id": "p1"}, cfg)
    frames = [f for f in scan_drive(toyama / P1, cfg) if f.ok]
    out = tmp_path / "out"
    out.mkdir()
    s = RunSummary(out=out, drives=[P1])
    merge_into_store(passes[0], store, {"drives": [P1], "out": str(out)}, cfg, s, frames=frames)
    doc = json.loads(write_summary_json(s, "run", cfg).read_text(encoding="utf-8"))
    assert doc["registry"]["backfilled"] == {P1: len(frames)} and len(frames) == 100, doc["registry"]
    assert doc["registry"]["new"] == 0 and doc["registry"]["renamed"] == [] and doc["registry"]["copies"] == []
    # run again: nothing left to record
    s2 = RunSummary(out=out, drives=[P1])
    merge_into_store(passes[0], store, {"drives": [P1], "out": str(out)}, cfg, s2, frames=frames)
    assert json.loads(write_summary_json(s2, "run", cfg).read_text(encoding="utf-8"))["registry"]["backfilled"] == {}
