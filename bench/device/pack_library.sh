#!/usr/bin/env bash
# Here (no GPU): build and bundle into .carry/ what bench/device/library.sh runs on the GPU machine:
# the CLI, contexts_bench, libkestrel.so (+ libkestrel_runtime.so and the libraries they need), the
# generated version header, yolov8n.onnx and coco-val (the other GPU pytest cases validate on it).
# The Python module itself is compiled there from python/module.cpp against libkestrel.so: that
# machine's python3 (the one with PyTorch) is another minor version than ours, and an extension
# module only loads into the version it was built for. Python headers (3.12) and pybind11 go along
# in case that machine lacks them.
#   bench/device/pack_library.sh [BUILD_DIR]   then run(command="bash bench/device/library.sh", carry=[".carry"])
# EXTRA_CACHES: calibration caches to carry into .carry/int8/ (bench/device/layers.sh reads them).
# NO_COCO=1 leaves coco-val out (library.sh then runs only the GPU pytest cases that need no dataset).
set -euo pipefail
top=$(git rev-parse --show-toplevel)
cd "$top"
b=${1:-build}
export CCACHE_BASEDIR=$top CCACHE_NOHASHDIR=1
cmake --build "$b" -j"$(nproc)" --target kestrel contexts_bench kestrel_shared
with=(--with data/models/yolov8n.onnx)
[ -n "${NO_COCO:-}" ] || with+=(--with data/coco-val)
# EXTRA_WITH: more shared data to carry, paths under ../shared (e.g. "data/models/yolo11n.onnx").
for w in ${EXTRA_WITH:-}; do with+=(--with "$w"); done
# EXTRA_BINS: more programs of the build to carry (e.g. "build/bin/test_cuda").
../shared/tools/device-bundle "${with[@]}" "$b/bin/kestrel" "$b/bin/contexts_bench" ${EXTRA_BINS:-} "$b/lib/libkestrel.so.0"
mv .carry/bin/libkestrel.so.0 .carry/lib/   # a library, not a program: beside the others
if [ -n "${EXTRA_CACHES:-}" ]; then mkdir -p .carry/int8 && cp ${EXTRA_CACHES} .carry/int8/; fi
mkdir -p .carry/include/kestrel
cp "$b/generated/kestrel/version.h" .carry/include/kestrel/
# Fallbacks for compiling the module there, used only when that python3 has no headers or no pybind11
# (kept out of .carry/include, which is searched first).
mkdir -p .carry/fallback
py312=$(ls -d "$HOME"/.pyenv/versions/3.12*/include/python3.12 2>/dev/null | head -1 || true)
if [ -n "$py312" ]; then cp -r "$py312" .carry/fallback/python3.12; else echo "pack_library: no Python 3.12 headers here to carry (a fallback only)" >&2; fi
[ -d /usr/include/pybind11 ] && cp -r /usr/include/pybind11 .carry/fallback/pybind11
# Large files compressed (OpenBLAS alone is ~35 MiB raw); common.sh unpacks them there.
find .carry -type f -size +128k ! -name '*.py' ! -name '*.jpg' ! -name '*.h' -print0 | xargs -0 -n1 -P2 xz -6
du -sh .carry
