// Quark's Hugging Face export format. Per quantized linear (weight [out, in]):
//
//   spec (single stage)            weight                         weight_scale      weight_zero_point
//   int4/uint4 per_group (axis 1)  int32 [in, out/8] (transposed, float32 [in/g,out] int32 [in/g, out/8]
//                                  packed along out, pack_method)
//   int8/uint8 per_group           int8/uint8 [in, out] (transp.) float32 [in/g,out] int8/uint8 [in/g,out]
//   int4/uint4 per_channel (ax 0)  int32 [out, in/8]              float32 [out]     int32 [ceil(out/8)]
//   int8/uint8 per_channel         int8/uint8 [out, in]           float32 [out]     int8/uint8 [out]
//   int* per_tensor                as per_channel                 float32 []        scalar
//   fp8_e4m3 / fp8_e5m2            F8_E4M3 / F8_E5M2 [out, in]    float32 [] or [out] (none)
//   fp4 / fp6 per_group, e8m0      uint8 [out, in/2] / [out, 3in/4] uint8 E8M0 [out, in/32]
//   fp4 / fp6 per_group, float32   same packing                   float32 [out, in/g]
//   mx (int8 elements)             int8 [out, in]                 uint8 E8M0 [out, in/32]
// int3 / int2 use quarry/packing.h's layouts (vLLM loads neither). Zero points are written for
// every integer dtype, symmetric included (all zeros), as Quark does. Scales are float32
// (Quark keeps the observed tensor's dtype; vLLM converts on load either way).
// MX6 / MX9 / BFP16 (Quark cannot export them either) and two-stage specs are written
// fake-quantized: float32 weights on the quantization grid plus each stage's scale (stage i > 0
// with the suffix _{i+1}, Quark's convention), and a warning says so.
// fake_quantized: float32 weights on the grid, scales / zero points unpacked and untransposed.
// Static activation quantizers add input_scale / input_zero_point and output_scale /
// output_zero_point (the KV cache: k_proj / v_proj output_scale).
// ExportOptions::format kAwq: AutoAWQ's GEMM layout for the quantized linears instead
// (awq_format.h); kGptq: GPTQ v1's (gptq_format.h); everything else (unquantized linears,
// norms, embeddings) as above.
#include "export/quark_export.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "config/json_internal.h"
#include "numerics/kernels/transposed_codes.h"
#include "numerics/plan.h"
#include "quarry/packing.h"
#include "quarry/quantize.h"
#include "quarry/status.h"
#include "quarry/tensor_io.h"

namespace quarry::exporter {
namespace {

namespace fs = std::filesystem;
using internal::Json;

bool IsSubByteInt(Dtype d) { return d == Dtype::kInt4 || d == Dtype::kUint4; }

// Packs int4/uint4 codes [..., n] (int32 values) along the last dim into int32 words.
at::Tensor PackInt4Codes(const at::Tensor& codes, PackOrder order) {
  at::Tensor c = codes.to(at::kInt).contiguous();
  const int64_t n = c.size(-1);
  const int64_t rows = c.numel() / std::max<int64_t>(n, 1);
  const int64_t words = (n + 7) / 8;
  std::vector<int64_t> shape(c.sizes().begin(), c.sizes().end());
  shape.back() = words;
  at::Tensor out = at::zeros(shape, at::kInt);
  const int32_t* src = c.data_ptr<int32_t>();
  int32_t* dst = out.data_ptr<int32_t>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t w = 0; w < words; ++w) {
      int32_t group[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int k = 0; k < 8 && w * 8 + k < n; ++k) group[k] = src[r * n + w * 8 + k];
      dst[r * words + w] = static_cast<int32_t>(packing::PackInt4Word(group, order));
    }
  }
  return out;
}

at::Tensor ZeroPointAs(const at::Tensor& zp, Dtype dtype, PackOrder order) {
  if (!zp.defined()) return zp;
  if (zp.is_floating_point()) return zp.to(at::kFloat);
  if (dtype == Dtype::kInt8) return zp.to(at::kChar);
  if (dtype == Dtype::kUint8) return zp.to(at::kByte);
  if (IsSubByteInt(dtype)) {
    if (zp.dim() == 0) return zp.to(at::kInt);  // Quark: a 0-dim tensor is just cast to int32
    return PackInt4Codes(zp, order);
  }
  return zp.to(at::kInt);
}

