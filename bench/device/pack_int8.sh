#!/usr/bin/env bash
# Here (no GPU): bundle the CUDA-enabled kestrel CLI and test_cuda, the three models, coco-val, eight
# coco128 images (the INT8 model tests calibrate on them) and the golden inputs into .carry/ for one
# device call running bench/device/int8.sh. The calibration caches and --int8-auto Q/DQ models made here
# (bench/device/quantize_all.sh, on all 128 coco128 images) go to .carry/int8/: the Q/DQ models of the
# GPU runs are made there from the caches alone.
#   bench/device/pack_int8.sh [BUILD_DIR]   then run(command="bash bench/device/int8.sh", carry=[".carry"])
set -euo pipefail
top=$(git rev-parse --show-toplevel)
cd "$top"
b=${1:-build-cuda}
with=(--with data/coco-val --with data/golden/000000000139.input.bin --with data/golden/000000037777.input.bin
      --with data/golden/yolov8n.000000000139.output.bin --with data/golden/yolov8n.000000037777.output.bin)
for f in $(ls ../shared/data/coco128/images | sort | head -8); do with+=(--with data/coco128/images/$f); done
for m in yolov8n yolov5n yolo11n; do with+=(--with data/models/$m.onnx); done
../shared/tools/device-bundle "${with[@]}" "$b/bin/kestrel" "$b/bin/test_cuda" "$b/bin/int8_layer_bench"
mkdir -p .carry/int8
cp int8-models/*.cache .carry/int8/
# Q/DQ models made here (every calibrator, --int8-auto) travel as they are for the models in $QDQ_MODELS
# (the carry limit allows one model's).
for m in ${QDQ_MODELS:-}; do cp int8-models/$m.*.qdq.onnx .carry/int8/; done
find .carry -type f -size +128k ! -name '*.py' ! -name '*.jpg' -print0 | xargs -0 -n1 -P2 xz -6
du -sh .carry
