// What every tokenizer the fuzz targets build must survive: encoding a fixed text (ASCII,
// whitespace runs, digits, accented and CJK letters, special-token strings, invalid UTF-8),
// decoding the ids, and the accessors over every id near the vocabulary's ends.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "quarry/tokenizer.h"

namespace quarry::fuzz {

inline void ExerciseTokenizer(const Tokenizer& tok, absl::string_view extra_text) {
  static const std::string kText =
      "Hello, world! In the beginning 1234567  \n\t spaces  \xC3\x80 la carte \xE2\x80\x94 "
      "\xE6\x97\xA5\xE6\x9C\xAC <s></s><unk><|endoftext|><|begin_of_text|> \xFF\xFE bad";
  for (absl::string_view text : {absl::string_view(kText), extra_text}) {
    for (bool special : {false, true}) {
      std::vector<int32_t> ids = tok.Encode(text, special);
      for (int32_t id : ids)
        if (id < 0 || id >= tok.vocab_size()) std::abort();  // Encode must emit real ids
      auto decoded = tok.Decode(ids);
      if (!decoded.ok()) std::abort();
    }
  }
  const int32_t n = tok.vocab_size();
  std::vector<int32_t> probe;
  for (int32_t id = 0; id < n && id < 64; ++id) probe.push_back(id);
  for (int32_t id = n - 64 < 0 ? 0 : n - 64; id < n; ++id) probe.push_back(id);
  for (int32_t id : probe) {
    const std::string piece = tok.IdToPiece(id);
    (void)tok.PieceToId(piece);
    (void)tok.IsSpecial(id);
  }
  (void)tok.Decode(probe);
  for (int32_t bad : {-1, n, n + 1})
    if (tok.Decode(std::vector<int32_t>{bad}).ok()) std::abort();  // Decode: OutOfRange
  (void)tok.IdToPiece(-1);
  (void)tok.IdToPiece(n);
  (void)tok.IsSpecial(-1);
  (void)tok.IsSpecial(n);
}

}  // namespace quarry::fuzz
