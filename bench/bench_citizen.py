"""Citizen reports matched to the registry's damages at a city's scale: ``citizen.match_reports`` (kind-aware: every
report-damage pair within ``reports.radius_m`` from one STRtree query, the pick per report by numpy) against the
version of ``--before REF`` (git; default ``HEAD``: the nearest by ``query_nearest``), on the same synthetic data:
N damages of the four classes scattered over a city (about 6 x 6 km around the sample drive), and R reports, each a
few metres from a random damage (most within the radius of several damages: the worst case for the pairs), worded
as a pothole, a crack, an alligator crack or nothing, each text its own (as residents write them).

    python bench/bench_citizen.py [--reports 20000] [--damages 5000] [--before REF] [--repeat 5] [--run 40]

Prints the medians of both, their ratio, and how many reports' damage differs (the kind-aware pick). Measured (2 CPU
cores shared with other work, load 3-7: noisy), kind-aware against 349d8ba's nearest: 20,000 reports x 5,000
damages 0.21 s against 0.16 s (1.36), x 23 damages 0.20 s against 0.08 s; about 0.1 s of it reading the reports'
kinds (NFKC and three word patterns over each text). The whole ``patrol import-reports`` of 20,000 reports into the
sample registry: 1.5-4.8 s before and after alike (the noise larger than the change).

Then a run's lists (``--run N`` of the damages: ``patrol run --store --no-report``'s reports / reported_first): the
reports near its damages matched (``citizen.damage_matches``) against the whole registry's match. Measured, 20,000
reports x 5,000 damages, a run of 40: 0.243 s whole, 0.076 s near (229 reports), ratio 3.2, the same columns.

Then the kind step alone (``citizen.report_kinds``) of 20,000 reports worded as ``TEXTS`` and ``WORDED`` (negated
words, a roadside thing's damage), against ``--before``. Measured (load 4.5-4.8), ``REPORT_WORD_RULES`` against
2b532c3 without them: 0.22-0.37 s against 0.10-0.17 s (ratio 2.2), 9,151 reports of another kind; the whole match
of 20,000 x 5,000 0.27-0.37 s against 0.21-0.27 s (1.3). With each report's words not counted kept (``report_words``:
which and why) and the wider rules (穴は、ない, neither … nor, hole), 14 wordings, against b28c81e (load 4-7, noisy):
0.17-0.52 s against 0.15-0.39 s (ratio 1.15-1.8, most often 1.3), 4,335 reports of another kind (the three wordings
added: 穴は、ありません, neither … nor, a hole by the manhole); the whole match 0.9-1.1 times."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detector import citizen  # noqa: E402

TEXTS = ["道路に穴があいている", "舗装にひびが入っている", "亀甲状のひび割れ", "段差があります", "Pothole near the kerb"]
#: the kind step's texts besides ``TEXTS``: words ``citizen.REPORT_WORD_RULES`` does not count (negated, a roadside
#: thing's damage, an idiom), as residents write them
WORDED = ["穴はありません。舗装にひび割れがあります", "カーブミラーが割れている", "穴ではなく段差です",
          "No pothole, but the asphalt is cracked", "以前通報した穴がまだ直っていない", "ガードレールに穴、路面にもひび",
          "穴は、ありません。段差があります", "Neither a pothole nor a crack, just a bump", "A big hole by the manhole"]


def _before(ref: str):
    """``detector/citizen.py`` as of ``ref``, loaded as the module ``detector.citizen_before``."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:detector/citizen.py"], check=True,
                         capture_output=True, text=True).stdout
    path = Path(subprocess.run(["mktemp", "--suffix=.py"], check=True, capture_output=True, text=True).stdout.strip())
    path.write_text(src, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("detector.citizen_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    path.unlink()
    return mod


def _data(n_rep: int, n_dmg: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    m_lat, m_lon = 1 / 111_195, 1 / (111_195 * np.cos(np.radians(36.68)))
    lat = 36.68 + rng.uniform(-3000, 3000, n_dmg) * m_lat
    lon = 137.236 + rng.uniform(-3000, 3000, n_dmg) * m_lon
    targets = pd.DataFrame({"candidate_id": [f"R-{i + 1:06d}" for i in range(n_dmg)],
                            "class": rng.choice(["D00", "D10", "D20", "D40"], n_dmg, p=[0.5, 0.25, 0.15, 0.1]),
                            "lat": lat, "lon": lon, "status": "new"})
    at = rng.integers(0, n_dmg, n_rep)
    reports = pd.DataFrame({"report_id": [f"MCR-{i:05d}" for i in range(n_rep)],
                            "lat": lat[at] + rng.normal(0, 6, n_rep) * m_lat,
                            "lon": lon[at] + rng.normal(0, 6, n_rep) * m_lon,
                            "category": "道路", "posted_t": np.nan,
                            "body": [f"{t} ({i}番の通報、付近の住民より)" for i, t in enumerate(rng.choice(TEXTS, n_rep))]})
    return reports, targets


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reports", type=int, default=20_000)
    ap.add_argument("--damages", type=int, default=5_000)
    ap.add_argument("--before", default="HEAD")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--run", type=int, default=40, help="a run's damages, for its lists' columns")
    a = ap.parse_args()
    old = _before(a.before)
    reports, targets = _data(a.reports, a.damages)
    times: dict[str, list[float]] = {"before": [], "now": []}
    out = {}
    for _ in range(a.repeat):
        for name, mod in (("before", old), ("now", citizen)):
            t = time.perf_counter()
            out[name] = mod.match_reports(reports, targets, 20.0)
            times[name].append(time.perf_counter() - t)
    b, n = np.median(times["before"]), np.median(times["now"])
    seen = out["now"]["candidate_id"].notna()
    moved = int((out["now"]["candidate_id"] != out["before"]["candidate_id"])[seen].sum())
    print(f"{a.reports:,} reports, {a.damages:,} damages ({a.repeat} runs, medians): before ({a.before}) {b:.3f} s, "
          f"now {n:.3f} s, ratio now/before {n / b:.2f}; matched {int(seen.sum()):,}, of another damage than the "
          f"nearest {moved:,}; match: {out['now']['match'].value_counts().to_dict()}")
    _run_lists(reports, targets, a.run, a.repeat)
    _kinds(old, a.reports, a.repeat)


def _kinds(old, n_rep: int, repeat: int) -> None:
    """The kind step alone (``citizen.report_kinds``: NFKC, ``REPORT_WORD_RULES``' words taken out, the kind words read)
    of ``n_rep`` reports worded as ``TEXTS`` and ``WORDED``, each text its own: before and now, their ratio, and how
    many reports' kind differs."""
    rng = np.random.default_rng(1)
    reports = pd.DataFrame({"category": "道路", "body": [f"{t} ({i}番の通報)" for i, t in
                                                         enumerate(rng.choice(TEXTS + WORDED, n_rep))]})
    times: dict[str, list[float]] = {"before": [], "now": []}
    got = {}
    for _ in range(repeat):
        for name, mod in (("before", old), ("now", citizen)):
            t = time.perf_counter()
            got[name] = mod.report_kinds(reports)
            times[name].append(time.perf_counter() - t)
    b, n = np.median(times["before"]), np.median(times["now"])
    print(f"the kind step, {n_rep:,} reports ({len(TEXTS + WORDED)} wordings, each text its own): before {b:.3f} s, "
          f"now {n:.3f} s, ratio now/before {n / b:.2f}; of another kind now {int((got['now'] != got['before']).sum()):,}")


def _run_lists(reports: pd.DataFrame, targets: pd.DataFrame, n_run: int, repeat: int) -> None:
    """A run's lists' ``reports`` / ``reported_first`` (``patrol run --store --no-report``): the reports near its
    ``n_run`` damages matched (``citizen.damage_matches``) against the whole registry's (``registry_matches``, what
    report.html needs): the times, their ratio, and whether the columns agree."""
    from types import SimpleNamespace

    reports = reports.assign(posted_at="2026-11-20T09:00:00+09:00", posted_t=0.0)
    st = SimpleNamespace(report_targets=lambda: targets, reports=lambda: reports)
    cfg = SimpleNamespace(reports=SimpleNamespace(radius_m=20.0))
    ids = list(targets["candidate_id"].sample(n_run, random_state=1))
    times: dict[str, list[float]] = {"whole": [], "near": []}
    got = {}
    for _ in range(repeat):
        for name, f in (("whole", lambda: citizen.registry_matches(st, cfg)[0]),
                        ("near", lambda: citizen.damage_matches(st, cfg, ids))):
            t = time.perf_counter()
            got[name] = f()
            times[name].append(time.perf_counter() - t)
    w, n = np.median(times["whole"]), np.median(times["near"])
    same = citizen.damage_columns(got["whole"], ids) == citizen.damage_columns(got["near"], ids)
    print(f"a run's lists, {n_run} damages: the whole registry's match {w:.3f} s, the reports near its damages "
          f"({len(got['near']):,}) {n:.3f} s, ratio whole/near {w / n:.1f}; the same columns: {same}")


if __name__ == "__main__":
    main()
