#include "export/gguf_export.h"

#include <cmath>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "export/gguf_tokenizer.h"
#include "quarry/status.h"

namespace quarry::exporter {
namespace {

namespace fs = std::filesystem;
using gguf::GgmlType;
using gguf::Value;

Value U16(uint16_t x) {
  Value v;
  v.type = gguf::ValueType::kU16;
  v.u = x;
  return v;
}

// ggml order: ne[0] is the contiguous (last torch) dimension.
std::vector<int64_t> GgmlDims(at::IntArrayRef sizes) {
  return std::vector<int64_t>(sizes.rbegin(), sizes.rend());
}

// convert_hf_to_gguf.py LlamaModel.generate_extra_tensors: Llama-3 RoPE frequency factors.
std::vector<float> Llama3RopeFactors(const ModelConfig& c) {
  const RopeScaling& s = *c.rope_scaling;
  const double low_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const double high_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
  std::vector<float> out;
  for (int i = 0; i < c.head_dim; i += 2) {
    // torch: 1.0 / (base ** (arange(0, dim, 2, float32) / dim)), in float32.
    const float exponent = static_cast<float>(i) / static_cast<float>(c.head_dim);
    const float freq = 1.0f / std::pow(static_cast<float>(c.rope_theta), exponent);
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(static_cast<float>(s.factor));
    } else {
      const double smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      out.push_back(static_cast<float>(1.0 / ((1 - smooth) / s.factor + smooth)));
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<GgufExporter>> GgufExporter::Create(const std::string& out_dir,
                                                                   const ExportOptions& options,
                                                                   model::CausalLM* source,
                                                                   const Config& config,
                                                                   const LayerPlan& plan) {
  std::unique_ptr<GgufExporter> e(new GgufExporter());
  e->out_dir_ = out_dir;
  e->options_ = options;
  e->source_ = source;
  const ModelConfig& c = source->config();
  QUARRY_ASSIGN_OR_RETURN(e->arch_, gguf::Architecture(c));
  // Before any work: every quantized linear needs an exact ggml type.
  for (const LayerPlanEntry& l : plan.layers) {
    if (l.type != "Linear" || l.excluded || !l.quantized()) continue;
    QUARRY_ASSIGN_OR_RETURN(GgmlType t, gguf::ExactType(l));
    e->linear_types_[l.name] = t;
  }
  if (!config.kv_cache_quant_config.empty())
    return absl::InvalidArgumentError(
        "export_format gguf: kv_cache_quant_config is set, but llama.cpp chooses its KV-cache "
        "type at run time (--cache-type-k/-v), not from the file; remove it for a GGUF export");
  if (plan.softmax_quant_spec)
    return absl::InvalidArgumentError(
        "export_format gguf: softmax_quant_spec has no GGUF counterpart; remove it");
  if (!options.real_quantized)
    e->warnings_.push_back("export_format gguf: --fake-quantized is ignored; GGUF holds the "
                           "quantized blocks themselves (the values are the fake-quantized ones)");
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", out_dir, ": ", ec.message()));
  QUARRY_ASSIGN_OR_RETURN(auto w, gguf::GgufWriter::Create(out_dir + "/model.gguf"));
  const std::string a = e->arch_;
  w->Set("general.architecture", Value::Str(a));
  w->Set("general.type", Value::Str("model"));
  w->Set("general.name", Value::Str(fs::path(source->dir()).filename().string()));
  w->Set("general.quantization_version", Value::U32(2));  // GGML_QNT_VERSION
  w->Set("general.file_type", Value::U32(0));              // set in Finish
  w->Set(a + ".vocab_size", Value::U32(c.vocab_size));
  w->Set(a + ".context_length", Value::U32(c.max_position_embeddings));
  w->Set(a + ".embedding_length", Value::U32(c.hidden_size));
  w->Set(a + ".block_count", Value::U32(c.num_layers));
  w->Set(a + ".feed_forward_length", Value::U32(c.intermediate_size));
  w->Set(a + ".attention.head_count", Value::U32(c.num_heads));
  w->Set(a + ".attention.head_count_kv", Value::U32(c.num_kv_heads));
  w->Set(a + ".attention.key_length", Value::U32(c.head_dim));
  w->Set(a + ".attention.value_length", Value::U32(c.head_dim));
  w->Set(a + ".rope.dimension_count", Value::U32(c.head_dim));
  w->Set(a + ".rope.freq_base", Value::F32(static_cast<float>(c.rope_theta)));
  w->Set(a + ".attention.layer_norm_rms_epsilon", Value::F32(static_cast<float>(c.rms_norm_eps)));
  QUARRY_RETURN_IF_ERROR(gguf::AddTokenizerMetadata(source->dir(), c.vocab_size, w.get()));
  e->splits_.push_back(std::move(w));
  if (c.rope_scaling) {
    if (c.rope_scaling->type != "llama3")
      return absl::UnimplementedError(absl::StrCat("export_format gguf: rope_scaling type ",
                                                   c.rope_scaling->type));
    const RopeScaling& s = *c.rope_scaling;
    gguf::GgufWriter* w0 = e->splits_[0].get();
    w0->Set("quarry.rope_scaling.type", Value::Str(s.type));
    w0->Set("quarry.rope_scaling.factor", Value::F32(static_cast<float>(s.factor)));
    w0->Set("quarry.rope_scaling.low_freq_factor", Value::F32(static_cast<float>(s.low_freq_factor)));
    w0->Set("quarry.rope_scaling.high_freq_factor", Value::F32(static_cast<float>(s.high_freq_factor)));
    w0->Set("quarry.rope_scaling.original_max_position_embeddings",
            Value::U32(s.original_max_position_embeddings));
    const std::vector<float> f = Llama3RopeFactors(c);
    at::Tensor t = at::from_blob(const_cast<float*>(f.data()), {static_cast<int64_t>(f.size())},
                                 at::kFloat).clone();
    QUARRY_RETURN_IF_ERROR(e->splits_[0]->AddTensor("rope_freqs.weight", {t.size(0)}, GgmlType::kF32,
                                                    gguf::EncodeFloat(GgmlType::kF32, t)));
    ++e->tensors_;
  }
  return e;
}

at::Tensor GgufExporter::Permuted(const std::string& hf, const at::Tensor& t) const {
  if (arch_ != "llama") return t;
  if (absl::StrContains(hf, ".self_attn.q_proj."))
    return gguf::PermuteRows(t, source_->config().num_heads);
  if (absl::StrContains(hf, ".self_attn.k_proj."))
    return gguf::PermuteRows(t, source_->config().num_kv_heads);
  return t;
}

GgmlType GgufExporter::SourceFloatType(const std::string& hf) const {
  auto info = source_->weights().Info(hf);
  if (!info.ok()) return GgmlType::kF32;
  switch ((*info)->dtype) {
    case StDtype::kBF16: return GgmlType::kBF16;
    case StDtype::kF16: return GgmlType::kF16;
    default: return GgmlType::kF32;
  }
}

absl::Status GgufExporter::Write(const std::string& hf, const std::vector<int64_t>& ne,
                                 GgmlType type, const std::string& bytes) {
  std::optional<std::string> name = gguf::GgufName(hf);
  if (!name)
    return absl::UnimplementedError(absl::StrCat("export_format gguf: ", hf,
                                                 " has no llama.cpp tensor name"));
  const uint64_t limit = options_.max_shard_bytes;
  if (limit > 0 && split_bytes_ > 0 && split_bytes_ + bytes.size() > limit) {
    QUARRY_ASSIGN_OR_RETURN(auto w, gguf::GgufWriter::Create(
                                        absl::StrCat(out_dir_, "/model.gguf.split", splits_.size())));
    splits_.push_back(std::move(w));
    split_bytes_ = 0;
  }
  QUARRY_RETURN_IF_ERROR(splits_.back()->AddTensor(*name, ne, type, bytes));
  split_bytes_ += bytes.size();
  ++tensors_;
  ++type_counts_[gguf::Name(type)];
  return absl::OkStatus();
}

absl::Status GgufExporter::WriteFloat(const std::string& hf, const at::Tensor& value, bool changed) {
  // 1-D tensors in F32 as convert_hf_to_gguf.py writes them (lossless from bf16/f16); tensors
  // an algorithm changed in F32 (the values the job evaluated); the rest as the checkpoint.
  const GgmlType t = value.dim() <= 1 || changed ? GgmlType::kF32 : SourceFloatType(hf);
  at::Tensor v = Permuted(hf, value.to(at::kFloat).contiguous());
  return Write(hf, GgmlDims(v.sizes()), t, gguf::EncodeFloat(t, v));
}

absl::Status GgufExporter::AddOriginal(const std::string& name) {
  QUARRY_ASSIGN_OR_RETURN(at::Tensor t, source_->LoadFloat(name));
  return WriteFloat(name, t, false);
}

absl::Status GgufExporter::AddParam(const std::string& name, const at::Tensor& value, bool changed) {
  return WriteFloat(name, value, changed);
}

absl::Status GgufExporter::AddLinear(const model::QLinear& l, const LayerPlanEntry& entry) {
  (void)entry;
  const std::string wname = l.name + ".weight";
  if (!l.weight_q) {
    QUARRY_RETURN_IF_ERROR(WriteFloat(wname, l.float_weight, l.float_changed));
  } else {
    auto it = linear_types_.find(l.name);
    if (it == linear_types_.end() || !l.weight_q->params())
      return absl::InternalError(absl::StrCat(l.name, ": quantized weight without a GGUF type or "
                                              "frozen parameters"));
    const QuantParams& p = *l.weight_q->params();
    at::Tensor w = Permuted(wname, l.weight.to(at::kFloat).contiguous());
    at::Tensor scale = Permuted(wname, p.scale.dim() == 2 ? p.scale : p.scale.reshape({w.size(0), -1}));
    at::Tensor zp;
    if (it->second == GgmlType::kQ4_1) {
      if (!p.zero_point.defined())
        return absl::InternalError(absl::StrCat(l.name, ": uint4 weight without zero points"));
      zp = Permuted(wname, p.zero_point.to(at::kFloat).reshape({w.size(0), -1}));
    }
    QUARRY_ASSIGN_OR_RETURN(std::string bytes,
                            gguf::EncodeBlocks(it->second, wname, w, scale, zp, &stats_));
    QUARRY_RETURN_IF_ERROR(Write(wname, GgmlDims(w.sizes()), it->second, bytes));
  }
  if (l.float_bias.defined()) QUARRY_RETURN_IF_ERROR(WriteFloat(l.name + ".bias", l.float_bias, true));
  QUARRY_RETURN_IF_ERROR(AddQuantizerParams(l.name, "input", l.input_q.get()));
  return AddQuantizerParams(l.name, "output", l.output_q.get());
}

absl::Status GgufExporter::AddQuantizerParams(const std::string& module, const std::string& what,
                                              const TensorQuantizer* q) {
  if (q == nullptr) return absl::OkStatus();
  // Create() refused plans with activation quantizers.
  return absl::InternalError(absl::StrCat(module, ": ", what, " quantizer in a GGUF export"));
}

std::vector<std::string> GgufExporter::warnings() const {
  std::vector<std::string> w = warnings_;
  if (stats_.changed > 0)
    w.push_back(absl::StrFormat(
        "export_format gguf: %d of %d quantized weights differ from the job's in the file "
        "(Q4_1 stores the minimum -scale * zero_point in float16), max |change| %.3g",
        stats_.changed, stats_.weights, stats_.max_abs_change));
  return w;
}

uint64_t GgufExporter::bytes_written() const {
  uint64_t n = 0;
  for (const auto& s : splits_) n += s->bytes_written();
  return n;
}

absl::StatusOr<std::vector<std::string>> GgufExporter::Finish() {
  // general.file_type: the type of most quantized linears, else the checkpoint's float type.
  std::map<GgmlType, int> counts;
  for (const auto& [name, t] : linear_types_) ++counts[t];
  GgmlType main = SourceFloatType(source_->config().EmbedTokensName());
  int best = 0;
  for (const auto& [t, n] : counts)
    if (n > best) { best = n; main = t; }
  splits_[0]->Set("general.file_type", Value::U32(gguf::FileTypeFor(main)));
  std::vector<std::string> files;
  const size_t n = splits_.size();
  for (size_t i = 0; i < n; ++i) {
    std::string name = "model.gguf";
    if (n > 1) {
      // llama.cpp's gguf-split: <prefix>-%05d-of-%05d.gguf; split.* keys in every split.
      name = absl::StrFormat("model-%05d-of-%05d.gguf", i + 1, n);
      splits_[i]->Set("split.no", U16(static_cast<uint16_t>(i)));
      splits_[i]->Set("split.count", U16(static_cast<uint16_t>(n)));
      splits_[i]->Set("split.tensors.count", Value::I32(tensors_));
    }
    QUARRY_RETURN_IF_ERROR(splits_[i]->Finish(out_dir_ + "/" + name).status());
    files.push_back(name);
  }
  return files;
}

}  // namespace quarry::exporter
