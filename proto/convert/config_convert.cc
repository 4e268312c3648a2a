#include "convert/config_convert.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "quarry/status.h"

namespace quarry::convert {
namespace {

absl::Status PathError(const std::string& path, absl::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", msg));
}

template <typename A, typename B>
struct EnumPair {
  A core;
  B proto;
};

constexpr EnumPair<Dtype, v1::Dtype> kDtypes[] = {
    {Dtype::kInt8, v1::DTYPE_INT8},         {Dtype::kUint8, v1::DTYPE_UINT8},
    {Dtype::kInt4, v1::DTYPE_INT4},         {Dtype::kUint4, v1::DTYPE_UINT4},
    {Dtype::kInt3, v1::DTYPE_INT3},         {Dtype::kInt2, v1::DTYPE_INT2},
    {Dtype::kBfloat16, v1::DTYPE_BFLOAT16}, {Dtype::kFloat16, v1::DTYPE_FLOAT16},
    {Dtype::kFp8E4M3, v1::DTYPE_FP8_E4M3},  {Dtype::kFp8E5M2, v1::DTYPE_FP8_E5M2},
    {Dtype::kFp6E3M2, v1::DTYPE_FP6_E3M2},  {Dtype::kFp6E2M3, v1::DTYPE_FP6_E2M3},
    {Dtype::kFp4, v1::DTYPE_FP4},           {Dtype::kMx, v1::DTYPE_MX},
    {Dtype::kMx6, v1::DTYPE_MX6},           {Dtype::kMx9, v1::DTYPE_MX9},
    {Dtype::kBfp16, v1::DTYPE_BFP16},       {Dtype::kInt16, v1::DTYPE_INT16},
    {Dtype::kUint16, v1::DTYPE_UINT16},     {Dtype::kInt32, v1::DTYPE_INT32},
};
constexpr EnumPair<QSchemeType, v1::QSchemeType> kQSchemes[] = {
    {QSchemeType::kPerTensor, v1::QSCHEME_PER_TENSOR},
    {QSchemeType::kPerChannel, v1::QSCHEME_PER_CHANNEL},
    {QSchemeType::kPerGroup, v1::QSCHEME_PER_GROUP},
    {QSchemeType::kPerBlock, v1::QSCHEME_PER_BLOCK}};
constexpr EnumPair<RoundType, v1::RoundType> kRounds[] = {
    {RoundType::kRound, v1::ROUND_ROUND},
    {RoundType::kFloor, v1::ROUND_FLOOR},
    {RoundType::kHalfEven, v1::ROUND_HALF_EVEN}};
constexpr EnumPair<ScaleType, v1::ScaleType> kScaleTypes[] = {
    {ScaleType::kFloat, v1::SCALE_TYPE_FLOAT},
    {ScaleType::kPof2, v1::SCALE_TYPE_POF2},
    {ScaleType::kFloat32, v1::SCALE_TYPE_FLOAT32},
    {ScaleType::kFloat16, v1::SCALE_TYPE_FLOAT16},
    {ScaleType::kBfloat16, v1::SCALE_TYPE_BFLOAT16}};
constexpr EnumPair<ZeroPointType, v1::ZeroPointType> kZeroPoints[] = {
    {ZeroPointType::kInt32, v1::ZERO_POINT_TYPE_INT32},
    {ZeroPointType::kFloat32, v1::ZERO_POINT_TYPE_FLOAT32}};
constexpr EnumPair<DeviceType, v1::DeviceType> kDevices[] = {
    {DeviceType::kCpu, v1::DEVICE_TYPE_CPU}, {DeviceType::kIpu, v1::DEVICE_TYPE_IPU}};
constexpr EnumPair<TQTThresholdInitMeth, v1::TQTThresholdInitMeth> kTqt[] = {
    {TQTThresholdInitMeth::k3SD, v1::TQT_THRESHOLD_INIT_3SD},
    {TQTThresholdInitMeth::kKLJ, v1::TQT_THRESHOLD_INIT_KL_J}};

template <typename A, typename B, size_t N>
B ToP(const EnumPair<A, B> (&t)[N], A v) {
  for (const auto& e : t)
    if (e.core == v) return e.proto;
  return B{};
}
template <typename A, typename B, size_t N>
absl::StatusOr<A> FromP(const EnumPair<A, B> (&t)[N], B v, const std::string& path) {
  for (const auto& e : t)
    if (e.proto == v) return e.core;
  return PathError(path, absl::StrCat("unspecified or unknown enum value ", static_cast<int>(v)));
}

v1::ScalingLayer ScalingLayerToProto(const ScalingLayer& s) {
  v1::ScalingLayer p;
  p.set_prev_op(s.prev_op);
  for (const auto& l : s.layers) p.add_layers(l);
  p.set_inp(s.inp);
  if (s.module2inspect) p.set_module2inspect(*s.module2inspect);
  if (!s.extra_json.empty())
    (void)google::protobuf::util::JsonStringToMessage(s.extra_json, p.mutable_extra());
  return p;
}

absl::StatusOr<ScalingLayer> ScalingLayerFromProto(const v1::ScalingLayer& p,
                                                   const std::string& path) {
  ScalingLayer s;
  s.prev_op = p.prev_op();
  s.layers.assign(p.layers().begin(), p.layers().end());
  s.inp = p.inp();
  if (!p.module2inspect().empty()) s.module2inspect = p.module2inspect();
  if (p.has_extra() && p.extra().fields_size() > 0) {
    std::string json;
    auto st = google::protobuf::util::MessageToJsonString(p.extra(), &json);
    if (!st.ok()) return PathError(path + ".extra", std::string(st.message()));
    s.extra_json = json;
  }
  return s;
}

std::string StructToJson(const google::protobuf::Struct& s) {
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(s, &json);
  return json;
}

// ----- helpers (generated once from the seed's helper list; one function per helper) -----

void HelperToProto(const Uint4PerTensorSpec& h, v1::Uint4PerTensorSpec* p) {
  if (h.observer_method) p->set_observer_method(*h.observer_method);
  if (h.symmetric) p->set_symmetric(*h.symmetric);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.round_method) p->set_round_method(*h.round_method);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
}
void HelperToProto(const Uint4PerChannelSpec& h, v1::Uint4PerChannelSpec* p) {
  if (h.symmetric) p->set_symmetric(*h.symmetric);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.round_method) p->set_round_method(*h.round_method);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.zero_point_type) p->set_zero_point_type(*h.zero_point_type);
}
void HelperToProto(const Uint4PerGroupSpec& h, v1::Uint4PerGroupSpec* p) {
  if (h.symmetric) p->set_symmetric(*h.symmetric);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.round_method) p->set_round_method(*h.round_method);
  if (h.group_size) p->set_group_size(*h.group_size);
}
void HelperToProto(const Int3PerGroupSpec& h, v1::Int3PerGroupSpec* p) {
  if (h.symmetric) p->set_symmetric(*h.symmetric);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.round_method) p->set_round_method(*h.round_method);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.group_size) p->set_group_size(*h.group_size);
}
void HelperToProto(const Int3PerChannelSpec& h, v1::Int3PerChannelSpec* p) {
  if (h.symmetric) p->set_symmetric(*h.symmetric);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.round_method) p->set_round_method(*h.round_method);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
}
void HelperToProto(const Int2PerGroupSpec& h, v1::Int2PerGroupSpec* p) {
  if (h.symmetric) p->set_symmetric(*h.symmetric);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.round_method) p->set_round_method(*h.round_method);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.group_size) p->set_group_size(*h.group_size);
}
void HelperToProto(const Int4PerTensorSpec& h, v1::Int4PerTensorSpec* p) {
  if (h.observer_method) p->set_observer_method(*h.observer_method);
  if (h.symmetric) p->set_symmetric(*h.symmetric);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.round_method) p->set_round_method(*h.round_method);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
}
void HelperToProto(const Int4PerChannelSpec& h, v1::Int4PerChannelSpec* p) {
  if (h.symmetric) p->set_symmetric(*h.symmetric);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.round_method) p->set_round_method(*h.round_method);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
}
void HelperToProto(const Int4PerGroupSpec& h, v1::Int4PerGroupSpec* p) {
  if (h.symmetric) p->set_symmetric(*h.symmetric);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.round_method) p->set_round_method(*h.round_method);
  if (h.group_size) p->set_group_size(*h.group_size);
}
void HelperToProto(const Uint8PerTensorSpec& h, v1::Uint8PerTensorSpec* p) {
  if (h.observer_method) p->set_observer_method(*h.observer_method);
  if (h.symmetric) p->set_symmetric(*h.symmetric);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.round_method) p->set_round_method(*h.round_method);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
}
void HelperToProto(const Uint8PerChannelSpec& h, v1::Uint8PerChannelSpec* p) {
  if (h.symmetric) p->set_symmetric(*h.symmetric);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.round_method) p->set_round_method(*h.round_method);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
}
void HelperToProto(const Uint8PerGroupSpec& h, v1::Uint8PerGroupSpec* p) {
  if (h.symmetric) p->set_symmetric(*h.symmetric);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.round_method) p->set_round_method(*h.round_method);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.group_size) p->set_group_size(*h.group_size);
}
void HelperToProto(const Int8PerTensorSpec& h, v1::Int8PerTensorSpec* p) {
  if (h.observer_method) p->set_observer_method(*h.observer_method);
  if (h.symmetric) p->set_symmetric(*h.symmetric);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.round_method) p->set_round_method(*h.round_method);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
}
void HelperToProto(const Int8PerChannelSpec& h, v1::Int8PerChannelSpec* p) {
  if (h.symmetric) p->set_symmetric(*h.symmetric);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.round_method) p->set_round_method(*h.round_method);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
}
void HelperToProto(const Int8PerGroupSpec& h, v1::Int8PerGroupSpec* p) {
  if (h.symmetric) p->set_symmetric(*h.symmetric);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.round_method) p->set_round_method(*h.round_method);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.group_size) p->set_group_size(*h.group_size);
}
void HelperToProto(const FP8E4M3PerTensorSpec& h, v1::FP8E4M3PerTensorSpec* p) {
  if (h.observer_method) p->set_observer_method(*h.observer_method);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
}
void HelperToProto(const FP8E4M3PerChannelSpec& h, v1::FP8E4M3PerChannelSpec* p) {
  if (h.symmetric) p->set_symmetric(*h.symmetric);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.round_method) p->set_round_method(*h.round_method);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
}
void HelperToProto(const FP8E4M3PerGroupSpec& h, v1::FP8E4M3PerGroupSpec* p) {
  if (h.scale_format) p->set_scale_format(*h.scale_format);
  if (h.scale_calculation_mode) p->set_scale_calculation_mode(*h.scale_calculation_mode);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.group_size) p->set_group_size(*h.group_size);
}
void HelperToProto(const FP8E5M2PerTensorSpec& h, v1::FP8E5M2PerTensorSpec* p) {
  if (h.observer_method) p->set_observer_method(*h.observer_method);
  if (h.symmetric) p->set_symmetric(*h.symmetric);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.round_method) p->set_round_method(*h.round_method);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
}
void HelperToProto(const FP8E5M2PerChannelSpec& h, v1::FP8E5M2PerChannelSpec* p) {
  if (h.symmetric) p->set_symmetric(*h.symmetric);
  if (h.scale_type) p->set_scale_type(*h.scale_type);
  if (h.round_method) p->set_round_method(*h.round_method);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
}
void HelperToProto(const FP8E5M2PerGroupSpec& h, v1::FP8E5M2PerGroupSpec* p) {
  if (h.scale_format) p->set_scale_format(*h.scale_format);
  if (h.scale_calculation_mode) p->set_scale_calculation_mode(*h.scale_calculation_mode);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.group_size) p->set_group_size(*h.group_size);
}
void HelperToProto(const FP4PerGroupSpec& h, v1::FP4PerGroupSpec* p) {
  if (h.scale_format) p->set_scale_format(*h.scale_format);
  if (h.scale_calculation_mode) p->set_scale_calculation_mode(*h.scale_calculation_mode);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.group_size) p->set_group_size(*h.group_size);
}
void HelperToProto(const FP6E2M3PerGroupSpec& h, v1::FP6E2M3PerGroupSpec* p) {
  if (h.scale_format) p->set_scale_format(*h.scale_format);
  if (h.scale_calculation_mode) p->set_scale_calculation_mode(*h.scale_calculation_mode);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.group_size) p->set_group_size(*h.group_size);
}
void HelperToProto(const FP6E3M2PerGroupSpec& h, v1::FP6E3M2PerGroupSpec* p) {
  if (h.scale_format) p->set_scale_format(*h.scale_format);
  if (h.scale_calculation_mode) p->set_scale_calculation_mode(*h.scale_calculation_mode);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.group_size) p->set_group_size(*h.group_size);
}
void HelperToProto(const Float16Spec& h, v1::Float16Spec* p) {
  (void)h;
  (void)p;
}
void HelperToProto(const Bfloat16Spec& h, v1::Bfloat16Spec* p) {
  (void)h;
  (void)p;
}
void HelperToProto(const OCP_MXFP8E4M3Spec& h, v1::OCP_MXFP8E4M3Spec* p) {
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.scale_calculation_mode) p->set_scale_calculation_mode(*h.scale_calculation_mode);
}
void HelperToProto(const OCP_MXFP8E5M2Spec& h, v1::OCP_MXFP8E5M2Spec* p) {
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.scale_calculation_mode) p->set_scale_calculation_mode(*h.scale_calculation_mode);
}
void HelperToProto(const OCP_MXFP6E3M2Spec& h, v1::OCP_MXFP6E3M2Spec* p) {
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.scale_calculation_mode) p->set_scale_calculation_mode(*h.scale_calculation_mode);
}
void HelperToProto(const OCP_MXFP6E2M3Spec& h, v1::OCP_MXFP6E2M3Spec* p) {
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.scale_calculation_mode) p->set_scale_calculation_mode(*h.scale_calculation_mode);
}
void HelperToProto(const OCP_MXFP4Spec& h, v1::OCP_MXFP4Spec* p) {
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.scale_calculation_mode) p->set_scale_calculation_mode(*h.scale_calculation_mode);
}
void HelperToProto(const OCP_MXINT8Spec& h, v1::OCP_MXINT8Spec* p) {
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.scale_calculation_mode) p->set_scale_calculation_mode(*h.scale_calculation_mode);
}
void HelperToProto(const OCP_MXFP4DiffsSpec& h, v1::OCP_MXFP4DiffsSpec* p) {
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
  if (h.scale_calculation_mode) p->set_scale_calculation_mode(*h.scale_calculation_mode);
}
void HelperToProto(const MX6Spec& h, v1::MX6Spec* p) {
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.block_size) p->set_block_size(*h.block_size);
  if (h.scale_calculation_mode) p->set_scale_calculation_mode(*h.scale_calculation_mode);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
}
void HelperToProto(const MX9Spec& h, v1::MX9Spec* p) {
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.block_size) p->set_block_size(*h.block_size);
  if (h.scale_calculation_mode) p->set_scale_calculation_mode(*h.scale_calculation_mode);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
}
void HelperToProto(const BFP16Spec& h, v1::BFP16Spec* p) {
  if (h.ch_axis) p->set_ch_axis(*h.ch_axis);
  if (h.scale_calculation_mode) p->set_scale_calculation_mode(*h.scale_calculation_mode);
  if (h.is_dynamic) p->set_is_dynamic(*h.is_dynamic);
}

