// Hugging Face tokenizer.json byte-level BPE on the hand-made fixtures of
// tests/data/tokenizers (made by tests/tools/make_tokenizer_fixtures.py: byte characters have
// id = byte value, "Ġ" = 32; merges 256.. "Ġt", "he", "ll", "llo", "hello", "Ġthe", "Ġw", "or",
// "Ġwor", "ld", "Ġworld", "'s", "in", "ing", "Ã©" (é), "ĠĠ", "aa", "ĊĊ", "34" in rank order,
// and "xyz" = 275 reachable by no merge). Expected ids are derived by hand in the comments.
// Variants (add_prefix_space, Qwen2-style NFC + \p{N}, Roberta template, Digits, Split
// behaviors) are the fixtures edited in the test. Properties: decode(encode(x)) == x for
// random UTF-8 and special tokens are never split.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>

#include "quarry/tokenizer.h"
#include "test_util.h"
#include "tokenizer/unicode.h"

namespace quarry {
namespace {

using namespace tokenizer_test;
using json = nlohmann::json;
using Ids = std::vector<int32_t>;

json Fixture(const std::string& name) { return ReadJson(kTokenizerData + "/" + name + ".json"); }

std::unique_ptr<Tokenizer> Load(const json& j, const std::string& name = "test.json") {
  auto t = Tokenizer::FromHfJsonString(j.dump(), name);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

TEST(HfGpt2, LoadsFromFile) {
  auto t = Tokenizer::FromHfJson(kTokenizerData + "/gpt2_tiny.json");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->kind(), TokenizerKind::kHfByteLevelBpe);
  EXPECT_EQ((*t)->vocab_size(), 277);
  EXPECT_EQ((*t)->IdToPiece(32), "\xC4\xA0");  // "Ġ"
  EXPECT_EQ((*t)->IdToPiece(266), "\xC4\xA0world");
  EXPECT_EQ((*t)->PieceToId("<|endoftext|>"), 276);
  EXPECT_TRUE((*t)->IsSpecial(276));
  EXPECT_FALSE((*t)->IsSpecial(260));
  EXPECT_EQ((*t)->bos_id(), -1);  // no template, no tokenizer_config.json
  EXPECT_FALSE((*t)->add_bos());
}

TEST(HfGpt2, EncodesByHandDerivedIds) {
  auto t = Load(Fixture("gpt2_tiny"));
  ASSERT_NE(t, nullptr);
  // "hello" merges h+e (rank 1), l+l (2), ll+o (3), he+llo (4); " world": Ġ+w (6), o+r (7),
  // Ġw+or (8), l+d (9), Ġwor+ld (10).
  EXPECT_EQ(t->Encode("hello world", false), (Ids{260, 266}));
  EXPECT_EQ(t->Encode("hello world", true), (Ids{260, 266}));  // ByteLevel post-processor adds nothing
  EXPECT_EQ(t->Encode(" the", false), (Ids{261}));    // Ġ+t (0), h+e (1), Ġt+he (5)
  EXPECT_EQ(t->Encode("the", false), (Ids{116, 257}));  // no t+he merge
  EXPECT_EQ(t->Encode("it's", false), (Ids{105, 116, 267}));  // "it" | "'s"
  // "  x": \s+(?!\S) takes one space, " x" is the next pre-token.
  EXPECT_EQ(t->Encode("  x", false), (Ids{32, 32, 120}));
  // Equal ranks: leftmost first: (a a) a.
  EXPECT_EQ(t->Encode("aaa", false), (Ids{272, 97}));
  EXPECT_EQ(t->Encode("   ", false), (Ids{271, 32}));
  // é is C3 A9 -> "Ã©" (rank 14).
  EXPECT_EQ(t->Encode("caf\xC3\xA9", false), (Ids{99, 97, 102, 270}));
  // GPT-2's " ?\p{N}+" keeps "12345" whole, so 3+4 merges.
  EXPECT_EQ(t->Encode("12345", false), (Ids{49, 50, 274, 53}));
  // " \n\nhello": \s+(?!\S) gives " \n", then "\n", then "hello".
  EXPECT_EQ(t->Encode(" \n\nhello", false), (Ids{32, 10, 10, 260}));
  EXPECT_EQ(t->Encode("\n\n", false), (Ids{273}));
  // No ignore_merges: "xyz" stays three bytes.
  EXPECT_EQ(t->Encode("xyz", false), (Ids{120, 121, 122}));
  // Added tokens are matched first and never split.
  EXPECT_EQ(t->Encode("<|endoftext|>hello", false), (Ids{276, 260}));
  EXPECT_EQ(t->Encode("a<|endoftext|><|endoftext|>", false), (Ids{97, 276, 276}));
  EXPECT_EQ(t->Encode("<|endoftext", false).size(), 11u);  // not the token: bytes
  EXPECT_TRUE(t->Encode("", true).empty());
}

TEST(HfGpt2, Decodes) {
  auto t = Load(Fixture("gpt2_tiny"));
  ASSERT_NE(t, nullptr);
  auto d = t->Decode({260, 266, 276, 32, 270});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, "hello world<|endoftext|> \xC3\xA9");
  // A lone UTF-8 lead byte decodes lossily.
  d = t->Decode({195});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, "\xEF\xBF\xBD");
  d = t->Decode({277});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_FALSE(t->Decode({-5}).ok());
}

