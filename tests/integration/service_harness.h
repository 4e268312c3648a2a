// Test harness for the service: real quarry-server and quarry-worker processes on loopback
// (port 0, or a unix socket in the test's directory), a client, and helpers that wait for
// conditions (a file appearing, an event arriving) with a deadline instead of sleeping.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "quarry/client/client.h"
#include "quarry/v1/jobs.pb.h"

namespace quarry::testing {

std::string BinaryDir();
std::string TestDataDir();
std::string TinyModel();        // tests/data/models/tiny-llama-kjv
std::string CalibrationFile();  // tests/data/kjv-calib.jsonl
std::string EvalFile();         // tests/data/kjv-eval.txt

// A fresh directory for one test, removed when the object is destroyed.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A child process whose stdout/stderr go to a log file. The destructor kills (SIGKILL) and
// reaps it if it still runs.
class Process {
 public:
  static std::unique_ptr<Process> Start(const std::vector<std::string>& argv,
                                        const std::string& log_path);
  ~Process();
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  void Signal(int sig);
  // Blocks until it exits; returns the wait status.
  int Wait();
  // Waits up to `timeout`; nullopt if still running.
  std::optional<int> WaitFor(std::chrono::milliseconds timeout);
  std::string Log() const;  // the log file's contents

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string log_path_;
};

// Polls `condition` until true or `timeout` passes (a condition wait, not a fixed sleep).
bool AwaitCondition(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

struct ServerProcess {
  std::unique_ptr<Process> process;
  std::string address;          // what clients dial
  std::string metrics_address;  // host:port of /metrics ("" when disabled)
};

// Starts quarry-server with --data-dir data_dir --address-file ... and the given extra flags
// (e.g. {"--model-root", dir}); waits until it listens. `listen` defaults to port 0.
ServerProcess StartServer(const std::string& data_dir, const std::vector<std::string>& extra,
                          const std::string& listen = "127.0.0.1:0",
                          const std::string& log_path = "");

// Starts quarry-worker --server address --worker-id id (+ extra flags).
std::unique_ptr<Process> StartWorker(const std::string& address, const std::string& worker_id,
                                     const std::string& log_path,
                                     const std::vector<std::string>& extra = {});

std::unique_ptr<client::Client> NewClient(const std::string& address, int timeout_ms = 30000);

// A small real job on the tiny model (weight-only int4, 2 x 32 calibration tokens).
quarry::v1::JobSpec TinyJob(const std::string& preset = "int4_wo_128", int num_samples = 2,
                            int seq_len = 32);
// A job that runs for a while (so it can be killed or cancelled mid-way).
quarry::v1::JobSpec SlowJob();

// Watches until `stop(event)` is true or the job ends; returns the events seen.
std::vector<quarry::v1::JobEvent> WatchUntil(
    client::Client& c, const std::string& job_id,
    const std::function<bool(const quarry::v1::JobEvent&)>& stop, uint64_t from_seq = 0);
// Watches to the end; returns every event.
std::vector<quarry::v1::JobEvent> WatchAll(client::Client& c, const std::string& job_id);
// The job's final state after watching it to the end.
quarry::v1::JobState WaitForEnd(client::Client& c, const std::string& job_id);

// GET http://address/metrics.
std::string ScrapeMetrics(const std::string& address);
// The value of one sample line ("name{labels}") in an exposition, or -1.
double MetricValue(const std::string& exposition, const std::string& sample);

std::string Sha256OfFile(const std::string& path);
std::string Sha256Hex(const std::string& data);  // lowercase hex
std::string ReadFile(const std::string& path);

}  // namespace quarry::testing
