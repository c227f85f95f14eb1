// MatMul (numpy broadcasting over batch dims) and Gemm, on OpenBLAS SGEMM.
#include <cblas.h>

#include "backend/cpu/broadcast.h"
#include "backend/cpu/kernel.h"
#include "backend/cpu/kernels.h"

namespace kestrel::cpu {

void k_matmul(const Node& n, Inputs in, Outputs out) {
  const HostTensor& a = *in[0];
  const HostTensor& b = *in[1];
  KESTREL_CHECK(a.dtype() == DType::F32 && b.dtype() == DType::F32, "MatMul node '", n.name, "': float32 only");
  Shape as = a.shape(), bs = b.shape();
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  Shape abatch(as.begin(), as.end() - 2), bbatch(bs.begin(), bs.end() - 2);
  // Batch shape of the output = broadcast of both batch shapes.
  const size_t rb = std::max(abatch.size(), bbatch.size());
  Shape ob(rb);
  for (size_t i = 0; i < rb; ++i) {
    const int64_t da = i < rb - abatch.size() ? 1 : abatch[i - (rb - abatch.size())];
    const int64_t db = i < rb - bbatch.size() ? 1 : bbatch[i - (rb - bbatch.size())];
    ob[i] = std::max(da, db);
  }
  std::array<std::vector<int64_t>, 2> st = {broadcast_strides(abatch, ob), broadcast_strides(bbatch, ob)};
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* py = out[0].data<float>();
  if (ob.empty()) ob = {1}, st = {std::vector<int64_t>{0}, std::vector<int64_t>{0}};
  for_each_broadcast<2>(ob, st, [&](int64_t o, const std::array<int64_t, 2>& off) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(M), static_cast<int>(N), static_cast<int>(K),
                1.f, pa + off[0] * M * K, static_cast<int>(K), pb + off[1] * K * N, static_cast<int>(N), 0.f,
                py + o * M * N, static_cast<int>(N));
  });
}

void k_gemm(const Node& n, Inputs in, Outputs out) {
  const HostTensor& a = *in[0];
  const HostTensor& b = *in[1];
  const bool ta = n.attrs.i("transA", 0), tb = n.attrs.i("transB", 0);
  const float alpha = n.attrs.f("alpha", 1.f), beta = n.attrs.f("beta", 1.f);
  const int64_t M = out[0].dim(0), N = out[0].dim(1), K = ta ? a.dim(0) : a.dim(1);
  float* py = out[0].data<float>();
  float cbeta = 0.f;
  if (in.size() > 2 && in[2]) {
    const HostTensor& c = *in[2];
    std::array<std::vector<int64_t>, 1> st = {broadcast_strides(c.shape(), out[0].shape())};
    for_each_broadcast<1>(out[0].shape(), st, [&](int64_t o, const std::array<int64_t, 1>& off) { py[o] = c.data<float>()[off[0]]; });
    cbeta = beta;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(M),
              static_cast<int>(N), static_cast<int>(K), alpha, a.data<float>(), static_cast<int>(a.dim(1)),
              b.data<float>(), static_cast<int>(b.dim(1)), cbeta, py, static_cast<int>(N));
}

}  // namespace kestrel::cpu
