#include "quarry/tensor_tool.h"

#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "config/json_internal.h"
#include "quarry/config_json.h"
#include "quarry/config_validate.h"
#include "quarry/gptq.h"
#include "quarry/quantize.h"
#include "quarry/safetensors.h"
#include "quarry/status.h"
#include "quarry/tensor_io.h"

namespace quarry {
namespace {

using Clock = std::chrono::steady_clock;

absl::StatusOr<TensorSpecs> ParseSpecs(const std::string& json) {
  QUARRY_ASSIGN_OR_RETURN(TensorSpecs specs, TensorSpecsFromJson(json));
  QUARRY_RETURN_IF_ERROR(IssuesToStatus(ValidateTensorSpecs(specs, "spec")));
  return specs;
}

std::string Shape(const at::Tensor& t) { return c10::str(t.sizes()); }

}  // namespace

absl::StatusOr<std::vector<std::string>> QuantizeTensorFile(const TensorQuantizeOptions& o) {
  QUARRY_ASSIGN_OR_RETURN(TensorSpecs specs, ParseSpecs(o.spec_json));
  if (o.real && specs.specs.size() != 1)
    return absl::InvalidArgumentError("--real needs a single-stage spec (two-stage specs: --fake)");
  QUARRY_ASSIGN_OR_RETURN(auto tensors, LoadAllTensors(o.input));
  std::map<std::string, at::Tensor> out;
  std::vector<std::string> lines;
  const PackOrder order = o.pack_reorder ? PackOrder::kReorder : PackOrder::kOrder;
  for (const auto& [name, t] : tensors) {
    if (!t.is_floating_point()) {
      out[name] = t;
      lines.push_back(absl::StrCat(name, ": copied (", c10::toString(t.scalar_type()), ")"));
      continue;
    }
    at::Tensor x = t.to(at::kFloat);
    auto where = [&](const absl::Status& s) { return Annotate(s, absl::StrCat("tensor '", name, "'")); };
    if (!o.real) {
      QUARRY_ASSIGN_OR_RETURN(auto q, TensorQuantizer::Create(specs.specs));
      absl::StatusOr<at::Tensor> y;
      if (q->is_dynamic()) {
        y = q->Apply(x);
      } else {
        absl::Status st = q->Observe(x);
        if (st.ok()) st = q->Freeze();
        y = st.ok() ? q->Apply(x) : absl::StatusOr<at::Tensor>(st);
      }
      if (!y.ok()) return where(y.status());
      const double rel = (*y - x).pow(2).sum().item<double>() / std::max(x.pow(2).sum().item<double>(), 1e-30);
      out[name] = y->to(t.scalar_type());
      lines.push_back(absl::StrFormat("%s: %s fake-quantized, relative MSE %.3g", name, Shape(t), rel));
      continue;
    }
    const QuantizationSpec& spec = specs.front();
    auto params = ComputeQuantParams(spec, x);
    if (!params.ok()) return where(params.status());
    auto q = Quantize(x, spec, *params, order);
    if (!q.ok()) return where(q.status());
    out[name] = q->data;
    out[name + "_scale"] = q->params.scale;
    if (q->params.zero_point.defined()) out[name + "_zero_point"] = q->params.zero_point;
    if (q->data.sizes() != at::IntArrayRef(q->shape))  // packed: remember the logical shape
      out[name + "_shape"] = at::tensor(at::ArrayRef<int64_t>(q->shape), at::kLong);
    lines.push_back(absl::StrCat(name, ": ", Shape(t), " -> codes ", Shape(q->data), " ",
                                 c10::toString(q->data.scalar_type()), ", scale ",
                                 Shape(q->params.scale)));
  }
  std::map<std::string, std::string> meta = {{"format", "pt"},
                                             {"quarry.spec", o.spec_json},
                                             {"quarry.mode", o.real ? "real" : "fake"}};
  if (o.real) meta["quarry.pack_method"] = o.pack_reorder ? "reorder" : "order";
  QUARRY_RETURN_IF_ERROR(SaveTensors(o.output, out, meta));
  return lines;
}

absl::StatusOr<std::vector<std::string>> DequantizeTensorFile(const TensorDequantizeOptions& o) {
  QUARRY_ASSIGN_OR_RETURN(TensorSpecs specs, ParseSpecs(o.spec_json));
  if (specs.specs.size() != 1) return absl::InvalidArgumentError("dequantize needs a single-stage spec");
  const QuantizationSpec& spec = specs.front();
  at::ScalarType dtype = at::kFloat;
  if (o.dtype == "bfloat16") dtype = at::kBFloat16;
  else if (o.dtype == "float16") dtype = at::kHalf;
  else if (o.dtype != "float32")
    return absl::InvalidArgumentError(absl::StrCat("--dtype '", o.dtype, "': expected float32, bfloat16 or float16"));
  QUARRY_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(o.input));
  QUARRY_ASSIGN_OR_RETURN(auto tensors, LoadAllTensors(o.input));
  std::map<std::string, at::Tensor> out;
  std::vector<std::string> lines;
  for (const auto& [name, t] : tensors) {
    if (absl::EndsWith(name, "_scale") || absl::EndsWith(name, "_zero_point") ||
        absl::EndsWith(name, "_shape"))
      continue;
    if (!tensors.count(name + "_scale")) {
      out[name] = t;
      continue;
    }
    QuantizedTensor q;
    q.dtype = spec.dtype == Dtype::kMx && spec.mx_element_dtype ? *spec.mx_element_dtype : spec.dtype;
    q.data = t;
    q.order = o.pack_reorder ? PackOrder::kReorder : PackOrder::kOrder;
    q.params.scale = tensors.at(name + "_scale");
    if (tensors.count(name + "_zero_point")) q.params.zero_point = tensors.at(name + "_zero_point");
    // One-code-per-element layouts have the logical shape; packed ones record it as <name>_shape.
    if (tensors.count(name + "_shape")) {
      at::Tensor s = tensors.at(name + "_shape").to(at::kLong);
      q.shape.assign(s.data_ptr<int64_t>(), s.data_ptr<int64_t>() + s.numel());
    } else {
      q.shape.assign(t.sizes().begin(), t.sizes().end());
    }
    q.pack_axis = static_cast<int64_t>(q.shape.size()) - 1;
    auto y = Dequantize(q, spec);
    if (!y.ok()) return Annotate(y.status(), absl::StrCat("tensor '", name, "'"));
    out[name] = y->to(dtype);
    lines.push_back(absl::StrCat(name, ": dequantized to ", c10::str(y->sizes()), " ", o.dtype));
  }
  QUARRY_RETURN_IF_ERROR(SaveTensors(o.output, out));
  return lines;
}

