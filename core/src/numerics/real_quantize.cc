// Real quantization (Quantize -> packed codes + parameters) and Dequantize.
//
// Rounding: codes use the fake-quant rounding q = clamp(round(x / s) + zp) (NOT Quark's
// real_quantize, which rounds round(x / s + zp) and differs from its own fake quantization on exact
// ties when zp is odd), so that Dequantize(Quantize(x)) == FakeQuantize(x) bit for bit and a
// deployed model computes what calibration saw. Exceptions, all documented in quantize.h:
// - zero_point_type float32: fake quantization's q = round(x / s) + zp is not an integer, so codes
//   use Quark's real_quantize formula clamp(round(x / s + zp)) and dequantize to (q - zp) * s.
// - values that have no code: NaN in integer formats (stored as the zero point, i.e. 0), NaN in
//   fp4/fp6 (code 0) and +-Inf in fp4/fp6 (stored as +-max); MX6/MX9 blocks with exponent 127
//   whose clamp bound FLT_MAX / s is not an integer (the code is rounded). (BFP16 maps NaN/Inf
//   to 0 itself; MX6/MX9 have a NaN code.)
// - MX scales must be E8M0-representable powers of two (2^-127 .. 2^127, or NaN).
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "numerics/code_packing.h"
#include "numerics/fake_quantize.h"
#include "numerics/kernels/kernels.h"
#include "numerics/real_quantize.h"
#include "numerics/reference/block_formats.h"
#include "numerics/reference/fp_elements.h"
#include "numerics/reference/int_grid.h"
#include "quarry/status.h"

