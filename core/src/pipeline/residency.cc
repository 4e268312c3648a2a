#include "pipeline/residency.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>

namespace quarry::pipeline {

void LayerResidencyTracker::Register(int id, const std::vector<at::Tensor>& tensors) {
  Entry e;
  e.id = id;
  for (const at::Tensor& t : tensors)
    if (t.defined() && t.has_storage()) e.storages.push_back(t.storage().getWeakStorageImpl());
  entries_.push_back(std::move(e));
  Resident();
}

int LayerResidencyTracker::Resident() {
  int live = 0;
  std::vector<Entry> keep;
  for (auto& e : entries_) {
    bool alive = false;
    for (const auto& s : e.storages) alive |= !s.expired();
    if (alive) {
      ++live;
      keep.push_back(std::move(e));
    }
  }
  entries_ = std::move(keep);  // a freed layer never comes back
  if (live > peak_) peak_ = live;
  return live;
}

RssFigures CurrentRss() {
  RssFigures r;
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return r;
  char line[256];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    long kb = 0;
    if (std::sscanf(line, "RssAnon: %ld kB", &kb) == 1) r.anon_bytes = kb * 1024.0;
    if (std::sscanf(line, "RssFile: %ld kB", &kb) == 1) r.file_bytes = kb * 1024.0;
  }
  std::fclose(f);
  return r;
}

namespace {
void RaiseTo(std::atomic<double>& peak, double v) {
  double cur = peak.load();
  while (v > cur && !peak.compare_exchange_weak(cur, v)) {
  }
}
}  // namespace

RssSampler::RssSampler(int period_ms) {
  SampleNow();
  thread_ = std::thread([this, period_ms] {
    while (!stop_.load()) {
      SampleNow();
      std::this_thread::sleep_for(std::chrono::milliseconds(period_ms));
    }
  });
}

RssSampler::~RssSampler() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void RssSampler::SampleNow() {
  const RssFigures r = CurrentRss();
  RaiseTo(peak_anon_, r.anon_bytes);
  RaiseTo(peak_file_, r.file_bytes);
}

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
