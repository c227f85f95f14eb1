"""kestrel.Engine (raw tensors) and kestrel.val (COCO metrics) on the CPU backend."""
import json
import os
import subprocess

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


def coco_subset(root, dest, count):
    """The first `count` images of a COCO dataset (and their annotations) as a dataset of its own."""
    full = json.loads((root / "instances.json").read_text())
    images = full["images"][:count]
    ids = {im["id"] for im in images}
    (dest / "images").mkdir(parents=True)
    for im in images:
        (dest / "images" / im["file_name"]).symlink_to(root / "images" / im["file_name"])
    subset = dict(full, images=images, annotations=[a for a in full["annotations"] if a["image_id"] in ids])
    (dest / "instances.json").write_text(json.dumps(subset))
    return dest


def test_val_returns_the_cli_metrics(data, tmp_path):
    model, dataset = data("models/yolov8n.onnx"), coco_subset(data("coco-val"), tmp_path / "coco12", 12)
    stats = kestrel.val(model, data=dataset, backend="cpu")
    assert list(stats) == ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
    assert 0.2 < stats["AP"] < 0.8
    cli = os.environ.get("KESTREL_BIN")
    if not cli:
        pytest.skip("KESTREL_BIN (the kestrel CLI) is not set: only the Python side was checked")
    out = tmp_path / "val.json"
    subprocess.run([cli, "val", str(model), "--data", str(dataset), "--backend", "cpu", "--json", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    assert stats == json.loads(out.read_text())["stats"]  # the same pipeline: the same numbers, exactly


def test_val_errors():
    with pytest.raises(kestrel.Error, match="/nonexistent/data"):
        kestrel.val("yolov8n", data="/nonexistent/data", backend="cpu")


def test_batch_range_and_build_profile_errors(tmp_path):
    eng = kestrel.Engine("yolov8n", backend="cpu", imgsz=96, batch=2)
    assert eng.batch_range == (2, 2)  # one batch: the engine's own
    out = tmp_path / "x.engine"
    # The profile is checked before anything is built (no GPU needed to see these).
    with pytest.raises(kestrel.UsageError, match="needs its largest batch"):
        kestrel.build("yolov8n", out, min_batch=2)
    with pytest.raises(kestrel.UsageError, match="give one"):
        kestrel.build("yolov8n", out, batch=2, max_batch=4)
    with pytest.raises(kestrel.UsageError, match="min <= opt <= max"):
        kestrel.build("yolov8n", out, min_batch=8, max_batch=4)
    assert not out.exists()
