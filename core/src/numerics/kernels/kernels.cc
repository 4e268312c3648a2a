// Fast fake-quantization kernels. The unit of work is a "run": contiguous elements that share one
// parameter (a group along the last axis, an MX block, a channel slice, or a chunk of a
// per-tensor tensor). Each run is reduced (dynamic), turned into parameters with the reference
// formulas, and quantized while it is in L1. Runs are spread over threads with at::parallel_for.
#include "numerics/kernels/kernels.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <bit>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "numerics/kernels/simd_elements.h"
#include "numerics/observers/observers.h"
#include "numerics/reference/block_formats.h"
#include "numerics/reference/fp_elements.h"
#include "numerics/reference/int_grid.h"

namespace quarry::numerics::kernels {
namespace {

// The element loops are compiled twice, for baseline x86-64 (SSE2) and for AVX2, and the
// dynamic loader picks the best at startup (GCC/Clang function multiversioning). Both clones run
// the same IEEE operations, so results are identical.
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define QUARRY_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define QUARRY_VECTOR_CLONES
#endif

constexpr int64_t kChunk = 16384;  // elements per per-tensor run / minimum work per task

// ----- Element loops -----
// The bodies are always inlined into the multiversioned batch functions below, so that every
// loop is compiled (and vectorized) once per instruction set.
#define QUARRY_INLINE inline __attribute__((always_inline))

// Integer grid over one run; falls back to the scalar reference when the grid is too wide for the
// magic-number rounding (zero points beyond +-2^22, int16/int32 ranges).
QUARRY_INLINE void IntRunBody(const float* __restrict x, float* __restrict y, int64_t n,
                              float scale, float zp, float qmin, float qmax) {
  const IntGrid g = MakeIntGrid(scale, zp, qmin, qmax);
  if (!MagicRoundingFits(g)) {
    for (int64_t i = 0; i < n; ++i) {
      y[i] = ref::FakeQuantIntValue(x[i], scale, zp, qmin, qmax, RoundType::kHalfEven);
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) y[i] = FakeQuantIntHalfEven(x[i], g, qmin, qmax);
}

// Whether 1/s is exact: s a normal power of two (every MX scale but 2^-127).
QUARRY_INLINE bool ExactReciprocal(float s) {
  const uint32_t b = std::bit_cast<uint32_t>(s);
  const uint32_t e = (b >> 23) & 0xFF;
  return (b & 0x807FFFFFu) == 0 && e >= 1 && e <= 254;
}

// Float element grid over one run: Q(x / s) * s (Quark divides by the scale). For a power-of-two
// scale with an exact reciprocal, x * (1/s) is the same correctly rounded quotient, and much
// cheaper than a division.
QUARRY_INLINE void FloatRunBody(const float* __restrict x, float* __restrict y, int64_t n,
                                float scale, const FloatGrid& g) {
  const float s = scale == 0.0f ? kFloat32Eps : scale;
  if (ExactReciprocal(s)) {
    const float inv = 1.0f / s;
    for (int64_t i = 0; i < n; ++i) y[i] = QuantizeFloatGrid(x[i] * inv, g) * s;
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = QuantizeFloatGrid(x[i] / s, g) * s;
  }
}

// min and max of a run (NaN anywhere -> NaN for both, as torch.aminmax; -0 orders below +0, as
// in the reference). Reduced on order-preserving int32 keys so the loop vectorizes.
QUARRY_INLINE void MinMaxBody(const float* __restrict x, int64_t n, float* out_min, float* out_max) {
  int32_t lo = std::numeric_limits<int32_t>::max();
  int32_t hi = std::numeric_limits<int32_t>::min();
  int32_t nan = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t bits = static_cast<int32_t>(std::bit_cast<uint32_t>(x[i]));
    const int32_t key = OrderedKey(bits);
    lo = key < lo ? key : lo;
    hi = key > hi ? key : hi;
    nan |= (bits & 0x7FFFFFFF) > 0x7F800000;
  }
  if (n == 0) {  // the empty range, as the reference's initial values
    *out_min = std::numeric_limits<float>::infinity();
    *out_max = -std::numeric_limits<float>::infinity();
    return;
  }
  if (nan) {
    *out_min = *out_max = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  *out_min = std::bit_cast<float>(static_cast<uint32_t>(OrderedKey(lo)));
  *out_max = std::bit_cast<float>(static_cast<uint32_t>(OrderedKey(hi)));
}

// ----- Runs of a layout -----

// Layouts whose parameters are constant over contiguous runs: per_tensor (chunks), per_channel
// with inner > 1, per_group with inner == 1. (Other layouts are transposed to rows first.)
struct Runs {
  int64_t count = 0;
  int64_t length = 0;  // nominal run length (the last run of a row may be shorter)
  // Run r: [begin, begin + len) of the data, parameter index param.
  int64_t begin(int64_t r) const { return row_stride ? (r / per_row) * row_stride + (r % per_row) * length : r * length; }
  int64_t len(int64_t r) const {
    if (!row_stride) return std::min(length, total - r * length);
    return std::min(length, row_stride - (r % per_row) * length);
  }
  int64_t param(int64_t r) const { return param_mod ? r % param_mod : r; }
  int64_t row_stride = 0;  // per_group: elements per row (C)
  int64_t per_row = 1;     // per_group: runs per row (G)
  int64_t total = 0;       // per_tensor / per_channel: all elements
  int64_t param_mod = 0;   // per_channel: C (run (o, c) uses c); per_tensor: 1
};

Runs MakeRuns(const Layout& l) {
  Runs runs;
  if (l.qscheme == QSchemeType::kPerTensor) {
    runs.total = l.numel();
    runs.length = kChunk;
    runs.count = (runs.total + kChunk - 1) / kChunk;
    runs.param_mod = 1;
  } else if (l.qscheme == QSchemeType::kPerChannel) {  // requires inner > 1
    runs.total = l.numel();
    runs.length = l.inner;
    runs.count = l.outer * l.channels;
    runs.param_mod = l.channels;
  } else {  // per_group rows: [outer * inner rows, channels] with inner == 1
    runs.row_stride = l.channels;
    runs.length = l.group;
    runs.per_row = l.groups;
    runs.count = l.outer * l.inner * l.groups;
  }
  return runs;
}

// ----- Multiversioned batch functions: runs [rb, re) of a layout -----

QUARRY_VECTOR_CLONES
void ApplyIntRuns(const Runs& runs, int64_t rb, int64_t re, const float* x, float* y,
                  const float* scale, const float* zp, float qmin, float qmax) {
  for (int64_t r = rb; r < re; ++r) {
    const int64_t b = runs.begin(r), p = runs.param(r);
    IntRunBody(x + b, y + b, runs.len(r), scale[p], zp ? zp[p] : 0.0f, qmin, qmax);
  }
}

QUARRY_VECTOR_CLONES
void ApplyFloatRuns(const Runs& runs, int64_t rb, int64_t re, const float* x, float* y,
                    const float* scale, const FloatGrid& grid) {
  for (int64_t r = rb; r < re; ++r) {
    const int64_t b = runs.begin(r);
    FloatRunBody(x + b, y + b, runs.len(r), scale[runs.param(r)], grid);
  }
}

QUARRY_VECTOR_CLONES
void MinMaxRuns(const Runs& runs, int64_t rb, int64_t re, const float* x, float* mn, float* mx) {
  for (int64_t r = rb; r < re; ++r) MinMaxBody(x + runs.begin(r), runs.len(r), &mn[r], &mx[r]);
}

// Dynamic integer quantization of runs: min/max, Quark's parameters, fake quantization.
struct IntRule {
  int64_t qmin, qmax;
  bool symmetric, float_zero_point;
};
QUARRY_VECTOR_CLONES
void FusedIntRuns(const Runs& runs, int64_t rb, int64_t re, const float* x, float* y,
                  const IntRule& rule, float* scale_out, float* zp_out) {
  const float qmin = static_cast<float>(rule.qmin), qmax = static_cast<float>(rule.qmax);
  for (int64_t r = rb; r < re; ++r) {
    const int64_t b = runs.begin(r), n = runs.len(r);
    float mn, mx;
    MinMaxBody(x + b, n, &mn, &mx);
    const ref::IntParams ip =
        ref::IntParamsFromMinMax(mn, mx, rule.qmin, rule.qmax, rule.symmetric, rule.float_zero_point);
    scale_out[r] = ip.scale;
    zp_out[r] = ip.zero_point;
    IntRunBody(x + b, y + b, n, ip.scale, ip.zero_point, qmin, qmax);
  }
}

// Dynamic float-element quantization of runs: amax, scale (float32 amax / max or E8M0), grid.
struct FloatRule {
  bool mx;
  int mbits, emax;
  MxScaleMode mode;
  float max_norm;
  FloatGrid grid;
};
QUARRY_VECTOR_CLONES
void FusedFloatRuns(const Runs& runs, int64_t rb, int64_t re, const float* x, float* y,
                    const FloatRule& rule, float* scale_out) {
  for (int64_t r = rb; r < re; ++r) {
    const int64_t b = runs.begin(r), n = runs.len(r);
    const float amax = std::bit_cast<float>(AbsMaxBits(x + b, n));
    float s;
    if (rule.mx) {
      s = ref::MxScale(amax, rule.mbits, rule.emax, rule.mode);
    } else {
      s = amax / rule.max_norm;
      s = s == 0.0f ? kFloat32Eps : s;
    }
    scale_out[r] = s;
    FloatRunBody(x + b, y + b, n, s, rule.grid);
  }
}

// ref::MxScale for kEven without calls: the rounded amax's exponent field read from its bits,
// minus emax, clamped to [-127, 127], as a power of two (2^-127 is the subnormal 0x00400000).
// amax is |x|'s maximum (never negative); NaN gives NaN, as the reference.
QUARRY_INLINE float MxScaleEven(float amax, int mbits, int emax) {
  const uint32_t a = std::bit_cast<uint32_t>(amax);
  const uint32_t rounded = a == 0 ? 0x00800000u : ((a + (1u << (23 - mbits - 1))) & 0xFF800000u);
  const int field = static_cast<int>(rounded >> 23);
  int e = field == 0 ? -127 : (field == 0xFF ? 127 : field - 127 - emax);
  e = e < -127 ? -127 : (e > 127 ? 127 : e);
  const uint32_t bits = e >= -126 ? static_cast<uint32_t>(e + 127) << 23 : 0x00400000u;
  return a > 0x7F800000u ? amax : std::bit_cast<float>(bits);
}

// FusedFloatRuns for OCP MX blocks of 32 in "even" mode, the common case: a constant block length
// lets the compiler unroll the reduction and the element loop.
QUARRY_VECTOR_CLONES
void FusedMx32Runs(const Runs& runs, int64_t rb, int64_t re, const float* x, float* y,
                   const FloatRule& rule, float* scale_out) {
  for (int64_t r = rb; r < re; ++r) {
    const int64_t b = runs.begin(r), n = runs.len(r);
    if (n != 32) {  // a shorter block at the end of a row
      const float amax = std::bit_cast<float>(AbsMaxBits(x + b, n));
      const float s = ref::MxScale(amax, rule.mbits, rule.emax, rule.mode);
      scale_out[r] = s;
      FloatRunBody(x + b, y + b, n, s, rule.grid);
      continue;
    }
    const float amax = std::bit_cast<float>(AbsMaxBits(x + b, 32));
    const float s = MxScaleEven(amax, rule.mbits, rule.emax);
    scale_out[r] = s;
    FloatRunBody(x + b, y + b, 32, s, rule.grid);
  }
}

// One row of a per_channel layout with the channel axis last: parameters vary along the row.
QUARRY_VECTOR_CLONES
void IntColumnsRow(const float* __restrict x, float* __restrict y, int64_t cols,
                   const float* __restrict scale, const float* __restrict inv,
                   const float* __restrict zp, const float* __restrict lo,
                   const float* __restrict hi, float qmin, float qmax) {
  for (int64_t c = 0; c < cols; ++c) {
    const IntGrid g{scale[c], inv[c], zp[c], lo[c], hi[c]};
    y[c] = FakeQuantIntHalfEven(x[c], g, qmin, qmax);
  }
}

QUARRY_VECTOR_CLONES
void FloatColumnsRow(const float* __restrict x, float* __restrict y, int64_t cols,
                     const float* __restrict scale, const FloatGrid& grid) {
  const FloatGrid g = grid;
  for (int64_t c = 0; c < cols; ++c) y[c] = QuantizeFloatGrid(x[c] / scale[c], g) * scale[c];
}


// Splits the runs over threads; fn(rb, re) processes runs [rb, re).
template <typename Fn>
void ParallelRuns(const Runs& runs, Fn&& fn) {
  const int64_t grain = std::max<int64_t>(1, kChunk / std::max<int64_t>(runs.length, 1));
  at::parallel_for(0, runs.count, grain, [&](int64_t rb, int64_t re) { fn(rb, re); });
}

// The layout of per_group rows: x moved to [outer * inner, channels].
Layout RowsLayout(const Layout& l) {
  Layout rows = l;
  rows.outer = l.outer * l.inner;
  rows.inner = 1;
  return rows;
}

bool IntFast(const QuantPlan& plan) {
  return plan.family == Family::kInt && plan.round == RoundType::kHalfEven &&
         (plan.qmax - plan.qmin) <= 65535;
}
bool FloatFast(const QuantPlan& plan) {
  return (plan.family == Family::kFloat || plan.family == Family::kMx) && plan.format != nullptr;
}

// Per-parameter element loop for the run-shaped layouts.
void ApplyRuns(const QuantPlan& plan, const Layout& l, const float* x, float* y, const float* scale,
               const float* zp) {
  const Runs runs = MakeRuns(l);
  if (plan.family == Family::kInt) {
    const float qmin = static_cast<float>(plan.qmin), qmax = static_cast<float>(plan.qmax);
    ParallelRuns(runs, [&](int64_t rb, int64_t re) {
      ApplyIntRuns(runs, rb, re, x, y, scale, zp, qmin, qmax);
    });
  } else {
    const FloatGrid grid = MakeFloatGrid(*plan.format);
    ParallelRuns(runs, [&](int64_t rb, int64_t re) { ApplyFloatRuns(runs, rb, re, x, y, scale, grid); });
  }
}

// per_channel with the channel axis last (inner == 1): parameters vary along each row.
void ApplyColumns(const QuantPlan& plan, const Layout& l, const float* x, float* y,
                  const float* scale, const float* zp) {
  const int64_t rows = l.outer, cols = l.channels;
  if (plan.family == Family::kInt) {
    const float qmin = static_cast<float>(plan.qmin), qmax = static_cast<float>(plan.qmax);
    std::vector<float> sc(cols), inv(cols), z(cols), lo(cols), hi(cols);
    bool fits = true;
    for (int64_t c = 0; c < cols; ++c) {
      sc[c] = ref::EffectiveIntScale(scale[c]);
      inv[c] = 1.0f / sc[c];
      z[c] = zp ? zp[c] : 0.0f;
      lo[c] = std::floor(qmin - z[c]) - 1.0f;
      hi[c] = std::ceil(qmax - z[c]) + 1.0f;
      fits = fits && std::fabs(lo[c]) < kMagicLimit && std::fabs(hi[c]) < kMagicLimit;
    }
    const int64_t grain = std::max<int64_t>(1, kChunk / std::max<int64_t>(cols, 1));
    at::parallel_for(0, rows, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const float* xr = x + r * cols;
        float* yr = y + r * cols;
        if (fits) {
          IntColumnsRow(xr, yr, cols, sc.data(), inv.data(), z.data(), lo.data(), hi.data(), qmin, qmax);
          continue;
        }
        for (int64_t c = 0; c < cols; ++c) {
          yr[c] = ref::FakeQuantIntValue(xr[c], scale[c], z[c], qmin, qmax, RoundType::kHalfEven);
        }
      }
    });
    return;
  }
  const FloatGrid g = MakeFloatGrid(*plan.format);
  std::vector<float> s(cols);
  for (int64_t c = 0; c < cols; ++c) s[c] = scale[c] == 0.0f ? kFloat32Eps : scale[c];
  const int64_t grain = std::max<int64_t>(1, kChunk / std::max<int64_t>(cols, 1));
  at::parallel_for(0, rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) FloatColumnsRow(x + r * cols, y + r * cols, cols, s.data(), g);
  });
}

