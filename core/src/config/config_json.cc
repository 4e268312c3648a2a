#include "quarry/config_json.h"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "config/json_internal.h"
#include "quarry/status.h"

namespace quarry {
namespace internal {
namespace {

std::string Quote(const std::string& key) { return absl::StrCat("[\"", key, "\"]"); }

absl::Status PathError(const std::string& path, absl::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", msg));
}

// Reads the fields of one JSON object, remembering which keys were consumed so that the rest can
// be reported as unknown.
class ObjectReader {
 public:
  ObjectReader(const Json& j, std::string path, JsonContext& ctx)
      : j_(j), path_(std::move(path)), ctx_(ctx) {}

  absl::Status CheckObject() const {
    if (!j_.is_object()) return PathError(path_, absl::StrCat("expected an object, got ", j_.type_name()));
    return absl::OkStatus();
  }
  std::string Sub(const std::string& key) const {
    return path_.empty() ? key : absl::StrCat(path_, ".", key);
  }
  bool Has(const std::string& key) {
    seen_.insert(key);
    return j_.contains(key);
  }
  // Marks a key as known without reading it (keys Quark writes that we do not use).
  void Ignore(const std::string& key) { seen_.insert(key); }
  const Json* Get(const std::string& key) {
    seen_.insert(key);
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }
  bool IsNull(const std::string& key) {
    const Json* v = Get(key);
    return v == nullptr || v->is_null();
  }

  template <typename T>
  absl::Status Read(const std::string& key, T* out);  // required, non-null
  template <typename T>
  absl::Status ReadOptional(const std::string& key, std::optional<T>* out);  // null/absent -> None

  absl::Status Finish() {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (seen_.count(it.key())) continue;
      std::string msg = absl::StrCat(Sub(it.key()), ": unknown key");
      if (ctx_.options.allow_unknown_keys) {
        if (ctx_.warnings) ctx_.warnings->push_back(msg + " (ignored)");
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat(msg, " (check the spelling; allow_unknown_keys ignores it)"));
      }
    }
    return absl::OkStatus();
  }
  const std::string& path() const { return path_; }

