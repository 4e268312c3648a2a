// Supervises N quarry-worker child processes on this machine ("embedded workers"): starts them
// pointed at the server's own address, restarts any that exits (with backoff: 0.2 s doubling to
// 5 s, reset once a child has lived 30 s), and stops them on shutdown (SIGTERM, then SIGKILL
// after a grace period). Children get SIGTERM if the server itself dies (see ProcessLauncher).
// Thread-safe; one supervisor thread.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "env/clock.h"
#include "env/process_launcher.h"

namespace quarry::server {

struct LocalWorkerOptions {
  int count = 0;               // number of workers
  std::string binary;          // quarry-worker executable (required)
  std::string server_address;  // what the workers dial
  std::string device = "cpu";  // --device of every worker
  int threads = 0;             // --threads per worker (0 = the worker's default)
  std::string work_dir;        // parent of each worker's scratch dir ("" = worker default)
  std::string log_path;        // children's stdout/stderr ("" = inherit)
  std::string token_file;      // --token-file of every worker ("" = none)
  int stop_grace_ms = 5000;    // SIGTERM -> SIGKILL delay at shutdown
  int poll_interval_ms = 100;  // how often the supervisor checks its children
  // Called after a child exited and was restarted (for metrics). Default none.
  std::function<void(int index, const std::string& how)> on_restart;
};

class LocalWorkerPool {
 public:
  // Starts the children and the supervisor thread.
  static absl::StatusOr<std::unique_ptr<LocalWorkerPool>> Start(LocalWorkerOptions options,
                                                                ProcessLauncher* launcher,
                                                                Clock* clock);
  ~LocalWorkerPool();  // Stop()
  // Stops restarting, terminates every child and waits for them. Idempotent.
  void Stop();
  // The pids of the running children (0 for a slot waiting to restart).
  std::vector<pid_t> pids();
  // Worker ids are "local-<index>".
  static std::string WorkerId(int index);

 private:
  struct Child {
    pid_t pid = 0;
    int64_t started_ms = 0;
    int64_t restart_at_ms = 0;  // when pid == 0
    int backoff_ms = 200;
  };
  LocalWorkerPool(LocalWorkerOptions options, ProcessLauncher* launcher, Clock* clock)
      : options_(std::move(options)), launcher_(launcher), clock_(clock) {}
  std::vector<std::string> Argv(int index) const;
  absl::Status SpawnLocked(int index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Supervise();

  const LocalWorkerOptions options_;
  ProcessLauncher* const launcher_;
  Clock* const clock_;
  absl::Mutex mu_;
  std::vector<Child> children_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace quarry::server
