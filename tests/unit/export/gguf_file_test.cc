// The GGUF container (export/gguf_file.h): write -> read round trip of every metadata type,
// hostile and truncated files rejected with an error naming the problem (never a crash), splits
// of a real job read back as the single file reads; and the q/k permutation / name mapping.
#include <gtest/gtest.h>

#include <c10/util/Half.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "export/gguf_file.h"
#include "export/gguf_format.h"
#include "quarry/eval.h"
#include "quarry/pipeline.h"
#include "quarry/presets.h"
#include "quarry/tokenizer.h"
#include "export/gguf_tokenizer.h"

namespace quarry::exporter::gguf {
namespace {

namespace fs = std::filesystem;

std::string TempDir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("quarry_gguf_file_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// A small file with every value type and three tensors of different types.
std::string WriteSample(const std::string& dir) {
  const std::string path = dir + "/sample.gguf";
  auto w = GgufWriter::Create(path);
  EXPECT_TRUE(w.ok()) << w.status();
  (*w)->Set("general.architecture", Value::Str("llama"));
  (*w)->Set("t.u32", Value::U32(4000000000u));
  (*w)->Set("t.i32", Value::I32(-7));
  (*w)->Set("t.f32", Value::F32(0.25f));
  (*w)->Set("t.bool", Value::Bool(true));
  (*w)->Set("t.strs", Value::StrArray({"a", "", "\xE2\x96\x81x"}));
  (*w)->Set("t.f32s", Value::F32Array({1.5f, -2.0f}));
  (*w)->Set("t.i32s", Value::I32Array({3, -4, 5}));
  Value u64;
  u64.type = ValueType::kU64;
  u64.u = 1ull << 40;
  (*w)->Set("t.u64", u64);
  at::Tensor f = at::arange(6, at::kFloat).reshape({2, 3});
  EXPECT_TRUE((*w)->AddTensor("a.weight", {3, 2}, GgmlType::kF32, EncodeFloat(GgmlType::kF32, f)).ok());
  at::Tensor q = at::zeros({1, 32}, at::kFloat);
  EncodeStats st;
  auto blocks = EncodeBlocks(GgmlType::kQ8_0, "b", q, at::ones({1, 1}), at::Tensor(), &st);
  EXPECT_TRUE(blocks.ok()) << blocks.status();
  EXPECT_TRUE((*w)->AddTensor("b.weight", {32, 1}, GgmlType::kQ8_0, *blocks).ok());
  EXPECT_TRUE((*w)->AddTensor("c.weight", {3}, GgmlType::kBF16, EncodeFloat(GgmlType::kBF16, at::ones({3}))).ok());
  EXPECT_FALSE((*w)->AddTensor("c.weight", {3}, GgmlType::kBF16, EncodeFloat(GgmlType::kBF16, at::ones({3}))).ok())
      << "a tensor name twice";
  EXPECT_FALSE((*w)->AddTensor("d.weight", {31, 1}, GgmlType::kQ8_0, *blocks).ok())
      << "bytes that do not match the shape";
  EXPECT_TRUE((*w)->Finish().ok());
  return path;
}

TEST(GgufFile, RoundTripsEveryValueTypeAndTensor) {
  const std::string dir = TempDir("roundtrip");
  const std::string path = WriteSample(dir);
  EXPECT_FALSE(fs::exists(path + ".data.partial"));
  EXPECT_FALSE(fs::exists(path + ".partial"));
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->version(), 3u);
  EXPECT_EQ((*f)->alignment(), 32u);
  EXPECT_EQ(*(*f)->GetString("general.architecture"), "llama");
  EXPECT_EQ(*(*f)->GetUInt("t.u32"), 4000000000u);
  EXPECT_EQ((*f)->Find("t.i32")->i, -7);
  EXPECT_EQ(*(*f)->GetFloat("t.f32"), 0.25);
  EXPECT_TRUE(*(*f)->GetBool("t.bool"));
  EXPECT_EQ(*(*f)->GetUInt("t.u64"), 1ull << 40);
  const Value* strs = (*f)->Find("t.strs");
  ASSERT_NE(strs, nullptr);
  ASSERT_EQ(strs->array.size(), 3u);
  EXPECT_EQ(strs->array[2].s, "\xE2\x96\x81x");
  EXPECT_EQ((*f)->Find("t.i32s")->array[1].i, -4);
  EXPECT_EQ((*f)->Find("t.f32s")->array[1].f, -2.0);
  EXPECT_EQ((*f)->GetUInt("missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*f)->GetString("t.u32").status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_EQ((*f)->tensors().size(), 3u);
  for (const TensorInfo& t : (*f)->tensors()) EXPECT_EQ(t.offset % 32, 0u) << t.name;
  const TensorInfo* a = (*f)->FindTensor("a.weight");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->ne, (std::vector<int64_t>{3, 2}));
  auto data = (*f)->Data(*a);
  auto x = Dequantize(a->type, data.data(), data.size(), a->rows(), a->ne[0]);
  ASSERT_TRUE(x.ok());
  EXPECT_TRUE(at::equal(*x, at::arange(6, at::kFloat).reshape({2, 3})));
}

// Every prefix of a valid file is rejected with an error (INVALID_ARGUMENT), never a crash or
// an out-of-bounds read (run under ASan/valgrind to see the latter; here: no crash, an error).
TEST(GgufFile, EveryTruncationIsAClearError) {
  const std::string dir = TempDir("trunc");
  const std::string bytes = ReadAll(WriteSample(dir));
  const std::string path = dir + "/cut.gguf";
  for (size_t n = 0; n < bytes.size(); n += (n < 600 ? 1 : 37)) {
    WriteAll(path, bytes.substr(0, n));
    auto f = GgufFile::Open(path);
    ASSERT_FALSE(f.ok()) << "a file cut at byte " << n << " of " << bytes.size() << " opened";
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << n << ": " << f.status();
    EXPECT_NE(f.status().message().find(path), std::string::npos) << f.status();
  }
}

TEST(GgufFile, HostileHeadersAreRejectedNamingTheProblem) {
  const std::string dir = TempDir("hostile");
  const std::string good = ReadAll(WriteSample(dir));
  const std::string path = dir + "/bad.gguf";
  auto open_with = [&](size_t offset, const std::string& patch) {
    std::string b = good;
    b.replace(offset, patch.size(), patch);
    WriteAll(path, b);
    return GgufFile::Open(path).status();
  };
  auto le64 = [](uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); };
  auto le32 = [](uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
  EXPECT_NE(std::string(open_with(0, "GGML").message()).find("bad magic"), std::string::npos);
  EXPECT_NE(std::string(open_with(4, le32(7)).message()).find("version 7"), std::string::npos);
  EXPECT_NE(std::string(open_with(8, le64(1ull << 50)).message()).find("tensors"), std::string::npos);
  EXPECT_NE(std::string(open_with(16, le64(1ull << 50)).message()).find("metadata"), std::string::npos);
  // The first key's length field: a string longer than the file.
  EXPECT_FALSE(open_with(24, le64(1ull << 60)).ok());
  // The first value's type (after the 8-byte length and the key "general.architecture").
  EXPECT_NE(std::string(open_with(24 + 8 + 20, le32(99)).message()).find("value type 99"), std::string::npos);
}

TEST(GgufFormat, QkPermutationIsInvertibleAndMatchesConvertHfToGguf) {
  // Two heads of head_dim 4, rows labelled by their index: llama.cpp's order interleaves the
  // two rotate-half halves within each head: [0, 2, 1, 3 | 4, 6, 5, 7].
  at::Tensor w = at::arange(8, at::kFloat).reshape({8, 1});
  at::Tensor p = PermuteRows(w, 2);
  at::Tensor want = at::tensor(std::vector<float>{0, 2, 1, 3, 4, 6, 5, 7}).reshape({8, 1});
  EXPECT_TRUE(at::equal(p, want)) << p;
  EXPECT_TRUE(at::equal(UnpermuteRows(p, 2), w));
  at::Tensor big = at::randn({64, 16});
  EXPECT_TRUE(at::equal(UnpermuteRows(PermuteRows(big, 4), 4), big));
  EXPECT_TRUE(at::equal(PermuteRows(at::arange(8, at::kFloat), 2),
                        PermuteRows(w, 2).reshape({8})))
      << "a bias permutes like the weight's rows";
}

TEST(GgufFormat, NamesMapBothWays) {
  for (const std::string hf : {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
                               "model.layers.0.input_layernorm.weight",
                               "model.layers.11.self_attn.q_proj.weight",
                               "model.layers.3.self_attn.k_proj.bias",
                               "model.layers.3.self_attn.q_norm.weight",
                               "model.layers.7.mlp.down_proj.weight"}) {
    auto g = GgufName(hf);
    ASSERT_TRUE(g.has_value()) << hf;
    EXPECT_EQ(HfName(*g), hf);
  }
  EXPECT_EQ(*GgufName("model.layers.11.self_attn.q_proj.weight"), "blk.11.attn_q.weight");
  EXPECT_EQ(*GgufName("model.layers.2.post_attention_layernorm.weight"), "blk.2.ffn_norm.weight");
  EXPECT_FALSE(GgufName("model.layers.2.self_attn.rotary_emb.inv_freq").has_value());
}

std::string Shared(const char* rel) { return std::string(QUARRY_TEST_DATA_DIR) + "/" + rel; }

// A job split into gguf-split files reads back exactly as the single file does.
TEST(GgufExport, SplitFilesReadBackAsTheSingleFile) {
  const std::string dir = TempDir("split");
  QuantizeOptions o;
  o.model_dir = Shared("models/tiny-llama-kjv");
  auto c = PresetConfig("int4_wo_32");
  ASSERT_TRUE(c.ok());
  o.config = *c;
  o.export_options.format = ExportFormat::kGguf;
  o.export_options.write_report = false;
  o.output_dir = dir + "/one";
  EvalOptions ev;
  ev.path = Shared("kjv-eval.txt");
  ev.max_windows = 2;
  ev.float_baseline = false;
  o.eval = ev;
  auto r1 = QuantizeModel(o);
  ASSERT_TRUE(r1.ok()) << r1.status();
  ASSERT_TRUE(r1->perplexity_quantized.has_value());
  o.eval.reset();
  o.output_dir = dir + "/split";
  o.export_options.max_shard_bytes = 2'000'000;
  auto r2 = QuantizeModel(o);
  ASSERT_TRUE(r2.ok()) << r2.status();
  std::vector<std::string> splits;
  for (const auto& f : r2->files)
    if (f.find(".gguf") != std::string::npos) splits.push_back(f);
  ASSERT_GT(splits.size(), 2u);
  EXPECT_EQ(splits.front(), "model-00001-of-0000" + std::to_string(splits.size()) + ".gguf");
  auto first = GgufFile::Open(o.output_dir + "/" + splits.front());
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*(*first)->GetUInt("split.count"), splits.size());
  EXPECT_TRUE((*first)->Find("tokenizer.ggml.tokens") != nullptr);
  auto second = GgufFile::Open(o.output_dir + "/" + splits[1]);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*(*second)->GetUInt("split.no"), 1u);
  EXPECT_EQ((*second)->Find("tokenizer.ggml.tokens"), nullptr) << "metadata only in the first";
  PerplexityOptions e;
  e.data_path = Shared("kjv-eval.txt");
  e.max_windows = 2;
  e.model_dir = dir + "/one/model.gguf";
  auto p1 = EvaluatePerplexity(e);
  ASSERT_TRUE(p1.ok()) << p1.status();
  e.model_dir = o.output_dir + "/" + splits.front();
  auto p2 = EvaluatePerplexity(e);
  ASSERT_TRUE(p2.ok()) << p2.status();
  EXPECT_EQ(p1->mean_nll, p2->mean_nll);
  // The export's perplexity, measured from the file, is the job's own (issue: within 1e-4 rel.).
  EXPECT_LE(std::abs(p1->perplexity - *r1->perplexity_quantized) / *r1->perplexity_quantized, 1e-4)
      << "job " << *r1->perplexity_quantized << " vs model.gguf " << p1->perplexity;
  EXPECT_TRUE(p1->quantized_model);
  // A missing split is an error naming it.
  fs::remove(o.output_dir + "/" + splits.back());
  auto p3 = EvaluatePerplexity(e);
  ASSERT_FALSE(p3.ok());
  EXPECT_NE(std::string(p3.status().message()).find(splits.back()), std::string::npos) << p3.status();
}

}  // namespace
}  // namespace quarry::exporter::gguf

