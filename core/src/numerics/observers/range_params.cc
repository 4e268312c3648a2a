// Statistics shared by the observers and Quark's parameter formulas (calculate_qparams).
#include <ATen/Parallel.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "numerics/observers/observers.h"
#include "numerics/reference/block_formats.h"
#include "numerics/reference/fp_elements.h"
#include "numerics/reference/int_grid.h"

namespace quarry::numerics {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// NaN-propagating min / max (torch.aminmax, torch.max). Between +0 and -0, -0 is the smaller:
// the result does not depend on the order of the elements (which torch leaves unspecified).
float NanMin(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return kNaN;
  if (a == b) return std::signbit(a) ? a : b;
  return b < a ? b : a;
}
float NanMax(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return kNaN;
  if (a == b) return std::signbit(a) ? b : a;
  return b > a ? b : a;
}

// Calls fn(param_index, element_index) for every element, walking [O, C, I] without divisions.
template <typename Fn>
void ForEachElement(const Layout& l, Fn&& fn) {
  int64_t i = 0;
  for (int64_t o = 0; o < l.outer; ++o) {
    for (int64_t c = 0; c < l.channels; ++c) {
      for (int64_t n = 0; n < l.inner; ++n, ++i) {
        int64_t p = 0;
        if (l.qscheme == QSchemeType::kPerChannel) {
          p = c;
        } else if (l.qscheme == QSchemeType::kPerGroup) {
          p = (o * l.groups + c / l.group) * l.inner + n;
        }
        fn(p, i);
      }
    }
  }
}

float AmaxOf(float min, float max) {
  return NanMax(std::fabs(NanMin(min, 0.0f)), std::fabs(NanMax(max, 0.0f)));
}

// Order-preserving int32 key of a float's bits (-0 below +0); its own inverse.
inline int32_t OrderedKey(int32_t bits) { return bits ^ ((bits >> 31) & 0x7FFFFFFF); }

// min / max of n > 0 contiguous floats with NanMin / NanMax's semantics (any NaN makes both NaN;
// -0 is below +0), branch-free on integer keys so the loop vectorises. Equal to folding NanMin /
// NanMax from +-Inf over the run (tests/numerics/observer_test.cc covers the observers).
void RunMinMax(const float* x, int64_t n, float* out_min, float* out_max) {
  int32_t kmin = std::numeric_limits<int32_t>::max(), kmax = std::numeric_limits<int32_t>::min();
  uint32_t nan = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t b = std::bit_cast<uint32_t>(x[i]);
    const int32_t k = OrderedKey(static_cast<int32_t>(b));
    kmin = k < kmin ? k : kmin;
    kmax = k > kmax ? k : kmax;
    nan |= static_cast<uint32_t>((b & 0x7FFFFFFFu) > 0x7F800000u);
  }
  if (nan) {
    *out_min = *out_max = kNaN;
    return;
  }
  *out_min = std::bit_cast<float>(static_cast<uint32_t>(OrderedKey(kmin)));
  *out_max = std::bit_cast<float>(static_cast<uint32_t>(OrderedKey(kmax)));
}

}  // namespace

Range ComputeRange(const Layout& layout, const at::Tensor& x) {
  const int64_t np = layout.num_params();
  Range r{at::full({np}, std::numeric_limits<float>::infinity(), at::kFloat),
          at::full({np}, -std::numeric_limits<float>::infinity(), at::kFloat)};
  float* mn = r.min.data_ptr<float>();
  float* mx = r.max.data_ptr<float>();
  const float* xs = x.data_ptr<float>();
  // Fast path: every parameter covers one contiguous run (per-tensor; per-channel on the first
  // axis; per-group along the last axis): threaded, vectorised runs.
  int64_t run = 0;
  if (layout.numel() > 0) {
    if (layout.qscheme == QSchemeType::kPerTensor) run = layout.numel();
    if (layout.qscheme == QSchemeType::kPerChannel && layout.outer == 1) run = layout.inner;
    if (layout.qscheme == QSchemeType::kPerGroup && layout.inner == 1 &&
        layout.channels % layout.group == 0)
      run = layout.group;
  }
  if (run > 0 && run * np == layout.numel()) {
    at::parallel_for(0, np, std::max<int64_t>(1, (int64_t{1} << 16) / run), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) RunMinMax(xs + p * run, run, mn + p, mx + p);
    });
    return r;
  }
  ForEachElement(layout, [&](int64_t p, int64_t i) {
    mn[p] = NanMin(mn[p], xs[i]);
    mx[p] = NanMax(mx[p], xs[i]);
  });
  return r;
}

