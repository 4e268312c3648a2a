#include "tokenizer/protobuf_wire.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace quarry::tokenizer_internal {

float WireField::AsFloat() const {
  const uint32_t bits = static_cast<uint32_t>(fixed);
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

const char* WireTypeName(WireType type) {
  switch (type) {
    case WireType::kVarint: return "varint";
    case WireType::kFixed64: return "fixed64";
    case WireType::kLengthDelimited: return "length-delimited";
    case WireType::kStartGroup: return "start-group";
    case WireType::kEndGroup: return "end-group";
    case WireType::kFixed32: return "fixed32";
  }
  return "unknown";
}

absl::Status WireReader::ReadVarint(uint64_t* v, const char* what) {
  const size_t start = pos_;
  uint64_t result = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos_ >= data_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("truncated ", what, " varint at byte ",
                                                     base_ + start));
    }
    const uint8_t b = static_cast<uint8_t>(data_[pos_++]);
    result |= static_cast<uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) {
      *v = result;
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, " varint longer than 10 bytes at byte ", base_ + start));
}

absl::Status WireReader::Next(WireField* field) {
  *field = WireField();
  field->offset = base_ + pos_;
  uint64_t tag = 0;
  if (absl::Status s = ReadVarint(&tag, "tag"); !s.ok()) return s;
  const uint64_t number = tag >> 3;
  const uint32_t type = static_cast<uint32_t>(tag & 7);
  if (number == 0 || number > 0x1FFFFFFF) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid field number ", number, " at byte ", field->offset));
  }
  field->number = static_cast<uint32_t>(number);
  field->type = static_cast<WireType>(type);
  field->payload_offset = base_ + pos_;
  switch (type) {
    case 0:
      return ReadVarint(&field->varint, "field");
    case 1:
    case 5: {
      const size_t width = type == 1 ? 8 : 4;
      if (data_.size() - pos_ < width) {
        return absl::InvalidArgumentError(absl::StrCat(
            "truncated ", WireTypeName(field->type), " field ", number, " at byte ", field->offset));
      }
      uint64_t v = 0;
      for (size_t i = 0; i < width; ++i) {
        v |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
      }
      pos_ += width;
      field->fixed = v;
      return absl::OkStatus();
    }
    case 2: {
      uint64_t length = 0;
      if (absl::Status s = ReadVarint(&length, "length"); !s.ok()) return s;
      field->payload_offset = base_ + pos_;
      if (length > data_.size() - pos_) {
        return absl::InvalidArgumentError(absl::StrCat(
            "field ", number, " at byte ", field->offset, " declares ", length,
            " bytes but only ", data_.size() - pos_, " remain (truncated or corrupt)"));
      }
      field->bytes = data_.substr(pos_, length);
      pos_ += length;
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("unsupported wire type ", type,
                                                     " (field ", number, ") at byte ",
                                                     field->offset));
  }
}

}  // namespace quarry::tokenizer_internal
