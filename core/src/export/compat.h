// Core-internal: the runtime verdicts of quarry/runtime_compat.h, one function per runtime, and
// the rule ids they report (the tests name them). Pure functions; thread-safe.
//
// Rule ids (each names the breaking layer; the source of each rule is cited in compat.cc):
//   export.awq / export.gptq      the format's own plan check refuses the plan (every runtime)
//   vllm.output_tensors           a quantized output outside the KV-cache group
//   vllm.bias                     a quantized bias
//   vllm.kv_cache                 a KV-cache spec other than fp8_e4m3 per_tensor (single stage)
//   vllm.kv_cache_config          kv_cache_group without matching layer_quant_config entries, or
//                                 entries with different / missing output_tensors
//   vllm.two_stage                a two-stage (list) spec other than NVFP4
//   vllm.dtype                    an element dtype no vLLM Quark scheme has a kernel for
//   vllm.no_scheme                a combination no scheme matches (int8/fp8 weight-only, ...)
//   vllm.int8_asymmetric_weight   int8 weights with symmetric not true
//   vllm.int4_per_channel         int4/uint4 weights that are not per_group with group_size > 0
//   vllm.int_weight_activation    int weights with an input spec no scheme pairs them with
//   vllm.dynamic_static           dynamic weights, or an input whose dynamic/static-ness does
//                                 not fit its qscheme (static: per_tensor; dynamic int8: token)
//   vllm.softmax                  a softmax (prob) spec other than fp8_e4m3 per_tensor
//   vllm.fused_shards             q/k/v or gate/up resolving to different configs or exclusion
//   vllm.layer_type_quant_config  a layer_type_quant_config rule vLLM never matches
//   vllm.lm_head                  a quantized lm_head
//   llama.cpp.format              an export that is not GGUF
//   llama.cpp.architecture        a family llama.cpp has no architecture for (OPT)
//   llama.cpp.type                a weight spec with no exact ggml type
//   transformers.gguf_architecture  (the same family rule for transformers' GGUF loader)
#pragma once

#include <vector>

#include "quarry/runtime_compat.h"

namespace quarry::exporter::compat {

using Breach = RuntimeBreach;

std::vector<RuntimeVerdict> Verdicts(const LayerPlan& plan, const Config& config,
                                     ExportFormat format, const ModelConfig* model);

RuntimeVerdict VllmVerdict(const LayerPlan& plan, const Config& config, ExportFormat format,
                           const ModelConfig* model);
RuntimeVerdict LlamaCppVerdict(const LayerPlan& plan, const Config& config, ExportFormat format,
                               const ModelConfig* model);
RuntimeVerdict TransformersVerdict(const LayerPlan& plan, const Config& config,
                                   ExportFormat format, const ModelConfig* model);

}  // namespace quarry::exporter::compat
