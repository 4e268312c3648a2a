// The audit log: who (tenant, token id, peer address) did what (submit, cancel, download,
// upload, worker_register, auth_failure, permission_denied, not_found, reload) and how it ended,
// as a row in the job database's audit table and as one structured line on stderr:
//   quarry-server: audit {"action":"submit","code":"OK","peer":"ipv4:127.0.0.1:5012",...}
// Thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "env/clock.h"
#include "quarry/v1/jobs.pb.h"
#include "store/job_store.h"

namespace quarry::server {

class AuditLog {
 public:
  // `log_lines`: also print each event to stderr. Default true.
  AuditLog(JobStore* store, Clock* clock, bool log_lines = true)
      : store_(store), clock_(clock), log_lines_(log_lines) {}

  // Records one event (its time and id are set here; the code from `status`). A failed
  // database write is reported on stderr and otherwise ignored: auditing never fails an RPC.
  void Record(v1::AuditEvent event, const absl::Status& status);

 private:
  JobStore* const store_;
  Clock* const clock_;
  const bool log_lines_;
};

}  // namespace quarry::server
