// Opening float and quantized models for inference. GPTQ (quant_method "gptq", v1 or v2) and
// AutoAWQ GEMM (quant_method "awq") checkpoints: every linear with a <name>.qweight is
// dequantized on load by the format's reader (src/export/gptq_format.h, awq_format.h); they are
// weight-only, so nothing else changes. For a Quark-format quantized model:
//  - weights stored as packed codes (real_quantized) are dequantized on load through the
//    model's tensor source (the inverse of src/export/quark_export.cc's layouts);
//  - weights stored as floats (fake_quantized, or formats without a packed layout) are on the
//    quantization grid already and are used as stored;
//  - activation quantizers are rebuilt from the plan: static ones frozen with the exported
//    *_scale / *_zero_point, dynamic ones computing their parameters per call.
#include "pipeline/exported_model.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "config/json_internal.h"
#include "export/awq_format.h"
#include "export/gptq_format.h"
#include "quarry/config_json.h"
#include "quarry/packing.h"
#include "quarry/quantize.h"
#include "quarry/status.h"
#include "quarry/tensor_io.h"

namespace quarry::pipeline {
namespace {

// Unpacks int32 words of int4/uint4 codes along the last dim to `n` int32 codes.
at::Tensor UnpackInt4(const at::Tensor& words, int64_t n, PackOrder order, bool is_signed) {
  at::Tensor w = words.to(at::kInt).contiguous();
  const int64_t nw = w.size(-1);
  const int64_t rows = w.numel() / std::max<int64_t>(nw, 1);
  std::vector<int64_t> shape(w.sizes().begin(), w.sizes().end());
  shape.back() = n;
  at::Tensor out = at::empty(shape, at::kInt);
  const int32_t* src = w.data_ptr<int32_t>();
  int32_t* dst = out.data_ptr<int32_t>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < n; ++i)
      dst[r * n + i] = packing::UnpackInt4(static_cast<uint32_t>(src[r * nw + i / 8]),
                                           static_cast<int>(i % 8), order, is_signed);
  return out;
}

absl::StatusOr<at::Tensor> Load(SafetensorsModel& st, const std::string& name) {
  return LoadTensor(st, name);
}

absl::StatusOr<std::optional<at::Tensor>> LoadIfPresent(SafetensorsModel& st, const std::string& name) {
  if (!st.Contains(name)) return std::optional<at::Tensor>();
  QUARRY_ASSIGN_OR_RETURN(at::Tensor t, LoadTensor(st, name));
  return std::optional<at::Tensor>(t);
}

// Dequantizes an exported linear weight; nullopt when it is stored as floats.
absl::StatusOr<std::optional<at::Tensor>> DequantizeWeight(SafetensorsModel& st,
                                                           const std::string& module,
                                                           const LayerPlanEntry& entry,
                                                           PackOrder order) {
  const std::string wname = module + ".weight";
  QUARRY_ASSIGN_OR_RETURN(const StTensorInfo* info, st.Info(wname));
  if (info->dtype == StDtype::kF32 || info->dtype == StDtype::kBF16 ||
      info->dtype == StDtype::kF16 || info->dtype == StDtype::kF64)
    return std::optional<at::Tensor>();  // float weights: on the grid already (or unquantized)
  if (!entry.config.weight || entry.config.weight->specs.size() != 1)
    return absl::InvalidArgumentError(absl::StrCat(
        wname, " is stored as ", StDtypeName(info->dtype), " but the quantization_config gives ",
        "it no single-stage weight spec"));
  const QuantizationSpec& spec = entry.config.weight->front();
  const std::vector<int64_t>& shape = entry.weight_shape;  // logical [out, in]
  if (shape.size() != 2) return absl::InvalidArgumentError(absl::StrCat(wname, ": unknown shape"));
  QUARRY_ASSIGN_OR_RETURN(at::Tensor data, Load(st, wname));
  QUARRY_ASSIGN_OR_RETURN(at::Tensor scale, Load(st, module + ".weight_scale"));
  QUARRY_ASSIGN_OR_RETURN(auto zp, LoadIfPresent(st, module + ".weight_zero_point"));
  const bool int_group = IsIntegerDtype(spec.dtype) && spec.qscheme == QSchemeType::kPerGroup;
  const bool sub_byte = spec.dtype == Dtype::kInt4 || spec.dtype == Dtype::kUint4;
  QuantizedTensor q;
  q.dtype = spec.dtype;
  q.order = order;
  QuantizationSpec s = spec;
  if (int_group) {  // stored transposed: [in, out] codes, scale [in/g, out]
    q.shape = {shape[1], shape[0]};
    s.ch_axis = 0;
  } else {
    q.shape = shape;
  }
  q.pack_axis = 1;
  q.data = data;
  if (spec.dtype == Dtype::kFp8E4M3 || spec.dtype == Dtype::kFp8E5M2) q.data = data.to(at::kByte);
  q.params.scale = scale.scalar_type() == at::kByte ? scale : scale.to(at::kFloat);
  if (zp && IsIntegerDtype(spec.dtype)) {
    at::Tensor z = *zp;
    if (sub_byte && z.dim() > 0) {
      const int64_t n = int_group ? shape[0] : (scale.dim() > 0 ? scale.size(-1) : 1);
      z = UnpackInt4(z, n, order, spec.dtype == Dtype::kInt4);
      if (!int_group) z = z.reshape(scale.sizes());
    }
    q.params.zero_point = z.is_floating_point() ? z.to(at::kFloat) : z.to(at::kInt);
  }
  QUARRY_ASSIGN_OR_RETURN(at::Tensor w, Dequantize(q, s));
  if (int_group) w = w.t().contiguous();
  if (w.sizes() != at::IntArrayRef(shape))
    return absl::InvalidArgumentError(absl::StrCat(wname, ": dequantized shape ", c10::str(w.sizes()),
                                                   " does not match [", shape[0], ", ", shape[1], "]"));
  return std::optional<at::Tensor>(w.to(at::kFloat));
}

// A static activation quantizer frozen with the exported parameters.
absl::StatusOr<std::unique_ptr<TensorQuantizer>> ActivationQuantizer(
    SafetensorsModel& st, const std::string& module, const char* what,
    const std::optional<TensorSpecs>& specs) {
  if (!specs) return std::unique_ptr<TensorQuantizer>();
  QUARRY_ASSIGN_OR_RETURN(auto q, TensorQuantizer::Create(specs->specs));
  if (q->is_dynamic()) return q;
  const std::string sname = absl::StrCat(module, ".", what, "_scale");
  if (!st.Contains(sname))
    return absl::InvalidArgumentError(absl::StrCat("static ", what, " quantizer of ", module,
                                                   " has no exported ", sname));
  QuantParams p;
  QUARRY_ASSIGN_OR_RETURN(p.scale, Load(st, sname));
  p.scale = p.scale.to(at::kFloat);
  QUARRY_ASSIGN_OR_RETURN(auto zp, LoadIfPresent(st, absl::StrCat(module, ".", what, "_zero_point")));
  if (zp) p.zero_point = zp->is_floating_point() ? zp->to(at::kFloat) : zp->to(at::kInt);
  else if (IsIntegerDtype(specs->front().dtype)) p.zero_point = at::zeros_like(p.scale, at::kInt);
  QUARRY_RETURN_IF_ERROR(q->SetFrozenParams(std::move(p)));
  return q;
}

// How a GPTQ / AWQ checkpoint stores its packed weights (from its quantization_config).
struct PackedFormat {
  bool gptq = false;      // else AWQ GEMM
  int bits = 4;
  int zero_offset = 1;    // GPTQ: 1 for checkpoint_format "gptq" (v1), 0 for "gptq_v2"
  int64_t group_size = 0; // AWQ
};

absl::StatusOr<PackedFormat> ReadPackedFormat(const internal::Json& q, const std::string& method) {
  PackedFormat f;
  f.gptq = method == "gptq";
  if (!q.contains("bits") || !q["bits"].is_number_integer())
    return absl::InvalidArgumentError(absl::StrCat("quantization_config (quant_method ", method,
                                                   "): bits missing or not an integer"));
  f.bits = q["bits"].get<int>();
  if (f.gptq) {
    const std::string fmt = q.value("checkpoint_format", std::string("gptq"));
    if (fmt != "gptq" && fmt != "gptq_v2")
      return absl::InvalidArgumentError(absl::StrCat(
          "quantization_config checkpoint_format \"", fmt, "\": GPTQ's \"gptq\" (v1) and "
          "\"gptq_v2\" are read"));
    f.zero_offset = fmt == "gptq" ? 1 : 0;
    if (f.bits != 2 && f.bits != 4 && f.bits != 8)
      return absl::InvalidArgumentError(absl::StrCat(
          "quantization_config bits ", f.bits, ": GPTQ checkpoints of 2, 4 or 8 bits are read"));
  } else {
    const std::string version = q.value("version", std::string("gemm"));
    if (absl::AsciiStrToLower(version) != "gemm" || f.bits != 4)
      return absl::InvalidArgumentError(absl::StrCat(
          "quantization_config (quant_method awq) version \"", version, "\", bits ", f.bits,
          ": AutoAWQ's 4-bit GEMM layout is read"));
    if (!q.contains("group_size") || !q["group_size"].is_number_integer() ||
        q["group_size"].get<int64_t>() <= 0)
      return absl::InvalidArgumentError(
          "quantization_config (quant_method awq): group_size missing or not a positive integer");
    f.group_size = q["group_size"].get<int64_t>();
  }
  return f;
}

// The float32 weight [out, in] of <module>'s packed tensors; nullopt when it has none (a float
// linear, e.g. lm_head).
absl::StatusOr<std::optional<at::Tensor>> DequantizePacked(SafetensorsModel& st,
                                                           const std::string& module,
                                                           const PackedFormat& f,
                                                           const LayerPlanEntry* entry) {
  if (!st.Contains(module + ".qweight")) return std::optional<at::Tensor>();
  at::Tensor w;
  if (f.gptq) {
    exporter::gptq::LinearTensors t;
    QUARRY_ASSIGN_OR_RETURN(t.qweight, Load(st, module + ".qweight"));
    QUARRY_ASSIGN_OR_RETURN(t.qzeros, Load(st, module + ".qzeros"));
    QUARRY_ASSIGN_OR_RETURN(t.scales, Load(st, module + ".scales"));
    QUARRY_ASSIGN_OR_RETURN(auto g_idx, LoadIfPresent(st, module + ".g_idx"));
    if (g_idx) {
      t.g_idx = *g_idx;
    } else {  // optional in GPTQ checkpoints without act-order: i / (in / G)
      const int64_t in = t.qweight.size(0) * exporter::gptq::PackFactor(f.bits);
      const int64_t groups = std::max<int64_t>(t.scales.size(0), 1);
      t.g_idx = at::floor_divide(at::arange(in, at::kLong), (in + groups - 1) / groups);
    }
    QUARRY_ASSIGN_OR_RETURN(w, exporter::gptq::Dequantize(t, f.bits, f.zero_offset));
  } else {
    exporter::awq::GemmTensors t;
    QUARRY_ASSIGN_OR_RETURN(t.qweight, Load(st, module + ".qweight"));
    QUARRY_ASSIGN_OR_RETURN(t.qzeros, Load(st, module + ".qzeros"));
    QUARRY_ASSIGN_OR_RETURN(t.scales, Load(st, module + ".scales"));
    QUARRY_ASSIGN_OR_RETURN(w, exporter::awq::DequantizeGemm(t, f.group_size));
  }
  if (entry != nullptr && entry->weight_shape.size() == 2 &&
      w.sizes() != at::IntArrayRef(entry->weight_shape))
    return absl::InvalidArgumentError(absl::StrCat(
        module, ".qweight: dequantized shape ", c10::str(w.sizes()), " does not match the "
        "model's [", entry->weight_shape[0], ", ", entry->weight_shape[1], "]"));
  return std::optional<at::Tensor>(w);
}

}  // namespace

