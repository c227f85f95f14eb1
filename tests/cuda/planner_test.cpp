// The builder's planning stages on the real models, without a GPU: lowering, copy elimination and
// arena packing must produce a consistent plan (every live layer constructible, every view allowed by
// its readers and writers, no two buffers alive at once overlapping).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>

#include "backend/cuda/layer.h"
#include "builder/build_plan.h"
#include "kestrel/onnx.h"
#include "kestrel/passes.h"
#include "kestrel/quant.h"
#include "runtime/stream_schedule.h"
#include "test_data.h"

namespace {

using namespace kestrel;

// `adjust` changes the graph before lowering (after quantization for INT8).
bld::BuildPlan plan_model(const std::string& model, Precision prec, bool optimize, int64_t batch = 1,
                          const std::function<void(Graph&)>& adjust = {}, int aux_streams = 0) {
  ImportOptions io;
  io.batch = batch;
  Graph g = import_onnx(test::data_path("models/" + model + ".onnx").string(), io);
  if (optimize) passes::optimize(g);
  if (prec == Precision::INT8) {
    // The default policy with made-up activation scales: the plan does not depend on their values.
    // The early stride 4-8 convs INT8 too (high_res_fp16_stride 0): the lowering of the whole trunk is
    // what these plans check.
    quant::QuantOptions q;
    q.high_res_fp16_stride = 0;
    for (const std::string& t : quant::quantizable_tensors(g)) q.activation_scales[t] = 0.05f;
    quant::quantize_graph(g, q);
  }
  if (adjust) adjust(g);
  BuilderConfig cfg;
  cfg.precision = prec;
  bld::BuildPlan p = bld::lower(g, cfg);
  if (prec == Precision::INT8) bld::fold_requantize(p);
  bld::plan_views(p);
  bld::resolve_layout(p);
  bld::assemble_weights(p);
  bld::assign_streams(p, aux_streams);
  bld::pack_arena(p);
  if (std::getenv("KESTREL_PLAN_DUMP"))
    for (const bld::BLayer& l : p.layers) {
      if (l.removed) continue;
      std::string ins, outs;
      for (int t : l.in)
        if (t >= 0 && p.tensors[t].storage != rt::Storage::Weights)
          ins += " " + std::string(dtype_name(p.tensors[t].dtype)) + shape_str(p.tensors[t].shape) + "s" + shape_str(p.tensors[t].strides);
      for (int t : l.out) outs += " " + std::string(dtype_name(p.tensors[t].dtype)) + shape_str(p.tensors[t].shape) + "s" + shape_str(p.tensors[t].strides);
      std::printf("%-14s %-40s s%d %s ->%s\n", l.op.c_str(), l.name.c_str(), l.stream, ins.c_str(), outs.c_str());
    }
  return p;
}

struct Case {
  const char* model;
  Precision prec;
  bool optimize;
};

class Planner : public ::testing::TestWithParam<Case> {};

TEST_P(Planner, ConsistentPlan) {
  const Case c = GetParam();
  KESTREL_REQUIRE_DATA(std::string("models/") + c.model + ".onnx");
  bld::BuildPlan p = plan_model(c.model, c.prec, c.optimize);
  int live = 0;
  std::vector<std::pair<int64_t, int64_t>> life(p.tensors.size(), {-1, -1});  // per root
  const std::vector<cuda::TensorMeta> metas = bld::metas_of(p);
  for (const bld::BLayer& l : p.layers) {
    if (l.removed) continue;
    // Every live layer can be set up from its tensors' metadata (host-side checks of the kernels).
    const cuda::LayerSpec s = bld::layer_spec(p, l, metas);
    EXPECT_NO_THROW(cuda::create_layer(s)) << l.name;
    // Access requirements hold on the final strides.
    const cuda::OpTraits tr = cuda::op_traits(l.op);
    auto check = [&](int t, cuda::Access a, const char* what) {
      if (t < 0) return;
      const cuda::TensorMeta& m = metas[t];
      if (a == cuda::Access::ChannelsLast) {
        EXPECT_TRUE(m.channels_last_ld()) << l.name << " " << what << " " << p.tensors[t].name;
      }
      if (a == cuda::Access::Dense) {
        EXPECT_TRUE(m.dense_row_major() || m.strides == cuda::TensorMeta{}.strides) << l.name << " " << what;
      }
    };
    for (size_t i = 0; i < l.in.size(); ++i)
      if (l.in[i] >= 0 && p.tensors[l.in[i]].storage != rt::Storage::Weights) check(l.in[i], tr.input(i), "input");
    for (size_t i = 0; i < l.out.size(); ++i) check(l.out[i], tr.output(i), "output");
    ++live;
  }
  // Buffers alive at the same time never overlap.
  std::vector<int> order;
  for (size_t i = 0; i < p.layers.size(); ++i)
    if (!p.layers[i].removed) order.push_back(static_cast<int>(i));
  for (size_t k = 0; k < order.size(); ++k) {
    const bld::BLayer& l = p.layers[order[k]];
    for (int t : l.in)
      if (t >= 0 && p.tensors[t].storage == rt::Storage::Arena) {
        auto& lf = life[p.tensors[t].root];
        if (lf.first < 0) lf.first = static_cast<int64_t>(k);
        lf.second = static_cast<int64_t>(k);
      }
    for (int t : l.out)
      if (p.tensors[t].storage == rt::Storage::Arena) {
        auto& lf = life[p.tensors[t].root];
        if (lf.first < 0) lf.first = static_cast<int64_t>(k);
        lf.second = static_cast<int64_t>(k);
      }
  }
  for (size_t a = 0; a < p.tensors.size(); ++a)
    for (size_t b = a + 1; b < p.tensors.size(); ++b) {
      if (life[a].first < 0 || life[b].first < 0) continue;
      if (life[a].second < life[b].first || life[b].second < life[a].first) continue;
      const int64_t a0 = p.tensors[a].offset, a1 = a0 + p.tensors[a].bytes();
      const int64_t b0 = p.tensors[b].offset, b1 = b0 + p.tensors[b].bytes();
      EXPECT_TRUE(a1 <= b0 || b1 <= a0) << p.tensors[a].name << " and " << p.tensors[b].name << " overlap";
    }
  EXPECT_LT(p.arena_bytes, p.activation_bytes);
  std::printf("%s %s%s: %d live layers, %lld eliminated, arena %.2f MiB vs %.2f MiB sum\n", c.model,
              precision_name(c.prec), c.optimize ? " fused" : "", live, static_cast<long long>(p.eliminated),
              p.arena_bytes / 1048576.0, p.activation_bytes / 1048576.0);
}

INSTANTIATE_TEST_SUITE_P(Models, Planner,
                         ::testing::Values(Case{"yolov8n", Precision::FP16, true}, Case{"yolov8n", Precision::FP32, false},
                                           Case{"yolov5n", Precision::FP16, true}, Case{"yolov5n", Precision::FP32, false},
                                           Case{"yolo11n", Precision::FP16, true}, Case{"yolo11n", Precision::FP16, false},
                                           Case{"yolov8n", Precision::INT8, true}, Case{"yolov5n", Precision::INT8, true},
                                           Case{"yolo11n", Precision::INT8, true}),
                         [](const auto& info) {
                           return std::string(info.param.model) + "_" + precision_name(info.param.prec) +
                                  (info.param.optimize ? "_fused" : "_plain");
                         });

// Branches on auxiliary streams: the detection head's box and class branches run beside each other and
// beside the trunk, and no two buffers share memory unless every layer touching one precedes (through
// dependencies and stream order) every layer touching the other.
class PlannerStreams : public ::testing::TestWithParam<Case> {};

TEST_P(PlannerStreams, BranchesSideBySideNeverShareLiveMemory) {
  const Case c = GetParam();
  KESTREL_REQUIRE_DATA(std::string("models/") + c.model + ".onnx");
  bld::BuildPlan p = plan_model(c.model, c.prec, c.optimize, 1, {}, kDefaultMaxAuxStreams);
  const std::vector<int> order = bld::live_layers(p);
  const auto deps = bld::layer_dependencies(p, order);
  const size_t n = order.size();
  // precedes[a][b]: layer a (position) completes before layer b starts, by the edges a run enforces.
  std::vector<std::vector<char>> precedes(n, std::vector<char>(n, 0));
  std::vector<int> last_on(64, -1);
  for (size_t b = 0; b < n; ++b) {
    std::vector<int> direct = deps[b];
    int& prev = last_on[static_cast<size_t>(p.layers[order[b]].stream)];
    if (prev >= 0) direct.push_back(prev);
    prev = static_cast<int>(b);
    for (int a : direct) {
      precedes[static_cast<size_t>(a)][b] = 1;
      for (size_t x = 0; x < n; ++x)
        if (precedes[x][static_cast<size_t>(a)]) precedes[x][b] = 1;
    }
  }
  std::map<int, int> streams;
  int on_aux = 0;
  for (int i : order) {
    streams[p.layers[i].stream]++;
    on_aux += p.layers[i].stream > 0;
  }
  // YOLOv8/11: each scale's box and class branches (three or five convs each); YOLOv5: one conv per
  // scale, beside the rest of the neck.
  const bool v5 = std::string(c.model).find("v5") != std::string::npos;
  EXPECT_GE(streams.size(), v5 ? 2u : 3u) << "the head's branches should take auxiliary streams";
  EXPECT_GE(on_aux, v5 ? 2 : 6);
  // Who touches each arena root, by position.
  std::map<int, std::vector<size_t>> touch;
  for (size_t k = 0; k < n; ++k) {
    const bld::BLayer& l = p.layers[order[k]];
    for (int t : l.in)
      if (t >= 0 && p.tensors[t].storage == rt::Storage::Arena) touch[p.tensors[t].root].push_back(k);
    for (int t : l.out)
      if (p.tensors[t].storage == rt::Storage::Arena) touch[p.tensors[t].root].push_back(k);
  }
  auto all_before = [&](const std::vector<size_t>& x, const std::vector<size_t>& y) {
    for (size_t a : x)
      for (size_t b : y)
        if (a == b || !precedes[a][b]) return false;
    return true;
  };
  int shared = 0;
  for (auto it = touch.begin(); it != touch.end(); ++it)
    for (auto jt = std::next(it); jt != touch.end(); ++jt) {
      const bld::BTensor &a = p.tensors[it->first], &b = p.tensors[jt->first];
      const int64_t a0 = a.offset, a1 = a0 + a.bytes(), b0 = b.offset, b1 = b0 + b.bytes();
      if (a1 <= b0 || b1 <= a0) continue;
      ++shared;
      EXPECT_TRUE(all_before(it->second, jt->second) || all_before(jt->second, it->second))
          << a.name << " and " << b.name << " share memory while they may be in use at once";
    }
  EXPECT_GT(shared, 0) << "the arena should still reuse memory";
  const bld::BuildPlan seq = plan_model(c.model, c.prec, c.optimize);
  std::printf("%s %s: %zu streams, %d layers on auxiliary ones; arena %.2f MiB (one stream %.2f MiB)\n", c.model,
              precision_name(c.prec), streams.size(), on_aux, p.arena_bytes / 1048576.0, seq.arena_bytes / 1048576.0);
}

INSTANTIATE_TEST_SUITE_P(Models, PlannerStreams,
                         ::testing::Values(Case{"yolov8n", Precision::FP16, true}, Case{"yolov5n", Precision::FP16, true},
                                           Case{"yolo11n", Precision::FP16, true}, Case{"yolo11n", Precision::INT8, true},
                                           Case{"yolov8n", Precision::FP32, false}),
                         [](const auto& info) {
                           return std::string(info.param.model) + "_" + precision_name(info.param.prec) +
                                  (info.param.optimize ? "_fused" : "_plain");
                         });

// An INT8 plan with some convs back in FP16 (the builder's precision choice by time: YOLO11's depthwise
// convs, where the INT8 kernels lose at batch 32): those run as kestrel.Conv on fp16, every INT8 conv
// still reads int8 (a quantize layer where an FP16 conv now makes its input), and the plan is consistent.
TEST(Planner, Int8PlanWithDepthwiseConvsInFp16) {
  KESTREL_REQUIRE_DATA("models/yolo11n.onnx");
  std::map<std::string, std::string> depthwise;
  bld::BuildPlan p = plan_model("yolo11n", Precision::INT8, true, 32, [&](Graph& g) {
    for (const Node& n : g.nodes)
      if (n.op == "kestrel.Conv" && n.attrs.s("kestrel_precision", "") == "int8" && n.attrs.i("group", 1) > 1)
        depthwise[n.name] = "test";
    quant::run_in_fp16(g, depthwise);
  });
  ASSERT_GE(depthwise.size(), 6u);
  const std::vector<cuda::TensorMeta> metas = bld::metas_of(p);
  int fp16 = 0;
  for (const bld::BLayer& l : p.layers) {
    if (l.removed) continue;
    EXPECT_NO_THROW(cuda::create_layer(bld::layer_spec(p, l, metas))) << l.name;
    if (depthwise.count(l.name)) {
      EXPECT_EQ(l.op, "kestrel.Conv") << l.name;
      EXPECT_EQ(p.tensors[l.in[0]].dtype, DType::F16) << l.name;
      EXPECT_EQ(l.attrs.s("kestrel_precision_reason", ""), "test") << l.name;
      ++fp16;
    }
    if (l.op == "kestrel.ConvInt8") EXPECT_EQ(p.tensors[l.in[0]].dtype, DType::I8) << l.name;
  }
  EXPECT_EQ(fp16, static_cast<int>(depthwise.size()));
}

// The stem of an INT8 plan back in FP16 (the precision choice by time compares the stems too): it lowers to
// the FP16 stem on the float image, the INT8 conv after it reads int8 codes through a quantize layer.
TEST(Planner, Int8PlanWithTheStemInFp16) {
  KESTREL_REQUIRE_DATA("models/yolov8n.onnx");
  std::string stem;
  bld::BuildPlan p = plan_model("yolov8n", Precision::INT8, true, 32, [&](Graph& g) {
    for (const Node& n : g.nodes)
      if (n.op == "kestrel.Conv") {
        stem = n.name;
        break;
      }
    quant::run_in_fp16(g, {{stem, "test"}});
  });
  ASSERT_FALSE(stem.empty());
  const std::vector<cuda::TensorMeta> metas = bld::metas_of(p);
  std::map<int, const bld::BLayer*> producer;
  for (const bld::BLayer& l : p.layers)
    if (!l.removed)
      for (int t : l.out) producer[t] = &l;
  int stems = 0, int8_convs = 0;
  for (const bld::BLayer& l : p.layers) {
    if (l.removed) continue;
    EXPECT_NO_THROW(cuda::create_layer(bld::layer_spec(p, l, metas))) << l.name;
    EXPECT_NE(l.op, "kestrel.ConvInt8Stem") << l.name;
    if (l.name == stem) {
      EXPECT_EQ(l.op, "kestrel.ConvStem");
      EXPECT_EQ(p.tensors[l.out[0]].dtype, DType::F16);
      EXPECT_EQ(l.attrs.s("kestrel_precision_reason", ""), "test");
      ++stems;
    }
    if (l.op == "kestrel.ConvInt8") {
      EXPECT_EQ(p.tensors[l.in[0]].dtype, DType::I8) << l.name;
      ++int8_convs;
    }
  }
  EXPECT_EQ(stems, 1);
  EXPECT_GT(int8_convs, 40);
  // The conv after the stem is INT8 and reads the stem's output through a quantize layer.
  bool quantized_after_stem = false;
  for (const bld::BLayer& l : p.layers)
    if (!l.removed && l.op == "kestrel.QuantizeInt8" && producer.count(l.in[0]) && producer[l.in[0]]->name == stem)
      quantized_after_stem = true;
  EXPECT_TRUE(quantized_after_stem);
}

// YOLO11's attention, fused as the builder fuses it (after quantization for INT8), is one layer on the
// qkv conv's channels-last FP16 output: no Softmax, MatMul or layout conversion remains; in INT8 the
// positional conv quantizes the attention's V output (the qkv conv writes fp16, its reader is no conv).
TEST(Planner, Yolo11AttentionIsOneLayer) {
  KESTREL_REQUIRE_DATA("models/yolo11n.onnx");
  for (Precision prec : {Precision::FP16, Precision::INT8}) {
    SCOPED_TRACE(precision_name(prec));
    bld::BuildPlan p = plan_model("yolo11n", prec, true, 1, [](Graph& g) { EXPECT_EQ(passes::fuse_attention(g), 1); });
    const std::vector<cuda::TensorMeta> metas = bld::metas_of(p);
    const bld::BLayer* att = nullptr;
    std::map<int, const bld::BLayer*> producer;
    for (const bld::BLayer& l : p.layers) {
      if (l.removed) continue;
      EXPECT_NE(l.op, "Softmax") << l.name;
      EXPECT_NE(l.op, "MatMul") << l.name;
      EXPECT_NO_THROW(cuda::create_layer(bld::layer_spec(p, l, metas))) << l.name;
      for (int t : l.out) producer[t] = &l;
      if (l.op == "kestrel.Attention") {
        EXPECT_EQ(att, nullptr) << "a second attention layer: " << l.name;
        att = &l;
      }
    }
    ASSERT_NE(att, nullptr);
    ASSERT_EQ(att->out.size(), 2u);
    for (int t : {att->in[0], att->out[0], att->out[1]}) {
      EXPECT_EQ(p.tensors[t].dtype, DType::F16) << p.tensors[t].name;
      EXPECT_TRUE(p.tensors[t].channels_last) << p.tensors[t].name;
    }
    const auto qkv = producer.find(att->in[0]);
    ASSERT_NE(qkv, producer.end());
    EXPECT_NE(qkv->second->name.find("/attn/qkv/"), std::string::npos) << "read without a conversion: " << qkv->second->name;
    for (const bld::BLayer& l : p.layers) {
      if (l.removed || l.name.find("/attn/pe/") == std::string::npos) continue;
      const bld::BLayer* x = producer.at(l.in[0]);
      if (prec == Precision::INT8) {
        ASSERT_EQ(l.op, "kestrel.ConvInt8");
        ASSERT_EQ(x->op, "kestrel.QuantizeInt8");
        EXPECT_EQ(x->in[0], att->out[1]);
      } else {
        EXPECT_EQ(x, att);
        EXPECT_EQ(l.in[0], att->out[1]);
        EXPECT_EQ(l.in[3], att->out[0]) << "the residual of the positional conv is the attention's Y";
      }
    }
  }
}

// C2f's split halves and bottleneck outputs land in the block's concat buffer: in the fused YOLOv8n
// plan no Concat or Slice of the trunk remains as a layer.
TEST(Planner, YoloV8TrunkConcatsBecomeViews) {
  KESTREL_REQUIRE_DATA("models/yolov8n.onnx");
  bld::BuildPlan p = plan_model("yolov8n", Precision::FP16, true);
  int copies = 0;
  for (const bld::BLayer& l : p.layers)
    if (!l.removed && (l.op == "Concat" || l.op == "Slice" || l.op == "Split")) {
      std::printf("  remaining %s %s\n", l.op.c_str(), l.name.c_str());
      ++copies;
    }
  EXPECT_LE(copies, 4);
}

}  // namespace

