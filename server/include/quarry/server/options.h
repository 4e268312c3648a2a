// Options of the Quarry server (quarry-server's flags fill this struct; tests fill it directly).
// Every field states its default.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace quarry::server {

struct ServerOptions {
  // Address to listen on: "host:port" (port 0 = pick a free port) or "unix:/path".
  // Default "127.0.0.1:50051".
  std::string listen = "127.0.0.1:50051";
  // Directory for the SQLite database, artifacts and uploads. Created if missing. Required.
  std::string data_dir;
  // Model paths in job requests must resolve (after symlinks) inside one of these roots.
  // Default: empty = any path is refused unless it is an uploaded model.
  std::vector<std::string> model_roots;
  // Number of quarry-worker child processes to spawn and keep alive. Default 0.
  int local_workers = 0;
  // The quarry-worker executable for local workers. Default "" = next to quarry-server.
  std::string worker_binary;
  // Device of local workers ("cpu", "cuda:0", ...). Default "cpu".
  std::string local_worker_device = "cpu";
  // Threads per local worker (intra-op). Default 0 = hardware threads / local_workers.
  int local_worker_threads = 0;
  // File that local workers' stdout/stderr are appended to. Default "" = the server's stderr.
  std::string local_worker_log;
  // Prometheus text endpoint "host:port" (port 0 = pick). Default "" = disabled.
  std::string metrics_listen;
  // Limits.
  int max_message_bytes = 16 << 20;           // default 16 MiB per gRPC message
  int max_concurrent_streams = 256;           // default 256 per connection
  int max_queued_jobs = 10000;                // default 10000 jobs waiting
  uint64_t max_upload_bytes = 256ull << 30;   // default 256 GiB per upload
  // Worker liveness: a worker whose heartbeats stop for this long is considered lost and its
  // job is re-queued. Default 15 s.
  int heartbeat_timeout_ms = 15000;
  // Heartbeat interval requested from workers. Default 2 s.
  int heartbeat_interval_ms = 2000;
  // After a restart, a job that was running stays assigned this long waiting for its worker to
  // reconnect before it is re-queued. Default 30 s.
  int requeue_grace_ms = 30000;
  // A job is attempted at most this many times (worker losses); then it fails. Default 3.
  int max_attempts = 3;
  // Minimum severity of the server's own stderr log (0 DEBUG .. 4 CRITICAL). Default 1.
  int log_level = 1;

  // ----- Security (README "Securing the service") -----
  // PEM certificate chain and private key: TLS on the gRPC port and the metrics/health
  // endpoint. Default "" = plaintext. Both or neither. Reloaded on Reload() (SIGHUP).
  std::string tls_cert;
  std::string tls_key;
  // PEM CA bundle for client certificates (mutual TLS): clients may present one; workers must
  // (WorkerService over TLS is refused without a certificate this CA signed). Needs tls_cert.
  // Default "" = none.
  std::string tls_client_ca;
  // Serve plaintext on a non-loopback address. Default false: without tls_cert, `listen` and
  // `metrics_listen` must be loopback (127.0.0.0/8, ::1, localhost) or a unix socket.
  bool allow_insecure = false;
  // Bearer-token file (one `sha256:<hex> tenant=<name> roles=<r,...> [expires=] [id=]` line per
  // token; reloaded on Reload()). Default "" = open: every caller acts as admin, and the server
  // says so at start and in /healthz.
  std::string auth_tokens;

  // ----- Tenant quotas (README "Quotas and limits"; server/src/auth/tenant_quotas.h) -----
  // Defaults for every tenant, 0 = no limit: jobs queued or running at once, bytes of uploads
  // kept, bytes of job artifacts kept. Default 0 each.
  uint64_t tenant_max_jobs = 0;
  uint64_t tenant_max_upload_bytes = 0;
  uint64_t tenant_max_artifact_bytes = 0;
  // Per-tenant overrides, one `tenant=<name> [max_jobs=N] [max_upload_bytes=N]
  // [max_artifact_bytes=N]` line each (reloaded on Reload()). Default "" = none.
  std::string tenant_quotas;
  // Distinct tenant label values in the per-tenant metrics (the rest are summed as "_other").
  // Default 100.
  int metrics_max_tenants = 100;
};

}  // namespace quarry::server
