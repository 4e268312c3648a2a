// Test helper shared by the model tests: the float model's logits for one token sequence,
// computed layer by layer through the pipeline (the way quantization sees the model).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model/transformer.h"
#include "pipeline/layerwise.h"

namespace quarry::testing {

// Logits [1, ids.size(), vocab] of `ids` through the float model in `dir`.
inline at::Tensor FloatLogits(const std::string& dir, const std::vector<int32_t>& ids) {
  auto lm = model::CausalLM::Open(dir);
  EXPECT_TRUE(lm.ok()) << lm.status();
  pipeline::Batches b = pipeline::MakeBatches({ids}, 1 << 20);
  EXPECT_TRUE(pipeline::EmbedAll(**lm, b).ok());
  for (int i = 0; i < (*lm)->num_layers(); ++i) {
    auto layer = (*lm)->LoadLayer(i);
    EXPECT_TRUE(layer.ok()) << layer.status();
    EXPECT_TRUE(pipeline::ForwardAll(**lm, **layer, b, model::PassMode::kFloat).ok());
  }
  auto head = (*lm)->LoadHead();
  EXPECT_TRUE(head.ok()) << head.status();
  auto logits = (*head)->Forward(b.hidden[0], model::PassMode::kFloat);
  EXPECT_TRUE(logits.ok()) << logits.status();
  return *logits;
}

}  // namespace quarry::testing
