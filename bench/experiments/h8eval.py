# python bench/experiments/h8eval.py WEIGHTS.pt IMGSZ merge|jp|x [DATA_YAML]   (prints F1 with thresholds tuned on val)
"""Score an 8-class source-aware model with its two heads merged (class c and c+4 -> c, then per-class NMS),
thresholds tuned on val as for every other row; also the shipped model through the same code as a check."""
import os, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from detector.evaluate import resolve_split, label_paths_for, read_labels, source_of, ImagePreds, score, _order
from detector.tune import choose_thresholds
from detector import CLASS_IDS
from detector.frames import load_image
import torch, torchvision
from ultralytics import YOLO
torch.set_num_threads(os.cpu_count())
w, imgsz, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]   # mode: merge | jp | x
m = YOLO(w)
images, names = resolve_split(sys.argv[4] if len(sys.argv) > 4 else str(Path(__file__).resolve().parents[3] / "shared/data/rdd/data.yaml"), "val")
labels = label_paths_for(images)
preds = []
for p, lab in zip(images, labels):
    im = load_image(p)
    r = m.predict(im, imgsz=imgsz, conf=0.001, iou=0.7, max_det=300, verbose=False, agnostic_nms=False)[0]
    b = r.boxes
    xyxy, conf, cls = b.xyxy.numpy(), b.conf.numpy(), b.cls.numpy().astype(int)
    if mode == "jp": keep = cls < 4
    elif mode == "x": keep = cls >= 4
    else: keep = np.ones(len(cls), bool)
    xyxy, conf, cls = xyxy[keep], conf[keep], cls[keep] % 4
    if len(cls):
        k = torchvision.ops.batched_nms(torch.tensor(xyxy), torch.tensor(conf), torch.tensor(cls), 0.7).numpy()[:100]
        xyxy, conf, cls = xyxy[k], conf[k], cls[k]
    h, wd = im.shape[:2]
    gx, gk = read_labels(lab, names, wd, h)
    o = _order(conf)
    preds.append(ImagePreds(name=p.name, source=source_of(p.name), width=wd, height=h, pred_xyxy=xyxy[o],
                            pred_conf=conf[o], pred_cls=np.array([CLASS_IDS[c] for c in cls[o]], dtype=object),
                            gt_xyxy=gx, gt_cls=gk))
thr, f1 = choose_thresholds(preds)
res = score(preds, thr)
src = {k[:5]: round(v["f1"], 3) for k, v in res["per_source"].items()}
print(f"{Path(w).name} {mode} {imgsz}: F1 {res['f1']:.3f} mAP50 {res['map50']:.3f} {src} thr {thr}", flush=True)
jp = [ip for ip in preds if ip.name.startswith("Japan_")]
tj, fj = choose_thresholds(jp)
print(f"   Japan-tuned (fits val Japan): {fj:.3f} {tj}", flush=True)
