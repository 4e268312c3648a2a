// The server's view of time, injectable so tests can drive heartbeat timeouts and grace periods
// without sleeping. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

namespace quarry::server {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time in ms since the Unix epoch (event timestamps, job times).
  virtual int64_t NowUnixMs() = 0;
  // Monotonic time in ms (timeouts); unrelated to the wall clock.
  virtual int64_t NowMonotonicMs() = 0;
};

// The real clocks (std::chrono::system_clock / steady_clock).
Clock* RealClock();

// A clock that moves only when told to. Both readings advance together.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_unix_ms = 1'700'000'000'000) : now_(start_unix_ms) {}
  int64_t NowUnixMs() override { return now_.load(); }
  int64_t NowMonotonicMs() override { return now_.load(); }
  void AdvanceMs(int64_t ms) { now_ += ms; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace quarry::server
