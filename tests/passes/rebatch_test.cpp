// passes::rebatch: a graph re-batched in memory computes, bit for bit, what the graph loaded at that
// batch computes, for the zoo's models (raw and optimized) and the exported ONNX files; a graph whose
// outputs do not follow the batch is refused by name.
#include <gtest/gtest.h>

#include <cstring>

#include "graph_builder.h"
#include "kestrel/onnx.h"
#include "kestrel/passes.h"
#include "kestrel/zoo.h"
#include "test_data.h"

namespace {
using namespace kestrel;
using namespace kestrel::test;

// Every output bit for bit: the same graph at another batch must not change a single value.
void expect_same_outputs(const Graph& a, const Graph& b, const std::vector<HostTensor>& x) {
  const auto ya = run_graph(a, x), yb = run_graph(b, x);
  ASSERT_EQ(ya.size(), yb.size());
  for (size_t i = 0; i < ya.size(); ++i) {
    ASSERT_EQ(ya[i].shape(), yb[i].shape());
    EXPECT_EQ(std::memcmp(ya[i].raw(), yb[i].raw(), ya[i].nbytes()), 0) << "output " << i;
  }
}

Graph zoo(const std::string& name, int64_t batch) {
  LoadOptions o;
  o.batch = batch;
  o.imgsz = 96;
  return load_model(name, o);
}

class RebatchZoo : public ::testing::TestWithParam<const char*> {};

TEST_P(RebatchZoo, EqualsTheModelLoadedAtThatBatch) {
  const Graph b1 = zoo(GetParam(), 1);
  Graph up = b1;
  passes::rebatch(up, 3);
  EXPECT_EQ(up.batch(), 3);
  expect_same_outputs(up, zoo(GetParam(), 3), random_inputs(up, 11, 0.f, 1.f));
}

TEST_P(RebatchZoo, OptimizedGraphGoesDownAndUp) {
  Graph g = zoo(GetParam(), 4);
  passes::optimize(g);
  Graph down = g;
  passes::rebatch(down, 2);
  Graph ref = zoo(GetParam(), 2);
  passes::optimize(ref);
  expect_same_outputs(down, ref, random_inputs(down, 5, 0.f, 1.f));
  passes::rebatch(down, 4);
  expect_same_outputs(down, g, random_inputs(g, 6, 0.f, 1.f));
}

INSTANTIATE_TEST_SUITE_P(Models, RebatchZoo, ::testing::Values("yolov8n", "yolo11n"));

// Exported files bake the batch into Reshape targets; the static and the dynamic-batch export both.
TEST(Rebatch, OnnxExports) {
  for (const char* m : {"yolov8n", "yolov8n-dyn", "yolov5n", "yolo11n"}) {
    const std::string rel = std::string("models/") + m + ".onnx";
    KESTREL_REQUIRE_DATA(rel);
    ImportOptions io;
    io.imgsz = 0;
    Graph g = import_onnx(data_path(rel).string(), io);
    passes::optimize(g);
    passes::rebatch(g, 2);
    io.batch = 2;
    Graph ref = import_onnx(data_path(rel).string(), io);
    passes::optimize(ref);
    expect_same_outputs(g, ref, random_inputs(g, 3, 0.f, 1.f));
  }
}

TEST(Rebatch, OutputThatDoesNotFollowTheBatchIsRefused) {
  GraphBuilder b;
  const std::string x = b.input("x", {2, 3, 4});
  const std::string y = b.node("ReduceSum", {x}, attrs({{"axes", std::vector<int64_t>{0}}, {"keepdims", int64_t{1}}}));
  b.graph().outputs = {y};
  Graph g = b.build();
  try {
    passes::rebatch(g, 5);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not follow the batch"), std::string::npos) << e.what();
  }
}

TEST(Rebatch, SameBatchIsANoOpAndZeroIsAnError) {
  Graph g = zoo("yolov8n", 2);
  const size_t nodes = g.nodes.size();
  passes::rebatch(g, 2);
  EXPECT_EQ(g.nodes.size(), nodes);
  EXPECT_THROW(passes::rebatch(g, 0), Error);
}

}  // namespace
