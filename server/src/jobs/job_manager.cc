#include "jobs/job_manager.h"

#include <cstdio>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "jobs/job_states.h"

namespace quarry::server {
namespace {

constexpr size_t kMaxLogMessageBytes = 16 << 10;

std::string HumanBytes(uint64_t b) {
  if (b >= (1ull << 30)) return absl::StrFormat("%.1f GiB", b / double(1ull << 30));
  if (b >= (1ull << 20)) return absl::StrFormat("%.1f MiB", b / double(1ull << 20));
  return absl::StrCat(b, " bytes");
}

// Memory a worker offers jobs: device memory for accelerators, host memory for the CPU.
uint64_t WorkerCapacity(const v1::WorkerHello& hello) {
  if (hello.device().kind() == "cpu" || hello.device().kind().empty()) {
    if (hello.host_memory_bytes() > 0) return hello.host_memory_bytes();
  }
  return hello.device().total_memory_bytes();
}

}  // namespace

std::string NewJobId() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  uint64_t t = static_cast<uint64_t>(RealClock()->NowUnixMs() / 1000) & 0xffffffffull;
  uint64_t r = rng() & 0xffffffffull;
  return absl::StrFormat("j%08x%08x", t, r);
}

absl::StatusOr<std::unique_ptr<JobManager>> JobManager::Create(JobManagerOptions options,
                                                               JobStore* store,
                                                               ArtifactStore* artifacts,
                                                               Clock* clock) {
  std::unique_ptr<JobManager> m(new JobManager(std::move(options), store, artifacts, clock));
  if (absl::Status st = m->Load(); !st.ok()) return st;
  return m;
}

JobManager::~JobManager() { Shutdown(); }

absl::Status JobManager::Load() {
  auto jobs = store_->LoadActiveJobs();
  if (!jobs.ok()) return jobs.status();
  absl::MutexLock lock(&mu_);
  const int64_t now = clock_->NowMonotonicMs();
  for (StoredJob& s : *jobs) {
    ActiveJob j;
    j.job = std::move(s.job);
    j.assignment = std::move(s.assignment);
    j.device_kind = std::move(s.device_kind);
    j.memory_bytes = s.memory_bytes;
    j.submit_order = s.submit_order;
    j.log_level = j.assignment.log_severity_level();
    if (j.job.state() == v1::JOB_STATE_QUEUED) {
      queue_.emplace(-j.job.spec().priority(), j.submit_order, j.job.id());
    } else {
      j.orphan_deadline_ms = now + options_.requeue_grace_ms;
    }
    std::string id = j.job.id();
    jobs_.emplace(std::move(id), std::move(j));
  }
  return absl::OkStatus();
}

JobManager::ActiveJob* JobManager::FindJob(const std::string& job_id) {
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : &it->second;
}

v1::JobEvent JobManager::StateEvent(v1::Job& updated, v1::JobState state,
                                    const std::string& reason, const std::string& worker_id,
                                    int attempt) {
  v1::JobEvent e;
  v1::StateChange* c = e.mutable_state();
  c->set_state(state);
  c->set_reason(reason);
  c->set_worker_id(worker_id);
  c->set_attempt(attempt);
  const int64_t now = clock_->NowUnixMs();
  updated.set_state(state);
  if (state == v1::JOB_STATE_RUNNING && updated.started_unix_ms() == 0)
    updated.set_started_unix_ms(now);
  if (state == v1::JOB_STATE_QUEUED) {
    updated.clear_worker_id();
    updated.set_started_unix_ms(0);
    updated.clear_progress();
  }
  if (IsTerminal(state)) updated.set_finished_unix_ms(now);
  return e;
}

