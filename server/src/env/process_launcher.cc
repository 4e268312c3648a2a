#include "env/process_launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace quarry::server {
namespace {

class PosixProcessLauncherImpl final : public ProcessLauncher {
 public:
  absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                              const std::string& log_path) override {
    if (argv.empty()) return absl::InvalidArgumentError("empty argv");
    // Everything the child needs is prepared before fork: only async-signal-safe calls after it.
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int log_fd = -1;
    if (!log_path.empty()) {
      log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (log_fd < 0)
        return absl::InternalError(absl::StrCat("open '", log_path, "': ", std::strerror(errno)));
    }
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
      int err = errno;
      if (log_fd >= 0) ::close(log_fd);
      return absl::InternalError(absl::StrCat("fork: ", std::strerror(err)));
    }
    if (pid == 0) {
      if (log_fd >= 0) {
        ::dup2(log_fd, STDOUT_FILENO);  // dup2 clears FD_CLOEXEC on the copies
        ::dup2(log_fd, STDERR_FILENO);
      }
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the server blocks SIGTERM in its threads
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    if (log_fd >= 0) ::close(log_fd);
    return pid;
  }
  void Signal(pid_t pid, int signal) override { ::kill(pid, signal); }
  std::optional<int> TryReap(pid_t pid) override {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno == ECHILD) return 0;  // already reaped elsewhere: treat as exited
    return std::nullopt;
  }
};

}  // namespace

ProcessLauncher* PosixProcessLauncher() {
  static PosixProcessLauncherImpl* launcher = new PosixProcessLauncherImpl();
  return launcher;
}

std::string DescribeExitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return absl::StrCat("exited with status ", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status))
    return absl::StrCat("killed by signal ", WTERMSIG(wait_status), " (",
                        strsignal(WTERMSIG(wait_status)), ")");
  return absl::StrCat("ended (wait status ", wait_status, ")");
}

}  // namespace quarry::server
