#include "quarry/worker/worker.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace quarry::worker {

absl::Status ValidateDevice(const std::string& device) {
  if (device == "cpu") return absl::OkStatus();
  for (const char* prefix : {"cuda:", "hip:"}) {
    if (absl::StartsWith(device, prefix)) {
      std::string idx = device.substr(std::string(prefix).size());
      if (!idx.empty() && idx.find_first_not_of("0123456789") == std::string::npos)
        return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--device '", device, "': expected cpu, cuda:N or hip:N"));
}

}  // namespace quarry::worker

namespace quarry::worker {
namespace {
// Placeholder until the service issue: validates options and reports that job execution is not
// wired yet.
class PendingWorker final : public Worker {
 public:
  absl::Status Run() override {
    return absl::UnimplementedError("the worker's job loop is not implemented yet");
  }
  void Stop() override {}
};
}  // namespace

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(WorkerOptions options) {
  if (options.server.empty()) return absl::InvalidArgumentError("--server is required");
  absl::Status st = ValidateDevice(options.device);
  if (!st.ok()) return st;
  return std::unique_ptr<Worker>(new PendingWorker());
}

}  // namespace quarry::worker
