// Starting and stopping child processes, behind an interface so the local-worker supervisor can
// be tested with fake children (a crash, a child that ignores SIGTERM) and no real processes.
// Thread-safe.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace quarry::server {

class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;
  // Starts argv[0] with argv; the child inherits stdout/stderr and gets SIGTERM when this
  // process dies (PR_SET_PDEATHSIG), so children never outlive a crashed server.
  // With log_path set, the child's stdout and stderr are appended to that file instead.
  virtual absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                                      const std::string& log_path = "") = 0;
  virtual void Signal(pid_t pid, int signal) = 0;
  // Non-blocking: the exit status (as waitpid's) when the child has exited and was reaped,
  // nullopt while it runs.
  virtual std::optional<int> TryReap(pid_t pid) = 0;
};

// fork + exec. Never null; lives forever.
ProcessLauncher* PosixProcessLauncher();

// "exited with status 3", "killed by signal 9 (Killed)".
std::string DescribeExitStatus(int wait_status);

}  // namespace quarry::server
