// quarry::Tokenizer over a Hugging Face tokenizer.json whose model is a byte-level BPE (GPT-2,
// OPT, Llama 3, Qwen2/3), re-implementing the `tokenizers` library's pipeline: added tokens ->
// normalizer -> pre-tokenizer -> BPE -> post-processor, and the ByteLevel decoder.
#include <algorithm>
#include <array>
#include <memory>
#include <queue>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/pretokenizer_regex.h"
#include "tokenizer/sentencepiece_processor.h"  // PieceMap
#include "tokenizer/tokenizer_internal.h"
#include "tokenizer/unicode.h"

namespace quarry::tokenizer_internal {
namespace {

using json = nlohmann::json;

std::string_view Sv(absl::string_view s) { return std::string_view(s.data(), s.size()); }

// GPT-2's bytes_to_unicode(): printable bytes map to themselves, the other 68 to U+0100.. in
// byte order. Every byte-level vocabulary is spelled in this alphabet.
struct ByteAlphabet {
  std::array<std::string, 256> byte_to_utf8;
  std::unordered_map<char32_t, uint8_t> char_to_byte;
  ByteAlphabet() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      AppendUtf8(cp, &byte_to_utf8[b]);
      char_to_byte[cp] = static_cast<uint8_t>(b);
    }
  }
};
const ByteAlphabet& Alphabet() {
  static const ByteAlphabet* a = new ByteAlphabet();
  return *a;
}

// The pattern of the ByteLevel pre-tokenizer (use_regex: true): GPT-2's.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct PreTokenizerStep {
  enum Kind { kByteLevel, kSplitRegex, kSplitString, kDigits } kind = kByteLevel;
  bool add_prefix_space = false;  // ByteLevel
  bool use_regex = true;          // ByteLevel
  std::shared_ptr<const PretokenizerRegex> regex;  // ByteLevel (GPT-2) / Split
  std::string literal;            // Split with {"String": ...}
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  bool individual_digits = false;  // Digits
};

// A template element: the input sequence, or fixed special ids.
struct TemplatePiece {
  bool is_sequence = false;
  std::vector<int32_t> ids;
};

// A JSON path for messages ("pre_tokenizer.pretokenizers[0].pattern").
class JsonError {
 public:
  explicit JsonError(std::string source) : source_(std::move(source)) {}
  absl::Status Invalid(std::string_view path, std::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": ", absl::string_view(path.data(), path.size()), ": ",
                                                   absl::string_view(what.data(), what.size())));
  }
  absl::Status Unsupported(std::string_view path, std::string_view what) const {
    return absl::UnimplementedError(absl::StrCat(source_, ": ", absl::string_view(path.data(), path.size()), ": ",
                                                 absl::string_view(what.data(), what.size()),
                                                 " is not supported"));
  }
  const std::string& source() const { return source_; }

 private:
  std::string source_;
};

bool BoolOr(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_boolean()) return fallback;
  return it->get<bool>();
}

std::string TypeOf(const json& j) {
  auto it = j.find("type");
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

class HfByteLevelTokenizer final : public Tokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(std::string_view text,
                                                          std::string source,
                                                          const TokenizerConfig* config);

  std::vector<int32_t> Encode(absl::string_view text, bool add_special_tokens) const override;
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const override;
  TokenizerKind kind() const override { return TokenizerKind::kHfByteLevelBpe; }
  int32_t vocab_size() const override { return static_cast<int32_t>(id_to_token_.size()); }
  std::string IdToPiece(int32_t id) const override;
  int32_t PieceToId(absl::string_view piece) const override;
  bool IsSpecial(int32_t id) const override;

 private:
  HfByteLevelTokenizer() = default;

  absl::Status ParseModel(const json& model, const JsonError& err);
  absl::Status ParseNormalizer(const json& j, const std::string& path, const JsonError& err);
  absl::Status ParsePreTokenizer(const json& j, const std::string& path, const JsonError& err);
  absl::Status ParsePostProcessor(const json& j, const std::string& path, const JsonError& err,
                                  std::vector<TemplatePiece>* tmpl);
  absl::Status ParseDecoder(const json& j, const std::string& path, const JsonError& err);
  absl::Status ParseAddedTokens(const json& j, const JsonError& err);

  std::vector<std::string> PreTokenize(std::string text) const;
  void TokenizeWord(std::string_view word, std::vector<int32_t>* ids) const;

  // model
  PieceMap vocab_;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (a, b) -> (rank, id)
  bool ignore_merges_ = false;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  int32_t model_unk_ = -1;
  // everything, by id: vocabulary and added tokens
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_token_;
  std::vector<bool> special_;
  std::vector<bool> is_added_;
  std::unique_ptr<AddedTokenMatcher> added_;
  PieceMap added_by_content_;
  bool nfc_ = false;
  std::vector<PreTokenizerStep> pre_;
  bool has_post_processor_ = false;
  std::vector<TemplatePiece> template_ = {TemplatePiece{true, {}}};
};

