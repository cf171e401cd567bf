"""`patrol export REGISTRY --format segments --roads ROADS`: the condition of the road network from the whole registry
(README: The condition of the network), not one run's segments.geojson. A registry of the real sample drive: its two
passes (p1 2026-11-20, p2 2026-11-27; oracle boxes through locate/dedupe) merged with their own frames (positions,
headings, times: ``frames.frame_keys``), as ``patrol run --store`` merges them (tests/test_store_passes.py)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, TOYAMA
from detector.store import OPEN_STATUSES, Store
from test_store_passes import P1, P2, _WHOLE, _merge, sample  # noqa: F401 (the fixture)


def patrol(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def export(store: Path, out: Path, *args) -> subprocess.CompletedProcess:
    r = patrol("export", store, "--format", "segments", "--roads", TOYAMA / "roads.geojson", "--out", out, *args)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def seg_rows(path: Path) -> tuple[pd.DataFrame, dict]:
    """The segment-level rows of an exported segments.geojson (by segment_id) and its ``patrol`` member."""
    gj = json.loads(path.read_text(encoding="utf-8"))
    df = pd.DataFrame([f["properties"] for f in gj["features"]])
    return df[df["level"] == "segment"].set_index("segment_id"), gj.get("patrol")


@pytest.fixture(scope="module")
def registry(sample, tmp_path_factory):  # noqa: F811
    """(registry path, cfg, frames of each pass as frame_keys gives them): p1 and the whole p2, merged with frames."""
    cfg, p1, _, _, keys = sample
    path = tmp_path_factory.mktemp("segments") / "registry.gpkg"
    _merge(path, [("p1", p1, keys[P1]), ("p2", _WHOLE["p2"], keys[P2])], cfg)
    return path, cfg, keys


@pytest.fixture
def reg(registry, tmp_path):
    """A copy of the registry this test may change."""
    path, cfg, keys = registry
    dst = tmp_path / "registry.gpkg"
    shutil.copy(path, dst)
    return dst, cfg, keys


def _run_surveyed(cfg, keys, drives) -> pd.Series:
    """surveyed_m per segment as a run of these drives writes it to segments.geojson (its ok frames' lat, lon,
    heading: pipeline.write_run_reports), the segments surveyed only."""
    from detector.roads import load_roads
    from detector.segments import segment_condition

    rows = [(la, lo, h) for d in drives for _, _, _, _, la, lo, h, *_ in keys[d] if la is not None]
    fdf = pd.DataFrame(rows, columns=["lat", "lon", "heading"]).assign(status="ok")
    seg = segment_condition(load_roads(TOYAMA / "roads.geojson", cfg), None, fdf, cfg)
    seg = seg[(seg["level"] == "segment") & (seg["surveyed_m"] > 0)]
    return seg.set_index("segment_id")["surveyed_m"].sort_index()


def test_counts_are_the_open_damages_per_segment(reg, tmp_path):
    """Every segment's n_total (and n_D00..n_D40) is the registry's open damages on it, by default; a damage marked
    not_an_issue and one merged into another count nowhere; --status all statuses counts them back."""
    path, cfg, _ = reg
    with Store.for_config(path, cfg) as st:
        q = st.query(lists=False)
        ids = q["candidate_id"].tolist()
        st.set_status(ids[0], "not_an_issue")
        st.merge_candidates(ids[1], ids[2], cfg=cfg, force=True)
        want = st.query(status=list(OPEN_STATUSES), lists=False)
    assert ids[0] not in set(want["candidate_id"]) and ids[1] not in set(want["candidate_id"])
    out = tmp_path / "segments.geojson"
    r = export(path, out)
    got, meta = seg_rows(out)
    counts = want.groupby("segment_id").size()
    assert len(counts) >= 5
    assert got["n_total"][got["n_total"] > 0].sort_index().to_dict() == counts.sort_index().to_dict()
    for c in ("D00", "D10", "D20", "D40"):
        by = want[want["class"] == c].groupby("segment_id").size()
        assert got[f"n_{c}"][got[f"n_{c}"] > 0].sort_index().to_dict() == by.sort_index().to_dict(), c
    # the bins hold the segment's damages (chainage as stored)
    gj = json.loads(out.read_text(encoding="utf-8"))
    bins = pd.DataFrame([f["properties"] for f in gj["features"]])
    by_bin = bins[bins["level"] == "bin20"].groupby("segment_id")["n_total"].sum()
    assert by_bin.sort_index().to_dict() == got["n_total"].sort_index().to_dict()
    assert meta["damages"] == len(want) and meta["drives"] == 2 and meta["status_filter"] == list(OPEN_STATUSES)
    assert f"{len(want)} damages" in r.stdout
    out2 = tmp_path / "all.geojson"
    export(path, out2, "--status", "new,not_an_issue,confirmed,scheduled,repaired,reopened")
    assert seg_rows(out2)[0]["n_total"].sum() == len(want) + 1  # not_an_issue back; the merged one never


def test_repaired_damages_drop_out(reg, tmp_path):
    """The damages of the segment that has the most, set repaired: that segment's count goes to 0 (it stays on the
    map, surveyed, now in better condition); --status repaired counts exactly them."""
    path, cfg, _ = reg
    with Store.for_config(path, cfg) as st:
        q = st.query(lists=False)
        seg_id = q["segment_id"].value_counts().index[0]
        fixed = q.loc[q["segment_id"] == seg_id, "candidate_id"].tolist()
        for cid in fixed:
            st.set_status(cid, "repaired")
    before = tmp_path / "before.geojson"
    out = tmp_path / "segments.geojson"
    export(path, out)
    got, _ = seg_rows(out)
    assert len(fixed) >= 2
    assert got.loc[seg_id, "n_total"] == 0 and got.loc[seg_id, "surveyed_m"] > 0
    assert got.loc[seg_id, "condition"] == 1  # surveyed, no open damage: good
    assert got["n_total"].sum() == len(q) - len(fixed)
    export(path, before, "--status", "repaired")
    rep, _ = seg_rows(before)
    assert rep["n_total"][rep["n_total"] > 0].to_dict() == {seg_id: len(fixed)}


def test_coverage_on_exactly_the_driven_segments(reg, tmp_path):
    """surveyed_m > 0 on exactly the segments the registry's drives surveyed, metre for metre what a run of both
    drives writes (its segments.geojson), each of them within the coverage radius of a frame; the network's other
    segments are not listed (not driven). first/last_surveyed: the days of p1 and p2."""
    path, cfg, keys = reg
    out = tmp_path / "segments.geojson"
    export(path, out)
    got, meta = seg_rows(out)
    covered = got["surveyed_m"][got["surveyed_m"] > 0].sort_index()
    run = _run_surveyed(cfg, keys, [P1, P2])
    assert len(covered) >= 10 and covered.index.tolist() == run.index.tolist()
    assert np.allclose(covered.to_numpy(), run.to_numpy(), atol=0.02)
    import geopandas as gpd

    net = gpd.read_file(TOYAMA / "roads.geojson").set_index("segment_id")
    assert len(net) > len(got)  # the network holds roads never driven: not on the map
    rows = [(la, lo) for d in (P1, P2) for _, _, _, _, la, lo, *_ in keys[d] if la is not None]
    pts = gpd.GeoSeries(gpd.points_from_xy([r[1] for r in rows], [r[0] for r in rows]), crs=4326)
    metric = net.estimate_utm_crs()
    near = net.geometry.to_crs(metric).distance(pts.to_crs(metric).union_all())
    assert (near.loc[covered.index] <= cfg.segments.coverage_radius_m + 0.01).all()
    first = got.loc[covered.index, "first_surveyed"].str[:10]
    last = got.loc[covered.index, "last_surveyed"].str[:10]
    by_p1, by_p2 = set(_run_surveyed(cfg, keys, [P1]).index), set(_run_surveyed(cfg, keys, [P2]).index)
    assert set(first[first == "2026-11-20"].index) == by_p1 and set(first[first == "2026-11-27"].index) == by_p2 - by_p1
    assert set(last[last == "2026-11-27"].index) == by_p2 and set(last[last == "2026-11-20"].index) == by_p1 - by_p2
    assert meta["first_frame"].startswith("2026-11-20T09:00") and meta["last_frame"].startswith("2026-11-27")
    assert meta["frames"] == sum(1 for d in (P1, P2) for f in keys[d] if f[4] is not None)


def test_poor_looks_and_since(reg, tmp_path):
    """Only frames whose look was good survey: p2's frames marked dark (a night drive) leave p1's coverage alone,
    dated 2026-11-20 only. --since 2026-11-25: p2's frames alone (and the damages seen since)."""
    path, cfg, keys = reg
    con = sqlite3.connect(path)
    with con:
        con.execute("UPDATE frames SET look='dark' WHERE did=(SELECT did FROM drives WHERE drive=?)", (P2,))
    con.close()
    out = tmp_path / "night.geojson"
    export(path, out)
    got, meta = seg_rows(out)
    covered = got["surveyed_m"][got["surveyed_m"] > 0].sort_index()
    p1 = _run_surveyed(cfg, keys, [P1])
    assert covered.index.tolist() == p1.index.tolist() and np.allclose(covered.to_numpy(), p1.to_numpy(), atol=0.02)
    assert set(got.loc[covered.index, "last_surveyed"].str[:10]) == {"2026-11-20"} and meta["drives"] == 1
    con = sqlite3.connect(path)
    with con:
        con.execute("UPDATE frames SET look=NULL")
    con.close()
    out = tmp_path / "since.geojson"
    export(path, out, "--since", "2026-11-25")
    got, meta = seg_rows(out)
    covered = got["surveyed_m"][got["surveyed_m"] > 0].sort_index()
    p2 = _run_surveyed(cfg, keys, [P2])
    assert covered.index.tolist() == p2.index.tolist() and np.allclose(covered.to_numpy(), p2.to_numpy(), atol=0.02)
    assert set(got.loc[covered.index, "first_surveyed"].str[:10]) == {"2026-11-27"}
    assert meta["since"] == "2026-11-25" and meta["drives"] == 1
    with Store.for_config(path, cfg) as st:
        assert meta["damages"] == len(st.query(status=["open"], since="2026-11-25", lists=False))


