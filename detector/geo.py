"""Great-circle distance and bearing between WGS84 positions: one formula for the frames stage (stale fixes, GPS
jumps, track headings), the track files (a heading and speed between two track points) and the video sampling
(the distance travelled since the last kept frame)."""

from __future__ import annotations

import numpy as np

__all__ = ["EARTH_R", "distance_bearing"]

EARTH_R = 6_371_008.8  # mean Earth radius (m), IUGG


def distance_bearing(lat1, lon1, lat2, lon2):
    """Haversine distance (m) and initial bearing (degrees from true north, 0..360) from 1 to 2; numpy arrays
    (broadcast) or scalars (then numpy floats). The distance is exact to < 0.5 % (a sphere), the bearing that of
    the great circle (a straight line on the road at a few metres)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(np.subtract(lon2, lon1))
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    dist = 2 * EARTH_R * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    y = np.sin(dl) * np.cos(p2)
    x = np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dl)
    return dist, np.degrees(np.arctan2(y, x)) % 360.0
