// The layer-by-layer pipeline end to end on the fixture: export files, report, reload of the
// exported model reproducing the pipeline's perplexity, one resident layer at a time, progress
// and cancellation, and clear errors for bad inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "pipeline/residency.h"
#include "quarry/eval.h"
#include "quarry/pipeline.h"
#include "quarry/presets.h"
#include "quarry/safetensors.h"

namespace quarry {
namespace {

namespace fs = std::filesystem;
const std::string kData = QUARRY_TEST_DATA_DIR;
const std::string kLlama = kData + "/models/tiny-llama-kjv";

std::string OutDir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("quarry_pipeline_" + std::to_string(::getpid())) / name;
  fs::remove_all(p);
  return p.string();
}

QuantizeOptions SmallJob(const std::string& preset, const std::string& out) {
  QuantizeOptions o;
  o.model_dir = kLlama;
  o.config = *PresetConfig(preset);
  o.calibration.path = kData + "/kjv-calib.jsonl";
  o.calibration.num_samples = 8;
  o.calibration.seq_len = 128;
  o.output_dir = out;
  EvalOptions e;
  e.path = kData + "/kjv-eval.txt";
  e.max_windows = 8;
  o.eval = e;
  return o;
}

class RecordingObserver : public JobObserver {
 public:
  void OnProgress(const ProgressEvent& e) override {
    events.push_back(e);
    if (cancel_at_layer >= 0 && e.layer_index == cancel_at_layer) cancelled = true;
  }
  void OnLog(LogSeverity s, absl::string_view m) override { logs.emplace_back(s, std::string(m)); }
  bool IsCancelled() override { return cancelled; }
  std::vector<ProgressEvent> events;
  std::vector<std::pair<LogSeverity, std::string>> logs;
  int cancel_at_layer = -1;
  bool cancelled = false;
};

TEST(Pipeline, Int8ExportReloadsWithTheSamePerplexity) {
  const std::string out = OutDir("int8");
  RecordingObserver obs;
  auto r = QuantizeModel(SmallJob("int8", out), &obs);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->perplexity_float && r->perplexity_quantized);
  for (const char* f : {"model.safetensors", "config.json", "tokenizer.model", "report.json",
                        "report.html", "tokenizer_config.json"})
    EXPECT_TRUE(fs::exists(fs::path(out) / f)) << f;
  // Tensors in Quark's naming.
  auto st = SafetensorsFile::Open(out + "/model.safetensors");
  ASSERT_TRUE(st.ok()) << st.status();
  const StTensorInfo* w = (*st)->Find("model.layers.0.self_attn.q_proj.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, StDtype::kI8);
  EXPECT_NE((*st)->Find("model.layers.0.self_attn.q_proj.weight_scale"), nullptr);
  EXPECT_NE((*st)->Find("model.layers.0.self_attn.q_proj.weight_zero_point"), nullptr);
  EXPECT_NE((*st)->Find("model.layers.0.self_attn.q_proj.input_scale"), nullptr);
  EXPECT_EQ((*st)->Find("lm_head.weight")->dtype, StDtype::kBF16);  // excluded: copied as is
  // config.json carries Quark's quantization_config with the export block.
  std::ifstream cin(out + "/config.json");
  auto cfg = nlohmann::json::parse(cin);
  EXPECT_EQ(cfg["quantization_config"]["quant_method"], "quark");
  EXPECT_EQ(cfg["quantization_config"]["export"]["weight_format"], "real_quantized");
  EXPECT_EQ(cfg["quantization_config"]["exclude"], nlohmann::json::array({"lm_head"}));
  EXPECT_EQ(cfg["model_type"], "llama");
  // Reloading the exported model reproduces the pipeline's fake-quantized perplexity.
  PerplexityOptions po;
  po.model_dir = out;
  po.data_path = kData + "/kjv-eval.txt";
  po.max_windows = 8;
  auto reloaded = EvaluatePerplexity(po);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_TRUE(reloaded->quantized_model);
  EXPECT_NEAR(reloaded->perplexity, *r->perplexity_quantized, 1e-6 * *r->perplexity_quantized);
  // int8 W8A8 stays within 1% of the float perplexity.
  EXPECT_LT(*r->perplexity_quantized / *r->perplexity_float, 1.01);
  // Progress covered every layer and ended at 1.
  int max_layer = -1;
  for (const auto& e : obs.events) max_layer = std::max(max_layer, e.layer_index);
  EXPECT_EQ(max_layer, 7);
  EXPECT_DOUBLE_EQ(obs.events.back().fraction, 1.0);
  // ... and never went backwards (a progress bar must not jump back).
  for (size_t i = 1; i < obs.events.size(); ++i)
    EXPECT_GE(obs.events[i].fraction, obs.events[i - 1].fraction)
        << obs.events[i - 1].stage << " " << obs.events[i - 1].layer_index << " -> "
        << obs.events[i].stage << " " << obs.events[i].layer_index;
  // Only one decoder layer was resident at any time (observed through its tensors' storages).
  std::ifstream rin(out + "/report.json");
  auto report = nlohmann::json::parse(rin);
  EXPECT_EQ(report["max_resident_decoder_layers"], 1);
  EXPECT_EQ(report["linears"].size(), 8u * 7 + 1);
  EXPECT_TRUE(report["linears"][0]["output_sqnr_db"].is_number());
}

nlohmann::json ReadReport(const std::string& out) {
  std::ifstream in(out + "/report.json");
  return nlohmann::json::parse(in);
}

TEST(Pipeline, WeightOnlyRtnRunsNoForward) {
  const std::string out = OutDir("rtn_no_forward");
  QuantizeOptions o = SmallJob("uint4_wo_128", out);
  o.eval.reset();
  o.calibration.path = kData + "/does-not-exist.jsonl";  // never opened: nothing needs it
  RecordingObserver obs;
  auto r = QuantizeModel(o, &obs);
  ASSERT_TRUE(r.ok()) << r.status();
  auto report = ReadReport(out);
  EXPECT_EQ(report["layer_forwards"], 0);
  EXPECT_EQ(report["calibration_forward"], false);
  EXPECT_EQ(report["max_resident_decoder_layers"], 1);
  EXPECT_GT(report["peak_rss_anon_bytes"].get<double>(), 0);
  EXPECT_GT(report["bytes_read"].get<double>(), 0);
  for (const auto& l : report["linears"])
    EXPECT_TRUE(!l.contains("output_sqnr_db") || l["output_sqnr_db"].is_null()) << l["name"];
  bool said = false;
  for (const auto& [s, m] : obs.logs) said |= m.rfind("calibration forward: none", 0) == 0;
  EXPECT_TRUE(said) << "the job start says that no calibration forward runs";
}

TEST(Pipeline, StaticFp8W8A8RunsTheCalibrationForwardAndSaysWhy) {
  const std::string out = OutDir("fp8_forward");
  QuantizeOptions o = SmallJob("fp8", out);
  o.eval.reset();
  o.error_sample_sequences = 2;
  RecordingObserver obs;
  auto r = QuantizeModel(o, &obs);
  ASSERT_TRUE(r.ok()) << r.status();
  auto report = ReadReport(out);
  EXPECT_EQ(report["calibration_forward"], true);
  // 8 calibration sequences of one length = one batch; per layer: observe + quantized forward,
  // plus the 2-sequence statistics sample.
  EXPECT_EQ(report["layer_forwards"], 8 * 3);
  std::string why;
  for (const auto& [s, m] : obs.logs)
    if (m.rfind("calibration forward:", 0) == 0) why = m;
  EXPECT_NE(why.find("static input observers of 56 linears"), std::string::npos) << why;
  EXPECT_TRUE(report["linears"][0]["output_sqnr_db"].is_number());
}

TEST(Pipeline, PlanNeedingCalibrationWithoutDataFailsNamingWhy) {
  QuantizeOptions o = SmallJob("fp8", OutDir("fp8_no_calib"));
  o.calibration.path.clear();
  auto r = QuantizeModel(o);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("needs calibration data"), absl::string_view::npos)
      << r.status();
}

