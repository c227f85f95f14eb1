// Conv -> BatchNormalization (inference form) folded into the conv:
//   BN(y) = a * y + (bias - mean * a),  a = scale / sqrt(var + eps)   (per output channel)
// so W'[m] = a[m] W[m] and B'[m] = a[m] (B[m] - mean[m]) + bias[m]. The factors are computed in double so
// the folded conv is as close to conv-then-BN as float storage allows.
#include <cmath>

#include "kestrel/passes.h"
#include "passes/fusion_util.h"

namespace kestrel::passes {

namespace {
using detail::has_input;
using detail::is_constant;

// A conv whose output may be rescaled per channel: plain Conv, or kestrel.Conv before any activation
// or residual (after those, a per-channel affine map no longer commutes).
bool foldable_conv(const Graph& g, const Node& n) {
  if (n.op == "Conv") {
  } else if (n.op == "kestrel.Conv") {
    if (n.attrs.s("activation", "none") != "none" || has_input(n, 3)) return false;
  } else {
    return false;
  }
  if (!has_input(n, 1) || !is_constant(g, n.inputs[1])) return false;
  if (has_input(n, 2) && !is_constant(g, n.inputs[2])) return false;
  const HostTensor& w = *g.value(n.inputs[1]).constant;
  return w.dtype() == DType::F32 && w.rank() >= 3;
}

bool inference_batchnorm(const Graph& g, const Node& bn) {
  if (bn.op != "BatchNormalization" || bn.inputs.size() < 5 || bn.attrs.i("training_mode", 0) != 0) return false;
  for (size_t i = 1; i < 5; ++i)
    if (!has_input(bn, i) || !is_constant(g, bn.inputs[i])) return false;
  // Training-mode outputs (running mean / var) would need the statistics; inference graphs omit them.
  for (size_t k = 1; k < bn.outputs.size(); ++k)
    if (!bn.outputs[k].empty()) return false;
  return true;
}

Value constant_value(const std::string& name, HostTensor t) {
  Value v;
  v.name = name;
  v.dtype = t.dtype();
  v.shape = t.shape();
  v.shape_known = true;
  v.constant = std::move(t);
  return v;
}
}  // namespace

int fold_batchnorm(Graph& g) {
  detail::Uses uses(g);
  std::vector<bool> dead(g.nodes.size(), false);
  int folded = 0;
  for (size_t bi = 0; bi < g.nodes.size(); ++bi) {
    const Node& bn = g.nodes[bi];
    if (!inference_batchnorm(g, bn)) continue;
    const long ci = uses.producer(bn.inputs[0]);
    if (ci < 0 || dead[ci]) continue;
    Node& conv = g.nodes[ci];
    // The pre-BN activation disappears: nobody else may need it.
    if (!foldable_conv(g, conv) || conv.outputs.size() != 1 || !uses.only_read_by(conv.outputs[0], bi)) continue;
    const HostTensor& w = *g.value(conv.inputs[1]).constant;
    const int64_t M = w.dim(0), per = w.numel() / M;
    const auto scale = g.value(bn.inputs[1]).constant->to_f32(), beta = g.value(bn.inputs[2]).constant->to_f32(),
               mean = g.value(bn.inputs[3]).constant->to_f32(), var = g.value(bn.inputs[4]).constant->to_f32();
    if (static_cast<int64_t>(scale.size()) != M || beta.size() != scale.size() || mean.size() != scale.size() ||
        var.size() != scale.size())
      continue;
    std::vector<float> bias(M, 0.f);
    if (has_input(conv, 2)) {
      bias = g.value(conv.inputs[2]).constant->to_f32();
      if (static_cast<int64_t>(bias.size()) != M) continue;
    }
    const double eps = bn.attrs.f("epsilon", 1e-5f);
    // New constants: the originals may be shared with other nodes (HostTensor copies share storage).
    HostTensor w2 = w.clone();
    std::vector<float> b2(M);
    for (int64_t m = 0; m < M; ++m) {
      const double a = static_cast<double>(scale[m]) / std::sqrt(static_cast<double>(var[m]) + eps);
      float* wm = w2.data<float>() + m * per;
      for (int64_t k = 0; k < per; ++k) wm[k] = static_cast<float>(wm[k] * a);
      b2[m] = static_cast<float>((static_cast<double>(bias[m]) - mean[m]) * a + beta[m]);
    }
    const std::string wname = detail::fresh_value_name(g, conv.inputs[1] + "_bnfold");
    g.add_value(constant_value(wname, std::move(w2)));
    const std::string bname = detail::fresh_value_name(
        g, has_input(conv, 2) ? conv.inputs[2] + "_bnfold" : conv.inputs[1] + "_bnfold_bias");
    g.add_value(constant_value(bname, HostTensor::from_f32({M}, b2)));
    conv.inputs.resize(std::max<size_t>(conv.inputs.size(), 3));
    conv.inputs[1] = wname;
    conv.inputs[2] = bname;
    detail::seed_fused(conv);  // the list names the conv itself first
    conv.outputs[0] = bn.outputs[0];
    uses.set_producer(bn.outputs[0], ci);
    detail::record_fused(conv, bn);
    dead[bi] = true;
    ++folded;
  }
  return detail::apply_rewrites(g, dead, folded);
}

}  // namespace kestrel::passes
