// A keyed pseudo-random permutation of [0, n) that costs no memory: a balanced
// Feistel network over the smallest even-bit power of two >= n (at most 4n), with
// cycle walking to stay inside [0, n). Used for document and sample orders so a
// shuffle of 1e9 items is O(1) memory and any position is O(1) to evaluate.
#pragma once

#include <cstdint>

#include "data/shuffle.h"

namespace pajama {

class FeistelPermutation {
 public:
  static constexpr int kRounds = 6;

  FeistelPermutation() = default;
  // n >= 1. The permutation is a pure function of (n, key).
  FeistelPermutation(uint64_t n, uint64_t key) : n_(n) {
    int bits = 2;
    while (bits < 64 && (uint64_t{1} << bits) < n) bits += 2;
    half_bits_ = bits / 2;
    mask_ = (uint64_t{1} << half_bits_) - 1;
    for (int r = 0; r < kRounds; ++r) keys_[r] = mix_seed({key, static_cast<uint64_t>(r)});
  }

  uint64_t size() const { return n_; }

  // The image of i in [0, n).
  uint64_t operator()(uint64_t i) const {
    uint64_t x = i;
    // Cycle walking: the network permutes [0, 4^half_bits); iterating it from a point
    // inside [0, n) until it lands inside again gives a permutation of [0, n).
    do {
      x = encrypt(x);
    } while (x >= n_);
    return x;
  }

 private:
  uint64_t encrypt(uint64_t x) const {
    uint64_t left = x >> half_bits_;
    uint64_t right = x & mask_;
    for (int r = 0; r < kRounds; ++r) {
      const uint64_t next = left ^ (splitmix64(right ^ keys_[r]) & mask_);
      left = right;
      right = next;
    }
    return (left << half_bits_) | right;
  }

  uint64_t n_ = 1;
  int half_bits_ = 1;
  uint64_t mask_ = 1;
  uint64_t keys_[kRounds] = {};
};

}  // namespace pajama
