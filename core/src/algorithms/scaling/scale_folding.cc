#include "algorithms/scaling/scale_folding.h"

#include "absl/strings/str_cat.h"

namespace quarry::algorithms::scaling {

std::vector<ScalingLayer> DefaultScalingLayers(ModelFamily family) {
  auto entry = [](std::string prev, std::vector<std::string> layers, std::string inp,
                  std::optional<std::string> inspect) {
    ScalingLayer s;
    s.prev_op = std::move(prev);
    s.layers = std::move(layers);
    s.inp = std::move(inp);
    s.module2inspect = std::move(inspect);
    return s;
  };
  if (family == ModelFamily::kOpt) {
    return {entry("self_attn_layer_norm", {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"},
                  "self_attn.q_proj", "self_attn"),
            entry("self_attn.v_proj", {"self_attn.out_proj"}, "self_attn.out_proj", std::nullopt),
            entry("final_layer_norm", {"fc1"}, "fc1", std::nullopt),
            entry("fc1", {"fc2"}, "fc2", std::nullopt)};
  }
  return {entry("input_layernorm", {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"},
                "self_attn.q_proj", "self_attn"),
          entry("self_attn.v_proj", {"self_attn.o_proj"}, "self_attn.o_proj", std::nullopt),
          entry("post_attention_layernorm", {"mlp.gate_proj", "mlp.up_proj"}, "mlp.gate_proj", "mlp"),
          entry("mlp.up_proj", {"mlp.down_proj"}, "mlp.down_proj", std::nullopt)};
}

std::string DefaultDecoderLayers(ModelFamily family) {
  return family == ModelFamily::kOpt ? "model.decoder.layers" : "model.layers";
}

namespace {

at::Tensor FindParam(model::DecoderLayer& layer, const std::string& full) {
  for (auto& [name, t] : layer.other_params)
    if (name == full) return t;
  return at::Tensor();
}

}  // namespace

absl::StatusOr<std::vector<ScaleTarget>> ResolveScalingLayers(model::DecoderLayer& layer,
                                                              const ModelConfig& config,
                                                              const std::string& layer_prefix,
                                                              const std::vector<ScalingLayer>& entries) {
  std::vector<ScaleTarget> out;
  for (size_t i = 0; i < entries.size(); ++i) {
    const ScalingLayer& e = entries[i];
    const std::string where = absl::StrCat("scaling_layers[", i, "]");
    ScaleTarget t;
    t.layer = &layer;
    t.entry_index = static_cast<int>(i);
    t.prev_op = e.prev_op;
    if (e.layers.empty())
      return absl::InvalidArgumentError(absl::StrCat(where, ".layers: empty"));
    for (size_t j = 0; j < e.layers.size(); ++j) {
      model::QLinear* l = layer.Find(absl::StrCat(layer_prefix, ".", e.layers[j]));
      if (!l)
        return absl::InvalidArgumentError(absl::StrCat(where, ".layers[", j, "]: no linear '",
                                                       e.layers[j], "' in ", layer_prefix));
      if (!t.layers.empty() && l->in_features() != t.layers[0]->in_features())
        return absl::InvalidArgumentError(absl::StrCat(
            where, ".layers[", j, "]: '", e.layers[j], "' has ", l->in_features(),
            " input features, layers[0] has ", t.layers[0]->in_features(),
            " (the layers of one entry share their input)"));
      t.layers.push_back(l);
    }
    t.inp = layer.Find(absl::StrCat(layer_prefix, ".", e.inp));
    if (!t.inp)
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".inp: no linear '", e.inp, "' in ", layer_prefix));
    if (t.inp->in_features() != t.layers[0]->in_features())
      return absl::InvalidArgumentError(absl::StrCat(where, ".inp: '", e.inp, "' has ",
                                                     t.inp->in_features(), " input features, the layers have ",
                                                     t.layers[0]->in_features()));
    const int64_t n = t.layers[0]->in_features();
    if (model::QLinear* p = layer.Find(absl::StrCat(layer_prefix, ".", e.prev_op))) {
      t.prev_linear = p;
      const bool direct = p->out_features() == n;
      // GQA v -> o only: the previous linear is v_proj and the layers read the attention output.
      auto ends = [](const std::string& a, const std::string& b) {
        return a.size() >= b.size() && a.compare(a.size() - b.size(), b.size(), b) == 0;
      };
      const bool v_to_o = ends(p->name, "v_proj") &&
                          (ends(t.layers[0]->name, "o_proj") || ends(t.layers[0]->name, "out_proj"));
      const bool gqa = v_to_o && config.num_kv_heads > 0 && config.num_heads % config.num_kv_heads == 0 &&
                       p->out_features() == int64_t{config.num_kv_heads} * config.head_dim &&
                       n == int64_t{config.num_heads} * config.head_dim;
      if (!direct && !gqa)
        return absl::InvalidArgumentError(absl::StrCat(
            where, ".prev_op: linear '", e.prev_op, "' has ", p->out_features(),
            " outputs, the layers take ", n, " inputs; it cannot take their scale"));
      t.gqa_v_to_o = !direct;
    } else {
      t.norm_weight_name = absl::StrCat(layer_prefix, ".", e.prev_op, ".weight");
      t.norm_bias_name = absl::StrCat(layer_prefix, ".", e.prev_op, ".bias");
      t.norm_weight = FindParam(layer, t.norm_weight_name);
      t.norm_bias = FindParam(layer, t.norm_bias_name);
      if (!t.norm_weight.defined())
        return absl::InvalidArgumentError(absl::StrCat(where, ".prev_op: no linear or norm '",
                                                       e.prev_op, "' in ", layer_prefix));
      if (t.norm_weight.dim() != 1 || t.norm_weight.numel() != n)
        return absl::InvalidArgumentError(absl::StrCat(
            where, ".prev_op: '", e.prev_op, "' has ", t.norm_weight.numel(),
            " weights, the layers take ", n, " inputs; it cannot take their scale"));
    }
    if (e.module2inspect) {
      t.module2inspect = *e.module2inspect;
    } else {
      t.module2inspect = e.layers[0];
    }
    if (!layer.HasModule(t.module2inspect))
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".module2inspect: no module '", t.module2inspect, "' in ", layer_prefix,
          " (use \"\" for the whole decoder layer, \"self_attn\", \"mlp\" where the "
          "architecture has one, or a linear of the layer)"));
    out.push_back(std::move(t));
  }
  return out;
}

