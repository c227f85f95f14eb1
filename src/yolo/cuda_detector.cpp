#include "cuda_detector.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include "backend/cuda/check.h"
#include "backend/cuda/yolo_kernels.h"
#include "resize_plan.h"

namespace kestrel::yolo {

namespace {

using cuda::LetterboxJob;
using cuda::UnletterboxInfo;
using detail::ResizeTap;

size_t align256(size_t n) { return (n + 255) & ~size_t{255}; }

// Device and pinned host allocations that grow on demand (never while work that uses them is queued).
// Alloc/Free name the CUDA calls; Host marks pinned host memory, which grows by half again (staging
// grows with the largest images seen, not once per slightly larger one) and may keep what it holds.
template <cudaError_t (*Alloc)(void**, size_t), cudaError_t (*Free)(void*), bool Host>
struct GrowingBuffer {
  void* p = nullptr;
  size_t bytes = 0;
  ~GrowingBuffer() { if (p) Free(p); }
  // At least n bytes; the first `keep` bytes survive a reallocation (host memory only).
  void* need(size_t n, size_t keep = 0) {
    KESTREL_CHECK(Host || keep == 0, "internal: device staging cannot keep its contents when it grows");
    if (n <= bytes) return p;
    const size_t grown = Host ? std::max(n, bytes + bytes / 2) : n;
    void* q = nullptr;
    KCUDA(Alloc(&q, grown));
    if (keep) std::memcpy(q, p, keep);
    void* old = p;
    p = q, bytes = grown;
    if (old) KCUDA(Free(old));
    return p;
  }
};
cudaError_t device_alloc(void** p, size_t n) { return cudaMalloc(p, n); }
cudaError_t pinned_alloc(void** p, size_t n) { return cudaHostAlloc(p, n, cudaHostAllocDefault); }
using DeviceBuffer = GrowingBuffer<device_alloc, cudaFree, false>;
using PinnedBuffer = GrowingBuffer<pinned_alloc, cudaFreeHost, true>;

// Sources larger than this many bytes are letterboxed on the CPU (the same arithmetic) and uploaded
// as the finished canvas, so a huge image never needs a huge staging buffer.
constexpr size_t kMaxUploadBytes = size_t{64} << 20;

// Room kept after a batch's pixels for its letterbox jobs, unletterbox info and resize taps (a few KB
// for the usual batch), so that submitting rarely reallocates.
constexpr size_t kMetadataReserve = size_t{1} << 20;

// One batch in flight: its staging, its results and the events that time it.
struct Slot {
  PinnedBuffer h_stage, h_res;
  DeviceBuffer d_stage, d_res, d_raw;
  // Upload start and end (copy stream); letterbox start, network start, network end, detection kernels
  // end, results copied back (the context's stream).
  cudaEvent_t ev[7] = {};
  int n = 0;
  bool gpu_nms = false;
  NmsOptions nms;
  HeadKind head = HeadKind::V8;
  size_t head_bytes = 0, dets_bytes = 0;
  std::vector<LetterboxInfo> geo;
};

class CudaDetector final : public ImageDetector {
 public:
  explicit CudaDetector(ExecutionContext& ctx) : ctx_(ctx) {
    const EngineInfo& info = ctx.info();
    KESTREL_CHECK(info.inputs.size() == 1 && info.outputs.size() == 1, "a detector engine has one input and one output; this one has ",
                  info.inputs.size(), " and ", info.outputs.size());
    in_ = info.inputs[0];
    out_ = info.outputs[0];
    KESTREL_CHECK(in_.dtype == DType::F32 && in_.shape.size() == 4 && in_.shape[1] == 3 && in_.shape[2] == in_.shape[3],
                  "the engine input ", shape_str(in_.shape), " is not a float32 [B,3,S,S] image batch");
    KESTREL_CHECK(out_.dtype == DType::F32 && out_.shape.size() == 3, "the engine output ", shape_str(out_.shape),
                  " is not a float32 detection head");
    batch_ = static_cast<int>(in_.shape[0]);
    min_batch_ = static_cast<int>(std::max<int64_t>(info.min_batch, 1));
    size_ = static_cast<int>(in_.shape[2]);
    per_image_out_ = static_cast<size_t>(out_.shape[1] * out_.shape[2]);
    KCUDA(cudaMalloc(&d_in_, static_cast<size_t>(shape_numel(in_.shape)) * sizeof(float)));
    KCUDA(cudaMalloc(&d_out_, static_cast<size_t>(shape_numel(out_.shape)) * sizeof(float)));
    KCUDA(cudaStreamCreateWithFlags(&copy_, cudaStreamNonBlocking));
    // The host waits on the last event of a batch: blocking, so the waiting thread leaves its core to the
    // decoders instead of spinning.
    for (Slot& s : slots_) {
      for (int k = 0; k < 6; ++k) KCUDA(cudaEventCreate(&s.ev[k]));
      KCUDA(cudaEventCreateWithFlags(&s.ev[6], cudaEventBlockingSync));
    }
  }
  ~CudaDetector() override {
    if (copy_) cudaStreamSynchronize(copy_);
    cudaStreamSynchronize(ctx_.stream());
    for (Slot& s : slots_)
      for (auto& e : s.ev)
        if (e) cudaEventDestroy(e);
    if (copy_) cudaStreamDestroy(copy_);
    if (d_in_) cudaFree(d_in_);
    if (d_out_) cudaFree(d_out_);
  }

