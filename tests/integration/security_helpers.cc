#include "security_helpers.h"

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service_harness.h"

namespace quarry::testing {

namespace v1 = ::quarry::v1;

std::vector<std::string> Roots() { return {"--model-root", TestDataDir()}; }

// Runs a shell command; returns its stdout (stderr goes to the test's log on failure only).
std::string Shell(const std::string& cmd, int* status) {
  std::string out;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int st = ::pclose(p);
  if (status != nullptr) *status = st;
  return out;
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

std::string TokenLine(const std::string& token, const std::string& rest) {
  return absl::StrCat("sha256:", Sha256Hex(token), " ", rest, "\n");
}

std::string BaseTokenFile() {
  return absl::StrCat("# test tokens\n", TokenLine(kAdmin, "tenant=ops roles=admin id=admin"),
                      TokenLine(kAlice, "tenant=a roles=submit,read,cancel id=alice"),
                      TokenLine(kBob, "tenant=b roles=submit,read,cancel id=bob  # comment"),
                      TokenLine(kReader, "tenant=a roles=read id=reader"),
                      TokenLine(kExpired,
                                "tenant=a roles=submit,read expires=2020-01-01T00:00:00Z id=old"),
                      TokenLine(kWorker, "tenant=infra roles=worker id=worker"));
}

const Pki& TestPki() {
  static TempDir* tmp = new TempDir("pki");
  static Pki* pki = [] {
    auto* p = new Pki;
    p->dir = tmp->path();
    const std::string d = p->dir;
    WriteText(d + "/server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                 "extendedKeyUsage=serverAuth\n");
    WriteText(d + "/client.ext", "extendedKeyUsage=clientAuth\n");
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::string script = absl::StrCat(
        "set -e; cd ", d, "; ",
        "openssl req -x509 ", ec, " -keyout ca.key -out ca.pem -days 2 -subj /CN=quarry-test-ca; ",
        "for n in server server2; do openssl req ", ec, " -keyout $n.key -out $n.csr "
        "-subj /CN=$n-localhost; openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -out $n.pem -days 2 -extfile server.ext; done; ",
        "openssl req ", ec, " -keyout worker.key -out worker.csr -subj /CN=worker-1; ",
        "openssl x509 -req -in worker.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out worker.pem -days 2 -extfile client.ext; echo done");
    int status = 0;
    std::string out = Shell(absl::StrCat("(", script, ") 2>", d, "/openssl.log"), &status);
    EXPECT_EQ(status, 0) << "openssl failed: " << ReadFile(d + "/openssl.log");
    p->ca = d + "/ca.pem";
    p->server_cert = d + "/server.pem";
    p->server_key = d + "/server.key";
    p->server2_cert = d + "/server2.pem";
    p->server2_key = d + "/server2.key";
    p->worker_cert = d + "/worker.pem";
    p->worker_key = d + "/worker.key";
    return p;
  }();
  return *pki;
}

std::unique_ptr<client::Client> Client(const std::string& address, const std::string& token,
                                       bool tls) {
  client::ClientOptions o;
  o.server = address;
  o.timeout_ms = 10000;
  o.max_stream_retries = 1;
  o.security.token = token;
  if (tls) o.security.tls_ca = TestPki().ca;
  auto c = client::Client::Create(o);
  EXPECT_TRUE(c.ok()) << c.status();
  return std::move(*c);
}

// The audit rows (newest first) that match, read with the admin token.
std::vector<v1::AuditEvent> AuditRows(client::Client& admin, const std::string& action) {
  v1::ListAuditEventsRequest req;
  req.set_action(action);
  req.set_limit(1000);
  auto rows = admin.ListAuditEvents(req);
  EXPECT_TRUE(rows.ok()) << rows.status();
  return rows.ok() ? *rows : std::vector<v1::AuditEvent>{};
}

bool HasRow(const std::vector<v1::AuditEvent>& rows, const std::string& tenant,
            const std::string& target_part, const std::string& code) {
  for (const auto& r : rows)
    if (r.tenant() == tenant && absl::StrContains(r.target(), target_part) && r.code() == code)
      return true;
  return false;
}

std::string Describe(const std::vector<v1::AuditEvent>& rows) {
  std::string out;
  for (const auto& r : rows) absl::StrAppend(&out, r.ShortDebugString(), "\n");
  return out;
}

// The subject of the certificate a new TLS handshake with `address` gets.
std::string PeerSubject(const std::string& address) {
  return Shell(absl::StrCat("openssl s_client -alpn h2 -connect ", address, " -CAfile ",
                            TestPki().ca,
                            " -verify_return_error </dev/null 2>/dev/null | openssl x509 "
                            "-noout -subject 2>/dev/null"));
}

// GET `path` over TLS from the metrics/health endpoint (verifying the server).
std::string HttpsGet(const std::string& address, const std::string& path) {
  return Shell(absl::StrCat("printf 'GET ", path, " HTTP/1.0\\r\\n\\r\\n' | openssl s_client "
                            "-quiet -connect ", address, " -CAfile ", TestPki().ca,
                            " -verify_return_error 2>/dev/null"));
}

}  // namespace quarry::testing
