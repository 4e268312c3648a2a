// A minimal HTTP/1.0 endpoint that serves one page: GET /metrics -> the Prometheus text format.
// One thread accepts and answers connections one at a time (a scrape is small and rare); each
// connection is closed after its response. Thread-safe; the destructor stops the thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace quarry::server::metrics {

class HttpEndpoint {
 public:
  // `listen`: "host:port" (port 0 = pick a free port). `render` produces the page body.
  static absl::StatusOr<std::unique_ptr<HttpEndpoint>> Start(const std::string& listen,
                                                             std::function<std::string()> render);
  ~HttpEndpoint();
  std::string address() const { return address_; }  // "host:port" with the real port
  int port() const { return port_; }

 private:
  HttpEndpoint() = default;
  void Serve();
  void HandleConnection(int fd);

  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  int port_ = 0;
  std::string address_;
  std::function<std::string()> render_;
  std::thread thread_;
};

}  // namespace quarry::server::metrics