TEST(Pipeline, CancellationStopsBetweenLayers) {
  RecordingObserver obs;
  obs.cancel_at_layer = 2;
  auto r = QuantizeModel(SmallJob("uint4_wo_128", OutDir("cancel")), &obs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  int max_layer = -1;
  for (const auto& e : obs.events) max_layer = std::max(max_layer, e.layer_index);
  EXPECT_LE(max_layer, 3);
}

TEST(Pipeline, BadInputsFailClearly) {
  QuantizeOptions o = SmallJob("int8", OutDir("bad"));
  o.calibration.path = kData + "/nope.jsonl";
  auto r = QuantizeModel(o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("nope.jsonl"), absl::string_view::npos);
  o = SmallJob("int8", OutDir("bad2"));
  o.model_dir = kData;  // no config.json
  r = QuantizeModel(o);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("config.json"), absl::string_view::npos) << r.status();
  // A corrupt weights file names the file.
  const std::string broken = OutDir("broken_model");
  fs::create_directories(broken);
  for (const char* f : {"config.json", "tokenizer.model", "tokenizer_config.json"})
    fs::copy_file(fs::path(kLlama) / f, fs::path(broken) / f);
  std::ifstream src(kLlama + "/model.safetensors", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(src)), {});
  std::ofstream(broken + "/model.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  o = SmallJob("int8", OutDir("bad3"));
  o.model_dir = broken;
  r = QuantizeModel(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("model.safetensors"), absl::string_view::npos) << r.status();
}

