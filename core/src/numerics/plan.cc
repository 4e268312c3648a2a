#include "numerics/plan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "quarry/status.h"

namespace quarry::numerics {
namespace {

bool OneOf(absl::string_view name, std::initializer_list<absl::string_view> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

absl::Status CheckGroupSize(const QuantizationSpec& spec) {
  if (!spec.group_size.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("group_size is required for dtype ", Name(spec.dtype), " with ",
                     spec.qscheme ? Name(*spec.qscheme) : "block", " quantization"));
  }
  if (*spec.group_size <= 0 && *spec.group_size != -1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "group_size ", *spec.group_size, ": expected a positive size or -1 (whole axis)"));
  }
  return absl::OkStatus();
}

absl::Status CheckChAxis(const QuantizationSpec& spec, absl::string_view what) {
  if (!spec.ch_axis.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ch_axis is required for dtype ", Name(spec.dtype), " with ", what));
  }
  return absl::OkStatus();
}

absl::StatusOr<MxScaleMode> ParseMode(const std::optional<std::string>& mode) {
  if (!mode.has_value() || *mode == "even") return MxScaleMode::kEven;
  if (*mode == "floor") return MxScaleMode::kFloor;
  if (*mode == "ceil") return MxScaleMode::kCeil;
  return absl::InvalidArgumentError(
      absl::StrCat("scale_calculation_mode '", *mode, "': expected even, floor or ceil"));
}

// Observer classes whose numerics Quarry implements, by qscheme.
constexpr std::initializer_list<absl::string_view> kPerTensorImplemented = {
    "PerTensorMinMaxObserver",     "PerTensorPowOf2MinMaxObserver", "PerTensorPowOf2MinMSEObserver",
    "PerTensorHistogramObserver",  "PerTensorPercentileObserver",   "PerTensorMSEObserver"};
constexpr std::initializer_list<absl::string_view> kPerChannelImplemented = {
    "PerChannelMinMaxObserver", "PerChannelPowOf2MinMaxObserver", "PerChannelPowOf2MinMSEObserver"};

absl::Status CheckObserverMatchesScheme(const std::string& cls, QSchemeType qscheme) {
  bool ok = false;
  switch (qscheme) {
    case QSchemeType::kPerTensor: ok = IsPerTensorObserver(cls); break;
    case QSchemeType::kPerChannel: ok = IsPerChannelObserver(cls); break;
    case QSchemeType::kPerGroup: ok = IsPerGroupObserver(cls); break;
    case QSchemeType::kPerBlock: ok = false; break;
  }
  if (!ok) {
    const auto& known = KnownObserverClasses();
    if (std::find(known.begin(), known.end(), absl::string_view(cls)) == known.end()) {
      return absl::InvalidArgumentError(absl::StrCat("observer_cls '", cls, "' is not a known observer class"));
    }
    return absl::InvalidArgumentError(absl::StrCat("observer_cls ", cls, " cannot observe ",
                                                   Name(qscheme), " quantization"));
  }
  if (cls == "TQTObserver" || cls == "LSQObserver" || cls == "PerTensorHistogramObserverPro") {
    return absl::UnimplementedError(absl::StrCat(
        "observer_cls ", cls, " is not implemented by Quarry's numerics (QAT observers and "
        "torch's HistogramObserver search are out of scope)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<QuantPlan> PlanBlock(const QuantizationSpec& spec, QuantPlan plan) {
  QUARRY_RETURN_IF_ERROR(CheckChAxis(spec, "block quantization"));
  plan.qscheme = QSchemeType::kPerGroup;
  plan.ch_axis = *spec.ch_axis;
  const std::string cls = spec.observer_cls.value_or("");
  if (!cls.empty() && cls != "PlaceholderObserver" &&
      !(spec.dtype == Dtype::kBfp16 && cls == "PerBlockBFPObserver")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dtype ", Name(spec.dtype), " computes its block scales itself; observer_cls ", cls,
        " cannot be used (expected None or PlaceholderObserver)"));
  }
  switch (spec.dtype) {
    case Dtype::kMx: {
      if (!spec.mx_element_dtype.has_value()) {
        return absl::InvalidArgumentError("mx_element_dtype is required for dtype mx");
      }
      QUARRY_RETURN_IF_ERROR(CheckGroupSize(spec));
      plan.group_size = *spec.group_size;
      plan.family = Family::kMx;
      plan.element = *spec.mx_element_dtype;
      if (!MxElementParams(plan.element, &plan.mx_mbits, &plan.mx_emax)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "mx_element_dtype ", Name(plan.element),
            ": expected fp8_e4m3, fp8_e5m2, fp6_e3m2, fp6_e2m3, fp4 or int8"));
      }
      plan.format = FloatFormatOf(plan.element);
      plan.scale_format = ScaleFormat::kE8M0;
      QUARRY_ASSIGN_OR_RETURN(plan.mode, ParseMode(spec.scale_calculation_mode));
      plan.observer = "PerBlockMXObserver";
      return plan;
    }
    case Dtype::kMx6:
    case Dtype::kMx9: {
      QUARRY_RETURN_IF_ERROR(CheckGroupSize(spec));
      if (*spec.group_size <= 0 || *spec.group_size % 2 != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "dtype ", Name(spec.dtype), " shares micro-exponents between pairs of elements: "
            "group_size must be a positive even number, got ", *spec.group_size));
      }
      plan.group_size = *spec.group_size;
      plan.family = Family::kMx6Mx9;
      plan.element = spec.dtype;
      plan.quant_bit = spec.dtype == Dtype::kMx6 ? 5 : 8;
      plan.observer = "PlaceholderObserver";
      // Quark quantizes mx6/mx9 with a non-scaled fake quantizer: the shared exponents come from
      // each tensor it sees, whatever is_dynamic says (nothing is calibrated or stored).
      plan.dynamic = true;
      return plan;
    }
    case Dtype::kBfp16:
      // Quark's fake_quantize_bfp16 forces the block size to 8 whatever group_size says.
      plan.group_size = 8;
      plan.family = Family::kBfp16;
      plan.element = Dtype::kInt8;
      plan.observer = "PerBlockBFPObserver";
      plan.dynamic = true;  // as mx6/mx9: shared exponents from each tensor (Quark's behaviour)
      return plan;
    default:
      return absl::InternalError("PlanBlock called for a non-block dtype");
  }
}

