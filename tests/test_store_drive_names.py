"""A weekly card folder has the same name every week (``DCIM``, ``100MEDIA``, a phone export ``patrol``): the registry
tells this week's drive from last week's by its photos (``Store._drive_names``) and merges it as
``DCIM (2026-11-27)``, instead of taking this week's ``IMG_0001.jpg`` for last week's. Real data: the sample drive's
two passes, through ``patrol run --store`` and through ``Store.merge`` with the passes' frame keys."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path

import pandas as pd

from detector.config import Config
from detector.detections import Detections, read_detections_csv
from detector.frames import frame_keys, scan_drive
from detector.pipeline import locate_and_dedupe
from detector.store import DriveRename, Store

from test_store import _oracle_candidates, dump
from test_store_drive_identity import _oracle_candidates_as, quick_config, run_store

P1, P2 = "toyama-2026-11-p1", "toyama-2026-11-p2"


def _numbered(src: Path, dest: Path) -> None:
    """The pass's photos as a camera numbers them on a card formatted every week: IMG_0001.jpg, IMG_0002.jpg …"""
    dest.mkdir(parents=True)
    for i, p in enumerate(sorted(src.glob("IMG_2026*.jpg")), 1):
        shutil.copy2(p, dest / f"IMG_{i:04d}.jpg")


def _registry(store: Path) -> tuple[list, pd.DataFrame]:
    """The damages as counts, times and places (no ids, drive or image names), and the sightings."""
    with Store(store) as st:
        q = st.query()
    con = sqlite3.connect(store)
    try:
        obs = pd.read_sql_query("SELECT candidate_id, drive, image, class, x1 FROM observations", con)
    finally:
        con.close()
    rows = sorted(zip(q["class"], q.n_obs, q.n_drives, q.first_seen, q.last_seen, q.lat.round(7), q.lon.round(7),
                      q.best_image.str[-8:]))
    return rows, obs


