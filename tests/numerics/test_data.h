// Deterministic test inputs for the numerics tests: random data over many magnitudes, and edge
// data (NaN, +-Inf, +-0, float32 subnormals, huge values, exact ties on power-of-two grids).
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

namespace quarry::testing {

// randn * 10^u, u uniform in [-3, 3] per row (so rows span six orders of magnitude).
inline at::Tensor RandomData(at::IntArrayRef shape, uint64_t seed) {
  at::manual_seed(seed);
  at::Tensor x = at::randn(shape);
  const int64_t rows = shape.empty() ? 1 : shape[0];
  at::Tensor mag = at::pow(10.0, at::rand({rows}) * 6.0 - 3.0);
  std::vector<int64_t> view(shape.size(), 1);
  if (!view.empty()) view[0] = rows;
  return shape.empty() ? x * mag[0] : x * mag.reshape(view);
}

// RandomData with special values written over a few positions of every row: NaN, +-Inf, +-0,
// subnormals, 1e30, and halves of small powers of two (ties on power-of-two grids).
inline at::Tensor EdgeData(at::IntArrayRef shape, uint64_t seed, bool finite_only = false) {
  at::Tensor x = RandomData(shape, seed).contiguous();
  float* p = x.data_ptr<float>();
  const int64_t n = x.numel();
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            0.0f, -0.0f, 1e-40f, -3e-42f, 1e30f, -1e30f, 0.375f, -2.5f, 0.0625f,
                            6.5f, -0.25f, 448.0f, 3e38f};
  const int count = sizeof(specials) / sizeof(specials[0]);
  for (int64_t i = 0, k = 0; i < n; i += 7, ++k) {
    const float v = specials[(k * 5 + i) % count];
    if (finite_only && !std::isfinite(v)) continue;
    if (finite_only && std::fabs(v) > 1e29f) continue;
    p[i] = v;
  }
  return x;
}

}  // namespace quarry::testing
