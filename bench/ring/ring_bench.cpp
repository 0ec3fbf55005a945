// Throughput of predis::SpscRing against a naive SPSC ring, producer and consumer on two
// pinned CPUs.
//
//   g++ -O2 -std=c++17 -pthread -Icsrc bench/ring/ring_bench.cpp -o ring_bench
//   ./ring_bench [--items N] [--capacity C] [--repeats R] [--batch B] [--cpus P,C]
//
// Variants, run interleaved (naive, spsc, spsc_batch, naive, ...) R times each:
//   naive       bench/ring/naive_ring.hpp, one item per try_push / try_pop
//   spsc        SpscRing<uint64_t>::try_push / try_pop, one item per call
//   spsc_batch  SpscRing<uint64_t>::try_push_batch / pop_batch, B items per call
// The producer pushes 0..N-1; the consumer checks it sees exactly that sequence, in order.
// Prints one JSON object on stdout; exits 1 if any run saw a wrong sequence, 2 on bad
// arguments. The clock runs from releasing both (already pinned, spinning) threads to the
// consumer taking the last item.
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "naive_ring.hpp"
#include "predis/ring_buffer.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  uint64_t items = 50'000'000;
  std::size_t capacity = 4096;
  int repeats = 5;
  std::size_t batch = 256;
  int cpu_producer = -1;  // -1: pick the first two CPUs this process may run on
  int cpu_consumer = -1;
};

// What the consumer saw: whether the sequence was exactly 0..N-1, and the first mismatch.
struct Check {
  bool ok = true;
  uint64_t received = 0;
  uint64_t expected = 0;  // at the first mismatch
  uint64_t got = 0;       // at the first mismatch
};

// Set when producer and consumer share one CPU: a blocked side then yields instead of
// spinning out its whole time slice while the other side cannot run.
bool g_yield_when_blocked = false;

inline void wait_a_little() {
  if (g_yield_when_blocked) std::this_thread::yield();
}

struct RunResult {
  double seconds = 0;
  Check check;
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "ring_bench: %s\nusage: ring_bench [--items N] [--capacity C] [--repeats R] "
               "[--batch B] [--cpus P,C]\n",
               msg);
  std::exit(2);
}

uint64_t parse_u64(const char* s, const char* what) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || s[0] == '-') {
    usage((std::string("bad value for ") + what + ": " + s).c_str());
  }
  return v;
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") usage("help");
    if (i + 1 >= argc) usage(("missing value after " + a).c_str());
    const char* v = argv[++i];
    if (a == "--items") {
      o.items = parse_u64(v, "--items");
    } else if (a == "--capacity") {
      o.capacity = parse_u64(v, "--capacity");
    } else if (a == "--repeats") {
      o.repeats = static_cast<int>(parse_u64(v, "--repeats"));
    } else if (a == "--batch") {
      o.batch = parse_u64(v, "--batch");
    } else if (a == "--cpus") {
      int p = -1;
      int c = -1;
      if (std::sscanf(v, "%d,%d", &p, &c) != 2 || p < 0 || c < 0 || p == c) {
        usage("--cpus wants two different CPU numbers, e.g. --cpus 0,1");
      }
      o.cpu_producer = p;
      o.cpu_consumer = c;
    } else {
      usage(("unknown argument " + a).c_str());
    }
  }
  if (o.items == 0) usage("--items must be positive");
  if (o.capacity == 0) usage("--capacity must be positive");
  if (o.repeats <= 0) usage("--repeats must be positive");
  if (o.batch == 0) usage("--batch must be positive");
  return o;
}

// The CPUs this process may run on, in ascending order.
std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

// The 1-minute load average, or a negative number where /proc/loadavg cannot be read. With
// producer and consumer spinning on two CPUs, any other runnable work shows in the figures.
double load_average_1m() {
  double load = -1;
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load) != 1) load = -1;
    std::fclose(f);
  }
  return load;
}