absl::Status JobManager::Commit(ActiveJob& job, v1::Job updated, Change change) {
  const int64_t now = clock_->NowUnixMs();
  uint64_t seq = updated.last_event_seq();
  for (v1::JobEvent& e : change.events) {
    e.set_job_id(updated.id());
    e.set_seq(++seq);
    e.set_time_unix_ms(now);
  }
  updated.set_last_event_seq(seq);
  absl::Status st = store_->UpdateJob(updated, change.events, change.artifacts);
  if (!st.ok()) {
    std::fprintf(stderr, "quarry-server: job %s: cannot persist a change: %s\n",
                 updated.id().c_str(), st.ToString().c_str());
    return st;
  }
  const v1::JobState before = job.job.state();
  job.job = std::move(updated);
  const std::string id = job.job.id();
  if (before == v1::JOB_STATE_QUEUED && job.job.state() != v1::JOB_STATE_QUEUED)
    queue_.erase(QueueKey(-job.job.spec().priority(), job.submit_order, id));
  if (before != v1::JOB_STATE_QUEUED && job.job.state() == v1::JOB_STATE_QUEUED)
    queue_.emplace(-job.job.spec().priority(), job.submit_order, id);
  if (IsTerminal(job.job.state())) {
    if (options_.on_job_finished) {
      double run = job.job.started_unix_ms() > 0
                       ? (job.job.finished_unix_ms() - job.job.started_unix_ms()) / 1000.0
                       : 0.0;
      options_.on_job_finished(job.job.state(), run);
    }
    // A job that did not succeed keeps no files: what its attempts staged is never served and
    // would hold disk no quota counts (a success keeps its final attempt's, HandleCompletion).
    if (job.job.state() != v1::JOB_STATE_SUCCEEDED && artifacts_ != nullptr)
      artifacts_->RemoveOtherAttempts(id, 0);
    jobs_.erase(id);  // `job` is gone from here on
  }
  auto w = waiters_.find(id);
  if (w != waiters_.end()) {
    absl::MutexLock wl(&wake_mu_);
    for (auto& [wait_id, fn] : w->second) pending_wakeups_.push_back(std::move(fn));
    waiters_.erase(w);
  }
  return absl::OkStatus();
}

void JobManager::RunWakeups() {
  std::vector<std::function<void()>> run;
  {
    absl::MutexLock wl(&wake_mu_);
    run.swap(pending_wakeups_);
  }
  for (auto& fn : run) fn();
}

// ----- Client side -----

std::string JobManager::ActiveJobUsingUpload(const std::string& upload_id) {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, j] : jobs_) {
    const v1::JobSpec& spec = j.job.spec();
    if ((spec.model().source_case() == v1::ModelSource::kUploadedModelId &&
         spec.model().uploaded_model_id() == upload_id) ||
        (spec.calibration().source_case() == v1::CalibrationData::kUploadedDatasetId &&
         spec.calibration().uploaded_dataset_id() == upload_id) ||
        (spec.eval().source_case() == v1::EvalOptions::kUploadedDatasetId &&
         spec.eval().uploaded_dataset_id() == upload_id))
      return id;
  }
  return "";
}

int JobManager::ActiveJobsOf(const std::string& tenant) {
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (const auto& [id, j] : jobs_) n += j.job.tenant() == tenant ? 1 : 0;
  return n;
}

