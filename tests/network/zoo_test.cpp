// The built-in zoo against the real exports: same parameter count, same Conv shapes in the same order,
// same op sequence, and -- with the export's weights loaded -- the same outputs as ONNX Runtime.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <cmath>
#include <cstring>
#include <map>

#include "kestrel/cpu_backend.h"
#include "kestrel/onnx.h"
#include "kestrel/zoo.h"
#include "test_data.h"
#include "util/file_io.h"

namespace {

using kestrel::Graph;
using kestrel::HostTensor;
using kestrel::Shape;

HostTensor read_f32(const std::string& path, Shape shape) {
  auto bytes = kestrel::util::read_file(path);
  HostTensor t(kestrel::DType::F32, shape);
  EXPECT_EQ(bytes.size(), t.nbytes()) << path;
  std::memcpy(t.raw(), bytes.data(), std::min(bytes.size(), t.nbytes()));
  return t;
}

double rel_l2(const HostTensor& a, const HostTensor& b) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = static_cast<double>(a.data<float>()[i]) - b.data<float>()[i];
    num += d * d;
    den += static_cast<double>(b.data<float>()[i]) * b.data<float>()[i];
  }
  return std::sqrt(num / den);
}

std::vector<const kestrel::Node*> convs(const Graph& g) {
  std::vector<const kestrel::Node*> v;
  for (auto& n : g.nodes)
    if (n.op == "Conv") v.push_back(&n);
  return v;
}

std::string expect_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const kestrel::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no kestrel::Error thrown";
  return "";
}

// ---------------------------------------------------------------------------------------------------
class ZooVsExport : public ::testing::TestWithParam<const char*> {};

TEST_P(ZooVsExport, SameParametersConvShapesAndOps) {
  const std::string model = GetParam();
  const std::string onnx = "models/" + model + ".onnx";
  KESTREL_REQUIRE_DATA(onnx);
  const Graph ref = kestrel::import_onnx(kestrel::test::data_path(onnx));
  const Graph g = kestrel::zoo::build(model);

  EXPECT_EQ(g.parameter_count(), ref.parameter_count());
  std::printf("%s: zoo %lld parameters, export %lld\n", model.c_str(), static_cast<long long>(g.parameter_count()),
              static_cast<long long>(ref.parameter_count()));

  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.outputs[0], "output0");
  EXPECT_EQ(g.inputs, std::vector<std::string>{"images"});
  EXPECT_EQ(g.value("output0").shape, ref.value(ref.outputs[0]).shape);

  const auto a = convs(g), b = convs(ref);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE("Conv #" + std::to_string(i) + " " + a[i]->name + " vs " + b[i]->name);
    EXPECT_EQ(a[i]->name, b[i]->name);  // the zoo reproduces the exporter's scopes
    EXPECT_EQ(g.value(a[i]->inputs[1]).shape, ref.value(b[i]->inputs[1]).shape);
    EXPECT_EQ(a[i]->inputs.size(), b[i]->inputs.size());
    EXPECT_EQ(g.value(a[i]->outputs[0]).shape, ref.value(b[i]->outputs[0]).shape);
    for (const char* attr : {"strides", "pads", "dilations", "kernel_shape"})
      EXPECT_EQ(a[i]->attrs.ints(attr), b[i]->attrs.ints(attr)) << attr;
    EXPECT_EQ(a[i]->attrs.i("group"), b[i]->attrs.i("group"));
  }

  // Node for node, the same op sequence (Split/Slice choices included).
  std::vector<std::string> ops_a, ops_b;
  for (auto& n : g.nodes) ops_a.push_back(n.op);
  for (auto& n : ref.nodes) ops_b.push_back(n.op);
  EXPECT_EQ(ops_a, ops_b);
}

TEST_P(ZooVsExport, ReproducesGoldenOutputsWithExportWeights) {
  const std::string model = GetParam();
  const std::string onnx = "models/" + model + ".onnx";
  KESTREL_REQUIRE_DATA(onnx);
  const Graph ref = kestrel::import_onnx(kestrel::test::data_path(onnx));
  Graph g = kestrel::zoo::build(model);
  const size_t copied = kestrel::load_weights_from(g, ref);
  EXPECT_EQ(copied, 2 * convs(g).size() - 1);  // every Conv has a bias except DFL's
  EXPECT_EQ(g.parameter_count(), ref.parameter_count());
  kestrel::CpuExecutor exec(g), ref_exec(ref);
  for (const char* image : {"000000000139", "000000037777"}) {
    const std::string in = std::string("golden/") + image + ".input.bin";
    const std::string out = "golden/" + model + "." + image + ".output.bin";
    KESTREL_REQUIRE_DATA(out);
    const HostTensor x = read_f32(kestrel::test::data_path(in), {1, 3, 640, 640});
    auto y = exec.run({x});
    ASSERT_EQ(y.size(), 1u);
    ASSERT_EQ(y[0].shape(), (Shape{1, 84, 8400}));
    const double err = rel_l2(y[0], read_f32(kestrel::test::data_path(out), y[0].shape()));
    // The same op sequence on the same backend should give the imported graph's result exactly.
    const double vs_import = rel_l2(y[0], ref_exec.run({x})[0]);
    RecordProperty(std::string("rel_l2_") + image, std::to_string(err));
    std::printf("zoo %s + export weights on %s: relative L2 %.3g vs ONNX Runtime, %.3g vs the imported graph\n",
                model.c_str(), image, err, vs_import);
    EXPECT_LT(err, 1e-5);
    EXPECT_LT(vs_import, 1e-7);
  }
}

