// The CUDA dispatch (src/backend/cuda/dispatch.cpp) against the one operator registry
// (src/ir/op_registry.cpp): every registered op has a CUDA layer, or is resolved by the builder before
// lowering (listed here with how); every CUDA layer is a registered op or one of the builder's own
// lowered forms. An op missing on either side is a named failure. Needs no GPU.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "backend/cuda/layer.h"
#include "ir/op_registry.h"

namespace {

// Registered ops that never reach a CUDA layer, and why.
const std::map<std::string, std::string> kResolvedByTheBuilder = {
    {"BatchNormalization", "folded into the preceding Conv (passes/fold_batchnorm)"},
    {"Constant", "constant folding"},
    {"ConstantOfShape", "constant folding (static shapes)"},
    {"Range", "constant folding (static shapes)"},
    {"Shape", "constant folding (static shapes)"},
    {"QuantizeLinear", "Q/DQ graphs lower to kestrel.QuantizeInt8 / kestrel.ConvInt8"},
    {"DequantizeLinear", "Q/DQ graphs lower to kestrel.ConvInt8"},
};
// The builder's lowered forms: CUDA layers without a registry entry (engine-internal ops).
const std::set<std::string> kLoweredForms = {"kestrel.ConvStem", "kestrel.ConvInt8", "kestrel.ConvInt8Stem",
                                             "kestrel.QuantizeInt8", "kestrel.Convert"};

TEST(CudaOpTable, EveryRegisteredOpHasACudaLayerOrIsResolvedByTheBuilder) {
  const auto gpu = kestrel::cuda::gpu_ops();
  const std::set<std::string> cuda(gpu.begin(), gpu.end());
  for (const std::string& op : kestrel::supported_ops()) {
    const bool layer = cuda.count(op) > 0, resolved = kResolvedByTheBuilder.count(op) > 0;
    EXPECT_TRUE(layer || resolved) << "no CUDA layer for " << op;
    EXPECT_FALSE(layer && resolved) << op << " has a CUDA layer: take it off the resolved-by-the-builder list";
  }
  for (const auto& [op, how] : kResolvedByTheBuilder) EXPECT_NE(kestrel::find_op(op), nullptr) << op << " (" << how << ")";
}

TEST(CudaOpTable, EveryCudaLayerIsARegisteredOpOrALoweredForm) {
  for (const std::string& op : kestrel::cuda::gpu_ops())
    EXPECT_TRUE(kestrel::find_op(op) != nullptr || kLoweredForms.count(op) > 0)
        << "the CUDA dispatch has " << op << ", which is neither registered nor a lowered form";
}

}  // namespace