absl::StatusOr<v1::Job> JobManager::Submit(NewJob nj) {
  v1::Job result;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return absl::UnavailableError("the server is shutting down");
    if (!nj.request_id.empty()) {
      auto existing = store_->FindJobByRequestId(nj.request_id);
      if (!existing.ok()) return existing.status();
      if (existing->has_value()) {
        if (ActiveJob* j = FindJob(**existing)) return j->job;
        auto stored = store_->GetJob(**existing);
        if (!stored.ok()) return stored.status();
        if (stored->has_value()) return (*stored)->job;
      }
    }
    if (!nj.quota_refusal.empty()) return absl::ResourceExhaustedError(nj.quota_refusal);
    if (nj.tenant_max_jobs > 0) {
      uint64_t active = 0;
      for (const auto& [id, j] : jobs_) active += j.job.tenant() == nj.tenant ? 1 : 0;
      if (active >= nj.tenant_max_jobs)
        return absl::ResourceExhaustedError(absl::StrCat(
            "quota: tenant '", nj.tenant, "' has ", active, " jobs queued or running; its limit "
            "is ", nj.tenant_max_jobs, " (", nj.tenant_max_jobs_source, "). Wait for one to "
            "finish or cancel one"));
    }
    if (static_cast<int>(queue_.size()) >= options_.max_queued_jobs)
      return absl::ResourceExhaustedError(absl::StrCat(
          "the queue is full: ", queue_.size(), " jobs are waiting (--max-queued-jobs ",
          options_.max_queued_jobs, "); retry later"));
    StoredJob s;
    s.job.set_id(NewJobId());
    *s.job.mutable_spec() = std::move(nj.spec);
    s.job.set_state(v1::JOB_STATE_QUEUED);
    s.job.set_created_unix_ms(clock_->NowUnixMs());
    s.job.set_tenant(nj.tenant);
    s.assignment = std::move(nj.assignment);
    s.request_id = nj.request_id;
    s.device_kind = nj.device_kind;
    s.memory_bytes = nj.memory_bytes;
    v1::JobEvent e = StateEvent(s.job, v1::JOB_STATE_QUEUED, "submitted", "", 0);
    e.set_job_id(s.job.id());
    e.set_seq(1);
    e.set_time_unix_ms(s.job.created_unix_ms());
    s.job.set_last_event_seq(1);
    if (absl::Status st = store_->InsertJob(&s, {e}); !st.ok()) return st;
    ActiveJob j;
    j.job = s.job;
    j.assignment = std::move(s.assignment);
    j.device_kind = std::move(s.device_kind);
    j.memory_bytes = s.memory_bytes;
    j.submit_order = s.submit_order;
    j.log_level = j.assignment.log_severity_level();
    queue_.emplace(-j.job.spec().priority(), j.submit_order, j.job.id());
    result = j.job;
    jobs_.emplace(result.id(), std::move(j));
    Dispatch();
  }
  RunWakeups();
  return result;
}

absl::StatusOr<v1::Job> JobManager::Get(const std::string& job_id) {
  {
    absl::MutexLock lock(&mu_);
    if (ActiveJob* j = FindJob(job_id)) return j->job;
  }
  auto stored = store_->GetJob(job_id);
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
  return (*stored)->job;
}

absl::StatusOr<v1::Job> JobManager::Cancel(const std::string& job_id) {
  v1::Job out;
  {
    absl::MutexLock lock(&mu_);
    ActiveJob* j = FindJob(job_id);
    if (j == nullptr) {
      auto stored = store_->GetJob(job_id);
      if (!stored.ok()) return stored.status();
      if (!stored->has_value())
        return absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
      return (*stored)->job;  // terminal: nothing to cancel
    }
    v1::Job updated = j->job;
    Change change;
    const v1::JobState state = j->job.state();
    if (state == v1::JOB_STATE_QUEUED || j->orphan_deadline_ms > 0) {
      // Queued, or on a worker that has not come back since a restart: nothing runs it.
      change.events.push_back(StateEvent(updated, v1::JOB_STATE_CANCELLED,
                                         "cancelled by a client", updated.worker_id(),
                                         updated.attempts()));
    } else if (state == v1::JOB_STATE_ASSIGNED || state == v1::JOB_STATE_RUNNING) {
      change.events.push_back(StateEvent(updated, v1::JOB_STATE_CANCELLING,
                                         "cancel requested; the worker stops at the next layer",
                                         updated.worker_id(), updated.attempts()));
      auto w = workers_.find(updated.worker_id());
      if (w != workers_.end() && w->second.job_id == job_id) {
        v1::ServerMessage msg;
        msg.mutable_cancel()->set_job_id(job_id);
        msg.mutable_cancel()->set_attempt(updated.attempts());
        w->second.conn->Send(msg);
      }
    } else {
      return j->job;  // already cancelling
    }
    out = updated;
    if (absl::Status st = Commit(*j, std::move(updated), std::move(change)); !st.ok()) return st;
  }
  RunWakeups();
  return out;
}