def test_gpkg_in_the_network_crs(registry, tmp_path):
    """The GeoPackage: layer segments in the network's (metric) CRS, the GeoJSON's rows and values."""
    import geopandas as gpd

    path, cfg, _ = registry
    export(path, tmp_path / "s.geojson")
    export(path, tmp_path / "s.gpkg")
    g = gpd.read_file(tmp_path / "s.gpkg", layer="segments")
    from detector.roads import load_roads

    assert g.crs == load_roads(TOYAMA / "roads.geojson", cfg).gdf.crs and g.crs.is_projected
    gj = json.loads((tmp_path / "s.geojson").read_text(encoding="utf-8"))
    want = pd.DataFrame([f["properties"] for f in gj["features"]])
    assert len(g) == len(want)
    for c in ("segment_id", "level", "n_total", "first_surveyed", "last_surveyed"):
        assert g[c].tolist() == want[c].tolist(), c
    assert np.allclose(g["surveyed_m"], want["surveyed_m"], atol=1e-3)
    con = sqlite3.connect(tmp_path / "s.gpkg")
    try:
        (desc,) = con.execute("SELECT description FROM gpkg_contents WHERE table_name='segments'").fetchone()
    finally:
        con.close()
    meta = json.loads(desc)
    assert meta["drives"] == 2 and meta["first_frame"].startswith("2026-11-20") and meta["registry"] == path.name


