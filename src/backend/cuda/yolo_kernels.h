#pragma once
// YOLO pre- and post-processing on the GPU, next to the engine (host-callable launchers; the kernels
// live in letterbox.cu and detect_nms.cu). Both reproduce the CPU reference in src/yolo exactly:
//   letterbox: the same resize plan (yolo/resize_plan.h), pad 114, BGR->RGB, v / 255 in float32;
//   detections: decode, confidence filter, class-offset greedy NMS, top max_det and scale_boxes with
//   torchvision's float32 IoU and Ultralytics' tie order. Images the GPU path cannot reproduce
//   exactly (see DetectFlags) are flagged, and the caller runs the CPU reference on them.
#include <cuda_runtime.h>

#include <cstdint>

#include "yolo/resize_plan.h"

namespace kestrel::cuda {

// One image of a letterbox batch. Pixels are interleaved 8-bit, 3 channels, rows packed.
struct LetterboxJob {
  int64_t pixels;       // byte offset of the image in the pixel buffer
  int32_t src_w, src_h;
  int32_t new_w, new_h;
  int32_t pad_left, pad_top;
  int32_t mode;         // yolo::detail::ResizeMode
  int32_t xtaps, ytaps; // Linear: index of the first x / y tap in the tap buffer
  int32_t xmax;
  int32_t rgb;          // 1: the source is RGB (else BGR)
};

// Writes [batch, 3, S, S] float32 (RGB, /255) into `out`; images n..batch-1 are filled with the pad.
void launch_letterbox(const uint8_t* pixels, const LetterboxJob* jobs, const yolo::detail::ResizeTap* taps, int n,
                      int batch, int size, float* out, cudaStream_t stream);

// Why an image's detections must come from the CPU reference instead.
enum DetectFlags : uint32_t {
  kDetectClassOverflow = 1,  // one class had more candidates than a block holds
  kDetectTooMany = 2,        // more candidates than max_nms: the global cut needs the full sort
  kDetectNotSeparable = 4,   // a NaN score, a non-finite box, or boxes spread over half the class offset
};

struct DetectParams {
  int batch = 0, anchors = 0, channels = 0, nc = 0;
  int v5 = 0;              // 0: [B, 4+nc, A] (YOLOv8/11), 1: [B, A, 5+nc] (YOLOv5)
  int multi_label = 0;
  float conf = 0.25f;
  double iou = 0.7;
  int max_det = 300, max_nms = 30000;
  float max_wh = 7680.f;
};

// Where boxes go back to image pixels (scale_boxes), one per image.
struct UnletterboxInfo {
  float gain, pad_left, pad_top, src_w, src_h;
};

// Device work space of the detection kernels for up to `batch` images (sized by detect_workspace_bytes).
size_t detect_workspace_bytes(const DetectParams& p);

// Per image i: count[i] detections in out[i * max_det * 6 ...] as (x1, y1, x2, y2, score, class),
// best first, boxes in image pixels; flags[i] (DetectFlags) and candidates[i] (before NMS).
// `output` is the engine's float32 head output on the device.
void launch_detect(const float* output, const DetectParams& p, const UnletterboxInfo* info, void* workspace,
                   float* out, int32_t* count, uint32_t* flags, int32_t* candidates, cudaStream_t stream);

// Copies the head output of every image whose flags are set (per_image floats each) from `src` to
// `dst`, so the CPU can redo those images after the next batch has overwritten `src`. Images without
// flags cost one flag read.
void launch_copy_flagged(const float* src, float* dst, const uint32_t* flags, int n, size_t per_image,
                         cudaStream_t stream);

}  // namespace kestrel::cuda
