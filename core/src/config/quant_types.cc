#include "quarry/quant_types.h"

#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"

namespace quarry {
namespace {

template <typename E>
struct Entry {
  E value;
  absl::string_view name;
};

constexpr Entry<Dtype> kDtypeNames[] = {
    {Dtype::kInt8, "int8"},         {Dtype::kUint8, "uint8"},       {Dtype::kUint16, "uint16"},
    {Dtype::kInt16, "int16"},       {Dtype::kInt32, "int32"},       {Dtype::kInt4, "int4"},
    {Dtype::kUint4, "uint4"},       {Dtype::kInt3, "int3"},         {Dtype::kInt2, "int2"},
    {Dtype::kBfloat16, "bfloat16"}, {Dtype::kFloat16, "float16"},   {Dtype::kFp8E5M2, "fp8_e5m2"},
    {Dtype::kFp8E4M3, "fp8_e4m3"},  {Dtype::kFp6E3M2, "fp6_e3m2"},  {Dtype::kFp6E2M3, "fp6_e2m3"},
    {Dtype::kFp4, "fp4"},           {Dtype::kMx, "mx"},             {Dtype::kMx6, "mx6"},
    {Dtype::kMx9, "mx9"},           {Dtype::kBfp16, "bfp16"},
};
constexpr Entry<QSchemeType> kQSchemeNames[] = {{QSchemeType::kPerTensor, "per_tensor"},
                                                {QSchemeType::kPerChannel, "per_channel"},
                                                {QSchemeType::kPerGroup, "per_group"},
                                                {QSchemeType::kPerBlock, "per_block"}};
constexpr Entry<RoundType> kRoundNames[] = {
    {RoundType::kRound, "round"}, {RoundType::kFloor, "floor"}, {RoundType::kHalfEven, "half_even"}};
constexpr Entry<ScaleType> kScaleTypeNames[] = {{ScaleType::kFloat, "float"},
                                                {ScaleType::kPof2, "pof2"},
                                                {ScaleType::kFloat32, "float32"},
                                                {ScaleType::kFloat16, "float16"},
                                                {ScaleType::kBfloat16, "bfloat16"}};
constexpr Entry<ZeroPointType> kZeroPointNames[] = {{ZeroPointType::kInt32, "int32"},
                                                    {ZeroPointType::kFloat32, "float32"}};
constexpr Entry<DeviceType> kDeviceNames[] = {{DeviceType::kCpu, "cpu"}, {DeviceType::kIpu, "ipu"}};
constexpr Entry<QuantizationMode> kModeNames[] = {{QuantizationMode::kEagerMode, "eager_mode"},
                                                  {QuantizationMode::kFxGraphMode, "fx_graph_mode"}};
constexpr Entry<TQTThresholdInitMeth> kTqtNames[] = {{TQTThresholdInitMeth::k3SD, "_3sd"},
                                                     {TQTThresholdInitMeth::kKLJ, "_kl_j"}};

template <typename E, size_t N>
absl::string_view Lookup(const Entry<E> (&table)[N], E v) {
  for (const auto& e : table)
    if (e.value == v) return e.name;
  return "?";
}
template <typename E, size_t N>
std::optional<E> Parse(const Entry<E> (&table)[N], absl::string_view name) {
  for (const auto& e : table)
    if (e.name == name) return e.value;
  return std::nullopt;
}
template <typename E, size_t N>
std::string Join(const Entry<E> (&table)[N]) {
  std::vector<absl::string_view> names;
  for (const auto& e : table) names.push_back(e.name);
  return absl::StrJoin(names, ", ");
}

}  // namespace

absl::string_view Name(Dtype v) { return Lookup(kDtypeNames, v); }
absl::string_view Name(QSchemeType v) { return Lookup(kQSchemeNames, v); }
absl::string_view Name(RoundType v) { return Lookup(kRoundNames, v); }
absl::string_view Name(ScaleType v) { return Lookup(kScaleTypeNames, v); }
absl::string_view Name(ZeroPointType v) { return Lookup(kZeroPointNames, v); }
absl::string_view Name(DeviceType v) { return Lookup(kDeviceNames, v); }
absl::string_view Name(QuantizationMode v) { return Lookup(kModeNames, v); }
absl::string_view Name(TQTThresholdInitMeth v) { return Lookup(kTqtNames, v); }

std::optional<Dtype> ParseDtype(absl::string_view name) {
  return Parse(kDtypeNames, absl::AsciiStrToLower(name));
}
std::optional<QSchemeType> ParseQScheme(absl::string_view n) { return Parse(kQSchemeNames, n); }
std::optional<RoundType> ParseRoundType(absl::string_view n) { return Parse(kRoundNames, n); }
std::optional<ScaleType> ParseScaleType(absl::string_view n) { return Parse(kScaleTypeNames, n); }
std::optional<ZeroPointType> ParseZeroPointType(absl::string_view n) {
  return Parse(kZeroPointNames, n);
}
std::optional<DeviceType> ParseDeviceType(absl::string_view n) { return Parse(kDeviceNames, n); }
std::optional<QuantizationMode> ParseQuantizationMode(absl::string_view n) {
  return Parse(kModeNames, n);
}
std::optional<TQTThresholdInitMeth> ParseTQTThresholdInitMeth(absl::string_view n) {
  auto v = Parse(kTqtNames, n);
  if (v) return v;
  // Also accept the member names.
  if (n == "_3SD") return TQTThresholdInitMeth::k3SD;
  if (n == "_KL_J") return TQTThresholdInitMeth::kKLJ;
  return std::nullopt;
}

std::string AllNames(Dtype) { return Join(kDtypeNames); }
std::string AllNames(QSchemeType) { return Join(kQSchemeNames); }
std::string AllNames(RoundType) { return Join(kRoundNames); }
std::string AllNames(ScaleType) { return Join(kScaleTypeNames); }
std::string AllNames(ZeroPointType) { return Join(kZeroPointNames); }

bool IsIntegerDtype(Dtype d) {
  switch (d) {
    case Dtype::kInt8: case Dtype::kUint8: case Dtype::kUint16: case Dtype::kInt16:
    case Dtype::kInt32: case Dtype::kInt4: case Dtype::kUint4: case Dtype::kInt3:
    case Dtype::kInt2:
      return true;
    default:
      return false;
  }
}

bool IsFloatElementDtype(Dtype d) {
  return d == Dtype::kFp8E4M3 || d == Dtype::kFp8E5M2 || d == Dtype::kFp6E2M3 ||
         d == Dtype::kFp6E3M2 || d == Dtype::kFp4;
}

bool IsBlockDtype(Dtype d) {
  return d == Dtype::kMx || d == Dtype::kMx6 || d == Dtype::kMx9 || d == Dtype::kBfp16;
}

bool IsCastDtype(Dtype d) { return d == Dtype::kBfloat16 || d == Dtype::kFloat16; }

int BitWidth(Dtype d) {
  switch (d) {
    case Dtype::kInt8: case Dtype::kUint8: case Dtype::kFp8E4M3: case Dtype::kFp8E5M2: return 8;
    case Dtype::kUint16: case Dtype::kInt16: case Dtype::kBfloat16: case Dtype::kFloat16:
    case Dtype::kBfp16: return 16;
    case Dtype::kInt32: return 32;
    case Dtype::kInt4: case Dtype::kUint4: case Dtype::kFp4: return 4;
    case Dtype::kInt3: return 3;
    case Dtype::kInt2: return 2;
    case Dtype::kFp6E2M3: case Dtype::kFp6E3M2: case Dtype::kMx6: return 6;
    case Dtype::kMx9: return 9;
    case Dtype::kMx: return 0;
  }
  return 0;
}

std::optional<std::pair<int64_t, int64_t>> IntegerRange(Dtype d) {
  switch (d) {
    case Dtype::kInt8: return std::pair<int64_t, int64_t>{-128, 127};
    case Dtype::kUint8: return std::pair<int64_t, int64_t>{0, 255};
    case Dtype::kInt16: return std::pair<int64_t, int64_t>{-32768, 32767};
    case Dtype::kUint16: return std::pair<int64_t, int64_t>{0, 65535};
    case Dtype::kInt32: return std::pair<int64_t, int64_t>{-2147483648LL, 2147483647LL};
    case Dtype::kInt4: return std::pair<int64_t, int64_t>{-8, 7};
    case Dtype::kUint4: return std::pair<int64_t, int64_t>{0, 15};
    case Dtype::kInt3: return std::pair<int64_t, int64_t>{-4, 3};
    case Dtype::kInt2: return std::pair<int64_t, int64_t>{-2, 1};
    default: return std::nullopt;
  }
}

std::optional<double> FloatElementMax(Dtype d) {
  switch (d) {
    case Dtype::kFp8E4M3: return 448.0;
    case Dtype::kFp8E5M2: return 57344.0;
    case Dtype::kFp6E3M2: return 28.0;
    case Dtype::kFp6E2M3: return 7.5;
    case Dtype::kFp4: return 6.0;
    default: return std::nullopt;
  }
}

}  // namespace quarry