def test_refused(registry, tmp_path):
    """What the segments export cannot do: exit 2 naming the option, nothing written."""
    path, _, _ = registry
    roads = TOYAMA / "roads.geojson"
    for args, flag in [(["--status", "new,fixed", "--out", tmp_path / "a.geojson"], "--status"),
                       (["--out", tmp_path / "a.kml"], "--out"),  # (a.csv, a.xlsx: the table)
                       (["--crs", "EPSG:6675", "--out", tmp_path / "a.gpkg"], "--crs"),
                       (["--max-mb", "5", "--out", tmp_path / "a.geojson"], "--max-mb"),
                       (["--encoding", "utf-8", "--out", tmp_path / "a.gpkg"], "--encoding")]:
        r = patrol("export", path, "--format", "segments", "--roads", roads, *args)
        assert r.returncode == 2 and flag in r.stderr, (args, r.returncode, r.stderr)
        # the reason is the option's own (--max-mb and --encoding were refused with --crs's "WGS 84 … CRS")
        assert ("CRS" in r.stderr) == (flag == "--crs"), (flag, r.stderr)
    r = patrol("export", path, "--format", "segments", "--out", tmp_path / "a.geojson")
    assert r.returncode == 2 and "--roads" in r.stderr, r.stderr
    r = patrol("export", path, "--format", "segment", "--roads", roads, "--out", tmp_path / "a.geojson")
    assert r.returncode == 2 and "segments" in r.stderr, r.stderr
    assert not list(tmp_path.iterdir())


