#include "store/job_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace quarry::server {
namespace {

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  absl::Status status() const {
    if (rc_ == SQLITE_OK) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("sqlite prepare: ", sqlite3_errmsg(db_)));
  }
  void Bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void BindBlob(int i, const std::string& s) {
    sqlite3_bind_blob(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void BindNull(int i) { sqlite3_bind_null(stmt_, i); }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::string Text(int col) {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), n);
  }
  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  absl::Status StepError(absl::string_view what) const {
    int code = sqlite3_errcode(db_);
    std::string msg = absl::StrCat("sqlite ", what, ": ", sqlite3_errmsg(db_));
    if ((code & 0xff) == SQLITE_CONSTRAINT) return absl::AlreadyExistsError(msg);
    if ((code & 0xff) == SQLITE_FULL) return absl::ResourceExhaustedError(msg);
    return absl::InternalError(msg);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

// BEGIN IMMEDIATE .. COMMIT; rolls back unless Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {
    begun_ = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  ~Transaction() {
    if (begun_ && !committed_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  absl::Status Begun() const {
    if (begun_) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("sqlite begin: ", sqlite3_errmsg(db_)));
  }
  absl::Status Commit() {
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
      return absl::InternalError(absl::StrCat("sqlite commit: ", sqlite3_errmsg(db_)));
    committed_ = true;
    return absl::OkStatus();
  }

 private:
  sqlite3* db_;
  bool begun_ = false;
  bool committed_ = false;
};

absl::Status ParseInto(google::protobuf::Message* msg, const std::string& bytes,
                       absl::string_view what) {
  if (!msg->ParseFromString(bytes))
    return absl::DataLossError(absl::StrCat("corrupt ", what, " row in the job database"));
  return absl::OkStatus();
}

int EventKind(const v1::JobEvent& e) { return static_cast<int>(e.payload_case()); }

// Every row of `q`, whose first column is a serialized T; `what` names a corrupt row, `step_what`
// a failed query.
template <typename T>
absl::StatusOr<std::vector<T>> ReadMessages(Stmt& q, absl::string_view what,
                                            absl::string_view step_what) {
  std::vector<T> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    T m;
    if (absl::Status st = ParseInto(&m, q.Text(0), what); !st.ok()) return st;
    out.push_back(std::move(m));
  }
  if (rc != SQLITE_DONE) return q.StepError(step_what);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("cannot open job database '", path, "': ", msg));
  }
  std::unique_ptr<JobStore> store(new JobStore(db));
  absl::MutexLock lock(&store->mu_);
  sqlite3_busy_timeout(db, 5000);
  {
    Stmt wal(db, "PRAGMA journal_mode=WAL");
    if (!wal.status().ok()) return wal.status();
    if (wal.Step() != SQLITE_ROW || wal.Text(0) != "wal")
      return absl::UnavailableError(
          absl::StrCat("job database '", path, "': cannot switch to WAL mode"));
  }
  if (absl::Status st = store->Exec("PRAGMA synchronous=NORMAL"); !st.ok()) return st;
  if (absl::Status st = store->Exec("PRAGMA foreign_keys=ON"); !st.ok()) return st;
  if (absl::Status st = store->Migrate(); !st.ok()) return st;
  return store;
}

JobStore::~JobStore() {
  absl::MutexLock lock(&mu_);
  sqlite3_close(db_);
}

absl::Status JobStore::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return absl::InternalError(absl::StrCat("sqlite: ", msg, " in: ", sql));
  }
  return absl::OkStatus();
}

// Schema versions: 1 jobs, events, state history, artifacts, uploads; 2 (issue 17) a tenant
// column on jobs and uploads (existing rows get "": visible to admin tokens only) and the audit
// table. Each step is one transaction, run in order from the database's version.
absl::Status JobStore::Migrate() {
  constexpr int64_t kSchemaVersion = 2;
  int64_t v = 0;
  {
    Stmt version(db_, "PRAGMA user_version");
    if (!version.status().ok()) return version.status();
    v = version.Step() == SQLITE_ROW ? version.Int(0) : 0;
  }
  if (v > kSchemaVersion)
    return absl::FailedPreconditionError(absl::StrCat(
        "job database schema version ", v, " is newer than this server understands (",
        kSchemaVersion, ")"));
  if (v < 1) {
    if (absl::Status st = MigrateTo1(); !st.ok()) return st;
  }
  if (v < 2) {
    if (absl::Status st = Exec(R"sql(
      BEGIN;
      ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
      CREATE INDEX IF NOT EXISTS jobs_tenant ON jobs(tenant, submit_order);
      ALTER TABLE uploads ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
      CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time_ms INTEGER NOT NULL,
        tenant TEXT NOT NULL,
        token_id TEXT NOT NULL,
        peer TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        code TEXT NOT NULL,
        detail TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS audit_time ON audit(time_ms);
      PRAGMA user_version = 2;
      COMMIT;)sql");
        !st.ok()) {
      Exec("ROLLBACK").IgnoreError();
      return st;
    }
  }
  return absl::OkStatus();
}

