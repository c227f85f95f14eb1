"""kestrel.Engine on CUDA tensors (marked gpu; skipped without a GPU): torch (and cupy) tensors in and
out without a copy, the numbers of the numpy path bit for bit, the caller's stream, concurrent callers,
and the refusals that need a GPU to show. The checks that need no GPU are in test_device_tensors.py."""
import os
import threading
import time

import numpy as np
import pytest

import kestrel

pytestmark = pytest.mark.gpu

SLEEP_CYCLES = 1_000_000_000  # torch.cuda._sleep: about half a second at H100/H200 clocks


@pytest.fixture(scope="module")
def torch():
    # Imported here, not at the top: the CPU run (-m "not gpu") must not need torch.
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def eng():
    # The built-in YOLOv8n (no data needed) at 320: a quicker build than 640, the same code paths.
    return kestrel.Engine("yolov8n", backend="cuda", fp16=True, imgsz=320,
                          timing_cache=os.environ.get("KESTREL_TIMING_CACHE", ""))


def host_input(eng, seed):
    return np.random.default_rng(seed).random(eng.input_shape, dtype=np.float32)


def nan_out(torch, eng):
    """An output buffer full of NaN: a call that wrote nothing cannot pass for one that did."""
    return torch.full(eng.output_shape, float("nan"), device="cuda")


def sleep_on_current_stream(torch):
    """Keeps the current stream busy for a while; returns events around the sleep to prove it was."""
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    torch.cuda._sleep(SLEEP_CYCLES)
    b.record()
    return a, b


def test_torch_in_torch_out_without_a_copy(torch, eng):
    assert eng.backend == "cuda" and eng.description.startswith("cuda fp16")
    x_np = host_input(eng, 0)
    want = eng(x_np)  # the numpy path: the reference
    assert isinstance(want, np.ndarray) and np.isfinite(want).all()
    x = torch.from_numpy(x_np).cuda()
    y = eng(x)
    assert isinstance(y, torch.Tensor) and y.device == x.device and y.dtype == torch.float32
    assert tuple(y.shape) == tuple(eng.output_shape) and y.is_contiguous()
    np.testing.assert_array_equal(y.cpu().numpy(), want)
    out = nan_out(torch, eng)
    ptr = out.data_ptr()
    assert eng(x, out=out) is out and out.data_ptr() == ptr
    np.testing.assert_array_equal(out.cpu().numpy(), want)
    # A loop that allocates its output: the caching allocator hands back alternating buffers; each
    # pair of pointers gets its CUDA graph (a context each) instead of a capture per call.
    for _ in range(8):
        y = eng(x)
        np.testing.assert_array_equal(y.cpu().numpy(), want)
    assert eng._contexts <= 4, eng._contexts


def test_no_host_copies(torch, eng):
    from torch.profiler import ProfilerActivity, profile

    x_np = host_input(eng, 1)
    x, out = torch.from_numpy(x_np).cuda(), nan_out(torch, eng)
    for _ in range(3):  # the pointers' graph is captured before the profiled call
        eng(x, out=out)
    eng(x_np)
    torch.cuda.synchronize()

    def host_copies(fn):
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        names = [e.name for e in prof.events()]
        return [n for n in names if "Memcpy" in n and ("HtoD" in n or "DtoH" in n)]

    # The control: the numpy path copies both ways, and the profiler must see it to tell anything.
    if not host_copies(lambda: eng(x_np)):
        pytest.skip("the profiler saw no copy of the numpy path, so it cannot show their absence")
    assert host_copies(lambda: eng(x, out=out)) == []
    np.testing.assert_array_equal(out.cpu().numpy(), eng(x_np))


def test_the_callers_current_stream(torch, eng):
    src = torch.from_numpy(host_input(eng, 2)).cuda()
    ref = eng(src)
    x, out = torch.zeros_like(src), nan_out(torch, eng)
    for _ in range(3):  # capture the graph now: the first capture synchronizes once
        eng(x, out=out)
    torch.cuda.synchronize()
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        a, b = sleep_on_current_stream(torch)  # s is busy; a call on another stream would read zeros
        x.copy_(src)
        t0 = time.perf_counter()
        assert eng(x, out=out) is out
        returned_after = time.perf_counter() - t0
        z = out.clone()  # on s: after the engine's write
    s.synchronize()
    assert a.elapsed_time(b) > 200, "the sleep was too short to tell"
    assert torch.equal(z, ref)
    assert returned_after < 0.1, f"the call waited for the stream ({returned_after:.3f} s)"


