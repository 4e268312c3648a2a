// SmoothQuant, AutoSmoothQuant and AWQ driven through the whole pipeline on the fixtures: the
// scales are folded into the exported model (its perplexity, evaluated from the files alone,
// equals the job's own within 1e-4 relative), report.json records every entry's decision, an
// entry whose inp is excluded is skipped with an INFO log, and bad scaling_layers are refused
// before any layer is processed, naming the entry index and field.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "quarry/eval.h"
#include "quarry/pipeline.h"
#include "quarry/presets.h"
#include "quarry/spec_helpers.h"

namespace quarry {
namespace {

namespace fs = std::filesystem;
const std::string kData = QUARRY_TEST_DATA_DIR;

class Logs final : public JobObserver {
 public:
  void OnLog(LogSeverity s, absl::string_view m) override {
    if (s >= LogSeverity::kInfo) lines.emplace_back(m);
    if (s == LogSeverity::kInfo && absl::StrContains(m, "layer 1/")) ++layers_done;
  }
  std::vector<std::string> lines;
  int layers_done = 0;
};

fs::path TempDir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / absl::StrCat("quarry_scaling_", name, "_", ::getpid());
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

QuantizeOptions Options(const std::string& model, const Config& config, const fs::path& out) {
  QuantizeOptions o;
  o.model_dir = kData + "/models/" + model;
  o.config = config;
  o.calibration.path = kData + "/kjv-calib.jsonl";
  o.calibration.num_samples = 8;
  o.calibration.seq_len = 128;
  EvalOptions e;
  e.path = kData + "/kjv-eval.txt";
  e.seq_len = 128;
  e.max_windows = 6;
  o.eval = e;
  o.output_dir = out.string();
  o.error_sample_sequences = 2;
  return o;
}

nlohmann::json Report(const fs::path& out) {
  return nlohmann::json::parse(std::ifstream(out / "report.json"));
}

// The exported files alone give the job's quantized perplexity: every folded scale (norms,
// biases, previous linears) reached the export.
void ExpectExportReproducesJob(const fs::path& out, double job_ppl) {
  PerplexityOptions p;
  p.model_dir = out.string();
  p.data_path = kData + "/kjv-eval.txt";
  p.seq_len = 128;
  p.max_windows = 6;
  auto r = EvaluatePerplexity(p);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->perplexity, job_ppl, 1e-4 * job_ppl);
}

Config WithAlgo(Config c, AlgoConfig a) {
  c.algo_config.emplace();
  c.algo_config->push_back(std::move(a));
  return c;
}

TEST(ScalingPipeline, AwqOnLlamaFoldsScalesClipsAndReportsEveryEntry) {
  const fs::path dir = TempDir("awq");
  auto preset = PresetConfig("uint4_wo_32");
  ASSERT_TRUE(preset.ok());
  Logs logs;
  auto r = QuantizeModel(Options("tiny-llama-kjv", WithAlgo(*preset, AWQConfig{}), dir), &logs);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->perplexity_quantized.has_value());
  ExpectExportReproducesJob(dir, *r->perplexity_quantized);
  const nlohmann::json rep = Report(dir);
  int scales = 0, clips = 0;
  for (const auto& a : rep["algorithm_records"]) {
    if (a["algorithm"] == "awq") {
      ++scales;
      EXPECT_GE(a["value"].get<double>(), 0.0);
      EXPECT_LT(a["value"].get<double>(), 1.0);
      EXPECT_LE(a["loss_after"].get<double>(), a["loss_before"].get<double>());
    } else if (a["algorithm"] == "awq_clip") {
      ++clips;
      EXPECT_FALSE(absl::StrContains(a["target"].get<std::string>(), "q_proj"));
      EXPECT_FALSE(absl::StrContains(a["target"].get<std::string>(), "k_proj"));
      EXPECT_LE(a["loss_after"].get<double>(), a["loss_before"].get<double>());
    }
  }
  EXPECT_EQ(scales, 8 * 4);  // 8 layers x the 4 default Llama entries
  EXPECT_EQ(clips, 8 * 5);   // v, o, gate, up, down (not q/k)
  for (const auto& l : rep["linears"])
    if (l["name"] != "lm_head") {
      EXPECT_EQ(l["method"], "awq+rtn") << l["name"];
    }
  // The float baseline is the float model: folding is float-equivalent (rounding only) and the
  // clipping (which is not) must not leak into it.
  auto base = QuantizeModel(Options("tiny-llama-kjv", *preset, TempDir("awq_rtn")));
  ASSERT_TRUE(base.ok()) << base.status();
  EXPECT_NEAR(*r->perplexity_float, *base->perplexity_float, 1e-5 * *base->perplexity_float);
}

