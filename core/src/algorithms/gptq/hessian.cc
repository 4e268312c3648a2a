// Running-average second-moment accumulators for GPTQ / Qronos. H uses the BLAS rank-k update
// (ssyrk: one triangle, half the flops of a GEMM); G is a plain GEMM.
#include <ATen/ATen.h>

#include "absl/strings/str_cat.h"
#include "quarry/gptq.h"
#include "quarry/status.h"

extern "C" {
// Fortran BLAS (OpenBLAS provides it as libblas.so.3 on Debian).
void ssyrk_(const char* uplo, const char* trans, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* beta, float* c, const int* ldc);
}

namespace quarry {

HessianAccumulator::HessianAccumulator(int64_t in_features, double factor)
    : in_(in_features), factor_(factor), h_(at::zeros({in_features, in_features}, at::kFloat)) {}

absl::Status HessianAccumulator::Add(const at::Tensor& x) {
  if (x.size(-1) != in_)
    return absl::InvalidArgumentError(absl::StrCat("Hessian input has ", x.size(-1),
                                                   " features, expected ", in_));
  at::Tensor X = x.reshape({-1, in_}).to(at::kFloat).contiguous();
  const int64_t t = X.size(0);
  if (t == 0) return absl::OkStatus();
  // H = H * n/(n+t) + (factor/(n+t)) X^T X: a running mean over tokens.
  const float beta = static_cast<float>(static_cast<double>(n_) / static_cast<double>(n_ + t));
  n_ += t;
  const float alpha = static_cast<float>(factor_ / static_cast<double>(n_));
  // Row-major X [t, in] is column-major X^T [in, t]: C(in x in) = A A^T with A = X^T, "N".
  // Column-major upper triangle = row-major lower triangle of h_.
  const char uplo = 'U', trans = 'N';
  const int n = static_cast<int>(in_), k = static_cast<int>(t), lda = n, ldc = n;
  ssyrk_(&uplo, &trans, &n, &k, &alpha, X.data_ptr<float>(), &lda, &beta, h_.data_ptr<float>(), &ldc);
  return absl::OkStatus();
}

at::Tensor HessianAccumulator::H() {
  // Mirror the row-major lower triangle into the upper one.
  at::Tensor lower = h_.tril();
  return lower + lower.tril(-1).t();
}

CrossCovarianceAccumulator::CrossCovarianceAccumulator(int64_t in_features)
    : in_(in_features), g_(at::zeros({in_features, in_features}, at::kFloat)) {}

absl::Status CrossCovarianceAccumulator::Add(const at::Tensor& x_float, const at::Tensor& x_quant) {
  if (x_float.sizes() != x_quant.sizes() || x_float.size(-1) != in_)
    return absl::InvalidArgumentError("float and quantized inputs must have the same shape");
  at::Tensor X = x_float.reshape({-1, in_}).to(at::kFloat);
  at::Tensor Xq = x_quant.reshape({-1, in_}).to(at::kFloat);
  const int64_t t = X.size(0);
  if (t == 0) return absl::OkStatus();
  const double beta = static_cast<double>(n_) / static_cast<double>(n_ + t);
  n_ += t;
  // G[j, k] = mean_t x[j] x~[k]  ->  G = X^T Xq / n.
  g_.mul_(beta).addmm_(X.t(), Xq, 1.0, 1.0 / static_cast<double>(n_));
  return absl::OkStatus();
}

double LayerOutputError(const at::Tensor& X, const at::Tensor& W, const at::Tensor& Q) {
  at::Tensor x = X.reshape({-1, X.size(-1)}).to(at::kDouble);
  at::Tensor d = at::matmul(x, (W.to(at::kDouble) - Q.to(at::kDouble)).t());
  return d.pow(2).sum().item<double>();
}

}  // namespace quarry
