// Hessian-based weight quantization of one linear layer: GPTQ (Frantar et al., 2022; the
// IST-DASLab reference algorithm with Quark's GPTQConfig) and Qronos (arXiv 2505.11695; Quark's
// QronosConfig). Both quantize with the layer's resolved weight QuantizationSpec, so they work
// for every spec the numerics support (integer per-tensor/channel/group, fp8, fp4/fp6, MX, ...).
//
// Statistics are accumulated in float32 as running averages over calibration tokens, so they do
// not depend on how the tokens were batched:
//   GPTQ   H = (2/n) sum_t x_t x_t^T            (x: the layer's input in the quantized model)
//   Qronos H = (1/n) sum_t x~_t x~_t^T,  G = (1/n) sum_t x_t x~_t^T
//          (x~: quantized-model input, x: float-model input of the same token)
// (The reference code and Quark count sequences, not tokens, in n; the scale of H does not change
// the result because the dampening is relative to it.)
//
// Thread-safety: accumulators are not thread-safe; the quantize functions are pure and use
// LibTorch/OpenBLAS threads internally.
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include "absl/status/statusor.h"
#include "quarry/quant_config.h"
#include "quarry/quantize.h"

namespace quarry {

// H += over the rows of x ([..., in], any leading shape): a BLAS rank-k update (syrk) of one
// triangle, symmetrised by H().
class HessianAccumulator {
 public:
  explicit HessianAccumulator(int64_t in_features, double factor = 2.0);
  absl::Status Add(const at::Tensor& x);
  int64_t tokens() const { return n_; }
  // The accumulated matrix (symmetric, in x in, float32). Valid until the next Add().
  at::Tensor H();

 private:
  int64_t in_;
  double factor_;
  int64_t n_ = 0;
  at::Tensor h_;
};

// G = (1/n) sum x x~^T over paired rows of x (float model) and x_q (quantized model).
class CrossCovarianceAccumulator {
 public:
  explicit CrossCovarianceAccumulator(int64_t in_features);
  absl::Status Add(const at::Tensor& x_float, const at::Tensor& x_quant);
  int64_t tokens() const { return n_; }
  const at::Tensor& G() const { return g_; }

 private:
  int64_t in_;
  int64_t n_ = 0;
  at::Tensor g_;
};

struct WeightQuantResult {
  at::Tensor weight;                 // [out, in] float32, fake-quantized (on the spec's grid)
  // Parameters in the spec's layout (per_group [out, in/g] in original column order), usable
  // for export. Absent for desc_act without static_groups on per-group specs: its groups follow
  // the permuted order and cannot be expressed as consecutive-column groups.
  std::optional<QuantParams> params;
  double quant_seconds = 0;          // the column loop (excluding statistics)
  int damp_retries = 0;              // Cholesky retries with more dampening
  double damp = 0;                   // the dampening actually added to diag(H)
  std::vector<int64_t> perm;         // act-order permutation (empty without desc_act)
};

// GPTQ on weight W [out, in] with Hessian H [in, in] (not modified). Dead columns (H_ii == 0) are
// zeroed; damp_percent * mean(diag H) is added to the diagonal (retried x10 up to 5 times when
// Cholesky fails); desc_act permutes columns by descending diag(H); static_groups computes group
// parameters from the original weights before the permutation; columns are processed in blocks of
// block_size with lazy batch updates.
absl::StatusOr<WeightQuantResult> GptqQuantizeWeight(const at::Tensor& weight, const at::Tensor& H,
                                                     const QuantizationSpec& spec,
                                                     const GPTQConfig& config);

// The same algorithm transcribed with LibTorch tensor ops column by column, as the reference
// Python does (used by tests and the benchmark as the baseline; slow).
absl::StatusOr<WeightQuantResult> GptqQuantizeWeightReference(const at::Tensor& weight,
                                                              const at::Tensor& H,
                                                              const QuantizationSpec& spec,
                                                              const GPTQConfig& config);

// Qronos on weight W with H (quantized-model inputs) and G (float x quantized inputs):
// dampening alpha * lambda_max(H) (power iteration); the first column solved from
// (W G[:,0] - sum_{j>=1} W[:,j] H[0,j]) / H[0,0] and quantized; a Sherman-Morrison update of the
// damped inverse; the remaining columns updated to W (G+damp I)[:,1:] A - q0 (H[0,1:] A); then a
// GPTQ pass over columns 1.. with the Cholesky factor of beta * A scaled back by 1/sqrt(beta).
absl::StatusOr<WeightQuantResult> QronosQuantizeWeight(const at::Tensor& weight, const at::Tensor& H,
                                                       const at::Tensor& G,
                                                       const QuantizationSpec& spec,
                                                       const QronosConfig& config);

// Rounding to nearest with the spec (the baseline both methods are compared to).
absl::StatusOr<at::Tensor> RtnQuantizeWeight(const at::Tensor& weight, const QuantizationSpec& spec);

// ||X W^T - X Q^T||_F^2 in float64 (X: [n, in]).
double LayerOutputError(const at::Tensor& X, const at::Tensor& W, const at::Tensor& Q);

}  // namespace quarry
