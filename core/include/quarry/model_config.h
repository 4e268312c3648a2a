// A Hugging Face model's architecture, read from its config.json. Supported families: Llama
// (Llama 2/3, incl. rope_scaling "llama3"), Mistral, Qwen2 (q/k/v bias), Qwen3 (q/k norm) and OPT.
// Plain value type; thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace quarry {

enum class ModelFamily { kLlama, kQwen2, kQwen3, kOpt };

struct RopeScaling {
  std::string type;                 // "llama3" (others are rejected with a clear error)
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string model_type;           // config.json "model_type": llama, mistral, qwen2, qwen3, opt
  ModelFamily family = ModelFamily::kLlama;
  int hidden_size = 0;
  int intermediate_size = 0;        // OPT: ffn_dim
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int vocab_size = 0;
  int max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;       // Llama-like; OPT uses layer_norm_eps (1e-5)
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;      // q/k/v(/o) biases (Qwen2 q/k/v always)
  bool mlp_bias = false;
  std::string hidden_act = "silu";  // silu (Llama) / relu (OPT)
  std::string torch_dtype = "float32";
  // OPT
  bool do_layer_norm_before = true;
  int word_embed_proj_dim = 0;
  bool enable_bias = true;
  int bos_token_id = -1;
  int eos_token_id = -1;

  // HF parameter-name prefixes: "model.layers" / "model.decoder.layers".
  std::string LayerPrefix(int layer) const;
  std::string EmbedTokensName() const;  // "model.embed_tokens.weight" / "model.decoder.embed_tokens.weight"
};

// The supported model_type values, for error messages.
std::vector<std::string> SupportedModelTypes();

absl::StatusOr<ModelConfig> ModelConfigFromJson(const std::string& json_text,
                                                const std::string& source);
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir);

}  // namespace quarry
