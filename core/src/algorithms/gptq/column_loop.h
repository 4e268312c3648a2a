// Core-internal: the pieces GPTQ and Qronos share: dead-column handling, quantizer set-up,
// dampened Cholesky factors with retries, and the blocked column loop with lazy batch updates.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "algorithms/gptq/column_quantizer.h"

namespace quarry::algorithms {

// Zeroes dead columns (H_ii == 0) of W and sets H_ii = 1 there (in place on copies).
void HandleDeadColumns(at::Tensor& W, at::Tensor& H);

// Permutation by descending diag(H) (stable for ties), and its inverse.
std::vector<int64_t> DescendingDiagonalOrder(const at::Tensor& H);
std::vector<int64_t> InversePermutation(const std::vector<int64_t>& perm);
at::Tensor PermIndex(const std::vector<int64_t>& perm);

// The upper Cholesky factor of (H + damp I)^-1 with damp = damp_percent * mean(diag H). When the
// factorisation fails, more dampening is added (Quark: + max(|damp|, 1e-6 mean|diag|, eps),
// growing x10) up to 5 times. Reports the retries and the total dampening.
absl::StatusOr<at::Tensor> DampedInverseCholeskyUpper(const at::Tensor& H, double damp_percent,
                                                      int* retries, double* damp);

// Which parameter group a (permuted) column uses, computing it first when needed.
using GroupOf = std::function<absl::StatusOr<int64_t>(int64_t col, const at::Tensor& Wt)>;

// The GPTQ column loop over columns [start, C) of Wt ([C, R], transposed weights in processing
// order), with U the upper Cholesky factor of the inverse Hessian whose row/column 0 corresponds
// to column `u_offset` of Wt. Quantized columns go to Qt ([C, R]).
absl::Status ColumnLoop(at::Tensor& Wt, const at::Tensor& U, int64_t start, int64_t u_offset,
                        int64_t block_size, const ColumnQuantizer& cq, const GroupOf& group_of,
                        at::Tensor& Qt);

}  // namespace quarry::algorithms
