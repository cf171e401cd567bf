"""Positions in Japan's old Tokyo datum (旧日本測地系, EPSG:4301) to WGS 84: one function for a photo's EXIF fix
(``GPSMapDatum`` ``TOKYO``, read by ``frames.scan``) and track points in it (``tracks.read_track``: a CSV titled
日本測地系 or whose datum column marks the row so, an NMEA log whose ``$--DTM`` names the Tokyo datum).

The Tokyo datum (Bessel ellipsoid, fixed at the 1918 origin in Azabu) is 400–500 m off WGS 84 in Japan. Older car
navigation units, fleet telematics exports, municipal loggers and some older phones and GPS cameras still write it.

Contracts:

* ``classify(text)`` -> ``(kind, label)``: ``kind`` ``"wgs84"`` (nothing written, or WGS 84 and what agrees with it
  to well under a metre for this purpose: JGD2000, JGD2011, 日本測地系2000/2011, 世界測地系, ITRF…, GRS80,
  ETRS89, NAD83, GDA), ``"tokyo"`` (``TOKYO``, ``Tokyo Datum``, ``日本測地系`` without a year, ``旧日本測地系``,
  ``EPSG:4301``) or ``"unknown"``; ``label`` the text as written, NULs and padding removed.
* ``tokyo_to_wgs84(lat, lon)`` -> ``(lat, lon)`` numpy arrays; vectorised (one pyproj call); NaN stays NaN.
  The operation is EPSG:15484 "Tokyo to WGS 84 (108)", a 3-parameter geocentric translation (dX -146.414,
  dY 507.337, dZ 680.507 m: the parameters of EPSG:15483 Tokyo to JGD2000 (1), GSI's), area of use Japan
  including outlying islands, EPSG accuracy 9 m. It is fixed here rather than left to PROJ's choice, which
  depends on the point (EPSG:1305, for Korea, wins there) and on the installed proj.db. GSI's own conversion
  (TKY2JGD) is a grid that pyproj does not ship; measured against published TKY2JGD results the translation is
  0.8 m off at the datum origin and 1.4 m off in Yamanashi (``tests/test_datum.py``).
"""

from __future__ import annotations

import re
import threading
import unicodedata

import numpy as np

__all__ = ["TOKYO_OPERATION", "TOKYO_ACCURACY_M", "classify", "tokyo_to_wgs84", "TOKYO_NOTE"]

TOKYO_OPERATION = "EPSG:15484"  # Tokyo to WGS 84 (108)
TOKYO_ACCURACY_M = 9.0  # EPSG's stated accuracy; measured 0.8-1.4 m against TKY2JGD on Honshu
TOKYO_NOTE = (f"coordinates in the Tokyo datum (日本測地系), converted to WGS 84 ({TOKYO_OPERATION}, "
              f"Tokyo to WGS 84 (108): within ~{TOKYO_ACCURACY_M:g} m, about 1-2 m on Honshu)")

_TOKYO = re.compile(r"^(?:TOKYO.*|旧?日本測地系|TOKYODATUM|EPSG4301|4301)$")
_WGS = re.compile(r"^(?:WGS|WGS(?:84|1984).*|JGD\d{4}.*|日本測地系(?:20\d\d).*|世界測地系.*|ITRF.*|GRS80|GRS1980|"
                  r"ETRS89.*|NAD83.*|GDA(?:94|2020)|EPSG(?:4326|4612|6668|4979|4978|7789)|4326|6668|4612)$")
_lock = threading.Lock()
_transformer = None


def classify(text: str | bytes | None) -> tuple[str, str]:
    """(``"wgs84"`` | ``"tokyo"`` | ``"unknown"``, the datum as written, cleaned) for an EXIF ``GPSMapDatum`` or a
    track file's datum mark. Empty or missing is ``"wgs84"`` (what GPS receivers compute, and what the EXIF
    standard's readers assume)."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    label = " ".join(str(text or "").replace("\x00", " ").split())
    key = re.sub(r"[^0-9A-Z\u3000-\u9fff]", "", unicodedata.normalize("NFKC", label).upper())
    if not key:
        return "wgs84", label
    if _TOKYO.match(key):
        return "tokyo", label
    if _WGS.match(key):
        return "wgs84", label
    return "unknown", label


def _get():
    global _transformer
    with _lock:
        if _transformer is None:  # made once, on first use (pyproj's import and proj.db lookup take ~0.1 s)
            from pyproj import Transformer

            # the EPSG operation as defined: latitude, longitude order (EPSG:4301 and 4326 are both lat/lon)
            _transformer = Transformer.from_pipeline(TOKYO_OPERATION)
        return _transformer


def tokyo_to_wgs84(lat, lon) -> tuple[np.ndarray, np.ndarray]:
    """WGS 84 latitude and longitude (degrees) of positions in the Tokyo datum; numpy arrays (or scalars), one
    vectorised call. NaN in, NaN out."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    if lat.size == 0:
        return lat.copy(), lon.copy()
    t = _get()
    with _lock:  # one Transformer, not to be used by two threads at once
        la, lo = t.transform(lat, lon)
    la, lo = np.asarray(la, dtype=float), np.asarray(lo, dtype=float)
    bad = ~(np.isfinite(lat) & np.isfinite(lon))
    return np.where(bad, np.nan, la), np.where(bad, np.nan, lo)
