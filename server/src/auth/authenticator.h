// Who may call which RPC. Clients send "authorization: Bearer <token>"; the token's SHA-256 is
// looked up (constant time) in the --auth-tokens table, which gives a tenant and roles. Workers
// prove themselves with a token holding the worker role, or, when --tls-client-ca is set, with a
// client certificate signed by it (then required on the TLS port). Without --auth-tokens the
// server is open: every client call acts as admin of tenant "".
// Every refusal is audited (auth_failure, permission_denied). Thread-safe: Reload() swaps the
// token table; a call that already passed keeps its Caller.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "auth/audit_log.h"
#include "auth/token_file.h"
#include "env/clock.h"

namespace quarry::server {

// The authenticated caller of one RPC.
struct Caller {
  std::string tenant;    // "" when the server runs open, or for a worker
  std::string token_id;  // token id, "cert:<subject>" for an mTLS worker, "" when open
  std::string peer;      // gRPC peer address
  uint32_t roles = 0;
  bool all_tenants = false;  // admin role, or the server runs open

  // Whether this caller may see a job or upload of `owner` (NOT_FOUND otherwise).
  bool CanSee(const std::string& owner) const { return all_tenants || owner == tenant; }
  // The job list filter: null = every tenant.
  const std::string* TenantFilter() const { return all_tenants ? nullptr : &tenant; }
};

struct AuthOptions {
  // --auth-tokens. Default "" = open (no authentication).
  std::string token_file;
  // --tls-client-ca is set: worker RPCs over TLS need a verified client certificate.
  // Default false.
  bool require_worker_cert = false;
};

class Authenticator {
 public:
  // Reads the token file (errors name the line).
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(AuthOptions options,
                                                               AuditLog* audit, Clock* clock);

  bool open() const { return options_.token_file.empty(); }
  size_t token_count() const;

  // A token that is not in the file and survives reloads (the local workers' generated
  // token). REQUIRES: !open().
  void AddInternalToken(const std::string& token, TokenEntry entry);

  // Re-reads the token file; on error the old table stays and the error is returned. Audited
  // as "reload".
  absl::Status Reload();

  // Authenticates a client RPC and checks that the caller holds `role` (admin counts as every
  // client role). UNAUTHENTICATED: no, an unknown or an expired token; PERMISSION_DENIED: the
  // role is missing. `rpc` names the method in messages and audit rows.
  absl::StatusOr<Caller> Authorize(const grpc::ServerContextBase& ctx, uint32_t role,
                                   const std::string& rpc);
  // The same for WorkerService RPCs (worker role; see the class comment for certificates).
  absl::StatusOr<Caller> AuthorizeWorker(const grpc::ServerContextBase& ctx,
                                         const std::string& rpc);

  AuditLog* audit() const { return audit_; }

 private:
  Authenticator(AuthOptions options, AuditLog* audit, Clock* clock)
      : options_(std::move(options)), audit_(audit), clock_(clock) {}
  absl::StatusOr<std::vector<TokenEntry>> ReadFile() const;
  // The token's entry, or UNAUTHENTICATED (audited).
  absl::StatusOr<Caller> FromToken(const grpc::ServerContextBase& ctx, const std::string& rpc);
  absl::Status Refuse(Caller caller, const std::string& action, const std::string& rpc,
                      absl::Status status);

  const AuthOptions options_;
  AuditLog* const audit_;
  Clock* const clock_;
  mutable absl::Mutex mu_;
  std::vector<TokenEntry> tokens_ ABSL_GUARDED_BY(mu_);    // from the file
  std::vector<TokenEntry> internal_ ABSL_GUARDED_BY(mu_);  // AddInternalToken
};

// Records what `caller` did to `target` and how it ended.
void AuditCall(AuditLog* audit, const Caller& caller, const std::string& action,
               const std::string& target, const absl::Status& status,
               const std::string& detail = "");

// The caller's job view helper: NOT_FOUND with the message of an unknown job when `owner` is
// another tenant's (so existence does not leak), audited as "not_found".
absl::Status CheckVisible(const Caller& caller, AuditLog* audit, const std::string& owner,
                          const std::string& job_id, const std::string& rpc);

}  // namespace quarry::server
