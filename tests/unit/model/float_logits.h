// Test helper shared by the model tests: the float model's logits for one token sequence,
// computed layer by layer through the pipeline (the way quantization sees the model).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model/transformer.h"
#include "pipeline/layerwise.h"

namespace quarry::testing {

// Logits [1, ids.size(), vocab] of `ids` through the float model in `dir`. A failing step is a
// test failure naming it and gives an undefined tensor (using it then throws, which gtest reports),
// never a dereference of an error.
inline at::Tensor FloatLogits(const std::string& dir, const std::vector<int32_t>& ids) {
  auto fail = [](const char* step, const absl::Status& st) {
    ADD_FAILURE() << step << ": " << st;
    return at::Tensor();
  };
  auto lm = model::CausalLM::Open(dir);
  if (!lm.ok()) return fail("open", lm.status());
  pipeline::Batches b = pipeline::MakeBatches({ids}, 1 << 20);
  if (absl::Status st = pipeline::EmbedAll(**lm, b); !st.ok()) return fail("embed", st);
  for (int i = 0; i < (*lm)->num_layers(); ++i) {
    auto layer = (*lm)->LoadLayer(i);
    if (!layer.ok()) return fail("load layer", layer.status());
    absl::Status st = pipeline::ForwardAll(**lm, **layer, b, model::PassMode::kFloat);
    if (!st.ok()) return fail("layer forward", st);
  }
  auto head = (*lm)->LoadHead();
  if (!head.ok()) return fail("load head", head.status());
  auto logits = (*head)->Forward(b.hidden[0], model::PassMode::kFloat);
  if (!logits.ok()) return fail("head forward", logits.status());
  return *logits;
}

}  // namespace quarry::testing
