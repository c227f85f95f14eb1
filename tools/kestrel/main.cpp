// kestrel: build, run, measure and validate YOLO engines. One verb per file (cmd_*.cpp).
#include <csignal>
#include <cstdio>
#include <vector>

#include "command.h"
#include "kestrel/error.h"
#include "kestrel/version.h"

int main(int argc, char** argv) {
  using namespace kestrel::cli;
  // Past a file-size limit (ulimit -f) a write fails with EFBIG and is reported like a full disk,
  // instead of the process being killed by SIGXFSZ halfway through a file.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App root{"Kestrel: fast, verified YOLO engines for NVIDIA GPUs (and a CPU reference backend)", "kestrel"};
  root.set_version_flag("--version", std::string("kestrel ") + KESTREL_VERSION_STRING);
  root.require_subcommand(1);
  std::vector<Command> commands = {add_inspect(root), add_run(root), add_val(root), add_predict(root), add_bench(root), add_compare(root)};
  commands.push_back(add_quantize(root));
#ifdef KESTREL_HAS_CUDA
  commands.push_back(add_build(root));
#endif
  try {
    root.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return root.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return root.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return root.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line on stderr, as with every other error; --help has the details.
    std::fprintf(stderr, "kestrel: error: %s (see kestrel --help)\n", e.what());
    return kExitUsage;
  }
  try {
    for (auto& c : commands)
      if (c.app->parsed()) return c.run();
  } catch (const kestrel::UsageError& e) {
    std::fprintf(stderr, "kestrel: error: %s\n", e.what());
    return kExitUsage;
  } catch (const kestrel::Error& e) {
    std::fprintf(stderr, "kestrel: error: %s\n", e.what());
    return kExitFailure;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "kestrel: error: out of memory\n");
    return kExitFailure;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kestrel: internal error: %s\n", e.what());
    return kExitFailure;
  }
  return kExitUsage;
}