absl::StatusOr<InferenceModel> OpenForInference(const std::string& model_dir) {
  InferenceModel m;
  QUARRY_ASSIGN_OR_RETURN(m.model, model::CausalLM::Open(model_dir));
  QUARRY_ASSIGN_OR_RETURN(internal::Json cfg, internal::ReadJsonFile(model_dir + "/config.json"));
  if (!cfg.contains("quantization_config") || cfg["quantization_config"].is_null()) return m;
  m.quantized = true;
  const auto& qc = cfg["quantization_config"];
  const std::string method = qc.is_object() ? qc.value("quant_method", std::string()) : "";
  if (method == "gptq" || method == "awq") {
    // Weight-only packed formats: an empty plan (no activation quantizers), and the packed
    // weights dequantized through the tensor source.
    QUARRY_ASSIGN_OR_RETURN(const PackedFormat f, ReadPackedFormat(qc, method));
    QUARRY_ASSIGN_OR_RETURN(LayerPlan resolved, ResolveLayerPlan(m.config, m.model->Modules()));
    m.plan = std::make_shared<const LayerPlan>(std::move(resolved));
    SafetensorsModel* st = &m.model->weights();
    std::shared_ptr<const LayerPlan> plan = m.plan;
    m.model->SetTensorSource([st, plan, f](const std::string& name)
                                 -> absl::StatusOr<std::optional<at::Tensor>> {
      if (!absl::EndsWith(name, ".weight")) return std::optional<at::Tensor>();
      const std::string module = name.substr(0, name.size() - 7);
      auto w = DequantizePacked(*st, module, f, plan->Find(module));
      if (!w.ok()) return Annotate(w.status(), module);
      return w;
    });
    return m;
  }
  std::vector<std::string> warnings;
  QUARRY_ASSIGN_OR_RETURN(m.config, ConfigFromModelDir(model_dir, JsonReadOptions{true}, &warnings));
  const auto& q = cfg["quantization_config"];
  if (q.contains("export") && q["export"].is_object()) {
    m.real_quantized = q["export"].value("weight_format", "real_quantized") == "real_quantized";
    m.pack_reorder = q["export"].value("pack_method", "reorder") == "reorder";
  }
  QUARRY_ASSIGN_OR_RETURN(LayerPlan resolved, ResolveLayerPlan(m.config, m.model->Modules()));
  m.plan = std::make_shared<const LayerPlan>(std::move(resolved));
  const PackOrder order = m.pack_reorder ? PackOrder::kReorder : PackOrder::kOrder;
  SafetensorsModel* st = &m.model->weights();
  std::shared_ptr<const LayerPlan> plan = m.plan;
  m.model->SetTensorSource([st, plan, order](const std::string& name)
                               -> absl::StatusOr<std::optional<at::Tensor>> {
    if (!absl::EndsWith(name, ".weight")) return std::optional<at::Tensor>();
    const std::string module = name.substr(0, name.size() - 7);
    const LayerPlanEntry* e = plan->Find(module);
    if (e == nullptr || e->type != "Linear" || !st->Contains(name)) return std::optional<at::Tensor>();
    return DequantizeWeight(*st, module, *e, order);
  });
  return m;
}

