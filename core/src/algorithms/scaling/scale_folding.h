// Core-internal: the part AWQ, SmoothQuant and AutoSmoothQuant share. Resolves Quark's
// `scaling_layers` entries against one decoder layer and folds a per-channel scale s into the
// model so the float function is unchanged: `prev_op` (an RMSNorm/LayerNorm weight and bias, or a
// previous linear's output rows) receives 1/s, the input columns of `layers` receive s.
// Not thread-safe: it edits the layer it is given.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/transformer.h"
#include "quarry/model_config.h"
#include "quarry/quant_config.h"

namespace quarry::algorithms::scaling {

// Quark's per-architecture defaults, used when a config's scaling_layers is empty (names relative
// to one decoder layer). Llama, Mistral, Qwen2 and Qwen3 share the Llama template; OPT has its own.
std::vector<ScalingLayer> DefaultScalingLayers(ModelFamily family);
// "model.layers" / "model.decoder.layers".
std::string DefaultDecoderLayers(ModelFamily family);

// What a scale is folded into.
struct ScaleTarget {
  int entry_index = 0;            // index in scaling_layers (for messages and the report)
  std::string prev_op;            // as written in the entry
  at::Tensor norm_weight;         // prev_op is a norm: its weight (edited in place) ...
  at::Tensor norm_bias;           // ... and bias (LayerNorm), or undefined
  std::string norm_weight_name, norm_bias_name;  // their full names
  model::DecoderLayer* layer = nullptr;          // the layer (its changed_params are updated)
  model::QLinear* prev_linear = nullptr;  // prev_op is a linear (v_proj, up_proj, fc1)
  std::vector<model::QLinear*> layers;    // receive s on their input columns
  model::QLinear* inp = nullptr;          // whose captured input is X
  // The module whose output the scale searches compare: "" = the whole decoder layer; absent in
  // the entry = layers[0].
  std::string module2inspect;
  // v_proj -> o_proj with grouped-query attention: s (one per o_proj input column, nh * d) is
  // folded as one scale per KV channel, the max over the query heads of its group.
  bool gqa_v_to_o = false;
};

// Checks every entry against the layer before any work; errors name the entry index and field
// (a missing module, a prev_op that cannot take a scale, layers of different input sizes).
// `layer_prefix` is "model.layers.3".
absl::StatusOr<std::vector<ScaleTarget>> ResolveScalingLayers(model::DecoderLayer& layer,
                                                              const ModelConfig& config,
                                                              const std::string& layer_prefix,
                                                              const std::vector<ScalingLayer>& entries);

// The scale actually folded for `s` ([in_features of the layers], positive): s itself, except for
// GQA v->o where each KV channel takes the max over its query heads (expanded back to nh * d).
at::Tensor EffectiveScale(const ScaleTarget& t, const ModelConfig& config, const at::Tensor& s);

// Folds s into the model: prev_op / s, layers' input columns * s, on both the float and the
// current weights. REQUIRES: s.numel() == layers' in_features, s > 0. Returns the effective scale.
absl::StatusOr<at::Tensor> FoldScale(const ScaleTarget& t, const ModelConfig& config,
                                     const at::Tensor& s);

}  // namespace quarry::algorithms::scaling
