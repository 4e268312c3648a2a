// OCP MX (mxfp8 e4m3/e5m2, mxfp6 e3m2/e2m3, mxfp4, mxint8; modes even/floor/ceil), MX6, MX9 and
// BFP16 against Quark's vectors (quark_mx, quark_mx6_mx9_bfp16): block scales and fake-quantized
// outputs bit-exact, NaN positions included, through the observer, the scalar reference, the fast
// path and the fused dynamic kernel; real quantization round-trips to the same bits.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "numerics/fake_quantize.h"
#include "numerics/plan.h"
#include "oracle_util.h"
#include "quarry/quantize.h"
#include "quarry/spec_helpers.h"

namespace quarry {
namespace {

using testing::BitEqual;
using testing::OracleFile;

QuantizationSpec MxSpec(const std::string& element, const std::string& mode) {
  QuantizationSpec s;
  if (element == "int8") {
    OCP_MXINT8Spec h;
    h.scale_calculation_mode = mode;
    s = *h.ToQuantizationSpec();
  } else {
    OCP_MXFP4Spec h;  // same fields for every OCP MX float element; dtype set below
    h.scale_calculation_mode = mode;
    h.is_dynamic = false;
    s = *h.ToQuantizationSpec();
    s.dtype = testing::DtypeFromName(element);
  }
  return s;
}

void CheckAllPaths(const QuantizationSpec& spec, const at::Tensor& x, const at::Tensor& y,
                   const at::Tensor* expected_scale) {
  auto params = ComputeQuantParams(spec, x);
  ASSERT_TRUE(params.ok()) << params.status();
  if (expected_scale != nullptr) {
    EXPECT_TRUE(BitEqual(params->scale, *expected_scale)) << "scale";
  }
  auto plan = numerics::MakePlan(spec);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto ref = numerics::FakeQuantizeWithPlan(*plan, x, *params, numerics::Path::kReference);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_TRUE(BitEqual(*ref, y)) << "scalar reference";
  auto fast = FakeQuantize(x, spec, *params);
  ASSERT_TRUE(fast.ok()) << fast.status();
  EXPECT_TRUE(BitEqual(*fast, y)) << "fast path";
  auto dyn = FakeQuantizeDynamic(x, spec);
  ASSERT_TRUE(dyn.ok()) << dyn.status();
  EXPECT_TRUE(BitEqual(*dyn, y)) << "fused dynamic kernel";
  auto q = Quantize(x, spec, *params);
  if (!q.ok()) {
    // Only floor/ceil scales outside E8M0's range may be rejected, never "even" ones.
    EXPECT_NE(plan->mode, numerics::MxScaleMode::kEven) << q.status();
    EXPECT_TRUE(absl::IsInvalidArgument(q.status())) << q.status();
    return;
  }
  auto deq = Dequantize(*q, spec);
  ASSERT_TRUE(deq.ok()) << deq.status();
  EXPECT_TRUE(BitEqual(*deq, y)) << "Dequantize(Quantize(x))";
}

TEST(OracleMx, EveryElementAndModeBitExact) {
  const OracleFile file("quark_mx.safetensors");
  ASSERT_TRUE(file.ok());
  const at::Tensor& x = file.Get("x");
  const auto cases = file.CaseNames();
  ASSERT_EQ(cases.size(), 18u);
  for (const std::string& name : cases) {
    SCOPED_TRACE(name);
    const nlohmann::json& c = file.Case(name);
    const QuantizationSpec spec = MxSpec(c["element"], c["mode"]);
    const at::Tensor scale = file.Get(name + ".scale");
    CheckAllPaths(spec, x, file.Get(name + ".y"), &scale);
  }
}

TEST(OracleMx, Mx6Mx9Bfp16BitExact) {
  const OracleFile file("quark_mx6_mx9_bfp16.safetensors");
  ASSERT_TRUE(file.ok());
  const at::Tensor& x = file.Get("x");
  const auto cases = file.CaseNames();
  ASSERT_EQ(cases.size(), 5u);
  for (const std::string& name : cases) {
    SCOPED_TRACE(name);
    const nlohmann::json& c = file.Case(name);
    QuantizationSpec spec;
    const std::string dtype = c["dtype"];
    if (dtype == "bfp16") {
      spec = *BFP16Spec{}.ToQuantizationSpec();
    } else if (dtype == "mx6") {
      MX6Spec h;
      h.block_size = c["block"].get<int>();
      spec = *h.ToQuantizationSpec();
    } else {
      MX9Spec h;
      h.block_size = c["block"].get<int>();
      spec = *h.ToQuantizationSpec();
    }
    CheckAllPaths(spec, x, file.Get(name + ".y"), nullptr);
  }
}

}  // namespace
}  // namespace quarry
