// The engine file and the runtime's contracts: a foreign compute capability, another format version, a
// truncated or corrupt file are refused with one clear message; contexts on several threads share one
// engine; a warm timing cache skips all timing; unfused graphs and batches > 1 run correctly.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include "gpu_test_util.h"
#include "kestrel/cpu_backend.h"
#include "kestrel/onnx.h"
#include "runtime/plan.h"
#include "test_data.h"

namespace {

using namespace kestrel;

// A small conv net (conv -> silu -> maxpool -> concat -> conv), enough to exercise a real plan.
Graph small_net() {
  ImportOptions io;
  (void)io;
  Graph g;
  auto val = [&](const std::string& n, Shape s = {}) {
    Value v;
    v.name = n;
    v.shape = s;
    v.shape_known = !s.empty();
    g.add_value(v);
  };
  auto cst = [&](const std::string& n, HostTensor t) {
    Value v;
    v.name = n;
    v.shape = t.shape();
    v.shape_known = true;
    v.constant = t;
    g.add_value(v);
  };
  val("x", {1, 8, 32, 32});
  g.inputs = {"x"};
  cst("w1", test::random_tensor({16, 8, 3, 3}, -0.3f, 0.3f, 1));
  cst("b1", test::random_tensor({16}, -0.1f, 0.1f, 2));
  cst("w2", test::random_tensor({8, 32, 1, 1}, -0.3f, 0.3f, 3));
  auto node = [&](const std::string& op, std::vector<std::string> in, std::string out, Attributes a = {}) {
    val(out);
    g.nodes.push_back(Node{op + out, op, std::move(in), {out}, std::move(a)});
  };
  Attributes c1;
  c1.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  node("Conv", {"x", "w1", "b1"}, "c1", c1);
  node("Sigmoid", {"c1"}, "s1");
  node("Mul", {"c1", "s1"}, "a1");
  Attributes mp;
  mp.set("kernel_shape", std::vector<int64_t>{5, 5});
  mp.set("pads", std::vector<int64_t>{2, 2, 2, 2});
  node("MaxPool", {"a1"}, "m1", mp);
  Attributes cat;
  cat.set("axis", int64_t{1});
  node("Concat", {"a1", "m1"}, "cat", cat);
  node("Conv", {"cat", "w2"}, "y");
  g.outputs = {"y"};
  g.infer_shapes();
  return g;
}

std::vector<uint8_t> small_engine_bytes(Precision p = Precision::FP32) {
  auto e = Builder().build(small_net(), test::config(p));
  return e->serialize();
}

std::string error_of(const std::vector<uint8_t>& bytes) {
  try {
    Runtime().deserialize(bytes.data(), bytes.size());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(GpuEngine, RefusesAnotherComputeCapability) {
  KESTREL_REQUIRE_GPU();
  std::vector<uint8_t> bytes = small_engine_bytes();
  int32_t major = 0, minor = 0;
  std::memcpy(&major, bytes.data() + rt::kOffsetCcMajor, 4);
  std::memcpy(&minor, bytes.data() + rt::kOffsetCcMinor, 4);
  const int32_t fake_major = major == 7 ? 8 : 7, fake_minor = 5;
  std::memcpy(bytes.data() + rt::kOffsetCcMajor, &fake_major, 4);
  std::memcpy(bytes.data() + rt::kOffsetCcMinor, &fake_minor, 4);
  const std::string msg = error_of(bytes);
  std::printf("[engine] wrong compute capability: %s\n", msg.c_str());
  EXPECT_NE(msg.find("compute capability " + std::to_string(fake_major) + ".5"), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(major) + "." + std::to_string(minor)), std::string::npos) << msg;
}

TEST(GpuEngine, RefusesAnotherFormatVersionTruncationAndCorruption) {
  KESTREL_REQUIRE_GPU();
  const std::vector<uint8_t> good = small_engine_bytes();
  std::vector<uint8_t> v = good;
  const uint32_t other = rt::kFormatVersion + 41;
  std::memcpy(v.data() + rt::kOffsetFormatVersion, &other, 4);
  std::string msg = error_of(v);
  std::printf("[engine] other format: %s\n", msg.c_str());
  EXPECT_NE(msg.find("format version " + std::to_string(other)), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(rt::kFormatVersion)), std::string::npos) << msg;

  for (size_t cut : {size_t{4}, size_t{30}, good.size() / 2, good.size() - 1}) {
    std::vector<uint8_t> t(good.begin(), good.begin() + static_cast<long>(cut));
    msg = error_of(t);
    EXPECT_FALSE(msg.empty()) << "truncated at " << cut;
  }
  msg = error_of(std::vector<uint8_t>(good.begin(), good.begin() + static_cast<long>(good.size() / 2)));
  std::printf("[engine] truncated: %s\n", msg.c_str());
  for (size_t pos : {good.size() / 3, good.size() / 2, good.size() - 20}) {
    std::vector<uint8_t> c = good;
    c[pos] ^= 0x5a;
    msg = error_of(c);
    EXPECT_NE(msg.find("corrupt"), std::string::npos) << "byte " << pos << ": " << msg;
  }
  std::printf("[engine] corrupt: %s\n", msg.c_str());
  EXPECT_NE(error_of(std::vector<uint8_t>{'n', 'o', 'p', 'e'}).find("not a Kestrel engine"), std::string::npos);
}

TEST(GpuEngine, ContextsOnThreadsShareOneEngine) {
  KESTREL_REQUIRE_GPU();
  Graph g = small_net();
  auto engine = Builder().build(g, test::config(Precision::FP16));
  const HostTensor x = test::random_tensor({1, 8, 32, 32}, -1.f, 1.f, 9);
  const HostTensor ref = engine->create_execution_context()->run({x})[0];
  std::vector<HostTensor> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      auto ctx = engine->create_execution_context();
      for (int i = 0; i < 20; ++i) got[t] = ctx->run({x})[0];
    });
  for (auto& t : threads) t.join();
  for (auto& y : got) EXPECT_EQ(std::memcmp(y.raw(), ref.raw(), ref.nbytes()), 0);
  const double err = test::rel_l2(ref, CpuExecutor(g).run({x})[0]);
  EXPECT_LT(err, 5e-3);
}

