#include "algorithms/scaling/scaling_algorithm.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "quarry/status.h"

namespace quarry::algorithms::scaling {

std::optional<int> WeightGroupSize(const LayerPlanEntry* e) {
  if (!e || !e->config.weight || e->config.weight->specs.empty()) return std::nullopt;
  const QuantizationSpec& s = e->config.weight->front();
  if (s.qscheme == QSchemeType::kPerGroup && s.group_size && *s.group_size > 0) return *s.group_size;
  return std::nullopt;
}

absl::Status ScalingAlgorithm::Validate(model::CausalLM& model, const LayerPlan& plan) {
  QUARRY_ASSIGN_OR_RETURN(entries_, EntriesFor(model.config(), given_, decoder_layers_, name_));
  if (model.num_layers() == 0) return absl::OkStatus();
  QUARRY_ASSIGN_OR_RETURN(std::unique_ptr<model::DecoderLayer> layer, model.LoadLayer(0));
  const std::string prefix = model.config().LayerPrefix(0);
  absl::StatusOr<std::vector<ScaleTarget>> targets =
      ResolveScalingLayers(*layer, model.config(), prefix, entries_);
  if (!targets.ok()) return Annotate(targets.status(), absl::StrCat(name_, " (checked on ", prefix, ")"));
  if (needs_equal_group_sizes()) {
    for (const ScaleTarget& t : *targets) {
      const std::optional<int> g0 = WeightGroupSize(plan.Find(t.layers[0]->name));
      for (size_t j = 1; j < t.layers.size(); ++j) {
        const std::optional<int> g = WeightGroupSize(plan.Find(t.layers[j]->name));
        if (g != g0)
          return absl::InvalidArgumentError(absl::StrFormat(
              "%s: scaling_layers[%d].layers[%d]: '%s' has weight group size %s, layers[0] '%s' "
              "has %s; the layers of one entry share one scale per input column, so give them "
              "the same group size (layer_quant_config) or split the entry",
              name_, t.entry_index, j, entries_[t.entry_index].layers[j],
              g ? std::to_string(*g) : "none", entries_[t.entry_index].layers[0],
              g0 ? std::to_string(*g0) : "none"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ScaleTarget>> ScalingAlgorithm::Targets(LayerContext& ctx) {
  if (entries_.empty()) {  // Validate was not called (direct use in tests)
    QUARRY_ASSIGN_OR_RETURN(entries_, EntriesFor(ctx.model->config(), given_, decoder_layers_, name_));
  }
  return ActiveTargets(ctx, entries_, name_);
}

void ScalingAlgorithm::Record(LayerContext& ctx, report::AlgorithmRecord r) const {
  r.algorithm = r.algorithm.empty() ? name_ : r.algorithm;
  r.layer = ctx.layer_index;
  if (ctx.records) ctx.records->push_back(std::move(r));
}

absl::Status ScalingAlgorithm::CheckCancelled(LayerContext& ctx) const {
  if (ctx.observer && ctx.observer->IsCancelled())
    return absl::CancelledError(absl::StrCat(name_, " cancelled in layer ", ctx.layer_index));
  return absl::OkStatus();
}

absl::Status ScalingAlgorithm::FoldAll(LayerContext& ctx, const std::vector<ScaleTarget>& targets,
                                       const std::vector<at::Tensor>& scales,
                                       const std::vector<double>& values,
                                       const std::vector<std::string>& choices,
                                       const std::vector<std::optional<double>>& loss_before,
                                       const std::vector<std::optional<double>>& loss_after,
                                       std::vector<at::Tensor>* folded) {
  for (size_t i = 0; i < targets.size(); ++i) {
    const ScaleTarget& t = targets[i];
    QUARRY_ASSIGN_OR_RETURN(at::Tensor eff, FoldScale(t, ctx.model->config(), scales[i]));
    if (folded) folded->push_back(eff);
    if (ctx.transformed) {
      for (const model::QLinear* l : t.layers) ctx.transformed->insert(l->name);
      if (t.prev_linear) ctx.transformed->insert(t.prev_linear->name);
    }
    report::AlgorithmRecord r;
    r.entry_index = t.entry_index;
    r.target = EntryLabel(entries_[t.entry_index]);
    r.choice = choices[i];
    r.value = values[i];
    r.loss_before = loss_before[i];
    r.loss_after = loss_after[i];
    r.scale_min = eff.min().item<double>();
    r.scale_max = eff.max().item<double>();
    if (ctx.log)
      ctx.log(LogSeverity::kDebug,
              absl::StrFormat("%s: layer %d %s: %s, scale in [%.4g, %.4g]%s", name(), ctx.layer_index,
                              r.target, r.choice, *r.scale_min, *r.scale_max,
                              r.loss_after ? absl::StrFormat(", loss %.4g -> %.4g",
                                                             r.loss_before.value_or(0), *r.loss_after)
                                           : std::string()));
    Record(ctx, std::move(r));
  }
  return absl::OkStatus();
}

}  // namespace quarry::algorithms::scaling
