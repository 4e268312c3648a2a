// The Prometheus exposition: exact text for each metric type, label escaping, histogram
// cumulative buckets, and the whole server registry accepted by `promtool check metrics`.
#include "metrics/metrics.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "metrics/server_metrics.h"

namespace quarry::server::metrics {
namespace {

TEST(Metrics, RendersCountersGaugesAndHistograms) {
  Registry r;
  auto& requests = r.AddCounter("x_requests_total", "Requests.", {"method", "code"});
  requests.WithLabels({"Get", "OK"}).Increment();
  requests.WithLabels({"Get", "OK"}).Increment(2);
  requests.WithLabels({"Put", "NOT_FOUND"}).Increment();
  r.AddGauge("x_depth", "Queue depth.").WithLabels({}).Set(7);
  auto& h = r.AddHistogram("x_seconds", "Latency.", {0.1, 1});
  h.WithLabels({}).Observe(0.05);
  h.WithLabels({}).Observe(0.5);
  h.WithLabels({}).Observe(0.5);
  h.WithLabels({}).Observe(3);
  EXPECT_EQ(r.Render(),
            "# HELP x_requests_total Requests.\n"
            "# TYPE x_requests_total counter\n"
            "x_requests_total{method=\"Get\",code=\"OK\"} 3\n"
            "x_requests_total{method=\"Put\",code=\"NOT_FOUND\"} 1\n"
            "# HELP x_depth Queue depth.\n"
            "# TYPE x_depth gauge\n"
            "x_depth 7\n"
            "# HELP x_seconds Latency.\n"
            "# TYPE x_seconds histogram\n"
            "x_seconds_bucket{le=\"0.1\"} 1\n"
            "x_seconds_bucket{le=\"1\"} 3\n"
            "x_seconds_bucket{le=\"+Inf\"} 4\n"
            "x_seconds_sum 4.05\n"
            "x_seconds_count 4\n");
}

TEST(Metrics, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(EscapeHelp("line\\one\ntwo"), "line\\\\one\\ntwo");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(1e21), "1e+21");
}

TEST(Metrics, CollectorsRunBeforeRendering) {
  Registry r;
  Gauge& g = r.AddGauge("x_workers", "Workers.").WithLabels({});
  int calls = 0;
  r.AddCollector([&] { g.Set(++calls); });
  EXPECT_NE(r.Render().find("x_workers 1\n"), std::string::npos);
  EXPECT_NE(r.Render().find("x_workers 2\n"), std::string::npos);
}

// Every metric the server exports, with values in every family, passes promtool's checks.
TEST(Metrics, ServerExpositionPassesPromtool) {
  ServerMetrics m;
  m.jobs.WithLabels({"queued"}).Set(3);
  m.queue_depth.Set(3);
  m.workers_connected.Set(2);
  m.workers_busy.Set(1);
  m.jobs_finished.WithLabels({"succeeded"}).Increment();
  m.job_duration.WithLabels({"succeeded"}).Observe(1.5);
  m.RecordRpc("SubmitJob", absl::StatusCode::kOk, 0.002);
  m.RecordRpc("GetJob", absl::StatusCode::kNotFound, 0.0004);
  m.uploaded_bytes.WithLabels({"artifact"}).Increment(1024);
  m.downloaded_bytes.WithLabels({"artifact"}).Increment(1024);
  m.local_worker_restarts.Increment();
  const std::string text = m.registry().Render();
  auto path = std::filesystem::temp_directory_path() /
              ("quarry_metrics_" + std::to_string(::getpid()) + ".prom");
  std::ofstream(path) << text;
  const std::string cmd = "/usr/bin/promtool check metrics < " + path.string() + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof(buf), p)) out += buf;
  int rc = ::pclose(p);
  std::filesystem::remove(path);
  EXPECT_EQ(rc, 0) << out << "\n--- exposition ---\n" << text;
  EXPECT_EQ(out, "") << "promtool lint findings";
  for (const char* name :
       {"quarry_jobs{state=\"queued\"} 3", "quarry_queue_depth 3", "quarry_workers_connected 2",
        "quarry_workers_busy 1", "quarry_job_duration_seconds_count{state=\"succeeded\"} 1",
        "quarry_rpc_requests_total{method=\"GetJob\",code=\"NOT_FOUND\"} 1",
        "quarry_rpc_duration_seconds_bucket{method=\"SubmitJob\",le=\"0.0025\"} 1",
        "quarry_uploaded_bytes_total{kind=\"artifact\"} 1024",
        "quarry_downloaded_bytes_total{kind=\"artifact\"} 1024"})
    EXPECT_NE(text.find(name), std::string::npos) << name;
}

}  // namespace
}  // namespace quarry::server::metrics
