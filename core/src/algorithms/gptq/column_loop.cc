#include "algorithms/gptq/column_loop.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "quarry/status.h"

namespace quarry::algorithms {

void HandleDeadColumns(at::Tensor& W, at::Tensor& H) {
  at::Tensor dead = H.diagonal() == 0;
  if (!dead.any().item<bool>()) return;
  H.diagonal().masked_fill_(dead, 1.0);
  W.index_put_({at::indexing::Slice(), dead}, 0.0);
}

std::vector<int64_t> DescendingDiagonalOrder(const at::Tensor& H) {
  at::Tensor d = H.diagonal().contiguous().to(at::kFloat);
  const float* v = d.data_ptr<float>();
  std::vector<int64_t> perm(d.numel());
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(), [v](int64_t a, int64_t b) { return v[a] > v[b]; });
  return perm;
}

std::vector<int64_t> InversePermutation(const std::vector<int64_t>& perm) {
  std::vector<int64_t> inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inv[perm[i]] = static_cast<int64_t>(i);
  return inv;
}

at::Tensor PermIndex(const std::vector<int64_t>& perm) {
  return at::tensor(at::ArrayRef<int64_t>(perm), at::kLong);
}

absl::StatusOr<at::Tensor> DampedInverseCholeskyUpper(const at::Tensor& H, double damp_percent,
                                                      int* retries, double* damp) {
  const double mean_diag = H.diagonal().mean().item<double>();
  double d = damp_percent * mean_diag;
  double extra = std::max({std::abs(d), 1e-6 * H.diagonal().abs().mean().item<double>(),
                           static_cast<double>(std::numeric_limits<float>::epsilon())});
  *retries = 0;
  for (int attempt = 0; attempt <= 5; ++attempt) {
    at::Tensor Hd = H.clone();
    Hd.diagonal().add_(d);
    auto [L, info] = at::linalg_cholesky_ex(Hd);
    if (info.item<int64_t>() == 0) {
      at::Tensor inv = at::cholesky_inverse(L);
      auto [U, info2] = at::linalg_cholesky_ex(inv, /*upper=*/true);
      if (info2.item<int64_t>() == 0) {
        *damp = d;
        return U;
      }
    }
    ++*retries;
    d += extra;
    extra *= 10;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "the Hessian is not positive definite even with dampening ", d,
      " (check the calibration data: too few tokens or constant inputs?)"));
}

absl::Status ColumnLoop(at::Tensor& Wt, const at::Tensor& U, int64_t start, int64_t u_offset,
                        int64_t block_size, const ColumnQuantizer& cq, const GroupOf& group_of,
                        at::Tensor& Qt) {
  const int64_t C = Wt.size(0), R = Wt.size(1);
  at::Tensor Uc = U.contiguous();
  const int64_t ld = Uc.size(1);
  const float* u = Uc.data_ptr<float>();
  std::vector<float> q(R);
  for (int64_t i1 = start; i1 < C; i1 += block_size) {
    const int64_t i2 = std::min(i1 + block_size, C);
    const int64_t count = i2 - i1;
    at::Tensor W1 = Wt.narrow(0, i1, count).clone();  // [count, R]
    at::Tensor Err1 = at::empty({count, R}, at::kFloat);
    float* w1 = W1.data_ptr<float>();
    float* err1 = Err1.data_ptr<float>();
    float* qt = Qt.data_ptr<float>();
    for (int64_t i = 0; i < count; ++i) {
      const int64_t col = i1 + i;
      QUARRY_ASSIGN_OR_RETURN(int64_t g, group_of(col, Wt));
      float* w = w1 + i * R;
      QUARRY_RETURN_IF_ERROR(cq.QuantizeColumn(g, w, q.data()));
      std::copy(q.begin(), q.end(), qt + col * R);
      const int64_t ui = col - u_offset;
      const float d = u[ui * ld + ui];
      float* e = err1 + i * R;
      for (int64_t r = 0; r < R; ++r) e[r] = (w[r] - q[r]) / d;
      // W1[j] -= U[i, j] * err for the rest of the block (rows split across threads).
      const float* urow = u + ui * ld;
      at::parallel_for(0, R, 512, [&](int64_t r0, int64_t r1) {
        for (int64_t j = i + 1; j < count; ++j) {
          const float f = urow[(i1 + j) - u_offset];
          float* wj = w1 + j * R;
          for (int64_t r = r0; r < r1; ++r) wj[r] -= f * e[r];
        }
      });
    }
    if (i2 < C) {
      // Lazy batch update: Wt[i2:] -= U[i1:i2, i2:]^T @ Err1.
      at::Tensor Ublk = Uc.narrow(0, i1 - u_offset, count).narrow(1, i2 - u_offset, C - i2);
      at::Tensor rest = Wt.narrow(0, i2, C - i2);
      rest.addmm_(Ublk.t(), Err1, 1.0, -1.0);
    }
  }
  return absl::OkStatus();
}

}  // namespace quarry::algorithms
