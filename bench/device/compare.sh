#!/usr/bin/env bash
# On the GPU machine (with .carry from pack_compare.sh): kestrel compare for the three models on coco-val
# (FP32 and FP16, batch 1 and 32: mAP, latency, verdicts), kestrel bench at batch 1 and 32, and the
# PyTorch anchors (eager, CUDA graphs, torch.compile max-autotune) on the same GPU in the same call.
# Every log goes to $OUT/logs.tgz; STAGES selects (default: compare bench anchors).
set -u
cd "$(dirname "$0")/../.."
STAGES=${STAGES:-compare bench anchors}
source bench/device/common.sh
export KESTREL_TIMING_CACHE=/tmp/kestrel.cache
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
D=$KESTREL_SHARED/data
if has compare; then
  for m in ${MODELS:-yolov5n yolov8n yolo11n}; do
    echo "== compare $m ($(elapsed) s)"
    timeout ${COMPARE_TIMEOUT:-150} kestrel compare $D/models/$m.onnx --data $D/coco-val --batch 1,32 \
      --json $L/compare_$m.json --chart $L/compare_$m.svg > $L/compare_$m.log 2>&1
    echo "exit $?"
    grep -A8 "^precision" $L/compare_$m.log
    pack
  done
fi
if has bench; then
  for b in 1 32; do
    echo "== bench yolov8n fp16 batch $b, CUDA graph ($(elapsed) s)"
    timeout 60 kestrel bench $D/models/yolov8n.onnx --fp16 --batch $b --cuda-graph --duration 3 --json $L/bench_b$b.json > $L/bench_b$b.log 2>&1
    grep -E "Throughput|Latency|GPU Compute|Compute rate|Power|\[W\]" $L/bench_b$b.log
  done
  echo "== per-layer profile, batch 32 ($(elapsed) s)"
  timeout 60 kestrel bench $D/models/yolov8n.onnx --fp16 --batch 32 --cuda-graph --duration 1 --dump-profile > $L/profile_b32.log 2>&1
  echo "exit $?"; grep -A3 "separate profiling" $L/profile_b32.log; grep -E "^total" $L/profile_b32.log
  pack
fi
if has anchors; then
  left=$(( ${CALL_BUDGET:-560} - $(elapsed) ))
  echo "== anchors ($(elapsed) s, $left s left)"
  PYTHONUNBUFFERED=1 timeout $left python3 $KESTREL_SHARED/bench/anchors.py yolov8n --batches 1,32 --compile > $L/anchors.log 2>&1
  echo "exit $?"
  grep -vE "^\s*$|Warning|warn" $L/anchors.log | tail -20 | cut -c1-300
fi
pack
echo "== done ($(elapsed) s)"
