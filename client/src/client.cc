#include "quarry/client/client.h"

#include <grpcpp/grpcpp.h>
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "quarry/client/grpc_status.h"
#include "quarry/client/security.h"
#include "quarry/v1/jobs.grpc.pb.h"

namespace quarry::client {

namespace v1 = ::quarry::v1;

namespace {

constexpr size_t kChunkBytes = 1 << 20;

// Errors after which a stream is worth re-opening.
bool Retryable(const absl::Status& st) {
  return st.code() == absl::StatusCode::kUnavailable ||
         st.code() == absl::StatusCode::kDeadlineExceeded ||
         st.code() == absl::StatusCode::kAborted || st.code() == absl::StatusCode::kInternal;
}

void Backoff(int attempt) {
  int ms = std::min(2000, 100 << std::min(attempt, 5));
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  void Update(const char* data, size_t n) { EVP_DigestUpdate(ctx_, data, n); }
  std::string Hex() {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, d, &len);
    static const char* kHex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      out.push_back(kHex[d[i] >> 4]);
      out.push_back(kHex[d[i] & 15]);
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

absl::StatusOr<std::string> Sha256OfFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", path, "'"));
  Sha256 sha;
  std::string buf(kChunkBytes, '\0');
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    sha.Update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  return sha.Hex();
}

std::string RandomUploadId() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  return absl::StrFormat("u%016x", rng());
}

class ClientImpl final : public Client {
 public:
  ClientImpl(ClientOptions options, std::shared_ptr<grpc::Channel> channel)
      : options_(std::move(options)),
        channel_(std::move(channel)),
        health_(grpc::health::v1::Health::NewStub(channel_)),
        stub_(v1::QuarryService::NewStub(channel_)) {}

  const ClientOptions& options() const override { return options_; }

  absl::Status CheckHealth() override {
    grpc::ClientContext ctx;
    AddCallCredentials(options_.security, &ctx);
    SetDeadline(ctx);
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status st = health_->Check(&ctx, req, &resp);
    if (!st.ok()) return Annotated(st);
    if (resp.status() != grpc::health::v1::HealthCheckResponse::SERVING)
      return absl::UnavailableError(absl::StrCat("server at ", options_.server, " is not serving"));
    return absl::OkStatus();
  }

  absl::StatusOr<v1::Job> SubmitJob(const v1::JobSpec& spec,
                                    const std::string& request_id) override {
    v1::SubmitJobRequest req;
    *req.mutable_spec() = spec;
    req.set_request_id(request_id);
    v1::Job job;
    // With a request_id the call is idempotent, so a lost response can be retried safely.
    for (int attempt = 0;; ++attempt) {
      grpc::ClientContext ctx;
      AddCallCredentials(options_.security, &ctx);
      SetDeadline(ctx);
      grpc::Status st = stub_->SubmitJob(&ctx, req, &job);
      if (st.ok()) return job;
      absl::Status s = Annotated(st);
      if (request_id.empty() || !Retryable(s) || attempt >= 3) return s;
      Backoff(attempt);
    }
  }

  // GetJob, ListJobs and CancelJob are idempotent: when the server is unavailable (restarting,
  // or the connection broke under the call: "Broken pipe" right after a server restart) they
  // are retried a few times (0.1, 0.2, 0.4 s) before the error reaches the caller.
  template <typename Call>
  grpc::Status CallIdempotent(Call call) {
    for (int attempt = 0;; ++attempt) {
      grpc::ClientContext ctx;
      AddCallCredentials(options_.security, &ctx);
      SetDeadline(ctx);
      grpc::Status st = call(ctx);
      if (st.ok() || st.error_code() != grpc::StatusCode::UNAVAILABLE || attempt >= 3) return st;
      Backoff(attempt);
    }
  }

  absl::StatusOr<v1::Job> GetJob(const std::string& job_id) override {
    v1::GetJobRequest req;
    req.set_job_id(job_id);
    v1::Job job;
    grpc::Status st = CallIdempotent(
        [&](grpc::ClientContext& ctx) { return stub_->GetJob(&ctx, req, &job); });
    if (!st.ok()) return Annotated(st);
    return job;
  }

