// cuBLASLt linear layers: y = x W^T + b (optionally tanh-GELU), with the bias and the GELU
// fused into the matmul's epilogue; the GELU's input is kept by the epilogue (aux output)
// for the backward pass. An autograd function; backward runs its matmuls on cuBLASLt too.
//
// Layout: row-major x [M, K], W [N, K], y [M, N]. cuBLASLt is column-major, so the call
// computes y^T (N x M) = W (N x K, stored as column-major K x N, transposed) * x^T
// (K x M, the row-major x as stored); the bias runs along the N rows of y^T.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cublasLt.h>
#include <torch/csrc/autograd/custom_function.h>

#include <stdexcept>
#include <string>

#include "reel/model/ops.hpp"

namespace reel::cuda {
namespace {

void check_lt(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string("cuBLASLt call ") + call + " failed with status " + std::to_string(status));
  }
}
#define REEL_LT_CHECK(call) check_lt((call), #call)

cudaDataType_t lt_type(at::ScalarType t) {
  switch (t) {
    case at::kBFloat16:
      return CUDA_R_16BF;
    case at::kHalf:
      return CUDA_R_16F;
    case at::kFloat:
      return CUDA_R_32F;
    default:
      throw std::invalid_argument("cuBLASLt linear: unsupported dtype");
  }
}

