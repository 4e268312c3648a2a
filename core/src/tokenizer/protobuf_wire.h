// A minimal reader of the protocol buffers wire format
// (https://protobuf.dev/programming-guides/encoding/): enough to parse SentencePiece's
// ModelProto without a protobuf library. Every read is bounds-checked; malformed input gives an
// error naming the byte offset, never a crash. Not thread-safe (a reader is a cursor).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace quarry::tokenizer_internal {

enum class WireType : uint8_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,  // deprecated groups: rejected
  kEndGroup = 4,
  kFixed32 = 5,
};

struct WireField {
  uint32_t number = 0;
  WireType type = WireType::kVarint;
  uint64_t varint = 0;         // kVarint
  uint64_t fixed = 0;          // kFixed32 (low 32 bits) / kFixed64
  std::string_view bytes;      // kLengthDelimited: the payload
  size_t offset = 0;           // absolute offset of the field's tag in the whole buffer
  size_t payload_offset = 0;   // absolute offset of the payload

  int32_t AsInt32() const { return static_cast<int32_t>(static_cast<int64_t>(varint)); }
  bool AsBool() const { return varint != 0; }
  float AsFloat() const;
};

class WireReader {
 public:
  // `base_offset` is the absolute offset of `data` in the file, used in error messages.
  explicit WireReader(std::string_view data, size_t base_offset = 0)
      : data_(data), base_(base_offset) {}

  bool done() const { return pos_ >= data_.size(); }

  // Reads the next field; InvalidArgument (with the byte offset) on malformed input.
  absl::Status Next(WireField* field);

 private:
  absl::Status ReadVarint(uint64_t* v, const char* what);

  std::string_view data_;
  size_t base_ = 0;
  size_t pos_ = 0;
};

const char* WireTypeName(WireType type);

}  // namespace quarry::tokenizer_internal
