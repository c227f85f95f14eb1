"""kestrel.Engine's CUDA-tensor path, the parts that need no GPU: a tensor's description
(__cuda_array_interface__, __dlpack_device__) is checked before any memory is touched, so stand-in
objects that own no memory exercise every refusal on a CPU engine. The GPU side is test_gpu_tensors.py."""
import threading

import numpy as np
import pytest

import kestrel

IN, OUT = (1, 3, 96, 96), (1, 84, 189)


@pytest.fixture(scope="module")
def eng():
    return kestrel.Engine("yolov8n", backend="cpu", imgsz=96)


class FakeCuda:
    """Speaks __cuda_array_interface__ (v3) over a made-up pointer: only its description may be read."""

    def __init__(self, shape=IN, typestr="<f4", strides=None, data=(0x7F0000000000, False), **extra):
        self.__cuda_array_interface__ = dict(shape=shape, typestr=typestr, strides=strides, data=data, version=3,
                                             **extra)


class FakeDlpack:
    """Speaks DLPack with the given device; __dlpack__ fails, as it must never be called on a CPU engine."""

    def __init__(self, device=(2, 0)):
        self.device = device

    def __dlpack_device__(self):
        return self.device

    def __dlpack__(self, stream=None):
        raise AssertionError("__dlpack__ must not be called here")


def usage_error(eng, match, *args, **kwargs):
    with pytest.raises(kestrel.UsageError, match=match) as e:
        eng(*args, **kwargs)
    assert "\n" not in str(e.value), f"not one line: {e.value!r}"
    return str(e.value)


def test_a_cuda_tensor_on_a_cpu_engine_is_refused(eng):
    assert eng.backend == "cpu"
    msg = usage_error(eng, "CPU backend", FakeCuda())
    assert "backend='cuda'" in msg
    usage_error(eng, "CPU backend", FakeDlpack())
    usage_error(eng, "CPU backend", FakeDlpack(device=(13, 0)))  # CUDA managed memory is a CUDA tensor too


# Row-major strides in bytes of the input shape, and two that are not.
C_STRIDES = (3 * 96 * 96 * 4, 96 * 96 * 4, 96 * 4, 4)


@pytest.mark.parametrize("fake, match", [
    (FakeCuda(typestr="<f2"), r"'<f2'.*float32"),
    (FakeCuda(typestr="<f8"), r"'<f8'.*float32"),
    (FakeCuda(typestr=4), r"'typestr'\] is not a str"),
    (FakeCuda(shape=(1, 3, 64, 64)), r"\[1,3,64,64\]; the engine takes \[1,3,96,96\] float32"),
    (FakeCuda(shape=(3, 96, 96)), r"\[3,96,96\]; the engine takes \[1,3,96,96\]"),
    (FakeCuda(shape="1,3,96,96"), r"'shape'\] is not a tuple of ints"),
    (FakeCuda(shape=(1, 3, 96.0, 96)), r"'shape'\] is not a tuple of ints"),
    (FakeCuda(strides=(4, 4, 4, 4)), r"not contiguous \(strides \(4, 4, 4, 4\) bytes\)"),
    (FakeCuda(strides=(3 * 96 * 96 * 4, 4, 3 * 96 * 4, 3 * 4)), "not contiguous"),  # channels-last
    (FakeCuda(strides=(4, 4)), "not contiguous"),
    (FakeCuda(mask=(0x1000, False)), "masked"),
    (FakeCuda(data=None), r"no 'data'"),
    (FakeCuda(data=0x1000), r"\(pointer, read_only\) pair"),
    (FakeCuda(data=(0, False)), "null data pointer"),
    (FakeCuda(stream=0), "forbids"),
    (FakeCuda(stream="default"), r"'stream'\] is not an int"),
])
def test_a_wrong_description_is_named(eng, fake, match):
    usage_error(eng, match, fake)


