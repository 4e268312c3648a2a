// Core-internal: decoder-only transformers (Llama / Mistral / Qwen2 / Qwen3 / OPT) as plain ATen
// code with Hugging Face parameter names, built one decoder layer at a time so the pipeline can
// keep only one layer's weights resident. Every Linear is a QLinear that carries the quantizers of
// its resolved plan entry. Not thread-safe: one pipeline thread drives a model.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quarry/layer_plan.h"
#include "quarry/model_config.h"
#include "quarry/quantize.h"
#include "quarry/safetensors.h"

namespace quarry::model {

// What a forward pass does with quantization.
enum class PassMode {
  kFloat,      // original float weights, no quantizer: the float reference model
  kFloatCapture,  // like kFloat, and capture hooks see the inputs (Qronos' float statistics)
  kCapture,    // current weights (algorithms may have replaced them), no activation quantizers
  kObserve,    // like kCapture, and static activation quantizers observe their tensors
  kQuantized,  // every quantizer applied (fake quantization): the quantized model
};

// Accumulated output error of a QLinear in kQuantized passes, against the float weights on the
// same input: sum ||y_q - y_ref||^2 and sum ||y_ref||^2.
struct LinearErrorStats {
  double err_sq = 0;
  double ref_sq = 0;
  int64_t rows = 0;
};

class QLinear {
 public:
  std::string name;          // e.g. "model.layers.0.self_attn.q_proj"
  at::Tensor float_weight;   // [out, in] float32, as loaded
  at::Tensor float_bias;     // [out] float32 or undefined
  // The float model's weight once an algorithm changed float_weight in a way that is not
  // float-equivalent (AWQ's clipping); undefined otherwise. Float passes use FloatRef().
  at::Tensor ref_weight;
  const at::Tensor& FloatRef() const { return ref_weight.defined() ? ref_weight : float_weight; }
  at::Tensor weight;         // current weight (fake-quantized once frozen)
  at::Tensor quant_input;    // the weight the weight quantizer was applied to (for export codes)
  at::Tensor bias;           // current bias
  std::unique_ptr<TensorQuantizer> input_q, output_q, weight_q, bias_q;
  // Called with the input of every kCapture / kObserve pass (algorithms accumulate statistics).
  std::function<void(const at::Tensor& input)> capture;
  // When set, kCapture passes return forward_override(input) instead of input x weight (after
  // `capture`): the scale searches evaluate candidate weights and quantized inputs through it.
  std::function<absl::StatusOr<at::Tensor>(const at::Tensor& input)> forward_override;
  bool collect_errors = false;
  LinearErrorStats errors;
  // True once an algorithm changed float_weight / float_bias (scaled, clipped): the export then
  // writes them instead of copying the checkpoint's tensors.
  bool float_changed = false;

  int64_t out_features() const { return float_weight.size(0); }
  int64_t in_features() const { return float_weight.size(1); }
  absl::StatusOr<at::Tensor> Forward(const at::Tensor& x, PassMode mode);
};

// Per-sequence-length data shared by the layers of one forward.
struct ForwardContext {
  PassMode mode = PassMode::kFloat;
  int64_t seq_len = 0;
  at::Tensor cos, sin;        // [L, head_dim] (RoPE families)
  at::Tensor causal_mask;     // [L, L] additive (0 / float32 min)
};

class DecoderLayer {
 public:
  virtual ~DecoderLayer() = default;
  // x: [B, L, H] float32 -> [B, L, H].
  virtual absl::StatusOr<at::Tensor> Forward(const at::Tensor& x, const ForwardContext& ctx) = 0;
  // The output of one of the layer's modules for that module's input, by Hugging Face name
  // relative to the layer: "" (the whole layer, x = the layer input), "self_attn" (x = the
  // normalised hidden state q/k/v read), "mlp" (Llama family: x = what gate/up read), or a
  // linear ("self_attn.o_proj", "fc2"). ctx.mode applies as in Forward.
  absl::StatusOr<at::Tensor> ForwardModule(const std::string& module, const at::Tensor& x,
                                           const ForwardContext& ctx);
  // True when ForwardModule accepts `module`.
  bool HasModule(const std::string& module);
  // The layer's linears in Hugging Face module order.
  std::vector<QLinear*> linears;
  // Linears grouped by shared input, in forward order (q/k/v, o, gate/up, down for Llama).
  std::vector<std::vector<QLinear*>> input_groups;
  // Non-linear parameters (norm weights/biases) by full name, float32, for export.
  std::vector<std::pair<std::string, at::Tensor>> other_params;
  // Full names of other_params an algorithm changed (a norm that took a scale).
  std::set<std::string> changed_params;
  // Quantizer of the attention softmax output (softmax_quant_spec), or null.
  std::unique_ptr<TensorQuantizer> softmax_q;
  QLinear* Find(const std::string& name);
  // The linear whose name ends in "." + suffix ("self_attn.q_proj"), or null.
  QLinear* FindSuffix(const std::string& suffix);