absl::Status JobStore::MigrateTo1() {
  return Exec(R"sql(
    BEGIN;
    CREATE TABLE IF NOT EXISTS jobs (
      id TEXT PRIMARY KEY,
      submit_order INTEGER NOT NULL UNIQUE,
      state INTEGER NOT NULL,
      priority INTEGER NOT NULL,
      request_id TEXT,
      created_ms INTEGER NOT NULL,
      device_kind TEXT NOT NULL,
      memory_bytes INTEGER NOT NULL,
      job BLOB NOT NULL,
      assignment BLOB NOT NULL);
    CREATE UNIQUE INDEX IF NOT EXISTS jobs_request_id ON jobs(request_id)
      WHERE request_id IS NOT NULL;
    CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
    CREATE TABLE IF NOT EXISTS events (
      job_id TEXT NOT NULL REFERENCES jobs(id),
      seq INTEGER NOT NULL,
      time_ms INTEGER NOT NULL,
      kind INTEGER NOT NULL,
      severity INTEGER NOT NULL,
      event BLOB NOT NULL,
      PRIMARY KEY (job_id, seq)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS state_history (
      job_id TEXT NOT NULL REFERENCES jobs(id),
      seq INTEGER NOT NULL,
      time_ms INTEGER NOT NULL,
      state INTEGER NOT NULL,
      reason TEXT NOT NULL,
      worker_id TEXT NOT NULL,
      attempt INTEGER NOT NULL,
      PRIMARY KEY (job_id, seq)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS artifacts (
      job_id TEXT NOT NULL REFERENCES jobs(id),
      name TEXT NOT NULL,
      size INTEGER NOT NULL,
      sha256 TEXT NOT NULL,
      path TEXT NOT NULL,
      PRIMARY KEY (job_id, name)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS uploads (
      id TEXT PRIMARY KEY,
      kind INTEGER NOT NULL,
      name TEXT NOT NULL,
      complete INTEGER NOT NULL,
      total_bytes INTEGER NOT NULL,
      path TEXT NOT NULL,
      files BLOB NOT NULL);
    PRAGMA user_version = 1;
    COMMIT;)sql");
}

absl::Status JobStore::InsertEvents(const std::vector<v1::JobEvent>& events) {
  if (events.empty()) return absl::OkStatus();
  Stmt ins(db_, "INSERT INTO events(job_id, seq, time_ms, kind, severity, event) "
                "VALUES(?,?,?,?,?,?)");
  if (!ins.status().ok()) return ins.status();
  Stmt hist(db_, "INSERT INTO state_history(job_id, seq, time_ms, state, reason, worker_id, "
                 "attempt) VALUES(?,?,?,?,?,?,?)");
  if (!hist.status().ok()) return hist.status();
  for (const v1::JobEvent& e : events) {
    ins.Reset();
    ins.Bind(1, e.job_id());
    ins.Bind(2, static_cast<int64_t>(e.seq()));
    ins.Bind(3, e.time_unix_ms());
    ins.Bind(4, static_cast<int64_t>(EventKind(e)));
    ins.Bind(5, static_cast<int64_t>(e.has_log() ? e.log().severity() : -1));
    ins.BindBlob(6, e.SerializeAsString());
    if (ins.Step() != SQLITE_DONE) return ins.StepError("insert event");
    if (e.has_state()) {
      hist.Reset();
      hist.Bind(1, e.job_id());
      hist.Bind(2, static_cast<int64_t>(e.seq()));
      hist.Bind(3, e.time_unix_ms());
      hist.Bind(4, static_cast<int64_t>(e.state().state()));
      hist.Bind(5, e.state().reason());
      hist.Bind(6, e.state().worker_id());
      hist.Bind(7, static_cast<int64_t>(e.state().attempt()));
      if (hist.Step() != SQLITE_DONE) return hist.StepError("insert state history");
    }
  }
  return absl::OkStatus();
}

absl::Status JobStore::InsertJob(StoredJob* job, const std::vector<v1::JobEvent>& events) {
  absl::MutexLock lock(&mu_);
  Transaction tx(db_);
  if (absl::Status st = tx.Begun(); !st.ok()) return st;
  int64_t order = 1;
  {
    Stmt max(db_, "SELECT COALESCE(MAX(submit_order), 0) + 1 FROM jobs");
    if (!max.status().ok()) return max.status();
    if (max.Step() == SQLITE_ROW) order = max.Int(0);
  }
  Stmt ins(db_, "INSERT INTO jobs(id, submit_order, state, priority, request_id, created_ms, "
                "device_kind, memory_bytes, job, assignment, tenant) "
                "VALUES(?,?,?,?,?,?,?,?,?,?,?)");
  if (!ins.status().ok()) return ins.status();
  ins.Bind(1, job->job.id());
  ins.Bind(2, order);
  ins.Bind(3, static_cast<int64_t>(job->job.state()));
  ins.Bind(4, static_cast<int64_t>(job->job.spec().priority()));
  if (job->request_id.empty()) {
    ins.BindNull(5);
  } else {
    ins.Bind(5, job->request_id);
  }
  ins.Bind(6, job->job.created_unix_ms());
  ins.Bind(7, job->device_kind);
  ins.Bind(8, static_cast<int64_t>(job->memory_bytes));
  ins.BindBlob(9, job->job.SerializeAsString());
  ins.BindBlob(10, job->assignment.SerializeAsString());
  ins.Bind(11, job->job.tenant());
  if (ins.Step() != SQLITE_DONE) return ins.StepError("insert job");
  if (absl::Status st = InsertEvents(events); !st.ok()) return st;
  if (absl::Status st = tx.Commit(); !st.ok()) return st;
  job->submit_order = order;
  return absl::OkStatus();
}

absl::Status JobStore::UpdateJob(const v1::Job& job, const std::vector<v1::JobEvent>& events,
                                 const std::vector<ArtifactRecord>& artifacts) {
  absl::MutexLock lock(&mu_);
  Transaction tx(db_);
  if (absl::Status st = tx.Begun(); !st.ok()) return st;
  Stmt upd(db_, "UPDATE jobs SET state = ?, job = ? WHERE id = ?");
  if (!upd.status().ok()) return upd.status();
  upd.Bind(1, static_cast<int64_t>(job.state()));
  upd.BindBlob(2, job.SerializeAsString());
  upd.Bind(3, job.id());
  if (upd.Step() != SQLITE_DONE) return upd.StepError("update job");
  if (sqlite3_changes(db_) != 1)
    return absl::NotFoundError(absl::StrCat("job '", job.id(), "' is not in the database"));
  if (absl::Status st = InsertEvents(events); !st.ok()) return st;
  if (!artifacts.empty()) {
    Stmt ins(db_, "INSERT OR REPLACE INTO artifacts(job_id, name, size, sha256, path) "
                  "VALUES(?,?,?,?,?)");
    if (!ins.status().ok()) return ins.status();
    for (const ArtifactRecord& a : artifacts) {
      ins.Reset();
      ins.Bind(1, job.id());
      ins.Bind(2, a.info.name());
      ins.Bind(3, static_cast<int64_t>(a.info.size()));
      ins.Bind(4, a.info.sha256());
      ins.Bind(5, a.path);
      if (ins.Step() != SQLITE_DONE) return ins.StepError("insert artifact");
    }
  }
  return tx.Commit();
}

absl::StatusOr<std::optional<StoredJob>> JobStore::GetJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT job, assignment, request_id, device_kind, memory_bytes, submit_order "
              "FROM jobs WHERE id = ?");
  if (!q.status().ok()) return q.status();
  q.Bind(1, job_id);
  int rc = q.Step();
  if (rc == SQLITE_DONE) return std::optional<StoredJob>();
  if (rc != SQLITE_ROW) return q.StepError("get job");
  StoredJob out;
  if (absl::Status st = ParseInto(&out.job, q.Text(0), "job"); !st.ok()) return st;
  if (absl::Status st = ParseInto(&out.assignment, q.Text(1), "job"); !st.ok()) return st;
  out.request_id = q.Text(2);
  out.device_kind = q.Text(3);
  out.memory_bytes = static_cast<uint64_t>(q.Int(4));
  out.submit_order = q.Int(5);
  return std::optional<StoredJob>(std::move(out));
}

absl::StatusOr<std::optional<std::string>> JobStore::FindJobByRequestId(
    const std::string& request_id) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT id FROM jobs WHERE request_id = ?");
  if (!q.status().ok()) return q.status();
  q.Bind(1, request_id);
  int rc = q.Step();
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return q.StepError("find job");
  return std::optional<std::string>(q.Text(0));
}

