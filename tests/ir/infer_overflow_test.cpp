// Shape inference on a malformed model's constants (found by the importer fuzzer): arithmetic that
// would overflow int64 is an error naming the node, never undefined behaviour.
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "kestrel/error.h"
#include "kestrel/graph.h"

namespace {
using namespace kestrel;

// x [1, 3, 4, 4] -> op(x, param) -> y
Graph one_node(const std::string& op, HostTensor param) {
  Graph g;
  g.add_value(Value{"x", DType::F32, {1, 3, 4, 4}, true, std::nullopt});
  Value p{"p", param.dtype(), param.shape(), true, std::nullopt};
  p.constant = std::move(param);
  g.add_value(std::move(p));
  g.add_value(Value{"y", DType::F32, {}, false, std::nullopt});
  g.inputs = {"x"};
  g.outputs = {"y"};
  g.nodes.push_back(Node{"n", op, {"x", "p"}, {"y"}, {}});
  return g;
}

void expect_overflow_error(Graph g) {
  try {
    g.infer_shapes();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("overflows"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'n'"), std::string::npos) << e.what();
  }
}

TEST(InferShapes, HugeTileRepeatsAreAnError) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  expect_overflow_error(one_node("Tile", HostTensor::from_i64({4}, {1, 3, 1, big})));
}

TEST(InferShapes, HugePadsAreAnError) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  expect_overflow_error(one_node("Pad", HostTensor::from_i64({8}, {0, 0, 0, big, 0, 0, 0, big})));
}

TEST(InferShapes, HugeReshapeTargetIsAnError) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  expect_overflow_error(one_node("Reshape", HostTensor::from_i64({3}, {big, big, -1})));
}

// A node without its first output (the importer fuzzer's Relu with none) would have a kernel write
// into nothing: shape inference refuses it, naming the node.
TEST(InferShapes, NodeWithoutOutputIsAnError) {
  for (const std::vector<std::string>& outs : {std::vector<std::string>{}, std::vector<std::string>{""}}) {
    Graph g;
    g.add_value(Value{"x", DType::F32, {1, 3, 4, 4}, true, std::nullopt});
    g.inputs = {"x"};
    g.nodes.push_back(Node{"relu_0", "Relu", {"x"}, outs, {}});
    try {
      g.infer_shapes();
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("Relu node 'relu_0': has no output"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
