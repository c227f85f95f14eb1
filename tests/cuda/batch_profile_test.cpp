// Batch profiles: one engine that runs any batch in [min, max] as slices through plans tuned for a
// few batches; named I/O; new buffer addresses without a new graph instantiation; N contexts of one
// engine on N threads.
//   *Host  (no GPU): which batches get a plan, how a batch is sliced, the engine file of several plans.
//   GPU    every batch of a profile engine against the per-image outputs of a batch-1 engine (bit for
//          bit with reference tactics), timed tactics against the CPU, graph updates, threads.
#include <gtest/gtest.h>

#include <cstring>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "gpu_test_util.h"
#include "kestrel/cpu_backend.h"
#include "kestrel/passes.h"
#include "kestrel/zoo.h"
#include "runtime/batch_profile.h"
#include "runtime/plan.h"
#include "tiny_plan.h"

namespace {

using namespace kestrel;
using test::tiny_plan;

#define KCHECK_CUDA(call)                                                                     \
  do {                                                                                        \
    const cudaError_t e_ = (call);                                                            \
    if (e_ != cudaSuccess) throw std::runtime_error(std::string(#call) + ": " + cudaGetErrorString(e_)); \
  } while (0)

// ----------------------------------------------------------------------------------------------------
// Host

TEST(BatchProfileHost, PlanBatchesAreMinOptMaxAndPowersOfTwo) {
  EXPECT_EQ(rt::profile_batches(1, 8, 32), (std::vector<int64_t>{1, 2, 4, 8, 16, 32}));
  EXPECT_EQ(rt::profile_batches(1, 6, 24), (std::vector<int64_t>{1, 2, 4, 6, 8, 16, 24}));
  EXPECT_EQ(rt::profile_batches(3, 3, 3), (std::vector<int64_t>{3}));
  EXPECT_EQ(rt::profile_batches(5, 5, 9), (std::vector<int64_t>{5, 8, 9}));
  EXPECT_THROW(rt::profile_batches(0, 1, 2), Error);
  EXPECT_THROW(rt::profile_batches(4, 2, 8), Error);
  EXPECT_THROW(rt::profile_batches(1, 9, 8), Error);
}

// Every image of the batch is covered, every slice lies inside the batch, slices are as few as the
// greedy choice gives.
void expect_cover(int64_t batch, const std::vector<int64_t>& plans, size_t want_slices) {
  const auto slices = rt::split_batch(batch, plans);
  std::vector<int> covered(static_cast<size_t>(batch), 0);
  for (const auto& s : slices) {
    ASSERT_LT(s.plan, plans.size());
    ASSERT_GE(s.start, 0);
    ASSERT_LE(s.start + plans[s.plan], batch) << "slice past the batch";
    for (int64_t i = s.start; i < s.start + plans[s.plan]; ++i) covered[static_cast<size_t>(i)]++;
  }
  for (int64_t i = 0; i < batch; ++i) EXPECT_GE(covered[static_cast<size_t>(i)], 1) << "image " << i << " of " << batch;
  EXPECT_EQ(slices.size(), want_slices) << "batch " << batch;
}

TEST(BatchProfileHost, SlicesCoverTheBatch) {
  const std::vector<int64_t> p2{1, 2, 4, 8, 16, 32};
  for (int64_t b = 1; b <= 32; ++b) expect_cover(b, p2, static_cast<size_t>(__builtin_popcountll(b)));
  const auto s5 = rt::split_batch(5, p2);
  ASSERT_EQ(s5.size(), 2u);
  EXPECT_EQ(s5[0].plan, 2u);
  EXPECT_EQ(s5[0].start, 0);
  EXPECT_EQ(s5[1].plan, 0u);
  EXPECT_EQ(s5[1].start, 4);
  // Plans start at 4: the 2 images left after one slice of 4 run as the last 4 (2 computed twice).
  const auto s6 = rt::split_batch(6, {4, 8});
  ASSERT_EQ(s6.size(), 2u);
  EXPECT_EQ(s6[1].start, 2);
  expect_cover(6, {4, 8}, 2);
  expect_cover(8, {4, 8}, 1);
  expect_cover(9, {4, 8, 9}, 1);
  EXPECT_THROW(rt::split_batch(3, {4, 8}), Error);
  EXPECT_THROW(rt::split_batch(9, {4, 8}), Error);
}

TEST(BatchProfileHost, PaddingWhereThePlansTimesSaySo) {
  using Padding = RuntimeConfig::BatchPadding;
  const std::vector<int64_t> b{1, 2, 4, 8, 16, 32};
  // Times of yolov8n FP16 on an H100 (ms): 31 as five slices costs 4.2, padded into 32 about 2.9.
  const std::vector<double> ms{0.44, 0.5, 0.7, 0.97, 1.5, 2.67};
  const double copy = 0.0076;  // 7.6 MB of input and output per image at 1 TB/s
  rt::BatchRun r = rt::plan_batch_run(31, b, ms, copy);
  EXPECT_TRUE(r.slices.empty());
  EXPECT_EQ(r.padded, 5u);
  r = rt::plan_batch_run(20, b, ms, copy);  // 16 + 4: 2.2 < 2.67 + 0.15
  EXPECT_EQ(r.padded, SIZE_MAX);
  EXPECT_EQ(r.slices.size(), 2u);
  r = rt::plan_batch_run(8, b, ms, copy, Padding::Always);  // its own plan, even when padding is asked for
  EXPECT_EQ(r.padded, SIZE_MAX);
  ASSERT_EQ(r.slices.size(), 1u);
  EXPECT_EQ(r.slices[0].plan, 3u);
  r = rt::plan_batch_run(20, b, ms, copy, Padding::Always);  // always: the smallest plan that holds 20
  EXPECT_EQ(r.padded, 5u);
  r = rt::plan_batch_run(31, b, ms, copy, Padding::Never);  // never
  EXPECT_EQ(r.slices.size(), 5u);
  r = rt::plan_batch_run(5, {4, 8}, {1.0, 1.1}, 0.01);  // 4 + (4 overlapping) 2.0 vs 8 padded 1.15
  EXPECT_EQ(r.padded, 1u);
  EXPECT_THROW(rt::plan_batch_run(5, {4, 8}, {1.0}, 0.01), Error);
}

TEST(BatchProfileHost, EngineFileOfSeveralPlans) {
  rt::EngineFile f;
  f.min_batch = 1, f.opt_batch = 2, f.max_batch = 4;
  f.plans = {tiny_plan(1, {1, 2, 3, 4}), tiny_plan(2, {1, 2, 3, 4}), tiny_plan(4, {5, 6, 7, 8})};
  const std::vector<uint8_t> bytes = rt::serialize_engine(f);
  const rt::EngineFile back = rt::deserialize_engine(bytes.data(), bytes.size());
  ASSERT_EQ(back.plans.size(), 3u);
  EXPECT_EQ(back.min_batch, 1);
  EXPECT_EQ(back.opt_batch, 2);
  EXPECT_EQ(back.max_batch, 4);
  EXPECT_EQ(back.plans[1].weights, (std::vector<uint8_t>{1, 2, 3, 4}));  // stored once, shared
  EXPECT_EQ(back.plans[2].weights, (std::vector<uint8_t>{5, 6, 7, 8}));
  EXPECT_EQ(back.plans[2].tensors[0].shape, (Shape{4, 3, 8, 8}));
  EXPECT_EQ(rt::serialize_engine(back), bytes);
  // A shared weight blob is written once: the file is smaller than three separate blobs would make it.
  rt::EngineFile distinct = f;
  distinct.plans[1].weights = {9, 9, 9, 9};
  EXPECT_EQ(rt::serialize_engine(distinct).size(), bytes.size() + 4 + 8);

  const EngineInfo info = rt::engine_info(back);
  EXPECT_EQ(info.batch, 4);
  EXPECT_EQ(info.min_batch, 1);
  EXPECT_EQ(info.opt_batch, 2);
  EXPECT_EQ(info.max_batch, 4);
  ASSERT_EQ(info.plans.size(), 3u);
  EXPECT_EQ(info.plans[1].batch, 2);
  EXPECT_EQ(info.inputs.at(0).shape, (Shape{4, 3, 8, 8}));  // I/O at max_batch
  EXPECT_EQ(info.weight_bytes, 8);
}

void expect_corrupt(const rt::EngineFile& f, const char* what) {
  const std::vector<uint8_t> bytes = rt::serialize_engine(f);
  try {
    rt::deserialize_engine(bytes.data(), bytes.size());
    ADD_FAILURE() << "accepted: " << what;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(BatchProfileHost, InconsistentProfilesAreRefused) {
  rt::EngineFile f;
  f.min_batch = 1, f.opt_batch = 2, f.max_batch = 2;
  f.plans = {tiny_plan(2, {1, 1, 1, 1}), tiny_plan(1, {1, 1, 1, 1})};
  f.min_batch = 2;
  f.opt_batch = 2;
  f.max_batch = 1;
  expect_corrupt(f, "bad batch profile");
  f.min_batch = 1, f.opt_batch = 1, f.max_batch = 2;
  expect_corrupt(f, "do not span");
  f.plans = {tiny_plan(1, {1, 1, 1, 1}), tiny_plan(1, {1, 1, 1, 1}), tiny_plan(2, {1, 1, 1, 1})};
  expect_corrupt(f, "not ascending");
  f.plans = {tiny_plan(1, {1, 1, 1, 1}), tiny_plan(2, {1, 1, 1, 1})};
  f.plans[1].tensors[1].shape = {2, 3, 8, 4};  // another output shape per image
  f.plans[1].tensors[1].strides = {96, 32, 4, 1};
  expect_corrupt(f, "slices of one batch");
  f.plans = {tiny_plan(1, {1, 1, 1, 1}), tiny_plan(2, {1, 1, 1, 1})};
  f.plans[1].tensors[0].name = "other";
  expect_corrupt(f, "slices of one batch");
}

// ----------------------------------------------------------------------------------------------------
// GPU

Graph small_model(int64_t batch) {
  LoadOptions o;
  o.batch = batch;
  o.imgsz = 128;
  return load_model("yolov8n", o);
}

BuilderConfig profile_config(Precision p, int64_t min, int64_t opt, int64_t max) {
  BuilderConfig c = test::config(p);
  c.min_batch = min, c.opt_batch = opt, c.max_batch = max;
  return c;
}

// Image i of a batch: its slice of the batch tensor.
HostTensor image_of(const HostTensor& batch, int64_t i) {
  Shape s = batch.shape();
  const size_t per = batch.nbytes() / static_cast<size_t>(s[0]);
  s[0] = 1;
  HostTensor t(batch.dtype(), s);
  std::memcpy(t.raw(), static_cast<const char*>(batch.raw()) + per * static_cast<size_t>(i), per);
  return t;
}

bool same_bytes(const HostTensor& a, const HostTensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// With reference tactics every plan computes an image exactly as a batch-1 engine does, so any batch
// of the profile engine must give each image's batch-1 output bit for bit: slices, offsets and the
// shared arena are checked exactly.
TEST(BatchProfile, EveryBatchEqualsPerImageOutputsBitForBit) {
  KESTREL_REQUIRE_GPU();
  BuilderConfig c = profile_config(Precision::FP16, 1, 4, 8);
  c.reference_tactics = true;
  Builder builder;
  auto engine = builder.build(small_model(1), c);
  const EngineInfo& info = engine->info();
  EXPECT_EQ(builder.report().plan_batches, (std::vector<int64_t>{1, 2, 4, 8}));
  EXPECT_EQ(info.min_batch, 1);
  EXPECT_EQ(info.opt_batch, 4);
  EXPECT_EQ(info.max_batch, 8);
  EXPECT_EQ(info.inputs[0].shape[0], 8);
  BuilderConfig one = test::config(Precision::FP16);
  one.reference_tactics = true;
  auto single = Builder().build(small_model(1), one);
  auto ctx = engine->create_execution_context();
  auto ref_ctx = single->create_execution_context();
  const HostTensor all = test::random_tensor({8, 3, 128, 128}, 0.f, 1.f, 21);
  std::vector<HostTensor> per_image;
  for (int64_t i = 0; i < 8; ++i) per_image.push_back(test::run_poisoned(*ref_ctx, {image_of(all, i)})[0]);
  for (int64_t b : {1, 2, 3, 5, 7, 8, 6, 3}) {  // repeats: cached graphs replay with new buffers
    HostTensor x(DType::F32, {b, 3, 128, 128});
    std::memcpy(x.raw(), all.raw(), x.nbytes());
    const HostTensor y = test::run_poisoned(*ctx, {x})[0];
    ASSERT_EQ(y.shape()[0], b);
    for (int64_t i = 0; i < b; ++i) EXPECT_TRUE(same_bytes(image_of(y, i), per_image[static_cast<size_t>(i)])) << "batch " << b << " image " << i;
  }
  // Padded into the plan that holds the batch (staging copies), with and without CUDA graphs: the
  // same bytes per image.
  for (bool graphs : {true, false}) {
    RuntimeConfig rc;
    rc.cuda_graphs = graphs;
    rc.batch_padding = RuntimeConfig::BatchPadding::Always;
    auto padded = engine->create_execution_context(rc);
    for (int64_t b : {3, 5, 7, 3, 6}) {
      HostTensor x(DType::F32, {b, 3, 128, 128});
      std::memcpy(x.raw(), all.raw(), x.nbytes());
      const HostTensor y = test::run_poisoned(*padded, {x})[0];
      ASSERT_EQ(y.shape()[0], b);
      for (int64_t i = 0; i < b; ++i)
        EXPECT_TRUE(same_bytes(image_of(y, i), per_image[static_cast<size_t>(i)])) << "padded batch " << b << " image " << i
                                                                                   << (graphs ? " (graphs)" : "");
    }
  }
  const ExecutionContext::GraphStats g = ctx->graph_stats();
  std::printf("[profile] graphs: %lld captures, %lld instantiations, %lld updates\n", static_cast<long long>(g.captures),
              static_cast<long long>(g.instantiations), static_cast<long long>(g.updates));
  EXPECT_EQ(g.instantiations, 7);  // one per distinct batch; a repeat replays or updates in place
  EXPECT_EQ(g.captures, g.instantiations + g.updates);

  // The file keeps the profile, and runs the same.
  const std::vector<uint8_t> bytes = engine->serialize();
  auto back = Runtime().deserialize(bytes.data(), bytes.size());
  EXPECT_EQ(back->info().plans.size(), 4u);
  EXPECT_EQ(back->serialize(), bytes);
  HostTensor x5(DType::F32, {5, 3, 128, 128});
  std::memcpy(x5.raw(), all.raw(), x5.nbytes());
  auto back_ctx = back->create_execution_context();
  const HostTensor y5 = test::run_poisoned(*back_ctx, {x5})[0];
  for (int64_t i = 0; i < 5; ++i) EXPECT_TRUE(same_bytes(image_of(y5, i), per_image[static_cast<size_t>(i)])) << "image " << i;
}

// Timed tactics: each batch within the FP16 tolerance of the CPU's FP32 answer.
TEST(BatchProfile, TimedTacticsMatchTheCpu) {
  KESTREL_REQUIRE_GPU();
  auto engine = Builder().build(small_model(1), profile_config(Precision::FP16, 1, 2, 4));
  auto ctx = engine->create_execution_context();
  Graph ref = small_model(3);
  const HostTensor x = test::random_tensor({3, 3, 128, 128}, 0.f, 1.f, 5);
  const HostTensor want = CpuExecutor(ref).run({x})[0];
  const HostTensor got = test::run_poisoned(*ctx, {x})[0];
  EXPECT_TRUE(test::all_finite(got));
  const double err = test::rel_l2(got, want);
  std::printf("[profile] batch 3 of [1, 4] vs CPU fp32: relative L2 %.3g\n", err);
  EXPECT_LT(err, test::tolerance(Precision::FP16));
}

TEST(BatchProfile, NamedIoAndErrors) {
  KESTREL_REQUIRE_GPU();
  BuilderConfig c = profile_config(Precision::FP16, 2, 2, 4);
  c.reference_tactics = true;
  auto engine = Builder().build(small_model(1), c);
  auto ctx = engine->create_execution_context();
  const std::string in = engine->info().inputs[0].name, out = engine->info().outputs[0].name;
  EXPECT_EQ(ctx->batch(), 4);
  ctx->set_input_shape(in, {3, 3, 128, 128});
  EXPECT_EQ(ctx->tensor_shape(out)[0], 3);
  const HostTensor x = test::random_tensor({3, 3, 128, 128}, 0.f, 1.f, 9);
  void *dx = nullptr, *dy = nullptr;  // allocated first: the run below gets other addresses
  ASSERT_EQ(cudaMalloc(&dx, x.nbytes()), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dy, shape_numel(ctx->tensor_shape(out)) * sizeof(float)), cudaSuccess);
  const HostTensor want = test::run_poisoned(*ctx, {x})[0];
  ASSERT_EQ(cudaMemcpy(dx, x.raw(), x.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemset(dy, 0xFF, want.nbytes()), cudaSuccess);
  ctx->set_tensor_address(in, dx);
  ctx->set_tensor_address(out, dy);
  ctx->enqueue(ctx->stream());
  ASSERT_EQ(cudaStreamSynchronize(ctx->stream()), cudaSuccess);
  HostTensor got(DType::F32, want.shape());
  ASSERT_EQ(cudaMemcpy(got.raw(), dy, got.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_TRUE(same_bytes(got, want));
  // New addresses for a captured batch: the graph was updated, not instantiated again.
  EXPECT_EQ(ctx->graph_stats().instantiations, 1);
  EXPECT_EQ(ctx->graph_stats().updates, 1);
  cudaFree(dx);
  cudaFree(dy);

  auto message = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { ctx->set_tensor_address("nope", nullptr); }).find("has " + in + ", " + out), std::string::npos);
  EXPECT_NE(message([&] { ctx->set_batch(1); }).find("outside this engine's profile [2, 4]"), std::string::npos);
  EXPECT_NE(message([&] { ctx->set_input_shape(in, {2, 3, 64, 64}); }).find("takes"), std::string::npos);
  auto fresh = engine->create_execution_context();
  EXPECT_NE(message([&] { fresh->enqueue(fresh->stream()); }).find("no address for input"), std::string::npos);
  auto fixed = Builder().build(small_model(2), test::config(Precision::FP16));
  EXPECT_NE(message([&] { fixed->create_execution_context()->set_batch(1); }).find("runs batch 2 only"), std::string::npos);
}

// Four contexts of one engine on four threads at once give the single context's outputs. Each thread
// sets up (buffers, the first enqueue that captures its graph) one at a time: a cudaMalloc/cudaFree in
// one thread while another captures would invalidate that capture, as in any CUDA program; then all
// replay together.
TEST(BatchProfile, ContextsOnThreadsAgree) {
  KESTREL_REQUIRE_GPU();
  auto engine = Builder().build(small_model(1), test::config(Precision::FP16));
  const HostTensor x = test::random_tensor({1, 3, 128, 128}, 0.f, 1.f, 3);
  const HostTensor want = test::run_poisoned(*engine->create_execution_context(), {x})[0];
  constexpr int kThreads = 4, kRuns = 20;
  std::vector<int> same(kThreads, 0);
  std::vector<std::string> errors(kThreads);
  std::mutex setup;
  std::latch ready(kThreads), done(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::unique_ptr<ExecutionContext> ctx;
      void *dx = nullptr, *dy = nullptr;
      HostTensor y(DType::F32, want.shape());
      bool arrived = false;
      try {
        {
          std::lock_guard<std::mutex> lock(setup);
          ctx = engine->create_execution_context();
          KCHECK_CUDA(cudaMalloc(&dx, x.nbytes()));
          KCHECK_CUDA(cudaMalloc(&dy, y.nbytes()));
          KCHECK_CUDA(cudaMemcpy(dx, x.raw(), x.nbytes(), cudaMemcpyHostToDevice));
          ctx->enqueue({dx}, {dy}, ctx->stream());
          KCHECK_CUDA(cudaStreamSynchronize(ctx->stream()));
        }
        arrived = true;
        ready.arrive_and_wait();
        for (int r = 0; r < kRuns; ++r) {
          KCHECK_CUDA(cudaMemsetAsync(dy, 0xFF, y.nbytes(), ctx->stream()));
          ctx->enqueue({dx}, {dy}, ctx->stream());
          KCHECK_CUDA(cudaMemcpyAsync(y.raw(), dy, y.nbytes(), cudaMemcpyDeviceToHost, ctx->stream()));
          KCHECK_CUDA(cudaStreamSynchronize(ctx->stream()));
          same[static_cast<size_t>(t)] += same_bytes(y, want);
        }
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(t)] = e.what();
        if (!arrived) ready.count_down();  // the others must not wait for this thread
      }
      done.arrive_and_wait();
      cudaFree(dx);
      cudaFree(dy);
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[static_cast<size_t>(t)], "") << "thread " << t;
    EXPECT_EQ(same[static_cast<size_t>(t)], kRuns) << "thread " << t;
  }
}

}  // namespace
