// quarry-worker: fills WorkerOptions from flags and runs a worker until SIGINT/SIGTERM.
#include <csignal>
#include <cstdio>

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
  app.add_option("--reconnect-min-ms", o.reconnect_min_ms, "Initial reconnect backoff")
      ->capture_default_str();
  app.add_option("--reconnect-max-ms", o.reconnect_max_ms, "Maximum reconnect backoff")
      ->capture_default_str();
  app.add_flag("--exit-on-disconnect", o.exit_on_disconnect, "Exit when the server goes away "
               "instead of reconnecting");
  CLI11_PARSE(app, argc, argv);

  auto worker = quarry::worker::Worker::Create(o);
  if (!worker.ok()) {
    std::fprintf(stderr, "quarry-worker: %s\n", worker.status().ToString().c_str());
    return 1;
  }
  absl::Status st = (*worker)->Run();
  if (!st.ok()) {
    std::fprintf(stderr, "quarry-worker: %s\n", st.ToString().c_str());
    return 1;
  }
  return 0;
}
