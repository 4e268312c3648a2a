#include "quarry/config_validate.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace quarry {
namespace {

class Issues {
 public:
  explicit Issues(std::vector<ConfigIssue>* out) : out_(out) {}
  void Error(const std::string& path, std::string msg) {
    out_->push_back({ConfigIssue::Severity::kError, path, std::move(msg)});
  }
  void Warn(const std::string& path, std::string msg) {
    out_->push_back({ConfigIssue::Severity::kWarning, path, std::move(msg)});
  }

 private:
  std::vector<ConfigIssue>* out_;
};

std::string Field(const std::string& path, const char* field) {
  return path.empty() ? field : absl::StrCat(path, ".", field);
}

bool IsFp8(Dtype d) { return d == Dtype::kFp8E4M3 || d == Dtype::kFp8E5M2; }

// Quark requires is_dynamic / observer_cls / qscheme for these dtypes.
bool NeedsObserverFields(Dtype d) { return IsIntegerDtype(d) || IsFp8(d); }

bool IsTrainingObserver(absl::string_view cls) {
  return cls == "TQTObserver" || cls == "LSQObserver";
}
bool IsPof2Observer(absl::string_view cls) {
  return cls.find("PowOf2") != absl::string_view::npos;
}
bool IsHistogramObserver(absl::string_view cls) {
  return cls == "PerTensorHistogramObserver" || cls == "PerTensorHistogramObserverPro" ||
         cls == "PerTensorPercentileObserver" || cls == "PerTensorMSEObserver";
}

void CheckObserverServesDtype(const QuantizationSpec& s, const std::string& path, Issues& out) {
  if (!s.observer_cls) return;
  const std::string& cls = *s.observer_cls;
  const std::string p = Field(path, "observer_cls");
  if (IsTrainingObserver(cls)) {
    out.Error(p, absl::StrCat(cls, " learns its range during training (QAT); Quarry runs "
                              "post-training quantization only: use a min_max, percentile, "
                              "MSE or histogram observer"));
  } else if (cls == "PerBlockMXObserver" || cls == "PerBlockMXDiffsObserver") {
    if (!IsFloatElementDtype(s.dtype))
      out.Error(p, absl::StrCat(cls, " serves fp8/fp6/fp4 elements, not dtype ", Name(s.dtype),
                                "; use PerGroupMinMaxObserver for integer groups"));
  } else if (cls == "PerGroupMinMaxObserver") {
    if (!IsIntegerDtype(s.dtype))
      out.Error(p, absl::StrCat("PerGroupMinMaxObserver serves integer dtypes, not ",
                                Name(s.dtype), "; use PerBlockMXObserver for fp4/fp6/fp8 groups"));
  } else if (cls == "PerBlockBFPObserver") {
    out.Error(p, "PerBlockBFPObserver belongs to dtype bfp16, which takes no observer");
  } else if (IsPof2Observer(cls)) {
    if (!IsIntegerDtype(s.dtype))
      out.Error(p, absl::StrCat(cls, " computes integer power-of-two scales; dtype ",
                                Name(s.dtype), " is not an integer type"));
  } else if (IsHistogramObserver(cls)) {
    if (!IsIntegerDtype(s.dtype) && !IsFp8(s.dtype))
      out.Error(p, absl::StrCat(cls, " serves integer and fp8 dtypes, not ", Name(s.dtype)));
  } else if (cls == "PlaceholderObserver") {
    if (!IsCastDtype(s.dtype))
      out.Error(p, absl::StrCat("PlaceholderObserver computes no scale; dtype ", Name(s.dtype),
                                " needs a real observer"));
  }
}

void CheckGroupSize(const QuantizationSpec& s, const std::string& path, Issues& out) {
  if (!s.group_size) return;
  if (*s.group_size == 0 || *s.group_size < -1)
    out.Error(Field(path, "group_size"),
              absl::StrCat("must be > 0 (or -1 for the whole dimension), got ", *s.group_size));
}

}  // namespace

