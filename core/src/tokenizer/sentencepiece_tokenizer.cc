// quarry::Tokenizer over a SentencePiece model, with transformers' LlamaTokenizer (slow)
// conventions when a tokenizer_config.json is given.
#include <algorithm>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "tokenizer/sentencepiece_processor.h"
#include "tokenizer/tokenizer_internal.h"

namespace quarry::tokenizer_internal {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";

std::string_view Sv(absl::string_view s) { return std::string_view(s.data(), s.size()); }

class SentencePieceTokenizer final : public Tokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(std::unique_ptr<SpProcessor> sp,
                                                          std::string source,
                                                          const TokenizerConfig* config);

  std::vector<int32_t> Encode(absl::string_view text, bool add_special_tokens) const override;
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const override;
  TokenizerKind kind() const override { return TokenizerKind::kSentencePiece; }
  int32_t vocab_size() const override { return vocab_size_; }
  std::string IdToPiece(int32_t id) const override;
  int32_t PieceToId(absl::string_view piece) const override;
  bool IsSpecial(int32_t id) const override;

 private:
  SentencePieceTokenizer() = default;
  // The id of a token string: an added token, else a piece of the model; -1 when neither.
  int32_t LookUp(std::string_view content) const;

  std::unique_ptr<SpProcessor> sp_;
  std::unique_ptr<AddedTokenMatcher> added_;  // null without tokenizer_config.json
  std::unordered_map<int32_t, std::string> extra_;  // added tokens with ids beyond the model
  bool legacy_ = true;
  bool add_prefix_space_ = true;
  int32_t vocab_size_ = 0;
};

absl::StatusOr<std::unique_ptr<Tokenizer>> SentencePieceTokenizer::Create(
    std::unique_ptr<SpProcessor> sp, std::string source, const TokenizerConfig* config) {
  std::unique_ptr<SentencePieceTokenizer> t(new SentencePieceTokenizer());
  t->source_ = std::move(source);
  t->sp_ = std::move(sp);
  t->vocab_size_ = t->sp_->piece_size();
  // SentencePieceProcessor::bos_id() etc.: the spec's piece when it has the expected type.
  const SpTrainerSpec& spec = t->sp_->model().trainer_spec;
  auto typed_id = [&](const std::string& piece, SpPiece::Type type) -> int32_t {
    const int32_t id = t->sp_->FindPiece(piece);
    return id >= 0 && t->sp_->type(id) == type ? id : -1;
  };
  t->unk_id_ = typed_id(spec.unk_piece, SpPiece::kUnknown);
  t->bos_id_ = typed_id(spec.bos_piece, SpPiece::kControl);
  t->eos_id_ = typed_id(spec.eos_piece, SpPiece::kControl);
  t->pad_id_ = typed_id(spec.pad_piece, SpPiece::kControl);
  t->add_bos_ = true;  // LlamaTokenizer's default
  t->add_eos_ = false;
  if (config != nullptr) {
    for (const AddedToken& a : config->added_tokens) {
      if (a.id < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            config->source, ": added_tokens_decoder has a negative id for '", a.content, "'"));
      }
      t->vocab_size_ = std::max(t->vocab_size_, a.id + 1);
      if (a.id >= t->sp_->piece_size()) t->extra_[a.id] = a.content;
    }
    t->added_ = std::make_unique<AddedTokenMatcher>(config->added_tokens);
    t->legacy_ = config->legacy.value_or(true);
    t->add_prefix_space_ = config->add_prefix_space.value_or(true);
    t->add_bos_ = config->add_bos_token.value_or(true);
    t->add_eos_ = config->add_eos_token.value_or(false);
    auto resolve = [&](const SpecialTokenEntry& e, const char* key, int32_t* id) -> absl::Status {
      if (e.state == SpecialTokenEntry::kAbsent) return absl::OkStatus();
      if (e.state == SpecialTokenEntry::kNull) {
        *id = -1;
        return absl::OkStatus();
      }
      *id = t->LookUp(e.content);
      if (*id < 0) {
        return absl::InvalidArgumentError(absl::StrCat(config->source, ": ", key, " '",
                                                       e.content, "' is not in the vocabulary of ",
                                                       t->source_));
      }
      return absl::OkStatus();
    };
    for (auto [entry, key, id] :
         {std::tuple{&config->bos_token, "bos_token", &t->bos_id_},
          std::tuple{&config->eos_token, "eos_token", &t->eos_id_},
          std::tuple{&config->pad_token, "pad_token", &t->pad_id_},
          std::tuple{&config->unk_token, "unk_token", &t->unk_id_}}) {
      if (absl::Status s = resolve(*entry, key, id); !s.ok()) return s;
    }
  }
  if (t->bos_id_ < 0) t->add_bos_ = false;
  if (t->eos_id_ < 0) t->add_eos_ = false;
  return std::unique_ptr<Tokenizer>(std::move(t));
}

