// The fast kernels against the scalar reference, bit for bit (NaN positions included):
// - element functions on dense sweeps of float32 bit patterns and on random integer grids;
// - whole tensors, through FakeQuantize with given parameters and the fused dynamic kernels, for
//   every format the kernels cover, several layouts (axis first / middle / last, group tails) and
//   random plus edge data (NaN, Inf, +-0, subnormals, huge values, ties).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <bit>
#include <random>

#include "numerics/fake_quantize.h"
#include "numerics/formats.h"
#include "numerics/kernels/kernels.h"
#include "numerics/kernels/simd_elements.h"
#include "numerics/plan.h"
#include "numerics/reference/fp_elements.h"
#include "numerics/reference/int_grid.h"
#include "oracle_util.h"
#include "quarry/spec_helpers.h"
#include "test_data.h"

namespace quarry {
namespace {

using numerics::FloatFormatOf;
using testing::BitEqual;

bool SameFloat(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}

TEST(FastVsReference, FloatGridOnBitPatternSweep) {
  for (Dtype d : {Dtype::kFp8E4M3, Dtype::kFp8E5M2, Dtype::kFp6E3M2, Dtype::kFp6E2M3, Dtype::kFp4}) {
    SCOPED_TRACE(std::string(Name(d)));
    const numerics::FloatFormat& f = *FloatFormatOf(d);
    const numerics::kernels::FloatGrid grid = numerics::kernels::MakeFloatGrid(f);
    int64_t bad = 0;
    // Every 251st bit pattern (all exponents, signs, NaN payloads), plus the neighbourhood of
    // every grid point and midpoint below 2^16 (ties and +-1 ulp).
    for (uint64_t u = 0; u <= 0xFFFFFFFFull; u += 251) {
      const float v = std::bit_cast<float>(static_cast<uint32_t>(u));
      bad += !SameFloat(numerics::kernels::QuantizeFloatGrid(v, grid), numerics::ref::QuantizeFloatElement(v, f));
    }
    for (int e = -20; e < 17; ++e) {
      for (int m = 0; m < 64; ++m) {
        const float mid = std::ldexp(1.0f + m / 64.0f, e);
        for (float v : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e30f), -mid}) {
          bad += !SameFloat(numerics::kernels::QuantizeFloatGrid(v, grid), numerics::ref::QuantizeFloatElement(v, f));
        }
      }
    }
    EXPECT_EQ(bad, 0);
  }
}

TEST(FastVsReference, IntGridOnRandomGridsAndTies) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  int64_t bad = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    const int64_t qmin = (trial % 3 == 0) ? 0 : -(1 << (trial % 7 + 1));
    const int64_t qmax = (trial % 3 == 0) ? (1 << (trial % 8 + 1)) - 1 : -qmin - 1;
    const float scale = std::ldexp(1.0f + std::fabs(u(rng)), static_cast<int>(u(rng) * 20));
    const float zp = (trial % 4 == 0) ? u(rng) * 10.0f : std::nearbyint(u(rng) * 10.0f);
    numerics::kernels::IntGrid g;
    g.scale = numerics::ref::EffectiveIntScale(scale);
    g.inv = 1.0f / g.scale;
    g.zp = zp;
    g.lo = std::floor(static_cast<float>(qmin) - zp) - 1.0f;
    g.hi = std::ceil(static_cast<float>(qmax) - zp) + 1.0f;
    for (int k = -300; k < 300; ++k) {
      const float tie = (static_cast<float>(k) + 0.5f) * scale;  // exact ties when scale is 2^n
      for (float x : {tie, u(rng) * scale * 300.0f, -tie, 0.0f, -0.0f, std::nextafter(tie, 0.0f)}) {
        const float fast = numerics::kernels::FakeQuantIntHalfEven(x, g, static_cast<float>(qmin),
                                                                   static_cast<float>(qmax));
        const float ref = numerics::ref::FakeQuantIntValue(x, scale, zp, static_cast<float>(qmin),
                                                           static_cast<float>(qmax), RoundType::kHalfEven);
        bad += !SameFloat(fast, ref);
      }
    }
  }
  EXPECT_EQ(bad, 0);
}

