#include "quarry/server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <filesystem>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace quarry::server {
namespace {

class ServerImpl final : public Server {
 public:
  explicit ServerImpl(ServerOptions options) : options_(std::move(options)) {}
  ~ServerImpl() override { Shutdown(); }

  absl::Status Init() {
    if (options_.data_dir.empty())
      return absl::InvalidArgumentError("--data-dir is required");
    std::error_code ec;
    std::filesystem::create_directories(options_.data_dir, ec);
    if (ec)
      return absl::InvalidArgumentError(
          absl::StrCat("cannot create data dir '", options_.data_dir, "': ", ec.message()));

    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    builder.AddListeningPort(options_.listen, grpc::InsecureServerCredentials(), &port_);
    builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
    builder.SetMaxSendMessageSize(options_.max_message_bytes);
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options_.max_concurrent_streams);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || (port_ == 0 && !absl::StartsWith(options_.listen, "unix:")))
      return absl::UnavailableError(absl::StrCat("cannot listen on '", options_.listen, "'"));
    if (absl::StartsWith(options_.listen, "unix:")) {
      address_ = options_.listen;
    } else {
      std::string host = options_.listen.substr(0, options_.listen.rfind(':'));
      if (host.empty() || host == "0.0.0.0" || host == "[::]") host = "127.0.0.1";
      address_ = absl::StrCat(host, ":", port_);
    }
    server_->GetHealthCheckService()->SetServingStatus(true);
    return absl::OkStatus();
  }

  std::string address() const override { return address_; }
  int port() const override { return port_; }
  std::string metrics_address() const override { return ""; }

  void Shutdown() override {
    absl::MutexLock lock(&mu_);
    if (shut_down_ || server_ == nullptr) return;
    shut_down_ = true;
    server_->GetHealthCheckService()->SetServingStatus(false);
    server_->Shutdown();
  }

  void Wait() override {
    if (server_) server_->Wait();
  }

 private:
  ServerOptions options_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string address_;
  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  auto impl = std::make_unique<ServerImpl>(std::move(options));
  absl::Status st = impl->Init();
  if (!st.ok()) return st;
  return std::unique_ptr<Server>(std::move(impl));
}

}  // namespace quarry::server