// Codes of the stage's integer zero point must be integral when packed.
}  // namespace

absl::StatusOr<std::unique_ptr<QuarkExporter>> QuarkExporter::Create(const std::string& out_dir,
                                                                      const ExportOptions& options,
                                                                      model::CausalLM* source,
                                                                      const Config& config,
                                                                      const LayerPlan& plan) {
  std::unique_ptr<QuarkExporter> e(new QuarkExporter());
  e->out_dir_ = out_dir;
  e->options_ = options;
  e->source_ = source;
  e->config_ = config;
  for (const auto& l : plan.layers)
    if (l.excluded && l.type == "Linear") e->excluded_.push_back(l.name);
  if (options.format == ExportFormat::kAwq) {
    // Before any work: a plan AWQ's layout cannot hold fails here, naming the layer.
    QUARRY_ASSIGN_OR_RETURN(e->awq_, awq::CheckPlan(plan, config, options));
    e->warnings_ = e->awq_->warnings;
    QUARRY_ASSIGN_OR_RETURN(Json original, internal::ReadJsonFile(source->dir() + "/config.json"));
    const std::string dtype = original.value("torch_dtype", std::string("float32"));
    if (dtype != "float16")
      e->warnings_.push_back(absl::StrCat(
          "export_format awq: config.json says torch_dtype float16 (was ", dtype,
          "): vLLM's AWQ kernels run float16 activations only (AWQConfig."
          "get_supported_act_dtypes) and refuse a ", dtype, " model; unquantized tensors keep "
          "the checkpoint's dtype and are cast on load"));
  }
  if (options.format == ExportFormat::kGptq) {
    // Before any work: a plan GPTQ's layout cannot hold fails here, naming the layer.
    QUARRY_ASSIGN_OR_RETURN(e->gptq_, gptq::CheckPlan(plan, config, options));
    e->warnings_ = e->gptq_->warnings;
    // torch_dtype stays the checkpoint's: GPTQ-Marlin runs float16 and bfloat16 activations
    // (gptq_marlin.py GPTQMarlinConfig.get_supported_act_dtypes), and a bfloat16-trained model
    // may overflow in float16. vLLM allocates `scales` in the model dtype, though, so a bfloat16
    // model holds the float16 scales rounded once more to bfloat16 at load.
    QUARRY_ASSIGN_OR_RETURN(Json original, internal::ReadJsonFile(source->dir() + "/config.json"));
    const std::string dtype = original.value("torch_dtype", std::string("float32"));
    if (dtype == "bfloat16")
      e->warnings_.push_back(
          "export_format gptq: torch_dtype stays bfloat16 (GPTQ-Marlin runs bfloat16 "
          "activations); vLLM then holds the float16 scales in bfloat16 (a further relative "
          "rounding of up to 2^-9); serve with --dtype float16 to use the exported scales as "
          "they are");
  }
  SafetensorsWriter::Options wo;
  wo.basename = "model";
  wo.max_shard_bytes = options.max_shard_bytes;
  QUARRY_ASSIGN_OR_RETURN(e->writer_, SafetensorsWriter::Create(out_dir, wo));
  return e;
}

absl::Status QuarkExporter::AddTensor(const std::string& name, const at::Tensor& t,
                                      std::optional<StDtype> as) {
  return ::quarry::AddTensor(*writer_, name, t, as);
}

absl::Status QuarkExporter::AddOriginal(const std::string& name) {
  QUARRY_ASSIGN_OR_RETURN(const StTensorInfo* info, source_->weights().Info(name));
  QUARRY_ASSIGN_OR_RETURN(auto bytes, source_->weights().Bytes(name));
  return writer_->Add(name, info->dtype, info->shape, bytes);
}

absl::Status QuarkExporter::AddChanged(const std::string& name, const at::Tensor& value) {
  // float32 even where the checkpoint is bf16/f16: a folded scale rounded to bf16 would make the
  // exported model differ from the one the job evaluated (Quark stores the model dtype; engines
  // cast parameters to the model dtype on load either way).
  return AddTensor(name, value.to(at::kFloat).contiguous());
}

