// Core-internal: AutoAWQ's "GEMM" checkpoint layout (quant_method "awq"), which vLLM, SGLang and
// transformers load, for uint4 asymmetric per-group weights. Pure functions (no state, thread-safe):
// the packing the exporter writes, an independent reader used by the tests, the plan check and
// the quantization_config. QuarkExporter (quark_export.h) writes the files when
// ExportOptions::format is ExportFormat::kAwq.
//
// Per quantized linear <name> with weight [out, in], groups of g input columns (G = in / g),
// uint4 codes q [out, in] in 0..15, zero points z [out, G] in 0..15 and scales s [out, G]:
//
//   tensor            dtype    shape          content
//   <name>.qweight    int32    [in, out/8]    q^T, 8 consecutive output columns per word
//   <name>.qzeros     int32    [in/g, out/8]  z^T, packed the same way (stored as is: no GPTQ -1)
//   <name>.scales     float16  [in/g, out]    s^T rounded to float16
//   <name>.bias       as the checkpoint (or float32 when an algorithm changed it)
//
// Word c of a packed row r holds columns 8c..8c+7: nibble j (bits 4j..4j+3) is column
// 8c + kAwqOrder[j], kAwqOrder = {0, 2, 4, 6, 1, 3, 5, 7} (AutoAWQ awq/modules/linear/gemm.py,
// WQLinear_GEMM.from_linear: `qweight[:, col] |= intweight[:, col * 8 + order_map[i]] << (i * 4)`;
// awq/utils/packing_utils.py AWQ_ORDER / AWQ_REVERSE_ORDER). This is Quark's "reorder" pack
// method (quarry/packing.h PackOrder::kReorder), asserted below, so the transposed packed codes
// of Quark's uint4 per-group export are AWQ's qweight bit for bit.
// Dequantization (AutoAWQ packing_utils.py dequantize_gemm; vLLM awq_triton.py
// awq_dequantize_kernel): w[o, i] = (q[i, o] - z[i / g, o]) * s[i / g, o].
//
// Scales in float16: the AWQ kernels read float16 scales (vLLM AWQLinearMethod.create_weights
// allocates `scales` in the activation dtype, AWQConfig.get_supported_act_dtypes = [half]).
// Quarry's quantizer keeps float32 scales, so a weight with q != z dequantizes to
// (q - z) * fp16(s) instead of (q - z) * s: a relative change of |fp16(s) - s| / s, at most
// 2^-11 (4.9e-4) for scales in float16's normal range [2^-14, 65504], more for smaller
// (subnormal) ones; scales above 65504 are refused. A spec with scale_type "float16" makes the
// quantizer round its scales itself and the export exact.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quarry/layer_plan.h"
#include "quarry/packing.h"
#include "quarry/pipeline.h"

namespace quarry::exporter::awq {

// Column of a group of eight held by nibble j of a packed word.
inline constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
// Nibble holding column k (AutoAWQ's AWQ_REVERSE_ORDER).
inline constexpr int kAwqReverseOrder[8] = {0, 4, 1, 5, 2, 6, 3, 7};
constexpr bool AwqOrderIsQuarkReorder() {
  for (int j = 0; j < 8; ++j) {
    if (packing::Int4ElementOfNibble(PackOrder::kReorder, j) != kAwqOrder[j]) return false;
    if (kAwqReverseOrder[kAwqOrder[j]] != j) return false;
  }
  return true;
}
static_assert(AwqOrderIsQuarkReorder(), "AutoAWQ's order map is Quark's reorder pack method");

// The three tensors of one quantized linear.
struct GemmTensors {
  at::Tensor qweight;  // int32 [in, out/8]
  at::Tensor qzeros;   // int32 [in/g, out/8]
  at::Tensor scales;   // float16 [in/g, out]
};

// Packs v [rows, cols] (integer values 0..15, any integer/float dtype) into int32 [rows, cols/8]
// in AWQ's order. REQUIRES: cols % 8 == 0 (else INVALID_ARGUMENT); values outside 0..15 are an
// INVALID_ARGUMENT error naming the first bad element.
absl::StatusOr<at::Tensor> PackColumns(const at::Tensor& v);

// The reference packing of one linear: codes [out, in], zero_point [out, G], scale [out, G]
// (float32). REQUIRES: out % 8 == 0, in % G == 0, every |scale| <= 65504 (float16's max).
absl::StatusOr<GemmTensors> PackGemm(const at::Tensor& codes, const at::Tensor& zero_point,
                                     const at::Tensor& scale);

// The reader (written from AutoAWQ's unpack_awq + reverse_awq_order + dequantize_gemm, with
// shifts and the reverse order map, not from PackColumns): the float32 weight [out, in] the
// tensors stand for (scales widened from float16 exactly). Codes / zero points unpacked
// [in, out] / [in/g, out] when the pointers are non-null.
absl::StatusOr<at::Tensor> DequantizeGemm(const GemmTensors& t, int64_t group_size,
                                          at::Tensor* codes = nullptr,
                                          at::Tensor* zero_points = nullptr);
// Unpacks int32 [rows, cols/8] into int32 [rows, cols] (AWQ's order).
at::Tensor UnpackColumns(const at::Tensor& packed);

// What the plan exports as AWQ: the common group size and the linears left in float.
struct PlanInfo {
  int group_size = 0;
  std::vector<std::string> modules_to_not_convert;  // excluded / unquantized Linear names
  std::vector<std::string> warnings;
};

// Checks that every quantized linear has a single-stage static uint4 asymmetric per-group weight
// spec along the input dim (ch_axis 1 / -1), integer zero points, float scales, and nothing else
// quantized (no input/output/bias quantizers, no KV cache, no softmax spec); that all share one
// group size; that lm_head is not quantized; and that options are real_quantized. Errors are
// INVALID_ARGUMENT naming the layer, its spec and the reason.
absl::StatusOr<PlanInfo> CheckPlan(const LayerPlan& plan, const Config& config,
                                   const ExportOptions& options);

// config.json's quantization_config (AutoAWQ's AwqConfig.to_transformers_dict): quant_method
// "awq", bits 4, group_size, zero_point true, version "gemm", modules_to_not_convert (null when
// empty, as AutoAWQ writes it; vLLM's AWQConfig and transformers read null as none).
nlohmann::json QuantizationConfig(const PlanInfo& info);

// Effect of storing float32 scales [out, G] as float16 on a fake-quantized weight [out, in]
// (the job's weight, (q - z) * s; also GPTQ's q * s, gptq_format.h): the weights whose value changes (nonzero, in a group whose
// scale is not exactly representable) and the relative change.
struct ScaleRounding {
  int64_t weights = 0;         // quantized weights seen
  int64_t changed = 0;         // of which dequantize to a different value
  double max_rel_change = 0;   // max |fp16(s) - s| / |s| over the changed weights
  double err_sq = 0;           // sum ((q - z) * (fp16(s) - s))^2
  double ref_sq = 0;           // sum ((q - z) * s)^2
  void Add(const ScaleRounding& o);
  // One log line for `format` ("awq", "gptq": the export_format storing float16 scales).
  std::string Describe(const std::string& format = "awq") const;
};
ScaleRounding MeasureScaleRounding(const at::Tensor& fake_quantized_weight,
                                   const at::Tensor& scale);

}  // namespace quarry::exporter::awq
