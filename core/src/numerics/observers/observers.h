// The observer implementations behind quarry::Observer (quarry/quantize.h) and the statistics and
// parameter formulas they share. Each class mirrors a Quark observer; where Quark has a plain bug
// the class comment says what Quarry does instead. Observers are not thread-safe (one per tensor
// slot); the free functions are.
//
// Quark class name (observer_cls)        Quarry class
//   PerTensorMinMaxObserver               RangeObserver (per_tensor)
//   PerChannelMinMaxObserver              RangeObserver (per_channel)
//   PerGroupMinMaxObserver                RangeObserver (per_group)
//   PerBlockMXObserver                    RangeObserver (per_group; amax -> float32/e8m0/e4m3)
//   PerTensorPowOf2MinMaxObserver / MSE   PowOf2Observer (per_tensor)
//   PerChannelPowOf2MinMaxObserver / MSE  PowOf2Observer (per_channel)
//   PerTensorHistogramObserver            HistogramObserver (kRange)
//   PerTensorPercentileObserver           HistogramObserver (kPercentile)
//   PerTensorMSEObserver                  HistogramObserver (kMse)
//   PerBlockMXDiffsObserver               MxDiffsObserver
//   PerBlockBFPObserver                   Bfp16Observer (also the observer of dtype bfp16)
//   PlaceholderObserver                   PlaceholderObserver (casts), Mx6Mx9Observer (mx6/mx9)
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "numerics/plan.h"
#include "quarry/quantize.h"

namespace quarry::numerics {

// Per-parameter minimum and maximum of x (contiguous float32 CPU) under `layout`, propagating NaN
// as torch.aminmax does. Both float32 [layout.num_params()].
struct Range {
  at::Tensor min;
  at::Tensor max;
};
Range ComputeRange(const Layout& layout, const at::Tensor& x);
// Per-parameter max |x|; with nan_to_zero, NaN/Inf elements count as 0 (MX6/MX9/BFP16).
at::Tensor ComputeAbsMax(const Layout& layout, const at::Tensor& x, bool nan_to_zero);

// Quark's calculate_qparams from observed ranges (float32 [num_params] each):
//   int:   calculate_int_quant_params, or the power-of-two formula when plan.pof2;
//   float: amax / max_norm (0 -> eps), or the e4m3 two-level scale;
//   mx:    the E8M0 scale of plan.mode.
// Shapes follow `param_shape` (the contract layout). `first_level_max`, when set, divides amax by
// first_level_max * max_norm in one step (the fp8 scale stage of a ScaleQuantSpec).
QuantParams ParamsFromRange(const QuantPlan& plan, const at::Tensor& min, const at::Tensor& max,
                            at::IntArrayRef param_shape,
                            std::optional<float> first_level_max = std::nullopt);

// Base for observers that keep a Layout of the last observed tensor.
class ObserverImpl : public Observer {
 public:
  explicit ObserverImpl(QuantPlan plan) : plan_(std::move(plan)) {}
  bool has_observed() const override { return observed_; }
  const QuantPlan& plan() const { return plan_; }

 protected:
  // Converts x to a contiguous float32 CPU tensor and checks it against the plan.
  absl::StatusOr<at::Tensor> Prepare(const at::Tensor& x);
  absl::Status NotObserved() const;
  QuantPlan plan_;
  Layout layout_;
  bool observed_ = false;
};

// min/max observers (static: running range across Observe() calls, reset when the parameter count
// changes; dynamic: the last call). Quark's PerGroupMinMaxObserver overwrites even when static; a
// running range is the same for a weight observed once and right for anything observed more.
class RangeObserver final : public ObserverImpl {
 public:
  using ObserverImpl::ObserverImpl;
  absl::Status Observe(const at::Tensor& x) override;
  absl::StatusOr<QuantParams> Compute() const override;
  void Reset() override;
  const Range& range() const { return range_; }

