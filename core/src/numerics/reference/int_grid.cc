#include "numerics/reference/int_grid.h"

#include <c10/util/Half.h>

#include <cmath>
#include <limits>

#include "numerics/formats.h"
#include "numerics/reference/fp_elements.h"

namespace quarry::numerics::ref {
namespace {

// torch.max / torch.maximum elementwise: NaN wins.
float NanMax(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<float>::quiet_NaN();
  return a > b ? a : b;
}
float NanMin(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<float>::quiet_NaN();
  return a < b ? a : b;
}
// float -> int32 as torch's .to(torch.int) (truncation); NaN and out-of-range values, undefined in
// C++ and in torch, map to 0 / the nearest int32.
int32_t TruncToInt32(float v) {
  if (std::isnan(v)) return 0;
  if (v >= 2147483647.0f) return std::numeric_limits<int32_t>::max();
  if (v <= -2147483648.0f) return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(v);
}

}  // namespace

float RoundValue(float v, RoundType round) {
  switch (round) {
    case RoundType::kHalfEven: return std::nearbyint(v);
    case RoundType::kRound: return std::round(v);
    case RoundType::kFloor: return std::floor(v);
  }
  return std::nearbyint(v);
}

namespace {
float ToHalfAndBack(float v) { return static_cast<float>(c10::Half(v)); }
}  // namespace

float Float16ScaleWithExactMin(float scale, float zero_point) {
  const float h = ToHalfAndBack(scale);
  if (zero_point == 0.0f || !std::isfinite(scale) || scale == 0.0f) return h;
  for (int bits = 11; bits >= 1; --bits) {
    int e = 0;
    const float m = std::frexp(scale, &e);  // |m| in [0.5, 1)
    const float r = std::ldexp(std::nearbyint(std::ldexp(m, bits)), e - bits);  // half-even
    const float rh = ToHalfAndBack(r);
    if (rh != r) continue;  // outside float16's normal grid at this precision
    const float min = r * zero_point;  // exact in float32: at most 11 + 8 significant bits
    if (ToHalfAndBack(min) == min) return r;
  }
  return h;
}

float EffectiveIntScale(float scale) { return scale < kFloat32Tiny ? kFloat32Tiny : scale; }

float QuantizeIntValue(float x, float scale, float zero_point, float qmin, float qmax,
                       RoundType round) {
  const float inv_scale = 1.0f / EffectiveIntScale(scale);
  float q = RoundValue(x * inv_scale, round) + zero_point;
  if (q < qmin) q = qmin;  // comparisons with NaN are false: NaN passes through
  if (q > qmax) q = qmax;
  return q;
}

float DequantizeIntValue(float q, float scale, float zero_point) {
  return (q - zero_point) * EffectiveIntScale(scale);
}

float FakeQuantIntValue(float x, float scale, float zero_point, float qmin, float qmax,
                        RoundType round) {
  return DequantizeIntValue(QuantizeIntValue(x, scale, zero_point, qmin, qmax, round), scale,
                            zero_point);
}

IntParams IntParamsFromMinMax(float min, float max, int64_t qmin, int64_t qmax, bool symmetric,
                              bool float_zero_point) {
  const float min_neg = NanMin(min, 0.0f);
  const float max_pos = NanMax(max, 0.0f);
  const float levels = static_cast<float>(qmax - qmin);
  if (symmetric) {
    const float amax = NanMax(-min_neg, max_pos);
    const float scale = NanMax(amax / static_cast<float>(static_cast<double>(qmax - qmin) / 2),
                               kFloat32Eps);
    return {scale, 0.0f};
  }
  if (float_zero_point) {
    float scale = (max - min) / levels;
    scale = scale > kFloat32Eps ? scale : 1.0f;  // torch.where(scale > eps, scale, 1): NaN -> 1
    return {scale, (-min) / scale};
  }
  const float scale = NanMax((max_pos - min_neg) / levels, kFloat32Eps);
  int64_t zp = qmin - static_cast<int64_t>(TruncToInt32(std::nearbyint(min_neg / scale)));
  if (zp < qmin) zp = qmin;
  if (zp > qmax) zp = qmax;
  return {scale, static_cast<float>(zp)};
}

float Pof2Position(float scale) {
  const float clamped = scale < 0x1p-127f ? 0x1p-127f : (scale > 0x1p127f ? 0x1p127f : scale);
  return std::nearbyint(-Log2AsFloat32(clamped));
}

IntParams Pof2ParamsFromMinMax(float min, float max, int64_t qmin, int64_t qmax, bool symmetric) {
  float min_neg = NanMin(min, 0.0f);
  float max_pos = NanMax(max, 0.0f);
  if (symmetric) {
    const float abs_max = NanMax(std::fabs(min_neg), std::fabs(max_pos));
    min_neg = -abs_max;
    max_pos = abs_max;
  }
  const float range = max_pos - min_neg;
  const float scale0 = range != 0.0f ? range / static_cast<float>(qmax - qmin) : 1.0f;
  const int32_t zp0 = TruncToInt32(static_cast<float>(qmin) - min_neg / scale0);
  const float scale = Pow2(-Pof2Position(scale0));
  const float shifted = static_cast<float>(static_cast<int32_t>(qmin) - zp0) * scale;
  const float new_rmin = shifted < 0.0f ? shifted : 0.0f;
  const int32_t zp = TruncToInt32(std::nearbyint(static_cast<float>(qmin) - new_rmin / scale));
  return {scale, static_cast<float>(zp)};
}

}  // namespace quarry::numerics::ref