  absl::StatusOr<std::vector<v1::Job>> ListJobs(const v1::ListJobsRequest& req) override {
    v1::ListJobsResponse resp;
    grpc::Status st = CallIdempotent(
        [&](grpc::ClientContext& ctx) { return stub_->ListJobs(&ctx, req, &resp); });
    if (!st.ok()) return Annotated(st);
    return std::vector<v1::Job>(resp.jobs().begin(), resp.jobs().end());
  }

  absl::StatusOr<v1::Job> CancelJob(const std::string& job_id) override {
    v1::CancelJobRequest req;
    req.set_job_id(job_id);
    v1::Job job;
    grpc::Status st = CallIdempotent(
        [&](grpc::ClientContext& ctx) { return stub_->CancelJob(&ctx, req, &job); });
    if (!st.ok()) return Annotated(st);
    return job;
  }

  absl::Status WatchJob(const WatchOptions& options,
                        const std::function<bool(const v1::JobEvent&)>& on_event,
                        uint64_t* last_seq) override {
    uint64_t last = options.from_seq;
    int failures = 0;
    absl::Status result;
    for (;;) {
      grpc::ClientContext ctx;
      AddCallCredentials(options_.security, &ctx);
      v1::WatchJobRequest req;
      req.set_job_id(options.job_id);
      req.set_from_seq(last);
      req.set_min_severity(options.min_severity);
      req.set_follow(options.follow);
      auto reader = stub_->WatchJob(&ctx, req);
      v1::JobEvent e;
      bool stopped = false;
      while (reader->Read(&e)) {
        failures = 0;
        if (e.seq() <= last) continue;  // never deliver twice
        last = e.seq();
        if (!on_event(e)) {
          stopped = true;
          ctx.TryCancel();
          break;
        }
      }
      grpc::Status st = reader->Finish();
      if (stopped || st.ok()) {
        result = absl::OkStatus();
        break;
      }
      absl::Status s = Annotated(st);
      if (!Retryable(s) || failures >= options_.max_stream_retries) {
        result = s;
        break;
      }
      Backoff(failures++);
    }
    if (last_seq != nullptr) *last_seq = last;
    return result;
  }

  absl::StatusOr<v1::ArtifactInfo> DownloadArtifact(const std::string& job_id,
                                                    const std::string& name,
                                                    const std::string& path) override {
    const std::string part = path + ".part";
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    int failures = 0;
    bool restarted = false;
    for (;;) {
      uint64_t offset = std::filesystem::exists(part, ec) ? std::filesystem::file_size(part, ec) : 0;
      grpc::ClientContext ctx;
      AddCallCredentials(options_.security, &ctx);
      v1::DownloadArtifactRequest req;
      req.set_job_id(job_id);
      req.set_name(name);
      req.set_offset(offset);
      auto reader = stub_->DownloadArtifact(&ctx, req);
      std::ofstream out(part, std::ios::binary | std::ios::app);
      if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write '", part, "'"));
      v1::ArtifactChunk chunk;
      v1::ArtifactInfo info;
      info.set_name(name);
      while (reader->Read(&chunk)) {
        failures = 0;
        if (chunk.offset() != offset) {
          ctx.TryCancel();
          break;
        }
        out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
        offset += chunk.data().size();
        info.set_size(chunk.total_size());
        info.set_sha256(chunk.sha256());
      }
      out.close();
      grpc::Status st = reader->Finish();
      if (!st.ok()) {
        absl::Status s = Annotated(st);
        if (s.code() == absl::StatusCode::kOutOfRange && !restarted) {
          std::filesystem::remove(part, ec);  // a stale longer .part: start over
          restarted = true;
          continue;
        }
        if (!Retryable(s) || failures >= options_.max_stream_retries) return s;
        Backoff(failures++);
        continue;
      }
      if (offset != info.size()) {
        if (failures++ >= options_.max_stream_retries)
          return absl::DataLossError(absl::StrCat("'", name, "': got ", offset, " of ",
                                                  info.size(), " bytes"));
        continue;
      }
      auto sha = Sha256OfFile(part);
      if (!sha.ok()) return sha.status();
      if (*sha != info.sha256()) {
        std::filesystem::remove(part, ec);
        if (restarted)
          return absl::DataLossError(absl::StrCat("'", name, "': sha256 ", *sha,
                                                  " does not match the server's ", info.sha256()));
        restarted = true;
        continue;
      }
      std::filesystem::rename(part, path, ec);
      if (ec) return absl::InternalError(absl::StrCat("rename '", part, "': ", ec.message()));
      return info;
    }
  }