absl::StatusOr<LayerAlgorithmReport> RunLayerAlgorithm(const LayerAlgorithmOptions& o) {
  if (o.algorithm != "gptq" && o.algorithm != "qronos")
    return absl::InvalidArgumentError(absl::StrCat("algorithm '", o.algorithm, "': expected gptq or qronos"));
  QUARRY_ASSIGN_OR_RETURN(TensorSpecs specs, ParseSpecs(o.spec_json));
  if (specs.specs.size() != 1) return absl::InvalidArgumentError("the weight spec must be a single stage");
  const QuantizationSpec& spec = specs.front();
  QUARRY_ASSIGN_OR_RETURN(auto wfile, SafetensorsFile::Open(o.weight_path));
  QUARRY_ASSIGN_OR_RETURN(at::Tensor W, LoadTensor(*wfile, "weight"));
  QUARRY_ASSIGN_OR_RETURN(auto xfile, SafetensorsFile::Open(o.inputs_path));
  QUARRY_ASSIGN_OR_RETURN(at::Tensor X, LoadTensor(*xfile, "inputs"));
  W = W.to(at::kFloat);
  X = X.to(at::kFloat);
  if (W.dim() != 2) return absl::InvalidArgumentError("'weight' must be 2-D [out, in]");
  if (X.dim() != 2 || X.size(1) != W.size(1))
    return absl::InvalidArgumentError(absl::StrCat("'inputs' must be [n, ", W.size(1), "], got ", Shape(X)));
  LayerAlgorithmReport report;
  report.rows = X.size(0);
  WeightQuantResult result;
  const auto t0 = Clock::now();
  if (o.algorithm == "gptq") {
    GPTQConfig cfg;
    if (!o.algo_json.empty()) {
      QUARRY_ASSIGN_OR_RETURN(AlgoConfig a, AlgoConfigFromJson(o.algo_json));
      if (!std::holds_alternative<GPTQConfig>(a))
        return absl::InvalidArgumentError(absl::StrCat("--algo names '", AlgoName(a), "', expected gptq"));
      cfg = std::get<GPTQConfig>(a);
    }
    HessianAccumulator H(W.size(1));
    QUARRY_RETURN_IF_ERROR(H.Add(X));
    at::Tensor Hm = H.H();
    report.hessian_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    QUARRY_ASSIGN_OR_RETURN(result, GptqQuantizeWeight(W, Hm, spec, cfg));
  } else {
    QronosConfig cfg;
    cfg.inside_layer_modules = {"*"};
    cfg.model_decoder_layers = "";
    if (!o.algo_json.empty()) {
      QUARRY_ASSIGN_OR_RETURN(internal::Json j, internal::ParseJson(o.algo_json, "--algo"));
      // The layer tool needs neither of Qronos' required module fields.
      if (j.is_object()) {
        if (!j.contains("inside_layer_modules")) j["inside_layer_modules"] = {"*"};
        if (!j.contains("model_decoder_layers")) j["model_decoder_layers"] = "";
      }
      QUARRY_ASSIGN_OR_RETURN(AlgoConfig a, AlgoConfigFromJson(j.dump()));
      if (!std::holds_alternative<QronosConfig>(a))
        return absl::InvalidArgumentError(absl::StrCat("--algo names '", AlgoName(a), "', expected qronos"));
      cfg = std::get<QronosConfig>(a);
    }
    at::Tensor Xf = X;
    if (xfile->Find("inputs_float") != nullptr) {
      QUARRY_ASSIGN_OR_RETURN(Xf, LoadTensor(*xfile, "inputs_float"));
      Xf = Xf.to(at::kFloat);
      if (Xf.sizes() != X.sizes()) return absl::InvalidArgumentError("'inputs_float' must match 'inputs'");
    }
    HessianAccumulator H(W.size(1), 1.0);
    CrossCovarianceAccumulator G(W.size(1));
    QUARRY_RETURN_IF_ERROR(H.Add(X));
    QUARRY_RETURN_IF_ERROR(G.Add(Xf, X));
    at::Tensor Hm = H.H();
    report.hessian_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    QUARRY_ASSIGN_OR_RETURN(result, QronosQuantizeWeight(W, Hm, G.G(), spec, cfg));
  }
  report.quant_seconds = result.quant_seconds;
  report.damp_retries = result.damp_retries;
  report.error_algorithm = LayerOutputError(X, W, result.weight);
  QUARRY_ASSIGN_OR_RETURN(at::Tensor rtn, RtnQuantizeWeight(W, spec));
  report.error_rtn = LayerOutputError(X, W, rtn);
  QUARRY_RETURN_IF_ERROR(SaveTensors(o.output, {{"weight", result.weight}},
                                     {{"format", "pt"}, {"quarry.algorithm", o.algorithm}}));
  return report;
}

}  // namespace quarry
