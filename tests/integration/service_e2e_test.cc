// The service end to end: real quarry-server and quarry-worker processes on loopback (port 0;
// the restart test uses a unix socket so the address survives the restart), the C++ client
// library, and real jobs on the tiny model. Each test states the guarantee it checks.
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "quarry/config_json.h"
#include "quarry/presets.h"
#include "quarry/v1/jobs.grpc.pb.h"
#include "service_harness.h"

namespace quarry::testing {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::quarry::v1;

std::vector<std::string> Roots() { return {"--model-root", TestDataDir()}; }

// Every event seq is 1..n in order, exactly once.
void ExpectContiguous(const std::vector<v1::JobEvent>& events) {
  for (size_t i = 0; i < events.size(); ++i)
    ASSERT_EQ(events[i].seq(), i + 1) << "event " << i << ": " << events[i].DebugString();
}

std::vector<v1::StateChange> StateChanges(const std::vector<v1::JobEvent>& events) {
  std::vector<v1::StateChange> out;
  for (const auto& e : events)
    if (e.has_state()) out.push_back(e.state());
  return out;
}

const v1::JobEvent* FindState(const std::vector<v1::JobEvent>& events, v1::JobState s) {
  for (const auto& e : events)
    if (e.has_state() && e.state().state() == s) return &e;
  return nullptr;
}

bool Never(const v1::JobEvent&) { return false; }

// Downloads a job's artifacts into `out` and checks every file against its recorded sha256.
void ExpectDownloadMatches(client::Client& c, const v1::Job& job, const std::string& out) {
  auto dl = c.DownloadArtifacts(job.id(), out);
  ASSERT_TRUE(dl.ok()) << dl.status();
  for (const auto& a : job.artifacts()) EXPECT_EQ(Sha256OfFile(out + "/" + a.name()), a.sha256());
}

bool MidJob(const v1::JobEvent& e) {
  return e.has_progress() && e.progress().layer_index() >= 1 && e.progress().num_layers() > 2;
}

std::string FailureDetail(client::Client& c, const std::string& job_id) {
  auto job = c.GetJob(job_id);
  return job.ok() ? absl::StrCat(v1::JobState_Name(job->state()), ": ", job->error())
                  : job.status().ToString();
}

// 1. A job runs end to end; every downloaded artifact is byte-identical to the file the worker
//    wrote, and the event sequence is complete.
TEST(ServiceE2E, JobRunsEndToEndAndArtifactsDownloadByteIdentical) {
  TempDir dir("e2e");
  ServerProcess server = StartServer(dir.path() + "/data", Roots());
  ASSERT_FALSE(server.address.empty());
  const std::string work = dir.path() + "/work";
  auto worker = StartWorker(server.address, "w1", dir.path() + "/w1.log",
                            {"--work-dir", work, "--keep-job-dirs"});
  auto c = NewClient(server.address);
  v1::JobSpec spec = TinyJob();
  spec.mutable_export_options()->set_skip_report(false);
  spec.set_name("e2e");
  (*spec.mutable_labels())["suite"] = "e2e";
  auto job = c->SubmitJob(spec);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::JOB_STATE_QUEUED);
  auto events = WatchAll(*c, job->id());
  ExpectContiguous(events);
  auto final_job = c->GetJob(job->id());
  ASSERT_EQ(final_job->state(), v1::JOB_STATE_SUCCEEDED)
      << final_job->error() << "\nworker log:\n" << worker->Log();
  EXPECT_EQ(final_job->last_event_seq(), events.size());
  EXPECT_EQ(final_job->worker_id(), "w1");
  EXPECT_EQ(final_job->spec().labels().at("suite"), "e2e");
  std::vector<v1::JobState> states;
  for (const auto& s : StateChanges(events)) states.push_back(s.state());
  EXPECT_EQ(states, (std::vector<v1::JobState>{v1::JOB_STATE_QUEUED, v1::JOB_STATE_ASSIGNED,
                                               v1::JOB_STATE_RUNNING, v1::JOB_STATE_SUCCEEDED}));
  int progress = 0, artifacts = 0;
  for (const auto& e : events) {
    progress += e.has_progress();
    artifacts += e.has_artifact();
  }
  EXPECT_GT(progress, 0);
  ASSERT_GT(final_job->artifacts_size(), 0);
  EXPECT_EQ(artifacts, final_job->artifacts_size());

