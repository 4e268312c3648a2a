// The pre-tokenizer regex engine: the GPT-2, Llama 3, Qwen2, cl100k and o200k patterns against
// Python's `regex` module on 423 texts each (golden data), semantics of each construct, clear
// errors for unsupported syntax, and long inputs without deep recursion.
#include <gtest/gtest.h>

#include "test_util.h"
#include "tokenizer/pretokenizer_regex.h"
#include "tokenizer/unicode.h"

namespace quarry {
namespace {

using namespace tokenizer_test;
using tokenizer_internal::PretokenizerRegex;

std::vector<char32_t> Cps(const std::string& s) {
  std::vector<char32_t> out;
  for (size_t i = 0; i < s.size();) {
    const auto c = tokenizer_internal::DecodeUtf8(s, i);
    out.push_back(c.cp);
    i += c.length;
  }
  return out;
}

using Spans = std::vector<std::pair<size_t, size_t>>;

Spans Find(const std::string& pattern, const std::string& text) {
  auto re = PretokenizerRegex::Compile(pattern);
  EXPECT_TRUE(re.ok()) << re.status();
  if (!re.ok()) return {};
  return re->FindAll(Cps(text));
}

TEST(PretokenizerRegex, KnownPatternsMatchPythonRegexModule) {
  const auto golden = ReadJson(kTokenizerData + "/unicode_golden.json")["regex"];
  const auto& texts = golden["texts"];
  ASSERT_GT(texts.size(), 400u);
  int checked = 0;
  for (const auto& [name, entry] : golden["patterns"].items()) {
    auto re = PretokenizerRegex::Compile(entry["pattern"].get<std::string>());
    ASSERT_TRUE(re.ok()) << name << ": " << re.status();
    const auto& spans = entry["spans"];
    ASSERT_EQ(spans.size(), texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      Spans want;
      for (const auto& s : spans[i]) want.emplace_back(s[0].get<size_t>(), s[1].get<size_t>());
      const std::string text = texts[i].get<std::string>();
      EXPECT_EQ(re->FindAll(Cps(text)), want) << name << " on \"" << text << "\"";
      ++checked;
    }
  }
  EXPECT_EQ(checked, 5 * static_cast<int>(texts.size()));
}

TEST(PretokenizerRegex, Constructs) {
  // Greedy, lazy and possessive quantifiers.
  EXPECT_EQ(Find("a+", "baaab"), (Spans{{1, 4}}));
  EXPECT_EQ(Find("a+?", "aaa"), (Spans{{0, 1}, {1, 2}, {2, 3}}));
  EXPECT_EQ(Find("a*+a", "aaa"), Spans{});  // possessive: never gives one back
  EXPECT_EQ(Find("a*a", "aaa"), (Spans{{0, 3}}));
  EXPECT_EQ(Find("\\d{2,3}", "1234567"), (Spans{{0, 3}, {3, 6}}));
  EXPECT_EQ(Find("x{2}", "xxxxx"), (Spans{{0, 2}, {2, 4}}));
  // Leftmost-first alternation, not longest.
  EXPECT_EQ(Find("a|ab", "ab"), (Spans{{0, 1}}));
  // Lookahead, negative lookahead, optional group, case-insensitive group.
  EXPECT_EQ(Find("\\s+(?!\\S)", "a   b"), (Spans{{1, 3}}));
  EXPECT_EQ(Find("a(?=b)", "acab"), (Spans{{2, 3}}));
  EXPECT_EQ(Find("ab(?:cd)?", "abcdab"), (Spans{{0, 4}, {4, 6}}));
  EXPECT_EQ(Find("(?i:'ll)", "'LL 'lL 'll"), (Spans{{0, 3}, {4, 7}, {8, 11}}));
  EXPECT_EQ(Find("(?i:s)", "\xC5\xBF"), (Spans{{0, 1}}));  // U+017F folds to s
  EXPECT_EQ(Find("(?i)k", "K\xE2\x84\xAA"), (Spans{{0, 1}, {1, 2}}));
  // Classes: ranges, negation, escapes, properties.
  EXPECT_EQ(Find("[a-c]+", "abcd"), (Spans{{0, 3}}));
  EXPECT_EQ(Find("[^\\s\\p{L}]+", "ab 12!? c"), (Spans{{3, 7}}));
  EXPECT_EQ(Find("\\p{Lu}\\p{Ll}*", "HelloWorld"), (Spans{{0, 5}, {5, 10}}));
  EXPECT_EQ(Find("\\P{L}", "a1"), (Spans{{1, 2}}));
  EXPECT_EQ(Find("[\\x{4E00}-\\x{9FFF}]+", "ab\xE6\x97\xA5\xE6\x9C\xAC"), (Spans{{2, 4}}));
  EXPECT_EQ(Find("\\.", "a.b"), (Spans{{1, 2}}));
  EXPECT_EQ(Find(".", "a\n"), (Spans{{0, 1}}));
}

TEST(PretokenizerRegex, UnsupportedSyntaxIsAClearError) {
  for (const char* p : {"(?<=a)b", "(ab)+", "[[:alpha:]]", "\\bfoo", "^a", "\\p{Greek}", "a{"}) {
    auto re = PretokenizerRegex::Compile(p);
    ASSERT_FALSE(re.ok()) << p;
    EXPECT_EQ(re.status().code(), absl::StatusCode::kUnimplemented) << p << ": " << re.status();
    EXPECT_NE(re.status().message().find(p), absl::string_view::npos) << re.status();
  }
  EXPECT_EQ(PretokenizerRegex::Compile(std::string(5000, 'a')).status().code(),
            absl::StatusCode::kInvalidArgument);
  for (const char* p : {"abc)", "(abc", "[abc", "a{3,1}", "*a", "\\", "[z-a]"}) {
    auto re = PretokenizerRegex::Compile(p);
    ASSERT_FALSE(re.ok()) << p;
    EXPECT_EQ(re.status().code(), absl::StatusCode::kInvalidArgument) << p << ": " << re.status();
  }
}

TEST(PretokenizerRegex, LongInputsDoNotRecurseDeeply) {
  const std::string llama3 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  auto re = PretokenizerRegex::Compile(llama3);
  ASSERT_TRUE(re.ok());
  EXPECT_EQ(re->FindAll(Cps(std::string(300000, 'a'))), (Spans{{0, 300000}}));
  EXPECT_EQ(re->FindAll(Cps(std::string(200000, ' ') + "x")), (Spans{{0, 199999}, {199999, 200001}}));
  EXPECT_EQ(re->FindAll(Cps("\n" + std::string(100000, ' '))), (Spans{{0, 1}, {1, 100001}}));
}

}  // namespace
}  // namespace quarry
