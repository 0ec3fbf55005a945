// The prefetcher's candidate generator: bounded-memory statistics over the request stream
// that propose keys likely to be asked for soon, each with a feature row for the model.
//
// Three sources, all updated per request in O(window * successors):
//   - successors: for each key, the keys that followed it within `window` requests, kept
//     as a Misra-Gries summary of `successors` counters in a set-associative table;
//   - strides: a few stream detectors over integer keys (k, k+d, k+2d, ...);
//   - recency and frequency: a count-min sketch of key frequency, an approximate
//     last-seen table, and a space-saving list of the hottest keys (re-warm candidates).
// Python (predis.prefetch) scores the rows with XGBoost; nothing here decides to prefetch.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "predis/hash.hpp"

namespace predis {

struct TrackerConfig {
  uint32_t table_bits = 14;      // successor table sets, log2 (4 ways each)
  uint32_t successors = 16;      // Misra-Gries counters per key (at least window)
  uint32_t window = 12;          // a key's successors are the keys of its next `window` requests
  uint32_t streams = 16;         // stride detectors
  uint32_t stride_depth = 32;    // stride candidates proposed per request
  uint64_t max_stride = 64;      // a gap up to this (either way) may start a stride stream
  uint32_t sketch_bits = 16;     // count-min width, log2 (4 rows)
  uint32_t hot = 32;             // space-saving heavy hitters tracked
  uint32_t hot_per_request = 2;  // heavy hitters proposed per request (in rotation)
  uint32_t max_candidates = 48;  // rows emitted per request at most
};

// Feature columns, in order; predis.prefetch.features.FEATURE_NAMES mirrors them.
enum Feature : int {
  kFromSuccessor = 0,  // 1 when a source proposed the candidate, else 0
  kFromStride,
  kFromHot,
  kSuccCount,      // how often the candidate followed the current key (Misra-Gries count)
  kSuccShare,      // ... as a share of the current key's observed successors
  kSuccRank,       // its rank among the current key's successors (0 = most frequent)
  kKeyTotal,       // log2(1 + successor observations of the current key)
  kStrideRun,      // confirmations of the stride stream that proposed it
  kStrideStep,     // how many strides ahead it lies
  kCandFreq,       // log2(1 + count-min estimate of the candidate's frequency)
  kCandAge,        // log2(1 + requests since the candidate was last seen); 40 if never
  kKeyFreq,        // log2(1 + the current key's frequency)
  kKeyAge,         // log2(1 + requests since the current key was last seen); 40 if never
  kSuccHitRate,    // running rate at which requests were among the previous key's successors
  kStrideHitRate,  // running rate at which requests continued a stride stream
  kKeyDistance,    // log2(1 + |candidate - key|)
  kLag,            // requests between the row's request and the end of its batch (set by
                   // the batch caller: proposals are made once per batch)
  kNumFeatures
};

inline constexpr float kNeverSeen = 40.0f;

class PatternTracker {
 public:
  explicit PatternTracker(const TrackerConfig& c)
      : cfg_(c),
        sets_(std::size_t{1} << c.table_bits),
        entries_(sets_ * kWays),
        succ_keys_(entries_.size() * c.successors, 0),
        succ_counts_(entries_.size() * c.successors, 0),
        history_(c.window, 0),
        streams_(c.streams),
        sketch_(kSketchRows << c.sketch_bits, 0),
        last_seen_(std::size_t{1} << (c.sketch_bits + 2), 0),
        hot_(c.hot) {}

  const TrackerConfig& config() const noexcept { return cfg_; }
  uint64_t requests() const noexcept { return tick_; }

  // Bytes of state held: fixed at construction.
  std::size_t memory_bytes() const noexcept {
    return entries_.size() * sizeof(Entry) + succ_keys_.size() * 8 + succ_counts_.size() * 4 +
           history_.size() * 8 + streams_.size() * sizeof(Stream) + sketch_.size() * 4 +
           last_seen_.size() * 8 + hot_.size() * sizeof(Hot);
  }

