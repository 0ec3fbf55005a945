// The table's clock, in nanoseconds. Monotonic (steady_clock since creation) for live use;
// manual for trace replay and tests, where time moves only when told to.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace predis {

class TimeSource {
 public:
  explicit TimeSource(bool manual) : manual_(manual), origin_(std::chrono::steady_clock::now()) {}

  bool manual() const noexcept { return manual_; }

  // Never 0 on the monotonic clock, so that "expiry == 0" can mean "never expires".
  uint64_t now() const noexcept {
    if (manual_) return manual_now_.load(std::memory_order_relaxed);
    const auto d = std::chrono::steady_clock::now() - origin_;
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()) +
           1;
  }

  // Manual clock only (the caller checks). False, and no change, if the clock would wrap.
  bool advance(uint64_t ns) noexcept {
    uint64_t now = manual_now_.load(std::memory_order_relaxed);
    do {
      if (ns > UINT64_MAX - now) return false;
    } while (!manual_now_.compare_exchange_weak(now, now + ns, std::memory_order_relaxed));
    return true;
  }

 private:
  bool manual_;
  std::chrono::steady_clock::time_point origin_;
  std::atomic<uint64_t> manual_now_{1};
};

}  // namespace predis
