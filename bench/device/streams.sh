#!/usr/bin/env bash
# On the GPU machine (with .carry from pack_library.sh): the same engine on one stream and with its
# independent branches on auxiliary streams (`kestrel build --maxAuxStreams 0` against the default),
# both built from one timing cache so their tactics are the same and only the schedule differs. GPU
# compute medians (`kestrel bench --cuda-graph --no-data-transfers`), the two engines alternated twice
# so drift hits both; one line per model, precision and batch in $OUT/streams.txt as each row ends.
# E2E_IMAGES=DIR adds images in, boxes out: `kestrel bench --images DIR` (decode, letterbox, network,
# detection; images/s) for both engines, alternated twice, one ROW_E2E line each.
#   MODELS="yolov8n yolo11n $KESTREL_DATA/models/yolov5n.onnx" BATCHES="1 32" PRECS="fp16" [E2E_IMAGES=DIR] bash bench/device/streams.sh
set -u
cd "$(dirname "$0")/../.."
source bench/device/common.sh
export KESTREL_DATA=$KESTREL_SHARED/data
TC=/tmp/kestrel.cache
J=/tmp/streams; mkdir -p $J
exec > >(tee -a "$OUT/streams.txt") 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
for m in ${MODELS:-yolov8n yolo11n $KESTREL_DATA/models/yolov5n.onnx}; do
  mn=$(basename $m .onnx)
  for p in ${PRECS:-fp16}; do
    extra=($(precision_args $p))
    for b in ${BATCHES:-1 32}; do
      ok=1
      for aux in 0 default; do
        name=${mn}_${p}_b${b}_aux$aux flag=()
        [ $aux = 0 ] && flag=(--maxAuxStreams 0)
        timeout ${BUILD_TIMEOUT:-240} kestrel build $m --batch $b "${extra[@]}" "${flag[@]}" --timing-cache $TC \
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
      python3 bench/device/ab_row.py $J ${mn}_${p}_b${b} aux0 auxdefault "one stream" "aux streams" \
        --note "$(grep -m1 '^streams' $L/inspect_${mn}_${p}_b$b.txt)"
      if [ -n "${E2E_IMAGES:-}" ]; then
        for round in 1 2; do
          for aux in 0 default; do
            name=${mn}_${p}_b${b}_aux$aux
            timeout 180 kestrel bench /tmp/$name.engine --cuda-graph --duration 1 --images "$E2E_IMAGES" \
              --json $J/${name}_e2e_r$round.json > $L/e2e_${name}_r$round.log 2>&1 || echo "$name: e2e failed: $(tail -1 $L/e2e_${name}_r$round.log)"
          done
        done
        python3 bench/device/ab_row.py $J ${mn}_${p}_b${b} aux0_e2e auxdefault_e2e "one stream" "aux streams" --e2e --tag ROW_E2E
      fi
      rm -f /tmp/${mn}_${p}_b${b}_aux*.engine
      tar czf $OUT/streams.tgz -C $J . ; pack
    done
  done
done
echo "done ($(elapsed) s)"