  int depth() const override { return kDepth; }
  int in_flight() const override { return static_cast<int>(queue_.size()); }

  void add(const image::Image& img) override {
    KESTREL_CHECK(in_flight() < kDepth, "detect: ", kDepth, " batches are in flight; collect() one first");
    KESTREL_CHECK(static_cast<int>(building_.jobs.size()) < batch_, "detect: more than ", batch_,
                  " images for an engine of batch ", batch_);
    KESTREL_CHECK(!img.empty() && img.bgr.size() == static_cast<size_t>(img.width) * img.height * 3,
                  "letterbox: image is empty or its buffer does not match its size");
    Building& bl = building_;
    const LetterboxInfo g = letterbox_geometry(img.width, img.height, size_);
    // The pixels go to the front of the slot's staging block now; the letterbox's jobs and taps follow
    // them when the batch is submitted.
    image::Image canvas;
    detail::ResizePlan pl;
    if (img.bgr.size() > kMaxUploadBytes) canvas = letterbox_bgr(img, size_);
    else pl = detail::resize_plan(img.width, img.height, g.new_w, g.new_h);
    const bool whole = !canvas.empty();
    const image::Image& src = whole ? canvas : img;
    LetterboxJob j{};
    j.pixels = static_cast<int64_t>(bl.pixels);
    j.src_w = src.width, j.src_h = src.height;
    j.new_w = whole ? size_ : g.new_w, j.new_h = whole ? size_ : g.new_h;
    j.pad_left = whole ? 0 : g.pad_left, j.pad_top = whole ? 0 : g.pad_top;
    j.mode = static_cast<int32_t>(pl.mode);
    j.xtaps = static_cast<int32_t>(bl.taps.size());
    j.ytaps = static_cast<int32_t>(bl.taps.size() + pl.xt.size());
    j.xmax = pl.xmax;
    j.rgb = 0;
    const size_t end = bl.pixels + align256(src.bgr.size());
    // Pinned allocations are slow (milliseconds for a batch's worth): when the staging must grow, it
    // grows for a whole batch of images this size, not once per image.
    PinnedBuffer& stage = slots_[next_slot_].h_stage;
    const size_t rest = static_cast<size_t>(batch_) - 1 - bl.jobs.size();
    auto* h = static_cast<uint8_t*>(
        stage.need(end > stage.bytes ? end + rest * align256(src.bgr.size()) + kMetadataReserve : end, bl.pixels));
    std::memcpy(h + bl.pixels, src.bgr.data(), src.bgr.size());
    bl.pixels = end;
    bl.taps.insert(bl.taps.end(), pl.xt.begin(), pl.xt.end());
    bl.taps.insert(bl.taps.end(), pl.yt.begin(), pl.yt.end());
    bl.jobs.push_back(j);
    bl.geo.push_back(g);
  }