namespace quarry {
namespace numerics {
namespace {

CodeStorage StorageOf(const QuantPlan& plan) {
  switch (plan.family) {
    case Family::kInt:
      switch (plan.element) {
        case Dtype::kInt4: case Dtype::kUint4: return CodeStorage::kInt4;
        case Dtype::kInt3: return CodeStorage::kInt3;
        case Dtype::kInt2: return CodeStorage::kInt2;
        case Dtype::kInt8: return CodeStorage::kInt8;
        case Dtype::kUint8: return CodeStorage::kUint8;
        case Dtype::kInt16: case Dtype::kUint16: return CodeStorage::kInt16;
        default: return CodeStorage::kInt32;
      }
    case Family::kFloat:
    case Family::kMx:
      if (plan.format == nullptr) return CodeStorage::kInt8;  // MX int8
      if (plan.format->is_fp8) return CodeStorage::kUint8;
      return plan.format->dtype == Dtype::kFp4 ? CodeStorage::kFp4 : CodeStorage::kFp6;
    case Family::kMx6Mx9: return plan.quant_bit == packing::kMx6QuantBit ? CodeStorage::kInt8
                                                                         : CodeStorage::kInt16;
    case Family::kBfp16: return CodeStorage::kInt8;
    case Family::kCast: break;
  }
  return CodeStorage::kInt32;
}

float EffectiveFloatScale(float s) { return s == 0.0f ? kFloat32Eps : s; }

// E8M0 byte of an MX scale; error when the scale is not an exact power of two in range.
absl::StatusOr<uint8_t> E8M0Byte(float scale, int64_t block) {
  if (std::isnan(scale)) return packing::kE8M0NaN;
  int exponent = 0;
  const float mantissa = std::frexp(scale, &exponent);  // scale = mantissa * 2^exponent
  if (scale > 0.0f && std::isfinite(scale) && mantissa == 0.5f &&
      packing::E8M0Representable(exponent - 1)) {
    return packing::E8M0FromExponent(exponent - 1);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "MX scale ", scale, " of block ", block,
      " is not a power of two in [2^-127, 2^127] and cannot be stored as E8M0"));
}

float E8M0Value(uint8_t byte) {
  if (byte == packing::kE8M0NaN) return std::numeric_limits<float>::quiet_NaN();
  return ref::Pow2(static_cast<float>(packing::E8M0ToExponent(byte)));
}

// Element codes (int32, logical shape of x) and the parameters to store. When the fast kernel
// covers the plan and layout it sets *packed_out to the packed codes (PackCodes' layout) and
// returns an undefined tensor.
absl::StatusOr<at::Tensor> ComputeCodes(const QuantPlan& plan, const Layout& layout,
                                        const at::Tensor& x, const FlatParams& params,
                                        at::Tensor* stored_scale, at::Tensor* packed_out) {
  const int64_t n = x.numel();
  const float* xs = x.data_ptr<float>();
  const float* s = params.scale.data_ptr<float>();
  const float* zp = params.zero_point.defined() ? params.zero_point.data_ptr<float>() : nullptr;
  const int64_t np = layout.num_params();
  at::Tensor scale_out = at::empty({np}, at::kFloat);
  float* so = scale_out.data_ptr<float>();
  for (int64_t p = 0; p < np; ++p) {
    so[p] = (plan.family == Family::kFloat || plan.family == Family::kMx) ? EffectiveFloatScale(s[p])
                                                                            : s[p];
  }
  if (plan.family == Family::kMx) {
    at::Tensor bytes = at::empty({np}, at::kByte);
    for (int64_t p = 0; p < np; ++p) {
      QUARRY_ASSIGN_OR_RETURN(bytes.data_ptr<uint8_t>()[p], E8M0Byte(so[p], p));
    }
    *stored_scale = bytes;
  } else {
    *stored_scale = scale_out;
  }
  if (plan.family == Family::kMx6Mx9) {
    for (int64_t p = 0; p < np; ++p) {
      if (!(std::isfinite(s[p]) && s[p] > 0.0f)) {
        return absl::InvalidArgumentError(absl::StrCat("MX block scale ", s[p], " of block ", p,
                                                       " is not a positive power of two"));
      }
    }
  }

  // Fast path (one threaded pass, codes written packed) for the formats and layouts it covers.
  if (n > 0) {
    const at::Tensor fast_scale = plan.family == Family::kInt ? params.scale : scale_out;
    at::Tensor packed = kernels::FastCodes(plan, layout, x, fast_scale, params.zero_point);
    if (packed.defined()) {
      *packed_out = std::move(packed);
      return at::Tensor();
    }
  }
  at::Tensor codes = at::empty(layout.x_shape, at::kInt);
  int32_t* c = codes.data_ptr<int32_t>();
  const float qmin = static_cast<float>(plan.qmin), qmax = static_cast<float>(plan.qmax);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = layout.ParamIndex(i);
    switch (plan.family) {
      case Family::kInt: {
        const float z = zp ? zp[p] : 0.0f;
        float q;
        if (plan.float_zero_point) {  // Quark's real_quantize rounding (see the file comment)
          q = ref::RoundValue(xs[i] * (1.0f / ref::EffectiveIntScale(s[p])) + z, plan.round);
          q = q < qmin ? qmin : (q > qmax ? qmax : q);
        } else {
          q = ref::QuantizeIntValue(xs[i], s[p], z, qmin, qmax, plan.round);
        }
        c[i] = std::isnan(q) ? static_cast<int32_t>(z)
                             : static_cast<int32_t>(static_cast<int64_t>(q));
        break;
      }
      case Family::kFloat:
      case Family::kMx: {
        if (plan.format == nullptr) {  // MX int8: int8 grid at scale / 64
          const float q = ref::QuantizeIntValue(xs[i], so[p] / 64.0f, 0.0f, -127.0f, 127.0f,
                                                RoundType::kHalfEven);
          c[i] = std::isnan(q) ? 0 : static_cast<int32_t>(q);
        } else {
          const float grid = ref::QuantizeFloatElement(xs[i] / so[p], *plan.format);
          c[i] = plan.format->is_fp8 ? ref::EncodeFp8(grid, *plan.format)
                                     : ref::EncodeMiniFloat(grid, *plan.format);
        }
        break;
      }
      case Family::kMx6Mx9: {
        const int64_t ch = (i / layout.inner) % layout.channels;
        const int64_t partner_ch = (ch % 2 == 0) ? ch + 1 : ch - 1;
        const float partner =
            partner_ch < layout.channels ? xs[i + (partner_ch - ch) * layout.inner] : 0.0f;
        const ref::Mx6Mx9Value v =
            ref::QuantizeMx6Mx9Element(xs[i], partner, std::ilogb(s[p]), plan.quant_bit);
        const float fine = std::nearbyint(v.q) * static_cast<float>(v.d == 0 ? 2 : 1);
        const int width = plan.quant_bit == packing::kMx6QuantBit ? 8 : 16;
        c[i] = std::isnan(fine) ? packing::SignMagnitudeNaN(width)
                                : packing::SignMagnitudeCode(std::signbit(fine),
                                                             static_cast<int32_t>(std::fabs(fine)), width);
        break;
      }
      case Family::kBfp16: {
        const float q = ref::QuantizeIntValue(ref::NanToZero(xs[i]), s[p], 0.0f, -128.0f, 127.0f,
                                              RoundType::kHalfEven);
        c[i] = static_cast<int32_t>(q);
        break;
      }
      case Family::kCast:
        break;
    }
  }
  return codes;
}

}  // namespace

