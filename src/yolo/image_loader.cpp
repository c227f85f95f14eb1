#include "kestrel/image_loader.h"

#include <chrono>
#include <exception>

#include "kestrel/error.h"

namespace kestrel::image {

int ImageLoader::resolve_threads(int threads) {
  // One hardware thread is left to the consumer: the batch loop that takes the images stages them for
  // the GPU on its own thread, and a decoder beside it on every core slows both.
  if (threads > 0) return threads;
  return static_cast<int>(std::max(2u, std::thread::hardware_concurrency()) - 1);
}

size_t ImageLoader::window_for_batch(int64_t batch, int threads) {
  return std::max(static_cast<size_t>(4 * std::max<int64_t>(batch, 1)), static_cast<size_t>(2 * resolve_threads(threads)));
}

ImageLoader::ImageLoader(std::vector<std::string> paths, int threads, size_t window) : paths_(std::move(paths)) {
  threads = resolve_threads(threads);
  threads = static_cast<int>(std::min<size_t>(static_cast<size_t>(threads), std::max<size_t>(paths_.size(), 1)));
  window_ = window ? window : static_cast<size_t>(threads) * 4;
  slots_.resize(window_);
  ready_.assign(window_, 0);
  for (int t = 0; t < threads; ++t) workers_.emplace_back([this] { work(); });
}

ImageLoader::~ImageLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  for (auto& w : workers_) w.join();
}

void ImageLoader::work() {
  for (;;) {
    size_t k;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Take the next index once its slot in the window is free.
      cv_work_.wait(lock, [&] { return stop_ || claimed_ >= paths_.size() || claimed_ < consumed_ + window_; });
      if (stop_ || claimed_ >= paths_.size()) return;
      k = claimed_++;
    }
    LoadedImage r;
    r.index = k;
    r.path = paths_[k];
    const auto t0 = std::chrono::steady_clock::now();
    try {
      r.image = read_image(r.path);
    } catch (const std::exception& e) {
      r.error = e.what();
      r.image = Image{};
    } catch (...) {
      r.error = r.path + ": unknown error while decoding";
    }
    r.decode_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    {
      std::lock_guard<std::mutex> lock(mu_);
      slots_[k % window_] = std::move(r);
      ready_[k % window_] = 1;
    }
    cv_ready_.notify_all();
  }
}

LoadedImage ImageLoader::next() {
  std::unique_lock<std::mutex> lock(mu_);
  KESTREL_CHECK(consumed_ < paths_.size(), "ImageLoader: all ", paths_.size(), " images were already returned");
  const size_t slot = consumed_ % window_;
  cv_ready_.wait(lock, [&] { return ready_[slot] != 0; });
  LoadedImage r = std::move(slots_[slot]);
  ready_[slot] = 0;
  ++consumed_;
  lock.unlock();
  cv_work_.notify_all();
  return r;
}

}  // namespace kestrel::image