Uint4PerTensorSpec HelperFromProto(const v1::Uint4PerTensorSpec& p) {
  Uint4PerTensorSpec h;
  if (p.has_observer_method()) h.observer_method = p.observer_method();
  if (p.has_symmetric()) h.symmetric = p.symmetric();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_round_method()) h.round_method = p.round_method();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  return h;
}
Uint4PerChannelSpec HelperFromProto(const v1::Uint4PerChannelSpec& p) {
  Uint4PerChannelSpec h;
  if (p.has_symmetric()) h.symmetric = p.symmetric();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_round_method()) h.round_method = p.round_method();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_zero_point_type()) h.zero_point_type = p.zero_point_type();
  return h;
}
Uint4PerGroupSpec HelperFromProto(const v1::Uint4PerGroupSpec& p) {
  Uint4PerGroupSpec h;
  if (p.has_symmetric()) h.symmetric = p.symmetric();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_round_method()) h.round_method = p.round_method();
  if (p.has_group_size()) h.group_size = p.group_size();
  return h;
}
Int3PerGroupSpec HelperFromProto(const v1::Int3PerGroupSpec& p) {
  Int3PerGroupSpec h;
  if (p.has_symmetric()) h.symmetric = p.symmetric();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_round_method()) h.round_method = p.round_method();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_group_size()) h.group_size = p.group_size();
  return h;
}
Int3PerChannelSpec HelperFromProto(const v1::Int3PerChannelSpec& p) {
  Int3PerChannelSpec h;
  if (p.has_symmetric()) h.symmetric = p.symmetric();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_round_method()) h.round_method = p.round_method();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  return h;
}
Int2PerGroupSpec HelperFromProto(const v1::Int2PerGroupSpec& p) {
  Int2PerGroupSpec h;
  if (p.has_symmetric()) h.symmetric = p.symmetric();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_round_method()) h.round_method = p.round_method();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_group_size()) h.group_size = p.group_size();
  return h;
}
Int4PerTensorSpec HelperFromProto(const v1::Int4PerTensorSpec& p) {
  Int4PerTensorSpec h;
  if (p.has_observer_method()) h.observer_method = p.observer_method();
  if (p.has_symmetric()) h.symmetric = p.symmetric();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_round_method()) h.round_method = p.round_method();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  return h;
}
Int4PerChannelSpec HelperFromProto(const v1::Int4PerChannelSpec& p) {
  Int4PerChannelSpec h;
  if (p.has_symmetric()) h.symmetric = p.symmetric();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_round_method()) h.round_method = p.round_method();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  return h;
}
Int4PerGroupSpec HelperFromProto(const v1::Int4PerGroupSpec& p) {
  Int4PerGroupSpec h;
  if (p.has_symmetric()) h.symmetric = p.symmetric();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_round_method()) h.round_method = p.round_method();
  if (p.has_group_size()) h.group_size = p.group_size();
  return h;
}
Uint8PerTensorSpec HelperFromProto(const v1::Uint8PerTensorSpec& p) {
  Uint8PerTensorSpec h;
  if (p.has_observer_method()) h.observer_method = p.observer_method();
  if (p.has_symmetric()) h.symmetric = p.symmetric();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_round_method()) h.round_method = p.round_method();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  return h;
}
Uint8PerChannelSpec HelperFromProto(const v1::Uint8PerChannelSpec& p) {
  Uint8PerChannelSpec h;
  if (p.has_symmetric()) h.symmetric = p.symmetric();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_round_method()) h.round_method = p.round_method();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  return h;
}
Uint8PerGroupSpec HelperFromProto(const v1::Uint8PerGroupSpec& p) {
  Uint8PerGroupSpec h;
  if (p.has_symmetric()) h.symmetric = p.symmetric();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_round_method()) h.round_method = p.round_method();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_group_size()) h.group_size = p.group_size();
  return h;
}
Int8PerTensorSpec HelperFromProto(const v1::Int8PerTensorSpec& p) {
  Int8PerTensorSpec h;
  if (p.has_observer_method()) h.observer_method = p.observer_method();
  if (p.has_symmetric()) h.symmetric = p.symmetric();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_round_method()) h.round_method = p.round_method();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  return h;
}
Int8PerChannelSpec HelperFromProto(const v1::Int8PerChannelSpec& p) {
  Int8PerChannelSpec h;
  if (p.has_symmetric()) h.symmetric = p.symmetric();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_round_method()) h.round_method = p.round_method();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  return h;
}
Int8PerGroupSpec HelperFromProto(const v1::Int8PerGroupSpec& p) {
  Int8PerGroupSpec h;
  if (p.has_symmetric()) h.symmetric = p.symmetric();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_round_method()) h.round_method = p.round_method();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_group_size()) h.group_size = p.group_size();
  return h;
}
FP8E4M3PerTensorSpec HelperFromProto(const v1::FP8E4M3PerTensorSpec& p) {
  FP8E4M3PerTensorSpec h;
  if (p.has_observer_method()) h.observer_method = p.observer_method();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  return h;
}
FP8E4M3PerChannelSpec HelperFromProto(const v1::FP8E4M3PerChannelSpec& p) {
  FP8E4M3PerChannelSpec h;
  if (p.has_symmetric()) h.symmetric = p.symmetric();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_round_method()) h.round_method = p.round_method();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  return h;
}
FP8E4M3PerGroupSpec HelperFromProto(const v1::FP8E4M3PerGroupSpec& p) {
  FP8E4M3PerGroupSpec h;
  if (p.has_scale_format()) h.scale_format = p.scale_format();
  if (p.has_scale_calculation_mode()) h.scale_calculation_mode = p.scale_calculation_mode();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_group_size()) h.group_size = p.group_size();
  return h;
}
FP8E5M2PerTensorSpec HelperFromProto(const v1::FP8E5M2PerTensorSpec& p) {
  FP8E5M2PerTensorSpec h;
  if (p.has_observer_method()) h.observer_method = p.observer_method();
  if (p.has_symmetric()) h.symmetric = p.symmetric();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_round_method()) h.round_method = p.round_method();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  return h;
}
FP8E5M2PerChannelSpec HelperFromProto(const v1::FP8E5M2PerChannelSpec& p) {
  FP8E5M2PerChannelSpec h;
  if (p.has_symmetric()) h.symmetric = p.symmetric();
  if (p.has_scale_type()) h.scale_type = p.scale_type();
  if (p.has_round_method()) h.round_method = p.round_method();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  return h;
}
FP8E5M2PerGroupSpec HelperFromProto(const v1::FP8E5M2PerGroupSpec& p) {
  FP8E5M2PerGroupSpec h;
  if (p.has_scale_format()) h.scale_format = p.scale_format();
  if (p.has_scale_calculation_mode()) h.scale_calculation_mode = p.scale_calculation_mode();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_group_size()) h.group_size = p.group_size();
  return h;
}
FP4PerGroupSpec HelperFromProto(const v1::FP4PerGroupSpec& p) {
  FP4PerGroupSpec h;
  if (p.has_scale_format()) h.scale_format = p.scale_format();
  if (p.has_scale_calculation_mode()) h.scale_calculation_mode = p.scale_calculation_mode();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_group_size()) h.group_size = p.group_size();
  return h;
}
FP6E2M3PerGroupSpec HelperFromProto(const v1::FP6E2M3PerGroupSpec& p) {
  FP6E2M3PerGroupSpec h;
  if (p.has_scale_format()) h.scale_format = p.scale_format();
  if (p.has_scale_calculation_mode()) h.scale_calculation_mode = p.scale_calculation_mode();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_group_size()) h.group_size = p.group_size();
  return h;
}
FP6E3M2PerGroupSpec HelperFromProto(const v1::FP6E3M2PerGroupSpec& p) {
  FP6E3M2PerGroupSpec h;
  if (p.has_scale_format()) h.scale_format = p.scale_format();
  if (p.has_scale_calculation_mode()) h.scale_calculation_mode = p.scale_calculation_mode();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_group_size()) h.group_size = p.group_size();
  return h;
}
Float16Spec HelperFromProto(const v1::Float16Spec& p) {
  Float16Spec h;
  (void)p;
  return h;
}
Bfloat16Spec HelperFromProto(const v1::Bfloat16Spec& p) {
  Bfloat16Spec h;
  (void)p;
  return h;
}
OCP_MXFP8E4M3Spec HelperFromProto(const v1::OCP_MXFP8E4M3Spec& p) {
  OCP_MXFP8E4M3Spec h;
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_scale_calculation_mode()) h.scale_calculation_mode = p.scale_calculation_mode();
  return h;
}
OCP_MXFP8E5M2Spec HelperFromProto(const v1::OCP_MXFP8E5M2Spec& p) {
  OCP_MXFP8E5M2Spec h;
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_scale_calculation_mode()) h.scale_calculation_mode = p.scale_calculation_mode();
  return h;
}
OCP_MXFP6E3M2Spec HelperFromProto(const v1::OCP_MXFP6E3M2Spec& p) {
  OCP_MXFP6E3M2Spec h;
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_scale_calculation_mode()) h.scale_calculation_mode = p.scale_calculation_mode();
  return h;
}
OCP_MXFP6E2M3Spec HelperFromProto(const v1::OCP_MXFP6E2M3Spec& p) {
  OCP_MXFP6E2M3Spec h;
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_scale_calculation_mode()) h.scale_calculation_mode = p.scale_calculation_mode();
  return h;
}
OCP_MXFP4Spec HelperFromProto(const v1::OCP_MXFP4Spec& p) {
  OCP_MXFP4Spec h;
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_scale_calculation_mode()) h.scale_calculation_mode = p.scale_calculation_mode();
  return h;
}
OCP_MXINT8Spec HelperFromProto(const v1::OCP_MXINT8Spec& p) {
  OCP_MXINT8Spec h;
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_scale_calculation_mode()) h.scale_calculation_mode = p.scale_calculation_mode();
  return h;
}
OCP_MXFP4DiffsSpec HelperFromProto(const v1::OCP_MXFP4DiffsSpec& p) {
  OCP_MXFP4DiffsSpec h;
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  if (p.has_scale_calculation_mode()) h.scale_calculation_mode = p.scale_calculation_mode();
  return h;
}
MX6Spec HelperFromProto(const v1::MX6Spec& p) {
  MX6Spec h;
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_block_size()) h.block_size = p.block_size();
  if (p.has_scale_calculation_mode()) h.scale_calculation_mode = p.scale_calculation_mode();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  return h;
}
MX9Spec HelperFromProto(const v1::MX9Spec& p) {
  MX9Spec h;
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_block_size()) h.block_size = p.block_size();
  if (p.has_scale_calculation_mode()) h.scale_calculation_mode = p.scale_calculation_mode();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  return h;
}
BFP16Spec HelperFromProto(const v1::BFP16Spec& p) {
  BFP16Spec h;
  if (p.has_ch_axis()) h.ch_axis = p.ch_axis();
  if (p.has_scale_calculation_mode()) h.scale_calculation_mode = p.scale_calculation_mode();
  if (p.has_is_dynamic()) h.is_dynamic = p.is_dynamic();
  return h;
}

}  // namespace

