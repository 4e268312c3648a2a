// AWQ (Quark's AWQConfig; Lin et al., mit-han-lab/llm-awq) as a pipeline algorithm. Per decoder
// layer, with every calibration batch captured in one forward:
//   1. scale search per scaling_layers entry: ratios r = i/20, i = 0..19,
//        s = mean|x|^r clamped at 1e-4, normalised by sqrt(max(s) min(s)),
//        loss = MSE of module2inspect's output with the entry's weights Q(W s) / s
//      (Q = each layer's weight quantizer, parameters from W s); first strict minimum wins.
//      Every entry is searched on the unscaled layer, then all are folded (Quark's order).
//   2. clip search per quantized linear except q/k (Quark's avoid list: q_, k_, query, key,
//      Wqkv): on 512 sampled tokens of its input (divided by the folded scale), per output row and
//      group the shrink 1.00, 0.95, ..., 0.55 of max|w| with the least group-output MSE.
//   3. the scaled, clipped float weights are left to the pipeline (or a following GPTQ) to
//      quantize, which is Quark's step 4.
// Differences from Quark 0.10, on purpose: every calibration batch feeds the search (not only the
// first); module2inspect "self_attn" reads the layer's real inputs (Quark's attention case runs
// the layer on its own outputs: self.inps was already replaced by the layer outputs); for GQA
// v -> o the candidate is evaluated as folded (one scale per KV channel) and the clip search sees
// the input divided by that folded scale (Quark divides by the raw candidate).
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "algorithms/scaling/scaling_algorithm.h"
#include "quarry/status.h"

namespace quarry::algorithms {
namespace {

constexpr int kScaleGrid = 20;
constexpr int kClipGrid = 20;
constexpr double kClipMaxShrink = 0.5;
constexpr int64_t kClipTokens = 512;

// llm-awq's strided token sample over the concatenation of the batches, without concatenating.
at::Tensor SampleRows(const std::vector<at::Tensor>& batches, int64_t n_sample) {
  int64_t total = 0;
  for (const at::Tensor& b : batches) total += b.numel() / b.size(-1);
  const int64_t step = std::max<int64_t>(1, total / std::max<int64_t>(1, std::min(total, n_sample)));
  std::vector<at::Tensor> parts;
  int64_t offset = 0;
  for (const at::Tensor& b : batches) {
    at::Tensor flat = b.reshape({-1, b.size(-1)});
    const int64_t rows = flat.size(0);
    const int64_t first = (step - offset % step) % step;  // first global multiple of step here
    if (first < rows) parts.push_back(flat.slice(0, first, rows, step));
    offset += rows;
  }
  return at::cat(parts, 0);
}

bool AvoidClipping(const std::string& relative_name) {
  for (const char* p : {"q_", "k_", "query", "key", "Wqkv"})
    if (absl::StrContains(relative_name, p)) return true;
  return false;
}

class Awq final : public scaling::ScalingAlgorithm {
 public:
  explicit Awq(const AWQConfig& c) : ScalingAlgorithm("awq", c.scaling_layers, c.model_decoder_layers) {}

 protected:
  bool needs_equal_group_sizes() const override { return true; }

