// The worker: one Connect stream to the server at a time (reconnecting with backoff), one job at
// a time on its own thread.
//
// Threads
//  - Run()'s thread: connects, says hello, then reads ServerMessages (assignments, cancels).
//  - a writer thread per stream: sends heartbeats and drains the outbox.
//  - a job thread per job: inputs -> core's pipeline -> artifact uploads -> completion.
// The outbox outlives streams: what a job reports while the server is unreachable is sent after
// the worker reconnects, if the server says the job continues (HelloAck.resume_job); otherwise
// the job is abandoned (stopped at the next layer, nothing more reported).
// A job is "current" until its completion was written to a stream; while current, every hello
// names it, so a server that restarted can adopt it.
// Drain (SIGTERM): a WorkerDrain message, then the job runs on until its completion is written
// or drain_timeout passes; then a JobCompletion{handed_back} gives it back, and the worker stops.
// A broken stream while draining stops the worker at once (no reconnect).
#include "quarry/worker/worker.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "job_options.h"
#include "quarry/worker/job_runner.h"
#include "quarry/client/grpc_status.h"
#include "quarry/client/security.h"
#include "quarry/v1/worker.grpc.pb.h"
#include "system_info.h"
#include <openssl/evp.h>

namespace quarry::worker {

namespace v1 = ::quarry::v1;

absl::Status ValidateDevice(const std::string& device) {
  if (device == "cpu") return absl::OkStatus();
  for (const char* prefix : {"cuda:", "hip:"}) {
    if (absl::StartsWith(device, prefix)) {
      std::string idx = device.substr(std::string(prefix).size());
      if (!idx.empty() && idx.find_first_not_of("0123456789") == std::string::npos)
        return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--device '", device, "': expected cpu, cuda:N or hip:N"));
}

namespace {

constexpr size_t kChunkBytes = 1 << 20;
constexpr int kProgressIntervalMs = 200;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::StatusOr<std::string> Sha256File(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", path, "'"));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::string buf(kChunkBytes, '\0');
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  return hex;
}

// One job and what the threads share about it.
struct Job {
  v1::JobAssignment assignment;
  std::atomic<bool> cancel_requested{false};  // the server asked to cancel
  std::atomic<bool> abandoned{false};         // the server gave it up / the worker stops
  bool checkpoints_failed = false;  // a layer checkpoint did not upload: later ones are useless
  std::thread thread;
  bool stopped() const { return cancel_requested || abandoned; }
};

class WorkerImpl;

// Core's callbacks, forwarded to the outbox (progress throttled, logs filtered by level).
class Observer final : public JobObserver {
 public:
  Observer(WorkerImpl* w, std::shared_ptr<Job> job) : w_(w), job_(std::move(job)) {}
  void OnProgress(const ProgressEvent& e) override;
  void OnLog(LogSeverity severity, absl::string_view message) override;
  bool IsCancelled() override { return job_->stopped(); }
  void OnLayerCheckpoint(int layer, const std::string& dir,
                         const std::vector<std::string>& files) override;

 private:
  WorkerImpl* w_;
  std::shared_ptr<Job> job_;
  std::string last_stage_;
  int last_layer_ = -2;
  int64_t last_sent_ms_ = 0;
};

class WorkerImpl final : public Worker {
 public:
  WorkerImpl(WorkerOptions options, std::unique_ptr<JobRunner> runner)
      : options_(std::move(options)), runner_(std::move(runner)) {
    if (options_.worker_id.empty())
      options_.worker_id = absl::StrCat(HostName(), ":", ::getpid());
    if (options_.work_dir.empty())
      options_.work_dir = (std::filesystem::temp_directory_path() /
                           absl::StrCat("quarry-worker-", ::getpid()))
                              .string();
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    client::ApplyChannelArgs(options_.security, &args);
    auto creds = client::MakeChannelCredentials(options_.security);
    // Create() checked the credentials; a file that vanished since gets a channel that fails
    // every call with the reason.
    channel_ = grpc::CreateCustomChannel(
        options_.server, creds.ok() ? *creds : grpc::InsecureChannelCredentials(), args);
    stub_ = v1::WorkerService::NewStub(channel_);
  }

  ~WorkerImpl() override {
    Stop();
    std::shared_ptr<Job> job;
    {
      absl::MutexLock lock(&mu_);
      job = current_;
    }
    if (job && job->thread.joinable()) job->thread.join();
    for (auto& t : finished_threads_)
      if (t.joinable()) t.join();
  }

  absl::Status Run() override {
    std::error_code ec;
    std::filesystem::create_directories(options_.work_dir, ec);
    if (ec)
      return absl::InvalidArgumentError(
          absl::StrCat("--work-dir '", options_.work_dir, "': ", ec.message()));
    int backoff = options_.reconnect_min_ms;
    while (!stopping()) {
      bool established = false;
      absl::Status st = Session(&established);
      if (stopping()) break;
      if (draining()) {
        Log(absl::StrCat("disconnected while draining (", st.ToString(), "); not reconnecting"));
        break;
      }
      if (established) backoff = options_.reconnect_min_ms;
      Log(absl::StrCat("disconnected from ", options_.server, ": ", st.ToString(),
                       options_.exit_on_disconnect ? "" : absl::StrCat("; reconnecting in ", backoff, " ms")));
      if (options_.exit_on_disconnect) {
        AbandonCurrent();
        return st;
      }
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Milliseconds(backoff));
      backoff = std::min(backoff * 2, options_.reconnect_max_ms);
    }
    AbandonCurrent();
    return absl::OkStatus();
  }

  void Stop() override {
    absl::MutexLock lock(&mu_);
    StopLocked();
  }

  void Drain() override {
    const absl::Time deadline = absl::Now() + absl::Milliseconds(options_.drain_timeout_ms);
    absl::MutexLock lock(&mu_);
    if (stop_ || draining_) return;
    draining_ = true;
    {
      v1::WorkerMessage m;
      m.mutable_drain()->set_deadline_unix_ms(absl::ToUnixMillis(deadline));
      outbox_.push_back({next_outbox_id_++, std::move(m)});
    }
    Log(current_ ? absl::StrCat("draining: job ", current_->assignment.job_id(),
                                " may run for ", options_.drain_timeout_ms,
                                " ms more before it is handed back")
                 : std::string("draining: no job running; stopping"));
    // The writer clears current_ once the job's completion is written.
    auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return current_ == nullptr || stop_ || !session_open_;
    };
    mu_.AwaitWithDeadline(absl::Condition(&settled), deadline);
    if (!settled() && CompletionQueuedLocked(current_->assignment.job_id())) {
      // It finished just now: let the completion go out rather than handing the result back.
      mu_.AwaitWithTimeout(absl::Condition(&settled), absl::Seconds(5));
    }
    if (!settled()) {
      Log(absl::StrCat("drain timeout: handing job ", current_->assignment.job_id(),
                       " back to the server"));
      HandBackLocked(current_->assignment);
      AbandonJobLocked();
    } else if (current_ != nullptr && !stop_) {
      Log(absl::StrCat("the connection broke while draining; job ",
                       current_->assignment.job_id(), " is left to the server"));
    }
    // A clean end of the stream: the writer sends what is queued (the completion or hand-back),
    // then half-closes; the server reads everything before it ends the stream. Cancelling the
    // stream instead could drop those last messages.
    closing_ = true;
    auto closed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !session_open_; };
    mu_.AwaitWithTimeout(absl::Condition(&closed), absl::Seconds(10));
    StopLocked();
  }

  // ----- Used by the job thread and the observer -----
  void Emit(const std::shared_ptr<Job>& job, v1::WorkerJobEvent event) {
    if (job->abandoned) return;
    event.set_job_id(job->assignment.job_id());
    event.set_attempt(job->assignment.attempt());
    v1::WorkerMessage m;
    *m.mutable_event() = std::move(event);
    Enqueue(std::move(m));
  }
  void EmitLog(const std::shared_ptr<Job>& job, int severity, const std::string& message,
               const std::string& source) {
    if (severity < job->assignment.log_severity_level()) return;
    v1::WorkerJobEvent e;
    e.mutable_log()->set_severity(severity);
    e.mutable_log()->set_message(message);
    e.mutable_log()->set_source(source);
    Emit(job, std::move(e));
  }

 private:
  bool stopping() {
    absl::MutexLock lock(&mu_);
    return stop_;
  }
  bool draining() {
    absl::MutexLock lock(&mu_);
    return draining_;
  }
  void StopLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    stop_ = true;
    if (ctx_ != nullptr) ctx_->TryCancel();
    if (current_) current_->abandoned = true;
  }
  // Queues JobCompletion{handed_back} for (job, attempt).
  void HandBackLocked(const v1::JobAssignment& a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    v1::WorkerMessage m;
    m.mutable_completion()->set_job_id(a.job_id());
    m.mutable_completion()->set_attempt(a.attempt());
    m.mutable_completion()->set_handed_back(true);
    outbox_.push_back({next_outbox_id_++, std::move(m)});
  }
  bool CompletionQueuedLocked(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const auto& entry : outbox_)
      if (entry.second.has_completion() && entry.second.completion().job_id() == job_id)
        return true;
    return false;
  }
  // The current job stops at its next layer boundary and reports nothing more; what it queued
  // so far is still sent (unlike AbandonLocked, which drops it).
  void AbandonJobLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!current_) return;
    current_->abandoned = true;
    finished_threads_.push_back(std::move(current_->thread));
    current_.reset();
  }
  void Log(const std::string& msg) {
    std::fprintf(stderr, "quarry-worker %s: %s\n", options_.worker_id.c_str(), msg.c_str());
  }

  void Enqueue(v1::WorkerMessage m) {
    absl::MutexLock lock(&mu_);
    outbox_.push_back({next_outbox_id_++, std::move(m)});
  }

  v1::WorkerHello Hello() {
    v1::WorkerHello h;
    h.set_worker_id(options_.worker_id);
    v1::DeviceInfo* d = h.mutable_device();
    const std::string& dev = options_.device;
    if (dev == "cpu") {
      d->set_kind("cpu");
      d->set_name(CpuModelName());
      d->set_total_memory_bytes(HostMemoryTotalBytes());
      d->set_free_memory_bytes(HostMemoryAvailableBytes());
    } else {
      size_t colon = dev.find(':');
      d->set_kind(dev.substr(0, colon));
      d->set_index(std::stoi(dev.substr(colon + 1)));
      d->set_name(dev);
    }
    if (options_.memory_bytes > 0) {
      d->set_total_memory_bytes(options_.memory_bytes);
      d->set_free_memory_bytes(options_.memory_bytes);
    }
    h.set_host_memory_bytes(dev == "cpu" && options_.memory_bytes > 0 ? options_.memory_bytes
                                                                     : HostMemoryTotalBytes());
    for (const char* c : {"gptq", "qronos", "awq", "smooth", "autosmoothquant", "rotation",
                          "quarot", "int", "fp8", "mx", "bfp"})
      h.add_capabilities(c);
    h.set_version("quarry-worker 0.1.0");
    h.set_shares_filesystem(!options_.fetch_inputs);
    absl::MutexLock lock(&mu_);
    if (current_ && !current_->abandoned) {
      h.set_running_job_id(current_->assignment.job_id());
      h.set_running_attempt(current_->assignment.attempt());
    }
    return h;
  }

  // One stream: hello, ack, then read until it breaks. Returns why it ended.
  absl::Status Session(bool* established) {
    grpc::ClientContext ctx;
    client::AddCallCredentials(options_.security, &ctx);
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return absl::CancelledError("stopping");
      ctx_ = &ctx;
    }
    auto clear_ctx = [&] {
      absl::MutexLock lock(&mu_);
      ctx_ = nullptr;
    };
    auto stream = stub_->Connect(&ctx);
    v1::WorkerMessage hello;
    *hello.mutable_hello() = Hello();
    v1::ServerMessage msg;
    if (!stream->Write(hello) || !stream->Read(&msg) || !msg.has_hello_ack()) {
      // A stream that ended has the server's status (e.g. UNAUTHENTICATED and why); only one
      // still open (no ack as the first message) is cancelled, as that would replace it.
      if (msg.payload_case() != v1::ServerMessage::PAYLOAD_NOT_SET) ctx.TryCancel();
      grpc::Status st = stream->Finish();
      clear_ctx();
      return st.ok() ? absl::UnavailableError("no hello ack") : FromGrpcStatus(st);
    }
    *established = true;
    const int heartbeat_ms = msg.hello_ack().heartbeat_interval_ms() > 0
                                 ? msg.hello_ack().heartbeat_interval_ms()
                                 : 2000;
    {
      absl::MutexLock lock(&mu_);
      if (current_ && !current_->abandoned && !msg.hello_ack().resume_job()) {
        Log(absl::StrCat("the server no longer expects job ", current_->assignment.job_id(),
                         "; abandoning it"));
        AbandonLocked();
      }
      session_open_ = true;
    }
    Log(absl::StrCat("connected to ", options_.server));
    std::thread writer([&] { WriterLoop(stream.get(), &ctx, heartbeat_ms); });
    while (stream->Read(&msg)) {
      if (msg.has_assignment()) {
        StartJob(msg.assignment());
      } else if (msg.has_cancel()) {
        absl::MutexLock lock(&mu_);
        if (current_ && current_->assignment.job_id() == msg.cancel().job_id() &&
            current_->assignment.attempt() == msg.cancel().attempt()) {
          current_->cancel_requested = true;
        }
      }
    }
    {
      absl::MutexLock lock(&mu_);
      session_open_ = false;
    }
    ctx.TryCancel();
    writer.join();
    grpc::Status st = stream->Finish();
    clear_ctx();
    return st.ok() ? absl::UnavailableError("the server closed the stream") : FromGrpcStatus(st);
  }

  void WriterLoop(grpc::ClientReaderWriter<v1::WorkerMessage, v1::ServerMessage>* stream,
                  grpc::ClientContext* ctx, int heartbeat_ms) {
    int64_t next_heartbeat = 0;
    auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !outbox_.empty() || !session_open_ || stop_ || closing_;
    };
    for (;;) {
      v1::WorkerMessage m;
      uint64_t id = 0;
      bool heartbeat = false;
      {
        absl::MutexLock lock(&mu_);
        int64_t wait = next_heartbeat - NowMs();
        if (wait > 0)
          mu_.AwaitWithTimeout(absl::Condition(&has_work), absl::Milliseconds(wait));
        if (!session_open_ || stop_) return;
        if (closing_ && outbox_.empty()) break;  // drained: half-close below
        if (NowMs() >= next_heartbeat && !closing_) {
          heartbeat = true;
        } else if (!outbox_.empty()) {
          id = outbox_.front().first;
          m = outbox_.front().second;
        } else {
          continue;
        }
      }
      if (heartbeat) {
        v1::WorkerMessage hb;
        hb.mutable_heartbeat()->set_time_unix_ms(NowMs());
        hb.mutable_heartbeat()->set_rss_bytes(ProcessRssBytes());
        if (!stream->Write(hb)) break;
        next_heartbeat = NowMs() + heartbeat_ms;
        continue;
      }
      if (!stream->Write(m)) break;
      absl::MutexLock lock(&mu_);
      // By id: the outbox may have been filtered (an abandoned job) while writing.
      for (auto it = outbox_.begin(); it != outbox_.end(); ++it) {
        if (it->first == id) {
          outbox_.erase(it);
          break;
        }
      }
      if (m.has_completion() && current_ &&
          current_->assignment.job_id() == m.completion().job_id() &&
          current_->assignment.attempt() == m.completion().attempt()) {
        // Reported: the job is no longer ours to name in a hello.
        finished_threads_.push_back(std::move(current_->thread));
        current_.reset();
      }
    }
    bool half_close = false;
    {
      absl::MutexLock lock(&mu_);
      half_close = closing_ && outbox_.empty() && session_open_ && !stop_;
    }
    // Draining: the server ends the stream once it has read everything; otherwise a failed
    // write: make the reader's Read fail too.
    if (!half_close || !stream->WritesDone()) ctx->TryCancel();
  }

  // REQUIRES: mu_ held.
  void AbandonLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!current_) return;
    current_->abandoned = true;
    const std::string id = current_->assignment.job_id();
    std::deque<std::pair<uint64_t, v1::WorkerMessage>> keep;
    for (auto& entry : outbox_) {
      const v1::WorkerMessage& m = entry.second;
      const bool mine = (m.has_event() && m.event().job_id() == id) ||
                        (m.has_completion() && m.completion().job_id() == id);
      if (!mine) keep.push_back(std::move(entry));
    }
    outbox_.swap(keep);
    finished_threads_.push_back(std::move(current_->thread));
    current_.reset();
  }
  void AbandonCurrent() {
    absl::MutexLock lock(&mu_);
    AbandonLocked();
  }

  void StartJob(const v1::JobAssignment& a) {
    std::vector<std::thread> to_join;
    {
      absl::MutexLock lock(&mu_);
      if (draining_) {
        // Sent before the server read our WorkerDrain: give it back unstarted.
        Log(absl::StrCat("draining: handing back job ", a.job_id(), " unstarted"));
        HandBackLocked(a);
        return;
      }
      if (current_) {
        Log(absl::StrCat("the server assigned job ", a.job_id(), " while job ",
                         current_->assignment.job_id(), " is current; abandoning the latter"));
        AbandonLocked();
      }
      to_join.swap(finished_threads_);
    }
    // Earlier jobs' threads have finished or stop at their next layer boundary.
    for (auto& t : to_join)
      if (t.joinable()) t.join();
    auto job = std::make_shared<Job>();
    job->assignment = a;
    absl::MutexLock lock(&mu_);
    current_ = job;
    job->thread = std::thread([this, job] { RunJob(job); });
  }

  // The job thread.
  void RunJob(std::shared_ptr<Job> job) {
    const v1::JobAssignment& a = job->assignment;
    const std::string dir =
        absl::StrCat(options_.work_dir, "/", a.job_id(), "-", a.attempt());
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    std::filesystem::create_directories(dir + "/out", ec);
    {
      v1::WorkerJobEvent started;
      started.set_started(true);
      Emit(job, std::move(started));
    }
    EmitLog(job, 1,
            absl::StrCat("worker ", options_.worker_id, " runs attempt ", a.attempt(), " on ",
                         options_.device),
            "worker");
    v1::JobCompletion c;
    c.set_job_id(a.job_id());
    c.set_attempt(a.attempt());
    absl::Status st = Execute(job, dir, &c);
    if (!options_.keep_job_dirs) std::filesystem::remove_all(dir, ec);
    if (job->abandoned) return;
    if (st.ok()) {
      c.set_success(true);
    } else if (st.code() == absl::StatusCode::kCancelled && job->cancel_requested) {
      c.set_cancelled(true);
      EmitLog(job, 1, "stopped after a cancel request", "worker");
    } else {
      c.set_error(std::string(st.message()));
      EmitLog(job, 3, absl::StrCat("job failed: ", st.ToString()), "worker");
    }
    v1::WorkerMessage m;
    *m.mutable_completion() = c;
    Enqueue(std::move(m));
  }

  absl::Status Execute(const std::shared_ptr<Job>& job, const std::string& dir,
                       v1::JobCompletion* completion) {
    const v1::JobAssignment& a = job->assignment;
    auto inputs = LocalInputsFor(job, dir);
    if (!inputs.ok()) return inputs.status();
    std::vector<std::string> warnings;
    auto options = BuildQuantizeOptions(a, *inputs, dir + "/out", options_.device,
                                        options_.threads, &warnings);
    if (!options.ok()) return options.status();
    if (options_.layer_checkpoints) {
      options->checkpoint_dir = dir + "/checkpoints";
      if (a.resume_checkpoints_size() > 0 && FetchCheckpoints(job, dir + "/resume"))
        options->resume_dir = dir + "/resume";
    }
    for (const std::string& w : warnings) EmitLog(job, 2, w, "worker");
    EmitLog(job, 0, absl::StrCat("options: ", DescribeOptions(*options)), "worker");
    if (job->stopped()) return absl::CancelledError("cancelled before it started");
    Observer observer(this, job);
    auto result = runner_->Run(*options, &observer);
    if (!result.ok()) return result.status();
    if (job->stopped()) return absl::CancelledError("cancelled");
    {
      v1::WorkerJobEvent e;
      v1::JobResult* r = e.mutable_result();
      r->set_perplexity_float(result->perplexity_float.value_or(0));
      r->set_perplexity_quantized(result->perplexity_quantized.value_or(0));
      r->set_duration_seconds(result->seconds);
      r->set_peak_rss_bytes(result->peak_rss_bytes);
      Emit(job, std::move(e));
    }
    // Every file the pipeline wrote (its list, else the output directory's contents).
    std::vector<std::string> files = result->files;
    if (files.empty()) {
      for (auto it = std::filesystem::recursive_directory_iterator(dir + "/out");
           it != std::filesystem::recursive_directory_iterator(); ++it)
        if (it->is_regular_file())
          files.push_back(std::filesystem::relative(it->path(), dir + "/out").generic_string());
    }
    std::sort(files.begin(), files.end());
    for (const std::string& name : files) {
      auto info = UploadArtifact(job, name, dir + "/out/" + name);
      if (!info.ok()) return Annotate(info.status(), absl::StrCat("uploading '", name, "'"));
      *completion->add_artifacts() = *info;
    }
    EmitLog(job, 1, absl::StrCat("uploaded ", files.size(), " artifacts"), "worker");
    return absl::OkStatus();
  }

  // The checkpoints the assignment lists, into `into` (sha256 verified). False (and a warning)
  // when any is missing: the job then starts at layer 0.
  bool FetchCheckpoints(const std::shared_ptr<Job>& job, const std::string& into) {
    const v1::JobAssignment& a = job->assignment;
    uint64_t bytes = 0;
    std::set<int> attempts;
    for (const v1::CheckpointFile& f : a.resume_checkpoints()) {
      grpc::ClientContext ctx;
      client::AddCallCredentials(options_.security, &ctx);
      v1::FetchInputRequest req;
      req.set_kind("checkpoint");
      req.set_id(a.job_id());
      req.set_relative_path(absl::StrCat(f.attempt(), "/", f.name()));
      req.set_job_attempt(a.attempt());
      absl::Status st = FetchTo(job, &ctx, req, into);
      if (st.ok()) {
        auto sha = Sha256File(into + "/" + f.name());
        if (!sha.ok() || *sha != f.sha256())
          st = absl::DataLossError(absl::StrCat("'", f.name(), "' does not match its sha256"));
      }
      if (!st.ok()) {
        EmitLog(job, 2, absl::StrCat("cannot fetch checkpoint '", f.name(), "' of attempt ",
                                     f.attempt(), " (", st.message(), "); starting at layer 0"),
                "worker");
        return false;
      }
      bytes += f.size();
      attempts.insert(f.attempt());
    }
    EmitLog(job, 1, absl::StrCat("fetched ", a.resume_checkpoints_size(), " checkpoint files (",
                                 bytes, " bytes) of attempt(s) ", absl::StrJoin(attempts, ","),
                                 " to resume from"),
            "worker");
    return true;
  }

 public:
  // Observer::OnLayerCheckpoint: uploads the layer's checkpoint files (the commit record last)
  // as artifacts "checkpoints/<name>", then removes them here. A failed upload is a warning:
  // the job goes on, only a later resume loses that layer.
  void UploadCheckpoint(const std::shared_ptr<Job>& job, int layer, const std::string& dir,
                        const std::vector<std::string>& files) {
    // Resume needs layers 0..k-1 without a gap: after one failed layer the rest are not sent.
    for (const std::string& name : files) {
      if (job->checkpoints_failed) break;
      auto info = UploadArtifact(job, absl::StrCat("checkpoints/", name), dir + "/" + name);
      if (!info.ok()) {
        job->checkpoints_failed = true;
        if (!job->stopped())
          EmitLog(job, 2, absl::StrCat("checkpoint of layer ", layer, " not uploaded (",
                                       info.status().message(), "); no more layer checkpoints "
                                       "for this attempt"),
                  "worker");
      }
    }
    std::error_code ec;
    for (const std::string& name : files) std::filesystem::remove(dir + "/" + name, ec);
  }

 private:
  static absl::Status Annotate(const absl::Status& s, const std::string& what) {
    return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
  }

  // Paths this worker can read: the server's resolved paths when visible here, otherwise the
  // uploaded files fetched over FetchInput into the job directory.
  absl::StatusOr<LocalInputs> LocalInputsFor(const std::shared_ptr<Job>& job,
                                             const std::string& dir) {
    const v1::JobAssignment& a = job->assignment;
    LocalInputs in;
    std::error_code ec;
    in.model_dir = a.model_path();
    const bool uploaded_model =
        a.spec().model().source_case() == v1::ModelSource::kUploadedModelId;
    if ((options_.fetch_inputs && uploaded_model) ||
        !std::filesystem::is_directory(in.model_dir, ec)) {
      if (a.spec().model().source_case() != v1::ModelSource::kUploadedModelId)
        return absl::FailedPreconditionError(absl::StrCat(
            "model directory '", in.model_dir, "' is not visible on worker ", options_.worker_id));
      in.model_dir = dir + "/model";
      if (absl::Status st = Fetch(job, "model", a.spec().model().uploaded_model_id(), in.model_dir);
          !st.ok())
        return st;
    }
    auto one_file = [&](const std::string& path, const std::string& upload_id,
                        const std::string& what) -> absl::StatusOr<std::string> {
      if (path.empty()) return path;
      if (std::filesystem::is_regular_file(path, ec) && !(options_.fetch_inputs && !upload_id.empty()))
        return path;
      if (upload_id.empty())
        return absl::FailedPreconditionError(
            absl::StrCat(what, " '", path, "' is not visible on worker ", options_.worker_id));
      std::string into = absl::StrCat(dir, "/", what);
      if (absl::Status st = Fetch(job, "dataset", upload_id, into); !st.ok()) return st;
      return absl::StrCat(into, "/", std::filesystem::path(path).filename().string());
    };
    const v1::JobSpec& spec = a.spec();
    auto calib = one_file(a.calibration_path(),
                          spec.calibration().source_case() == v1::CalibrationData::kUploadedDatasetId
                              ? spec.calibration().uploaded_dataset_id()
                              : "",
                          "calibration");
    if (!calib.ok()) return calib.status();
    in.calibration_path = *calib;
    auto eval = one_file(a.eval_path(),
                         spec.eval().source_case() == v1::EvalOptions::kUploadedDatasetId
                             ? spec.eval().uploaded_dataset_id()
                             : "",
                         "eval");
    if (!eval.ok()) return eval.status();
    in.eval_path = *eval;
    return in;
  }

  absl::Status Fetch(const std::shared_ptr<Job>& job, const std::string& kind,
                     const std::string& id, const std::string& into) {
    EmitLog(job, 1, absl::StrCat("fetching ", kind, " ", id, " from the server"), "worker");
    grpc::ClientContext ctx;
    client::AddCallCredentials(options_.security, &ctx);
    v1::FetchInputRequest req;
    req.set_kind(kind);
    req.set_id(id);
    return FetchTo(job, &ctx, req, into);
  }

  // Streams FetchInput(req) into files under `into` (by chunk name).
  absl::Status FetchTo(const std::shared_ptr<Job>& job, grpc::ClientContext* ctx_ptr,
                       const v1::FetchInputRequest& req, const std::string& into) {
    grpc::ClientContext& ctx = *ctx_ptr;
    auto reader = stub_->FetchInput(&ctx, req);
    v1::ArtifactChunk chunk;
    std::ofstream out;
    std::string current;
    while (reader->Read(&chunk)) {
      if (chunk.name() != current) {
        current = chunk.name();
        if (current.empty() || current.front() == '/' || absl::StrContains(current, ".."))
          return absl::DataLossError(absl::StrCat("bad input file name '", current, "'"));
        std::filesystem::path p = std::filesystem::path(into) / current;
        std::filesystem::create_directories(p.parent_path());
        out = std::ofstream(p, std::ios::binary | std::ios::trunc);
      }
      out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
      if (job->stopped()) ctx.TryCancel();
    }
    grpc::Status st = reader->Finish();
    if (!st.ok()) return FromGrpcStatus(st);
    return absl::OkStatus();
  }

  // Uploads one file, resuming from what the server already holds; retries while the server is
  // unreachable. FAILED_PRECONDITION / NOT_FOUND mean the attempt is no longer current.
  absl::StatusOr<v1::ArtifactInfo> UploadArtifact(const std::shared_ptr<Job>& job,
                                                  const std::string& name,
                                                  const std::string& path) {
    const v1::JobAssignment& a = job->assignment;
    auto sha = Sha256File(path);
    if (!sha.ok()) return sha.status();
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(path, ec);
    if (ec) return absl::NotFoundError(absl::StrCat("'", path, "': ", ec.message()));
    v1::ArtifactInfo info;
    info.set_name(name);
    info.set_size(size);
    info.set_sha256(*sha);
    int backoff = options_.reconnect_min_ms;
    for (int attempt = 0;; ++attempt) {
      if (job->abandoned) return absl::CancelledError("abandoned");
      absl::Status st = UploadOnce(a, info, path);
      if (st.ok()) return info;
      if (st.code() != absl::StatusCode::kUnavailable &&
          st.code() != absl::StatusCode::kDeadlineExceeded &&
          st.code() != absl::StatusCode::kAborted && st.code() != absl::StatusCode::kDataLoss &&
          st.code() != absl::StatusCode::kInternal)
        return st;
      if (attempt >= 1000) return st;
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Milliseconds(backoff));
      backoff = std::min(backoff * 2, options_.reconnect_max_ms);
    }
  }

  absl::Status UploadOnce(const v1::JobAssignment& a, const v1::ArtifactInfo& info,
                          const std::string& path) {
    uint64_t offset = 0;
    {
      grpc::ClientContext ctx;
      client::AddCallCredentials(options_.security, &ctx);
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      v1::ArtifactUploadStatusRequest req;
      req.set_job_id(a.job_id());
      req.set_attempt(a.attempt());
      req.set_name(info.name());
      v1::ArtifactUploadResponse resp;
      grpc::Status st = stub_->ArtifactUploadStatus(&ctx, req, &resp);
      if (!st.ok()) return FromGrpcStatus(st);
      if (resp.complete() && resp.sha256() == info.sha256()) return absl::OkStatus();
      if (!resp.complete() && resp.received_bytes() <= info.size()) offset = resp.received_bytes();
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", path, "'"));
    in.seekg(static_cast<std::streamoff>(offset));
    grpc::ClientContext ctx;
    client::AddCallCredentials(options_.security, &ctx);
    v1::ArtifactUploadResponse resp;
    auto writer = stub_->UploadArtifact(&ctx, &resp);
    std::string buf(kChunkBytes, '\0');
    for (;;) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      const size_t n = static_cast<size_t>(in.gcount());
      v1::ArtifactUploadChunk chunk;
      chunk.set_job_id(a.job_id());
      chunk.set_attempt(a.attempt());
      chunk.set_name(info.name());
      chunk.set_offset(offset);
      chunk.set_data(buf.data(), n);
      chunk.set_total_size(info.size());
      offset += n;
      const bool last = offset >= info.size();
      if (last) {
        chunk.set_last(true);
        chunk.set_sha256(info.sha256());
      }
      if (!writer->Write(chunk)) break;
      if (last) break;
      if (n == 0) return absl::DataLossError(absl::StrCat("'", path, "' shrank while uploading"));
    }
    writer->WritesDone();
    grpc::Status st = writer->Finish();
    if (!st.ok()) return FromGrpcStatus(st);
    if (!resp.complete() || resp.sha256() != info.sha256())
      return absl::UnavailableError(absl::StrCat("upload of '", info.name(), "' incomplete at ",
                                                 resp.received_bytes(), " bytes"));
    return absl::OkStatus();
  }

  WorkerOptions options_;
  std::unique_ptr<JobRunner> runner_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;  // Drain() was called: take no new job
  bool closing_ ABSL_GUARDED_BY(mu_) = false;   // draining is done: half-close when sent
  grpc::ClientContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;  // the open stream's, for Stop()
  bool session_open_ ABSL_GUARDED_BY(mu_) = false;
  // Messages for the server, oldest first, each with an id; they survive broken streams.
  std::deque<std::pair<uint64_t, v1::WorkerMessage>> outbox_ ABSL_GUARDED_BY(mu_);
  uint64_t next_outbox_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::shared_ptr<Job> current_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> finished_threads_ ABSL_GUARDED_BY(mu_);  // joined later
};

