#!/usr/bin/env bash
# On the GPU machine (with .carry from pack_int8.sh): the INT8 engine end to end.
#   tests    test_cuda's INT8 tests (kernels vs the CPU reference, whole models vs the simulation)
#   val      Q/DQ models for each calibrator from the carried caches (and the carried --int8-auto
#            models), INT8 engines, COCO mAP on coco-val
#   build    yolov8n INT8 engines at batch 1 and 32: build time, then load + bench in a new process
#   bench    yolov8n FP16 vs INT8 (percentile), batch 1 and 32, CUDA graphs
#   layers   bench/int8_layer_bench: igemm8 vs cudnn8 vs the quantize pass on two layers
#   compare  kestrel compare yolov8n --precisions fp32,fp16,int8
# Every log goes to $OUT/logs.tgz; STAGES selects (default: all).
set -u
cd "$(dirname "$0")/../.."
Q=/tmp/qdq
STAGES=${STAGES:-tests val build bench layers compare}
source bench/device/common.sh
mkdir -p "$Q"
export KESTREL_TIMING_CACHE=/tmp/kestrel.cache
export KESTREL_DATA=$KESTREL_SHARED/data
D=$KESTREL_DATA
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
# The Q/DQ model of MODEL with calibrator / policy V: carried as it is, or made here from the carried
# calibration cache (no images needed); prints its path, or nothing.
qdq_for() {
  local m=$1 v=$2
  if [ -f .carry/int8/$m.$v.qdq.onnx ]; then echo .carry/int8/$m.$v.qdq.onnx; return; fi
  [ -f .carry/int8/$m.$v.cache ] || return
  [ -f $Q/$m.$v.qdq.onnx ] || kestrel quantize $D/models/$m.onnx --calib-cache .carry/int8/$m.$v.cache \
    -o $Q/$m.$v.qdq.onnx > $L/quantize_$m.$v.log 2>&1 || { tail -2 $L/quantize_$m.$v.log >&2; return; }
  echo $Q/$m.$v.qdq.onnx
}
if has tests; then
  echo "== tests ($(elapsed) s)"
  timeout ${TEST_TIMEOUT:-240} test_cuda --gtest_filter="${TEST_FILTER:-*Int8*}" > $L/tests.log 2>&1
  echo "exit $?"
  grep -E "^\[int8\]|FAILED|PASSED|Failure" $L/tests.log | head -40
  pack
fi
if has val; then
  for m in ${MODELS:-yolov8n yolov5n yolo11n}; do
    for v in ${CALIBS:-percentile minmax entropy auto}; do
      f=$(qdq_for $m $v); [ -n "$f" ] || { echo "val $m $v: no Q/DQ model or cache"; continue; }
      timeout 120 kestrel val $f --backend cuda --int8 --data $D/coco-val --json $L/val_$m.$v.json > $L/val_$m.$v.log 2>&1
      echo "val $m $v exit $? ($(elapsed) s): $(grep -E 'Average Precision.*0.50:0.95.*all.*100' $L/val_$m.$v.log | head -1)"
    done
    pack
  done
fi
if has build; then
  model=$(qdq_for yolov8n percentile)
  for b in 1 32; do
    echo "== build int8 batch $b ($(elapsed) s)"
    /usr/bin/time -f "%e s wall" timeout 300 kestrel build $model --int8 --batch $b -o /tmp/int8_b$b.engine > $L/build_int8_b$b.log 2>&1
    echo "exit $?"; tail -2 $L/build_int8_b$b.log
    /usr/bin/time -f "load + bench: %e s wall" timeout 120 kestrel bench /tmp/int8_b$b.engine --duration 0.2 > $L/load_int8_b$b.log 2>&1
    tail -1 $L/load_int8_b$b.log
  done
  pack
fi
if has bench; then
  for b in 1 32; do
    for p in fp16 int8; do
      model=$D/models/yolov8n.onnx; [ $p = int8 ] && model=$(qdq_for yolov8n percentile)
      echo "== bench yolov8n $p batch $b ($(elapsed) s)"
      timeout 90 kestrel bench $model --$p --batch $b --cuda-graph --duration 3 --json $L/bench_${p}_b$b.json > $L/bench_${p}_b$b.log 2>&1
      echo "exit $?"; grep -E "Throughput|GPU Compute" $L/bench_${p}_b$b.log
    done
  done
  timeout 90 kestrel bench $model --int8 --batch 32 --cuda-graph --duration 1 --dump-profile > $L/profile_int8_b32.log 2>&1
  timeout 90 kestrel bench $D/models/yolov8n.onnx --fp16 --batch 32 --cuda-graph --duration 1 --dump-profile > $L/profile_fp16_b32.log 2>&1
  pack
fi
if has layers; then
  timeout 120 int8_layer_bench 2>&1 | tail -4
fi
if has compare; then
  echo "== compare yolov8n ($(elapsed) s)"
  timeout 240 kestrel compare $D/models/yolov8n.onnx --data $D/coco-val --precisions fp32,fp16,int8 --batch 1,32 \
    --calib-cache .carry/int8/yolov8n.percentile.cache \
    --json $L/compare_yolov8n.json --chart $L/compare_yolov8n.svg > $L/compare_yolov8n.log 2>&1
  echo "exit $?"
  grep -A8 "^precision" $L/compare_yolov8n.log
fi
pack
echo "== done ($(elapsed) s)"
