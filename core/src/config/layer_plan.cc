#include "quarry/layer_plan.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/numbers.h"
#include "config/json_internal.h"
#include "quarry/safetensors.h"
#include "quarry/status.h"

namespace quarry {

namespace {

// Matches a [...] class at pattern[pi] against c. Returns the index after ']' or npos if the
// class is not closed (then '[' is a literal, as in Python).
size_t MatchClass(absl::string_view p, size_t pi, char c, bool* matched) {
  size_t i = pi + 1;
  bool negate = false;
  if (i < p.size() && p[i] == '!') {
    negate = true;
    ++i;
  }
  bool found = false;
  bool first = true;
  while (i < p.size() && (first || p[i] != ']')) {
    first = false;
    char lo = p[i];
    if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
      char hi = p[i + 2];
      if (lo <= c && c <= hi) found = true;
      i += 3;
    } else {
      if (c == lo) found = true;
      ++i;
    }
  }
  if (i >= p.size()) return absl::string_view::npos;
  *matched = found != negate;
  return i + 1;
}

}  // namespace

bool FnMatch(absl::string_view p, absl::string_view s) {
  // Iterative wildcard matching with backtracking to the last '*'.
  size_t pi = 0, si = 0;
  size_t star_p = absl::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size()) {
      char pc = p[pi];
      if (pc == '*') {
        star_p = pi++;
        star_s = si;
        continue;
      }
      if (pc == '?') {
        ++pi;
        ++si;
        continue;
      }
      if (pc == '[') {
        bool matched = false;
        size_t next = MatchClass(p, pi, s[si], &matched);
        if (next == absl::string_view::npos) {  // unclosed: literal '['
          if (s[si] == '[') {
            ++pi;
            ++si;
            continue;
          }
        } else if (matched) {
          pi = next;
          ++si;
          continue;
        }
      } else if (pc == s[si]) {
        ++pi;
        ++si;
        continue;
      }
    }
    if (star_p == absl::string_view::npos) return false;
    pi = star_p + 1;
    si = ++star_s;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

const LayerPlanEntry* LayerPlan::Find(absl::string_view name) const {
  for (const auto& l : layers)
    if (l.name == name) return &l;
  return nullptr;
}

namespace {

// Shape checks of one resolved spec against the module's weight shape.
void CheckSpecShape(const QuantizationSpec& s, const std::vector<int64_t>& shape,
                    const std::string& path, bool is_weight, std::vector<ConfigIssue>* issues) {
  if (shape.empty()) return;
  const int64_t rank = static_cast<int64_t>(shape.size());
  auto error = [&](const std::string& field, std::string msg) {
    issues->push_back({ConfigIssue::Severity::kError, absl::StrCat(path, ".", field), std::move(msg)});
  };
  if (!s.ch_axis) return;
  const bool grouped = s.qscheme == QSchemeType::kPerGroup || IsBlockDtype(s.dtype);
  const bool per_channel = s.qscheme == QSchemeType::kPerChannel;
  if (!grouped && !per_channel) return;
  int64_t axis = *s.ch_axis;
  // Activations are [..., in]; only their last dim is known from the weight (in_features).
  std::vector<int64_t> dims = shape;
  if (!is_weight) dims = {shape.size() == 2 ? shape[1] : shape.back()};
  const int64_t r = is_weight ? rank : -1;  // activations: only axis -1 can be checked
  if (is_weight) {
    if (axis < -rank || axis >= rank) {
      error("ch_axis", absl::StrCat("axis ", axis, " is out of range for the ", rank,
                                    "-D weight of shape [", absl::StrJoin(shape, ", "), "]"));
      return;
    }
    if (axis < 0) axis += rank;
  } else {
    if (axis != -1) return;
    axis = 0;
  }
  (void)r;
  if (grouped && s.group_size && *s.group_size > 0) {
    const int64_t n = dims[axis];
    if (n % *s.group_size != 0) {
      std::string what = IsBlockDtype(s.dtype) || s.qscheme != QSchemeType::kPerGroup
                             ? "block size"
                             : "group_size";
      if (IsBlockDtype(s.dtype) || s.dtype == Dtype::kMx) {
        // MX tolerates a short tail block (padded for its amax); say so without failing.
        issues->push_back({ConfigIssue::Severity::kWarning, absl::StrCat(path, ".group_size"),
                           absl::StrCat(what, " ", *s.group_size, " does not divide dim ", n,
                                        ": the last block is shorter (padded for its amax)")});
      } else {
        error("group_size", absl::StrCat("group_size ", *s.group_size, " does not divide the ",
                                          n, " channels of axis ", *s.ch_axis,
                                          is_weight ? absl::StrCat(" of weight [",
                                                                   absl::StrJoin(shape, ", "), "]")
                                                    : " of the input",
                                          "; choose a divisor of ", n));
      }
    }
  }
}

void CheckShapes(const LayerPlanEntry& e, std::vector<ConfigIssue>* issues) {
  const std::string base = absl::StrCat("layer ", e.name);
  auto each = [&](const std::optional<TensorSpecs>& specs, const char* field, bool is_weight) {
    if (!specs) return;
    for (const auto& s : specs->specs) {
      if (s.is_scale_quant) continue;
      CheckSpecShape(s, e.weight_shape, absl::StrCat(base, ".", field), is_weight, issues);
    }
  };
  each(e.config.weight, "weight", true);
  each(e.config.input_tensors, "input_tensors", false);
}

}  // namespace