absl::StatusOr<JobManager::EventPoll> JobManager::PollEvents(const std::string& job_id,
                                                             uint64_t after_seq, int limit,
                                                             bool follow,
                                                             std::function<void()> wake,
                                                             uint64_t* wait_id) {
  EventPoll out;
  for (;;) {
    auto events = store_->ReadEvents(job_id, after_seq, limit);
    if (!events.ok()) return events.status();
    if (!events->empty()) {
      out.events = std::move(*events);
      return out;
    }
    absl::MutexLock lock(&mu_);
    ActiveJob* j = FindJob(job_id);
    if (j == nullptr) {
      // Terminal (all its events are in the store, read above) or unknown.
      auto stored = store_->GetJob(job_id);
      if (!stored.ok()) return stored.status();
      if (!stored->has_value())
        return absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
      if ((*stored)->job.last_event_seq() > after_seq) continue;  // appended meanwhile
      out.ended = true;
      return out;
    }
    if (j->job.last_event_seq() > after_seq) continue;  // appended between the read and the lock
    if (!follow) {
      out.ended = true;
      return out;
    }
    if (shut_down_) return absl::UnavailableError("the server is shutting down; watch again");
    *wait_id = next_wait_id_++;
    waiters_[job_id][*wait_id] = std::move(wake);
    out.waiting = true;
    return out;
  }
}

void JobManager::CancelWait(const std::string& job_id, uint64_t wait_id) {
  absl::MutexLock lock(&mu_);
  auto it = waiters_.find(job_id);
  if (it == waiters_.end()) return;
  it->second.erase(wait_id);
  if (it->second.empty()) waiters_.erase(it);
}

// ----- Worker side -----

absl::Status JobManager::WorkerConnected(const v1::WorkerHello& hello, WorkerConnection* conn) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return absl::UnavailableError("the server is shutting down");
    const std::string& id = hello.worker_id();
    auto old = workers_.find(id);
    if (old != workers_.end()) {
      // The same worker on a new stream: the old one is dead or dying.
      WorkerState prev = std::move(old->second);
      workers_.erase(old);
      prev.conn->Close(absl::UnavailableError("replaced by a newer connection of this worker"));
      if (!prev.job_id.empty() &&
          !(hello.running_job_id() == prev.job_id && hello.running_attempt() == prev.attempt)) {
        if (ActiveJob* j = FindJob(prev.job_id); j && j->job.attempts() == prev.attempt)
          JobLost(*j, absl::StrCat("worker ", id, " reconnected without the job"));
      }
    }
    WorkerState w;
    w.hello = hello;
    w.conn = conn;
    w.last_seen_ms = clock_->NowMonotonicMs();
    v1::ServerMessage ack;
    ack.mutable_hello_ack()->set_worker_id(id);
    ack.mutable_hello_ack()->set_heartbeat_interval_ms(options_.heartbeat_interval_ms);
    bool send_cancel = false;
    if (!hello.running_job_id().empty()) {
      ActiveJob* j = FindJob(hello.running_job_id());
      if (j != nullptr && IsOnWorker(j->job.state()) && j->job.worker_id() == id &&
          j->job.attempts() == hello.running_attempt()) {
        // Its job continues: after a server restart (an orphan), or a new stream that raced
        // ahead of the old one's end.
        j->orphan_deadline_ms = 0;
        w.job_id = j->job.id();
        w.attempt = hello.running_attempt();
        ack.mutable_hello_ack()->set_resume_job(true);
        send_cancel = j->job.state() == v1::JOB_STATE_CANCELLING;
      }
    }
    conn->Send(ack);
    if (send_cancel) {
      v1::ServerMessage msg;
      msg.mutable_cancel()->set_job_id(w.job_id);
      msg.mutable_cancel()->set_attempt(w.attempt);
      conn->Send(msg);
    }
    // A job this worker held before a restart that it no longer names is lost now.
    for (auto& [job_id, j] : jobs_) {
      if (j.orphan_deadline_ms > 0 && j.job.worker_id() == id && job_id != w.job_id) {
        JobLost(j, absl::StrCat("worker ", id, " came back without the job"));
        break;  // JobLost may erase from jobs_; a worker holds at most one job
      }
    }
    workers_[id] = std::move(w);
    Dispatch();
  }
  RunWakeups();
  return absl::OkStatus();
}