def test_the_same_folder_name_every_week_is_two_drives(toyama, tmp_path):
    """Through the CLI: pass 1 and pass 2 each on a card folder called ``DCIM`` whose camera numbers its photos from
    IMG_0001.jpg every week. The registry holds what the two passes under their own folder names give (the same
    damages, sightings, n_obs, drives, first/last seen), the second week as ``DCIM (2026-11-27)`` with one warning;
    rerunning either week changes no byte; a copy of week 2 under another name is known as that drive."""
    cfg = quick_config(tmp_path)

    def run(drive: Path, store: Path, out: str) -> tuple[dict, str]:
        return run_store(toyama, drive, store, tmp_path / out, cfg)

    ref, reg = tmp_path / "ref.gpkg", tmp_path / "registry.gpkg"
    for p in (P1, P2):  # the reference: each week under its own folder name
        _numbered(toyama / p, tmp_path / "ref" / p)
        run(tmp_path / "ref" / p, ref, f"ref-{p}")
    w1, w2 = tmp_path / "w1" / "DCIM", tmp_path / "w2" / "DCIM"
    _numbered(toyama / P1, w1)
    _numbered(toyama / P2, w2)
    s1, _ = run(w1, reg, "o1")
    assert not s1["warnings"] and not s1["registry"].get("renamed")
    s2, text = run(w2, reg, "o2")
    r2 = s2["registry"]
    # what the reference registry says, counts and all
    s_ref = json.loads((tmp_path / f"ref-{P2}" / "summary.json").read_text("utf-8"))["registry"]
    assert (r2["new"], r2["seen_again"], r2["already_there"]) == (s_ref["new"], s_ref["seen_again"], 0)
    want, ref_obs = _registry(ref)
    got, obs = _registry(reg)
    assert got == want and len(obs) == len(ref_obs) > 150 and (obs.x1 >= 0).sum() == (ref_obs.x1 >= 0).sum()
    ((ren,),) = [r2["renamed"]]
    assert ren["drive"] == "DCIM" and ren["as"] == "DCIM (2026-11-27)" and ren["why"] == "names"
    assert (ren["conflicts"], ren["frames"], ren["of"], ren["days"]) == (100, 100, 100, ["2026-11-27"])
    (msg,) = s2["warnings"]
    assert msg.startswith("DCIM: not the drive DCIM merged into the registry on ") and \
        msg.endswith('merged as drive "DCIM (2026-11-27)" (this run\'s own outputs keep the name DCIM)')
    assert "100 of its file names (IMG_0001.jpg, IMG_0002.jpg, IMG_0003.jpg …) are other photos or video frames there" in msg
    assert " ".join(msg.split()) in " ".join(text.split())  # also on the console
    assert obs.groupby("drive").size().to_dict() == {"DCIM": (ref_obs.drive == P1).sum(),
                                                    "DCIM (2026-11-27)": (ref_obs.drive == P2).sum()}
    with Store(reg) as st:
        assert st.con.execute("SELECT drive, n_frames FROM drives ORDER BY did").fetchall() == [
            ("DCIM", 100), ("DCIM (2026-11-27)", 100)]
    # the run's own outputs keep the folder name
    geo = json.loads((tmp_path / "o2" / "candidates.geojson").read_text("utf-8"))["features"]
    assert {f["properties"]["best_drive"] for f in geo} == {"DCIM"}
    before = dump(reg, skip=())
    s3, _ = run(w2, reg, "o3")  # week 2 again: as before, under the name the registry gave it
    assert s3["registry"]["run_id"] is None and s3["registry"]["renamed"] == [] and dump(reg, skip=()) == before
    at2 = datetime.strptime(r2["run_id"][:15], "%Y%m%dT%H%M%S").strftime("%Y-%m-%d %H:%M")  # week 2's merge
    assert s3["warnings"] == [f"DCIM: merged before as drive DCIM (2026-11-27) on {at2} (the "
                              "registry's name for it, told from another drive DCIM): not counted again"]
    s4, _ = run(w1, reg, "o4")  # week 1 again: nothing, no warning
    assert s4["registry"]["run_id"] is None and not s4["warnings"] and dump(reg, skip=()) == before
    shutil.copytree(w2, tmp_path / "week48")
    s5, _ = run(tmp_path / "week48", reg, "o5")  # week 2 copied under another name
    assert [c["same_as"] for c in s5["registry"]["copies"]] == ["DCIM (2026-11-27)"] and dump(reg, skip=()) == before


def _keys(toyama, cfg, p: str, drive: str, times: bool = True) -> list[tuple]:
    return [(drive, n, k, t if times else None) for _, n, k, t, *_ in frame_keys(scan_drive(toyama / p, cfg))]


