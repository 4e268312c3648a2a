// observer_cls -> observer implementation, and the public entry points Observer::Create and
// ComputeQuantParams.
#include "absl/strings/str_cat.h"
#include "numerics/observers/observers.h"
#include "quarry/status.h"

namespace quarry {
namespace numerics {

absl::StatusOr<std::unique_ptr<Observer>> MakeObserver(const QuantPlan& plan) {
  switch (plan.family) {
    case Family::kCast: return std::make_unique<PlaceholderObserver>(plan);
    case Family::kMx6Mx9: return std::make_unique<Mx6Mx9Observer>(plan);
    case Family::kBfp16: return std::make_unique<Bfp16Observer>(plan);
    default: break;
  }
  const std::string& cls = plan.observer;
  if (cls == "PerTensorMinMaxObserver" || cls == "PerChannelMinMaxObserver" ||
      cls == "PerGroupMinMaxObserver" || cls == "PerBlockMXObserver") {
    return std::make_unique<RangeObserver>(plan);
  }
  if (cls == "PerTensorPowOf2MinMaxObserver" || cls == "PerChannelPowOf2MinMaxObserver") {
    return std::make_unique<PowOf2Observer>(plan, /*min_mse=*/false);
  }
  if (cls == "PerTensorPowOf2MinMSEObserver" || cls == "PerChannelPowOf2MinMSEObserver") {
    return std::make_unique<PowOf2Observer>(plan, /*min_mse=*/true);
  }
  if (cls == "PerTensorHistogramObserver") {
    return std::make_unique<HistogramObserver>(plan, HistogramObserver::Kind::kRange);
  }
  if (cls == "PerTensorPercentileObserver") {
    return std::make_unique<HistogramObserver>(plan, HistogramObserver::Kind::kPercentile);
  }
  if (cls == "PerTensorMSEObserver") {
    return std::make_unique<HistogramObserver>(plan, HistogramObserver::Kind::kMse);
  }
  if (cls == "PerBlockMXDiffsObserver") return std::make_unique<MxDiffsObserver>(plan);
  return absl::UnimplementedError(
      absl::StrCat("observer_cls ", cls, " for dtype ", Name(plan.spec.dtype),
                   " is not implemented by Quarry's numerics"));
}

}  // namespace numerics

absl::StatusOr<std::unique_ptr<Observer>> Observer::Create(const QuantizationSpec& spec) {
  QUARRY_ASSIGN_OR_RETURN(numerics::QuantPlan plan, numerics::MakePlan(spec));
  return numerics::MakeObserver(plan);
}

absl::StatusOr<QuantParams> ComputeQuantParams(const QuantizationSpec& spec, const at::Tensor& x) {
  QUARRY_ASSIGN_OR_RETURN(std::unique_ptr<Observer> observer, Observer::Create(spec));
  QUARRY_RETURN_IF_ERROR(observer->Observe(x));
  if (!observer->has_observed()) {
    return absl::InvalidArgumentError("cannot compute quantization parameters of an empty tensor");
  }
  return observer->Compute();
}

}  // namespace quarry
