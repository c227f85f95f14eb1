#!/usr/bin/env bash
# On the GPU machine (with .carry from pack_library.sh; EXTRA_WITH "data/coco128/images/..." for INT8):
# the size table of the speed issue. For each built-in zoo model (seeded weights) and batch: Kestrel FP16
# (and INT8 when PRECS names it, calibrated on $CALIB_IMAGES coco128 images) GPU compute median
# (`kestrel bench --cuda-graph --no-data-transfers`), then PyTorch FP16 eager and eager + CUDA graph of the
# same architecture (bench/device/torch_fp16.py), side by side in this call. One line per model and batch
# in $OUT/sizes.txt as each row ends; every JSON in $OUT/sizes.tgz.
#   MODELS="yolov8s yolo11s" BATCHES="1 32" PRECS="fp16 int8" [TORCH=0] bash bench/device/sizes.sh
set -u
cd "$(dirname "$0")/../.."
source bench/device/common.sh
export KESTREL_DATA=$KESTREL_SHARED/data PYTHONUNBUFFERED=1
TC=/tmp/kestrel.cache
J=/tmp/sizes; mkdir -p $J
exec > >(tee -a "$OUT/sizes.txt") 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
median() { python3 -c "import json; print('%.4f' % json.load(open('$1'))['gpu_compute_ms']['median'])" 2>/dev/null || echo "-"; }
kestrel_row() {  # MODEL PREC BATCH -> prints the GPU compute median (ms) or "-"
  local m=$1 p=$2 b=$3 name=$1_$2_b$3
  local extra=($(precision_args $p))
  local t0=$(date +%s)
  if ! timeout ${BUILD_TIMEOUT:-240} kestrel build $m --batch $b "${extra[@]}" --timing-cache $TC -o /tmp/$name.engine \
      > $L/build_$name.log 2>&1; then
    echo "$name: build failed: $(tail -1 $L/build_$name.log)" >&2; echo "-"; return
  fi
  echo "$name: built in $(( $(date +%s) - t0 )) s" >&2
  timeout 120 kestrel bench /tmp/$name.engine --cuda-graph --no-data-transfers --duration 1 --warmup 200 \
    --json $J/$name.json > $L/bench_$name.log 2>&1 || { echo "$name: bench failed: $(tail -1 $L/bench_$name.log)" >&2; echo "-"; return; }
  rm -f /tmp/$name.engine
  median $J/$name.json
}
for m in ${MODELS:-yolov8n yolo11n}; do
  for b in ${BATCHES:-1 32}; do
    k16=$(kestrel_row $m fp16 $b)
    k8="-"; [[ " ${PRECS:-fp16} " == *" int8 "* ]] && k8=$(kestrel_row $m int8 $b)
    # TORCH=0: Kestrel's columns only (the PyTorch ones measured in another call).
    [ "${TORCH:-1}" = 0 ] || timeout ${TORCH_TIMEOUT:-200} python3 bench/device/torch_fp16.py $m --batches $b \
      --json $J/${m}_torch_b$b.json > $L/torch_${m}_b$b.log 2>&1 || echo "$m b$b: torch failed: $(tail -1 $L/torch_${m}_b$b.log)"
    python3 - "$m" "$b" "$k16" "$k8" "$J/${m}_torch_b$b.json" <<'PY'
import json, sys
m, b, k16, k8, tj = sys.argv[1:]
t = {}
try:
    t = {r["runtime"]: r["median_ms"] for r in json.load(open(tj))}
except Exception:
    pass
e, g = t.get("torch-eager"), t.get("torch-eager+cudagraph")
f = lambda v: "%.4f" % v if isinstance(v, float) else v
ratio = "%.2fx" % (g / float(k16)) if g and k16 != "-" else "-"
i8 = "%.2fx" % (float(k16) / float(k8)) if k8 != "-" and k16 != "-" else "-"
print(f"ROW {m} b{b}: kestrel fp16 {k16} int8 {k8} ({i8} fp16) | torch eager {f(e)} eager+graph {f(g)} | fp16 vs eager+graph {ratio}", flush=True)
PY
    tar czf $OUT/sizes.tgz -C $J . ; pack
  done
done
echo "done ($(elapsed) s)"