  auto dl = c->DownloadArtifacts(job->id(), dir.path() + "/out");
  ASSERT_TRUE(dl.ok()) << dl.status();
  const std::string written = absl::StrCat(work, "/", job->id(), "-1/out");
  bool saw_weights = false;
  for (const auto& a : final_job->artifacts()) {
    const std::string got = ReadFile(dir.path() + "/out/" + a.name());
    const std::string want = ReadFile(written + "/" + a.name());
    ASSERT_FALSE(want.empty()) << a.name();
    EXPECT_TRUE(got == want) << a.name() << " differs from what the worker wrote";
    EXPECT_EQ(got.size(), a.size());
    EXPECT_EQ(Sha256OfFile(dir.path() + "/out/" + a.name()), a.sha256());
    saw_weights |= absl::EndsWith(a.name(), ".safetensors");
  }
  EXPECT_TRUE(saw_weights);
  // A partial download resumes: truncate a file's .part and download again.
  const auto& first = final_job->artifacts(0);
  const std::string path = dir.path() + "/again/" + first.name();
  fs::create_directories(fs::path(path).parent_path());
  {
    std::string bytes = ReadFile(dir.path() + "/out/" + first.name());
    std::ofstream(path + ".part", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  auto again = c->DownloadArtifact(job->id(), first.name(), path);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(Sha256OfFile(path), first.sha256());
  // An artifact whose file vanished from the server's disk is DATA_LOSS naming it, not a crash
  // or an empty download.
  int removed = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir.path() + "/data/artifacts/" + job->id()))
    if (e.is_regular_file() && e.path().filename() == first.name()) removed += fs::remove(e.path());
  ASSERT_GE(removed, 1);
  auto lost = c->DownloadArtifact(job->id(), first.name(), dir.path() + "/lost/" + first.name());
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kDataLoss) << lost.status();
  EXPECT_TRUE(absl::StrContains(lost.status().message(), "is missing on the server"))
      << lost.status();
}

// 2. Two workers run two jobs at the same time.
TEST(ServiceE2E, TwoWorkersRunTwoJobsAtOnce) {
  TempDir dir("two");
  ServerProcess server = StartServer(dir.path() + "/data", Roots());
  auto w1 = StartWorker(server.address, "w1", dir.path() + "/w1.log");
  auto w2 = StartWorker(server.address, "w2", dir.path() + "/w2.log");
  auto c = NewClient(server.address);
  auto a = c->SubmitJob(SlowJob());
  auto b = c->SubmitJob(SlowJob());
  ASSERT_TRUE(a.ok() && b.ok());
  auto ea = WatchAll(*c, a->id());
  auto eb = WatchAll(*c, b->id());
  ASSERT_EQ(c->GetJob(a->id())->state(), v1::JOB_STATE_SUCCEEDED) << FailureDetail(*c, a->id());
  ASSERT_EQ(c->GetJob(b->id())->state(), v1::JOB_STATE_SUCCEEDED) << FailureDetail(*c, b->id());
  const v1::JobEvent* ra = FindState(ea, v1::JOB_STATE_RUNNING);
  const v1::JobEvent* rb = FindState(eb, v1::JOB_STATE_RUNNING);
  const v1::JobEvent* da = FindState(ea, v1::JOB_STATE_SUCCEEDED);
  const v1::JobEvent* db = FindState(eb, v1::JOB_STATE_SUCCEEDED);
  ASSERT_TRUE(ra && rb && da && db);
  EXPECT_NE(ra->state().worker_id(), rb->state().worker_id());
  // The running intervals overlap: each started before the other finished.
  EXPECT_LT(ra->time_unix_ms(), db->time_unix_ms());
  EXPECT_LT(rb->time_unix_ms(), da->time_unix_ms());
}

// 3. kill -9 of a worker mid-job: the job is re-queued and completes on the other worker.
TEST(ServiceE2E, KilledWorkerJobIsRequeuedAndCompletesOnTheOther) {
  TempDir dir("kill");
  ServerProcess server = StartServer(dir.path() + "/data", Roots());
  std::map<std::string, std::unique_ptr<Process>> workers;
  workers["w1"] = StartWorker(server.address, "w1", dir.path() + "/w1.log");
  workers["w2"] = StartWorker(server.address, "w2", dir.path() + "/w2.log");
  auto c = NewClient(server.address);
  auto job = c->SubmitJob(SlowJob());
  ASSERT_TRUE(job.ok()) << job.status();
  auto before = WatchUntil(*c, job->id(), MidJob);
  ASSERT_TRUE(MidJob(before.back())) << "the job ended before it was mid-way: "
                                     << FailureDetail(*c, job->id());
  const v1::JobEvent* assigned = FindState(before, v1::JOB_STATE_ASSIGNED);
  ASSERT_NE(assigned, nullptr);
  const std::string victim = assigned->state().worker_id();
  ASSERT_TRUE(workers.count(victim));
  workers[victim]->Signal(SIGKILL);
  workers[victim]->Wait();
  auto after = WatchUntil(*c, job->id(), Never, before.back().seq());
  std::vector<v1::JobEvent> all = before;
  all.insert(all.end(), after.begin(), after.end());
  ExpectContiguous(all);
  auto final_job = c->GetJob(job->id());
  ASSERT_EQ(final_job->state(), v1::JOB_STATE_SUCCEEDED) << final_job->error();
  EXPECT_EQ(final_job->attempts(), 2);
  EXPECT_NE(final_job->worker_id(), victim);
  auto changes = StateChanges(after);
  ASSERT_GE(changes.size(), 3u);
  EXPECT_EQ(changes[0].state(), v1::JOB_STATE_QUEUED);
  EXPECT_TRUE(absl::StrContains(changes[0].reason(), "re-queued")) << changes[0].reason();
  EXPECT_EQ(changes[1].state(), v1::JOB_STATE_ASSIGNED);
  EXPECT_EQ(changes[1].attempt(), 2);
  ASSERT_NO_FATAL_FAILURE(ExpectDownloadMatches(*c, *final_job, dir.path() + "/out"));
}

