#include "auth/authenticator.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace quarry::server {
namespace {

constexpr uint32_t kClientRoles = kRoleSubmit | kRoleRead | kRoleCancel;

std::string Str(const grpc::string_ref& s) { return std::string(s.data(), s.size()); }

v1::AuditEvent EventOf(const Caller& c, const std::string& action, const std::string& target) {
  v1::AuditEvent e;
  e.set_tenant(c.tenant);
  e.set_token_id(c.token_id);
  e.set_peer(c.peer);
  e.set_action(action);
  e.set_target(target);
  return e;
}

// The subject of a verified client certificate ("" when none was presented).
std::string CertificateSubject(const grpc::ServerContextBase& ctx) {
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return "";
  for (const char* prop : {"x509_common_name", "x509_subject"}) {
    std::vector<grpc::string_ref> v = auth->FindPropertyValues(prop);
    if (!v.empty() && !v[0].empty()) return Str(v[0]);
  }
  std::vector<grpc::string_ref> id = auth->GetPeerIdentity();
  return id.empty() ? "" : Str(id[0]);
}

bool OverTls(const grpc::ServerContextBase& ctx) {
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth == nullptr) return false;
  std::vector<grpc::string_ref> v =
      auth->FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
  // TlsServerCredentials say "tls", SslServerCredentials "ssl".
  return !v.empty() && (Str(v[0]) == GRPC_TLS_TRANSPORT_SECURITY_TYPE ||
                        Str(v[0]) == GRPC_SSL_TRANSPORT_SECURITY_TYPE);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(AuthOptions options,
                                                                     AuditLog* audit,
                                                                     Clock* clock) {
  std::unique_ptr<Authenticator> a(new Authenticator(std::move(options), audit, clock));
  if (!a->open()) {
    auto tokens = a->ReadFile();
    if (!tokens.ok()) return tokens.status();
    absl::MutexLock lock(&a->mu_);
    a->tokens_ = std::move(*tokens);
  }
  return a;
}

size_t Authenticator::token_count() const {
  absl::MutexLock lock(&mu_);
  return tokens_.size();
}

void Authenticator::AddInternalToken(const std::string& token, TokenEntry entry) {
  entry.sha256 = HashToken(token);
  absl::MutexLock lock(&mu_);
  internal_.push_back(std::move(entry));
}

absl::StatusOr<std::vector<TokenEntry>> Authenticator::ReadFile() const {
  std::ifstream in(options_.token_file);
  if (!in)
    return absl::NotFoundError(
        absl::StrCat("--auth-tokens '", options_.token_file, "': cannot read the file"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseTokenFile(ss.str(), options_.token_file);
}

absl::Status Authenticator::Reload() {
  if (open()) return absl::OkStatus();
  auto tokens = ReadFile();
  size_t n = 0;
  if (tokens.ok()) {
    n = tokens->size();
    absl::MutexLock lock(&mu_);
    tokens_ = std::move(*tokens);
  }
  Caller server;
  server.peer = "local";
  v1::AuditEvent e = EventOf(server, "reload", options_.token_file);
  if (tokens.ok()) e.set_detail(absl::StrCat(n, " tokens"));
  audit_->Record(std::move(e), tokens.status());
  return tokens.status();
}

absl::Status Authenticator::Refuse(Caller caller, const std::string& action,
                                   const std::string& rpc, absl::Status status) {
  audit_->Record(EventOf(caller, action, rpc), status);
  return status;
}

absl::StatusOr<Caller> Authenticator::FromToken(const grpc::ServerContextBase& ctx,
                                                const std::string& rpc) {
  Caller c;
  c.peer = ctx.peer();
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end())
    return Refuse(c, "auth_failure", rpc,
                  absl::UnauthenticatedError(absl::StrCat(
                      rpc, ": no bearer token (give --token-file FILE or $QUARRY_TOKEN)")));
  absl::string_view value(it->second.data(), it->second.size());
  if (value.size() < 7 || !absl::EqualsIgnoreCase(value.substr(0, 7), "bearer "))
    return Refuse(c, "auth_failure", rpc,
                  absl::UnauthenticatedError(
                      absl::StrCat(rpc, ": the authorization header is not 'Bearer <token>'")));
  const absl::string_view token = absl::StripAsciiWhitespace(value.substr(7));
  TokenEntry entry;
  bool found = false;
  {
    absl::MutexLock lock(&mu_);
    const TokenEntry* e = FindToken(tokens_, token);
    if (const TokenEntry* i = FindToken(internal_, token)) e = i;
    if (e != nullptr) {
      entry = *e;
      found = true;
    }
  }
  if (!found)
    return Refuse(c, "auth_failure", rpc,
                  absl::UnauthenticatedError(absl::StrCat(rpc, ": unknown token")));
  c.tenant = entry.tenant;
  c.token_id = entry.id;
  c.roles = entry.roles;
  if (entry.expires_unix_ms.has_value() && clock_->NowUnixMs() >= *entry.expires_unix_ms)
    return Refuse(
        c, "auth_failure", rpc,
        absl::UnauthenticatedError(absl::StrCat(
            rpc, ": token ", entry.id, " expired at ",
            absl::FormatTime(absl::RFC3339_sec, absl::FromUnixMillis(*entry.expires_unix_ms),
                             absl::UTCTimeZone()))));
  c.all_tenants = (c.roles & kRoleAdmin) != 0;
  return c;
}

absl::StatusOr<Caller> Authenticator::Authorize(const grpc::ServerContextBase& ctx,
                                                uint32_t role, const std::string& rpc) {
  if (open()) {
    Caller c;
    c.peer = ctx.peer();
    c.roles = kClientRoles | kRoleAdmin;
    c.all_tenants = true;
    return c;
  }
  auto c = FromToken(ctx, rpc);
  if (!c.ok()) return c.status();
  uint32_t held = c->roles;
  if (held & kRoleAdmin) held |= kClientRoles;
  if ((held & role) != role)
    return Refuse(*c, "permission_denied", rpc,
                  absl::PermissionDeniedError(absl::StrCat(
                      rpc, " needs the ", RoleNames(role), " role; token ", c->token_id,
                      " of tenant '", c->tenant, "' has ", RoleNames(c->roles))));
  return c;
}

absl::StatusOr<Caller> Authenticator::AuthorizeWorker(const grpc::ServerContextBase& ctx,
                                                      const std::string& rpc) {
  Caller c;
  c.peer = ctx.peer();
  if (options_.require_worker_cert && OverTls(ctx)) {
    std::string subject = CertificateSubject(ctx);
    if (subject.empty())
      return Refuse(c, "auth_failure", rpc,
                    absl::UnauthenticatedError(absl::StrCat(
                        rpc, ": workers must present a client certificate signed by the "
                             "server's --tls-client-ca (quarry-worker --tls-cert/--tls-key)")));
    c.token_id = absl::StrCat("cert:", subject);
    c.roles = kRoleWorker;
    return c;
  }
  if (open()) {
    c.roles = kRoleWorker;
    return c;
  }
  auto t = FromToken(ctx, rpc);
  if (!t.ok()) return t.status();
  if ((t->roles & kRoleWorker) == 0)
    return Refuse(*t, "permission_denied", rpc,
                  absl::PermissionDeniedError(absl::StrCat(
                      rpc, " needs the worker role; token ", t->token_id, " of tenant '",
                      t->tenant, "' has ", RoleNames(t->roles))));
  t->all_tenants = false;
  return t;
}

void AuditCall(AuditLog* audit, const Caller& caller, const std::string& action,
               const std::string& target, const absl::Status& status,
               const std::string& detail) {
  v1::AuditEvent e = EventOf(caller, action, target);
  e.set_detail(detail);
  audit->Record(std::move(e), status);
}

absl::Status CheckVisible(const Caller& caller, AuditLog* audit, const std::string& owner,
                          const std::string& job_id, const std::string& rpc) {
  if (caller.CanSee(owner)) return absl::OkStatus();
  // The same message as JobManager::Get for an unknown id.
  absl::Status st = absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
  v1::AuditEvent e = EventOf(caller, "not_found", job_id);
  e.set_detail(absl::StrCat(rpc, " on a job of another tenant"));
  audit->Record(std::move(e), st);
  return st;
}

}  // namespace quarry::server