at::Tensor ComputeAbsMax(const Layout& layout, const at::Tensor& x, bool nan_to_zero) {
  at::Tensor amax = at::zeros({layout.num_params()}, at::kFloat);
  float* a = amax.data_ptr<float>();
  const float* xs = x.data_ptr<float>();
  ForEachElement(layout, [&](int64_t p, int64_t i) {
    const float v = nan_to_zero ? ref::NanToZero(xs[i]) : xs[i];
    a[p] = NanMax(a[p], std::fabs(v));
  });
  return amax;
}

QuantParams ParamsFromRange(const QuantPlan& plan, const at::Tensor& min_t, const at::Tensor& max_t,
                            at::IntArrayRef param_shape, std::optional<float> first_level_max) {
  const int64_t n = min_t.numel();
  const float* mn = min_t.data_ptr<float>();
  const float* mx = max_t.data_ptr<float>();
  at::Tensor scale = at::empty({n}, at::kFloat);
  float* s = scale.data_ptr<float>();
  QuantParams params;

  if (plan.family == Family::kInt) {
    at::Tensor zp = at::empty({n}, at::kFloat);
    float* z = zp.data_ptr<float>();
    for (int64_t p = 0; p < n; ++p) {
      const ref::IntParams ip =
          plan.pof2 ? ref::Pof2ParamsFromMinMax(mn[p], mx[p], plan.qmin, plan.qmax, plan.symmetric)
                    : ref::IntParamsFromMinMax(mn[p], mx[p], plan.qmin, plan.qmax, plan.symmetric,
                                               plan.float_zero_point);
      s[p] = ip.scale;
      z[p] = ip.zero_point;
    }
    // Quark's pow2 observers: symmetric uint8 moves zero point 127 to 128 (per channel only when
    // every channel has 127).
    if (plan.pof2 && plan.symmetric && plan.element == Dtype::kUint8 && n > 0 &&
        std::all_of(z, z + n, [](float v) { return v == 127.0f; })) {
      std::fill(z, z + n, 128.0f);
    }
    if (plan.exact_float16_min)
      for (int64_t p = 0; p < n; ++p) s[p] = ref::Float16ScaleWithExactMin(s[p], z[p]);
    params.scale = RoundScaleStorage(plan, scale).reshape(param_shape);
    params.zero_point = (plan.float_zero_point ? zp : zp.to(at::kInt)).reshape(param_shape);
    return params;
  }

  const FloatFormat* f = plan.format;
  if (plan.family == Family::kMx) {
    for (int64_t p = 0; p < n; ++p) {
      s[p] = ref::MxScale(AmaxOf(mn[p], mx[p]), plan.mx_mbits, plan.mx_emax, plan.mode);
    }
  } else if (plan.scale_format == ScaleFormat::kE4M3) {
    // Two-level scale (NVFP4-style): scale = e4m3(amax/qmax * t) / t, t = 448 * qmax / max(amax).
    // Quark computes qmax / global_amax as reciprocal(global_amax) * qmax. A tensor of zeros makes
    // Quark's t infinite and every scale NaN; Quarry gives scale 0 (used as eps, as for 0 scales).
    const FloatFormat* e4m3 = FloatFormatOf(Dtype::kFp8E4M3);
    float global_amax = 0.0f;
    for (int64_t p = 0; p < n; ++p) global_amax = NanMax(global_amax, AmaxOf(mn[p], mx[p]));
    const float two_level = 448.0f * ((1.0f / global_amax) * f->max_norm);
    for (int64_t p = 0; p < n; ++p) {
      const float local = AmaxOf(mn[p], mx[p]) / f->max_norm;
      s[p] = global_amax == 0.0f
                 ? 0.0f
                 : ref::DecodeFp8(ref::EncodeFp8(local * two_level, *e4m3), *e4m3) / two_level;
    }
  } else {
    const float divisor = first_level_max ? static_cast<float>(static_cast<double>(*first_level_max) *
                                                               static_cast<double>(f->max_norm))
                                          : f->max_norm;
    for (int64_t p = 0; p < n; ++p) {
      const float v = AmaxOf(mn[p], mx[p]) / divisor;
      s[p] = v == 0.0f ? kFloat32Eps : v;
    }
  }
  params.scale = RoundScaleStorage(plan, scale).reshape(param_shape);
  return params;
}

}  // namespace quarry::numerics
