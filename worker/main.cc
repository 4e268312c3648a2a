// quarry-worker: fills WorkerOptions from flags and runs a worker until SIGINT/SIGTERM: the first
// signal drains (the job finishes or is handed back within --drain-timeout-ms), a second one
// stops at once.
#include <pthread.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>

#include "quarry/worker/worker.h"

int main(int argc, char** argv) {
  quarry::worker::WorkerOptions o;
  CLI::App app{"quarry-worker: connects to a quarry-server, runs quantization jobs on one "
               "device and streams progress, logs and artifacts back."};
  app.add_option("--server", o.server, "Server address host:port or unix:/path")->required();
  app.add_option("--device", o.device, "Device to run jobs on: cpu, cuda:N or hip:N")
      ->capture_default_str();
  app.add_option("--worker-id", o.worker_id, "Stable id reported to the server (default "
                 "hostname:pid)");
  app.add_option("--work-dir", o.work_dir, "Scratch directory for job inputs and outputs "
                 "(default $TMPDIR/quarry-worker-PID)");
  app.add_option("--threads", o.threads, "Compute threads (0 = all hardware threads)")
      ->capture_default_str();
  app.add_option("--memory-bytes", o.memory_bytes, "Memory offered to jobs (0 = host memory "
                 "for cpu, unlimited for cuda/hip)")->capture_default_str();
  app.add_option("--reconnect-min-ms", o.reconnect_min_ms, "Initial reconnect backoff")
      ->capture_default_str();
  app.add_option("--reconnect-max-ms", o.reconnect_max_ms, "Maximum reconnect backoff")
      ->capture_default_str();
  app.add_flag("--keep-job-dirs", o.keep_job_dirs, "Keep each job's scratch directory (its "
               "exported files under out/) after the job, for inspection");
  app.add_flag("--layer-checkpoints,!--no-layer-checkpoints", o.layer_checkpoints,
               "Upload a checkpoint after every decoder layer so a lost job resumes there on "
               "another worker (default on)");
  app.add_flag("--fetch-inputs", o.fetch_inputs, "Always fetch uploaded models/datasets from "
               "the server instead of reading the server's paths (as on another machine)");
  app.add_option("--drain-timeout-ms", o.drain_timeout_ms, "On SIGTERM/SIGINT, how long the "
                 "running job may go on before it is handed back to the server (keep it below "
                 "the pod's terminationGracePeriodSeconds)")->capture_default_str();
  app.add_flag("--exit-on-disconnect", o.exit_on_disconnect, "Exit when the server goes away "
               "instead of reconnecting");
  std::string token_file;
  app.add_option("--tls-ca", o.security.tls_ca, "PEM file of the CA that signed the server's "
                 "certificate (enables TLS)");
  app.add_option("--tls-cert", o.security.tls_cert, "PEM client certificate chain for mutual "
                 "TLS (required by a server with --tls-client-ca)");
  app.add_option("--tls-key", o.security.tls_key, "PEM private key of --tls-cert");
  app.add_option("--tls-server-name", o.security.tls_server_name, "Name to expect in the "
                 "server's certificate instead of the host of --server");
  app.add_option("--token-file", token_file, "File whose first line is a token with the worker "
                 "role (default $QUARRY_TOKEN; needed when the server has --auth-tokens and no "
                 "--tls-client-ca)");
  CLI11_PARSE(app, argc, argv);
  auto token = quarry::client::ResolveToken(token_file);
  if (!token.ok()) {
    std::fprintf(stderr, "quarry-worker: %s\n", std::string(token.status().message()).c_str());
    return 2;
  }
  o.security.token = *token;

  // Block the termination signals in every thread; one thread waits for them: the first drains
  // the worker (on a thread of its own, as Drain() blocks), a second stops it at once (the job
  // is abandoned, so the server re-queues it).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto worker = quarry::worker::Worker::Create(o);
  if (!worker.ok()) {
    std::fprintf(stderr, "quarry-worker: %s\n", worker.status().ToString().c_str());
    return 2;
  }
  std::atomic<bool> run_returned{false};
  std::thread drainer;
  std::thread waiter([&] {
    for (;;) {
      int sig = 0;
      sigwait(&signals, &sig);
      if (run_returned) return;
      if (!drainer.joinable()) {
        drainer = std::thread([&] { (*worker)->Drain(); });
        continue;
      }
      (*worker)->Stop();
      return;
    }
  });
  absl::Status st = (*worker)->Run();
  run_returned = true;
  pthread_kill(waiter.native_handle(), SIGTERM);  // wake the waiter if Run() ended first
  waiter.join();
  if (drainer.joinable()) drainer.join();
  if (!st.ok()) {
    std::fprintf(stderr, "quarry-worker: %s\n", st.ToString().c_str());
    return 1;
  }
  return 0;
}
