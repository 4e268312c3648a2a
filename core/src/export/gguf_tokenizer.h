// Core-internal: a model's tokenizer as GGUF tokenizer.ggml.* metadata (llama.cpp's
// llama-vocab.cpp reads these), and back.
//   SentencePiece tokenizer.model -> tokenizer.ggml.model "llama": tokens (the pieces), scores,
//     token_type (SentencePiece's piece types, which are llama_token_type's values: 1 normal,
//     2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte), bos/eos/unknown/padding ids,
//     add_bos_token / add_eos_token (tokenizer_config.json, LlamaTokenizer's defaults true /
//     false), add_space_prefix (normalizer add_dummy_prefix), remove_extra_whitespaces; plus
//     quarry.tokenizer.* (split_digits, byte_fallback, model_type, ...) so Quarry's reader
//     rebuilds the same SentencePiece model.
//   tokenizer.json byte-level BPE -> tokenizer.ggml.model "gpt2": tokens in id order,
//     token_type (added special tokens 3 control, other added tokens 4 user-defined, else 1),
//     merges ("a b"), tokenizer.ggml.pre from the pre-tokenizer's split regex (llama-bpe for
//     Llama 3's, qwen2 for Qwen2's, gpt-2 for a bare ByteLevel); an unknown regex is an error
//     (llama.cpp would split text differently), bos/eos/padding ids from tokenizer_config.json.
// Rows of the embedding beyond the tokenizer's vocabulary get "[PAD<i>]" tokens of type unused,
// as convert_hf_to_gguf.py pads them.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "export/gguf_file.h"
#include "quarry/tokenizer.h"

namespace quarry::exporter::gguf {

absl::Status AddTokenizerMetadata(const std::string& model_dir, int64_t vocab_size,
                                  GgufWriter* writer);

// The tokenizer a GGUF describes (model "llama": a SentencePiece BPE model rebuilt from the
// pieces; "gpt2": a byte-level BPE tokenizer.json rebuilt from tokens, merges and the
// pre-tokenizer name). UNIMPLEMENTED for other tokenizer models, naming it.
absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerFromGguf(const GgufFile& file);

}  // namespace quarry::exporter::gguf