def test_drive_names_by_photos_and_days(toyama, tmp_path):
    """``Store.merge`` with the passes' frame keys (the files keep their names: not one name in common): a folder
    name held for another drive and not one photo in common: another drive (``none``); a phone export folder that
    keeps last week's photos beside this week's: last week's count once, this week's are another drive (``days``);
    photos added to a drive merged under such a name: merged as it again; a second card of that day:
    ``DCIM (2026-11-27, 2)``; frames without a time: ``DCIM (2)``. Each registry holds what the passes under their own
    names give."""
    cfg = Config()
    (c1, c2, _), _ = _oracle_candidates(toyama, cfg)
    k1, k2 = _keys(toyama, cfg, P1, "DCIM"), _keys(toyama, cfg, P2, "DCIM")
    ref = tmp_path / "ref.gpkg"
    with Store(ref) as st:
        st.merge(c1, {"run_id": "1"}, cfg, frames=[(P1, n, k, t) for _, n, k, t in k1])
        st.merge(c2, {"run_id": "2"}, cfg, frames=[(P2, n, k, t) for _, n, k, t in k2])
    want, ref_obs = _registry(ref)

    # none: a card folder with other photos each week
    a = tmp_path / "a.gpkg"
    with Store(a) as st:
        assert st.merge(_oracle_candidates_as(c1, "DCIM"), {"run_id": "1"}, cfg, frames=k1).renamed == []
        res = st.merge(_oracle_candidates_as(c2, "DCIM"), {"run_id": "2"}, cfg, frames=k2)
        ((r,),) = [res.renamed]
        assert (r.as_name, r.why, r.frames, r.of, r.again) == ("DCIM (2026-11-27)", "none", 100, 100, False)
        assert "not one of its 100 frames is one of that drive's" in r.message and res.copies == []
    assert _registry(a)[0] == want

    # days: the phone's export folder keeps last week's photos beside this week's
    b = tmp_path / "b.gpkg"
    det = Detections.concat([read_detections_csv(toyama / f"{p}.oracle.csv", drive="patrol") for p in (P1, P2)])
    _, _, both, _ = locate_and_dedupe(det, toyama / "roads.geojson", cfg)  # one run of the folder: both weeks
    kb1, kb2 = ([("patrol", n, k, t) for _, n, k, t in ks] for ks in (k1, k2))
    with Store(b) as st:
        st.merge(_oracle_candidates_as(c1, "patrol"), {"run_id": "1"}, cfg, frames=kb1)
        res = st.merge(both, {"run_id": "2"}, cfg, frames=kb1 + kb2)
        ((r,),) = [res.renamed]
        assert (r.as_name, r.why, r.frames, r.of, r.days, r.held_days) == (
            "patrol (2026-11-27)", "days", 100, 200, ["2026-11-27"], ["2026-11-20"])
        assert "its new frames are of 2026-11-27, that drive's of 2026-11-20 (those not counted again)" in r.message
        again = dump(b, skip=())
        res = st.merge(both, {"run_id": "3"}, cfg, frames=kb1 + kb2)  # the same folder again
        assert not res.changed and res.renamed == []
    assert dump(b, skip=()) == again
    got, obs = _registry(b)
    # (one run of both weeks places and ranks a damage's sightings of both at once: counts as the two weeks merged
    # one by one, each week's under its drive)
    assert [g[:3] for g in got] == [w[:3] for w in want] and len(obs) == len(ref_obs)
    assert obs.groupby("drive").size().to_dict() == {"patrol": (ref_obs.drive == P1).sum(),
                                                    "patrol (2026-11-27)": (ref_obs.drive == P2).sum()}

    # photos added to a drive merged under such a name; a second card of that day; frames without a time
    c = tmp_path / "c.gpkg"
    half = k2[:50]
    with Store(c) as st:
        st.merge(_oracle_candidates_as(c1, "DCIM"), {"run_id": "1"}, cfg, frames=k1)
        assert [r.as_name for r in st.merge(pd.DataFrame(), {"run_id": "2a"}, cfg, frames=half).renamed] == [
            "DCIM (2026-11-27)"]
        res = st.merge(_oracle_candidates_as(c2, "DCIM"), {"run_id": "2"}, cfg, frames=k2)
        ((r,),) = [res.renamed]
        assert (r.as_name, r.frames, r.of, r.again) == ("DCIM (2026-11-27)", 50, 100, True) and res.copies == []
        assert r.message.endswith('merged as drive "DCIM (2026-11-27)" as before (this run\'s own outputs keep the '
                                  'name DCIM)')
        assert st.con.execute("SELECT drive, n_frames FROM drives ORDER BY did").fetchall() == [
            ("DCIM", 100), ("DCIM (2026-11-27)", 100)]
        assert _registry(c)[0] == want
        # another card of the same day (pass 2's photos, edited: other content), then one without times
        edited = [(d, n, k ^ 1, t) for d, n, k, t in k2]
        assert [r.as_name for r in st.merge(pd.DataFrame(), {"run_id": "3"}, cfg, frames=edited).renamed] == [
            "DCIM (2026-11-27, 2)"]
        undated = [(d, n, k ^ 2, None) for d, n, k, _ in k2]
        assert [r.as_name for r in st.merge(pd.DataFrame(), {"run_id": "4"}, cfg, frames=undated).renamed] == [
            "DCIM (2)"]
    assert DriveRename  # (the type the merge result lists)


