// GGUF export at the byte level, checked against the independent reader in gguf_spec_reader.h
// (written from the GGUF spec and ggml's block layouts, not from Quarry's writer):
//   - the reader itself on a hand-assembled file and on broken ones;
//   - one hand-computed 32-element block per ggml type out of gguf::EncodeBlocks / EncodeFloat,
//     and gguf::Dequantize equal to the reader's decoder on random blocks;
//   - whole jobs on tiny-llama-kjv (RTN and GPTQ; Q8_0, Q4_0, Q4_1, MXFP4): header, metadata,
//     tensor index and every tensor read back, every dequantized weight equal bit for bit to the
//     job's fake-quantized weight (after undoing llama.cpp's q/k row permutation), Q4_1's
//     reported count of changed weights equal to the measured one;
//   - plans GGUF cannot hold refused before any layer runs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "export/gguf_format.h"
#include "quarry/config_json.h"
#include "quarry/pipeline.h"
#include "quarry/presets.h"
#include "quarry/tensor_io.h"
#include "unit/export/gguf_spec_reader.h"

namespace quarry {
namespace {

namespace fs = std::filesystem;
namespace gg = exporter::gguf;
namespace spec = gguf_spec;

const std::string kData = QUARRY_TEST_DATA_DIR;
const std::string kLlama = kData + "/models/tiny-llama-kjv";
const std::string kOpt = kData + "/models/tiny-opt-kjv";
const std::string kExamples = std::string(QUARRY_SOURCE_DIR) + "/examples";

std::string OutDir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("quarry_gguf_" + std::to_string(::getpid())) / name;
  fs::remove_all(p);
  return p.string();
}

std::string Bytes(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s.push_back(static_cast<char>(b));
  return s;
}

std::string Hex(const std::string& s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    std::snprintf(buf, sizeof buf, "%02x ", c);
    out += buf;
  }
  return out;
}

uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// ---------------------------------------------------------------------------------------------
// The reader on a file assembled by hand from the spec.

void PutU32(std::string& s, uint32_t v) {
  for (int k = 0; k < 4; ++k) s.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
}
void PutU64(std::string& s, uint64_t v) {
  for (int k = 0; k < 8; ++k) s.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
}
void PutStr(std::string& s, const std::string& v) {
  PutU64(s, v.size());
  s += v;
}

// GGUF v3, 3 kvs (string, u32 array of 3, f32), 2 tensors: "a" F32 [2] at 0 and "b" Q8_0 [32, 1]
// at 32 (8 bytes of "a" padded to 32).
std::string HandMadeFile() {
  std::string f = "GGUF";
  PutU32(f, 3);
  PutU64(f, 2);
  PutU64(f, 3);
  PutStr(f, "general.architecture");
  PutU32(f, 8);
  PutStr(f, "llama");
  PutStr(f, "x.ids");
  PutU32(f, 9);
  PutU32(f, 4);
  PutU64(f, 3);
  PutU32(f, 7);
  PutU32(f, 8);
  PutU32(f, 9);
  PutStr(f, "x.eps");
  PutU32(f, 6);
  PutU32(f, FloatBits(0.25f));
  PutStr(f, "a");
  PutU32(f, 1);
  PutU64(f, 2);
  PutU32(f, 0);
  PutU64(f, 0);
  PutStr(f, "b");
  PutU32(f, 2);
  PutU64(f, 32);
  PutU64(f, 1);
  PutU32(f, 8);
  PutU64(f, 32);
  while (f.size() % 32) f.push_back(0);
  PutU32(f, FloatBits(1.5f));
  PutU32(f, FloatBits(-2.0f));
  f.append(24, 0);
  f += Bytes({0x00, 0x3c});  // d = 1.0
  for (int j = 0; j < 32; ++j) f.push_back(static_cast<char>(j - 16));
  return f;
}

TEST(GgufSpecReader, ReadsAHandMadeFile) {
  auto f = spec::Parse(HandMadeFile());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->version, 3u);
  EXPECT_EQ(f->keys, (std::vector<std::string>{"general.architecture", "x.ids", "x.eps"}));
  EXPECT_EQ(f->Find("general.architecture")->s, "llama");
  const spec::Value* ids = f->Find("x.ids");
  ASSERT_EQ(ids->type, spec::kArray);
  ASSERT_EQ(ids->elems.size(), 3u);
  EXPECT_EQ(ids->elem_type, spec::kUint32);
  EXPECT_EQ(ids->elems[2].u, 9u);
  EXPECT_EQ(f->Find("x.eps")->f, 0.25);
  EXPECT_EQ(f->alignment, 32u);  // absent: the spec's default
  ASSERT_EQ(f->tensors.size(), 2u);
  EXPECT_EQ(f->tensors[1].ne, (std::vector<uint64_t>{32, 1}));
  EXPECT_EQ(f->tensors[1].bytes, 34u);
  const spec::TensorInfo& a = *f->FindTensor("a");
  auto av = spec::Decode(a.type, f->Data(a), a.bytes, 2);
  ASSERT_TRUE(av.ok());
  EXPECT_EQ((*av)[0], 1.5f);
  EXPECT_EQ((*av)[1], -2.0f);
  const spec::TensorInfo& b = *f->FindTensor("b");
  auto bv = spec::Decode(b.type, f->Data(b), b.bytes, 32);
  ASSERT_TRUE(bv.ok());
  EXPECT_EQ((*bv)[0], -16.0f);
  EXPECT_EQ((*bv)[31], 15.0f);
}

