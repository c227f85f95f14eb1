#pragma once
// Decodes image files on a pool of threads, ahead of the consumer and in order: next() returns file
// k's image (or why it could not be read) for k = 0, 1, 2, ... At most `window` decoded images wait
// at any time, so memory stays bounded however long the list is. A file that fails to decode (or
// anything thrown while decoding) becomes that entry's error; it never stalls or drops another.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kestrel/image.h"

namespace kestrel::image {

struct LoadedImage {
  size_t index = 0;
  std::string path;
  Image image;
  std::string error;    // non-empty: the one-line reason this file was not decoded
  double decode_ms = 0; // time the decode took on its worker
};

class ImageLoader {
 public:
  // threads 0: one per hardware thread but one (the consumer's); window 0: 4 per thread.
  explicit ImageLoader(std::vector<std::string> paths, int threads = 0, size_t window = 0);
  // The window for a consumer that takes batches of `batch`: four batches ahead, and at least two images
  // per thread (else, at batch 1, most threads would sit idle behind a window of four).
  static size_t window_for_batch(int64_t batch, int threads);
  static int resolve_threads(int threads);  // 0: one per hardware thread but one
  ~ImageLoader();
  ImageLoader(const ImageLoader&) = delete;
  ImageLoader& operator=(const ImageLoader&) = delete;

  size_t size() const { return paths_.size(); }
  bool done() const { return consumed_ == paths_.size(); }
  // The next image in order; blocks until it is decoded. Throws when every image was returned.
  LoadedImage next();

 private:
  void work();

  std::vector<std::string> paths_;
  size_t window_;
  std::vector<LoadedImage> slots_;  // ring of `window_` entries
  std::vector<char> ready_;
  size_t claimed_ = 0;   // next index a worker takes
  size_t consumed_ = 0;  // next index next() returns
  bool stop_ = false;
  std::mutex mu_;
  std::condition_variable cv_work_, cv_ready_;
  std::vector<std::thread> workers_;
};

}  // namespace kestrel::image
