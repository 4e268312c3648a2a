// Added (special) tokens: strings matched in the raw text before any other processing and
// never split, as Hugging Face's AddedVocabulary (tokenizer.json) and transformers' slow
// tokenizers (tokenizer_config.json's added_tokens_decoder) do. Immutable; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace quarry::tokenizer_internal {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;  // only match when not inside a word
  bool lstrip = false;       // swallow whitespace on the left
  bool rstrip = false;       // swallow whitespace on the right
  bool normalized = false;
  bool special = false;
};

class AddedTokenMatcher {
 public:
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);

  // A piece of the text: [begin, end) bytes, and the token it is (index into tokens()), or -1
  // for ordinary text.
  struct Segment {
    size_t begin = 0;
    size_t end = 0;
    int token = -1;
  };
  // Splits `text` on leftmost-longest matches of the tokens (aho-corasick LeftmostLongest, as
  // AddedVocabulary::split_with_indices), honouring single_word, lstrip and rstrip.
  std::vector<Segment> Split(std::string_view text) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  bool empty() const { return tokens_.empty(); }

 private:
  std::vector<AddedToken> tokens_;
  // First byte -> token indices starting with it, longest first.
  std::vector<std::vector<int>> by_first_byte_ = std::vector<std::vector<int>>(256);
};

}  // namespace quarry::tokenizer_internal
