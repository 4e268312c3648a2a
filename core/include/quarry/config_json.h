// Quark's JSON dict format for configurations, both directions: the format Quark's to_dict()
// writes into a model's config.json["quantization_config"] and that from_dict() reads.
//
// Writing: keys in Quark 0.10's to_dict order; enums by name ("fp8_e4m3", "per_group",
// "half_even"); None as null (never omitted); "quant_method": "quark". Fields Quark's to_dict
// drops but we must not lose are written only when they differ from their defaults, as extra keys
// that Quark's from_dict ignores: QuantizationSpec.zero_point_type (when float32) and qat_spec;
// Config.kv_cache_group, min_kv_scale and log_severity_level (when not [], 0.0, 1).
// Reading: a tensor entry may be a dict or a list of dicts; algo_config a list of dicts with
// "name" (or a single dict, as older Quark wrote it); legacy keys "dynamic" / "axis" are accepted;
// "export" (kv_cache_group, min_kv_scale) is read when present; unknown keys are errors naming
// their path unless allow_unknown_keys, which turns them into warnings.
// Output of ToJson is a fixed point: ToJson(FromJson(ToJson(c))) == ToJson(c), byte for byte.
// Stateless; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "quarry/quant_config.h"

namespace quarry {

struct JsonReadOptions {
  bool allow_unknown_keys = false;  // default: unknown keys are errors
};

absl::StatusOr<Config> ConfigFromJson(absl::string_view json, const JsonReadOptions& options = {},
                                      std::vector<std::string>* warnings = nullptr);
absl::StatusOr<Config> ConfigFromJsonFile(const std::string& path,
                                          const JsonReadOptions& options = {},
                                          std::vector<std::string>* warnings = nullptr);
// Reads a model directory's config.json["quantization_config"] (a model Quark exported).
absl::StatusOr<Config> ConfigFromModelDir(const std::string& dir,
                                          const JsonReadOptions& options = {},
                                          std::vector<std::string>* warnings = nullptr);
std::string ConfigToJson(const Config& config, int indent = 2);

absl::StatusOr<QuantizationSpec> SpecFromJson(absl::string_view json,
                                              const JsonReadOptions& options = {});
std::string SpecToJson(const QuantizationSpec& spec, int indent = 2);
// A tensor entry: a dict or a list of dicts.
absl::StatusOr<TensorSpecs> TensorSpecsFromJson(absl::string_view json,
                                                const JsonReadOptions& options = {});

absl::StatusOr<AlgoConfig> AlgoConfigFromJson(absl::string_view json,
                                              const JsonReadOptions& options = {});
std::string AlgoConfigToJson(const AlgoConfig& algo, int indent = 2);

// Quark's load_quant_algo_config_from_file: one JSON object with "name" in {rotation, quarot,
// smooth, awq, gptq, autosmoothquant, qronos}. num_attention_heads / num_key_value_heads keys
// are dropped, as in Quark.
absl::StatusOr<AlgoConfig> LoadQuantAlgoConfigFromFile(const std::string& path);
// Quark's load_pre_optimization_config_from_file: "name" in {rotation, quarot, smooth}.
absl::StatusOr<AlgoConfig> LoadPreOptimizationConfigFromFile(const std::string& path);

}  // namespace quarry
