#include "cuda/cuda_table.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "cuda/device_info.hpp"
#include "predis/arena.hpp"
#include "predis/table_rules.hpp"

namespace predis::cuda {
namespace {

// Keys per pipelined chunk: large enough that a chunk's kernels outlast its copies' setup,
// small enough that a batch of a few million keys has several chunks to overlap.
constexpr std::size_t kChunk = std::size_t{1} << 20;

cudaStream_t as_stream(uintptr_t s) {
  // __cuda_array_interface__ v3: 1 is the legacy default stream, 2 the per-thread one.
  if (s == 1) return cudaStreamLegacy;
  if (s == 2) return cudaStreamPerThread;
  return reinterpret_cast<cudaStream_t>(s);
}

}  // namespace

// Per-call scratch, as the CPU backend's: counter totals and sampled events, published once
// when the call ends (however it ends).
class CudaTable::CallLog {
 public:
  CallLog(CudaTable& table, std::size_t expected) : table_(table), enabled_(table.log_.enabled()) {
    limit_ = enabled_ ? std::min(expected, table.log_.capacity()) : 0;
    if (limit_ > 1) events_.reserve(limit_);
  }
  CallLog(const CallLog&) = delete;
  CallLog& operator=(const CallLog&) = delete;
  ~CallLog() {
    const std::size_t pushed =
        events_.empty() ? 0 : table_.log_.push(events_.data(), events_.size());
    counters.add(Counter::kEventsLogged, pushed);
    counters.add(Counter::kEventsDropped, events_.size() - pushed + overflow_);
    table_.stats_.add(counters);
  }

  void event(const KeyRef& key, uint64_t now, AccessOp op, bool hit, uint32_t size) {
    if (!enabled_ || !table_.log_.sample()) return;
    if (events_.size() < limit_) {
      events_.push_back(AccessEvent{key.key, now, size, static_cast<uint8_t>(op),
                                    static_cast<uint8_t>(hit), static_cast<uint8_t>(key.kind), 0});
    } else {
      ++overflow_;
    }
  }

  CounterDelta counters;

