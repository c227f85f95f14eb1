"""kestrel.Detector on the CPU backend with the built-in zoo (seeded weights: no data needed), and with
the shared data's trained YOLOv8n when it is present."""
import struct
import threading
import time
import zlib

import numpy as np
import pytest

import kestrel

SIZE = 96  # the zoo model at 96x96 runs in milliseconds


def synthetic(h, w, seed):
    """RGB uint8 HxWx3 with gradients and blocks: plenty of candidates for the seeded model."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([((x // 16 + y // 16 + seed) % 3) * 100, (y * 5 + seed * 17) & 255, (x * 3 + seed * 40) & 255], axis=-1)
    return img.astype(np.uint8)


def png_bytes(rgb):
    """A minimal PNG encoder (8-bit RGB, no filter): lossless, so decoding gives the array back."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[r].tobytes() for r in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def det():
    return kestrel.Detector("yolov8n", backend="cpu", imgsz=SIZE)


def same(a, b):
    np.testing.assert_array_equal(a.boxes.xyxy, b.boxes.xyxy)
    np.testing.assert_array_equal(a.boxes.conf, b.boxes.conf)
    np.testing.assert_array_equal(a.boxes.cls, b.boxes.cls)


def test_results_have_ultralytics_shape(det):
    assert det.batch == 1 and det.imgsz == SIZE
    assert det.description.startswith("cpu fp32")
    assert len(det.names) == 80 and det.names[0] == "person"
    results = det([synthetic(120, 160, 0), synthetic(130, 70, 1)], conf=0.05)
    assert len(results) == 2
    total = 0
    for r, (h, w) in zip(results, [(120, 160), (130, 70)]):
        b = r.boxes
        assert r.orig_shape == (h, w)
        assert b.xyxy.dtype == np.float32 and b.xyxy.shape == (len(b), 4)
        assert b.conf.dtype == np.float32 and b.conf.shape == (len(b),)
        assert b.cls.dtype == np.int64 and b.cls.shape == (len(b),)
        assert np.all(b.conf > 0.05) and np.all(np.diff(b.conf) <= 0)
        assert np.all(b.xyxy[:, 0] >= 0) and np.all(b.xyxy[:, 2] <= w) and np.all(b.xyxy[:, 3] <= h)
        assert np.all((b.cls >= 0) & (b.cls < 80))
        assert set(r.speed) == {"preprocess", "inference", "postprocess"} and r.speed["inference"] > 0
        assert r.names is det.names
        assert b.data.shape == (len(b), 6)
        total += len(b)
    assert total > 0, "no boxes: the checks above checked nothing"


def test_rgb_bgr_bytes_and_paths_agree(det, tmp_path):
    rgb = synthetic(100, 150, 2)
    want = det(rgb, conf=0.05)[0]
    assert len(want.boxes) > 0
    same(det(np.ascontiguousarray(rgb[..., ::-1]), conf=0.05, channels="bgr")[0], want)
    # A strided view (a crop of a wider array) is read in place.
    wide = np.zeros((100, 170, 3), np.uint8)
    wide[:, :150] = rgb
    same(det(wide[:, :150], conf=0.05)[0], want)
    data = png_bytes(rgb)
    same(det(data, conf=0.05)[0], want)
    same(det(bytearray(data), conf=0.05)[0], want)
    path = tmp_path / "image.png"
    path.write_bytes(data)
    r = det(path, conf=0.05)[0]
    assert r.path == str(path)
    same(r, want)
    # A mixed list keeps its order.
    mixed = det([str(path), rgb, data, rgb], conf=0.05)
    assert len(mixed) == 4
    for r in mixed:
        same(r, want)