void JobManager::HandleWorkerMessage(const std::string& worker_id, WorkerConnection* conn,
                                     const v1::WorkerMessage& message) {
  {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(worker_id);
    if (it == workers_.end() || it->second.conn != conn) return;  // a replaced stream
    WorkerState& w = it->second;
    w.last_seen_ms = clock_->NowMonotonicMs();
    switch (message.payload_case()) {
      case v1::WorkerMessage::kEvent:
        HandleEvent(w, message.event());
        break;
      case v1::WorkerMessage::kCompletion:
        HandleCompletion(w, message.completion());
        Dispatch();
        break;
      case v1::WorkerMessage::kDrain:
        w.draining = true;  // no new assignment; its job finishes or is handed back
        break;
      default:
        break;  // heartbeats only refresh last_seen_ms
    }
  }
  RunWakeups();
}

void JobManager::HandleEvent(WorkerState& w, const v1::WorkerJobEvent& ev) {
  if (ev.job_id() != w.job_id || ev.attempt() != w.attempt) return;  // stale
  ActiveJob* j = FindJob(ev.job_id());
  if (j == nullptr || j->job.attempts() != ev.attempt()) return;
  v1::Job updated = j->job;
  Change change;
  const std::string& worker_id = w.hello.worker_id();
  const bool to_running = updated.state() == v1::JOB_STATE_ASSIGNED;
  switch (ev.payload_case()) {
    case v1::WorkerJobEvent::kStarted:
      if (!to_running) return;
      change.events.push_back(StateEvent(updated, v1::JOB_STATE_RUNNING,
                                         absl::StrCat("running on worker ", worker_id),
                                         worker_id, ev.attempt()));
      break;
    case v1::WorkerJobEvent::kProgress: {
      if (to_running)
        change.events.push_back(StateEvent(updated, v1::JOB_STATE_RUNNING,
                                           absl::StrCat("running on worker ", worker_id),
                                           worker_id, ev.attempt()));
      v1::JobEvent e;
      *e.mutable_progress() = ev.progress();
      *updated.mutable_progress() = ev.progress();
      change.events.push_back(std::move(e));
      break;
    }
    case v1::WorkerJobEvent::kLog: {
      if (ev.log().severity() < j->log_level) return;  // below log_severity_level: not stored
      v1::JobEvent e;
      *e.mutable_log() = ev.log();
      if (e.log().message().size() > kMaxLogMessageBytes) {
        e.mutable_log()->mutable_message()->resize(kMaxLogMessageBytes);
        e.mutable_log()->mutable_message()->append(" [truncated]");
      }
      if (e.log().source().empty()) e.mutable_log()->set_source("worker");
      change.events.push_back(std::move(e));
      break;
    }
    case v1::WorkerJobEvent::kResult: {
      v1::JobEvent e;
      *e.mutable_result() = ev.result();
      *updated.mutable_result() = ev.result();
      change.events.push_back(std::move(e));
      break;
    }
    default:
      return;
  }
  Commit(*j, std::move(updated), std::move(change)).IgnoreError();
}

