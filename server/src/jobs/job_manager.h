// The job state machine and scheduler: owns every non-terminal job, the connected workers and
// the watchers waiting for events. It knows nothing of gRPC: the RPC layer calls it with decoded
// messages and gives it a WorkerConnection per worker stream.
//
// Ownership
//  - After Submit() returns OK the job is durable (JobStore) in state QUEUED and the JobManager
//    owns its lifecycle; a client can only ask for cancellation.
//  - A job in ASSIGNED, RUNNING or CANCELLING is held by exactly one (worker_id, attempt). Worker
//    messages about any other (job, attempt) are stale and ignored, so a worker that was given up
//    on can never change a job that has moved on.
//  - A terminal job (SUCCEEDED, FAILED, CANCELLED) is immutable: its terminal state event is its
//    last event, and it is dropped from memory (the store keeps it until DeleteJob). A FAILED or
//    CANCELLED job's staged artifact files are removed then (nothing serves them).
//
// States and transitions (each one store transaction: the job row + the events that explain it,
// so a restart never sees one without the other):
//   QUEUED      waiting for an idle worker whose device kind and memory fit.
//                 Dispatch      -> ASSIGNED   attempts += 1; the JobAssignment is sent.
//                 Cancel        -> CANCELLED  at once.
//   ASSIGNED    sent to a worker, not yet acknowledged.
//                 'started' or first progress -> RUNNING.
//   RUNNING     the worker reports progress; progress/log/result events are appended.
//                 Cancel        -> CANCELLING  CancelJob sent; the worker stops between layers.
//   CANCELLING  waiting for the worker to stop.
//   A worker that sent WorkerDrain gets no new assignment (it is shutting down).
//   (ASSIGNED | RUNNING | CANCELLING) on worker completion:
//                 success       -> SUCCEEDED  after every listed artifact is verified complete in
//                                             the ArtifactStore (an ARTIFACT event each);
//                                             otherwise FAILED naming the missing artifact.
//                 failure       -> FAILED     with the worker's message.
//                 cancelled     -> CANCELLED.
//                 handed_back   -> QUEUED     (a draining worker gave it back unfinished;
//                                             CANCELLING -> CANCELLED).
//   (ASSIGNED | RUNNING) when the worker is lost (its stream breaks, its heartbeats stop for
//   heartbeat_timeout, it reconnects without the job, or after a restart it does not come back
//   within requeue_grace):
//                 -> QUEUED if attempts < max_attempts, else FAILED ("worker lost N times").
//   CANCELLING when the worker is lost -> CANCELLED.
//   Server restart: QUEUED jobs are queued again in their original order; jobs on a worker stay
//   as they were and wait requeue_grace for that worker to reconnect and name the job in its
//   hello (then they continue; the worker flushes what it buffered), else they are lost as above.
//
// Events: every job has events with seq 1, 2, 3, ... (the job's last_event_seq is the highest).
// Log records below the job's log_severity_level are dropped before they get a seq. Watchers poll
// with PollEvents (events with seq > after_seq from the store) and, when caught up, register a
// wake-up that fires once after the next append; so replay + follow never loses or repeats one.
//
// Thread-safe. Lock order: callers' own locks -> JobManager::mu_ -> JobStore. The manager calls
// WorkerConnection methods under mu_ (they must not call back into the manager) and runs wake-up
// callbacks after releasing mu_.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "env/clock.h"
#include "quarry/v1/jobs.pb.h"
#include "quarry/v1/worker.pb.h"
#include "store/artifact_store.h"
#include "store/job_store.h"

