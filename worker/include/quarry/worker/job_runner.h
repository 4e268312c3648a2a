// Runs one job's pipeline. The worker talks to core only through this interface, so the job
// protocol can be tested with a scripted runner. Implementations are called from one job thread
// at a time.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "quarry/pipeline.h"

namespace quarry::worker {

class JobRunner {
 public:
  virtual ~JobRunner() = default;
  // Never throws: exceptions (c10::Error, std::bad_alloc, ...) come back as a Status.
  virtual absl::StatusOr<QuantizeResult> Run(const QuantizeOptions& options,
                                             JobObserver* observer) = 0;
};

// quarry::QuantizeModel.
std::unique_ptr<JobRunner> NewPipelineRunner();

}  // namespace quarry::worker
