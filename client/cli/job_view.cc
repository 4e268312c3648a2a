#include "cli/job_view.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <ctime>

#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "quarry/runtime_compat.h"

namespace quarry::cli {

namespace v1 = ::quarry::v1;

std::string SeverityName(int s) {
  static const char* kNames[] = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"};
  return s >= 0 && s <= 4 ? kNames[s] : absl::StrCat("LEVEL", s);
}

std::string ShortState(v1::JobState s) {
  switch (s) {
    case v1::JOB_STATE_QUEUED: return "queued";
    case v1::JOB_STATE_ASSIGNED: return "assigned";
    case v1::JOB_STATE_RUNNING: return "running";
    case v1::JOB_STATE_CANCELLING: return "cancelling";
    case v1::JOB_STATE_SUCCEEDED: return "succeeded";
    case v1::JOB_STATE_FAILED: return "failed";
    case v1::JOB_STATE_CANCELLED: return "cancelled";
    default: return "unknown";
  }
}

std::string ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

std::string FormatTime(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string FormatDuration(double seconds) {
  if (seconds < 0 || std::isnan(seconds)) return "?";
  long s = std::lround(seconds);
  if (s >= 3600) return absl::StrFormat("%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

std::string FormatBytes(uint64_t b) {
  if (b >= (1ull << 30)) return absl::StrFormat("%.1f GiB", b / double(1ull << 30));
  if (b >= (1ull << 20)) return absl::StrFormat("%.1f MiB", b / double(1ull << 20));
  if (b >= (1ull << 10)) return absl::StrFormat("%.1f KiB", b / double(1ull << 10));
  return absl::StrCat(b, " B");
}

std::string FormatReportRuntimes(const std::string& report_json) {
  nlohmann::json j = nlohmann::json::parse(report_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return "runtimes   (report.json is not a JSON object)\n";
  if (!j.contains("runtimes") || !j["runtimes"].is_array() || j["runtimes"].empty()) return "";
  auto v = RuntimeVerdictsFromJson(j["runtimes"].dump());
  if (!v.ok()) return absl::StrCat("runtimes   (", v.status().message(), ")\n");
  std::string out = "runtimes   (from report.json)\n";
  const std::string text = FormatRuntimeVerdicts(*v);
  for (absl::string_view line : absl::StrSplit(text, '\n'))
    if (!line.empty()) absl::StrAppend(&out, "  ", line, "\n");
  return out;
}

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Fit(std::string s, int width) {
  if (width > 4 && static_cast<int>(s.size()) > width) {
    s.resize(width - 3);
    s += "...";
  }
  return s;
}

}  // namespace

JobView::JobView(bool json, int log_lines)
    : json_(json), tty_(!json && ::isatty(STDERR_FILENO)), log_lines_(log_lines) {
  winsize ws{};
  if (tty_ && ::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) width_ = ws.ws_col;
}

JobView::~JobView() { Close(); }

std::string JobView::BarLine() const {
  const v1::Progress& p = progress_;
  const int bar = 24;
  double f = std::min(1.0, std::max(0.0, p.fraction()));
  if (state_ == v1::JOB_STATE_SUCCEEDED) f = 1.0;
  int filled = static_cast<int>(f * bar);
  std::string line = absl::StrCat("[", std::string(filled, '#'), std::string(bar - filled, '.'),
                                  "] ", absl::StrFormat("%3d%%", static_cast<int>(f * 100)), "  ",
                                  ShortState(state_));
  if (!p.stage().empty()) absl::StrAppend(&line, "  ", p.stage());
  if (p.num_layers() > 0 && p.layer_index() >= 0)
    absl::StrAppend(&line, "  layer ", p.layer_index() + 1, "/", p.num_layers());
  if (p.elapsed_seconds() > 0) absl::StrAppend(&line, "  elapsed ", FormatDuration(p.elapsed_seconds()));
  if (p.eta_seconds() >= 0 && state_ == v1::JOB_STATE_RUNNING)
    absl::StrAppend(&line, "  ETA ", FormatDuration(p.eta_seconds()));
  if (p.read_bytes_per_second() > 0 || p.write_bytes_per_second() > 0)
    absl::StrAppend(&line, absl::StrFormat("  in %.0f MB/s out %.0f MB/s",
                                           p.read_bytes_per_second() / 1e6,
                                           p.write_bytes_per_second() / 1e6));
  if (!p.message().empty()) absl::StrAppend(&line, "  ", p.message());
  return line;
}

void JobView::PrintLine(const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); }

void JobView::Redraw(bool force) {
  if (!tty_ || closed_) return;
  const int64_t now = NowMs();
  if (!force && now - last_draw_ms_ < 100) return;
  last_draw_ms_ = now;
  std::string out;
  if (drawn_ > 0) absl::StrAppend(&out, "\r\x1b[", drawn_, "A\x1b[J");
  absl::StrAppend(&out, Fit(BarLine(), width_ - 1), "\n");
  for (const std::string& l : logs_) absl::StrAppend(&out, Fit(l, width_ - 1), "\n");
  drawn_ = 1 + static_cast<int>(logs_.size());
  std::fputs(out.c_str(), stderr);
  std::fflush(stderr);
}

void JobView::OnEvent(const v1::JobEvent& e) {
  job_id_ = e.job_id();
  if (json_) {
    std::printf("%s\n", ToJson(e).c_str());
    std::fflush(stdout);
    if (e.has_state()) state_ = e.state().state();
    return;
  }
  switch (e.payload_case()) {
    case v1::JobEvent::kState: {
      state_ = e.state().state();
      reason_ = e.state().reason();
      if (!e.state().worker_id().empty()) worker_ = e.state().worker_id();
      std::string line = absl::StrCat(FormatTime(e.time_unix_ms()), "  ", ShortState(state_),
                                      e.state().reason().empty() ? "" : ": ", e.state().reason());
      if (tty_) {
        logs_.push_back(line);
      } else {
        PrintLine(line);
      }
      break;
    }
    case v1::JobEvent::kProgress: {
      progress_ = e.progress();
      if (!tty_) {
        // Plain output: one line per stage/layer change.
        std::string key = absl::StrCat(progress_.stage(), "/", progress_.layer_index());
        if (key != last_plain_progress_) {
          last_plain_progress_ = key;
          PrintLine(BarLine());
        }
      }
      break;
    }
    case v1::JobEvent::kLog: {
      std::string line = absl::StrCat(FormatTime(e.time_unix_ms()), "  ",
                                      SeverityName(e.log().severity()), "  ", e.log().source(),
                                      ": ", e.log().message());
      if (tty_) {
        logs_.push_back(line);
      } else {
        PrintLine(line);
      }
      break;
    }
    case v1::JobEvent::kArtifact: {
      std::string line = absl::StrCat("artifact ", e.artifact().name(), " (",
                                      FormatBytes(e.artifact().size()), ")");
      if (tty_) {
        logs_.push_back(line);
      } else {
        PrintLine(line);
      }
      break;
    }
    case v1::JobEvent::kResult: {
      const v1::JobResult& r = e.result();
      std::string line = absl::StrCat("result: ", FormatDuration(r.duration_seconds()),
                                      ", peak RSS ", FormatBytes(r.peak_rss_bytes()));
      if (r.perplexity_quantized() > 0)
        absl::StrAppend(&line, absl::StrFormat(", perplexity %.4f (float %.4f)",
                                               r.perplexity_quantized(), r.perplexity_float()));
      if (tty_) {
        logs_.push_back(line);
      } else {
        PrintLine(line);
      }
      break;
    }
    default:
      break;
  }
  while (logs_.size() > log_lines_) logs_.pop_front();
  Redraw(e.has_state());
}

void JobView::Close() {
  if (closed_) return;
  Redraw(true);
  closed_ = true;
  if (!json_ && !job_id_.empty() && state_ != v1::JOB_STATE_UNSPECIFIED)
    PrintLine(absl::StrCat("job ", job_id_, ": ", ShortState(state_),
                           reason_.empty() ? "" : absl::StrCat(" (", reason_, ")")));
}

}  // namespace quarry::cli