def test_photos_added_past_midnight_continue_the_drive(toyama, tmp_path):
    """A patrol that runs past midnight, its last photos uploaded into the same folder after the first merge: the
    new photos are of the next day, but minutes after the drive's own: the same drive (it was merged as
    ``DCIM (2026-11-21)``, counting one drive twice for the damages on both sides of midnight). The
    other photos put into the folder days later are still another drive."""
    from datetime import timedelta

    cfg = Config()
    k1 = sorted(_keys(toyama, cfg, P1, "DCIM"), key=lambda f: f[3])
    shift = datetime(2026, 11, 21, 0, 0, 1, tzinfo=cfg.tz) - k1[50][3]  # frames 51 to 100 after midnight
    late = [(d, n, k, t + shift) for d, n, k, t in k1]
    before = [f for f in late if f[3].date().isoformat() == "2026-11-20"]  # merged first
    assert 40 <= len(before) <= 60
    with Store(tmp_path / "r.gpkg") as st:
        assert st.merge(pd.DataFrame(), {"run_id": "1"}, cfg, frames=before).renamed == []
        res = st.merge(pd.DataFrame(), {"run_id": "2"}, cfg, frames=late)
        assert res.renamed == [] and res.copies == []
        assert st.con.execute("SELECT drive, n_frames FROM drives").fetchall() == [("DCIM", 100)]
        # other photos put into that folder two days later: another drive
        nxt = [(d, f"later_{n}", k ^ 1, t + timedelta(days=2)) for d, n, k, t in late]
        ((r,),) = [st.merge(pd.DataFrame(), {"run_id": "3"}, cfg, frames=late + nxt).renamed]
        assert (r.as_name, r.why) == ("DCIM (2026-11-22)", "days"), r


def _as_numbered(cands: pd.DataFrame, keys: list[tuple], drive: str) -> tuple[pd.DataFrame, list[tuple]]:
    """A pass's candidates and frame keys as ``drive`` on a card whose camera numbers its photos IMG_0001.jpg …
    (as ``_numbered`` copies them): the same photos, their sightings under the card's names."""
    to = {n: f"IMG_{i:04d}.jpg" for i, n in enumerate(sorted(n for _, n, _, _ in keys), 1)}
    c = _oracle_candidates_as(cands, drive)
    c["best_image"] = [to[i] for i in c["best_image"]]
    c["images"] = [[f"{drive}/{to[i.split('/', 1)[1]]}" for i in ims] for ims in c["images"]]
    c["observations"] = [[{**o, "image": to[o["image"]]} for o in obs] for obs in c["observations"]]
    return c, [(drive, to[n], k, t) for _, n, k, t in keys]


