// Observers of the block formats: MxDiffsObserver (Quark's PerBlockMXDiffsObserver),
// Mx6Mx9Observer and Bfp16Observer (Quark computes these two inside its fake-quantize functions),
// and PlaceholderObserver (casts).
#include <cmath>
#include <limits>

#include "numerics/observers/observers.h"
#include "numerics/reference/block_formats.h"
#include "numerics/reference/fp_elements.h"
#include "numerics/reference/int_grid.h"
#include "quarry/status.h"

namespace quarry::numerics {
namespace {

// Static observers keep the running maximum; a changed block count restarts it.
void AccumulateMax(bool dynamic, bool observed, at::Tensor& into, const at::Tensor& batch) {
  if (!dynamic && observed && into.defined() && into.numel() == batch.numel()) {
    into = at::maximum(into, batch);
  } else {
    into = batch;
  }
}

// One element fake-quantized at an MX scale (the scaled_fake_quantize of the plan's element).
float FakeQuantMxElement(const QuantPlan& plan, float x, float scale) {
  const float s = scale == 0.0f ? kFloat32Eps : scale;
  if (plan.format == nullptr) {
    return ref::FakeQuantIntValue(x, s / 64.0f, 0.0f, -127.0f, 127.0f, RoundType::kHalfEven);
  }
  return ref::QuantizeFloatElement(x / s, *plan.format) * s;
}

}  // namespace

// ----- MxDiffsObserver -----

absl::Status MxDiffsObserver::Observe(const at::Tensor& x) {
  return CatchExceptions("MxDiffsObserver::Observe", [&]() -> absl::Status {
    QUARRY_ASSIGN_OR_RETURN(at::Tensor x32, Prepare(x));
    AccumulateMax(plan_.dynamic, observed_, amax_, ComputeAbsMax(layout_, x32, false));
    last_x_ = x32;  // Quark measures the error on the last observed tensor only
    observed_ = true;
    return absl::OkStatus();
  });
}

absl::StatusOr<QuantParams> MxDiffsObserver::Compute() const {
  if (!observed_) return NotObserved();
  const int64_t np = amax_.numel();
  const float* amax = amax_.data_ptr<float>();
  const float* xs = last_x_.data_ptr<float>();
  std::vector<float> init(np), best(np), best_error(np, std::numeric_limits<float>::infinity());
  for (int64_t p = 0; p < np; ++p) {
    init[p] = std::ceil(ref::Log2AsFloat32(amax[p])) - static_cast<float>(plan_.mx_emax);
    best[p] = init[p];
  }
  std::vector<double> error(np);
  for (int offset = 0; offset >= -1; --offset) {  // Quark's scope = 1: offsets 0 and -1
    std::fill(error.begin(), error.end(), 0.0);
    for (int64_t i = 0; i < last_x_.numel(); ++i) {
      const int64_t p = layout_.ParamIndex(i);
      const float d = xs[i] - FakeQuantMxElement(plan_, xs[i], ref::Pow2(init[p] + offset));
      error[p] += static_cast<double>(d) * static_cast<double>(d);
    }
    for (int64_t p = 0; p < np; ++p) {
      if (error[p] < best_error[p]) {
        best_error[p] = static_cast<float>(error[p]);
        best[p] = init[p] + static_cast<float>(offset);
      }
    }
  }
  at::Tensor scale = at::empty({np}, at::kFloat);
  for (int64_t p = 0; p < np; ++p) {
    const float s = ref::Pow2(best[p]);
    scale.data_ptr<float>()[p] = s == 0.0f ? kFloat32Eps : s;
  }
  QuantParams params;
  params.scale = scale.reshape(layout_.param_shape);
  return params;
}

void MxDiffsObserver::Reset() {
  amax_ = at::Tensor();
  last_x_ = at::Tensor();
  observed_ = false;
}

// ----- Mx6Mx9Observer -----

absl::Status Mx6Mx9Observer::Observe(const at::Tensor& x) {
  return CatchExceptions("Mx6Mx9Observer::Observe", [&]() -> absl::Status {
    QUARRY_ASSIGN_OR_RETURN(at::Tensor x32, Prepare(x));
    AccumulateMax(plan_.dynamic, observed_, amax_, ComputeAbsMax(layout_, x32, true));
    observed_ = true;
    return absl::OkStatus();
  });
}

absl::StatusOr<QuantParams> Mx6Mx9Observer::Compute() const {
  if (!observed_) return NotObserved();
  at::Tensor scale = at::empty({amax_.numel()}, at::kFloat);
  for (int64_t p = 0; p < amax_.numel(); ++p) {
    scale.data_ptr<float>()[p] =
        ref::Pow2(static_cast<float>(ref::TExponent(amax_.data_ptr<float>()[p])));
  }
  QuantParams params;
  params.scale = scale.reshape(layout_.param_shape);
  return params;
}

void Mx6Mx9Observer::Reset() {
  amax_ = at::Tensor();
  observed_ = false;
}

// ----- Bfp16Observer -----

absl::Status Bfp16Observer::Observe(const at::Tensor& x) {
  return CatchExceptions("Bfp16Observer::Observe", [&]() -> absl::Status {
    QUARRY_ASSIGN_OR_RETURN(at::Tensor x32, Prepare(x));
    AccumulateMax(plan_.dynamic, observed_, amax_, ComputeAbsMax(layout_, x32, true));
    amax_ = amax_.clone();
    observed_ = true;
    // Double amax where the block would leave [-128, 127] at the current scale.
    const int64_t np = amax_.numel();
    float* amax = amax_.data_ptr<float>();
    std::vector<float> scale(np);
    for (int64_t p = 0; p < np; ++p) scale[p] = ref::Bfp16ScaleFromAmax(amax[p]);
    std::vector<char> overflow(np, 0);
    const float* xs = x32.data_ptr<float>();
    for (int64_t i = 0; i < x32.numel(); ++i) {
      const int64_t p = layout_.ParamIndex(i);
      const float v = ref::NanToZero(xs[i]);
      if (!overflow[p] && ref::Bfp16Overflows(&v, 1, scale[p])) overflow[p] = 1;
    }
    for (int64_t p = 0; p < np; ++p) {
      if (overflow[p]) amax[p] *= 2.0f;
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<QuantParams> Bfp16Observer::Compute() const {
  if (!observed_) return NotObserved();
  at::Tensor scale = at::empty({amax_.numel()}, at::kFloat);
  for (int64_t p = 0; p < amax_.numel(); ++p) {
    scale.data_ptr<float>()[p] = ref::Bfp16ScaleFromAmax(amax_.data_ptr<float>()[p]);
  }
  QuantParams params;
  params.scale = scale.reshape(layout_.param_shape);
  return params;
}

void Bfp16Observer::Reset() {
  amax_ = at::Tensor();
  observed_ = false;
}

// ----- PlaceholderObserver -----

absl::Status PlaceholderObserver::Observe(const at::Tensor& x) {
  return CatchExceptions("PlaceholderObserver::Observe", [&]() -> absl::Status {
    if (!x.defined() || !at::isFloatingType(x.scalar_type())) {
      return absl::InvalidArgumentError("observed tensor must be a defined floating-point tensor");
    }
    observed_ = true;  // a cast needs no statistics; nothing is copied
    return absl::OkStatus();
  });
}

absl::StatusOr<QuantParams> PlaceholderObserver::Compute() const { return QuantParams{}; }

}  // namespace quarry::numerics
