#include "data/mock_source.h"

#include <algorithm>
#include <numeric>
#include <span>

#include "core/error.h"
#include "data/shuffle.h"

namespace pajama {
namespace {
constexpr uint64_t kTableSalt = 0x6d6f636b7461626cull;   // "mocktabl"
constexpr uint64_t kSampleSalt = 0x6d6f636b73616d70ull;  // "mocksamp"
}  // namespace

MockSource::MockSource(int64_t vocab_size, int64_t seq_len, uint64_t seed)
    : vocab_size_(vocab_size), seq_len_(seq_len), seed_(seed) {
  PAJAMA_CHECK_AS(ConfigError, vocab_size >= 2, "mock data needs vocab_size >= 2, got ", vocab_size);
  PAJAMA_CHECK_AS(ConfigError, seq_len >= 1, "mock data needs seq_len >= 1, got ", seq_len);
  SplitMix64 rng(mix_seed({seed, kTableSalt}));
  // A distinct active ids: the first A of a seeded shuffle of the vocabulary.
  std::vector<int32_t> all(static_cast<size_t>(vocab_size));
  std::iota(all.begin(), all.end(), 0);
  shuffle_in_place(std::span<int32_t>(all), rng);
  const int64_t active = std::min(vocab_size, kMaxActiveTokens);
  tokens_.assign(all.begin(), all.begin() + active);
  successors_.resize(static_cast<size_t>(active) * kSuccessors);
  for (auto& s : successors_) s = static_cast<int32_t>(rng.below(static_cast<uint64_t>(active)));
}

void MockSource::get(int64_t index, int32_t* out) const {
  PAJAMA_CHECK(index >= 0, "mock data: negative sample index ", index);
  SplitMix64 rng(mix_seed({seed_, static_cast<uint64_t>(index), kSampleSalt}));
  auto state = static_cast<int64_t>(rng.below(tokens_.size()));
  out[0] = tokens_[static_cast<size_t>(state)];
  uint64_t bits = 0;
  int bits_left = 0;
  for (int64_t i = 1; i <= seq_len_; ++i) {
    // Three random bits per step: 0-3 -> successor 0, 4-5 -> 1, 6 -> 2, 7 -> 3.
    if (bits_left < 3) {
      bits = rng.next();
      bits_left = 64;
    }
    const int r = static_cast<int>(bits & 7);
    bits >>= 3;
    bits_left -= 3;
    const int j = r < 4 ? 0 : (r < 6 ? 1 : r - 4);
    state = successors_[static_cast<size_t>(state) * kSuccessors + j];
    out[i] = tokens_[static_cast<size_t>(state)];
  }
}

}  // namespace pajama
