// The enumerations of Quark's configuration language (quark.torch.quantization.config.type) and
// their JSON names. Names are Quark's member names exactly ("fp8_e4m3", "per_group", "half_even").
// Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"

namespace quarry {

// Dtype: the element format a tensor is quantized to.
enum class Dtype {
  kInt8, kUint8, kUint16, kInt16, kInt32, kInt4, kUint4, kInt3, kInt2,
  kBfloat16, kFloat16,
  kFp8E5M2, kFp8E4M3, kFp6E3M2, kFp6E2M3, kFp4,
  kMx,     // OCP MX block format; the element type is QuantizationSpec::mx_element_dtype
  kMx6, kMx9, kBfp16,
};

enum class QSchemeType { kPerTensor, kPerChannel, kPerGroup, kPerBlock };

// RoundType. kRound rounds half away from zero, kHalfEven is torch.round.
enum class RoundType { kRound, kFloor, kHalfEven };

// ScaleType. kFloat: any float scale; kPof2: power-of-two scales; kFloat32/kFloat16/kBfloat16:
// float scales stored in that precision.
enum class ScaleType { kFloat, kPof2, kFloat32, kFloat16, kBfloat16 };

enum class ZeroPointType { kInt32, kFloat32 };
enum class DeviceType { kCpu, kIpu };
enum class QuantizationMode { kEagerMode, kFxGraphMode };
enum class TQTThresholdInitMeth { k3SD, kKLJ };

// JSON names and parsing. Parse* return nullopt for an unknown name.
absl::string_view Name(Dtype v);
absl::string_view Name(QSchemeType v);
absl::string_view Name(RoundType v);
absl::string_view Name(ScaleType v);
absl::string_view Name(ZeroPointType v);
absl::string_view Name(DeviceType v);       // the enum *value* ("cpu"), as Quark writes it
absl::string_view Name(QuantizationMode v);
absl::string_view Name(TQTThresholdInitMeth v);  // value "_3sd" / "_kl_j"
std::optional<Dtype> ParseDtype(absl::string_view name);  // case-insensitive, as Dtype.from_str
std::optional<QSchemeType> ParseQScheme(absl::string_view name);
std::optional<RoundType> ParseRoundType(absl::string_view name);
std::optional<ScaleType> ParseScaleType(absl::string_view name);
std::optional<ZeroPointType> ParseZeroPointType(absl::string_view name);
std::optional<DeviceType> ParseDeviceType(absl::string_view name);
std::optional<QuantizationMode> ParseQuantizationMode(absl::string_view name);
std::optional<TQTThresholdInitMeth> ParseTQTThresholdInitMeth(absl::string_view name);

// All names of an enum, for error messages ("expected one of: ...").
std::string AllNames(Dtype);
std::string AllNames(QSchemeType);
std::string AllNames(RoundType);
std::string AllNames(ScaleType);
std::string AllNames(ZeroPointType);

// Facts about a dtype.
bool IsIntegerDtype(Dtype d);           // int2..int32, uint4..uint16
bool IsFloatElementDtype(Dtype d);      // fp8_*, fp6_*, fp4
bool IsBlockDtype(Dtype d);             // mx, mx6, mx9, bfp16 (no scale/zero-point observer)
bool IsCastDtype(Dtype d);              // bfloat16, float16: a plain cast
int BitWidth(Dtype d);                  // element bits (mx: 0, depends on mx_element_dtype)
// Quark's calculate_qmin_qmax for integer dtypes (full range: int4 -> [-8, 7]).
std::optional<std::pair<int64_t, int64_t>> IntegerRange(Dtype d);
// Largest finite magnitude of a float element dtype (fp8_e4m3 448, fp8_e5m2 57344, fp6_e3m2 28,
// fp6_e2m3 7.5, fp4 6).
std::optional<double> FloatElementMax(Dtype d);

}  // namespace quarry
