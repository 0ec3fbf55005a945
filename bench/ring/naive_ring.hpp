// The baseline for bench/ring/ring_bench.cpp: a deliberately naive single-producer/
// single-consumer ring, written the way a first attempt usually looks. It is correct, and
// every choice below is one that predis::SpscRing avoids:
//  * head_ and tail_ sit next to each other on one cache line, so every push and every pop
//    writes a line the other core is reading: the line ping-pongs between the two cores.
//  * A slot is `index % capacity_` with a run-time capacity: an integer division per access
//    instead of a mask (capacity is not forced to a power of two).
//  * Every atomic access is memory_order_seq_cst: each store is a full fence (xchg / mfence
//    on x86, dmb on ARM) where release/acquire would do.
//  * There is no cached copy of the other side's index: every push loads head_ and every pop
//    loads tail_, so each call misses on the line the other core just wrote.
//  * One item per call: nothing amortises the index traffic over a batch.
// Indices wrap at capacity_ and one slot is kept empty to tell full from empty.
#pragma once

#include <atomic>
#include <cstddef>
#include <vector>

namespace predis::bench {

template <typename T>
class NaiveRing {
 public:
  // Holds up to `capacity` items (one spare slot is allocated to tell full from empty).
  explicit NaiveRing(std::size_t capacity) : capacity_(capacity + 1), slots_(capacity + 1) {}

  NaiveRing(const NaiveRing&) = delete;
  NaiveRing& operator=(const NaiveRing&) = delete;

  // Producer side. False when full.
  bool try_push(const T& v) {
    const std::size_t tail = idx_.tail.load(std::memory_order_seq_cst);
    const std::size_t next = (tail + 1) % capacity_;
    if (next == idx_.head.load(std::memory_order_seq_cst)) return false;
    slots_[tail] = v;
    idx_.tail.store(next, std::memory_order_seq_cst);
    return true;
  }

  // Consumer side. False when empty.
  bool try_pop(T& out) {
    const std::size_t head = idx_.head.load(std::memory_order_seq_cst);
    if (head == idx_.tail.load(std::memory_order_seq_cst)) return false;
    out = slots_[head];
    idx_.head.store((head + 1) % capacity_, std::memory_order_seq_cst);
    return true;
  }

 private:
  struct Indices {
    std::atomic<std::size_t> head{0};  // written by the consumer
    std::atomic<std::size_t> tail{0};  // written by the producer, same cache line
  };

  std::size_t capacity_;
  Indices idx_;
  std::vector<T> slots_;
};

}  // namespace predis::bench
