# python bench/experiments/source_aware.py RDD_FOLDER WORK_FOLDER RUNS_FOLDER HOURS   (DEV=cpu IMGSZ=64 for a dry run)
"""Run H: source-aware classes. Japan boxes keep classes 0-3, Czech/China boxes become 4-7, so the Japan-style
heads are not pulled toward the RDD2022 annotation style. Fine-tunes the shipped model (its 4-class cls convs are
re-initialised for 8). Afterwards the Japan rows (0-3) are sliced out on the CPU machine into a 4-class model."""
import os, sys
from pathlib import Path
sys.path.insert(0, os.getcwd())
os.environ["YOLO_OFFLINE"] = "1"
src, dst, out, hours = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])
lines = []
for split in ("train", "val"):
    (dst / "images" / split).mkdir(parents=True, exist_ok=True)
    (dst / "labels" / split).mkdir(parents=True, exist_ok=True)
    for img in sorted((src / "images" / split).iterdir()):
        link = dst / "images" / split / img.name
        if not link.exists():
            link.symlink_to(img.resolve())
        lab = src / "labels" / split / (img.stem + ".txt")
        rows = lab.read_text().split("\n") if lab.exists() else []
        japan = img.name.startswith("Japan_")
        new, pothole = [], False
        for r in rows:
            if not r.strip():
                continue
            c, *rest = r.split()
            pothole |= c == "3"
            new.append(" ".join([str(int(c) + (0 if japan else 4))] + rest))
        (dst / "labels" / split / (img.stem + ".txt")).write_text("\n".join(new) + ("\n" if new else ""))
        if split == "train":
            n = max(2 if japan else 1, 2 if pothole else 1)
            lines += [str(link)] * n
(dst / "train.txt").write_text("\n".join(lines) + "\n")
names = {i: n for i, n in enumerate(["D00", "D10", "D20", "D40", "xD00", "xD10", "xD20", "xD40"])}
import yaml
(dst / "data.yaml").write_text(yaml.safe_dump({"path": str(dst), "train": str(dst / "train.txt"),
                                              "val": "images/val", "names": names}))
print(f"H: {len(lines)} train entries", flush=True)
from detector.train import _skip_amp_download, _patch_threads
from ultralytics import YOLO
_skip_amp_download()
y = YOLO("weights/rdd-yolo.pt")
_patch_threads(y)
y.train(data=str(dst / "data.yaml"), epochs=300, time=hours, imgsz=int(os.environ.get("IMGSZ", 640)), batch=32, device=os.environ.get("DEV", "0"), project=str(out),
        name="gpuH", exist_ok=True, plots=False, amp=os.environ.get("DEV", "0") != "cpu", seed=0, deterministic=False, workers=7, cache="ram",
        val=False, optimizer="AdamW", lr0=0.0005, warmup_epochs=1, save_period=10, verbose=True)
