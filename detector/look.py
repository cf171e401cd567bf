"""How well a frame could show the road: its look (``measure_look``), measured in the detect stage on the decoded
picture, and the verdict (``look_verdict``) that tells a frame that could not have shown a damage: too dark (night,
dusk, a tunnel), washed out (into a low sun, glare), smeared (motion blur, a wiper, a wet or fogged lens).

The registry does not count such a frame as a look at a damage it drove past (``Store._update_passes``: a drive past
a damage only in poor frames is no unseen pass, 未検出通過); a sighting from it still counts. Detection runs on every
frame whatever its look (a hit on a dark frame is still a hit).

Measured on a grey copy ``LOOK_SIDE`` px on its long side (INTER_AREA), so the numbers do not depend on the camera's
resolution:

* ``brightness``: the mean grey level, 0-255.
* ``clipped``: the share of pixels at 250 or more (burnt out: sun, glare, a washed-out lens), 0-1.
* ``sharpness``: the mean absolute second difference of the grey copy (grey levels a pixel) along its blurrier
  axis, across or down the picture: a smeared frame has little of it. Along the blurrier axis: a motion blur
  sideways (a turn, a shaking mount) leaves the picture sharp down it, and the Laplacian of both axes would still
  call it sharp (measured: a 9 px sideways blur on the sample frames kept 70% of their Laplacian; the detector
  found none of its hits on them). The mean of the absolute value, not the variance: a few bright edges (a lamp,
  a white line) weigh as much as they cover, not as their square.

Cost, measured (``bench/bench_look.py``, 2 shared cores): see README (Frames: look).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

#: the long side of the grey copy measured (px)
LOOK_SIDE = 256
#: a pixel this bright or brighter is clipped (burnt out)
CLIP_LEVEL = 250
#: frames.csv columns, in order
LOOK_COLUMNS = ["brightness", "clipped", "sharpness", "look"]


def measure_look(img: np.ndarray) -> tuple[float, float, float]:
    """(brightness 0-255, clipped share 0-1, sharpness) of a decoded BGR (or grey) picture, rounded as frames.csv
    writes them (so a resumed run reads back the same numbers)."""
    k = max(img.shape[:2]) // (2 * LOOK_SIDE)
    if k > 1:  # every k-th pixel first (a view): INTER_AREA over a 12 MP photo alone costs more than detection
        img = img[::k, ::k]
    h, w = img.shape[:2]
    s = LOOK_SIDE / max(h, w)
    if s < 1:
        small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    else:
        small = img
    g = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 and small.shape[2] >= 3 else (
        small if small.ndim == 2 else small[..., 0])
    brightness = float(g.mean())
    clipped = float(np.count_nonzero(g >= CLIP_LEVEL)) / g.size
    f = g.astype(np.float32)
    if min(f.shape) < 3:
        return round(brightness, 1), round(clipped, 4), 0.0
    dx = float(np.abs(f[:, 2:] - 2 * f[:, 1:-1] + f[:, :-2]).mean())
    dy = float(np.abs(f[2:] - 2 * f[1:-1] + f[:-2]).mean())
    sharpness = min(dx, dy)
    return round(brightness, 1), round(clipped, 4), round(sharpness, 2)


def look_verdict(brightness: float, clipped: float, sharpness: float, spec) -> str:
    """'' when the frame could show the road (or its look was not measured: NaN), else why not, the words joined by
    '+': ``dark`` (brightness below ``spec.look_min_brightness``), ``glare`` (clipped share above
    ``spec.look_max_clipped``), ``blurred`` (sharpness below ``spec.look_min_sharpness``). ``spec``: the config's
    ``frames`` section."""
    why = []
    if _known(brightness) and brightness < spec.look_min_brightness:
        why.append("dark")
    if _known(clipped) and clipped > spec.look_max_clipped:
        why.append("glare")
    if _known(sharpness) and sharpness < spec.look_min_sharpness and "dark" not in why:
        why.append("blurred")  # (a dark frame has little contrast of any kind: dark says why)
    return "+".join(why)


def _known(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))
