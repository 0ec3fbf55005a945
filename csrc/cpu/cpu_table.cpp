#include "cpu/cpu_table.hpp"

#include <algorithm>
#include <cstring>
#include <new>

#include "predis/spinlock.hpp"

namespace predis {
namespace {

// Buckets are sized so that max_items fills at most 3/4 of the slots.
uint64_t bucket_count_for(uint64_t max_items) {
  const uint64_t wanted = std::max<uint64_t>(1, (max_items * 4 + 3 * kSlotsPerBucket - 1) /
                                                   (3 * kSlotsPerBucket));
  uint64_t n = 1;
  while (n < wanted) n <<= 1;
  return n;
}

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
const uint8_t* value_of(uint64_t handle) noexcept {
  return key_bytes_of(handle) + header_of(handle)->key_len;
}

}  // namespace

struct CpuTable::CallLog {
  explicit CallLog(const AccessLog& access_log, std::size_t expected)
      : enabled(access_log.enabled()) {
    if (enabled) events.reserve(expected);
  }
  void event(const AccessLog& access_log, const KeyRef& key, uint64_t now, AccessOp op, bool hit,
             uint32_t size) {
    if (enabled && access_log.sample()) {
      events.push_back(AccessEvent{key.key, now, size, static_cast<uint8_t>(op),
                                   static_cast<uint8_t>(hit), static_cast<uint8_t>(key.kind), 0});
    }
  }
  bool enabled;
  CounterDelta counters;
  std::vector<AccessEvent> events;
};

CpuTable::CpuTable(const TableConfig& config)
    : config_(config),
      mask_(bucket_count_for(config.max_items) - 1),
      buckets_(std::make_unique<Bucket[]>(mask_ + 1)),
      arena_(record_size(kMaxKeyBytes, config.max_value_size)),
      clock_(config.manual_clock),
      log_(config.log_capacity, config.sample_rate) {}

CpuTable::~CpuTable() {
  // Records live in arena pages, which the arena frees wholesale.
}

void CpuTable::prefetch_bucket(const KeyRef& key) const noexcept {
  __builtin_prefetch(&buckets_[placement_hash(key.key, key.kind) & mask_], 1, 3);
}

int CpuTable::locate(const Bucket& b, const KeyRef& key, uint8_t digest) const noexcept {
  if (key.kind == KeyKind::kInt) {
    return find_slot(b, digest, key.kind, key.key, [](const Slot&) { return true; });
  }
  return find_slot(b, digest, key.kind, key.key, [&key](const Slot& s) {
    const RecordHeader* h = header_of(s.handle);
    return h->key_len == key.len && std::memcmp(key_bytes_of(s.handle), key.bytes, key.len) == 0;
  });
}

uint64_t CpuTable::make_record(const KeyRef& key, ValueRef value) {
  const uint64_t size = record_size(key.len, value.len);
  uint8_t* chunk = arena_.allocate(size);
  auto* h = reinterpret_cast<RecordHeader*>(chunk);
  h->value_len = value.len;
  h->key_len = key.len;
  if (key.len != 0) std::memcpy(chunk + sizeof(RecordHeader), key.bytes, key.len);
  if (value.len != 0) std::memcpy(chunk + sizeof(RecordHeader) + key.len, value.data, value.len);
  bytes_used_.fetch_add(arena_.chunk_size(size), std::memory_order_relaxed);
  return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(chunk));
}

void CpuTable::free_record(uint64_t handle) noexcept {
  const RecordHeader* h = header_of(handle);
  const uint64_t size = record_size(h->key_len, h->value_len);
  bytes_used_.fetch_sub(arena_.chunk_size(size), std::memory_order_relaxed);
  arena_.release(reinterpret_cast<uint8_t*>(header_of(handle)), size);
}

void CpuTable::drop_slot(Bucket& b, int i) noexcept {
  const uint64_t handle = b.slots[i].handle;
  clear_slot(b, i);
  items_.fetch_sub(1, std::memory_order_relaxed);
  free_record(handle);
}

template <class OnHit>
bool CpuTable::lookup(const KeyRef& key, uint64_t now, uint64_t tick, bool touch, CallLog& log,
                      OnHit&& on_hit) {
  const uint64_t placement = placement_hash(key.key, key.kind);
  Bucket& b = bucket_at(placement);
  WordLock lock(b.lock);
  const int i = locate(b, key, digest_of(placement));
  if (i < 0) return false;
  Slot& s = b.slots[i];
  if (slot_expired(s, now)) {
    drop_slot(b, i);
    log.counters.add(Counter::kExpirations);
    return false;
  }
  if (touch) s.score = score_on_hit(config_.policy, s.score, tick);
  on_hit(value_of(s.handle), header_of(s.handle)->value_len);
  return true;
}

