// A minimal HTTP/1.0 endpoint that serves a few pages (GET /metrics -> the Prometheus text format,
// GET /healthz -> the server's health as JSON), over plaintext or TLS. One thread accepts and
// answers connections one at a time (a scrape is small and rare); each connection is closed
// after its response. Thread-safe; the destructor stops the thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace quarry::server::metrics {

struct HttpPage {
  std::string content_type;
  std::function<std::string()> render;  // the body, rendered per request
};

class HttpEndpoint {
 public:
  // `listen`: "host:port" (port 0 = pick a free port). `pages`: path -> page ("/" serves
  // "/metrics"). `tls`: null = plaintext, else called per connection for the SSL_CTX to
  // accept it with (so a reloaded certificate applies to the next connection).
  static absl::StatusOr<std::unique_ptr<HttpEndpoint>> Start(
      const std::string& listen, std::map<std::string, HttpPage> pages,
      std::function<std::shared_ptr<SSL_CTX>()> tls = nullptr);
  // The metrics page only, plaintext (tests).
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
  std::map<std::string, HttpPage> pages_;
  std::function<std::shared_ptr<SSL_CTX>()> tls_;
  std::thread thread_;
};

}  // namespace quarry::server::metrics
