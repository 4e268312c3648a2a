// Per-layer resolution on the fixture model's layer names: exclude first, exact name, patterns in
// order, layer type, global; KV-cache overrides (last match wins); no inheritance; shape checks.
#include <gtest/gtest.h>

#include <regex>

#include "quarry/layer_plan.h"
#include "quarry/presets.h"
#include "quarry/spec_helpers.h"

namespace quarry {
namespace {

const std::string kModel = std::string(QUARRY_TEST_DATA_DIR) + "/models/tiny-llama-kjv";

QuantizationSpec Int4Group(int g) {
  return *Int4PerGroupSpec{true, 1, false, "float", "half_even", g}.ToQuantizationSpec();
}
QuantizationSpec Int8Tensor() {
  return *Int8PerTensorSpec{"min_max", true, "float", "half_even", false}.ToQuantizationSpec();
}
QuantizationSpec Fp8Tensor() {
  return *FP8E4M3PerTensorSpec{"min_max", std::nullopt, false}.ToQuantizationSpec();
}
QuantizationConfig WeightOnly(QuantizationSpec s) {
  QuantizationConfig c;
  c.weight = TensorSpecs(std::move(s));
  return c;
}

TEST(FnMatch, PythonSemantics) {
  EXPECT_TRUE(FnMatch("lm_head", "lm_head"));
  EXPECT_FALSE(FnMatch("lm_head", "lm_head2"));
  EXPECT_TRUE(FnMatch("*k_proj", "model.layers.0.self_attn.k_proj"));  // '*' crosses dots
  EXPECT_FALSE(FnMatch("*.gate", "model.layers.0.mlp.gate_proj"));
  EXPECT_TRUE(FnMatch("*.gate", "model.layers.0.mlp.gate"));
  EXPECT_TRUE(FnMatch("model.layers.?.mlp.*", "model.layers.3.mlp.up_proj"));
  EXPECT_FALSE(FnMatch("model.layers.?.mlp.*", "model.layers.13.mlp.up_proj"));
  EXPECT_TRUE(FnMatch("model.layers.[0-3].*", "model.layers.2.self_attn.q_proj"));
  EXPECT_FALSE(FnMatch("model.layers.[!0-3].*", "model.layers.2.self_attn.q_proj"));
  EXPECT_TRUE(FnMatch("a[", "a["));  // unclosed class is a literal
  EXPECT_TRUE(FnMatch("*", ""));
  EXPECT_FALSE(FnMatch("", "x"));
  EXPECT_TRUE(FnMatch("**.down_proj", "x.down_proj"));
}

TEST(LayerPlan, FixtureModulesFromHeaders) {
  auto modules = ListModelModules(kModel);
  ASSERT_TRUE(modules.ok()) << modules.status();
  // embed + 8 x 7 linears + lm_head
  ASSERT_EQ(modules->size(), 1u + 8 * 7 + 1);
  EXPECT_EQ((*modules)[0].name, "model.embed_tokens");
  EXPECT_EQ((*modules)[0].type, "Embedding");
  EXPECT_EQ((*modules)[1].name, "model.layers.0.self_attn.q_proj");
  EXPECT_EQ((*modules)[1].weight_shape, (std::vector<int64_t>{256, 256}));
  EXPECT_EQ((*modules)[7].name, "model.layers.0.mlp.down_proj");
  EXPECT_EQ((*modules)[7].weight_shape, (std::vector<int64_t>{256, 768}));
  EXPECT_EQ(modules->back().name, "lm_head");
}

TEST(LayerPlan, ResolutionOrder) {
  auto modules = ListModelModules(kModel);
  ASSERT_TRUE(modules.ok());
  Config c;
  c.global_quant_config = WeightOnly(Int4Group(128));
  c.exclude = {"lm_head", "model.layers.7"};  // "model.layers.7" excludes its children too
  c.layer_quant_config.emplace_back("*.down_proj", WeightOnly(Int4Group(64)));
  c.layer_quant_config.emplace_back("model.layers.0.mlp.down_proj", WeightOnly(Int8Tensor()));
  c.layer_quant_config.emplace_back("*mlp*", WeightOnly(Int4Group(32)));
  c.layer_type_quant_config.emplace_back("Linear", WeightOnly(Int4Group(256)));
  auto plan = ResolveLayerPlan(c, *modules);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto rule = [&](const std::string& name) { return plan->Find(name)->matched_rule; };
  auto group = [&](const std::string& name) {
    return plan->Find(name)->config.weight->front().group_size.value_or(0);
  };
  EXPECT_EQ(rule("lm_head"), "exclude[\"lm_head\"]");
  EXPECT_FALSE(plan->Find("lm_head")->quantized());
  EXPECT_EQ(rule("model.layers.7.mlp.up_proj"), "exclude[\"model.layers.7\"]");
  // Exact name beats an earlier pattern.
  EXPECT_EQ(rule("model.layers.0.mlp.down_proj"), "layer_quant_config[\"model.layers.0.mlp.down_proj\"]");
  EXPECT_EQ(plan->Find("model.layers.0.mlp.down_proj")->config.weight->front().dtype, Dtype::kInt8);
  // First matching pattern in order.
  EXPECT_EQ(rule("model.layers.1.mlp.down_proj"), "layer_quant_config[\"*.down_proj\"]");
  EXPECT_EQ(group("model.layers.1.mlp.down_proj"), 64);
  EXPECT_EQ(rule("model.layers.1.mlp.up_proj"), "layer_quant_config[\"*mlp*\"]");
  EXPECT_EQ(group("model.layers.1.mlp.up_proj"), 32);
  // Then layer type, before global.
  EXPECT_EQ(rule("model.layers.2.self_attn.q_proj"), "layer_type_quant_config[\"Linear\"]");
  EXPECT_EQ(group("model.layers.2.self_attn.q_proj"), 256);
  // Embeddings only by name/type.
  EXPECT_FALSE(plan->Find("model.embed_tokens")->quantized());
  // 256 does not divide in_features 256? It does; 256-group on down_proj would not be reached.
  c.layer_type_quant_config.clear();
  plan = ResolveLayerPlan(c, *modules);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(rule("model.layers.2.self_attn.q_proj"), "global_quant_config");
  EXPECT_EQ(group("model.layers.2.self_attn.q_proj"), 128);
}

TEST(LayerPlan, NoPerFieldInheritance) {
  auto modules = ListModelModules(kModel);
  Config c;
  c.global_quant_config = WeightOnly(Int4Group(128));
  c.global_quant_config.input_tensors = TensorSpecs(Int8Tensor());
  QuantizationConfig input_only;
  input_only.input_tensors = TensorSpecs(Fp8Tensor());
  c.layer_quant_config.emplace_back("*o_proj", input_only);
  auto plan = ResolveLayerPlan(c, *modules);
  ASSERT_TRUE(plan.ok());
  const auto* o = plan->Find("model.layers.3.self_attn.o_proj");
  EXPECT_FALSE(o->config.weight.has_value());  // not inherited from global
  EXPECT_EQ(o->config.input_tensors->front().dtype, Dtype::kFp8E4M3);
  const auto* q = plan->Find("model.layers.3.self_attn.q_proj");
  EXPECT_EQ(q->config.weight->front().dtype, Dtype::kInt4);
  EXPECT_EQ(q->config.input_tensors->front().dtype, Dtype::kInt8);
}

TEST(LayerPlan, KvCacheOverridesAndLastMatchWins) {
  auto modules = ListModelModules(kModel);
  auto c = PresetConfig("int8+kv_fp8");
  ASSERT_TRUE(c.ok());
  // A second, later kv pattern for layer 1's v_proj only: it wins there.
  QuantizationConfig special;
  special.output_tensors = TensorSpecs(Int8Tensor());
  c->kv_cache_quant_config.emplace_back("model.layers.1.self_attn.v_proj", special);
  c->exclude.push_back("model.layers.2.self_attn.k_proj");
  auto plan = ResolveLayerPlan(*c, *modules);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const auto* k0 = plan->Find("model.layers.0.self_attn.k_proj");
  EXPECT_TRUE(k0->kv_cache);
  EXPECT_EQ(k0->config.output_tensors->front().dtype, Dtype::kFp8E4M3);
  EXPECT_EQ(k0->config.weight->front().dtype, Dtype::kInt8);
  const auto* v1 = plan->Find("model.layers.1.self_attn.v_proj");
  EXPECT_EQ(v1->config.output_tensors->front().dtype, Dtype::kInt8);
  EXPECT_NE(v1->matched_rule.find("kv_cache_quant_config[\"model.layers.1.self_attn.v_proj\"]"),
            std::string::npos);
  EXPECT_FALSE(v1->config.weight.has_value());  // the later entry replaced everything
  // An excluded k_proj keeps only its KV-cache quantizer.
  const auto* k2 = plan->Find("model.layers.2.self_attn.k_proj");
  EXPECT_TRUE(k2->excluded);
  EXPECT_TRUE(k2->kv_cache);
  EXPECT_FALSE(k2->config.weight.has_value());
  EXPECT_FALSE(k2->config.input_tensors.has_value());
  EXPECT_EQ(k2->config.output_tensors->front().dtype, Dtype::kFp8E4M3);
  // q_proj has no output quantizer.
  EXPECT_FALSE(plan->Find("model.layers.0.self_attn.q_proj")->config.output_tensors.has_value());
}

TEST(LayerPlan, GroupSizeMustDivideTheChannels) {
  auto modules = ListModelModules(kModel);
  Config c;
  c.global_quant_config = WeightOnly(Int4Group(96));  // 256 % 96 != 0, 768 % 96 == 0
  auto plan = ResolveLayerPlan(c, *modules);
  ASSERT_TRUE(plan.ok());
  int errors = 0;
  bool named = false;
  for (const auto& i : plan->issues) {
    errors += i.is_error();
    if (i.ToString().find("layer model.layers.0.self_attn.q_proj.weight.group_size: group_size 96 "
                          "does not divide the 256 channels of axis 1") != std::string::npos)
      named = true;
  }
  EXPECT_EQ(errors, 8 * 6 + 1);  // every linear but down_proj (in 768), plus lm_head
  EXPECT_TRUE(named);
  Config axis;
  QuantizationSpec s = Int4Group(32);
  s.ch_axis = 2;
  axis.global_quant_config = WeightOnly(s);
  plan = ResolveLayerPlan(axis, *modules);
  ASSERT_TRUE(plan.ok());
  ASSERT_FALSE(plan->issues.empty());
  EXPECT_NE(plan->issues[0].message.find("axis 2 is out of range for the 2-D weight"),
            std::string::npos);
}

TEST(LayerPlan, InvalidConfigIsRejected) {
  auto modules = ListModelModules(kModel);
  Config c;
  QuantizationSpec s = Int4Group(32);
  s.observer_cls.reset();
  c.global_quant_config = WeightOnly(s);
  auto plan = ResolveLayerPlan(c, *modules);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("global_quant_config.weight.observer_cls: required"),
            absl::string_view::npos);
}

TEST(LayerPlan, TableAndJsonOutputs) {
  auto modules = ListModelModules(kModel);
  auto c = PresetConfig("uint4_wo_128");
  auto plan = ResolveLayerPlan(*c, *modules);
  ASSERT_TRUE(plan.ok());
  std::string table = PlanToTable(*plan);
  EXPECT_TRUE(std::regex_search(table, std::regex("model\\.layers\\.5\\.mlp\\.gate_proj +global_quant_config")))
      << table;
  EXPECT_NE(table.find("uint4 per_group(g128) asym static"), std::string::npos);
  std::string json = PlanToJson(*plan);
  EXPECT_NE(json.find("\"matched_rule\": \"exclude[\\\"lm_head\\\"]\""), std::string::npos);
}

}  // namespace
}  // namespace quarry