INSTANTIATE_TEST_SUITE_P(Nano, ZooVsExport, ::testing::Values("yolov8n", "yolo11n"));

// ---------------------------------------------------------------------------------------------------
struct ScaleCase {
  const char* name;
  double published_params;  // Ultralytics' README figures (fused; rounded to 0.1M except for the nano exports)
  int64_t exact_params;     // ours, exactly; they equal the "summary (fused)" lines Ultralytics prints
};

void PrintTo(const ScaleCase& c, std::ostream* os) { *os << c.name; }

class ZooScales : public ::testing::TestWithParam<ScaleCase> {};

TEST_P(ZooScales, BuildsAtEveryImageSizeWithPublishedParameterCount) {
  const auto [name, published, exact] = GetParam();
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t imgsz : {640, 320}) {
    kestrel::zoo::BuildOptions o;
    o.batch = 2;
    o.imgsz = imgsz;
    const Graph g = kestrel::zoo::build(name, o);
    const int64_t anchors = (imgsz / 8) * (imgsz / 8) + (imgsz / 16) * (imgsz / 16) + (imgsz / 32) * (imgsz / 32);
    EXPECT_EQ(g.value("images").shape, (Shape{2, 3, imgsz, imgsz}));
    EXPECT_EQ(g.value("output0").shape, (Shape{2, 84, anchors}));
    const std::string side = std::to_string(imgsz);
    EXPECT_EQ(g.metadata.at("imgsz"), std::string("[").append(side).append(", ").append(side).append("]"));
    if (imgsz == 640) {
      const double p = static_cast<double>(g.parameter_count());
      std::printf("%s: %lld parameters (published %.1fM, %+.2f%%)\n", name, static_cast<long long>(g.parameter_count()),
                  published / 1e6, 100.0 * (p - published) / published);
      RecordProperty("parameters", std::to_string(g.parameter_count()));
      EXPECT_NEAR(p, published, 0.01 * published);
      EXPECT_EQ(g.parameter_count(), exact);
    }
  }
  std::printf("%s: built twice in %.2f s\n", name,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

INSTANTIATE_TEST_SUITE_P(All, ZooScales,
                         ::testing::Values(ScaleCase{"yolov8n", 3.151904e6, 3151904}, ScaleCase{"yolov8s", 11.2e6, 11156544},
                                           ScaleCase{"yolov8m", 25.9e6, 25886080}, ScaleCase{"yolov8l", 43.7e6, 43668288},
                                           ScaleCase{"yolov8x", 68.2e6, 68200608}, ScaleCase{"yolo11n", 2.616248e6, 2616248},
                                           ScaleCase{"yolo11s", 9.4e6, 9443760}, ScaleCase{"yolo11m", 20.1e6, 20091712},
                                           ScaleCase{"yolo11l", 25.3e6, 25340992}, ScaleCase{"yolo11x", 56.9e6, 56919424}),
                         [](const auto& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------------------------------
TEST(Zoo, NamesListEveryScaleOfBothFamilies) {
  const auto& n = kestrel::zoo::names();
  EXPECT_EQ(n, (std::vector<std::string>{"yolov8n", "yolov8s", "yolov8m", "yolov8l", "yolov8x", "yolo11n", "yolo11s",
                                         "yolo11m", "yolo11l", "yolo11x"}));
  EXPECT_TRUE(kestrel::zoo::has("YOLOv8n"));
  EXPECT_FALSE(kestrel::zoo::has("yolov9n"));
  const auto s = kestrel::zoo::scale_of("yolo11x");
  EXPECT_DOUBLE_EQ(s.depth, 1.0);
  EXPECT_DOUBLE_EQ(s.width, 1.5);
  EXPECT_EQ(s.max_channels, 512);
}

TEST(Zoo, UnknownNameListsTheValidOnes) {
  const std::string msg = expect_message([] { kestrel::zoo::build("yolov9n"); });
  EXPECT_NE(msg.find("yolov9n"), std::string::npos) << msg;
  EXPECT_NE(msg.find("yolov8n"), std::string::npos) << msg;
  EXPECT_NE(msg.find("yolo11x"), std::string::npos) << msg;
}

TEST(Zoo, RejectsBadOptions) {
  kestrel::zoo::BuildOptions o;
  o.imgsz = 100;
  EXPECT_NE(expect_message([&] { kestrel::zoo::build("yolov8n", o); }).find("multiple of 32"), std::string::npos);
  o.imgsz = 640;
  o.batch = 0;
  EXPECT_NE(expect_message([&] { kestrel::zoo::build("yolov8n", o); }).find("batch"), std::string::npos);
}

TEST(Zoo, UltralyticsMetadata) {
  const Graph g = kestrel::zoo::build("yolo11n");
  EXPECT_EQ(g.metadata.at("stride"), "32");
  EXPECT_EQ(g.metadata.at("imgsz"), "[640, 640]");
  EXPECT_EQ(g.metadata.at("task"), "detect");
  const std::string& names = g.metadata.at("names");
  EXPECT_EQ(names.rfind("{0: 'person', 1: 'bicycle', 2: 'car', ", 0), 0u) << names;
  EXPECT_NE(names.find("79: 'toothbrush'}"), std::string::npos) << names;
}

TEST(Zoo, CustomClassCount) {
  kestrel::zoo::BuildOptions o;
  o.num_classes = 3;
  o.imgsz = 320;
  const Graph g = kestrel::zoo::build("yolov8n", o);
  EXPECT_EQ(g.value("output0").shape, (Shape{1, 7, 2100}));
  EXPECT_EQ(g.metadata.at("names"), "{0: 'class0', 1: 'class1', 2: 'class2'}");
}

TEST(Zoo, SeededWeightsAreDeterministic) {
  kestrel::zoo::BuildOptions o;
  o.imgsz = 320;
  const Graph a = kestrel::zoo::build("yolov8n", o), b = kestrel::zoo::build("yolov8n", o);
  o.seed = 1;
  const Graph c = kestrel::zoo::build("yolov8n", o);
  const auto& w = "model.4.m.1.cv2.conv.weight";
  const auto va = a.value(w).constant->to_f32(), vb = b.value(w).constant->to_f32(), vc = c.value(w).constant->to_f32();
  EXPECT_EQ(va, vb);
  EXPECT_NE(va, vc);
  // fan-in scaling: std of N(0,1)/sqrt(32*3*3) is 1/sqrt(288) ~ 0.059
  double ss = 0;
  for (float v : va) ss += v * v;
  EXPECT_NEAR(std::sqrt(ss / va.size()), 1.0 / std::sqrt(288.0), 0.006);
}

TEST(Zoo, RandomWeightGraphRunsOnCpu) {
  kestrel::zoo::BuildOptions o;
  o.imgsz = 160;
  o.batch = 2;
  const Graph g = kestrel::zoo::build("yolo11n", o);
  kestrel::CpuExecutor exec(g);
  HostTensor x(kestrel::DType::F32, {2, 3, 160, 160});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>((i * 7919) % 255) / 255.f;
  auto y = exec.run({x});
  ASSERT_EQ(y[0].shape(), (Shape{2, 84, 525}));
  for (float v : y[0].span<float>()) ASSERT_TRUE(std::isfinite(v));
  // class scores are sigmoids
  for (int64_t a = 0; a < 525; ++a) {
    const float s = y[0].data<float>()[4 * 525 + a];
    ASSERT_GE(s, 0.f);
    ASSERT_LE(s, 1.f);
  }
}

// ---------------------------------------------------------------------------------------------------
TEST(LoadModel, ZooNameOnnxFileAndUnknown) {
  kestrel::LoadOptions o;
  o.imgsz = 320;
  o.batch = 2;
  const Graph z = kestrel::load_model("yolov8n", o);
  EXPECT_EQ(z.value("output0").shape, (Shape{2, 84, 2100}));

  const std::string msg = expect_message([] { kestrel::load_model("resnet50"); });
  EXPECT_NE(msg.find("resnet50"), std::string::npos) << msg;
  EXPECT_NE(msg.find("yolo11m"), std::string::npos) << msg;
  EXPECT_NE(expect_message([] { kestrel::load_model("/nonexistent/model.onnx"); }).find("does not exist"), std::string::npos);

  KESTREL_REQUIRE_DATA("models/yolov8n.onnx");
  const Graph g = kestrel::load_model(kestrel::test::data_path("models/yolov8n.onnx").string());
  EXPECT_EQ(g.parameter_count(), 3151904);
}

TEST(LoadWeights, MismatchesAreClearErrors) {
  KESTREL_REQUIRE_DATA("models/yolov8n.onnx");
  const Graph v8 = kestrel::import_onnx(kestrel::test::data_path("models/yolov8n.onnx"));
  Graph y11 = kestrel::zoo::build("yolo11n");
  const std::string count = expect_message([&] { kestrel::load_weights_from(y11, v8); });
  EXPECT_NE(count.find("Conv nodes"), std::string::npos) << count;

  kestrel::zoo::BuildOptions o;
  o.imgsz = 320;
  Graph v8s = kestrel::zoo::build("yolov8s", o);
  const auto before = v8s.value("model.0.conv.weight").constant->to_f32();
  const std::string shape = expect_message([&] { kestrel::load_weights_from(v8s, v8); });
  EXPECT_NE(shape.find("/model.0/conv/Conv"), std::string::npos) << shape;
  EXPECT_NE(shape.find("[32,3,3,3]"), std::string::npos) << shape;
  EXPECT_NE(shape.find("[16,3,3,3]"), std::string::npos) << shape;
  EXPECT_EQ(v8s.value("model.0.conv.weight").constant->to_f32(), before);  // untouched on error
}

}  // namespace
