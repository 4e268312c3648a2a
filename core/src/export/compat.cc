#include "export/compat.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "export/awq_format.h"
#include "export/gguf_format.h"
#include "export/gptq_format.h"

// Sources of the rules (read for the facts; nothing here is their code). vLLM: vllm/model_executor/
// layers/quantization/quark/quark.py (QuarkConfig), quark/utils.py, quark/schemes/*.py,
// kv_cache.py, awq.py, awq_marlin.py, gptq.py, gptq_marlin.py, utils/marlin_utils.py,
// utils/quant_utils.py, gguf.py. transformers: src/transformers/quantizers/quantizer_{quark,awq,
// gptq}.py. llama.cpp: the GGUF rules of export/gguf_format.h (ExactType, Architecture).

namespace quarry {
namespace exporter::compat {
namespace {

// Breaches of one verdict, deduplicated: a (rule, message) pair seen again on another layer only
// counts in more_layers, so a rule broken by every decoder layer is one line naming the first.
class Breaches {
 public:
  void Add(const std::string& rule, const std::string& layer, const std::string& message) {
    auto [it, inserted] = index_.try_emplace({rule, message}, list_.size());
    if (inserted) {
      list_.push_back(Breach{rule, layer, message, 0});
    } else {
      ++list_[it->second].more_layers;
    }
  }
  bool empty() const { return list_.empty(); }
  std::vector<Breach> Take() { return std::move(list_); }

 private:
  std::map<std::pair<std::string, std::string>, size_t> index_;
  std::vector<Breach> list_;
};

// Scheme names in first-seen order.
class Schemes {
 public:
  void Add(const std::string& s) {
    if (std::find(list_.begin(), list_.end(), s) == list_.end()) list_.push_back(s);
  }
  std::string Join() const { return absl::StrJoin(list_, " + "); }
  bool empty() const { return list_.empty(); }