absl::Status HfByteLevelTokenizer::ParseModel(const json& model, const JsonError& err) {
  if (!model.is_object()) return err.Invalid("model", "missing or not an object");
  const std::string type = TypeOf(model);
  if (type != "BPE" && !(type.empty() && model.contains("merges"))) {
    return err.Unsupported("model.type", absl::StrCat("model type '", type, "' (only BPE)"));
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = model.find(key);
    if (it != model.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty())) {
      return err.Unsupported(absl::StrCat("model.", key), "a non-empty value");
    }
  }
  if (auto it = model.find("dropout"); it != model.end() && it->is_number() &&
                                       it->get<double>() > 0.0) {
    return err.Unsupported("model.dropout", "BPE dropout (sampling)");
  }
  ignore_merges_ = BoolOr(model, "ignore_merges", false);
  byte_fallback_ = BoolOr(model, "byte_fallback", false);
  fuse_unk_ = BoolOr(model, "fuse_unk", false);

  auto vocab = model.find("vocab");
  if (vocab == model.end() || !vocab->is_object()) return err.Invalid("model.vocab", "missing or not an object");
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab->items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX - 1) {
      return err.Invalid(absl::StrCat("model.vocab[\"", token, "\"]"), "not a non-negative id");
    }
    const int32_t v = static_cast<int32_t>(id.get<int64_t>());
    vocab_[token] = v;
    max_id = std::max(max_id, v);
  }
  // Ids index dense tables: refuse a file whose ids are far sparser than any real vocabulary.
  if (static_cast<int64_t>(max_id) >= 4 * static_cast<int64_t>(vocab_.size()) + 65536) {
    return err.Invalid("model.vocab", absl::StrCat("ids up to ", max_id, " for ", vocab_.size(),
                                                   " entries are implausibly sparse"));
  }
  id_to_token_.assign(max_id + 1, "");
  has_token_.assign(max_id + 1, false);
  for (const auto& [token, id] : vocab_) {
    id_to_token_[id] = token;
    has_token_[id] = true;
  }

  auto merges = model.find("merges");
  if (merges == model.end() || !merges->is_array()) return err.Invalid("model.merges", "missing or not an array");
  int32_t rank = 0;
  for (const auto& m : *merges) {
    const std::string where = absl::StrCat("model.merges[", rank, "]");
    std::string a, b;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return err.Invalid(where, absl::StrCat("'", s, "' is not two tokens separated by one space"));
      }
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      return err.Invalid(where, "neither \"a b\" nor [\"a\", \"b\"]");
    }
    auto ia = vocab_.find(a), ib = vocab_.find(b), iab = vocab_.find(a + b);
    if (ia == vocab_.end() || ib == vocab_.end()) {
      return err.Invalid(where, absl::StrCat("merge token '", ia == vocab_.end() ? a : b,
                                             "' is not in the vocabulary"));
    }
    if (iab == vocab_.end()) {
      return err.Invalid(where, absl::StrCat("merged token '", a + b, "' is not in the vocabulary"));
    }
    const uint64_t key = (static_cast<uint64_t>(ia->second) << 32) | static_cast<uint32_t>(ib->second);
    merges_[key] = {rank, iab->second};  // a later duplicate wins, as in tokenizers
    ++rank;
  }
  if (auto unk = model.find("unk_token"); unk != model.end() && unk->is_string()) {
    auto it = vocab_.find(unk->get<std::string>());
    if (it == vocab_.end()) {
      return err.Invalid("model.unk_token", absl::StrCat("'", unk->get<std::string>(),
                                                         "' is not in the vocabulary"));
    }
    model_unk_ = it->second;
  }
  return absl::OkStatus();
}

