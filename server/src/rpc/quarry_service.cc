// QuarryService: the client-facing RPCs.
#include <memory>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "convert/config_convert.h"
#include "jobs/job_states.h"
#include "quarry/client/grpc_status.h"
#include "quarry/config_json.h"
#include "quarry/config_validate.h"
#include "quarry/layer_plan.h"
#include "quarry/safetensors.h"
#include "quarry/v1/jobs.grpc.pb.h"
#include "rpc/file_stream_reactor.h"
#include "rpc/services.h"

namespace quarry::server {
namespace {

std::string NewUploadId() {
  static absl::Mutex mu(absl::kConstInit);
  static std::mt19937_64 rng{std::random_device{}()};
  absl::MutexLock lock(&mu);
  return absl::StrFormat("u%016x", rng());
}

// Finishes a unary call and records its metrics.
grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* ctx, RpcTimer& timer,
                                      const absl::Status& st) {
  timer.Finish(st.code());
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(st));
  return reactor;
}

// The job, if the caller may see it; another tenant's job is NOT_FOUND (audited).
absl::StatusOr<v1::Job> VisibleJob(const ServiceDeps& deps, const Caller& caller,
                                   const std::string& job_id, const std::string& rpc) {
  auto job = deps.manager->Get(job_id);
  if (!job.ok()) return job.status();
  if (absl::Status st = CheckVisible(caller, deps.audit, job->tenant(), job_id, rpc); !st.ok())
    return st;
  return job;
}

// ----- WatchJob -----

// Replays stored events after from_seq, then (with follow) waits for new ones until the job
// ends. The wake-up registered with the JobManager holds a shared State, not the reactor, so a
// wake-up that races with the end of the call finds `reactor` null instead of freed memory.
class WatchReactor final : public grpc::ServerWriteReactor<v1::JobEvent> {
 public:
  // `precheck`: the caller's authorization and visibility of the job; an error ends the call.
  WatchReactor(const ServiceDeps& deps, const v1::WatchJobRequest& req, absl::Status precheck)
      : deps_(deps), req_(req), timer_(deps.metrics, "WatchJob"), state_(std::make_shared<State>()) {
    state_->reactor = this;
    after_ = req.from_seq();
    absl::MutexLock lock(&state_->mu);
    if (!precheck.ok()) {
      FinishLocked(precheck);
      return;
    }
    Next();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&state_->mu);
    writing_ = false;
    if (!ok) {
      FinishLocked(absl::CancelledError("the client went away"));
      return;
    }
    buffer_.erase(buffer_.begin());
    Next();
  }

  void OnCancel() override {
    absl::MutexLock lock(&state_->mu);
    FinishLocked(absl::CancelledError("cancelled by the client"));
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&state_->mu);
      state_->reactor = nullptr;
      if (wait_id_ != 0) deps_.manager->CancelWait(req_.job_id(), wait_id_);
    }
    delete this;
  }

 private:
  struct State {
    absl::Mutex mu;
    WatchReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
  };

  static void Wake(const std::shared_ptr<State>& state) {
    absl::MutexLock lock(&state->mu);
    if (state->reactor == nullptr) return;
    state->reactor->wait_id_ = 0;
    state->reactor->Next();
  }

  // REQUIRES: state_->mu held.
  void Next() {
    if (finished_ || writing_) return;
    while (buffer_.empty()) {
      std::weak_ptr<State> weak = state_;
      auto poll = deps_.manager->PollEvents(
          req_.job_id(), after_, 256, req_.follow(),
          [weak] {
            if (auto s = weak.lock()) Wake(s);
          },
          &wait_id_);
      if (!poll.ok()) {
        FinishLocked(poll.status());
        return;
      }
      if (poll->waiting) return;  // Wake() calls Next() again
      if (poll->ended) {
        FinishLocked(absl::OkStatus());
        return;
      }
      for (v1::JobEvent& e : poll->events) {
        after_ = e.seq();
        if (e.has_log() && e.log().severity() < req_.min_severity()) continue;
        buffer_.push_back(std::move(e));
      }
    }
    writing_ = true;
    StartWrite(&buffer_.front());
  }

  void FinishLocked(const absl::Status& st) {
    if (finished_) return;
    finished_ = true;
    timer_.Finish(st.code());
    Finish(ToGrpcStatus(st));
  }

  const ServiceDeps deps_;
  const v1::WatchJobRequest req_;
  RpcTimer timer_;
  std::shared_ptr<State> state_;
  // Guarded by state_->mu.
  uint64_t after_ = 0;
  uint64_t wait_id_ = 0;
  std::vector<v1::JobEvent> buffer_;
  bool writing_ = false;
  bool finished_ = false;
};