absl::StatusOr<LayerPlan> ResolveLayerPlan(const Config& config,
                                           const std::vector<ModuleInfo>& modules) {
  std::vector<std::string> unused;
  QUARRY_RETURN_IF_ERROR(CheckConfig(config, &unused));
  LayerPlan plan;
  plan.softmax_quant_spec = config.softmax_quant_spec;
  std::vector<std::string> excluded_names;
  for (const ModuleInfo& m : modules) {
    if (m.type != "Linear" && m.type != "Embedding") continue;
    LayerPlanEntry e;
    e.name = m.name;
    e.type = m.type;
    e.weight_shape = m.weight_shape;
    e.has_bias = m.has_bias;
    const bool strict = m.type == "Embedding";
    // 2. exclude (an excluded X also excludes X.*).
    for (const auto& pattern : config.exclude) {
      if (FnMatch(pattern, m.name) || absl::StartsWith(m.name, pattern + ".")) {
        e.excluded = true;
        e.matched_rule = absl::StrCat("exclude[\"", pattern, "\"]");
        break;
      }
    }
    if (!e.excluded) {
      bool found = false;
      // 3. layer_quant_config: exact key first, then patterns in order.
      for (const auto& [key, qc] : config.layer_quant_config) {
        if (key == m.name) {
          e.config = qc;
          e.matched_rule = absl::StrCat("layer_quant_config[\"", key, "\"]");
          found = true;
          break;
        }
      }
      if (!found) {
        for (const auto& [key, qc] : config.layer_quant_config) {
          if (FnMatch(key, m.name)) {
            e.config = qc;
            e.matched_rule = absl::StrCat("layer_quant_config[\"", key, "\"]");
            found = true;
            break;
          }
        }
      }
      // 4. layer_type_quant_config.
      if (!found) {
        for (const auto& [type, qc] : config.layer_type_quant_config) {
          if (type == m.type) {
            e.config = qc;
            e.matched_rule = absl::StrCat("layer_type_quant_config[\"", type, "\"]");
            found = true;
            break;
          }
        }
      }
      // 5. global (not for embeddings).
      if (!found) {
        if (strict) {
          e.matched_rule = "not quantized (embeddings need a name or type rule)";
        } else {
          e.config = config.global_quant_config;
          e.matched_rule = "global_quant_config";
        }
      }
    }
    // 6. KV cache: last match wins, replaces everything; excluded layers keep only the output.
    const std::pair<std::string, QuantizationConfig>* kv = nullptr;
    for (const auto& entry : config.kv_cache_quant_config)
      if (FnMatch(entry.first, m.name)) kv = &entry;
    if (kv != nullptr) {
      QuantizationConfig c = kv->second;
      if (e.excluded) {
        c.weight.reset();
        c.input_tensors.reset();
        c.bias.reset();
      }
      e.config = std::move(c);
      e.kv_cache = e.config.output_tensors.has_value();
      e.matched_rule = absl::StrCat(e.matched_rule, " + kv_cache_quant_config[\"", kv->first, "\"]");
    }
    CheckShapes(e, &plan.issues);
    plan.layers.push_back(std::move(e));
  }
  return plan;
}