absl::StatusOr<std::vector<StoredJob>> JobStore::LoadActiveJobs() {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT job, assignment, request_id, device_kind, memory_bytes, submit_order "
              "FROM jobs WHERE state NOT IN (?,?,?) ORDER BY submit_order");
  if (!q.status().ok()) return q.status();
  q.Bind(1, static_cast<int64_t>(v1::JOB_STATE_SUCCEEDED));
  q.Bind(2, static_cast<int64_t>(v1::JOB_STATE_FAILED));
  q.Bind(3, static_cast<int64_t>(v1::JOB_STATE_CANCELLED));
  std::vector<StoredJob> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    StoredJob j;
    if (absl::Status st = ParseInto(&j.job, q.Text(0), "job"); !st.ok()) return st;
    if (absl::Status st = ParseInto(&j.assignment, q.Text(1), "job"); !st.ok()) return st;
    j.request_id = q.Text(2);
    j.device_kind = q.Text(3);
    j.memory_bytes = static_cast<uint64_t>(q.Int(4));
    j.submit_order = q.Int(5);
    out.push_back(std::move(j));
  }
  if (rc != SQLITE_DONE) return q.StepError("load jobs");
  return out;
}

absl::StatusOr<std::vector<v1::Job>> JobStore::ListJobs(const std::vector<v1::JobState>& states,
                                                        int limit, const std::string* tenant) {
  absl::MutexLock lock(&mu_);
  std::string sql = "SELECT job FROM jobs WHERE 1";
  if (!states.empty()) {
    std::vector<std::string> nums;
    for (v1::JobState s : states) nums.push_back(absl::StrCat(static_cast<int>(s)));
    absl::StrAppend(&sql, " AND state IN (", absl::StrJoin(nums, ","), ")");
  }
  if (tenant != nullptr) absl::StrAppend(&sql, " AND tenant = ?2");
  absl::StrAppend(&sql, " ORDER BY submit_order DESC LIMIT ?1");
  Stmt q(db_, sql.c_str());
  if (!q.status().ok()) return q.status();
  q.Bind(1, static_cast<int64_t>(limit));
  if (tenant != nullptr) q.Bind(2, *tenant);
  return ReadMessages<v1::Job>(q, "job", "list jobs");
}

