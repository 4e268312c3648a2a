// Helpers of the service-security tests (security_test.cc, quota_test.cc): the test tokens and
// their token-file lines, a test PKI made with the openssl CLI, clients with a token, audit-row
// queries, TLS probes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "quarry/client/client.h"
#include "quarry/v1/jobs.pb.h"

namespace quarry::testing {

std::vector<std::string> Roots();  // --model-root <test data>

// Runs a shell command; returns its stdout. *status gets pclose's status.
std::string Shell(const std::string& cmd, int* status = nullptr);
void WriteText(const std::string& path, const std::string& text);

// The tokens of these tests and their token-file lines.
inline constexpr const char* kAdmin = "tok-admin-0123";
inline constexpr const char* kAlice = "tok-alice-0123";     // tenant a: submit, read, cancel
inline constexpr const char* kBob = "tok-bob-0123";         // tenant b: submit, read, cancel
inline constexpr const char* kReader = "tok-reader-0123";   // tenant a: read
inline constexpr const char* kExpired = "tok-expired-0123"; // tenant a, expired in 2020
inline constexpr const char* kWorker = "tok-worker-0123";   // worker
inline constexpr const char* kCarol = "tok-carol-0123";     // only after a reload

std::string TokenLine(const std::string& token, const std::string& rest);
std::string BaseTokenFile();

// A CA, two server certificates (localhost / 127.0.0.1) and a worker client certificate, made
// once with the openssl CLI.
struct Pki {
  std::string dir, ca, server_cert, server_key, server2_cert, server2_key, worker_cert,
      worker_key;
};
const Pki& TestPki();

std::unique_ptr<client::Client> Client(const std::string& address, const std::string& token,
                                       bool tls = false);
// The audit rows (newest first) with this action, read with the admin token.
std::vector<quarry::v1::AuditEvent> AuditRows(client::Client& admin, const std::string& action);
bool HasRow(const std::vector<quarry::v1::AuditEvent>& rows, const std::string& tenant,
            const std::string& target_part, const std::string& code);
std::string Describe(const std::vector<quarry::v1::AuditEvent>& rows);
// The subject of the certificate a new TLS handshake with `address` gets.
std::string PeerSubject(const std::string& address);
// GET `path` over TLS from the metrics/health endpoint (verifying the server).
std::string HttpsGet(const std::string& address, const std::string& path);

}  // namespace quarry::testing
