// Quark's JSON dict format: exact output, round trips, legacy keys, unknown keys, errors with
// paths, and byte-stable round trips of the example configs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "quarry/config_json.h"
#include "quarry/presets.h"
#include "quarry/spec_helpers.h"

namespace quarry {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ConfigJson, SpecDictHasQuarksKeysInOrder) {
  QuantizationSpec s = *Uint4PerGroupSpec{false, 1, false, "float", "half_even", 128}
                            .ToQuantizationSpec();
  EXPECT_EQ(SpecToJson(s, -1),
            R"({"dtype":"uint4","is_dynamic":false,"qscheme":"per_group","ch_axis":1,)"
            R"("group_size":128,"symmetric":false,"round_method":"half_even","scale_type":"float",)"
            R"("scale_format":null,"scale_calculation_mode":null,"mx_element_dtype":null,)"
            R"("observer_cls":"PerGroupMinMaxObserver","is_scale_quant":false})");
}

TEST(ConfigJson, NonDefaultZeroPointTypeIsKept) {
  QuantizationSpec s = *Uint4PerChannelSpec{false, "float", "half_even", 0, false, "float32"}
                            .ToQuantizationSpec();
  std::string j = SpecToJson(s);
  EXPECT_NE(j.find("\"zero_point_type\": \"float32\""), std::string::npos);
  auto back = SpecFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, s);
}

// Every helper's spec survives JSON.
TEST(ConfigJson, EveryHelperRoundTrips) {
  std::vector<StageSpec> helpers = {
      Uint4PerTensorSpec{"min_max", false, "float", "half_even", true},
      Uint4PerChannelSpec{false, "float", "round", 0, false, "float32"},
      Uint4PerGroupSpec{false, 1, false, "float", "half_even", 128},
      Int3PerGroupSpec{true, "float", "half_even", 1, false, 32},
      Int3PerChannelSpec{false, "float", "half_even", 0, false},
      Int2PerGroupSpec{true, "float", "half_even", 1, false, 32},
      Int4PerTensorSpec{"MSE", true, "power_of_2", "floor", false},
      Int4PerChannelSpec{true, "float", "half_even", 0, false},
      Int4PerGroupSpec{true, -1, false, "float", "half_even", 64},
      Uint8PerTensorSpec{"percentile", true, "float", "half_even", false},
      Uint8PerChannelSpec{true, "float", "half_even", 0, false},
      Uint8PerGroupSpec{false, "float", "half_even", 1, false, 128},
      Int8PerTensorSpec{"histogram", true, "float", "half_even", true},
      Int8PerChannelSpec{true, "float", "half_even", 1, true},
      Int8PerGroupSpec{true, "float", "half_even", 1, false, 128},
      FP8E4M3PerTensorSpec{"min_max", "float", false},
      FP8E4M3PerChannelSpec{true, "float", "half_even", 0, false},
      FP8E4M3PerGroupSpec{"e8m0", "even", -1, true, 32},
      FP8E5M2PerTensorSpec{"min_max", true, "float", "half_even", false},
      FP8E5M2PerChannelSpec{true, "float", "half_even", 0, false},
      FP8E5M2PerGroupSpec{"float32", std::nullopt, -1, false, 32},
      FP4PerGroupSpec{"e4m3", std::nullopt, -1, false, 16},
      FP6E2M3PerGroupSpec{"e8m0", "floor", -1, true, 32},
      FP6E3M2PerGroupSpec{"e8m0", "ceil", -1, true, 32},
      Float16Spec{},
      Bfloat16Spec{},
      OCP_MXFP8E4M3Spec{},
      OCP_MXFP8E5M2Spec{false, -1, "floor"},
      OCP_MXFP6E3M2Spec{},
      OCP_MXFP6E2M3Spec{},
      OCP_MXFP4Spec{false, 1, "ceil"},
      OCP_MXINT8Spec{},
      OCP_MXFP4DiffsSpec{-1, false, "even"},
      MX6Spec{},
      MX9Spec{-1, 16, "even", false},
      BFP16Spec{},
  };
  ASSERT_EQ(helpers.size(), std::variant_size_v<StageSpec> - 1);
  for (const auto& h : helpers) {
    auto spec = ToQuantizationSpec(h);
    ASSERT_TRUE(spec.ok()) << spec.status();
    auto back = SpecFromJson(SpecToJson(*spec));
    ASSERT_TRUE(back.ok()) << back.status() << "\n" << SpecToJson(*spec);
    EXPECT_EQ(*back, *spec) << SpecToJson(*spec);
  }
}

