#include "export/gguf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "quarry/status.h"

namespace quarry::exporter::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint32_t kVersion = 3;
// Sanity bounds on a file's counts (llama.cpp's gguf.cpp has similar ones): far above any real
// model, low enough that a hostile count cannot make us allocate unbounded memory.
constexpr uint64_t kMaxTensors = 1u << 20;
constexpr uint64_t kMaxKv = 1u << 16;
constexpr uint32_t kMaxDims = 4;

template <typename T>
void Put(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian hosts only (x86-64, aarch64)
  out->append(b, sizeof(T));
}
void PutString(std::string* out, const std::string& s) {
  Put<uint64_t>(out, s.size());
  out->append(s);
}

void PutValue(std::string* out, const Value& v, bool with_type) {
  if (with_type) Put<uint32_t>(out, static_cast<uint32_t>(v.type));
  switch (v.type) {
    case ValueType::kU8: Put<uint8_t>(out, static_cast<uint8_t>(v.u)); break;
    case ValueType::kI8: Put<int8_t>(out, static_cast<int8_t>(v.i)); break;
    case ValueType::kU16: Put<uint16_t>(out, static_cast<uint16_t>(v.u)); break;
    case ValueType::kI16: Put<int16_t>(out, static_cast<int16_t>(v.i)); break;
    case ValueType::kU32: Put<uint32_t>(out, static_cast<uint32_t>(v.u)); break;
    case ValueType::kI32: Put<int32_t>(out, static_cast<int32_t>(v.i)); break;
    case ValueType::kF32: Put<float>(out, static_cast<float>(v.f)); break;
    case ValueType::kBool: Put<uint8_t>(out, v.u ? 1 : 0); break;
    case ValueType::kString: PutString(out, v.s); break;
    case ValueType::kU64: Put<uint64_t>(out, v.u); break;
    case ValueType::kI64: Put<int64_t>(out, v.i); break;
    case ValueType::kF64: Put<double>(out, v.f); break;
    case ValueType::kArray:
      Put<uint32_t>(out, static_cast<uint32_t>(v.array_type));
      Put<uint64_t>(out, v.array.size());
      for (const Value& e : v.array) PutValue(out, e, false);
      break;
  }
}

uint64_t AlignUp(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

absl::Status WriteAll(int fd, const char* p, size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("writing ", path, ": ", std::strerror(errno)));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

// Bounds-checked cursor over the mapped file.
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t n, const std::string& path) : p_(p), n_(n), path_(path) {}
  size_t pos() const { return pos_; }
  absl::Status Need(uint64_t k, const char* what) {
    if (k > n_ - pos_)
      return absl::InvalidArgumentError(absl::StrCat(
          path_, ": truncated or corrupt GGUF: ", what, " at byte ", pos_, " needs ", k,
          " bytes, the file has ", n_ - pos_, " left"));
    return absl::OkStatus();
  }
  template <typename T>
  absl::StatusOr<T> Get(const char* what) {
    QUARRY_RETURN_IF_ERROR(Need(sizeof(T), what));
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  absl::StatusOr<std::string> String(const char* what) {
    QUARRY_ASSIGN_OR_RETURN(uint64_t len, Get<uint64_t>(what));
    QUARRY_RETURN_IF_ERROR(Need(len, what));
    std::string s(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return s;
  }
  absl::Status Error(const std::string& why) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": corrupt GGUF at byte ", pos_, ": ", why));
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  const std::string& path_;
};

size_t MinBytes(ValueType t) {
  switch (t) {
    case ValueType::kU8: case ValueType::kI8: case ValueType::kBool: return 1;
    case ValueType::kU16: case ValueType::kI16: return 2;
    case ValueType::kU32: case ValueType::kI32: case ValueType::kF32: return 4;
    case ValueType::kU64: case ValueType::kI64: case ValueType::kF64: case ValueType::kString:
      return 8;
    case ValueType::kArray: return 12;
  }
  return 1;
}

