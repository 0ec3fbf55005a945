// Host memory for the bucket table and the arena's large pages.
//
// A HugeBuffer is an anonymous mapping aligned to 2 MiB and advised for transparent huge
// pages. Lookups touch the bucket table at random; with 4 KiB pages nearly every lookup
// also misses the TLB, with 2 MiB pages almost none do. Fresh anonymous memory reads as
// zero and is committed only when first touched, so a large, mostly empty table costs no
// resident memory up front.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <sys/mman.h>
#include <utility>

namespace predis {

class HugeBuffer {
 public:
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;

  HugeBuffer() = default;
  // Zero-filled, 2 MiB-aligned, at least `bytes` long (rounded up to 2 MiB).
  explicit HugeBuffer(std::size_t bytes) : size_(round_up(bytes)) {
    // Over-map by one huge page, then trim both ends to leave an aligned range.
    const std::size_t span = size_ + kHugePage;
    void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const auto base = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (base + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
    if (aligned > base) munmap(raw, aligned - base);
    const uintptr_t end = base + span;
    if (end > aligned + size_)
      munmap(reinterpret_cast<void*>(aligned + size_), end - aligned - size_);
    data_ = reinterpret_cast<void*>(aligned);
#if defined(MADV_HUGEPAGE)
    // Advice only: where THP is off, this fails harmlessly and small pages are used.
    madvise(data_, size_, MADV_HUGEPAGE);
#endif
  }

  HugeBuffer(HugeBuffer&& other) noexcept
      : size_(std::exchange(other.size_, 0)), data_(std::exchange(other.data_, nullptr)) {}
  HugeBuffer& operator=(HugeBuffer&& other) noexcept {
    if (this != &other) {
      release();
      size_ = std::exchange(other.size_, 0);
      data_ = std::exchange(other.data_, nullptr);
    }
    return *this;
  }
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;
  ~HugeBuffer() { release(); }

  void* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

 private:
  static std::size_t round_up(std::size_t n) { return (n + kHugePage - 1) / kHugePage * kHugePage; }
  void release() noexcept {
    if (data_ != nullptr) munmap(data_, size_);
    data_ = nullptr;
  }

  std::size_t size_ = 0;
  void* data_ = nullptr;
};

}  // namespace predis
