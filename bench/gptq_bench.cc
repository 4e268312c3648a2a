// GPTQ on one linear layer, side by side with a straightforward LibTorch-ops transcription of the
// reference algorithm (IST-DASLab gptq.py), in the same binary:
//   BM_Hessian/<impl>/<out>x<in>   accumulating H over 128 x 2048 calibration tokens
//                                  (syrk: one triangle  vs  GEMM X^T X as the reference does)
//   BM_QuantLoop/<impl>/<out>x<in> the column loop (int4, group 128, act-order, static groups)
// Run: build/bench/quarry_gptq_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <thread>

#include "quarry/gptq.h"
#include "quarry/spec_helpers.h"

namespace {

constexpr int64_t kBatches = 128, kTokens = 2048;

// Calibration inputs are generated per batch (128 x 2048 x in floats would be 4 GB at in=4096).
at::Tensor Batch(int64_t in, int64_t b) {
  at::manual_seed(1000 + b);
  return at::randn({kTokens, in});
}

void BM_HessianSyrk(benchmark::State& state) {
  const int64_t in = state.range(1);
  std::vector<at::Tensor> batches;
  for (int64_t b = 0; b < 4; ++b) batches.push_back(Batch(in, b));  // reused round-robin
  for (auto _ : state) {
    quarry::HessianAccumulator acc(in);
    for (int64_t b = 0; b < kBatches; ++b) (void)acc.Add(batches[b % 4]);
    benchmark::DoNotOptimize(acc.H().data_ptr());
  }
  state.counters["tokens"] = static_cast<double>(kBatches * kTokens);
}

// The reference's add_batch: H *= n/(n+t); n += t; inp = sqrt(2/n) * inp; H += inp.T @ inp.
void BM_HessianReference(benchmark::State& state) {
  const int64_t in = state.range(1);
  std::vector<at::Tensor> batches;
  for (int64_t b = 0; b < 4; ++b) batches.push_back(Batch(in, b));
  for (auto _ : state) {
    at::Tensor H = at::zeros({in, in});
    int64_t n = 0;
    for (int64_t b = 0; b < kBatches; ++b) {
      at::Tensor inp = batches[b % 4];
      const int64_t t = inp.size(0);
      H.mul_(static_cast<double>(n) / (n + t));
      n += t;
      inp = std::sqrt(2.0 / n) * inp;
      H.add_(at::matmul(inp.t(), inp));
    }
    benchmark::DoNotOptimize(H.data_ptr());
  }
  state.counters["tokens"] = static_cast<double>(kBatches * kTokens);
}

struct LoopInputs {
  at::Tensor W, H;
};
LoopInputs Inputs(int64_t out, int64_t in) {
  at::manual_seed(5);
  LoopInputs li;
  li.W = at::randn({out, in}) * 0.02;
  at::Tensor X = at::randn({4 * in, in}) * (1 + at::rand({in}));
  quarry::HessianAccumulator acc(in);
  (void)acc.Add(X);
  li.H = acc.H();
  return li;
}

quarry::QuantizationSpec Spec() {
  return *quarry::Int4PerGroupSpec{true, 1, false, "float", "half_even", 128}.ToQuantizationSpec();
}

void BM_QuantLoopFast(benchmark::State& state) {
  LoopInputs li = Inputs(state.range(0), state.range(1));
  quarry::GPTQConfig cfg;
  for (auto _ : state) {
    auto r = quarry::GptqQuantizeWeight(li.W, li.H, Spec(), cfg);
    if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
    benchmark::DoNotOptimize(r->weight.data_ptr());
  }
}

void BM_QuantLoopReference(benchmark::State& state) {
  LoopInputs li = Inputs(state.range(0), state.range(1));
  quarry::GPTQConfig cfg;
  for (auto _ : state) {
    auto r = quarry::GptqQuantizeWeightReference(li.W, li.H, Spec(), cfg);
    if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
    benchmark::DoNotOptimize(r->weight.data_ptr());
  }
}

const int kThreads = [] {
  at::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
  return 0;
}();

BENCHMARK(BM_HessianSyrk)->Args({4096, 4096})->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK(BM_HessianReference)->Args({4096, 4096})->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK(BM_QuantLoopFast)->Args({4096, 4096})->Args({11008, 4096})->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK(BM_QuantLoopReference)->Args({4096, 4096})->Args({11008, 4096})->Unit(benchmark::kSecond)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