absl::StatusOr<std::map<v1::JobState, int64_t>> JobStore::CountJobsByState() {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
  if (!q.status().ok()) return q.status();
  std::map<v1::JobState, int64_t> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW)
    out[static_cast<v1::JobState>(q.Int(0))] = q.Int(1);
  if (rc != SQLITE_DONE) return q.StepError("count jobs");
  return out;
}

absl::StatusOr<std::vector<v1::JobEvent>> JobStore::ReadEvents(const std::string& job_id,
                                                               uint64_t after_seq, int limit) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT event FROM events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?");
  if (!q.status().ok()) return q.status();
  q.Bind(1, job_id);
  q.Bind(2, static_cast<int64_t>(after_seq));
  q.Bind(3, static_cast<int64_t>(limit));
  return ReadMessages<v1::JobEvent>(q, "event", "read events");
}

absl::StatusOr<std::vector<v1::StateChange>> JobStore::ReadStateHistory(
    const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT state, reason, worker_id, attempt FROM state_history WHERE job_id = ? "
              "ORDER BY seq");
  if (!q.status().ok()) return q.status();
  q.Bind(1, job_id);
  std::vector<v1::StateChange> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    v1::StateChange c;
    c.set_state(static_cast<v1::JobState>(q.Int(0)));
    c.set_reason(q.Text(1));
    c.set_worker_id(q.Text(2));
    c.set_attempt(static_cast<int32_t>(q.Int(3)));
    out.push_back(std::move(c));
  }
  if (rc != SQLITE_DONE) return q.StepError("read state history");
  return out;
}