int32_t SentencePieceTokenizer::LookUp(std::string_view content) const {
  if (added_ != nullptr) {
    for (const AddedToken& a : added_->tokens()) {
      if (a.content == content) return a.id;
    }
  }
  return sp_->FindPiece(content);
}

std::vector<int32_t> SentencePieceTokenizer::Encode(absl::string_view text_in,
                                                    bool add_special_tokens) const {
  std::vector<int32_t> ids;
  if (add_special_tokens && add_bos_) ids.push_back(bos_id_);
  if (added_ == nullptr || added_->empty()) {
    const std::vector<int32_t> body = sp_->Encode(Sv(text_in));
    ids.insert(ids.end(), body.begin(), body.end());
  } else {
    // LlamaTokenizer.tokenize: split on added tokens, sp.encode every other span. legacy=False
    // replaces U+2581 by spaces, prefixes the text with one and encodes spans without the dummy
    // prefix, so only a span at the very start gets one.
    std::string text(Sv(text_in));
    if (!legacy_) {
      std::string replaced;
      for (size_t pos = 0; pos < text.size();) {
        if (text.compare(pos, kSpaceSymbol.size(), kSpaceSymbol) == 0) {
          replaced.push_back(' ');
          pos += kSpaceSymbol.size();
        } else {
          replaced.push_back(text[pos++]);
        }
      }
      text = std::move(replaced);
    }
    for (const auto& seg : added_->Split(text)) {
      if (seg.token >= 0) {
        ids.push_back(added_->tokens()[seg.token].id);
        continue;
      }
      const std::string_view span = std::string_view(text).substr(seg.begin, seg.end - seg.begin);
      const bool dummy = legacy_ || (seg.begin == 0 && add_prefix_space_);
      const std::vector<int32_t> body = sp_->Encode(span, dummy);
      ids.insert(ids.end(), body.begin(), body.end());
    }
  }
  if (add_special_tokens && add_eos_) ids.push_back(eos_id_);
  return ids;
}

absl::StatusOr<std::string> SentencePieceTokenizer::Decode(absl::Span<const int32_t> ids) const {
  // Added tokens beyond the model's pieces read as their text, within sp.decode's stream.
  return sp_->Decode(ids, extra_.empty() ? nullptr : &extra_);
}

std::string SentencePieceTokenizer::IdToPiece(int32_t id) const {
  if (id >= 0 && id < sp_->piece_size()) return sp_->IdToPiece(id);
  if (added_ != nullptr) {
    for (const AddedToken& a : added_->tokens()) {
      if (a.id == id) return a.content;
    }
  }
  return "";
}

int32_t SentencePieceTokenizer::PieceToId(absl::string_view piece) const {
  return LookUp(Sv(piece));
}

bool SentencePieceTokenizer::IsSpecial(int32_t id) const {
  if (id >= 0 && id < sp_->piece_size()) {
    const SpPiece::Type t = sp_->type(id);
    if (t == SpPiece::kControl || t == SpPiece::kUnknown) return true;
  }
  if (added_ != nullptr) {
    for (const AddedToken& a : added_->tokens()) {
      if (a.id == id && a.special) return true;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> MakeSentencePieceTokenizer(
    std::string_view model_bytes, std::string source, const TokenizerConfig* config) {
  auto proto = ParseSpModelProto(model_bytes, source);
  if (!proto.ok()) return proto.status();
  auto sp = SpProcessor::Create(*std::move(proto), source);
  if (!sp.ok()) return sp.status();
  return SentencePieceTokenizer::Create(*std::move(sp), std::move(source), config);
}

}  // namespace quarry::tokenizer_internal
