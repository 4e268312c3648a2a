// Fuzzes the SentencePiece model reader (core/src/tokenizer/sentencepiece_model.cc
// ParseSpModelProto over protobuf_wire.cc, and the processor built from it):
// Tokenizer::FromSentencePieceBytes on the input as a tokenizer.model; a tokenizer that loads is
// run through ExerciseTokenizer (tokenizer_checks.h).
#include <cstdint>

#include "fuzz_util.h"
#include "quarry/tokenizer.h"
#include "tokenizer_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto tok = quarry::Tokenizer::FromSentencePieceBytes(quarry::fuzz::AsView(data, size),
                                                       "fuzz/tokenizer.model");
  if (!tok.ok()) return 0;
  quarry::fuzz::ExerciseTokenizer(**tok, "");
  return 0;
}
