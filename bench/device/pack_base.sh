#!/usr/bin/env bash
# Here (no GPU): an older build of Kestrel for bench/device/ab.sh, into .carry/base (after the bundle
# itself is packed): its `kestrel` and the runtime library it loads, xz-compressed like the rest.
#   git worktree add /tmp/base REV && (cd /tmp/base && cmake -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
#     -DKESTREL_TESTS=OFF -DKESTREL_FUZZ=OFF && cmake --build build --target kestrel)
#   bench/device/pack_base.sh /tmp/base/build
set -euo pipefail
top=$(git rev-parse --show-toplevel)
cd "$top"
b=${1:?the older build folder}
[ -d .carry ] || { echo "pack_base: pack the bundle first (.carry/ is missing)" >&2; exit 1; }
mkdir -p .carry/base
cp "$b/bin/kestrel" .carry/base/kestrel
cp -L "$b/lib/libkestrel_runtime.so.0" .carry/base/libkestrel_runtime.so.0
xz -6 -f .carry/base/kestrel .carry/base/libkestrel_runtime.so.0
du -sh .carry/base