void ExpectParseError(std::string bytes, const std::string& needle) {
  auto f = spec::Parse(std::move(bytes));
  ASSERT_FALSE(f.ok()) << "parsed; expected an error with '" << needle << "'";
  EXPECT_NE(f.status().message().find(needle), absl::string_view::npos) << f.status();
}

// The reader refuses what the spec forbids (a reader that accepts anything checks nothing).
TEST(GgufSpecReader, RefusesBrokenFiles) {
  const std::string good = HandMadeFile();
  std::string b = good;
  b[0] = 'X';
  ExpectParseError(b, "magic");
  b = good;
  b[4] = 2;
  ExpectParseError(b, "version 2");
  ExpectParseError(good.substr(0, 60), "truncated at byte");
  // Tensor "b"'s offset 32 -> 40: not a multiple of the alignment.
  b = good;
  const size_t boff = good.find(std::string("\x01\0\0\0\0\0\0\0b", 9)) + 9 + 4 + 16 + 4;
  ASSERT_EQ(static_cast<unsigned char>(b[boff]), 32u);
  b[boff] = 40;
  ExpectParseError(b, "offset 40 is not a multiple of 32");
  // Offset 64: aligned, but llama.cpp packs tensors (a's data ends at 8, padded to 32).
  b[boff] = 64;
  ExpectParseError(b, "llama.cpp expects 32");
  // The data section cut short.
  ExpectParseError(good.substr(0, good.size() - 1), "runs past the end of the file");
  // A value type that does not exist.
  b = good;
  const size_t vt = good.find("x.eps") + 5;
  b[vt] = 13;
  ExpectParseError(b, "value type 13");
}

// ---------------------------------------------------------------------------------------------
// Hand-computed blocks.

// w [1, 32] from codes and a scale: w = (code - zero) * scale, computed exactly in float.
at::Tensor Row(const std::vector<float>& values) {
  return at::tensor(values, at::kFloat).view({1, static_cast<int64_t>(values.size())});
}

std::string Encode(gg::GgmlType t, const at::Tensor& w, const at::Tensor& scale,
                   const at::Tensor& zero, gg::EncodeStats* stats = nullptr) {
  gg::EncodeStats local;
  auto b = gg::EncodeBlocks(t, "test.weight", w, scale, zero, stats ? stats : &local);
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? *b : std::string();
}

void ExpectDecodes(uint32_t type, const std::string& bytes, const at::Tensor& w) {
  auto v = spec::Decode(type, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                        w.numel());
  ASSERT_TRUE(v.ok()) << v.status();
  const at::Tensor flat = w.contiguous().view({-1});
  for (int64_t j = 0; j < w.numel(); ++j)
    EXPECT_EQ(FloatBits((*v)[j]), FloatBits(flat[j].item<float>())) << "element " << j;
}

// Q8_0: f16 d = 0.5 (0x3800), then the 32 int8 codes as two's complement bytes.
TEST(GgufBlocks, Q8_0HandComputed) {
  std::vector<float> w(32);
  for (int j = 0; j < 32; ++j) w[j] = (j == 31 ? 127 : j * 8 - 128) * 0.5f;
  const at::Tensor scale = at::full({1, 1}, 0.5f);
  const std::string got = Encode(gg::GgmlType::kQ8_0, Row(w), scale, at::Tensor());
  const std::string want = Bytes({0x00, 0x38,  // d
                                  0x80, 0x88, 0x90, 0x98, 0xa0, 0xa8, 0xb0, 0xb8, 0xc0, 0xc8, 0xd0,
                                  0xd8, 0xe0, 0xe8, 0xf0, 0xf8, 0x00, 0x08, 0x10, 0x18, 0x20, 0x28,
                                  0x30, 0x38, 0x40, 0x48, 0x50, 0x58, 0x60, 0x68, 0x70, 0x7f});
  EXPECT_EQ(Hex(got), Hex(want));
  ExpectDecodes(8, want, Row(w));
}

// Q4_0: codes -8..7 in the first 16 elements and 7..-8 in the last 16; q = code + 8, so byte j is
// q_j | q_{j+16} << 4 = j | (15 - j) << 4; d = 0.25 (0x3400).
TEST(GgufBlocks, Q4_0HandComputed) {
  std::vector<float> w(32);
  for (int j = 0; j < 16; ++j) {
    w[j] = (j - 8) * 0.25f;
    w[j + 16] = (7 - j) * 0.25f;
  }
  const std::string got =
      Encode(gg::GgmlType::kQ4_0, Row(w), at::full({1, 1}, 0.25f), at::zeros({1, 1}));
  const std::string want = Bytes({0x00, 0x34, 0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78,
                                  0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f});
  EXPECT_EQ(Hex(got), Hex(want));
  ExpectDecodes(2, want, Row(w));
}

