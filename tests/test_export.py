"""export: candidates.geojson (RFC 7946), repair_list.csv (BOM, order, formula injection)."""

from __future__ import annotations

import csv
import json

import pandas as pd

from detector.dedupe import CANDIDATE_COLUMNS
from detector.export import REPAIR_COLUMNS, safe_cell, write_candidates_geojson, write_repair_list


def _cands() -> pd.DataFrame:
    rows = []
    for k, (seg, ch, cls, name) in enumerate([("B", 5.0, "D40", "=HYPERLINK(\"x\")"), ("A", 30.0, "D00", "県道1号"), ("A", 2.5, "D10", "-1")]):
        rows.append({
            "candidate_id": f"C-{k:010d}", "class": cls, "class_name": "pothole", "class_name_ja": "ポットホール",
            "confidence": 0.87654, "n_obs": 3, "first_seen": "2026-11-20T09:00:00+09:00", "last_seen": "2026-11-27T09:00:05+09:00",
            "segment_id": seg, "road_name": name, "chainage_m": ch, "lat": 36.123456789, "lon": 137.987654321,
            "best_image": "@img.jpg" if k == 0 else "IMG_1.jpg", "best_drive": "p2" if k == 1 else "p1", "best_x1": 1.0, "best_y1": 2.0,
            "best_x2": 3.0, "best_y2": 4.0, "best_width": 512, "best_height": 512, "drives": ["p1", "p2"],
            "images": ["p1/IMG_1.jpg", "p2/IMG_9.jpg", "p2/IMG_8.jpg"], "severity": 55.5, "est_width_m": 0.4,
            "est_length_m": float("nan"), "last_drive": "p2",
            "observations": [{"drive": "p1", "image": "IMG_1.jpg", "x1": 1.0, "y1": 2.0, "x2": 3.0, "y2": 4.0,
                              "confidence": 0.87654, "time": "2026-11-20T09:00:00+09:00", "width": 512,
                              "height": 512}],  # (not written by any output)
        })
    return pd.DataFrame(rows)[CANDIDATE_COLUMNS]


def test_geojson_rfc7946(tmp_path):
    p = write_candidates_geojson(_cands(), tmp_path / "out" / "candidates.geojson")
    d = json.loads(p.read_text(encoding="utf-8"))
    assert d["type"] == "FeatureCollection" and "crs" not in d
    f = d["features"][0]
    assert f["geometry"] == {"type": "Point", "coordinates": [137.9876543, 36.1234568]}
    for k in ("candidate_id", "class", "class_name", "class_name_ja", "confidence", "n_obs", "first_seen", "last_seen",
              "segment_id", "road_name", "chainage_m", "best_image", "best_drive", "n_drives", "last_drive",
              "last_images", "severity"):
        assert k in f["properties"]
    # the sightings as every output gives them: counts, the latest drive's frames; no complete image list; a run's
    # outputs keep its own drives (the pipeline contract: candidates.geojson lists `drives`)
    assert f["properties"]["drives"] == ["p1", "p2"] and "images" not in f["properties"]
    assert (f["properties"]["n_drives"], f["properties"]["last_drive"], f["properties"]["last_images"]) == (
        2, "p2", ["p2/IMG_8.jpg", "p2/IMG_9.jpg"])
    assert f["properties"]["est_length_m"] is None
    assert [x["properties"]["segment_id"] for x in d["features"]] == ["A", "A", "B"]
    assert [x["id"] for x in d["features"]] == ["C-0000000002", "C-0000000001", "C-0000000000"]  # route order
    assert not list(tmp_path.joinpath("out").glob(".*.tmp"))  # atomic, no leftovers


