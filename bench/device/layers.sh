#!/usr/bin/env bash
# On the GPU machine (with .carry from pack_library.sh, EXTRA_WITH naming the models and EXTRA_CACHES
# their calibration caches): where the time goes, layer by layer. For each model, precision and batch,
# build one engine (timing cache shared by the call) and run `kestrel bench --cuda-graph
# --no-data-transfers --dump-profile`: GPU compute median, then the per-layer means of a separate run.
# Variants "NAME=MODEL:ARGS", separated by ';', in $VARIANTS add INT8 engines with extra options, e.g.
#   VARIANTS="v8stride8=yolov8n:--layer-precision /model.[234]/*:fp16"
# Results: $OUT/layers.tgz (one JSON per engine: the bench report with its layer_profile) and the
# summary lines in $OUT/layers.txt.
#   MODELS="yolov8n yolo11n" PRECS="fp16 int8" BATCHES="1 32" bash bench/device/layers.sh
set -u
cd "$(dirname "$0")/../.."
source bench/device/common.sh
export KESTREL_DATA=$KESTREL_SHARED/data
M=$KESTREL_DATA/models
TC=/tmp/kestrel.cache
J=/tmp/layers; mkdir -p $J
exec > >(tee -a "$OUT/layers.txt") 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
int8_args() {  # MODEL: a carried cache, else eight coco128 images
  if [ -f .carry/int8/$1.percentile.cache ]; then echo "--calib-cache .carry/int8/$1.percentile.cache"
  else echo "--calib $KESTREL_DATA/coco128/images --calib-images 8"; fi
}
one() {  # NAME MODEL PREC BATCH [EXTRA...]
  local name=$1 m=$2 p=$3 b=$4; shift 4
  local extra=(); [ $p = int8 ] && extra=($(int8_args $m))
  local t0=$(date +%s%N)
  if ! timeout ${BUILD_TIMEOUT:-200} kestrel build $M/$m.onnx --$p --batch $b "${extra[@]}" "$@" --timing-cache $TC \
      -o /tmp/$name.engine > $L/build_$name.log 2>&1; then
    echo "$name: build failed: $(tail -1 $L/build_$name.log)"; return
  fi
  local bt=$(( ($(date +%s%N) - t0) / 1000000 ))
  timeout 120 kestrel bench /tmp/$name.engine --cuda-graph --no-data-transfers --duration 2 --warmup 300 --dump-profile \
    --json $J/$name.json > $L/bench_$name.log 2>&1 || { echo "$name: bench failed: $(tail -1 $L/bench_$name.log)"; return; }
  python3 -c "import json,sys; j=json.load(open('$J/$name.json')); lp=j.get('layer_profile',[]); print('%-28s build %6d ms  gpu compute median %.4f ms  layers %d  sum of layer means %.4f ms' % ('$name', $bt, j['gpu_compute_ms']['median'], len(lp), sum(x['mean_ms'] for x in lp)))"
  tar czf $OUT/layers.tgz -C $J . ; pack
}
for m in ${MODELS:-yolov8n yolo11n}; do
  for b in ${BATCHES:-1 32}; do
    for p in ${PRECS:-fp16 int8}; do one ${m}_${p}_b$b $m $p $b; done
  done
done
set -f   # the variants hold layer-name globs, not file names
IFS=';' read -ra variants <<< "${VARIANTS:-}"
for v in "${variants[@]}"; do
  name=${v%%=*}; rest=${v#*=}; m=${rest%%:*}; args=${rest#*:}
  for b in ${BATCHES:-1 32}; do one ${name}_b$b $m int8 $b $args; done
done
set +f
echo "done ($(elapsed) s)"
