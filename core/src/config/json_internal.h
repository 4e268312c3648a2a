// Core-internal: the nlohmann::ordered_json form of configurations, shared by config_json.cc and
// the exporter (which embeds the config in config.json). Not part of the public API.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quarry/config_json.h"

namespace quarry::internal {

using Json = nlohmann::ordered_json;

Json SpecToJsonValue(const QuantizationSpec& spec);
Json TensorSpecsToJsonValue(const std::optional<TensorSpecs>& specs);
Json QuantizationConfigToJsonValue(const QuantizationConfig& config);
Json AlgoConfigToJsonValue(const AlgoConfig& algo);
Json ConfigToJsonValue(const Config& config);

// Parsing with path-named errors. `path` prefixes every message (e.g. "layer_quant_config[\"x\"]").
struct JsonContext {
  JsonReadOptions options;
  std::vector<std::string>* warnings = nullptr;
};
absl::StatusOr<QuantizationSpec> SpecFromJsonValue(const Json& j, const std::string& path,
                                                   JsonContext& ctx);
absl::StatusOr<Config> ConfigFromJsonValue(const Json& j, JsonContext& ctx);
absl::StatusOr<AlgoConfig> AlgoConfigFromJsonValue(const Json& j, const std::string& path,
                                                   JsonContext& ctx);

// Parses JSON text; errors name the source and the byte offset.
absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view source);
absl::StatusOr<Json> ReadJsonFile(const std::string& path);

}  // namespace quarry::internal