// 3b. SIGTERM during a job (what Kubernetes sends on scale-down, rollout or node drain): the
//     worker drains. Within its drain timeout the job finishes there and is never re-run; the
//     worker takes no new job meanwhile and exits 0 once the job is reported.
TEST(ServiceE2E, SigtermedWorkerFinishesItsJobWithinTheDrainTimeout) {
  TempDir dir("drain-finish");
  ServerProcess server = StartServer(dir.path() + "/data", Roots());
  auto w1 = StartWorker(server.address, "w1", dir.path() + "/w1.log",
                        {"--drain-timeout-ms", "600000"});
  auto c = NewClient(server.address);
  auto job = c->SubmitJob(SlowJob());
  ASSERT_TRUE(job.ok()) << job.status();
  auto before = WatchUntil(*c, job->id(), MidJob);
  ASSERT_TRUE(MidJob(before.back())) << FailureDetail(*c, job->id());
  w1->Signal(SIGTERM);
  // Submitted while w1 drains: it must not run there (at most it is handed back unstarted, when
  // the assignment crossed the drain message).
  auto next = c->SubmitJob(TinyJob());
  ASSERT_TRUE(next.ok()) << next.status();
  auto status = w1->WaitFor(std::chrono::seconds(300));
  ASSERT_TRUE(status.has_value()) << "the draining worker did not exit";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << w1->Log();
  EXPECT_TRUE(absl::StrContains(w1->Log(), "draining: job " + job->id())) << w1->Log();

  auto final_job = c->GetJob(job->id());
  ASSERT_TRUE(final_job.ok()) << final_job.status();
  EXPECT_EQ(final_job->state(), v1::JOB_STATE_SUCCEEDED) << final_job->error();
  EXPECT_EQ(final_job->attempts(), 1) << "finished on the draining worker, not re-run";
  EXPECT_EQ(final_job->worker_id(), "w1");
  auto all = WatchAll(*c, job->id());
  ExpectContiguous(all);
  int queued = 0;
  for (const auto& s : StateChanges(all)) queued += s.state() == v1::JOB_STATE_QUEUED ? 1 : 0;
  EXPECT_EQ(queued, 1) << "queued once, at submission; never re-queued";
  ASSERT_GT(final_job->artifacts_size(), 0);
  ASSERT_NO_FATAL_FAILURE(ExpectDownloadMatches(*c, *final_job, dir.path() + "/out"));

  EXPECT_EQ(c->GetJob(next->id())->state(), v1::JOB_STATE_QUEUED)
      << "the job submitted during the drain waits for another worker";
  auto w2 = StartWorker(server.address, "w2", dir.path() + "/w2.log");
  EXPECT_EQ(WaitForEnd(*c, next->id()), v1::JOB_STATE_SUCCEEDED) << FailureDetail(*c, next->id());
  for (const auto& s : StateChanges(WatchAll(*c, next->id()))) {
    if (s.state() == v1::JOB_STATE_RUNNING) {
      EXPECT_EQ(s.worker_id(), "w2");
    }
  }
}

