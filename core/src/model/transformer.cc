#include "model/transformer.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "quarry/status.h"
#include "quarry/tensor_io.h"

namespace quarry::model {

absl::StatusOr<at::Tensor> QLinear::Forward(const at::Tensor& x, PassMode mode) {
  if (x.size(-1) != in_features())
    return absl::InvalidArgumentError(absl::StrCat(name, ": input has ", x.size(-1),
                                                   " features, the weight expects ", in_features()));
  switch (mode) {
    case PassMode::kFloat:
      return at::linear(x, FloatRef(), float_bias);
    case PassMode::kFloatCapture:
      if (capture) capture(x);
      return at::linear(x, FloatRef(), float_bias);
    case PassMode::kCapture:
    case PassMode::kObserve: {
      if (capture) capture(x);
      if (mode == PassMode::kCapture && forward_override) return forward_override(x);
      if (mode == PassMode::kObserve && input_q && !input_q->is_dynamic())
        QUARRY_RETURN_IF_ERROR(input_q->Observe(x));
      at::Tensor y = at::linear(x, weight, bias);
      if (mode == PassMode::kObserve && output_q && !output_q->is_dynamic())
        QUARRY_RETURN_IF_ERROR(output_q->Observe(y));
      return y;
    }
    case PassMode::kQuantized: {
      at::Tensor xq = x;
      if (input_q) {
        QUARRY_ASSIGN_OR_RETURN(xq, input_q->Apply(x));
      }
      at::Tensor y = at::linear(xq, weight, bias);
      if (collect_errors) {
        at::Tensor ref = at::linear(x, FloatRef(), float_bias);
        errors.err_sq += (y - ref).pow(2).sum().item<double>();
        errors.ref_sq += ref.pow(2).sum().item<double>();
        errors.rows += x.numel() / x.size(-1);
      }
      if (output_q) {
        QUARRY_ASSIGN_OR_RETURN(y, output_q->Apply(y));
      }
      return y;
    }
  }
  return absl::InternalError("unknown pass mode");
}

QLinear* DecoderLayer::Find(const std::string& name) {
  for (QLinear* l : linears)
    if (l->name == name) return l;
  return nullptr;
}

QLinear* DecoderLayer::FindSuffix(const std::string& suffix) {
  const std::string tail = "." + suffix;
  for (QLinear* l : linears)
    if (l->name.size() > tail.size() &&
        l->name.compare(l->name.size() - tail.size(), tail.size(), tail) == 0)
      return l;
  return nullptr;
}

bool DecoderLayer::HasModule(const std::string& module) {
  return module.empty() || HasBlock(module) || FindSuffix(module) != nullptr;
}

absl::StatusOr<at::Tensor> DecoderLayer::ForwardModule(const std::string& module,
                                                       const at::Tensor& x,
                                                       const ForwardContext& ctx) {
  if (module.empty()) return Forward(x, ctx);
  if (HasBlock(module)) return ForwardBlock(module, x, ctx);
  if (QLinear* l = FindSuffix(module)) return l->Forward(x, ctx.mode);
  return absl::InvalidArgumentError(absl::StrCat("the decoder layer has no module '", module, "'"));
}

absl::StatusOr<at::Tensor> DecoderLayer::ForwardBlock(const std::string& block, const at::Tensor&,
                                                      const ForwardContext&) {
  return absl::InvalidArgumentError(absl::StrCat("the decoder layer has no block '", block, "'"));
}

at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  at::Tensor var = x.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (x * at::rsqrt(var + eps));
}

at::Tensor LayerNorm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                     double eps) {
  return at::layer_norm(x, {x.size(-1)}, weight, bias, eps);
}

absl::StatusOr<at::Tensor> Attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     double scale, const ForwardContext& ctx,
                                     TensorQuantizer* softmax_q) {
  const int64_t nh = q.size(1), nkv = k.size(1);
  at::Tensor kk = k, vv = v;
  if (nkv != nh) {  // GQA: repeat each KV head nh / nkv times (HF repeat_kv)
    const int64_t rep = nh / nkv;
    kk = k.unsqueeze(2).expand({k.size(0), nkv, rep, k.size(2), k.size(3)})
             .reshape({k.size(0), nh, k.size(2), k.size(3)});
    vv = v.unsqueeze(2).expand({v.size(0), nkv, rep, v.size(2), v.size(3)})
             .reshape({v.size(0), nh, v.size(2), v.size(3)});
  }
  at::Tensor scores = at::matmul(q, kk.transpose(2, 3));
  if (scale != 1.0) scores = scores * scale;
  scores = scores + ctx.causal_mask;
  at::Tensor probs = at::softmax(scores, -1, at::kFloat);
  if (softmax_q != nullptr) {
    if (ctx.mode == PassMode::kObserve && !softmax_q->is_dynamic()) {
      QUARRY_RETURN_IF_ERROR(softmax_q->Observe(probs));
    } else if (ctx.mode == PassMode::kQuantized) {
      QUARRY_ASSIGN_OR_RETURN(probs, softmax_q->Apply(probs));
    }
  }
  return at::matmul(probs, vv);
}