void Observer::OnProgress(const ProgressEvent& e) {
  const int64_t now = NowMs();
  if (e.stage == last_stage_ && e.layer_index == last_layer_ &&
      now - last_sent_ms_ < kProgressIntervalMs)
    return;
  last_stage_ = e.stage;
  last_layer_ = e.layer_index;
  last_sent_ms_ = now;
  v1::WorkerJobEvent ev;
  v1::Progress* p = ev.mutable_progress();
  p->set_stage(e.stage);
  p->set_layer_index(e.layer_index);
  p->set_num_layers(e.num_layers);
  p->set_fraction(e.fraction);
  p->set_elapsed_seconds(e.elapsed_seconds);
  p->set_eta_seconds(e.eta_seconds);
  p->set_read_bytes_per_second(e.read_bytes_per_second);
  p->set_write_bytes_per_second(e.write_bytes_per_second);
  p->set_message(e.message);
  w_->Emit(job_, std::move(ev));
}

void Observer::OnLayerCheckpoint(int layer, const std::string& dir,
                                 const std::vector<std::string>& files) {
  w_->UploadCheckpoint(job_, layer, dir, files);
}

void Observer::OnLog(LogSeverity severity, absl::string_view message) {
  w_->EmitLog(job_, static_cast<int>(severity), std::string(message), "core");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(WorkerOptions options) {
  return CreateWithRunner(std::move(options), NewPipelineRunner());
}

absl::StatusOr<std::unique_ptr<Worker>> Worker::CreateWithRunner(
    WorkerOptions options, std::unique_ptr<JobRunner> runner) {
  if (options.server.empty()) return absl::InvalidArgumentError("--server is required");
  absl::Status st = ValidateDevice(options.device);
  if (!st.ok()) return st;
  if (auto creds = client::MakeChannelCredentials(options.security); !creds.ok())
    return creds.status();
  return std::unique_ptr<Worker>(new WorkerImpl(std::move(options), std::move(runner)));
}

}  // namespace quarry::worker