// Q4_1 (uint4 asymmetric): scale 0.125 (0x3000), zero point 4, so m = -0.5 (0xb800); codes j in
// the first half and 5j mod 16 in the second: byte j = j | (5j mod 16) << 4.
TEST(GgufBlocks, Q4_1HandComputed) {
  std::vector<float> w(32);
  for (int j = 0; j < 16; ++j) {
    w[j] = (j - 4) * 0.125f;
    w[j + 16] = ((5 * j) % 16 - 4) * 0.125f;
  }
  gg::EncodeStats stats;
  const std::string got = Encode(gg::GgmlType::kQ4_1, Row(w), at::full({1, 1}, 0.125f),
                                 at::full({1, 1}, 4.0f), &stats);
  const std::string want = Bytes({0x00, 0x30, 0x00, 0xb8, 0x00, 0x51, 0xa2, 0xf3, 0x44, 0x95, 0xe6,
                                  0x37, 0x88, 0xd9, 0x2a, 0x7b, 0xcc, 0x1d, 0x6e, 0xbf});
  EXPECT_EQ(Hex(got), Hex(want));
  ExpectDecodes(3, want, Row(w));
  EXPECT_EQ(stats.weights, 32);
  EXPECT_EQ(stats.changed, 0);  // every product and sum here is exact
}

// Q4_1 whose minimum float16 cannot hold: scale 0.0999755859375 (f16 0x2e66, exact), zero point
// 3: -scale * 3 = -0.2999267578125 needs 13 significant bits; f16 keeps 11 and rounds it to
// -0.2998046875 (0xb4cc). Every value moves and the encoder counts all 32.
TEST(GgufBlocks, Q4_1CountsTheMinimumsRounding) {
  const float s = 0.0999755859375f;
  ASSERT_EQ(spec::HalfToFloat(0x2e66), s);
  std::vector<float> w(32);
  for (int j = 0; j < 32; ++j) w[j] = static_cast<float>(j % 16 - 3) * s;
  gg::EncodeStats stats;
  const std::string got = Encode(gg::GgmlType::kQ4_1, Row(w), at::full({1, 1}, s),
                                 at::full({1, 1}, 3.0f), &stats);
  ASSERT_EQ(got.size(), 20u);
  EXPECT_EQ(Hex(got.substr(0, 4)), Hex(Bytes({0x66, 0x2e, 0xcc, 0xb4})));
  auto v = spec::Decode(3, reinterpret_cast<const uint8_t*>(got.data()), 20, 32);
  ASSERT_TRUE(v.ok());
  int changed = 0;
  double worst = 0;
  for (int j = 0; j < 32; ++j) {
    changed += (*v)[j] != w[j];
    worst = std::max(worst, std::abs(static_cast<double>((*v)[j]) - w[j]));
  }
  EXPECT_EQ(stats.weights, 32);
  EXPECT_EQ(stats.changed, changed);
  EXPECT_GT(changed, 0);
  EXPECT_DOUBLE_EQ(stats.max_abs_change, worst);
}

// MXFP4: E8M0 scale 125 (2^-2) in byte 0; E2M1 codes j (0..15, code 8 = -0 replaced by 0) in the
// first half and 15 - j in the second. ggml reads kvalues[q] * 2^(e - 128), kvalues = 2 * E2M1.
TEST(GgufBlocks, Mxfp4HandComputed) {
  static const float kE2m1[16] = {0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0f, -0.5, -1, -1.5, -2, -3, -4, -6};
  std::vector<int> lo(16), hi(16);
  std::vector<float> w(32);
  for (int j = 0; j < 16; ++j) {
    lo[j] = j == 8 ? 0 : j;
    hi[j] = 15 - j == 8 ? 0 : 15 - j;
    w[j] = kE2m1[lo[j]] * 0.25f;
    w[j + 16] = kE2m1[hi[j]] * 0.25f;
  }
  const at::Tensor e = at::full({1, 1}, 125, at::kByte);
  const std::string got = Encode(gg::GgmlType::kMXFP4, Row(w), e, at::Tensor());
  const std::string want = Bytes({0x7d, 0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x07, 0x70, 0x69,
                                  0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f});
  EXPECT_EQ(Hex(got), Hex(want));
  ExpectDecodes(39, want, Row(w));
  // The quantizer's own scale, the float power of two 2^(125 - 127), gives the same block.
  EXPECT_EQ(Hex(Encode(gg::GgmlType::kMXFP4, Row(w), at::full({1, 1}, 0.25f), at::Tensor())),
            Hex(want));
}

// Two rows of two blocks: blocks run along the row, rows one after another.
TEST(GgufBlocks, BlocksRunAlongRowsThenRowByRow) {
  at::Tensor w = at::zeros({2, 64});
  w[0][0] = 1;    // row 0 block 0
  w[0][33] = 2;   // row 0 block 1, element 1
  w[1][31] = -3;  // row 1 block 0, element 31
  w[1][48] = 4;   // row 1 block 1, element 16
  const std::string got = Encode(gg::GgmlType::kQ8_0, w, at::ones({2, 2}), at::Tensor());
  ASSERT_EQ(got.size(), 4u * 34);
  EXPECT_EQ(got[0 * 34 + 2], 1);
  EXPECT_EQ(got[1 * 34 + 2 + 1], 2);
  EXPECT_EQ(got[2 * 34 + 2 + 31], -3);
  EXPECT_EQ(got[3 * 34 + 2 + 16], 4);
  const std::string q4 = Encode(gg::GgmlType::kQ4_0, w, at::ones({2, 2}), at::zeros({2, 2}));
  ASSERT_EQ(q4.size(), 4u * 18);
  EXPECT_EQ(static_cast<uint8_t>(q4[0 * 18 + 2]), 0x89);        // q0 = 9 low, q16 = 8 high
  EXPECT_EQ(static_cast<uint8_t>(q4[1 * 18 + 2 + 1]), 0x8a);    // element 1 = 2 -> q 10
  EXPECT_EQ(static_cast<uint8_t>(q4[2 * 18 + 2 + 15]), 0x58);   // element 31 = -3 -> q 5 high
  EXPECT_EQ(static_cast<uint8_t>(q4[3 * 18 + 2 + 0]), 0xc8);    // element 16 = 4 -> q 12 high
}