// ----- DownloadArtifact -----

// What DownloadArtifact streams: one artifact of a job, from the requested offset.
absl::StatusOr<FileStreamPlan> DownloadPlan(const ServiceDeps& deps,
                                            const v1::DownloadArtifactRequest& req,
                                            const Caller& caller) {
  auto job = VisibleJob(deps, caller, req.job_id(), "DownloadArtifact");
  if (!job.ok()) return job.status();
  auto rec = deps.store->GetArtifact(req.job_id(), req.name());
  if (!rec.ok()) return rec.status();
  if (!rec->has_value()) {
    std::vector<std::string> names;
    for (const auto& a : job->artifacts()) names.push_back(a.name());
    return absl::NotFoundError(absl::StrCat(
        "job '", req.job_id(), "' has no artifact '", req.name(), "'",
        names.empty() ? std::string(" (it has none yet)")
                      : absl::StrCat(" (it has: ", absl::StrJoin(names, ", "), ")")));
  }
  const ArtifactRecord& record = **rec;
  if (req.offset() > record.info.size())
    return absl::OutOfRangeError(absl::StrCat("offset ", req.offset(), " is past the end of '",
                                              req.name(), "' (", record.info.size(), " bytes)"));
  FileStreamPlan plan;
  plan.files.push_back({record.path, record.info});
  plan.first_offset = req.offset();
  return plan;
}

// ----- UploadModel / UploadDataset -----

// Uploads in progress (one stream per upload id at a time).
class ActiveUploads {
 public:
  bool Claim(const std::string& id) {
    absl::MutexLock lock(&mu_);
    return ids_.insert(id).second;
  }
  void Release(const std::string& id) {
    absl::MutexLock lock(&mu_);
    ids_.erase(id);
  }
  // Serialises quota checks of uploads (check + store as one step).
  absl::Mutex* quota_mu() { return &quota_mu_; }

 private:
  absl::Mutex quota_mu_;
  absl::Mutex mu_;
  std::set<std::string> ids_ ABSL_GUARDED_BY(mu_);
};

class UploadReactor final : public grpc::ServerReadReactor<v1::UploadChunk> {
 public:
  UploadReactor(const ServiceDeps& deps, ActiveUploads* active, UploadKind kind,
                v1::UploadResponse* response, absl::StatusOr<Caller> caller)
      : deps_(deps),
        active_(active),
        kind_(kind),
        kind_name_(kind == UploadKind::kModel ? "model" : "dataset"),
        response_(response),
        timer_(deps.metrics, kind == UploadKind::kModel ? "UploadModel" : "UploadDataset") {
    if (!caller.ok()) {
      Done(caller.status());
      return;
    }
    caller_ = std::move(*caller);
    StartRead(&chunk_);
  }
  void OnReadDone(bool ok) override {
    absl::Status st = ok ? HandleChunk() : Complete();
    if (!st.ok() || !ok) {
      if (!record_.id.empty() || !st.ok())
        AuditCall(deps_.audit, caller_, "upload",
                  record_.id.empty() ? kind_name_ : absl::StrCat(kind_name_, " ", record_.id), st,
                  st.ok() ? absl::StrCat(record_.total_bytes, " bytes") : "");
      Done(st);
      return;
    }
    StartRead(&chunk_);
  }
  void OnCancel() override {}
  void OnDone() override {
    if (claimed_) active_->Release(record_.id);
    delete this;
  }

