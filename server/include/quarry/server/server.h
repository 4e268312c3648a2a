// The Quarry server: gRPC services for clients (QuarryService) and workers (WorkerService),
// grpc.health.v1 health checking and server reflection, persistence under the data dir, the
// scheduler and (optionally) a pool of local worker processes and a metrics endpoint.
// Thread-safe: Shutdown() may be called from any thread (e.g. a signal watcher).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "quarry/server/options.h"

namespace quarry::server {

class Server {
 public:
  // Starts listening; returns once the server accepts connections.
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options);
  virtual ~Server() = default;

  // The address clients dial ("127.0.0.1:PORT" with the real port, or "unix:/path").
  virtual std::string address() const = 0;
  virtual int port() const = 0;
  // Metrics endpoint address ("" when disabled).
  virtual std::string metrics_address() const = 0;
  // Re-reads the token file and the TLS files (what SIGHUP does). Running jobs, open streams and
  // connections are kept; new calls see the new tokens at once, new TLS handshakes the new
  // certificate within about a second. On an error nothing changes for that part and the error
  // is returned (both parts are tried).
  virtual absl::Status Reload() = 0;
  // Stops accepting work, stops local workers, drains RPCs. Idempotent.
  virtual void Shutdown() = 0;
  // Blocks until Shutdown() completes.
  virtual void Wait() = 0;
};

}  // namespace quarry::server
