// GPU letterbox and detection kernels alone, timed with CUDA events (median of 200 launches after a
// warm-up), on real head outputs: ../shared/data/golden (or $KESTREL_DATA/golden) replicated to the
// batch. Each detection case also runs with max_det 1, which leaves out the NMS loop's work, and the
// candidate count per class is printed (the CPU decode's), so a slow case can be traced to its cause.
//   prepost_bench [DATA_DIR]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/check.h"
#include "backend/cuda/yolo_kernels.h"
#include "kestrel/yolo.h"
#include "util/file_io.h"
#include "yolo/resize_plan.h"

namespace {

using namespace kestrel;

template <typename F>
double median_ms(F&& launch, int runs = 200) {
  cudaEvent_t a, b;
  KCUDA(cudaEventCreate(&a));
  KCUDA(cudaEventCreate(&b));
  for (int i = 0; i < 10; ++i) launch();
  std::vector<float> t;
  for (int i = 0; i < runs; ++i) {
    KCUDA(cudaEventRecord(a));
    launch();
    KCUDA(cudaEventRecord(b));
    KCUDA(cudaEventSynchronize(b));
    float ms = 0;
    KCUDA(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return t[t.size() / 2];
}

void bench_letterbox(int batch) {
  const int S = 640, W = 640, H = 480;  // a typical COCO image
  std::vector<uint8_t> pixels(static_cast<size_t>(W) * H * 3 * batch);
  std::mt19937 rng(1);
  for (auto& v : pixels) v = static_cast<uint8_t>(rng());
  const yolo::LetterboxInfo g = yolo::letterbox_geometry(W, H, S);
  const auto plan = yolo::detail::resize_plan(W, H, g.new_w, g.new_h);
  std::vector<cuda::LetterboxJob> jobs(batch);
  std::vector<yolo::detail::ResizeTap> taps(plan.xt);
  taps.insert(taps.end(), plan.yt.begin(), plan.yt.end());
  for (int i = 0; i < batch; ++i) {
    cuda::LetterboxJob& j = jobs[i];
    j = {};
    j.pixels = static_cast<int64_t>(i) * W * H * 3;
    j.src_w = W, j.src_h = H, j.new_w = g.new_w, j.new_h = g.new_h, j.pad_left = g.pad_left, j.pad_top = g.pad_top;
    j.mode = static_cast<int32_t>(plan.mode), j.xtaps = 0, j.ytaps = static_cast<int32_t>(plan.xt.size()), j.xmax = plan.xmax;
  }
  void *dp, *dj, *dt, *dout;
  KCUDA(cudaMalloc(&dp, pixels.size()));
  KCUDA(cudaMalloc(&dj, jobs.size() * sizeof(jobs[0])));
  KCUDA(cudaMalloc(&dt, taps.size() * sizeof(taps[0])));
  KCUDA(cudaMalloc(&dout, sizeof(float) * 3 * S * S * batch));
  KCUDA(cudaMemcpy(dp, pixels.data(), pixels.size(), cudaMemcpyHostToDevice));
  KCUDA(cudaMemcpy(dj, jobs.data(), jobs.size() * sizeof(jobs[0]), cudaMemcpyHostToDevice));
  KCUDA(cudaMemcpy(dt, taps.data(), taps.size() * sizeof(taps[0]), cudaMemcpyHostToDevice));
  const double ms = median_ms([&] {
    cuda::launch_letterbox(static_cast<uint8_t*>(dp), static_cast<cuda::LetterboxJob*>(dj),
                           static_cast<yolo::detail::ResizeTap*>(dt), batch, batch, S, static_cast<float*>(dout), nullptr);
  });
  const double bytes = static_cast<double>(pixels.size()) + 4.0 * 3 * S * S * batch;
  std::printf("letterbox  batch %2d  640x480 -> 640: %8.4f ms  (%.0f GB/s of the %.1f MB it must move)\n", batch, ms,
              bytes / ms / 1e6, bytes / 1e6);
  cudaFree(dp), cudaFree(dj), cudaFree(dt), cudaFree(dout);
}

void bench_detect(const std::string& name, const std::vector<float>& one, yolo::HeadKind kind, int64_t anchors, int batch,
                  bool validation) {
  const int64_t channels = kind == yolo::HeadKind::V8 ? 84 : 85;
  yolo::NmsOptions o = validation ? yolo::NmsOptions::validation(kind) : yolo::NmsOptions::prediction();
  std::vector<float> out;
  for (int b = 0; b < batch; ++b) out.insert(out.end(), one.begin(), one.end());
  auto cand = yolo::decode_candidates(one.data(), channels, anchors, kind, o);
  std::map<int, int> per_class;
  for (auto& c : cand) ++per_class[c.cls];
  int biggest = 0;
  for (auto& [c, n] : per_class) biggest = std::max(biggest, n);
  cuda::DetectParams p;
  p.batch = batch, p.anchors = static_cast<int>(anchors), p.channels = static_cast<int>(channels), p.nc = 80;
  p.v5 = kind == yolo::HeadKind::V5, p.multi_label = o.multi_label, p.conf = o.conf, p.iou = o.iou;
  p.max_det = o.max_det, p.max_nms = o.max_nms, p.max_wh = o.max_wh;
  std::vector<cuda::UnletterboxInfo> info(batch, cuda::UnletterboxInfo{1.f, 0.f, 0.f, 640.f, 640.f});
  void *dout, *dinfo, *ws, *dets, *cnt;
  KCUDA(cudaMalloc(&dout, out.size() * 4));
  KCUDA(cudaMemcpy(dout, out.data(), out.size() * 4, cudaMemcpyHostToDevice));
  KCUDA(cudaMalloc(&dinfo, info.size() * sizeof(info[0])));
  KCUDA(cudaMemcpy(dinfo, info.data(), info.size() * sizeof(info[0]), cudaMemcpyHostToDevice));
  KCUDA(cudaMalloc(&ws, cuda::detect_workspace_bytes(p)));
  KCUDA(cudaMalloc(&dets, sizeof(float) * 6 * o.max_det * batch));
  KCUDA(cudaMalloc(&cnt, 12 * batch));
  auto* c = static_cast<int32_t*>(cnt);
  const double full = median_ms([&] {
    cuda::launch_detect(static_cast<float*>(dout), p, static_cast<cuda::UnletterboxInfo*>(dinfo), ws, static_cast<float*>(dets),
                        c, reinterpret_cast<uint32_t*>(c + batch), c + 2 * batch, nullptr);
  });
  cuda::DetectParams p1 = p;
  p1.max_det = 1;
  const double no_nms = median_ms([&] {
    cuda::launch_detect(static_cast<float*>(dout), p1, static_cast<cuda::UnletterboxInfo*>(dinfo), ws, static_cast<float*>(dets),
                        c, reinterpret_cast<uint32_t*>(c + batch), c + 2 * batch, nullptr);
  });
  std::printf("detect %-24s batch %2d %s: %8.4f ms  (max_det 1: %.4f ms); %zu candidates, %zu classes, largest %d\n",
              name.c_str(), batch, validation ? "val " : "pred", full, no_nms, cand.size(), per_class.size(), biggest);
  cudaFree(dout), cudaFree(dinfo), cudaFree(ws), cudaFree(dets), cudaFree(cnt);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string data = argc > 1 ? argv[1] : (std::getenv("KESTREL_DATA") ? std::getenv("KESTREL_DATA") : "../shared/data");
    for (int b : {1, 32}) bench_letterbox(b);
    for (const char* model : {"yolov8n", "yolo11n", "yolov5n"}) {
      for (const char* image : {"000000000139", "000000037777"}) {
        const std::string f = data + "/golden/" + model + "." + image + ".output.bin";
        if (!std::filesystem::exists(f)) continue;
        const std::vector<char> bytes = util::read_file(f);
        std::vector<float> one(bytes.size() / 4);
        std::memcpy(one.data(), bytes.data(), one.size() * 4);
        const bool v5 = std::string(model) == "yolov5n";
        for (int b : {1, 32})
          for (bool val : {true, false})
            bench_detect(std::string(model) + " " + image, one, v5 ? yolo::HeadKind::V5 : yolo::HeadKind::V8,
                         v5 ? 25200 : 8400, b, val);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "prepost_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