TEST(GpuEngine, WarmTimingCacheSkipsTiming) {
  KESTREL_REQUIRE_GPU();
  KESTREL_REQUIRE_DATA("models/yolov8n.onnx");
  const std::string cache = (std::filesystem::temp_directory_path() / "kestrel_test_timing.cache").string();
  std::filesystem::remove(cache);
  BuilderConfig cfg = test::config(Precision::FP16);
  cfg.timing_cache_path = cache;
  Builder b;
  b.build_from_onnx(test::data_path("models/yolov8n.onnx").string(), cfg);
  const BuildReport cold = b.report();
  b.build_from_onnx(test::data_path("models/yolov8n.onnx").string(), cfg);
  const BuildReport warm = b.report();
  std::printf("[engine] yolov8n fp16 build: cold %.2f s (%d layers timed), warm %.2f s (%d from cache, %d timed)\n",
              cold.total_s, cold.layers_tuned, warm.total_s, warm.layers_from_cache, warm.layers_tuned);
  EXPECT_GT(cold.layers_tuned, 0);
  EXPECT_EQ(warm.layers_tuned, 0);
  // Layers with the same signature inside one build already hit the cache during the cold build.
  EXPECT_EQ(warm.layers_from_cache, cold.layers_tuned + cold.layers_from_cache);
  EXPECT_LT(warm.total_s, 5.0);
}

// A cached choice stands only against the candidates it was measured among: a build offering other
// tactics for a layer (here without cuDNN's) times that layer again, and only that layer.
TEST(GpuEngine, TimingCacheKeysTheCandidates) {
  KESTREL_REQUIRE_GPU();
  const std::string cache = (std::filesystem::temp_directory_path() / "kestrel_test_candidates.cache").string();
  std::filesystem::remove(cache);
  BuilderConfig cfg = test::config(Precision::FP16);
  cfg.timing_cache_path = cache;
  Builder b;
  b.build(small_net(), cfg);
  std::map<std::string, std::vector<std::string>> first;
  for (const auto& c : b.report().candidates) first[c.layer] = c.tactics;
  cfg.cudnn_tactics = false;
  b.build(small_net(), cfg);
  int changed = 0;
  for (const auto& c : b.report().candidates) changed += c.tactics.size() > 1 && c.tactics != first.at(c.layer);
  ASSERT_GT(changed, 0) << "no layer of the net offers a cuDNN tactic";
  EXPECT_EQ(b.report().layers_tuned, changed);
  b.build(small_net(), cfg);
  EXPECT_EQ(b.report().layers_tuned, 0);
  std::filesystem::remove(cache);
}