 private:
  absl::Status Begin() {
    if (!chunk_.upload_id().empty()) {
      // A client-chosen id: resumes that upload, or starts one under that id (so a client that
      // loses the stream before any response can still resume).
      const std::string& id = chunk_.upload_id();
      if (id.size() > 64 || id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                 "0123456789_-") != std::string::npos)
        return absl::InvalidArgumentError(absl::StrCat(
            "upload_id '", id, "': at most 64 characters from [A-Za-z0-9_-]"));
      auto existing = deps_.store->GetUpload(id);
      if (!existing.ok()) return existing.status();
      if (existing->has_value()) {
        if (!caller_.CanSee((*existing)->tenant))
          return absl::AlreadyExistsError(
              absl::StrCat("upload_id '", id, "' is taken; choose another"));
        if ((*existing)->kind != kind_)
          return absl::InvalidArgumentError(
              absl::StrCat("upload '", id, "' is not a ", kind_name_, " upload"));
        record_ = **existing;
        if (record_.complete)
          return absl::FailedPreconditionError(
              absl::StrCat("upload '", record_.id, "' is already complete"));
      } else {
        record_.id = id;
        record_.kind = kind_;
        record_.name = chunk_.name();
        record_.tenant = caller_.tenant;
      }
    } else {
      record_.id = NewUploadId();
      record_.kind = kind_;
      record_.name = chunk_.name();
      record_.tenant = caller_.tenant;
    }
    if (!active_->Claim(record_.id))
      return absl::AbortedError(
          absl::StrCat("upload '", record_.id, "' is in progress on another stream"));
    claimed_ = true;
    record_.complete = false;
    record_.files.clear();
    record_.total_bytes = 0;
    // A resumed upload: what earlier streams left on disk counts against the quota until this
    // stream declares those paths itself (Declare).
    on_disk_ = deps_.artifacts->UploadBytesOnDisk(record_.id);
    return deps_.store->PutUpload(record_);
  }

  absl::Status HandleChunk() {
    if (record_.id.empty()) {
      if (absl::Status st = Begin(); !st.ok()) return st;
    }
    const std::string& path = chunk_.relative_path();
    if (path.empty()) return absl::InvalidArgumentError("relative_path: required in every chunk");
    if (absl::Status st = ValidateRelativePath(path, "relative_path"); !st.ok()) return st;
    uint64_t& declared = declared_[path];
    declared = std::max<uint64_t>(declared, chunk_.file_size());
    uint64_t total_declared = 0;
    for (const auto& [p, size] : declared_) total_declared += size;
    const uint64_t end = chunk_.offset() + chunk_.data().size();
    if (end > chunk_.file_size())
      return absl::InvalidArgumentError(absl::StrCat(
          "'", path, "': chunk ends at byte ", end, ", past file_size ", chunk_.file_size()));
    if (total_declared > deps_.max_upload_bytes ||
        received_ + chunk_.data().size() > deps_.max_upload_bytes)
      return absl::ResourceExhaustedError(absl::StrCat(
          "upload too large: ", kind_name_, " uploads are limited to ", deps_.max_upload_bytes,
          " bytes (--max-upload-bytes); this one declares ", total_declared, " bytes"));
    uint64_t kept = total_declared;  // + files earlier streams left that this one does not name
    for (const auto& [p, bytes] : on_disk_)
      if (!declared_.count(p)) kept += bytes;
    if (kept > record_.total_bytes) {
      if (absl::Status st = Declare(kept); !st.ok()) return st;
    }
    if (writer_ == nullptr || writer_path_ != path || writer_->size() != chunk_.offset()) {
      if (completed_.count(path))
        return absl::InvalidArgumentError(absl::StrCat("'", path, "' was already completed"));
      auto w = deps_.artifacts->OpenUploadFile(record_.id, path, chunk_.offset());
      if (!w.ok()) return w.status();
      writer_ = std::move(*w);
      writer_path_ = path;
    }
    if (absl::Status st = writer_->Append(chunk_.data()); !st.ok()) return st;
    received_ += chunk_.data().size();
    deps_.metrics->uploaded_bytes.WithLabels({kind_name_}).Increment(chunk_.data().size());
    if (writer_->size() == chunk_.file_size()) {
      auto f = writer_->Finish(chunk_.file_size(), chunk_.file_sha256());
      writer_.reset();
      if (!f.ok()) return f.status();
      completed_[path] = *f;
    }
    return absl::OkStatus();
  }

  // The upload now keeps `total` bytes (what this stream declares + what earlier streams of a
  // resumed upload left on disk): checked against the tenant's max_upload_bytes (with every other
  // upload it keeps, unfinished ones at what they declared) and stored, so an upload that stops
  // half way still counts until it is finished or deleted.
  absl::Status Declare(uint64_t total) {
    absl::MutexLock lock(active_->quota_mu());
    const QuotaLimit limit = LimitsOf(deps_, caller_.tenant).max_upload_bytes;
    if (limit.limited()) {
      auto others = deps_.store->TenantUploadBytes(caller_.tenant, record_.id);
      if (!others.ok()) return others.status();
      if (*others + total > limit.value)
        return absl::ResourceExhaustedError(absl::StrCat(
            "quota: tenant '", caller_.tenant, "' keeps ", DescribeBytes(*others),
            " of uploads and this ", kind_name_, " upload would keep ", DescribeBytes(total),
            "; its limit is ", DescribeBytes(limit.value), " (", limit.source,
            "). Delete uploads it no longer needs: quarry delete-upload ID"));
    }
    record_.total_bytes = total;
    return deps_.store->PutUpload(record_);
  }

  absl::Status Complete() {
    if (record_.id.empty()) return absl::InvalidArgumentError("empty upload: no chunks received");
    for (const auto& [path, size] : declared_)
      if (!completed_.count(path))
        return absl::InvalidArgumentError(absl::StrCat(
            "'", path, "' is incomplete (the stream ended before file_size bytes); resume "
            "with upload_id ", record_.id));
    const std::string dir = deps_.artifacts->UploadFilesDir(record_.id);
    if (kind_ == UploadKind::kModel) {
      auto model = SafetensorsModel::Open(dir);
      if (!model.ok())
        return absl::InvalidArgumentError(
            absl::StrCat("the uploaded model is not usable: ", model.status().message()));
      if (!completed_.count("config.json"))
        return absl::InvalidArgumentError("the uploaded model has no config.json");
      record_.path = dir;
    } else {
      if (completed_.size() != 1)
        return absl::InvalidArgumentError(
            absl::StrCat("a dataset upload holds exactly one file; got ", completed_.size()));
      record_.path = absl::StrCat(dir, "/", completed_.begin()->first);
    }
    record_.complete = true;
    record_.total_bytes = 0;
    record_.files.clear();
    for (const auto& [path, f] : completed_) {
      v1::ArtifactInfo info;
      info.set_name(path);
      info.set_size(f.received_bytes);
      info.set_sha256(f.sha256);
      record_.total_bytes += f.received_bytes;
      record_.files.push_back(info);
    }
    if (absl::Status st = deps_.store->PutUpload(record_); !st.ok()) return st;
    response_->set_id(record_.id);
    response_->set_total_bytes(record_.total_bytes);
    for (const auto& f : record_.files) *response_->add_files() = f;
    return absl::OkStatus();
  }

  void Done(const absl::Status& st) {
    timer_.Finish(st.code());
    Finish(ToGrpcStatus(st));
  }

  const ServiceDeps deps_;
  ActiveUploads* const active_;
  const UploadKind kind_;
  const std::string kind_name_;
  v1::UploadResponse* const response_;
  RpcTimer timer_;
  Caller caller_;
  v1::UploadChunk chunk_;
  UploadRecord record_;
  bool claimed_ = false;
  std::map<std::string, uint64_t> declared_;
  std::map<std::string, uint64_t> on_disk_;  // bytes earlier streams of this upload id left
  std::map<std::string, StagedFile> completed_;
  uint64_t received_ = 0;
  std::unique_ptr<StagedWriter> writer_;
  std::string writer_path_;
};

