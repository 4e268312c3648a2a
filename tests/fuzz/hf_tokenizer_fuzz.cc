// Fuzzes the Hugging Face tokenizer.json reader (core/src/tokenizer/hf_tokenizer.cc,
// Tokenizer::FromHfJsonString): vocab, merges, normalizer, pre-tokenizer regexes, added tokens,
// post-processor; a tokenizer that loads is run through ExerciseTokenizer (tokenizer_checks.h),
// with the input's first 256 bytes as a second text to encode.
#include <cstdint>

#include "fuzz_util.h"
#include "quarry/tokenizer.h"
#include "tokenizer_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view json = quarry::fuzz::AsView(data, size);
  auto tok = quarry::Tokenizer::FromHfJsonString(json, "fuzz/tokenizer.json");
  if (!tok.ok()) return 0;
  quarry::fuzz::ExerciseTokenizer(**tok, json.substr(0, 256));
  return 0;
}