def test_drive_known_by_name_only_is_told_by_its_sightings(toyama, tmp_path):
    """A registry of schema 2 (SCHEMA2_COMMIT's code: drives known by folder name only, no frames recorded), then
    the current code. The folder name merged again is that drive only where the run's frames are its stored
    sightings' frames (file name and frame time): then its frames are recorded under it with its first merge time
    (backfill), so a later copy is known as it. Otherwise it is a folder name held for another drive, as with
    recorded frames: a camera's IMG_0001.jpg of this week (``names``), other photos (``none``), a phone folder
    keeping last week's photos beside this week's (``days``: last week's recorded under the old drive). Each
    registry holds what the passes under their own names give. Real data: the sample's oracle passes and their
    photos' frame keys."""
    from test_store_drive_identity import _schema2_store

    old = _schema2_store(tmp_path)
    cfg = Config()
    (c1, c2, _), _ = _oracle_candidates(toyama, cfg)
    k1, k2 = _keys(toyama, cfg, P1, P1), _keys(toyama, cfg, P2, P2)

    def ref_of(parts) -> tuple[list, pd.DataFrame]:
        path = tmp_path / f"ref{len(list(tmp_path.glob('ref*')))}.gpkg"
        with Store(path) as st:
            for i, (c, k) in enumerate(parts):
                st.merge(c, {"run_id": str(i)}, cfg, frames=k)
        return _registry(path)

    def first_merge(path: Path) -> str:
        with Store(path) as st:
            return st.con.execute("SELECT merged_at FROM runs ORDER BY rid").fetchone()[0]

    # names: a camera numbering from IMG_0001.jpg every week, the card's folder DCIM
    n1, f1 = _as_numbered(c1, k1, "DCIM")
    n2, f2 = _as_numbered(c2, k2, "DCIM")
    want = ref_of([_as_numbered(c1, k1, "w1"), _as_numbered(c2, k2, "w2")])
    a = tmp_path / "a.gpkg"
    with old.Store(a) as st:
        st.merge(n1, {"run_id": "1"}, cfg)
    at1 = first_merge(a)
    sighted = sorted(set(_registry(a)[1].image))  # week 1's photos with a stored sighting: its names known
    with Store(a) as st:
        res = st.merge(n2, {"run_id": "2"}, cfg, frames=f2)
        ((r,),) = [res.renamed]
        assert (r.as_name, r.why, r.held_merged_at, r.conflicts, r.frames) == (
            "DCIM (2026-11-27)", "names", at1, sighted, 100) and res.backfilled == {} and len(sighted) > 40
        assert r.message.startswith(f"DCIM: not the drive DCIM merged into the registry on {at1[:10]} ")
    got, obs = _registry(a)
    assert got == want[0] and obs.groupby("drive").size().to_dict() == {
        "DCIM": (want[1].drive == "w1").sum(), "DCIM (2026-11-27)": (want[1].drive == "w2").sum()}
    with Store(a) as st:  # week 1 merged again: its frames recorded under DCIM, nothing else changes
        res = st.merge(n1, {"run_id": "3"}, cfg, frames=f1)
        assert res.backfilled == {"DCIM": 100} and res.renamed == [] and not (res.new or res.seen_again)
        assert st.con.execute("SELECT drive, merged_at, n_frames FROM drives ORDER BY drive").fetchall() == [
            ("DCIM", at1, 100), ("DCIM (2026-11-27)", st.con.execute(
                "SELECT merged_at FROM runs WHERE run_id='2'").fetchone()[0], 100)]
        # now a copy of week 1 is known, with the date it was first merged
        res = st.merge(_as_numbered(c1, k1, "week47")[0], {"run_id": "4"}, cfg,
                       frames=[("week47", n, k, t) for _, n, k, t in f1])
        assert not res.changed and [c.as_dict() for c in res.copies] == [
            {"drive": "week47", "same_as": "DCIM", "merged_at": at1, "frames": 100, "of": 100}]
    assert _registry(a)[0] == want[0]

    # the folder name again with other photos (none), after the same drive's backfill; a copy of the old drive
    b = tmp_path / "b.gpkg"
    with old.Store(b) as st:
        st.merge(c1, {"run_id": "1"}, cfg)
    with Store(b) as st:
        res = st.merge(c2, {"run_id": "2"}, cfg, frames=[(P1, n, k, t) for _, n, k, t in k2])
        ((r,),) = [res.renamed]
        assert (r.as_name, r.why, r.frames) == (f"{P1} (2026-11-27)", "none", 100) and res.backfilled == {}
        res = st.merge(_oracle_candidates_as(c1, "copy"), {"run_id": "3"}, cfg,
                       frames=[("copy", n, k, t) for _, n, k, t in k1])
        assert res.copies == [] and res.new == []  # (a copy of a drive known by name only is not known: seen again)

    # days: a phone's export folder keeping last week's photos beside this week's
    c = tmp_path / "c.gpkg"
    det = Detections.concat([read_detections_csv(toyama / f"{p}.oracle.csv", drive="patrol") for p in (P1, P2)])
    _, _, both, _ = locate_and_dedupe(det, toyama / "roads.geojson", cfg)
    kb1, kb2 = ([("patrol", n, k, t) for _, n, k, t in ks] for ks in (k1, k2))
    with old.Store(c) as st:
        st.merge(_oracle_candidates_as(c1, "patrol"), {"run_id": "1"}, cfg)
    at1 = first_merge(c)
    with Store(c) as st:
        res = st.merge(both, {"run_id": "2"}, cfg, frames=kb1 + kb2)
        ((r,),) = [res.renamed]
        assert (r.as_name, r.why, r.frames, r.of, r.days, r.held_days) == (
            "patrol (2026-11-27)", "days", 100, 200, ["2026-11-27"], ["2026-11-20"])
        assert res.backfilled == {"patrol": 100} and res.copies == []
        assert st.con.execute("SELECT drive, merged_at, n_frames FROM drives ORDER BY did").fetchall()[0] == (
            "patrol", at1, 100)
    got, obs = _registry(c)
    ref = ref_of([(c1, k1), (c2, k2)])
    assert [g[:3] for g in got] == [w[:3] for w in ref[0]] and len(obs) == len(ref[1])
    assert obs.groupby("drive").size().to_dict() == {"patrol": (ref[1].drive == P1).sum(),
                                                    "patrol (2026-11-27)": (ref[1].drive == P2).sum()}


