// Tokenizer <-> GGUF tokenizer.ggml.* metadata (gguf_tokenizer.h). Keys as llama.cpp's
// gguf-py/gguf/constants.py Keys.Tokenizer and src/llama-vocab.cpp read them; pre-tokenizer names
// as convert_hf_to_gguf.py get_vocab_base_pre assigns them.
#include "export/gguf_tokenizer.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "quarry/status.h"
#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/tokenizer_internal.h"

namespace quarry::exporter::gguf {
namespace {

namespace fs = std::filesystem;
using tokenizer_internal::SpModelProto;
using tokenizer_internal::SpPiece;

constexpr int32_t kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5;

// The Split regexes of the pre-tokenizers llama.cpp knows, by its name for them.
const std::vector<std::pair<std::string, std::string>>& KnownPreTokenizers() {
  static const auto* known = new std::vector<std::pair<std::string, std::string>>{
      {"llama-bpe",
       "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
       "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
      {"qwen2",
       "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
       "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
      {"gpt-2", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"},
  };
  return *known;
}

absl::StatusOr<std::string> ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", p.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<tokenizer_internal::TokenizerConfig> ReadTokenizerConfig(const std::string& dir) {
  auto text = ReadFile(fs::path(dir) / "tokenizer_config.json");
  if (!text.ok()) return std::nullopt;
  auto c = tokenizer_internal::ParseTokenizerConfig(*text, dir + "/tokenizer_config.json");
  if (!c.ok()) return std::nullopt;
  return *c;
}

void SetId(GgufWriter* w, const std::string& key, int64_t id, int64_t vocab) {
  if (id >= 0 && id < vocab) w->Set(key, Value::U32(static_cast<uint32_t>(id)));
}

// The regex of a tokenizer.json pre_tokenizer (Split, or Sequence holding one; a bare
// ByteLevel with use_regex is GPT-2's). Empty when there is none.
std::string PreTokenizerRegex(const nlohmann::json& pre) {
  if (!pre.is_object()) return "";
  const std::string type = pre.value("type", "");
  if (type == "Split" && pre.contains("pattern") && pre["pattern"].contains("Regex"))
    return pre["pattern"]["Regex"].get<std::string>();
  if (type == "ByteLevel" && pre.value("use_regex", true)) return KnownPreTokenizers()[2].second;
  if (type == "Sequence" && pre.contains("pretokenizers")) {
    for (const auto& p : pre["pretokenizers"]) {
      std::string r = PreTokenizerRegex(p);
      if (!r.empty()) return r;
    }
  }
  return "";
}

absl::Status AddBpe(const std::string& dir, const Tokenizer& tok, int64_t vocab_size,
                    GgufWriter* w) {
  const fs::path path = fs::path(dir) / "tokenizer.json";
  QUARRY_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.contains("model") || j["model"].value("type", "") != "BPE")
    return absl::UnimplementedError(absl::StrCat(
        "export_format gguf: ", path.string(), " is not a BPE tokenizer.json"));
  const std::string regex = PreTokenizerRegex(j.value("pre_tokenizer", nlohmann::json()));
  std::string pre;
  for (const auto& [name, r] : KnownPreTokenizers())
    if (r == regex) pre = name;
  if (pre.empty())
    return absl::UnimplementedError(absl::StrCat(
        "export_format gguf: ", path.string(), ": its pre-tokenizer regex is none llama.cpp "
        "knows (llama-bpe, qwen2, gpt-2), so llama.cpp would split text differently"));
  std::vector<std::string> tokens(static_cast<size_t>(vocab_size));
  std::vector<int32_t> types(static_cast<size_t>(vocab_size), kUnused);
  std::vector<bool> set(static_cast<size_t>(vocab_size), false);
  for (auto it = j["model"]["vocab"].begin(); it != j["model"]["vocab"].end(); ++it) {
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id >= vocab_size) continue;
    tokens[id] = it.key();
    types[id] = kNormal;
    set[id] = true;
  }
  if (j.contains("added_tokens")) {
    for (const auto& a : j["added_tokens"]) {
      const int64_t id = a.value("id", -1);
      if (id < 0 || id >= vocab_size) continue;
      tokens[id] = a.value("content", "");
      types[id] = a.value("special", false) ? kControl : kUserDefined;
      set[id] = true;
    }
  }
  for (int64_t i = 0; i < vocab_size; ++i)
    if (!set[i]) tokens[i] = absl::StrCat("[PAD", i, "]");
  std::vector<std::string> merges;
  for (const auto& m : j["model"].value("merges", nlohmann::json::array())) {
    if (m.is_string()) merges.push_back(m.get<std::string>());
    else if (m.is_array() && m.size() == 2)
      merges.push_back(absl::StrCat(m[0].get<std::string>(), " ", m[1].get<std::string>()));
  }
  w->Set("tokenizer.ggml.model", Value::Str("gpt2"));
  w->Set("tokenizer.ggml.pre", Value::Str(pre));
  w->Set("tokenizer.ggml.tokens", Value::StrArray(std::move(tokens)));
  w->Set("tokenizer.ggml.token_type", Value::I32Array(types));
  w->Set("tokenizer.ggml.merges", Value::StrArray(std::move(merges)));
  SetId(w, "tokenizer.ggml.bos_token_id", tok.bos_id(), vocab_size);
  SetId(w, "tokenizer.ggml.eos_token_id", tok.eos_id(), vocab_size);
  // add_bos: whether the tokenizer puts BOS in front (Llama 3's TemplateProcessing does).
  const std::vector<int32_t> with = tok.Encode("a", true), without = tok.Encode("a", false);
  const bool add_bos = with.size() > without.size() && tok.bos_id() >= 0 && with[0] == tok.bos_id();
  w->Set("tokenizer.ggml.add_bos_token", Value::Bool(add_bos));
  w->Set("tokenizer.ggml.add_eos_token", Value::Bool(false));
  return absl::OkStatus();
}

// ---- protobuf wire writer for rebuilding a SentencePiece ModelProto
void Varint(std::string* o, uint64_t v) {
  while (v >= 0x80) {
    o->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  o->push_back(static_cast<char>(v));
}
void Key(std::string* o, int field, int wire) { Varint(o, (static_cast<uint64_t>(field) << 3) | wire); }
void VarintField(std::string* o, int field, int64_t v) {
  Key(o, field, 0);
  Varint(o, static_cast<uint64_t>(v));  // negative int32: ten bytes, as protobuf writes them
}
void BytesField(std::string* o, int field, const std::string& s) {
  Key(o, field, 2);
  Varint(o, s.size());
  o->append(s);
}
void FloatField(std::string* o, int field, float f) {
  Key(o, field, 5);
  char b[4];
  std::memcpy(b, &f, 4);
  o->append(b, 4);
}

bool BoolKey(const GgufFile& f, const std::string& key, bool dflt) {
  auto v = f.GetBool(key);
  return v.ok() ? *v : dflt;
}
int64_t IdKey(const GgufFile& f, const std::string& key) {
  auto v = f.GetUInt(key);
  return v.ok() ? static_cast<int64_t>(*v) : -1;
}

}  // namespace

absl::Status AddTokenizerMetadata(const std::string& dir, int64_t vocab_size, GgufWriter* w) {
  const fs::path sp_path = fs::path(dir) / "tokenizer.model";
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "tokenizer.json", ec)) {
    // A tokenizer.json wins when it is a byte-level BPE (Tokenizer::FromModelDir's rule).
    QUARRY_ASSIGN_OR_RETURN(auto tok, Tokenizer::FromModelDir(dir));
    if (tok->kind() == TokenizerKind::kHfByteLevelBpe) return AddBpe(dir, *tok, vocab_size, w);
  }
  if (!fs::exists(sp_path, ec))
    return absl::NotFoundError(absl::StrCat("export_format gguf: ", dir, " has neither "
                                            "tokenizer.model nor a BPE tokenizer.json"));
  QUARRY_ASSIGN_OR_RETURN(std::string bytes, ReadFile(sp_path));
  QUARRY_ASSIGN_OR_RETURN(SpModelProto m, tokenizer_internal::ParseSpModelProto(bytes, sp_path.string()));
  if (m.trainer_spec.model_type != tokenizer_internal::SpTrainerSpec::kBpe &&
      m.trainer_spec.model_type != tokenizer_internal::SpTrainerSpec::kUnigram)
    return absl::UnimplementedError(absl::StrCat(
        "export_format gguf: ", sp_path.string(), ": SentencePiece model type ",
        static_cast<int>(m.trainer_spec.model_type), " (llama.cpp's \"llama\" tokenizer reads BPE "
        "and unigram pieces)"));
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (const SpPiece& p : m.pieces) {
    tokens.push_back(p.piece);
    scores.push_back(p.score);
    types.push_back(static_cast<int32_t>(p.type));
  }
  if (static_cast<int64_t>(tokens.size()) > vocab_size)
    return absl::InvalidArgumentError(absl::StrCat(
        "export_format gguf: ", sp_path.string(), " has ", tokens.size(),
        " pieces, more than the model's vocab_size ", vocab_size));
  for (int64_t i = static_cast<int64_t>(tokens.size()); i < vocab_size; ++i) {
    tokens.push_back(absl::StrCat("[PAD", i, "]"));
    scores.push_back(-1000.0f);
    types.push_back(kUnused);
  }
  const auto cfg = ReadTokenizerConfig(dir);
  const auto& t = m.trainer_spec;
  w->Set("tokenizer.ggml.model", Value::Str("llama"));
  w->Set("tokenizer.ggml.tokens", Value::StrArray(std::move(tokens)));
  w->Set("tokenizer.ggml.scores", Value::F32Array(scores));
  w->Set("tokenizer.ggml.token_type", Value::I32Array(types));
  SetId(w, "tokenizer.ggml.bos_token_id", t.bos_id, vocab_size);
  SetId(w, "tokenizer.ggml.eos_token_id", t.eos_id, vocab_size);
  SetId(w, "tokenizer.ggml.unknown_token_id", t.unk_id, vocab_size);
  SetId(w, "tokenizer.ggml.padding_token_id", t.pad_id, vocab_size);
  w->Set("tokenizer.ggml.add_bos_token", Value::Bool(cfg && cfg->add_bos_token ? *cfg->add_bos_token : true));
  w->Set("tokenizer.ggml.add_eos_token", Value::Bool(cfg && cfg->add_eos_token ? *cfg->add_eos_token : false));
  w->Set("tokenizer.ggml.add_space_prefix", Value::Bool(m.normalizer_spec.add_dummy_prefix));
  w->Set("tokenizer.ggml.remove_extra_whitespaces",
         Value::Bool(m.normalizer_spec.remove_extra_whitespaces));
  if (!m.normalizer_spec.precompiled_charsmap.empty()) {
    Value v;
    v.type = ValueType::kArray;
    v.array_type = ValueType::kU8;
    for (unsigned char ch : m.normalizer_spec.precompiled_charsmap) {
      Value b;
      b.type = ValueType::kU8;
      b.u = ch;
      v.array.push_back(b);
    }
    w->Set("tokenizer.ggml.precompiled_charsmap", std::move(v));
  }
  // What llama.cpp has no key for, so that Quarry's reader rebuilds the same model.
  w->Set("quarry.tokenizer.sp.model_type", Value::I32(static_cast<int32_t>(t.model_type)));
  w->Set("quarry.tokenizer.sp.split_digits", Value::Bool(t.split_digits));
  w->Set("quarry.tokenizer.sp.byte_fallback", Value::Bool(t.byte_fallback));
  w->Set("quarry.tokenizer.sp.split_by_whitespace", Value::Bool(t.split_by_whitespace));
  w->Set("quarry.tokenizer.sp.split_by_number", Value::Bool(t.split_by_number));
  w->Set("quarry.tokenizer.sp.split_by_unicode_script", Value::Bool(t.split_by_unicode_script));
  w->Set("quarry.tokenizer.sp.treat_whitespace_as_suffix", Value::Bool(t.treat_whitespace_as_suffix));
  w->Set("quarry.tokenizer.sp.allow_whitespace_only_pieces", Value::Bool(t.allow_whitespace_only_pieces));
  w->Set("quarry.tokenizer.sp.escape_whitespaces", Value::Bool(m.normalizer_spec.escape_whitespaces));
  w->Set("quarry.tokenizer.sp.normalizer_name", Value::Str(m.normalizer_spec.name));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerFromGguf(const GgufFile& f) {
  QUARRY_ASSIGN_OR_RETURN(std::string model, f.GetString("tokenizer.ggml.model"));
  const Value* tokens = f.Find("tokenizer.ggml.tokens");
  if (tokens == nullptr || tokens->type != ValueType::kArray || tokens->array_type != ValueType::kString)
    return absl::InvalidArgumentError(absl::StrCat(f.path(), ": tokenizer.ggml.tokens is not a string array"));
  const Value* types = f.Find("tokenizer.ggml.token_type");
  const size_t n = tokens->array.size();
  auto type_of = [&](size_t i) -> int64_t {
    if (types == nullptr || i >= types->array.size()) return kNormal;
    return types->array[i].i;
  };
  if (model == "llama") {
    const Value* scores = f.Find("tokenizer.ggml.scores");
    std::string proto;
    for (size_t i = 0; i < n; ++i) {
      std::string piece;
      BytesField(&piece, 1, tokens->array[i].s);
      FloatField(&piece, 2, scores && i < scores->array.size() ? static_cast<float>(scores->array[i].f) : 0.0f);
      int64_t ty = type_of(i);
      if (ty < 1 || ty > 6) ty = kNormal;
      VarintField(&piece, 3, ty);
      BytesField(&proto, 1, piece);
    }
    auto sp_int = [&](const std::string& k, int64_t dflt) {
      const Value* v = f.Find("quarry.tokenizer.sp." + k);
      return v ? v->i : dflt;
    };
    auto sp_bool = [&](const std::string& k, bool dflt) { return BoolKey(f, "quarry.tokenizer.sp." + k, dflt); };
    bool has_bytes = false;
    for (size_t i = 0; i < n; ++i) has_bytes |= type_of(i) == 6;
    std::string trainer;
    VarintField(&trainer, 3, sp_int("model_type", tokenizer_internal::SpTrainerSpec::kBpe));
    VarintField(&trainer, 4, static_cast<int64_t>(n));
    VarintField(&trainer, 21, sp_bool("split_by_unicode_script", true));
    VarintField(&trainer, 22, sp_bool("split_by_whitespace", true));
    VarintField(&trainer, 23, sp_bool("split_by_number", true));
    VarintField(&trainer, 24, sp_bool("treat_whitespace_as_suffix", false));
    VarintField(&trainer, 25, sp_bool("split_digits", false));
    VarintField(&trainer, 26, sp_bool("allow_whitespace_only_pieces", false));
    VarintField(&trainer, 35, sp_bool("byte_fallback", has_bytes));
    const int64_t unk = IdKey(f, "tokenizer.ggml.unknown_token_id");
    const int64_t bos = IdKey(f, "tokenizer.ggml.bos_token_id");
    const int64_t eos = IdKey(f, "tokenizer.ggml.eos_token_id");
    const int64_t pad = IdKey(f, "tokenizer.ggml.padding_token_id");
    VarintField(&trainer, 40, unk >= 0 ? unk : 0);
    VarintField(&trainer, 41, bos);
    VarintField(&trainer, 42, eos);
    VarintField(&trainer, 43, pad);
    auto piece_or = [&](int64_t id, const char* dflt) {
      return id >= 0 && static_cast<size_t>(id) < n ? tokens->array[id].s : std::string(dflt);
    };
    BytesField(&trainer, 45, piece_or(unk >= 0 ? unk : 0, "<unk>"));
    BytesField(&trainer, 46, piece_or(bos, "<s>"));
    BytesField(&trainer, 47, piece_or(eos, "</s>"));
    BytesField(&trainer, 48, piece_or(pad, "<pad>"));
    BytesField(&proto, 2, trainer);
    std::string norm;
    const Value* name = f.Find("quarry.tokenizer.sp.normalizer_name");
    BytesField(&norm, 1, name ? name->s : std::string("identity"));
    if (const Value* cm = f.Find("tokenizer.ggml.precompiled_charsmap")) {
      std::string bytes;
      for (const Value& b : cm->array) bytes.push_back(static_cast<char>(b.u));
      BytesField(&norm, 2, bytes);
    }
    VarintField(&norm, 3, BoolKey(f, "tokenizer.ggml.add_space_prefix", true));
    VarintField(&norm, 4, BoolKey(f, "tokenizer.ggml.remove_extra_whitespaces", false));
    VarintField(&norm, 5, sp_bool("escape_whitespaces", true));
    BytesField(&proto, 3, norm);
    tokenizer_internal::TokenizerConfig cfg;
    cfg.source = f.path();
    cfg.add_bos_token = BoolKey(f, "tokenizer.ggml.add_bos_token", true);
    cfg.add_eos_token = BoolKey(f, "tokenizer.ggml.add_eos_token", false);
    // Control tokens are matched in text and never split, as LlamaTokenizer does with
    // tokenizer_config.json's added_tokens_decoder.
    for (size_t i = 0; i < n; ++i) {
      if (type_of(i) != kControl && type_of(i) != kUserDefined) continue;
      tokenizer_internal::AddedToken a;
      a.id = static_cast<int32_t>(i);
      a.content = tokens->array[i].s;
      a.special = type_of(i) == kControl;
      cfg.added_tokens.push_back(a);
    }
    return tokenizer_internal::MakeSentencePieceTokenizer(proto, f.path(), &cfg);
  }
  if (model == "gpt2") {
    QUARRY_ASSIGN_OR_RETURN(std::string pre, f.GetString("tokenizer.ggml.pre"));
    std::string regex;
    for (const auto& [name, r] : KnownPreTokenizers())
      if (name == pre) regex = r;
    if (regex.empty())
      return absl::UnimplementedError(absl::StrCat(f.path(), ": tokenizer.ggml.pre '", pre,
                                                   "' (this reader knows llama-bpe, qwen2, gpt-2)"));
    nlohmann::json j;
    nlohmann::json vocab = nlohmann::json::object(), added = nlohmann::json::array();
    for (size_t i = 0; i < n; ++i) {
      const int64_t ty = type_of(i);
      if (ty == kControl || ty == kUserDefined) {
        added.push_back({{"id", i}, {"content", tokens->array[i].s}, {"single_word", false},
                         {"lstrip", false}, {"rstrip", false}, {"normalized", ty != kControl},
                         {"special", ty == kControl}});
      }
      if (ty != kUnused) vocab[tokens->array[i].s] = i;
    }
    nlohmann::json merges = nlohmann::json::array();
    if (const Value* m = f.Find("tokenizer.ggml.merges"))
      for (const Value& v : m->array) merges.push_back(v.s);
    j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges},
                  {"ignore_merges", pre == "llama-bpe"}, {"byte_fallback", false}};
    j["added_tokens"] = added;
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = {
        {"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
    j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    const int64_t bos = IdKey(f, "tokenizer.ggml.bos_token_id");
    if (BoolKey(f, "tokenizer.ggml.add_bos_token", false) && bos >= 0 && static_cast<size_t>(bos) < n) {
      const std::string b = tokens->array[bos].s;
      j["post_processor"] = {{"type", "TemplateProcessing"},
                             {"single", {{{"SpecialToken", {{"id", b}, {"type_id", 0}}}},
                                         {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                             {"pair", {{{"SpecialToken", {{"id", b}, {"type_id", 0}}}},
                                       {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                       {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
                             {"special_tokens", {{b, {{"id", b}, {"ids", {bos}}, {"tokens", {b}}}}}}};
    } else {
      j["post_processor"] = nullptr;
    }
    tokenizer_internal::TokenizerConfig cfg;
    cfg.source = f.path();
    if (bos >= 0 && static_cast<size_t>(bos) < n) {
      cfg.bos_token.state = tokenizer_internal::SpecialTokenEntry::kSet;
      cfg.bos_token.content = tokens->array[bos].s;
    }
    const int64_t eos = IdKey(f, "tokenizer.ggml.eos_token_id");
    if (eos >= 0 && static_cast<size_t>(eos) < n) {
      cfg.eos_token.state = tokenizer_internal::SpecialTokenEntry::kSet;
      cfg.eos_token.content = tokens->array[eos].s;
    }
    std::string json;
    try {
      json = j.dump();
    } catch (const nlohmann::json::exception& e) {  // type_error.316: a token is not UTF-8
      return absl::InvalidArgumentError(absl::StrCat(
          f.path(), ": tokenizer.ggml.tokens / merges of a gpt2 tokenizer must be UTF-8: ",
          e.what()));
    }
    return tokenizer_internal::MakeHfTokenizer(json, f.path(), &cfg);
  }
  return absl::UnimplementedError(absl::StrCat(f.path(), ": tokenizer.ggml.model '", model,
                                               "' (this reader reads llama and gpt2)"));
}

}  // namespace quarry::exporter::gguf