namespace quarry::server {

// One worker's Connect stream, as the manager sees it.
class WorkerConnection {
 public:
  virtual ~WorkerConnection() = default;
  // Queues a message to the worker. Non-blocking; never calls back into the JobManager.
  virtual void Send(const v1::ServerMessage& message) = 0;
  // Ends the stream with `status` (the worker will reconnect). Non-blocking; never calls back.
  virtual void Close(const absl::Status& status) = 0;
};

struct JobManagerOptions {
  int max_queued_jobs = 10000;        // QUEUED jobs allowed; more -> RESOURCE_EXHAUSTED
  int max_attempts = 3;               // assignments per job before a lost worker fails it
  int heartbeat_timeout_ms = 15000;   // a silent worker is lost after this long
  int heartbeat_interval_ms = 2000;   // asked of workers in HelloAck
  int requeue_grace_ms = 30000;       // after a restart, how long a job waits for its worker
  // Called (under the manager's lock) when a job reaches a terminal state; `run_seconds` is the
  // time since it started running (0 if it never ran). Default none.
  std::function<void(v1::JobState state, double run_seconds)> on_job_finished;
};

// A job ready to be queued: what SpecResolver produced from a JobSpec.
struct NewJob {
  v1::JobSpec spec;
  v1::JobAssignment assignment;  // resolved inputs; job_id/attempt are set per assignment
  std::string device_kind;       // "" = any
  uint64_t memory_bytes = 0;     // estimated peak memory
  std::string request_id;        // idempotency key ("" = none)
  std::string tenant;            // owner, stored as Job.tenant ("" = no auth)
  // The tenant's limit on jobs queued or running at once (0 = none) and where it was set
  // (auth/tenant_quotas.h), checked under the manager's lock so concurrent submits cannot pass
  // it together.
  uint64_t tenant_max_jobs = 0;
  std::string tenant_max_jobs_source;
  // Non-empty: a quota the caller already found exhausted (the tenant's kept artifacts). Submit
  // returns RESOURCE_EXHAUSTED with it, unless request_id names a job that exists (an
  // idempotent retry still gets its job).
  std::string quota_refusal;
};

struct ManagerStats {
  int queued = 0;               // jobs waiting for a worker
  int workers_connected = 0;
  int workers_busy = 0;
};

class JobManager {
 public:
  // Loads the store's non-terminal jobs (see "Server restart" above).
  static absl::StatusOr<std::unique_ptr<JobManager>> Create(JobManagerOptions options,
                                                            JobStore* store,
                                                            ArtifactStore* artifacts,
                                                            Clock* clock);
  ~JobManager();

  // ----- Client side -----
  // Persists the job as QUEUED and schedules it. With a request_id already used, returns that
  // job instead. RESOURCE_EXHAUSTED when max_queued_jobs are waiting, or when the tenant already
  // has tenant_max_jobs jobs queued or running.
  absl::StatusOr<v1::Job> Submit(NewJob job);
  // NOT_FOUND for an unknown id.
  absl::StatusOr<v1::Job> Get(const std::string& job_id);
  // See the transitions above; a terminal job is returned unchanged.
  absl::StatusOr<v1::Job> Cancel(const std::string& job_id);

  struct EventPoll {
    std::vector<v1::JobEvent> events;  // seq > after_seq, in order; empty when waiting or ended
    bool ended = false;                // no more events will come (job terminal, or !follow)
    bool waiting = false;              // a wake-up was registered (only with follow)
  };
  // Returns up to `limit` events after `after_seq`. When there are none: with follow and a
  // non-terminal job registers `wake` (called once, without locks held, after the next event or
  // at Shutdown) and sets *wait_id; otherwise reports ended. NOT_FOUND for an unknown job;
  // UNAVAILABLE after Shutdown for a job that has not ended (the client should watch again).
  absl::StatusOr<EventPoll> PollEvents(const std::string& job_id, uint64_t after_seq, int limit,
                                       bool follow, std::function<void()> wake,
                                       uint64_t* wait_id);
  // Drops a wake-up registered by PollEvents (no-op when it already fired).
  void CancelWait(const std::string& job_id, uint64_t wait_id);

  // The id of a queued or running job whose inputs include the upload, or "".
  std::string ActiveJobUsingUpload(const std::string& upload_id);
  // Jobs queued or running (not terminal) of one tenant.
  int ActiveJobsOf(const std::string& tenant);

  // ----- Worker side -----
  // A worker said hello on `conn`. Replaces an older connection of the same worker_id. Sends
  // the HelloAck on `conn` (resume_job says whether the job named in the hello continues), then
  // possibly a cancel for that job or a new assignment.
  absl::Status WorkerConnected(const v1::WorkerHello& hello, WorkerConnection* conn);
  // A heartbeat, job event or completion from the worker on `conn` (stale connections ignored).
  void HandleWorkerMessage(const std::string& worker_id, WorkerConnection* conn,
                           const v1::WorkerMessage& message);
  // The stream of `conn` ended. After this returns the manager never touches `conn` again.
  void WorkerDisconnected(const std::string& worker_id, WorkerConnection* conn,
                          const std::string& reason);
  // OK when (job_id, attempt) is the job's current attempt on some worker: artifact uploads for
  // anything else are refused (FAILED_PRECONDITION / NOT_FOUND).
  absl::Status CheckCurrentAttempt(const std::string& job_id, int attempt);

