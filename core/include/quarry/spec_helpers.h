// Quark's DataTypeSpec helpers (Int4PerGroupSpec, OCP_MXFP4Spec, ...) and the two-stage specs.
// Each helper holds the arguments a user passes (with the seed's defaults; std::nullopt = None) and
// ToQuantizationSpec() produces the QuantizationSpec Quark 0.10 produces: arguments pass through
// unchanged, None stays None (Quark's helpers fill in nothing the user left out), and only the
// values Quark hard-codes (observer class, qscheme, MX group size 32, ...) are added.
// Plain value types; thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"
#include "quarry/quant_config.h"

namespace quarry {

struct Uint4PerTensorSpec {
  static constexpr absl::string_view kName = "Uint4PerTensorSpec";
  std::optional<std::string> observer_method;
  std::optional<bool> symmetric;
  std::optional<std::string> scale_type;
  std::optional<std::string> round_method;
  std::optional<bool> is_dynamic;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const Uint4PerTensorSpec&) const = default;
};
struct Uint4PerChannelSpec {
  static constexpr absl::string_view kName = "Uint4PerChannelSpec";
  std::optional<bool> symmetric;
  std::optional<std::string> scale_type;
  std::optional<std::string> round_method;
  std::optional<int> ch_axis;
  std::optional<bool> is_dynamic;
  std::optional<std::string> zero_point_type = "int32";
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const Uint4PerChannelSpec&) const = default;
};
struct Uint4PerGroupSpec {
  static constexpr absl::string_view kName = "Uint4PerGroupSpec";
  std::optional<bool> symmetric = false;
  std::optional<int> ch_axis;
  std::optional<bool> is_dynamic;
  std::optional<std::string> scale_type;
  std::optional<std::string> round_method = "half_even";
  std::optional<int> group_size;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const Uint4PerGroupSpec&) const = default;
};
struct Int3PerGroupSpec {
  static constexpr absl::string_view kName = "Int3PerGroupSpec";
  std::optional<bool> symmetric;
  std::optional<std::string> scale_type;
  std::optional<std::string> round_method;
  std::optional<int> ch_axis;
  std::optional<bool> is_dynamic;
  std::optional<int> group_size;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const Int3PerGroupSpec&) const = default;
};
struct Int3PerChannelSpec {
  static constexpr absl::string_view kName = "Int3PerChannelSpec";
  std::optional<bool> symmetric;
  std::optional<std::string> scale_type;
  std::optional<std::string> round_method;
  std::optional<int> ch_axis;
  std::optional<bool> is_dynamic;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const Int3PerChannelSpec&) const = default;
};
struct Int2PerGroupSpec {
  static constexpr absl::string_view kName = "Int2PerGroupSpec";
  std::optional<bool> symmetric;
  std::optional<std::string> scale_type;
  std::optional<std::string> round_method;
  std::optional<int> ch_axis;
  std::optional<bool> is_dynamic;
  std::optional<int> group_size;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const Int2PerGroupSpec&) const = default;
};
struct Int4PerTensorSpec {
  static constexpr absl::string_view kName = "Int4PerTensorSpec";
  std::optional<std::string> observer_method;
  std::optional<bool> symmetric;
  std::optional<std::string> scale_type;
  std::optional<std::string> round_method;
  std::optional<bool> is_dynamic;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const Int4PerTensorSpec&) const = default;
};
struct Int4PerChannelSpec {
  static constexpr absl::string_view kName = "Int4PerChannelSpec";
  std::optional<bool> symmetric;
  std::optional<std::string> scale_type;
  std::optional<std::string> round_method;
  std::optional<int> ch_axis;
  std::optional<bool> is_dynamic;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const Int4PerChannelSpec&) const = default;
};
struct Int4PerGroupSpec {
  static constexpr absl::string_view kName = "Int4PerGroupSpec";
  std::optional<bool> symmetric = true;
  std::optional<int> ch_axis;
  std::optional<bool> is_dynamic;
  std::optional<std::string> scale_type;
  std::optional<std::string> round_method = "half_even";
  std::optional<int> group_size;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const Int4PerGroupSpec&) const = default;
};
struct Uint8PerTensorSpec {
  static constexpr absl::string_view kName = "Uint8PerTensorSpec";
  std::optional<std::string> observer_method;
  std::optional<bool> symmetric;
  std::optional<std::string> scale_type;
  std::optional<std::string> round_method;
  std::optional<bool> is_dynamic;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const Uint8PerTensorSpec&) const = default;
};
struct Uint8PerChannelSpec {
  static constexpr absl::string_view kName = "Uint8PerChannelSpec";
  std::optional<bool> symmetric;
  std::optional<std::string> scale_type;
  std::optional<std::string> round_method;
  std::optional<int> ch_axis;
  std::optional<bool> is_dynamic;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const Uint8PerChannelSpec&) const = default;
};
struct Uint8PerGroupSpec {
  static constexpr absl::string_view kName = "Uint8PerGroupSpec";
  std::optional<bool> symmetric;
  std::optional<std::string> scale_type;
  std::optional<std::string> round_method;
  std::optional<int> ch_axis;
  std::optional<bool> is_dynamic;
  std::optional<int> group_size;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const Uint8PerGroupSpec&) const = default;
};
struct Int8PerTensorSpec {
  static constexpr absl::string_view kName = "Int8PerTensorSpec";
  std::optional<std::string> observer_method;
  std::optional<bool> symmetric;
  std::optional<std::string> scale_type;
  std::optional<std::string> round_method;
  std::optional<bool> is_dynamic;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const Int8PerTensorSpec&) const = default;
};
struct Int8PerChannelSpec {
  static constexpr absl::string_view kName = "Int8PerChannelSpec";
  std::optional<bool> symmetric;
  std::optional<std::string> scale_type;
  std::optional<std::string> round_method;
  std::optional<int> ch_axis;
  std::optional<bool> is_dynamic;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const Int8PerChannelSpec&) const = default;
};
struct Int8PerGroupSpec {
  static constexpr absl::string_view kName = "Int8PerGroupSpec";
  std::optional<bool> symmetric;
  std::optional<std::string> scale_type;
  std::optional<std::string> round_method;
  std::optional<int> ch_axis;
  std::optional<bool> is_dynamic;
  std::optional<int> group_size;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const Int8PerGroupSpec&) const = default;
};
struct FP8E4M3PerTensorSpec {
  static constexpr absl::string_view kName = "FP8E4M3PerTensorSpec";
  std::optional<std::string> observer_method;
  std::optional<std::string> scale_type;
  std::optional<bool> is_dynamic;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const FP8E4M3PerTensorSpec&) const = default;
};
struct FP8E4M3PerChannelSpec {
  static constexpr absl::string_view kName = "FP8E4M3PerChannelSpec";
  std::optional<bool> symmetric;
  std::optional<std::string> scale_type;
  std::optional<std::string> round_method;
  std::optional<int> ch_axis;
  std::optional<bool> is_dynamic;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const FP8E4M3PerChannelSpec&) const = default;
};
struct FP8E4M3PerGroupSpec {
  static constexpr absl::string_view kName = "FP8E4M3PerGroupSpec";
  std::optional<std::string> scale_format = "float32";
  std::optional<std::string> scale_calculation_mode;
  std::optional<int> ch_axis = -1;
  std::optional<bool> is_dynamic;
  std::optional<int> group_size;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const FP8E4M3PerGroupSpec&) const = default;
};
struct FP8E5M2PerTensorSpec {
  static constexpr absl::string_view kName = "FP8E5M2PerTensorSpec";
  std::optional<std::string> observer_method;
  std::optional<bool> symmetric;
  std::optional<std::string> scale_type;
  std::optional<std::string> round_method;
  std::optional<bool> is_dynamic;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const FP8E5M2PerTensorSpec&) const = default;
};
struct FP8E5M2PerChannelSpec {
  static constexpr absl::string_view kName = "FP8E5M2PerChannelSpec";
  std::optional<bool> symmetric;
  std::optional<std::string> scale_type;
  std::optional<std::string> round_method;
  std::optional<int> ch_axis;
  std::optional<bool> is_dynamic;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const FP8E5M2PerChannelSpec&) const = default;
};
struct FP8E5M2PerGroupSpec {
  static constexpr absl::string_view kName = "FP8E5M2PerGroupSpec";
  std::optional<std::string> scale_format = "float32";
  std::optional<std::string> scale_calculation_mode;
  std::optional<int> ch_axis = -1;
  std::optional<bool> is_dynamic;
  std::optional<int> group_size;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const FP8E5M2PerGroupSpec&) const = default;
};
struct FP4PerGroupSpec {
  static constexpr absl::string_view kName = "FP4PerGroupSpec";
  std::optional<std::string> scale_format = "float32";
  std::optional<std::string> scale_calculation_mode;
  std::optional<int> ch_axis = -1;
  std::optional<bool> is_dynamic;
  std::optional<int> group_size;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const FP4PerGroupSpec&) const = default;
};
struct FP6E2M3PerGroupSpec {
  static constexpr absl::string_view kName = "FP6E2M3PerGroupSpec";
  std::optional<std::string> scale_format = "float32";
  std::optional<std::string> scale_calculation_mode;
  std::optional<int> ch_axis = -1;
  std::optional<bool> is_dynamic;
  std::optional<int> group_size;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const FP6E2M3PerGroupSpec&) const = default;
};
struct FP6E3M2PerGroupSpec {
  static constexpr absl::string_view kName = "FP6E3M2PerGroupSpec";
  std::optional<std::string> scale_format = "float32";
  std::optional<std::string> scale_calculation_mode;
  std::optional<int> ch_axis = -1;
  std::optional<bool> is_dynamic;
  std::optional<int> group_size;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const FP6E3M2PerGroupSpec&) const = default;
};
struct Float16Spec {
  static constexpr absl::string_view kName = "Float16Spec";
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const Float16Spec&) const = default;
};
struct Bfloat16Spec {
  static constexpr absl::string_view kName = "Bfloat16Spec";
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const Bfloat16Spec&) const = default;
};
struct OCP_MXFP8E4M3Spec {
  static constexpr absl::string_view kName = "OCP_MXFP8E4M3Spec";
  std::optional<bool> is_dynamic = true;
  std::optional<int> ch_axis = -1;
  std::optional<std::string> scale_calculation_mode = "even";
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const OCP_MXFP8E4M3Spec&) const = default;
};
struct OCP_MXFP8E5M2Spec {
  static constexpr absl::string_view kName = "OCP_MXFP8E5M2Spec";
  std::optional<bool> is_dynamic = true;
  std::optional<int> ch_axis = -1;
  std::optional<std::string> scale_calculation_mode = "even";
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const OCP_MXFP8E5M2Spec&) const = default;
};
struct OCP_MXFP6E3M2Spec {
  static constexpr absl::string_view kName = "OCP_MXFP6E3M2Spec";
  std::optional<bool> is_dynamic = true;
  std::optional<int> ch_axis = -1;
  std::optional<std::string> scale_calculation_mode = "even";
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const OCP_MXFP6E3M2Spec&) const = default;
};
struct OCP_MXFP6E2M3Spec {
  static constexpr absl::string_view kName = "OCP_MXFP6E2M3Spec";
  std::optional<bool> is_dynamic = true;
  std::optional<int> ch_axis = -1;
  std::optional<std::string> scale_calculation_mode = "even";
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const OCP_MXFP6E2M3Spec&) const = default;
};
struct OCP_MXFP4Spec {
  static constexpr absl::string_view kName = "OCP_MXFP4Spec";
  std::optional<bool> is_dynamic = true;
  std::optional<int> ch_axis = -1;
  std::optional<std::string> scale_calculation_mode = "even";
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const OCP_MXFP4Spec&) const = default;
};
struct OCP_MXINT8Spec {
  static constexpr absl::string_view kName = "OCP_MXINT8Spec";
  std::optional<bool> is_dynamic = true;
  std::optional<int> ch_axis = -1;
  std::optional<std::string> scale_calculation_mode = "even";
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const OCP_MXINT8Spec&) const = default;
};
struct OCP_MXFP4DiffsSpec {
  static constexpr absl::string_view kName = "OCP_MXFP4DiffsSpec";
  std::optional<int> ch_axis;
  std::optional<bool> is_dynamic;
  std::optional<std::string> scale_calculation_mode = "even";
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const OCP_MXFP4DiffsSpec&) const = default;
};
struct MX6Spec {
  static constexpr absl::string_view kName = "MX6Spec";
  std::optional<int> ch_axis = -1;
  std::optional<int> block_size = 32;
  std::optional<std::string> scale_calculation_mode = "even";
  std::optional<bool> is_dynamic;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const MX6Spec&) const = default;
};
struct MX9Spec {
  static constexpr absl::string_view kName = "MX9Spec";
  std::optional<int> ch_axis = -1;
  std::optional<int> block_size = 32;
  std::optional<std::string> scale_calculation_mode = "even";
  std::optional<bool> is_dynamic;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const MX9Spec&) const = default;
};
struct BFP16Spec {
  static constexpr absl::string_view kName = "BFP16Spec";
  std::optional<int> ch_axis = -1;
  std::optional<std::string> scale_calculation_mode = "even";
  std::optional<bool> is_dynamic;
  absl::StatusOr<QuantizationSpec> ToQuantizationSpec() const;
  bool operator==(const BFP16Spec&) const = default;
};

