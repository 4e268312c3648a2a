// Every validation rule, with the path of the bad field in the message.
#include <gtest/gtest.h>

#include "absl/strings/str_join.h"
#include "quarry/config_validate.h"
#include "quarry/spec_helpers.h"

namespace quarry {
namespace {

QuantizationSpec Int4Group(int g) {
  return *Int4PerGroupSpec{true, 1, false, "float", "half_even", g}.ToQuantizationSpec();
}

// The messages of the errors (not warnings) found in `issues`.
std::vector<std::string> Errors(const std::vector<ConfigIssue>& issues) {
  std::vector<std::string> out;
  for (const auto& i : issues)
    if (i.is_error()) out.push_back(i.ToString());
  return out;
}
std::vector<std::string> Warnings(const std::vector<ConfigIssue>& issues) {
  std::vector<std::string> out;
  for (const auto& i : issues)
    if (!i.is_error()) out.push_back(i.ToString());
  return out;
}

// Expects exactly one error whose text contains `needle`.
void ExpectOneError(const QuantizationSpec& s, const std::string& needle) {
  auto errors = Errors(ValidateSpec(s, "w"));
  ASSERT_EQ(errors.size(), 1u) << absl::StrJoin(errors, "\n");
  EXPECT_NE(errors[0].find(needle), std::string::npos) << errors[0];
}

TEST(Validate, ValidSpecsHaveNoErrors) {
  EXPECT_TRUE(Errors(ValidateSpec(Int4Group(128), "w")).empty());
  EXPECT_TRUE(Errors(ValidateSpec(*OCP_MXFP4Spec{}.ToQuantizationSpec(), "w")).empty());
  EXPECT_TRUE(Errors(ValidateSpec(*MX6Spec{}.ToQuantizationSpec(), "w")).empty());
  EXPECT_TRUE(Errors(ValidateSpec(*BFP16Spec{}.ToQuantizationSpec(), "w")).empty());
  EXPECT_TRUE(Errors(ValidateSpec(*OCP_MXINT8Spec{}.ToQuantizationSpec(), "w")).empty());
  EXPECT_TRUE(Errors(ValidateSpec(*Float16Spec{}.ToQuantizationSpec(), "w")).empty());
  EXPECT_TRUE(Errors(ValidateSpec(
                  *FP8E4M3PerTensorSpec{"min_max", "float", false}.ToQuantizationSpec(), "w"))
                  .empty());
}

TEST(Validate, PerGroupWithoutGroupSize) {
  QuantizationSpec s = Int4Group(128);
  s.group_size.reset();
  ExpectOneError(s, "w.group_size: must be > 0 (or -1) for per_group");
}

TEST(Validate, GroupSizeMustBePositive) {
  ExpectOneError(Int4Group(0), "w.group_size: must be > 0");
  ExpectOneError(Int4Group(-3), "w.group_size: must be > 0");
  EXPECT_TRUE(Errors(ValidateSpec(Int4Group(-1), "w")).empty());  // whole dimension
}

TEST(Validate, IntegerDtypesNeedObserverFields) {
  QuantizationSpec s = *Int8PerTensorSpec{}.ToQuantizationSpec();  // all None
  auto errors = Errors(ValidateSpec(s, "w"));
  std::string all = absl::StrJoin(errors, "\n");
  for (const char* f : {"w.is_dynamic", "w.symmetric", "w.round_method", "w.scale_type",
                        "w.observer_cls"})
    EXPECT_NE(all.find(f), std::string::npos) << f << " in\n" << all;
}

TEST(Validate, ObserverMustMatchQscheme) {
  QuantizationSpec s = Int4Group(32);
  s.observer_cls = "PerTensorMinMaxObserver";
  ExpectOneError(s, "w.observer_cls: PerTensorMinMaxObserver is not a per-group observer");
  QuantizationSpec c = *Int8PerChannelSpec{true, "float", "half_even", 0, false}.ToQuantizationSpec();
  c.ch_axis.reset();
  ExpectOneError(c, "w.ch_axis: required for per_channel");
}

TEST(Validate, ObserverMustServeDtype) {
  QuantizationSpec s = Int4Group(32);
  s.observer_cls = "PerBlockMXObserver";
  ExpectOneError(s, "PerBlockMXObserver serves fp8/fp6/fp4 elements, not dtype int4");
  QuantizationSpec f = *FP4PerGroupSpec{"float32", std::nullopt, -1, false, 32}.ToQuantizationSpec();
  f.observer_cls = "PerGroupMinMaxObserver";
  ExpectOneError(f, "PerGroupMinMaxObserver serves integer dtypes, not fp4");
  QuantizationSpec t = *Int8PerTensorSpec{"min_max", true, "float", "half_even", false}
                            .ToQuantizationSpec();
  t.observer_cls = "TQTObserver";
  ExpectOneError(t, "post-training quantization only");
  QuantizationSpec p = *FP8E4M3PerTensorSpec{"min_max", "float", false}.ToQuantizationSpec();
  p.observer_cls = "PerTensorPowOf2MinMaxObserver";
  ExpectOneError(p, "not an integer type");
}

TEST(Validate, ScaleFormatMustFitDtype) {
  QuantizationSpec s = Int4Group(32);
  s.scale_format = "e8m0";
  ExpectOneError(s, "w.scale_format: 'e8m0' scales exist only for per_group fp4/fp6/fp8");
  QuantizationSpec f = *FP6E2M3PerGroupSpec{"e4m3", std::nullopt, -1, false, 32}.ToQuantizationSpec();
  ExpectOneError(f, "e4m3 (two-level fp8) scales are for fp4 only");
  f.scale_format = "int4";
  ExpectOneError(f, "unknown scale_format 'int4'");
  QuantizationSpec ok = *FP4PerGroupSpec{"e4m3", std::nullopt, -1, false, 16}.ToQuantizationSpec();
  EXPECT_TRUE(Errors(ValidateSpec(ok, "w")).empty());
}

TEST(Validate, MxElementDtype) {
  QuantizationSpec s = Int4Group(32);
  s.mx_element_dtype = Dtype::kFp4;
  ExpectOneError(s, "w.mx_element_dtype: only meaningful for dtype mx");
  QuantizationSpec mx = *OCP_MXINT8Spec{}.ToQuantizationSpec();
  mx.mx_element_dtype.reset();
  ExpectOneError(mx, "w.mx_element_dtype: required for dtype mx");
  mx.mx_element_dtype = Dtype::kUint4;
  ExpectOneError(mx, "MX elements are fp8_e4m3, fp8_e5m2, fp6_e3m2, fp6_e2m3, fp4 or int8");
}

TEST(Validate, BlockFormats) {
  QuantizationSpec b = *BFP16Spec{}.ToQuantizationSpec();
  b.group_size = 16;
  ExpectOneError(b, "bfp16 uses blocks of 8");
  QuantizationSpec m = *MX9Spec{}.ToQuantizationSpec();
  m.ch_axis.reset();
  ExpectOneError(m, "w.ch_axis: required for dtype mx9");
  m = *MX6Spec{}.ToQuantizationSpec();
  m.scale_calculation_mode = "round";
  ExpectOneError(m, "expected even, floor or ceil");
  m = *MX6Spec{}.ToQuantizationSpec();
  m.symmetric = true;
  auto w = Warnings(ValidateSpec(m, "w"));
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("w.symmetric: has no effect for dtype mx6"), std::string::npos);
}

TEST(Validate, FloatFormatsWarnAboutIgnoredFields) {
  QuantizationSpec s = *FP8E4M3PerChannelSpec{false, "float", "floor", 0, false}.ToQuantizationSpec();
  EXPECT_TRUE(Errors(ValidateSpec(s, "w")).empty());
  auto w = absl::StrJoin(Warnings(ValidateSpec(s, "w")), "\n");
  EXPECT_NE(w.find("w.round_method"), std::string::npos) << w;
  EXPECT_NE(w.find("w.symmetric"), std::string::npos) << w;
  s.scale_type = ScaleType::kPof2;
  ExpectOneError(s, "power-of-two scales are for integer dtypes");
}

TEST(Validate, PerBlockIsRejectedClearly) {
  QuantizationSpec s = Int4Group(32);
  s.qscheme = QSchemeType::kPerBlock;
  ExpectOneError(s, "per_block (2-D blocks) is not supported yet");
}

TEST(Validate, TwoStageRules) {
  TensorSpecs first_scale;
  QuantizationSpec s = Int4Group(32);
  s.is_scale_quant = true;
  first_scale = TensorSpecs(std::vector<QuantizationSpec>{s, Int4Group(32)});
  auto errors = Errors(ValidateTensorSpecs(first_scale, "weight"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("weight[0].is_scale_quant"), std::string::npos);
  TensorSpecs three(std::vector<QuantizationSpec>{Int4Group(32), Int4Group(32), Int4Group(32)});
  EXPECT_NE(absl::StrJoin(Errors(ValidateTensorSpecs(three, "weight")), "").find("at most two"),
            std::string::npos);
}

TEST(Validate, ConfigPathsNameTheLayerRule) {
  Config c;
  c.global_quant_config.weight = TensorSpecs(Int4Group(128));
  QuantizationSpec bad = Int4Group(128);
  bad.group_size.reset();
  QuantizationConfig layer;
  layer.weight = TensorSpecs(bad);
  c.layer_quant_config.emplace_back("*.down_proj", layer);
  absl::Status st = CheckConfig(c);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find(
                "layer_quant_config[\"*.down_proj\"].weight.group_size: must be > 0 (or -1) for "
                "per_group"),
            absl::string_view::npos)
      << st;
}

TEST(Validate, ConfigLevelRules) {
  Config c;
  c.global_quant_config.weight = TensorSpecs(Int4Group(128));
  c.min_kv_scale = -1;
  c.log_severity_level = 9;
  c.exclude = {""};
  c.softmax_quant_spec = Int4Group(32);
  GPTQConfig g;
  g.block_size = 0;
  c.algo_config = std::vector<AlgoConfig>{g};
  std::string all = absl::StrJoin(Errors(ValidateConfig(c)), "\n");
  for (const char* needle : {"min_kv_scale: must be >= 0", "log_severity_level: must be 0",
                             "exclude[0]: empty pattern", "softmax_quant_spec.qscheme",
                             "algo_config[0].block_size: must be > 0"})
    EXPECT_NE(all.find(needle), std::string::npos) << needle << " in\n" << all;
}

TEST(Validate, NoInheritanceWarning) {
  Config c;
  c.global_quant_config.weight = TensorSpecs(Int4Group(128));
  QuantizationConfig partial;  // weight None
  partial.input_tensors = TensorSpecs(
      *Int8PerTensorSpec{"min_max", true, "float", "half_even", false}.ToQuantizationSpec());
  c.layer_quant_config.emplace_back("*.o_proj", partial);
  auto issues = ValidateConfig(c);
  EXPECT_TRUE(Errors(issues).empty());
  std::string w = absl::StrJoin(Warnings(issues), "\n");
  EXPECT_NE(w.find("layer_quant_config[\"*.o_proj\"].weight: is None: matching layers' weights "
                   "are not quantized"),
            std::string::npos)
      << w;
}

TEST(Validate, KvCacheWithoutGroupWarns) {
  Config c;
  QuantizationConfig kv;
  kv.output_tensors = TensorSpecs(*FP8E4M3PerTensorSpec{"min_max", std::nullopt, false}
                                       .ToQuantizationSpec());
  c.kv_cache_quant_config.emplace_back("*k_proj", kv);
  std::string w = absl::StrJoin(Warnings(ValidateConfig(c)), "\n");
  EXPECT_NE(w.find("kv_cache_group: is empty"), std::string::npos) << w;
}

}  // namespace
}  // namespace quarry
