// OPT decoder layers with Hugging Face eager semantics (float32): learned positions with HF's
// offset of 2, pre-LayerNorm, ReLU MLP (fc1/fc2), biases on every linear, q scaled by
// head_dim^-0.5 after its bias, final LayerNorm, lm_head tied to the token embedding.
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "model/transformer.h"
#include "quarry/status.h"

namespace quarry::model {
namespace {

constexpr int64_t kPositionOffset = 2;  // HF OPTLearnedPositionalEmbedding

class OptLayer final : public DecoderLayer {
 public:
  explicit OptLayer(const ModelConfig& c) : c_(c) {}
  QLinear q, k, v, out, fc1, fc2;
  at::Tensor attn_ln_w, attn_ln_b, ffn_ln_w, ffn_ln_b;

  absl::StatusOr<at::Tensor> Forward(const at::Tensor& x, const ForwardContext& ctx) override {
    at::Tensor h = LayerNorm(x, attn_ln_w, attn_ln_b, c_.rms_norm_eps);
    QUARRY_ASSIGN_OR_RETURN(at::Tensor ao, SelfAttention(h, ctx));
    at::Tensor x2 = x + ao;
    at::Tensor h2 = LayerNorm(x2, ffn_ln_w, ffn_ln_b, c_.rms_norm_eps);
    QUARRY_ASSIGN_OR_RETURN(at::Tensor f1, fc1.Forward(h2, ctx.mode));
    QUARRY_ASSIGN_OR_RETURN(at::Tensor f2, fc2.Forward(at::relu(f1), ctx.mode));
    return x2 + f2;
  }

 protected:
  // OPT has no "mlp" module in Hugging Face (fc1/fc2 sit in the layer itself).
  bool HasBlock(const std::string& block) const override { return block == "self_attn"; }
  absl::StatusOr<at::Tensor> ForwardBlock(const std::string&, const at::Tensor& x,
                                          const ForwardContext& ctx) override {
    return SelfAttention(x, ctx);
  }

 private:
  // h: the normalised hidden state -> out_proj output.
  absl::StatusOr<at::Tensor> SelfAttention(const at::Tensor& h, const ForwardContext& ctx) {
    const int64_t B = h.size(0), L = h.size(1);
    const int64_t nh = c_.num_heads, hd = c_.head_dim;
    QUARRY_ASSIGN_OR_RETURN(at::Tensor qs, q.Forward(h, ctx.mode));
    qs = qs * (1.0 / std::sqrt(static_cast<double>(hd)));
    QUARRY_ASSIGN_OR_RETURN(at::Tensor ks, k.Forward(h, ctx.mode));
    QUARRY_ASSIGN_OR_RETURN(at::Tensor vs, v.Forward(h, ctx.mode));
    qs = qs.view({B, L, nh, hd}).transpose(1, 2);
    ks = ks.view({B, L, nh, hd}).transpose(1, 2);
    vs = vs.view({B, L, nh, hd}).transpose(1, 2);
    QUARRY_ASSIGN_OR_RETURN(at::Tensor attn, Attention(qs, ks, vs, 1.0, ctx, softmax_q.get()));
    attn = attn.transpose(1, 2).reshape({B, L, nh * hd});
    return out.Forward(attn, ctx.mode);
  }

  const ModelConfig& c_;
};

class OptHead final : public Head {
 public:
  explicit OptHead(double eps) : eps_(eps) {}
  at::Tensor ln_w, ln_b;
  absl::StatusOr<at::Tensor> Forward(const at::Tensor& hidden, PassMode mode) override {
    return lm_head->Forward(LayerNorm(hidden, ln_w, ln_b, eps_), mode);
  }

 private:
  double eps_;
};

class OptModel final : public CausalLM {
 public:
  OptModel(std::string dir, ModelConfig config, std::unique_ptr<SafetensorsModel> weights) {
    dir_ = std::move(dir);
    config_ = std::move(config);
    weights_ = std::move(weights);
  }

