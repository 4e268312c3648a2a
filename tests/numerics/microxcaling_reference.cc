#include "microxcaling_reference.h"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace quarry::testing {
namespace {

// torch.log2 on float32, correctly rounded (as numerics::ref::Log2AsFloat32).
float Log2F(float v) { return static_cast<float>(std::log2(static_cast<double>(v))); }
float Pow2F(float e) { return std::isnan(e) ? e : std::ldexp(1.0f, static_cast<int>(e)); }
float Sign(float v) { return static_cast<float>((0.0f < v) - (v < 0.0f)); }  // torch.sign

// _round_mantissa(A, bits, round, clamp=False).
float RoundMantissa(float a, const std::string& round) {
  const float abs_a = std::fabs(a);
  if (round == "floor") return Sign(a) * std::floor(abs_a);
  if (round == "nearest") return Sign(a) * std::floor(abs_a + 0.5f);
  if (round == "even") {
    // maskA = ((absA - 0.5) % 2 == 0): ties whose floor is even round down.
    const float mask = std::fmod(abs_a - 0.5f, 2.0f) == 0.0f ? 1.0f : 0.0f;
    return Sign(a) * (std::floor(abs_a + 0.5f) - mask);
  }
  throw std::invalid_argument("unknown rounding " + round);
}

}  // namespace

MxFormat MicroxcalingFormat(const std::string& name) {
  if (name == "fp8_e4m3") return {4, 5, 8, 448.0f};
  if (name == "fp8_e5m2") return {5, 4, 15, 57344.0f};
  if (name == "fp6_e3m2") return {3, 4, 4, 28.0f};
  if (name == "fp6_e2m3") return {2, 5, 2, 7.5f};
  if (name == "fp4") return {2, 3, 2, 6.0f};
  if (name == "int8") return {0, 8, 0, 1.984375f};
  throw std::invalid_argument("unknown format " + name);
}

float MicroxcalingElement(float a, const MxFormat& f, const std::string& round, bool saturate) {
  const float shift = Pow2F(static_cast<float>(f.mbits - 2));
  float out;
  float private_exp = 0.0f;
  if (f.ebits != 0) {
    private_exp = std::floor(Log2F(std::fabs(a) + (a == 0.0f ? 1.0f : 0.0f)));
    const float min_exp = static_cast<float>(-(1 << (f.ebits - 1)) + 2);
    if (private_exp < min_exp) private_exp = min_exp;  // torch.clip keeps NaN
    out = a / Pow2F(private_exp) * shift;
  } else {
    out = a * shift;
  }
  out = RoundMantissa(out, round);
  out = f.ebits != 0 ? out / shift * Pow2F(private_exp) : out / shift;
  if (saturate || f.ebits == 0) {
    if (out < -f.max_norm) out = -f.max_norm;
    if (out > f.max_norm) out = f.max_norm;
  } else if (std::fabs(out) > f.max_norm) {
    out = Sign(out) * std::numeric_limits<float>::infinity();
  }
  if (a == std::numeric_limits<float>::infinity()) out = a;
  if (a == -std::numeric_limits<float>::infinity()) out = a;
  return out;
}

at::Tensor MicroxcalingMx(const at::Tensor& x_in, const MxFormat& f, const std::string& round,
                          int64_t block_size) {
  const at::Tensor x = x_in.to(at::kFloat).contiguous();
  at::Tensor y = at::empty_like(x);
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  const float* xs = x.data_ptr<float>();
  float* ys = y.data_ptr<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols; b += block_size) {
      const int64_t n = std::min(block_size, cols - b);
      const float* xb = xs + r * cols + b;
      float amax = 0.0f;
      for (int64_t i = 0; i < n; ++i) {
        const float v = std::fabs(xb[i]);
        amax = (std::isnan(v) || std::isnan(amax)) ? std::numeric_limits<float>::quiet_NaN()
                                                    : (v > amax ? v : amax);
      }
      float shared_exp = std::floor(Log2F(amax + 0x1p-126f * (amax == 0.0f ? 1.0f : 0.0f)));
      shared_exp -= static_cast<float>(f.emax);
      if (shared_exp > 127.0f) shared_exp = std::numeric_limits<float>::quiet_NaN();
      if (shared_exp < -127.0f) shared_exp = -127.0f;
      const float scale = Pow2F(shared_exp);
      for (int64_t i = 0; i < n; ++i) {
        ys[r * cols + b + i] = MicroxcalingElement(xb[i] / scale, f, round, true) * scale;
      }
    }
  }
  return y;
}

}  // namespace quarry::testing
