// GGUF files Quarry writes, run by a real llama.cpp: node-llama-cpp 3.21.1 (its prebuilt CPU
// library, installed by scripts/setup.sh into tests/runtime/node_modules) loads each file and
// scores the first 32 kjv-eval windows of 256 tokens (llama_cpp_nll.mjs); its mean NLL must be
// within 1% of `quarry eval --model model.gguf` on the same file. Both score the same token ids:
// Quarry's tokenizer makes the windows (and the GGUF's own tokenizer, as Quarry's GGUF reader
// rebuilds it, gives the same ids). Every job runs through the `quarry` CLI as a user runs it.
//
// ctest label "runtime". Without Node.js >= 20 or node-llama-cpp the tests fail (they do not
// skip), saying how to install it.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "export/gguf_file.h"
#include "export/gguf_tokenizer.h"
#include "quarry/eval.h"
#include "quarry/safetensors.h"
#include "quarry/tensor_io.h"
#include "quarry/tokenizer.h"

namespace quarry {
namespace {

namespace fs = std::filesystem;

const std::string kData = QUARRY_TEST_DATA_DIR;
const std::string kLlama = kData + "/models/tiny-llama-kjv";
const std::string kEval = kData + "/kjv-eval.txt";
const std::string kSource = QUARRY_SOURCE_DIR;
const std::string kRuntime = kSource + "/tests/runtime";
const std::string kQuarry = std::string(QUARRY_BINARY_DIR) + "/client/quarry";
constexpr int kSeqLen = 256;
constexpr int kWindows = 32;
constexpr double kMaxRelDiff = 0.01;

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct RunResult {
  int code = -1;
  std::string out, err;
};

// Runs a shell command line; stdout and stderr go through files in `dir`.
RunResult Shell(const std::string& cmd, const std::string& dir) {
  static int n = 0;
  const std::string out = absl::StrCat(dir, "/cmd", n, ".out"), err = absl::StrCat(dir, "/cmd", n++, ".err");
  const int status = std::system(absl::StrCat(cmd, " > ", out, " 2> ", err).c_str());
  RunResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadText(out);
  r.err = ReadText(err);
  return r;
}

// The last line of `out` that parses as a JSON object with `key`.
nlohmann::json LastJsonWith(const std::string& out, const std::string& key) {
  std::istringstream in(out);
  std::string line;
  nlohmann::json found;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains(key)) found = j;
  }
  return found;
}

// Node.js >= 20 and node-llama-cpp 3.21.1 with its linux-x64 prebuilt library; "" when present,
// else what is missing and how to install it.
std::string MissingRuntime(const std::string& tmp) {
  const std::string how = " (run scripts/setup.sh, which runs `npm ci` in tests/runtime)";
  RunResult v = Shell("node --version", tmp);
  if (v.code != 0) return "Node.js is not on PATH" + how;
  int major = 0;
  if (std::sscanf(v.out.c_str(), "v%d", &major) != 1 || major < 20)
    return "node-llama-cpp 3.21.1 needs Node.js >= 20, found " + v.out;
  const std::string pkg = kRuntime + "/node_modules/node-llama-cpp/package.json";
  if (!fs::exists(pkg)) return "node-llama-cpp is not installed in tests/runtime/node_modules" + how;
  auto j = nlohmann::json::parse(ReadText(pkg), nullptr, false);
  if (j.is_discarded() || j.value("version", "") != "3.21.1")
    return "tests/runtime/node_modules has node-llama-cpp " +
           (j.is_discarded() ? std::string("?") : j.value("version", "?")) + ", not 3.21.1" + how;
  if (!fs::exists(kRuntime + "/node_modules/@node-llama-cpp/linux-x64/package.json"))
    return "@node-llama-cpp/linux-x64 (the prebuilt CPU library) is not installed" + how;
  RunResult check = Shell("node " + kRuntime + "/llama_cpp_nll.mjs --check", tmp);
  if (check.code != 0) return "node-llama-cpp's prebuilt library does not load: " + check.err;
  return "";
}

std::vector<std::vector<int32_t>> Windows(const Tokenizer& tok) {
  auto w = EvalWindows(tok, ReadText(kEval), kSeqLen, kWindows, nullptr);
  EXPECT_TRUE(w.ok()) << w.status();
  return w.ok() ? *w : std::vector<std::vector<int32_t>>{};
}

class GgufRuntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new std::string((fs::temp_directory_path() /
                            ("quarry_gguf_runtime_" + std::to_string(::getpid())))
                               .string());
    fs::remove_all(*tmp_);
    fs::create_directories(*tmp_);
    missing_ = new std::string(MissingRuntime(*tmp_));
    auto tok = Tokenizer::FromModelDir(kLlama);
    ASSERT_TRUE(tok.ok()) << tok.status();
    windows_ = new std::vector<std::vector<int32_t>>(Windows(**tok));
    nlohmann::json j;
    j["windows"] = *windows_;
    std::ofstream(*tmp_ + "/windows.json") << j.dump();
  }
  static void TearDownTestSuite() {
    fs::remove_all(*tmp_);
    delete tmp_;
    delete missing_;
    delete windows_;
  }

  struct Figures {
    double quarry = 0, llama = 0;
  };

  // Exports `model` (default tiny-llama-kjv) as GGUF with `job_args`, then scores the file with
  // both.
  Figures ExportAndCompare(const std::string& name, const std::vector<std::string>& job_args,
                           const std::string& model = kLlama) {
    Figures f;
    if (!missing_->empty()) {
      ADD_FAILURE() << *missing_;
      return f;
    }
    const std::string out = *tmp_ + "/" + name;
    std::vector<std::string> args = {kQuarry, "quantize-local", "--model", model,
                                     "--export-format", "gguf", "--out", out,
                                     "--error-samples", "0"};
    args.insert(args.end(), job_args.begin(), job_args.end());
    RunResult job = Shell(absl::StrJoin(args, " "), *tmp_);
    EXPECT_EQ(job.code, 0) << job.err;
    const std::string gguf = out + "/model.gguf";
    if (job.code != 0 || !fs::exists(gguf)) {
      ADD_FAILURE() << "no " << gguf;
      return f;
    }

    // The ids Quarry's GGUF reader evaluates are the windows handed to llama.cpp.
    auto file = exporter::gguf::GgufFile::Open(gguf);
    EXPECT_TRUE(file.ok()) << file.status();
    if (file.ok()) {
      auto tok = exporter::gguf::TokenizerFromGguf(**file);
      EXPECT_TRUE(tok.ok()) << tok.status();
      if (tok.ok()) {
        EXPECT_EQ(Windows(**tok), *windows_) << "the GGUF's tokenizer gives other ids";
      }
    }

    RunResult q = Shell(absl::StrCat(kQuarry, " --json eval --model ", gguf, " --data ", kEval,
                                   " --seq-len ", kSeqLen, " --max-windows ", kWindows),
                      *tmp_);
    EXPECT_EQ(q.code, 0) << q.err;
    const nlohmann::json qj = LastJsonWith(q.out, "mean_nll");
    EXPECT_FALSE(qj.is_null()) << q.out;
    if (qj.is_null()) return f;
    EXPECT_EQ(qj["windows"].get<int64_t>(), kWindows);
    EXPECT_EQ(qj["tokens"].get<int64_t>(), kWindows * (kSeqLen - 1));

    // One llama.cpp thread: ctest runs two tests at once on the 2-core CI machine, and the
    // tiny model's decode is not where the time goes (the per-token probability maps are).
    RunResult l = Shell(absl::StrCat("node ", kRuntime, "/llama_cpp_nll.mjs ", gguf, " ", *tmp_,
                                   "/windows.json --threads 1"),
                      *tmp_);
    EXPECT_EQ(l.code, 0) << l.err;
    const nlohmann::json lj = LastJsonWith(l.out, "mean_nll");
    EXPECT_FALSE(lj.is_null()) << l.out << l.err;
    if (lj.is_null()) return f;
    EXPECT_EQ(lj["windows"].get<int64_t>(), kWindows);
    EXPECT_EQ(lj["scored_tokens"].get<int64_t>(), kWindows * (kSeqLen - 1));
    EXPECT_EQ(lj["candidates"].get<int64_t>(), 4096) << "probabilities not over the whole vocabulary";

    f.quarry = qj["mean_nll"].get<double>();
    f.llama = lj["mean_nll"].get<double>();
    const double rel = std::abs(f.llama - f.quarry) / f.quarry;
    EXPECT_LE(rel, kMaxRelDiff) << name << ": llama.cpp " << f.llama << " vs quarry " << f.quarry;
    // A file llama.cpp reads as noise would score near log(4096) = 8.3; the float model is 3.67.
    EXPECT_LT(f.llama, 5.0);
    std::printf("%-8s mean NLL over %d windows: llama.cpp %.5f, quarry %.5f (rel diff %.4f%%), %s\n",
                name.c_str(), kWindows, f.llama, f.quarry, 100 * rel,
                lj.value("llama_cpp", "?").c_str());
    fs::remove_all(out);
    return f;
  }

  static std::string* tmp_;
  static std::string* missing_;
  static std::vector<std::vector<int32_t>>* windows_;
};
std::string* GgufRuntimeTest::tmp_ = nullptr;
std::string* GgufRuntimeTest::missing_ = nullptr;
std::vector<std::vector<int32_t>>* GgufRuntimeTest::windows_ = nullptr;

