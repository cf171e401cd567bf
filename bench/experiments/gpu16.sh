# Session 16 (model card: "A finer detection level and a larger input"). One device call: assemble the data carried
# in device_carry/d1..d4 (as bench/experiments/gpu.sh), then fine-tune two models side by side from the shipped one:
#   J — yolov5nu-p2 (a fourth, stride-4 level; bench/experiments/p2init.py made device_carry/s/p2init.pt), 640 px
#   K — the shipped architecture at 800 px (the photos are 600 and 512 px: thin cracks drawn larger)
# Dry-run on CPU first: DEV=cpu IMGSZ_J=64 IMGSZ_K=64 HOURS=0.001 SKIP_PIP=1 R=/tmp/rddmini bash bench/experiments/gpu16.sh
set -u
export PYTHONUNBUFFERED=1
[ -n "${SKIP_PIP:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site device_carry/d1/wheels/*.whl || exit 1
[ -n "${SKIP_PIP:-}" ] || { cp -r bench/experiments/polars_shim/polars /tmp/site/; export PYTHONPATH=/tmp/site:$PWD; }
R=${R:-/tmp/rdd}
if [ ! -f $R/data.yaml ]; then
  mkdir -p $R/images/train $R/labels
  for p in device_carry/d1 device_carry/d2 device_carry/d3 device_carry/d4; do cp -rl $p/images/train/. $R/images/train/ 2>/dev/null || cp -r $p/images/train/. $R/images/train/; done
  cp -r device_carry/d1/labels/. $R/labels/; mkdir -p $R/images/val; cp device_carry/d1/images/val/* $R/images/val/
  printf 'path: %s\ntrain: images/train\nval: images/val\nnames:\n  0: D00\n  1: D10\n  2: D20\n  3: D40\n' $R > $R/data.yaml
fi
echo "train images: $(ls $R/images/train | wc -l)  labels: $(ls $R/labels/train | wc -l)"; nvidia-smi -L 2>/dev/null
H=${HOURS:-0.13}
COMMON="--device ${DEV:-0} --epochs 300 --hours $H --batch 32 --oversample Japan_=2 --oversample D40=2 --cache ram --workers 7
  --lr0 0.0004 --optimizer AdamW --hyp save_period=10 --hyp warmup_epochs=1 --no-val --no-export --out /tmp/runs"
python3 cli.py train $R/data.yaml --model device_carry/s/p2init.pt --imgsz ${IMGSZ_J:-640} $COMMON --name gpuJ > /tmp/J.log 2>&1 &
python3 cli.py train $R/data.yaml --model weights/rdd-yolo.pt --imgsz ${IMGSZ_K:-800} $COMMON --name gpuK > /tmp/K.log 2>&1 &
wait
python3 - <<'PY'
import os, shutil, glob, tarfile
from ultralytics.utils.torch_utils import strip_optimizer
out = os.environ.get("OUT", "/tmp/out16"); os.makedirs(out, exist_ok=True)
for run in ("gpuJ", "gpuK"):
    w = f"/tmp/runs/{run}/weights"
    eps = sorted(glob.glob(f"{w}/epoch*.pt"), key=lambda p: int(p.split("epoch")[-1][:-3]))
    for p in [f"{w}/last.pt"] + eps[-2:]:
        if os.path.exists(p):
            d = f"{out}/{run}-{os.path.basename(p)}"; strip_optimizer(p, d); print(d, os.path.getsize(d))
with tarfile.open(f"{out}/logs.tgz", "w:gz") as t:
    for p in ["/tmp/J.log", "/tmp/K.log"] + glob.glob("/tmp/runs/*/results.csv") + glob.glob("/tmp/runs/*/args.yaml"):
        if os.path.exists(p): t.add(p, arcname=p.replace("/", "_"))
PY
tail -4 /tmp/J.log; tail -4 /tmp/K.log