  // Records one request and appends its candidates (never the key itself) to `cands`, with
  // kNumFeatures floats per candidate to `feats`, when `emit` is set. Returns how many.
  std::size_t observe(uint64_t key, bool emit, std::vector<uint64_t>& cands,
                      std::vector<float>& feats) {
    ++tick_;
    update_rates(key);
    const uint64_t prev_seen = touch_last_seen(key);
    const uint32_t key_freq = sketch_add(key);
    hot_add(key, key_freq);
    const Stream* stream = update_streams(key);
    // Successor counts of the previous window's keys, before this key becomes history.
    for (uint32_t d = 0; d < filled_; ++d) {
      const uint64_t h = history_[(head_ + cfg_.window - 1 - d) % cfg_.window];
      if (h != key) add_successor(h, key);
    }
    history_[head_] = key;
    head_ = (head_ + 1) % cfg_.window;
    if (filled_ < cfg_.window) ++filled_;
    if (!emit) return 0;

    const std::size_t first = cands.size();
    Row base{};
    base.f[kKeyFreq] = log1p2(key_freq);
    base.f[kKeyAge] = prev_seen == 0 ? kNeverSeen : log1p2(static_cast<double>(tick_ - prev_seen));
    base.f[kSuccHitRate] = static_cast<float>(succ_rate_);
    base.f[kStrideHitRate] = static_cast<float>(stride_rate_);

    if (const Entry* e = find_entry(key)) {
      const std::size_t at = static_cast<std::size_t>(e - entries_.data()) * cfg_.successors;
      // Rank by count: successors is small (8), so a selection pass per rank is cheap.
      auto& ranked = ranked_;
      ranked.clear();
      for (uint32_t i = 0; i < cfg_.successors; ++i) {
        if (succ_counts_[at + i] > 0) ranked.emplace_back(succ_counts_[at + i], succ_keys_[at + i]);
      }
      std::sort(ranked.begin(), ranked.end(), [](auto& a, auto& b) { return a.first > b.first; });
      for (std::size_t r = 0; r < ranked.size(); ++r) {
        float* f = row_for(ranked[r].second, key, base, first, cands, feats);
        if (f == nullptr) break;
        f[kFromSuccessor] = 1.0f;
        f[kSuccCount] = static_cast<float>(ranked[r].first);
        f[kSuccShare] = e->total > 0 ? static_cast<float>(ranked[r].first) / e->total : 0.0f;
        f[kSuccRank] = static_cast<float>(r);
        f[kKeyTotal] = log1p2(e->total);
      }
    }
    // An unconfirmed stride (one near gap) is noise far more often than a stream.
    if (stream != nullptr && stream->stride != 0 && stream->run >= 1) {
      for (uint32_t j = 1; j <= cfg_.stride_depth; ++j) {
        const uint64_t c = key + static_cast<uint64_t>(stream->stride) * j;  // wraps mod 2^64
        float* f = row_for(c, key, base, first, cands, feats);
        if (f == nullptr) break;
        f[kFromStride] = 1.0f;
        f[kStrideRun] = static_cast<float>(stream->run);
        f[kStrideStep] = static_cast<float>(j);
      }
    }
    for (uint32_t n = 0; n < cfg_.hot_per_request && !hot_.empty(); ++n) {
      const Hot& h = hot_[hot_cursor_++ % hot_.size()];
      if (h.count == 0 || h.key == key) continue;
      float* f = row_for(h.key, key, base, first, cands, feats);
      if (f == nullptr) break;
      f[kFromHot] = 1.0f;
    }
    return cands.size() - first;
  }

  void reset() {
    std::fill(entries_.begin(), entries_.end(), Entry{});
    std::fill(succ_counts_.begin(), succ_counts_.end(), 0u);
    std::fill(succ_keys_.begin(), succ_keys_.end(), 0u);
    std::fill(history_.begin(), history_.end(), 0u);
    std::fill(streams_.begin(), streams_.end(), Stream{});
    std::fill(sketch_.begin(), sketch_.end(), 0u);
    std::fill(last_seen_.begin(), last_seen_.end(), 0u);
    std::fill(hot_.begin(), hot_.end(), Hot{});
    tick_ = sketch_adds_ = 0;
    head_ = filled_ = 0;
    hot_cursor_ = 0;
    succ_rate_ = stride_rate_ = 0.0;
    prev_key_ = 0;
    has_prev_ = false;
  }

 private:
  static constexpr std::size_t kWays = 4;
  static constexpr std::size_t kSketchRows = 4;
  static constexpr double kRateAlpha = 1.0 / 64;  // running rates remember ~64 requests
  static constexpr uint32_t kHalveAt = 1u << 16;  // successor totals halve past this

