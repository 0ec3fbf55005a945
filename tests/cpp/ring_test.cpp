// Tests for predis::SpscRing (csrc/predis/ring_buffer.hpp). No framework: each CHECK prints
// what failed and where, and main returns non-zero if any did. Meant to be built with
// sanitizers (tests/core/test_ring_native.py builds it with ASan+UBSan and with TSan):
//
//   g++ -O1 -g -std=c++17 -pthread -fsanitize=thread -Icsrc tests/cpp/ring_test.cpp -o rt
//   ./rt [fuzz_items] [seed]
//
//  1. Lifetimes: a counting, heap-owning item type through try_push / try_emplace /
//     try_push_batch / try_pop / pop_batch and the destruction of a ring that still holds
//     items: every constructed object is destroyed exactly once.
//  2. Capacity rounding, full/empty behaviour, partial try_push_batch when nearly full.
//  3. Two-thread fuzz: the producer pushes 0..N-1 in random-size batches, the consumer pops
//     random-size batches and checks it gets exactly that sequence.
#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "predis/ring_buffer.hpp"

namespace {

int g_failures = 0;

#define CHECK(cond)                                                               \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "FAIL %s:%d: CHECK(%s)\n", __FILE__, __LINE__, #cond); \
      ++g_failures;                                                               \
    }                                                                             \
  } while (0)