absl::StatusOr<std::optional<ArtifactRecord>> JobStore::GetArtifact(const std::string& job_id,
                                                                    const std::string& name) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT size, sha256, path FROM artifacts WHERE job_id = ? AND name = ?");
  if (!q.status().ok()) return q.status();
  q.Bind(1, job_id);
  q.Bind(2, name);
  int rc = q.Step();
  if (rc == SQLITE_DONE) return std::optional<ArtifactRecord>();
  if (rc != SQLITE_ROW) return q.StepError("get artifact");
  ArtifactRecord a;
  a.info.set_name(name);
  a.info.set_size(static_cast<uint64_t>(q.Int(0)));
  a.info.set_sha256(q.Text(1));
  a.path = q.Text(2);
  return std::optional<ArtifactRecord>(std::move(a));
}

absl::Status JobStore::PutUpload(const UploadRecord& upload) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "INSERT OR REPLACE INTO uploads(id, kind, name, complete, total_bytes, path, files, "
              "tenant) VALUES(?,?,?,?,?,?,?,?)");
  if (!q.status().ok()) return q.status();
  v1::UploadResponse files;  // reuse the message as a container for the file list
  for (const auto& f : upload.files) *files.add_files() = f;
  q.Bind(1, upload.id);
  q.Bind(2, static_cast<int64_t>(upload.kind));
  q.Bind(3, upload.name);
  q.Bind(4, static_cast<int64_t>(upload.complete ? 1 : 0));
  q.Bind(5, static_cast<int64_t>(upload.total_bytes));
  q.Bind(6, upload.path);
  q.BindBlob(7, files.SerializeAsString());
  q.Bind(8, upload.tenant);
  if (q.Step() != SQLITE_DONE) return q.StepError("put upload");
  return absl::OkStatus();
}

absl::StatusOr<std::optional<UploadRecord>> JobStore::GetUpload(const std::string& id) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT kind, name, complete, total_bytes, path, files, tenant FROM uploads "
              "WHERE id = ?");
  if (!q.status().ok()) return q.status();
  q.Bind(1, id);
  int rc = q.Step();
  if (rc == SQLITE_DONE) return std::optional<UploadRecord>();
  if (rc != SQLITE_ROW) return q.StepError("get upload");
  UploadRecord u;
  u.id = id;
  u.kind = static_cast<UploadKind>(q.Int(0));
  u.name = q.Text(1);
  u.complete = q.Int(2) != 0;
  u.total_bytes = static_cast<uint64_t>(q.Int(3));
  u.path = q.Text(4);
  v1::UploadResponse files;
  if (absl::Status st = ParseInto(&files, q.Text(5), "upload"); !st.ok()) return st;
  u.files.assign(files.files().begin(), files.files().end());
  u.tenant = q.Text(6);
  return std::optional<UploadRecord>(std::move(u));
}

absl::StatusOr<uint64_t> JobStore::TenantUploadBytes(const std::string& tenant,
                                                     const std::string& except_upload_id) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT COALESCE(SUM(total_bytes), 0) FROM uploads WHERE tenant = ? AND id != ?");
  if (!q.status().ok()) return q.status();
  q.Bind(1, tenant);
  q.Bind(2, except_upload_id);
  if (q.Step() != SQLITE_ROW) return q.StepError("sum uploads");
  return static_cast<uint64_t>(q.Int(0));
}

absl::StatusOr<uint64_t> JobStore::TenantArtifactBytes(const std::string& tenant) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "SELECT COALESCE(SUM(a.size), 0) FROM artifacts a JOIN jobs j ON a.job_id = j.id "
              "WHERE j.tenant = ?");
  if (!q.status().ok()) return q.status();
  q.Bind(1, tenant);
  if (q.Step() != SQLITE_ROW) return q.StepError("sum artifacts");
  return static_cast<uint64_t>(q.Int(0));
}