// ----- The service -----

class QuarryServiceImpl final : public v1::QuarryService::CallbackService {
 public:
  explicit QuarryServiceImpl(ServiceDeps deps) : deps_(deps) {}

  grpc::ServerUnaryReactor* SubmitJob(grpc::CallbackServerContext* ctx,
                                      const v1::SubmitJobRequest* req, v1::Job* resp) override {
    RpcTimer timer(deps_.metrics, "SubmitJob");
    auto caller = deps_.auth->Authorize(*ctx, kRoleSubmit, "SubmitJob");
    if (!caller.ok()) return FinishUnary(ctx, timer, caller.status());
    // Idempotency keys are per tenant: another tenant's key never returns its job.
    const std::string request_id =
        req->request_id().empty() || caller->tenant.empty()
            ? req->request_id()
            : absl::StrCat(caller->tenant, "/", req->request_id());
    auto job = deps_.resolver->Resolve(req->spec(), request_id, caller->TenantFilter());
    std::string quota_refusal;
    if (job.ok()) {
      absl::Status quota = CheckArtifactQuota(deps_, caller->tenant, 0, "a new job");
      if (quota.code() == absl::StatusCode::kResourceExhausted)
        quota_refusal = std::string(quota.message());  // (Submit lets an idempotent retry by)
      else if (!quota.ok())
        job = quota;
    }
    absl::StatusOr<v1::Job> submitted =
        job.ok() ? deps_.manager->Submit([&] {
          job->tenant = caller->tenant;
          job->quota_refusal = quota_refusal;
          const QuotaLimit max_jobs = LimitsOf(deps_, caller->tenant).max_jobs;
          job->tenant_max_jobs = max_jobs.value;
          job->tenant_max_jobs_source = max_jobs.source;
          return std::move(*job);
        }())
                 : absl::StatusOr<v1::Job>(job.status());
    AuditCall(deps_.audit, *caller, "submit", submitted.ok() ? submitted->id() : "",
              submitted.status(),
              submitted.ok() ? req->spec().name() : std::string(submitted.status().message()));
    if (submitted.ok()) *resp = std::move(*submitted);
    return FinishUnary(ctx, timer, submitted.status());
  }

  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* ctx,
                                   const v1::GetJobRequest* req, v1::Job* resp) override {
    RpcTimer timer(deps_.metrics, "GetJob");
    auto caller = deps_.auth->Authorize(*ctx, kRoleRead, "GetJob");
    if (!caller.ok()) return FinishUnary(ctx, timer, caller.status());
    auto job = VisibleJob(deps_, *caller, req->job_id(), "GetJob");
    if (job.ok()) *resp = std::move(*job);
    return FinishUnary(ctx, timer, job.status());
  }

  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                     const v1::ListJobsRequest* req,
                                     v1::ListJobsResponse* resp) override {
    RpcTimer timer(deps_.metrics, "ListJobs");
    auto caller = deps_.auth->Authorize(*ctx, kRoleRead, "ListJobs");
    if (!caller.ok()) return FinishUnary(ctx, timer, caller.status());
    const int limit = req->limit() > 0 ? std::min(req->limit(), 10000) : 100;
    std::string key, value;
    if (!req->label_selector().empty()) {
      size_t eq = req->label_selector().find('=');
      if (eq == std::string::npos)
        return FinishUnary(ctx, timer,
                           absl::InvalidArgumentError(absl::StrCat(
                               "label_selector '", req->label_selector(),
                               "': expected key=value")));
      key = req->label_selector().substr(0, eq);
      value = req->label_selector().substr(eq + 1);
    }
    std::vector<v1::JobState> states;
    for (int s : req->states()) states.push_back(static_cast<v1::JobState>(s));
    // With a label selector, filter a larger window of recent jobs.
    auto jobs = deps_.store->ListJobs(states, key.empty() ? limit : 10000, caller->TenantFilter());
    if (!jobs.ok()) return FinishUnary(ctx, timer, jobs.status());
    for (v1::Job& j : *jobs) {
      if (resp->jobs_size() >= limit) break;
      if (!key.empty()) {
        auto it = j.spec().labels().find(key);
        if (it == j.spec().labels().end() || it->second != value) continue;
      }
      *resp->add_jobs() = std::move(j);
    }
    return FinishUnary(ctx, timer, absl::OkStatus());
  }

  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* ctx,
                                      const v1::CancelJobRequest* req, v1::Job* resp) override {
    RpcTimer timer(deps_.metrics, "CancelJob");
    auto caller = deps_.auth->Authorize(*ctx, kRoleCancel, "CancelJob");
    if (!caller.ok()) return FinishUnary(ctx, timer, caller.status());
    auto visible = VisibleJob(deps_, *caller, req->job_id(), "CancelJob");
    if (!visible.ok()) return FinishUnary(ctx, timer, visible.status());
    auto job = deps_.manager->Cancel(req->job_id());
    AuditCall(deps_.audit, *caller, "cancel", req->job_id(), job.status());
    if (job.ok()) *resp = std::move(*job);
    return FinishUnary(ctx, timer, job.status());
  }

  grpc::ServerWriteReactor<v1::JobEvent>* WatchJob(grpc::CallbackServerContext* ctx,
                                                   const v1::WatchJobRequest* req) override {
    auto caller = deps_.auth->Authorize(*ctx, kRoleRead, "WatchJob");
    absl::Status precheck = caller.status();
    if (caller.ok()) precheck = VisibleJob(deps_, *caller, req->job_id(), "WatchJob").status();
    return new WatchReactor(deps_, *req, precheck);
  }

  grpc::ServerWriteReactor<v1::ArtifactChunk>* DownloadArtifact(
      grpc::CallbackServerContext* ctx, const v1::DownloadArtifactRequest* req) override {
    return new FileStreamReactor(
        deps_, {"DownloadArtifact", "artifact", "artifact", "client"},
        [&]() -> absl::StatusOr<FileStreamPlan> {
          auto caller = deps_.auth->Authorize(*ctx, kRoleRead, "DownloadArtifact");
          if (!caller.ok()) return caller.status();
          auto plan = DownloadPlan(deps_, *req, *caller);
          // One row per stream (a resumed download is a new row with its offset).
          AuditCall(deps_.audit, *caller, "download",
                    absl::StrCat(req->job_id(), "/", req->name()), plan.status(),
                    req->offset() > 0 ? absl::StrCat("from byte ", req->offset()) : "");
          return plan;
        });
  }

  grpc::ServerReadReactor<v1::UploadChunk>* UploadModel(grpc::CallbackServerContext* ctx,
                                                        v1::UploadResponse* resp) override {
    return new UploadReactor(deps_, &uploads_, UploadKind::kModel, resp,
                             deps_.auth->Authorize(*ctx, kRoleSubmit, "UploadModel"));
  }

  grpc::ServerReadReactor<v1::UploadChunk>* UploadDataset(grpc::CallbackServerContext* ctx,
                                                          v1::UploadResponse* resp) override {
    return new UploadReactor(deps_, &uploads_, UploadKind::kDataset, resp,
                             deps_.auth->Authorize(*ctx, kRoleSubmit, "UploadDataset"));
  }

  grpc::ServerUnaryReactor* ValidateConfig(grpc::CallbackServerContext* ctx,
                                           const v1::ValidateConfigRequest* req,
                                           v1::ValidateConfigResponse* resp) override {
    RpcTimer timer(deps_.metrics, "ValidateConfig");
    auto caller = deps_.auth->Authorize(*ctx, kRoleRead, "ValidateConfig");
    if (!caller.ok()) return FinishUnary(ctx, timer, caller.status());
    return FinishUnary(ctx, timer, Validate(*req, resp, *caller));
  }

  grpc::ServerUnaryReactor* DeleteJob(grpc::CallbackServerContext* ctx,
                                      const v1::DeleteJobRequest* req,
                                      v1::DeleteResponse* resp) override {
    RpcTimer timer(deps_.metrics, "DeleteJob");
    auto caller = deps_.auth->Authorize(*ctx, kRoleCancel, "DeleteJob");
    if (!caller.ok()) return FinishUnary(ctx, timer, caller.status());
    absl::Status st = [&]() -> absl::Status {
      auto job = VisibleJob(deps_, *caller, req->job_id(), "DeleteJob");
      if (!job.ok()) return job.status();
      if (!IsTerminal(job->state()))
        return absl::FailedPreconditionError(absl::StrCat(
            "job '", req->job_id(), "' is ", StateName(job->state()),
            "; only a finished job can be deleted (cancel it first: quarry cancel ",
            req->job_id(), ")"));
      uint64_t freed = 0;
      for (const v1::ArtifactInfo& a : job->artifacts()) freed += a.size();
      // Rows first, then files: a crash in between leaves files no row points to (never a
      // row without its file).
      if (absl::Status d = deps_.store->DeleteJob(req->job_id()); !d.ok()) return d;
      deps_.artifacts->RemoveOtherAttempts(req->job_id(), 0);
      resp->set_freed_bytes(freed);
      return absl::OkStatus();
    }();
    AuditCall(deps_.audit, *caller, "delete", req->job_id(), st,
              st.ok() ? absl::StrCat(resp->freed_bytes(), " bytes freed") : "");
    return FinishUnary(ctx, timer, st);
  }

  grpc::ServerUnaryReactor* DeleteUpload(grpc::CallbackServerContext* ctx,
                                         const v1::DeleteUploadRequest* req,
                                         v1::DeleteResponse* resp) override {
    RpcTimer timer(deps_.metrics, "DeleteUpload");
    auto caller = deps_.auth->Authorize(*ctx, kRoleCancel, "DeleteUpload");
    if (!caller.ok()) return FinishUnary(ctx, timer, caller.status());
    const std::string& id = req->upload_id();
    absl::Status st = [&]() -> absl::Status {
      auto upload = deps_.store->GetUpload(id);
      if (!upload.ok()) return upload.status();
      if (!upload->has_value() || !caller->CanSee((*upload)->tenant))
        return absl::NotFoundError(absl::StrCat("no upload '", id, "'"));
      if (!uploads_.Claim(id))
        return absl::AbortedError(absl::StrCat("upload '", id, "' is in progress on a stream; "
                                               "retry when it has ended"));
      struct Release {
        ActiveUploads* a;
        const std::string& id;
        ~Release() { a->Release(id); }
      } release{&uploads_, id};
      if (std::string job = deps_.manager->ActiveJobUsingUpload(id); !job.empty())
        return absl::FailedPreconditionError(absl::StrCat(
            "upload '", id, "' is used by job ", job, ", which is not finished; cancel it or "
            "wait for it"));
      if (absl::Status d = deps_.store->DeleteUpload(id); !d.ok()) return d;
      if (absl::Status d = deps_.artifacts->RemoveUpload(id); !d.ok()) return d;
      resp->set_freed_bytes((*upload)->total_bytes);
      return absl::OkStatus();
    }();
    AuditCall(deps_.audit, *caller, "delete_upload", id, st,
              st.ok() ? absl::StrCat(resp->freed_bytes(), " bytes freed") : "");
    return FinishUnary(ctx, timer, st);
  }

  grpc::ServerUnaryReactor* ListAuditEvents(grpc::CallbackServerContext* ctx,
                                            const v1::ListAuditEventsRequest* req,
                                            v1::ListAuditEventsResponse* resp) override {
    RpcTimer timer(deps_.metrics, "ListAuditEvents");
    auto caller = deps_.auth->Authorize(*ctx, kRoleAdmin, "ListAuditEvents");
    if (!caller.ok()) return FinishUnary(ctx, timer, caller.status());
    auto events = deps_.store->ListAudit(*req);
    if (events.ok())
      for (v1::AuditEvent& e : *events) *resp->add_events() = std::move(e);
    return FinishUnary(ctx, timer, events.status());
  }

 private:
  absl::Status Validate(const v1::ValidateConfigRequest& req, v1::ValidateConfigResponse* resp,
                        const Caller& caller) {
    auto dir = deps_.resolver->ResolveModel(req.model(), caller.TenantFilter());
    if (!dir.ok()) return dir.status();
    auto config = deps_.resolver->ResolveConfig(
        req.has_config() ? &req.config() : nullptr,
        req.config_source_case() == v1::ValidateConfigRequest::kConfigJson ? &req.config_json()
                                                                           : nullptr,
        req.config_source_case() == v1::ValidateConfigRequest::kPreset ? &req.preset() : nullptr);
    if (!config.ok()) {
      if (config.status().code() != absl::StatusCode::kInvalidArgument) return config.status();
      resp->set_valid(false);
      resp->add_errors(std::string(config.status().message()));
      return absl::OkStatus();
    }
    std::vector<ConfigIssue> issues = quarry::ValidateConfig(*config);
    auto modules = ListModelModules(*dir);
    if (!modules.ok())
      return absl::InvalidArgumentError(absl::StrCat("model: ", modules.status().message()));
    auto plan = ResolveLayerPlan(*config, *modules);
    if (plan.ok()) {
      issues.insert(issues.end(), plan->issues.begin(), plan->issues.end());
      for (const LayerPlanEntry& e : plan->layers) {
        v1::LayerPlanEntry* out = resp->add_layers();
        out->set_name(e.name);
        out->set_type(e.type);
        out->set_matched_rule(e.matched_rule);
        out->set_excluded(e.excluded);
        *out->mutable_config() = convert::ToProto(e.config);
      }
    }
    bool valid = true;
    for (const ConfigIssue& i : issues) {
      if (i.is_error()) {
        valid = false;
        resp->add_errors(i.ToString());
      } else {
        resp->add_warnings(i.ToString());
      }
    }
    if (!plan.ok() && valid) {
      valid = false;
      resp->add_errors(std::string(plan.status().message()));
    }
    resp->set_valid(valid);
    resp->set_config_json(ConfigToJson(*config));
    return absl::OkStatus();
  }

  const ServiceDeps deps_;
  ActiveUploads uploads_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewQuarryService(ServiceDeps deps) {
  return std::make_unique<QuarryServiceImpl>(deps);
}

}  // namespace quarry::server
