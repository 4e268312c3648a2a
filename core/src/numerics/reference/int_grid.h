// Scalar reference for integer quantization: rounding, fake quantization of one value, and Quark's
// parameter formulas (UniformScalingObserver.calculate_int_quant_params and the power-of-two
// observers' compute_scale_zp). Every float operation is float32, in Quark's order, so results are
// bit-exact with Quark's PyTorch code. Stateless; thread-safe.
//
// NaN/Inf (documented deviation from Quark's per_tensor CPU kernel, which casts NaN/Inf through an
// undefined float->int64 conversion): NaN inputs give NaN outputs and +-Inf saturate to the ends of
// the grid, i.e. Quark's per_channel / per_group formula for every scheme.
#pragma once

#include <cstdint>

#include "quarry/quant_types.h"

namespace quarry::numerics::ref {

// round_method: kHalfEven is torch.round (nearest, ties to even), kRound rounds ties away from
// zero, kFloor rounds down. NaN and Inf pass through.
float RoundValue(float v, RoundType round);

// The scale an integer grid actually uses: Quark clamps it to >= float32 tiny (2^-126) before
// taking the reciprocal (fake_quantize_per_channel_affine). NaN stays NaN.
float EffectiveIntScale(float scale);

// q = clamp(round(x * (1/s)) + zp, qmin, qmax) with s = EffectiveIntScale(scale): the reciprocal is
// a float32 and x is multiplied by it (PyTorch's kernels; NOT x / s). zp is added after rounding
// (fake-quant rounding). With an integer zp, q is the integer code stored by real quantization.
float QuantizeIntValue(float x, float scale, float zero_point, float qmin, float qmax,
                       RoundType round);
// (q - zp) * s.
float DequantizeIntValue(float q, float scale, float zero_point);
// DequantizeIntValue(QuantizeIntValue(...)): Quark's fake quantization.
float FakeQuantIntValue(float x, float scale, float zero_point, float qmin, float qmax,
                        RoundType round);

// The float16 scale closest to `scale` (round to nearest even) such that scale * zero_point is
// exactly a float16 as well: with s = M * 2^e (M odd), s * z is a float16 iff M * odd(z) has at
// most 11 significant bits (and the product is in float16's range), so s keeps 11 significant
// bits when odd(z) = 1 and fewer otherwise (10 for z = 3, 9 for z = 5..7, ...). z = 0: plain
// float16 rounding. Falls back to float16(scale) when no rounding makes the product exact
// (subnormal products): the caller's exactness check reports those.
float Float16ScaleWithExactMin(float scale, float zero_point);

struct IntParams {
  float scale;
  float zero_point;  // integral unless float_zero_point
};

// calculate_int_quant_params for one (min, max) pair:
//   symmetric:          scale = max(-min(min,0), max(max,0)) / ((qmax - qmin) / 2), >= eps; zp 0
//   asymmetric int zp:  scale = (max(max,0) - min(min,0)) / (qmax - qmin), >= eps;
//                       zp = clamp(qmin - round_half_even(min(min,0) / scale), qmin, qmax)
//   asymmetric float zp: scale = (max - min) / (qmax - qmin), <= eps -> 1; zp = -min / scale
// NaN ranges give a NaN scale (and zp 0 where Quark's int cast would be undefined).
IntParams IntParamsFromMinMax(float min, float max, int64_t qmin, int64_t qmax, bool symmetric,
                              bool float_zero_point);

// The power-of-two observers' formula (PerTensorPowOf2MinMaxObserver._calculate_one_batch_...):
//   range including 0 (made symmetric +-absmax when symmetric); scale0 = range / (qmax - qmin)
//   (a zero range gives 1); zp0 = trunc(qmin - min / scale0); pos = round(-log2(clamp(scale0,
//   2^-127, 2^127))); scale = 2^-pos; zp = round(qmin - min((qmin - zp0) * scale, 0) / scale).
// The uint8-symmetric "zp 127 -> 128" rule is applied by the caller (it differs per scheme).
// Quark's per-channel variant divides a zero range by zero; Quarry uses 1 there as well.
IntParams Pof2ParamsFromMinMax(float min, float max, int64_t qmin, int64_t qmax, bool symmetric);

// -log2 exponent of a power-of-two scale, as the pow2 observers' _scale2pos.
float Pof2Position(float scale);

}  // namespace quarry::numerics::ref