TEST(ConfigJson, LegacyKeysAndListEntries) {
  const char* legacy = R"({"dtype": "int8", "dynamic": true, "axis": 1, "qscheme": "per_channel",
      "group_size": null, "symmetric": true, "round_method": "half_even", "scale_type": "float",
      "observer_cls": "PerChannelMinMaxObserver"})";
  auto s = SpecFromJson(legacy);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->is_dynamic, std::optional<bool>(true));
  EXPECT_EQ(s->ch_axis, std::optional<int>(1));
  auto list = TensorSpecsFromJson(R"([{"dtype": "bfloat16"}, {"dtype": "float16"}])");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE(list->is_list);
  EXPECT_EQ(list->specs.size(), 2u);
}

TEST(ConfigJson, UnknownKeysAreReportedWithTheirPath) {
  const char* typo = R"({"global_quant_config": {"input_tensors": null, "output_tensors": null,
      "weight": {"dtype": "int4", "group_sise": 128}, "bias": null}, "exclude": []})";
  auto c = ConfigFromJson(typo);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("global_quant_config.weight.group_sise: unknown key"),
            absl::string_view::npos)
      << c.status();
  std::vector<std::string> warnings;
  auto lenient = ConfigFromJson(typo, JsonReadOptions{true}, &warnings);
  ASSERT_TRUE(lenient.ok()) << lenient.status();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("group_sise"), std::string::npos);
}

TEST(ConfigJson, BadValuesNameTheField) {
  struct Case {
    const char* json;
    const char* needle;
  };
  std::vector<Case> cases = {
      {R"({"exclude": []})", "global_quant_config: required key is missing"},
      {R"({"global_quant_config": {"weight": {"dtype": "int5"}}})",
       "global_quant_config.weight.dtype: unknown value 'int5'"},
      {R"({"global_quant_config": {"weight": {"dtype": "int4", "qscheme": "per_row"}}})",
       "global_quant_config.weight.qscheme: unknown value 'per_row'"},
      {R"({"global_quant_config": {"weight": {"dtype": "int4", "group_size": "128"}}})",
       "global_quant_config.weight.group_size: expected an integer"},
      {R"({"global_quant_config": {}, "layer_quant_config": {"*.q": {"weight": 3}}})",
       "layer_quant_config[\"*.q\"].weight: expected an object"},
      {R"({"global_quant_config": {}, "algo_config": [{"name": "gptqq"}]})",
       "algo_config[0].name: unknown algorithm 'gptqq'"},
      {R"({"global_quant_config": {}, "algo_config": [{"name": "gptq", "block_size": 1.5}]})",
       "algo_config[0].block_size: expected an integer"},
      {R"({"global_quant_config": {}, "layer_type_quant_config": {"Embedding": {}}})",
       "layer_type_quant_config[\"Embedding\"]: unsupported layer type"},
      {R"({"global_quant_config": {"weight": {"dtype": "int4", "observer_cls": "Foo"}}})",
       "unknown observer class 'Foo'"},
      {R"({"global_quant_config": {}, "quant_method": "awq"})", "quant_method: expected \"quark\""},
      {R"({"global_quant_config": {)", "invalid JSON at byte"},
  };
  for (const auto& c : cases) {
    auto r = ConfigFromJson(c.json);
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_NE(r.status().message().find(c.needle), absl::string_view::npos)
        << c.needle << " vs " << r.status();
  }
}

TEST(ConfigJson, AlgoConfigsRoundTripAndLoadFromFile) {
  GPTQConfig g;
  g.inside_layer_modules = {"self_attn.q_proj", "mlp.down_proj"};
  g.model_decoder_layers = "model.layers";
  g.desc_act = false;
  QronosConfig q;
  q.inside_layer_modules = {"mlp.up_proj"};
  q.model_decoder_layers = "model.layers";
  AWQConfig a;
  a.scaling_layers.push_back({"input_layernorm", {"self_attn.q_proj"}, "self_attn.q_proj",
                              "self_attn", ""});
  a.model_decoder_layers = "model.layers";
  SmoothQuantConfig s;
  s.alpha = 0.5;
  AutoSmoothQuantConfig asq;
  asq.compute_scale_loss = "MAE";
  QuaRotConfig qr;
  qr.scaling_layers_json = R"({"first_layer":[{"prev_modules":["a"]}]})";
  RotationConfig r;
  r.model_decoder_layers = "model.layers";
  r.scaling_layers_json = R"({"x":[]})";
  for (const AlgoConfig& algo : std::vector<AlgoConfig>{g, q, a, s, asq, qr, r}) {
    auto back = AlgoConfigFromJson(AlgoConfigToJson(algo));
    ASSERT_TRUE(back.ok()) << back.status() << AlgoConfigToJson(algo);
    EXPECT_EQ(*back, algo) << AlgoConfigToJson(algo);
  }
  const std::string path = ::testing::TempDir() + "/qronos.json";
  std::ofstream(path) << R"({"name": "qronos", "inside_layer_modules": ["mlp.down_proj"],
      "model_decoder_layers": "model.layers", "num_attention_heads": 8})";
  auto loaded = LoadQuantAlgoConfigFromFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(std::holds_alternative<QronosConfig>(*loaded));
  EXPECT_DOUBLE_EQ(std::get<QronosConfig>(*loaded).alpha, 1e-3);  // the code default
  EXPECT_EQ(std::get<QronosConfig>(*loaded).beta, 1e4);
  // Qronos requires inside_layer_modules / model_decoder_layers, as in the seed.
  std::ofstream(path) << R"({"name": "qronos"})";
  EXPECT_FALSE(LoadQuantAlgoConfigFromFile(path).ok());
  // GPTQ is not a pre-quantization optimization.
  std::ofstream(path) << R"({"name": "gptq"})";
  EXPECT_TRUE(LoadQuantAlgoConfigFromFile(path).ok());
  auto pre = LoadPreOptimizationConfigFromFile(path);
  ASSERT_FALSE(pre.ok());
  EXPECT_NE(pre.status().message().find("not a pre-quantization optimization"),
            absl::string_view::npos);
  std::ofstream(path) << R"({"name": "smooth", "alpha": 0.5})";
  EXPECT_TRUE(LoadPreOptimizationConfigFromFile(path).ok());
}

