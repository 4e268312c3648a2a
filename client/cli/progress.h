// Terminal rendering of job progress for the CLI: a one-line progress bar (stage, layer i/n,
// percent, ETA) redrawn in place on a TTY, with log records printed above it. On a non-TTY (or
// with --json) each progress change is a plain line on stderr, throttled. Also a JobObserver so
// the in-process pipeline can report through it. Not thread-safe: one thread renders.
#pragma once

#include <chrono>
#include <string>

#include "quarry/pipeline.h"

namespace quarry::cli {

class TerminalProgress : public JobObserver {
 public:
  // `min_severity`: log records below it are not printed (0 DEBUG .. 4 CRITICAL).
  TerminalProgress(bool quiet_stdout, int min_severity);
  ~TerminalProgress() override;

  void OnProgress(const ProgressEvent& event) override;
  void OnLog(LogSeverity severity, absl::string_view message) override;

  // Shared by `quarry watch`: the same rendering for events coming from the server.
  void Render(const std::string& stage, int layer_index, int num_layers, double fraction,
              double eta_seconds, const std::string& message, double read_bps = 0,
              double write_bps = 0);
  void Log(int severity, const std::string& message);
  // Ends the progress line.
  void Finish();

 private:
  void ClearLine();
  bool tty_;
  int min_severity_;
  bool line_open_ = false;
  std::string last_line_;
  std::chrono::steady_clock::time_point last_plain_;
};

}  // namespace quarry::cli
