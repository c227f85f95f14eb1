// The backend rule (kestrel/model.h) on any machine: choose_backend takes the availability as an
// argument, so the GPU cases are checked without a GPU.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "kestrel/model.h"
#include "kestrel/zoo.h"

namespace {

using kestrel::Backend;
using kestrel::BackendAvailability;
using kestrel::choose_backend;

const BackendAvailability kCpuOnlyBuild{false, false, "this build has no CUDA backend"};
const BackendAvailability kNoGpu{true, false, "no CUDA device found"};
const BackendAvailability kGpu{true, true, ""};

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const kestrel::UsageError& e) {
    return e.what();
  }
  return "(no UsageError)";
}

// A file that starts with the engine magic (not a loadable engine: only its kind matters here).
std::filesystem::path fake_engine() {
  const auto p = std::filesystem::temp_directory_path() / ("kestrel-fake-" + std::to_string(::getpid()) + ".engine");
  std::ofstream(p, std::ios::binary) << "KESTRLEN" << std::string(64, '\0');
  return p;
}

TEST(BackendChoice, ParseAndName) {
  EXPECT_EQ(kestrel::parse_backend("auto"), Backend::Auto);
  EXPECT_EQ(kestrel::parse_backend("cpu"), Backend::Cpu);
  EXPECT_EQ(kestrel::parse_backend("cuda"), Backend::Cuda);
  EXPECT_STREQ(kestrel::backend_name(Backend::Cuda), "cuda");
  EXPECT_THROW(kestrel::parse_backend("gpu"), kestrel::UsageError);
}

TEST(BackendChoice, AutoIsCudaExactlyWhenAGpuIsUsable) {
  EXPECT_EQ(choose_backend("m.onnx", false, Backend::Auto, "fp32", kGpu), Backend::Cuda);
  EXPECT_EQ(choose_backend("m.onnx", false, Backend::Auto, "fp16", kGpu), Backend::Cuda);
  EXPECT_EQ(choose_backend("m.onnx", false, Backend::Auto, "int8", kGpu), Backend::Cuda);
  EXPECT_EQ(choose_backend("m.onnx", false, Backend::Auto, "fp32", kNoGpu), Backend::Cpu);
  EXPECT_EQ(choose_backend("m.onnx", false, Backend::Auto, "fp32", kCpuOnlyBuild), Backend::Cpu);
  // INT8 on the CPU is the exact simulation of the GPU's INT8 engine.
  EXPECT_EQ(choose_backend("m.onnx", false, Backend::Auto, "int8", kNoGpu), Backend::Cpu);
}

TEST(BackendChoice, ExplicitCpuStaysOnTheCpuEvenWithAGpu) {
  EXPECT_EQ(choose_backend("m.onnx", false, Backend::Cpu, "fp32", kGpu), Backend::Cpu);
  EXPECT_EQ(choose_backend("m.onnx", false, Backend::Cpu, "int8", kGpu), Backend::Cpu);
  EXPECT_NE(message_of([] { choose_backend("m.onnx", false, Backend::Cpu, "fp16", kGpu); }).find("cpu backend runs fp32"),
            std::string::npos);
}

TEST(BackendChoice, EngineFilesSelectCuda) {
  EXPECT_EQ(choose_backend("m.engine", true, Backend::Auto, "fp32", kGpu), Backend::Cuda);
  EXPECT_EQ(choose_backend("m.engine", true, Backend::Cuda, "fp16", kGpu), Backend::Cuda);
  const std::string cpu = message_of([] { choose_backend("m.engine", true, Backend::Cpu, "fp32", kGpu); });
  EXPECT_NE(cpu.find("m.engine is an engine file"), std::string::npos) << cpu;
  const std::string no_build = message_of([] { choose_backend("m.engine", true, Backend::Auto, "fp32", kCpuOnlyBuild); });
  EXPECT_NE(no_build.find("needs the CUDA backend"), std::string::npos) << no_build;
  const std::string no_gpu = message_of([] { choose_backend("m.engine", true, Backend::Auto, "fp32", kNoGpu); });
  EXPECT_NE(no_gpu.find("needs a GPU: no CUDA device found"), std::string::npos) << no_gpu;
}