// A helper or a plain QuantizationSpec: what a stage of a two-stage spec may be.
using StageSpec = std::variant<
    QuantizationSpec, Uint4PerTensorSpec, Uint4PerChannelSpec, Uint4PerGroupSpec,
    Int3PerGroupSpec, Int3PerChannelSpec, Int2PerGroupSpec, Int4PerTensorSpec,
    Int4PerChannelSpec, Int4PerGroupSpec, Uint8PerTensorSpec, Uint8PerChannelSpec,
    Uint8PerGroupSpec, Int8PerTensorSpec, Int8PerChannelSpec, Int8PerGroupSpec,
    FP8E4M3PerTensorSpec, FP8E4M3PerChannelSpec, FP8E4M3PerGroupSpec, FP8E5M2PerTensorSpec,
    FP8E5M2PerChannelSpec, FP8E5M2PerGroupSpec, FP4PerGroupSpec, FP6E2M3PerGroupSpec,
    FP6E3M2PerGroupSpec, Float16Spec, Bfloat16Spec, OCP_MXFP8E4M3Spec, OCP_MXFP8E5M2Spec,
    OCP_MXFP6E3M2Spec, OCP_MXFP6E2M3Spec, OCP_MXFP4Spec, OCP_MXINT8Spec, OCP_MXFP4DiffsSpec,
    MX6Spec, MX9Spec, BFP16Spec>;

