// HistogramObserver: Quark's PerTensorHistogramObserver, PerTensorPercentileObserver and
// PerTensorMSEObserver. The histogram is torch.histc over torch.linspace edges (float32), as Quark.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

#include "numerics/observers/observers.h"
#include "numerics/reference/fp_elements.h"
#include "numerics/reference/int_grid.h"
#include "quarry/status.h"

namespace quarry::numerics {
namespace {

// Index of the first element of the float32 vector `cdf` that is >= target, or `fallback`.
int64_t FirstAtLeast(const at::Tensor& cdf, float target, int64_t fallback) {
  const float* c = cdf.data_ptr<float>();
  for (int64_t i = 0; i < cdf.numel(); ++i) {
    if (c[i] >= target) return i;
  }
  return fallback;
}

}  // namespace

HistogramObserver::HistogramObserver(QuantPlan plan, Kind kind)
    : ObserverImpl(std::move(plan)),
      kind_(kind),
      bins_(kind == Kind::kPercentile ? 4200 : 2048),
      skip_zeros_(kind == Kind::kPercentile),
      // Quark histograms |x| unless symmetric is explicitly False.
      symmetric_histogram_(!(plan_.spec.symmetric.has_value() && !*plan_.spec.symmetric)) {}

absl::Status HistogramObserver::Observe(const at::Tensor& x) {
  return CatchExceptions("HistogramObserver::Observe", [&]() -> absl::Status {
    QUARRY_ASSIGN_OR_RETURN(at::Tensor x32, Prepare(x));
    at::Tensor keep = at::isfinite(x32);
    if (skip_zeros_) keep = keep.logical_and(x32 != 0);
    at::Tensor v = x32.masked_select(keep);
    float x_min = 0.0f, x_max = 0.0f;
    if (!symmetric_histogram_) {
      if (v.numel() > 0) {
        x_min = v.min().item<float>();
        x_max = v.max().item<float>();
      }
    } else {
      if (v.numel() > 0 && v.min().item<float>() < 0.0f) v = v.abs();
      if (v.numel() > 0) x_max = v.max().item<float>();
    }
    if (x_min == x_max) {  // constant input: widen so linspace has distinct edges (Quark)
      const double span =
          std::max(std::fabs(static_cast<double>(x_min)), 1.0) * bins_ * static_cast<double>(FLT_EPSILON);
      x_max = x_min + static_cast<float>(std::max(span, static_cast<double>(FLT_MIN)));
    }
    if (!hist_.defined()) {
      hist_ = at::histc(v, bins_, x_min, x_max);
      edges_ = at::linspace(x_min, x_max, bins_ + 1, at::kFloat);
      observed_ = true;
      return absl::OkStatus();
    }
    // Grow by whole bins of the current width on either side, keeping old bins aligned.
    const float lo = edges_[0].item<float>();
    const float hi = edges_[-1].item<float>();
    const float width = (edges_[1] - edges_[0]).item<float>();
    const int64_t grow_lo = x_min < lo ? static_cast<int64_t>(std::ceil((lo - x_min) / width)) : 0;
    const int64_t grow_hi = x_max > hi ? static_cast<int64_t>(std::ceil((x_max - hi) / width)) : 0;
    const float new_lo = lo - static_cast<float>(grow_lo) * width;
    const float new_hi = hi + static_cast<float>(grow_hi) * width;
    const int64_t old_bins = bins_;
    bins_ += grow_lo + grow_hi;
    at::Tensor hist = at::histc(v, bins_, new_lo, new_hi);
    hist.narrow(0, grow_lo, old_bins).add_(hist_);
    hist_ = hist;
    if (grow_lo > 0 || grow_hi > 0) edges_ = at::linspace(new_lo, new_hi, bins_ + 1, at::kFloat);
    observed_ = true;
    return absl::OkStatus();
  });
}

std::pair<float, float> HistogramObserver::SelectedRange() const {
  const int64_t n = hist_.numel();
  const float* edges = edges_.data_ptr<float>();
  if (kind_ == Kind::kRange) return {edges[0], edges[n]};

  if (kind_ == Kind::kPercentile) {
    const at::Tensor total = hist_.sum();
    if (total.item<float>() <= 0.0f) return {0.0f, 0.0f};
    const at::Tensor cdf = at::cumsum(hist_ / total, 0).contiguous();
    const double last = cdf[-1].item<float>();
    if (symmetric_histogram_) {
      // max = left edge of the first bin whose cdf reaches min(p/100, cdf[-1]) (Quark).
      const float target = static_cast<float>(std::min(kPercentile / 100.0, last));
      return {0.0f, edges[FirstAtLeast(cdf, target, n - 1)]};
    }
    // Asymmetric: the bins holding the (100-p)/2 and 100-(100-p)/2 percentiles, whole bins kept.
    const double tail = (100.0 - kPercentile) / 200.0;
    const int64_t lo = FirstAtLeast(cdf, static_cast<float>(tail), 0);
    const int64_t hi = FirstAtLeast(cdf, static_cast<float>(std::min(1.0 - tail, last)), n - 1);
    return {edges[lo], edges[hi + 1]};
  }

  // kMse: min fixed to 0; amax is the best of the bin centers from 2045 on (Quark's start_bin).
  const at::Tensor centers = ((edges_.slice(0, 1) + edges_.slice(0, 0, n)) / 2).contiguous();
  const float* c = centers.data_ptr<float>();
  const int64_t start = std::min<int64_t>(2045, std::max<int64_t>(0, n - 1));
  float best_mse = std::numeric_limits<float>::infinity();
  int64_t best = start;
  at::Tensor quantized = at::empty_like(centers);
  float* qc = quantized.data_ptr<float>();
  for (int64_t i = start; i < n; ++i) {
    const float amax = c[i];
    if (plan_.family == Family::kInt) {
      const ref::IntParams ip = ref::IntParamsFromMinMax(0.0f, amax, plan_.qmin, plan_.qmax,
                                                         plan_.symmetric, plan_.float_zero_point);
      const float zp = std::trunc(ip.zero_point);  // Quark passes zero_point.to(torch.int)
      for (int64_t j = 0; j < n; ++j) {
        qc[j] = ref::FakeQuantIntValue(c[j], ip.scale, zp, static_cast<float>(plan_.qmin),
                                       static_cast<float>(plan_.qmax), RoundType::kHalfEven);
      }
    } else {
      const float scale = amax / plan_.format->max_norm;
      for (int64_t j = 0; j < n; ++j) {
        qc[j] = ref::QuantizeFp8Value(c[j] / scale, *plan_.format) * scale;
      }
    }
    const float mse = ((quantized - centers).pow(2) * hist_).mean().item<float>();
    if (mse < best_mse) {
      best_mse = mse;
      best = i;
    }
  }
  return {0.0f, c[best]};
}

absl::StatusOr<QuantParams> HistogramObserver::Compute() const {
  if (!observed_) return NotObserved();
  return CatchExceptions("HistogramObserver::Compute", [&]() -> absl::StatusOr<QuantParams> {
    const auto [lo, hi] = SelectedRange();
    return ParamsFromRange(plan_, at::full({1}, lo, at::kFloat), at::full({1}, hi, at::kFloat), {});
  });
}

void HistogramObserver::Reset() {
  hist_ = at::Tensor();
  edges_ = at::Tensor();
  bins_ = kind_ == Kind::kPercentile ? 4200 : 2048;
  observed_ = false;
}

}  // namespace quarry::numerics
