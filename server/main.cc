// quarry-server: fills ServerOptions from flags and runs the server until SIGINT/SIGTERM.
#include <csignal>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>

#include "quarry/server/server.h"

int main(int argc, char** argv) {
  quarry::server::ServerOptions o;
  CLI::App app{"quarry-server: accepts quantization jobs over gRPC, persists them, schedules them "
               "onto workers and streams progress, logs and artifacts back to clients."};
  app.add_option("--listen", o.listen, "Address to listen on: host:port (port 0 picks a free "
                 "port) or unix:/path")->capture_default_str();
  app.add_option("--data-dir", o.data_dir, "Directory for the job database, artifacts and "
                 "uploads (created if missing)")->required();
  app.add_option("--model-root", o.model_roots, "Directory that model paths in jobs must lie "
                 "in; repeatable. Paths with '..' or symlinks escaping every root are refused");
  app.add_option("--local-workers", o.local_workers, "Spawn and supervise N quarry-worker "
                 "processes connected over loopback")->capture_default_str();
  app.add_option("--worker-binary", o.worker_binary, "quarry-worker executable for local "
                 "workers (default: next to quarry-server)");
  app.add_option("--local-worker-device", o.local_worker_device, "Device of local workers: "
                 "cpu, cuda:N or hip:N")->capture_default_str();
  app.add_option("--local-worker-threads", o.local_worker_threads, "Compute threads per local "
                 "worker (0 = hardware threads / local workers)")->capture_default_str();
  app.add_option("--local-worker-log", o.local_worker_log, "Append local workers' output to "
                 "this file (default: the server's stderr)");
  app.add_option("--metrics-listen", o.metrics_listen, "host:port of the Prometheus text "
                 "metrics endpoint (empty = disabled)");
  app.add_option("--max-message-bytes", o.max_message_bytes, "Largest gRPC message accepted "
                 "or sent")->capture_default_str();
  app.add_option("--max-concurrent-streams", o.max_concurrent_streams, "Concurrent streams "
                 "per connection")->capture_default_str();
  app.add_option("--max-queued-jobs", o.max_queued_jobs, "Jobs allowed to wait in the queue; "
                 "more are refused with RESOURCE_EXHAUSTED")->capture_default_str();
  app.add_option("--max-upload-bytes", o.max_upload_bytes, "Largest model or dataset upload "
                 "in bytes")->capture_default_str();
  app.add_option("--heartbeat-timeout-ms", o.heartbeat_timeout_ms, "A worker silent this long "
                 "is lost and its job re-queued")->capture_default_str();
  app.add_option("--heartbeat-interval-ms", o.heartbeat_interval_ms, "Heartbeat interval "
                 "asked of workers")->capture_default_str();
  app.add_option("--requeue-grace-ms", o.requeue_grace_ms, "After a restart, how long a "
                 "running job waits for its worker to reconnect before it is re-queued")
      ->capture_default_str();
  app.add_option("--max-attempts", o.max_attempts, "Attempts per job before it fails (worker "
                 "losses count)")->capture_default_str();
  app.add_option("--log-level", o.log_level, "Server log threshold: 0 DEBUG, 1 INFO, "
                 "2 WARNING, 3 ERROR, 4 CRITICAL")->capture_default_str();
  app.add_option("--tls-cert", o.tls_cert, "PEM certificate chain: TLS on the gRPC port and "
                 "the metrics/health endpoint (reloaded on SIGHUP)");
  app.add_option("--tls-key", o.tls_key, "PEM private key of --tls-cert");
  app.add_option("--tls-client-ca", o.tls_client_ca, "PEM CA bundle for client certificates "
                 "(mutual TLS): workers must present a certificate it signed");
  app.add_flag("--allow-insecure", o.allow_insecure, "Serve plaintext on a non-loopback "
               "--listen / --metrics-listen (refused by default)");
  app.add_option("--auth-tokens", o.auth_tokens, "Bearer-token file: one 'sha256:<hex of the "
                 "token> tenant=<name> roles=<role>,... [expires=<RFC 3339>] [id=<name>]' line "
                 "per token; roles submit, read, cancel, admin, worker; reloaded on SIGHUP. "
                 "Without it the server is open (every caller is admin)");
  app.add_option("--tenant-max-jobs", o.tenant_max_jobs, "Per tenant: jobs queued or running "
                 "at once (0 = no limit)")->capture_default_str();
  app.add_option("--tenant-max-upload-bytes", o.tenant_max_upload_bytes, "Per tenant: bytes "
                 "of uploaded models and datasets kept, unfinished uploads included (0 = no "
                 "limit)")->capture_default_str();
  app.add_option("--tenant-max-artifact-bytes", o.tenant_max_artifact_bytes, "Per tenant: "
                 "bytes of job artifacts kept (0 = no limit)")->capture_default_str();
  app.add_option("--tenant-quotas", o.tenant_quotas, "Per-tenant overrides: one 'tenant=<name> "
                 "[max_jobs=N] [max_upload_bytes=N[KMGT]] [max_artifact_bytes=N[KMGT]]' line "
                 "per tenant ('tenant=*' = every tenant); reloaded on SIGHUP");
  app.add_option("--metrics-max-tenants", o.metrics_max_tenants, "Tenant label values in the "
                 "per-tenant metrics; the others are summed as tenant=\"_other\"")
      ->capture_default_str();
  std::string address_file;
  app.add_option("--address-file", address_file, "Once listening, write the address clients "
                 "dial (with the real port) to this file, then a newline (for scripts and tests)");
  CLI11_PARSE(app, argc, argv);

  // Block the termination signals in every thread; one thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = quarry::server::Server::Start(o);
  if (!server.ok()) {
    std::fprintf(stderr, "quarry-server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "quarry-server: listening on %s\n", (*server)->address().c_str());
  if (!(*server)->metrics_address().empty())
    std::fprintf(stderr, "quarry-server: metrics on http://%s/metrics\n",
                 (*server)->metrics_address().c_str());
  if (!address_file.empty()) {
    // Written under a temporary name and renamed, so a reader never sees a partial address.
    std::string tmp = address_file + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr || std::fprintf(f, "%s\n", (*server)->address().c_str()) < 0 ||
        std::fclose(f) != 0 || std::rename(tmp.c_str(), address_file.c_str()) != 0) {
      std::fprintf(stderr, "quarry-server: cannot write --address-file '%s'\n",
                   address_file.c_str());
      (*server)->Shutdown();
      (*server)->Wait();
      return 1;
    }
  }
  // SIGHUP reloads the token file and the TLS files; SIGINT/SIGTERM shut down.
  std::thread waiter([&] {
    for (;;) {
      int sig = 0;
      sigwait(&signals, &sig);
      if (sig == SIGHUP) {
        (*server)->Reload().IgnoreError();  // Reload() reports on stderr and in the audit log
        continue;
      }
      std::fprintf(stderr, "quarry-server: signal %d, shutting down\n", sig);
      (*server)->Shutdown();
      return;
    }
  });
  (*server)->Wait();
  // Wake the signal thread if the server stopped on its own.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  return 0;
}
