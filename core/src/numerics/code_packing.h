// Applies the layouts of quarry/packing.h to whole tensors: int32 element codes of logical shape
// [..., n] <-> packed storage (packing along the last dimension). Stateless; thread-safe.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "quarry/packing.h"
#include "quarry/quant_types.h"

namespace quarry::numerics {

// How codes of one element kind are stored.
enum class CodeStorage {
  kInt4,    // int4 / uint4: 8 per int32 word (PackOrder)
  kInt3,    // 8 per 3 bytes
  kInt2,    // 4 per byte
  kInt8,    // int8 tensor
  kUint8,   // uint8 tensor (uint8 codes, fp8 bit codes)
  kInt16,   // int16 tensor (int16, uint16 bits, mx9)
  kInt32,   // int32 tensor
  kFp4,     // 2 per byte
  kFp6,     // 4 per 3 bytes
};

// codes: int32 tensor, at least 1-D, packed along its last dimension. Signed sub-byte codes are
// masked to their field (two's complement).
at::Tensor PackCodes(const at::Tensor& codes, CodeStorage storage, PackOrder order);
// The inverse: int32 codes with `last_dim` elements along the last dimension. `is_signed`
// sign-extends int4 codes (int3 and int2 codes are always signed; fp codes never).
absl::StatusOr<at::Tensor> UnpackCodes(const at::Tensor& packed, CodeStorage storage,
                                       int64_t last_dim, PackOrder order, bool is_signed);

}  // namespace quarry::numerics
