#include "util/progress.h"

#include <unistd.h>

#include <cstdio>

namespace kestrel::util {

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), tty_(isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {
  if (tty_) draw(false);
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::advance(int64_t n) {
  done_ += n;
  // Open-ended work (a benchmark that runs "at least N iterations and at least T seconds") outgrows its
  // first estimate: grow the total rather than show more than 100%.
  if (done_ > total_) total_ = done_;
  const auto now = std::chrono::steady_clock::now();
  if (tty_ && (now - last_draw_ > std::chrono::milliseconds(100) || done_ >= total_)) {
    last_draw_ = now;
    draw(false);
  }
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void ProgressBar::draw(bool final_line) {
  constexpr int kWidth = 30;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double frac = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  const int filled = static_cast<int>(frac * kWidth + 0.5);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  const double rate = secs > 0 ? static_cast<double>(done_) / secs : 0.0;
  std::fprintf(stderr, "%s%-10s %5lld/%-5lld [%s] %3.0f%%  %.1f %s/s  %.1fs%s%s%s", tty_ ? "\r" : "", label_.c_str(),
               static_cast<long long>(done_), static_cast<long long>(total_), bar.c_str(), frac * 100, rate,
               unit_.c_str(), secs, suffix_.empty() ? "" : "  ", suffix_.c_str(), final_line ? "\n" : "");
  if (tty_ && !final_line) std::fprintf(stderr, "\x1b[K");
  std::fflush(stderr);
}

}  // namespace kestrel::util
