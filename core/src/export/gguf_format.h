// Core-internal: what a llama.cpp GGUF holds, as pure functions (no state, thread-safe): the
// ggml tensor types Quarry writes, which resolved weight spec maps exactly onto which type, the
// block encodings and their inverse (the reader), llama.cpp's architecture names and tensor
// names, and the q/k row permutation. The file container is gguf_file.h; the exporter
// gguf_export.h.
//
// Types (ggml/include/ggml.h enum ggml_type; block structs ggml/src/ggml-common.h; dequantize
// ggml/src/ggml-quants.c dequantize_row_*). Blocks run along the row (ne[0] = in_features):
//   type   id  block  bytes  layout                                       value
//   F32     0      1      4  float                                        x
//   F16     1      1      2  IEEE half                                    x
//   Q4_0    2     32     18  half d; u8 qs[16]                            d * (q - 8)
//   Q4_1    3     32     20  half d; half m; u8 qs[16]                    d * q + m
//   Q8_0    8     32     34  half d; i8 qs[32]                            d * q
//   BF16   30      1      2  bfloat16                                     x
//   MXFP4  39     32     17  u8 e (E8M0); u8 qs[16]                       kvalues[q] * 2^(e-128)
// 4-bit blocks: qs[j] holds element j in its low nibble and element j + 16 in its high nibble.
// kvalues_mxfp4 = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12} (twice the E2M1
// values, hence 2^(e-128) = E8M0(e) / 2), so q is the OCP E2M1 code and e the OCP E8M0 scale.
//
// Exact mapping from a linear's resolved weight spec (single stage, static, along the input
// dimension: qscheme per_group, group_size 32, ch_axis 1 / -1; nothing else of the linear
// quantized: no input/output/bias quantizer):
//   int8  symmetric, float scale          -> Q8_0   (d = the scale in float16)
//   int4  symmetric, float scale          -> Q4_0   (d = the scale in float16, q = code + 8)
//   uint4 asymmetric, float scale         -> Q4_1   (d = scale in float16, m = -scale * zero
//                                                    point in float16: exact when the job ran
//                                                    with exact_float16_min, as GGUF jobs do;
//                                                    otherwise the exporter counts and reports
//                                                    the weights whose value m's rounding moves)
//   fp4 (E2M1) with scale_format e8m0     -> MXFP4  (OCP MXFP4Spec; exact)
// A job that exports GGUF runs its integer weight quantizers with float16 scales
// (exporter::AdaptConfigToFormat; asymmetric ones with exact_float16_min), so the GGUF holds the
// job's weights bit for bit. Unquantized weights keep the checkpoint's F16 / BF16 / F32; 1-D
// tensors (norms, biases) are written F32 as llama.cpp's convert_hf_to_gguf.py does (a lossless
// widening of bf16/f16); tensors an algorithm changed are F32.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quarry/layer_plan.h"
#include "quarry/model_config.h"

namespace quarry::exporter::gguf {

enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ8_0 = 8, kBF16 = 30, kMXFP4 = 39,
};
const char* Name(GgmlType t);                       // "Q4_0", ...
std::optional<GgmlType> TypeFromId(uint32_t id);    // the types above only
int64_t BlockElements(GgmlType t);                  // 1 or 32
int64_t BlockBytes(GgmlType t);
// Bytes of a row of n elements. REQUIRES n % BlockElements(t) == 0.
int64_t RowBytes(GgmlType t, int64_t n);
// llama_ftype for general.file_type when most weights have type t (LLAMA_FTYPE_MOSTLY_*).
uint32_t FileTypeFor(GgmlType t);

// The GGUF type holding exactly the weights of a quantized linear with this resolved plan entry
// (rules above); INVALID_ARGUMENT otherwise, naming the layer, its spec, what breaks the rule
// and the types that would fit (e.g. "int8 per_channel: GGUF has no per-channel type; int8
// symmetric per_group g32 -> Q8_0 would fit"). REQUIRES entry.config.weight.
absl::StatusOr<GgmlType> ExactType(const LayerPlanEntry& entry);

// llama.cpp's architecture for the family: kLlama (llama, mistral) -> "llama", kQwen2 -> "qwen2",
// kQwen3 -> "qwen3"; OPT is UNIMPLEMENTED (llama.cpp has no OPT architecture).
absl::StatusOr<std::string> Architecture(const ModelConfig& config);

// llama.cpp's tensor name for a Hugging Face tensor name of a llama/qwen2/qwen3 checkpoint
// ("model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight", "model.embed_tokens.weight"
// -> "token_embd.weight", "model.norm.weight" -> "output_norm.weight", "lm_head.weight" ->
// "output.weight"); nullopt for a name llama.cpp has no tensor for. HfName is the inverse.
std::optional<std::string> GgufName(const std::string& hf_name);
std::optional<std::string> HfName(const std::string& gguf_name);

// convert_hf_to_gguf.py LlamaModel.permute: the rows of q_proj / k_proj (weight [n_head * d, in]
// or bias [n_head * d]) reordered from HF's rotate-half RoPE layout to llama.cpp's interleaved
// one: view [n_head, 2, d/2, ...], swap axes 1 and 2. Only the "llama" architecture permutes
// (qwen2/qwen3 use NEOX RoPE in llama.cpp and take HF's order). Unpermute is the inverse.
at::Tensor PermuteRows(const at::Tensor& w, int64_t n_head);
at::Tensor UnpermuteRows(const at::Tensor& w, int64_t n_head);

// Per-tensor result of encoding a quantized weight.
struct EncodeStats {
  int64_t weights = 0;        // elements encoded
  int64_t changed = 0;        // elements whose GGUF value differs from the job's weight
  double max_abs_change = 0;  // over the changed ones
  void Add(const EncodeStats& o);
};

// Encodes the job's fake-quantized weight w [rows, cols] (float32; on the grid of the spec:
// w = (q - z) * s) with its per-group scale [rows, cols/32] (float32, or uint8 E8M0 for MXFP4)
// and zero point [rows, cols/32] (Q4_1; integer-valued) into `t` blocks, row after row. Codes
// are recovered from w and the scale; a w that is not on the grid (|w / s - q| > 0) or a code
// out of the type's range is INTERNAL naming the tensor (`name`), row and column. Scales are
// rounded to float16 (the quantizer already did for GGUF jobs; any that were not are counted in
// `stats` through the values they change).
absl::StatusOr<std::string> EncodeBlocks(GgmlType t, const std::string& name, const at::Tensor& w,
                                         const at::Tensor& scale, const at::Tensor& zero_point,
                                         EncodeStats* stats);
// Float tensors: F32 / F16 / BF16 bytes of `x` (any float dtype; converted with round to
// nearest even).
std::string EncodeFloat(GgmlType t, const at::Tensor& x);

// The reader: float32 [rows, cols] of `rows` rows of `t` data (written from ggml's
// dequantize_row_* semantics). INVALID_ARGUMENT when bytes.size() != rows * RowBytes(t, cols).
absl::StatusOr<at::Tensor> Dequantize(GgmlType t, const uint8_t* data, size_t bytes, int64_t rows,
                                      int64_t cols);

}  // namespace quarry::exporter::gguf
