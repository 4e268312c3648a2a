#include "quarry/spec_helpers.h"

#include "absl/strings/str_cat.h"
#include "quarry/status.h"

namespace quarry {

absl::StatusOr<std::optional<std::string>> PerTensorObserverFor(
    const std::optional<std::string>& m) {
  if (!m.has_value() || m->empty()) return std::optional<std::string>();
  // Quark's get_per_tensor_observer; "MSE" is upper-case only, as in Quark.
  if (*m == "min_max") return std::optional<std::string>("PerTensorMinMaxObserver");
  if (*m == "histogram") return std::optional<std::string>("PerTensorHistogramObserver");
  if (*m == "histogrampro") return std::optional<std::string>("PerTensorHistogramObserverPro");
  if (*m == "MSE") return std::optional<std::string>("PerTensorMSEObserver");
  if (*m == "percentile") return std::optional<std::string>("PerTensorPercentileObserver");
  return absl::InvalidArgumentError(absl::StrCat(
      "observer_method '", *m, "': expected min_max, histogram, histogrampro, MSE or percentile"));
}

absl::StatusOr<std::optional<ScaleType>> HelperScaleType(const std::optional<std::string>& s) {
  if (!s.has_value() || s->empty()) return std::optional<ScaleType>();
  if (*s == "float") return std::optional<ScaleType>(ScaleType::kFloat);
  if (*s == "power_of_2") return std::optional<ScaleType>(ScaleType::kPof2);
  // Later Quark versions also accept the storage precisions; accepting them costs nothing.
  if (*s == "float32") return std::optional<ScaleType>(ScaleType::kFloat32);
  if (*s == "float16") return std::optional<ScaleType>(ScaleType::kFloat16);
  if (*s == "bfloat16") return std::optional<ScaleType>(ScaleType::kBfloat16);
  return absl::InvalidArgumentError(absl::StrCat(
      "scale_type '", *s, "': expected float, power_of_2, float32, float16 or bfloat16"));
}

absl::StatusOr<std::optional<RoundType>> HelperRoundMethod(const std::optional<std::string>& s) {
  if (!s.has_value() || s->empty()) return std::optional<RoundType>();
  auto r = ParseRoundType(*s);
  if (!r) return absl::InvalidArgumentError(absl::StrCat(
      "round_method '", *s, "': expected round, floor or half_even"));
  return std::optional<RoundType>(*r);
}

absl::StatusOr<std::optional<ZeroPointType>> HelperZeroPointType(
    const std::optional<std::string>& s) {
  if (!s.has_value() || s->empty()) return std::optional<ZeroPointType>();
  auto z = ParseZeroPointType(*s);
  if (!z) return absl::InvalidArgumentError(absl::StrCat(
      "zero_point_type '", *s, "': expected int32 or float32"));
  return std::optional<ZeroPointType>(*z);
}

absl::StatusOr<QuantizationSpec> ToQuantizationSpec(const StageSpec& spec) {
  return std::visit(
      [](const auto& s) -> absl::StatusOr<QuantizationSpec> {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, QuantizationSpec>) {
          return s;
        } else {
          return s.ToQuantizationSpec();
        }
      },
      spec);
}

namespace {
absl::StatusOr<std::vector<QuantizationSpec>> TwoStages(const StageSpec& first,
                                                        const StageSpec& second,
                                                        bool second_is_scale_quant) {
  QUARRY_ASSIGN_OR_RETURN(QuantizationSpec a, ToQuantizationSpec(first));
  QUARRY_ASSIGN_OR_RETURN(QuantizationSpec b, ToQuantizationSpec(second));
  if (second_is_scale_quant) b.is_scale_quant = true;
  return std::vector<QuantizationSpec>{std::move(a), std::move(b)};
}
}  // namespace

absl::StatusOr<std::vector<QuantizationSpec>> TwoStageSpec::ToQuantizationSpec() const {
  return TwoStages(first_stage, second_stage, false);
}
absl::StatusOr<std::vector<QuantizationSpec>> ProgressiveSpec::ToQuantizationSpec() const {
  return TwoStages(first_stage, second_stage, false);
}
absl::StatusOr<std::vector<QuantizationSpec>> ScaleQuantSpec::ToQuantizationSpec() const {
  return TwoStages(first_stage, second_stage, true);
}