def test_damages_placed_anew_on_a_network_edited_since(registry, tmp_path):
    """A network whose segment ids changed since the damages were merged (a ledger re-numbered): every open damage is
    placed anew on the nearest segment (a note says how many), none lost, each at a chainage within its segment."""
    import geopandas as gpd

    path, cfg, _ = registry
    roads = gpd.read_file(TOYAMA / "roads.geojson")
    roads["segment_id"] = "new-" + roads["segment_id"].astype(str)
    renamed = tmp_path / "roads-renamed.geojson"
    roads.to_file(renamed, driver="GeoJSON")
    out = tmp_path / "s.geojson"
    r = patrol("export", path, "--format", "segments", "--roads", renamed, "--out", out)
    assert r.returncode == 0, r.stderr
    with Store.for_config(path, cfg) as st:
        n_open = len(st.query(status=["open"], lists=False))
    assert f"note: {n_open} damages placed on the network anew" in r.stderr, r.stderr
    gj = json.loads(out.read_text(encoding="utf-8"))
    rows = pd.DataFrame([f["properties"] for f in gj["features"]])
    seg = rows[rows["level"] == "segment"]
    assert seg["n_total"].sum() == n_open and seg["segment_id"].str.startswith("new-").all()
    assert (rows[rows["level"] == "bin20"].groupby("segment_id")["n_total"].sum().sort_index()
            == seg.set_index("segment_id")["n_total"].sort_index()).all()


def test_a_registry_without_frames(tmp_path):
    """`patrol locate --store` of detections without their frames: the registry knows the damages, not where the
    drives went: every segment with a damage is listed unsurveyed (coverage 0, condition empty: never called good)."""
    store = tmp_path / "registry.gpkg"
    r = patrol("locate", TOYAMA / f"{P1}.oracle.csv", "--roads", TOYAMA / "roads.geojson", "--out", tmp_path / "o",
               "--store", store)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "s.geojson"
    export(store, out)
    got, meta = seg_rows(out)
    assert meta["frames"] == 0 and meta["first_frame"] is None and len(got) > 0
    assert (got["surveyed_m"] == 0).all() and got["condition"].isna().all() and got["first_surveyed"].isna().all()
    assert got["n_total"].sum() == meta["damages"] > 0


def test_counts_of_one_read_singular(reg, tmp_path):
    """The exports' closing lines said "1 damages, … → 1 segments" and "1 candidates → FILE": a count of one is
    singular now (errors.plural; and "damage", the word every other closing line uses, since 0.11.0), every other
    count plural as before. Real data: the sample registry, one damage repaired, exported by --status repaired."""
    path, cfg, _ = reg
    with Store.for_config(path, cfg) as st:
        cid = st.query(lists=False)["candidate_id"].tolist()[0]
        st.set_status(cid, "repaired")
    r = export(path, tmp_path / "one.geojson", "--status", "repaired")
    said = " ".join(r.stdout.split())
    assert said.startswith("1 damage (repaired), ") and " frames of 2 drives → " in said, said
    said = " ".join(export(path, tmp_path / "open.geojson").stdout.split())
    # the statuses counted named (a registry of 31 damages, one repaired: "30 damages" alone read as one lost)
    assert said.startswith("30 damages (new/confirmed/scheduled/reopened), ") and " segments (" in said, said
    r = patrol("export", path, "--format", "csv", "--status", "repaired", "--out", tmp_path / "one.csv")
    assert r.returncode == 0 and "".join(r.stdout.split()).startswith(f"1damage→{tmp_path / 'one.csv'}"), r.stdout