 private:
  CudaTable& table_;
  bool enabled_;
  std::size_t limit_ = 0;
  std::vector<AccessEvent> events_;
  uint64_t overflow_ = 0;
};

Found CudaTable::Lane::found_view() {
  return Found{status.dev(), word.dev(), form.dev(), length.dev(), rsize.dev()};
}

DevKeys CudaTable::Lane::stage_keys(const KeyBatch& batch, std::size_t begin, std::size_t end) {
  const std::size_t m = end - begin;
  const cudaStream_t s = stream.get();
  uint64_t* hk = keys.prepare(m);
  DevKeys k;
  k.n = m;
  if (batch.ints != nullptr) {
    if (m != 0) std::memcpy(hk, batch.ints + begin, m * sizeof(uint64_t));
    keys.up(m, s);
    k.keys = keys.dev();
    return k;
  }
  std::size_t total = 0;
  bool any_bytes = false;
  for (std::size_t i = begin; i < end; ++i) {
    hk[i - begin] = batch.refs[i].key;
    any_bytes |= batch.refs[i].kind == KeyKind::kBytes;
    total += batch.refs[i].len;
  }
  keys.up(m, s);
  k.keys = keys.dev();
  if (!any_bytes) return k;
  uint8_t* hkind = kinds.prepare(m);
  uint64_t* hoff = key_offsets.prepare(m + 1);
  uint8_t* hbytes = key_bytes.prepare(std::max<std::size_t>(total, 1));
  uint64_t off = 0;
  for (std::size_t i = begin; i < end; ++i) {
    const KeyRef& r = batch.refs[i];
    hkind[i - begin] = static_cast<uint8_t>(r.kind);
    hoff[i - begin] = off;
    if (r.len != 0) std::memcpy(hbytes + off, r.bytes, r.len);
    off += r.len;
  }
  hoff[m] = off;
  kinds.up(m, s);
  key_offsets.up(m + 1, s);
  key_bytes.up(total, s);
  k.kinds = kinds.dev();
  k.bytes = key_bytes.dev();
  k.byte_offsets = key_offsets.dev();
  return k;
}

CudaTable::CudaTable(const TableConfig& config)
    : config_(config),
      mask_(bucket_count_for(config.max_items) - 1),
      arena_(record_size(kMaxKeyBytes, config.max_value_size),
             arena_page_bytes(config.capacity_bytes)),
      clock_(config.manual_clock),
      log_(config.log_capacity, config.sample_rate),
      stats_(config.latency_period) {
  std::string error;
  if (list_devices(&error).empty()) {
    throw BackendError(BackendError::Kind::kUnavailable, "no usable CUDA device: " + error);
  }
  try {
    bind_device();
    const std::size_t bytes = (mask_ + 1) * sizeof(Bucket);
    buckets_ = DeviceBuffer(bytes);
    check(cudaMemset(buckets_.get(), 0, bytes), "clearing the bucket array");
    lanes_[0] = std::make_unique<Lane>();
    lanes_[1] = std::make_unique<Lane>();
    caller_ready_ = std::make_unique<Event>();
    check(cudaDeviceSynchronize(), "creating the table");
  } catch (const BackendError& e) {
    throw BackendError(BackendError::Kind::kUnavailable,
                       std::string("cannot create the CUDA table: ") + e.what());
  }
}

CudaTable::~CudaTable() {
  // Queued work must finish before the buffers it uses are freed.
  cudaSetDevice(device_);
  cudaDeviceSynchronize();
}

void CudaTable::bind_device() const {
  // The current device is per host thread; every call may come from a new thread.
  check(cudaSetDevice(device_), "selecting the CUDA device");
}

void CudaTable::wait_for_caller(uintptr_t stream) {
  if (stream == 0) return;
  caller_ready_->record(as_stream(stream));
  caller_ready_->make_wait(lanes_[0]->stream.get());
}

void CudaTable::release_value(uint64_t word, uint8_t form, uint64_t rsize) {
  if (form_inline(form)) {
    bytes_used_ -= kInlineFootprint;
    return;
  }
  bytes_used_ -= arena_.chunk_size(rsize);
  arena_.release(word, rsize);
}

unsigned long long* CudaTable::zero_tally(Lane& lane) {
  constexpr std::size_t kTallyWords = 8;
  tally_.prepare(kTallyWords);
  check(
      cudaMemsetAsync(tally_.dev(), 0, kTallyWords * sizeof(unsigned long long), lane.stream.get()),
      "clearing the tally");
  return tally_.dev();
}

void CudaTable::release_removed(Lane& lane, std::size_t n) {
  const unsigned long long* t = tally_.host();
  items_.fetch_sub(t[kTallyRemovedLive] + t[kTallyRemovedExpired], std::memory_order_relaxed);
  bytes_used_ -= kInlineFootprint * t[kTallyRemovedInline];
  if (t[kTallyRemovedRecord] == 0) return;
  const cudaStream_t s = lane.stream.get();
  lane.status.down(n, s);
  lane.word.down(n, s);
  lane.form.down(n, s);
  lane.rsize.down(n, s);
  lane.stream.sync();
  for (std::size_t i = 0; i < n; ++i) {
    if (lane.status.host()[i] == kMiss || form_inline(lane.form.host()[i])) continue;
    release_value(lane.word.host()[i], lane.form.host()[i], lane.rsize.host()[i]);
  }
}

void CudaTable::settle_lookup(Lane& lane, std::size_t n, CallLog& log) {
  const uint8_t* st = lane.status.host();
  std::size_t expired = 0;
  for (std::size_t i = 0; i < n; ++i) expired += st[i] == kExpired ? 1 : 0;
  if (expired == 0) return;
  // Rare: fetch what the dropped entries held, to release it.
  const cudaStream_t s = lane.stream.get();
  lane.word.down(n, s);
  lane.form.down(n, s);
  lane.rsize.down(n, s);
  lane.stream.sync();
  for (std::size_t i = 0; i < n; ++i) {
    if (st[i] != kExpired) continue;
    release_value(lane.word.host()[i], lane.form.host()[i], lane.rsize.host()[i]);
    items_.fetch_sub(1, std::memory_order_relaxed);
  }
  log.counters.add(Counter::kExpirations, expired);
}

template <class Launch, class Fetch, class Finish>
void CudaTable::pipelined_lookup(const KeyBatch& keys, std::size_t chunk, bool touch, uint64_t now,
                                 uint64_t tick, CallLog& log, Launch&& launch, Fetch&& fetch,
                                 Finish&& finish) {
  const std::size_t n = keys.n;
  std::size_t begin_of[2] = {0, 0};
  std::size_t end_of[2] = {0, 0};
  bool pending[2] = {false, false};
  const Event* previous = nullptr;
  auto settle = [&](int l) {
    Lane& lane = *lanes_[l];
    lane.stream.sync();
    settle_lookup(lane, end_of[l] - begin_of[l], log);
    finish(lane, begin_of[l], end_of[l]);
    pending[l] = false;
  };
  std::size_t c = 0;
  for (std::size_t begin = 0; begin < n; begin += chunk, ++c) {
    const int l = static_cast<int>(c % 2);
    if (pending[l]) settle(l);  // chunk c - 2: its buffers are about to be reused
    Lane& lane = *lanes_[l];
    const cudaStream_t s = lane.stream.get();
    const std::size_t end = std::min(n, begin + chunk);
    const std::size_t m = end - begin;
    const DevKeys k = lane.stage_keys(keys, begin, end);
    lane.status.prepare(m);
    lane.word.prepare(m);
    lane.form.prepare(m);
    lane.length.prepare(m);
    lane.rsize.prepare(m);
    // Kernels run in batch order (chunk c after chunk c - 1), copies overlap them.
    if (previous != nullptr) previous->make_wait(s);
    launch_lookup(view(), k, now, tick + begin, touch, lane.found_view(), s);
    launch(lane, m);
    lane.kernels_done.record(s);
    previous = &lane.kernels_done;
    lane.status.down(m, s);
    fetch(lane, m);
    begin_of[l] = begin;
    end_of[l] = end;
    pending[l] = true;
  }
  // The older of the two outstanding chunks first, so results and events stay in order.
  // Chunk c - 2 (if any) sits on lane c % 2, chunk c - 1 on the other.
  const int older = static_cast<int>(c % 2);
  if (pending[older]) settle(older);
  if (pending[1 - older]) settle(1 - older);
}

// ---- reads ----

bool CudaTable::get(const KeyRef& key, ValueSink& sink) {
  ScopedLatency timed(stats_, Op::kGet);
  std::lock_guard<std::mutex> guard(mu_);
  bind_device();
  CallLog log(*this, 1);
  const uint64_t now = clock_.now();
  const uint64_t tick = tick_++;
  const KeyBatch batch{1, nullptr, &key};
  bool hit = false;
  uint32_t size = 0;
  std::vector<uint8_t> value;
  pipelined_lookup(
      batch, 1, true, now, tick, log, [](Lane&, std::size_t) {},
      [](Lane& lane, std::size_t m) {
        const cudaStream_t s = lane.stream.get();
        lane.word.down(m, s);
        lane.form.down(m, s);
        lane.length.down(m, s);
      },
      [&](Lane& lane, std::size_t, std::size_t) {
        hit = lane.status.host()[0] == kHit;
        if (!hit) return;
        const uint64_t word = lane.word.host()[0];
        const uint8_t form = lane.form.host()[0];
        size = lane.length.host()[0];
        if (form_inline(form)) {
          value.assign(reinterpret_cast<const uint8_t*>(&word),
                       reinterpret_cast<const uint8_t*>(&word) + size);
          return;
        }
        // The record: header, the key's bytes (key.len of them: the stored key matched),
        // then the value. Calls are serialised, so nothing frees it meanwhile.
        value.resize(size);
        if (size != 0) {
          const uint64_t at = word + sizeof(RecordHeader) + key.len;
          check(cudaMemcpy(value.data(), reinterpret_cast<const void*>(static_cast<uintptr_t>(at)),
                           size, cudaMemcpyDeviceToHost),
                "copying a value from the device");
        }
      });
  if (hit) sink.take(value.data(), size);
  log.counters.add(hit ? Counter::kHits : Counter::kMisses);
  log.event(key, now, AccessOp::kGet, hit, size);
  return hit;
}

bool CudaTable::contains(const KeyRef& key) {
  ScopedLatency timed(stats_, Op::kContains);
  uint8_t out = 0;
  contains_many(KeyBatch{1, nullptr, &key}, &out);
  return out != 0;
}

void CudaTable::contains_batch(const KeyBatch& keys, uint8_t* out) {
  ScopedLatency timed(stats_, Op::kContainsBatch);
  contains_many(keys, out);
}

void CudaTable::contains_many(const KeyBatch& keys, uint8_t* out) {
  std::lock_guard<std::mutex> guard(mu_);
  bind_device();
  CallLog log(*this, 0);
  pipelined_lookup(
      keys, kChunk, false, clock_.now(), 0, log, [](Lane&, std::size_t) {},
      [](Lane&, std::size_t) {},
      [&](Lane& lane, std::size_t begin, std::size_t end) {
        const uint8_t* st = lane.status.host();
        for (std::size_t i = begin; i < end; ++i) out[i] = st[i - begin] == kHit ? 1 : 0;
      });
}

TooLong CudaTable::get_into(const KeyBatch& keys, uint8_t* out, std::size_t width, uint8_t* found) {
  ScopedLatency timed(stats_, Op::kGetBatch);
  std::lock_guard<std::mutex> guard(mu_);
  bind_device();
  CallLog log(*this, keys.n);
  const uint64_t now = clock_.now();
  const uint64_t tick = tick_;
  tick_ += keys.n;
  uint64_t hits = 0;
  TooLong too_long;
  pipelined_lookup(
      keys, kChunk, true, now, tick, log,
      [&](Lane& lane, std::size_t m) {
        lane.rows.prepare(std::max<std::size_t>(m * width, 1));
        lane.found.prepare(m);
        launch_gather_rows(lane.found_view(), m, lane.rows.dev(), width, lane.found.dev(),
                           lane.stream.get());
      },
      [&](Lane& lane, std::size_t m) {
        const cudaStream_t s = lane.stream.get();
        lane.rows.down(m * width, s);
        lane.found.down(m, s);
        lane.length.down(m, s);
      },
      [&](Lane& lane, std::size_t begin, std::size_t end) {
        const std::size_t m = end - begin;
        if (m * width != 0) std::memcpy(out + begin * width, lane.rows.host(), m * width);
        std::memcpy(found + begin, lane.found.host(), m);
        const uint8_t* st = lane.status.host();
        for (std::size_t j = 0; j < m; ++j) {
          const bool hit = st[j] == kHit;
          const uint32_t size = hit ? lane.length.host()[j] : 0;
          hits += hit ? 1 : 0;
          if (hit && size > width) too_long.note(begin + j, size);
          log.event(keys.at(begin + j), now, AccessOp::kGet, hit, size);
        }
      });
  log.counters.add(Counter::kHits, hits);
  log.counters.add(Counter::kMisses, keys.n - hits);
  return too_long;
}

void CudaTable::get_batch(const KeyBatch& keys, std::vector<uint8_t>& data, int64_t* offsets,
                          uint8_t* found) {
  ScopedLatency timed(stats_, Op::kGetBatch);
  std::lock_guard<std::mutex> guard(mu_);
  bind_device();
  CallLog log(*this, keys.n);
  const uint64_t now = clock_.now();
  const uint64_t tick = tick_;
  tick_ += keys.n;
  const std::size_t n = keys.n;
  const auto base = static_cast<int64_t>(data.size());
  uint64_t hits = 0;
  // One chunk for the whole batch: the value bytes are placed by a prefix sum over every
  // length (offsets_ and data_ are shared, so chunks could not overlap anyway).
  pipelined_lookup(
      keys, std::max<std::size_t>(n, 1), true, now, tick, log,
      [&](Lane& lane, std::size_t m) {
        const cudaStream_t s = lane.stream.get();
        auto* sizes = sizes_.at_least((m + 1) * sizeof(int64_t)).as<int64_t>();
        offsets_.prepare(m + 1);
        launch_hit_sizes(lane.found_view(), m, sizes, s);
        const std::size_t temp = scan_temp_bytes(m);
        void* scratch = scan_temp_.at_least(std::max<std::size_t>(temp, 1)).get();
        launch_offsets(scratch, temp, sizes, offsets_.dev(), m, s);
      },
      [&](Lane& lane, std::size_t m) {
        const cudaStream_t s = lane.stream.get();
        lane.length.down(m, s);
        offsets_.down(m + 1, s);
      },
      [&](Lane& lane, std::size_t begin, std::size_t end) {
        const std::size_t m = end - begin;
        const cudaStream_t s = lane.stream.get();
        const auto total = static_cast<std::size_t>(offsets_.host()[m]);
        data_.prepare(std::max<std::size_t>(total, 1));
        launch_gather(lane.found_view(), m, offsets_.dev(), data_.dev(), s);
        data_.down(total, s);
        lane.stream.sync();
        const std::size_t at = data.size();
        data.resize(at + total);
        if (total != 0) std::memcpy(data.data() + at, data_.host(), total);
        const int64_t shift = static_cast<int64_t>(at);
        const uint8_t* st = lane.status.host();
        for (std::size_t j = 0; j < m; ++j) {
          const bool hit = st[j] == kHit;
          found[begin + j] = hit ? 1 : 0;
          offsets[begin + j] = shift + offsets_.host()[j];
          hits += hit ? 1 : 0;
          log.event(keys.at(begin + j), now, AccessOp::kGet, hit, hit ? lane.length.host()[j] : 0);
        }
      });
  offsets[n] = static_cast<int64_t>(data.size());
  if (n == 0) offsets[0] = base;
  log.counters.add(Counter::kHits, hits);
  log.counters.add(Counter::kMisses, n - hits);
}

// ---- writes ----

void CudaTable::insert_staged(Lane& lane, std::size_t n, const DevKeys& k,
                              const uint64_t* words_dev, const uint8_t* forms_dev, uint8_t form_all,
                              uint64_t expiry, uint64_t now, uint64_t tick, bool prefetched,
                              uint64_t demote) {
  const cudaStream_t s = lane.stream.get();
  flags_.prepare(n);
  lane.word.prepare(n);
  lane.form.prepare(n);
  lane.rsize.prepare(n);
  const Inserted out{flags_.dev(), lane.word.dev(), lane.form.dev(), lane.rsize.dev()};
  launch_insert(view(), k, words_dev, forms_dev, form_all, expiry, now, tick, prefetched, demote,
                out, s);
  flags_.down(n, s);
  lane.word.down(n, s);
  lane.form.down(n, s);
  lane.rsize.down(n, s);
  lane.stream.sync();
}

bool CudaTable::account_insert(std::size_t i, Lane& lane, CallLog& log) {
  const uint8_t f = flags_.host()[i];
  if ((f & kUpdated) != 0) {
    log.counters.add(Counter::kUpdates);
  } else {
    log.counters.add(Counter::kInserts);
    if ((f & kDisplaced) == 0) items_.fetch_add(1, std::memory_order_relaxed);
  }
  if ((f & kWasExpired) != 0) log.counters.add(Counter::kExpirations);
  if ((f & kEvicted) != 0) log.counters.add(Counter::kEvictions);
  if ((f & kDisplaced) != 0) {
    release_value(lane.word.host()[i], lane.form.host()[i], lane.rsize.host()[i]);
  }
  return (f & kUpdated) != 0;
}

void CudaTable::put_many(const KeyBatch& keys, const ValueRef* values, uint64_t ttl_ns,
                         bool prefetched, double confidence) {
  std::lock_guard<std::mutex> guard(mu_);
  bind_device();
  const std::size_t n = keys.n;
  CallLog log(*this, n);
  const uint64_t now = clock_.now();
  const uint64_t tick = tick_;
  tick_ += n;
  const uint64_t expiry = deadline(now, ttl_ns);
  const uint64_t demote = prefetched ? prefetch_demote(confidence, items_.load()) : 0;
  Lane& lane = *lanes_[0];
  const cudaStream_t s = lane.stream.get();
  const DevKeys k = lane.stage_keys(keys, 0, n);
  uint64_t* words = new_words_.prepare(n);
  uint8_t* forms = new_forms_.prepare(n);
  // Records for the values that are not inline: chunks from the arena, bytes staged back to
  // back in pinned memory for one scatter pass.
  std::size_t records = 0;
  std::size_t staged = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const KeyRef key = keys.at(i);
    if (stores_inline(key, values[i].len)) continue;
    ++records;
    staged += record_size(key.len, values[i].len);
  }
  uint8_t* rec = records_.prepare(std::max<std::size_t>(staged, 1));
  uint64_t* src = record_src_.prepare(std::max<std::size_t>(records, 1));
  uint32_t* sizes = record_size_.prepare(std::max<std::size_t>(records, 1));
  uint64_t* dst = record_dst_.prepare(std::max<std::size_t>(records, 1));
  std::size_t r = 0;
  uint64_t off = 0;
  uint64_t charged = 0;
  try {
    for (std::size_t i = 0; i < n; ++i) {
      const KeyRef key = keys.at(i);
      const ValueRef v = values[i];
      if (stores_inline(key, v.len)) {
        uint64_t word = 0;
        if (v.len != 0) std::memcpy(&word, v.data, v.len);
        words[i] = word;
        forms[i] = make_form(key.kind, true, v.len);
        charged += kInlineFootprint;
        continue;
      }
      const uint64_t size = record_size(key.len, v.len);
      dst[r] = arena_.allocate(size);  // throws BackendError (device out of memory)
      charged += arena_.chunk_size(size);
      const RecordHeader h{v.len, key.len};
      std::memcpy(rec + off, &h, sizeof h);
      if (key.len != 0) std::memcpy(rec + off + sizeof h, key.bytes, key.len);
      if (v.len != 0) std::memcpy(rec + off + sizeof h + key.len, v.data, v.len);
      src[r] = off;
      sizes[r] = static_cast<uint32_t>(size);
      words[i] = dst[r];
      forms[i] = make_form(key.kind, false, 0);
      off += size;
      ++r;
    }
  } catch (...) {
    // Nothing is in the table yet: give the chunks back and leave it unchanged.
    for (std::size_t j = 0; j < r; ++j) arena_.release(dst[j], sizes[j]);
    throw;
  }
  bytes_used_ += charged;
  new_words_.up(n, s);
  new_forms_.up(n, s);
  records_.up(staged, s);
  record_src_.up(records, s);
  record_size_.up(records, s);
  record_dst_.up(records, s);
  launch_scatter(records_.dev(), record_src_.dev(), record_size_.dev(), record_dst_.dev(), records,
                 s);
  insert_staged(lane, n, k, new_words_.dev(), new_forms_.dev(), 0, expiry, now, tick, prefetched,
                demote);
  for (std::size_t i = 0; i < n; ++i) {
    const KeyRef key = keys.at(i);
    if ((flags_.host()[i] & kSkipped) != 0) {  // a guess for a live key: dropped
      const uint64_t size =
          stores_inline(key, values[i].len) ? 0 : record_size(key.len, values[i].len);
      release_value(words[i], forms[i], size);
      continue;
    }
    const bool replaced = account_insert(i, lane, log);
    if (prefetched) {
      log.event(key, now, AccessOp::kPrefetch, false, values[i].len);
    } else {
      log.event(key, now, AccessOp::kPut, replaced, values[i].len);
    }
  }
  if (n == 1) {
    const KeyRef key = keys.at(0);
    enforce_limits(log, Protected{key.key, key.kind, true});
  } else {
    enforce_limits(log);
  }
}

