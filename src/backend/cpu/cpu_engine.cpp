// The CPU reference backend behind the InferenceEngine interface.
#include "kestrel/cpu_backend.h"
#include "kestrel/inference.h"

namespace kestrel {

namespace {
class CpuEngine final : public InferenceEngine {
 public:
  explicit CpuEngine(Graph g) : graph_(std::move(g)), exec_(graph_) {
    KESTREL_CHECK(graph_.inputs.size() == 1 && graph_.outputs.size() == 1,
                  "a detector needs one input and one output; this model has ", graph_.inputs.size(), " and ",
                  graph_.outputs.size());
  }
  Shape input_shape() const override { return graph_.value(graph_.inputs[0]).shape; }
  Shape output_shape() const override { return graph_.value(graph_.outputs[0]).shape; }
  HostTensor infer(const HostTensor& input) override {
    HostTensor y = exec_.run({input})[0];
    return y.dtype() == DType::F32 ? y : y.cast(DType::F32);
  }
  std::string description() const override { return "cpu fp32"; }
  const std::map<std::string, std::string>& metadata() const override { return graph_.metadata; }

 private:
  Graph graph_;
  CpuExecutor exec_;
};
}  // namespace

std::unique_ptr<InferenceEngine> make_cpu_engine(Graph graph) { return std::make_unique<CpuEngine>(std::move(graph)); }

}  // namespace kestrel