def test_repair_list_bom_order_and_injection(tmp_path):
    (tmp_path / "crops").mkdir()
    cands = _cands()
    (tmp_path / "crops" / f"{cands['candidate_id'].iloc[0]}.jpg").write_bytes(b"\xff\xd8")
    p = write_repair_list(cands, tmp_path / "repair_list.csv")
    raw = p.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0] == REPAIR_COLUMNS
    body = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert [r["No"] for r in body] == ["1", "2", "3"]
    assert [(r["segment_id"], r["chainage_m"]) for r in body] == [("A", "2.5"), ("A", "30.0"), ("B", "5.0")]
    # route order: what the patrol saw first comes first, whatever the segment ids
    later = cands.assign(first_seen=["2026-11-20T09:00:01+09:00", "2026-11-20T09:00:09+09:00", "2026-11-20T00:00:05Z"])
    rows = list(csv.DictReader(write_repair_list(later, tmp_path / "route.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert [r["chainage_m"] for r in rows] == ["5.0", "2.5", "30.0"]  # 09:00:01, 00:00:05Z = 09:00:05 JST, 09:00:09
    assert body[0]["road_name"] == "'-1"
    assert body[1]["road_name"] == "県道1号" and body[1]["種別"] == "ポットホール"
    assert body[2]["road_name"].startswith("'=") and body[2]["best_image"] == "'@img.jpg"
    assert (body[0]["drives"], body[0]["n_drives"], body[0]["last_drive"]) == ("p1;p2", "2", "p2")
    # which drive's frame best_image is (two phones or passes can each have an IMG_0003.jpg)
    assert [(r["best_drive"], r["best_image"]) for r in body] == [("p1", "IMG_1.jpg"), ("p2", "IMG_1.jpg"), ("p1", "'@img.jpg")]
    assert body[0]["lat"] == "36.1234568"
    assert all(r[k] == "" for r in body for k in ("status", "note", "issue_type", "checked_by", "checked_at"))
    # the registry-only columns (with --store): there, empty; the citizen reports after the passes, as the registry's
    assert all(r[k] == "" for r in body for k in ("n_passes", "last_passed", "reports", "reported_first"))
    assert REPAIR_COLUMNS.index("reports") == REPAIR_COLUMNS.index("last_passed") + 1 == REPAIR_COLUMNS.index("reported_first") - 1
    # the crop beside the list, where there is one
    photos = {r["candidate_id"]: r["photo"] for r in body}
    first = cands["candidate_id"].iloc[0]
    assert photos.pop(first) == f"crops/{first}.jpg" and set(photos.values()) == {""}


def test_safe_cell():
    assert safe_cell("=1+1") == "'=1+1" and safe_cell("+x") == "'+x" and safe_cell("@a") == "'@a" and safe_cell("-a") == "'-a"
    assert safe_cell("ok") == "ok" and safe_cell(None) == "" and safe_cell(float("nan")) == ""
    # read back (import-verification): the guard's apostrophe off, any other text as it is
    from detector.export import unguard

    for v in ("=1+1", "+81 90", "-", "@a", "\tx", "ok", "'quoted'", "'", ""):
        assert unguard(safe_cell(v)) == v


def test_empty(tmp_path):
    empty = pd.DataFrame({c: [] for c in CANDIDATE_COLUMNS})
    d = json.loads(write_candidates_geojson(empty, tmp_path / "c.geojson").read_text())
    assert d == {"type": "FeatureCollection", "features": []}
    assert write_repair_list(empty, tmp_path / "r.csv").read_text(encoding="utf-8-sig").strip() == ",".join(REPAIR_COLUMNS)


def test_sightings_give_the_latest_drive_and_at_most_LAST_IMAGES_MAX_of_its_frames():
    """A vehicle waiting at a light films a damage for minutes: the outputs list the first LAST_IMAGES_MAX frames of
    the latest drive (name order), the counts say the rest; a frame without its drive (an older file, one drive)
    gets it."""
    from detector.export import LAST_IMAGES_MAX, sightings

    c = _cands().head(2).copy()
    c.at[0, "images"] = ["p1/IMG_1.jpg"] + [f"p2/IMG_{k:03d}.jpg" for k in range(45, 5, -1)]
    c.at[1, "drives"], c.at[1, "images"], c.at[1, "last_drive"] = ["p1"], ["IMG_7.jpg", "IMG_3.jpg"], None
    s = sightings(c)
    assert "images" not in s and list(s.drives) == [["p1", "p2"], ["p1"]] and list(s.n_drives) == [2, 1]
    assert s.last_images[0] == [f"p2/IMG_{k:03d}.jpg" for k in range(6, 6 + LAST_IMAGES_MAX)]
    assert (s.last_drive[1], s.last_images[1]) == ("p1", ["p1/IMG_3.jpg", "p1/IMG_7.jpg"])