TEST(HfLlama3, EncodesWithTemplateIgnoreMergesAndLlama3Regex) {
  auto t = Tokenizer::FromHfJson(kTokenizerData + "/llama3_tiny.json");
  ASSERT_TRUE(t.ok()) << t.status();
  const Tokenizer& tok = **t;
  EXPECT_EQ(tok.bos_id(), 276);  // the template's leading special token
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.Encode("hello world", true), (Ids{276, 260, 266}));
  EXPECT_EQ(tok.Encode("hello world", false), (Ids{260, 266}));
  // ignore_merges: a pre-token that is a vocabulary entry is emitted whole.
  EXPECT_EQ(tok.Encode("xyz", false), (Ids{275}));
  // \p{N}{1,3}: "123" | "45", so no 3+4 merge.
  EXPECT_EQ(tok.Encode("12345", false), (Ids{49, 50, 51, 52, 53}));
  // \s*[\r\n]+ takes " \n\n" whole: Ġ + (Ċ Ċ).
  EXPECT_EQ(tok.Encode(" \n\nhello", false), (Ids{32, 273, 260}));
  EXPECT_EQ(tok.Encode("it's", false), (Ids{105, 116, 267}));
  EXPECT_EQ(tok.Encode("<|eot_id|>hello<|eot_id|>", true), (Ids{276, 278, 260, 278}));
  EXPECT_EQ(tok.Encode("hello<|begin_of_text|>", false), (Ids{260, 276}));
  auto d = tok.Decode({276, 260, 266});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, "<|begin_of_text|>hello world");
}

TEST(HfVariants, AddPrefixSpace) {
  json j = Fixture("gpt2_tiny");
  j["pre_tokenizer"]["add_prefix_space"] = true;
  auto t = Load(j);
  ASSERT_NE(t, nullptr);
  // "hello" -> " hello": Ġ does not merge with "hello".
  EXPECT_EQ(t->Encode("hello", false), (Ids{32, 260}));
  EXPECT_EQ(t->Encode(" the", false), (Ids{261}));  // already starts with a space
  // Each span between added tokens gets the prefix.
  EXPECT_EQ(t->Encode("the<|endoftext|>hello", false), (Ids{261, 276, 32, 260}));
}

TEST(HfVariants, RobertaProcessing) {
  json j = Fixture("gpt2_tiny");
  j["post_processor"] = {{"type", "RobertaProcessing"},
                         {"sep", {"<|endoftext|>", 276}},
                         {"cls", {"<|endoftext|>", 276}},
                         {"trim_offsets", true},
                         {"add_prefix_space", false}};
  auto t = Load(j);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->Encode("the", true), (Ids{276, 116, 257, 276}));
  EXPECT_EQ(t->Encode("the", false), (Ids{116, 257}));
}

TEST(HfVariants, Qwen2StyleNfcAndSingleDigits) {
  json j = Fixture("llama3_tiny");
  std::string pattern = j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"];
  pattern.replace(pattern.find("\\p{N}{1,3}"), 10, "\\p{N}");
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = pattern;
  j["normalizer"] = {{"type", "NFC"}};
  j["post_processor"] = {{"type", "ByteLevel"}, {"add_prefix_space", false},
                         {"trim_offsets", false}, {"use_regex", false}};
  auto t = Load(j);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->bos_id(), -1);
  EXPECT_FALSE(t->add_bos());
  EXPECT_EQ(t->Encode("hello", true), (Ids{260}));  // no BOS
  EXPECT_EQ(t->Encode("12345", false), (Ids{49, 50, 51, 52, 53}));
  // e + U+0301 is normalized to é (C3 A9) before byte-level BPE.
  EXPECT_EQ(t->Encode("e\xCC\x81", false), (Ids{270}));
  auto d = t->Decode(t->Encode("caf" "e\xCC\x81", false));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, "caf\xC3\xA9");
}

