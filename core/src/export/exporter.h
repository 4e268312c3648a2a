// Core-internal: the one interface every export format implements. The pipeline streams the
// model into an Exporter as each layer finishes (embeddings first, then decoder layer 0..N-1,
// then the head), and calls Finish() once. Formats:
//   ExportFormat::kQuark, kAwq, kGptq  QuarkExporter (quark_export.h): Hugging Face safetensors
//                                      with Quark's / AutoAWQ's / GPTQ's layouts
//   ExportFormat::kGguf                GgufExporter (gguf_export.h): one llama.cpp GGUF v3 file
// Create() checks the plan against the format before any layer runs: a plan the format cannot
// hold is INVALID_ARGUMENT naming the layer, its spec and the reason.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/transformer.h"
#include "quarry/layer_plan.h"
#include "quarry/pipeline.h"
#include "quarry/safetensors.h"

namespace quarry::exporter {

class Exporter {
 public:
  virtual ~Exporter() = default;
  // A tensor of the source checkpoint, unchanged (embeddings, positions).
  virtual absl::Status AddOriginal(const std::string& name) = 0;
  // A non-quantized float parameter (a norm, ...). `changed`: an algorithm edited it.
  virtual absl::Status AddParam(const std::string& name, const at::Tensor& value,
                                bool changed = false) = 0;
  // A linear with its frozen quantizers (QLinear::quant_input is the weight the weight
  // quantizer saw; QLinear::weight its fake-quantized value).
  virtual absl::Status AddLinear(const model::QLinear& linear, const LayerPlanEntry& entry) = 0;
  // Static activation quantizer parameters of `module` (what: input, output, prob_output).
  virtual absl::Status AddQuantizerParams(const std::string& module, const std::string& what,
                                          const TensorQuantizer* q) = 0;
  // The exported lm_head is no longer the embedding (it was quantized).
  virtual void UntieWordEmbeddings() = 0;
  // Writes what remains; returns the files written, relative to the output directory.
  virtual absl::StatusOr<std::vector<std::string>> Finish() = 0;
  // Warnings so far (call after the last AddLinear for the format's summary lines).
  virtual std::vector<std::string> warnings() const = 0;
  virtual uint64_t bytes_written() const = 0;

  // Layer checkpoints of resumable jobs (pipeline/layer_checkpoint.h). While a journal is set,
  // every tensor the exporter writes is also added to it, in order; ReplayJournal writes a
  // journal's tensors again, in the order they were written, exactly as the layer that wrote them
  // did, so a resumed job's files are byte-identical to an uninterrupted run's. A format that
  // cannot journal answers false to supports_journal() (its jobs keep no checkpoints).
  virtual bool supports_journal() const { return false; }
  virtual void SetJournal(SafetensorsWriter* journal) {}
  virtual absl::Status ReplayJournal(const SafetensorsFile& journal) {
    return absl::UnimplementedError("this export format keeps no layer checkpoints");
  }
};

// The exporter for options.format. `source` outlives the exporter.
absl::StatusOr<std::unique_ptr<Exporter>> CreateExporter(const std::string& out_dir,
                                                         const ExportOptions& options,
                                                         model::CausalLM* source,
                                                         const Config& config,
                                                         const LayerPlan& plan);

// What the format needs the quantizer to do differently, applied to the job's config before
// the plan is resolved: kGguf stores block scales in float16, so integer weight specs with float
// scales get scale_type float16 (the weights the job evaluates are then exactly the GGUF's).
// Returns one line per change for the job's log; the config is unchanged for other formats.
std::vector<std::string> AdaptConfigToFormat(ExportFormat format, Config* config);

}  // namespace quarry::exporter
