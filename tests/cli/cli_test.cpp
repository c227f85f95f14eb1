// The kestrel CLI on good and bad input: every failure is one line on stderr and a non-zero exit
// (2 for usage errors, 1 otherwise), never a crash or a hang.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "test_data.h"
#include "tiny_onnx.h"

namespace fs = std::filesystem;

namespace {

struct Result {
  int code;
  std::string out, err;
};

// Runs the kestrel binary with a time limit, capturing stdout and stderr.
Result kestrel(const std::string& args) {
  const fs::path dir = fs::temp_directory_path() / ("kestrel_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string cmd = "timeout 120 " + std::string(KESTREL_BIN) + " " + args + " >" + (dir / "out").string() +
                          " 2>" + (dir / "err").string();
  const int status = std::system(cmd.c_str());
  auto slurp = [](const fs::path& p) {
    std::ifstream f(p);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  };
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), slurp(dir / "out"), slurp(dir / "err")};
}

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

fs::path write_temp(const std::string& name, const std::string& bytes) {
  const fs::path p = fs::temp_directory_path() / ("kestrel_cli_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

TEST(Cli, VersionAndHelp) {
  Result r = kestrel("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("kestrel "), std::string::npos);
  for (const char* verb : {"inspect", "run", "val", "predict"}) {
    r = kestrel(std::string(verb) + " --help");
    EXPECT_EQ(r.code, 0) << verb;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << verb;
  }
}

TEST(Cli, UnknownFlagIsAUsageError) {
  Result r = kestrel("inspect x.onnx --no-such-flag");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  r = kestrel("frobnicate");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  r = kestrel("build x.onnx -o x.engine --int8 --precision-constraints maybe");  // prefer | obey
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
}

TEST(Cli, MissingFile) {
  Result r = kestrel("inspect /nonexistent/model.onnx");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/model.onnx"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
}

TEST(Cli, NotAnOnnxFile) {
  Result r = kestrel("inspect " + write_temp("text.onnx", "this is not a protobuf\n").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("not a valid ONNX model"), std::string::npos) << r.err;
}

TEST(Cli, TruncatedOnnxFile) {
  const std::string model = kestrel::test::tiny_conv_model();
  for (size_t cut : {model.size() / 2, model.size() - 3, size_t{7}}) {
    Result r = kestrel("inspect " + write_temp("cut.onnx", model.substr(0, cut)).string());
    EXPECT_EQ(r.code, 1) << cut;
    EXPECT_EQ(lines(r.err), 1) << r.err;
  }
}

TEST(Cli, UnsupportedOpNamesOpNodeAndOpset) {
  Result r = kestrel("inspect " + write_temp("nms.onnx", kestrel::test::tiny_model_with_unsupported_op()).string());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("NonMaxSuppression"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nms_0"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("opset 17"), std::string::npos) << r.err;
}

TEST(Cli, UnsupportedOpset) {
  Result r = kestrel("inspect " + write_temp("old.onnx", kestrel::test::tiny_conv_model(7)).string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("opset 7"), std::string::npos) << r.err;
}

TEST(Cli, InspectTinyModel) {
  Result r = kestrel("inspect " + write_temp("tiny.onnx", kestrel::test::tiny_conv_model()).string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("parameters  112"), std::string::npos) << r.out;  // 4*3*3*3 + 4
  EXPECT_NE(r.out.find("[1,4,8,8]"), std::string::npos) << r.out;
}

// --json names each layer's tensors with shapes and dtypes, weights marked constant: the tiny conv reads the
// image [1,3,8,8] and its weights [4,3,3,3] and writes [1,4,8,8].
TEST(Cli, InspectJsonListsEachLayersTensors) {
  Result r = kestrel("inspect --json " + write_temp("tiny_json.onnx", kestrel::test::tiny_conv_model()).string());
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  const nlohmann::json* conv = nullptr;
  for (const auto& l : j.at("layers"))
    if (l.at("op") == "Conv") conv = &l;
  ASSERT_NE(conv, nullptr) << r.out;
  const auto& in = conv->at("inputs");
  ASSERT_GE(in.size(), 2u);
  EXPECT_EQ(in[0].at("shape"), (std::vector<int64_t>{1, 3, 8, 8}));
  EXPECT_EQ(in[0].at("dtype"), "f32");
  EXPECT_FALSE(in[0].at("constant").get<bool>());
  EXPECT_EQ(in[1].at("shape"), (std::vector<int64_t>{4, 3, 3, 3}));
  EXPECT_TRUE(in[1].at("constant").get<bool>());
  ASSERT_EQ(conv->at("outputs").size(), 1u);
  EXPECT_EQ(conv->at("outputs")[0].at("shape"), (std::vector<int64_t>{1, 4, 8, 8}));
}

TEST(Cli, RunWritesOutputAndRejectsWrongInputSize) {
  const fs::path model = write_temp("run.onnx", kestrel::test::tiny_conv_model());
  const fs::path good = write_temp("in.bin", std::string(3 * 8 * 8 * 4, '\0'));
  const fs::path out = fs::temp_directory_path() / ("kestrel_cli_out_" + std::to_string(::getpid()) + ".bin");
  Result r = kestrel("run " + model.string() + " --input " + good.string() + " --output " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(fs::file_size(out), 4u * 8 * 8 * 4);
  // Zero input: output = relu(bias) per channel.
  std::ifstream f(out, std::ios::binary);
  std::array<float, 4 * 64> y{};
  f.read(reinterpret_cast<char*>(y.data()), sizeof(y));
  EXPECT_FLOAT_EQ(y[0], 0.f);
  EXPECT_FLOAT_EQ(y[64 * 3], 0.3f);

  const fs::path bad = write_temp("bad.bin", std::string(100, '\0'));
  r = kestrel("run " + model.string() + " --input " + bad.string() + " --output " + out.string());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("needs 768 bytes"), std::string::npos) << r.err;
}

// --optimized shows what the engine builder runs: YOLO11's attention as one kestrel.Attention layer
// (the built-in model: no data needed), the rewrite counted in the optimizer's report.
TEST(Cli, InspectOptimizedShowsTheEnginesFusions) {
  Result r = kestrel("inspect yolo11n --imgsz 128 --optimized");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("fuse_attention: 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("kestrel.Attention"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("Softmax"), std::string::npos) << r.out;
  r = kestrel("inspect yolov8n --imgsz 128 --optimized");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("fuse_attention: 0"), std::string::npos) << r.out;
}

TEST(Cli, InspectRealModels) {
  for (const char* m : {"yolov5n", "yolov8n", "yolov8n-dyn", "yolo11n"}) {
    const std::string rel = std::string("models/") + m + ".onnx";
    if (!fs::exists(kestrel::test::data_path(rel))) GTEST_SKIP() << "test data not found: " << rel;
    Result r = kestrel("inspect --summary " + kestrel::test::data_path(rel).string());
    ASSERT_EQ(r.code, 0) << m << ": " << r.err;
    EXPECT_NE(r.out.find("GFLOPs"), std::string::npos);
  }
  Result r = kestrel("inspect --summary " + kestrel::test::data_path("models/yolov8n.onnx").string());
  EXPECT_NE(r.out.find("parameters  3151904"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("GFLOPs      8.7"), std::string::npos) << r.out;
}

}  // namespace

namespace {

TEST(CliPipeline, PredictWritesPicturesAndJson) {
  KESTREL_REQUIRE_DATA("models/yolov8n.onnx");
  const fs::path out = fs::temp_directory_path() / ("kestrel_predict_" + std::to_string(::getpid()));
  const fs::path json = out / "dets.json";
  fs::create_directories(out);
  Result r = kestrel("predict " + kestrel::test::data_path("models/yolov8n.onnx").string() + " " +
                     kestrel::test::data_path("coco-val/images/000000000139.jpg").string() + " " +
                     kestrel::test::data_path("coco-val/images/000000037777.jpg").string() + " --out " + out.string() +
                     " --save-json " + json.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out / "000000000139.jpg"));
  EXPECT_TRUE(fs::exists(out / "000000037777.jpg"));
  std::ifstream f(json);
  std::stringstream s;
  s << f.rdbuf();
  EXPECT_NE(s.str().find("\"person\""), std::string::npos);  // image 139 has people in it
  EXPECT_NE(r.out.find("image 1/2"), std::string::npos) << r.out;
}

TEST(CliPipeline, BadImagesAreReportedAndSkipped) {
  KESTREL_REQUIRE_DATA("models/yolov8n.onnx");
  const fs::path bad = write_temp("broken.jpg", "\xff\xd8\xff not really a jpeg");
  Result r = kestrel("predict " + kestrel::test::data_path("models/yolov8n.onnx").string() + " " + bad.string() +
                     " --no-save");
  EXPECT_EQ(r.code, 1);  // nothing could be read
  EXPECT_NE(r.err.find("broken.jpg"), std::string::npos) << r.err;
}

TEST(CliPipeline, ValRejectsMissingAndEmptyDatasets) {
  const fs::path model = write_temp("val.onnx", kestrel::test::tiny_conv_model());
  Result r = kestrel("val " + model.string() + " --data /nonexistent/dataset");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  const fs::path empty = fs::temp_directory_path() / ("kestrel_empty_ds_" + std::to_string(::getpid()));
  fs::create_directories(empty / "images");
  r = kestrel("val " + model.string() + " --data " + empty.string());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
}

TEST(CliPipeline, ValRejectsAModelWithoutDetectionHead) {
  KESTREL_REQUIRE_DATA("coco-val/instances.json");
  const fs::path model = write_temp("nohead.onnx", kestrel::test::tiny_conv_model());
  Result r = kestrel("val " + model.string() + " --data " + kestrel::test::data_path("coco-val").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
}

}  // namespace

namespace {

TEST(CliBench, CpuRunWritesEveryFigure) {
  const fs::path model = write_temp("bench.onnx", kestrel::test::tiny_conv_model());
  const fs::path json = fs::temp_directory_path() / ("kestrel_bench_" + std::to_string(::getpid()) + ".json");
  Result r = kestrel("bench " + model.string() + " --backend cpu --iterations 5 --duration 0 --warmup 0 --json " + json.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("Throughput"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("median"), std::string::npos) << r.out;
  std::ifstream f(json);
  std::stringstream s;
  s << f.rdbuf();
  for (const char* key : {"\"latency_ms\"", "\"p95\"", "\"p99\"", "\"throughput_images_per_s\"", "\"gpu_compute_ms\"",
                          "\"enqueue_ms\"", "\"h2d_ms\"", "\"d2h_ms\"", "\"flops_per_inference\""})
    EXPECT_NE(s.str().find(key), std::string::npos) << key;
  EXPECT_NE(s.str().find("\"count\": 5"), std::string::npos) << s.str();
}

// bench --images on the CPU backend: files to boxes, every figure of end_to_end filled, a broken file
// counted as skipped in every pass while the others are measured.
TEST(CliBench, ImagesMeasureTheWholePath) {
  KESTREL_REQUIRE_DATA("coco-val/images/000000000139.jpg");
  const fs::path dir = fs::temp_directory_path() / ("kestrel_bench_images_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const char* name : {"000000000139.jpg", "000000037777.jpg"})
    fs::copy_file(kestrel::test::data_path(std::string("coco-val/images/") + name), dir / name,
                  fs::copy_options::overwrite_existing);
  { std::ofstream(dir / "broken.jpg") << "\xff\xd8\xff not a jpeg"; }
  const fs::path json = dir / "bench.json";
  Result r = kestrel("bench yolov8n --backend cpu --imgsz 96 --iterations 1 --duration 0 --warmup 0 --images " +
                     dir.string() + " --json " + json.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("Speed: "), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("broken.jpg"), std::string::npos) << r.err;
  std::ifstream f(json);
  const nlohmann::json j = nlohmann::json::parse(f);
  const nlohmann::json& e = j.at("end_to_end");
  EXPECT_EQ(e.at("images").get<int>(), 6);   // two images, three passes
  EXPECT_EQ(e.at("skipped").get<int>(), 3);  // the broken one in each pass
  for (const char* key : {"images_per_s", "decode_ms", "preprocess_ms", "inference_ms", "postprocess_ms", "latency_ms"})
    EXPECT_GT(e.at(key).get<double>(), 0.0) << key;
  fs::remove_all(dir);
}

// The per-layer profile prints whole layer names, however long (the built-in yolo11n has names of 55
// characters), in the table and in the JSON.
TEST(CliBench, ProfileKeepsWholeLayerNames) {
  const fs::path json = fs::temp_directory_path() / ("kestrel_cli_profile_" + std::to_string(::getpid()) + ".json");
  Result r = kestrel("bench yolo11n --backend cpu --imgsz 128 --iterations 1 --duration 0 --warmup 0 --dump-profile --json " +
                     json.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string name = "/model.23/cv3.0/cv3.0.0/cv3.0.0.0/act/Sigmoid (Sigmoid)";
  EXPECT_NE(r.out.find(name + " "), std::string::npos) << r.out;
  std::ifstream f(json);
  const nlohmann::json j = nlohmann::json::parse(f);
  bool found = false;
  for (const auto& l : j.at("layer_profile")) found = found || l.at("layer") == name;
  EXPECT_TRUE(found);
  fs::remove(json);
}

TEST(CliBench, BadArguments) {
  const fs::path model = write_temp("bench2.onnx", kestrel::test::tiny_conv_model());
  Result r = kestrel("bench " + model.string() + " --iterations 0");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  r = kestrel("bench " + model.string() + " --backend cpu --json /nonexistent/folder/out.json");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/folder/out.json"), std::string::npos) << r.err;
}

TEST(CliCompare, Int8NeedsCalibrationAndNonDetectorsAreRefused) {
  const fs::path model = write_temp("cmp.onnx", kestrel::test::tiny_conv_model());
  Result r = kestrel("compare yolov8n --precisions fp32,int8");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("int8"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--calib"), std::string::npos) << r.err;
  r = kestrel("compare " + model.string() + " --backend cpu");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  // A calibration cache that does not exist, alone, is an error before any work.
  r = kestrel("compare yolov8n --backend cpu --precisions int8 --calib-cache /nonexistent/c.cache");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/c.cache"), std::string::npos) << r.err;
}

// The CPU backend's INT8 row is the exact simulation of the GPU's INT8 engine: calibrated here on two
// coco128 images (the built-in model at 320 px keeps it quick), then timed, checked and tabled. The
// JSON must hold exactly the two rows asked for, each measured (time > 0), deterministic and passing,
// after a calibration on exactly two images.
TEST(CliCompare, CpuInt8RowIsTheSimulation) {
  KESTREL_REQUIRE_DATA("coco128");
  const fs::path json = fs::temp_directory_path() / ("kestrel_cmp_int8_" + std::to_string(::getpid()) + ".json");
  Result r = kestrel("compare yolov8n --backend cpu --precisions fp32,int8 --batch 1 --iterations 1 --duration 0 "
                     "--imgsz 320 --calib-images 2 --json " + json.string() + " --calib " +
                     kestrel::test::data_path("coco128").string());
  ASSERT_EQ(r.code, 0) << r.err;
  // "calibration: N tensors on 2 images (...)": the INT8 row was calibrated, on what was asked.
  const size_t cal = r.out.find("calibration: ");
  ASSERT_NE(cal, std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" tensors on 2 images", cal), std::string::npos) << r.out;
  std::ifstream f(json);
  ASSERT_TRUE(f.good()) << json;
  const nlohmann::json j = nlohmann::json::parse(f);
  fs::remove(json);
  EXPECT_EQ(j.at("backend"), "cpu");
  ASSERT_EQ(j.at("rows").size(), 2u) << j.dump(1);
  const char* want[] = {"fp32", "int8"};
  for (size_t i = 0; i < 2; ++i) {
    const nlohmann::json& row = j["rows"][i];
    SCOPED_TRACE(row.dump());
    EXPECT_EQ(row.at("precision"), want[i]);
    EXPECT_EQ(row.at("batch"), 1);
    EXPECT_EQ(row.at("deterministic"), true);
    EXPECT_GT(row.at("compute_ms").at("median").get<double>(), 0.0) << "the row measured nothing";
    EXPECT_GT(row.at("images_per_s").get<double>(), 0.0);
    EXPECT_TRUE(row.at("map50_95").is_null()) << "no --data: no accuracy to report";
  }
  EXPECT_EQ(j.at("all_checks_pass"), true);
  // Both rows appear in the table too.
  EXPECT_NE(r.out.find("\nint8 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nfp32 "), std::string::npos) << r.out;
}

// compare --int8-model: the int8 rows run a Q/DQ file `quantize -o` wrote (two coco128 images, the built-in
// model at 96 px), with its own scales: the row is measured and says so. The option is refused with one
// line where it cannot be what the user meant: no int8 row, not a Q/DQ file, a missing file, a quantized
// positional model, calibration options beside it, another model's (or another size's) Q/DQ form.
TEST(CliCompare, Int8ModelRowsRunTheGivenQdqFile) {
  KESTREL_REQUIRE_DATA("coco128");
  const fs::path dir = fs::temp_directory_path() / ("kestrel_cli_int8model_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string q = (dir / "q.onnx").string(), json = (dir / "c.json").string();
  Result r = kestrel("quantize yolov8n --imgsz 96 --calib-images 2 --calib " + kestrel::test::data_path("coco128").string() +
                     " -o " + q);
  ASSERT_EQ(r.code, 0) << r.err;
  r = kestrel("compare yolov8n --imgsz 96 --backend cpu --precisions fp32,int8 --batch 1 --iterations 1 --duration 0 "
              "--int8-model " + q + " --json " + json);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("(its own Q/DQ scales)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("calibration: "), std::string::npos) << "nothing is calibrated again: " << r.out;
  {
    std::ifstream f(json);
    const nlohmann::json j = nlohmann::json::parse(f);
    ASSERT_EQ(j.at("rows").size(), 2u) << j.dump(1);
    EXPECT_EQ(j["rows"][1].at("precision"), "int8");
    EXPECT_GT(j["rows"][1].at("compute_ms").at("median").get<double>(), 0.0) << "the row measured nothing";
  }
  const std::string base = "compare yolov8n --imgsz 96 --backend cpu --batch 1 --iterations 1 --duration 0 ";
  const std::string tiny = (dir / "tiny.onnx").string();
  {
    std::ofstream f(tiny, std::ios::binary);
    f << kestrel::test::tiny_conv_model();
  }
  const std::pair<std::string, std::string> refused[] = {  // each exits 2 but the size's (a model error: 1)
      {base + "--precisions fp32 --int8-model " + q, "--int8-model only applies to INT8"},
      {base + "--precisions fp32,int8 --int8-model " + tiny, "is not a Q/DQ model"},
      {base + "--precisions fp32,int8 --int8-model " + (dir / "none.onnx").string(), "does not exist"},
      {"compare " + q + " --backend cpu --precisions fp32,int8 --int8-model " + q, "is quantized already"},
      {base + "--precisions fp32,int8 --calib-cache " + (dir / "c.cache").string() + " --int8-model " + q,
       "--calib-cache cannot be combined with --int8-model"},
      {"compare yolov8n --imgsz 128 --backend cpu --precisions fp32,int8 --int8-model " + q, "fixed at 96x96"},
      {"compare yolo11n --imgsz 96 --backend cpu --precisions fp32,int8 --int8-model " + q, "is not a form of"},
      {"compare yolov8s --imgsz 96 --backend cpu --precisions fp32,int8 --int8-model " + q, "(other weight shapes)"},
  };
  for (const auto& [cmd, message] : refused) {
    const Result e = kestrel(cmd);
    EXPECT_EQ(e.code, message == "fixed at 96x96" ? 1 : 2) << cmd << ": " << e.err;
    EXPECT_NE(e.err.find(message), std::string::npos) << cmd << ": " << e.err;
    EXPECT_EQ(std::count(e.err.begin(), e.err.end(), '\n'), 1) << e.err;
  }
  fs::remove_all(dir);
}

TEST(CliCompare, CpuRowsForTheBuiltInModel) {
  const fs::path json = fs::temp_directory_path() / ("kestrel_cmp_" + std::to_string(::getpid()) + ".json");
  const fs::path svg = fs::temp_directory_path() / ("kestrel_cmp_" + std::to_string(::getpid()) + ".svg");
  Result r = kestrel("compare yolov8n --backend cpu --batch 1 --iterations 2 --duration 0 --imgsz 320 --json " +
                     json.string() + " --chart " + svg.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("precision"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("PASS"), std::string::npos) << r.out;  // deterministic
  EXPECT_TRUE(fs::exists(svg));
  EXPECT_GT(fs::file_size(svg), 500u);
}

// One behaviour in every verb: --backend has one definition, defaulting to auto.
TEST(CliBackend, EveryVerbDefaultsToAuto) {
  for (const char* verb : {"run", "val", "predict", "bench", "compare"}) {
    Result r = kestrel(std::string(verb) + " --help");
    EXPECT_EQ(r.code, 0) << verb;
    EXPECT_NE(r.out.find("auto (cuda when a GPU is present, cpu otherwise), cpu or cuda"), std::string::npos)
        << verb << ": " << r.out;
    EXPECT_NE(r.out.find("--backend TEXT:{auto,cpu,cuda}=auto"), std::string::npos) << verb << ": " << r.out;
    r = kestrel(std::string(verb) + " yolov8n --backend gpu");
    EXPECT_EQ(r.code, 2) << verb;
  }
  // auto runs wherever this machine can (the CPU here; a GPU machine builds a CUDA engine).
  Result r = kestrel("run yolov8n --imgsz 96");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(" backend"), std::string::npos) << r.out;
}

// An engine file is recognised wherever a model is accepted: it selects CUDA (or says it needs it), and
// the verbs that need the ONNX model name it as an engine file, never "not a valid ONNX model".
TEST(CliBackend, EngineFilesAreRecognisedEverywhere) {
  const fs::path engine = write_temp("fake.engine", std::string("KESTRLEN") + std::string(64, '\0'));
  const fs::path image = write_temp("none.jpg", "x");
  for (const std::string& args : {"predict " + engine.string() + " " + image.string() + " --no-save",
                                  "run " + engine.string(), "bench " + engine.string() + " --iterations 1"}) {
    Result r = kestrel(args);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_EQ(lines(r.err), 1) << args << ": " << r.err;
    EXPECT_EQ(r.err.find("not a valid ONNX model"), std::string::npos) << args << ": " << r.err;
    EXPECT_NE(r.err.find("engine"), std::string::npos) << args << ": " << r.err;
  }
  Result r = kestrel("predict " + engine.string() + " " + image.string() + " --backend cpu");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("runs on the CUDA backend only"), std::string::npos) << r.err;
  r = kestrel("quantize " + engine.string() + " --calib /nonexistent -o " + (engine.string() + ".onnx"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("is a Kestrel engine file"), std::string::npos) << r.err;
  r = kestrel("compare " + engine.string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("compare builds every precision from the model"), std::string::npos) << r.err;
  r = kestrel("bench yolov8n --backend cpu --fp16");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("fp32"), std::string::npos) << r.err;
}

// --fp16 and --int8 have one definition, and asking for both is an error (not "the last one wins").
TEST(CliBackend, PrecisionFlagsAreExclusive) {
  for (const char* args : {"val yolov8n --data /nonexistent --fp16 --int8", "predict yolov8n x.jpg --int8 --fp16",
                           "bench yolov8n --fp16 --int8"}) {
    Result r = kestrel(args);
    EXPECT_EQ(r.code, 2) << args;
    EXPECT_NE(r.err.find("excludes"), std::string::npos) << args << ": " << r.err;
  }
}

}  // namespace

namespace {

// compare --agree: a folder that is missing or holds no image is refused with one line before anything
// is built or calibrated, and FP32 (the reference) must be among the precisions.
TEST(CliCompare, AgreeFolderIsCheckedFirst) {
  const fs::path empty = fs::temp_directory_path() / ("kestrel_cli_agree_empty_" + std::to_string(::getpid()));
  fs::create_directories(empty);
  Result r = kestrel("compare yolov8n --backend cpu --agree " + empty.string());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("no images"), std::string::npos) << r.err;
  r = kestrel("compare yolov8n --backend cpu --agree /nonexistent/agree-images");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/agree-images"), std::string::npos) << r.err;
  r = kestrel("compare yolov8n --backend cpu --precisions int8 --calib " + empty.string() + " --agree " + empty.string());
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("fp32"), std::string::npos) << r.err;
  fs::remove_all(empty);
}

// FP32's own conf 0.001 detections contain its conf 0.25 ones, ranked first: its agreement is 1, with
// a degenerate interval, in the table and in the JSON.
TEST(CliCompare, AgreementColumnsOnUnlabelledImages) {
  KESTREL_REQUIRE_DATA("models/yolov8n.onnx");
  KESTREL_REQUIRE_DATA("agree-val/images/000000000785.jpg");
  const fs::path dir = fs::temp_directory_path() / ("kestrel_cli_agree_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const char* name : {"000000000785.jpg", "000000000885.jpg"})
    fs::create_symlink(kestrel::test::data_path(std::string("agree-val/images/") + name), dir / name);
  const fs::path json = dir / "cmp.json";
  Result r = kestrel("compare " + kestrel::test::data_path("models/yolov8n.onnx").string() +
                     " --backend cpu --batch 1 --iterations 1 --duration 0 --agree " + dir.string() + " --json " +
                     json.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("agree 95% CI"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1.0000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[1.0000,1.0000]"), std::string::npos) << r.out;
  std::ifstream f(json);
  std::stringstream s;
  s << f.rdbuf();
  EXPECT_NE(s.str().find("\"agreement\": 1.0"), std::string::npos) << s.str();
  EXPECT_NE(s.str().find("\"agreement_ci95\": ["), std::string::npos) << s.str();
  EXPECT_NE(s.str().find("\"resamples\": 1000"), std::string::npos) << s.str();
  fs::remove_all(dir);
}

}  // namespace
