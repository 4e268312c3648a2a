// Safetensors reader/writer: the fixture model reads correctly, sharded output round-trips, and
// corrupt, truncated or hostile files give errors naming the problem (never a crash).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "quarry/safetensors.h"

namespace quarry {
namespace {

namespace fs = std::filesystem;

std::string TestDir() {
  auto dir = fs::temp_directory_path() / ("quarry_st_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir.string();
}

std::string WriteFile(const std::string& name, const std::string& bytes) {
  std::string path = TestDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string Le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

std::string FileWithHeader(const std::string& header, size_t data_bytes) {
  return Le64(header.size()) + header + std::string(data_bytes, '\x01');
}

const std::string kFixture = std::string(QUARRY_TEST_DATA_DIR) + "/models/tiny-llama-kjv";

TEST(Safetensors, ReadsFixtureModel) {
  auto model = SafetensorsModel::Open(kFixture);
  ASSERT_TRUE(model.ok()) << model.status();
  auto names = (*model)->TensorNames();
  // 8 layers x 9 tensors + embed + norm + lm_head.
  EXPECT_EQ(names.size(), 8u * 9 + 3);
  auto info = (*model)->Info("model.layers.0.self_attn.k_proj.weight");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ((*info)->dtype, StDtype::kBF16);
  EXPECT_EQ((*info)->shape, (std::vector<int64_t>{128, 256}));  // 4 KV heads x 32
  auto total = (*model)->TotalBytes();
  ASSERT_TRUE(total.ok());
  EXPECT_EQ(*total, 8392960u * 2);  // params x bf16
}

TEST(Safetensors, WriterShardsAndIndexRoundTrip) {
  std::string dir = TestDir() + "/sharded";
  SafetensorsWriter::Options opts;
  opts.max_shard_bytes = 100;
  auto w = SafetensorsWriter::Create(dir, opts);
  ASSERT_TRUE(w.ok());
  std::vector<uint8_t> a(64, 7), b(64, 9), c(16, 3);
  ASSERT_TRUE((*w)->Add("a", StDtype::kF32, {16}, a).ok());
  ASSERT_TRUE((*w)->Add("b", StDtype::kU8, {8, 8}, b).ok());
  ASSERT_TRUE((*w)->Add("c", StDtype::kBF16, {8}, c).ok());
  EXPECT_EQ((*w)->Add("c", StDtype::kBF16, {8}, c).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ((*w)->Add("d", StDtype::kF32, {3}, c).code(), absl::StatusCode::kInvalidArgument);
  auto files = (*w)->Finish();
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->size(), 3u);  // two shards + index
  auto model = SafetensorsModel::Open(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  auto bytes = (*model)->Bytes("b");
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(std::vector<uint8_t>(bytes->begin(), bytes->end()), b);
  EXPECT_EQ((*model)->files().size(), 2u);
}

struct BadCase {
  const char* name;
  std::string bytes;
  const char* expect;  // substring of the error
};

// RssAnon of this process (/proc/self/status), in bytes.
double AnonRss() {
  FILE* f = std::fopen("/proc/self/status", "r");
  char line[256];
  long kb = 0;
  while (f && std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "RssAnon: %ld kB", &kb) == 1) break;
  if (f) std::fclose(f);
  return kb * 1024.0;
}

TEST(SafetensorsStreaming, OutputLargerThanTheMemoryBudgetNeverAccumulates) {
  // 48 tensors of 8 MiB = 384 MiB of output through the writer; the process's anonymous memory
  // may grow by the one 8 MiB buffer plus slack (32 MiB), never by the output.
  std::string dir = TestDir() + "/streamed";
  fs::remove_all(dir);
  SafetensorsWriter::Options opts;
  opts.max_shard_bytes = 100ull << 20;
  auto w = SafetensorsWriter::Create(dir, opts);
  ASSERT_TRUE(w.ok()) << w.status();
  std::vector<uint8_t> buf(8u << 20);
  const double before = AnonRss();
  double peak = before;
  for (int i = 0; i < 48; ++i) {
    std::fill(buf.begin(), buf.end(), static_cast<uint8_t>(i));
    ASSERT_TRUE((*w)->Add("t" + std::to_string(100 + i), StDtype::kU8, {8 << 20}, buf).ok());
    peak = std::max(peak, AnonRss());
  }
  auto files = (*w)->Finish();
  ASSERT_TRUE(files.ok()) << files.status();
  peak = std::max(peak, AnonRss());
  EXPECT_LT(peak - before, 32.0 * (1 << 20)) << "anonymous RSS grew with the output";
  // Hugging Face's layout: model-0000K-of-0000N.safetensors (each <= max_shard_bytes) and an index
  // whose weight_map names every tensor's shard and whose total_size is the tensors' bytes.
  ASSERT_EQ(files->size(), 5u);  // 4 shards of 12 tensors + index
  EXPECT_EQ((*files)[0], "model-00001-of-00004.safetensors");
  EXPECT_EQ((*files)[3], "model-00004-of-00004.safetensors");
  EXPECT_EQ((*files)[4], "model.safetensors.index.json");
  std::ifstream in(dir + "/model.safetensors.index.json");
  auto index = nlohmann::json::parse(in);
  EXPECT_EQ(index["metadata"]["total_size"], 48ull * (8 << 20));
  EXPECT_EQ(index["weight_map"].size(), 48u);
  EXPECT_EQ(index["weight_map"]["t147"], "model-00004-of-00004.safetensors");
  for (int k = 0; k < 4; ++k)
    EXPECT_LE(fs::file_size(dir + "/" + (*files)[k]), opts.max_shard_bytes + 8192);
  // Large shards take the no-copy header insertion: the header is padded to a 4 KiB block.
  auto shard = SafetensorsFile::Open(dir + "/" + (*files)[2]);
  ASSERT_TRUE(shard.ok()) << shard.status();
  EXPECT_EQ((*shard)->data_offset() % 4096, 0u);
  auto model = SafetensorsModel::Open(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  for (int i : {0, 13, 47}) {
    auto bytes = (*model)->Bytes("t" + std::to_string(100 + i));
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    EXPECT_EQ((*bytes)[0], static_cast<uint8_t>(i));
    EXPECT_EQ((*bytes)[bytes->size() - 1], static_cast<uint8_t>(i));
  }
  // Nothing temporary is left behind.
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().string().find(".partial"), std::string::npos) << e.path();
}

TEST(SafetensorsStreaming, CrashMidExportLeavesNoCompleteLookingFile) {
  std::string dir = TestDir() + "/crashed";
  fs::remove_all(dir);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // the child writes two shards' worth and dies without Finish()
    SafetensorsWriter::Options opts;
    opts.max_shard_bytes = 1 << 20;
    auto w = SafetensorsWriter::Create(dir, opts);
    std::vector<uint8_t> buf(600 << 10, 5);
    if (w.ok()) {
      (void)(*w)->Add("a", StDtype::kU8, {600 << 10}, buf);
      (void)(*w)->Add("b", StDtype::kU8, {600 << 10}, buf);
    }
    ::_exit(0);  // no destructors: as a kill -9 mid-export
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  int partial = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    EXPECT_TRUE(name.size() > 8 && name.substr(name.size() - 8) == ".partial") << name;
    EXPECT_EQ(name[0], '.') << name;  // hidden, and never a *.safetensors or index name
    ++partial;
  }
  EXPECT_EQ(partial, 2);
  fs::remove_all(dir);
}

TEST(Safetensors, SingleShardIsPlainModelSafetensorsAsHuggingFace) {
  std::string dir = TestDir() + "/single";
  fs::remove_all(dir);
  SafetensorsWriter::Options opts;
  opts.max_shard_bytes = 1 << 20;
  auto w = SafetensorsWriter::Create(dir, opts);
  ASSERT_TRUE(w.ok());
  std::vector<uint8_t> a(64, 7);
  ASSERT_TRUE((*w)->Add("a", StDtype::kF32, {16}, a).ok());
  auto files = (*w)->Finish();
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(*files, std::vector<std::string>{"model.safetensors"});
  // Small files keep HF's exact header: compact JSON padded to a multiple of 8 only.
  auto f = SafetensorsFile::Open(dir + "/model.safetensors");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_LT((*f)->data_offset(), 128u);
}

TEST(Safetensors, CorruptFilesGiveClearErrors) {
  const std::string good_header = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  std::vector<BadCase> cases = {
      {"empty", "", "too short"},
      {"short", "abc", "too short"},
      {"len_past_eof", Le64(1000) + "{}", "past the end"},
      {"huge_len", Le64(1ull << 40) + "{}", "exceeds"},
      {"bad_json", FileWithHeader("{\"w\": [", 0), "not valid JSON"},
      {"not_object", FileWithHeader("[1,2]", 0), "not an object"},
      {"bad_dtype", FileWithHeader(R"({"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})", 1),
       "unknown dtype"},
      {"shape_mismatch",
       FileWithHeader(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
       "shape/size mismatch"},
      {"offsets_past_eof", FileWithHeader(good_header, 8), "past the end"},
      {"end_before_begin",
       FileWithHeader(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}})", 8), "< begin"},
      {"overlap",
       FileWithHeader(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                      R"("b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})",
                      8),
       "overlap"},
      {"negative_dim",
       FileWithHeader(R"({"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", 1),
       "non-negative"},
      {"overflow_shape",
       FileWithHeader(
           R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})",
           4),
       "overflow"},
      {"metadata_not_string", FileWithHeader(R"({"__metadata__":{"a":1}})", 0), "not a string"},
  };
  for (const auto& c : cases) {
    std::string path = WriteFile(std::string(c.name) + ".safetensors", c.bytes);
    auto f = SafetensorsFile::Open(path);
    ASSERT_FALSE(f.ok()) << c.name;
    EXPECT_NE(f.status().message().find(c.expect), absl::string_view::npos)
        << c.name << ": " << f.status();
    EXPECT_NE(f.status().message().find(path), absl::string_view::npos) << c.name;
  }
}

