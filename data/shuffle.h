// The deterministic randomness of the read side: every permutation and every
// synthetic token is a pure function of integers (seed, stream, epoch, ...), computed
// with splitmix64 (core/splitmix64.h) and a Fisher-Yates shuffle written out here, so the same inputs
// give the same order on every rank, build type and standard library
// (std::uniform_int_distribution and std::shuffle are implementation-defined).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <utility>

#include "core/splitmix64.h"

namespace pajama {

// Folds a list of integers into one seed: h = splitmix64(h ^ v) for each v, h0 = 0.
uint64_t mix_seed(std::initializer_list<uint64_t> parts);

// Fisher-Yates from the back: for i = n-1 .. 1, swap(v[i], v[rng.below(i+1)]).
template <typename T>
void shuffle_in_place(std::span<T> v, SplitMix64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng.below(i));
    std::swap(v[i - 1], v[j]);
  }
}

}  // namespace pajama
