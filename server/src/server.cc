#include "quarry/server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "auth/audit_log.h"
#include "auth/authenticator.h"
#include "auth/server_tls.h"
#include "auth/tenant_quotas.h"
#include "env/clock.h"
#include "env/file_system.h"
#include "env/process_launcher.h"
#include "jobs/job_manager.h"
#include "jobs/job_states.h"
#include "jobs/spec_resolver.h"
#include "local/local_workers.h"
#include "metrics/http_endpoint.h"
#include "metrics/server_metrics.h"
#include "rpc/services.h"
#include "store/artifact_store.h"
#include "store/job_store.h"

namespace quarry::server {
namespace {

// quarry-worker next to this executable, else ../worker/quarry-worker (the build tree).
std::string DefaultWorkerBinary() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "quarry-worker";
  for (const auto& candidate : {self.parent_path() / "quarry-worker",
                                self.parent_path().parent_path() / "worker" / "quarry-worker"}) {
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "quarry-worker";
}

// Whether `address` ("host:port", "[v6]:port" or "unix:/path") only accepts connections from
// this machine.
bool IsLoopback(const std::string& address) {
  if (absl::StartsWith(address, "unix:")) return true;
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

std::string RandomToken() {
  std::random_device rd;
  std::string out;
  static const char* kHex = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) {
    unsigned v = rd();
    out.push_back(kHex[v & 15]);
    out.push_back(kHex[(v >> 4) & 15]);
  }
  return out;
}

class ServerImpl final : public Server {
 public:
  explicit ServerImpl(ServerOptions options) : options_(std::move(options)) {}
  ~ServerImpl() override {
    Shutdown();
    Wait();
  }