absl::Status QuarkExporter::AddParam(const std::string& name, const at::Tensor& value,
                                     bool changed) {
  if (changed) return AddChanged(name, value);
  if (source_->weights().Contains(name)) return AddOriginal(name);
  return AddTensor(name, value);
}

absl::Status QuarkExporter::AddLinear(const model::QLinear& l, const LayerPlanEntry& entry) {
  const std::string& p = l.name;
  const bool has_bias = l.float_bias.defined();
  const std::string wname = p + ".weight", bname = p + ".bias";
  if (!l.weight_q) {
    // Not quantized: the original tensors (a tied lm_head is skipped by the caller), or the
    // float weights an algorithm scaled.
    if (l.float_changed) {
      QUARRY_RETURN_IF_ERROR(AddChanged(wname, l.float_weight));
    } else if (source_->weights().Contains(wname)) {
      QUARRY_RETURN_IF_ERROR(AddOriginal(wname));
    } else {
      QUARRY_RETURN_IF_ERROR(AddTensor(wname, l.float_weight));
    }
  } else if (awq_) {
    QUARRY_RETURN_IF_ERROR(AddAwqWeight(l));
  } else if (gptq_) {
    QUARRY_RETURN_IF_ERROR(AddGptqWeight(l));
  } else {
    const auto& stages = l.weight_q->stages();
    const QuantizationSpec& spec = stages.front();
    const PackOrder order = options_.pack_reorder ? PackOrder::kReorder : PackOrder::kOrder;
    const bool fake_only = !options_.real_quantized || stages.size() > 1 ||
                           spec.dtype == Dtype::kMx6 || spec.dtype == Dtype::kMx9 ||
                           spec.dtype == Dtype::kBfp16 || IsCastDtype(spec.dtype);
    if (options_.real_quantized && fake_only && !warned_fake_) {
      warnings_.push_back(absl::StrCat(
          p, ": ", stages.size() > 1 ? "two-stage specs" : std::string(Name(spec.dtype)),
          " have no real-quantized layout in Quark's format; weights are written fake-quantized "
          "(float32 values on the quantization grid)"));
      warned_fake_ = true;
    }
    // mx6/mx9/bfp16 quantizers are dynamic (no stored scales): they are always fake_only.
    if (!l.weight_q->params() && !(fake_only && l.weight_q->is_dynamic()))
      return absl::InternalError(absl::StrCat(p, ": weight quantizer not frozen"));
    if (fake_only) {
      QUARRY_RETURN_IF_ERROR(AddTensor(wname, l.weight.to(at::kFloat)));
      const auto& all = l.weight_q->stage_params();
      for (size_t i = 0; i < all.size(); ++i) {
        const std::string suffix = i == 0 ? "" : absl::StrCat("_", i + 1);
        if (all[i].scale.defined())
          QUARRY_RETURN_IF_ERROR(AddTensor(absl::StrCat(p, ".weight_scale", suffix), all[i].scale));
        if (all[i].zero_point.defined() && IsIntegerDtype(stages[i].dtype))
          QUARRY_RETURN_IF_ERROR(AddTensor(absl::StrCat(p, ".weight_zero_point", suffix),
                                           all[i].zero_point.is_floating_point()
                                               ? all[i].zero_point.to(at::kFloat)
                                               : all[i].zero_point.to(at::kInt)));
      }
    } else {
      const QuantParams& params = *l.weight_q->params();
      const bool int_group = IsIntegerDtype(spec.dtype) && spec.qscheme == QSchemeType::kPerGroup;
      if (int_group) {
        // Quark transposes per-group integer weights to [in, out] and packs along out.
        QuantizationSpec t = spec;
        t.ch_axis = 0;
        QuantParams tp;
        tp.scale = params.scale.t().contiguous();
        if (params.zero_point.defined()) tp.zero_point = params.zero_point.t().contiguous();
        // Fast path (threaded, tiled, no transposed copy); the reference path for the rest.
        at::Tensor data;
        const int axis = spec.ch_axis.value_or(-1);
        if (stages.size() == 1 && spec.group_size.value_or(0) > 0 && (axis == 1 || axis == -1)) {
          QUARRY_ASSIGN_OR_RETURN(const numerics::QuantPlan plan, numerics::MakePlan(spec));
          at::Tensor zp = params.zero_point.defined()
                              ? params.zero_point.to(at::kFloat).contiguous() : at::Tensor();
          data = numerics::kernels::TransposedGroupCodes(
              plan, l.quant_input.to(at::kFloat).contiguous(),
              params.scale.to(at::kFloat).contiguous(), zp, *spec.group_size, order);
        }
        if (!data.defined()) {
          QUARRY_ASSIGN_OR_RETURN(QuantizedTensor q, Quantize(l.quant_input.t().contiguous(), t, tp, order));
          data = q.data;
        }
        QUARRY_RETURN_IF_ERROR(AddTensor(wname, data));
        QUARRY_RETURN_IF_ERROR(AddTensor(p + ".weight_scale", tp.scale.to(at::kFloat)));
        if (tp.zero_point.defined())
          QUARRY_RETURN_IF_ERROR(AddTensor(p + ".weight_zero_point", ZeroPointAs(tp.zero_point, spec.dtype, order)));
      } else {
        QUARRY_ASSIGN_OR_RETURN(QuantizedTensor q, Quantize(l.quant_input, spec, params, order));
        std::optional<StDtype> as;
        if (spec.dtype == Dtype::kFp8E4M3 && q.data.scalar_type() == at::kByte) as = StDtype::kF8E4M3;
        if (spec.dtype == Dtype::kFp8E5M2 && q.data.scalar_type() == at::kByte) as = StDtype::kF8E5M2;
        QUARRY_RETURN_IF_ERROR(AddTensor(wname, q.data, as));
        QUARRY_RETURN_IF_ERROR(AddTensor(p + ".weight_scale", q.params.scale.scalar_type() == at::kByte
                                                                  ? q.params.scale
                                                                  : q.params.scale.to(at::kFloat)));
        if (IsIntegerDtype(spec.dtype)) {
          at::Tensor zp = q.params.zero_point.defined() ? q.params.zero_point
                                                        : at::zeros_like(q.params.scale, at::kInt);
          QUARRY_RETURN_IF_ERROR(AddTensor(p + ".weight_zero_point", ZeroPointAs(zp, spec.dtype, order)));
        }
      }
    }
  }
  if (has_bias) {
    if (l.bias_q && l.bias_q->params()) {
      QUARRY_RETURN_IF_ERROR(AddTensor(bname, l.bias.to(at::kFloat)));
      QUARRY_RETURN_IF_ERROR(AddTensor(p + ".bias_scale", l.bias_q->params()->scale));
      if (l.bias_q->params()->zero_point.defined())
        QUARRY_RETURN_IF_ERROR(AddTensor(p + ".bias_zero_point", l.bias_q->params()->zero_point));
    } else if (l.float_changed) {
      QUARRY_RETURN_IF_ERROR(AddChanged(bname, l.float_bias));
    } else if (source_->weights().Contains(bname)) {
      QUARRY_RETURN_IF_ERROR(AddOriginal(bname));
    } else {
      QUARRY_RETURN_IF_ERROR(AddTensor(bname, l.float_bias));
    }
  }
  QUARRY_RETURN_IF_ERROR(AddQuantizerParams(p, "input", l.input_q.get()));
  QUARRY_RETURN_IF_ERROR(AddQuantizerParams(p, "output", l.output_q.get()));
  (void)entry;
  return absl::OkStatus();
}

