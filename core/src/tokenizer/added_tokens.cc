#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace quarry::tokenizer_internal {
namespace {

// Rust regex's \w, which single_word uses: alphabetic, marks, decimal digits, connectors.
bool IsWordChar(char32_t cp) {
  const uint32_t bit = CategoryBit(CategoryOf(cp));
  return (bit & (kLetterMask | kMarkMask)) ||
         bit & (CategoryBit(GeneralCategory::kNd) | CategoryBit(GeneralCategory::kNl) |
                CategoryBit(GeneralCategory::kPc));
}

// The code point that ends just before `pos` (pos > 0).
Utf8Char CharBefore(std::string_view text, size_t pos) {
  size_t start = pos - 1;
  while (start > 0 && pos - start < 4 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) {
    --start;
  }
  Utf8Char c = DecodeUtf8(text, start);
  if (!c.valid || start + c.length != pos) return Utf8Char{0xFFFD, 1, false};
  return c;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].content.empty()) continue;
    by_first_byte_[static_cast<uint8_t>(tokens_[i].content[0])].push_back(static_cast<int>(i));
  }
  for (auto& list : by_first_byte_) {
    std::stable_sort(list.begin(), list.end(), [&](int a, int b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
  }
}

std::vector<AddedTokenMatcher::Segment> AddedTokenMatcher::Split(std::string_view text) const {
  std::vector<Segment> out;
  size_t start_offset = 0;  // end of the previous match
  size_t i = 0;
  while (i < text.size()) {
    int found = -1;
    for (int t : by_first_byte_[static_cast<uint8_t>(text[i])]) {
      const std::string& c = tokens_[t].content;
      if (text.compare(i, c.size(), c) == 0) {
        found = t;
        break;  // longest first
      }
    }
    if (found < 0) {
      ++i;
      continue;
    }
    const AddedToken& tok = tokens_[found];
    size_t start = i;
    size_t stop = i + tok.content.size();
    if (tok.single_word) {
      const bool word_before = start > 0 && IsWordChar(CharBefore(text, start).cp);
      const bool word_after = stop < text.size() && IsWordChar(DecodeUtf8(text, stop).cp);
      if (word_before || word_after) {
        i = stop;  // this match is consumed but not used, as aho-corasick's iterator does
        continue;
      }
    }
    if (tok.lstrip) {
      size_t s = start;
      while (s > start_offset) {
        const Utf8Char c = CharBefore(text, s);
        if (!c.valid || !IsWhiteSpace(c.cp)) break;
        s -= c.length;
      }
      start = s;
    }
    if (tok.rstrip) {
      while (stop < text.size()) {
        const Utf8Char c = DecodeUtf8(text, stop);
        if (!c.valid || !IsWhiteSpace(c.cp)) break;
        stop += c.length;
      }
    }
    if (start_offset < start) out.push_back(Segment{start_offset, start, -1});
    out.push_back(Segment{start, stop, found});
    start_offset = stop;
    i = stop;
  }
  if (start_offset < text.size()) out.push_back(Segment{start_offset, text.size(), -1});
  return out;
}

}  // namespace quarry::tokenizer_internal
