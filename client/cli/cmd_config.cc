// quarry config validate | show | explain | presets
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "quarry/algorithm_defaults.h"
#include "quarry/config_json.h"
#include "quarry/config_validate.h"
#include "quarry/layer_plan.h"
#include "quarry/presets.h"
#include "quarry/runtime_compat.h"

namespace quarry::cli {
namespace {

struct ConfigSource {
  std::string config_file;
  std::string preset;
  bool allow_unknown_keys = false;
};

void AddSourceOptions(CLI::App* sub, ConfigSource& src, bool required) {
  auto* file = sub->add_option("--config", src.config_file, "Config in Quark's JSON format");
  auto* preset = sub->add_option("--preset", src.preset,
                                 "Named preset, e.g. int4_wo_128, fp8+kv_fp8 (see `quarry config "
                                 "presets`)");
  file->excludes(preset);
  preset->excludes(file);
  if (required) sub->require_option(1, 0);
  sub->add_flag("--allow-unknown-keys", src.allow_unknown_keys,
                "Report unknown JSON keys as warnings instead of errors");
}

Config LoadConfigOrDie(const ConfigSource& src, std::vector<std::string>* warnings) {
  absl::StatusOr<Config> c;
  if (!src.preset.empty()) {
    c = PresetConfig(src.preset);
  } else if (!src.config_file.empty()) {
    c = ConfigFromJsonFile(src.config_file, JsonReadOptions{src.allow_unknown_keys}, warnings);
  } else {
    Fail(absl::InvalidArgumentError("give --config FILE or --preset NAME"));
  }
  if (!c.ok()) Fail(c.status());
  return *std::move(c);
}

}  // namespace

void AddConfigCommands(CLI::App& app, GlobalOptions& global) {
  CLI::App* config = app.add_subcommand("config", "Validate, show and explain quantization configs");
  config->require_subcommand(1);

  // quarry config validate FILE [--model DIR] [--target RUNTIME [--export-format F]]
  {
    auto* sub = config->add_subcommand("validate", "Check a config in Quark's JSON format; with "
                                                   "--model also check it against the model's "
                                                   "layer shapes");
    static std::string file, model, target, export_format = "quark";
    static bool allow_unknown = false;
    sub->add_option("FILE", file, "Config JSON file")->required();
    sub->add_option("--model", model, "Hugging Face model directory to check shapes against");
    sub->add_option("--target", target,
                    "Also say whether this runtime would load the export (vllm, llama.cpp, "
                    "transformers); exit 1 when it would not")
        ->check(CLI::IsMember({"vllm", "llama.cpp", "transformers"}));
    sub->add_option("--export-format", export_format,
                    "Export format the verdict is for: quark, awq, gptq or gguf")
        ->check(CLI::IsMember({"quark", "awq", "gptq", "gguf"}))
        ->capture_default_str();
    sub->add_flag("--allow-unknown-keys", allow_unknown,
                  "Report unknown JSON keys as warnings instead of errors");
    sub->callback([&global] {
      std::vector<std::string> warnings;
      auto c = ConfigFromJsonFile(file, JsonReadOptions{allow_unknown}, &warnings);
      if (!c.ok()) Fail(c.status());
      std::vector<ConfigIssue> issues = ValidateConfig(*c);
      std::optional<LayerPlan> plan;
      std::optional<ModelConfig> model_config;
      if (!model.empty()) {
        auto modules = ListModelModules(model);
        if (!modules.ok()) Fail(modules.status());
        auto p = ResolveLayerPlan(*c, *modules);
        if (p.ok()) {
          issues.insert(issues.end(), p->issues.begin(), p->issues.end());
          plan = *std::move(p);
        }
        auto mc = LoadModelConfig(model);
        if (mc.ok()) model_config = *mc;
      }
      // The runtime verdict: on the model's plan, or without --model on one representative
      // Llama decoder layer (the rules that need no real shapes).
      std::optional<RuntimeVerdict> verdict;
      if (!target.empty()) {
        if (!plan) {
          auto p = ResolveLayerPlan(*c, RepresentativeModules());
          if (p.ok()) plan = *std::move(p);
        }
        if (plan) {
          const ExportFormat format = *ParseExportFormat(export_format);
          for (auto& v : RuntimeVerdicts(*plan, *c, format,
                                         model_config ? &*model_config : nullptr))
            if (v.runtime == target) verdict = std::move(v);
        }
      }
      int errors = 0;
      for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
      for (const auto& i : issues) {
        std::fprintf(stderr, "%s: %s\n", i.is_error() ? "error" : "warning", i.ToString().c_str());
        errors += i.is_error();
      }
      if (global.json) {
        nlohmann::json j = {{"valid", errors == 0}, {"errors", errors},
                            {"warnings", warnings.size() + issues.size() - errors}};
        if (verdict) {
          j["target"] = nlohmann::json::parse(RuntimeVerdictsToJson({*verdict}))[0];
          j["target"]["checked_on"] = model.empty() ? "representative llama layer" : model;
        }
        std::printf("%s\n", j.dump().c_str());
      } else {
        if (errors == 0) std::printf("%s: valid\n", file.c_str());
        if (verdict) {
          std::printf("%s", FormatRuntimeVerdicts({*verdict}).c_str());
          if (model.empty())
            std::printf("(checked on a representative Llama decoder layer, without shapes: give "
                        "--model DIR for the model's own layers, shapes and family)\n");
        }
      }
      if (errors > 0) {
        std::fprintf(stderr, "quarry: %s: %d error(s)\n", file.c_str(), errors);
        throw CLI::RuntimeError(1);
      }
      if (verdict && !verdict->loads) {
        std::fprintf(stderr, "quarry: %s would not load this %s export\n", target.c_str(),
                     export_format.c_str());
        throw CLI::RuntimeError(1);
      }
    });
  }

  // quarry config show (--preset NAME | --config FILE)
  {
    auto* sub = config->add_subcommand("show", "Print a preset (or a normalised config file) in "
                                               "Quark's JSON format");
    static ConfigSource src;
    AddSourceOptions(sub, src, true);
    sub->callback([] {
      std::vector<std::string> warnings;
      Config c = LoadConfigOrDie(src, &warnings);
      for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
      std::printf("%s\n", ConfigToJson(c).c_str());
    });
  }

  // quarry config presets
  {
    auto* sub = config->add_subcommand("presets", "List the named presets");
    sub->callback([&global] {
      if (global.json) {
        std::printf("[");
        bool first = true;
        for (const auto& p : ListPresets()) {
          std::printf("%s{\"name\": \"%s\", \"description\": \"%s\"}", first ? "" : ", ",
                      p.name.c_str(), p.description.c_str());
          first = false;
        }
        std::printf("]\n");
        return;
      }
      for (const auto& p : ListPresets())
        std::printf("%-22s %s\n", p.name.c_str(), p.description.c_str());
      std::printf("\nModifiers: NAME+kv_fp8 (fp8 KV cache), NAME+attn_fp8 (fp8 attention "
                  "softmax), e.g. fp8+kv_fp8\n");
    });
  }

  // quarry config explain --model DIR (--config FILE | --preset NAME) [--json]
  {
    auto* sub = config->add_subcommand(
        "explain", "Show the per-layer plan of a config on a model directory (reads only "
                   "config.json and the safetensors headers)");
    static ConfigSource src;
    static std::string model;
    static std::vector<std::string> algo_files;
    sub->add_option("--model", model, "Hugging Face model directory")->required();
    AddSourceOptions(sub, src, false);
    sub->add_option("--algo", algo_files, "Algorithm config JSON appended to algo_config (as for "
                                          "quantize-local); repeatable");
    sub->callback([&global] {
      std::vector<std::string> warnings;
      Config c = LoadConfigOrDie(src, &warnings);
      for (const auto& f : algo_files) {
        auto a = LoadQuantAlgoConfigFromFile(f);
        if (!a.ok()) Fail(a.status());
        if (!c.algo_config) c.algo_config.emplace();
        c.algo_config->push_back(*a);
      }
      auto modules = ListModelModules(model);
      if (!modules.ok()) Fail(modules.status());
      auto plan = ResolveLayerPlan(c, *modules);
      if (!plan.ok()) Fail(plan.status());
      for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
      auto model_config = LoadModelConfig(model);
      if (!model_config.ok()) Fail(model_config.status());
      const std::vector<EffectiveScaling> scaling = EffectiveScalingLayers(c, *model_config);
      if (global.json) {
        nlohmann::json j = nlohmann::json::parse(PlanToJson(*plan));
        nlohmann::json algos = nlohmann::json::array();
        for (const EffectiveScaling& e : scaling) {
          nlohmann::json entries = nlohmann::json::array();
          for (const ScalingLayer& s : e.scaling_layers) {
            nlohmann::json x = {{"prev_op", s.prev_op}, {"layers", s.layers}, {"inp", s.inp}};
            if (s.module2inspect) x["module2inspect"] = *s.module2inspect;
            entries.push_back(x);
          }
          algos.push_back({{"algo_index", e.algo_index}, {"algorithm", e.algorithm},
                           {"defaulted", e.defaulted}, {"model_decoder_layers", e.decoder_layers},
                           {"scaling_layers", entries}});
        }
        if (j.is_object()) j["scaling_algorithms"] = algos;
        std::printf("%s\n", j.dump(2).c_str());
      } else {
        std::printf("%s", PlanToTable(*plan).c_str());
        std::printf("%s", DescribeScaling(scaling).c_str());
      }
      for (const auto& i : plan->issues)
        if (i.is_error()) throw CLI::RuntimeError(1);
    });
  }
}

}  // namespace quarry::cli
