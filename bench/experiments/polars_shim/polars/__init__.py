"""Minimal stand-in for polars on the GPU machine (the 54 MB runtime would not fit a call): ultralytics' trainer
only reads results.csv back with it (read_results_csv). Backed by pandas, which that machine has."""
import io

import pandas as pd

__version__ = "0.0-shim"


class DataFrame:
    def __init__(self, data=None):
        self._df = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)

    def to_dict(self, as_series=False):
        return {c: self._df[c].tolist() for c in self._df.columns}

    def write_csv(self):
        return self._df.to_csv(index=False)


def read_csv(src, infer_schema_length=None, **kw):
    if isinstance(src, (bytes, bytearray)):
        src = io.BytesIO(src)
    return DataFrame(pd.read_csv(src))
