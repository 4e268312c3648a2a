// GPTQ v1 checkpoint layout: packing, reader, plan check, quantization_config (see gptq_format.h).
#include "export/gptq_format.h"

#include <cmath>
#include <variant>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "quarry/status.h"

namespace quarry::exporter::gptq {
namespace {

constexpr double kFp16Max = 65504.0;

std::string Shape(const at::Tensor& t) {
  return absl::StrCat("[", absl::StrJoin(t.sizes(), ", "), "]");
}

absl::Status CheckBits(int bits, const char* what) {
  if (bits == 4 || bits == 8) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("gptq ", what, ": bits ", bits, " (GPTQ-Marlin reads 4 or 8)"));
}

absl::Status Refuse(const LayerPlanEntry& e, const std::string& reason) {
  return absl::InvalidArgumentError(absl::StrCat("export_format gptq: ", e.name, ": weight ",
                                                 DescribeSpecs(e.config.weight), ": ", reason));
}

// Packs the codes of `v` (int32, contiguous [rows, cols]) in groups of `pack` along rows
// (by_rows) or columns into words: element k of a group goes to bits k*bits.
absl::StatusOr<at::Tensor> Pack(const at::Tensor& v, int bits, bool by_rows) {
  QUARRY_RETURN_IF_ERROR(CheckBits(bits, "pack"));
  if (v.dim() != 2)
    return absl::InvalidArgumentError(absl::StrCat("gptq pack: expected a 2-D tensor, got ",
                                                   v.dim(), "-D"));
  const int pack = PackFactor(bits);
  const int64_t rows = v.size(0), cols = v.size(1);
  const int64_t n = by_rows ? rows : cols;
  if (n % pack != 0)
    return absl::InvalidArgumentError(absl::StrCat(
        "gptq pack: ", n, by_rows ? " rows" : " columns", " is not a multiple of ", pack,
        " (", bits, "-bit codes, ", pack, " per int32)"));
  at::Tensor c = (v.is_floating_point() ? v.round() : v).to(at::kInt).contiguous();
  const int32_t* src = c.data_ptr<int32_t>();
  const int32_t maxq = (1 << bits) - 1;
  at::Tensor out = by_rows ? at::zeros({rows / pack, cols}, at::kInt)
                           : at::zeros({rows, cols / pack}, at::kInt);
  int32_t* dst = out.data_ptr<int32_t>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t col = 0; col < cols; ++col) {
      const int32_t q = src[r * cols + col];
      if (q < 0 || q > maxq)
        return absl::InvalidArgumentError(absl::StrCat("gptq pack: value ", q, " at [", r, ", ",
                                                       col, "] is outside 0..", maxq));
      const int k = static_cast<int>((by_rows ? r : col) % pack);
      const int64_t word = by_rows ? (r / pack) * cols + col : r * (cols / pack) + col / pack;
      dst[word] = static_cast<int32_t>(static_cast<uint32_t>(dst[word]) |
                                       (static_cast<uint32_t>(q) << (bits * k)));
    }
  }
  return out;
}

// Algorithm settings that shape the checkpoint: GPTQ's (or Qronos', which shares its column
// loop and group handling).
void ReadAlgorithm(const Config& config, PlanInfo* info) {
  if (!config.algo_config) return;
  for (const AlgoConfig& a : *config.algo_config) {
    if (const auto* g = std::get_if<GPTQConfig>(&a)) {
      info->gptq_algorithm = true;
      info->act_order = g->desc_act;
      info->static_groups = g->static_groups;
      info->damp_percent = g->damp_percent;
    } else if (const auto* q = std::get_if<QronosConfig>(&a)) {
      info->gptq_algorithm = true;
      info->act_order = q->desc_act;
      info->static_groups = q->static_groups;
    }
  }
}

