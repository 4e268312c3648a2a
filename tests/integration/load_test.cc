// Load (bounded, loopback only): 200 tiny jobs submitted at once from 8 threads to a server with
// 2 workers, while 50 watchers follow 50 of the jobs from their first event. Every job must
// succeed with its artifacts, every watcher must see its job's events 1..n exactly once. Prints
// the throughput and the SubmitJob latency (client-measured, exact; and the server's histogram).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "service_harness.h"

namespace quarry::testing {
namespace {

namespace v1 = ::quarry::v1;
using Clock = std::chrono::steady_clock;

constexpr int kJobs = 200;
constexpr int kWorkers = 2;
constexpr int kWatchers = 50;
constexpr int kSubmitThreads = 8;

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// The upper bound of the bucket that holds quantile p of a server histogram.
double HistogramQuantile(const std::string& text, const std::string& name,
                         const std::string& labels, double p) {
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative count)
  double total = MetricValue(text, absl::StrCat(name, "_count{", labels, "}"));
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::string prefix = absl::StrCat(name, "_bucket{", labels, ",le=\"");
    if (!absl::StartsWith(line, prefix)) continue;
    line.remove_prefix(prefix.size());
    size_t q = line.find('"');
    std::string le(line.substr(0, q));
    double bound = le == "+Inf" ? 1e300 : std::stod(le);
    double count = std::stod(std::string(line.substr(line.find(' ') + 1)));
    buckets.push_back({bound, count});
  }
  for (const auto& [bound, count] : buckets)
    if (count >= p * total) return bound;
  return -1;
}

TEST(Load, TwoHundredJobsTwoWorkersFiftyWatchers) {
  TempDir dir("load");
  ServerProcess server = StartServer(
      dir.path() + "/data",
      {"--model-root", TestDataDir(), "--metrics-listen", "127.0.0.1:0"});
  ASSERT_FALSE(server.address.empty());
  std::vector<std::unique_ptr<Process>> workers;
  for (int i = 0; i < kWorkers; ++i)
    workers.push_back(StartWorker(server.address, absl::StrCat("w", i),
                                  absl::StrCat(dir.path(), "/w", i, ".log")));
  auto c = NewClient(server.address, 60000);
  ASSERT_TRUE(AwaitCondition(
      [&] {
        return MetricValue(ScrapeMetrics(server.metrics_address), "quarry_workers_connected") ==
               kWorkers;
      },
      std::chrono::seconds(60)));

  // Submit all jobs at once from several threads, timing each call.
  std::vector<std::string> ids(kJobs);
  std::vector<double> latency_ms(kJobs);
  std::atomic<int> failures{0};
  const auto start = Clock::now();
  {
    std::vector<std::thread> threads;
    for (int t = 0; t < kSubmitThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = t; i < kJobs; i += kSubmitThreads) {
          v1::JobSpec spec = TinyJob("int4_wo_128", 2, 32);
          spec.set_name(absl::StrCat("load-", i));
          const auto t0 = Clock::now();
          auto job = c->SubmitJob(spec);
          latency_ms[i] = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
          if (!job.ok()) {
            ++failures;
            continue;
          }
          ids[i] = job->id();
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  const double submit_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  ASSERT_EQ(failures.load(), 0);

  // 50 watchers, each following one job from its first event to its end.
  std::vector<std::vector<uint64_t>> seqs(kWatchers);
  std::vector<v1::JobState> last_state(kWatchers, v1::JOB_STATE_UNSPECIFIED);
  std::vector<absl::Status> watch_status(kWatchers);
  {
    std::vector<std::thread> watchers;
    for (int w = 0; w < kWatchers; ++w) {
      watchers.emplace_back([&, w] {
        const std::string& id = ids[(w * kJobs) / kWatchers];
        client::WatchOptions o;
        o.job_id = id;
        watch_status[w] = c->WatchJob(o, [&](const v1::JobEvent& e) {
          seqs[w].push_back(e.seq());
          if (e.has_state()) last_state[w] = e.state().state();
          return true;
        });
      });
    }
    for (auto& t : watchers) t.join();
  }
  // Then every job to its end.
  int succeeded = 0;
  for (const std::string& id : ids) {
    v1::JobState s = WaitForEnd(*c, id);
    auto job = c->GetJob(id);
    ASSERT_TRUE(job.ok());
    if (s == v1::JOB_STATE_SUCCEEDED && job->artifacts_size() > 0) ++succeeded;
    else ADD_FAILURE() << id << ": " << v1::JobState_Name(s) << " " << job->error();
  }
  const double total_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_EQ(succeeded, kJobs);
  for (int w = 0; w < kWatchers; ++w) {
    EXPECT_TRUE(watch_status[w].ok()) << watch_status[w];
    EXPECT_EQ(last_state[w], v1::JOB_STATE_SUCCEEDED);
    ASSERT_FALSE(seqs[w].empty());
    for (size_t i = 0; i < seqs[w].size(); ++i) ASSERT_EQ(seqs[w][i], i + 1) << "watcher " << w;
    auto job = c->GetJob(ids[(w * kJobs) / kWatchers]);
    EXPECT_EQ(seqs[w].size(), job->last_event_seq()) << "watcher " << w << " missed events";
  }
  const std::string metrics = ScrapeMetrics(server.metrics_address);
  EXPECT_EQ(MetricValue(metrics, "quarry_jobs{state=\"succeeded\"}"), kJobs);
  EXPECT_EQ(MetricValue(metrics, "quarry_rpc_requests_total{method=\"SubmitJob\",code=\"OK\"}"),
            kJobs);

  const double p50 = Percentile(latency_ms, 0.50), p99 = Percentile(latency_ms, 0.99);
  const double server_p50 =
      HistogramQuantile(metrics, "quarry_rpc_duration_seconds", "method=\"SubmitJob\"", 0.50);
  const double server_p99 =
      HistogramQuantile(metrics, "quarry_rpc_duration_seconds", "method=\"SubmitJob\"", 0.99);
  const double server_sum = MetricValue(metrics, "quarry_rpc_duration_seconds_sum{method=\"SubmitJob\"}");
  std::printf(
      "[load] %d jobs, %d workers, %d watchers: all submitted in %.2f s, all done in %.1f s "
      "(%.2f jobs/s)\n"
      "[load] SubmitJob latency (client, exact): p50 %.2f ms, p99 %.2f ms, max %.2f ms\n"
      "[load] SubmitJob latency (server histogram bucket bounds): p50 <= %.1f ms, p99 <= %.1f ms,"
      " mean %.2f ms\n",
      kJobs, kWorkers, kWatchers, submit_seconds, total_seconds, kJobs / total_seconds, p50, p99,
      *std::max_element(latency_ms.begin(), latency_ms.end()), server_p50 * 1000,
      server_p99 * 1000, server_sum / kJobs * 1000);
  RecordProperty("jobs_per_second", absl::StrCat(kJobs / total_seconds));
  RecordProperty("submit_p50_ms", absl::StrCat(p50));
  RecordProperty("submit_p99_ms", absl::StrCat(p99));
}

}  // namespace
}  // namespace quarry::testing