void CudaTable::put(const KeyRef& key, ValueRef value, uint64_t ttl_ns) {
  ScopedLatency timed(stats_, Op::kPut);
  put_many(KeyBatch{1, nullptr, &key}, &value, ttl_ns, false, 0.0);
}

void CudaTable::put_prefetched(const KeyRef& key, ValueRef value, uint64_t ttl_ns,
                               double confidence) {
  ScopedLatency timed(stats_, Op::kPutPrefetched);
  put_many(KeyBatch{1, nullptr, &key}, &value, ttl_ns, true, confidence);
}

void CudaTable::put_batch(const KeyBatch& keys, const ValueRef* values, uint64_t ttl_ns) {
  ScopedLatency timed(stats_, Op::kPutBatch);
  put_many(keys, values, ttl_ns, false, 0.0);
}

void CudaTable::enforce_limits(CallLog& log, const Protected& protect) {
  const uint64_t buckets = mask_ + 1;
  const uint64_t max_tiles = std::max<uint64_t>(1, buckets / 4);
  uint64_t fruitless = 0;  // buckets sampled since the last victim
  Lane& lane = *lanes_[0];
  const cudaStream_t s = lane.stream.get();
  while ((bytes_used_ > config_.capacity_bytes || items_.load() > config_.max_items) &&
         fruitless < buckets) {
    const uint64_t items = items_.load();
    uint64_t want = items > config_.max_items ? items - config_.max_items : 0;
    if (bytes_used_ > config_.capacity_bytes && items != 0) {
      const uint64_t average = std::max<uint64_t>(1, bytes_used_ / items);
      want = std::max(want, (bytes_used_ - config_.capacity_bytes + average - 1) / average);
    }
    want = std::min(std::max<uint64_t>(want, 1), max_tiles);
    lane.status.prepare(want);
    lane.word.prepare(want);
    lane.form.prepare(want);
    lane.rsize.prepare(want);
    launch_evict(view(), hand_, want, clock_.now(), protect, lane.found_view(), s);
    hand_ += 4 * want;
    launch_tally_removed(lane.found_view(), want, zero_tally(lane), s);
    tally_.down(kRemovalTallies, s);
    lane.stream.sync();
    const unsigned long long* t = tally_.host();
    const uint64_t victims = t[kTallyRemovedLive] + t[kTallyRemovedExpired];
    log.counters.add(Counter::kEvictions, t[kTallyRemovedLive]);
    log.counters.add(Counter::kExpirations, t[kTallyRemovedExpired]);
    release_removed(lane, want);
    fruitless = victims == 0 ? fruitless + 4 * want : 0;
  }
}