void JobManager::HandleCompletion(WorkerState& w, const v1::JobCompletion& c) {
  if (c.job_id() != w.job_id || c.attempt() != w.attempt) return;  // stale
  const std::string worker_id = w.hello.worker_id();
  w.job_id.clear();
  w.attempt = 0;
  ActiveJob* j = FindJob(c.job_id());
  if (j == nullptr || j->job.attempts() != c.attempt() || !IsOnWorker(j->job.state())) return;
  v1::Job updated = j->job;
  Change change;
  const int attempt = c.attempt();
  if (c.success()) {
    std::string missing;
    for (const v1::ArtifactInfo& a : c.artifacts()) {
      StagedFile f = artifacts_->ArtifactStatus(c.job_id(), attempt, a.name());
      if (!f.complete || f.sha256 != a.sha256() || f.received_bytes != a.size()) {
        missing = a.name();
        break;
      }
      ArtifactRecord rec;
      rec.info = a;
      rec.path = f.path;
      change.artifacts.push_back(rec);
      v1::JobEvent e;
      *e.mutable_artifact() = a;
      change.events.push_back(std::move(e));
      *updated.add_artifacts() = a;
    }
    if (!missing.empty()) {
      change.events.clear();
      change.artifacts.clear();
      updated.clear_artifacts();
      std::string err = absl::StrCat("artifact '", missing,
                                     "' was reported but is not stored complete with that sha256");
      updated.set_error(err);
      change.events.push_back(
          StateEvent(updated, v1::JOB_STATE_FAILED, err, worker_id, attempt));
    } else {
      const bool late = updated.state() == v1::JOB_STATE_CANCELLING;
      change.events.push_back(StateEvent(
          updated, v1::JOB_STATE_SUCCEEDED,
          late ? "finished before the cancellation reached it" : "finished", worker_id, attempt));
    }
  } else if (c.cancelled()) {
    change.events.push_back(StateEvent(updated, v1::JOB_STATE_CANCELLED,
                                       "stopped by the worker after a cancel request", worker_id,
                                       attempt));
  } else if (c.handed_back()) {
    // A draining worker gives the job back: not a failure, so it is queued again whatever the
    // attempt count (a later loss still counts every attempt against max_attempts).
    if (updated.state() == v1::JOB_STATE_CANCELLING) {
      change.events.push_back(StateEvent(
          updated, v1::JOB_STATE_CANCELLED,
          absl::StrCat("handed back by worker ", worker_id, " while being cancelled"), worker_id,
          attempt));
    } else {
      change.events.push_back(StateEvent(
          updated, v1::JOB_STATE_QUEUED,
          absl::StrCat("handed back by worker ", worker_id, " (it is shutting down); re-queued"),
          worker_id, attempt));
    }
  } else {
    std::string err = c.error().empty() ? "the job failed (no message)" : c.error();
    updated.set_error(err);
    change.events.push_back(StateEvent(updated, v1::JOB_STATE_FAILED, err, worker_id, attempt));
  }
  const std::string job_id = c.job_id();
  const bool succeeded = updated.state() == v1::JOB_STATE_SUCCEEDED;
  if (Commit(*j, std::move(updated), std::move(change)).ok() && succeeded) {
    artifacts_->RemoveOtherAttempts(job_id, attempt);
    artifacts_->RemoveCheckpoints(job_id, attempt);  // only a resumed attempt needs them
  }
}

void JobManager::JobLost(ActiveJob& j, const std::string& reason) {
  v1::Job updated = j.job;
  Change change;
  j.orphan_deadline_ms = 0;
  const std::string worker = updated.worker_id();
  const int attempt = updated.attempts();
  if (updated.state() == v1::JOB_STATE_CANCELLING) {
    change.events.push_back(StateEvent(updated, v1::JOB_STATE_CANCELLED,
                                       absl::StrCat(reason, "; it was being cancelled"), worker,
                                       attempt));
  } else if (attempt >= options_.max_attempts) {
    std::string err = absl::StrCat(reason, "; gave up after ", attempt, " attempts");
    updated.set_error(err);
    change.events.push_back(StateEvent(updated, v1::JOB_STATE_FAILED, err, worker, attempt));
  } else {
    change.events.push_back(StateEvent(updated, v1::JOB_STATE_QUEUED,
                                       absl::StrCat(reason, "; re-queued"), worker, attempt));
  }
  Commit(j, std::move(updated), std::move(change)).IgnoreError();
}