def test_thresholds(det):
    img = synthetic(128, 128, 3)
    loose, strict = det(img, conf=0.05)[0], det(img, conf=0.2)[0]
    assert len(strict.boxes) <= len(loose.boxes)
    assert len(det(img, conf=0.05, max_det=1)[0].boxes) <= 1
    # An (N, H, W, 3) array is N images.
    stacked = det(np.stack([img, img]), conf=0.05)
    assert len(stacked) == 2
    same(stacked[0], loose)
    same(stacked[1], loose)


def test_batches_larger_than_the_engine_are_split():
    det = kestrel.Detector("yolov8n", backend="cpu", imgsz=SIZE, batch=2)
    assert det.batch == 2
    results = det([synthetic(100, 100, i) for i in range(5)], conf=0.05)
    assert len(results) == 5 and all(r.orig_shape == (100, 100) for r in results)


def test_bad_input_raises_with_one_line(det, tmp_path):
    with pytest.raises(kestrel.Error, match="/nonexistent/bus.jpg"):
        det("/nonexistent/bus.jpg")
    with pytest.raises(kestrel.UsageError, match="uint8"):
        det(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(kestrel.UsageError, match="HxWx3"):
        det([np.zeros((32, 32, 4), np.uint8)])
    with pytest.raises(kestrel.UsageError, match="expected a path"):
        det([42])
    with pytest.raises(kestrel.UsageError, match="conf"):
        det(synthetic(32, 32, 0), conf=float("nan"))
    with pytest.raises(kestrel.UsageError, match="channels"):
        det(synthetic(32, 32, 0), channels="bgra")
    with pytest.raises(kestrel.Error):
        det(b"not an image")
    with pytest.raises(kestrel.UsageError, match="unknown backend"):
        kestrel.Detector("yolov8n", backend="gpu")
    with pytest.raises(kestrel.Error, match="unknown model"):
        kestrel.Detector("yolov9z", backend="cpu")
    assert issubclass(kestrel.UsageError, kestrel.Error) and issubclass(kestrel.Error, RuntimeError)
    assert det([]) == []


@pytest.mark.skipif(kestrel.gpu_available(), reason="checks the message on machines without a GPU")
def test_fp16_without_a_gpu_says_so():
    with pytest.raises(kestrel.UsageError, match="fp16"):
        kestrel.Detector("yolov8n", fp16=True, imgsz=SIZE)
    with pytest.raises(kestrel.UsageError, match="cuda"):
        kestrel.Detector("yolov8n", backend="cuda", imgsz=SIZE)


def test_gil_is_released_during_inference():
    det = kestrel.Detector("yolov8n", backend="cpu", imgsz=320)
    images = [synthetic(320, 320, i) for i in range(4)]
    det(images[:1])  # warm-up
    done, spent = threading.Event(), []

    def work():
        t0 = time.perf_counter()
        det(images)
        spent.append(time.perf_counter() - t0)
        done.set()

    ticks = []
    worker = threading.Thread(target=work)
    worker.start()
    while not done.is_set():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    worker.join()
    gaps = np.diff(ticks) if len(ticks) > 1 else np.array([spent[0]])
    # Holding the GIL would freeze this loop for the whole call; released, it keeps ticking.
    assert spent[0] > 0.02
    assert gaps.max() < spent[0] / 2, f"main thread stalled {gaps.max():.3f}s of a {spent[0]:.3f}s call"


def test_threads_share_one_detector(det):
    images = [synthetic(90, 120, i) for i in range(4)]
    serial = [det(img, conf=0.05)[0] for img in images]
    parallel = [None] * 4

    def work(i):
        parallel[i] = det(images[i], conf=0.05)[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(parallel, serial):
        same(a, b)


def test_trained_model_on_a_coco_image(data):
    model, image = data("models/yolov8n.onnx"), data("coco-val/images/000000000139.jpg")
    det = kestrel.Detector(model, backend="cpu")
    r = det(image)[0]
    assert r.orig_shape == (426, 640)
    assert len(r.boxes) > 0
    assert "person" in {r.names[int(c)] for c in r.boxes.cls}
    same(det(image.read_bytes())[0], r)