TEST(Safetensors, MissingFileIsNotFound) {
  auto f = SafetensorsFile::Open(TestDir() + "/does-not-exist.safetensors");
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
}

// Fuzz-style: random byte flips and truncations of a real file never crash the reader, and
// whatever opens successfully only exposes in-bounds tensors.
TEST(Safetensors, RandomCorruptionNeverCrashes) {
  std::ifstream in(kFixture + "/model.safetensors", std::ios::binary);
  std::string original((std::istreambuf_iterator<char>(in)), {});
  ASSERT_GT(original.size(), 100000u);
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= uint64_t(uint8_t(original[i])) << (8 * i);
  // Keep the file small: the header and a little data.
  std::string base = original.substr(0, 8 + header_len + 4096);
  std::mt19937 rng(1234);
  int opened = 0, rejected = 0;
  for (int iter = 0; iter < 400; ++iter) {
    std::string mutated = base;
    int flips = 1 + rng() % 8;
    for (int k = 0; k < flips; ++k) {
      size_t pos = rng() % (8 + header_len);  // corrupt the length or the header
      mutated[pos] = static_cast<char>(rng());
    }
    if (iter % 5 == 0) mutated.resize(rng() % mutated.size());
    std::string path = WriteFile("fuzz.safetensors", mutated);
    auto f = SafetensorsFile::Open(path);
    if (!f.ok()) {
      ++rejected;
      continue;
    }
    ++opened;
    for (const auto& t : (*f)->tensors()) {
      ASSERT_LE((*f)->data_offset() + t.end, (*f)->file_size());
      auto bytes = (*f)->Bytes(t);
      uint8_t acc = 0;
      for (uint8_t b : bytes) acc ^= b;  // touches every byte: ASan/segv would catch OOB
      volatile uint8_t sink = acc;       // keeps the loop from being optimised away
      (void)sink;
    }
  }
  EXPECT_GT(rejected, 300);  // almost every corruption is detected
  (void)opened;
}

}  // namespace
}  // namespace quarry
