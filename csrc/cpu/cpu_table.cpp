#include "cpu/cpu_table.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <optional>

#include "predis/bench_slowdown.hpp"
#include "predis/spinlock.hpp"
#include "predis/table_rules.hpp"

namespace predis {
static_assert(kMaxArenaPage == HugeBuffer::kHugePage, "arena pages top out at one huge page");
namespace {

// How many buckets ahead a batch prefetches: enough to cover DRAM latency at ~20 ns a key.
constexpr std::size_t kPrefetchDistance = 8;
// Buckets examined per capacity eviction (up to 64 entries: an approximate LRU/LFU).
constexpr uint64_t kEvictionSample = 4;

RecordHeader* header_of(uint64_t handle) noexcept {
  return reinterpret_cast<RecordHeader*>(static_cast<uintptr_t>(handle));
}
const uint8_t* key_bytes_of(uint64_t handle) noexcept {
  return reinterpret_cast<const uint8_t*>(header_of(handle) + 1);
}

struct ValueView {
  const uint8_t* data;
  uint32_t len;
};

// Under the bucket lock: where the slot's value bytes are.
ValueView value_view(const Slot& s, uint8_t form) noexcept {
  if (form_inline(form)) {
    return ValueView{reinterpret_cast<const uint8_t*>(&s.handle), form_inline_len(form)};
  }
  const RecordHeader* h = header_of(s.handle);
  return ValueView{key_bytes_of(s.handle) + h->key_len, h->value_len};
}

// A relaxed read of a word another thread may be writing: used only to choose what to
// prefetch, never to decide a result (every decision is made again under the lock).
template <class T>
T peek(const T& word) noexcept {
  return __atomic_load_n(&word, __ATOMIC_RELAXED);
}

}  // namespace

// Per-call scratch. Its destructor publishes the counters and pushes the sampled events, so
// they are accounted for however the call ends (an exception included).
struct CpuTable::CallLog {
  // Kept in the call's scratch rather than in a timer object of its own, so the untimed
  // path adds no value that stays live across a batch loop (see docs/benchmarks.md).
  CallLog(CpuTable& table, std::size_t expected, Op op)
      : table(table),
        enabled(table.log_.enabled()),
        op(op),
        start_ns(table.stats_.sample_latency() ? latency_clock_ns() : 0) {
    // Never collect more than the ring can hold: the rest would be dropped anyway.
    limit = enabled ? std::min(expected, table.log_.capacity()) : 0;
    if (limit > 1) events.reserve(limit);
  }
  CallLog(const CallLog&) = delete;
  CallLog& operator=(const CallLog&) = delete;
  ~CallLog() { table.flush(*this); }

  void event(const KeyRef& key, uint64_t now, AccessOp op, bool hit, uint32_t size) {
    if (!enabled || !table.log_.sample()) return;
    const AccessEvent e{key.key,
                        now,
                        size,
                        static_cast<uint8_t>(op),
                        static_cast<uint8_t>(hit),
                        static_cast<uint8_t>(key.kind),
                        0};
    if (limit == 1 && !has_single) {
      single = e;  // single-key calls log without touching the heap
      has_single = true;
    } else if (events.size() < limit) {
      events.push_back(e);
    } else {
      ++overflow;
    }
  }

