#include "numerics/reference/fp_elements.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace quarry::numerics::ref {
namespace {

// Quark's shift_and_round: drop `tail_bits` low bits of `mantissa`, rounding half to even.
uint32_t ShiftAndRoundHalfEven(uint32_t mantissa, int tail_bits) {
  if (tail_bits == 0) return mantissa;
  if (tail_bits > 25) return 0;
  const uint32_t half = 1u << (tail_bits - 1);
  const uint32_t tail = mantissa & ((1u << tail_bits) - 1);
  const uint32_t kept = mantissa >> tail_bits;
  if (tail < half) return kept;
  if (tail > half) return kept + 1;
  return (kept % 2 == 1) ? kept + 1 : kept;
}

}  // namespace

float QuantizeMiniFloatValue(float v, const FloatFormat& f) {
  const uint32_t bits = FloatBits(v);
  int exponent = static_cast<int>((bits >> 23) & 0xFF);
  if (exponent == 0xFF) return v;  // Inf and NaN pass through unchanged
  uint32_t mantissa = bits & 0x7FFFFF;
  int mantissa_bits = 23;
  if (exponent != 0) {  // normal float32: make the implied leading 1 explicit
    mantissa |= 1u << 23;
    ++mantissa_bits;
  }
  // Exponent in the target format; at or below 0 the target value is subnormal and the mantissa
  // loses `exp_shift` more bits.
  const int target_exponent = exponent - 127 + f.bias;
  const int exp_shift = target_exponent > 0 ? 0 : 1 - target_exponent;
  const int tail_bits = 23 - f.mbits + exp_shift;
  mantissa = ShiftAndRoundHalfEven(mantissa, tail_bits);
  if (mantissa == 0) return 0.0f;  // +0.0 whatever the sign of v (Quark)
  mantissa <<= tail_bits;
  if (mantissa >= (1u << mantissa_bits)) {  // rounding carried into the next binade
    if (exponent != 0) mantissa >>= 1;
    ++exponent;
  }
  float magnitude = BitsToFloat((static_cast<uint32_t>(exponent) << 23) | (mantissa & 0x7FFFFF));
  if (magnitude > f.max_norm) magnitude = f.max_norm;
  return BitsToFloat(FloatBits(magnitude) | (bits & 0x80000000u));
}

uint8_t EncodeFp8(float v, const FloatFormat& f) {
  const uint8_t sign = std::signbit(v) ? 0x80 : 0x00;
  if (std::isnan(v)) return sign | 0x7F;
  float a = std::min(std::fabs(v), f.max_norm);
  if (a == 0.0f) return sign;
  const int e = std::ilogb(a);                          // floor(log2(a)), exact
  const int quantum_exp = std::max(e, f.emin) - f.mbits;  // weight of the last mantissa bit
  const float r = std::nearbyint(std::ldexp(a, -quantum_exp));  // round half to even
  if (r == 0.0f) return sign;
  const int rounded_exp = std::ilogb(r) + quantum_exp;  // a carry may move to the next binade
  uint32_t magnitude;
  if (rounded_exp < f.emin) {  // subnormal: exponent field 0, mantissa = r
    magnitude = static_cast<uint32_t>(r);
  } else {
    const uint32_t scaled = static_cast<uint32_t>(std::ldexp(r, quantum_exp - rounded_exp + f.mbits));
    magnitude = (static_cast<uint32_t>(rounded_exp + f.bias) << f.mbits) | (scaled - (1u << f.mbits));
  }
  return static_cast<uint8_t>(sign | magnitude);
}

float DecodeFp8(uint8_t code, const FloatFormat& f) {
  const bool negative = (code & 0x80) != 0;
  const uint32_t magnitude = code & 0x7F;
  const uint32_t exp_field = magnitude >> f.mbits;
  const uint32_t mantissa = magnitude & ((1u << f.mbits) - 1);
  float v;
  if (f.dtype == Dtype::kFp8E4M3 && magnitude == 0x7F) {
    v = std::numeric_limits<float>::quiet_NaN();
  } else if (f.dtype == Dtype::kFp8E5M2 && exp_field == 31) {
    v = mantissa == 0 ? std::numeric_limits<float>::infinity()
                      : std::numeric_limits<float>::quiet_NaN();
  } else if (exp_field == 0) {
    v = std::ldexp(static_cast<float>(mantissa), f.emin - f.mbits);
  } else {
    v = std::ldexp(static_cast<float>((1u << f.mbits) + mantissa),
                   static_cast<int>(exp_field) - f.bias - f.mbits);
  }
  return negative ? -v : v;
}

float QuantizeFp8Value(float v, const FloatFormat& f) {
  if (std::isnan(v)) return v;
  const float clamped = v < -f.max_norm ? -f.max_norm : (v > f.max_norm ? f.max_norm : v);
  return DecodeFp8(EncodeFp8(clamped, f), f);
}

float QuantizeFloatElement(float v, const FloatFormat& f) {
  return f.is_fp8 ? QuantizeFp8Value(v, f) : QuantizeMiniFloatValue(v, f);
}

uint8_t EncodeMiniFloat(float grid_value, const FloatFormat& f) {
  const int width = f.ebits + f.mbits;
  const uint8_t sign = std::signbit(grid_value) ? static_cast<uint8_t>(1u << width) : 0;
  if (std::isnan(grid_value)) return 0;
  const float a = std::min(std::fabs(grid_value), f.max_norm);
  if (a == 0.0f) return sign;
  const int e = std::ilogb(a);
  uint32_t magnitude;
  if (e < f.emin) {
    magnitude = static_cast<uint32_t>(std::ldexp(a, f.mbits - f.emin));
  } else {
    magnitude = (static_cast<uint32_t>(e + f.bias) << f.mbits) |
                (static_cast<uint32_t>(std::ldexp(a, f.mbits - e)) - (1u << f.mbits));
  }
  return static_cast<uint8_t>(sign | magnitude);
}

float DecodeMiniFloat(uint8_t code, const FloatFormat& f) {
  const int width = f.ebits + f.mbits;
  const bool negative = ((code >> width) & 1) != 0;
  const uint32_t magnitude = code & ((1u << width) - 1);
  const uint32_t exp_field = magnitude >> f.mbits;
  const uint32_t mantissa = magnitude & ((1u << f.mbits) - 1);
  const float v = exp_field == 0
                      ? std::ldexp(static_cast<float>(mantissa), f.emin - f.mbits)
                      : std::ldexp(static_cast<float>((1u << f.mbits) + mantissa),
                                   static_cast<int>(exp_field) - f.bias - f.mbits);
  return negative ? -v : v;
}

float Log2AsFloat32(float x) {
  if (std::isnan(x) || x < 0.0f) return std::numeric_limits<float>::quiet_NaN();
  if (x == 0.0f) return -std::numeric_limits<float>::infinity();
  if (std::isinf(x)) return std::numeric_limits<float>::infinity();
  return static_cast<float>(std::log2(static_cast<double>(x)));
}

float Pow2(float e) {
  if (std::isnan(e)) return e;
  if (e > 200.0f) return std::numeric_limits<float>::infinity();
  if (e < -200.0f) return 0.0f;
  const int k = static_cast<int>(e);
  if (k >= -126 && k <= 127) return BitsToFloat(static_cast<uint32_t>(k + 127) << 23);  // normal
  return std::ldexp(1.0f, k);  // subnormal, zero or infinite results
}

}  // namespace quarry::numerics::ref
