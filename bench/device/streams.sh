#!/usr/bin/env bash
# On the GPU machine (with .carry from pack_library.sh): the same engine on one stream and with its
# independent branches on auxiliary streams (`kestrel build --maxAuxStreams 0` against the default),
# both built from one timing cache so their tactics are the same and only the schedule differs. GPU
# compute medians (`kestrel bench --cuda-graph --no-data-transfers`), the two engines alternated twice
# so drift hits both; one line per model, precision and batch in $OUT/streams.txt as each row ends.
#   MODELS="yolov8n yolo11n $KESTREL_DATA/models/yolov5n.onnx" BATCHES="1 32" PRECS="fp16" bash bench/device/streams.sh
set -u
cd "$(dirname "$0")/../.."
source bench/device/common.sh
export KESTREL_DATA=$KESTREL_SHARED/data
TC=/tmp/kestrel.cache
J=/tmp/streams; mkdir -p $J
exec > >(tee -a "$OUT/streams.txt") 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
median() { python3 -c "import json; print('%.4f' % json.load(open('$1'))['gpu_compute_ms']['median'])" 2>/dev/null || echo "-"; }
for m in ${MODELS:-yolov8n yolo11n $KESTREL_DATA/models/yolov5n.onnx}; do
  mn=$(basename $m .onnx)
  for p in ${PRECS:-fp16}; do
    extra=()
    [ $p = int8 ] && extra=(--calib $KESTREL_DATA/coco128/images --calib-images ${CALIB_IMAGES:-8})
    for b in ${BATCHES:-1 32}; do
      ok=1
      for aux in 0 default; do
        name=${mn}_${p}_b${b}_aux$aux flag=()
        [ $aux = 0 ] && flag=(--maxAuxStreams 0)
        timeout ${BUILD_TIMEOUT:-240} kestrel build $m --$p --batch $b "${extra[@]}" "${flag[@]}" --timing-cache $TC \
          -o /tmp/$name.engine > $L/build_$name.log 2>&1 || { echo "$name: build failed: $(tail -1 $L/build_$name.log)"; ok=0; }
      done
      [ $ok = 1 ] || continue
      kestrel inspect /tmp/${mn}_${p}_b${b}_auxdefault.engine > $L/inspect_${mn}_${p}_b$b.txt 2>&1
      for round in 1 2; do
        for aux in 0 default; do
          name=${mn}_${p}_b${b}_aux$aux
          timeout 120 kestrel bench /tmp/$name.engine --cuda-graph --no-data-transfers --duration 1 --warmup 200 \
            --json $J/${name}_r$round.json > $L/bench_${name}_r$round.log 2>&1 || echo "$name: bench failed: $(tail -1 $L/bench_${name}_r$round.log)"
        done
      done
      python3 - $J ${mn}_${p}_b${b} "$(grep -m1 '^streams' $L/inspect_${mn}_${p}_b$b.txt)" <<'PY'
import json, sys, statistics
d, stem, streams = sys.argv[1:]
def med(aux):
    v = []
    for r in (1, 2):
        try: v.append(json.load(open(f"{d}/{stem}_aux{aux}_r{r}.json"))["gpu_compute_ms"]["median"])
        except Exception: pass
    return v
s, a = med("0"), med("default")
if s and a:
    ms, ma = statistics.median(s), statistics.median(a)
    print(f"ROW {stem}: one stream {ms:.4f} ms {s} | aux streams {ma:.4f} ms {a} | {ms / ma:.3f}x | {streams}", flush=True)
else:
    print(f"ROW {stem}: missing ({s} {a})", flush=True)
PY
      rm -f /tmp/${mn}_${p}_b${b}_aux*.engine
      tar czf $OUT/streams.tgz -C $J . ; pack
    done
  done
done
echo "done ($(elapsed) s)"