def test_out_help_names_every_suffix_it_writes():
    """`patrol export --help` said segments go to "X.geojson or X.gpkg" (and so did the refusal) while X.json is
    written too (GeoJSON): the help and the message list exactly the suffixes segments.SEGMENT_FILES takes."""
    import re

    import typer

    import cli
    from detector.segments import SEGMENT_FILES, SEGMENT_TABLE_FILES

    every = sorted({**SEGMENT_FILES, **SEGMENT_TABLE_FILES})  # the maps and the tables (csv, xlsx)
    cmd = typer.main.get_command(cli.app).commands["export"]
    (out,) = [p for p in cmd.params if "--out" in p.opts]
    said = re.search(r"segments: (.*?)\)", out.help).group(1)
    assert sorted(re.findall(r"X(\.\w+)", said)) == every, said
    r = patrol("export", TOYAMA / "none.gpkg", "--format", "segments", "--roads", TOYAMA / "roads.geojson", "--out",
               "a.txt")
    assert r.returncode == 2 and sorted(re.findall(r"X(\.\w+)", r.stderr)) == every, r.stderr


def test_out_over_its_own_inputs_refused(reg, tmp_path):
    """`patrol export registry.gpkg --format gpkg --out registry.gpkg` replaced the registry with its own 31-row
    layer (measured: 962 KB → 115 KB, then "not a patrol registry: missing table(s) observations …"), and `--out` the
    network the city's roads: an --out that is one of the command's inputs (the same path resolved, a link to it) is
    refused with exit 2 naming it, the file left byte for byte as it was."""
    import os

    path, _, _ = reg
    roads = tmp_path / "roads.geojson"
    shutil.copy(TOYAMA / "roads.geojson", roads)
    link = tmp_path / "link.gpkg"
    os.symlink(path, link)
    before = {p: p.read_bytes() for p in (path, roads)}
    for fmt, out, what in (("gpkg", path, "the registry"), ("gpkg", link, "the registry"),
                           ("segments", roads, "the road network (--roads)")):
        r = patrol("export", path, "--format", fmt, "--roads", roads, "--out", out)
        said = " ".join(r.stderr.split())
        assert r.returncode == 2 and f"{out.name} is {what} this command reads" in said, (r.returncode, said)
        # what is lost is the registry's to say: not the network's or a config's
        assert ("every damage, its history and photos lost" in said) == (what == "the registry"), said
    assert {p: p.read_bytes() for p in (path, roads)} == before
    r = patrol("stats", path, "--out", tmp_path / "月報.csv")  # another file: written as before
    assert r.returncode == 0 and (tmp_path / "月報.csv").stat().st_size > 0, r.stderr


