"""Kestrel: fast, verified YOLO engines, from Python.

    import kestrel
    det = kestrel.Detector("yolov8n.onnx")              # backend="auto": CUDA when a GPU is present
    r = det(["bus.jpg", rgb_hwc_uint8_array])[0]       # paths, encoded bytes or numpy images
    r.boxes.xyxy, r.boxes.conf, r.boxes.cls, r.names, r.speed

    y = kestrel.Engine("yolov8n.engine")(x)            # raw tensors: numpy, or on a CUDA engine CUDA tensors
    y = eng(x_cuda)                                    # torch/cupy in, the same library's tensor out, no copy
    eng(x_cuda, out=y)                                 # into y; stream=: else the caller's current stream
    kestrel.build("yolov8n.onnx", "yolov8n.engine", fp16=True)   # CUDA builds, on the GPU
    stats = kestrel.val("yolov8n.onnx", data="coco-val")  # the 12 COCO metrics

Errors raise kestrel.Error (kestrel.UsageError for wrong arguments) with the CLI's one-line message.
"""
import os

import numpy as np

from ._kestrel import Engine, Error, UsageError, __version__, build, gpu_available, val
from ._kestrel import _Detector

__all__ = ["Boxes", "Detector", "Engine", "Error", "Results", "UsageError", "__version__", "build", "gpu_available", "val"]


class Boxes:
    """The detections of one image: xyxy (N, 4) float32 in the image's pixels, conf (N,) float32, cls (N,) int64."""

    __slots__ = ("xyxy", "conf", "cls")

    def __init__(self, xyxy, conf, cls):
        self.xyxy, self.conf, self.cls = xyxy, conf, cls

    @property
    def data(self):
        """(N, 6) float32: x1, y1, x2, y2, conf, cls (Ultralytics' Boxes.data)."""
        return np.concatenate([self.xyxy, self.conf[:, None], self.cls[:, None].astype(np.float32)], axis=1)

    def __len__(self):
        return len(self.conf)

    def __repr__(self):
        return f"Boxes({len(self)} detections)"


class Results:
    """One image's result, shaped like Ultralytics' Results: boxes, names, speed (ms), orig_shape, path."""

    __slots__ = ("boxes", "names", "speed", "orig_shape", "path")

    def __init__(self, boxes, names, speed, orig_shape, path):
        self.boxes, self.names, self.speed, self.orig_shape, self.path = boxes, names, speed, orig_shape, path

    def __len__(self):
        return len(self.boxes)

    def __repr__(self):
        return f"Results({self.path!r}, {len(self.boxes)} detections, shape {self.orig_shape})"


def _single(source):
    return isinstance(source, (str, bytes, bytearray, os.PathLike)) or (
        isinstance(source, np.ndarray) and source.ndim == 3)


class Detector:
    """A YOLO detector: an ONNX model, a built-in name (yolov8n, yolo11s, ...) or an engine file.

    backend: "auto" (CUDA when a GPU is present), "cpu" or "cuda"; an engine file selects CUDA.
    fp16 / int8: engine precision (CUDA; int8 on the CPU is the exact simulation of the GPU's INT8 engine,
    calibrated with calib=DIR / calib_cache=FILE unless the model is a Q/DQ ONNX).
    Thread-safe: one Detector may be called from several threads.
    """

    def __init__(self, model, backend="auto", fp16=False, int8=False, batch=0, imgsz=0, timing_cache="",
                 calib="", calib_cache="", verbose=False):
        self._det = _Detector(model, backend=backend, fp16=fp16, int8=int8, batch=batch, imgsz=imgsz,
                              timing_cache=timing_cache, calib=calib, calib_cache=calib_cache, verbose=verbose)
        self.names = self._det.names

    @property
    def batch(self):
        return self._det.batch

    @property
    def imgsz(self):
        return self._det.imgsz

    @property
    def description(self):
        return self._det.description

    def __call__(self, source, conf=0.25, iou=0.7, max_det=300, agnostic=False, channels="rgb"):
        """Detects objects in one image or a list of them: paths, encoded JPEG/PNG bytes, or numpy uint8
        HxWx3 arrays (channels="rgb" by default; "bgr" for OpenCV's arrays). Returns a list of Results."""
        items = [source] if _single(source) else list(source)
        raw = self._det.detect(items, conf, iou, max_det, agnostic, channels)
        out = []
        for item, (xyxy, conf_, cls, shape, speed) in zip(items, raw):
            path = os.fspath(item) if isinstance(item, (str, os.PathLike)) else None
            out.append(Results(Boxes(xyxy, conf_, cls), self.names, speed, shape, path))
        return out

    predict = __call__

    def __repr__(self):
        return f"Detector({self.description}, batch {self.batch}, imgsz {self.imgsz})"
