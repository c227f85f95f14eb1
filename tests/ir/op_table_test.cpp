// One table of ops: src/ir/op_registry.cpp declares every operator once; the CPU backend's kernel table
// must match it exactly, so an op without a kernel is a named failure here, never a pass-through at run
// time. (The CUDA dispatch is checked against the same registry in tests/cuda/op_table_test.cpp.)
#include <gtest/gtest.h>

#include <set>

#include "backend/cpu/kernel.h"
#include "ir/op_registry.h"

namespace {

TEST(OpTable, EveryRegisteredOpHasACpuKernel) {
  const auto ops = kestrel::supported_ops();
  ASSERT_GT(ops.size(), 50u);
  for (const std::string& op : ops) EXPECT_NE(kestrel::cpu::find_kernel(op), nullptr) << "no CPU kernel for " << op;
}

TEST(OpTable, EveryCpuKernelIsARegisteredOp) {
  for (const std::string& op : kestrel::cpu::kernel_names())
    EXPECT_NE(kestrel::find_op(op), nullptr) << "the CPU kernel table has " << op << ", which src/ir/op_registry.cpp does not declare";
}

TEST(OpTable, OpsAreDeclaredOnce) {
  const auto ops = kestrel::supported_ops();
  std::set<std::string> seen;
  for (const std::string& op : ops) EXPECT_TRUE(seen.insert(op).second) << op << " is declared twice";
}

}  // namespace
