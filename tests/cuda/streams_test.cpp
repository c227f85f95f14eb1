// Auxiliary streams (runtime/stream_schedule.h).
//   *Host  (no GPU): overlap of strided regions, hazards, the stream choice, buffer join points and
//          the waits a run needs, on hand-made layers.
//   GPU    an engine whose branches run on auxiliary streams gives the bytes of the same engine on one
//          stream, with CUDA graphs on and off, over repeated runs (a missing wait shows as a race).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "gpu_test_util.h"
#include "kestrel/zoo.h"
#include "runtime/stream_schedule.h"

namespace {

using namespace kestrel;
using rt::Region;

// A channels-last slice of `channels` fp16 channels at `first` in a [1, pitch_channels, 4, 4] buffer.
Region nhwc_slice(int64_t first, int64_t channels, int64_t pitch_channels = 144, int64_t space = 0) {
  Region r;
  r.space = space;
  r.offset = first * 2;
  r.elem_bytes = 2;
  r.shape = {1, channels, 4, 4};
  r.strides = {16 * pitch_channels * 2, 2, 4 * pitch_channels * 2, pitch_channels * 2};
  return r;
}

Region bytes(int64_t offset, int64_t n, int64_t space = 0) {
  Region r;
  r.space = space;
  r.offset = offset;
  r.shape = {n};
  r.strides = {1};
  return r;
}

TEST(StreamsHost, RegionsOverlap) {
  EXPECT_TRUE(rt::may_overlap(bytes(0, 100), bytes(99, 10)));
  EXPECT_FALSE(rt::may_overlap(bytes(0, 100), bytes(100, 10)));  // adjacent
  EXPECT_FALSE(rt::may_overlap(bytes(0, 100), bytes(0, 100, 1)));  // another space
  EXPECT_FALSE(rt::may_overlap(bytes(0, 0), bytes(0, 100)));       // empty
  // The box and class halves of one channels-last concat buffer: hulls overlap, bytes do not.
  EXPECT_FALSE(rt::may_overlap(nhwc_slice(0, 64), nhwc_slice(64, 80)));
  EXPECT_FALSE(rt::may_overlap(nhwc_slice(64, 80), nhwc_slice(0, 64)));
  EXPECT_TRUE(rt::may_overlap(nhwc_slice(0, 64), nhwc_slice(63, 80)));   // one shared channel
  EXPECT_TRUE(rt::may_overlap(nhwc_slice(0, 144), nhwc_slice(64, 80)));  // the whole buffer
  EXPECT_TRUE(rt::may_overlap(nhwc_slice(0, 64), bytes(0, 4)));
  EXPECT_FALSE(rt::may_overlap(nhwc_slice(0, 64), bytes(16 * 144 * 2, 4)));  // past the hull
  // A run that would cross the pitch (wrap into the next pixel) is not taken as disjoint.
  EXPECT_TRUE(rt::may_overlap(nhwc_slice(100, 80, 144), nhwc_slice(0, 30, 144)));
}

std::vector<rt::LayerAccess> access(std::initializer_list<std::pair<std::vector<Region>, std::vector<Region>>> l) {
  std::vector<rt::LayerAccess> out;
  for (const auto& [r, w] : l) out.push_back({r, w});
  return out;
}

TEST(StreamsHost, HazardsAreReadAfterWriteWriteAfterReadAndWriteAfterWrite) {
  const auto a = bytes(0, 64), b = bytes(64, 64), c = bytes(128, 64);
  const auto deps = rt::memory_hazards(access({
      {{}, {a}},   // 0 writes a
      {{a}, {b}},  // 1 reads a (after 0), writes b
      {{a}, {c}},  // 2 reads a (after 0): independent of 1
      {{}, {a}},   // 3 overwrites a: after its readers 1 and 2 and its writer 0
      {{b}, {b}},  // 4 in place on b: after 1
  }));
  ASSERT_EQ(deps.size(), 5u);
  EXPECT_EQ(deps[0], std::vector<int>{});
  EXPECT_EQ(deps[1], std::vector<int>{0});
  EXPECT_EQ(deps[2], std::vector<int>{0});
  EXPECT_EQ(deps[3], (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(deps[4], std::vector<int>{1});
}

// A fork and a join: 0 -> {1 -> 2, 3 -> 4} -> 5, listed as a detection head is (one branch, then the other).
const std::vector<std::vector<int>> kDiamond = {{}, {0}, {1}, {0}, {3}, {2, 4}};

TEST(StreamsHost, BranchesGetTheirOwnStream) {
  const std::vector<int> s = rt::assign_streams(kDiamond, 4);
  EXPECT_EQ(s[0], s[1]);
  EXPECT_EQ(s[1], s[2]);  // a chain stays on its stream
  EXPECT_NE(s[3], s[1]);  // the second branch runs beside the first
  EXPECT_EQ(s[3], s[4]);
  EXPECT_EQ(rt::assign_streams(kDiamond, 1), std::vector<int>(6, 0));
  // A chain never leaves stream 0.
  EXPECT_EQ(rt::assign_streams({{}, {0}, {1}, {2}}, 8), std::vector<int>(4, 0));
  // Streams run out: the third branch shares the stream idle longest.
  const std::vector<int> t = rt::assign_streams({{}, {0}, {0}, {0}, {1, 2, 3}}, 2);
  EXPECT_NE(t[1], t[2]);
  EXPECT_LT(*std::max_element(t.begin(), t.end()), 2);
}

TEST(StreamsHost, BuffersAreKeptUntilEveryLaterLayerFollows) {
  // One stream: a buffer may be reused right after its last use.
  EXPECT_EQ(rt::join_positions(kDiamond, std::vector<int>(6, 0)), (std::vector<int>{1, 2, 3, 4, 5, 6}));
  // Branches side by side: what the first branch touches stays until the join (layer 5).
  const std::vector<int> j = rt::join_positions(kDiamond, {0, 0, 0, 1, 1, 0});
  EXPECT_EQ(j[0], 1);  // everything after 0 follows it
  EXPECT_EQ(j[1], 5);  // 3 and 4 may run during 1 and 2
  EXPECT_EQ(j[2], 5);
  EXPECT_EQ(j[3], 4);  // 4 and 5 follow it
  EXPECT_EQ(j[4], 5);
  EXPECT_EQ(j[5], 6);
}

TEST(StreamsHost, WaitsAreTheCrossStreamDependenciesNotYetImplied) {
  const rt::StreamSync s = rt::stream_sync(kDiamond, {0, 0, 0, 1, 1, 0});
  EXPECT_EQ(s.streams, 2);
  EXPECT_EQ(s.waits[3], std::vector<int>{0});  // the fork
  EXPECT_EQ(s.waits[4], std::vector<int>{});   // stream order
  EXPECT_EQ(s.waits[5], std::vector<int>{4});  // the join
  EXPECT_TRUE(s.records[0] && s.records[4]);
  EXPECT_FALSE(s.records[1] || s.records[2] || s.records[3] || s.records[5]);
  // A wait for a later layer of a stream covers the earlier ones: 3 depends on 0 and 1 (both stream 0)
  // and waits once, for 1; 4 depends on 0 again, which stream 1 already waited past.
  const rt::StreamSync t = rt::stream_sync({{}, {0}, {}, {0, 1}, {0, 3}}, {0, 0, 1, 1, 1});
  EXPECT_EQ(t.waits[3], std::vector<int>{1});
  EXPECT_EQ(t.waits[4], std::vector<int>{});
  EXPECT_FALSE(t.records[0]);
  // One stream: no waits at all.
  const rt::StreamSync u = rt::stream_sync(kDiamond, std::vector<int>(6, 0));
  EXPECT_EQ(u.streams, 1);
  for (const auto& w : u.waits) EXPECT_TRUE(w.empty());
}

// ----------------------------------------------------------------------------------------------------
// GPU

HostTensor run_bytes(ExecutionContext& ctx, const HostTensor& x) { return test::run_poisoned(ctx, {x})[0]; }

bool same_bytes(const HostTensor& a, const HostTensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

TEST(Streams, BranchesSideBySideGiveTheSequentialBytes) {
  KESTREL_REQUIRE_GPU();
  LoadOptions o;
  o.batch = 2;
  o.imgsz = 160;
  const Graph g = load_model("yolo11n", o);
  BuilderConfig c = test::config(Precision::FP16);
  c.reference_tactics = true;  // the same kernels in both engines: any difference is the schedule's
  c.max_aux_streams = 0;
  auto sequential = Builder().build(g, c);
  c.max_aux_streams = kDefaultMaxAuxStreams;
  auto side_by_side = Builder().build(g, c);
  int on_aux = 0;
  for (const EngineLayerInfo& l : side_by_side->info().layers) on_aux += l.stream > 0;
  for (const EngineLayerInfo& l : sequential->info().layers) EXPECT_EQ(l.stream, 0) << l.name;
  EXPECT_GE(on_aux, 6) << "the detection head's branches should run on auxiliary streams";
  std::printf("[streams] yolo11n: %d of %zu layers on auxiliary streams; arena %.2f MiB (one stream: %.2f MiB)\n", on_aux,
              side_by_side->info().layers.size(), side_by_side->info().arena_bytes / 1048576.0,
              sequential->info().arena_bytes / 1048576.0);

  const HostTensor x = test::random_tensor({2, 3, 160, 160}, 0.f, 1.f, 31);
  auto ref_ctx = sequential->create_execution_context();
  const HostTensor want = run_bytes(*ref_ctx, x);
  EXPECT_TRUE(test::all_finite(want));
  for (bool graphs : {true, false}) {
    RuntimeConfig rc;
    rc.cuda_graphs = graphs;
    auto ctx = side_by_side->create_execution_context(rc);
    for (int rep = 0; rep < 8; ++rep)
      EXPECT_TRUE(same_bytes(run_bytes(*ctx, x), want)) << "run " << rep << (graphs ? " (CUDA graph)" : " (streams)");
  }
  // The file keeps the streams.
  const std::vector<uint8_t> file = side_by_side->serialize();
  auto back = Runtime().deserialize(file.data(), file.size());
  int back_aux = 0;
  for (const EngineLayerInfo& l : back->info().layers) back_aux += l.stream > 0;
  EXPECT_EQ(back_aux, on_aux);
  auto back_ctx = back->create_execution_context();
  EXPECT_TRUE(same_bytes(run_bytes(*back_ctx, x), want));
}

}  // namespace
