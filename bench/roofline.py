#!/usr/bin/env python3
"""Each layer of a per-layer profile against its roofline: the time it would take at the GPU's memory
bandwidth (the activation bytes it reads and writes, once each) or at its tensor-core peak, whichever is
longer, next to the time it took. Sorted by the time above that floor, so the list starts where a kernel
has the most to gain.

  kestrel inspect MODEL --optimized --json --batch B > layers.json      (here: no GPU needed)
  kestrel bench ENGINE --dump-profile > profile.log   (on the GPU machine; or its --json file)
  bench/roofline.py layers.json profile.log [--bandwidth TB/s] [--tflops TF] [--top N]

Activations count 2 bytes (FP16 engines) unless --act-bytes says otherwise; the model's inputs and outputs
keep their own dtypes (the float32 image, the float32 head output). The defaults are an H100 SXM's roofs:
3.35 TB/s of HBM3 and 989 dense FP16 TFLOP/s. A layer of the profile that the graph does not have (a
reformat, a quantize pass) is listed under its own name with no floor.
"""
import argparse
import json
import math
import sys

from profile_log import parse_profile

DTYPE_BYTES = {"f32": 4, "f16": 2, "i8": 1, "u8": 1, "i32": 4, "i64": 8, "bool": 1}


def layer_bytes(layer, model_tensors, act_bytes):
    total = 0
    for t in layer.get("inputs", []) + layer.get("outputs", []):
        if t.get("constant"):
            continue
        size = DTYPE_BYTES.get(t["dtype"], 4) if t["name"] in model_tensors else act_bytes
        total += math.prod(t["shape"]) * size
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("layers", help="kestrel inspect --optimized --json output")
    ap.add_argument("profile", help="kestrel bench --dump-profile output")
    ap.add_argument("--bandwidth", type=float, default=3.35, help="memory bandwidth, TB/s")
    ap.add_argument("--tflops", type=float, default=989.0, help="tensor-core peak, TFLOP/s")
    ap.add_argument("--act-bytes", type=int, default=2, help="bytes per activation element")
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()

    model = json.load(open(a.layers))
    if "inputs" not in model["layers"][0]:
        sys.exit("roofline: the layer list has no tensors; it needs `kestrel inspect --json` of this version")
    model_tensors = {t["name"] for t in model["inputs"] + model["outputs"]}
    layers = model["layers"]
    out, unmatched = [], []
    for text, ms in parse_profile(a.profile):
        # Older profiles cut long names: the layer is the one whose name the text starts with.
        name = text.split(" (")[0]
        hits = [l for l in layers if l["name"] == name] or [l for l in layers if l["name"].startswith(name)]
        if len(hits) != 1:
            unmatched.append((text, ms))
            continue
        l = hits[0]
        b = layer_bytes(l, model_tensors, a.act_bytes)
        floor = max(b / (a.bandwidth * 1e12), l["flops"] / (a.tflops * 1e12)) * 1e3
        out.append((text, ms, b, l["flops"], floor))
    out.sort(key=lambda r: r[1] - r[4], reverse=True)
    measured = sum(r[1] for r in out) + sum(ms for _, ms in unmatched)
    floors = sum(r[4] for r in out)
    shown = out[: a.top]
    # Whole names, as `bench --dump-profile` prints them: a cut one no longer says which layer or kernel.
    width = max([len("layer (as profiled)")] + [len(r[0]) for r in shown] + [len(t) for t, _ in unmatched])
    print(f"roofs: {a.bandwidth} TB/s, {a.tflops} TFLOP/s; activations {a.act_bytes} bytes")
    print(f"{'layer (as profiled)':{width}} {'ms':>8} {'MB':>8} {'GFLOP':>8} {'floor ms':>9} {'of roof':>8}")
    for text, ms, b, f, floor in shown:
        print(f"{text:{width}} {ms:8.4f} {b / 1e6:8.1f} {f / 1e9:8.2f} {floor:9.4f} {floor / ms:8.0%}")
    for text, ms in unmatched:
        print(f"{text:{width}} {ms:8.4f} {'':>8} {'':>8} {'':>9} {'(no floor)':>8}")
    print(f"sum: measured {measured:.4f} ms, floors {floors:.4f} ms over {len(out)} layers "
          f"({len(unmatched)} without a floor)")


if __name__ == "__main__":
    main()
