#!/usr/bin/env bash
# Here (no GPU): bundle the CLI, the GPU pre/post-processing tests, the three models, coco-val and the
# golden outputs into .carry/ for one device call running bench/device/pipeline.sh (60 MiB: agree-val
# does not fit beside them).
#   bench/device/pack_pipeline.sh [BUILD_DIR]   then run(command="bash bench/device/pipeline.sh", carry=[".carry"])
set -euo pipefail
top=$(git rev-parse --show-toplevel)
cd "$top"
b=${1:-build}
with=(--with data/coco-val)
for m in yolov8n yolov5n yolo11n; do
  with+=(--with data/models/$m.onnx --with data/golden/$m.000000000139.output.bin --with data/golden/$m.000000037777.output.bin)
done
../shared/tools/device-bundle "${with[@]}" "$b/bin/kestrel" "$b/bin/test_cuda_yolo" "$b/bin/prepost_bench"
find .carry -type f -size +128k ! -name '*.py' ! -name '*.jpg' -print0 | xargs -0 -n1 -P2 xz -6
du -sh .carry