TEST(ScalingPipeline, SmoothQuantOnOptFoldsIntoLayerNormBiasAndPreviousLinears) {
  const fs::path dir = TempDir("sq");
  auto preset = PresetConfig("int8");
  ASSERT_TRUE(preset.ok());
  SmoothQuantConfig sq;
  sq.alpha = 0.5;
  auto r = QuantizeModel(Options("tiny-opt-kjv", WithAlgo(*preset, sq), dir));
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectExportReproducesJob(dir, *r->perplexity_quantized);
  const nlohmann::json rep = Report(dir);
  int n = 0;
  for (const auto& a : rep["algorithm_records"]) {
    EXPECT_EQ(a["algorithm"], "smoothquant");
    EXPECT_EQ(a["choice"], "alpha 0.5");
    EXPECT_GE(a["scale_min"].get<double>(), 1e-3);
    ++n;
  }
  EXPECT_EQ(n, 6 * 4);  // tiny-opt-kjv: 6 layers x 4 entries
}

TEST(ScalingPipeline, AutoSmoothQuantOnLlamaSearchesRatiosAndExportsThem) {
  const fs::path dir = TempDir("asq");
  auto preset = PresetConfig("int8");
  ASSERT_TRUE(preset.ok());
  AutoSmoothQuantConfig asq;
  asq.compute_scale_loss = "MAE";
  auto r = QuantizeModel(Options("tiny-llama-kjv", WithAlgo(*preset, asq), dir));
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectExportReproducesJob(dir, *r->perplexity_quantized);
  int n = 0;
  const nlohmann::json rep = Report(dir);
  for (const auto& a : rep["algorithm_records"]) {
    EXPECT_EQ(a["algorithm"], "autosmoothquant");
    const double ratio = a["value"].get<double>();
    EXPECT_NEAR(ratio * 10, std::round(ratio * 10), 1e-9);  // 0, 0.1, ..., 0.9
    EXPECT_LE(a["loss_after"].get<double>(), a["loss_before"].get<double>());
    ++n;
  }
  EXPECT_EQ(n, 8 * 4);
}

TEST(ScalingPipeline, EntryWhoseInpIsExcludedIsSkippedWithAnInfoLog) {
  auto preset = PresetConfig("uint4_wo_128");
  ASSERT_TRUE(preset.ok());
  Config c = WithAlgo(*preset, AWQConfig{});
  c.exclude.push_back("*.o_proj");
  Logs logs;
  auto r = QuantizeModel(Options("tiny-llama-kjv", c, TempDir("skip")), &logs);
  ASSERT_TRUE(r.ok()) << r.status();
  int skipped = 0;
  for (const auto& l : logs.lines)
    if (absl::StrContains(l, "scaling_layers[1]") && absl::StrContains(l, "skipped") &&
        absl::StrContains(l, "o_proj is not quantized"))
      ++skipped;
  EXPECT_EQ(skipped, 8);
}

// Progress comes per entry, and a cancel is honoured between entries (not only between layers).
class CancelAfterFirstEntry final : public JobObserver {
 public:
  void OnProgress(const ProgressEvent& e) override {
    if (absl::StrContains(e.message, "awq: scaling_layers[")) {
      entries.push_back(e.message);
      cancel = true;
    }
  }
  bool IsCancelled() override { return cancel; }
  std::vector<std::string> entries;
  bool cancel = false;
};

