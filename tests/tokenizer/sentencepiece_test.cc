// The SentencePiece implementation on the KJV fixture: every id in reference.json (5 sentences,
// 3 prompts, the first 32 eval ids and the sha256 of all 23,383 eval ids), decoding, special
// ids, and clear errors for missing or corrupt model files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "quarry/tokenizer.h"
#include "test_util.h"

namespace quarry {
namespace {

using namespace tokenizer_test;

class KjvSentencePiece : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto t = Tokenizer::FromSentencePieceFile(kKjvModel);
    ASSERT_TRUE(t.ok()) << t.status();
    tokenizer_ = t->release();
    reference_ = new nlohmann::json(ReadJson(kKjvModelDir + "/reference.json"));
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    delete reference_;
  }
  static Tokenizer* tokenizer_;
  static nlohmann::json* reference_;
};
Tokenizer* KjvSentencePiece::tokenizer_ = nullptr;
nlohmann::json* KjvSentencePiece::reference_ = nullptr;

TEST_F(KjvSentencePiece, SpecialIdsAndVocab) {
  EXPECT_EQ(tokenizer_->kind(), TokenizerKind::kSentencePiece);
  EXPECT_EQ(tokenizer_->vocab_size(), 4096);
  EXPECT_EQ(tokenizer_->unk_id(), 0);
  EXPECT_EQ(tokenizer_->bos_id(), 1);
  EXPECT_EQ(tokenizer_->eos_id(), 2);
  EXPECT_EQ(tokenizer_->pad_id(), -1);
  EXPECT_TRUE(tokenizer_->add_bos());
  EXPECT_FALSE(tokenizer_->add_eos());
  EXPECT_EQ(tokenizer_->IdToPiece(1), "<s>");
  EXPECT_EQ(tokenizer_->IdToPiece(13), "<0x0A>");  // ids 3..258 are the byte pieces
  EXPECT_EQ(tokenizer_->IdToPiece(3), "<0x00>");
  EXPECT_EQ(tokenizer_->IdToPiece(258), "<0xFF>");
  EXPECT_EQ(tokenizer_->IdToPiece(261), "\xE2\x96\x81the");
  EXPECT_EQ(tokenizer_->PieceToId("\xE2\x96\x81the"), 261);
  EXPECT_EQ(tokenizer_->PieceToId("no such piece"), -1);
  EXPECT_EQ(tokenizer_->IdToPiece(4096), "");
  EXPECT_TRUE(tokenizer_->IsSpecial(1));
  EXPECT_TRUE(tokenizer_->IsSpecial(0));
  EXPECT_FALSE(tokenizer_->IsSpecial(261));
}

TEST_F(KjvSentencePiece, ReferenceSentences) {
  const auto& items = (*reference_)["tokenizer"]["items"];
  ASSERT_EQ(items.size(), 5u);
  for (const auto& item : items) {
    const std::string text = item["text"].get<std::string>();
    SCOPED_TRACE(text);
    const std::vector<int32_t> ids = item["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tokenizer_->Encode(text, false), ids);
    EXPECT_EQ(tokenizer_->Encode(text, true), item["hf_ids_with_bos"].get<std::vector<int32_t>>());
    std::vector<std::string> pieces;
    for (int32_t id : ids) pieces.push_back(tokenizer_->IdToPiece(id));
    EXPECT_EQ(pieces, item["pieces"].get<std::vector<std::string>>());
    auto decoded = tokenizer_->Decode(ids);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded == text, item["decode_roundtrip"].get<bool>()) << *decoded;
  }
}

TEST_F(KjvSentencePiece, ReferencePrompts) {
  const auto& items = (*reference_)["prompts"]["items"];
  ASSERT_EQ(items.size(), 3u);
  for (const auto& item : items) {
    const std::string text = item["text"].get<std::string>();
    EXPECT_EQ(tokenizer_->Encode(text, true), item["ids"].get<std::vector<int32_t>>()) << text;
  }
}

