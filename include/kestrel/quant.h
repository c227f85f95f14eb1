#pragma once
// INT8 post-training quantization, CPU side: calibration, the calibration cache, the Q/DQ rewrite,
// mixed-precision policy (rules, default policy, automatic search) and a CPU simulation of the INT8
// path that measures accuracy without a GPU.
//
// The flow (what `kestrel quantize` and the engine builder run):
//   Graph g = load_model(...);  passes::optimize(g);              // FP32, fused (kestrel.Conv, ...)
//   Calibration cal = calibrate(g, calib_options);                // activation scales (or the cache)
//   QuantOptions q;  q.activation_scales = cal.scales;  ...
//   QuantReport r = quantize_graph(g, q);                          // g is now the Q/DQ graph
//   auto engine = make_simulated_engine(g);                        // what the GPU INT8 engine computes
//
// ---------------------------------------------------------------------------------------------------
// The Q/DQ graph (the contract with the GPU engine)
//
// quantize_graph() leaves the fused graph in explicit-quantization form, the portable form TensorRT
// and ONNX Runtime also read. For every kestrel.Conv decided INT8:
//   x  --QuantizeLinear(s_x, zp int8 0)-->  x_q (int8)  --DequantizeLinear(s_x, 0)-->  conv input X
//   W_q (int8 constant, [M, C/g, kh, kw]) --DequantizeLinear(s_w [M], zp int8 0 [M], axis 0)--> input W
// The bias (B) stays float. The residual (R) goes through Q/DQ too when it has a scale (it nearly always
// is another INT8 conv's input), so the engine can keep it as int8 codes. One Q/DQ pair per quantized
// tensor, shared by every INT8 conv that reads it. Activations are per-tensor, weights per output
// channel; all symmetric (zero point 0). Activation codes use the full int8 range [-128, 127]; weights
// [-127, 127]. Tensors linked by pure data movement (Concat, Split, Slice, nearest Resize, MaxPool,
// SPPF) share one scale, their group's largest calibrated one: quantizing then commutes with those ops,
// and the engine moves codes through them instead of quantizing each tensor again.
//
// Every node except Q/DQ carries
//   kestrel_precision         "int8" | "fp16" | "fp32"   (int8 only on kestrel.Conv)
//   kestrel_precision_reason  why, e.g. "default policy: detection head output conv",
//                             "--layer-precision /model.22/*", "auto: sensitivity 3.1e-3"
// and INT8 convs also carry kestrel_output_precision "fp16" | "fp32": the dtype they write.
//
// The INT8 arithmetic, exactly (simulate() implements it; a GPU kernel must match it bit for bit up
// to the activation function's last ulp):
//   q_x[i]  = clamp(rint(x[i] / s_x), -128, 127)      x / s_x an IEEE float division, rint = round half
//                                                     to even; x is the *stored* value (fp16 tensors are
//                                                     quantized from their fp16 value)
//   acc[m]  = sum_k q_x * q_w                         exact int32 (no saturation can occur for K < 2^17)
//   y[m]    = fmaf((float)acc[m], s_x * s_w[m], B[m]) (float)acc rounds to nearest even (exact below
//                                                     2^24); the product s_x * s_w[m] is rounded to float
//                                                     first; then one fused multiply-add (one rounding);
//                                                     no bias: + 0
//   y       = act(y)                                  FP32, same expressions as the CPU kestrel.Conv
//   y       = y + R                                   FP32 (residual after the activation); a quantized
//                                                     residual adds its codes: y = fmaf((float)q_r, s_r, y)
//   stored  = fp16(y) or y                            per kestrel_output_precision (round to nearest even)
// FP16 layers (convs, the detect decode, and every non-conv layer under the default float precision)
// are simulated as FP16 storage with FP32 arithmetic: inputs, weights and bias are rounded to fp16,
// the FP32 kernel runs, the output is rounded to fp16. FP32 layers run unchanged.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "kestrel/eval.h"
#include "kestrel/graph.h"
#include "kestrel/inference.h"

