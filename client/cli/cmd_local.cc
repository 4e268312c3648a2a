// quarry quantize-local | eval: the core pipeline in-process (no server).
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "quarry/config_json.h"
#include "quarry/eval.h"
#include "quarry/pipeline.h"
#include "quarry/presets.h"

namespace quarry::cli {

void AddLocalCommands(CLI::App& app, GlobalOptions& global) {
  // quarry quantize-local --model DIR --config FILE|--preset NAME --calib FILE --out DIR [--eval FILE]
  {
    auto* sub = app.add_subcommand("quantize-local",
                                   "Quantize a model in this process (no server): the core "
                                   "pipeline, layer by layer, with the same export and report");
    static QuantizeOptions o;
    static std::string config_file, preset, format = "auto", eval_path, export_format = "quark";
    static std::vector<std::string> algo_files;
    static bool fake = false, order = false;
    static int eval_seq_len = 256, eval_windows = 0;
    sub->add_option("--model", o.model_dir, "Hugging Face model directory")->required();
    auto* cf = sub->add_option("--config", config_file, "Config in Quark's JSON format");
    auto* pr = sub->add_option("--preset", preset, "Named preset (see `quarry config presets`)");
    cf->excludes(pr);
    sub->add_option("--algo", algo_files, "Algorithm config JSON (Quark's load_quant_algo_config_"
                                          "from_file format), appended to algo_config; repeatable");
    sub->add_option("--calib", o.calibration.path, "Calibration data: .jsonl with \"text\", plain "
                                                  "text, or .json token-id arrays (needed only "
                                                  "when the plan consumes activations)");
    sub->add_option("--num-calib", o.calibration.num_samples, "Calibration samples")
        ->capture_default_str();
    sub->add_option("--seq-len", o.calibration.seq_len, "Calibration sequence length (tokens)")
        ->capture_default_str();
    sub->add_option("--seed", o.calibration.seed, "Seed of the calibration sample choice")
        ->capture_default_str();
    sub->add_option("--out", o.output_dir, "Output directory for the quantized model")->required();
    sub->add_option("--eval", eval_path, "Text file: perplexity before and after quantization");
    sub->add_option("--eval-seq-len", eval_seq_len, "Evaluation window length")->capture_default_str();
    sub->add_option("--eval-windows", eval_windows, "Evaluate only the first N windows (0 = all)")
        ->capture_default_str();
    sub->add_flag("--fake-quantized", fake, "Export fake-quantized float weights instead of packed "
                                            "codes");
    sub->add_flag("--pack-order", order, "Pack int4 nibbles in plain order instead of Quark's "
                                         "\"reorder\"");
    sub->add_option("--export-format", export_format,
                    "Checkpoint layout: quark (Quark's HF format, quant_method \"quark\"), awq "
                    "(AutoAWQ GEMM qweight/qzeros/float16 scales; uint4 asymmetric per-group "
                    "weight-only plans, e.g. --preset uint4_wo_128), gptq (GPTQ checkpoint; "
                    "int4/int8 symmetric weight-only) or gguf (llama.cpp model.gguf; int8/int4 "
                    "sym and uint4 asym per-group g32, MXFP4)")
        ->check(CLI::IsMember({"quark", "awq", "gptq", "gguf"}))
        ->capture_default_str();
    sub->add_option("--max-shard-bytes", o.export_options.max_shard_bytes,
                    "Split model.safetensors into shards of at most this size (0 = one file)")
        ->capture_default_str();
    sub->add_option("--threads", o.threads, "Compute threads (0 = all)")->capture_default_str();
    sub->add_option("--checkpoint-dir", o.checkpoint_dir, "Write a checkpoint after every decoder "
                    "layer here (exported bytes + the activations the next layer needs), so an "
                    "interrupted run can continue with --resume-from");
    sub->add_option("--resume-from", o.resume_dir, "Continue from the layer checkpoints in this "
                    "directory (same model files, config, data, options and threads; otherwise "
                    "it starts at layer 0 and says why); the result is byte-identical");
    sub->add_option("--error-samples", o.error_sample_sequences,
                    "Calibration sequences whose quantized forward gives the per-linear output "
                    "errors in report.json (0 = none)")
        ->capture_default_str();
    sub->callback([&global] {
      if (preset.empty() && config_file.empty()) Fail(absl::InvalidArgumentError("give --config FILE or --preset NAME"));
      absl::StatusOr<Config> c = preset.empty() ? ConfigFromJsonFile(config_file) : PresetConfig(preset);
      if (!c.ok()) Fail(c.status());
      for (const auto& f : algo_files) {
        auto a = LoadQuantAlgoConfigFromFile(f);
        if (!a.ok()) Fail(a.status());
        if (!c->algo_config) c->algo_config.emplace();
        c->algo_config->push_back(*a);
      }
      o.config = *c;
      o.export_options.real_quantized = !fake;
      o.export_options.pack_reorder = !order;
      o.export_options.format = *ParseExportFormat(export_format);
      if (!eval_path.empty()) {
        EvalOptions e;
        e.path = eval_path;
        e.seq_len = eval_seq_len;
        e.max_windows = eval_windows;
        o.eval = e;
      }
      TerminalProgress progress(global.json, o.config.log_severity_level.value_or(1));
      auto r = QuantizeModel(o, &progress);
      progress.Finish();
      if (!r.ok()) Fail(r.status());
      if (global.json) {
        std::printf("{\"output_dir\": \"%s\", \"seconds\": %.3f, \"peak_rss_bytes\": %llu",
                    o.output_dir.c_str(), r->seconds,
                    static_cast<unsigned long long>(r->peak_rss_bytes));
        if (r->perplexity_float) std::printf(", \"perplexity_float\": %.6f", *r->perplexity_float);
        if (r->perplexity_quantized)
          std::printf(", \"perplexity_quantized\": %.6f", *r->perplexity_quantized);
        std::printf("}\n");
      } else {
        std::printf("quantized model written to %s (%zu files, %.1f s, peak RSS %.0f MiB)\n",
                    o.output_dir.c_str(), r->files.size(), r->seconds,
                    r->peak_rss_bytes / 1048576.0);
        if (r->perplexity_quantized)
          std::printf("perplexity: float %s, quantized %.4f\n",
                      r->perplexity_float ? absl::StrFormat("%.4f", *r->perplexity_float).c_str() : "-",
                      *r->perplexity_quantized);
      }
    });
  }

  // quarry eval --model DIR --data FILE [--seq-len N] [--json]
  {
    auto* sub = app.add_subcommand("eval", "Perplexity of a float or exported quantized model on a "
                                           "text file (non-overlapping windows, first token of "
                                           "each window unscored)");
    static PerplexityOptions o;
    sub->add_option("--model", o.model_dir, "Model directory (float, or quantized in Quark's, AWQ's or GPTQ's format) or a .gguf file")
        ->required();
    sub->add_option("--data", o.data_path, "Text file evaluated as one token stream")->required();
    sub->add_option("--seq-len", o.seq_len, "Window length")->capture_default_str();
    sub->add_option("--max-windows", o.max_windows, "Evaluate only the first N windows (0 = all)")
        ->capture_default_str();
    sub->add_option("--threads", o.threads, "Compute threads (0 = all)")->capture_default_str();
    sub->callback([&global] {
      TerminalProgress progress(global.json, 1);
      auto r = EvaluatePerplexity(o, &progress);
      progress.Finish();
      if (!r.ok()) Fail(r.status());
      if (global.json) {
        std::printf("{\"perplexity\": %.6f, \"mean_nll\": %.8f, \"tokens\": %lld, \"windows\": %lld, "
                    "\"seq_len\": %d, \"quantized_model\": %s, \"seconds\": %.3f}\n",
                    r->perplexity, r->mean_nll, static_cast<long long>(r->scored_tokens),
                    static_cast<long long>(r->windows), o.seq_len,
                    r->quantized_model ? "true" : "false", r->seconds);
      } else {
        std::printf("perplexity %.4f (mean NLL %.5f nats) over %lld scored tokens in %lld windows "
                    "of %d%s, %.1f s\n",
                    r->perplexity, r->mean_nll, static_cast<long long>(r->scored_tokens),
                    static_cast<long long>(r->windows), o.seq_len,
                    r->quantized_model ? " (quantized model)" : "", r->seconds);
      }
    });
  }
}

}  // namespace quarry::cli