// ----- One ToQuantizationSpec() per helper (Quark 0.10's to_quantization_spec) -----

absl::StatusOr<QuantizationSpec> Uint4PerTensorSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kUint4;
  QUARRY_ASSIGN_OR_RETURN(s.observer_cls, PerTensorObserverFor(observer_method));
  s.symmetric = symmetric;
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  QUARRY_ASSIGN_OR_RETURN(s.round_method, HelperRoundMethod(round_method));
  s.qscheme = QSchemeType::kPerTensor;
  s.is_dynamic = is_dynamic;
  return s;
}

absl::StatusOr<QuantizationSpec> Uint4PerChannelSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kUint4;
  s.observer_cls = "PerChannelMinMaxObserver";
  s.symmetric = symmetric;
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  QUARRY_ASSIGN_OR_RETURN(s.round_method, HelperRoundMethod(round_method));
  s.qscheme = QSchemeType::kPerChannel;
  s.ch_axis = ch_axis;
  s.is_dynamic = is_dynamic;
  QUARRY_ASSIGN_OR_RETURN(s.zero_point_type, HelperZeroPointType(zero_point_type));
  return s;
}

absl::StatusOr<QuantizationSpec> Uint4PerGroupSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kUint4;
  s.observer_cls = "PerGroupMinMaxObserver";
  s.symmetric = symmetric;
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  QUARRY_ASSIGN_OR_RETURN(s.round_method, HelperRoundMethod(round_method));
  s.qscheme = QSchemeType::kPerGroup;
  s.ch_axis = ch_axis;
  s.is_dynamic = is_dynamic;
  s.group_size = group_size;
  return s;
}

absl::StatusOr<QuantizationSpec> Int3PerGroupSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kInt3;
  s.observer_cls = "PerGroupMinMaxObserver";
  s.symmetric = symmetric;
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  QUARRY_ASSIGN_OR_RETURN(s.round_method, HelperRoundMethod(round_method));
  s.qscheme = QSchemeType::kPerGroup;
  s.ch_axis = ch_axis;
  s.is_dynamic = is_dynamic;
  s.group_size = group_size;
  return s;
}

absl::StatusOr<QuantizationSpec> Int3PerChannelSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kInt3;
  s.observer_cls = "PerChannelMinMaxObserver";
  s.symmetric = symmetric;
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  QUARRY_ASSIGN_OR_RETURN(s.round_method, HelperRoundMethod(round_method));
  s.qscheme = QSchemeType::kPerChannel;
  s.ch_axis = ch_axis;
  s.is_dynamic = is_dynamic;
  return s;
}

absl::StatusOr<QuantizationSpec> Int2PerGroupSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kInt2;
  s.observer_cls = "PerGroupMinMaxObserver";
  s.symmetric = symmetric;
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  QUARRY_ASSIGN_OR_RETURN(s.round_method, HelperRoundMethod(round_method));
  s.qscheme = QSchemeType::kPerGroup;
  s.ch_axis = ch_axis;
  s.is_dynamic = is_dynamic;
  s.group_size = group_size;
  return s;
}

absl::StatusOr<QuantizationSpec> Int4PerTensorSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kInt4;
  QUARRY_ASSIGN_OR_RETURN(s.observer_cls, PerTensorObserverFor(observer_method));
  s.symmetric = symmetric;
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  QUARRY_ASSIGN_OR_RETURN(s.round_method, HelperRoundMethod(round_method));
  s.qscheme = QSchemeType::kPerTensor;
  s.is_dynamic = is_dynamic;
  return s;
}

absl::StatusOr<QuantizationSpec> Int4PerChannelSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kInt4;
  s.observer_cls = "PerChannelMinMaxObserver";
  s.symmetric = symmetric;
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  QUARRY_ASSIGN_OR_RETURN(s.round_method, HelperRoundMethod(round_method));
  s.qscheme = QSchemeType::kPerChannel;
  s.ch_axis = ch_axis;
  s.is_dynamic = is_dynamic;
  return s;
}

absl::StatusOr<QuantizationSpec> Int4PerGroupSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kInt4;
  s.observer_cls = "PerGroupMinMaxObserver";
  s.symmetric = symmetric;
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  QUARRY_ASSIGN_OR_RETURN(s.round_method, HelperRoundMethod(round_method));
  s.qscheme = QSchemeType::kPerGroup;
  s.ch_axis = ch_axis;
  s.is_dynamic = is_dynamic;
  s.group_size = group_size;
  return s;
}

