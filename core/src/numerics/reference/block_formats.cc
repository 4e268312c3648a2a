#include "numerics/reference/block_formats.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

#include "numerics/reference/fp_elements.h"
#include "numerics/reference/int_grid.h"

namespace quarry::numerics::ref {

float MxScale(float amax, int mbits, int emax, MxScaleMode mode) {
  if (mode == MxScaleMode::kEven) {
    if (std::isnan(amax)) return amax;
    float rounded;
    if (amax == 0.0f) {
      rounded = kFloat32Tiny;  // 2^-126
    } else {
      // Add half an ulp at the element's precision; a carry bumps the exponent. Keep sign and
      // exponent bits only: a power of two (0 for small subnormals, Inf for Inf).
      const uint32_t bits = (FloatBits(amax) + (1u << (23 - mbits - 1))) & 0xFF800000u;
      rounded = BitsToFloat(bits);
    }
    // `rounded` is +0, a normal power of two or +Inf, so floor(log2(rounded)) is exact: -Inf,
    // its exponent, +Inf (read from the bits rather than computed with a logarithm).
    const uint32_t exponent_field = FloatBits(rounded) >> 23;
    float e = exponent_field == 0      ? -std::numeric_limits<float>::infinity()
              : exponent_field == 0xFF ? std::numeric_limits<float>::infinity()
                                       : static_cast<float>(static_cast<int>(exponent_field) - 127);
    e -= static_cast<float>(emax);
    e = std::min(std::max(e, -127.0f), 127.0f);
    return Pow2(e);
  }
  const float log2_amax = Log2AsFloat32(amax);
  const float e = (mode == MxScaleMode::kFloor ? std::floor(log2_amax) : std::ceil(log2_amax)) -
                  static_cast<float>(emax);
  const float scale = Pow2(e);
  return scale == 0.0f ? kFloat32Eps : scale;
}

int TExponent(float v) {
  const uint32_t bits = FloatBits(NanToZero(v));
  return static_cast<int>((bits >> 23) & 0xFF) - 127;
}

float NanToZero(float v) { return std::isfinite(v) ? v : 0.0f; }

Mx6Mx9Value QuantizeMx6Mx9Element(float x, float partner, int max_exp, int quant_bit) {
  const bool self_small = max_exp - TExponent(x) >= 1;
  const bool partner_small = max_exp - TExponent(partner) >= 1;
  const int d = (self_small && partner_small) ? 1 : 0;
  const float scale = Pow2(static_cast<float>(max_exp - d - quant_bit + 2));
  const double bound = std::min(std::ldexp(1.0, max_exp + 1) - static_cast<double>(scale),
                                static_cast<double>(FLT_MAX));
  const float qmax = static_cast<float>(bound) / scale;
  float q = std::nearbyint(x / scale);
  if (q < -qmax) q = -qmax;
  if (q > qmax) q = qmax;
  return {q, scale, d};
}

float FakeQuantMx6Mx9Element(float x, float partner, int max_exp, int quant_bit) {
  const Mx6Mx9Value v = QuantizeMx6Mx9Element(x, partner, max_exp, quant_bit);
  return v.q * v.scale;
}

float Bfp16ScaleFromAmax(float amax) {
  const float scale = Pow2(std::floor(Log2AsFloat32(amax)) - 6.0f);
  return scale == 0.0f ? kFloat32Eps : scale;
}

bool Bfp16Overflows(const float* block, int64_t n, float scale) {
  for (int64_t k = 0; k < n; ++k) {
    const float v =
        FakeQuantIntValue(block[k], scale, 0.0f, -129.0f, 128.0f, RoundType::kHalfEven) / scale;
    if (v >= 128.0f || v < -128.0f) return true;
  }
  return false;
}

}  // namespace quarry::numerics::ref
