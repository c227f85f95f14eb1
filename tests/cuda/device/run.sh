#!/usr/bin/env bash
# On the GPU machine (with .carry from pack.sh): unpack, find the libraries, then the stages named in
# $STAGES (default: all but ncu and anchors), each with its own time limit so one hang cannot eat the
# call; logs go to $OUT.
#   cli      build, inspect and run YOLOv8n FP16 through the CLI (per-layer tactic table)
#   tests    the GPU test suite (ops with every tactic, models vs golden part by part, INT8, val through
#            the engine vs the CPU, engine file contracts); KESTREL_REQUIRE_GPU=1, no unexpected skip
#   b32      YOLOv8n FP16 batch 32: build -v and the per-layer table
#   bench    cuda_bench batch 1 and 32, FP16, CUDA graphs (batch 1 also without PDL)
#   ncu      Nsight Compute on a few implicit-GEMM launches of the batch-32 engine
#   anchors  the PyTorch anchors (shared/bench/anchors.py via anchors_compile.py), $ANCHOR_BATCHES
set -u
cd "$(dirname "$0")/../../.."
STAGES=${STAGES:-cli tests b32 bench}
source bench/device/common.sh
for lib in libcudnn.so.9 libcublasLt.so.13; do
  if ! ldconfig -p | grep -q "$lib" && [ ! -e "/usr/local/cuda/lib64/$lib" ]; then
    f=$(find /usr /opt -name "$lib" 2>/dev/null | head -1)
    [ -n "$f" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$f")" && echo "using $f"
  fi
done
export KESTREL_DATA=$KESTREL_SHARED/data KESTREL_TEST_TIMING_CACHE=/tmp/kestrel.cache KESTREL_TIMING_CACHE=/tmp/kestrel.cache
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader
M=$KESTREL_DATA/models
table() { grep -E "^[0-9]+ " "$1" | awk '{printf "%s %s %s | ", $1, $4, $5} NR%4==0 {print ""}'; echo; tail -3 "$1"; }

if has cli; then
  echo "== cli ($(elapsed) s)"
  timeout 120 kestrel build $M/yolov8n.onnx --fp16 -o /tmp/v8.engine --timing-cache /tmp/kestrel.cache -v > $L/build_v8_fp16.log 2>&1
  tail -4 $L/build_v8_fp16.log
  timeout 30 kestrel inspect /tmp/v8.engine > $L/inspect_v8_fp16.txt 2>&1; table $L/inspect_v8_fp16.txt
  timeout 30 kestrel run /tmp/v8.engine --backend cuda -i $KESTREL_DATA/golden/000000000139.input.bin -o /tmp/y.bin
  pack
fi
if has tests; then
  echo "== tests ($(elapsed) s)"
  # On this machine a GPU that fails to start is a failure (KESTREL_REQUIRE_GPU), and a test that skips
  # fails the stage unless its name matches $EXPECTED_SKIPS (an extended regex; default: none expected,
  # every test's data is in the bundle).
  KESTREL_REQUIRE_GPU=1 timeout ${TEST_TIMEOUT:-540} test_cuda ${TEST_FILTER:+--gtest_filter=$TEST_FILTER} > $L/test_cuda.log 2>&1
  rc=$?
  echo "test_cuda exit $rc"
  grep -E "^\[(model|engine|val)\]|FAILED|Failure|Expected|Which is|  Actual|REJECT|refused" $L/test_cuda.log | head -50
  tail -3 $L/test_cuda.log
  skipped=$(grep -E '^\[  SKIPPED \] [^ ]+\.[^ ]+' $L/test_cuda.log | awk '{print $4}' | sort -u)
  unexpected=$(printf '%s\n' "$skipped" | grep -v '^$' | { [ -n "${EXPECTED_SKIPS:-}" ] && grep -Ev "$EXPECTED_SKIPS" || cat; })
  echo "test_cuda skipped: $(printf '%s\n' "$skipped" | grep -c .), unexpected: $(printf '%s\n' "$unexpected" | grep -c .)"
  if [ -n "$unexpected" ]; then
    printf 'unexpected skip: %s\n' $unexpected
    grep -E -B3 '^\[  SKIPPED \] [^ ]+ \(' $L/test_cuda.log | head -20  # the skip messages
    rc=1
  fi
  [ $rc -eq 0 ] || tests_failed=1
  # The other GPU test binaries (GPU pre/post-processing, the Detector), under the same rules.
  for t in test_cuda_yolo test_model_gpu; do
    command -v $t > /dev/null || continue
    KESTREL_REQUIRE_GPU=1 timeout 240 $t > $L/$t.log 2>&1
    trc=$?
    tskipped=$(grep -cE '^\[  SKIPPED \] [^ ]+\.[^ ]+' $L/$t.log)
    echo "$t exit $trc, skipped $tskipped"
    grep -E "FAILED|Failure" $L/$t.log | head -10
    tail -1 $L/$t.log
    { [ $trc -eq 0 ] && [ "$tskipped" -eq 0 ]; } || tests_failed=1
  done
  pack
fi
if has b32; then
  echo "== b32 ($(elapsed) s)"
  timeout 120 kestrel build $M/yolov8n.onnx --fp16 --batch 32 -o /tmp/v8b32.engine --timing-cache /tmp/kestrel.cache -v > $L/build_v8_b32.log 2>&1
  tail -3 $L/build_v8_b32.log
  timeout 30 kestrel inspect /tmp/v8b32.engine > $L/inspect_v8_b32.txt 2>&1; table $L/inspect_v8_b32.txt
  pack
fi
if has bench; then
  echo "== bench ($(elapsed) s)"
  timeout ${BENCH_TIMEOUT:-120} cuda_bench $M/yolov8n.onnx --batches 1,32 --precisions fp16 --cache /tmp/kestrel.cache 2>&1 | tee $L/bench.log | grep -v RESULTS_JSON
  KESTREL_NO_PDL=1 timeout 60 cuda_bench $M/yolov8n.onnx --batches 1 --precisions fp16 --cache /tmp/kestrel.cache 2>&1 | tee $L/bench_nopdl.log | grep -v RESULTS_JSON | sed 's/^/no-PDL: /'
  pack
fi
if has ncu; then
  echo "== ncu ($(elapsed) s)"
  NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  [ -f /tmp/v8b32.engine ] || kestrel build $M/yolov8n.onnx --fp16 --batch 32 -o /tmp/v8b32.engine --timing-cache /tmp/kestrel.cache > /dev/null 2>&1
  for range in ${NCU_RANGES:-0:6 43:4}; do
    KESTREL_NO_PDL=1 timeout ${NCU_TIMEOUT:-90} $NCU --clock-control none -k regex:${NCU_KERNEL:-igemm} --launch-skip ${range%%:*} --launch-count ${range##*:} \
      --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
      kestrel run /tmp/v8b32.engine --backend cuda > $L/ncu_${range%%:*}.txt 2>&1
    grep -E "igemm_kernel|Duration|Compute \(SM\) Throughput|Memory Throughput|DRAM Throughput|Achieved Occupancy|Registers Per|Stall|Issue Slots Busy|L1/TEX Hit|L2 Hit|Executed Ipc A|Warp Cycles Per Issued|Grid Size" $L/ncu_${range%%:*}.txt | sed 's/  */ /g' | cut -c1-150 | head -70
  done
  pack
fi
if has anchors; then
  left=$(( ${CALL_BUDGET:-330} - $(elapsed) ))
  echo "== anchors ($(elapsed) s, $left s left)"
  PYTHONUNBUFFERED=1 timeout $left python3 tests/cuda/device/anchors_compile.py $M/yolov8n.onnx --batches ${ANCHOR_BATCHES:-1} --compile 2>&1 | tee $L/anchors.log | grep -E "^\{|rel err|RESULTS_JSON|Error" | cut -c1-400
fi
pack
echo "== done ($(elapsed) s)"
[ -z "${tests_failed:-}" ] || { echo "== tests FAILED (failures or unexpected skips: $L/test_cuda.log)"; exit 1; }
