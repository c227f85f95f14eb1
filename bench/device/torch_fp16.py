"""PyTorch FP16 anchors for one architecture of ../shared/bench/yolo_arch.py: eager and eager + CUDA graph
(channels-last, cudnn.benchmark), timed exactly as ../shared/bench/anchors.py times them, without its FP32
rows (which the size table does not use) so that every size fits one device call.
usage: python3 torch_fp16.py ARCH --batches 1,32 [--json FILE]"""
import argparse, json, os, sys

import torch

sys.path.insert(0, os.path.join(os.environ["KESTREL_SHARED"], "bench"))
import anchors  # noqa: E402  (gpu_time, graphed, load_model: the shared timing method)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    rows = []
    m = anchors.load_model(args.model).eval().cuda().half()
    for mod in m.modules():
        if isinstance(mod, torch.nn.Conv2d):
            mod.to(memory_format=torch.channels_last)
    for b in [int(v) for v in args.batches.split(",")]:
        x = torch.rand(b, 3, 640, 640, device="cuda", dtype=torch.float16).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            r = anchors.gpu_time(lambda: m(x)); r.update(runtime="torch-eager", prec="fp16", batch=b); rows.append(r)
            g = anchors.graphed(m, x)
            r = anchors.gpu_time(g); r.update(runtime="torch-eager+cudagraph", prec="fp16", batch=b); rows.append(r)
        for r in rows[-2:]:
            print(f"{args.model} b{b} {r['runtime']}: median {r['median_ms']:.4f} ms", flush=True)
        del g
        torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f)


if __name__ == "__main__":
    main()
