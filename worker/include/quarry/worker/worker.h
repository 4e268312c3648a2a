// The Quarry worker: connects to a server, announces its device, runs one job at a time through
// core's pipeline and streams progress, logs and artifacts back. Thread-safe: Stop() may be
// called from any thread.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

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
};

class Worker {
 public:
  static absl::StatusOr<std::unique_ptr<Worker>> Create(WorkerOptions options);
  virtual ~Worker() = default;
  // Runs until Stop() (returns OK) or a fatal error.
  virtual absl::Status Run() = 0;
  virtual void Stop() = 0;
};

}  // namespace quarry::worker