  absl::StatusOr<DownloadResult> DownloadArtifacts(const std::string& job_id,
                                                   const std::string& out_dir) override {
    auto job = GetJob(job_id);
    if (!job.ok()) return job.status();
    if (job->artifacts().empty())
      return absl::FailedPreconditionError(absl::StrCat(
          "job ", job_id, " has no artifacts (state ", v1::JobState_Name(job->state()), ")"));
    DownloadResult result;
    for (const v1::ArtifactInfo& a : job->artifacts()) {
      if (a.name().empty() || a.name().front() == '/' || absl::StrContains(a.name(), ".."))
        return absl::DataLossError(absl::StrCat("refusing artifact name '", a.name(), "'"));
      auto info = DownloadArtifact(job_id, a.name(), out_dir + "/" + a.name());
      if (!info.ok()) return info.status();
      result.bytes += info->size();
      result.files.push_back(*info);
    }
    return result;
  }

  absl::StatusOr<v1::UploadResponse> UploadModel(const std::string& dir,
                                                 const std::string& name) override {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
      return absl::InvalidArgumentError(absl::StrCat("'", dir, "' is not a directory"));
    std::vector<std::string> files;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
      if (it->is_regular_file())
        files.push_back(std::filesystem::relative(it->path(), dir).generic_string());
    if (ec) return absl::InternalError(absl::StrCat("listing '", dir, "': ", ec.message()));
    std::sort(files.begin(), files.end());
    return Upload(/*model=*/true, dir, files,
                  name.empty() ? std::filesystem::path(dir).filename().string() : name);
  }

  absl::StatusOr<v1::UploadResponse> UploadDataset(const std::string& path) override {
    std::filesystem::path p(path);
    return Upload(/*model=*/false, p.parent_path().string(), {p.filename().string()},
                  p.filename().string());
  }

  // A retry after a lost response sees NOT_FOUND: the job or upload is gone either way.
  absl::StatusOr<uint64_t> DeleteJob(const std::string& job_id) override {
    v1::DeleteJobRequest req;
    req.set_job_id(job_id);
    v1::DeleteResponse resp;
    grpc::Status st = CallIdempotent(
        [&](grpc::ClientContext& ctx) { return stub_->DeleteJob(&ctx, req, &resp); });
    if (!st.ok()) return Annotated(st);
    return resp.freed_bytes();
  }

  absl::StatusOr<uint64_t> DeleteUpload(const std::string& upload_id) override {
    v1::DeleteUploadRequest req;
    req.set_upload_id(upload_id);
    v1::DeleteResponse resp;
    grpc::Status st = CallIdempotent(
        [&](grpc::ClientContext& ctx) { return stub_->DeleteUpload(&ctx, req, &resp); });
    if (!st.ok()) return Annotated(st);
    return resp.freed_bytes();
  }

  absl::StatusOr<std::vector<v1::AuditEvent>> ListAuditEvents(
      const v1::ListAuditEventsRequest& req) override {
    v1::ListAuditEventsResponse resp;
    grpc::Status st = CallIdempotent(
        [&](grpc::ClientContext& ctx) { return stub_->ListAuditEvents(&ctx, req, &resp); });
    if (!st.ok()) return Annotated(st);
    return std::vector<v1::AuditEvent>(resp.events().begin(), resp.events().end());
  }

