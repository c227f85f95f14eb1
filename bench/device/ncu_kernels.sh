#!/usr/bin/env bash
# On the GPU machine: Nsight Compute on named kernels of one engine's single run -- where a layer's time
# goes (throughput against the roofs, the warp stall reasons, occupancy). One report per kernel regex in
# $OUT/ncu_<model>_b<batch>_<regex>.txt, a digest on stdout.
#   MODEL=yolov8n BATCH=32 PREC=fp16 KERNELS="conv_stem detect_v8" [SKIP=0 COUNT=1] bash bench/device/ncu_kernels.sh
# (SKIP / COUNT: which launches of each kernel regex, in launch order)
set -u
cd "$(dirname "$0")/../.."
source bench/device/common.sh
export KESTREL_DATA=$KESTREL_SHARED/data
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
[ -n "$NCU" ] || { echo "ncu_kernels: no ncu on this machine" >&2; exit 1; }
m=${MODEL:-yolov8n} b=${BATCH:-32} prec=${PREC:-fp16}
e=/tmp/${m}_${prec}_b$b.engine
timeout 240 kestrel build $m --batch $b $(precision_args $prec) -o $e > $L/build_${m}_b$b.log 2>&1 ||
  { echo "ncu_kernels: build failed: $(tail -1 $L/build_${m}_b$b.log)"; exit 1; }
for k in ${KERNELS:-conv_stem}; do
  r=$OUT/ncu_${m}_${prec}_b${b}_$k.txt
  KESTREL_NO_PDL=1 timeout ${NCU_TIMEOUT:-120} $NCU --clock-control none -k regex:$k --launch-skip ${SKIP:-0} --launch-count ${COUNT:-1} \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section InstructionStats \
    --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio' \
    kestrel run $e --backend cuda > $r 2>&1
  echo "== $k ($m $prec batch $b)"
  grep -E "Duration|Compute \(SM\) Throughput|Memory Throughput|DRAM Throughput|Achieved Occupancy|Theoretical Occupancy|Registers Per|Block Limit|Stall|Issue Slots Busy|L1/TEX Hit|L2 Hit|Executed Ipc A|Warp Cycles Per Issued|Grid Size|Shared Memory|Bank|Mem Pipes|FMA|LSU|MIO|stalled" $r |
    sed 's/  */ /g' | cut -c1-160 | awk '!/stalled/ || $NF+0 >= 0.3' | head -$((60 * ${COUNT:-1}))
done
echo "done ($(elapsed) s)"
