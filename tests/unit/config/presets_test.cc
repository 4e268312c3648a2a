// Presets: each validates, resolves on the fixture, and carries the specs Quark's template uses.
#include <gtest/gtest.h>

#include "quarry/config_validate.h"
#include "quarry/layer_plan.h"
#include "quarry/presets.h"

namespace quarry {
namespace {

TEST(Presets, AllRequiredNamesExist) {
  for (const char* name : {"int4_wo_32", "int4_wo_64", "int4_wo_128", "int4_wo_per_channel",
                           "uint4_wo_32", "uint4_wo_64", "uint4_wo_128", "int8", "fp8",
                           "ptpc_fp8", "mxfp4", "mxfp4_weight_only", "mxfp6_e3m2", "mxfp6_e2m3",
                           "mx6", "bfp16", "int4_fp8", "fp8+kv_fp8"}) {
    auto c = PresetConfig(name);
    ASSERT_TRUE(c.ok()) << name << ": " << c.status();
    std::vector<std::string> warnings;
    EXPECT_TRUE(CheckConfig(*c, &warnings).ok()) << name << ": " << CheckConfig(*c);
  }
}

TEST(Presets, EveryPresetResolvesOnTheFixture) {
  auto modules = ListModelModules(std::string(QUARRY_TEST_DATA_DIR) + "/models/tiny-llama-kjv");
  ASSERT_TRUE(modules.ok());
  for (const auto& p : ListPresets()) {
    auto c = PresetConfig(p.name + "+kv_fp8");
    ASSERT_TRUE(c.ok()) << p.name;
    auto plan = ResolveLayerPlan(*c, *modules);
    ASSERT_TRUE(plan.ok()) << p.name << ": " << plan.status();
    for (const auto& i : plan->issues) EXPECT_FALSE(i.is_error()) << p.name << ": " << i.ToString();
    EXPECT_TRUE(plan->Find("lm_head")->excluded) << p.name;
  }
}

TEST(Presets, SchemeContents) {
  auto int8 = PresetConfig("int8");
  ASSERT_TRUE(int8.ok());
  const auto& w = int8->global_quant_config.weight->front();
  EXPECT_EQ(w.dtype, Dtype::kInt8);
  EXPECT_EQ(w.qscheme, QSchemeType::kPerTensor);
  EXPECT_EQ(w.symmetric, std::optional<bool>(true));
  EXPECT_EQ(int8->global_quant_config.input_tensors->front(), w);
  EXPECT_EQ(int8->exclude, (std::vector<std::string>{"lm_head"}));

  auto u4 = PresetConfig("uint4_wo_64");
  const auto& u = u4->global_quant_config.weight->front();
  EXPECT_EQ(u.dtype, Dtype::kUint4);
  EXPECT_EQ(u.symmetric, std::optional<bool>(false));
  EXPECT_EQ(u.group_size, std::optional<int>(64));
  EXPECT_EQ(u.ch_axis, std::optional<int>(-1));
  EXPECT_FALSE(u4->global_quant_config.input_tensors.has_value());

  auto mx = PresetConfig("mxfp4");
  EXPECT_EQ(mx->global_quant_config.weight->front().is_dynamic, std::optional<bool>(false));
  EXPECT_EQ(mx->global_quant_config.input_tensors->front().is_dynamic, std::optional<bool>(true));

  auto ptpc = PresetConfig("ptpc_fp8");
  EXPECT_EQ(ptpc->global_quant_config.weight->front().ch_axis, std::optional<int>(0));
  EXPECT_EQ(ptpc->global_quant_config.input_tensors->front().ch_axis, std::optional<int>(1));

  auto i4f8 = PresetConfig("int4_fp8");
  ASSERT_EQ(i4f8->global_quant_config.weight->specs.size(), 2u);
  EXPECT_EQ(i4f8->global_quant_config.weight->specs[0].dtype, Dtype::kFp8E4M3);
  EXPECT_EQ(i4f8->global_quant_config.weight->specs[1].dtype, Dtype::kInt4);

  auto kv = PresetConfig("fp8+kv_fp8");
  EXPECT_EQ(kv->kv_cache_group, (std::vector<std::string>{"*k_proj", "*v_proj"}));
  ASSERT_EQ(kv->kv_cache_quant_config.size(), 2u);
  EXPECT_EQ(kv->kv_cache_quant_config[0].second.output_tensors->front().dtype, Dtype::kFp8E4M3);
  EXPECT_FALSE(PresetConfig("fp8").value().kv_cache_group.size());
}

TEST(Presets, UnknownNamesListTheChoices) {
  auto c = PresetConfig("int5_wo_128");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("expected one of: int4_wo_32"), absl::string_view::npos);
  auto m = PresetConfig("fp8+kv_int8");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("unknown modifier '+kv_int8'"), absl::string_view::npos);
}

}  // namespace
}  // namespace quarry