// F32 / F16 / BF16 bits, round to nearest even at the halfway points.
TEST(GgufBlocks, FloatTypesHandComputed) {
  const at::Tensor x = at::tensor({1.0f, -2.5f, 65504.0f, 1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f,
                                   1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 0.0f},
                                  at::kFloat);
  EXPECT_EQ(Hex(gg::EncodeFloat(gg::GgmlType::kF16, x)),
            Hex(Bytes({0x00, 0x3c, 0x00, 0xc1, 0xff, 0x7b, 0x00, 0x3c, 0x02, 0x3c, 0x04, 0x3c,
                       0x0c, 0x3c, 0x00, 0x00})));
  EXPECT_EQ(Hex(gg::EncodeFloat(gg::GgmlType::kBF16, x)),
            Hex(Bytes({0x80, 0x3f, 0x20, 0xc0, 0x80, 0x47, 0x80, 0x3f, 0x80, 0x3f, 0x80, 0x3f,
                       0x82, 0x3f, 0x00, 0x00})));
  const std::string f32 = gg::EncodeFloat(gg::GgmlType::kF32, x);
  ASSERT_EQ(f32.size(), 32u);
  EXPECT_EQ(Hex(f32.substr(4, 4)), Hex(Bytes({0x00, 0x00, 0x20, 0xc0})));
  // bf16 input to BF16: the same bits.
  const at::Tensor b = at::tensor({0.15625f, -3.0f}).to(at::kBFloat16);
  EXPECT_EQ(Hex(gg::EncodeFloat(gg::GgmlType::kBF16, b)), Hex(Bytes({0x20, 0x3e, 0x40, 0xc0})));
  // The reader's half decoder on subnormals and the largest value.
  EXPECT_EQ(spec::HalfToFloat(0x0001), 0x1p-24f);
  EXPECT_EQ(spec::HalfToFloat(0x83ff), -1023 * 0x1p-24f);
  EXPECT_EQ(spec::HalfToFloat(0x7bff), 65504.0f);
}

// Random blocks: Quarry's reader (gguf::Dequantize) and the spec decoder agree bit for bit.
TEST(GgufBlocks, DequantizeAgreesWithTheSpecDecoder) {
  std::mt19937 rng(1234);
  const int64_t rows = 5, cols = 96;
  for (auto [t, id] : std::vector<std::pair<gg::GgmlType, uint32_t>>{
           {gg::GgmlType::kQ8_0, 8}, {gg::GgmlType::kQ4_0, 2}, {gg::GgmlType::kQ4_1, 3},
           {gg::GgmlType::kMXFP4, 39}, {gg::GgmlType::kF16, 1}, {gg::GgmlType::kBF16, 30},
           {gg::GgmlType::kF32, 0}}) {
    SCOPED_TRACE(gg::Name(t));
    uint64_t be = 0, bb = 0;
    ASSERT_TRUE(spec::TypeLayout(id, &be, &bb));
    EXPECT_EQ(static_cast<int64_t>(be), gg::BlockElements(t));
    EXPECT_EQ(static_cast<int64_t>(bb), gg::BlockBytes(t));
    std::string data(rows * cols / be * bb, 0);
    for (auto& c : data) c = static_cast<char>(rng() & 0xff);
    // Keep the float fields finite: half exponents below 31, bf16/f32 exponents below 255.
    for (size_t b = 0; b < data.size() / bb; ++b) {
      char* p = &data[b * bb];
      switch (id) {
        case 8: case 2: p[1] &= 0x7b; break;
        case 3: p[1] &= 0x7b; p[3] &= 0xfb; break;
        case 39:  // 0xff is NaN in OCP; 0 and 1 are float32 subnormal scales in ggml
          if (static_cast<uint8_t>(p[0]) == 255 || b < 3) p[0] = b == 2 ? 254 : (b & 1);
          break;
        case 1: p[1] &= 0xfb; break;
        case 30: p[1] &= 0xbf; break;
        case 0: p[3] &= 0xbf; break;
      }
    }
    const auto* u = reinterpret_cast<const uint8_t*>(data.data());
    auto ours = gg::Dequantize(t, u, data.size(), rows, cols);
    ASSERT_TRUE(ours.ok()) << ours.status();
    auto ref = spec::Decode(id, u, data.size(), rows * cols);
    ASSERT_TRUE(ref.ok()) << ref.status();
    ASSERT_EQ(ours->sizes(), (std::vector<int64_t>{rows, cols}));
    const at::Tensor o = ours->contiguous();
    int64_t differ = 0;
    for (int64_t k = 0; k < rows * cols; ++k)
      differ += FloatBits(o.data_ptr<float>()[k]) != FloatBits((*ref)[k]);
    EXPECT_EQ(differ, 0);
    EXPECT_FALSE(gg::Dequantize(t, u, data.size() - 1, rows, cols).ok());
  }
}

