// Timing as the engine runs: cuda::TimedGraph replays exactly the captured work and times each marked
// part, and a failure while capturing leaves the stream usable.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cuda/graph_timing.h"
#include "gpu_test_util.h"

namespace {

using namespace kestrel;

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { EXPECT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess); }
  ~Stream() { cudaStreamDestroy(s); }
};

TEST(GpuTimedGraph, ReplaysTheWorkAndTimesEachPart) {
  KESTREL_REQUIRE_GPU();
  Stream st;
  const size_t big = 64u << 20, small = 4096;
  test::DevBuf a(big), b(small);
  cuda::TimedGraph g(st.s, [&](cudaStream_t s, const std::function<void()>& mark) {
    ASSERT_EQ(cudaMemsetAsync(a.p, 0x11, big, s), cudaSuccess);
    mark();
    ASSERT_EQ(cudaMemcpyAsync(b.p, a.p, small, cudaMemcpyDeviceToDevice, s), cudaSuccess);
    mark();
  });
  EXPECT_EQ(g.parts(), 2);
  for (int round = 0; round < 2; ++round) {
    // Poisoned before each replay: the replay itself must write them again.
    ASSERT_EQ(cudaMemset(a.p, 0xff, big), cudaSuccess);
    ASSERT_EQ(cudaMemset(b.p, 0xff, small), cudaSuccess);
    const std::vector<float> ms = g.replay();
    ASSERT_EQ(ms.size(), 2u);
    EXPECT_GT(ms[0], 0.f);  // 64 MiB written: never zero
    EXPECT_GE(ms[1], 0.f);
    EXPECT_TRUE(std::isfinite(ms[0]) && std::isfinite(ms[1]));
    for (uint8_t v : b.download<uint8_t>()) ASSERT_EQ(v, 0x11);
  }
}

TEST(GpuTimedGraph, AFailureWhileCapturingLeavesTheStreamUsable) {
  KESTREL_REQUIRE_GPU();
  Stream st;
  test::DevBuf a(4096);
  EXPECT_THROW(cuda::TimedGraph(st.s,
                                [&](cudaStream_t s, const std::function<void()>& mark) {
                                  ASSERT_EQ(cudaMemsetAsync(a.p, 0, 4096, s), cudaSuccess);
                                  mark();
                                  throw Error("refused at run time");
                                }),
               Error);
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusActive;
  ASSERT_EQ(cudaStreamIsCapturing(st.s, &status), cudaSuccess);
  EXPECT_EQ(status, cudaStreamCaptureStatusNone);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(a.p, 0x22, 4096, st.s), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(st.s), cudaSuccess);
  for (uint8_t v : a.download<uint8_t>()) ASSERT_EQ(v, 0x22);
}

}  // namespace
