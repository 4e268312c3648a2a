#include "quarry/model_config.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "config/json_internal.h"
#include "quarry/status.h"

namespace quarry {

std::string ModelConfig::LayerPrefix(int layer) const {
  return absl::StrCat(family == ModelFamily::kOpt ? "model.decoder.layers." : "model.layers.", layer);
}

std::string ModelConfig::EmbedTokensName() const {
  return family == ModelFamily::kOpt ? "model.decoder.embed_tokens.weight"
                                     : "model.embed_tokens.weight";
}

std::vector<std::string> SupportedModelTypes() {
  return {"llama", "mistral", "qwen2", "qwen3", "opt"};
}

absl::StatusOr<ModelConfig> ModelConfigFromJson(const std::string& json_text,
                                                const std::string& source) {
  QUARRY_ASSIGN_OR_RETURN(internal::Json j, internal::ParseJson(json_text, source));
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(source, ": not an object"));
  ModelConfig c;
  c.model_type = j.value("model_type", "");
  if (c.model_type == "llama" || c.model_type == "mistral") {
    c.family = ModelFamily::kLlama;
  } else if (c.model_type == "qwen2") {
    c.family = ModelFamily::kQwen2;
  } else if (c.model_type == "qwen3") {
    c.family = ModelFamily::kQwen3;
  } else if (c.model_type == "opt") {
    c.family = ModelFamily::kOpt;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": model_type '", c.model_type, "' is not supported; supported: ",
        absl::StrJoin(SupportedModelTypes(), ", ")));
  }
  auto get_int = [&](const char* key, int* out, bool required) -> absl::Status {
    if (!j.contains(key) || j[key].is_null()) {
      if (required) return absl::InvalidArgumentError(absl::StrCat(source, ": missing '", key, "'"));
      return absl::OkStatus();
    }
    if (!j[key].is_number_integer() || j[key].get<int64_t>() < 0)
      return absl::InvalidArgumentError(absl::StrCat(source, ": '", key, "' must be a non-negative integer"));
    *out = j[key].get<int>();
    return absl::OkStatus();
  };
  QUARRY_RETURN_IF_ERROR(get_int("hidden_size", &c.hidden_size, true));
  QUARRY_RETURN_IF_ERROR(get_int("num_hidden_layers", &c.num_layers, true));
  QUARRY_RETURN_IF_ERROR(get_int("num_attention_heads", &c.num_heads, true));
  QUARRY_RETURN_IF_ERROR(get_int("vocab_size", &c.vocab_size, true));
  QUARRY_RETURN_IF_ERROR(get_int("max_position_embeddings", &c.max_position_embeddings, true));
  QUARRY_RETURN_IF_ERROR(get_int("bos_token_id", &c.bos_token_id, false));
  QUARRY_RETURN_IF_ERROR(get_int("eos_token_id", &c.eos_token_id, false));
  if (c.num_heads == 0 || c.hidden_size == 0 || c.num_layers == 0)
    return absl::InvalidArgumentError(absl::StrCat(source, ": hidden_size, num_hidden_layers and "
                                                   "num_attention_heads must be > 0"));
  c.torch_dtype = j.value("torch_dtype", "float32");
  if (c.family == ModelFamily::kOpt) {
    QUARRY_RETURN_IF_ERROR(get_int("ffn_dim", &c.intermediate_size, true));
    c.num_kv_heads = c.num_heads;
    c.head_dim = c.hidden_size / c.num_heads;
    c.hidden_act = j.value("activation_function", "relu");
    c.do_layer_norm_before = j.value("do_layer_norm_before", true);
    c.word_embed_proj_dim = j.value("word_embed_proj_dim", c.hidden_size);
    c.enable_bias = j.value("enable_bias", true);
    c.rms_norm_eps = 1e-5;  // nn.LayerNorm default used by OPT
    // HF's OPT configs carry no tie_word_embeddings key; the default is tied.
    c.tie_word_embeddings = j.value("tie_word_embeddings", true);
    if (c.word_embed_proj_dim != c.hidden_size)
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": OPT with word_embed_proj_dim != hidden_size (project_in/out, OPT-350m) is "
                  "not supported"));
    if (!c.do_layer_norm_before)
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": OPT with do_layer_norm_before=false (post-LN, OPT-350m) is not supported"));
    if (c.hidden_act != "relu")
      return absl::InvalidArgumentError(absl::StrCat(source, ": OPT activation_function '",
                                                     c.hidden_act, "' is not supported (relu)"));
    return c;
  }
  QUARRY_RETURN_IF_ERROR(get_int("intermediate_size", &c.intermediate_size, true));
  c.num_kv_heads = c.num_heads;
  QUARRY_RETURN_IF_ERROR(get_int("num_key_value_heads", &c.num_kv_heads, false));
  c.head_dim = c.hidden_size / c.num_heads;
  QUARRY_RETURN_IF_ERROR(get_int("head_dim", &c.head_dim, false));
  if (c.num_kv_heads == 0 || c.num_heads % c.num_kv_heads != 0)
    return absl::InvalidArgumentError(absl::StrCat(source, ": num_attention_heads (", c.num_heads,
                                                   ") must be a multiple of num_key_value_heads (",
                                                   c.num_kv_heads, ")"));
  c.rms_norm_eps = j.value("rms_norm_eps", 1e-6);
  c.rope_theta = j.value("rope_theta", 10000.0);
  c.tie_word_embeddings = j.value("tie_word_embeddings", false);
  c.attention_bias = j.value("attention_bias", false);
  c.mlp_bias = j.value("mlp_bias", false);
  if (c.family == ModelFamily::kQwen2) c.attention_bias = true;  // q/k/v biases, o_proj none
  c.hidden_act = j.value("hidden_act", "silu");
  if (c.hidden_act != "silu")
    return absl::InvalidArgumentError(absl::StrCat(source, ": hidden_act '", c.hidden_act,
                                                   "' is not supported (silu)"));
  if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
    const auto& r = j["rope_scaling"];
    RopeScaling s;
    s.type = r.value("rope_type", r.value("type", ""));
    if (s.type == "default") {
      // no scaling
    } else if (s.type != "llama3") {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": rope_scaling type '", s.type, "' is not supported (supported: llama3)"));
    } else {
      s.factor = r.value("factor", 1.0);
      s.low_freq_factor = r.value("low_freq_factor", 1.0);
      s.high_freq_factor = r.value("high_freq_factor", 4.0);
      s.original_max_position_embeddings = r.value("original_max_position_embeddings", 8192);
      c.rope_scaling = s;
    }
  }
  return c;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  QUARRY_ASSIGN_OR_RETURN(internal::Json j, internal::ReadJsonFile(path));
  return ModelConfigFromJson(j.dump(), path);
}

}  // namespace quarry