absl::Status QuarkExporter::AddAwqWeight(const model::QLinear& l) {
  const std::string& p = l.name;
  const auto& stages = l.weight_q->stages();
  if (stages.size() != 1 || !l.weight_q->params() || !l.weight_q->params()->zero_point.defined())
    return absl::InternalError(absl::StrCat(p, ": weight quantizer not frozen with zero points "
                                            "(the plan check admits only uint4 asymmetric)"));
  const QuantizationSpec& spec = stages.front();
  const QuantParams& params = *l.weight_q->params();
  const int64_t g = *spec.group_size;
  at::Tensor scale = params.scale.to(at::kFloat).contiguous();       // [out, G]
  at::Tensor zp = params.zero_point.to(at::kFloat).contiguous();     // [out, G]
  if (!at::equal(zp, zp.round()))
    return absl::InternalError(absl::StrCat(p, ": non-integral uint4 zero points"));
  const double max_scale = scale.abs().max().item<double>();
  if (!(max_scale <= 65504.0))
    return absl::InvalidArgumentError(absl::StrCat(
        "export_format awq: ", p, ": a weight scale of ", max_scale, " overflows float16 "
        "(max 65504), which AWQ stores scales in; use export_format quark"));
  // qweight: the codes transposed to [in, out], packed along out in Quark's "reorder" order,
  // which is AWQ's order map (static_assert in awq_format.h); the fast kernel when it applies.
  QUARRY_ASSIGN_OR_RETURN(const numerics::QuantPlan plan, numerics::MakePlan(spec));
  at::Tensor qweight = numerics::kernels::TransposedGroupCodes(
      plan, l.quant_input.to(at::kFloat).contiguous(), scale, zp, g, PackOrder::kReorder);
  if (!qweight.defined()) {
    QuantizationSpec t = spec;
    t.ch_axis = 0;
    QuantParams tp;
    tp.scale = scale.t().contiguous();
    tp.zero_point = zp.t().contiguous();
    QUARRY_ASSIGN_OR_RETURN(QuantizedTensor q, Quantize(l.quant_input.to(at::kFloat).t().contiguous(),
                                                        t, tp, PackOrder::kReorder));
    qweight = q.data;
  }
  QUARRY_ASSIGN_OR_RETURN(at::Tensor qzeros, awq::PackColumns(zp.t()));
  awq_rounding_.Add(awq::MeasureScaleRounding(l.weight, scale));
  QUARRY_RETURN_IF_ERROR(AddTensor(p + ".qweight", qweight.to(at::kInt).contiguous()));
  QUARRY_RETURN_IF_ERROR(AddTensor(p + ".qzeros", qzeros));
  return AddTensor(p + ".scales", scale.t().contiguous().to(at::kHalf));
}

