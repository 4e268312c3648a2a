// Fuzzes the safetensors reader (core/src/model/safetensors.cc). The first input byte picks:
//   even: the rest is a whole file (u64 header length, JSON header, data): SafetensorsFile::Open,
//         then every tensor's bytes are read end to end (ASan catches a span past the mapping);
//   odd:  the rest is a header JSON alone: SafetensorsFile::ParseHeader with a 1 TiB data section
//         (so real models' headers, whose data is not here, get past the bounds checks).
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "quarry/safetensors.h"

namespace {

void CheckTensors(const std::vector<quarry::StTensorInfo>& tensors, uint64_t data_size) {
  for (const auto& t : tensors) {
    // What Open/ParseHeader promise: end >= begin, inside the data, size = numel * dtype size.
    if (t.end < t.begin || t.end > data_size) std::abort();
    if (static_cast<uint64_t>(t.numel()) * quarry::StDtypeSize(t.dtype) != t.nbytes()) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const absl::string_view rest = quarry::fuzz::AsView(data + 1, size - 1);
  if ((data[0] & 1) == 0) {
    const std::string path = quarry::fuzz::WriteScratchFile("model.safetensors", rest);
    auto file = quarry::SafetensorsFile::Open(path);
    if (!file.ok()) return 0;
    const auto& f = **file;
    CheckTensors(f.tensors(), f.file_size() - f.data_offset());
    uint64_t sum = 0;
    for (const auto& t : f.tensors()) {
      auto bytes = f.Bytes(t);
      for (uint8_t b : bytes) sum += b;
      if (f.Find(t.name) == nullptr) std::abort();
      f.WillNeed(t);
      f.ReleasePages(t);
    }
    volatile uint64_t sink = sum;
    (void)sink;
    return 0;
  }
  constexpr uint64_t kDataSize = 1ull << 40;
  std::vector<quarry::StTensorInfo> tensors;
  std::map<std::string, std::string> metadata;
  if (!quarry::SafetensorsFile::ParseHeader("fuzz.safetensors", rest, kDataSize, &tensors,
                                            &metadata)
           .ok())
    return 0;
  CheckTensors(tensors, kDataSize);
  // The writer's serialisation of what was read must parse back to the same tensors.
  const std::string again = quarry::SafetensorsHeaderJson(tensors, metadata);
  std::vector<quarry::StTensorInfo> tensors2;
  std::map<std::string, std::string> metadata2;
  if (!quarry::SafetensorsFile::ParseHeader("fuzz.safetensors", again, kDataSize, &tensors2,
                                            &metadata2)
           .ok() ||
      tensors2.size() != tensors.size() || metadata2 != metadata)
    std::abort();
  return 0;
}
