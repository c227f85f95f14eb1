#!/usr/bin/env bash
# On the GPU machine (with .carry from pack_library.sh, "bench" in EXTRA_WITH): one row of the speed table
# against torch.compile. Kestrel's FP16 engine of a built-in model (GPU compute median, `kestrel bench
# --cuda-graph --no-data-transfers`) timed before and after PyTorch's anchors (`anchors.py MODEL --batches B
# --compile`: eager, eager + CUDA graph, torch.compile max-autotune, FP16 channels-last), all in this call.
# Lines in $OUT/compile.txt as they come; the JSON files in $OUT/compile.tgz.
#   MODEL=yolo11n BATCH=1 [COMPILE_TIMEOUT=400] bash bench/device/compile_row.sh
set -u
cd "$(dirname "$0")/../.."
source bench/device/common.sh
J=/tmp/compile; mkdir -p $J
exec > >(tee -a "$OUT/compile.txt") 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
m=$MODEL b=${BATCH:-1}
median() { python3 -c "import json; print('%.4f' % json.load(open('$1'))['gpu_compute_ms']['median'])" 2>/dev/null || echo "-"; }
timeout 240 kestrel build $m --fp16 --batch $b -o /tmp/$m.engine > $L/build_$m.log 2>&1 || { echo "build failed: $(tail -1 $L/build_$m.log)"; exit 1; }
kestrel_ms() {
  timeout 60 kestrel bench /tmp/$m.engine --cuda-graph --no-data-transfers --duration 1 --warmup 200 --json $J/${m}_b${b}_$1.json \
    > $L/bench_${m}_$1.log 2>&1
  median $J/${m}_b${b}_$1.json
}
echo "kestrel $m b$b before: $(kestrel_ms before) ms"
( cd $KESTREL_SHARED/bench && PYTHONUNBUFFERED=1 timeout ${COMPILE_TIMEOUT:-400} python3 -u anchors.py $m --batches $b --compile ) \
  > $L/anchors_$m.log 2>&1
echo "anchors exit $?"; grep -E "^\{|rel err" $L/anchors_$m.log | cut -c1-260
grep '^RESULTS_JSON' $L/anchors_$m.log | cut -d' ' -f2- > $J/${m}_b${b}_anchors.json
echo "kestrel $m b$b after: $(kestrel_ms after) ms"
tar czf $OUT/compile.tgz -C $J . ; pack
echo "done ($(elapsed) s)"
