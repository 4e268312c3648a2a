// Soak (bounded, loopback only; ctest label "soak", not built or run by default:
// `ninja -C build quarry_soak_tests && ctest --test-dir build -L soak`):
// for QUARRY_SOAK_SECONDS (default 1800) 20 client threads mix submit / watch / cancel /
// download / list against one server with 3 workers, while a chaos thread kills a random worker
// with SIGKILL every 20-40 s and restarts it a few seconds later. Then every job must end
// (SUCCEEDED, or CANCELLED when a client cancelled it), with events 1..n exactly once (each
// watcher checks its own stream live, and every job's stored events are read back at the end),
// and every succeeded job's artifacts must be there with the sizes and sha256 its Job lists;
// clients delete most of their jobs once finished (DeleteJob), which must leave nothing behind. The
// server's RSS, sampled every 5 s, must stay flat: the mean of the last fifth at most 25% + 16 MiB
// above the mean of the second fifth. Prints the figures (docs/service.md "Soak").
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service_harness.h"

namespace quarry::testing {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::quarry::v1;
using Clock = std::chrono::steady_clock;

constexpr int kClients = 20;
constexpr int kWorkers = 3;

int SoakSeconds() {
  const char* s = std::getenv("QUARRY_SOAK_SECONDS");
  return s != nullptr && std::atoi(s) > 0 ? std::atoi(s) : 1800;
}

// VmRSS of a process in bytes (0 when gone).
double RssBytes(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line))
    if (absl::StartsWith(line, "VmRSS:")) return std::atof(line.c_str() + 6) * 1024;
  return 0;
}

struct Shared {
  std::mutex mu;
  std::vector<std::string> jobs;        // every id SubmitJob returned
  std::set<std::string> cancelled;      // ids a client asked to cancel
  std::set<std::string> deleted;        // ids a client deleted (DeleteJob) after they ended
  std::atomic<int64_t> submits{0}, watches{0}, cancels{0}, downloads{0}, lists{0}, deletes{0};
  std::atomic<int64_t> watched_events{0}, errors{0};
  std::vector<std::string> failures;    // what went wrong, for the report
  void Fail(const std::string& what) {
    std::lock_guard<std::mutex> l(mu);
    if (failures.size() < 50) failures.push_back(what);
    ++errors;
  }
  std::string RandomJob(std::mt19937_64& rng) {
    std::lock_guard<std::mutex> l(mu);
    if (jobs.empty()) return "";
    return jobs[rng() % jobs.size()];
  }
  bool Deleted(const std::string& id) {
    std::lock_guard<std::mutex> l(mu);
    return deleted.count(id) > 0;
  }
};

// A watch from seq 0 to the end (or `max_events`): seqs must be 1, 2, 3, ... each once.
void CheckedWatch(client::Client& c, const std::string& id, Shared& s, size_t max_events) {
  uint64_t expect = 1;
  client::WatchOptions w;
  w.job_id = id;
  size_t n = 0;
  absl::Status st = c.WatchJob(w, [&](const v1::JobEvent& e) {
    if (e.seq() != expect) {
      s.Fail(absl::StrCat("watch ", id, ": seq ", e.seq(), ", expected ", expect));
      return false;
    }
    ++expect;
    return ++n < max_events;
  });
  // (a job another client deleted meanwhile is NOT_FOUND)
  if (!st.ok() && !(st.code() == absl::StatusCode::kNotFound && s.Deleted(id)))
    s.Fail(absl::StrCat("watch ", id, ": ", st.ToString()));
  s.watched_events += static_cast<int64_t>(n);
  ++s.watches;
}

