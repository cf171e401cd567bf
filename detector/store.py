"""The repair registry across drives: one GeoPackage (SQLite) file that remembers every damage.

A road department drives the same roads every week. ``Store.merge`` folds one run's Candidates
(see docs/ARCHITECTURE.md) into the registry: a damage already known is *seen again* (its observations,
n_obs, first/last seen, best image and drives grow), an unknown one gets a registry id ``R-000001`` and
status ``new``, a ``repaired`` one seen again after its repair date is ``reopened``.  Crews set statuses
(``set_status``) or hand back the repair list they filled in (``import_verification``).

File format
-----------
A valid GeoPackage 1.4 written with stdlib ``sqlite3`` (application_id ``GPKG``, user_version 10400,
``gpkg_spatial_ref_sys`` / ``gpkg_contents`` / ``gpkg_geometry_columns``).  Rollback journal (not WAL):
the registry stays one self-contained file that GDAL/QGIS/geopandas read, also from read-only media.
Incremental auto-vacuum: pages freed by a write (a crop replaced by a better one) are reused, and handed back to
the file system once they are a quarter of the file (``Store._reclaim``).

Tables
------
``candidates`` (features, ``geom`` = GeoPackage binary Point, EPSG:4326): one row per damage, the
Candidates columns (``drives``/``images`` as JSON arrays; ``images`` as ``drive/name``, as in a run's outputs)
+ status columns + ``crop_jpeg`` (BLOB, the last column — in a registry migrated from schema 1 it stays where schema 1
had it, before first_t … crop_obs_id, see ``_CAND_SQL_TYPES`` — the crop of the best sighting that came with one, stored
only here; ``crop_obs_id`` names that sighting).  The crop stays in the layer QGIS opens: an HTML map tip or form
widget shows it (``<img src="data:image/jpeg;base64,[% to_base64("crop_jpeg") %]">``).
``observations`` (attributes): one row per sighting, unique key (drive, image, class, box rounded to whole
pixels).  A sighting whose box is unknown (an image of a run candidate other than its best one, when the
Candidates frame has no ``observations`` column) is kept at image level: (drive, image, class) once per
registry candidate, and superseded by a boxed sighting of the same image.  ``n_obs`` = number of
observations of the candidate.  Every aggregate of a candidate (n_obs, first/last seen, best image/box/
confidence/position, drives, images, crop) is recomputed from its observations, so a merge is a pure
function of the set of observations: merging the same run (or the same drive in a later run) again
changes nothing.
``status_history`` (attributes): every status change (creation, reopen, manual, import).
``drives`` (attributes): one row per drive folder name merged with its frames: first merge time and run, frames
recorded.  ``frames`` (attributes): every ok frame of those drives, ``frame_key`` (``frames.frame_key``: what the
camera wrote, not the file name; the INTEGER PRIMARY KEY), its drive and file name.  A run's frame whose key is
held is that frame: ``merge`` stores the run's sightings of it under the drive and name held (``_known_frames``), so
a drive copied under another folder name, or last week's photos in this week's folder, count once; the run's drives
that held such frames are ``MergeResult.copies``.  A folder name is not a drive: a run's drive whose folder name the
registry holds (with frames recorded) for photos it does not continue — a weekly card's ``DCIM`` whose camera numbers
from ``IMG_0001.jpg`` again — has its new frames and their sightings merged as ``DCIM (2026-11-27)`` (the local day
of its first new frame; ``_drive_names`` gives the rule, ``MergeResult.renamed`` the drives, ``renamed_from`` tells
such names); ``drives`` holds that name, no column the folder it came from: a rerun finds the name again from
the frames held under it.
``frames`` also keeps each frame's lat, lon, heading and time (``t``, unix s) where known (schema 4; NULL for frames
recorded before). ``passes`` (attributes, schema 4): one row per (candidate, drive) whose frames passed the damage
(within ``store.pass_radius_m``, heading along a direction it was seen from either way; ``Store._update_passes``):
time, distance and frame_key of the nearest such frame, ``sighted``; a drive that sighted it always passed it. The
candidate's ``n_passes``, ``n_unseen`` (passes after its last sighting that did not see it), ``last_passed`` are
recomputed from them; a merge keeps them a function of the frames and observations held (any order, or again: the
same rows).
``merged_into``, ``merged_at`` (schema 5): a candidate the office merged into another (``patrol merge``,
``Store.merge_candidates``: two candidates of one damage, a week's GPS off by more than ``store.match_distance_m`` or
one crack detected as two classes). Its sightings and passes became the other's (recomputed from them); its row stays
as a record of the id the crew lists printed (no sighting, no passes, ``geom`` NULL), left out of the exports and of a
run's matching; ``patrol status`` and the import name where it went. Not undone by any merge of a run; undone by
the office (``patrol merge … --undo``, ``Store.unmerge_candidate``) from ``merges`` (schema 5, attributes): one row per
candidate merged, the sightings its merge moved (obs_ids), those it set aside as duplicates (the rows as they were),
the crops it could replace.
``runs`` (attributes): one row per merge **that changed the registry**; a no-op merge (e.g. a re-run)
leaves no trace, so a repeated merge leaves every table byte-identical.  ``run_id`` (also on the observations
and status changes a merge wrote): the caller's, else ``<merge time>-<label>`` (see ``Store.merge``).
``patrol_meta`` (attributes): schema version, last registry number.
``job_ids`` (attributes; no schema version: created by the first jobs list, an older patrol ignores it): every
repair job id a jobs list (``patrol export --format jobs``) handed out, its damages and when it was first and last
listed (``Store.record_jobs``), so the next list gives the same stretch the same id; ``job_damages`` (attributes,
created alike, by the first list of a patrol that knows it): each damage a jobs list named and the job the latest
such list gave it (``Store.damage_jobs``: the lists' ``job_id`` column, ``patrol status 工区-003``). The two
tables an export writes.
``imports`` (attributes; no schema version: created by the first import that changes a damage, an older patrol ignores
it): one row per crew list imported that changed the registry, the damages it changed as they were before and after,
so that ``patrol import-verification … --undo`` (``Store.undo_import``) can give them back (``_IMPORTS_SQL``).
``rtree_candidates_geom``: the GeoPackage spatial index of ``candidates.geom`` (extension ``gpkg_rtree_index``,
virtual table and triggers as GDAL writes them), so QGIS filters by extent without a full scan.  The triggers call
``ST_IsEmpty``/``ST_MinX``… which GDAL provides and ``Store`` registers on its own connection.  A registry made
before the index gets it in its next write transaction; an SQLite without the R*Tree module works without it.

Schema versions (``patrol_meta.schema_version``): 2 since the crop is stored once, 3 since frames are recorded, 4 since
they are recorded with their positions and the passes kept (a patrol of schema 3 refuses it: its merges would record
frames without positions and leave their passes out), 5 since the office merges candidates (a patrol of schema 4
refuses it: it would list a merged candidate again and match drives to it).  A
registry of an older schema is read as it is and migrated by its next write transaction (``Store._migrate``; from 1
then compacted once); a patrol of schema 1 refuses a registry of schema 2 (it would clear the crops it no longer
finds in the sightings), one of schema 2 a registry of schema 3 (it would merge a copied drive again without
recording its frames).

Matching a run candidate to the registry (same class only)
---------------------------------------------------------
1. by key: a run candidate whose boxed sighting is already stored belongs to that registry candidate;
2. by place: distance = |delta chainage| on the same segment, else the planar (equirectangular) distance;
   pairs within ``cfg.store.match_distance_m`` are taken nearest first; each registry candidate is matched at
   most once per merge.  Unmatched run candidates become new registry candidates.
A candidate merged into another (schema 5) takes part in neither; the one it went into matches under its own class
and the classes of the sightings merged into it (``_match_table``).

Status life cycle: see ``TRANSITIONS``.  ``new`` and ``reopened`` are set by the registry only.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import re
import sqlite3
import struct
import time as _time
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Iterable
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from .errors import InputError, StoreError, UsageError, plural, read_input_bytes, shell_word
from .tracks import JA_DATE_MARKS, zone_of
from .textio import TextEncodingError, decode_text, table_delimiter

SCHEMA_VERSION = 5  # 2: the best crop only in candidates (crop_obs_id says whose), images as drive/name;
#                    3: the frames of every merged drive, by content (tables drives, frames);
#                    4: frames with their position, heading and time; passes (drives past a damage, seen or not);
#                    5: candidates merged by the office into another (merged_into, merged_at; ``patrol merge``)
#: the first patrol release that writes SCHEMA_VERSION: releases before it refuse a registry converted to it (exit 6).
#: Schema 5 is unreleased: the next release's number (set it at the release if it is another)
SCHEMA_SINCE = "0.3.0"


def _version() -> str:
    from . import __version__
    return __version__

BUSY_TIMEOUT_S = 120.0
#: the one form of the status times a crew or ``patrol status`` gives (``status_changed_at``, ``repaired_at``,
#: ``status_history.at``): ISO 8601 to the second with the offset of the config's timezone; a date is its 00:00
TIME_FORM = "YYYY-MM-DDTHH:MM:SS+HH:MM"
GPKG_APPLICATION_ID = 0x47504B47  # 'GPKG'
GPKG_USER_VERSION = 10400
SRS_ID = 4326
TEST_SLEEP_ENV = "PATROL_STORE_TEST_SLEEP_IN_TXN"  # test hook: seconds to sleep inside merge's transaction
TEST_MARKER_ENV = "PATROL_STORE_TEST_MARKER"  # test hook: file touched once inside the transaction

STATUSES = ("new", "confirmed", "scheduled", "repaired", "not_an_issue", "reopened")
SYSTEM_STATUSES = ("new", "reopened")  # set by the registry, never by hand
#: what a crew still goes out for (未対応): ``patrol export --status open``, report.html's status filter "open"
OPEN_STATUSES = ("new", "confirmed", "scheduled", "reopened")
_OPEN_WORDS = ("open", "未対応")
#: done with: the statuses OPEN_STATUSES leaves out (repaired, not_an_issue): the KML's grey icon, report.html's
#: damages without the unseen ring and outside its "open" filter
CLOSED_STATUSES = tuple(s for s in STATUSES if s not in OPEN_STATUSES)

#: allowed manual transitions (from -> {to}).  ``repaired -> reopened`` happens only in ``merge``
#: (seen again after the repair date), ``_set_status`` (a repair dated before a sighting held) and
#: ``merge_candidates`` (a damage seen after the repair merged into it).  Setting the current status again is a
#: no-op, not an error.
#: ``new -> repaired``: a damage the crew repaired on the spot during the patrol (応急処置: a pothole filled with
#: cold mix) in one step; its history row ``new -> repaired`` records that it was never confirmed separately.
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"confirmed", "scheduled", "repaired", "not_an_issue"}),
    "confirmed": frozenset({"scheduled", "repaired", "not_an_issue"}),
    "scheduled": frozenset({"repaired", "confirmed", "not_an_issue"}),
    "repaired": frozenset({"not_an_issue"}),
    "reopened": frozenset({"confirmed", "scheduled", "repaired", "not_an_issue"}),
    "not_an_issue": frozenset({"confirmed"}),
}

#: each status's label in the exports (their status_ja column, 状態(和); the map's and the workbook's legend):
#: status -> (ja, en). The crew's confirmations (``patrol status``, ``patrol import-verification``) name both
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "new": ("新規", "new"),
    "confirmed": ("確認済み", "confirmed"),
    "scheduled": ("補修予定", "scheduled"),
    "repaired": ("補修済み", "repaired"),
    "not_an_issue": ("対象外", "not an issue"),
    "reopened": ("再発", "reopened"),
}


def status_label(status: str | None) -> str:
    """``scheduled (補修予定)``: a stored status as the crew's confirmations name it (the code the registry and the
    exports' status column hold, and the exports' Japanese label)."""
    ja = STATUS_LABELS.get(status or "", (None,))[0]
    return f"{status} ({ja})" if ja else str(status)


#: a time cell's text with a seconds field (``17:05:00``): compared to the second, not to the minute
_HAS_SECONDS = re.compile(r"\d:\d\d:\d\d")

#: spellings a crew may type into the status column of the repair list
STATUS_ALIASES = {
    "新規": "new", "再発": "reopened",  # the exports' own Japanese labels (set by patrol; usable as filters)
    "確認済": "confirmed", "確認済み": "confirmed", "要補修": "confirmed",
    "補修予定": "scheduled", "予定": "scheduled",
    "補修済": "repaired", "補修済み": "repaired", "修繕済": "repaired",
    "応急処置済": "repaired", "応急処置済み": "repaired",  # repaired on the spot during the patrol
    "対象外": "not_an_issue", "問題なし": "not_an_issue", "not an issue": "not_an_issue", "ok": "not_an_issue",
}

#: what a crew may write, for the messages that refuse anything else
_CREW = [s for s in STATUSES if s not in SYSTEM_STATUSES]
CREW_STATUSES_TEXT = (", ".join(_CREW[:-1]) + f" or {_CREW[-1]} (" + ", ".join(STATUS_LABELS[s][0] for s in _CREW)
                      + ")")  # confirmed, scheduled, repaired or not_an_issue (確認済み, 補修予定, 補修済み, 対象外)

#: every word the import takes from a crew for a status (either status column): the codes, the exports' Japanese
#: labels and the other spellings of STATUS_ALIASES, of the statuses a crew sets (not new / reopened). The workbook's
#: status columns offer exactly these (a drop-down list, ``report.write_xlsx``): ``(code column's order, 状態(和)'s)``
_ALIAS_WORDS = [w for w, st in STATUS_ALIASES.items() if st in _CREW and w not in _CREW
                and w not in (STATUS_LABELS[s][0] for s in _CREW)]
CREW_STATUS_WORDS = (tuple(_CREW + [STATUS_LABELS[s][0] for s in _CREW] + _ALIAS_WORDS),
                     tuple([STATUS_LABELS[s][0] for s in _CREW] + _ALIAS_WORDS + _CREW))

CANDIDATE_COLUMNS = [
    "candidate_id", "class", "class_name", "class_name_ja", "confidence", "n_obs", "first_seen", "last_seen",
    "segment_id", "road_name", "chainage_m", "lat", "lon", "best_image", "best_drive", "best_x1", "best_y1",
    "best_x2", "best_y2", "best_width", "best_height", "drives", "images", "severity", "est_width_m", "est_length_m",
]
#: what the registry knows of the drives past a damage (``passes``): drives whose frames passed it (those that sighted
#: it included), those of them after its last sighting that did not see it, the time of the latest
PASS_COLUMNS = ["n_passes", "n_unseen", "last_passed"]
#: of a damage's passes, the drives that did not see it and whose every passing frame was too dark, glared or blurred
#: to show the road (``passes.look`` dark / glare / blurred): counted in ``n_passes``, never in ``n_unseen``. Read from
#: ``passes`` with the candidates (``query``, ``states``: ``Store._poor_look_sql``), not stored: a registry of
#: schema 5 written before it has it at once. A pass recorded before the look was measured (look NULL: a registry of
#: patrol before 0.3.0, or its frames) counts as a look, as in ``n_unseen``: 0 here
POOR_LOOK_COLUMN = "n_poor_look"
#: whether a damage has grown since it was first seen (悪化, ``Store.growth``; not stored: read from its sightings):
#: its estimated area (est_width_m × est_length_m) as its first and its latest drive saw it, their ratio, and
#: ``grown`` (1 / 0; None where no two drives can be compared) by ``GrowthRule``
GROWTH_COLUMNS = ["area_first_m2", "area_last_m2", "growth", "grown"]


@dataclass(frozen=True)
class GrowthRule:
    """When a damage has grown (config ``store.grown_*``): its latest compared drive's area at least ``ratio`` times
    its first's and ``min_m2`` larger, each of the two drives having seen it in ``min_sightings`` frames (with a size
    estimate) or more. Measured on the sample's two passes a week apart (the same unchanged damages): ratios
    0.84-2.06 (the 2.06: a 0.09 m² crack, +0.09 m²), +0.86 m² the most (at ×1.15): none flagged (README: Worsening)."""
    ratio: float = 1.5
    min_m2: float = 0.25
    min_sightings: int = 2

    @classmethod
    def of(cls, cfg=None) -> "GrowthRule":
        s = getattr(cfg, "store", None)
        if s is None:
            return cls()
        return cls(float(s.grown_ratio), float(s.grown_min_m2), int(s.grown_min_sightings))


#: a candidate the office merged into another (``Store.merge_candidates``): the id it went into, when (schema 5)
MERGED_COLUMNS = ["merged_into", "merged_at"]
STATUS_COLUMNS = ["status", "status_note", "status_changed_at", "repaired_at", "checked_by", "issue_type", "crop_jpeg"]

_CAND_SQL_TYPES = {
    "candidate_id": "TEXT NOT NULL UNIQUE", "class": "TEXT NOT NULL", "class_name": "TEXT", "class_name_ja": "TEXT",
    "confidence": "REAL", "n_obs": "INTEGER", "first_seen": "TEXT", "last_seen": "TEXT", "segment_id": "TEXT",
    "road_name": "TEXT", "chainage_m": "REAL", "lat": "REAL", "lon": "REAL", "best_image": "TEXT", "best_drive": "TEXT",
    "best_x1": "REAL", "best_y1": "REAL", "best_x2": "REAL", "best_y2": "REAL", "best_width": "INTEGER",
    "best_height": "INTEGER", "drives": "TEXT", "images": "TEXT", "severity": "REAL", "est_width_m": "REAL",
    "est_length_m": "REAL", "status": "TEXT NOT NULL", "status_note": "TEXT", "status_changed_at": "TEXT",
    "repaired_at": "TEXT", "checked_by": "TEXT", "issue_type": "TEXT",
    "first_t": "REAL", "last_t": "REAL", "repaired_t": "REAL", "created_run": "TEXT", "crop_obs_id": "INTEGER",
    # schema 4 (``passes``; a registry migrated from schema 3 has them after the crop: ALTER TABLE appends)
    "n_passes": "INTEGER", "n_unseen": "INTEGER", "last_passed": "TEXT",
    # schema 5 (``patrol merge``: this damage is another one's; appended after the crop in a migrated registry)
    "merged_into": "TEXT", "merged_at": "TEXT",
    # last: a column after a 12 KB crop is read by walking the crop's overflow pages (schema 1 had first_t, last_t,
    # repaired_t there, and its merge read repaired_t of every candidate). A registry migrated from schema 1 keeps
    # them after the crop: the migration does not rebuild the table, as measured it costs nothing (bench_registry.py
    # --layouts, 1,860 damages: scans of these columns, `export --since` and merges alike, warm and cold, within the
    # noise), since the migration compacts the file into auto-vacuum mode, where SQLite takes the next overflow page
    # from the pointer map instead of reading it, and a scan reads each row's leaf page either way
    "crop_jpeg": "BLOB",
}

_OBS_POS_COLUMNS = ["lat", "lon", "segment_id", "road_name", "chainage_m", "severity", "est_width_m", "est_length_m"]

_SCHEMA = f"""
CREATE TABLE gpkg_spatial_ref_sys (
  srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY, organization TEXT NOT NULL,
  organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT);
CREATE TABLE gpkg_contents (
  table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT UNIQUE, description TEXT DEFAULT '',
  last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
  CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id));