TEST_F(KjvSentencePiece, WholeEvalTextMatchesReferenceIdsAndSha256) {
  const std::string text = ReadFileOrDie(kDataDir + "/kjv-eval.txt");
  const auto& eval = (*reference_)["eval"];
  ASSERT_EQ(Sha256Hex(text.data(), text.size()), eval["file_sha256"].get<std::string>())
      << "tests/data/kjv-eval.txt is not the file the reference was made from";
  const std::vector<int32_t> ids = tokenizer_->Encode(text, /*add_special_tokens=*/true);
  EXPECT_EQ(ids.size(), 23383u);
  EXPECT_EQ(static_cast<int64_t>(ids.size()), eval["num_ids_including_bos"].get<int64_t>());
  const auto head = eval["ids_head"].get<std::vector<int32_t>>();
  ASSERT_EQ(head.size(), 32u);
  ASSERT_GE(ids.size(), head.size());
  EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + 32), head);
  EXPECT_EQ(IdsSha256(ids), eval["ids_sha256_int32le"].get<std::string>());
  // The text is pure ASCII with '\n' line ends: it decodes back exactly.
  auto decoded = tokenizer_->Decode(ids);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, text);
}

TEST_F(KjvSentencePiece, EmptyAndWhitespaceInputs) {
  EXPECT_TRUE(tokenizer_->Encode("", false).empty());
  EXPECT_EQ(tokenizer_->Encode("", true), std::vector<int32_t>{1});
  // identity normalization, remove_extra_whitespaces=false: every space is kept as U+2581.
  EXPECT_EQ(tokenizer_->Encode(" ", false), (std::vector<int32_t>{4034, 4034}));
  // '\n' is not a piece: byte fallback <0x0A>.
  EXPECT_EQ(tokenizer_->Encode("\n", false), (std::vector<int32_t>{4034, 13}));
}

TEST_F(KjvSentencePiece, MalformedUtf8BecomesReplacementCharacterBytes) {
  // SentencePiece's normalizer replaces each invalid byte by U+FFFD (EF BF BD), which is not in
  // the vocabulary and falls back to its three byte pieces.
  const std::vector<int32_t> ids = tokenizer_->Encode(std::string("a\xFF", 2), false);
  EXPECT_EQ(ids, (std::vector<int32_t>{262, 3 + 0xEF, 3 + 0xBF, 3 + 0xBD}));
}

TEST_F(KjvSentencePiece, DecodeRejectsOutOfRangeIds) {
  auto d = tokenizer_->Decode({261, 4096});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(d.status().message().find("4096"), absl::string_view::npos);
  EXPECT_FALSE(tokenizer_->Decode({-1}).ok());
}

TEST_F(KjvSentencePiece, DecodeHandlesBytesControlAndUnknown) {
  // <s> is invisible, <unk> reads " ⁇ ", byte pieces form UTF-8 and a stray byte is U+FFFD.
  auto d = tokenizer_->Decode({1, 0, 3 + 0xC3, 3 + 0xA9, 3 + 0xC3});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, " \xE2\x81\x87 \xC3\xA9\xEF\xBF\xBD");
}

TEST(SentencePieceErrors, MissingFileIsNotFoundAndNamesThePath) {
  auto t = Tokenizer::FromSentencePieceFile("/nonexistent/dir/tokenizer.model");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(t.status().message().find("/nonexistent/dir/tokenizer.model"), absl::string_view::npos);
}

TEST(SentencePieceErrors, EmptyAndGarbageFilesAreInvalid) {
  auto empty = Tokenizer::FromSentencePieceBytes("", "empty.model");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("empty.model"), absl::string_view::npos);
  auto text = Tokenizer::FromSentencePieceBytes("{\"this is\": \"json\"}", "json.model");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(text.status().message().find("json.model"), absl::string_view::npos);
}

TEST(SentencePieceErrors, TruncatedModelNamesTheByteOffset) {
  const std::string bytes = ReadFileOrDie(kKjvModel);
  auto t = Tokenizer::FromSentencePieceBytes(absl::string_view(bytes.data(), bytes.size() - 7),
                                             "cut.model");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("cut.model"), absl::string_view::npos);
  EXPECT_NE(t.status().message().find("byte"), absl::string_view::npos) << t.status();
}

}  // namespace
}  // namespace quarry
