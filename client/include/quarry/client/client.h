// C++ client library for the Quarry server: submit, watch, cancel and download jobs, upload
// models and datasets. Wraps the generated gRPC stubs (the quarry.v1 messages are the API's
// types); errors are absl::Status with the server's code and message. A Client is thread-safe
// (gRPC channels and stubs are); one call's callbacks run on the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quarry/client/security.h"
#include "quarry/v1/jobs.pb.h"

namespace quarry::client {

struct ClientOptions {
  // Server address: "host:port" or "unix:/path". Default: $QUARRY_SERVER, else 127.0.0.1:50051.
  std::string server;
  // Per-call deadline for unary calls in milliseconds. Default 30000.
  int timeout_ms = 30000;
  // Largest message received. Default 16 MiB.
  int max_message_bytes = 16 << 20;
  // Streams (watch, download, upload) retry a broken stream this many times in a row, resuming
  // where they stopped, with backoff from 100 ms doubling to 2 s. Default 20 (about 30 s).
  int max_stream_retries = 20;
  // TLS files and the bearer token (see security.h). Default: plaintext, no token.
  TransportSecurity security;
};

// The address a client dials when none is given: $QUARRY_SERVER, else "127.0.0.1:50051".
std::string DefaultServerAddress();

struct WatchOptions {
  std::string job_id;
  uint64_t from_seq = 0;    // replay events with seq > from_seq
  int min_severity = 0;     // drop log events below this (0 DEBUG .. 4 CRITICAL)
  bool follow = true;       // keep going until the job ends
};

struct DownloadResult {
  std::vector<quarry::v1::ArtifactInfo> files;  // every file written, verified
  uint64_t bytes = 0;                           // bytes transferred (resumed parts excluded)
};

class Client {
 public:
  static absl::StatusOr<std::unique_ptr<Client>> Create(ClientOptions options);
  virtual ~Client() = default;
  virtual const ClientOptions& options() const = 0;

  // grpc.health.v1 Check of the whole server (""): OK when SERVING.
  virtual absl::Status CheckHealth() = 0;

  // With a non-empty request_id, resubmitting returns the job the first call created.
  virtual absl::StatusOr<quarry::v1::Job> SubmitJob(const quarry::v1::JobSpec& spec,
                                                    const std::string& request_id = "") = 0;
  virtual absl::StatusOr<quarry::v1::Job> GetJob(const std::string& job_id) = 0;
  virtual absl::StatusOr<std::vector<quarry::v1::Job>> ListJobs(
      const quarry::v1::ListJobsRequest& request) = 0;
  virtual absl::StatusOr<quarry::v1::Job> CancelJob(const std::string& job_id) = 0;

  // Streams the job's events to `on_event` in seq order, each exactly once: stored events
  // after options.from_seq, then (follow) live ones until the job ends. A broken stream is
  // re-opened from the last seq seen. `on_event` returning false stops the watch (OK). Returns
  // the last seq seen through *last_seq when non-null.
  virtual absl::Status WatchJob(const WatchOptions& options,
                                const std::function<bool(const quarry::v1::JobEvent&)>& on_event,
                                uint64_t* last_seq = nullptr) = 0;

  // Downloads one artifact to `path` (via `path`.part, resuming a partial one), verifying its
  // sha256, then renames it into place.
  virtual absl::StatusOr<quarry::v1::ArtifactInfo> DownloadArtifact(const std::string& job_id,
                                                                    const std::string& name,
                                                                    const std::string& path) = 0;
  // Every artifact of the job into out_dir/<name>.
  virtual absl::StatusOr<DownloadResult> DownloadArtifacts(const std::string& job_id,
                                                           const std::string& out_dir) = 0;

  // Uploads a model directory (every regular file under it) / one dataset file. The returned
  // id goes into ModelSource.uploaded_model_id / uploaded_dataset_id. A broken stream resumes
  // with the same upload id.
  virtual absl::StatusOr<quarry::v1::UploadResponse> UploadModel(const std::string& dir,
                                                                 const std::string& name = "") = 0;
  virtual absl::StatusOr<quarry::v1::UploadResponse> UploadDataset(const std::string& path) = 0;

  // Deletes a finished job (record, events, artifacts) / an upload; returns the bytes freed
  // (the tenant's quota). FAILED_PRECONDITION while the job is not finished or a job uses the
  // upload.
  virtual absl::StatusOr<uint64_t> DeleteJob(const std::string& job_id) = 0;
  virtual absl::StatusOr<uint64_t> DeleteUpload(const std::string& upload_id) = 0;

  // The server's audit log, newest first (admin tokens only).
  virtual absl::StatusOr<std::vector<quarry::v1::AuditEvent>> ListAuditEvents(
      const quarry::v1::ListAuditEventsRequest& request) = 0;

  virtual absl::StatusOr<quarry::v1::ValidateConfigResponse> ValidateConfig(
      const quarry::v1::ValidateConfigRequest& request) = 0;
};

// True for a job state that will not change again.
bool IsTerminalState(quarry::v1::JobState state);

}  // namespace quarry::client