#define CHECK_EQ(a, b)                                                                             \
  do {                                                                                             \
    const auto va_ = (a);                                                                          \
    const auto vb_ = (b);                                                                          \
    if (!(va_ == vb_)) {                                                                           \
      std::fprintf(stderr, "FAIL %s:%d: CHECK_EQ(%s, %s): %lld != %lld\n", __FILE__, __LINE__, #a, \
                   #b, static_cast<long long>(va_), static_cast<long long>(vb_));                  \
      ++g_failures;                                                                                \
    }                                                                                              \
  } while (0)

// ---------------------------------------------------------------------------------------
// 1. Lifetimes.

// Counts every construction and destruction, owns a heap int (so a leak or a double free is
// also an ASan report), and carries a marker that catches use or destruction of a dead
// object. The counters are atomic so the type can also cross threads in the fuzz.
struct Counted {
  static constexpr uint32_t kAlive = 0xA11CE5EDu;
  static constexpr uint32_t kDead = 0xDEADDEADu;
  static std::atomic<long> constructed;
  static std::atomic<long> destroyed;
  static std::atomic<long> misuse;  // used or destroyed while not alive

  uint32_t marker;
  int* value;

  explicit Counted(int v = -1) : marker(kAlive), value(new int(v)) { ++constructed; }
  Counted(const Counted& o) : marker(kAlive), value(new int(o.get())) { ++constructed; }
  Counted(Counted&& o) noexcept : marker(kAlive), value(o.value) {
    if (o.marker != kAlive) ++misuse;
    o.value = nullptr;
    ++constructed;
  }
  Counted& operator=(const Counted& o) {
    if (this != &o) {
      if (marker != kAlive) ++misuse;
      delete value;
      value = new int(o.get());
    }
    return *this;
  }
  Counted& operator=(Counted&& o) noexcept {
    if (marker != kAlive || o.marker != kAlive) ++misuse;
    if (this != &o) {
      delete value;
      value = o.value;
      o.value = nullptr;
    }
    return *this;
  }
  ~Counted() {
    if (marker != kAlive) ++misuse;
    marker = kDead;
    delete value;
    value = nullptr;
    ++destroyed;
  }

  int get() const {
    if (marker != kAlive) ++misuse;
    return value != nullptr ? *value : -2;  // -2: moved-from
  }

  static long live() { return constructed.load() - destroyed.load(); }
  static void reset() {
    constructed = 0;
    destroyed = 0;
    misuse = 0;
  }
};
std::atomic<long> Counted::constructed{0};
std::atomic<long> Counted::destroyed{0};
std::atomic<long> Counted::misuse{0};

void test_lifetimes() {
  Counted::reset();
  {
    predis::SpscRing<Counted> ring(8);
    CHECK_EQ(ring.capacity(), 8u);
    CHECK_EQ(Counted::live(), 0);  // an empty ring constructs nothing

    // try_push copies into a slot: one construction per push, the source stays alive.
    for (int i = 0; i < 3; ++i) {
      const Counted c(i);
      CHECK(ring.try_push(c));
    }
    CHECK_EQ(Counted::live(), 3);
    CHECK(ring.try_emplace(3));  // constructed in place
    CHECK_EQ(Counted::live(), 4);

    // try_pop moves into `out` and destroys the slot.
    Counted out;
    CHECK(ring.try_pop(out));
    CHECK_EQ(out.get(), 0);
    CHECK_EQ(Counted::live(), 4);  // 3 in the ring + out

    // try_push_batch copies; with 3 items in a ring of 8 only 5 of 7 fit.
    {
      std::vector<Counted> batch;
      batch.reserve(7);
      for (int i = 4; i < 11; ++i) batch.emplace_back(i);
      CHECK_EQ(ring.try_push_batch(batch.data(), batch.size()), 5u);
      CHECK_EQ(ring.size_approx(), 8u);
      CHECK_EQ(Counted::live(), 1 + 7 + 8);
      CHECK(!ring.try_push(batch[5]));  // full: nothing constructed
      CHECK_EQ(Counted::live(), 1 + 7 + 8);
    }
    CHECK_EQ(Counted::live(), 1 + 8);

    // pop_batch moves out and destroys each slot.
    {
      std::vector<Counted> outs(5);
      CHECK_EQ(ring.pop_batch(outs.data(), outs.size()), 5u);
      for (int i = 0; i < 5; ++i) CHECK_EQ(outs[static_cast<std::size_t>(i)].get(), i + 1);
      CHECK_EQ(Counted::live(), 1 + 5 + 3);
    }
    CHECK_EQ(Counted::live(), 1 + 3);

    // Wrap around the slot array a few times so the leftovers straddle the end.
    for (int i = 100; i < 120; ++i) {
      CHECK(ring.try_emplace(i));
      Counted o;
      CHECK(ring.try_pop(o));
    }
    CHECK_EQ(ring.size_approx(), 3u);
    CHECK(ring.try_emplace(200));
    CHECK_EQ(Counted::live(), 1 + 4);
    // The ring goes out of scope holding 4 items: it must destroy exactly those.
  }
  CHECK_EQ(Counted::live(), 0);
  CHECK_EQ(Counted::constructed.load(), Counted::destroyed.load());
  CHECK_EQ(Counted::misuse.load(), 0);

  // A ring destroyed full, and one destroyed empty after use.
  Counted::reset();
  {
    predis::SpscRing<Counted> full(4);
    for (int i = 0; i < 4; ++i) CHECK(full.try_emplace(i));
    CHECK(!full.try_emplace(99));
    predis::SpscRing<Counted> drained(4);
    for (int i = 0; i < 4; ++i) CHECK(drained.try_emplace(i));
    Counted sink[4];
    CHECK_EQ(drained.pop_batch(sink, 4), 4u);
  }
  CHECK_EQ(Counted::live(), 0);
  CHECK_EQ(Counted::misuse.load(), 0);

  // std::string: a real library type whose moved-from state and heap buffer ASan watches.
  {
    predis::SpscRing<std::string> ring(4);
    const std::string long_text(100, 'x');  // past the small-string buffer
    CHECK(ring.try_push(long_text));
    CHECK(ring.try_emplace(200, 'y'));
    std::string out;
    CHECK(ring.try_pop(out));
    CHECK(out == long_text);
  }
}

// ---------------------------------------------------------------------------------------
// 2. Capacity, full and empty.

void test_capacity_and_bounds() {
  const std::size_t cases[][2] = {{0, 2}, {1, 2},  {2, 2},       {3, 4},       {5, 8},
                                  {8, 8}, {9, 16}, {1000, 1024}, {4096, 4096}, {4097, 8192}};
  for (const auto& c : cases) {
    predis::SpscRing<uint64_t> ring(c[0]);
    if (ring.capacity() != c[1]) {
      std::fprintf(stderr, "FAIL capacity(%zu) = %zu, want %zu\n", c[0], ring.capacity(), c[1]);
      ++g_failures;
    }
  }
  bool threw = false;
  try {
    predis::SpscRing<uint64_t> too_big((std::size_t{1} << 40) + 1);
  } catch (const std::length_error&) {
    threw = true;
  }
  CHECK(threw);

  predis::SpscRing<uint64_t> ring(5);  // capacity 8
  uint64_t v = 0;
  uint64_t buf[16] = {};
  CHECK(!ring.try_pop(v));  // empty
  CHECK_EQ(ring.pop_batch(buf, 16), 0u);
  CHECK_EQ(ring.size_approx(), 0u);
  CHECK_EQ(ring.try_push_batch(buf, 0), 0u);  // empty batch
  CHECK_EQ(ring.size_approx(), 0u);

  for (uint64_t i = 0; i < 8; ++i) CHECK(ring.try_push(i));
  CHECK(!ring.try_push(8));  // full at exactly capacity(): no spare slot
  CHECK_EQ(ring.size_approx(), 8u);
  CHECK_EQ(ring.try_push_batch(buf, 3), 0u);  // full: batch pushes nothing
  CHECK_EQ(ring.pop_batch(buf, 0), 0u);       // max 0 pops nothing
  CHECK_EQ(ring.size_approx(), 8u);

  CHECK(ring.try_pop(v));
  CHECK_EQ(v, 0u);
  CHECK(ring.try_push(8));  // one slot freed, one push fits
  CHECK(!ring.try_push(9));

  // Nearly full: 2 of 6 fit, and exactly the first two are pushed.
  CHECK_EQ(ring.pop_batch(buf, 2), 2u);
  CHECK_EQ(buf[0], 1u);
  CHECK_EQ(buf[1], 2u);
  const uint64_t more[6] = {9, 10, 11, 12, 13, 14};
  CHECK_EQ(ring.try_push_batch(more, 6), 2u);
  CHECK_EQ(ring.size_approx(), 8u);

  // pop_batch with more room than items returns what is there, in order.
  CHECK_EQ(ring.pop_batch(buf, 16), 8u);
  for (uint64_t i = 0; i < 8; ++i) CHECK_EQ(buf[i], i + 3);
  CHECK(!ring.try_pop(v));

  // Many laps: indices run far past capacity and slots wrap.
  uint64_t next_push = 0;
  uint64_t next_pop = 0;
  for (int lap = 0; lap < 1000; ++lap) {
    const std::size_t n = static_cast<std::size_t>(lap % 7) + 1;
    uint64_t in[8];
    for (std::size_t k = 0; k < n; ++k) in[k] = next_push + k;
    next_push += ring.try_push_batch(in, n);
    const std::size_t got = ring.pop_batch(buf, static_cast<std::size_t>(lap % 5) + 1);
    for (std::size_t k = 0; k < got; ++k) CHECK_EQ(buf[k], next_pop + k);
    next_pop += got;
  }
  CHECK_EQ(ring.size_approx(), static_cast<std::size_t>(next_push - next_pop));
}

// ---------------------------------------------------------------------------------------
// 3. Two-thread fuzz.

struct FuzzResult {
  bool ok = true;
  uint64_t received = 0;
  uint64_t expected = 0;  // at the first mismatch
  uint64_t got = 0;
};

// Item -> uint64 for the order check, for each item type the fuzz runs with.
uint64_t key_of(uint64_t v) { return v; }
uint64_t key_of(const Counted& c) { return static_cast<uint64_t>(c.get()); }

// Producer pushes items 0..n-1 (built by make(i)) with random batch sizes, mixing single
// try_push and try_push_batch, retrying the unpushed rest. Consumer pops random-size batches
// (and single try_pops) and checks the sequence. A ring of `capacity` small enough that
// both full and empty happen often.
template <typename T, typename Make>
void fuzz(const char* name, std::size_t capacity, uint64_t n, uint32_t seed, Make make) {
  predis::SpscRing<T> ring(capacity);
  const std::size_t max_batch = 2 * ring.capacity() + 3;  // sometimes more than fits
  std::atomic<bool> producer_done{false};
  std::atomic<bool> consumer_quit{false};  // after a failure, so the producer cannot hang
  FuzzResult r;

  std::thread producer([&] {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::size_t> size(1, max_batch);
    std::vector<T> batch;
    uint64_t next = 0;
    while (next < n) {
      std::size_t len = size(rng);
      if (len > n - next) len = static_cast<std::size_t>(n - next);
      if (len == 1 && (rng() & 1u)) {
        const T item = make(next);
        while (!ring.try_push(item)) {
          if (consumer_quit.load(std::memory_order_relaxed)) return;
          std::this_thread::yield();
        }
        ++next;
        continue;
      }
      batch.clear();
      for (std::size_t k = 0; k < len; ++k) batch.push_back(make(next + k));
      std::size_t done = 0;
      while (done < len) {
        const std::size_t pushed = ring.try_push_batch(batch.data() + done, len - done);
        if (pushed == 0) {
          if (consumer_quit.load(std::memory_order_relaxed)) return;
          std::this_thread::yield();
        }
        done += pushed;
      }
      next += len;
    }
    producer_done.store(true, std::memory_order_release);
  });

  std::thread consumer([&] {
    std::mt19937 rng(seed ^ 0x9E3779B9u);
    std::uniform_int_distribution<std::size_t> size(1, max_batch);
    std::vector<T> out(max_batch);
    while (r.received < n) {
      std::size_t got = 0;
      const std::size_t want = size(rng);
      if (want == 1) {
        got = ring.try_pop(out[0]) ? 1 : 0;
      } else {
        got = ring.pop_batch(out.data(), want);
      }
      if (got == 0) {
        if (producer_done.load(std::memory_order_acquire)) {
          // All pushes are visible now; an empty ring means items were lost.
          got = ring.pop_batch(out.data(), out.size());
          if (got == 0) break;
        } else {
          std::this_thread::yield();
        }
      }
      for (std::size_t k = 0; k < got; ++k) {
        const uint64_t v = key_of(out[k]);
        if (v != r.received && r.ok) {
          r.ok = false;
          r.expected = r.received;
          r.got = v;
        }
        ++r.received;
      }
      if (!r.ok) break;
    }
    if (r.received != n) r.ok = false;
    consumer_quit.store(true, std::memory_order_relaxed);
  });

  producer.join();
  consumer.join();
  std::printf("  fuzz %s: %" PRIu64 " of %" PRIu64 " items in order\n", name, r.received, n);
  if (!r.ok) {
    std::fprintf(stderr,
                 "FAIL fuzz %s (capacity %zu, n %" PRIu64 ", seed %u): received %" PRIu64
                 ", first mismatch: expected %" PRIu64 " got %" PRIu64 "\n",
                 name, capacity, n, seed, r.received, r.expected, r.got);
    ++g_failures;
  }
  uint64_t leftover = 0;
  T sink{};
  while (ring.try_pop(sink)) ++leftover;
  if (leftover != 0) {
    std::fprintf(stderr, "FAIL fuzz %s: %" PRIu64 " items left in the ring (duplicates)\n", name,
                 leftover);
    ++g_failures;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200'000;
  const uint32_t seed =
      argc > 2 ? static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 10)) : std::random_device{}();
  std::printf("ring_test: fuzz items %" PRIu64 ", seed %u\n", n, seed);

  test_lifetimes();
  std::printf("lifetimes: %s\n", g_failures == 0 ? "ok" : "FAILED");
  const int after_lifetimes = g_failures;

  test_capacity_and_bounds();
  std::printf("capacity and bounds: %s\n", g_failures == after_lifetimes ? "ok" : "FAILED");
  const int after_bounds = g_failures;

  fuzz<uint64_t>("uint64 cap 16", 16, n, seed, [](uint64_t i) { return i; });
  fuzz<uint64_t>("uint64 cap 2", 2, n / 4, seed + 1, [](uint64_t i) { return i; });
  Counted::reset();
  fuzz<Counted>("Counted cap 8", 8, n / 4, seed + 2,
                [](uint64_t i) { return Counted(static_cast<int>(i)); });
  CHECK_EQ(Counted::live(), 0);
  CHECK_EQ(Counted::misuse.load(), 0);
  std::printf("two-thread fuzz: %s\n", g_failures == after_bounds ? "ok" : "FAILED");

  if (g_failures != 0) {
    std::fprintf(stderr, "ring_test: %d check(s) failed\n", g_failures);
    return 1;
  }
  std::printf("ring_test: all passed\n");
  return 0;
}