  CpuTable& table;
  bool enabled;
  Op op;
  uint64_t start_ns;  // when the call began, if it is timed; 0 if not
  std::size_t limit = 0;
  CounterDelta counters;
  std::vector<AccessEvent> events;
  AccessEvent single{};
  bool has_single = false;
  uint64_t overflow = 0;  // sampled events beyond the ring's capacity: dropped
};

CpuTable::CpuTable(const TableConfig& config)
    : config_(config),
      mask_(bucket_count_for(config.max_items) - 1),
      bucket_memory_((mask_ + 1) * sizeof(Bucket)),
      buckets_(static_cast<Bucket*>(bucket_memory_.data())),
      arena_(record_size(kMaxKeyBytes, config.max_value_size),
             arena_page_bytes(config.capacity_bytes)),
      clock_(config.manual_clock),
      log_(config.log_capacity, config.sample_rate),
      stats_(config.latency_period) {}

CpuTable::~CpuTable() {
  // Records live in arena pages, which the arena frees wholesale.
}

void CpuTable::prefetch_bucket(const KeyRef& key) const noexcept {
  const Placement p = place(key.key, key.kind, mask_);
  __builtin_prefetch(&buckets_[p.b1], 1, 3);
  __builtin_prefetch(&buckets_[p.b2], 1, 3);
}

template <class F>
auto CpuTable::with_key_eq(const KeyRef& key, F&& f) const {
  if (key.kind == KeyKind::kInt) return f(IntKeyEq{});
  return f([&key](const Slot& s) {
    const RecordHeader* h = header_of(s.handle);
    return h->key_len == key.len && std::memcmp(key_bytes_of(s.handle), key.bytes, key.len) == 0;
  });
}

int CpuTable::locate(const Bucket& b, const KeyRef& key, uint8_t digest) const noexcept {
  return with_key_eq(key,
                     [&](auto&& eq) { return find_slot_all(b, digest, key.kind, key.key, eq); });
}

CpuTable::Stored CpuTable::store_value(const KeyRef& key, ValueRef value) {
  if (stores_inline(key, value.len)) {
    uint64_t word = 0;
    if (value.len != 0) std::memcpy(&word, value.data, value.len);
    bytes_used_.fetch_add(kInlineFootprint, std::memory_order_relaxed);
    return Stored{word, make_form(key.kind, true, value.len)};
  }
  const uint64_t size = record_size(key.len, value.len);
  uint8_t* chunk = arena_.allocate(size);  // throws std::bad_alloc; nothing changed yet
  auto* h = reinterpret_cast<RecordHeader*>(chunk);
  h->value_len = value.len;
  h->key_len = key.len;
  if (key.len != 0) std::memcpy(chunk + sizeof(RecordHeader), key.bytes, key.len);
  if (value.len != 0) std::memcpy(chunk + sizeof(RecordHeader) + key.len, value.data, value.len);
  bytes_used_.fetch_add(arena_.chunk_size(size), std::memory_order_relaxed);
  return Stored{static_cast<uint64_t>(reinterpret_cast<uintptr_t>(chunk)),
                make_form(key.kind, false, 0)};
}

void CpuTable::release_value(uint64_t word, uint8_t form) noexcept {
  if (form_inline(form)) {
    bytes_used_.fetch_sub(kInlineFootprint, std::memory_order_relaxed);
    return;
  }
  const RecordHeader* h = header_of(word);
  const uint64_t size = record_size(h->key_len, h->value_len);
  bytes_used_.fetch_sub(arena_.chunk_size(size), std::memory_order_relaxed);
  arena_.release(reinterpret_cast<uint8_t*>(header_of(word)), size);
}

void CpuTable::drop_slot(Bucket& b, int i) noexcept {
  const uint64_t word = b.slots[i].handle;
  const uint8_t form = b.forms[i];
  clear_slot(b, i);
  items_.fetch_sub(1, std::memory_order_relaxed);
  release_value(word, form);
}

template <class OnHit>
bool CpuTable::lookup(const KeyRef& key, const Placement& p, uint64_t now, uint64_t tick,
                      bool touch, CallLog& log, OnHit&& on_hit) {
  bench_slowdown_spin();  // nothing unless built with PREDIS_BENCH_SLOWDOWN
  for (const uint64_t idx : {p.b1, p.b2}) {
    Bucket& b = buckets_[idx];
    WordLock lock(b.lock);
    const int i = locate(b, key, p.digest);
    if (i >= 0) {
      Slot& s = b.slots[i];
      if (slot_expired(s, now)) {
        drop_slot(b, i);
        log.counters.add(Counter::kExpirations);
        return false;
      }
      if (touch) s.score = score_on_hit(config_.policy, s.score, tick);
      const ValueView v = value_view(s, b.forms[i]);
      on_hit(v.data, v.len);
      return true;
    }
    if (p.b2 == p.b1) break;
  }
  return false;
}

namespace {

// Holds both candidate buckets of a key, locked in index order so two inserters can never
// wait on each other in a cycle.
class PairLock {
 public:
  PairLock(Bucket* buckets, const Placement& p)
      : first_(buckets[p.b1 < p.b2 ? p.b1 : p.b2].lock),
        second_(p.b1 == p.b2 ? nullptr : &buckets[p.b1 < p.b2 ? p.b2 : p.b1]) {
    if (second_ != nullptr) second_lock_.emplace(second_->lock);
  }

