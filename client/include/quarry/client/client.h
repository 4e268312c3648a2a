// C++ client library for the Quarry server: submit, watch, cancel and download jobs, upload
// models and datasets. Wraps the generated gRPC stubs; errors are absl::Status with the server's
// code and message. A Client is thread-safe (gRPC channels and stubs are).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace quarry::client {

struct ClientOptions {
  // Server address: "host:port" or "unix:/path". Default: $QUARRY_SERVER, else 127.0.0.1:50051.
  std::string server;
  // Per-call deadline for unary calls in milliseconds. Default 30000.
  int timeout_ms = 30000;
  // Largest message received. Default 16 MiB.
  int max_message_bytes = 16 << 20;
};

// The address a client dials when none is given: $QUARRY_SERVER, else "127.0.0.1:50051".
std::string DefaultServerAddress();

class Client {
 public:
  static absl::StatusOr<std::unique_ptr<Client>> Create(ClientOptions options);
  virtual ~Client() = default;

  // grpc.health.v1 Check of the whole server (""): OK when SERVING.
  virtual absl::Status CheckHealth() = 0;
};

}  // namespace quarry::client
