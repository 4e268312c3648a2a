// Named presets: the quantization schemes Quark's LLM PTQ example (LLMTemplate) accepts, each a
// function returning a Config built from the same helper specs Quark uses, with the Llama-family
// template around it (exclude ["lm_head"], KV layers "*k_proj"/"*v_proj", q layer "*q_proj").
//
// A preset name is `SCHEME[+kv_fp8][+attn_fp8]`:
//   SCHEME   int4_wo_32 | int4_wo_64 | int4_wo_128 | int4_wo_per_channel | uint4_wo_32 |
//            uint4_wo_64 | uint4_wo_128 | uint4_wo_per_channel | int8 | fp8 | ptpc_fp8 | mxfp4 |
//            mxfp4_weight_only | mxfp6_e3m2 | mxfp6_e2m3 | mx6 | bfp16 | int4_fp8 | nvfp4
//   +kv_fp8  KV cache in fp8 (Quark's kv_cache_scheme "fp8"): k_proj / v_proj outputs quantized
//            fp8_e4m3 per tensor, static; kv_cache_group set for the export.
//   +attn_fp8 attention softmax output and q_proj output in fp8 (Quark's attention_scheme "fp8").
// Stateless; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "quarry/quant_config.h"

namespace quarry {

struct PresetOptions {
  // Layers excluded from quantization. Default: the template's ["lm_head"].
  std::optional<std::vector<std::string>> exclude;
  // Lower bound of merged KV-cache scales (Quark's min_kv_scale). Default 0.
  float min_kv_scale = 0.0f;
  // Algorithms appended to algo_config (e.g. a GPTQConfig). Default none.
  std::vector<AlgoConfig> algorithms;
};

absl::StatusOr<Config> PresetConfig(absl::string_view name, const PresetOptions& options = {});

struct PresetInfo {
  std::string name;
  std::string description;
};
// Every scheme name with a one-line description (modifiers are documented above).
const std::vector<PresetInfo>& ListPresets();

}  // namespace quarry
