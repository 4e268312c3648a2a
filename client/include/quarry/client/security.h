// Transport security and credentials shared by the client library, the CLI and quarry-worker:
// TLS channel credentials from PEM files (server CA, optional client certificate for mutual TLS)
// and the bearer token each call carries ("authorization: Bearer <token>" metadata, added per
// call so it also works on a plaintext loopback channel). Stateless; thread-safe.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"

namespace quarry::client {

struct TransportSecurity {
  // PEM file of the CA that signed the server's certificate. Default "" = plaintext, unless
  // tls_cert is set (then the system's roots verify the server).
  std::string tls_ca;
  // PEM certificate chain and private key presented to the server (mutual TLS; workers need
  // them when the server has --tls-client-ca). Default "" = none. Both or neither.
  std::string tls_cert;
  std::string tls_key;
  // Name the server's certificate must carry instead of the dialled host. Default "" = host.
  std::string tls_server_name;
  // Bearer token sent with every call. Default "" = none (a server without --auth-tokens).
  std::string token;

  bool uses_tls() const { return !tls_ca.empty() || !tls_cert.empty(); }
};

// The token to use: the first line of `token_file` when given (surrounding white space
// dropped; an empty or unreadable file is an error naming it), else $QUARRY_TOKEN, else "".
absl::StatusOr<std::string> ResolveToken(const std::string& token_file);

// Insecure credentials without TLS files; SslCredentials from them otherwise. Errors name the
// file that cannot be read or the flag that is missing (a cert without a key).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TransportSecurity& security);

// Channel arguments the credentials need (the TLS server-name override).
void ApplyChannelArgs(const TransportSecurity& security, grpc::ChannelArguments* args);

// Adds the bearer token (if any) to one call.
void AddCallCredentials(const TransportSecurity& security, grpc::ClientContext* ctx);

}  // namespace quarry::client
