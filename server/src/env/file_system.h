// The filesystem operations the artifact and upload stores use, behind an interface so tests can
// inject faults (a full disk, a failing rename) the way leveldb's Env does. Paths are plain
// std::strings. Implementations are thread-safe; one WritableFile/ReadableFile is used by one
// thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace quarry::server {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual absl::Status Append(absl::string_view data) = 0;
  // Flushes to stable storage (fsync).
  virtual absl::Status Sync() = 0;
  virtual absl::Status Close() = 0;
};

class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads up to n bytes at offset into *out (fewer only at the end of the file).
  virtual absl::Status Read(uint64_t offset, size_t n, std::string* out) = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  virtual absl::Status CreateDirs(const std::string& dir) = 0;
  // NOT_FOUND when missing.
  virtual absl::StatusOr<uint64_t> FileSize(const std::string& path) = 0;
  virtual bool Exists(const std::string& path) = 0;
  // Opens for appending; creates the file when missing. With truncate_to set, the file is first
  // cut to that many bytes (dropping a torn tail after a crash).
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> OpenForAppend(
      const std::string& path, uint64_t truncate_to) = 0;
  virtual absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(const std::string& path) = 0;
  // Atomic within one filesystem (rename(2)); replaces `to`.
  virtual absl::Status Rename(const std::string& from, const std::string& to) = 0;
  virtual absl::Status Remove(const std::string& path) = 0;
  virtual absl::Status RemoveAll(const std::string& dir) = 0;
  // Regular files under dir, recursively, as paths relative to dir, sorted.
  virtual absl::StatusOr<std::vector<std::string>> ListFiles(const std::string& dir) = 0;
};

// The real (POSIX) filesystem. Never null; lives forever.
FileSystem* PosixFileSystem();

// Lowercase hex sha256 of a whole file.
absl::StatusOr<std::string> Sha256OfFile(FileSystem* fs, const std::string& path);

// Incremental sha256 (OpenSSL), for data that streams by.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(absl::string_view data);
  std::string HexDigest();  // finishes; call once

 private:
  void* ctx_;
};

}  // namespace quarry::server