void ClientLoop(const std::string& address, int index, Clock::time_point end, Shared& s,
                const std::string& tmp) {
  auto c = NewClient(address, 60000);
  std::mt19937_64 rng(1000 + index);
  std::vector<std::string> mine;  // this client's jobs not yet seen finished
  int seq = 0;
  while (Clock::now() < end) {
    const int action = static_cast<int>(rng() % 100);
    if (action < 30 && mine.size() < 2) {  // submit (at most 2 of this client's jobs in flight)
      auto job = c->SubmitJob(TinyJob(), absl::StrCat("soak-", index, "-", seq++));
      if (!job.ok()) {
        s.Fail(absl::StrCat("submit: ", job.status().ToString()));
        continue;
      }
      ++s.submits;
      mine.push_back(job->id());
      std::lock_guard<std::mutex> l(s.mu);
      s.jobs.push_back(job->id());
    } else if (action < 55) {  // watch one of mine to the end, or any job briefly
      if (!mine.empty()) {
        const std::string id = mine.front();
        CheckedWatch(*c, id, s, SIZE_MAX);
        mine.erase(mine.begin());
        // Most finished jobs are deleted again (disk stays bounded; DeleteJob is soaked too).
        if (rng() % 100 < 80) {
          {
            std::lock_guard<std::mutex> l(s.mu);
            s.deleted.insert(id);
          }
          auto freed = c->DeleteJob(id);
          if (!freed.ok()) s.Fail(absl::StrCat("delete ", id, ": ", freed.status().ToString()));
          ++s.deletes;
        }
      } else if (std::string id = s.RandomJob(rng); !id.empty() && !s.Deleted(id)) {
        CheckedWatch(*c, id, s, 5);
      }
    } else if (action < 62) {  // cancel one of mine
      if (!mine.empty()) {
        const std::string id = mine.back();
        {
          std::lock_guard<std::mutex> l(s.mu);
          s.cancelled.insert(id);
        }
        auto r = c->CancelJob(id);
        if (!r.ok()) s.Fail(absl::StrCat("cancel ", id, ": ", r.status().ToString()));
        ++s.cancels;
      }
    } else if (action < 80) {  // download a random finished job's artifacts
      if (std::string id = s.RandomJob(rng); !id.empty()) {
        auto job = c->GetJob(id);
        if (!job.ok()) {
          if (!s.Deleted(id)) s.Fail(absl::StrCat("get ", id, ": ", job.status().ToString()));
        } else if (job->state() == v1::JOB_STATE_SUCCEEDED) {
          const std::string out = absl::StrCat(tmp, "/dl-", index);
          auto dl = c->DownloadArtifacts(id, out);
          if (!dl.ok() && !s.Deleted(id))
            s.Fail(absl::StrCat("download ", id, ": ", dl.status().ToString()));
          std::error_code ec;
          fs::remove_all(out, ec);
          ++s.downloads;
        }
      }
    } else {  // list
      v1::ListJobsRequest req;
      req.set_limit(50);
      auto jobs = c->ListJobs(req);
      if (!jobs.ok()) s.Fail(absl::StrCat("list: ", jobs.status().ToString()));
      ++s.lists;
    }
  }
  for (const std::string& id : mine) CheckedWatch(*c, id, s, SIZE_MAX);
}

