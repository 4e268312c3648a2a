// Internal helpers of real quantization shared with tests and export: the element codes of a
// QuantizedTensor, unpacked. Thread-safe.
#pragma once

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "quarry/quantize.h"

namespace quarry::numerics {

// The int32 element codes of q (logical shape q.shape): integer codes, fp8/fp6/fp4 bit codes,
// MX6/MX9 fine mantissas, BFP16 mantissas.
absl::StatusOr<at::Tensor> UnpackedCodes(const QuantizedTensor& q, const QuantizationSpec& spec);

}  // namespace quarry::numerics
