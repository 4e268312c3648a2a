// The local-worker supervisor with scripted children: each slot gets a process with its own
// worker id; a child that dies is restarted; Stop() terminates every child, and one that
// ignores SIGTERM is killed.
#include "local/local_workers.h"

#include <signal.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace quarry::server {
namespace {

class FakeLauncher : public ProcessLauncher {
 public:
  absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                              const std::string& log_path) override {
    absl::MutexLock lock(&mu_);
    pid_t pid = next_pid_++;
    argvs_[pid] = argv;
    running_.insert(pid);
    ++spawns_;
    return pid;
  }
  void Signal(pid_t pid, int sig) override {
    absl::MutexLock lock(&mu_);
    signals_.push_back({pid, sig});
    if (sig == SIGKILL || (sig == SIGTERM && !ignore_term_)) Exit(pid, sig);
  }
  std::optional<int> TryReap(pid_t pid) override {
    absl::MutexLock lock(&mu_);
    auto it = exited_.find(pid);
    if (it == exited_.end()) return std::nullopt;
    int status = it->second;
    exited_.erase(it);
    return status;
  }
  // A child crashes.
  void Crash(pid_t pid) {
    absl::MutexLock lock(&mu_);
    Exit(pid, SIGSEGV);
  }
  // Blocks until `n` spawns happened (or 10 s pass).
  bool AwaitSpawns(int n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return spawns_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  }
  // Blocks until the supervisor reaped the exited `pid` (or 10 s pass).
  bool AwaitReaped(pid_t pid) {
    absl::MutexLock lock(&mu_);
    auto reaped = [this, pid]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return exited_.count(pid) == 0;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&reaped), absl::Seconds(10));
  }
  std::vector<std::string> argv(pid_t pid) {
    absl::MutexLock lock(&mu_);
    return argvs_[pid];
  }
  int running() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(running_.size());
  }
  int kills() {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (auto& [pid, sig] : signals_) n += sig == SIGKILL;
    return n;
  }
  bool ignore_term_ = false;

 private:
  void Exit(pid_t pid, int sig) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (running_.erase(pid)) exited_[pid] = sig;  // a wait status "killed by sig"
  }
  absl::Mutex mu_;
  pid_t next_pid_ ABSL_GUARDED_BY(mu_) = 1000;
  int spawns_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<pid_t, std::vector<std::string>> argvs_ ABSL_GUARDED_BY(mu_);
  std::set<pid_t> running_ ABSL_GUARDED_BY(mu_);
  std::map<pid_t, int> exited_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<pid_t, int>> signals_ ABSL_GUARDED_BY(mu_);
};

LocalWorkerOptions Options(int n) {
  LocalWorkerOptions o;
  o.count = n;
  o.binary = "/bin/quarry-worker";
  o.server_address = "127.0.0.1:1234";
  o.device = "cpu";
  o.poll_interval_ms = 1;
  o.stop_grace_ms = 40;
  return o;
}

TEST(LocalWorkers, StartsEachWithItsIdAndRestartsACrashedOne) {
  FakeLauncher launcher;
  FakeClock clock;
  int restarts = 0;
  LocalWorkerOptions o = Options(2);
  o.on_restart = [&](int, const std::string&) { ++restarts; };
  auto pool = LocalWorkerPool::Start(o, &launcher, &clock);
  ASSERT_TRUE(pool.ok()) << pool.status();
  std::vector<pid_t> pids = (*pool)->pids();
  ASSERT_EQ(pids.size(), 2u);
  std::vector<std::string> argv = launcher.argv(pids[1]);
  ASSERT_GE(argv.size(), 7u);
  EXPECT_EQ(argv[0], "/bin/quarry-worker");
  EXPECT_EQ(argv[2], "127.0.0.1:1234");
  EXPECT_EQ(argv[6], "local-1");
  launcher.Crash(pids[0]);
  ASSERT_TRUE(launcher.AwaitReaped(pids[0]));
  clock.AdvanceMs(1000);  // past the first backoff (200 ms)
  ASSERT_TRUE(launcher.AwaitSpawns(3)) << "the crashed worker was restarted";
  EXPECT_EQ(launcher.running(), 2);
  (*pool)->Stop();
  EXPECT_EQ(launcher.running(), 0);
  EXPECT_EQ(launcher.kills(), 0) << "SIGTERM was enough";
  EXPECT_EQ(restarts, 1);
}

TEST(LocalWorkers, StopKillsAChildThatIgnoresSigterm) {
  FakeLauncher launcher;
  launcher.ignore_term_ = true;
  FakeClock clock;
  auto pool = LocalWorkerPool::Start(Options(1), &launcher, &clock);
  ASSERT_TRUE(pool.ok());
  (*pool)->Stop();
  EXPECT_EQ(launcher.running(), 0);
  EXPECT_EQ(launcher.kills(), 1);
}

}  // namespace
}  // namespace quarry::server
