// Core-internal: a llama.cpp GGUF file (or the first of its gguf-split files) opened for
// Quarry's own inference: hyperparameters from the <arch>.* keys, the tokenizer from
// tokenizer.ggml.* (export/gguf_tokenizer.h), every tensor dequantized to float32 on load
// (export/gguf_format.h Dequantize, the q/k permutation undone for "llama"), one decoder layer
// at a time. GGUF quantizes weights only, so the model runs its float forward over the
// dequantized weights: exactly the quantized model llama.cpp holds (up to llama.cpp's own
// arithmetic: it multiplies quantized blocks with 8-bit-quantized activations).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "pipeline/exported_model.h"
#include "quarry/tokenizer.h"

namespace quarry::pipeline {

// A path naming a .gguf file.
bool IsGgufPath(const std::string& path);

struct GgufModel {
  InferenceModel lm;                     // lm.quantized stays false (no activation quantizers)
  std::unique_ptr<Tokenizer> tokenizer;
  bool quantized_weights = false;        // some tensor has a quantized ggml type
  std::string architecture;
};

absl::StatusOr<GgufModel> OpenGguf(const std::string& path);

}  // namespace quarry::pipeline
