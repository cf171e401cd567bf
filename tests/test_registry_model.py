"""Issue 4 acceptance with the shipped model: three passes of one route into one store.

Passes 1 and 2 are the sample drive's two real passes through `patrol run` (images -> detector -> store);
pass 3 is pass 1's detections driven again two weeks later (drive renamed, times +14 days) through
`patrol locate --store`. After pass 3 the registry holds at most 1.05x the candidates of pass 1, every
damage seen in all three passes has n_obs >= 3, and no two candidates of one class lie within 10 m; each pass's own outputs list a registry id once.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cli import main
from detector.config import DEFAULT_WEIGHTS_ONNX
from detector.scoring import closest_same_class_m
from detector.store import Store


def _run(argv):
    try:
        main(argv)
    except SystemExit as e:  # typer exits 0 after a command in some paths
        assert e.code in (0, None), f"patrol {' '.join(argv)} exited {e.code}"


def _shift(src: Path, dst: Path, drive: str, days: int) -> None:
    with open(src, encoding="utf-8-sig", newline="") as fi, open(dst, "w", encoding="utf-8", newline="") as fo:
        r = csv.DictReader(fi)
        w = csv.DictWriter(fo, fieldnames=r.fieldnames, lineterminator="\n")
        w.writeheader()
        for row in r:
            if row["time"]:
                row["time"] = (datetime.fromisoformat(row["time"]) + timedelta(days=days)).isoformat()
            row["drive"] = drive
            w.writerow(row)


def test_three_passes_with_the_model(toyama, tmp_path):
    if not DEFAULT_WEIGHTS_ONNX.is_file():
        pytest.skip(f"shipped model missing: {DEFAULT_WEIGHTS_ONNX}")
    store = tmp_path / "registry.gpkg"
    roads = str(toyama / "roads.geojson")
    _run(["run", str(toyama / "toyama-2026-11-p1"), "--roads", roads, "--out", str(tmp_path / "p1"),
          "--store", str(store), "--no-report"])
    with Store(store) as st:
        n1 = len(st.query())
    assert n1 > 0, "the shipped model found nothing on pass 1"
    _run(["run", str(toyama / "toyama-2026-11-p2"), "--roads", roads, "--out", str(tmp_path / "p2"),
          "--store", str(store), "--no-report"])
    p3 = tmp_path / "toyama-2026-12-p3.csv"
    _shift(tmp_path / "p1" / "detections.csv", p3, "toyama-2026-12-p3", 14)
    _run(["locate", str(p3), "--roads", roads, "--out", str(tmp_path / "p3"), "--store", str(store)])
    with Store(store) as st:
        q = st.query()
    print(f"registry after pass 1: {n1}, after pass 3: {len(q)}")
    # each pass's own outputs show a damage once, under its registry id, with its registry status
    for p in ("p1", "p2", "p3"):
        feats = json.loads((tmp_path / p / "candidates.geojson").read_text(encoding="utf-8"))["features"]
        ids = [f["properties"]["candidate_id"] for f in feats]
        assert len(ids) == len(set(ids)), f"{p}: registry ids repeated in candidates.geojson"
        assert set(ids) <= set(q.candidate_id)
        with open(tmp_path / p / "repair_list.csv", encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert sorted(r["candidate_id"] for r in rows) == sorted(ids)
        assert all(r["status"] == "new" for r in rows)
        if p != "p3":  # image runs write a crop per candidate; the list points at it
            assert all(r["photo"] and (tmp_path / p / r["photo"]).is_file() for r in rows)
    assert len(q) <= 1.05 * n1
    three = q[q.drives.map(len) == 3]
    assert len(three) > 0
    assert (three.n_obs >= 3).all()
    for cls, d in closest_same_class_m(q).items():
        assert d > 10, f"duplicate {cls} candidates {d:.1f} m apart"