std::vector<ConfigIssue> ValidateSpec(const QuantizationSpec& s, const std::string& path) {
  std::vector<ConfigIssue> issues;
  Issues out(&issues);
  const std::string dt(Name(s.dtype));

  // mx_element_dtype only makes sense for dtype mx.
  if (s.mx_element_dtype && s.dtype != Dtype::kMx)
    out.Error(Field(path, "mx_element_dtype"),
              absl::StrCat("only meaningful for dtype mx, not ", dt,
                           " (for OCP MX fp formats set dtype to the element type)"));

  if (IsBlockDtype(s.dtype)) {
    if (!s.ch_axis) out.Error(Field(path, "ch_axis"), absl::StrCat("required for dtype ", dt));
    if (!s.group_size) {
      out.Error(Field(path, "group_size"), absl::StrCat("required for dtype ", dt, " (block size)"));
    } else if (*s.group_size <= 0) {
      out.Error(Field(path, "group_size"), "block size must be > 0");
    } else if (s.dtype == Dtype::kBfp16 && *s.group_size != 8) {
      out.Error(Field(path, "group_size"), "bfp16 uses blocks of 8");
    } else if ((s.dtype == Dtype::kMx6 || s.dtype == Dtype::kMx9) && *s.group_size != 16 &&
               *s.group_size != 32) {
      out.Error(Field(path, "group_size"), absl::StrCat(dt, " blocks are 16 or 32 elements"));
    } else if (s.dtype == Dtype::kMx && *s.group_size != 32) {
      out.Error(Field(path, "group_size"), "OCP MX blocks are 32 elements");
    }
    if (s.dtype == Dtype::kMx) {
      if (!s.mx_element_dtype) {
        out.Error(Field(path, "mx_element_dtype"), "required for dtype mx (e.g. int8, fp4)");
      } else if (!IsFloatElementDtype(*s.mx_element_dtype) && *s.mx_element_dtype != Dtype::kInt8) {
        out.Error(Field(path, "mx_element_dtype"),
                  absl::StrCat("MX elements are fp8_e4m3, fp8_e5m2, fp6_e3m2, fp6_e2m3, fp4 or "
                               "int8, not ", Name(*s.mx_element_dtype)));
      }
    }
    if (s.scale_calculation_mode && *s.scale_calculation_mode != "even" &&
        *s.scale_calculation_mode != "floor" && *s.scale_calculation_mode != "ceil")
      out.Error(Field(path, "scale_calculation_mode"), "expected even, floor or ceil");
    // As Quark: other fields only warn that they take no effect.
    auto no_effect = [&](bool set, const char* field) {
      if (set) out.Warn(Field(path, field), absl::StrCat("has no effect for dtype ", dt));
    };
    no_effect(s.observer_cls.has_value(), "observer_cls");
    no_effect(s.qscheme.has_value(), "qscheme");
    no_effect(s.symmetric.has_value(), "symmetric");
    no_effect(s.round_method.has_value(), "round_method");
    no_effect(s.scale_type.has_value(), "scale_type");
    no_effect(s.scale_format.has_value(), "scale_format");
    return issues;
  }

  if (IsCastDtype(s.dtype)) {
    auto no_effect = [&](bool set, const char* field) {
      if (set) out.Warn(Field(path, field), absl::StrCat("has no effect: ", dt, " is a plain cast"));
    };
    no_effect(s.observer_cls.has_value() && *s.observer_cls != "PlaceholderObserver",
              "observer_cls");
    no_effect(s.qscheme.has_value(), "qscheme");
    no_effect(s.ch_axis.has_value(), "ch_axis");
    no_effect(s.group_size.has_value(), "group_size");
    no_effect(s.symmetric.has_value(), "symmetric");
    no_effect(s.round_method.has_value(), "round_method");
    no_effect(s.scale_type.has_value(), "scale_type");
    no_effect(s.scale_format.has_value(), "scale_format");
    return issues;
  }

  if (NeedsObserverFields(s.dtype) && !s.is_dynamic)
    out.Error(Field(path, "is_dynamic"), absl::StrCat("required for dtype ", dt,
                                                     " (true: per call, false: calibrated)"));
  // Quark 0.10 leaves int2 out of this rule, which leaves its rounding undefined; we require the
  // three fields for every integer dtype.
  if (IsIntegerDtype(s.dtype)) {
    if (!s.symmetric) out.Error(Field(path, "symmetric"), absl::StrCat("required for dtype ", dt));
    if (!s.round_method)
      out.Error(Field(path, "round_method"),
                absl::StrCat("required for dtype ", dt, " (half_even, round or floor)"));
    if (!s.scale_type)
      out.Error(Field(path, "scale_type"), absl::StrCat("required for dtype ", dt, " (float or pof2)"));
  }
  if (!s.observer_cls)
    out.Error(Field(path, "observer_cls"), absl::StrCat("required for dtype ", dt));
  if (!s.qscheme) {
    out.Error(Field(path, "qscheme"),
              absl::StrCat("required for dtype ", dt, " (per_tensor, per_channel or per_group)"));
  } else {
    const std::string obs = s.observer_cls.value_or("");
    switch (*s.qscheme) {
      case QSchemeType::kPerTensor:
        if (s.observer_cls && !IsPerTensorObserver(obs))
          out.Error(Field(path, "observer_cls"),
                    absl::StrCat(obs, " is not a per-tensor observer (qscheme per_tensor)"));
        break;
      case QSchemeType::kPerChannel:
        if (s.observer_cls && !IsPerChannelObserver(obs))
          out.Error(Field(path, "observer_cls"),
                    absl::StrCat(obs, " is not a per-channel observer (qscheme per_channel)"));
        if (!s.ch_axis) out.Error(Field(path, "ch_axis"), "required for per_channel");
        break;
      case QSchemeType::kPerGroup:
        if (s.observer_cls && !IsPerGroupObserver(obs))
          out.Error(Field(path, "observer_cls"),
                    absl::StrCat(obs, " is not a per-group observer (qscheme per_group)"));
        if (!s.ch_axis) out.Error(Field(path, "ch_axis"), "required for per_group");
        if (!s.group_size) out.Error(Field(path, "group_size"), "must be > 0 (or -1) for per_group");
        break;
      case QSchemeType::kPerBlock:
        out.Error(Field(path, "qscheme"), "per_block (2-D blocks) is not supported yet; use "
                                          "per_group");
        break;
    }
  }
  CheckGroupSize(s, path, out);
  CheckObserverServesDtype(s, path, out);

  const bool fp_group = IsFloatElementDtype(s.dtype) && s.qscheme == QSchemeType::kPerGroup;
  if (s.scale_format) {
    const std::string& f = *s.scale_format;
    if (f != "float32" && f != "e8m0" && f != "e4m3") {
      out.Error(Field(path, "scale_format"), absl::StrCat("unknown scale_format '", f,
                                                          "'; expected float32, e8m0 or e4m3"));
    } else if (f != "float32" && !fp_group) {
      out.Error(Field(path, "scale_format"),
                absl::StrCat("'", f, "' scales exist only for per_group fp4/fp6/fp8 (MX); dtype ",
                             dt, " uses float32 scales"));
    } else if (f == "e4m3" && s.dtype != Dtype::kFp4) {
      out.Error(Field(path, "scale_format"), "e4m3 (two-level fp8) scales are for fp4 only");
    }
  }
  if (s.scale_calculation_mode) {
    const std::string& m = *s.scale_calculation_mode;
    if (m != "even" && m != "floor" && m != "ceil")
      out.Error(Field(path, "scale_calculation_mode"), "expected even, floor or ceil");
    else if (s.scale_format != std::optional<std::string>("e8m0"))
      out.Warn(Field(path, "scale_calculation_mode"),
               "has no effect unless scales are e8m0 (OCP MX)");
  }
  if (s.scale_type == ScaleType::kPof2 && !IsIntegerDtype(s.dtype))
    out.Error(Field(path, "scale_type"), "power-of-two scales are for integer dtypes");
  if (!IsIntegerDtype(s.dtype)) {
    if (s.round_method && *s.round_method != RoundType::kHalfEven)
      out.Warn(Field(path, "round_method"),
               absl::StrCat("float formats always round half to even; ", Name(*s.round_method),
                            " is ignored"));
    if (s.symmetric == false)
      out.Warn(Field(path, "symmetric"),
               absl::StrCat(dt, " quantization is always symmetric; false is ignored"));
    if (s.zero_point_type == ZeroPointType::kFloat32)
      out.Warn(Field(path, "zero_point_type"), absl::StrCat(dt, " has no zero point"));
  }
  return issues;
}

