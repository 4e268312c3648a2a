// GPTQ transcribed with LibTorch tensor ops, line by line as IST-DASLab's gptq.py fasterquant()
// does (column tensors, per-column matmul updates, FakeQuantize per column). The test suite
// checks the fast implementation against it, and the benchmark uses it as the baseline.
#include <ATen/ATen.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "algorithms/gptq/column_loop.h"
#include "quarry/gptq.h"
#include "quarry/status.h"

namespace quarry {

absl::StatusOr<WeightQuantResult> GptqQuantizeWeightReference(const at::Tensor& weight,
                                                              const at::Tensor& H_in,
                                                              const QuantizationSpec& spec,
                                                              const GPTQConfig& config) {
  return CatchExceptions("GPTQ reference", [&]() -> absl::StatusOr<WeightQuantResult> {
    const auto t0 = std::chrono::steady_clock::now();
    WeightQuantResult result;
    at::Tensor W = weight.to(at::kFloat).clone();
    at::Tensor H = H_in.to(at::kFloat).clone();
    const int64_t columns = W.size(1);
    const bool grouped = IsBlockDtype(spec.dtype) || spec.qscheme == QSchemeType::kPerGroup;
    const int64_t groupsize = grouped ? (spec.group_size.value_or(-1) > 0 ? *spec.group_size : columns)
                                      : -1;
    auto find_params = [&](const at::Tensor& w) { return ComputeQuantParams(spec, w); };
    algorithms::HandleDeadColumns(W, H);
    QuantParams whole;
    if (groupsize == -1) {
      QUARRY_ASSIGN_OR_RETURN(whole, find_params(W));
    }
    std::vector<QuantParams> groups;
    if (groupsize != -1 && config.static_groups) {
      for (int64_t i = 0; i < columns; i += groupsize) {
        QUARRY_ASSIGN_OR_RETURN(QuantParams p, find_params(W.narrow(1, i, std::min(groupsize, columns - i))));
        groups.push_back(p);
      }
    }
    at::Tensor perm, invperm;
    if (config.desc_act) {
      perm = algorithms::PermIndex(algorithms::DescendingDiagonalOrder(H));
      W = W.index_select(1, perm);
      H = H.index_select(0, perm).index_select(1, perm);
      invperm = at::argsort(perm);
    }
    at::Tensor Q = at::zeros_like(W);
    QUARRY_ASSIGN_OR_RETURN(at::Tensor Hinv, algorithms::DampedInverseCholeskyUpper(
                                                 H, config.damp_percent, &result.damp_retries,
                                                 &result.damp));
    QuantParams current;
    for (int64_t i1 = 0; i1 < columns; i1 += config.block_size) {
      const int64_t i2 = std::min(i1 + config.block_size, columns);
      const int64_t count = i2 - i1;
      at::Tensor W1 = W.narrow(1, i1, count).clone();
      at::Tensor Q1 = at::zeros_like(W1);
      at::Tensor Err1 = at::zeros_like(W1);
      at::Tensor Hinv1 = Hinv.narrow(0, i1, count).narrow(1, i1, count);
      for (int64_t i = 0; i < count; ++i) {
        at::Tensor w = W1.select(1, i);
        at::Tensor d = Hinv1[i][i];
        QuantParams* params = &whole;
        if (groupsize != -1) {
          if (!config.static_groups) {
            if ((i1 + i) % groupsize == 0) {
              QUARRY_ASSIGN_OR_RETURN(current, find_params(W.narrow(1, i1 + i, std::min(groupsize, columns - i1 - i))));
            }
            params = &current;
          } else {
            int64_t idx = i1 + i;
            if (config.desc_act) idx = perm[idx].item<int64_t>();
            params = &groups[idx / groupsize];
          }
        }
        QUARRY_ASSIGN_OR_RETURN(at::Tensor q, FakeQuantize(w.unsqueeze(1), spec, *params));
        q = q.flatten();
        Q1.select(1, i).copy_(q);
        at::Tensor err1 = (w - q) / d;
        W1.narrow(1, i, count - i).sub_(err1.unsqueeze(1).matmul(Hinv1[i].narrow(0, i, count - i).unsqueeze(0)));
        Err1.select(1, i).copy_(err1);
      }
      Q.narrow(1, i1, count).copy_(Q1);
      if (i2 < columns) W.narrow(1, i2, columns - i2).sub_(Err1.matmul(Hinv.narrow(0, i1, count).narrow(1, i2, columns - i2)));
    }
    if (config.desc_act) Q = Q.index_select(1, invperm);
    result.weight = Q.contiguous();
    result.quant_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return result;
  });
}

}  // namespace quarry