// Every preset the issue lists exports and reloads to the pipeline's perplexity, on both fixture
// families (small calibration; the full-size table is in docs/results.md).
struct PresetCase {
  const char* model;
  const char* preset;
};

void PrintTo(const PresetCase& c, std::ostream* os) { *os << c.model << " " << c.preset; }

class PresetExport : public ::testing::TestWithParam<PresetCase> {};

TEST_P(PresetExport, ExportsAndReloads) {
  const PresetCase c = GetParam();
  std::string name = std::string(c.model) + "_" + c.preset;
  std::replace(name.begin(), name.end(), '+', '_');
  const std::string out = OutDir(name);
  QuantizeOptions o = SmallJob(c.preset, out);
  o.model_dir = kData + "/models/" + c.model;
  o.calibration.num_samples = 4;
  o.calibration.seq_len = 64;
  o.eval->max_windows = 4;
  auto r = QuantizeModel(o);
  ASSERT_TRUE(r.ok()) << r.status();
  PerplexityOptions po;
  po.model_dir = out;
  po.data_path = kData + "/kjv-eval.txt";
  po.max_windows = 4;
  auto reloaded = EvaluatePerplexity(po);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_NEAR(reloaded->perplexity, *r->perplexity_quantized, 1e-5 * *r->perplexity_quantized);
  // Sanity: quantization changed the model, costs something, and the model still works.
  EXPECT_NE(*r->perplexity_quantized, *r->perplexity_float);
  EXPECT_GT(*r->perplexity_quantized, 0.98 * *r->perplexity_float);
  EXPECT_LT(*r->perplexity_quantized, 1.5 * *r->perplexity_float);
}

INSTANTIATE_TEST_SUITE_P(
    Presets, PresetExport,
    ::testing::Values(PresetCase{"tiny-llama-kjv", "int8"}, PresetCase{"tiny-llama-kjv", "fp8"},
                      PresetCase{"tiny-llama-kjv", "int4_wo_128"},
                      PresetCase{"tiny-llama-kjv", "uint4_wo_128"},
                      PresetCase{"tiny-llama-kjv", "mxfp4"},
                      PresetCase{"tiny-llama-kjv", "fp8+kv_fp8"},
                      PresetCase{"tiny-llama-kjv", "ptpc_fp8"},
                      PresetCase{"tiny-llama-kjv", "int4_wo_per_channel"},
                      PresetCase{"tiny-llama-kjv", "mx6"},
                      PresetCase{"tiny-llama-kjv", "bfp16"},
                      PresetCase{"tiny-llama-kjv", "int4_fp8"},
                      PresetCase{"tiny-opt-kjv", "int8"}, PresetCase{"tiny-opt-kjv", "fp8"},
                      PresetCase{"tiny-opt-kjv", "int4_wo_128"},
                      PresetCase{"tiny-opt-kjv", "uint4_wo_128"},
                      PresetCase{"tiny-opt-kjv", "mxfp4"},
                      PresetCase{"tiny-opt-kjv", "fp8+kv_fp8"}),
    [](const ::testing::TestParamInfo<PresetCase>& info) {
      std::string n = std::string(info.param.model) + "_" + info.param.preset;
      for (char& ch : n)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return n;
    });

}  // namespace
}  // namespace quarry