bool CpuTable::insert(const KeyRef& key, uint64_t handle, uint64_t expiry, uint64_t now,
                      uint64_t tick, CallLog& log) {
  const uint64_t placement = placement_hash(key.key, key.kind);
  Bucket& b = bucket_at(placement);
  const uint8_t digest = digest_of(placement);
  uint64_t displaced = 0;
  bool replaced = false;
  {
    WordLock lock(b.lock);
    const int i = locate(b, key, digest);
    if (i >= 0) {
      Slot& s = b.slots[i];
      displaced = s.handle;
      replaced = !slot_expired(s, now);
      s.handle = handle;
      s.expiry = expiry;
      s.score = replaced ? score_on_hit(config_.policy, s.score, tick)
                         : score_on_insert(config_.policy, tick);
      log.counters.add(replaced ? Counter::kUpdates : Counter::kInserts);
      if (!replaced) log.counters.add(Counter::kExpirations);
    } else {
      const InsertPlan plan = plan_insert(b, now);
      if (plan.occupied) {
        displaced = b.slots[plan.slot].handle;
        log.counters.add(plan.expired ? Counter::kExpirations : Counter::kEvictions);
      } else {
        items_.fetch_add(1, std::memory_order_relaxed);
      }
      fill_slot(b, plan.slot, digest, key.kind, key.key, score_on_insert(config_.policy, tick),
                handle, expiry);
      log.counters.add(Counter::kInserts);
    }
  }
  if (displaced != 0) free_record(displaced);
  enforce_limits(handle, log);
  return replaced;
}

bool CpuTable::remove(const KeyRef& key, uint64_t now, CallLog& log) {
  const uint64_t placement = placement_hash(key.key, key.kind);
  Bucket& b = bucket_at(placement);
  WordLock lock(b.lock);
  const int i = locate(b, key, digest_of(placement));
  if (i < 0) return false;
  const bool live = !slot_expired(b.slots[i], now);
  drop_slot(b, i);
  log.counters.add(live ? Counter::kDeletes : Counter::kExpirations);
  return live;
}

void CpuTable::enforce_limits(uint64_t protect, CallLog& log) {
  while (bytes_used_.load(std::memory_order_relaxed) > config_.capacity_bytes ||
         items_.load(std::memory_order_relaxed) > config_.max_items) {
    if (!evict_one(protect, log)) break;
  }
}