 private:
  const Json& j_;
  std::string path_;
  JsonContext& ctx_;
  std::set<std::string> seen_;
};

absl::Status Convert(const Json& v, const std::string& path, bool* out) {
  if (!v.is_boolean()) return PathError(path, absl::StrCat("expected true/false, got ", v.dump()));
  *out = v.get<bool>();
  return absl::OkStatus();
}
absl::Status Convert(const Json& v, const std::string& path, int* out) {
  if (!v.is_number_integer())
    return PathError(path, absl::StrCat("expected an integer, got ", v.dump()));
  int64_t x = v.get<int64_t>();
  if (x < INT32_MIN || x > INT32_MAX) return PathError(path, "integer out of range");
  *out = static_cast<int>(x);
  return absl::OkStatus();
}
absl::Status Convert(const Json& v, const std::string& path, double* out) {
  if (!v.is_number()) return PathError(path, absl::StrCat("expected a number, got ", v.dump()));
  *out = v.get<double>();
  return absl::OkStatus();
}
absl::Status Convert(const Json& v, const std::string& path, float* out) {
  double d;
  QUARRY_RETURN_IF_ERROR(Convert(v, path, &d));
  *out = static_cast<float>(d);
  return absl::OkStatus();
}
absl::Status Convert(const Json& v, const std::string& path, std::string* out) {
  if (!v.is_string()) return PathError(path, absl::StrCat("expected a string, got ", v.dump()));
  *out = v.get<std::string>();
  return absl::OkStatus();
}
absl::Status Convert(const Json& v, const std::string& path, std::vector<std::string>* out) {
  if (!v.is_array()) return PathError(path, absl::StrCat("expected a list of strings, got ", v.dump()));
  out->clear();
  for (size_t i = 0; i < v.size(); ++i) {
    std::string s;
    QUARRY_RETURN_IF_ERROR(Convert(v[i], absl::StrCat(path, "[", i, "]"), &s));
    out->push_back(std::move(s));
  }
  return absl::OkStatus();
}

template <typename E, typename ParseFn, typename AllFn>
absl::Status ConvertEnum(const Json& v, const std::string& path, E* out, ParseFn parse, AllFn all) {
  if (!v.is_string()) return PathError(path, absl::StrCat("expected a name, got ", v.dump()));
  auto e = parse(v.get<std::string>());
  if (!e) return PathError(path, absl::StrCat("unknown value '", v.get<std::string>(),
                                              "'; expected one of: ", all()));
  *out = *e;
  return absl::OkStatus();
}
absl::Status Convert(const Json& v, const std::string& path, Dtype* out) {
  return ConvertEnum(v, path, out, ParseDtype, [] { return AllNames(Dtype{}); });
}
absl::Status Convert(const Json& v, const std::string& path, QSchemeType* out) {
  return ConvertEnum(v, path, out, ParseQScheme, [] { return AllNames(QSchemeType{}); });
}
absl::Status Convert(const Json& v, const std::string& path, RoundType* out) {
  return ConvertEnum(v, path, out, ParseRoundType, [] { return AllNames(RoundType{}); });
}
absl::Status Convert(const Json& v, const std::string& path, ScaleType* out) {
  return ConvertEnum(v, path, out, ParseScaleType, [] { return AllNames(ScaleType{}); });
}
absl::Status Convert(const Json& v, const std::string& path, ZeroPointType* out) {
  return ConvertEnum(v, path, out, ParseZeroPointType, [] { return AllNames(ZeroPointType{}); });
}
absl::Status Convert(const Json& v, const std::string& path, DeviceType* out) {
  return ConvertEnum(v, path, out, ParseDeviceType, [] { return std::string("cpu, ipu"); });
}
absl::Status Convert(const Json& v, const std::string& path, QuantizationMode* out) {
  return ConvertEnum(v, path, out, ParseQuantizationMode,
                     [] { return std::string("eager_mode, fx_graph_mode"); });
}
absl::Status Convert(const Json& v, const std::string& path, TQTThresholdInitMeth* out) {
  return ConvertEnum(v, path, out, ParseTQTThresholdInitMeth,
                     [] { return std::string("_3sd, _kl_j"); });
}

template <typename T>
absl::Status ObjectReader::Read(const std::string& key, T* out) {
  const Json* v = Get(key);
  if (v == nullptr) return PathError(Sub(key), "required key is missing");
  if (v->is_null()) return PathError(Sub(key), "must not be null");
  return Convert(*v, Sub(key), out);
}

template <typename T>
absl::Status ObjectReader::ReadOptional(const std::string& key, std::optional<T>* out) {
  const Json* v = Get(key);
  if (v == nullptr || v->is_null()) {
    out->reset();
    return absl::OkStatus();
  }
  T value{};
  QUARRY_RETURN_IF_ERROR(Convert(*v, Sub(key), &value));
  *out = std::move(value);
  return absl::OkStatus();
}

template <typename T>
Json Opt(const std::optional<T>& v) {
  return v.has_value() ? Json(*v) : Json(nullptr);
}
template <typename E>
Json OptName(const std::optional<E>& v) {
  return v.has_value() ? Json(std::string(Name(*v))) : Json(nullptr);
}

// ----- ScalingLayer -----

Json ScalingLayerToJson(const ScalingLayer& s) {
  Json j = Json::object();
  j["prev_op"] = s.prev_op;
  j["layers"] = s.layers;
  j["inp"] = s.inp;
  if (s.module2inspect) j["module2inspect"] = *s.module2inspect;
  if (!s.extra_json.empty()) {
    Json extra = Json::parse(s.extra_json);
    for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  }
  return j;
}

absl::StatusOr<ScalingLayer> ScalingLayerFromJson(const Json& j, const std::string& path) {
  if (!j.is_object()) return PathError(path, "expected an object");
  ScalingLayer s;
  Json extra = Json::object();
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string sub = absl::StrCat(path, ".", it.key());
    if (it.key() == "prev_op") {
      QUARRY_RETURN_IF_ERROR(Convert(it.value(), sub, &s.prev_op));
    } else if (it.key() == "layers") {
      QUARRY_RETURN_IF_ERROR(Convert(it.value(), sub, &s.layers));
    } else if (it.key() == "inp") {
      QUARRY_RETURN_IF_ERROR(Convert(it.value(), sub, &s.inp));
    } else if (it.key() == "module2inspect") {
      std::string m;
      QUARRY_RETURN_IF_ERROR(Convert(it.value(), sub, &m));
      s.module2inspect = m;
    } else {
      extra[it.key()] = it.value();  // the seed types these entries as dict[str, Any]
    }
  }
  if (!extra.empty()) s.extra_json = extra.dump();
  return s;
}

absl::StatusOr<std::vector<ScalingLayer>> ScalingLayersFromJson(const Json& j,
                                                                const std::string& path) {
  if (!j.is_array()) return PathError(path, "expected a list of scaling-layer objects");
  std::vector<ScalingLayer> out;
  for (size_t i = 0; i < j.size(); ++i) {
    QUARRY_ASSIGN_OR_RETURN(auto s, ScalingLayerFromJson(j[i], absl::StrCat(path, "[", i, "]")));
    out.push_back(std::move(s));
  }
  return out;
}

Json ScalingLayersToJson(const std::vector<ScalingLayer>& v) {
  Json j = Json::array();
  for (const auto& s : v) j.push_back(ScalingLayerToJson(s));
  return j;
}

absl::Status ReadJsonObjectText(ObjectReader& r, const std::string& key, std::string* out,
                                bool required) {
  const Json* v = r.Get(key);
  if (v == nullptr || v->is_null()) {
    if (required) return PathError(r.Sub(key), "required key is missing");
    out->clear();
    return absl::OkStatus();
  }
  if (!v->is_object()) return PathError(r.Sub(key), "expected an object");
  *out = v->dump();
  return absl::OkStatus();
}

Json JsonObjectOrNull(const std::string& text) {
  return text.empty() ? Json(nullptr) : Json::parse(text);
}

}  // namespace

