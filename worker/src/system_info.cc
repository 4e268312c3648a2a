#include "system_info.h"

#include <unistd.h>

#include <fstream>
#include <string>

namespace quarry::worker {
namespace {

// The value of "<key>: <number> kB" in a /proc file, in bytes.
uint64_t ProcKb(const char* file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      try {
        return std::stoull(line.substr(key.size() + 1)) * 1024;
      } catch (...) {
        return 0;
      }
    }
  }
  return 0;
}

}  // namespace

uint64_t HostMemoryTotalBytes() { return ProcKb("/proc/meminfo", "MemTotal"); }
uint64_t HostMemoryAvailableBytes() { return ProcKb("/proc/meminfo", "MemAvailable"); }
uint64_t ProcessRssBytes() { return ProcKb("/proc/self/status", "VmRSS"); }

std::string CpuModelName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos && colon + 2 <= line.size()) return line.substr(colon + 2);
    }
  }
  return "cpu";
}

std::string HostName() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

}  // namespace quarry::worker
