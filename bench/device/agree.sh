#!/usr/bin/env bash
# On the GPU machine (with .carry from pack_compare.sh): the fidelity targets of INT8 for the three models
# -- kestrel compare with --agree on agree-val (200 unlabelled images) next to mAP on coco-val, every
# precision, bootstrap 95 % intervals -- for the default policy and for --int8-auto (agreement target
# 0.98 on calibration images). Calibration runs on the host CPU there: from the carried caches in
# $CACHES (pack_int8.sh makes them; default policy only) or from coco128 (about a minute; --int8-auto
# several minutes). Bundle: EXTRA_WITH="data/agree-val data/coco128" bench/device/pack_compare.sh --
# agree-val, coco-val and coco128 together exceed the 64 MiB carry, so carry caches instead of coco128,
# or run the stages in two calls, or quantize here and carry the Q/DQ files in $QDQ_DIR (named
# MODEL.default.qdq.onnx / MODEL.auto.qdq.onnx). Every log goes to $OUT/logs.tgz; STAGES selects (default:
# default auto), PRECS the precisions (default fp32,fp16,int8). mAP on coco-val comes with it where coco-val
# is carried (a bundle of agree-val and Q/DQ files may leave it out: agreement only).
set -u
cd "$(dirname "$0")/../.."
STAGES=${STAGES:-default auto}
source bench/device/common.sh
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
D=$KESTREL_SHARED/data
for policy in default auto; do
  has $policy || continue
  for m in ${MODELS:-yolov5n yolov8n yolo11n}; do
    calib="--calib $D/coco128/images"
    [[ $policy == auto ]] && calib="$calib --int8-auto"
    [[ $policy == default && -n "${CACHES:-}" ]] && calib="--calib-cache $CACHES/$m.percentile.cache"
    # QDQ_DIR: Q/DQ files `kestrel quantize -o` wrote (MODEL.POLICY.qdq.onnx, e.g. --int8-auto's, minutes of
    # CPU): compared as they are, nothing calibrated on that machine.
    [[ -n "${QDQ_DIR:-}" ]] && calib="--int8-model $QDQ_DIR/$m.$policy.qdq.onnx"
    echo "== agree $m $policy ($(elapsed) s)"
    data=""
    [[ -d $D/coco-val ]] && data="--data $D/coco-val"
    timeout ${AGREE_TIMEOUT:-400} kestrel compare $D/models/$m.onnx $data --agree $D/agree-val/images \
      --precisions ${PRECS:-fp32,fp16,int8} $calib --batch 1 --duration 0.5 \
      --json $L/agree_${m}_$policy.json > $L/agree_${m}_$policy.log 2>&1
    echo "exit $?"
    grep -E "^agreement with FP32|auto: agreement" $L/agree_${m}_$policy.log
    grep -A4 "^precision" $L/agree_${m}_$policy.log
    pack
  done
done