// ----- QuantizationSpec -----

Json SpecToJsonValue(const QuantizationSpec& s) {
  Json j = Json::object();
  j["dtype"] = std::string(Name(s.dtype));
  j["is_dynamic"] = Opt(s.is_dynamic);
  j["qscheme"] = OptName(s.qscheme);
  j["ch_axis"] = Opt(s.ch_axis);
  j["group_size"] = Opt(s.group_size);
  j["symmetric"] = Opt(s.symmetric);
  j["round_method"] = OptName(s.round_method);
  j["scale_type"] = OptName(s.scale_type);
  j["scale_format"] = Opt(s.scale_format);
  j["scale_calculation_mode"] = Opt(s.scale_calculation_mode);
  j["mx_element_dtype"] = OptName(s.mx_element_dtype);
  j["observer_cls"] = Opt(s.observer_cls);
  j["is_scale_quant"] = s.is_scale_quant;
  // Not written by Quark's to_dict; kept (only when not the default) so nothing is lost.
  if (!s.zero_point_type.has_value()) {
    j["zero_point_type"] = nullptr;
  } else if (*s.zero_point_type != ZeroPointType::kInt32) {
    j["zero_point_type"] = std::string(Name(*s.zero_point_type));
  }
  if (s.qat_spec.has_value()) {
    j["qat_spec"] = {{"threshold_init_meth", OptName(s.qat_spec->threshold_init_meth)}};
  }
  return j;
}

absl::StatusOr<QuantizationSpec> SpecFromJsonValue(const Json& j, const std::string& path,
                                                   JsonContext& ctx) {
  ObjectReader r(j, path, ctx);
  QUARRY_RETURN_IF_ERROR(r.CheckObject());
  QuantizationSpec s;
  QUARRY_RETURN_IF_ERROR(r.Read("dtype", &s.dtype));
  // Legacy (quark < 1.0) keys: "dynamic" for is_dynamic, "axis" for ch_axis.
  if (r.Has("is_dynamic") || !r.Has("dynamic")) {
    QUARRY_RETURN_IF_ERROR(r.ReadOptional("is_dynamic", &s.is_dynamic));
  } else {
    QUARRY_RETURN_IF_ERROR(r.ReadOptional("dynamic", &s.is_dynamic));
  }
  if (r.Has("ch_axis") || !r.Has("axis")) {
    QUARRY_RETURN_IF_ERROR(r.ReadOptional("ch_axis", &s.ch_axis));
  } else {
    QUARRY_RETURN_IF_ERROR(r.ReadOptional("axis", &s.ch_axis));
  }
  QUARRY_RETURN_IF_ERROR(r.ReadOptional("qscheme", &s.qscheme));
  QUARRY_RETURN_IF_ERROR(r.ReadOptional("group_size", &s.group_size));
  QUARRY_RETURN_IF_ERROR(r.ReadOptional("symmetric", &s.symmetric));
  QUARRY_RETURN_IF_ERROR(r.ReadOptional("round_method", &s.round_method));
  QUARRY_RETURN_IF_ERROR(r.ReadOptional("scale_type", &s.scale_type));
  QUARRY_RETURN_IF_ERROR(r.ReadOptional("scale_format", &s.scale_format));
  QUARRY_RETURN_IF_ERROR(r.ReadOptional("scale_calculation_mode", &s.scale_calculation_mode));
  QUARRY_RETURN_IF_ERROR(r.ReadOptional("mx_element_dtype", &s.mx_element_dtype));
  QUARRY_RETURN_IF_ERROR(r.ReadOptional("observer_cls", &s.observer_cls));
  if (s.observer_cls.has_value()) {
    const auto& known = KnownObserverClasses();
    if (std::find(known.begin(), known.end(), absl::string_view(*s.observer_cls)) == known.end())
      return PathError(r.Sub("observer_cls"),
                       absl::StrCat("unknown observer class '", *s.observer_cls,
                                    "'; expected one of: ", absl::StrJoin(known, ", ")));
  }
  if (r.Has("is_scale_quant") && !r.IsNull("is_scale_quant"))
    QUARRY_RETURN_IF_ERROR(r.Read("is_scale_quant", &s.is_scale_quant));
  if (r.Has("zero_point_type")) {
    QUARRY_RETURN_IF_ERROR(r.ReadOptional("zero_point_type", &s.zero_point_type));
  }
  if (const Json* q = r.Get("qat_spec"); q != nullptr && !q->is_null()) {
    ObjectReader qr(*q, r.Sub("qat_spec"), ctx);
    QUARRY_RETURN_IF_ERROR(qr.CheckObject());
    TQTSpec t;
    QUARRY_RETURN_IF_ERROR(qr.ReadOptional("threshold_init_meth", &t.threshold_init_meth));
    QUARRY_RETURN_IF_ERROR(qr.Finish());
    s.qat_spec = t;
  }
  // Keys later Quark versions write for per_block / buffer reuse; accepted and not used.
  for (const char* later : {"block_size", "enable_buffer_reuse", "max_input_numel"}) r.Ignore(later);
  QUARRY_RETURN_IF_ERROR(r.Finish());
  return s;
}