absl::StatusOr<QuantizationSpec> Uint8PerTensorSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kUint8;
  QUARRY_ASSIGN_OR_RETURN(s.observer_cls, PerTensorObserverFor(observer_method));
  s.symmetric = symmetric;
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  QUARRY_ASSIGN_OR_RETURN(s.round_method, HelperRoundMethod(round_method));
  s.qscheme = QSchemeType::kPerTensor;
  s.is_dynamic = is_dynamic;
  return s;
}

absl::StatusOr<QuantizationSpec> Uint8PerChannelSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kUint8;
  s.observer_cls = "PerChannelMinMaxObserver";
  s.symmetric = symmetric;
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  QUARRY_ASSIGN_OR_RETURN(s.round_method, HelperRoundMethod(round_method));
  s.qscheme = QSchemeType::kPerChannel;
  s.ch_axis = ch_axis;
  s.is_dynamic = is_dynamic;
  return s;
}

absl::StatusOr<QuantizationSpec> Uint8PerGroupSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kUint8;
  s.observer_cls = "PerGroupMinMaxObserver";
  s.symmetric = symmetric;
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  QUARRY_ASSIGN_OR_RETURN(s.round_method, HelperRoundMethod(round_method));
  s.qscheme = QSchemeType::kPerGroup;
  s.ch_axis = ch_axis;
  s.is_dynamic = is_dynamic;
  s.group_size = group_size;
  return s;
}

absl::StatusOr<QuantizationSpec> Int8PerTensorSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kInt8;
  QUARRY_ASSIGN_OR_RETURN(s.observer_cls, PerTensorObserverFor(observer_method));
  s.symmetric = symmetric;
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  QUARRY_ASSIGN_OR_RETURN(s.round_method, HelperRoundMethod(round_method));
  s.qscheme = QSchemeType::kPerTensor;
  s.is_dynamic = is_dynamic;
  return s;
}

absl::StatusOr<QuantizationSpec> Int8PerChannelSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kInt8;
  s.observer_cls = "PerChannelMinMaxObserver";
  s.symmetric = symmetric;
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  QUARRY_ASSIGN_OR_RETURN(s.round_method, HelperRoundMethod(round_method));
  s.qscheme = QSchemeType::kPerChannel;
  s.ch_axis = ch_axis;
  s.is_dynamic = is_dynamic;
  return s;
}

absl::StatusOr<QuantizationSpec> Int8PerGroupSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kInt8;
  s.observer_cls = "PerGroupMinMaxObserver";
  s.symmetric = symmetric;
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  QUARRY_ASSIGN_OR_RETURN(s.round_method, HelperRoundMethod(round_method));
  s.qscheme = QSchemeType::kPerGroup;
  s.ch_axis = ch_axis;
  s.is_dynamic = is_dynamic;
  s.group_size = group_size;
  return s;
}

absl::StatusOr<QuantizationSpec> FP8E4M3PerTensorSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kFp8E4M3;
  QUARRY_ASSIGN_OR_RETURN(s.observer_cls, PerTensorObserverFor(observer_method));
  s.symmetric = true;  // hard-coded by Quark
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  s.round_method = RoundType::kHalfEven;  // hard-coded by Quark
  s.qscheme = QSchemeType::kPerTensor;
  s.is_dynamic = is_dynamic;
  return s;
}

absl::StatusOr<QuantizationSpec> FP8E4M3PerChannelSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kFp8E4M3;
  s.observer_cls = "PerChannelMinMaxObserver";
  s.symmetric = symmetric;
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  QUARRY_ASSIGN_OR_RETURN(s.round_method, HelperRoundMethod(round_method));
  s.qscheme = QSchemeType::kPerChannel;
  s.ch_axis = ch_axis;
  s.is_dynamic = is_dynamic;
  return s;
}

