#include "int8_args.h"

#include "cli_checks.h"
#include "kestrel/error.h"

namespace kestrel::cli {

void add_int8_options(CLI::App* app, Int8Args& a) {
  app->add_option("--calib", a.calib, "Folder of INT8 calibration images (training images, never the validation set)");
  app->add_option("--calib-images", a.calib_images,
                  "Calibration images to use (default: 128, or all when fewer; an error when given and fewer are "
                  "available)")
      ->check(CLI::Range(1, 1000000))
      ->each([&a](const std::string&) { a.calib_images_set = true; });
  app->add_option("--calib-algo", a.algo,
                  "Calibrator: percentile (of |x|, --percentile), minmax, entropy (TensorRT's KL search; clips "
                  "YOLO's SiLU activations too hard, see bench/RESULTS.md) or mse (least squared quantization error)")
      ->check(CLI::IsMember({"entropy", "minmax", "percentile", "mse"}))
      ->capture_default_str()
      ->each([&a](const std::string&) { a.algo_set = true; });
  app->add_option("--percentile", a.percentile, "Percentile of |x| for --calib-algo percentile")
      ->check(finite_range(50.0, 100.0))
      ->capture_default_str()
      ->each([&a](const std::string&) { a.algo_set = a.percentile_set = true; });
  app->add_option("--calib-cache", a.cache,
                  "Calibration cache: reused when model, preprocessing, algorithm and images all match, else written");
  app->add_option("--layer-precision", a.rules,
                  "PATTERN:int8|fp16|fp32,... glob on layer names, e.g. '/model.22/*:fp16' (later entries win)");
  app->add_flag("--no-default-policy", a.no_default_policy,
                "Quantize the detection head's output convs too (default: they and the decode stay fp16)");
  app->add_option("--fp16-early-stride", a.fp16_early_stride,
                  "Default policy: the backbone's early convs up to this output stride (the stem excepted) stay fp16, "
                  "where INT8's noise compounds (0: none)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str()
      ->each([&a](const std::string&) { a.fp16_early_stride_set = true; });
  app->add_flag("--int8-auto", a.int8_auto,
                "Measure each layer's sensitivity and promote the worst to fp16 until the detections agree with "
                "FP32's to --auto-target on the --auto-images calibration images");
  app->add_option("--auto-target", a.auto_target,
                  "Agreement with FP32 --int8-auto aims for: mAP of the INT8 model's detections against FP32's "
                  "(from conf 0.01: training images are detected confidently) on calibration images")
      ->check(finite_range(1e-6, 1.0))
      ->capture_default_str();
  app->add_option("--bias-correct-images", a.bias_images,
                  "Empirical bias correction of the INT8 convs on this many calibration images (0: none)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app->add_option("--auto-images", a.auto_images, "Calibration images --int8-auto measures on")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
}

std::string int8_options_given(const Int8Args& a) {
  std::string given;
  auto note = [&](bool set, const char* flag) {
    if (set) given += (given.empty() ? "" : ", ") + std::string(flag);
  };
  note(!a.calib.empty(), "--calib");
  note(a.calib_images_set, "--calib-images");
  note(a.algo_set, "--calib-algo/--percentile");
  note(!a.cache.empty(), "--calib-cache");
  note(!a.rules.empty(), "--layer-precision");
  note(a.no_default_policy, "--no-default-policy");
  note(a.int8_auto, "--int8-auto");
  note(a.fp16_early_stride_set, "--fp16-early-stride");
  note(a.bias_images > 0, "--bias-correct-images");
  return given;
}

void check_int8_options_used(const Int8Args& a, bool int8, const std::string& int8_flag) {
  if (int8) return;
  const std::string given = int8_options_given(a);
  if (!given.empty())
    throw UsageError(given + (given.find(',') == std::string::npos ? " only applies" : " only apply") + " to INT8: add " +
                     int8_flag);
}

}  // namespace kestrel::cli
