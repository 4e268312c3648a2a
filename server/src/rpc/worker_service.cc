// WorkerService: the Connect stream of each worker, artifact uploads and input downloads.
#include <deque>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "quarry/client/grpc_status.h"
#include "quarry/status.h"
#include "quarry/v1/worker.grpc.pb.h"
#include "rpc/file_stream_reactor.h"
#include "rpc/services.h"

namespace quarry::server {
namespace {

// One worker's stream. Reads drive the JobManager; the manager's messages are queued and
// written one at a time. Lock order: the manager's lock -> mu_ (Send/Close are called under the
// manager's lock), so no manager method is ever called with mu_ held.
class ConnectReactor final
    : public grpc::ServerBidiReactor<v1::WorkerMessage, v1::ServerMessage>,
      public WorkerConnection {
 public:
  // `caller`: the worker's authentication; an error ends the stream before any read.
  ConnectReactor(const ServiceDeps& deps, absl::StatusOr<Caller> caller)
      : deps_(deps), timer_(deps.metrics, "Connect") {
    if (!caller.ok()) {
      Close(caller.status());
      return;
    }
    caller_ = std::move(*caller);
    StartRead(&in_);
  }

  // ----- WorkerConnection -----
  void Send(const v1::ServerMessage& message) override {
    absl::MutexLock lock(&mu_);
    if (finishing_) return;
    out_.push_back(message);
    if (!writing_) {
      writing_ = true;
      StartWrite(&out_.front());
    }
  }
  void Close(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    FinishLocked(status);
  }

  // ----- Reactions -----
  void OnReadDone(bool ok) override {
    if (!ok) {  // the worker closed its side or the connection broke
      Close(absl::OkStatus());
      return;
    }
    if (!said_hello_) {
      if (!in_.has_hello() || in_.hello().worker_id().empty()) {
        Close(absl::InvalidArgumentError("the first message must be a hello with a worker_id"));
        return;
      }
      said_hello_ = true;
      {
        absl::MutexLock lock(&mu_);
        worker_id_ = in_.hello().worker_id();
      }
      absl::Status st = deps_.manager->WorkerConnected(in_.hello(), this);
      AuditCall(deps_.audit, caller_, "worker_register", in_.hello().worker_id(), st,
                absl::StrCat(in_.hello().device().kind(), in_.hello().running_job_id().empty()
                                                              ? ""
                                                              : absl::StrCat(", resuming ",
                                                                             in_.hello().running_job_id())));
      if (!st.ok()) {
        Close(st);
        return;
      }
    } else {
      deps_.manager->HandleWorkerMessage(in_worker_id(), this, in_);
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    out_.pop_front();
    writing_ = false;
    if (!ok) {
      out_.clear();
      FinishLocked(absl::UnavailableError("the worker went away"));
      return;
    }
    if (!out_.empty()) {
      writing_ = true;
      StartWrite(&out_.front());
    } else if (finishing_ && !finished_) {
      finished_ = true;
      Finish(ToGrpcStatus(finish_status_));
    }
  }

  void OnCancel() override { Close(absl::CancelledError("the stream was cancelled")); }

  // The only place the manager hears of the end: OnDone runs once, after every other reaction,
  // so the worker cannot be registered after it was unregistered.
  void OnDone() override {
    std::string id = in_worker_id();
    if (!id.empty()) deps_.manager->WorkerDisconnected(id, this, "its stream ended");
    delete this;
  }

 private:
  // REQUIRES: mu_ held. Finishes once no write is in flight.
  void FinishLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finishing_) return;
    finishing_ = true;
    finish_status_ = status;
    timer_.Finish(status.code());
    if (!writing_) {
      finished_ = true;
      Finish(ToGrpcStatus(status));
    }
  }

  std::string in_worker_id() {
    absl::MutexLock lock(&mu_);
    return worker_id_;
  }


  const ServiceDeps deps_;
  RpcTimer timer_;
  Caller caller_;           // set in the constructor
  v1::WorkerMessage in_;    // only touched by the read reactions, one at a time
  bool said_hello_ = false;  // likewise
  absl::Mutex mu_;
  std::deque<v1::ServerMessage> out_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status finish_status_ ABSL_GUARDED_BY(mu_);
  std::string worker_id_ ABSL_GUARDED_BY(mu_);  // from the hello
};

// Receives one artifact file of a job attempt; resumable (see ArtifactStore).
class ArtifactUploadReactor final : public grpc::ServerReadReactor<v1::ArtifactUploadChunk> {
 public:
  ArtifactUploadReactor(const ServiceDeps& deps, v1::ArtifactUploadResponse* response,
                        const absl::Status& auth)
      : deps_(deps), response_(response), timer_(deps.metrics, "UploadArtifact") {
    if (!auth.ok()) {
      Done(auth);
      return;
    }
    StartRead(&chunk_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      // The stream ended without a last chunk: report what is staged so the worker resumes.
      if (writer_ != nullptr) {
        response_->set_name(name_);
        response_->set_received_bytes(writer_->size());
      }
      Done(absl::OkStatus());
      return;
    }
    absl::Status st = HandleChunk();
    if (!st.ok() || done_) {
      Done(st);
      return;
    }
    StartRead(&chunk_);
  }
  void OnDone() override { delete this; }