std::vector<ConfigIssue> ValidateTensorSpecs(const TensorSpecs& specs, const std::string& path) {
  std::vector<ConfigIssue> issues;
  Issues out(&issues);
  if (specs.specs.empty()) {
    out.Error(path, "empty list of specs");
    return issues;
  }
  if (specs.specs.size() > 2) {
    out.Error(path, absl::StrCat("at most two stages are supported (ProgressiveSpec / "
                                 "ScaleQuantSpec), got ", specs.specs.size()));
  }
  for (size_t i = 0; i < specs.specs.size(); ++i) {
    const std::string p = specs.is_list ? absl::StrCat(path, "[", i, "]") : path;
    auto sub = ValidateSpec(specs.specs[i], p);
    issues.insert(issues.end(), sub.begin(), sub.end());
    if (i == 0 && specs.specs[i].is_scale_quant)
      out.Error(Field(p, "is_scale_quant"), "only the second stage of a ScaleQuantSpec quantizes "
                                            "scales");
  }
  if (specs.specs.size() == 2 && specs.specs[1].is_scale_quant) {
    const auto& first = specs.specs[0];
    if (IsBlockDtype(first.dtype) || IsCastDtype(first.dtype))
      out.Error(absl::StrCat(path, "[0]"), absl::StrCat("ScaleQuantSpec's first stage must have "
                                                        "float scales, not dtype ",
                                                        Name(first.dtype)));
  }
  return issues;
}