void JobManager::RemoveWorker(const std::string& worker_id, const std::string& reason) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return;
  std::string job_id = it->second.job_id;
  int attempt = it->second.attempt;
  workers_.erase(it);
  if (job_id.empty()) return;
  ActiveJob* j = FindJob(job_id);
  if (j != nullptr && j->job.attempts() == attempt && IsOnWorker(j->job.state()))
    JobLost(*j, absl::StrCat("worker ", worker_id, " lost (", reason, ")"));
}

void JobManager::WorkerDisconnected(const std::string& worker_id, WorkerConnection* conn,
                                    const std::string& reason) {
  {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(worker_id);
    if (it == workers_.end() || it->second.conn != conn) return;
    RemoveWorker(worker_id, reason);
    Dispatch();
  }
  RunWakeups();
}

absl::Status JobManager::CheckCurrentAttempt(const std::string& job_id, int attempt) {
  absl::MutexLock lock(&mu_);
  ActiveJob* j = FindJob(job_id);
  if (j == nullptr)
    return absl::NotFoundError(absl::StrCat("job '", job_id, "' is not active"));
  if (!IsOnWorker(j->job.state()) || j->job.attempts() != attempt)
    return absl::FailedPreconditionError(absl::StrCat(
        "job '", job_id, "' attempt ", attempt, " is not the current attempt (",
        j->job.attempts(), ", ", StateName(j->job.state()), ")"));
  return absl::OkStatus();
}

// ----- Scheduling -----

bool JobManager::Fits(const ActiveJob& job, const WorkerState& worker) const {
  if (!job.device_kind.empty() && job.device_kind != worker.hello.device().kind()) return false;
  uint64_t capacity = WorkerCapacity(worker.hello);
  return capacity == 0 || job.memory_bytes <= capacity;
}

void JobManager::Dispatch() {
  if (shut_down_) return;
  int idle = 0;
  for (const auto& [id, w] : workers_) idle += w.job_id.empty() && !w.draining ? 1 : 0;
  if (idle == 0 || queue_.empty()) return;
  // Priority order, FIFO within a priority. A job no idle worker fits does not block the jobs
  // behind it (a big job waits for a big worker while small ones run).
  std::vector<std::string> order;
  for (const QueueKey& k : queue_) order.push_back(std::get<2>(k));
  for (const std::string& job_id : order) {
    if (idle == 0) break;
    ActiveJob* j = FindJob(job_id);
    if (j == nullptr) continue;
    WorkerState* best = nullptr;
    std::string best_id;
    bool any_fits = false;
    for (auto& [wid, w] : workers_) {
      if (!Fits(*j, w)) continue;
      any_fits = true;
      if (!w.job_id.empty() || w.draining) continue;
      // Best fit: the smallest worker that is big enough keeps big workers for big jobs.
      if (best == nullptr || WorkerCapacity(w.hello) < WorkerCapacity(best->hello)) {
        best = &w;
        best_id = wid;
      }
    }
    if (best != nullptr) {
      Assign(*j, best_id, *best);
      --idle;
    } else if (!any_fits && !j->no_fit_warned && !workers_.empty()) {
      j->no_fit_warned = true;
      v1::Job updated = j->job;
      Change change;
      v1::JobEvent e;
      e.mutable_log()->set_severity(2);
      e.mutable_log()->set_source("server");
      e.mutable_log()->set_message(absl::StrCat(
          "no connected worker can run this job (it needs ",
          j->device_kind.empty() ? "any device" : absl::StrCat("a ", j->device_kind, " device"),
          " with ", HumanBytes(j->memory_bytes), "); it waits for one"));
      if (2 >= j->log_level) {
        change.events.push_back(std::move(e));
        Commit(*j, std::move(updated), std::move(change)).IgnoreError();
      }
    }
  }
}