absl::StatusOr<QuantPlan> PlanScaled(const QuantizationSpec& spec, QuantPlan plan) {
  if (!spec.qscheme.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("qscheme is required for dtype ", Name(spec.dtype)));
  }
  plan.qscheme = *spec.qscheme;
  if (plan.qscheme == QSchemeType::kPerBlock) {
    return absl::UnimplementedError(
        "qscheme per_block (2-D blocks of pre-quantized checkpoints) has no Quarry numerics");
  }
  if (plan.qscheme == QSchemeType::kPerChannel) {
    QUARRY_RETURN_IF_ERROR(CheckChAxis(spec, "per_channel quantization"));
    plan.ch_axis = *spec.ch_axis;
  } else if (plan.qscheme == QSchemeType::kPerGroup) {
    QUARRY_RETURN_IF_ERROR(CheckChAxis(spec, "per_group quantization"));
    QUARRY_RETURN_IF_ERROR(CheckGroupSize(spec));
    plan.ch_axis = *spec.ch_axis;
    plan.group_size = *spec.group_size;
  }
  if (spec.scale_type == ScaleType::kFloat16 || spec.scale_type == ScaleType::kBfloat16) {
    plan.scale_rounding = spec.scale_type;
    plan.exact_float16_min = spec.exact_float16_min && spec.scale_type == ScaleType::kFloat16;
  }

  const bool is_int = IsIntegerDtype(spec.dtype);
  const std::string natural = plan.qscheme == QSchemeType::kPerTensor    ? "PerTensorMinMaxObserver"
                              : plan.qscheme == QSchemeType::kPerChannel ? "PerChannelMinMaxObserver"
                              : is_int                                   ? "PerGroupMinMaxObserver"
                                                                         : "PerBlockMXObserver";
  plan.observer = spec.observer_cls.value_or(natural);
  if (plan.observer == "PlaceholderObserver") {
    return absl::InvalidArgumentError(absl::StrCat(
        "observer_cls PlaceholderObserver computes no scale; dtype ", Name(spec.dtype),
        " needs a scale observer"));
  }
  QUARRY_RETURN_IF_ERROR(CheckObserverMatchesScheme(plan.observer, plan.qscheme));

  if (is_int) {
    plan.family = Family::kInt;
    plan.element = spec.dtype;
    const auto range = IntegerRange(spec.dtype);
    plan.qmin = range->first;
    plan.qmax = range->second;
    plan.symmetric = spec.symmetric.value_or(false);
    plan.round = spec.round_method.value_or(RoundType::kHalfEven);
    plan.float_zero_point = spec.zero_point_type == ZeroPointType::kFloat32;
    const bool pof2_observer = OneOf(plan.observer, {"PerTensorPowOf2MinMaxObserver",
                                                     "PerTensorPowOf2MinMSEObserver",
                                                     "PerChannelPowOf2MinMaxObserver",
                                                     "PerChannelPowOf2MinMSEObserver"});
    plan.pof2 = pof2_observer || spec.scale_type == ScaleType::kPof2;
    if (plan.pof2 && plan.float_zero_point) {
      return absl::InvalidArgumentError(
          "power-of-two scales (scale_type pof2 / PowOf2 observers) need an int32 zero point");
    }
    if (IsPerGroupObserver(plan.observer) && plan.observer != "PerGroupMinMaxObserver") {
      return absl::InvalidArgumentError(absl::StrCat(
          "observer_cls ", plan.observer, " is for float element formats; dtype ",
          Name(spec.dtype), " uses PerGroupMinMaxObserver"));
    }
    if (plan.observer == "PerTensorMSEObserver" &&
        !OneOf(Name(spec.dtype), {"int4", "uint4", "int8", "uint8"})) {
      return absl::InvalidArgumentError(absl::StrCat(
          "PerTensorMSEObserver supports int4, uint4, int8, uint8, fp8_e4m3 and fp8_e5m2, not ",
          Name(spec.dtype)));
    }
    return plan;
  }

  // Float element formats.
  plan.element = spec.dtype;
  plan.format = FloatFormatOf(spec.dtype);
  if (spec.scale_type == ScaleType::kPof2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scale_type pof2 is defined for integer dtypes only, not ", Name(spec.dtype)));
  }
  if (OneOf(plan.observer, {"PerTensorPowOf2MinMaxObserver", "PerTensorPowOf2MinMSEObserver",
                            "PerChannelPowOf2MinMaxObserver", "PerChannelPowOf2MinMSEObserver",
                            "PerBlockBFPObserver"})) {
    return absl::InvalidArgumentError(absl::StrCat("observer_cls ", plan.observer,
                                                   " does not support dtype ", Name(spec.dtype)));
  }
  if (plan.observer == "PerTensorMSEObserver" && !plan.format->is_fp8) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PerTensorMSEObserver supports int4, uint4, int8, uint8, fp8_e4m3 and fp8_e5m2, not ",
        Name(spec.dtype)));
  }
  const std::string scale_format = spec.scale_format.value_or("float32");
  if (scale_format == "float32") {
    plan.family = Family::kFloat;
    plan.scale_format = ScaleFormat::kFloat32;
  } else if (scale_format == "e8m0" || scale_format == "e4m3") {
    if (plan.qscheme != QSchemeType::kPerGroup) {
      return absl::InvalidArgumentError(absl::StrCat(
          "scale_format ", scale_format, " is for per_group quantization, not ",
          Name(plan.qscheme)));
    }
    if (scale_format == "e8m0") {
      plan.family = Family::kMx;
      plan.scale_format = ScaleFormat::kE8M0;
      MxElementParams(plan.element, &plan.mx_mbits, &plan.mx_emax);
      QUARRY_ASSIGN_OR_RETURN(plan.mode, ParseMode(spec.scale_calculation_mode));
    } else {
      plan.family = Family::kFloat;
      plan.scale_format = ScaleFormat::kE4M3;
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "scale_format '", scale_format, "': expected float32, e8m0 or e4m3"));
  }
  if (plan.observer == "PerBlockMXDiffsObserver" && plan.family != Family::kMx) {
    return absl::InvalidArgumentError("PerBlockMXDiffsObserver needs scale_format e8m0");
  }
  return plan;
}

}  // namespace