std::size_t CudaTable::erase_batch(const KeyBatch& keys, uint8_t* erased) {
  ScopedLatency timed(stats_, Op::kDeleteBatch);
  return erase_many(keys, erased);
}

std::size_t CudaTable::erase_many(const KeyBatch& keys, uint8_t* erased) {
  std::lock_guard<std::mutex> guard(mu_);
  bind_device();
  const std::size_t n = keys.n;
  CallLog log(*this, n);
  const uint64_t now = clock_.now();
  Lane& lane = *lanes_[0];
  const DevKeys k = lane.stage_keys(keys, 0, n);
  const std::size_t count = erase_staged(lane, k, now, erased, log);
  for (std::size_t i = 0; i < n; ++i) {
    log.event(keys.at(i), now, AccessOp::kDelete, lane.status.host()[i] == kHit, 0);
  }
  return count;
}

std::size_t CudaTable::erase_staged(Lane& lane, const DevKeys& k, uint64_t now, uint8_t* erased,
                                    CallLog& log) {
  const std::size_t n = k.n;
  const cudaStream_t s = lane.stream.get();
  lane.status.prepare(n);
  lane.word.prepare(n);
  lane.form.prepare(n);
  lane.rsize.prepare(n);
  launch_erase(view(), k, now, lane.found_view(), s);
  launch_tally_removed(lane.found_view(), n, zero_tally(lane), s);
  lane.status.down(n, s);
  tally_.down(kRemovalTallies, s);
  lane.stream.sync();
  const uint8_t* st = lane.status.host();
  if (erased != nullptr) {
    for (std::size_t i = 0; i < n; ++i) erased[i] = st[i] == kHit ? 1 : 0;
  }
  const unsigned long long* t = tally_.host();
  const std::size_t count = t[kTallyRemovedLive];
  log.counters.add(Counter::kDeletes, t[kTallyRemovedLive]);
  log.counters.add(Counter::kExpirations, t[kTallyRemovedExpired]);
  release_removed(lane, n);
  return count;
}

