// The hand-written protobuf wire-format reader and the ModelProto parser: exact decoding of
// each wire type, errors that name the byte offset for malformed input, and a fuzz-style sweep
// of truncated and mutated tokenizer.model files (including a precompiled NFKC charsmap) that
// must give an error or a working tokenizer, never a crash.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <random>

#include "quarry/tokenizer.h"
#include "test_util.h"
#include "tokenizer/protobuf_wire.h"
#include "tokenizer/sentencepiece_model.h"

namespace quarry {
namespace {

using namespace tokenizer_test;
using tokenizer_internal::ParseSpModelProto;
using tokenizer_internal::WireField;
using tokenizer_internal::WireReader;
using tokenizer_internal::WireType;
namespace fs = std::filesystem;

std::string Varint(uint64_t v) {
  std::string s;
  while (v >= 0x80) {
    s.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  s.push_back(static_cast<char>(v));
  return s;
}
std::string Tag(uint32_t field, int type) { return Varint((static_cast<uint64_t>(field) << 3) | type); }
std::string Bytes(uint32_t field, const std::string& payload) {
  return Tag(field, 2) + Varint(payload.size()) + payload;
}
std::string Float(uint32_t field, float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  std::string s = Tag(field, 5);
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>(bits >> (8 * i)));
  return s;
}
std::string VarintField(uint32_t field, uint64_t v) { return Tag(field, 0) + Varint(v); }

TEST(WireReader, DecodesEveryWireType) {
  const std::string data = VarintField(1, 300) + VarintField(2, static_cast<uint64_t>(-1)) +
                           Tag(3, 1) + std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8) +
                           Bytes(4, "hello") + Float(5, -2.5f);
  WireReader r(data);
  WireField f;
  ASSERT_TRUE(r.Next(&f).ok());
  EXPECT_EQ(f.number, 1u);
  EXPECT_EQ(f.type, WireType::kVarint);
  EXPECT_EQ(f.varint, 300u);
  ASSERT_TRUE(r.Next(&f).ok());
  EXPECT_EQ(f.AsInt32(), -1);  // int32 -1 is a 10-byte varint
  ASSERT_TRUE(r.Next(&f).ok());
  EXPECT_EQ(f.type, WireType::kFixed64);
  EXPECT_EQ(f.fixed, 0x0807060504030201ull);
  ASSERT_TRUE(r.Next(&f).ok());
  EXPECT_EQ(f.type, WireType::kLengthDelimited);
  EXPECT_EQ(f.bytes, "hello");
  ASSERT_TRUE(r.Next(&f).ok());
  EXPECT_EQ(f.type, WireType::kFixed32);
  EXPECT_EQ(f.AsFloat(), -2.5f);
  EXPECT_TRUE(r.done());
}

TEST(WireReader, MalformedInputNamesTheOffset) {
  struct Case {
    std::string data;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {VarintField(1, 5) + "\x08\x80", "truncated field varint at byte 3"},
      {std::string("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 11), "longer than 10 bytes"},
      {std::string("\x00\x01", 2), "invalid field number 0 at byte 0"},
      {Tag(2, 2) + Varint(100) + "abc", "declares 100 bytes but only 3 remain"},
      {Tag(7, 5) + "ab", "truncated fixed32 field 7 at byte 0"},
      {Tag(7, 1) + "abcdef", "truncated fixed64"},
      {Tag(9, 3), "unsupported wire type 3"},
      {Tag(9, 6), "unsupported wire type 6"},
  };
  for (const auto& c : cases) {
    WireReader r(c.data);
    absl::Status s;
    WireField f;
    while (!r.done() && (s = r.Next(&f)).ok()) {
    }
    ASSERT_FALSE(s.ok()) << c.expect;
    EXPECT_NE(s.message().find(c.expect), absl::string_view::npos) << s;
  }
}

TEST(SpModelProto, ParsesFieldsAndDefaultsFromAHandWrittenModel) {
  const std::string piece_unk = Bytes(1, "<unk>") + Float(2, 0) + VarintField(3, 2);
  const std::string piece_a = Bytes(1, "\xE2\x96\x81" "a") + Float(2, -1.5f);
  const std::string trainer = VarintField(3, 2) + VarintField(35, 0) + VarintField(41, static_cast<uint64_t>(-1)) +
                              VarintField(24, 1) + Bytes(44, "??") + VarintField(999, 7);
  const std::string normalizer = Bytes(1, "identity") + VarintField(3, 0) + VarintField(4, 0);
  const std::string model = Bytes(1, piece_unk) + Bytes(1, piece_a) + Bytes(2, trainer) +
                            Bytes(3, normalizer) + Bytes(200, "an extension field");
  auto proto = ParseSpModelProto(model, "hand.model");
  ASSERT_TRUE(proto.ok()) << proto.status();
  ASSERT_EQ(proto->pieces.size(), 2u);
  EXPECT_EQ(proto->pieces[0].type, tokenizer_internal::SpPiece::kUnknown);
  EXPECT_EQ(proto->pieces[1].piece, "\xE2\x96\x81" "a");
  EXPECT_EQ(proto->pieces[1].score, -1.5f);
  EXPECT_EQ(proto->pieces[1].type, tokenizer_internal::SpPiece::kNormal);  // default
  EXPECT_EQ(proto->trainer_spec.model_type, tokenizer_internal::SpTrainerSpec::kBpe);
  EXPECT_EQ(proto->trainer_spec.bos_id, -1);
  EXPECT_EQ(proto->trainer_spec.eos_id, 2);  // default
  EXPECT_TRUE(proto->trainer_spec.treat_whitespace_as_suffix);
  EXPECT_EQ(proto->trainer_spec.unk_surface, "??");
  EXPECT_EQ(proto->normalizer_spec.name, "identity");
  EXPECT_FALSE(proto->normalizer_spec.add_dummy_prefix);
  EXPECT_FALSE(proto->normalizer_spec.remove_extra_whitespaces);
  EXPECT_TRUE(proto->normalizer_spec.escape_whitespaces);  // default

  // And it tokenizes: no dummy prefix, so "a a" -> "a▁a"; BPE merges "▁" + "a" into piece 1
  // and the leading "a" is unknown.
  auto t = Tokenizer::FromSentencePieceBytes(model, "hand.model");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->Encode("a a", false), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ((*t)->Encode("bb", false), (std::vector<int32_t>{0}));  // a run of <unk> is one
  EXPECT_EQ((*t)->bos_id(), -1);
  auto d = (*t)->Decode({0, 1});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, "?? a");
}

TEST(SpModelProto, WrongWireTypeForAKnownFieldIsAnError) {
  const std::string model = Bytes(1, Bytes(1, "<unk>") + VarintField(3, 2)) + VarintField(2, 5);
  auto proto = ParseSpModelProto(model, "bad.model");
  ASSERT_FALSE(proto.ok());
  EXPECT_NE(proto.status().message().find("bad.model"), absl::string_view::npos);
  EXPECT_NE(proto.status().message().find("ModelProto.2"), absl::string_view::npos) << proto.status();
}

TEST(SpModelProto, SemanticErrorsNameTheProblem) {
  const std::string unk = Bytes(1, Bytes(1, "<unk>") + VarintField(3, 2));
  const std::string a = Bytes(1, Bytes(1, "a"));
  struct Case {
    std::string model, expect;
  };
  const std::vector<Case> cases = {
      {a, "no UNKNOWN"},
      {unk + a + a, "'a' (id 2) is defined twice"},
      {unk + Bytes(1, Bytes(1, "")), "piece 1 is empty"},
      {unk + Bytes(1, Bytes(1, "<0x41>") + VarintField(3, 6)), "byte_fallback is false"},
      {unk + Bytes(2, VarintField(35, 1)), "byte piece <0x00> is missing"},
      {unk + Bytes(2, VarintField(3, 3)), "WORD is not supported"},
      {unk + Bytes(2, VarintField(3, 9)), "unknown SentencePiece model_type 9"},
      {unk + Bytes(1, Bytes(1, "x") + VarintField(3, 42)), "piece type 42"},
      {unk + Bytes(3, Bytes(2, "\x01\x00\x00\x00")), "precompiled_charsmap"},
  };
  for (const auto& c : cases) {
    auto t = Tokenizer::FromSentencePieceBytes(c.model, "case.model");
    ASSERT_FALSE(t.ok()) << c.expect;
    EXPECT_NE(t.status().message().find(c.expect), absl::string_view::npos) << t.status();
    EXPECT_NE(t.status().message().find("case.model"), absl::string_view::npos) << t.status();
  }
}

// Loads `bytes` and, when that works, exercises encode and decode: nothing may crash.
void LoadAndUse(const std::string& bytes) {
  auto t = Tokenizer::FromSentencePieceBytes(bytes, "fuzz.model");
  if (!t.ok()) {
    EXPECT_NE(t.status().message().find("fuzz.model"), absl::string_view::npos) << t.status();
    return;
  }
  for (const char* text : {"In the beginning", " \xEF\xBD\xB6\xEF\xBE\x80 caf\xC3\xA9  2024\n",
                           "\xFF\xFE<s>", ""}) {
    const std::vector<int32_t> ids = (*t)->Encode(text, true);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < (*t)->vocab_size()) << id;
    EXPECT_TRUE((*t)->Decode(ids).ok());
  }
}

void Fuzz(const std::string& original, uint32_t seed, int truncations, int mutations) {
  std::mt19937 rng(seed);
  // Every cut near both ends, then random ones.
  for (size_t cut = 0; cut < std::min<size_t>(original.size(), 200); ++cut) {
    LoadAndUse(original.substr(0, cut));
    LoadAndUse(original.substr(0, original.size() - cut));
  }
  std::uniform_int_distribution<size_t> pos(0, original.size() - 1);
  for (int i = 0; i < truncations; ++i) LoadAndUse(original.substr(0, pos(rng)));
  std::uniform_int_distribution<int> byte(0, 255), count(1, 8), kind(0, 3);
  for (int i = 0; i < mutations; ++i) {
    std::string m = original;
    for (int k = count(rng); k > 0; --k) {
      switch (kind(rng)) {
        case 0: m[pos(rng) % m.size()] = static_cast<char>(byte(rng)); break;
        case 1: m[pos(rng) % m.size()] ^= static_cast<char>(1 << (byte(rng) % 8)); break;
        case 2: m.insert(pos(rng) % m.size(), 1, static_cast<char>(byte(rng))); break;
        case 3: m.erase(pos(rng) % m.size(), 1 + byte(rng) % 4); break;
      }
      if (m.empty()) m = "x";
    }
    LoadAndUse(m);
  }
}

TEST(SentencePieceFuzz, TruncatedAndMutatedFixtureNeverCrashes) {
  Fuzz(ReadFileOrDie(kKjvModel), 1, 1000, 2000);
}

TEST(SentencePieceFuzz, MutatedCharsmapNeverCrashes) {
  // A model with an NFKC precompiled charsmap (a darts-clone trie), trained by the oracle; the
  // mutations are aimed at the charsmap bytes.
  const fs::path dir = fs::temp_directory_path() / ("quarry_spm_fuzz_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string corpus = (dir / "corpus.txt").string();
  {
    std::ofstream out(corpus);
    out << ReadFileOrDie(kDataDir + "/kjv-eval.txt").substr(0, 30000);
  }
  const std::string prefix = (dir / "nfkc").string();
  const std::string cmd = std::string("'") + QUARRY_SPM_REFERENCE + "' train '--input=" + corpus +
                          "' '--model_prefix=" + prefix +
                          "' --model_type=bpe --vocab_size=300 --num_threads=1 > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const std::string model = ReadFileOrDie(prefix + ".model");
  fs::remove_all(dir);
  auto proto = ParseSpModelProto(model, "nfkc.model");
  ASSERT_TRUE(proto.ok()) << proto.status();
  const std::string& charsmap = proto->normalizer_spec.precompiled_charsmap;
  ASSERT_GT(charsmap.size(), 1000u);
  const size_t at = model.find(charsmap);
  ASSERT_NE(at, std::string::npos);
  std::mt19937 rng(3);
  std::uniform_int_distribution<size_t> in_map(at, at + charsmap.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 1500; ++i) {
    std::string m = model;
    for (int k = 0; k < 1 + i % 6; ++k) m[in_map(rng)] = static_cast<char>(byte(rng));
    LoadAndUse(m);
  }
  Fuzz(model, 4, 300, 600);
}

}  // namespace
}  // namespace quarry
