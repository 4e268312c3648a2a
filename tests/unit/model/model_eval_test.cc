// The model families against the fixtures' reference.json: perplexity with the evaluation
// protocol (within 0.1%), per-window NLLs, and last-position logits of the reference prompts.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "float_logits.h"
#include "model/transformer.h"
#include "pipeline/layerwise.h"
#include "quarry/eval.h"
#include "quarry/tokenizer.h"

namespace quarry {
namespace {

const std::string kData = QUARRY_TEST_DATA_DIR;

nlohmann::json Reference(const std::string& model) {
  std::ifstream in(kData + "/models/" + model + "/reference.json");
  return nlohmann::json::parse(in);
}

// Last-position logits of `ids` through the float model, layer by layer.
at::Tensor LastLogits(const std::string& dir, const std::vector<int32_t>& ids) {
  return testing::FloatLogits(dir, ids)[0][static_cast<int64_t>(ids.size()) - 1];
}

class ModelReference : public ::testing::TestWithParam<const char*> {};

TEST_P(ModelReference, PromptLogitsMatch) {
  const std::string name = GetParam();
  const std::string dir = kData + "/models/" + name;
  auto ref = Reference(name);
  auto tokenizer = Tokenizer::FromModelDir(dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  double worst = 0;
  for (const auto& item : ref["prompts"]["items"]) {
    std::vector<int32_t> ids = (*tokenizer)->Encode(item["text"].get<std::string>(), true);
    ASSERT_EQ(ids, item["ids"].get<std::vector<int32_t>>());
    at::Tensor logits = LastLogits(dir, ids);
    std::vector<float> expected = item["last_logits"].get<std::vector<float>>();
    ASSERT_EQ(logits.numel(), static_cast<int64_t>(expected.size()));
    at::Tensor want = at::from_blob(expected.data(), {static_cast<int64_t>(expected.size())}).clone();
    const double diff = (logits - want).abs().max().item<double>();
    worst = std::max(worst, diff);
    // "Logits from another float32 implementation should agree to about 1e-4 absolute."
    EXPECT_LT(diff, 1e-4) << name << ": " << item["text"];
    auto top = std::get<1>(logits.topk(5));
    std::vector<int64_t> top5(top.data_ptr<int64_t>(), top.data_ptr<int64_t>() + 5);
    EXPECT_EQ(top5, item["top5_ids"].get<std::vector<int64_t>>());
  }
  RecordProperty("max_abs_logit_diff", std::to_string(worst));
  std::printf("%s: max |logit - reference| = %.3g\n", name.c_str(), worst);
}

TEST_P(ModelReference, PerplexityMatchesWithinAThousandth) {
  const std::string name = GetParam();
  auto ref = Reference(name);
  PerplexityOptions o;
  o.model_dir = kData + "/models/" + name;
  o.data_path = kData + "/kjv-eval.txt";
  o.seq_len = 256;
  auto r = EvaluatePerplexity(o);
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& e = ref["eval"];
  EXPECT_EQ(r->total_ids, e["num_ids_including_bos"].get<int64_t>());
  EXPECT_EQ(r->windows, e["num_windows"].get<int64_t>());
  EXPECT_EQ(r->scored_tokens, e["num_scored"].get<int64_t>());
  const double want = e["ppl"].get<double>();
  EXPECT_NEAR(r->perplexity / want, 1.0, 1e-3) << r->perplexity << " vs " << want;
  auto windows = e["per_window_mean_nll"].get<std::vector<double>>();
  ASSERT_EQ(windows.size(), r->window_nll.size());
  double worst = 0;
  for (size_t i = 0; i < windows.size(); ++i) worst = std::max(worst, std::abs(windows[i] - r->window_nll[i]));
  EXPECT_LT(worst, 1e-4);
  std::printf("%s: ppl %.5f (reference %.5f), worst per-window NLL diff %.3g\n", name.c_str(),
              r->perplexity, want, worst);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ModelReference, ::testing::Values("tiny-llama-kjv", "tiny-opt-kjv"));

TEST(ModelErrors, UnsupportedModelTypeListsSupportedOnes) {
  const std::string dir = ::testing::TempDir() + "/gpt2";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << R"({"model_type": "gpt2", "hidden_size": 8})";
  auto lm = model::CausalLM::Open(dir);
  ASSERT_FALSE(lm.ok());
  EXPECT_NE(lm.status().message().find("model_type 'gpt2' is not supported; supported: llama, "
                                       "mistral, qwen2, qwen3, opt"),
            absl::string_view::npos)
      << lm.status();
}

}  // namespace
}  // namespace quarry
