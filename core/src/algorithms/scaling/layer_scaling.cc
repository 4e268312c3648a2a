#include "algorithms/scaling/layer_scaling.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "quarry/status.h"

namespace quarry::algorithms::scaling {

absl::StatusOr<std::vector<ScalingLayer>> EntriesFor(const ModelConfig& config,
                                                     const std::vector<ScalingLayer>& given,
                                                     const std::string& decoder_layers,
                                                     const std::string& algo) {
  if (!decoder_layers.empty() && config.num_layers > 0 &&
      config.LayerPrefix(0) != decoder_layers + ".0")
    return absl::InvalidArgumentError(absl::StrCat(
        algo, ".model_decoder_layers: '", decoder_layers, "' does not name this ",
        config.model_type, " model's decoder layers (they are '",
        config.LayerPrefix(0).substr(0, config.LayerPrefix(0).size() - 2), "')"));
  if (!given.empty()) return given;
  return DefaultScalingLayers(config.family);
}

absl::StatusOr<std::vector<ScaleTarget>> ActiveTargets(LayerContext& ctx,
                                                       const std::vector<ScalingLayer>& entries,
                                                       const std::string& algo) {
  const std::string prefix = ctx.model->config().LayerPrefix(ctx.layer_index);
  QUARRY_ASSIGN_OR_RETURN(std::vector<ScaleTarget> all,
                          ResolveScalingLayers(*ctx.layer, ctx.model->config(), prefix, entries));
  std::vector<ScaleTarget> out;
  for (ScaleTarget& t : all) {
    if (!t.inp->weight_q && !t.inp->input_q) {
      if (ctx.log)
        ctx.log(LogSeverity::kInfo,
                absl::StrCat(algo, ": ", prefix, " scaling_layers[", t.entry_index, "] (",
                             EntryLabel(entries[t.entry_index]), ") skipped: ", t.inp->name,
                             " is not quantized (excluded or no spec)"));
      continue;
    }
    out.push_back(std::move(t));
  }
  return out;
}

at::Tensor LinearInputs::mean_abs() const {
  return (sum_abs / static_cast<double>(std::max<int64_t>(tokens, 1))).to(at::kFloat);
}

const at::Tensor& LayerInputs::ModuleInput(const ScaleTarget& t, size_t b) const {
  if (t.module2inspect.empty()) return layer_in[b];
  return For(t.inp).x[b];
}

absl::StatusOr<LayerInputs> CaptureLayerInputs(LayerContext& ctx, bool keep_tensors) {
  LayerInputs in;
  for (const auto& group : ctx.layer->input_groups) {
    if (group.empty()) continue;
    in.by_group[group.front()];
    for (const model::QLinear* l : group) in.leader[l] = group.front();
  }
  for (auto& [leader, li] : in.by_group) {
    model::QLinear* l = const_cast<model::QLinear*>(leader);
    LinearInputs* dst = &li;
    l->capture = [dst, keep_tensors](const at::Tensor& x) {
      at::Tensor flat = x.reshape({-1, x.size(-1)});
      at::Tensor m = std::get<0>(flat.abs().max(0));
      at::Tensor s = flat.abs().sum(0, /*keepdim=*/false, at::kDouble);
      dst->max_abs = dst->max_abs.defined() ? at::maximum(dst->max_abs, m) : m;
      dst->sum_abs = dst->sum_abs.defined() ? dst->sum_abs + s : s;
      dst->tokens += flat.size(0);
      if (keep_tensors) dst->x.push_back(x);
    };
  }
  // The float model's stream (Quark's and the reference implementations' order: they run on the
  // float model layer by layer); the quantized one only when the pipeline does not carry it.
  const bool use_float = ctx.calib_f != nullptr;
  pipeline::Batches probe = use_float ? *ctx.calib_f : *ctx.calib_q;
  in.layer_in = probe.hidden;
  for (const at::Tensor& h : probe.hidden)
    in.contexts.push_back(ctx.model->MakeContext(h.size(1), model::PassMode::kCapture));
  absl::Status st = pipeline::ForwardAll(*ctx.model, *ctx.layer, probe,
                                         use_float ? model::PassMode::kFloatCapture
                                                   : model::PassMode::kCapture);
  for (auto& [leader, li] : in.by_group) const_cast<model::QLinear*>(leader)->capture = nullptr;
  QUARRY_RETURN_IF_ERROR(st);
  for (auto& [leader, li] : in.by_group)
    if (li.tokens == 0)
      return absl::InternalError(absl::StrCat(leader->name, ": no calibration input captured"));
  return in;
}

absl::StatusOr<std::vector<at::Tensor>> ModuleOutputs(LayerContext& ctx, const LayerInputs& in,
                                                      const ScaleTarget& t) {
  std::vector<at::Tensor> out;
  for (size_t b = 0; b < in.layer_in.size(); ++b) {
    QUARRY_ASSIGN_OR_RETURN(
        at::Tensor y, CatchExceptions("module forward", [&]() -> absl::StatusOr<at::Tensor> {
          return ctx.layer->ForwardModule(t.module2inspect, in.ModuleInput(t, b), in.contexts[b]);
        }));
    out.push_back(y);
  }
  return out;
}

absl::StatusOr<double> ModuleLoss(LayerContext& ctx, const LayerInputs& in, const ScaleTarget& t,
                                  const std::vector<at::Tensor>& ref, double p) {
  double sum = 0;
  int64_t n = 0;
  for (size_t b = 0; b < in.layer_in.size(); ++b) {
    QUARRY_ASSIGN_OR_RETURN(
        at::Tensor y, CatchExceptions("module forward", [&]() -> absl::StatusOr<at::Tensor> {
          return ctx.layer->ForwardModule(t.module2inspect, in.ModuleInput(t, b), in.contexts[b]);
        }));
    at::Tensor d = (y - ref[b]).abs();
    if (p == 2) {
      d = d * d;
    } else if (p != 1) {
      d = d.pow(p);
    }
    sum += d.sum(at::kDouble).item<double>();
    n += d.numel();
  }
  return n > 0 ? sum / static_cast<double>(n) : 0.0;
}

FakeQuantizeFn SpecFakeQuantizer(const std::vector<QuantizationSpec>& stages) {
  return [stages](const at::Tensor& w) -> absl::StatusOr<at::Tensor> {
    QUARRY_ASSIGN_OR_RETURN(std::unique_ptr<TensorQuantizer> q, TensorQuantizer::Create(stages));
    if (!q) return w;
    if (!q->is_dynamic()) {
      QUARRY_RETURN_IF_ERROR(q->Observe(w));
      QUARRY_RETURN_IF_ERROR(q->Freeze());
    }
    return q->Apply(w);
  };
}

WeightRestorer::WeightRestorer(std::vector<model::QLinear*> linears) : linears_(std::move(linears)) {
  for (model::QLinear* l : linears_) weights_.push_back(l->weight);
}

WeightRestorer::~WeightRestorer() { Restore(); }

void WeightRestorer::Restore() {
  for (size_t i = 0; i < linears_.size(); ++i) {
    linears_[i]->weight = weights_[i];
    linears_[i]->forward_override = nullptr;
  }
}

std::string EntryLabel(const ScalingLayer& e) {
  return absl::StrCat(e.prev_op, " -> ", absl::StrJoin(e.layers, ","));
}

}  // namespace quarry::algorithms::scaling
