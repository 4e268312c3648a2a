// Core-internal: what a quantization run reports (report.json) and its human-readable rendering
// (report.html with an inline SVG chart of per-layer errors).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "quarry/runtime_compat.h"

namespace quarry::report {

struct LinearReport {
  std::string name;
  std::string rule;            // the plan rule that matched
  bool excluded = false;
  std::string weight_spec;     // DescribeSpecs(...) or "-"
  std::string input_spec;
  std::string output_spec;
  std::string method;          // "rtn", "gptq", "qronos", "none"
  // Weight error of the quantized weight vs the float weight: relative MSE and SQNR (dB).
  std::optional<double> weight_rel_mse, weight_sqnr_db;
  // Output error of the quantized linear vs the float linear on the calibration inputs.
  std::optional<double> output_rel_mse, output_sqnr_db;
};

// One decision of a scaling algorithm (SmoothQuant, AutoSmoothQuant, AWQ) in one decoder layer:
// a scaling_layers entry's scale, or an AWQ clip of one linear.
struct AlgorithmRecord {
  std::string algorithm;      // "smoothquant", "autosmoothquant", "awq", "awq_clip"
  int layer = 0;
  int entry_index = -1;       // scaling_layers index (-1 for a clip)
  std::string target;         // "input_layernorm -> self_attn.q_proj,..." or the clipped linear
  std::string choice;         // "alpha 0.5", "ratio 0.35", "mean shrink 0.93"
  std::optional<double> value;                    // that alpha / ratio / mean shrink
  std::optional<double> loss_before, loss_after;  // no scale (ratio 0) / unclipped vs chosen
  std::optional<double> scale_min, scale_max;     // of the folded scale
};

struct LayerReport {
  int index = 0;
  double seconds = 0;
  std::map<std::string, double> stage_seconds;  // load, algorithm, calibrate, quantize, export
  // Relative MSE of the quantized model's hidden state vs the float model's after this layer, on
  // the evaluation windows (accumulated drift); absent without evaluation data.
  std::optional<double> hidden_rel_mse;
  double rss_bytes = 0;       // after the layer: total, anonymous and file-backed
  double rss_anon_bytes = 0;
  double rss_file_bytes = 0;
};

struct RunReport {
  std::string model_dir;
  std::string model_type;
  std::string config_json;       // the Config in Quark's JSON format
  std::string calibration;       // summary
  std::string evaluation;        // summary
  std::optional<double> ppl_float, ppl_quantized;
  std::optional<int64_t> eval_tokens;
  std::map<std::string, double> stage_seconds;
  double total_seconds = 0;
  double peak_rss_bytes = 0;       // getrusage peak (anonymous + file-backed)
  double peak_rss_anon_bytes = 0;  // sampled peaks of RssAnon / RssFile (/proc/self/status)
  double peak_rss_file_bytes = 0;
  // Decoder layers whose tensors were alive at once, observed through weak references to their
  // storages (1 = layer by layer).
  int max_resident_layers = 0;
  double bytes_read = 0;           // checkpoint bytes converted
  double bytes_written = 0;        // exported tensor bytes
  bool calibration_forward = false;
  int64_t layer_forwards = 0;      // decoder-layer forwards of one batch (calibration + eval)
  int resumed_layers = 0;          // decoder layers replayed from a checkpoint (0 = none)
  std::vector<std::string> work_plan;  // what ran and why, as logged at job start
  std::string weight_format;     // real_quantized / fake_quantized
  std::vector<LayerReport> layers;
  std::vector<LinearReport> linears;
  std::vector<AlgorithmRecord> algorithm_records;
  std::vector<std::string> warnings;
  // Whether vLLM, llama.cpp and transformers load the artifact (quarry/runtime_compat.h),
  // decided from the plan at job start; report.json "runtimes".
  std::vector<RuntimeVerdict> runtimes;
};

// Relative MSE -> SQNR in dB (10 log10 (1 / rel_mse)); +inf for an exact match.
double SqnrDb(double rel_mse);

std::string ToJson(const RunReport& report);
std::string ToHtml(const RunReport& report);
absl::Status WriteReport(const RunReport& report, const std::string& dir);  // report.json/.html

}  // namespace quarry::report
