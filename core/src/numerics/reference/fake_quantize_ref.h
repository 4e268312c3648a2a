// The scalar reference of fake quantization for every family: one plain loop over the elements,
// each looking up its parameter through Layout::ParamIndex and calling the element functions of
// int_grid.h / fp_elements.h / block_formats.h. Slow and obviously right; the fast kernels are
// tested against it. Stateless; thread-safe.
#pragma once

#include <ATen/ATen.h>

#include "numerics/plan.h"

namespace quarry::numerics::ref {

// x: contiguous float32 CPU tensor whose shape is layout.x_shape. scale / zero_point: contiguous
// float32 CPU tensors with layout.num_params() elements in the contract layout (zero_point is
// undefined for families without one, or means 0). Returns a new contiguous float32 tensor.
//   int:   FakeQuantIntValue(x, s, zp)
//   float: QuantizeFloatElement(x / s) * s        (s == 0 -> eps, as Quark's per-group kernels)
//   mx:    as float; int8 elements FakeQuantIntValue(x, s / 64, 0, -127, 127)
//   mx6/mx9: FakeQuantMx6Mx9Element with max_exp = log2(s)
//   bfp16: FakeQuantIntValue(NanToZero(x), s, 0, -128, 127)
//   cast:  x.to(bfloat16 / float16).to(float32)
at::Tensor FakeQuantize(const QuantPlan& plan, const Layout& layout, const at::Tensor& x,
                        const at::Tensor& scale, const at::Tensor& zero_point);

}  // namespace quarry::numerics::ref
