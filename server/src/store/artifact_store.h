// Files under the data dir: artifacts that workers upload for a job attempt, and models/datasets
// that clients upload. Every file is written under a staging name and renamed into place only
// when it is complete and its sha256 verified, so a reader never sees a partial file; a broken
// upload resumes from the bytes already staged.
//
// Layout (DATA = the server's data dir):
//   DATA/artifacts/<job>/<attempt>/parts/<name>    bytes received so far
//   DATA/artifacts/<job>/<attempt>/files/<name>    complete, verified
//   DATA/artifacts/<job>/<attempt>/sha256/<name>   its lowercase hex sha256 (written first)
//   DATA/uploads/<id>/parts/<relative path>        client upload in progress
//   DATA/uploads/<id>/files/<relative path>        complete upload (a model dir or one dataset)
// Thread-safe for different files; one writer per file at a time (callers serialise uploads of
// the same name).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "env/file_system.h"

namespace quarry::server {

// OK when `name` is a clean relative path: non-empty, no leading '/', no "." or ".." or empty
// components, no backslash or NUL, at most 512 bytes. INVALID_ARGUMENT names `what` otherwise.
absl::Status ValidateRelativePath(const std::string& name, const std::string& what);

struct StagedFile {
  uint64_t received_bytes = 0;  // staged so far (or the full size when complete)
  bool complete = false;
  std::string sha256;           // when complete
  std::string path;             // the complete file's path (when complete)
};

// Appends to one staged file; Finish() verifies and renames it into place.
class StagedWriter {
 public:
  virtual ~StagedWriter() = default;
  virtual absl::Status Append(absl::string_view data) = 0;
  virtual uint64_t size() const = 0;
  // REQUIRES: all bytes appended. Verifies size == total_size and (when expected_sha256 is
  // non-empty) the sha256; on success the file is durable and visible under its final name.
  // DATA_LOSS when the checksum does not match (the staged bytes are discarded).
  virtual absl::StatusOr<StagedFile> Finish(uint64_t total_size,
                                            const std::string& expected_sha256) = 0;
};

class ArtifactStore {
 public:
  ArtifactStore(std::string data_dir, FileSystem* fs) : data_dir_(std::move(data_dir)), fs_(fs) {}

  // ----- Worker artifacts of one job attempt -----
  StagedFile ArtifactStatus(const std::string& job_id, int attempt, const std::string& name);
  // Opens the staged file to continue at `offset`. FAILED_PRECONDITION (naming the offset to
  // resume from) when offset is beyond what is staged; bytes past offset are dropped (a resend).
  absl::StatusOr<std::unique_ptr<StagedWriter>> OpenArtifact(const std::string& job_id,
                                                             int attempt, const std::string& name,
                                                             uint64_t offset);

  // ----- Client uploads -----
  absl::StatusOr<std::unique_ptr<StagedWriter>> OpenUploadFile(const std::string& upload_id,
                                                               const std::string& relative_path,
                                                               uint64_t offset);
  StagedFile UploadFileStatus(const std::string& upload_id, const std::string& relative_path);
  // Directory holding the complete files of an upload.
  std::string UploadFilesDir(const std::string& upload_id) const;

  // Deletes every attempt's files of a job except `keep_attempt` (0 = delete all, and the
  // job's directory).
  void RemoveOtherAttempts(const std::string& job_id, int keep_attempt);
  // Bytes of the complete artifact files of one attempt, layer checkpoints not included (the
  // tenant quota counts them while the rest of the job's artifacts upload).
  uint64_t AttemptBytes(const std::string& job_id, int attempt);
  // Deletes an upload's files (complete and staged).
  absl::Status RemoveUpload(const std::string& upload_id);
  // Bytes on disk per relative path of an upload (complete or staged; the larger of the two).
  std::map<std::string, uint64_t> UploadBytesOnDisk(const std::string& upload_id);

  // ----- Layer checkpoints (artifacts named "checkpoints/<name>"; issue 17 part 5) -----
  struct CheckpointFileInfo {
    int attempt = 0;
    std::string name;  // without "checkpoints/"
    uint64_t size = 0;
    std::string sha256;
  };
  // The complete checkpoint files of the job's attempts before `before_attempt`; a name held
  // by several attempts comes from the newest. Sorted by name.
  std::vector<CheckpointFileInfo> ListCheckpoints(const std::string& job_id, int before_attempt);
  // Deletes the activations files ("streams-<layer>.safetensors") of layers below `layer`, in
  // every attempt of the job: only the newest committed layer's are needed to resume.
  void PruneCheckpointStreams(const std::string& job_id, int layer);
  // Deletes one attempt's checkpoints (the job succeeded).
  void RemoveCheckpoints(const std::string& job_id, int attempt);

  FileSystem* fs() const { return fs_; }

 private:
  StagedFile Status(const std::string& base, const std::string& name);
  absl::StatusOr<std::unique_ptr<StagedWriter>> Open(const std::string& base,
                                                     const std::string& name, uint64_t offset);
  std::string AttemptDir(const std::string& job_id, int attempt) const;

  const std::string data_dir_;
  FileSystem* const fs_;
};

}  // namespace quarry::server
