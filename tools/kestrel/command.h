#pragma once
// Each CLI verb lives in its own file and registers itself on the root app; main.cpp runs the one
// the user chose. A verb's run function returns the process exit code.
#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace kestrel::cli {

struct Command {
  CLI::App* app;
  std::function<int()> run;
};

Command add_inspect(CLI::App& root);
Command add_run(CLI::App& root);
Command add_val(CLI::App& root);
Command add_predict(CLI::App& root);
Command add_bench(CLI::App& root);
Command add_compare(CLI::App& root);
Command add_quantize(CLI::App& root);  // cmd_quantize.cpp (INT8 calibration and Q/DQ export)
#ifdef KESTREL_HAS_CUDA
Command add_build(CLI::App& root);  // cmd_build.cpp (CUDA builds only)
#endif

// The exit code for a user error (bad file, bad model, ...); usage errors exit 2 through CLI11.
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

}  // namespace kestrel::cli
