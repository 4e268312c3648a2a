// core's SentencePiece against the real libsentencepiece 0.1.97, which runs in its own process
// (tests/tools/spm_reference.cc; it cannot share one with LibTorch). Models: the KJV fixture and
// models trained here by the library itself (unigram, BPE, char; nmt_nfkc / nfkc_cf / identity
// normalization, byte fallback or <unk>, user-defined and control symbols, whitespace as
// suffix, no dummy prefix, ...). Inputs: every line of the eval text, whitespace edge cases,
// special-symbol strings, and seeded random ASCII, Unicode and arbitrary-byte strings. Encode
// ids, decoded text (of those ids and of random id sequences), pieces and special ids must all
// be identical. Two models also get UNUSED pieces (BPE resegmentation, unigram skipping).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include <cstring>

#include "quarry/tokenizer.h"
#include "test_util.h"
#include "tokenizer/protobuf_wire.h"
#include "tokenizer/sentencepiece_model.h"

namespace quarry {
namespace {

using namespace tokenizer_test;
namespace fs = std::filesystem;

std::string Hex(const std::string& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string Unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::string Printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F) {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string Join(const std::vector<int32_t>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? " " : "") + std::to_string(ids[i]);
  return out;
}

const fs::path& WorkDir() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("quarry_spm_xcheck_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

// Runs the oracle with one request per line; returns one response per request.
std::vector<std::string> RunOracle(const std::string& model, const std::vector<std::string>& requests) {
  const fs::path req = WorkDir() / "requests.txt";
  const fs::path resp = WorkDir() / "responses.txt";
  {
    std::ofstream out(req, std::ios::binary);
    for (const auto& r : requests) out << r << "\n";
  }
  const std::string cmd = std::string("'") + QUARRY_SPM_REFERENCE + "' serve '" + model + "' < '" +
                          req.string() + "' > '" + resp.string() + "'";
  const int rc = std::system(cmd.c_str());
  if (rc != 0) throw std::runtime_error("oracle failed: " + cmd);
  std::vector<std::string> lines;
  std::ifstream in(resp, std::ios::binary);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  if (lines.size() != requests.size()) throw std::runtime_error("oracle gave too few responses");
  return lines;
}

// Word pools for the training corpus and the random strings: accents (composed and not),
// compatibility forms NFKC rewrites (ligatures, full/half width, circled digits), several
// scripts, emoji, digits, odd whitespace.
const std::vector<std::string>& Pool() {
  static const std::vector<std::string> pool = {
      "the", "and", "of", "LORD", "unto", "Jesus", "said", "caf\xC3\xA9", "na\xC3\xAFve",
      "u\xCC\x88" "ber", "fa\xC3\xA7" "ade", "\xC3\x85ngstr\xC3\xB6m", "\xEF\xAC\x81ne",
      "\xE2\x91\xA0", "\xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\xA3", "\xEF\xBD\xB6\xEF\xBE\x80\xEF\xBD\xB6",
      "\xCE\xBB\xCF\x8C\xCE\xB3\xCE\xBF\xCF\x82", "\xD1\x81\xD0\xBB\xD0\xBE\xD0\xB2\xD0\xBE",
      "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "\xE4\xB8\xAD\xE6\x96\x87",
      "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4", "\xF0\x9F\x98\x80", "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
      "\xD9\x83\xD9\x84\xD9\x85\xD8\xA9", "\xE0\xA4\xB6\xE0\xA4\xAC\xE0\xA5\x8D\xE0\xA4\xA6",
      "2024", "3.14", "42", "x\xCC\xA3\xCC\x87", "\xE2\x80\x94", "\xE2\x80\x9C" "q" "\xE2\x80\x9D",
      "\xC2\xBD", "\xE2\x84\xAA", "\xEF\xBF\xBD", "\xE2\x96\x81", "<sep>", "[MASK]", "<ctrl>",
      "<s>", "</s>", "<unk>", "ab", "abab", "   ", "\t", "\xE3\x80\x80", "\xC2\xA0", "\n"};
  return pool;
}

std::string RandomPoolText(std::mt19937& rng, int words) {
  const auto& pool = Pool();
  std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
  std::uniform_int_distribution<int> sep(0, 9);
  std::string s;
  for (int i = 0; i < words; ++i) {
    if (i > 0) {
      const int k = sep(rng);
      s += k < 6 ? " " : k < 7 ? "" : k < 8 ? "  " : k < 9 ? "\n" : "\t";
    }
    s += pool[pick(rng)];
  }
  return s;
}

std::string RandomAscii(std::mt19937& rng, int length) {
  static const std::string chars =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"-()[]<>/\\_\n\t ";
  std::uniform_int_distribution<size_t> pick(0, chars.size() - 1);
  std::string s;
  for (int i = 0; i < length; ++i) s.push_back(chars[pick(rng)]);
  return s;
}

std::string RandomUnicode(std::mt19937& rng, int length) {
  // Code points from several blocks, including combining marks, Hangul jamo, surrogate-free
  // supplementary planes and noncharacters.
  static const std::vector<std::pair<char32_t, char32_t>> blocks = {
      {0x20, 0x7E}, {0xA0, 0x17F}, {0x300, 0x36F}, {0x370, 0x3FF}, {0x400, 0x4FF},
      {0x1100, 0x11FF}, {0x2000, 0x206F}, {0x2460, 0x24FF}, {0x3000, 0x30FF}, {0x4E00, 0x4E80},
      {0xAC00, 0xAC40}, {0xFB00, 0xFB4F}, {0xFF00, 0xFFEF}, {0x1F600, 0x1F64F}, {0x10000, 0x1007F}};
  std::uniform_int_distribution<size_t> block(0, blocks.size() - 1);
  std::string s;
  for (int i = 0; i < length; ++i) {
    const auto [lo, hi] = blocks[block(rng)];
    char32_t cp = std::uniform_int_distribution<char32_t>(lo, hi)(rng);
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  return s;
}

std::string RandomBytes(std::mt19937& rng, int length) {
  std::uniform_int_distribution<int> byte(1, 255);  // no NUL: the oracle reads C strings
  std::string s;
  for (int i = 0; i < length; ++i) s.push_back(static_cast<char>(byte(rng)));
  return s;
}

std::vector<std::string> TestStrings() {
  std::vector<std::string> out = {
      "", " ", "  ", "   ", "\t", "\n", "\n\n", " \n ", " a", "a ", "a  b", "  a  ", "a\tb",
      "a\nb", "\xE2\x96\x81", "\xE2\x96\x81\xE2\x96\x81" "a", "\xE3\x80\x80", "\xC2\xA0" "a",
      "<sep>", "a<sep>b", " <sep> ", "[MASK][MASK]", "<ctrl>", "<s>hello</s>", "<unk>",
      "abab ab", "x" "\xCC\xA3\xCC\x87", "\xEF\xBF\xBD", std::string("\xFF\xFE", 2),
      std::string("\xED\xA0\x80", 3), std::string("\xC0\xAF", 2), std::string("\xF4\x90\x80\x80", 4),
      "Psalm 23:1 in the year 2024!", "Na\xC3\xAFve caf\xC3\xA9 \xE2\x80\x94 \xE6\x97\xA5\xE6\x9C\xAC"};
  const std::string eval = ReadFileOrDie(kDataDir + "/kjv-eval.txt");
  std::istringstream lines(eval);
  for (std::string line; std::getline(lines, line);) out.push_back(line);
  out.push_back(eval.substr(0, 5000));  // many lines as one string
  std::mt19937 rng(20240917);
  for (int i = 0; i < 300; ++i) out.push_back(RandomPoolText(rng, 1 + i % 12));
  for (int i = 0; i < 300; ++i) out.push_back(RandomAscii(rng, 1 + i % 40));
  for (int i = 0; i < 300; ++i) out.push_back(RandomUnicode(rng, 1 + i % 30));
  for (int i = 0; i < 200; ++i) out.push_back(RandomBytes(rng, 1 + i % 20));
  return out;
}

struct ModelCase {
  std::string name;
  std::string flags;         // spm_train flags; empty for the fixture
  bool mark_unused = false;  // turn some NORMAL pieces into UNUSED ones (see MarkUnused)
};

void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.name; }

std::string CorpusPath() {
  static const std::string path = [] {
    const fs::path p = WorkDir() / "corpus.txt";
    std::ofstream out(p, std::ios::binary);
    out << ReadFileOrDie(kDataDir + "/kjv-eval.txt");
    std::mt19937 rng(7);
    for (int i = 0; i < 1500; ++i) {
      std::string line = RandomPoolText(rng, 3 + i % 15);
      for (char& c : line) {
        if (c == '\n') c = ' ';
      }
      out << line << "\n";
    }
    return p.string();
  }();
  return path;
}

std::string Varint(uint64_t v) {
  std::string out;
  for (; v >= 0x80; v >>= 7) out.push_back(static_cast<char>((v & 0x7F) | 0x80));
  out.push_back(static_cast<char>(v));
  return out;
}

// Rewrites a ModelProto with every 7th NORMAL piece among ids 260..599 marked UNUSED: BPE must
// then resegment merges that produce them, and unigram must skip them. Models are edited like
// this by hand (e.g. to retire pieces), and no trainer writes UNUSED pieces.
std::string MarkUnused(const std::string& model_path) {
  const std::string bytes = ReadFileOrDie(model_path);
  auto proto = tokenizer_internal::ParseSpModelProto(bytes, model_path);
  if (!proto.ok()) throw std::runtime_error(std::string(proto.status().message()));
  std::string out;
  tokenizer_internal::WireReader reader(bytes);
  size_t piece_index = 0;
  int marked = 0;
  while (!reader.done()) {
    tokenizer_internal::WireField f;
    if (!reader.Next(&f).ok()) throw std::runtime_error("cannot re-read " + model_path);
    const size_t end = f.payload_offset + f.bytes.size();  // top-level fields are all bytes
    if (f.number != 1) {
      out.append(bytes, f.offset, end - f.offset);
      continue;
    }
    const auto& piece = proto->pieces[piece_index];
    int32_t type = piece.type;
    if (piece_index >= 260 && piece_index < 600 && piece_index % 7 == 0 &&
        type == tokenizer_internal::SpPiece::kNormal) {
      type = tokenizer_internal::SpPiece::kUnused;
      ++marked;
    }
    std::string body = "\x0A" + Varint(piece.piece.size()) + piece.piece + "\x15";
    uint32_t bits;
    std::memcpy(&bits, &piece.score, 4);
    for (int i = 0; i < 4; ++i) body.push_back(static_cast<char>(bits >> (8 * i)));
    body += "\x18" + Varint(static_cast<uint32_t>(type));
    out += "\x0A" + Varint(body.size()) + body;
    ++piece_index;
  }
  if (marked < 20) throw std::runtime_error("too few pieces marked UNUSED");
  const std::string path = model_path.substr(0, model_path.size() - 6) + "_unused.model";
  std::ofstream(path, std::ios::binary) << out;
  return path;
}

std::string TrainedModelPath(const ModelCase& c);

std::string ModelPath(const ModelCase& c) {
  const std::string base = TrainedModelPath(c);
  if (!c.mark_unused) return base;
  const fs::path copy = WorkDir() / (c.name + ".model");
  if (!fs::exists(copy)) fs::copy_file(base, copy);
  return MarkUnused(copy.string());
}

std::string TrainedModelPath(const ModelCase& c) {
  if (c.flags.empty()) return kKjvModel;
  const std::string prefix = (WorkDir() / c.name).string();
  if (fs::exists(prefix + ".model")) return prefix + ".model";
  std::string quoted_flags;
  std::istringstream flags(c.flags);
  for (std::string flag; flags >> flag;) quoted_flags += " '" + flag + "'";
  const std::string cmd = std::string("'") + QUARRY_SPM_REFERENCE + "' train '--input=" +
                          CorpusPath() + "' '--model_prefix=" + prefix + "' --num_threads=2" +
                          quoted_flags + " > '" + prefix + ".log' 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    throw std::runtime_error("training failed: " + cmd + "\n" + ReadFileOrDie(prefix + ".log"));
  }
  return prefix + ".model";
}

class SentencePieceCrossCheck : public ::testing::TestWithParam<ModelCase> {
 protected:
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(WorkDir(), ec);
  }
};

TEST_P(SentencePieceCrossCheck, MatchesLibsentencepiece) {
  const std::string model = ModelPath(GetParam());
  auto tok = Tokenizer::FromSentencePieceFile(model);
  ASSERT_TRUE(tok.ok()) << tok.status();
  const Tokenizer& t = **tok;

  // Special ids and every piece.
  std::vector<std::string> requests = {"I"};
  for (int32_t id = 0; id < t.vocab_size(); ++id) requests.push_back("P " + std::to_string(id));
  auto responses = RunOracle(model, requests);
  std::istringstream info(responses[0]);
  int unk, bos, eos, pad, size;
  info >> unk >> bos >> eos >> pad >> size;
  EXPECT_EQ(t.unk_id(), unk);
  EXPECT_EQ(t.bos_id(), bos);
  EXPECT_EQ(t.eos_id(), eos);
  EXPECT_EQ(t.pad_id(), pad);
  ASSERT_EQ(t.vocab_size(), size);
  for (int32_t id = 0; id < size; ++id) {
    ASSERT_EQ(Hex(t.IdToPiece(id)), responses[id + 1]) << "piece " << id;
  }

  // Encoding.
  const std::vector<std::string> strings = TestStrings();
  requests.clear();
  for (const auto& s : strings) requests.push_back("E " + Hex(s));
  responses = RunOracle(model, requests);
  std::vector<std::vector<int32_t>> all_ids;
  int mismatches = 0;
  for (size_t i = 0; i < strings.size(); ++i) {
    const std::vector<int32_t> ids = t.Encode(strings[i], false);
    all_ids.push_back(ids);
    if (Join(ids) != responses[i] && ++mismatches <= 10) {
      ADD_FAILURE() << GetParam().name << ": encode(\"" << Printable(strings[i]) << "\")\n  ours:   "
                    << Join(ids) << "\n  oracle: " << responses[i];
    }
  }
  EXPECT_EQ(mismatches, 0);
  if (GetParam().mark_unused) {
    // The edit matters: many strings encode differently than with the unedited model.
    auto base = Tokenizer::FromSentencePieceFile(TrainedModelPath(GetParam()));
    ASSERT_TRUE(base.ok());
    int changed = 0;
    for (size_t i = 0; i < strings.size(); ++i) changed += (*base)->Encode(strings[i], false) != all_ids[i];
    EXPECT_GT(changed, 100);
  }

  // Decoding: the ids above, and random id sequences (control, byte and unknown pieces in any
  // order, including leading U+2581 pieces after invisible ones).
  std::mt19937 rng(99);
  std::uniform_int_distribution<int32_t> any_id(0, size - 1);
  std::uniform_int_distribution<int32_t> low_id(0, std::min(size - 1, 300));
  for (int i = 0; i < 400; ++i) {
    std::vector<int32_t> ids;
    for (int k = 0; k < 1 + i % 8; ++k) ids.push_back(i % 2 ? any_id(rng) : low_id(rng));
    all_ids.push_back(ids);
  }
  requests.clear();
  for (const auto& ids : all_ids) requests.push_back("D " + Join(ids));
  responses = RunOracle(model, requests);
  mismatches = 0;
  for (size_t i = 0; i < all_ids.size(); ++i) {
    auto text = t.Decode(all_ids[i]);
    ASSERT_TRUE(text.ok()) << text.status();
    const std::string ours = "OK " + Hex(*text);
    if (ours != responses[i] && ++mismatches <= 10) {
      ADD_FAILURE() << GetParam().name << ": decode(" << Join(all_ids[i]) << ")\n  ours:   \""
                    << Printable(*text) << "\"\n  oracle: \""
                    << Printable(responses[i].size() > 3 ? Unhex(responses[i].substr(3)) : responses[i]) << "\"";
    }
  }
  EXPECT_EQ(mismatches, 0);
  std::cout << "[ cross-check ] " << GetParam().name << ": " << strings.size()
            << " encodings, " << all_ids.size() << " decodings, " << size
            << " pieces identical to libsentencepiece\n";
}

INSTANTIATE_TEST_SUITE_P(
    Models, SentencePieceCrossCheck,
    ::testing::Values(
        ModelCase{"kjv_fixture", ""},
        ModelCase{"kjv_fixture_with_unused_pieces", "", true},
        ModelCase{"unigram_nfkc",
                  "--model_type=unigram --vocab_size=1000 --character_coverage=0.9995 "
                  "--user_defined_symbols=<sep>,[MASK] --control_symbols=<ctrl> --pad_id=3 "
                  "--hard_vocab_limit=false"},
        ModelCase{"unigram_nfkc_with_unused_pieces",
                  "--model_type=unigram --vocab_size=1000 --character_coverage=0.9995 "
                  "--user_defined_symbols=<sep>,[MASK] --control_symbols=<ctrl> --pad_id=3 "
                  "--hard_vocab_limit=false",
                  true},
        ModelCase{"unigram_bytes_identity",
                  "--model_type=unigram --vocab_size=1200 --byte_fallback=true "
                  "--normalization_rule_name=identity --remove_extra_whitespaces=false "
                  "--split_digits=true --allow_whitespace_only_pieces=true "
                  "--character_coverage=0.98 --hard_vocab_limit=false"},
        ModelCase{"bpe_suffix_nfkc",
                  "--model_type=bpe --vocab_size=1000 --treat_whitespace_as_suffix=true "
                  "--user_defined_symbols=<sep>,ab --character_coverage=0.995 --bos_id=-1 "
                  "--hard_vocab_limit=false"},
        ModelCase{"bpe_unk_nfkc_cf_no_dummy",
                  "--model_type=bpe --vocab_size=800 --normalization_rule_name=nmt_nfkc_cf "
                  "--character_coverage=0.99 --add_dummy_prefix=false --hard_vocab_limit=false"},
        ModelCase{"bpe_bytes_user",
                  "--model_type=bpe --vocab_size=1000 --byte_fallback=true "
                  "--user_defined_symbols=<sep>,[MASK] --normalization_rule_name=identity "
                  "--hard_vocab_limit=false"},
        ModelCase{"char_nfkc",
                  "--model_type=char --normalization_rule_name=nfkc --character_coverage=0.999 "
                  "--vocab_size=400 --hard_vocab_limit=false"}),
    [](const ::testing::TestParamInfo<ModelCase>& info) { return info.param.name; });

}  // namespace
}  // namespace quarry
