// The job state machine with a fake clock and fake worker connections: scheduling order and
// fit, every transition of job_manager.h, re-queue on stream loss / heartbeat timeout / restart
// grace, bounded attempts, cancellation, log filtering, idempotent submission, queue limits and
// the event-poll contract watchers rely on.
#include "jobs/job_manager.h"

#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <fstream>

#include "env/file_system.h"
#include "jobs/job_states.h"

namespace quarry::server {
namespace {

class FakeConnection : public WorkerConnection {
 public:
  void Send(const v1::ServerMessage& m) override { sent.push_back(m); }
  void Close(const absl::Status& st) override { closed = st; closed_called = true; }
  std::vector<v1::JobAssignment> assignments() const {
    std::vector<v1::JobAssignment> out;
    for (const auto& m : sent)
      if (m.has_assignment()) out.push_back(m.assignment());
    return out;
  }
  std::vector<v1::ServerMessage> sent;
  absl::Status closed;
  bool closed_called = false;
};

class JobManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("quarry_jm_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Open();
  }
  void TearDown() override {
    manager_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    manager_.reset();
    store_.reset();
    auto store = JobStore::Open((dir_ / "quarry.db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    artifacts_ = std::make_unique<ArtifactStore>(dir_.string(), PosixFileSystem());
    JobManagerOptions o = options_;
    o.on_job_finished = [this](v1::JobState s, double) { finished_.push_back(s); };
    auto m = JobManager::Create(o, store_.get(), artifacts_.get(), &clock_);
    ASSERT_TRUE(m.ok()) << m.status();
    manager_ = std::move(*m);
  }

  NewJob Job(int priority = 0, std::string device = "", uint64_t memory = 1000,
             int log_level = 1) {
    NewJob j;
    j.spec.mutable_model()->set_path("/models/tiny");
    j.spec.set_priority(priority);
    j.device_kind = device;
    j.memory_bytes = memory;
    j.assignment.set_model_path("/models/tiny");
    j.assignment.set_log_severity_level(log_level);
    return j;
  }
  std::string Submit(NewJob j) {
    auto job = manager_->Submit(std::move(j));
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? job->id() : "";
  }
  void Connect(const std::string& id, FakeConnection* conn, std::string kind = "cpu",
               uint64_t memory = 1 << 30, const std::string& running = "", int attempt = 0) {
    v1::WorkerHello h;
    h.set_worker_id(id);
    h.mutable_device()->set_kind(kind);
    h.mutable_device()->set_total_memory_bytes(memory);
    h.set_host_memory_bytes(kind == "cpu" ? memory : 64ull << 30);
    h.set_running_job_id(running);
    h.set_running_attempt(attempt);
    ASSERT_TRUE(manager_->WorkerConnected(h, conn).ok());
  }
  void Event(const std::string& worker, FakeConnection* conn, const v1::JobAssignment& a,
             v1::WorkerJobEvent e) {
    e.set_job_id(a.job_id());
    e.set_attempt(a.attempt());
    v1::WorkerMessage m;
    *m.mutable_event() = e;
    manager_->HandleWorkerMessage(worker, conn, m);
  }
  void Started(const std::string& worker, FakeConnection* conn, const v1::JobAssignment& a) {
    v1::WorkerJobEvent e;
    e.set_started(true);
    Event(worker, conn, a, e);
  }
  void Complete(const std::string& worker, FakeConnection* conn, const v1::JobAssignment& a,
                bool success, bool cancelled = false, const std::string& error = "",
                std::vector<v1::ArtifactInfo> artifacts = {}) {
    v1::WorkerMessage m;
    v1::JobCompletion* c = m.mutable_completion();
    c->set_job_id(a.job_id());
    c->set_attempt(a.attempt());
    c->set_success(success);
    c->set_cancelled(cancelled);
    c->set_error(error);
    for (auto& x : artifacts) *c->add_artifacts() = x;
    manager_->HandleWorkerMessage(worker, conn, m);
  }
  // A draining worker's completion that hands the job back unfinished.
  void HandBack(const std::string& worker, FakeConnection* conn, const v1::JobAssignment& a) {
    v1::WorkerMessage m;
    m.mutable_completion()->set_job_id(a.job_id());
    m.mutable_completion()->set_attempt(a.attempt());
    m.mutable_completion()->set_handed_back(true);
    manager_->HandleWorkerMessage(worker, conn, m);
  }
  v1::JobState State(const std::string& id) {
    auto j = manager_->Get(id);
    EXPECT_TRUE(j.ok()) << j.status();
    return j.ok() ? j->state() : v1::JOB_STATE_UNSPECIFIED;
  }
  std::vector<v1::JobEvent> Events(const std::string& id) {
    auto e = store_->ReadEvents(id, 0, 100000);
    EXPECT_TRUE(e.ok());
    return *e;
  }
  std::vector<v1::JobState> States(const std::string& id) {
    std::vector<v1::JobState> out;
    for (const auto& e : Events(id))
      if (e.has_state()) out.push_back(e.state().state());
    return out;
  }

  // Fake connections outlive the manager, which closes the ones still connected when it shuts
  // down (TearDown, or Open() simulating a restart).
  FakeConnection& NewConnection() { return connections_.emplace_back(); }
  std::deque<FakeConnection> connections_;
  std::filesystem::path dir_;
  FakeClock clock_;
  JobManagerOptions options_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<ArtifactStore> artifacts_;
  std::unique_ptr<JobManager> manager_;
  std::vector<v1::JobState> finished_;
};

using S = v1::JobState;

TEST_F(JobManagerTest, PriorityThenFifo) {
  std::string low1 = Submit(Job(0));
  std::string high = Submit(Job(5));
  std::string low2 = Submit(Job(0));
  std::string mid = Submit(Job(2));
  FakeConnection& w = NewConnection();
  Connect("w", &w);
  std::vector<std::string> order;
  for (int i = 0; i < 4; ++i) {
    auto a = w.assignments();
    ASSERT_EQ(a.size(), static_cast<size_t>(i + 1)) << "one job per worker at a time";
    order.push_back(a.back().job_id());
    Started("w", &w, a.back());
    Complete("w", &w, a.back(), true);
  }
  EXPECT_EQ(order, (std::vector<std::string>{high, mid, low1, low2}));
}

TEST_F(JobManagerTest, OneJobPerWorkerAndTwoWorkersRunTwoJobs) {
  std::string a = Submit(Job());
  std::string b = Submit(Job());
  std::string c = Submit(Job());
  FakeConnection& w1 = NewConnection();
  FakeConnection& w2 = NewConnection();
  Connect("w1", &w1);
  Connect("w2", &w2);
  ASSERT_EQ(w1.assignments().size(), 1u);
  ASSERT_EQ(w2.assignments().size(), 1u);
  EXPECT_EQ(State(a), S::JOB_STATE_ASSIGNED);
  EXPECT_EQ(State(b), S::JOB_STATE_ASSIGNED);
  EXPECT_EQ(State(c), S::JOB_STATE_QUEUED);
  EXPECT_EQ(manager_->Stats().workers_busy, 2);
  EXPECT_EQ(manager_->Stats().queued, 1);
}

TEST_F(JobManagerTest, DeviceAndMemoryMustFit) {
  std::string gpu_job = Submit(Job(10, "cuda", 1000));
  std::string big_job = Submit(Job(5, "", 8ull << 30));
  std::string small_job = Submit(Job(0, "", 1000));
  FakeConnection& cpu = NewConnection();
  Connect("cpu-small", &cpu, "cpu", 4ull << 30);
  // The high-priority jobs fit no idle worker; they do not block the small one.
  auto a = cpu.assignments();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].job_id(), small_job);
  EXPECT_EQ(State(gpu_job), S::JOB_STATE_QUEUED);
  EXPECT_EQ(State(big_job), S::JOB_STATE_QUEUED);
  // Each waiting job got one warning explaining why.
  int warnings = 0;
  for (const auto& e : Events(big_job))
    if (e.has_log() && e.log().severity() == 2) ++warnings;
  EXPECT_EQ(warnings, 1);
  FakeConnection& gpu = NewConnection();
  Connect("gpu0", &gpu, "cuda", 80ull << 30);
  ASSERT_EQ(gpu.assignments().size(), 1u);
  EXPECT_EQ(gpu.assignments()[0].job_id(), gpu_job);
}

TEST_F(JobManagerTest, FullLifecycleEventsAndArtifacts) {
  std::string id = Submit(Job());
  FakeConnection& w = NewConnection();
  Connect("w", &w);
  v1::JobAssignment a = w.assignments().at(0);
  EXPECT_EQ(a.attempt(), 1);
  EXPECT_EQ(a.model_path(), "/models/tiny");
  Started("w", &w, a);
  v1::WorkerJobEvent p;
  p.mutable_progress()->set_stage("quantize");
  p.mutable_progress()->set_layer_index(3);
  p.mutable_progress()->set_num_layers(8);
  Event("w", &w, a, p);
  // The worker uploads an artifact, then reports success listing it.
  auto writer = artifacts_->OpenArtifact(id, 1, "model.safetensors", 0);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("weights").ok());
  auto staged = (*writer)->Finish(7, "");
  ASSERT_TRUE(staged.ok());
  v1::ArtifactInfo info;
  info.set_name("model.safetensors");
  info.set_size(7);
  info.set_sha256(staged->sha256);
  Complete("w", &w, a, true, false, "", {info});
  auto job = manager_->Get(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), S::JOB_STATE_SUCCEEDED);
  ASSERT_EQ(job->artifacts_size(), 1);
  EXPECT_EQ(job->artifacts(0).sha256(), staged->sha256);
  EXPECT_EQ(States(id), (std::vector<S>{S::JOB_STATE_QUEUED, S::JOB_STATE_ASSIGNED,
                                        S::JOB_STATE_RUNNING, S::JOB_STATE_SUCCEEDED}));
  // Sequence numbers 1..n without gaps; the terminal state event is the last one.
  auto events = Events(id);
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].seq(), i + 1);
  EXPECT_EQ(events.back().state().state(), S::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(job->last_event_seq(), events.size());
  auto rec = store_->GetArtifact(id, "model.safetensors");
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_EQ((*rec)->info.size(), 7u);
  EXPECT_EQ(finished_, (std::vector<S>{S::JOB_STATE_SUCCEEDED}));
  EXPECT_EQ(manager_->Stats().workers_busy, 0);
}

