#pragma once
// YOLO pre- and post-processing that reproduces Ultralytics to the last digit:
//   letterbox  -> LetterBox(new_shape=(S, S), auto=False, scaleup=True, center=True) + cv2 INTER_LINEAR,
//                 then BGR->RGB, /255, NCHW float32 (what the exported ONNX models expect);
//   postprocess -> ultralytics.utils.ops.non_max_suppression (YOLOv8/YOLO11 heads) or YOLOv5's
//                  utils.general.non_max_suppression (anchor heads with objectness);
//   scale_boxes -> back to original-image pixels with the integer pads actually applied, clipped.
// Plain functions on plain buffers: no dependency on the IR or runtime libraries.
//
// Typical use:
//   auto img = kestrel::image::read_image(path);
//   std::vector<float> input(3 * 640 * 640);
//   auto lb = kestrel::yolo::letterbox(img, 640, input.data());
//   ... run the model: output [1, 84, 8400] ...
//   auto dets = kestrel::yolo::postprocess(out, {1, 84, 8400}, HeadKind::Auto,
//                                          NmsOptions::prediction())[0];
//   kestrel::yolo::scale_boxes(dets, lb);
//   kestrel::yolo::draw_detections(img, dets);
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "kestrel/image.h"

namespace kestrel::yolo {

// ---------------------------------------------------------------------------------------------------
// Letterbox

// Where the source image went inside the square model input.
struct LetterboxInfo {
  double gain = 1.0;    // r = min(S / src_h, S / src_w): model pixels per source pixel
  int pad_left = 0;     // integer padding actually applied (what scale_boxes subtracts)
  int pad_top = 0;
  int pad_right = 0;
  int pad_bottom = 0;
  int new_w = 0;        // size of the resized image inside the canvas: round(src_w * r), round(src_h * r)
  int new_h = 0;
  int src_w = 0;
  int src_h = 0;
  int dst = 0;          // S
};

// Geometry only: Python's round (ties to even) for the resized size, pads round(d -/+ 0.1).
LetterboxInfo letterbox_geometry(int src_w, int src_h, int size);

// Letterboxes `img` into a size x size canvas (fill 114) and writes it as float32 RGB/255 NCHW
// [3, size, size] to `chw_out` (3 * size * size floats; pass `base + i * 3 * S * S` to fill a batch
// in place).
LetterboxInfo letterbox(const image::Image& img, int size, float* chw_out);

// The same letterbox as an 8-bit BGR image (for inspection, or for device-side normalisation).
image::Image letterbox_bgr(const image::Image& img, int size, LetterboxInfo* info = nullptr);

// cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR), bit-exact with OpenCV's x86 build:
// half-pixel centres, 11-bit fixed-point weights, clamped borders, and OpenCV's special case of an
// exact 2x downscale (which it routes to INTER_AREA).
image::Image resize_linear(const image::Image& img, int new_w, int new_h);

// ---------------------------------------------------------------------------------------------------
// Head decoding and NMS

// V8: [B, 4 + nc, A] (YOLOv8 / YOLO11: cx, cy, w, h in input pixels, then nc class scores in [0, 1]).
// V5: [B, A, 5 + nc] (YOLOv5 anchor head: cx, cy, w, h, objectness, nc class scores).
enum class HeadKind { Auto, V8, V5 };
const char* head_kind_name(HeadKind kind);

// From the output shape [B, X, Y]: V8 when X < Y (and X >= 5), V5 when Y < X (and Y >= 6).
// Throws kestrel::Error for anything that is not a detection head.
HeadKind detect_head(const std::vector<int64_t>& shape);

// Corners in model-input pixels after postprocess, in source-image pixels after scale_boxes.
struct Box {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  float score = 0;
  int cls = 0;  // 0-based class index (COCO-80 order for COCO models)
};

struct NmsOptions {
  float conf = 0.25f;       // keep scores strictly greater than this (compared in float32, as torch does)
  double iou = 0.7;         // suppress when IoU > iou (float32 IoU compared in double, as torchvision does)
  int max_det = 300;        // detections kept per image
  bool multi_label = false; // every class above conf becomes a candidate (validation); else best class only
  int max_nms = 30000;      // candidates kept (highest scores) before NMS
  float max_wh = 7680.f;    // class offset that keeps NMS class-aware
  bool agnostic = false;    // class-agnostic NMS
  int num_classes = 0;      // classes in the head; 0 = every channel after the box (and objectness)

