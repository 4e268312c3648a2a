// Core-internal: the GPTQ v1 checkpoint layout (quant_method "gptq", checkpoint_format "gptq"),
// which vLLM's GPTQ-Marlin, exllama and transformers load, for int4 / int8 symmetric per-group or
// per-channel weights. Pure functions (no state, thread-safe): the packing the exporter writes,
// an independent reader (used by OpenForInference and the tests), the plan check and the
// quantization_config. QuarkExporter (quark_export.h) writes the files when
// ExportOptions::format is ExportFormat::kGptq.
//
// Per quantized linear <name> with weight [out, in], `bits` 4 or 8, pack = 32 / bits codes per
// int32, groups of g input columns (G = in / g; per-channel: g = in, G = 1), Quarry's signed
// symmetric codes q [out, in] (int4 -8..7, int8 -128..127) and scales s [out, G]:
//
//   tensor          dtype    shape             content
//   <name>.qweight  int32    [in/pack, out]    q_u = q + 2^(bits-1) (unsigned: uint4b8 /
//                                              uint8b128), packed along the INPUT dim: word
//                                              [r, o] holds rows r*pack + j, j = 0..pack-1, in
//                                              bits j*bits .. j*bits+bits-1
//   <name>.qzeros   int32    [G, out/pack]     zero 2^(bits-1) stored as zero - 1 (GPTQ v1's
//                                              "minus one"), packed along OUT the same way:
//                                              0x77777777 (4 bit), 0x7F7F7F7F (8 bit)
//   <name>.scales   float16  [G, out]          s^T rounded to float16
//   <name>.g_idx    int32    [in]              i / g
//   <name>.bias     as the checkpoint (or float32 when an algorithm changed it)
//
// Sources (read for the facts, not copied): AutoGPTQ qlinear_cuda_old.py QuantLinear.pack
// (`intweight = round(W / scale + zero)`, rows packed `qweight[row] |= intweight[j] <<
// (bits * (j - i))`, `zeros -= 1`, qzeros packed the same way along columns); vLLM gptq.py
// GPTQLinearMethod (unpacks with shifts range(0, 32, bits) and `zeros = zeros + 1`, qweight
// [in/pack, out] packed_dim 0, qzeros [G, out/pack] packed_dim 1, g_idx [in]); vLLM
// gptq_marlin.py GPTQMarlinConfig.TYPE_MAP {(4, sym): uint4b8, (8, sym): uint8b128} (Marlin reads
// the zero from the type's bias 8 / 128 and ignores qzeros for symmetric weights; asymmetric
// GPTQ is not Marlin-compatible), get_supported_act_dtypes [half, bfloat16]; marlin_utils.py
// MARLIN_SUPPORTED_GROUP_SIZES [-1, 32, 64, 128], GPTQ_MARLIN_MIN_THREAD_N 64 / _K 128.
// Dequantization (the reader, from this spec): w[o, i] = (q_u[i, o] - (qzeros_stored[g, o] +
// zero_offset)) * scales[g, o] with g = g_idx[i], zero_offset 1 for checkpoint_format "gptq"
// (v1) and 0 for "gptq_v2" (GPTQModel's format, read but never written).
//
// Scales in float16: like AWQ (awq_format.h), a weight with q != 0 dequantizes to q * fp16(s)
// instead of the job's q * s, a relative change of at most 2^-11 for scales in float16's normal
// range; the exporter counts the weights that change (awq::MeasureScaleRounding) and refuses
// scales above 65504. A spec with scale_type "float16" makes the export exact.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quarry/layer_plan.h"
#include "quarry/pipeline.h"