  absl::Status Init() {
    if (options_.data_dir.empty()) return absl::InvalidArgumentError("--data-dir is required");
    std::error_code ec;
    std::filesystem::create_directories(options_.data_dir, ec);
    if (ec)
      return absl::InvalidArgumentError(
          absl::StrCat("cannot create data dir '", options_.data_dir, "': ", ec.message()));
    const std::string data_dir = std::filesystem::absolute(options_.data_dir).string();
    for (const std::string& root : options_.model_roots) {
      if (!std::filesystem::is_directory(root, ec))
        return absl::InvalidArgumentError(
            absl::StrCat("--model-root '", root, "' is not a directory"));
    }

    const bool tls = !options_.tls_cert.empty() || !options_.tls_key.empty();
    if (!options_.tls_client_ca.empty() && !tls)
      return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
    if (!tls && !options_.allow_insecure) {
      for (const auto& [flag, address] :
           {std::pair<std::string, std::string>{"--listen", options_.listen},
            {"--metrics-listen", options_.metrics_listen}}) {
        if (!address.empty() && !IsLoopback(address))
          return absl::InvalidArgumentError(absl::StrCat(
              flag, " ", address, " is not a loopback address: plaintext there needs "
              "--allow-insecure (or give --tls-cert and --tls-key)"));
      }
    }

    auto store = JobStore::Open(data_dir + "/quarry.db");
    if (!store.ok()) return store.status();
    store_ = std::move(*store);
    audit_ = std::make_unique<AuditLog>(store_.get(), RealClock());
    AuthOptions ao;
    ao.token_file = options_.auth_tokens;
    ao.require_worker_cert = !options_.tls_client_ca.empty();
    auto auth = Authenticator::Create(std::move(ao), audit_.get(), RealClock());
    if (!auth.ok()) return auth.status();
    auth_ = std::move(*auth);
    if (tls) {
      auto t = ServerTls::Create({options_.tls_cert, options_.tls_key, options_.tls_client_ca},
                                 data_dir + "/tls");
      if (!t.ok()) return t.status();
      tls_ = std::move(*t);
    }
    if (auth_->open())
      std::fprintf(stderr,
                   "quarry-server: WARNING: no --auth-tokens: the server is open, every caller "
                   "acts as admin of every job\n");
    QuotaOptions qo;
    qo.default_max_jobs = options_.tenant_max_jobs;
    qo.default_max_upload_bytes = options_.tenant_max_upload_bytes;
    qo.default_max_artifact_bytes = options_.tenant_max_artifact_bytes;
    qo.file = options_.tenant_quotas;
    auto quotas = TenantQuotas::Create(std::move(qo));
    if (!quotas.ok()) return quotas.status();
    quotas_ = std::move(*quotas);
    // Clients and workers send uploads in 1 MiB chunks (plus a few fields).
    constexpr int kMinMessageBytes = (1 << 20) + (64 << 10);
    if (options_.max_message_bytes < kMinMessageBytes)
      return absl::InvalidArgumentError(absl::StrCat(
          "--max-message-bytes ", options_.max_message_bytes, " is too small: clients and "
          "workers upload in 1 MiB chunks, so it must be at least ", kMinMessageBytes));
    if (options_.metrics_max_tenants < 1)
      return absl::InvalidArgumentError("--metrics-max-tenants must be at least 1");
    artifacts_ = std::make_unique<ArtifactStore>(data_dir, PosixFileSystem());
    metrics_ = std::make_unique<ServerMetrics>();
    JobManagerOptions mo;
    mo.max_queued_jobs = options_.max_queued_jobs;
    mo.max_attempts = options_.max_attempts;
    mo.heartbeat_timeout_ms = options_.heartbeat_timeout_ms;
    mo.heartbeat_interval_ms = options_.heartbeat_interval_ms;
    mo.requeue_grace_ms = options_.requeue_grace_ms;
    ServerMetrics* m = metrics_.get();
    mo.on_job_finished = [m](v1::JobState state, double seconds) {
      m->jobs_finished.WithLabels({StateName(state)}).Increment();
      if (seconds > 0) m->job_duration.WithLabels({StateName(state)}).Observe(seconds);
    };
    auto manager = JobManager::Create(std::move(mo), store_.get(), artifacts_.get(), RealClock());
    if (!manager.ok()) return manager.status();
    manager_ = std::move(*manager);
    resolver_ = std::make_unique<SpecResolver>(options_.model_roots, store_.get(), artifacts_.get());
    RegisterCollectors();

    ServiceDeps deps;
    deps.manager = manager_.get();
    deps.resolver = resolver_.get();
    deps.store = store_.get();
    deps.artifacts = artifacts_.get();
    deps.metrics = metrics_.get();
    deps.auth = auth_.get();
    deps.audit = audit_.get();
    deps.quotas = quotas_.get();
    deps.max_upload_bytes = options_.max_upload_bytes;
    // Leave room for the chunk's other fields under the message limit.
    deps.chunk_bytes = static_cast<size_t>(
        std::max(4096, std::min(1 << 20, options_.max_message_bytes - 4096)));
    quarry_service_ = NewQuarryService(deps);
    worker_service_ = NewWorkerService(deps);

    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    builder.AddListeningPort(options_.listen,
                             tls_ ? tls_->GrpcCredentials() : grpc::InsecureServerCredentials(),
                             &port_);
    // With TLS, local workers dial a plaintext unix socket in the data dir (mode 0700) instead
    // of the TLS port, so they need no certificate.
    if (tls_ && options_.local_workers > 0) {
      const std::string dir = data_dir + "/local";
      std::filesystem::create_directories(dir, ec);
      ::chmod(dir.c_str(), 0700);
      local_address_ = absl::StrCat("unix:", dir, "/worker.sock");
      if (local_address_.size() > 100)
        return absl::InvalidArgumentError(absl::StrCat(
            "--data-dir '", data_dir, "' is too long for the local workers' unix socket"));
      std::filesystem::remove(dir + "/worker.sock", ec);
      builder.AddListeningPort(local_address_, grpc::InsecureServerCredentials());
    }
    builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
    builder.SetMaxSendMessageSize(options_.max_message_bytes);
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options_.max_concurrent_streams);
    // Detect dead peers on idle connections (a worker host that vanished without a FIN).
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    builder.RegisterService(quarry_service_.get());
    builder.RegisterService(worker_service_.get());
    server_ = builder.BuildAndStart();
    const bool unix_socket = absl::StartsWith(options_.listen, "unix:");
    if (server_ == nullptr || (port_ == 0 && !unix_socket))
      return absl::UnavailableError(absl::StrCat("cannot listen on '", options_.listen, "'"));
    if (unix_socket) {
      address_ = options_.listen;
    } else {
      std::string host = options_.listen.substr(0, options_.listen.rfind(':'));
      if (host.empty() || host == "0.0.0.0" || host == "[::]") host = "127.0.0.1";
      address_ = absl::StrCat(host, ":", port_);
    }
    server_->GetHealthCheckService()->SetServingStatus(true);

    if (!options_.metrics_listen.empty()) {
      std::map<std::string, metrics::HttpPage> pages;
      pages["/metrics"] = {"text/plain; version=0.0.4; charset=utf-8",
                           [m] { return m->registry().Render(); }};
      pages["/healthz"] = {"application/json", [this] { return HealthJson(); }};
      std::function<std::shared_ptr<SSL_CTX>()> http_tls;
      if (tls_) http_tls = [t = tls_.get()] { return t->HttpContext(); };
      auto ep = metrics::HttpEndpoint::Start(options_.metrics_listen, std::move(pages),
                                             std::move(http_tls));
      if (!ep.ok()) return ep.status();
      metrics_endpoint_ = std::move(*ep);
    }
    ticker_ = std::thread([this] { TickLoop(); });

