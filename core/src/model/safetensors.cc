#include "quarry/safetensors.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "quarry/status.h"

namespace quarry {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

struct DtypeEntry {
  StDtype dtype;
  absl::string_view name;
  size_t size;
};
constexpr DtypeEntry kDtypes[] = {
    {StDtype::kBool, "BOOL", 1},      {StDtype::kU8, "U8", 1},
    {StDtype::kI8, "I8", 1},          {StDtype::kU16, "U16", 2},
    {StDtype::kI16, "I16", 2},        {StDtype::kU32, "U32", 4},
    {StDtype::kI32, "I32", 4},        {StDtype::kU64, "U64", 8},
    {StDtype::kI64, "I64", 8},        {StDtype::kF16, "F16", 2},
    {StDtype::kBF16, "BF16", 2},      {StDtype::kF32, "F32", 4},
    {StDtype::kF64, "F64", 8},        {StDtype::kF8E4M3, "F8_E4M3", 1},
    {StDtype::kF8E5M2, "F8_E5M2", 1}, {StDtype::kF8E8M0, "F8_E8M0", 1},
};

absl::Status FileError(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("safetensors file '", path, "': ", what));
}

std::string ErrnoText() { return std::strerror(errno); }

// Writes all of `data` to fd, retrying short writes.
absl::Status WriteAll(int fd, const void* data, size_t size, absl::string_view path) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("writing '", path, "': ", ErrnoText()));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view StDtypeName(StDtype dtype) {
  for (const auto& e : kDtypes)
    if (e.dtype == dtype) return e.name;
  return "?";
}

std::optional<StDtype> StDtypeFromName(absl::string_view name) {
  for (const auto& e : kDtypes)
    if (e.name == name) return e.dtype;
  return std::nullopt;
}

size_t StDtypeSize(StDtype dtype) {
  for (const auto& e : kDtypes)
    if (e.dtype == dtype) return e.size;
  return 0;
}

