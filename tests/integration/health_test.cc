// The skeleton end to end: a server started on port 0 answers the standard grpc.health.v1 check,
// over a raw stub and through the client library; after shutdown the client sees UNAVAILABLE.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "grpc/health/v1/health.grpc.pb.h"
#include "quarry/client/client.h"
#include "quarry/server/server.h"

namespace {

std::string DataDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("quarry_health_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(dir);
  return dir.string();
}

TEST(Health, ServerOnPortZeroAnswersHealthCheck) {
  quarry::server::ServerOptions opts;
  opts.listen = "127.0.0.1:0";
  opts.data_dir = DataDir("raw");
  auto server = quarry::server::Server::Start(opts);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);

  auto channel = grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status st = stub->Check(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  (*server)->Shutdown();
  (*server)->Wait();
}

TEST(Health, ClientLibraryChecksHealth) {
  quarry::server::ServerOptions opts;
  opts.listen = "127.0.0.1:0";
  opts.data_dir = DataDir("client");
  auto server = quarry::server::Server::Start(opts);
  ASSERT_TRUE(server.ok()) << server.status();
  quarry::client::ClientOptions copts;
  copts.server = (*server)->address();
  copts.timeout_ms = 5000;
  auto client = quarry::client::Client::Create(copts);
  ASSERT_TRUE(client.ok());
  EXPECT_TRUE((*client)->CheckHealth().ok());
  (*server)->Shutdown();
  (*server)->Wait();
  copts.timeout_ms = 500;
  auto client2 = quarry::client::Client::Create(copts);
  EXPECT_EQ((*client2)->CheckHealth().code(), absl::StatusCode::kUnavailable);
}

TEST(Health, MissingDataDirIsRejected) {
  quarry::server::ServerOptions opts;
  opts.listen = "127.0.0.1:0";
  auto server = quarry::server::Server::Start(opts);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
