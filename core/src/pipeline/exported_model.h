// Core-internal: opening a model for inference, float or exported quantized (Quark's HF format:
// config.json["quantization_config"] + real- or fake-quantized weights with *_scale /
// *_zero_point companions). Quantized models get dequantized weights and their activation
// quantizers rebuilt from the plan and the exported static scales.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "model/transformer.h"
#include "quarry/layer_plan.h"

namespace quarry::pipeline {

struct InferenceModel {
  std::unique_ptr<model::CausalLM> model;
  bool quantized = false;
  Config config;   // the exported quantization_config (quantized models)
  std::shared_ptr<const LayerPlan> plan;  // shared with the model's tensor source
  bool real_quantized = true;
  bool pack_reorder = true;
  absl::StatusOr<std::unique_ptr<model::DecoderLayer>> LoadLayer(int i);
  absl::StatusOr<std::unique_ptr<model::Head>> LoadHead();
};

absl::StatusOr<InferenceModel> OpenForInference(const std::string& model_dir);

}  // namespace quarry::pipeline
