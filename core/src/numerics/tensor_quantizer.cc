// TensorQuantizer: the quantizer of one tensor slot, including two-stage specs.
//
// Stages are tensor stages (quantize the running tensor) or scale stages (is_scale_quant: quantize
// the scales of the tensor stage before them). Semantics:
// - ProgressiveSpec [A, B]: y = FQ_B(FQ_A(x)); B observes FQ_A(x) computed with A's parameters
//   of the moment (Quark recomputes parameters on every calibration forward).
// - ScaleQuantSpec [A, S]: A's scales s are replaced by FQ_S(s), then y = FQ_A(x) with them. S
//   observes s, except that an fp8 scale stage after an amax-based (PerBlockMXObserver) stage
//   observes the block amax and divides by first-stage max * fp8 max in one step, as Quark's
//   SequentialQuantize does (NVFP4: global scale = max(amax) / (6 * 448)).
// Quark represents a progressive chain in each stage's scaled domain (x / s1 -> codes -> ...);
// Quarry chains the fake-quantized (unscaled) tensors, which differs only in float rounding.
#include <memory>

#include "absl/strings/str_cat.h"
#include "numerics/fake_quantize.h"
#include "numerics/observers/observers.h"
#include "quarry/quantize.h"
#include "quarry/status.h"

namespace quarry {
namespace {

using numerics::Family;
using numerics::QuantPlan;

absl::StatusOr<std::vector<QuantPlan>> Plans(const std::vector<QuantizationSpec>& stages) {
  std::vector<QuantPlan> plans;
  for (size_t k = 0; k < stages.size(); ++k) {
    auto plan = numerics::MakePlan(stages[k]);
    if (!plan.ok()) return Annotate(plan.status(), absl::StrCat("stage ", k));
    plans.push_back(*std::move(plan));
  }
  return plans;
}

bool IsScaleStage(const std::vector<QuantPlan>& plans, size_t k) {
  return plans[k].spec.is_scale_quant;
}

// Whether scale stage k observes the preceding stage's block amax (see the file comment).
bool UsesAmax(const std::vector<QuantPlan>& plans, size_t k) {
  const QuantPlan& s = plans[k];
  const QuantPlan& prev = plans[k - 1];
  return s.family == Family::kFloat && s.format != nullptr && s.format->is_fp8 &&
         s.scale_format == numerics::ScaleFormat::kFloat32 && prev.format != nullptr &&
         prev.observer == "PerBlockMXObserver";
}

// Per-block amax of a RangeObserver's range, shaped like its parameters.
absl::StatusOr<at::Tensor> AmaxOf(const Observer& observer) {
  const auto* range = dynamic_cast<const numerics::RangeObserver*>(&observer);
  if (range == nullptr || !range->has_observed()) {
    return absl::FailedPreconditionError("the stage before an fp8 scale stage has no amax");
  }
  return at::maximum(range->range().min.abs(), range->range().max.abs());
}

// Parameters of stage k from its observer (scale stages on amax use the combined division).
absl::StatusOr<QuantParams> StageParams(const std::vector<QuantPlan>& plans,
                                        const std::vector<std::unique_ptr<Observer>>& observers,
                                        size_t k) {
  if (IsScaleStage(plans, k) && UsesAmax(plans, k)) {
    const auto* range = dynamic_cast<const numerics::RangeObserver*>(observers[k].get());
    if (range == nullptr || !range->has_observed()) {
      return absl::FailedPreconditionError(absl::StrCat("stage ", k, " has observed nothing"));
    }
    return numerics::ParamsFromRange(plans[k], range->range().min, range->range().max, {},
                                     plans[k - 1].format->max_norm);
  }
  return observers[k]->Compute();
}

// Feeds the scale stage k what it observes: the block amax or the preceding stage's scales.
absl::Status ObserveScaleStage(const std::vector<QuantPlan>& plans,
                               const std::vector<std::unique_ptr<Observer>>& observers, size_t k,
                               const QuantParams& previous) {
  if (UsesAmax(plans, k)) {
    QUARRY_ASSIGN_OR_RETURN(at::Tensor amax, AmaxOf(*observers[k - 1]));
    return observers[k]->Observe(amax);
  }
  return observers[k]->Observe(previous.scale.to(at::kFloat));
}

absl::StatusOr<QuantParams> QuantizeScales(const QuantPlan& scale_plan, QuantParams params,
                                           const QuantParams& scale_params) {
  QUARRY_ASSIGN_OR_RETURN(params.scale,
                          numerics::FakeQuantizeWithPlan(scale_plan, params.scale.to(at::kFloat),
                                                         scale_params));
  return params;
}

}  // namespace

TensorQuantizer::~TensorQuantizer() = default;

absl::StatusOr<std::unique_ptr<TensorQuantizer>> TensorQuantizer::Create(
    std::vector<QuantizationSpec> stages) {
  if (stages.empty()) return absl::InvalidArgumentError("a TensorQuantizer needs at least one spec");
  QUARRY_ASSIGN_OR_RETURN(const std::vector<QuantPlan> plans, Plans(stages));
  std::optional<bool> tensor_dynamic;
  for (size_t k = 0; k < plans.size(); ++k) {
    const QuantPlan& p = plans[k];
    if (plans.size() > 1) {
      if (p.family == Family::kMx6Mx9 || p.family == Family::kBfp16 ||
          (p.family == Family::kMx && p.spec.dtype == Dtype::kMx) || p.family == Family::kCast) {
        return absl::InvalidArgumentError(absl::StrCat(
            "stage ", k, ": dtype ", Name(p.spec.dtype), " cannot be part of a two-stage spec"));
      }
      if (p.float_zero_point) {
        return absl::InvalidArgumentError(absl::StrCat(
            "stage ", k, ": float32 zero points are not supported in two-stage specs"));
      }
    }
    if (p.spec.is_scale_quant) {
      if (k == 0 || plans[k - 1].spec.is_scale_quant) {
        return absl::InvalidArgumentError(absl::StrCat(
            "stage ", k, " quantizes scales (is_scale_quant) but does not follow a tensor stage"));
      }
      if (plans[k - 1].qscheme != QSchemeType::kPerGroup) {
        return absl::InvalidArgumentError(absl::StrCat(
            "stage ", k, " quantizes the scales of a ", Name(plans[k - 1].qscheme),
            " stage; only per_group scales can be quantized"));
      }
      if (p.family != Family::kInt && p.family != Family::kFloat) {
        return absl::InvalidArgumentError(absl::StrCat(
            "stage ", k, ": scales can be quantized to integer or fp8/fp6/fp4 formats, not ",
            Name(p.spec.dtype)));
      }
    } else {
      if (tensor_dynamic.has_value() && *tensor_dynamic != p.dynamic) {
        return absl::InvalidArgumentError(
            "the tensor stages of a two-stage spec must agree on is_dynamic");
      }
      tensor_dynamic = p.dynamic;
    }
  }
  std::unique_ptr<TensorQuantizer> q(new TensorQuantizer());
  q->stages_ = std::move(stages);
  for (const QuantPlan& p : plans) {
    QUARRY_ASSIGN_OR_RETURN(std::unique_ptr<Observer> observer, numerics::MakeObserver(p));
    q->observers_.push_back(std::move(observer));
  }
  return q;
}

bool TensorQuantizer::is_dynamic() const {
  for (const QuantizationSpec& s : stages_) {
    if (s.is_scale_quant) continue;
    // The plan knows the formats whose scales always come from the tensor (mx6, mx9, bfp16).
    auto plan = numerics::MakePlan(s);
    return plan.ok() ? plan->dynamic : s.is_dynamic.value_or(false);
  }
  return false;
}

absl::Status TensorQuantizer::Observe(const at::Tensor& x) {
  if (frozen_) return absl::FailedPreconditionError("TensorQuantizer::Observe after Freeze");
  QUARRY_ASSIGN_OR_RETURN(const std::vector<QuantPlan> plans, Plans(stages_));
  at::Tensor current = x;
  for (size_t k = 0; k < plans.size(); ++k) {
    if (IsScaleStage(plans, k)) continue;  // handled right after its tensor stage
    const bool has_scale_stage = k + 1 < plans.size() && IsScaleStage(plans, k + 1);
    const bool has_next_tensor_stage = [&] {
      for (size_t j = k + 1; j < plans.size(); ++j) {
        if (!IsScaleStage(plans, j)) return true;
      }
      return false;
    }();
    // A dynamic stage alone needs no statistics: Apply() computes them from each tensor.
    if (plans[k].dynamic && !has_scale_stage && !has_next_tensor_stage) continue;
    QUARRY_RETURN_IF_ERROR(Annotate(observers_[k]->Observe(current), absl::StrCat("stage ", k)));
    if (!has_scale_stage && !has_next_tensor_stage) continue;
    QUARRY_ASSIGN_OR_RETURN(QuantParams params, StageParams(plans, observers_, k));
    if (has_scale_stage) {
      QUARRY_RETURN_IF_ERROR(ObserveScaleStage(plans, observers_, k + 1, params));
    }
    if (has_next_tensor_stage) {
      if (has_scale_stage) {
        QUARRY_ASSIGN_OR_RETURN(const QuantParams sp, StageParams(plans, observers_, k + 1));
        QUARRY_ASSIGN_OR_RETURN(params, QuantizeScales(plans[k + 1], std::move(params), sp));
      }
      QUARRY_ASSIGN_OR_RETURN(current, numerics::FakeQuantizeWithPlan(plans[k], current, params));
    }
  }
  return absl::OkStatus();
}

absl::Status TensorQuantizer::Freeze() {
  if (frozen_) return absl::FailedPreconditionError("TensorQuantizer::Freeze called twice");
  QUARRY_ASSIGN_OR_RETURN(const std::vector<QuantPlan> plans, Plans(stages_));
  stage_params_.assign(plans.size(), QuantParams{});
  for (size_t k = 0; k < plans.size(); ++k) {
    if (plans[k].dynamic && !IsScaleStage(plans, k)) continue;
    if (plans[k].family == Family::kCast) continue;
    if (!observers_[k]->has_observed()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "stage ", k, " (", Name(plans[k].spec.dtype), ") is static but observed no tensor"));
    }
    QUARRY_ASSIGN_OR_RETURN(stage_params_[k], StageParams(plans, observers_, k));
  }
  for (size_t k = 0; k + 1 < plans.size(); ++k) {
    if (IsScaleStage(plans, k + 1) && !plans[k].dynamic) {
      QUARRY_ASSIGN_OR_RETURN(stage_params_[k],
                              QuantizeScales(plans[k + 1], stage_params_[k], stage_params_[k + 1]));
    }
  }
  if (!plans[0].dynamic) params_ = stage_params_[0];
  frozen_ = true;
  return absl::OkStatus();
}

