#!/usr/bin/env bash
# On the GPU machine (with .carry from pack_library.sh, a Q/DQ model in .carry/q/ and, for a side by side,
# another build's kestrel CLI and libkestrel_runtime.so.0, xz-compressed, in .carry/old/): the INT8 build time of the model,
# cold (empty timing cache, empty cuDNN plan cache, the driver's JIT cache off) and then warm (both caches
# of the cold build; once more with the driver's JIT cache on), with this library and with the other one; one line per build in $OUT/build_time.txt.
#   here:  bench/device/pack_library.sh build; mkdir .carry/q; cp MODEL.qdq.onnx .carry/q/
#   there: MODEL=.carry/q/yolo11n.qdq.onnx BATCH=32 bash bench/device/build_time.sh
set -u
cd "$(dirname "$0")/../.."
STAGES=none source bench/device/common.sh
MODEL=${MODEL:-$(ls .carry/q/*.onnx | head -1)}
exec > >(tee -a "$OUT/build_time.txt") 2>&1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
versions=new; [ -e .carry/old/kestrel ] && versions="new old"
for v in $versions; do
  lib="" cli=kestrel
  [ $v = old ] && lib=$PWD/.carry/old: cli=$PWD/.carry/old/kestrel && chmod +x $cli
  rm -rf /tmp/plans_$v /tmp/timing_$v /tmp/jit_$v
  # cold and warm: the driver's JIT cache off (every PTX the plans carry is compiled afresh); warm-jit1/2:
  # as a user's second build on the same machine, the driver's JIT cache on (its own folder: the first of
  # the two fills it, the second reads it).
  for run in cold warm warm-jit1 warm-jit2; do
    jit=1; [[ $run == warm-jit* ]] && jit=0
    s=$(date +%s.%N)
    CUDA_CACHE_DISABLE=$jit CUDA_CACHE_PATH=/tmp/jit_$v LD_LIBRARY_PATH=$lib$LD_LIBRARY_PATH KESTREL_CUDNN_CACHE=/tmp/plans_$v \
      timeout ${BUILD_TIMEOUT:-200} $cli build "$MODEL" --int8 --batch ${BATCH:-32} --timing-cache /tmp/timing_$v \
      -o /tmp/build_$v.engine > $L/build_${v}_$run.log 2>&1
    rc=$?
    wall=$(python3 -c "import time; print('%.1f' % (time.time() - $s))")
    echo "$v $run: exit $rc, wall $wall s, $(ls /tmp/plans_$v 2>/dev/null | wc -l) plans in the cache; $(grep -iE '^built|build time' $L/build_${v}_$run.log | tail -1)"
  done
  pack
done
echo "done ($(elapsed) s)"
