#!/usr/bin/env bash
# Here (no GPU): bundle the CUDA-enabled kestrel CLI, the three models, coco-val and the PyTorch anchors
# into .carry/ for one device call running bench/device/compare.sh.
#   bench/device/pack_compare.sh [BUILD_DIR]   then run(command="bash bench/device/compare.sh", carry=[".carry"])
set -euo pipefail
top=$(git rev-parse --show-toplevel)
cd "$top"
b=${1:-build-cuda}
with=(--with data/coco-val --with bench)
for m in yolov8n yolov5n yolo11n; do with+=(--with data/models/$m.onnx); done
for x in ${EXTRA_WITH:-}; do with+=(--with "$x"); done   # e.g. data/agree-val for bench/device/agree.sh
../shared/tools/device-bundle "${with[@]}" "$b/bin/kestrel"
# Large files compressed (OpenBLAS alone is ~35 MiB raw); compare.sh unpacks them.
find .carry -type f -size +128k ! -name '*.py' ! -name '*.jpg' -print0 | xargs -0 -n1 -P2 xz -6
du -sh .carry
