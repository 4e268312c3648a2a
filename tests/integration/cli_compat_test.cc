// `quarry config validate --target RUNTIME`: the runtime verdict before any work, its exit status
// (0 loads, 1 would not load) and the --json object a script reads. No server needed.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace quarry {
namespace {

namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string out, err;
};

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ValidateTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / absl::StrCat("quarry_cli_compat_", ::getpid());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  Result Quarry(const std::string& args) {
    const std::string out = (dir_ / "out.txt").string(), err = (dir_ / "err.txt").string();
    const std::string cmd = absl::StrCat(QUARRY_BINARY_DIR, "/client/quarry ", args, " > ", out,
                                         " 2> ", err);
    const int status = std::system(cmd.c_str());
    return Result{WIFEXITED(status) ? WEXITSTATUS(status) : -1, Read(out), Read(err)};
  }
  std::string PresetFile(const std::string& preset) {
    const std::string path = (dir_ / (preset + ".json")).string();
    Result r = Quarry(absl::StrCat("config show --preset ", preset));
    EXPECT_EQ(r.code, 0) << r.err;
    std::ofstream(path) << r.out;
    return path;
  }
  fs::path dir_;
};

const std::string kModel = std::string(QUARRY_TEST_DATA_DIR) + "/models/tiny-llama-kjv";

TEST_F(ValidateTargetTest, LoadsExitsZeroAndNamesTheScheme) {
  Result r = Quarry(absl::StrCat("config validate ", PresetFile("fp8"), " --target vllm"));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "loads: QuarkW8A8Fp8")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "representative Llama decoder layer")) << r.out;
}

TEST_F(ValidateTargetTest, WouldNotLoadExitsOneAndNamesRuleAndLayer) {
  Result r = Quarry(absl::StrCat("config validate ", PresetFile("int4_wo_per_channel"),
                                 " --target vllm --model ", kModel));
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "[vllm.int4_per_channel] model.layers.0.self_attn.q_proj"))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.err, "vllm would not load this quark export")) << r.err;
}

TEST_F(ValidateTargetTest, JsonAndExportFormat) {
  const std::string cfg = PresetFile("int4_wo_32");
  Result r = Quarry(absl::StrCat("--json config validate ", cfg,
                                 " --target llama.cpp --export-format gguf --model ", kModel));
  ASSERT_EQ(r.code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["valid"], true);
  EXPECT_EQ(j["target"]["runtime"], "llama.cpp");
  EXPECT_EQ(j["target"]["loads"], true);
  EXPECT_EQ(j["target"]["how"], "GGUF Q4_0");
  // The same config as Quark's format: llama.cpp reads GGUF only.
  Result q = Quarry(absl::StrCat("--json config validate ", cfg, " --target llama.cpp"));
  EXPECT_EQ(q.code, 1);
  nlohmann::json k = nlohmann::json::parse(q.out);
  EXPECT_EQ(k["target"]["breaches"][0]["rule"], "llama.cpp.format");
}

}  // namespace
}  // namespace quarry
