// Core-internal: the GGUF v3 container (ggml docs/gguf.md), written and read. Little-endian:
//   u32 magic "GGUF", u32 version 3, u64 tensor_count, u64 metadata_kv_count,
//   metadata: { gguf_string key, u32 value_type, value } (string = u64 length + bytes, no NUL;
//             array = u32 element type, u64 count, elements),
//   tensor infos: { gguf_string name, u32 n_dims, u64 ne[n_dims] (ne[0] = contiguous dim),
//                   u32 ggml_type, u64 offset (from the start of the data section, a multiple
//                   of general.alignment) },
//   zero padding to general.alignment (default 32), then the data section.
// GgufWriter streams: tensor bytes go to "<path>.data.partial" as they arrive (O(one tensor)
// memory); Finish() writes the header to "<path>.partial", appends the data (copy_file_range:
// no pass through user space) and renames it to <path>. GgufFile maps a file read-only and
// checks every count, length and offset against the file size before use, so a truncated or
// hostile file is an INVALID_ARGUMENT error naming the file, the byte offset and what was wrong.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "export/gguf_format.h"

namespace quarry::exporter::gguf {

// gguf_type (metadata value types).
enum class ValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8,
  kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

struct Value {
  ValueType type = ValueType::kU32;
  uint64_t u = 0;   // unsigned ints and bool
  int64_t i = 0;    // signed ints
  double f = 0;     // floats
  std::string s;    // string
  ValueType array_type = ValueType::kU8;
  std::vector<Value> array;

  static Value U32(uint32_t v);
  static Value I32(int32_t v);
  static Value F32(float v);
  static Value Bool(bool v);
  static Value Str(std::string v);
  static Value StrArray(std::vector<std::string> v);
  static Value F32Array(const std::vector<float>& v);
  static Value I32Array(const std::vector<int32_t>& v);
};

class GgufWriter {
 public:
  static absl::StatusOr<std::unique_ptr<GgufWriter>> Create(const std::string& path,
                                                            uint32_t alignment = 32);
  ~GgufWriter();
  // Metadata in insertion order (a key set twice keeps its first position, the last value).
  void Set(const std::string& key, Value v);
  // Appends one tensor: ne in ggml order (ne[0] the contiguous dimension), data its bytes
  // (REQUIRES data.size() == prod(ne[1:]) * RowBytes(type, ne[0])).
  absl::Status AddTensor(const std::string& name, const std::vector<int64_t>& ne, GgmlType type,
                         const std::string& data);
  bool HasTensor(const std::string& name) const { return tensor_index_.count(name) > 0; }
  // Writes the file (to `final_path` when given, else the path of Create); returns its size.
  absl::StatusOr<uint64_t> Finish(const std::string& final_path = "");
  uint64_t bytes_written() const { return data_bytes_; }

 private:
  GgufWriter() = default;
  struct Info {
    std::string name;
    std::vector<int64_t> ne;
    GgmlType type;
    uint64_t offset;
  };
  std::string path_;
  uint32_t alignment_ = 32;
  int data_fd_ = -1;
  uint64_t data_bytes_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<Info> tensors_;
  std::map<std::string, size_t> tensor_index_;
  bool finished_ = false;
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml order
  GgmlType type;
  uint64_t offset = 0;      // from the data section
  uint64_t bytes = 0;
  int64_t rows() const;     // prod(ne[1:])
};

class GgufFile {
 public:
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);
  ~GgufFile();
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  const std::string& path() const { return path_; }
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* Find(const std::string& key) const;
  // Typed getters: NOT_FOUND naming the key when absent, INVALID_ARGUMENT on a wrong type.
  absl::StatusOr<std::string> GetString(const std::string& key) const;
  absl::StatusOr<uint64_t> GetUInt(const std::string& key) const;   // any non-negative integer
  absl::StatusOr<double> GetFloat(const std::string& key) const;    // f32 / f64
  absl::StatusOr<bool> GetBool(const std::string& key) const;
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* FindTensor(const std::string& name) const;
  absl::Span<const uint8_t> Data(const TensorInfo& t) const;
  // Drops the mapped pages of a tensor already read (file-backed RSS stays O(tensor)).
  void Release(const TensorInfo& t) const;

 private:
  GgufFile() = default;
  std::string path_;
  const uint8_t* map_ = nullptr;
  size_t size_ = 0;
  uint64_t data_start_ = 0;
  uint32_t version_ = 0, alignment_ = 32;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

}  // namespace quarry::exporter::gguf
