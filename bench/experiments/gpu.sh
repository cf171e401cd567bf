# One device call: assemble the data carried in d1..d4, train runs G and H side by side, strip and return.
# Session 14 (model card: "Whole frames and source-aware classes"). Carried: device_carry/d1 (the wheels of
# ultralytics, ultralytics-thop, ultralytics-platform, pydantic, pydantic-core, annotated-types, typing-inspection;
# labels/train; 16 val images) and d2..d4 (the train images), one call each; then this, in the checkout root.
set -u
export PYTHONUNBUFFERED=1
[ -n "${SKIP_PIP:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site device_carry/d1/wheels/*.whl || exit 1
cp -r bench/experiments/polars_shim/polars /tmp/site/
export PYTHONPATH=/tmp/site:$PWD
R=/tmp/rdd; mkdir -p $R/images/train $R/labels
for p in device_carry/d1 device_carry/d2 device_carry/d3 device_carry/d4; do cp -rl $p/images/train/. $R/images/train/ 2>/dev/null || cp -r $p/images/train/. $R/images/train/; done
cp -r device_carry/d1/labels/. $R/labels/; mkdir -p $R/images/val; cp device_carry/d1/images/val/* $R/images/val/
printf 'path: %s\ntrain: images/train\nval: images/val\nnames:\n  0: D00\n  1: D10\n  2: D20\n  3: D40\n' $R > $R/data.yaml
echo "train images: $(ls $R/images/train | wc -l)  labels: $(ls $R/labels/train | wc -l)"; nvidia-smi -L
H=${HOURS:-0.115}
python3 cli.py train $R/data.yaml --model weights/rdd-yolo.pt --device ${DEV:-0} --imgsz ${IMGSZ:-640} --epochs 300 --hours $H --batch 32 \
  --oversample Japan_=2 --oversample D40=2 --cache ram --workers 7 --lr0 0.0004 --optimizer AdamW \
  --hyp mosaic=0 --hyp scale=0.25 --hyp save_period=10 --hyp warmup_epochs=1 --no-val --no-export \
  --out /tmp/runs --name gpuG > /tmp/G.log 2>&1 &
python3 bench/experiments/source_aware.py $R /tmp/rdd8 /tmp/runs $H > /tmp/H.log 2>&1 &
wait
python3 - <<'PY'
import os, shutil, glob, tarfile
from ultralytics.utils.torch_utils import strip_optimizer
out = os.environ["OUT"]
for run in ("gpuG", "gpuH"):
    w = f"/tmp/runs/{run}/weights"
    eps = sorted(glob.glob(f"{w}/epoch*.pt"), key=lambda p: int(p.split("epoch")[-1][:-3]))
    keep = [f"{w}/last.pt"] + eps[-2:]
    for p in keep:
        if os.path.exists(p):
            d = f"{out}/{run}-{os.path.basename(p)}"; strip_optimizer(p, d); print(d, os.path.getsize(d))
with tarfile.open(f"{out}/logs.tgz", "w:gz") as t:
    for p in ["/tmp/G.log", "/tmp/H.log"] + glob.glob("/tmp/runs/*/results.csv") + glob.glob("/tmp/runs/*/args.yaml"):
        if os.path.exists(p): t.add(p, arcname=p.replace("/", "_"))
PY
tail -5 /tmp/G.log; tail -5 /tmp/H.log