// INT8 lowering of a Q/DQ graph: every INT8 conv becomes kestrel.ConvInt8 on int8 channels-last input;
// no Q/DQ node survives as a layer; an INT8 conv feeding only the next INT8 conv writes int8 itself.
TEST(Planner, Int8ConvsReadInt8) {
  KESTREL_REQUIRE_DATA("models/yolov8n.onnx");
  bld::BuildPlan p = plan_model("yolov8n", Precision::INT8, true);
  int int8_convs = 0, quantizers = 0, int8_out = 0, float_convs = 0, stems = 0, int8_res = 0;
  for (const bld::BLayer& l : p.layers) {
    if (l.removed) continue;
    EXPECT_NE(l.op, "QuantizeLinear");
    EXPECT_NE(l.op, "DequantizeLinear");
    if (l.op == "kestrel.ConvInt8") {
      ++int8_convs;
      EXPECT_EQ(p.tensors[l.in[0]].dtype, DType::I8) << l.name;  // int8 codes, 1x1 convs too
      EXPECT_FALSE(l.attrs.has("x_scale")) << l.name;
      EXPECT_EQ(p.tensors[l.in[1]].dtype, DType::I8) << l.name;
      EXPECT_EQ(p.tensors[l.in[2]].dtype, DType::F32) << l.name;
      const DType out = p.tensors[l.out[0]].dtype;
      EXPECT_TRUE(out == DType::F16 || out == DType::I8) << l.name;
      EXPECT_EQ(out == DType::I8, l.attrs.has("out_scale")) << l.name;
      int8_out += out == DType::I8;
      if (l.in.size() > 4 && l.in[4] >= 0) {  // C2f's bottleneck residuals: the codes of its input
        EXPECT_EQ(p.tensors[l.in[4]].dtype, DType::I8) << l.name;
        EXPECT_TRUE(l.attrs.has("r_scale")) << l.name;
        ++int8_res;
      }
    }
    if (l.op == "kestrel.ConvInt8Stem") {
      ++stems;  // reads the float32 image and quantizes it itself
      EXPECT_EQ(p.tensors[l.in[0]].dtype, DType::F32) << l.name;
      EXPECT_TRUE(l.attrs.has("x_scale")) << l.name;
    }
    quantizers += l.op == "kestrel.QuantizeInt8";
    float_convs += l.op == "kestrel.Conv" || l.op == "kestrel.ConvStem";
  }
  std::printf("yolov8n int8: %d int8 convs + %d stem (%d write int8), %d quantize layers, %d float convs\n", int8_convs,
              stems, int8_out, quantizers, float_convs);
  EXPECT_EQ(int8_convs + stems, 57);  // the default policy (early convs int8 too): all but the 6 head output convs
  EXPECT_EQ(stems, 1);
  EXPECT_EQ(float_convs, 6);
  // With one scale per data-movement group (quantize_graph ties them; here all scales are equal), the
  // whole trunk stays int8: C2f's concat written in place as codes, its halves and residuals read as
  // codes, SPPF and the neck's upsample-concat on codes. Only the head's last INT8 convs write fp16.
  EXPECT_EQ(quantizers, 0);
  EXPECT_EQ(int8_out, 50);
  EXPECT_EQ(int8_res, 6);  // the backbone's bottlenecks (n = 1, 2, 2, 1)
  for (const bld::BLayer& l : p.layers) {
    if (!l.removed && (l.op == "kestrel.SPPF" || l.op == "Resize")) {
      EXPECT_EQ(p.tensors[l.out[0]].dtype, DType::I8) << l.name;
    }
  }
}

