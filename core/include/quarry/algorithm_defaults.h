// What the scaling algorithms of a config (AWQ, SmoothQuant, AutoSmoothQuant) will run with on a
// given model: their own scaling_layers, or the architecture's defaults when those are empty
// (Quark fills them from its per-model templates); shown by `quarry config explain`.
#pragma once

#include <string>
#include <vector>

#include "quarry/model_config.h"
#include "quarry/quant_config.h"

namespace quarry {

struct EffectiveScaling {
  int algo_index = 0;           // index in config.algo_config
  std::string algorithm;        // "awq", "smooth", "autosmoothquant"
  bool defaulted = false;       // scaling_layers came from the defaults
  std::string decoder_layers;   // model_decoder_layers as it will be used
  std::vector<ScalingLayer> scaling_layers;
};

// One element per scaling algorithm of config.algo_config, in order.
std::vector<EffectiveScaling> EffectiveScalingLayers(const Config& config, const ModelConfig& model);

// Text lines for the CLI ("algo_config[0] awq: 4 scaling_layers (defaults for llama) ...").
std::string DescribeScaling(const std::vector<EffectiveScaling>& scaling);

}  // namespace quarry