TEST(ScalingPipeline, AwqReportsProgressPerEntryAndStopsBetweenEntries) {
  auto preset = PresetConfig("uint4_wo_128");
  ASSERT_TRUE(preset.ok());
  CancelAfterFirstEntry obs;
  auto r = QuantizeModel(Options("tiny-llama-kjv", WithAlgo(*preset, AWQConfig{}), TempDir("cancel")),
                         &obs);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "layer 0")) << r.status();
  ASSERT_EQ(obs.entries.size(), 1u);  // stopped after entry 0 of layer 0
  EXPECT_TRUE(absl::StrContains(obs.entries[0], "scaling_layers[0]"));
}

absl::Status RunExpectingError(const Config& c, Logs* logs) {
  auto r = QuantizeModel(Options("tiny-llama-kjv", c, TempDir("bad")), logs);
  return r.status();
}

TEST(ScalingPipeline, BadScalingLayersAreRefusedBeforeAnyWork) {
  auto preset = PresetConfig("uint4_wo_128");
  ASSERT_TRUE(preset.ok());
  ScalingLayer good;
  good.prev_op = "post_attention_layernorm";
  good.layers = {"mlp.gate_proj", "mlp.up_proj"};
  good.inp = "mlp.gate_proj";
  good.module2inspect = "mlp";
  {  // a module that does not exist
    AWQConfig a;
    ScalingLayer bad = good;
    bad.layers = {"mlp.gate_proj", "mlp.upp_proj"};
    a.scaling_layers = {good, bad};
    Logs logs;
    absl::Status s = RunExpectingError(WithAlgo(*preset, a), &logs);
    EXPECT_TRUE(absl::StrContains(s.message(), "scaling_layers[1].layers[1]")) << s;
    EXPECT_EQ(logs.layers_done, 0);
  }
  {  // module2inspect that is not a module of the layer
    AWQConfig a;
    ScalingLayer bad = good;
    bad.module2inspect = "ffn";
    a.scaling_layers = {bad};
    absl::Status s = RunExpectingError(WithAlgo(*preset, a), nullptr);
    EXPECT_TRUE(absl::StrContains(s.message(), "scaling_layers[0].module2inspect")) << s;
  }
  {  // a prev_op that cannot take the scale (k_proj's 128 outputs are not gate/up's 256 inputs)
    SmoothQuantConfig a;
    ScalingLayer bad = good;
    bad.prev_op = "self_attn.k_proj";
    a.scaling_layers = {bad};
    absl::Status s = RunExpectingError(WithAlgo(*preset, a), nullptr);
    EXPECT_TRUE(absl::StrContains(s.message(), "scaling_layers[0].prev_op")) << s;
  }
  {  // AWQ over layers of different group sizes
    Config c = WithAlgo(*preset, AWQConfig{});
    auto g64 = Uint4PerGroupSpec{false, 1, false, "float", "half_even", 64}.ToQuantizationSpec();
    ASSERT_TRUE(g64.ok());
    QuantizationConfig up;
    up.weight = TensorSpecs(*g64);
    c.layer_quant_config.emplace_back("*.up_proj", up);
    Logs logs;
    absl::Status s = RunExpectingError(c, &logs);
    EXPECT_TRUE(absl::StrContains(s.message(), "scaling_layers[2].layers[1]")) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "group size")) << s;
    EXPECT_EQ(logs.layers_done, 0);
  }
  {  // model_decoder_layers that names something else
    AWQConfig a;
    a.model_decoder_layers = "transformer.h";
    absl::Status s = RunExpectingError(WithAlgo(*preset, a), nullptr);
    EXPECT_TRUE(absl::StrContains(s.message(), "model_decoder_layers")) << s;
  }
}

}  // namespace
}  // namespace quarry
