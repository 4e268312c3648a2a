// Tokenizer::FromModelDir: which file a model directory's tokenizer comes from, and how
// tokenizer_config.json changes it (LlamaTokenizer's added-token splitting, legacy, add_bos /
// add_eos, special tokens, LlamaTokenizerFast's template), with clear errors.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "quarry/tokenizer.h"
#include "test_util.h"

namespace quarry {
namespace {

using namespace tokenizer_test;
using json = nlohmann::json;
using Ids = std::vector<int32_t>;
namespace fs = std::filesystem;

class ModelDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("quarry_tokdir_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto sp = Tokenizer::FromSentencePieceFile(kKjvModel);
    ASSERT_TRUE(sp.ok());
    sp_ = *std::move(sp);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void CopyKjv(const std::string& name) { fs::copy_file(kKjvModelDir + "/" + name, dir_ / name); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  json KjvConfig() { return ReadJson(kKjvModelDir + "/tokenizer_config.json"); }
  std::unique_ptr<Tokenizer> Open() {
    auto t = Tokenizer::FromModelDir(dir_.string());
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *std::move(t) : nullptr;
  }
  // sp.encode(text), no special tokens.
  Ids Sp(const std::string& text) { return sp_->Encode(text, false); }
  static Ids Cat(std::initializer_list<Ids> parts) {
    Ids out;
    for (const Ids& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
  }

  fs::path dir_;
  std::unique_ptr<Tokenizer> sp_;
};

TEST_F(ModelDir, KjvFixtureIsLlamaTokenizer) {
  auto t = Tokenizer::FromModelDir(kKjvModelDir);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->kind(), TokenizerKind::kSentencePiece);
  EXPECT_EQ((*t)->source(), kKjvModelDir + "/tokenizer.model");
  EXPECT_EQ((*t)->bos_id(), 1);
  EXPECT_EQ((*t)->eos_id(), 2);
  EXPECT_EQ((*t)->unk_id(), 0);
  EXPECT_EQ((*t)->pad_id(), -1);  // "pad_token": null
  EXPECT_TRUE((*t)->add_bos());
  EXPECT_FALSE((*t)->add_eos());
  const auto reference = ReadJson(kKjvModelDir + "/reference.json");
  for (const auto& item : reference["tokenizer"]["items"]) {
    EXPECT_EQ((*t)->Encode(item["text"].get<std::string>(), true),
              item["hf_ids_with_bos"].get<Ids>());
  }
  // LlamaTokenizer (legacy) splits on its added tokens and sp.encode()s each span, so the span
  // after </s> gets its own dummy prefix.
  EXPECT_EQ((*t)->Encode("Hello</s>world", true), Cat({{1}, Sp("Hello"), {2}, Sp("world")}));
  EXPECT_EQ((*t)->Encode("<s><s>", false), (Ids{1, 1}));
  // A bare tokenizer.model encodes the same text as characters.
  EXPECT_EQ(sp_->Encode("Hello</s>world", true), Cat({{1}, Sp("Hello</s>world")}));
}

TEST_F(ModelDir, AddBosAddEosAndLegacyFromConfig) {
  CopyKjv("tokenizer.model");
  json config = KjvConfig();
  config["add_bos_token"] = false;
  config["add_eos_token"] = true;
  Write("tokenizer_config.json", config.dump());
  auto t = Open();
  ASSERT_NE(t, nullptr);
  EXPECT_FALSE(t->add_bos());
  EXPECT_TRUE(t->add_eos());
  EXPECT_EQ(t->Encode("In the beginning", true), Cat({Sp("In the beginning"), {2}}));

  config["legacy"] = false;
  Write("tokenizer_config.json", config.dump());
  t = Open();
  ASSERT_NE(t, nullptr);
  // legacy=False: only the start of the text gets the dummy prefix, not the span after </s>.
  const Ids ids = t->Encode("Hello</s>world", false);
  const Ids hello = Sp("Hello");
  ASSERT_GT(ids.size(), hello.size() + 1);
  EXPECT_EQ(Ids(ids.begin(), ids.begin() + hello.size()), hello);
  EXPECT_EQ(ids[hello.size()], 2);
  const Ids tail(ids.begin() + hello.size() + 1, ids.end());
  EXPECT_NE(tail, Sp("world"));
  EXPECT_NE(t->IdToPiece(tail[0]).rfind("\xE2\x96\x81", 0), 0u);  // no leading ▁
  auto decoded = t->Decode(tail);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, "world");
}

TEST_F(ModelDir, AddedTokenBeyondTheModelsPieces) {
  CopyKjv("tokenizer.model");
  json config = KjvConfig();
  config["added_tokens_decoder"]["4096"] = {{"content", "<pad>"}, {"lstrip", false},
                                            {"rstrip", false}, {"normalized", false},
                                            {"single_word", false}, {"special", true}};
  config["pad_token"] = "<pad>";
  Write("tokenizer_config.json", config.dump());
  auto t = Open();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->vocab_size(), 4097);
  EXPECT_EQ(t->pad_id(), 4096);
  EXPECT_EQ(t->IdToPiece(4096), "<pad>");
  EXPECT_TRUE(t->IsSpecial(4096));
  EXPECT_EQ(t->Encode("In<pad>", false), Cat({Sp("In"), {4096}}));
  auto d = t->Decode({1029, 4096, 261});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, "In<pad> the");
}

