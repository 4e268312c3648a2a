// Core-internal: what SmoothQuant, AutoSmoothQuant and AWQ do alike inside one decoder layer:
// choose the scaling_layers entries (the config's or the architecture's defaults), skip those
// whose `inp` is not quantized, capture the calibration inputs of the layer's linears in one
// forward, and evaluate an entry's module2inspect on them with candidate weights.
//
// Inputs are the float model's (the pipeline's calib_f stream, which these algorithms ask for),
// as in Quark, smoothquant and llm-awq, which run on the float model layer by layer; GPTQ reads
// the quantized stream instead. Every calibration batch is used (Quark 0.10's AWQ used the
// first only).
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "algorithms/algorithm.h"
#include "algorithms/scaling/scale_folding.h"
#include "algorithms/scaling/scale_search.h"

namespace quarry::algorithms::scaling {

// The entries to use: `given`, or the defaults of the model's family when empty. A non-empty
// `decoder_layers` must name the model's decoder layers ("model.layers"); `algo` names the
// algorithm in messages.
absl::StatusOr<std::vector<ScalingLayer>> EntriesFor(const ModelConfig& config,
                                                     const std::vector<ScalingLayer>& given,
                                                     const std::string& decoder_layers,
                                                     const std::string& algo);

// Resolves the entries against ctx.layer; entries whose `inp` has neither a weight nor an input
// quantizer (excluded, or not quantized by the plan) are dropped with an INFO log.
absl::StatusOr<std::vector<ScaleTarget>> ActiveTargets(LayerContext& ctx,
                                                       const std::vector<ScalingLayer>& entries,
                                                       const std::string& algo);

// Calibration inputs of the layer's linears, captured in one kCapture forward of calib_q.
struct LinearInputs {
  std::vector<at::Tensor> x;  // per batch [b, L, in] (only when kept)
  at::Tensor max_abs;         // [in] max |x| over every token
  at::Tensor sum_abs;         // [in] sum |x| (double) over every token
  int64_t tokens = 0;
  at::Tensor mean_abs() const;  // [in] float32
};

struct LayerInputs {
  std::vector<at::Tensor> layer_in;                  // per batch: the layer's own input
  std::vector<model::ForwardContext> contexts;       // per batch (kCapture)
  std::map<const model::QLinear*, LinearInputs> by_group;  // keyed by the group's first linear
  std::map<const model::QLinear*, const model::QLinear*> leader;  // linear -> its group's first
  const LinearInputs& For(const model::QLinear* l) const { return by_group.at(leader.at(l)); }
  // The input module2inspect reads for batch b: the layer input for "", else inp's input.
  const at::Tensor& ModuleInput(const ScaleTarget& t, size_t b) const;
};

// keep_tensors: keep every batch's inputs (searches), or only the statistics (SmoothQuant).
absl::StatusOr<LayerInputs> CaptureLayerInputs(LayerContext& ctx, bool keep_tensors);

// module2inspect's output for every batch with the layer's current weights and overrides.
absl::StatusOr<std::vector<at::Tensor>> ModuleOutputs(LayerContext& ctx, const LayerInputs& in,
                                                      const ScaleTarget& t);

// mean over every element of every batch of |out - ref|^p (p = 2: MSE, 1: MAE), in double.
absl::StatusOr<double> ModuleLoss(LayerContext& ctx, const LayerInputs& in, const ScaleTarget& t,
                                  const std::vector<at::Tensor>& ref, double p);

// A fake quantizer that computes its parameters from the tensor it is given (the weight spec of
// a linear: RTN with the spec's observer), the way Quark's pseudo_quantize_tensor does.
FakeQuantizeFn SpecFakeQuantizer(const std::vector<QuantizationSpec>& stages);

// Restores the weights and forward overrides of linears when it goes out of scope.
class WeightRestorer {
 public:
  explicit WeightRestorer(std::vector<model::QLinear*> linears);
  ~WeightRestorer();
  void Restore();

 private:
  std::vector<model::QLinear*> linears_;
  std::vector<at::Tensor> weights_;
};

// "input_layernorm -> self_attn.q_proj,self_attn.k_proj,self_attn.v_proj" for logs/reports.
std::string EntryLabel(const ScalingLayer& e);

}  // namespace quarry::algorithms::scaling