// 3c. SIGTERM during a job that outlasts the drain timeout: the worker hands the job back (it is
//     re-queued at once, without waiting for a heartbeat timeout), exits 0 well within a
//     termination grace period, and another worker completes the job.
TEST(ServiceE2E, SigtermedWorkerHandsItsJobBackAtTheDrainTimeout) {
  TempDir dir("drain-handback");
  ServerProcess server = StartServer(dir.path() + "/data", Roots());
  auto w1 = StartWorker(server.address, "w1", dir.path() + "/w1.log",
                        {"--drain-timeout-ms", "300"});
  auto c = NewClient(server.address);
  auto job = c->SubmitJob(SlowJob());
  ASSERT_TRUE(job.ok()) << job.status();
  auto before = WatchUntil(*c, job->id(), MidJob);
  ASSERT_TRUE(MidJob(before.back())) << FailureDetail(*c, job->id());
  w1->Signal(SIGTERM);
  auto status = w1->WaitFor(std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value()) << "the worker did not exit within 30 s of SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << w1->Log();
  EXPECT_TRUE(absl::StrContains(w1->Log(), "drain timeout: handing job " + job->id()))
      << w1->Log();
  auto handed = c->GetJob(job->id());
  ASSERT_TRUE(handed.ok()) << handed.status();
  EXPECT_EQ(handed->state(), v1::JOB_STATE_QUEUED) << handed->error();

  auto w2 = StartWorker(server.address, "w2", dir.path() + "/w2.log");
  auto after = WatchUntil(*c, job->id(), Never, before.back().seq());
  std::vector<v1::JobEvent> all = before;
  all.insert(all.end(), after.begin(), after.end());
  ExpectContiguous(all);
  auto final_job = c->GetJob(job->id());
  ASSERT_EQ(final_job->state(), v1::JOB_STATE_SUCCEEDED) << final_job->error();
  EXPECT_EQ(final_job->attempts(), 2);
  EXPECT_EQ(final_job->worker_id(), "w2");
  auto changes = StateChanges(after);
  ASSERT_GE(changes.size(), 3u);
  EXPECT_EQ(changes[0].state(), v1::JOB_STATE_QUEUED);
  EXPECT_TRUE(absl::StrContains(changes[0].reason(), "handed back by worker w1"))
      << changes[0].reason();
  EXPECT_EQ(changes[1].state(), v1::JOB_STATE_ASSIGNED);
  EXPECT_EQ(changes[1].worker_id(), "w2");
  ASSERT_NO_FATAL_FAILURE(ExpectDownloadMatches(*c, *final_job, dir.path() + "/out"));
}

// 4. A server crash (kill -9) and restart mid-queue loses no job, event or artifact: the
//    finished job is unchanged, the running one continues on its worker, queued ones run.
TEST(ServiceE2E, ServerRestartMidQueueLosesNothing) {
  TempDir dir("restart");
  const std::string data = dir.path() + "/data";
  const std::string listen = absl::StrCat("unix:", dir.path(), "/quarry.sock");
  std::vector<std::string> flags = Roots();
  flags.insert(flags.end(), {"--requeue-grace-ms", "60000"});
  ServerProcess server = StartServer(data, flags, listen, dir.path() + "/server1.log");
  ASSERT_FALSE(server.address.empty());
  auto worker = StartWorker(server.address, "w1", dir.path() + "/w1.log");
  auto c = NewClient(server.address);

  auto done = c->SubmitJob(TinyJob());
  ASSERT_TRUE(done.ok());
  ASSERT_EQ(WaitForEnd(*c, done->id()), v1::JOB_STATE_SUCCEEDED) << FailureDetail(*c, done->id());
  auto done_before = c->GetJob(done->id());
  auto done_events = WatchAll(*c, done->id());
  auto running = c->SubmitJob(SlowJob());
  std::vector<std::string> queued;
  for (int i = 0; i < 3; ++i) {
    auto q = c->SubmitJob(TinyJob());
    ASSERT_TRUE(q.ok());
    queued.push_back(q->id());
  }
  auto running_before = WatchUntil(*c, running->id(), MidJob);
  ASSERT_TRUE(MidJob(running_before.back())) << FailureDetail(*c, running->id());

  server.process->Signal(SIGKILL);
  server.process->Wait();
  ServerProcess restarted = StartServer(data, flags, listen, dir.path() + "/server2.log");
  ASSERT_EQ(restarted.address, server.address);

  // Nothing about the finished job changed, events and artifacts included.
  auto done_after = c->GetJob(done->id());
  ASSERT_TRUE(done_after.ok()) << done_after.status();
  EXPECT_EQ(done_after->SerializeAsString(), done_before->SerializeAsString());
  auto done_events_after = WatchAll(*c, done->id());
  ASSERT_EQ(done_events_after.size(), done_events.size());
  for (size_t i = 0; i < done_events.size(); ++i)
    EXPECT_EQ(done_events_after[i].SerializeAsString(), done_events[i].SerializeAsString());
  ASSERT_NO_FATAL_FAILURE(ExpectDownloadMatches(*c, *done_after, dir.path() + "/out"));

  // The queued jobs are still queued (or already picked up), none lost.
  for (const auto& id : queued) {
    auto j = c->GetJob(id);
    ASSERT_TRUE(j.ok()) << j.status();
  }
  // The running job continues on its worker (resumed, not re-run) and every job completes.
  auto running_rest = WatchUntil(*c, running->id(), Never, running_before.back().seq());
  std::vector<v1::JobEvent> running_all = running_before;
  running_all.insert(running_all.end(), running_rest.begin(), running_rest.end());
  ExpectContiguous(running_all);
  auto r = c->GetJob(running->id());
  EXPECT_EQ(r->state(), v1::JOB_STATE_SUCCEEDED) << r->error();
  EXPECT_EQ(r->attempts(), 1) << "resumed after the restart, not re-queued";
  for (const auto& id : queued) {
    EXPECT_EQ(WaitForEnd(*c, id), v1::JOB_STATE_SUCCEEDED) << FailureDetail(*c, id);
    ExpectContiguous(WatchAll(*c, id));
  }
}