bool pin_self(int cpu) {
  if (cpu < 0) return true;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

// Runs producer() and consumer(check) on their CPUs; times from releasing both to the
// consumer's return. A failed pin is fatal: the numbers would not mean what they say.
template <typename Producer, typename Consumer>
RunResult run_pair(const Options& o, Producer producer, Consumer consumer) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<bool> pin_failed{false};
  RunResult r;
  Clock::time_point end;

  std::thread prod([&] {
    if (!pin_self(o.cpu_producer)) pin_failed.store(true);
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) wait_a_little();
    producer();
  });
  std::thread cons([&] {
    if (!pin_self(o.cpu_consumer)) pin_failed.store(true);
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) wait_a_little();
    consumer(r.check);
    end = Clock::now();
  });
  while (ready.load() != 2) std::this_thread::yield();
  const Clock::time_point start = Clock::now();
  go.store(true, std::memory_order_release);
  prod.join();
  cons.join();
  if (pin_failed.load()) {
    std::fprintf(stderr, "ring_bench: pthread_setaffinity_np failed for CPUs %d,%d\n",
                 o.cpu_producer, o.cpu_consumer);
    std::exit(2);
  }
  r.seconds = std::chrono::duration<double>(end - start).count();
  return r;
}

// The consumer's per-item check: the i-th item received must be i.
inline void check_item(Check& c, uint64_t v) {
  if (v != c.received && c.ok) {
    c.ok = false;
    c.expected = c.received;
    c.got = v;
  }
  ++c.received;
}

// One-at-a-time producer/consumer over any ring with try_push / try_pop. The consumer stops
// after N items, or once the producer is done and the ring is still empty (items lost); a
// producer blocked on a full ring gives up once the consumer has stopped (items duplicated),
// so a broken ring ends the run with a failed check instead of hanging it.
template <typename Ring>
RunResult run_single(const Options& o) {
  Ring ring(o.capacity);
  std::atomic<bool> producer_done{false};
  std::atomic<bool> consumer_done{false};
  const uint64_t n = o.items;
  return run_pair(
      o,
      [&] {
        for (uint64_t i = 0; i < n; ++i) {
          while (!ring.try_push(i)) {
            if (consumer_done.load(std::memory_order_relaxed)) return;
            wait_a_little();
          }
        }
        producer_done.store(true, std::memory_order_release);
      },
      [&](Check& c) {
        uint64_t v = 0;
        while (c.received < n) {
          if (ring.try_pop(v)) {
            check_item(c, v);
          } else if (producer_done.load(std::memory_order_acquire)) {
            // Everything the producer pushed is visible now: empty here means items lost.
            if (!ring.try_pop(v)) break;
            check_item(c, v);
          } else {
            wait_a_little();
          }
        }
        if (c.received != n) c.ok = false;
        consumer_done.store(true, std::memory_order_relaxed);
      });
}

