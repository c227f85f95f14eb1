// --int8-auto on a tiny graph: the layer with a ruinous scale is found and promoted first.
#include <gtest/gtest.h>

#include "kestrel/cpu_backend.h"
#include "quant_test_util.h"

namespace {
using namespace kestrel;

struct AutoCase {
  Graph g;
  quant::QuantOptions o;
};

// Min-max scales from the inputs themselves, except conv b's input, whose scale saturates badly.
AutoCase setup() {
  AutoCase s{test::tiny_fused_graph(16), {}};
  for (uint32_t i = 0; i < 3; ++i) s.o.automatic.inputs.push_back(test::random_tensor({1, 3, 16, 16}, 20 + i, 0.f, 1.f));
  const auto tensors = quant::quantizable_tensors(s.g);
  std::map<std::string, float> max_abs;
  CpuExecutor exec(s.g);
  for (auto& in : s.o.automatic.inputs) {
    std::vector<HostTensor> kept;
    std::vector<std::string> computed(tensors.begin() + 1, tensors.end());  // tensors[0] is the input
    exec.run({in}, computed, &kept);
    kept.insert(kept.begin(), in);
    for (size_t k = 0; k < tensors.size(); ++k)
      for (float v : kept[k].span<float>()) max_abs[tensors[k]] = std::max(max_abs[tensors[k]], std::fabs(v));
  }
  for (auto& [t, m] : max_abs) s.o.activation_scales[t] = m / 127.f;
  s.o.activation_scales[test::node_named(s.g, "b")->inputs[0]] /= 20.f;
  s.o.automatic.enabled = true;
  s.o.automatic.progress = false;
  return s;
}

TEST(AutoPrecision, PromotesTheMostSensitiveConvsUntilTheTargetIsMet) {
  AutoCase probe = setup();
  probe.o.automatic.target = 100.0;  // met by all-INT8: nothing promoted
  const quant::QuantReport all = quant::quantize_graph(probe.g, probe.o);
  EXPECT_EQ(all.int8, 3);
  EXPECT_EQ(all.auto_error, all.auto_error_all_int8);
  ASSERT_GT(all.auto_error_all_int8, 0.0);

  AutoCase s = setup();
  s.o.automatic.target = all.auto_error_all_int8 / 4;
  const quant::QuantReport r = quant::quantize_graph(s.g, s.o);
  EXPECT_LE(r.auto_error, s.o.automatic.target);
  EXPECT_GE(r.fp16, 1);
  std::map<std::string, quant::LayerDecision> by_name;
  for (auto& l : r.layers) by_name[l.node] = l;
  EXPECT_EQ(by_name["b"].precision, quant::LayerPrecision::FP16);
  EXPECT_EQ(by_name["b"].reason.rfind("auto: sensitivity ", 0), 0u) << by_name["b"].reason;
  for (auto& [n, l] : by_name) {
    EXPECT_GE(l.sensitivity, 0.0) << n;
    EXPECT_LE(l.sensitivity, by_name["b"].sensitivity) << n;
    if (l.precision == quant::LayerPrecision::Int8) {
      EXPECT_NE(l.reason.find("kept int8"), std::string::npos) << l.reason;
    }
  }
}

TEST(AutoPrecision, ExplicitRulesAreLeftAlone) {
  AutoCase s = setup();
  s.o.automatic.target = 1e-9;  // unreachable: every candidate is promoted
  s.o.rules = quant::parse_layer_rules("b:int8");
  const quant::QuantReport r = quant::quantize_graph(s.g, s.o);
  EXPECT_EQ(test::node_named(s.g, "b")->attrs.s("kestrel_precision"), "int8");
  EXPECT_EQ(test::node_named(s.g, "a")->attrs.s("kestrel_precision"), "fp16");
  EXPECT_EQ(r.int8, 1);
}

TEST(AutoPrecision, NeedsImages) {
  AutoCase s = setup();
  s.o.automatic.inputs.clear();
  EXPECT_NE(test::error_of([&] { quant::quantize_graph(s.g, s.o); }).find("needs calibration images"),
            std::string::npos);
}

}  // namespace