def test_malformed_interfaces(eng):
    class NotADict:
        __cuda_array_interface__ = [("shape", IN)]

    class Raises:
        @property
        def __cuda_array_interface__(self):
            raise RuntimeError("Can't get __cuda_array_interface__ on Variable that requires grad")

    class Missing:
        __cuda_array_interface__ = {"shape": IN, "data": (0x1000, False)}

    usage_error(eng, "not a dict", NotADict())
    usage_error(eng, "cannot read its __cuda_array_interface__: RuntimeError: .*requires grad", Raises())
    usage_error(eng, "no 'typestr'", Missing())
    usage_error(eng, r"__dlpack_device__\(\) did not return a \(device_type, device_id\) pair", FakeDlpack(device="cuda"))
    usage_error(eng, r"__dlpack_device__\(\) did not return", FakeDlpack(device=(2,)))

    class DeviceRaises(FakeDlpack):
        def __dlpack_device__(self):
            raise ValueError("no device\nsecond line")

    assert usage_error(eng, r"__dlpack_device__\(\) failed: ValueError: no device second line$", DeviceRaises())


def test_a_right_description_passes_the_checks(eng):
    # Valid descriptions get as far as the backend: C strides given explicitly, any stride on a
    # dimension of extent 1 (torch reports such), a stream, a read-only input.
    for fake in (FakeCuda(strides=C_STRIDES), FakeCuda(strides=(4, 96 * 96 * 4, 96 * 4, 4)), FakeCuda(stream=1),
                 FakeCuda(data=(0x7F0000000000, True)), FakeCuda(typestr="=f4")):
        usage_error(eng, "CPU backend", fake)


def test_out_is_checked_like_the_input(eng):
    x = np.zeros(IN, np.float32)
    usage_error(eng, "out must be a numpy array when the input is one", x, out=FakeCuda(shape=OUT))
    usage_error(eng, r"out is read-only", FakeCuda(), out=FakeCuda(shape=OUT, data=(0x7F0000000000, True)))
    usage_error(eng, r"out is \[1,3,96,96\]; the engine writes \[1,84,189\]", FakeCuda(), out=FakeCuda())
    usage_error(eng, r"out has typestr '<f2'", FakeCuda(), out=FakeCuda(shape=OUT, typestr="<f2"))
    usage_error(eng, "stream= is for CUDA tensor inputs", x, stream=0)


def test_numpy_out(eng):
    x = np.random.default_rng(1).random(IN, dtype=np.float32)
    want = eng(x)
    y = np.full(OUT, np.nan, np.float32)
    assert eng(x, out=y) is y  # written in place, no new array
    np.testing.assert_array_equal(y, want)
    usage_error(eng, "out is float64; the engine writes float32", x, out=np.zeros(OUT))
    usage_error(eng, r"out is \[1,84,188\]", x, out=np.zeros((1, 84, 188), np.float32))
    usage_error(eng, "out is not C-contiguous", x, out=np.zeros((1, 189, 84), np.float32).transpose(0, 2, 1))
    ro = np.zeros(OUT, np.float32)
    ro.flags.writeable = False
    usage_error(eng, "out is read-only", x, out=ro)


def test_host_objects_still_run_on_a_cpu_engine(eng):
    # An array-like whose DLPack device is the CPU (a torch CPU tensor, say) is converted as before.
    x = np.random.default_rng(2).random(IN, dtype=np.float32)

    class CpuTensor(FakeDlpack):
        def __array__(self, dtype=None, copy=None):
            return x

    np.testing.assert_array_equal(eng(CpuTensor(device=(1, 0))), eng(x))
    usage_error(eng, "numeric array or a CUDA tensor, not object", object())


def test_concurrent_calls_match_sequential_ones(eng):
    xs = [np.random.default_rng(10 + i).random(IN, dtype=np.float32) for i in range(4)]
    want = [eng(x) for x in xs]
    got = [None] * len(xs)

    def work(i):
        for _ in range(2):
            got[i] = eng(xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
