// The device value arena: records (predis/arena.hpp layout) in device memory, in the same
// size classes as the CPU backend's slab arena, so an entry takes the same capacity on
// either backend. The bookkeeping (free lists, bump pointers) lives on the host: every
// allocation is made by the host before the kernels that fill and link the records run,
// and every release after the kernels that unlinked them have finished. Not thread-safe:
// the CUDA table calls it under its lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cuda/resources.hpp"

namespace predis::cuda {

class DeviceArena {
 public:
  DeviceArena(uint64_t max_record, std::size_t page_bytes);

  uint64_t chunk_size(uint64_t size) const noexcept { return classes_[class_of(size)].size; }
  // A device address for a record of `size` bytes. Throws BackendError (out of memory).
  uint64_t allocate(uint64_t size);
  void release(uint64_t chunk, uint64_t size);
  // Every chunk free again; pages are returned to the device.
  void reset() noexcept;

  uint64_t bytes_reserved() const noexcept { return reserved_; }

 private:
  struct SizeClass {
    uint64_t size = 0;
    std::vector<uint64_t> free;
    uint64_t bump = 0;
    uint64_t bump_end = 0;
    std::vector<DeviceBuffer> pages;
  };

  std::size_t class_of(uint64_t size) const noexcept;

  std::size_t page_bytes_;
  std::vector<SizeClass> classes_;
  uint64_t reserved_ = 0;
};

}  // namespace predis::cuda