// Distinct calibrated scales still give an all-int8 trunk (quantize_graph ties each data-movement
// group to one scale). A Q/DQ graph whose group members disagree (another tool's, or edited as here)
// cannot move codes through that group: its values stay fp16 and get quantize layers.
TEST(Planner, Int8MixedScalesQuantize) {
  KESTREL_REQUIRE_DATA("models/yolov8n.onnx");
  ImportOptions io;
  Graph g = import_onnx(test::data_path("models/yolov8n.onnx").string(), io);
  passes::optimize(g);
  quant::QuantOptions q;
  q.high_res_fp16_stride = 0;
  float s = 0.01f;
  for (const std::string& t : quant::quantizable_tensors(g)) q.activation_scales[t] = s += 0.001f;
  quant::quantize_graph(g, q);  // unifies the groups' scales: still no quantize layer
  BuilderConfig cfg;
  cfg.precision = Precision::INT8;
  bld::BuildPlan p = bld::lower(g, cfg);
  int quantizers = 0;
  for (const bld::BLayer& l : p.layers) quantizers += !l.removed && l.op == "kestrel.QuantizeInt8";
  EXPECT_EQ(quantizers, 0);
  // The same graph with one concat input's scale changed afterwards: that group falls back to fp16.
  for (Node& n : g.nodes)
    if (n.op == "QuantizeLinear" && n.inputs[0] == "/model.2/Concat_output_0") {
      *g.value(n.inputs[1]).constant = HostTensor::scalar_f32(0.5f);  // shared by its DequantizeLinear
    }
  bld::BuildPlan p2 = bld::lower(g, cfg);
  quantizers = 0;
  for (const bld::BLayer& l : p2.layers) quantizers += !l.removed && l.op == "kestrel.QuantizeInt8";
  EXPECT_GT(quantizers, 0);
}

// A float engine refuses a Q/DQ graph, and an INT8 engine a graph without Q/DQ, each with a clear message.
TEST(Planner, Int8NeedsQuantizedGraph) {
  KESTREL_REQUIRE_DATA("models/yolov8n.onnx");
  Graph g = import_onnx(test::data_path("models/yolov8n.onnx").string());
  passes::optimize(g);
  BuilderConfig cfg;
  cfg.precision = Precision::INT8;
  try {
    bld::lower(g, cfg);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs a quantized model"), std::string::npos) << e.what();
  }
  quant::QuantOptions q;
  for (const std::string& t : quant::quantizable_tensors(g)) q.activation_scales[t] = 0.05f;
  quant::quantize_graph(g, q);
  cfg.precision = Precision::FP16;
  try {
    bld::lower(g, cfg);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--int8"), std::string::npos) << e.what();
  }
}