// A weight off the spec's grid is an error naming the tensor, row and column.
TEST(GgufBlocks, OffGridWeightIsAnError) {
  at::Tensor w = at::zeros({2, 32});
  w[1][5] = 0.3f;  // not a multiple of 0.25
  gg::EncodeStats stats;
  auto b = gg::EncodeBlocks(gg::GgmlType::kQ8_0, "blk.0.attn_q.weight", w, at::full({2, 1}, 0.25f),
                            at::Tensor(), &stats);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("blk.0.attn_q.weight"), absl::string_view::npos) << b.status();
  EXPECT_NE(b.status().message().find("5"), absl::string_view::npos) << b.status();
  // A code beyond Q4_0's range (9 * 1.0 with int4's -8..7).
  at::Tensor w4 = at::zeros({1, 32});
  w4[0][3] = 9;
  EXPECT_FALSE(gg::EncodeBlocks(gg::GgmlType::kQ4_0, "t", w4, at::ones({1, 1}), at::zeros({1, 1}),
                                &stats)
                   .ok());
}

// ---------------------------------------------------------------------------------------------
// Whole jobs.

class Recorder : public JobObserver {
 public:
  void OnLog(LogSeverity, absl::string_view m) override { logs.emplace_back(m); }
  void OnProgress(const ProgressEvent& e) override {
    if (e.layer_index >= 0) ++layer_events;
  }
  std::vector<std::string> logs;
  int layer_events = 0;
};

struct TypeCase {
  const char* name;      // ggml type name
  uint32_t id;           // ggml type id
  uint32_t file_type;    // llama_ftype LLAMA_FTYPE_MOSTLY_*
  const char* source;    // preset name or examples/configs file
};

const TypeCase kTypes[] = {
    {"Q8_0", 8, 7, "configs/int8_g32_weight_only.json"},
    {"Q4_0", 2, 2, "int4_wo_32"},
    {"Q4_1", 3, 3, "uint4_wo_32"},
    {"MXFP4", 39, 38, "mxfp4_weight_only"},  // LLAMA_FTYPE_MOSTLY_MXFP4_MOE
};

Config ConfigFor(const TypeCase& c, bool gptq) {
  const std::string src = c.source;
  absl::StatusOr<Config> cfg = src.find(".json") != std::string::npos
                                   ? ConfigFromJsonFile(kExamples + "/" + src)
                                   : PresetConfig(src);
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  if (gptq) {
    auto algo = LoadQuantAlgoConfigFromFile(kExamples + "/algos/gptq.json");
    EXPECT_TRUE(algo.ok()) << algo.status();
    cfg->algo_config.emplace();
    cfg->algo_config->push_back(*algo);
  }
  return *cfg;
}

QuantizeOptions Job(const std::string& model, Config config, const std::string& out) {
  QuantizeOptions o;
  o.model_dir = model;
  o.config = std::move(config);
  o.output_dir = out;
  o.calibration.path = kData + "/kjv-calib.jsonl";
  o.calibration.num_samples = 8;  // GPTQ's Hessians from 512 tokens: enough for a PD matrix, and
  o.calibration.seq_len = 64;     // the exactness checks do not depend on the choice
  o.export_options.write_report = false;
  o.error_sample_sequences = 0;
  return o;
}

// The job's weights: the same job exported as fake-quantized float safetensors. GGUF jobs store
// integer scales in float16 (gguf_format.h), so this job gets scale_type float16 too, and
// asymmetric (Q4_1) specs exact_float16_min (the minimum -scale * zero_point a float16 as well);
// done here by hand, not through the exporter's own helper.
std::map<std::string, at::Tensor> FakeQuantizedWeights(const TypeCase& c, bool gptq,
                                                       const std::string& out) {
  Config cfg = ConfigFor(c, gptq);
  for (QuantizationSpec& s : cfg.global_quant_config.weight->specs)
    if (s.dtype == Dtype::kInt8 || s.dtype == Dtype::kInt4 || s.dtype == Dtype::kUint4) {
      s.scale_type = ScaleType::kFloat16;
      s.exact_float16_min = s.dtype == Dtype::kUint4;
    }
  QuantizeOptions o = Job(kLlama, cfg, out);
  o.export_options.real_quantized = false;
  auto r = QuantizeModel(o);
  EXPECT_TRUE(r.ok()) << r.status();
  auto t = LoadAllTensors(out + "/model.safetensors");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : std::map<std::string, at::Tensor>{};
}

// llama.cpp's q/k rows back to Hugging Face's order: GGUF row h*d + 2i + j holds HF row
// h*d + j*d/2 + i (convert_hf_to_gguf.py permute: view [n_head, 2, d/2], swap 1 and 2).
at::Tensor HfRows(const at::Tensor& w, int64_t n_head) {
  const int64_t d = w.size(0) / n_head;
  return w.view({n_head, d / 2, 2, w.size(1)}).transpose(1, 2).reshape(w.sizes()).contiguous();
}

struct Model {
  int64_t hidden = 256, ff = 768, layers = 8, heads = 8, kv_heads = 4, vocab = 4096, ctx = 512;
};

