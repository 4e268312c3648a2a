#include "algorithms/scaling/scale_search.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "quarry/status.h"

namespace quarry::algorithms::scaling {

at::Tensor SmoothQuantScales(const at::Tensor& act_max, const std::vector<at::Tensor>& weights,
                             double alpha, double clamp_min) {
  at::Tensor w_max;
  for (const at::Tensor& w : weights) {
    at::Tensor m = std::get<0>(w.abs().max(0));
    w_max = w_max.defined() ? at::maximum(w_max, m) : m;
  }
  w_max = w_max.clamp_min(1e-5);
  return (act_max.to(at::kFloat).pow(alpha) / w_max.pow(1 - alpha)).clamp_min(clamp_min);
}

at::Tensor RatioScales(const at::Tensor& stat, double ratio) {
  at::Tensor s = stat.to(at::kFloat).pow(ratio).clamp_min(1e-4).reshape({-1});
  return s / (s.max() * s.min()).sqrt();
}

absl::StatusOr<GridSearchResult> SearchRatioGrid(const at::Tensor& stat, int n_grid,
                                                 const ScaleLoss& loss) {
  if (n_grid < 1) return absl::InvalidArgumentError("the ratio grid needs at least one point");
  GridSearchResult r;
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < n_grid; ++i) {
    const double ratio = static_cast<double>(i) / n_grid;
    at::Tensor s = RatioScales(stat, ratio);
    QUARRY_ASSIGN_OR_RETURN(double l, loss(s));
    r.losses.push_back(l);
    if (std::isfinite(l) && l < best) {
      best = l;
      r.best_index = i;
      r.best_ratio = ratio;
      r.best_scales = s;
    }
  }
  if (r.best_index < 0)
    return absl::InternalError(absl::StrCat("every candidate scale gave a non-finite loss (",
                                            absl::StrJoin(r.losses, ", "),
                                            "); the calibration inputs or weights hold inf/NaN"));
  r.best_loss = best;
  return r;
}

at::Tensor GramMatrix(const std::vector<at::Tensor>& x, int64_t* tokens) {
  at::Tensor g;
  int64_t t = 0;
  for (const at::Tensor& b : x) {
    at::Tensor flat = b.reshape({-1, b.size(-1)}).to(at::kFloat);
    g = g.defined() ? g.addmm_(flat.t(), flat) : at::mm(flat.t(), flat);
    t += flat.size(0);
  }
  if (tokens) *tokens = t;
  return g;
}

double GramLoss(const at::Tensor& d, const at::Tensor& gram, int64_t tokens) {
  const double n = static_cast<double>(tokens) * static_cast<double>(d.size(0));
  if (n == 0) return 0;
  return (at::mm(d, gram) * d).sum(at::kDouble).item<double>() / n;
}

at::Tensor SampleTokens(const at::Tensor& x, int64_t n_sample) {
  at::Tensor flat = x.reshape({-1, x.size(-1)});
  const int64_t t = flat.size(0);
  const int64_t n = std::min(t, n_sample);
  if (n <= 0) return flat;
  return flat.slice(0, 0, t, t / n);
}

absl::StatusOr<ClipResult> SearchClip(const at::Tensor& w_in, const at::Tensor& x_in, int64_t group,
                                      const FakeQuantizeFn& quantize, int n_grid, double max_shrink,
                                      int64_t row_block) {
  if (w_in.dim() != 2 || x_in.dim() != 2 || x_in.size(1) != w_in.size(1))
    return absl::InvalidArgumentError(absl::StrCat("clip search: weight ", c10::str(w_in.sizes()),
                                                   " and inputs ", c10::str(x_in.sizes()),
                                                   " do not match"));
  const int64_t out = w_in.size(0), in = w_in.size(1);
  if (group <= 0 || in % group != 0)
    return absl::InvalidArgumentError(
        absl::StrCat("clip search: group ", group, " does not divide ", in, " input features"));
  const int64_t ng = in / group, t = x_in.size(0);
  at::Tensor w = w_in.to(at::kFloat).contiguous();
  // [ng, T, g]: one matrix product per group gives every row's group output.
  at::Tensor xg = x_in.to(at::kFloat).reshape({t, ng, group}).permute({1, 0, 2}).contiguous();
  const int steps = static_cast<int>(max_shrink * n_grid);
  ClipResult r;
  r.max_val = at::empty({out, ng}, at::kFloat);
  for (int64_t r0 = 0; r0 < out; r0 += row_block) {
    const int64_t rb = std::min(row_block, out - r0);
    at::Tensor wb = w.narrow(0, r0, rb).reshape({rb, ng, group});
    at::Tensor org_max = wb.abs().amax(-1, /*keepdim=*/true);               // [rb, ng, 1]
    at::Tensor org_out = at::bmm(xg, wb.permute({1, 2, 0}));                 // [ng, T, rb]
    at::Tensor best_max = org_max.clone();
    at::Tensor min_err = at::full({rb, ng, 1}, 1e9, at::kFloat);
    for (int i = 0; i < steps; ++i) {
      at::Tensor max_val = org_max * (1 - static_cast<double>(i) / n_grid);
      at::Tensor cur = at::clamp(wb, -max_val, max_val);
      QUARRY_ASSIGN_OR_RETURN(at::Tensor q, quantize(cur.reshape({rb, in})));
      at::Tensor cur_out = at::bmm(xg, q.reshape({rb, ng, group}).permute({1, 2, 0}));
      at::Tensor err = (cur_out - org_out).pow(2).mean(1).t().unsqueeze(-1);  // [rb, ng, 1]
      if (i == 0) r.err_unclipped += err.sum().item<double>();
      at::Tensor better = err < min_err;
      min_err = at::where(better, err, min_err);
      best_max = at::where(better, max_val, best_max);
    }
    r.err_clipped += min_err.sum().item<double>();
    r.max_val.narrow(0, r0, rb).copy_(best_max.squeeze(-1));
  }
  return r;
}

at::Tensor ApplyClip(const at::Tensor& w, const at::Tensor& max_val) {
  const int64_t out = w.size(0), ng = max_val.size(1);
  at::Tensor mv = max_val.reshape({out, ng, 1});
  return at::clamp(w.reshape({out, ng, -1}), -mv, mv).reshape(w.sizes()).contiguous();
}

}  // namespace quarry::algorithms::scaling
