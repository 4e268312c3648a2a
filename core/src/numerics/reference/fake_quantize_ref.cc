#include "numerics/reference/fake_quantize_ref.h"

#include <cmath>

#include "numerics/reference/block_formats.h"
#include "numerics/reference/fp_elements.h"
#include "numerics/reference/int_grid.h"

namespace quarry::numerics::ref {

at::Tensor FakeQuantize(const QuantPlan& plan, const Layout& layout, const at::Tensor& x,
                        const at::Tensor& scale, const at::Tensor& zero_point) {
  if (plan.family == Family::kCast) {
    return x.to(plan.element == Dtype::kBfloat16 ? at::kBFloat16 : at::kHalf).to(at::kFloat);
  }
  at::Tensor y = at::empty_like(x);
  const float* xs = x.data_ptr<float>();
  float* ys = y.data_ptr<float>();
  const float* s = scale.data_ptr<float>();
  const float* zp = zero_point.defined() ? zero_point.data_ptr<float>() : nullptr;
  const int64_t n = x.numel();
  const float qmin = static_cast<float>(plan.qmin);
  const float qmax = static_cast<float>(plan.qmax);

  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = layout.ParamIndex(i);
    switch (plan.family) {
      case Family::kInt:
        ys[i] = FakeQuantIntValue(xs[i], s[p], zp ? zp[p] : 0.0f, qmin, qmax, plan.round);
        break;
      case Family::kFloat:
      case Family::kMx: {
        const float sp = s[p] == 0.0f ? kFloat32Eps : s[p];
        if (plan.format == nullptr) {  // MX int8 elements: int8 grid at scale / 64
          ys[i] = FakeQuantIntValue(xs[i], sp / 64.0f, 0.0f, -127.0f, 127.0f, RoundType::kHalfEven);
        } else {
          ys[i] = QuantizeFloatElement(xs[i] / sp, *plan.format) * sp;
        }
        break;
      }
      case Family::kMx6Mx9: {
        const int64_t c = (i / layout.inner) % layout.channels;
        const int64_t partner_c = (c % 2 == 0) ? c + 1 : c - 1;  // blocks are even-sized
        const float partner =
            partner_c < layout.channels ? xs[i + (partner_c - c) * layout.inner] : 0.0f;
        ys[i] = FakeQuantMx6Mx9Element(xs[i], partner, std::ilogb(s[p]), plan.quant_bit);
        break;
      }
      case Family::kBfp16:
        ys[i] = FakeQuantIntValue(NanToZero(xs[i]), s[p], 0.0f, -128.0f, 127.0f,
                                  RoundType::kHalfEven);
        break;
      case Family::kCast:
        break;
    }
  }
  return y;
}

}  // namespace quarry::numerics::ref
