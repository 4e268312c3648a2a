// Tokenizers of the models Quarry quantizes: SentencePiece (`tokenizer.model`: Llama 1/2,
// Mistral, the KJV fixtures) and Hugging Face byte-level BPE (`tokenizer.json`: GPT-2/OPT,
// Llama 3, Qwen2/3). Both are implemented here without their libraries (see the note at the
// end) and reproduce them id for id. A Tokenizer is immutable after its factory returns;
// Encode/Decode and the accessors are const and safe to call from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace quarry {

enum class TokenizerKind {
  kSentencePiece,   // tokenizer.model (a SentencePiece ModelProto): BPE, unigram or char model
  kHfByteLevelBpe,  // tokenizer.json: BPE over GPT-2's byte-to-unicode alphabet
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // The tokenizer of a Hugging Face model directory, as transformers' AutoTokenizer would
  // build it:
  //  * `tokenizer.json` when it describes a byte-level BPE (GPT-2 / Llama 3 / Qwen2 style);
  //  * otherwise `tokenizer.model` (SentencePiece), encoded as LlamaTokenizer (slow) does:
  //    added tokens listed in tokenizer_config.json's `added_tokens_decoder` (<s>, </s>, ...) are
  //    matched in the text and never split, every other span is sp.encode()d (`legacy`: true,
  //    the default, gives each span the dummy prefix; false only the first);
  //  * `tokenizer_config.json` (optional) supplies bos/eos/pad/unk tokens and, for
  //    SentencePiece and LlamaTokenizerFast, `add_bos_token` (default true) and
  //    `add_eos_token` (default false).
  // Errors name the file and what was wrong; a directory with neither file is NotFound.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromModelDir(const std::string& dir);

  // A bare SentencePiece model: Encode(text, true) = [bos] + sp.encode(text), as
  // LlamaTokenizer(add_bos_token=True) gives for text without special-token strings.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromSentencePieceFile(const std::string& path);
  // The same from the file's bytes; `source` names it in errors.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromSentencePieceBytes(
      absl::string_view bytes, absl::string_view source);

  // A Hugging Face tokenizer.json with a byte-level BPE model. Supported: model BPE (vocab,
  // merges as "a b" strings or [a, b] pairs, ignore_merges, byte_fallback, unk_token);
  // normalizer null / NFC / Sequence of those; pre_tokenizer ByteLevel, Split (regex or string,
  // every behavior, invert), Digits and Sequence; added_tokens (lstrip, rstrip, single_word);
  // post_processor TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence;
  // decoder ByteLevel. Anything else is Unimplemented, naming the component.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromHfJson(const std::string& path);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromHfJsonString(absl::string_view json,
                                                                      absl::string_view source);

  // Token ids of `text` (any bytes; UTF-8 expected). With add_special_tokens the tokens
  // transformers adds by default: BOS (and EOS if configured) for SentencePiece, the
  // post_processor's template for tokenizer.json (<|begin_of_text|> for Llama 3, nothing for
  // GPT-2 or Qwen2). Special-token strings in the text are recognised either way.
  virtual std::vector<int32_t> Encode(absl::string_view text, bool add_special_tokens) const = 0;

  // Text of `ids`, as the underlying library decodes them: sp.decode for SentencePiece
  // (control tokens such as <s> are invisible, <unk> reads " ⁇ ", one leading space of the
  // dummy prefix is dropped) and tokenizers' decode(skip_special_tokens=False) for
  // tokenizer.json (special tokens appear as their text; bytes that are not valid UTF-8 become
  // U+FFFD). transformers' clean_up_tokenization_spaces is not applied.
  // OutOfRange for an id that names no token.
  virtual absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const = 0;

  virtual TokenizerKind kind() const = 0;
  // One more than the largest token id (added tokens included).
  virtual int32_t vocab_size() const = 0;
  // The token's string as the vocabulary stores it ("▁the", "<0x0A>", "Ġthe", "<s>"); empty
  // for an id that names no token.
  virtual std::string IdToPiece(int32_t id) const = 0;
  // The id of a vocabulary string, or -1.
  virtual int32_t PieceToId(absl::string_view piece) const = 0;
  // True for control / special tokens (<s>, </s>, <unk>, <|begin_of_text|>, ...).
  virtual bool IsSpecial(int32_t id) const = 0;

  // Special ids, -1 when the tokenizer has none.
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }
  // Whether Encode(text, true) starts with bos_id() / ends with eos_id().
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  // Where it came from, for logs ("tests/data/models/tiny-llama-kjv/tokenizer.model").
  const std::string& source() const { return source_; }

 protected:
  Tokenizer() = default;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  int32_t pad_id_ = -1;
  int32_t unk_id_ = -1;
  bool add_bos_ = false;
  bool add_eos_ = false;
  std::string source_;
};

// Why no libsentencepiece / tokenizers: Debian's libsentencepiece.so contains and exports its
// own copy of protobuf, which crashes at start-up in a process that also loads libprotobuf
// (LibTorch does), and the Hugging Face tokenizers library is Rust. tests/tokenizer checks this
// implementation against the real libsentencepiece in a separate process.

}  // namespace quarry