  struct Entry {
    uint64_t key = 0;
    uint64_t used = 0;  // tick of the last update, for LRU replacement within the set
    uint32_t total = 0;
    bool live = false;
  };
  struct Stream {
    uint64_t last = 0;
    int64_t stride = 0;
    uint32_t run = 0;
    uint64_t used = 0;
  };
  struct Hot {
    uint64_t key = 0;
    uint64_t count = 0;
  };
  struct Row {
    float f[kNumFeatures];
  };

  static float log1p2(double x) { return static_cast<float>(std::log2(1.0 + x)); }

  // A zeroed-from-base feature row for candidate c, merged with an earlier row for the same
  // candidate of this request; null once max_candidates rows are out.
  float* row_for(uint64_t c, uint64_t key, const Row& base, std::size_t first,
                 std::vector<uint64_t>& cands, std::vector<float>& feats) {
    if (c == key)
      return discard_.f;  // never propose the key itself; the caller writes to a spare row
    for (std::size_t i = first; i < cands.size(); ++i) {
      if (cands[i] == c) return &feats[i * kNumFeatures];
    }
    if (cands.size() - first >= cfg_.max_candidates) return nullptr;
    cands.push_back(c);
    feats.insert(feats.end(), base.f, base.f + kNumFeatures);
    float* f = &feats[(cands.size() - 1) * kNumFeatures];
    f[kCandFreq] = log1p2(sketch_estimate(c));
    const uint64_t seen = peek_last_seen(c);
    f[kCandAge] = seen == 0 ? kNeverSeen : log1p2(static_cast<double>(tick_ - seen));
    const uint64_t dist = c > key ? c - key : key - c;
    f[kKeyDistance] = log1p2(static_cast<double>(dist));
    return f;
  }

  void update_rates(uint64_t key) {
    double in_succ = 0.0;
    if (has_prev_) {
      if (const Entry* e = find_entry(prev_key_)) {
        const std::size_t at = static_cast<std::size_t>(e - entries_.data()) * cfg_.successors;
        for (uint32_t i = 0; i < cfg_.successors; ++i) {
          if (succ_counts_[at + i] > 0 && succ_keys_[at + i] == key) in_succ = 1.0;
        }
      }
    }
    succ_rate_ += kRateAlpha * (in_succ - succ_rate_);
    prev_key_ = key;
    has_prev_ = true;
  }

  // ---- successors ----
  const Entry* find_entry(uint64_t key) const {
    const std::size_t set = (fmix64(key) & (sets_ - 1)) * kWays;
    for (std::size_t w = 0; w < kWays; ++w) {
      const Entry& e = entries_[set + w];
      if (e.live && e.key == key) return &e;
    }
    return nullptr;
  }

  void add_successor(uint64_t key, uint64_t succ) {
    const std::size_t set = (fmix64(key) & (sets_ - 1)) * kWays;
    std::size_t slot = set;
    bool found = false;
    for (std::size_t w = 0; w < kWays; ++w) {
      const Entry& e = entries_[set + w];
      if (e.live && e.key == key) {
        slot = set + w;
        found = true;
        break;
      }
      // Otherwise replace a free way, else the least recently updated one.
      const Entry& v = entries_[slot];
      if (v.live && (!e.live || e.used < v.used)) slot = set + w;
    }
    Entry& e = entries_[slot];
    const std::size_t at = slot * cfg_.successors;
    if (!found) {
      e = Entry{key, tick_, 0, true};
      std::fill_n(succ_counts_.begin() + static_cast<std::ptrdiff_t>(at), cfg_.successors, 0u);
    }
    e.used = tick_;
    if (++e.total >= kHalveAt) {
      e.total /= 2;
      for (uint32_t i = 0; i < cfg_.successors; ++i) succ_counts_[at + i] /= 2;
    }
    int free_slot = -1;
    for (uint32_t i = 0; i < cfg_.successors; ++i) {
      if (succ_counts_[at + i] > 0 && succ_keys_[at + i] == succ) {
        ++succ_counts_[at + i];
        return;
      }
      if (free_slot < 0 && succ_counts_[at + i] == 0) free_slot = static_cast<int>(i);
    }
    if (free_slot >= 0) {
      succ_keys_[at + free_slot] = succ;
      succ_counts_[at + free_slot] = 1;
      return;
    }
    // Misra-Gries: an unseen successor with no free counter decrements them all.
    for (uint32_t i = 0; i < cfg_.successors; ++i) --succ_counts_[at + i];
  }

