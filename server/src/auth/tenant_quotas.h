// Per-tenant quotas (README "Securing the service", issue 17 part 3):
//   max_jobs            jobs queued or running at once (checked at SubmitJob)
//   max_upload_bytes    bytes of models and datasets the tenant keeps uploaded, unfinished
//                       uploads included (checked per chunk of an upload)
//   max_artifact_bytes  bytes of job artifacts the tenant keeps (checked at SubmitJob and per
//                       artifact file a worker uploads: the job fails naming the limit)
// 0 = no limit. The defaults for every tenant come from --tenant-max-jobs,
// --tenant-max-upload-bytes and --tenant-max-artifact-bytes; --tenant-quotas FILE overrides
// them per tenant, one line per tenant (reloaded on SIGHUP with the token file):
//   tenant=<name> [max_jobs=N] [max_upload_bytes=N] [max_artifact_bytes=N]
// `tenant=*` changes the defaults; a byte count takes a binary suffix (K, M, G, T: 2^10...);
// '#' starts a comment. A field a line does not give keeps the default. Without --auth-tokens
// every caller is tenant "" (the line `tenant=-` names it).
// Space comes back when a finished job is deleted (DeleteJob: `quarry delete JOB`) or an upload
// is (DeleteUpload: `quarry delete-upload ID`).
// Thread-safe: Reload() swaps the table; a check that already read its limits keeps them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace quarry::server {

// One limit and where it was set ("--tenant-max-jobs", "quotas.txt line 3"), for messages.
struct QuotaLimit {
  uint64_t value = 0;  // 0 = no limit
  std::string source;
  bool limited() const { return value > 0; }
};

struct TenantLimits {
  QuotaLimit max_jobs;
  QuotaLimit max_upload_bytes;
  QuotaLimit max_artifact_bytes;
};

// A parsed --tenant-quotas file: the `tenant=*` line (if any) and one entry per tenant.
// Fields a line omits are nullopt.
struct QuotaFileLine {
  std::optional<uint64_t> max_jobs, max_upload_bytes, max_artifact_bytes;
  int line = 0;
};
struct QuotaFile {
  std::optional<QuotaFileLine> defaults;
  std::map<std::string, QuotaFileLine> tenants;
};

// Parses the file's text; errors name `path`, the line and the bad field. A tenant given twice
// is an error. Pure.
absl::StatusOr<QuotaFile> ParseQuotaFile(absl::string_view text, const std::string& path);

// "12345", "64K", "5G" -> bytes; nullopt for anything else (or an overflow).
std::optional<uint64_t> ParseByteCount(absl::string_view s);

// "5.0 GiB (5368709120 bytes)" for messages.
std::string DescribeBytes(uint64_t bytes);

struct QuotaOptions {
  uint64_t default_max_jobs = 0;            // --tenant-max-jobs, default 0 = no limit
  uint64_t default_max_upload_bytes = 0;    // --tenant-max-upload-bytes, default 0 = no limit
  uint64_t default_max_artifact_bytes = 0;  // --tenant-max-artifact-bytes, default 0 = no limit
  std::string file;                         // --tenant-quotas, default "" = none
};

class TenantQuotas {
 public:
  // Reads the file (if any); its errors name the line.
  static absl::StatusOr<std::unique_ptr<TenantQuotas>> Create(QuotaOptions options);
  // Re-reads the file; on error the old table stays and the error is returned.
  absl::Status Reload();
  TenantLimits For(const std::string& tenant) const;
  // Whether any limit is set at all.
  bool any() const;

 private:
  explicit TenantQuotas(QuotaOptions options) : options_(std::move(options)) {}
  absl::StatusOr<QuotaFile> Read() const;

  const QuotaOptions options_;
  mutable absl::Mutex mu_;
  QuotaFile file_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quarry::server
