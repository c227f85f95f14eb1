"""GPU cases (marked gpu; skipped without a GPU): backend auto picks CUDA, fp16 just works, engine
files open wherever a model does, and GPU boxes match the CPU reference."""
import numpy as np
import pytest

import kestrel

pytestmark = pytest.mark.gpu


def iou(a, b):
    x1, y1 = np.maximum(a[0], b[0]), np.maximum(a[1], b[1])
    x2, y2 = np.minimum(a[2], b[2]), np.minimum(a[3], b[3])
    inter = max(x2 - x1, 0) * max(y2 - y1, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def matches(cpu, gpu, min_conf=0.5):
    """Every confident CPU box has a GPU box of the same class at IoU > 0.9."""
    for box, conf, cls in zip(cpu.boxes.xyxy, cpu.boxes.conf, cpu.boxes.cls):
        if conf < min_conf:
            continue
        same_cls = gpu.boxes.xyxy[gpu.boxes.cls == cls]
        assert any(iou(box, g) > 0.9 for g in same_cls), f"class {cls} box {box} missing on the GPU"


def test_auto_is_cuda_and_fp16_just_works(data):
    model, image = data("models/yolov8n.onnx"), data("coco-val/images/000000000139.jpg")
    cpu = kestrel.Detector(model, backend="cpu")(image)[0]
    for fp16 in (False, True):
        det = kestrel.Detector(model, fp16=fp16)
        assert det.description.startswith("cuda fp16" if fp16 else "cuda fp32"), det.description
        matches(cpu, det(image)[0])


def test_engine_files_open_everywhere(tmp_path, data):
    model, image = data("models/yolov8n.onnx"), data("coco-val/images/000000000139.jpg")
    path = tmp_path / "yolov8n.engine"
    kestrel.build(model, path, fp16=True)
    det = kestrel.Detector(path)
    assert det.description.startswith("cuda fp16")
    matches(kestrel.Detector(model, backend="cpu")(image)[0], det(image)[0])
    eng = kestrel.Engine(path)
    x = np.random.default_rng(0).random(eng.input_shape, dtype=np.float32)
    y = eng(x)
    assert y.shape == tuple(eng.output_shape) and np.isfinite(y).all()
    with pytest.raises(kestrel.UsageError, match="engine file"):
        kestrel.Detector(path, backend="cpu")


def test_val_on_the_gpu(data):
    stats = kestrel.val(data("models/yolov8n.onnx"), data=data("coco-val"), fp16=True)
    assert stats["AP"] == pytest.approx(0.4076, abs=0.005)