absl::Status HfByteLevelTokenizer::ParseNormalizer(const json& j, const std::string& path,
                                                   const JsonError& err) {
  if (j.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(j);
  if (type == "NFC") {
    nfc_ = true;
    return absl::OkStatus();
  }
  if (type == "Sequence") {
    auto list = j.find("normalizers");
    if (list == j.end() || !list->is_array()) return err.Invalid(path, "Sequence without 'normalizers'");
    for (size_t i = 0; i < list->size(); ++i) {
      if (nfc_) return err.Unsupported(path, "a normalizer after NFC");
      if (absl::Status s = ParseNormalizer((*list)[i], absl::StrCat(path, ".normalizers[", i, "]"), err);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }
  return err.Unsupported(path, absl::StrCat("normalizer '", type, "' (only NFC)"));
}

absl::Status HfByteLevelTokenizer::ParsePreTokenizer(const json& j, const std::string& path,
                                                     const JsonError& err) {
  if (j.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(j);
  PreTokenizerStep step;
  if (type == "Sequence") {
    auto list = j.find("pretokenizers");
    if (list == j.end() || !list->is_array()) return err.Invalid(path, "Sequence without 'pretokenizers'");
    for (size_t i = 0; i < list->size(); ++i) {
      if (absl::Status s = ParsePreTokenizer((*list)[i], absl::StrCat(path, ".pretokenizers[", i, "]"), err);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }
  if (type == "ByteLevel") {
    step.kind = PreTokenizerStep::kByteLevel;
    step.add_prefix_space = BoolOr(j, "add_prefix_space", true);
    step.use_regex = BoolOr(j, "use_regex", true);
    if (step.use_regex) {
      auto re = PretokenizerRegex::Compile(kGpt2Pattern);
      if (!re.ok()) return re.status();
      step.regex = std::make_shared<const PretokenizerRegex>(*std::move(re));
    }
  } else if (type == "Split") {
    auto pattern = j.find("pattern");
    if (pattern == j.end() || !pattern->is_object()) return err.Invalid(path, "Split without a 'pattern' object");
    if (auto re = pattern->find("Regex"); re != pattern->end() && re->is_string()) {
      step.kind = PreTokenizerStep::kSplitRegex;
      auto compiled = PretokenizerRegex::Compile(re->get<std::string>());
      if (!compiled.ok()) {
        return absl::Status(compiled.status().code(),
                            absl::StrCat(err.source(), ": ", path, ".pattern: ", compiled.status().message()));
      }
      step.regex = std::make_shared<const PretokenizerRegex>(*std::move(compiled));
    } else if (auto s = pattern->find("String"); s != pattern->end() && s->is_string()) {
      step.kind = PreTokenizerStep::kSplitString;
      step.literal = s->get<std::string>();
    } else {
      return err.Invalid(absl::StrCat(path, ".pattern"), "neither {\"Regex\": ...} nor {\"String\": ...}");
    }
    const std::string behavior = j.value("behavior", std::string("Isolated"));
    if (behavior == "Removed") step.behavior = SplitBehavior::kRemoved;
    else if (behavior == "Isolated") step.behavior = SplitBehavior::kIsolated;
    else if (behavior == "MergedWithPrevious") step.behavior = SplitBehavior::kMergedWithPrevious;
    else if (behavior == "MergedWithNext") step.behavior = SplitBehavior::kMergedWithNext;
    else if (behavior == "Contiguous") step.behavior = SplitBehavior::kContiguous;
    else return err.Invalid(absl::StrCat(path, ".behavior"), absl::StrCat("unknown behavior '", behavior, "'"));
    step.invert = BoolOr(j, "invert", false);
  } else if (type == "Digits") {
    step.kind = PreTokenizerStep::kDigits;
    step.individual_digits = BoolOr(j, "individual_digits", false);
  } else {
    return err.Unsupported(path, absl::StrCat("pre-tokenizer '", type, "'"));
  }
  pre_.push_back(std::move(step));
  return absl::OkStatus();
}

absl::Status HfByteLevelTokenizer::ParsePostProcessor(const json& j, const std::string& path,
                                                      const JsonError& err,
                                                      std::vector<TemplatePiece>* tmpl) {
  if (j.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(j);
  // Replaces the sequence element of *tmpl by `single` (processors apply in turn).
  auto compose = [&](const std::vector<TemplatePiece>& single) {
    std::vector<TemplatePiece> out;
    for (const TemplatePiece& p : single) {
      if (p.is_sequence) {
        out.insert(out.end(), tmpl->begin(), tmpl->end());
      } else {
        out.push_back(p);
      }
    }
    *tmpl = std::move(out);
  };
  if (type == "ByteLevel") return absl::OkStatus();  // offsets only
  if (type == "Sequence") {
    auto list = j.find("processors");
    if (list == j.end() || !list->is_array()) return err.Invalid(path, "Sequence without 'processors'");
    for (size_t i = 0; i < list->size(); ++i) {
      if (absl::Status s = ParsePostProcessor((*list)[i], absl::StrCat(path, ".processors[", i, "]"), err, tmpl);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }
  if (type == "TemplateProcessing") {
    auto single = j.find("single");
    if (single == j.end() || !single->is_array()) return err.Invalid(path, "TemplateProcessing without 'single'");
    const json specials = j.value("special_tokens", json::object());
    std::vector<TemplatePiece> pieces;
    bool has_a = false;
    for (size_t i = 0; i < single->size(); ++i) {
      const json& item = (*single)[i];
      const std::string where = absl::StrCat(path, ".single[", i, "]");
      if (item.contains("Sequence")) {
        if (item["Sequence"].value("id", std::string("A")) != "A") {
          return err.Invalid(where, "the single template refers to a sequence other than A");
        }
        pieces.push_back(TemplatePiece{true, {}});
        has_a = true;
      } else if (item.contains("SpecialToken") && item["SpecialToken"].contains("id") &&
                 item["SpecialToken"]["id"].is_string()) {
        const std::string name = item["SpecialToken"]["id"].get<std::string>();
        auto sp = specials.find(name);
        if (sp == specials.end() || !sp->contains("ids") || !(*sp)["ids"].is_array()) {
          return err.Invalid(where, absl::StrCat("special token '", name, "' is not in special_tokens"));
        }
        TemplatePiece p;
        for (const json& id : (*sp)["ids"]) {
          if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= INT32_MAX) {
            return err.Invalid(where, absl::StrCat("special token '", name, "' has a bad id"));
          }
          p.ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
        }
        pieces.push_back(std::move(p));
      } else {
        return err.Invalid(where, "neither a Sequence nor a SpecialToken");
      }
    }
    if (!has_a) return err.Invalid(path, "the single template has no $A");
    compose(pieces);
    has_post_processor_ = true;
    return absl::OkStatus();
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    auto id_of = [&](const char* key, int32_t* id) -> absl::Status {
      auto it = j.find(key);
      if (it == j.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_integer()) {
        return err.Invalid(absl::StrCat(path, ".", key), "expected [token, id]");
      }
      *id = static_cast<int32_t>((*it)[1].get<int64_t>());
      return absl::OkStatus();
    };
    int32_t cls = -1, sep = -1;
    if (absl::Status s = id_of("cls", &cls); !s.ok()) return s;
    if (absl::Status s = id_of("sep", &sep); !s.ok()) return s;
    compose({TemplatePiece{false, {cls}}, TemplatePiece{true, {}}, TemplatePiece{false, {sep}}});
    has_post_processor_ = true;
    return absl::OkStatus();
  }
  return err.Unsupported(path, absl::StrCat("post-processor '", type, "'"));
}

absl::Status HfByteLevelTokenizer::ParseDecoder(const json& j, const std::string& path,
                                                const JsonError& err) {
  const std::string type = j.is_null() ? "" : TypeOf(j);
  if (type == "ByteLevel") return absl::OkStatus();
  if (type == "Sequence") {
    auto list = j.find("decoders");
    if (list != j.end() && list->is_array() && list->size() == 1) {
      return ParseDecoder((*list)[0], absl::StrCat(path, ".decoders[0]"), err);
    }
  }
  return err.Unsupported(path, absl::StrCat("decoder '", j.is_null() ? "null" : j.dump(), "' (only ByteLevel)"));
}

absl::Status HfByteLevelTokenizer::ParseAddedTokens(const json& j, const JsonError& err) {
  std::vector<AddedToken> tokens;
  if (!j.is_null()) {
    if (!j.is_array()) return err.Invalid("added_tokens", "not an array");
    for (size_t i = 0; i < j.size(); ++i) {
      const json& t = j[i];
      const std::string where = absl::StrCat("added_tokens[", i, "]");
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() ||
          !t.contains("content") || !t["content"].is_string()) {
        return err.Invalid(where, "needs an integer 'id' and a string 'content'");
      }
      AddedToken a;
      const int64_t id = t["id"].get<int64_t>();
      if (id < 0 || id >= 4 * static_cast<int64_t>(id_to_token_.size() + j.size()) + 65536) {
        return err.Invalid(where, absl::StrCat("id ", id, " is out of range"));
      }
      a.id = static_cast<int32_t>(id);
      a.content = t["content"].get<std::string>();
      if (a.content.empty()) return err.Invalid(where, "empty content");
      a.single_word = BoolOr(t, "single_word", false);
      a.lstrip = BoolOr(t, "lstrip", false);
      a.rstrip = BoolOr(t, "rstrip", false);
      a.normalized = BoolOr(t, "normalized", false);
      a.special = BoolOr(t, "special", false);
      tokens.push_back(std::move(a));
    }
  }
  int32_t size = static_cast<int32_t>(id_to_token_.size());
  for (const AddedToken& a : tokens) size = std::max(size, a.id + 1);
  id_to_token_.resize(size);
  has_token_.resize(size, false);
  special_.assign(size, false);
  is_added_.assign(size, false);
  for (const AddedToken& a : tokens) {
    id_to_token_[a.id] = a.content;
    has_token_[a.id] = true;
    special_[a.id] = a.special;
    is_added_[a.id] = true;
    added_by_content_[a.content] = a.id;
  }
  added_ = std::make_unique<AddedTokenMatcher>(std::move(tokens));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Tokenizer>> HfByteLevelTokenizer::Create(
    std::string_view text, std::string source, const TokenizerConfig* config) {
  JsonError err(source);
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON"));
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  std::unique_ptr<HfByteLevelTokenizer> t(new HfByteLevelTokenizer());
  t->source_ = source;
  const json null_json;
  auto member = [&](const char* key) -> const json& {
    auto it = j.find(key);
    return it == j.end() ? null_json : *it;
  };
  // Byte-level is decided by the pre-tokenizer; other tokenizer.json files (Llama 2's Metaspace
  // BPE, WordPiece, Unigram) are Unimplemented, which FromModelDir treats as "use
  // tokenizer.model".
  if (absl::Status s = t->ParsePreTokenizer(member("pre_tokenizer"), "pre_tokenizer", err); !s.ok()) return s;
  if (std::none_of(t->pre_.begin(), t->pre_.end(),
                   [](const PreTokenizerStep& p) { return p.kind == PreTokenizerStep::kByteLevel; })) {
    return err.Unsupported("pre_tokenizer", "a tokenizer that is not byte-level (no ByteLevel pre-tokenizer)");
  }
  if (absl::Status s = t->ParseModel(member("model"), err); !s.ok()) return s;
  if (absl::Status s = t->ParseNormalizer(member("normalizer"), "normalizer", err); !s.ok()) return s;
  if (absl::Status s = t->ParseDecoder(member("decoder"), "decoder", err); !s.ok()) return s;
  if (absl::Status s = t->ParseAddedTokens(member("added_tokens"), err); !s.ok()) return s;
  std::vector<TemplatePiece> tmpl = {TemplatePiece{true, {}}};
  if (absl::Status s = t->ParsePostProcessor(member("post_processor"), "post_processor", err, &tmpl); !s.ok()) {
    return s;
  }
  t->template_ = std::move(tmpl);
  for (const TemplatePiece& p : t->template_) {
    for (int32_t id : p.ids) {
      if (id < 0 || id >= t->vocab_size() || !t->has_token_[id]) {
        return err.Invalid("post_processor", absl::StrCat("special id ", id, " names no token"));
      }
    }
  }
  t->unk_id_ = t->model_unk_;

  // Special tokens: tokenizer_config.json when given, else the template's leading token.
  if (!t->template_.empty() && !t->template_.front().is_sequence && !t->template_.front().ids.empty()) {
    t->bos_id_ = t->template_.front().ids.front();
  }
  if (config != nullptr) {
    auto resolve = [&](const SpecialTokenEntry& e, const char* key, int32_t* id) -> absl::Status {
      if (e.state == SpecialTokenEntry::kAbsent) return absl::OkStatus();
      if (e.state == SpecialTokenEntry::kNull) {
        *id = -1;
        return absl::OkStatus();
      }
      *id = t->PieceToId(e.content);
      if (*id < 0) {
        return absl::InvalidArgumentError(absl::StrCat(config->source, ": ", key, " '", e.content,
                                                       "' is not a token of ", source));
      }
      return absl::OkStatus();
    };
    for (auto [entry, key, id] : {std::tuple{&config->bos_token, "bos_token", &t->bos_id_},
                                  std::tuple{&config->eos_token, "eos_token", &t->eos_id_},
                                  std::tuple{&config->pad_token, "pad_token", &t->pad_id_},
                                  std::tuple{&config->unk_token, "unk_token", &t->unk_id_}}) {
      if (absl::Status s = resolve(*entry, key, id); !s.ok()) return s;
    }
    // LlamaTokenizerFast.update_post_processor(): the template follows add_bos_token /
    // add_eos_token (other fast tokenizers keep tokenizer.json's post-processor).
    if (config->tokenizer_class == "LlamaTokenizerFast") {
      const bool add_bos = config->add_bos_token.value_or(true);
      const bool add_eos = config->add_eos_token.value_or(false);
      if ((add_bos && t->bos_id_ < 0) || (add_eos && t->eos_id_ < 0)) {
        return absl::InvalidArgumentError(absl::StrCat(
            config->source, ": add_bos_token / add_eos_token is true but the token is not set"));
      }
      t->template_.clear();
      if (add_bos) t->template_.push_back(TemplatePiece{false, {t->bos_id_}});
      t->template_.push_back(TemplatePiece{true, {}});
      if (add_eos) t->template_.push_back(TemplatePiece{false, {t->eos_id_}});
    }
  }
  const auto& front = t->template_.front();
  const auto& back = t->template_.back();
  t->add_bos_ = !front.is_sequence && !front.ids.empty() && front.ids.front() == t->bos_id_ &&
                t->bos_id_ >= 0;
  t->add_eos_ = !back.is_sequence && !back.ids.empty() && back.ids.back() == t->eos_id_ &&
                t->eos_id_ >= 0;
  return std::unique_ptr<Tokenizer>(std::move(t));
}

// Ranges [begin, end) of `text` kept by a split with `behavior` given the pattern's matches
// (tokenizers' NormalizedString::split).
std::vector<std::pair<size_t, size_t>> ApplySplit(
    size_t length, const std::vector<std::pair<size_t, size_t>>& matches, SplitBehavior behavior,
    bool invert) {
  struct Part {
    size_t begin, end;
    bool is_match;
  };
  std::vector<Part> parts;
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (prev != b) parts.push_back({prev, b, false});
    parts.push_back({b, e, true});
    prev = e;
  }
  if (prev != length) parts.push_back({prev, length, false});
  if (invert) {
    for (Part& p : parts) p.is_match = !p.is_match;
  }
  std::vector<std::pair<size_t, size_t>> out;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Part& p : parts) out.emplace_back(p.begin, p.end);
      break;
    case SplitBehavior::kRemoved:
      for (const Part& p : parts) {
        if (!p.is_match) out.emplace_back(p.begin, p.end);
      }
      break;
    case SplitBehavior::kContiguous:
      for (const Part& p : parts) {
        if (p.is_match == previous_match && !out.empty()) {
          out.back().second = p.end;
        } else {
          out.emplace_back(p.begin, p.end);
        }
        previous_match = p.is_match;
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Part& p : parts) {
        if (p.is_match && !previous_match && !out.empty()) {
          out.back().second = p.end;
        } else {
          out.emplace_back(p.begin, p.end);
        }
        previous_match = p.is_match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty()) {
          out.back().first = it->begin;
        } else {
          out.emplace_back(it->begin, it->end);
        }
        previous_match = it->is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
  }
  return out;
}

// Code points of `s` for pattern matching (bytes that are not UTF-8 read as U+FFFD), with the
// byte offset of each code point and one past the end.
void DecodeForMatching(std::string_view s, std::vector<char32_t>* cps, std::vector<size_t>* offsets) {
  cps->clear();
  offsets->clear();
  for (size_t i = 0; i < s.size();) {
    const Utf8Char c = DecodeUtf8(s, i);
    cps->push_back(c.cp);
    offsets->push_back(i);
    i += c.length;
  }
  offsets->push_back(s.size());
}

std::vector<std::string> HfByteLevelTokenizer::PreTokenize(std::string text) const {
  std::vector<std::string> pieces;
  pieces.push_back(std::move(text));
  std::vector<char32_t> cps;
  std::vector<size_t> offsets;
  for (const PreTokenizerStep& step : pre_) {
    std::vector<std::string> next;
    for (std::string& piece : pieces) {
      if (step.kind == PreTokenizerStep::kByteLevel && step.add_prefix_space &&
          (piece.empty() || piece[0] != ' ')) {
        piece.insert(piece.begin(), ' ');
      }
      std::vector<std::pair<size_t, size_t>> ranges;  // byte ranges kept
      if (step.kind == PreTokenizerStep::kByteLevel && !step.use_regex) {
        ranges.emplace_back(0, piece.size());
      } else {
        DecodeForMatching(piece, &cps, &offsets);
        std::vector<std::pair<size_t, size_t>> matches;  // in code points
        SplitBehavior behavior = SplitBehavior::kIsolated;
        bool invert = false;
        switch (step.kind) {
          case PreTokenizerStep::kByteLevel:
          case PreTokenizerStep::kSplitRegex:
            matches = step.regex->FindAll(cps);
            if (step.kind == PreTokenizerStep::kSplitRegex) {
              behavior = step.behavior;
              invert = step.invert;
            }
            break;
          case PreTokenizerStep::kSplitString: {
            behavior = step.behavior;
            invert = step.invert;
            if (step.literal.empty()) break;
            // Byte search, mapped back to code point indices (matches start and end on
            // character boundaries since the literal is UTF-8).
            size_t cp_index = 0;
            for (size_t at = piece.find(step.literal); at != std::string::npos;
                 at = piece.find(step.literal, at + step.literal.size())) {
              while (offsets[cp_index] < at) ++cp_index;
              size_t end_index = cp_index;
              while (offsets[end_index] < at + step.literal.size()) ++end_index;
              matches.emplace_back(cp_index, end_index);
            }
            break;
          }
          case PreTokenizerStep::kDigits: {
            behavior = step.individual_digits ? SplitBehavior::kIsolated : SplitBehavior::kContiguous;
            for (size_t i = 0; i < cps.size(); ++i) {
              if (IsNumber(cps[i])) matches.emplace_back(i, i + 1);
            }
            break;
          }
        }
        for (const auto& [b, e] : ApplySplit(cps.size(), matches, behavior, invert)) {
          ranges.emplace_back(offsets[b], offsets[e]);
        }
      }
      for (const auto& [b, e] : ranges) {
        if (e <= b) continue;  // tokenizers drops empty splits
        if (step.kind == PreTokenizerStep::kByteLevel) {
          std::string mapped;
          mapped.reserve((e - b) * 2);
          for (size_t i = b; i < e; ++i) mapped += Alphabet().byte_to_utf8[static_cast<uint8_t>(piece[i])];
          next.push_back(std::move(mapped));
        } else {
          next.push_back(piece.substr(b, e - b));
        }
      }
    }
    pieces = std::move(next);
  }
  return pieces;
}

void HfByteLevelTokenizer::TokenizeWord(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto it = vocab_.find(word); it != vocab_.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  // BPE::merge_word: one symbol per character (byte fallback / unk for unknown ones).
  struct Symbol {
    int32_t id;
    int prev, next;
    size_t len;
  };
  std::vector<Symbol> symbols;
  auto add = [&](int32_t id, size_t len) {
    const int index = static_cast<int>(symbols.size());
    if (!symbols.empty()) symbols.back().next = index;
    symbols.push_back(Symbol{id, index - 1, -1, len});
  };
  int32_t unk = -1;
  size_t unk_len = 0;
  for (size_t i = 0; i < word.size();) {
    const Utf8Char c = DecodeUtf8(word, i);
    const std::string_view ch = word.substr(i, c.length);
    i += c.length;
    if (auto it = vocab_.find(ch); it != vocab_.end()) {
      if (unk >= 0) {
        add(unk, unk_len);
        unk = -1;
      }
      add(it->second, ch.size());
      continue;
    }
    if (byte_fallback_) {
      std::vector<int32_t> bytes;
      for (char b : ch) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", static_cast<uint8_t>(b));
        auto it = vocab_.find(std::string_view(name));
        if (it == vocab_.end()) break;
        bytes.push_back(it->second);
      }
      if (bytes.size() == ch.size()) {
        for (int32_t id : bytes) add(id, 1);
        continue;
      }
    }
    if (model_unk_ >= 0) {
      if (unk >= 0 && fuse_unk_) {
        unk_len += ch.size();
      } else {
        if (unk >= 0) add(unk, unk_len);
        unk = model_unk_;
        unk_len = ch.size();
      }
    }
  }
  if (unk >= 0) add(unk, unk_len);

  // Word::merge_all: lowest rank first, ties leftmost; stale entries are skipped.
  struct Merge {
    int pos;
    int32_t rank;
    int32_t new_id;
  };
  struct MergeAfter {
    bool operator()(const Merge& a, const Merge& b) const {
      return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
    }
  };
  auto find_merge = [&](int32_t a, int32_t b) -> const std::pair<int32_t, int32_t>* {
    auto it = merges_.find((static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b));
    return it == merges_.end() ? nullptr : &it->second;
  };
  std::priority_queue<Merge, std::vector<Merge>, MergeAfter> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const auto* m = find_merge(symbols[i].id, symbols[i + 1].id)) {
      queue.push(Merge{static_cast<int>(i), m->first, m->second});
    }
  }
  while (!queue.empty()) {
    const Merge top = queue.top();
    queue.pop();
    Symbol& cur = symbols[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    const int next_pos = cur.next;
    const Symbol right = symbols[next_pos];
    const auto* m = find_merge(cur.id, right.id);
    if (m == nullptr || m->second != top.new_id) continue;  // expired
    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    symbols[next_pos].len = 0;
    if (right.next > -1 && right.next < static_cast<int>(symbols.size())) {
      symbols[right.next].prev = top.pos;
    }
    if (cur.prev >= 0) {
      if (const auto* pm = find_merge(symbols[cur.prev].id, cur.id)) {
        queue.push(Merge{cur.prev, pm->first, pm->second});
      }
    }
    if (cur.next >= 0 && cur.next < static_cast<int>(symbols.size())) {
      if (const auto* nm = find_merge(cur.id, symbols[cur.next].id)) {
        queue.push(Merge{top.pos, nm->first, nm->second});
      }
    }
  }
  for (const Symbol& s : symbols) {
    if (s.len != 0) ids->push_back(s.id);
  }
}

std::vector<int32_t> HfByteLevelTokenizer::Encode(absl::string_view text_in,
                                                  bool add_special_tokens) const {
  const std::string_view text = Sv(text_in);
  std::vector<int32_t> body;
  for (const auto& seg : added_->Split(text)) {
    if (seg.token >= 0) {
      body.push_back(added_->tokens()[seg.token].id);
      continue;
    }
    std::string part(text.substr(seg.begin, seg.end - seg.begin));
    if (nfc_) part = NfcNormalize(part);
    for (const std::string& word : PreTokenize(std::move(part))) TokenizeWord(word, &body);
  }
  if (!add_special_tokens) return body;
  std::vector<int32_t> ids;
  ids.reserve(body.size() + 4);
  for (const TemplatePiece& p : template_) {
    if (p.is_sequence) {
      ids.insert(ids.end(), body.begin(), body.end());
    } else {
      ids.insert(ids.end(), p.ids.begin(), p.ids.end());
    }
  }
  return ids;
}

absl::StatusOr<std::string> HfByteLevelTokenizer::Decode(absl::Span<const int32_t> ids) const {
  // decoders::ByteLevel: a token whose characters are all in the byte alphabet becomes those
  // bytes, any other token its own UTF-8; then String::from_utf8_lossy.
  const ByteAlphabet& alphabet = Alphabet();
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size() || !has_token_[id]) {
      return absl::OutOfRangeError(absl::StrCat(source_, ": cannot decode id ", id,
                                                ": it names no token (vocab_size ", vocab_size(), ")"));
    }
    const std::string& token = id_to_token_[id];
    std::string mapped;
    bool all_mapped = true;
    for (size_t i = 0; i < token.size();) {
      const Utf8Char c = DecodeUtf8(token, i);
      auto it = c.valid ? alphabet.char_to_byte.find(c.cp) : alphabet.char_to_byte.end();
      if (it == alphabet.char_to_byte.end()) {
        all_mapped = false;
        break;
      }
      mapped.push_back(static_cast<char>(it->second));
      i += c.length;
    }
    bytes += all_mapped ? mapped : token;
  }
  return Utf8Lossy(bytes);
}

std::string HfByteLevelTokenizer::IdToPiece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "";
  return id_to_token_[id];
}

int32_t HfByteLevelTokenizer::PieceToId(absl::string_view piece) const {
  if (auto it = added_by_content_.find(Sv(piece)); it != added_by_content_.end()) return it->second;
  if (auto it = vocab_.find(Sv(piece)); it != vocab_.end()) return it->second;
  return -1;
}

bool HfByteLevelTokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size() && special_[id];
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> MakeHfTokenizer(std::string_view json_text,
                                                           std::string source,
                                                           const TokenizerConfig* config) {
  // The parsers check types before every access; this is a second line of defence against a
  // nlohmann::json exception escaping on some malformed file.
  try {
    return HfByteLevelTokenizer::Create(json_text, source, config);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": malformed tokenizer.json (", e.what(), ")"));
  }
}

}  // namespace quarry::tokenizer_internal
