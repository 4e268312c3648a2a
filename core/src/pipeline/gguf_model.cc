#include "pipeline/gguf_model.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "export/gguf_file.h"
#include "export/gguf_format.h"
#include "export/gguf_tokenizer.h"
#include "quarry/status.h"

namespace quarry::pipeline {
namespace {

namespace fs = std::filesystem;
namespace gguf = exporter::gguf;

// The files of a (possibly split) GGUF: "<prefix>-00001-of-0000N.gguf" -> all N.
absl::StatusOr<std::vector<std::shared_ptr<gguf::GgufFile>>> OpenAll(const std::string& path) {
  std::vector<std::shared_ptr<gguf::GgufFile>> files;
  QUARRY_ASSIGN_OR_RETURN(auto first, gguf::GgufFile::Open(path));
  files.push_back(std::move(first));
  auto count = files[0]->GetUInt("split.count");
  if (!count.ok() || *count <= 1) return files;
  constexpr size_t kSuffix = sizeof("-00001-of-00002.gguf") - 1;
  if (path.size() < kSuffix || !absl::EndsWith(path, absl::StrFormat("-of-%05d.gguf", *count)))
    return absl::InvalidArgumentError(absl::StrCat(
        path, " is split ", *count, " ways (split.count) but is not named "
        "<prefix>-00001-of-", absl::StrFormat("%05d", *count), ".gguf"));
  const std::string prefix = path.substr(0, path.size() - kSuffix);
  for (uint64_t i = 2; i <= *count; ++i) {
    const std::string p = absl::StrFormat("%s-%05d-of-%05d.gguf", prefix, i, *count);
    QUARRY_ASSIGN_OR_RETURN(auto f, gguf::GgufFile::Open(p));
    files.push_back(std::move(f));
  }
  return files;
}

}  // namespace

bool IsGgufPath(const std::string& path) {
  std::error_code ec;
  return absl::EndsWith(path, ".gguf") && fs::is_regular_file(path, ec);
}

absl::StatusOr<GgufModel> OpenGguf(const std::string& path) {
  QUARRY_ASSIGN_OR_RETURN(auto files, OpenAll(path));
  const gguf::GgufFile& f = *files[0];
  GgufModel out;
  QUARRY_ASSIGN_OR_RETURN(out.architecture, f.GetString("general.architecture"));
  const std::string& a = out.architecture;
  if (a != "llama" && a != "qwen2" && a != "qwen3")
    return absl::UnimplementedError(absl::StrCat(path, ": GGUF architecture '", a,
                                                 "' (Quarry reads llama, qwen2 and qwen3)"));
  // Where each tensor lives.
  auto index = std::make_shared<std::map<std::string, std::pair<std::shared_ptr<gguf::GgufFile>,
                                                                const gguf::TensorInfo*>>>();
  for (const auto& file : files)
    for (const auto& t : file->tensors()) (*index)[t.name] = {file, &t};
  auto get_u = [&](const std::string& k) { return f.GetUInt(a + "." + k); };
  nlohmann::json cfg;
  cfg["model_type"] = a;
  QUARRY_ASSIGN_OR_RETURN(uint64_t hidden, get_u("embedding_length"));
  QUARRY_ASSIGN_OR_RETURN(uint64_t layers, get_u("block_count"));
  QUARRY_ASSIGN_OR_RETURN(uint64_t heads, get_u("attention.head_count"));
  QUARRY_ASSIGN_OR_RETURN(uint64_t ff, get_u("feed_forward_length"));
  QUARRY_ASSIGN_OR_RETURN(uint64_t ctx, get_u("context_length"));
  cfg["hidden_size"] = hidden;
  cfg["num_hidden_layers"] = layers;
  cfg["num_attention_heads"] = heads;
  cfg["intermediate_size"] = ff;
  cfg["max_position_embeddings"] = ctx;
  cfg["num_key_value_heads"] = get_u("attention.head_count_kv").value_or(heads);
  cfg["head_dim"] = get_u("attention.key_length").value_or(heads ? hidden / heads : 0);
  auto emb = index->find("token_embd.weight");
  if (emb == index->end()) return absl::InvalidArgumentError(absl::StrCat(path, ": no token_embd.weight"));
  cfg["vocab_size"] = get_u("vocab_size").value_or(static_cast<uint64_t>(emb->second.second->ne[1]));
  cfg["rms_norm_eps"] = f.GetFloat(a + ".attention.layer_norm_rms_epsilon").value_or(1e-6);
  cfg["rope_theta"] = f.GetFloat(a + ".rope.freq_base").value_or(10000.0);
  cfg["tie_word_embeddings"] = index->count("output.weight") == 0;
  cfg["attention_bias"] = index->count("blk.0.attn_q.bias") > 0;
  cfg["torch_dtype"] = "float32";
  if (auto b = f.GetUInt("tokenizer.ggml.bos_token_id"); b.ok()) cfg["bos_token_id"] = *b;
  if (auto e = f.GetUInt("tokenizer.ggml.eos_token_id"); e.ok()) cfg["eos_token_id"] = *e;
  if (auto t = f.GetString("quarry.rope_scaling.type"); t.ok()) {
    cfg["rope_scaling"] = {
        {"rope_type", *t},
        {"factor", f.GetFloat("quarry.rope_scaling.factor").value_or(1.0)},
        {"low_freq_factor", f.GetFloat("quarry.rope_scaling.low_freq_factor").value_or(1.0)},
        {"high_freq_factor", f.GetFloat("quarry.rope_scaling.high_freq_factor").value_or(4.0)},
        {"original_max_position_embeddings",
         f.GetUInt("quarry.rope_scaling.original_max_position_embeddings").value_or(8192)}};
  } else if (index->count("rope_freqs.weight")) {
    return absl::UnimplementedError(absl::StrCat(
        path, ": rope_freqs.weight without quarry.rope_scaling.* keys (a GGUF not written by "
        "Quarry with Llama-3 RoPE scaling): Quarry cannot recover the scaling parameters"));
  }
  QUARRY_ASSIGN_OR_RETURN(ModelConfig mc, ModelConfigFromJson(cfg.dump(), path));
  for (const auto& [name, loc] : *index) {
    if (gguf::BlockElements(loc.second->type) > 1) out.quantized_weights = true;
  }
  const bool permute = a == "llama";
  const int64_t nh = mc.num_heads, nkv = mc.num_kv_heads;
  auto source = [index, permute, nh, nkv, path](const std::string& hf)
      -> absl::StatusOr<std::optional<at::Tensor>> {
    std::optional<std::string> g = gguf::GgufName(hf);
    if (!g) return absl::NotFoundError(absl::StrCat(path, ": no GGUF tensor for ", hf));
    auto it = index->find(*g);
    if (it == index->end()) return absl::NotFoundError(absl::StrCat(path, ": no tensor ", *g, " (", hf, ")"));
    const gguf::TensorInfo& t = *it->second.second;
    const auto data = it->second.first->Data(t);
    QUARRY_ASSIGN_OR_RETURN(at::Tensor x, gguf::Dequantize(t.type, data.data(), data.size(), t.rows(), t.ne[0]));
    it->second.first->Release(t);
    std::vector<int64_t> shape(t.ne.rbegin(), t.ne.rend());
    x = x.reshape(shape);
    if (permute && absl::StrContains(hf, ".self_attn.q_proj.")) x = gguf::UnpermuteRows(x, nh);
    if (permute && absl::StrContains(hf, ".self_attn.k_proj.")) x = gguf::UnpermuteRows(x, nkv);
    return std::optional<at::Tensor>(x);
  };
  auto contains = [index](const std::string& hf) {
    std::optional<std::string> g = gguf::GgufName(hf);
    return g && index->count(*g) > 0;
  };
  QUARRY_ASSIGN_OR_RETURN(out.lm.model, model::CausalLM::OpenFromSource(path, mc, source, contains));
  QUARRY_ASSIGN_OR_RETURN(out.tokenizer, gguf::TokenizerFromGguf(f));
  return out;
}

}  // namespace quarry::pipeline