TEST(HfVariants, DigitsAndSplitBehaviors) {
  auto with_pre = [](json pre) {
    json j = Fixture("gpt2_tiny");
    j["pre_tokenizer"] = {{"type", "Sequence"},
                          {"pretokenizers",
                           {pre, {{"type", "ByteLevel"}, {"add_prefix_space", false},
                                  {"use_regex", false}}}}};
    return Load(j);
  };
  auto digits = with_pre({{"type", "Digits"}, {"individual_digits", true}});
  ASSERT_NE(digits, nullptr);
  EXPECT_EQ(digits->Encode("12345", false), (Ids{49, 50, 51, 52, 53}));
  auto contiguous_digits = with_pre({{"type", "Digits"}, {"individual_digits", false}});
  EXPECT_EQ(contiguous_digits->Encode("12345", false), (Ids{49, 50, 274, 53}));

  auto split = [&](const std::string& behavior, bool invert, const json& pattern) {
    return with_pre({{"type", "Split"}, {"pattern", pattern}, {"behavior", behavior},
                     {"invert", invert}});
  };
  const json a = {{"String", "a"}};
  EXPECT_EQ(split("Isolated", false, a)->Encode("aaa", false), (Ids{97, 97, 97}));
  EXPECT_EQ(split("Contiguous", false, a)->Encode("aaa", false), (Ids{272, 97}));
  EXPECT_EQ(split("Removed", false, a)->Encode("xaax", false), (Ids{120, 120}));
  // Inverted: the pattern's non-matches become the delimiters: "aa" is removed, the x's stay.
  EXPECT_EQ(split("Removed", true, {{"String", "x"}})->Encode("xaax", false), (Ids{120, 120}));
  // ... and with Isolated the inversion changes nothing but the flags: "x" | "aa" | "x".
  EXPECT_EQ(split("Isolated", true, {{"String", "x"}})->Encode("xaax", false), (Ids{120, 272, 120}));
  const json space = {{"Regex", "\\s"}};
  EXPECT_EQ(split("Contiguous", false, space)->Encode("a  b", false), (Ids{97, 271, 98}));
  EXPECT_EQ(split("MergedWithPrevious", false, space)->Encode("a  b", false), (Ids{97, 32, 32, 98}));
}

TEST(HfProperties, DecodeInvertsEncodeAndSpecialTokensSurvive) {
  std::vector<std::unique_ptr<Tokenizer>> tokenizers;
  tokenizers.push_back(Load(Fixture("gpt2_tiny")));
  tokenizers.push_back(Load(Fixture("llama3_tiny")));
  json nfc = Fixture("llama3_tiny");
  nfc["normalizer"] = {{"type", "NFC"}};
  tokenizers.push_back(Load(nfc));
  const std::vector<std::string> specials = {"<|endoftext|>", "<|eot_id|>", "<|begin_of_text|>"};
  const std::vector<std::string> pool = {
      "hello", " world", "the", "'s", "'LL", " ", "  ", "\n", "\r\n", "\t", "12345", "caf\xC3\xA9",
      "e\xCC\x81", "\xE6\x97\xA5\xE6\x9C\xAC", "\xF0\x9F\x98\x80", "\xC2\xA0", "\xE3\x80\x80",
      "x\xCC\xA3\xCC\x87", "<|", "|>", "xyz", "aaa", "!?", "\xEF\xBF\xBD"};
  std::mt19937 rng(5);
  int checked = 0;
  for (int i = 0; i < 600; ++i) {
    std::string text;
    int special_count = 0;
    for (int k = 0; k < 1 + i % 9; ++k) {
      if (rng() % 7 == 0) {
        text += specials[rng() % specials.size()];
        ++special_count;
      } else if (rng() % 3 == 0) {
        // A random code point (no surrogates).
        char32_t cp = rng() % 0x30000;
        if (cp >= 0xD800 && cp < 0xE000) cp = 'q';
        tokenizer_internal::AppendUtf8(cp, &text);
      } else {
        text += pool[rng() % pool.size()];
      }
    }
    for (size_t n = 0; n < tokenizers.size(); ++n) {
      const Tokenizer& t = *tokenizers[n];
      const Ids ids = t.Encode(text, false);
      auto back = t.Decode(ids);
      ASSERT_TRUE(back.ok()) << back.status();
      const std::string want = n == 2 ? tokenizer_internal::NfcNormalize(text) : text;
      EXPECT_EQ(*back, want) << "tokenizer " << n << " on \"" << text << "\"";
      // Every special-token string that this tokenizer knows is one id.
      int found = 0, expected = 0;
      for (const auto& s : specials) {
        const int32_t id = t.PieceToId(s);
        if (id < 0) continue;
        for (size_t at = text.find(s); at != std::string::npos; at = text.find(s, at + 1)) ++expected;
        found += static_cast<int>(std::count(ids.begin(), ids.end(), id));
      }
      EXPECT_EQ(found, expected) << text;
      ++checked;
    }
    (void)special_count;
  }
  EXPECT_EQ(checked, 1800);
}