absl::Status QuarkExporter::AddGptqWeight(const model::QLinear& l) {
  const std::string& p = l.name;
  if (l.weight_q->stages().size() != 1 || !l.weight_q->params())
    return absl::InternalError(absl::StrCat(p, ": weight quantizer not frozen (the plan check "
                                            "admits only single-stage static int4/int8)"));
  const QuantParams& params = *l.weight_q->params();
  const int64_t out = l.weight.size(0);
  // per_group [out, G]; per_channel [out] -> one group spanning in.
  at::Tensor scale = params.scale.to(at::kFloat).reshape({out, -1}).contiguous();
  if (params.zero_point.defined() && params.zero_point.to(at::kFloat).abs().max().item<double>() != 0)
    return absl::InternalError(absl::StrCat(p, ": nonzero zero points in a symmetric spec"));
  const double max_scale = scale.abs().max().item<double>();
  if (!(max_scale <= 65504.0))
    return absl::InvalidArgumentError(absl::StrCat(
        "export_format gptq: ", p, ": a weight scale of ", max_scale, " overflows float16 "
        "(max 65504), which GPTQ stores scales in; use export_format quark"));
  // The codes of the job's own fake-quantized weight (q * s, exactly: CodesOf checks it), so the
  // file holds what the job evaluated, up to the float16 scales counted below.
  QUARRY_ASSIGN_OR_RETURN(at::Tensor codes, gptq::CodesOf(l.weight, scale, gptq_->bits));
  QUARRY_ASSIGN_OR_RETURN(gptq::LinearTensors t, gptq::PackLinear(codes, scale, gptq_->bits));
  awq_rounding_.Add(awq::MeasureScaleRounding(l.weight, scale));
  QUARRY_RETURN_IF_ERROR(AddTensor(p + ".qweight", t.qweight));
  QUARRY_RETURN_IF_ERROR(AddTensor(p + ".qzeros", t.qzeros));
  QUARRY_RETURN_IF_ERROR(AddTensor(p + ".scales", t.scales));
  return AddTensor(p + ".g_idx", t.g_idx);
}

std::vector<std::string> QuarkExporter::warnings() const {
  std::vector<std::string> w = warnings_;
  if (awq_ && awq_rounding_.weights > 0) w.push_back(awq_rounding_.Describe("awq"));
  if (gptq_ && awq_rounding_.weights > 0) w.push_back(awq_rounding_.Describe("gptq"));
  return w;
}

