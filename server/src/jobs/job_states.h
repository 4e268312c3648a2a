// Small helpers over quarry.v1.JobState shared by the server's modules. Stateless.
#pragma once

#include <string>

#include "quarry/v1/jobs.pb.h"

namespace quarry::server {

inline bool IsTerminal(quarry::v1::JobState s) {
  return s == quarry::v1::JOB_STATE_SUCCEEDED || s == quarry::v1::JOB_STATE_FAILED ||
         s == quarry::v1::JOB_STATE_CANCELLED;
}

// Held by a worker: ASSIGNED, RUNNING or CANCELLING.
inline bool IsOnWorker(quarry::v1::JobState s) {
  return s == quarry::v1::JOB_STATE_ASSIGNED || s == quarry::v1::JOB_STATE_RUNNING ||
         s == quarry::v1::JOB_STATE_CANCELLING;
}

// "queued", "running", ... (lowercase, without the JOB_STATE_ prefix).
std::string StateName(quarry::v1::JobState s);

}  // namespace quarry::server
