#!/usr/bin/env bash
# On the GPU machine (with .carry from pack_pipeline.sh): images in, boxes out.
#   tests   test_cuda_yolo: GPU letterbox and detection kernels vs the CPU reference, bit for bit
#           (and test_model_gpu, the Detector, when the bundle carries it)
#   kernels bench/prepost_bench: the letterbox and detection kernels alone, batch 1 and 32
#   val     kestrel val on coco-val, GPU pre/post vs the CPU path (--cpu-prepost), every model, FP32 and
#           FP16 (mAP must agree within 1e-4), yolov8n FP16 speed at batch 1 and 32
#   bench   kestrel bench --images: yolov8n FP16 end to end at batch 1 and 32 (stage times, images/s,
#           latency of one decoded image), next to the network-only figures of the same call
# Every log goes to $OUT/logs.tgz; STAGES selects (default: all).
set -u
cd "$(dirname "$0")/../.."
STAGES=${STAGES:-tests kernels val bench}
source bench/device/common.sh
export KESTREL_TIMING_CACHE=/tmp/kestrel.cache
export KESTREL_DATA=$KESTREL_SHARED/data
D=$KESTREL_DATA
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
nproc
if has tests; then
  echo "== tests ($(elapsed) s)"
  timeout ${TEST_TIMEOUT:-300} test_cuda_yolo > $L/tests.log 2>&1
  echo "exit $?"
  grep -E "^\[detect\]|FAILED|PASSED|Failure|SKIPPED" $L/tests.log | head -40
  # The Detector (kestrel/model.h) on the GPU, when the bundle carries it.
  if command -v test_model_gpu > /dev/null; then
    KESTREL_REQUIRE_GPU=1 timeout ${TEST_TIMEOUT:-300} test_model_gpu > $L/tests_model.log 2>&1
    echo "test_model_gpu exit $?"
    grep -E "FAILED|PASSED|Failure|SKIPPED" $L/tests_model.log | head -10
  fi
  pack
fi
if has kernels; then
  echo "== kernels ($(elapsed) s)"
  timeout 120 prepost_bench $D > $L/prepost.log 2>&1
  echo "exit $?"
  cat $L/prepost.log
  pack
fi
speed() { grep -E "^Speed|all  *\| *0\.|mAP|Average Precision  \(AP\) @\[ IoU=0.50:0.95 \| area=   all" "$1" | head -3; }
if has val; then
  echo "== val ($(elapsed) s)"
  for m in ${MODELS:-yolov8n yolov5n yolo11n}; do
    for p in ${PRECS:-fp32 fp16}; do
      for path in gpu cpu; do
        extra=""; [ $path = cpu ] && extra="--cpu-prepost"
        [ $p != fp32 ] && extra="$extra --$p"
        timeout 240 kestrel val $D/models/$m.onnx --data $D/coco-val --backend cuda --batch 32 $extra \
          --json $L/val_${m}_${p}_${path}.json > $L/val_${m}_${p}_${path}.log 2>&1
        echo "$m $p $path exit $? $(python3 -c "import json;d=json.load(open('$L/val_${m}_${p}_${path}.json'));print('mAP %.6f mAP50 %.6f  %.0f img/s' % (d['map50_95'], d['map50'], d['images_per_s']))" 2>/dev/null)"
      done
    done
  done
  # WORKERS: decoding threads to compare (0: one per hardware thread); REPEATS: runs of each.
  for b in 32 1; do
    for w in ${WORKERS:-0}; do
      for r in $(seq ${REPEATS:-1}); do
        log=$L/val_speed_b${b}_w${w}_$r.log
        timeout 240 kestrel val $D/models/yolov8n.onnx --data $D/coco-val --backend cuda --fp16 --batch $b --workers $w > $log 2>&1
        echo "yolov8n fp16 batch $b workers $w: $(grep -E '^Speed' $log)"
        grep -E '^Host' $log
      done
    done
  done
  pack
fi
if has bench; then
  echo "== bench ($(elapsed) s)"
  for b in 1 32; do
    timeout 300 kestrel bench $D/models/yolov8n.onnx --backend cuda --fp16 --batch $b --cuda-graph --images $D/coco-val/images \
      --json $OUT/bench_b$b.json > $L/bench_b$b.log 2>&1
    echo "batch $b exit $?"
    grep -E "GPU Compute|H2D|Throughput|^Speed|^Latency|Host Latency|^Host:" $L/bench_b$b.log | head -12
  done
  pack
fi
echo "done ($(elapsed) s)"
