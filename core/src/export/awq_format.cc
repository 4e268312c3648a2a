// AutoAWQ "GEMM" layout: packing, reader, plan check, quantization_config (see awq_format.h).
#include "export/awq_format.h"

#include <cmath>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "quarry/status.h"

namespace quarry::exporter::awq {
namespace {

constexpr double kFp16Max = 65504.0;

std::string Shape(const at::Tensor& t) {
  return absl::StrCat("[", absl::StrJoin(t.sizes(), ", "), "]");
}

std::string Where(const LayerPlanEntry& e, const char* what) {
  return absl::StrCat(e.name, ": ", what, " ", DescribeSpecs(e.config.weight));
}

absl::Status Refuse(const LayerPlanEntry& e, const std::string& reason) {
  return absl::InvalidArgumentError(
      absl::StrCat("export_format awq: ", Where(e, "weight"), ": ", reason));
}

absl::Status CheckWeightSpec(const LayerPlanEntry& e) {
  const TensorSpecs& specs = *e.config.weight;
  if (specs.specs.size() != 1)
    return Refuse(e, "two-stage weight specs have no AWQ layout (AWQ stores one float16 scale "
                     "and one uint4 zero point per group)");
  const QuantizationSpec& s = specs.front();
  if (s.dtype == Dtype::kInt4 || (s.dtype == Dtype::kUint4 && s.symmetric.value_or(true)))
    return Refuse(e, "vLLM's AWQ path reads unsigned nibbles with zero points; use uint4 "
                     "asymmetric (e.g. preset uint4_wo_128) or export_format quark");
  if (s.dtype != Dtype::kUint4)
    return Refuse(e, "AWQ stores uint4 weights only (bits 4); use uint4 asymmetric per_group "
                     "(e.g. preset uint4_wo_128) or export_format quark");
  if (s.qscheme != QSchemeType::kPerGroup || s.group_size.value_or(0) <= 0)
    return Refuse(e, "AWQ quantizes per group of input columns; use qscheme per_group with a "
                     "group_size (e.g. preset uint4_wo_128)");
  const int axis = s.ch_axis.value_or(-1);
  if (axis != 1 && axis != -1)
    return Refuse(e, absl::StrCat("ch_axis ", axis, ": AWQ groups run along the input dim "
                                  "(ch_axis 1 or -1 of the [out, in] weight)"));
  if (s.is_dynamic.value_or(false))
    return Refuse(e, "dynamic weight quantization has no stored scales; use is_dynamic false");
  if (s.zero_point_type && *s.zero_point_type != ZeroPointType::kInt32)
    return Refuse(e, "AWQ stores integer zero points (qzeros); use zero_point_type int32");
  if (s.scale_type == ScaleType::kPof2)
    return Refuse(e, "power-of-two scales are fine as values but not what AWQ loaders expect; "
                     "use scale_type float");
  if (s.scale_format && *s.scale_format != "float32" && *s.scale_format != "float16")
    return Refuse(e, absl::StrCat("scale_format ", *s.scale_format,
                                  ": AWQ stores float16 scales"));
  if (s.is_scale_quant) return Refuse(e, "quantized scales have no AWQ layout");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<at::Tensor> PackColumns(const at::Tensor& v) {
  if (v.dim() != 2)
    return absl::InvalidArgumentError(absl::StrCat("awq pack: expected a 2-D tensor, got ",
                                                   v.dim(), "-D"));
  const int64_t rows = v.size(0), cols = v.size(1);
  if (cols % 8 != 0)
    return absl::InvalidArgumentError(
        absl::StrCat("awq pack: ", cols, " columns is not a multiple of 8 (AWQ packs eight "
                     "output channels per int32)"));
  at::Tensor c = (v.is_floating_point() ? v.round() : v).to(at::kInt).contiguous();
  const int32_t* src = c.data_ptr<int32_t>();
  at::Tensor out = at::zeros({rows, cols / 8}, at::kInt);
  int32_t* dst = out.data_ptr<int32_t>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t w = 0; w < cols / 8; ++w) {
      uint32_t word = 0;
      for (int j = 0; j < 8; ++j) {
        const int64_t col = w * 8 + kAwqOrder[j];
        const int32_t q = src[r * cols + col];
        if (q < 0 || q > 15)
          return absl::InvalidArgumentError(absl::StrCat(
              "awq pack: value ", q, " at [", r, ", ", col, "] is outside uint4's 0..15"));
        word |= static_cast<uint32_t>(q) << (4 * j);
      }
      dst[r * (cols / 8) + w] = static_cast<int32_t>(word);
    }
  }
  return out;
}

absl::StatusOr<GemmTensors> PackGemm(const at::Tensor& codes, const at::Tensor& zero_point,
                                     const at::Tensor& scale) {
  if (codes.dim() != 2 || zero_point.dim() != 2 || scale.dim() != 2 ||
      zero_point.sizes() != scale.sizes() || scale.size(0) != codes.size(0) ||
      scale.size(1) == 0 || codes.size(1) % scale.size(1) != 0)
    return absl::InvalidArgumentError(absl::StrCat(
        "awq pack: codes [out, in], zero_point and scale [out, in/g] expected, got ",
        Shape(codes), ", ", Shape(zero_point), ", ",
        Shape(scale)));
  const double max_abs = scale.abs().max().item<double>();
  if (!(max_abs <= kFp16Max))
    return absl::InvalidArgumentError(absl::StrCat(
        "awq pack: a scale of magnitude ", max_abs, " does not fit float16 (max 65504)"));
  GemmTensors t;
  QUARRY_ASSIGN_OR_RETURN(t.qweight, PackColumns(codes.t()));
  QUARRY_ASSIGN_OR_RETURN(t.qzeros, PackColumns(zero_point.t()));
  t.scales = scale.to(at::kFloat).t().contiguous().to(at::kHalf);
  return t;
}

at::Tensor UnpackColumns(const at::Tensor& packed) {
  // AutoAWQ unpack_awq: nibble k of every word (shift 4k) becomes column 8w + k ...
  at::Tensor p = packed.to(at::kInt).contiguous();
  at::Tensor shifts = at::arange(0, 32, 4, at::kInt);
  at::Tensor nib = at::bitwise_and(at::bitwise_right_shift(p.unsqueeze(-1), shifts), 0xF);
  nib = nib.reshape({p.size(0), -1});
  // ... then reverse_awq_order: logical column k of a group of eight is nibble
  // AWQ_REVERSE_ORDER[k].
  at::Tensor rev = at::arange(nib.size(1), at::kLong).view({-1, 8});
  at::Tensor order = at::tensor(std::vector<int64_t>(std::begin(kAwqReverseOrder),
                                                     std::end(kAwqReverseOrder)),
                                at::kLong);
  rev = rev.index_select(1, order).reshape(-1);
  return nib.index_select(1, rev).contiguous();
}

absl::StatusOr<at::Tensor> DequantizeGemm(const GemmTensors& t, int64_t group_size,
                                          at::Tensor* codes, at::Tensor* zero_points) {
  if (group_size <= 0 || t.qweight.dim() != 2 || t.qzeros.dim() != 2 || t.scales.dim() != 2 ||
      t.qweight.size(0) != t.qzeros.size(0) * group_size ||
      t.scales.size(0) != t.qzeros.size(0) || t.scales.size(1) != t.qweight.size(1) * 8 ||
      t.qzeros.size(1) != t.qweight.size(1))
    return absl::InvalidArgumentError(absl::StrCat(
        "awq dequantize: inconsistent shapes qweight ", Shape(t.qweight),
        ", qzeros ", Shape(t.qzeros), ", scales ", Shape(t.scales),
        " for group size ", group_size));
  at::Tensor q = UnpackColumns(t.qweight);                     // [in, out]
  at::Tensor z = UnpackColumns(t.qzeros);                      // [in/g, out]
  at::Tensor s = t.scales.to(at::kFloat);                      // exact widening
  at::Tensor zr = z.repeat_interleave(group_size, 0).to(at::kFloat);
  at::Tensor sr = s.repeat_interleave(group_size, 0);
  at::Tensor w = (q.to(at::kFloat) - zr) * sr;                 // [in, out]
  if (codes) *codes = q;
  if (zero_points) *zero_points = z;
  return w.t().contiguous();
}

absl::StatusOr<PlanInfo> CheckPlan(const LayerPlan& plan, const Config& config,
                                   const ExportOptions& options) {
  if (!options.real_quantized)
    return absl::InvalidArgumentError(
        "export_format awq writes packed codes only (qweight/qzeros/scales); fake_quantized "
        "needs export_format quark");
  if (!config.kv_cache_quant_config.empty())
    return absl::InvalidArgumentError(
        "export_format awq: kv_cache_quant_config is set; AWQ checkpoints carry weight "
        "quantization only (no KV-cache scales); use export_format quark");
  if (plan.softmax_quant_spec)
    return absl::InvalidArgumentError(absl::StrCat(
        "export_format awq: softmax_quant_spec ", DescribeSpecs(TensorSpecs(*plan.softmax_quant_spec)),
        " is set; AWQ checkpoints carry weight quantization only; use export_format quark"));
  PlanInfo info;
  const LayerPlanEntry* first = nullptr;
  for (const auto& e : plan.layers) {
    if (e.type != "Linear") continue;
    if (e.kv_cache)
      return absl::InvalidArgumentError(absl::StrCat(
          "export_format awq: ", e.name, ": KV-cache output quantizer ",
          DescribeSpecs(e.config.output_tensors), " (", e.matched_rule,
          "); AWQ checkpoints carry weight quantization only; use export_format quark"));
    if (e.config.input_tensors || e.config.output_tensors)
      return absl::InvalidArgumentError(absl::StrCat(
          "export_format awq: ", e.name, ": activation quantizers (input ",
          DescribeSpecs(e.config.input_tensors), ", output ", DescribeSpecs(e.config.output_tensors),
          "): AWQ is weight-only (W4A16); use export_format quark"));
    if (e.config.bias)
      return absl::InvalidArgumentError(absl::StrCat(
          "export_format awq: ", e.name, ": bias quantizer ", DescribeSpecs(e.config.bias),
          ": AWQ keeps biases in float; use export_format quark"));
    if (e.excluded || !e.config.weight) {
      info.modules_to_not_convert.push_back(e.name);
      continue;
    }
    QUARRY_RETURN_IF_ERROR(CheckWeightSpec(e));
    if (e.name == "lm_head" || absl::EndsWith(e.name, ".lm_head"))
      return Refuse(e, "AWQ loaders keep lm_head in float (vLLM's AWQConfig quantizes "
                       "LinearBase layers only, its lm_head is a ParallelLMHead); exclude it");
    const int g = *e.config.weight->front().group_size;
    if (!first) {
      first = &e;
      info.group_size = g;
    } else if (g != info.group_size) {
      return Refuse(e, absl::StrCat("group_size ", g, " differs from ", first->name, "'s ",
                                    info.group_size, "; an AWQ checkpoint has one group_size"));
    }
    if (e.weight_shape.size() == 2) {
      if (e.weight_shape[0] % 8 != 0)
        return Refuse(e, absl::StrCat("out_features ", e.weight_shape[0],
                                      " is not a multiple of 8 (AWQ packs 8 outputs per int32)"));
      if (e.weight_shape[1] % g != 0)
        return Refuse(e, absl::StrCat("in_features ", e.weight_shape[1],
                                      " is not a multiple of group_size ", g));
    }
  }
  if (!first)
    return absl::InvalidArgumentError(
        "export_format awq: no linear has a quantized weight; nothing to write as AWQ");
  if (info.group_size != 32 && info.group_size != 64 && info.group_size != 128)
    info.warnings.push_back(absl::StrCat(
        "export_format awq: group_size ", info.group_size, " is outside vLLM's AWQ kernels' "
        "32/64/128 (awq_triton.py AWQ_TRITON_SUPPORTED_GROUP_SIZES); loaders may refuse it"));
  // vLLM fuses q/k/v and gate/up and matches modules_to_not_convert by substring of the fused
  // module's name (awq.py is_layer_skipped_awq), so an excluded member of a fused group is not
  // seen as excluded there.
  for (const auto& n : info.modules_to_not_convert)
    for (const char* fused : {".q_proj", ".k_proj", ".v_proj", ".gate_proj", ".up_proj"})
      if (absl::EndsWith(n, fused))
        info.warnings.push_back(absl::StrCat(
            "export_format awq: ", n, " is left in float, but vLLM fuses it with its siblings "
            "and matches modules_to_not_convert by the fused name; exclude the whole group or "
            "none of it"));
  return info;
}

nlohmann::json QuantizationConfig(const PlanInfo& info) {
  nlohmann::json q = nlohmann::json::object();
  q["bits"] = 4;
  q["group_size"] = info.group_size;
  q["modules_to_not_convert"] = info.modules_to_not_convert.empty()
                                    ? nlohmann::json(nullptr)
                                    : nlohmann::json(info.modules_to_not_convert);
  q["quant_method"] = "awq";
  q["version"] = "gemm";
  q["zero_point"] = true;
  return q;
}

void ScaleRounding::Add(const ScaleRounding& o) {
  weights += o.weights;
  changed += o.changed;
  max_rel_change = std::max(max_rel_change, o.max_rel_change);
  err_sq += o.err_sq;
  ref_sq += o.ref_sq;
}

std::string ScaleRounding::Describe(const std::string& format) const {
  return absl::StrFormat(
      "export_format %s: scales are stored as float16 (%s's layout; the job used float32): "
      "%d of %d quantized weights (%.2f%%) dequantize to a slightly different value, relative "
      "change at most %.3g (float16 rounding bound 2^-11 = 4.88e-4 for scales >= 2^-14), "
      "relative RMS change of the weights %.3g; scale_type float16 in the spec makes the export "
      "exact",
      format, absl::AsciiStrToUpper(format), changed, weights, weights ? 100.0 * changed / weights : 0.0, max_rel_change,
      ref_sq > 0 ? std::sqrt(err_sq / ref_sq) : 0.0);
}

ScaleRounding MeasureScaleRounding(const at::Tensor& fake_quantized_weight,
                                   const at::Tensor& scale) {
  ScaleRounding r;
  at::Tensor w = fake_quantized_weight.to(at::kFloat);
  at::Tensor s = scale.to(at::kFloat);
  const int64_t out = w.size(0), groups = s.size(1);
  w = w.reshape({out, groups, -1});                                   // [out, G, g]
  at::Tensor s16 = s.to(at::kHalf).to(at::kFloat);
  at::Tensor rel = ((s16 - s).abs() / s.abs()).nan_to_num(0.0, 0.0, 0.0);  // [out, G]
  at::Tensor differs = (s16 != s).unsqueeze(-1);
  at::Tensor nonzero = w != 0;
  at::Tensor changed = at::logical_and(nonzero, differs);
  r.weights = w.numel();
  r.changed = changed.sum().item<int64_t>();
  if (r.changed > 0)
    r.max_rel_change = at::where(changed, rel.unsqueeze(-1).expand_as(w), at::zeros_like(w))
                           .max().item<double>();
  // (q - z) * (s16 - s) = w * (s16 / s - 1).
  at::Tensor ratio = (s16 / s - 1).nan_to_num(0.0, 0.0, 0.0).unsqueeze(-1);
  r.err_sq = (w * ratio).to(at::kDouble).square().sum().item<double>();
  r.ref_sq = w.to(at::kDouble).square().sum().item<double>();
  return r;
}

}  // namespace quarry::exporter::awq