 private:
  absl::Status HandleChunk() {
    if (writer_ == nullptr) {
      QUARRY_RETURN_IF_ERROR(
          deps_.manager->CheckCurrentAttempt(chunk_.job_id(), chunk_.attempt()));
      if (chunk_.total_size() > deps_.max_upload_bytes)
        return absl::ResourceExhaustedError(absl::StrCat(
            "artifact '", chunk_.name(), "' is ", chunk_.total_size(), " bytes; the limit is ",
            deps_.max_upload_bytes, " (--max-upload-bytes)"));
      // Layer checkpoints are scratch of a running job (removed when it ends): not counted in
      // the tenant's artifact quota.
      if (!absl::StartsWith(chunk_.name(), "checkpoints/")) {
        if (absl::Status st = CheckQuota(); !st.ok()) return st;
      }
      auto w = deps_.artifacts->OpenArtifact(chunk_.job_id(), chunk_.attempt(), chunk_.name(),
                                             chunk_.offset());
      if (!w.ok()) return w.status();
      writer_ = std::move(*w);
      name_ = chunk_.name();
      job_id_ = chunk_.job_id();
      attempt_ = chunk_.attempt();
    } else if (chunk_.name() != name_ || chunk_.job_id() != job_id_ ||
               chunk_.attempt() != attempt_) {
      return absl::InvalidArgumentError("one UploadArtifact stream carries one file");
    } else if (chunk_.offset() != writer_->size()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "'", name_, "': chunk at byte ", chunk_.offset(), ", expected ", writer_->size()));
    }
    if (writer_->size() + chunk_.data().size() > deps_.max_upload_bytes)
      return absl::ResourceExhaustedError(absl::StrCat(
          "artifact '", name_, "' exceeds ", deps_.max_upload_bytes, " bytes (--max-upload-bytes)"));
    if (absl::Status st = writer_->Append(chunk_.data()); !st.ok()) return st;
    deps_.metrics->uploaded_bytes
        .WithLabels({absl::StartsWith(name_, "checkpoints/") ? "checkpoint" : "artifact"})
        .Increment(chunk_.data().size());
    if (chunk_.last()) {
      if (chunk_.sha256().empty())
        return absl::InvalidArgumentError("the last chunk must carry the file's sha256");
      auto f = writer_->Finish(chunk_.total_size(), chunk_.sha256());
      if (!f.ok()) return f.status();
      response_->set_name(name_);
      response_->set_received_bytes(f->received_bytes);
      response_->set_complete(true);
      response_->set_sha256(f->sha256);
      done_ = true;
      // A committed layer checkpoint makes the activations of earlier layers useless.
      // (Only for the job's current attempt: a stale worker must not prune what the current
      // attempt resumes from.)
      int layer = -1;
      if (absl::StartsWith(name_, "checkpoints/layer-") && absl::EndsWith(name_, ".json") &&
          absl::SimpleAtoi(name_.substr(18, name_.size() - 18 - 5), &layer) &&
          deps_.manager->CheckCurrentAttempt(job_id_, attempt_).ok())
        deps_.artifacts->PruneCheckpointStreams(job_id_, layer);
    }
    return absl::OkStatus();
  }
  // The job's tenant keeps at most max_artifact_bytes: what it keeps, this attempt's files
  // already complete and this file must fit (checked per file: two jobs of one tenant
  // uploading at once may each pass with one file).
  absl::Status CheckQuota() {
    auto job = deps_.manager->Get(chunk_.job_id());
    if (!job.ok()) return job.status();
    if (!LimitsOf(deps_, job->tenant()).max_artifact_bytes.limited()) return absl::OkStatus();
    const StagedFile same = deps_.artifacts->ArtifactStatus(chunk_.job_id(), chunk_.attempt(),
                                                            chunk_.name());
    const uint64_t staged = deps_.artifacts->AttemptBytes(chunk_.job_id(), chunk_.attempt()) -
                            (same.complete ? same.received_bytes : 0);
    return CheckArtifactQuota(deps_, job->tenant(), staged + chunk_.total_size(),
                              absl::StrCat("artifact '", chunk_.name(), "' (", chunk_.total_size(),
                                           " bytes) of job ", chunk_.job_id()));
  }
  void Done(const absl::Status& st) {
    timer_.Finish(st.code());
    Finish(ToGrpcStatus(st));
  }
  const ServiceDeps deps_;
  v1::ArtifactUploadResponse* const response_;
  RpcTimer timer_;
  v1::ArtifactUploadChunk chunk_;
  std::unique_ptr<StagedWriter> writer_;
  std::string name_, job_id_;
  int attempt_ = 0;
  bool done_ = false;
};