// The per-layer profile (a CUDA graph with a timing event after each layer): a time for every layer,
// and the network's result in the caller's output, as a plain run writes it.
TEST(GpuEngine, ProfileTimesEveryLayerAndWritesTheOutput) {
  KESTREL_REQUIRE_GPU();
  auto engine = Builder().build(small_net(), test::config(Precision::FP16));
  auto ctx = engine->create_execution_context();
  const HostTensor x = test::random_tensor({1, 8, 32, 32}, -1.f, 1.f, 3);
  const HostTensor ref = ctx->run({x})[0];
  test::DevBuf din(x.nbytes()), dout(ref.nbytes());
  ASSERT_EQ(cudaMemcpy(din.p, x.raw(), x.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemset(dout.p, 0xff, ref.nbytes()), cudaSuccess);  // NaN in FP16 and FP32
  const auto prof = ctx->profile({din.p}, {dout.p}, 3);
  ASSERT_EQ(static_cast<int64_t>(prof.size()), engine->info().plans.at(0).layers);
  for (const auto& [name, ms] : prof) {
    EXPECT_TRUE(std::isfinite(ms)) << name;
    EXPECT_GE(ms, 0.0) << name;
  }
  HostTensor got(ref.dtype(), ref.shape());
  ASSERT_EQ(cudaMemcpy(got.raw(), dout.p, got.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(std::memcmp(got.raw(), ref.raw(), ref.nbytes()), 0);
}

// The unfused graph (every ONNX op on its own) and a batch of 2 against the CPU reference.
TEST(GpuEngine, UnfusedGraphAndBatchTwo) {
  KESTREL_REQUIRE_GPU();
  KESTREL_REQUIRE_DATA("models/yolov8n.onnx");
  ImportOptions io;
  io.batch = 2;
  Graph g = import_onnx(test::data_path("models/yolov8n.onnx").string(), io);
  HostTensor x = test::random_tensor({2, 3, 640, 640}, 0.f, 1.f, 5);
  const HostTensor ref = CpuExecutor(g).run({x})[0];
  for (Precision p : {Precision::FP32, Precision::FP16}) {
    BuilderConfig cfg = test::config(p);
    cfg.optimize = false;
    auto e = Builder().build(g, cfg);
    auto ctx = e->create_execution_context();
    const HostTensor y = test::run_poisoned(*ctx, {x})[0];
    const double err = test::rel_l2(y, ref);
    std::printf("[engine] yolov8n unfused batch 2 %s: %zu layers, rel L2 %.3g\n", precision_name(p), e->info().layers.size(), err);
    EXPECT_LT(err, test::tolerance(p));
  }
}

// Tactic sources off (trtexec's --tacticSources=-CUDNN,-CUBLAS_LT): no layer is offered, or runs, a
// tactic of those libraries, and the engine still matches the CPU.
TEST(GpuEngine, TacticSourcesLeaveLibrariesOut) {
  KESTREL_REQUIRE_GPU();
  Graph g = small_net();
  BuilderConfig cfg = test::config(Precision::FP16);
  cfg.cudnn_tactics = false;
  cfg.cublaslt_tactics = false;
  Builder b;
  auto e = b.build(g, cfg);
  size_t offered = 0;
  for (const auto& c : b.report().candidates)
    for (const std::string& t : c.tactics) {
      ++offered;
      EXPECT_NE(t.rfind("cudnn", 0), 0u) << c.layer << " offered " << t;
      EXPECT_NE(t.rfind("cublaslt", 0), 0u) << c.layer << " offered " << t;
    }
  EXPECT_GT(offered, 0u);
  for (auto& l : e->info().layers) EXPECT_NE(l.tactic.rfind("cudnn", 0), 0u) << l.name << " runs " << l.tactic;
  const HostTensor x = test::random_tensor({1, 8, 32, 32}, -1.f, 1.f, 9);
  EXPECT_LT(test::rel_l2(e->create_execution_context()->run({x})[0], CpuExecutor(g).run({x})[0]), test::tolerance(Precision::FP16));
  // With the sources on, the same small net is offered cuDNN's convolutions.
  BuilderConfig on = test::config(Precision::FP16);
  Builder b2;
  b2.build(g, on);
  bool any_cudnn = false;
  for (const auto& c : b2.report().candidates)
    for (const std::string& t : c.tactics) any_cudnn |= t.rfind("cudnn", 0) == 0;
  EXPECT_TRUE(any_cudnn);
}

TEST(GpuEngine, ZeroWorkspaceStillBuilds) {
  KESTREL_REQUIRE_GPU();
  Graph g = small_net();
  BuilderConfig cfg = test::config(Precision::FP32);
  cfg.workspace_limit = 0;
  auto e = Builder().build(g, cfg);
  for (auto& l : e->info().layers) EXPECT_EQ(l.scratch_bytes, 0) << l.name << " " << l.tactic;
  const HostTensor x = test::random_tensor({1, 8, 32, 32}, -1.f, 1.f, 9);
  EXPECT_LT(test::rel_l2(e->create_execution_context()->run({x})[0], CpuExecutor(g).run({x})[0]), 1e-4);
}

}  // namespace