TEST_F(JobManagerTest, SuccessWithAMissingArtifactFails) {
  std::string id = Submit(Job());
  FakeConnection& w = NewConnection();
  Connect("w", &w);
  v1::JobAssignment a = w.assignments().at(0);
  v1::ArtifactInfo info;
  info.set_name("model.safetensors");
  info.set_size(10);
  info.set_sha256(std::string(64, 'a'));
  Complete("w", &w, a, true, false, "", {info});
  auto job = manager_->Get(id);
  EXPECT_EQ(job->state(), S::JOB_STATE_FAILED);
  EXPECT_NE(job->error().find("model.safetensors"), std::string::npos) << job->error();
}

TEST_F(JobManagerTest, WorkerFailureFailsTheJobNotTheWorker) {
  std::string bad = Submit(Job());
  std::string good = Submit(Job());
  FakeConnection& w = NewConnection();
  Connect("w", &w);
  v1::JobAssignment a = w.assignments().at(0);
  Started("w", &w, a);
  Complete("w", &w, a, false, false, "model.safetensors: truncated at byte 4096");
  auto job = manager_->Get(bad);
  EXPECT_EQ(job->state(), S::JOB_STATE_FAILED);
  EXPECT_EQ(job->error(), "model.safetensors: truncated at byte 4096");
  ASSERT_EQ(w.assignments().size(), 2u) << "the worker takes the next job";
  EXPECT_EQ(w.assignments()[1].job_id(), good);
}

