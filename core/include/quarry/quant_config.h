// Quark's configuration objects in C++: QuantizationSpec (how one tensor is quantized),
// QuantizationConfig (the specs of one layer's input/output/weight/bias), the algorithm configs,
// and Config (the whole model). Field names and defaults are those of
// ../shared/seeds/quark-config-api.txt; std::nullopt is Quark's None.
// Plain value types: copyable, comparable, no hidden state; thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/string_view.h"
#include "quarry/quant_types.h"

namespace quarry {

// TQTSpec (a QATSpec): Trained Quantization Thresholds, arXiv 1903.08066.
struct TQTSpec {
  std::optional<TQTThresholdInitMeth> threshold_init_meth;  // default None
  bool operator==(const TQTSpec&) const = default;
};

struct QuantizationSpec {
  Dtype dtype = Dtype::kInt8;                         // required
  std::optional<std::string> observer_cls;            // Quark class name; default None
  std::optional<bool> is_dynamic;                     // default None
  std::optional<QSchemeType> qscheme;                 // default None
  std::optional<int> ch_axis;                         // default None
  std::optional<int> group_size;                      // default None (MX: block size)
  std::optional<bool> symmetric;                      // default None
  std::optional<RoundType> round_method;              // default None
  std::optional<ScaleType> scale_type;                // default None
  std::optional<std::string> scale_format;            // default None ("float32", "e8m0", "e4m3")
  std::optional<std::string> scale_calculation_mode;  // default None ("even", "floor", "ceil")
  std::optional<TQTSpec> qat_spec;                    // default None
  std::optional<Dtype> mx_element_dtype;              // default None
  std::optional<ZeroPointType> zero_point_type = ZeroPointType::kInt32;  // default int32
  bool is_scale_quant = false;                        // default False
  // Quarry extension, not part of Quark's config language (never read from or written to JSON):
  // with scale_type float16 and integer zero points, each scale is also rounded (to fewer
  // significant bits where needed) so that scale * zero_point is a float16 too. Set by
  // export_format gguf, whose Q4_1 blocks store the minimum -scale * zero_point in float16.
  bool exact_float16_min = false;
  bool operator==(const QuantizationSpec&) const = default;
};

// "QuantizationSpec | list[QuantizationSpec]". A list holds the stages of a two-stage spec
// (ProgressiveSpec / ScaleQuantSpec); `is_list` remembers that the user wrote a list so JSON
// round-trips byte-stable.
struct TensorSpecs {
  std::vector<QuantizationSpec> specs;
  bool is_list = false;
  TensorSpecs() = default;
  TensorSpecs(QuantizationSpec s) : specs{std::move(s)} {}  // NOLINT: implicit, like Quark
  TensorSpecs(std::vector<QuantizationSpec> s) : specs(std::move(s)), is_list(true) {}  // NOLINT
  const QuantizationSpec& front() const { return specs.front(); }
  bool operator==(const TensorSpecs&) const = default;
};

struct QuantizationConfig {
  std::optional<TensorSpecs> input_tensors;   // default None
  std::optional<TensorSpecs> output_tensors;  // default None
  std::optional<TensorSpecs> weight;          // default None
  std::optional<TensorSpecs> bias;            // default None
  std::optional<DeviceType> target_device;    // default None
  bool operator==(const QuantizationConfig&) const = default;
};

// ----- Algorithm configs (seed defaults; where the docstring and the signature disagree the
// signature, which is also Quark's code, wins) -----

// One scaling-layer group of SmoothQuant / AWQ / AutoSmoothQuant.
struct ScalingLayer {
  std::string prev_op;              // e.g. "input_layernorm"
  std::vector<std::string> layers;  // e.g. {"self_attn.q_proj", ...}
  std::string inp;                  // e.g. "self_attn.q_proj"
  std::optional<std::string> module2inspect;  // e.g. "self_attn"; absent when not given
  std::string extra_json;           // other keys as a JSON object text ("" = none)
  bool operator==(const ScalingLayer&) const = default;
};

struct SmoothQuantConfig {
  std::string name = "smooth";
  double alpha = 1;
  double scale_clamp_min = 1e-3;
  std::vector<ScalingLayer> scaling_layers;  // default [] = detect automatically
  std::string model_decoder_layers;          // default ""
  bool operator==(const SmoothQuantConfig&) const = default;
};

struct AutoSmoothQuantConfig {
  std::string name = "autosmoothquant";
  std::optional<std::vector<ScalingLayer>> scaling_layers;  // default None
  std::optional<std::string> model_decoder_layers;          // default None
  std::optional<std::string> compute_scale_loss = "MSE";    // "MSE" or "MAE"
  bool operator==(const AutoSmoothQuantConfig&) const = default;
};

struct AWQConfig {
  std::string name = "awq";
  std::vector<ScalingLayer> scaling_layers;  // default [] = detect automatically
  std::string model_decoder_layers;          // default ""
  bool operator==(const AWQConfig&) const = default;
};

struct GPTQConfig {
  std::string name = "gptq";
  int block_size = 128;
  double damp_percent = 0.01;
  bool desc_act = true;
  bool static_groups = true;
  std::vector<std::string> inside_layer_modules;  // default []
  std::string model_decoder_layers;               // default ""
  bool operator==(const GPTQConfig&) const = default;
};

struct QronosConfig {
  std::vector<std::string> inside_layer_modules;  // required
  std::string model_decoder_layers;               // required
  std::string name = "qronos";
  int block_size = 128;
  bool desc_act = true;
  bool static_groups = true;
  // The seed's signature (and Quark's code) default alpha to 1e-3; its docstring says 1e-6.
  // We follow the signature.
  double alpha = 1e-3;
  double beta = 1e4;
  bool operator==(const QronosConfig&) const = default;
};

struct RotationConfig {
  std::string model_decoder_layers;  // required
  std::string scaling_layers_json;   // dict[str, list[dict]] as JSON object text; required
  std::string name = "rotation";
  bool random = false;
  bool operator==(const RotationConfig&) const = default;
};

struct QuaRotConfig {
  std::string scaling_layers_json;   // dict[str, list[dict]] as JSON object text; required
  std::string name = "quarot";
  bool r1 = true, r2 = true, r3 = true, r4 = true;
  std::optional<int> rotation_size;  // default None = full dimension
  bool random_r1 = false, random_r2 = false;
  std::optional<std::string> optimized_rotation_path;  // default None
  std::string backbone = "model";
  std::string model_decoder_layers = "model.layers";
  std::string v_proj = "self_attn.v_proj";
  std::string o_proj = "self_attn.o_proj";
  std::string self_attn = "self_attn";
  std::string mlp = "mlp";
  bool operator==(const QuaRotConfig&) const = default;
};

using AlgoConfig = std::variant<SmoothQuantConfig, AutoSmoothQuantConfig, AWQConfig, GPTQConfig,
                                QronosConfig, RotationConfig, QuaRotConfig>;
// The "name" of an algorithm config ("gptq", "awq", ...).
absl::string_view AlgoName(const AlgoConfig& algo);

// A name-keyed dict whose insertion order matters (patterns are tried in order).
using NamedConfigs = std::vector<std::pair<std::string, QuantizationConfig>>;

struct Config {
  QuantizationConfig global_quant_config;     // required
  NamedConfigs layer_type_quant_config;       // default {}; keys "Linear", "Conv2d", ...
  NamedConfigs layer_quant_config;            // default {}; exact names or fnmatch patterns
  NamedConfigs kv_cache_quant_config;         // default {}
  std::vector<std::string> kv_cache_group;    // default []
  float min_kv_scale = 0.0f;                  // default 0.0
  std::optional<QuantizationSpec> softmax_quant_spec;  // default None
  std::vector<std::string> exclude;           // default []
  std::optional<std::vector<AlgoConfig>> algo_config;  // default None
  QuantizationMode quant_mode = QuantizationMode::kEagerMode;
  std::optional<int> log_severity_level = 1;  // 0 DEBUG .. 4 CRITICAL; default 1
  std::optional<std::string> version = "0.10";
  bool operator==(const Config&) const = default;
};

// Known Quark observer class names (observer_cls values).
const std::vector<absl::string_view>& KnownObserverClasses();
bool IsPerTensorObserver(absl::string_view cls);
bool IsPerChannelObserver(absl::string_view cls);
bool IsPerGroupObserver(absl::string_view cls);

}  // namespace quarry