int64_t StTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::Status SafetensorsFile::ParseHeader(absl::string_view path, absl::string_view header_json,
                                          uint64_t data_size, std::vector<StTensorInfo>* tensors,
                                          std::map<std::string, std::string>* metadata) {
  Json header;
  try {
    header = Json::parse(header_json.begin(), header_json.end());
  } catch (const Json::parse_error& e) {
    return FileError(path, absl::StrCat("header is not valid JSON at header byte ", e.byte,
                                        " (file offset ", 8 + e.byte, ")"));
  } catch (const Json::exception& e) {  // out_of_range.406: a number beyond double (1e309)
    return FileError(path, absl::StrCat("header is not valid JSON: ", e.what()));
  }
  if (!header.is_object()) return FileError(path, "header JSON is not an object");
  tensors->clear();
  metadata->clear();
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const Json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return FileError(path, "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          return FileError(path, absl::StrCat("__metadata__['", m.key(), "'] is not a string"));
        (*metadata)[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto where = [&](absl::string_view what) {
      return FileError(path, absl::StrCat("tensor '", name, "': ", what));
    };
    if (!v.is_object()) return where("entry is not an object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) return where("missing string 'dtype'");
    auto dtype = StDtypeFromName(v["dtype"].get<std::string>());
    if (!dtype) return where(absl::StrCat("unknown dtype '", v["dtype"].get<std::string>(), "'"));
    if (!v.contains("shape") || !v["shape"].is_array()) return where("missing array 'shape'");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2)
      return where("'data_offsets' must be an array [begin, end]");
    StTensorInfo info;
    info.name = name;
    info.dtype = *dtype;
    // Element count with overflow checks: a hostile shape must not wrap around.
    uint64_t numel = 1;
    for (const Json& d : v["shape"]) {
      if (!d.is_number_unsigned()) return where("shape entries must be non-negative integers");
      uint64_t dim = d.get<uint64_t>();
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return where("shape dimension too large");
      if (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / dim)
        return where("shape element count overflows");
      numel *= dim;
      info.shape.push_back(static_cast<int64_t>(dim));
    }
    for (const Json& o : v["data_offsets"])
      if (!o.is_number_unsigned()) return where("data_offsets must be non-negative integers");
    info.begin = v["data_offsets"][0].get<uint64_t>();
    info.end = v["data_offsets"][1].get<uint64_t>();
    if (info.end < info.begin)
      return where(absl::StrCat("data_offsets end ", info.end, " < begin ", info.begin));
    if (info.end > data_size)
      return where(absl::StrCat("data ends at file offset ", info.end, " + header, past the end ",
                                "of the file (data section is ", data_size,
                                " bytes; file truncated?)"));
    const size_t esize = StDtypeSize(info.dtype);
    if (numel > std::numeric_limits<uint64_t>::max() / esize)
      return where("byte size overflows");
    if (numel * esize != info.nbytes())
      return where(absl::StrCat("shape/size mismatch: ", numel, " elements of ",
                                StDtypeName(info.dtype), " need ", numel * esize,
                                " bytes but data_offsets span ", info.nbytes()));
    tensors->push_back(std::move(info));
  }
  std::sort(tensors->begin(), tensors->end(), [](const StTensorInfo& a, const StTensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Tensors must tile the data section without overlaps (the reference implementation also
  // rejects holes; we accept trailing/internal padding but never overlaps).
  const StTensorInfo* widest = nullptr;  // the non-empty tensor reaching furthest so far
  for (const auto& cur : *tensors) {
    if (cur.nbytes() == 0) continue;
    if (widest != nullptr && cur.begin < widest->end)
      return FileError(path, absl::StrCat("tensors '", widest->name, "' [", widest->begin, ", ",
                                          widest->end, ") and '", cur.name, "' [", cur.begin,
                                          ", ", cur.end, ") overlap"));
    if (widest == nullptr || cur.end > widest->end) widest = &cur;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat("cannot open '", path, "': ", ErrnoText()));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("cannot stat '", path, "': ", ErrnoText()));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return FileError(path, "not a regular file");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    return FileError(path, absl::StrCat("file is ", size, " bytes; too short for the 8-byte ",
                                        "header length"));
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) {
    return absl::InternalError(absl::StrCat("cannot mmap '", path, "': ", ErrnoText()));
  }
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->map_ = static_cast<const uint8_t*>(map);
  file->file_size_ = size;
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(file->map_[i]) << (8 * i);
  if (header_len > kMaxHeaderBytes) {
    return FileError(path, absl::StrCat("header length ", header_len, " (bytes 0..7) exceeds ",
                                        "the ", kMaxHeaderBytes, "-byte limit"));
  }
  if (header_len > size - 8) {
    return FileError(path, absl::StrCat("header length ", header_len, " (bytes 0..7) runs past ",
                                        "the end of the ", size, "-byte file (truncated?)"));
  }
  file->data_offset_ = 8 + header_len;
  absl::string_view header(reinterpret_cast<const char*>(file->map_ + 8), header_len);
  QUARRY_RETURN_IF_ERROR(
      ParseHeader(path, header, size - file->data_offset_, &file->tensors_, &file->metadata_));
  // Sequential access is the common case (layer by layer); let the kernel read ahead.
  ::madvise(const_cast<uint8_t*>(file->map_), size, MADV_NORMAL);
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(const_cast<uint8_t*>(map_), file_size_);
}

const StTensorInfo* SafetensorsFile::Find(absl::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

absl::Span<const uint8_t> SafetensorsFile::Bytes(const StTensorInfo& info) const {
  return absl::Span<const uint8_t>(map_ + data_offset_ + info.begin, info.nbytes());
}

void SafetensorsFile::ReleasePages(const StTensorInfo& info) const {
  if (info.nbytes() == 0) return;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  // Whole pages inside the tensor's range only: a neighbour's partial page stays mapped.
  const uint64_t begin = (data_offset_ + info.begin + page - 1) / page * page;
  const uint64_t end = (data_offset_ + info.end) / page * page;
  if (end > begin)
    ::madvise(const_cast<uint8_t*>(map_) + begin, end - begin, MADV_DONTNEED);
}

// ---------------------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<SafetensorsModel>> SafetensorsModel::Open(const std::string& path) {
  std::unique_ptr<SafetensorsModel> model(new SafetensorsModel());
  std::error_code ec;
  fs::path p(path);
  fs::path index;
  if (fs::is_directory(p, ec)) {
    if (fs::exists(p / "model.safetensors.index.json", ec)) {
      index = p / "model.safetensors.index.json";
    } else if (fs::exists(p / "model.safetensors", ec)) {
      p = p / "model.safetensors";
    } else {
      return absl::NotFoundError(absl::StrCat("model directory '", path, "' has neither ",
                                              "model.safetensors nor ",
                                              "model.safetensors.index.json"));
    }
  } else if (p.extension() == ".json") {
    index = p;
  }
  if (!index.empty()) {
    std::ifstream in(index);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot open '", index.string(), "'"));
    Json j = Json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") ||
        !j["weight_map"].is_object())
      return absl::InvalidArgumentError(
          absl::StrCat("index '", index.string(), "': not JSON with a 'weight_map' object"));
    std::map<std::string, bool> files;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        return absl::InvalidArgumentError(absl::StrCat("index '", index.string(),
                                                       "': weight_map['", it.key(),
                                                       "'] is not a file name"));
      std::string file = it.value().get<std::string>();
      if (file.find('/') != std::string::npos || file == ".." || file.empty())
        return absl::InvalidArgumentError(absl::StrCat("index '", index.string(), "': shard name '",
                                                       file, "' must be a plain file name"));
      std::string full = (index.parent_path() / file).string();
      model->weight_map_[it.key()] = full;
      files[full] = true;
    }
    for (auto& [f, unused] : files) model->files_.push_back(f);
    return model;
  }
  QUARRY_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(p.string()));
  for (const auto& t : file->tensors()) model->weight_map_[t.name] = p.string();
  model->files_.push_back(p.string());
  model->open_[p.string()] = std::move(file);
  return model;
}

