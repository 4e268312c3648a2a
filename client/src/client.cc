#include "quarry/client/client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "quarry/client/grpc_status.h"

namespace quarry::client {
namespace {

class ClientImpl final : public Client {
 public:
  ClientImpl(ClientOptions options, std::shared_ptr<grpc::Channel> channel)
      : options_(std::move(options)),
        channel_(std::move(channel)),
        health_(grpc::health::v1::Health::NewStub(channel_)) {}

  absl::Status CheckHealth() override {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status st = health_->Check(&ctx, req, &resp);
    if (!st.ok()) return FromGrpcStatus(st);
    if (resp.status() != grpc::health::v1::HealthCheckResponse::SERVING)
      return absl::UnavailableError(absl::StrCat("server at ", options_.server, " is not serving"));
    return absl::OkStatus();
  }

 private:
  void SetDeadline(grpc::ClientContext& ctx) const {
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(options_.timeout_ms));
  }

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

}  // namespace

std::string DefaultServerAddress() {
  const char* env = std::getenv("QUARRY_SERVER");
  if (env != nullptr && *env != '\0') return env;
  return "127.0.0.1:50051";
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  if (options.server.empty()) options.server = DefaultServerAddress();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  auto channel =
      grpc::CreateCustomChannel(options.server, grpc::InsecureChannelCredentials(), args);
  if (channel == nullptr)
    return absl::InvalidArgumentError(absl::StrCat("bad server address '", options.server, "'"));
  return std::unique_ptr<Client>(new ClientImpl(std::move(options), std::move(channel)));
}

}  // namespace quarry::client
