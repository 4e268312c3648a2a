// The one mapping between grpc::Status and absl::Status (both directions), shared by the server,
// the worker and the client. The numeric codes of the two are identical by design.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace quarry {

inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

}  // namespace quarry