absl::StatusOr<Value> ReadValue(Cursor& c, ValueType t, int depth) {
  Value v;
  v.type = t;
  switch (t) {
    case ValueType::kU8: { QUARRY_ASSIGN_OR_RETURN(auto x, c.Get<uint8_t>("u8")); v.u = x; break; }
    case ValueType::kI8: { QUARRY_ASSIGN_OR_RETURN(auto x, c.Get<int8_t>("i8")); v.i = x; break; }
    case ValueType::kU16: { QUARRY_ASSIGN_OR_RETURN(auto x, c.Get<uint16_t>("u16")); v.u = x; break; }
    case ValueType::kI16: { QUARRY_ASSIGN_OR_RETURN(auto x, c.Get<int16_t>("i16")); v.i = x; break; }
    case ValueType::kU32: { QUARRY_ASSIGN_OR_RETURN(auto x, c.Get<uint32_t>("u32")); v.u = x; break; }
    case ValueType::kI32: { QUARRY_ASSIGN_OR_RETURN(auto x, c.Get<int32_t>("i32")); v.i = x; break; }
    case ValueType::kF32: { QUARRY_ASSIGN_OR_RETURN(auto x, c.Get<float>("f32")); v.f = x; break; }
    case ValueType::kBool: {
      QUARRY_ASSIGN_OR_RETURN(auto x, c.Get<uint8_t>("bool"));
      if (x > 1) return c.Error(absl::StrCat("bool value ", static_cast<int>(x)));
      v.u = x;
      break;
    }
    case ValueType::kString: { QUARRY_ASSIGN_OR_RETURN(v.s, c.String("string")); break; }
    case ValueType::kU64: { QUARRY_ASSIGN_OR_RETURN(v.u, c.Get<uint64_t>("u64")); break; }
    case ValueType::kI64: { QUARRY_ASSIGN_OR_RETURN(v.i, c.Get<int64_t>("i64")); break; }
    case ValueType::kF64: { QUARRY_ASSIGN_OR_RETURN(v.f, c.Get<double>("f64")); break; }
    case ValueType::kArray: {
      if (depth > 0) return c.Error("nested arrays are not supported");
      QUARRY_ASSIGN_OR_RETURN(uint32_t et, c.Get<uint32_t>("array type"));
      if (et > static_cast<uint32_t>(ValueType::kF64)) return c.Error(absl::StrCat("array element type ", et));
      v.array_type = static_cast<ValueType>(et);
      QUARRY_ASSIGN_OR_RETURN(uint64_t n, c.Get<uint64_t>("array length"));
      if (n > (1ull << 32) || n * MinBytes(v.array_type) < n)
        return c.Error(absl::StrCat("array of ", n, " elements"));
      QUARRY_RETURN_IF_ERROR(c.Need(n * MinBytes(v.array_type), "array elements"));
      v.array.reserve(n);
      for (uint64_t k = 0; k < n; ++k) {
        QUARRY_ASSIGN_OR_RETURN(Value e, ReadValue(c, v.array_type, depth + 1));
        v.array.push_back(std::move(e));
      }
      break;
    }
  }
  return v;
}

}  // namespace

Value Value::U32(uint32_t x) { Value v; v.type = ValueType::kU32; v.u = x; return v; }
Value Value::I32(int32_t x) { Value v; v.type = ValueType::kI32; v.i = x; return v; }
Value Value::F32(float x) { Value v; v.type = ValueType::kF32; v.f = x; return v; }
Value Value::Bool(bool x) { Value v; v.type = ValueType::kBool; v.u = x ? 1 : 0; return v; }
Value Value::Str(std::string x) { Value v; v.type = ValueType::kString; v.s = std::move(x); return v; }
Value Value::StrArray(std::vector<std::string> xs) {
  Value v;
  v.type = ValueType::kArray;
  v.array_type = ValueType::kString;
  v.array.reserve(xs.size());
  for (auto& x : xs) v.array.push_back(Str(std::move(x)));
  return v;
}
Value Value::F32Array(const std::vector<float>& xs) {
  Value v;
  v.type = ValueType::kArray;
  v.array_type = ValueType::kF32;
  for (float x : xs) v.array.push_back(F32(x));
  return v;
}
Value Value::I32Array(const std::vector<int32_t>& xs) {
  Value v;
  v.type = ValueType::kArray;
  v.array_type = ValueType::kI32;
  for (int32_t x : xs) v.array.push_back(I32(x));
  return v;
}

// ---------------------------------------------------------------- writer

absl::StatusOr<std::unique_ptr<GgufWriter>> GgufWriter::Create(const std::string& path,
                                                               uint32_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    return absl::InvalidArgumentError(absl::StrCat("GGUF alignment ", alignment, " is not a power of two"));
  std::unique_ptr<GgufWriter> w(new GgufWriter());
  w->path_ = path;
  w->alignment_ = alignment;
  const std::string data = path + ".data.partial";
  w->data_fd_ = ::open(data.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w->data_fd_ < 0)
    return absl::InternalError(absl::StrCat("cannot create ", data, ": ", std::strerror(errno)));
  if (alignment != 32) w->Set("general.alignment", Value::U32(alignment));
  return w;
}