namespace quarry::exporter::gptq {

// Codes per int32 word and the unsigned offset of Quarry's signed symmetric codes.
constexpr int PackFactor(int bits) { return 32 / bits; }
constexpr int CodeOffset(int bits) { return 1 << (bits - 1); }  // uint4b8: 8, uint8b128: 128
static_assert(PackFactor(4) == 8 && PackFactor(8) == 4);
static_assert(CodeOffset(4) - 1 == 7 && CodeOffset(8) - 1 == 127, "v1 stored zeros 7 / 127");

// The four tensors of one quantized linear.
struct LinearTensors {
  at::Tensor qweight;  // int32 [in/pack, out]
  at::Tensor qzeros;   // int32 [G, out/pack]
  at::Tensor scales;   // float16 [G, out]
  at::Tensor g_idx;    // int32 [in]
};

// Packs v [rows, cols] (unsigned codes 0..2^bits-1, any integer/float dtype) along dim 0 into
// int32 [rows/pack, cols]. REQUIRES: bits 4 or 8, rows % pack == 0 (else INVALID_ARGUMENT);
// values out of range are an INVALID_ARGUMENT error naming the first bad element.
absl::StatusOr<at::Tensor> PackRows(const at::Tensor& v, int bits);
// Packs v [rows, cols] along dim 1 into int32 [rows, cols/pack]. REQUIRES: cols % pack == 0.
absl::StatusOr<at::Tensor> PackColumns(const at::Tensor& v, int bits);

// The reference packing of one linear: signed codes [out, in] (int4 -8..7 / int8 -128..127) and
// float32 scales [out, G]. REQUIRES: in % G == 0, in % pack == 0, out % pack == 0, every
// |scale| <= 65504.
absl::StatusOr<LinearTensors> PackLinear(const at::Tensor& codes, const at::Tensor& scale, int bits);

// Quarry's signed codes of a fake-quantized symmetric weight [out, in] = q * s (s [out, G]):
// round(w / s) (0 where s is 0), checked to be in range and to reproduce w exactly (else
// INTERNAL: the weight is not on its quantizer's grid).
absl::StatusOr<at::Tensor> CodesOf(const at::Tensor& fake_quantized_weight, const at::Tensor& scale,
                                   int bits);

// The reader (shifts and masks over the layout above, not PackRows/PackColumns): the float32
// weight [out, in] the tensors stand for (scales widened from float16 exactly). zero_offset: 1
// for checkpoint_format "gptq" (v1), 0 for "gptq_v2". The unpacked unsigned codes [in, out] and
// stored zeros [G, out] when the pointers are non-null. Bits 2, 4 or 8 (3-bit's split words are
// not read).
absl::StatusOr<at::Tensor> Dequantize(const LinearTensors& t, int bits, int zero_offset = 1,
                                      at::Tensor* codes = nullptr,
                                      at::Tensor* stored_zeros = nullptr);
// Unpacks int32 [rows/pack, cols] into int32 [rows, cols] / int32 [rows, cols/pack] into
// [rows, cols].
at::Tensor UnpackRows(const at::Tensor& packed, int bits);
at::Tensor UnpackColumns(const at::Tensor& packed, int bits);

// What the plan exports as GPTQ.
struct PlanInfo {
  int bits = 0;                  // 4 or 8
  int group_size = 0;            // > 0, or -1 for per-channel (one group spanning in)
  bool gptq_algorithm = false;   // algo_config has GPTQ (or Qronos, same column loop)
  bool act_order = false;        // its desc_act (always with static groups; see CheckPlan)
  bool static_groups = false;
  std::optional<double> damp_percent;  // GPTQ's
  std::vector<std::string> modules_to_not_convert;  // excluded / unquantized Linear names
  std::vector<std::string> warnings;
};

// Checks that every quantized linear has a single-stage static int4 or int8 symmetric weight
// spec, per_group along the input dim (ch_axis 1 / -1) or per_channel (ch_axis 0), with float
// scales and nothing else quantized (no input/output/bias quantizers, no KV cache, no softmax
// spec); that all share one bits and group size; that lm_head is not quantized; that options are
// real_quantized; and that GPTQ's act-order, if any, uses static groups. Errors are
// INVALID_ARGUMENT naming the layer, its spec and the reason.
absl::StatusOr<PlanInfo> CheckPlan(const LayerPlan& plan, const Config& config,
                                   const ExportOptions& options);

// config.json's quantization_config (transformers' GPTQConfig keys, what vLLM's
// GPTQMarlinConfig.from_config reads): quant_method "gptq", bits, group_size (-1 per-channel),
// desc_act false (see gptq_format.cc), sym true, checkpoint_format "gptq", lm_head false,
// static_groups, and damp_percent / true_sequential when GPTQ ran.
nlohmann::json QuantizationConfig(const PlanInfo& info);

}  // namespace quarry::exporter::gptq
