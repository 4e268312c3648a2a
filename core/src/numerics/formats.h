// Static facts about element formats that both the scalar references (reference/) and the fast
// kernels (kernels/) need: float element formats (fp8/fp6/fp4), Quark's get_dtype_params (MX emax
// and mantissa bits) and a float32 bit-cast helper. Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <cstring>

#include "quarry/quant_types.h"

namespace quarry::numerics {

// A sign-magnitude binary float format without Inf (and, except fp8, without NaN).
struct FloatFormat {
  Dtype dtype;
  int ebits;       // exponent bits
  int mbits;       // stored mantissa bits
  int bias;        // exponent bias 2^(ebits-1) - 1
  int emin;        // exponent of the smallest normal, 1 - bias
  float max_norm;  // largest finite magnitude (e4m3fn 448, e5m2 57344, e3m2 28, e2m3 7.5, e2m1 6)
  bool is_fp8;     // fp8 codes: -0 and NaN exist; fp4/fp6: Quark's kernel drops the sign of 0
};

// nullptr for dtypes that are not fp8_e4m3, fp8_e5m2, fp6_e3m2, fp6_e2m3 or fp4.
const FloatFormat* FloatFormatOf(Dtype dtype);

// Quark's get_dtype_params(dtype) for MX element types: (mbits, emax). fp4 (1, 2),
// fp6_e2m3 (3, 2), fp6_e3m2 (2, 4), fp8_e4m3 (3, 8), fp8_e5m2 (2, 15), int8 (8, 0).
// Returns false for other dtypes.
bool MxElementParams(Dtype element, int* mbits, int* emax);

inline uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}
inline float BitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

inline constexpr float kFloat32Eps = 1.1920928955078125e-07f;  // 2^-23, torch.finfo(float32).eps
inline constexpr float kFloat32Tiny = 1.1754943508222875e-38f;  // 2^-126, torch.finfo(float32).tiny

}  // namespace quarry::numerics
