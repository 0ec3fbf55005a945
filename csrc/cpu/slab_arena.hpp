// Host slab arena: per-size-class free lists over 1 MiB pages. Thread-safe; each class has
// its own spinlock, held only to pop or push a free-list node or bump a page pointer.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "predis/arena.hpp"
#include "predis/spinlock.hpp"

namespace predis {

class SlabArena {
 public:
  static constexpr std::size_t kPageBytes = std::size_t{1} << 20;

  // Classes cover records up to max_record bytes.
  explicit SlabArena(uint64_t max_record);

  // The chunk size that holds a record of `size` bytes.
  uint64_t chunk_size(uint64_t size) const noexcept { return classes_[class_of(size)]->size; }

  // A chunk for a record of `size` bytes. Throws std::bad_alloc when memory runs out.
  uint8_t* allocate(uint64_t size);
  // Returns a chunk that held a record of `size` bytes.
  void release(uint8_t* chunk, uint64_t size) noexcept;

  // Bytes of pages taken from the system (>= bytes in live chunks).
  uint64_t bytes_reserved() const noexcept { return reserved_.load(std::memory_order_relaxed); }

 private:
  struct FreeNode {
    FreeNode* next;
  };
  struct SizeClass {
    uint64_t size = 0;
    SpinLock lock;
    FreeNode* free = nullptr;
    uint8_t* bump = nullptr;
    uint8_t* bump_end = nullptr;
    std::vector<std::unique_ptr<uint8_t[]>> pages;
  };

  std::size_t class_of(uint64_t size) const noexcept;

  std::vector<std::unique_ptr<SizeClass>> classes_;
  std::atomic<uint64_t> reserved_{0};
};

}  // namespace predis