std::vector<std::string> SafetensorsModel::TensorNames() const {
  std::vector<std::string> names;
  names.reserve(weight_map_.size());
  for (const auto& [n, unused] : weight_map_) names.push_back(n);
  return names;
}

bool SafetensorsModel::Contains(absl::string_view name) const {
  return weight_map_.find(name) != weight_map_.end();
}

absl::StatusOr<SafetensorsFile*> SafetensorsModel::FileFor(absl::string_view name) {
  auto it = weight_map_.find(name);
  if (it == weight_map_.end())
    return absl::NotFoundError(absl::StrCat("tensor '", name, "' not found in the model"));
  auto o = open_.find(it->second);
  if (o == open_.end()) {
    QUARRY_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(it->second));
    o = open_.emplace(it->second, std::move(file)).first;
  }
  return o->second.get();
}

absl::StatusOr<const StTensorInfo*> SafetensorsModel::Info(absl::string_view name) {
  QUARRY_ASSIGN_OR_RETURN(SafetensorsFile * file, FileFor(name));
  const StTensorInfo* info = file->Find(name);
  if (info == nullptr)
    return absl::InvalidArgumentError(absl::StrCat("index maps tensor '", name, "' to '",
                                                   file->path(), "' but that file lacks it"));
  return info;
}

void SafetensorsFile::WillNeed(const StTensorInfo& info) const {
  if (info.nbytes() == 0) return;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t begin = (data_offset_ + info.begin) / page * page;
  const uint64_t end = data_offset_ + info.end;
  ::madvise(const_cast<uint8_t*>(map_) + begin, end - begin, MADV_WILLNEED);
}

void SafetensorsModel::WillNeedPrefix(absl::string_view prefix) {
  for (auto it = weight_map_.lower_bound(prefix); it != weight_map_.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix.data(), prefix.size()) != 0) break;
    auto file = FileFor(it->first);
    if (!file.ok()) continue;
    if (const StTensorInfo* info = (*file)->Find(it->first)) (*file)->WillNeed(*info);
  }
}

void SafetensorsModel::ReleasePages(absl::string_view name) {
  auto it = weight_map_.find(name);
  if (it == weight_map_.end()) return;
  auto o = open_.find(it->second);
  if (o == open_.end()) return;
  if (const StTensorInfo* info = o->second->Find(name)) o->second->ReleasePages(*info);
}

absl::StatusOr<absl::Span<const uint8_t>> SafetensorsModel::Bytes(absl::string_view name) {
  QUARRY_ASSIGN_OR_RETURN(SafetensorsFile * file, FileFor(name));
  const StTensorInfo* info = file->Find(name);
  if (info == nullptr)
    return absl::InvalidArgumentError(absl::StrCat("index maps tensor '", name, "' to '",
                                                   file->path(), "' but that file lacks it"));
  return file->Bytes(*info);
}

absl::StatusOr<uint64_t> SafetensorsModel::TotalBytes() {
  uint64_t total = 0;
  for (const auto& [name, unused] : weight_map_) {
    QUARRY_ASSIGN_OR_RETURN(const StTensorInfo* info, Info(name));
    total += info->nbytes();
  }
  return total;
}

// ---------------------------------------------------------------------------------------------

std::string SafetensorsHeaderJson(const std::vector<StTensorInfo>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) {
    Json m = Json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  for (const auto& t : tensors) {
    Json e = Json::object();
    e["dtype"] = std::string(StDtypeName(t.dtype));
    e["shape"] = t.shape;
    e["data_offsets"] = {t.begin, t.end};
    header[t.name] = e;
  }
  std::string s = header.dump();
  while (s.size() % 8 != 0) s.push_back(' ');
  return s;
}

