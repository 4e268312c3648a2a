#include "auth/audit_log.h"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace quarry::server {

void AuditLog::Record(v1::AuditEvent e, const absl::Status& status) {
  e.set_time_unix_ms(clock_->NowUnixMs());
  e.set_code(absl::StatusCodeToString(status.code()));
  if (e.detail().empty() && !status.ok()) e.set_detail(std::string(status.message()));
  auto id = store_->AppendAudit(e);
  if (id.ok()) e.set_id(*id);
  if (!id.ok())
    std::fprintf(stderr, "quarry-server: audit row not stored: %s\n",
                 id.status().ToString().c_str());
  if (!log_lines_) return;
  nlohmann::json j = {
      {"time", absl::FormatTime(absl::RFC3339_full, absl::FromUnixMillis(e.time_unix_ms()),
                                absl::UTCTimeZone())},
      {"id", e.id()},
      {"tenant", e.tenant()},
      {"token_id", e.token_id()},
      {"peer", e.peer()},
      {"action", e.action()},
      {"target", e.target()},
      {"code", e.code()},
      {"detail", e.detail()}};
  std::fprintf(stderr, "quarry-server: audit %s\n",
               j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

}  // namespace quarry::server