 private:
  std::vector<std::string> list_;
};

RuntimeVerdict Finish(const std::string& runtime, Breaches& breaches, Breaches& notes,
                      const std::string& how) {
  RuntimeVerdict v;
  v.runtime = runtime;
  v.loads = breaches.empty();
  v.how = v.loads ? how : "";
  v.breaches = breaches.Take();
  v.notes = notes.Take();
  return v;
}

std::string Spec(const QuantizationSpec& s) { return DescribeSpecs(TensorSpecs(s)); }
std::string Spec(const std::optional<TensorSpecs>& s) { return DescribeSpecs(s); }

bool IsDynamic(const QuantizationSpec& s) { return s.is_dynamic.value_or(false); }
bool Is(const QuantizationSpec& s, QSchemeType q) { return s.qscheme && *s.qscheme == q; }
bool PerTensorOrChannel(const QuantizationSpec& s) {
  return Is(s, QSchemeType::kPerTensor) || Is(s, QSchemeType::kPerChannel);
}
std::string QSchemeText(const QuantizationSpec& s) {
  return s.qscheme ? std::string(Name(*s.qscheme)) : std::string("no qscheme");
}

// The module's last name component and its parent ("model.layers.0.self_attn", "q_proj").
std::pair<std::string, std::string> SplitName(const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return {"", name};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

bool IsLmHead(const LayerPlanEntry& e) { return SplitName(e.name).second == "lm_head"; }

bool InKvGroup(const Config& config, const std::string& name) {
  for (const auto& p : config.kv_cache_group)
    if (FnMatch(p, name)) return true;
  return false;
}

// The KV-cache group as Quark's export writes it (quark_export.cc: the group only when
// kv_cache_quant_config is set), i.e. what vLLM's QuarkConfig.from_config reads.
bool ExportsKvGroup(const Config& config) {
  return !config.kv_cache_group.empty() && !config.kv_cache_quant_config.empty();
}

// A message naming the layer of a plan-check error: the longest plan entry name it contains.
std::string LayerNamedIn(const LayerPlan& plan, const std::string& message) {
  std::string best = "(model)";
  size_t best_len = 0;
  for (const auto& e : plan.layers)
    if (e.name.size() > best_len && absl::StrContains(message, e.name)) {
      best = e.name;
      best_len = e.name.size();
    }
  return best;
}

// The fused linears of vLLM's Llama / Qwen2 / Qwen3 / OPT models (packed_modules_mapping:
// qkv_proj <- q_proj, k_proj, v_proj; gate_up_proj <- gate_proj, up_proj).
const std::vector<std::pair<std::string, std::vector<std::string>>>& FusedGroups() {
  static const auto* groups = new std::vector<std::pair<std::string, std::vector<std::string>>>{
      {"qkv_proj", {"q_proj", "k_proj", "v_proj"}}, {"gate_up_proj", {"gate_proj", "up_proj"}}};
  return *groups;
}

// Whether the shards of each fused linear agree. `compare_configs`: also their weight / input /
// bias specs (output specs are compared by the KV and output rules; vLLM's from_config strips
// the KV group's). vLLM: quark.py QuarkConfig._find_matched_config ("Found a different
// quantization configuration for [...] vLLM requires all to use the same scheme"),
// quark/utils.py should_ignore_layer (some shards excluded: "Found different quantization
// schemes for the shards"), utils/quant_utils.py is_layer_skipped (AWQ / GPTQ
// modules_to_not_convert: "Detected some but not all shards of {prefix} are quantized").
void CheckFusedShards(const LayerPlan& plan, bool compare_configs, Breaches* br) {
  std::map<std::string, std::vector<const LayerPlanEntry*>> by_parent;
  for (const auto& e : plan.layers)
    if (e.type == "Linear") by_parent[SplitName(e.name).first].push_back(&e);
  std::set<std::string> seen;
  for (const auto& e : plan.layers) {
    const auto [parent, leaf] = SplitName(e.name);
    for (const auto& [fused, shards] : FusedGroups()) {
      if (std::find(shards.begin(), shards.end(), leaf) == shards.end()) continue;
      if (!seen.insert(absl::StrCat(parent, ".", fused)).second) continue;
      std::vector<const LayerPlanEntry*> members;
      for (const LayerPlanEntry* m : by_parent[parent])
        if (std::find(shards.begin(), shards.end(), SplitName(m->name).second) != shards.end())
          members.push_back(m);
      if (members.size() < 2) continue;
      const LayerPlanEntry& first = *members.front();
      const std::string shard_list = absl::StrJoin(shards, "/");
      for (const LayerPlanEntry* m : members) {
        const bool quantized_a = first.config.weight || first.config.input_tensors;
        const bool quantized_b = m->config.weight || m->config.input_tensors;
        if (first.excluded != m->excluded || quantized_a != quantized_b) {
          br->Add("vllm.fused_shards", m->name,
                  absl::StrCat(SplitName(m->name).second, " is ", quantized_b ? "" : "not ",
                               "quantized but ", SplitName(first.name).second, " is",
                               quantized_a ? "" : " not",
                               ": vLLM fuses ", shard_list, " into one ", fused,
                               " and needs all shards quantized the same way (exclude all of "
                               "them or none)"));
          break;
        }
        if (compare_configs && (m->config.weight != first.config.weight ||
                                m->config.input_tensors != first.config.input_tensors ||
                                m->config.bias != first.config.bias)) {
          br->Add("vllm.fused_shards", m->name,
                  absl::StrCat(SplitName(m->name).second, " (", m->matched_rule, ": weight ",
                               Spec(m->config.weight), ", input ", Spec(m->config.input_tensors),
                               ") differs from ", SplitName(first.name).second, " (",
                               first.matched_rule, ": weight ", Spec(first.config.weight),
                               ", input ", Spec(first.config.input_tensors), "): vLLM fuses ",
                               shard_list, " into one ", fused,
                               " and requires all shards to use the same scheme"));
          break;
        }
      }
    }
  }
}

// ----- vLLM, quant_method "quark" -----

// vLLM's NVFP4 (quark.py QuarkConfig._is_nvfp4): weight [fp4 per_group 16 static, fp8_e4m3
// per_tensor static], input [fp4 per_group 16 dynamic, fp8_e4m3 per_tensor static].
bool IsNvfp4(const TensorSpecs& w, const std::optional<TensorSpecs>& in) {
  if (w.specs.size() != 2 || !in || in->specs.size() != 2) return false;
  auto fp4_g16 = [](const QuantizationSpec& s, bool dynamic) {
    return s.dtype == Dtype::kFp4 && Is(s, QSchemeType::kPerGroup) && s.group_size == 16 &&
           IsDynamic(s) == dynamic;
  };
  auto fp8_tensor = [](const QuantizationSpec& s) {
    return s.dtype == Dtype::kFp8E4M3 && Is(s, QSchemeType::kPerTensor) && !IsDynamic(s);
  };
  return fp4_g16(w.specs[0], false) && fp8_tensor(w.specs[1]) && fp4_g16(in->specs[0], true) &&
         fp8_tensor(in->specs[1]);
}

// OCP MX element formats vLLM's Quark loader has kernels for (quark.py QuarkConfig.
// _is_w_ocp_mx_a_x: dtype in {fp4, fp6_e3m2, fp6_e2m3}, per_group, group_size 32, scale_format
// e8m0).
bool IsOcpMx(const QuantizationSpec& s) {
  return (s.dtype == Dtype::kFp4 || s.dtype == Dtype::kFp6E3M2 || s.dtype == Dtype::kFp6E2M3) &&
         Is(s, QSchemeType::kPerGroup) && s.group_size == 32 &&
         s.scale_format.value_or("") == "e8m0";
}

// Element dtypes with no vLLM Quark scheme at all, as weight or input.
std::optional<std::string> NoKernelDtype(const QuantizationSpec& s) {
  switch (s.dtype) {
    case Dtype::kInt3: case Dtype::kInt2: case Dtype::kUint8: case Dtype::kUint16:
    case Dtype::kInt16: case Dtype::kInt32: case Dtype::kBfloat16: case Dtype::kFloat16:
    case Dtype::kFp8E5M2:
      return absl::StrCat(Name(s.dtype), ": no scheme of vLLM's Quark loader (quark.py "
                          "QuarkConfig._get_scheme_from_config) takes this element type");
    case Dtype::kMx: case Dtype::kMx6: case Dtype::kMx9: case Dtype::kBfp16:
      return absl::StrCat(Name(s.dtype), ": vLLM's Quark loader has no kernel for this block "
                          "format; its OCP MX scheme (_is_w_ocp_mx_a_x) takes dtype fp4 / "
                          "fp6_e3m2 / fp6_e2m3 with per_group 32 and scale_format e8m0");
    case Dtype::kFp6E3M2: case Dtype::kFp6E2M3:
      if (!IsOcpMx(s))
        return absl::StrCat(Name(s.dtype), " ", QSchemeText(s), ": vLLM runs fp6 only as OCP "
                            "MXFP6 (per_group, group_size 32, scale_format e8m0; "
                            "_is_w_ocp_mx_a_x)");
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

// The scheme vLLM's QuarkConfig._get_scheme_from_config picks for a linear's weight / input
// specs, or nullopt after adding the breach that stops it.
std::optional<std::string> VllmQuarkScheme(const LayerPlanEntry& e, Breaches* br,
                                           Breaches* notes) {
  const auto& W = e.config.weight;
  const auto& I = e.config.input_tensors;
  const std::string& n = e.name;
  if ((W && W->specs.size() > 1) || (I && I->specs.size() > 1)) {
    if (W && IsNvfp4(*W, I)) return std::string("QuarkNVFP4");
    // The list form of a spec reaches only _is_nvfp4 (and _is_fp8_w4a8, used for MoE experts);
    // every other check reads a single dict.
    br->Add("vllm.two_stage", n,
            absl::StrCat("two-stage spec (weight ", Spec(W), ", input ", Spec(I),
                         "): vLLM's Quark loader takes a list of specs only as NVFP4 (fp4 g16 + "
                         "fp8_e4m3 per_tensor, quark.py _is_nvfp4)"));
    return std::nullopt;
  }
  if (!W) {
    br->Add("vllm.no_scheme", n,
            absl::StrCat("input_tensors ", Spec(I), " without a weight spec: every scheme of "
                         "_get_scheme_from_config needs a weight spec"));
    return std::nullopt;
  }
  const QuantizationSpec& w = W->front();
  const QuantizationSpec* in = I ? &I->front() : nullptr;
  if (auto why = NoKernelDtype(w)) {
    br->Add("vllm.dtype", n, absl::StrCat("weight ", *why));
    return std::nullopt;
  }
  if (in) {
    if (auto why = NoKernelDtype(*in)) {
      br->Add("vllm.dtype", n, absl::StrCat("input ", *why));
      return std::nullopt;
    }
  }
  if (IsDynamic(w)) {
    br->Add("vllm.dynamic_static", n,
            absl::StrCat("dynamic weight ", Spec(w), ": every Quark scheme needs static weights "
                         "(_is_fp8_w8a8 / _is_static_tensor_w8a8 / _is_w_ocp_mx_a_x: not "
                         "is_dynamic)"));
    return std::nullopt;
  }
  switch (w.dtype) {
    case Dtype::kFp8E4M3: {
      // quark.py _is_fp8_w8a8 + schemes/quark_w8a8_fp8.py (activation keys: dynamic per-tensor,
      // dynamic per-token, static per-tensor).
      if (!in) {
        br->Add("vllm.no_scheme", n,
                "fp8 weight-only: _is_fp8_w8a8 needs fp8_e4m3 input_tensors; vLLM's Quark "
                "loader has no fp8 weight-only (W8A16) scheme");
        return std::nullopt;
      }
      if (!PerTensorOrChannel(w)) {
        br->Add("vllm.no_scheme", n,
                absl::StrCat("fp8 weight ", QSchemeText(w), ": QuarkW8A8Fp8 takes per_tensor "
                             "or per_channel weights (_is_fp8_w8a8)"));
        return std::nullopt;
      }
      if (in->dtype != Dtype::kFp8E4M3) {
        br->Add("vllm.int_weight_activation", n,
                absl::StrCat("fp8_e4m3 weights with ", Name(in->dtype), " inputs: no scheme "
                             "pairs them (_is_fp8_w8a8 needs fp8_e4m3 on both)"));
        return std::nullopt;
      }
      if (!IsDynamic(*in) && !Is(*in, QSchemeType::kPerTensor)) {
        br->Add("vllm.dynamic_static", n,
                absl::StrCat("static fp8 input ", QSchemeText(*in), ": _is_fp8_w8a8 takes a "
                             "static input only per_tensor (per-token scales must be dynamic)"));
        return std::nullopt;
      }
      if (IsDynamic(*in) && !PerTensorOrChannel(*in)) {
        br->Add("vllm.dynamic_static", n,
                absl::StrCat("dynamic fp8 input ", QSchemeText(*in), ": QuarkW8A8Fp8 takes "
                             "dynamic per-tensor or per-token inputs"));
        return std::nullopt;
      }
      notes->Add("vllm.capability", n,
                 "QuarkW8A8Fp8 needs compute capability 8.9+ (Ada, Hopper) or an MI300-class GPU "
                 "(QuarkW8A8Fp8.get_min_capability)");
      return std::string("QuarkW8A8Fp8");
    }
    case Dtype::kInt8: {
      // quark.py _is_static_tensor_w8a8 and _is_dynamic_per_token_w8a8 (QuarkW8A8Int8).
      if (!in) {
        br->Add("vllm.no_scheme", n,
                "int8 weight-only (W8A16): QuarkW8A8Int8 needs int8 input_tensors and "
                "QuarkW4A16Int4 takes 4-bit weights; vLLM's Quark loader has no int8 weight-only "
                "scheme (export as gptq for GPTQ-Marlin's uint8b128)");
        return std::nullopt;
      }
      if (in->dtype != Dtype::kInt8) {
        br->Add("vllm.int_weight_activation", n,
                absl::StrCat("int8 weights with ", Name(in->dtype), " inputs: QuarkW8A8Int8 "
                             "needs int8 on both (_is_static_tensor_w8a8)"));
        return std::nullopt;
      }
      if (w.symmetric != true) {
        br->Add("vllm.int8_asymmetric_weight", n,
                absl::StrCat("int8 weight with symmetric ",
                             w.symmetric ? "false" : "None",
                             ": _is_static_tensor_w8a8 / _is_dynamic_per_token_w8a8 take only "
                             "symmetric int8 weights (weight symmetric is True)"));
        return std::nullopt;
      }
      if (!PerTensorOrChannel(w)) {
        br->Add("vllm.no_scheme", n,
                absl::StrCat("int8 weight ", QSchemeText(w), ": QuarkW8A8Int8 takes per_tensor "
                             "or per_channel weights"));
        return std::nullopt;
      }
      if (!IsDynamic(*in)) {
        if (!Is(*in, QSchemeType::kPerTensor)) {
          br->Add("vllm.dynamic_static", n,
                  absl::StrCat("static int8 input ", QSchemeText(*in), ": _is_static_tensor_w8a8 "
                               "takes static inputs only per_tensor (per-token must be dynamic)"));
          return std::nullopt;
        }
        return std::string("QuarkW8A8Int8");
      }
      if (!Is(*in, QSchemeType::kPerChannel)) {
        br->Add("vllm.dynamic_static", n,
                absl::StrCat("dynamic int8 input ", QSchemeText(*in), ": "
                             "_is_dynamic_per_token_w8a8 takes dynamic inputs only per-token "
                             "(per_channel); a dynamic per_tensor int8 input has no scheme"));
        return std::nullopt;
      }
      return std::string("QuarkW8A8Int8");
    }
    case Dtype::kInt4:
    case Dtype::kUint4: {
      // schemes/quark_w4a16_int4.py QuarkW4A16Int4 (supported_activation_quant_keys [None]) and
      // quark/utils.py parse_w4a16_int4_weight_config (group_size a positive int, symmetric a
      // bool).
      if (in) {
        br->Add("vllm.int_weight_activation", n,
                absl::StrCat(Name(w.dtype), " weights with ", Name(in->dtype), " ",
                             QSchemeText(*in), " inputs: QuarkW4A16Int4 is weight-only and no "
                             "other Quark scheme takes 4-bit integer weights"));
        return std::nullopt;
      }
      if (!Is(w, QSchemeType::kPerGroup) || w.group_size.value_or(0) <= 0) {
        br->Add("vllm.int4_per_channel", n,
                absl::StrCat(Name(w.dtype), " ", QSchemeText(w), ": QuarkW4A16Int4 needs "
                             "per_group weights with a positive group_size "
                             "(parse_w4a16_int4_weight_config); per-channel int4 has no Quark "
                             "scheme (export as gptq: GPTQ-Marlin takes group_size -1)"));
        return std::nullopt;
      }
      if (w.ch_axis.value_or(-1) == 0) {
        br->Add("vllm.int4_per_channel", n,
                absl::StrCat(Name(w.dtype), " groups along ch_axis 0: QuarkW4A16Int4 reads "
                             "groups along the input dimension (weight_scale [in/g, out])"));
        return std::nullopt;
      }
      if (!w.symmetric) {
        br->Add("vllm.no_scheme", n,
                absl::StrCat(Name(w.dtype), " weight without symmetric: "
                             "parse_w4a16_int4_weight_config needs weight.symmetric as a bool"));
        return std::nullopt;
      }
      const int g = *w.group_size;
      if (g != 32 && g != 64 && g != 128)
        notes->Add("vllm.marlin_group_size", n,
                   absl::StrCat("group_size ", g, ": outside Marlin's -1/32/64/128 "
                                "(marlin_utils.py MARLIN_SUPPORTED_GROUP_SIZES); "
                                "choose_mp_linear_kernel must find another kernel"));
      return std::string("QuarkW4A16Int4");
    }
    case Dtype::kFp4:
    case Dtype::kFp6E3M2:
    case Dtype::kFp6E2M3: {
      if (!IsOcpMx(w)) {
        br->Add("vllm.dtype", n,
                absl::StrCat("weight ", Spec(w), ": vLLM runs fp4 / fp6 weights only as OCP MX "
                             "(per_group 32, scale_format e8m0; _is_w_ocp_mx_a_x) or NVFP4"));
        return std::nullopt;
      }
      if (!in || IsOcpMx(*in)) return std::string("QuarkOCP_MX");
      // quark.py _is_w4a8_mxfp4_fp8: MXFP4 weights, static symmetric fp8_e4m3 per_tensor input.
      if (w.dtype == Dtype::kFp4 && in->dtype == Dtype::kFp8E4M3 &&
          Is(*in, QSchemeType::kPerTensor) && !IsDynamic(*in) && in->symmetric == true)
        return std::string("QuarkW4A8_MXFP4_FP8");
      br->Add("vllm.int_weight_activation", n,
              absl::StrCat("OCP MX weights with input ", Spec(*in), ": QuarkOCP_MX takes OCP MX "
                           "inputs or none (and QuarkW4A8_MXFP4_FP8 a static symmetric fp8 "
                           "per_tensor input with MXFP4 weights)"));
      return std::nullopt;
    }
    default:
      br->Add("vllm.dtype", n, absl::StrCat("weight ", Spec(w), ": no Quark scheme"));
      return std::nullopt;
  }
}

// The KV-cache spec of one K/V projection (quark.py QuarkKVCacheMethod.validate_kv_cache_config:
// dtype fp8_e4m3, qscheme per_tensor; the config is read as one dict).
void CheckKvSpec(const LayerPlanEntry& e, Breaches* br) {
  const TensorSpecs& o = *e.config.output_tensors;
  const QuantizationSpec& s = o.front();
  if (o.specs.size() != 1 || s.dtype != Dtype::kFp8E4M3 || !Is(s, QSchemeType::kPerTensor))
    br->Add("vllm.kv_cache", e.name,
            absl::StrCat("KV cache ", Spec(e.config.output_tensors), ": vLLM's Quark KV-cache "
                         "method supports only a single fp8_e4m3 per_tensor spec "
                         "(QuarkKVCacheMethod.validate_kv_cache_config)"));
}

// quark.py QuarkConfig.from_config on the exported quantization_config: with a kv_cache_group,
// layer_quant_config must hold entries matching its patterns, all with the same non-empty
// output_tensors.
void CheckKvConfig(const Config& config, Breaches* br) {
  if (!ExportsKvGroup(config)) return;
  std::vector<const std::pair<std::string, QuantizationConfig>*> matches;
  for (const auto& kv : config.layer_quant_config)
    for (const auto& p : config.kv_cache_group)
      if (FnMatch(p, kv.first) || kv.first == p) {
        matches.push_back(&kv);
        break;
      }
  const std::string group = absl::StrJoin(config.kv_cache_group, ", ");
  if (matches.empty()) {
    br->Add("vllm.kv_cache_config", absl::StrCat("kv_cache_group [", group, "]"),
            "no layer_quant_config key matches the kv_cache_group patterns: vLLM's "
            "QuarkConfig.from_config reads the KV-cache spec from layer_quant_config and "
            "refuses the model (\"kv_cache_group parameter setting, but no kv_cache "
            "quantization settings\"); add the K/V patterns to layer_quant_config too (as the "
            "+kv_fp8 presets do)");
    return;
  }
  for (const auto* m : matches) {
    if (!m->second.output_tensors) {
      br->Add("vllm.kv_cache_config", absl::StrCat("layer_quant_config[\"", m->first, "\"]"),
              "matches kv_cache_group but has no output_tensors: QuarkConfig.from_config "
              "refuses an empty KV-cache configuration");
    } else if (m->second.output_tensors != matches.front()->second.output_tensors) {
      br->Add("vllm.kv_cache_config", absl::StrCat("layer_quant_config[\"", m->first, "\"]"),
              absl::StrCat("output_tensors ", Spec(m->second.output_tensors), " differ from ",
                           matches.front()->first, "'s ",
                           Spec(matches.front()->second.output_tensors),
                           ": QuarkConfig.from_config needs one KV-cache spec for the group"));
    }
  }
}

// quark.py get_cache_scale maps self_attn.prob_output_scale to attn.prob_scale; kv_cache.py
// BaseKVCacheMethod.process_weights_after_loading: "Only support per-tensor scaling factor for
// fp8-quantized Q/prob".
void CheckSoftmax(const LayerPlan& plan, Breaches* br) {
  if (!plan.softmax_quant_spec) return;
  const QuantizationSpec& s = *plan.softmax_quant_spec;
  if (s.dtype != Dtype::kFp8E4M3 || !Is(s, QSchemeType::kPerTensor))
    br->Add("vllm.softmax", "model.layers.*.self_attn (softmax_quant_spec)",
            absl::StrCat("softmax ", Spec(s), ": vLLM's attention takes the softmax output "
                         "quantizer only as one fp8 per-tensor prob_scale (get_cache_scale, "
                         "BaseKVCacheMethod.process_weights_after_loading)"));
}

RuntimeVerdict VllmQuark(const LayerPlan& plan, const Config& config) {
  Breaches br, notes;
  Schemes schemes;
  CheckKvConfig(config, &br);
  CheckSoftmax(plan, &br);
  bool any_kv = false;
  for (const auto& e : plan.layers) {
    if (e.type != "Linear") continue;
    const QuantizationConfig& c = e.config;
    if (e.kv_cache && c.output_tensors) {
      any_kv = true;
      CheckKvSpec(e, &br);
      if (!InKvGroup(config, e.name) || !ExportsKvGroup(config))
        br.Add("vllm.output_tensors", e.name,
                "KV-cache output_tensors on a layer kv_cache_group does not name: vLLM's "
                "from_config strips output_tensors only from kv_cache_group layers, and "
                "_get_scheme_from_config refuses quantized outputs");
    } else if (c.output_tensors) {
      // from_config also drops a "*q_proj" entry's output_tensors when there is a KV group
      // (its output_scale becomes attn.q_scale, a per-tensor fp8 scale).
      const bool q_scale = SplitName(e.name).second == "q_proj" && ExportsKvGroup(config) &&
                           absl::StartsWith(e.matched_rule, "layer_quant_config[\"*q_proj\"]");
      if (q_scale) {
        const QuantizationSpec& s = c.output_tensors->front();
        if (c.output_tensors->specs.size() != 1 || s.dtype != Dtype::kFp8E4M3 ||
            !Is(s, QSchemeType::kPerTensor))
          br.Add("vllm.output_tensors", e.name,
                 absl::StrCat("q_proj output ", Spec(c.output_tensors), ": vLLM reads it as "
                              "attn.q_scale, one fp8 per-tensor scale"));
      } else {
        br.Add("vllm.output_tensors", e.name,
               absl::StrCat("output_tensors ", Spec(c.output_tensors), " (", e.matched_rule,
                            ") outside the KV-cache group: QuarkConfig._get_scheme_from_config "
                            "refuses quantized outputs (\"output_tensors and bias quantized are "
                            "not supported\"; only kv_cache_group layers and *q_proj with a KV "
                            "group are stripped by from_config)"));
      }
    }
    if (c.bias)
      br.Add("vllm.bias", e.name,
             absl::StrCat("bias ", Spec(c.bias), ": QuarkConfig._get_scheme_from_config refuses "
                          "quantized biases"));
    if (e.excluded || (!c.weight && !c.input_tensors)) continue;
    if (IsLmHead(e)) {
      br.Add("vllm.lm_head", e.name,
             absl::StrCat("lm_head weight ", Spec(c.weight), ": vLLM's lm_head is a "
                          "ParallelLMHead (a VocabParallelEmbedding), and QuarkConfig."
                          "get_quant_method quantizes only LinearBase layers; exclude lm_head"));
      continue;
    }
    if (absl::StartsWith(e.matched_rule, "layer_type_quant_config") &&
        (c.weight != config.global_quant_config.weight ||
         c.input_tensors != config.global_quant_config.input_tensors))
      br.Add("vllm.layer_type_quant_config", e.name,
             absl::StrCat(e.matched_rule, " differs from global_quant_config: vLLM's "
                          "_find_matched_config looks layer_type_quant_config up by "
                          "type(module), a class, never the name \"Linear\", and uses "
                          "global_quant_config instead; move the rule to layer_quant_config"));
    if (auto s = VllmQuarkScheme(e, &br, &notes)) schemes.Add(*s);
  }
  CheckFusedShards(plan, /*compare_configs=*/true, &br);
  std::string how = schemes.empty() ? "unquantized linears" : schemes.Join();
  if (any_kv) how += " + fp8 KV cache";
  return Finish("vllm", br, notes, how);
}

// ----- export formats' own plan checks -----

ExportOptions OptionsFor(ExportFormat format) {
  ExportOptions o;
  o.format = format;
  return o;
}

// Whether the format can write the plan at all (AWQ / GPTQ refuse plans their layout cannot
// hold; Quark's format writes every spec; GGUF's refusals are llama.cpp's own rules below).
absl::Status ExportCheck(const LayerPlan& plan, const Config& config, ExportFormat format,
                         int* group_size, int* bits) {
  if (format == ExportFormat::kAwq) {
    auto info = awq::CheckPlan(plan, config, OptionsFor(format));
    if (!info.ok()) return info.status();
    *group_size = info->group_size;
    *bits = 4;
  } else if (format == ExportFormat::kGptq) {
    auto info = gptq::CheckPlan(plan, config, OptionsFor(format));
    if (!info.ok()) return info.status();
    *group_size = info->group_size;
    *bits = info->bits;
  }
  return absl::OkStatus();
}

void AddExportRefusal(const LayerPlan& plan, ExportFormat format, const absl::Status& st,
                      Breaches* br) {
  br->Add(absl::StrCat("export.", ExportFormatName(format)),
          LayerNamedIn(plan, std::string(st.message())),
          absl::StrCat("the ", ExportFormatName(format), " export refuses the plan: ",
                       st.message()));
}

// llama.cpp's types for every quantized linear (gguf::ExactType); the most frequent first.
std::string GgufTypes(const LayerPlan& plan, const char* rule, Breaches* br) {
  std::map<std::string, int> counts;
  for (const auto& e : plan.layers) {
    if (e.type != "Linear" || e.excluded || !e.quantized()) continue;
    if (!e.config.weight) {
      br->Add(rule, e.name, "activation quantizers without a weight spec: GGUF holds weights "
                            "only");
      continue;
    }
    auto t = gguf::ExactType(e);
    if (!t.ok()) {
      // ExactType's message names the layer and its rule; keep the rest so identical specs on
      // other layers deduplicate.
      std::string msg(t.status().message());
      const std::string prefix = absl::StrCat("export_format gguf: ", e.name, " ");
      if (absl::StartsWith(msg, prefix)) msg = msg.substr(prefix.size());
      br->Add(rule, e.name, msg);
      continue;
    }
    ++counts[gguf::Name(*t)];
  }
  std::vector<std::pair<int, std::string>> order;
  for (const auto& [name, n] : counts) order.emplace_back(-n, name);
  std::sort(order.begin(), order.end());
  std::vector<std::string> names;
  for (const auto& [n, name] : order) names.push_back(name);
  return names.empty() ? "F16/BF16/F32 (nothing quantized)" : absl::StrJoin(names, " + ");
}

}  // namespace

// ----- vLLM -----

RuntimeVerdict VllmVerdict(const LayerPlan& plan, const Config& config, ExportFormat format,
                           const ModelConfig* model) {
  if (format == ExportFormat::kQuark) return VllmQuark(plan, config);
  Breaches br, notes;
  std::string how;
  if (format == ExportFormat::kGguf) {
    // vLLM's GGUF loader (quantization/gguf.py): Q4_0 / Q4_1 / Q8_0 are STANDARD_QUANT_TYPES;
    // MXFP4 only in trees with MXFP4_QUANT_TYPES.
    Breaches types;
    const std::string t = GgufTypes(plan, "vllm.gguf_type", &types);
    for (auto& b : types.Take()) br.Add(b.rule, b.layer, b.message);
    if (model) {
      auto arch = gguf::Architecture(*model);
      if (!arch.ok()) br.Add("vllm.gguf_architecture", "(model)", std::string(arch.status().message()));
    }
    if (absl::StrContains(t, "MXFP4"))
      notes.Add("vllm.gguf_mxfp4", "(model)",
                "MXFP4 GGUF tensors need a vLLM whose gguf.py lists MXFP4_QUANT_TYPES");
    notes.Add("vllm.gguf", "(model)",
              "vLLM's GGUF support is experimental: pass the .gguf file and the original model "
              "directory as --tokenizer");
    how = absl::StrCat("GGUF ", t, " (vLLM's gguf loader)");
    return Finish("vllm", br, notes, how);
  }
  int g = 0, bits = 0;
  absl::Status st = ExportCheck(plan, config, format, &g, &bits);
  if (!st.ok()) {
    AddExportRefusal(plan, format, st, &br);
    return Finish("vllm", br, notes, "");
  }
  CheckFusedShards(plan, /*compare_configs=*/false, &br);
  const bool marlin_group = g == -1 || g == 32 || g == 64 || g == 128;
  if (format == ExportFormat::kAwq) {
    // awq.py AWQConfig (weight_bits 4 only, any group size); awq_marlin.py AWQMarlinConfig.
    // is_awq_marlin_compatible (4-bit uint4 with zero points, group_size in
    // MARLIN_SUPPORTED_GROUP_SIZES) decides whether vLLM upgrades "awq" to awq_marlin.
    how = marlin_group ? "AWQ (awq_marlin)" : "AWQ (awq GEMM kernel, not Marlin)";
    if (!marlin_group)
      notes.Add("vllm.awq_marlin_group_size", "(model)",
                absl::StrCat("group_size ", g, " is outside Marlin's -1/32/64/128 (awq_marlin.py "
                             "is_awq_marlin_compatible): vLLM runs the slower awq kernel"));
  } else {
    // gptq_marlin.py GPTQMarlinConfig.TYPE_MAP {(4, sym): uint4b8, (8, sym): uint8b128} and
    // is_gptq_marlin_compatible (group_size in MARLIN_SUPPORTED_GROUP_SIZES); otherwise gptq.py
    // GPTQConfig (bits 2/3/4/8, any group size) with the exllama / gptq_gemm kernels.
    how = marlin_group ? "GPTQ-Marlin" : "GPTQ (gptq kernel, not Marlin)";
    if (!marlin_group)
      notes.Add("vllm.gptq_marlin_group_size", "(model)",
                absl::StrCat("group_size ", g, " is outside Marlin's -1/32/64/128 (gptq_marlin.py "
                             "is_gptq_marlin_compatible): vLLM falls back to quant_method gptq"));
    how = absl::StrCat(how, " ", bits == 8 ? "uint8b128" : "uint4b8");
  }
  return Finish("vllm", br, notes, how);
}

// ----- llama.cpp -----

RuntimeVerdict LlamaCppVerdict(const LayerPlan& plan, const Config& config, ExportFormat format,
                               const ModelConfig* model) {
  Breaches br, notes;
  if (format != ExportFormat::kGguf) {
    br.Add("llama.cpp.format", "(model)",
           absl::StrCat("llama.cpp reads GGUF only (export with --export-format gguf); this "
                        "export is ", ExportFormatName(format), " safetensors"));
    return Finish("llama.cpp", br, notes, "");
  }
  if (model) {
    auto arch = gguf::Architecture(*model);
    if (!arch.ok())
      br.Add("llama.cpp.architecture", "(model)", std::string(arch.status().message()));
  } else {
    notes.Add("llama.cpp.architecture", "(model)",
              "architecture not checked (no model given): llama.cpp has llama / mistral / qwen2 "
              "/ qwen3, not OPT");
  }
  // Softmax / KV specs: ExactType refuses output quantizers on the K/V linears; the softmax
  // spec has no place in a GGUF either (llama.cpp picks its KV-cache type at run time).
  if (plan.softmax_quant_spec)
    br.Add("llama.cpp.type", "model.layers.*.self_attn (softmax_quant_spec)",
           "GGUF stores weights only: a softmax quantizer cannot be carried (llama.cpp's "
           "attention runs in float; -ctk/-ctv choose a KV-cache type at run time)");
  const std::string t = GgufTypes(plan, "llama.cpp.type", &br);
  return Finish("llama.cpp", br, notes, absl::StrCat("GGUF ", t));
}

// ----- transformers -----

RuntimeVerdict TransformersVerdict(const LayerPlan& plan, const Config& config,
                                   ExportFormat format, const ModelConfig* model) {
  Breaches br, notes;
  std::string how;
  switch (format) {
    case ExportFormat::kQuark:
      // quantizer_quark.py QuarkHfQuantizer: validate_environment needs the quark package;
      // _process_model_before_weight_loading hands the whole config to Quark's own
      // _map_to_quark, so every spec Quark exports loads.
      how = "QuarkHfQuantizer (quant_method quark; needs amd-quark installed)";
      break;
    case ExportFormat::kAwq:
    case ExportFormat::kGptq: {
      int g = 0, bits = 0;
      absl::Status st = ExportCheck(plan, config, format, &g, &bits);
      if (!st.ok()) {
        AddExportRefusal(plan, format, st, &br);
        break;
      }
      // quantizer_awq.py AwqQuantizer.validate_environment (autoawq; gptqmodel in newer
      // releases); quantizer_gptq.py GptqHfQuantizer.validate_environment (optimum and
      // gptqmodel or auto-gptq).
      how = format == ExportFormat::kAwq
                ? "AwqQuantizer (quant_method awq; needs autoawq, or gptqmodel on newer "
                  "transformers)"
                : "GptqHfQuantizer (quant_method gptq; needs optimum + gptqmodel)";
      break;
    }
    case ExportFormat::kGguf: {
      // modeling_gguf_pytorch_utils.py load_gguf_checkpoint: from_pretrained(dir, gguf_file=...)
      // dequantizes every tensor to float with the gguf package.
      if (model) {
        auto arch = gguf::Architecture(*model);
        if (!arch.ok())
          br.Add("transformers.gguf_architecture", "(model)", std::string(arch.status().message()));
      }
      Breaches types;
      GgufTypes(plan, "transformers.gguf_type", &types);
      for (auto& b : types.Take()) br.Add(b.rule, b.layer, b.message);
      how = "from_pretrained(gguf_file=\"model.gguf\") (dequantized to float; needs gguf)";
      notes.Add("transformers.gguf", "(model)",
                "transformers dequantizes a GGUF to float on load: the weights are the job's, "
                "the memory is a float model's");
      break;
    }
  }
  return Finish("transformers", br, notes, how);
}

std::vector<RuntimeVerdict> Verdicts(const LayerPlan& plan, const Config& config,
                                     ExportFormat format, const ModelConfig* model) {
  return {VllmVerdict(plan, config, format, model), LlamaCppVerdict(plan, config, format, model),
          TransformersVerdict(plan, config, format, model)};
}

}  // namespace exporter::compat

// ----- public API -----

const std::vector<std::string>& RuntimeNames() {
  static const auto* names = new std::vector<std::string>{"vllm", "llama.cpp", "transformers"};
  return *names;
}

std::vector<RuntimeVerdict> RuntimeVerdicts(const LayerPlan& plan, const Config& config,
                                            ExportFormat format, const ModelConfig* model) {
  return exporter::compat::Verdicts(plan, config, format, model);
}

std::vector<ModuleInfo> RepresentativeModules(ModelFamily family) {
  const int64_t h = 4096, f = 11008;
  std::vector<ModuleInfo> m;
  auto add = [&](const std::string& name, const std::string& type, int64_t out, int64_t in,
                 bool bias) { m.push_back(ModuleInfo{name, type, {out, in}, bias}); };
  if (family == ModelFamily::kOpt) {
    add("model.decoder.embed_tokens", "Embedding", 32000, h, false);
    const std::string p = "model.decoder.layers.0.";
    for (const char* n : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                          "self_attn.out_proj"})
      add(p + n, "Linear", h, h, true);
    add(p + "fc1", "Linear", f, h, true);
    add(p + "fc2", "Linear", h, f, true);
  } else {
    const bool qkv_bias = family == ModelFamily::kQwen2;
    add("model.embed_tokens", "Embedding", 32000, h, false);
    const std::string p = "model.layers.0.";
    for (const char* n : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"})
      add(p + n, "Linear", h, h, qkv_bias);
    add(p + "self_attn.o_proj", "Linear", h, h, false);
    add(p + "mlp.gate_proj", "Linear", f, h, false);
    add(p + "mlp.up_proj", "Linear", f, h, false);
    add(p + "mlp.down_proj", "Linear", h, f, false);
  }
  add("lm_head", "Linear", 32000, h, false);
  return m;
}

namespace {
nlohmann::json BreachesToJson(const std::vector<RuntimeBreach>& list) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& b : list)
    a.push_back({{"rule", b.rule}, {"layer", b.layer}, {"message", b.message},
                 {"more_layers", b.more_layers}});
  return a;
}
absl::StatusOr<std::vector<RuntimeBreach>> BreachesFromJson(const nlohmann::json& a,
                                                            const std::string& where) {
  std::vector<RuntimeBreach> out;
  if (a.is_null()) return out;
  if (!a.is_array()) return absl::InvalidArgumentError(absl::StrCat(where, ": expected an array"));
  for (size_t i = 0; i < a.size(); ++i) {
    const auto& b = a[i];
    if (!b.is_object() || !b.value("rule", nlohmann::json()).is_string())
      return absl::InvalidArgumentError(absl::StrCat(where, "[", i, "]: expected {\"rule\": ...}"));
    out.push_back(RuntimeBreach{b.value("rule", ""), b.value("layer", ""), b.value("message", ""),
                                b.value("more_layers", 0)});
  }
  return out;
}
}  // namespace

std::string RuntimeVerdictsToJson(const std::vector<RuntimeVerdict>& verdicts, int indent) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& v : verdicts)
    a.push_back({{"runtime", v.runtime}, {"loads", v.loads}, {"how", v.how},
                 {"breaches", BreachesToJson(v.breaches)}, {"notes", BreachesToJson(v.notes)}});
  return a.dump(indent);
}

