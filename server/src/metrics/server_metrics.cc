#include "metrics/server_metrics.h"

#include "absl/status/status.h"

namespace quarry::server {
ServerMetrics::ServerMetrics()
    : jobs(registry_.AddGauge("quarry_jobs", "Jobs in the database by state.", {"state"})),
      queue_depth(registry_.AddGauge("quarry_queue_depth", "Jobs waiting for a worker.")
                      .WithLabels({})),
      workers_connected(registry_
                            .AddGauge("quarry_workers_connected",
                                      "Workers with an open Connect stream.")
                            .WithLabels({})),
      workers_busy(
          registry_.AddGauge("quarry_workers_busy", "Workers running a job.").WithLabels({})),
      jobs_finished(registry_.AddCounter("quarry_jobs_finished_total",
                                         "Jobs that reached a terminal state.", {"state"})),
      job_duration(registry_.AddHistogram(
          "quarry_job_duration_seconds", "Running time of finished jobs (start to end).",
          {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 14400},
          {"state"})),
      rpc_requests(registry_.AddCounter("quarry_rpc_requests_total",
                                        "RPCs handled, by method and gRPC status code.",
                                        {"method", "code"})),
      rpc_duration(registry_.AddHistogram(
          "quarry_rpc_duration_seconds",
          "RPC latency: unary calls until the response, streams for their lifetime.",
          {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 600},
          {"method"})),
      uploaded_bytes(registry_.AddCounter("quarry_uploaded_bytes_total",
                                          "Bytes received: uploaded models, datasets, artifacts, layer checkpoints.",
                                          {"kind"})),
      downloaded_bytes(registry_.AddCounter(
          "quarry_downloaded_bytes_total", "Bytes sent: artifacts to clients, inputs to workers.",
          {"kind"})),
      tenant_jobs(registry_.AddGauge(
          "quarry_tenant_jobs",
          "Jobs in the database by tenant and state (at most --metrics-max-tenants tenant "
          "values by name; the other tenants summed under tenant=\"_other\", no auth = \"_none\").",
          {"tenant", "state"})),
      tenant_stored_bytes(registry_.AddGauge(
          "quarry_tenant_stored_bytes",
          "Bytes a tenant keeps: kind=upload (models and datasets, unfinished uploads at what "
          "they declared) or artifact (job outputs); tenants as in quarry_tenant_jobs.",
          {"tenant", "kind"})),
      local_worker_restarts(registry_
                                .AddCounter("quarry_local_worker_restarts_total",
                                            "Local worker processes restarted after they exited.")
                                .WithLabels({})) {}

void ServerMetrics::RecordRpc(const std::string& method, absl::StatusCode code, double seconds) {
  rpc_requests.WithLabels({method, absl::StatusCodeToString(code)}).Increment();
  rpc_duration.WithLabels({method}).Observe(seconds);
}

}  // namespace quarry::server
