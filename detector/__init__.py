"""Road-damage patrol pipeline.

Stages (one module each): frames -> detect -> locate -> dedupe -> export, plus config.
Every stage reads and writes artifacts in a run folder so work already done is skipped.
"""

__version__ = "0.12.0"

CLASS_IDS = ("D00", "D10", "D20", "D40")
