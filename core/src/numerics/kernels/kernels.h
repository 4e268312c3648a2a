// Fast CPU paths of fake quantization: single-pass kernels (statistics, parameters and fake
// quantization of each group / channel / MX block while it is in cache), threaded with
// at::parallel_for, inner loops written for the auto-vectorizer (simd_elements.h).
// Covered: integer grids (round half_even, |range| < 2^22: int2..int8, uint4, uint8) per_tensor /
// per_channel / per_group; fp8 / fp6 / fp4 with float32 scales; OCP MX with fp8 / fp6 / fp4
// elements. Everything else returns false and the caller runs the scalar reference.
// Every kernel is bit-exact with the reference (tests/numerics/fast_vs_reference_test.cc).
// Thread-safe (no state).
#pragma once

#include <ATen/ATen.h>

#include "numerics/plan.h"
#include "quarry/quantize.h"

namespace quarry::numerics::kernels {

// Whether FakeQuantizeWithParams / FakeQuantizeDynamic have a fast path for the plan.
bool HasFastPath(const QuantPlan& plan);
bool HasFusedDynamicPath(const QuantPlan& plan);

// y = fake_quantize(x) with given parameters. x: contiguous float32 CPU with layout.x_shape;
// scale / zero_point: contiguous float32 CPU in the contract layout (zero_point may be undefined).
// Returns an undefined tensor when there is no fast path.
at::Tensor FakeQuantizeWithParams(const QuantPlan& plan, const Layout& layout, const at::Tensor& x,
                                  const at::Tensor& scale, const at::Tensor& zero_point);

// Fused dynamic quantization: computes the parameters exactly as the plan's observer would from x
// alone and fake-quantizes with them. Returns false when there is no fused path.
bool FakeQuantizeDynamic(const QuantPlan& plan, const Layout& layout, const at::Tensor& x,
                         at::Tensor* y, QuantParams* params);

}  // namespace quarry::numerics::kernels
