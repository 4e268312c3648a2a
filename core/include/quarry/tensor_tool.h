// File-level tools behind `quarry tensor ...`: apply a QuantizationSpec to every float tensor of
// a safetensors file (fake or real quantization) and back, and run GPTQ / Qronos on one layer.
// Specs and algorithm configs are Quark JSON dicts (a tensor spec may be a list of two stages for
// fake quantization). Stateless; thread-compatible.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace quarry {

struct TensorQuantizeOptions {
  std::string input;       // safetensors with float32 / bfloat16 / float16 tensors
  std::string output;
  std::string spec_json;   // the QuantizationSpec (dict, or a list for two-stage fake quant)
  bool real = false;       // false: fake-quantized values; true: packed codes + companions
  bool pack_reorder = true;  // int4 nibble order for real quantization
};

// Per tensor: fake -> `<name>` with the input's dtype; real -> `<name>` packed codes,
// `<name>_scale` and (integer dtypes) `<name>_zero_point`. Non-float tensors are copied.
// Returns one line per tensor for the user.
absl::StatusOr<std::vector<std::string>> QuantizeTensorFile(const TensorQuantizeOptions& options);

struct TensorDequantizeOptions {
  std::string input;       // written by QuantizeTensorFile(real = true)
  std::string output;
  std::string spec_json;   // the same spec
  bool pack_reorder = true;
  std::string dtype = "float32";  // output dtype: float32 | bfloat16 | float16
};
absl::StatusOr<std::vector<std::string>> DequantizeTensorFile(const TensorDequantizeOptions& options);

struct LayerAlgorithmOptions {
  std::string algorithm;   // "gptq" or "qronos"
  std::string weight_path; // safetensors with tensor `weight` [out, in]
  std::string inputs_path; // safetensors with `inputs` [n, in] (and, for Qronos, optionally
                           // `inputs_float`: the float model's inputs of the same rows)
  std::string spec_json;   // weight QuantizationSpec (Quark JSON dict)
  std::string algo_json;   // GPTQConfig / QronosConfig as Quark JSON (may be empty: defaults)
  std::string output;      // safetensors with `weight` (fake-quantized) [out, in]
};

struct LayerAlgorithmReport {
  double error_algorithm = 0;  // ||X W^T - X Q^T||_F^2
  double error_rtn = 0;        // the same for rounding to nearest
  double hessian_seconds = 0;
  double quant_seconds = 0;
  int damp_retries = 0;
  int64_t rows = 0;
};

absl::StatusOr<LayerAlgorithmReport> RunLayerAlgorithm(const LayerAlgorithmOptions& options);

}  // namespace quarry