v1::QuantizationSpec ToProto(const QuantizationSpec& s) {
  v1::QuantizationSpec p;
  p.set_dtype(ToP(kDtypes, s.dtype));
  if (s.observer_cls) p.set_observer_cls(*s.observer_cls);
  if (s.is_dynamic) p.set_is_dynamic(*s.is_dynamic);
  if (s.qscheme) p.set_qscheme(ToP(kQSchemes, *s.qscheme));
  if (s.ch_axis) p.set_ch_axis(*s.ch_axis);
  if (s.group_size) p.set_group_size(*s.group_size);
  if (s.symmetric) p.set_symmetric(*s.symmetric);
  if (s.round_method) p.set_round_method(ToP(kRounds, *s.round_method));
  if (s.scale_type) p.set_scale_type(ToP(kScaleTypes, *s.scale_type));
  if (s.scale_format) p.set_scale_format(*s.scale_format);
  if (s.scale_calculation_mode) p.set_scale_calculation_mode(*s.scale_calculation_mode);
  if (s.qat_spec) {
    auto* q = p.mutable_qat_spec();
    if (s.qat_spec->threshold_init_meth)
      q->set_threshold_init_meth(ToP(kTqt, *s.qat_spec->threshold_init_meth));
  }
  if (s.mx_element_dtype) p.set_mx_element_dtype(ToP(kDtypes, *s.mx_element_dtype));
  // Absent means the default int32; None is not expressible on the wire (it behaves as int32).
  if (s.zero_point_type && *s.zero_point_type != ZeroPointType::kInt32)
    p.set_zero_point_type(ToP(kZeroPoints, *s.zero_point_type));
  p.set_is_scale_quant(s.is_scale_quant);
  return p;
}

