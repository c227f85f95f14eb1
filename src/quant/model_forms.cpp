// The plain and the fused form of one model (see plain_and_fused in include/kestrel/quant.h). The
// fused form is derived from the plain one, so both see the very same folded weights.
#include "kestrel/passes.h"
#include "kestrel/quant.h"

namespace kestrel::quant {

ModelForms plain_and_fused(Graph imported) {
  passes::OptimizeOptions fold_only;
  fold_only.fuse_conv_activation = fold_only.fuse_residual_add = fold_only.fuse_sppf = fold_only.fuse_detect_head = false;
  passes::optimize(imported, fold_only);
  ModelForms m{std::move(imported), {}};
  m.fused = m.plain;
  passes::optimize(m.fused);
  return m;
}

}  // namespace kestrel::quant
