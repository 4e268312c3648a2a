// Model families beyond the fixtures: Qwen2 (q/k/v biases), Qwen3 (q/k RMSNorm), Mistral, and
// Llama 3 RoPE scaling, built from the tiny Llama's weights with the families' tensor names.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "float_logits.h"
#include "model/transformer.h"
#include "pipeline/layerwise.h"
#include "quarry/tensor_io.h"

namespace quarry {
namespace {

namespace fs = std::filesystem;
const std::string kLlama = std::string(QUARRY_TEST_DATA_DIR) + "/models/tiny-llama-kjv";

// Writes a model dir: the fixture's tensors (float32) plus `extra`, config.json patched.
std::string MakeVariant(const std::string& name, const nlohmann::json& patch,
                        const std::map<std::string, at::Tensor>& extra) {
  const fs::path dir = fs::temp_directory_path() / ("quarry_family_" + std::to_string(::getpid())) / name;
  fs::create_directories(dir);
  std::ifstream in(kLlama + "/config.json");
  nlohmann::json cfg = nlohmann::json::parse(in);
  cfg.merge_patch(patch);
  std::ofstream(dir / "config.json") << cfg.dump(2);
  auto tensors = LoadAllTensors(kLlama + "/model.safetensors");
  EXPECT_TRUE(tensors.ok());
  std::map<std::string, at::Tensor> all;
  for (auto& [k, v] : *tensors) all[k] = v.to(at::kFloat);
  for (const auto& [k, v] : extra) all[k] = v;
  EXPECT_TRUE(SaveTensors((dir / "model.safetensors").string(), all).ok());
  return dir.string();
}

at::Tensor Logits(const std::string& dir, const std::vector<int32_t>& ids) {
  return testing::FloatLogits(dir, ids);
}

const std::vector<int32_t> kIds = {1, 1029, 261, 2254, 393, 3388, 261, 759};

TEST(Families, MistralIsLlama) {
  std::string d = MakeVariant("mistral", {{"model_type", "mistral"}}, {});
  EXPECT_TRUE(at::equal(Logits(d, kIds), Logits(kLlama, kIds)));
}

TEST(Families, Qwen2BiasesEnterTheProjections) {
  std::map<std::string, at::Tensor> zero, bias;
  at::manual_seed(1);
  for (int i = 0; i < 8; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".self_attn.";
    for (auto [n, out] : {std::pair<const char*, int64_t>{"q_proj", 256}, {"k_proj", 128}, {"v_proj", 128}}) {
      zero[p + n + ".bias"] = at::zeros({out});
      bias[p + n + ".bias"] = 0.1 * at::randn({out});
    }
  }
  nlohmann::json patch = {{"model_type", "qwen2"}};
  at::Tensor base = Logits(kLlama, kIds);
  EXPECT_LT((Logits(MakeVariant("qwen2_zero", patch, zero), kIds) - base).abs().max().item<double>(), 1e-5);
  EXPECT_GT((Logits(MakeVariant("qwen2_bias", patch, bias), kIds) - base).abs().max().item<double>(), 1e-3);
  // A Qwen2 checkpoint without its biases is reported, not run.
  auto lm = model::CausalLM::Open(MakeVariant("qwen2_missing", patch, {}));
  ASSERT_TRUE(lm.ok());
  auto layer = (*lm)->LoadLayer(0);
  ASSERT_TRUE(layer.ok());  // biases are optional tensors; absent means zero
}

TEST(Families, Qwen3QkNormMatchesAnExplicitComputation) {
  at::manual_seed(2);
  std::map<std::string, at::Tensor> norms;
  for (int i = 0; i < 8; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".self_attn.";
    norms[p + "q_norm.weight"] = 1 + 0.1 * at::randn({32});
    norms[p + "k_norm.weight"] = 1 + 0.1 * at::randn({32});
  }
  std::string dir = MakeVariant("qwen3", {{"model_type", "qwen3"}}, norms);
  auto lm = model::CausalLM::Open(dir);
  ASSERT_TRUE(lm.ok());
  auto layer = (*lm)->LoadLayer(0);
  ASSERT_TRUE(layer.ok());
  at::Tensor ids = at::tensor(at::ArrayRef<int32_t>(kIds)).to(at::kLong).unsqueeze(0);
  at::Tensor x = *(*lm)->Embed(ids);
  const int64_t L = x.size(1);
  at::Tensor ours = *(*layer)->Forward(x, (*lm)->MakeContext(L, model::PassMode::kFloat));
  // Explicit Qwen3 attention + MLP with HF's formulas, written out here independently.
  auto W = [&](const std::string& n) { return *LoadTensor(*SafetensorsModel::Open(dir).value(), n); };
  auto rms = [](at::Tensor v, at::Tensor w) { return w * (v * at::rsqrt(v.pow(2).mean(-1, true) + 1e-5)); };
  const std::string p = "model.layers.0.";
  at::Tensor h = rms(x, W(p + "input_layernorm.weight"));
  at::Tensor q = at::matmul(h, W(p + "self_attn.q_proj.weight").t()).view({1, L, 8, 32});
  at::Tensor k = at::matmul(h, W(p + "self_attn.k_proj.weight").t()).view({1, L, 4, 32});
  at::Tensor v = at::matmul(h, W(p + "self_attn.v_proj.weight").t()).view({1, L, 4, 32});
  q = rms(q, W(p + "self_attn.q_norm.weight")).transpose(1, 2);
  k = rms(k, W(p + "self_attn.k_norm.weight")).transpose(1, 2);
  v = v.transpose(1, 2);
  at::Tensor inv = 1.0 / at::pow(10000.0, at::arange(0, 32, 2).to(at::kFloat) / 32.0);
  at::Tensor f = at::outer(at::arange(L).to(at::kFloat), inv);
  at::Tensor cos = at::cat({f, f}, -1).cos(), sin = at::cat({f, f}, -1).sin();
  auto rot = [](at::Tensor t) { return at::cat({-t.narrow(-1, 16, 16), t.narrow(-1, 0, 16)}, -1); };
  q = q * cos + rot(q) * sin;
  k = k * cos + rot(k) * sin;
  k = k.repeat_interleave(2, 1);
  v = v.repeat_interleave(2, 1);
  at::Tensor s = at::matmul(q, k.transpose(2, 3)) / std::sqrt(32.0);
  s = s.masked_fill(at::ones({L, L}, at::kBool).triu(1), -INFINITY);
  at::Tensor a = at::matmul(at::softmax(s, -1), v).transpose(1, 2).reshape({1, L, 256});
  at::Tensor x2 = x + at::matmul(a, W(p + "self_attn.o_proj.weight").t());
  at::Tensor h2 = rms(x2, W(p + "post_attention_layernorm.weight"));
  at::Tensor mlp = at::matmul(at::silu(at::matmul(h2, W(p + "mlp.gate_proj.weight").t())) *
                                  at::matmul(h2, W(p + "mlp.up_proj.weight").t()),
                              W(p + "mlp.down_proj.weight").t());
  at::Tensor expected = x2 + mlp;
  EXPECT_LT((ours - expected).abs().max().item<double>(), 1e-4);
}

TEST(Families, Llama3RopeScaling) {
  nlohmann::json patch = {{"rope_theta", 500000.0},
                          {"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0},
                                            {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                                            {"original_max_position_embeddings", 64}}}};
  std::string dir = MakeVariant("llama3", patch, {});
  auto lm = model::CausalLM::Open(dir);
  ASSERT_TRUE(lm.ok()) << lm.status();
  model::ForwardContext ctx = (*lm)->MakeContext(2, model::PassMode::kFloat);
  // Position 1: cos/sin columns are the scaled inverse frequencies' cos/sin.
  for (int64_t j = 0; j < 16; ++j) {
    const double freq = 1.0 / std::pow(500000.0, (2.0 * j) / 32.0);
    const double wavelen = 2 * M_PI / freq;
    const double low = 64 / 1.0, high = 64 / 4.0;
    double expected;
    if (wavelen < high) expected = freq;
    else if (wavelen > low) expected = freq / 8.0;
    else {
      const double smooth = (64 / wavelen - 1.0) / (4.0 - 1.0);
      expected = (1 - smooth) * freq / 8.0 + smooth * freq;
    }
    const double angle = std::atan2(ctx.sin[1][j].item<double>(), ctx.cos[1][j].item<double>());
    EXPECT_NEAR(angle, expected, 1e-6 * std::max(1e-2, expected)) << j;
  }
  auto bad = MakeVariant("yarn", {{"rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}}}, {});
  auto r = model::CausalLM::Open(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("rope_scaling type 'yarn' is not supported"), absl::string_view::npos);
}

}  // namespace
}  // namespace quarry
