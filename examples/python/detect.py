"""detect.py MODEL IMAGE...: objects in images with kestrel.Detector (an ONNX model, a built-in name such
as yolov8n, or an engine file; CUDA when a GPU is present, else the CPU)."""
import sys

import kestrel


def main(model, images):
    det = kestrel.Detector(model)
    for path, r in zip(images, det(images, conf=0.25)):
        print(f"{path}: {len(r.boxes)} objects ({r.speed['inference']:.1f} ms inference)")
        for (x1, y1, x2, y2), conf, cls in zip(r.boxes.xyxy, r.boxes.conf, r.boxes.cls):
            print(f"  {r.names[int(cls)]:<14} {conf:.2f}  [{x1:.0f} {y1:.0f} {x2:.0f} {y2:.0f}]")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: detect.py MODEL IMAGE...")
    try:
        main(sys.argv[1], sys.argv[2:])
    except kestrel.Error as e:
        sys.exit(f"detect.py: {e}")
