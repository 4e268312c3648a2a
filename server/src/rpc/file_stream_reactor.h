// FileStreamReactor: the server-streaming half shared by DownloadArtifact (a job's artifact, to a
// client) and FetchInput (an uploaded model's or dataset's files, to a worker). It sends each file
// as ArtifactChunks of at most ServiceDeps::chunk_bytes, one write in flight, at least one chunk
// per file (so an empty file, or a resume at its end, still announces name, size and sha256).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "metrics/server_metrics.h"
#include "quarry/v1/jobs.pb.h"
#include "rpc/services.h"
#include "store/artifact_store.h"

namespace quarry::server {

// What to stream: files in order, the first one from first_offset (a resumed download).
struct FileStreamPlan {
  struct File {
    std::string path;        // on the server's file system
    v1::ArtifactInfo info;   // name, size and sha256 as recorded when it was stored
  };
  std::vector<File> files;
  uint64_t first_offset = 0;
};

struct FileStreamNames {
  std::string rpc;          // RpcTimer / metrics method name, e.g. "DownloadArtifact"
  std::string bytes_label;  // label of the downloaded_bytes counter, e.g. "artifact"
  std::string what;         // noun for error messages, e.g. "artifact"
  std::string peer;         // who reads the stream, e.g. "client"
};

class FileStreamReactor final : public grpc::ServerWriteReactor<v1::ArtifactChunk> {
 public:
  // Runs plan() (checks and lookups; an error status finishes the RPC with it) and starts
  // streaming. The reactor deletes itself when gRPC is done with it.
  FileStreamReactor(const ServiceDeps& deps, FileStreamNames names,
                    const std::function<absl::StatusOr<FileStreamPlan>()>& plan);

  void OnWriteDone(bool ok) override;
  void OnDone() override { delete this; }

 private:
  void Next();
  void Done(const absl::Status& st);

  const ServiceDeps deps_;
  const FileStreamNames names_;
  RpcTimer timer_;
  FileStreamPlan plan_;
  size_t index_ = 0;
  uint64_t offset_ = 0;
  bool sent_any_ = false;  // of the current file
  std::unique_ptr<ReadableFile> file_;
  v1::ArtifactChunk chunk_;
};

}  // namespace quarry::server