// ----- Codes of real quantization (FastCodes) -----

// Float element codes of runs [rb, re): Q(x / s) as FloatRunBody computes it, then encoded.
// fp4 codes are packed in pairs inside each run (runs start and end on even offsets: checked by
// FastCodes).
QUARRY_VECTOR_CLONES
void FloatCodeRuns(const Runs& runs, int64_t rb, int64_t re, const float* x, uint8_t* out,
                   const float* scale, const FloatGrid& grid, const FloatCoder& coder, bool fp4) {
  constexpr int64_t kBlock = 256;
  uint8_t codes[kBlock];
  const FloatGrid g = grid;
  const FloatCoder c = coder;
  for (int64_t r = rb; r < re; ++r) {
    const int64_t b = runs.begin(r), n = runs.len(r);
    const float s = scale[runs.param(r)];
    const bool exact = ExactReciprocal(s);
    const float inv = 1.0f / s;
    for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
      const int64_t m = std::min(kBlock, n - j0);
      const float* xs = x + b + j0;
      if (exact) {
        for (int64_t k = 0; k < m; ++k) codes[k] = EncodeFloatGrid(QuantizeFloatGrid(xs[k] * inv, g), c);
      } else {
        for (int64_t k = 0; k < m; ++k) codes[k] = EncodeFloatGrid(QuantizeFloatGrid(xs[k] / s, g), c);
      }
      if (fp4) {
        uint8_t* o = out + (b + j0) / 2;
        for (int64_t k = 0; k < m / 2; ++k)
          o[k] = static_cast<uint8_t>((codes[2 * k] & 0xF) | ((codes[2 * k + 1] & 0xF) << 4));
      } else {
        std::memcpy(out + b + j0, codes, static_cast<size_t>(m));
      }
    }
  }
}

