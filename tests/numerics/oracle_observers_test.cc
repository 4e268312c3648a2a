// Observers against Quark's vectors (quark_int_observers): power-of-two min-max and MinMSE
// observers bit-exact (scale, zero point, y, codes); histogram observers (percentile, MSE) within
// one histogram bin, as INDEX.md states. The asymmetric percentile observer deliberately differs
// from Quark's buggy result (see observers.h); the test checks what Quarry does instead.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "numerics/observers/observers.h"
#include "numerics/plan.h"
#include "numerics/real_quantize.h"
#include "oracle_util.h"
#include "quarry/quantize.h"

namespace quarry {
namespace {

using testing::BitEqual;
using testing::OracleFile;

QuantizationSpec SpecFromCase(const nlohmann::json& c) {
  QuantizationSpec s;
  s.dtype = testing::DtypeFromName(c["dtype"]);
  s.qscheme = *ParseQScheme(c["qscheme"].get<std::string>());
  s.symmetric = c["symmetric"].get<bool>();
  s.round_method = RoundType::kHalfEven;
  s.scale_type = ScaleType::kFloat;
  s.is_dynamic = false;
  const bool per_channel = s.qscheme == QSchemeType::kPerChannel;
  if (per_channel) s.ch_axis = c["ch_axis"].get<int>();
  const std::string observer = c["observer"];
  const std::string scope = per_channel ? "PerChannel" : "PerTensor";
  if (observer == "pof2") s.observer_cls = scope + "PowOf2MinMaxObserver";
  if (observer == "pof2_minmse") s.observer_cls = scope + "PowOf2MinMSEObserver";
  if (observer == "percentile") s.observer_cls = "PerTensorPercentileObserver";
  if (observer == "mse") s.observer_cls = "PerTensorMSEObserver";
  return s;
}

TEST(OracleObservers, PowerOfTwoObserversBitExact) {
  const OracleFile file("quark_int_observers.safetensors");
  ASSERT_TRUE(file.ok());
  int checked = 0;
  for (const std::string& name : file.CaseNames()) {
    const nlohmann::json& c = file.Case(name);
    if (c["observer"] != "pof2" && c["observer"] != "pof2_minmse") continue;
    SCOPED_TRACE(name);
    ++checked;
    const QuantizationSpec spec = SpecFromCase(c);
    const at::Tensor& x = file.Get(name + ".x");
    auto params = ComputeQuantParams(spec, x);
    ASSERT_TRUE(params.ok()) << params.status();
    EXPECT_TRUE(BitEqual(params->scale, file.Get(name + ".scale"))) << "scale";
    EXPECT_TRUE(BitEqual(params->zero_point.to(at::kFloat), file.Get(name + ".zero_point")))
        << "zero_point";
    auto y = FakeQuantize(x, spec, *params);
    ASSERT_TRUE(y.ok()) << y.status();
    EXPECT_TRUE(BitEqual(*y, file.Get(name + ".y"))) << "y";
    auto q = Quantize(x, spec, *params);
    ASSERT_TRUE(q.ok()) << q.status();
    auto codes = numerics::UnpackedCodes(*q, spec);
    ASSERT_TRUE(codes.ok()) << codes.status();
    EXPECT_TRUE(BitEqual(codes->to(at::kFloat), file.Get(name + ".q"))) << "codes";
  }
  EXPECT_EQ(checked, 16);
}

// |a - b| <= tolerance elementwise; reports the worst element.
::testing::AssertionResult AllClose(const at::Tensor& a, const at::Tensor& b, const at::Tensor& tol) {
  const at::Tensor diff = (a.to(at::kFloat) - b.to(at::kFloat)).abs();
  const at::Tensor bad = diff > tol;
  if (!bad.any().item<bool>()) return ::testing::AssertionSuccess();
  const int64_t i = bad.reshape({-1}).to(at::kFloat).argmax().item<int64_t>();
  return ::testing::AssertionFailure()
         << bad.sum().item<int64_t>() << " elements off; e.g. flat " << i << ": "
         << a.reshape({-1})[i].item<float>() << " vs " << b.reshape({-1})[i].item<float>()
         << " (tolerance " << tol.expand_as(diff).reshape({-1})[i].item<float>() << ")";
}

TEST(OracleObservers, HistogramObserversWithinOneBin) {
  const OracleFile file("quark_int_observers.safetensors");
  ASSERT_TRUE(file.ok());
  int checked = 0;
  for (const std::string& name : file.CaseNames()) {
    const nlohmann::json& c = file.Case(name);
    const bool percentile = c["observer"] == "percentile";
    if (!percentile && c["observer"] != "mse") continue;
    if (percentile && !c["symmetric"].get<bool>()) continue;  // Quark bug: see the next test
    SCOPED_TRACE(name);
    ++checked;
    const QuantizationSpec spec = SpecFromCase(c);
    const at::Tensor& x = file.Get(name + ".x");
    auto params = ComputeQuantParams(spec, x);
    ASSERT_TRUE(params.ok()) << params.status();
    const at::Tensor& scale = file.Get(name + ".scale");
    // One bin of the histogram, relative to the selected range (INDEX.md: rel 1/4200 resp. 1/2048).
    const double bins = percentile ? 4200.0 : 2048.0;
    const at::Tensor scale_tol = scale.abs() / bins;
    EXPECT_TRUE(AllClose(params->scale.reshape({-1}), scale, scale_tol)) << "scale";
    EXPECT_TRUE(BitEqual(params->zero_point.to(at::kFloat), file.Get(name + ".zero_point")))
        << "zero_point";
    // y "correspondingly": each output moves by at most its code times the scale difference,
    // plus one step where that moves a rounding boundary.
    auto y = FakeQuantize(x, spec, *params);
    ASSERT_TRUE(y.ok()) << y.status();
    const at::Tensor& y_ref = file.Get(name + ".y");
    const at::Tensor q_ref = file.Get(name + ".q");
    const float zp = file.Get(name + ".zero_point").item<float>();
    const at::Tensor y_tol = (q_ref - zp).abs() * scale_tol + scale * 1.0001;
    EXPECT_TRUE(AllClose(*y, y_ref, y_tol)) << "y";
  }
  EXPECT_EQ(checked, 6);
}

// Quark's asymmetric percentile observer searches the wrong tails: its vectors have
// min = max = x_min, so every positive input is clamped to 0. Quarry takes the (100-p)/2 and
// 100-(100-p)/2 percentile bins instead, which for these 2048-sample tensors (tails of 1e-7
// samples) is the full observed range: exactly the min-max parameters.
TEST(OracleObservers, AsymmetricPercentileFixesQuarksTails) {
  const OracleFile file("quark_int_observers.safetensors");
  ASSERT_TRUE(file.ok());
  for (const std::string name : {"int8_per_tensor_asym_percentile", "uint8_per_tensor_asym_percentile"}) {
    SCOPED_TRACE(name);
    const QuantizationSpec spec = SpecFromCase(file.Case(name));
    const at::Tensor& x = file.Get(name + ".x");
    auto params = ComputeQuantParams(spec, x);
    ASSERT_TRUE(params.ok()) << params.status();
    QuantizationSpec minmax = spec;
    minmax.observer_cls = "PerTensorMinMaxObserver";
    auto expected = ComputeQuantParams(minmax, x);
    ASSERT_TRUE(expected.ok());
    EXPECT_TRUE(BitEqual(params->scale, expected->scale));
    EXPECT_TRUE(BitEqual(params->zero_point.to(at::kFloat), expected->zero_point.to(at::kFloat)));
    // Quark's (buggy) result: scale = |x_min| / (qmax - qmin), positive values clamped to 0.
    const float quark_scale = file.Get(name + ".scale").item<float>();
    const auto range = IntegerRange(spec.dtype);
    EXPECT_FLOAT_EQ(quark_scale, -x.min().item<float>() / static_cast<float>(range->second - range->first));
    EXPECT_GT(params->scale.item<float>(), quark_scale) << "Quarry covers the positive tail too";
    auto y = FakeQuantize(x, spec, *params);
    ASSERT_TRUE(y.ok());
    EXPECT_GT(y->max().item<float>(), 0.9f * x.max().item<float>());
    EXPECT_EQ(file.Get(name + ".y").max().item<float>(), 0.0f);
  }
}

// The selected percentile range of a symmetric histogram is a bin edge: check it is the edge
// just below the p-th percentile of |x| (a direct, histogram-free computation).
TEST(OracleObservers, SymmetricPercentileRangeIsTheBinBelowThePercentile) {
  const OracleFile file("quark_int_observers.safetensors");
  const std::string name = "int8_per_tensor_sym_percentile";
  const QuantizationSpec spec = SpecFromCase(file.Case(name));
  auto plan = numerics::MakePlan(spec);
  ASSERT_TRUE(plan.ok());
  numerics::HistogramObserver observer(*plan, numerics::HistogramObserver::Kind::kPercentile);
  const at::Tensor& x = file.Get(name + ".x");
  ASSERT_TRUE(observer.Observe(x).ok());
  const auto [lo, hi] = observer.SelectedRange();
  EXPECT_EQ(lo, 0.0f);
  const float amax = x.abs().max().item<float>();
  const float width = amax / 4200.0f;
  // p = 99.99999999% of 2048 samples is every sample: the bin holding max |x|.
  EXPECT_LE(hi, amax);
  EXPECT_GE(hi, amax - 1.001f * width);
}

}  // namespace
}  // namespace quarry
