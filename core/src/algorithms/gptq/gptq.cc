// GPTQ and Qronos on one weight matrix (see quarry/gptq.h). Weights are processed transposed
// ([in, out] row-major) so that a column is contiguous and the in-block rank-1 updates vectorise.
#include <ATen/ATen.h>

#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "algorithms/gptq/column_loop.h"
#include "algorithms/gptq/column_quantizer.h"
#include "quarry/gptq.h"
#include "quarry/status.h"

namespace quarry {
namespace {

using algorithms::ColumnQuantizer;
using Clock = std::chrono::steady_clock;

absl::Status CheckShapes(const at::Tensor& W, const at::Tensor& H) {
  if (W.dim() != 2) return absl::InvalidArgumentError("weight must be 2-D [out, in]");
  if (H.dim() != 2 || H.size(0) != W.size(1) || H.size(1) != W.size(1))
    return absl::InvalidArgumentError(absl::StrCat("H must be [", W.size(1), ", ", W.size(1),
                                                   "], got ", c10::str(H.sizes())));
  return absl::OkStatus();
}

// Sets up group parameters: static groups / per-channel / per-tensor from W (original column
// order, dead columns zeroed); returns the group selector for the loop.
struct Groups {
  bool static_groups = false;
  std::vector<int64_t> perm;  // processing index -> original column
};

absl::StatusOr<algorithms::GroupOf> SetUpGroups(ColumnQuantizer& cq, const at::Tensor& W,
                                                bool static_groups, const std::vector<int64_t>& perm) {
  const int64_t C = W.size(1);
  if (!cq.per_group()) {
    QUARRY_RETURN_IF_ERROR(cq.ComputeGroup(0, W));
    return algorithms::GroupOf([](int64_t, const at::Tensor&) -> absl::StatusOr<int64_t> { return 0; });
  }
  const int64_t gs = cq.group_size();
  if (static_groups) {
    for (int64_t g = 0; g < cq.num_groups(); ++g)
      QUARRY_RETURN_IF_ERROR(cq.ComputeGroup(g, W.narrow(1, g * gs, std::min(gs, C - g * gs))));
    return algorithms::GroupOf(
        [perm, gs](int64_t col, const at::Tensor&) -> absl::StatusOr<int64_t> {
          const int64_t orig = perm.empty() ? col : perm[col];
          return orig / gs;
        });
  }
  // Dynamic groups: computed from the current (error-updated) weights when a group starts, in
  // processing order (with act-order these groups are not consecutive original columns).
  ColumnQuantizer* q = &cq;
  return algorithms::GroupOf(
      [q, gs, C](int64_t col, const at::Tensor& Wt) -> absl::StatusOr<int64_t> {
        const int64_t g = col / gs;
        if (col % gs == 0 || !q->has_group(g)) {
          const int64_t start = g * gs;
          const int64_t width = std::min(gs, C - start);
          QUARRY_RETURN_IF_ERROR(q->ComputeGroup(g, Wt.narrow(0, start, width).t()));
        }
        return g;
      });
}

// The common end of GPTQ and Qronos: Qt [C, R] back to [R, C] in the original column order, the
// frozen parameters (none for per-group act-order without static groups: its groups are in
// permuted order, which a QuantParams cannot express), the permutation and the time taken.
absl::Status FinishResult(const at::Tensor& Qt, std::vector<int64_t> perm,
                          const ColumnQuantizer& cq, bool static_groups, Clock::time_point t0,
                          WeightQuantResult* result) {
  at::Tensor Q = Qt.t();
  if (!perm.empty()) Q = Q.index_select(1, algorithms::PermIndex(algorithms::InversePermutation(perm)));
  result->weight = Q.contiguous();
  if (!(cq.per_group() && !static_groups && !perm.empty())) {
    QUARRY_ASSIGN_OR_RETURN(QuantParams p, cq.Params());
    result->params = std::move(p);
  }
  result->perm = std::move(perm);
  result->quant_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<at::Tensor> RtnQuantizeWeight(const at::Tensor& weight, const QuantizationSpec& spec) {
  QUARRY_ASSIGN_OR_RETURN(QuantParams p, ComputeQuantParams(spec, weight.to(at::kFloat)));
  return FakeQuantize(weight.to(at::kFloat), spec, p);
}

absl::StatusOr<WeightQuantResult> GptqQuantizeWeight(const at::Tensor& weight, const at::Tensor& H_in,
                                                     const QuantizationSpec& spec,
                                                     const GPTQConfig& config) {
  QUARRY_RETURN_IF_ERROR(CheckShapes(weight, H_in));
  if (config.block_size <= 0) return absl::InvalidArgumentError("block_size must be > 0");
  return CatchExceptions("GPTQ", [&]() -> absl::StatusOr<WeightQuantResult> {
    const auto t0 = Clock::now();
    WeightQuantResult result;
    at::Tensor W = weight.to(at::kFloat).clone();
    at::Tensor H = H_in.to(at::kFloat).clone();
    const int64_t R = W.size(0), C = W.size(1);
    algorithms::HandleDeadColumns(W, H);
    QUARRY_ASSIGN_OR_RETURN(ColumnQuantizer cq, ColumnQuantizer::Create(spec, R, C));
    std::vector<int64_t> perm;
    if (config.desc_act) perm = algorithms::DescendingDiagonalOrder(H);
    QUARRY_ASSIGN_OR_RETURN(algorithms::GroupOf group_of,
                            SetUpGroups(cq, W, config.static_groups, perm));
    if (!perm.empty()) {
      at::Tensor idx = algorithms::PermIndex(perm);
      W = W.index_select(1, idx);
      H = H.index_select(0, idx).index_select(1, idx);
    }
    QUARRY_ASSIGN_OR_RETURN(at::Tensor U, algorithms::DampedInverseCholeskyUpper(
                                              H, config.damp_percent, &result.damp_retries,
                                              &result.damp));
    at::Tensor Wt = W.t().contiguous();
    at::Tensor Qt = at::empty({C, R}, at::kFloat);
    QUARRY_RETURN_IF_ERROR(algorithms::ColumnLoop(Wt, U, 0, 0, config.block_size, cq, group_of, Qt));
    QUARRY_RETURN_IF_ERROR(
        FinishResult(Qt, std::move(perm), cq, config.static_groups, t0, &result));
    return result;
  });
}

namespace {
// Largest eigenvalue of a symmetric PSD matrix by 30 power iterations (as Quark's Qronos).
double PowerIterationMax(const at::Tensor& H) {
  at::Tensor Hd = H.to(at::kDouble);
  const double c = Hd.abs().max().item<double>();
  if (c == 0) return 0;
  at::Tensor Hk = Hd / c;
  at::Tensor b = at::ones({H.size(0)}, at::kDouble);
  for (int i = 0; i < 30; ++i) {
    at::Tensor v = at::mv(Hk, b);
    b = v / (v.norm() + 1e-12);
  }
  return at::dot(b, at::mv(Hk, b)).item<double>() * c;
}
}  // namespace

absl::StatusOr<WeightQuantResult> QronosQuantizeWeight(const at::Tensor& weight, const at::Tensor& H_in,
                                                       const at::Tensor& G_in,
                                                       const QuantizationSpec& spec,
                                                       const QronosConfig& config) {
  QUARRY_RETURN_IF_ERROR(CheckShapes(weight, H_in));
  if (G_in.sizes() != H_in.sizes()) return absl::InvalidArgumentError("G must have H's shape");
  if (config.block_size <= 0) return absl::InvalidArgumentError("block_size must be > 0");
  return CatchExceptions("Qronos", [&]() -> absl::StatusOr<WeightQuantResult> {
    const auto t0 = Clock::now();
    WeightQuantResult result;
    at::Tensor W = weight.to(at::kFloat).clone();
    at::Tensor H = H_in.to(at::kFloat).clone();
    at::Tensor G = G_in.to(at::kFloat).clone();
    const int64_t R = W.size(0), C = W.size(1);
    algorithms::HandleDeadColumns(W, H);  // G is not zeroed for dead columns (as Quark)
    QUARRY_ASSIGN_OR_RETURN(ColumnQuantizer cq, ColumnQuantizer::Create(spec, R, C));
    std::vector<int64_t> perm;
    if (config.desc_act) perm = algorithms::DescendingDiagonalOrder(H);
    QUARRY_ASSIGN_OR_RETURN(algorithms::GroupOf group_of,
                            SetUpGroups(cq, W, config.static_groups, perm));
    if (!perm.empty()) {
      at::Tensor idx = algorithms::PermIndex(perm);
      W = W.index_select(1, idx);
      H = H.index_select(0, idx).index_select(1, idx);
      G = G.index_select(0, idx).index_select(1, idx);
    }
    const double damp = config.alpha * PowerIterationMax(H);
    result.damp = damp;
    at::Tensor Hd = H.clone();
    Hd.diagonal().add_(damp);
    auto [L, info] = at::linalg_cholesky_ex(Hd);
    if (info.item<int64_t>() != 0)
      return absl::FailedPreconditionError(
          "Qronos: H + alpha * lambda_max(H) I is not positive definite; increase alpha");
    at::Tensor Hinv = at::cholesky_inverse(L);
    at::Tensor Wt = W.t().contiguous();  // [C, R]
    at::Tensor Qt = at::empty({C, R}, at::kFloat);
    // 1. First column from the undamped statistics.
    const double h00 = H[0][0].item<double>();
    const double D = h00 == 0 ? 0.0 : 1.0 / h00;
    at::Tensor H0 = H[0].clone();
    H0[0] = 0;
    at::Tensor q_arg = at::mv(W, G.select(1, 0) * D) - at::mv(W, H0 * D);  // [R]
    {
      QUARRY_ASSIGN_OR_RETURN(int64_t g0, group_of(0, Wt));
      at::Tensor arg = q_arg.contiguous();
      QUARRY_RETURN_IF_ERROR(cq.QuantizeColumn(g0, arg.data_ptr<float>(), Qt[0].data_ptr<float>()));
    }
    at::Tensor q0 = Qt[0].clone();
    if (C > 1) {
      // 2. Sherman-Morrison: A = ((H + damp I)[1:, 1:])^-1 from the full inverse.
      at::Tensor A = Hinv.narrow(0, 1, C - 1).narrow(1, 1, C - 1).clone();
      at::Tensor b = Hinv.narrow(0, 1, C - 1).select(1, 0);
      const double c = Hinv[0][0].item<double>();
      A.sub_(at::outer(b, b) / c);
      // 3. W[:, 1:] = W (G + damp I)[:, 1:] A - q0 (H[0, 1:] A), with the full original W.
      at::Tensor Gd = G.clone();
      Gd.diagonal().add_(damp);
      at::Tensor M = at::matmul(Gd.narrow(1, 1, C - 1), A);                  // [C, C-1]
      at::Tensor rest = at::matmul(W, M) - at::outer(q0, at::mv(A, H[0].narrow(0, 1, C - 1)));
      Wt.narrow(0, 1, C - 1).copy_(rest.t());
      // 4. GPTQ over columns 1.. with the Cholesky factor of beta*A scaled back.
      auto [Ub, info2] = at::linalg_cholesky_ex(A * config.beta, /*upper=*/true);
      if (info2.item<int64_t>() != 0)
        return absl::FailedPreconditionError("Qronos: the updated inverse is not positive definite");
      at::Tensor U = Ub / std::sqrt(config.beta);
      QUARRY_RETURN_IF_ERROR(
          algorithms::ColumnLoop(Wt, U, 1, 1, config.block_size, cq, group_of, Qt));
    }
    QUARRY_RETURN_IF_ERROR(
        FinishResult(Qt, std::move(perm), cq, config.static_groups, t0, &result));
    return result;
  });
}

}  // namespace quarry
