// Fuzzes the sharded-model index (model.safetensors.index.json, SafetensorsModel in
// core/src/model/safetensors.cc): the input is the index; beside it lies one valid shard,
// "shard.safetensors" with tensors "a" and "b", so an index that names it gets past Open and
// every accessor (Info, Bytes, TotalBytes, ReleasePages, WillNeedPrefix) runs on what it maps.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_util.h"
#include "quarry/safetensors.h"

namespace {

// u64 header length + header + 8 data bytes: a = F32[1] at [0, 4), b = U8[2, 2] at [4, 8).
std::string ShardBytes() {
  std::string header =
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
      R"("b":{"dtype":"U8","shape":[2,2],"data_offsets":[4,8]}})";
  while (header.size() % 8 != 0) header.push_back(' ');
  std::string file;
  for (int i = 0; i < 8; ++i) file.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  return file + header + std::string("\x00\x00\x80\x3f\x01\x02\x03\x04", 8);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool shard_written = [] {
    quarry::fuzz::WriteScratchFile("shard.safetensors", ShardBytes());
    return true;
  }();
  (void)shard_written;
  const std::string path = quarry::fuzz::WriteScratchFile("model.safetensors.index.json",
                                                          quarry::fuzz::AsView(data, size));
  auto model = quarry::SafetensorsModel::Open(path);
  if (!model.ok()) return 0;
  auto& m = **model;
  for (const std::string& name : m.TensorNames()) {
    if (!m.Contains(name)) std::abort();
    auto info = m.Info(name);
    auto bytes = m.Bytes(name);
    if (info.ok() != bytes.ok()) std::abort();
    if (bytes.ok()) {
      uint64_t sum = 0;
      for (uint8_t b : *bytes) sum += b;
      volatile uint64_t sink = sum;
      (void)sink;
      if ((*info)->nbytes() != bytes->size()) std::abort();
    }
    m.ReleasePages(name);
  }
  (void)m.TotalBytes();
  m.WillNeedPrefix("");
  m.WillNeedPrefix("a");
  return 0;
}
