#include <ATen/Parallel.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "model/transformer.h"
#include "pipeline/exported_model.h"
#include "pipeline/gguf_model.h"
#include "pipeline/layerwise.h"
#include "quarry/eval.h"
#include "quarry/status.h"

namespace quarry {

absl::StatusOr<std::vector<std::vector<int32_t>>> EvalWindows(const Tokenizer& tokenizer,
                                                              absl::string_view text, int seq_len,
                                                              int max_windows, int64_t* total_ids) {
  if (seq_len < 2) return absl::InvalidArgumentError("seq_len must be >= 2");
  std::vector<int32_t> ids;
  if (tokenizer.bos_id() >= 0) ids.push_back(tokenizer.bos_id());
  std::vector<int32_t> body = tokenizer.Encode(text, /*add_special_tokens=*/false);
  ids.insert(ids.end(), body.begin(), body.end());
  if (total_ids != nullptr) *total_ids = static_cast<int64_t>(ids.size());
  const int64_t n = static_cast<int64_t>(ids.size()) / seq_len;
  if (n == 0)
    return absl::InvalidArgumentError(absl::StrCat("the evaluation text has ", ids.size(),
                                                   " tokens, fewer than one window of ", seq_len));
  const int64_t use = max_windows > 0 ? std::min<int64_t>(n, max_windows) : n;
  std::vector<std::vector<int32_t>> windows;
  for (int64_t w = 0; w < use; ++w)
    windows.emplace_back(ids.begin() + w * seq_len, ids.begin() + (w + 1) * seq_len);
  return windows;
}

PerplexityResult SummarizeNll(const std::vector<double>& window_nll, int64_t scored_tokens) {
  PerplexityResult r;
  r.window_nll = window_nll;
  r.windows = static_cast<int64_t>(window_nll.size());
  r.scored_tokens = scored_tokens;
  double sum = 0;
  for (double v : window_nll) sum += v;
  r.mean_nll = window_nll.empty() ? 0 : sum / window_nll.size();
  r.perplexity = std::exp(r.mean_nll);
  return r;
}

absl::StatusOr<PerplexityResult> EvaluatePerplexity(const PerplexityOptions& options,
                                                    JobObserver* observer) {
  JobObserver null_observer;
  if (observer == nullptr) observer = &null_observer;
  const auto start = std::chrono::steady_clock::now();
  if (options.threads > 0) at::set_num_threads(options.threads);
  else at::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
  // A .gguf file carries its tokenizer and weights (llama.cpp's format); else a model directory.
  pipeline::InferenceModel lm;
  std::unique_ptr<Tokenizer> tokenizer;
  bool quantized = false;
  if (pipeline::IsGgufPath(options.model_dir) || absl::EndsWith(options.model_dir, ".gguf")) {
    QUARRY_ASSIGN_OR_RETURN(pipeline::GgufModel g, pipeline::OpenGguf(options.model_dir));
    lm = std::move(g.lm);
    tokenizer = std::move(g.tokenizer);
    quantized = g.quantized_weights;
  } else {
    QUARRY_ASSIGN_OR_RETURN(tokenizer, Tokenizer::FromModelDir(options.model_dir));
    QUARRY_ASSIGN_OR_RETURN(lm, pipeline::OpenForInference(options.model_dir));
    quantized = lm.quantized;
  }
  std::ifstream in(options.data_path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open '", options.data_path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  int64_t total_ids = 0;
  QUARRY_ASSIGN_OR_RETURN(auto windows, EvalWindows(*tokenizer, ss.str(), options.seq_len,
                                                    options.max_windows, &total_ids));
  if (options.seq_len > lm.model->config().max_position_embeddings)
    return absl::InvalidArgumentError(absl::StrCat("seq_len ", options.seq_len, " exceeds the model's ",
                                                   lm.model->config().max_position_embeddings,
                                                   " positions"));
  pipeline::Batches b = pipeline::MakeBatches(windows, options.batch_tokens);
  QUARRY_RETURN_IF_ERROR(pipeline::EmbedAll(*lm.model, b));
  lm.model->ReleaseEmbeddings();
  const int n = lm.model->num_layers();
  const model::PassMode mode =
      lm.quantized ? model::PassMode::kQuantized : model::PassMode::kFloat;
  for (int i = 0; i < n; ++i) {
    if (observer->IsCancelled()) return absl::CancelledError("evaluation cancelled");
    QUARRY_ASSIGN_OR_RETURN(auto layer, lm.LoadLayer(i));
    QUARRY_RETURN_IF_ERROR(pipeline::ForwardAll(*lm.model, *layer, b, mode));
    ProgressEvent ev;
    ev.stage = "eval";
    ev.layer_index = i;
    ev.num_layers = n;
    ev.fraction = static_cast<double>(i + 1) / (n + 1);
    ev.elapsed_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    observer->OnProgress(ev);
  }
  QUARRY_ASSIGN_OR_RETURN(auto head, lm.LoadHead());
  int64_t scored = 0;
  QUARRY_ASSIGN_OR_RETURN(auto nll, pipeline::SequenceNll(*head, b, mode, &scored));
  PerplexityResult r = SummarizeNll(nll, scored);
  r.total_ids = total_ids;
  r.quantized_model = quantized;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace quarry
