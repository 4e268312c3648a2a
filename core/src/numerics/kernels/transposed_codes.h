// Fast path of Quark's export layout for per-group integer weights: a weight W [R, C] with groups
// of `group` input columns (parameters [R, C/group]) is stored transposed, [C, R], int4/uint4
// codes packed eight to an int32 along R (packing.h's PackInt4Word, in `order`), int8/uint8 one
// byte each. One threaded pass over W, in cache-sized tiles, without materialising W^T or an int32
// code tensor. Bit-exact with the reference path
//   Quantize(W.t().contiguous(), spec with ch_axis 0, {scale.t(), zero_point.t()}, order).data
// (same scalar formula ref::QuantizeIntValue, same NaN rule; tests/numerics/transposed_codes_test.cc).
// Thread-safe (no state).
#pragma once

#include <ATen/ATen.h>

#include "numerics/plan.h"
#include "quarry/packing.h"

namespace quarry::numerics::kernels {

// REQUIRES: w contiguous float32 [R, C]; scale (and zero_point, if defined) contiguous float32
// [R, ceil(C / group)]. Returns an undefined tensor when the plan or shape has no fast path
// (non-integer family, float zero points, R not a multiple of 8 for int4, other elements).
at::Tensor TransposedGroupCodes(const QuantPlan& plan, const at::Tensor& w, const at::Tensor& scale,
                                const at::Tensor& zero_point, int64_t group, PackOrder order);

}  // namespace quarry::numerics::kernels
