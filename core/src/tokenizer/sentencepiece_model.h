// SentencePiece's ModelProto (src/sentencepiece_model.proto), the content of tokenizer.model,
// parsed with the hand-written wire-format reader: only the fields encoding and decoding use.
// Defaults are the proto's. Plain data; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace quarry::tokenizer_internal {

struct SpPiece {
  enum Type : int32_t {
    kNormal = 1,
    kUnknown = 2,
    kControl = 3,
    kUserDefined = 4,
    kUnused = 5,
    kByte = 6,
  };
  std::string piece;    // field 1; never empty in a valid model
  float score = 0.0f;   // field 2
  Type type = kNormal;  // field 3
};

struct SpTrainerSpec {
  enum ModelType : int32_t { kUnigram = 1, kBpe = 2, kWord = 3, kChar = 4 };
  ModelType model_type = kUnigram;          // 3
  int32_t vocab_size = 8000;                // 4
  bool split_by_unicode_script = true;      // 21
  bool split_by_whitespace = true;          // 22
  bool split_by_number = true;              // 23
  bool treat_whitespace_as_suffix = false;  // 24
  bool split_digits = false;                // 25
  bool allow_whitespace_only_pieces = false;  // 26
  bool byte_fallback = false;               // 35
  int32_t unk_id = 0;                       // 40
  int32_t bos_id = 1;                       // 41
  int32_t eos_id = 2;                       // 42
  int32_t pad_id = -1;                      // 43
  std::string unk_surface = " \xE2\x81\x87 ";  // 44
  std::string unk_piece = "<unk>";          // 45
  std::string bos_piece = "<s>";            // 46
  std::string eos_piece = "</s>";           // 47
  std::string pad_piece = "<pad>";          // 48
};

struct SpNormalizerSpec {
  std::string name;                      // 1
  std::string precompiled_charsmap;      // 2
  bool add_dummy_prefix = true;          // 3
  bool remove_extra_whitespaces = true;  // 4
  bool escape_whitespaces = true;        // 5
};

struct SpModelProto {
  std::vector<SpPiece> pieces;      // 1
  SpTrainerSpec trainer_spec;       // 2
  SpNormalizerSpec normalizer_spec;  // 3
  bool has_denormalizer = false;    // 5 present
  SpNormalizerSpec denormalizer_spec;
};

// Parses a serialized ModelProto. Errors name `source` (the file) and the byte offset. Unknown
// fields are skipped, as protobuf does; a known field with the wrong wire type is an error.
absl::StatusOr<SpModelProto> ParseSpModelProto(std::string_view bytes, std::string_view source);

}  // namespace quarry::tokenizer_internal
