#include "quarry/presets.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "quarry/spec_helpers.h"
#include "quarry/status.h"

namespace quarry {
namespace {

// The Llama-family template of Quark's LLMTemplate (llama, mistral, qwen2, opt, ... share it).
const std::vector<std::string> kKvLayers = {"*k_proj", "*v_proj"};
const char* const kQLayer = "*q_proj";
const std::vector<std::string> kExclude = {"lm_head"};

QuantizationSpec Must(const absl::StatusOr<QuantizationSpec>& s) { return *s; }  // fixed args

QuantizationSpec Int4Group(int g) {
  Int4PerGroupSpec h;
  h.ch_axis = -1;
  h.is_dynamic = false;
  h.scale_type = "float";
  h.group_size = g;
  return Must(h.ToQuantizationSpec());
}
QuantizationSpec Uint4Group(int g) {
  Uint4PerGroupSpec h;
  h.ch_axis = -1;
  h.is_dynamic = false;
  h.scale_type = "float";
  h.group_size = g;
  return Must(h.ToQuantizationSpec());
}
QuantizationSpec Fp8PerTensor(bool dynamic, std::optional<std::string> scale_type) {
  FP8E4M3PerTensorSpec h;
  h.observer_method = "min_max";
  h.scale_type = std::move(scale_type);
  h.is_dynamic = dynamic;
  return Must(h.ToQuantizationSpec());
}
QuantizationSpec Fp8PerChannel(int axis, bool dynamic) {
  FP8E4M3PerChannelSpec h;
  h.symmetric = true;
  h.scale_type = "float";
  h.round_method = "half_even";
  h.ch_axis = axis;
  h.is_dynamic = dynamic;
  return Must(h.ToQuantizationSpec());
}
template <typename MxHelper>
QuantizationSpec Mx(bool dynamic) {
  MxHelper h;
  h.is_dynamic = dynamic;
  h.ch_axis = -1;
  return Must(h.ToQuantizationSpec());
}

struct Scheme {
  const char* name;
  const char* description;
  QuantizationConfig (*make)();
};

QuantizationConfig WeightOnly(QuantizationSpec w) {
  QuantizationConfig c;
  c.weight = TensorSpecs(std::move(w));
  return c;
}
QuantizationConfig WeightAndInput(QuantizationSpec w, QuantizationSpec in) {
  QuantizationConfig c;
  c.weight = TensorSpecs(std::move(w));
  c.input_tensors = TensorSpecs(std::move(in));
  return c;
}

const Scheme kSchemes[] = {
    {"int4_wo_32", "weights int4 per group of 32, symmetric (W4A16)",
     [] { return WeightOnly(Int4Group(32)); }},
    {"int4_wo_64", "weights int4 per group of 64, symmetric (W4A16)",
     [] { return WeightOnly(Int4Group(64)); }},
    {"int4_wo_128", "weights int4 per group of 128, symmetric (W4A16)",
     [] { return WeightOnly(Int4Group(128)); }},
    {"int4_wo_per_channel", "weights int4 per output channel, symmetric",
     [] {
       Int4PerChannelSpec h;
       h.symmetric = true;
       h.scale_type = "float";
       h.round_method = "half_even";
       h.ch_axis = 0;
       h.is_dynamic = false;
       return WeightOnly(Must(h.ToQuantizationSpec()));
     }},
    {"uint4_wo_32", "weights uint4 per group of 32, asymmetric (zero points)",
     [] { return WeightOnly(Uint4Group(32)); }},
    {"uint4_wo_64", "weights uint4 per group of 64, asymmetric",
     [] { return WeightOnly(Uint4Group(64)); }},
    {"uint4_wo_128", "weights uint4 per group of 128, asymmetric",
     [] { return WeightOnly(Uint4Group(128)); }},
    {"uint4_wo_per_channel", "weights uint4 per output channel, asymmetric",
     [] {
       Uint4PerChannelSpec h;
       h.symmetric = false;
       h.scale_type = "float";
       h.round_method = "half_even";
       h.ch_axis = 0;
       h.is_dynamic = false;
       return WeightOnly(Must(h.ToQuantizationSpec()));
     }},
    {"int8", "weights and inputs int8 per tensor, symmetric, static (W8A8)",
     [] {
       Int8PerTensorSpec h;
       h.observer_method = "min_max";
       h.symmetric = true;
       h.scale_type = "float";
       h.round_method = "half_even";
       h.is_dynamic = false;
       QuantizationSpec s = Must(h.ToQuantizationSpec());
       return WeightAndInput(s, s);
     }},
    {"fp8", "weights and inputs fp8_e4m3 per tensor, static (W8A8 FP8)",
     [] {
       QuantizationSpec s = Fp8PerTensor(false, "float");
       return WeightAndInput(s, s);
     }},
    {"ptpc_fp8", "fp8_e4m3 weights per channel, inputs per token (dynamic)",
     [] { return WeightAndInput(Fp8PerChannel(0, false), Fp8PerChannel(1, true)); }},
    {"mxfp4", "OCP MXFP4 weights (static) and inputs (dynamic)",
     [] { return WeightAndInput(Mx<OCP_MXFP4Spec>(false), Mx<OCP_MXFP4Spec>(true)); }},
    {"mxfp4_weight_only", "OCP MXFP4 weights only",
     [] { return WeightOnly(Mx<OCP_MXFP4Spec>(false)); }},
    {"mxfp6_e3m2", "OCP MXFP6 e3m2 weights (static) and inputs (dynamic)",
     [] { return WeightAndInput(Mx<OCP_MXFP6E3M2Spec>(false), Mx<OCP_MXFP6E3M2Spec>(true)); }},
    {"mxfp6_e2m3", "OCP MXFP6 e2m3 weights (static) and inputs (dynamic)",
     [] { return WeightAndInput(Mx<OCP_MXFP6E2M3Spec>(false), Mx<OCP_MXFP6E2M3Spec>(true)); }},
    {"mx6", "MX6 weights and inputs (block 32)",
     [] {
       MX6Spec h;
       h.ch_axis = -1;
       h.block_size = 32;
       QuantizationSpec s = Must(h.ToQuantizationSpec());
       return WeightAndInput(s, s);
     }},
    {"bfp16", "BFP16 weights and inputs (block 8)",
     [] {
       BFP16Spec h;
       h.ch_axis = -1;
       QuantizationSpec s = Must(h.ToQuantizationSpec());
       return WeightAndInput(s, s);
     }},
    {"int4_fp8", "weights fp8 per tensor then int4 per channel (progressive); inputs fp8 dynamic",
     [] {
       Int4PerChannelSpec second;
       second.symmetric = true;
       second.scale_type = "float32";
       second.round_method = "half_even";
       second.ch_axis = 0;
       second.is_dynamic = false;
       ProgressiveSpec p{FP8E4M3PerTensorSpec{"min_max", "float32", false}, second};
       QuantizationConfig c;
       c.weight = TensorSpecs(*p.ToQuantizationSpec());
       c.input_tensors = TensorSpecs(Fp8PerTensor(true, "float32"));
       return c;
     }},
    {"nvfp4", "fp4 per group of 16 with fp8_e4m3 per-tensor scales of the scales",
     [] {
       FP4PerGroupSpec first;
       first.ch_axis = -1;
       first.group_size = 16;
       first.is_dynamic = false;
       ScaleQuantSpec w{first, FP8E4M3PerTensorSpec{"min_max", "float32", false}};
       first.is_dynamic = true;
       ScaleQuantSpec in{first, FP8E4M3PerTensorSpec{"min_max", "float32", false}};
       QuantizationConfig c;
       c.weight = TensorSpecs(*w.ToQuantizationSpec());
       c.input_tensors = TensorSpecs(*in.ToQuantizationSpec());
       return c;
     }},
};

}  // namespace

const std::vector<PresetInfo>& ListPresets() {
  static const std::vector<PresetInfo> all = [] {
    std::vector<PresetInfo> v;
    for (const auto& s : kSchemes) v.push_back({s.name, s.description});
    return v;
  }();
  return all;
}

absl::StatusOr<Config> PresetConfig(absl::string_view name, const PresetOptions& options) {
  std::vector<std::string> parts = absl::StrSplit(name, '+');
  const Scheme* scheme = nullptr;
  for (const auto& s : kSchemes)
    if (parts[0] == s.name) scheme = &s;
  if (scheme == nullptr) {
    std::vector<std::string> names;
    for (const auto& s : kSchemes) names.push_back(s.name);
    return absl::InvalidArgumentError(absl::StrCat("unknown preset '", parts[0],
                                                   "'; expected one of: ", absl::StrJoin(names, ", "),
                                                   " (optionally +kv_fp8, +attn_fp8)"));
  }
  Config c;
  c.global_quant_config = scheme->make();
  c.exclude = options.exclude.value_or(kExclude);
  c.min_kv_scale = options.min_kv_scale;
  if (!options.algorithms.empty()) c.algo_config = options.algorithms;
  for (size_t i = 1; i < parts.size(); ++i) {
    const QuantizationSpec fp8 = Fp8PerTensor(false, std::nullopt);  // as Quark's template
    if (parts[i] == "kv_fp8") {
      for (const auto& pattern : kKvLayers) {
        QuantizationConfig kv;
        kv.weight = c.global_quant_config.weight;
        kv.input_tensors = c.global_quant_config.input_tensors;
        kv.output_tensors = TensorSpecs(fp8);
        c.layer_quant_config.emplace_back(pattern, kv);
        c.kv_cache_quant_config.emplace_back(pattern, kv);
      }
      c.kv_cache_group = kKvLayers;
    } else if (parts[i] == "attn_fp8") {
      c.softmax_quant_spec = fp8;
      QuantizationConfig q;
      q.weight = c.global_quant_config.weight;
      q.input_tensors = c.global_quant_config.input_tensors;
      q.output_tensors = TensorSpecs(fp8);
      c.layer_quant_config.emplace_back(kQLayer, q);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("preset '", name, "': unknown modifier '+",
                                                     parts[i], "'; expected +kv_fp8 or +attn_fp8"));
    }
  }
  return c;
}

}  // namespace quarry
