#include "cli_checks.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "kestrel/error.h"
#include "util/file_io.h"
#include "util/paths.h"

namespace kestrel::cli {

CLI::Validator finite_range(double lo, double hi) {
  const std::string range = "[" + CLI::detail::to_string(lo) + " - " + CLI::detail::to_string(hi) + "]";
  return CLI::Validator(
      [lo, hi, range](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || *end != '\0') return "'" + s + "' is not a finite number";
        if (!std::isfinite(v)) return "'" + s + "' is not a finite number";
        if (v < lo || v > hi) return "value " + s + " not in range " + range;
        return {};
      },
      range);
}

void check_imgsz_applied(int64_t imgsz, const Shape& input, const std::string& model) {
  if (imgsz <= 0 || input.size() != 4) return;
  if (input[2] != imgsz || input[3] != imgsz)
    throw UsageError("--imgsz " + std::to_string(imgsz) + " has no effect: " + model + " has a fixed " +
                     std::to_string(input[2]) + "x" + std::to_string(input[3]) +
                     " input (leave --imgsz out, or export the model with dynamic height and width)");
}

void check_output(const std::string& out, const std::string& what, const std::vector<NamedInput>& inputs) {
  if (out.empty()) return;
  std::error_code ec;
  for (const auto& [path, name] : inputs)
    if (!path.empty() && std::filesystem::exists(path, ec)) util::refuse_overwrite(out, what, path, name);
  util::check_writable(out, what);
}

void write_json(const std::string& path, const std::string& dumped) { util::write_file(path, dumped + "\n"); }

CLI::Option* add_workers_option(CLI::App* app, int& workers) {
  return app->add_option("--workers", workers, "Threads decoding image files (0: one per hardware thread but one)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
}

}  // namespace kestrel::cli
