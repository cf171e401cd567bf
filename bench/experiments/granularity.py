"""How the val mistakes at the shipped thresholds relate to the boxes' cut (model card, "Why Japan stays below 0.45"):
misses lying >= 60 % inside a prediction of their class, and false positives spanning two or more true boxes of their
class or covering / lying inside one. Usage: python bench/experiments/granularity.py [PREFIX ...] (default Japan_)."""
import sys
from pathlib import Path

import numpy as np
from detector.config import load_config
from detector.evaluate import image_matches, predict_split

RDD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rdd" / "data.yaml"
cfg = load_config(None)
thr = {c: cfg.classes[c].threshold for c in cfg.classes}
pfx = sys.argv[1:] or ["Japan_"]
preds = predict_split(str(RDD), None, cfg, "val", prefixes=pfx)
def inter(a, b):
    x1 = np.maximum(a[:, None, 0], b[None, :, 0]); y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2]); y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
fn_cov = fn = fp = fp_multi = fp_part = 0
for ip in preds:
    m = image_matches(ip, thr)
    k = m.kept; px, pc = ip.pred_xyxy[k], ip.pred_cls[k]
    gx, gc = ip.gt_xyxy, ip.gt_cls
    garea = (gx[:, 2] - gx[:, 0]) * (gx[:, 3] - gx[:, 1])
    parea = (px[:, 2] - px[:, 0]) * (px[:, 3] - px[:, 1])
    I = inter(px, gx) if len(px) and len(gx) else np.zeros((len(px), len(gx)))
    same = (pc[:, None] == gc[None, :]) if len(px) and len(gx) else np.zeros_like(I, bool)
    cov_g = np.where(same, I / np.maximum(garea[None, :], 1e-9), 0)  # share of the true box inside the prediction
    cov_p = np.where(same, I / np.maximum(parea[:, None], 1e-9), 0)  # share of the prediction inside a true box
    matched = m.gt_matched
    for j in np.flatnonzero(~matched):
        fn += 1
        if len(px) and cov_g[:, j].max() >= 0.6: fn_cov += 1
    for i in np.flatnonzero(m.gt_of < 0):
        fp += 1
        if len(gx) and (cov_g[i] >= 0.6).sum() >= 2: fp_multi += 1
        elif len(gx) and (cov_p[i].max() >= 0.6 or cov_g[i].max() >= 0.6): fp_part += 1
print(pfx, "FN", fn, "of which >=60% inside a same-class prediction:", fn_cov, "| FP", fp, "spanning >=2 same-class true boxes:", fp_multi, "overlapping one true box heavily (part/whole):", fp_part)
