#include "quarry/tensor_io.h"

#include <ATen/Parallel.h>
#include <c10/util/Half.h>

#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "quarry/status.h"

namespace quarry {

at::ScalarType ScalarTypeFor(StDtype dtype) {
  switch (dtype) {
    case StDtype::kBool: return at::kBool;
    case StDtype::kU8: return at::kByte;
    case StDtype::kI8: return at::kChar;
    case StDtype::kU16:
    case StDtype::kI16: return at::kShort;
    case StDtype::kU32:
    case StDtype::kI32: return at::kInt;
    case StDtype::kU64:
    case StDtype::kI64: return at::kLong;
    case StDtype::kF16: return at::kHalf;
    case StDtype::kBF16: return at::kBFloat16;
    case StDtype::kF32: return at::kFloat;
    case StDtype::kF64: return at::kDouble;
    case StDtype::kF8E4M3:
    case StDtype::kF8E5M2:
    case StDtype::kF8E8M0: return at::kByte;
  }
  return at::kByte;
}

absl::StatusOr<StDtype> StDtypeFor(at::ScalarType type) {
  switch (type) {
    case at::kBool: return StDtype::kBool;
    case at::kByte: return StDtype::kU8;
    case at::kChar: return StDtype::kI8;
    case at::kShort: return StDtype::kI16;
    case at::kInt: return StDtype::kI32;
    case at::kLong: return StDtype::kI64;
    case at::kHalf: return StDtype::kF16;
    case at::kBFloat16: return StDtype::kBF16;
    case at::kFloat: return StDtype::kF32;
    case at::kDouble: return StDtype::kF64;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("tensor type ", c10::toString(type), " has no safetensors dtype"));
  }
}

absl::StatusOr<at::Tensor> TensorFromBytes(const StTensorInfo& info,
                                           absl::Span<const uint8_t> bytes) {
  if (bytes.size() != info.nbytes())
    return absl::InvalidArgumentError(absl::StrCat("tensor '", info.name, "': byte size mismatch"));
  at::Tensor t = at::empty(info.shape, at::TensorOptions().dtype(ScalarTypeFor(info.dtype)));
  if (!bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

absl::StatusOr<at::Tensor> FloatTensorFromBytes(const StTensorInfo& info,
                                                absl::Span<const uint8_t> bytes) {
  if (bytes.size() != info.nbytes())
    return absl::InvalidArgumentError(absl::StrCat("tensor '", info.name, "': byte size mismatch"));
  const size_t esize = StDtypeSize(info.dtype);
  if (info.dtype != StDtype::kF32 && info.dtype != StDtype::kBF16 && info.dtype != StDtype::kF16 &&
      info.dtype != StDtype::kF64)
    return absl::InvalidArgumentError(absl::StrCat("tensor '", info.name, "' is not floating point (",
                                                   StDtypeName(info.dtype), ")"));
  at::Tensor t = at::empty(info.shape, at::kFloat);
  float* dst = t.data_ptr<float>();
  const uint8_t* src = bytes.data();
  const StDtype dtype = info.dtype;
  // Chunks of 64K elements: large enough to amortise the thread hand-off, small enough to split
  // one weight matrix across the cores. memcpy per element: file offsets need not be aligned.
  at::parallel_for(0, info.numel(), int64_t{1} << 16, [&](int64_t b, int64_t e) {
    switch (dtype) {
      case StDtype::kF32:
        std::memcpy(dst + b, src + b * esize, static_cast<size_t>(e - b) * esize);
        break;
      case StDtype::kBF16:
        if (reinterpret_cast<uintptr_t>(src) % 2 == 0) {  // the usual case: a plain widening loop
          const uint16_t* s16 = reinterpret_cast<const uint16_t*>(src);
          uint32_t* d32 = reinterpret_cast<uint32_t*>(dst);
          for (int64_t i = b; i < e; ++i) d32[i] = static_cast<uint32_t>(s16[i]) << 16;
          break;
        }
        for (int64_t i = b; i < e; ++i) {
          uint16_t v;
          std::memcpy(&v, src + 2 * i, 2);
          const uint32_t u = static_cast<uint32_t>(v) << 16;
          std::memcpy(dst + i, &u, 4);
        }
        break;
      case StDtype::kF16:
        for (int64_t i = b; i < e; ++i) {
          uint16_t v;
          std::memcpy(&v, src + 2 * i, 2);
          dst[i] = static_cast<float>(c10::Half(v, c10::Half::from_bits()));
        }
        break;
      default:  // kF64
        for (int64_t i = b; i < e; ++i) {
          double v;
          std::memcpy(&v, src + 8 * i, 8);
          dst[i] = static_cast<float>(v);
        }
        break;
    }
  });
  return t;
}

absl::StatusOr<at::Tensor> LoadTensor(const SafetensorsFile& file, absl::string_view name) {
  const StTensorInfo* info = file.Find(name);
  if (info == nullptr)
    return absl::NotFoundError(absl::StrCat("tensor '", name, "' not in '", file.path(), "'"));
  return TensorFromBytes(*info, file.Bytes(*info));
}

absl::StatusOr<at::Tensor> LoadTensor(SafetensorsModel& model, absl::string_view name) {
  QUARRY_ASSIGN_OR_RETURN(const StTensorInfo* info, model.Info(name));
  QUARRY_ASSIGN_OR_RETURN(auto bytes, model.Bytes(name));
  return TensorFromBytes(*info, bytes);
}

absl::StatusOr<std::map<std::string, at::Tensor>> LoadAllTensors(const std::string& path) {
  QUARRY_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
  std::map<std::string, at::Tensor> out;
  for (const auto& info : file->tensors()) {
    QUARRY_ASSIGN_OR_RETURN(out[info.name], TensorFromBytes(info, file->Bytes(info)));
  }
  return out;
}

absl::Status AddTensor(SafetensorsWriter& writer, absl::string_view name, const at::Tensor& tensor,
                       std::optional<StDtype> as) {
  at::Tensor t = tensor.to(at::kCPU).contiguous();
  StDtype dtype;
  if (as.has_value()) {
    if (static_cast<int64_t>(StDtypeSize(*as)) != t.element_size())
      return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': cannot store ",
                                                     c10::toString(t.scalar_type()), " as ",
                                                     StDtypeName(*as)));
    dtype = *as;
  } else {
    QUARRY_ASSIGN_OR_RETURN(dtype, StDtypeFor(t.scalar_type()));
  }
  std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
  absl::Span<const uint8_t> bytes(static_cast<const uint8_t*>(t.data_ptr()), t.nbytes());
  return writer.Add(name, dtype, std::move(shape), bytes);
}

absl::Status SaveTensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  std::filesystem::path p(path);
  std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
  SafetensorsWriter::Options opts;
  opts.basename = p.stem().string();
  opts.metadata = metadata;
  if (p.extension() != ".safetensors")
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' must end in .safetensors"));
  QUARRY_ASSIGN_OR_RETURN(auto writer, SafetensorsWriter::Create(dir, opts));
  for (const auto& [name, t] : tensors) QUARRY_RETURN_IF_ERROR(AddTensor(*writer, name, t));
  return writer->Finish().status();
}

}  // namespace quarry