TEST_F(JobManagerTest, StreamLossRequeuesAndAnotherWorkerFinishes) {
  std::string id = Submit(Job());
  FakeConnection& w1 = NewConnection();
  FakeConnection& w2 = NewConnection();
  Connect("w1", &w1);
  v1::JobAssignment a1 = w1.assignments().at(0);
  Started("w1", &w1, a1);
  Connect("w2", &w2);
  EXPECT_TRUE(w2.assignments().empty());
  manager_->WorkerDisconnected("w1", &w1, "its stream ended");
  ASSERT_EQ(w2.assignments().size(), 1u);
  v1::JobAssignment a2 = w2.assignments()[0];
  EXPECT_EQ(a2.job_id(), id);
  EXPECT_EQ(a2.attempt(), 2);
  // The lost worker's late messages are ignored.
  Complete("w1", &w1, a1, false, false, "late");
  EXPECT_EQ(State(id), S::JOB_STATE_ASSIGNED);
  Started("w2", &w2, a2);
  Complete("w2", &w2, a2, true);
  EXPECT_EQ(State(id), S::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(States(id),
            (std::vector<S>{S::JOB_STATE_QUEUED, S::JOB_STATE_ASSIGNED, S::JOB_STATE_RUNNING,
                            S::JOB_STATE_QUEUED, S::JOB_STATE_ASSIGNED, S::JOB_STATE_RUNNING,
                            S::JOB_STATE_SUCCEEDED}));
}

// A draining worker (SIGTERM) finishes its job but is given no other; a job it hands back is
// queued again at once and runs on another worker.
TEST_F(JobManagerTest, DrainingWorkerGetsNoNewJobAndHandedBackJobIsRequeued) {
  options_.max_attempts = 1;  // a hand-back is no loss: it must not fail the job
  Open();
  std::string first = Submit(Job());
  std::string second = Submit(Job());
  FakeConnection& w1 = NewConnection();
  Connect("w1", &w1);
  v1::JobAssignment a1 = w1.assignments().at(0);
  EXPECT_EQ(a1.job_id(), first);
  Started("w1", &w1, a1);
  v1::WorkerMessage drain;
  drain.mutable_drain()->set_deadline_unix_ms(1);
  manager_->HandleWorkerMessage("w1", &w1, drain);
  Complete("w1", &w1, a1, true);
  EXPECT_EQ(State(first), S::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(w1.assignments().size(), 1u) << "a draining worker is assigned nothing more";
  EXPECT_EQ(State(second), S::JOB_STATE_QUEUED);

  // w2 takes the second job, starts draining mid-job and hands it back: re-queued, not failed,
  // even though max_attempts is spent; w3 then runs it.
  FakeConnection& w2 = NewConnection();
  Connect("w2", &w2);
  v1::JobAssignment a2 = w2.assignments().at(0);
  EXPECT_EQ(a2.job_id(), second);
  Started("w2", &w2, a2);
  manager_->HandleWorkerMessage("w2", &w2, drain);
  HandBack("w2", &w2, a2);
  EXPECT_EQ(State(second), S::JOB_STATE_QUEUED);
  EXPECT_EQ(w2.assignments().size(), 1u);
  auto events = Events(second);
  ASSERT_FALSE(events.empty());
  ASSERT_TRUE(events.back().has_state());
  EXPECT_NE(events.back().state().reason().find("handed back by worker w2"), std::string::npos)
      << events.back().state().reason();
  FakeConnection& w3 = NewConnection();
  Connect("w3", &w3);
  v1::JobAssignment a3 = w3.assignments().at(0);
  EXPECT_EQ(a3.job_id(), second);
  EXPECT_EQ(a3.attempt(), 2);
  Started("w3", &w3, a3);
  Complete("w3", &w3, a3, true);
  EXPECT_EQ(State(second), S::JOB_STATE_SUCCEEDED);
}

// A job being cancelled that its draining worker hands back ends CANCELLED, not QUEUED.
TEST_F(JobManagerTest, HandedBackWhileCancellingIsCancelled) {
  std::string id = Submit(Job());
  FakeConnection& w = NewConnection();
  Connect("w", &w);
  v1::JobAssignment a = w.assignments().at(0);
  Started("w", &w, a);
  ASSERT_TRUE(manager_->Cancel(id).ok());
  EXPECT_EQ(State(id), S::JOB_STATE_CANCELLING);
  HandBack("w", &w, a);
  EXPECT_EQ(State(id), S::JOB_STATE_CANCELLED);
}

TEST_F(JobManagerTest, HeartbeatTimeoutRequeues) {
  options_.heartbeat_timeout_ms = 1000;
  Open();
  std::string id = Submit(Job());
  FakeConnection& w = NewConnection();
  Connect("w", &w);
  clock_.AdvanceMs(900);
  v1::WorkerMessage hb;
  hb.mutable_heartbeat();
  manager_->HandleWorkerMessage("w", &w, hb);
  clock_.AdvanceMs(900);
  manager_->Tick();
  EXPECT_EQ(State(id), S::JOB_STATE_ASSIGNED) << "a heartbeat 900 ms ago keeps it";
  clock_.AdvanceMs(200);
  manager_->Tick();
  EXPECT_TRUE(w.closed_called);
  EXPECT_EQ(w.closed.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(State(id), S::JOB_STATE_QUEUED);
  EXPECT_EQ(manager_->Stats().workers_connected, 0);
}

TEST_F(JobManagerTest, AttemptsAreBounded) {
  options_.max_attempts = 2;
  Open();
  std::string id = Submit(Job());
  for (int i = 0; i < 2; ++i) {
    FakeConnection& w = NewConnection();
    Connect("w", &w);
    ASSERT_EQ(w.assignments().size(), 1u);
    manager_->WorkerDisconnected("w", &w, "killed");
  }
  auto job = manager_->Get(id);
  EXPECT_EQ(job->state(), S::JOB_STATE_FAILED);
  EXPECT_NE(job->error().find("2 attempts"), std::string::npos) << job->error();
}

TEST_F(JobManagerTest, CancelQueuedRunningAndLostWhileCancelling) {
  std::string queued = Submit(Job());
  auto c = manager_->Cancel(queued);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->state(), S::JOB_STATE_CANCELLED);

  std::string running = Submit(Job());
  FakeConnection& w = NewConnection();
  Connect("w", &w);
  v1::JobAssignment a = w.assignments().at(0);
  Started("w", &w, a);
  c = manager_->Cancel(running);
  EXPECT_EQ(c->state(), S::JOB_STATE_CANCELLING);
  ASSERT_TRUE(w.sent.back().has_cancel()) << "the cancel reaches the worker";
  EXPECT_EQ(w.sent.back().cancel().job_id(), running);
  EXPECT_EQ(w.sent.back().cancel().attempt(), 1);
  Complete("w", &w, a, false, /*cancelled=*/true);
  EXPECT_EQ(State(running), S::JOB_STATE_CANCELLED);

  std::string third = Submit(Job());
  v1::JobAssignment a3 = w.assignments().back();
  ASSERT_EQ(a3.job_id(), third);
  manager_->Cancel(third).IgnoreError();
  manager_->WorkerDisconnected("w", &w, "gone");
  EXPECT_EQ(State(third), S::JOB_STATE_CANCELLED) << "not re-queued";
  EXPECT_TRUE(manager_->Cancel("nope").status().code() == absl::StatusCode::kNotFound);
}

TEST_F(JobManagerTest, LogsBelowTheJobLevelAreNotStored) {
  std::string id = Submit(Job(0, "", 1000, /*log_level=*/2));
  FakeConnection& w = NewConnection();
  Connect("w", &w);
  v1::JobAssignment a = w.assignments().at(0);
  for (int sev = 0; sev <= 4; ++sev) {
    v1::WorkerJobEvent e;
    e.mutable_log()->set_severity(sev);
    e.mutable_log()->set_message("record " + std::to_string(sev));
    Event("w", &w, a, e);
  }
  std::vector<int> stored;
  for (const auto& e : Events(id))
    if (e.has_log()) stored.push_back(e.log().severity());
  EXPECT_EQ(stored, (std::vector<int>{2, 3, 4}));
  // ... and the sequence has no holes where the dropped records would have been.
  auto events = Events(id);
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].seq(), i + 1);
}

