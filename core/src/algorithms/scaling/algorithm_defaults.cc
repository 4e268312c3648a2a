#include "quarry/algorithm_defaults.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "algorithms/scaling/scale_folding.h"

namespace quarry {

std::vector<EffectiveScaling> EffectiveScalingLayers(const Config& config, const ModelConfig& model) {
  std::vector<EffectiveScaling> out;
  if (!config.algo_config) return out;
  for (size_t i = 0; i < config.algo_config->size(); ++i) {
    const AlgoConfig& a = (*config.algo_config)[i];
    std::vector<ScalingLayer> given;
    std::string decoder;
    if (const auto* s = std::get_if<SmoothQuantConfig>(&a)) {
      given = s->scaling_layers;
      decoder = s->model_decoder_layers;
    } else if (const auto* as = std::get_if<AutoSmoothQuantConfig>(&a)) {
      given = as->scaling_layers.value_or(std::vector<ScalingLayer>{});
      decoder = as->model_decoder_layers.value_or("");
    } else if (const auto* w = std::get_if<AWQConfig>(&a)) {
      given = w->scaling_layers;
      decoder = w->model_decoder_layers;
    } else {
      continue;
    }
    EffectiveScaling e;
    e.algo_index = static_cast<int>(i);
    e.algorithm = std::string(AlgoName(a));
    e.defaulted = given.empty();
    e.scaling_layers = e.defaulted ? algorithms::scaling::DefaultScalingLayers(model.family) : given;
    e.decoder_layers = decoder.empty() ? algorithms::scaling::DefaultDecoderLayers(model.family) : decoder;
    out.push_back(std::move(e));
  }
  return out;
}

std::string DescribeScaling(const std::vector<EffectiveScaling>& scaling) {
  std::string out;
  for (const EffectiveScaling& e : scaling) {
    absl::StrAppend(&out, "algo_config[", e.algo_index, "] ", e.algorithm, ": ",
                    e.scaling_layers.size(), " scaling_layers",
                    e.defaulted ? " (the architecture's defaults: the config's list is empty)" : "",
                    ", in each of ", e.decoder_layers, ".N\n");
    for (size_t i = 0; i < e.scaling_layers.size(); ++i) {
      const ScalingLayer& s = e.scaling_layers[i];
      absl::StrAppend(&out, "  [", i, "] ", s.prev_op, " -> ", absl::StrJoin(s.layers, ", "),
                      "   inp ", s.inp, "   module2inspect ",
                      s.module2inspect ? (s.module2inspect->empty() ? std::string("\"\" (the layer)")
                                                                     : *s.module2inspect)
                                       : std::string("(layers[0])"),
                      "\n");
    }
  }
  return out;
}

}  // namespace quarry
