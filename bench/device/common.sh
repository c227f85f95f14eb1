# Sourced by the device-side scripts (bench/device/*.sh, tests/cuda/device/run.sh) from the repository
# root: unpacks the xz-compressed bundle in .carry/, sets up its environment and gives the helpers every
# script uses. Expects OUT (where files come back) and STAGES (what to run) to be set or defaulted.
OUT=${OUT:-/tmp/out}
L=/tmp/klogs
mkdir -p "$OUT" "$L"
# At most a few files come back from $OUT: every log goes to $L, packed into $OUT/logs.tgz.
pack() { tar czf "$OUT/logs.tgz" -C "$L" . 2>/dev/null; }
has() { [[ " $STAGES " == *" $1 "* ]]; }
t0=$(date +%s)
elapsed() { echo $(( $(date +%s) - t0 )); }
python3 - <<'PY'
import lzma, os, pathlib
for p in pathlib.Path('.carry').rglob('*.xz'):
    out = p.with_suffix('')
    out.write_bytes(lzma.decompress(p.read_bytes()))
    if 'bin' in p.parts: os.chmod(out, 0o755)
    p.unlink()
PY
source .carry/env.sh
# precision_args P: the `kestrel build` flags of precision P (fp32, fp16, int8); INT8 calibrates on the
# carried coco128 images ($CALIB_IMAGES of them, 8 by default).
precision_args() {
  echo "--$1"
  [ "$1" = int8 ] && echo "--calib $KESTREL_SHARED/data/coco128/images --calib-images ${CALIB_IMAGES:-8}"
  return 0
}
