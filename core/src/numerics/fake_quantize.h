// Internal entry points of fake quantization with an explicit choice between the scalar reference
// and the fast kernels (tests and benchmarks compare the two), plus the input/parameter checks the
// public API and real quantization share. Thread-safe.
#pragma once

#include <ATen/ATen.h>

#include <utility>

#include "absl/status/statusor.h"
#include "numerics/plan.h"
#include "quarry/quantize.h"

namespace quarry::numerics {

enum class Path {
  kAuto,       // fast kernels where they exist (CPU float32 inside), else the reference
  kReference,  // always the scalar reference (reference/)
};

// Checks that x is a float32 / bfloat16 / float16 tensor.
absl::Status CheckInput(const at::Tensor& x);

// Parameters converted for the numerics: contiguous float32 CPU, flattened, checked against the
// layout (scale shape, zero point count); zero_point undefined when the family has none.
struct FlatParams {
  at::Tensor scale;
  at::Tensor zero_point;
};
absl::StatusOr<FlatParams> FlattenParams(const QuantPlan& plan, const Layout& layout,
                                         const QuantParams& params);

// x (any device, float32/bf16/f16) -> fake-quantized, same dtype and device.
absl::StatusOr<at::Tensor> FakeQuantizeWithPlan(const QuantPlan& plan, const at::Tensor& x,
                                                const QuantParams& params, Path path = Path::kAuto);
// Parameters from x alone (the plan's observer; the fused kernels when available) and the
// fake-quantized x.
absl::StatusOr<std::pair<at::Tensor, QuantParams>> FakeQuantizeDynamicWithPlan(
    const QuantPlan& plan, const at::Tensor& x, Path path = Path::kAuto);

}  // namespace quarry::numerics
