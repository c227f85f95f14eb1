// kestrel.Attention (contract in include/kestrel/passes.h): per image, head and query position, the
// scores against every key, their softmax, and the softmax-weighted sum of the values; as the unfused
// graph computes it (scale applied to the scores, softmax as exp(s - max) / sum), one query row at a
// time so the N x N score matrix never exists.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/kernel.h"
#include "backend/cpu/kernels.h"

namespace kestrel::cpu {

void k_fused_attention(const Node& n, Inputs in, Outputs out) {
  const HostTensor& x = *in[0];
  KESTREL_CHECK(x.dtype() == DType::F32 && x.rank() == 4, "kestrel.Attention node '", n.name, "': float32 NCHW only");
  const int64_t B = x.dim(0), N = x.dim(2) * x.dim(3);
  const int64_t nh = n.attrs.i("num_heads"), kd = n.attrs.i("key_dim"), hd = n.attrs.i("head_dim");
  const int64_t per_head = 2 * kd + hd;
  const float scale = n.attrs.f("scale");
  const float* px = x.data<float>();
  float* py = out[0].data<float>();
#pragma omp parallel
  {
    std::vector<float> s(static_cast<size_t>(N));
#pragma omp for schedule(static)
    for (int64_t bhn = 0; bhn < B * nh * N; ++bhn) {
      const int64_t b = bhn / (nh * N), h = bhn / N % nh, i = bhn % N;
      const float* q = px + (b * nh + h) * per_head * N;  // [kd, N], then k [kd, N], then v [hd, N]
      const float* k = q + kd * N;
      const float* v = k + kd * N;
      float mx = -INFINITY;
      for (int64_t j = 0; j < N; ++j) {
        float acc = 0.f;
        for (int64_t c = 0; c < kd; ++c) acc += q[c * N + i] * k[c * N + j];
        s[static_cast<size_t>(j)] = acc * scale;
        mx = std::max(mx, s[static_cast<size_t>(j)]);
      }
      float sum = 0.f;
      for (int64_t j = 0; j < N; ++j) sum += (s[static_cast<size_t>(j)] = std::exp(s[static_cast<size_t>(j)] - mx));
      for (int64_t j = 0; j < N; ++j) s[static_cast<size_t>(j)] /= sum;
      float* y = py + (b * nh + h) * hd * N;
      for (int64_t c = 0; c < hd; ++c) {
        float acc = 0.f;
        for (int64_t j = 0; j < N; ++j) acc += v[c * N + j] * s[static_cast<size_t>(j)];
        y[c * N + i] = acc;
      }
    }
  }
  if (out.size() > 1 && !out[1].empty()) {  // v as an image: head h's v channels are output channels h hd ..
    float* pv = out[1].data<float>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < nh; ++h)
        std::memcpy(pv + (b * nh + h) * hd * N, px + ((b * nh + h) * per_head + 2 * kd) * N, sizeof(float) * hd * N);
  }
}

}  // namespace kestrel::cpu