absl::StatusOr<QuantizationSpec> FromProto(const v1::QuantizationSpec& p, const std::string& path) {
  QuantizationSpec s;
  QUARRY_ASSIGN_OR_RETURN(s.dtype, FromP(kDtypes, p.dtype(), path + ".dtype"));
  if (p.has_observer_cls()) s.observer_cls = p.observer_cls();
  if (p.has_is_dynamic()) s.is_dynamic = p.is_dynamic();
  if (p.has_qscheme()) {
    QUARRY_ASSIGN_OR_RETURN(s.qscheme, FromP(kQSchemes, p.qscheme(), path + ".qscheme"));
  }
  if (p.has_ch_axis()) s.ch_axis = p.ch_axis();
  if (p.has_group_size()) s.group_size = p.group_size();
  if (p.has_symmetric()) s.symmetric = p.symmetric();
  if (p.has_round_method()) {
    QUARRY_ASSIGN_OR_RETURN(s.round_method, FromP(kRounds, p.round_method(), path + ".round_method"));
  }
  if (p.has_scale_type()) {
    QUARRY_ASSIGN_OR_RETURN(s.scale_type, FromP(kScaleTypes, p.scale_type(), path + ".scale_type"));
  }
  if (p.has_scale_format()) s.scale_format = p.scale_format();
  if (p.has_scale_calculation_mode()) s.scale_calculation_mode = p.scale_calculation_mode();
  if (p.has_qat_spec()) {
    TQTSpec t;
    if (p.qat_spec().has_threshold_init_meth()) {
      QUARRY_ASSIGN_OR_RETURN(t.threshold_init_meth,
                              FromP(kTqt, p.qat_spec().threshold_init_meth(),
                                    path + ".qat_spec.threshold_init_meth"));
    }
    s.qat_spec = t;
  }
  if (p.has_mx_element_dtype()) {
    QUARRY_ASSIGN_OR_RETURN(s.mx_element_dtype,
                            FromP(kDtypes, p.mx_element_dtype(), path + ".mx_element_dtype"));
  }
  if (p.has_zero_point_type() && p.zero_point_type() != v1::ZERO_POINT_TYPE_UNSPECIFIED) {
    QUARRY_ASSIGN_OR_RETURN(s.zero_point_type,
                            FromP(kZeroPoints, p.zero_point_type(), path + ".zero_point_type"));
  }
  s.is_scale_quant = p.is_scale_quant();
  return s;
}