Json TensorSpecsToJsonValue(const std::optional<TensorSpecs>& specs) {
  if (!specs.has_value()) return nullptr;
  if (!specs->is_list && specs->specs.size() == 1) return SpecToJsonValue(specs->specs[0]);
  Json arr = Json::array();
  for (const auto& s : specs->specs) arr.push_back(SpecToJsonValue(s));
  return arr;
}

namespace {
absl::StatusOr<std::optional<TensorSpecs>> TensorSpecsFromJsonValue(const Json* j,
                                                                    const std::string& path,
                                                                    JsonContext& ctx) {
  if (j == nullptr || j->is_null()) return std::optional<TensorSpecs>();
  TensorSpecs out;
  if (j->is_array()) {
    out.is_list = true;
    if (j->empty()) return PathError(path, "a list of specs must not be empty");
    for (size_t i = 0; i < j->size(); ++i) {
      QUARRY_ASSIGN_OR_RETURN(auto s, SpecFromJsonValue((*j)[i], absl::StrCat(path, "[", i, "]"), ctx));
      out.specs.push_back(std::move(s));
    }
  } else {
    QUARRY_ASSIGN_OR_RETURN(auto s, SpecFromJsonValue(*j, path, ctx));
    out.specs.push_back(std::move(s));
  }
  return std::optional<TensorSpecs>(std::move(out));
}

absl::StatusOr<QuantizationConfig> QuantizationConfigFromJsonValue(const Json& j,
                                                                   const std::string& path,
                                                                   JsonContext& ctx) {
  ObjectReader r(j, path, ctx);
  QUARRY_RETURN_IF_ERROR(r.CheckObject());
  QuantizationConfig c;
  QUARRY_ASSIGN_OR_RETURN(c.input_tensors,
                          TensorSpecsFromJsonValue(r.Get("input_tensors"), r.Sub("input_tensors"), ctx));
  QUARRY_ASSIGN_OR_RETURN(c.output_tensors, TensorSpecsFromJsonValue(r.Get("output_tensors"),
                                                                     r.Sub("output_tensors"), ctx));
  QUARRY_ASSIGN_OR_RETURN(c.weight, TensorSpecsFromJsonValue(r.Get("weight"), r.Sub("weight"), ctx));
  QUARRY_ASSIGN_OR_RETURN(c.bias, TensorSpecsFromJsonValue(r.Get("bias"), r.Sub("bias"), ctx));
  QUARRY_RETURN_IF_ERROR(r.ReadOptional("target_device", &c.target_device));
  QUARRY_RETURN_IF_ERROR(r.Finish());
  return c;
}

absl::StatusOr<NamedConfigs> NamedConfigsFromJsonValue(const Json* j, const std::string& path,
                                                      JsonContext& ctx) {
  NamedConfigs out;
  if (j == nullptr || j->is_null()) return out;
  if (!j->is_object()) return PathError(path, "expected an object {name: config}");
  for (auto it = j->begin(); it != j->end(); ++it) {
    QUARRY_ASSIGN_OR_RETURN(auto c, QuantizationConfigFromJsonValue(
                                        it.value(), absl::StrCat(path, Quote(it.key())), ctx));
    out.emplace_back(it.key(), std::move(c));
  }
  return out;
}

Json NamedConfigsToJsonValue(const NamedConfigs& named) {
  Json j = Json::object();
  for (const auto& [name, c] : named) j[name] = QuantizationConfigToJsonValue(c);
  return j;
}
}  // namespace

Json QuantizationConfigToJsonValue(const QuantizationConfig& c) {
  Json j = Json::object();
  j["input_tensors"] = TensorSpecsToJsonValue(c.input_tensors);
  j["output_tensors"] = TensorSpecsToJsonValue(c.output_tensors);
  j["weight"] = TensorSpecsToJsonValue(c.weight);
  j["bias"] = TensorSpecsToJsonValue(c.bias);
  j["target_device"] = OptName(c.target_device);
  return j;
}

// ----- Algorithm configs (asdict order of each dataclass) -----