  void discard_added() override { building_ = {}; }

  void submit_added(HeadKind head, const NmsOptions& nms) override {
    // Whatever happens below, the images added so far are used up.
    Building bl = std::move(building_);
    building_ = {};
    const int n = static_cast<int>(bl.jobs.size());
    KESTREL_CHECK(n >= 1 && n <= batch_, "detect: ", n, " images for an engine of batch ", batch_);
    KESTREL_CHECK(head == HeadKind::V8 || head == HeadKind::V5, "detect: the head kind must be V8 or V5");
    KESTREL_CHECK(nms.max_det >= 0 && nms.max_nms >= 0, "NMS limits must not be negative");
    KESTREL_CHECK(in_flight() < kDepth, "detect: ", kDepth, " batches are in flight; collect() one first");
    const int64_t channels = head == HeadKind::V8 ? out_.shape[1] : out_.shape[2];
    const int64_t anchors = head == HeadKind::V8 ? out_.shape[2] : out_.shape[1];
    KESTREL_CHECK(channels >= (head == HeadKind::V8 ? 5 : 6), "the engine output ", shape_str(out_.shape), " is not a ",
                  head_kind_name(head), " head");
    int64_t nc = channels - (head == HeadKind::V8 ? 4 : 5);
    if (nms.num_classes > 0) {
      KESTREL_CHECK(nms.num_classes <= nc, "NmsOptions::num_classes = ", nms.num_classes, " but the head has only ", nc,
                    " class channels");
      nc = nms.num_classes;
    }
    const int slot_index = next_slot_;
    Slot& sl = slots_[slot_index];
    sl.n = n;
    sl.nms = nms;
    sl.head = head;
    sl.geo = std::move(bl.geo);
    cudaStream_t s = ctx_.stream();

    // One staging block, one upload: the pixels add() placed, then jobs, unletterbox info and taps.
    const size_t jobs_at = bl.pixels;
    const size_t info_at = jobs_at + align256(sizeof(LetterboxJob) * batch_);
    const size_t taps_at = info_at + align256(sizeof(UnletterboxInfo) * batch_);
    const size_t stage_bytes = taps_at + align256(sizeof(ResizeTap) * std::max<size_t>(bl.taps.size(), 1));
    auto* h = static_cast<uint8_t*>(sl.h_stage.need(stage_bytes, bl.pixels));
    auto* d = static_cast<uint8_t*>(sl.d_stage.need(stage_bytes));
    std::copy(bl.jobs.begin(), bl.jobs.end(), reinterpret_cast<LetterboxJob*>(h + jobs_at));
    std::copy(bl.taps.begin(), bl.taps.end(), reinterpret_cast<ResizeTap*>(h + taps_at));
    auto* infos = reinterpret_cast<UnletterboxInfo*>(h + info_at);
    for (int i = 0; i < n; ++i) {
      const LetterboxInfo& g = sl.geo[i];
      infos[i] = {static_cast<float>(g.gain), static_cast<float>(g.pad_left), static_cast<float>(g.pad_top),
                  static_cast<float>(g.src_w), static_cast<float>(g.src_h)};
    }

    // The upload runs on its own stream, so it overlaps the network of the batch before; the letterbox
    // waits for it on the context's stream.
    KCUDA(cudaEventRecord(sl.ev[0], copy_));
    KCUDA(cudaMemcpyAsync(d, h, stage_bytes, cudaMemcpyHostToDevice, copy_));
    KCUDA(cudaEventRecord(sl.ev[1], copy_));
    KCUDA(cudaStreamWaitEvent(s, sl.ev[1], 0));
    KCUDA(cudaEventRecord(sl.ev[2], s));
    // An engine with a batch profile runs the n images alone; a fixed-batch engine (or fewer images
    // than its smallest batch) runs them beside padding.
    const int run_batch = std::max(n, min_batch_);
    cuda::launch_letterbox(d, reinterpret_cast<const LetterboxJob*>(d + jobs_at),
                           reinterpret_cast<const ResizeTap*>(d + taps_at), n, run_batch, size_,
                           static_cast<float*>(d_in_), s);
    KCUDA(cudaEventRecord(sl.ev[3], s));
    ctx_.set_batch(run_batch);
    ctx_.enqueue({d_in_}, {d_out_}, s);
    KCUDA(cudaEventRecord(sl.ev[4], s));

    sl.gpu_nms = !nms.agnostic && nms.iou >= 0 && nms.max_det > 0;
    if (sl.gpu_nms) {
      cuda::DetectParams p;
      p.batch = n;
      p.anchors = static_cast<int>(anchors);
      p.channels = static_cast<int>(channels);
      p.nc = static_cast<int>(nc);
      p.v5 = head == HeadKind::V5;
      p.multi_label = nms.multi_label && nc > 1;
      p.conf = nms.conf;
      p.iou = nms.iou;
      p.max_det = nms.max_det;
      p.max_nms = nms.max_nms;
      p.max_wh = nms.max_wh;
      // The work space is used on the context's stream only, one batch after the other.
      void* ws = d_ws_.need(cuda::detect_workspace_bytes(p));
      sl.head_bytes = align256(3 * sizeof(int32_t) * batch_);
      sl.dets_bytes = sizeof(float) * 6 * static_cast<size_t>(nms.max_det) * n;
      auto* dr = static_cast<uint8_t*>(sl.d_res.need(sl.head_bytes + sl.dets_bytes));
      sl.h_res.need(sl.head_bytes + sl.dets_bytes);
      auto* d_count = reinterpret_cast<int32_t*>(dr);
      auto* d_flags = reinterpret_cast<uint32_t*>(d_count + batch_);
      cuda::launch_detect(static_cast<const float*>(d_out_), p, reinterpret_cast<const UnletterboxInfo*>(d + info_at), ws,
                          reinterpret_cast<float*>(dr + sl.head_bytes), d_count, d_flags, d_count + 2 * batch_, s);
      // Images the kernels flagged keep their raw output for the CPU (the next batch overwrites d_out_).
      cuda::launch_copy_flagged(static_cast<const float*>(d_out_),
                                static_cast<float*>(sl.d_raw.need(per_image_out_ * batch_ * sizeof(float))), d_flags, n,
                                per_image_out_, s);
      KCUDA(cudaEventRecord(sl.ev[5], s));
      KCUDA(cudaMemcpyAsync(sl.h_res.p, dr, sl.head_bytes + sl.dets_bytes, cudaMemcpyDeviceToHost, s));
    } else {
      // Agnostic NMS (or a negative IoU threshold) runs on the CPU from the raw output.
      void* raw = sl.d_raw.need(per_image_out_ * batch_ * sizeof(float));
      KCUDA(cudaMemcpyAsync(raw, d_out_, per_image_out_ * n * sizeof(float), cudaMemcpyDeviceToDevice, s));
      KCUDA(cudaEventRecord(sl.ev[5], s));
    }
    KCUDA(cudaEventRecord(sl.ev[6], s));
    queue_.push_back(slot_index);
    next_slot_ = (next_slot_ + 1) % kDepth;
  }

