#!/usr/bin/env bash
# Here (no GPU): bundle the GPU tests, the CLI, the benchmark and the data they need into .carry/ for
# the device machine, xz-compressed (the bundle must stay under 60 MiB; OpenBLAS alone is 35 MiB raw).
#   tests/cuda/device/pack.sh [BUILD_DIR]     then run(command="bash tests/cuda/device/run.sh", carry=[".carry"])
set -euo pipefail
top=$(git rev-parse --show-toplevel)
cd "$top"
b=${1:-build-cuda}
with=()
for m in yolov8n yolov5n yolo11n; do
  with+=(--with data/models/$m.onnx --with data/golden/$m.000000000139.output.bin --with data/golden/$m.000000037777.output.bin)
done
with+=(--with data/golden/000000000139.input.bin --with data/golden/000000037777.input.bin --with bench)
# The INT8 model tests calibrate on eight coco128 images; the validation test (val_gpu_test.cpp) reads
# the first six coco-val images by name.
for f in $(ls ../shared/data/coco128/images | sort | head -8); do with+=(--with data/coco128/images/$f); done
with+=(--with data/coco-val/instances.json --with data/models/yolov8n-dyn.onnx)
for f in $(ls ../shared/data/coco-val/images | sort | head -6); do with+=(--with data/coco-val/images/$f); done
# EXTRA_WITH: more shared data to carry, paths under ../shared (e.g. "data/coco-val/images/X.jpg").
for w in ${EXTRA_WITH:-}; do with+=(--with "$w"); done
# BINS: which of the build's programs to carry (fewer leaves room for bench/device/pack_base.sh's base).
bins=()
for x in ${BINS:-test_cuda test_cuda_yolo test_model_gpu kestrel cuda_bench contexts_bench prepost_bench}; do bins+=("$b/bin/$x"); done
../shared/tools/device-bundle "${with[@]}" "${bins[@]}"
find .carry -type f -size +128k ! -name '*.py' -print0 | xargs -0 -n1 -P2 xz -6
du -sh .carry
