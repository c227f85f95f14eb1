#!/usr/bin/env bash
# Here or on the GPU machine: calibrate the three models on coco128 with each calibrator (caches in
# int8-models/, reused when they match) and write their Q/DQ models, default policy; with AUTO=1 also
# the --int8-auto models (minutes each on the CPU). KESTREL and DATA may point elsewhere.
set -u
cd "$(dirname "$0")/../.."
K=${KESTREL:-build-cuda/bin/kestrel}
D=${DATA:-../shared/data}
O=${OUT_DIR:-int8-models}
mkdir -p "$O"
for m in ${MODELS:-yolov8n yolov5n yolo11n}; do
  for algo in percentile minmax entropy; do
    $K quantize $D/models/$m.onnx --calib $D/coco128 --calib-algo $algo --calib-cache int8-models/$m.$algo.cache \
      -o $O/$m.$algo.qdq.onnx > $O/$m.$algo.log 2>&1
    echo "$m $algo exit $?"
  done
  if [ "${AUTO:-0}" = 1 ]; then
    $K quantize $D/models/$m.onnx --calib $D/coco128 --calib-cache int8-models/$m.percentile.cache --int8-auto \
      -o $O/$m.auto.qdq.onnx > $O/$m.auto.log 2>&1
    echo "$m auto exit $?"
  fi
done
