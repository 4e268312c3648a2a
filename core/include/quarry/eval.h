// Perplexity evaluation with the fixtures' protocol (../shared/models/README.md):
//   ids = [bos] + encode(whole text file); non-overlapping windows of seq_len ids from index 0,
//   the incomplete tail dropped; each window is a separate forward (positions 0..L-1, causal);
//   tokens 1..L-1 of each window are scored (the first is not); mean NLL over all scored tokens;
//   ppl = exp(mean NLL).
// Runs layer by layer (one decoder layer resident at a time), on float models and on models
// exported by Quarry/Quark in Quark's format (dequantized weights, activation quantizers rebuilt
// from the exported scales and the quantization_config). Thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "quarry/pipeline.h"
#include "quarry/tokenizer.h"

namespace quarry {

struct PerplexityOptions {
  std::string model_dir;
  std::string data_path;          // text file evaluated as one stream
  int seq_len = 256;              // window length
  int max_windows = 0;            // 0 = all windows
  int64_t batch_tokens = 16384;   // tokens per forward batch
  int threads = 0;                // intra-op threads; 0 = all
};

struct PerplexityResult {
  double perplexity = 0;
  double mean_nll = 0;
  int64_t scored_tokens = 0;
  int64_t windows = 0;
  int64_t total_ids = 0;          // ids in the stream (with BOS), before windowing
  std::vector<double> window_nll; // mean NLL per window
  bool quantized_model = false;   // the model carried a quantization_config
  double seconds = 0;
};

// Windows of the protocol above. InvalidArgument when the text yields no full window.
absl::StatusOr<std::vector<std::vector<int32_t>>> EvalWindows(const Tokenizer& tokenizer,
                                                              absl::string_view text, int seq_len,
                                                              int max_windows, int64_t* total_ids);

absl::StatusOr<PerplexityResult> EvaluatePerplexity(const PerplexityOptions& options,
                                                    JobObserver* observer = nullptr);

// The final ppl/mean from per-window NLLs (equal window sizes: mean of means).
PerplexityResult SummarizeNll(const std::vector<double>& window_nll, int64_t scored_tokens);

}  // namespace quarry