Json AlgoConfigToJsonValue(const AlgoConfig& algo) {
  Json j = Json::object();
  std::visit(
      [&](const auto& a) {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, SmoothQuantConfig>) {
          j["name"] = a.name;
          j["alpha"] = a.alpha;
          j["scale_clamp_min"] = a.scale_clamp_min;
          j["scaling_layers"] = ScalingLayersToJson(a.scaling_layers);
          j["model_decoder_layers"] = a.model_decoder_layers;
        } else if constexpr (std::is_same_v<T, AutoSmoothQuantConfig>) {
          j["name"] = a.name;
          j["scaling_layers"] =
              a.scaling_layers ? ScalingLayersToJson(*a.scaling_layers) : Json(nullptr);
          j["model_decoder_layers"] = Opt(a.model_decoder_layers);
          j["compute_scale_loss"] = Opt(a.compute_scale_loss);
        } else if constexpr (std::is_same_v<T, AWQConfig>) {
          j["name"] = a.name;
          j["scaling_layers"] = ScalingLayersToJson(a.scaling_layers);
          j["model_decoder_layers"] = a.model_decoder_layers;
        } else if constexpr (std::is_same_v<T, GPTQConfig>) {
          j["name"] = a.name;
          j["block_size"] = a.block_size;
          j["damp_percent"] = a.damp_percent;
          j["desc_act"] = a.desc_act;
          j["static_groups"] = a.static_groups;
          j["inside_layer_modules"] = a.inside_layer_modules;
          j["model_decoder_layers"] = a.model_decoder_layers;
        } else if constexpr (std::is_same_v<T, QronosConfig>) {
          j["inside_layer_modules"] = a.inside_layer_modules;
          j["model_decoder_layers"] = a.model_decoder_layers;
          j["name"] = a.name;
          j["block_size"] = a.block_size;
          j["desc_act"] = a.desc_act;
          j["static_groups"] = a.static_groups;
          j["alpha"] = a.alpha;
          j["beta"] = a.beta;
        } else if constexpr (std::is_same_v<T, RotationConfig>) {
          j["model_decoder_layers"] = a.model_decoder_layers;
          j["scaling_layers"] = JsonObjectOrNull(a.scaling_layers_json);
          j["name"] = a.name;
          j["random"] = a.random;
        } else if constexpr (std::is_same_v<T, QuaRotConfig>) {
          j["scaling_layers"] = JsonObjectOrNull(a.scaling_layers_json);
          j["name"] = a.name;
          j["r1"] = a.r1;
          j["r2"] = a.r2;
          j["r3"] = a.r3;
          j["r4"] = a.r4;
          j["rotation_size"] = Opt(a.rotation_size);
          j["random_r1"] = a.random_r1;
          j["random_r2"] = a.random_r2;
          j["optimized_rotation_path"] = Opt(a.optimized_rotation_path);
          j["backbone"] = a.backbone;
          j["model_decoder_layers"] = a.model_decoder_layers;
          j["v_proj"] = a.v_proj;
          j["o_proj"] = a.o_proj;
          j["self_attn"] = a.self_attn;
          j["mlp"] = a.mlp;
        }
      },
      algo);
  return j;
}