absl::StatusOr<QuantPlan> MakePlan(const QuantizationSpec& spec) {
  QuantPlan plan;
  plan.spec = spec;
  plan.dynamic = spec.is_dynamic.value_or(false);
  if (IsCastDtype(spec.dtype)) {
    if (spec.observer_cls.has_value() && *spec.observer_cls != "PlaceholderObserver") {
      return absl::InvalidArgumentError(absl::StrCat(
          "dtype ", Name(spec.dtype), " is a plain cast; observer_cls must be None or "
          "PlaceholderObserver, got ", *spec.observer_cls));
    }
    plan.family = Family::kCast;
    plan.element = spec.dtype;
    plan.observer = "PlaceholderObserver";
    return plan;
  }
  if (IsBlockDtype(spec.dtype)) return PlanBlock(spec, std::move(plan));
  if (IsIntegerDtype(spec.dtype) || IsFloatElementDtype(spec.dtype)) {
    return PlanScaled(spec, std::move(plan));
  }
  return absl::InvalidArgumentError(absl::StrCat("dtype ", Name(spec.dtype), " is not quantizable"));
}

int64_t Layout::num_params() const {
  switch (qscheme) {
    case QSchemeType::kPerChannel: return channels;
    case QSchemeType::kPerGroup: return outer * groups * inner;
    default: return 1;
  }
}

