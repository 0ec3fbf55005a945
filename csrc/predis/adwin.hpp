// ADWIN: an adaptive window over a stream of values in [0, 1] that drops its older part
// whenever the older and newer parts' means differ by more than chance allows.
//
// Written from the description of ADWIN2 in Bifet and Gavaldà, "Learning from
// Time-Changing Data with Adaptive Windowing" (SDM 2007): the window is an exponential
// histogram (rows of at most `max_buckets` buckets, each row's buckets twice the size of
// the row below), and every `clock` insertions each boundary between buckets is tested with
// the paper's variance-based bound
//
//     eps = sqrt(2 / m * var * ln(2 / delta')) + 2 / (3 m) * ln(2 / delta'),
//     m = 1 / (1 / n0 + 1 / n1),  delta' = delta / ln(n),
//
// where n0 and n1 are the sizes of the two parts and var the window's variance. (m is the
// paper's harmonic mean; river and MOA shrink each side by the minimum sub-window first,
// which is more conservative when one side is tiny. The tests compare false alarms with
// river's on stationary streams, rare and frequent outcomes included.)
//
// What is ours: values arrive in blocks. A block of `size` 0/1 values with `ones` ones
// enters as one bucket whose count, total and sum of squared deviations are exactly those
// of its values, so every statistic above is the bit-level one (n counted in values, not
// blocks); only the boundaries tested are coarser (block edges). One insertion per block
// makes the cost per value fall with the block size.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace predis {

class Adwin {
 public:
  struct Bucket {
    double n = 0;      // values in the bucket
    double total = 0;  // their sum
    double m2 = 0;     // their sum of squared deviations from the bucket's mean
  };

  Adwin(double delta, std::uint32_t clock, std::uint32_t max_buckets, double min_side,
        double grace)
      : delta_(delta),
        clock_(clock),
        max_buckets_(max_buckets),
        min_side_(min_side),
        grace_(grace) {}

  // Adds a block of `size` 0/1 values holding `ones` ones; true when the window was cut.
  bool add_bits(std::uint64_t ones, std::uint64_t size) {
    const double n = static_cast<double>(size);
    const double k = static_cast<double>(ones);
    return add(Bucket{n, k, k * (n - k) / n});
  }

  // Adds a block summarised as a bucket (n > 0); true when the window was cut.
  bool add(const Bucket& b) {
    push(b);
    if (rows_.empty()) rows_.emplace_back();
    rows_[0].push_back(b);
    compress();
    if (++since_check_ < clock_ || window_.n <= grace_) return false;
    since_check_ = 0;
    bool cut = false;
    while (cut_once()) cut = true;
    return cut;
  }

  // Forgets the whole window (after a detection, to start afresh on the new regime).
  void clear() {
    rows_.clear();
    window_ = Bucket{};
    since_check_ = 0;
  }

  double width() const { return window_.n; }
  double mean() const { return window_.n > 0 ? window_.total / window_.n : 0.0; }
  double variance() const { return window_.n > 0 ? window_.m2 / window_.n : 0.0; }
  std::size_t buckets() const {
    std::size_t count = 0;
    for (const auto& row : rows_) count += row.size();
    return count;
  }

 private:
  // Chan et al.'s pairwise update: the sum of squared deviations of two merged groups.
  static Bucket merge(const Bucket& a, const Bucket& b) {
    const double n = a.n + b.n;
    const double d = b.total / b.n - a.total / a.n;
    return Bucket{n, a.total + b.total, a.m2 + b.m2 + a.n * b.n / n * d * d};
  }

  void push(const Bucket& b) {
    window_ = window_.n > 0 ? merge(window_, b) : b;
  }

  // After a cut the window's statistics are merged again from its buckets (at most
  // max_buckets per row, so a few dozen): subtracting the dropped bucket would let
  // rounding error build up over a long stream.
  void recount() {
    window_ = Bucket{};
    for (std::size_t i = rows_.size(); i-- > 0;)
      for (const Bucket& b : rows_[i]) push(b);
  }

  // Keeps at most max_buckets buckets per row: the two oldest of a full row merge into one
  // bucket of the next row (as its newest: it is newer than everything already there).
  void compress() {
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      auto& row = rows_[i];
      if (row.size() <= max_buckets_) break;
      const Bucket merged = merge(row[0], row[1]);
      row.pop_front();
      row.pop_front();
      if (i + 1 == rows_.size()) rows_.emplace_back();
      rows_[i + 1].push_back(merged);
    }
  }

  void drop_oldest() {
    for (std::size_t i = rows_.size(); i-- > 0;) {
      if (rows_[i].empty()) continue;
      rows_[i].pop_front();
      while (!rows_.empty() && rows_.back().empty()) rows_.pop_back();
      recount();
      return;
    }
  }

  // Tests every boundary, oldest first; drops the oldest bucket at the first that cuts.
  bool cut_once() {
    const double n = window_.n;
    if (n <= grace_ || buckets() < 2) return false;
    const double log_n = std::log(n);
    const double delta_prime = delta_ / (log_n > 1.0 ? log_n : 1.0);
    const double ln_term = std::log(2.0 / delta_prime);
    const double var = variance();
    Bucket older{};
    for (std::size_t i = rows_.size(); i-- > 0;) {
      const auto& row = rows_[i];
      for (const Bucket& b : row) {
        older = older.n > 0 ? merge(older, b) : b;
        const double n0 = older.n;
        const double n1 = n - n0;
        if (n1 < min_side_) return false;  // every later boundary leaves less behind it
        if (n0 < min_side_) continue;
        const double m = 1.0 / (1.0 / n0 + 1.0 / n1);
        const double eps =
            std::sqrt(2.0 / m * var * ln_term) + 2.0 / (3.0 * m) * ln_term;
        const double u0 = older.total / n0;
        const double u1 = (window_.total - older.total) / n1;
        if (std::fabs(u0 - u1) > eps) {
          drop_oldest();
          return true;
        }
      }
    }
    return false;
  }

  double delta_;
  std::uint32_t clock_;
  std::uint32_t max_buckets_;
  double min_side_;
  double grace_;
  std::uint32_t since_check_ = 0;
  Bucket window_{};
  std::vector<std::deque<Bucket>> rows_;  // row i: buckets of 2^i blocks, oldest first
};

}  // namespace predis