def test_explicit_stream_and_interface_streams(torch, eng):
    src = torch.from_numpy(host_input(eng, 3)).cuda()
    ref = eng(src)
    torch.cuda.synchronize()
    for how in ("torch.cuda.Stream", "int", "__cuda_array_interface__", "dlpack"):
        x, out = torch.zeros_like(src), nan_out(torch, eng)
        torch.cuda.synchronize()  # both ready: only the copy below is left for s to order
        s = torch.cuda.Stream()
        with torch.cuda.stream(s):
            sleep_on_current_stream(torch)
            x.copy_(src)  # x is ready on s only; the current stream below is the default one
        if how == "torch.cuda.Stream":
            eng(x, out=out, stream=s)
        elif how == "int":
            eng(x, out=out, stream=s.cuda_stream)
        elif how == "__cuda_array_interface__":
            eng(WithStream(x, s.cuda_stream), out=out)  # the interface names s: the work goes there
        else:
            eng(DlpackOnly(x), out=out, stream=s)  # DLPack: the producer is told the stream
        with torch.cuda.stream(s):
            z = out.clone()
        s.synchronize()
        assert torch.equal(z, ref), how


class WithStream:
    """A torch tensor's __cuda_array_interface__ with a stream (v3), as cupy and numba give it."""

    def __init__(self, t, stream):
        self.__cuda_array_interface__ = dict(t.__cuda_array_interface__, stream=stream, version=3)


class DlpackOnly:
    """Speaks DLPack only (as JAX arrays do)."""

    def __init__(self, t):
        self.t = t

    def __dlpack_device__(self):
        return self.t.__dlpack_device__()

    def __dlpack__(self, stream=None):
        return self.t.__dlpack__(stream=stream)


def test_dlpack_inputs(torch, eng):
    x_np = host_input(eng, 4)
    x, out = torch.from_numpy(x_np).cuda(), nan_out(torch, eng)
    assert eng(DlpackOnly(x), out=out) is out
    np.testing.assert_array_equal(out.cpu().numpy(), eng(x_np))
    with pytest.raises(kestrel.UsageError, match=r"pass out= \(a float32 CUDA array of shape \[1,84,2100\]\)"):
        eng(DlpackOnly(x))
    with pytest.raises(kestrel.UsageError, match="float16; the engine takes float32"):
        eng(DlpackOnly(x.half()), out=out)
    with pytest.raises(kestrel.UsageError, match="not contiguous"):
        eng(DlpackOnly(x.transpose(2, 3)), out=out)
    with pytest.raises(kestrel.UsageError, match=r"is \[1,3,64,64\]"):
        eng(DlpackOnly(torch.zeros(1, 3, 64, 64, device="cuda")), out=out)
    with pytest.raises(kestrel.UsageError, match="out is"):
        eng(x, out=DlpackOnly(torch.zeros(1, 84, 2100, device="cuda", dtype=torch.float16)))