GgufWriter::~GgufWriter() {
  if (data_fd_ >= 0) ::close(data_fd_);
  if (!finished_) {
    std::error_code ec;
    std::filesystem::remove(path_ + ".data.partial", ec);
    std::filesystem::remove(path_ + ".partial", ec);
  }
}

void GgufWriter::Set(const std::string& key, Value v) {
  for (auto& [k, old] : kv_) {
    if (k == key) { old = std::move(v); return; }
  }
  kv_.emplace_back(key, std::move(v));
}

absl::Status GgufWriter::AddTensor(const std::string& name, const std::vector<int64_t>& ne,
                                   GgmlType type, const std::string& data) {
  if (finished_) return absl::FailedPreconditionError("GGUF writer already finished");
  if (tensor_index_.count(name))
    return absl::InternalError(absl::StrCat("GGUF tensor ", name, " written twice"));
  if (ne.empty() || ne.size() > kMaxDims)
    return absl::InternalError(absl::StrCat("GGUF tensor ", name, ": ", ne.size(), " dims"));
  int64_t rows = 1;
  for (size_t k = 1; k < ne.size(); ++k) rows *= ne[k];
  if (ne[0] % BlockElements(type) != 0 ||
      static_cast<int64_t>(data.size()) != rows * RowBytes(type, ne[0]))
    return absl::InternalError(absl::StrCat("GGUF tensor ", name, " (", Name(type), "): ",
                                            data.size(), " bytes do not match its shape"));
  const uint64_t offset = AlignUp(data_bytes_, alignment_);
  if (offset > data_bytes_) {
    const std::string pad(offset - data_bytes_, '\0');
    QUARRY_RETURN_IF_ERROR(WriteAll(data_fd_, pad.data(), pad.size(), path_));
  }
  QUARRY_RETURN_IF_ERROR(WriteAll(data_fd_, data.data(), data.size(), path_));
  data_bytes_ = offset + data.size();
  tensor_index_[name] = tensors_.size();
  tensors_.push_back({name, ne, type, offset});
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> GgufWriter::Finish(const std::string& final_path) {
  if (finished_) return absl::FailedPreconditionError("GGUF writer already finished");
  const std::string target = final_path.empty() ? path_ : final_path;
  std::string h;
  Put<uint32_t>(&h, kMagic);
  Put<uint32_t>(&h, kVersion);
  Put<uint64_t>(&h, tensors_.size());
  Put<uint64_t>(&h, kv_.size());
  for (const auto& [k, v] : kv_) {
    PutString(&h, k);
    PutValue(&h, v, true);
  }
  for (const Info& t : tensors_) {
    PutString(&h, t.name);
    Put<uint32_t>(&h, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) Put<uint64_t>(&h, static_cast<uint64_t>(d));
    Put<uint32_t>(&h, static_cast<uint32_t>(t.type));
    Put<uint64_t>(&h, t.offset);
  }
  h.resize(AlignUp(h.size(), alignment_), '\0');
  const std::string partial = target + ".partial";
  const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", partial, ": ", std::strerror(errno)));
  absl::Status st = WriteAll(fd, h.data(), h.size(), partial);
  // The data section: copied in the kernel (copy_file_range), falling back to read/write.
  loff_t in_off = 0;
  uint64_t left = data_bytes_;
  while (st.ok() && left > 0) {
    const ssize_t n = ::copy_file_range(data_fd_, &in_off, fd, nullptr, left, 0);
    if (n > 0) { left -= static_cast<uint64_t>(n); continue; }
    if (n < 0 && errno == EINTR) continue;
    std::string buf(1 << 20, '\0');
    while (st.ok() && left > 0) {
      const ssize_t r = ::pread(data_fd_, buf.data(), std::min<uint64_t>(buf.size(), left), in_off);
      if (r <= 0) { st = absl::InternalError(absl::StrCat("reading back ", path_, ".data.partial")); break; }
      st = WriteAll(fd, buf.data(), static_cast<size_t>(r), partial);
      in_off += r;
      left -= static_cast<uint64_t>(r);
    }
  }
  if (st.ok() && ::fsync(fd) != 0) st = absl::InternalError(absl::StrCat("fsync ", partial));
  ::close(fd);
  if (!st.ok()) {
    std::error_code ec;
    std::filesystem::remove(partial, ec);  // the destructor only knows Create's path
    return st;
  }
  std::error_code ec;
  std::filesystem::rename(partial, target, ec);
  if (ec) return absl::InternalError(absl::StrCat("renaming ", partial, ": ", ec.message()));
  ::close(data_fd_);
  data_fd_ = -1;
  std::filesystem::remove(path_ + ".data.partial", ec);
  finished_ = true;
  return h.size() + data_bytes_;
}

// ---------------------------------------------------------------- reader

int64_t TensorInfo::rows() const {
  int64_t r = 1;
  for (size_t k = 1; k < ne.size(); ++k) r *= ne[k];
  return r;
}

GgufFile::~GgufFile() {
  if (map_ != nullptr) ::munmap(const_cast<uint8_t*>(map_), size_);
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  struct stat sb;
  if (::fstat(fd, &sb) != 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("stat ", path));
  }
  f->size_ = static_cast<size_t>(sb.st_size);
  if (f->size_ < 24) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", f->size_, " bytes is too short for a GGUF header (24)"));
  }
  void* m = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) return absl::InternalError(absl::StrCat("mmap ", path, ": ", std::strerror(errno)));
  f->map_ = static_cast<const uint8_t*>(m);
  Cursor c(f->map_, f->size_, f->path_);
  QUARRY_ASSIGN_OR_RETURN(uint32_t magic, c.Get<uint32_t>("magic"));
  if (magic != kMagic) return absl::InvalidArgumentError(absl::StrCat(path, ": not a GGUF file (bad magic)"));
  QUARRY_ASSIGN_OR_RETURN(f->version_, c.Get<uint32_t>("version"));
  if (f->version_ != 3 && f->version_ != 2)
    return absl::InvalidArgumentError(absl::StrCat(path, ": GGUF version ", f->version_, " (this reader reads 2 and 3)"));
  QUARRY_ASSIGN_OR_RETURN(uint64_t nt, c.Get<uint64_t>("tensor_count"));
  QUARRY_ASSIGN_OR_RETURN(uint64_t nkv, c.Get<uint64_t>("metadata_kv_count"));
  if (nt > kMaxTensors) return c.Error(absl::StrCat(nt, " tensors"));
  if (nkv > kMaxKv) return c.Error(absl::StrCat(nkv, " metadata entries"));
  for (uint64_t k = 0; k < nkv; ++k) {
    QUARRY_ASSIGN_OR_RETURN(std::string key, c.String("metadata key"));
    QUARRY_ASSIGN_OR_RETURN(uint32_t t, c.Get<uint32_t>("value type"));
    if (t > static_cast<uint32_t>(ValueType::kF64)) return c.Error(absl::StrCat("value type ", t, " of ", key));
    QUARRY_ASSIGN_OR_RETURN(Value v, ReadValue(c, static_cast<ValueType>(t), 0));
    if (f->kv_index_.count(key)) return c.Error(absl::StrCat("duplicate key ", key));
    f->kv_index_[key] = f->kv_.size();
    f->kv_.emplace_back(std::move(key), std::move(v));
  }
  if (const Value* a = f->Find("general.alignment")) {
    if (a->type != ValueType::kU32 || a->u == 0 || (a->u & (a->u - 1)) != 0)
      return c.Error("general.alignment is not a power-of-two u32");
    f->alignment_ = static_cast<uint32_t>(a->u);
  }
  for (uint64_t k = 0; k < nt; ++k) {
    TensorInfo t;
    QUARRY_ASSIGN_OR_RETURN(t.name, c.String("tensor name"));
    QUARRY_ASSIGN_OR_RETURN(uint32_t nd, c.Get<uint32_t>("n_dims"));
    if (nd == 0 || nd > kMaxDims) return c.Error(absl::StrCat(t.name, ": ", nd, " dims"));
    uint64_t elems = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      QUARRY_ASSIGN_OR_RETURN(uint64_t n, c.Get<uint64_t>("dim"));
      if (n == 0 || n > (1ull << 40) || elems > (1ull << 62) / n)
        return c.Error(absl::StrCat(t.name, ": dimension ", n));
      elems *= n;
      t.ne.push_back(static_cast<int64_t>(n));
    }
    QUARRY_ASSIGN_OR_RETURN(uint32_t ty, c.Get<uint32_t>("tensor type"));
    auto type = TypeFromId(ty);
    if (!type)
      return absl::UnimplementedError(absl::StrCat(path, ": tensor ", t.name, " has ggml type ", ty,
                                                   "; this reader reads F32, F16, BF16, Q4_0, Q4_1, "
                                                   "Q8_0 and MXFP4"));
    t.type = *type;
    if (t.ne[0] % BlockElements(t.type) != 0)
      return c.Error(absl::StrCat(t.name, ": ne[0] ", t.ne[0], " is not a multiple of ", Name(t.type), "'s block"));
    QUARRY_ASSIGN_OR_RETURN(t.offset, c.Get<uint64_t>("tensor offset"));
    if (t.offset % f->alignment_ != 0)
      return c.Error(absl::StrCat(t.name, ": offset ", t.offset, " is not aligned to ", f->alignment_));
    // Up to 2^62 elements pass the dimension checks; their bytes (F32: 2^64) must not wrap.
    const uint64_t row_bytes = static_cast<uint64_t>(RowBytes(t.type, t.ne[0]));
    if (static_cast<uint64_t>(t.rows()) > (uint64_t{1} << 63) / row_bytes)
      return c.Error(absl::StrCat(t.name, ": ", elems, " elements of ", Name(t.type),
                                  " overflow a 64-bit byte size"));
    t.bytes = static_cast<uint64_t>(t.rows()) * row_bytes;
    if (f->tensor_index_.count(t.name)) return c.Error(absl::StrCat("duplicate tensor ", t.name));
    f->tensor_index_[t.name] = f->tensors_.size();
    f->tensors_.push_back(std::move(t));
  }
  f->data_start_ = AlignUp(c.pos(), f->alignment_);
  for (const TensorInfo& t : f->tensors_) {
    if (f->data_start_ > f->size_ || t.offset > f->size_ - f->data_start_ ||
        t.bytes > f->size_ - f->data_start_ - t.offset)
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": truncated GGUF: tensor ", t.name, " (", t.bytes, " bytes at data offset ",
          t.offset, ") ends past the end of the file (", f->size_, " bytes)"));
  }
  return f;
}

