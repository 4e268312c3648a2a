// The quantization pipeline: a Hugging Face model directory + a Config + calibration data in,
// a quantized model (Quark's HF export format) + report out. Layer by layer, so peak memory is
// about one decoder layer plus the calibration activations:
//   embed the calibration batch; for each decoder layer: load its weights only, run the configured
//   algorithms (GPTQ, Qronos, ...), observe inputs/weights/outputs per the resolved plan (static
//   observers accumulate over all samples), freeze, run the quantized layer to produce the next
//   layer's inputs, write the layer out, free it.
// Progress and log records go through JobObserver; cancellation is checked between layers (and
// between linears inside long algorithm steps). Thread-compatible: one QuantizeModel call per
// thread; the observer may be called from the calling thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "quarry/quant_config.h"

namespace quarry {

enum class LogSeverity { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kCritical = 4 };

struct ProgressEvent {
  std::string stage;        // "load", "calibrate", "algorithm", "quantize", "export", "eval", "done"
  int layer_index = -1;     // 0-based decoder layer, -1 when not per layer
  int num_layers = 0;
  double fraction = 0;      // overall progress 0..1
  double elapsed_seconds = 0;
  double eta_seconds = -1;  // < 0 when unknown
  std::string message;      // e.g. the linear being processed
  // Checkpoint bytes read and export bytes written per second since the first decoder layer
  // started (0 until then).
  double read_bytes_per_second = 0;
  double write_bytes_per_second = 0;
};

// Callbacks from core to its caller (the worker, the CLI). Default: ignore everything.
class JobObserver {
 public:
  virtual ~JobObserver() = default;
  virtual void OnProgress(const ProgressEvent& event) {}
  virtual void OnLog(LogSeverity severity, absl::string_view message) {}
  // Polled between layers and between linears; true stops the job with CANCELLED.
  virtual bool IsCancelled() { return false; }
  // With QuantizeOptions::checkpoint_dir: layer `layer` is finished and its checkpoint files
  // (names relative to `dir`, in the order to keep them: the commit record last) are written.
  // Called before the next layer starts (the worker uploads them here).
  virtual void OnLayerCheckpoint(int layer, const std::string& dir,
                                 const std::vector<std::string>& files) {}
};

struct CalibrationOptions {
  std::string path;                 // JSONL with "text", plain text, or JSON token-id arrays
  enum class Format { kAuto, kJsonl, kText, kTokens } format = Format::kAuto;
  int num_samples = 512;            // Quark's quantize_quark.py --num_calib_data default
  int seq_len = 512;                // Quark's --seq_len default; capped at the model's positions
  uint64_t seed = 42;               // sample choice is deterministic given the seed
};

struct EvalOptions {
  std::string path;                 // a text file, evaluated as one token stream
  int seq_len = 256;                // window length (non-overlapping windows, first token unscored)
  int max_windows = 0;              // 0 = all windows
  bool float_baseline = true;       // also evaluate the unquantized model
};

// Checkpoint layout of the exported model.
enum class ExportFormat {
  kQuark,  // Quark's Hugging Face format (quant_method "quark"): every spec Quarry quantizes
  kAwq,    // AutoAWQ "GEMM" (quant_method "awq", Quark's custom_mode "awq"): qweight / qzeros /
           // float16 scales, for uint4 asymmetric per-group weight-only plans only (others are
           // refused before any work); src/export/awq_format.h has the layout
  kGptq,   // GPTQ checkpoint (quant_method "gptq", GPTQ-Marlin's uint4b8 / uint8b128): int4/int8
           // symmetric per-group or per-channel weight-only plans; src/export/gptq_format.h
  kGguf,   // llama.cpp GGUF v3 (model.gguf beside report.json): weights whose spec maps exactly
           // onto a ggml type (src/export/gguf_format.h); integer weight scales are float16
};

// "quark", "awq", "gptq", "gguf" (the names of export_format / --export-format) and back.
const char* ExportFormatName(ExportFormat f);
std::optional<ExportFormat> ParseExportFormat(const std::string& name);

struct ExportOptions {
  ExportFormat format = ExportFormat::kQuark;  // default kQuark
  bool real_quantized = true;       // packed codes + scales; false: fake-quantized float weights
  bool pack_reorder = true;         // Quark's "reorder" int4 nibble order (else "order"); kAwq
                                    // always uses AWQ's order (which is "reorder")
  // Shards of at most this many bytes (Hugging Face's default 5 GB); a model that fits one shard
  // is a single model.safetensors, as HF writes it. 0 = one file whatever its size.
  uint64_t max_shard_bytes = 5'000'000'000ull;
  bool write_report = true;         // report.json + report.html
};

struct QuantizeOptions {
  std::string model_dir;            // Hugging Face model directory (config.json + safetensors)
  Config config;
  CalibrationOptions calibration;
  std::optional<EvalOptions> eval;  // evaluate before/after when set
  ExportOptions export_options;
  std::string output_dir;           // created; the exported model and report land here
  std::string device = "cpu";       // "cpu", "cuda:N", "hip:N"
  int threads = 0;                  // intra-op threads; 0 = all
  // Per-linear output-error statistics (report.json) come from the quantized forward of this
  // many calibration sequences (the first ones), not from every calibration batch; 0 = none.
  // Measured only when the plan runs a calibration forward anyway (default 8).
  int error_sample_sequences = 8;
  // Freed tensor blocks of at least 4 MiB kept for reuse by later layers (same shapes), at most
  // this many bytes; 0 = return every block to the system at once (default 4 GiB). The cache
  // counts in the process's anonymous RSS and is released when the job ends.
  uint64_t workspace_cache_bytes = 4ull << 30;
  // Resumable jobs (src/pipeline/layer_checkpoint.h has the files and the byte trade-off):
  // after every decoder layer, write a checkpoint of it here (the exported bytes of the layer,
  // the activations the next layer needs, a commit record). Default "" = none.
  std::string checkpoint_dir;
  // Resume from the checkpoints in this directory: the layers they hold (a run of 0..k-1 with
  // this job's fingerprint) are replayed into the export, the run continues at layer k, and its
  // files are byte-identical to an uninterrupted run's. Checkpoints of other inputs are ignored
  // (the log says why). Default "" = start at layer 0. Formats that cannot journal (GGUF)
  // neither write nor read checkpoints.
  std::string resume_dir;
};

struct QuantizeResult {
  std::vector<std::string> files;   // written files, relative to output_dir
  std::optional<double> perplexity_float;
  std::optional<double> perplexity_quantized;
  double seconds = 0;
  uint64_t peak_rss_bytes = 0;      // process peak RSS observed during the run
  uint64_t peak_rss_anon_bytes = 0; // peak anonymous RSS (heap, tensors), sampled during the run
};

// Runs the whole job. CANCELLED when the observer asked to stop; INVALID_ARGUMENT for a bad
// config/model/data (the message names what was wrong); the output dir may then hold partial
// files with a ".partial" suffix only.
absl::StatusOr<QuantizeResult> QuantizeModel(const QuantizeOptions& options,
                                             JobObserver* observer = nullptr);

}  // namespace quarry
