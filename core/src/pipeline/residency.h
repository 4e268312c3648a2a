// Core-internal: counts decoder layers whose weights are resident, so tests can prove the
// pipeline keeps one layer at a time. Thread-safe (atomics).
#pragma once

#include <atomic>

namespace quarry::pipeline {

class LayerResidency {
 public:
  static void Acquire();
  static void Release();
  static int current();
  static int peak();
  static void ResetPeak();  // peak := current
};

// RAII: one resident decoder layer.
class ResidentLayer {
 public:
  ResidentLayer() { LayerResidency::Acquire(); }
  ~ResidentLayer() { LayerResidency::Release(); }
  ResidentLayer(const ResidentLayer&) = delete;
  ResidentLayer& operator=(const ResidentLayer&) = delete;
};

// Peak resident set size of this process so far (getrusage), in bytes.
double PeakRssBytes();
// Current resident set size (/proc/self/statm), in bytes.
double CurrentRssBytes();

}  // namespace quarry::pipeline
