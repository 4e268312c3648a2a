// The one seam between the wire format (quarry.v1 protobuf) and core's configuration types.
// Proto -> core resolves helper specs to QuantizationSpecs (ToQuantizationSpec) and reports bad
// values with the path of the field; core -> proto writes plain QuantizationSpecs. Helper
// messages also convert to and from core's helper structs, so a helper survives a round trip.
// Stateless; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quarry/quant_config.h"
#include "quarry/spec_helpers.h"
#include "quarry/v1/config.pb.h"

namespace quarry::convert {

namespace v1 = ::quarry::v1;

v1::QuantizationSpec ToProto(const QuantizationSpec& spec);
v1::QuantizationConfig ToProto(const QuantizationConfig& config);
v1::AlgoConfig ToProto(const AlgoConfig& algo);
v1::Config ToProto(const Config& config);
// A stage spec (a helper or a QuantizationSpec) as the user wrote it.
void ToProto(const StageSpec& spec, v1::TensorQuantSpec* out);
void ToProto(const ProgressiveSpec& spec, v1::TensorQuantSpec* out);
void ToProto(const ScaleQuantSpec& spec, v1::TensorQuantSpec* out);

absl::StatusOr<QuantizationSpec> FromProto(const v1::QuantizationSpec& spec,
                                           const std::string& path = "spec");
// A helper or plain spec (not a two-stage spec) back into core's form.
absl::StatusOr<StageSpec> StageSpecFromProto(const v1::TensorQuantSpec& spec,
                                             const std::string& path = "spec");
// Any TensorQuantSpec resolved to QuantizationSpecs: one, or two for two-stage specs.
absl::StatusOr<std::vector<QuantizationSpec>> ResolveSpec(const v1::TensorQuantSpec& spec,
                                                          const std::string& path = "spec");
absl::StatusOr<QuantizationConfig> FromProto(const v1::QuantizationConfig& config,
                                             const std::string& path);
absl::StatusOr<AlgoConfig> FromProto(const v1::AlgoConfig& algo, const std::string& path);
absl::StatusOr<Config> FromProto(const v1::Config& config);

}  // namespace quarry::convert