// 5. A watcher that disconnects and re-watches from its last seq sees every event exactly once.
TEST(ServiceE2E, ReconnectingWatcherSeesEveryEventExactlyOnce) {
  TempDir dir("rewatch");
  ServerProcess server = StartServer(dir.path() + "/data", Roots());
  auto worker = StartWorker(server.address, "w1", dir.path() + "/w1.log");
  auto job_client = NewClient(server.address);
  auto job = job_client->SubmitJob(TinyJob("int8", 16, 64));
  ASSERT_TRUE(job.ok());
  // Raw stubs, a new channel per connection: the client goes away after every 3 events.
  std::vector<v1::JobEvent> seen;
  uint64_t last = 0;
  bool ended = false;
  int connections = 0;
  while (!ended && connections < 10000) {
    ++connections;
    auto channel = grpc::CreateChannel(server.address, grpc::InsecureChannelCredentials());
    auto stub = v1::QuarryService::NewStub(channel);
    grpc::ClientContext ctx;
    v1::WatchJobRequest req;
    req.set_job_id(job->id());
    req.set_from_seq(last);
    req.set_follow(true);
    auto reader = stub->WatchJob(&ctx, req);
    v1::JobEvent e;
    int n = 0;
    while (n < 3 && reader->Read(&e)) {
      seen.push_back(e);
      last = e.seq();
      ++n;
    }
    if (n < 3) {
      ASSERT_TRUE(reader->Finish().ok());
      ended = true;
    } else {
      ctx.TryCancel();  // disconnect mid-stream
      reader->Finish();
    }
  }
  EXPECT_GT(connections, 2);
  auto all = WatchAll(*job_client, job->id());
  ASSERT_EQ(seen.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i)
    EXPECT_EQ(seen[i].SerializeAsString(), all[i].SerializeAsString()) << "event " << i;
  ExpectContiguous(seen);
  EXPECT_EQ(job_client->GetJob(job->id())->state(), v1::JOB_STATE_SUCCEEDED);
}

// 6. Cancelling a running job stops it between layers, and the worker takes the next job.
TEST(ServiceE2E, CancelStopsARunningJob) {
  TempDir dir("cancel");
  ServerProcess server = StartServer(dir.path() + "/data", Roots());
  auto worker = StartWorker(server.address, "w1", dir.path() + "/w1.log");
  auto c = NewClient(server.address);
  auto job = c->SubmitJob(SlowJob());
  ASSERT_TRUE(job.ok());
  auto before = WatchUntil(*c, job->id(), MidJob);
  ASSERT_TRUE(MidJob(before.back())) << FailureDetail(*c, job->id());
  auto cancelled = c->CancelJob(job->id());
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), v1::JOB_STATE_CANCELLING);
  auto after = WatchAll(*c, job->id());
  auto final_job = c->GetJob(job->id());
  EXPECT_EQ(final_job->state(), v1::JOB_STATE_CANCELLED) << final_job->error();
  EXPECT_EQ(final_job->artifacts_size(), 0);
  int last_layer = -1, num_layers = 0;
  for (const auto& e : after)
    if (e.has_progress()) {
      last_layer = std::max(last_layer, e.progress().layer_index());
      num_layers = e.progress().num_layers();
    }
  EXPECT_LT(last_layer, num_layers - 1) << "it stopped before the last layer";
  auto next = c->SubmitJob(TinyJob());
  EXPECT_EQ(WaitForEnd(*c, next->id()), v1::JOB_STATE_SUCCEEDED) << FailureDetail(*c, next->id());
}