absl::StatusOr<std::vector<RuntimeVerdict>> RuntimeVerdictsFromJson(const std::string& text) {
  nlohmann::json a = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (a.is_discarded()) return absl::InvalidArgumentError("runtimes: not valid JSON");
  if (!a.is_array()) return absl::InvalidArgumentError("runtimes: expected an array");
  std::vector<RuntimeVerdict> out;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto& v = a[i];
    const std::string where = absl::StrCat("runtimes[", i, "]");
    if (!v.is_object() || !v.value("runtime", nlohmann::json()).is_string() ||
        !v.value("loads", nlohmann::json()).is_boolean())
      return absl::InvalidArgumentError(absl::StrCat(where, ": expected {\"runtime\", \"loads\"}"));
    RuntimeVerdict r;
    r.runtime = v["runtime"].get<std::string>();
    r.loads = v["loads"].get<bool>();
    r.how = v.value("how", "");
    auto b = BreachesFromJson(v.value("breaches", nlohmann::json()), where + ".breaches");
    if (!b.ok()) return b.status();
    r.breaches = *std::move(b);
    auto n = BreachesFromJson(v.value("notes", nlohmann::json()), where + ".notes");
    if (!n.ok()) return n.status();
    r.notes = *std::move(n);
    out.push_back(std::move(r));
  }
  return out;
}

std::string FormatRuntimeVerdicts(const std::vector<RuntimeVerdict>& verdicts) {
  std::string s;
  auto line = [&](const char* tag, const RuntimeBreach& b) {
    absl::StrAppend(&s, "    ", tag, " [", b.rule, "] ", b.layer,
                    b.more_layers ? absl::StrCat(" (and ", b.more_layers, " more)") : "", ": ",
                    b.message, "\n");
  };
  for (const auto& v : verdicts) {
    absl::StrAppend(&s, v.runtime, std::string(v.runtime.size() < 13 ? 13 - v.runtime.size() : 1, ' '),
                    v.loads ? absl::StrCat("loads: ", v.how) : std::string("does not load"), "\n");
    for (const auto& b : v.breaches) line("no:", b);
    for (const auto& b : v.notes) line("note:", b);
  }
  return s;
}

}  // namespace quarry