absl::StatusOr<QuantizationSpec> ToQuantizationSpec(const StageSpec& spec);

// TwoStageSpec: first_stage then second_stage. ProgressiveSpec quantizes the tensor, then the
// result again; ScaleQuantSpec quantizes the tensor, then its scales (second stage gets
// is_scale_quant = true). ToQuantizationSpec() returns the list [first, second].
struct TwoStageSpec {
  StageSpec first_stage;
  StageSpec second_stage;
  absl::StatusOr<std::vector<QuantizationSpec>> ToQuantizationSpec() const;
  bool operator==(const TwoStageSpec&) const = default;
};
struct ProgressiveSpec {
  StageSpec first_stage;
  StageSpec second_stage;
  absl::StatusOr<std::vector<QuantizationSpec>> ToQuantizationSpec() const;
  bool operator==(const ProgressiveSpec&) const = default;
};
struct ScaleQuantSpec {
  StageSpec first_stage;
  StageSpec second_stage;
  absl::StatusOr<std::vector<QuantizationSpec>> ToQuantizationSpec() const;
  bool operator==(const ScaleQuantSpec&) const = default;
};

// Quark's get_per_tensor_observer / get_scale_type / get_round_method / get_zero_point_type:
// map a helper's string argument; an empty optional maps to None, an unknown string is an error
// naming the accepted values.
absl::StatusOr<std::optional<std::string>> PerTensorObserverFor(
    const std::optional<std::string>& observer_method);
absl::StatusOr<std::optional<ScaleType>> HelperScaleType(const std::optional<std::string>& s);
absl::StatusOr<std::optional<RoundType>> HelperRoundMethod(const std::optional<std::string>& s);
absl::StatusOr<std::optional<ZeroPointType>> HelperZeroPointType(
    const std::optional<std::string>& s);

}  // namespace quarry
