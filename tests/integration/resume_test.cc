// Resume from the last finished layer (issue 17 part 5), with real quarry-server and
// quarry-worker processes: a worker killed with SIGKILL while layer 5 of 8 runs; the job goes on
// on a second worker from layer 5 (its events say so) and its model.safetensors is byte-identical
// to an uninterrupted run of the same spec; a model file changed in between invalidates the
// checkpoints (the job starts at layer 0 and says why).
#include <signal.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service_harness.h"

namespace quarry::testing {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::quarry::v1;

// Static int8 over 64 x 256 calibration tokens: every layer runs a calibration forward, about a
// second a layer here, so "layer 5 is running" lasts long enough to kill the worker in it.
v1::JobSpec ResumableJob(const std::string& model) {
  v1::JobSpec spec = TinyJob("int8", 64, 256);
  spec.mutable_model()->set_path(model);
  return spec;
}

bool LoadOfLayer(const v1::JobEvent& e, int layer) {
  return e.has_progress() && e.progress().stage() == "load" && e.progress().layer_index() == layer;
}

// Submits, waits for layer 5 to start, kills the worker; returns the events seen so far.
std::vector<v1::JobEvent> KillAtLayer5(client::Client& c, const std::string& job_id,
                                       Process& worker) {
  auto before = WatchUntil(c, job_id, [](const v1::JobEvent& e) { return LoadOfLayer(e, 5); });
  EXPECT_TRUE(!before.empty() && LoadOfLayer(before.back(), 5)) << "the job never reached layer 5";
  worker.Signal(SIGKILL);
  worker.Wait();
  return before;
}

std::string Sha256OfArtifact(client::Client& c, const std::string& job_id, const std::string& dir) {
  auto dl = c.DownloadArtifacts(job_id, dir);
  EXPECT_TRUE(dl.ok()) << dl.status();
  return Sha256OfFile(dir + "/model.safetensors");
}

TEST(Resume, KilledWorkerJobResumesAtItsLastFinishedLayerByteIdentical) {
  TempDir dir("resume");
  ServerProcess server = StartServer(dir.path() + "/data", {"--model-root", TestDataDir()});
  ASSERT_FALSE(server.address.empty());
  auto c = NewClient(server.address);
  auto w1 = StartWorker(server.address, "w1", dir.path() + "/w1.log");
  auto job = c->SubmitJob(ResumableJob(TinyModel()));
  ASSERT_TRUE(job.ok()) << job.status();
  auto before = KillAtLayer5(*c, job->id(), *w1);
  ASSERT_FALSE(before.empty());

  auto w2 = StartWorker(server.address, "w2", dir.path() + "/w2.log");
  auto after = WatchUntil(*c, job->id(), [](const v1::JobEvent&) { return false; },
                          before.back().seq());
  auto done = c->GetJob(job->id());
  ASSERT_TRUE(done.ok());
  ASSERT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED) << done->error();
  EXPECT_EQ(done->attempts(), 2);
  // The second attempt fetched layers 0-4 and ran 5, 6, 7 only.
  bool fetched = false, resumed = false;
  int lowest_layer_run = 99;
  for (const v1::JobEvent& e : after) {
    if (e.has_log() && absl::StrContains(e.log().message(), "checkpoint files")) fetched = true;
    if (e.has_log() &&
        absl::StrContains(e.log().message(),
                          "resumed from checkpoint: layers 0-4 of 8 replayed, starting at layer 5"))
      resumed = true;
    if (e.has_progress() && e.progress().stage() == "load" && e.progress().layer_index() >= 0)
      lowest_layer_run = std::min(lowest_layer_run, e.progress().layer_index());
  }
  EXPECT_TRUE(fetched) << "no 'fetched ... checkpoint files' log";
  EXPECT_TRUE(resumed) << "no 'resumed from checkpoint' log";
  EXPECT_EQ(lowest_layer_run, 5);
  // Checkpoints are gone once the job succeeded.
  EXPECT_FALSE(fs::exists(absl::StrCat(dir.path(), "/data/artifacts/", job->id(), "/1")));
  EXPECT_FALSE(fs::exists(
      absl::StrCat(dir.path(), "/data/artifacts/", job->id(), "/2/files/checkpoints")));

  // The same spec uninterrupted: the same bytes.
  auto whole = c->SubmitJob(ResumableJob(TinyModel()));
  ASSERT_TRUE(whole.ok()) << whole.status();
  ASSERT_EQ(WaitForEnd(*c, whole->id()), v1::JOB_STATE_SUCCEEDED);
  const std::string resumed_sha = Sha256OfArtifact(*c, job->id(), dir.path() + "/resumed");
  EXPECT_FALSE(resumed_sha.empty());
  EXPECT_EQ(resumed_sha, Sha256OfArtifact(*c, whole->id(), dir.path() + "/whole"));
  EXPECT_EQ(ReadFile(dir.path() + "/resumed/config.json"),
            ReadFile(dir.path() + "/whole/config.json"));
}

TEST(Resume, AChangedModelFileInvalidatesTheCheckpoints) {
  TempDir dir("resume_changed");
  const std::string model = dir.path() + "/models/tiny";
  fs::create_directories(model);
  for (const auto& entry : fs::directory_iterator(TinyModel()))
    fs::copy_file(entry.path(), model + "/" + entry.path().filename().string());
  ServerProcess server =
      StartServer(dir.path() + "/data", {"--model-root", dir.path() + "/models",
                                         "--model-root", TestDataDir()});
  ASSERT_FALSE(server.address.empty());
  auto c = NewClient(server.address);
  auto w1 = StartWorker(server.address, "w1", dir.path() + "/w1.log");
  auto job = c->SubmitJob(ResumableJob(model));
  ASSERT_TRUE(job.ok()) << job.status();
  auto before = KillAtLayer5(*c, job->id(), *w1);
  ASSERT_FALSE(before.empty());
  // Change a model file between the attempts (a harmless extra key in config.json).
  std::string cfg = ReadFile(model + "/config.json");
  const size_t brace = cfg.rfind('}');
  ASSERT_NE(brace, std::string::npos);
  cfg.insert(brace, ", \"quarry_test_changed\": 1");
  std::ofstream(model + "/config.json", std::ios::trunc) << cfg;

  auto w2 = StartWorker(server.address, "w2", dir.path() + "/w2.log");
  auto after = WatchUntil(*c, job->id(), [](const v1::JobEvent&) { return false; },
                          before.back().seq());
  auto done = c->GetJob(job->id());
  ASSERT_TRUE(done.ok());
  ASSERT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED) << done->error();
  bool restarted = false, layer0 = false;
  for (const v1::JobEvent& e : after) {
    if (e.has_log() && absl::StrContains(e.log().message(), "resume: starting at layer 0") &&
        absl::StrContains(e.log().message(), "other job inputs"))
      restarted = true;
    if (LoadOfLayer(e, 0)) layer0 = true;
  }
  EXPECT_TRUE(restarted) << "no 'resume: starting at layer 0 (... other job inputs ...)' log";
  EXPECT_TRUE(layer0) << "the second attempt did not run layer 0";
}

}  // namespace
}  // namespace quarry::testing
