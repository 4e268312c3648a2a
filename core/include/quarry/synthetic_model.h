// Writes a random-weight Hugging Face Llama checkpoint of any shape (config.json, sharded bf16
// safetensors, a tokenizer copied from another model), so the pipeline can be measured at real
// scale (e.g. Llama-3-8B's shape) on a machine that has no such model. Weights are uniform with
// standard deviation `init_std` (norm weights 1), from a counter-based generator: the same seed
// gives the same bytes whatever the thread count. Thread-compatible.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace quarry {

struct SyntheticModelOptions {
  std::string output_dir;             // created; must not hold a model already
  std::string tokenizer_from;         // a model dir whose tokenizer files are copied (required)
  int64_t hidden_size = 4096;         // defaults: Llama-3-8B's shape, vocab of the tokenizer
  int64_t intermediate_size = 14336;
  int num_layers = 32;
  int num_heads = 32;
  int num_kv_heads = 8;
  int64_t vocab_size = 0;             // 0 = the tokenizer model's vocabulary
  int max_position_embeddings = 8192;
  double rope_theta = 500000.0;
  double init_std = 0.02;
  uint64_t seed = 1;
  uint64_t max_shard_bytes = 5'000'000'000ull;  // HF's default shard size
};

struct SyntheticModelResult {
  uint64_t parameters = 0;
  uint64_t bytes = 0;                 // tensor bytes written
  int shards = 0;
  double seconds = 0;
};

absl::StatusOr<SyntheticModelResult> WriteSyntheticModel(const SyntheticModelOptions& options);

}  // namespace quarry
