#!/usr/bin/env bash
# On the GPU machine (with .carry from pack_library.sh): the letterbox and detection kernels of a real
# `kestrel val` run measured apart by Nsight Compute, one row per launch (duration, grid, SM and memory
# throughput), at batch 32 and batch 1, yolov8n FP16 on coco-val (the validation regime: conf 0.001,
# multi-label). Rows land in $OUT/ncu_b{32,1}.csv; the summary (median duration per kernel) on stdout.
# STAGES (default "b32 b1") may also name
#   source  every Nsight Compute section of the batch-32 class kernels, per-instruction samples in
#           $OUT/source.csv (SASS) and the sections in $OUT/details.txt;
#   b32old, b1old  the rows of another build's kernels (its library in .carry/old, as for ab);
#   ab      another build's kernels beside these: its libkestrel_runtime.so.0, xz-compressed, in
#           .carry/old/ (added after packing), on the same engine files; $REPEATS runs each, alternating.
# Here:  bench/device/pack_library.sh build   then run(command="bash bench/device/detect_profile.sh", carry=[".carry"])
set -u
cd "$(dirname "$0")/../.."
STAGES=${STAGES:-b32 b1}
source bench/device/common.sh
export KESTREL_TIMING_CACHE=/tmp/kestrel.cache
export KESTREL_DATA=$KESTREL_SHARED/data
D=$KESTREL_DATA
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
MODEL=${MODEL:-yolov8n}
# The engine is built (and its tactics timed) once outside ncu, so the profiled run only loads it.
kestrel build $D/models/$MODEL.onnx --fp16 --batch 32 -o /tmp/b32.engine > $L/build32.log 2>&1 || { echo "build failed"; tail -3 $L/build32.log; }
kestrel build $D/models/$MODEL.onnx --fp16 --batch 1 -o /tmp/b1.engine > $L/build1.log 2>&1 || { echo "build failed"; tail -3 $L/build1.log; }
METRICS=gpu__time_duration.sum,launch__grid_size,launch__block_size,sm__throughput.avg.pct_of_peak_sustained_elapsed,gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed
for b in ${STAGES}; do
  if [ $b = ab ]; then
    # Another build's kernels beside these (its libkestrel_runtime.so.0 in .carry/old, same engine files):
    # the detection kernels' device time per image from val --json, alternating, $REPEATS each.
    for r in $(seq ${REPEATS:-2}); do
      for v in old new; do
        for n in 32 1; do
          lib=""; [ $v = old ] && lib=$PWD/.carry/old:
          LD_LIBRARY_PATH=$lib$LD_LIBRARY_PATH timeout 200 kestrel val /tmp/b$n.engine --data $D/coco-val --backend cuda --batch $n \
            --json $L/ab_${v}_b${n}_$r.json > $L/ab_${v}_b${n}_$r.log 2>&1
          echo "$v batch $n run $r exit $? $(python3 -c "import json;d=json.load(open('$L/ab_${v}_b${n}_$r.json'));s=d['speed_ms_per_image'];print('mAP %.6f  %.0f img/s  device pre %.4f post %.4f inference %.4f ms/image' % (d['map50_95'], d['images_per_s'], s['device_preprocess'], s['device_postprocess'], s['inference']))" 2>/dev/null)"
        done
      done
    done
    pack; continue
  fi
  if [ $b = source ]; then
    # The class kernels of the third batch (the first two are the warm-up's grey images), every section.
    timeout 400 $NCU --clock-control none --set full -k regex:class_nms --launch-skip 4 --launch-count 2 -f -o /tmp/rep \
      kestrel val /tmp/b32.engine --data $D/coco-val --backend cuda --batch 32 > $L/src.log 2>&1
    echo "source exit $?"
    $NCU -i /tmp/rep.ncu-rep --page details > $OUT/details.txt 2>&1
    $NCU -i /tmp/rep.ncu-rep --page source --csv --print-source sass > $OUT/source.csv 2>&1
    ls -la $OUT; pack; continue
  fi
  # b32old / b1old: the same Nsight Compute rows with the other build's library (.carry/old, as for ab).
  n=${b#b}; n=${n%old}
  lib=""; [[ $b == *old ]] && lib=$PWD/.carry/old:
  skip=0; [ $n = 1 ] && skip=40
  count=${COUNT:-60}
  timeout 280 $NCU --clock-control none --csv --page raw --metrics $METRICS \
    -k regex:"letterbox|init_kernel|prepare_kernel|class_nms|heavy_|merge_kernel|copy_flagged" \
    --launch-skip $skip --launch-count $count \
    env LD_LIBRARY_PATH=$lib$LD_LIBRARY_PATH kestrel val /tmp/b$n.engine --data $D/coco-val --backend cuda --batch $n \
    > $OUT/ncu_$b.csv 2> $L/ncu_$b.err
  echo "batch $n exit $?"
  python3 - "$OUT/ncu_$b.csv" <<'PY'
import csv, sys, statistics, collections
rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
head, rows = rows[0], rows[2:]
k, t = head.index('Kernel Name'), head.index('gpu__time_duration.sum')
by = collections.defaultdict(list)
for r in rows:
    by[r[k].split('(')[0]].append(float(r[t].replace(',', '')))
for name, v in by.items():
    print(f"  {name:40s} n={len(v):3d} median {statistics.median(v)/1000:8.1f} us  max {max(v)/1000:8.1f} us")
PY
  pack
done
echo "done ($(elapsed) s)"
