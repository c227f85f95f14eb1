#!/usr/bin/env python3
"""One side-by-side row of two engines from their `kestrel bench --json` files, RUNS of each:
DIR/STEM_A_r1.json, DIR/STEM_A_r2.json, ... and the same for B; the medians and the speed-up of B over A.

    ab_row.py DIR STEM A B LABEL_A LABEL_B [--e2e] [--tag ROW] [--note TEXT]

Without --e2e: GPU compute medians (ms, lower is better); with it: images/s of images in, boxes out
(`bench --images`, higher is better). A side with no readable run gives a "missing" row and exit
status 1: a row that measured nothing is a failure. Used by bench/device/streams.sh and bench/device/ab.sh."""
import argparse
import json
import statistics
import sys

ap = argparse.ArgumentParser()
for a in ("dir", "stem", "a", "b", "label_a", "label_b"):
    ap.add_argument(a)
ap.add_argument("--e2e", action="store_true")
ap.add_argument("--tag", default="ROW")
ap.add_argument("--note", default="")
ap.add_argument("--runs", type=int, default=2)
o = ap.parse_args()


def values(side):
    v = []
    for r in range(1, o.runs + 1):
        try:
            j = json.load(open(f"{o.dir}/{o.stem}_{side}_r{r}.json"))
            v.append(j["end_to_end"]["images_per_s"] if o.e2e else j["gpu_compute_ms"]["median"])
        except Exception:
            pass
    return v


a, b = values(o.a), values(o.b)
if a and b:
    ma, mb = statistics.median(a), statistics.median(b)
    unit, fmt = ("images/s", "%.1f") if o.e2e else ("ms", "%.4f")
    gain = mb / ma if o.e2e else ma / mb
    note = f" | {o.note}" if o.note else ""
    print(f"{o.tag} {o.stem}: {o.label_a} {fmt % ma} {unit} {a} | {o.label_b} {fmt % mb} {unit} {b} | {gain:.3f}x{note}",
          flush=True)
else:
    print(f"{o.tag} {o.stem}: missing ({a} {b})", flush=True)
    sys.exit(1)