TEST(Soak, MixedClientsAndKilledWorkersLoseNothingAndServerRssStaysFlat) {
  const int seconds = SoakSeconds();
  TempDir dir("soak");
  ServerProcess server = StartServer(
      dir.path() + "/data",
      {"--model-root", TestDataDir(), "--metrics-listen", "127.0.0.1:0", "--max-attempts",
       "1000", "--heartbeat-timeout-ms", "5000"},
      "127.0.0.1:0", dir.path() + "/server.log");
  ASSERT_FALSE(server.address.empty());
  std::vector<std::unique_ptr<Process>> workers(kWorkers);
  std::mutex workers_mu;
  int restarts = 0;
  auto start_worker = [&](int i) {
    workers[i] = StartWorker(server.address, absl::StrCat("w", i),
                             absl::StrCat(dir.path(), "/w", i, ".log"));
  };
  for (int i = 0; i < kWorkers; ++i) start_worker(i);

  Shared shared;
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::seconds(seconds);
  std::atomic<bool> done{false};
  std::vector<std::pair<double, double>> rss;  // (seconds, bytes)
  std::thread sampler([&] {
    while (!done) {
      rss.push_back({std::chrono::duration<double>(Clock::now() - t0).count(),
                     RssBytes(server.process->pid())});
      for (int i = 0; i < 50 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  std::thread chaos([&] {
    std::mt19937_64 rng(7);
    while (Clock::now() < end) {
      const int wait_s = 20 + static_cast<int>(rng() % 21);
      for (int i = 0; i < wait_s * 10 && Clock::now() < end; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (Clock::now() >= end) break;
      const int victim = static_cast<int>(rng() % kWorkers);
      {
        std::lock_guard<std::mutex> l(workers_mu);
        workers[victim]->Signal(SIGKILL);
        workers[victim]->Wait();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1000 + rng() % 2000));
      std::lock_guard<std::mutex> l(workers_mu);
      start_worker(victim);
      ++restarts;
    }
    // The workers this thread started die with it (PR_SET_PDEATHSIG is per thread): it stays
    // until the jobs are checked.
    while (!done) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  });
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i)
    clients.emplace_back(ClientLoop, server.address, i, end, std::ref(shared), dir.path());
  for (auto& t : clients) t.join();

  // Every job ends; its stored events are 1..n exactly once, the last one its final state.
  auto c = NewClient(server.address, 60000);
  int succeeded = 0, cancelled = 0, lost = 0, bad_events = 0, missing_artifacts = 0;
  uint64_t artifact_bytes = 0;
  std::vector<std::string> jobs;
  {
    std::lock_guard<std::mutex> l(shared.mu);
    jobs = shared.jobs;
  }
  int deleted = 0;
  for (const std::string& id : jobs) {
    if (shared.Deleted(id)) {
      ++deleted;
      if (c->GetJob(id).status().code() != absl::StatusCode::kNotFound)
        shared.Fail(absl::StrCat("deleted job ", id, " is still there"));
      if (fs::exists(absl::StrCat(dir.path(), "/data/artifacts/", id)))
        shared.Fail(absl::StrCat("deleted job ", id, " left its files"));
      continue;
    }
    const v1::JobState state = WaitForEnd(*c, id);
    auto job = c->GetJob(id);
    if (!job.ok()) {
      ++lost;
      shared.Fail(absl::StrCat("job ", id, " lost: ", job.status().ToString()));
      continue;
    }
    uint64_t expect = 1;
    v1::JobState last_state = v1::JOB_STATE_UNSPECIFIED;
    client::WatchOptions w;
    w.job_id = id;
    w.follow = false;
    absl::Status st = c->WatchJob(w, [&](const v1::JobEvent& e) {
      if (e.seq() != expect) ++bad_events;
      expect = e.seq() + 1;
      if (e.has_state()) last_state = e.state().state();
      return true;
    });
    if (!st.ok() || expect - 1 != job->last_event_seq() || last_state != state) {
      ++bad_events;
      shared.Fail(absl::StrCat("job ", id, ": events 1..", expect - 1, " of ",
                               job->last_event_seq(), ", last state ", last_state));
    }
    if (state == v1::JOB_STATE_SUCCEEDED) {
      ++succeeded;
      for (const v1::ArtifactInfo& a : job->artifacts()) {
        const std::string path = absl::StrCat(dir.path(), "/data/artifacts/", id, "/",
                                              job->attempts(), "/files/", a.name());
        std::error_code ec;
        if (fs::file_size(path, ec) != a.size() || ec) ++missing_artifacts;
        artifact_bytes += a.size();
      }
    } else if (state == v1::JOB_STATE_CANCELLED) {
      ++cancelled;
      std::lock_guard<std::mutex> l(shared.mu);
      if (!shared.cancelled.count(id))
        shared.Fail(absl::StrCat("job ", id, " cancelled without a client asking"));
    } else {
      shared.Fail(absl::StrCat("job ", id, " ended ", state, ": ", job->error()));
    }
  }
  // The sha256 of a sample of the artifacts, downloaded.
  int sampled = 0;
  for (size_t i = 0; i < jobs.size() && sampled < 20; i += std::max<size_t>(1, jobs.size() / 100)) {
    if (shared.Deleted(jobs[i])) continue;
    auto job = c->GetJob(jobs[i]);
    if (!job.ok() || job->state() != v1::JOB_STATE_SUCCEEDED) continue;
    const std::string out = absl::StrCat(dir.path(), "/final-", i);
    auto dl = c->DownloadArtifacts(jobs[i], out);
    EXPECT_TRUE(dl.ok()) << dl.status();
    for (const v1::ArtifactInfo& a : job->artifacts())
      EXPECT_EQ(Sha256OfFile(out + "/" + a.name()), a.sha256()) << jobs[i] << " " << a.name();
    ++sampled;
  }
  done = true;
  sampler.join();
  chaos.join();

  // RSS: the second fifth (after warm-up) against the last fifth.
  auto mean = [&](double from, double to) {
    double sum = 0;
    int n = 0;
    for (const auto& [t, b] : rss)
      if (t >= from * seconds && t < to * seconds) sum += b, ++n;
    return n > 0 ? sum / n : 0;
  };
  const double early = mean(0.2, 0.4), late = mean(0.8, 1.0);
  double peak = 0;
  for (const auto& [t, b] : rss) peak = std::max(peak, b);
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf(
      "soak: %d s, %d clients, %d workers, %d worker kills; %zu jobs submitted: %d succeeded and "
      "kept, %d cancelled, %d deleted, %d lost, %d with bad events, %d missing artifacts (%.1f MB "
      "of artifacts kept); %lld watches (%lld events live), %lld cancels, %lld downloads, %lld "
      "lists, %lld client "
      "errors; server RSS mean %.1f MiB (20-40%%) -> %.1f MiB (80-100%%), peak %.1f MiB; "
      "%.0f s wall\n",
      seconds, kClients, kWorkers, restarts, jobs.size(), succeeded, cancelled, deleted, lost,
      bad_events,
      missing_artifacts, artifact_bytes / 1e6, static_cast<long long>(shared.watches.load()),
      static_cast<long long>(shared.watched_events.load()),
      static_cast<long long>(shared.cancels.load()),
      static_cast<long long>(shared.downloads.load()), static_cast<long long>(shared.lists.load()),
      static_cast<long long>(shared.errors.load()), early / (1 << 20), late / (1 << 20),
      peak / (1 << 20), secs);
  for (const std::string& f : shared.failures) std::printf("  %s\n", f.c_str());
  EXPECT_GT(succeeded, 0);
  EXPECT_GT(restarts, 0);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(bad_events, 0);
  EXPECT_EQ(missing_artifacts, 0);
  EXPECT_EQ(shared.errors.load(), 0) << "client calls failed (listed above)";
  EXPECT_EQ(succeeded + cancelled + deleted, static_cast<int>(jobs.size()));
  EXPECT_LT(late, early * 1.25 + 16.0 * (1 << 20)) << "server RSS grew";
}

}  // namespace
}  // namespace quarry::testing
