// Would vLLM, llama.cpp and Hugging Face transformers load the artifact a plan exports? A verdict
// per runtime, decided from the resolved plan, the config and the export format before any work
// (the rules are those of the runtimes' loaders; src/export/compat.cc cites the file and function
// of each). Pure functions over values, no I/O; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quarry/layer_plan.h"
#include "quarry/model_config.h"
#include "quarry/pipeline.h"
#include "quarry/quant_config.h"

namespace quarry {

// One rule of a runtime's loader that the export breaks (or, in RuntimeVerdict::notes, a rule
// that changes how it loads without stopping it).
struct RuntimeBreach {
  std::string rule;     // stable id, "<runtime>.<rule>": "vllm.output_tensors", "llama.cpp.type"
  std::string layer;    // the first module that breaks it, in model order ("model.layers.0.mlp.
                        // down_proj"); a config key or pattern for config-level rules; "(model)"
                        // for rules about the whole artifact
  std::string message;  // what breaks and what the loader does with it
  int more_layers = 0;  // further modules breaking the same rule with the same message
  bool operator==(const RuntimeBreach&) const = default;
};

struct RuntimeVerdict {
  std::string runtime;  // "vllm", "llama.cpp" or "transformers"
  bool loads = false;   // true iff breaches is empty
  // How it loads: vLLM's scheme ("QuarkW8A8Fp8", "QuarkW4A16Int4", "QuarkOCP_MX", "AWQ
  // (awq_marlin)", "GPTQ-Marlin", ...; several joined by " + " when layers differ), llama.cpp's
  // "GGUF Q4_0", transformers' quantizer and the package it needs. Empty when it does not load.
  std::string how;
  std::vector<RuntimeBreach> breaches;
  std::vector<RuntimeBreach> notes;  // kernel choices, required packages, unchecked rules
  bool operator==(const RuntimeVerdict&) const = default;
};

// The runtimes, in the order RuntimeVerdicts returns them.
const std::vector<std::string>& RuntimeNames();  // {"vllm", "llama.cpp", "transformers"}

// The verdicts for the artifact that `format` writes from `plan` (resolved from `config` over the
// model's modules). `model`: the model's config.json (family, for llama.cpp's architecture);
// nullptr when unknown, in which case the architecture rule is reported as a note.
std::vector<RuntimeVerdict> RuntimeVerdicts(const LayerPlan& plan, const Config& config,
                                            ExportFormat format, const ModelConfig* model);

// The modules of one representative decoder layer (plus lm_head) of a family, with shapes that
// every group size divides (4096 x 4096 attention, 4096 x 11008 MLP): a plan over these checks
// the rules that need no real shapes (`quarry config validate --target` without --model).
std::vector<ModuleInfo> RepresentativeModules(ModelFamily family = ModelFamily::kLlama);

// report.json's "runtimes" array and back, and a plain-text rendering (one line per verdict,
// then one indented line per breach and note).
std::string RuntimeVerdictsToJson(const std::vector<RuntimeVerdict>& verdicts, int indent = 2);
absl::StatusOr<std::vector<RuntimeVerdict>> RuntimeVerdictsFromJson(const std::string& json);
std::string FormatRuntimeVerdicts(const std::vector<RuntimeVerdict>& verdicts);

}  // namespace quarry
