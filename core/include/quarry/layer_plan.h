// Per-layer resolution: which QuantizationConfig applies to each module of a model.
//
// The rule (Quark 0.10's setup_config_per_layer + setup_kv_cache_config, which vLLM's loader
// follows too):
//  1. Only Linear (and Embedding, when matched by name or type) modules are considered.
//  2. exclude: the first pattern that matches the module name (Python fnmatch: '*' also matches
//     '.', '?' one character, [seq] / [!seq]; the whole name must match) excludes it. An excluded
//     name X also excludes X.* (its children).
//  3. Otherwise layer_quant_config: an exact key equal to the name wins; then the patterns in
//     order, first match wins.
//  4. Otherwise layer_type_quant_config by type ("Linear"), first match wins.
//  5. Otherwise global_quant_config (never for Embedding modules).
//  6. kv_cache_quant_config: every pattern is tried and the LAST match wins; it replaces the
//     config chosen above entirely, even for excluded modules, for which only its output_tensors
//     (the KV-cache quantizer) is kept.
//  No per-field inheritance: the matched config is used as is, so a None field means "not
//  quantized" even when global_quant_config sets it. The seed's docstring describes inheritance,
//  but Quark's code (and vLLM) do not inherit; we follow the code so that a config means the same
//  in Quark, vLLM and Quarry. ValidateConfig warns where this matters.
//  softmax_quant_spec applies to the attention softmax output of every decoder layer.
// Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "quarry/config_validate.h"
#include "quarry/quant_config.h"

namespace quarry {

// Python fnmatch.fnmatchcase semantics.
bool FnMatch(absl::string_view pattern, absl::string_view name);

struct ModuleInfo {
  std::string name;                  // e.g. "model.layers.0.self_attn.q_proj"
  std::string type;                  // "Linear" or "Embedding"
  std::vector<int64_t> weight_shape; // [out, in] for Linear; empty when unknown
  bool has_bias = false;
};

struct LayerPlanEntry {
  std::string name;
  std::string type;
  std::vector<int64_t> weight_shape;
  bool has_bias = false;
  bool excluded = false;
  // The rule that decided: exclude["lm_head"], layer_quant_config["*.down_proj"],
  // layer_type_quant_config["Linear"], global_quant_config, plus " + kv_cache_quant_config[...]".
  std::string matched_rule;
  bool kv_cache = false;             // an output (KV-cache) quantizer comes from kv_cache_quant_config
  QuantizationConfig config;         // the resolved specs (all None when excluded, except KV)
  bool quantized() const {
    return config.weight || config.input_tensors || config.output_tensors || config.bias;
  }
};

struct LayerPlan {
  std::vector<LayerPlanEntry> layers;
  std::optional<QuantizationSpec> softmax_quant_spec;
  std::vector<ConfigIssue> issues;   // shape checks (group sizes that do not divide, ...)
  const LayerPlanEntry* Find(absl::string_view name) const;
};

// Resolves `config` over `modules` (in model order). Shape-dependent checks are added to
// plan.issues; the status is an error only for errors in the config itself (CheckConfig).
absl::StatusOr<LayerPlan> ResolveLayerPlan(const Config& config,
                                           const std::vector<ModuleInfo>& modules);

// The modules of a Hugging Face model directory, from config.json and the safetensors headers
// only (no weights are read): every 2-D "<module>.weight" is a Linear, except embeddings
// (embed_tokens / embed_positions / wte / wpe / ...) which are Embedding. A tied lm_head (no
// lm_head.weight in the files, tie_word_embeddings) is listed as a Linear.
absl::StatusOr<std::vector<ModuleInfo>> ListModelModules(const std::string& model_dir);

// Renders a plan as a fixed-width table (name, rule, weight / input / output specs).
std::string PlanToTable(const LayerPlan& plan);
// The plan as JSON: [{"name", "type", "excluded", "matched_rule", "kv_cache", "config"}...].
std::string PlanToJson(const LayerPlan& plan, int indent = 2);
// A one-line summary of a spec list: "int4 per_group(g128, axis -1) sym static minmax".
std::string DescribeSpecs(const std::optional<TensorSpecs>& specs);

}  // namespace quarry