  // ----- Time and lifecycle -----
  // Applies heartbeat timeouts and restart grace periods at the clock's current time. The server
  // calls it periodically; tests call it after advancing a FakeClock.
  void Tick();
  // Wakes every watcher (their polls then report ended) and closes every worker stream; later
  // Submit calls fail with UNAVAILABLE. Idempotent.
  void Shutdown();
  ManagerStats Stats();

 private:
  struct ActiveJob {
    v1::Job job;                   // as stored
    v1::JobAssignment assignment;  // resolved inputs
    std::string device_kind;
    uint64_t memory_bytes = 0;
    int64_t submit_order = 0;
    int log_level = 1;
    int64_t orphan_deadline_ms = 0;  // monotonic; > 0 while waiting for its worker after restart
    bool no_fit_warned = false;
  };
  struct WorkerState {
    v1::WorkerHello hello;
    WorkerConnection* conn = nullptr;
    int64_t last_seen_ms = 0;  // monotonic
    std::string job_id;        // "" when idle
    int attempt = 0;
    bool draining = false;     // sent WorkerDrain: gets no new assignment
  };
  // A change to one job: its new record and the events to append (seq and time are filled in).
  struct Change {
    std::vector<v1::JobEvent> events;
    std::vector<ArtifactRecord> artifacts;
  };
  using QueueKey = std::tuple<int, int64_t, std::string>;  // (-priority, submit_order, id)

  JobManager(JobManagerOptions options, JobStore* store, ArtifactStore* artifacts, Clock* clock)
      : options_(std::move(options)), store_(store), artifacts_(artifacts), clock_(clock) {}
  absl::Status Load() ABSL_LOCKS_EXCLUDED(mu_);

  // Appends `change` to the job (store first, then memory) and queues wake-ups. The job is
  // dropped from memory when it became terminal. Returns the store's error, memory unchanged.
  absl::Status Commit(ActiveJob& job, v1::Job updated, Change change)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Builds a state event and applies it to `updated`.
  v1::JobEvent StateEvent(v1::Job& updated, v1::JobState state, const std::string& reason,
                          const std::string& worker_id, int attempt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The worker holding a job is gone: re-queue, fail or (when cancelling) cancel it.
  void JobLost(ActiveJob& job, const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveWorker(const std::string& worker_id, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Dispatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Fits(const ActiveJob& job, const WorkerState& worker) const;
  void Assign(ActiveJob& job, const std::string& worker_id, WorkerState& worker)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleEvent(WorkerState& worker, const v1::WorkerJobEvent& event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleCompletion(WorkerState& worker, const v1::JobCompletion& completion)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  ActiveJob* FindJob(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs the wake-ups collected under the lock. Call after releasing mu_.
  void RunWakeups() ABSL_LOCKS_EXCLUDED(mu_);

  const JobManagerOptions options_;
  JobStore* const store_;
  ArtifactStore* const artifacts_;
  Clock* const clock_;

  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, ActiveJob> jobs_ ABSL_GUARDED_BY(mu_);  // non-terminal jobs
  std::set<QueueKey> queue_ ABSL_GUARDED_BY(mu_);               // the QUEUED ones, in order
  std::map<std::string, WorkerState> workers_ ABSL_GUARDED_BY(mu_);
  // job id -> wait id -> wake-up
  std::map<std::string, std::map<uint64_t, std::function<void()>>> waiters_ ABSL_GUARDED_BY(mu_);
  uint64_t next_wait_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::Mutex wake_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::vector<std::function<void()>> pending_wakeups_ ABSL_GUARDED_BY(wake_mu_);
};

// A fresh job id: "j" + 16 lowercase hex digits (time-ordered prefix, random suffix).
std::string NewJobId();

}  // namespace quarry::server