absl::StatusOr<std::unique_ptr<model::DecoderLayer>> InferenceModel::LoadLayer(int i) {
  QUARRY_ASSIGN_OR_RETURN(auto layer, model->LoadLayer(i));
  if (!quantized) return layer;
  SafetensorsModel& st = model->weights();
  for (model::QLinear* l : layer->linears) {
    const LayerPlanEntry* e = plan->Find(l->name);
    if (e == nullptr) continue;
    QUARRY_ASSIGN_OR_RETURN(l->input_q, ActivationQuantizer(st, l->name, "input", e->config.input_tensors));
    QUARRY_ASSIGN_OR_RETURN(l->output_q, ActivationQuantizer(st, l->name, "output", e->config.output_tensors));
  }
  if (plan->softmax_quant_spec) {
    const std::string attn = absl::StrCat(model->config().LayerPrefix(i), ".self_attn");
    QUARRY_ASSIGN_OR_RETURN(layer->softmax_q,
                            ActivationQuantizer(st, attn, "prob_output",
                                                TensorSpecs(*plan->softmax_quant_spec)));
  }
  return layer;
}

absl::StatusOr<std::unique_ptr<model::Head>> InferenceModel::LoadHead() {
  QUARRY_ASSIGN_OR_RETURN(auto head, model->LoadHead());
  if (!quantized) return head;
  const LayerPlanEntry* e = plan->Find("lm_head");
  if (e != nullptr) {
    SafetensorsModel& st = model->weights();
    QUARRY_ASSIGN_OR_RETURN(head->lm_head->input_q,
                            ActivationQuantizer(st, "lm_head", "input", e->config.input_tensors));
    QUARRY_ASSIGN_OR_RETURN(head->lm_head->output_q,
                            ActivationQuantizer(st, "lm_head", "output", e->config.output_tensors));
  }
  return head;
}

}  // namespace quarry::pipeline
