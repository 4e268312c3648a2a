// Proto <-> core conversion: every helper round-trips as a helper message and resolves to the
// same QuantizationSpec; configs round-trip; bad wire values name their field.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "convert/config_convert.h"
#include "quarry/presets.h"

namespace quarry {
namespace {

std::vector<StageSpec> AllHelpers() {
  return {
      Uint4PerTensorSpec{"min_max", false, "float", "half_even", true},
      Uint4PerChannelSpec{false, "float", "round", 0, false, "float32"},
      Uint4PerGroupSpec{},
      Int3PerGroupSpec{true, "float", "half_even", 1, false, 32},
      Int3PerChannelSpec{},
      Int2PerGroupSpec{true, "float", "half_even", 1, false, 32},
      Int4PerTensorSpec{"MSE", true, "power_of_2", "floor", false},
      Int4PerChannelSpec{true, "float", "half_even", 0, false},
      Int4PerGroupSpec{},
      Uint8PerTensorSpec{"percentile", true, "float", "half_even", false},
      Uint8PerChannelSpec{true, "float", "half_even", 0, false},
      Uint8PerGroupSpec{false, "float", "half_even", 1, false, 128},
      Int8PerTensorSpec{},
      Int8PerChannelSpec{true, "float", "half_even", 1, true},
      Int8PerGroupSpec{true, "float", "half_even", 1, false, 128},
      FP8E4M3PerTensorSpec{"min_max", "float", false},
      FP8E4M3PerChannelSpec{},
      FP8E4M3PerGroupSpec{"e8m0", "even", -1, true, 32},
      FP8E5M2PerTensorSpec{},
      FP8E5M2PerChannelSpec{true, "float", "half_even", 0, false},
      FP8E5M2PerGroupSpec{},
      FP4PerGroupSpec{"e4m3", std::nullopt, -1, false, 16},
      FP6E2M3PerGroupSpec{},
      FP6E3M2PerGroupSpec{"e8m0", "ceil", 0, true, 32},
      Float16Spec{},
      Bfloat16Spec{},
      OCP_MXFP8E4M3Spec{},
      OCP_MXFP8E5M2Spec{false, -1, "floor"},
      OCP_MXFP6E3M2Spec{},
      OCP_MXFP6E2M3Spec{true, 0, "even"},
      OCP_MXFP4Spec{false, 1, "ceil"},
      OCP_MXINT8Spec{},
      OCP_MXFP4DiffsSpec{-1, false, "even"},
      MX6Spec{},
      MX9Spec{-1, 16, "floor", false},
      BFP16Spec{0, "even", std::nullopt},
  };
}

TEST(ConfigConvert, EveryHelperRoundTrips) {
  auto helpers = AllHelpers();
  ASSERT_EQ(helpers.size(), std::variant_size_v<StageSpec> - 1);
  for (const auto& h : helpers) {
    v1::TensorQuantSpec p;
    convert::ToProto(h, &p);
    ASSERT_NE(p.spec_case(), v1::TensorQuantSpec::kQuantizationSpec);
    // Survives the wire.
    v1::TensorQuantSpec wire;
    ASSERT_TRUE(wire.ParseFromString(p.SerializeAsString()));
    auto back = convert::StageSpecFromProto(wire);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->index(), h.index());
    EXPECT_TRUE(*back == h) << p.DebugString();
    // Resolves to what the helper produces in core.
    auto resolved = convert::ResolveSpec(wire);
    ASSERT_TRUE(resolved.ok()) << resolved.status();
    ASSERT_EQ(resolved->size(), 1u);
    EXPECT_EQ((*resolved)[0], *ToQuantizationSpec(h)) << p.DebugString();
    // And the plain spec round-trips too.
    auto plain = convert::FromProto(convert::ToProto((*resolved)[0]));
    ASSERT_TRUE(plain.ok());
    EXPECT_EQ(*plain, (*resolved)[0]);
  }
}

TEST(ConfigConvert, UnsetHelperFieldsTakeSeedDefaults) {
  v1::TensorQuantSpec p;
  p.mutable_uint4_per_group()->set_group_size(32);
  auto s = convert::ResolveSpec(p);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)[0].symmetric, std::optional<bool>(false));  // Uint4PerGroupSpec default
  EXPECT_EQ((*s)[0].round_method, RoundType::kHalfEven);
  v1::TensorQuantSpec mx;
  mx.mutable_ocp_mxfp4();
  auto m = convert::ResolveSpec(mx);
  EXPECT_EQ((*m)[0].is_dynamic, std::optional<bool>(true));
  EXPECT_EQ((*m)[0].scale_calculation_mode, std::optional<std::string>("even"));
}

TEST(ConfigConvert, TwoStageSpecs) {
  FP4PerGroupSpec first;
  first.group_size = 16;
  first.is_dynamic = false;
  ScaleQuantSpec sq{first, FP8E4M3PerTensorSpec{"min_max", std::nullopt, false}};
  v1::TensorQuantSpec p;
  convert::ToProto(sq, &p);
  auto specs = convert::ResolveSpec(p, "weight");
  ASSERT_TRUE(specs.ok()) << specs.status();
  EXPECT_EQ(*specs, *sq.ToQuantizationSpec());
  v1::TensorQuantSpec nested;
  *nested.mutable_progressive()->mutable_first_stage() = p;
  nested.mutable_progressive()->mutable_second_stage()->mutable_float16();
  auto bad = convert::ResolveSpec(nested, "weight");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("weight.progressive.first_stage"), absl::string_view::npos);
}

TEST(ConfigConvert, EveryPresetRoundTrips) {
  for (const auto& info : ListPresets()) {
    auto c = PresetConfig(info.name + "+kv_fp8+attn_fp8");
    ASSERT_TRUE(c.ok());
    GPTQConfig g;
    g.inside_layer_modules = {"mlp.down_proj"};
    QuaRotConfig quarot;
    quarot.scaling_layers_json = R"({"a":[1,2]})";
    c->algo_config = std::vector<AlgoConfig>{g, quarot};
    v1::Config p = convert::ToProto(*c);
    v1::Config wire;
    ASSERT_TRUE(wire.ParseFromString(p.SerializeAsString()));
    auto back = convert::FromProto(wire);
    ASSERT_TRUE(back.ok()) << info.name << ": " << back.status();
    EXPECT_EQ(*back, *c) << info.name;
  }
}

TEST(ConfigConvert, BadWireValuesNameTheField) {
  v1::Config c;
  auto* w = c.mutable_global_quant_config()->mutable_weight()->add_specs();
  w->mutable_quantization_spec();  // dtype unspecified
  auto r = convert::FromProto(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("global_quant_config.weight.dtype"), absl::string_view::npos)
      << r.status();
  v1::Config no_global;
  EXPECT_FALSE(convert::FromProto(no_global).ok());
  v1::Config helper;
  helper.mutable_global_quant_config()->mutable_weight()->add_specs()->mutable_int8_per_tensor()
      ->set_observer_method("nope");
  auto h = convert::FromProto(helper);
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find("global_quant_config.weight: observer_method 'nope'"),
            absl::string_view::npos)
      << h.status();
  v1::Config tqt;
  tqt.mutable_global_quant_config();
  tqt.add_algo_config()->mutable_tqt();
  EXPECT_FALSE(convert::FromProto(tqt).ok());
}

}  // namespace
}  // namespace quarry
