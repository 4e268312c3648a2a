// Conversions between safetensors bytes and at::Tensor, and whole-file helpers used by tools and
// tests. Stateless; thread-safe.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"
#include "quarry/safetensors.h"

namespace quarry {

// The at::ScalarType a safetensors dtype is loaded as. F8_E4M3/F8_E5M2/F8_E8M0 have no
// at::ScalarType in LibTorch 1.13: they load as kByte (raw codes); U16/U32/U64 load as the signed
// type of the same width (bits preserved).
at::ScalarType ScalarTypeFor(StDtype dtype);
absl::StatusOr<StDtype> StDtypeFor(at::ScalarType type);

// Copies one tensor's bytes into a new, owned CPU tensor.
absl::StatusOr<at::Tensor> TensorFromBytes(const StTensorInfo& info, absl::Span<const uint8_t> bytes);
absl::StatusOr<at::Tensor> LoadTensor(const SafetensorsFile& file, absl::string_view name);
absl::StatusOr<at::Tensor> LoadTensor(SafetensorsModel& model, absl::string_view name);

// Converts a floating-point tensor's bytes (F32, BF16, F16, F64) straight into a new float32
// tensor: one allocation, one pass (threaded), no intermediate copy in the file's dtype.
// INVALID_ARGUMENT naming the tensor for any other dtype.
absl::StatusOr<at::Tensor> FloatTensorFromBytes(const StTensorInfo& info,
                                                absl::Span<const uint8_t> bytes);

// Loads every tensor of a file (small files only: tools and tests).
absl::StatusOr<std::map<std::string, at::Tensor>> LoadAllTensors(const std::string& path);

// Adds a tensor to a writer (made contiguous, moved to CPU). `as` overrides the file dtype for
// kByte tensors holding fp8/e8m0 codes.
absl::Status AddTensor(SafetensorsWriter& writer, absl::string_view name, const at::Tensor& tensor,
                       std::optional<StDtype> as = std::nullopt);

// Writes `tensors` (sorted by name) into one safetensors file at `path`.
absl::Status SaveTensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                         const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace quarry
