// Safetensors files: a memory-mapped reader (one file, or a sharded model with
// model.safetensors.index.json) and a streaming, optionally sharded writer.
// Torch-free: tensors are exposed as raw little-endian bytes; quarry/tensor_io.h converts them to
// at::Tensor. Readers are immutable after Open() and safe to share between threads; a writer is
// used by one thread at a time.
//
// Format (https://github.com/huggingface/safetensors): u64 little-endian header length N, N bytes
// of JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
// "__metadata__": {str: str}}, then the data; offsets are relative to the end of the header.
// Open() validates everything a corrupt, truncated or hostile file can get wrong and names the
// file and byte offset in the error; it never crashes and never reads out of bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace quarry {

// Element types of the safetensors format (names as in the file's "dtype" field).
enum class StDtype {
  kBool, kU8, kI8, kU16, kI16, kU32, kI32, kU64, kI64,
  kF16, kBF16, kF32, kF64,
  kF8E4M3,  // "F8_E4M3": OCP fp8 e4m3fn (no infinities)
  kF8E5M2,  // "F8_E5M2"
  kF8E8M0,  // "F8_E8M0": exponent-only scale byte, value 2^(u - 127)
};

absl::string_view StDtypeName(StDtype dtype);
std::optional<StDtype> StDtypeFromName(absl::string_view name);
size_t StDtypeSize(StDtype dtype);  // bytes per element

struct StTensorInfo {
  std::string name;
  StDtype dtype = StDtype::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the start of the data section
  uint64_t end = 0;
  int64_t numel() const;
  uint64_t nbytes() const { return end - begin; }
};