void ToProto(const StageSpec& s, v1::TensorQuantSpec* p) {
  if (const auto* q = std::get_if<QuantizationSpec>(&s)) {
    *p->mutable_quantization_spec() = ToProto(*q);
    return;
  }
  if (const auto* h = std::get_if<Uint4PerTensorSpec>(&s)) return HelperToProto(*h, p->mutable_uint4_per_tensor());
  if (const auto* h = std::get_if<Uint4PerChannelSpec>(&s)) return HelperToProto(*h, p->mutable_uint4_per_channel());
  if (const auto* h = std::get_if<Uint4PerGroupSpec>(&s)) return HelperToProto(*h, p->mutable_uint4_per_group());
  if (const auto* h = std::get_if<Int3PerGroupSpec>(&s)) return HelperToProto(*h, p->mutable_int3_per_group());
  if (const auto* h = std::get_if<Int3PerChannelSpec>(&s)) return HelperToProto(*h, p->mutable_int3_per_channel());
  if (const auto* h = std::get_if<Int2PerGroupSpec>(&s)) return HelperToProto(*h, p->mutable_int2_per_group());
  if (const auto* h = std::get_if<Int4PerTensorSpec>(&s)) return HelperToProto(*h, p->mutable_int4_per_tensor());
  if (const auto* h = std::get_if<Int4PerChannelSpec>(&s)) return HelperToProto(*h, p->mutable_int4_per_channel());
  if (const auto* h = std::get_if<Int4PerGroupSpec>(&s)) return HelperToProto(*h, p->mutable_int4_per_group());
  if (const auto* h = std::get_if<Uint8PerTensorSpec>(&s)) return HelperToProto(*h, p->mutable_uint8_per_tensor());
  if (const auto* h = std::get_if<Uint8PerChannelSpec>(&s)) return HelperToProto(*h, p->mutable_uint8_per_channel());
  if (const auto* h = std::get_if<Uint8PerGroupSpec>(&s)) return HelperToProto(*h, p->mutable_uint8_per_group());
  if (const auto* h = std::get_if<Int8PerTensorSpec>(&s)) return HelperToProto(*h, p->mutable_int8_per_tensor());
  if (const auto* h = std::get_if<Int8PerChannelSpec>(&s)) return HelperToProto(*h, p->mutable_int8_per_channel());
  if (const auto* h = std::get_if<Int8PerGroupSpec>(&s)) return HelperToProto(*h, p->mutable_int8_per_group());
  if (const auto* h = std::get_if<FP8E4M3PerTensorSpec>(&s)) return HelperToProto(*h, p->mutable_fp8_e4m3_per_tensor());
  if (const auto* h = std::get_if<FP8E4M3PerChannelSpec>(&s)) return HelperToProto(*h, p->mutable_fp8_e4m3_per_channel());
  if (const auto* h = std::get_if<FP8E4M3PerGroupSpec>(&s)) return HelperToProto(*h, p->mutable_fp8_e4m3_per_group());
  if (const auto* h = std::get_if<FP8E5M2PerTensorSpec>(&s)) return HelperToProto(*h, p->mutable_fp8_e5m2_per_tensor());
  if (const auto* h = std::get_if<FP8E5M2PerChannelSpec>(&s)) return HelperToProto(*h, p->mutable_fp8_e5m2_per_channel());
  if (const auto* h = std::get_if<FP8E5M2PerGroupSpec>(&s)) return HelperToProto(*h, p->mutable_fp8_e5m2_per_group());
  if (const auto* h = std::get_if<FP4PerGroupSpec>(&s)) return HelperToProto(*h, p->mutable_fp4_per_group());
  if (const auto* h = std::get_if<FP6E2M3PerGroupSpec>(&s)) return HelperToProto(*h, p->mutable_fp6_e2m3_per_group());
  if (const auto* h = std::get_if<FP6E3M2PerGroupSpec>(&s)) return HelperToProto(*h, p->mutable_fp6_e3m2_per_group());
  if (const auto* h = std::get_if<Float16Spec>(&s)) return HelperToProto(*h, p->mutable_float16());
  if (const auto* h = std::get_if<Bfloat16Spec>(&s)) return HelperToProto(*h, p->mutable_bfloat16());
  if (const auto* h = std::get_if<OCP_MXFP8E4M3Spec>(&s)) return HelperToProto(*h, p->mutable_ocp_mxfp8_e4m3());
  if (const auto* h = std::get_if<OCP_MXFP8E5M2Spec>(&s)) return HelperToProto(*h, p->mutable_ocp_mxfp8_e5m2());
  if (const auto* h = std::get_if<OCP_MXFP6E3M2Spec>(&s)) return HelperToProto(*h, p->mutable_ocp_mxfp6_e3m2());
  if (const auto* h = std::get_if<OCP_MXFP6E2M3Spec>(&s)) return HelperToProto(*h, p->mutable_ocp_mxfp6_e2m3());
  if (const auto* h = std::get_if<OCP_MXFP4Spec>(&s)) return HelperToProto(*h, p->mutable_ocp_mxfp4());
  if (const auto* h = std::get_if<OCP_MXINT8Spec>(&s)) return HelperToProto(*h, p->mutable_ocp_mxint8());
  if (const auto* h = std::get_if<OCP_MXFP4DiffsSpec>(&s)) return HelperToProto(*h, p->mutable_ocp_mxfp4_diffs());
  if (const auto* h = std::get_if<MX6Spec>(&s)) return HelperToProto(*h, p->mutable_mx6());
  if (const auto* h = std::get_if<MX9Spec>(&s)) return HelperToProto(*h, p->mutable_mx9());
  if (const auto* h = std::get_if<BFP16Spec>(&s)) return HelperToProto(*h, p->mutable_bfp16());
}

void ToProto(const ProgressiveSpec& s, v1::TensorQuantSpec* p) {
  ToProto(s.first_stage, p->mutable_progressive()->mutable_first_stage());
  ToProto(s.second_stage, p->mutable_progressive()->mutable_second_stage());
}

void ToProto(const ScaleQuantSpec& s, v1::TensorQuantSpec* p) {
  ToProto(s.first_stage, p->mutable_scale_quant()->mutable_first_stage());
  ToProto(s.second_stage, p->mutable_scale_quant()->mutable_second_stage());
}

