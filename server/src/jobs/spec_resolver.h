// Turns a client's JobSpec into what the scheduler and a worker need, refusing anything unsafe
// or invalid with a message that names the field: input paths must be absolute, free of "..",
// and resolve (after symlinks) inside a configured model root, or name a complete upload; the
// config (protobuf, Quark JSON or a preset, plus extra algorithms) must validate; the job's peak
// memory is estimated from the model's safetensors headers and config.json.
// Thread-safe (stateless apart from the stores it reads).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "jobs/job_manager.h"
#include "quarry/quant_config.h"
#include "quarry/v1/jobs.pb.h"
#include "store/artifact_store.h"
#include "store/job_store.h"

namespace quarry::server {

// Checks `path` (field name `what`, e.g. "model.path") against `roots`: absolute, no ".."
// component, inside a root lexically and after resolving symlinks. PERMISSION_DENIED when
// outside (or no roots are configured), INVALID_ARGUMENT when malformed or missing. Returns the
// canonical path.
absl::StatusOr<std::string> CheckPathInRoots(const std::string& path, const std::string& what,
                                             const std::vector<std::string>& roots,
                                             bool want_directory);

// Peak memory of a job on the model in `model_dir`, from safetensors headers only:
// the non-decoder tensors (embeddings, lm_head, norms) + 3x the largest decoder layer in float32
// (the layer, its quantized copy, algorithm scratch) + the calibration activations
// (num_samples x seq_len x hidden_size x 4 bytes x 4 live buffers) + 256 MiB runtime overhead.
absl::StatusOr<uint64_t> EstimateJobMemory(const std::string& model_dir, int num_samples,
                                           int seq_len);

class SpecResolver {
 public:
  SpecResolver(std::vector<std::string> model_roots, JobStore* store, ArtifactStore* artifacts)
      : roots_(std::move(model_roots)), store_(store), artifacts_(artifacts) {}

  // Everything Submit needs; the config is validated (INVALID_ARGUMENT lists every error).
  // `tenant` non-null: uploads of other tenants are "no such upload" (the caller's tenant
  // filter; null = every tenant's uploads are usable).
  absl::StatusOr<NewJob> Resolve(const v1::JobSpec& spec, const std::string& request_id,
                                 const std::string* tenant = nullptr);
  // The model directory a ModelSource names (after the checks above).
  absl::StatusOr<std::string> ResolveModel(const v1::ModelSource& model,
                                           const std::string* tenant = nullptr);
  // The config a config_source names (exactly one of the three non-null), not yet validated.
  absl::StatusOr<Config> ResolveConfig(const v1::Config* config, const std::string* config_json,
                                       const std::string* preset);

 private:
  absl::StatusOr<std::string> ResolveUpload(const std::string& id, UploadKind kind,
                                            const std::string& what, const std::string* tenant);
  const std::vector<std::string> roots_;
  JobStore* const store_;
  ArtifactStore* const artifacts_;
};

}  // namespace quarry::server
