// The access log: sampled access events carried from the cache to Python through a
// SpscRing. Pushing never blocks: when the ring is full, or another producer holds it for
// longer than a short bounded spin, the events are dropped and the caller counts them.
#pragma once

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "predis/ring_buffer.hpp"
#include "predis/spinlock.hpp"

namespace predis {

enum class AccessOp : uint8_t { kGet = 0, kPut = 1, kDelete = 2, kPrefetch = 3 };

// 24 bytes; mirrored by predis.access_log.EVENT_DTYPE.
struct AccessEvent {
  uint64_t key;           // the int key, or the 64-bit hash of a bytes key
  uint64_t timestamp_ns;  // the table's clock
  uint32_t value_size;    // bytes of the value read or written; 0 on a miss
  uint8_t op;             // AccessOp
  uint8_t hit;            // 1 when the key was present (get, delete) or replaced (put)
  uint8_t key_kind;       // KeyKind
  uint8_t reserved;
};
static_assert(sizeof(AccessEvent) == 24, "AccessEvent layout is part of the Python API");
static_assert(SpscRingLayout<AccessEvent>::check(), "ring indices must not share blocks");

class AccessLog {
 public:
  AccessLog(std::size_t capacity, double sample_rate) : ring_(capacity) {
    set_sample_rate(sample_rate);
  }

  std::size_t capacity() const noexcept { return ring_.capacity(); }

  // The caller validates 0 <= rate <= 1.
  void set_sample_rate(double rate) noexcept {
    rate_.store(rate, std::memory_order_relaxed);
    uint64_t threshold = 0;
    if (rate >= 1.0) {
      threshold = UINT64_MAX;
    } else if (rate > 0.0) {
      threshold = static_cast<uint64_t>(std::ldexp(rate, 64));
    }
    threshold_.store(threshold, std::memory_order_relaxed);
  }
  double sample_rate() const noexcept { return rate_.load(std::memory_order_relaxed); }
  bool enabled() const noexcept { return threshold_.load(std::memory_order_relaxed) != 0; }

  // Whether to log one event: a Bernoulli(rate) draw from a per-thread xorshift64*.
  bool sample() const noexcept {
    const uint64_t t = threshold_.load(std::memory_order_relaxed);
    if (t == UINT64_MAX) return true;
    if (t == 0) return false;
    thread_local uint64_t state = 0x9e3779b97f4a7c15ULL ^ reinterpret_cast<uintptr_t>(&state);
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545f4914f6cdd1dULL < t;
  }

  // Producer side, any thread. Returns how many events were pushed; the rest were dropped.
  std::size_t push(const AccessEvent* events, std::size_t n) noexcept {
    std::size_t pushed = 0;
    while (pushed < n) {
      if (!acquire_producer()) break;
      const std::size_t chunk = n - pushed < kChunk ? n - pushed : kChunk;
      const std::size_t done = ring_.try_push_batch(events + pushed, chunk);
      producer_.unlock();
      pushed += done;
      if (done < chunk) break;  // full
    }
    return pushed;
  }

  // Consumer side, any thread (serialised here, since the ring has one consumer).
  std::size_t drain(AccessEvent* out, std::size_t max) {
    std::lock_guard<std::mutex> guard(consumer_);
    return ring_.pop_batch(out, max);
  }

  std::size_t pending() const noexcept { return ring_.size_approx(); }

 private:
  // Producers take turns in chunks so one huge batch cannot starve the others.
  static constexpr std::size_t kChunk = 4096;
  static constexpr int kProducerSpins = 256;

  bool acquire_producer() noexcept {
    for (int i = 0; i < kProducerSpins; ++i) {
      if (producer_.try_lock()) return true;
      cpu_relax();
    }
    return false;
  }

  SpscRing<AccessEvent> ring_;
  SpinLock producer_;
  std::mutex consumer_;
  std::atomic<double> rate_{0.0};
  std::atomic<uint64_t> threshold_{0};
};

}  // namespace predis
