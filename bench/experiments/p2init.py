"""Run J's starting point: the shipped model's weights moved into yolov5nu-p2 (layers 0-23 as they are, Detect 24 ->
28 with its three scales kept, the new P2 scale and branch freshly initialised). Prints how far the new model's
P3-P5 outputs are from the shipped model's on real photos (they must agree: the P2 scale starts at a low prior)."""
import os, sys, glob
os.environ["YOLO_OFFLINE"] = "1"
import torch
from ultralytics import YOLO

here = os.path.dirname(os.path.abspath(__file__))
shipped, out = sys.argv[1], sys.argv[2]
src = YOLO(shipped)
p2 = YOLO(os.path.join(here, "yolov5nu-p2.yaml"))
sd = {}
for k, v in src.model.state_dict().items():
    sd[k.replace("model.24.", "model.28.", 1) if k.startswith("model.24.") else k] = v
own = p2.model.state_dict()
bad = [k for k, v in sd.items() if k not in own or own[k].shape != v.shape]
missing = [k for k in own if k not in sd]
print("not loaded:", bad[:5], len(bad), "| new:", len(missing), "tensors")
assert not bad
p2.model.load_state_dict(sd, strict=False)
p2.model.names = src.model.names
p2.model.args = src.model.args
src.model.eval(); p2.model.eval()
imgs = sorted(glob.glob(sys.argv[3] + "/*.jpg"))[:4] if len(sys.argv) > 3 else []
if imgs:
    a = src.predict(imgs, imgsz=448, conf=0.25, verbose=False)
    b = p2.predict(imgs, imgsz=448, conf=0.25, verbose=False)
    for x, y in zip(a, b):
        print(len(x.boxes), len(y.boxes), x.boxes.conf[:3].tolist(), y.boxes.conf[:3].tolist())
ckpt = {"model": p2.model.half(), "ema": None, "updates": None, "optimizer": None, "epoch": -1,
        "train_args": dict(src.ckpt.get("train_args", {})), "date": None, "version": None}
torch.save(ckpt, out)
print("written", out, os.path.getsize(out))
