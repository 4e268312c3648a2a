// Every helper's seed defaults and the QuantizationSpec it produces (Quark 0.10 semantics:
// arguments pass through, None stays None, only hard-coded values are added).
#include <gtest/gtest.h>

#include "quarry/spec_helpers.h"

namespace quarry {
namespace {

QuantizationSpec Spec(const absl::StatusOr<QuantizationSpec>& s) {
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : QuantizationSpec{};
}

TEST(SpecHelpers, SeedDefaultsOfGroupHelpers) {
  EXPECT_EQ(Int4PerGroupSpec{}.symmetric, std::optional<bool>(true));
  EXPECT_EQ(Int4PerGroupSpec{}.round_method, std::optional<std::string>("half_even"));
  EXPECT_EQ(Uint4PerGroupSpec{}.symmetric, std::optional<bool>(false));
  EXPECT_EQ(Uint4PerGroupSpec{}.round_method, std::optional<std::string>("half_even"));
  EXPECT_EQ(Uint4PerChannelSpec{}.zero_point_type, std::optional<std::string>("int32"));
  EXPECT_FALSE(Int8PerTensorSpec{}.observer_method.has_value());
  EXPECT_FALSE(Int3PerGroupSpec{}.group_size.has_value());
  EXPECT_EQ(FP4PerGroupSpec{}.scale_format, std::optional<std::string>("float32"));
  EXPECT_EQ(FP4PerGroupSpec{}.ch_axis, std::optional<int>(-1));
  EXPECT_FALSE(FP4PerGroupSpec{}.scale_calculation_mode.has_value());
  EXPECT_EQ(FP8E4M3PerGroupSpec{}.scale_format, std::optional<std::string>("float32"));
  EXPECT_EQ(OCP_MXFP4Spec{}.is_dynamic, std::optional<bool>(true));
  EXPECT_EQ(OCP_MXFP4Spec{}.ch_axis, std::optional<int>(-1));
  EXPECT_EQ(OCP_MXFP4Spec{}.scale_calculation_mode, std::optional<std::string>("even"));
  EXPECT_FALSE(OCP_MXFP4DiffsSpec{}.ch_axis.has_value());
  EXPECT_EQ(MX6Spec{}.block_size, std::optional<int>(32));
  EXPECT_EQ(MX9Spec{}.scale_calculation_mode, std::optional<std::string>("even"));
  EXPECT_EQ(BFP16Spec{}.ch_axis, std::optional<int>(-1));
}

TEST(SpecHelpers, IntegerPerGroupDefaults) {
  QuantizationSpec s = Spec(Int4PerGroupSpec{}.ToQuantizationSpec());
  EXPECT_EQ(s.dtype, Dtype::kInt4);
  EXPECT_EQ(s.qscheme, QSchemeType::kPerGroup);
  EXPECT_EQ(s.observer_cls, std::optional<std::string>("PerGroupMinMaxObserver"));
  EXPECT_EQ(s.symmetric, std::optional<bool>(true));
  EXPECT_EQ(s.round_method, RoundType::kHalfEven);
  EXPECT_FALSE(s.scale_type.has_value());   // None passes through
  EXPECT_FALSE(s.group_size.has_value());
  EXPECT_FALSE(s.is_dynamic.has_value());
  EXPECT_EQ(s.zero_point_type, ZeroPointType::kInt32);

  QuantizationSpec u = Spec(Uint4PerGroupSpec{false, 1, false, "float", "half_even", 128}
                                .ToQuantizationSpec());
  EXPECT_EQ(u.dtype, Dtype::kUint4);
  EXPECT_EQ(u.symmetric, std::optional<bool>(false));
  EXPECT_EQ(u.scale_type, ScaleType::kFloat);
  EXPECT_EQ(u.group_size, std::optional<int>(128));
  EXPECT_EQ(u.ch_axis, std::optional<int>(1));
}

TEST(SpecHelpers, PerTensorHelpersMapObserverMethod) {
  Int8PerTensorSpec h;
  h.observer_method = "min_max";
  EXPECT_EQ(Spec(h.ToQuantizationSpec()).observer_cls,
            std::optional<std::string>("PerTensorMinMaxObserver"));
  h.observer_method = "percentile";
  EXPECT_EQ(Spec(h.ToQuantizationSpec()).observer_cls,
            std::optional<std::string>("PerTensorPercentileObserver"));
  h.observer_method = "MSE";
  EXPECT_EQ(Spec(h.ToQuantizationSpec()).observer_cls,
            std::optional<std::string>("PerTensorMSEObserver"));
  h.observer_method = "histogram";
  EXPECT_EQ(Spec(h.ToQuantizationSpec()).observer_cls,
            std::optional<std::string>("PerTensorHistogramObserver"));
  h.observer_method = "mse";  // Quark accepts upper-case only
  auto bad = h.ToQuantizationSpec();
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("observer_method 'mse'"), absl::string_view::npos);
  Int8PerTensorSpec none;
  QuantizationSpec n = Spec(none.ToQuantizationSpec());
  EXPECT_FALSE(n.observer_cls.has_value());
  EXPECT_EQ(n.qscheme, QSchemeType::kPerTensor);
  EXPECT_FALSE(n.symmetric.has_value());
}

TEST(SpecHelpers, ScaleTypeStrings) {
  Int8PerChannelSpec h;
  h.scale_type = "power_of_2";
  EXPECT_EQ(Spec(h.ToQuantizationSpec()).scale_type, ScaleType::kPof2);
  h.scale_type = "float";
  EXPECT_EQ(Spec(h.ToQuantizationSpec()).scale_type, ScaleType::kFloat);
  h.scale_type = "pof2";  // the enum name is not a helper string
  EXPECT_FALSE(h.ToQuantizationSpec().ok());
  h.scale_type = std::nullopt;
  h.round_method = "nearest";
  EXPECT_FALSE(h.ToQuantizationSpec().ok());
}

TEST(SpecHelpers, PerChannelHelpers) {
  Uint4PerChannelSpec h;
  h.zero_point_type = "float32";
  QuantizationSpec s = Spec(h.ToQuantizationSpec());
  EXPECT_EQ(s.dtype, Dtype::kUint4);
  EXPECT_EQ(s.observer_cls, std::optional<std::string>("PerChannelMinMaxObserver"));
  EXPECT_EQ(s.qscheme, QSchemeType::kPerChannel);
  EXPECT_EQ(s.zero_point_type, ZeroPointType::kFloat32);
  for (auto spec : {Spec(Int3PerChannelSpec{}.ToQuantizationSpec()),
                    Spec(Int4PerChannelSpec{}.ToQuantizationSpec()),
                    Spec(Uint8PerChannelSpec{}.ToQuantizationSpec()),
                    Spec(Int8PerChannelSpec{}.ToQuantizationSpec()),
                    Spec(FP8E4M3PerChannelSpec{}.ToQuantizationSpec()),
                    Spec(FP8E5M2PerChannelSpec{}.ToQuantizationSpec())}) {
    EXPECT_EQ(spec.qscheme, QSchemeType::kPerChannel);
    EXPECT_EQ(spec.observer_cls, std::optional<std::string>("PerChannelMinMaxObserver"));
    EXPECT_FALSE(spec.symmetric.has_value());
  }
}

TEST(SpecHelpers, Fp8PerTensorHardCodesSymmetricAndRounding) {
  QuantizationSpec e4 = Spec(FP8E4M3PerTensorSpec{"min_max", std::nullopt, false}.ToQuantizationSpec());
  EXPECT_EQ(e4.dtype, Dtype::kFp8E4M3);
  EXPECT_EQ(e4.symmetric, std::optional<bool>(true));
  EXPECT_EQ(e4.round_method, RoundType::kHalfEven);
  EXPECT_FALSE(e4.scale_type.has_value());
  EXPECT_EQ(e4.is_dynamic, std::optional<bool>(false));
  // The e5m2 helper hard-codes nothing.
  QuantizationSpec e5 = Spec(FP8E5M2PerTensorSpec{}.ToQuantizationSpec());
  EXPECT_EQ(e5.dtype, Dtype::kFp8E5M2);
  EXPECT_FALSE(e5.symmetric.has_value());
  EXPECT_FALSE(e5.round_method.has_value());
}

TEST(SpecHelpers, FloatPerGroupHelpers) {
  FP4PerGroupSpec h;
  h.group_size = 16;
  QuantizationSpec s = Spec(h.ToQuantizationSpec());
  EXPECT_EQ(s.dtype, Dtype::kFp4);
  EXPECT_EQ(s.observer_cls, std::optional<std::string>("PerBlockMXObserver"));
  EXPECT_EQ(s.scale_type, ScaleType::kFloat);
  EXPECT_EQ(s.scale_format, std::optional<std::string>("float32"));
  EXPECT_EQ(s.round_method, RoundType::kHalfEven);
  EXPECT_EQ(s.qscheme, QSchemeType::kPerGroup);
  EXPECT_EQ(s.ch_axis, std::optional<int>(-1));
  EXPECT_FALSE(s.symmetric.has_value());
  EXPECT_EQ(Spec(FP6E2M3PerGroupSpec{}.ToQuantizationSpec()).dtype, Dtype::kFp6E2M3);
  EXPECT_EQ(Spec(FP6E3M2PerGroupSpec{}.ToQuantizationSpec()).dtype, Dtype::kFp6E3M2);
  EXPECT_EQ(Spec(FP8E4M3PerGroupSpec{}.ToQuantizationSpec()).dtype, Dtype::kFp8E4M3);
  EXPECT_EQ(Spec(FP8E5M2PerGroupSpec{}.ToQuantizationSpec()).dtype, Dtype::kFp8E5M2);
}

TEST(SpecHelpers, OcpMxHelpers) {
  struct Case {
    QuantizationSpec spec;
    Dtype dtype;
  };
  std::vector<Case> cases = {{Spec(OCP_MXFP8E4M3Spec{}.ToQuantizationSpec()), Dtype::kFp8E4M3},
                             {Spec(OCP_MXFP8E5M2Spec{}.ToQuantizationSpec()), Dtype::kFp8E5M2},
                             {Spec(OCP_MXFP6E3M2Spec{}.ToQuantizationSpec()), Dtype::kFp6E3M2},
                             {Spec(OCP_MXFP6E2M3Spec{}.ToQuantizationSpec()), Dtype::kFp6E2M3},
                             {Spec(OCP_MXFP4Spec{}.ToQuantizationSpec()), Dtype::kFp4}};
  for (const auto& c : cases) {
    EXPECT_EQ(c.spec.dtype, c.dtype);
    EXPECT_EQ(c.spec.observer_cls, std::optional<std::string>("PerBlockMXObserver"));
    EXPECT_EQ(c.spec.scale_format, std::optional<std::string>("e8m0"));
    EXPECT_EQ(c.spec.group_size, std::optional<int>(32));
    EXPECT_EQ(c.spec.qscheme, QSchemeType::kPerGroup);
    EXPECT_EQ(c.spec.scale_calculation_mode, std::optional<std::string>("even"));
    EXPECT_EQ(c.spec.is_dynamic, std::optional<bool>(true));
    EXPECT_EQ(c.spec.ch_axis, std::optional<int>(-1));
    EXPECT_EQ(c.spec.scale_type, ScaleType::kFloat);
    EXPECT_FALSE(c.spec.symmetric.has_value());
  }
  QuantizationSpec int8 = Spec(OCP_MXINT8Spec{false, -1, "floor"}.ToQuantizationSpec());
  EXPECT_EQ(int8.dtype, Dtype::kMx);
  EXPECT_EQ(int8.mx_element_dtype, Dtype::kInt8);
  EXPECT_EQ(int8.group_size, std::optional<int>(32));
  EXPECT_EQ(int8.scale_calculation_mode, std::optional<std::string>("floor"));
  EXPECT_FALSE(int8.is_dynamic.has_value());  // Quark ignores is_dynamic for MXINT8
  EXPECT_FALSE(int8.observer_cls.has_value());
  QuantizationSpec diffs = Spec(OCP_MXFP4DiffsSpec{}.ToQuantizationSpec());
  EXPECT_EQ(diffs.observer_cls, std::optional<std::string>("PerBlockMXDiffsObserver"));
}

TEST(SpecHelpers, BlockAndCastHelpers) {
  QuantizationSpec mx6 = Spec(MX6Spec{}.ToQuantizationSpec());
  EXPECT_EQ(mx6.dtype, Dtype::kMx6);
  EXPECT_EQ(mx6.group_size, std::optional<int>(32));
  EXPECT_EQ(mx6.ch_axis, std::optional<int>(-1));
  EXPECT_FALSE(mx6.qscheme.has_value());
  MX9Spec m9;
  m9.block_size = 16;
  EXPECT_EQ(Spec(m9.ToQuantizationSpec()).group_size, std::optional<int>(16));
  QuantizationSpec bfp = Spec(BFP16Spec{}.ToQuantizationSpec());
  EXPECT_EQ(bfp.dtype, Dtype::kBfp16);
  EXPECT_EQ(bfp.group_size, std::optional<int>(8));
  QuantizationSpec f16 = Spec(Float16Spec{}.ToQuantizationSpec());
  EXPECT_EQ(f16.dtype, Dtype::kFloat16);
  EXPECT_FALSE(f16.observer_cls.has_value());
  EXPECT_EQ(Spec(Bfloat16Spec{}.ToQuantizationSpec()).dtype, Dtype::kBfloat16);
}

TEST(SpecHelpers, TwoStageSpecs) {
  FP4PerGroupSpec first;
  first.group_size = 16;
  first.is_dynamic = false;
  ScaleQuantSpec sq{first, FP8E4M3PerTensorSpec{"min_max", std::nullopt, false}};
  auto specs = sq.ToQuantizationSpec();
  ASSERT_TRUE(specs.ok());
  ASSERT_EQ(specs->size(), 2u);
  EXPECT_FALSE((*specs)[0].is_scale_quant);
  EXPECT_TRUE((*specs)[1].is_scale_quant);
  EXPECT_EQ((*specs)[1].dtype, Dtype::kFp8E4M3);
  ProgressiveSpec pg{FP8E4M3PerTensorSpec{"min_max", "float", false},
                     Int4PerChannelSpec{false, "float", "half_even", 0, false}};
  auto p = pg.ToQuantizationSpec();
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE((*p)[1].is_scale_quant);
  EXPECT_EQ((*p)[1].dtype, Dtype::kInt4);
  EXPECT_EQ((*p)[1].symmetric, std::optional<bool>(false));
  Int8PerTensorSpec unknown_observer;
  unknown_observer.observer_method = "nope";
  ProgressiveSpec bad{unknown_observer, Float16Spec{}};
  EXPECT_FALSE(bad.ToQuantizationSpec().ok());
}

}  // namespace
}  // namespace quarry
