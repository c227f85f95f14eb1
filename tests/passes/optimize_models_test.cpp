// optimize() on the real models: the optimized graph computes what the imported one does on the
// golden input, with the expected fused structure.
#include <gtest/gtest.h>

#include <cstring>

#include "graph_builder.h"
#include "kestrel/onnx.h"
#include "kestrel/passes.h"
#include "test_data.h"
#include "util/file_io.h"

namespace {
using namespace kestrel;
using namespace kestrel::test;

HostTensor golden_input() {
  const auto bytes = util::read_file(data_path("golden/000000000139.input.bin").string());
  HostTensor t(DType::F32, {1, 3, 640, 640});
  EXPECT_EQ(bytes.size(), t.nbytes());
  std::memcpy(t.raw(), bytes.data(), std::min(bytes.size(), t.nbytes()));
  return t;
}

std::string histogram_str(const Graph& g) {
  std::string s;
  for (auto& [op, n] : op_histogram(g)) s += " " + op + "=" + std::to_string(n);
  return s;
}

int count_activation(const Graph& g, const std::string& act) {
  int n = 0;
  for (auto& node : g.nodes) n += node.op == "kestrel.Conv" && node.attrs.s("activation") == act;
  return n;
}

struct ModelCase {
  const char* model;
  const char* detect_op;
};

class OptimizeModel : public ::testing::TestWithParam<ModelCase> {};

TEST_P(OptimizeModel, MatchesImportedGraph) {
  const auto [model, detect_op] = GetParam();
  const std::string rel = std::string("models/") + model + ".onnx";
  KESTREL_REQUIRE_DATA(rel);
  KESTREL_REQUIRE_DATA("golden/000000000139.input.bin");
  const Graph imported = import_onnx(data_path(rel).string());
  Graph g = imported;
  const passes::OptimizeReport report = passes::optimize(g);
  std::printf("%s: %zu -> %zu nodes\n  before:%s\n  after: %s\n%s", model, imported.nodes.size(), g.nodes.size(),
              histogram_str(imported).c_str(), histogram_str(g).c_str(), report.summary().c_str());

  // Structure: every conv fused, the SPPF and the decode single ops, no stray activations.
  EXPECT_EQ(count_op(g, "Conv"), 0);
  EXPECT_EQ(count_op(g, "kestrel.SPPF"), 1);
  EXPECT_EQ(count_op(g, "MaxPool"), 0);
  ASSERT_EQ(count_op(g, detect_op), 1);
  EXPECT_EQ(count_op(g, "Sigmoid"), 0);
  for (auto& n : g.nodes) {
    if (n.op == "Mul") {
      EXPECT_NE(n.name.find("attn"), std::string::npos) << "Mul outside attention: " << n.name;
    }
  }
  const Node* detect = find_node(g, detect_op);
  std::printf("  %s '%s': strides", detect_op, detect->name.c_str());
  for (auto s : detect->attrs.ints("strides")) std::printf(" %ld", static_cast<long>(s));
  if (detect->attrs.has("anchors")) {
    std::printf(", anchors");
    for (float a : detect->attrs.floats("anchors")) std::printf(" %g", a);
  }
  std::printf(", replaced %zu nodes, verified at relative L2 %.3g\n", fused_names(*detect).size(),
              detect->attrs.f("kestrel_verified_rel_l2"));
  EXPECT_EQ(detect->attrs.ints("strides"), (std::vector<int64_t>{8, 16, 32}));
  for (auto& n : g.nodes) {
    if (n.op.rfind("kestrel.", 0) == 0) {
      EXPECT_FALSE(fused_names(n).empty()) << n.name;
    }
  }

  const auto x = golden_input();
  const auto want = run_graph(imported, {x});
  const auto got = run_graph(g, {x});
  ASSERT_EQ(got.size(), want.size());
  const double err = rel_l2(got[0], want[0]);
  std::printf("  optimized vs imported on 000000000139: relative L2 %.3g\n", err);
  RecordProperty("rel_l2", std::to_string(err));
  EXPECT_LT(err, 1e-5);
  // And still ONNX Runtime's answer (the dynamic export shares yolov8n's golden output).
  const std::string ref_model = std::string(model) == "yolov8n-dyn" ? "yolov8n" : model;
  const std::string golden = "golden/" + ref_model + ".000000000139.output.bin";
  if (std::filesystem::exists(data_path(golden))) {
    const auto bytes = util::read_file(data_path(golden).string());
    HostTensor ort(DType::F32, got[0].shape());
    ASSERT_EQ(bytes.size(), ort.nbytes());
    std::memcpy(ort.raw(), bytes.data(), bytes.size());
    const double err_ort = rel_l2(got[0], ort);
    std::printf("  optimized vs ONNX Runtime golden: relative L2 %.3g\n", err_ort);
    EXPECT_LT(err_ort, 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, OptimizeModel,
                         ::testing::Values(ModelCase{"yolov5n", "kestrel.DetectV5"}, ModelCase{"yolov8n", "kestrel.DetectV8"},
                                           ModelCase{"yolo11n", "kestrel.DetectV8"},
                                           ModelCase{"yolov8n-dyn", "kestrel.DetectV8"}),
                         [](const auto& info) {
                           std::string s = info.param.model;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

TEST(OptimizeModel, Yolov8nCounts) {
  KESTREL_REQUIRE_DATA("models/yolov8n.onnx");
  Graph g = import_onnx(data_path("models/yolov8n.onnx").string());
  const auto report = passes::optimize(g);
  // 64 convs: 57 Conv+SiLU, the 6 final 1x1 convs of the head's box/class branches (no activation),
  // and the DFL's fixed 1x1 conv, which goes into the DetectV8.
  EXPECT_EQ(count_op(g, "kestrel.Conv"), 63);
  EXPECT_EQ(count_activation(g, "silu"), 57);
  EXPECT_EQ(count_activation(g, "none"), 6);
  EXPECT_EQ(report.rewrites("fuse_conv_activation"), 64);
  EXPECT_EQ(report.rewrites("fuse_residual_add"), 6);  // the C2f bottleneck shortcuts of the backbone
  EXPECT_EQ(report.rewrites("fuse_sppf"), 1);
  EXPECT_EQ(report.rewrites("fuse_detect_head"), 1);
  EXPECT_EQ(count_op(g, "Add"), 0);
  EXPECT_EQ(count_op(g, "Mul"), 0);
  EXPECT_EQ(count_op(g, "kestrel.SPPF"), 1);
  EXPECT_EQ(count_op(g, "kestrel.DetectV8"), 1);
  for (auto& n : g.nodes) {
    if (n.op == "kestrel.Conv" && n.attrs.s("activation") == "none") {
      EXPECT_NE(n.name.find("/model.22/"), std::string::npos) << n.name << " is not a head conv";
      EXPECT_EQ(n.attrs.ints("kernel_shape"), (std::vector<int64_t>{1, 1})) << n.name;
    }
  }
}

TEST(OptimizeModel, DynamicBatchOfTwo) {
  // The fused decode takes its batch from its inputs; the v5 anchor probe must read image 0 only.
  for (const char* model : {"yolov8n-dyn", "yolov5n"}) {
    const std::string rel = std::string("models/") + model + ".onnx";
    KESTREL_REQUIRE_DATA(rel);
    KESTREL_REQUIRE_DATA("golden/000000000139.input.bin");
    ImportOptions io;
    io.batch = 2;
    const Graph imported = import_onnx(data_path(rel).string(), io);
    Graph g = imported;
    const auto report = passes::optimize(g);
    EXPECT_EQ(report.rewrites("fuse_detect_head"), 1) << model;
    const HostTensor one = golden_input();
    HostTensor two(DType::F32, {2, 3, 640, 640});
    std::memcpy(two.raw(), one.raw(), one.nbytes());
    float* second = two.data<float>() + one.numel();
    for (int64_t i = 0; i < one.numel(); ++i) second[i] = one.data<float>()[one.numel() - 1 - i];  // another image
    const double err = rel_l2(run_graph(g, {two})[0], run_graph(imported, {two})[0]);
    std::printf("%s at batch 2: optimized vs imported relative L2 %.3g\n", model, err);
    EXPECT_LT(err, 1e-5) << model;
  }
}

TEST(OptimizeModel, SecondRunFindsNothing) {
  KESTREL_REQUIRE_DATA("models/yolo11n.onnx");
  Graph g = import_onnx(data_path("models/yolo11n.onnx").string());
  passes::optimize(g);
  const size_t nodes = g.nodes.size();
  const auto again = passes::optimize(g);
  for (auto& p : again.passes) EXPECT_EQ(p.rewrites, 0) << p.name;
  EXPECT_EQ(g.nodes.size(), nodes);
}

TEST(OptimizeModel, PassesCanBeDisabled) {
  KESTREL_REQUIRE_DATA("models/yolov8n.onnx");
  const Graph imported = import_onnx(data_path("models/yolov8n.onnx").string());
  Graph g = imported;
  passes::OptimizeOptions o;
  o.fuse_detect_head = false;
  o.fuse_sppf = false;
  o.fuse_residual_add = false;
  const auto report = passes::optimize(g, o);
  EXPECT_EQ(report.rewrites("fuse_detect_head"), 0);
  EXPECT_EQ(count_op(g, "MaxPool"), 3);
  EXPECT_EQ(count_op(g, "Add"), 8);
  EXPECT_EQ(count_op(g, "Softmax"), 1);
  EXPECT_EQ(count_op(g, "Conv"), 0);

  Graph none = imported;
  passes::OptimizeOptions off{false, false, false, false, false, false, false};
  const auto r2 = passes::optimize(none, off);
  EXPECT_TRUE(r2.passes.empty());
  EXPECT_EQ(none.nodes.size(), imported.nodes.size());
}

}  // namespace
