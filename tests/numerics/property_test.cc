// Properties over every format on random and edge data:
// - Dequantize(Quantize(x)) == FakeQuantize(x) bit for bit (finite inputs; int32 zero points),
//   for both int4 packing orders;
// - fake quantization is idempotent on its own grid (same parameters);
// - per-format error bounds against the input.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "numerics/fake_quantize.h"
#include "numerics/formats.h"
#include "numerics/plan.h"
#include "oracle_util.h"
#include "quarry/quantize.h"
#include "quarry/spec_helpers.h"
#include "test_data.h"

namespace quarry {
namespace {

using testing::BitEqual;

struct Case {
  std::string name;
  QuantizationSpec spec;
};

QuantizationSpec IntSpec(Dtype d, QSchemeType q, bool sym, std::optional<int> axis,
                         std::optional<int> group) {
  QuantizationSpec s;
  s.dtype = d;
  s.qscheme = q;
  s.symmetric = sym;
  s.ch_axis = axis;
  s.group_size = group;
  s.round_method = RoundType::kHalfEven;
  s.is_dynamic = false;
  return s;
}

std::vector<Case> AllFormats() {
  using Q = QSchemeType;
  std::vector<Case> c;
  for (Dtype d : {Dtype::kInt2, Dtype::kInt3, Dtype::kInt4, Dtype::kUint4, Dtype::kInt8,
                  Dtype::kUint8, Dtype::kInt16}) {
    const std::string n(Name(d));
    c.push_back({n + "_tensor_asym", IntSpec(d, Q::kPerTensor, false, {}, {})});
    c.push_back({n + "_channel_sym", IntSpec(d, Q::kPerChannel, true, 0, {})});
    c.push_back({n + "_group_asym", IntSpec(d, Q::kPerGroup, false, -1, 32)});
    c.push_back({n + "_group_sym_axis0", IntSpec(d, Q::kPerGroup, true, 0, 4)});
  }
  QuantizationSpec round = IntSpec(Dtype::kInt8, Q::kPerChannel, false, 0, {});
  round.round_method = RoundType::kRound;
  c.push_back({"int8_round_half_away", round});
  QuantizationSpec floor = IntSpec(Dtype::kInt4, Q::kPerGroup, true, -1, 16);
  floor.round_method = RoundType::kFloor;
  c.push_back({"int4_floor", floor});
  QuantizationSpec pof2 = IntSpec(Dtype::kInt8, Q::kPerGroup, false, -1, 32);
  pof2.scale_type = ScaleType::kPof2;
  c.push_back({"int8_group_pof2", pof2});
  QuantizationSpec bf16_scale = IntSpec(Dtype::kUint4, Q::kPerChannel, false, 0, {});
  bf16_scale.scale_type = ScaleType::kBfloat16;
  c.push_back({"uint4_bf16_scales", bf16_scale});
  for (Dtype d : {Dtype::kFp8E4M3, Dtype::kFp8E5M2}) {
    QuantizationSpec s;
    s.dtype = d;
    s.qscheme = Q::kPerChannel;
    s.ch_axis = 0;
    c.push_back({std::string(Name(d)) + "_channel", s});
  }
  for (Dtype d : {Dtype::kFp8E4M3, Dtype::kFp6E3M2, Dtype::kFp6E2M3, Dtype::kFp4}) {
    FP4PerGroupSpec h;
    h.group_size = 16;
    QuantizationSpec s = *h.ToQuantizationSpec();
    s.dtype = d;
    c.push_back({std::string(Name(d)) + "_group16", s});
    OCP_MXFP4Spec mx;
    for (const char* mode : {"even", "floor", "ceil"}) {
      mx.scale_calculation_mode = mode;
      QuantizationSpec m = *mx.ToQuantizationSpec();
      m.dtype = d;
      c.push_back({"mx" + std::string(Name(d)) + "_" + mode, m});
    }
  }
  FP4PerGroupSpec nvfp4;
  nvfp4.group_size = 16;
  nvfp4.scale_format = "e4m3";
  c.push_back({"fp4_e4m3_two_level", *nvfp4.ToQuantizationSpec()});
  c.push_back({"mxint8", *OCP_MXINT8Spec{}.ToQuantizationSpec()});
  QuantizationSpec legacy_mx;
  legacy_mx.dtype = Dtype::kMx;
  legacy_mx.mx_element_dtype = Dtype::kFp6E2M3;
  legacy_mx.ch_axis = 0;
  legacy_mx.group_size = 8;
  c.push_back({"legacy_mx_fp6_axis0", legacy_mx});
  MX6Spec mx6;
  c.push_back({"mx6", *mx6.ToQuantizationSpec()});
  MX9Spec mx9;
  mx9.block_size = 16;
  c.push_back({"mx9_block16", *mx9.ToQuantizationSpec()});
  c.push_back({"bfp16", *BFP16Spec{}.ToQuantizationSpec()});
  c.push_back({"bfloat16", *Bfloat16Spec{}.ToQuantizationSpec()});
  c.push_back({"float16", *Float16Spec{}.ToQuantizationSpec()});
  return c;
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class Properties : public ::testing::TestWithParam<Case> {};

TEST_P(Properties, DequantizeOfQuantizeIsFakeQuantize) {
  const QuantizationSpec& spec = GetParam().spec;
  for (uint64_t seed : {1u, 2u}) {
    // Finite inputs: NaN/Inf have no integer code (documented in quantize.h).
    const at::Tensor x = seed == 1 ? testing::RandomData({16, 96}, seed)
                                   : testing::EdgeData({16, 96}, seed, /*finite_only=*/true);
    auto params = ComputeQuantParams(spec, x);
    ASSERT_TRUE(params.ok()) << params.status();
    auto y = FakeQuantize(x, spec, *params);
    ASSERT_TRUE(y.ok()) << y.status();
    for (PackOrder order : {PackOrder::kReorder, PackOrder::kOrder}) {
      auto q = Quantize(x, spec, *params, order);
      ASSERT_TRUE(q.ok()) << q.status();
      EXPECT_EQ(q->shape, x.sizes().vec());
      auto d = Dequantize(*q, spec);
      ASSERT_TRUE(d.ok()) << d.status();
      EXPECT_TRUE(BitEqual(*d, *y)) << "seed " << seed;
    }
  }
}

// Every format but MX6/MX9 is idempotent: fake-quantizing a value on the grid returns it. MX6/MX9
// are left out on purpose: the pair micro-exponent is recomputed from the quantized values, and
// rounding up to the block's top binade can turn a fine pair into a coarse one.
class IdempotentOnGrid : public ::testing::TestWithParam<Case> {};

std::vector<Case> FormatsWithIdempotentGrid() {
  std::vector<Case> out;
  for (const Case& c : AllFormats())
    if (c.spec.dtype != Dtype::kMx6 && c.spec.dtype != Dtype::kMx9) out.push_back(c);
  return out;
}

TEST_P(IdempotentOnGrid, FakeQuantizeOfItsOutputIsTheSame) {
  const QuantizationSpec& spec = GetParam().spec;
  const at::Tensor x = testing::EdgeData({16, 96}, 5);
  auto params = ComputeQuantParams(spec, x);
  ASSERT_TRUE(params.ok()) << params.status();
  auto y = FakeQuantize(x, spec, *params);
  ASSERT_TRUE(y.ok()) << y.status();
  auto yy = FakeQuantize(*y, spec, *params);
  ASSERT_TRUE(yy.ok()) << yy.status();
  EXPECT_TRUE(BitEqual(*yy, *y));
}

INSTANTIATE_TEST_SUITE_P(AllFormats, IdempotentOnGrid,
                         ::testing::ValuesIn(FormatsWithIdempotentGrid()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

// |y - x| within the format's resolution at the observer's parameters, on finite random data.
TEST_P(Properties, ErrorBounds) {
  const QuantizationSpec& spec = GetParam().spec;
  auto plan = numerics::MakePlan(spec);
  ASSERT_TRUE(plan.ok());
  const at::Tensor x = testing::RandomData({16, 96}, 9);
  auto result = numerics::FakeQuantizeDynamicWithPlan(*plan, x);
  ASSERT_TRUE(result.ok()) << result.status();
  const at::Tensor err = (result->first - x).abs();
  at::Tensor bound;
  switch (plan->family) {
    case numerics::Family::kCast:
      bound = x.abs() * (spec.dtype == Dtype::kBfloat16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11)) + 6e-8;
      break;
    case numerics::Family::kInt:
    case numerics::Family::kBfp16:
    case numerics::Family::kFloat:
    case numerics::Family::kMx:
    case numerics::Family::kMx6Mx9: {
      // Broadcast each element's scale.
      auto layout = numerics::MakeLayout(*plan, x.sizes());
      ASSERT_TRUE(layout.ok());
      const at::Tensor s = result->second.scale.to(at::kFloat).reshape({-1}).contiguous();
      at::Tensor per = at::empty_like(x);
      for (int64_t i = 0; i < x.numel(); ++i) {
        per.data_ptr<float>()[i] = s.data_ptr<float>()[layout->ParamIndex(i)];
      }
      if (plan->family == numerics::Family::kInt) {
        // Half a step (a whole one when rounding down) inside the grid's range
        // [(qmin - zp) s, (qmax - zp) s]; outside it, the distance to the range (clamping:
        // symmetric unsigned grids clamp negatives to 0; power-of-two scales may not cover the
        // observed range). Plus float rounding of (q - zp) * s.
        const at::Tensor zp = result->second.zero_point.to(at::kFloat).reshape({-1}).contiguous();
        at::Tensor excess = at::empty_like(x);
        for (int64_t i = 0; i < x.numel(); ++i) {
          const int64_t p = layout->ParamIndex(i);
          const float z = zp.data_ptr<float>()[p], sc = per.data_ptr<float>()[i];
          const float lo = (static_cast<float>(plan->qmin) - z) * sc;
          const float hi = (static_cast<float>(plan->qmax) - z) * sc;
          const float v = x.data_ptr<float>()[i];
          excess.data_ptr<float>()[i] = std::max({lo - v, v - hi, 0.0f});
        }
        const double steps = plan->round == RoundType::kFloor ? 1.0 : 0.5;
        bound = at::maximum(per * steps, excess) * (1.0 + 1e-5) + x.abs() * std::ldexp(1.0, -22);
      } else if (plan->family == numerics::Family::kBfp16) {
        bound = per * 0.5 * (1.0 + 1e-6);
      } else if (plan->family == numerics::Family::kMx6Mx9) {
        bound = per * std::ldexp(1.0, -plan->quant_bit + 2);  // one coarse step
      } else if (plan->format == nullptr) {  // mxint8: step scale/64, clamp at 127/64 * scale
        bound = at::maximum(per / 128.0 * (1 + 1e-6), x.abs() - per * (127.0 / 64.0));
      } else {
        const numerics::FloatFormat& f = *plan->format;
        const at::Tensor rel = x.abs() * std::ldexp(1.0, -(f.mbits + 1));
        const at::Tensor sub = per * std::ldexp(1.0, f.emin - f.mbits - 1);
        const at::Tensor clamp = x.abs() - per * f.max_norm;  // MX scales may put amax above max
        bound = at::maximum(at::maximum(rel, sub), clamp) * (1.0 + 1e-6);
      }
      break;
    }
  }
  const at::Tensor over = err > bound;
  EXPECT_FALSE(over.any().item<bool>())
      << over.sum().item<int64_t>() << " elements exceed the bound; worst excess "
      << (err - bound).max().item<float>();
}

INSTANTIATE_TEST_SUITE_P(AllFormats, Properties, ::testing::ValuesIn(AllFormats()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(Properties, Pof2AndReducedPrecisionScales) {
  const at::Tensor x = testing::RandomData({8, 64}, 3);
  QuantizationSpec pof2 = IntSpec(Dtype::kInt8, QSchemeType::kPerChannel, true, 0, {});
  pof2.scale_type = ScaleType::kPof2;
  auto p = ComputeQuantParams(pof2, x);
  ASSERT_TRUE(p.ok());
  for (int64_t i = 0; i < p->scale.numel(); ++i) {
    int e;
    EXPECT_EQ(std::frexp(p->scale[i].item<float>(), &e), 0.5f) << "scale " << i << " is 2^k";
  }
  QuantizationSpec half = IntSpec(Dtype::kInt8, QSchemeType::kPerChannel, true, 0, {});
  half.scale_type = ScaleType::kFloat16;
  auto h = ComputeQuantParams(half, x);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(BitEqual(h->scale, h->scale.to(at::kHalf).to(at::kFloat)));
}

}  // namespace
}  // namespace quarry