bool CudaTable::erase(const KeyRef& key) {
  ScopedLatency timed(stats_, Op::kDelete);
  uint8_t erased = 0;
  erase_many(KeyBatch{1, nullptr, &key}, &erased);
  return erased != 0;
}

void CudaTable::clear() {
  std::lock_guard<std::mutex> guard(mu_);
  bind_device();
  check(cudaDeviceSynchronize(), "waiting for the device");
  check(cudaMemset(buckets_.get(), 0, (mask_ + 1) * sizeof(Bucket)), "clearing the bucket array");
  check(cudaDeviceSynchronize(), "clearing the bucket array");
  arena_.reset();
  items_.store(0);
  bytes_used_ = 0;
}

uint64_t CudaTable::size() const noexcept {
  return items_.load(std::memory_order_relaxed);
}

StatsSnapshot CudaTable::stats() const {
  std::lock_guard<std::mutex> guard(mu_);
  StatsSnapshot s{};
  fill_common_stats(s, stats_, log_);
  s.items = items_.load(std::memory_order_relaxed);
  s.bytes_used = bytes_used_;
  s.capacity_bytes = config_.capacity_bytes;
  s.max_items = config_.max_items;
  s.bytes_reserved = arena_.bytes_reserved();
  s.table_bytes = (mask_ + 1) * sizeof(Bucket);
  return s;
}