TEST(BackendChoice, CudaThatCannotRunIsAUsageError) {
  const std::string no_build = message_of([] { choose_backend("m.onnx", false, Backend::Cuda, "fp32", kCpuOnlyBuild); });
  EXPECT_NE(no_build.find("--backend cuda is not available"), std::string::npos) << no_build;
  const std::string no_gpu = message_of([] { choose_backend("m.onnx", false, Backend::Cuda, "fp32", kNoGpu); });
  EXPECT_NE(no_gpu.find("needs a GPU"), std::string::npos) << no_gpu;
  // fp16 without a GPU is refused, never silently run as fp32.
  const std::string fp16 = message_of([] { choose_backend("m.onnx", false, Backend::Auto, "fp16", kNoGpu); });
  EXPECT_NE(fp16.find("fp16 runs on the CUDA backend"), std::string::npos) << fp16;
  EXPECT_THROW(choose_backend("m.onnx", false, Backend::Auto, "bf16", kGpu), kestrel::UsageError);
}

TEST(BackendChoice, AvailabilityIsConsistent) {
  const BackendAvailability& a = kestrel::backend_availability();
  EXPECT_TRUE(a.cuda_built || !a.gpu);
  EXPECT_TRUE(a.gpu || !a.why_not.empty());
}

TEST(BackendChoice, EngineFileIsRecognisedByItsMagic) {
  const auto engine = fake_engine();
  EXPECT_TRUE(kestrel::is_engine_file(engine.string()));
  EXPECT_FALSE(kestrel::is_engine_file("/nonexistent/m.engine"));
  EXPECT_FALSE(kestrel::is_engine_file(__FILE__));
  // Opening it never reaches the ONNX importer; without a GPU the message says what it needs.
  try {
    kestrel::open_model(engine.string());
    ADD_FAILURE() << "a fake engine file was opened";
  } catch (const kestrel::UsageError& e) {
    EXPECT_FALSE(kestrel::backend_availability().gpu);
    EXPECT_NE(std::string(e.what()).find("is an engine file"), std::string::npos) << e.what();
  } catch (const kestrel::Error& e) {
    EXPECT_TRUE(kestrel::backend_availability().gpu) << e.what();  // the runtime refuses the fake file
  }
  // Where an ONNX model is needed, an engine file is named as such (not "not a valid ONNX model").
  try {
    kestrel::load_model(engine.string());
    ADD_FAILURE() << "an engine file was imported as ONNX";
  } catch (const kestrel::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a Kestrel engine file"), std::string::npos) << e.what();
  }
  std::filesystem::remove(engine);
}

TEST(OpenModel, CpuBackendRunsTheZooModel) {
  kestrel::ModelOptions o;
  o.backend = Backend::Cpu;
  o.imgsz = 96;
  auto e = kestrel::open_model("yolov8n", o);
  EXPECT_EQ(e->description().rfind("cpu fp32", 0), 0u) << e->description();
  EXPECT_EQ(e->input_shape(), (kestrel::Shape{1, 3, 96, 96}));
  o.precision = "fp16";
  EXPECT_THROW(kestrel::open_model("yolov8n", o), kestrel::UsageError);
  // INT8 needs calibration (or a Q/DQ model): said before any work.
  o.precision = "int8";
  EXPECT_THROW(kestrel::open_model("yolov8n", o), kestrel::UsageError);
}

TEST(OpenModel, AutoRunsWhereverThisMachineCan) {
  kestrel::ModelOptions o;
  o.imgsz = 96;
  auto e = kestrel::open_model("yolov8n", o);
  const std::string want = kestrel::backend_availability().gpu ? "cuda" : "cpu";
  EXPECT_EQ(e->description().rfind(want, 0), 0u) << e->description();
}

}  // namespace
