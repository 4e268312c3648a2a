// Public fake quantization (quarry/quantize.h): checks, dispatch between the fast kernels and the
// scalar reference, dtype/device round trip.
#include "numerics/fake_quantize.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "numerics/kernels/kernels.h"
#include "numerics/observers/observers.h"
#include "numerics/reference/fake_quantize_ref.h"
#include "quarry/status.h"

namespace quarry {
namespace numerics {
namespace {

std::string ShapeString(at::IntArrayRef sizes) { return absl::StrCat("[", absl::StrJoin(sizes, ", "), "]"); }

at::ScalarType CastType(const QuantPlan& plan) {
  return plan.element == Dtype::kBfloat16 ? at::kBFloat16 : at::kHalf;
}

}  // namespace

absl::Status CheckInput(const at::Tensor& x) {
  if (!x.defined()) return absl::InvalidArgumentError("input tensor is undefined");
  const auto t = x.scalar_type();
  if (t != at::kFloat && t != at::kBFloat16 && t != at::kHalf) {
    return absl::InvalidArgumentError(absl::StrCat("input tensor has dtype ",
                                                   std::string(c10::toString(t)),
                                                   "; expected float32, bfloat16 or float16"));
  }
  return absl::OkStatus();
}

absl::StatusOr<FlatParams> FlattenParams(const QuantPlan& plan, const Layout& layout,
                                         const QuantParams& params) {
  FlatParams flat;
  if (!plan.has_params()) return flat;
  const at::Tensor& scale = params.scale;
  if (!scale.defined()) {
    return absl::InvalidArgumentError(
        absl::StrCat("scale is undefined; dtype ", Name(plan.spec.dtype), " needs scales"));
  }
  if (!at::isFloatingType(scale.scalar_type())) {
    return absl::InvalidArgumentError("scale must be a floating-point tensor");
  }
  const int64_t expected = layout.num_params();
  const bool shape_ok = layout.qscheme == QSchemeType::kPerTensor
                            ? scale.numel() == 1
                            : scale.sizes() == at::IntArrayRef(layout.param_shape);
  if (!shape_ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scale has shape ", ShapeString(scale.sizes()), "; ", Name(layout.qscheme),
        " quantization of a tensor of shape ", ShapeString(layout.x_shape), " needs ",
        layout.qscheme == QSchemeType::kPerTensor ? "one scale"
                                                  : absl::StrCat("shape ", ShapeString(layout.param_shape))));
  }
  flat.scale = scale.to(at::kCPU, at::kFloat).contiguous().reshape({expected});
  if (plan.has_zero_point() && params.zero_point.defined()) {
    if (params.zero_point.numel() != expected) {
      return absl::InvalidArgumentError(absl::StrCat(
          "zero_point has ", params.zero_point.numel(), " elements; expected ", expected,
          " (as many as scale)"));
    }
    flat.zero_point = params.zero_point.to(at::kCPU, at::kFloat).contiguous().reshape({expected});
  }
  return flat;
}

absl::StatusOr<at::Tensor> FakeQuantizeWithPlan(const QuantPlan& plan, const at::Tensor& x,
                                                const QuantParams& params, Path path) {
  QUARRY_RETURN_IF_ERROR(CheckInput(x));
  return CatchExceptions("FakeQuantize", [&]() -> absl::StatusOr<at::Tensor> {
    if (plan.family == Family::kCast) {
      return x.scalar_type() == CastType(plan) ? x.clone() : x.to(CastType(plan)).to(x.scalar_type());
    }
    QUARRY_ASSIGN_OR_RETURN(const Layout layout, MakeLayout(plan, x.sizes()));
    QUARRY_ASSIGN_OR_RETURN(const FlatParams flat, FlattenParams(plan, layout, params));
    const at::Tensor x32 = x.to(at::kCPU, at::kFloat).contiguous();
    at::Tensor y;
    if (path == Path::kAuto) {
      y = kernels::FakeQuantizeWithParams(plan, layout, x32, flat.scale, flat.zero_point);
    }
    if (!y.defined()) y = ref::FakeQuantize(plan, layout, x32, flat.scale, flat.zero_point);
    return y.reshape(x.sizes()).to(x.device(), x.scalar_type());
  });
}

absl::StatusOr<std::pair<at::Tensor, QuantParams>> FakeQuantizeDynamicWithPlan(
    const QuantPlan& plan_in, const at::Tensor& x, Path path) {
  QUARRY_RETURN_IF_ERROR(CheckInput(x));
  QuantPlan plan = plan_in;
  plan.dynamic = true;
  if (plan.family == Family::kCast) {
    QUARRY_ASSIGN_OR_RETURN(at::Tensor y, FakeQuantizeWithPlan(plan, x, QuantParams{}, path));
    return std::make_pair(std::move(y), QuantParams{});
  }
  if (x.numel() == 0) {
    return absl::InvalidArgumentError("cannot compute quantization parameters of an empty tensor");
  }
  if (path == Path::kAuto) {
    auto fused = CatchExceptions(
        "FakeQuantizeDynamic", [&]() -> absl::StatusOr<std::pair<at::Tensor, QuantParams>> {
          QUARRY_ASSIGN_OR_RETURN(const Layout layout, MakeLayout(plan, x.sizes()));
          const at::Tensor x32 = x.to(at::kCPU, at::kFloat).contiguous();
          at::Tensor y;
          QuantParams params;
          if (!kernels::FakeQuantizeDynamic(plan, layout, x32, &y, &params)) {
            return absl::UnimplementedError("no fused kernel");
          }
          return std::make_pair(y.reshape(x.sizes()).to(x.device(), x.scalar_type()),
                                std::move(params));
        });
    if (fused.ok() || !absl::IsUnimplemented(fused.status())) return fused;
  }
  QUARRY_ASSIGN_OR_RETURN(std::unique_ptr<Observer> observer, MakeObserver(plan));
  QUARRY_RETURN_IF_ERROR(observer->Observe(x));
  QUARRY_ASSIGN_OR_RETURN(QuantParams params, observer->Compute());
  QUARRY_ASSIGN_OR_RETURN(at::Tensor y, FakeQuantizeWithPlan(plan, x, params, path));
  return std::make_pair(std::move(y), std::move(params));
}

}  // namespace numerics

absl::StatusOr<at::Tensor> FakeQuantize(const at::Tensor& x, const QuantizationSpec& spec,
                                        const QuantParams& params) {
  QUARRY_ASSIGN_OR_RETURN(const numerics::QuantPlan plan, numerics::MakePlan(spec));
  return numerics::FakeQuantizeWithPlan(plan, x, params);
}

absl::StatusOr<at::Tensor> FakeQuantizeDynamic(const at::Tensor& x, const QuantizationSpec& spec) {
  QUARRY_ASSIGN_OR_RETURN(const numerics::QuantPlan plan, numerics::MakePlan(spec));
  QUARRY_ASSIGN_OR_RETURN(auto result, numerics::FakeQuantizeDynamicWithPlan(plan, x));
  return std::move(result.first);
}

}  // namespace quarry
