#pragma once
// Shared between the files of src/quant (not part of the public API).
#include <map>
#include <string>
#include <vector>

#include "kestrel/quant.h"

namespace kestrel::quant::detail {

// One node's precision, and why.
struct Decision {
  LayerPrecision precision = LayerPrecision::FP32;
  std::string reason;
  bool by_rule = false;     // set by --layer-precision: the automatic search leaves it alone
  double sensitivity = -1;  // auto mode
};
using Decisions = std::map<std::string, Decision>;  // node name -> decision, every node but Q/DQ

// Default policy (or plain "INT8 where possible"), then the --layer-precision rules.
Decisions initial_decisions(const Graph& g, const QuantOptions& o);
// The early high-resolution convs the default policy keeps in FP16: in graph order, every kestrel.Conv
// whose output stride (image height / output height) is at most max_stride, up to the first conv at a
// coarser stride, that reads a tensor of stride 4 or more (not the stem, nor the stride-2 conv after
// it). Name and output stride of each; none
// when no conv is coarser than max_stride (a shallow network has no early part to set apart).
std::vector<std::pair<std::string, int64_t>> high_resolution_convs(const Graph& g, int64_t max_stride);
// The convs whose outputs reach a kestrel.DetectV8/V5 through data movement only (Concat, Reshape, ...).
std::vector<std::string> head_output_convs(const Graph& g);

// The activation scales with every group of tensors linked by pure data movement (Concat, Split,
// Slice, nearest Resize, MaxPool, SPPF) given the group's largest scale: the groups the engine keeps
// as int8 end to end. Tensors outside any group keep their scale.
std::map<std::string, float> unify_scale_groups(const Graph& g, const std::map<std::string, float>& scales);

// Inserts Q/DQ for the INT8 convs of `d` and writes the kestrel_precision* attributes.
void rewrite_qdq(Graph& g, const Decisions& d, const std::map<std::string, float>& scales,
                 LayerPrecision float_precision);

// The automatic search: updates `d` (promotions, sensitivities) and the report's auto figures.
void search_precisions(const Graph& fp32, Decisions& d, const QuantOptions& o, QuantReport& report);

// output_agreement with FP32's detections at conf >= reference_conf as the ground truth.
double output_agreement_at(const std::vector<HostTensor>& outputs, const std::vector<HostTensor>& refs,
                           double reference_conf);
// The truth threshold --int8-auto measures agreement at on calibration images: 0.01, not the 0.25 of
// agreement on unseen images. On training images the model is confident: its boxes sit far above 0.25,
// INT8's score noise moves none across it, and all-INT8 scored 1.000 on 8 coco128 images where it
// scores 0.93 on unseen ones; from 0.1 still 0.996 (yolov8n, bench/RESULTS.md). From 0.01 the truth
// takes in the low-score boxes, whose scores INT8's noise does move, as it moves the boxes near 0.25 on
// unseen images: 0.945 there, and aiming at 0.98 gave 0.976 on unseen images.
inline constexpr double kAutoReferenceConf = 0.01;

// Attribute names of the precision contract.
inline constexpr const char* kPrecisionAttr = "kestrel_precision";
inline constexpr const char* kReasonAttr = "kestrel_precision_reason";
inline constexpr const char* kOutputPrecisionAttr = "kestrel_output_precision";
// Whether attribute `k` belongs to that contract (the precisions the quantizer writes and why).
inline bool is_precision_attr(const std::string& k) { return k == kPrecisionAttr || k == kReasonAttr || k == kOutputPrecisionAttr; }

bool is_qdq(const Node& n);
// Fails, naming `where` (e.g. "QuantizeLinear node 'q3'"), unless every scale is a positive normal
// float: 0 divides by zero (every code saturates: mAP 0 with no error), inf and NaN poison every
// output, and a denormal has lost its precision and is flushed to zero on the GPU.
void check_scales(const std::string& where, const std::vector<float>& scales);
// A name not used yet by any value (or node, for node names) of g, derived from base.
std::string unique_value_name(const Graph& g, const std::string& base);

// Round to the nearest fp16 value (ties to even), kept in float.
float round_fp16(float v);
void round_fp16_inplace(HostTensor& t);

}  // namespace kestrel::quant::detail