// RAII holders for the cuBLASLt descriptors of one call.
struct LtCall {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtCall() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

// Column-major D (m x n) = op(A) * op(B) [+ epilogue], all tensors row-major in memory as
// described by the caller: A stored (rows_a x cols_a) column-major with leading dim lda...
struct Operand {
  const at::Tensor& t;
  int64_t rows, cols;  // column-major shape as stored
  bool trans;
};

void lt_matmul(const Operand& a, const Operand& b, at::Tensor& d, int64_t m, int64_t n, cublasLtEpilogue_t epilogue,
               const at::Tensor& bias, const at::Tensor& aux) {
  const auto type = lt_type(d.scalar_type());
  LtCall call;
  REEL_LT_CHECK(cublasLtMatmulDescCreate(&call.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t ta = a.trans ? CUBLAS_OP_T : CUBLAS_OP_N, tb = b.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  REEL_LT_CHECK(cublasLtMatmulDescSetAttribute(call.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  REEL_LT_CHECK(cublasLtMatmulDescSetAttribute(call.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  REEL_LT_CHECK(cublasLtMatmulDescSetAttribute(call.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
  if (bias.defined()) {
    const void* ptr = bias.data_ptr();
    REEL_LT_CHECK(cublasLtMatmulDescSetAttribute(call.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &ptr, sizeof(ptr)));
  }
  if (aux.defined()) {
    const void* ptr = aux.data_ptr();
    const int64_t ld = m;
    REEL_LT_CHECK(
        cublasLtMatmulDescSetAttribute(call.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &ptr, sizeof(ptr)));
    REEL_LT_CHECK(cublasLtMatmulDescSetAttribute(call.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld, sizeof(ld)));
  }
  REEL_LT_CHECK(cublasLtMatrixLayoutCreate(&call.a, type, a.rows, a.cols, a.rows));
  REEL_LT_CHECK(cublasLtMatrixLayoutCreate(&call.b, type, b.rows, b.cols, b.rows));
  REEL_LT_CHECK(cublasLtMatrixLayoutCreate(&call.c, type, m, n, m));
  const size_t workspace_bytes = 32 << 20;
  auto workspace = at::empty({static_cast<int64_t>(workspace_bytes)}, d.options().dtype(at::kByte));
  REEL_LT_CHECK(cublasLtMatmulPreferenceCreate(&call.pref));
  REEL_LT_CHECK(cublasLtMatmulPreferenceSetAttribute(call.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                     &workspace_bytes, sizeof(workspace_bytes)));
  cublasLtHandle_t handle = at::cuda::getCurrentCUDABlasLtHandle();
  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  REEL_LT_CHECK(cublasLtMatmulAlgoGetHeuristic(handle, call.desc, call.a, call.b, call.c, call.c, call.pref, 1,
                                               &heuristic, &found));
  if (found == 0) throw std::runtime_error("cuBLASLt: no algorithm for this linear layer");
  const float alpha = 1.f, beta = 0.f;
  REEL_LT_CHECK(cublasLtMatmul(handle, call.desc, &alpha, a.t.data_ptr(), call.a, b.t.data_ptr(), call.b, &beta,
                               d.data_ptr(), call.c, d.data_ptr(), call.c, &heuristic.algo, workspace.data_ptr(),
                               workspace_bytes, at::cuda::getCurrentCUDAStream()));
}

// y [M, N] = x [M, K] W^T (+ bias) (GELU, keeping the pre-activation in aux [M, N]).
at::Tensor forward_matmul(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, bool gelu,
                          at::Tensor& aux) {
  const int64_t m = x.size(0), k = x.size(1), n = w.size(0);
  auto y = at::empty({m, n}, x.options());
  cublasLtEpilogue_t epi = gelu ? (bias.defined() ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX)
                                : (bias.defined() ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
  if (gelu) aux = at::empty({m, n}, x.options());
  // y^T (n x m) = op_T(W stored k x n) * x^T (stored k x m)
  lt_matmul({w, k, n, true}, {x, k, m, false}, y, n, m, epi, bias, aux);
  return y;
}

struct LtLinearFn : public torch::autograd::Function<LtLinearFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w,
                            const at::Tensor& bias, bool gelu) {
    const c10::cuda::CUDAGuard guard(x.device());
    auto x2 = x.reshape({-1, x.size(-1)}).contiguous();
    auto wc = w.contiguous();
    at::Tensor aux;
    auto y = forward_matmul(x2, wc, bias.defined() ? bias.contiguous() : bias, gelu, aux);
    ctx->save_for_backward({x2, wc, aux});
    ctx->saved_data["gelu"] = gelu;
    ctx->saved_data["has_bias"] = bias.defined();
    auto sizes = x.sizes().vec();
    sizes.back() = w.size(0);
    return y.view(sizes);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const c10::cuda::CUDAGuard guard(grads[0].device());
    auto saved = ctx->get_saved_variables();
    auto x = saved[0], w = saved[1], aux = saved[2];
    const int64_t m = x.size(0), k = x.size(1), n = w.size(0);
    auto g = grads[0].reshape({m, n}).contiguous();
    if (ctx->saved_data["gelu"].toBool()) {
      g = at::gelu_backward(g.to(at::kFloat), aux.to(at::kFloat), "tanh").to(x.scalar_type());
    }
    // dx [M, K] = g [M, N] W [N, K]: dx^T (k x m) = W^T... column-major: W stored (k x n), g stored (n x m).
    auto dx = at::empty({m, k}, x.options());
    lt_matmul({w, k, n, false}, {g, n, m, false}, dx, k, m, CUBLASLT_EPILOGUE_DEFAULT, {}, {});
    // dW [N, K] = g^T [N, M] x [M, K]: dW^T (k x n) = x^T (stored k x m) * g (stored n x m, transposed).
    auto dw = at::empty({n, k}, x.options());
    lt_matmul({x, k, m, false}, {g, n, m, true}, dw, k, n, CUBLASLT_EPILOGUE_DEFAULT, {}, {});
    at::Tensor db;
    if (ctx->saved_data["has_bias"].toBool()) db = g.to(at::kFloat).sum(0).to(x.scalar_type());
    auto dx_sizes = grads[0].sizes().vec();
    dx_sizes.back() = k;
    return {dx.view(dx_sizes), dw, db, at::Tensor()};
  }
};

}  // namespace

bool linear_supported(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  const auto t = x.scalar_type();
  const bool dtype_ok = (t == at::kBFloat16 || t == at::kHalf) && weight.scalar_type() == t &&
                        (!bias.defined() || bias.scalar_type() == t);
  return dtype_ok && weight.is_cuda() && x.size(-1) % 8 == 0 && weight.size(0) % 8 == 0 && x.numel() > 0;
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool gelu) {
  TORCH_CHECK(linear_supported(x, weight, bias),
              "cuBLASLt linear needs CUDA float16/bfloat16 tensors of one dtype with K and N multiples of 8");
  return LtLinearFn::apply(x, weight, bias, gelu);
}

}  // namespace reel::cuda