absl::StatusOr<StageSpec> StageSpecFromProto(const v1::TensorQuantSpec& p, const std::string& path) {
  switch (p.spec_case()) {
    case v1::TensorQuantSpec::kQuantizationSpec: {
      QUARRY_ASSIGN_OR_RETURN(QuantizationSpec s, FromProto(p.quantization_spec(), path));
      return StageSpec(std::move(s));
    }
    case v1::TensorQuantSpec::kUint4PerTensor:
      return StageSpec(HelperFromProto(p.uint4_per_tensor()));
    case v1::TensorQuantSpec::kUint4PerChannel:
      return StageSpec(HelperFromProto(p.uint4_per_channel()));
    case v1::TensorQuantSpec::kUint4PerGroup:
      return StageSpec(HelperFromProto(p.uint4_per_group()));
    case v1::TensorQuantSpec::kInt3PerGroup:
      return StageSpec(HelperFromProto(p.int3_per_group()));
    case v1::TensorQuantSpec::kInt3PerChannel:
      return StageSpec(HelperFromProto(p.int3_per_channel()));
    case v1::TensorQuantSpec::kInt2PerGroup:
      return StageSpec(HelperFromProto(p.int2_per_group()));
    case v1::TensorQuantSpec::kInt4PerTensor:
      return StageSpec(HelperFromProto(p.int4_per_tensor()));
    case v1::TensorQuantSpec::kInt4PerChannel:
      return StageSpec(HelperFromProto(p.int4_per_channel()));
    case v1::TensorQuantSpec::kInt4PerGroup:
      return StageSpec(HelperFromProto(p.int4_per_group()));
    case v1::TensorQuantSpec::kUint8PerTensor:
      return StageSpec(HelperFromProto(p.uint8_per_tensor()));
    case v1::TensorQuantSpec::kUint8PerChannel:
      return StageSpec(HelperFromProto(p.uint8_per_channel()));
    case v1::TensorQuantSpec::kUint8PerGroup:
      return StageSpec(HelperFromProto(p.uint8_per_group()));
    case v1::TensorQuantSpec::kInt8PerTensor:
      return StageSpec(HelperFromProto(p.int8_per_tensor()));
    case v1::TensorQuantSpec::kInt8PerChannel:
      return StageSpec(HelperFromProto(p.int8_per_channel()));
    case v1::TensorQuantSpec::kInt8PerGroup:
      return StageSpec(HelperFromProto(p.int8_per_group()));
    case v1::TensorQuantSpec::kFp8E4M3PerTensor:
      return StageSpec(HelperFromProto(p.fp8_e4m3_per_tensor()));
    case v1::TensorQuantSpec::kFp8E4M3PerChannel:
      return StageSpec(HelperFromProto(p.fp8_e4m3_per_channel()));
    case v1::TensorQuantSpec::kFp8E4M3PerGroup:
      return StageSpec(HelperFromProto(p.fp8_e4m3_per_group()));
    case v1::TensorQuantSpec::kFp8E5M2PerTensor:
      return StageSpec(HelperFromProto(p.fp8_e5m2_per_tensor()));
    case v1::TensorQuantSpec::kFp8E5M2PerChannel:
      return StageSpec(HelperFromProto(p.fp8_e5m2_per_channel()));
    case v1::TensorQuantSpec::kFp8E5M2PerGroup:
      return StageSpec(HelperFromProto(p.fp8_e5m2_per_group()));
    case v1::TensorQuantSpec::kFp4PerGroup:
      return StageSpec(HelperFromProto(p.fp4_per_group()));
    case v1::TensorQuantSpec::kFp6E2M3PerGroup:
      return StageSpec(HelperFromProto(p.fp6_e2m3_per_group()));
    case v1::TensorQuantSpec::kFp6E3M2PerGroup:
      return StageSpec(HelperFromProto(p.fp6_e3m2_per_group()));
    case v1::TensorQuantSpec::kFloat16:
      return StageSpec(HelperFromProto(p.float16()));
    case v1::TensorQuantSpec::kBfloat16:
      return StageSpec(HelperFromProto(p.bfloat16()));
    case v1::TensorQuantSpec::kOcpMxfp8E4M3:
      return StageSpec(HelperFromProto(p.ocp_mxfp8_e4m3()));
    case v1::TensorQuantSpec::kOcpMxfp8E5M2:
      return StageSpec(HelperFromProto(p.ocp_mxfp8_e5m2()));
    case v1::TensorQuantSpec::kOcpMxfp6E3M2:
      return StageSpec(HelperFromProto(p.ocp_mxfp6_e3m2()));
    case v1::TensorQuantSpec::kOcpMxfp6E2M3:
      return StageSpec(HelperFromProto(p.ocp_mxfp6_e2m3()));
    case v1::TensorQuantSpec::kOcpMxfp4:
      return StageSpec(HelperFromProto(p.ocp_mxfp4()));
    case v1::TensorQuantSpec::kOcpMxint8:
      return StageSpec(HelperFromProto(p.ocp_mxint8()));
    case v1::TensorQuantSpec::kOcpMxfp4Diffs:
      return StageSpec(HelperFromProto(p.ocp_mxfp4_diffs()));
    case v1::TensorQuantSpec::kMx6:
      return StageSpec(HelperFromProto(p.mx6()));
    case v1::TensorQuantSpec::kMx9:
      return StageSpec(HelperFromProto(p.mx9()));
    case v1::TensorQuantSpec::kBfp16:
      return StageSpec(HelperFromProto(p.bfp16()));
    case v1::TensorQuantSpec::kProgressive:
    case v1::TensorQuantSpec::kScaleQuant:
    case v1::TensorQuantSpec::kTwoStage:
      return PathError(path, "a two-stage spec cannot be a stage of another two-stage spec");
    case v1::TensorQuantSpec::SPEC_NOT_SET:
      break;
  }
  return PathError(path, "no spec set");
}

absl::StatusOr<std::vector<QuantizationSpec>> ResolveSpec(const v1::TensorQuantSpec& p,
                                                          const std::string& path) {
  auto two = [&](const auto& msg, const char* kind) -> absl::StatusOr<std::vector<QuantizationSpec>> {
    QUARRY_ASSIGN_OR_RETURN(StageSpec first,
                            StageSpecFromProto(msg.first_stage(), absl::StrCat(path, ".", kind, ".first_stage")));
    QUARRY_ASSIGN_OR_RETURN(StageSpec second,
                            StageSpecFromProto(msg.second_stage(), absl::StrCat(path, ".", kind, ".second_stage")));
    absl::StatusOr<std::vector<QuantizationSpec>> r;
    if (p.spec_case() == v1::TensorQuantSpec::kScaleQuant)
      r = ScaleQuantSpec{first, second}.ToQuantizationSpec();
    else
      r = ProgressiveSpec{first, second}.ToQuantizationSpec();
    if (!r.ok()) return Annotate(r.status(), path);
    return r;
  };
  switch (p.spec_case()) {
    case v1::TensorQuantSpec::kProgressive: return two(p.progressive(), "progressive");
    case v1::TensorQuantSpec::kScaleQuant: return two(p.scale_quant(), "scale_quant");
    case v1::TensorQuantSpec::kTwoStage: return two(p.two_stage(), "two_stage");
    default: break;
  }
  QUARRY_ASSIGN_OR_RETURN(StageSpec stage, StageSpecFromProto(p, path));
  auto s = ToQuantizationSpec(stage);
  if (!s.ok()) return Annotate(s.status(), path);
  return std::vector<QuantizationSpec>{*std::move(s)};
}

namespace {
void SpecsToProto(const std::optional<TensorSpecs>& specs, v1::TensorSpecs* p) {
  for (const auto& s : specs->specs) *p->add_specs()->mutable_quantization_spec() = ToProto(s);
  p->set_is_list(specs->is_list);
}

absl::StatusOr<std::optional<TensorSpecs>> SpecsFromProto(bool has, const v1::TensorSpecs& p,
                                                          const std::string& path) {
  if (!has) return std::optional<TensorSpecs>();
  TensorSpecs out;
  out.is_list = p.is_list();
  for (int i = 0; i < p.specs_size(); ++i) {
    const std::string sub = p.specs_size() > 1 || p.is_list() ? absl::StrCat(path, "[", i, "]") : path;
    QUARRY_ASSIGN_OR_RETURN(auto specs, ResolveSpec(p.specs(i), sub));
    if (specs.size() > 1) out.is_list = true;
    for (auto& s : specs) out.specs.push_back(std::move(s));
  }
  if (out.specs.empty()) return PathError(path, "empty list of specs");
  return std::optional<TensorSpecs>(std::move(out));
}
}  // namespace