uint64_t CudaTable::footprint(KeyKind kind, uint32_t key_len, uint32_t value_len) const noexcept {
  if (kind == KeyKind::kInt && value_len <= kMaxInlineValue) return kInlineFootprint;
  return arena_.chunk_size(record_size(key_len, value_len));
}

std::size_t CudaTable::drain_events(AccessEvent* out, std::size_t max) {
  return log_.drain(out, max);
}

// ---- batches in device memory (not logged: their keys never visit the host) ----

TooLong CudaTable::get_into_device(const uint64_t* keys, std::size_t n, uint8_t* out,
                                   std::size_t width, uint8_t* found, uintptr_t stream) {
  ScopedLatency timed(stats_, Op::kGetBatch);
  std::lock_guard<std::mutex> guard(mu_);
  bind_device();
  wait_for_caller(stream);
  CallLog log(*this, 0);
  const uint64_t now = clock_.now();
  const uint64_t tick = tick_;
  tick_ += n;
  Lane& lane = *lanes_[0];
  const cudaStream_t s = lane.stream.get();
  lane.status.prepare(n);
  lane.word.prepare(n);
  lane.form.prepare(n);
  lane.length.prepare(n);
  lane.rsize.prepare(n);
  lane.found.prepare(n);
  const DevKeys k{keys, nullptr, nullptr, nullptr, n};
  launch_lookup(view(), k, now, tick, true, lane.found_view(), s);
  launch_gather_rows(lane.found_view(), n, out, width, lane.found.dev(), s);
  launch_tally_lookup(lane.found_view(), n, width, zero_tally(lane), s);
  lane.found.down(n, s);
  tally_.down(kLookupTallies, s);
  lane.stream.sync();
  if (n != 0) std::memcpy(found, lane.found.host(), n);
  const unsigned long long hits = tally_.host()[kTallyHits];
  TooLong too_long;
  if (tally_.host()[kTallyExpired] != 0 || tally_.host()[kTallyTooLong] != 0) {
    // Rare: entries dropped as expired to release, or values too long to report.
    lane.status.down(n, s);
    lane.length.down(n, s);
    lane.stream.sync();
    settle_lookup(lane, n, log);
    for (std::size_t i = 0; i < n; ++i) {
      const uint32_t length = lane.length.host()[i];
      if (lane.status.host()[i] == kHit && length > width) too_long.note(i, length);
    }
  }
  log.counters.add(Counter::kHits, hits);
  log.counters.add(Counter::kMisses, n - hits);
  return too_long;
}

