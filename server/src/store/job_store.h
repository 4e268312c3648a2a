// Persistence of jobs, their events and state history, artifact metadata and uploads in one
// embedded SQLite database (WAL mode, synchronous=NORMAL: a committed transaction survives a
// process crash; a power loss may drop the last few). Every mutation is one transaction, so a job
// row and the events that explain it change together or not at all.
// Thread-safe: one connection behind a mutex.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "quarry/v1/jobs.pb.h"
#include "quarry/v1/worker.pb.h"

struct sqlite3;

namespace quarry::server {

namespace v1 = ::quarry::v1;

// A job as stored: the client-visible Job plus what the server resolved at submission.
struct StoredJob {
  v1::Job job;
  // Inputs resolved at submission (paths, the config as protobuf, log level); job_id and
  // attempt are filled per assignment.
  v1::JobAssignment assignment;
  std::string request_id;       // idempotency key ("" = none)
  std::string device_kind;      // required device kind ("" = any)
  uint64_t memory_bytes = 0;    // estimated peak memory of the job
  int64_t submit_order = 0;     // FIFO order within a priority (assigned by InsertJob)
};

struct ArtifactRecord {
  v1::ArtifactInfo info;
  std::string path;  // absolute path of the stored file
};

enum class UploadKind { kModel = 0, kDataset = 1 };

struct UploadRecord {
  std::string id;
  UploadKind kind = UploadKind::kModel;
  std::string name;
  bool complete = false;
  uint64_t total_bytes = 0;
  std::string path;  // directory (model) or file (dataset) once complete
  std::vector<v1::ArtifactInfo> files;
  std::string tenant;  // who uploaded it ("" = no auth); other tenants cannot use it
};

class JobStore {
 public:
  // Opens (creating if needed) the database at `path`.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Inserts a new job and its first events. ALREADY_EXISTS when the id or the non-empty
  // request_id is taken. Sets job->submit_order.
  absl::Status InsertJob(StoredJob* job, const std::vector<v1::JobEvent>& events);
  // Replaces the job row (by id) and appends events and artifacts, in one transaction. State
  // events are also recorded in the state history.
  absl::Status UpdateJob(const v1::Job& job, const std::vector<v1::JobEvent>& events,
                         const std::vector<ArtifactRecord>& artifacts = {});

  absl::StatusOr<std::optional<StoredJob>> GetJob(const std::string& job_id);
  absl::StatusOr<std::optional<std::string>> FindJobByRequestId(const std::string& request_id);
  // Every job not in a terminal state, in submit order.
  absl::StatusOr<std::vector<StoredJob>> LoadActiveJobs();
  // Newest first; `states` empty = all; `tenant` non-null = only that tenant's jobs.
  absl::StatusOr<std::vector<v1::Job>> ListJobs(const std::vector<v1::JobState>& states,
                                                int limit, const std::string* tenant = nullptr);
  absl::StatusOr<std::map<v1::JobState, int64_t>> CountJobsByState();

  // Events with seq > after_seq, in order, at most `limit`.
  absl::StatusOr<std::vector<v1::JobEvent>> ReadEvents(const std::string& job_id,
                                                       uint64_t after_seq, int limit);
  // The recorded state changes of a job, oldest first.
  absl::StatusOr<std::vector<v1::StateChange>> ReadStateHistory(const std::string& job_id);

  absl::StatusOr<std::optional<ArtifactRecord>> GetArtifact(const std::string& job_id,
                                                            const std::string& name);

  absl::Status PutUpload(const UploadRecord& upload);
  absl::StatusOr<std::optional<UploadRecord>> GetUpload(const std::string& id);

  // ----- Quotas and deletion (auth/tenant_quotas.h) -----
  // Bytes of the tenant's uploads (an unfinished one counts what it declared so far), leaving
  // out `except_upload_id`.
  absl::StatusOr<uint64_t> TenantUploadBytes(const std::string& tenant,
                                             const std::string& except_upload_id = "");
  // Bytes of the artifacts recorded for the tenant's jobs.
  absl::StatusOr<uint64_t> TenantArtifactBytes(const std::string& tenant);
  struct TenantUsage {
    std::map<v1::JobState, int64_t> jobs;
    uint64_t upload_bytes = 0;
    uint64_t artifact_bytes = 0;
  };
  // Every tenant that has a job or an upload (metrics).
  absl::StatusOr<std::map<std::string, TenantUsage>> UsageByTenant();
  // Removes a job, its events, state history and artifact rows in one transaction (the caller
  // checks that it is terminal and removes the files). NOT_FOUND for an unknown id.
  absl::Status DeleteJob(const std::string& job_id);
  // Removes an upload's row. NOT_FOUND for an unknown id.
  absl::Status DeleteUpload(const std::string& id);

  // The audit log (schema version 2): appends one row (its id and the event's other fields as
  // given) and returns the id; lists rows newest first.
  absl::StatusOr<int64_t> AppendAudit(const v1::AuditEvent& event);
  absl::StatusOr<std::vector<v1::AuditEvent>> ListAudit(const v1::ListAuditEventsRequest& query);

 private:
  explicit JobStore(sqlite3* db) : db_(db) {}
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status MigrateTo1() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status InsertEvents(const std::vector<v1::JobEvent>& events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);
};

}  // namespace quarry::server
