// Ultralytics blocks on top of the network-definition API. Each function mirrors the forward() of the
// PyTorch module of the same name (ultralytics/nn/modules, and shared/bench/yolo_arch.py), op for op.
#include "network/zoo_blocks.h"
#include "util/coco_classes.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace kestrel::zoo::detail {

int64_t make_divisible(double x, int64_t divisor) {
  return static_cast<int64_t>(std::ceil(x / static_cast<double>(divisor))) * divisor;
}

int64_t scaled_channels(int64_t c, const Scale& s) {
  return make_divisible(static_cast<double>(std::min(c, s.max_channels)) * s.width, 8);
}

int64_t scaled_repeats(int64_t n, const Scale& s) {
  // Python's round() rounds half to even; nearbyint does the same in the default rounding mode.
  return n > 1 ? std::max<int64_t>(static_cast<int64_t>(std::nearbyint(static_cast<double>(n) * s.depth)), 1) : n;
}

uint64_t Rng::next() {  // splitmix64
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

double Rng::normal() {  // Box-Muller, both values used
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  const double u1 = 1.0 - uniform();  // (0, 1]: log is finite
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double t = 2.0 * M_PI * u2;
  spare_ = r * std::sin(t);
  has_spare_ = true;
  return r * std::cos(t);
}

std::string Blocks::unique(const std::string& base) {
  const int n = used_[base]++;
  return n == 0 ? base : base + "_" + std::to_string(n);
}

HostTensor Blocks::conv_weight(const Shape& shape) {
  HostTensor t(DType::F32, shape);
  int64_t fan_in = 1;
  for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
  const double scale = 1.0 / std::sqrt(static_cast<double>(fan_in));
  for (float& v : t.span<float>()) v = static_cast<float>(rng_.normal() * scale);
  return t;
}

HostTensor Blocks::bias(int64_t n) {
  HostTensor t(DType::F32, {n});
  for (float& v : t.span<float>()) v = static_cast<float>(rng_.normal() * 0.1);
  return t;
}

ITensor* Blocks::scalar(float v, const std::string& name) {
  auto* c = net_.addConstant({}, HostTensor::scalar_f32(v));
  c->setName(name);
  c->getOutput(0)->setName(name + "_output_0");
  return c->getOutput(0);
}

ITensor* Blocks::conv(ITensor* x, const Scope& s, int64_t c2, int64_t k, int64_t stride, int64_t g, bool act) {
  const int64_t c1 = channels(x);
  auto* L = net_.addConvolution(*x, c2, {k, k}, conv_weight({c2, c1 / g, k, k}), bias(c2));
  L->setNbGroups(g);
  L->setStride({stride, stride});
  L->setPadding({k / 2, k / 2});  // autopad: 'same' for odd kernels
  L->setName(s.scope + "/conv/Conv");
  L->setWeightsName(s.param + ".conv.weight", s.param + ".conv.bias");
  if (!act) return L->getOutput(0);
  auto* A = net_.addActivation(*L->getOutput(0), ActivationType::kSILU);
  A->setName(s.scope + "/act");
  return A->getOutput(0);
}

ITensor* Blocks::conv2d(ITensor* x, const Scope& s, int64_t c2, int64_t k) {
  const int64_t c1 = channels(x);
  auto* L = net_.addConvolution(*x, c2, {k, k}, conv_weight({c2, c1, k, k}), bias(c2));
  L->setPadding({k / 2, k / 2});
  L->setName(s.scope + "/Conv");
  L->setWeightsName(s.param + ".weight", s.param + ".bias");
  return L->getOutput(0);
}

ITensor* Blocks::bottleneck(ITensor* x, const Scope& s, int64_t c2, bool shortcut, int64_t k1, int64_t k2, double e) {
  const int64_t c1 = channels(x);
  const int64_t c_ = static_cast<int64_t>(static_cast<double>(c2) * e);
  ITensor* y = conv(conv(x, s.child("cv1"), c_, k1), s.child("cv2"), c2, k2);
  if (!(shortcut && c1 == c2)) return y;
  auto* add = net_.addElementwise(*x, *y, ElementWiseOperation::kSUM);
  add->setName(unique(s.scope + "/Add"));
  return add->getOutput(0);
}

ITensor* Blocks::c2f(ITensor* x, const Scope& s, int64_t c2, int64_t n, bool shortcut, double e) {
  const int64_t c = static_cast<int64_t>(static_cast<double>(c2) * e);
  ITensor* y0 = conv(x, s.child("cv1"), 2 * c, 1);
  // chunk(2, 1) exports as two Slices (not a Split); keep that, so the graphs match node for node.
  auto* a = net_.addSlice(*y0, {0}, {c}, {1});
  a->setName(unique(s.scope + "/Slice"));
  auto* b = net_.addSlice(*y0, {c}, {2 * c}, {1});
  b->setName(unique(s.scope + "/Slice"));
  std::vector<ITensor*> ys = {a->getOutput(0), b->getOutput(0)};
  for (int64_t i = 0; i < n; ++i)
    ys.push_back(bottleneck(ys.back(), s.child("m." + std::to_string(i)), c, shortcut, 3, 3, 1.0));
  return conv(concat(ys, s), s.child("cv2"), c2, 1);
}

ITensor* Blocks::c3k(ITensor* x, const Scope& s, int64_t c2, int64_t n, bool shortcut, double e, int64_t k) {
  const int64_t c_ = static_cast<int64_t>(static_cast<double>(c2) * e);
  // cv3(cat(m(cv1(x)), cv2(x))): Python evaluates m(cv1(x)) first, so cv2 comes after the bottlenecks.
  ITensor* y = conv(x, s.child("cv1"), c_, 1);
  for (int64_t i = 0; i < n; ++i) y = bottleneck(y, s.seq("m", i), c_, shortcut, k, k, 1.0);
  ITensor* z = conv(x, s.child("cv2"), c_, 1);
  return conv(concat({y, z}, s), s.child("cv3"), c2, 1);
}

ITensor* Blocks::c3k2(ITensor* x, const Scope& s, int64_t c2, int64_t n, bool use_c3k, double e, bool shortcut) {
  const int64_t c = static_cast<int64_t>(static_cast<double>(c2) * e);
  ITensor* y0 = conv(x, s.child("cv1"), 2 * c, 1);
  auto* a = net_.addSlice(*y0, {0}, {c}, {1});
  a->setName(unique(s.scope + "/Slice"));
  auto* b = net_.addSlice(*y0, {c}, {2 * c}, {1});
  b->setName(unique(s.scope + "/Slice"));
  std::vector<ITensor*> ys = {a->getOutput(0), b->getOutput(0)};
  for (int64_t i = 0; i < n; ++i) {
    const Scope m = s.child("m." + std::to_string(i));
    // C3k(c, c, 2, shortcut) or Bottleneck(c, c, shortcut) with its default e = 0.5.
    ys.push_back(use_c3k ? c3k(ys.back(), m, c, 2, shortcut) : bottleneck(ys.back(), m, c, shortcut, 3, 3, 0.5));
  }
  return conv(concat(ys, s), s.child("cv2"), c2, 1);
}

ITensor* Blocks::sppf(ITensor* x, const Scope& s, int64_t c2, int64_t k) {
  const int64_t c_ = channels(x) / 2;
  std::vector<ITensor*> ys = {conv(x, s.child("cv1"), c_, 1)};
  for (int i = 0; i < 3; ++i) {
    // One nn.MaxPool2d applied three times: the exporter scopes the calls m, m_1, m_2.
    auto* p = net_.addPooling(*ys.back(), PoolingType::kMAX, {k, k}, {1, 1}, {k / 2, k / 2});
    std::string name = s.scope + "/m";
    if (i) name += '_', name += std::to_string(i);
    p->setName(name + "/MaxPool");
    ys.push_back(p->getOutput(0));
  }
  return conv(concat(ys, s), s.child("cv2"), c2, 1);
}

ITensor* Blocks::psa_block(ITensor* x, const Scope& s, int64_t c, int64_t num_heads) {
  // Attention(c, attn_ratio=0.5, num_heads), then x + attn(x), then x + ffn(x).
  const Shape xs = x->getDimensions();
  const int64_t B = xs[0], H = xs[2], W = xs[3], N = H * W;
  const int64_t head_dim = c / num_heads, key_dim = static_cast<int64_t>(static_cast<double>(head_dim) * 0.5);
  const int64_t h = c + key_dim * num_heads * 2;
  const Scope at = s.child("attn");
  ITensor* qkv = conv(x, at.child("qkv"), h, 1, 1, 1, false);
  auto* r = net_.addReshape(*qkv, {B, num_heads, key_dim * 2 + head_dim, N});
  r->setName(unique(at.scope + "/Reshape"));
  auto* sp = net_.addSplit(*r->getOutput(0), 2, {key_dim, key_dim, head_dim});
  sp->setName(unique(at.scope + "/Split"));
  ITensor *q = sp->getOutput(0), *k = sp->getOutput(1), *v = sp->getOutput(2);
  // (q^T @ k) * scale, softmax over keys, v @ attn^T
  auto* qk = net_.addMatMul(*q, MatrixOperation::kTRANSPOSE, *k, MatrixOperation::kNONE);
  qk->setName(unique(at.scope + "/MatMul"));
  // The scale is a Python float (key_dim ** -0.5) that the exporter writes as a float32 constant.
  ITensor* scale = scalar(static_cast<float>(std::pow(static_cast<double>(key_dim), -0.5)), unique(at.scope + "/Constant"));
  auto* scaled = net_.addElementwise(*qk->getOutput(0), *scale, ElementWiseOperation::kPROD);
  scaled->setName(unique(at.scope + "/Mul"));
  auto* sm = net_.addSoftmax(*scaled->getOutput(0), -1);
  sm->setName(unique(at.scope + "/Softmax"));
  auto* av = net_.addMatMul(*v, MatrixOperation::kNONE, *sm->getOutput(0), MatrixOperation::kTRANSPOSE);
  av->setName(unique(at.scope + "/MatMul"));
  auto* o = net_.addReshape(*av->getOutput(0), {B, c, H, W});
  o->setName(unique(at.scope + "/Reshape"));
  auto* vr = net_.addReshape(*v, {B, c, H, W});
  vr->setName(unique(at.scope + "/Reshape"));
  ITensor* pe = conv(vr->getOutput(0), at.child("pe"), c, 3, 1, c, false);  // depthwise positional encoding
  auto* sum = net_.addElementwise(*o->getOutput(0), *pe, ElementWiseOperation::kSUM);
  sum->setName(unique(at.scope + "/Add"));
  ITensor* proj = conv(sum->getOutput(0), at.child("proj"), c, 1, 1, 1, false);
  auto* x1 = net_.addElementwise(*x, *proj, ElementWiseOperation::kSUM);
  x1->setName(unique(s.scope + "/Add"));
  ITensor* f = conv(x1->getOutput(0), s.seq("ffn", 0), c * 2, 1);
  f = conv(f, s.seq("ffn", 1), c, 1, 1, 1, false);
  auto* x2 = net_.addElementwise(*x1->getOutput(0), *f, ElementWiseOperation::kSUM);
  x2->setName(unique(s.scope + "/Add"));
  return x2->getOutput(0);
}

ITensor* Blocks::c2psa(ITensor* x, const Scope& s, int64_t c2, int64_t n, double e) {
  const int64_t c1 = channels(x);
  if (c1 != c2) fail("C2PSA block '", s.scope, "' needs c1 == c2 (", c1, " vs ", c2, ")");
  const int64_t c = static_cast<int64_t>(static_cast<double>(c1) * e);
  ITensor* y = conv(x, s.child("cv1"), 2 * c, 1);
  auto* sp = net_.addSplit(*y, 1, {c, c});  // split((c, c), dim=1) exports as a Split
  sp->setName(unique(s.scope + "/Split"));
  ITensor* b = sp->getOutput(1);
  for (int64_t i = 0; i < n; ++i) b = psa_block(b, s.seq("m", i), c, c / 64);
  return conv(concat({sp->getOutput(0), b}, s), s.child("cv2"), c1, 1);
}

ITensor* Blocks::upsample(ITensor* x, const Scope& s) {
  auto* r = net_.addResize(*x, {1.f, 1.f, 2.f, 2.f}, ResizeMode::kNEAREST);  // nn.Upsample(2, "nearest")
  r->setName(s.scope + "/Resize");
  return r->getOutput(0);
}

ITensor* Blocks::concat(const std::vector<ITensor*>& xs, const Scope& s, int64_t axis) {
  auto* c = net_.addConcat(xs, axis);
  c->setName(unique(s.scope + "/Concat"));
  return c->getOutput(0);
}

ITensor* Blocks::detect(const std::vector<ITensor*>& xs, const Scope& s, int64_t nc, bool legacy, int64_t imgsz) {
  constexpr int64_t reg_max = 16;
  const int64_t ch0 = channels(xs.at(0)), no = nc + 4 * reg_max;
  const int64_t c2 = std::max({int64_t{16}, ch0 / 4, reg_max * 4}), c3 = std::max(ch0, std::min<int64_t>(nc, 100));
  const int64_t B = xs[0]->getDimensions()[0];
  std::vector<ITensor*> flat;
  for (size_t i = 0; i < xs.size(); ++i) {
    ITensor* x = xs[i];
    const Scope box_s = s.child("cv2." + std::to_string(i)), cls_s = s.child("cv3." + std::to_string(i));
    ITensor* box = conv(x, box_s.item(0), c2, 3);
    box = conv(box, box_s.item(1), c2, 3);
    box = conv2d(box, box_s.item(2), 4 * reg_max, 1);
    ITensor* cls;
    if (legacy) {
      cls = conv(x, cls_s.item(0), c3, 3);
      cls = conv(cls, cls_s.item(1), c3, 3);
    } else {
      const int64_t cx = channels(x);
      cls = conv(x, cls_s.item(0).item(0), cx, 3, 1, cx);  // DWConv(x, x, 3): groups gcd(x, x) = x
      cls = conv(cls, cls_s.item(0).item(1), c3, 1);
      cls = conv(cls, cls_s.item(1).item(0), c3, 3, 1, c3);
      cls = conv(cls, cls_s.item(1).item(1), c3, 1);
    }
    cls = conv2d(cls, cls_s.item(2), nc, 1);
    flat.push_back(concat({box, cls}, s));
  }
  for (ITensor*& f : flat) {
    auto* r = net_.addReshape(*f, {B, no, -1});
    r->setName(unique(s.scope + "/Reshape"));
    f = r->getOutput(0);
  }
  ITensor* cat = concat(flat, s, 2);
  const int64_t A = cat->getDimensions()[2];
  auto* split = net_.addSplit(*cat, 1, {4 * reg_max, nc});
  split->setName(unique(s.scope + "/Split"));

  // DFL: softmax over the 16 bins of each side, expectation via a 1x1 conv with weights 0..15.
  const Scope dfl = s.child("dfl");
  auto* d0 = net_.addReshape(*split->getOutput(0), {B, 4, reg_max, A});
  d0->setName(unique(dfl.scope + "/Reshape"));
  auto* d1 = net_.addTranspose(*d0->getOutput(0), {0, 2, 1, 3});
  d1->setName(unique(dfl.scope + "/Transpose"));
  auto* d2 = net_.addSoftmax(*d1->getOutput(0), 1);
  d2->setName(unique(dfl.scope + "/Softmax"));
  std::vector<float> bins(reg_max);
  std::iota(bins.begin(), bins.end(), 0.f);
  auto* d3 = net_.addConvolution(*d2->getOutput(0), 1, {1, 1}, HostTensor::from_f32({1, reg_max, 1, 1}, bins));
  d3->setNbGroups(1);
  d3->setName(dfl.scope + "/conv/Conv");
  d3->setWeightsName(dfl.param + ".conv.weight");
  auto* d4 = net_.addReshape(*d3->getOutput(0), {B, 4, A});
  d4->setName(unique(dfl.scope + "/Reshape"));

  // Anchor points (cell centres, in grid units) and per-anchor strides, level by level.
  std::vector<float> anchors(2 * static_cast<size_t>(A)), strides(static_cast<size_t>(A));
  const int64_t level_strides[] = {8, 16, 32};
  size_t k = 0;
  for (size_t l = 0; l < xs.size(); ++l) {
    const int64_t st = level_strides[l], hw = imgsz / st;
    for (int64_t y = 0; y < hw; ++y)
      for (int64_t x = 0; x < hw; ++x, ++k) {
        anchors[k] = static_cast<float>(x) + 0.5f;
        anchors[static_cast<size_t>(A) + k] = static_cast<float>(y) + 0.5f;
        strides[k] = static_cast<float>(st);
      }
  }
  if (static_cast<int64_t>(k) != A) fail("Detect '", s.scope, "': ", A, " anchors in the graph but ", k, " from the strides");
  auto* anc = net_.addConstant({1, 2, A}, HostTensor::from_f32({1, 2, A}, anchors));
  anc->setName(s.scope + "/anchors");
  anc->getOutput(0)->setName(s.param + ".anchors");
  auto* str = net_.addConstant({1, A}, HostTensor::from_f32({1, A}, strides));
  str->setName(s.scope + "/strides");
  str->getOutput(0)->setName(s.param + ".strides");

  // dist2bbox(xywh): x1y1 = anchor - lt, x2y2 = anchor + rb, centre = (x1y1 + x2y2) / 2, wh = x2y2 - x1y1.
  auto* lt = net_.addSlice(*d4->getOutput(0), {0}, {2}, {1});
  lt->setName(unique(s.scope + "/Slice"));
  auto* rb = net_.addSlice(*d4->getOutput(0), {2}, {4}, {1});
  rb->setName(unique(s.scope + "/Slice"));
  auto* x1y1 = net_.addElementwise(*anc->getOutput(0), *lt->getOutput(0), ElementWiseOperation::kSUB);
  x1y1->setName(unique(s.scope + "/Sub"));
  auto* x2y2 = net_.addElementwise(*anc->getOutput(0), *rb->getOutput(0), ElementWiseOperation::kSUM);
  x2y2->setName(unique(s.scope + "/Add"));
  auto* csum = net_.addElementwise(*x1y1->getOutput(0), *x2y2->getOutput(0), ElementWiseOperation::kSUM);
  csum->setName(unique(s.scope + "/Add"));
  auto* ctr = net_.addElementwise(*csum->getOutput(0), *scalar(2.f, unique(s.scope + "/Constant")), ElementWiseOperation::kDIV);
  ctr->setName(unique(s.scope + "/Div"));
  auto* wh = net_.addElementwise(*x2y2->getOutput(0), *x1y1->getOutput(0), ElementWiseOperation::kSUB);
  wh->setName(unique(s.scope + "/Sub"));
  ITensor* xywh = concat({ctr->getOutput(0), wh->getOutput(0)}, s);
  auto* px = net_.addElementwise(*xywh, *str->getOutput(0), ElementWiseOperation::kPROD);
  px->setName(unique(s.scope + "/Mul"));
  auto* cls = net_.addActivation(*split->getOutput(1), ActivationType::kSIGMOID);
  cls->setName(unique(s.scope + "/Sigmoid"));
  ITensor* out = concat({px->getOutput(0), cls->getOutput(0)}, s);
  out->setName("output0");
  return out;
}

void check_options(const std::string& model, const BuildOptions& o) {
  if (o.batch < 1) fail("zoo model '", model, "': batch must be at least 1 (got ", o.batch, ")");
  if (o.imgsz < 32 || o.imgsz % 32 != 0)
    fail("zoo model '", model, "': imgsz must be a positive multiple of 32, the largest stride (got ", o.imgsz, ")");
  if (o.num_classes < 1) fail("zoo model '", model, "': num_classes must be at least 1 (got ", o.num_classes, ")");
}

void set_detect_metadata(NetworkDefinition& net, const std::string& model, const BuildOptions& o) {
  std::vector<std::string> names;
  if (o.num_classes == 80) {
    names = coco80_names();
  } else {
    for (int64_t i = 0; i < o.num_classes; ++i) names.push_back("class" + std::to_string(i));  // Ultralytics' default
  }
  net.setClassNames(names);
  net.setStride(32);
  net.setImgsz(o.imgsz, o.imgsz);
  net.setMetadata("task", "detect");
  net.setMetadata("batch", std::to_string(o.batch));
  net.setMetadata("author", "Kestrel model zoo");
  net.setMetadata("description", "Kestrel built-in " + model + " (Ultralytics architecture, seeded random weights, seed " +
                                     std::to_string(o.seed) + ")");
}

}  // namespace kestrel::zoo::detail

namespace kestrel::zoo {

const std::vector<std::string>& coco80_names() { return util::coco80_names(); }

}  // namespace kestrel::zoo