CREATE TABLE gpkg_geometry_columns (
  table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL,
  z TINYINT NOT NULL, m TINYINT NOT NULL,
  CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
  CONSTRAINT uk_gc_table_name UNIQUE (table_name),
  CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
  CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
CREATE TABLE candidates (
  fid INTEGER PRIMARY KEY AUTOINCREMENT, geom POINT,
  {", ".join(f'"{k}" {v}' for k, v in _CAND_SQL_TYPES.items())});
CREATE TABLE observations (
  obs_id INTEGER PRIMARY KEY AUTOINCREMENT, candidate_id TEXT NOT NULL, drive TEXT NOT NULL, image TEXT NOT NULL,
  class TEXT NOT NULL, x1 INTEGER NOT NULL, y1 INTEGER NOT NULL, x2 INTEGER NOT NULL, y2 INTEGER NOT NULL,
  owner TEXT NOT NULL, confidence REAL, width INTEGER, height INTEGER, first_seen TEXT, last_seen TEXT,
  first_t REAL, last_t REAL, lat REAL, lon REAL, segment_id TEXT, road_name TEXT, chainage_m REAL, severity REAL,
  est_width_m REAL, est_length_m REAL, run_id TEXT, heading REAL);
CREATE UNIQUE INDEX observations_key ON observations (drive, image, class, x1, y1, x2, y2, owner);
CREATE TABLE status_history (
  hid INTEGER PRIMARY KEY AUTOINCREMENT, candidate_id TEXT NOT NULL, at TEXT, from_status TEXT, to_status TEXT NOT NULL,
  who TEXT, note TEXT, issue_type TEXT, source TEXT NOT NULL, run_id TEXT);
CREATE INDEX status_history_cand ON status_history (candidate_id);
CREATE TABLE runs (
  rid INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, merged_at TEXT NOT NULL, n_input INTEGER, n_new INTEGER,
  n_seen_again INTEGER, n_reopened INTEGER, n_unchanged INTEGER, info TEXT);
CREATE TABLE patrol_meta (key TEXT PRIMARY KEY, value TEXT);
"""

#: a drive's frames (the name-reuse check, ``Store._drive_names``): without it each check reads the whole table
#: (bench_registry.py --weeks 41 --frames 100, 180,600 frames: 18-43 ms a check -> 0.08 ms; 16 bytes a frame, 2.9 MB,
#: where (did, image) took 54 bytes a frame for the same time). Made with the tables, and by the next write of a
#: registry made before it (``_ensure_indexes``)
_FRAMES_INDEX_SQL = "CREATE INDEX IF NOT EXISTS frames_did ON frames (did)"

#: schema 3: every frame of every drive merged, by what the camera wrote (``frames.frame_key``), so that a drive
#: copied under another folder name is known for what it is (``Store.merge``). In a registry of schema 2 they are
#: created by its next write transaction (``_migrate``).
_FRAMES_SQL = [
    "CREATE TABLE IF NOT EXISTS drives (did INTEGER PRIMARY KEY AUTOINCREMENT, drive TEXT NOT NULL UNIQUE, "
    "merged_at TEXT NOT NULL, run_id TEXT, n_frames INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS frames (frame_key INTEGER PRIMARY KEY, did INTEGER NOT NULL, image TEXT NOT NULL, "
    "lat REAL, lon REAL, heading REAL, t REAL, look TEXT)",
    _FRAMES_INDEX_SQL,
    "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) VALUES "
    "('drives', 'attributes', 'drives', 'drive folders merged, first merge time, frames recorded', NULL)",
    "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) VALUES "
    "('frames', 'attributes', 'frames', 'every frame merged, by content (frame_key): its drive and name', NULL)",
]

#: schema 4: a frame's position, heading (deg true) and time (unix s), where known (frames recorded by schema 3 keep
#: NULLs); added to a schema-3 ``frames`` by ALTER TABLE in the next write transaction (``_migrate``)
_FRAME_POS_COLUMNS = {"lat": "REAL", "lon": "REAL", "heading": "REAL", "t": "REAL"}
#: schema 5: a frame's look (``frames.look``, ``Frame.look``: NULL good or not measured, else why it could not show the
#: road: dark, glare, blurred) and a pass's (NULL: the drive's nearest passing frame looked; else every passing frame
#: of that drive was a poor look, the nearest's verdict): a pass without a look is no unseen pass (``n_unseen``)
_LOOK_COLUMNS = {"look": "TEXT"}
#: the frames near a damage (``Store._update_passes``): by a grid cell of 1/2000 degree (55 m north-south, 45 m
#: east-west in Japan), an expression index: a range on lat alone read a band across the whole city (bench_registry
#: --weeks 41 --frames 100: 9.6 s of a 13.6 s merge)
_CELL_DEG = 2000
_CELL = f"(CAST(ROUND(lat * {_CELL_DEG}) AS INTEGER) * 1000000 + CAST(ROUND(lon * {_CELL_DEG}) AS INTEGER))"
_FRAMES_POS_INDEX_SQL = f"CREATE INDEX IF NOT EXISTS frames_cell ON frames ({_CELL}) WHERE lat IS NOT NULL"

#: schema 4: one row per (damage, drive) whose frames passed it (``Store._update_passes``): the time and distance of
#: the nearest passing frame, and whether that drive sighted it. Recomputed from frames and observations only
_PASSES_SQL = [
    "CREATE TABLE IF NOT EXISTS passes (pid INTEGER PRIMARY KEY, candidate_id TEXT NOT NULL, drive TEXT NOT NULL, "
    "time TEXT, t REAL, distance_m REAL, sighted INTEGER NOT NULL, frame_key INTEGER, look TEXT)",
    "CREATE UNIQUE INDEX IF NOT EXISTS passes_cand_drive ON passes (candidate_id, drive)",
    "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) VALUES "
    "('passes', 'attributes', 'passes', 'every drive past a damage: nearest frame time and distance, sighted or not', "
    "NULL)",
]

#: schema 5: one row per candidate the office merged into another (``Store.merge_candidates``), what undoing it needs
#: (``Store.unmerge_candidate``): the sightings moved (``moved``: their obs_ids, JSON), those set aside as duplicates
#: (``set_aside``: image-level sightings of a photo the other damage had a sighting of, JSON rows as they were), the
#: observations' sequence then (the sightings added since are a run's), its crop and the one its crop replaced in
#: ``into_id`` (or NULL). Deleted by the undo.
_MERGES_SQL = [
    "CREATE TABLE IF NOT EXISTS merges (candidate_id TEXT PRIMARY KEY, into_id TEXT NOT NULL, at TEXT NOT NULL, "
    "obs_seq INTEGER, moved TEXT NOT NULL, set_aside TEXT NOT NULL, crop_obs_id INTEGER, into_crop_obs_id INTEGER, "
    "crop_jpeg BLOB, into_crop_jpeg BLOB)",
    "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) VALUES "
    "('merges', 'attributes', 'merges', 'candidates merged by the office: the sightings moved, to undo it', NULL)",
]

#: citizen reports (住民通報: My City Report, a city's own form; ``patrol import-reports``, ``detector.citizen``): one
#: row per report, by its source (``--source``: '' where none was named) and the source's own report id (two
#: sources may number their reports alike), as its latest export gave it; ``file``: the file it came from. Created
#: by the first import (CREATE TABLE IF NOT EXISTS, in a registry of any age; none before: ``has_reports``): no new
#: schema version, an older patrol ignores a table it does not know. Which damage a report is of is not stored:
#: computed when asked (``citizen.match_reports``), so it follows the damages as they are merged, moved or repaired
REPORT_FIELDS = ["posted_at", "lat", "lon", "category", "body", "image_url", "city_status"]
_REPORTS_SQL = [
    "CREATE TABLE IF NOT EXISTS reports (source TEXT NOT NULL DEFAULT '', report_id TEXT NOT NULL, posted_at TEXT, "
    "posted_t REAL, lat REAL, lon REAL, category TEXT, body TEXT, image_url TEXT, city_status TEXT, file TEXT, "
    "row INTEGER, imported_at TEXT NOT NULL, updated_at TEXT, PRIMARY KEY (source, report_id))",
    "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) VALUES "
    "('reports', 'attributes', 'reports', 'citizen reports (住民通報) imported by patrol import-reports', NULL)",
]

#: repair jobs (補修工区) handed out by ``patrol export --format jobs`` (``Store.record_jobs``, ``detector.jobs``): one
#: row per job id ever given (``number``: the id's number, ``工区-`` and it; never given again), the damages of every
#: list that named it (``candidate_ids``, sorted, ';'), when a list first and last named it (the registry's clock).
#: What a later list matches its jobs to, so that a job keeps its id; ``job_damages``: each damage's job by the latest
#: list that named it (what the other lists' job_id column and ``patrol status 工区-003`` read). Created by the first
#: jobs list (CREATE TABLE IF NOT EXISTS, in a registry of any age; none before: ``held_jobs`` empty), as
#: ``reports``: no new schema version, an
#: older patrol ignores a table it does not know (and numbers its own lists in their order, as it did). Not named
#: ``repair_jobs``, the jobs GeoPackage's layer (``jobs.JOB_LAYER``): a list written into the registry file by mistake
#: would replace the record
_JOBS_SQL = [
    "CREATE TABLE IF NOT EXISTS job_ids (job_id TEXT PRIMARY KEY, number INTEGER NOT NULL UNIQUE, "
    "candidate_ids TEXT NOT NULL, first_exported TEXT NOT NULL, last_exported TEXT NOT NULL)",
    "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) VALUES "
    "('job_ids', 'attributes', 'job_ids', 'repair jobs (補修工区) handed out by patrol export --format jobs: "
    "each id''s damages, first and last listed', NULL)",
    # each damage's job by the latest list naming it (``job_ids.candidate_ids`` holds every list's, for the matching:
    # a damage moved from one job to another is in both ids' there).
    # A table of its own, not a column of job_ids: a district's list names a job without the damages beyond the
    # district's edge, whose latest list (the whole city's) still gave them that job; a per-job column of the latest
    # list's members could not tell that. Created by the first list of this patrol (CREATE TABLE IF NOT EXISTS, as
    # job_ids: no schema version); where it is missing or holds no row of a damage (ids recorded by the first patrol
    # that kept them), ``damage_jobs`` reads job_ids as that patrol left it
    "CREATE TABLE IF NOT EXISTS job_damages (candidate_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, "
    "listed TEXT NOT NULL)",
    "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) VALUES "
    "('job_damages', 'attributes', 'job_damages', 'each damage a repair jobs list (補修工区) named and the job "
    "id the latest such list gave it', NULL)",
]

#: what a crew's list sets on a damage (``import_verification``, ``_set_status``, ``_annotate``, ``_reopen``): what an
#: import's record keeps of each damage it changed, before and after, and what its undo gives back
IMPORT_STATE_COLUMNS = ["status", "status_note", "status_changed_at", "repaired_at", "repaired_t", "checked_by",
                        "issue_type"]

#: crew lists imported (``Store.import_verification``, ``patrol import-verification``): one row per import that changed
#: a damage (a list imported again that changes nothing leaves none, as ``runs``), what its undo needs
#: (``Store.undo_import``): the file's name (as its history rows' ``source`` ``import:<file>`` name it), what it was
#: (list, ledger, jobs list), the time of the import (the registry's clock), its history rows (``first_hid`` ..
#: ``last_hid``: one transaction's, contiguous), each damage it changed with its ``IMPORT_STATE_COLUMNS`` before and
#: after (``damages``, JSON). Its undo stamps ``undone_at``, its own history rows (``undo_first_hid`` ..
#: ``undo_last_hid``) and the damages it left (``left``, JSON: changed since). The history rows alone cannot tell two
#: imports of one file name apart (their ``at`` is the crew's date, ``run_id`` empty) nor give a damage's note or
#: checker before. Created by the first import that changes a damage (CREATE TABLE IF NOT EXISTS, in a registry of any
#: age): no new schema version, an older patrol ignores it (and records none of its own imports: those cannot be undone)
_IMPORTS_SQL = [
    "CREATE TABLE IF NOT EXISTS imports (iid INTEGER PRIMARY KEY AUTOINCREMENT, file TEXT NOT NULL, what TEXT, "
    "imported_at TEXT NOT NULL, first_hid INTEGER NOT NULL, last_hid INTEGER NOT NULL, damages TEXT NOT NULL, "
    "undone_at TEXT, undo_first_hid INTEGER, undo_last_hid INTEGER, left TEXT)",
    "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) VALUES "
    "('imports', 'attributes', 'imports', 'crew lists imported by patrol import-verification: the damages each "
    "changed, before and after, to undo it', NULL)",
]


_SRS_ROWS = [
    ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", "undefined cartesian coordinate reference system"),
    ("Undefined geographic SRS", 0, "NONE", 0, "undefined", "undefined geographic coordinate reference system"),
    ("WGS 84 geodetic", 4326, "EPSG", 4326,
     'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],'
     'AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,'
     'AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]',
     "longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid"),
]
_CONTENTS = [
    ("candidates", "features", "candidates", "repair registry: one row per damage", SRS_ID),
    ("observations", "attributes", "observations", "every sighting of a registry damage", None),
    ("status_history", "attributes", "status_history", "every status change", None),
    ("runs", "attributes", "runs", "merges that changed the registry", None),
    ("patrol_meta", "attributes", "patrol_meta", "registry schema version and counters", None),
]
_REQUIRED_TABLES = {"candidates", "observations", "status_history", "runs", "patrol_meta", "gpkg_contents"}

#: indexes a registry needs to stay fast over years (a merge recomputes a candidate from its observations: without
#: them each query reads every observation row of the candidate, one page each, so a merge grows with the weeks
#: merged). Created with the schema and, in a registry made before them, in its next write transaction.
_BEST_ORDER = "(confidence IS NULL), confidence DESC, (first_t IS NULL), first_t, drive, image, x1, y1, x2, y2"
_INDEX_SQL = [
    "CREATE INDEX IF NOT EXISTS observations_cand_first ON observations (candidate_id, first_t, last_t)",
    "CREATE INDEX IF NOT EXISTS observations_cand_last ON observations (candidate_id, last_t)",
    "CREATE INDEX IF NOT EXISTS observations_cand_drive ON observations (candidate_id, drive, image, class)",
    f"CREATE INDEX IF NOT EXISTS observations_cand_best ON observations (candidate_id, {_BEST_ORDER})",
]
_INDEX_NAMES = tuple(re.search(r"EXISTS (\w+)", q).group(1) for q in _INDEX_SQL)

_RTREE = "rtree_candidates_geom"
_GEOM_FUNCTIONS = ("ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")
_BOX = 'ST_MinX(NEW."geom"), ST_MaxX(NEW."geom"), ST_MinY(NEW."geom"), ST_MaxY(NEW."geom")'
_HAS = '{0}."geom" NOT NULL AND NOT ST_IsEmpty({0}."geom")'
_RTREE_SQL = [  # GeoPackage 1.4 rtree extension (update6/update7 replace 1.3's update1/update3), as GDAL 3.x writes it
    f'CREATE VIRTUAL TABLE "{_RTREE}" USING rtree(id, minx, maxx, miny, maxy)',
    f'CREATE TRIGGER "{_RTREE}_insert" AFTER INSERT ON "candidates" WHEN ({_HAS.format("NEW")}) BEGIN '
    f'INSERT OR REPLACE INTO "{_RTREE}" VALUES (NEW."fid", {_BOX}); END',
    f'CREATE TRIGGER "{_RTREE}_update6" AFTER UPDATE OF "geom" ON "candidates" WHEN OLD."fid" = NEW."fid" AND '
    f'({_HAS.format("NEW")}) AND ({_HAS.format("OLD")}) BEGIN UPDATE "{_RTREE}" SET minx = ST_MinX(NEW."geom"), '
    f'maxx = ST_MaxX(NEW."geom"), miny = ST_MinY(NEW."geom"), maxy = ST_MaxY(NEW."geom") WHERE id = NEW."fid"; END',
    f'CREATE TRIGGER "{_RTREE}_update7" AFTER UPDATE OF "geom" ON "candidates" WHEN OLD."fid" = NEW."fid" AND '
    f'({_HAS.format("NEW")}) AND (OLD."geom" ISNULL OR ST_IsEmpty(OLD."geom")) BEGIN '
    f'INSERT INTO "{_RTREE}" VALUES (NEW."fid", {_BOX}); END',
    f'CREATE TRIGGER "{_RTREE}_update2" AFTER UPDATE OF "geom" ON "candidates" WHEN OLD."fid" = NEW."fid" AND '
    f'(NEW."geom" ISNULL OR ST_IsEmpty(NEW."geom")) BEGIN DELETE FROM "{_RTREE}" WHERE id = OLD."fid"; END',
    f'CREATE TRIGGER "{_RTREE}_update5" AFTER UPDATE ON "candidates" WHEN OLD."fid" != NEW."fid" AND '
    f'({_HAS.format("NEW")}) BEGIN DELETE FROM "{_RTREE}" WHERE id = OLD."fid"; '
    f'INSERT OR REPLACE INTO "{_RTREE}" VALUES (NEW."fid", {_BOX}); END',
    f'CREATE TRIGGER "{_RTREE}_update4" AFTER UPDATE ON "candidates" WHEN OLD."fid" != NEW."fid" AND '
    f'(NEW."geom" ISNULL OR ST_IsEmpty(NEW."geom")) BEGIN DELETE FROM "{_RTREE}" WHERE id IN (OLD."fid", NEW."fid"); END',
    f'CREATE TRIGGER "{_RTREE}_delete" AFTER DELETE ON "candidates" WHEN OLD."geom" NOT NULL BEGIN '
    f'DELETE FROM "{_RTREE}" WHERE id = OLD."fid"; END',
    'CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL, '
    'definition TEXT NOT NULL, scope TEXT NOT NULL, '
    'CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))',
    "INSERT OR IGNORE INTO gpkg_extensions VALUES ('candidates', 'geom', 'gpkg_rtree_index', "
    "'http://www.geopackage.org/spec120/#extension_rtree', 'write-only')",
    f'INSERT INTO "{_RTREE}" SELECT fid, ST_MinX(geom), ST_MaxX(geom), ST_MinY(geom), ST_MaxY(geom) FROM candidates '
    'WHERE geom NOT NULL AND NOT ST_IsEmpty(geom)',
]


# --------------------------------------------------------------------------------------------- helpers
def gpkg_point(lon: float, lat: float, srs_id: int = SRS_ID) -> bytes | None:
    """GeoPackage binary Point: 'GP', version 0, flags (little endian, no envelope), srs_id, WKB point."""
    if lon is None or lat is None or not (math.isfinite(lon) and math.isfinite(lat)):
        return None
    return b"GP" + struct.pack("<BBi", 0, 0x01, srs_id) + struct.pack("<BIdd", 1, 1, float(lon), float(lat))


def parse_gpkg_point(blob: bytes | None) -> tuple[float, float] | None:
    if not blob:
        return None
    if blob[:2] != b"GP":
        raise ValueError("not a GeoPackage geometry")
    flags = blob[3]
    env = (flags >> 1) & 0x07
    off = 8 + {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}[env]
    endian = "<" if blob[off] == 1 else ">"
    _, x, y = struct.unpack(endian + "Idd", blob[off + 1: off + 21])
    return x, y


def _gpkg_geom_function(name: str):
    """``ST_IsEmpty`` / ``ST_MinX`` … of a GeoPackage Point blob, for the spatial index triggers (None for NULL or a
    blob that is not a GeoPackage point: an error inside a trigger would abort the registry's transaction)."""
    def f(blob):
        if not isinstance(blob, bytes) or len(blob) < 8 or blob[:2] != b"GP":
            return None
        empty = bool(blob[3] & 0x10)
        if name == "ST_IsEmpty":
            return int(empty)
        try:
            xy = None if empty else parse_gpkg_point(blob)
        except (ValueError, KeyError, struct.error):
            return None
        return None if xy is None else xy[0 if name[-1] == "X" else 1]
    return f


@dataclass
class DriveCopy:
    """Frames of a run's drive that the registry already holds, by content (``frames.frame_key``), under another
    drive name: merged before (``merged_at`` of that drive's first merge), or earlier in the same run (None)."""
    drive: str  # the run's drive folder name
    same_as: str  # the drive they were merged as
    merged_at: str | None  # when ``same_as`` was first merged (ISO 8601); None: it is a drive of this run
    frames: int  # the run drive's frames that are photos of ``same_as``
    of: int  # the run drive's frames with a key (its ok frames)

    @property
    def message(self) -> str:
        """One line for the run's summary, naming both drives and the date."""
        if self.merged_at:
            when = datetime.fromisoformat(self.merged_at).strftime("%Y-%m-%d %H:%M")
            src = f"drive {self.same_as}, merged into the registry on {when}"
            if self.frames == self.of and renamed_from(self.same_as, self.drive):
                return (f"{self.drive}: merged before as drive {self.same_as} on {when} (the registry's name for it, "
                        f"told from another drive {self.drive}): not counted again")
        else:
            src = f"drive {self.same_as} of this run"
        if self.frames == self.of:
            return (f"{self.drive}: the same frames as {src} (all {self.of} of them): not counted again "
                    f"(no new sighting, n_obs and drives unchanged)")
        return (f"{self.drive}: {self.frames} of its {self.of} frames are the same frames as {src}: those not counted "
                f"again; its other {self.of - self.frames} frames merged as {self.drive}")

    def as_dict(self) -> dict:
        return {"drive": self.drive, "same_as": self.same_as, "merged_at": self.merged_at, "frames": self.frames,
                "of": self.of}


#: ``store.pass_radius_m``'s default (see config) and ``locate.heading_tolerance_deg``'s, for a merge without config
PASS_RADIUS_M = 15.0
HEADING_TOLERANCE_DEG = 60.0


def _run_who(run_id: str | None, run_info: dict | None = None, cfg=None) -> str:
    """``who`` of a history row a run's merge writes (a damage found: new; a drive's sighting reopening a repaired
    damage): ``patrol (run <run_id>)``, with the run's inspector where it has one (``patrol run --inspector``, else the config's
    ``patrol_log.inspector``; ``run_info['inspector']``): ``patrol (run 20261127T004612-week48, inspector 田中)``."""
    insp = _s((run_info or {}).get("inspector")) or _s(getattr(getattr(cfg, "patrol_log", None), "inspector", None))
    return f"patrol (run {run_id}" + (f", inspector {insp})" if insp else ")")


def _pass_rules(cfg=None) -> tuple[float, float]:
    """(``store.pass_radius_m``, ``locate.heading_tolerance_deg``) of ``cfg``, the defaults without one: what a frame
    must be to pass a damage (``Store._update_passes``)."""
    if cfg is None:
        return PASS_RADIUS_M, HEADING_TOLERANCE_DEG
    return (float(getattr(getattr(cfg, "store", None), "pass_radius_m", PASS_RADIUS_M)),
            float(cfg.locate.heading_tolerance_deg))

#: a run drive's new frames this close in time (s) to the frames it shares with the registry's drive of its folder
#: name continue that drive though of another day (a patrol past midnight, its last photos uploaded late)
CONTINUE_S = 6 * 3600.0

#: what the registry appends to a folder name it already holds for another drive: `` (2026-11-27)``, the day of the
#: drive's first new frame (`` (2026-11-27, 2)`` for a second such drive that day), `` (2)`` … for undated frames
_RENAMED = r" \((?:\d{4}-\d{2}-\d{2}(?:, \d+)?|\d+)\)"


def renamed_from(name: str, folder: str) -> bool:
    """Is ``name`` a name the registry gives a drive of folder ``folder`` (``DCIM (2026-11-27)`` of ``DCIM``)?"""
    return name.startswith(folder) and re.fullmatch(re.escape(folder) + _RENAMED, name) is not None


@dataclass
class DriveRename:
    """A run's drive whose folder name the registry holds for another drive (a weekly card folder always called
    ``DCIM``; see ``Store._drive_names``): its new frames are merged as ``as_name``."""
    drive: str  # the run's drive folder name
    as_name: str  # the drive name its frames and sightings have in the registry
    held_merged_at: str  # when the registry's drive ``drive`` was first merged (ISO 8601)
    why: str  # "names": file names held for other photos; "none": not one photo in common; "days": other days
    conflicts: list[str]  # its new frames' file names that the registry's ``drive`` holds for other photos (sorted)
    days: list[str]  # the local days of its new frames
    held_days: list[str]  # the local days of its frames that are photos of the registry's ``drive``
    frames: int  # its new frames, recorded under ``as_name``
    of: int  # its frames with a key
    again: bool = False  # ``as_name`` was given before (photos added to a drive merged as it)

    @property
    def message(self) -> str:
        """One line for the run's summary: the folder, why it is another drive, the name it is merged as."""
        when = datetime.fromisoformat(self.held_merged_at).strftime("%Y-%m-%d %H:%M")
        if self.why == "names":
            n = len(self.conflicts)
            ex = ", ".join(self.conflicts[:3]) + (" …" if n > 3 else "")
            why = f"{n} of its file names ({ex}) are other photos or video frames there"
        elif self.why == "none":
            why = f"not one of its {self.of} frames is one of that drive's"
        else:
            why = (f"its new frames are of {', '.join(self.days)}, that drive's of {', '.join(self.held_days)} (those "
                   f"not counted again)")
        return (f"{self.drive}: not the drive {self.drive} merged into the registry on {when} ({why}): its "
                f"{self.frames} new frames merged as drive \"{self.as_name}\"{' as before' if self.again else ''} "
                f"(this run's own outputs keep the name {self.drive})")

    def as_dict(self) -> dict:
        return {"drive": self.drive, "as": self.as_name, "why": self.why, "held_merged_at": self.held_merged_at,
                "conflicts": len(self.conflicts), "days": self.days, "frames": self.frames, "of": self.of}


@dataclass
class MergeResult:
    new: list[str] = field(default_factory=list)
    seen_again: list[str] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: of ``unchanged``: sightings already stored at image level that now got their box (the same drive again,
    #: with another best image): no new sighting, but the registry changed
    refined: list[str] = field(default_factory=list)
    #: run candidate index (row label of ``cands``) -> registry id
    mapping: dict[Any, str] = field(default_factory=dict)
    #: this merge's id in ``runs``, ``observations`` and ``status_history`` (recorded only when ``changed``)
    run_id: str = ""
    #: the run's drives whose frames (some or all) the registry already held under another drive name
    copies: list[DriveCopy] = field(default_factory=list)
    #: frames of the run recorded in ``frames`` (those the registry did not hold yet)
    frames_recorded: int = 0
    #: frames the registry held without a position (recorded by a patrol of schema 3) that this run gave theirs
    #: (position, heading, time): from now on they pass the damages near them (``Store._place_frames``)
    frames_placed: int = 0
    #: the run's drives merged under another name: their folder name is the registry's name of another drive
    renamed: list[DriveRename] = field(default_factory=list)
    #: drive -> its frames recorded by this merge, for a drive known by name only until now (merged before frames
    #: were recorded; ``Store._name_only``): the run's frames that are its photos, under its first merge time
    backfilled: dict[str, int] = field(default_factory=dict)
    #: the run's drive (its own name, as in ``frames``) -> the registry damages its frames drove past after their
    #: last sighting without sighting them (``Store._passed_unseen``: the passes counted in ``n_unseen``), sorted;
    #: every drive of ``frames``, None without ``frames`` (nothing is known of where the run drove)
    passed_unseen_by_drive: dict[str, list[str]] | None = None
    #: registry id -> its ``n_unseen`` after this merge, of each damage in ``passed_unseen_by_drive``
    n_unseen: dict[str, int] = field(default_factory=dict)

    @property
    def passed_unseen(self) -> list[str] | None:
        """The damages the run drove past without a sighting: those of ``passed_unseen_by_drive`` that no drive of
        the run saw (its own damages are never among them: it saw them), sorted; None without frames."""
        if self.passed_unseen_by_drive is None:
            return None
        seen = set(self.mapping.values())
        return sorted({c for ids in self.passed_unseen_by_drive.values() for c in ids} - seen)

    @property
    def changed(self) -> bool:
        return bool(self.new or self.seen_again or self.reopened or self.refined or self.frames_recorded
                    or self.frames_placed)


@dataclass
class ImportReport:
    applied: list[str] = field(default_factory=list)  # registry ids whose status changed
    #: (line number, registry id, from, to) of each status change applied, the stored statuses
    changes: list[tuple[int, str, str, str]] = field(default_factory=list)
    noted: list[str] = field(default_factory=list)  # same status, but a new note / checker / issue type kept
    unchanged: list[str] = field(default_factory=list)  # rows naming the current status again, nothing new
    unmatched: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason), not applied
    #: (line number, what): rows still naming the status patrol had set when the list was exported (new, reopened)
    #: while the registry has moved on since (an older list imported after a newer one): the crew did not change
    #: the status, so it stays; a new note, checker or issue type on such a row is still taken ("noted")
    outdated: list[tuple[int, str]] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # line numbers with an empty status
    #: (line number, what): rows whose damage the registry changed after the list was exported (the row's
    #: ``status_changed_at``, 状態更新日時, is not the damage's) and whose crew wrote another status: not applied,
    #: the office decides (``patrol status``). ``what`` names the registry's changes since and everything the crew
    #: wrote; the crew's words are kept in the history (``source`` ``import-held:<file>``), the damage unchanged
    held: list[tuple[int, str]] = field(default_factory=list)
    #: (line number, what): rows applied although the registry changed the damage after the export, because the crew
    #: marked it repaired on a day after every such change (also in ``applied`` / ``changes``)
    newer: list[tuple[int, str]] = field(default_factory=list)
    #: (line number, what): rows of a damage the office merged into another (``patrol merge``): taken as that one's
    #: row (the crew's status, note, checker, issue type; classified like its own row: applied, held, outdated …)
    merged: list[tuple[int, str]] = field(default_factory=list)
    #: (line number, what): repairs dated before a sighting the registry already holds (the damage was seen after
    #: the repair: it did not hold, or the date is wrong): recorded and reopened at once (``RepairSeenAfter``); also
    #: a row naming that repair again (``again``: unchanged, still reopened)
    seen_after: list[tuple[int, str]] = field(default_factory=list)
    #: (line number, what): rows marking repaired, with a repair date, a damage the registry holds repaired on another
    #: day already (the office's ``patrol status``, another list): the registry's date kept, the crew's named
    #: (also counted as notes or unchanged)
    repair_date_kept: list[tuple[int, str]] = field(default_factory=list)
    #: what the file is: ``list`` (a repair list, csv or xlsx), ``ledger`` (the photo ledger, 写真台帳) or ``jobs list``
    #: (`patrol export --format jobs`, its rows expanded to their damages: ``jobs``)
    what: str = "list"
    #: a line number's name in the messages where it is not the file's row (``at``): a ledger's blocks,
    #: ``block 4 (R-000007)``, numbered by their first sheet row
    where: dict[int, str] = field(default_factory=dict)
    #: what the console should tell about the file as a whole (a ledger's blocks deleted: nothing imported of them)
    notes: list[str] = field(default_factory=list)
    #: a jobs list's (``what`` ``jobs list``): its row's line number -> the damage ids of that job (``candidate_ids``),
    #: each imported as a repair list's row numbered as its job's; None: not a jobs list
    jobs: dict[int, list[str]] | None = None

    def at(self, line: int) -> str:
        """A row as the messages name it: ``row 7`` of a list, ``block 4 (R-000007)`` of a ledger."""
        return self.where.get(line, f"row {line}")


@dataclass
class CrewTable:
    """A crew's file as ``import_verification`` reads it: ``rows``, the header first, as text; ``lines``: each data
    row's number in the messages (None: its row in the file, 2, 3, …); ``what``, ``where``, ``notes``: as
    ``ImportReport``'s; ``bad``: (line, why) of parts of the file that cannot be read as a row (a ledger's block
    edited out of shape), not applied, the rest read."""
    rows: list[list[str]]
    lines: list[int] | None = None
    what: str = "list"
    where: dict[int, str] = field(default_factory=dict)
    bad: list[tuple[int, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class RepairSeenAfter:
    """A repair recorded with a date before a sighting the registry already holds: reopened at once
    (``Store._set_status``), as a drive merged after the repair would have reopened it; or a repaired damage the
    office merged another into (``Store.merge_candidates``, ``merged``) that was seen after the repair: reopened by
    the merge, as that other's drive would have reopened it."""
    candidate_id: str
    repaired_at: str  # the repair date as the crew's messages show it: ``2026-11-25`` (a day) or ``2026-11-25 14:30``
    seen: str  # the latest sighting: ``2026-11-27 09:00``
    drive: str | None  # its drive
    again: bool = False  # that repair was recorded (and reopened) before: nothing changed
    merged: str | None = None  # the id merged into it (``patrol merge``) whose sighting reopened it
    registry: str = "REGISTRY"  # the registry's path as its commands to copy name it (``Store.path_word``)

    @property
    def note(self) -> str:
        """The history row's note: ``seen 2026-11-27 09:00 (toyama-2026-11-p2) after the repair of 2026-11-25``."""
        return f"seen {self.seen}{f' ({self.drive})' if self.drive else ''} after the repair of {self.repaired_at}"

    @property
    def message(self) -> str:
        """One line for ``patrol status`` / the import: what happened and what the office checks."""
        if self.merged:
            return (f"{self.candidate_id}: {self.note}: reopened (再発) by the merge of {self.merged}; check it on the "
                    f"road: if the repair did not hold, it stays reopened; if the repair date is wrong, patrol status "
                    f"{self.registry} {self.candidate_id} --set repaired --at <the right date>; if the merge is wrong, "
                    f"patrol merge {self.registry} {self.merged} --undo (repaired again)")
        did = "recorded before, still reopened" if self.again else "repair recorded, reopened"
        return (f"{self.candidate_id}: {self.note}: {did} (再発); check the repair date: if it is wrong, patrol status "
                f"{self.registry} {self.candidate_id} --set repaired --at <the right date>, or the crew's list again "
                f"with the right 補修日 (repaired_at); if the repair did not hold, it stays reopened")


def merge_max_apart_m(cfg=None) -> float:
    """The farthest apart two registry candidates ``patrol merge`` takes for one damage without ``--force``: 4 ×
    ``store.match_distance_m`` (a week's GPS offset that a run did not match is a few times that), at least 100 m."""
    d = float(getattr(getattr(cfg, "store", None), "match_distance_m", 25.0))
    return max(100.0, 4.0 * d)


@dataclass
class CandidateMerge:
    """What ``Store.merge_candidates`` did: ``candidate_id``'s sightings became ``into``'s."""
    candidate_id: str
    into: str
    cls: str  # candidate_id's class
    into_cls: str  # into's class (kept)
    into_name: str  # into's class as the crew reads it: ``D00 縦ひび割れ``
    status: str  # candidate_id's status (kept in its record; into keeps its own)
    into_status: str
    sightings: int  # candidate_id's sightings moved (image-level ones that into had already: dropped, counted)
    drives: int  # candidate_id's drives that into had no sighting of
    n_obs: int  # into's sightings now
    n_drives: int  # into's drives now
    at: str  # the time stamped (ISO 8601, the registry's clock)
    #: how far apart the two lay before the merge (m; along the road on one segment, else in the plane), None when
    #: either had no position
    apart_m: float | None = None
    #: into was repaired and candidate_id was seen after the repair: into reopened by the merge, as candidate_id's
    #: drive would have reopened it (the sighting, the repair date), else None
    reopened: RepairSeenAfter | None = None
    registry: str = "REGISTRY"  # the registry's path as its commands to copy name it (``Store.path_word``)

    @property
    def message(self) -> str:
        """``R-000031 merged into R-000012 (D00 縦ひび割れ): 3 sightings, 1 drive moved; R-000012 now 8 sightings over
        2 drives``."""
        apart = f", {self.apart_m:.0f} m apart" if self.apart_m is not None else ""
        return (f"{self.candidate_id} merged into {self.into} ({self.into_name}{apart}): "
                f"{plural(self.sightings, 'sighting')}, {plural(self.drives, 'drive')} moved; {self.into} now "
                f"{plural(self.n_obs, 'sighting')} over {plural(self.n_drives, 'drive')}")

    @property
    def notes(self) -> list[str]:
        """The lines the office should read with it: the two statuses (into reopened: why), classes that differ."""
        if self.reopened:
            out = [f"{self.candidate_id} was {status_label(self.status)}; {self.into} was "
                   f"{status_label(self.into_status)}, now {status_label('reopened')}", self.reopened.message]
        else:
            out = [f"{self.candidate_id} was {status_label(self.status)}; {self.into} keeps its status "
                   f"{status_label(self.into_status)}" + ("" if self.status == self.into_status else
                                                          f" (to change it: patrol status {self.registry} {self.into} "
                                                          "--set …)")]
        if self.cls != self.into_cls:
            out.append(f"classes differ: {self.candidate_id} was {self.cls}, {self.into} keeps its class "
                       f"{self.into_cls}; a later drive's {self.cls} sighting there is seen again as {self.into}")
        return out


@dataclass
class CandidateUnmerge:
    """What ``Store.unmerge_candidate`` did: ``candidate_id`` is its own damage again."""
    candidate_id: str
    into: str  # the damage it had been merged into
    final: str  # the damage its sightings came back from: ``into``, or the one ``into`` was merged into since
    name: str  # its class as the crew reads it: ``D00 縦ひび割れ``
    status: str  # its status (as its record kept it)
    final_status: str
    sightings: int  # its sightings now
    drives: int  # its drives now
    n_obs: int  # final's sightings now
    n_drives: int
    later: int  # final's sightings runs added after the merge (they stay final's)
    at: str
    #: the merge had reopened into (repaired, seen after the repair): what the undo did about it (``repaired`` again,
    #: or why it stays as it is), else None
    reopen: str | None = None
    #: into merged on since: the damages along that chain whose reopen by the merge below them the undo took back
    #: (their sighting after the repair was ``candidate_id``'s), one line each
    chain_reopens: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """``R-000031 is its own damage again (D00 縦ひび割れ, new (新規)): 3 sightings over 1 drive back from
        R-000012; R-000012 now 5 sightings over 1 drive``."""
        return (f"{self.candidate_id} is its own damage again ({self.name}, {status_label(self.status)}): "
                f"{plural(self.sightings, 'sighting')} over {plural(self.drives, 'drive')} back from {self.final}; "
                f"{self.final} now {plural(self.n_obs, 'sighting')} over {plural(self.n_drives, 'drive')}")

    @property
    def notes(self) -> list[str]:
        out = []
        if self.final != self.into:
            out.append(f"{self.into} was merged into {self.final} since: the sightings came back from {self.final}")
        if self.later:
            out.append(f"{plural(self.later, 'sighting')} that runs added to {self.final} after the merge stay "
                       f"{self.final}'s (a run matched {'them' if self.later != 1 else 'it'} to {self.final})")
        out.append(f"{self.candidate_id} has its status {status_label(self.status)} again and is listed by the next "
                   f"export (export the crew lists again)")
        if self.reopen:
            out.append(self.reopen)
        out += self.chain_reopens
        return out


@dataclass
class ImportUndo:
    """What ``Store.undo_import`` did: the latest import of ``file`` taken back."""
    file: str  # the file's name, as its history rows name it (``import:<file>``)
    imported: str  # when it was imported, as the messages show it: ``2026-11-28 10:12``
    at: str  # the undo's time stamped (ISO 8601, the registry's clock)
    #: (registry id, the status the import left, the status given back) of each damage given back, in the import's order
    back: list[tuple[str, str, str]] = field(default_factory=list)
    #: (registry id, what changed it since the import, in full, and in short: ``patrol status``) of each damage left
    #: as it is
    left: list[tuple[str, str, str]] = field(default_factory=list)
    registry: str = "REGISTRY"  # the registry's path as its commands to copy name it (``Store.path_word``)

    @property
    def message(self) -> str:
        """``import of 補修候補一覧.xlsx (2026-11-28 10:12) undone: 12 damages back, 2 left as changed since (R-000031 by
        patrol status, R-000040 by a drive merged (run …))``: the console's last line."""
        out = f"import of {self.file} ({self.imported}) undone: {plural(len(self.back), 'damage')} back"
        if self.left:
            named = ", ".join(f"{c} by {short}" for c, _, short in self.left[:3])
            out += f", {len(self.left)} left as changed since ({named}{' …' if len(self.left) > 3 else ''})"
        return out

    @property
    def notes(self) -> list[str]:
        """One line per kind of change taken back (``  scheduled -> new (新規): 10 (R-000003, …)``; a damage whose
        status the import kept: ``  confirmed (確認済み), note / checker back: 2 (…)``), as the import lists them."""
        groups: dict[tuple[str, str], list[str]] = {}
        for cid, was, to in self.back:
            groups.setdefault((was, to), []).append(cid)
        out = []
        for (was, to), cids in groups.items():
            shown = ", ".join(cids[:10]) + (f" … ({len(cids) - 10} more)" if len(cids) > 10 else "")
            what = f"{was} -> {status_label(to)}" if was != to else f"{status_label(to)}, note / checker back"
            out.append(f"  {what}: {len(cids)} ({shown})")
        return out

    @property
    def left_lines(self) -> list[str]:
        """One line per damage left as it is: what changed it since the import, and what to do."""
        return [f"{cid}: left as it is: changed since the import of {self.file}: {why}; to change it: patrol status "
                f"{self.registry} {cid} --set …" for cid, why, _ in self.left]


def _how(source: Any, run_id: Any = None) -> str:
    """What made a history row, as the messages name it (its ``source``): ``patrol status``, ``a drive merged (run
    p3)``, ``the import of w2.xlsx``, ``the undo of the import of w2.xlsx``, ``patrol merge of R-000031`` …"""
    src = str(source)
    for head, words in (("import:", "the import of {}"), ("import-held:", "the import of {} (held)"),
                        ("unimport:", "the undo of the import of {}"), ("merged-from:", "patrol merge of {}"),
                        ("merged-into:", "patrol merge into {}"), ("unmerged:", "patrol merge {} --undo"),
                        ("unmerged-from:", "patrol merge --undo (back from {})")):
        if src.startswith(head):
            return words.format(src[len(head):])
    return "patrol status" if src == "manual" else f"a drive merged (run {run_id})" if src == "merge" else src


def _how_who(source: Any, run_id: Any, who: Any) -> tuple[str, str | None]:
    """(``_how``, the ``who`` still worth saying) of a history row, for the messages naming a change: a drive's reopen
    stores ``who`` ``patrol (run <run_id>, inspector 田中)`` (``_run_who``), which would repeat the run after ``a
    drive merged (run <run_id>)``; it is said once, ``a drive merged (run <run_id>, inspector 田中)``."""
    how, w = _how(source, run_id), _s(who)
    if str(source) == "merge" and w and w.startswith(f"patrol (run {run_id}") and w.endswith(")"):
        return f"a drive merged ({w[len('patrol ('):]}", None
    return how, w


def _isnum(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(float(v))


def _f(v: Any) -> float | None:
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _s(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    s = str(v)
    return s if s != "" else None


def job_note(job: str | None, note: str | None) -> str | None:
    """The history's note of a change made as a repair job (``patrol status REGISTRY 工区-003 --set …``): the job's id
    (``工区-003``), before the office's note where one is given (``工区-003: 舗装業者A``); ``note`` as it is without a
    job. So ``patrol status REGISTRY R-000012`` (its history) says which job repaired the damage."""
    note = _s(note.strip() if isinstance(note, str) else note)
    if not job:
        return note
    return f"{job}: {note}" if note else job


def _t(iso: Any) -> float | None:
    s = _s(iso)
    if not s:
        return None
    try:
        return datetime.fromisoformat(s).timestamp()
    except ValueError:
        return None


_WHEN = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
                   r"\s*(Z|[+-]\d{2}:?\d{2})?")


#: the Japanese eras a date may be written in (和暦: ``令和8年1月5日``, Excel's ``R8.1.5``): year 1 of each
_ERAS = {"令和": 2019, "R": 2019, "平成": 1989, "H": 1989}
_ERA = re.compile(r"(令和|平成|[RH])\s*(元|\d{1,2})\s*(?=[年./-])", re.I)


def _western(text: str) -> str:
    """A date as Japanese Excel shows (and saves to CSV) a date cell, in Western digits and separators:
    ``2026年11月26日`` -> ``2026/11/26``, ``令和8年1月5日`` / ``R8.1.5`` -> ``2026/1/5``, ``14時30分`` -> ``14:30``;
    full-width digits as ASCII. Other text unchanged (but NFKC)."""
    t = unicodedata.normalize("NFKC", text).strip()
    m = _ERA.match(t)
    if m:
        era = m.group(1).upper() if len(m.group(1)) == 1 else m.group(1)
        t = f"{_ERAS[era] - 1 + (1 if m.group(2) == '元' else int(m.group(2)))}{t[m.end():]}"
    if any(c in t for c in "年月日時分秒"):
        t = " ".join(t.translate(JA_DATE_MARKS).split()).rstrip(":")
    return t


#: Excel's date serial as a CSV holds a date column formatted as number (``46352`` = 2026-11-26 in the 1900 date
#: system, ``46352.5`` its noon): five digits, taken only within these days (a workbook of the 1904 system, Excel
#: for Mac before 2011, saves serials 1,462 days less: not told apart)
SERIAL_DAYS = (date(2000, 1, 1), date(2099, 12, 31))
_SERIAL = re.compile(r"(\d{5})(?:\.(\d+))?")
_EXCEL_EPOCH = datetime(1899, 12, 30)  # serial 0 of the 1900 system past its phantom 1900-02-29 (serial 60)
#: a month and day without a year, as Japanese Excel shows a typed ``11/26`` (``11月26日``; in its CSV too)
_NO_YEAR = re.compile(r"(\d{1,2})/(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")


def _parse_when(text: str, today: date | None = None, earliest: date | None = None) -> date | datetime:
    """A crew's date or time as typed or as Excel saves it: ``2026/11/26``, ``2026-1-5``, ``2026/11/26 9:05``,
    Japanese (``2026年11月26日``, ``令和8年1月5日``, ``R8.11.26``, ``… 14時30分``), ISO 8601 with or without offset
    (``…T14:30:00+09:00``, ``…Z``), an Excel date serial (``46352``, ``46352.5``; :data:`SERIAL_DAYS`). A date is a
    ``date``.

    A month and day without a year (``11/26``, ``11月26日``, ``11/26 14:30``) is the latest such day not after
    ``today`` (the import's day on the registry's clock: ``1/5`` read on 2027-01-10 is 2027-01-05, ``12/28`` is
    2026-12-28), refused when that day is before ``earliest`` (the damage's first sighting: the crew cannot have
    checked it before patrol saw it; the year must be written) or when no ``today`` is given."""
    t = _western(text)
    bad = f"not a date or ISO 8601 time: {text[:40]!r}"
    m = _SERIAL.fullmatch(t)
    if m:
        day = _EXCEL_EPOCH + timedelta(days=int(m.group(1)))
        if not SERIAL_DAYS[0] <= day.date() <= SERIAL_DAYS[1]:
            raise ValueError(f"{bad} (as an Excel date serial {day.date()}, outside {SERIAL_DAYS[0].year}-"
                             f"{SERIAL_DAYS[1].year})")
        if not m.group(2) or not m.group(2).strip("0"):
            return day.date()
        return day + timedelta(seconds=round(float("0." + m.group(2)) * 86400))
    m = _NO_YEAR.fullmatch(t)
    if m:
        mo, d, hh, mm, ss = m.groups()
        try:
            date(2000, int(mo), int(d))  # (a leap year)
        except ValueError:
            raise ValueError(bad) from None
        if today is None:
            raise ValueError(f"{text[:40]!r} has no year: write the year (YYYY/{mo}/{d})")
        for y in range(today.year, today.year - 9, -1):  # (29 Feb: the latest leap year's)
            try:
                day = date(y, int(mo), int(d))
            except ValueError:  # 29 Feb of a common year
                continue
            if day <= today:
                break
        if earliest is not None and day < earliest:
            raise ValueError(f"{text[:40]!r} has no year: read as {day}, the latest such day not after the import "
                             f"({today}), it is before the damage was first seen ({earliest}): write the year")
        try:
            return day if hh is None else datetime.combine(day, time(int(hh), int(mm), int(ss or 0)))
        except ValueError:
            raise ValueError(bad) from None
    m = _WHEN.fullmatch(t)
    try:
        if m is None:
            return datetime.fromisoformat(t)
        y, mo, d, hh, mm, ss, frac, tz = m.groups()
        if hh is None:
            return date(int(y), int(mo), int(d))
        return datetime(int(y), int(mo), int(d), int(hh), int(mm), int(ss or 0),
                        int((frac or "0")[:6].ljust(6, "0")), tzinfo=zone_of(tz, None))
    except ValueError:
        raise ValueError(bad) from None


class FutureDateError(ValueError):
    """A change dated on a day after today (``parse_change_time``): refused apart from a date that cannot be read."""


def parse_change_time(text: str, now: datetime, earliest: date | None = None) -> date | datetime:
    """The date or time of a status change as typed: ``patrol status --at``, a crew list's 確認日 (``checked_at``),
    補修日 (``repaired_at``) or 状態更新日時 (``status_changed_at``). Read as :func:`_parse_when` reads it (``now``:
    the registry's clock, aware; a date without a year against its day, not before ``earliest``; ValueError where
    it cannot be read), and refused (``FutureDateError``) when it lies on a day after ``now``'s on that clock: a change cannot be dated in the future (a typed
    2062 for 2026, a wrong year). A day's slack: a date of today, or a time later today, is taken (a PC's clock or
    zone a few hours off); an offset time is compared on the registry's clock."""
    w = _parse_when(text, today=now.date(), earliest=earliest)
    day = w if not isinstance(w, datetime) else (
        w.astimezone(now.tzinfo) if w.tzinfo else w.replace(tzinfo=now.tzinfo)).date()
    if day > now.date():
        raise FutureDateError(f"{str(text).strip()!r} is after now ({now:%Y-%m-%d %H:%M}): a change cannot be dated in the "
                         "future")
    return w


def _drive_image(drive: str | None, image: str | None) -> str:
    """A sighting's image as the outputs name it, ``drive/name`` (two phones each have an IMG_0001.jpg); the bare
    name where the sighting has no one drive (``d1|d2``: a run listed the image without its drive) or no drive."""
    return image if not drive or "|" in drive or not image else f"{drive}/{image}"


def _listify(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        s = v.strip()
        if s.startswith("["):
            with contextlib.suppress(ValueError):
                return [str(x) for x in json.loads(s)]
        return [p for p in (x.strip() for x in s.replace(";", "|").split("|")) if p]
    if isinstance(v, float) and math.isnan(v):
        return []
    return [str(x) for x in v]


def _same_float(a: Any, b: Any) -> bool:
    """Two stored REALs (NULL / NaN alike)."""
    fa, fb = _f(a), _f(b)
    return fa == fb


def _local_xy(lat: np.ndarray, lon: np.ndarray, lat0: float) -> tuple[np.ndarray, np.ndarray]:
    """Equirectangular metres around ``lat0`` (good to < 0.5 % over a city)."""
    r = 6371008.8
    return np.radians(lon) * r * math.cos(math.radians(lat0)), np.radians(lat) * r


# ---------------------------------------------------------------------------------------------- store
class Store:
    """The registry file.  ``with Store(path) as st: st.merge(...)``.  Opening creates the file if absent."""

    def __init__(self, path: str | Path, timezone_name: str = "Asia/Tokyo", busy_timeout_s: float = BUSY_TIMEOUT_S):
        self.path = Path(path)
        self.tz = ZoneInfo(timezone_name)
        self.busy_timeout_s = float(busy_timeout_s)
        self._con: sqlite3.Connection | None = None
        #: the schema version the registry had before this Store's first write converted it (None: not converted)
        self.converted_from: int | None = None
        self._converting: int | None = None
        #: when a damage has grown (``growth``): the config's with ``for_config``
        self.growth_rule = GrowthRule()
        self._open()

    @property
    def path_word(self) -> str:
        """The registry's path as a message's command to copy names it: as the user gave it, quoted where a shell
        needs it (``'my registry.gpkg'``: ``errors.shell_word``)."""
        return shell_word(self.path)

    @classmethod
    def for_config(cls, path: str | Path, cfg) -> "Store":
        st = cls(path, timezone_name=cfg.timezone, busy_timeout_s=cfg.store.busy_timeout_s)
        st.growth_rule = GrowthRule.of(cfg)
        return st

    def _now(self) -> datetime:
        """Now on the registry's clock (:func:`detector.config.now`, the one clock a test pins)."""
        from .config import now

        return now(self.tz)

    # ---- lifecycle
    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    @property
    def con(self) -> sqlite3.Connection:
        if self._con is None:
            raise StoreError("store is closed", self.path)
        return self._con

    def _open(self) -> None:
        p = self.path
        if p.is_dir():
            raise StoreError("is a folder, expected a GeoPackage file", p)
        if p.exists() and p.stat().st_size > 0:
            try:
                with open(p, "rb") as fh:
                    head = fh.read(16)
            except OSError as e:
                raise StoreError(f"cannot read: {e.strerror or e}", p) from None
            if head != b"SQLite format 3\x00":
                raise StoreError("not a GeoPackage/SQLite file", p)
        else:
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create folder: {e.strerror or e}", p) from None
        try:
            con = sqlite3.connect(str(p), timeout=self.busy_timeout_s, isolation_level=None)
            con.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            con.execute("PRAGMA foreign_keys = OFF")
            for name in _GEOM_FUNCTIONS:  # what the spatial index triggers call (GDAL has them, stdlib sqlite not)
                con.create_function(name, 1, _gpkg_geom_function(name), deterministic=True)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open: {e}", p) from None
        self._con = con
        try:
            tables = self._tables()
            if "candidates" not in tables:
                if tables - {"sqlite_sequence"}:
                    kind = "a GeoPackage" if "gpkg_contents" in tables else "an SQLite database"
                    raise StoreError(f"{kind} that is not a patrol registry (no candidates table)", p)
                # only possible before the first table: pages freed later (a crop replaced by a better one) can
                # then be handed back to the file system (see _reclaim)
                con.execute("PRAGMA auto_vacuum = INCREMENTAL")
                self._create()
                tables = self._tables()
            missing = _REQUIRED_TABLES - tables
            if missing:
                raise StoreError(f"not a patrol registry: missing table(s) {', '.join(sorted(missing))}", p)
            row = con.execute("SELECT value FROM patrol_meta WHERE key='schema_version'").fetchone()
            if row is None or int(row[0]) > SCHEMA_VERSION:
                raise StoreError(f"unsupported registry schema version {row[0] if row else None} (this patrol "
                                 f"{_version()} writes version {SCHEMA_VERSION}: a newer patrol made it): update "
                                 f"patrol on this PC to the version the other PCs writing this registry run", p)
        except sqlite3.DatabaseError as e:
            self.close()
            raise StoreError(f"not a usable GeoPackage/SQLite file: {e}", p) from None
        except StoreError:
            self.close()
            raise

    def _tables(self) -> set[str]:
        return {r[0] for r in self.con.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def _create(self) -> None:
        con = self.con
        with self._txn():
            if "candidates" in self._tables():  # another process created it while we waited
                return
            con.execute(f"PRAGMA application_id = {GPKG_APPLICATION_ID}")
            con.execute(f"PRAGMA user_version = {GPKG_USER_VERSION}")
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    con.execute(stmt)
            for stmt in _INDEX_SQL:
                con.execute(stmt)
            con.executemany("INSERT INTO gpkg_spatial_ref_sys VALUES (?,?,?,?,?,?)", _SRS_ROWS)
            con.executemany(
                "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) VALUES (?,?,?,?,?)",
                _CONTENTS)
            con.execute("INSERT INTO gpkg_geometry_columns VALUES ('candidates','geom','POINT',?,0,0)", (SRS_ID,))
            for stmt in _FRAMES_SQL + [_FRAMES_POS_INDEX_SQL] + _PASSES_SQL + _MERGES_SQL:
                con.execute(stmt)
            con.executemany("INSERT INTO patrol_meta VALUES (?,?)",
                            [("schema_version", str(SCHEMA_VERSION)), ("last_number", "0"), ("time_form", TIME_FORM)])

    @contextlib.contextmanager
    def _txn(self):
        con = self.con
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise StoreError(f"cannot lock the registry: {e}", self.path) from None
        self._touched: set[str] = set()
        # registry id -> {obs_id: a new sighting's crop}: written by _recompute only where it is the best crop
        self._pending_crops: dict[str, dict[int, bytes]] = {}
        migrated = False
        self._converting = None
        try:
            self._ensure_indexes()  # first: the migration reads observations per candidate
            migrated = self._migrate()
            self._normalise_times()
            yield con
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            raise
        else:
            try:
                self._ensure_rtree()
                self._ensure_styles()
                self._update_contents()
                con.execute("COMMIT")
            except sqlite3.Error as e:
                with contextlib.suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
                raise StoreError(f"cannot commit: {e}", self.path) from None
            if self._converting is not None:
                self.converted_from = self._converting
            self._reclaim(migrated)

    def _migrate(self) -> bool:
        """Inside a write transaction: bring a registry of an older schema to ``SCHEMA_VERSION``; True if it freed
        space worth compacting the file for (1 -> 2).

        1 -> 2: schema 1 kept the best crop twice, in the candidate row and in its sighting's row: the sighting's
        copy goes (the candidate's stays, ``crop_obs_id`` names its sighting), with the partial index that found
        it, and two indexes the others cover; ``images`` become ``drive/name`` as in a run's outputs (two phones each
        have an IMG_0001.jpg).

        2 -> 3: the (empty) tables ``drives`` and ``frames``: the drives merged before are known by their names only
        (their files were not read then), those merged from now on also by their frames' content.

        3 -> 4: ``frames`` gets lat, lon, heading, t (NULL for the frames recorded before: they pass no damage until their drive is merged again, ``_place_frames``),
        ``observations`` the heading of the sighting's frame (NULL before), ``candidates`` n_passes, n_unseen,
        last_passed (ALTER TABLE: appended after the crop), and the table ``passes``, filled for every damage from
        what is known: the drives that sighted it.

        4 -> 5: ``candidates`` gets merged_into, merged_at (NULL: no damage was merged into another before), and the
        (empty) table ``merges``; ``frames`` and ``passes`` get ``look`` (NULL: the frames recorded before were not
        measured, they count as looks)."""
        con = self.con
        row = con.execute("SELECT value FROM patrol_meta WHERE key='schema_version'").fetchone() if (
            "patrol_meta" in self._tables()) else None
        if row is None or int(row[0]) >= SCHEMA_VERSION:  # (none: the registry is being created)
            if row is not None and int(row[0]) == SCHEMA_VERSION:  # (made by a build of 5 before the looks)
                self._add_columns("frames", _LOOK_COLUMNS)
                self._add_columns("passes", _LOOK_COLUMNS)
            return False
        version = int(row[0])
        self._converting = version
        if version < 2:
            self._migrate_1_2()
        for stmt in _FRAMES_SQL:
            con.execute(stmt)
        self._add_columns("frames", {**_FRAME_POS_COLUMNS, **_LOOK_COLUMNS})
        self._add_columns("observations", {"heading": "REAL"})
        self._add_columns("candidates", {k: _CAND_SQL_TYPES[k] for k in PASS_COLUMNS + MERGED_COLUMNS})
        for stmt in [_FRAMES_POS_INDEX_SQL] + _PASSES_SQL + _MERGES_SQL:
            con.execute(stmt)
        self._add_columns("passes", _LOOK_COLUMNS)
        con.execute("UPDATE patrol_meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
        self._touch("patrol_meta", "drives", "frames")
        if version < 4:  # every damage's passes as far as known: its sighting drives (no frame has a position yet)
            self._update_passes([c for (c,) in con.execute("SELECT candidate_id FROM candidates ORDER BY fid")])
        return version < 2

    def conversion_notice(self) -> str | None:
        """One line for the console and summary.json's warnings when this Store converted the registry to
        SCHEMA_VERSION (the first write of a new release): older releases now refuse it, so every PC writing it must
        be updated. None when it did not."""
        if self.converted_from is None:
            return None
        return (f"{self.path.name}: registry converted from schema {self.converted_from} to {SCHEMA_VERSION} by "
                f"patrol {_version()}: patrol before {SCHEMA_SINCE} now refuses it (exit 6, 'unsupported registry "
                f"schema version {SCHEMA_VERSION}'): update patrol on every PC that writes this registry")

    def _add_columns(self, table: str, cols: dict[str, str]) -> None:
        """Inside a write transaction: ALTER TABLE ``table`` ADD the ``cols`` it lacks."""
        have = {r[1] for r in self.con.execute(f'PRAGMA table_info("{table}")')}
        for c, typ in cols.items():
            if c not in have:
                self.con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{c}" {typ}')

    def _migrate_1_2(self) -> None:
        """See ``_migrate``."""
        con = self.con
        if "crop_obs_id" not in {r[1] for r in con.execute('PRAGMA table_info("candidates")')}:
            con.execute('ALTER TABLE "candidates" ADD COLUMN "crop_obs_id" INTEGER')
        if "crop_jpeg" in {r[1] for r in con.execute('PRAGMA table_info("observations")')}:
            con.execute(
                "UPDATE candidates SET crop_obs_id = (SELECT obs_id FROM observations o WHERE o.candidate_id = "
                f"candidates.candidate_id AND o.crop_jpeg IS NOT NULL ORDER BY {_BEST_ORDER} LIMIT 1) "
                "WHERE crop_jpeg IS NOT NULL")
            con.execute("UPDATE observations SET crop_jpeg = NULL WHERE crop_jpeg IS NOT NULL")
        # indexes no query needs any more: the crops' one, and two the other (candidate_id, …) indexes cover
        # (images are read as drive/name: observations_cand_drive)
        for name in ("observations_cand_crop", "observations_cand_image", "observations_cand"):
            con.execute(f"DROP INDEX IF EXISTS {name}")
        rows = con.execute("SELECT candidate_id, images FROM candidates WHERE n_obs > 0").fetchall()
        changed = [(v, rid) for rid, old in rows if (v := self._images_json(rid)) != old]
        con.executemany("UPDATE candidates SET images=? WHERE candidate_id=?", changed)
        if changed:
            self._touch("candidates")
        self._touch("observations")

    def _reclaim(self, migrated: bool) -> None:
        """After a commit: hand free pages back to the file system when they are many (>= 1 MB and a quarter of the
        file; fewer are reused by the next merges). A registry in incremental auto-vacuum mode (made since schema 2,
        or migrated to it) frees them in place (``PRAGMA incremental_vacuum``: moves pages, no copy of the file).
        A registry made before is rewritten once by ``VACUUM`` (a copy of the file: about a second per 50 MB) into
        that mode, right after its migration (which frees its second copy of every crop) or when a quarter of it
        lies free. Best effort: a registry with free pages is a valid one; a failure (disk full, another process
        reading) leaves it for the next write."""
        con = self.con
        try:
            incremental = con.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
            free = con.execute("PRAGMA freelist_count").fetchone()[0]
            pages = con.execute("PRAGMA page_count").fetchone()[0]
            if not incremental and (migrated or (free >= 256 and free * 4 >= pages)):
                con.executescript("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")
            elif incremental and free >= 256 and free * 4 >= pages:
                # executescript: one execute() of the pragma frees one page only (it steps the statement once)
                con.executescript("PRAGMA incremental_vacuum;")
        except sqlite3.Error:
            pass

    def _touch(self, *tables: str) -> None:
        """Inside a write transaction: these tables' content changed (``gpkg_contents`` says so on commit)."""
        self._touched.update(tables)

    def _update_contents(self) -> None:
        """``gpkg_contents`` of the tables changed in this transaction: ``last_change`` (UTC, as the GeoPackage spec
        has it) and the candidates layer's extent (what QGIS zooms to). A transaction that changed nothing leaves it."""
        if not self._touched:
            return
        self.con.execute(
            f"UPDATE gpkg_contents SET last_change=strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE table_name IN "
            f"({','.join('?' * len(self._touched))})", sorted(self._touched))
        if "candidates" in self._touched:
            self.con.execute(
                "UPDATE gpkg_contents SET (min_x, min_y, max_x, max_y) = (SELECT MIN(lon), MIN(lat), MAX(lon), MAX(lat) "
                "FROM candidates WHERE geom IS NOT NULL) WHERE table_name='candidates'")

    def _ensure_indexes(self) -> None:
        """Inside a write transaction: add the observation indexes and ``frames_did`` to a registry that lacks them
        (made before them)."""
        con = self.con
        have = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='observations'")}
        if set(_INDEX_NAMES) - have and "observations" in self._tables():
            for stmt in _INDEX_SQL:
                con.execute(stmt)
        if "frames" in self._tables() and not con.execute(
                "SELECT 1 FROM sqlite_master WHERE type='index' AND name='frames_did'").fetchone():
            con.execute(_FRAMES_INDEX_SQL)  # (a schema-3 registry made before the index)

    def _ensure_rtree(self) -> None:
        """Inside a write transaction: add the spatial index to a registry that has none (new, or made before it)."""
        con = self.con
        if con.execute("SELECT 1 FROM sqlite_master WHERE name=?", (_RTREE,)).fetchone() or "candidates" not in self._tables():
            return
        con.execute("SAVEPOINT rtree")
        try:
            for stmt in _RTREE_SQL:
                con.execute(stmt)
        except sqlite3.OperationalError as e:
            con.execute("ROLLBACK TO rtree")
            con.execute("RELEASE rtree")
            if "no such module" in str(e):  # an SQLite built without R*Tree: the registry works without the index
                return
            raise
        con.execute("RELEASE rtree")

    def _ensure_styles(self) -> None:
        """Inside a write transaction: the registry's QGIS styles of ``candidates`` (``qgisstyle.registry``: by status,
        the default, and by class) in ``layer_styles`` where it lacks one, by name: written as the registry is
        created, and by the first write of this patrol to a registry made before (no schema version: an older patrol
        opens it as before, its required tables there; GDAL and QGIS read the table as the one QGIS makes). A row there
        is never changed (an office's own style, saved from QGIS, its default too, stays as it was); a style of ours
        deleted comes back with the next write. Best effort: a table QGIS's style cannot be added to (another tool's
        ``layer_styles`` of other columns) leaves the registry's write as it is."""
        from . import qgisstyle

        con = self.con
        if "candidates" not in self._tables():
            return
        con.execute("SAVEPOINT styles")
        try:
            added = qgisstyle.add_missing(con, qgisstyle.REGISTRY_STYLES, lambda: qgisstyle.registry(self._class_names()))
        except sqlite3.Error:
            con.execute("ROLLBACK TO styles")
            added = []
        con.execute("RELEASE styles")
        if added:
            self._touch(qgisstyle.TABLE)

    def _class_names(self) -> dict[str, tuple[str, str]]:
        """Each class's names (日本語, English) as the registry's damages carry them, else the default config's."""
        from .config import _default_classes

        names = {k: (c.name_ja, c.name_en) for k, c in _default_classes().items()}
        for cls, ja, en in self.con.execute("SELECT class, MAX(class_name_ja), MAX(class_name) FROM candidates "
                                            "WHERE class_name_ja IS NOT NULL AND class_name IS NOT NULL GROUP BY class"):
            names[str(cls)] = (str(ja), str(en))
        return names

    # ---- time helpers
    def _when(self, when: Any, now: datetime | None = None, earliest: date | None = None) -> tuple[str, float]:
        """(ISO string, unix seconds) of a user-supplied time (a crew's ``checked_at``, ``patrol status``'s now),
        in the registry's one form (:data:`TIME_FORM`): ``2026-11-26T14:30:00+09:00``, to the second, on the
        registry's clock (a time with another offset converted to it; one without, taken as on it). A date (no time
        of day: ``2026/11/26``, ``2026-1-5``; or midnight, as Excel gives a date cell, ``2026/11/26 0:00`` in its CSV)
        is that local day's 00:00 and, as unix seconds, the end of that day (a damage seen again that day is not seen
        after its repair): a CSV's date and a workbook's date cell store the same.

        ``now``: the time of the change (default: the clock), what an empty ``when`` is and what a date without a
        year is read against (:func:`_parse_when`, with ``earliest``, the damage's first sighting's day)."""
        now = (now or self._now()).astimezone(self.tz)
        if when is None or (isinstance(when, str) and not when.strip()):
            dt = now.replace(microsecond=0)
            return dt.isoformat(), dt.timestamp()
        if isinstance(when, str):
            when = _parse_when(when, today=now.date(), earliest=earliest)
        if isinstance(when, datetime):
            if when.time() == time(0) and (when.tzinfo is None or when.utcoffset() == when.replace(
                    tzinfo=self.tz).utcoffset()):  # midnight on the registry's clock: a date, as Excel's date cell
                when = when.date()
            else:
                dt = (when if when.tzinfo else when.replace(tzinfo=self.tz)).astimezone(self.tz).replace(microsecond=0)
                return dt.isoformat(), dt.timestamp()
        if isinstance(when, date):
            start = datetime.combine(when, time(0), tzinfo=self.tz)
            end = datetime.combine(when + timedelta(days=1), time(0), tzinfo=self.tz)
            return start.isoformat(), end.timestamp()
        raise ValueError(f"not a date: {when!r}")

    def _normalise_times(self) -> None:
        """Inside a write transaction, once per registry (``patrol_meta`` ``time_form``): the status times stored as
        a bare date (``2026-11-26``: a crew's CSV date before :data:`TIME_FORM`) rewritten in it, as that local day's
        00:00 (their unix seconds, ``repaired_t``, already were the end of that day), so they sort and compare with
        the others. Read as they are before."""
        con = self.con
        if "patrol_meta" not in self._tables() or con.execute(
                "SELECT 1 FROM patrol_meta WHERE key='time_form'").fetchone():
            return
        cols = [("candidates", "status_changed_at"), ("candidates", "repaired_at"), ("status_history", "at")]
        for table, col in cols:
            bare = [v for (v,) in con.execute(
                f'SELECT DISTINCT "{col}" FROM "{table}" WHERE length("{col}") = 10 AND "{col}" GLOB '
                "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'")]
            fixed = {}
            for v in bare:
                with contextlib.suppress(ValueError):
                    fixed[v] = datetime.combine(date.fromisoformat(v), time(0), tzinfo=self.tz).isoformat()
            if fixed:
                # one pass over the table (no index on these columns); an UPDATE per date scanned it once a date,
                # holding the write lock: 730 dates x 2,480 damages 5.3 s -> 0.33 s (bench_registry.py --weeks 60
                # --time-form 730), growing with damages x dates
                con.execute(f'UPDATE "{table}" SET "{col}" = json_extract(?1, \'$."\' || "{col}" || \'"\') '
                            f'WHERE length("{col}") = 10 AND json_extract(?1, \'$."\' || "{col}" || \'"\') '
                            "IS NOT NULL", (json.dumps(fixed),))
                self._touch(table)
        con.execute("INSERT INTO patrol_meta VALUES ('time_form', ?)", (TIME_FORM,))

    # ------------------------------------------------------------------------------------------ merge
    def merge(self, cands: pd.DataFrame, run_info: dict | None = None, cfg=None,
              frames: Iterable[tuple[str, str, int]] | None = None) -> MergeResult:
        """Fold one run's Candidates into the registry in ONE transaction (see module doc).

        ``frames``: ``(drive, image, frame_key)`` of the run's frames (``frames.frame_keys``: every ok frame, not
        only those with a hit), in the run's order. A frame whose key the registry already holds is that frame: its
        sightings are stored under the drive and name it was first merged as (a drive copied under another folder
        name, or last week's photos in this week's folder, count once), and the run's drives that held such frames
        are listed in ``MergeResult.copies``; the frames not held yet are recorded. Without ``frames`` (``patrol
        locate`` of detections without their frames) sightings are known by drive and name only.

        Optional columns of ``cands``: ``crop_jpeg`` (bytes, the crop of the best image) and
        ``observations`` (list of dicts with drive, image, x1, y1, x2, y2, confidence, time[, width, height]):
        every detection of the candidate; without it the best box plus image-level sightings are stored.
        ``run_info``: ``run_id`` and anything else JSON-serialisable (kept in ``runs.info``). Without a ``run_id``
        the merge names itself ``<merge time>-<label>`` (``20261127T004612-week48``; ``label``: e.g. the run's
        output folder name), made unique in ``runs``; it is stored only when the merge changes the registry.
        """
        run_info = dict(run_info or {})
        run_id = _s(run_info.get("run_id"))
        store_spec = getattr(cfg, "store", None)
        dist_m = float(store_spec.match_distance_m) if store_spec is not None else 25.0
        absorb = bool(store_spec.absorb_fragments) if store_spec is not None else True
        cls_names = {}
        if cfg is not None:
            cls_names = {k: (v.name_en, v.name_ja) for k, v in cfg.classes.items()}
        try:
            rows = _run_rows(cands)
        except StoreError as e:
            raise StoreError(e.reason, self.path, e.field) from None
        frames = list(frames or ())
        pass_r, tol = _pass_rules(cfg)
        # a frame's position, heading and time by key (recorded with it), the heading by (drive, name) (its sightings')
        # and its look ("" good or not measured: NULL; else why it could not show the road: no unseen pass)
        fpos = {int(f[2]): (*(_f(v) for v in (f[4:7] if len(f) > 6 else (None,) * 3)),
                            self._epoch(f[3]) if len(f) > 3 else None, (_s(f[7]) or None) if len(f) > 7 else None)
                for f in frames}
        heads = {(f[0], f[1]): _f(f[6]) for f in frames if len(f) > 6}
        for r in rows:
            for o in r["obs"]:
                o["heading"] = heads.get(o["key"][:2])
        res = MergeResult()
        with self._txn() as con:
            self._test_hook()
            new_frames, unplaced = self._known_frames(frames, rows, res) if frames else ([], [])
            # what matching needs, nothing behind the crop (status and repair time: below, of those seen again)
            reg = self._match_table()
            match = self._match(rows, reg, dist_m, absorb)
            merged_at = self._now().isoformat(timespec="seconds")  # the municipality's clock
            run_id = res.run_id = run_id or self._new_run_id(merged_at, _s(run_info.get("label")))
            last = int(con.execute("SELECT value FROM patrol_meta WHERE key='last_number'").fetchone()[0])
            creator = _run_who(run_id, run_info, cfg)
            touched: dict[str, bool] = {}  # registry id -> got new observations
            new_obs_t: dict[str, float] = {}
            for i, r in enumerate(rows):
                rid = match.get(i)
                created = False
                if rid is None:
                    last += 1
                    rid = f"R-{last:06d}"
                    created = True
                    names = cls_names.get(r["class"], (r.get("class_name"), r.get("class_name_ja")))
                    con.execute(
                        "INSERT INTO candidates (candidate_id, class, class_name, class_name_ja, status, "
                        "status_changed_at, created_run, n_obs) VALUES (?,?,?,?,?,?,?,0)",
                        (rid, r["class"], _s(names[0]), _s(names[1]), "new", merged_at, run_id))
                    con.execute(  # who: the run that found it, as the rows patrol writes itself (_run_who)
                        "INSERT INTO status_history (candidate_id, at, from_status, to_status, who, source, run_id, "
                        "note) VALUES (?,?,NULL,'new',?,'merge',?,?)",
                        (rid, merged_at, creator, run_id, r.get("candidate_id_run")))
                res.mapping[r["index"]] = rid
                n_ins, n_boxed, tmax = self._insert_observations(rid, r, run_id)
                if created or n_boxed:
                    touched[rid] = True
                if n_boxed and rid not in res.refined:
                    res.refined.append(rid)
                if n_ins:
                    touched[rid] = True
                    if tmax is not None:
                        new_obs_t[rid] = max(new_obs_t.get(rid, -math.inf), tmax)
                if created:
                    res.new.append(rid)
                elif n_ins:
                    if rid not in res.seen_again:
                        res.seen_again.append(rid)
                    if rid in res.unchanged:
                        res.unchanged.remove(rid)
                elif rid not in res.unchanged and rid not in res.seen_again and rid not in res.new:
                    res.unchanged.append(rid)
            con.execute("UPDATE patrol_meta SET value=? WHERE key='last_number'", (str(last),))
            # reopen: repaired and seen again after the repair date (statuses as they were before this merge)
            st = {c: (s, rt) for c, s, rt in con.execute(
                "SELECT candidate_id, status, repaired_t FROM candidates WHERE status='repaired' AND candidate_id IN "
                "(SELECT value FROM json_each(?))", (json.dumps(res.seen_again),))}
            for rid in list(res.seen_again):
                status, rep_t = st.get(rid, (None, None))
                t = new_obs_t.get(rid)
                if status == "repaired" and t is not None and rep_t is not None and np.isfinite(rep_t) and t > rep_t:
                    # the crew's note (what was repaired, how) stays; the history row says why it reopened
                    self._reopen(rid, merged_at, "seen again after repair", "merge", run_id,
                                 who=_run_who(run_id, run_info, cfg))
                    res.seen_again.remove(rid)
                    res.reopened.append(rid)
            for rid in touched:
                self._recompute(rid)
            if new_frames:
                self._record_frames(new_frames, fpos, merged_at, run_id, first=self._first_merges(res.backfilled))
                res.frames_recorded = len(new_frames)
            placed = self._place_frames(unplaced, fpos)
            res.frames_placed = len(placed)
            # passes: of the damages whose sightings changed and of those the new frames drove past. A damage made
            # or moved, or seen from a new direction, against every frame held; the others keep their passes and
            # take the new frames': the same whichever run came first
            moved = self._moved(list(touched), reg, run_id, tol)
            newf = self._new_frame_table([k for k, _, _ in new_frames] + placed, fpos)
            near = self._near_frames(newf, pass_r)
            self._update_passes(sorted(moved), pass_r, tol)
            self._update_passes(sorted((set(touched) | near) - moved), pass_r, tol, newf=newf,
                                drives={o["key"][0] for r in rows for o in r["obs"]})
            if frames:
                res.passed_unseen_by_drive, res.n_unseen = self._passed_unseen(frames)
            if res.changed:
                damages = res.new or res.seen_again or res.reopened or res.refined  # (else: only frames recorded)
                self._touch("runs", *(("candidates", "observations") if damages else ()),
                            *(("status_history",) if res.new or res.reopened else ()),
                            *(("patrol_meta",) if res.new else ()))
                info = {k: v for k, v in run_info.items()}
                con.execute(
                    "INSERT INTO runs (run_id, merged_at, n_input, n_new, n_seen_again, n_reopened, n_unchanged, info) "
                    "VALUES (?,?,?,?,?,?,?,?)",
                    (run_id, merged_at, len(rows), len(res.new), len(res.seen_again), len(res.reopened),
                     len(res.unchanged), json.dumps(info, default=str, ensure_ascii=False, sort_keys=True)))
        return res

    def _known_frames(self, frames: list[tuple], rows: list[dict], res: MergeResult) -> tuple[list, list[int]]:
        """Inside merge's transaction: the run's frames the registry (or an earlier drive of this run) already holds
        by content. Their sightings in ``rows`` are re-keyed to the drive and name held (so they are the stored
        sightings, not new ones), ``res.copies`` says which drives held them. A run's drive whose folder name the
        registry holds for another drive (``_drive_names``) has its other sightings re-keyed to the name it is
        merged as (``res.renamed``). Returns the frames to record ``(key, drive, image)`` and the keys of the held
        ones without a position (recorded before schema 4: ``_place_frames``)."""
        frames = [(d, im, int(k), f[3] if len(f) > 3 else None) for f in frames for d, im, k in (f[:3],)]
        held: dict[int, tuple[str, str, str]] = {}
        unplaced: list[int] = []  # held frames without a position (recorded before schema 4)
        for k, d, im, at, nopos in self.con.execute(
                "SELECT f.frame_key, d.drive, f.image, d.merged_at, f.lat IS NULL OR f.lon IS NULL FROM json_each(?) j "
                "JOIN frames f ON f.frame_key = j.value JOIN drives d ON d.did = f.did",
                (json.dumps(sorted({f[2] for f in frames})),)):
            held[k] = (d, im, at)
            if nopos:
                unplaced.append(int(k))
        legacy, backfill = self._name_only(frames, held, res)
        first: dict[int, tuple[str, str]] = {}
        total: dict[str, int] = {}
        links = []  # (drive, image, held drive, held image, its merge time or None: a frame of this run)
        new = []
        for d, im, k, t in frames:
            total[d] = total.get(d, 0) + 1
            if k in held:
                links.append((d, im, *held[k]))
            elif k in first:
                links.append((d, im, *first[k], None))
            else:
                first[k] = (d, im)
                new.append((k, d, im, t))
        renames = self._drive_names(frames, held, new, res, legacy)
        to = {r.drive: r.as_name for r in renames}
        alias: dict[tuple[str, str], tuple[str, str]] = {}
        same: dict[tuple[str, str, str | None], int] = {}  # (drive, same_as, merged_at) -> frames
        for d, im, d0, im0, at in links:
            # held: the drive and name held (also where that is its own: not renamed below); a frame of this run:
            # as its drive is merged
            alias[(d, im)] = (to.get(d0, d0) if at is None else d0, im0)
            if d0 != d and not (d in to and d0 == to[d]):  # (photos of the name it is merged as: its rename says so)
                same[(d, d0, at)] = same.get((d, d0, at), 0) + 1
        res.copies = [DriveCopy(d, d0, at, n, total[d]) for (d, d0, at), n in same.items()]
        res.renamed = renames
        if alias or to:
            for r in rows:
                for o in r["obs"]:
                    got = alias.get(o["key"][:2])
                    if got is None and to:  # a new frame (or one without a key) of a drive merged under another name
                        d = o["key"][0]
                        got = ("|".join(sorted(to.get(x, x) for x in d.split("|"))), o["key"][1])
                    if got is not None and got != o["key"][:2]:
                        o["key"] = (*got, *o["key"][2:])
                        o["drive"] = got[0]
        return backfill + [(k, to.get(d, d), im) for k, d, im, _ in new], unplaced

    def _name_only(self, frames: list[tuple], held: dict, res: MergeResult) -> tuple[dict, list]:
        """Inside merge's transaction: the run's drives whose folder name the registry holds for a drive known by name
        only (merged before frames were recorded: a registry of schema 2, or ``patrol locate`` without the frames),
        told by that drive's stored sightings: their file names and (boxed sightings) their frames' times.

        A run frame with a stored sighting's file name and its frame time (to the second) is that drive's photo; so
        are the run drive's frames of the same local days as those or within :data:`CONTINUE_S` of one, and its
        undated frames. They are recorded under the held name (the *backfill*: added to ``held``, stored with the
        drive's first merge time, ``res.backfilled``), so a later copy of the drive is known. The run drive's other
        frames are new frames of a folder name held for another drive (``_drive_names``): a stored sighting's name
        at another time (``IMG_0001.jpg`` of last week's card), not one sighting's name, or other days. Where
        neither side has a time, a stored sighting's name among the run's frames makes it the drive (nothing tells
        them apart).

        Returns ({held name: (its first merge time, that merge's run id, the names of the run drive's frames that
        are its sightings' names at other times)}, [(key, drive, image)] to record)."""
        con = self.con
        runs = sorted({d for d, _, k, _ in frames if k not in held})
        if not runs:
            return {}, []
        names = [d for (d,) in con.execute(
            "SELECT DISTINCT drive FROM observations WHERE drive IN (SELECT value FROM json_each(?)) "
            "AND drive NOT IN (SELECT drive FROM drives)", (json.dumps(runs),))]
        if not names:
            return {}, []
        first = self._first_merges(names)
        legacy: dict[str, tuple[str | None, str | None, set[str]]] = {}
        backfill = []
        for d in names:
            stored: dict[str, list[float]] = {}
            for im, x1, ft in con.execute("SELECT image, x1, first_t FROM observations WHERE drive=?", (d,)):
                ts = stored.setdefault(im, [])
                if x1 >= 0 and ft is not None and math.isfinite(ft):  # (image-level sightings: the run's times)
                    ts.append(float(ft))
            mine = [(k, im, t) for dd, im, k, t in frames if dd == d and k not in held]
            agree, clash, by_name = [], set(), False
            for k, im, t in mine:
                ts = stored.get(im)
                if ts is None:
                    continue
                e = self._epoch(t)
                if e is None or not ts:
                    by_name = True
                elif any(abs(e - x) <= 1.0 for x in ts):
                    agree.append((im, t))
                else:
                    clash.add(im)
            at, rid = first.get(d, (self._now().isoformat(timespec="seconds"), None))
            legacy[d] = (at, rid, clash)
            if not agree and not (by_name and not clash):
                continue
            days = {x for _, t in agree if (x := self._day(t))}
            ours = []
            for k, im, t in mine:
                if im in clash:
                    continue
                day = self._day(t)
                if day is None or day in days or (agree and self._near([(im, t)], agree)):
                    ours.append((k, im))
            for k, im in ours:
                if k in held:  # the same photo twice in the folder (a copy beside it): recorded once, as the first
                    continue
                held[k] = (d, im, at)
                backfill.append((k, d, im))
            if ours:
                res.backfilled[d] = sum(1 for k, dd, _ in backfill if dd == d)
        return legacy, backfill

    def _first_merges(self, drives: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Drives known by name only: (merge time, run id) of the first merge that stored a sighting of each."""
        out = {}
        for d in drives:
            row = self.con.execute(
                "SELECT merged_at, run_id FROM runs WHERE run_id IN (SELECT run_id FROM observations WHERE drive=?) "
                "ORDER BY rid LIMIT 1", (d,)).fetchone()
            if row:
                out[d] = (row[0], row[1])
        return out

    def _drive_names(self, frames: list[tuple], held: dict, new: list[tuple], res: MergeResult,
                     legacy: dict | None = None) -> list[DriveRename]:
        """Inside merge's transaction: the run's drives whose new frames are another drive than the one the registry
        holds under their folder name, and the name each is merged as.

        A weekly card folder has the same name every week (``DCIM``, ``100MEDIA``, a phone export ``patrol``); the
        registry keys sightings by drive and file name, so this week's ``IMG_0001.jpg`` would be taken as last
        week's. A run's drive ``D`` whose name the registry holds with recorded frames is that drive when its new
        frames (those the registry holds nowhere) continue it: none of their file names is held by ``D`` for another
        photo, some of the run drive's frames are ``D``'s photos, and the new frames share a day with those or lie
        within :data:`CONTINUE_S` of one (a drive merged again with photos added; past midnight). Otherwise it is another drive, merged as ``D (YYYY-MM-DD)`` (the local day
        of its first new frame; ``D (YYYY-MM-DD, 2)`` … when that name is held for yet another drive; ``D (2)`` …
        when its frames have no time), or as such a name given before if the drive continues it. The name is stable
        on reruns: the frames are then held under it."""
        con = self.con
        fresh: dict[str, list[tuple]] = {}
        for k, d, im, t in new:
            fresh.setdefault(d, []).append((im, t))
        if not fresh:
            return []
        known = {d: (did, at) for d, did, at in con.execute(
            "SELECT drive, did, merged_at FROM drives WHERE drive IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(fresh)),))}
        legacy = legacy or {}
        known.update({d: (None, at) for d, (at, _, _) in legacy.items() if d in fresh})  # known by name only
        if not known:
            return []
        by_drive: dict[str, list[tuple]] = {}
        for d, im, k, t in frames:
            by_drive.setdefault(d, []).append((im, k, t))
        taken = set(by_drive)  # a name given to one of this run's drives is no other's
        out = []
        for d in sorted(fresh):
            if d not in known:
                continue
            news = fresh[d]
            days = sorted({x for _, t in news if (x := self._day(t))})

            def fits(name: str, did: int) -> tuple[str | None, list[str], list[str]]:
                """(why the new frames are not drive ``name``, or None; conflicting names; that drive's days)."""
                mine = [(im, t) for im, k, t in by_drive[d] if k in held and held[k][0] == name]
                names = [im for im, _ in news]
                if did is None:  # a drive known by name only: its sightings' names at other times
                    clash = sorted(set(names) & legacy[name][2])
                else:
                    clash = sorted(im for (im,) in con.execute(
                        "SELECT image FROM frames WHERE did=? AND image IN (SELECT value FROM json_each(?))",
                        (did, json.dumps(names))))
                own = sorted({x for _, t in mine if (x := self._day(t))})
                if clash:
                    return "names", clash, own
                if not mine:
                    return "none", clash, own
                if days and own and not set(days) & set(own) and not self._near(news, mine):
                    return "days", clash, own
                return None, clash, own

            why, clash, own = fits(d, known[d][0])
            if why is None:
                continue
            base = f"{d} ({days[0]}" if days else f"{d} ("
            again = False
            for n in range(1, 10_000):
                name = (f"{base}, {n})" if n > 1 else f"{base})") if days else f"{base}{n + 1})"
                if name in taken:
                    continue
                row = con.execute("SELECT did FROM drives WHERE drive=?", (name,)).fetchone()
                if row is None:
                    if con.execute("SELECT 1 FROM observations WHERE drive=? LIMIT 1", (name,)).fetchone():
                        continue  # known by name only (merged before frames were recorded): another drive
                    break
                if fits(name, row[0])[0] is None:
                    again = True
                    break
            taken.add(name)
            out.append(DriveRename(d, name, known[d][1], why, clash, days, own, len(news), len(by_drive[d]), again))
        return out

    def _near(self, a: list[tuple], b: list[tuple]) -> bool:
        """Is a frame of ``a`` within :data:`CONTINUE_S` of one of ``b`` ((name, time) pairs)? A drive's photos
        uploaded late from past midnight continue it though they are of the next day."""
        ta = np.sort(np.array([x for _, t in a if (x := self._epoch(t)) is not None]))
        tb = np.sort(np.array([x for _, t in b if (x := self._epoch(t)) is not None]))
        if not len(ta) or not len(tb):
            return False
        i = np.clip(np.searchsorted(tb, ta), 1, len(tb))
        gap = np.minimum(np.abs(ta - tb[i - 1]), np.abs(tb[np.minimum(i, len(tb) - 1)] - ta))
        return bool(gap.min() <= CONTINUE_S)

    def _aware(self, t: Any) -> datetime | None:
        """A frame's time (datetime or ISO string) with its zone (a time without one is in the registry's)."""
        if isinstance(t, str):
            try:
                t = datetime.fromisoformat(t)
            except ValueError:
                return None
        if not isinstance(t, datetime):
            return None
        return t if t.tzinfo else t.replace(tzinfo=self.tz)

    def _epoch(self, t: Any) -> float | None:
        """A frame's time as Unix seconds (None: unknown)."""
        t = self._aware(t)
        return None if t is None else t.timestamp()

    def _day(self, t: Any) -> str | None:
        """The registry's local day (``YYYY-MM-DD``) of a frame's time (datetime or ISO string; None: unknown)."""
        t = self._aware(t)
        return None if t is None else t.astimezone(self.tz).date().isoformat()

    def _record_frames(self, new: list[tuple[int, str, str]], pos: dict[int, tuple], merged_at: str, run_id: str,
                       first: dict[str, tuple[str, str]] | None = None) -> None:
        """Inside merge's transaction: the run's frames the registry did not hold, under their drives (a drive
        merged before keeps its first merge time; ``first``: that of a drive known by name only until now), with their
        position, heading and time (``pos``: by frame key, as ``merge`` read them from the run's frames)."""
        con = self.con
        first = first or {}
        counts: dict[str, int] = {}
        for _, d, _ in new:
            counts[d] = counts.get(d, 0) + 1
        con.executemany("INSERT OR IGNORE INTO drives (drive, merged_at, run_id) VALUES (?,?,?)",
                        [(d, *first.get(d, (merged_at, run_id))) for d in counts])
        con.executemany("UPDATE drives SET n_frames = n_frames + ? WHERE drive=?", [(n, d) for d, n in counts.items()])
        did = dict(con.execute("SELECT drive, did FROM drives WHERE drive IN (SELECT value FROM json_each(?))",
                               (json.dumps(list(counts)),)))
        none = (None, None, None, None, None)
        con.executemany("INSERT INTO frames (frame_key, did, image, lat, lon, heading, t, look) VALUES "
                        "(?,?,?,?,?,?,?,?)",
                        [(k, did[d], im, *pos.get(k, none)) for k, d, im in new])
        self._touch("drives", "frames")

    def _place_frames(self, keys: list[int], pos: dict[int, tuple]) -> list[int]:
        """Inside merge's transaction: the held frames ``keys`` that have no position (recorded by a patrol of schema 3)
        get the position, heading and time this run read from them, where it has them (those it lacks stay NULL).
        To the passes they are frames just recorded (``_new_frame_table``): the same frames merged first by schema 4
        would give the same rows. Returns the keys given a position."""
        put = [(*pos[k], k) for k in sorted(set(keys)) if k in pos and pos[k][0] is not None and pos[k][1] is not None]
        if not put:
            return []
        self.con.executemany("UPDATE frames SET lat=?, lon=?, heading=?, t=?, look=? WHERE frame_key=? AND lat IS NULL",
                             put)
        self._touch("frames")
        return [p[-1] for p in put]

    def _new_frame_table(self, keys: list[int], pos: dict[int, tuple]) -> pd.DataFrame:
        """Inside merge's transaction, after ``_record_frames`` and ``_place_frames``: the frames just recorded or
        given their position with a position (frame_key, did, lat, lon, heading, t, look), as stored."""
        keys = [k for k in keys if k in pos and pos[k][0] is not None and pos[k][1] is not None]
        if not keys:
            return pd.DataFrame(columns=["frame_key", "did", "lat", "lon", "heading", "t", "look"])
        return pd.read_sql_query("SELECT f.frame_key, f.did, f.lat, f.lon, f.heading, f.t, f.look FROM json_each(?) j "
                                 "JOIN frames f ON f.frame_key = j.value", self.con, params=(json.dumps(keys),))

    def _near_frames(self, newf: pd.DataFrame, radius: float) -> set[str]:
        """Inside merge's transaction: the damages within ``radius`` of one of these (just recorded) frames (STRtree
        over the frames, one query for all damages)."""
        if not len(newf):
            return set()
        lat, lon = newf["lat"].to_numpy(float), newf["lon"].to_numpy(float)
        pad = radius / 111_000.0 * 2 + 1e-6
        lat0 = float(np.median(lat))
        padx = pad / max(math.cos(math.radians(lat0)), 0.05)
        c = pd.read_sql_query(
            "SELECT candidate_id, lat, lon FROM candidates WHERE lat BETWEEN ? AND ? AND lon BETWEEN ? AND ? AND "
            "merged_into IS NULL", self.con,
            params=(float(lat.min() - pad), float(lat.max() + pad), float(lon.min() - padx), float(lon.max() + padx)))
        if c.empty:
            return set()
        import shapely

        fx, fy = _local_xy(lat, lon, lat0)
        cx, cy = _local_xy(c["lat"].to_numpy(float), c["lon"].to_numpy(float), lat0)
        hit = shapely.STRtree(shapely.points(fx, fy)).query(shapely.points(cx, cy), predicate="dwithin",
                                                            distance=radius * 1.01 + 0.5)[0]
        return set(c["candidate_id"].to_numpy(object)[np.unique(hit)])

    def _moved(self, ids: list[str], reg: pd.DataFrame, run_id: str, tol: float) -> set[str]:
        """Inside merge's transaction, after ``_recompute``: of the damages ``ids`` (touched by this merge), those whose
        passes must be found again among all frames held: made by it, placed elsewhere (a better sighting), or whose
        directions (``_directions``) this merge's sightings changed."""
        if not ids:
            return set()
        was = {c: (la, lo) for c, la, lo in zip(reg["candidate_id"], reg["lat"], reg["lon"])}
        ids_json = json.dumps(ids)
        out = set()
        for cid, la, lo in self.con.execute("SELECT candidate_id, lat, lon FROM candidates WHERE candidate_id IN "
                                            "(SELECT value FROM json_each(?))", (ids_json,)):
            w = was.get(cid)
            if w is None or not _same_float(w[0], la) or not _same_float(w[1], lo):
                out.add(cid)
        rest = [c for c in ids if c not in out]
        if rest:  # a sighting of this merge from a 5-degree direction none of the damage's others was seen from
            b = "(CAST(ROUND({0}.heading / 5.0) AS INTEGER) % 36 + 36) % 36"
            out |= {c for (c,) in self.con.execute(
                "SELECT DISTINCT n.candidate_id FROM observations n WHERE n.candidate_id IN (SELECT value FROM "
                "json_each(?)) AND n.run_id = ? AND n.heading IS NOT NULL AND NOT EXISTS (SELECT 1 FROM observations o "
                f"WHERE o.candidate_id = n.candidate_id AND o.run_id != ? AND o.heading IS NOT NULL AND {b.format('o')} "
                f"= {b.format('n')})", (json.dumps(rest), run_id, run_id))}
        return out

    def _directions(self, ids: list[str], tol: float) -> dict[str, np.ndarray]:
        """{damage: the 36 axial 5-degree bins of a frame heading that agrees (within ``tol``, either way) with a
        direction it was seen from (its sightings' frame headings)}; a damage seen from no known heading: absent."""
        seen: dict[str, np.ndarray] = {}
        for cid, b in self.con.execute(
                "SELECT DISTINCT candidate_id, (CAST(ROUND(heading / 5.0) AS INTEGER) % 36 + 36) % 36 FROM observations "
                "WHERE candidate_id IN (SELECT value FROM json_each(?)) AND heading IS NOT NULL", (json.dumps(ids),)):
            seen.setdefault(cid, np.zeros(36, bool))[int(b)] = True
        centres = np.arange(36) * 5.0
        diff = np.abs((centres[:, None] - centres[None, :] + 180.0) % 360.0 - 180.0)
        near = np.minimum(diff, 180.0 - diff) <= tol  # bin x bin: within tol either way
        return {c: (near & d[None, :]).any(axis=1) for c, d in seen.items()}

    def _frame_pairs(self, cand: pd.DataFrame, radius: float) -> pd.DataFrame:
        """Every positioned frame held in the grid cells (``_CELL``) of each damage's box (candidate_id, frame_key,
        did, lat, lon, heading, t, look): one SQL join on the ``frames_cell`` index."""
        lat, lon = cand["lat"].to_numpy(float), cand["lon"].to_numpy(float)
        pad = radius / 111_000.0 * 1.01 + 1e-6
        padx = pad / np.maximum(np.cos(np.radians(lat)), 0.05)
        i0, i1 = np.round((lat - pad) * _CELL_DEG).astype(np.int64), np.round((lat + pad) * _CELL_DEG).astype(np.int64)
        j0, j1 = np.round((lon - padx) * _CELL_DEG).astype(np.int64), np.round((lon + padx) * _CELL_DEG).astype(np.int64)
        ni, nj = int((i1 - i0).max()) + 1, int((j1 - j0).max()) + 1
        di, dj = np.meshgrid(np.arange(ni), np.arange(nj), indexing="ij")
        ii = i0[:, None] + di.ravel()[None, :]
        jj = j0[:, None] + dj.ravel()[None, :]
        ok = (ii <= i1[:, None]) & (jj <= j1[:, None])
        row = np.broadcast_to(np.arange(len(cand))[:, None], ok.shape)[ok]
        cells = ii[ok] * 1_000_000 + jj[ok]
        ids = cand["candidate_id"].to_numpy(object)
        return pd.read_sql_query(
            f"SELECT json_extract(j.value, '$[0]') AS candidate_id, f.frame_key, f.did, f.lat, f.lon, f.heading, f.t, "
            "f.look "
            f"FROM json_each(?) j JOIN frames f ON {_CELL.replace('lat', 'f.lat').replace('lon', 'f.lon')} = "
            "json_extract(j.value, '$[1]') AND f.lat IS NOT NULL", self.con,
            params=(json.dumps([[ids[r], int(c)] for r, c in zip(row, cells)]),))

    def _update_passes(self, ids: list[str], radius: float | None = None, tol: float | None = None,
                       newf: pd.DataFrame | None = None, drives: Iterable[str] = ()) -> None:
        """Inside a write transaction: the ``passes`` rows and pass aggregates (n_passes, n_unseen, last_passed) of the
        damages ``ids``, as a function of the frames held and the damages' observations only (a merge in any order,
        or again, gives the same rows; unchanged rows are not written).

        A frame passes a damage when it lies within ``radius`` (``store.pass_radius_m``) of it and its heading agrees
        (within ``tol``, ``locate.heading_tolerance_deg``, either way; in 5 degree steps) with one of the directions the
        damage was seen from (the headings of its sightings' frames); a frame without heading, or a damage seen from
        no known heading, counts, as ``segments`` counts coverage. One row per (damage, drive): the nearest passing
        frame that could show the road (a good look: ``frames.look`` NULL), else the nearest poor one (the row's
        ``look`` its verdict: dark, glare, blurred; no unseen pass: the drive could not have seen it), by distance,
        then time, then key; a drive that sighted the damage passed it (without a passing frame: the time of its
        latest sighting, no distance), whatever the look of its frames.

        ``newf`` (frames just recorded, ``_new_frame_table``): the damages' rows as stored are still right (not moved,
        same directions): only these frames are looked at, each drive's row the nearer of the two (the minimum over
        all its frames either way), and only the rows of their drives and of ``drives`` (those this merge stored
        sightings of) can change; else every frame held (``_frame_pairs``)."""
        if not ids:
            return
        radius = PASS_RADIUS_M if radius is None else float(radius)
        tol = HEADING_TOLERANCE_DEG if tol is None else float(tol)
        con = self.con
        ids_json = json.dumps(list(ids))
        cand = pd.read_sql_query(
            "SELECT candidate_id, lat, lon, last_t, n_passes, n_unseen, last_passed FROM candidates WHERE candidate_id "
            "IN (SELECT value FROM json_each(?)) AND merged_into IS NULL", con, params=(ids_json,))
        ids_json = json.dumps(list(cand["candidate_id"]))  # (a damage merged into another has no passes)
        only = ""  # (incremental: the rows of the drives that can change)
        if newf is not None:
            names = {d for (d,) in con.execute("SELECT drive FROM drives WHERE did IN (SELECT value FROM json_each(?))",
                                               (json.dumps(sorted({int(x) for x in newf["did"]})),))}
            names |= set(drives)
            names |= {p for d in names for p in d.split("|")}
            only = " AND drive IN (SELECT value FROM json_each(?))"
        extra = (json.dumps(sorted(names)),) if only else ()
        # the drives that sighted each damage (registry names; a sighting under d1|d2: both), their latest time
        seen: dict[tuple[str, str], float | None] = {}
        for cid, d, lt in con.execute("SELECT candidate_id, drive, MAX(last_t) FROM observations WHERE candidate_id IN "
                                      f"(SELECT value FROM json_each(?)){only} GROUP BY candidate_id, drive",
                                      (ids_json, *extra)):
            for p in (d or "").split("|"):
                if p:
                    k = (cid, p)
                    seen[k] = lt if seen.get(k) is None else max(seen[k], lt if lt is not None else -math.inf)
        old = {(cid, d): (tx, t, dm, s_, fk, lk) for cid, d, tx, t, dm, s_, fk, lk in con.execute(
            "SELECT candidate_id, drive, time, t, distance_m, sighted, frame_key, look FROM passes WHERE candidate_id IN "
            f"(SELECT value FROM json_each(?)){only}", (ids_json, *extra))}
        c = cand[cand["lat"].notna() & cand["lon"].notna()]
        pairs = pd.DataFrame()
        if len(c):
            if newf is None:
                pairs = self._frame_pairs(c, radius)
            elif len(newf):
                pairs = self._pairs_with(c, newf, radius)
        best: dict[tuple[str, int], tuple] = {}  # (damage, did) -> (distance, t, frame_key, look)
        if len(pairs):
            pos = c.set_index("candidate_id").loc[pairs["candidate_id"], ["lat", "lon"]].to_numpy(float)
            # metres around the damage's own latitude: the same distance whichever frames are looked at with it
            r = 6371008.8
            dx = np.radians(pairs["lon"].to_numpy(float) - pos[:, 1]) * r * np.cos(np.radians(pos[:, 0]))
            dy = np.radians(pairs["lat"].to_numpy(float) - pos[:, 0]) * r
            dist = np.round(np.hypot(dx, dy), 2)
            keep = dist <= radius
            dirs = self._directions(list(c["candidate_id"]), tol)
            if dirs:
                h = pairs["heading"].to_numpy(float)
                hb = np.where(np.isfinite(h), np.round(np.nan_to_num(h) / 5.0).astype(np.int64) % 36, 0)
                allowed = np.ones((len(pairs), 36), bool)
                has = pairs["candidate_id"].map(lambda x: x in dirs).to_numpy(bool)
                if has.any():
                    allowed[has] = np.stack([dirs[x] for x in pairs["candidate_id"][has]])
                keep &= ~np.isfinite(h) | allowed[np.arange(len(pairs)), hb]
            look = pairs["look"].where(pairs["look"].notna() & (pairs["look"] != ""), None)
            p = pairs[keep].assign(distance_m=dist[keep], _t=pairs["t"][keep].fillna(np.inf), look=look[keep],
                                   _poor=look[keep].notna())
            p = p.sort_values(["candidate_id", "did", "_poor", "distance_m", "_t", "frame_key"])  # a look first
            p = p.drop_duplicates(["candidate_id", "did"])
            for cid, did, dm, t, fk, lk in zip(p["candidate_id"], p["did"], p["distance_m"], p["t"], p["frame_key"],
                                               p["look"]):
                best[(cid, int(did))] = (float(dm), None if t is None or not np.isfinite(t) else float(t), int(fk),
                                         lk if isinstance(lk, str) else None)
        drive = {}
        if best:
            drive = dict(con.execute("SELECT did, drive FROM drives WHERE did IN (SELECT value FROM json_each(?))",
                                     (json.dumps(sorted({d for _, d in best})),)))
        rows: dict[tuple[str, str], tuple] = {}  # (damage, drive) -> (distance, t, frame_key, look)
        if newf is not None:  # the rows as stored (frames' ones), each drive's then the nearer with the new frames'
            rows = {k: (v[2], v[1], v[4], v[5]) for k, v in old.items() if v[4] is not None}

        def order(v):  # a good look before a poor one, then the nearest, the earliest, the key
            return v[3] is not None, v[0], np.inf if v[1] is None else v[1], v[2]

        for (cid, did), v in best.items():
            k = (cid, drive[did])
            w = rows.get(k)
            if w is None or order(v) < order(w):
                rows[k] = v
        new = {k: (self._time_text(t), t, dm, int(k in seen), fk, lk) for k, (dm, t, fk, lk) in rows.items()}
        for k, lt in seen.items():
            if k not in new:
                lt = lt if lt is not None and np.isfinite(lt) else None
                new[k] = (self._time_text(lt), lt, None, 1, None, None)
        gone = [k for k in old if k not in new]
        put = [(*k, *v) for k, v in sorted(new.items()) if old.get(k) != v]
        if gone:
            con.executemany("DELETE FROM passes WHERE candidate_id=? AND drive=?", gone)
        if put:
            con.executemany("INSERT INTO passes (candidate_id, drive, time, t, distance_m, sighted, frame_key, look) "
                            "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (candidate_id, drive) DO UPDATE SET "
                            "time=excluded.time, t=excluded.t, distance_m=excluded.distance_m, "
                            "sighted=excluded.sighted, frame_key=excluded.frame_key, look=excluded.look", put)
        if gone or put:
            self._touch("passes")
        # the damages' aggregates, from their passes as stored now (an unseen pass: a look, not a poor frame's)
        agg = {cid: (n, u or 0, self._time_text(t)) for cid, n, u, t in con.execute(
            "SELECT p.candidate_id, COUNT(*), SUM(p.sighted = 0 AND p.look IS NULL AND p.t IS NOT NULL AND (c.last_t IS NULL OR p.t > "
            "c.last_t)), MAX(p.t) FROM passes p JOIN candidates c ON c.candidate_id = p.candidate_id WHERE "
            "p.candidate_id IN (SELECT value FROM json_each(?)) GROUP BY p.candidate_id", (ids_json,))}
        upd = []
        for cid, n0, u0, lp0 in zip(cand["candidate_id"], cand["n_passes"], cand["n_unseen"], cand["last_passed"]):
            n, u, lp = agg.get(cid, (0, 0, None))
            if (n0, u0, lp0 if isinstance(lp0, str) else None) != (n, u, lp):
                upd.append((n, u, lp, cid))
        if upd:
            con.executemany("UPDATE candidates SET n_passes=?, n_unseen=?, last_passed=? WHERE candidate_id=?", upd)
            self._touch("candidates")

    def _passed_unseen(self, frames: list[tuple]) -> tuple[dict[str, list[str]], dict[str, int]]:
        """Inside merge's transaction, after the passes are updated; reads only. For each drive of the run's
        ``frames`` (its own name): the damages that drive's frames drove past after their last sighting without
        seeing them, the passes ``n_unseen`` counts (``sighted`` 0, a time later than the damage's last sighting).
        A frame's pass is under the name its frame is held as (a copied or renamed drive: the registry's name), so
        the drive's registry names are those of its frames as held. A merge again reads the same rows: the same
        answer, nothing written. Returns ({drive: sorted ids}, {id: its n_unseen})."""
        names: dict[str, set[str]] = {}
        run_drive = {int(f[2]): f[0] for f in frames}
        for k, d in self.con.execute(
                "SELECT f.frame_key, d.drive FROM json_each(?) j JOIN frames f ON f.frame_key = j.value "
                "JOIN drives d ON d.did = f.did", (json.dumps(sorted(run_drive)),)):
            names.setdefault(run_drive[int(k)], set()).add(d)
        held = sorted({n for ns in names.values() for n in ns})
        by_name: dict[str, set[str]] = {}
        n_unseen: dict[str, int] = {}
        for cid, d, u in self.con.execute(
                "SELECT p.candidate_id, p.drive, c.n_unseen FROM passes p JOIN candidates c USING (candidate_id) "
                "WHERE p.drive IN (SELECT value FROM json_each(?)) AND p.sighted = 0 AND p.look IS NULL AND "
                "p.t IS NOT NULL AND "
                "(c.last_t IS NULL OR p.t > c.last_t)", (json.dumps(held),)):
            by_name.setdefault(d, set()).add(cid)
            n_unseen[cid] = int(u or 0)
        out = {d: sorted({c for n in names.get(d, ()) for c in by_name.get(n, ())})
               for d in dict.fromkeys(f[0] for f in frames)}
        return out, n_unseen

    def _pairs_with(self, cand: pd.DataFrame, newf: pd.DataFrame, radius: float) -> pd.DataFrame:
        """The (damage, frame) pairs of ``cand`` and the just recorded frames ``newf`` within about ``radius``
        (STRtree over the frames; the caller measures them exactly), as ``_frame_pairs`` gives them."""
        import shapely

        lat0 = float(np.median(newf["lat"].to_numpy(float)))
        fx, fy = _local_xy(newf["lat"].to_numpy(float), newf["lon"].to_numpy(float), lat0)
        cx, cy = _local_xy(cand["lat"].to_numpy(float), cand["lon"].to_numpy(float), lat0)
        ci, fi = shapely.STRtree(shapely.points(fx, fy)).query(shapely.points(cx, cy), predicate="dwithin",
                                                               distance=radius * 1.01 + 0.5)
        out = newf.iloc[fi].reset_index(drop=True)
        out.insert(0, "candidate_id", cand["candidate_id"].to_numpy(object)[ci])
        return out

    def _time_text(self, t: float | None) -> str | None:
        """Unix seconds as the registry's local ISO 8601 time, to the second (None: unknown)."""
        return None if t is None else datetime.fromtimestamp(round(t), self.tz).isoformat()

    def _new_run_id(self, merged_at: str, label: str | None) -> str:
        """``<merge time>-<label>``, with ``-2``, ``-3`` … where a run of that name is already recorded."""
        base = datetime.fromisoformat(merged_at).strftime("%Y%m%dT%H%M%S") + (f"-{label}" if label else "")
        run_id, k = base, 1
        while self.con.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone():
            k += 1
            run_id = f"{base}-{k}"
        return run_id

    def _test_hook(self) -> None:
        secs = os.environ.get(TEST_SLEEP_ENV)
        if not secs:
            return
        # write something first so the kill really interrupts a dirty transaction
        self.con.execute("INSERT INTO patrol_meta VALUES ('test_hook_dirty', 'x') ON CONFLICT(key) DO NOTHING")
        self.con.execute("UPDATE candidates SET n_obs = n_obs + 1000")
        marker = os.environ.get(TEST_MARKER_ENV)
        if marker:
            Path(marker).write_text("in transaction")
        _time.sleep(float(secs))
        self.con.execute("UPDATE candidates SET n_obs = n_obs - 1000")
        self.con.execute("DELETE FROM patrol_meta WHERE key='test_hook_dirty'")

    def _match_table(self) -> pd.DataFrame:
        """Inside a write transaction: the registry's damages a run's candidates can match (candidate_id, class,
        segment_id, chainage_m, lat, lon): not those merged into another (``merge_candidates``), and a damage that
        one of another class was merged into once more under each such class (its sightings' classes), so that a
        later drive's sighting of that class near it is seen again, not new."""
        con = self.con
        reg = pd.read_sql_query("SELECT candidate_id, class, segment_id, chainage_m, lat, lon FROM candidates "
                                "WHERE merged_into IS NULL", con)
        if not con.execute("SELECT 1 FROM candidates WHERE merged_into IS NOT NULL LIMIT 1").fetchone():
            return reg
        more = pd.read_sql_query(
            "SELECT DISTINCT c.candidate_id, o.class, c.segment_id, c.chainage_m, c.lat, c.lon FROM candidates c "
            "JOIN observations o ON o.candidate_id = c.candidate_id WHERE c.merged_into IS NULL AND c.candidate_id IN "
            "(SELECT merged_into FROM candidates WHERE merged_into IS NOT NULL) AND o.class != c.class", con)
        return pd.concat([reg, more], ignore_index=True) if len(more) else reg

    def _match(self, rows: list[dict], reg: pd.DataFrame, dist_m: float, absorb: bool = True) -> dict[int, str]:
        """run row index -> registry id: by stored key first, then nearest within ``dist_m`` (same class)."""
        match: dict[int, str] = {}
        used: set[str] = set()
        if not rows:
            return match
        # 1. key matching
        drives = sorted({o["drive"] for r in rows for o in r["obs"] if o["boxed"]})
        keyed: dict[tuple, str] = {}
        for chunk in range(0, len(drives), 500):
            part = drives[chunk: chunk + 500]
            q = ("SELECT drive, image, class, x1, y1, x2, y2, candidate_id FROM observations WHERE owner='' AND drive IN "
                 f"({','.join('?' * len(part))})")
            for d, im, c, a, b, e, f, cid in self.con.execute(q, part):
                keyed[(d, im, c, a, b, e, f)] = cid
        # (the key holds the class: a stored sighting of another class than its damage's is one the office merged
        # into it, ``merge_candidates``; a damage merged away holds no sighting)
        live = set(reg["candidate_id"])
        votes = []
        for i, r in enumerate(rows):
            hits: dict[str, int] = {}
            for o in r["obs"]:
                if o["boxed"]:
                    cid = keyed.get(o["key"])
                    if cid is not None and cid in live:
                        hits[cid] = hits.get(cid, 0) + 1
            for cid, n in hits.items():
                votes.append((-n, i, cid))
        # a run candidate goes to the registry candidate holding most of its stored sightings, even when another
        # piece of the same damage in this run went there too (the run split what the registry knows as one damage;
        # turned away, a piece whose sightings are all stored became a new candidate without a single sighting)
        for _, i, cid in sorted(votes):
            if i not in match:
                match[i] = cid
                used.add(cid)
        # 2. nearest along the road / in the plane
        if reg.empty:
            return match
        lat0 = float(np.nanmean([r["lat"] for r in rows if r["lat"] is not None] or [0.0])) if any(
            r["lat"] is not None for r in rows) else 0.0
        for cls in sorted({r["class"] for r in rows}):
            ri = [i for i, r in enumerate(rows) if r["class"] == cls and i not in match]
            g = reg[(reg["class"] == cls) & ~reg["candidate_id"].isin(used)]
            if not ri or g.empty:
                continue
            rlat = np.array([r["lat"] if r["lat"] is not None else np.nan for r in (rows[i] for i in ri)], float)
            rlon = np.array([r["lon"] if r["lon"] is not None else np.nan for r in (rows[i] for i in ri)], float)
            rseg = np.array([r["segment_id"] or "" for r in (rows[i] for i in ri)], object)
            rch = np.array([r["chainage_m"] if r["chainage_m"] is not None else np.nan for r in (rows[i] for i in ri)],
                           float)
            glat = g["lat"].to_numpy(float)
            glon = g["lon"].to_numpy(float)
            gseg = g["segment_id"].fillna("").to_numpy(object)
            gch = g["chainage_m"].to_numpy(float)
            gid = g["candidate_id"].to_numpy(object)
            # prefilter by a bounding box so the matrix stays small on a large registry
            ok = np.isfinite(rlat) & np.isfinite(rlon)
            if ok.any():
                pad = dist_m / 111_000.0 * 4 + 1e-6
                coslat = max(math.cos(math.radians(lat0)), 0.05)
                near = ((glat >= np.nanmin(rlat) - pad) & (glat <= np.nanmax(rlat) + pad)
                        & (glon >= np.nanmin(rlon) - pad / coslat) & (glon <= np.nanmax(rlon) + pad / coslat))
                near |= np.isin(gseg, rseg[rseg != ""])
                glat, glon, gseg, gch, gid = glat[near], glon[near], gseg[near], gch[near], gid[near]
            if len(gid) == 0:
                continue
            rx, ry = _local_xy(rlat, rlon, lat0)
            gx, gy = _local_xy(glat, glon, lat0)
            d = np.hypot(rx[:, None] - gx[None, :], ry[:, None] - gy[None, :])
            same = (rseg[:, None] == gseg[None, :]) & (rseg[:, None] != "")
            dch = np.abs(rch[:, None] - gch[None, :])
            along = same & np.isfinite(dch)
            d = np.where(along, dch, d)
            d = np.where(np.isfinite(d), d, np.inf)
            a, b = np.nonzero(d <= dist_m)
            order = np.lexsort((gid[b].astype(str), a, d[a, b]))
            for k in order:
                i, cid = ri[a[k]], gid[b[k]]
                if i in match or cid in used:
                    continue
                match[i] = cid
                used.add(cid)
            if absorb:
                # leftovers within distance of a registry candidate taken in this merge: a damage the run split
                # into pieces (pieces placed > distance_m apart, e.g. GPS noise) joins the known damage
                for k in order:
                    i, cid = ri[a[k]], gid[b[k]]
                    if i not in match:
                        match[i] = cid
        return match

    def _insert_observations(self, rid: str, r: dict, run_id: str) -> tuple[int, int, float | None]:
        """(new sightings, image-level sightings that got their box, latest time of the new sightings)."""
        con = self.con
        n = n_boxed = 0
        tmax = None
        pos = [r[k] for k in _OBS_POS_COLUMNS]
        for o in r["obs"]:
            d, im, c, x1, y1, x2, y2 = o["key"]
            before = n
            if o["boxed"]:
                # look first: an ignored INSERT would still advance the AUTOINCREMENT counter
                if con.execute("SELECT 1 FROM observations WHERE drive=? AND image=? AND class=? AND x1=? AND y1=? "
                               "AND x2=? AND y2=? AND owner=''", o["key"]).fetchone():
                    continue
                cur = con.execute(
                    "INSERT OR IGNORE INTO observations (candidate_id, drive, image, class, x1, y1, x2, y2, owner, "
                    "confidence, width, height, first_seen, last_seen, first_t, last_t, lat, lon, segment_id, road_name, "
                    "chainage_m, severity, est_width_m, est_length_m, run_id, heading) "
                    "VALUES (?,?,?,?,?,?,?,?,'',?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (rid, d, im, c, x1, y1, x2, y2, o["confidence"], o["width"], o["height"], o["first_seen"],
                     o["last_seen"], o["first_t"], o["last_t"], *pos, run_id, o.get("heading")))
                if cur.rowcount:
                    if o.get("crop"):  # written by _recompute only if this sighting's crop is the best: a 12 KB crop
                        # inserted and then cleared left most of a page empty per row (60 MB after 6 weeks, 24 unused)
                        self._pending_crops.setdefault(rid, {})[cur.lastrowid] = o["crop"]
                    # a boxed sighting supersedes the image-level one of the same image: that is no new sighting
                    if con.execute("DELETE FROM observations WHERE candidate_id=? AND owner=? AND drive=? AND image=? "
                                   "AND class=?", (rid, rid, d, im, c)).rowcount:
                        n_boxed += 1
                    else:
                        n += 1
            else:
                exists = con.execute("SELECT 1 FROM observations WHERE candidate_id=? AND drive=? AND image=? AND class=? "
                                     "LIMIT 1", (rid, d, im, c)).fetchone()
                if exists:
                    continue
                cur = con.execute(
                    "INSERT OR IGNORE INTO observations (candidate_id, drive, image, class, x1, y1, x2, y2, owner, "
                    "confidence, width, height, first_seen, last_seen, first_t, last_t, lat, lon, segment_id, road_name, "
                    "chainage_m, severity, est_width_m, est_length_m, run_id, heading) "
                    "VALUES (?,?,?,?,-1,-1,-1,-1,?,NULL,NULL,NULL,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (rid, d, im, c, rid, o["first_seen"], o["last_seen"], o["first_t"], o["last_t"], *pos, run_id,
                     o.get("heading")))
                if cur.rowcount:
                    n += 1
            if n > before and o["last_t"] is not None:
                tmax = o["last_t"] if tmax is None else max(tmax, o["last_t"])
        return n, n_boxed, tmax

    def _recompute(self, rid: str) -> None:
        """Every aggregate of a registry candidate, as a function of its observations only."""
        con = self.con
        n, ft, lt = con.execute(
            "SELECT COUNT(*), MIN(first_t), MAX(last_t) FROM observations "
            "WHERE candidate_id=?", (rid,)).fetchone()
        first_seen = con.execute("SELECT first_seen FROM observations WHERE candidate_id=? AND first_t IS NOT NULL "
                                 "ORDER BY first_t, obs_id LIMIT 1", (rid,)).fetchone()
        last_seen = con.execute("SELECT last_seen FROM observations WHERE candidate_id=? AND last_t IS NOT NULL "
                                "ORDER BY last_t DESC, obs_id LIMIT 1", (rid,)).fetchone()
        drives = sorted({p for d in con.execute("SELECT DISTINCT drive FROM observations WHERE candidate_id=?", (rid,))
                         for p in d[0].split("|") if p})
        order = f"ORDER BY {_BEST_ORDER} LIMIT 1"
        best = con.execute(
            "SELECT obs_id, drive, image, x1, y1, x2, y2, width, height, confidence, lat, lon, segment_id, road_name, "
            f"chainage_m, severity, est_width_m, est_length_m FROM observations WHERE candidate_id=? {order}",
            (rid,)).fetchone()
        if best is None:
            con.execute("UPDATE candidates SET n_obs=0 WHERE candidate_id=?", (rid,))
            return
        (obs_id, bd, bi, x1, y1, x2, y2, w, h, conf, lat, lon, seg, road, ch, sev, ew, el) = best
        boxed = x1 is not None and x1 >= 0
        # the crop: of the best sighting that came with one. Stored once, in the candidate (the layer QGIS opens and
        # every export reads); crop_obs_id names its sighting, so a new sighting's crop replaces it only when better
        crop_sets, crop_args = "", ()
        pending = self._pending_crops.pop(rid, {})
        if pending:
            (held,) = con.execute("SELECT crop_obs_id FROM candidates WHERE candidate_id=?", (rid,)).fetchone()
            ids = [*pending, *([held] if held is not None else [])]
            (win,) = con.execute(f"SELECT obs_id FROM observations WHERE candidate_id=? AND obs_id IN "
                                 f"(SELECT value FROM json_each(?)) ORDER BY {_BEST_ORDER} LIMIT 1",
                                 (rid, json.dumps(ids))).fetchone()
            if win in pending:
                crop_sets, crop_args = ", crop_obs_id=?, crop_jpeg=?", (win, pending[win])
        con.execute(
            "UPDATE candidates SET geom=?, confidence=?, n_obs=?, first_seen=?, last_seen=?, first_t=?, last_t=?, "
            "segment_id=?, road_name=?, chainage_m=?, lat=?, lon=?, best_image=?, best_drive=?, best_x1=?, best_y1=?, "
            "best_x2=?, best_y2=?, best_width=?, best_height=?, drives=?, images=?, severity=?, est_width_m=?, "
            f"est_length_m=?{crop_sets} WHERE candidate_id=?",
            (gpkg_point(lon, lat), conf, n, first_seen[0] if first_seen else None, last_seen[0] if last_seen else None,
             ft, lt, seg, road, ch, lat, lon, bi, bd.split("|")[0] if bd else bd,
             *((x1, y1, x2, y2) if boxed else (None, None, None, None)), w, h,
             json.dumps(drives, ensure_ascii=False), self._images_json(rid), sev, ew, el, *crop_args, rid))

    def _images_json(self, rid: str) -> str:
        """The candidate's images as ``drive/name`` (JSON array, sorted), as a run's outputs name them: two phones
        each have an IMG_0001.jpg. A sighting without one drive (an image a run listed without its drive among
        several: keyed under ``d1|d2``) or without a drive keeps the bare name."""
        names = {_drive_image(d, im) for d, im in self.con.execute(
            "SELECT DISTINCT drive, image FROM observations WHERE candidate_id=?", (rid,))}
        return json.dumps(sorted(names), ensure_ascii=False)

    # --------------------------------------------------------------------- the office merges two damages
    def _has_column(self, table: str, col: str) -> bool:
        return col in {r[1] for r in self.con.execute(f'PRAGMA table_info("{table}")')}

    def merged_into(self, candidate_id: str) -> tuple[str, str] | None:
        """(the id ``candidate_id`` was merged into, when) where the office merged it (``merge_candidates``); None
        for a damage of its own, an unknown id, or a registry of schema 4 read as it is."""
        if not self._has_column("candidates", "merged_into"):
            return None
        row = self.con.execute("SELECT merged_into, merged_at FROM candidates WHERE candidate_id=?",
                               (candidate_id,)).fetchone()
        return (row[0], row[1]) if row and row[0] else None

    def final_target(self, candidate_id: str) -> str:
        """The damage ``candidate_id`` is part of now: itself, or the end of its chain of merges (R-000031 merged into
        R-000012, merged later into R-000007: R-000007)."""
        seen, cur = {candidate_id}, candidate_id
        while (m := self.merged_into(cur)) is not None and m[0] not in seen:
            cur = m[0]
            seen.add(cur)
        return cur

    def merged_text(self, candidate_id: str) -> str | None:
        """``R-000031 was merged into R-000012 on 2026-12-01 10:15`` (``, now part of R-000007`` where that one was
        merged on); None for a damage not merged."""
        m = self.merged_into(candidate_id)
        if m is None:
            return None
        final = self.final_target(candidate_id)
        return (f"{candidate_id} was merged into {m[0]} on {self._local(m[1])}"
                + (f", now part of {final}" if final != m[0] else ""))

    def _apart_m(self, a: str, b: str) -> float | None:
        """How far apart two registry candidates lie: along the road where both are on one segment (as a run's
        matching measures), else in the plane; None where either has no position."""
        pos = {r[0]: r[1:] for r in self.con.execute(
            "SELECT candidate_id, lat, lon, segment_id, chainage_m FROM candidates WHERE candidate_id IN (?, ?)", (a, b))}
        (la, oa, sa, ca), (lb, ob, sb, cb) = pos[a], pos[b]
        if sa and sa == sb and _isnum(ca) and _isnum(cb):
            return abs(float(ca) - float(cb))
        if not all(_isnum(v) for v in (la, oa, lb, ob)):
            return None
        x, y = _local_xy(np.array([la, lb], float), np.array([oa, ob], float), (float(la) + float(lb)) / 2)
        return float(np.hypot(x[1] - x[0], y[1] - y[0]))

    def merge_candidates(self, candidate_id: str, into: str, note: str | None = None, who: str | None = None,
                         when: Any = None, cfg=None, force: bool = False) -> CandidateMerge:
        """The office says two registry candidates are one damage (GPS off by more than ``store.match_distance_m``
        one week, or one crack detected as two classes): ``candidate_id``'s sightings become ``into``'s, in ONE
        transaction. ``into``'s aggregates are recomputed from its sightings as a run's merge does (``_recompute``:
        n_obs, first/last seen, drives, images, best sighting, crop, position, severity; ``_update_passes``: its
        passes against every frame held); ``into`` keeps its class and status, but a repaired ``into`` that
        ``candidate_id`` was seen after the repair date of is reopened, as that drive merged after the repair would
        have reopened it (``_reopen``: a history row ``repaired -> reopened``, ``source``
        ``merged-from:<candidate_id>``, the note naming the sighting and the repair date; ``CandidateMerge.reopened``;
        ``unmerge_candidate`` takes it back). ``candidate_id`` stays as a record (its ids were printed on crew
        lists): ``merged_into``/``merged_at`` set, no sighting, no passes, no point (``geom`` NULL: off the map in QGIS too), its status, drives and position as they were; the exports, a run's
        matching, ``patrol status`` and the import leave it out or name where it went. A history row on each
        (from = to: no status change; ``source`` ``merged-into:<into>`` / ``merged-from:<candidate_id>``), stamped as
        ``patrol status`` stamps (``when``, default now; ``who``; ``note``).

        Refused (UsageError): an unknown id, the same id twice, ``candidate_id`` merged before (naming where it went),
        ``into`` merged into another (naming the damage it is part of now), two damages further apart than
        ``merge_max_apart_m(cfg)`` unless ``force`` (an id mistyped: R-000031 for R-000013)."""
        a, b = str(candidate_id).strip().upper(), str(into).strip().upper()
        if a == b:
            raise UsageError(f"{a}: cannot merge a candidate into itself (--into names the other candidate of the "
                             "same damage)", self.path)
        pass_r, tol = _pass_rules(cfg)
        with self._txn() as con:
            got = {r[0]: r[1:] for r in con.execute(
                "SELECT candidate_id, class, class_name_ja, status, crop_obs_id, crop_jpeg IS NOT NULL, repaired_t, "
                "merged_into FROM candidates WHERE candidate_id IN (?, ?)", (a, b))}
            for x in (a, b):
                if x not in got:
                    raise UsageError(f"unknown candidate id {x!r}", self.path)
            if got[a][6]:
                raise UsageError(f"{self.merged_text(a)}: nothing to merge (its sightings are "
                                 f"{self.final_target(a)}'s; to undo that merge: patrol merge {self.path_word} {a} "
                                 "--undo)", self.path)
            if got[b][6]:
                final = self.final_target(b)
                if final == a:
                    raise UsageError(f"{self.merged_text(b)}: already one damage (nothing to merge)", self.path)
                raise UsageError(f"{self.merged_text(b)}: merge into {final} instead (patrol merge {self.path_word} "
                                 f"{a} --into {final})", self.path)
            try:
                at, _ = self._when(when)
            except ValueError as e:
                raise UsageError(f"{a}: {e}", self.path) from None
            apart, limit = self._apart_m(a, b), merge_max_apart_m(cfg)
            if apart is not None and apart > limit and not force:
                raise UsageError(f"{a} lies {apart:.0f} m from {b}, more than {limit:.0f} m (4 × store.match_distance_m, "
                                 "at least 100 m): not one damage? Check the two ids (a mistyped id merges the wrong "
                                 "damage); --force merges them anyway", self.path)
            (cls_a, _ja_a, st_a, crop_id, has_crop, _rt_a, _m), (cls_b, ja_b, st_b, _, _, rep_t, _) = got[a], got[b]
            drives_b = {p for (d,) in con.execute("SELECT DISTINCT drive FROM observations WHERE candidate_id=?", (b,))
                        for p in d.split("|") if p}
            n_a, t_a = con.execute("SELECT COUNT(*), MAX(last_t) FROM observations WHERE candidate_id=?",
                                   (a,)).fetchone()
            drives_a = {p for (d,) in con.execute("SELECT DISTINCT drive FROM observations WHERE candidate_id=?", (a,))
                        for p in d.split("|") if p}
            # the sightings, as a run's merge keeps them: an image-level one (owner = its damage) only where the damage
            # has no sighting of that image and class, and superseded by a boxed one of it
            same = ("EXISTS (SELECT 1 FROM observations t WHERE t.candidate_id = ? AND t.{0} AND t.drive = "
                    "observations.drive AND t.image = observations.image AND t.class = observations.class)")
            boxed = "owner = ''"
            # what the undo needs (``merges``): the sightings set aside as duplicates, as they were, and those moved
            aside = self._set_aside(f"candidate_id=? AND owner=? AND {same.format('obs_id > 0')}", (a, a, b))
            moved = [i for (i,) in con.execute("SELECT obs_id FROM observations WHERE candidate_id=? ORDER BY obs_id",
                                               (a,))]
            con.execute("UPDATE observations SET owner=? WHERE candidate_id=? AND owner=?", (b, a, a))
            con.execute("UPDATE observations SET candidate_id=? WHERE candidate_id=?", (b, a))
            aside += self._set_aside(f"candidate_id=? AND owner=? AND {same.format(boxed)}", (b, b, b))
            crop = None
            if crop_id is not None and has_crop:  # its crop competes with into's for the best sighting's
                (crop,) = con.execute("SELECT crop_jpeg FROM candidates WHERE candidate_id=?", (a,)).fetchone()
                self._pending_crops[b] = {int(crop_id): bytes(crop)}
            (b_crop_id,) = con.execute("SELECT crop_obs_id FROM candidates WHERE candidate_id=?", (b,)).fetchone()
            b_crop = con.execute("SELECT crop_jpeg FROM candidates WHERE candidate_id=?", (b,)).fetchone()[0] if (
                crop is not None and b_crop_id is not None) else None
            self._recompute(b)
            replaced = b_crop is not None and con.execute(
                "SELECT crop_obs_id FROM candidates WHERE candidate_id=?", (b,)).fetchone()[0] != b_crop_id
            seq = con.execute("SELECT seq FROM sqlite_sequence WHERE name='observations'").fetchone()
            for stmt in _MERGES_SQL:  # (a registry of schema 5 made before ``merges`` existed: none in the wild)
                con.execute(stmt)
            con.execute(
                "INSERT INTO merges (candidate_id, into_id, at, obs_seq, moved, set_aside, crop_obs_id, "
                "into_crop_obs_id, crop_jpeg, into_crop_jpeg) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (a, b, at, seq[0] if seq else 0, json.dumps(moved), json.dumps(aside, ensure_ascii=False),
                 crop_id if crop is not None else None, b_crop_id if replaced else None,
                 crop, b_crop if replaced else None))
            con.execute("UPDATE candidates SET merged_into=?, merged_at=?, geom=NULL, n_obs=0, crop_jpeg=NULL, "
                        "crop_obs_id=NULL, n_passes=NULL, n_unseen=NULL, last_passed=NULL WHERE candidate_id=?",
                        (b, at, a))
            con.execute("DELETE FROM passes WHERE candidate_id=?", (a,))
            self._update_passes([b], pass_r, tol)
            n_b, nd_b = con.execute("SELECT n_obs, COALESCE(json_array_length(drives), 0) FROM candidates WHERE "
                                    "candidate_id=?", (b,)).fetchone()
            extra = f": {note}" if _s(note) else ""
            con.executemany(
                "INSERT INTO status_history (candidate_id, at, from_status, to_status, who, note, source) "
                "VALUES (?,?,?,?,?,?,?)",
                [(a, at, st_a, st_a, _s(who), f"merged into {b} ({plural(n_a, 'sighting')} moved){extra}",
                  f"merged-into:{b}"),
                 (b, at, st_b, st_b, _s(who), f"{a} merged into it ({plural(n_a, 'sighting')}, {a} was "
                                              f"{cls_a} {st_a}){extra}", f"merged-from:{a}")])
            # into repaired, a seen after the repair: reopened now, as a's drive merged after the repair would have
            reopened = None
            if (st_b == "repaired" and _isnum(t_a) and _isnum(rep_t) and float(t_a) > float(rep_t)
                    and (seen := self._seen_after(b, float(rep_t))) is not None):
                (rep_at,) = con.execute("SELECT repaired_at FROM candidates WHERE candidate_id=?", (b,)).fetchone()
                reopened = RepairSeenAfter(b, self._local(rep_at), *seen, merged=a, registry=self.path_word)
                self._reopen(b, at, reopened.note, f"merged-from:{a}",
                             who=f"patrol (the merge of {a}" + (f" by {_s(who)})" if _s(who) else ")"))
            self._touch("candidates", "observations", "status_history", "passes", "merges")
        return CandidateMerge(
            candidate_id=a, into=b, cls=cls_a, into_cls=cls_b, into_name=" ".join(x for x in (cls_b, _s(ja_b)) if x),
            status=st_a, into_status=st_b, sightings=int(n_a), drives=len(drives_a - drives_b), n_obs=int(n_b or 0),
            n_drives=int(nd_b), at=at, apart_m=apart, reopened=reopened, registry=self.path_word)

    def _set_aside(self, where: str, args: tuple) -> list[dict]:
        """Inside merge_candidates' transaction: delete the observations ``where`` and return them as they were (rows
        as dicts, by obs_id), for ``merges.set_aside``."""
        cur = self.con.execute(f"SELECT * FROM observations WHERE {where} ORDER BY obs_id", args)
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
        if rows:
            self.con.execute(f"DELETE FROM observations WHERE {where}", args)
        return rows

    def _merged_tree(self, root: str) -> set[str]:
        """``root`` and every candidate merged into it, directly or through another (their sightings are root's)."""
        kids: dict[str, list[str]] = {}
        for c, m in self.con.execute("SELECT candidate_id, merged_into FROM candidates WHERE merged_into IS NOT NULL"):
            kids.setdefault(m, []).append(c)
        out, todo = {root}, [root]
        while todo:
            for k in kids.get(todo.pop(), ()):
                if k not in out:
                    out.add(k)
                    todo.append(k)
        return out

    def _restore_aside(self, row: dict) -> None:
        """Inside unmerge_candidate's transaction: a sighting a merge set aside as a duplicate (``merges.set_aside``)
        goes back to the damage that held it (``row['candidate_id']``). Where that one was merged on since, it goes
        where that merge would have put it: to the damage it is part of now, or aside again in that merge's record
        (that damage has a sighting of the photo), so that undoing that merge too gives it back. Where a run has given
        the damage a sighting of that photo since, it stays superseded, as a run's boxed sighting supersedes it."""
        con = self.con
        h0 = row["candidate_id"]
        h = self.final_target(h0)
        has = con.execute("SELECT 1 FROM observations WHERE candidate_id=? AND drive=? AND image=? AND class=? LIMIT 1",
                          (h, row["drive"], row["image"], row["class"])).fetchone()
        rec = con.execute("SELECT moved, set_aside FROM merges WHERE candidate_id=?", (h0,)).fetchone() if (
            h != h0) else None
        if has and rec is None:
            return
        if has:
            aside = sorted(json.loads(rec[1]) + [row], key=lambda r: r["obs_id"])
            con.execute("UPDATE merges SET set_aside=? WHERE candidate_id=?", (json.dumps(aside, ensure_ascii=False), h0))
            return
        if h != h0:
            row = {**row, "candidate_id": h, "owner": h if row["owner"] else ""}
            if rec is not None:
                con.execute("UPDATE merges SET moved=? WHERE candidate_id=?",
                            (json.dumps(sorted(json.loads(rec[0]) + [row["obs_id"]])), h0))
        have = {r[1] for r in con.execute('PRAGMA table_info("observations")')}
        cols = [c for c in row if c in have]
        con.execute(f"INSERT INTO observations ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [row[c] for c in cols])

    def unmerge_candidate(self, candidate_id: str, note: str | None = None, who: str | None = None,
                          when: Any = None, cfg=None) -> "CandidateUnmerge":
        """Undo ``merge_candidates(candidate_id, …)`` (``patrol merge REGISTRY ID --undo``) in ONE transaction: the
        sightings it moved (``merges.moved``) come back from the damage they are part of now (the one it was merged
        into, or the end of its chain where that one was merged on since), with those the merge set aside as
        duplicates (``_restore_aside``); both damages are recomputed from their sightings as a run's merge does
        (``_recompute``: position, point, best sighting, crop — the crops the merges kept compete for the best
        sighting's, as a run's do; ``_update_passes``), ``merged_into``/``merged_at`` cleared, its status as its record
        kept it. Sightings runs added after the merge stay where the runs matched them (counted:
        ``CandidateUnmerge.later``). A history row on each (from = to; ``source`` ``unmerged-from:<damage>`` /
        ``unmerged:<candidate_id>``). A merge, undone, then done again gives the registry of the single merge.

        Refused (UsageError): an unknown id, one not merged, one merged without a record (``merges``), and one of
        whose sightings a run has since replaced (an image-level sighting superseded by a run's boxed sighting of the
        same photo: it cannot be given back as it was)."""
        a = str(candidate_id).strip().upper()
        pass_r, tol = _pass_rules(cfg)
        with self._txn() as con:
            row = con.execute("SELECT class, class_name_ja, status, merged_into FROM candidates WHERE candidate_id=?",
                              (a,)).fetchone()
            if row is None:
                raise UsageError(f"unknown candidate id {a!r}", self.path)
            cls, ja, st_a, into = row
            if not into:
                raise UsageError(f"{a} was not merged into another damage: nothing to undo", self.path)
            rec = con.execute("SELECT obs_seq, moved, set_aside, crop_obs_id, crop_jpeg, into_crop_obs_id, "
                              "into_crop_jpeg FROM merges WHERE candidate_id=?", (a,)).fetchone()
            if rec is None:
                raise UsageError(f"{self.merged_text(a)}: the registry has no record of which sightings were its (merged "
                                 "before patrol kept one): the merge cannot be undone", self.path)
            seq, moved_json, aside_json = rec[:3]
            final = self.final_target(a)
            moved = json.loads(moved_json)
            now_at = dict(con.execute("SELECT obs_id, candidate_id FROM observations WHERE obs_id IN "
                                      "(SELECT value FROM json_each(?))", (moved_json,)))
            lost = [i for i in moved if i not in now_at]
            if lost:
                raise UsageError(
                    f"{self.merged_text(a)}: cannot undo the merge exactly: {plural(len(lost), 'sighting')} of the "
                    f"{len(moved)} it moved {'were' if len(lost) != 1 else 'was'} since replaced by a run's boxed "
                    f"sighting of the same photo, which the run matched to {final} (the merge stands; {a}'s "
                    f"sightings are {final}'s)", self.path)
            try:
                at, _ = self._when(when)
            except ValueError as e:
                raise UsageError(f"{a}: {e}", self.path) from None
            (st_f, crop_f) = con.execute("SELECT status, crop_obs_id FROM candidates WHERE candidate_id=?",
                                         (final,)).fetchone()
            (later,) = con.execute("SELECT COUNT(*) FROM observations WHERE candidate_id=? AND obs_id > ?",
                                   (final, seq or 0)).fetchone()
            back = [i for i in moved if now_at[i] == final]  # (not those a merge into it undone since took back)
            con.execute("UPDATE candidates SET merged_into=NULL, merged_at=NULL WHERE candidate_id=?", (a,))
            con.execute("DELETE FROM merges WHERE candidate_id=?", (a,))
            con.execute("UPDATE observations SET candidate_id=?, owner=CASE WHEN owner='' THEN '' ELSE ? END WHERE "
                        "obs_id IN (SELECT value FROM json_each(?))", (a, a, json.dumps(back)))
            for r in json.loads(aside_json):
                self._restore_aside(r)
            # the crops: the merges' kept crops compete for each damage's best sighting's, as a run's do; the target's
            # own stays unless its sighting went back
            kept = [(rec[3], rec[4]), (rec[5], rec[6])]
            tree = sorted(self._merged_tree(a) | self._merged_tree(final))
            kept += [(i, c) for r in con.execute(
                "SELECT crop_obs_id, crop_jpeg, into_crop_obs_id, into_crop_jpeg FROM merges WHERE candidate_id IN "
                "(SELECT value FROM json_each(?))", (json.dumps(tree),)) for i, c in (r[:2], r[2:])]
            kept_ids = json.dumps(sorted({int(i) for i, c in kept if i is not None and c is not None}))
            where = {i: c for i, c in con.execute("SELECT obs_id, candidate_id FROM observations WHERE obs_id IN "
                                                  "(SELECT value FROM json_each(?))", (kept_ids,))}
            lost_crop = crop_f is not None and (con.execute("SELECT candidate_id FROM observations WHERE obs_id=?",
                                                            (crop_f,)).fetchone() or (None,))[0] != final
            if lost_crop:
                con.execute("UPDATE candidates SET crop_obs_id=NULL, crop_jpeg=NULL WHERE candidate_id=?", (final,))
            for rid in (a, final):
                if rid == final and not lost_crop:
                    continue
                pending = {int(i): bytes(c) for i, c in kept if i is not None and c is not None and where.get(int(i)) == rid}
                if pending:
                    self._pending_crops[rid] = pending
            self._recompute(a)
            self._recompute(final)
            self._update_passes(sorted({a, final}), pass_r, tol)
            (n_a, nd_a), (n_f, nd_f) = [con.execute(
                "SELECT n_obs, COALESCE(json_array_length(drives), 0) FROM candidates WHERE candidate_id=?",
                (c,)).fetchone() for c in (a, final)]
            extra = f": {note}" if _s(note) else ""
            via = f", merged into {into}" if into != final else ""
            con.executemany(
                "INSERT INTO status_history (candidate_id, at, from_status, to_status, who, note, source) "
                "VALUES (?,?,?,?,?,?,?)",
                [(a, at, st_a, st_a, _s(who), f"merge into {into} undone ({plural(n_a, 'sighting')} back from "
                                             f"{final}){extra}", f"unmerged-from:{final}"),
                 (final, at, st_f, st_f, _s(who), f"{a}{via} is its own damage again ({plural(n_a, 'sighting')} "
                                                  f"back to {a}){extra}", f"unmerged:{a}")])
            reopen = self._unreopen(a, into, final, at, a, who)
            # into merged on since: each damage along the chain that the merge below it reopened (a's sightings among
            # those seen after its repair) is taken back as well where none of its own sightings is after the repair
            chain, child, d = [], into, into
            while d != final and (m := self.merged_into(d)) is not None:
                child, d = d, m[0]
                if (line := self._unreopen(child, d, final, at, a, who, quiet=True)) is not None:
                    chain.append(line)
            self._touch("candidates", "observations", "status_history", "passes", "merges")
        return CandidateUnmerge(
            candidate_id=a, into=into, final=final, name=" ".join(x for x in (cls, _s(ja)) if x), status=st_a,
            final_status=st_f, sightings=int(n_a or 0), drives=int(nd_a), n_obs=int(n_f or 0), n_drives=int(nd_f),
            later=int(later), at=at, reopen=reopen, chain_reopens=tuple(chain))

    def _unreopen(self, a: str, into: str, final: str, at: str, undone: str, who: str | None = None,
                  quiet: bool = False) -> str | None:
        """Inside unmerge_candidate's transaction (the merge of ``undone`` undone, its sightings back): where ``a``'s
        merge reopened ``into`` (``merge_candidates``: a history row ``repaired -> reopened`` of ``source``
        ``merged-from:<a>`` after its merge row) and nothing changed its status since, the reopen is taken back when no
        sighting after the repair date stays ``into``'s (``into`` merged on since into ``final``: its own sightings,
        those its merge moved that are still ``final``'s — its status is its record's, as the undo of its merge
        gives it back): ``repaired`` again, ``status_changed_at`` that of the change before the reopen (the repair's:
        the registry as before the merge), a history row ``reopened -> repaired`` (``source`` ``unmerged:<undone>``: the
        reopen row stays, a list exported while it was reopened names it). ``a`` is ``undone``, or (``quiet``) a
        damage further up ``undone``'s chain whose merge reopened the next one. Returns the line for the undo's notes
        (None: the merge reopened nothing, or the reopen was taken back before; ``quiet``: None unless taken back
        now)."""
        con = self.con
        src = f"merged-from:{a}"
        m = con.execute("SELECT MAX(hid) FROM status_history WHERE candidate_id=? AND source=? AND from_status = "
                        "to_status", (into, src)).fetchone()[0]
        row = con.execute("SELECT hid, note FROM status_history WHERE candidate_id=? AND source=? AND hid > ? AND "
                          "from_status='repaired' AND to_status='reopened' ORDER BY hid LIMIT 1",
                          (into, src, m or 0)).fetchone() if m is not None else None
        if row is None:
            return None
        hid, why = row
        changes = "candidate_id=? AND (from_status IS NULL OR from_status != to_status)"
        (last,) = con.execute(f"SELECT MAX(hid) FROM status_history WHERE {changes}", (into,)).fetchone()
        cur, rep_at, rep_t = con.execute("SELECT status, repaired_at, repaired_t FROM candidates WHERE candidate_id=?",
                                         (into,)).fetchone()
        if last != hid and cur == "repaired" and con.execute(
                "SELECT 1 FROM status_history WHERE hid=? AND from_status='reopened' AND to_status='repaired' AND "
                "source LIKE 'unmerged:%'", (last,)).fetchone():
            return None  # (taken back already: by the undo of a merge further down the chain)
        if last != hid or cur != "reopened":
            return None if quiet else (
                f"the merge had reopened {into} ({why}); its status changed since ({status_label(cur)}): it stays "
                f"{status_label(cur)} (patrol status {self.path_word} {final} --set …)")
        seen = self._own_seen_after(into, final, float(rep_t)) if _isnum(rep_t) else None
        if seen is not None:
            if quiet:
                return None
            still = RepairSeenAfter(into, self._local(rep_at), *seen)
            return (f"the merge had reopened {into} ({why}); it stays {status_label('reopened')}: {still.note} (a "
                    f"sighting not {a}'s)")
        before = con.execute(f"SELECT at FROM status_history WHERE {changes} AND hid < ? ORDER BY hid DESC LIMIT 1",
                             (into, hid)).fetchone()
        con.execute("UPDATE candidates SET status='repaired', status_changed_at=? WHERE candidate_id=?",
                    (before[0] if before else rep_at, into))
        note = (f"the reopen by the merge of {a} taken back ({why}; {undone}'s sightings are its own again)")
        by = f"patrol (the undo of the merge of {undone}" + (f" by {_s(who)})" if _s(who) else ")")
        con.execute("INSERT INTO status_history (candidate_id, at, from_status, to_status, who, note, source) "
                    "VALUES (?,?,'reopened','repaired',?,?,?)", (into, at, by, note, f"unmerged:{undone}"))
        part = f" (part of {final}: its status is its own record's)" if into != final else ""
        return (f"{into} is {status_label('repaired')} again{part}: the merge {'' if a == undone else f'of {a} '}had "
                f"reopened it ({why}), the undo takes the reopen back (no sighting after the repair of "
                f"{self._local(rep_at)} now)")

    def _own_seen_after(self, cid: str, final: str, at_t: float) -> tuple[str, str | None] | None:
        """``_seen_after`` for ``cid``'s own sightings: its own where it is a damage of its own (``cid == final``), else
        those its merge moved (``merges.moved``: its own and those of the damages merged into it before) that are
        still ``final``'s (not those an undo since gave back)."""
        if cid == final:
            return self._seen_after(cid, at_t)
        rec = self.con.execute("SELECT moved FROM merges WHERE candidate_id=?", (cid,)).fetchone()
        row = self.con.execute(
            "SELECT last_t, drive FROM observations WHERE candidate_id=? AND obs_id IN (SELECT value FROM json_each(?)) "
            "AND last_t > ? ORDER BY last_t DESC, obs_id LIMIT 1", (final, rec[0] if rec else "[]", at_t)).fetchone()
        if row is None:
            return None
        when = datetime.fromtimestamp(float(row[0]), self.tz).strftime("%Y-%m-%d %H:%M")
        return when, (row[1].replace("|", ", ") if row[1] else None)

    # ------------------------------------------------------------------------------------- statuses
    def set_status(self, candidate_id: str, status: str, note: str | None = None, who: str | None = None,
                   when: Any = None, issue_type: str | None = None, seen: list | None = None,
                   job: str | None = None) -> bool:
        """Change one candidate's status (one transaction).  Returns False when it already had it; a new note,
        checker or issue type given with the status it has is still kept (and a history row), as the import does.
        The id is taken whatever its case (``r-000012``), as ``merge_candidates`` and the import take it.
        A repair dated (``when``) before a sighting held is recorded and reopened at once; ``seen`` gets its
        ``RepairSeenAfter`` (see ``_set_status``). ``job`` (``patrol status REGISTRY 工区-003 --set …``): the repair job
        the change is made as; the history row's note says it (``job_note``: ``工区-003``, ``工区-003: <note>`` with a
        note), the damage's own note (``status_note``, the lists' 備考) is ``note`` as given (none: it keeps its own)."""
        candidate_id = str(candidate_id).strip().upper()
        said = job_note(job, note)  # the history's note (the note itself without a job)
        with self._txn():
            if (merged := self.merged_text(candidate_id)) is not None:
                final = self.final_target(candidate_id)
                raise UsageError(f"{merged}: its status is {final}'s (patrol status {self.path_word} {final} "
                                 "--set …)",
                                 self.path)
            if self._set_status(candidate_id, status, note, who, when, issue_type, source="manual", seen=seen,
                                said=said):
                return True
            cur = self.status_of(candidate_id)
            (n0, w0, i0) = self.con.execute("SELECT status_note, checked_by, issue_type FROM candidates "
                                            "WHERE candidate_id=?", (candidate_id,)).fetchone()
            if (note and note != (n0 or "")) or (who and who != (w0 or "")) or (issue_type and issue_type != (i0 or "")):
                try:
                    self._annotate(candidate_id, cur, note or None, who or None, issue_type or None, when, "manual",
                                   said=said)
                except ValueError as e:
                    raise UsageError(f"{candidate_id}: {e}", self.path) from None
            return False

    def passes_of(self, candidate_id: str) -> list[tuple]:
        """A damage's passes as held (``passes``), latest first: (drive, time, distance_m, sighted, look), the look
        None for a frame that could show the road (or one recorded before the look was measured), else dark / glare
        / blurred (``POOR_LOOK_COLUMN`` counts those not sighted). [] where the registry keeps none (schema 3)."""
        if not self._has_column("passes", "candidate_id"):
            return []
        look = "look" if self._has_column("passes", "look") else "NULL"
        return self.con.execute(f"SELECT drive, time, distance_m, sighted, {look} FROM passes WHERE candidate_id=? "
                                "ORDER BY t IS NULL, t DESC, drive", (candidate_id,)).fetchall()

    def status_of(self, candidate_id: str) -> str | None:
        """The stored status of a candidate (None: no such id)."""
        row = self.con.execute("SELECT status FROM candidates WHERE candidate_id=?", (candidate_id,)).fetchone()
        return row[0] if row else None

    def status_note_now(self, candidate_id: str) -> str | None:
        """The note of a candidate's current status, as ``patrol status REGISTRY ID`` heads it: its ``status_note``
        (the crew's or the office's, kept from one status to the next as they move it along), but for a damage
        patrol reopened (a drive that saw it after the repair, a repair dated before a sighting, a merge) the
        reopen's own reason (its history row ``repaired -> reopened``: ``seen … after the repair of …``) unless a
        note was given since: the kept note was the repair's, not the reopen's (``_reopen`` leaves it for the lists,
        whose note column is the crew's own). None: no note (or no such id)."""
        row = self.con.execute("SELECT status, status_note FROM candidates WHERE candidate_id=?",
                               (candidate_id,)).fetchone()
        if row is None:
            return None
        status, note = row[0], _s(row[1])
        if status != "reopened":
            return note
        reopen = self.con.execute("SELECT hid, note FROM status_history WHERE candidate_id=? AND to_status='reopened' "
                                  "AND from_status IS NOT 'reopened' AND source NOT LIKE 'unimport:%' "  # (an undo's)
                                  "ORDER BY hid DESC LIMIT 1",
                                  (candidate_id,)).fetchone()
        if reopen is None:  # (a history without its reopen: the candidate's note as it is)
            return note
        given = note is not None and self.con.execute(  # a note a crew or the office gave the reopened damage
            "SELECT 1 FROM status_history WHERE candidate_id=? AND hid>? AND note=?",
            (candidate_id, reopen[0], note)).fetchone() is not None
        return note if given else _s(reopen[1])

    def _set_status(self, candidate_id: str, status: str, note, who, when, issue_type, source: str,
                    seen: list | None = None, said: str | None = None) -> bool:
        """Change a status along ``TRANSITIONS`` (a history row); False: it had that status. A repair dated (``when``
        given; not one stamped with the clock's time) before a sighting the registry already holds is recorded and then reopened at once, as a drive merged after the repair
        would have (a history row ``repaired -> reopened`` of the same ``source``, its note naming the sighting and
        the repair date); a repair of the same date as the one a later sighting reopened changes nothing (False: the
        same list imported again). Such a repair is appended to ``seen`` (``RepairSeenAfter``). ``said``: the history
        row's note where it is not ``note`` (``job_note``: the repair job the change was made as)."""
        status = normalize_status(status)
        if status not in STATUSES:
            raise UsageError(f"{candidate_id}: unknown status {status!r}; expected {CREW_STATUSES_TEXT}", self.path)
        row = self.con.execute("SELECT status FROM candidates WHERE candidate_id=?", (candidate_id,)).fetchone()
        if row is None:
            raise UsageError(f"unknown candidate id {candidate_id!r}", self.path)
        cur = row[0]
        if status == cur:
            return False
        if status not in TRANSITIONS.get(cur, ()):
            allowed = ", ".join(sorted(TRANSITIONS.get(cur, ()))) or "none"
            raise UsageError(f"{candidate_id}: transition {cur} -> {status} not allowed (from {cur}: {allowed})",
                             self.path)
        try:
            at, at_t = self._when(when)
        except ValueError as e:
            raise UsageError(f"{candidate_id}: {e}", self.path) from None
        # a repair dated by the crew or the office (not the clock's time: a sighting after now is a clock off)
        dated = when is not None and not (isinstance(when, str) and not when.strip())
        after = self._seen_after(candidate_id, at_t) if status == "repaired" and dated else None
        if after is not None and cur == "reopened":
            (rep_t,) = self.con.execute("SELECT repaired_t FROM candidates WHERE candidate_id=?",
                                        (candidate_id,)).fetchone()
            if _isnum(rep_t) and abs(float(rep_t) - at_t) < 1:
                # the repair it was reopened after, again (a list imported twice): still seen after it
                if seen is not None:
                    seen.append(RepairSeenAfter(candidate_id, self._local(at), *after, again=True,
                                                registry=self.path_word))
                return False
        sets = ["status=?", "status_changed_at=?"]
        vals: list[Any] = [status, at]
        if note:  # without a new note the candidate keeps its note (a crew's words about the damage), as a cell would
            sets.append("status_note=?")
            vals.append(str(note))
        if who:
            sets.append("checked_by=?")
            vals.append(str(who))
        if issue_type:
            sets.append("issue_type=?")
            vals.append(str(issue_type))
        if status == "repaired":
            sets += ["repaired_at=?", "repaired_t=?"]
            vals += [at, at_t]
        self.con.execute(f"UPDATE candidates SET {', '.join(sets)} WHERE candidate_id=?", (*vals, candidate_id))
        self.con.execute(
            "INSERT INTO status_history (candidate_id, at, from_status, to_status, who, note, issue_type, source) "
            "VALUES (?,?,?,?,?,?,?,?)", (candidate_id, at, cur, status, _s(who), _s(said or note), _s(issue_type),
                                         source))
        if after is not None:
            # seen after the repair date by a drive the registry already holds: reopened now, as a merge of that drive
            # after the repair would have (repaired_at and the crew's note stay; the history keeps the repair)
            rs = RepairSeenAfter(candidate_id, self._local(at), *after, registry=self.path_word)
            stamp = max(self._now().replace(microsecond=0), datetime.fromisoformat(at))
            self._reopen(candidate_id, stamp.isoformat(), rs.note, source,
                         who="patrol (the repair" + (f" by {_s(who)}" if _s(who) else "") + " dated before a sighting)")
            if seen is not None:
                seen.append(rs)
        self._touch("candidates", "status_history")
        return True

    def _reopen(self, candidate_id: str, at: str, note: str, source: str, run_id: str | None = None,
                who: str | None = None) -> None:
        """A repaired damage seen after its repair date, reopened at ``at`` (a drive merged after the repair, ``run_id``
        its run; ``RepairSeenAfter``: a repair dated before a sighting held, or a merge of a damage seen after it):
        status ``reopened``, ``status_changed_at``, a history row ``repaired -> reopened`` (``note``: why; ``who``: what
        made the change, ``patrol (…)``, as the audit trail names it: ``_run_who``, the merge's or the repair's).
        ``repaired_at`` and the crew's note stay; the history keeps the repair."""
        self.con.execute("UPDATE candidates SET status='reopened', status_changed_at=? WHERE candidate_id=?",
                         (at, candidate_id))
        self.con.execute(
            "INSERT INTO status_history (candidate_id, at, from_status, to_status, who, note, source, run_id) "
            "VALUES (?,?,'repaired','reopened',?,?,?,?)", (candidate_id, at, who, note, source, run_id))

    def _seen_after(self, candidate_id: str, at_t: float) -> tuple[str, str | None] | None:
        """The damage's latest sighting held, where it is after ``at_t`` (a repair's unix seconds: a date's are the
        end of its day, as ``merge`` compares them): (its time as the messages show it, its drive); else None."""
        row = self.con.execute("SELECT last_t FROM candidates WHERE candidate_id=?", (candidate_id,)).fetchone()
        if row is None or not _isnum(row[0]) or not float(row[0]) > at_t:
            return None
        drive = self.con.execute("SELECT drive FROM observations WHERE candidate_id=? AND last_t IS NOT NULL "
                                 "ORDER BY last_t DESC, obs_id LIMIT 1", (candidate_id,)).fetchone()
        when = datetime.fromtimestamp(float(row[0]), self.tz).strftime("%Y-%m-%d %H:%M")
        return when, (drive[0].replace("|", ", ") if drive and drive[0] else None)

    def _annotate(self, candidate_id: str, status: str, note, who, issue_type, when, source: str,
                  said: str | None = None) -> None:
        """A note / checker / issue type without a status change (kept, with a history row from = to; ``said``: its
        note where it is not ``note``, as for ``_set_status``)."""
        at, _ = self._when(when)
        sets, vals = [], []
        for col, v in (("status_note", note), ("checked_by", who), ("issue_type", issue_type)):
            if v:
                sets.append(f"{col}=?")
                vals.append(str(v))
        self.con.execute(f"UPDATE candidates SET {', '.join(sets)} WHERE candidate_id=?", (*vals, candidate_id))
        self.con.execute(
            "INSERT INTO status_history (candidate_id, at, from_status, to_status, who, note, issue_type, source) "
            "VALUES (?,?,?,?,?,?,?,?)", (candidate_id, at, status, status, _s(who), _s(said or note), _s(issue_type),
                                         source))
        self._touch("candidates", "status_history")

    def _already_applied(self, cid: str, cur: str, code: str, ja: str, exported_at: str = "",
                         today: date | None = None) -> bool:
        """Whether a crew's row whose status columns disagree (``code``, ``ja``: one of them edited) names the
        candidate's last status change, which left it ``cur``: that change is already in the registry.

        ``exported_at``: the row's ``status_changed_at`` (状態更新日時) as exported. Where it is the time of that
        last change, the list was exported after it, both columns then said ``cur``, and the other one is the crew's
        word (scheduled, and the crew writes 確認済み back: the works were called off), not a list imported again."""
        if code == ja or cur not in (code, ja):
            return False
        # the status changes, latest first (a candidate's first row, from NULL, is when it was created)
        two = self.con.execute("SELECT from_status, to_status, at, source FROM status_history WHERE candidate_id=? "
                               "AND (from_status IS NULL OR from_status != to_status) ORDER BY hid DESC LIMIT 2",
                               (cid,)).fetchall()
        if not two or two[0][0] is None or two[0][1] != cur or {two[0][0], two[0][1]} != {code, ja}:
            return False
        if str(two[0][3]).startswith("unimport:"):
            # that change was an import's undo (``undo_import``): the damage is as before the import, and the list
            # imported again is a fresh import (without this, the crew's edit read as the import undone)
            return False
        if exported_at and len(two) == 2:
            # exported after that change: the row's time is its time, not the one before (the same second, or
            # minute where Excel re-saved the cell to the minute, cannot tell: taken as imported before)
            after = self._same_time_text(exported_at, two[0][2], today)
            return not (after and not self._same_time_text(exported_at, two[1][2], today))
        return True

    # ---- a list exported before the registry changed the damage (import_verification)
    def _same_time(self, got: date | datetime, stored: Any, minutes: bool = True) -> bool:
        """Whether a list's time cell (parsed: :func:`_parse_when`) is the registry's stored time ``stored``, to the
        precision the cell has: to the second (within 1 s: a workbook's serial read back may be a hair off), to the
        minute where the cell has no seconds (a CSV Excel saved as ``2026/11/20 17:05``; ``minutes``: the cell's text
        has no seconds field, so that a time written at 17:05:00 is not taken for a minute's), to the day for a date."""
        s = self._aware(_s(stored))
        if s is None:
            return False
        s = s.astimezone(self.tz)
        if not isinstance(got, datetime):
            return s.date() == got
        g = got.replace(tzinfo=self.tz) if got.tzinfo is None else got.astimezone(self.tz)
        if abs((g - s).total_seconds()) < 1:
            return True
        return minutes and g.second == 0 and g.microsecond == 0 and s.replace(second=0, microsecond=0) == g

    def _since_export(self, cid: str, changed_now: Any, text: str, now: datetime) -> tuple[str | None, list[tuple]]:
        """(the status the list was exported with, the status changes the registry made after it) for a row whose
        ``status_changed_at`` (状態更新日時, written by the exports: when the damage's status last changed) reads
        ``text``. Nothing since: the registry's ``status_changed_at`` (``changed_now``) is the row's. Else the
        changes after the history row the row's time names (every change moves ``status_changed_at``), or, where
        none does (a cell edited, a history begun later), those stamped after it; the status exported is then the
        first one's ``from`` (None: unknown). Raises ValueError for a cell that is no time."""
        got, minutes = _parse_when(text, now.date()), not _HAS_SECONDS.search(str(text))
        if self._same_time(got, changed_now, minutes):
            return None, []
        hist = self.con.execute(
            "SELECT hid, at, from_status, to_status, who, note, source, run_id FROM status_history WHERE candidate_id=? "
            "AND (from_status IS NULL OR from_status != to_status) ORDER BY hid", (cid,)).fetchall()
        at = [k for k, h in enumerate(hist) if self._same_time(got, h[1], minutes)]
        if at:
            return hist[at[-1]][3], hist[at[-1] + 1:]
        g = (got if isinstance(got, datetime) else datetime.combine(got + timedelta(days=1), time(0)))
        g = g.replace(tzinfo=self.tz) if g.tzinfo is None else g
        later = [h for h in hist if (self._aware(h[1]) or g) > g]
        return (later[0][2] if later else None), later

    def _local(self, stored: Any) -> str:
        """A stored time as the crew's messages show it: ``2026-11-24 10:15``, a date (its 00:00) as ``2026-11-24``."""
        t = self._aware(_s(stored))
        if t is None:
            return str(stored)
        t = t.astimezone(self.tz)
        return t.strftime("%Y-%m-%d") if t.time() == time(0) else t.strftime("%Y-%m-%d %H:%M")

    def _same_time_text(self, text: str, stored: Any, today: date | None) -> bool:
        """Whether a list's time cell ``text`` is the stored time (False: empty, or not a time); ``today``: the day
        a date without a year is read against."""
        try:
            return bool(text) and self._same_time(_parse_when(text, today), stored, not _HAS_SECONDS.search(text))
        except ValueError:
            return False

    def _hold(self, cid: str, cur: str, exported: str | None, crew: list[str], done: str, row: list[str], get,
              name: str, now: datetime) -> str:
        """A crew's row not applied because the registry changed the damage after the list was exported: its words
        kept in the history (a row ``cur -> cur``, ``source`` ``import-held:<file>``: once, however often the list
        is imported), and the import's line for it, naming the registry's changes and all the crew wrote."""
        wrote = []
        if len(crew) == 1:
            wrote.append(status_label(crew[0]) if crew[0] in STATUSES else repr(crew[0]))
        else:
            wrote.append(f"two statuses, {get(row, 'status')!r} in 状態 (status) and {get(row, 'status_ja')!r} in "
                         "状態(和) (status_ja)")
        for col, label in (("checked_at", "checked at"), ("repaired_at", "repaired at"), ("note", "note"),
                           ("status_note", "note"), ("checked_by", "checked by"), ("issue_type", "issue type")):
            v = get(row, col)
            if v and not (col == "repaired_at" and self._same_time_text(v, self.con.execute(
                    "SELECT repaired_at FROM candidates WHERE candidate_id=?", (cid,)).fetchone()[0], now.date())):
                wrote.append(f"{label} {v!r}")
        words = ", ".join(wrote)
        note = f"held, not applied (changed in the registry since the list was exported): the crew wrote {words}"
        who, issue, source = get(row, "checked_by") or None, get(row, "issue_type") or None, f"import-held:{name}"
        if not self.con.execute("SELECT 1 FROM status_history WHERE candidate_id=? AND source=? AND note=? LIMIT 1",
                                (cid, source, note)).fetchone():
            self.con.execute(
                "INSERT INTO status_history (candidate_id, at, from_status, to_status, who, note, issue_type, source) "
                "VALUES (?,?,?,?,?,?,?,?)", (cid, now.isoformat(), cur, cur, who, note, issue, source))
            self._touch("status_history")
        if len(crew) == 1 and crew[0] in TRANSITIONS.get(cur, ()):
            hint = f"to apply it: patrol status {self.path_word} {cid} --set {crew[0]}"
        elif len(crew) == 1 and crew[0] in STATUSES:
            hint = f"{cur} -> {crew[0]} is not allowed (from {cur}: {', '.join(sorted(TRANSITIONS.get(cur, ()))) or 'none'})"
        else:
            hint = "the office decides"
        was = f" ({status_label(exported)} in the list)" if exported else ""
        return (f"{cid}: not applied: the registry changed the damage after the list was exported{was}: {done}; now "
                f"{status_label(cur)}. The crew wrote {words} (kept in the registry's history); {hint}")

    def _repair_date_kept(self, rep: ImportReport, line: int, cid: str, cur: tuple, row: list[str], get, ix: dict,
                          words: list[str], now: datetime) -> None:
        """A crew's row marking repaired a damage the registry holds repaired already, with a repair date of its own
        (補修日 other than the stored one; or 確認日 on 補修済み written over a list exported before that repair): the
        registry's repair date stays (a row of the status the damage has changes no status or date), and
        ``rep.repair_date_kept`` names both days, so the crew's date is not dropped unsaid."""
        day, col = get(row, "repaired_at"), "補修日 repaired_at"
        if day and self._same_time_text(day, cur[7], now.date()):
            day = ""
        if not day and "repaired" in words and get(row, "checked_at") and get(row, "status_changed_at") and \
                not self._same_time_text(get(row, "status_changed_at"), cur[5], now.date()):
            day, col = get(row, "checked_at"), "確認日 checked_at"  # exported before the repair: the crew's day of it
        if not day or not cur[7] or self._same_time_text(day, cur[7], now.date()):
            return
        h = self.con.execute("SELECT hid, at, from_status, to_status, who, note, source, run_id FROM status_history "
                             "WHERE candidate_id=? AND to_status='repaired' ORDER BY hid DESC LIMIT 1", (cid,)).fetchone()
        by = f" ({self._changes_text([h])})" if h else ""
        rep.repair_date_kept.append((line, f"{cid}: the crew's repair date {day} ({col}) not taken: the registry has it "
                                           f"repaired on {self._local(cur[7])} already{by}: {self._local(cur[7])} "
                                           "kept (a row of the status a damage has changes no status or date)"))

    def _changes_text(self, since: list[tuple]) -> str:
        """The registry's status changes since a list was exported, as the import reports them:
        ``scheduled -> not_an_issue (対象外) 2026-11-24 10:15 by patrol status (office, 'manhole')``."""
        out = []
        for _hid, at, fr, to, who, note, source, run_id in since:
            by, who = _how_who(source, run_id, who)
            extra = ", ".join(x for x in (who, repr(note) if _s(note) else None) if x)
            out.append(f"{fr} -> {status_label(to)} {self._local(at)} by {by}" + (f" ({extra})" if extra else ""))
        return "; ".join(out)

    def _event_t(self, change: tuple, last_t: Any) -> float:
        """When a registry change happened, for the crew's repair to count as newer: a reopen, the damage's latest
        sighting (the drive saw it then; merged later, or held when a repair dated before it was recorded); a time
        stamped 00:00 (a crew's date), the end of that day."""
        _hid, at, _fr, to, _who, _note, _source, _run = change
        if to == "reopened" and _isnum(last_t):
            return float(last_t)
        t = self._aware(_s(at))
        if t is None:
            return math.inf
        t = t.astimezone(self.tz)
        return (t + timedelta(days=1)).timestamp() if t.time() == time(0) else t.timestamp()

    @staticmethod
    def _row_for(row: list[str], ix: dict[str, int], was: tuple, status: str) -> list[str]:
        """A crew's row of a damage merged into another, as that one's row: the status columns as exported (the
        merged damage's status ``was[0]``, which the merge left as it was) read as the other's ``status`` (the crew did
        not change it); a status the crew wrote stays. Its note, checker and issue type where they are the merged
        damage's own (exported with it), left out: not the crew's word about the other."""
        row = list(row) + [""] * (max(ix.values()) + 1 - len(row))
        words = {c: normalize_status(row[ix[c]].strip()) for c in ("status", "status_ja") if c in ix and row[ix[c]].strip()}
        crew = sorted({w for w in words.values() if w != was[0]})
        if len(crew) <= 1:
            row[ix["status"]] = crew[0] if crew else status
            if "status_ja" in ix:
                row[ix["status_ja"]] = ""
        for col, k in (("note", 1), ("status_note", 1), ("checked_by", 2), ("issue_type", 3)):
            if col in ix and row[ix[col]].strip() == (was[k] or ""):
                row[ix[col]] = ""
        return row

    def history(self, candidate_id: str | None = None) -> pd.DataFrame:
        q = "SELECT candidate_id, at, from_status, to_status, who, note, issue_type, source, run_id FROM status_history"
        args: tuple = ()
        if candidate_id is not None:
            q += " WHERE candidate_id=?"
            args = (candidate_id,)
        return pd.read_sql_query(q + " ORDER BY hid", self.con, params=args)

    def import_verification(self, csv_path: str | Path, now: datetime | None = None) -> ImportReport:
        """Take back a repair list a crew filled in; all valid rows applied in ONE transaction.

        Reads CSV (UTF-8 with or without BOM, or Shift_JIS/cp932 as Japanese Excel saves "CSV (comma
        delimited)") and the .xlsx that `patrol export --format xlsx` writes (sheet ``candidates``; its
        two-line headers are matched by their English line, e.g. ``status note`` = ``status_note``), and the photo
        ledger (``--format ledger``, sheet ``ledger``): each block read as a list's row (``ledger.read_blocks``: ID,
        状態 as ``status``, 備考, 確認者, 確認日 and its hidden ``status_changed_at``), named ``block 4 (R-000007)``
        in the report (``ImportReport.at``); a block edited out of shape is not applied (``unmatched``), the rest are.

        ``now``: the time of the import (default: the clock), the day a ``checked_at`` without a year (``11/26``)
        is read against, not before the damage's first sighting (:func:`_parse_when`); an empty one is the clock's
        time of the row's change."""
        now = (now or self._now()).astimezone(self.tz).replace(microsecond=0)
        csv_path = Path(csv_path)
        # "status (ja)" (the xlsx's English header line) -> status_ja, "candidate id" -> candidate_id
        from .export import header_key  # the same key road_field_names checks kept road fields against
        from .export import unguard

        # the exports' (and report.html's list's) formula guard taken off: a note '=1+1 as written, =1+1
        table = _read_table(csv_path)
        rows = [[unguard(c) for c in r] for r in table.rows]
        if table.what == "ledger" and not (table.lines or table.bad):
            raise InputError("a photo ledger without a damage's block (sheet ledger: no 番号 No. / ID id labels in "
                             "column C)", csv_path)
        if not rows:
            raise InputError("empty file: expected a header with candidate_id and status", csv_path)

        head = [header_key(h) for h in rows[0]]
        jobs = None
        job_of: dict[int, str] = {}  # a jobs list's row -> its job id (the history's note names it: job_note)
        if "candidate_id" not in head:
            # a jobs list (`patrol export --format jobs`: job_id, candidate_ids) filled in: each row applied to every
            # damage of its job, as that damage's row of a repair list (the same checks, dating, stale-list rule)
            from .jobs import crew_rows

            got = crew_rows(rows, table.lines, header_key)
            if got is not None:
                rows, lines, where, jobs, job_of = got
                table = CrewTable(rows, lines, "jobs list", {**table.where, **where}, table.bad, table.notes)
                head = rows[0]
        for need in ("candidate_id", "status"):
            if need not in head:  # (a list headed 候補ID, 状態 only: the import reads the English headings)
                shown = ", ".join(" ".join(str(h).split()) for h in rows[0][:12]) + (" …" if len(rows[0]) > 12 else "")
                raise InputError(f"no column {need}: the import reads the headings patrol export writes "
                                 f"(candidate_id, status, note, checked_by, checked_at …; a workbook's English line); "
                                 f"its columns: {shown or '(none)'}", csv_path)
        ix = {h: k for k, h in reversed(list(enumerate(head)))}

        def get(row: list[str], col: str) -> str:
            k = ix.get(col)
            return row[k].strip() if k is not None and k < len(row) else ""

        rep = ImportReport(what=table.what, where=dict(table.where), notes=list(table.notes),
                           unmatched=list(table.bad), jobs=jobs)
        lines = table.lines if table.lines is not None else range(2, len(rows) + 1)
        with self._txn() as con:
            # what the import's record keeps (``_record_import``): its history rows, each damage as it was before
            (hid0,) = con.execute("SELECT COALESCE(MAX(hid), 0) FROM status_history").fetchone()
            was: dict[str, tuple] = {}
            undone = self.undone_history_rows()  # an import undone: what it applied is not "taken before"
            for line, row in zip(lines, rows[1:]):
                if not row or all(not c.strip() for c in row):
                    continue
                cid, status, status_ja = get(row, "candidate_id").upper(), get(row, "status"), get(row, "status_ja")
                note = get(row, "note") or get(row, "status_note")  # the repair list's column / `patrol export`'s
                who, issue = get(row, "checked_by"), get(row, "issue_type")
                if not (status or status_ja or note or who or issue):
                    if not (rep.skipped and rep.skipped[-1] == line):  # (a job's damages: one row)
                        rep.skipped.append(line)
                    continue
                if not cid:
                    rep.unmatched.append((line, "empty candidate_id"))
                    continue
                cur = con.execute("SELECT status, status_note, checked_by, issue_type, first_t, status_changed_at, "
                                  "last_t, repaired_at FROM candidates WHERE candidate_id=?", (cid,)).fetchone()
                if cur is None:
                    rep.unmatched.append((line, f"unknown candidate id {cid!r}"))
                    continue
                future = None  # a date after today (a typed 2062 for 2026): the row is refused, as `status --at` is
                for col in ("checked_at", "repaired_at", "status_changed_at"):
                    try:
                        if get(row, col):
                            parse_change_time(get(row, col), now)
                    except FutureDateError as e:
                        future = f"{cid}: {col} {e}"
                        break
                    except ValueError:  # (unreadable: each column's own check says so below)
                        pass
                if future is not None:
                    rep.unmatched.append((line, future))
                    continue
                if (merged := self.merged_text(cid)) is not None:
                    # the office merged it into another damage after the list was exported: the crew's words go to
                    # that one, whose own changes since the list decide as for its own row (applied, held, outdated)
                    final = self.final_target(cid)
                    row = self._row_for(row, ix, cur, con.execute("SELECT status FROM candidates WHERE candidate_id=?",
                                                                  (final,)).fetchone()[0])
                    rep.merged.append((line, f"{merged}: the row is taken as {final}'s"))
                    cid = final
                    status, status_ja = get(row, "status"), get(row, "status_ja")
                    note = get(row, "note") or get(row, "status_note")
                    who, issue = get(row, "checked_by"), get(row, "issue_type")
                    cur = con.execute("SELECT status, status_note, checked_by, issue_type, first_t, status_changed_at, "
                                      "last_t, repaired_at FROM candidates WHERE candidate_id=?", (cid,)).fetchone()
                if cid not in was:  # (before this import changes it: a damage may have two rows, a job's and its own)
                    was[cid] = self._import_state(cid)
                first = datetime.fromtimestamp(cur[4], self.tz).date() if _isnum(cur[4]) else None
                st = normalize_status(status) if status else cur[0]
                words = [w for w in (normalize_status(status) if status else None,
                                     normalize_status(status_ja) if status_ja else None) if w]
                again = bool(status and status_ja) and self._already_applied(cid, cur[0], *words,
                                                                            get(row, "status_changed_at"), now.date())
                since: list[tuple] = []
                if get(row, "status_changed_at") and any(w != cur[0] for w in words) and not again:
                    # the row asks for another status than the registry's: did the registry change the damage after
                    # the list was exported? (the office's `patrol status`, a drive that reopened it, another list)
                    try:
                        exported, since = self._since_export(cid, cur[5], get(row, "status_changed_at"), now)
                    except ValueError as e:
                        rep.unmatched.append((line, f"{cid}: status_changed_at {e}: cannot tell whether the registry "
                                                    "changed the damage after the list was exported; not applied"))
                        continue
                if since:
                    # the crew's word: a status column that differs from the status exported (None: not known)
                    crew = sorted({w for w in words if w != exported})
                    # the day a crew gives a repair: 補修日 (repaired_at) where not as exported, else 確認日 (checked_at),
                    # as for a row applied below
                    day = (get(row, "repaired_at") if not self._same_time_text(get(row, "repaired_at"), cur[7],
                                                                              now.date()) else "") or get(row, "checked_at")
                    if not crew and exported == "repaired" and day:
                        crew = ["repaired"]  # repaired again, as the list said, on a day the crew wrote (reopened since)
                    done = self._changes_text(since)
                    left = f"left {status_label(cur[0])}"
                    if len(crew) == 1 and crew[0] not in STATUSES:
                        rep.unmatched.append((line, f"{cid}: invalid status {crew[0]!r}; a crew writes "
                                                    f"{CREW_STATUSES_TEXT}"))
                        continue
                    if not crew or crew == [cur[0]]:
                        if crew != [cur[0]]:  # the row says what the list said: the crew did not change the status
                            rep.outdated.append((line, f"{cid}: still {status_label(exported)} as exported "
                                                       f"({get(row, 'status_changed_at')}); the registry since: {done}: "
                                                       f"{left}"))
                        st, status, status_ja = cur[0], cur[0], ""
                    elif len(crew) == 1 and any(h[3] == crew[0] and str(h[6]).startswith("import:")
                                                and h[0] not in undone for h in since):
                        # the crew's word was taken by an import (this list's, or another's; not one undone since) and
                        # changed since
                        rep.outdated.append((line, f"{cid}: {status_label(crew[0])} as the crew wrote, taken before; "
                                                   f"the registry since the list was exported: {done}: {left}"))
                        st, status, status_ja = cur[0], cur[0], ""
                    else:
                        newer = False
                        if crew == ["repaired"] and "repaired" in TRANSITIONS.get(cur[0], ()):
                            # a repair is a fact on the road: dated after every change since, it is newer information
                            with contextlib.suppress(ValueError):
                                crew_t = self._aware(self._when(_parse_when(day, now.date(), first), now)[0]) if day \
                                    else None
                                newer = crew_t is not None and crew_t.timestamp() > max(
                                    self._event_t(h, cur[6]) for h in since)
                        if newer:
                            rep.newer.append((line, f"{cid}: the crew's repair ({day}) is dated after the registry's "
                                                    f"changes since the list was exported ({done}): applied"))
                            st, status = "repaired", "repaired"
                        else:
                            rep.held.append((line, self._hold(cid, cur[0], exported, crew, done, row, get,
                                                              csv_path.name, now)))
                            continue
                elif again:
                    # the exports write both columns alike; this row's two differ (the crew edited one) and are the
                    # candidate's last status change, before and after: the list was imported before (or the office
                    # made the same change). Without this, the column left as exported was taken for the crew's
                    # word: the same list imported again turned scheduled back into confirmed
                    st = status = cur[0]
                elif status_ja and st == cur[0]:
                    # the crew edited the Japanese column (状態(和)) and left the code column as exported
                    ja = normalize_status(status_ja)
                    if ja not in STATUSES:
                        rep.unmatched.append((line, f"{cid}: invalid status {status_ja!r}; a crew writes "
                                                f"{CREW_STATUSES_TEXT}"))
                        continue
                    st, status = ja, status_ja
                if st not in STATUSES:
                    rep.unmatched.append((line, f"{cid}: invalid status {status!r}; a crew writes "
                                                f"{CREW_STATUSES_TEXT}"))
                    continue
                if st in SYSTEM_STATUSES and st != cur[0] and not con.execute(
                        "SELECT 1 FROM status_history WHERE candidate_id=? AND to_status=? LIMIT 1", (cid, st)).fetchone():
                    rep.unmatched.append((line, f"{cid}: status {status!r} is set by patrol, not by a crew "
                                                f"(now {cur[0]})"))
                    continue
                if st in SYSTEM_STATUSES and st != cur[0]:
                    # a crew cannot set new/reopened, and the damage had this status once: the row says what patrol
                    # had set when the list was exported (an older list), not the crew's word; the registry's stays
                    rep.outdated.append((line, f"{cid}: still {status!r} as exported; the registry has it "
                                               f"{cur[0]} since: left as it is"))
                    st = cur[0]
                if st != cur[0] and st not in TRANSITIONS.get(cur[0], ()):
                    allowed = ", ".join(sorted(TRANSITIONS.get(cur[0], ()))) or "none"  # as `patrol status` says it
                    rep.unmatched.append((line, f"{cid}: transition {cur[0]} -> {st} not allowed (from {cur[0]}: "
                                                f"{allowed})"))
                    continue
                # the day of the check; for a repair, the day the crew wrote in 補修日 (repaired_at, which the
                # exports leave empty until a damage is repaired), whether or not 確認日 is filled too: the repair
                # date decides which later sightings reopen it (the import's time, days later, or a check before or
                # after the works left a failed patch unseen or reopened a sound one)
                when_col = "checked_at"
                if st == "repaired" and cur[0] != "repaired" and get(row, "repaired_at"):
                    # not the 補修日 a reopened damage's list carries, as exported: its earlier repair's. A list without
                    # 状態更新日時 (status_changed_at) was not exported after that repair: its 補修日 is that repair
                    # (the same list imported again, the damage reopened since), which a later sighting reopened
                    (old_rep,) = con.execute("SELECT repaired_at FROM candidates WHERE candidate_id=?", (cid,)).fetchone()
                    if not (old_rep and self._same_time_text(get(row, "repaired_at"), old_rep, now.date())) or (
                            "status_changed_at" not in ix):
                        when_col = "repaired_at"
                try:  # (a date without a year read once, against this import's day and this damage's first sighting)
                    when = _parse_when(get(row, when_col), now.date(), first) if get(row, when_col) else None
                    self._when(when)
                except ValueError as e:
                    rep.unmatched.append((line, f"{cid}: {when_col} {e}"))
                    continue
                # a jobs list's row: the history's note names its job (工区-003, 工区-003: <note>), as `patrol status
                # REGISTRY 工区-003 --set …` writes it; the damage's own note is the crew's as written
                said = job_note(job_of.get(line), note or None)
                if st == cur[0] == "repaired":
                    self._repair_date_kept(rep, line, cid, cur, row, get, ix, words, now)
                if st == cur[0]:
                    # the same status: a new note, checker or issue type is still the crew's word
                    if (note and note != (cur[1] or "")) or (who and who != (cur[2] or "")) or (
                            issue and issue != (cur[3] or "")):
                        self._annotate(cid, cur[0], note or None, who or None, issue or None, when,
                                       source=f"import:{csv_path.name}", said=said)
                        rep.noted.append(cid)
                    elif not (rep.outdated and rep.outdated[-1][0] == line):
                        rep.unchanged.append(cid)
                    continue
                seen: list[RepairSeenAfter] = []
                changed = self._set_status(cid, st, note or None, who or None, when, issue or None,
                                           source=f"import:{csv_path.name}", seen=seen, said=said)
                rep.seen_after += [(line, s.message) for s in seen]
                if seen and rep.newer and rep.newer[-1][0] == line:  # applied as newer, and a sighting held is newer still
                    rep.newer[-1] = (line, f"{rep.newer[-1][1]}, then reopened: seen {seen[0].seen} after it")
                if not changed:  # the repair a sighting held reopened, again: nothing changes
                    rep.unchanged.append(cid)
                    continue
                rep.applied.append(cid)
                rep.changes.append((line, cid, cur[0], st))
            self._record_import(csv_path.name, table.what, now, hid0, was)
        if table.bad:  # (a ledger's blocks out of shape among the others, in the file's order)
            rep.unmatched.sort(key=lambda u: u[0])
        return rep

    # ---- an import taken back (``patrol import-verification … --undo``)
    def _import_state(self, cid: str) -> tuple:
        """A damage's ``IMPORT_STATE_COLUMNS``: what an import sets and its undo gives back."""
        return tuple(self.con.execute(f"SELECT {', '.join(IMPORT_STATE_COLUMNS)} FROM candidates WHERE candidate_id=?",
                                      (cid,)).fetchone() or ())

    def _imports(self) -> list[tuple]:
        """The imports recorded (``imports``), in their order: (iid, file, imported_at, first_hid, last_hid, damages,
        undone_at, undo_first_hid, undo_last_hid, left); [] where none was (an older patrol's, or none)."""
        if "imports" not in self._tables():
            return []
        return self.con.execute("SELECT iid, file, imported_at, first_hid, last_hid, damages, undone_at, "
                                "undo_first_hid, undo_last_hid, left FROM imports ORDER BY iid").fetchall()

    def undone_history_rows(self) -> set[int]:
        """The history rows (``hid``) of imports undone that the figures leave out (``stats.read_registry``): an undone
        import's rows of the damages its undo gave back (not those it left: changed since, their import stands) and
        the undo's own rows. With them out, a damage's history reads as if the import had not been."""
        out: set[int] = set()
        for _iid, _f, _at, first, last, damages, undone, ufirst, ulast, left in self._imports():
            if not undone:
                continue
            back = json.dumps(sorted(set(json.loads(damages)) - set(json.loads(left or "[]"))))
            out.update(h for (h,) in self.con.execute(
                "SELECT hid FROM status_history WHERE hid BETWEEN ? AND ? AND candidate_id IN (SELECT value FROM "
                "json_each(?))", (first, last, back)))
            if ufirst is not None:
                out.update(range(int(ufirst), int(ulast) + 1))
        return out

    def _record_import(self, name: str, what: str, now: datetime, hid0: int, was: dict[str, tuple]) -> None:
        """Inside import_verification's transaction, after its rows: the import's record (``imports``) where it changed
        a damage (or wrote a row of its own), each damage it changed as it was before (``was``) and is now. A list that
        changes nothing (imported again) leaves none: every table as it was."""
        con = self.con
        changed = {}
        for cid, before in was.items():
            after = self._import_state(cid)
            if after != before:
                changed[cid] = {"before": dict(zip(IMPORT_STATE_COLUMNS, before)),
                                "after": dict(zip(IMPORT_STATE_COLUMNS, after))}
        wrote = con.execute("SELECT 1 FROM status_history WHERE hid > ? AND source=? LIMIT 1",
                            (hid0, f"import:{name}")).fetchone()
        if not changed and not wrote:
            return
        (last,) = con.execute("SELECT COALESCE(MAX(hid), 0) FROM status_history").fetchone()
        for stmt in _IMPORTS_SQL:
            con.execute(stmt)
        con.execute("INSERT INTO imports (file, what, imported_at, first_hid, last_hid, damages) VALUES (?,?,?,?,?,?)",
                    (name, what, now.isoformat(), hid0 + 1, last, json.dumps(changed, ensure_ascii=False)))
        self._touch("imports")

    def _imported_files(self) -> list[tuple[str, str | None]]:
        """Every file name imported into the registry, the latest first: (name, its latest import's time as the
        messages show it, None where no record of it is kept: an older patrol's import)."""
        when = {r[1]: self._local(r[2]) for r in self._imports()}
        names = self.con.execute(
            "SELECT CASE WHEN substr(source, 1, 7) = 'import:' THEN substr(source, 8) ELSE substr(source, 13) END AS f, "
            "MAX(hid) AS h FROM status_history WHERE substr(source, 1, 7) = 'import:' OR substr(source, 1, 12) = "
            "'import-held:' GROUP BY f ORDER BY h DESC").fetchall()
        return [(n, when.get(n)) for n, _ in names]

    def undo_import(self, file: str | Path, note: str | None = None, who: str | None = None) -> ImportUndo:
        """Take back the latest import of the crew's list ``file`` (by its name, as its history rows give it
        ``import:<name>``; the file itself is not read: it may be gone), in ONE transaction: every damage that import
        changed (``imports.damages``) gets back its ``IMPORT_STATE_COLUMNS`` as before the import (status, note,
        checker, issue type, ``status_changed_at``, repair date), a history row each (``from`` the status the import
        left, ``to`` the one given back, ``source`` ``unimport:<name>``, stamped now; ``who``, ``note``); the import's
        rows stay (the history is never deleted). A damage changed since the import (a history row after it: the
        office's ``patrol status``, a later import, a drive that reopened it, ``patrol merge``; not another import
        undone since, nor a row of a list held) or no longer as the import left it is left as it is and named
        (``ImportUndo.left``). The record says it was undone: the same file imported again is a fresh import
        (``_already_applied``), a second undo has nothing to undo.

        Refused (UsageError): a file never imported (naming the files imported, latest first), one whose latest import
        was made by a patrol that kept no record of imports (0.10.0 or earlier), one whose import changed no damage
        (its rows held), an import undone before, and one whose every damage was changed since (nothing undone)."""
        want = Path(str(file)).name
        with self._txn() as con:
            files = self._imported_files()
            names = [n for n, _ in files]
            if want not in names:
                fold = lambda t: unicodedata.normalize("NFC", t).casefold()  # noqa: E731 (LIST.CSV, a macOS NFD name)
                alike = [n for n in names if fold(n) == fold(want)]
                if len(alike) != 1:
                    shown = ", ".join(n + (f" ({t})" if t else "") for n, t in files[:5]) + (
                        " …" if len(files) > 5 else "")
                    raise UsageError(f"{want} was never imported into this registry: nothing to undo (" + (
                        f"the files imported, latest first: {shown}" if files else "no crew list was imported into "
                        "it") + ")", self.path)
                want = alike[0]
            recs = [r for r in self._imports() if r[1] == want]
            rec = recs[-1] if recs else None
            (unrecorded,) = con.execute("SELECT MAX(hid) FROM status_history WHERE source=?",
                                        (f"import:{want}",)).fetchone()
            if unrecorded is not None and (rec is None or unrecorded > rec[4]):
                raise UsageError(f"the {'latest ' if rec else ''}import of {want} was made by a patrol that kept no "
                                 "record of what the damages had before (0.10.0 or earlier): it cannot be undone (set "
                                 f"them back by hand: patrol status {self.path_word} ID --set …; patrol status "
                                 f"{self.path_word} ID shows a damage's history)", self.path)
            if rec is None:
                raise UsageError(f"the import of {want} changed no damage (its rows were held: the registry had changed "
                                 "them after the list was exported): nothing to undo", self.path)
            iid, _f, imported_at, first, last, damages_json, undone_at = rec[:7]
            imported = self._local(imported_at)
            if undone_at:
                raise UsageError(f"the import of {want} ({imported}) was undone on {self._local(undone_at)}: nothing "
                                 "to undo (import the file again to apply it anew)", self.path)
            damages = json.loads(damages_json)
            if not damages:
                raise UsageError(f"the import of {want} ({imported}) changed no damage: nothing to undo", self.path)
            other = self.undone_history_rows()  # (another import undone since, and its undo: as if not made)
            res = ImportUndo(want, imported, "", registry=self.path_word)
            todo = []
            for cid, d in damages.items():
                before = tuple(d["before"].get(c) for c in IMPORT_STATE_COLUMNS)
                after = tuple(d["after"].get(c) for c in IMPORT_STATE_COLUMNS)
                later = [h for h in con.execute(
                    "SELECT hid, at, from_status, to_status, who, note, source, run_id FROM status_history WHERE "
                    "candidate_id=? AND hid > ? ORDER BY hid", (cid, last))
                    if not str(h[6]).startswith("import-held:") and h[0] not in other]
                now_state = self._import_state(cid)
                if later or now_state != after:
                    res.left.append((cid, *self._since_import(later, now_state, before)))
                else:
                    todo.append((cid, before, after[0]))
            if not todo:
                shown = "; ".join(f"{c} by {short}" for c, _, short in res.left[:3]) + (
                    " …" if len(res.left) > 3 else "")
                raise UsageError(f"the import of {want} ({imported}): every damage it changed "
                                 f"({len(res.left)}) was changed since ({shown}): nothing undone", self.path)
            at, _ = self._when(None)
            res.at = at
            (hid0,) = con.execute("SELECT COALESCE(MAX(hid), 0) FROM status_history").fetchone()
            text = f"the import of {want} of {imported} undone" + (f": {note}" if _s(note) else "")
            sets = ", ".join(f"{c}=?" for c in IMPORT_STATE_COLUMNS)
            for cid, before, was in todo:
                con.execute(f"UPDATE candidates SET {sets} WHERE candidate_id=?", (*before, cid))
                con.execute("INSERT INTO status_history (candidate_id, at, from_status, to_status, who, note, source) "
                            "VALUES (?,?,?,?,?,?,?)", (cid, at, was, before[0], _s(who), text, f"unimport:{want}"))
                res.back.append((cid, was, before[0]))
            (hid1,) = con.execute("SELECT MAX(hid) FROM status_history").fetchone()
            con.execute("UPDATE imports SET undone_at=?, undo_first_hid=?, undo_last_hid=?, left=? WHERE iid=?",
                        (at, hid0 + 1, hid1, json.dumps([c for c, *_ in res.left]), iid))
            self._touch("candidates", "status_history", "imports")
        return res

    def _since_import(self, later: list[tuple], now_state: tuple, before: tuple) -> tuple[str, str]:
        """(what changed a damage since an import, in full; in short: ``patrol status``) for ``undo_import``'s line of
        a damage it leaves: ``scheduled -> not_an_issue (対象外) 2026-11-29 10:15 by patrol status (office,
        'manhole'); now not_an_issue (対象外), before the import new (新規)``."""
        out, how = [], []
        for _hid, at, fr, to, who, note, source, run_id in later:
            by, who = _how_who(source, run_id, who)
            extra = ", ".join(x for x in (who, repr(note) if _s(note) else None) if x)
            move = f"{fr} -> {status_label(to)} " if fr and fr != to else ""  # (a note, a merge: the status kept)
            out.append(f"{move}{self._local(at)} by {by}" + (f" ({extra})" if extra else ""))
            if _how(source, run_id) not in how:
                how.append(_how(source, run_id))
        if not later:  # (no history row: written by something other than patrol)
            out.append("its status, note or dates are not what the import left, and no history row says why")
            how.append("a change without a history row")
        now = f"now {status_label(now_state[0])}, before the import {status_label(before[0])}"
        return "; ".join(out) + f"; {now}", " and ".join(how)

    # --------------------------------------------------------------------------------------- output
    def query(self, status: list[str] | None = None, since: date | datetime | str | None = None,
              classes: list[str] | None = None, lists: bool = True, growth: bool = True) -> pd.DataFrame:
        """Registry candidates as a Candidates DataFrame + status columns (+ ``crop_jpeg`` bytes or None), and what
        the exports give of their sightings (``export.sightings``): ``n_drives``, ``last_drive`` (the drive of the
        latest sighting; ties: the one stored last, see below) and ``last_images`` (its frames, ``drive/name``, sorted, at most
        ``export.LAST_IMAGES_MAX``).

        ``since``: last seen on or after this date (local day) / time. ``lists=False``: without the complete
        ``drives``/``images`` lists (hundreds of names a damage after years of weekly drives), as the exports read.
        ``growth=False``: without ``GROWTH_COLUMNS`` (``Store.growth``, the sightings read again: 0.2-1.3 s on a
        city's registry), for a reader that uses none (the segments' condition, the jobs list).
        """
        where, args = [], []
        if self._has_column("candidates", "merged_into"):  # (a registry of schema 4 read as it is has none)
            where.append("merged_into IS NULL")  # merged by the office into another damage: that one lists them
        if status:
            unknown = [s for s in status if _status_text(s).casefold() not in _OPEN_WORDS
                       and normalize_status(s) not in STATUSES]
            if unknown:
                raise UsageError(f"unknown status {unknown[0]!r}; expected one of {', '.join(STATUSES)} "
                                 f"(or their Japanese names), or open (未対応: {', '.join(OPEN_STATUSES)})",
                                 field="--status")
            st = list(dict.fromkeys(x for s in status for x in (
                OPEN_STATUSES if _status_text(s).casefold() in _OPEN_WORDS else (normalize_status(s),))))
            where.append(f"status IN ({','.join('?' * len(st))})")
            args += st
        if classes:
            where.append(f"class IN ({','.join('?' * len(classes))})")
            args += list(classes)
        if since is not None:
            if isinstance(since, str):
                since = datetime.fromisoformat(since) if len(since) > 10 else date.fromisoformat(since)
            if isinstance(since, datetime):
                t0 = (since if since.tzinfo else since.replace(tzinfo=self.tz)).timestamp()
            else:
                t0 = datetime.combine(since, time(0), tzinfo=self.tz).timestamp()
            where.append("last_t >= ?")
            args.append(t0)
        cols = ", ".join(f'"{c}"' for c in CANDIDATE_COLUMNS + STATUS_COLUMNS if lists or c not in ("drives", "images"))
        have = {r[1] for r in self.con.execute('PRAGMA table_info("candidates")')}
        # (a registry of schema 3, read as it is until its next write, has no passes yet)
        cols += "".join(f', "{c}"' if c in have else f', NULL AS "{c}"' for c in PASS_COLUMNS)
        poor, join = self._poor_look_sql(every=True)
        cols += f", {poor}"
        # the latest sighting's drive: by the (candidate_id, last_t) index (its rows in obs_id order within a time),
        # one step a candidate. Ties (a run's sightings without their own time share the candidate's last time): the
        # sighting stored last, of the later merge, and within a run of the run's own latest drive (``_run_rows``)
        last = ("(SELECT o.drive FROM observations o WHERE o.candidate_id = candidates.candidate_id "
                "ORDER BY o.last_t DESC, o.obs_id DESC LIMIT 1)")
        q = (f"SELECT {cols}, COALESCE(json_array_length(drives), 0) AS n_drives, {last} AS _last FROM candidates{join}"
             + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY fid")
        df = pd.read_sql_query(q, self.con, params=args)
        if lists:
            for c in ("drives", "images"):
                df[c] = [json.loads(v) if isinstance(v, str) and v else [] for v in df[c]]  # NULL: no sighting
        df["crop_jpeg"] = [bytes(v) if v is not None else None for v in df["crop_jpeg"]]
        df["n_obs"] = df["n_obs"].fillna(0).astype(int)
        _pass_counts(df)
        df["n_drives"] = df["n_drives"].astype(int)
        df["last_drive"], df["last_images"] = self._last_images(df.pop("_last"), df["candidate_id"])
        if not growth:  # (the segments' condition and the jobs list: no 悪化 columns, not read)
            return df
        g = self.growth().reindex(df["candidate_id"])
        for c in GROWTH_COLUMNS:  # (None where not known: a whole number stays one, as the passes' counts)
            df[c] = pd.Series([None if v is None or v != v else v for v in g[c].to_numpy(dtype=object)],
                              index=df.index, dtype=object)
        return df

    def drive_areas(self, candidate_id: str | None = None) -> pd.DataFrame:
        """Each damage's (``candidate_id``'s only where given) est. area as each drive saw it: ``cid, drive, area``
        (the median of est_width_m × est_length_m over the drive's sightings of it with an estimate; m²), ``n`` (those
        sightings), ``t`` (the first one's time, epoch s), ``t_last`` (the latest one's: after a repair's ``repaired_t``,
        the drive saw the damage after its repair, as ``merge`` reopens it), by damage then drive name. A sighting keyed under several
        drives (``d1|d2``: a run that named its images without their drive) is no drive's. One statement grouping by
        (damage, drive) along their index (the median where all of a drive's sightings agree, as those of one run
        candidate do), a second for the (damage, drive) pairs whose sightings differ (grouped by area too: the
        counts as weights), pandas after: no step per damage."""
        one = " AND candidate_id = ?" if candidate_id is not None else ""
        sized = "est_width_m IS NOT NULL AND est_length_m IS NOT NULL AND instr(drive, '|') = 0"
        # each (damage, drive) along the (candidate_id, drive) index: no sort. A drive's sightings of a damage carry
        # one run candidate's estimate (all alike: the median is it) unless the drive brought several
        agg = pd.read_sql_query(
            "SELECT candidate_id AS cid, drive, COUNT(*) AS n, MIN(COALESCE(first_t, last_t)) AS t, "
            "MAX(COALESCE(last_t, first_t)) AS t_last, "
            "MIN(est_width_m * est_length_m) AS lo, MAX(est_width_m * est_length_m) AS hi FROM observations "
            f"WHERE {sized}{one} GROUP BY candidate_id, drive", self.con, params=(candidate_id,) if one else ())
        area = agg["lo"].where(agg["lo"] == agg["hi"])
        mixed = agg[area.isna()]
        if len(mixed):  # the median of those whose sightings differ: their areas counted, the counts as weights
            rows = pd.read_sql_query(
                "SELECT o.candidate_id AS cid, o.drive, o.est_width_m * o.est_length_m AS area, COUNT(*) AS n "
                "FROM json_each(?) j JOIN observations o ON o.candidate_id = json_extract(j.value, '$[0]') "
                f"AND o.drive = json_extract(j.value, '$[1]') WHERE {sized.replace('est_', 'o.est_')} "
                "GROUP BY o.candidate_id, o.drive, area", self.con,
                params=(json.dumps(mixed[["cid", "drive"]].to_numpy().tolist(), ensure_ascii=False),))
            rows = rows.sort_values(["cid", "drive", "area"], kind="mergesort")
            grp = rows.groupby(["cid", "drive"], sort=False)
            cum, tot = grp["n"].cumsum(), grp["n"].transform("sum")
            keys = [rows["cid"], rows["drive"]]
            lo = rows["area"].where(2 * cum >= tot).groupby(keys, sort=False).first()
            hi = rows["area"].where(2 * cum > tot).groupby(keys, sort=False).first()
            med = (lo + hi) / 2  # the mean of the lower and the upper median
            at = pd.MultiIndex.from_frame(mixed[["cid", "drive"]])
            area[mixed.index] = med.reindex(at).to_numpy()
        agg["area"] = area
        return agg[["cid", "drive", "area", "n", "t", "t_last"]].sort_values(["cid", "drive"], kind="mergesort").reset_index(
            drop=True)

    def since_repair(self, per: pd.DataFrame) -> pd.Series:
        """Of ``drive_areas``'s rows, those ``growth`` compares (bool, by ``per``'s index): a damage that a drive saw
        after its latest repair (its ``t_last`` after the candidate's ``repaired_t``: as ``merge`` reopens it, 再発),
        only the drives after it; the others (never repaired, or repaired and not seen since) all. One statement."""
        rep = pd.read_sql_query("SELECT candidate_id AS cid, repaired_t FROM candidates WHERE repaired_t IS NOT NULL",
                                self.con).set_index("cid")["repaired_t"]
        rep_t = per["cid"].map(rep).astype(float)
        after = per["t_last"].astype(float) > rep_t  # (False where either is unknown)
        seen_after = after.groupby(per["cid"]).transform("any") if len(per) else after
        return ~seen_after | after

    def growth(self, rule: GrowthRule | None = None, candidate_id: str | None = None) -> pd.DataFrame:
        """Whether each damage has grown since it was first seen (悪化): ``GROWTH_COLUMNS`` by ``candidate_id`` (the
        index), of the damages whose sightings carry a size estimate.

        Each drive's area of a damage: the median of est_width_m × est_length_m over its sightings of it (a sighting
        holds the estimate of its run's candidate: the best box's, so the sightings of one run's candidate agree; two
        run candidates of one drive merged into one damage do not). The drives compared: the first and the latest (by
        their first sighting's time) that saw it in ``rule.min_sightings`` frames with an estimate or more; a sighting
        keyed under several drives (``d1|d2``, a run that named its images without their drive) is no drive's. A
        damage seen after its latest repair (``repaired_t``; reopened, 再発) is compared from the first drive after it
        (``since_repair``): the damage before the repair is another one.
        ``area_first_m2``, ``area_last_m2`` (m², 2 decimals; the same drive's for a damage of one such drive),
        ``growth`` = last / first (2 decimals; None with one drive or a first area of 0), ``grown`` 1 when ``growth``
        >= ``rule.ratio`` and the area ``rule.min_m2`` or more larger, else 0 (None without ``growth``).

        One statement grouping the sightings by (damage, drive, area) and pandas on its rows (as many as a damage's
        drives where each drive was one run candidate): no step per damage."""
        rule = rule or self.growth_rule
        out = pd.DataFrame(columns=GROWTH_COLUMNS, index=pd.Index([], name="candidate_id"), dtype=object)
        per = self.drive_areas(candidate_id)  # (candidate_id: that damage's alone, ``patrol status ID``)
        per = per[self.since_repair(per) & (per["n"] >= rule.min_sightings)]
        if not len(per):
            return out
        # drives in time order (a drive without a time last; then by name): the first and the latest compared
        per = per.sort_values(["cid", "t", "drive"], kind="mergesort", na_position="last")
        by = per.groupby("cid", sort=False)
        first, last, k = by["area"].first(), by["area"].last(), by.size()
        ratio = (last / first).where((k > 1) & (first > 0))
        grown = (ratio >= rule.ratio) & (last - first >= rule.min_m2 - 1e-9)
        out = pd.DataFrame({"area_first_m2": first.round(2), "area_last_m2": last.round(2), "growth": ratio.round(2),
                            "grown": grown.astype(int)}).astype(object)
        out = out.where(out.notna(), None)
        out.loc[out["growth"].isna(), "grown"] = None
        out.index.name = "candidate_id"
        return out

    def _last_images(self, drives: pd.Series, ids: pd.Series) -> tuple[list, list]:
        """(drive, its frames as ``drive/name``, sorted, at most ``LAST_IMAGES_MAX``) of each candidate's latest drive,
        from its observations (one statement, along the (candidate_id, drive, image) index). A sighting keyed under
        several drives (``d1|d2``: a run named the image without its drive) keeps the bare name, as ``images``."""
        from .export import LAST_IMAGES_MAX

        pairs = {c: d for c, d in zip(ids, drives) if isinstance(d, str)}
        got: dict[str, list[str]] = {}
        for cid, d, im in self.con.execute(
                "SELECT l.key, l.value, o.image FROM json_each(?) l JOIN observations o ON o.candidate_id = l.key "
                "AND o.drive = l.value GROUP BY l.key, o.image ORDER BY l.key, o.image", (json.dumps(pairs),)):
            names = got.setdefault(cid, [])
            if len(names) < LAST_IMAGES_MAX:
                names.append(_drive_image(d, im))
        return ([d.split("|")[0] if isinstance(d, str) else None for d in drives],
                [sorted(got.get(c, [])) for c in ids])

    def states(self, ids: Iterable[str]) -> pd.DataFrame:
        """``candidate_id, status, status_note, status_changed_at, n_passes, n_unseen, last_passed`` of the named
        registry candidates (those a run just merged): what a run's outputs take from the registry, without reading
        the rest of it (crops included). ``status_changed_at`` goes into the run's repair_list.csv as into an
        export's list: the stale-list check of ``import_verification`` reads it; so do the damage's passes."""
        df = pd.read_sql_query(
            "SELECT candidate_id, status, status_note, status_changed_at, n_passes, n_unseen, last_passed, "
            f"{self._poor_look_sql()[0]} FROM candidates WHERE candidate_id IN "
            "(SELECT value FROM json_each(?)) ORDER BY fid", self.con, params=(json.dumps(sorted(set(ids))),))
        return _pass_counts(df)

    # ---- citizen reports (住民通報)
    def import_reports(self, rows: pd.DataFrame, file: str, source: str = "") -> tuple[
            list[str], list[tuple[str, list[str]]], list[str]]:
        """Store citizen reports (``citizen.read_reports``'s rows: ``report_id`` and ``REPORT_FIELDS``, ``posted_t``,
        ``row``) of ``source`` (``--source``; '' none named) read from ``file``, keyed by the source and their report
        id: (new ids, updated (id, the fields that changed), unchanged ids). A report of that source imported before
        whose fields the file gives otherwise (the city's handling status moved on, the text edited) is updated; one
        given as it was is left (re-importing the same export, or a newer one repeating old reports, adds nothing);
        another source's report of the same id is another report (``reports_elsewhere`` names them)."""
        new: list[str] = []
        updated: list[tuple[str, list[str]]] = []
        same: list[str] = []
        if not len(rows):
            return new, updated, same
        at = self._now().isoformat(timespec="seconds")
        source = source or ""
        with self._txn() as con:
            for stmt in _REPORTS_SQL:
                con.execute(stmt)
            ids = json.dumps([str(v) for v in rows["report_id"]])
            held = {r[0]: r[1:] for r in con.execute(
                f"SELECT report_id, {', '.join(REPORT_FIELDS)} FROM reports WHERE source=? AND report_id IN "
                "(SELECT value FROM json_each(?))", (source, ids))}
            ins, upd = [], []
            for r in rows.itertuples(index=False):
                vals = [getattr(r, f) for f in REPORT_FIELDS]
                vals = [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in vals]
                rec = (*vals, getattr(r, "posted_t"), file, int(getattr(r, "row")))
                old = held.get(r.report_id)
                if old is None:
                    new.append(r.report_id)
                    ins.append((source, r.report_id, *rec, at))
                    continue
                changed = [f for f, a, b in zip(REPORT_FIELDS, old, vals) if not (
                    _same_float(a, b) if f in ("lat", "lon") else (a or None) == (b or None))]
                if changed:
                    updated.append((r.report_id, changed))
                    upd.append((*rec, at, source, r.report_id))
                else:
                    same.append(r.report_id)
            con.executemany(f"INSERT INTO reports (source, report_id, {', '.join(REPORT_FIELDS)}, posted_t, file, row, "
                            f"imported_at) VALUES ({','.join('?' * (len(REPORT_FIELDS) + 6))})", ins)
            con.executemany(f"UPDATE reports SET {', '.join(f + '=?' for f in REPORT_FIELDS)}, posted_t=?, file=?, "
                            "row=?, updated_at=? WHERE source=? AND report_id=?", upd)
            if ins or upd:
                self._touch("reports")
        return new, updated, same

    def reports_elsewhere(self, ids, source: str = "") -> dict[str, list[str]]:
        """Of the report ids ``ids``, those the registry also holds from another source than ``source``: {that source
        ('' none named): its ids}. Kept apart (the key is the source and the id); the import says so, as the same
        reports imported once without ``--source`` and once with it would be held twice."""
        if not self.has_reports():
            return {}
        out: dict[str, list[str]] = {}
        for src, rid in self.con.execute(
                "SELECT source, report_id FROM reports WHERE source<>? AND report_id IN (SELECT value FROM json_each(?)) "
                "ORDER BY source, report_id", (source or "", json.dumps([str(v) for v in ids]))):
            out.setdefault(src, []).append(rid)
        return out

    def reports(self) -> pd.DataFrame:
        """Every citizen report held (``source``: '' none named, ``report_id``, ``REPORT_FIELDS``, ``posted_t``,
        ``file``, ``imported_at``, ``updated_at``), by time posted (unknown last), then source and id; empty (with
        those columns) in a registry without any (made before import-reports, or none imported)."""
        cols = ["source", "report_id", *REPORT_FIELDS, "posted_t", "file", "imported_at", "updated_at"]
        if "reports" not in self._tables():
            return pd.DataFrame({c: pd.Series(dtype=float if c in ("lat", "lon", "posted_t") else object)
                                 for c in cols})
        return pd.read_sql_query(f"SELECT {', '.join(cols)} FROM reports ORDER BY posted_t IS NULL, posted_t, "
                                 "source, report_id", self.con)

    def has_reports(self) -> bool:
        """Whether citizen reports were ever imported into this registry (its ``reports`` table exists)."""
        return "reports" in self._tables()

    # ---- repair jobs (補修工区): the ids the jobs lists handed out
    def held_jobs(self) -> pd.DataFrame:
        """The repair jobs the registry's jobs lists handed out (``job_id``, ``number``, ``candidate_ids``,
        ``first_exported``, ``last_exported``), by number; empty (with those columns) where no jobs list was
        exported from it (or only by an older patrol). Reads only: what ``patrol export --format html``'s jobs
        layer takes its ids from."""
        cols = ["job_id", "number", "candidate_ids", "first_exported", "last_exported"]
        if "job_ids" not in self._tables():
            return pd.DataFrame({c: pd.Series(dtype="int64" if c == "number" else object) for c in cols})
        return pd.read_sql_query(f"SELECT {', '.join(cols)} FROM job_ids ORDER BY number", self.con)

    def record_jobs(self, jobs) -> tuple[int, int]:
        """Give the repair jobs ``jobs`` (``detector.jobs.Jobs``, a list about to be written) their ids and record
        them (README: Repair jobs, job ids are kept): in one write transaction, the jobs held read again and matched
        (``jobs.assign_ids``: another export may have recorded some since ``jobs`` was made), the new ids inserted,
        the others' damages (the union of every list that named them) and ``last_exported`` updated. Only the table
        ``job_ids``, ``job_damages`` (each damage of the list: its job, replacing what an earlier list gave it;
        both created here where they are not yet) and their ``gpkg_contents`` rows are written: the registry
        is not migrated nor otherwise changed, whatever its schema. Returns (ids kept, ids new). A registry that
        cannot be written (a read-only file or folder, locked by another process past ``busy_timeout_s``): a
        StoreError saying so (the list must not be written with ids that are not kept)."""
        from .jobs import assign_ids, job_name, records

        at = self._now().isoformat(timespec="seconds")
        con = self.con
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise StoreError(f"cannot lock the registry to record the repair jobs' ids: {e}", self.path) from None
        try:
            for stmt in _JOBS_SQL:
                con.execute(stmt)
            held = self.held_jobs()
            assign_ids(jobs, held)
            new, again = records(jobs, held)
            con.executemany("INSERT INTO job_ids (job_id, number, candidate_ids, first_exported, last_exported) "
                            "VALUES (?,?,?,?,?)", [(*r, at, at) for r in new])
            con.executemany("UPDATE job_ids SET candidate_ids=?, last_exported=? WHERE job_id=?",
                            [(c, at, i) for c, i in again])
            # each damage's job is this list's now (the latest list naming it; a later one in the same second too)
            con.executemany("INSERT OR REPLACE INTO job_damages (candidate_id, job_id, listed) VALUES (?,?,?)",
                            [(str(c), job_name(n), at) for c, n in zip(jobs.member_id,
                                                                       jobs.number[jobs.member_job])])
            con.execute("UPDATE gpkg_contents SET last_change=strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE "
                        "table_name IN ('job_ids', 'job_damages')")
            con.execute("COMMIT")
        except BaseException as e:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error):
                raise StoreError(f"cannot record the repair jobs' ids ({e}): the list was not written, its ids "
                                 "would not be kept", self.path) from None
            raise
        return len(again), len(new)

    def damage_jobs(self) -> pd.DataFrame | None:
        """``candidate_id``, ``job_id``: each damage a jobs list named and the job the latest such list gave it (table
        ``job_damages``), whatever its status now (the lists show it on the open ones). None where the registry holds
        no job record (no jobs list exported from it, or only by an older patrol): the lists then have no job_id
        column, as before. A damage ``job_damages`` does not hold (ids recorded by the first patrol that kept them,
        before the table): of the jobs whose recorded damages hold it, the one listed last (ties: the later number).
        Reads only: the exports call it."""
        from .jobs import _held_members

        held = self.held_jobs()
        if not len(held):
            return None
        num, cid = _held_members(held)
        t = pd.to_datetime(held["last_exported"], errors="coerce", utc=True, format="ISO8601")
        last = pd.Series(np.where(t.isna().to_numpy(), np.iinfo(np.int64).min,  # (unreadable: the oldest)
                                  t.to_numpy("datetime64[ns]").view(np.int64)), index=held["number"].to_numpy())
        d = pd.DataFrame({"candidate_id": cid, "number": num, "last": last.reindex(num).to_numpy()})
        d = d.sort_values(["last", "number"], kind="stable").drop_duplicates("candidate_id", keep="last")
        name = pd.Series(held["job_id"].to_numpy(object), index=held["number"].to_numpy())
        got = pd.Series(name.reindex(d["number"].to_numpy()).to_numpy(object), index=d["candidate_id"].to_numpy(),
                        dtype=object)
        if "job_damages" in self._tables():
            rows = pd.read_sql_query("SELECT candidate_id, job_id FROM job_damages", self.con)
            got = pd.Series(rows["job_id"].to_numpy(object), index=rows["candidate_id"].to_numpy(object),
                            dtype=object).combine_first(got)
        return pd.DataFrame({"candidate_id": got.index.to_numpy(object), "job_id": got.to_numpy(object)})

    def job_record(self, job_id: str) -> dict | None:
        """A repair job as the registry holds it (``patrol status REGISTRY 工区-003``): ``job_id``, ``number``,
        ``first_exported``, ``last_exported`` (``job_ids``), ``damages``: the damages whose latest jobs list gave
        them this job (``damage_jobs``; sorted ids: a list's candidate_ids) and ``elsewhere``: {id: its job now} of
        those an earlier list gave it and a later list another job. None: no jobs list gave this id."""
        held = self.held_jobs()
        row = held[held["job_id"] == job_id]
        if not len(row):
            return None
        r = row.iloc[0]
        of = self.damage_jobs()
        of = dict(zip(of["candidate_id"], of["job_id"])) if of is not None else {}
        ever = sorted({c for c in str(r["candidate_ids"] or "").split(";") if c} | {c for c, j in of.items()
                                                                                   if j == job_id})
        return {"job_id": job_id, "number": int(r["number"]), "first_exported": r["first_exported"],
                "last_exported": r["last_exported"], "damages": [c for c in ever if of.get(c) == job_id],
                "elsewhere": {c: of[c] for c in ever if of.get(c, job_id) != job_id}}

    def job_damage_rows(self, ids: Iterable[str]) -> pd.DataFrame:
        """``candidate_id, class, status, status_note, repaired_at, merged_into`` of the named damages (a job's, for
        ``patrol status 工区-003``), in the order given; an id the registry does not hold: absent."""
        merged = "merged_into" if self._has_column("candidates", "merged_into") else "NULL AS merged_into"
        ids = list(ids)
        df = pd.read_sql_query(f"SELECT candidate_id, class, status, status_note, repaired_at, {merged} FROM "
                               "candidates WHERE candidate_id IN (SELECT value FROM json_each(?))", self.con,
                               params=(json.dumps(ids),))
        order = {c: k for k, c in enumerate(ids)}
        return df.sort_values("candidate_id", key=lambda s: s.map(order)).reset_index(drop=True)

    def report_targets(self) -> pd.DataFrame:
        """``candidate_id, class, lat, lon, status`` of the registry's own damages (not those merged into another)
        with a position: what a citizen report is matched to (``citizen.match_reports``), without their crops."""
        where = " AND merged_into IS NULL" if self._has_column("candidates", "merged_into") else ""
        return pd.read_sql_query("SELECT candidate_id, class, lat, lon, status FROM candidates WHERE lat IS NOT NULL "
                                 f"AND lon IS NOT NULL{where} ORDER BY fid", self.con)

    def identity(self) -> str | None:
        """The registry's name for the crew's entries in a report's browser storage (README: recording a check in
        report.html), 16 hex digits, or None for a registry without a merge (no damages to list): a hash of its first
        merge's ``runs`` row (run id and time), which no later merge, status change, import, office merge, schema
        migration or copy of the file changes, and which another registry (another city's, built from other drives)
        does not share. Derived, not stored: nothing is written (an export opens the registry to read only), older
        registries have it as they are, and two registries built from the same drives stay byte-identical but for
        their runs. A registry copied and then kept apart keeps its name (its ids are the original's)."""
        row = self.con.execute("SELECT run_id, merged_at FROM runs ORDER BY rid LIMIT 1").fetchone()
        if row is None:
            return None
        return hashlib.sha1(json.dumps(["patrol-registry", *row], ensure_ascii=False).encode("utf-8")).hexdigest()[:16]

    def _poor_look_sql(self, every: bool = False) -> tuple[str, str]:
        """(the SELECT term, the join after ``FROM candidates``) of ``n_poor_look`` (``POOR_LOOK_COLUMN``) of each
        row of ``candidates``: its passes without a sighting whose look was poor; NULL where the registry keeps no
        passes (schema 3 read as it is), 0 where they have no look (schema 4 read as it is: every pass then counts as
        a look). ``every`` (all candidates, ``query``): one scan of ``passes`` grouped by damage (the passes of a
        damage lie scattered across the table, written a merge at a time: 1,860 damages x 86 drives, shuffled, 70 ms
        where a lookup a damage along passes_cand_drive took 700 ms); else a lookup a damage (a run's few, ``states``)."""
        if not self._has_column("passes", "candidate_id"):
            return f'NULL AS "{POOR_LOOK_COLUMN}"', ""
        if not self._has_column("passes", "look"):
            return f'0 AS "{POOR_LOOK_COLUMN}"', ""
        poor = "sighted = 0 AND look IS NOT NULL"
        if every:
            return (f'COALESCE(_pl._n, 0) AS "{POOR_LOOK_COLUMN}"',
                    f" LEFT JOIN (SELECT candidate_id AS _k, COUNT(*) AS _n FROM passes NOT INDEXED WHERE {poor} "
                    "GROUP BY candidate_id) _pl ON _pl._k = candidates.candidate_id")
        return (f"(SELECT COUNT(*) FROM passes p WHERE p.candidate_id = candidates.candidate_id AND p.sighted = 0 AND "
                f'p.look IS NOT NULL) AS "{POOR_LOOK_COLUMN}"'), ""

    def survey_frames(self, since: date | datetime | None = None, until: date | datetime | None = None,
                      good_only: bool = True) -> pd.DataFrame:
        """The frames held with a position (``drive, lat, lon, heading, t, look``, in the order recorded): what
        surveyed the network (``patrol export --format segments``: ``segments.segment_condition``'s frames).
        ``since`` / ``until``: taken on or after / on or before (a date: its local day, ``self.tz``) by their time
        ``t``; a frame without a time is then left out (when it was taken is not known). ``good_only``: only the frames
        whose look was good or not measured (``look`` NULL): a frame too dark, glared or blurred showed nothing of the
        road. Frames recorded without a position (schema 3) are never read; a registry without ``frames``: none."""
        cols = ["drive", "lat", "lon", "heading", "t", "look"]
        if not self._has_column("frames", "lat"):
            return pd.DataFrame(columns=cols)
        where, args = ["f.lat IS NOT NULL", "f.lon IS NOT NULL"], []
        for bound, op, day in ((since, ">=", time(0)), (until, "<=", time(23, 59, 59, 999999))):
            if bound is None:
                continue
            if not isinstance(bound, datetime):
                bound = datetime.combine(bound, day)
            where.append(f"f.t {op} ?")
            args.append((bound if bound.tzinfo else bound.replace(tzinfo=self.tz)).timestamp())
        if good_only and self._has_column("frames", "look"):
            where.append("f.look IS NULL")
        look = "f.look" if self._has_column("frames", "look") else "NULL AS look"
        return pd.read_sql_query(f"SELECT d.drive, f.lat, f.lon, f.heading, f.t, {look} FROM frames f JOIN drives d "
                                 f"ON d.did = f.did WHERE {' AND '.join(where)} ORDER BY f.frame_key", self.con,
                                 params=args)

    def dump(self, tables: Iterable[str] = ("candidates", "observations", "status_history", "patrol_meta",
                                            "gpkg_contents")) -> dict[str, list[tuple]]:
        """All rows of the named tables (for tests and audits), in primary-key order."""
        return {t: self.con.execute(f'SELECT * FROM "{t}" ORDER BY 1').fetchall() for t in tables}

    def integrity(self) -> str:
        return self.con.execute("PRAGMA integrity_check").fetchone()[0]


def _pass_counts(df: pd.DataFrame) -> pd.DataFrame:
    """``df``'s n_passes, n_unseen, n_poor_look as whole numbers, None where not known (a schema-3 registry read as it
    is: no passes; n_poor_look then None too, not the 0 its subquery gives)."""
    for c in ("n_passes", "n_unseen", POOR_LOOK_COLUMN):
        df[c] = pd.Series([int(v) if pd.notna(v) else None for v in df[c]], index=df.index, dtype=object)
    df[POOR_LOOK_COLUMN] = [None if n is None else v for n, v in zip(df["n_passes"], df[POOR_LOOK_COLUMN])]
    return df


def _read_table(path: Path) -> CrewTable:
    """A crew's verification list as text: CSV in UTF-8 (BOM or not) or cp932, Excel's "Unicode text"
    (UTF-16, tab-separated), or an .xlsx workbook: the repair list's, or the photo ledger."""
    data = read_input_bytes(path)
    if data.startswith(b"PK\x03\x04"):
        return _read_xlsx(path, data)
    return CrewTable(read_csv_rows(data, path, "save the list as CSV UTF-8, or pass the .xlsx")[0])


def read_csv_rows(data: bytes, path: Path, hint: str) -> tuple[list[list[str]], str]:
    """A table file's rows of text cells and its encoding (``textio.decode_text``'s rule: UTF-8, UTF-16 with a BOM,
    else Shift_JIS; the delimiter a comma, or Excel's "Unicode text" tab): a crew's list (``_read_table``), a city's
    citizen reports (``citizen.read_reports``). InputError naming ``path``: not text (``hint``: what to save it as),
    not CSV."""
    try:
        text, codec = decode_text(data)
    except TextEncodingError:
        raise InputError(f"neither UTF-8 nor Shift_JIS text ({hint})", path) from None
    # a list exported before the exports left out the complete image lists has cells of tens of thousands of
    # characters (a damage seen for years), beyond the csv module's default field limit (131,072)
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=table_delimiter(text))), codec
    except csv.Error as e:
        raise InputError(f"not CSV: {e}", path) from None
    finally:
        csv.field_size_limit(limit)


def open_workbook(path: Path, data: bytes):
    """``data`` (the file ``path``) as a read-only openpyxl workbook of values; InputError naming the file where it is
    no readable .xlsx. The caller closes it."""
    import openpyxl

    try:
        return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # noqa: BLE001 - zip/XML errors of a foreign or damaged file
        raise InputError(f"not a readable .xlsx workbook: {type(e).__name__}: {e}", path) from None


def _cell_text(v: Any) -> str:
    """A workbook cell's value as a list's text: a date (Excel's date cell, a datetime too) in ISO 8601, a whole
    number without ``.0``."""
    if v is None:
        return ""
    if isinstance(v, date):  # a datetime too
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _read_xlsx(path: Path, data: bytes) -> CrewTable:
    import openpyxl

    from .ledger import LEDGER, STAMP_COLUMN, is_ledger_sheet, read_blocks

    wb = open_workbook(path, data)
    try:
        first = wb[wb.sheetnames[0]] if wb.sheetnames else None
        c1 = next(first.iter_rows(min_row=1, max_row=1, min_col=3, max_col=3, values_only=True), (None,))[0] \
            if first is not None else None
        if is_ledger_sheet(wb.sheetnames, c1):  # the photo ledger: its blocks (by its layout: labels in column C)
            ws = wb[LEDGER] if LEDGER in wb.sheetnames else first
            last = openpyxl.utils.column_index_from_string(STAMP_COLUMN)
            return read_blocks(((row[0], row[1], row[-1]) for row in
                                ws.iter_rows(min_col=3, max_col=last, values_only=True)), _cell_text)
        # the repair list's sheet, a jobs list's (`--format jobs`: its legend may be the sheet saved active)
        ws = next((wb[n] for n in ("candidates", "jobs") if n in wb.sheetnames), wb.active)
        return CrewTable([[_cell_text(v) for v in row] for row in ws.iter_rows(values_only=True)])
    finally:
        wb.close()


def check_store(path: str | Path, cfg=None) -> None:
    """Fail fast, before a run's slow stages, on a registry path that the merge at the end would refuse: an
    existing file that is not a patrol registry, or a folder where none can be created. Creates nothing."""
    p = Path(path)
    if p.exists() and (p.is_dir() or p.stat().st_size > 0):
        (Store.for_config(p, cfg) if cfg is not None else Store(p)).close()
        return
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"cannot create the registry here: {parent} is not a writable folder", p)


def _status_text(s) -> str:
    """A status word as typed, NFKC-folded: ``ｃｏｎｆｉｒｍｅｄ``, ``ＣＯＮＦＩＲＭＥＤ`` or ``confirmed　`` (typed with the
    Japanese IME on: full-width letters, a full-width space) is ``confirmed``, as full-width digits in a date are
    taken; the Japanese names (確認済み …) are as they were."""
    return unicodedata.normalize("NFKC", str(s)).strip()


def normalize_status(s: str) -> str:
    s0 = _status_text(s)
    if s0 in STATUS_ALIASES:
        return STATUS_ALIASES[s0]
    low = s0.lower()
    if low in STATUS_ALIASES:
        return STATUS_ALIASES[low]
    return low.replace("-", "_").replace(" ", "_")


def _run_rows(cands: pd.DataFrame) -> list[dict]:
    """Normalise a Candidates DataFrame into plain dicts with their observation keys."""
    out = []
    if cands is None or len(cands) == 0:
        return out
    has_obs = "observations" in cands.columns
    has_crop = "crop_jpeg" in cands.columns
    for idx, rec in zip(cands.index, cands.to_dict("records")):
        cls = _s(rec.get("class"))
        if cls is None:
            raise StoreError("candidate without class", None, "class")
        first_seen, last_seen = _s(rec.get("first_seen")), _s(rec.get("last_seen"))
        ft, lt = _t(first_seen), _t(last_seen)
        drives = _listify(rec.get("drives"))
        best_drive = _s(rec.get("best_drive")) or (drives[0] if len(drives) == 1 else "")
        if best_drive and best_drive not in drives:
            drives.append(best_drive)
        sev = rec.get("severity")
        r = {
            "index": idx, "class": cls, "class_name": rec.get("class_name"), "class_name_ja": rec.get("class_name_ja"),
            "candidate_id_run": _s(rec.get("candidate_id")),
            "lat": _f(rec.get("lat")), "lon": _f(rec.get("lon")), "segment_id": _s(rec.get("segment_id")),
            "road_name": _s(rec.get("road_name")), "chainage_m": _f(rec.get("chainage_m")),
            "severity": float(sev) if _isnum(sev) else None,
            "est_width_m": _f(rec.get("est_width_m")), "est_length_m": _f(rec.get("est_length_m")),
        }
        obs = []
        crop = rec.get("crop_jpeg") if has_crop else None
        crop = bytes(crop) if isinstance(crop, (bytes, bytearray, memoryview)) and len(crop) else None
        explicit = rec.get("observations") if has_obs else None
        if explicit is not None and not (isinstance(explicit, float) and math.isnan(explicit)) and len(explicit):
            for o in explicit:
                box = [o.get(k) for k in ("x1", "y1", "x2", "y2")]
                t = _s(o.get("time"))
                obs.append(_obs(_s(o.get("drive")) or best_drive, _s(o.get("image")) or "", cls, box,
                                _f(o.get("confidence")), o.get("width"), o.get("height"),
                                t or first_seen, t or last_seen, _t(t) if t else ft, _t(t) if t else lt))
            # the crop belongs to the best box
            bkey = _obs(best_drive, _s(rec.get("best_image")) or "", cls,
                        [rec.get(k) for k in ("best_x1", "best_y1", "best_x2", "best_y2")], None, None, None,
                        None, None, None, None)["key"]
            for o in obs:
                if o["key"] == bkey:
                    o["crop"] = crop
        else:
            best_image = _s(rec.get("best_image"))
            if best_image:
                o = _obs(best_drive, best_image, cls, [rec.get(k) for k in ("best_x1", "best_y1", "best_x2", "best_y2")],
                         _f(rec.get("confidence")), rec.get("best_width"), rec.get("best_height"),
                         first_seen, last_seen, ft, lt)
                o["crop"] = crop
                obs.append(o)
            for im in _listify(rec.get("images")):
                d = _image_drive(im, drives, best_drive, best_image)
                if d is None:
                    continue
                d, name = d
                if name == best_image and d == best_drive:
                    continue
                obs.append(_obs(d, name, cls, None, None, None, None, first_seen, last_seen, ft, lt))
        if not obs:  # no image at all: one image-level sighting so the damage still counts once
            obs.append(_obs(best_drive, "", cls, None, None, None, None, first_seen, last_seen, ft, lt))
        # the run's latest drive (``last_drive``) stored last: sightings without their own time carry the candidate's
        # last time, so a run's drives tie on it, and the registry's latest drive is the one stored last among them
        last_drive = _s(rec.get("last_drive"))
        if last_drive and len({o["drive"] for o in obs}) > 1:
            obs.sort(key=lambda o: o["drive"] == last_drive)  # stable
        r["obs"] = obs
        out.append(r)
    return out


def _image_drive(im: str, drives: list[str], best_drive: str, best_image: str | None) -> tuple[str, str] | None:
    for d in drives:  # "drive/name" form
        if d and im.startswith(d + "/"):
            return d, im[len(d) + 1:]
    if len(drives) == 1:
        return drives[0], im
    if im == best_image and best_drive:
        return best_drive, im
    if not drives:
        return (best_drive or "", im)
    return "|".join(sorted(drives)), im  # ambiguous: keyed under the run's drive set


def _obs(drive, image, cls, box, conf, width, height, first_seen, last_seen, ft, lt) -> dict:
    b = [_f(v) for v in box] if box is not None else None
    boxed = b is not None and all(v is not None for v in b)
    key_box = tuple(int(round(v)) for v in b) if boxed else (-1, -1, -1, -1)
    return {
        "key": (drive or "", image, cls, *key_box), "boxed": boxed, "drive": drive or "", "confidence": conf,
        "width": int(width) if _isnum(width) else None, "height": int(height) if _isnum(height) else None,
        "first_seen": first_seen, "last_seen": last_seen, "first_t": ft, "last_t": lt, "crop": None,
    }
