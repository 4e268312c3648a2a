// Validation of quantization configurations, with messages that name the path of the bad field:
//   layer_quant_config["*.down_proj"].weight.group_size: must be > 0 (or -1) for per_group
// Spec rules are Quark 0.10's QuantizationSpec.__post_init__ plus checks for combinations that
// cannot work (an observer that cannot serve the dtype, a scale_format or mx_element_dtype that
// means nothing for the dtype, ...). Shape-dependent checks (a group size that does not divide
// the channel) run when a plan is resolved against a model (quarry/layer_plan.h).
// Stateless; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "quarry/quant_config.h"

namespace quarry {

struct ConfigIssue {
  enum class Severity { kWarning, kError };
  Severity severity = Severity::kError;
  std::string path;     // e.g. global_quant_config.weight.group_size
  std::string message;  // what is wrong and what to do
  bool is_error() const { return severity == Severity::kError; }
  std::string ToString() const { return path.empty() ? message : path + ": " + message; }
};

std::vector<ConfigIssue> ValidateSpec(const QuantizationSpec& spec, const std::string& path);
std::vector<ConfigIssue> ValidateTensorSpecs(const TensorSpecs& specs, const std::string& path);
std::vector<ConfigIssue> ValidateQuantizationConfig(const QuantizationConfig& config,
                                                    const std::string& path);
std::vector<ConfigIssue> ValidateAlgoConfig(const AlgoConfig& algo, const std::string& path);
std::vector<ConfigIssue> ValidateConfig(const Config& config);

// OK when `issues` has no error; otherwise InvalidArgument listing every error, one per line.
// Warnings are appended to `warnings` when given.
absl::Status IssuesToStatus(const std::vector<ConfigIssue>& issues,
                            std::vector<std::string>* warnings = nullptr);
// ValidateConfig + IssuesToStatus.
absl::Status CheckConfig(const Config& config, std::vector<std::string>* warnings = nullptr);

}  // namespace quarry
