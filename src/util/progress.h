#pragma once
// A one-line progress bar on stderr for long work (validation, calibration, benchmarks). It redraws
// in place on a terminal and prints only the final line otherwise, so logs stay readable.
#include <chrono>
#include <cstdint>
#include <string>

namespace kestrel::util {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::string unit = "img");
  ~ProgressBar();
  void advance(int64_t n = 1);
  void set_suffix(std::string s) { suffix_ = std::move(s); }
  void finish();

 private:
  void draw(bool final_line);
  std::string label_, unit_, suffix_;
  int64_t total_, done_ = 0;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace kestrel::util