  std::vector<std::vector<Box>> collect(StageTimes* times) override {
    KESTREL_CHECK(!queue_.empty(), "detect: collect() without a submitted batch");
    Slot& sl = slots_[queue_.front()];
    queue_.pop_front();
    KCUDA(cudaEventSynchronize(sl.ev[6]));
    const int n = sl.n;
    const NmsOptions& nms = sl.nms;
    std::vector<std::vector<Box>> result(static_cast<size_t>(n));
    std::vector<int> cpu_images;
    if (sl.gpu_nms) {
      const auto* hr = static_cast<const uint8_t*>(sl.h_res.p);
      const auto* count = reinterpret_cast<const int32_t*>(hr);
      const auto* flags = reinterpret_cast<const uint32_t*>(count + batch_);
      const auto* dets = reinterpret_cast<const float*>(hr + sl.head_bytes);
      for (int i = 0; i < n; ++i) {
        if (flags[i]) {
          cpu_images.push_back(i);
          continue;
        }
        auto& out = result[static_cast<size_t>(i)];
        out.resize(static_cast<size_t>(count[i]));
        const float* r = dets + static_cast<size_t>(i) * nms.max_det * 6;
        for (int k = 0; k < count[i]; ++k, r += 6) out[k] = Box{r[0], r[1], r[2], r[3], r[4], static_cast<int>(r[5])};
      }
    } else if (nms.max_det > 0) {
      for (int i = 0; i < n; ++i) cpu_images.push_back(i);
    }
    // The CPU reference for what the kernels do not reproduce exactly (flagged images, agnostic NMS).
    if (!cpu_images.empty()) {
      const int64_t channels = sl.head == HeadKind::V8 ? out_.shape[1] : out_.shape[2];
      const int64_t anchors = sl.head == HeadKind::V8 ? out_.shape[2] : out_.shape[1];
      std::vector<float> host(per_image_out_);
      for (int i : cpu_images) {
        KCUDA(cudaMemcpy(host.data(), static_cast<const float*>(sl.d_raw.p) + per_image_out_ * i,
                         per_image_out_ * sizeof(float), cudaMemcpyDeviceToHost));
        auto& out = result[static_cast<size_t>(i)];
        out = yolo::nms(decode_candidates(host.data(), channels, anchors, sl.head, nms), nms);
        scale_boxes(out, sl.geo[i]);
      }
    }
    if (times) {
      // Each stage's own span: with two batches in flight, a letterbox may wait for the network before it.
      auto span = [&](int a, int b) {
        float ms = 0;
        KCUDA(cudaEventElapsedTime(&ms, sl.ev[a], sl.ev[b]));
        return static_cast<double>(ms);
      };
      StageTimes st;
      st.device_preprocess_ms = span(2, 3);
      st.preprocess_ms = span(0, 1) + st.device_preprocess_ms;
      st.inference_ms = span(3, 4);
      st.device_postprocess_ms = span(4, 5);
      st.postprocess_ms = span(4, 6);
      *times += st;
    }
    return result;
  }

 private:
  static constexpr int kDepth = 2;

  ExecutionContext& ctx_;
  EngineTensorInfo in_, out_;
  int batch_ = 0, min_batch_ = 0, size_ = 0;
  size_t per_image_out_ = 0;
  void* d_in_ = nullptr;
  void* d_out_ = nullptr;
  cudaStream_t copy_ = nullptr;
  DeviceBuffer d_ws_;
  Slot slots_[kDepth];
  // The batch add() is building, staged into slots_[next_slot_].
  struct Building {
    size_t pixels = 0;  // bytes staged so far (each image 256-byte aligned)
    std::vector<LetterboxJob> jobs;
    std::vector<ResizeTap> taps;
    std::vector<LetterboxInfo> geo;
  } building_;
  std::deque<int> queue_;
  int next_slot_ = 0;
};

}  // namespace

std::unique_ptr<ImageDetector> make_cuda_detector(ExecutionContext& ctx) { return std::make_unique<CudaDetector>(ctx); }

}  // namespace kestrel::yolo
