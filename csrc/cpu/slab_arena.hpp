// Host slab arena: per-size-class free lists over pages of a fixed size (64 KiB to 2 MiB; 2 MiB
// pages are transparent huge pages). Thread-safe; each class has its own spinlock, held only to pop
// or push a free-list node or bump a page pointer.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "cpu/huge_buffer.hpp"
#include "predis/arena.hpp"
#include "predis/spinlock.hpp"

namespace predis {

class SlabArena {
 public:
  // Classes cover records up to max_record bytes; a page holds page_bytes, or one chunk
  // when a chunk is larger.
  SlabArena(uint64_t max_record, std::size_t page_bytes);

  // The chunk size that holds a record of `size` bytes.
  uint64_t chunk_size(uint64_t size) const noexcept { return classes_[class_of(size)]->size; }

  // A chunk for a record of `size` bytes. Throws std::bad_alloc when memory runs out.
  uint8_t* allocate(uint64_t size);
  // Returns a chunk that held a record of `size` bytes.
  void release(uint8_t* chunk, uint64_t size) noexcept;

  // Bytes of pages taken from the system (>= bytes in live chunks).
  uint64_t bytes_reserved() const noexcept { return reserved_.load(std::memory_order_relaxed); }

 private:
  struct FreeDeleter {
    void operator()(uint8_t* p) const noexcept { std::free(p); }
  };
  struct FreeNode {
    FreeNode* next;
  };
  struct SizeClass {
    uint64_t size = 0;
    SpinLock lock;
    FreeNode* free = nullptr;
    uint8_t* bump = nullptr;
    uint8_t* bump_end = nullptr;
    std::vector<std::unique_ptr<uint8_t, FreeDeleter>> pages;  // below HugeBuffer::kHugePage
    std::vector<HugeBuffer> huge_pages;                        // 2 MiB and more
  };

  std::size_t class_of(uint64_t size) const noexcept;

  std::size_t page_bytes_;
  std::vector<std::unique_ptr<SizeClass>> classes_;
  std::atomic<uint64_t> reserved_{0};
};

}  // namespace predis