absl::Status QuarkExporter::AddQuantizerParams(const std::string& module, const std::string& what,
                                               const TensorQuantizer* q) {
  if (q == nullptr || q->is_dynamic()) return absl::OkStatus();
  if (!q->params())
    return absl::InternalError(absl::StrCat(module, ": ", what, " quantizer not frozen"));
  const auto& params = *q->params();
  const Dtype d = q->stages().front().dtype;
  if (params.scale.defined())
    QUARRY_RETURN_IF_ERROR(AddTensor(absl::StrCat(module, ".", what, "_scale"), params.scale.to(at::kFloat)));
  if (params.zero_point.defined() && IsIntegerDtype(d))
    QUARRY_RETURN_IF_ERROR(AddTensor(absl::StrCat(module, ".", what, "_zero_point"),
                                     ZeroPointAs(params.zero_point, d, PackOrder::kOrder)));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> QuarkExporter::Finish() {
  QUARRY_ASSIGN_OR_RETURN(std::vector<std::string> files, writer_->Finish());
  // config.json: the original + quantization_config, keys sorted (transformers' to_json_string).
  QUARRY_ASSIGN_OR_RETURN(Json original, internal::ReadJsonFile(source_->dir() + "/config.json"));
  nlohmann::json cfg = nlohmann::json::parse(original.dump());
  if (awq_) {
    // AutoAWQ's config (awq_format.h); float16 is the only activation dtype its kernels run.
    cfg["quantization_config"] = awq::QuantizationConfig(*awq_);
    cfg["torch_dtype"] = "float16";
  } else if (gptq_) {
    cfg["quantization_config"] = gptq::QuantizationConfig(*gptq_);  // torch_dtype kept (Create)
  } else {
    Json q = internal::ConfigToJsonValue(config_);
    // Quark writes these only inside "export".
    q.erase("kv_cache_group");
    q.erase("min_kv_scale");
    q.erase("log_severity_level");
    // Quark replaces exclude patterns by the excluded module names (vLLM matches names, not
    // fnmatch patterns, in exclude).
    if (!excluded_.empty() || !config_.exclude.empty()) q["exclude"] = excluded_;
    Json ex = Json::object();
    ex["kv_cache_group"] = config_.kv_cache_quant_config.empty() ? std::vector<std::string>{}
                                                                 : config_.kv_cache_group;
    ex["min_kv_scale"] = static_cast<double>(config_.min_kv_scale);
    ex["pack_method"] = options_.pack_reorder ? "reorder" : "order";
    ex["weight_format"] = options_.real_quantized ? "real_quantized" : "fake_quantized";
    ex["weight_merge_groups"] = nullptr;
    q["export"] = ex;
    cfg["quantization_config"] = nlohmann::json::parse(q.dump());
  }
  if (untie_) cfg["tie_word_embeddings"] = false;
  {
    const std::string path = out_dir_ + "/config.json";
    std::ofstream out(path + ".partial", std::ios::binary);
    out << cfg.dump(2) << "\n";
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
    out.close();
    fs::rename(path + ".partial", path);
  }
  files.push_back("config.json");
  for (const char* name : {"tokenizer.model", "tokenizer.json", "tokenizer_config.json",
                           "special_tokens_map.json", "generation_config.json", "vocab.json",
                           "merges.txt", "added_tokens.json"}) {
    const fs::path src = fs::path(source_->dir()) / name;
    std::error_code ec;
    if (!fs::exists(src, ec)) continue;
    fs::copy_file(src, fs::path(out_dir_) / name, fs::copy_options::overwrite_existing, ec);
    if (ec) return absl::InternalError(absl::StrCat("copying ", src.string(), ": ", ec.message()));
    files.push_back(name);
  }
  return files;
}

absl::Status QuarkExporter::ReplayJournal(const SafetensorsFile& journal) {
  std::vector<const StTensorInfo*> order;
  for (const StTensorInfo& t : journal.tensors()) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const StTensorInfo* a, const StTensorInfo* b) { return a->begin < b->begin; });
  for (const StTensorInfo* t : order)
    QUARRY_RETURN_IF_ERROR(writer_->Add(t->name, t->dtype, t->shape, journal.Bytes(*t)));
  return absl::OkStatus();
}

}  // namespace quarry::exporter
