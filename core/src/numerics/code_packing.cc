#include "numerics/code_packing.h"

#include <vector>

#include "absl/strings/str_cat.h"

namespace quarry::numerics {
namespace {

// Codes per storage group and bytes (or words) per group along the last dimension.
struct Grouping {
  int64_t codes;  // codes per group
  int64_t units;  // storage elements per group
};
Grouping GroupingOf(CodeStorage storage) {
  switch (storage) {
    case CodeStorage::kInt4: return {packing::kInt4PerWord, 1};
    case CodeStorage::kInt3: return {packing::kInt3PerGroup, 3};
    case CodeStorage::kInt2: return {packing::kInt2PerByte, 1};
    case CodeStorage::kFp4: return {2, 1};
    case CodeStorage::kFp6: return {4, 3};
    default: return {1, 1};
  }
}

at::ScalarType StorageType(CodeStorage storage) {
  switch (storage) {
    case CodeStorage::kInt4: return at::kInt;
    case CodeStorage::kInt8: return at::kChar;
    case CodeStorage::kInt16: return at::kShort;
    case CodeStorage::kInt32: return at::kInt;
    default: return at::kByte;
  }
}

}  // namespace

at::Tensor PackCodes(const at::Tensor& codes_in, CodeStorage storage, PackOrder order) {
  const at::Tensor codes = codes_in.to(at::kInt).contiguous();
  const int64_t n = codes.size(-1);
  const int64_t rows = n == 0 ? 0 : codes.numel() / n;
  const Grouping g = GroupingOf(storage);
  const int64_t groups = (n + g.codes - 1) / g.codes;
  std::vector<int64_t> shape = codes.sizes().vec();
  shape.back() = groups * g.units;
  at::Tensor out = at::zeros(shape, StorageType(storage));
  const int32_t* c = codes.data_ptr<int32_t>();
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* row = c + r * n;
    for (int64_t k = 0; k < groups; ++k) {
      int32_t group[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // padding codes are 0
      for (int64_t j = 0; j < g.codes && k * g.codes + j < n; ++j) group[j] = row[k * g.codes + j];
      const int64_t at_unit = r * groups * g.units + k * g.units;
      switch (storage) {
        case CodeStorage::kInt4:
          out.data_ptr<int32_t>()[at_unit] =
              static_cast<int32_t>(packing::PackInt4Word(group, order));
          break;
        case CodeStorage::kInt3: {
          const uint32_t bits = packing::PackInt3Group(group);
          uint8_t* b = out.data_ptr<uint8_t>() + at_unit;
          b[0] = bits & 0xFF;
          b[1] = (bits >> 8) & 0xFF;
          b[2] = (bits >> 16) & 0xFF;
          break;
        }
        case CodeStorage::kInt2:
          out.data_ptr<uint8_t>()[at_unit] = packing::PackInt2Byte(group);
          break;
        case CodeStorage::kFp4:
          out.data_ptr<uint8_t>()[at_unit] = packing::PackFp4Byte(static_cast<uint8_t>(group[0]),
                                                                  static_cast<uint8_t>(group[1]));
          break;
        case CodeStorage::kFp6: {
          const uint8_t four[4] = {static_cast<uint8_t>(group[0]), static_cast<uint8_t>(group[1]),
                                   static_cast<uint8_t>(group[2]), static_cast<uint8_t>(group[3])};
          const uint32_t bits = packing::PackFp6Group(four);
          uint8_t* b = out.data_ptr<uint8_t>() + at_unit;
          b[0] = bits & 0xFF;
          b[1] = (bits >> 8) & 0xFF;
          b[2] = (bits >> 16) & 0xFF;
          break;
        }
        case CodeStorage::kInt8: out.data_ptr<int8_t>()[at_unit] = static_cast<int8_t>(group[0]); break;
        case CodeStorage::kUint8: out.data_ptr<uint8_t>()[at_unit] = static_cast<uint8_t>(group[0]); break;
        case CodeStorage::kInt16: out.data_ptr<int16_t>()[at_unit] = static_cast<int16_t>(group[0]); break;
        case CodeStorage::kInt32: out.data_ptr<int32_t>()[at_unit] = group[0]; break;
      }
    }
  }
  return out;
}

absl::StatusOr<at::Tensor> UnpackCodes(const at::Tensor& packed_in, CodeStorage storage,
                                       int64_t last_dim, PackOrder order, bool is_signed) {
  const Grouping g = GroupingOf(storage);
  const int64_t groups = (last_dim + g.codes - 1) / g.codes;
  if (!packed_in.defined() || packed_in.dim() == 0 || packed_in.scalar_type() != StorageType(storage) ||
      packed_in.size(-1) != groups * g.units) {
    return absl::InvalidArgumentError(absl::StrCat(
        "packed data does not match its layout: expected dtype ",
        std::string(c10::toString(StorageType(storage))), " with last dimension ",
        groups * g.units, " for ", last_dim, " codes"));
  }
  const at::Tensor packed = packed_in.contiguous();
  std::vector<int64_t> shape = packed.sizes().vec();
  shape.back() = last_dim;
  at::Tensor codes = at::empty(shape, at::kInt);
  const int64_t rows = packed.size(-1) == 0 ? 0 : packed.numel() / packed.size(-1);
  int32_t* c = codes.data_ptr<int32_t>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < last_dim; ++j) {
      const int64_t k = j / g.codes, e = j % g.codes;
      const int64_t at_unit = r * groups * g.units + k * g.units;
      int32_t v = 0;
      switch (storage) {
        case CodeStorage::kInt4:
          v = packing::UnpackInt4(static_cast<uint32_t>(packed.data_ptr<int32_t>()[at_unit]),
                                  static_cast<int>(e), order, is_signed);
          break;
        case CodeStorage::kInt3:
        case CodeStorage::kFp6: {
          const uint8_t* b = packed.data_ptr<uint8_t>() + at_unit;
          const uint32_t bits = b[0] | (b[1] << 8) | (b[2] << 16);
          v = storage == CodeStorage::kInt3 ? packing::UnpackInt3(bits, static_cast<int>(e))
                                            : packing::UnpackFp6(bits, static_cast<int>(e));
          break;
        }
        case CodeStorage::kInt2:
          v = packing::UnpackInt2(packed.data_ptr<uint8_t>()[at_unit], static_cast<int>(e));
          break;
        case CodeStorage::kFp4:
          v = packing::UnpackFp4(packed.data_ptr<uint8_t>()[at_unit], static_cast<int>(e));
          break;
        case CodeStorage::kInt8: v = packed.data_ptr<int8_t>()[at_unit]; break;
        case CodeStorage::kUint8: v = packed.data_ptr<uint8_t>()[at_unit]; break;
        case CodeStorage::kInt16: v = packed.data_ptr<int16_t>()[at_unit]; break;
        case CodeStorage::kInt32: v = packed.data_ptr<int32_t>()[at_unit]; break;
      }
      c[r * last_dim + j] = v;
    }
  }
  return codes;
}

}  // namespace quarry::numerics