// Streams the files of an uploaded model or dataset to a worker that cannot read the data dir.
// What FetchInput streams: every file of a complete upload, or one of them from an offset.
absl::StatusOr<FileStreamPlan> FetchInputPlan(const ServiceDeps& deps,
                                              const v1::FetchInputRequest& req) {
  if (req.kind() == "checkpoint") {
    // A layer checkpoint of an earlier attempt, for the job's current attempt only.
    QUARRY_RETURN_IF_ERROR(deps.manager->CheckCurrentAttempt(req.id(), req.job_attempt()));
    const size_t slash = req.relative_path().find('/');
    int attempt = 0;
    if (slash == std::string::npos ||
        !absl::SimpleAtoi(req.relative_path().substr(0, slash), &attempt) || attempt < 1 ||
        attempt >= req.job_attempt())
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint '", req.relative_path(), "': expected <earlier attempt>/<name>"));
    const std::string name = req.relative_path().substr(slash + 1);
    QUARRY_RETURN_IF_ERROR(ValidateRelativePath(name, "checkpoint name"));
    StagedFile f = deps.artifacts->ArtifactStatus(req.id(), attempt,
                                                  absl::StrCat("checkpoints/", name));
    if (!f.complete)
      return absl::NotFoundError(absl::StrCat("job '", req.id(), "' attempt ", attempt,
                                              " has no checkpoint '", name, "'"));
    v1::ArtifactInfo info;
    info.set_name(name);
    info.set_size(f.received_bytes);
    info.set_sha256(f.sha256);
    FileStreamPlan plan;
    plan.files.push_back({f.path, info});
    plan.first_offset = req.offset();
    return plan;
  }
  auto upload = deps.store->GetUpload(req.id());
  if (!upload.ok()) return upload.status();
  const UploadKind kind = req.kind() == "model" ? UploadKind::kModel : UploadKind::kDataset;
  if (!upload->has_value() || (*upload)->kind != kind || !(*upload)->complete)
    return absl::NotFoundError(absl::StrCat("no complete ", req.kind(), " upload '", req.id(), "'"));
  const std::string dir = deps.artifacts->UploadFilesDir(req.id());
  FileStreamPlan plan;
  for (const v1::ArtifactInfo& f : (*upload)->files)
    if (req.relative_path().empty() || f.name() == req.relative_path())
      plan.files.push_back({absl::StrCat(dir, "/", f.name()), f});
  if (plan.files.empty())
    return absl::NotFoundError(absl::StrCat("upload '", req.id(), "' has no file '",
                                            req.relative_path(), "'"));
  plan.first_offset = req.relative_path().empty() ? 0 : req.offset();
  return plan;
}

class WorkerServiceImpl final : public v1::WorkerService::CallbackService {
 public:
  explicit WorkerServiceImpl(ServiceDeps deps) : deps_(deps) {}

  grpc::ServerBidiReactor<v1::WorkerMessage, v1::ServerMessage>* Connect(
      grpc::CallbackServerContext* ctx) override {
    return new ConnectReactor(deps_, deps_.auth->AuthorizeWorker(*ctx, "Connect"));
  }

  grpc::ServerReadReactor<v1::ArtifactUploadChunk>* UploadArtifact(
      grpc::CallbackServerContext* ctx, v1::ArtifactUploadResponse* resp) override {
    return new ArtifactUploadReactor(deps_, resp,
                                     deps_.auth->AuthorizeWorker(*ctx, "UploadArtifact").status());
  }

  grpc::ServerUnaryReactor* ArtifactUploadStatus(grpc::CallbackServerContext* ctx,
                                                 const v1::ArtifactUploadStatusRequest* req,
                                                 v1::ArtifactUploadResponse* resp) override {
    RpcTimer timer(deps_.metrics, "ArtifactUploadStatus");
    absl::Status st = deps_.auth->AuthorizeWorker(*ctx, "ArtifactUploadStatus").status();
    if (st.ok()) st = deps_.manager->CheckCurrentAttempt(req->job_id(), req->attempt());
    if (st.ok()) st = ValidateRelativePath(req->name(), "artifact name");
    if (st.ok()) {
      StagedFile f = deps_.artifacts->ArtifactStatus(req->job_id(), req->attempt(), req->name());
      resp->set_name(req->name());
      resp->set_received_bytes(f.received_bytes);
      resp->set_complete(f.complete);
      resp->set_sha256(f.sha256);
    }
    timer.Finish(st.code());
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(ToGrpcStatus(st));
    return reactor;
  }

  grpc::ServerWriteReactor<v1::ArtifactChunk>* FetchInput(
      grpc::CallbackServerContext* ctx, const v1::FetchInputRequest* req) override {
    return new FileStreamReactor(deps_, {"FetchInput", "input", "uploaded file", "worker"},
                                 [&]() -> absl::StatusOr<FileStreamPlan> {
                                   auto caller = deps_.auth->AuthorizeWorker(*ctx, "FetchInput");
                                   if (!caller.ok()) return caller.status();
                                   return FetchInputPlan(deps_, *req);
                                 });
  }

 private:
  const ServiceDeps deps_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewWorkerService(ServiceDeps deps) {
  return std::make_unique<WorkerServiceImpl>(deps);
}

}  // namespace quarry::server
