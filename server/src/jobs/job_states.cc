#include "jobs/job_states.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace quarry::server {

std::string StateName(quarry::v1::JobState s) {
  std::string name = quarry::v1::JobState_Name(s);
  if (absl::StartsWith(name, "JOB_STATE_")) name = name.substr(10);
  return absl::AsciiStrToLower(name);
}

}  // namespace quarry::server