absl::StatusOr<std::vector<ModuleInfo>> ListModelModules(const std::string& model_dir) {
  QUARRY_ASSIGN_OR_RETURN(internal::Json cfg, internal::ReadJsonFile(model_dir + "/config.json"));
  QUARRY_ASSIGN_OR_RETURN(auto st, SafetensorsModel::Open(model_dir));
  std::vector<ModuleInfo> modules;
  std::map<std::string, size_t> index;
  auto is_embedding = [](absl::string_view module) {
    for (const char* e : {"embed_tokens", "embed_positions", "wte", "wpe", "word_embeddings",
                          "position_embeddings", "embed_in"})
      if (absl::EndsWith(module, e)) return true;
    return false;
  };
  // Model order = order of appearance of the layer index, then HF's module order within a
  // layer is approximated by tensor order in the file (sorted by name). For display and
  // resolution the order only matters for reporting.
  std::vector<std::string> names = st->TensorNames();
  for (const auto& n : names) {
    if (!absl::EndsWith(n, ".weight") && !absl::EndsWith(n, ".bias")) continue;
    const bool is_bias = absl::EndsWith(n, ".bias");
    std::string module = n.substr(0, n.rfind('.'));
    QUARRY_ASSIGN_OR_RETURN(const StTensorInfo* info, st->Info(n));
    if (!is_bias && info->shape.size() != 2) continue;
    auto it = index.find(module);
    if (is_bias) {
      if (it != index.end()) modules[it->second].has_bias = true;
      continue;
    }
    ModuleInfo m;
    m.name = module;
    m.type = is_embedding(module) ? "Embedding" : "Linear";
    m.weight_shape = info->shape;
    index[module] = modules.size();
    modules.push_back(std::move(m));
  }
  // Biases sorted before their weight ("x.bias" < "x.weight"): second pass.
  for (const auto& n : names) {
    if (!absl::EndsWith(n, ".bias")) continue;
    auto it = index.find(n.substr(0, n.rfind('.')));
    if (it != index.end()) modules[it->second].has_bias = true;
  }
  // A tied lm_head (absent from the files) is still a Linear the config may name.
  bool tie = cfg.value("tie_word_embeddings", cfg.value("model_type", "") == "opt");
  if (!index.count("lm_head") && tie) {
    for (const auto& m : modules) {
      if (m.type == "Embedding" && absl::EndsWith(m.name, "embed_tokens")) {
        ModuleInfo head;
        head.name = "lm_head";
        head.type = "Linear";
        head.weight_shape = m.weight_shape;
        modules.push_back(head);
        break;
      }
    }
  }
  // Natural order: by layer index numerically, keeping the rest stable.
  // Within a decoder layer, Hugging Face's module order (attention, then MLP).
  static const std::vector<std::string> kLeafOrder = {
      "self_attn", "mlp", "q_proj", "k_proj", "v_proj", "o_proj", "out_proj", "gate_proj",
      "up_proj", "down_proj",
      "fc1", "fc2"};
  auto key = [](const std::string& name) {
    // Split digits so that layers.10 sorts after layers.9; known leaves sort in HF order.
    std::vector<std::pair<int, std::string>> parts;
    for (absl::string_view p : absl::StrSplit(name, '.')) {
      int v = 0;
      auto leaf = std::find(kLeafOrder.begin(), kLeafOrder.end(), p);
      if (!p.empty() && std::all_of(p.begin(), p.end(), ::isdigit) && absl::SimpleAtoi(p, &v))
        parts.emplace_back(v, "");
      else if (leaf != kLeafOrder.end())
        parts.emplace_back(-2, std::string(1, static_cast<char>('a' + (leaf - kLeafOrder.begin()))));
      else
        parts.emplace_back(-1, std::string(p));
    }
    return parts;
  };
  std::stable_sort(modules.begin(), modules.end(), [&](const ModuleInfo& a, const ModuleInfo& b) {
    bool a_head = a.name == "lm_head", b_head = b.name == "lm_head";
    if (a_head != b_head) return b_head;  // lm_head last, as in HF module order
    return key(a.name) < key(b.name);
  });
  return modules;
}

