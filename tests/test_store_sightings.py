"""A run gives the registry every sighting with its box, confidence and time (dedupe's ``observations``: the
candidate's most confident box in each frame), not only the best one's; a registry whose sightings were stored at image
level (patrol before this) gets their boxes when the drive is merged again, without counting them again. Real data:
the sample drive's two passes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd

from detector.config import Config
from detector.store import Store

from test_store import _oracle_candidates, dump

ROOT = Path(__file__).resolve().parent.parent
P1, P2 = "toyama-2026-11-p1", "toyama-2026-11-p2"


def _obs(store: Path) -> pd.DataFrame:
    con = sqlite3.connect(store)
    try:
        return pd.read_sql_query("SELECT * FROM observations", con)
    finally:
        con.close()


def test_run_stores_every_sighting_with_its_box_and_time(toyama, tmp_path):
    """Through the CLI: each pass's sightings are in the registry's observations with a box, the confidence and the
    frame's time of one of the run's detections in that frame (the most confident), n_obs as the run counted; each
    damage's latest sighting is one (no tie on the time), the drive ``patrol export`` gives as the latest."""
    cfg = tmp_path / "cfg.yaml"  # the shipped model is an early checkpoint: low thresholds, small and fast
    cfg.write_text("classes:\n" + "".join(f"  {c}: {{threshold: 0.05}}\n" for c in ("D00", "D10", "D20", "D40"))
                   + "detect: {imgsz: 320}\nprivacy: {blur_faces: false, blur_plates: false}\n", encoding="utf-8")
    store = tmp_path / "registry.gpkg"
    det = []
    for p in (P1, P2):
        r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "run", str(toyama / p), "--roads",
                            str(toyama / "roads.geojson"), "--out", str(tmp_path / p), "--store", str(store),
                            "--config", str(cfg), "--no-report"], cwd=ROOT, capture_output=True, text=True,
                           timeout=600, env={**os.environ, "COLUMNS": "200"})
        assert r.returncode == 0, r.stdout + r.stderr
        det.append(pd.read_csv(tmp_path / p / "detections.csv"))
        summary = json.loads((tmp_path / p / "summary.json").read_text("utf-8"))
    det = pd.concat(det, ignore_index=True)
    obs = _obs(store)
    assert len(obs) == summary["hits"]["sightings"] * 2 > 150  # (both passes: 77 sightings each)
    assert (obs.x1 >= 0).all() and obs.confidence.notna().all() and (obs.first_t == obs.last_t).all()
    with Store(store) as st:
        q = st.query().set_index("candidate_id")
    assert q.n_obs.sum() == len(obs)
    box = ["x1", "y1", "x2", "y2"]
    m = obs.merge(det, on=["drive", "image", "class"], suffixes=("", "_det"))
    # every stored box is one of the run's detections (whole pixels; detections.csv has tenths)
    m = m[sum((m[k] - m[f"{k}_det"]).abs() for k in box) <= 2].drop_duplicates("obs_id").set_index("obs_id")
    assert len(m) == len(obs)
    assert (m.confidence - m.confidence_det).abs().max() < 1e-6
    assert [datetime.fromisoformat(t).timestamp() for t in m.time] == m.first_t.tolist()
    # the frame's most confident box of the damage's class
    top = det.groupby(["drive", "image", "class"]).confidence.max()
    assert (m.confidence >= [top[k] - 1e-6 for k in zip(m.drive, m.image, m["class"])]).mean() > 0.9
    latest = obs.sort_values("last_t").groupby("candidate_id").tail(1).set_index("candidate_id")
    assert not obs.groupby("candidate_id").last_t.apply(lambda t: (t == t.max()).sum() > 1).any()
    assert (q.last_drive == latest.drive.reindex(q.index)).all()


def test_image_level_sightings_get_their_boxes_when_merged_again(toyama, tmp_path):
    """A registry of image-level sightings (the run's candidates without ``observations``, as patrol stored them
    before) and pass 1 merged again with every box: no new sighting, n_obs, first/last seen and best image as they
    were, every sighting boxed (``refined``); a third merge changes no byte."""
    cfg = Config()
    (c1, c2, _), _ = _oracle_candidates(toyama, cfg)
    assert "observations" in c1 and all(len(o) == n for o, n in zip(c1.observations, c1.n_obs))
    store = tmp_path / "old.gpkg"
    with Store(store) as st:
        st.merge(c1.drop(columns="observations"), {"run_id": "1"}, cfg)
        st.merge(c2.drop(columns="observations"), {"run_id": "2"}, cfg)
        before = st.query().set_index("candidate_id")
    old = _obs(store)
    assert (old.x1 < 0).sum() > len(old) / 3
    with Store(store) as st:
        res = st.merge(c1, {"run_id": "1b"}, cfg)
        res2 = st.merge(c2, {"run_id": "2b"}, cfg)
        after = st.query().set_index("candidate_id")
    assert res.new == res2.new == res.seen_again == res2.seen_again == [] and res.refined and res2.refined
    cols = ["n_obs", "first_seen", "last_seen", "drives", "images", "confidence"]
    pd.testing.assert_frame_equal(after[cols], before[cols])
    # the best sighting: still the most confident; among equally confident ones (the oracle's boxes are all 1.0) now
    # the earliest of all sightings, which the registry can compare now that they all have a confidence
    new = _obs(store)
    best = new.sort_values(["confidence", "first_t", "drive", "image"], ascending=[False, True, True, True]).groupby(
        "candidate_id").head(1)
    assert dict(zip(best.candidate_id, best.image)) == after.best_image.to_dict()
    assert len(new) == len(old) and (new.x1 >= 0).all()
    again = dump(store, skip=())
    with Store(store) as st:
        assert not st.merge(c2, {"run_id": "2c"}, cfg).changed
    assert dump(store, skip=()) == again
