// SmoothQuant (Quark's SmoothQuantConfig; Xiao et al., mit-han-lab/smoothquant) as a pipeline
// algorithm. Per decoder layer: one capture forward gives each linear's per-channel running
// max|x| over every calibration token; per scaling_layers entry
//   s = (max|x|^alpha / max|W|^(1-alpha)).clamp(min=scale_clamp_min)
// with max|x| of the entry's layers[0] input (as Quark) and max|W| the per-input-column max over
// the entry's layers, clamped at 1e-5; all entries' scales are computed first, then folded (prev_op
// / s, layers * s), as Quark's apply_scale does. The reference code clamps s at 1e-5 instead of
// scale_clamp_min: tests pin both. Weights stay float here; the pipeline (or a following GPTQ)
// quantizes them.
#include <memory>

#include "absl/strings/str_format.h"
#include "algorithms/scaling/scaling_algorithm.h"
#include "quarry/status.h"

namespace quarry::algorithms {
namespace {

class SmoothQuant final : public scaling::ScalingAlgorithm {
 public:
  explicit SmoothQuant(const SmoothQuantConfig& c)
      : ScalingAlgorithm("smoothquant", c.scaling_layers, c.model_decoder_layers), c_(c) {}

  absl::Status Apply(LayerContext& ctx, std::set<std::string>* /*done*/) override {
    QUARRY_ASSIGN_OR_RETURN(std::vector<scaling::ScaleTarget> targets, Targets(ctx));
    if (targets.empty()) return absl::OkStatus();
    QUARRY_ASSIGN_OR_RETURN(scaling::LayerInputs in, scaling::CaptureLayerInputs(ctx, false));
    std::vector<at::Tensor> scales;
    std::vector<double> values;
    std::vector<std::string> choices;
    for (const scaling::ScaleTarget& t : targets) {
      std::vector<at::Tensor> weights;
      for (const model::QLinear* l : t.layers) weights.push_back(l->float_weight);
      scales.push_back(scaling::SmoothQuantScales(in.For(t.layers[0]).max_abs, weights, c_.alpha,
                                                  c_.scale_clamp_min));
      values.push_back(c_.alpha);
      choices.push_back(absl::StrFormat("alpha %g", c_.alpha));
    }
    const std::vector<std::optional<double>> none(targets.size());
    QUARRY_RETURN_IF_ERROR(FoldAll(ctx, targets, scales, values, choices, none, none));
    if (ctx.progress) ctx.progress("scales folded", 1.0);
    return absl::OkStatus();
  }

 private:
  SmoothQuantConfig c_;
};

}  // namespace

std::unique_ptr<LayerAlgorithm> MakeSmoothQuant(const SmoothQuantConfig& c) {
  return std::make_unique<SmoothQuant>(c);
}

}  // namespace quarry::algorithms
