#include "local/local_workers.h"

#include <signal.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace quarry::server {

std::string LocalWorkerPool::WorkerId(int index) { return absl::StrCat("local-", index); }

std::vector<std::string> LocalWorkerPool::Argv(int index) const {
  std::vector<std::string> argv = {options_.binary, "--server", options_.server_address,
                                   "--device", options_.device, "--worker-id", WorkerId(index),
                                   "--reconnect-max-ms", "1000"};
  if (options_.threads > 0) {
    argv.push_back("--threads");
    argv.push_back(std::to_string(options_.threads));
  }
  if (!options_.work_dir.empty()) {
    argv.push_back("--work-dir");
    argv.push_back(absl::StrCat(options_.work_dir, "/", WorkerId(index)));
  }
  if (!options_.token_file.empty()) {
    argv.push_back("--token-file");
    argv.push_back(options_.token_file);
  }
  return argv;
}

absl::StatusOr<std::unique_ptr<LocalWorkerPool>> LocalWorkerPool::Start(
    LocalWorkerOptions options, ProcessLauncher* launcher, Clock* clock) {
  if (options.binary.empty())
    return absl::InvalidArgumentError("local workers: no quarry-worker binary given");
  std::unique_ptr<LocalWorkerPool> pool(new LocalWorkerPool(std::move(options), launcher, clock));
  {
    absl::MutexLock lock(&pool->mu_);
    pool->children_.resize(pool->options_.count);
    for (int i = 0; i < pool->options_.count; ++i) {
      absl::Status st = pool->SpawnLocked(i);
      if (!st.ok()) {
        pool->stopping_ = true;
        for (Child& c : pool->children_)
          if (c.pid > 0) launcher->Signal(c.pid, SIGKILL);
        return st;
      }
    }
  }
  pool->thread_ = std::thread([p = pool.get()] { p->Supervise(); });
  return pool;
}

LocalWorkerPool::~LocalWorkerPool() { Stop(); }

absl::Status LocalWorkerPool::SpawnLocked(int index) {
  auto pid = launcher_->Spawn(Argv(index), options_.log_path);
  if (!pid.ok())
    return absl::Status(pid.status().code(), absl::StrCat("cannot start local worker ", index,
                                                          ": ", pid.status().message()));
  Child& c = children_[index];
  c.pid = *pid;
  c.started_ms = clock_->NowMonotonicMs();
  return absl::OkStatus();
}

void LocalWorkerPool::Supervise() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    const int64_t now = clock_->NowMonotonicMs();
    for (int i = 0; i < static_cast<int>(children_.size()); ++i) {
      Child& c = children_[i];
      if (c.pid > 0) {
        std::optional<int> status = launcher_->TryReap(c.pid);
        if (!status) continue;
        std::string how = DescribeExitStatus(*status);
        if (now - c.started_ms > 30000) c.backoff_ms = 200;
        std::fprintf(stderr, "quarry-server: local worker %s (pid %d) %s; restarting in %d ms\n",
                     WorkerId(i).c_str(), c.pid, how.c_str(), c.backoff_ms);
        c.pid = 0;
        c.restart_at_ms = now + c.backoff_ms;
        c.backoff_ms = std::min(c.backoff_ms * 2, 5000);
        if (options_.on_restart) options_.on_restart(i, how);
      } else if (now >= c.restart_at_ms) {
        absl::Status st = SpawnLocked(i);
        if (!st.ok()) {
          std::fprintf(stderr, "quarry-server: %s\n", st.ToString().c_str());
          c.restart_at_ms = now + c.backoff_ms;
        }
      }
    }
    // Wakes early when Stop() flips stopping_.
    mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                         absl::Milliseconds(options_.poll_interval_ms));
  }
}

void LocalWorkerPool::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  for (Child& c : children_)
    if (c.pid > 0) launcher_->Signal(c.pid, SIGTERM);
  constexpr int kStepMs = 20;
  for (int waited = 0;; waited += kStepMs) {
    bool running = false;
    for (Child& c : children_) {
      if (c.pid > 0 && launcher_->TryReap(c.pid)) c.pid = 0;
      running |= c.pid > 0;
    }
    if (!running) return;
    if (waited >= options_.stop_grace_ms) break;
    mu_.Unlock();
    absl::SleepFor(absl::Milliseconds(kStepMs));
    mu_.Lock();
  }
  // SIGKILL cannot be ignored; reap each for a bounded time (a zombie needs its parent).
  for (Child& c : children_) {
    if (c.pid <= 0) continue;
    std::fprintf(stderr, "quarry-server: local worker pid %d ignored SIGTERM; killing it\n",
                 c.pid);
    launcher_->Signal(c.pid, SIGKILL);
    for (int i = 0; i < 250 && !launcher_->TryReap(c.pid); ++i) {
      mu_.Unlock();
      absl::SleepFor(absl::Milliseconds(kStepMs));
      mu_.Lock();
    }
    c.pid = 0;
  }
}

std::vector<pid_t> LocalWorkerPool::pids() {
  absl::MutexLock lock(&mu_);
  std::vector<pid_t> out;
  for (const Child& c : children_) out.push_back(c.pid);
  return out;
}

}  // namespace quarry::server
