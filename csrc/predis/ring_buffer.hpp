// A bounded single-producer/single-consumer ring.
//
// Layout: the producer's index and its cached copy of the consumer's index share one
// kFalseSharingRange (128-byte) block; the consumer's pair has another; the slot storage
// starts on a third. Neither side ever writes a line the other side writes, and the cached
// copies mean each side reads the other's line only when its cached view runs out.
//
// Indices are monotonically increasing 64-bit counters (they do not wrap in practice: at
// 10^9 items/s a 64-bit counter lasts 584 years); a slot is `index & mask`, so the
// capacity is a power of two and full/empty need no spare slot.
//
// Memory orders, and why each is enough:
//  * A side loads its *own* index relaxed: only it writes it.
//  * The producer publishes slots with a release store of tail_; the consumer's acquire
//    load of tail_ makes those slot writes visible before it reads them.
//  * The consumer frees slots with a release store of head_; the producer's acquire load of
//    head_ orders the consumer's reads of those slots before the producer overwrites them.
//  * Nothing needs seq_cst: there is no third variable whose order both sides must agree on.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "predis/platform.hpp"

namespace predis {

template <typename T>
class SpscRing {
  // pop_batch moves items out and destroys the slots before it releases them; a throw half
  // way would hand out or destroy an item twice, so those two steps must not throw. A
  // throwing copy in a push is handled: nothing is published and built slots are destroyed.
  static_assert(std::is_nothrow_move_assignable_v<T> && std::is_nothrow_destructible_v<T>,
                "SpscRing items must move-assign and destroy without throwing");
  static_assert(alignof(T) <= kFalseSharingRange, "item alignment above the block size");

 public:
  // Capacity is rounded up to a power of two; at least 2.
  explicit SpscRing(std::size_t min_capacity) : capacity_(round_up_pow2(min_capacity)) {
    mask_ = capacity_ - 1;
    blocks_ = (capacity_ * sizeof(Storage) + sizeof(Block) - 1) / sizeof(Block);
    block_storage_ = std::allocator<Block>().allocate(blocks_);
    storage_ = reinterpret_cast<Storage*>(block_storage_);
  }

  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  ~SpscRing() {
    // Destroy what was pushed and never popped; the ring owns it.
    const uint64_t tail = tail_.load(std::memory_order_relaxed);
    for (uint64_t i = head_.load(std::memory_order_relaxed); i != tail; ++i) {
      slot(i)->~T();
    }
    std::allocator<Block>().deallocate(block_storage_, blocks_);
  }

  std::size_t capacity() const noexcept { return capacity_; }

  // Producer side. Returns false (and leaves the ring unchanged) when it is full.
  template <typename... Args>
  bool try_emplace(Args&&... args) {
    const uint64_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - cached_head_ == capacity_) {
      cached_head_ = head_.load(std::memory_order_acquire);
      if (tail - cached_head_ == capacity_) return false;
    }
    ::new (static_cast<void*>(slot(tail))) T(std::forward<Args>(args)...);
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  bool try_push(const T& v) { return try_emplace(v); }

  // Producer side. Pushes the longest prefix of items[0, n) that fits; returns its length.
  std::size_t try_push_batch(const T* items, std::size_t n) {
    const uint64_t tail = tail_.load(std::memory_order_relaxed);
    std::size_t free_slots = capacity_ - (tail - cached_head_);
    if (free_slots < n) {
      cached_head_ = head_.load(std::memory_order_acquire);
      free_slots = capacity_ - (tail - cached_head_);
    }
    const std::size_t count = n < free_slots ? n : free_slots;
    std::size_t built = 0;
    try {
      for (; built < count; ++built) ::new (static_cast<void*>(slot(tail + built))) T(items[built]);
    } catch (...) {
      // Nothing was published: undo what was built and leave the ring as it was.
      for (std::size_t i = 0; i < built; ++i) slot(tail + i)->~T();
      throw;
    }
    if (count != 0) tail_.store(tail + count, std::memory_order_release);
    return count;
  }

  // Consumer side. Moves up to `max` items into out[0, max); returns how many.
  std::size_t pop_batch(T* out, std::size_t max) {
    const uint64_t head = head_.load(std::memory_order_relaxed);
    std::size_t available = cached_tail_ - head;
    if (available < max) {
      cached_tail_ = tail_.load(std::memory_order_acquire);
      available = cached_tail_ - head;
    }
    const std::size_t count = max < available ? max : available;
    for (std::size_t i = 0; i < count; ++i) {
      T* s = slot(head + i);
      out[i] = std::move(*s);
      s->~T();
    }
    if (count != 0) head_.store(head + count, std::memory_order_release);
    return count;
  }

  // Consumer side. Pops one item into `out`; false when empty.
  bool try_pop(T& out) { return pop_batch(&out, 1) == 1; }

  // Either side; exact only when the other side is idle.
  std::size_t size_approx() const noexcept {
    // head first: it only grows towards tail, so a tail read afterwards is never behind it
    // and the difference cannot wrap, whichever threads are moving meanwhile.
    const uint64_t head = head_.load(std::memory_order_acquire);
    const uint64_t tail = tail_.load(std::memory_order_acquire);
    return static_cast<std::size_t>(tail - head);
  }

 private:
  struct Storage {
    alignas(T) unsigned char bytes[sizeof(T)];
  };
  // Slot storage is allocated in whole, aligned false-sharing blocks, so no slot shares a
  // line with whatever the allocator put before or after the ring.
  struct alignas(kFalseSharingRange) Block {
    unsigned char bytes[kFalseSharingRange];
  };

  static std::size_t round_up_pow2(std::size_t n) {
    if (n < 2) n = 2;
    if (n > (std::size_t{1} << 40)) throw std::length_error("ring capacity above 2^40");
    std::size_t c = 1;
    while (c < n) c <<= 1;
    return c;
  }

  T* slot(uint64_t index) noexcept {
    return std::launder(reinterpret_cast<T*>(storage_[index & mask_].bytes));
  }

  // Read-mostly: set at construction.
  alignas(kFalseSharingRange) std::size_t capacity_;
  std::size_t mask_ = 0;
  std::size_t blocks_ = 0;
  Block* block_storage_ = nullptr;
  Storage* storage_ = nullptr;

  // Producer block: written by the producer, head_ read by it.
  alignas(kFalseSharingRange) std::atomic<uint64_t> tail_{0};
  uint64_t cached_head_ = 0;

  // Consumer block.
  alignas(kFalseSharingRange) std::atomic<uint64_t> head_{0};
  uint64_t cached_tail_ = 0;

  // The alignas above also pads the object to a multiple of kFalseSharingRange, which keeps
  // whatever follows the ring in memory off the consumer's block.

  template <typename U>
  friend struct SpscRingLayout;
};

// Layout checks, kept next to the class: each side's index and its cached copy share a
// block, and the two sides' blocks are distinct and do not overlap.
template <typename T>
struct SpscRingLayout {
  using R = SpscRing<T>;
  static constexpr bool check() {
    return offsetof(R, head_) - offsetof(R, tail_) >= kFalseSharingRange &&
           offsetof(R, tail_) - offsetof(R, storage_) >= sizeof(void*) &&
           offsetof(R, tail_) % kFalseSharingRange == 0 &&
           offsetof(R, head_) % kFalseSharingRange == 0 &&
           offsetof(R, cached_head_) - offsetof(R, tail_) < kFalseSharingRange &&
           offsetof(R, cached_tail_) - offsetof(R, head_) < kFalseSharingRange &&
           sizeof(R) % kFalseSharingRange == 0;
  }
};

}  // namespace predis