TEST(HfProperties, ArbitraryBytesEncodeAndDecodeLossily) {
  auto t = Load(Fixture("gpt2_tiny"));
  ASSERT_NE(t, nullptr);
  std::mt19937 rng(11);
  for (int i = 0; i < 300; ++i) {
    std::string bytes;
    for (int k = 0; k < 1 + i % 16; ++k) bytes.push_back(static_cast<char>(rng() % 256));
    const Ids ids = t->Encode(bytes, false);
    auto back = t->Decode(ids);
    ASSERT_TRUE(back.ok());
    // Every byte is kept by byte-level BPE; decoding is from_utf8_lossy of those bytes.
    EXPECT_EQ(*back, tokenizer_internal::Utf8Lossy(bytes));
  }
}

TEST(HfErrors, NameTheFileAndTheProblem) {
  struct Case {
    std::function<void(json&)> edit;
    absl::StatusCode code;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {[](json& j) { j.erase("model"); }, absl::StatusCode::kInvalidArgument, "model"},
      {[](json& j) { j["model"]["merges"].push_back("q z9"); }, absl::StatusCode::kInvalidArgument,
       "merge token 'z9' is not in the vocabulary"},
      {[](json& j) { j["model"]["merges"].push_back("x y"); }, absl::StatusCode::kInvalidArgument,
       "merged token 'xy'"},
      {[](json& j) { j["model"]["merges"].push_back("a b c"); }, absl::StatusCode::kInvalidArgument,
       "model.merges[19]"},
      {[](json& j) { j["model"]["vocab"]["bad"] = "seven"; }, absl::StatusCode::kInvalidArgument,
       "model.vocab[\"bad\"]"},
      {[](json& j) { j["model"]["type"] = "WordPiece"; }, absl::StatusCode::kUnimplemented,
       "WordPiece"},
      {[](json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }, absl::StatusCode::kUnimplemented,
       "Lowercase"},
      {[](json& j) { j["pre_tokenizer"] = {{"type", "Metaspace"}}; }, absl::StatusCode::kUnimplemented,
       "Metaspace"},
      {[](json& j) { j["pre_tokenizer"] = nullptr; }, absl::StatusCode::kUnimplemented,
       "not byte-level"},
      {[](json& j) { j["decoder"] = {{"type", "WordPiece"}}; }, absl::StatusCode::kUnimplemented,
       "decoder"},
      {[](json& j) {
         j["post_processor"] = {{"type", "TemplateProcessing"},
                                {"single", {{{"SpecialToken", {{"id", "<nope>"}}}},
                                            {{"Sequence", {{"id", "A"}}}}}},
                                {"special_tokens", json::object()}};
       },
       absl::StatusCode::kInvalidArgument, "'<nope>' is not in special_tokens"},
      {[](json& j) {
         j["pre_tokenizer"] = {{"type", "Sequence"},
                               {"pretokenizers",
                                {{{"type", "Split"}, {"pattern", {{"Regex", "(?<=x)y"}}},
                                  {"behavior", "Isolated"}},
                                 {{"type", "ByteLevel"}}}}};
       },
       absl::StatusCode::kUnimplemented, "pre_tokenizer.pretokenizers[0].pattern"},
      {[](json& j) { j["pre_tokenizer"]["type"] = 7; }, absl::StatusCode::kUnimplemented, "pre_tokenizer"},
      {[](json& j) { j["added_tokens"][0]["id"] = "x"; }, absl::StatusCode::kInvalidArgument,
       "added_tokens[0]"},
      {[](json& j) { j["added_tokens"][0]["id"] = 2000000000; }, absl::StatusCode::kInvalidArgument,
       "id 2000000000 is out of range"},
      {[](json& j) { j["model"]["vocab"]["far"] = 900000000; }, absl::StatusCode::kInvalidArgument,
       "implausibly sparse"},
  };
  for (const auto& c : cases) {
    json j = Fixture("gpt2_tiny");
    c.edit(j);
    auto t = Tokenizer::FromHfJsonString(j.dump(), "edited.json");
    ASSERT_FALSE(t.ok()) << c.expect;
    EXPECT_EQ(t.status().code(), c.code) << t.status();
    EXPECT_NE(t.status().message().find(c.expect), absl::string_view::npos) << t.status();
    EXPECT_NE(t.status().message().find("edited.json"), absl::string_view::npos) << t.status();
  }
  auto bad = Tokenizer::FromHfJsonString("{\"model\": ", "cut.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("cut.json: not valid JSON"), absl::string_view::npos);
  auto missing = Tokenizer::FromHfJson("/nonexistent/tokenizer.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace quarry