v1::QuantizationConfig ToProto(const QuantizationConfig& c) {
  v1::QuantizationConfig p;
  if (c.input_tensors) SpecsToProto(c.input_tensors, p.mutable_input_tensors());
  if (c.output_tensors) SpecsToProto(c.output_tensors, p.mutable_output_tensors());
  if (c.weight) SpecsToProto(c.weight, p.mutable_weight());
  if (c.bias) SpecsToProto(c.bias, p.mutable_bias());
  if (c.target_device) p.set_target_device(ToP(kDevices, *c.target_device));
  return p;
}

absl::StatusOr<QuantizationConfig> FromProto(const v1::QuantizationConfig& p,
                                             const std::string& path) {
  QuantizationConfig c;
  QUARRY_ASSIGN_OR_RETURN(c.input_tensors, SpecsFromProto(p.has_input_tensors(), p.input_tensors(),
                                                          path + ".input_tensors"));
  QUARRY_ASSIGN_OR_RETURN(c.output_tensors, SpecsFromProto(p.has_output_tensors(),
                                                           p.output_tensors(), path + ".output_tensors"));
  QUARRY_ASSIGN_OR_RETURN(c.weight, SpecsFromProto(p.has_weight(), p.weight(), path + ".weight"));
  QUARRY_ASSIGN_OR_RETURN(c.bias, SpecsFromProto(p.has_bias(), p.bias(), path + ".bias"));
  if (p.has_target_device()) {
    QUARRY_ASSIGN_OR_RETURN(c.target_device, FromP(kDevices, p.target_device(), path + ".target_device"));
  }
  return c;
}

v1::AlgoConfig ToProto(const AlgoConfig& algo) {
  v1::AlgoConfig p;
  std::visit(
      [&](const auto& a) {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, SmoothQuantConfig>) {
          auto* m = p.mutable_smooth();
          m->set_name(a.name);
          m->set_alpha(a.alpha);
          m->set_scale_clamp_min(a.scale_clamp_min);
          for (const auto& s : a.scaling_layers) *m->add_scaling_layers() = ScalingLayerToProto(s);
          m->set_model_decoder_layers(a.model_decoder_layers);
        } else if constexpr (std::is_same_v<T, AutoSmoothQuantConfig>) {
          auto* m = p.mutable_autosmoothquant();
          m->set_name(a.name);
          if (a.scaling_layers)
            for (const auto& s : *a.scaling_layers) *m->add_scaling_layers() = ScalingLayerToProto(s);
          if (a.model_decoder_layers) m->set_model_decoder_layers(*a.model_decoder_layers);
          if (a.compute_scale_loss) m->set_compute_scale_loss(*a.compute_scale_loss);
        } else if constexpr (std::is_same_v<T, AWQConfig>) {
          auto* m = p.mutable_awq();
          m->set_name(a.name);
          for (const auto& s : a.scaling_layers) *m->add_scaling_layers() = ScalingLayerToProto(s);
          m->set_model_decoder_layers(a.model_decoder_layers);
        } else if constexpr (std::is_same_v<T, GPTQConfig>) {
          auto* m = p.mutable_gptq();
          m->set_name(a.name);
          m->set_block_size(a.block_size);
          m->set_damp_percent(a.damp_percent);
          m->set_desc_act(a.desc_act);
          m->set_static_groups(a.static_groups);
          for (const auto& s : a.inside_layer_modules) m->add_inside_layer_modules(s);
          m->set_model_decoder_layers(a.model_decoder_layers);
        } else if constexpr (std::is_same_v<T, QronosConfig>) {
          auto* m = p.mutable_qronos();
          for (const auto& s : a.inside_layer_modules) m->add_inside_layer_modules(s);
          m->set_model_decoder_layers(a.model_decoder_layers);
          m->set_name(a.name);
          m->set_block_size(a.block_size);
          m->set_desc_act(a.desc_act);
          m->set_static_groups(a.static_groups);
          m->set_alpha(a.alpha);
          m->set_beta(a.beta);
        } else if constexpr (std::is_same_v<T, RotationConfig>) {
          auto* m = p.mutable_rotation();
          m->set_model_decoder_layers(a.model_decoder_layers);
          if (!a.scaling_layers_json.empty())
            (void)google::protobuf::util::JsonStringToMessage(a.scaling_layers_json,
                                                              m->mutable_scaling_layers());
          m->set_name(a.name);
          m->set_random(a.random);
        } else if constexpr (std::is_same_v<T, QuaRotConfig>) {
          auto* m = p.mutable_quarot();
          if (!a.scaling_layers_json.empty())
            (void)google::protobuf::util::JsonStringToMessage(a.scaling_layers_json,
                                                              m->mutable_scaling_layers());
          m->set_name(a.name);
          m->set_r1(a.r1);
          m->set_r2(a.r2);
          m->set_r3(a.r3);
          m->set_r4(a.r4);
          if (a.rotation_size) m->set_rotation_size(*a.rotation_size);
          m->set_random_r1(a.random_r1);
          m->set_random_r2(a.random_r2);
          if (a.optimized_rotation_path) m->set_optimized_rotation_path(*a.optimized_rotation_path);
          m->set_backbone(a.backbone);
          m->set_model_decoder_layers(a.model_decoder_layers);
          m->set_v_proj(a.v_proj);
          m->set_o_proj(a.o_proj);
          m->set_self_attn(a.self_attn);
          m->set_mlp(a.mlp);
        }
      },
      algo);
  return p;
}

