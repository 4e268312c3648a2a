// What the worker tells the server about its machine: host memory, CPU name, its own RSS.
// Read from /proc; stateless; thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace quarry::worker {

uint64_t HostMemoryTotalBytes();      // MemTotal, 0 when unknown
uint64_t HostMemoryAvailableBytes();  // MemAvailable, 0 when unknown
uint64_t ProcessRssBytes();           // VmRSS of this process, 0 when unknown
std::string CpuModelName();           // "model name" of the first CPU, "cpu" when unknown
std::string HostName();

}  // namespace quarry::worker
