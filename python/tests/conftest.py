"""Shared fixtures: the shared data folder ($KESTREL_DATA, else ../shared/data next to the checkout) and
the gpu marker (GPU cases skip on machines without a GPU)."""
import os
import pathlib

import pytest

import kestrel


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped without one)")


def pytest_collection_modifyitems(config, items):
    if kestrel.gpu_available():
        return
    skip = pytest.mark.skip(reason="no usable CUDA GPU in this process")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _data_dir():
    env = os.environ.get("KESTREL_DATA")
    if env:
        return pathlib.Path(env)
    source = pathlib.Path(os.environ.get("KESTREL_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
    return source / ".." / "shared" / "data"


@pytest.fixture
def data():
    """Returns a function: data("models/yolov8n.onnx") -> its path, or skips the test when it is absent."""
    def path(rel):
        p = _data_dir() / rel
        if not p.exists():
            pytest.skip(f"test data not found: {p} (set KESTREL_DATA to the shared data folder)")
        return p
    return path
