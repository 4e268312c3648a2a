// The server's TLS material (--tls-cert, --tls-key, --tls-client-ca) for the gRPC port and the
// HTTP (metrics, health) endpoint, reloadable without a restart.
//
// Reload: the files are checked (PEM parses, the key matches the certificate, the CA parses)
// and copied into <data-dir>/tls/gen-N/, and <data-dir>/tls/current is switched to it with one
// rename. gRPC's FileWatcherCertificateProvider polls `current` every second, so new TLS
// handshakes use the new certificate within about a second; connections already open keep
// the session they negotiated (running jobs, watch streams and worker streams are not
// dropped). The HTTP endpoint takes a fresh SSL_CTX for every connection after a reload. A
// reload that fails the checks changes nothing and returns the error.
// Thread-safe.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace quarry::server {

struct TlsFiles {
  std::string cert;       // PEM certificate chain (required)
  std::string key;        // PEM private key (required)
  std::string client_ca;  // PEM CA bundle for client certificates ("" = no mutual TLS)
};

class ServerTls {
 public:
  // Checks and stages the files under state_dir (created, mode 0700).
  static absl::StatusOr<std::unique_ptr<ServerTls>> Create(TlsFiles files,
                                                           const std::string& state_dir);
  ~ServerTls();

  // Credentials for the gRPC listening port: the server certificate; with a client CA, client
  // certificates are requested and verified when presented (Authenticator requires them of
  // workers, so a refused worker gets a clear UNAUTHENTICATED instead of a failed handshake).
  std::shared_ptr<grpc::ServerCredentials> GrpcCredentials();
  // The current SSL_CTX for the HTTP endpoint (server certificate only).
  std::shared_ptr<SSL_CTX> HttpContext();

  absl::Status Reload();

 private:
  ServerTls(TlsFiles files, std::string state_dir)
      : files_(std::move(files)), state_dir_(std::move(state_dir)) {}
  absl::Status Stage() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const TlsFiles files_;
  const std::string state_dir_;
  absl::Mutex mu_;
  int generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<SSL_CTX> http_ctx_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<grpc::experimental::FileWatcherCertificateProvider> provider_;
};

}  // namespace quarry::server