TEST_F(ModelDir, TokenizerJsonWinsWhenByteLevel) {
  CopyKjv("tokenizer.model");
  fs::copy_file(kTokenizerData + "/gpt2_tiny.json", dir_ / "tokenizer.json");
  Write("tokenizer_config.json",
        json({{"bos_token", "<|endoftext|>"}, {"eos_token", {{"content", "<|endoftext|>"}}},
              {"tokenizer_class", "GPT2Tokenizer"}}).dump());
  auto t = Open();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->kind(), TokenizerKind::kHfByteLevelBpe);
  EXPECT_EQ(t->bos_id(), 276);
  EXPECT_EQ(t->eos_id(), 276);
  EXPECT_FALSE(t->add_bos());  // GPT-2 adds nothing
  EXPECT_EQ(t->Encode("hello", true), (Ids{260}));
}

TEST_F(ModelDir, LlamaTokenizerFastTemplateFollowsConfig) {
  fs::copy_file(kTokenizerData + "/llama3_tiny.json", dir_ / "tokenizer.json");
  Write("tokenizer_config.json",
        json({{"bos_token", "<|begin_of_text|>"}, {"eos_token", "<|end_of_text|>"},
              {"add_bos_token", false}, {"add_eos_token", true},
              {"tokenizer_class", "LlamaTokenizerFast"}}).dump());
  auto t = Open();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->Encode("hello", true), (Ids{260, 277}));
  EXPECT_FALSE(t->add_bos());
  EXPECT_TRUE(t->add_eos());
  // Other classes keep tokenizer.json's template.
  Write("tokenizer_config.json",
        json({{"bos_token", "<|begin_of_text|>"}, {"eos_token", "<|eot_id|>"},
              {"add_bos_token", false}, {"tokenizer_class", "PreTrainedTokenizerFast"}}).dump());
  t = Open();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->Encode("hello", true), (Ids{276, 260}));
  EXPECT_EQ(t->eos_id(), 278);
}

TEST_F(ModelDir, NonByteLevelTokenizerJsonFallsBackToTokenizerModel) {
  CopyKjv("tokenizer.model");
  CopyKjv("tokenizer_config.json");
  json metaspace = ReadJson(kTokenizerData + "/gpt2_tiny.json");
  metaspace["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}};
  Write("tokenizer.json", metaspace.dump());
  auto t = Open();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->kind(), TokenizerKind::kSentencePiece);
  fs::remove(dir_ / "tokenizer.model");
  auto missing = Tokenizer::FromModelDir(dir_.string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(missing.status().message().find("tokenizer.json"), absl::string_view::npos);
}

TEST_F(ModelDir, Errors) {
  auto empty = Tokenizer::FromModelDir(dir_.string());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(empty.status().message().find(dir_.string()), absl::string_view::npos);
  EXPECT_EQ(Tokenizer::FromModelDir("/nonexistent/model").status().code(),
            absl::StatusCode::kNotFound);

  CopyKjv("tokenizer.model");
  Write("tokenizer_config.json", "{\"add_bos_token\": tru");
  auto bad = Tokenizer::FromModelDir(dir_.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("tokenizer_config.json"), absl::string_view::npos);

  Write("tokenizer_config.json", "{\"add_bos_token\": \"yes\"}");
  bad = Tokenizer::FromModelDir(dir_.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'add_bos_token'"), absl::string_view::npos) << bad.status();

  Write("tokenizer_config.json", "{\"bos_token\": \"<bos>\"}");
  bad = Tokenizer::FromModelDir(dir_.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bos_token '<bos>' is not in the vocabulary"),
            absl::string_view::npos) << bad.status();

  Write("tokenizer_config.json", "{\"added_tokens_decoder\": {\"x\": {\"content\": \"a\"}}}");
  bad = Tokenizer::FromModelDir(dir_.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("added_tokens_decoder.x"), absl::string_view::npos) << bad.status();

  fs::remove(dir_ / "tokenizer_config.json");
  Write("tokenizer.model", "not a model");
  bad = Tokenizer::FromModelDir(dir_.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("tokenizer.model"), absl::string_view::npos) << bad.status();
}

}  // namespace
}  // namespace quarry