// One safetensors file, memory-mapped read-only.
class SafetensorsFile {
 public:
  // Maximum JSON header size we accept (the reference implementation uses 100 MB).
  static constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // Tensors in file order (sorted by data offset).
  const std::vector<StTensorInfo>& tensors() const { return tensors_; }
  const StTensorInfo* Find(absl::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The tensor's bytes, valid while this object lives.
  absl::Span<const uint8_t> Bytes(const StTensorInfo& info) const;
  uint64_t file_size() const { return file_size_; }
  uint64_t data_offset() const { return data_offset_; }  // 8 + header length
  // Drops this process's mapped pages of the tensor's bytes (madvise MADV_DONTNEED; the data
  // stays valid and is read again from the page cache or the file on the next access). The
  // pipeline calls it once a layer's tensors are converted, so file-backed RSS stays O(layer).
  void ReleasePages(const StTensorInfo& info) const;
  // Asks the kernel to read the tensor's bytes ahead (madvise MADV_WILLNEED); returns at once or
  // after queueing the reads. Lets the pipeline read layer i+1 while it computes layer i.
  void WillNeed(const StTensorInfo& info) const;

  // Parses a header JSON already read from `path` (exposed for tests / fuzzing).
  static absl::Status ParseHeader(absl::string_view path, absl::string_view header_json,
                                  uint64_t data_size, std::vector<StTensorInfo>* tensors,
                                  std::map<std::string, std::string>* metadata);

 private:
  SafetensorsFile() = default;
  std::string path_;
  const uint8_t* map_ = nullptr;
  uint64_t file_size_ = 0;
  uint64_t data_offset_ = 0;
  std::vector<StTensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A model's weights: a single model.safetensors, or shards listed by model.safetensors.index.json
// ("weight_map": tensor name -> shard file). Files are opened lazily and kept open.
class SafetensorsModel {
 public:
  // `path` is a model directory, a .safetensors file or an index .json file.
  static absl::StatusOr<std::unique_ptr<SafetensorsModel>> Open(const std::string& path);

  std::vector<std::string> TensorNames() const;  // sorted
  bool Contains(absl::string_view name) const;
  // Shape/dtype/bytes of one tensor; opens its shard on first use.
  absl::StatusOr<const StTensorInfo*> Info(absl::string_view name);
  absl::StatusOr<absl::Span<const uint8_t>> Bytes(absl::string_view name);
  // Sum of all tensors' byte sizes (reads every shard header).
  absl::StatusOr<uint64_t> TotalBytes();
  // See SafetensorsFile::ReleasePages. Unknown names are ignored.
  void ReleasePages(absl::string_view name);
  // SafetensorsFile::WillNeed for every tensor whose name starts with `prefix` (opens shards).
  // Not thread-safe with other calls on this object: call it from the thread that owns it.
  void WillNeedPrefix(absl::string_view prefix);
  const std::vector<std::string>& files() const { return files_; }

 private:
  SafetensorsModel() = default;
  absl::StatusOr<SafetensorsFile*> FileFor(absl::string_view name);
  std::vector<std::string> files_;
  std::map<std::string, std::string, std::less<>> weight_map_;  // tensor -> file path
  std::map<std::string, std::unique_ptr<SafetensorsFile>, std::less<>> open_;
};

// Streams tensors into one or several safetensors files. Each tensor's bytes are appended to its
// shard's hidden ".<basename>-0000K.safetensors.partial" file as soon as they are added (memory
// stays bounded by one tensor); Finish() puts each shard's header in front of its data (without
// copying the data for shards of at least insert_header_min_bytes on filesystems that support
// FALLOC_FL_INSERT_RANGE; by copying otherwise), fsyncs it and renames it into place, the index
// last. A crash or an error leaves only ".partial" files, never a complete-looking one. With
// max_shard_bytes set and more than one shard, shards are named model-00001-of-0000N.safetensors
// plus model.safetensors.index.json; a model that fits one shard is model.safetensors (as HF).
class SafetensorsWriter {
 public:
  struct Options {
    std::string basename = "model";   // file stem
    uint64_t max_shard_bytes = 0;     // 0 = one file, no index
    std::map<std::string, std::string> metadata = {{"format", "pt"}};
    // Shards at least this large get the no-copy header insertion, whose header is padded with
    // spaces to a filesystem block (4 KiB); smaller ones keep HF's exact 8-byte padding.
    uint64_t insert_header_min_bytes = 64ull << 20;
  };
  static absl::StatusOr<std::unique_ptr<SafetensorsWriter>> Create(const std::string& dir,
                                                                   Options options);
  ~SafetensorsWriter();
  // Adds a tensor; `bytes` must hold exactly numel * dtype size bytes (little-endian).
  absl::Status Add(absl::string_view name, StDtype dtype, std::vector<int64_t> shape,
                   absl::Span<const uint8_t> bytes);
  // Writes headers and index; returns the files written (relative names).
  absl::StatusOr<std::vector<std::string>> Finish();
  uint64_t bytes_written() const { return total_bytes_; }
  // While set, every Add is also made on `tee` (same name, dtype, shape, bytes, in order): the
  // layer checkpoints of a resumable job journal what a layer wrote. nullptr = none (default).
  // A failing tee never fails this writer: the tee is poisoned (its Finish() returns the error)
  // and dropped.
  void SetTee(SafetensorsWriter* tee) { tee_ = tee; }

 private:
  struct Shard {
    std::string tmp_path;
    int fd = -1;
    uint64_t size = 0;
    std::vector<StTensorInfo> tensors;
  };
  SafetensorsWriter() = default;
  absl::Status StartShard();
  absl::Status FinishShard(Shard& s, const std::string& final_path);
  std::string dir_;
  Options options_;
  std::vector<Shard> shards_;
  std::map<std::string, bool, std::less<>> names_;
  uint64_t total_bytes_ = 0;
  bool finished_ = false;
  SafetensorsWriter* tee_ = nullptr;
  absl::Status poisoned_;  // set by the writer this one is the tee of
};

// Serialises a header exactly as the Rust serializer HF uses does: "__metadata__" first, then
// tensors sorted by (data offset), compact JSON, padded with spaces to a multiple of 8.
std::string SafetensorsHeaderJson(const std::vector<StTensorInfo>& tensors,
                                  const std::map<std::string, std::string>& metadata);

}  // namespace quarry
