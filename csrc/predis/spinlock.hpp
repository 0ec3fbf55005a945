// A test-and-test-and-set spinlock for critical sections of a few dozen instructions
// (one bucket probe, one free-list pop). Host only.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace predis {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Locks a plain uint32_t word in place (a bucket's lock field), so the word can live inside
// a structure shared with device code. 0 = free, 1 = held.
class WordLock {
 public:
  explicit WordLock(uint32_t& word) noexcept : word_(word) {
    for (int spins = 0;; ++spins) {
      // acquire: the critical section's reads happen after we own the word.
      if (__atomic_exchange_n(&word_, 1u, __ATOMIC_ACQUIRE) == 0u) return;
      while (__atomic_load_n(&word_, __ATOMIC_RELAXED) != 0u) {
        if (spins++ < 64) {
          cpu_relax();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  ~WordLock() {
    // release: our writes are visible to the next owner.
    __atomic_store_n(&word_, 0u, __ATOMIC_RELEASE);
  }
  WordLock(const WordLock&) = delete;
  WordLock& operator=(const WordLock&) = delete;

 private:
  uint32_t& word_;
};

// A standalone spinlock usable with std::lock_guard / std::unique_lock.
class SpinLock {
 public:
  void lock() noexcept {
    for (int spins = 0;; ++spins) {
      if (!flag_.exchange(true, std::memory_order_acquire)) return;
      while (flag_.load(std::memory_order_relaxed)) {
        if (spins++ < 64) {
          cpu_relax();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  bool try_lock() noexcept {
    return !flag_.load(std::memory_order_relaxed) &&
           !flag_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { flag_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> flag_{false};
};

}  // namespace predis
