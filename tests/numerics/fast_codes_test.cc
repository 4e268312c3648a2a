// The fast codes kernel of real quantization (kernels::FastCodes, used by Quantize and the export)
// against codes built here element by element from the scalar reference functions
// (ref::QuantizeFloatElement + ref::EncodeFp8 / EncodeMiniFloat, ref::QuantizeIntValue), byte for
// byte: fp8 e4m3 / e5m2 per tensor, per channel and per group, OCP MXFP8 / MXFP4, fp4 per group,
// int8 / uint8 per tensor and per channel. Inputs include zeros of both signs, subnormal
// quotients, exact rounding ties, values beyond the format's range, +-Inf and NaN. Also checks
// that Quantize takes the fast path for them and that Dequantize(Quantize(x)) equals the
// reference fake quantization.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "numerics/fake_quantize.h"
#include "numerics/kernels/kernels.h"
#include "numerics/plan.h"
#include "numerics/reference/fp_elements.h"
#include "numerics/reference/int_grid.h"
#include "quarry/quantize.h"
#include "quarry/spec_helpers.h"

namespace quarry {
namespace {

using numerics::Family;

struct Case {
  std::string name;
  QuantizationSpec spec;
  int64_t rows, cols;
};

QuantizationSpec Must(absl::StatusOr<QuantizationSpec> s) {
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

std::vector<Case> Cases() {
  std::vector<Case> out;
  FP8E4M3PerTensorSpec t;
  t.observer_method = "min_max";
  out.push_back({"fp8_e4m3_tensor", Must(t.ToQuantizationSpec()), 48, 200});
  FP8E4M3PerChannelSpec c;
  c.ch_axis = 0;
  out.push_back({"fp8_e4m3_channel", Must(c.ToQuantizationSpec()), 40, 130});
  FP8E5M2PerChannelSpec c5;
  c5.ch_axis = 0;
  out.push_back({"fp8_e5m2_channel", Must(c5.ToQuantizationSpec()), 24, 96});
  FP8E4M3PerGroupSpec g;
  g.group_size = 32;
  g.is_dynamic = false;
  out.push_back({"fp8_e4m3_group32", Must(g.ToQuantizationSpec()), 16, 100});
  out.push_back({"mxfp8_e4m3", Must(OCP_MXFP8E4M3Spec{}.ToQuantizationSpec()), 20, 128});
  out.push_back({"mxfp4", Must(OCP_MXFP4Spec{}.ToQuantizationSpec()), 20, 160});
  FP4PerGroupSpec f4;
  f4.group_size = 16;
  f4.is_dynamic = false;
  out.push_back({"fp4_group16", Must(f4.ToQuantizationSpec()), 12, 96});
  Int8PerChannelSpec i8;
  i8.ch_axis = 0;
  i8.is_dynamic = false;
  out.push_back({"int8_channel", Must(i8.ToQuantizationSpec()), 36, 150});
  Uint8PerChannelSpec u8;
  u8.ch_axis = 0;
  u8.is_dynamic = false;
  out.push_back({"uint8_channel_asym", Must(u8.ToQuantizationSpec()), 20, 70});
  Int8PerTensorSpec it;
  it.is_dynamic = false;
  out.push_back({"int8_tensor", Must(it.ToQuantizationSpec()), 30, 64});
  return out;
}

// The reference codes, packed as real_quantize.cc packs them (one byte per element; fp4 two per
// byte along the last axis, element 0 low).
at::Tensor ReferenceCodes(const numerics::QuantPlan& plan, const numerics::Layout& layout,
                          const at::Tensor& x, const float* s, const float* zp) {
  const bool fp4 = plan.format != nullptr && plan.format->dtype == Dtype::kFp4;
  const int64_t n = x.numel(), last = x.size(-1);
  std::vector<int64_t> shape = x.sizes().vec();
  if (fp4) shape.back() = last / 2;
  at::Tensor out = at::zeros(shape, at::kByte);
  uint8_t* o = out.data_ptr<uint8_t>();
  const float* xs = x.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = layout.ParamIndex(i);
    uint8_t code;
    if (plan.family == Family::kInt) {
      const float z = zp ? zp[p] : 0.0f;
      const float q = numerics::ref::QuantizeIntValue(xs[i], s[p], z, static_cast<float>(plan.qmin),
                                                      static_cast<float>(plan.qmax), plan.round);
      code = static_cast<uint8_t>(std::isnan(q) ? static_cast<int32_t>(z) : static_cast<int32_t>(q));
    } else {
      const float sp = s[p] == 0.0f ? numerics::kFloat32Eps : s[p];
      const float grid = numerics::ref::QuantizeFloatElement(xs[i] / sp, *plan.format);
      code = plan.format->is_fp8 ? numerics::ref::EncodeFp8(grid, *plan.format)
                                 : numerics::ref::EncodeMiniFloat(grid, *plan.format);
    }
    if (fp4) o[i / 2] |= static_cast<uint8_t>((code & 0xF) << (4 * (i % 2)));
    else o[i] = code;
  }
  return out;
}

TEST(FastCodes, EqualTheScalarReferenceByteForByte) {
  at::manual_seed(11);
  const float inf = std::numeric_limits<float>::infinity();
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    auto plan = numerics::MakePlan(c.spec);
    ASSERT_TRUE(plan.ok()) << plan.status();
    at::Tensor x = at::randn({c.rows, c.cols}) * 0.05;
    // Rows 3.. get small magnitudes next to a large one (subnormal quotients in fp8 / fp4).
    x[3] = x[3] * 1e-4;
    x[3][0] = 0.9f;
    auto params = ComputeQuantParams(c.spec, x);
    ASSERT_TRUE(params.ok()) << params.status();
    auto layout = numerics::MakeLayout(*plan, x.sizes());
    ASSERT_TRUE(layout.ok());
    auto flat = numerics::FlattenParams(*plan, *layout, *params);
    ASSERT_TRUE(flat.ok()) << flat.status();
    const float* s = flat->scale.data_ptr<float>();
    // Exact ties and out-of-range values in row 1 (at the row's first parameter), specials in 2.
    const int64_t p1 = layout->ParamIndex(1 * c.cols);
    const float s1 = s[p1] == 0.0f ? numerics::kFloat32Eps : s[p1];
    const float ties[] = {0.5f, 1.5f, 2.5f, -3.5f, 1.0625f, 1e6f, -1e6f, 0.0078125f};
    for (int j = 0; j < 8; ++j) x[1][j] = ties[j] * s1;
    const float specials[] = {0.0f, -0.0f, inf, -inf, std::nanf(""), 1e-38f, -1e-40f, 3e38f};
    for (int j = 0; j < 8; ++j) x[2][j] = specials[j];
    x = x.contiguous();
    const float* zp = flat->zero_point.defined() ? flat->zero_point.data_ptr<float>() : nullptr;
    const at::Tensor expected = ReferenceCodes(*plan, *layout, x, s, zp);

    at::Tensor eff = flat->scale.clone();
    if (plan->family != Family::kInt)
      eff.masked_fill_(eff == 0.0f, numerics::kFloat32Eps);
    const at::Tensor fast = numerics::kernels::FastCodes(*plan, *layout, x, eff, flat->zero_point);
    ASSERT_TRUE(fast.defined()) << "no fast path";
    ASSERT_EQ(fast.sizes(), expected.sizes());
    const at::Tensor fast_bytes = fast.view(at::kByte);
    const int64_t differ = (fast_bytes != expected).sum().item<int64_t>();
    EXPECT_EQ(differ, 0) << "of " << expected.numel() << " bytes";

    // Quantize goes through the same kernel; Dequantize(Quantize(x)) is the reference fake
    // quantization (NaN where it is NaN).
    auto q = Quantize(x, c.spec, *params);
    ASSERT_TRUE(q.ok()) << q.status();
    EXPECT_TRUE(at::equal(q->data.view(at::kByte), expected));
    auto y = Dequantize(*q, c.spec);
    ASSERT_TRUE(y.ok()) << y.status();
    auto ref = numerics::FakeQuantizeWithPlan(*plan, x, *params, numerics::Path::kReference);
    ASSERT_TRUE(ref.ok()) << ref.status();
    // The documented exceptions (quantize.h): integer NaN is stored as the zero point (0 after
    // dequantization), fp4 +-Inf as +-max; fake quantization keeps NaN / Inf.
    at::Tensor exempt = at::isnan(*ref);
    if (plan->format != nullptr && !plan->format->is_fp8) exempt = exempt | at::isinf(*ref);
    const int64_t value_differ = ((*y != *ref) & ~exempt).sum().item<int64_t>();
    EXPECT_EQ(value_differ, 0);
    EXPECT_GT(exempt.sum().item<int64_t>(), 0);  // the specials are there
  }
}

TEST(FastCodes, DeclinesWhatItDoesNotCover) {
  // fp6 (three bytes per four codes), odd fp4 rows, int4: the reference path.
  auto fp6 = numerics::MakePlan(*OCP_MXFP6E2M3Spec{}.ToQuantizationSpec());
  ASSERT_TRUE(fp6.ok());
  const at::Tensor x = at::randn({4, 64});
  auto l6 = numerics::MakeLayout(*fp6, x.sizes());
  ASSERT_TRUE(l6.ok());
  EXPECT_FALSE(numerics::kernels::FastCodes(*fp6, *l6, x, at::ones({l6->num_params()}), {}).defined());
  FP4PerGroupSpec f4;
  f4.group_size = 3;
  f4.is_dynamic = false;
  auto p4 = numerics::MakePlan(*f4.ToQuantizationSpec());
  ASSERT_TRUE(p4.ok());
  const at::Tensor odd = at::randn({4, 9});
  auto l4 = numerics::MakeLayout(*p4, odd.sizes());
  ASSERT_TRUE(l4.ok());
  EXPECT_FALSE(numerics::kernels::FastCodes(*p4, *l4, odd, at::ones({l4->num_params()}), {}).defined());
  // ... and Quantize still gives the reference's codes for it (round trip through Dequantize).
  auto params = ComputeQuantParams(*f4.ToQuantizationSpec(), odd);
  ASSERT_TRUE(params.ok());
  auto q = Quantize(odd, *f4.ToQuantizationSpec(), *params);
  ASSERT_TRUE(q.ok()) << q.status();
  auto y = Dequantize(*q, *f4.ToQuantizationSpec());
  ASSERT_TRUE(y.ok());
  auto ref = FakeQuantize(odd, *f4.ToQuantizationSpec(), *params);
  ASSERT_TRUE(ref.ok());
  EXPECT_TRUE(at::equal(*y, *ref));
}

}  // namespace
}  // namespace quarry
