// Test-side GGUF v3 reader and ggml block decoders, written from the specifications alone so the
// tests check Quarry's GGUF writer against something other than itself: the container from the
// GGUF spec (ggml docs/gguf.md) plus the one rule llama.cpp's loader adds (gguf.cpp: tensor data
// packed in index order, each tensor padded to the alignment), the blocks from ggml-common.h's
// layouts and ggml-quants.c's dequantize_row_* semantics. Nothing here includes or mirrors
// core/src/export/gguf_*. Pure functions and plain values; thread-compatible.
//
// File layout (little-endian):
//   u32 magic "GGUF" (bytes 47 47 55 46) | u32 version (3) | u64 tensor_count | u64 kv_count
//   kv_count x { string key | u32 value_type | value }
//   tensor_count x { string name (<= 64 bytes) | u32 n_dims (1..4) | u64 ne[n_dims] | u32 type |
//                    u64 offset (relative to the data section, a multiple of ALIGNMENT) }
//   zero padding to ALIGNMENT | data section
// string = u64 length + bytes (no terminator); array = u32 element type + u64 count + elements;
// ALIGNMENT = general.alignment (u32, a multiple of 8) or 32 when absent.
//
// Blocks (32 elements along ne[0]; 4-bit types: byte j holds element j in its low nibble and
// element j + 16 in its high nibble):
//   Q8_0  (8)  34 bytes: f16 d, i8 q[32]            x = q * d
//   Q4_0  (2)  18 bytes: f16 d, u8 qs[16]           x = (q - 8) * d
//   Q4_1  (3)  20 bytes: f16 d, f16 m, u8 qs[16]    x = q * d + m      (two float roundings)
//   MXFP4 (39) 17 bytes: u8 e, u8 qs[16]            x = kv[q] * 2^(e - 128) (e < 2: 2^-128, 2^-127
//              as float32 subnormals), kv = {0,1,2,3,4,6,8,12,0,-1,-2,-3,-4,-6,-8,-12}
//   F32 (0) 4 bytes, F16 (1) 2 bytes (IEEE half), BF16 (30) 2 bytes (top half of a float32).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace quarry::gguf_spec {

// gguf_metadata_value_type.
enum ValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};
const char* ValueTypeName(uint32_t t);

// One metadata value. Scalars fill the field of their kind (integers: `i` for signed types and
// `u` for unsigned ones, both set when the value fits); arrays set elem_type and elems.
struct Value {
  uint32_t type = 0;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string s;
  uint32_t elem_type = 0;
  std::vector<Value> elems;

  bool is_integer() const;
};

struct TensorInfo {
  std::string name;
  std::vector<uint64_t> ne;  // ggml order: ne[0] is the innermost (row) dimension
  uint32_t type = 0;         // ggml_type id
  uint64_t offset = 0;       // relative to the data section
  uint64_t bytes = 0;        // size of its data (from ne and the type's block)
  uint64_t record_at = 0;    // file offset of its tensor-info record
};

struct File {
  uint32_t version = 0;
  uint64_t tensor_count = 0;
  uint64_t kv_count = 0;
  std::vector<std::string> keys;        // in file order
  std::map<std::string, Value> kv;
  std::vector<TensorInfo> tensors;      // in file order
  uint64_t alignment = 32;
  uint64_t data_start = 0;              // file offset of the data section
  uint64_t data_end = 0;                // data_start + the last tensor's end
  std::string bytes;                    // the whole file

  const Value* Find(const std::string& key) const;
  const TensorInfo* FindTensor(const std::string& name) const;
  // The tensor's data bytes.
  const uint8_t* Data(const TensorInfo& t) const {
    return reinterpret_cast<const uint8_t*>(bytes.data()) + data_start + t.offset;
  }
};

// Parses a GGUF v3 file. Every violation of the spec (magic, version, truncation, unknown value
// or tensor type, bool not 0/1, duplicate key or tensor name, name over 64 bytes, n_dims outside
// 1..4, ne[0] not a whole number of blocks, misaligned or out-of-file data, offsets not in
// llama.cpp's packed order) is INVALID_ARGUMENT naming the byte offset and the key or tensor.
absl::StatusOr<File> Parse(std::string bytes);
absl::StatusOr<File> ReadFile(const std::string& path);

// Elements per block and bytes per block of a ggml type this reader knows (F32, F16, Q4_0,
// Q4_1, Q8_0, BF16, MXFP4); false for any other id.
bool TypeLayout(uint32_t type, uint64_t* block_elements, uint64_t* block_bytes);

// IEEE binary16 / bfloat16 bits to float (exact).
float HalfToFloat(uint16_t h);
float Bf16ToFloat(uint16_t h);

// The float32 values of n elements of `type` data (n a multiple of the block). INVALID_ARGUMENT
// when `bytes` is not the size n elements take.
absl::StatusOr<std::vector<float>> Decode(uint32_t type, const uint8_t* data, uint64_t bytes,
                                          uint64_t n);

}  // namespace quarry::gguf_spec