void JobManager::Assign(ActiveJob& j, const std::string& worker_id, WorkerState& w) {
  v1::Job updated = j.job;
  const int attempt = updated.attempts() + 1;
  updated.set_attempts(attempt);
  updated.set_worker_id(worker_id);
  updated.clear_error();
  Change change;
  change.events.push_back(StateEvent(updated, v1::JOB_STATE_ASSIGNED,
                                     absl::StrCat("assigned to worker ", worker_id, " (attempt ",
                                                  attempt, ")"),
                                     worker_id, attempt));
  v1::ServerMessage msg;
  v1::JobAssignment* a = msg.mutable_assignment();
  *a = j.assignment;
  a->set_job_id(updated.id());
  a->set_attempt(attempt);
  *a->mutable_spec() = updated.spec();
  // What earlier attempts checkpointed (a worker lost mid-job): the new attempt resumes there.
  if (artifacts_ != nullptr && attempt > 1) {
    for (const auto& c : artifacts_->ListCheckpoints(updated.id(), attempt)) {
      v1::CheckpointFile* f = a->add_resume_checkpoints();
      f->set_attempt(c.attempt);
      f->set_name(c.name);
      f->set_size(c.size);
      f->set_sha256(c.sha256);
    }
  }
  if (!Commit(j, std::move(updated), std::move(change)).ok()) return;
  w.job_id = msg.assignment().job_id();
  w.attempt = attempt;
  w.conn->Send(msg);
}

// ----- Time and lifecycle -----

void JobManager::Tick() {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    const int64_t now = clock_->NowMonotonicMs();
    std::vector<std::string> silent;
    for (const auto& [id, w] : workers_)
      if (now - w.last_seen_ms > options_.heartbeat_timeout_ms) silent.push_back(id);
    for (const std::string& id : silent) {
      auto it = workers_.find(id);
      it->second.conn->Close(absl::DeadlineExceededError(
          absl::StrCat("no heartbeat for ", options_.heartbeat_timeout_ms, " ms")));
      RemoveWorker(id, absl::StrCat("no heartbeat for ", options_.heartbeat_timeout_ms, " ms"));
    }
    std::vector<std::string> expired;
    for (const auto& [id, j] : jobs_)
      if (j.orphan_deadline_ms > 0 && now >= j.orphan_deadline_ms) expired.push_back(id);
    for (const std::string& id : expired) {
      if (ActiveJob* j = FindJob(id))
        JobLost(*j, absl::StrCat("worker ", j->job.worker_id(), " did not reconnect within ",
                                 options_.requeue_grace_ms, " ms of a server restart"));
    }
    Dispatch();
  }
  RunWakeups();
}

void JobManager::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    for (auto& [id, w] : workers_) w.conn->Close(absl::UnavailableError("the server is shutting down"));
    workers_.clear();
    absl::MutexLock wl(&wake_mu_);
    for (auto& [job_id, waits] : waiters_)
      for (auto& [wait_id, fn] : waits) pending_wakeups_.push_back(std::move(fn));
    waiters_.clear();
  }
  RunWakeups();
}

ManagerStats JobManager::Stats() {
  absl::MutexLock lock(&mu_);
  ManagerStats s;
  s.queued = static_cast<int>(queue_.size());
  s.workers_connected = static_cast<int>(workers_.size());
  for (const auto& [id, w] : workers_) s.workers_busy += w.job_id.empty() ? 0 : 1;
  return s;
}

}  // namespace quarry::server
