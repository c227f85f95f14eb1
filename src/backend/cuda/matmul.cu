// MatMul (numpy batch broadcasting) and Gemm. Tactics:
//   direct       own shared-memory tiled kernel (any batch broadcast, transposes, Gemm's C), reference
//   cublaslt_i   cuBLASLt's i-th heuristic algorithm, for MatMuls whose batch strides are uniform
// Operands are dense row-major float32 (the planner converts); true FP32 unless --tf32.
#include "backend/cuda/check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/layers.h"

namespace kestrel::cuda {

namespace {

constexpr int kTile = 16;

struct MmArgs {
  int M, N, K, batch;
  Strided a_batch, b_batch, c_batch;  // element offsets of each operand's matrix for an output batch index
  int a_rs, a_cs, b_rs, b_cs;         // element strides of rows / columns inside a matrix
  float alpha, beta;
  Strided c;                          // Gemm's C viewed through the [M, N] output (broadcast strides)
  int has_c, adt, bdt, cdt, ydt;
};

__global__ void matmul_kernel(const void* A, const void* B, const void* C, void* Y, const __grid_constant__ MmArgs a) {
  __shared__ float sa[kTile][kTile + 1];
  __shared__ float sb[kTile][kTile + 1];
  const int bz = blockIdx.z;
  const long long ao = strided_offset(a.a_batch, bz), bo = strided_offset(a.b_batch, bz);
  const int row = blockIdx.y * kTile + threadIdx.y, col = blockIdx.x * kTile + threadIdx.x;
  float acc = 0.f;
  for (int k0 = 0; k0 < a.K; k0 += kTile) {
    const int ka = k0 + threadIdx.x, kb = k0 + threadIdx.y;
    sa[threadIdx.y][threadIdx.x] = (row < a.M && ka < a.K) ? load_as_float(A, a.adt, ao + (long long)row * a.a_rs + (long long)ka * a.a_cs) : 0.f;
    sb[threadIdx.y][threadIdx.x] = (kb < a.K && col < a.N) ? load_as_float(B, a.bdt, bo + (long long)kb * a.b_rs + (long long)col * a.b_cs) : 0.f;
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kTile; ++k) acc += sa[threadIdx.y][k] * sb[k][threadIdx.x];
    __syncthreads();
  }
  if (row >= a.M || col >= a.N) return;
  float v = a.alpha * acc;
  if (a.has_c) v += a.beta * load_as_float(C, a.cdt, strided_offset(a.c, row * a.N + col));
  store_from_float(Y, a.ydt, (long long)bz * a.M * a.N + (long long)row * a.N + col, v);
}

// Offsets of each operand's matrices for the output's batch indices (0 strides where it broadcasts).
Strided batch_view(const Shape& b, int64_t mat, const Shape& out_batch) {
  TensorMeta t;
  t.shape = b.empty() ? Shape{1} : b;
  t.strides = row_major_strides(t.shape);
  for (auto& st : t.strides) st *= mat;
  return broadcast_strided(t, out_batch);
}

class MatMulLayer : public Layer {
 public:
  explicit MatMulLayer(const LayerSpec& s) : Layer(s) {
    tactic_ = "direct";
    const TensorMeta& A = *s.in[0];
    const TensorMeta& B = *s.in[1];
    const TensorMeta& Y = *s.out[0];
    KESTREL_CHECK(A.dense_row_major() && B.dense_row_major() && Y.dense_row_major(), "internal: ", s.op,
                  " needs dense row-major operands");
    a_ = {};
    a_.alpha = 1.f;
    a_.adt = static_cast<int>(A.dtype);
    a_.bdt = static_cast<int>(B.dtype);
    a_.ydt = static_cast<int>(Y.dtype);
    if (s.op == "Gemm") {
      const bool ta = s.attrs.i("transA", 0), tb = s.attrs.i("transB", 0);
      a_.M = static_cast<int>(Y.shape[0]);
      a_.N = static_cast<int>(Y.shape[1]);
      a_.K = static_cast<int>(ta ? A.shape[0] : A.shape[1]);
      a_.a_rs = ta ? 1 : a_.K;
      a_.a_cs = ta ? a_.M : 1;
      a_.b_rs = tb ? 1 : a_.N;
      a_.b_cs = tb ? a_.K : 1;
      a_.alpha = s.attrs.f("alpha", 1.f);
      a_.beta = s.attrs.f("beta", 1.f);
      a_.batch = 1;
      a_.a_batch = a_.b_batch = make_strided(Shape{1}, {0});
      if (s.in.size() > 2 && s.in[2]) {
        a_.has_c = 1;
        a_.cdt = static_cast<int>(s.in[2]->dtype);
        a_.c = broadcast_strided(*s.in[2], Y.shape);
      }
      return;
    }
    Shape as = A.shape, bs = B.shape;
    if (as.size() == 1) as.insert(as.begin(), 1);
    if (bs.size() == 1) bs.push_back(1);
    a_.M = static_cast<int>(as[as.size() - 2]);
    a_.K = static_cast<int>(as.back());
    a_.N = static_cast<int>(bs.back());
    a_.a_rs = a_.K;
    a_.a_cs = 1;
    a_.b_rs = a_.N;
    a_.b_cs = 1;
    // Output batch shape = broadcast of both batch shapes; each operand's batch offset via strides.
    Shape ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
    const size_t rb = std::max(ab.size(), bb.size());
    Shape ob(rb);
    for (size_t i = 0; i < rb; ++i) {
      const int64_t da = i < rb - ab.size() ? 1 : ab[i - (rb - ab.size())];
      const int64_t db = i < rb - bb.size() ? 1 : bb[i - (rb - bb.size())];
      ob[i] = std::max(da, db);
    }
    if (ob.empty()) ob = {1};
    a_.a_batch = batch_view(ab, static_cast<int64_t>(a_.M) * a_.K, ob);
    a_.b_batch = batch_view(bb, static_cast<int64_t>(a_.K) * a_.N, ob);
    a_.batch = static_cast<int>(shape_numel(ob));
    // cuBLASLt needs one uniform batch stride per operand.
    Strided ta = a_.a_batch, tb = a_.b_batch, to = make_strided(ob, row_major_strides(ob));
    coalesce_dims({&to, &ta, &tb});
    uniform_batch_ = to.rank == 1;
    if (uniform_batch_) {
      a_stride_ = ta.stride[0];
      b_stride_ = tb.stride[0];
    }
  }