// Integer codes of runs [rb, re): clamp(round(x / s) + zp) as the reference, NaN -> zp.
QUARRY_VECTOR_CLONES
void IntCodeRuns(const Runs& runs, int64_t rb, int64_t re, const float* x, uint8_t* out,
                 const IntGrid* grids, float qmin, float qmax) {
  for (int64_t r = rb; r < re; ++r) {
    const int64_t b = runs.begin(r), n = runs.len(r);
    const IntGrid g = grids[runs.param(r)];
    const float* xs = x + b;
    uint8_t* o = out + b;
    for (int64_t k = 0; k < n; ++k) {
      const float q = QuantIntHalfEven(xs[k], g, qmin, qmax);
      o[k] = static_cast<uint8_t>(static_cast<int32_t>(q != q ? g.zp : q));
    }
  }
}

}  // namespace

bool HasFastPath(const QuantPlan& plan) { return IntFast(plan) || FloatFast(plan); }

bool HasFusedDynamicPath(const QuantPlan& plan) {
  if (plan.scale_rounding.has_value()) return false;
  const std::string& obs = plan.observer;
  const bool range_observer = obs == "PerTensorMinMaxObserver" || obs == "PerChannelMinMaxObserver" ||
                              obs == "PerGroupMinMaxObserver" || obs == "PerBlockMXObserver";
  if (!range_observer) return false;
  if (plan.family == Family::kInt) return IntFast(plan) && !plan.pof2;
  return FloatFast(plan) && plan.scale_format != ScaleFormat::kE4M3;
}