// The same with try_push_batch / pop_batch, `batch` items per call.
RunResult run_batch(const Options& o) {
  predis::SpscRing<uint64_t> ring(o.capacity);
  std::atomic<bool> producer_done{false};
  std::atomic<bool> consumer_done{false};
  const uint64_t n = o.items;
  const std::size_t b = o.batch;
  return run_pair(
      o,
      [&] {
        std::vector<uint64_t> buf(b);
        for (uint64_t base = 0; base < n; base += b) {
          const std::size_t len = static_cast<std::size_t>(std::min<uint64_t>(b, n - base));
          for (std::size_t k = 0; k < len; ++k) buf[k] = base + k;
          std::size_t done = 0;
          while (done < len) {
            const std::size_t pushed = ring.try_push_batch(buf.data() + done, len - done);
            if (pushed == 0) {
              if (consumer_done.load(std::memory_order_relaxed)) return;
              wait_a_little();
            }
            done += pushed;
          }
        }
        producer_done.store(true, std::memory_order_release);
      },
      [&](Check& c) {
        std::vector<uint64_t> buf(b);
        while (c.received < n) {
          std::size_t got = ring.pop_batch(buf.data(), b);
          if (got == 0 && producer_done.load(std::memory_order_acquire)) {
            got = ring.pop_batch(buf.data(), b);
            if (got == 0) break;
          }
          if (got == 0) wait_a_little();
          for (std::size_t k = 0; k < got; ++k) check_item(c, buf[k]);
        }
        if (c.received != n) c.ok = false;
        consumer_done.store(true, std::memory_order_relaxed);
      });
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

struct Variant {
  const char* name;
  RunResult (*run)(const Options&);
  std::vector<double> items_per_s;
  bool ok = true;
  Check first_failure;
};

void print_variant(const Variant& v, bool last) {
  std::printf("  \"%s\": {\"items_per_s_median\": %.1f, \"ordering_ok\": %s, \"all\": [", v.name,
              median(v.items_per_s), v.ok ? "true" : "false");
  for (std::size_t i = 0; i < v.items_per_s.size(); ++i) {
    std::printf("%s%.1f", i ? ", " : "", v.items_per_s[i]);
  }
  std::printf("]");
  if (!v.ok) {
    std::printf(", \"first_failure\": {\"received\": %llu, \"expected\": %llu, \"got\": %llu}",
                static_cast<unsigned long long>(v.first_failure.received),
                static_cast<unsigned long long>(v.first_failure.expected),
                static_cast<unsigned long long>(v.first_failure.got));
  }
  std::printf("}%s\n", last ? "" : ",");
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);

  std::string note;
  bool pinned = true;
  if (o.cpu_producer < 0) {
    const std::vector<int> cpus = allowed_cpus();
    if (cpus.size() >= 2) {
      o.cpu_producer = cpus[0];
      o.cpu_consumer = cpus[1];
    } else {
      pinned = false;
      g_yield_when_blocked = true;
      note =
          "only one CPU available: producer and consumer run unpinned on the same CPU and "
          "yield when blocked, so the figures measure scheduling, not the rings";
      std::fprintf(stderr, "ring_bench: %s\n", note.c_str());
    }
  }

  const double load_before = load_average_1m();
  Variant variants[] = {
      {"naive", &run_single<predis::bench::NaiveRing<uint64_t>>, {}, true, {}},
      {"spsc", &run_single<predis::SpscRing<uint64_t>>, {}, true, {}},
      {"spsc_batch", &run_batch, {}, true, {}},
  };
  for (int rep = 0; rep < o.repeats; ++rep) {
    for (Variant& v : variants) {
      const RunResult r = v.run(o);
      v.items_per_s.push_back(static_cast<double>(o.items) / r.seconds);
      if (!r.check.ok && v.ok) {
        v.ok = false;
        v.first_failure = r.check;
      }
    }
  }

  bool all_ok = true;
  for (const Variant& v : variants) all_ok = all_ok && v.ok;
  const double naive = median(variants[0].items_per_s);

  std::printf("{\n");
  std::printf("  \"items\": %llu,\n", static_cast<unsigned long long>(o.items));
  std::printf("  \"capacity\": %zu,\n", o.capacity);
  std::printf("  \"batch\": %zu,\n", o.batch);
  std::printf("  \"repeats\": %d,\n", o.repeats);
  std::printf("  \"pinned\": %s,\n", pinned ? "true" : "false");
  if (pinned) {
    std::printf("  \"cpus\": [%d, %d],\n", o.cpu_producer, o.cpu_consumer);
  } else {
    std::printf("  \"cpus\": [],\n");
    std::printf("  \"note\": \"%s\",\n", note.c_str());
  }
  if (load_before >= 0) {
    std::printf("  \"loadavg_1m_before\": %.2f,\n", load_before);
  } else {
    std::printf("  \"loadavg_1m_before\": null,\n");
  }
  std::printf("  \"ordering_ok\": %s,\n", all_ok ? "true" : "false");
  for (const Variant& v : variants) print_variant(v, false);
  std::printf("  \"ratio_spsc_vs_naive\": %.4f,\n", median(variants[1].items_per_s) / naive);
  std::printf("  \"ratio_batch_vs_naive\": %.4f\n", median(variants[2].items_per_s) / naive);
  std::printf("}\n");
  return all_ok ? 0 : 1;
}
