// The quota checks the services share (rpc/services.h, auth/tenant_quotas.h).
#include "absl/strings/str_cat.h"
#include "rpc/services.h"

namespace quarry::server {

TenantLimits LimitsOf(const ServiceDeps& deps, const std::string& tenant) {
  return deps.quotas == nullptr ? TenantLimits{} : deps.quotas->For(tenant);
}

absl::Status CheckArtifactQuota(const ServiceDeps& deps, const std::string& tenant,
                                uint64_t adding, const std::string& what) {
  const QuotaLimit limit = LimitsOf(deps, tenant).max_artifact_bytes;
  if (!limit.limited()) return absl::OkStatus();
  auto kept = deps.store->TenantArtifactBytes(tenant);
  if (!kept.ok()) return kept.status();
  // A new job adds nothing yet, but is refused once the tenant is at its limit.
  if (adding == 0 ? *kept < limit.value : *kept + adding <= limit.value) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "quota: tenant '", tenant, "' keeps ", DescribeBytes(*kept), " of job artifacts",
      adding > 0 ? absl::StrCat("; ", what, " would add ", DescribeBytes(adding)) : "",
      "; its limit is ", DescribeBytes(limit.value), " (", limit.source,
      "). Delete finished jobs to free space: quarry delete JOB"));
}

}  // namespace quarry::server
