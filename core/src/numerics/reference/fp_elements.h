// Scalar reference for the float element formats fp8_e4m3 (OCP e4m3fn), fp8_e5m2, fp6_e3m2,
// fp6_e2m3 and fp4 (e2m1): rounding a float32 onto the format's grid, and the bit codes used by
// real quantization. Plain, branchy code that is easy to check against Quark; the fast kernels in
// kernels/ are tested against it. Stateless; thread-safe.
//
// Semantics (Quark 1d27b558):
// - fp8 (fake_quantize_fp8_*): clamp to [-max, max] (so +-Inf -> +-max), then round to nearest
//   even into the format with subnormals (torch's float8 cast); -0 stays -0; NaN stays NaN.
// - fp6/fp4 (C++ fake_quantize_element): round the float32 mantissa half-to-even at the format's
//   precision (subnormals kept), saturate at max; Inf and NaN pass through UNCHANGED; a result of
//   zero is returned as +0.0 (the sign is dropped).
#pragma once

#include <cstdint>

#include "numerics/formats.h"

namespace quarry::numerics::ref {

// The format's value nearest to `v` per the semantics above (fp8 or fp6/fp4 by `f.is_fp8`).
float QuantizeFloatElement(float v, const FloatFormat& f);

// fp8: clamp then round-to-nearest-even cast, with the codec below.
float QuantizeFp8Value(float v, const FloatFormat& f);
// fp4/fp6: Quark's fake_quantize_element, bit for bit.
float QuantizeMiniFloatValue(float v, const FloatFormat& f);

// fp8 codes. EncodeFp8 rounds to nearest even and saturates |v| > max to max (callers clamp
// first, as Quark does); NaN -> 0x7f | sign. DecodeFp8 maps e4m3fn 0x7f/0xff and e5m2 exponent-31
// codes to NaN / Inf.
uint8_t EncodeFp8(float v, const FloatFormat& f);
float DecodeFp8(uint8_t code, const FloatFormat& f);

// fp4/fp6 codes (sign << (ebits + mbits) | exponent << mbits | mantissa) of a value already on the
// grid (the output of QuantizeMiniFloatValue). +-Inf encode as +-max, NaN as 0: those formats have
// neither (see real_quantize.cc for when that matters).
uint8_t EncodeMiniFloat(float grid_value, const FloatFormat& f);
float DecodeMiniFloat(uint8_t code, const FloatFormat& f);

// log2 of a float32 rounded to float32, as torch.log2 on a float32 tensor (computed in double and
// rounded once, i.e. a correctly rounded log2f). log2(0) = -Inf, log2(Inf) = Inf, NaN -> NaN.
float Log2AsFloat32(float x);
// 2^e for an integral-valued (or infinite / NaN) float exponent, as torch.pow(2, e) in float32:
// 2^-150 and below round to 0, 2^128 and above give Inf.
float Pow2(float e);

}  // namespace quarry::numerics::ref
