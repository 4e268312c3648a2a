// The gRPC services (callback API): QuarryService for clients and WorkerService for workers.
// Handlers decode requests, call the JobManager / stores, and map errors with ToGrpcStatus at
// this edge only. Streams keep one write in flight and take the next from OnWriteDone.
// Every handler first asks the Authenticator for its role; client handlers then hide other
// tenants' jobs and uploads (NOT_FOUND, as for an unknown id).
#pragma once

#include <cstdint>
#include <memory>

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/service_type.h>

#include "auth/audit_log.h"
#include "auth/authenticator.h"
#include "auth/tenant_quotas.h"
#include "jobs/job_manager.h"
#include "jobs/spec_resolver.h"
#include "metrics/server_metrics.h"
#include "store/artifact_store.h"
#include "store/job_store.h"

namespace quarry::server {

struct ServiceDeps {
  JobManager* manager = nullptr;
  SpecResolver* resolver = nullptr;
  JobStore* store = nullptr;
  ArtifactStore* artifacts = nullptr;
  ServerMetrics* metrics = nullptr;
  Authenticator* auth = nullptr;  // every RPC's role check (README: roles per RPC)
  AuditLog* audit = nullptr;
  TenantQuotas* quotas = nullptr;  // per-tenant limits; null = none
  uint64_t max_upload_bytes = 256ull << 30;  // per upload (all files) and per artifact
  size_t chunk_bytes = 1 << 20;              // data bytes per streamed chunk
};

// The tenant's limits (none when deps.quotas is null).
TenantLimits LimitsOf(const ServiceDeps& deps, const std::string& tenant);
// RESOURCE_EXHAUSTED when the tenant's kept artifacts plus `adding` bytes pass its
// max_artifact_bytes; `what` says what would add them ("a new job", "artifact 'x' of job y").
absl::Status CheckArtifactQuota(const ServiceDeps& deps, const std::string& tenant,
                                uint64_t adding, const std::string& what);

std::unique_ptr<grpc::Service> NewQuarryService(ServiceDeps deps);
std::unique_ptr<grpc::Service> NewWorkerService(ServiceDeps deps);

}  // namespace quarry::server
