#!/usr/bin/env bash
# On the GPU machine: do independent INT8 builds of one Q/DQ model agree? For each precision-constraint
# mode in $MODES, builds $QDQ $N times at batch $BATCH with no timing cache (every build tunes from
# scratch, as on another machine), validates each engine on coco-val and keeps `inspect` of each; then
# prints every build's mAP and the layers whose precision or tactic differ from the mode's first build.
#   QDQ=.carry/q/yolo11n.qdq.onnx [MODES="prefer obey"] [N=2] [BATCH=32] bash bench/device/int8_repro.sh
# One line per build in $OUT/repro.txt as it ends; logs and inspect tables in $OUT/logs.tgz.
set -u
cd "$(dirname "$0")/../.."
source bench/device/common.sh
export KESTREL_DATA=$KESTREL_SHARED/data
exec > >(tee -a "$OUT/repro.txt") 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
name=$(basename "$QDQ" .onnx)
b=${BATCH:-32}
layers() { awk '$1 ~ /^[0-9]+$/ {print $2, $3, $4}' "$1"; }  # inspect's layer rows: name, op, tactic (not the time)
map() { python3 -c "import json; d = json.load(open('$1')); print('%.6f' % d['map50_95'])" 2>/dev/null || echo "-"; }
for mode in ${MODES:-prefer obey}; do
  for i in $(seq 1 ${N:-2}); do
    tag=${name}_${mode}_$i e=/tmp/$tag.engine
    t=$(date +%s)
    if ! timeout 200 kestrel build "$QDQ" --int8 --batch $b --precision-constraints $mode -o $e > $L/build_$tag.log 2>&1; then
      echo "$tag: build failed: $(tail -1 $L/build_$tag.log)"; continue
    fi
    kestrel inspect $e > $L/inspect_$tag.txt 2>&1
    timeout 120 kestrel val $e --data $KESTREL_DATA/coco-val --batch $b --json $L/val_$tag.json > $L/val_$tag.log 2>&1 \
      || echo "$tag: val failed: $(tail -1 $L/val_$tag.log)"
    echo "$tag: built in $(( $(date +%s) - t )) s (with val), mAP50-95 $(map $L/val_$tag.json)"
    if [ $i -gt 1 ]; then
      echo "  layers differing from build 1 (layer, op, tactic):"
      diff <(layers $L/inspect_${name}_${mode}_1.txt) <(layers $L/inspect_$tag.txt) | grep '^[<>]' | head -40
    fi
    pack
  done
done
echo "done ($(elapsed) s)"