void CudaTable::contains_device(const uint64_t* keys, std::size_t n, uint8_t* out,
                                uintptr_t stream) {
  ScopedLatency timed(stats_, Op::kContainsBatch);
  std::lock_guard<std::mutex> guard(mu_);
  bind_device();
  wait_for_caller(stream);
  CallLog log(*this, 0);
  Lane& lane = *lanes_[0];
  const cudaStream_t s = lane.stream.get();
  lane.status.prepare(n);
  lane.word.prepare(n);
  lane.form.prepare(n);
  lane.length.prepare(n);
  lane.rsize.prepare(n);
  launch_lookup(view(), DevKeys{keys, nullptr, nullptr, nullptr, n}, clock_.now(), 0, false,
                lane.found_view(), s);
  lane.status.down(n, s);
  lane.stream.sync();
  settle_lookup(lane, n, log);
  for (std::size_t i = 0; i < n; ++i) out[i] = lane.status.host()[i] == kHit ? 1 : 0;
}

void CudaTable::put_device(const uint64_t* keys, std::size_t n, const uint8_t* values,
                           std::size_t width, uint64_t ttl_ns, uintptr_t stream) {
  ScopedLatency timed(stats_, Op::kPutBatch);
  std::lock_guard<std::mutex> guard(mu_);
  bind_device();
  wait_for_caller(stream);
  CallLog log(*this, 0);
  const uint64_t now = clock_.now();
  const uint64_t tick = tick_;
  tick_ += n;
  Lane& lane = *lanes_[0];
  const cudaStream_t s = lane.stream.get();
  const auto len = static_cast<uint32_t>(width);
  const uint64_t* words = nullptr;
  uint8_t form = 0;
  if (len <= kMaxInlineValue) {
    uint64_t* w = new_words_.dev(std::max<std::size_t>(n, 1));
    launch_pack_inline(values, width, n, w, s);
    words = w;
    form = make_form(KeyKind::kInt, true, len);
    bytes_used_ += kInlineFootprint * n;
  } else {
    const uint64_t size = record_size(0, len);
    uint64_t* dst = record_dst_.prepare(std::max<std::size_t>(n, 1));
    std::size_t r = 0;
    try {
      for (; r < n; ++r) dst[r] = arena_.allocate(size);
    } catch (...) {
      for (std::size_t j = 0; j < r; ++j) arena_.release(dst[j], size);
      throw;
    }
    bytes_used_ += arena_.chunk_size(size) * n;
    record_dst_.up(n, s);
    launch_build_records(values, width, n, record_dst_.dev(), s);
    words = record_dst_.dev();
    form = make_form(KeyKind::kInt, false, 0);
  }
  flags_.prepare(n);
  lane.word.prepare(n);
  lane.form.prepare(n);
  lane.rsize.prepare(n);
  const Inserted res{flags_.dev(), lane.word.dev(), lane.form.dev(), lane.rsize.dev()};
  launch_insert(view(), DevKeys{keys, nullptr, nullptr, nullptr, n}, words, nullptr, form,
                deadline(now, ttl_ns), now, tick, false, 0, res, s);
  launch_tally_insert(res, n, zero_tally(lane), s);
  tally_.down(kInsertTallies, s);
  lane.stream.sync();
  const unsigned long long* t = tally_.host();
  if (t[kTallyDisplacedRecord] != 0) {
    // Values in the arena left the table: fetch every key's outcome and release them.
    flags_.down(n, s);
    lane.word.down(n, s);
    lane.form.down(n, s);
    lane.rsize.down(n, s);
    lane.stream.sync();
    for (std::size_t i = 0; i < n; ++i) account_insert(i, lane, log);
  } else {
    log.counters.add(Counter::kUpdates, t[kTallyUpdated]);
    log.counters.add(Counter::kInserts, n - t[kTallyUpdated]);
    log.counters.add(Counter::kExpirations, t[kTallyWasExpired]);
    log.counters.add(Counter::kEvictions, t[kTallyEvicted]);
    items_.fetch_add(t[kTallyNew], std::memory_order_relaxed);
    bytes_used_ -= kInlineFootprint * t[kTallyDisplacedInline];
  }
  enforce_limits(log);
}

std::size_t CudaTable::erase_device(const uint64_t* keys, std::size_t n, uint8_t* erased,
                                    uintptr_t stream) {
  ScopedLatency timed(stats_, Op::kDeleteBatch);
  std::lock_guard<std::mutex> guard(mu_);
  bind_device();
  wait_for_caller(stream);
  CallLog log(*this, 0);
  return erase_staged(*lanes_[0], DevKeys{keys, nullptr, nullptr, nullptr, n}, clock_.now(), erased,
                      log);
}

std::unique_ptr<Table> make_cuda_table(const TableConfig& config) {
  return std::make_unique<CudaTable>(config);
}

}  // namespace predis::cuda
