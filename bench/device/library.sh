#!/usr/bin/env bash
# On the GPU machine (with .carry from pack_library.sh): the library from C++ threads and from Python.
#   module    compile the Python module there (python/module.cpp against the carried libkestrel.so,
#             for that machine's python3, the one with PyTorch) into /tmp/py; every stage below needs it
#             except contexts
#   contexts  contexts_bench yolov8n FP16 (built in memory from the ONNX): 1 context on 1 thread
#             against 4 on 4 threads, outputs bit for bit; then 8 on 8 from the engine file
#   overhead  bench/python_overhead.py: Engine.__call__ on torch CUDA tensors against the C++ enqueue
#   pytest    the GPU pytest cases (python/tests, marked gpu): the CUDA-tensor cases first, then the
#             others; a skip is a failure unless its reason matches $EXPECTED_SKIPS; PYTEST_K selects
#             cases by name (pytest -k)
# Results come back in $OUT as each stage ends: contexts_4.json, contexts_8.json, python_overhead.json,
# pytest_gpu.xml, summary.txt (the lines printed here) and logs.tgz (every log). STAGES selects (default:
# all); each stage has its own time limit so one hang cannot eat the call.
set -u
cd "$(dirname "$0")/../.."
STAGES=${STAGES:-module contexts overhead pytest}
source bench/device/common.sh
exec > >(tee -a "$OUT/summary.txt") 2>&1
for lib in libcudnn.so.9 libcublasLt.so.13; do
  if ! ldconfig -p | grep -q "$lib" && [ ! -e "/usr/local/cuda/lib64/$lib" ]; then
    f=$(find /usr /opt -name "$lib" 2>/dev/null | head -1)
    [ -n "$f" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$f")" && echo "using $f"
  fi
done
export KESTREL_DATA=$KESTREL_SHARED/data KESTREL_TIMING_CACHE=/tmp/kestrel.cache PYTHONUNBUFFERED=1
M=$KESTREL_DATA/models
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
python3 -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available())'
failed=""
# The time limit of a stage: at most $1 seconds, and no more than is left of the call's budget.
limit() { local l=$(( ${BUDGET:-570} - $(elapsed) )); [ $l -lt $1 ] || l=$1; [ $l -gt 10 ] || l=10; echo $l; }

if has module; then
  echo "== module ($(elapsed) s)"
  mkdir -p /tmp/py/kestrel
  cp python/kestrel/__init__.py /tmp/py/kestrel/
  ext=$(python3 -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
  pyinc=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  [ -f "$pyinc/Python.h" ] || { pyinc=.carry/fallback/python3.12; echo "no Python.h there: the carried 3.12 headers"; }
  pbinc=$(python3 -c 'import pybind11; print(pybind11.get_include())' 2>/dev/null) ||
    { pbinc=.carry/fallback; echo "no pybind11 there: the carried one (numpy 2 needs pybind11 >= 2.12)"; }
  echo "python headers $pyinc, pybind11 $pbinc ($(python3 -c 'import pybind11; print(pybind11.__version__)' 2>/dev/null))"
  timeout $(limit 300) c++ -O2 -DNDEBUG -std=c++20 -shared -fPIC -fvisibility=hidden -DKESTREL_HAS_CUDA=1 \
    -Iinclude -I.carry/include -isystem "$pbinc" -isystem "$pyinc" -isystem /usr/local/cuda/include \
    python/module.cpp -o /tmp/py/kestrel/_kestrel$ext \
    .carry/lib/libkestrel.so.0 .carry/lib/libkestrel_runtime.so.0 -L/usr/local/cuda/lib64 -lcudart \
    > $L/module_build.log 2>&1
  rc=$?
  echo "compile exit $rc"; grep -E "error" $L/module_build.log | head -20
  PYTHONPATH=/tmp/py python3 -c 'import kestrel; print("kestrel", kestrel.__version__, "gpu", kestrel.gpu_available())' \
    > $L/module_import.log 2>&1 || rc=1
  tail -3 $L/module_import.log
  [ $rc -eq 0 ] || failed="$failed module"
  pack
fi
export PYTHONPATH=/tmp/py

if has contexts; then
  echo "== contexts ($(elapsed) s)"
  timeout $(limit 240) contexts_bench $M/yolov8n.onnx --fp16 --threads 4 --seconds 3 \
    --json $OUT/contexts_4.json > $L/contexts_4.log 2>&1
  rc=$?
  cat $L/contexts_4.log; echo "contexts_bench 4 exit $rc"
  [ $rc -eq 0 ] || failed="$failed contexts"
  if [ $rc -eq 0 ]; then  # a wider picture from the engine file (no second build)
    timeout 120 kestrel build $M/yolov8n.onnx --fp16 -o /tmp/v8.engine > $L/engine_build.log 2>&1 &&
      timeout 60 contexts_bench /tmp/v8.engine --threads 8 --seconds 2 --json $OUT/contexts_8.json > $L/contexts_8.log 2>&1
    rc=$?
    grep -E "images/s|ratio|differ" $L/contexts_8.log; echo "contexts_bench 8 exit $rc"
    [ $rc -eq 0 ] || failed="$failed contexts8"
  fi
  pack
fi

if has overhead; then
  echo "== overhead ($(elapsed) s)"
  model=/tmp/v8.engine; fp16=""
  [ -f $model ] || { model=$M/yolov8n.onnx; fp16=--fp16; }
  timeout $(limit 240) python3 bench/python_overhead.py $model $fp16 --json $OUT/python_overhead.json \
    > $L/overhead.log 2>&1
  rc=$?
  cat $L/overhead.log | tail -12; echo "python_overhead exit $rc"
  [ $rc -eq 0 ] || failed="$failed overhead"
  pack
fi

if has pytest; then
  echo "== pytest ($(elapsed) s)"
  # The CUDA-tensor cases first: should the call's time run out, they have run.
  KESTREL_SOURCE_DIR=$PWD KESTREL_BIN=$(command -v kestrel) timeout $(limit 600) python3 -m pytest -q -p no:cacheprovider -rs \
    -m gpu ${PYTEST_K:+-k "$PYTEST_K"} --junitxml=$OUT/pytest_gpu.xml python/tests/test_gpu_tensors.py python/tests/test_gpu.py > $L/pytest_gpu.log 2>&1
  rc=$?
  grep -E "passed|failed|error|SKIPPED|FAILED|Error" $L/pytest_gpu.log | tail -30
  echo "pytest exit $rc"
  skips=$(grep -E '^SKIPPED' $L/pytest_gpu.log | { [ -n "${EXPECTED_SKIPS:-}" ] && grep -Ev "$EXPECTED_SKIPS" || cat; })
  [ -z "$skips" ] || { echo "unexpected skip(s): every case's data and libraries are here"; rc=1; }
  [ $rc -eq 0 ] || failed="$failed pytest"
  pack
fi
echo "done ($(elapsed) s); failed stages:${failed:- none}"
[ -z "$failed" ]