// The windows are the fixture protocol's: 32 x 256 ids, BOS only at the start of window 0.
TEST_F(GgufRuntimeTest, WindowsAreTheProtocols) {
  ASSERT_EQ(windows_->size(), static_cast<size_t>(kWindows));
  for (const auto& w : *windows_) EXPECT_EQ(w.size(), static_cast<size_t>(kSeqLen));
  EXPECT_EQ((*windows_)[0][0], 1);
  EXPECT_NE((*windows_)[1][0], 1);
  EXPECT_EQ(MissingRuntime(*tmp_), "");
}

// The unquantized model: bf16 linears as BF16 (a config with no weight quantizer).
TEST_F(GgufRuntimeTest, BF16) {
  const std::string cfg = *tmp_ + "/no_quantization.json";
  std::ofstream(cfg) << R"({"global_quant_config": {"weight": null}, "exclude": []})";
  const Figures f = ExportAndCompare("BF16", {"--config", cfg});
  // The fixture's own figure for these windows (shared/models/README.md): 3.66916.
  if (f.quarry > 0) {
    EXPECT_NEAR(f.quarry, 3.66916, 5e-4);
  }
}
TEST_F(GgufRuntimeTest, Q8_0) {
  ExportAndCompare("Q8_0", {"--config", kSource + "/examples/configs/int8_g32_weight_only.json"});
}
TEST_F(GgufRuntimeTest, Q4_0) { ExportAndCompare("Q4_0", {"--preset", "int4_wo_32"}); }
TEST_F(GgufRuntimeTest, Q4_1) { ExportAndCompare("Q4_1", {"--preset", "uint4_wo_32"}); }
TEST_F(GgufRuntimeTest, MXFP4) { ExportAndCompare("MXFP4", {"--preset", "mxfp4_weight_only"}); }

// A Qwen2 (q/k/v biases) or Qwen3 (q_norm / k_norm) variant of the fixture: its trained weights
// plus small seeded bf16 biases / near-one norm weights, config.json's model_type changed. The
// GGUF then has llama.cpp's "qwen2" / "qwen3" architecture: NEOX RoPE, no q/k row permutation,
// attn_q.bias / attn_q_norm tensors; llama.cpp running it like Quarry shows all three right.
std::string QwenVariant(const std::string& kind, const std::string& dir) {
  fs::create_directories(dir);
  auto src = SafetensorsModel::Open(kLlama);
  EXPECT_TRUE(src.ok()) << src.status();
  if (!src.ok()) return "";
  SafetensorsWriter::Options wo;
  wo.basename = "model";
  auto w = SafetensorsWriter::Create(dir, wo);
  EXPECT_TRUE(w.ok()) << w.status();
  for (const std::string& name : (*src)->TensorNames()) {
    const StTensorInfo* info = *(*src)->Info(name);
    EXPECT_TRUE((*w)->Add(name, info->dtype, info->shape, *(*src)->Bytes(name)).ok());
  }
  nlohmann::json cfg = nlohmann::json::parse(ReadText(kLlama + "/config.json"));
  const int64_t layers = cfg["num_hidden_layers"], hd = cfg["head_dim"];
  const int64_t nh = cfg["num_attention_heads"], nkv = cfg["num_key_value_heads"];
  at::manual_seed(kind == "qwen2" ? 2 : 3);
  for (int64_t i = 0; i < layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".self_attn.");
    if (kind == "qwen2") {
      for (const auto& [proj, rows] : std::vector<std::pair<std::string, int64_t>>{
               {"q_proj", nh * hd}, {"k_proj", nkv * hd}, {"v_proj", nkv * hd}})
        EXPECT_TRUE(AddTensor(**w, p + proj + ".bias", (at::randn({rows}) * 0.02).to(at::kBFloat16)).ok());
    } else {
      for (const char* norm : {"q_norm", "k_norm"})
        EXPECT_TRUE(AddTensor(**w, p + norm + ".weight", (1 + at::randn({hd}) * 0.05).to(at::kBFloat16)).ok());
    }
  }
  EXPECT_TRUE((*w)->Finish().ok());
  cfg["model_type"] = kind;
  cfg["architectures"] = {kind == "qwen2" ? "Qwen2ForCausalLM" : "Qwen3ForCausalLM"};
  std::ofstream(dir + "/config.json") << cfg.dump(2);
  for (const char* f : {"tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"})
    fs::copy_file(kLlama + "/" + f, dir + "/" + f, fs::copy_options::overwrite_existing);
  return dir;
}

TEST_F(GgufRuntimeTest, Qwen2Q4_0) {
  ExportAndCompare("qwen2_Q4_0", {"--preset", "int4_wo_32"}, QwenVariant("qwen2", *tmp_ + "/qwen2"));
}
TEST_F(GgufRuntimeTest, Qwen3Q8_0) {
  ExportAndCompare("qwen3_Q8_0", {"--config", kSource + "/examples/configs/int8_g32_weight_only.json"},
                   QwenVariant("qwen3", *tmp_ + "/qwen3"));
}

}  // namespace
}  // namespace quarry