namespace quarry::exporter::gguf {
namespace {

// A model directory with the fixture's weights and `tokenizer_json` as its tokenizer.json.
std::string ModelWithTokenizer(const std::string& dir, const std::string& tokenizer_json) {
  const std::string llama = Shared("models/tiny-llama-kjv");
  fs::create_directories(dir);
  fs::copy_file(llama + "/config.json", dir + "/config.json", fs::copy_options::overwrite_existing);
  fs::remove(dir + "/model.safetensors");
  fs::create_symlink(llama + "/model.safetensors", dir + "/model.safetensors");
  fs::copy_file(tokenizer_json, dir + "/tokenizer.json", fs::copy_options::overwrite_existing);
  return dir;
}

// The tokenizer Quarry rebuilds from a GGUF encodes text exactly as the source tokenizer does:
// SentencePiece (the fixture's tokenizer.model, on the whole eval text) and byte-level BPE
// (GPT-2's and Llama 3's pre-tokenizers, which give tokenizer.ggml.pre gpt-2 / llama-bpe).
TEST(GgufTokenizer, RebuiltTokenizersEncodeAsTheSource) {
  const std::string dir = TempDir("tok");
  struct Case {
    std::string model_dir, pre;
  };
  std::vector<Case> cases = {
      {Shared("models/tiny-llama-kjv"), ""},
      {ModelWithTokenizer(dir + "/gpt2", Shared("tokenizers/gpt2_tiny.json")), "gpt-2"},
      {ModelWithTokenizer(dir + "/llama3", Shared("tokenizers/llama3_tiny.json")), "llama-bpe"},
  };
  const std::string eval = ReadAll(Shared("kjv-eval.txt"));
  for (const Case& c : cases) {
    SCOPED_TRACE(c.model_dir);
    QuantizeOptions o;
    o.model_dir = c.model_dir;
    auto cfg = PresetConfig("int4_wo_32");
    ASSERT_TRUE(cfg.ok());
    o.config = *cfg;
    o.export_options.format = ExportFormat::kGguf;
    o.export_options.write_report = false;
    o.output_dir = dir + "/out_" + fs::path(c.model_dir).filename().string();
    auto r = QuantizeModel(o);
    ASSERT_TRUE(r.ok()) << r.status();
    auto f = GgufFile::Open(o.output_dir + "/model.gguf");
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ(*(*f)->GetString("tokenizer.ggml.model"), c.pre.empty() ? "llama" : "gpt2");
    if (!c.pre.empty()) EXPECT_EQ(*(*f)->GetString("tokenizer.ggml.pre"), c.pre);
    EXPECT_EQ((*f)->Find("tokenizer.ggml.tokens")->array.size(), 4096u) << "padded to vocab_size";
    auto src = Tokenizer::FromModelDir(c.model_dir);
    ASSERT_TRUE(src.ok()) << src.status();
    auto rebuilt = TokenizerFromGguf(**f);
    ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
    EXPECT_EQ((*rebuilt)->bos_id(), (*src)->bos_id());
    for (const std::string text : {std::string("In the beginning God created the heaven's 1234 "
                                               "earth.\n\n  And  the\tearth"),
                                   std::string("caf\xC3\xA9 \xE2\x80\x94 <|endoftext|> x"),
                                   eval.substr(0, 20000)}) {
      for (bool special : {false, true})
        EXPECT_EQ((*rebuilt)->Encode(text, special), (*src)->Encode(text, special))
            << text.substr(0, 40) << " special " << special;
    }
  }
}

}  // namespace
}  // namespace quarry::exporter::gguf