TEST(ConfigJson, EveryPresetRoundTripsByteStable) {
  for (const auto& p : ListPresets()) {
    for (const std::string suffix : {"", "+kv_fp8", "+kv_fp8+attn_fp8"}) {
      auto c = PresetConfig(p.name + suffix);
      ASSERT_TRUE(c.ok()) << p.name << suffix << ": " << c.status();
      const std::string once = ConfigToJson(*c);
      auto back = ConfigFromJson(once);
      ASSERT_TRUE(back.ok()) << p.name << suffix << ": " << back.status();
      EXPECT_EQ(*back, *c) << p.name << suffix;
      EXPECT_EQ(ConfigToJson(*back), once) << p.name << suffix;
    }
  }
}

// The hand-written Quark-format configs (fp8 W8A8 with fp8 KV cache; int4 per-group GPTQ with
// excludes) load and write back byte for byte.
TEST(ConfigJson, ExampleConfigsRoundTripByteStable) {
  for (const char* name : {"fp8_w8a8_kv_fp8.json", "int4_g128_gptq_excludes.json",
                           "fp8_e4m3_per_channel_weight_only.json",
                           "int8_w8a8_static_weight_per_channel.json"}) {
    const std::string path = std::string(QUARRY_SOURCE_DIR) + "/examples/configs/" + name;
    const std::string text = ReadFile(path);
    ASSERT_FALSE(text.empty()) << path;
    auto c = ConfigFromJson(text);
    ASSERT_TRUE(c.ok()) << name << ": " << c.status();
    EXPECT_EQ(ConfigToJson(*c) + "\n", text) << name;
  }
  auto fp8 = ConfigFromJsonFile(std::string(QUARRY_SOURCE_DIR) + "/examples/configs/fp8_w8a8_kv_fp8.json");
  ASSERT_TRUE(fp8.ok());
  EXPECT_EQ(fp8->kv_cache_group, (std::vector<std::string>{"*k_proj", "*v_proj"}));
  ASSERT_EQ(fp8->kv_cache_quant_config.size(), 2u);
  auto gptq = ConfigFromJsonFile(std::string(QUARRY_SOURCE_DIR) +
                                 "/examples/configs/int4_g128_gptq_excludes.json");
  ASSERT_TRUE(gptq.ok());
  ASSERT_TRUE(gptq->algo_config.has_value());
  EXPECT_TRUE(std::holds_alternative<GPTQConfig>((*gptq->algo_config)[0]));
}

TEST(ConfigJson, ExportedModelConfigReadsTheExportBlock) {
  const std::string dir = ::testing::TempDir() + "/exported";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << R"({"model_type": "llama", "quantization_config": {
    "algo_config": null, "exclude": ["lm_head"],
    "export": {"kv_cache_group": ["*k_proj", "*v_proj"], "min_kv_scale": 0.5,
               "pack_method": "reorder", "weight_format": "real_quantized",
               "weight_merge_groups": null},
    "global_quant_config": {"bias": null, "input_tensors": null, "output_tensors": null,
                            "target_device": null, "weight": null},
    "kv_cache_quant_config": {}, "layer_quant_config": {}, "layer_type_quant_config": {},
    "quant_method": "quark", "quant_mode": "eager_mode", "softmax_quant_spec": null,
    "version": "0.10"}})";
  auto c = ConfigFromModelDir(dir);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->kv_cache_group, (std::vector<std::string>{"*k_proj", "*v_proj"}));
  EXPECT_FLOAT_EQ(c->min_kv_scale, 0.5f);
}

}  // namespace
}  // namespace quarry
