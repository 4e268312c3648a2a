// Core-internal: measures what the pipeline keeps resident, so the report's figures are
// observations, not claims.
//  - LayerResidencyTracker: decoder layers whose tensors are still alive, from weak references to
//    the storages of every tensor a loaded layer owns (a layer counts until all are freed).
//    One pipeline thread uses it.
//  - RssSampler: the process's peak anonymous and file-backed resident set, sampled from
//    /proc/self/status every few milliseconds by a background thread (thread-safe getters).
#pragma once

#include <ATen/ATen.h>

#include <atomic>
#include <thread>
#include <vector>

namespace quarry::pipeline {

class LayerResidencyTracker {
 public:
  // Starts tracking the storages behind `tensors` (undefined tensors are ignored) as layer `id`.
  void Register(int id, const std::vector<at::Tensor>& tensors);
  // Layers with at least one live storage now; updates peak().
  int Resident();
  int peak() const { return peak_; }

 private:
  struct Entry {
    int id = 0;
    std::vector<c10::weak_intrusive_ptr<c10::StorageImpl>> storages;
  };
  std::vector<Entry> entries_;
  int peak_ = 0;
};

struct RssFigures {
  double anon_bytes = 0;  // RssAnon: heap, tensors, thread stacks
  double file_bytes = 0;  // RssFile: mapped files (checkpoint shards, libraries)
};
// This process's resident set now, split as /proc/self/status does (zeros where unavailable).
RssFigures CurrentRss();

class RssSampler {
 public:
  explicit RssSampler(int period_ms = 5);
  ~RssSampler();  // stops the thread
  RssSampler(const RssSampler&) = delete;
  RssSampler& operator=(const RssSampler&) = delete;
  void SampleNow();  // also callable from the pipeline thread at known peaks
  double peak_anon_bytes() const { return peak_anon_.load(); }
  double peak_file_bytes() const { return peak_file_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<double> peak_anon_{0}, peak_file_{0};
  std::thread thread_;
};

// Peak resident set size of this process so far (getrusage), in bytes.
double PeakRssBytes();
// Current resident set size (/proc/self/statm), in bytes.
double CurrentRssBytes();

}  // namespace quarry::pipeline
