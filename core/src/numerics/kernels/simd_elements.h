// Branch-free element functions for the fast kernels, written so that GCC/Clang vectorize loops
// over them (no calls, no data-dependent branches; selects and bit casts only). Each is tested
// bit for bit against the scalar reference (reference/) on exhaustive and random inputs.
// Compiled with -ffp-contract=off (sources.cmake): a fused multiply-add would change roundings.
// Stateless; thread-safe.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

#include "numerics/formats.h"
#include "numerics/reference/int_grid.h"

namespace quarry::numerics::kernels {

// ----- Integer grids -----

// Per-parameter constants of an integer grid. Rounding uses the float32 "magic number"
// (v + 1.5*2^23) - 1.5*2^23, exact round-half-to-even for |v| <= 2^22; v is first clamped to
// [lo, hi], integers just outside the range that still clamp to qmin / qmax, so the magic stays
// valid (callers check |lo|, |hi| < 2^22; otherwise they use the reference).
struct IntGrid {
  float scale;  // EffectiveIntScale(scale)
  float inv;    // 1.0f / scale
  float zp;
  float lo, hi;
};
inline constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23
inline constexpr float kMagicLimit = 4194304.0f;   // 2^22: where the magic rounding is exact

// The grid of one parameter, computed as the reference computes it per element.
inline IntGrid MakeIntGrid(float scale, float zp, float qmin, float qmax) {
  IntGrid g;
  g.scale = ref::EffectiveIntScale(scale);
  g.inv = 1.0f / g.scale;
  g.zp = zp;
  g.lo = std::floor(qmin - zp) - 1.0f;
  g.hi = std::ceil(qmax - zp) + 1.0f;
  return g;
}
// Whether the magic-number rounding is exact over the grid's clamp range.
inline bool MagicRoundingFits(const IntGrid& g) {
  return std::fabs(g.lo) < kMagicLimit && std::fabs(g.hi) < kMagicLimit;
}

// Fake-quantizes one value: ((clamp(round(x * inv) + zp, qmin, qmax)) - zp) * scale, NaN -> NaN.
// Equal to ref::FakeQuantIntValue with RoundType::kHalfEven bit for bit (zero signs included).
inline float FakeQuantIntHalfEven(float x, const IntGrid& g, float qmin, float qmax) {
  float v = x * g.inv;
  v = v < g.lo ? g.lo : v;  // comparisons with NaN are false: NaN flows through
  v = v > g.hi ? g.hi : v;
  float q = ((v + kRoundMagic) - kRoundMagic) + g.zp;
  q = q < qmin ? qmin : q;
  q = q > qmax ? qmax : q;
  return (q - g.zp) * g.scale;
}

// The integer code before dequantization: clamp(round(x * inv) + zp, qmin, qmax) (NaN -> NaN).
// Equal to ref::QuantizeIntValue with RoundType::kHalfEven bit for bit under the same
// |lo|, |hi| < 2^22 condition.
inline float QuantIntHalfEven(float x, const IntGrid& g, float qmin, float qmax) {
  float v = x * g.inv;
  v = v < g.lo ? g.lo : v;
  v = v > g.hi ? g.hi : v;
  float q = ((v + kRoundMagic) - kRoundMagic) + g.zp;
  q = q < qmin ? qmin : q;
  q = q > qmax ? qmax : q;
  return q;
}

// ----- Float element grids (fp8 / fp6 / fp4) -----

struct FloatGrid {
  float max_norm;
  uint32_t emin_bits;      // exponent field of the smallest normal, (emin + 127) << 23
  uint32_t quantum_shift;  // (23 - mbits) << 23: from a binade's exponent bits to 2^23 * its ulp
  bool fp8;
};
inline FloatGrid MakeFloatGrid(const FloatFormat& f) {
  return {f.max_norm, static_cast<uint32_t>(f.emin + 127) << 23,
          static_cast<uint32_t>(23 - f.mbits) << 23, f.is_fp8};
}

// Rounds v onto the format's grid, with ref::QuantizeFp8Value (fp8) / ref::QuantizeMiniFloatValue
// (fp4, fp6) semantics: |v| is clamped to max_norm (rounding can never exceed it: max_norm is on
// the grid), then rounded half-to-even at the quantum of its binade (fixed below the smallest
// normal) by adding and subtracting 2^23 * quantum. fp8 keeps the sign (also of zero); fp4/fp6
// return +0 for zero and pass Inf/NaN through; fp8 keeps NaN and saturates Inf.
inline float QuantizeFloatGrid(float v, const FloatGrid& g) {
  const uint32_t bits = std::bit_cast<uint32_t>(v);
  const uint32_t sign = bits & 0x80000000u;
  const uint32_t abs_bits = bits & 0x7FFFFFFFu;
  float a = std::bit_cast<float>(abs_bits);
  a = a > g.max_norm ? g.max_norm : a;  // NaN stays NaN
  uint32_t exponent = std::bit_cast<uint32_t>(a) & 0x7F800000u;
  exponent = exponent < g.emin_bits ? g.emin_bits : exponent;
  const float big = std::bit_cast<float>(exponent + g.quantum_shift);
  const float r = (a + big) - big;
  const uint32_t r_bits = std::bit_cast<uint32_t>(r);
  const bool non_finite = abs_bits >= 0x7F800000u;
  const bool is_nan = abs_bits > 0x7F800000u;
  const uint32_t fp8_bits = is_nan ? bits : (r_bits | sign);
  const uint32_t mini_bits = non_finite ? bits : (r_bits == 0 ? 0u : (r_bits | sign));
  return std::bit_cast<float>(g.fp8 ? fp8_bits : mini_bits);
}

// The code of a value on a float element grid (an output of QuantizeFloatGrid, or any value
// whose magnitude, clamped to max_norm, is on the grid) in the format's encoding, equal to
// ref::EncodeFp8 (fp8: sign in bit 7, NaN -> sign | 0x7F) and ref::EncodeMiniFloat (fp4 / fp6:
// sign in bit ebits + mbits, NaN -> 0, +-Inf -> +-max_norm). Normal values: exponent rebiased in
// place and the mantissa shifted down; subnormals (and zero): magnitude / 2^(emin - mbits), an
// exact integer.
struct FloatCoder {
  float max_norm;
  uint32_t emin_bits;     // (emin + 127) << 23: the smallest normal's bits
  uint32_t rebias;        // (127 - bias) << 23
  uint32_t mant_shift;    // 23 - mbits
  float sub_scale;        // 2^(mbits - emin)
  float sub_clamp;        // 2^emin (keeps the subnormal conversion in range)
  uint32_t sign_shift;    // 31 - (bit of the sign in the code)
  uint32_t nan_code;      // fp8: 0x7F (before the sign); fp4/fp6: 0
  bool fp8;
};
inline FloatCoder MakeFloatCoder(const FloatFormat& f) {
  FloatCoder c;
  c.max_norm = f.max_norm;
  c.emin_bits = static_cast<uint32_t>(f.emin + 127) << 23;
  c.rebias = static_cast<uint32_t>(127 - f.bias) << 23;
  c.mant_shift = static_cast<uint32_t>(23 - f.mbits);
  c.sub_scale = std::ldexp(1.0f, f.mbits - f.emin);
  c.sub_clamp = std::ldexp(1.0f, f.emin);
  c.sign_shift = static_cast<uint32_t>(31 - (f.is_fp8 ? 7 : f.ebits + f.mbits));
  c.nan_code = f.is_fp8 ? 0x7Fu : 0u;
  c.fp8 = f.is_fp8;
  return c;
}
inline uint8_t EncodeFloatGrid(float v, const FloatCoder& c) {
  const uint32_t bits = std::bit_cast<uint32_t>(v);
  const uint32_t abs_bits = bits & 0x7FFFFFFFu;
  const bool is_nan = abs_bits > 0x7F800000u;
  float a = std::bit_cast<float>(abs_bits);
  a = a > c.max_norm ? c.max_norm : a;
  const uint32_t a_bits = std::bit_cast<uint32_t>(a);
  const uint32_t normal = (a_bits - c.rebias) >> c.mant_shift;
  const float sub = (a < c.sub_clamp ? a : c.sub_clamp) * c.sub_scale;  // NaN: unused below
  const uint32_t subnormal = static_cast<uint32_t>(static_cast<int32_t>(is_nan ? 0.0f : sub));
  const uint32_t magnitude = a_bits >= c.emin_bits ? normal : subnormal;
  const uint32_t sign = (bits & 0x80000000u) >> c.sign_shift;
  const uint32_t fp8_code = sign | (is_nan ? c.nan_code : magnitude);
  const uint32_t mini_code = is_nan ? 0u : (sign | magnitude);
  return static_cast<uint8_t>(c.fp8 ? fp8_code : mini_code);
}

// Order-preserving int32 key of a float's bits (negative floats have their magnitude bits
// flipped): key(a) < key(b) iff a < b for non-NaN a, b, with -0 below +0. Its own inverse.
inline int32_t OrderedKey(int32_t bits) { return bits ^ ((bits >> 31) & 0x7FFFFFFF); }

// max |x| over n floats as the bit pattern of |x| (NaN patterns compare above Inf, so a NaN
// anywhere gives a NaN maximum, as torch.max).
inline uint32_t AbsMaxBits(const float* x, int64_t n) {
  int32_t m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t b = static_cast<int32_t>(std::bit_cast<uint32_t>(x[i]) & 0x7FFFFFFFu);
    m = b > m ? b : m;
  }
  return static_cast<uint32_t>(m);
}

}  // namespace quarry::numerics::kernels
