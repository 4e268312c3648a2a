// Measures LibTorch's float32 matmul throughput (2048x2048x2048), so setup can confirm that the
// fast OpenBLAS backs Debian's LibTorch (the reference BLAS reaches only ~6 GFLOP/s).
// Exit status 2 when below the threshold given as argv[1] (GFLOP/s).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

int main(int argc, char** argv) {
  const double threshold = argc > 1 ? std::atof(argv[1]) : 50.0;
  at::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
  const int64_t n = 2048;
  at::Tensor a = at::randn({n, n});
  at::Tensor b = at::randn({n, n});
  at::mm(a, b);  // warm up (thread pools, page faults)
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    at::mm(a, b);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * n * n * n / s / 1e9);
  }
  std::printf("setup: LibTorch float32 matmul %ldx%ld: %.1f GFLOP/s (threshold %.0f)\n",
              static_cast<long>(n), static_cast<long>(n), best, threshold);
  return best >= threshold ? 0 : 2;
}