TEST_F(JobManagerTest, RequestIdMakesSubmitIdempotentAndQueueIsBounded) {
  options_.max_queued_jobs = 2;
  Open();
  NewJob j = Job();
  j.request_id = "abc";
  std::string first = Submit(j);
  std::string again = Submit(j);
  EXPECT_EQ(first, again);
  Submit(Job());
  auto third = manager_->Submit(Job());
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(third.status().message().find("queue is full"), std::string::npos);
}

TEST_F(JobManagerTest, RestartKeepsQueuedJobsAndWaitsForTheWorkerWithinGrace) {
  options_.requeue_grace_ms = 5000;
  Open();
  std::string running = Submit(Job(1));
  std::string queued = Submit(Job(0));
  v1::JobAssignment a;
  {
    FakeConnection& w = NewConnection();
    Connect("w", &w);
    a = w.assignments().at(0);
    Started("w", &w, a);
    manager_->Shutdown();
  }
  Open();  // a new manager on the same store: the "restart"
  EXPECT_EQ(State(running), S::JOB_STATE_RUNNING) << "waits for its worker";
  EXPECT_EQ(State(queued), S::JOB_STATE_QUEUED);
  FakeConnection& w = NewConnection();
  Connect("w", &w, "cpu", 1 << 30, running, a.attempt());
  ASSERT_TRUE(w.sent.at(0).has_hello_ack());
  EXPECT_TRUE(w.sent[0].hello_ack().resume_job());
  EXPECT_TRUE(w.assignments().empty()) << "busy with the resumed job";
  Complete("w", &w, a, true);
  EXPECT_EQ(State(running), S::JOB_STATE_SUCCEEDED);
  ASSERT_EQ(w.assignments().size(), 1u);
  EXPECT_EQ(w.assignments()[0].job_id(), queued);
}

