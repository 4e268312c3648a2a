// Llama / Mistral / Qwen2 / Qwen3 decoder layers with Hugging Face eager semantics (float32):
// RMSNorm, RoPE (rotate_half layout, optional llama3 frequency scaling), GQA attention, SwiGLU.
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "model/transformer.h"
#include "quarry/status.h"

namespace quarry::model {
namespace {

// RoPE inverse frequencies as HF computes them in float32, with llama3 scaling when configured.
at::Tensor InverseFrequencies(const ModelConfig& c) {
  const int64_t dim = c.head_dim;
  at::Tensor exponents = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<float>(dim);
  at::Tensor inv = 1.0 / at::pow(static_cast<float>(c.rope_theta), exponents);
  if (c.rope_scaling && c.rope_scaling->type == "llama3") {
    const auto& s = *c.rope_scaling;
    const double low_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
    const double high_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
    at::Tensor wavelen = 2 * M_PI / inv;
    at::Tensor scaled = at::where(wavelen > low_wavelen, inv / s.factor, inv);
    at::Tensor smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
                        (s.high_freq_factor - s.low_freq_factor);
    at::Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
    at::Tensor medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen);
    inv = at::where(medium, smoothed, scaled);
  }
  return inv;
}

at::Tensor RotateHalf(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

class LlamaLayer final : public DecoderLayer {
 public:
  LlamaLayer(const ModelConfig& c) : c_(c) {}

  QLinear q, k, v, o, gate, up, down;
  at::Tensor input_norm, post_norm, q_norm, k_norm;

  absl::StatusOr<at::Tensor> Forward(const at::Tensor& x, const ForwardContext& ctx) override {
    at::Tensor h = RmsNorm(x, input_norm, c_.rms_norm_eps);
    QUARRY_ASSIGN_OR_RETURN(at::Tensor ao, SelfAttention(h, ctx));
    at::Tensor x2 = x + ao;
    at::Tensor h2 = RmsNorm(x2, post_norm, c_.rms_norm_eps);
    QUARRY_ASSIGN_OR_RETURN(at::Tensor d, Mlp(h2, ctx));
    return x2 + d;
  }

 protected:
  bool HasBlock(const std::string& block) const override {
    return block == "self_attn" || block == "mlp";
  }
  absl::StatusOr<at::Tensor> ForwardBlock(const std::string& block, const at::Tensor& x,
                                          const ForwardContext& ctx) override {
    return block == "mlp" ? Mlp(x, ctx) : SelfAttention(x, ctx);
  }

 private:
  // h: the normalised hidden state [B, L, H] -> o_proj output.
  absl::StatusOr<at::Tensor> SelfAttention(const at::Tensor& h, const ForwardContext& ctx) {
    const int64_t B = h.size(0), L = h.size(1);
    const int64_t nh = c_.num_heads, nkv = c_.num_kv_heads, hd = c_.head_dim;
    QUARRY_ASSIGN_OR_RETURN(at::Tensor qs, q.Forward(h, ctx.mode));
    QUARRY_ASSIGN_OR_RETURN(at::Tensor ks, k.Forward(h, ctx.mode));
    QUARRY_ASSIGN_OR_RETURN(at::Tensor vs, v.Forward(h, ctx.mode));
    qs = qs.view({B, L, nh, hd});
    ks = ks.view({B, L, nkv, hd});
    if (q_norm.defined()) {  // Qwen3: per-head RMSNorm of q and k before RoPE
      qs = RmsNorm(qs, q_norm, c_.rms_norm_eps);
      ks = RmsNorm(ks, k_norm, c_.rms_norm_eps);
    }
    qs = qs.transpose(1, 2);
    ks = ks.transpose(1, 2);
    at::Tensor vv = vs.view({B, L, nkv, hd}).transpose(1, 2);
    qs = qs * ctx.cos + RotateHalf(qs) * ctx.sin;
    ks = ks * ctx.cos + RotateHalf(ks) * ctx.sin;
    QUARRY_ASSIGN_OR_RETURN(at::Tensor attn,
                            Attention(qs, ks, vv, 1.0 / std::sqrt(static_cast<double>(hd)), ctx,
                                      softmax_q.get()));
    attn = attn.transpose(1, 2).reshape({B, L, nh * hd});
    return o.Forward(attn, ctx.mode);
  }

  // h2: the post-attention normalised hidden state -> down_proj output (SwiGLU).
  absl::StatusOr<at::Tensor> Mlp(const at::Tensor& h2, const ForwardContext& ctx) {
    QUARRY_ASSIGN_OR_RETURN(at::Tensor g, gate.Forward(h2, ctx.mode));
    QUARRY_ASSIGN_OR_RETURN(at::Tensor u, up.Forward(h2, ctx.mode));
    return down.Forward(at::silu(g) * u, ctx.mode);
  }

  const ModelConfig& c_;
};

class LlamaHead final : public Head {
 public:
  explicit LlamaHead(double eps) : eps_(eps) {}
  at::Tensor norm;
  absl::StatusOr<at::Tensor> Forward(const at::Tensor& hidden, PassMode mode) override {
    return lm_head->Forward(RmsNorm(hidden, norm, eps_), mode);
  }

 private:
  double eps_;
};

class LlamaModel final : public CausalLM {
 public:
  LlamaModel(std::string dir, ModelConfig config, std::unique_ptr<SafetensorsModel> weights) {
    dir_ = std::move(dir);
    config_ = std::move(config);
    weights_ = std::move(weights);
    inv_freq_ = InverseFrequencies(config_);
  }

  absl::StatusOr<std::unique_ptr<DecoderLayer>> LoadLayer(int i) override {
    if (i < 0 || i >= config_.num_layers)
      return absl::OutOfRangeError(absl::StrCat("layer ", i, " out of range"));
    auto layer = std::make_unique<LlamaLayer>(config_);
    const std::string p = config_.LayerPrefix(i);
    auto load_linear = [&](QLinear& l, const std::string& name) -> absl::Status {
      l.name = absl::StrCat(p, ".", name);
      QUARRY_ASSIGN_OR_RETURN(l.float_weight, LoadFloat(l.name + ".weight"));
      QUARRY_ASSIGN_OR_RETURN(l.float_bias, LoadFloatIfPresent(l.name + ".bias"));
      l.weight = l.float_weight;
      l.bias = l.float_bias;
      layer->linears.push_back(&l);
      return absl::OkStatus();
    };
    QUARRY_RETURN_IF_ERROR(load_linear(layer->q, "self_attn.q_proj"));
    QUARRY_RETURN_IF_ERROR(load_linear(layer->k, "self_attn.k_proj"));
    QUARRY_RETURN_IF_ERROR(load_linear(layer->v, "self_attn.v_proj"));
    QUARRY_RETURN_IF_ERROR(load_linear(layer->o, "self_attn.o_proj"));
    QUARRY_RETURN_IF_ERROR(load_linear(layer->gate, "mlp.gate_proj"));
    QUARRY_RETURN_IF_ERROR(load_linear(layer->up, "mlp.up_proj"));
    QUARRY_RETURN_IF_ERROR(load_linear(layer->down, "mlp.down_proj"));
    layer->input_groups = {{&layer->q, &layer->k, &layer->v}, {&layer->o},
                           {&layer->gate, &layer->up}, {&layer->down}};
    auto load_param = [&](at::Tensor& t, const std::string& name, bool required) -> absl::Status {
      const std::string full = absl::StrCat(p, ".", name);
      if (!required && !Has(full)) return absl::OkStatus();
      QUARRY_ASSIGN_OR_RETURN(t, LoadFloat(full));
      layer->other_params.emplace_back(full, t);
      return absl::OkStatus();
    };
    QUARRY_RETURN_IF_ERROR(load_param(layer->input_norm, "input_layernorm.weight", true));
    QUARRY_RETURN_IF_ERROR(load_param(layer->post_norm, "post_attention_layernorm.weight", true));
    const bool qk_norm = config_.family == ModelFamily::kQwen3;
    QUARRY_RETURN_IF_ERROR(load_param(layer->q_norm, "self_attn.q_norm.weight", qk_norm));
    QUARRY_RETURN_IF_ERROR(load_param(layer->k_norm, "self_attn.k_norm.weight", qk_norm));
    // Shape checks: a checkpoint that disagrees with config.json fails here, clearly.
    const int64_t h = config_.hidden_size;
    const int64_t q_out = int64_t{config_.num_heads} * config_.head_dim;
    const int64_t kv_out = int64_t{config_.num_kv_heads} * config_.head_dim;
    struct Expect {
      QLinear* l;
      int64_t out, in;
    };
    for (const Expect& e : {Expect{&layer->q, q_out, h}, Expect{&layer->k, kv_out, h},
                            Expect{&layer->v, kv_out, h}, Expect{&layer->o, h, q_out},
                            Expect{&layer->gate, config_.intermediate_size, h},
                            Expect{&layer->up, config_.intermediate_size, h},
                            Expect{&layer->down, h, config_.intermediate_size}}) {
      if (e.l->float_weight.dim() != 2 || e.l->out_features() != e.out ||
          e.l->in_features() != e.in)
        return absl::InvalidArgumentError(absl::StrCat(
            e.l->name, ".weight has shape ", c10::str(e.l->float_weight.sizes()),
            " but config.json implies [", e.out, ", ", e.in, "]"));
    }
    if (layer->input_norm.numel() != h || layer->post_norm.numel() != h)
      return absl::InvalidArgumentError(absl::StrCat(p, ": norm weights must have ", h, " elements"));
    return std::unique_ptr<DecoderLayer>(std::move(layer));
  }

  absl::StatusOr<std::unique_ptr<Head>> LoadHead() override {
    auto head = std::make_unique<LlamaHead>(config_.rms_norm_eps);
    QUARRY_ASSIGN_OR_RETURN(head->norm, LoadFloat("model.norm.weight"));
    head->other_params.emplace_back("model.norm.weight", head->norm);
    head->lm_head = std::make_unique<QLinear>();
    head->lm_head->name = "lm_head";
    if (Has("lm_head.weight")) {
      QUARRY_ASSIGN_OR_RETURN(head->lm_head->float_weight, LoadFloat("lm_head.weight"));
    } else if (config_.tie_word_embeddings) {
      QUARRY_ASSIGN_OR_RETURN(head->lm_head->float_weight, LoadFloat(config_.EmbedTokensName()));
      head->tied = true;
    } else {
      return absl::InvalidArgumentError("model has no lm_head.weight and tie_word_embeddings is false");
    }
    head->lm_head->weight = head->lm_head->float_weight;
    return std::unique_ptr<Head>(std::move(head));
  }

  absl::StatusOr<at::Tensor> Embed(const at::Tensor& ids) override {
    if (!embed_.defined()) {
      QUARRY_ASSIGN_OR_RETURN(embed_, LoadFloat(config_.EmbedTokensName()));
    }
    if (ids.numel() > 0 && (ids.min().item<int64_t>() < 0 ||
                            ids.max().item<int64_t>() >= embed_.size(0)))
      return absl::InvalidArgumentError(absl::StrCat("token id out of range [0, ", embed_.size(0), ")"));
    return at::embedding(embed_, ids);
  }
  void ReleaseEmbeddings() override { embed_ = at::Tensor(); }

  ForwardContext MakeContext(int64_t seq_len, PassMode mode) const override {
    ForwardContext ctx;
    ctx.mode = mode;
    ctx.seq_len = seq_len;
    at::Tensor pos = at::arange(seq_len, at::kLong).to(at::kFloat);
    at::Tensor freqs = at::outer(pos, inv_freq_);       // [L, d/2]
    at::Tensor emb = at::cat({freqs, freqs}, -1);       // [L, d]
    ctx.cos = emb.cos();
    ctx.sin = emb.sin();
    ctx.causal_mask = at::full({seq_len, seq_len}, std::numeric_limits<float>::lowest())
                          .triu(1);
    return ctx;
  }

  std::vector<std::string> EmbeddingTensorNames() const override {
    return {config_.EmbedTokensName()};
  }

 private:
  at::Tensor inv_freq_;
  at::Tensor embed_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CausalLM>> OpenLlamaFamily(const std::string& dir, ModelConfig config,
                                                          std::unique_ptr<SafetensorsModel> weights) {
  if (config.head_dim % 2 != 0)
    return absl::InvalidArgumentError("head_dim must be even for RoPE");
  return std::unique_ptr<CausalLM>(new LlamaModel(dir, std::move(config), std::move(weights)));
}

}  // namespace quarry::model
