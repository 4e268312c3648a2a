// A scalar re-implementation of microsoft/microxcaling's element and MX quantization
// (mx/elemwise_ops.py _quantize_elemwise_core, mx/mx_ops.py _quantize_mx) -- the OCP MX authors'
// reference, whose semantics differ from Quark's (INDEX.md cross-reference: scale rounding,
// round-half-away "nearest", Inf handling). Quarry follows Quark; this test-only reference exists
// to check the microxcaling vectors and the documented Quark-vs-microxcaling differences.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace quarry::testing {

struct MxFormat {
  int ebits;      // exponent bits (0 for int8)
  int mbits;      // mantissa bits including sign and implicit bit
  int emax;       // largest exponent
  float max_norm;
};
// fp8_e4m3, fp8_e5m2, fp6_e3m2, fp6_e2m3, fp4, int8 (microxcaling's _get_format_params).
MxFormat MicroxcalingFormat(const std::string& name);

// _quantize_elemwise_core(A, bits=mbits, exp_bits=ebits, max_norm, round, saturate_normals,
// allow_denorm=True); round is "nearest" (half away from zero), "even" or "floor".
float MicroxcalingElement(float a, const MxFormat& f, const std::string& round, bool saturate);

// _quantize_mx(A, scale_bits=8, elem_format, shared_exp_method="max", axes=[-1], block_size,
// round) for a 2-D float32 tensor, blocks along the last dimension.
at::Tensor MicroxcalingMx(const at::Tensor& x, const MxFormat& f, const std::string& round,
                          int64_t block_size);

}  // namespace quarry::testing
