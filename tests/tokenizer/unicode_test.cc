// Unicode support of the tokenizers against Python's unicodedata / codecs (golden data from
// tests/tools/gen_tokenizer_golden.py): general categories, NFC, lossy UTF-8 decoding, and
// strict UTF-8 decoding.
#include <gtest/gtest.h>

#include "test_util.h"
#include "tokenizer/unicode.h"

namespace quarry {
namespace {

using namespace tokenizer_test;
using namespace tokenizer_internal;

const nlohmann::json& Golden() {
  static const nlohmann::json* j =
      new nlohmann::json(ReadJson(kTokenizerData + "/unicode_golden.json"));
  return *j;
}

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

TEST(Unicode, GeneralCategoriesMatchUnicodedata) {
  static const char* kNames[] = {"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl",
                                 "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc",
                                 "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"};
  const auto& cats = Golden()["categories"];
  ASSERT_GT(cats.size(), 1000u);
  for (const auto& c : cats) {
    const char32_t cp = c[0].get<uint32_t>();
    EXPECT_EQ(kNames[static_cast<int>(CategoryOf(cp))], c[1].get<std::string>())
        << std::hex << static_cast<uint32_t>(cp);
  }
  EXPECT_EQ(CategoryOf('a'), GeneralCategory::kLl);
  EXPECT_EQ(CategoryOf(0x10FFFF), GeneralCategory::kCn);
  EXPECT_EQ(CategoryOf(0x110000), GeneralCategory::kCn);
  EXPECT_TRUE(IsLetter(0x65E5));   // 日
  EXPECT_TRUE(IsNumber(0x2167));   // Ⅷ (Nl)
  EXPECT_TRUE(IsNumber(0xB2));     // ² (No)
  EXPECT_FALSE(IsLetter(0x301));   // combining acute (Mn)
}

TEST(Unicode, WhiteSpaceIsTheUnicodeProperty) {
  for (uint32_t cp : {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200A,
                      0x2028, 0x2029, 0x202F, 0x205F, 0x3000}) {
    EXPECT_TRUE(IsWhiteSpace(cp)) << std::hex << cp;
  }
  for (uint32_t cp : {0x1C, 0x1F, 0x200B, 0xFEFF, 0x180E, 0x61}) {
    EXPECT_FALSE(IsWhiteSpace(cp)) << std::hex << cp;
  }
}

TEST(Unicode, NfcMatchesUnicodedata) {
  const auto& cases = Golden()["nfc"];
  ASSERT_GT(cases.size(), 100u);
  int changed = 0;
  for (const auto& c : cases) {
    const std::string in = c[0].get<std::string>();
    const std::string want = c[1].get<std::string>();
    changed += in != want;
    EXPECT_EQ(NfcNormalize(in), want) << in;
  }
  EXPECT_GT(changed, 150);  // the data exercises composition, not just copies
  EXPECT_EQ(NfcNormalize("e\xCC\x81"), "\xC3\xA9");                         // e + acute -> é
  EXPECT_EQ(NfcNormalize("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8"), "\xEA\xB0\x81");  // ᄀ+ᅡ+ᆨ -> 각
  EXPECT_EQ(NfcNormalize("\xE2\x84\xAB"), "\xC3\x85");                      // Å (U+212B) -> Å
  // Bytes that are not UTF-8 pass through and block composition.
  EXPECT_EQ(NfcNormalize(std::string("e\xFF\xCC\x81", 4)), std::string("e\xFF\xCC\x81", 4));
  EXPECT_EQ(NfcNormalize("plain ascii"), "plain ascii");
}

TEST(Unicode, LossyDecodingMatchesCPython) {
  const auto& cases = Golden()["lossy"];
  ASSERT_GT(cases.size(), 100u);
  for (const auto& c : cases) {
    const std::string bytes = FromHex(c[0].get<std::string>());
    EXPECT_EQ(Utf8Lossy(bytes), c[1].get<std::string>()) << c[0];
  }
}

TEST(Unicode, StrictDecodingRejectsOverlongSurrogatesAndOutOfRange) {
  EXPECT_TRUE(DecodeUtf8("\xC3\xA9", 0).valid);
  EXPECT_EQ(DecodeUtf8("\xF0\x9F\x98\x80", 0).cp, 0x1F600u);
  for (const std::string& bad : {std::string("\xC0\xAF"), std::string("\xE0\x80\xAF"),
                                 std::string("\xED\xA0\x80"), std::string("\xF4\x90\x80\x80"),
                                 std::string("\xF8\x88\x80\x80"), std::string("\x80"),
                                 std::string("\xE2\x82")}) {
    const Utf8Char c = DecodeUtf8(bad, 0);
    EXPECT_FALSE(c.valid);
    EXPECT_EQ(c.length, 1);
  }
}

}  // namespace
}  // namespace quarry
