#include "quarry/worker/job_runner.h"

#include "quarry/status.h"

namespace quarry::worker {
namespace {

class PipelineRunner final : public JobRunner {
 public:
  absl::StatusOr<QuantizeResult> Run(const QuantizeOptions& options,
                                     JobObserver* observer) override {
    return CatchExceptions("quantization pipeline",
                           [&]() -> absl::StatusOr<QuantizeResult> {
                             return QuantizeModel(options, observer);
                           });
  }
};

}  // namespace

std::unique_ptr<JobRunner> NewPipelineRunner() { return std::make_unique<PipelineRunner>(); }

}  // namespace quarry::worker
