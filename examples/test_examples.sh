#!/usr/bin/env bash
# test_examples.sh BUILD_DIR [PYTHON]: installs the build into a temporary prefix, builds examples/cpp
# against the installed package (find_package(kestrel)), runs both examples (the Python one with PYTHON,
# when the package was built) on the same model and image, and checks the installed shared libraries
# (SONAME, only the kestrel namespace exported).
set -euo pipefail
build=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
python=${2:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
lib=$(find "$prefix" -name 'libkestrel.so' | head -1)
[ -n "$lib" ] || { echo "libkestrel.so was not installed"; exit 1; }
readelf -d "$lib" | grep -q 'SONAME.*libkestrel\.so\.[0-9]' || { echo "libkestrel.so has no versioned SONAME"; exit 1; }
leaked=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v -E '^_Z(N|NK|TVN|TIN|TSN)7kestrel' | grep -v -E '^(_init|_fini|KESTREL.*)$' || true)
[ -z "$leaked" ] || { echo "libkestrel.so exports non-API symbols:"; echo "$leaked" | head; exit 1; }
[ -x "$prefix/bin/kestrel" ] && "$prefix/bin/kestrel" --version >/dev/null
[ -f "$prefix/include/kestrel/detector.h" ] || { echo "headers were not installed"; exit 1; }

cmake -S "$here/cpp" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/build" >/dev/null

data="${KESTREL_DATA:-$here/../../shared/data}"
image=$data/coco-val/images/000000000139.jpg
model=$data/models/yolov8n.onnx
[ -f "$model" ] || model=yolov8n  # no shared data: the built-in model (seeded weights)
if [ ! -f "$image" ]; then         # and a generated PNG (gradients)
  image=$work/image.png
  "$python" - "$image" <<'PY'
import struct, sys, zlib
w, h = 160, 120
raw = b"".join(b"\0" + bytes((x * 3 + y) & 255 for x in range(w) for _ in range(3)) for y in range(h))
chunk = lambda k, b: struct.pack(">I", len(b)) + k + b + struct.pack(">I", zlib.crc32(k + b) & 0xFFFFFFFF)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY
fi
# With a GPU, both examples load one engine file (two in-memory builds may pick different kernels).
if "$prefix/bin/kestrel" build "$model" -o "$work/model.engine" >/dev/null 2>&1; then model=$work/model.engine; fi
"$work/build/detect" "$model" "$image" | tee "$work/cpp.txt"
grep -q "objects" "$work/cpp.txt"

pkg=$(find "$prefix" -path '*-packages/kestrel/__init__.py' | head -1)
if [ -n "$pkg" ]; then
  PYTHONPATH=$(dirname "$(dirname "$pkg")") "$python" "$here/python/detect.py" "$model" "$image" | tee "$work/py.txt"
  # The same model on the same image: both examples print the same detections.
  diff <(grep -v 'ms inference' "$work/cpp.txt") <(grep -v 'ms inference' "$work/py.txt")
fi
echo "examples: OK"
