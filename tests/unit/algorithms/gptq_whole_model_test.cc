// GPTQ driven through the whole pipeline, checked against the reference implementation
// (IST-DASLab/gptq) run the same way on the same fixture: decoder layer 0 of tiny-llama-kjv,
// int3 symmetric per-group 128, act-order + static groups, true-sequential groups, 32
// calibration lines. Layer 0's inputs are the embeddings, identical for both, so every
// difference here comes from how the pipeline drives GPTQ: which activations reach each group's
// Hessian (tokens, positions, masks, BOS, truncation), whether the capture forward of a group
// uses the already-quantized weights of the groups before it, the group order, damping and the
// static-group parameters. Reference vectors and their provenance:
// tests/data/reference/README.md.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "quarry/config_json.h"
#include "quarry/pipeline.h"
#include "quarry/tensor_io.h"

namespace quarry {
namespace {

namespace fs = std::filesystem;
const std::string kData = QUARRY_TEST_DATA_DIR;
const std::string kExamples = kData + "/../../examples";

// A one-layer view of tiny-llama-kjv: its files, with config.json's num_hidden_layers = 1.
std::string OneLayerModel(const fs::path& dir) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path src = kData + "/models/tiny-llama-kjv";
  for (const auto& e : fs::directory_iterator(src))
    if (e.path().filename() != "config.json") fs::create_symlink(e.path(), dir / e.path().filename());
  nlohmann::json c = nlohmann::json::parse(std::ifstream(src / "config.json"));
  c["num_hidden_layers"] = 1;
  std::ofstream(dir / "config.json") << c.dump(2);
  return dir.string();
}

std::string FirstCalibrationLines(const fs::path& path, int n) {
  std::ifstream in(kData + "/kjv-calib.jsonl");
  std::ofstream out(path);
  std::string line;
  for (int i = 0; i < n && std::getline(in, line); ++i) out << line << "\n";
  return path.string();
}

// Share of weights on the reference's grid point: round(w / reference scale) == reference code.
double SameCodes(const at::Tensor& w, const at::Tensor& codes, const at::Tensor& scale, int g) {
  at::Tensor s = scale.repeat_interleave(g, 1).narrow(1, 0, w.size(1));
  at::Tensor c = at::round(w / s);
  return (c == codes.to(at::kFloat)).to(at::kDouble).mean().item<double>();
}

TEST(GptqWholeModel, Layer0MatchesTheReferenceImplementation) {
  const fs::path tmp = fs::temp_directory_path() / ("quarry_gptq_wm_" + std::to_string(::getpid()));
  QuantizeOptions o;
  o.model_dir = OneLayerModel(tmp / "model");
  auto config = ConfigFromJsonFile(kExamples + "/configs/int3_g128.json");
  ASSERT_TRUE(config.ok()) << config.status();
  auto algo = LoadQuantAlgoConfigFromFile(kExamples + "/algos/gptq.json");
  ASSERT_TRUE(algo.ok()) << algo.status();
  o.config = *config;
  o.config.algo_config.emplace();
  o.config.algo_config->push_back(*algo);
  o.calibration.path = FirstCalibrationLines(tmp / "calib.jsonl", 32);
  o.calibration.num_samples = 32;
  o.calibration.seq_len = 512;
  o.export_options.real_quantized = false;  // fake-quantized float weights: the values GPTQ chose
  o.output_dir = (tmp / "out").string();
  o.error_sample_sequences = 0;
  auto r = QuantizeModel(o);
  ASSERT_TRUE(r.ok()) << r.status();

  auto ours = LoadAllTensors(o.output_dir + "/model.safetensors");
  ASSERT_TRUE(ours.ok()) << ours.status();
  auto ref = LoadAllTensors(kData + "/reference/gptq_ist_tiny_llama_layer0_int3_g128.safetensors");
  ASSERT_TRUE(ref.ok()) << ref.status();
  // Observed on the project machine: all seven 100% identical. Another BLAS (summation order)
  // may flip a few rounding decisions that GPTQ's error feedback then spreads, the more so the
  // further downstream of the embeddings a Hessian is: with all 128 lines, o was 99.95%, gate/up
  // 99.8%, down 91% identical. The bounds leave room for that. Driving bugs, tried once each: capturing
  // every group with float weights gave o 78%, gate/up 90%, down 81%; one calibration line fewer
  // (a different Hessian) gave q/k/v 91%.
  struct Bound {
    const char* name;
    double min_same;
  };
  for (const Bound& b : {Bound{"self_attn.q_proj", 0.999}, Bound{"self_attn.k_proj", 0.999},
                         Bound{"self_attn.v_proj", 0.999}, Bound{"self_attn.o_proj", 0.99},
                         Bound{"mlp.gate_proj", 0.98}, Bound{"mlp.up_proj", 0.98},
                         Bound{"mlp.down_proj", 0.85}}) {
    const std::string p = std::string("model.layers.0.") + b.name;
    ASSERT_TRUE(ours->count(p + ".weight")) << p;
    const at::Tensor w = ours->at(p + ".weight").to(at::kFloat);
    const double same = SameCodes(w, ref->at(p + ".codes"), ref->at(p + ".scale"), 128);
    std::printf("%-40s %.4f on the reference's grid point\n", p.c_str(), same);
    EXPECT_GE(same, b.min_same) << p << ": " << same << " of the weights on the reference's grid point";
  }
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace quarry
