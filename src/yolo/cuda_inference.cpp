// The CUDA engine as an InferenceEngine: host tensors through ExecutionContext::run, images through
// the GPU detector (letterbox + network + decode/NMS on the device).
#include "kestrel/cuda_inference.h"

#include "cuda_detector.h"

namespace kestrel {

namespace {

class CudaInference final : public InferenceEngine {
 public:
  CudaInference(std::unique_ptr<Engine> e, int64_t batch, const RuntimeConfig& config)
      : engine_(std::move(e)), ctx_(engine_->create_execution_context(config)) {
    const EngineInfo& info = engine_->info();
    batch_ = batch > 0 ? batch : info.max_batch;
    ctx_->set_batch(batch_);  // refuses a batch outside the engine's profile
  }
  Shape input_shape() const override { return at_batch(engine_->info().inputs.at(0).shape); }
  Shape output_shape() const override { return at_batch(engine_->info().outputs.at(0).shape); }
  HostTensor infer(const HostTensor& input) override { return ctx_->run({input}).at(0); }
  std::string description() const override {
    const EngineInfo& i = engine_->info();
    return std::string("cuda ") + precision_name(i.precision) + " (" + i.gpu_name + ")";
  }
  const std::map<std::string, std::string>& metadata() const override { return engine_->info().metadata; }
  ImageDetector* image_detector() override {
    if (!detector_) detector_ = yolo::make_cuda_detector(*ctx_);
    return detector_.get();
  }

 private:
  Shape at_batch(Shape s) const {
    s.at(0) = batch_;
    return s;
  }
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ExecutionContext> ctx_;
  int64_t batch_ = 0;
  std::unique_ptr<ImageDetector> detector_;
};

}  // namespace

std::unique_ptr<InferenceEngine> make_cuda_inference(std::unique_ptr<Engine> engine, int64_t batch,
                                                     const RuntimeConfig& config) {
  KESTREL_CHECK(engine != nullptr, "make_cuda_inference: no engine");
  return std::make_unique<CudaInference>(std::move(engine), batch, config);
}

}  // namespace kestrel