absl::StatusOr<at::Tensor> UnpackedCodes(const QuantizedTensor& q, const QuantizationSpec& spec) {
  QUARRY_ASSIGN_OR_RETURN(const QuantPlan plan, MakePlan(spec));
  if (plan.family == Family::kCast) return absl::InvalidArgumentError("casts have no codes");
  const int64_t last = q.shape.empty() ? 1 : q.shape.back();
  QUARRY_ASSIGN_OR_RETURN(at::Tensor codes, UnpackCodes(q.data.cpu(), StorageOf(plan), last, q.order,
                                                        plan.element != Dtype::kUint4));
  if (plan.element == Dtype::kUint16) codes = codes.bitwise_and(0xFFFF);
  return codes.reshape(q.shape);
}

}  // namespace numerics

absl::StatusOr<QuantizedTensor> Quantize(const at::Tensor& x, const QuantizationSpec& spec,
                                         const QuantParams& params, PackOrder order) {
  using namespace numerics;  // NOLINT
  QUARRY_ASSIGN_OR_RETURN(const QuantPlan plan, MakePlan(spec));
  QUARRY_RETURN_IF_ERROR(CheckInput(x));
  return CatchExceptions("Quantize", [&]() -> absl::StatusOr<QuantizedTensor> {
    QuantizedTensor q;
    q.dtype = plan.family == Family::kMx ? plan.element : spec.dtype;
    q.shape = x.sizes().vec();
    q.order = order;
    q.pack_axis = x.dim() == 0 ? -1 : x.dim() - 1;
    if (plan.family == Family::kCast) {
      q.data = x.to(plan.element == Dtype::kBfloat16 ? at::kBFloat16 : at::kHalf).contiguous();
      return q;
    }
    QUARRY_ASSIGN_OR_RETURN(const Layout layout, MakeLayout(plan, x.sizes()));
    QUARRY_ASSIGN_OR_RETURN(const FlatParams flat, FlattenParams(plan, layout, params));
    const at::Tensor x32 = x.to(at::kCPU, at::kFloat).contiguous();
    at::Tensor stored_scale;
    at::Tensor packed;
    QUARRY_ASSIGN_OR_RETURN(at::Tensor codes,
                            ComputeCodes(plan, layout, x32, flat, &stored_scale, &packed));
    if (packed.defined()) {
      q.data = std::move(packed);
    } else {
      if (codes.dim() == 0) codes = codes.reshape({1});
      q.data = PackCodes(codes, StorageOf(plan), order);
    }
    q.params.scale = layout.qscheme == QSchemeType::kPerTensor
                         ? stored_scale.reshape({})
                         : stored_scale.reshape(layout.param_shape);
    if (plan.has_zero_point()) {
      at::Tensor zp = flat.zero_point.defined() ? flat.zero_point : at::zeros({layout.num_params()});
      zp = plan.float_zero_point ? zp : zp.to(at::kInt);
      q.params.zero_point = layout.qscheme == QSchemeType::kPerTensor ? zp.reshape({})
                                                                      : zp.reshape(layout.param_shape);
    }
    return q;
  });
}

