#include "auth/server_tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/str_cat.h"

namespace quarry::server {
namespace {

namespace fs = std::filesystem;

constexpr unsigned kRefreshSeconds = 1;

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

absl::StatusOr<std::string> ReadAll(const std::string& path, const std::string& flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(flag, " '", path, "': cannot read the file"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
Bio MemBio(const std::string& s) { return Bio(BIO_new_mem_buf(s.data(), static_cast<int>(s.size()))); }

// Checks that `cert` and `key` are PEM, match each other, and that `ca` (if any) holds at
// least one certificate.
absl::Status CheckMaterial(const TlsFiles& f, const std::string& cert, const std::string& key,
                           const std::string& ca) {
  Bio cb = MemBio(cert);
  X509* x = PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr);
  if (x == nullptr)
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-cert '", f.cert, "': no PEM certificate: ", OpenSslError()));
  Bio kb = MemBio(key);
  EVP_PKEY* k = PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr);
  if (k == nullptr) {
    X509_free(x);
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-key '", f.key, "': no PEM private key: ", OpenSslError()));
  }
  const bool match = X509_check_private_key(x, k) == 1;
  ERR_clear_error();
  X509_free(x);
  EVP_PKEY_free(k);
  if (!match)
    return absl::InvalidArgumentError(absl::StrCat("--tls-key '", f.key,
                                                   "' does not belong to --tls-cert '", f.cert,
                                                   "'"));
  if (!f.client_ca.empty()) {
    Bio ab = MemBio(ca);
    X509* c = PEM_read_bio_X509(ab.get(), nullptr, nullptr, nullptr);
    if (c == nullptr)
      return absl::InvalidArgumentError(absl::StrCat(
          "--tls-client-ca '", f.client_ca, "': no PEM certificate: ", OpenSslError()));
    X509_free(c);
  }
  return absl::OkStatus();
}

absl::Status WriteFile(const std::string& path, const std::string& data) {
  std::FILE* out = std::fopen(path.c_str(), "wb");
  if (out == nullptr) return absl::InternalError(absl::StrCat("cannot write '", path, "'"));
  ::fchmod(fileno(out), 0600);
  const bool ok = std::fwrite(data.data(), 1, data.size(), out) == data.size();
  if (std::fclose(out) != 0 || !ok)
    return absl::InternalError(absl::StrCat("cannot write '", path, "'"));
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<SSL_CTX>> MakeHttpContext(const std::string& cert,
                                                         const std::string& key) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (ctx == nullptr) return absl::InternalError(absl::StrCat("SSL_CTX_new: ", OpenSslError()));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1)
    return absl::InvalidArgumentError(
        absl::StrCat("TLS for the HTTP endpoint: ", OpenSslError()));
  return ctx;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerTls>> ServerTls::Create(TlsFiles files,
                                                             const std::string& state_dir) {
  if (files.cert.empty() || files.key.empty())
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  std::error_code ec;
  fs::create_directories(state_dir, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("cannot create '", state_dir, "': ", ec.message()));
  ::chmod(state_dir.c_str(), 0700);
  std::unique_ptr<ServerTls> tls(new ServerTls(std::move(files), state_dir));
  {
    absl::MutexLock lock(&tls->mu_);
    // Generations of an earlier run are stale; `current` is replaced by Stage().
    for (const auto& entry : fs::directory_iterator(state_dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("gen-", 0) == 0) fs::remove_all(entry.path(), ec);
    }
    if (absl::Status st = tls->Stage(); !st.ok()) return st;
  }
  const std::string cur = state_dir + "/current";
  tls->provider_ = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      cur + "/key.pem", cur + "/cert.pem",
      tls->files_.client_ca.empty() ? "" : cur + "/ca.pem", kRefreshSeconds);
  return tls;
}

ServerTls::~ServerTls() = default;

absl::Status ServerTls::Stage() {
  auto cert = ReadAll(files_.cert, "--tls-cert");
  if (!cert.ok()) return cert.status();
  auto key = ReadAll(files_.key, "--tls-key");
  if (!key.ok()) return key.status();
  std::string ca;
  if (!files_.client_ca.empty()) {
    auto c = ReadAll(files_.client_ca, "--tls-client-ca");
    if (!c.ok()) return c.status();
    ca = *c;
  }
  if (absl::Status st = CheckMaterial(files_, *cert, *key, ca); !st.ok()) return st;
  const int gen = generation_ + 1;
  const std::string dir = absl::StrCat(state_dir_, "/gen-", gen);
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create '", dir, "': ", ec.message()));
  for (const auto& [name, data] :
       {std::pair<std::string, const std::string*>{"cert.pem", &*cert}, {"key.pem", &*key},
        {"ca.pem", &ca}}) {
    if (name == "ca.pem" && files_.client_ca.empty()) continue;
    if (absl::Status st = WriteFile(absl::StrCat(dir, "/", name), *data); !st.ok()) return st;
  }
  auto http = MakeHttpContext(dir + "/cert.pem", dir + "/key.pem");
  if (!http.ok()) return http.status();
  // Switch `current` to the new generation with one rename (the watcher never sees a mix).
  const std::string link_tmp = state_dir_ + "/current.tmp";
  fs::remove(link_tmp, ec);
  fs::create_directory_symlink(absl::StrCat("gen-", gen), link_tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("symlink '", link_tmp, "': ", ec.message()));
  fs::rename(link_tmp, state_dir_ + "/current", ec);
  if (ec) return absl::InternalError(absl::StrCat("rename '", link_tmp, "': ", ec.message()));
  if (generation_ > 0) {
    // Keep the previous generation one more round: the watcher may be reading it right now.
    fs::remove_all(absl::StrCat(state_dir_, "/gen-", generation_ - 1), ec);
  }
  generation_ = gen;
  http_ctx_ = std::move(*http);
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> ServerTls::GrpcCredentials() {
  grpc::experimental::TlsServerCredentialsOptions options(provider_);
  options.watch_identity_key_cert_pairs();
  if (!files_.client_ca.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<SSL_CTX> ServerTls::HttpContext() {
  absl::MutexLock lock(&mu_);
  return http_ctx_;
}

absl::Status ServerTls::Reload() {
  absl::MutexLock lock(&mu_);
  return Stage();
}

}  // namespace quarry::server
