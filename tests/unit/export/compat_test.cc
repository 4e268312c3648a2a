// The runtime verdicts (quarry/runtime_compat.h, export/compat.cc): one test per rule with a
// config that breaks it (the breach's rule id and the first layer that breaks it), and the
// positive cases a user relies on (fp8 W8A8 -> QuarkW8A8Fp8, uint4 g128 as AWQ -> awq_marlin,
// int4 g32 as GGUF -> Q4_0). Plans are resolved over a representative Llama decoder layer.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "export/compat.h"
#include "quarry/layer_plan.h"
#include "quarry/model_config.h"
#include "quarry/presets.h"
#include "quarry/runtime_compat.h"

namespace quarry {
namespace {

const char kQ[] = "model.layers.0.self_attn.q_proj";
const char kK[] = "model.layers.0.self_attn.k_proj";
const char kV[] = "model.layers.0.self_attn.v_proj";
const char kO[] = "model.layers.0.self_attn.o_proj";

Config Preset(const std::string& name) {
  auto c = PresetConfig(name);
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

ModelConfig Family(ModelFamily f) {
  ModelConfig m;
  m.family = f;
  m.model_type = f == ModelFamily::kOpt ? "opt" : "llama";
  return m;
}

std::vector<RuntimeVerdict> Verdicts(const Config& c, ExportFormat format = ExportFormat::kQuark,
                                ModelFamily family = ModelFamily::kLlama) {
  auto plan = ResolveLayerPlan(c, RepresentativeModules(family));
  EXPECT_TRUE(plan.ok()) << plan.status();
  if (!plan.ok()) return {};
  const ModelConfig m = Family(family);
  return RuntimeVerdicts(*plan, c, format, &m);
}

const RuntimeVerdict& Get(const std::vector<RuntimeVerdict>& v, const std::string& runtime) {
  for (const auto& r : v)
    if (r.runtime == runtime) return r;
  static const RuntimeVerdict none;
  ADD_FAILURE() << "no verdict for " << runtime;
  return none;
}

std::string Describe(const RuntimeVerdict& v) { return FormatRuntimeVerdicts({v}); }

// The verdict of `runtime` does not load, and `rule` is broken first by `layer`.
void ExpectBreach(const std::vector<RuntimeVerdict>& all, const std::string& runtime,
                  const std::string& rule, const std::string& layer,
                  const std::string& message_part = "") {
  const RuntimeVerdict& v = Get(all, runtime);
  EXPECT_FALSE(v.loads) << Describe(v);
  EXPECT_TRUE(v.how.empty());
  for (const auto& b : v.breaches) {
    if (b.rule != rule) continue;
    EXPECT_EQ(b.layer, layer) << Describe(v);
    if (!message_part.empty())
      EXPECT_TRUE(absl::StrContains(b.message, message_part)) << b.message;
    return;
  }
  ADD_FAILURE() << "no breach " << rule << " in\n" << Describe(v);
}

// ----- positive cases -----

TEST(RuntimeVerdicts, Fp8W8A8PerTensorLoadsInVllmAsQuarkW8A8Fp8) {
  auto v = Verdicts(Preset("fp8"));
  const RuntimeVerdict& vllm = Get(v, "vllm");
  EXPECT_TRUE(vllm.loads) << Describe(vllm);
  EXPECT_EQ(vllm.how, "QuarkW8A8Fp8");
  EXPECT_TRUE(vllm.breaches.empty());
  // The same artifact is not a GGUF; transformers loads it through Quark.
  ExpectBreach(v, "llama.cpp", "llama.cpp.format", "(model)", "--export-format gguf");
  EXPECT_TRUE(Get(v, "transformers").loads);
  EXPECT_TRUE(absl::StrContains(Get(v, "transformers").how, "amd-quark"));
}

TEST(RuntimeVerdicts, Fp8WithKvCacheLoadsWithFp8KvCache) {
  const RuntimeVerdict vllm = Get(Verdicts(Preset("fp8+kv_fp8")), "vllm");
  EXPECT_TRUE(vllm.loads) << Describe(vllm);
  EXPECT_EQ(vllm.how, "QuarkW8A8Fp8 + fp8 KV cache");
  // fp8 attention with a KV group: from_config strips *q_proj's output (it becomes q_scale).
  EXPECT_TRUE(Get(Verdicts(Preset("fp8+kv_fp8+attn_fp8")), "vllm").loads);
}

TEST(RuntimeVerdicts, Uint4G128WeightOnlyAsAwqLoadsInVllmAsAwqMarlin) {
  auto v = Verdicts(Preset("uint4_wo_128"), ExportFormat::kAwq);
  const RuntimeVerdict& vllm = Get(v, "vllm");
  EXPECT_TRUE(vllm.loads) << Describe(vllm);
  EXPECT_EQ(vllm.how, "AWQ (awq_marlin)");
  EXPECT_TRUE(Get(v, "transformers").loads);
  ExpectBreach(v, "llama.cpp", "llama.cpp.format", "(model)");
  // As Quark's format the same plan is QuarkW4A16Int4.
  EXPECT_EQ(Get(Verdicts(Preset("uint4_wo_128")), "vllm").how, "QuarkW4A16Int4");
}

TEST(RuntimeVerdicts, Int4SymG32AsGgufLoadsInLlamaCppAsQ4_0) {
  auto v = Verdicts(Preset("int4_wo_32"), ExportFormat::kGguf);
  const RuntimeVerdict& cpp = Get(v, "llama.cpp");
  EXPECT_TRUE(cpp.loads) << Describe(cpp);
  EXPECT_EQ(cpp.how, "GGUF Q4_0");
  EXPECT_TRUE(Get(v, "vllm").loads);
  EXPECT_TRUE(Get(v, "transformers").loads);
}

TEST(RuntimeVerdicts, Int4G128AsGptqLoadsAsGptqMarlin) {
  const RuntimeVerdict vllm = Get(Verdicts(Preset("int4_wo_128"), ExportFormat::kGptq), "vllm");
  EXPECT_TRUE(vllm.loads) << Describe(vllm);
  EXPECT_EQ(vllm.how, "GPTQ-Marlin uint4b8");
}

// ----- vLLM's Quark loader, one rule each -----

TEST(VllmRules, QuantizedOutputOutsideTheKvGroup) {
  Config c = Preset("fp8");
  QuantizationConfig o = c.global_quant_config;
  o.output_tensors = o.input_tensors;
  c.layer_quant_config.emplace_back("*o_proj", o);
  ExpectBreach(Verdicts(c), "vllm", "vllm.output_tensors", kO, "outside the KV-cache group");
  // The q_proj output of +attn_fp8 without a KV group is not stripped either.
  ExpectBreach(Verdicts(Preset("fp8+attn_fp8")), "vllm", "vllm.output_tensors", kQ);
}

TEST(VllmRules, QuantizedBias) {
  Config c = Preset("int8");
  c.global_quant_config.bias = c.global_quant_config.weight;
  ExpectBreach(Verdicts(c, ExportFormat::kQuark, ModelFamily::kOpt), "vllm", "vllm.bias",
               "model.decoder.layers.0.self_attn.q_proj", "bias");
}

TEST(VllmRules, KvCacheOtherThanFp8PerTensor) {
  Config c = Preset("fp8+kv_fp8");
  const QuantizationSpec int8 = Preset("int8").global_quant_config.input_tensors->front();
  for (auto* list : {&c.layer_quant_config, &c.kv_cache_quant_config})
    for (auto& [key, q] : *list) q.output_tensors = int8;
  ExpectBreach(Verdicts(c), "vllm", "vllm.kv_cache", kK, "fp8_e4m3 per_tensor");
}

TEST(VllmRules, KvCacheGroupWithoutLayerQuantConfigEntries) {
  Config c = Preset("fp8+kv_fp8");
  c.layer_quant_config.clear();  // the KV spec only in kv_cache_quant_config
  ExpectBreach(Verdicts(c), "vllm", "vllm.kv_cache_config", "kv_cache_group [*k_proj, *v_proj]",
               "layer_quant_config");
}

TEST(VllmRules, AsymmetricInt8Weights) {
  Config c = Preset("int8");
  c.global_quant_config.weight->specs[0].symmetric = false;
  ExpectBreach(Verdicts(c), "vllm", "vllm.int8_asymmetric_weight", kQ, "symmetric false");
}

TEST(VllmRules, PerChannelInt4Weights) {
  auto v = Verdicts(Preset("int4_wo_per_channel"));
  ExpectBreach(v, "vllm", "vllm.int4_per_channel", kQ, "group_size");
  // One line for the seven linears of the layer (lm_head is excluded).
  EXPECT_EQ(Get(v, "vllm").breaches.front().more_layers, 6) << Describe(Get(v, "vllm"));
}

TEST(VllmRules, IntWeightsWithActivationsNoSchemePairs) {
  Config c = Preset("int4_wo_128");
  c.global_quant_config.input_tensors = Preset("int8").global_quant_config.input_tensors;
  ExpectBreach(Verdicts(c), "vllm", "vllm.int_weight_activation", kQ, "int4 weights with int8");
  // int8 weights with fp8 inputs.
  Config d = Preset("int8");
  d.global_quant_config.input_tensors = Preset("fp8").global_quant_config.input_tensors;
  ExpectBreach(Verdicts(d), "vllm", "vllm.int_weight_activation", kQ, "int8 weights with fp8_e4m3");
}

TEST(VllmRules, Int8WeightOnlyHasNoScheme) {
  Config c = Preset("int8");
  c.global_quant_config.input_tensors.reset();
  ExpectBreach(Verdicts(c), "vllm", "vllm.no_scheme", kQ, "int8 weight-only");
}

TEST(VllmRules, DynamicStaticMismatch) {
  // A dynamic per-tensor int8 input: static int8 must be per_tensor, dynamic int8 per-token.
  Config c = Preset("int8");
  c.global_quant_config.input_tensors->specs[0].is_dynamic = true;
  ExpectBreach(Verdicts(c), "vllm", "vllm.dynamic_static", kQ, "dynamic int8 input per_tensor");
  // A dynamic weight.
  Config d = Preset("fp8");
  d.global_quant_config.weight->specs[0].is_dynamic = true;
  ExpectBreach(Verdicts(d), "vllm", "vllm.dynamic_static", kQ, "dynamic weight");
}

TEST(VllmRules, TwoStageSpecs) {
  ExpectBreach(Verdicts(Preset("int4_fp8")), "vllm", "vllm.two_stage", kQ, "two-stage");
}

TEST(VllmRules, DtypesWithoutAKernel) {
  ExpectBreach(Verdicts(Preset("mx6")), "vllm", "vllm.dtype", kQ, "mx6");
  ExpectBreach(Verdicts(Preset("bfp16")), "vllm", "vllm.dtype", kQ, "bfp16");
  Config c = Preset("int4_wo_128");
  c.global_quant_config.weight->specs[0].dtype = Dtype::kInt3;
  ExpectBreach(Verdicts(c), "vllm", "vllm.dtype", kQ, "int3");
  // OCP MX fp6 and fp4 do have one.
  EXPECT_EQ(Get(Verdicts(Preset("mxfp6_e3m2")), "vllm").how, "QuarkOCP_MX");
  EXPECT_EQ(Get(Verdicts(Preset("mxfp4_weight_only")), "vllm").how, "QuarkOCP_MX");
}

TEST(VllmRules, SoftmaxOtherThanFp8PerTensor) {
  Config c = Preset("fp8");
  c.softmax_quant_spec = Preset("int8").global_quant_config.input_tensors->front();
  ExpectBreach(Verdicts(c), "vllm", "vllm.softmax", "model.layers.*.self_attn (softmax_quant_spec)",
               "prob_scale");
}

TEST(VllmRules, FusedShardsMustShareExclusionAndScheme) {
  Config c = Preset("int4_wo_128");
  c.exclude.push_back("*k_proj");
  ExpectBreach(Verdicts(c), "vllm", "vllm.fused_shards", kK, "qkv_proj");
  Config d = Preset("int4_wo_128");
  d.layer_quant_config.emplace_back("*v_proj", Preset("int4_wo_32").global_quant_config);
  ExpectBreach(Verdicts(d), "vllm", "vllm.fused_shards", kV, "same scheme");
  Config e = Preset("int4_wo_128");
  e.layer_quant_config.emplace_back("*up_proj", Preset("int4_wo_32").global_quant_config);
  ExpectBreach(Verdicts(e), "vllm", "vllm.fused_shards", "model.layers.0.mlp.up_proj", "gate_up_proj");
  // AWQ's modules_to_not_convert has the same all-or-none rule.
  Config f = Preset("uint4_wo_128");
  f.exclude.push_back("*q_proj");
  ExpectBreach(Verdicts(f, ExportFormat::kAwq), "vllm", "vllm.fused_shards", kK);
}

TEST(VllmRules, LayerTypeQuantConfigIsNeverMatched) {
  Config c = Preset("int4_wo_128");
  c.layer_type_quant_config.emplace_back("Linear", Preset("int4_wo_32").global_quant_config);
  ExpectBreach(Verdicts(c), "vllm", "vllm.layer_type_quant_config", kQ, "type(module)");
}

TEST(VllmRules, QuantizedLmHead) {
  Config c = Preset("int4_wo_128");
  c.exclude.clear();
  ExpectBreach(Verdicts(c), "vllm", "vllm.lm_head", "lm_head", "ParallelLMHead");
}

// ----- AWQ / GPTQ limits -----

TEST(AwqGptqRules, ExportRefusalIsEveryRuntimesBreach) {
  // int4 symmetric is not AutoAWQ's uint4 with zero points: the awq export refuses the plan.
  auto v = Verdicts(Preset("int4_wo_128"), ExportFormat::kAwq);
  ExpectBreach(v, "vllm", "export.awq", kQ);
  ExpectBreach(v, "transformers", "export.awq", kQ);
  // uint4 asymmetric is not GPTQ's symmetric uint4b8.
  ExpectBreach(Verdicts(Preset("uint4_wo_128"), ExportFormat::kGptq), "vllm", "export.gptq", kQ);
}

TEST(AwqGptqRules, GroupSizeOutsideMarlinFallsBackToTheGptqKernel) {
  Config c = Preset("int4_wo_128");
  c.global_quant_config.weight->specs[0].group_size = 256;
  const RuntimeVerdict vllm = Get(Verdicts(c, ExportFormat::kGptq), "vllm");
  EXPECT_TRUE(vllm.loads) << Describe(vllm);
  EXPECT_EQ(vllm.how, "GPTQ (gptq kernel, not Marlin) uint4b8");
  ASSERT_FALSE(vllm.notes.empty());
  EXPECT_EQ(vllm.notes.front().rule, "vllm.gptq_marlin_group_size");
  Config a = Preset("uint4_wo_128");
  a.global_quant_config.weight->specs[0].group_size = 256;
  const RuntimeVerdict awq = Get(Verdicts(a, ExportFormat::kAwq), "vllm");
  EXPECT_TRUE(awq.loads) << Describe(awq);
  EXPECT_EQ(awq.how, "AWQ (awq GEMM kernel, not Marlin)");
}

// ----- llama.cpp -----

TEST(LlamaCppRules, OnlyGguf) {
  ExpectBreach(Verdicts(Preset("int4_wo_32"), ExportFormat::kQuark), "llama.cpp", "llama.cpp.format",
               "(model)", "GGUF only");
}

TEST(LlamaCppRules, OptHasNoArchitecture) {
  auto v = Verdicts(Preset("int4_wo_32"), ExportFormat::kGguf, ModelFamily::kOpt);
  ExpectBreach(v, "llama.cpp", "llama.cpp.architecture", "(model)");
  ExpectBreach(v, "transformers", "transformers.gguf_architecture", "(model)");
}

TEST(LlamaCppRules, WeightSpecWithoutAGgmlType) {
  ExpectBreach(Verdicts(Preset("int4_wo_128"), ExportFormat::kGguf), "llama.cpp", "llama.cpp.type", kQ,
               "group_size 128");
  ExpectBreach(Verdicts(Preset("fp8"), ExportFormat::kGguf), "llama.cpp", "llama.cpp.type", kQ);
}

// ----- plumbing -----

TEST(RuntimeVerdicts, JsonRoundTrip) {
  auto v = Verdicts(Preset("int4_wo_per_channel"));
  ASSERT_EQ(v.size(), 3u);
  auto back = RuntimeVerdictsFromJson(RuntimeVerdictsToJson(v));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, v);
  EXPECT_FALSE(RuntimeVerdictsFromJson("{}").ok());
  EXPECT_FALSE(RuntimeVerdictsFromJson("[{\"runtime\": 1}]").ok());
}

TEST(RuntimeVerdicts, RuntimesInOrder) {
  auto v = Verdicts(Preset("fp8"));
  ASSERT_EQ(v.size(), 3u);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(v[i].runtime, RuntimeNames()[i]);
}

}  // namespace
}  // namespace quarry
