// How closely a mixed-precision graph's detections follow the FP32 graph's, as --int8-auto measures it.
#include <string>

#include "kestrel/agreement.h"
#include "kestrel/quant.h"
#include "kestrel/yolo.h"
#include "quant/internal.h"

namespace kestrel::quant {

std::vector<eval::Detection> output_detections(const std::vector<HostTensor>& outputs, double conf) {
  std::vector<eval::Detection> dets;
  int64_t image = 0;
  for (const HostTensor& out : outputs) {
    KESTREL_CHECK(out.dtype() == DType::F32, "output_agreement: outputs must be float32");
    const yolo::HeadKind head = yolo::detect_head(out.shape());
    yolo::NmsOptions nms = yolo::NmsOptions::validation(head);
    nms.conf = static_cast<float>(conf);
    for (const auto& boxes : yolo::postprocess(out.data<float>(), out.shape(), head, nms)) {
      ++image;
      for (const yolo::Box& b : boxes)
        dets.push_back({image, b.cls, b.x1, b.y1, static_cast<double>(b.x2) - b.x1, static_cast<double>(b.y2) - b.y1,
                        b.score});
    }
  }
  return dets;
}

double output_agreement(const std::vector<HostTensor>& outputs, const std::vector<HostTensor>& refs) {
  return detail::output_agreement_at(outputs, refs, eval::kAgreementReferenceConf);
}

double detail::output_agreement_at(const std::vector<HostTensor>& outputs, const std::vector<HostTensor>& refs,
                                   double reference_conf) {
  KESTREL_CHECK(outputs.size() == refs.size() && !refs.empty(), "output_agreement: ", outputs.size(),
                " outputs for ", refs.size(), " references");
  for (size_t i = 0; i < refs.size(); ++i)
    KESTREL_CHECK(outputs[i].shape() == refs[i].shape(), "output_agreement: output ", i, " differs in shape from its reference");
  const Shape& shape = refs[0].shape();
  const yolo::HeadKind head = yolo::detect_head(shape);
  const int64_t nc = head == yolo::HeadKind::V5 ? shape[2] - 5 : shape[1] - 4;
  std::vector<eval::Category> cats;
  for (int64_t k = 0; k < nc; ++k) cats.push_back({static_cast<int>(k), "class" + std::to_string(k)});
  std::vector<int64_t> ids;
  for (const HostTensor& r : refs)
    for (int64_t b = 0; b < r.dim(0); ++b) ids.push_back(static_cast<int64_t>(ids.size()) + 1);
  eval::BootstrapOptions no_interval;
  no_interval.resamples = 0;
  // eval::agreement cuts the reference at its own threshold (0.25): every box kept here is truth, and a
  // truth box's score plays no other part, so each gets score 1.
  std::vector<eval::Detection> truth = output_detections(refs, reference_conf);
  for (eval::Detection& d : truth) d.score = 1.0;
  return eval::agreement(ids, cats, truth,
                         output_detections(outputs, eval::kAgreementCandidateConf), no_interval)
      .value;
}

}  // namespace kestrel::quant