 private:
  WordLock first_;
  Bucket* second_;
  std::optional<WordLock> second_lock_;
};

}  // namespace

template <bool kPrefetched>
bool CpuTable::insert(const KeyRef& key, const Stored& value, uint64_t expiry, uint64_t now,
                      uint64_t tick, CallLog& log, uint64_t demote) {
  const Placement p = place(key.key, key.kind, mask_);
  PairInsertResult r;
  {
    PairLock lock(buckets_, p);
    r = with_key_eq(key, [&](auto&& eq) {
      return insert_into_pair<kPrefetched>(buckets_[p.b1], buckets_[p.b2], p.digest, key.kind,
                                           key.key, eq, value.form, value.word, expiry, now, tick,
                                           config_.policy, demote);
    });
  }
  if (r.skipped) {  // only for kPrefetched: the key is live, the guess is dropped
    release_value(value.word, value.form);
    return true;
  }
  if (r.updated) {
    log.counters.add(Counter::kUpdates);
  } else {
    log.counters.add(Counter::kInserts);
    if (!r.displaced) items_.fetch_add(1, std::memory_order_relaxed);
  }
  if (r.expired) log.counters.add(Counter::kExpirations);
  if (r.evicted) log.counters.add(Counter::kEvictions);
  if (r.displaced) release_value(r.old_handle, r.old_form);
  enforce_limits(Protected{key.key, key.kind, true}, log);
  return r.updated;
}

bool CpuTable::remove(const KeyRef& key, uint64_t now, CallLog& log) {
  const Placement p = place(key.key, key.kind, mask_);
  for (const uint64_t idx : {p.b1, p.b2}) {
    Bucket& b = buckets_[idx];
    WordLock lock(b.lock);
    const int i = locate(b, key, p.digest);
    if (i >= 0) {
      const bool live = !slot_expired(b.slots[i], now);
      drop_slot(b, i);
      log.counters.add(live ? Counter::kDeletes : Counter::kExpirations);
      return live;
    }
    if (p.b2 == p.b1) break;
  }
  return false;
}

void CpuTable::enforce_limits(const Protected& protect, CallLog& log) {
  while (bytes_used_.load(std::memory_order_relaxed) > config_.capacity_bytes ||
         items_.load(std::memory_order_relaxed) > config_.max_items) {
    if (!evict_one(protect, log)) break;
  }
}

bool CpuTable::evict_one(const Protected& protect, CallLog& log) {
  const uint64_t buckets = mask_ + 1;
  // Sample a few buckets from a shared clock hand and evict the lowest score among them.
  // Empty stretches are skipped; a whole lap with nothing evictable means nothing is left.
  for (uint64_t scanned = 0; scanned < buckets;) {
    const uint64_t start = hand_.fetch_add(kEvictionSample, std::memory_order_relaxed);
    uint64_t best_bucket = 0;
    uint64_t best_score = 0;
    bool any = false;
    for (uint64_t j = 0; j < kEvictionSample; ++j) {
      const uint64_t idx = (start + j) & mask_;
      Bucket& b = buckets_[idx];
      WordLock lock(b.lock);
      uint64_t score = 0;
      if (lowest_score_slot(b, protect, &score) >= 0 && (!any || score < best_score)) {
        any = true;
        best_score = score;
        best_bucket = idx;
      }
    }
    scanned += kEvictionSample;
    if (!any) continue;
    Bucket& b = buckets_[best_bucket];
    WordLock lock(b.lock);
    const int victim = lowest_score_slot(b, protect, nullptr);
    if (victim < 0) continue;  // another thread emptied it meanwhile
    const bool expired = slot_expired(b.slots[victim], clock_.now());
    drop_slot(b, victim);
    log.counters.add(expired ? Counter::kExpirations : Counter::kEvictions);
    return true;
  }
  return false;
}

void CpuTable::flush(CallLog& log) noexcept {
  const AccessEvent* events = log.has_single ? &log.single : log.events.data();
  const std::size_t n = log.has_single ? 1 : log.events.size();
  const std::size_t pushed = n != 0 ? log_.push(events, n) : 0;
  log.counters.add(Counter::kEventsLogged, pushed);
  log.counters.add(Counter::kEventsDropped, n - pushed + log.overflow);
  stats_.add(log.counters);
  if (__builtin_expect(log.start_ns != 0, 0)) stats_.finish_latency(log.op, log.start_ns);
}

template <class Body>
void CpuTable::for_each_pipelined(const KeyBatch& keys, Body&& body) {
  // Stage distances, in keys: both candidate headers are fetched kAhead keys early; kAhead/2
  // keys early the (now cached) digests name the slot to fetch; kAhead/4 keys early that
  // slot's handle names the record to fetch. Placements are kept in a small ring between stages.
  constexpr std::size_t kAhead = 32;
  constexpr std::size_t kRing = 64;
  static_assert(kRing >= kAhead + 1 && (kRing & (kRing - 1)) == 0, "ring must cover the window");
  Placement ring[kRing];
  int8_t slot_hint[kRing];
  const std::size_t n = keys.n;
  for (std::size_t i = 0; i < n + kAhead; ++i) {
    if (i < n) {
      const KeyRef k = keys.at(i);
      const Placement p = place(k.key, k.kind, mask_);
      ring[i % kRing] = p;
      slot_hint[i % kRing] = -1;
      __builtin_prefetch(&buckets_[p.b1], 1, 3);
      __builtin_prefetch(&buckets_[p.b2], 1, 3);
    }
    if (i >= kAhead / 2 && i - kAhead / 2 < n) {
      const std::size_t j = i - kAhead / 2;
      const Placement& p = ring[j % kRing];
      int8_t hint = -1;
      for (const uint64_t idx : {p.b1, p.b2}) {
        // A racy read of the digests: it only picks what to prefetch; the lookup itself
        // reads them again under the bucket lock.
        const Bucket& b = buckets_[idx];
        const uint32_t m = digest_mask(b.digests, p.digest);
        if (m != 0) {
          const int s = lowest_bit(m);
          hint = static_cast<int8_t>(idx == p.b1 ? s : s + kSlotsPerBucket);
          __builtin_prefetch(&b.slots[s], 1, 3);
          break;
        }
        if (p.b2 == p.b1) break;
      }
      slot_hint[j % kRing] = hint;
    }
    if (i >= 3 * kAhead / 4 && i - 3 * kAhead / 4 < n) {
      const std::size_t j = i - 3 * kAhead / 4;
      const int hint = slot_hint[j % kRing];
      if (hint >= 0) {
        const Placement& p = ring[j % kRing];
        const Bucket& b = buckets_[hint < kSlotsPerBucket ? p.b1 : p.b2];
        const int s = hint % kSlotsPerBucket;
        if (!form_inline(peek(b.forms[s]))) {
          __builtin_prefetch(
              reinterpret_cast<const void*>(static_cast<uintptr_t>(peek(b.slots[s].handle))), 0, 3);
        }
      }
    }
    if (i >= kAhead) {
      const std::size_t j = i - kAhead;
      body(j, ring[j % kRing]);
    }
  }
}

// ---- single keys ----

bool CpuTable::get(const KeyRef& key, ValueSink& sink) {
  CallLog log(*this, 1, Op::kGet);
  const uint64_t now = clock_.now();
  const uint64_t tick = tick_.fetch_add(1, std::memory_order_relaxed);
  uint32_t size = 0;
  const Placement p = place(key.key, key.kind, mask_);
  const bool hit = lookup(key, p, now, tick, true, log, [&](const uint8_t* data, uint32_t len) {
    size = len;
    sink.take(data, len);
  });
  log.counters.add(hit ? Counter::kHits : Counter::kMisses);
  log.event(key, now, AccessOp::kGet, hit, size);
  return hit;
}

bool CpuTable::contains(const KeyRef& key) {
  CallLog log(*this, 0, Op::kContains);
  const Placement p = place(key.key, key.kind, mask_);
  return lookup(key, p, clock_.now(), 0, false, log, [](const uint8_t*, uint32_t) {});
}

void CpuTable::put(const KeyRef& key, ValueRef value, uint64_t ttl_ns) {
  CallLog log(*this, 1, Op::kPut);
  const uint64_t now = clock_.now();
  const uint64_t tick = tick_.fetch_add(1, std::memory_order_relaxed);
  const Stored stored = store_value(key, value);
  const bool replaced = insert(key, stored, deadline(now, ttl_ns), now, tick, log);
  log.event(key, now, AccessOp::kPut, replaced, value.len);
}

void CpuTable::put_prefetched(const KeyRef& key, ValueRef value, uint64_t ttl_ns,
                              double confidence) {
  CallLog log(*this, 1, Op::kPutPrefetched);
  const uint64_t now = clock_.now();
  const uint64_t tick = tick_.fetch_add(1, std::memory_order_relaxed);
  const uint64_t demote = prefetch_demote(confidence, items_.load(std::memory_order_relaxed));
  const Stored stored = store_value(key, value);
  // For a prefetched store, insert reports whether it was dropped (the key was live).
  const bool dropped = insert<true>(key, stored, deadline(now, ttl_ns), now, tick, log, demote);
  if (!dropped) log.event(key, now, AccessOp::kPrefetch, false, value.len);
}

bool CpuTable::erase(const KeyRef& key) {
  CallLog log(*this, 1, Op::kDelete);
  const uint64_t now = clock_.now();
  const bool hit = remove(key, now, log);
  log.event(key, now, AccessOp::kDelete, hit, 0);
  return hit;
}

// ---- batches ----

void CpuTable::get_batch(const KeyBatch& keys, std::vector<uint8_t>& data, int64_t* offsets,
                         uint8_t* found) {
  CallLog log(*this, keys.n, Op::kGetBatch);
  const uint64_t now = clock_.now();
  const uint64_t tick = tick_.fetch_add(keys.n, std::memory_order_relaxed);
  offsets[0] = 0;
  uint64_t hits = 0;
  // Room for inline-sized values up front; larger values grow the buffer geometrically.
  data.reserve(data.size() + keys.n * kMaxInlineValue);
  for_each_pipelined(keys, [&](std::size_t i, const Placement& p) {
    const KeyRef key = keys.at(i);
    uint32_t size = 0;
    const bool hit = lookup(key, p, now, tick + i, true, log, [&](const uint8_t* v, uint32_t len) {
      size = len;
      data.insert(data.end(), v, v + len);
    });
    found[i] = hit ? 1 : 0;
    hits += hit ? 1 : 0;
    offsets[i + 1] = static_cast<int64_t>(data.size());
    log.event(key, now, AccessOp::kGet, hit, size);
  });
  log.counters.add(Counter::kHits, hits);
  log.counters.add(Counter::kMisses, keys.n - hits);
}

TooLong CpuTable::get_into(const KeyBatch& keys, uint8_t* out, std::size_t width, uint8_t* found) {
  CallLog log(*this, keys.n, Op::kGetBatch);
  const uint64_t now = clock_.now();
  const uint64_t tick = tick_.fetch_add(keys.n, std::memory_order_relaxed);
  uint64_t hits = 0;
  TooLong too_long;
  for_each_pipelined(keys, [&](std::size_t i, const Placement& p) {
    const KeyRef key = keys.at(i);
    uint8_t* row = out + i * width;
    uint32_t size = 0;
    bool fits = true;
    const bool hit = lookup(key, p, now, tick + i, true, log, [&](const uint8_t* v, uint32_t len) {
      size = len;
      fits = len <= width;
      if (fits && len != 0) std::memcpy(row, v, len);
    });
    const std::size_t written = hit && fits ? size : 0;
    if (written < width) std::memset(row + written, 0, width - written);
    found[i] = hit && fits ? 1 : 0;
    hits += hit ? 1 : 0;
    if (hit && !fits) too_long.note(i, size);
    log.event(key, now, AccessOp::kGet, hit, size);
  });
  log.counters.add(Counter::kHits, hits);
  log.counters.add(Counter::kMisses, keys.n - hits);
  return too_long;
}

void CpuTable::put_batch(const KeyBatch& keys, const ValueRef* values, uint64_t ttl_ns) {
  CallLog log(*this, keys.n, Op::kPutBatch);
  const uint64_t now = clock_.now();
  const uint64_t tick = tick_.fetch_add(keys.n, std::memory_order_relaxed);
  const uint64_t expiry = deadline(now, ttl_ns);
  for (std::size_t i = 0; i < keys.n; ++i) {
    if (i + kPrefetchDistance < keys.n) prefetch_bucket(keys.at(i + kPrefetchDistance));
    const KeyRef key = keys.at(i);
    const Stored stored = store_value(key, values[i]);
    const bool replaced = insert(key, stored, expiry, now, tick + i, log);
    log.event(key, now, AccessOp::kPut, replaced, values[i].len);
  }
}

std::size_t CpuTable::erase_batch(const KeyBatch& keys, uint8_t* erased) {
  CallLog log(*this, keys.n, Op::kDeleteBatch);
  const uint64_t now = clock_.now();
  std::size_t count = 0;
  for (std::size_t i = 0; i < keys.n; ++i) {
    if (i + kPrefetchDistance < keys.n) prefetch_bucket(keys.at(i + kPrefetchDistance));
    const KeyRef key = keys.at(i);
    const bool hit = remove(key, now, log);
    if (erased != nullptr) erased[i] = hit ? 1 : 0;
    count += hit ? 1 : 0;
    log.event(key, now, AccessOp::kDelete, hit, 0);
  }
  return count;
}

void CpuTable::contains_batch(const KeyBatch& keys, uint8_t* out) {
  CallLog log(*this, 0, Op::kContainsBatch);
  const uint64_t now = clock_.now();
  for_each_pipelined(keys, [&](std::size_t i, const Placement& p) {
    out[i] = lookup(keys.at(i), p, now, 0, false, log, [](const uint8_t*, uint32_t) {}) ? 1 : 0;
  });
}

void CpuTable::clear() {
  for (uint64_t idx = 0; idx <= mask_; ++idx) {
    Bucket& b = buckets_[idx];
    WordLock lock(b.lock);
    for (int i = 0; i < kSlotsPerBucket; ++i) {
      if (slot_used(b, i)) drop_slot(b, i);
    }
  }
}

StatsSnapshot CpuTable::stats() const {
  StatsSnapshot s{};
  fill_common_stats(s, stats_, log_);
  s.items = items_.load(std::memory_order_relaxed);
  s.bytes_used = bytes_used_.load(std::memory_order_relaxed);
  s.capacity_bytes = config_.capacity_bytes;
  s.max_items = config_.max_items;
  s.bytes_reserved = arena_.bytes_reserved();
  s.table_bytes = (mask_ + 1) * sizeof(Bucket);
  return s;
}

uint64_t CpuTable::footprint(KeyKind kind, uint32_t key_len, uint32_t value_len) const noexcept {
  if (kind == KeyKind::kInt && value_len <= kMaxInlineValue) return kInlineFootprint;
  return arena_.chunk_size(record_size(key_len, value_len));
}

std::size_t CpuTable::drain_events(AccessEvent* out, std::size_t max) {
  return log_.drain(out, max);
}

}  // namespace predis
