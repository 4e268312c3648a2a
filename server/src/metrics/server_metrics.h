// The server's metrics, by name (docs/service.md lists them):
//   quarry_jobs{state}                      gauge      jobs in the database by state
//   quarry_queue_depth                      gauge      jobs waiting for a worker
//   quarry_workers_connected                gauge      workers with an open stream
//   quarry_workers_busy                     gauge      workers running a job
//   quarry_jobs_finished_total{state}       counter    jobs that reached a terminal state
//   quarry_job_duration_seconds{state}      histogram  running time of finished jobs
//   quarry_rpc_requests_total{method,code}  counter    RPCs handled, by gRPC status code
//   quarry_rpc_duration_seconds{method}     histogram  RPC latency (streams: their lifetime)
//   quarry_uploaded_bytes_total{kind}       counter    bytes received: model, dataset, artifact,
//                                                      checkpoint (layer checkpoints of jobs)
//   quarry_downloaded_bytes_total{kind}     counter    bytes sent: artifact, input
//   quarry_local_worker_restarts_total      counter    local worker processes restarted
//   quarry_tenant_jobs{tenant,state}        gauge      jobs in the database by tenant
//   quarry_tenant_stored_bytes{tenant,kind} gauge      upload / artifact bytes a tenant keeps
// Tenant labels are bounded: at most ServerOptions::metrics_max_tenants values (by name), the
// rest summed as "_other"; the tenant of a server without --auth-tokens is "_none".
// Thread-safe.
#pragma once

#include <chrono>
#include <string>

#include "absl/status/status.h"
#include "metrics/metrics.h"

namespace quarry::server {

class ServerMetrics {
 private:
  metrics::Registry registry_;  // first: the members below are created in it

 public:
  ServerMetrics();
  metrics::Registry& registry() { return registry_; }

  metrics::Family<metrics::Gauge>& jobs;
  metrics::Gauge& queue_depth;
  metrics::Gauge& workers_connected;
  metrics::Gauge& workers_busy;
  metrics::Family<metrics::Counter>& jobs_finished;
  metrics::Family<metrics::Histogram>& job_duration;
  metrics::Family<metrics::Counter>& rpc_requests;
  metrics::Family<metrics::Histogram>& rpc_duration;
  metrics::Family<metrics::Counter>& uploaded_bytes;
  metrics::Family<metrics::Counter>& downloaded_bytes;
  metrics::Family<metrics::Gauge>& tenant_jobs;
  metrics::Family<metrics::Gauge>& tenant_stored_bytes;
  metrics::Counter& local_worker_restarts;

  // Records one finished RPC.
  void RecordRpc(const std::string& method, absl::StatusCode code, double seconds);
};

// Measures one RPC from construction to Finish().
class RpcTimer {
 public:
  RpcTimer(ServerMetrics* m, std::string method)
      : m_(m), method_(std::move(method)), start_(std::chrono::steady_clock::now()) {}
  void Finish(absl::StatusCode code) {
    if (m_ == nullptr || done_) return;
    done_ = true;
    m_->RecordRpc(method_, code,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

 private:
  ServerMetrics* m_;
  std::string method_;
  std::chrono::steady_clock::time_point start_;
  bool done_ = false;
};

}  // namespace quarry::server