  ~MatMulLayer() override { destroy_lt(); }

  std::vector<std::string> tactics(Handles& h) const override {
    std::vector<std::string> t = {"direct"};
    if (spec_.op != "MatMul" || !uniform_batch_ || a_.adt != kF32 || a_.bdt != kF32 || a_.ydt != kF32) return t;
    auto* self = const_cast<MatMulLayer*>(this);
    self->make_lt();
    cublasLtMatmulPreference_t pref;
    KCUBLAS(cublasLtMatmulPreferenceCreate(&pref));
    const size_t ws = kLtWorkspace;
    KCUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
    int found = 0;
    cublasLtMatmulHeuristicResult_t res[8];
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(h.lt, desc_, ld_b_, ld_a_, ld_y_, ld_y_, pref, 8, res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st == CUBLAS_STATUS_SUCCESS) {
      self->n_algos_ = 0;
      for (int i = 0; i < found && i < kMaxAlgos; ++i)
        if (res[i].state == CUBLAS_STATUS_SUCCESS) {
          self->algos_[self->n_algos_] = res[i].algo;
          t.push_back("cublaslt_" + std::to_string(self->n_algos_++));
        }
    }
    return t;
  }

  void set_tactic(const std::string& t, Handles& h) override {
    if (t == "direct") {
      tactic_ = t;
      return;
    }
    KESTREL_CHECK(t.rfind("cublaslt_", 0) == 0, "unknown MatMul tactic '", t, "'");
    if (n_algos_ == 0) tactics(h);
    const size_t i = std::stoul(t.substr(9));
    KESTREL_CHECK(i < n_algos_, "cuBLASLt tactic ", t, " is not available on this GPU");
    algo_index_ = i;
    tactic_ = t;
  }

  int64_t scratch_bytes() const override { return tactic_ == "direct" ? 0 : static_cast<int64_t>(kLtWorkspace); }

  void enqueue(const LayerIO& io, cudaStream_t stream, Handles& h) override {
    if (a_.M == 0 || a_.N == 0 || a_.batch == 0) return;
    if (tactic_ == "direct") {
      const dim3 grid((a_.N + kTile - 1) / kTile, (a_.M + kTile - 1) / kTile, a_.batch);
      matmul_kernel<<<grid, dim3(kTile, kTile), 0, stream>>>(io.in[0], io.in[1], a_.has_c ? io.in[2] : nullptr, io.out[0], a_);
      KLAUNCH("matmul");
      return;
    }
    const float one = 1.f, zero = 0.f;
    // Row-major Y = A B is column-major Y^T = B^T A^T: B's buffer is the first operand.
    KCUBLAS(cublasLtMatmul(h.lt, desc_, &one, io.in[1], ld_b_, io.in[0], ld_a_, &zero, io.out[0], ld_y_, io.out[0], ld_y_,
                           &algos_[algo_index_], io.scratch, kLtWorkspace, stream));
  }

 private:
  static constexpr size_t kLtWorkspace = 4u << 20;

  void make_lt() {
    if (desc_) return;
    const cublasComputeType_t ct = spec_.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    KCUBLAS(cublasLtMatmulDescCreate(&desc_, ct, CUDA_R_32F));
    auto layout = [&](cublasLtMatrixLayout_t* l, int rows, int cols, int ld, long long stride) {
      KCUBLAS(cublasLtMatrixLayoutCreate(l, CUDA_R_32F, rows, cols, ld));
      const int32_t count = a_.batch;
      KCUBLAS(cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
      KCUBLAS(cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
    };
    layout(&ld_b_, a_.N, a_.K, a_.N, b_stride_);
    layout(&ld_a_, a_.K, a_.M, a_.K, a_stride_);
    layout(&ld_y_, a_.N, a_.M, a_.N, static_cast<long long>(a_.M) * a_.N);
  }
  void destroy_lt() {
    if (ld_a_) cublasLtMatrixLayoutDestroy(ld_a_);
    if (ld_b_) cublasLtMatrixLayoutDestroy(ld_b_);
    if (ld_y_) cublasLtMatrixLayoutDestroy(ld_y_);
    if (desc_) cublasLtMatmulDescDestroy(desc_);
  }

  MmArgs a_;
  bool uniform_batch_ = false;
  long long a_stride_ = 0, b_stride_ = 0;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t ld_a_ = nullptr, ld_b_ = nullptr, ld_y_ = nullptr;
  // A plain array: nvcc 13's front end crashes on std::vector<cublasLtMatmulAlgo_t> in C++20 mode.
  static constexpr int kMaxAlgos = 8;
  cublasLtMatmulAlgo_t algos_[kMaxAlgos];
  size_t n_algos_ = 0;
  size_t algo_index_ = 0;
};

}  // namespace

std::unique_ptr<Layer> make_matmul(const LayerSpec& s) { return std::make_unique<MatMulLayer>(s); }

}  // namespace kestrel::cuda