absl::StatusOr<AlgoConfig> AlgoConfigFromJsonValue(const Json& j, const std::string& path,
                                                   JsonContext& ctx) {
  ObjectReader r(j, path, ctx);
  QUARRY_RETURN_IF_ERROR(r.CheckObject());
  std::string name;
  QUARRY_RETURN_IF_ERROR(r.Read("name", &name));
  // Quark drops these model facts before building the dataclass.
  r.Ignore("num_attention_heads");
  r.Ignore("num_key_value_heads");
  auto opt_read = [&](const char* key, auto* field) -> absl::Status {
    if (!r.Has(key) || r.IsNull(key)) return absl::OkStatus();
    return r.Read(key, field);
  };
  auto scaling = [&](std::vector<ScalingLayer>* out) -> absl::Status {
    const Json* v = r.Get("scaling_layers");
    if (v == nullptr || v->is_null()) return absl::OkStatus();
    QUARRY_ASSIGN_OR_RETURN(*out, ScalingLayersFromJson(*v, r.Sub("scaling_layers")));
    return absl::OkStatus();
  };
  AlgoConfig result;
  if (name == "smooth") {
    SmoothQuantConfig a;
    QUARRY_RETURN_IF_ERROR(opt_read("alpha", &a.alpha));
    QUARRY_RETURN_IF_ERROR(opt_read("scale_clamp_min", &a.scale_clamp_min));
    QUARRY_RETURN_IF_ERROR(scaling(&a.scaling_layers));
    QUARRY_RETURN_IF_ERROR(opt_read("model_decoder_layers", &a.model_decoder_layers));
    result = a;
  } else if (name == "autosmoothquant") {
    AutoSmoothQuantConfig a;
    if (const Json* v = r.Get("scaling_layers"); v != nullptr && !v->is_null()) {
      QUARRY_ASSIGN_OR_RETURN(auto layers, ScalingLayersFromJson(*v, r.Sub("scaling_layers")));
      a.scaling_layers = std::move(layers);
    }
    QUARRY_RETURN_IF_ERROR(r.ReadOptional("model_decoder_layers", &a.model_decoder_layers));
    if (r.Has("compute_scale_loss"))
      QUARRY_RETURN_IF_ERROR(r.ReadOptional("compute_scale_loss", &a.compute_scale_loss));
    if (a.compute_scale_loss && *a.compute_scale_loss != "MSE" && *a.compute_scale_loss != "MAE")
      return PathError(r.Sub("compute_scale_loss"), "expected \"MSE\" or \"MAE\"");
    result = a;
  } else if (name == "awq") {
    AWQConfig a;
    QUARRY_RETURN_IF_ERROR(scaling(&a.scaling_layers));
    QUARRY_RETURN_IF_ERROR(opt_read("model_decoder_layers", &a.model_decoder_layers));
    result = a;
  } else if (name == "gptq") {
    GPTQConfig a;
    QUARRY_RETURN_IF_ERROR(opt_read("block_size", &a.block_size));
    QUARRY_RETURN_IF_ERROR(opt_read("damp_percent", &a.damp_percent));
    QUARRY_RETURN_IF_ERROR(opt_read("desc_act", &a.desc_act));
    QUARRY_RETURN_IF_ERROR(opt_read("static_groups", &a.static_groups));
    QUARRY_RETURN_IF_ERROR(opt_read("inside_layer_modules", &a.inside_layer_modules));
    QUARRY_RETURN_IF_ERROR(opt_read("model_decoder_layers", &a.model_decoder_layers));
    result = a;
  } else if (name == "qronos") {
    QronosConfig a;
    QUARRY_RETURN_IF_ERROR(r.Read("inside_layer_modules", &a.inside_layer_modules));
    QUARRY_RETURN_IF_ERROR(r.Read("model_decoder_layers", &a.model_decoder_layers));
    QUARRY_RETURN_IF_ERROR(opt_read("block_size", &a.block_size));
    QUARRY_RETURN_IF_ERROR(opt_read("desc_act", &a.desc_act));
    QUARRY_RETURN_IF_ERROR(opt_read("static_groups", &a.static_groups));
    QUARRY_RETURN_IF_ERROR(opt_read("alpha", &a.alpha));
    QUARRY_RETURN_IF_ERROR(opt_read("beta", &a.beta));
    result = a;
  } else if (name == "rotation") {
    RotationConfig a;
    QUARRY_RETURN_IF_ERROR(r.Read("model_decoder_layers", &a.model_decoder_layers));
    QUARRY_RETURN_IF_ERROR(ReadJsonObjectText(r, "scaling_layers", &a.scaling_layers_json, true));
    QUARRY_RETURN_IF_ERROR(opt_read("random", &a.random));
    result = a;
  } else if (name == "quarot") {
    QuaRotConfig a;
    QUARRY_RETURN_IF_ERROR(ReadJsonObjectText(r, "scaling_layers", &a.scaling_layers_json, true));
    QUARRY_RETURN_IF_ERROR(opt_read("r1", &a.r1));
    QUARRY_RETURN_IF_ERROR(opt_read("r2", &a.r2));
    QUARRY_RETURN_IF_ERROR(opt_read("r3", &a.r3));
    QUARRY_RETURN_IF_ERROR(opt_read("r4", &a.r4));
    QUARRY_RETURN_IF_ERROR(r.ReadOptional("rotation_size", &a.rotation_size));
    QUARRY_RETURN_IF_ERROR(opt_read("random_r1", &a.random_r1));
    QUARRY_RETURN_IF_ERROR(opt_read("random_r2", &a.random_r2));
    QUARRY_RETURN_IF_ERROR(r.ReadOptional("optimized_rotation_path", &a.optimized_rotation_path));
    QUARRY_RETURN_IF_ERROR(opt_read("backbone", &a.backbone));
    QUARRY_RETURN_IF_ERROR(opt_read("model_decoder_layers", &a.model_decoder_layers));
    QUARRY_RETURN_IF_ERROR(opt_read("v_proj", &a.v_proj));
    QUARRY_RETURN_IF_ERROR(opt_read("o_proj", &a.o_proj));
    QUARRY_RETURN_IF_ERROR(opt_read("self_attn", &a.self_attn));
    QUARRY_RETURN_IF_ERROR(opt_read("mlp", &a.mlp));
    result = a;
  } else {
    return PathError(r.Sub("name"),
                     absl::StrCat("unknown algorithm '", name,
                                  "'; expected one of: smooth, autosmoothquant, awq, gptq, "
                                  "qronos, rotation, quarot"));
  }
  QUARRY_RETURN_IF_ERROR(r.Finish());
  return result;
}

// ----- Config -----

Json ConfigToJsonValue(const Config& c) {
  Json j = Json::object();
  j["global_quant_config"] = QuantizationConfigToJsonValue(c.global_quant_config);
  j["exclude"] = c.exclude;
  if (c.algo_config.has_value()) {
    Json arr = Json::array();
    for (const auto& a : *c.algo_config) arr.push_back(AlgoConfigToJsonValue(a));
    j["algo_config"] = arr;
  } else {
    j["algo_config"] = nullptr;
  }
  j["softmax_quant_spec"] =
      c.softmax_quant_spec ? SpecToJsonValue(*c.softmax_quant_spec) : Json(nullptr);
  j["quant_method"] = "quark";
  j["layer_type_quant_config"] = NamedConfigsToJsonValue(c.layer_type_quant_config);
  j["layer_quant_config"] = NamedConfigsToJsonValue(c.layer_quant_config);
  j["kv_cache_quant_config"] = NamedConfigsToJsonValue(c.kv_cache_quant_config);
  j["quant_mode"] = std::string(Name(c.quant_mode));
  j["version"] = Opt(c.version);
  // Fields Quark's to_dict drops (kv_cache_group and min_kv_scale reach config.json only through
  // the export block); kept when not default so a round trip loses nothing.
  if (!c.kv_cache_group.empty()) j["kv_cache_group"] = c.kv_cache_group;
  if (c.min_kv_scale != 0.0f) j["min_kv_scale"] = static_cast<double>(c.min_kv_scale);
  if (c.log_severity_level != std::optional<int>(1)) j["log_severity_level"] = Opt(c.log_severity_level);
  return j;
}