    if (options_.local_workers > 0) {
      LocalWorkerOptions lo;
      lo.count = options_.local_workers;
      lo.binary = options_.worker_binary.empty() ? DefaultWorkerBinary() : options_.worker_binary;
      lo.server_address = local_address_.empty() ? address_ : local_address_;
      if (!auth_->open()) {
        // A token of their own, made now and kept out of the token file (it survives reloads).
        const std::string token = RandomToken();
        lo.token_file = data_dir + "/local/worker-token";
        std::filesystem::create_directories(data_dir + "/local", ec);
        ::chmod((data_dir + "/local").c_str(), 0700);
        std::ofstream out(lo.token_file, std::ios::trunc);
        out << token << "\n";
        out.close();
        ::chmod(lo.token_file.c_str(), 0600);
        if (!out) return absl::InternalError(absl::StrCat("cannot write '", lo.token_file, "'"));
        TokenEntry entry;
        entry.id = "local-workers";
        entry.roles = kRoleWorker;
        auth_->AddInternalToken(token, entry);
      }
      lo.device = options_.local_worker_device;
      unsigned hw = std::max(1u, std::thread::hardware_concurrency());
      lo.threads = options_.local_worker_threads > 0
                       ? options_.local_worker_threads
                       : std::max(1, static_cast<int>(hw) / options_.local_workers);
      lo.work_dir = data_dir + "/workers";
      lo.log_path = options_.local_worker_log;
      lo.on_restart = [m](int, const std::string&) { m->local_worker_restarts.Increment(); };
      auto pool = LocalWorkerPool::Start(std::move(lo), PosixProcessLauncher(), RealClock());
      if (!pool.ok()) return pool.status();
      local_workers_ = std::move(*pool);
    }
    return absl::OkStatus();
  }

  std::string address() const override { return address_; }
  int port() const override { return port_; }
  std::string metrics_address() const override {
    return metrics_endpoint_ ? metrics_endpoint_->address() : "";
  }

  absl::Status Reload() override {
    absl::Status result = auth_->Reload();
    if (!result.ok())
      std::fprintf(stderr, "quarry-server: token reload failed, keeping the old tokens: %s\n",
                   result.ToString().c_str());
    else if (!auth_->open())
      std::fprintf(stderr, "quarry-server: reloaded %zu tokens from %s\n", auth_->token_count(),
                   options_.auth_tokens.c_str());
    if (!options_.tenant_quotas.empty()) {
      absl::Status st = quotas_->Reload();
      v1::AuditEvent e;
      e.set_peer("local");
      e.set_action("reload");
      e.set_target("quotas");
      audit_->Record(e, st);
      if (!st.ok()) {
        std::fprintf(stderr, "quarry-server: quota reload failed, keeping the old quotas: %s\n",
                     st.ToString().c_str());
        if (result.ok()) result = st;
      } else {
        std::fprintf(stderr, "quarry-server: reloaded the tenant quotas from %s\n",
                     options_.tenant_quotas.c_str());
      }
    }
    if (tls_) {
      absl::Status st = tls_->Reload();
      v1::AuditEvent e;
      e.set_peer("local");
      e.set_action("reload");
      e.set_target("tls");
      audit_->Record(e, st);
      if (!st.ok()) {
        std::fprintf(stderr, "quarry-server: TLS reload failed, keeping the old certificate: %s\n",
                     st.ToString().c_str());
        if (result.ok()) result = st;
      } else {
        std::fprintf(stderr, "quarry-server: reloaded the TLS certificate from %s\n",
                     options_.tls_cert.c_str());
      }
    }
    return result;
  }

  void Shutdown() override {
    {
      absl::MutexLock lock(&mu_);
      if (shut_down_) return;
      shut_down_ = true;
    }
    if (server_) server_->GetHealthCheckService()->SetServingStatus(false);
    // The manager first: it ends watch and worker streams and from then on ignores workers, so
    // jobs on workers stay ASSIGNED/RUNNING in the store (a restart gives their workers
    // --requeue-grace-ms to come back). Then local workers get SIGTERM and stop their jobs.
    if (manager_) manager_->Shutdown();
    if (local_workers_) local_workers_->Stop();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    if (ticker_.joinable()) ticker_.join();
    metrics_endpoint_.reset();
    absl::MutexLock lock(&mu_);
    stopped_ = true;
  }