 private:
  Range range_;
};

// Power-of-two scale observers. Like Quark, every Observe() computes the parameters of the running
// range (MinMSE: refined on that call's tensor by trying 2^-(pos-2) .. 2^-(pos+2)) and records them;
// Compute() returns the most frequent record (first recorded wins ties).
class PowOf2Observer final : public ObserverImpl {
 public:
  PowOf2Observer(QuantPlan plan, bool min_mse) : ObserverImpl(std::move(plan)), min_mse_(min_mse) {}
  absl::Status Observe(const at::Tensor& x) override;
  absl::StatusOr<QuantParams> Compute() const override;
  void Reset() override;

 private:
  bool min_mse_;
  Range range_;
  std::vector<std::vector<float>> records_;  // scales then zero points
};

// Histogram observers (per_tensor): a running histogram of the observed values (2048 bins; the
// percentile observer 4200 bins without zeros). Symmetric (or None) histograms |x| over [0, max].
// Deviations from Quark, all bugs:
// - kPercentile with symmetric=False: Quark searches the wrong tails (min = x_min, max near the low
//   percentile). Quarry takes min = left edge of the bin holding the (100-p)/2 percentile and
//   max = right edge of the bin holding the 100-(100-p)/2 percentile.
// - kRange (PerTensorHistogramObserver): Quark never sets min/max and returns scale 1.0; Quarry uses
//   the histogram's range.
// - Growing the histogram across batches keeps the bins aligned (Quark re-bins with a shifted
//   arange and adds the old counts at index 0, misaligning downward growth).
// - NaN/Inf values are left out of the histogram (torch.histc rejects a non-finite range).
class HistogramObserver final : public ObserverImpl {
 public:
  enum class Kind { kRange, kPercentile, kMse };
  HistogramObserver(QuantPlan plan, Kind kind);
  absl::Status Observe(const at::Tensor& x) override;
  absl::StatusOr<QuantParams> Compute() const override;
  void Reset() override;
  // The (min, max) range the observer would quantize to (for tests).
  std::pair<float, float> SelectedRange() const;

  static constexpr double kPercentile = 99.99999999;

 private:
  Kind kind_;
  int64_t bins_;
  bool skip_zeros_;
  bool symmetric_histogram_;
  at::Tensor hist_;   // float32 [bins]
  at::Tensor edges_;  // float32 [bins + 1]
};

// PerBlockMXDiffsObserver: block amax as PerBlockMXObserver, then per block the better (smaller
// squared error on the last observed tensor) of 2^(ceil(log2 amax) - emax) and half of it.
class MxDiffsObserver final : public ObserverImpl {
 public:
  using ObserverImpl::ObserverImpl;
  absl::Status Observe(const at::Tensor& x) override;
  absl::StatusOr<QuantParams> Compute() const override;
  void Reset() override;

 private:
  at::Tensor amax_;
  at::Tensor last_x_;
};

// MX6 / MX9 block exponents: amax of each block with NaN/Inf as 0 (static: running max); the
// parameter is 2^t_exponent(amax).
class Mx6Mx9Observer final : public ObserverImpl {
 public:
  using ObserverImpl::ObserverImpl;
  absl::Status Observe(const at::Tensor& x) override;
  absl::StatusOr<QuantParams> Compute() const override;
  void Reset() override;

 private:
  at::Tensor amax_;
};

// BFP16 (Quark's PerBlockBFPObserver and fake_quantize_bfp16): block amax with NaN/Inf as 0
// (static: running max), doubled for blocks whose elements would leave [-128, 127] at
// 2^(floor(log2 amax) - 6); the parameter is that power of two.
class Bfp16Observer final : public ObserverImpl {
 public:
  using ObserverImpl::ObserverImpl;
  absl::Status Observe(const at::Tensor& x) override;
  absl::StatusOr<QuantParams> Compute() const override;
  void Reset() override;

 private:
  at::Tensor amax_;
};

// Casts: no parameters.
class PlaceholderObserver final : public ObserverImpl {
 public:
  using ObserverImpl::ObserverImpl;
  absl::Status Observe(const at::Tensor& x) override;
  absl::StatusOr<QuantParams> Compute() const override;
  void Reset() override { observed_ = false; }
};

// The observer for a resolved plan.
absl::StatusOr<std::unique_ptr<Observer>> MakeObserver(const QuantPlan& plan);

}  // namespace quarry::numerics
