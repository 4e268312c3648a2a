// Renders a job's event stream for a person (a live progress bar with stage, layer i/n and ETA,
// the latest log lines underneath, redrawn in place on a terminal; plain lines otherwise) or for
// a script (one JSON object per event, on stdout). Single-threaded.
#pragma once

#include <cstdio>
#include <deque>
#include <string>

#include "quarry/v1/jobs.pb.h"

namespace quarry::cli {

std::string SeverityName(int severity);  // "DEBUG" .. "CRITICAL"
std::string ShortState(quarry::v1::JobState state);  // "queued", "running", ...
// JSON with the proto field names, every field present.
std::string ToJson(const google::protobuf::Message& message);
// "2026-01-31 12:00:00" (local time) from ms since the epoch; "-" for 0.
std::string FormatTime(int64_t unix_ms);
std::string FormatDuration(double seconds);  // "1:05", "1:02:03"
std::string FormatBytes(uint64_t bytes);
// The "runtimes" verdicts of a job's report.json, as `quarry show` prints them ("" when the
// report has none; an error line when it is not a report).
std::string FormatReportRuntimes(const std::string& report_json);

class JobView {
 public:
  // json: JSON lines on stdout; otherwise human output on stderr (in place when it is a TTY).
  explicit JobView(bool json, int log_lines = 6);
  ~JobView();
  void OnEvent(const quarry::v1::JobEvent& event);
  // The last state seen (UNSPECIFIED before any state event).
  quarry::v1::JobState state() const { return state_; }
  const std::string& reason() const { return reason_; }
  // Clears the live block and prints the final line. Idempotent.
  void Close();

 private:
  void Redraw(bool force);
  void PrintLine(const std::string& line);  // above/below the live block (non-TTY: plain)
  std::string BarLine() const;

  const bool json_;
  const bool tty_;
  const size_t log_lines_;
  int width_ = 100;
  int drawn_ = 0;  // lines of the live block on screen
  int64_t last_draw_ms_ = 0;
  bool closed_ = false;
  quarry::v1::JobState state_ = quarry::v1::JOB_STATE_UNSPECIFIED;
  std::string job_id_, reason_, worker_;
  quarry::v1::Progress progress_;
  std::deque<std::string> logs_;
  std::string last_plain_progress_;
};

}  // namespace quarry::cli
