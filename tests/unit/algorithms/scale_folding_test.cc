// Folding a scale into the model (prev_op / s, layers * s) must leave the float function
// unchanged: logits of both fixtures within 1e-5 relative, GQA v->o and OPT's LayerNorm bias
// included. Bad scaling_layers entries are refused naming the entry index and field.
#include "algorithms/scaling/scale_folding.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

#include "model/transformer.h"
#include "pipeline/layerwise.h"
#include "unit/model/float_logits.h"

namespace quarry::algorithms::scaling {
namespace {

const std::vector<int32_t> kIds = {1, 450, 3186, 310, 278, 3186, 2989, 322, 1749, 12, 7, 99};

std::string Fixture(const char* name) {
  return absl::StrCat(QUARRY_TEST_DATA_DIR, "/models/", name);
}

// Logits with every default scaling entry of every layer folded with a random positive scale
// spanning [0.25, 4] (far from 1, so a missing or misplaced factor shows).
at::Tensor FoldedLogits(const std::string& dir, int* folded) {
  auto lm = model::CausalLM::Open(dir);
  EXPECT_TRUE(lm.ok()) << lm.status();
  const ModelConfig& c = (*lm)->config();
  pipeline::Batches b = pipeline::MakeBatches({kIds}, 1 << 20);
  EXPECT_TRUE(pipeline::EmbedAll(**lm, b).ok());
  at::manual_seed(7);
  for (int i = 0; i < (*lm)->num_layers(); ++i) {
    auto layer = (*lm)->LoadLayer(i);
    EXPECT_TRUE(layer.ok()) << layer.status();
    auto targets = ResolveScalingLayers(**layer, c, c.LayerPrefix(i), DefaultScalingLayers(c.family));
    EXPECT_TRUE(targets.ok()) << targets.status();
    for (const ScaleTarget& t : *targets) {
      at::Tensor s = at::exp2(at::rand({t.layers[0]->in_features()}) * 4 - 2);
      auto eff = FoldScale(t, c, s);
      EXPECT_TRUE(eff.ok()) << eff.status();
      ++*folded;
    }
    EXPECT_TRUE(pipeline::ForwardAll(**lm, **layer, b, model::PassMode::kFloat).ok());
  }
  auto head = (*lm)->LoadHead();
  return *(*head)->Forward(b.hidden[0], model::PassMode::kFloat);
}

double RelDiff(const at::Tensor& a, const at::Tensor& ref) {
  return (a - ref).abs().max().item<double>() / ref.abs().max().item<double>();
}

TEST(ScaleFoldingTest, LlamaGqaLogitsUnchanged) {
  const std::string dir = Fixture("tiny-llama-kjv");
  at::Tensor ref = testing::FloatLogits(dir, kIds);
  int folded = 0;
  at::Tensor got = FoldedLogits(dir, &folded);
  EXPECT_EQ(folded, 8 * 4);
  const double rel = RelDiff(got, ref);
  RecordProperty("max_rel_diff", absl::StrCat(rel));
  EXPECT_LT(rel, 1e-5);
}

TEST(ScaleFoldingTest, OptLayerNormBiasLogitsUnchanged) {
  const std::string dir = Fixture("tiny-opt-kjv");
  at::Tensor ref = testing::FloatLogits(dir, kIds);
  int folded = 0;
  at::Tensor got = FoldedLogits(dir, &folded);
  EXPECT_EQ(folded, 6 * 4);
  const double rel = RelDiff(got, ref);
  RecordProperty("max_rel_diff", absl::StrCat(rel));
  EXPECT_LT(rel, 1e-5);
}

TEST(ScaleFoldingTest, GqaScaleIsMaxOverQueryHeadsOfTheGroup) {
  ModelConfig c;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 2;
  ScaleTarget t;
  t.gqa_v_to_o = true;
  // Query heads 0,1 -> KV head 0; 2,3 -> KV head 1.
  at::Tensor s = at::tensor({1.f, 5.f, 3.f, 2.f, 0.5f, 0.25f, 0.75f, 4.f});
  at::Tensor e = EffectiveScale(t, c, s);
  at::Tensor want = at::tensor({3.f, 5.f, 3.f, 5.f, 0.75f, 4.f, 0.75f, 4.f});
  EXPECT_TRUE(at::equal(e, want)) << e;
}

class ScaleEntryErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto lm = model::CausalLM::Open(Fixture("tiny-llama-kjv"));
    ASSERT_TRUE(lm.ok()) << lm.status();
    lm_ = std::move(*lm);
    auto layer = lm_->LoadLayer(0);
    ASSERT_TRUE(layer.ok()) << layer.status();
    layer_ = std::move(*layer);
  }
  absl::Status Resolve(std::vector<ScalingLayer> entries) {
    return ResolveScalingLayers(*layer_, lm_->config(), "model.layers.0", entries).status();
  }
  std::unique_ptr<model::CausalLM> lm_;
  std::unique_ptr<model::DecoderLayer> layer_;
};

TEST_F(ScaleEntryErrorsTest, MissingModuleNamesEntryAndField) {
  auto e = DefaultScalingLayers(ModelFamily::kLlama);
  e[2].layers[1] = "mlp.upp_proj";
  absl::Status st = Resolve(e);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("scaling_layers[2].layers[1]"), std::string::npos) << st;
  EXPECT_NE(st.message().find("mlp.upp_proj"), std::string::npos) << st;
}

TEST_F(ScaleEntryErrorsTest, LayersOfDifferentInputSizes) {
  auto e = DefaultScalingLayers(ModelFamily::kLlama);
  e[2].layers = {"mlp.gate_proj", "mlp.down_proj"};
  absl::Status st = Resolve(e);
  EXPECT_NE(st.message().find("scaling_layers[2].layers[1]"), std::string::npos) << st;
}

TEST_F(ScaleEntryErrorsTest, PrevOpThatCannotTakeTheScale) {
  auto e = DefaultScalingLayers(ModelFamily::kLlama);
  e[3].prev_op = "self_attn.q_proj";  // 256 outputs, down_proj takes 768
  absl::Status st = Resolve(e);
  EXPECT_NE(st.message().find("scaling_layers[3].prev_op"), std::string::npos) << st;
  e = DefaultScalingLayers(ModelFamily::kLlama);
  e[0].prev_op = "no_such_norm";
  st = Resolve(e);
  EXPECT_NE(st.message().find("scaling_layers[0].prev_op"), std::string::npos) << st;
  e = DefaultScalingLayers(ModelFamily::kLlama);
  e[1].inp = "self_attn.v_proj";  // takes 256 inputs, o_proj's input
  st = Resolve(e);
  EXPECT_TRUE(st.ok()) << st;  // 256 == 256: a legal (if odd) choice
}

}  // namespace
}  // namespace quarry::algorithms::scaling
