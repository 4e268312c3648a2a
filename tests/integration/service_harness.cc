#include "service_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace quarry::testing {

namespace fs = std::filesystem;
namespace v1 = ::quarry::v1;

std::string BinaryDir() { return QUARRY_BINARY_DIR; }
std::string TestDataDir() { return QUARRY_TEST_DATA_DIR; }
std::string TinyModel() { return TestDataDir() + "/models/tiny-llama-kjv"; }
std::string CalibrationFile() { return TestDataDir() + "/kjv-calib.jsonl"; }
std::string EvalFile() { return TestDataDir() + "/kjv-eval.txt"; }

TempDir::TempDir(const std::string& tag) {
  static std::mt19937_64 rng{std::random_device{}()};
  path_ = (fs::temp_directory_path() /
           absl::StrCat("quarry_", tag, "_", ::getpid(), "_", rng() % 1000000))
              .string();
  fs::remove_all(path_);
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  if (std::getenv("QUARRY_KEEP_TEST_DIRS") == nullptr) fs::remove_all(path_, ec);
}

std::unique_ptr<Process> Process::Start(const std::vector<std::string>& argv,
                                        const std::string& log_path) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return nullptr;
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
    if (::getppid() != parent) ::_exit(127);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fd);
  if (pid < 0) return nullptr;
  auto p = std::unique_ptr<Process>(new Process());
  p->pid_ = pid;
  p->log_path_ = log_path;
  return p;
}

Process::~Process() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    Wait();
  }
}

void Process::Signal(int sig) {
  if (!reaped_) ::kill(pid_, sig);
}

int Process::Wait() {
  int status = 0;
  if (reaped_) return 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  return status;
}

std::optional<int> Process::WaitFor(std::chrono::milliseconds timeout) {
  if (reaped_) return 0;
  std::optional<int> result;
  AwaitCondition(
      [&] {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
          reaped_ = true;
          result = status;
          return true;
        }
        return false;
      },
      timeout);
  return result;
}

std::string Process::Log() const { return ReadFile(log_path_); }

bool AwaitCondition(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

ServerProcess StartServer(const std::string& data_dir, const std::vector<std::string>& extra,
                          const std::string& listen, const std::string& log_path) {
  ServerProcess s;
  const std::string address_file = data_dir + "/address";
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  fs::remove(address_file, ec);
  std::vector<std::string> argv = {BinaryDir() + "/server/quarry-server", "--listen", listen,
                                   "--data-dir", data_dir, "--address-file", address_file};
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::string log = log_path.empty() ? data_dir + "/server.log" : log_path;
  s.process = Process::Start(argv, log);
  if (!s.process) {
    ADD_FAILURE() << "cannot start quarry-server";
    return s;
  }
  bool up = AwaitCondition(
      [&] {
        if (fs::exists(address_file)) return true;
        return s.process->WaitFor(std::chrono::milliseconds(0)).has_value();  // it died
      },
      std::chrono::seconds(60));
  if (!up || !fs::exists(address_file)) {
    ADD_FAILURE() << "quarry-server did not start; its log:\n" << s.process->Log();
    return s;
  }
  s.address = std::string(absl::StripAsciiWhitespace(ReadFile(address_file)));
  std::string log_text = s.process->Log();
  size_t m = log_text.find("metrics on http://");
  if (m != std::string::npos) {
    size_t start = m + std::string("metrics on http://").size();
    s.metrics_address = log_text.substr(start, log_text.find("/metrics", start) - start);
  }
  return s;
}

std::unique_ptr<Process> StartWorker(const std::string& address, const std::string& worker_id,
                                     const std::string& log_path,
                                     const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {BinaryDir() + "/worker/quarry-worker", "--server", address,
                                   "--worker-id", worker_id, "--threads", "1",
                                   "--reconnect-min-ms", "50", "--reconnect-max-ms", "500"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto p = Process::Start(argv, log_path);
  if (!p) ADD_FAILURE() << "cannot start quarry-worker";
  return p;
}

std::unique_ptr<client::Client> NewClient(const std::string& address, int timeout_ms) {
  client::ClientOptions o;
  o.server = address;
  o.timeout_ms = timeout_ms;
  auto c = client::Client::Create(o);
  EXPECT_TRUE(c.ok()) << c.status();
  return std::move(*c);
}

v1::JobSpec TinyJob(const std::string& preset, int num_samples, int seq_len) {
  v1::JobSpec spec;
  spec.mutable_model()->set_path(TinyModel());
  spec.set_preset(preset);
  spec.mutable_calibration()->set_path(CalibrationFile());
  spec.mutable_calibration()->set_num_samples(num_samples);
  spec.mutable_calibration()->set_seq_len(seq_len);
  spec.mutable_export_options()->set_skip_report(true);
  return spec;
}

v1::JobSpec SlowJob() {
  // Static activation quantization over many long calibration samples: every decoder layer
  // runs all samples through it, so the job lasts long enough to be interrupted mid-way.
  v1::JobSpec spec = TinyJob("int8", 24, 128);
  return spec;
}

std::vector<v1::JobEvent> WatchUntil(client::Client& c, const std::string& job_id,
                                     const std::function<bool(const v1::JobEvent&)>& stop,
                                     uint64_t from_seq) {
  std::vector<v1::JobEvent> events;
  client::WatchOptions w;
  w.job_id = job_id;
  w.from_seq = from_seq;
  absl::Status st = c.WatchJob(w, [&](const v1::JobEvent& e) {
    events.push_back(e);
    return !stop(e);
  });
  EXPECT_TRUE(st.ok()) << st;
  return events;
}

std::vector<v1::JobEvent> WatchAll(client::Client& c, const std::string& job_id) {
  return WatchUntil(c, job_id, [](const v1::JobEvent&) { return false; });
}

v1::JobState WaitForEnd(client::Client& c, const std::string& job_id) {
  WatchAll(c, job_id);
  auto job = c.GetJob(job_id);
  EXPECT_TRUE(job.ok()) << job.status();
  return job.ok() ? job->state() : v1::JOB_STATE_UNSPECIFIED;
}

std::string ScrapeMetrics(const std::string& address) {
  size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port))
    return "";
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  std::string req = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
  (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  size_t body = resp.find("\r\n\r\n");
  return body == std::string::npos ? "" : resp.substr(body + 4);
}

double MetricValue(const std::string& exposition, const std::string& sample) {
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (absl::StartsWith(line, sample + " ")) {
      double v = 0;
      if (absl::SimpleAtod(line.substr(sample.size() + 1), &v)) return v;
    }
  }
  return -1;
}

std::string Sha256OfFile(const std::string& path) { return Sha256Hex(ReadFile(path)); }

std::string Sha256Hex(const std::string& data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), d, &len, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[d[i] >> 4]);
    out.push_back(kHex[d[i] & 15]);
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace quarry::testing