// 7. log_severity_level: records below it are neither stored nor streamed.
TEST(ServiceE2E, LogSeverityLevelFiltersStoredAndStreamedRecords) {
  TempDir dir("logs");
  ServerProcess server = StartServer(dir.path() + "/data", Roots());
  auto worker = StartWorker(server.address, "w1", dir.path() + "/w1.log");
  auto c = NewClient(server.address);
  auto job_with_level = [&](int level) {
    auto config = quarry::PresetConfig("int4_wo_128");
    EXPECT_TRUE(config.ok());
    config->log_severity_level = level;
    v1::JobSpec spec = TinyJob();
    spec.set_config_json(quarry::ConfigToJson(*config));
    auto job = c->SubmitJob(spec);
    EXPECT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(WaitForEnd(*c, job->id()), v1::JOB_STATE_SUCCEEDED) << FailureDetail(*c, job->id());
    return job->id();
  };
  auto severities = [&](const std::string& id, int min_severity) {
    std::multiset<int> out;
    client::WatchOptions w;
    w.job_id = id;
    w.min_severity = min_severity;
    EXPECT_TRUE(c->WatchJob(w, [&](const v1::JobEvent& e) {
                   if (e.has_log()) out.insert(e.log().severity());
                   return true;
                 }).ok());
    return out;
  };
  const std::string verbose = job_with_level(0);
  const std::string quiet = job_with_level(3);
  auto all_verbose = severities(verbose, 0);
  EXPECT_GT(all_verbose.count(0), 0u) << "DEBUG records are kept at level 0";
  EXPECT_GT(all_verbose.count(1), 0u);
  auto all_quiet = severities(quiet, 0);
  EXPECT_EQ(all_quiet.count(0) + all_quiet.count(1) + all_quiet.count(2), 0u)
      << "nothing below ERROR is stored at level 3";
  // Events of the quiet job are still contiguous: dropped records never got a seq.
  ExpectContiguous(WatchAll(*c, quiet));
  // The watcher's own view filter on top.
  auto filtered = severities(verbose, 2);
  EXPECT_EQ(filtered.count(0) + filtered.count(1), 0u);
}