absl::StatusOr<QuantizationSpec> FP8E4M3PerGroupSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kFp8E4M3;
  s.observer_cls = "PerBlockMXObserver";
  s.scale_type = ScaleType::kFloat;  // hard-coded by Quark 0.10
  s.scale_format = scale_format;
  s.scale_calculation_mode = scale_calculation_mode;
  s.round_method = RoundType::kHalfEven;
  s.qscheme = QSchemeType::kPerGroup;
  s.ch_axis = ch_axis;
  s.is_dynamic = is_dynamic;
  s.group_size = group_size;
  return s;
}

absl::StatusOr<QuantizationSpec> FP8E5M2PerTensorSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kFp8E5M2;
  QUARRY_ASSIGN_OR_RETURN(s.observer_cls, PerTensorObserverFor(observer_method));
  s.symmetric = symmetric;
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  QUARRY_ASSIGN_OR_RETURN(s.round_method, HelperRoundMethod(round_method));
  s.qscheme = QSchemeType::kPerTensor;
  s.is_dynamic = is_dynamic;
  return s;
}

absl::StatusOr<QuantizationSpec> FP8E5M2PerChannelSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kFp8E5M2;
  s.observer_cls = "PerChannelMinMaxObserver";
  s.symmetric = symmetric;
  QUARRY_ASSIGN_OR_RETURN(s.scale_type, HelperScaleType(scale_type));
  QUARRY_ASSIGN_OR_RETURN(s.round_method, HelperRoundMethod(round_method));
  s.qscheme = QSchemeType::kPerChannel;
  s.ch_axis = ch_axis;
  s.is_dynamic = is_dynamic;
  return s;
}

absl::StatusOr<QuantizationSpec> FP8E5M2PerGroupSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kFp8E5M2;
  s.observer_cls = "PerBlockMXObserver";
  s.scale_type = ScaleType::kFloat;  // hard-coded by Quark 0.10
  s.scale_format = scale_format;
  s.scale_calculation_mode = scale_calculation_mode;
  s.round_method = RoundType::kHalfEven;
  s.qscheme = QSchemeType::kPerGroup;
  s.ch_axis = ch_axis;
  s.is_dynamic = is_dynamic;
  s.group_size = group_size;
  return s;
}

absl::StatusOr<QuantizationSpec> FP4PerGroupSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kFp4;
  s.observer_cls = "PerBlockMXObserver";
  s.scale_type = ScaleType::kFloat;  // hard-coded by Quark 0.10
  s.scale_format = scale_format;
  s.scale_calculation_mode = scale_calculation_mode;
  s.round_method = RoundType::kHalfEven;
  s.qscheme = QSchemeType::kPerGroup;
  s.ch_axis = ch_axis;
  s.is_dynamic = is_dynamic;
  s.group_size = group_size;
  return s;
}

absl::StatusOr<QuantizationSpec> FP6E2M3PerGroupSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kFp6E2M3;
  s.observer_cls = "PerBlockMXObserver";
  s.scale_type = ScaleType::kFloat;  // hard-coded by Quark 0.10
  s.scale_format = scale_format;
  s.scale_calculation_mode = scale_calculation_mode;
  s.round_method = RoundType::kHalfEven;
  s.qscheme = QSchemeType::kPerGroup;
  s.ch_axis = ch_axis;
  s.is_dynamic = is_dynamic;
  s.group_size = group_size;
  return s;
}

absl::StatusOr<QuantizationSpec> FP6E3M2PerGroupSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kFp6E3M2;
  s.observer_cls = "PerBlockMXObserver";
  s.scale_type = ScaleType::kFloat;  // hard-coded by Quark 0.10
  s.scale_format = scale_format;
  s.scale_calculation_mode = scale_calculation_mode;
  s.round_method = RoundType::kHalfEven;
  s.qscheme = QSchemeType::kPerGroup;
  s.ch_axis = ch_axis;
  s.is_dynamic = is_dynamic;
  s.group_size = group_size;
  return s;
}

absl::StatusOr<QuantizationSpec> Float16Spec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kFloat16;
  return s;
}

absl::StatusOr<QuantizationSpec> Bfloat16Spec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kBfloat16;
  return s;
}

absl::StatusOr<QuantizationSpec> OCP_MXFP8E4M3Spec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kFp8E4M3;
  s.observer_cls = "PerBlockMXObserver";
  s.scale_type = ScaleType::kFloat;
  s.round_method = RoundType::kHalfEven;
  s.scale_format = "e8m0";
  s.qscheme = QSchemeType::kPerGroup;
  s.group_size = 32;
  s.scale_calculation_mode = scale_calculation_mode;
  s.is_dynamic = is_dynamic;
  s.ch_axis = ch_axis;
  return s;
}