absl::StatusOr<at::Tensor> CausalLM::LoadFloat(const std::string& name) {
  if (tensor_source_) {
    QUARRY_ASSIGN_OR_RETURN(std::optional<at::Tensor> t, tensor_source_(name));
    if (t.has_value()) return *t;
  }
  if (!weights_)
    return absl::NotFoundError(absl::StrCat("the model has no tensor ", name));
  QUARRY_ASSIGN_OR_RETURN(const StTensorInfo* info, weights_->Info(name));
  QUARRY_ASSIGN_OR_RETURN(auto bytes, weights_->Bytes(name));
  QUARRY_ASSIGN_OR_RETURN(at::Tensor t, FloatTensorFromBytes(*info, bytes));
  // The float32 copy is all we use: drop the mapped pages so file-backed RSS stays O(layer).
  weights_->ReleasePages(name);
  bytes_read_ += bytes.size();
  return t;
}

absl::StatusOr<at::Tensor> CausalLM::LoadFloatIfPresent(const std::string& name) {
  if (!Has(name)) return at::Tensor();
  return LoadFloat(name);
}

std::vector<ModuleInfo> CausalLM::Modules() const {
  std::vector<ModuleInfo> out;
  const ModelConfig& c = config_;
  const bool opt = c.family == ModelFamily::kOpt;
  const int64_t h = c.hidden_size, ff = c.intermediate_size;
  const int64_t q_out = static_cast<int64_t>(c.num_heads) * c.head_dim;
  const int64_t kv_out = static_cast<int64_t>(c.num_kv_heads) * c.head_dim;
  out.push_back({opt ? "model.decoder.embed_tokens" : "model.embed_tokens", "Embedding",
                 {c.vocab_size, h}, false});
  if (opt) out.push_back({"model.decoder.embed_positions", "Embedding",
                          {c.max_position_embeddings + 2, h}, false});
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = c.LayerPrefix(i);
    if (opt) {
      const bool b = c.enable_bias;
      out.push_back({p + ".self_attn.q_proj", "Linear", {h, h}, b});
      out.push_back({p + ".self_attn.k_proj", "Linear", {h, h}, b});
      out.push_back({p + ".self_attn.v_proj", "Linear", {h, h}, b});
      out.push_back({p + ".self_attn.out_proj", "Linear", {h, h}, b});
      out.push_back({p + ".fc1", "Linear", {ff, h}, b});
      out.push_back({p + ".fc2", "Linear", {h, ff}, b});
    } else {
      const bool qkv_bias = c.attention_bias;
      const bool o_bias = c.attention_bias && c.family != ModelFamily::kQwen2;
      out.push_back({p + ".self_attn.q_proj", "Linear", {q_out, h}, qkv_bias});
      out.push_back({p + ".self_attn.k_proj", "Linear", {kv_out, h}, qkv_bias});
      out.push_back({p + ".self_attn.v_proj", "Linear", {kv_out, h}, qkv_bias});
      out.push_back({p + ".self_attn.o_proj", "Linear", {h, q_out}, o_bias});
      out.push_back({p + ".mlp.gate_proj", "Linear", {ff, h}, c.mlp_bias});
      out.push_back({p + ".mlp.up_proj", "Linear", {ff, h}, c.mlp_bias});
      out.push_back({p + ".mlp.down_proj", "Linear", {h, ff}, c.mlp_bias});
    }
  }
  out.push_back({"lm_head", "Linear", {c.vocab_size, h}, false});
  return out;
}

absl::StatusOr<std::unique_ptr<CausalLM>> CausalLM::OpenFromSource(
    const std::string& dir, ModelConfig config, TensorSource source, ContainsFn contains) {
  std::unique_ptr<CausalLM> m;
  if (config.family == ModelFamily::kOpt) {
    QUARRY_ASSIGN_OR_RETURN(m, OpenOpt(dir, std::move(config), nullptr));
  } else {
    QUARRY_ASSIGN_OR_RETURN(m, OpenLlamaFamily(dir, std::move(config), nullptr));
  }
  m->tensor_source_ = std::move(source);
  m->contains_ = std::move(contains);
  return m;
}

absl::StatusOr<std::unique_ptr<CausalLM>> CausalLM::Open(const std::string& model_dir) {
  QUARRY_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  QUARRY_ASSIGN_OR_RETURN(auto weights, SafetensorsModel::Open(model_dir));
  if (config.family == ModelFamily::kOpt) return OpenOpt(model_dir, config, std::move(weights));
  return OpenLlamaFamily(model_dir, config, std::move(weights));
}

}  // namespace quarry::model