namespace {
// `out` when it can take the result in place (same shape as x, float32, contiguous, not x's
// storage), else a fresh tensor.
at::Tensor OutputFor(const at::Tensor& x, const at::Tensor* out) {
  if (out != nullptr && out->defined() && out->scalar_type() == at::kFloat && out->is_contiguous() &&
      out->sizes() == x.sizes() && !out->is_same(x) && out->data_ptr() != x.data_ptr())
    return *out;
  return at::empty_like(x);
}
}  // namespace

at::Tensor FakeQuantizeWithParams(const QuantPlan& plan, const Layout& layout, const at::Tensor& x,
                                  const at::Tensor& scale, const at::Tensor& zero_point,
                                  const at::Tensor* out) {
  if (!HasFastPath(plan)) return at::Tensor();
  const float* zp = zero_point.defined() ? zero_point.data_ptr<float>() : nullptr;
  if (layout.qscheme == QSchemeType::kPerChannel && layout.inner == 1) {
    at::Tensor y = OutputFor(x, out);
    ApplyColumns(plan, layout, x.data_ptr<float>(), y.data_ptr<float>(), scale.data_ptr<float>(), zp);
    return y;
  }
  if (layout.qscheme == QSchemeType::kPerGroup && layout.inner != 1) {
    const Layout rows = RowsLayout(layout);
    const at::Tensor xr = ToRows(x, layout);
    const at::Tensor sr = ParamsToRows(scale, layout);
    const at::Tensor zr = zero_point.defined() ? ParamsToRows(zero_point, layout) : at::Tensor();
    at::Tensor yr = at::empty_like(xr);
    ApplyRuns(plan, rows, xr.data_ptr<float>(), yr.data_ptr<float>(), sr.data_ptr<float>(),
              zr.defined() ? zr.data_ptr<float>() : nullptr);
    return FromRows(yr, layout);
  }
  at::Tensor y = OutputFor(x, out);
  ApplyRuns(plan, layout, x.data_ptr<float>(), y.data_ptr<float>(), scale.data_ptr<float>(), zp);
  return y;
}

