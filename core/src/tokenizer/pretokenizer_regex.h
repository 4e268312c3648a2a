// A small backtracking regular-expression engine for pre-tokenizer patterns (GPT-2, Llama 3,
// Qwen2, cl100k/o200k style), with Oniguruma's semantics on Unicode code points: leftmost-first
// alternation, greedy/lazy/possessive quantifiers, \p{..} general categories, \s = White_Space,
// (?i:...), lookahead. std::regex cannot do \p{L}, and these patterns need nothing more.
//
// Supported: literals and escapes (\r \n \t \f \v \xHH \x{H..} and escaped punctuation),
// '.', classes [...] with ranges, negation and the escapes \s \S \d \D \w \W \p{X} \P{X} (X a
// general category or one-letter class, e.g. L, Lu, N, Nd, M, P, S, Z, C), groups (...),
// (?:...), (?i:...), (?i), (?=...), (?!...), and the quantifiers ? * + {n} {n,} {n,m} (each
// optionally lazy '?' or possessive '+') on single characters; only ? on groups. Anything else
// is rejected by Compile(). Recursion depth is bounded by the pattern, not the text.
// Immutable after Compile(); Match/FindAll are const and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace quarry::tokenizer_internal {

class PretokenizerRegex {
 public:
  static absl::StatusOr<PretokenizerRegex> Compile(std::string_view pattern);

  // The end of the match starting exactly at `pos`, or -1.
  long MatchAt(const std::vector<char32_t>& text, size_t pos) const;
  // Non-empty, non-overlapping matches [begin, end) in code-point indices, scanning left to
  // right as find_iter does.
  std::vector<std::pair<size_t, size_t>> FindAll(const std::vector<char32_t>& text) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct ClassItem {
    enum Kind : uint8_t { kRange, kCategories, kWhiteSpace, kWord } kind = kRange;
    bool negated = false;
    char32_t lo = 0, hi = 0;  // kRange
    uint32_t mask = 0;        // kCategories
  };
  struct CharClass {
    bool negated = false;
    std::vector<ClassItem> items;
    bool Contains(char32_t cp) const;
  };
  struct Node {
    enum Kind : uint8_t { kChar, kGroup, kLookahead, kNegativeLookahead } kind = kChar;
    enum Mode : uint8_t { kGreedy, kLazy, kPossessive } mode = kGreedy;
    int index = -1;  // into classes_ (kChar) or groups_ (the others)
    int min = 1, max = 1;  // max -1: unbounded
  };
  using Sequence = std::vector<Node>;
  using Alternation = std::vector<Sequence>;
  struct Cont {
    const Sequence* seq;
    size_t index;
    const Cont* next;
  };
  class Parser;

  bool MatchSeq(const std::vector<char32_t>& text, const Sequence& seq, size_t index, size_t pos,
                const Cont* k, size_t* end) const;
  bool MatchAlt(const std::vector<char32_t>& text, const Alternation& alt, size_t pos,
                const Cont* k, size_t* end) const;

  std::string pattern_;
  std::vector<CharClass> classes_;
  std::vector<Alternation> groups_;  // groups_[0] is the whole pattern
};

}  // namespace quarry::tokenizer_internal