  // Validation / mAP: conf 0.001, multi-label, max_det 300; IoU 0.7 (V8) or 0.6 (V5, as YOLOv5's val.py).
  static NmsOptions validation(HeadKind kind);
  // Prediction / annotation: conf 0.25, best class only, IoU 0.7.
  static NmsOptions prediction();
};

// One image's candidates, in torch.where order (anchor-major, then class), boxes already xyxy.
// `pred` points at that image's slice of the output ([4+nc, A] for V8, [A, 5+nc] for V5).
std::vector<Box> decode_candidates(const float* pred, int64_t channels, int64_t anchors, HeadKind kind,
                                   const NmsOptions& opts);

// Keeps the max_nms best candidates, runs class-offset greedy NMS, returns at most max_det boxes in
// descending score order. Ties keep candidate order (a stable sort, as torchvision's CPU nms uses).
std::vector<Box> nms(std::vector<Box> candidates, const NmsOptions& opts);

// decode_candidates + nms for every image of the batch. `kind` may be Auto.
std::vector<std::vector<Box>> postprocess(const float* output, const std::vector<int64_t>& shape,
                                          HeadKind kind, const NmsOptions& opts);

// Model-input pixels -> source-image pixels: subtract (pad_left, pad_top), divide by the gain, clip
// x to [0, src_w] and y to [0, src_h].
void scale_boxes(std::vector<Box>& boxes, const LetterboxInfo& info);

// ---------------------------------------------------------------------------------------------------
// Names and drawing

// The 80 COCO class names in the order COCO-trained Ultralytics models use.
const std::vector<std::string>& coco80_names();

// Ultralytics' 20-colour palette, cycled by class index; returned as B, G, R.
std::array<uint8_t, 3> class_color(int cls);
// WCAG 2 contrast ratio of two colours (1 to 21; 4.5 is the threshold for readable text).
double contrast_ratio(const std::array<uint8_t, 3>& a, const std::array<uint8_t, 3>& b);
// The label text colour on `background`: black or white, whichever contrasts more (always >= 4.5).
std::array<uint8_t, 3> label_text_color(const std::array<uint8_t, 3>& background);

struct DrawOptions {
  int line_width = 0;     // 0: max(round((w + h) / 2 * 0.003), 2), as Ultralytics' Annotator
  int font_px = 0;        // 0: max(round((w + h) / 2 * 0.035), 12), as Ultralytics' PIL Annotator
  bool labels = true;     // "name 0.87" on a filled background
  // TrueType font; empty: $KESTREL_FONT, then DejaVuSans, then the built-in bitmap font (printable
  // ASCII; other characters are drawn as '?'); "builtin" asks for the built-in font.
  std::string font_path;
};

// Draws boxes (and labels) onto a BGR image; classes beyond `names` are labelled "class N".
void draw_detections(image::Image& img, const std::vector<Box>& boxes,
                     const std::vector<std::string>& names = coco80_names(), const DrawOptions& opts = {});

// Where the annotated copy of each source image goes: OUT_DIR/<its file name>, in order. Fails, naming
// them, when two sources share a file name (one picture would replace the other) or when a picture
// would replace a source image (OUT_DIR is the folder being predicted), however the paths are spelled.
std::vector<std::string> annotated_image_paths(const std::string& out_dir, const std::vector<std::string>& sources);

}  // namespace kestrel::yolo