absl::StatusOr<std::map<std::string, JobStore::TenantUsage>> JobStore::UsageByTenant() {
  absl::MutexLock lock(&mu_);
  std::map<std::string, TenantUsage> out;
  {
    Stmt q(db_, "SELECT tenant, state, COUNT(*) FROM jobs GROUP BY tenant, state");
    if (!q.status().ok()) return q.status();
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW)
      out[q.Text(0)].jobs[static_cast<v1::JobState>(q.Int(1))] = q.Int(2);
    if (rc != SQLITE_DONE) return q.StepError("count jobs by tenant");
  }
  {
    Stmt q(db_, "SELECT tenant, SUM(total_bytes) FROM uploads GROUP BY tenant");
    if (!q.status().ok()) return q.status();
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW)
      out[q.Text(0)].upload_bytes = static_cast<uint64_t>(q.Int(1));
    if (rc != SQLITE_DONE) return q.StepError("sum uploads by tenant");
  }
  {
    Stmt q(db_, "SELECT j.tenant, SUM(a.size) FROM artifacts a JOIN jobs j ON a.job_id = j.id "
                "GROUP BY j.tenant");
    if (!q.status().ok()) return q.status();
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW)
      out[q.Text(0)].artifact_bytes = static_cast<uint64_t>(q.Int(1));
    if (rc != SQLITE_DONE) return q.StepError("sum artifacts by tenant");
  }
  return out;
}

absl::Status JobStore::DeleteJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  Transaction tx(db_);
  if (absl::Status st = tx.Begun(); !st.ok()) return st;
  for (const char* sql : {"DELETE FROM artifacts WHERE job_id = ?",
                          "DELETE FROM events WHERE job_id = ?",
                          "DELETE FROM state_history WHERE job_id = ?",
                          "DELETE FROM jobs WHERE id = ?"}) {
    Stmt q(db_, sql);
    if (!q.status().ok()) return q.status();
    q.Bind(1, job_id);
    if (q.Step() != SQLITE_DONE) return q.StepError("delete job");
  }
  if (sqlite3_changes(db_) != 1)
    return absl::NotFoundError(absl::StrCat("job '", job_id, "' is not in the database"));
  return tx.Commit();
}

absl::Status JobStore::DeleteUpload(const std::string& id) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "DELETE FROM uploads WHERE id = ?");
  if (!q.status().ok()) return q.status();
  q.Bind(1, id);
  if (q.Step() != SQLITE_DONE) return q.StepError("delete upload");
  if (sqlite3_changes(db_) != 1)
    return absl::NotFoundError(absl::StrCat("upload '", id, "' is not in the database"));
  return absl::OkStatus();
}

absl::StatusOr<int64_t> JobStore::AppendAudit(const v1::AuditEvent& e) {
  absl::MutexLock lock(&mu_);
  Stmt q(db_, "INSERT INTO audit(time_ms, tenant, token_id, peer, action, target, code, detail) "
              "VALUES(?,?,?,?,?,?,?,?)");
  if (!q.status().ok()) return q.status();
  q.Bind(1, e.time_unix_ms());
  q.Bind(2, e.tenant());
  q.Bind(3, e.token_id());
  q.Bind(4, e.peer());
  q.Bind(5, e.action());
  q.Bind(6, e.target());
  q.Bind(7, e.code());
  q.Bind(8, e.detail());
  if (q.Step() != SQLITE_DONE) return q.StepError("append audit");
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

absl::StatusOr<std::vector<v1::AuditEvent>> JobStore::ListAudit(
    const v1::ListAuditEventsRequest& query) {
  absl::MutexLock lock(&mu_);
  std::string sql = "SELECT id, time_ms, tenant, token_id, peer, action, target, code, detail "
                    "FROM audit WHERE time_ms >= ?1";
  if (!query.tenant().empty()) absl::StrAppend(&sql, " AND tenant = ?2");
  if (!query.action().empty()) absl::StrAppend(&sql, " AND action = ?3");
  absl::StrAppend(&sql, " ORDER BY id DESC LIMIT ?4");
  Stmt q(db_, sql.c_str());
  if (!q.status().ok()) return q.status();
  q.Bind(1, query.since_unix_ms());
  if (!query.tenant().empty()) q.Bind(2, query.tenant());
  if (!query.action().empty()) q.Bind(3, query.action());
  q.Bind(4, static_cast<int64_t>(query.limit() > 0 ? std::min(query.limit(), 10000) : 100));
  std::vector<v1::AuditEvent> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    v1::AuditEvent e;
    e.set_id(q.Int(0));
    e.set_time_unix_ms(q.Int(1));
    e.set_tenant(q.Text(2));
    e.set_token_id(q.Text(3));
    e.set_peer(q.Text(4));
    e.set_action(q.Text(5));
    e.set_target(q.Text(6));
    e.set_code(q.Text(7));
    e.set_detail(q.Text(8));
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return q.StepError("list audit");
  return out;
}

}  // namespace quarry::server
