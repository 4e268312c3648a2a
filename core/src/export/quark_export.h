// Core-internal: writes a quantized model in Quark's Hugging Face format (what vLLM loads):
//   config.json          the original config + quantization_config (Quark's dict + "export":
//                        kv_cache_group, min_kv_scale, pack_method, weight_format,
//                        weight_merge_groups), keys sorted as transformers writes them
//   model.safetensors    per quantized linear: weight (packed codes for real_quantized, float
//                        fake-quantized values otherwise), weight_scale, weight_zero_point (int
//                        dtypes), input_scale / input_zero_point and output_scale /
//                        output_zero_point for static activation quantizers (k_proj/v_proj
//                        output_scale = the KV cache), bias; everything else copied as is
//   tokenizer files      copied
// Layouts follow Quark's exporter (see src/export/quark_export.cc for each dtype/qscheme).
// With ExportOptions::format kAwq the quantized linears are written in AutoAWQ's GEMM layout
// instead (<name>.qweight / qzeros / scales, quantization_config quant_method "awq", torch_dtype
// float16; src/export/awq_format.h), and Create() refuses plans that layout cannot hold.
// With kGptq likewise in GPTQ v1's layout (<name>.qweight / qzeros / scales / g_idx,
// quantization_config quant_method "gptq"; src/export/gptq_format.h), torch_dtype kept.
// Streaming: tensors are appended as each layer finishes, so memory stays bounded.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "export/awq_format.h"
#include "export/exporter.h"
#include "export/gptq_format.h"
#include "model/transformer.h"
#include "quarry/layer_plan.h"
#include "quarry/pipeline.h"
#include "quarry/safetensors.h"

namespace quarry::exporter {

class QuarkExporter : public Exporter {
 public:
  static absl::StatusOr<std::unique_ptr<QuarkExporter>> Create(const std::string& out_dir,
                                                                const ExportOptions& options,
                                                                model::CausalLM* source,
                                                                const Config& config,
                                                                const LayerPlan& plan);
  // Copies a tensor byte for byte (and dtype) from the source model.
  absl::Status AddOriginal(const std::string& name) override;
  // A non-quantized float parameter, stored in the source model's dtype for that tensor.
  // `changed`: an algorithm edited it (a norm that took a scale), else the checkpoint's bytes.
  absl::Status AddParam(const std::string& name, const at::Tensor& value,
                        bool changed = false) override;
  // A linear with its frozen quantizers (QLinear::quant_input is the weight the weight
  // quantizer saw; its codes are what real_quantized stores).
  absl::Status AddLinear(const model::QLinear& linear, const LayerPlanEntry& entry) override;
  // Static activation quantizer parameters: <module>.<what>_scale and, for integer dtypes,
  // <module>.<what>_zero_point (what: input, output, prob_output). Nothing for dynamic ones.
  absl::Status AddQuantizerParams(const std::string& module, const std::string& what,
                                  const TensorQuantizer* q) override;
  // The exported lm_head is no longer the embedding (quantized): write tie_word_embeddings false.
  void UntieWordEmbeddings() override { untie_ = true; }
  // Writes the safetensors shards, config.json and tokenizer files; returns relative file names.
  absl::StatusOr<std::vector<std::string>> Finish() override;
  // Warnings so far; with kAwq / kGptq the last one sums up the float16 scale rounding of the
  // linears added so far (call it after the last AddLinear).
  std::vector<std::string> warnings() const override;
  uint64_t bytes_written() const override { return writer_ ? writer_->bytes_written() : 0; }
  // Every byte goes through writer_, so the journal is a tee of it.
  bool supports_journal() const override { return true; }
  void SetJournal(SafetensorsWriter* journal) override { writer_->SetTee(journal); }
  absl::Status ReplayJournal(const SafetensorsFile& journal) override;

 private:
  QuarkExporter() = default;
  absl::Status AddTensor(const std::string& name, const at::Tensor& t,
                         std::optional<StDtype> as = std::nullopt);
  // A float tensor an algorithm changed, in float32 (so the export is the model the job
  // evaluated).
  absl::Status AddChanged(const std::string& name, const at::Tensor& value);
  // The weight of a quantized linear in AWQ's layout (qweight, qzeros, scales).
  absl::Status AddAwqWeight(const model::QLinear& linear);
  // The weight of a quantized linear in GPTQ's layout (qweight, qzeros, scales, g_idx).
  absl::Status AddGptqWeight(const model::QLinear& linear);
  std::string out_dir_;
  ExportOptions options_;
  model::CausalLM* source_ = nullptr;
  Config config_;
  std::unique_ptr<SafetensorsWriter> writer_;
  std::vector<std::string> excluded_;  // excluded Linear module names (Quark's exported exclude)
  std::vector<std::string> warnings_;
  bool warned_fake_ = false;
  bool untie_ = false;
  std::optional<awq::PlanInfo> awq_;     // set when options_.format == kAwq
  std::optional<gptq::PlanInfo> gptq_;   // set when options_.format == kGptq
  awq::ScaleRounding awq_rounding_;      // float16 scale rounding over the linears written (AWQ
                                         // or GPTQ)
};

}  // namespace quarry::exporter
