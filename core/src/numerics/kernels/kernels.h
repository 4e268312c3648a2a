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
// Returns an undefined tensor when there is no fast path. When `out` is a contiguous float32
// tensor of x's shape (not x itself) the result is written into it and returned (no allocation);
// otherwise (or for per_group layouts with inner > 1, which go through a transposed copy) the
// result is a fresh tensor.
at::Tensor FakeQuantizeWithParams(const QuantPlan& plan, const Layout& layout, const at::Tensor& x,
                                  const at::Tensor& scale, const at::Tensor& zero_point,
                                  const at::Tensor* out = nullptr);

// Fused dynamic quantization: computes the parameters exactly as the plan's observer would from x
// alone and fake-quantizes with them. Returns false when there is no fused path. A defined *y on
// entry is used as the output buffer under FakeQuantizeWithParams' conditions on `out`; *y is the
// result on return (check *y's storage to know whether the buffer was used).
bool FakeQuantizeDynamic(const QuantPlan& plan, const Layout& layout, const at::Tensor& x,
                         at::Tensor* y, QuantParams* params);

// Element codes of real quantization (real_quantize.cc's ComputeCodes + PackCodes) for the
// layouts the runs cover (per_tensor; per_channel with inner > 1; per_group / MX blocks along the
// last axis, inner == 1), in one threaded pass without an int32 code tensor:
//  - fp8 e4m3 / e5m2 elements (kFloat or kMx): one byte per element, x's shape;
//  - fp4 e2m1 elements (kFloat or kMx): two per byte along the last axis, element 0 in the low
//    nibble, an odd last dimension padded with code 0;
//  - int8 / uint8 grids with integer zero points, round half_even: one byte per element (int8 as
//    at::kChar, uint8 as at::kByte).
// `scale` is float32 with one value per parameter in the layout's order: for float families the
// effective scale (0 already replaced by kFloat32Eps; MX: the block's power of two); `zero_point`
// likewise for integers (undefined = 0). Returns an undefined tensor when the plan or layout has
// no fast path. Bit-exact with the reference (tests/numerics/fast_codes_test.cc).
at::Tensor FastCodes(const QuantPlan& plan, const Layout& layout, const at::Tensor& x,
                     const at::Tensor& scale, const at::Tensor& zero_point);

}  // namespace quarry::numerics::kernels