absl::StatusOr<at::Tensor> Dequantize(const QuantizedTensor& q, const QuantizationSpec& spec) {
  using namespace numerics;  // NOLINT
  QUARRY_ASSIGN_OR_RETURN(const QuantPlan plan, MakePlan(spec));
  return CatchExceptions("Dequantize", [&]() -> absl::StatusOr<at::Tensor> {
    if (plan.family == Family::kCast) return q.data.to(at::kFloat).reshape(q.shape);
    QUARRY_ASSIGN_OR_RETURN(const Layout layout, MakeLayout(plan, q.shape));
    const int64_t last = q.shape.empty() ? 1 : q.shape.back();
    const bool is_signed = plan.element != Dtype::kUint4;
    QUARRY_ASSIGN_OR_RETURN(at::Tensor codes,
                            UnpackCodes(q.data.cpu(), StorageOf(plan), last, q.order, is_signed));
    codes = codes.contiguous();
    const int64_t np = layout.num_params();
    if (!q.params.scale.defined() || q.params.scale.numel() != np) {
      return absl::InvalidArgumentError(absl::StrCat("quantized tensor has ",
                                                     q.params.scale.defined() ? q.params.scale.numel() : 0,
                                                     " scales; expected ", np));
    }
    at::Tensor scale;
    if (plan.family == Family::kMx) {
      if (q.params.scale.scalar_type() != at::kByte) {
        return absl::InvalidArgumentError("MX scales must be uint8 E8M0 bytes");
      }
      const at::Tensor bytes = q.params.scale.cpu().contiguous().reshape({np});
      scale = at::empty({np}, at::kFloat);
      for (int64_t p = 0; p < np; ++p) {
        scale.data_ptr<float>()[p] = E8M0Value(bytes.data_ptr<uint8_t>()[p]);
      }
    } else {
      scale = q.params.scale.to(at::kCPU, at::kFloat).contiguous().reshape({np});
    }
    at::Tensor zp;
    if (plan.has_zero_point() && q.params.zero_point.defined()) {
      zp = q.params.zero_point.to(at::kCPU, at::kFloat).contiguous().reshape({np});
    }
    at::Tensor y = at::empty(q.shape, at::kFloat);
    float* ys = y.data_ptr<float>();
    const int32_t* c = codes.data_ptr<int32_t>();
    const float* s = scale.data_ptr<float>();
    const float* z = zp.defined() ? zp.data_ptr<float>() : nullptr;
    for (int64_t i = 0; i < layout.numel(); ++i) {
      const int64_t p = layout.ParamIndex(i);
      int32_t code = c[i];
      switch (plan.family) {
        case Family::kInt:
          if (plan.element == Dtype::kUint16) code &= 0xFFFF;
          ys[i] = ref::DequantizeIntValue(static_cast<float>(code), s[p], z ? z[p] : 0.0f);
          break;
        case Family::kFloat:
        case Family::kMx:
          if (plan.format == nullptr) {
            ys[i] = ref::DequantizeIntValue(static_cast<float>(code), s[p] / 64.0f, 0.0f);
          } else {
            const float v = plan.format->is_fp8
                                ? ref::DecodeFp8(static_cast<uint8_t>(code), *plan.format)
                                : ref::DecodeMiniFloat(static_cast<uint8_t>(code), *plan.format);
            ys[i] = v * EffectiveFloatScale(s[p]);
          }
          break;
        case Family::kMx6Mx9: {
          const int width = plan.quant_bit == packing::kMx6QuantBit ? 8 : 16;
          const int32_t m = packing::SignMagnitudeValue(code, width);
          const float magnitude = m == packing::SignMagnitudeNaN(width)
                                      ? std::numeric_limits<float>::quiet_NaN()
                                      : static_cast<float>(m);
          const float fine = packing::SignMagnitudeNegative(code, width) ? -magnitude : magnitude;
          ys[i] = fine * ref::Pow2(static_cast<float>(std::ilogb(s[p]) - plan.quant_bit + 1));
          break;
        }
        case Family::kBfp16:
          ys[i] = ref::DequantizeIntValue(static_cast<float>(code), s[p], 0.0f);
          break;
        case Family::kCast:
          break;
      }
    }
    return y;
  });
}

}  // namespace quarry
