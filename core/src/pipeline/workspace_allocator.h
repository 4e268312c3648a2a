// Core-internal: a CPU allocator for LibTorch that keeps large freed blocks for reuse by the
// next allocation of the same size. The pipeline allocates the same tensor shapes layer after
// layer (a decoder layer's float32 weights, their fake-quantized copies, activations); glibc
// returns every block over 32 MiB to the kernel on free, so without reuse each layer re-faults
// and re-zeroes gigabytes of fresh pages. Blocks under kMinCachedBytes go to the default
// allocator's path (malloc). The cache holds at most `limit` bytes; Trim() frees it.
// Thread-safe (one mutex; allocation of large blocks is rare).
#pragma once

#include <cstddef>
#include <cstdint>

namespace quarry::pipeline {

class WorkspaceAllocator {
 public:
  static constexpr size_t kMinCachedBytes = size_t{4} << 20;
  // Installs the allocator as LibTorch's CPU allocator (once per process; later calls only
  // change the limit). Tensors allocated before keep their own deleters.
  static void Install(uint64_t limit_bytes);
  // Frees every cached block (call when a job ends). No-op when not installed.
  static void Trim();
  // Bytes held in the cache now / blocks handed out again so far (for tests and reports).
  static uint64_t cached_bytes();
  static uint64_t reuses();
};

}  // namespace quarry::pipeline