absl::Status CheckWeightSpec(const LayerPlanEntry& e) {
  const TensorSpecs& specs = *e.config.weight;
  if (specs.specs.size() != 1)
    return Refuse(e, "two-stage weight specs have no GPTQ layout (GPTQ stores one float16 scale "
                     "per group and fixed zero points)");
  const QuantizationSpec& s = specs.front();
  const bool is_int = s.dtype == Dtype::kInt4 || s.dtype == Dtype::kInt8;
  const bool is_uint = s.dtype == Dtype::kUint4 || s.dtype == Dtype::kUint8;
  if (is_uint && !s.symmetric.value_or(false))
    return Refuse(e, "asymmetric weights: GPTQ-Marlin reads symmetric uint4b8/uint8b128 only; "
                     "use export_format awq for uint4 asymmetric (e.g. preset uint4_wo_128), or "
                     "int4/int8 symmetric (e.g. preset int4_wo_128) for GPTQ");
  if (is_uint)
    return Refuse(e, "unsigned symmetric codes are not GPTQ's (it stores int4/int8 symmetric "
                     "codes offset by 8 / 128); use dtype int4 or int8 with symmetric true");
  if (!is_int)
    return Refuse(e, "GPTQ-Marlin reads 4- or 8-bit integer weights only (uint4b8 / uint8b128); "
                     "use int4 or int8 symmetric, or export_format quark");
  if (!s.symmetric.value_or(false))
    return Refuse(e, "asymmetric weights: GPTQ-Marlin reads symmetric uint4b8/uint8b128 only; "
                     "use symmetric true, or export_format awq for uint4 asymmetric");
  const int axis = s.ch_axis.value_or(-1);
  if (s.qscheme == QSchemeType::kPerGroup) {
    if (s.group_size.value_or(0) <= 0)
      return Refuse(e, "per_group needs a group_size > 0");
    if (axis != 1 && axis != -1)
      return Refuse(e, absl::StrCat("ch_axis ", axis, ": GPTQ groups run along the input dim "
                                    "(ch_axis 1 or -1 of the [out, in] weight)"));
  } else if (s.qscheme == QSchemeType::kPerChannel) {
    if (axis != 0)
      return Refuse(e, absl::StrCat("ch_axis ", axis, ": GPTQ's per-channel (group_size -1) is "
                                    "one scale per output channel (ch_axis 0)"));
  } else {
    return Refuse(e, "GPTQ stores per-group (group_size g) or per-output-channel (group_size -1) "
                     "scales; use qscheme per_group or per_channel");
  }
  if (s.is_dynamic.value_or(false))
    return Refuse(e, "dynamic weight quantization has no stored scales; use is_dynamic false");
  if (s.scale_format && *s.scale_format != "float32")
    return Refuse(e, absl::StrCat("scale_format ", *s.scale_format,
                                  ": GPTQ stores float16 scales"));
  if (s.is_scale_quant) return Refuse(e, "quantized scales have no GPTQ layout");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<at::Tensor> PackRows(const at::Tensor& v, int bits) { return Pack(v, bits, true); }
absl::StatusOr<at::Tensor> PackColumns(const at::Tensor& v, int bits) {
  return Pack(v, bits, false);
}

absl::StatusOr<LinearTensors> PackLinear(const at::Tensor& codes, const at::Tensor& scale,
                                         int bits) {
  QUARRY_RETURN_IF_ERROR(CheckBits(bits, "pack"));
  if (codes.dim() != 2 || scale.dim() != 2 || scale.size(0) != codes.size(0) ||
      scale.size(1) == 0 || codes.size(1) % scale.size(1) != 0)
    return absl::InvalidArgumentError(absl::StrCat(
        "gptq pack: codes [out, in] and scale [out, in/g] expected, got ", Shape(codes), ", ",
        Shape(scale)));
  const double max_abs = scale.abs().max().item<double>();
  if (!(max_abs <= kFp16Max))
    return absl::InvalidArgumentError(absl::StrCat(
        "gptq pack: a scale of magnitude ", max_abs, " does not fit float16 (max 65504)"));
  const int64_t out = codes.size(0), in = codes.size(1), groups = scale.size(1);
  const int64_t g = in / groups;
  const int offset = CodeOffset(bits);
  at::Tensor q = codes.to(at::kInt);
  const int lo = -offset, hi = offset - 1;
  if (q.numel() > 0 && (q.min().item<int32_t>() < lo || q.max().item<int32_t>() > hi))
    return absl::InvalidArgumentError(absl::StrCat("gptq pack: codes outside int", bits, "'s ",
                                                   lo, "..", hi));
  LinearTensors t;
  QUARRY_ASSIGN_OR_RETURN(t.qweight, PackRows((q + offset).t().contiguous(), bits));
  // Symmetric: every zero point is the type's bias, stored minus one (v1).
  QUARRY_ASSIGN_OR_RETURN(t.qzeros, PackColumns(at::full({groups, out}, offset - 1, at::kInt), bits));
  t.scales = scale.to(at::kFloat).t().contiguous().to(at::kHalf);
  t.g_idx = at::floor_divide(at::arange(in, at::kInt), g).to(at::kInt);
  return t;
}

absl::StatusOr<at::Tensor> CodesOf(const at::Tensor& fake_quantized_weight, const at::Tensor& scale,
                                   int bits) {
  QUARRY_RETURN_IF_ERROR(CheckBits(bits, "codes"));
  const at::Tensor w = fake_quantized_weight.to(at::kFloat);
  if (w.dim() != 2 || scale.dim() != 2 || scale.size(0) != w.size(0) || scale.size(1) == 0 ||
      w.size(1) % scale.size(1) != 0)
    return absl::InvalidArgumentError(absl::StrCat("gptq codes: weight [out, in] and scale "
                                                   "[out, in/g] expected, got ", Shape(w), ", ",
                                                   Shape(scale)));
  const at::Tensor s = scale.to(at::kFloat).repeat_interleave(w.size(1) / scale.size(1), 1);
  at::Tensor q = at::where(s != 0, at::round(w / s), at::zeros_like(w));
  const int offset = CodeOffset(bits);
  if (q.numel() > 0 && (q.min().item<float>() < -offset || q.max().item<float>() > offset - 1))
    return absl::InternalError(absl::StrCat("gptq codes: a weight maps to a code outside int",
                                            bits, "'s range"));
  if (!at::equal(q * s, w))
    return absl::InternalError(absl::StrCat(
        "gptq codes: the weight is not on its quantizer's grid (q * s != w for ",
        (q * s != w).sum().item<int64_t>(), " of ", w.numel(), " weights)"));
  return q.to(at::kInt);
}

at::Tensor UnpackRows(const at::Tensor& packed, int bits) {
  // Word [r, o] bits j*bits.. hold row r*pack + j: shift each word by 0, bits, 2*bits, ... along
  // a new dim after the row dim, mask, and merge (r, j) into one row index.
  const int pack = PackFactor(bits);
  at::Tensor p = packed.to(at::kInt).contiguous();
  at::Tensor shifts = at::arange(0, 32, bits, at::kInt).view({1, pack, 1});
  at::Tensor v = at::bitwise_and(at::bitwise_right_shift(p.unsqueeze(1), shifts), (1 << bits) - 1);
  return v.reshape({p.size(0) * pack, p.size(1)}).contiguous();
}

at::Tensor UnpackColumns(const at::Tensor& packed, int bits) {
  // Word [r, c] bits j*bits.. hold column c*pack + j.
  const int pack = PackFactor(bits);
  at::Tensor p = packed.to(at::kInt).contiguous();
  at::Tensor shifts = at::arange(0, 32, bits, at::kInt).view({1, 1, pack});
  at::Tensor v = at::bitwise_and(at::bitwise_right_shift(p.unsqueeze(2), shifts), (1 << bits) - 1);
  return v.reshape({p.size(0), p.size(1) * pack}).contiguous();
}

absl::StatusOr<at::Tensor> Dequantize(const LinearTensors& t, int bits, int zero_offset,
                                      at::Tensor* codes, at::Tensor* stored_zeros) {
  if (bits != 2 && bits != 4 && bits != 8)
    return absl::InvalidArgumentError(
        absl::StrCat("gptq dequantize: bits ", bits, " (2, 4 and 8 are read)"));
  const int pack = PackFactor(bits);
  if (t.qweight.dim() != 2 || t.qzeros.dim() != 2 || t.scales.dim() != 2 || t.g_idx.dim() != 1 ||
      t.g_idx.size(0) != t.qweight.size(0) * pack || t.scales.size(1) != t.qweight.size(1) ||
      t.qzeros.size(0) != t.scales.size(0) || t.qzeros.size(1) * pack != t.scales.size(1))
    return absl::InvalidArgumentError(absl::StrCat(
        "gptq dequantize: inconsistent shapes qweight ", Shape(t.qweight), ", qzeros ",
        Shape(t.qzeros), ", scales ", Shape(t.scales), ", g_idx ", Shape(t.g_idx), " for ", bits,
        "-bit codes"));
  const at::Tensor gi = t.g_idx.to(at::kLong);
  if (gi.numel() > 0 &&
      (gi.min().item<int64_t>() < 0 || gi.max().item<int64_t>() >= t.scales.size(0)))
    return absl::InvalidArgumentError(absl::StrCat(
        "gptq dequantize: g_idx values ", gi.min().item<int64_t>(), "..", gi.max().item<int64_t>(),
        " outside the ", t.scales.size(0), " groups of scales ", Shape(t.scales)));
  at::Tensor q = UnpackRows(t.qweight, bits);                  // [in, out]
  at::Tensor z = UnpackColumns(t.qzeros, bits);                // [G, out], stored
  at::Tensor s = t.scales.to(at::kFloat);                      // exact widening
  at::Tensor zi = (z.index_select(0, gi) + zero_offset).to(at::kFloat);  // [in, out]
  at::Tensor si = s.index_select(0, gi);
  at::Tensor w = (q.to(at::kFloat) - zi) * si;                 // [in, out]
  if (codes) *codes = q;
  if (stored_zeros) *stored_zeros = z;
  return w.t().contiguous();
}

absl::StatusOr<PlanInfo> CheckPlan(const LayerPlan& plan, const Config& config,
                                   const ExportOptions& options) {
  if (!options.real_quantized)
    return absl::InvalidArgumentError(
        "export_format gptq writes packed codes only (qweight/qzeros/scales/g_idx); "
        "fake_quantized needs export_format quark");
  if (!config.kv_cache_quant_config.empty())
    return absl::InvalidArgumentError(
        "export_format gptq: kv_cache_quant_config is set; GPTQ checkpoints carry weight "
        "quantization only (no KV-cache scales); use export_format quark");
  if (plan.softmax_quant_spec)
    return absl::InvalidArgumentError(absl::StrCat(
        "export_format gptq: softmax_quant_spec ",
        DescribeSpecs(TensorSpecs(*plan.softmax_quant_spec)),
        " is set; GPTQ checkpoints carry weight quantization only; use export_format quark"));
  PlanInfo info;
  ReadAlgorithm(config, &info);
  const LayerPlanEntry* first = nullptr;
  for (const auto& e : plan.layers) {
    if (e.type != "Linear") continue;
    if (e.kv_cache)
      return absl::InvalidArgumentError(absl::StrCat(
          "export_format gptq: ", e.name, ": KV-cache output quantizer ",
          DescribeSpecs(e.config.output_tensors), " (", e.matched_rule,
          "); GPTQ checkpoints carry weight quantization only; use export_format quark"));
    if (e.config.input_tensors || e.config.output_tensors)
      return absl::InvalidArgumentError(absl::StrCat(
          "export_format gptq: ", e.name, ": activation quantizers (input ",
          DescribeSpecs(e.config.input_tensors), ", output ",
          DescribeSpecs(e.config.output_tensors),
          "): GPTQ is weight-only (W4A16 / W8A16); use export_format quark"));
    if (e.config.bias)
      return absl::InvalidArgumentError(absl::StrCat(
          "export_format gptq: ", e.name, ": bias quantizer ", DescribeSpecs(e.config.bias),
          ": GPTQ keeps biases in float; use export_format quark"));
    if (e.excluded || !e.config.weight) {
      info.modules_to_not_convert.push_back(e.name);
      continue;
    }
    QUARRY_RETURN_IF_ERROR(CheckWeightSpec(e));
    if (e.name == "lm_head" || absl::EndsWith(e.name, ".lm_head"))
      return Refuse(e, "GPTQ loaders keep lm_head in float (vLLM's GPTQMarlinConfig reads "
                       "lm_head false unless told, and Quarry writes lm_head false); exclude it");
    const QuantizationSpec& s = e.config.weight->front();
    const int bits = s.dtype == Dtype::kInt4 ? 4 : 8;
    const int g = s.qscheme == QSchemeType::kPerChannel ? -1 : *s.group_size;
    if (!first) {
      first = &e;
      info.bits = bits;
      info.group_size = g;
    } else if (bits != info.bits) {
      return Refuse(e, absl::StrCat("int", bits, " differs from ", first->name, "'s int",
                                    info.bits, "; a GPTQ checkpoint has one bits"));
    } else if (g != info.group_size) {
      return Refuse(e, absl::StrCat("group_size ", g, " differs from ", first->name, "'s ",
                                    info.group_size, " (-1: per-channel); a GPTQ checkpoint has "
                                    "one group_size"));
    }
    if (e.weight_shape.size() == 2) {
      const int pack = PackFactor(bits);
      const int64_t out = e.weight_shape[0], in = e.weight_shape[1];
      if (in % pack != 0)
        return Refuse(e, absl::StrCat("in_features ", in, " is not a multiple of ", pack,
                                      " (qweight packs ", pack, " input rows per int32)"));
      if (out % pack != 0)
        return Refuse(e, absl::StrCat("out_features ", out, " is not a multiple of ", pack,
                                      " (qzeros packs ", pack, " outputs per int32)"));
      if (g > 0 && in % g != 0)
        return Refuse(e, absl::StrCat("in_features ", in, " is not a multiple of group_size ", g));
      if (out % 64 != 0 || in % 128 != 0)
        info.warnings.push_back(absl::StrCat(
            "export_format gptq: ", e.name, " is [", out, ", ", in, "]; GPTQ-Marlin needs "
            "out_features % 64 == 0 and in_features % 128 == 0 per tensor-parallel shard "
            "(marlin_utils.py GPTQ_MARLIN_MIN_THREAD_N / _K); vLLM falls back to another kernel "
            "or refuses"));
    }
  }
  if (!first)
    return absl::InvalidArgumentError(
        "export_format gptq: no linear has a quantized weight; nothing to write as GPTQ");
  // Act-order without static groups: Quarry's GPTQ then computes each group's parameters when
  // the permuted column loop reaches it, so groups are sets of permuted columns and the job
  // keeps no per-group parameters for them (gptq.h WeightQuantResult::params). GPTQ v1 could
  // describe that through g_idx, but there is nothing to export.
  if (info.gptq_algorithm && info.act_order && !info.static_groups && info.group_size > 0)
    return absl::InvalidArgumentError(absl::StrCat(
        "export_format gptq: ", first->name, ": algo_config desc_act true with static_groups "
        "false: groups follow the act-order permutation and Quarry keeps no parameters for "
        "them; set static_groups true (Quark's export requires it too)"));
  if (info.group_size != -1 && info.group_size != 32 && info.group_size != 64 &&
      info.group_size != 128)
    info.warnings.push_back(absl::StrCat(
        "export_format gptq: group_size ", info.group_size, " is outside GPTQ-Marlin's -1/32/64/"
        "128 (marlin_utils.py MARLIN_SUPPORTED_GROUP_SIZES); vLLM falls back to its slower "
        "exllama GPTQ kernel or refuses"));
  for (const auto& n : info.modules_to_not_convert)
    for (const char* fused : {".q_proj", ".k_proj", ".v_proj", ".gate_proj", ".up_proj"})
      if (absl::EndsWith(n, fused))
        info.warnings.push_back(absl::StrCat(
            "export_format gptq: ", n, " is left in float, but vLLM fuses it with its siblings "
            "into one quantized linear; exclude the whole group or none of it"));
  return info;
}

nlohmann::json QuantizationConfig(const PlanInfo& info) {
  nlohmann::json q = nlohmann::json::object();
  q["bits"] = info.bits;
  q["checkpoint_format"] = "gptq";  // v1: qzeros stored minus one
  if (info.damp_percent) q["damp_percent"] = *info.damp_percent;
  // desc_act false even when GPTQ ran with act-order: Quarry's act-order always uses static
  // groups (CheckPlan refuses the other case), i.e. group k's scale is computed from original
  // columns k*g .. k*g+g-1 before the permuted column loop, and column i uses group i / g
  // whatever order it was quantized in. The groups are contiguous in the original column order,
  // so g_idx is i / g, no reordering is needed at load, and a loader told desc_act true would
  // only take its act-order path for nothing (Marlin sorts g_idx and permutes the input per
  // call; under tensor parallelism it must replicate the row-parallel scales).
  q["desc_act"] = false;
  q["group_size"] = info.group_size;
  q["lm_head"] = false;
  q["quant_method"] = "gptq";
  q["static_groups"] = info.static_groups;
  q["sym"] = true;
  if (info.gptq_algorithm) q["true_sequential"] = true;  // hessian_algorithms.cc: groups in order
  return q;
}

}  // namespace quarry::exporter::gptq
