#!/usr/bin/env python3
"""What kestrel.Engine.__call__ on CUDA tensors costs over the C++ call, measured in one process.

    python3 bench/python_overhead.py MODEL|ENGINE [--fp16] [--calls 4000] [--rounds 20] [--json FILE]
                                     [--timing-cache FILE] [--target-us 20]

On torch CUDA tensors of the engine's input shape (batch 1 for yolov8n), each variant below runs the
same engine, buffers and stream; the rounds interleave them (in a rotating order) so that clock and
temperature drift touch all alike. Per-call times are pooled over the rounds; the figures are medians.
  cpp        ExecutionContext::enqueue + cudaStreamSynchronize, a C++ loop (Engine._time_enqueue)
  py_out     eng(x, out=y) + stream.synchronize(), a Python loop
  py_alloc   y = eng(x) + stream.synchronize() (torch allocates the output each call)
  cpp_host, py_host: enqueue alone and eng(x, out=y) alone, each call's synchronize left out of its
             time (the host's own cost, free of GPU variance)
overhead = median(py_out) - median(cpp): the Python binding's price per inference; the target is that it
stays within --target-us. Exit status 0 when measured (whether or not the target is met), 1 on a failure.
"""
import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time


def percentile(v, q):
    s = sorted(v)
    return s[min(len(s) - 1, int(len(s) * q))]


def write_atomically(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".python_overhead.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="ONNX file, built-in name (yolov8n) or engine file")
    ap.add_argument("--fp16", action="store_true", help="build the model in fp16 (an engine file keeps its own)")
    ap.add_argument("--calls", type=int, default=4000, help="timed calls per variant, over all rounds")
    ap.add_argument("--rounds", type=int, default=20, help="interleaved rounds")
    ap.add_argument("--warmup", type=int, default=50, help="untimed calls per variant before the rounds")
    ap.add_argument("--timing-cache", default=os.environ.get("KESTREL_TIMING_CACHE", ""))
    ap.add_argument("--target-us", type=float, default=20.0)
    ap.add_argument("--json", help="write the figures here (atomically)")
    a = ap.parse_args()
    if a.calls < a.rounds or a.rounds < 1:
        ap.error("--calls must be at least --rounds, and --rounds at least 1")
    if a.json and not os.path.isdir(os.path.dirname(os.path.abspath(a.json))):
        ap.error(f"--json {a.json}: its folder does not exist")

    try:
        import torch
    except ImportError:
        sys.exit("python_overhead: needs PyTorch (torch) with CUDA")
    if not torch.cuda.is_available():
        sys.exit("python_overhead: torch sees no CUDA device")
    import kestrel

    try:
        eng = kestrel.Engine(a.model, backend="cuda", fp16=a.fp16, timing_cache=a.timing_cache)
    except kestrel.Error as e:
        sys.exit(f"python_overhead: {e}")
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.rand(eng.input_shape, device="cuda", generator=gen)  # never time on zeros
    y = torch.empty(eng.output_shape, device="cuda")
    stream = torch.cuda.current_stream()
    sync = stream.synchronize
    per_round = a.calls // a.rounds

    def py_out(n, timed_sync=True):
        t = []
        clock = time.perf_counter
        for _ in range(n):
            t0 = clock()
            eng(x, out=y)
            if timed_sync:
                sync()
                t.append(clock() - t0)
            else:
                t.append(clock() - t0)
                sync()
        return t

    def py_alloc(n):
        t = []
        clock = time.perf_counter
        for _ in range(n):
            t0 = clock()
            out = eng(x)
            sync()
            t.append(clock() - t0)
        del out
        return t

    variants = {
        "cpp": lambda n: eng._time_enqueue(x, y, n, True),
        "py_out": py_out,
        "py_alloc": py_alloc,
        "cpp_host": lambda n: eng._time_enqueue(x, y, n, False),
        "py_host": lambda n: py_out(n, False),
    }
    for fn in variants.values():  # graphs captured (both output buffers of py_alloc too), caches warm
        fn(a.warmup)
    times = {k: [] for k in variants}
    names = list(variants)
    gc.disable()  # a collection inside a timed call is not the binding's cost
    try:
        for r in range(a.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for k in order:
                times[k] += variants[k](per_round)
    finally:
        gc.enable()

    us = {k: statistics.median(v) * 1e6 for k, v in times.items()}
    p90 = {k: percentile(v, 0.9) * 1e6 for k, v in times.items()}
    overhead = {
        "out": us["py_out"] - us["cpp"],
        "alloc": us["py_alloc"] - us["cpp"],
        "host": us["py_host"] - us["cpp_host"],
    }
    met = overhead["out"] <= a.target_us
    print(f"python_overhead: {a.model}: {eng.description}, input {list(eng.input_shape)}, torch {torch.__version__}, "
          f"{per_round * a.rounds} calls per variant in {a.rounds} rounds")
    rows = [("cpp", "C++ enqueue + cudaStreamSynchronize"), ("py_out", "Python eng(x, out=y) + synchronize"),
            ("py_alloc", "Python y = eng(x) + synchronize"), ("cpp_host", "C++ enqueue alone"),
            ("py_host", "Python eng(x, out=y) alone")]
    for k, label in rows:
        print(f"  {label:<40} median {us[k]:9.2f} us   p90 {p90[k]:9.2f} us")
    print(f"  overhead over C++ (median): out= {overhead['out']:+.2f} us, allocating {overhead['alloc']:+.2f} us, "
          f"host side {overhead['host']:+.2f} us")
    print(f"  target: Python overhead <= {a.target_us:g} us over C++ (out=): {'met' if met else 'NOT met'}")
    if a.json:
        doc = {"model": a.model, "engine": eng.description, "input": list(eng.input_shape), "torch": torch.__version__,
               "calls_per_variant": per_round * a.rounds, "rounds": a.rounds, "median_us": us, "p90_us": p90,
               "overhead_us": overhead, "target_us": a.target_us, "target_met": met, "contexts": eng._contexts}
        write_atomically(a.json, json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