const Value* GgufFile::Find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

absl::StatusOr<std::string> GgufFile::GetString(const std::string& key) const {
  const Value* v = Find(key);
  if (!v) return absl::NotFoundError(absl::StrCat(path_, ": no metadata key ", key));
  if (v->type != ValueType::kString) return absl::InvalidArgumentError(absl::StrCat(path_, ": ", key, " is not a string"));
  return v->s;
}

absl::StatusOr<uint64_t> GgufFile::GetUInt(const std::string& key) const {
  const Value* v = Find(key);
  if (!v) return absl::NotFoundError(absl::StrCat(path_, ": no metadata key ", key));
  switch (v->type) {
    case ValueType::kU8: case ValueType::kU16: case ValueType::kU32: case ValueType::kU64: return v->u;
    case ValueType::kI8: case ValueType::kI16: case ValueType::kI32: case ValueType::kI64:
      if (v->i >= 0) return static_cast<uint64_t>(v->i);
      break;
    default: break;
  }
  return absl::InvalidArgumentError(absl::StrCat(path_, ": ", key, " is not a non-negative integer"));
}

absl::StatusOr<double> GgufFile::GetFloat(const std::string& key) const {
  const Value* v = Find(key);
  if (!v) return absl::NotFoundError(absl::StrCat(path_, ": no metadata key ", key));
  if (v->type != ValueType::kF32 && v->type != ValueType::kF64)
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", key, " is not a float"));
  return v->f;
}

absl::StatusOr<bool> GgufFile::GetBool(const std::string& key) const {
  const Value* v = Find(key);
  if (!v) return absl::NotFoundError(absl::StrCat(path_, ": no metadata key ", key));
  if (v->type != ValueType::kBool) return absl::InvalidArgumentError(absl::StrCat(path_, ": ", key, " is not a bool"));
  return v->u != 0;
}

const TensorInfo* GgufFile::FindTensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

absl::Span<const uint8_t> GgufFile::Data(const TensorInfo& t) const {
  return absl::Span<const uint8_t>(map_ + data_start_ + t.offset, t.bytes);
}

void GgufFile::Release(const TensorInfo& t) const {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(map_ + data_start_ + t.offset);
  const uintptr_t end = begin + t.bytes;
  const uintptr_t b = (begin + page - 1) / page * page, e = end / page * page;
  if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

}  // namespace quarry::exporter::gguf
