// Zeroed, 2 MiB-aligned host memory that asks the kernel for transparent huge pages.
// Lookups touch the bucket table at random; with 4 KiB pages nearly every lookup also
// misses the TLB, with 2 MiB pages almost none do.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace predis {

class HugeBuffer {
 public:
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;

  HugeBuffer() = default;
  explicit HugeBuffer(std::size_t bytes) : size_(round_up(bytes)) {
    void* p = std::aligned_alloc(kHugePage, size_);
    if (p == nullptr) throw std::bad_alloc();
    mem_.reset(p);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    // Advice only: where THP is off, this fails harmlessly and small pages are used.
    madvise(p, size_, MADV_HUGEPAGE);
#endif
    std::memset(p, 0, size_);
  }

  void* data() const noexcept { return mem_.get(); }
  std::size_t size() const noexcept { return size_; }

 private:
  struct Free {
    void operator()(void* p) const noexcept { std::free(p); }
  };
  static std::size_t round_up(std::size_t n) { return (n + kHugePage - 1) / kHugePage * kHugePage; }

  std::size_t size_ = 0;
  std::unique_ptr<void, Free> mem_;
};

}  // namespace predis
