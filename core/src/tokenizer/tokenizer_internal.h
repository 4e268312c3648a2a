// Shared between the tokenizer implementations: the parts of tokenizer_config.json they use,
// and the constructors behind quarry::Tokenizer's factories.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "quarry/tokenizer.h"
#include "tokenizer/added_tokens.h"

namespace quarry::tokenizer_internal {

// A special-token entry of tokenizer_config.json ("bos_token": "<s>" | {"content": ...} | null).
struct SpecialTokenEntry {
  enum State { kAbsent, kNull, kSet };
  State state = kAbsent;
  std::string content;
};

struct TokenizerConfig {
  std::string source;  // the file, for error messages
  SpecialTokenEntry bos_token, eos_token, pad_token, unk_token;
  std::optional<bool> add_bos_token, add_eos_token, legacy, add_prefix_space;
  std::string tokenizer_class;
  std::vector<AddedToken> added_tokens;  // added_tokens_decoder, in id order
};

// Parses tokenizer_config.json text; errors name `source` and the key.
absl::StatusOr<TokenizerConfig> ParseTokenizerConfig(std::string_view json, std::string source);

// `config` may be null (a bare tokenizer file).
absl::StatusOr<std::unique_ptr<Tokenizer>> MakeSentencePieceTokenizer(
    std::string_view model_bytes, std::string source, const TokenizerConfig* config);
absl::StatusOr<std::unique_ptr<Tokenizer>> MakeHfTokenizer(std::string_view json,
                                                           std::string source,
                                                           const TokenizerConfig* config);

}  // namespace quarry::tokenizer_internal