  absl::StatusOr<std::unique_ptr<DecoderLayer>> LoadLayer(int i) override {
    if (i < 0 || i >= config_.num_layers)
      return absl::OutOfRangeError(absl::StrCat("layer ", i, " out of range"));
    auto layer = std::make_unique<OptLayer>(config_);
    const std::string p = config_.LayerPrefix(i);
    const int64_t h = config_.hidden_size, ff = config_.intermediate_size;
    auto load_linear = [&](QLinear& l, const std::string& name, int64_t out,
                           int64_t in) -> absl::Status {
      l.name = absl::StrCat(p, ".", name);
      QUARRY_ASSIGN_OR_RETURN(l.float_weight, LoadFloat(l.name + ".weight"));
      QUARRY_ASSIGN_OR_RETURN(l.float_bias, LoadFloatIfPresent(l.name + ".bias"));
      if (l.float_weight.dim() != 2 || l.out_features() != out || l.in_features() != in)
        return absl::InvalidArgumentError(absl::StrCat(
            l.name, ".weight has shape ", c10::str(l.float_weight.sizes()),
            " but config.json implies [", out, ", ", in, "]"));
      l.weight = l.float_weight;
      l.bias = l.float_bias;
      layer->linears.push_back(&l);
      return absl::OkStatus();
    };
    QUARRY_RETURN_IF_ERROR(load_linear(layer->q, "self_attn.q_proj", h, h));
    QUARRY_RETURN_IF_ERROR(load_linear(layer->k, "self_attn.k_proj", h, h));
    QUARRY_RETURN_IF_ERROR(load_linear(layer->v, "self_attn.v_proj", h, h));
    QUARRY_RETURN_IF_ERROR(load_linear(layer->out, "self_attn.out_proj", h, h));
    QUARRY_RETURN_IF_ERROR(load_linear(layer->fc1, "fc1", ff, h));
    QUARRY_RETURN_IF_ERROR(load_linear(layer->fc2, "fc2", h, ff));
    layer->input_groups = {{&layer->q, &layer->k, &layer->v}, {&layer->out}, {&layer->fc1},
                           {&layer->fc2}};
    auto load_param = [&](at::Tensor& t, const std::string& name) -> absl::Status {
      const std::string full = absl::StrCat(p, ".", name);
      QUARRY_ASSIGN_OR_RETURN(t, LoadFloat(full));
      if (t.numel() != h)
        return absl::InvalidArgumentError(absl::StrCat(full, " must have ", h, " elements"));
      layer->other_params.emplace_back(full, t);
      return absl::OkStatus();
    };
    QUARRY_RETURN_IF_ERROR(load_param(layer->attn_ln_w, "self_attn_layer_norm.weight"));
    QUARRY_RETURN_IF_ERROR(load_param(layer->attn_ln_b, "self_attn_layer_norm.bias"));
    QUARRY_RETURN_IF_ERROR(load_param(layer->ffn_ln_w, "final_layer_norm.weight"));
    QUARRY_RETURN_IF_ERROR(load_param(layer->ffn_ln_b, "final_layer_norm.bias"));
    return std::unique_ptr<DecoderLayer>(std::move(layer));
  }

  absl::StatusOr<std::unique_ptr<Head>> LoadHead() override {
    auto head = std::make_unique<OptHead>(config_.rms_norm_eps);
    QUARRY_ASSIGN_OR_RETURN(head->ln_w, LoadFloat("model.decoder.final_layer_norm.weight"));
    QUARRY_ASSIGN_OR_RETURN(head->ln_b, LoadFloat("model.decoder.final_layer_norm.bias"));
    head->other_params.emplace_back("model.decoder.final_layer_norm.weight", head->ln_w);
    head->other_params.emplace_back("model.decoder.final_layer_norm.bias", head->ln_b);
    head->lm_head = std::make_unique<QLinear>();
    head->lm_head->name = "lm_head";
    // HF saves tied OPT weights without lm_head.weight; tie it to the token embedding.
    if (Has("lm_head.weight")) {
      QUARRY_ASSIGN_OR_RETURN(head->lm_head->float_weight, LoadFloat("lm_head.weight"));
    } else {
      QUARRY_ASSIGN_OR_RETURN(head->lm_head->float_weight, LoadFloat(config_.EmbedTokensName()));
      head->tied = true;
    }
    head->lm_head->weight = head->lm_head->float_weight;
    return std::unique_ptr<Head>(std::move(head));
  }

  absl::StatusOr<at::Tensor> Embed(const at::Tensor& ids) override {
    if (!embed_.defined()) {
      QUARRY_ASSIGN_OR_RETURN(embed_, LoadFloat(config_.EmbedTokensName()));
      QUARRY_ASSIGN_OR_RETURN(positions_, LoadFloat("model.decoder.embed_positions.weight"));
    }
    const int64_t L = ids.size(1);
    if (L + kPositionOffset > positions_.size(0))
      return absl::InvalidArgumentError(absl::StrCat("sequence of ", L, " tokens exceeds the model's ",
                                                     positions_.size(0) - kPositionOffset,
                                                     " positions"));
    if (ids.numel() > 0 && (ids.min().item<int64_t>() < 0 ||
                            ids.max().item<int64_t>() >= embed_.size(0)))
      return absl::InvalidArgumentError(absl::StrCat("token id out of range [0, ", embed_.size(0), ")"));
    at::Tensor tok = at::embedding(embed_, ids);
    at::Tensor pos = positions_.narrow(0, kPositionOffset, L);  // no padding: positions 0..L-1
    return tok + pos.unsqueeze(0);
  }
  void ReleaseEmbeddings() override {
    embed_ = at::Tensor();
    positions_ = at::Tensor();
  }

  ForwardContext MakeContext(int64_t seq_len, PassMode mode) const override {
    ForwardContext ctx;
    ctx.mode = mode;
    ctx.seq_len = seq_len;
    ctx.causal_mask = at::full({seq_len, seq_len}, std::numeric_limits<float>::lowest()).triu(1);
    return ctx;
  }

  std::vector<std::string> EmbeddingTensorNames() const override {
    return {config_.EmbedTokensName(), "model.decoder.embed_positions.weight"};
  }

 private:
  at::Tensor embed_, positions_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CausalLM>> OpenOpt(const std::string& dir, ModelConfig config,
                                                  std::unique_ptr<SafetensorsModel> weights) {
  return std::unique_ptr<CausalLM>(new OptModel(dir, std::move(config), std::move(weights)));
}

}  // namespace quarry::model