  void Wait() override {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&stopped_));
  }

 private:
  void TickLoop() {
    const int period_ms = std::max(10, std::min(200, options_.heartbeat_timeout_ms / 4));
    absl::MutexLock lock(&mu_);
    while (!shut_down_) {
      mu_.AwaitWithTimeout(absl::Condition(&shut_down_), absl::Milliseconds(period_ms));
      if (shut_down_) break;
      mu_.Unlock();
      manager_->Tick();
      mu_.Lock();
    }
  }

  // GET /healthz: whether the server serves, and how it is secured.
  std::string HealthJson() {
    bool serving;
    {
      absl::MutexLock lock(&mu_);
      serving = !shut_down_;
    }
    nlohmann::json j = {{"status", serving ? "SERVING" : "NOT_SERVING"},
                        {"auth", auth_->open() ? "open" : "tokens"},
                        {"tokens", auth_->token_count()},
                        {"tls", tls_ != nullptr},
                        {"mutual_tls_workers", !options_.tls_client_ca.empty()},
                        {"tenant_quotas", quotas_->any()}};
    if (auth_->open())
      j["warning"] = "no --auth-tokens: the server is open, every caller acts as admin";
    return j.dump() + "\n";
  }

  void RegisterCollectors() {
    ServerMetrics* m = metrics_.get();
    JobManager* manager = manager_.get();
    JobStore* store = store_.get();
    // Per-tenant gauges: the first metrics_max_tenants tenants by name keep their own label,
    // the rest are summed as "_other"; a label that had a value and now has none reads 0.
    const size_t max_tenants = static_cast<size_t>(options_.metrics_max_tenants);
    auto seen = std::make_shared<std::set<std::string>>();
    m->registry().AddCollector([m, store, max_tenants, seen] {
      auto usage = store->UsageByTenant();
      if (!usage.ok()) return;
      std::map<std::string, JobStore::TenantUsage> labelled;
      for (const auto& [tenant, u] : *usage) {
        std::string label = tenant.empty() ? "_none" : tenant;
        if (labelled.size() >= max_tenants && !labelled.count(label)) label = "_other";
        JobStore::TenantUsage& into = labelled[label];
        for (const auto& [state, n] : u.jobs) into.jobs[state] += n;
        into.upload_bytes += u.upload_bytes;
        into.artifact_bytes += u.artifact_bytes;
      }
      for (const std::string& old : *seen) labelled.try_emplace(old);
      for (const auto& [label, u] : labelled) {
        seen->insert(label);
        for (int st = v1::JOB_STATE_QUEUED; st <= v1::JOB_STATE_CANCELLED; ++st) {
          auto it = u.jobs.find(static_cast<v1::JobState>(st));
          m->tenant_jobs.WithLabels({label, StateName(static_cast<v1::JobState>(st))})
              .Set(it == u.jobs.end() ? 0 : static_cast<double>(it->second));
        }
        m->tenant_stored_bytes.WithLabels({label, "upload"}).Set(static_cast<double>(u.upload_bytes));
        m->tenant_stored_bytes.WithLabels({label, "artifact"})
            .Set(static_cast<double>(u.artifact_bytes));
      }
    });
    m->registry().AddCollector([m, manager, store] {
      ManagerStats s = manager->Stats();
      m->queue_depth.Set(s.queued);
      m->workers_connected.Set(s.workers_connected);
      m->workers_busy.Set(s.workers_busy);
      auto counts = store->CountJobsByState();
      if (counts.ok()) {
        for (int st = v1::JOB_STATE_QUEUED; st <= v1::JOB_STATE_CANCELLED; ++st) {
          auto it = counts->find(static_cast<v1::JobState>(st));
          m->jobs.WithLabels({StateName(static_cast<v1::JobState>(st))})
              .Set(it == counts->end() ? 0 : static_cast<double>(it->second));
        }
      }
    });
  }

  ServerOptions options_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<TenantQuotas> quotas_;
  std::unique_ptr<ServerTls> tls_;
  std::unique_ptr<ArtifactStore> artifacts_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<JobManager> manager_;
  std::unique_ptr<SpecResolver> resolver_;
  std::unique_ptr<grpc::Service> quarry_service_;
  std::unique_ptr<grpc::Service> worker_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<metrics::HttpEndpoint> metrics_endpoint_;
  std::unique_ptr<LocalWorkerPool> local_workers_;
  std::thread ticker_;
  int port_ = 0;
  std::string address_;
  std::string local_address_;  // local workers' plaintext unix socket (with TLS only)
  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  auto impl = std::make_unique<ServerImpl>(std::move(options));
  absl::Status st = impl->Init();
  if (!st.ok()) return st;
  return std::unique_ptr<Server>(std::move(impl));
}

}  // namespace quarry::server
