#!/usr/bin/env bash
# On the GPU machine (with .carry from tests/cuda/device/pack.sh plus .carry/int8/yolov8n.percentile.cache):
# the INT8 speed loop. Stages ($STAGES, default all):
#   tests    test_cuda's INT8 tests
#   build    yolov8n INT8 engines at batch 1 and 32 (build time; engine load time in a fresh process)
#   bench    yolov8n FP16 vs INT8, batch 1 and 32, CUDA graphs, same call; per-layer profiles
#   layers   bench/int8_layer_bench (if carried): igemm8 vs cudnn8 vs the quantize pass on two layers
#   compare  kestrel compare yolov8n --precisions fp32,fp16,int8 (coco-val, if carried)
set -u
cd "$(dirname "$0")/../.."
STAGES=${STAGES:-tests build bench layers compare}
source bench/device/common.sh
export KESTREL_DATA=$KESTREL_SHARED/data KESTREL_TIMING_CACHE=/tmp/kestrel.cache
D=$KESTREL_DATA
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
kestrel quantize $D/models/yolov8n.onnx --calib-cache .carry/int8/yolov8n.percentile.cache -o /tmp/q.onnx > $L/quantize.log 2>&1 || tail -3 $L/quantize.log
if has tests; then
  echo "== tests ($(elapsed) s)"
  timeout ${TEST_TIMEOUT:-300} test_cuda --gtest_filter="${TEST_FILTER:-*Int8*}" > $L/tests.log 2>&1
  echo "exit $?"
  grep -E "cudnn8|FAILED|PASSED|Failure|\[int8\] model" $L/tests.log | head -${TEST_LINES:-40}
  pack
fi
if has build; then
  for b in 1 32; do
    echo "== build int8 batch $b ($(elapsed) s)"
    /usr/bin/time -f "%e s wall, %M KB" timeout 300 kestrel build /tmp/q.onnx --int8 --batch $b -o /tmp/int8_b$b.engine -v > $L/build_int8_b$b.log 2>&1
    echo "exit $?"; tail -3 $L/build_int8_b$b.log
    /usr/bin/time -f "load+run %e s wall" timeout 120 kestrel bench /tmp/int8_b$b.engine --duration 0.2 > $L/load_int8_b$b.log 2>&1
    tail -1 $L/load_int8_b$b.log
  done
  pack
fi
if has bench; then
  for b in 1 32; do
    for p in fp16 int8; do
      model=$D/models/yolov8n.onnx; [ $p = int8 ] && model=/tmp/q.onnx
      timeout 200 kestrel bench $model --$p --batch $b --cuda-graph --duration 3 --json $L/bench_${p}_b$b.json > $L/bench_${p}_b$b.log 2>&1
      echo "bench $p b$b exit $?: $(grep -E 'GPU Compute' $L/bench_${p}_b$b.log)"
      timeout 120 kestrel bench $model --$p --batch $b --cuda-graph --duration 0.5 --dump-profile > $L/profile_${p}_b$b.log 2>&1
    done
  done
  pack
fi
if has layers && command -v int8_layer_bench > /dev/null; then
  timeout 120 int8_layer_bench 2>&1 | tail -4
fi
if has compare && [ -d $D/coco-val ]; then
  echo "== compare yolov8n ($(elapsed) s)"
  timeout 300 kestrel compare $D/models/yolov8n.onnx --data $D/coco-val --precisions fp32,fp16,int8 --batch 1,32 \
    --calib-cache .carry/int8/yolov8n.percentile.cache --json $L/compare_yolov8n.json --chart $L/compare_yolov8n.svg \
    > $L/compare_yolov8n.log 2>&1
  echo "exit $?"; grep -A8 "^precision" $L/compare_yolov8n.log
  pack
fi
echo "== done ($(elapsed) s)"