absl::StatusOr<std::unique_ptr<SafetensorsWriter>> SafetensorsWriter::Create(
    const std::string& dir, Options options) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create '", dir, "': ", ec.message()));
  std::unique_ptr<SafetensorsWriter> w(new SafetensorsWriter());
  w->dir_ = dir;
  w->options_ = std::move(options);
  QUARRY_RETURN_IF_ERROR(w->StartShard());
  return w;
}

SafetensorsWriter::~SafetensorsWriter() {
  for (auto& s : shards_) {
    if (s.fd >= 0) ::close(s.fd);
    if (s.fd >= 0 || !finished_) ::unlink(s.tmp_path.c_str());
  }
}

absl::Status SafetensorsWriter::StartShard() {
  Shard s;
  s.tmp_path = absl::StrFormat("%s/.%s-%05d.safetensors.partial", dir_, options_.basename,
                               static_cast<int>(shards_.size()) + 1);
  s.fd = ::open(s.tmp_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (s.fd < 0)
    return absl::InternalError(absl::StrCat("cannot create '", s.tmp_path, "': ", ErrnoText()));
  shards_.push_back(std::move(s));
  return absl::OkStatus();
}

absl::Status SafetensorsWriter::Add(absl::string_view name, StDtype dtype,
                                    std::vector<int64_t> shape, absl::Span<const uint8_t> bytes) {
  if (finished_) return absl::FailedPreconditionError("SafetensorsWriter already finished");
  if (names_.count(name)) return absl::AlreadyExistsError(absl::StrCat("duplicate tensor '", name, "'"));
  StTensorInfo info;
  info.name = std::string(name);
  info.dtype = dtype;
  info.shape = std::move(shape);
  if (static_cast<uint64_t>(info.numel()) * StDtypeSize(dtype) != bytes.size())
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': ", bytes.size(),
                                                   " bytes do not match its shape and dtype"));
  if (options_.max_shard_bytes > 0 && shards_.back().size > 0 &&
      shards_.back().size + bytes.size() > options_.max_shard_bytes)
    QUARRY_RETURN_IF_ERROR(StartShard());
  Shard& s = shards_.back();
  info.begin = s.size;
  info.end = s.size + bytes.size();
  QUARRY_RETURN_IF_ERROR(WriteAll(s.fd, bytes.data(), bytes.size(), s.tmp_path));
  s.size += bytes.size();
  total_bytes_ += bytes.size();
  s.tensors.push_back(std::move(info));
  names_[std::string(name)] = true;
  if (tee_ != nullptr) {
    absl::Status st = tee_->Add(name, dtype, s.tensors.back().shape, bytes);
    if (!st.ok()) {
      tee_->poisoned_ = st;
      tee_ = nullptr;
    }
  }
  return absl::OkStatus();
}

namespace {

// Appends `size` bytes of `in` (from offset 0) to `out` with an in-kernel copy, falling back to
// read/write where copy_file_range is unsupported.
absl::Status AppendFile(int in, uint64_t size, int out, const std::string& in_path,
                        const std::string& out_path) {
  off_t in_off = 0;
  uint64_t left = size;
  while (left > 0) {
    ssize_t c = ::copy_file_range(in, &in_off, out, nullptr, left, 0);
    if (c < 0 && errno == EINTR) continue;
    if (c <= 0) break;
    left -= static_cast<uint64_t>(c);
  }
  std::vector<char> buf(left > 0 ? (1 << 20) : 0);
  while (left > 0) {
    ssize_t r = ::pread(in, buf.data(), std::min<uint64_t>(buf.size(), left), in_off);
    if (r <= 0) return absl::InternalError(absl::StrCat("reading back '", in_path, "'"));
    QUARRY_RETURN_IF_ERROR(WriteAll(out, buf.data(), static_cast<size_t>(r), out_path));
    in_off += r;
    left -= static_cast<uint64_t>(r);
  }
  return absl::OkStatus();
}

std::string LengthPrefix(uint64_t n) {
  std::string len(8, '\0');
  for (int b = 0; b < 8; ++b) len[b] = static_cast<char>(n >> (8 * b));
  return len;
}

}  // namespace

