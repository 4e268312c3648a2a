// Core-internal: the base of SmoothQuant, AutoSmoothQuant and AWQ as pipeline algorithms: their
// scaling_layers (or the architecture's defaults), checked against decoder layer 0 and the plan
// before any work, and per layer the entries whose `inp` is quantized.
#pragma once

#include <string>
#include <vector>

#include "algorithms/algorithm.h"
#include "algorithms/scaling/layer_scaling.h"

namespace quarry::algorithms::scaling {

class ScalingAlgorithm : public LayerAlgorithm {
 public:
  ScalingAlgorithm(std::string name, std::vector<ScalingLayer> entries, std::string decoder_layers)
      : name_(std::move(name)), given_(std::move(entries)), decoder_layers_(std::move(decoder_layers)) {}

  std::string name() const override { return name_; }
  // Statistics and searches read the float model's activations (see layer_scaling.h).
  bool needs_float_inputs() const override { return true; }
  absl::Status Validate(model::CausalLM& model, const LayerPlan& plan) override;

 protected:
  // True when the layers of one entry must share a weight group size (AWQ's scale search
  // quantizes them with one scale per input column).
  virtual bool needs_equal_group_sizes() const { return false; }
  // The entries to run in this layer (resolved; unquantized `inp` skipped with an INFO log).
  absl::StatusOr<std::vector<ScaleTarget>> Targets(LayerContext& ctx);
  const std::vector<ScalingLayer>& entries() const { return entries_; }
  void Record(LayerContext& ctx, report::AlgorithmRecord r) const;
  // Folds every target's scale (in entry order) and records it; the scaled linears are marked
  // transformed. `values[i]` / `choices[i]` describe the choice of target i.
  absl::Status FoldAll(LayerContext& ctx, const std::vector<ScaleTarget>& targets,
                       const std::vector<at::Tensor>& scales, const std::vector<double>& values,
                       const std::vector<std::string>& choices,
                       const std::vector<std::optional<double>>& loss_before,
                       const std::vector<std::optional<double>>& loss_after,
                       std::vector<at::Tensor>* folded = nullptr);
  absl::Status CheckCancelled(LayerContext& ctx) const;

 private:
  std::string name_;
  std::vector<ScalingLayer> given_;
  std::string decoder_layers_;
  std::vector<ScalingLayer> entries_;  // given_ or the defaults (set by Validate)
};

// The weight group size of a plan entry's first weight stage (per-group specs), else nullopt.
std::optional<int> WeightGroupSize(const LayerPlanEntry* e);

}  // namespace quarry::algorithms::scaling
