// splitmix64 (Steele, Lea, Flood 2014): the project's one fixed, platform-independent
// mixer and generator. The data order (data/shuffle.h, data/feistel.h, data/mock_source),
// the checkpoint fixtures and the Megatron-compatible sample order depend on its exact
// bits: never change what these functions return.
#pragma once

#include <cstdint>

namespace pajama {

inline constexpr uint64_t kSplitMix64Gamma = 0x9E3779B97F4A7C15ull;  // the golden gamma

// One step of splitmix64: a bijective 64-bit mixer.
inline uint64_t splitmix64(uint64_t x) {
  x += kSplitMix64Gamma;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// splitmix64 as a generator: state += golden gamma, output = mix(state).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    const uint64_t out = splitmix64(state_);  // mix(state + gamma)
    state_ += kSplitMix64Gamma;
    return out;
  }
  // Uniform in [0, n), n > 0: Lemire's multiply-shift with rejection (unbiased).
  uint64_t below(uint64_t n) {
    unsigned __int128 m = static_cast<unsigned __int128>(next()) * n;
    auto low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<unsigned __int128>(next()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }
  // Uniform double in [0, 1) from the top 53 bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

}  // namespace pajama
