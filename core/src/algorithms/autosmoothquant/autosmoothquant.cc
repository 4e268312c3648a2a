// AutoSmoothQuant (Quark's AutoSmoothQuantConfig) as a pipeline algorithm: SmoothQuant with the
// migration strength searched per scaling_layers entry. For ratios r = 0, 0.1, ..., 0.9:
//   s = max|x|^r clamped at 1e-4, normalised by sqrt(max(s) min(s))
//   loss = mean |module2inspect(float) - module2inspect(Q_in(x / s) . Q_w(W s))|^p
// (p = 2 for compute_scale_loss "MSE", 1 for "MAE", 0.5 for "RMSE" which Quark also accepts),
// where Q_w is each layer's own weight quantizer with parameters from W s and Q_in the input
// quantizer of the entry's last layer (as Quark, whose loop variable leaks) with parameters from
// x / s over every calibration token; the first minimum wins. Every entry is searched on the
// unscaled layer, then all are folded (Quark's order). For GQA v -> o the candidate is evaluated
// as it will be folded (one scale per KV channel); Quark evaluates the raw candidate.
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "algorithms/scaling/scaling_algorithm.h"
#include "quarry/status.h"

namespace quarry::algorithms {
namespace {

class AutoSmoothQuant final : public scaling::ScalingAlgorithm {
 public:
  explicit AutoSmoothQuant(const AutoSmoothQuantConfig& c)
      : ScalingAlgorithm("autosmoothquant", c.scaling_layers.value_or(std::vector<ScalingLayer>{}),
                         c.model_decoder_layers.value_or("")),
        loss_name_(c.compute_scale_loss.value_or("MSE")),
        p_(loss_name_ == "MAE" ? 1.0 : loss_name_ == "RMSE" ? 0.5 : 2.0) {}

  absl::Status Validate(model::CausalLM& model, const LayerPlan& plan) override {
    if (loss_name_ != "MSE" && loss_name_ != "MAE" && loss_name_ != "RMSE") {
      return absl::InvalidArgumentError(absl::StrCat(
          "autosmoothquant.compute_scale_loss: '", loss_name_, "' is not one of MSE, MAE, RMSE"));
    }
    return ScalingAlgorithm::Validate(model, plan);
  }

  absl::Status Apply(LayerContext& ctx, std::set<std::string>* /*done*/) override {
    QUARRY_ASSIGN_OR_RETURN(std::vector<scaling::ScaleTarget> targets, Targets(ctx));
    if (targets.empty()) return absl::OkStatus();
    QUARRY_ASSIGN_OR_RETURN(scaling::LayerInputs in, scaling::CaptureLayerInputs(ctx, true));
    std::vector<at::Tensor> scales;
    std::vector<double> values;
    std::vector<std::string> choices;
    std::vector<std::optional<double>> before, after;
    for (size_t i = 0; i < targets.size(); ++i) {
      QUARRY_RETURN_IF_ERROR(CheckCancelled(ctx));
      const scaling::ScaleTarget& t = targets[i];
      QUARRY_ASSIGN_OR_RETURN(std::vector<at::Tensor> ref, scaling::ModuleOutputs(ctx, in, t));
      auto loss = [&](const at::Tensor& s) { return Loss(ctx, in, t, ref, s); };
      QUARRY_ASSIGN_OR_RETURN(scaling::GridSearchResult r,
                              scaling::SearchRatioGrid(in.For(t.inp).max_abs, 10, loss));
      scales.push_back(r.best_scales);
      values.push_back(r.best_ratio);
      choices.push_back(absl::StrFormat("ratio %.1f", r.best_ratio));
      before.push_back(r.losses[0]);
      after.push_back(r.best_loss);
      if (ctx.progress)
        ctx.progress(absl::StrCat("scaling_layers[", t.entry_index, "]"),
                     static_cast<double>(i + 1) / targets.size());
    }
    return FoldAll(ctx, targets, scales, values, choices, before, after);
  }

 private:
  absl::StatusOr<double> Loss(LayerContext& ctx, const scaling::LayerInputs& in,
                              const scaling::ScaleTarget& t, const std::vector<at::Tensor>& ref,
                              const at::Tensor& s) {
    const at::Tensor se = scaling::EffectiveScale(t, ctx.model->config(), s);
    scaling::WeightRestorer guard(t.layers);
    std::shared_ptr<TensorQuantizer> xq;
    if (const TensorQuantizer* iq = t.layers.back()->input_q.get()) {
      QUARRY_ASSIGN_OR_RETURN(std::unique_ptr<TensorQuantizer> q, TensorQuantizer::Create(iq->stages()));
      xq = std::move(q);
      if (xq && !xq->is_dynamic()) {
        for (const at::Tensor& x : in.For(t.inp).x) QUARRY_RETURN_IF_ERROR(xq->Observe(x / se));
        QUARRY_RETURN_IF_ERROR(xq->Freeze());
      }
    }
    for (model::QLinear* l : t.layers) {
      at::Tensor w = l->float_weight * se.unsqueeze(0);
      if (l->weight_q) {
        QUARRY_ASSIGN_OR_RETURN(w, scaling::SpecFakeQuantizer(l->weight_q->stages())(w));
      }
      at::Tensor bias = l->float_bias;
      l->forward_override = [w, bias, xq, se](const at::Tensor& x) -> absl::StatusOr<at::Tensor> {
        at::Tensor xs = x / se;
        if (xq) {
          QUARRY_ASSIGN_OR_RETURN(xs, xq->Apply(xs));
        }
        return at::linear(xs, w, bias);
      };
    }
    return scaling::ModuleLoss(ctx, in, t, ref, p_);
  }

  std::string loss_name_;
  double p_;
};

}  // namespace

std::unique_ptr<LayerAlgorithm> MakeAutoSmoothQuant(const AutoSmoothQuantConfig& c) {
  return std::make_unique<AutoSmoothQuant>(c);
}

}  // namespace quarry::algorithms