 public:
  absl::Status Apply(LayerContext& ctx, std::set<std::string>* /*done*/) override {
    QUARRY_ASSIGN_OR_RETURN(std::vector<scaling::ScaleTarget> targets, Targets(ctx));
    bool any_weight = false;
    for (const model::QLinear* l : ctx.layer->linears) any_weight |= l->weight_q != nullptr;
    if (targets.empty() && !any_weight) return absl::OkStatus();
    QUARRY_ASSIGN_OR_RETURN(scaling::LayerInputs in, scaling::CaptureLayerInputs(ctx, true));
    const int steps = static_cast<int>(targets.size()) + 1;

    // 1. scales
    std::vector<at::Tensor> scales;
    std::vector<double> values;
    std::vector<std::string> choices;
    std::vector<std::optional<double>> before, after;
    for (size_t i = 0; i < targets.size(); ++i) {
      QUARRY_RETURN_IF_ERROR(CheckCancelled(ctx));
      const scaling::ScaleTarget& t = targets[i];
      // A single linear inspected on its own input: the loss from its Gram matrix (same
      // value up to float rounding, a fraction of the work); otherwise the module's forward.
      const bool single_linear = t.layers.size() == 1 && t.inp == t.layers[0] &&
                                 ctx.layer->FindSuffix(t.module2inspect) == t.layers[0];
      std::vector<at::Tensor> ref;
      at::Tensor gram;
      int64_t tokens = 0;
      if (single_linear) {
        gram = scaling::GramMatrix(in.For(t.inp).x, &tokens);
      } else {
        QUARRY_ASSIGN_OR_RETURN(ref, scaling::ModuleOutputs(ctx, in, t));
      }
      auto loss = [&](const at::Tensor& s) -> absl::StatusOr<double> {
        const at::Tensor se = scaling::EffectiveScale(t, ctx.model->config(), s);
        scaling::WeightRestorer guard(t.layers);
        for (model::QLinear* l : t.layers) {
          if (!l->weight_q) continue;
          QUARRY_ASSIGN_OR_RETURN(at::Tensor q, scaling::SpecFakeQuantizer(l->weight_q->stages())(
                                                    l->float_weight * se.unsqueeze(0)));
          l->weight = q / se.unsqueeze(0);
        }
        if (single_linear)
          return scaling::GramLoss(t.layers[0]->weight - t.layers[0]->float_weight, gram, tokens);
        return scaling::ModuleLoss(ctx, in, t, ref, 2.0);
      };
      QUARRY_ASSIGN_OR_RETURN(scaling::GridSearchResult r,
                              scaling::SearchRatioGrid(in.For(t.inp).mean_abs(), kScaleGrid, loss));
      scales.push_back(r.best_scales);
      values.push_back(r.best_ratio);
      choices.push_back(absl::StrFormat("ratio %.2f", r.best_ratio));
      before.push_back(r.losses[0]);
      after.push_back(r.best_loss);
      if (ctx.progress)
        ctx.progress(absl::StrCat("scaling_layers[", t.entry_index, "]"),
                     static_cast<double>(i + 1) / steps);
    }
    std::vector<at::Tensor> folded;
    QUARRY_RETURN_IF_ERROR(FoldAll(ctx, targets, scales, values, choices, before, after, &folded));

    // 2. clipping, on inputs divided by the scale folded into each linear
    QUARRY_RETURN_IF_ERROR(CheckCancelled(ctx));
    std::map<const model::QLinear*, at::Tensor> divisor;
    for (size_t i = 0; i < targets.size(); ++i)
      for (const model::QLinear* l : targets[i].layers) divisor[l] = folded[i];
    const std::string prefix = ctx.model->config().LayerPrefix(ctx.layer_index) + ".";
    for (model::QLinear* l : ctx.layer->linears) {
      if (!l->weight_q) continue;
      const std::string rel = l->name.substr(prefix.size());
      if (AvoidClipping(rel)) continue;
      at::Tensor x = SampleRows(in.For(l).x, kClipTokens);
      if (divisor.count(l)) x = x / divisor[l].unsqueeze(0);
      const std::optional<int> g = scaling::WeightGroupSize(ctx.plan ? ctx.plan->Find(l->name) : nullptr);
      const int64_t group = g ? *g : l->in_features();
      const int64_t row_block = l->out_features() % 256 == 0 ? 256 : 64;  // as llm-awq
      QUARRY_ASSIGN_OR_RETURN(scaling::ClipResult c,
                              scaling::SearchClip(l->float_weight, x, group,
                                                  scaling::SpecFakeQuantizer(l->weight_q->stages()),
                                                  kClipGrid, kClipMaxShrink, row_block));
      at::Tensor org_max = l->float_weight.reshape({l->out_features(), -1, group}).abs().amax(-1);
      const double mean_shrink = (c.max_val / org_max.clamp_min(1e-30)).mean().item<double>();
      if (!l->ref_weight.defined()) l->ref_weight = l->float_weight;  // the float model keeps it
      l->float_weight = scaling::ApplyClip(l->float_weight, c.max_val);
      l->float_changed = true;
      l->weight = l->float_weight;
      if (ctx.transformed) ctx.transformed->insert(l->name);
      report::AlgorithmRecord r;
      r.algorithm = "awq_clip";
      r.target = l->name;
      r.choice = absl::StrFormat("mean shrink %.3f", mean_shrink);
      r.value = mean_shrink;
      r.loss_before = c.err_unclipped;
      r.loss_after = c.err_clipped;
      Record(ctx, std::move(r));
    }
    if (ctx.progress) ctx.progress("clipping", 1.0);
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<LayerAlgorithm> MakeAwq(const AWQConfig& c) { return std::make_unique<Awq>(c); }

}  // namespace quarry::algorithms