 protected:
  // Sub-blocks by name ("self_attn", "mlp"); the default has none.
  virtual bool HasBlock(const std::string& /*block*/) const { return false; }
  virtual absl::StatusOr<at::Tensor> ForwardBlock(const std::string& block, const at::Tensor& x,
                                                  const ForwardContext& ctx);
};

// Final norm + lm_head.
class Head {
 public:
  virtual ~Head() = default;
  virtual absl::StatusOr<at::Tensor> Forward(const at::Tensor& hidden, PassMode mode) = 0;
  std::unique_ptr<QLinear> lm_head;
  bool tied = false;  // lm_head.weight is the embedding (not stored separately)
  std::vector<std::pair<std::string, at::Tensor>> other_params;
};

class CausalLM {
 public:
  static absl::StatusOr<std::unique_ptr<CausalLM>> Open(const std::string& model_dir);
  // A model whose every tensor comes from `source` (float32, HF names) with `contains` telling
  // which names exist, e.g. a GGUF file (pipeline/gguf_model.h); weights() must not be used.
  using ContainsFn = std::function<bool(const std::string&)>;
  static absl::StatusOr<std::unique_ptr<CausalLM>> OpenFromSource(
      const std::string& dir, ModelConfig config,
      std::function<absl::StatusOr<std::optional<at::Tensor>>(const std::string&)> source,
      ContainsFn contains);
  virtual ~CausalLM() = default;

  const ModelConfig& config() const { return config_; }
  SafetensorsModel& weights() { return *weights_; }
  const std::string& dir() const { return dir_; }
  int num_layers() const { return config_.num_layers; }

  // Reads decoder layer i's weights only.
  virtual absl::StatusOr<std::unique_ptr<DecoderLayer>> LoadLayer(int i) = 0;
  virtual absl::StatusOr<std::unique_ptr<Head>> LoadHead() = 0;
  // Token ids [B, L] (int64) -> hidden [B, L, H]. Loads the embedding tables on first use; call
  // ReleaseEmbeddings() when done to free them.
  virtual absl::StatusOr<at::Tensor> Embed(const at::Tensor& ids) = 0;
  virtual void ReleaseEmbeddings() = 0;
  virtual ForwardContext MakeContext(int64_t seq_len, PassMode mode) const = 0;
  // Names of the embedding tables (exported unchanged; the head exports its own tensors).
  virtual std::vector<std::string> EmbeddingTensorNames() const = 0;
  // Linear/Embedding modules in model order with their weight shapes (for the layer plan).
  std::vector<ModuleInfo> Modules() const;

  // Loads a tensor as float32 (bf16/f16/f32 on disk), through the tensor source when one is set.
  absl::StatusOr<at::Tensor> LoadFloat(const std::string& name);
  // A hook that supplies float tensors for some names (e.g. dequantized weights of an exported
  // quantized model); returning std::nullopt falls back to reading the file.
  using TensorSource = std::function<absl::StatusOr<std::optional<at::Tensor>>(const std::string&)>;
  void SetTensorSource(TensorSource source) { tensor_source_ = std::move(source); }
  absl::StatusOr<at::Tensor> LoadFloatIfPresent(const std::string& name);  // undefined if absent
  // Whether the checkpoint (or the source of OpenFromSource) has the tensor.
  bool Has(const std::string& name) const { return contains_ ? contains_(name) : weights_->Contains(name); }
  // Bytes of checkpoint tensors read so far by LoadFloat (for throughput figures).
  uint64_t bytes_read() const { return bytes_read_; }

 protected:
  ModelConfig config_;
  std::unique_ptr<SafetensorsModel> weights_;
  std::string dir_;
  TensorSource tensor_source_;
  ContainsFn contains_;  // set by OpenFromSource
  uint64_t bytes_read_ = 0;
};

// Building blocks (float32).
at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps);
at::Tensor LayerNorm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                     double eps);
// Scaled dot-product attention with HF eager semantics: softmax in float32 of
// q k^T * scale + causal_mask, optional softmax-output quantizer, times v.
// q: [B, nh, L, d], k/v: [B, nkv, L, d] (GQA repeats k/v).
absl::StatusOr<at::Tensor> Attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     double scale, const ForwardContext& ctx,
                                     TensorQuantizer* softmax_q);

absl::StatusOr<std::unique_ptr<CausalLM>> OpenLlamaFamily(const std::string& dir, ModelConfig config,
                                                          std::unique_ptr<SafetensorsModel> weights);
absl::StatusOr<std::unique_ptr<CausalLM>> OpenOpt(const std::string& dir, ModelConfig config,
                                                  std::unique_ptr<SafetensorsModel> weights);

}  // namespace quarry::model