std::string DescribeSpecs(const std::optional<TensorSpecs>& specs) {
  if (!specs) return "-";
  std::vector<std::string> stages;
  for (const auto& s : specs->specs) {
    std::string d(Name(s.dtype));
    if (s.dtype == Dtype::kMx && s.mx_element_dtype) d = absl::StrCat("mx", Name(*s.mx_element_dtype));
    std::string scheme;
    if (IsBlockDtype(s.dtype)) {
      scheme = absl::StrCat("block", s.group_size.value_or(0));
    } else if (s.qscheme) {
      scheme = std::string(Name(*s.qscheme));
      if (*s.qscheme == QSchemeType::kPerGroup)
        scheme = absl::StrCat("per_group(g", s.group_size.value_or(0), ")");
      else if (*s.qscheme == QSchemeType::kPerChannel)
        scheme = absl::StrCat("per_channel(axis ", s.ch_axis.value_or(0), ")");
    }
    std::string part = absl::StrCat(d, scheme.empty() ? "" : " ", scheme);
    if (s.symmetric) absl::StrAppend(&part, *s.symmetric ? " sym" : " asym");
    if (s.is_dynamic) absl::StrAppend(&part, *s.is_dynamic ? " dynamic" : " static");
    if (s.scale_format && *s.scale_format != "float32") absl::StrAppend(&part, " scale:", *s.scale_format);
    if (s.is_scale_quant) part = absl::StrCat("scales->", part);
    stages.push_back(part);
  }
  return absl::StrJoin(stages, " then ");
}

std::string PlanToTable(const LayerPlan& plan) {
  size_t wn = 5, wr = 4;
  for (const auto& l : plan.layers) {
    wn = std::max(wn, l.name.size());
    wr = std::max(wr, l.matched_rule.size());
  }
  std::string out = absl::StrFormat("%-*s  %-*s  %-34s  %-26s  %s\n", wn, "layer", wr, "rule",
                                    "weight", "input", "output");
  for (const auto& l : plan.layers) {
    absl::StrAppendFormat(&out, "%-*s  %-*s  %-34s  %-26s  %s\n", wn, l.name, wr, l.matched_rule,
                          DescribeSpecs(l.config.weight), DescribeSpecs(l.config.input_tensors),
                          DescribeSpecs(l.config.output_tensors));
  }
  if (plan.softmax_quant_spec)
    absl::StrAppend(&out, "softmax output: ", DescribeSpecs(TensorSpecs(*plan.softmax_quant_spec)),
                    "\n");
  for (const auto& i : plan.issues)
    absl::StrAppend(&out, i.is_error() ? "error: " : "warning: ", i.ToString(), "\n");
  return out;
}

std::string PlanToJson(const LayerPlan& plan, int indent) {
  internal::Json layers = internal::Json::array();
  for (const auto& l : plan.layers) {
    internal::Json e = internal::Json::object();
    e["name"] = l.name;
    e["type"] = l.type;
    e["weight_shape"] = l.weight_shape;
    e["excluded"] = l.excluded;
    e["matched_rule"] = l.matched_rule;
    e["kv_cache"] = l.kv_cache;
    e["config"] = internal::QuantizationConfigToJsonValue(l.config);
    layers.push_back(std::move(e));
  }
  internal::Json issues = internal::Json::array();
  for (const auto& i : plan.issues)
    issues.push_back({{"severity", i.is_error() ? "error" : "warning"},
                      {"path", i.path},
                      {"message", i.message}});
  internal::Json j = internal::Json::object();
  j["layers"] = std::move(layers);
  j["softmax_quant_spec"] = plan.softmax_quant_spec
                               ? internal::SpecToJsonValue(*plan.softmax_quant_spec)
                               : internal::Json(nullptr);
  j["issues"] = std::move(issues);
  return j.dump(indent);
}

}  // namespace quarry