struct Case {
  std::string name;
  QuantizationSpec spec;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

QuantizationSpec Int(Dtype d, QSchemeType q, bool sym, std::optional<int> axis = std::nullopt,
                     std::optional<int> group = std::nullopt, bool float_zp = false) {
  QuantizationSpec s;
  s.dtype = d;
  s.qscheme = q;
  s.symmetric = sym;
  s.ch_axis = axis;
  s.group_size = group;
  s.round_method = RoundType::kHalfEven;
  s.is_dynamic = true;
  if (float_zp) s.zero_point_type = ZeroPointType::kFloat32;
  return s;
}

QuantizationSpec Float(Dtype d, QSchemeType q, std::optional<int> axis = std::nullopt,
                       std::optional<int> group = std::nullopt, const char* scale_format = "float32",
                       const char* mode = "even") {
  QuantizationSpec s;
  s.dtype = d;
  s.qscheme = q;
  s.ch_axis = axis;
  s.group_size = group;
  s.is_dynamic = true;
  if (q == QSchemeType::kPerGroup) {
    s.observer_cls = "PerBlockMXObserver";
    s.scale_format = scale_format;
    s.scale_calculation_mode = mode;
  }
  return s;
}

std::vector<Case> FastCases() {
  std::vector<Case> cases;
  using Q = QSchemeType;
  for (Dtype d : {Dtype::kInt8, Dtype::kInt4, Dtype::kUint4, Dtype::kUint8, Dtype::kInt3, Dtype::kInt2}) {
    const std::string n(Name(d));
    for (bool sym : {true, false}) {
      const std::string s = sym ? "_sym" : "_asym";
      cases.push_back({n + "_tensor" + s, Int(d, Q::kPerTensor, sym)});
      cases.push_back({n + "_channel0" + s, Int(d, Q::kPerChannel, sym, 0)});
      cases.push_back({n + "_channel1" + s, Int(d, Q::kPerChannel, sym, 1)});
      cases.push_back({n + "_channel_last" + s, Int(d, Q::kPerChannel, sym, -1)});
      cases.push_back({n + "_group32_last" + s, Int(d, Q::kPerGroup, sym, -1, 32)});
      cases.push_back({n + "_group128_last" + s, Int(d, Q::kPerGroup, sym, -1, 128)});
      cases.push_back({n + "_group8_axis0" + s, Int(d, Q::kPerGroup, sym, 0, 8)});
    }
    cases.push_back({n + "_group32_fzp", Int(d, Q::kPerGroup, false, -1, 32, true)});
    cases.push_back({n + "_channel0_fzp", Int(d, Q::kPerChannel, false, 0, std::nullopt, true)});
  }
  for (Dtype d : {Dtype::kFp8E4M3, Dtype::kFp8E5M2}) {
    const std::string n(Name(d));
    cases.push_back({n + "_tensor", Float(d, Q::kPerTensor)});
    cases.push_back({n + "_channel0", Float(d, Q::kPerChannel, 0)});
    cases.push_back({n + "_channel_last", Float(d, Q::kPerChannel, -1)});
    cases.push_back({n + "_group32", Float(d, Q::kPerGroup, -1, 32)});
  }
  for (Dtype d : {Dtype::kFp8E4M3, Dtype::kFp8E5M2, Dtype::kFp6E3M2, Dtype::kFp6E2M3, Dtype::kFp4}) {
    const std::string n(Name(d));
    cases.push_back({n + "_group16_f32", Float(d, Q::kPerGroup, -1, 16)});
    for (const char* mode : {"even", "floor", "ceil"}) {
      cases.push_back({"mx" + n + "_" + mode, Float(d, Q::kPerGroup, -1, 32, "e8m0", mode)});
    }
    cases.push_back({"mx" + n + "_axis0", Float(d, Q::kPerGroup, 0, 32, "e8m0", "even")});
  }
  return cases;
}

class FastVsReferenceTensors : public ::testing::TestWithParam<Case> {};

TEST_P(FastVsReferenceTensors, BitExactOnRandomAndEdgeData) {
  const QuantizationSpec& spec = GetParam().spec;
  auto plan = numerics::MakePlan(spec);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(numerics::kernels::HasFastPath(*plan)) << "no fast path for this case";
  at::set_num_threads(2);
  // Shapes: a 2-D weight with a group tail (200 = 6 * 32 + 8), and a 3-D activation.
  const std::vector<std::vector<int64_t>> shapes = {{24, 200}, {3, 40, 64}};
  uint64_t seed = 11;
  for (const auto& shape : shapes) {
    for (bool edge : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "shape " << at::IntArrayRef(shape) << (edge ? " edge" : " random"));
      const at::Tensor x = edge ? testing::EdgeData(shape, ++seed) : testing::RandomData(shape, ++seed);
      // Dynamic: fused kernels (or observer + fast apply) vs observer + scalar reference.
      auto fast = numerics::FakeQuantizeDynamicWithPlan(*plan, x, numerics::Path::kAuto);
      auto ref = numerics::FakeQuantizeDynamicWithPlan(*plan, x, numerics::Path::kReference);
      ASSERT_TRUE(fast.ok()) << fast.status();
      ASSERT_TRUE(ref.ok()) << ref.status();
      EXPECT_TRUE(BitEqual(fast->first, ref->first)) << "dynamic y";
      EXPECT_TRUE(BitEqual(fast->second.scale, ref->second.scale)) << "dynamic scale";
      EXPECT_EQ(fast->second.scale.sizes(), ref->second.scale.sizes());
      if (ref->second.zero_point.defined()) {
        ASSERT_TRUE(fast->second.zero_point.defined());
        EXPECT_EQ(fast->second.zero_point.scalar_type(), ref->second.zero_point.scalar_type());
        EXPECT_TRUE(BitEqual(fast->second.zero_point.to(at::kFloat), ref->second.zero_point.to(at::kFloat)));
      }
      // Given parameters: the observer's, then perturbed ones (odd zero points, non-power-of-two
      // and tiny scales) so that grids, ties and clamps differ from the observer's.
      QuantParams params = ref->second;
      for (int variant = 0; variant < 2; ++variant) {
        if (variant == 1) {
          params.scale = params.scale * 0.7f + 1e-3f;
          if (params.zero_point.defined()) {
            params.zero_point = params.zero_point.scalar_type() == at::kInt
                                    ? (params.zero_point + 1).clamp(plan->qmin, plan->qmax).to(at::kInt)
                                    : params.zero_point + 0.37f;
          }
        }
        auto y_fast = numerics::FakeQuantizeWithPlan(*plan, x, params, numerics::Path::kAuto);
        auto y_ref = numerics::FakeQuantizeWithPlan(*plan, x, params, numerics::Path::kReference);
        ASSERT_TRUE(y_fast.ok()) << y_fast.status();
        ASSERT_TRUE(y_ref.ok()) << y_ref.status();
        EXPECT_TRUE(BitEqual(*y_fast, *y_ref)) << "given params, variant " << variant;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, FastVsReferenceTensors, ::testing::ValuesIn(FastCases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

}  // namespace
}  // namespace quarry
