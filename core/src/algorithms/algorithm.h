// Core-internal: the hook through which weight-quantization algorithms (GPTQ, Qronos, ...) plug
// into the layer-by-layer pipeline. For each decoder layer the pipeline calls Apply() after the
// layer's weights are loaded and its quantizers attached, before weights are quantized and
// activation observers run. An algorithm sees the layer module, the calibration activations that
// enter it (from the already-quantized previous layers; plus the float model's when it asks for
// them) and the resolved plan. It may re-run the layer's forward (kCapture) as often as it needs
// (e.g. once per group of linears that share an input) and replaces the weights it quantizes,
// freezing their weight quantizers with the parameters it chose.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "export/report.h"
#include "model/transformer.h"
#include "pipeline/layerwise.h"
#include "quarry/layer_plan.h"
#include "quarry/pipeline.h"

namespace quarry::algorithms {

struct LayerContext {
  model::CausalLM* model = nullptr;
  model::DecoderLayer* layer = nullptr;
  const LayerPlan* plan = nullptr;
  int layer_index = 0;
  int num_layers = 0;
  pipeline::Batches* calib_q = nullptr;  // inputs produced by the quantized previous layers
  pipeline::Batches* calib_f = nullptr;  // float-model inputs (only if needs_float_inputs())
  JobObserver* observer = nullptr;
  // Called by the algorithm for progress inside the layer ("model.layers.3.mlp.down_proj").
  std::function<void(const std::string& message, double layer_fraction)> progress;
  std::function<void(LogSeverity, const std::string&)> log;
  // Decisions for report.json (scales, ratios, clips); may be null.
  std::vector<report::AlgorithmRecord>* records = nullptr;
  // Names of the linears whose float weights the algorithm transformed (scaled, clipped) without
  // quantizing them: the report's method reads "awq+rtn", "smoothquant+gptq".
  std::set<std::string>* transformed = nullptr;
};

class LayerAlgorithm {
 public:
  virtual ~LayerAlgorithm() = default;
  virtual std::string name() const = 0;
  // True when the pipeline must carry the float model's activations alongside (Qronos).
  virtual bool needs_float_inputs() const { return false; }
  // Checks the algorithm's settings against the model and plan before any work (loading a
  // layer if it must); errors name the field.
  virtual absl::Status Validate(model::CausalLM& /*model*/, const LayerPlan& /*plan*/) {
    return absl::OkStatus();
  }
  // Processes one decoder layer. Adds the names of the linears whose weights it quantized (and
  // whose weight quantizer it froze) to `done`; the pipeline quantizes the rest by rounding.
  virtual absl::Status Apply(LayerContext& ctx, std::set<std::string>* done) = 0;
};

// The algorithms of config.algo_config, in order. Algorithms Quarry does not implement yet are
// an error naming them.
absl::StatusOr<std::vector<std::unique_ptr<LayerAlgorithm>>> CreateAlgorithms(const Config& config);

}  // namespace quarry::algorithms
