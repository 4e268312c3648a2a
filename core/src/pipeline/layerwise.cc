#include "pipeline/layerwise.h"

#include <atomic>
#include <map>

#include "quarry/status.h"

namespace quarry::pipeline {

int64_t Batches::tokens() const {
  int64_t n = 0;
  for (const auto& t : ids) n += t.numel();
  return n;
}

Batches MakeBatches(const std::vector<std::vector<int32_t>>& sequences, int64_t max_batch_tokens) {
  std::map<size_t, std::vector<const std::vector<int32_t>*>> by_len;
  for (const auto& s : sequences)
    if (!s.empty()) by_len[s.size()].push_back(&s);
  Batches b;
  for (const auto& [len, seqs] : by_len) {
    const int64_t per_batch =
        std::max<int64_t>(1, max_batch_tokens / static_cast<int64_t>(len));
    for (size_t start = 0; start < seqs.size(); start += per_batch) {
      const size_t n = std::min<size_t>(per_batch, seqs.size() - start);
      at::Tensor ids = at::empty({static_cast<int64_t>(n), static_cast<int64_t>(len)}, at::kLong);
      auto acc = ids.accessor<int64_t, 2>();
      for (size_t r = 0; r < n; ++r)
        for (size_t c = 0; c < len; ++c) acc[r][c] = (*seqs[start + r])[c];
      b.ids.push_back(ids);
    }
  }
  return b;
}

absl::Status EmbedAll(model::CausalLM& model, Batches& b) {
  b.hidden.clear();
  for (const auto& ids : b.ids) {
    QUARRY_ASSIGN_OR_RETURN(at::Tensor h, model.Embed(ids));
    b.hidden.push_back(h);
  }
  return absl::OkStatus();
}

namespace {
std::atomic<int64_t> g_layer_forwards{0};
}  // namespace

int64_t LayerForwards() { return g_layer_forwards.load(); }

absl::Status ForwardAll(model::CausalLM& model, model::DecoderLayer& layer, Batches& b,
                        model::PassMode mode) {
  for (auto& h : b.hidden) {
    ++g_layer_forwards;
    model::ForwardContext ctx = model.MakeContext(h.size(1), mode);
    QUARRY_ASSIGN_OR_RETURN(at::Tensor out, CatchExceptions("layer forward", [&]() -> absl::StatusOr<at::Tensor> {
      return layer.Forward(h, ctx);
    }));
    h = out;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<double>> SequenceNll(model::Head& head, const Batches& b,
                                                model::PassMode mode, int64_t* scored_tokens) {
  std::vector<double> nll;
  int64_t scored = 0;
  for (size_t i = 0; i < b.hidden.size(); ++i) {
    QUARRY_ASSIGN_OR_RETURN(at::Tensor logits, CatchExceptions("head forward", [&]() {
      return head.Forward(b.hidden[i], mode);
    }));
    const int64_t L = logits.size(1);
    if (L < 2) {
      for (int64_t r = 0; r < logits.size(0); ++r) nll.push_back(0);
      continue;
    }
    at::Tensor logp = at::log_softmax(logits.narrow(1, 0, L - 1), -1);
    at::Tensor targets = b.ids[i].narrow(1, 1, L - 1).unsqueeze(-1);
    at::Tensor token_nll = -logp.gather(-1, targets).squeeze(-1).to(at::kDouble);  // [b, L-1]
    at::Tensor per_seq = token_nll.mean(1);
    for (int64_t r = 0; r < per_seq.size(0); ++r) nll.push_back(per_seq[r].item<double>());
    scored += token_nll.numel();
  }
  if (scored_tokens != nullptr) *scored_tokens = scored;
  return nll;
}

}  // namespace quarry::pipeline