std::vector<ConfigIssue> ValidateQuantizationConfig(const QuantizationConfig& c,
                                                    const std::string& path) {
  std::vector<ConfigIssue> issues;
  auto add = [&](const std::optional<TensorSpecs>& s, const char* field) {
    if (!s) return;
    auto sub = ValidateTensorSpecs(*s, Field(path, field));
    issues.insert(issues.end(), sub.begin(), sub.end());
  };
  add(c.input_tensors, "input_tensors");
  add(c.output_tensors, "output_tensors");
  add(c.weight, "weight");
  add(c.bias, "bias");
  return issues;
}

std::vector<ConfigIssue> ValidateAlgoConfig(const AlgoConfig& algo, const std::string& path) {
  std::vector<ConfigIssue> issues;
  Issues out(&issues);
  std::visit(
      [&](const auto& a) {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, GPTQConfig>) {
          if (a.block_size <= 0) out.Error(Field(path, "block_size"), "must be > 0");
          if (!(a.damp_percent > 0)) out.Error(Field(path, "damp_percent"), "must be > 0");
          if (a.desc_act && !a.static_groups)
            out.Warn(Field(path, "static_groups"),
                     "desc_act without static_groups runs (as the reference GPTQ does) but "
                     "Quark rejects it and its export requires static_groups=true");
        } else if constexpr (std::is_same_v<T, QronosConfig>) {
          if (a.block_size <= 0) out.Error(Field(path, "block_size"), "must be > 0");
          if (!(a.alpha > 0)) out.Error(Field(path, "alpha"), "must be > 0");
          if (!(a.beta > 0)) out.Error(Field(path, "beta"), "must be > 0");
          if (a.desc_act && !a.static_groups)
            out.Warn(Field(path, "static_groups"),
                     "desc_act without static_groups: Quark rejects this combination");
        } else if constexpr (std::is_same_v<T, SmoothQuantConfig>) {
          if (a.alpha < 0 || a.alpha > 1) out.Error(Field(path, "alpha"), "must be in [0, 1]");
          if (!(a.scale_clamp_min > 0)) out.Error(Field(path, "scale_clamp_min"), "must be > 0");
        } else if constexpr (std::is_same_v<T, QuaRotConfig>) {
          if ((a.random_r1 || a.random_r2) && a.rotation_size)
            out.Error(Field(path, "rotation_size"),
                      "random Hadamard rotations need the full size (as in Quark)");
          if (a.optimized_rotation_path && a.rotation_size)
            out.Error(Field(path, "rotation_size"),
                      "cannot be combined with optimized_rotation_path (as in Quark)");
        }
      },
      algo);
  return issues;
}