def test_frames_are_indexed_by_drive_also_in_older_registries(toyama, tmp_path):
    """The name-reuse check reads a drive's frames (``frames.did``): without an index each check read the whole
    table (bench_registry.py --frames 100, 41 weeks: 18-43 ms a check, 0.08 ms with it). A registry made before the
    index gets it on its next write. Real data: the sample passes' frame keys."""
    cfg = Config()
    k1, k2 = _keys(toyama, cfg, P1, "DCIM"), _keys(toyama, cfg, P2, "DCIM")
    check = ("EXPLAIN QUERY PLAN SELECT image FROM frames WHERE did=? AND image IN "
             "(SELECT value FROM json_each(?))")
    path = tmp_path / "r.gpkg"
    with Store(path) as st:
        st.merge(pd.DataFrame(), {"run_id": "1"}, cfg, frames=k1)
        assert "frames_did" in " ".join(r[-1] for r in st.con.execute(check, (1, "[]")))
        st.con.execute("DROP INDEX frames_did")  # as a registry made before it
    with Store(path) as st:  # read as it is
        assert "frames_did" not in " ".join(r[-1] for r in st.con.execute(check, (1, "[]")))
        (r,) = st.merge(pd.DataFrame(), {"run_id": "2"}, cfg, frames=k2).renamed
        assert r.as_name == "DCIM (2026-11-27)"
        assert "USING INDEX frames_did" in " ".join(r[-1] for r in st.con.execute(check, (1, "[]")))
        assert st.integrity() == "ok"


def test_drive_known_by_name_only_with_a_photo_copied_in_its_folder(toyama, tmp_path):
    """A schema-2 registry's drive merged again with one photo also copied beside itself in the folder
    (``IMG_0001 - コピー.jpg``, as Windows Explorer names a copy): the backfill recorded the photo's frame key twice and
    the merge failed (sqlite3.IntegrityError: UNIQUE constraint failed: frames.frame_key), the whole run's merge lost.
    Now the photo is recorded once, the copy counted as it; nothing else changes. Real data: the sample's pass 1."""
    from test_store_drive_identity import _schema2_store

    old = _schema2_store(tmp_path)
    cfg = Config()
    (c1, _, _), _ = _oracle_candidates(toyama, cfg)
    n1, f1 = _as_numbered(c1, _keys(toyama, cfg, P1, P1), "DCIM")
    a = tmp_path / "a.gpkg"
    with old.Store(a) as st:
        st.merge(n1, {"run_id": "1"}, cfg)
    before = _registry(a)
    d, name, key, t = f1[0]
    with Store(a) as st:
        res = st.merge(n1, {"run_id": "2"}, cfg, frames=f1 + [(d, name.replace(".jpg", " - コピー.jpg"), key, t)])
        assert res.backfilled == {"DCIM": 100} and res.renamed == [] and not (res.new or res.seen_again)
        assert st.con.execute("SELECT drive, n_frames FROM drives").fetchall() == [("DCIM", 100)]
        assert st.integrity() == "ok"
    assert _registry(a)[0] == before[0] and len(_registry(a)[1]) == len(before[1])
