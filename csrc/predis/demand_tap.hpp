// The demand tap: the int keys and hit bits of the demand gets that a cache's access-log
// drain hands out, kept for one consumer that takes them in chunks (the MLOps loop's drift
// detector and training window). The drain offers its events with a few instructions per
// event; the consumer waits without spinning until a chunk is full, or until the oldest
// kept request has waited long enough, so the serving path carries no per-batch work for
// the loop. Past `capacity` kept requests, new ones are counted as dropped, not kept.
// The consumer may also peek: copy the kept requests it has not seen yet and leave them
// kept, to be taken later with the rest (an A/B test's looks count the requests so far
// without taking a chunk for the listeners each time).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "predis/access_log.hpp"
#include "predis/bucket.hpp"

namespace predis {

class DemandTap {
 public:
  using Clock = std::chrono::steady_clock;

  // capacity >= 1 (the binding checks).
  explicit DemandTap(std::size_t capacity) : keys_(capacity), hits_(capacity) {}

  DemandTap(const DemandTap&) = delete;
  DemandTap& operator=(const DemandTap&) = delete;

  std::size_t capacity() const noexcept { return keys_.size(); }

  // Producer (the drain): keeps the demand gets of int keys among `events`, in order.
  void offer(const AccessEvent* events, std::size_t n) {
    constexpr auto kGet = static_cast<std::uint8_t>(AccessOp::kGet);
    constexpr auto kInt = static_cast<std::uint8_t>(KeyKind::kInt);
    bool wake = false;
    {
      const std::lock_guard<std::mutex> hold(mutex_);
      if (closed_) return;
      // Locals: the stores through the uint8_t hits would otherwise make the compiler
      // reload every member after each one.
      const std::size_t cap = keys_.size();
      const std::size_t space = cap - count_;
      std::uint64_t* const keys = keys_.data();
      std::uint8_t* const hits = hits_.data();
      std::size_t tail = head_ + count_ < cap ? head_ + count_ : head_ + count_ - cap;
      std::size_t kept = 0;
      std::size_t i = 0;
      // Every event is written to the next free slot, and only a demand get of an int key
      // moves on past it: no branch per event. A run stops where the ring wraps or fills.
      while (i < n && kept < space) {
        const std::size_t room = std::min(cap - tail, space - kept);
        std::uint64_t* const run_keys = keys + tail;
        std::uint8_t* const run_hits = hits + tail;
        std::size_t j = 0;
        for (; i < n && j < room; ++i) {
          const AccessEvent& e = events[i];
          run_keys[j] = e.key;
          run_hits[j] = e.hit;
          j += static_cast<std::size_t>((e.op == kGet) & (e.key_kind == kInt));
        }
        kept += j;
        tail = tail + j == cap ? 0 : tail + j;
      }
      std::size_t seen = kept;
      for (; i < n; ++i) {  // full: the rest are counted, not kept
        seen += static_cast<std::size_t>((events[i].op == kGet) & (events[i].key_kind == kInt));
      }
      if (seen == 0) return;
      const std::size_t before = count_;
      count_ += kept;
      seen_ += seen;
      dropped_ += seen - kept;
      if (before == 0 && count_ > 0) oldest_ = Clock::now();
      // Wake the consumer when its chunk of unpeeked requests fills, or when its timer
      // must start: once each.
      const std::size_t fresh_before = before - peeked_;
      wake = waiting_ &&
             ((fresh_before < want_ && count_ - peeked_ >= want_) || (before == 0 && count_ > 0));
    }
    if (wake) ready_.notify_one();
  }

  // Consumer: waits until at least `min_count` requests are kept that it has not peeked
  // at, the oldest kept one has waited `max_wait_s`, or the tap is closed; returns how many
  // are kept then, peeked or not (take them with take()). One consumer at a time.
  std::size_t wait(std::size_t min_count, double max_wait_s) {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto max_wait = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(std::max(0.0, max_wait_s)));
    want_ = std::max<std::size_t>(1, min_count);
    waiting_ = true;
    while (!closed_ && !nudged_ && count_ - peeked_ < want_) {
      if (count_ == 0) {
        ready_.wait(lock);
      } else if (ready_.wait_until(lock, oldest_ + max_wait) == std::cv_status::timeout) {
        break;
      }
    }
    waiting_ = false;
    nudged_ = false;
    return count_;
  }

