// The `quarry` CLI against a real server and worker: every service subcommand, exit codes
// (0 ok, 1 failed, 2 usage, 3 unreachable), --json output a script can parse, --server before
// or after the subcommand and $QUARRY_SERVER; and `quarry quantize` with no server, which runs
// the job through an embedded server with a local worker.
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "service_harness.h"

namespace quarry::testing {
namespace {

namespace fs = std::filesystem;

struct CliResult {
  int code = -1;
  std::string out, err;
};

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("cli");
    server_ = new ServerProcess(
        StartServer(dir_->path() + "/data", {"--model-root", TestDataDir()}));
    worker_ = StartWorker(server_->address, "w1", dir_->path() + "/w1.log").release();
  }
  static void TearDownTestSuite() {
    delete worker_;
    delete server_;
    delete dir_;
  }
  // Runs `quarry ARGS` with QUARRY_SERVER unset unless `env` says otherwise.
  static CliResult Quarry(const std::vector<std::string>& args, const std::string& env = "") {
    static int n = 0;
    const std::string out = absl::StrCat(dir_->path(), "/out", n, ".txt");
    const std::string err = absl::StrCat(dir_->path(), "/err", n++, ".txt");
    std::string cmd = absl::StrCat("env -u QUARRY_SERVER ", env, " ", BinaryDir(),
                                   "/client/quarry ", absl::StrJoin(args, " "), " > ", out,
                                   " 2> ", err);
    int status = std::system(cmd.c_str());
    CliResult r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = ReadFile(out);
    r.err = ReadFile(err);
    return r;
  }
  static std::vector<std::string> JobArgs() {
    return {"--model", TinyModel(), "--preset", "int4_wo_128", "--calib", CalibrationFile(),
            "--num-samples", "2", "--seq-len", "32", "--skip-report"};
  }
  static std::string Server() { return server_->address; }

  static TempDir* dir_;
  static ServerProcess* server_;
  static Process* worker_;
};
TempDir* CliTest::dir_ = nullptr;
ServerProcess* CliTest::server_ = nullptr;
Process* CliTest::worker_ = nullptr;

TEST_F(CliTest, SubmitWaitShowLogsJobsDownload) {
  std::vector<std::string> args = {"--server", Server(), "--json", "submit", "--wait",
                                   "--name", "cli-job", "--label", "from=cli"};
  for (const auto& a : JobArgs()) args.push_back(a);
  CliResult submit = Quarry(args);
  ASSERT_EQ(submit.code, 0) << submit.err << submit.out;
  // --json --wait: one JSON event per line; the last is the SUCCEEDED state.
  std::vector<std::string> lines = absl::StrSplit(absl::StripTrailingAsciiWhitespace(submit.out), '\n');
  ASSERT_FALSE(lines.empty());
  auto last = nlohmann::json::parse(lines.back());
  EXPECT_EQ(last["state"]["state"], "JOB_STATE_SUCCEEDED") << lines.back();
  const std::string id = last["job_id"];

  // --server after the subcommand works too.
  CliResult show = Quarry({"show", id, "--server", Server(), "--json"});
  ASSERT_EQ(show.code, 0) << show.err;
  auto job = nlohmann::json::parse(show.out);
  EXPECT_EQ(job["state"], "JOB_STATE_SUCCEEDED");
  EXPECT_EQ(job["spec"]["name"], "cli-job");
  ASSERT_GT(job["artifacts"].size(), 0u);

  CliResult human = Quarry({"--server", Server(), "show", id});
  EXPECT_EQ(human.code, 0);
  EXPECT_TRUE(absl::StrContains(human.out, "succeeded")) << human.out;

  CliResult logs = Quarry({"--server", Server(), "logs", id, "--min-severity", "1"});
  EXPECT_EQ(logs.code, 0) << logs.err;
  EXPECT_TRUE(absl::StrContains(logs.out, "INFO")) << logs.out;
  EXPECT_FALSE(absl::StrContains(logs.out, "DEBUG")) << logs.out;

  CliResult jobs = Quarry({"--server", Server(), "--json", "jobs", "--label", "from=cli"});
  ASSERT_EQ(jobs.code, 0) << jobs.err;
  auto list = nlohmann::json::parse(jobs.out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["id"], id);

  const std::string out = dir_->path() + "/download";
  CliResult dl = Quarry({"--server", Server(), "download", id, "--out", out});
  ASSERT_EQ(dl.code, 0) << dl.err;
  for (const auto& a : job["artifacts"])
    EXPECT_EQ(Sha256OfFile(out + "/" + a["name"].get<std::string>()), a["sha256"]);

  // `quarry watch` of a finished job replays it and exits 0.
  CliResult watch = Quarry({"--server", Server(), "watch", id});
  EXPECT_EQ(watch.code, 0) << watch.err;
  EXPECT_TRUE(absl::StrContains(watch.err, "succeeded")) << watch.err;
}