TEST_F(JobManagerTest, RestartRequeuesWhenTheWorkerDoesNotReturnInTime) {
  options_.requeue_grace_ms = 5000;
  Open();
  std::string id = Submit(Job());
  {
    FakeConnection& w = NewConnection();
    Connect("w", &w);
    Started("w", &w, w.assignments().at(0));
    manager_->Shutdown();
  }
  Open();
  clock_.AdvanceMs(4999);
  manager_->Tick();
  EXPECT_EQ(State(id), S::JOB_STATE_RUNNING);
  clock_.AdvanceMs(2);
  manager_->Tick();
  EXPECT_EQ(State(id), S::JOB_STATE_QUEUED);
}

TEST_F(JobManagerTest, RestartRequeuesAtOnceWhenTheWorkerComesBackWithoutTheJob) {
  options_.requeue_grace_ms = 60000;
  Open();
  std::string id = Submit(Job());
  {
    FakeConnection& w = NewConnection();
    Connect("local-0", &w);
    manager_->Shutdown();
  }
  Open();
  FakeConnection& w = NewConnection();
  Connect("local-0", &w);  // a restarted process: no running job in its hello
  EXPECT_FALSE(w.sent.at(0).hello_ack().resume_job());
  ASSERT_EQ(w.assignments().size(), 1u) << "re-queued and given straight back";
  EXPECT_EQ(w.assignments()[0].job_id(), id);
  EXPECT_EQ(w.assignments()[0].attempt(), 2);
}