absl::Status SafetensorsWriter::FinishShard(Shard& s, const std::string& final_path) {
  std::string header = SafetensorsHeaderJson(s.tensors, options_.metadata);
  // Large shards: the header is put in front of the data already on disk without moving it
  // (fallocate FALLOC_FL_INSERT_RANGE, ext4/xfs), so finishing costs no copy of the data. The
  // inserted range must be whole filesystem blocks: the header is padded with spaces (JSON
  // whitespace, which the format allows) up to the block boundary.
  if (s.size >= options_.insert_header_min_bytes) {
    struct stat st {};
    const uint64_t block = ::fstat(s.fd, &st) == 0 && st.st_blksize > 0
                               ? static_cast<uint64_t>(st.st_blksize) : 4096;
    const uint64_t prefix = (8 + header.size() + block - 1) / block * block;
    if (::fallocate(s.fd, FALLOC_FL_INSERT_RANGE, 0, static_cast<off_t>(prefix)) == 0) {
      std::string padded = header + std::string(prefix - 8 - header.size(), ' ');
      std::string head = LengthPrefix(padded.size()) + padded;
      if (::pwrite(s.fd, head.data(), head.size(), 0) != static_cast<ssize_t>(head.size()))
        return absl::InternalError(absl::StrCat("writing the header of '", s.tmp_path, "': ",
                                                ErrnoText()));
      if (::fsync(s.fd) != 0)
        return absl::InternalError(absl::StrCat("fsync '", s.tmp_path, "': ", ErrnoText()));
      ::close(s.fd);
      s.fd = -1;
      if (::rename(s.tmp_path.c_str(), final_path.c_str()) != 0)
        return absl::InternalError(absl::StrCat("rename to '", final_path, "': ", ErrnoText()));
      return absl::OkStatus();
    }
    // EOPNOTSUPP (tmpfs, older filesystems) or EINVAL: copy instead.
  }
  const std::string tmp_final = final_path + ".partial";
  int out = ::open(tmp_final.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0)
    return absl::InternalError(absl::StrCat("cannot create '", tmp_final, "': ", ErrnoText()));
  std::string head = LengthPrefix(header.size()) + header;
  absl::Status st = WriteAll(out, head.data(), head.size(), tmp_final);
  if (st.ok()) st = AppendFile(s.fd, s.size, out, s.tmp_path, tmp_final);
  if (st.ok() && ::fsync(out) != 0)
    st = absl::InternalError(absl::StrCat("fsync '", tmp_final, "': ", ErrnoText()));
  ::close(out);
  ::close(s.fd);
  s.fd = -1;
  ::unlink(s.tmp_path.c_str());
  if (!st.ok()) {
    ::unlink(tmp_final.c_str());
    return st;
  }
  if (::rename(tmp_final.c_str(), final_path.c_str()) != 0)
    return absl::InternalError(absl::StrCat("rename to '", final_path, "': ", ErrnoText()));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> SafetensorsWriter::Finish() {
  if (finished_) return absl::FailedPreconditionError("SafetensorsWriter already finished");
  if (!poisoned_.ok()) return poisoned_;
  // As Hugging Face's save_pretrained: a model that fits one shard is a plain model.safetensors
  // without an index, whatever the shard limit.
  const int n = static_cast<int>(shards_.size());
  const bool sharded = options_.max_shard_bytes > 0 && n > 1;
  std::vector<std::string> written;
  std::map<std::string, std::string> weight_map;  // sorted by tensor name, as HF writes it
  for (int i = 0; i < n; ++i) {
    Shard& s = shards_[i];
    std::string name = sharded ? absl::StrFormat("%s-%05d-of-%05d.safetensors", options_.basename,
                                                 i + 1, n)
                               : absl::StrCat(options_.basename, ".safetensors");
    QUARRY_RETURN_IF_ERROR(FinishShard(s, absl::StrCat(dir_, "/", name)));
    written.push_back(name);
    for (const auto& t : s.tensors) weight_map[t.name] = name;
  }
  if (sharded) {
    // Written under a .partial name and renamed last: an index on disk means every shard is.
    Json index = {{"metadata", {{"total_size", total_bytes_}}}, {"weight_map", weight_map}};
    std::string name = absl::StrCat(options_.basename, ".safetensors.index.json");
    std::string path = absl::StrCat(dir_, "/", name);
    {
      std::ofstream out(path + ".partial");
      out << index.dump(2) << "\n";
      if (!out) return absl::InternalError(absl::StrCat("writing '", name, "'"));
    }
    if (::rename((path + ".partial").c_str(), path.c_str()) != 0)
      return absl::InternalError(absl::StrCat("rename to '", path, "': ", ErrnoText()));
    written.push_back(name);
  }
  finished_ = true;
  return written;
}

}  // namespace quarry
