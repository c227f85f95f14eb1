"""Runs shared/bench/anchors.py unchanged except for one work-around: on this machine's PyTorch,
torch.compile fails inside onnx_torch's Constant / ConstantOfShape ops (torch.from_numpy of a numpy
array built while tracing: "cannot set WRITEABLE flag" / wrap_numpy_ndarray assertion). The constants
are built once, outside the trace, instead; the computation is the same.
usage: python3 anchors_compile.py MODEL.onnx [anchors.py args...]"""
import os, runpy, sys

import numpy as np
import torch

bench = os.path.join(os.environ["KESTREL_SHARED"], "bench")
sys.path.insert(0, bench)
import onnx_torch  # noqa: E402

_init = onnx_torch.OnnxModule.__init__


def _init_with_constants(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    for op, ins, outs, at in self.nodes:
        if op == "Constant":
            at["_kestrel_tensor"] = torch.from_numpy(np.array(at["value"]).copy())
        elif op == "ConstantOfShape":
            v = at.get("value", np.array([0.0], dtype=np.float32))
            at["_kestrel_fill"] = float(np.array(v).reshape(-1)[0])


onnx_torch.OnnxModule.__init__ = _init_with_constants
onnx_torch.OnnxModule.op_Constant = lambda self, a, at: at["_kestrel_tensor"]
onnx_torch.OnnxModule.op_ConstantOfShape = lambda self, a, at: torch.full(self._ints(a[0]), at["_kestrel_fill"])
sys.argv = [os.path.join(bench, "anchors.py")] + sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
