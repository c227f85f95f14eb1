#pragma once
// Ultralytics building blocks (Conv, Bottleneck, C2f, C3k, C3k2, SPPF, C2PSA, Detect) written with the
// network-definition API, in the fused export form: Conv+BN is one Conv with bias, SiLU is Sigmoid*Mul.
// Node order follows PyTorch's forward (the order the ONNX exporter traces), and node / weight names
// follow the exporter's scopes ("/model.2/m.0/cv1/conv/Conv", "model.2.m.0.cv1.conv.weight"), so a zoo
// graph lines up node for node with an Ultralytics export -- which load_weights_from relies on.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kestrel/network.h"
#include "kestrel/zoo.h"

namespace kestrel::zoo::detail {

// A module's place in the model: the exporter's scope ("/model.2/m.0") and the parameter prefix
// ("model.2.m.0").
struct Scope {
  std::string scope, param;
  // A submodule attribute or ModuleList entry: ".../cv1", ".../m.0".
  Scope child(const std::string& name) const { return {scope + "/" + name, param + "." + name}; }
  // Entry i of this nn.Sequential: the exporter repeats the module's own name, ".../cv2.0/cv2.0.1".
  Scope item(int64_t i) const {
    const std::string last = scope.substr(scope.rfind('/') + 1);
    return {scope + "/" + last + "." + std::to_string(i), param + "." + std::to_string(i)};
  }
  // Entry i of an nn.Sequential attribute `name`: scope ".../m/m.0", parameters "...m.0".
  Scope seq(const std::string& name, int64_t i) const { return child(name).item(i); }
};
inline Scope model_layer(int i) { return {"/model." + std::to_string(i), "model." + std::to_string(i)}; }

// Ultralytics' scaling helpers.
int64_t make_divisible(double x, int64_t divisor);
int64_t scaled_channels(int64_t c, const Scale& s);
int64_t scaled_repeats(int64_t n, const Scale& s);

// Deterministic across platforms (no std::normal_distribution, whose algorithm is unspecified).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull) {}
  uint64_t next();
  double uniform();  // [0, 1)
  double normal();

 private:
  uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0;
};

class Blocks {
 public:
  Blocks(NetworkDefinition& net, uint64_t seed) : net_(net), rng_(seed) {}
  NetworkDefinition& net() { return net_; }

  // Conv2d(k, s, padding k//2, groups g, bias) [+ SiLU]: Ultralytics' Conv with BatchNorm folded.
  ITensor* conv(ITensor* x, const Scope& s, int64_t c2, int64_t k = 1, int64_t stride = 1, int64_t g = 1, bool act = true);
  // A plain nn.Conv2d with bias and no activation (Detect's last convs).
  ITensor* conv2d(ITensor* x, const Scope& s, int64_t c2, int64_t k);
  ITensor* bottleneck(ITensor* x, const Scope& s, int64_t c2, bool shortcut, int64_t k1, int64_t k2, double e);
  ITensor* c2f(ITensor* x, const Scope& s, int64_t c2, int64_t n, bool shortcut, double e = 0.5);
  ITensor* c3k(ITensor* x, const Scope& s, int64_t c2, int64_t n, bool shortcut, double e = 0.5, int64_t k = 3);
  ITensor* c3k2(ITensor* x, const Scope& s, int64_t c2, int64_t n, bool use_c3k, double e = 0.5, bool shortcut = true);
  ITensor* sppf(ITensor* x, const Scope& s, int64_t c2, int64_t k = 5);
  ITensor* c2psa(ITensor* x, const Scope& s, int64_t c2, int64_t n, double e = 0.5);
  ITensor* upsample(ITensor* x, const Scope& s);
  ITensor* concat(const std::vector<ITensor*>& xs, const Scope& s, int64_t axis = 1);
  // Decoded Detect head: [B, 4 + nc, A] (xywh in pixels, class probabilities). legacy: YOLOv8's class
  // branch (two 3x3 convs); otherwise YOLO11's (depthwise 3x3 + pointwise, twice).
  ITensor* detect(const std::vector<ITensor*>& xs, const Scope& s, int64_t nc, bool legacy, int64_t imgsz);

  static int64_t channels(ITensor* x) { return x->getDimensions().at(1); }

 private:
  ITensor* psa_block(ITensor* x, const Scope& s, int64_t c, int64_t num_heads);
  // "<base>", then "<base>_1", "<base>_2", ...: how the exporter numbers repeated ops in one scope.
  std::string unique(const std::string& base);
  HostTensor conv_weight(const Shape& shape);  // N(0,1) / sqrt(fan_in)
  HostTensor bias(int64_t n);                  // N(0,1) * 0.1
  ITensor* scalar(float v, const std::string& name);

  NetworkDefinition& net_;
  Rng rng_;
  std::map<std::string, int> used_;
};

// Metadata an Ultralytics export carries (names, stride, imgsz, ...).
void set_detect_metadata(NetworkDefinition& net, const std::string& model, const BuildOptions& o);
void check_options(const std::string& model, const BuildOptions& o);

Graph build_yolov8(const std::string& name, const Scale& scale, const BuildOptions& o);
Graph build_yolo11(const std::string& name, const Scale& scale, const BuildOptions& o);

}  // namespace kestrel::zoo::detail