bool CpuTable::evict_one(uint64_t protect, CallLog& log) {
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

void CpuTable::flush(CallLog& log) {
  if (!log.events.empty()) {
    const std::size_t pushed = log_.push(log.events.data(), log.events.size());
    log.counters.add(Counter::kEventsLogged, pushed);
    log.counters.add(Counter::kEventsDropped, log.events.size() - pushed);
  }
  stats_.add(log.counters);
}

// ---- single keys ----

bool CpuTable::get(const KeyRef& key, ValueSink& sink) {
  CallLog log(log_, 1);
  const uint64_t now = clock_.now();
  const uint64_t tick = tick_.fetch_add(1, std::memory_order_relaxed);
  uint32_t size = 0;
  const bool hit = lookup(key, now, tick, true, log, [&](const uint8_t* data, uint32_t len) {
    size = len;
    sink.take(data, len);
  });
  log.counters.add(hit ? Counter::kHits : Counter::kMisses);
  log.event(log_, key, now, AccessOp::kGet, hit, size);
  flush(log);
  return hit;
}

bool CpuTable::contains(const KeyRef& key) {
  CallLog log(log_, 0);
  const bool hit = lookup(key, clock_.now(), 0, false, log, [](const uint8_t*, uint32_t) {});
  stats_.add(log.counters);
  return hit;
}

void CpuTable::put(const KeyRef& key, ValueRef value, uint64_t ttl_ns) {
  CallLog log(log_, 1);
  const uint64_t now = clock_.now();
  const uint64_t tick = tick_.fetch_add(1, std::memory_order_relaxed);
  const uint64_t handle = make_record(key, value);
  const bool replaced = insert(key, handle, ttl_ns == 0 ? 0 : now + ttl_ns, now, tick, log);
  log.event(log_, key, now, AccessOp::kPut, replaced, value.len);
  flush(log);
}

bool CpuTable::erase(const KeyRef& key) {
  CallLog log(log_, 1);
  const uint64_t now = clock_.now();
  const bool hit = remove(key, now, log);
  log.event(log_, key, now, AccessOp::kDelete, hit, 0);
  flush(log);
  return hit;
}

// ---- batches ----

void CpuTable::get_batch(const KeyBatch& keys, std::vector<uint8_t>& data, int64_t* offsets,
                         uint8_t* found) {
  CallLog log(log_, keys.n);
  const uint64_t now = clock_.now();
  const uint64_t tick = tick_.fetch_add(keys.n, std::memory_order_relaxed);
  offsets[0] = 0;
  uint64_t hits = 0;
  for (std::size_t i = 0; i < keys.n; ++i) {
    if (i + kPrefetchDistance < keys.n) prefetch_bucket(keys.at(i + kPrefetchDistance));
    const KeyRef key = keys.at(i);
    uint32_t size = 0;
    const bool hit = lookup(key, now, tick + i, true, log, [&](const uint8_t* v, uint32_t len) {
      size = len;
      data.insert(data.end(), v, v + len);
    });
    found[i] = hit ? 1 : 0;
    hits += hit ? 1 : 0;
    offsets[i + 1] = static_cast<int64_t>(data.size());
    log.event(log_, key, now, AccessOp::kGet, hit, size);
  }
  log.counters.add(Counter::kHits, hits);
  log.counters.add(Counter::kMisses, keys.n - hits);
  flush(log);
}

std::size_t CpuTable::get_into(const KeyBatch& keys, uint8_t* out, std::size_t width,
                               uint8_t* found, uint32_t* lengths) {
  CallLog log(log_, keys.n);
  const uint64_t now = clock_.now();
  const uint64_t tick = tick_.fetch_add(keys.n, std::memory_order_relaxed);
  uint64_t hits = 0;
  std::size_t too_long = 0;
  for (std::size_t i = 0; i < keys.n; ++i) {
    if (i + kPrefetchDistance < keys.n) prefetch_bucket(keys.at(i + kPrefetchDistance));
    const KeyRef key = keys.at(i);
    uint8_t* row = out + i * width;
    uint32_t size = 0;
    bool fits = true;
    const bool hit = lookup(key, now, tick + i, true, log, [&](const uint8_t* v, uint32_t len) {
      size = len;
      fits = len <= width;
      if (fits && len != 0) std::memcpy(row, v, len);
    });
    const std::size_t written = hit && fits ? size : 0;
    if (written < width) std::memset(row + written, 0, width - written);
    found[i] = hit && fits ? 1 : 0;
    lengths[i] = size;
    hits += hit ? 1 : 0;
    too_long += hit && !fits ? 1 : 0;
    log.event(log_, key, now, AccessOp::kGet, hit, size);
  }
  log.counters.add(Counter::kHits, hits);
  log.counters.add(Counter::kMisses, keys.n - hits);
  flush(log);
  return too_long;
}

void CpuTable::put_batch(const KeyBatch& keys, const ValueRef* values, uint64_t ttl_ns) {
  CallLog log(log_, keys.n);
  const uint64_t now = clock_.now();
  const uint64_t tick = tick_.fetch_add(keys.n, std::memory_order_relaxed);
  const uint64_t expiry = ttl_ns == 0 ? 0 : now + ttl_ns;
  for (std::size_t i = 0; i < keys.n; ++i) {
    if (i + kPrefetchDistance < keys.n) prefetch_bucket(keys.at(i + kPrefetchDistance));
    const KeyRef key = keys.at(i);
    const uint64_t handle = make_record(key, values[i]);
    const bool replaced = insert(key, handle, expiry, now, tick + i, log);
    log.event(log_, key, now, AccessOp::kPut, replaced, values[i].len);
  }
  flush(log);
}

std::size_t CpuTable::erase_batch(const KeyBatch& keys, uint8_t* erased) {
  CallLog log(log_, keys.n);
  const uint64_t now = clock_.now();
  std::size_t count = 0;
  for (std::size_t i = 0; i < keys.n; ++i) {
    const KeyRef key = keys.at(i);
    const bool hit = remove(key, now, log);
    if (erased != nullptr) erased[i] = hit ? 1 : 0;
    count += hit ? 1 : 0;
    log.event(log_, key, now, AccessOp::kDelete, hit, 0);
  }
  flush(log);
  return count;
}

void CpuTable::contains_batch(const KeyBatch& keys, uint8_t* out) {
  CallLog log(log_, 0);
  const uint64_t now = clock_.now();
  for (std::size_t i = 0; i < keys.n; ++i) {
    if (i + kPrefetchDistance < keys.n) prefetch_bucket(keys.at(i + kPrefetchDistance));
    out[i] = lookup(keys.at(i), now, 0, false, log, [](const uint8_t*, uint32_t) {}) ? 1 : 0;
  }
  stats_.add(log.counters);
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
  s.hits = stats_.get(Counter::kHits);
  s.misses = stats_.get(Counter::kMisses);
  s.inserts = stats_.get(Counter::kInserts);
  s.updates = stats_.get(Counter::kUpdates);
  s.deletes = stats_.get(Counter::kDeletes);
  s.evictions = stats_.get(Counter::kEvictions);
  s.expirations = stats_.get(Counter::kExpirations);
  s.items = items_.load(std::memory_order_relaxed);
  s.bytes_used = bytes_used_.load(std::memory_order_relaxed);
  s.capacity_bytes = config_.capacity_bytes;
  s.max_items = config_.max_items;
  s.bytes_reserved = arena_.bytes_reserved();
  s.table_bytes = (mask_ + 1) * sizeof(Bucket);
  s.events_logged = stats_.get(Counter::kEventsLogged);
  s.events_dropped = stats_.get(Counter::kEventsDropped);
  s.events_pending = log_.pending();
  s.log_capacity = log_.capacity();
  return s;
}

uint64_t CpuTable::footprint(uint32_t key_len, uint32_t value_len) const noexcept {
  return arena_.chunk_size(record_size(key_len, value_len));
}

std::size_t CpuTable::drain_events(AccessEvent* out, std::size_t max) { return log_.drain(out, max); }

}  // namespace predis
