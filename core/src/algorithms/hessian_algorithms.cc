// GPTQ and Qronos as pipeline algorithms. Per decoder layer, the target linears (those matching
// inside_layer_modules, or every quantized linear when it is empty) are processed group by group
// of linears that share an input (q/k/v, o, gate/up, down), in forward order: the statistics of a
// group are collected with the weights of the groups before it already quantized (sequential
// GPTQ inside the layer as well as across layers); activations are not quantized meanwhile, as in
// Quark. One Hessian per group (in x in float32) is resident at a time.
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "algorithms/algorithm.h"
#include "quarry/gptq.h"
#include "quarry/status.h"

namespace quarry::algorithms {
namespace {

bool Matches(const std::vector<std::string>& patterns, const std::string& name) {
  if (patterns.empty()) return true;
  for (const auto& p : patterns)
    if (FnMatch("*" + p, name)) return true;
  return false;
}

class HessianAlgorithm final : public LayerAlgorithm {
 public:
  explicit HessianAlgorithm(GPTQConfig c) : gptq_(std::move(c)), is_qronos_(false) {}
  explicit HessianAlgorithm(QronosConfig c) : qronos_(std::move(c)), is_qronos_(true) {}

  std::string name() const override { return is_qronos_ ? "qronos" : "gptq"; }
  bool needs_float_inputs() const override { return is_qronos_; }

  absl::Status Apply(LayerContext& ctx, std::set<std::string>* done) override {
    const auto& modules = is_qronos_ ? qronos_.inside_layer_modules : gptq_.inside_layer_modules;
    std::vector<std::vector<model::QLinear*>> groups;
    int total = 0;
    for (const auto& group : ctx.layer->input_groups) {
      std::vector<model::QLinear*> g;
      for (model::QLinear* l : group)
        if (l->weight_q && Matches(modules, l->name)) g.push_back(l);
      if (!g.empty()) {
        total += static_cast<int>(g.size());
        groups.push_back(std::move(g));
      }
    }
    int processed = 0;
    for (const auto& group : groups) {
      for (model::QLinear* l : group) {
        if (l->weight_q->stages().size() != 1)
          return absl::UnimplementedError(absl::StrCat(l->name, ": ", name(),
                                                       " with a two-stage weight spec"));
        if (l->weight_q->is_dynamic())
          return absl::InvalidArgumentError(absl::StrCat(l->name, ": ", name(),
                                                         " needs a static weight spec"));
      }
      const int64_t in = group.front()->in_features();
      // Statistics for this group's shared input.
      HessianAccumulator H(in, is_qronos_ ? 1.0 : 2.0);
      std::unique_ptr<CrossCovarianceAccumulator> G;
      model::QLinear* first = group.front();
      if (!is_qronos_) {
        absl::Status st = absl::OkStatus();
        first->capture = [&](const at::Tensor& x) {
          if (st.ok()) st = H.Add(x);
        };
        pipeline::Batches probe = *ctx.calib_q;
        absl::Status fwd = pipeline::ForwardAll(*ctx.model, *ctx.layer, probe, model::PassMode::kCapture);
        first->capture = nullptr;
        QUARRY_RETURN_IF_ERROR(fwd);
        QUARRY_RETURN_IF_ERROR(st);
      } else {
        if (ctx.calib_f == nullptr) return absl::InternalError("Qronos needs the float stream");
        G = std::make_unique<CrossCovarianceAccumulator>(in);
        // Batch by batch: the quantized stream gives x~ (and H), the float stream x (and G).
        for (size_t b = 0; b < ctx.calib_q->hidden.size(); ++b) {
          at::Tensor xq;
          absl::Status st = absl::OkStatus();
          first->capture = [&](const at::Tensor& x) {
            xq = x;
            if (st.ok()) st = H.Add(x);
          };
          pipeline::Batches one;
          one.ids = {ctx.calib_q->ids[b]};
          one.hidden = {ctx.calib_q->hidden[b]};
          absl::Status fwd = pipeline::ForwardAll(*ctx.model, *ctx.layer, one, model::PassMode::kCapture);
          first->capture = nullptr;
          QUARRY_RETURN_IF_ERROR(fwd);
          QUARRY_RETURN_IF_ERROR(st);
          // The float model's input of the same tokens: float weights, float stream.
          at::Tensor xf;
          one.hidden = {ctx.calib_f->hidden[b]};
          first->capture = [&](const at::Tensor& x) { xf = x; };
          fwd = pipeline::ForwardAll(*ctx.model, *ctx.layer, one, model::PassMode::kFloatCapture);
          first->capture = nullptr;
          QUARRY_RETURN_IF_ERROR(fwd);
          if (!xf.defined() || !xq.defined()) return absl::InternalError("Qronos: input not captured");
          QUARRY_RETURN_IF_ERROR(G->Add(xf, xq));
        }
      }
      at::Tensor Hm = H.H();
      for (model::QLinear* l : group) {
        if (ctx.observer && ctx.observer->IsCancelled()) return absl::CancelledError("cancelled");
        const QuantizationSpec& spec = l->weight_q->stages().front();
        absl::StatusOr<WeightQuantResult> r =
            is_qronos_ ? QronosQuantizeWeight(l->float_weight, Hm, G->G(), spec, qronos_)
                       : GptqQuantizeWeight(l->float_weight, Hm, spec, gptq_);
        if (!r.ok()) return Annotate(r.status(), l->name);
        if (!r->params)
          return absl::InvalidArgumentError(absl::StrCat(
              l->name, ": desc_act without static_groups gives per-group scales in permuted "
                       "order, which the export format cannot express; set static_groups=true "
                       "(or use `quarry tensor ", name(), "` to study that variant)"));
        l->weight = r->weight;
        l->quant_input = r->weight;
        QUARRY_RETURN_IF_ERROR(l->weight_q->SetFrozenParams(*r->params));
        done->insert(l->name);
        ++processed;
        if (r->damp_retries > 0 && ctx.log)
          ctx.log(LogSeverity::kWarning,
                  absl::StrFormat("%s: Cholesky failed; dampening raised to %.3g after %d retries",
                                  l->name, r->damp, r->damp_retries));
        if (ctx.log)
          ctx.log(LogSeverity::kDebug, absl::StrFormat("%s: %s %.2f s (%d tokens)", l->name, name(),
                                                       r->quant_seconds, H.tokens()));
        if (ctx.progress) ctx.progress(l->name, static_cast<double>(processed) / total);
      }
    }
    return absl::OkStatus();
  }

 private:
  GPTQConfig gptq_;
  QronosConfig qronos_;
  bool is_qronos_;
};

}  // namespace

std::unique_ptr<LayerAlgorithm> MakeGptq(const GPTQConfig& c) {
  return std::make_unique<HessianAlgorithm>(c);
}
std::unique_ptr<LayerAlgorithm> MakeQronos(const QronosConfig& c) {
  return std::make_unique<HessianAlgorithm>(c);
}

}  // namespace quarry::algorithms