at::Tensor EffectiveScale(const ScaleTarget& t, const ModelConfig& config, const at::Tensor& s) {
  if (!t.gqa_v_to_o) return s;
  const int64_t nkv = config.num_kv_heads, d = config.head_dim;
  const int64_t group = config.num_heads / config.num_kv_heads;
  // o_proj input column h * d + j belongs to query head h, KV head h / group.
  at::Tensor kv = std::get<0>(s.reshape({nkv, group, d}).max(1));     // [nkv, d]
  return kv.unsqueeze(1).expand({nkv, group, d}).reshape({-1}).contiguous();
}

absl::StatusOr<at::Tensor> FoldScale(const ScaleTarget& t, const ModelConfig& config,
                                     const at::Tensor& s_in) {
  const int64_t n = t.layers[0]->in_features();
  if (s_in.dim() != 1 || s_in.numel() != n)
    return absl::InvalidArgumentError(absl::StrCat("scaling_layers[", t.entry_index, "]: scale has ",
                                                   s_in.numel(), " elements, expected ", n));
  at::Tensor s = EffectiveScale(t, config, s_in.to(at::kFloat));
  if (t.prev_linear) {
    at::Tensor rows = s;
    if (t.gqa_v_to_o) {
      const int64_t group = config.num_heads / config.num_kv_heads;
      rows = s.reshape({config.num_kv_heads, group, config.head_dim}).select(1, 0).reshape({-1});
    }
    model::QLinear* p = t.prev_linear;
    p->float_changed = true;
    p->float_weight = p->float_weight / rows.unsqueeze(1);
    if (p->ref_weight.defined()) p->ref_weight = p->ref_weight / rows.unsqueeze(1);
    p->weight = p->float_weight;
    if (p->float_bias.defined()) {
      p->float_bias = p->float_bias / rows;
      p->bias = p->float_bias;
    }
  } else {
    // Norm parameters are shared with the layer's forward: edit them in place.
    at::Tensor w = t.norm_weight;
    w.div_(s);
    if (t.layer) t.layer->changed_params.insert(t.norm_weight_name);
    if (t.norm_bias.defined()) {
      at::Tensor b = t.norm_bias;
      b.div_(s);
      if (t.layer) t.layer->changed_params.insert(t.norm_bias_name);
    }
  }
  for (model::QLinear* l : t.layers) {
    l->float_changed = true;
    l->float_weight = l->float_weight * s.unsqueeze(0);
    if (l->ref_weight.defined()) l->ref_weight = l->ref_weight * s.unsqueeze(0);
    l->weight = l->float_weight;
  }
  return s;
}

}  // namespace quarry::algorithms::scaling
