// Float element formats against Quark's vectors: the element codec sweep at scale 1
// (quark_fp_elements), fp8 with float32 scales per tensor / channel / group (quark_fp8) and
// fp4 / fp6 per group (quark_fp4_fp6_pergroup). Bit-exact, zeros' signs included.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "numerics/fake_quantize.h"
#include "numerics/plan.h"
#include "numerics/real_quantize.h"
#include "oracle_util.h"
#include "quarry/quantize.h"
#include "quarry/spec_helpers.h"

namespace quarry {
namespace {

using testing::BitEqual;
using testing::OracleFile;

QuantizationSpec ScaleOneSpec(Dtype dtype) {
  QuantizationSpec s;
  s.dtype = dtype;
  s.qscheme = QSchemeType::kPerTensor;
  s.observer_cls = "PerTensorMinMaxObserver";
  s.is_dynamic = false;
  return s;
}

// Both paths (scalar reference, fast kernel) of fake quantization with given parameters.
void ExpectFakeQuant(const QuantizationSpec& spec, const at::Tensor& x, const QuantParams& params,
                     const at::Tensor& expected, const std::string& what) {
  auto plan = numerics::MakePlan(spec);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto ref = numerics::FakeQuantizeWithPlan(*plan, x, params, numerics::Path::kReference);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_TRUE(BitEqual(*ref, expected)) << what << " (scalar reference)";
  auto fast = FakeQuantize(x, spec, params);
  ASSERT_TRUE(fast.ok()) << fast.status();
  EXPECT_TRUE(BitEqual(*fast, expected)) << what << " (fast path)";
}

TEST(OracleFloat, ElementCodecSweepAtScaleOne) {
  const OracleFile file("quark_fp_elements.safetensors");
  ASSERT_TRUE(file.ok());
  for (const std::string name : {"fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4"}) {
    SCOPED_TRACE(name);
    const QuantizationSpec spec = ScaleOneSpec(testing::DtypeFromName(name));
    const at::Tensor& x = file.Get(name + ".x");
    QuantParams one;
    one.scale = at::ones({}, at::kFloat);
    ExpectFakeQuant(spec, x, one, file.Get(name + ".y"), "y");
    if (file.Has(name + ".code")) {  // fp8 bit codes of real quantization
      auto q = Quantize(x, spec, one);
      ASSERT_TRUE(q.ok()) << q.status();
      auto codes = numerics::UnpackedCodes(*q, spec);
      ASSERT_TRUE(codes.ok()) << codes.status();
      // Quark's cast of NaN gives 0x7f | sign; compare codes exactly.
      EXPECT_TRUE(BitEqual(codes->to(at::kFloat), file.Get(name + ".code"))) << "codes";
      auto deq = Dequantize(*q, spec);
      ASSERT_TRUE(deq.ok());
      EXPECT_TRUE(BitEqual(*deq, file.Get(name + ".y"))) << "Dequantize(Quantize(x))";
    }
  }
}

TEST(OracleFloat, Fp8WithFloat32Scales) {
  const OracleFile file("quark_fp8.safetensors");
  ASSERT_TRUE(file.ok());
  const auto cases = file.CaseNames();
  ASSERT_EQ(cases.size(), 6u);
  for (const std::string& name : cases) {
    SCOPED_TRACE(name);
    const nlohmann::json& c = file.Case(name);
    QuantizationSpec spec;
    spec.dtype = testing::DtypeFromName(c["dtype"]);
    spec.qscheme = *ParseQScheme(c["qscheme"].get<std::string>());
    spec.is_dynamic = false;
    spec.symmetric = true;
    spec.round_method = RoundType::kHalfEven;
    if (c.contains("ch_axis")) spec.ch_axis = c["ch_axis"].get<int>();
    if (c.contains("group_size")) {
      spec.group_size = c["group_size"].get<int>();
      spec.observer_cls = "PerBlockMXObserver";
      spec.scale_format = "float32";
    }
    const at::Tensor& x = file.Get(name + ".x");
    auto params = ComputeQuantParams(spec, x);
    ASSERT_TRUE(params.ok()) << params.status();
    EXPECT_TRUE(BitEqual(params->scale, file.Get(name + ".scale"))) << "scale";
    EXPECT_FALSE(params->zero_point.defined());
    ExpectFakeQuant(spec, x, *params, file.Get(name + ".y"), "y");
    auto dyn = FakeQuantizeDynamic(x, spec);
    ASSERT_TRUE(dyn.ok()) << dyn.status();
    EXPECT_TRUE(BitEqual(*dyn, file.Get(name + ".y"))) << "fused dynamic kernel";
    auto q = Quantize(x, spec, *params);
    ASSERT_TRUE(q.ok()) << q.status();
    auto deq = Dequantize(*q, spec);
    ASSERT_TRUE(deq.ok()) << deq.status();
    EXPECT_TRUE(BitEqual(*deq, file.Get(name + ".y"))) << "Dequantize(Quantize(x))";
  }
}

TEST(OracleFloat, Fp4Fp6PerGroupFloat32Scales) {
  const OracleFile file("quark_fp4_fp6_pergroup.safetensors");
  ASSERT_TRUE(file.ok());
  const auto cases = file.CaseNames();
  ASSERT_EQ(cases.size(), 6u);
  for (const std::string& name : cases) {
    SCOPED_TRACE(name);
    const nlohmann::json& c = file.Case(name);
    FP4PerGroupSpec helper;  // the same for fp6: dtype replaced below
    helper.ch_axis = c["ch_axis"].get<int>();
    helper.group_size = c["group_size"].get<int>();
    helper.is_dynamic = false;
    auto spec = helper.ToQuantizationSpec();
    ASSERT_TRUE(spec.ok());
    spec->dtype = testing::DtypeFromName(c["dtype"]);
    for (const auto& [input, suffix] : {std::pair<std::string, std::string>{"x", ""}, {"xm", "_m"}}) {
      SCOPED_TRACE(input);
      const at::Tensor& x = file.Get(name + "." + input);
      auto params = ComputeQuantParams(*spec, x);
      ASSERT_TRUE(params.ok()) << params.status();
      EXPECT_TRUE(BitEqual(params->scale, file.Get(name + ".scale" + suffix))) << "scale";
      const at::Tensor& y = file.Get(name + ".y" + suffix);
      ExpectFakeQuant(*spec, x, *params, y, "y");
      auto dyn = FakeQuantizeDynamic(x, *spec);
      ASSERT_TRUE(dyn.ok()) << dyn.status();
      EXPECT_TRUE(BitEqual(*dyn, y)) << "fused dynamic kernel";
    }
  }
}

}  // namespace
}  // namespace quarry