namespace kestrel::quant {

// ---------------------------------------------------------------------------------------------------
// Calibrators

enum class CalibAlgo : uint8_t { Entropy, MinMax, Percentile, Mse };
const char* calib_algo_name(CalibAlgo a);             // "entropy", "minmax", "percentile"
CalibAlgo parse_calib_algo(const std::string& name);  // throws UsageError listing the valid names

// Histogram of |x| as TensorRT's entropy calibrator keeps it: kBins equal bins over [0, range()].
// The range starts at the first batch's max|x| and grows when a later batch exceeds it by an integer
// power of two, merging adjacent bins (exact: the old edges are a subset of the new ones), so the
// histogram never has to see the data twice.
class Histogram {
 public:
  static constexpr int kBins = 2048;
  void add(const float* x, int64_t n);
  // Adds pre-binned counts over [0, range] (tests, merging); range must equal range() when non-empty.
  void add_counts(const std::vector<uint64_t>& counts, double range, float max_abs);
  double range() const { return range_; }
  double bin_width() const { return range_ / kBins; }
  float max_abs() const { return max_abs_; }  // exact max |x| seen
  uint64_t count() const { return count_; }
  const std::vector<uint64_t>& bins() const { return bins_; }

 private:
  void grow_to(double needed);
  std::vector<uint64_t> bins_ = std::vector<uint64_t>(kBins, 0);
  double range_ = 0;
  float max_abs_ = 0;
  uint64_t count_ = 0;
};

// Threshold (amax) of each algorithm; the int8 scale is amax / 127.
//   minmax      max|x| (exact, not binned)
//   percentile  the given percentile of |x|, interpolated linearly inside the bin that holds it
//   entropy     TensorRT's KL-divergence search (the published algorithm, as NVIDIA's
//               pytorch-quantization implements it): for every candidate i = 128..kBins, P = bins[0, i)
//               with the outliers bins[i, kBins) folded into P[i-1]; Q = P quantized to 128 levels
//               (each level's mass spread evenly over its non-empty bins); amax = i * bin_width of the
//               smallest KL(P || Q), the last one on ties. Bin 0 takes bin 1's count first, so the
//               spike of exact zeros (ReLU, padding) does not decide the threshold.
//   mse         the amax of least squared quantization error over the histogram: every bin's values
//               taken at its centre c, error (c - s * min(round(c / s), 127))^2 with s = amax / 127
//               (rounding inside the range, clipping above it), candidates amax = i * bin_width for
//               i = 16..kBins (the smallest on ties), as pytorch-quantization's "mse" method.
double amax_minmax(const Histogram& h);
double amax_percentile(const Histogram& h, double percentile);
double amax_entropy(const Histogram& h);
double amax_mse(const Histogram& h);
// The candidate bin count i the entropy search picks (amax = i * bin_width); exposed for tests.
int entropy_threshold_bins(const std::vector<uint64_t>& bins, int quant_levels = 128, int start_bin = 128);
// amax / 127, or 1 when the tensor is all zeros (any scale represents it exactly).
float scale_from_amax(double amax);
float compute_scale(const Histogram& h, CalibAlgo algo, double percentile = 99.99);

// Symmetric per-output-channel int8 weights: s[m] = max|W[m]| / 127, q = clamp(rint(w / s), -127, 127).
struct QuantizedWeights {
  HostTensor q;               // int8, W's shape
  std::vector<float> scales;  // one per output channel (axis 0)
};
QuantizedWeights quantize_weights(const HostTensor& w);

// ---------------------------------------------------------------------------------------------------
// Calibration

struct CalibOptions {
  std::string images;         // folder of .jpg/.jpeg/.png (or a dataset folder with images/); empty:
                              // cache_path alone (it must exist and be this model's)
  int max_images = 128;       // uses min(max_images, available) ...
  bool images_explicit = false;  // ... unless given explicitly: then fewer available is an error
  // Percentile 99.99 by default: on YOLOv8n / YOLO11n / YOLOv5n it loses the least mAP of the three,
  // while TensorRT's default, entropy, clips the SiLU activations to 12-40% of their range and loses
  // several points (bench/RESULTS.md, "INT8 (CPU simulation)").
  CalibAlgo algo = CalibAlgo::Percentile;
  double percentile = 99.99;  // for CalibAlgo::Percentile
  // algo / percentile were chosen by the user: a cache read without images must have been made with
  // them (otherwise a cache alone supplies its own algorithm).
  bool algo_explicit = false;
  std::string cache_path;     // "": no cache; reused when every key matches, else written. An empty
                              // file (an interrupted write) counts as no cache when images are given.
  // What identifies the model in the cache key; empty: graph_hash() of the optimized graph. That hash
  // covers folded constants, whose last bits may depend on the CPU's math library paths, so tools that
  // know the source (file bytes, zoo name and binding) pass an id of it: a cache made on one machine
  // then serves another.
  std::string model_id;
  bool progress = true;       // progress bar on stderr
};

// What a calibration cache is valid for. Every field must match for a cache to be reused.
struct CacheKey {
  std::string model_hash;    // graph_hash() of the optimized FP32 graph
  int64_t imgsz = 0;         // model input size
  std::string letterbox;     // the preprocessing, e.g. "ultralytics-center-114"
  std::string algorithm;     // "entropy", "minmax", "percentile:99.99"
  int64_t image_count = 0;
  std::string image_set_hash;  // of the sorted (file name, size) list of the images used
};

struct Calibration {
  CacheKey key;
  std::map<std::string, float> scales;  // activation tensor name -> scale
  std::vector<std::string> images;      // the images used (empty when read from the cache)
  bool from_cache = false;
  double seconds = 0;
};

// The letterbox every Kestrel pipeline applies (yolo::letterbox), named in cache keys.
extern const char* const kLetterboxName;

// FNV-1a 64 (16 hex digits) of the graph: node ops, names, wiring, attributes and every constant's
// bytes. Identifies "the same model" for the cache whether it came from ONNX or the zoo.
std::string graph_hash(const Graph& g);

// The calibration images: sorted, the first min(N, available). Errors (one line each): missing or
// unreadable folder, no images, fewer images than explicitly asked.
std::vector<std::string> calibration_images(const CalibOptions& options);
std::string image_set_hash(const std::vector<std::string>& images);  // sorted file names + sizes

// Letterboxed input tensors [B, 3, S, S] for the graph's input, B images each (the last padded).
std::vector<HostTensor> load_inputs(const Graph& g, const std::vector<std::string>& images);

// Tensors whose scales INT8 needs: the activation input (X) of every kestrel.Conv, graph order.
std::vector<std::string> quantizable_tensors(const Graph& optimized);

// Data movement in the Q/DQ contract: Concat, Split, Slice, nearest Resize, MaxPool and kestrel.SPPF
// only move or select values, so their inputs and outputs share one scale (quantize_graph ties them)
// and the engine may run them on int8 codes. moved_values: the non-constant values `n` moves (its data
// inputs, then its outputs), empty for any other node. data_movement_groups: every value some such
// node moves -> its group's representative (a group: values linked through such nodes).
std::vector<std::string> moved_values(const Graph& g, const Node& n);
std::map<std::string, std::string> data_movement_groups(const Graph& g);

// Histograms of the given tensors over the images, on the CPU backend (CpuExecutor::run with keep).
std::map<std::string, Histogram> collect_histograms(const Graph& optimized, const std::vector<std::string>& tensors,
                                                    const std::vector<std::string>& images, bool progress);

// Calibrates `optimized` (FP32, after passes::optimize), or reads the cache (see CalibOptions).
Calibration calibrate(const Graph& optimized, const CalibOptions& options);

// The cache file: "# kestrel calibration cache v1", a key line, then "tensor: scale" lines (scales
// printed with 9 significant digits, which round-trips a float exactly).
void write_cache(const std::string& path, const CacheKey& key, const std::map<std::string, float>& scales);
struct CacheFile {
  CacheKey key;
  std::map<std::string, float> scales;
};
CacheFile read_cache(const std::string& path);
// The same from the file's text; `path` only names it in messages (the fuzzer's entry point).
CacheFile parse_cache(const std::string& text, const std::string& path);
// Throws naming the first key that differs: "... was made for another model (model hash X, expected Y)".
void check_cache_key(const std::string& path, const CacheKey& found, const CacheKey& expected);

// ---------------------------------------------------------------------------------------------------
// Mixed precision and the Q/DQ rewrite

enum class LayerPrecision : uint8_t { Int8, FP16, FP32 };
const char* precision_name(LayerPrecision p);            // "int8", "fp16", "fp32"
LayerPrecision parse_precision(const std::string& name);  // throws UsageError

// One --layer-precision rule: a glob (*, ?, [...]) on node names. Later rules win over earlier ones;
// all rules win over the default policy and the automatic search.
struct LayerRule {
  std::string pattern;
  LayerPrecision precision = LayerPrecision::FP16;
};
// "PATTERN:prec,PATTERN:prec" (the precision after the last ':'). Throws UsageError on a bad entry.
std::vector<LayerRule> parse_layer_rules(const std::string& spec);

// The automatic search (--int8-auto): measure each INT8 conv's sensitivity -- the output error of the
// graph with only that conv in INT8, everything else FP32 -- then promote the most sensitive convs to
// FP16, bisecting on how many, until the whole mixed graph meets `target` on `measure`.
// Output error = relative L2 of the final output vs FP32, averaged over the images; for a detection
// head the boxes and the scores are measured separately and averaged, so pixel-scale box coordinates
// do not drown the class scores. It ranks the convs in both modes (it is continuous in one conv's
// error, where detections on a few images move in steps).
enum class AutoMeasure : uint8_t {
  // Detection agreement with the FP32 graph on `inputs`: at least `target`. What a user of the
  // detections sees; needs a YOLO detection head. On calibration (training) images FP32's boxes from
  // conf 0.01, not 0.25, are the truth: there the model is confident, and only its low-score boxes
  // show the noise that moves boxes across 0.25 on unseen images (src/quant/internal.h).
  Agreement,
  // Output error (output_error): at most `target`. For graphs that are not detectors.
  OutputError,
};

struct AutoPrecision {
  bool enabled = false;
  AutoMeasure measure = AutoMeasure::Agreement;
  // Agreement 0.98: the target for --int8-auto (FP16 engines reach ~0.998). For OutputError,
  // 0.05 kept yolov8n / yolo11n / yolov5n within 0.5 mAP point of FP32 (bench/RESULTS.md).
  double target = 0.98;
  std::vector<HostTensor> inputs;    // a subset of the calibration set (load_inputs)
  bool progress = true;
};

// Empirical bias correction (correct_biases) after the rewrite: each INT8 conv's bias absorbs the mean
// shift its quantization gives its output on the calibration images. Off by default: on yolov8n it
// moved agreement with FP32 on unseen images by +0.006 (default policy), inside the noise
// (bench/RESULTS.md, "INT8 on unseen images: what was tried").
struct BiasCorrection {
  bool enabled = false;
  std::vector<HostTensor> inputs;  // calibration images (load_inputs)
  int passes = 1;
  bool progress = true;
};

struct QuantOptions {
  std::map<std::string, float> activation_scales;  // from calibrate(); every INT8 conv input needs one
  std::vector<LayerRule> rules;                    // --layer-precision
  // Default policy: the detection head's output convs (those feeding kestrel.DetectV8/V5) and the
  // decode stay in FP16; every other kestrel.Conv is INT8.
  bool default_policy = true;
  // Default policy, too: the early high-resolution backbone convs -- graph order, output stride at most
  // this, up to the first coarser conv, reading a tensor of stride 4 or more (so not the stem nor the
  // conv after it) -- stay in FP16 (0: none). Their quantization
  // noise compounds: FP16 there recovers most of INT8's loss of agreement with FP32 on unseen images,
  // where no single layer does (bench/RESULTS.md, "Where INT8 loses agreement").
  int64_t high_res_fp16_stride = 8;
  // Precision of layers that have no INT8 implementation (all but kestrel.Conv), and the dtype INT8
  // convs write. FP16, as an INT8 engine built with FP16 fallback runs them.
  LayerPrecision float_precision = LayerPrecision::FP16;
  AutoPrecision automatic;
  BiasCorrection bias_correction;
};

struct LayerDecision {
  std::string node, op;
  LayerPrecision precision = LayerPrecision::FP32;
  std::string reason;
  double sensitivity = -1;  // auto mode: output error with only this conv in INT8 (-1: not measured)
  float input_scale = 0;    // INT8 convs: s_x
};

struct QuantReport {
  std::vector<LayerDecision> layers;  // every kestrel.Conv and Detect node, graph order
  int int8 = 0, fp16 = 0, fp32 = 0;   // convs per precision
  double auto_error = -1;             // auto mode (OutputError): output error of the final mixed graph
  double auto_error_all_int8 = -1;    // auto mode (OutputError): the same before any promotion
  double auto_agreement = -1;          // auto mode (Agreement): agreement of the final mixed graph
  double auto_agreement_all_int8 = -1; // auto mode (Agreement): the same before any promotion
  int bias_corrected = 0;             // INT8 convs whose bias absorbed a correction
  int bias_images = 0;                // ... measured on this many calibration images
  std::string summary() const;        // one line, plus the non-INT8 convs and why
};

// Decides each node's precision and rewrites `g` (optimized FP32 graph) into the Q/DQ graph above.
QuantReport quantize_graph(Graph& g, const QuantOptions& options);

// The two forms of a model quantization works with, from an imported (or zoo) graph: `plain` is
// passes::optimize with every fusion off (BatchNorm folded, standard ONNX ops only: what is exported),
// `fused` is the full optimizer's output (what engines run, so what is calibrated and decided on). Their
// convs carry the same names, and their activations the same tensor names.
struct ModelForms {
  Graph plain, fused;
};
ModelForms plain_and_fused(Graph imported);

// The same decisions applied to the plain (unfused) graph -- `plain` after passes::optimize with
// every fusion off, so its Conv nodes carry the fused graph's conv names and already-folded weights:
// Q/DQ before the Conv nodes that are INT8 in `quantized` (the output of quantize_graph), with the
// very same int8 weights and scales. Standard ONNX ops only, so it can be exported.
void apply_to_plain_graph(Graph& plain, const Graph& quantized);

// Empirical bias correction of a Q/DQ graph (the output of rewrite in quantize_graph); `fp32` is the
// fused FP32 graph it was quantized from (for the float weights). For every INT8 conv and output
// channel m, adds the mean over `inputs` of what the conv's own quantization shifts its pre-activation
// output -- conv(W, x) - s_x s_w[m] conv(q_w, q_x), x the float value its QuantizeLinear reads in the
// simulation -- to the conv's bias (a new constant per conv; a conv without bias gets one). Exact sums
// of the weights times the window sums of x and of q_x. `passes` times, each pass simulating with the
// previous pass's biases. Returns conv name -> the correction added per output channel (the last pass's).
std::map<std::string, std::vector<float>> correct_biases(Graph& qdq, const Graph& fp32,
                                                         const std::vector<HostTensor>& inputs, int passes = 2,
                                                         bool progress = false);

// Checks that a Q/DQ graph is one Kestrel runs: Q only into DQ, int8 with zero point 0, activation
// DQs only into kestrel.Conv input X, weight DQs (constant int8, axis 0) only into kestrel.Conv input W,
// matching Q/DQ scales. Throws a one-line error naming the offending node.
void check_qdq_placement(const Graph& g);

// Runs the named INT8 convs of a Q/DQ graph in FP16 instead (an INT8 build under "prefer" precision
// constraints does so where the tuner measured the FP16 form faster): each reads the float tensors its
// activation Q/DQ pairs quantize (input and residual) and its weights dequantized, (q - zero point) *
// scale, the weights the Q/DQ graph defines; kestrel_precision becomes fp16 with the given reason. Q/DQ
// nodes nobody reads any more are removed. Throws for a name that is not an INT8 conv.
void run_in_fp16(Graph& qdq, const std::map<std::string, std::string>& conv_reasons);

// Reads a Q/DQ ONNX (ours or another tool's) into the fused graph, keeping its scales: the importer
// folds weight DequantizeLinear into float constants, so they are restored from the file after
// passes::optimize. INT8 convs get kestrel_precision int8; the other layers `float_precision`. The
// precisions `kestrel quantize` recorded (metadata kestrel_layer_precision) are applied when present.
// batch / imgsz re-bind the model's input as the importer does (0: the model's own).
Graph load_qdq_onnx(const std::string& path, LayerPrecision float_precision = LayerPrecision::FP16, int64_t batch = 0,
                    int64_t imgsz = 0);
Graph load_qdq_onnx_bytes(const std::string& bytes, LayerPrecision float_precision = LayerPrecision::FP16,
                          const std::string& source = "<memory>", int64_t batch = 0, int64_t imgsz = 0);
// True when the graph has QuantizeLinear / DequantizeLinear nodes (a Q/DQ model, imported or rewritten).
bool has_qdq(const Graph& g);

// The ONNX metadata key under which `kestrel quantize` records every layer's precision and reason.
extern const char* const kPrecisionMetadataKey;
std::string encode_precisions(const Graph& quantized);  // node=prec|reason lines

// ---------------------------------------------------------------------------------------------------
// CPU simulation of the INT8 engine

// Runs a Q/DQ graph with the GPU's INT8 arithmetic (see the top of this file). Prepares the int8
// weights once; run() is const and may be called from one thread at a time.
class Simulator {
 public:
  explicit Simulator(const Graph& qdq);
  ~Simulator();
  Simulator(Simulator&&) noexcept;
  std::vector<HostTensor> run(const std::vector<HostTensor>& inputs) const;
  // `reference`: every value of an FP32 run of the graph this one was quantized from (CpuExecutor::run
  // keeping all node outputs). FP32 layers whose inputs all equal that run's take their outputs from
  // it instead of recomputing: the automatic search runs many graphs that differ from FP32 in one conv.
  std::vector<HostTensor> run(const std::vector<HostTensor>& inputs,
                              const std::unordered_map<std::string, HostTensor>& reference) const;
  // Also copies the named computed values (e.g. a QuantizeLinear's int8 codes) into *kept, in order.
  std::vector<HostTensor> run(const std::vector<HostTensor>& inputs, const std::vector<std::string>& keep,
                              std::vector<HostTensor>* kept) const;
  const Graph& graph() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

std::vector<HostTensor> simulate(const Graph& qdq, const std::vector<HostTensor>& inputs);

// The simulation behind InferenceEngine (for pipeline::validate / predict): "cpu int8 simulation".
std::unique_ptr<InferenceEngine> make_simulated_engine(Graph qdq);

// The int8 convolution alone (exposed for tests and for the GPU kernels' reference): X int8 NCHW,
// W int8 [M, C/group, kh, kw]; returns the exact int32 accumulators [N, M, OH, OW].
std::vector<int32_t> int8_conv_accumulate(const HostTensor& x_q, const HostTensor& w_q, const Node& conv,
                                          const Shape& y_shape);

// The error measure of the automatic search: relative L2 of y vs ref; for detection outputs
// ([B, 4+nc, A] or [B, A, 5+nc]) the mean of the boxes' and the scores' relative L2.
double output_error(const HostTensor& y, const HostTensor& ref);

// The agreement measure of the automatic search: the detection agreement (include/kestrel/agreement.h)
// of raw detection-head outputs with reference (FP32) outputs of the same inputs -- both decoded with
// the validation post-processing, the reference at conf 0.25 as ground truth, `outputs` at conf 0.001,
// in model-input pixels (the same frame for both, so no letterbox is undone). One image per batch
// entry. -1 when the reference has no box at all. Throws when the outputs are not a YOLO detection head.
double output_agreement(const std::vector<HostTensor>& outputs, const std::vector<HostTensor>& refs);
// The detections output_agreement scores: raw detection-head outputs decoded with the validation
// post-processing at confidence `conf`, in model-input pixels; image ids count batch entries from 1.
std::vector<eval::Detection> output_detections(const std::vector<HostTensor>& outputs, double conf);

}  // namespace kestrel::quant