TEST_F(CliTest, ServerFromEnvironmentCancelAndUpload) {
  std::vector<std::string> args = {"submit", "--model", TinyModel(), "--preset", "int8",
                                   "--calib", CalibrationFile(), "--num-samples", "128",
                                   "--seq-len", "512", "--priority", "-5"};
  CliResult submit = Quarry(args, "QUARRY_SERVER=" + Server());
  ASSERT_EQ(submit.code, 0) << submit.err;
  const std::string id(absl::StripAsciiWhitespace(submit.out));
  CliResult cancel = Quarry({"cancel", id}, "QUARRY_SERVER=" + Server());
  ASSERT_EQ(cancel.code, 0) << cancel.err;
  EXPECT_TRUE(absl::StrContains(cancel.out, "cancel")) << cancel.out;
  CliResult watch = Quarry({"watch", id}, "QUARRY_SERVER=" + Server());
  EXPECT_EQ(watch.code, 1) << "a cancelled job is not a success";

  CliResult up = Quarry({"--server", Server(), "--json", "upload-model", TinyModel()});
  ASSERT_EQ(up.code, 0) << up.err;
  auto resp = nlohmann::json::parse(up.out);
  EXPECT_FALSE(resp["id"].get<std::string>().empty());
  EXPECT_EQ(resp["files"].size(), 7u);

  // quarry delete / delete-upload: the cancelled job and the upload are gone, their bytes freed.
  CliResult del = Quarry({"--server", Server(), "delete", id});
  ASSERT_EQ(del.code, 0) << del.err;
  EXPECT_TRUE(absl::StrContains(del.out, id + " deleted")) << del.out;
  EXPECT_EQ(Quarry({"--server", Server(), "show", id}).code, 1) << "deleted";
  CliResult del_up = Quarry({"--server", Server(), "--json", "delete-upload",
                             resp["id"].get<std::string>()});
  ASSERT_EQ(del_up.code, 0) << del_up.err;
  // (protobuf's JSON writes a uint64 as a string)
  EXPECT_EQ(nlohmann::json::parse(del_up.out)["freed_bytes"].get<uint64_t>(),
            std::stoull(resp["total_bytes"].get<std::string>()))
      << del_up.out;
  EXPECT_EQ(Quarry({"--server", Server(), "delete-upload", resp["id"].get<std::string>()}).code,
            1)
      << "already deleted";
}

