// Core-internal: the GGUF exporter (ExportFormat::kGguf): one llama.cpp GGUF v3 file,
// <out>/model.gguf, or model-0000N-of-0000M.gguf splits (llama.cpp's gguf-split layout: every
// split a complete GGUF, split.no / split.count / split.tensors.count in each, the model's
// metadata in the first) when the tensors exceed ExportOptions::max_shard_bytes.
//
// What the file holds (llama.cpp's convert_hf_to_gguf.py conventions):
//   general.architecture / name / file_type / quantization_version, <arch>.context_length,
//   embedding_length, block_count, feed_forward_length, attention.head_count(_kv),
//   attention.key_length / value_length, rope.dimension_count, rope.freq_base,
//   attention.layer_norm_rms_epsilon, vocab_size; Llama-3 RoPE scaling as the rope_freqs
//   tensor (LlamaModel.generate_extra_tensors) plus quarry.rope_scaling.* keys for Quarry's
//   reader; the tokenizer (gguf_tokenizer.h).
//   Tensors renamed (gguf_format.h GgufName), q/k rows permuted for the "llama" architecture,
//   quantized linears as the exact ggml type of their spec (gguf_format.h ExactType; plans with
//   no exact type fail in Create, before any layer runs), everything else float.
// warnings() ends with a line counting the quantized weights the file holds with a value
// different from the job's, and the largest change, when there are any (none for jobs that ran
// with AdaptConfigToFormat's specs; a spec whose scales are not float16 would).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "export/exporter.h"
#include "export/gguf_file.h"
#include "export/gguf_format.h"

namespace quarry::exporter {

class GgufExporter : public Exporter {
 public:
  static absl::StatusOr<std::unique_ptr<GgufExporter>> Create(const std::string& out_dir,
                                                              const ExportOptions& options,
                                                              model::CausalLM* source,
                                                              const Config& config,
                                                              const LayerPlan& plan);
  absl::Status AddOriginal(const std::string& name) override;
  absl::Status AddParam(const std::string& name, const at::Tensor& value,
                        bool changed = false) override;
  absl::Status AddLinear(const model::QLinear& linear, const LayerPlanEntry& entry) override;
  absl::Status AddQuantizerParams(const std::string& module, const std::string& what,
                                  const TensorQuantizer* q) override;
  void UntieWordEmbeddings() override {}
  absl::StatusOr<std::vector<std::string>> Finish() override;
  std::vector<std::string> warnings() const override;
  uint64_t bytes_written() const override;

  // Tensors written per ggml type name, and the exactness figures (for the report / tests).
  const std::map<std::string, int>& type_counts() const { return type_counts_; }
  const gguf::EncodeStats& encode_stats() const { return stats_; }

 private:
  GgufExporter() = default;
  // Writes a tensor under its llama.cpp name into the current split.
  absl::Status Write(const std::string& hf_name, const std::vector<int64_t>& shape,
                     gguf::GgmlType type, const std::string& bytes);
  absl::Status WriteFloat(const std::string& hf_name, const at::Tensor& value, bool changed);
  // Rows of q/k reordered for llama.cpp's RoPE (identity for other tensors / architectures).
  at::Tensor Permuted(const std::string& hf_name, const at::Tensor& t) const;
  gguf::GgmlType SourceFloatType(const std::string& hf_name) const;

  std::string out_dir_;
  ExportOptions options_;
  model::CausalLM* source_ = nullptr;
  std::string arch_;
  std::map<std::string, gguf::GgmlType> linear_types_;  // quantized linear -> its exact type
  std::vector<std::unique_ptr<gguf::GgufWriter>> splits_;
  std::vector<std::string> split_paths_;
  uint64_t split_bytes_ = 0;
  int tensors_ = 0;
  std::map<std::string, int> type_counts_;
  gguf::EncodeStats stats_;
  std::vector<std::string> warnings_;
};

}  // namespace quarry::exporter