def test_refusals_leave_the_engine_working(torch, eng):
    x_np = host_input(eng, 5)
    x, out = torch.from_numpy(x_np).cuda(), nan_out(torch, eng)
    host = np.zeros(eng.input_shape, np.float32)
    cases = [
        (lambda: eng(x.half()), "'<f2'.*float32"),
        (lambda: eng(x.double()), "'<f8'.*float32"),
        (lambda: eng(x.transpose(2, 3)), "not contiguous"),
        (lambda: eng(x[:, :, :64, :64]), r"\[1,3,64,64\]"),
        (lambda: eng(x.cpu()), "cpu tensor \\(DLPack\\); this CUDA engine takes CUDA tensors or numpy arrays"),
        (lambda: eng(x.clone().requires_grad_()), "cannot read its __cuda_array_interface__.*grad"),
        (lambda: eng(x, out=out.half()), "out has typestr '<f2'"),
        (lambda: eng(x, out=out[:, :, :100]), r"out is \[1,84,100\]"),
        (lambda: eng(x, out=np.zeros(eng.output_shape, np.float32)), "out must be a CUDA array"),
        (lambda: eng(x, out=out.cpu()), "out must be a CUDA array"),
        (lambda: eng(x_np, out=out), "out must be a numpy array"),
        (lambda: eng(x, stream="default"), "stream must be an int"),
        # Host memory behind a CUDA interface: refused before any kernel could fault on it.
        (lambda: eng(Fake(host.ctypes.data)), "not CUDA device memory"),
        (lambda: eng(Fake(0x7F0000000000)), "not CUDA device memory"),
        (lambda: eng(x, out=Fake(0x7F0000000000, eng.output_shape)), "out: its pointer"),
    ]
    for fn, match in cases:
        with pytest.raises(kestrel.UsageError, match=match) as e:
            fn()
        assert "\n" not in str(e.value)
    assert eng(x, out=out) is out
    np.testing.assert_array_equal(out.cpu().numpy(), eng(x_np))


class Fake:
    def __init__(self, ptr, shape=(1, 3, 320, 320)):
        self.__cuda_array_interface__ = dict(shape=tuple(shape), typestr="<f4", strides=None, data=(ptr, False),
                                             version=2)


def test_concurrent_callers_on_their_own_streams(torch, eng):
    n, calls = 4, 20
    xs_np = [host_input(eng, 10 + i) for i in range(n)]
    want = [eng(x) for x in xs_np]
    got, errors = [None] * n, []

    def work(i):
        try:
            s = torch.cuda.Stream()
            with torch.cuda.stream(s):
                x, out = torch.from_numpy(xs_np[i]).cuda(), nan_out(torch, eng)
                for _ in range(calls):
                    out.fill_(float("nan"))
                    eng(x, out=out)
                got[i] = out.cpu().numpy()  # on s, after the last call
        except Exception as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_cupy_in_cupy_out(eng):
    cupy = pytest.importorskip("cupy")
    x_np = host_input(eng, 6)
    y = eng(cupy.asarray(x_np))
    assert isinstance(y, cupy.ndarray) and y.dtype == cupy.float32 and y.shape == tuple(eng.output_shape)
    np.testing.assert_array_equal(cupy.asnumpy(y), eng(x_np))


def test_batch_profile_engine_takes_any_batch_in_its_range(torch, tmp_path):
    # One engine for batches 1..4 (kestrel.build's max_batch, as `kestrel build --max-batch`): numpy and
    # torch inputs of batch 1 and 3 run as they are, outputs follow the input's batch.
    path = tmp_path / "v8_profile.engine"
    kestrel.build("yolov8n", path, fp16=True, imgsz=160, max_batch=4,
                  timing_cache=os.environ.get("KESTREL_TIMING_CACHE", ""))
    eng = kestrel.Engine(path)
    assert eng.batch_range == (1, 4)
    assert tuple(eng.input_shape)[0] == 4
    x3 = np.random.default_rng(3).random((3, 3, 160, 160), dtype=np.float32)
    y3 = eng(x3)
    assert y3.shape[0] == 3 and np.isfinite(y3).all()
    y1 = eng(x3[:1])
    assert y1.shape[0] == 1
    # Batch 3 runs plans 2 + 1; image 0 went through the batch-2 plan: the same model, FP16 rounding apart.
    np.testing.assert_allclose(y3[:1], y1, rtol=2e-2, atol=2e-2)
    t3 = eng(torch.from_numpy(x3).cuda())
    assert tuple(t3.shape) == y3.shape
    np.testing.assert_array_equal(t3.cpu().numpy(), y3)
    with pytest.raises(kestrel.UsageError, match="any batch from 1 to 4"):
        eng(np.zeros((5, 3, 160, 160), np.float32))
    with pytest.raises(kestrel.UsageError, match="follows the input's batch"):
        eng(torch.from_numpy(x3).cuda(), out=torch.empty((2,) + tuple(y3.shape[1:]), device="cuda"))