// 8. Bad requests get the right status and a message that says what is wrong.
TEST(ServiceE2E, BadRequestsGetTheRightStatusAndAClearMessage) {
  TempDir dir("bad");
  // A model root with a symlink inside that escapes it.
  const std::string root = dir.path() + "/root";
  fs::create_directories(root);
  fs::create_directory_symlink(TinyModel(), root + "/tiny");  // escapes to tests/data
  fs::copy(CalibrationFile(), root + "/calib.jsonl");
  ServerProcess server =
      StartServer(dir.path() + "/data", {"--model-root", root, "--max-upload-bytes", "100000",
                                         "--max-queued-jobs", "1"});
  auto c = NewClient(server.address);
  auto code_and_message = [](const absl::Status& s) {
    return absl::StrCat(absl::StatusCodeToString(s.code()), ": ", s.message());
  };

  // Unknown job.
  for (absl::Status s : {c->GetJob("j0000").status(), c->CancelJob("j0000").status(),
                         c->DownloadArtifact("j0000", "x", dir.path() + "/x").status(),
                         c->WatchJob({"j0000"}, [](const v1::JobEvent&) { return true; })}) {
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << code_and_message(s);
    EXPECT_TRUE(absl::StrContains(s.message(), "j0000")) << s.message();
  }

  // Model path outside the roots, with "..", and through an escaping symlink.
  v1::JobSpec spec = TinyJob();
  spec.mutable_calibration()->set_path(root + "/calib.jsonl");
  for (const std::string& path :
       {TinyModel(), root + "/../" + fs::path(TinyModel()).filename().string(), root + "/tiny"}) {
    spec.mutable_model()->set_path(path);
    auto s = c->SubmitJob(spec).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << path << " " << code_and_message(s);
    EXPECT_TRUE(absl::StrContains(s.message(), "model.path")) << s.message();
  }

  // An invalid config names the field.
  fs::create_directories(root + "/model");
  for (const auto& f : fs::directory_iterator(TinyModel()))
    fs::copy(f.path(), root + "/model/" + f.path().filename().string());
  spec.mutable_model()->set_path(root + "/model");
  auto config = quarry::PresetConfig("int4_wo_128");
  config->global_quant_config.weight->specs[0].group_size = 0;
  spec.set_config_json(quarry::ConfigToJson(*config));
  auto bad_config = c->SubmitJob(spec).status();
  EXPECT_EQ(bad_config.code(), absl::StatusCode::kInvalidArgument) << code_and_message(bad_config);
  EXPECT_TRUE(absl::StrContains(bad_config.message(), "global_quant_config.weight"))
      << bad_config.message();
  spec.set_preset("int3_nonsense");
  auto bad_preset = c->SubmitJob(spec).status();
  EXPECT_EQ(bad_preset.code(), absl::StatusCode::kInvalidArgument) << code_and_message(bad_preset);
  EXPECT_TRUE(absl::StrContains(bad_preset.message(), "int3_nonsense")) << bad_preset.message();

  // An upload over --max-upload-bytes (the tiny model is 16 MB).
  auto up = c->UploadModel(TinyModel());
  EXPECT_EQ(up.status().code(), absl::StatusCode::kResourceExhausted) << code_and_message(up.status());
  EXPECT_TRUE(absl::StrContains(up.status().message(), "--max-upload-bytes")) << up.status();

  // A full queue (no workers, --max-queued-jobs 1).
  spec.set_preset("int4_wo_128");
  ASSERT_TRUE(c->SubmitJob(spec).ok());
  auto full = c->SubmitJob(spec).status();
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << code_and_message(full);
  EXPECT_TRUE(absl::StrContains(full.message(), "queue is full")) << full.message();

  // An unknown artifact of a known job lists what exists.
  auto jobs = c->ListJobs({});
  ASSERT_TRUE(jobs.ok() && !jobs->empty());
  auto missing = c->DownloadArtifact((*jobs)[0].id(), "nope.bin", dir.path() + "/nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "nope.bin"));
}

// 9. A corrupt model fails that job with a clear message, not the worker: it runs the next job.
TEST(ServiceE2E, CorruptModelFailsTheJobNotTheWorker) {
  TempDir dir("corrupt");
  const std::string root = dir.path() + "/models";
  fs::create_directories(root + "/broken");
  for (const auto& f : fs::directory_iterator(TinyModel()))
    fs::copy(f.path(), root + "/broken/" + f.path().filename().string());
  std::ofstream(root + "/broken/config.json", std::ios::trunc) << "{\"model_type\": \"llama\", ";
  ServerProcess server =
      StartServer(dir.path() + "/data", {"--model-root", root, "--model-root", TestDataDir()});
  auto worker = StartWorker(server.address, "w1", dir.path() + "/w1.log");
  auto c = NewClient(server.address);
  v1::JobSpec bad = TinyJob();
  bad.mutable_model()->set_path(root + "/broken");
  auto job = c->SubmitJob(bad);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(WaitForEnd(*c, job->id()), v1::JOB_STATE_FAILED);
  auto failed = c->GetJob(job->id());
  EXPECT_TRUE(absl::StrContains(failed->error(), "config.json")) << failed->error();
  EXPECT_EQ(failed->attempts(), 1) << "a job failure is not a worker loss";
  auto good = c->SubmitJob(TinyJob());
  EXPECT_EQ(WaitForEnd(*c, good->id()), v1::JOB_STATE_SUCCEEDED) << FailureDetail(*c, good->id());
  EXPECT_EQ(c->GetJob(good->id())->worker_id(), "w1");
  EXPECT_FALSE(worker->WaitFor(std::chrono::milliseconds(0)).has_value()) << "the worker lives";
}

// 10. Uploaded model and dataset as job sources; a worker that fetches its inputs over the
//     WorkerService (as one on another machine would).
TEST(ServiceE2E, UploadedModelAndDatasetRunOnAFetchingWorker) {
  TempDir dir("upload");
  ServerProcess server = StartServer(dir.path() + "/data", {});
  auto worker = StartWorker(server.address, "remote", dir.path() + "/w.log", {"--fetch-inputs"});
  auto c = NewClient(server.address);
  auto model = c->UploadModel(TinyModel(), "tiny");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->total_bytes(), [] {
    uint64_t n = 0;
    for (const auto& f : fs::directory_iterator(TinyModel())) n += fs::file_size(f.path());
    return n;
  }());
  for (const auto& f : model->files())
    EXPECT_EQ(f.sha256(), Sha256OfFile(TinyModel() + "/" + f.name())) << f.name();
  auto calib = c->UploadDataset(CalibrationFile());
  ASSERT_TRUE(calib.ok()) << calib.status();
  v1::JobSpec spec = TinyJob();
  spec.mutable_model()->set_uploaded_model_id(model->id());
  spec.mutable_calibration()->set_uploaded_dataset_id(calib->id());
  auto job = c->SubmitJob(spec);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(WaitForEnd(*c, job->id()), v1::JOB_STATE_SUCCEEDED) << FailureDetail(*c, job->id());
  bool fetched = false;
  client::WatchOptions w;
  w.job_id = job->id();
  c->WatchJob(w, [&](const v1::JobEvent& e) {
     fetched |= e.has_log() && absl::StrContains(e.log().message(), "fetching model");
     return true;
   }).IgnoreError();
  EXPECT_TRUE(fetched) << "the worker fetched the model over FetchInput";
  // Without --model-root no path is accepted at all.
  auto path_job = c->SubmitJob(TinyJob());
  EXPECT_EQ(path_job.status().code(), absl::StatusCode::kPermissionDenied);
}