def test_crack_rate_of_each_bin_is_its_damages_area(reg, tmp_path):
    """The registry's export: each row's crack_area_m2 is the hand-computed share of the open damages' areas (a D00
    0.3 m² per metre of est_length_m, a D10 per metre of est_width_m, D20 and D40 est_width_m × est_length_m; none
    without a size, counted in n_no_estimate; a length whose best box reaches camera.max_distance_m counted at most
    10 m, in n_capped): each damage's area spread over the interval it covers, from its chainage (its near edge) on
    away from the camera (its best sighting's frame heading against the segment's direction), clipped to the
    segment; crack_rate that over surveyed_m × segments.survey_width_m (3 m) in %, one decimal, diagnosis I/II/III
    from it at 20 and 40 % where the row is valid (null where not), mci_crack 10 - 2.23 C^0.3."""
    import shapely

    from detector.roads import load_roads

    path, cfg, _ = reg
    with Store.for_config(path, cfg) as st:
        dmg = st.query(status=list(OPEN_STATUSES), lists=False)
    with sqlite3.connect(path) as con:
        heads = {(d, i): h for d, i, h in con.execute("SELECT drive, image, heading FROM observations")}
    out = tmp_path / "segments.geojson"
    export(path, out)
    gj = json.loads(out.read_text(encoding="utf-8"))
    rows = pd.DataFrame([f["properties"] for f in gj["features"]])
    w, ln = (pd.to_numeric(dmg[c], errors="coerce").to_numpy(float) for c in ("est_width_m", "est_length_m"))
    # longer than one frame measures reliably (10 m): here every one a box reaching the camera's cap (30 m), its
    # length ending where the camera stops measuring (30 m less its near edge's 1.5-4.3 m)
    capped = np.isfinite(ln) & (ln > 10)
    assert capped.sum() == 7 and (dmg["class"][capped] == "D00").all() and (ln[capped] > 25).all()
    ln = np.where(capped, np.minimum(ln, 10.0), ln)
    area = np.select([dmg["class"] == "D00", dmg["class"] == "D10"], [0.3 * ln, 0.3 * w], w * ln)
    sized = np.isfinite(area) & (area > 0)
    # which way each runs from its chainage: its best frame's heading (true) against the segment's grid bearing there
    net = load_roads(TOYAMA / "roads.geojson", cfg)
    k = np.array([int(np.flatnonzero(net.ids == s)[0]) for s in dmg["segment_id"]])
    ch = pd.to_numeric(dmg["chainage_m"]).to_numpy(float)
    a = shapely.line_interpolate_point(net.geoms[k], np.clip(ch - 1, 0, net.lengths[k]))
    b = shapely.line_interpolate_point(net.geoms[k], np.clip(ch + 1, 0, net.lengths[k]))
    bearing = np.degrees(np.arctan2(shapely.get_x(b) - shapely.get_x(a), shapely.get_y(b) - shapely.get_y(a)))
    h = np.array([heads.get((d, i), np.nan) for d, i in zip(dmg["best_drive"], dmg["best_image"])], float)
    assert np.isfinite(h).all()  # every sample damage's best frame has its heading
    fwd = np.cos(np.radians(net.true_to_grid(h) - bearing)) > 0
    along = np.where(sized, np.nan_to_num(ln), 0.0)
    lo = np.clip(np.where(fwd, ch, ch - along), 0, net.lengths[k])
    hi = np.clip(np.where(fwd, ch + along, ch), 0, net.lengths[k])
    dmg = dmg.assign(area=np.where(sized, area, 0.0), missing=~sized, ch=ch, lo=lo, hi=hi, capped=capped)
    width = cfg.segments.survey_width_m
    assert width == 3.0 and gj["patrol"]["survey_width_m"] == width  # the file says which width its rates took
    checked = 0
    for r in rows.itertuples():
        on = dmg[dmg["segment_id"] == r.segment_id]
        seg_len = rows[(rows["segment_id"] == r.segment_id) & (rows["level"] == "segment")]["length_m"].iloc[0]
        last = abs(r.to_m - seg_len) < 0.01
        inside = on[(on["ch"] >= r.from_m - 1e-6) & ((on["ch"] < r.to_m) | last)]
        assert len(inside) == r.n_total, r
        ext = on["hi"] - on["lo"]
        ov = (np.minimum(on["hi"], r.to_m) - np.maximum(on["lo"], r.from_m)).clip(lower=0)
        share = np.where(ext > 0, ov / ext.where(ext > 0, 1), on.index.isin(inside.index))
        mine = float((on["area"] * share).sum())
        assert r.crack_area_m2 == pytest.approx(mine, abs=0.006), r
        assert r.n_no_estimate == int(inside["missing"].sum()) and r.n_capped == int(inside["capped"].sum()), r
        if r.surveyed_m > 0:
            rate = round(min(100 * mine / (r.surveyed_m * width), 100.0), 1)
            assert r.crack_rate == pytest.approx(rate, abs=0.051), r  # (surveyed_m as written: 2 decimals)
            assert r.mci_crack == pytest.approx(round(10 - 2.23 * r.crack_rate ** 0.3, 1)), r
            want = "I" if r.crack_rate < 20 else "II" if r.crack_rate < 40 else "III"
            assert (r.diagnosis if r.valid else pd.isna(r.diagnosis)) == (want if r.valid else True), r
        else:
            assert pd.isna(r.crack_rate) and pd.isna(r.diagnosis), r
        checked += mine > 0
    assert checked >= 20  # rows with crack area
    # a segment's area is the sum of its bins' (each damage whole in its segment, shared among the bins it crosses)
    seg_area = rows[rows["level"] == "segment"].set_index("segment_id")["crack_area_m2"]
    for lv in ("bin20", "bin100"):
        bins = rows[rows["level"] == lv]
        assert bins.groupby("segment_id")["crack_area_m2"].sum().sub(seg_area).abs().max() < 0.011, lv
        assert bins["crack_area_m2"].sum() == pytest.approx(dmg["area"].sum(), abs=0.05)
    # a crack running on into the next 20 m bin gives that bin its share (before: all in the bin of its chainage)
    b20 = rows[rows["level"] == "bin20"]
    assert ((b20["n_total"] == 0) & (b20["crack_area_m2"] > 0)).sum() >= 2
    assert rows[rows["valid"]]["diagnosis"].notna().all() and rows[~rows["valid"]]["diagnosis"].isna().all()
    assert (rows["crack_rate"].dropna() > 0).sum() >= 20 and rows["crack_rate"].max() < 100


