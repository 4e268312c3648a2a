#include "metrics/http_endpoint.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace quarry::server::metrics {
namespace {

constexpr int kRequestTimeoutMs = 2000;
constexpr size_t kMaxRequestBytes = 8192;

// One accepted connection, plaintext or TLS.
class Conn {
 public:
  Conn(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  ~Conn() {
    if (ssl_ != nullptr) {
      SSL_shutdown(ssl_);
      SSL_free(ssl_);
    }
  }
  // Up to n bytes; <= 0 on end, error or timeout.
  ssize_t Read(char* buf, size_t n) {
    if (ssl_ == nullptr && !Readable()) return -1;
    if (ssl_ != nullptr) {
      if (SSL_pending(ssl_) == 0 && !Readable()) return -1;
      return SSL_read(ssl_, buf, static_cast<int>(n));
    }
    return ::recv(fd_, buf, n, 0);
  }
  void WriteAll(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ssl_ != nullptr
                      ? SSL_write(ssl_, data.data() + off, static_cast<int>(data.size() - off))
                      : ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n < 0 && ssl_ == nullptr && errno == EINTR) continue;
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

 private:
  bool Readable() {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, kRequestTimeoutMs) > 0;
  }
  int fd_;
  SSL* ssl_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(
    const std::string& listen, std::function<std::string()> render) {
  std::map<std::string, HttpPage> pages;
  pages["/metrics"] = {"text/plain; version=0.0.4; charset=utf-8", std::move(render)};
  return Start(listen, std::move(pages));
}

absl::StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(
    const std::string& listen, std::map<std::string, HttpPage> pages,
    std::function<std::shared_ptr<SSL_CTX>()> tls) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos)
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-listen '", listen, "': expected host:port"));
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  int port = 0;
  if (!absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 || port > 65535)
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-listen '", listen, "': bad port"));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_str = std::to_string(port);
  int gai = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port_str.c_str(), &hints, &res);
  if (gai != 0)
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-listen '", listen, "': ", gai_strerror(gai)));
  std::unique_ptr<HttpEndpoint> ep(new HttpEndpoint());
  ep->pages_ = std::move(pages);
  ep->tls_ = std::move(tls);
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (fd < 0 || ::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 16) != 0) {
    int err = errno;
    if (fd >= 0) ::close(fd);
    ::freeaddrinfo(res);
    return absl::UnavailableError(
        absl::StrCat("cannot listen on '", listen, "' for metrics: ", std::strerror(err)));
  }
  ::freeaddrinfo(res);
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  ep->port_ = bound.ss_family == AF_INET6
                  ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                  : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  ep->address_ = absl::StrContains(host, ':') ? absl::StrCat("[", host, "]:", ep->port_)
                                              : absl::StrCat(host, ":", ep->port_);
  ep->listen_fd_ = fd;
  if (::pipe2(ep->wake_pipe_, O_CLOEXEC) != 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  ep->thread_ = std::thread([p = ep.get()] { p->Serve(); });
  return ep;
}

HttpEndpoint::~HttpEndpoint() {
  if (wake_pipe_[1] >= 0) {
    char c = 'x';
    ssize_t ignored = ::write(wake_pipe_[1], &c, 1);
    (void)ignored;
  }
  if (thread_.joinable()) thread_.join();
  for (int fd : {listen_fd_, wake_pipe_[0], wake_pipe_[1]})
    if (fd >= 0) ::close(fd);
}

void HttpEndpoint::Serve() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (fds[1].revents & POLLIN)) return;
    if (fds[0].revents & POLLIN) {
      int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn >= 0) {
        HandleConnection(conn);
        ::close(conn);
      }
    }
  }
}

void HttpEndpoint::HandleConnection(int fd) {
  // Bound a stalled TLS handshake as the reads are bounded.
  timeval tv{kRequestTimeoutMs / 1000, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  SSL* ssl = nullptr;
  std::shared_ptr<SSL_CTX> ctx;
  if (tls_) {
    ctx = tls_();
    ssl = ctx ? SSL_new(ctx.get()) : nullptr;
    if (ssl == nullptr) return;
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {  // e.g. a plaintext client on the TLS port
      SSL_free(ssl);
      return;
    }
  }
  Conn conn(fd, ssl);
  std::string req;
  char buf[1024];
  while (!absl::StrContains(req, "\r\n\r\n") && !absl::StrContains(req, "\n\n")) {
    ssize_t n = conn.Read(buf, sizeof(buf));
    if (n <= 0) return;
    req.append(buf, static_cast<size_t>(n));
    if (req.size() > kMaxRequestBytes) return;
  }
  const bool get = absl::StartsWith(req, "GET ");
  const bool head = absl::StartsWith(req, "HEAD ");
  std::string path = req.substr(req.find(' ') + 1);
  path = path.substr(0, path.find_first_of(" ?\r\n"));
  if (!(get || head)) {
    conn.WriteAll("HTTP/1.0 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return;
  }
  if (path == "/") path = "/metrics";
  auto page = pages_.find(path);
  if (page == pages_.end()) {
    std::string known;
    for (const auto& [p, unused] : pages_) absl::StrAppend(&known, known.empty() ? "" : ", ", p);
    std::string body = absl::StrCat("not found; pages: ", known, "\n");
    conn.WriteAll(absl::StrCat("HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n"
                               "Content-Length: ", body.size(), "\r\nConnection: close\r\n\r\n",
                               body));
    return;
  }
  std::string body = page->second.render();
  conn.WriteAll(absl::StrCat("HTTP/1.0 200 OK\r\nContent-Type: ", page->second.content_type,
                             "\r\nContent-Length: ", body.size(),
                             "\r\nConnection: close\r\n\r\n", head ? "" : body));
}

}  // namespace quarry::server::metrics