// 11. The metrics endpoint reflects what happened and passes promtool.
TEST(ServiceE2E, MetricsEndpointReportsJobsWorkersRpcsAndBytes) {
  TempDir dir("metrics");
  std::vector<std::string> flags = Roots();
  flags.insert(flags.end(), {"--metrics-listen", "127.0.0.1:0"});
  ServerProcess server = StartServer(dir.path() + "/data", flags);
  ASSERT_FALSE(server.metrics_address.empty()) << server.process->Log();
  auto worker = StartWorker(server.address, "w1", dir.path() + "/w1.log");
  auto c = NewClient(server.address);
  auto job = c->SubmitJob(TinyJob());
  ASSERT_EQ(WaitForEnd(*c, job->id()), v1::JOB_STATE_SUCCEEDED);
  ASSERT_TRUE(c->DownloadArtifacts(job->id(), dir.path() + "/out").ok());
  c->GetJob("j0000").IgnoreError();
  std::string text = ScrapeMetrics(server.metrics_address);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(MetricValue(text, "quarry_jobs{state=\"succeeded\"}"), 1);
  EXPECT_EQ(MetricValue(text, "quarry_queue_depth"), 0);
  EXPECT_EQ(MetricValue(text, "quarry_workers_connected"), 1);
  EXPECT_EQ(MetricValue(text, "quarry_workers_busy"), 0);
  EXPECT_EQ(MetricValue(text, "quarry_job_duration_seconds_count{state=\"succeeded\"}"), 1);
  EXPECT_EQ(MetricValue(text, "quarry_rpc_requests_total{method=\"SubmitJob\",code=\"OK\"}"), 1);
  EXPECT_EQ(MetricValue(text, "quarry_rpc_requests_total{method=\"GetJob\",code=\"NOT_FOUND\"}"),
            1);
  EXPECT_GT(MetricValue(text, "quarry_rpc_duration_seconds_count{method=\"SubmitJob\"}"), 0);
  uint64_t artifact_bytes = 0;
  auto finished = c->GetJob(job->id());
  ASSERT_TRUE(finished.ok()) << finished.status();
  for (const auto& a : finished->artifacts()) artifact_bytes += a.size();
  EXPECT_EQ(MetricValue(text, "quarry_uploaded_bytes_total{kind=\"artifact\"}"), artifact_bytes);
  EXPECT_EQ(MetricValue(text, "quarry_downloaded_bytes_total{kind=\"artifact\"}"), artifact_bytes);
  const std::string file = dir.path() + "/metrics.prom";
  std::ofstream(file) << text;
  EXPECT_EQ(std::system(("/usr/bin/promtool check metrics < " + file).c_str()), 0) << text;
}

// 12. Embedded workers: --local-workers spawns them, restarts one that dies, stops them all on
//     shutdown.
std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(e.path().filename().string(), &pid)) continue;
    std::string stat = ReadFile(e.path().string() + "/stat");
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent && state != "Z") out.push_back(pid);
  }
  return out;
}

TEST(ServiceE2E, LocalWorkersAreSpawnedRestartedAndStopped) {
  TempDir dir("local");
  std::vector<std::string> flags = Roots();
  flags.insert(flags.end(), {"--local-workers", "1", "--local-worker-threads", "1",
                             "--metrics-listen", "127.0.0.1:0"});
  ServerProcess server = StartServer(dir.path() + "/data", flags);
  auto c = NewClient(server.address);
  auto job = c->SubmitJob(TinyJob());
  ASSERT_EQ(WaitForEnd(*c, job->id()), v1::JOB_STATE_SUCCEEDED) << FailureDetail(*c, job->id());
  EXPECT_EQ(c->GetJob(job->id())->worker_id(), "local-0");
  std::vector<pid_t> children = ChildrenOf(server.process->pid());
  ASSERT_EQ(children.size(), 1u);
  ::kill(children[0], SIGKILL);
  ASSERT_TRUE(AwaitCondition(
      [&] {
        auto now = ChildrenOf(server.process->pid());
        return now.size() == 1 && now[0] != children[0];
      },
      std::chrono::seconds(30)))
      << "the dead worker was restarted";
  auto second = c->SubmitJob(TinyJob());
  EXPECT_EQ(WaitForEnd(*c, second->id()), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(MetricValue(ScrapeMetrics(server.metrics_address),
                        "quarry_local_worker_restarts_total"),
            1);
  std::vector<pid_t> before_stop = ChildrenOf(server.process->pid());
  server.process->Signal(SIGTERM);
  auto status = server.process->WaitFor(std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value()) << "the server stops on SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  for (pid_t p : before_stop) EXPECT_FALSE(fs::exists("/proc/" + std::to_string(p)))
      << "local worker " << p << " outlived the server";
}

}  // namespace
}  // namespace quarry::testing
