#include "cuda/device_arena.hpp"

#include <algorithm>

#include "predis/arena.hpp"

namespace predis::cuda {

DeviceArena::DeviceArena(uint64_t max_record, std::size_t page_bytes) : page_bytes_(page_bytes) {
  uint64_t size = kMinChunk;
  for (;;) {
    SizeClass c;
    c.size = size;
    classes_.push_back(std::move(c));
    if (size >= max_record) break;
    size = next_class_size(size);
  }
}

std::size_t DeviceArena::class_of(uint64_t size) const noexcept {
  const auto it = std::lower_bound(classes_.begin(), classes_.end(), size,
                                   [](const SizeClass& c, uint64_t s) { return c.size < s; });
  return static_cast<std::size_t>(it - classes_.begin());
}

uint64_t DeviceArena::allocate(uint64_t size) {
  SizeClass& c = classes_[class_of(size)];
  if (!c.free.empty()) {
    const uint64_t chunk = c.free.back();
    c.free.pop_back();
    return chunk;
  }
  if (c.bump + c.size > c.bump_end) {
    // Records are 8-byte aligned: every class size is a multiple of 8, pages start aligned.
    const std::size_t bytes = std::max<std::size_t>(page_bytes_, c.size);
    DeviceBuffer page(bytes);
    c.bump = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(page.get()));
    c.bump_end = c.bump + bytes;
    reserved_ += bytes;
    c.pages.push_back(std::move(page));
  }
  const uint64_t chunk = c.bump;
  c.bump += c.size;
  return chunk;
}

void DeviceArena::release(uint64_t chunk, uint64_t size) {
  classes_[class_of(size)].free.push_back(chunk);
}

void DeviceArena::reset() noexcept {
  for (SizeClass& c : classes_) {
    c.free.clear();
    c.free.shrink_to_fit();
    c.pages.clear();
    c.bump = c.bump_end = 0;
  }
  reserved_ = 0;
}

}  // namespace predis::cuda
