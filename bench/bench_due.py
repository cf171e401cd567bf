"""`patrol export --format due` at scale: ``due.due_table`` (every segment's last patrol, day by day) against
``segments.segment_condition`` (the segments export's coverage, all frames at once) over the same synthetic frames:
1 Hz-like points every STEP m along N random segments of a network, one drive a day over 60 days.

    python bench/bench_due.py [ROADS] [STEP_M] [N]   (default: the sample network, 2 m, 8000 segments)

Prints both times and their ratio (2 CPU cores: the sample network, 11,239 segments, 166,000 frames: due 0.82 s,
segment_condition 4.80 s, 0.17; Andorra's OSM network, 1,614 segments, 428,000 frames (`... andorra.osm.pbf 2 1614`):
6.65 s, 21.6 s, 0.31)."""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detector.config import Config  # noqa: E402
from detector.due import due_table  # noqa: E402
from detector.roads import load_roads  # noqa: E402
from detector.segments import segment_condition  # noqa: E402


def main() -> None:
    roads = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "sample_drives" / "toyama" / "roads.geojson"
    step = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 8000
    cfg = Config()
    t0 = time.perf_counter()
    net = load_roads(roads, cfg)
    gdf = net.gdf
    print(f"{roads.name}: {len(gdf)} segments, loaded in {time.perf_counter() - t0:.2f} s")
    rng = np.random.default_rng(0)
    lines = np.asarray(gdf.geometry.values)
    pick = rng.choice(len(lines), size=min(len(lines), n), replace=False)
    xs, ys, ts, ds = [], [], [], []
    for k, i in enumerate(pick):
        s = np.arange(0, lines[i].length, step)
        p = shapely.line_interpolate_point(lines[i], s)
        xs.append(shapely.get_x(p))
        ys.append(shapely.get_y(p))
        ts.append(1.79e9 + (k % 60) * 86400 + np.arange(len(s)))
        ds.append(np.full(len(s), f"d{k % 60}"))
    lon, lat = Transformer.from_crs(gdf.crs, "EPSG:4326", always_xy=True).transform(np.concatenate(xs),
                                                                                      np.concatenate(ys))
    frames = pd.DataFrame({"drive": np.concatenate(ds), "lat": lat, "lon": lon, "heading": np.nan,
                           "t": np.concatenate(ts)})
    t0 = time.perf_counter()
    d = due_table(net, frames, cfg, date(2027, 3, 1))
    t_due = time.perf_counter() - t0
    t0 = time.perf_counter()
    segment_condition(net, None, frames, cfg, period=True)
    t_seg = time.perf_counter() - t0
    print(f"{len(frames)} frames: due_table {t_due:.2f} s ({int((~d.table['never_surveyed']).sum())} segments "
          f"surveyed, {int(d.due.sum())} due), segment_condition {t_seg:.2f} s; ratio {t_due / t_seg:.2f}")


if __name__ == "__main__":
    main()
