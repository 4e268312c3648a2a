// Core-internal: the numerics the scaling algorithms share, as pure functions on tensors so each
// can be tested against the reference implementations (mit-han-lab/smoothquant, llm-awq; see
// tests/data/reference/scaling/README.md):
//   SmoothQuantScales  s = (max|x|^alpha / max|W|^(1-alpha)).clamp(min=clamp_min)
//   RatioScales        s = stat^ratio clamped at 1e-4, divided by sqrt(max(s) * min(s))
//   SearchRatioGrid    ratios i/n, first strict minimum of the loss wins
//   SearchClip         AWQ's weight clipping: per output row and group the symmetric shrink of
//                      max|w| (1, 1 - 1/n, ...) whose quantized group output is closest
// All tensors float32 on the CPU.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <vector>

#include "absl/status/statusor.h"

namespace quarry::algorithms::scaling {

// weights: the [out_j, in] weights of an entry's layers. The weight statistic is the per-input-
// column max|W| over all of them, clamped at 1e-5 (as both Quark and smoothquant do).
// smoothquant clamps s at 1e-5; Quark at its scale_clamp_min (default 1e-3).
at::Tensor SmoothQuantScales(const at::Tensor& act_max, const std::vector<at::Tensor>& weights,
                             double alpha, double clamp_min);

// stat^ratio clamped at 1e-4, normalised by sqrt(max(s) * min(s)) (AWQ with mean|x|,
// AutoSmoothQuant with max|x|).
at::Tensor RatioScales(const at::Tensor& stat, double ratio);

struct GridSearchResult {
  int best_index = -1;
  double best_ratio = 0;
  double best_loss = 0;
  at::Tensor best_scales;
  std::vector<double> losses;  // per ratio i / n_grid, in order
};

using ScaleLoss = std::function<absl::StatusOr<double>(const at::Tensor& scales)>;

// Ratios i / n_grid for i = 0..n_grid-1, s = RatioScales(stat, ratio), loss = loss(s). The first
// strict minimum wins (llm-awq's `loss < best_error`, Quark's argmin); a non-finite loss never
// wins; an error when every loss is non-finite (names the losses).
absl::StatusOr<GridSearchResult> SearchRatioGrid(const at::Tensor& stat, int n_grid,
                                                 const ScaleLoss& loss);

// The output MSE of one linear for a weight change D = W' - W without running it:
//   mean over tokens t and outputs o of (x_t . D_o)^2 = sum((D G) * D) / (T * out), G = sum x^T x.
// For the AWQ search of a linear module2inspect this replaces 20 passes over the T tokens
// (T * in * out each) by one Gram matrix (T * in^2) and 20 products (out * in^2).
at::Tensor GramMatrix(const std::vector<at::Tensor>& x, int64_t* tokens);  // [in, in] float32
double GramLoss(const at::Tensor& d, const at::Tensor& gram, int64_t tokens);

// A fake quantizer of a [rows, in] weight with parameters computed from that weight (the layer's
// weight spec, or a reference's rounding in tests).
using FakeQuantizeFn = std::function<absl::StatusOr<at::Tensor>(const at::Tensor& w)>;

// llm-awq's token sample: the rows 0, step, 2 step, ... of x viewed as [T, in], step =
// T / min(T, n_sample) (so between n_sample and 2 n_sample - 1 rows).
at::Tensor SampleTokens(const at::Tensor& x, int64_t n_sample);

struct ClipResult {
  at::Tensor max_val;         // [out, in / group] chosen clip threshold per row and group
  double err_unclipped = 0;   // sum over rows and groups of the mean squared group-output error
  double err_clipped = 0;     //   at shrink 1 and at the chosen shrink
};

// w [out, in], x [T, in] (the sampled inputs, already divided by any folded scale), group | in.
// For i in 0..max_shrink*n_grid-1: max_val = max|w_group| * (1 - i / n_grid), w clamped to
// +-max_val, quantized with `quantize`, error = mean over tokens of (x_g . q_g - x_g . w_g)^2 per
// row and group; the smallest error wins (strict <, so ties keep the smaller shrink).
// Rows are processed in blocks of `row_block` to bound memory.
absl::StatusOr<ClipResult> SearchClip(const at::Tensor& w, const at::Tensor& x, int64_t group,
                                      const FakeQuantizeFn& quantize, int n_grid = 20,
                                      double max_shrink = 0.5, int64_t row_block = 256);

// w clamped to [-max_val, max_val] per row and group; max_val [out, in / group].
at::Tensor ApplyClip(const at::Tensor& w, const at::Tensor& max_val);

}  // namespace quarry::algorithms::scaling
