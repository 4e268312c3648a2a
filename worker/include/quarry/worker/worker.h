// The Quarry worker: connects to a server, announces its device, runs one job at a time through
// core's pipeline and streams progress, logs and artifacts back. Thread-safe: Stop() may be
// called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quarry/client/security.h"

namespace quarry::worker {

struct WorkerOptions {
  // Server address "host:port" or "unix:/path". Required.
  std::string server;
  // Device: "cpu", "cuda:N" or "hip:N". Default "cpu".
  std::string device = "cpu";
  // Stable worker id. Default "" = "<hostname>:<pid>".
  std::string worker_id;
  // Directory for job scratch files (downloaded inputs, exported models before upload).
  // Default "" = $TMPDIR/quarry-worker-<pid>.
  std::string work_dir;
  // Intra-op compute threads. Default 0 = all hardware threads.
  int threads = 0;
  // Reconnect backoff bounds after a broken stream, in ms. Defaults 200 .. 5000.
  int reconnect_min_ms = 200;
  int reconnect_max_ms = 5000;
  // Exit instead of reconnecting when the server goes away. Default false.
  bool exit_on_disconnect = false;
  // Memory offered to jobs, in bytes (the scheduler only sends jobs whose estimate fits).
  // Default 0 = host memory for cpu; unknown (no limit) for cuda/hip.
  uint64_t memory_bytes = 0;
  // Keep each job's directory (<work_dir>/<job>-<attempt>/out holds what the pipeline wrote)
  // after the job instead of deleting it. Default false.
  bool keep_job_dirs = false;
  // Fetch uploaded inputs over WorkerService.FetchInput even when the server's path for them
  // is readable here (a worker on another machine always fetches). Default false.
  bool fetch_inputs = false;
  // Checkpoint every finished decoder layer to the server (artifacts "checkpoints/..."), so a
  // job this worker loses resumes on another worker after its last finished layer, byte-
  // identical (core/src/pipeline/layer_checkpoint.h has the bytes this costs). Default true.
  bool layer_checkpoints = true;
  // Drain(): how long the current job may still run before it is handed back to the server.
  // Keep it below the pod's terminationGracePeriodSeconds, with time left to stop the job and
  // send the hand-back. Default 20000 (Kubernetes' default grace period is 30 s).
  int drain_timeout_ms = 20000;
  // TLS files and the worker token (quarry/client/security.h): --tls-ca, --tls-cert/--tls-key
  // (required when the server has --tls-client-ca), --token-file / $QUARRY_TOKEN (a token with
  // the worker role, needed when the server has --auth-tokens and no --tls-client-ca).
  // Default: plaintext, no token.
  client::TransportSecurity security;
};

class JobRunner;

class Worker {
 public:
  // A worker that runs jobs through core's pipeline (quarry::QuantizeModel).
  static absl::StatusOr<std::unique_ptr<Worker>> Create(WorkerOptions options);
  // The same with another runner (tests script the job instead of running core).
  static absl::StatusOr<std::unique_ptr<Worker>> CreateWithRunner(
      WorkerOptions options, std::unique_ptr<JobRunner> runner);
  virtual ~Worker() = default;
  // Connects and serves jobs until Stop() (returns OK), or until the server goes away when
  // exit_on_disconnect. A running job is abandoned on return: not reported, so the server
  // re-queues it.
  virtual absl::Status Run() = 0;
  // Makes Run() return soon; the current job stops at its next layer boundary.
  virtual void Stop() = 0;
  // Graceful shutdown (SIGTERM): tells the server to assign nothing more, lets the current job
  // finish and be reported for up to drain_timeout_ms, else hands it back (the server re-queues
  // it at once), then Stop(). Blocks until that is done; returns at once without a connection.
  // An assignment that arrives while draining is handed back unstarted.
  virtual void Drain() = 0;
};

}  // namespace quarry::worker