bool FakeQuantizeDynamic(const QuantPlan& plan, const Layout& layout, const at::Tensor& x,
                         at::Tensor* y_out, QuantParams* params) {
  const at::Tensor out = *y_out;  // the caller's buffer, if any (OutputFor checks it)
  if (!HasFusedDynamicPath(plan)) return false;
  // Layouts whose parameters span several runs: reduce first, then apply.
  const bool fused = layout.qscheme == QSchemeType::kPerGroup ||
                     (layout.qscheme == QSchemeType::kPerChannel && layout.outer == 1 &&
                      layout.inner > 1);
  const bool int_family = plan.family == Family::kInt;
  const int64_t np = layout.num_params();
  at::Tensor scale = at::empty({np}, at::kFloat);
  at::Tensor zp = at::zeros({np}, at::kFloat);
  if (!fused) {
    // per_tensor / per_channel over several runs: a parallel reduction, then the apply kernels.
    at::Tensor mn = at::empty({np}, at::kFloat), mx = at::empty({np}, at::kFloat);
    if (layout.qscheme == QSchemeType::kPerTensor) {
      const Runs runs = MakeRuns(layout);
      std::vector<float> rmin(runs.count), rmax(runs.count);
      const float* xs = x.data_ptr<float>();
      ParallelRuns(runs, [&](int64_t rb, int64_t re) { MinMaxRuns(runs, rb, re, xs, rmin.data(), rmax.data()); });
      float lo = std::numeric_limits<float>::infinity(), hi = -lo;
      bool nan = false;
      for (int64_t r = 0; r < runs.count; ++r) {
        nan = nan || std::isnan(rmin[r]);
        lo = std::min(lo, rmin[r]);
        hi = std::max(hi, rmax[r]);
      }
      if (nan) lo = hi = std::numeric_limits<float>::quiet_NaN();
      mn.fill_(lo);
      mx.fill_(hi);
    } else {
      return false;  // per_channel spanning several runs: the observer's reduction is used
    }
    QuantParams p = ParamsFromRange(plan, mn, mx, layout.param_shape);
    at::Tensor s = p.scale.reshape({-1}).contiguous();
    at::Tensor z = p.zero_point.defined() ? p.zero_point.to(at::kFloat).reshape({-1}).contiguous()
                                          : at::Tensor();
    *y_out = FakeQuantizeWithParams(plan, layout, x, s, z, &out);
    *params = std::move(p);
    return true;
  }

  const Layout rows = layout.qscheme == QSchemeType::kPerGroup ? RowsLayout(layout) : layout;
  const at::Tensor xr = (layout.qscheme == QSchemeType::kPerGroup && layout.inner != 1)
                            ? ToRows(x, layout)
                            : x;
  // Rows of x itself (no ToRows copy): the caller's buffer can take the result directly.
  at::Tensor yr = xr.is_same(x) ? OutputFor(xr, &out) : at::empty_like(xr);
  const Runs runs = MakeRuns(rows);
  const float* xs = xr.data_ptr<float>();
  float* ys = yr.data_ptr<float>();
  float* s = scale.data_ptr<float>();
  float* z = zp.data_ptr<float>();
  if (int_family) {
    const IntRule rule{plan.qmin, plan.qmax, plan.symmetric, plan.float_zero_point};
    ParallelRuns(runs, [&](int64_t rb, int64_t re) { FusedIntRuns(runs, rb, re, xs, ys, rule, s, z); });
  } else {
    const FloatRule rule{plan.family == Family::kMx, plan.mx_mbits, plan.mx_emax, plan.mode,
                         plan.format->max_norm, MakeFloatGrid(*plan.format)};
    if (rule.mx && rule.mode == MxScaleMode::kEven && runs.length == 32)
      ParallelRuns(runs, [&](int64_t rb, int64_t re) { FusedMx32Runs(runs, rb, re, xs, ys, rule, s); });
    else
      ParallelRuns(runs, [&](int64_t rb, int64_t re) { FusedFloatRuns(runs, rb, re, xs, ys, rule, s); });
  }
  // Runs are numbered in rows order: for per_group that is [outer * inner, groups].
  if (layout.qscheme == QSchemeType::kPerGroup) {
    *y_out = layout.inner != 1 ? FromRows(yr, layout) : yr;
    scale = ParamsFromRows(scale.reshape({rows.outer, layout.groups}), layout);
    zp = ParamsFromRows(zp.reshape({rows.outer, layout.groups}), layout);
  } else {
    *y_out = yr;
    scale = scale.reshape(layout.param_shape);
    zp = zp.reshape(layout.param_shape);
  }
  params->scale = scale;
  if (int_family) params->zero_point = plan.float_zero_point ? zp : zp.to(at::kInt);
  return true;
}

