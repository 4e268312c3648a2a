#include "pipeline/residency.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

namespace quarry::pipeline {
namespace {
std::atomic<int> g_current{0};
std::atomic<int> g_peak{0};
}  // namespace

void LayerResidency::Acquire() {
  int now = ++g_current;
  int peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}
void LayerResidency::Release() { --g_current; }
int LayerResidency::current() { return g_current.load(); }
int LayerResidency::peak() { return g_peak.load(); }
void LayerResidency::ResetPeak() { g_peak.store(g_current.load()); }

double PeakRssBytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) * 1024.0;
}

double CurrentRssBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  long pages_total = 0, pages_resident = 0;
  int n = std::fscanf(f, "%ld %ld", &pages_total, &pages_resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

}  // namespace quarry::pipeline