  // ---- strides ----
  const Stream* update_streams(uint64_t key) {
    Stream* match = nullptr;
    Stream* near = nullptr;
    Stream* victim = &streams_[0];
    for (Stream& s : streams_) {
      if (s.used != 0 && s.stride != 0 && key == s.last + static_cast<uint64_t>(s.stride)) {
        match = &s;
        break;
      }
      const uint64_t gap = key > s.last ? key - s.last : s.last - key;
      if (s.used != 0 && gap != 0 && gap <= cfg_.max_stride && near == nullptr) near = &s;
      if (s.used < victim->used) victim = &s;
    }
    double continued = 0.0;
    Stream* s = match;
    if (match != nullptr) {
      ++match->run;
      continued = 1.0;
    } else if (near != nullptr) {
      near->stride = static_cast<int64_t>(key - near->last);
      near->run = 0;
      s = near;
    } else {
      *victim = Stream{key, 0, 0, 0};
      s = victim;
    }
    s->last = key;
    s->used = tick_;
    stride_rate_ += kRateAlpha * (continued - stride_rate_);
    return s;
  }

  // ---- recency and frequency ----
  std::size_t sketch_index(std::size_t row, uint64_t key) const {
    const uint64_t h = fmix64(key ^ (0x9e3779b97f4a7c15ULL * (row + 1)));
    return (row << cfg_.sketch_bits) | (h & ((uint64_t{1} << cfg_.sketch_bits) - 1));
  }

  uint32_t sketch_add(uint64_t key) {
    // Halve everything every 16 widths of additions, so frequency follows the workload.
    if (++sketch_adds_ >= (uint64_t{16} << cfg_.sketch_bits)) {
      sketch_adds_ = 0;
      for (auto& c : sketch_) c /= 2;
      for (auto& h : hot_) h.count /= 2;
    }
    uint32_t est = UINT32_MAX;
    for (std::size_t r = 0; r < kSketchRows; ++r) {
      uint32_t& c = sketch_[sketch_index(r, key)];
      if (c < UINT32_MAX) ++c;
      est = std::min(est, c);
    }
    return est;
  }

  uint32_t sketch_estimate(uint64_t key) const {
    uint32_t est = UINT32_MAX;
    for (std::size_t r = 0; r < kSketchRows; ++r)
      est = std::min(est, sketch_[sketch_index(r, key)]);
    return est;
  }

  // The last-seen table stores key fingerprint and tick together, so a collision reads as
  // "never seen" rather than as another key's age.
  std::size_t seen_index(uint64_t key) const { return fmix64(key) & (last_seen_.size() - 1); }
  static uint64_t seen_tag(uint64_t key) { return fmix64(key) >> 48; }

  uint64_t touch_last_seen(uint64_t key) {
    uint64_t& cell = last_seen_[seen_index(key)];
    const uint64_t prev = (cell >> 48) == seen_tag(key) ? (cell & kTickMask) : 0;
    cell = (seen_tag(key) << 48) | (tick_ & kTickMask);
    return prev;
  }
  uint64_t peek_last_seen(uint64_t key) const {
    const uint64_t cell = last_seen_[seen_index(key)];
    return (cell >> 48) == seen_tag(key) ? (cell & kTickMask) : 0;
  }
  static constexpr uint64_t kTickMask = (uint64_t{1} << 48) - 1;

  void hot_add(uint64_t key, uint32_t freq) {
    Hot* low = &hot_[0];
    for (Hot& h : hot_) {
      if (h.count != 0 && h.key == key) {
        h.count = std::max<uint64_t>(h.count, freq);
        return;
      }
      if (h.count < low->count) low = &h;
    }
    if (freq > low->count) *low = Hot{key, freq};
  }

  TrackerConfig cfg_;
  std::size_t sets_;
  std::vector<Entry> entries_;
  std::vector<uint64_t> succ_keys_;
  std::vector<uint32_t> succ_counts_;
  std::vector<uint64_t> history_;
  uint32_t head_ = 0, filled_ = 0;
  std::vector<Stream> streams_;
  std::vector<uint32_t> sketch_;
  std::vector<uint64_t> last_seen_;
  std::vector<Hot> hot_;
  std::size_t hot_cursor_ = 0;
  uint64_t tick_ = 0, sketch_adds_ = 0;
  double succ_rate_ = 0.0, stride_rate_ = 0.0;
  uint64_t prev_key_ = 0;
  bool has_prev_ = false;
  Row discard_{};
  std::vector<std::pair<uint32_t, uint64_t>> ranked_;  // reused by observe()
};

}  // namespace predis