at::Tensor FastCodes(const QuantPlan& plan, const Layout& layout, const at::Tensor& x,
                     const at::Tensor& scale, const at::Tensor& zero_point) {
  if (x.scalar_type() != at::kFloat || !x.is_contiguous() || x.dim() == 0) return {};
  if (layout.qscheme == QSchemeType::kPerChannel && layout.inner == 1) return {};
  if (layout.qscheme == QSchemeType::kPerGroup && layout.inner != 1) return {};
  const int64_t np = layout.num_params();
  if (scale.scalar_type() != at::kFloat || !scale.is_contiguous() || scale.numel() != np) return {};
  const Runs runs = MakeRuns(layout);
  const float* xs = x.data_ptr<float>();
  const float* s = scale.data_ptr<float>();
  if (FloatFast(plan)) {
    const bool fp4 = plan.format->dtype == Dtype::kFp4;
    if (!plan.format->is_fp8 && !fp4) return {};  // fp6: the reference packs 4 codes in 3 bytes
    const int64_t last = x.size(-1);
    if (fp4) {  // pairs must not straddle a run: even rows, and even groups for per_group
      if (last % 2 != 0) return {};
      if (layout.qscheme == QSchemeType::kPerGroup && layout.group % 2 != 0) return {};
    }
    std::vector<int64_t> shape = x.sizes().vec();
    if (fp4) shape.back() = last / 2;
    at::Tensor out = at::empty(shape, at::kByte);
    uint8_t* o = out.data_ptr<uint8_t>();
    const FloatGrid grid = MakeFloatGrid(*plan.format);
    const FloatCoder coder = MakeFloatCoder(*plan.format);
    ParallelRuns(runs, [&](int64_t rb, int64_t re) { FloatCodeRuns(runs, rb, re, xs, o, s, grid, coder, fp4); });
    return out;
  }
  const bool int8 = plan.element == Dtype::kInt8 || plan.element == Dtype::kUint8;
  if (!IntFast(plan) || !int8 || plan.float_zero_point) return {};
  if (zero_point.defined() && (zero_point.scalar_type() != at::kFloat || !zero_point.is_contiguous() ||
                               zero_point.numel() != np))
    return {};
  const float* z = zero_point.defined() ? zero_point.data_ptr<float>() : nullptr;
  const float qmin = static_cast<float>(plan.qmin), qmax = static_cast<float>(plan.qmax);
  std::vector<IntGrid> grids(static_cast<size_t>(np));
  for (int64_t p = 0; p < np; ++p) {
    grids[static_cast<size_t>(p)] = MakeIntGrid(s[p], z ? z[p] : 0.0f, qmin, qmax);
    if (!MagicRoundingFits(grids[static_cast<size_t>(p)])) return {};
  }
  at::Tensor out = at::empty(x.sizes(), plan.element == Dtype::kInt8 ? at::kChar : at::kByte);
  uint8_t* o = static_cast<uint8_t*>(out.data_ptr());
  const IntGrid* gr = grids.data();
  ParallelRuns(runs, [&](int64_t rb, int64_t re) { IntCodeRuns(runs, rb, re, xs, o, gr, qmin, qmax); });
  return out;
}

}  // namespace quarry::numerics::kernels
