// QuantPlan: a QuantizationSpec checked once and resolved into what the numerics need (format
// family, grid, scale rules, observer class), plus the tensor layout helpers shared by the scalar
// references, the fast kernels, the observers and real quantization.
// Plain value types and free functions; thread-safe.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "numerics/formats.h"
#include "quarry/quant_config.h"

namespace quarry::numerics {

// How a spec quantizes, independent of the tensor.
enum class Family {
  kCast,     // bfloat16 / float16: a plain cast, no parameters
  kInt,      // integer grid with scale (and zero point)
  kFloat,    // fp8 / fp6 / fp4 elements with float32 scales (amax / max, or e4m3 two-level)
  kMx,       // OCP MX: E8M0 shared block scale; element fp8/fp6/fp4 or int8 (dtype mx + int8)
  kMx6Mx9,   // MX6 / MX9: shared exponent per block plus one micro-exponent bit per pair
  kBfp16,    // block floating point, block 8, 8-bit mantissa
};

enum class ScaleFormat { kFloat32, kE8M0, kE4M3 };
enum class MxScaleMode { kEven, kFloor, kCeil };

struct QuantPlan {
  QuantizationSpec spec;
  Family family = Family::kInt;
  Dtype element = Dtype::kInt8;  // grid element: the int dtype, float format, or MX element
  QSchemeType qscheme = QSchemeType::kPerTensor;  // block families are kPerGroup
  int ch_axis = 0;               // as given (may be negative); meaningless for per_tensor
  int64_t group_size = 0;        // per_group / blocks: as given, -1 = whole axis

  // kInt
  int64_t qmin = 0, qmax = 0;
  bool symmetric = false;        // None means asymmetric, as Quark's `if self.symmetric:`
  RoundType round = RoundType::kHalfEven;
  bool float_zero_point = false;  // zero_point_type float32 (asymmetric only)
  bool pof2 = false;              // scale_type pof2: power-of-two scales

  // kFloat / kMx / kMx6Mx9
  const FloatFormat* format = nullptr;  // float element format (nullptr for int elements)
  ScaleFormat scale_format = ScaleFormat::kFloat32;
  MxScaleMode mode = MxScaleMode::kEven;
  int mx_mbits = 0, mx_emax = 0;  // get_dtype_params of the MX element
  int quant_bit = 0;              // MX6: 5, MX9: 8

  // Scales stored in reduced precision (scale_type float16 / bfloat16); float32 otherwise.
  std::optional<ScaleType> scale_rounding;
  bool exact_float16_min = false;  // QuantizationSpec::exact_float16_min (float16 scale rounding)

  std::string observer;  // resolved observer class name
  bool dynamic = false;  // spec.is_dynamic (None = false); always true for mx6, mx9 and bfp16

  bool has_zero_point() const { return family == Family::kInt; }
  bool has_params() const { return family != Family::kCast; }
};

// Validates `spec` (dtype/qscheme/observer combinations, group sizes, scale formats) and resolves
// it. Errors are InvalidArgument naming the field; combinations Quark has no numerics for are
// Unimplemented.
absl::StatusOr<QuantPlan> MakePlan(const QuantizationSpec& spec);

// ----- Tensor layout -----
//
// A tensor x is seen as a contiguous [O, C, I] array with C = x.size(axis) (per_tensor: axis
// ignored, O = C = 1). Parameters follow the contract of quarry/quantize.h:
//   per_tensor  -> []            one parameter
//   per_channel -> [C]           parameter c for every (o, c, i)
//   per_group / blocks with group g -> x's shape with dim `axis` replaced by G = ceil(C / g),
//                 i.e. a contiguous [O, G, I] array: parameter (o, c / g, i).
struct Layout {
  QSchemeType qscheme = QSchemeType::kPerTensor;
  int axis = 0;            // normalized to [0, rank)
  int64_t outer = 1;       // O
  int64_t channels = 1;    // C
  int64_t inner = 1;       // I
  int64_t group = 1;       // g (resolved; whole axis when -1)
  int64_t groups = 1;      // G
  std::vector<int64_t> x_shape;
  std::vector<int64_t> param_shape;

  int64_t numel() const { return outer * channels * inner; }
  int64_t num_params() const;
  // Index of the parameter that applies to element `i` of the contiguous tensor.
  int64_t ParamIndex(int64_t i) const {
    switch (qscheme) {
      case QSchemeType::kPerChannel: return (i / inner) % channels;
      case QSchemeType::kPerGroup: {
        const int64_t o = i / (channels * inner);
        const int64_t c = (i / inner) % channels;
        return (o * groups + c / group) * inner + i % inner;
      }
      default: return 0;
    }
  }
};

// The layout of `sizes` under `plan`; InvalidArgument for a bad axis or group size.
absl::StatusOr<Layout> MakeLayout(const QuantPlan& plan, at::IntArrayRef sizes);

// Per-group helpers for the fast kernels: x moved to [R, C] rows (axis last, contiguous float32)
// and parameters between the contract layout [O, G, I] and rows [R, G] (R = O * I).
at::Tensor ToRows(const at::Tensor& x, const Layout& layout);
at::Tensor FromRows(const at::Tensor& rows, const Layout& layout);
at::Tensor ParamsToRows(const at::Tensor& params, const Layout& layout);
at::Tensor ParamsFromRows(const at::Tensor& rows, const Layout& layout);

// Rounds a float32 scale tensor to the precision of plan.scale_rounding (no-op when unset).
at::Tensor RoundScaleStorage(const QuantPlan& plan, const at::Tensor& scale);

}  // namespace quarry::numerics
