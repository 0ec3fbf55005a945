#include "cpu/slab_arena.hpp"

#include <algorithm>
#include <mutex>
#include <new>

namespace predis {

SlabArena::SlabArena(uint64_t max_record, std::size_t page_bytes) : page_bytes_(page_bytes) {
  uint64_t size = kMinChunk;
  for (;;) {
    auto c = std::make_unique<SizeClass>();
    c->size = size;
    classes_.push_back(std::move(c));
    if (size >= max_record) break;
    size = next_class_size(size);
  }
}

std::size_t SlabArena::class_of(uint64_t size) const noexcept {
  // Binary search over ~60 ascending sizes; the caller has checked size <= the largest.
  std::size_t lo = 0;
  std::size_t hi = classes_.size() - 1;
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    if (classes_[mid]->size < size) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

uint8_t* SlabArena::allocate(uint64_t size) {
  SizeClass& c = *classes_[class_of(size)];
  std::lock_guard<SpinLock> guard(c.lock);
  if (c.free != nullptr) {
    FreeNode* node = c.free;
    c.free = node->next;
    return reinterpret_cast<uint8_t*>(node);
  }
  if (c.bump == nullptr || static_cast<uint64_t>(c.bump_end - c.bump) < c.size) {
    const std::size_t want = static_cast<std::size_t>(std::max<uint64_t>(page_bytes_, c.size));
    uint8_t* page = nullptr;
    std::size_t bytes = 0;
    if (want >= HugeBuffer::kHugePage) {
      c.huge_pages.emplace_back(want);  // throws std::bad_alloc
      page = static_cast<uint8_t*>(c.huge_pages.back().data());
      bytes = c.huge_pages.back().size();  // rounded up to 2 MiB: use all of it
    } else {
      // Chunks are written before they are read, so the page need not be zeroed.
      page = static_cast<uint8_t*>(std::malloc(want));
      if (page == nullptr) throw std::bad_alloc();
      c.pages.emplace_back(page);
      bytes = want;
    }
    c.bump = page;
    c.bump_end = page + (bytes - bytes % static_cast<std::size_t>(c.size));
    reserved_.fetch_add(bytes, std::memory_order_relaxed);
  }
  uint8_t* chunk = c.bump;
  c.bump += c.size;
  return chunk;
}

void SlabArena::release(uint8_t* chunk, uint64_t size) noexcept {
  SizeClass& c = *classes_[class_of(size)];
  std::lock_guard<SpinLock> guard(c.lock);
  auto* node = reinterpret_cast<FreeNode*>(chunk);
  node->next = c.free;
  c.free = node;
}

}  // namespace predis