TEST_F(CliTest, ExitCodes) {
  CliResult unknown = Quarry({"--server", Server(), "show", "j0000"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_TRUE(absl::StrContains(unknown.err, "j0000")) << unknown.err;
  CliResult usage = Quarry({"--server", Server(), "show"});
  EXPECT_EQ(usage.code, 2) << usage.err;
  CliResult unreachable = Quarry({"--server", "127.0.0.1:1", "jobs"});
  EXPECT_EQ(unreachable.code, 3) << unreachable.err;
  CliResult denied = Quarry({"--server", Server(), "submit", "--model", "/etc", "--preset",
                             "fp8"});
  EXPECT_EQ(denied.code, 1);
  EXPECT_TRUE(absl::StrContains(denied.err, "outside")) << denied.err;
}

// `quarry config`: validate (exit 0 / 1 with field paths), show a preset as JSON that validates
// again, explain the per-layer plan of a hand-written Quark config on the fixture model.
TEST_F(CliTest, ConfigValidateShowExplain) {
  const std::string examples = std::string(QUARRY_SOURCE_DIR) + "/examples/configs/";
  for (const char* f : {"fp8_w8a8_kv_fp8.json", "int4_g128_gptq_excludes.json"}) {
    CliResult ok = Quarry({"config", "validate", examples + f, "--model", TinyModel()});
    EXPECT_EQ(ok.code, 0) << f << ": " << ok.err;
    EXPECT_TRUE(absl::StrContains(ok.out, "valid")) << ok.out;
  }
  const std::string bad = dir_->path() + "/bad_config.json";
  std::ofstream(bad) << R"({"global_quant_config": {"weight": {"dtype": "int4", "qscheme": )"
                        R"("per_group", "ch_axis": -1, "group_size": -3}}})";
  CliResult invalid = Quarry({"config", "validate", bad});
  EXPECT_EQ(invalid.code, 1);
  EXPECT_TRUE(absl::StrContains(invalid.err, "global_quant_config.weight.group_size"))
      << invalid.err;

  CliResult shown = Quarry({"config", "show", "--preset", "int4_wo_128"});
  ASSERT_EQ(shown.code, 0) << shown.err;
  const nlohmann::json preset = nlohmann::json::parse(shown.out);
  EXPECT_EQ(preset["global_quant_config"]["weight"]["dtype"], "int4");
  EXPECT_EQ(preset["global_quant_config"]["weight"]["group_size"], 128);
  const std::string saved = dir_->path() + "/preset.json";
  std::ofstream(saved) << shown.out;
  EXPECT_EQ(Quarry({"config", "validate", saved}).code, 0) << "a shown preset validates";

  CliResult plan = Quarry({"config", "explain", "--model", TinyModel(), "--config",
                           examples + "int4_g128_gptq_excludes.json", "--json"});
  ASSERT_EQ(plan.code, 0) << plan.err;
  std::map<std::string, bool> excluded;
  const nlohmann::json layers = nlohmann::json::parse(plan.out)["layers"];
  for (const auto& l : layers)
    excluded[l["name"].get<std::string>()] = l["excluded"].get<bool>();
  const std::map<std::string, bool> expected = {{"model.layers.0.self_attn.q_proj", false},
                                                {"model.layers.0.mlp.down_proj", true},
                                                {"model.layers.1.mlp.down_proj", false},
                                                {"model.layers.7.self_attn.o_proj", true},
                                                {"lm_head", true}};
  for (const auto& [name, want] : expected) {
    ASSERT_TRUE(excluded.count(name)) << name << " missing from the plan:\n" << plan.out;
    EXPECT_EQ(excluded.at(name), want) << name;
  }
}

// The README's main-job command: no --server, so an embedded server and local worker run it.
TEST_F(CliTest, QuantizeWithoutAServerRunsThroughAnEmbeddedOne) {
  const std::string out = dir_->path() + "/quantized";
  std::vector<std::string> args = {"quantize", "--out", out, "--threads", "1"};
  for (const auto& a : JobArgs()) args.push_back(a);
  CliResult r = Quarry(args);
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  EXPECT_TRUE(absl::StrContains(r.err, "embedded server")) << r.err;
  bool weights = false;
  for (const auto& f : fs::recursive_directory_iterator(out))
    weights |= f.path().extension() == ".safetensors";
  EXPECT_TRUE(weights) << "the quantized model was downloaded into --out";
  EXPECT_TRUE(fs::exists(out + "/config.json"));
}

// quantize-local --checkpoint-dir / --resume-from: a run killed (SIGKILL) after layer 5 resumes
// from its checkpoints and writes the same model.safetensors as an uninterrupted run;
// checkpoints of another config are not used (the log says why).
TEST_F(CliTest, QuantizeLocalResumesFromLayerCheckpoints) {
  const std::string d = dir_->path() + "/local_resume";
  fs::create_directories(d);
  auto args = [&](const std::string& preset, const std::string& out,
                  const std::vector<std::string>& extra) {
    std::vector<std::string> a = {"quantize-local", "--model", TinyModel(), "--preset", preset,
                                  "--calib", CalibrationFile(), "--num-calib", "32",
                                  "--seq-len", "256", "--threads", "1", "--out", d + "/" + out};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  CliResult whole = Quarry(args("int8", "whole", {}));
  ASSERT_EQ(whole.code, 0) << whole.err;

  std::vector<std::string> argv = {BinaryDir() + "/client/quarry"};
  for (const std::string& a : args("int8", "killed", {"--checkpoint-dir", d + "/ck"}))
    argv.push_back(a);
  auto killed = Process::Start(argv, d + "/killed.log");
  ASSERT_NE(killed, nullptr);
  const bool reached = AwaitCondition(
      [&] { return absl::StrContains(killed->Log(), "layer 5/8 done"); }, std::chrono::seconds(120));
  killed->Signal(SIGKILL);
  killed->Wait();
  ASSERT_TRUE(reached) << killed->Log();
  ASSERT_FALSE(fs::exists(d + "/killed/model.safetensors")) << "it finished before the kill";

  CliResult resumed = Quarry(args("int8", "resumed", {"--resume-from", d + "/ck"}));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  const size_t at = resumed.err.find("replayed, starting at layer ");
  ASSERT_NE(at, std::string::npos) << resumed.err;
  const int start = std::atoi(resumed.err.c_str() + at + 28);
  EXPECT_GE(start, 4) << resumed.err;  // layers 0-3 at least were committed before the kill
  EXPECT_LE(start, 7) << resumed.err;
  EXPECT_EQ(Sha256OfFile(d + "/resumed/model.safetensors"),
            Sha256OfFile(d + "/whole/model.safetensors"));
  EXPECT_EQ(ReadFile(d + "/resumed/config.json"), ReadFile(d + "/whole/config.json"));

  CliResult other = Quarry(args("fp8", "other", {"--resume-from", d + "/ck"}));
  ASSERT_EQ(other.code, 0) << other.err;
  EXPECT_TRUE(absl::StrContains(other.err, "resume: starting at layer 0 (the checkpoint of layer 0 "
                                           "is of other job inputs"))
      << other.err;
}

}  // namespace
}  // namespace quarry::testing