  absl::StatusOr<v1::ValidateConfigResponse> ValidateConfig(
      const v1::ValidateConfigRequest& req) override {
    grpc::ClientContext ctx;
    AddCallCredentials(options_.security, &ctx);
    SetDeadline(ctx);
    v1::ValidateConfigResponse resp;
    grpc::Status st = stub_->ValidateConfig(&ctx, req, &resp);
    if (!st.ok()) return Annotated(st);
    return resp;
  }

 private:
  absl::StatusOr<v1::UploadResponse> Upload(bool model, const std::string& dir,
                                            const std::vector<std::string>& files,
                                            const std::string& name) {
    struct File {
      std::string rel, sha;
      uint64_t size = 0;
    };
    std::vector<File> list;
    for (const std::string& rel : files) {
      File f;
      f.rel = rel;
      std::error_code ec;
      f.size = std::filesystem::file_size(dir + "/" + rel, ec);
      if (ec) return absl::NotFoundError(absl::StrCat("'", dir, "/", rel, "': ", ec.message()));
      auto sha = Sha256OfFile(dir + "/" + rel);
      if (!sha.ok()) return sha.status();
      f.sha = *sha;
      list.push_back(f);
    }
    const std::string upload_id = RandomUploadId();
    for (int failures = 0;; ++failures) {
      grpc::ClientContext ctx;
      AddCallCredentials(options_.security, &ctx);
      v1::UploadResponse resp;
      auto writer = model ? stub_->UploadModel(&ctx, &resp) : stub_->UploadDataset(&ctx, &resp);
      bool first = true;
      bool broken = false;
      std::string buf(kChunkBytes, '\0');
      for (const File& f : list) {
        std::ifstream in(dir + "/" + f.rel, std::ios::binary);
        uint64_t offset = 0;
        do {
          in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
          size_t n = static_cast<size_t>(in.gcount());
          v1::UploadChunk c;
          if (first) {
            c.set_upload_id(upload_id);
            c.set_name(name);
            first = false;
          }
          c.set_relative_path(f.rel);
          c.set_offset(offset);
          c.set_data(buf.data(), n);
          c.set_file_size(f.size);
          c.set_file_sha256(f.sha);
          offset += n;
          if (!writer->Write(c)) {
            broken = true;
            break;
          }
        } while (offset < f.size);
        if (broken) break;
      }
      if (!broken) writer->WritesDone();
      grpc::Status st = writer->Finish();
      if (st.ok()) return resp;
      absl::Status s = Annotated(st);
      if (!Retryable(s) || failures >= options_.max_stream_retries) return s;
      Backoff(failures);
    }
  }

  void SetDeadline(grpc::ClientContext& ctx) const {
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(options_.timeout_ms));
  }

  // The server's status; an unreachable server also names the address.
  absl::Status Annotated(const grpc::Status& st) const {
    absl::Status s = FromGrpcStatus(st);
    if (s.code() == absl::StatusCode::kUnavailable &&
        !absl::StrContains(s.message(), options_.server))
      return absl::UnavailableError(
          absl::StrCat("server ", options_.server, " unavailable: ", s.message()));
    return s;
  }

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
  std::unique_ptr<v1::QuarryService::Stub> stub_;
};

}  // namespace

std::string DefaultServerAddress() {
  const char* env = std::getenv("QUARRY_SERVER");
  if (env != nullptr && *env != '\0') return env;
  return "127.0.0.1:50051";
}

bool IsTerminalState(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  if (options.server.empty()) options.server = DefaultServerAddress();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  ApplyChannelArgs(options.security, &args);
  auto creds = MakeChannelCredentials(options.security);
  if (!creds.ok()) return creds.status();
  auto channel = grpc::CreateCustomChannel(options.server, *creds, args);
  if (channel == nullptr)
    return absl::InvalidArgumentError(absl::StrCat("bad server address '", options.server, "'"));
  return std::unique_ptr<Client>(new ClientImpl(std::move(options), std::move(channel)));
}

}  // namespace quarry::client
