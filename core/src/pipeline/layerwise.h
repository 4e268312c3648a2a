// Core-internal: running token batches through a CausalLM one decoder layer at a time.
// A Batches value holds activations grouped into equal-length batches ([b, L, H] each); every
// helper here transforms them in place so that at most one layer's weights are resident.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "absl/status/statusor.h"
#include "model/transformer.h"

namespace quarry::pipeline {

struct Batches {
  std::vector<at::Tensor> ids;     // [b, L] int64 token ids (kept for NLL targets)
  std::vector<at::Tensor> hidden;  // [b, L, H] float32
  int64_t tokens() const;
  bool empty() const { return ids.empty(); }
};

// Groups sequences by length into batches of at most `max_batch_tokens` tokens (at least one
// sequence per batch). Sequence order inside equal-length groups is kept.
Batches MakeBatches(const std::vector<std::vector<int32_t>>& sequences, int64_t max_batch_tokens);

// hidden = Embed(ids) for every batch.
absl::Status EmbedAll(model::CausalLM& model, Batches& b);

// hidden = layer(hidden) for every batch, with the given pass mode. Each batch counts once in
// LayerForwards().
int64_t LayerForwards();  // decoder-layer forwards of one batch so far in this process
absl::Status ForwardAll(model::CausalLM& model, model::DecoderLayer& layer, Batches& b,
                        model::PassMode mode);

// Per-sequence mean NLL of tokens 1..L-1 (the first token of each sequence is not scored), using
// the head on every batch. Returns one value per sequence in batch order.
absl::StatusOr<std::vector<double>> SequenceNll(model::Head& head, const Batches& b,
                                                model::PassMode mode, int64_t* scored_tokens);

}  // namespace quarry::pipeline
