// Careless input in every verb: non-finite numbers, options with no effect, outputs that would replace
// an input, writes that fail halfway (a full disk), calibration caches that do not fit, and runs that
// would measure nothing. Each is one line on stderr and a non-zero exit (2 for a wrong command line),
// and no file is lost or left truncated.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>

#include <onnx/onnx_pb.h>

#include "test_data.h"
#include "tiny_onnx.h"

namespace fs = std::filesystem;

namespace {

struct Result {
  int code;
  std::string out, err;
};

// A fresh folder for one test, removed at the end.
struct Dir {
  explicit Dir(const std::string& tag)
      : path(fs::temp_directory_path() / ("kestrel_clierr_" + tag + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Dir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  fs::path path;
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Runs kestrel with a time limit; `shell_prefix` runs first in the same shell (e.g. "ulimit -f 4;").
Result kestrel(const std::string& args, const std::string& shell_prefix = "") {
  const fs::path dir = fs::temp_directory_path() / ("kestrel_clierr_io_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string cmd = shell_prefix + "timeout 300 " + std::string(KESTREL_BIN) + " " + args + " >" +
                          (dir / "out").string() + " 2>" + (dir / "err").string();
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), slurp(dir / "out"), slurp(dir / "err")};
}

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

void write(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

#define EXPECT_ONE_LINE_ERROR(r, exit_code, part)                                   \
  do {                                                                             \
    EXPECT_EQ((r).code, exit_code) << (r).err;                                     \
    EXPECT_EQ(lines((r).err), 1) << (r).err;                                       \
    EXPECT_NE((r).err.find(part), std::string::npos) << "stderr: " << (r).err;      \
  } while (0)

// ---- class 3: numbers that are not numbers, options that do nothing -------------------------------

TEST(CliErrors, NonFiniteNumbersAreRefusedInEveryVerb) {
  Dir d("nan");
  const std::string m = d / "m.onnx";
  write(m, kestrel::test::tiny_conv_model());
  for (const std::string& args : std::vector<std::string>{"val " + m + " --data " + d.path.string() + " --conf nan", "val " + m + " --data x --iou inf",
        "predict " + m + " x.jpg --conf nan", "predict " + m + " x.jpg --iou=-inf",
        "quantize " + m + " --calib x --percentile nan -o q.onnx", "quantize " + m + " --calib x --auto-target nan -o q.onnx",
        "bench " + m + " --backend cpu --duration nan", "bench " + m + " --backend cpu --warmup inf",
        "compare " + m + " --backend cpu --budget-ms nan", "compare " + m + " --backend cpu --duration nan"}) {
    const Result r = kestrel(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.err;
    EXPECT_EQ(lines(r.err), 1) << args << ": " << r.err;
    EXPECT_NE(r.err.find("finite"), std::string::npos) << args << ": " << r.err;
  }
}

// The tiny model with a dynamic batch dimension (its height and width stay fixed at 8).
std::string dynamic_batch_model() {
  onnx::ModelProto m;
  m.ParseFromString(kestrel::test::tiny_conv_model());
  for (auto* io : {m.mutable_graph()->mutable_input(), m.mutable_graph()->mutable_output()})
    for (auto& v : *io)
      if (v.type().tensor_type().shape().dim_size() > 0)
        v.mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(0)->set_dim_param("batch");
  return m.SerializeAsString();
}

TEST(CliErrors, ImgszOnAModelWithAFixedSizeIsAnError) {
  // Dynamic batch, fixed 8x8: --imgsz used to be ignored without a word.
  Dir d("imgsz");
  const std::string m = d / "fixed.onnx";
  write(m, dynamic_batch_model());
  const Result r = kestrel("run " + m + " --imgsz 64");
  EXPECT_ONE_LINE_ERROR(r, 2, "--imgsz 64 has no effect");
  EXPECT_NE(r.err.find("fixed 8x8 input"), std::string::npos) << r.err;
}

TEST(CliErrors, Int8OptionsWithoutInt8AreErrorsInEveryVerb) {
  Dir d("int8_opts");
  for (const std::string& args : std::vector<std::string>{
           "val yolov8n --data " + d.path.string() + " --calib " + d.path.string(),
           "predict yolov8n x.jpg --calib-cache c.cache", "bench yolov8n --backend cpu --int8-auto",
           "compare yolov8n --backend cpu --calib " + d.path.string(), "val yolov8n --data " + d.path.string() + " --fp16-early-stride 4",
           "bench yolov8n --backend cpu --bias-correct-images 8"}) {
    const Result r = kestrel(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.err;
    EXPECT_EQ(lines(r.err), 1) << args << ": " << r.err;
    EXPECT_NE(r.err.find("only applies to INT8"), std::string::npos) << args << ": " << r.err;
  }
}

// --fp16-early-stride is part of the default policy: with --no-default-policy it would do nothing.
TEST(CliErrors, EarlyStrideWithoutTheDefaultPolicyIsAnError) {
  Dir d("early_stride");
  const Result r = kestrel("quantize yolov8n --imgsz 96 --calib-cache " + (d.path / "none.cache").string() +
                           " --no-default-policy --fp16-early-stride 4 -o " + (d.path / "q.onnx").string());
  EXPECT_ONE_LINE_ERROR(r, 2, "--fp16-early-stride is part of the default policy");
  EXPECT_FALSE(fs::exists(d.path / "q.onnx"));
}

TEST(CliErrors, CompareWithNothingToCompareFails) {
  const Result r = kestrel("compare yolov8n --backend cpu --precisions fp16 --imgsz 96 --iterations 1 --duration 0");
  EXPECT_ONE_LINE_ERROR(r, 2, "nothing to compare");
}

TEST(CliErrors, WorkersWithoutImagesToDecodeIsAnError) {
  const Result r = kestrel("bench yolov8n --backend cpu --imgsz 96 --iterations 1 --duration 0 --workers 2");
  EXPECT_ONE_LINE_ERROR(r, 2, "--workers decodes the files of --images");
  const Result zero = kestrel("bench yolov8n --backend cpu --imgsz 96 --iterations 1 --duration 0 --workers 0");
  EXPECT_ONE_LINE_ERROR(zero, 2, "--workers decodes the files of --images");  // given, even as the default
  for (const char* verb : {"bench yolov8n --images x.jpg", "val yolov8n --data x", "predict yolov8n x.jpg"}) {
    const Result bad = kestrel(std::string(verb) + " --workers -1");
    EXPECT_EQ(bad.code, 2) << verb << ": " << bad.err;
    EXPECT_NE(bad.err.find("--workers"), std::string::npos) << verb << ": " << bad.err;
  }
}

// ---- class 2: an output never replaces an input -----------------------------------------------------

TEST(CliErrors, QuantizeRefusesToReplaceTheModelHoweverSpelled) {
  Dir d("quant_self");
  const std::string m = d / "m.onnx", model = kestrel::test::tiny_conv_model();
  write(m, model);
  fs::create_symlink(m, d / "link.onnx");
  for (const std::string& out : std::vector<std::string>{m, (d.path / "." / "m.onnx").string(), d / "link.onnx"}) {
    const Result r = kestrel("quantize " + m + " --calib " + d.path.string() + " -o " + out);
    EXPECT_ONE_LINE_ERROR(r, 2, "refusing to overwrite an input");
    EXPECT_EQ(slurp(m), model) << out;
  }
  const Result r = kestrel("quantize " + m + " --calib " + d.path.string() + " --calib-cache " + m);
  EXPECT_ONE_LINE_ERROR(r, 2, "is the model");
  EXPECT_EQ(slurp(m), model);
}

TEST(CliErrors, RunRefusesToReplaceItsInput) {
  Dir d("run_self");
  const std::string m = d / "m.onnx", in = d / "in.bin";
  write(m, kestrel::test::tiny_conv_model());
  const std::string input(3 * 8 * 8 * 4, '\0');
  write(in, input);
  Result r = kestrel("run " + m + " -i " + in + " -o " + (d.path / "." / "in.bin").string());
  EXPECT_ONE_LINE_ERROR(r, 2, "is the input tensor");
  EXPECT_EQ(slurp(in), input);
  r = kestrel("run " + m + " -o " + m);
  EXPECT_ONE_LINE_ERROR(r, 2, "is the model");
}

TEST(CliErrors, PredictRefusesToReplaceSourcesOrCollide) {
  Dir d("predict_self");
  const std::string m = d / "m.onnx";
  write(m, kestrel::test::tiny_conv_model());
  fs::create_directories(d.path / "a");
  fs::create_directories(d.path / "b");
  write(d / "a/x.jpg", "not decoded: refused before any work");
  write(d / "b/x.jpg", "same name");
  Result r = kestrel("predict " + m + " " + (d / "a/x.jpg") + " --out " + (d / "a/"));
  EXPECT_ONE_LINE_ERROR(r, 1, "would replace the source image");
  r = kestrel("predict " + m + " " + (d / "a/x.jpg") + " " + (d / "b/x.jpg") + " --out " + (d / "out"));
  EXPECT_ONE_LINE_ERROR(r, 1, "would both be saved as");
  r = kestrel("predict " + m + " " + (d / "a") + " --no-save --save-json " + (d / "a/x.jpg"));
  EXPECT_ONE_LINE_ERROR(r, 2, "is one of the images");
  EXPECT_EQ(slurp(d / "a/x.jpg"), "not decoded: refused before any work");
  r = kestrel("predict " + m + " " + (d / "a") + " --no-save --out " + (d / "out"));
  EXPECT_ONE_LINE_ERROR(r, 2, "--out has no effect with --no-save");
}

TEST(CliErrors, ValRefusesToReplaceTheAnnotations) {
  KESTREL_REQUIRE_DATA("coco-val/instances.json");
  Dir d("val_self");
  const fs::path ds = d.path / "coco";
  fs::create_directories(ds);
  fs::create_directory_symlink(kestrel::test::data_path("coco-val/images"), ds / "images");
  fs::copy_file(kestrel::test::data_path("coco-val/instances.json"), ds / "instances.json");
  const std::string before = slurp(ds / "instances.json");
  const Result r = kestrel("val yolov8n --imgsz 96 --data " + ds.string() + " --save-json " + (ds / "instances.json").string());
  EXPECT_ONE_LINE_ERROR(r, 2, "the dataset's annotation file");
  EXPECT_EQ(slurp(ds / "instances.json"), before);
}

// ---- class 1: writes are atomic; nothing is created before the work succeeded ----------------------

TEST(CliErrors, AFullDiskLeavesTheOldOutputWhole) {
  Dir d("full");
  const std::string out = d / "y.bin";
  write(out, "the previous output");
  // ulimit -f fails writes past a few KiB with EFBIG, as a full disk fails them with ENOSPC. The
  // built-in model at 96 px writes 84 x 189 floats (62 KiB).
  const Result r = kestrel("run yolov8n --imgsz 96 -o " + out, "ulimit -f 4; ");
  EXPECT_ONE_LINE_ERROR(r, 1, "cannot write " + out);
  EXPECT_EQ(slurp(out), "the previous output");
  size_t files = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(d.path)) ++files;
  EXPECT_EQ(files, 1u);  // no temporary file left behind
}

TEST(CliErrors, AFailedRunCreatesNoOutputFile) {
  Dir d("nothing");
  Result r = kestrel("bench " + (d / "missing.onnx") + " --backend cpu --json " + (d / "b.json"));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_FALSE(fs::exists(d / "b.json"));  // was created empty before the run
  r = kestrel("compare " + (d / "missing.onnx") + " --backend cpu --json " + (d / "c.json"));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_FALSE(fs::exists(d / "c.json"));
  r = kestrel("compare yolov8n --backend cpu --chart " + (d / "no/such/folder.svg"));
  EXPECT_ONE_LINE_ERROR(r, 1, "does not exist");
}

// ---- quantize: its command-line errors --------------------------------------------------------------

TEST(CliQuantize, CommandLineErrors) {
  Dir d("quantize");
  const std::string m = d / "m.onnx";
  write(m, kestrel::test::tiny_conv_model());
  Result r = kestrel("quantize " + m);
  EXPECT_ONE_LINE_ERROR(r, 2, "nothing to do");
  r = kestrel("quantize " + m + " --calib " + d.path.string() + " -o " + (d / "q.onnx") + " --json " + (d / "q.json"));
  EXPECT_ONE_LINE_ERROR(r, 2, "--json writes the --val figures");
  r = kestrel("quantize " + m + " --calib " + d.path.string() + " --calib-algo minmax --percentile 99.9 -o " + (d / "q.onnx"));
  EXPECT_ONE_LINE_ERROR(r, 2, "--percentile has no effect with --calib-algo minmax");
  r = kestrel("quantize " + m + " -o " + (d / "q.onnx"));
  EXPECT_ONE_LINE_ERROR(r, 2, "INT8 needs calibration images");
  r = kestrel("quantize " + m + " --calib-algo fancy -o " + (d / "q.onnx"));
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  // An unwritable -o is found before the calibration minute, not after.
  r = kestrel("quantize " + m + " --calib " + d.path.string() + " -o " + (d / "no/such/q.onnx"));
  EXPECT_ONE_LINE_ERROR(r, 1, "does not exist");
  EXPECT_EQ(r.out.find("calibration"), std::string::npos) << r.out;
  // A 0-byte cache (left by a full disk) alone: says so.
  write(d / "empty.cache", "");
  r = kestrel("quantize yolov8n --imgsz 96 --calib-cache " + (d / "empty.cache") + " -o " + (d / "q.onnx"));
  EXPECT_ONE_LINE_ERROR(r, 1, "is empty");
}

// ---- build: its command-line errors (CUDA builds of kestrel only; no GPU needed) -------------------

TEST(CliBuild, CommandLineErrors) {
  if (kestrel("build --help").code != 0) GTEST_SKIP() << "this kestrel has no CUDA backend (no build verb)";
  Dir d("build");
  const std::string m = d / "m.onnx", model = kestrel::test::tiny_conv_model();
  write(m, model);
  Result r = kestrel("build " + m + " -o " + m);
  EXPECT_ONE_LINE_ERROR(r, 2, "is the model");
  EXPECT_EQ(slurp(m), model);
  r = kestrel("build " + m + " -o " + (d / "m.engine") + " --calib " + d.path.string());
  EXPECT_ONE_LINE_ERROR(r, 2, "--calib only applies to INT8: add --int8");
  r = kestrel("build " + m + " -o " + (d / "m.engine") + " --precision-constraints obey");
  EXPECT_ONE_LINE_ERROR(r, 2, "--int8 builds only");
  r = kestrel("build " + m + " -o " + (d / "no/such/m.engine"));
  EXPECT_ONE_LINE_ERROR(r, 1, "does not exist");
  write(d / "dyn.onnx", dynamic_batch_model());
  r = kestrel("build " + (d / "dyn.onnx") + " -o " + (d / "m.engine") + " --imgsz 64");
  EXPECT_ONE_LINE_ERROR(r, 2, "--imgsz 64 has no effect");
  r = kestrel("build " + m + " -o " + (d / "m.engine") + " --int8");
  EXPECT_ONE_LINE_ERROR(r, 2, "INT8 needs calibration images");
  // Batch profiles: checked against the model before any tuning.
  const std::string e = " -o " + (d / "m.engine");
  r = kestrel("build " + m + e + " --tacticSources=-FOO");
  EXPECT_ONE_LINE_ERROR(r, 2, "unknown source 'FOO'");
  r = kestrel("build " + m + e + " --tacticSources CUDNN");
  EXPECT_ONE_LINE_ERROR(r, 2, "is not +SOURCE or -SOURCE");
  r = kestrel("build " + m + e + " --maxAuxStreams 64");
  EXPECT_ONE_LINE_ERROR(r, 2, "--maxAuxStreams");
  r = kestrel("build " + m + e + " --maxAuxStreams -1");
  EXPECT_ONE_LINE_ERROR(r, 2, "--maxAuxStreams");
  r = kestrel("build " + m + e + " --batch 2 --max-batch 8");
  EXPECT_ONE_LINE_ERROR(r, 2, "give one");
  r = kestrel("build " + m + e + " --min-batch 2");
  EXPECT_ONE_LINE_ERROR(r, 2, "needs its largest batch");
  r = kestrel("build " + m + e + " --min-batch 8 --max-batch 4");
  EXPECT_ONE_LINE_ERROR(r, 2, "min <= opt <= max");
  r = kestrel("build " + m + e + " --maxShapes input:8x3x8x8");
  EXPECT_ONE_LINE_ERROR(r, 2, "the model's input is 'images'");
  r = kestrel("build " + m + e + " --maxShapes images:8x3x16x16");
  EXPECT_ONE_LINE_ERROR(r, 2, "only the batch");
  r = kestrel("build " + m + e + " --maxShapes images:8x3xAx8");
  EXPECT_ONE_LINE_ERROR(r, 2, "'A' is not a positive dimension");
  r = kestrel("build " + m + e + " --maxShapes images:8x3x8x8 --max-batch 8");
  EXPECT_EQ(r.code, 2) << r.err;  // the two forms exclude each other
  EXPECT_FALSE(fs::exists(d / "m.engine"));
}

// ---- calibration caches across verbs (needs coco128) -----------------------------------------------

struct CalibData : ::testing::Test {
  void SetUp() override {
    if (!fs::exists(kestrel::test::data_path("coco128/images/000000000009.jpg")))
      GTEST_SKIP() << "test data not found: " << kestrel::test::data_path("coco128").string();
  }
  std::string coco128() const { return kestrel::test::data_path("coco128/images").string(); }
};

TEST_F(CalibData, ACacheMadeWithOneAlgorithmIsNotAnsweredForAnother) {
  Dir d("calib_algo");
  const std::string cache = d / "c.cache";
  Result r = kestrel("quantize yolov8n --imgsz 96 --calib " + coco128() + " --calib-images 2 --calib-cache " + cache +
                     " --no-default-policy");
  ASSERT_EQ(r.code, 0) << r.err;
  r = kestrel("quantize yolov8n --imgsz 96 --calib-cache " + cache + " -o " + (d / "q.onnx"));
  EXPECT_EQ(r.code, 0) << r.err;  // no --calib-algo: the cache's own algorithm
  r = kestrel("quantize yolov8n --imgsz 96 --calib-algo minmax --calib-cache " + cache + " -o " + (d / "q2.onnx"));
  EXPECT_ONE_LINE_ERROR(r, 1, "was made with percentile");
  EXPECT_FALSE(fs::exists(d / "q2.onnx"));
}

TEST_F(CalibData, OneCacheServesEveryBatchSize) {
  // bench --batch 32 refused the cache val made at batch 1 ("made for another model"): the batch
  // was part of the model's identity.
  Dir d("calib_batch");
  const fs::path ds = d.path / "ds";
  fs::create_directories(ds / "images");
  fs::create_directories(ds / "labels");
  for (const char* id : {"000000000009", "000000000025"}) {
    fs::create_symlink(kestrel::test::data_path(std::string("coco128/images/") + id + ".jpg"), ds / "images" / (std::string(id) + ".jpg"));
    fs::create_symlink(kestrel::test::data_path(std::string("coco128/labels/") + id + ".txt"), ds / "labels" / (std::string(id) + ".txt"));
  }
  const std::string cache = d / "c.cache";
  Result r = kestrel("val yolov8n --imgsz 96 --backend cpu --int8 --calib " + coco128() + " --calib-images 2 --calib-cache " +
                     cache + " --data " + ds.string());
  ASSERT_EQ(r.code, 0) << r.err;
  r = kestrel("val yolov8n --imgsz 96 --batch 2 --backend cpu --int8 --calib-cache " + cache + " --data " + ds.string());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("scales from " + cache), std::string::npos) << r.out;
}

TEST_F(CalibData, ValWithoutLabelsMeasuresNothingAndFails) {
  Dir d("nolabels");
  fs::create_directories(d.path / "images");
  fs::create_symlink(kestrel::test::data_path("coco128/images/000000000009.jpg"), d.path / "images" / "a.jpg");
  const Result r = kestrel("val yolov8n --imgsz 96 --data " + d.path.string());
  EXPECT_ONE_LINE_ERROR(r, 1, "nothing to evaluate");
}

// ---- class 5: paths in any spelling, broken folder entries ------------------------------------------

// The detections part of predict's JSON ("detections": [...] per image), without the paths.
std::string detections_of(const std::string& json) {
  std::string out;
  for (size_t at = json.find("\"detections\""); at != std::string::npos; at = json.find("\"detections\"", at + 1))
    out += json.substr(at, json.find(']', at) - at) + "|";
  return out;
}

TEST_F(CalibData, PredictOnAFolderWithBrokenEntriesWarnsPerEntryAndGoesOn) {
  Dir d("broken_entries");
  const fs::path imgs = d.path / "imgs";
  fs::create_directories(imgs);
  fs::create_symlink(kestrel::test::data_path("coco128/images/000000000009.jpg"), imgs / "good.jpg");
  fs::create_symlink(imgs / "gone.jpg", imgs / "dangling.jpg");
  fs::create_symlink(imgs / "self.jpg", imgs / "self.jpg");
  const Result r = kestrel("predict yolov8n --imgsz 96 " + imgs.string() + " --no-save --save-json " + (d / "p.json"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("dangling.jpg: skipped"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("self.jpg: skipped"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("1 images"), std::string::npos) << r.out;
}

TEST_F(CalibData, EverySpellingOfAFolderGivesTheSameDetections) {
  Dir d("spellings");
  const fs::path imgs = d.path / "imgs";
  fs::create_directories(imgs);
  for (const char* id : {"000000000009", "000000000025"})
    fs::copy_file(kestrel::test::data_path(std::string("coco128/images/") + id + ".jpg"), imgs / (std::string(id) + ".jpg"));
  fs::create_directory_symlink(imgs, d.path / "link");
  std::string first;
  for (const std::string& spelling : std::vector<std::string>{imgs.string(), imgs.string() + "/", (d.path / "." / "imgs" / ".." / "imgs").string(),
                                     (d.path / "link").string() + "/"}) {
    const Result r = kestrel("predict yolov8n --imgsz 96 --conf 0.01 " + spelling + " --no-save --save-json " + (d / "p.json"));
    ASSERT_EQ(r.code, 0) << spelling << ": " << r.err;
    const std::string dets = detections_of(slurp(d / "p.json"));
    EXPECT_NE(dets.find("class_id"), std::string::npos) << spelling;  // something was detected
    if (first.empty()) first = dets;
    EXPECT_EQ(dets, first) << spelling;
  }
}

}  // namespace
