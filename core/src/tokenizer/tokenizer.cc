// quarry::Tokenizer's factories: reading files, tokenizer_config.json, picking the tokenizer of
// a model directory.
#include "quarry/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "tokenizer/tokenizer_internal.h"

namespace quarry {
namespace {

namespace fs = std::filesystem;
using tokenizer_internal::TokenizerConfig;

std::string_view Sv(absl::string_view s) { return std::string_view(s.data(), s.size()); }

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  if (fs::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory, not a file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot open for reading"));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return std::move(ss).str();
}

}  // namespace

namespace tokenizer_internal {

namespace {
absl::StatusOr<TokenizerConfig> ParseTokenizerConfigUnsafe(std::string_view json,
                                                           const std::string& source) {
  TokenizerConfig config;
  config.source = source;
  nlohmann::json j = nlohmann::json::parse(json.begin(), json.end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON"));
  }
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": expected a JSON object"));
  }
  auto bad = [&](const std::string& key, const char* expected) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": '", key, "' should be ", expected));
  };
  auto read_bool = [&](const char* key, std::optional<bool>* out) -> absl::Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return absl::OkStatus();
    if (!it->is_boolean()) return bad(key, "true, false or null");
    *out = it->get<bool>();
    return absl::OkStatus();
  };
  auto read_special = [&](const char* key, SpecialTokenEntry* out) -> absl::Status {
    auto it = j.find(key);
    if (it == j.end()) return absl::OkStatus();
    if (it->is_null()) {
      out->state = SpecialTokenEntry::kNull;
    } else if (it->is_string()) {
      out->state = SpecialTokenEntry::kSet;
      out->content = it->get<std::string>();
    } else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
      out->state = SpecialTokenEntry::kSet;
      out->content = (*it)["content"].get<std::string>();
    } else {
      return bad(key, "a string, an object with \"content\", or null");
    }
    return absl::OkStatus();
  };
  for (auto [key, out] : {std::pair{"add_bos_token", &config.add_bos_token},
                          std::pair{"add_eos_token", &config.add_eos_token},
                          std::pair{"legacy", &config.legacy},
                          std::pair{"add_prefix_space", &config.add_prefix_space}}) {
    if (absl::Status s = read_bool(key, out); !s.ok()) return s;
  }
  for (auto [key, out] : {std::pair{"bos_token", &config.bos_token},
                          std::pair{"eos_token", &config.eos_token},
                          std::pair{"pad_token", &config.pad_token},
                          std::pair{"unk_token", &config.unk_token}}) {
    if (absl::Status s = read_special(key, out); !s.ok()) return s;
  }
  if (auto it = j.find("tokenizer_class"); it != j.end() && it->is_string()) {
    config.tokenizer_class = it->get<std::string>();
  }
  if (auto it = j.find("added_tokens_decoder"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return bad("added_tokens_decoder", "an object {id: token}");
    for (const auto& [id_text, tok] : it->items()) {
      const std::string where = absl::StrCat("added_tokens_decoder.", id_text);
      AddedToken a;
      size_t used = 0;
      try {
        a.id = std::stoi(id_text, &used);
      } catch (...) {
        used = 0;
      }
      if (used != id_text.size() || a.id < 0) return bad(where, "keyed by a non-negative id");
      if (!tok.is_object() || !tok.contains("content") || !tok["content"].is_string() ||
          tok["content"].get<std::string>().empty()) {
        return bad(where, "an object with a non-empty \"content\" string");
      }
      a.content = tok["content"].get<std::string>();
      // (An init-capture: clang before 16 cannot capture a structured binding.)
      auto flag = [&entry = tok](const char* name) {
        auto f = entry.find(name);
        return f != entry.end() && f->is_boolean() && f->get<bool>();
      };
      a.lstrip = flag("lstrip");
      a.rstrip = flag("rstrip");
      a.single_word = flag("single_word");
      a.normalized = flag("normalized");
      a.special = flag("special");
      config.added_tokens.push_back(std::move(a));
    }
    std::sort(config.added_tokens.begin(), config.added_tokens.end(),
              [](const AddedToken& x, const AddedToken& y) { return x.id < y.id; });
  }
  return config;
}
}  // namespace

absl::StatusOr<TokenizerConfig> ParseTokenizerConfig(std::string_view json, std::string source) {
  try {
    return ParseTokenizerConfigUnsafe(json, source);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": malformed (", e.what(), ")"));
  }
}

}  // namespace tokenizer_internal

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromSentencePieceFile(
    const std::string& path) {
  auto bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  return tokenizer_internal::MakeSentencePieceTokenizer(*bytes, path, nullptr);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromSentencePieceBytes(
    absl::string_view bytes, absl::string_view source) {
  return tokenizer_internal::MakeSentencePieceTokenizer(Sv(bytes), std::string(source), nullptr);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromHfJson(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  return tokenizer_internal::MakeHfTokenizer(*text, path, nullptr);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromHfJsonString(absl::string_view json,
                                                                        absl::string_view source) {
  return tokenizer_internal::MakeHfTokenizer(Sv(json), std::string(source), nullptr);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromModelDir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(dir, ": not a directory"));
  }
  const std::string json_path = (fs::path(dir) / "tokenizer.json").string();
  const std::string model_path = (fs::path(dir) / "tokenizer.model").string();
  const std::string config_path = (fs::path(dir) / "tokenizer_config.json").string();

  std::optional<TokenizerConfig> config;
  if (fs::exists(config_path, ec)) {
    auto text = ReadFile(config_path);
    if (!text.ok()) return text.status();
    auto parsed = tokenizer_internal::ParseTokenizerConfig(*text, config_path);
    if (!parsed.ok()) return parsed.status();
    config = *std::move(parsed);
  }
  const TokenizerConfig* cfg = config ? &*config : nullptr;
  const bool has_model = fs::exists(model_path, ec);
  if (fs::exists(json_path, ec)) {
    auto text = ReadFile(json_path);
    if (!text.ok()) return text.status();
    auto hf = tokenizer_internal::MakeHfTokenizer(*text, json_path, cfg);
    // A tokenizer.json that is not byte-level BPE (Llama 2's Metaspace BPE, ...) ships next to
    // the tokenizer.model it was converted from: use that instead.
    if (hf.ok() || !(absl::IsUnimplemented(hf.status()) && has_model)) return hf;
  }
  if (has_model) {
    auto bytes = ReadFile(model_path);
    if (!bytes.ok()) return bytes.status();
    return tokenizer_internal::MakeSentencePieceTokenizer(*bytes, model_path, cfg);
  }
  return absl::NotFoundError(
      absl::StrCat(dir, ": no tokenizer.json or tokenizer.model in the model directory"));
}

}  // namespace quarry