  // Ends the consumer's current wait (or its next one) early, so that it can wait again for
  // another count (its settings changed).
  void nudge() {
    {
      const std::lock_guard<std::mutex> hold(mutex_);
      nudged_ = true;
    }
    ready_.notify_all();
  }

  // Consumer: moves up to `max` kept requests, oldest first, out to `keys` and `hits`.
  std::size_t take(std::uint64_t* keys, std::uint8_t* hits, std::size_t max) {
    const std::lock_guard<std::mutex> hold(mutex_);
    const std::size_t n = std::min(max, count_);
    head_ = copy_out(head_, n, keys, hits);
    count_ -= n;
    taken_ += n;
    peeked_ -= std::min(peeked_, n);
    // The rest were kept no earlier than oldest_, which stays: they are due no later.
    return n;
  }

  // Consumer: copies up to `max` kept requests it has not peeked at yet, oldest first, to
  // `keys` and `hits`, and leaves them kept (take() moves them out later, with the rest).
  std::size_t peek(std::uint64_t* keys, std::uint8_t* hits, std::size_t max) {
    const std::lock_guard<std::mutex> hold(mutex_);
    const std::size_t cap = keys_.size();
    const std::size_t n = std::min(max, count_ - peeked_);
    copy_out(head_ + peeked_ < cap ? head_ + peeked_ : head_ + peeked_ - cap, n, keys, hits);
    peeked_ += n;
    return n;
  }

  // Wakes a waiting consumer; later offers are ignored. What is kept can still be taken.
  void close() {
    {
      const std::lock_guard<std::mutex> hold(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
  }

  bool closed() const {
    const std::lock_guard<std::mutex> hold(mutex_);
    return closed_;
  }
  // Demand gets offered so far (kept or dropped), taken so far, kept now, dropped so far.
  std::uint64_t seen() const {
    const std::lock_guard<std::mutex> hold(mutex_);
    return seen_;
  }
  std::uint64_t taken() const {
    const std::lock_guard<std::mutex> hold(mutex_);
    return taken_;
  }
  std::size_t pending() const {
    const std::lock_guard<std::mutex> hold(mutex_);
    return count_;
  }
  std::uint64_t dropped() const {
    const std::lock_guard<std::mutex> hold(mutex_);
    return dropped_;
  }
  // Kept requests already peeked at (the oldest ones).
  std::size_t peeked() const {
    const std::lock_guard<std::mutex> hold(mutex_);
    return peeked_;
  }

 private:
  // Copies the n kept requests from slot `at` on (wrapping) to keys and hits; returns the
  // slot after them. Call holding the mutex.
  std::size_t copy_out(std::size_t at, std::size_t n, std::uint64_t* keys,
                       std::uint8_t* hits) const {
    const std::size_t cap = keys_.size();
    for (std::size_t done = 0; done < n;) {
      const std::size_t run = std::min(n - done, cap - at);
      std::copy_n(keys_.data() + at, run, keys + done);
      std::copy_n(hits_.data() + at, run, hits + done);
      at = at + run == cap ? 0 : at + run;
      done += run;
    }
    return at;
  }

  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<std::uint64_t> keys_;
  std::vector<std::uint8_t> hits_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::size_t peeked_ = 0;  // of the count_ kept, the oldest peeked_ were peeked at
  std::uint64_t seen_ = 0;
  std::uint64_t taken_ = 0;
  std::uint64_t dropped_ = 0;
  std::size_t want_ = 1;
  bool waiting_ = false;
  bool nudged_ = false;
  bool closed_ = false;
  Clock::time_point oldest_{};
};

}  // namespace predis
