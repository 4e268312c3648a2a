// Fake-quantization kernels on a 4096x4096 float32 weight and a 2048x4096 float32 activation,
// three ways side by side:
//   Fast/...      quarry's fused kernel (FakeQuantizeDynamic: parameters + fake quantization);
//   TorchOps/...  the same computation built from LibTorch ops, the way Quark's PyTorch path does
//                 it (reshape to groups, aminmax / amax, scale formula, round/clamp/mul ops;
//                 LibTorch 1.13 has no float8 dtype, so fp8/fp4 rounding is emulated with
//                 log2/floor/round ops);
//   FastInto/...  the fast kernel writing into a preallocated, pre-touched output;
//   Memcpy/...    a plain copy of the same bytes with the same threads into a fresh tensor;
//   MemcpyTouched a plain copy between pre-touched buffers (the bandwidth limit FastInto is
//                 compared against).
// Bytes processed per iteration = input + output (2 * numel * 4), reported as GB/s.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>

#include "numerics/fake_quantize.h"
#include "numerics/kernels/kernels.h"
#include "numerics/plan.h"
#include "quarry/quantize.h"
#include "quarry/spec_helpers.h"

namespace {

using quarry::Dtype;
using quarry::QSchemeType;
using quarry::QuantizationSpec;

const at::Tensor& Weight() {
  static const at::Tensor w = [] {
    at::manual_seed(1);
    return at::randn({4096, 4096}) * 0.02;
  }();
  return w;
}
const at::Tensor& Activation() {
  static const at::Tensor a = [] {
    at::manual_seed(2);
    return at::randn({2048, 4096});
  }();
  return a;
}
const at::Tensor& Input(int64_t which) { return which == 0 ? Weight() : Activation(); }
const char* InputName(int64_t which) { return which == 0 ? "weight4096x4096" : "act2048x4096"; }

QuantizationSpec IntSpec(Dtype d, QSchemeType q, std::optional<int> group) {
  QuantizationSpec s;
  s.dtype = d;
  s.qscheme = q;
  s.ch_axis = q == QSchemeType::kPerChannel ? 0 : -1;
  s.group_size = group;
  s.symmetric = true;
  s.round_method = quarry::RoundType::kHalfEven;
  s.is_dynamic = true;
  return s;
}

QuantizationSpec Fp8PerTensor() {
  quarry::FP8E4M3PerTensorSpec h;
  h.observer_method = "min_max";
  h.is_dynamic = true;
  return *h.ToQuantizationSpec();
}

QuantizationSpec Mx(Dtype element) {
  QuantizationSpec s = *quarry::OCP_MXFP4Spec{}.ToQuantizationSpec();
  s.dtype = element;
  return s;
}

// ----- LibTorch-ops references (Quark's PyTorch formulation) -----

// Symmetric integer fake quantization with one scale per row of `rows` ([n, k]).
at::Tensor TorchIntRows(const at::Tensor& rows, int64_t qmin, int64_t qmax) {
  auto [mn, mx] = at::aminmax(rows, 1);
  const at::Tensor amax = at::maximum(-mn.clamp_max(0), mx.clamp_min(0));
  at::Tensor scale = at::maximum(amax / ((qmax - qmin) / 2.0), at::scalar_tensor(1.1920929e-07f));
  scale = scale.clamp_min(1.1754944e-38f).unsqueeze(1);
  const at::Tensor inv = 1.0 / scale;
  const at::Tensor zp = at::zeros_like(scale, at::kInt);
  const at::Tensor q = at::clamp(at::round(rows * inv) + zp, qmin, qmax);
  return (q - zp) * scale;
}

// Round onto a float element grid (mbits mantissa bits, smallest normal exponent emin, largest
// magnitude max) with torch ops: q = 2^(max(floor(log2|v|), emin) - mbits), round(|v| / q) * q.
at::Tensor TorchFloatGrid(const at::Tensor& v, int mbits, int emin, double max) {
  const at::Tensor a = v.abs().clamp_max(max);
  const at::Tensor e = at::floor(at::log2(a)).clamp_min(emin);
  const at::Tensor quantum = at::pow(2.0, e - mbits);
  return at::sign(v) * at::round(a / quantum) * quantum;
}

at::Tensor TorchReference(int64_t kernel, const at::Tensor& x) {
  switch (kernel) {
    case 0: return TorchIntRows(x.reshape({-1, 128}), -8, 7).reshape(x.sizes());   // int4 g128
    case 1: return TorchIntRows(x.reshape({-1, 128}), -128, 127).reshape(x.sizes());  // int8 g128
    case 2: return TorchIntRows(x, -8, 7);      // int4 per channel (rows)
    case 3: return TorchIntRows(x, -128, 127);  // int8 per channel (rows)
    case 4: {                                   // fp8 e4m3 per tensor
      const at::Tensor scale = x.abs().max() / 448.0;
      return TorchFloatGrid(x / scale, 3, -6, 448.0) * scale;
    }
    default: {  // mxfp4 / mxfp8 e4m3: blocks of 32, E8M0 "even" scale
      const bool fp4 = kernel == 5;
      const int mbits = fp4 ? 1 : 3, emax = fp4 ? 2 : 8, emin = fp4 ? 0 : -6;
      const double max = fp4 ? 6.0 : 448.0;
      const at::Tensor blocks = x.reshape({-1, 32});
      const at::Tensor amax = blocks.abs().amax(1, true);
      at::Tensor bits = amax.view(at::kInt).add(1 << (23 - mbits - 1)).bitwise_and(static_cast<int64_t>(static_cast<int32_t>(0xFF800000u)));
      at::Tensor rounded = bits.view(at::kFloat).masked_fill(amax == 0, 1.1754944e-38f);
      const at::Tensor scale = at::pow(2.0, (at::floor(at::log2(rounded)) - emax).clamp(-127, 127));
      return (TorchFloatGrid(blocks / scale, mbits, emin, max) * scale).reshape(x.sizes());
    }
  }
}

const char* KernelName(int64_t kernel) {
  static const char* names[] = {"int4_group128", "int8_group128", "int4_channel", "int8_channel",
                                "fp8_e4m3_tensor", "mxfp4", "mxfp8_e4m3"};
  return names[kernel];
}

QuantizationSpec KernelSpec(int64_t kernel) {
  switch (kernel) {
    case 0: return IntSpec(Dtype::kInt4, QSchemeType::kPerGroup, 128);
    case 1: return IntSpec(Dtype::kInt8, QSchemeType::kPerGroup, 128);
    case 2: return IntSpec(Dtype::kInt4, QSchemeType::kPerChannel, std::nullopt);
    case 3: return IntSpec(Dtype::kInt8, QSchemeType::kPerChannel, std::nullopt);
    case 4: return Fp8PerTensor();
    case 5: return Mx(Dtype::kFp4);
    default: return Mx(Dtype::kFp8E4M3);
  }
}

void SetCounters(benchmark::State& state, const at::Tensor& x) {
  state.SetBytesProcessed(state.iterations() * x.numel() * 4 * 2);
  state.SetLabel(std::string(KernelName(state.range(0))) + "/" + InputName(state.range(1)));
}

void BM_Fast(benchmark::State& state) {
  const at::Tensor& x = Input(state.range(1));
  auto plan = quarry::numerics::MakePlan(KernelSpec(state.range(0)));
  if (!plan.ok()) {
    state.SkipWithError(std::string(plan.status().message()).c_str());
    return;
  }
  for (auto _ : state) {
    auto y = quarry::numerics::FakeQuantizeDynamicWithPlan(*plan, x);
    benchmark::DoNotOptimize(y->first.data_ptr());
  }
  SetCounters(state, x);
}

void BM_TorchOps(benchmark::State& state) {
  const at::Tensor& x = Input(state.range(1));
  for (auto _ : state) {
    at::Tensor y = TorchReference(state.range(0), x);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  SetCounters(state, x);
}

void BM_Memcpy(benchmark::State& state) {
  const at::Tensor& x = Input(state.range(1));
  const char* src = static_cast<const char*>(x.data_ptr());
  const int64_t bytes = x.numel() * 4;
  for (auto _ : state) {
    at::Tensor y = at::empty_like(x);
    char* dst = static_cast<char*>(y.data_ptr());
    at::parallel_for(0, bytes, 1 << 20, [&](int64_t b, int64_t e) { std::memcpy(dst + b, src + b, e - b); });
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.SetBytesProcessed(state.iterations() * x.numel() * 4 * 2);
  state.SetLabel(std::string("memcpy/") + InputName(state.range(1)));
}

// Pre-touched buffers of x's shape, one per input (the out-of-place variants write into them, and
// the touched memcpy copies into them): no allocation or page fault inside the timed loop.
at::Tensor& Touched(int64_t which) {
  static at::Tensor buf[2] = {at::zeros_like(Weight()), at::zeros_like(Activation())};
  return buf[which];
}

// The fast kernel writing into a preallocated, pre-touched output (out of place, no allocation).
void BM_FastInto(benchmark::State& state) {
  const at::Tensor& x = Input(state.range(1));
  auto plan = quarry::numerics::MakePlan(KernelSpec(state.range(0)));
  if (!plan.ok()) {
    state.SkipWithError(std::string(plan.status().message()).c_str());
    return;
  }
  plan->dynamic = true;
  auto layout = quarry::numerics::MakeLayout(*plan, x.sizes());
  if (!layout.ok()) {
    state.SkipWithError(std::string(layout.status().message()).c_str());
    return;
  }
  at::Tensor& out = Touched(state.range(1));
  for (auto _ : state) {
    at::Tensor y = out;
    quarry::QuantParams params;
    if (!quarry::numerics::kernels::FakeQuantizeDynamic(*plan, *layout, x, &y, &params) ||
        y.data_ptr() != out.data_ptr()) {
      state.SkipWithError("no in-place output for this kernel");
      return;
    }
    benchmark::DoNotOptimize(y.data_ptr());
  }
  SetCounters(state, x);
}

// memcpy between pre-touched buffers of the same size with the same threads: the machine's
// copy bandwidth, which the out-of-place kernels are compared against.
void BM_MemcpyTouched(benchmark::State& state) {
  const at::Tensor& x = Input(state.range(1));
  const char* src = static_cast<const char*>(x.data_ptr());
  char* dst = static_cast<char*>(Touched(state.range(1)).data_ptr());
  const int64_t bytes = x.numel() * 4;
  for (auto _ : state) {
    at::parallel_for(0, bytes, 1 << 20, [&](int64_t b, int64_t e) { std::memcpy(dst + b, src + b, e - b); });
    benchmark::DoNotOptimize(dst);
  }
  state.SetBytesProcessed(state.iterations() * x.numel() * 4 * 2);
  state.SetLabel(std::string("memcpy_touched/") + InputName(state.range(1)));
}

// Before timing: the LibTorch-ops reference must compute what the fast kernel computes.
void CheckReferencesAgree() {
  for (int64_t kernel = 0; kernel < 7; ++kernel) {
    const at::Tensor& x = Activation();
    auto fast = quarry::FakeQuantizeDynamic(x, KernelSpec(kernel));
    const at::Tensor ref = TorchReference(kernel, x);
    const int64_t differ = fast.ok() ? (*fast != ref).sum().item<int64_t>() : -1;
    std::fprintf(stderr, "check %-16s fast vs LibTorch-ops reference: %lld of %lld elements differ\n",
                 KernelName(kernel), static_cast<long long>(differ), static_cast<long long>(x.numel()));
  }
}

void Kernels(benchmark::internal::Benchmark* b) {
  for (int64_t input : {0, 1}) {
    for (int64_t kernel = 0; kernel < 7; ++kernel) b->Args({kernel, input});
  }
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_Fast)->Apply(Kernels);
BENCHMARK(BM_TorchOps)->Apply(Kernels);
BENCHMARK(BM_FastInto)->Apply(Kernels);
BENCHMARK(BM_Memcpy)->Args({0, 0})->Args({0, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MemcpyTouched)->Args({0, 0})->Args({0, 1})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  at::set_num_threads(2);  // the machine has 2 cores; LibTorch defaults to 1 thread here
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  CheckReferencesAgree();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
