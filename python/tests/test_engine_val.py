"""kestrel.Engine (raw tensors) and kestrel.val (COCO metrics) on the CPU backend."""
import numpy as np
import pytest

import kestrel


def test_engine_runs_raw_tensors():
    eng = kestrel.Engine("yolov8n", backend="cpu", imgsz=96)
    assert eng.input_shape == [1, 3, 96, 96]
    assert eng.output_shape == [1, 84, 189]
    x = np.random.default_rng(0).random((1, 3, 96, 96), dtype=np.float32)
    y = eng(x)
    assert y.dtype == np.float32 and y.shape == (1, 84, 189)
    assert np.isfinite(y).all()
    np.testing.assert_array_equal(eng(x), y)  # deterministic
    np.testing.assert_array_equal(eng(x.astype(np.float64)), y)  # any float array runs as float32
    with pytest.raises(kestrel.UsageError, match=r"\[1,3,96,96\]"):
        eng(np.zeros((1, 3, 32, 32), np.float32))


def test_engine_errors():
    with pytest.raises(kestrel.UsageError, match="exclusive"):
        kestrel.Engine("yolov8n", backend="cpu", fp16=True, int8=True)
    with pytest.raises(kestrel.UsageError, match="INT8 needs calibration"):
        kestrel.Engine("yolov8n", backend="cpu", int8=True, imgsz=96)
    with pytest.raises(kestrel.UsageError, match="int8=True"):
        kestrel.Engine("yolov8n", backend="cpu", calib="/tmp")


def test_val_returns_the_12_coco_metrics(data):
    model, dataset = data("models/yolov8n.onnx"), data("coco-val")
    stats = kestrel.val(model, data=dataset, backend="cpu")
    assert list(stats) == ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
    # MANIFEST.md: the reference pipeline's mAP@0.5:0.95 on coco-val (as tests/pipeline/val_test.cpp).
    assert stats["AP"] == pytest.approx(0.4076, abs=0.002)


def test_val_errors():
    with pytest.raises(kestrel.Error, match="/nonexistent/data"):
        kestrel.val("yolov8n", data="/nonexistent/data", backend="cpu")
