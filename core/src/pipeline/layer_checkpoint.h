// Core-internal: layer checkpoints of a resumable job (QuantizeOptions::checkpoint_dir /
// resume_dir; issue 17 part 5). After decoder layer i is finished the pipeline writes, in order:
//   layer-0000i.safetensors    the journal: every tensor the exporter wrote for layer i (name,
//                              dtype, shape, bytes, in write order)
//   streams-0000i.safetensors  the activations the next layer needs: each carried stream
//                              (calib_q, calib_f, stats_q, eval_q, eval_f) batch by batch,
//                              "<stream>.<batch>", float32 [b, L, H] exactly as computed
//   layer-0000i.json           the commit record, written last: the job fingerprint, the layer,
//                              the sha256 of the two files above, and the layer's report entries
// A resumed run embeds again (cheap), replays journals 0..k-1 into its exporter, loads the
// streams of layer k-1 and continues at layer k. Nothing is recomputed from exported codes, so
// the files are byte-identical to an uninterrupted run's (the report's timings are not).
//
// Trade-off (bytes): the journal is the layer's exported bytes (Llama-3-8B int4 g128: ~117 MB a
// layer); the streams are the calibration activations, tokens x hidden x 4 bytes per stream
// (Llama-3-8B with 128 x 512 calibration tokens: 1 GiB; none at all for weight-only plans,
// which run no calibration forward). Recomputing them instead would need every earlier layer
// again (the cost resume avoids), and they cannot be rebuilt from the exported codes bit for bit.
// Only the newest streams file is needed: CommitLayer deletes the previous one, the server
// drops older uploaded ones.
//
// The fingerprint (JobFingerprint) covers everything the bytes depend on: Quarry's version, the
// config as the format adapted it, the sha256 of every model file, the calibration and eval data
// and options, the export options, the error-sample count, the intra-op thread count (BLAS
// reductions may split differently) and LibTorch's build configuration with the CPU capability
// (at::show_config()). Checkpoints of another fingerprint are not used. Not replayed: the
// exporter's summary warnings (AWQ/GPTQ float16 scale rounding counts only the layers run after
// the resume point), so report.json's warnings may differ besides its timings.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "export/report.h"
#include "pipeline/layerwise.h"
#include "quarry/pipeline.h"
#include "quarry/safetensors.h"

namespace quarry::pipeline {

// sha256 (hex) over the job's inputs as above; reads every model, calibration and eval file.
absl::StatusOr<std::string> JobFingerprint(const QuantizeOptions& options,
                                           const std::string& adapted_config_json, int threads);

// What one layer adds to the report (restored on resume).
struct LayerReportPart {
  report::LayerReport layer;
  std::vector<report::LinearReport> linears;
  std::vector<report::AlgorithmRecord> algorithm_records;
  std::vector<std::string> warnings;
};

struct NamedStream {
  std::string name;  // calib_q, calib_f, stats_q, eval_q, eval_f
  Batches* batches;
};

class CheckpointWriter {
 public:
  CheckpointWriter(std::string dir, std::string fingerprint)
      : dir_(std::move(dir)), fingerprint_(std::move(fingerprint)) {}
  // The journal of layer i (the exporter's tee while the layer is exported).
  absl::StatusOr<std::unique_ptr<SafetensorsWriter>> BeginLayer(int i);
  // Finishes the journal, writes the streams and the commit record; returns the three file
  // names (relative to dir), in the order they must be uploaded.
  absl::StatusOr<std::vector<std::string>> CommitLayer(int i, int num_layers,
                                                       std::unique_ptr<SafetensorsWriter> journal,
                                                       const std::vector<NamedStream>& streams,
                                                       const LayerReportPart& report);

 private:
  std::string dir_, fingerprint_;
};

struct RestoredCheckpoints {
  int layers_done = 0;  // layers 0..layers_done-1 are in the checkpoint
  std::vector<std::unique_ptr<SafetensorsFile>> journals;  // one per layer done
  std::vector<LayerReportPart> reports;                    // one per layer done
  std::unique_ptr<SafetensorsFile> streams;                // after the last layer done
};

// The longest run of committed layers 0..k-1 in `dir` whose fingerprint and file checksums
// match (k = 0 when none; *why says why, for the job's log). Never fails: a checkpoint that
// cannot be used is a reason to start at layer 0, not an error.
RestoredCheckpoints ReadCheckpoints(const std::string& dir, const std::string& fingerprint,
                                    int num_layers, std::string* why);

// Replaces the hidden tensors of `b` with `<name>.<batch>` from `file` (shapes must match the
// batches the resumed run made). INVALID_ARGUMENT names the tensor otherwise.
absl::Status RestoreStream(const SafetensorsFile& file, const std::string& name, Batches* b);

}  // namespace quarry::pipeline