absl::StatusOr<Config> ConfigFromJsonValue(const Json& j, JsonContext& ctx) {
  ObjectReader r(j, "", ctx);
  QUARRY_RETURN_IF_ERROR(r.CheckObject());
  Config c;
  const Json* g = r.Get("global_quant_config");
  if (g == nullptr || g->is_null())
    return PathError("global_quant_config", "required key is missing");
  QUARRY_ASSIGN_OR_RETURN(c.global_quant_config,
                          QuantizationConfigFromJsonValue(*g, "global_quant_config", ctx));
  QUARRY_ASSIGN_OR_RETURN(c.layer_type_quant_config,
                          NamedConfigsFromJsonValue(r.Get("layer_type_quant_config"),
                                                    "layer_type_quant_config", ctx));
  for (const auto& [type, unused] : c.layer_type_quant_config) {
    if (type != "Linear" && type != "Conv2d" && type != "ConvTranspose2d")
      return PathError(absl::StrCat("layer_type_quant_config", Quote(type)),
                       "unsupported layer type; expected Linear, Conv2d or ConvTranspose2d");
  }
  QUARRY_ASSIGN_OR_RETURN(c.layer_quant_config,
                          NamedConfigsFromJsonValue(r.Get("layer_quant_config"),
                                                    "layer_quant_config", ctx));
  QUARRY_ASSIGN_OR_RETURN(c.kv_cache_quant_config,
                          NamedConfigsFromJsonValue(r.Get("kv_cache_quant_config"),
                                                    "kv_cache_quant_config", ctx));
  if (const Json* e = r.Get("exclude"); e != nullptr && !e->is_null())
    QUARRY_RETURN_IF_ERROR(Convert(*e, "exclude", &c.exclude));
  if (const Json* a = r.Get("algo_config"); a != nullptr && !a->is_null()) {
    std::vector<AlgoConfig> algos;
    if (a->is_array()) {
      for (size_t i = 0; i < a->size(); ++i) {
        QUARRY_ASSIGN_OR_RETURN(auto algo, AlgoConfigFromJsonValue(
                                               (*a)[i], absl::StrCat("algo_config[", i, "]"), ctx));
        algos.push_back(std::move(algo));
      }
    } else {  // older Quark wrote a single dict
      QUARRY_ASSIGN_OR_RETURN(auto algo, AlgoConfigFromJsonValue(*a, "algo_config", ctx));
      algos.push_back(std::move(algo));
    }
    c.algo_config = std::move(algos);
  }
  if (const Json* s = r.Get("softmax_quant_spec"); s != nullptr && !s->is_null()) {
    QUARRY_ASSIGN_OR_RETURN(auto spec, SpecFromJsonValue(*s, "softmax_quant_spec", ctx));
    c.softmax_quant_spec = std::move(spec);
  }
  if (const Json* m = r.Get("quant_method"); m != nullptr && !m->is_null()) {
    if (!m->is_string() || m->get<std::string>() != "quark")
      return PathError("quant_method", absl::StrCat("expected \"quark\", got ", m->dump()));
  }
  if (r.Has("quant_mode") && !r.IsNull("quant_mode"))
    QUARRY_RETURN_IF_ERROR(r.Read("quant_mode", &c.quant_mode));
  if (r.Has("version")) QUARRY_RETURN_IF_ERROR(r.ReadOptional("version", &c.version));
  if (r.Has("kv_cache_group") && !r.IsNull("kv_cache_group"))
    QUARRY_RETURN_IF_ERROR(r.Read("kv_cache_group", &c.kv_cache_group));
  if (r.Has("min_kv_scale") && !r.IsNull("min_kv_scale"))
    QUARRY_RETURN_IF_ERROR(r.Read("min_kv_scale", &c.min_kv_scale));
  if (r.Has("log_severity_level"))
    QUARRY_RETURN_IF_ERROR(r.ReadOptional("log_severity_level", &c.log_severity_level));
  if (c.log_severity_level && (*c.log_severity_level < 0 || *c.log_severity_level > 4))
    return PathError("log_severity_level", "must be 0 (DEBUG) .. 4 (CRITICAL)");
  // The export block of an exported model carries kv_cache_group and min_kv_scale.
  if (const Json* ex = r.Get("export"); ex != nullptr && ex->is_object()) {
    ObjectReader er(*ex, "export", ctx);
    if (er.Has("kv_cache_group") && !er.IsNull("kv_cache_group") && c.kv_cache_group.empty())
      QUARRY_RETURN_IF_ERROR(er.Read("kv_cache_group", &c.kv_cache_group));
    if (er.Has("min_kv_scale") && !er.IsNull("min_kv_scale") && c.min_kv_scale == 0.0f)
      QUARRY_RETURN_IF_ERROR(er.Read("min_kv_scale", &c.min_kv_scale));
    for (const char* k : {"pack_method", "weight_format", "weight_merge_groups"}) er.Ignore(k);
    QUARRY_RETURN_IF_ERROR(er.Finish());
  }
  r.Ignore("kv_cache_post_rope");  // later Quark versions; post-RoPE KV quantization unsupported
  QUARRY_RETURN_IF_ERROR(r.Finish());
  return c;
}

absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view source) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": invalid JSON at byte ", e.byte, ": ", e.what()));
  } catch (const Json::exception& e) {  // out_of_range.406: a number beyond double (1e309)
    return absl::InvalidArgumentError(absl::StrCat(source, ": invalid JSON: ", e.what()));
  }
}

absl::StatusOr<Json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseJson(ss.str(), path);
}

}  // namespace internal

using internal::Json;

absl::StatusOr<Config> ConfigFromJson(absl::string_view json, const JsonReadOptions& options,
                                      std::vector<std::string>* warnings) {
  QUARRY_ASSIGN_OR_RETURN(Json j, internal::ParseJson(json, "config"));
  internal::JsonContext ctx{options, warnings};
  return internal::ConfigFromJsonValue(j, ctx);
}

absl::StatusOr<Config> ConfigFromJsonFile(const std::string& path, const JsonReadOptions& options,
                                          std::vector<std::string>* warnings) {
  QUARRY_ASSIGN_OR_RETURN(Json j, internal::ReadJsonFile(path));
  internal::JsonContext ctx{options, warnings};
  auto c = internal::ConfigFromJsonValue(j, ctx);
  if (!c.ok()) return Annotate(c.status(), path);
  return c;
}

absl::StatusOr<Config> ConfigFromModelDir(const std::string& dir, const JsonReadOptions& options,
                                          std::vector<std::string>* warnings) {
  const std::string path = dir + "/config.json";
  QUARRY_ASSIGN_OR_RETURN(Json j, internal::ReadJsonFile(path));
  if (!j.is_object() || !j.contains("quantization_config"))
    return absl::NotFoundError(absl::StrCat(path, " has no quantization_config"));
  internal::JsonContext ctx{options, warnings};
  auto c = internal::ConfigFromJsonValue(j["quantization_config"], ctx);
  if (!c.ok()) return Annotate(c.status(), absl::StrCat(path, ": quantization_config"));
  return c;
}

std::string ConfigToJson(const Config& config, int indent) {
  return internal::ConfigToJsonValue(config).dump(indent);
}

absl::StatusOr<QuantizationSpec> SpecFromJson(absl::string_view json,
                                              const JsonReadOptions& options) {
  QUARRY_ASSIGN_OR_RETURN(Json j, internal::ParseJson(json, "spec"));
  internal::JsonContext ctx{options, nullptr};
  return internal::SpecFromJsonValue(j, "spec", ctx);
}

std::string SpecToJson(const QuantizationSpec& spec, int indent) {
  return internal::SpecToJsonValue(spec).dump(indent);
}

absl::StatusOr<TensorSpecs> TensorSpecsFromJson(absl::string_view json,
                                                const JsonReadOptions& options) {
  QUARRY_ASSIGN_OR_RETURN(Json j, internal::ParseJson(json, "spec"));
  internal::JsonContext ctx{options, nullptr};
  QUARRY_ASSIGN_OR_RETURN(auto specs, internal::TensorSpecsFromJsonValue(&j, "spec", ctx));
  if (!specs.has_value()) return absl::InvalidArgumentError("spec: must not be null");
  return *specs;
}

absl::StatusOr<AlgoConfig> AlgoConfigFromJson(absl::string_view json,
                                              const JsonReadOptions& options) {
  QUARRY_ASSIGN_OR_RETURN(Json j, internal::ParseJson(json, "algo_config"));
  internal::JsonContext ctx{options, nullptr};
  return internal::AlgoConfigFromJsonValue(j, "algo_config", ctx);
}

std::string AlgoConfigToJson(const AlgoConfig& algo, int indent) {
  return internal::AlgoConfigToJsonValue(algo).dump(indent);
}

absl::StatusOr<AlgoConfig> LoadQuantAlgoConfigFromFile(const std::string& path) {
  QUARRY_ASSIGN_OR_RETURN(Json j, internal::ReadJsonFile(path));
  internal::JsonContext ctx{{}, nullptr};
  auto a = internal::AlgoConfigFromJsonValue(j, "", ctx);
  if (!a.ok()) return Annotate(a.status(), path);
  return a;
}

absl::StatusOr<AlgoConfig> LoadPreOptimizationConfigFromFile(const std::string& path) {
  QUARRY_ASSIGN_OR_RETURN(AlgoConfig a, LoadQuantAlgoConfigFromFile(path));
  absl::string_view name = AlgoName(a);
  if (!std::holds_alternative<RotationConfig>(a) && !std::holds_alternative<QuaRotConfig>(a) &&
      !std::holds_alternative<SmoothQuantConfig>(a))
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": '", name, "' is not a pre-quantization optimization; expected rotation, quarot "
        "or smooth"));
  return a;
}

}  // namespace quarry