absl::StatusOr<QuantizationSpec> OCP_MXFP8E5M2Spec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kFp8E5M2;
  s.observer_cls = "PerBlockMXObserver";
  s.scale_type = ScaleType::kFloat;
  s.round_method = RoundType::kHalfEven;
  s.scale_format = "e8m0";
  s.qscheme = QSchemeType::kPerGroup;
  s.group_size = 32;
  s.scale_calculation_mode = scale_calculation_mode;
  s.is_dynamic = is_dynamic;
  s.ch_axis = ch_axis;
  return s;
}

absl::StatusOr<QuantizationSpec> OCP_MXFP6E3M2Spec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kFp6E3M2;
  s.observer_cls = "PerBlockMXObserver";
  s.scale_type = ScaleType::kFloat;
  s.round_method = RoundType::kHalfEven;
  s.scale_format = "e8m0";
  s.qscheme = QSchemeType::kPerGroup;
  s.group_size = 32;
  s.scale_calculation_mode = scale_calculation_mode;
  s.is_dynamic = is_dynamic;
  s.ch_axis = ch_axis;
  return s;
}

absl::StatusOr<QuantizationSpec> OCP_MXFP6E2M3Spec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kFp6E2M3;
  s.observer_cls = "PerBlockMXObserver";
  s.scale_type = ScaleType::kFloat;
  s.round_method = RoundType::kHalfEven;
  s.scale_format = "e8m0";
  s.qscheme = QSchemeType::kPerGroup;
  s.group_size = 32;
  s.scale_calculation_mode = scale_calculation_mode;
  s.is_dynamic = is_dynamic;
  s.ch_axis = ch_axis;
  return s;
}

absl::StatusOr<QuantizationSpec> OCP_MXFP4Spec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kFp4;
  s.observer_cls = "PerBlockMXObserver";
  s.scale_type = ScaleType::kFloat;
  s.round_method = RoundType::kHalfEven;
  s.scale_format = "e8m0";
  s.qscheme = QSchemeType::kPerGroup;
  s.group_size = 32;
  s.scale_calculation_mode = scale_calculation_mode;
  s.is_dynamic = is_dynamic;
  s.ch_axis = ch_axis;
  return s;
}

absl::StatusOr<QuantizationSpec> OCP_MXINT8Spec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kMx;
  s.mx_element_dtype = Dtype::kInt8;
  // Quark's OCP_MXINT8Spec ignores is_dynamic and sets no observer, qscheme or scale_format.
  s.scale_calculation_mode = scale_calculation_mode;
  s.ch_axis = ch_axis;
  s.group_size = 32;
  return s;
}

absl::StatusOr<QuantizationSpec> OCP_MXFP4DiffsSpec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kFp4;
  s.observer_cls = "PerBlockMXDiffsObserver";
  s.scale_type = ScaleType::kFloat;
  s.round_method = RoundType::kHalfEven;
  s.scale_format = "e8m0";
  s.qscheme = QSchemeType::kPerGroup;
  s.group_size = 32;
  s.scale_calculation_mode = scale_calculation_mode;
  s.is_dynamic = is_dynamic;
  s.ch_axis = ch_axis;
  return s;
}

absl::StatusOr<QuantizationSpec> MX6Spec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kMx6;
  s.ch_axis = ch_axis;
  s.group_size = block_size;
  s.scale_calculation_mode = scale_calculation_mode;
  s.is_dynamic = is_dynamic;
  return s;
}

absl::StatusOr<QuantizationSpec> MX9Spec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kMx9;
  s.ch_axis = ch_axis;
  s.group_size = block_size;
  s.scale_calculation_mode = scale_calculation_mode;
  s.is_dynamic = is_dynamic;
  return s;
}

absl::StatusOr<QuantizationSpec> BFP16Spec::ToQuantizationSpec() const {
  QuantizationSpec s;
  s.dtype = Dtype::kBfp16;
  s.ch_axis = ch_axis;
  s.group_size = 8;
  s.scale_calculation_mode = scale_calculation_mode;
  s.is_dynamic = is_dynamic;
  return s;
}
}  // namespace quarry
