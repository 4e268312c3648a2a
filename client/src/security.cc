#include "quarry/client/security.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace quarry::client {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, const std::string& flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(flag, " '", path, "': cannot read the file"));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string pem = ss.str();
  if (pem.find("-----BEGIN ") == std::string::npos)
    return absl::InvalidArgumentError(absl::StrCat(flag, " '", path, "': not a PEM file"));
  return pem;
}

}  // namespace

absl::StatusOr<std::string> ResolveToken(const std::string& token_file) {
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!in)
      return absl::NotFoundError(absl::StrCat("--token-file '", token_file, "': cannot read it"));
    std::string line;
    std::getline(in, line);
    std::string token(absl::StripAsciiWhitespace(line));
    if (token.empty())
      return absl::InvalidArgumentError(
          absl::StrCat("--token-file '", token_file, "': the first line is empty"));
    return token;
  }
  const char* env = std::getenv("QUARRY_TOKEN");
  if (env != nullptr) return std::string(absl::StripAsciiWhitespace(env));
  return std::string();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TransportSecurity& s) {
  if (s.tls_cert.empty() != s.tls_key.empty())
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  if (!s.uses_tls()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions o;
  if (!s.tls_ca.empty()) {
    auto ca = ReadPem(s.tls_ca, "--tls-ca");
    if (!ca.ok()) return ca.status();
    o.pem_root_certs = *ca;
  }
  if (!s.tls_cert.empty()) {
    auto cert = ReadPem(s.tls_cert, "--tls-cert");
    if (!cert.ok()) return cert.status();
    auto key = ReadPem(s.tls_key, "--tls-key");
    if (!key.ok()) return key.status();
    o.pem_cert_chain = *cert;
    o.pem_private_key = *key;
  }
  return grpc::SslCredentials(o);
}

void ApplyChannelArgs(const TransportSecurity& s, grpc::ChannelArguments* args) {
  if (s.uses_tls() && !s.tls_server_name.empty())
    args->SetSslTargetNameOverride(s.tls_server_name);
}

void AddCallCredentials(const TransportSecurity& s, grpc::ClientContext* ctx) {
  if (!s.token.empty()) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", s.token));
}

}  // namespace quarry::client