int64_t IntKv(const spec::File& f, const std::string& key) {
  const spec::Value* v = f.Find(key);
  EXPECT_NE(v, nullptr) << key;
  if (!v) return -1;
  EXPECT_TRUE(v->is_integer()) << key << " is " << spec::ValueTypeName(v->type);
  return v->type == spec::kInt8 || v->type == spec::kInt16 || v->type == spec::kInt32 ||
                 v->type == spec::kInt64
             ? v->i
             : static_cast<int64_t>(v->u);
}

// Header, metadata and tensor index of a tiny-llama-kjv GGUF whose linears are `type`.
void CheckLayout(const spec::File& f, const TypeCase& c) {
  const Model m;
  EXPECT_EQ(f.version, 3u);
  EXPECT_EQ(f.alignment, 32u);
  EXPECT_EQ(f.kv_count, f.keys.size());
  ASSERT_NE(f.Find("general.architecture"), nullptr);
  EXPECT_EQ(f.Find("general.architecture")->s, "llama");
  EXPECT_EQ(f.keys.front(), "general.architecture");  // llama.cpp's convention: first
  EXPECT_EQ(IntKv(f, "general.file_type"), static_cast<int64_t>(c.file_type));
  EXPECT_EQ(IntKv(f, "general.quantization_version"), 2);  // GGML_QNT_VERSION
  EXPECT_EQ(IntKv(f, "llama.context_length"), m.ctx);
  EXPECT_EQ(IntKv(f, "llama.embedding_length"), m.hidden);
  EXPECT_EQ(IntKv(f, "llama.block_count"), m.layers);
  EXPECT_EQ(IntKv(f, "llama.feed_forward_length"), m.ff);
  EXPECT_EQ(IntKv(f, "llama.attention.head_count"), m.heads);
  EXPECT_EQ(IntKv(f, "llama.attention.head_count_kv"), m.kv_heads);
  EXPECT_EQ(IntKv(f, "llama.rope.dimension_count"), m.hidden / m.heads);
  ASSERT_NE(f.Find("llama.rope.freq_base"), nullptr);
  EXPECT_EQ(f.Find("llama.rope.freq_base")->type, spec::kFloat32);
  EXPECT_EQ(f.Find("llama.rope.freq_base")->f, 10000.0);
  ASSERT_NE(f.Find("llama.attention.layer_norm_rms_epsilon"), nullptr);
  EXPECT_EQ(f.Find("llama.attention.layer_norm_rms_epsilon")->type, spec::kFloat32);
  EXPECT_EQ(f.Find("llama.attention.layer_norm_rms_epsilon")->f, static_cast<double>(1e-5f));

  // Tokenizer: SentencePiece as tokenizer.ggml.model "llama", one entry per id.
  ASSERT_NE(f.Find("tokenizer.ggml.model"), nullptr);
  EXPECT_EQ(f.Find("tokenizer.ggml.model")->s, "llama");
  const spec::Value* tokens = f.Find("tokenizer.ggml.tokens");
  const spec::Value* scores = f.Find("tokenizer.ggml.scores");
  const spec::Value* types = f.Find("tokenizer.ggml.token_type");
  ASSERT_TRUE(tokens && scores && types);
  EXPECT_EQ(tokens->elem_type, spec::kString);
  EXPECT_EQ(scores->elem_type, spec::kFloat32);
  EXPECT_EQ(types->elem_type, spec::kInt32);
  ASSERT_EQ(tokens->elems.size(), static_cast<size_t>(m.vocab));
  ASSERT_EQ(scores->elems.size(), static_cast<size_t>(m.vocab));
  ASSERT_EQ(types->elems.size(), static_cast<size_t>(m.vocab));
  EXPECT_EQ(tokens->elems[0].s, "<unk>");
  EXPECT_EQ(tokens->elems[1].s, "<s>");
  EXPECT_EQ(tokens->elems[2].s, "</s>");
  EXPECT_EQ(tokens->elems[3].s, "<0x00>");
  EXPECT_EQ(tokens->elems[13].s, "<0x0A>");
  EXPECT_EQ(tokens->elems[258].s, "<0xFF>");
  EXPECT_EQ(types->elems[0].i, 2);    // unknown
  EXPECT_EQ(types->elems[1].i, 3);    // control
  EXPECT_EQ(types->elems[2].i, 3);
  EXPECT_EQ(types->elems[3].i, 6);    // byte
  EXPECT_EQ(types->elems[258].i, 6);
  EXPECT_EQ(types->elems[259].i, 1);  // normal
  EXPECT_EQ(IntKv(f, "tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(IntKv(f, "tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(IntKv(f, "tokenizer.ggml.unknown_token_id"), 0);
  for (const char* k : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                        "tokenizer.ggml.unknown_token_id"})
    EXPECT_EQ(f.Find(k)->type, spec::kUint32) << k;  // the spec's type

  // Tensor index: llama.cpp's names, ggml dims (ne[0] = in_features), types.
  std::map<std::string, std::pair<std::vector<uint64_t>, uint32_t>> want;
  want["token_embd.weight"] = {{256, 4096}, 30};
  want["output_norm.weight"] = {{256}, 0};
  want["output.weight"] = {{256, 4096}, 30};  // lm_head excluded: the checkpoint's bf16
  const int64_t kv = m.hidden / m.heads * m.kv_heads;
  for (int i = 0; i < m.layers; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    want[b + "attn_norm.weight"] = {{256}, 0};
    want[b + "ffn_norm.weight"] = {{256}, 0};
    want[b + "attn_q.weight"] = {{256, 256}, c.id};
    want[b + "attn_k.weight"] = {{256, static_cast<uint64_t>(kv)}, c.id};
    want[b + "attn_v.weight"] = {{256, static_cast<uint64_t>(kv)}, c.id};
    want[b + "attn_output.weight"] = {{256, 256}, c.id};
    want[b + "ffn_gate.weight"] = {{256, 768}, c.id};
    want[b + "ffn_up.weight"] = {{256, 768}, c.id};
    want[b + "ffn_down.weight"] = {{768, 256}, c.id};
  }
  EXPECT_EQ(f.tensor_count, want.size());
  EXPECT_EQ(f.tensors.size(), want.size());
  for (const spec::TensorInfo& t : f.tensors) {
    SCOPED_TRACE(t.name);
    auto it = want.find(t.name);
    ASSERT_NE(it, want.end()) << "unexpected tensor";
    EXPECT_EQ(t.ne, it->second.first);
    EXPECT_EQ(t.type, it->second.second);
    EXPECT_EQ((f.data_start + t.offset) % 32, 0u);
  }
  EXPECT_EQ(f.data_start % 32, 0u);
  // The file ends with the last tensor's data, padded at most to the alignment.
  EXPECT_GE(f.bytes.size(), f.data_end);
  EXPECT_LT(f.bytes.size() - f.data_end, 32u);
}

struct Exactness {
  int64_t weights = 0, changed = 0;
};

// Every tensor decoded with the spec decoder against what the job computed: quantized linears
// against the fake-quantized export (bit for bit, Q4_1 counted), the rest against the checkpoint.
Exactness CheckValues(const spec::File& f, const TypeCase& c,
                      const std::map<std::string, at::Tensor>& fake) {
  const Model m;
  auto src = LoadAllTensors(kLlama + "/model.safetensors");
  EXPECT_TRUE(src.ok()) << src.status();
  Exactness e;
  for (const spec::TensorInfo& t : f.tensors) {
    SCOPED_TRACE(t.name);
    const int64_t cols = t.ne[0], rows = t.ne.size() > 1 ? t.ne[1] : 1;
    auto v = spec::Decode(t.type, f.Data(t), t.bytes, cols * rows);
    EXPECT_TRUE(v.ok()) << v.status();
    if (!v.ok()) continue;
    at::Tensor got = at::from_blob(v->data(), {rows, cols}, at::kFloat).clone();
    // Quarry's own reader reads the same values.
    auto ours = gg::Dequantize(*gg::TypeFromId(t.type), f.Data(t), t.bytes, rows, cols);
    EXPECT_TRUE(ours.ok()) << ours.status();
    if (ours.ok()) {
      EXPECT_TRUE(at::equal(*ours, got));
    }

    auto hf = gg::HfName(t.name);
    EXPECT_TRUE(hf.has_value());
    if (!hf) continue;
    if (t.name.find("attn_q.") != std::string::npos) got = HfRows(got, m.heads);
    if (t.name.find("attn_k.") != std::string::npos) got = HfRows(got, m.kv_heads);
    if (t.type == c.id) {
      auto it = fake.find(*hf);
      EXPECT_NE(it, fake.end()) << *hf;
      if (it == fake.end()) continue;
      const at::Tensor want = it->second.to(at::kFloat).view({rows, cols});
      // Equal as values (a fake-quantized -0.0 and ggml's +0.0 for code 0 are the same weight).
      const int64_t n = (got != want).sum().item<int64_t>();
      e.weights += want.numel();
      e.changed += n;
      if (c.id != 3) {
        EXPECT_EQ(n, 0) << "of " << want.numel() << " differ; max |diff| "
                        << (got - want).abs().max().item<float>();
      } else {
        // Q4_1's only inexact part, the float16 minimum m = -scale * zero (|m| <= 15 scale),
        // moves a value by at most half an f16 ulp of m (2^-11 |m|) plus the float32 rounding
        // of d * q + m; scale <= max|w| / 7.5 for uint4 asymmetric groups.
        const double wmax = want.abs().max().item<double>();
        const at::Tensor bound = want.abs() * 0x1p-22 + wmax * 0x1p-10;
        EXPECT_TRUE(at::all((got - want).abs() <= bound).item<bool>())
            << "max |diff| " << (got - want).abs().max().item<float>() << ", max |w| " << wmax;
      }
    } else {
      const at::Tensor want = src->at(*hf).to(at::kFloat).reshape({rows, cols});
      EXPECT_TRUE(at::equal(got, want)) << "float tensor differs from the checkpoint";
    }
  }
  return e;
}

// The job reports the weights that differ: a log line with "<changed> of <weights>" when some
// do, and no such line when none do.
bool LoggedCount(const std::vector<std::string>& logs, const Exactness& e) {
  const std::string needle = std::to_string(e.changed) + " of " + std::to_string(e.weights);
  bool counted = false, any = false;
  for (const std::string& l : logs) {
    counted |= l.find(needle) != std::string::npos;
    any |= l.find("quantized weights differ") != std::string::npos;
  }
  return e.changed > 0 ? counted : !any;
}

class GgufJobTest : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(GgufJobTest, FileReadsBackAndHoldsTheJobsWeightsBitForBit) {
  const TypeCase& c = kTypes[std::get<0>(GetParam())];
  const bool gptq = std::get<1>(GetParam());
  const std::string tag = std::string(c.name) + (gptq ? "_gptq" : "_rtn");
  const std::string out = OutDir(tag), ref = OutDir(tag + "_fake");
  QuantizeOptions o = Job(kLlama, ConfigFor(c, gptq), out);
  o.export_options.format = ExportFormat::kGguf;
  Recorder rec;
  auto r = QuantizeModel(o, &rec);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(std::find(r->files.begin(), r->files.end(), "model.gguf"), r->files.end());
  auto f = spec::ReadFile(out + "/model.gguf");
  ASSERT_TRUE(f.ok()) << f.status();
  CheckLayout(*f, c);
  const auto fake = FakeQuantizedWeights(c, gptq, ref);
  ASSERT_FALSE(fake.empty());
  const Exactness e = CheckValues(*f, c, fake);
  EXPECT_EQ(e.weights, 8 * (2 * 256 * 256 + 2 * 256 * 128 + 3 * 256 * 768));
  // Every type, Q4_1 included (its minimums are exact float16s through exact_float16_min).
  EXPECT_EQ(e.changed, 0) << "weights of the GGUF differ from the job's";
  EXPECT_TRUE(LoggedCount(rec.logs, e))
      << "the log does not say '" << e.changed << " of " << e.weights << "' weights differ; logs:\n"
      << [&] {
           std::string s;
           for (const auto& l : rec.logs) s += l + "\n";
           return s;
         }();
  std::printf("%s: %lld of %lld quantized weights differ from the job's\n", tag.c_str(),
              static_cast<long long>(e.changed), static_cast<long long>(e.weights));
  fs::remove_all(out);
  fs::remove_all(ref);
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, GgufJobTest, ::testing::Combine(::testing::Range(0, 4), ::testing::Bool()),
    [](const ::testing::TestParamInfo<std::tuple<int, bool>>& i) {
      return std::string(kTypes[std::get<0>(i.param)].name) +
             (std::get<1>(i.param) ? "_Gptq" : "_Rtn");
    });

// No quantization at all: the checkpoint's bf16 linears as BF16 (general.file_type
// LLAMA_FTYPE_MOSTLY_BF16 = 32), every value the checkpoint's.
TEST(GgufExport, UnquantizedModelKeepsTheCheckpointsBf16) {
  auto cfg = ConfigFromJson(R"({"global_quant_config": {"weight": null}, "exclude": []})");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const std::string out = OutDir("bf16");
  QuantizeOptions o = Job(kLlama, *cfg, out);
  o.export_options.format = ExportFormat::kGguf;
  auto r = QuantizeModel(o);
  ASSERT_TRUE(r.ok()) << r.status();
  auto f = spec::ReadFile(out + "/model.gguf");
  ASSERT_TRUE(f.ok()) << f.status();
  const TypeCase bf16{"BF16", 30, 32, ""};
  CheckLayout(*f, bf16);
  auto src = LoadAllTensors(kLlama + "/model.safetensors");
  ASSERT_TRUE(src.ok()) << src.status();
  const Exactness e = CheckValues(*f, bf16, *src);
  EXPECT_EQ(e.changed, 0);
  EXPECT_EQ(e.weights, 8 * (2 * 256 * 256 + 2 * 256 * 128 + 3 * 256 * 768) + 2 * 256 * 4096);
  fs::remove_all(out);
}

// ---------------------------------------------------------------------------------------------
// Refusals: before any layer runs, naming the reason; no model.gguf.

void ExpectRefused(const std::string& model, Config cfg, const std::vector<std::string>& needles) {
  const std::string out = OutDir("refused");
  QuantizeOptions o = Job(model, std::move(cfg), out);
  o.export_options.format = ExportFormat::kGguf;
  Recorder rec;
  auto r = QuantizeModel(o, &rec);
  ASSERT_FALSE(r.ok());
  for (const std::string& n : needles)
    EXPECT_NE(r.status().message().find(n), absl::string_view::npos) << r.status();
  EXPECT_EQ(rec.layer_events, 0) << "layers ran before the refusal";
  EXPECT_FALSE(fs::exists(out + "/model.gguf"));
}

TEST(GgufRefusals, OptHasNoLlamaCppArchitecture) {
  SCOPED_TRACE("opt");
  auto cfg = PresetConfig("int4_wo_32");
  ASSERT_TRUE(cfg.ok());
  ExpectRefused(kOpt, *cfg, {"OPT", "llama.cpp"});
}

TEST(GgufRefusals, Int8PerChannelHasNoExactType) {
  auto cfg = ConfigFromJsonFile(kExamples + "/configs/int8_g32_weight_only.json");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  QuantizationSpec& s = cfg->global_quant_config.weight->specs.front();
  s.qscheme = QSchemeType::kPerChannel;
  s.ch_axis = 0;
  s.group_size.reset();
  s.observer_cls = "PerChannelMinMaxObserver";
  ExpectRefused(kLlama, *cfg, {"model.layers.0.self_attn.q_proj", "per_channel", "Q8_0"});
}

TEST(GgufRefusals, Int4Group128HasNoExactType) {
  auto cfg = PresetConfig("int4_wo_128");
  ASSERT_TRUE(cfg.ok());
  ExpectRefused(kLlama, *cfg, {"model.layers.0.self_attn.q_proj", "128", "Q4_0"});
}

}  // namespace
}  // namespace quarry