absl::StatusOr<AlgoConfig> FromProto(const v1::AlgoConfig& p, const std::string& path) {
  auto layers = [&](const auto& repeated, const std::string& sub) -> absl::StatusOr<std::vector<ScalingLayer>> {
    std::vector<ScalingLayer> out;
    for (int i = 0; i < repeated.size(); ++i) {
      QUARRY_ASSIGN_OR_RETURN(auto s, ScalingLayerFromProto(repeated.Get(i), absl::StrCat(sub, "[", i, "]")));
      out.push_back(std::move(s));
    }
    return out;
  };
  switch (p.algo_case()) {
    case v1::AlgoConfig::kSmooth: {
      const auto& m = p.smooth();
      SmoothQuantConfig a;
      if (m.has_name()) a.name = m.name();
      if (m.has_alpha()) a.alpha = m.alpha();
      if (m.has_scale_clamp_min()) a.scale_clamp_min = m.scale_clamp_min();
      QUARRY_ASSIGN_OR_RETURN(a.scaling_layers, layers(m.scaling_layers(), path + ".smooth.scaling_layers"));
      if (m.has_model_decoder_layers()) a.model_decoder_layers = m.model_decoder_layers();
      return AlgoConfig(a);
    }
    case v1::AlgoConfig::kAutosmoothquant: {
      const auto& m = p.autosmoothquant();
      AutoSmoothQuantConfig a;
      if (m.has_name()) a.name = m.name();
      if (m.scaling_layers_size() > 0) {
        QUARRY_ASSIGN_OR_RETURN(auto l, layers(m.scaling_layers(), path + ".autosmoothquant.scaling_layers"));
        a.scaling_layers = std::move(l);
      }
      if (m.has_model_decoder_layers()) a.model_decoder_layers = m.model_decoder_layers();
      if (m.has_compute_scale_loss()) a.compute_scale_loss = m.compute_scale_loss();
      return AlgoConfig(a);
    }
    case v1::AlgoConfig::kAwq: {
      const auto& m = p.awq();
      AWQConfig a;
      if (m.has_name()) a.name = m.name();
      QUARRY_ASSIGN_OR_RETURN(a.scaling_layers, layers(m.scaling_layers(), path + ".awq.scaling_layers"));
      if (m.has_model_decoder_layers()) a.model_decoder_layers = m.model_decoder_layers();
      return AlgoConfig(a);
    }
    case v1::AlgoConfig::kGptq: {
      const auto& m = p.gptq();
      GPTQConfig a;
      if (m.has_name()) a.name = m.name();
      if (m.has_block_size()) a.block_size = m.block_size();
      if (m.has_damp_percent()) a.damp_percent = m.damp_percent();
      if (m.has_desc_act()) a.desc_act = m.desc_act();
      if (m.has_static_groups()) a.static_groups = m.static_groups();
      a.inside_layer_modules.assign(m.inside_layer_modules().begin(), m.inside_layer_modules().end());
      if (m.has_model_decoder_layers()) a.model_decoder_layers = m.model_decoder_layers();
      return AlgoConfig(a);
    }
    case v1::AlgoConfig::kQronos: {
      const auto& m = p.qronos();
      QronosConfig a;
      a.inside_layer_modules.assign(m.inside_layer_modules().begin(), m.inside_layer_modules().end());
      if (m.has_model_decoder_layers()) a.model_decoder_layers = m.model_decoder_layers();
      if (m.has_name()) a.name = m.name();
      if (m.has_block_size()) a.block_size = m.block_size();
      if (m.has_desc_act()) a.desc_act = m.desc_act();
      if (m.has_static_groups()) a.static_groups = m.static_groups();
      if (m.has_alpha()) a.alpha = m.alpha();
      if (m.has_beta()) a.beta = m.beta();
      return AlgoConfig(a);
    }
    case v1::AlgoConfig::kRotation: {
      const auto& m = p.rotation();
      RotationConfig a;
      if (m.has_model_decoder_layers()) a.model_decoder_layers = m.model_decoder_layers();
      if (m.has_scaling_layers()) a.scaling_layers_json = StructToJson(m.scaling_layers());
      if (m.has_name()) a.name = m.name();
      if (m.has_random()) a.random = m.random();
      return AlgoConfig(a);
    }
    case v1::AlgoConfig::kQuarot: {
      const auto& m = p.quarot();
      QuaRotConfig a;
      if (m.has_scaling_layers()) a.scaling_layers_json = StructToJson(m.scaling_layers());
      if (m.has_name()) a.name = m.name();
      if (m.has_r1()) a.r1 = m.r1();
      if (m.has_r2()) a.r2 = m.r2();
      if (m.has_r3()) a.r3 = m.r3();
      if (m.has_r4()) a.r4 = m.r4();
      if (m.has_rotation_size()) a.rotation_size = m.rotation_size();
      if (m.has_random_r1()) a.random_r1 = m.random_r1();
      if (m.has_random_r2()) a.random_r2 = m.random_r2();
      if (m.has_optimized_rotation_path()) a.optimized_rotation_path = m.optimized_rotation_path();
      if (m.has_backbone()) a.backbone = m.backbone();
      if (m.has_model_decoder_layers()) a.model_decoder_layers = m.model_decoder_layers();
      if (m.has_v_proj()) a.v_proj = m.v_proj();
      if (m.has_o_proj()) a.o_proj = m.o_proj();
      if (m.has_self_attn()) a.self_attn = m.self_attn();
      if (m.has_mlp()) a.mlp = m.mlp();
      return AlgoConfig(a);
    }
    case v1::AlgoConfig::kTqt:
      return PathError(path + ".tqt", "TQT trains quantization thresholds (QAT); Quarry runs "
                                      "post-training quantization only");
    case v1::AlgoConfig::ALGO_NOT_SET:
      break;
  }
  return PathError(path, "no algorithm set");
}

v1::Config ToProto(const Config& c) {
  v1::Config p;
  *p.mutable_global_quant_config() = ToProto(c.global_quant_config);
  auto named = [](const NamedConfigs& in, auto* out) {
    for (const auto& [name, qc] : in) {
      auto* e = out->Add();
      e->set_name(name);
      *e->mutable_config() = ToProto(qc);
    }
  };
  named(c.layer_type_quant_config, p.mutable_layer_type_quant_config());
  named(c.layer_quant_config, p.mutable_layer_quant_config());
  named(c.kv_cache_quant_config, p.mutable_kv_cache_quant_config());
  for (const auto& g : c.kv_cache_group) p.add_kv_cache_group(g);
  p.set_min_kv_scale(c.min_kv_scale);
  if (c.softmax_quant_spec)
    *p.mutable_softmax_quant_spec()->mutable_quantization_spec() = ToProto(*c.softmax_quant_spec);
  for (const auto& e : c.exclude) p.add_exclude(e);
  if (c.algo_config)
    for (const auto& a : *c.algo_config) *p.add_algo_config() = ToProto(a);
  p.set_quant_mode(c.quant_mode == QuantizationMode::kFxGraphMode ? v1::QUANT_MODE_FX_GRAPH
                                                                   : v1::QUANT_MODE_EAGER);
  if (c.log_severity_level) p.set_log_severity_level(*c.log_severity_level);
  if (c.version) p.set_version(*c.version);
  return p;
}

absl::StatusOr<Config> FromProto(const v1::Config& p) {
  Config c;
  if (!p.has_global_quant_config())
    return PathError("global_quant_config", "required (may be empty: nothing quantized)");
  QUARRY_ASSIGN_OR_RETURN(c.global_quant_config,
                          FromProto(p.global_quant_config(), "global_quant_config"));
  auto named = [](const auto& in, const char* field, NamedConfigs* out) -> absl::Status {
    for (const auto& e : in) {
      QUARRY_ASSIGN_OR_RETURN(auto qc, FromProto(e.config(), absl::StrCat(field, "[\"", e.name(), "\"]")));
      out->emplace_back(e.name(), std::move(qc));
    }
    return absl::OkStatus();
  };
  QUARRY_RETURN_IF_ERROR(named(p.layer_type_quant_config(), "layer_type_quant_config",
                               &c.layer_type_quant_config));
  QUARRY_RETURN_IF_ERROR(named(p.layer_quant_config(), "layer_quant_config", &c.layer_quant_config));
  QUARRY_RETURN_IF_ERROR(named(p.kv_cache_quant_config(), "kv_cache_quant_config",
                               &c.kv_cache_quant_config));
  c.kv_cache_group.assign(p.kv_cache_group().begin(), p.kv_cache_group().end());
  c.min_kv_scale = p.min_kv_scale();
  if (p.has_softmax_quant_spec()) {
    QUARRY_ASSIGN_OR_RETURN(auto specs, ResolveSpec(p.softmax_quant_spec(), "softmax_quant_spec"));
    if (specs.size() != 1)
      return PathError("softmax_quant_spec", "must be a single spec, not a two-stage spec");
    c.softmax_quant_spec = specs[0];
  }
  c.exclude.assign(p.exclude().begin(), p.exclude().end());
  if (p.algo_config_size() > 0) {
    std::vector<AlgoConfig> algos;
    for (int i = 0; i < p.algo_config_size(); ++i) {
      QUARRY_ASSIGN_OR_RETURN(auto a, FromProto(p.algo_config(i), absl::StrCat("algo_config[", i, "]")));
      algos.push_back(std::move(a));
    }
    c.algo_config = std::move(algos);
  }
  c.quant_mode = p.quant_mode() == v1::QUANT_MODE_FX_GRAPH ? QuantizationMode::kFxGraphMode
                                                          : QuantizationMode::kEagerMode;
  if (p.has_log_severity_level()) c.log_severity_level = p.log_severity_level();
  if (p.has_version()) c.version = p.version();
  return c;
}

}  // namespace quarry::convert
