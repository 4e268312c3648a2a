#include "quarry/synthetic_model.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/str_cat.h"
#include "quarry/safetensors.h"
#include "quarry/status.h"
#include "quarry/tokenizer.h"

namespace quarry {
namespace {

namespace fs = std::filesystem;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint16_t ToBf16(float f) {  // round to nearest even (finite inputs)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

// n bf16 values uniform in [-a, a] (a = std * sqrt(3)); element i depends only on (seed, i).
void FillUniform(std::vector<uint16_t>& out, int64_t n, double std, uint64_t seed) {
  out.resize(static_cast<size_t>(n));
  const float a = static_cast<float>(std * std::sqrt(3.0));
  at::parallel_for(0, (n + 1) / 2, 1 << 15, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const uint64_t r = SplitMix64(seed ^ (static_cast<uint64_t>(i) * 0xd1342543de82ef95ull));
      for (int k = 0; k < 2; ++k) {
        const int64_t j = 2 * i + k;
        if (j >= n) break;
        const uint32_t bits = static_cast<uint32_t>(r >> (32 * k));
        const float u = (static_cast<float>(bits >> 8) * (1.0f / 16777216.0f)) * 2.0f - 1.0f;
        out[static_cast<size_t>(j)] = ToBf16(u * a);
      }
    }
  });
}

}  // namespace

absl::StatusOr<SyntheticModelResult> WriteSyntheticModel(const SyntheticModelOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  if (o.output_dir.empty()) return absl::InvalidArgumentError("output_dir is required");
  if (o.tokenizer_from.empty())
    return absl::InvalidArgumentError("tokenizer_from is required (a model dir with a tokenizer)");
  if (o.hidden_size <= 0 || o.intermediate_size <= 0 || o.num_layers <= 0 || o.num_heads <= 0 ||
      o.num_kv_heads <= 0 || o.num_heads % o.num_kv_heads != 0 || o.hidden_size % o.num_heads != 0)
    return absl::InvalidArgumentError(absl::StrCat(
        "bad shape: hidden ", o.hidden_size, ", ffn ", o.intermediate_size, ", layers ",
        o.num_layers, ", heads ", o.num_heads, "/", o.num_kv_heads,
        " (heads must divide hidden, kv heads must divide heads)"));
  std::error_code ec;
  if (fs::exists(fs::path(o.output_dir) / "config.json", ec))
    return absl::AlreadyExistsError(absl::StrCat("'", o.output_dir, "' already holds a model"));
  QUARRY_ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::FromModelDir(o.tokenizer_from));
  const int64_t vocab = o.vocab_size > 0 ? o.vocab_size : tokenizer->vocab_size();
  fs::create_directories(o.output_dir, ec);
  for (const char* f : {"tokenizer.model", "tokenizer.json", "tokenizer_config.json",
                        "special_tokens_map.json", "generation_config.json"}) {
    fs::path src = fs::path(o.tokenizer_from) / f;
    if (fs::exists(src, ec))
      fs::copy_file(src, fs::path(o.output_dir) / f, fs::copy_options::overwrite_existing, ec);
    if (ec) return absl::InternalError(absl::StrCat("copying ", src.string(), ": ", ec.message()));
  }
  const int64_t h = o.hidden_size, ff = o.intermediate_size;
  const int64_t head_dim = h / o.num_heads;
  const int64_t kv = o.num_kv_heads * head_dim;
  nlohmann::json cfg = {
      {"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
      {"hidden_size", h}, {"intermediate_size", ff}, {"num_hidden_layers", o.num_layers},
      {"num_attention_heads", o.num_heads}, {"num_key_value_heads", o.num_kv_heads},
      {"head_dim", head_dim}, {"vocab_size", vocab},
      {"max_position_embeddings", o.max_position_embeddings}, {"rms_norm_eps", 1e-5},
      {"rope_theta", o.rope_theta}, {"rope_scaling", nullptr}, {"hidden_act", "silu"},
      {"attention_bias", false}, {"mlp_bias", false}, {"tie_word_embeddings", false},
      {"bos_token_id", 1}, {"eos_token_id", 2}, {"torch_dtype", "bfloat16"},
      {"initializer_range", o.init_std}, {"quarry_synthetic", {{"seed", o.seed}}}};
  {
    std::ofstream out(fs::path(o.output_dir) / "config.json");
    out << cfg.dump(2) << "\n";
    if (!out) return absl::InternalError("writing config.json");
  }
  SafetensorsWriter::Options wo;
  wo.max_shard_bytes = o.max_shard_bytes;
  QUARRY_ASSIGN_OR_RETURN(auto writer, SafetensorsWriter::Create(o.output_dir, wo));
  SyntheticModelResult result;
  std::vector<uint16_t> buf;
  uint64_t index = 0;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool ones) -> absl::Status {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    if (ones) {
      buf.assign(static_cast<size_t>(n), ToBf16(1.0f));
    } else {
      FillUniform(buf, n, o.init_std, SplitMix64(o.seed * 1000003 + ++index));
    }
    result.parameters += static_cast<uint64_t>(n);
    return writer->Add(name, StDtype::kBF16, std::move(shape),
                       absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(buf.data()),
                                                 buf.size() * 2));
  };
  QUARRY_RETURN_IF_ERROR(add("model.embed_tokens.weight", {vocab, h}, false));
  for (int i = 0; i < o.num_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    QUARRY_RETURN_IF_ERROR(add(p + "input_layernorm.weight", {h}, true));
    QUARRY_RETURN_IF_ERROR(add(p + "self_attn.q_proj.weight", {h, h}, false));
    QUARRY_RETURN_IF_ERROR(add(p + "self_attn.k_proj.weight", {kv, h}, false));
    QUARRY_RETURN_IF_ERROR(add(p + "self_attn.v_proj.weight", {kv, h}, false));
    QUARRY_RETURN_IF_ERROR(add(p + "self_attn.o_proj.weight", {h, h}, false));
    QUARRY_RETURN_IF_ERROR(add(p + "post_attention_layernorm.weight", {h}, true));
    QUARRY_RETURN_IF_ERROR(add(p + "mlp.gate_proj.weight", {ff, h}, false));
    QUARRY_RETURN_IF_ERROR(add(p + "mlp.up_proj.weight", {ff, h}, false));
    QUARRY_RETURN_IF_ERROR(add(p + "mlp.down_proj.weight", {h, ff}, false));
  }
  QUARRY_RETURN_IF_ERROR(add("model.norm.weight", {h}, true));
  QUARRY_RETURN_IF_ERROR(add("lm_head.weight", {vocab, h}, false));
  result.bytes = writer->bytes_written();
  QUARRY_ASSIGN_OR_RETURN(auto files, writer->Finish());
  result.shards = static_cast<int>(files.size()) - (files.size() > 1 ? 1 : 0);
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace quarry