#include "numerics/reference/int_grid.h"

namespace quarry::numerics::ref {
namespace {

float Half(float v) { return static_cast<float>(c10::Half(v)); }

// exact_float16_min's rounding: a float16 scale whose product with the zero point is a float16,
// the nearest such to the scale, losing bits only when odd(z) > 1.
TEST(Float16ScaleWithExactMin, KeepsScaleTimesZeroPointInFloat16) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> log_scale(-14.0f, 4.0f);
  int reduced = 0;
  for (int k = 0; k < 20000; ++k) {
    const float s = std::exp2(log_scale(rng));
    const float z = static_cast<float>(k % 16);
    const float r = Float16ScaleWithExactMin(s, z);
    ASSERT_EQ(Half(r), r) << "a float16: s " << s << " z " << z;
    ASSERT_EQ(Half(r * z), r * z) << "s * z a float16: s " << s << " z " << z;
    const int odd = z == 0 ? 1 : static_cast<int>(z) >> __builtin_ctz(static_cast<int>(z));
    if (odd == 1) {
      ASSERT_EQ(r, Half(s)) << "odd(z) = 1 needs no extra rounding: s " << s << " z " << z;
    } else {
      // odd(z) < 2^b: the scale keeps at least 11 - b significant bits.
      const int b = 32 - __builtin_clz(odd);
      ASSERT_LE(std::abs(r - s), std::ldexp(std::abs(s), -(11 - b))) << s << " " << z;
      reduced += r != Half(s);
    }
  }
  EXPECT_GT(reduced, 0);
  EXPECT_EQ(Float16ScaleWithExactMin(0.0f, 5.0f), 0.0f);
  // 1 + 2^-10 (11 significant bits) times 3 needs 12 bits: one bit goes.
  const float s = 1.0f + std::ldexp(1.0f, -10);
  EXPECT_EQ(Half(s), s);
  EXPECT_NE(Half(s * 3), s * 3);
  EXPECT_EQ(Float16ScaleWithExactMin(s, 3.0f) * 3, Half(Float16ScaleWithExactMin(s, 3.0f) * 3));
}

}  // namespace
}  // namespace quarry::numerics::ref
