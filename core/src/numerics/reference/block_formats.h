// Scalar reference for the block formats: OCP MX shared E8M0 scales (Quark's even_round / floor /
// ceil), MX6 / MX9 (shared micro-exponent pairs, Quark's fake_quantize_mx6_mx9) and BFP16 (Quark's
// fake_quantize_bfp16). Stateless; thread-safe.
//
// NaN/Inf, as Quark: MX blocks containing NaN get a NaN scale (every element NaN); +-Inf gives
// amax Inf, scale 2^127 in "even" mode (Inf in floor/ceil). MX6/MX9 and BFP16 compute their block
// exponent from the block with NaN/Inf replaced by 0; MX6/MX9 then keep NaN elements NaN and
// saturate +-Inf, BFP16 outputs 0 for NaN/Inf elements.
#pragma once

#include <cstdint>

#include "numerics/plan.h"

namespace quarry::numerics::ref {

// Quark's E8M0 block scale from the block's absolute maximum (PerBlockMXObserver.get_scale
// "e8m0" and fake_quantize_mx):
//   even:  2^clamp(floor(log2(amax rounded up at mantissa bit 23 - mbits - 1)) - emax, -127, 127)
//          with amax 0 -> 2^-126 before the log (OCP MX spec 6.3)
//   floor: 2^(floor(log2(amax)) - emax), ceil: 2^(ceil(log2(amax)) - emax); no clamp; 0 -> eps
float MxScale(float amax, int mbits, int emax, MxScaleMode mode);

// Quark's t_exponent on float32: the raw exponent field minus 127 (0 and subnormals -> -127);
// NaN and Inf count as 0.
int TExponent(float v);

// NaN and +-Inf -> 0 (torch.nan_to_num(nan=0, posinf=0, neginf=0)).
float NanToZero(float v);

// MX6 (quant_bit 5) / MX9 (quant_bit 8) for one element with block exponent `max_exp`
// (t_exponent of the block's amax) and `partner`, the other element of its pair (0 for the padding
// of an odd tail):
//   d = both elements' exponents are <= max_exp - 1; s = 2^(max_exp - d - quant_bit + 2);
//   qmax = float32(min(2^(max_exp + 1) - s, FLT_MAX)) / s; y = clamp(round_half_even(x / s),
//   -qmax, qmax) * s.
struct Mx6Mx9Value {
  float q;      // clamp(round(x / s), -qmax, qmax)
  float scale;  // s
  int d;        // micro-exponent of the pair
};
Mx6Mx9Value QuantizeMx6Mx9Element(float x, float partner, int max_exp, int quant_bit);
float FakeQuantMx6Mx9Element(float x, float partner, int max_exp, int quant_bit);

// BFP16: the block scale 2^(floor(log2 amax) - 6) (0 -> eps) of a block whose absolute maximum
// (after NaN/Inf -> 0) is `amax`.
float Bfp16ScaleFromAmax(float amax);
// Whether int8 quantization at `scale` would leave [-128, 127] for some element of the block
// (values already NaN/Inf -> 0): Quark then doubles amax.
bool Bfp16Overflows(const float* block, int64_t n, float scale);

}  // namespace quarry::numerics::ref