std::vector<ConfigIssue> ValidateConfig(const Config& c) {
  std::vector<ConfigIssue> issues;
  Issues out(&issues);
  auto append = [&](std::vector<ConfigIssue> sub) {
    issues.insert(issues.end(), sub.begin(), sub.end());
  };
  append(ValidateQuantizationConfig(c.global_quant_config, "global_quant_config"));
  auto named = [&](const NamedConfigs& configs, const char* field) {
    for (const auto& [name, qc] : configs) {
      const std::string p = absl::StrCat(field, "[\"", name, "\"]");
      if (name.empty()) out.Error(p, "empty layer name or pattern");
      append(ValidateQuantizationConfig(qc, p));
    }
  };
  named(c.layer_type_quant_config, "layer_type_quant_config");
  named(c.layer_quant_config, "layer_quant_config");
  named(c.kv_cache_quant_config, "kv_cache_quant_config");
  // Quark uses the matched layer config as is: a None tensor field means "not quantized", it is
  // NOT inherited from global_quant_config (despite the seed's docstring). Say so when it matters.
  auto no_inherit = [&](const NamedConfigs& configs, const char* field) {
    for (const auto& [name, qc] : configs) {
      const std::string p = absl::StrCat(field, "[\"", name, "\"]");
      if (!qc.weight && c.global_quant_config.weight)
        out.Warn(Field(p, "weight"),
                 "is None: matching layers' weights are not quantized (a layer config does not "
                 "inherit from global_quant_config); set it to keep them quantized");
      if (!qc.input_tensors && c.global_quant_config.input_tensors)
        out.Warn(Field(p, "input_tensors"),
                 "is None: matching layers' inputs are not quantized (no inheritance from "
                 "global_quant_config)");
    }
  };
  no_inherit(c.layer_type_quant_config, "layer_type_quant_config");
  no_inherit(c.layer_quant_config, "layer_quant_config");
  for (const auto& [name, qc] : c.kv_cache_quant_config) {
    if (!qc.output_tensors)
      out.Warn(absl::StrCat("kv_cache_quant_config[\"", name, "\"].output_tensors"),
               "is None: this entry quantizes no KV cache");
  }
  if (!c.kv_cache_quant_config.empty() && c.kv_cache_group.empty())
    out.Warn("kv_cache_group", "is empty while kv_cache_quant_config is set: k/v output scales "
                               "are exported per layer, not merged (vLLM expects them merged)");
  if (c.min_kv_scale < 0) out.Error("min_kv_scale", "must be >= 0");
  if (c.softmax_quant_spec) {
    append(ValidateSpec(*c.softmax_quant_spec, "softmax_quant_spec"));
    if (c.softmax_quant_spec->qscheme && *c.softmax_quant_spec->qscheme != QSchemeType::kPerTensor)
      out.Error("softmax_quant_spec.qscheme", "attention probabilities are quantized per_tensor");
  }
  for (size_t i = 0; i < c.exclude.size(); ++i)
    if (c.exclude[i].empty()) out.Error(absl::StrCat("exclude[", i, "]"), "empty pattern");
  if (c.algo_config) {
    for (size_t i = 0; i < c.algo_config->size(); ++i)
      append(ValidateAlgoConfig((*c.algo_config)[i], absl::StrCat("algo_config[", i, "]")));
  }
  if (c.log_severity_level && (*c.log_severity_level < 0 || *c.log_severity_level > 4))
    out.Error("log_severity_level", "must be 0 (DEBUG) .. 4 (CRITICAL)");
  if (c.quant_mode == QuantizationMode::kFxGraphMode)
    out.Warn("quant_mode", "fx_graph_mode is treated as eager_mode (Quarry runs the model's own "
                           "layer code)");
  return issues;
}

absl::Status IssuesToStatus(const std::vector<ConfigIssue>& issues,
                            std::vector<std::string>* warnings) {
  std::vector<std::string> errors;
  for (const auto& i : issues) {
    if (i.is_error()) {
      errors.push_back(i.ToString());
    } else if (warnings != nullptr) {
      warnings->push_back(i.ToString());
    }
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
}

absl::Status CheckConfig(const Config& config, std::vector<std::string>* warnings) {
  return IssuesToStatus(ValidateConfig(config), warnings);
}

}  // namespace quarry