def test_table_csv_and_xlsx_are_the_geojson_rows(reg, tmp_path):
    """`--format segments --out X.csv|X.xlsx`: the rows and columns of the GeoJSON without the lines (the 100 m table a
    舗装点検 report is typed from: road, from-to m, crack rate, 診断区分), headed 日本語 and the column's name; the CSV
    UTF-8 with BOM, numbers as numbers (bin_index -1, not '-1), null as empty; the xlsx a sheet ``segments`` of the
    same cells and a ``legend`` saying how the crack rate was estimated and with which width."""
    import csv

    import openpyxl

    path, cfg, _ = reg
    export(path, tmp_path / "s.geojson")
    gj = json.loads((tmp_path / "s.geojson").read_text(encoding="utf-8"))
    want = [f["properties"] for f in gj["features"]]
    names = list(want[0])
    export(path, tmp_path / "s.csv")
    with open(tmp_path / "s.csv", encoding="utf-8-sig", newline="") as fh:
        head, *rows = list(csv.reader(fh))
    assert [h.split(" ")[-1] for h in head] == names and len(rows) == len(want)
    assert "ひび割れ率(%) crack_rate" in head and "診断区分 diagnosis" in head and "D20 亀甲状ひび割れ n_D20" in head
    for r, p in zip(rows, want):
        got = dict(zip(names, r))
        for c in ("level", "segment_id", "bin_index", "from_m", "to_m", "crack_rate", "diagnosis", "mci_crack",
                  "n_no_estimate", "condition"):
            v = p[c]
            assert got[c] == ("" if v is None else str(v)), (c, got[c], v)
        assert got["valid"] == ("TRUE" if p["valid"] else "FALSE")
    assert {r[names.index("diagnosis")] for r in rows} >= {"I", ""}
    export(path, tmp_path / "s.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "s.xlsx")
    ws = wb["segments"]
    cells = list(ws.iter_rows(values_only=True))
    assert [h.split("\n")[-1] for h in cells[0]] == names and len(cells) == len(want) + 1
    k = {c: names.index(c) for c in ("crack_rate", "diagnosis", "mci_crack", "bin_index", "to_m")}
    for r, p in zip(cells[1:], want):
        assert all(r[j] == p[c] for c, j in k.items()), (r, p)
    legend = " ".join(str(v) for row in wb["legend"].iter_rows(values_only=True) for v in row if v is not None)
    assert "調査幅 3 m" in legend and "survey_width_m" in legend and "詳細調査" in legend