absl::StatusOr<at::Tensor> TensorQuantizer::Apply(const at::Tensor& x) const {
  QUARRY_ASSIGN_OR_RETURN(const std::vector<QuantPlan> plans, Plans(stages_));
  at::Tensor current = x;
  for (size_t k = 0; k < plans.size(); ++k) {
    if (IsScaleStage(plans, k)) continue;
    const bool has_scale_stage = k + 1 < plans.size() && IsScaleStage(plans, k + 1);
    if (!plans[k].dynamic || plans[k].family == Family::kCast) {
      if (!frozen_ && plans[k].family != Family::kCast) {
        return absl::FailedPreconditionError("TensorQuantizer::Apply on a static spec before Freeze");
      }
      QUARRY_ASSIGN_OR_RETURN(current, numerics::FakeQuantizeWithPlan(
                                           plans[k], current, frozen_ ? stage_params_[k] : QuantParams{}));
      continue;
    }
    if (!has_scale_stage) {  // dynamic: the fused kernels where available
      QUARRY_ASSIGN_OR_RETURN(auto result, numerics::FakeQuantizeDynamicWithPlan(plans[k], current));
      current = std::move(result.first);
      continue;
    }
    // Dynamic tensor stage whose scales are quantized: parameters from this tensor, scales through
    // the scale stage (its frozen parameters when static, else computed now).
    std::vector<std::unique_ptr<Observer>> fresh(plans.size());
    QUARRY_ASSIGN_OR_RETURN(fresh[k], numerics::MakeObserver(plans[k]));
    QUARRY_RETURN_IF_ERROR(fresh[k]->Observe(current));
    QUARRY_ASSIGN_OR_RETURN(QuantParams params, fresh[k]->Compute());
    QuantParams scale_params;
    if (!plans[k + 1].dynamic) {
      if (!frozen_) {
        return absl::FailedPreconditionError(
            "TensorQuantizer::Apply before Freeze: the scale stage is static");
      }
      scale_params = stage_params_[k + 1];
    } else {
      QUARRY_ASSIGN_OR_RETURN(fresh[k + 1], numerics::MakeObserver(plans[k + 1]));
      QUARRY_RETURN_IF_ERROR(ObserveScaleStage(plans, fresh, k + 1, params));
      QUARRY_ASSIGN_OR_RETURN(scale_params, StageParams(plans, fresh, k + 1));
    }
    QUARRY_ASSIGN_OR_RETURN(params, QuantizeScales(plans[k + 1], std::move(params), scale_params));
    QUARRY_ASSIGN_OR_RETURN(current, numerics::FakeQuantizeWithPlan(plans[k], current, params));
  }
  return current;
}

absl::Status TensorQuantizer::SetFrozenParams(QuantParams params) {
  if (stages_.size() != 1)
    return absl::FailedPreconditionError("SetFrozenParams: only single-stage quantizers");
  if (is_dynamic()) return absl::FailedPreconditionError("SetFrozenParams: the spec is dynamic");
  if (!params.scale.defined()) return absl::InvalidArgumentError("SetFrozenParams: no scale");
  stage_params_.assign(1, params);
  params_ = std::move(params);
  frozen_ = true;
  return absl::OkStatus();
}

}  // namespace quarry
