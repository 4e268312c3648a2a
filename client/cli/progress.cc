#include "cli/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace quarry::cli {
namespace {

const char* SeverityName(int s) {
  static const char* kNames[] = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"};
  return (s >= 0 && s <= 4) ? kNames[s] : "LOG";
}

std::string Duration(double s) {
  if (s < 0 || !std::isfinite(s)) return "?";
  if (s < 60) return absl::StrFormat("%.0fs", s);
  if (s < 3600) return absl::StrFormat("%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  return absl::StrFormat("%dh%02dm", static_cast<int>(s) / 3600, (static_cast<int>(s) / 60) % 60);
}

}  // namespace

TerminalProgress::TerminalProgress(bool quiet_stdout, int min_severity)
    : tty_(isatty(STDERR_FILENO) && !quiet_stdout), min_severity_(min_severity) {}

TerminalProgress::~TerminalProgress() { Finish(); }

void TerminalProgress::ClearLine() {
  if (tty_ && line_open_) std::fprintf(stderr, "\r\033[2K");
}

void TerminalProgress::Render(const std::string& stage, int layer_index, int num_layers,
                              double fraction, double eta_seconds, const std::string& message,
                              double read_bps, double write_bps) {
  const int width = 28;
  const int filled = static_cast<int>(std::lround(std::clamp(fraction, 0.0, 1.0) * width));
  std::string bar = std::string(filled, '#') + std::string(width - filled, '.');
  std::string layer = (layer_index >= 0 && num_layers > 0)
                          ? absl::StrFormat(" layer %d/%d", layer_index + 1, num_layers)
                          : "";
  std::string io = (read_bps > 0 || write_bps > 0)
                       ? absl::StrFormat(" in %.0f MB/s out %.0f MB/s", read_bps / 1e6,
                                         write_bps / 1e6)
                       : "";
  std::string line = absl::StrFormat("[%s] %3.0f%% %-9s%s ETA %s%s %s", bar, 100 * fraction, stage,
                                     layer, Duration(eta_seconds), io, message);
  if (line.size() > 118) line.resize(118);
  if (tty_) {
    ClearLine();
    std::fprintf(stderr, "%s", line.c_str());
    std::fflush(stderr);
    line_open_ = true;
    return;
  }
  // Plain output: one line per stage/layer change, at most every 2 s otherwise.
  const auto now = std::chrono::steady_clock::now();
  const std::string key = absl::StrCat(stage, layer);
  if (key == last_line_ && now - last_plain_ < std::chrono::seconds(2)) return;
  last_line_ = key;
  last_plain_ = now;
  std::fprintf(stderr, "%s\n", line.c_str());
}

void TerminalProgress::Log(int severity, const std::string& message) {
  if (severity < min_severity_) return;
  ClearLine();
  std::fprintf(stderr, "%-8s %s\n", SeverityName(severity), message.c_str());
  line_open_ = false;
  std::fflush(stderr);
}

void TerminalProgress::OnProgress(const ProgressEvent& e) {
  Render(e.stage, e.layer_index, e.num_layers, e.fraction, e.eta_seconds, e.message,
         e.read_bytes_per_second, e.write_bytes_per_second);
}

void TerminalProgress::OnLog(LogSeverity severity, absl::string_view message) {
  Log(static_cast<int>(severity), std::string(message));
}

void TerminalProgress::Finish() {
  if (tty_ && line_open_) std::fprintf(stderr, "\n");
  line_open_ = false;
}

}  // namespace quarry::cli
