#!/usr/bin/env bash
# On the GPU machine: the same models built by two builds of Kestrel, side by side in one call. BASE is
# a folder holding the older `kestrel` and its libkestrel_runtime.so.0 (bench/device/pack_base.sh puts
# them in .carry/base); the current build is the bundle's. Each build tunes from scratch: the timing
# cache keys its entries with the build ID of the kernels' module, so two builds would share none. Tactic
# choice noise is therefore part of the difference; profile_diff.py shows which layers changed. GPU compute medians
# (`kestrel bench --cuda-graph --no-data-transfers`), the two engines alternated twice; both engines'
# per-layer profiles and their difference (bench/profile_diff.py) in $OUT/logs.tgz. One ROW line per
# model, precision and batch in $OUT/ab.txt as each ends.
#   MODELS="yolo11n yolo11s" BATCHES="1 32" PRECS="fp16 int8" [BASE=.carry/base] bash bench/device/ab.sh
set -u
cd "$(dirname "$0")/../.."
source bench/device/common.sh
export KESTREL_DATA=$KESTREL_SHARED/data
BASE=${BASE:-$PWD/.carry/base}
J=/tmp/ab; mkdir -p $J
exec > >(tee -a "$OUT/ab.txt") 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
chmod +x "$BASE/kestrel"
# k WHO SECONDS ARGS...: one kestrel command of the base or the current build, under a time limit.
k() {
  local who=$1 t=$2
  shift 2
  if [ "$who" = base ]; then LD_LIBRARY_PATH="$BASE:${LD_LIBRARY_PATH:-}" timeout "$t" "$BASE/kestrel" "$@"
  else timeout "$t" kestrel "$@"; fi
}
for m in ${MODELS:-yolo11n}; do
  mn=$(basename $m .onnx)
  for p in ${PRECS:-fp16}; do
    extra=($(precision_args $p))
    for b in ${BATCHES:-1 32}; do
      ok=1
      for who in base cur; do
        name=${mn}_${p}_b${b}_$who
        k $who ${BUILD_TIMEOUT:-240} build $m --batch $b "${extra[@]}" -o /tmp/$name.engine \
          > $L/build_$name.log 2>&1 || { echo "$name: build failed: $(tail -1 $L/build_$name.log)"; ok=0; }
      done
      [ $ok = 1 ] || continue
      for round in 1 2; do
        for who in base cur; do
          name=${mn}_${p}_b${b}_$who
          k $who 120 bench /tmp/$name.engine --cuda-graph --no-data-transfers --duration 1 --warmup 200 \
            --json $J/${name}_r$round.json > $L/bench_${name}_r$round.log 2>&1 || echo "$name: bench failed: $(tail -1 $L/bench_${name}_r$round.log)"
        done
      done
      # Both engines profiled by the current build, so the per-layer figures are taken the same way
      # (the base's own profile where the current runtime cannot load its engine).
      for who in base cur; do
        f=/tmp/${mn}_${p}_b${b}_$who.engine pf=$L/profile_${mn}_${p}_b${b}_$who.log
        k cur 120 bench $f --cuda-graph --no-data-transfers --duration 1 --dump-profile > $pf 2>&1 ||
          { [ $who = base ] && k base 120 bench $f --cuda-graph --no-data-transfers --duration 1 --dump-profile > $pf 2>&1; }
      done
      python3 bench/profile_diff.py $L/profile_${mn}_${p}_b${b}_base.log $L/profile_${mn}_${p}_b${b}_cur.log --top 12 \
        > $L/profile_diff_${mn}_${p}_b$b.txt 2>&1
      # None changed: the builds' difference did not reach these engines (e.g. a new tactic never chosen).
      echo "${mn}_${p}_b${b}: $(tail -1 $L/profile_diff_${mn}_${p}_b$b.txt)"
      python3 bench/device/ab_row.py $J ${mn}_${p}_b${b} base cur base current
      rm -f /tmp/${mn}_${p}_b${b}_*.engine
      tar czf $OUT/ab.tgz -C $J . ; pack
    done
  done
done
echo "done ($(elapsed) s)"
