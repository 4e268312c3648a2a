// A re-implementation of SentencePiece 0.1.97's encoder and decoder (normalizer with
// precompiled charsmaps and user-defined symbols, BPE, unigram Viterbi, char models, byte
// fallback), written from its documented behaviour so that core need not link libsentencepiece
// (whose static copy of protobuf crashes a process that also loads LibTorch's). Tests compare
// it id for id with the real library (tests/tokenizer, tests/tools/spm_reference.cc).
// Immutable after Create(); Encode/Decode are const and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tokenizer/sentencepiece_model.h"

namespace quarry::tokenizer_internal {

// Hash/equality that let unordered_map<std::string, V> be searched with a string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};
using PieceMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Byte-wise trie over piece strings (the role of SentencePiece's darts double array).
class PieceTrie {
 public:
  void Insert(std::string_view key, int32_t value);
  // Calls fn(length, value) for every key that is a prefix of `text`, shortest first.
  template <typename Fn>
  void ForEachPrefix(std::string_view text, Fn&& fn) const;
  bool empty() const { return nodes_.size() <= 1; }

 private:
  struct Node {
    int32_t value = -1;
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
  };
  int32_t Child(int32_t node, uint8_t byte) const;
  std::vector<Node> nodes_ = std::vector<Node>(1);
};

// The "precompiled charsmap" of a NormalizerSpec: a darts-clone double-array trie mapping
// UTF-8 prefixes to NUL-terminated replacement strings. Lookups are bounds-checked.
class CharsMap {
 public:
  static absl::StatusOr<CharsMap> Parse(std::string_view blob);
  // Longest rule matching a prefix of `input`: returns its length (0 if none) and sets
  // *replacement.
  size_t LongestPrefix(std::string_view input, std::string_view* replacement) const;

 private:
  std::vector<uint32_t> units_;
  std::string normalized_;
};

// SentencePiece's Normalizer: charsmap rules, whitespace handling, U+2581 escaping.
class SpNormalizer {
 public:
  // `user_defined` (may be null) holds symbols copied verbatim; it must outlive this object.
  static absl::StatusOr<SpNormalizer> Create(const SpNormalizerSpec& spec,
                                             bool treat_whitespace_as_suffix,
                                             const PieceTrie* user_defined);
  std::string Normalize(std::string_view input, std::vector<size_t>* norm_to_orig,
                        bool add_dummy_prefix) const;

 private:
  std::pair<std::string_view, size_t> NormalizePrefix(std::string_view input) const;

  SpNormalizerSpec spec_;
  bool treat_whitespace_as_suffix_ = false;
  std::shared_ptr<const CharsMap> charsmap_;
  const PieceTrie* user_defined_ = nullptr;
};

class SpProcessor {
 public:
  static absl::StatusOr<std::unique_ptr<SpProcessor>> Create(SpModelProto model,
                                                            std::string source);

  // sp.EncodeAsIds(text). With add_dummy_prefix=false the normalizer's dummy prefix is not
  // added (what transformers does for LlamaTokenizer(legacy=False)).
  std::vector<int32_t> Encode(std::string_view text, bool add_dummy_prefix = true) const;
  // sp.DecodeIds(ids); OutOfRange for an id outside [0, piece_size()) that `extra` (optional:
  // added tokens beyond the model, id -> text) does not name. Extra tokens read as their text.
  absl::StatusOr<std::string> Decode(
      absl::Span<const int32_t> ids,
      const std::unordered_map<int32_t, std::string>* extra = nullptr) const;

  // The normalized text and, per normalized byte (plus one), the original offset.
  std::string Normalize(std::string_view text, std::vector<size_t>* norm_to_orig,
                        bool add_dummy_prefix = true) const;

  int32_t piece_size() const { return static_cast<int32_t>(model_.pieces.size()); }
  const SpModelProto& model() const { return model_; }
  const std::string& IdToPiece(int32_t id) const { return model_.pieces[id].piece; }
  int32_t PieceToId(std::string_view piece) const;  // unk_id when absent
  int32_t FindPiece(std::string_view piece) const;  // -1 when absent
  SpPiece::Type type(int32_t id) const { return model_.pieces[id].type; }
  int32_t unk_id() const { return unk_id_; }
  const std::string& source() const { return source_; }

 private:
  SpProcessor() = default;
  using EncodeResult = std::vector<std::pair<std::string_view, int32_t>>;

  // Length of the user-defined symbol at the start of `text` (longest), or the length of one
  // UTF-8 character; *found tells which.
  size_t PrefixMatch(std::string_view text, bool* found) const;

  EncodeResult EncodeBpe(std::string_view normalized) const;
  EncodeResult EncodeUnigram(std::string_view normalized) const;
  EncodeResult EncodeChar(std::string_view normalized) const;

  SpModelProto model_;
  std::string source_;
  PieceMap pieces_;       // NORMAL, USER_DEFINED, UNUSED
  PieceMap reserved_;     // CONTROL, UNKNOWN, BYTE
  std::unique_ptr<PieceTrie> user_defined_;  // heap-allocated: the normalizers point to it
  PieceTrie unigram_trie_;  // pieces_ (unigram only)
  std::unique_ptr<SpNormalizer> normalizer_;
  std::unique_ptr<SpNormalizer> denormalizer_;  // only when the model has denormalizer rules
  int32_t unk_id_ = -1;
  int32_t byte_ids_[256] = {};
  float min_score_ = 0.0f;
  float max_score_ = 0.0f;
};

}  // namespace quarry::tokenizer_internal