absl::StatusOr<Layout> MakeLayout(const QuantPlan& plan, at::IntArrayRef sizes) {
  Layout layout;
  layout.qscheme = plan.qscheme;
  layout.x_shape = sizes.vec();
  const int64_t rank = static_cast<int64_t>(sizes.size());
  if (plan.qscheme == QSchemeType::kPerTensor) {
    layout.outer = 1;
    layout.channels = 1;
    layout.inner = 1;
    for (int64_t s : sizes) layout.inner *= s;
    return layout;
  }
  const int64_t axis = plan.ch_axis < 0 ? plan.ch_axis + rank : plan.ch_axis;
  if (rank == 0 || axis < 0 || axis >= rank) {
    return absl::InvalidArgumentError(absl::StrCat("ch_axis ", plan.ch_axis,
                                                   " is out of range for a tensor of rank ", rank));
  }
  layout.axis = static_cast<int>(axis);
  for (int64_t d = 0; d < axis; ++d) layout.outer *= sizes[d];
  layout.channels = sizes[axis];
  for (int64_t d = axis + 1; d < rank; ++d) layout.inner *= sizes[d];
  if (plan.qscheme == QSchemeType::kPerChannel) {
    layout.param_shape = {layout.channels};
    return layout;
  }
  layout.group = plan.group_size == -1 ? std::max<int64_t>(layout.channels, 1) : plan.group_size;
  layout.groups = (layout.channels + layout.group - 1) / layout.group;
  layout.param_shape = layout.x_shape;
  layout.param_shape[axis] = layout.groups;
  return layout;
}

at::Tensor ToRows(const at::Tensor& x, const Layout& l) {
  return x.reshape({l.outer, l.channels, l.inner})
      .permute({0, 2, 1})
      .contiguous()
      .reshape({l.outer * l.inner, l.channels});
}

at::Tensor FromRows(const at::Tensor& rows, const Layout& l) {
  return rows.reshape({l.outer, l.inner, l.channels})
      .permute({0, 2, 1})
      .contiguous()
      .reshape(l.x_shape);
}

at::Tensor ParamsToRows(const at::Tensor& params, const Layout& l) {
  return params.reshape({l.outer, l.groups, l.inner})
      .permute({0, 2, 1})
      .contiguous()
      .reshape({l.outer * l.inner, l.groups});
}

at::Tensor ParamsFromRows(const at::Tensor& rows, const Layout& l) {
  return rows.reshape({l.outer, l.inner, l.groups})
      .permute({0, 2, 1})
      .contiguous()
      .reshape(l.param_shape);
}

at::Tensor RoundScaleStorage(const QuantPlan& plan, const at::Tensor& scale) {
  if (!plan.scale_rounding.has_value()) return scale;
  const auto dtype = *plan.scale_rounding == ScaleType::kFloat16 ? at::kHalf : at::kBFloat16;
  return scale.to(dtype).to(at::kFloat);
}

}  // namespace quarry::numerics
