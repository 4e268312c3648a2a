// Converts a JobAssignment (wire format) into core's QuantizeOptions: the worker's one seam
// between the job protocol and the pipeline. The Config goes through proto/convert; job-level
// fields (calibration, eval, export) are converted here. Stateless; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quarry/pipeline.h"
#include "quarry/v1/worker.pb.h"

namespace quarry::worker {

struct LocalInputs {
  std::string model_dir;         // where the model is readable on this worker
  std::string calibration_path;  // "" = none
  std::string eval_path;         // "" = none
};

// INVALID_ARGUMENT names the field when the assignment cannot be run. `warnings` receives
// options the pipeline does not support (they are ignored).
absl::StatusOr<QuantizeOptions> BuildQuantizeOptions(const quarry::v1::JobAssignment& assignment,
                                                     const LocalInputs& inputs,
                                                     const std::string& output_dir,
                                                     const std::string& device, int threads,
                                                     std::vector<std::string>* warnings);

// A one-line summary for the job's DEBUG log.
std::string DescribeOptions(const QuantizeOptions& options);

}  // namespace quarry::worker