TEST_F(JobManagerTest, ReconnectWithoutTheJobIsToldNotToResume) {
  std::string id = Submit(Job());
  FakeConnection& w1 = NewConnection();
  Connect("w", &w1);
  v1::JobAssignment a = w1.assignments().at(0);
  manager_->WorkerDisconnected("w", &w1, "stream broke");
  EXPECT_EQ(State(id), S::JOB_STATE_QUEUED);
  FakeConnection& w2 = NewConnection();
  Connect("w", &w2, "cpu", 1 << 30, id, a.attempt());
  EXPECT_FALSE(w2.sent.at(0).hello_ack().resume_job()) << "the job moved on";
  ASSERT_EQ(w2.assignments().size(), 1u);
  EXPECT_EQ(w2.assignments()[0].attempt(), 2);
}

TEST_F(JobManagerTest, PollEventsReplaysThenWaitsThenEnds) {
  std::string id = Submit(Job());
  uint64_t wait_id = 0;
  int wakes = 0;
  auto poll = manager_->PollEvents(id, 0, 100, true, [&] { ++wakes; }, &wait_id);
  ASSERT_TRUE(poll.ok());
  ASSERT_EQ(poll->events.size(), 1u);
  EXPECT_EQ(poll->events[0].seq(), 1u);
  poll = manager_->PollEvents(id, 1, 100, true, [&] { ++wakes; }, &wait_id);
  ASSERT_TRUE(poll->waiting);
  EXPECT_EQ(wakes, 0);
  FakeConnection& w = NewConnection();
  Connect("w", &w);  // assignment appends an event
  EXPECT_EQ(wakes, 1) << "woken once by the next event";
  poll = manager_->PollEvents(id, 1, 100, false, nullptr, &wait_id);
  EXPECT_EQ(poll->events.size(), 1u);
  Complete("w", &w, w.assignments().at(0), false, false, "boom");
  poll = manager_->PollEvents(id, 3, 100, true, [&] { ++wakes; }, &wait_id);
  EXPECT_TRUE(poll->ended) << "terminal and caught up";
  EXPECT_EQ(manager_->PollEvents("nope", 0, 10, true, nullptr, &wait_id).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(JobManagerTest, ShutdownWakesWatchersWithUnavailable) {
  std::string id = Submit(Job());
  uint64_t wait_id = 0;
  int wakes = 0;
  auto poll = manager_->PollEvents(id, 1, 100, true, [&] { ++wakes; }, &wait_id);
  ASSERT_TRUE(poll->waiting);
  manager_->Shutdown();
  EXPECT_EQ(wakes, 1);
  EXPECT_EQ(manager_->PollEvents(id, 1, 100, true, [] {}, &wait_id).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(manager_->Submit(Job()).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace quarry::server
