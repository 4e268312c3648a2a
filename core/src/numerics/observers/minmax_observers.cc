// RangeObserver (Quark's Per{Tensor,Channel,Group}MinMaxObserver and PerBlockMXObserver) and
// PowOf2Observer (Per{Tensor,Channel}PowOf2MinMax/MinMSEObserver).
#include <cmath>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
#include "numerics/observers/observers.h"
#include "numerics/reference/fp_elements.h"
#include "numerics/reference/int_grid.h"
#include "quarry/status.h"

namespace quarry::numerics {
namespace {

// Running (static) or replaced (dynamic) range; a changed parameter count restarts it.
void Accumulate(bool dynamic, bool observed, Range& into, Range batch) {
  if (!dynamic && observed && into.min.defined() && into.min.numel() == batch.min.numel()) {
    into.min = at::minimum(into.min, batch.min);  // NaN-propagating, as torch.min(a, b)
    into.max = at::maximum(into.max, batch.max);
  } else {
    into = std::move(batch);
  }
}

}  // namespace

absl::StatusOr<at::Tensor> ObserverImpl::Prepare(const at::Tensor& x) {
  if (!x.defined()) return absl::InvalidArgumentError("observed tensor is undefined");
  if (!at::isFloatingType(x.scalar_type()) || x.scalar_type() == at::kDouble) {
    return absl::InvalidArgumentError(absl::StrCat(
        "observed tensor has dtype ", std::string(c10::toString(x.scalar_type())),
        "; expected float32, bfloat16 or float16"));
  }
  QUARRY_ASSIGN_OR_RETURN(layout_, MakeLayout(plan_, x.sizes()));
  return x.to(at::kCPU, at::kFloat).contiguous();
}

absl::Status ObserverImpl::NotObserved() const {
  return absl::FailedPreconditionError(absl::StrCat(
      "observer ", plan_.observer, " for dtype ", Name(plan_.spec.dtype),
      " has not observed any tensor"));
}

absl::Status RangeObserver::Observe(const at::Tensor& x) {
  return CatchExceptions("RangeObserver::Observe", [&]() -> absl::Status {
    if (x.defined() && x.numel() == 0) return absl::OkStatus();  // Quark ignores empty tensors
    QUARRY_ASSIGN_OR_RETURN(at::Tensor x32, Prepare(x));
    Accumulate(plan_.dynamic, observed_, range_, ComputeRange(layout_, x32));
    observed_ = true;
    return absl::OkStatus();
  });
}

absl::StatusOr<QuantParams> RangeObserver::Compute() const {
  if (!observed_) return NotObserved();
  return ParamsFromRange(plan_, range_.min, range_.max, layout_.param_shape);
}

void RangeObserver::Reset() {
  range_ = Range{};
  observed_ = false;
}

absl::Status PowOf2Observer::Observe(const at::Tensor& x) {
  return CatchExceptions("PowOf2Observer::Observe", [&]() -> absl::Status {
    if (x.defined() && x.numel() == 0) return absl::OkStatus();
    QUARRY_ASSIGN_OR_RETURN(at::Tensor x32, Prepare(x));
    Accumulate(plan_.dynamic, observed_, range_, ComputeRange(layout_, x32));
    observed_ = true;
    const QuantParams batch = ParamsFromRange(plan_, range_.min, range_.max, {range_.min.numel()});
    at::Tensor scale = batch.scale.contiguous();
    const at::Tensor zp = batch.zero_point.to(at::kFloat).contiguous();
    const int64_t np = scale.numel();
    if (min_mse_) {
      // Try 2^-(pos + i - 2), i = 0..4, with the zero points fixed; keep the smallest squared error
      // over this call's tensor (Quark sums over all channels at once). x / s and the clamp are
      // Quark's _fake_quantize_data; the sum is accumulated in double.
      const float* s = scale.data_ptr<float>();
      const float* z = zp.data_ptr<float>();
      const float* xs = x32.data_ptr<float>();
      const float qmin = static_cast<float>(plan_.qmin), qmax = static_cast<float>(plan_.qmax);
      std::vector<float> candidate(np), best(s, s + np);
      double best_error = std::numeric_limits<double>::infinity();
      for (int i = 0; i < 5; ++i) {
        for (int64_t p = 0; p < np; ++p) {
          candidate[p] = ref::Pow2(-(ref::Pof2Position(s[p]) + static_cast<float>(i) - 2.0f));
        }
        double error = 0.0;
        for (int64_t e = 0; e < x32.numel(); ++e) {
          const int64_t p = layout_.ParamIndex(e);
          float q = std::nearbyint(xs[e] / candidate[p]) + z[p];
          q = q < qmin ? qmin : (q > qmax ? qmax : q);
          const float d = (q - z[p]) * candidate[p] - xs[e];
          error += static_cast<double>(d) * static_cast<double>(d);
        }
        if (error < best_error) {
          best_error = error;
          best = candidate;
        }
      }
      scale = at::tensor(best, at::kFloat);
    }
    std::vector<float> record(scale.data_ptr<float>(), scale.data_ptr<float>() + np);
    record.insert(record.end(), zp.data_ptr<float>(), zp.data_ptr<float>() + np);
    records_.push_back(std::move(record));
    return absl::OkStatus();
  });
}

absl::StatusOr<QuantParams> PowOf2Observer::Compute() const {
  if (!observed_ || records_.empty()) return NotObserved();
  // Most frequent record; the first recorded wins ties (Python's Counter.most_common(1)).
  size_t best = 0;
  int best_count = 0;
  for (size_t i = 0; i < records_.size(); ++i) {
    int count = 0;
    for (const auto& r : records_) count += (r == records_[i]) ? 1 : 0;
    if (count > best_count) {
      best_count = count;
      best = i;
    }
  }
  const std::vector<float>& r = records_[best];
  const int64_t np = static_cast<int64_t>(r.size() / 2);
  QuantParams params;
  params.scale = at::tensor(std::vector<float>(r.begin(), r.begin() + np), at::kFloat)
                     .reshape(layout_.param_shape);
  params.zero_point = at::tensor(std::vector<float>(r.begin() + np, r.end()), at::kFloat)
                          .to(at::kInt)
                          .reshape(layout_.param_shape);
  return params;
}

void PowOf2Observer::Reset() {
  range_ = Range{};
  records_.clear();
  observed_ = false;
}

}  // namespace quarry::numerics
