// MockSource: seeded synthetic samples for smoke tests and benchmarks without any
// data files (Megatron's --mock-data), with structure a small model learns quickly.
//
// The rule, all from `seed`:
//   * an active vocabulary of A = min(vocab_size, 256) distinct token ids;
//   * each active token has 4 successors (active tokens) taken with probabilities
//     1/2, 1/4, 1/8, 1/8 - a Markov chain with 1.21 nats of entropy per step, so the
//     loss falls from ln(vocab_size) towards ~1.2 (the unigram step to ln(256)
//     comes within tens of steps, the transitions soon after);
//   * sample k starts in a state drawn from SplitMix64(mix_seed({seed, k, salt}))
//     and walks the chain with the same generator.
// Every index is a distinct, independent sample: there are no epochs, and
// samples_per_epoch() is only a nominal 2^40.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "data/sample_source.h"

namespace pajama {

class MockSource : public SampleSource {
 public:
  static constexpr int64_t kMaxActiveTokens = 256;
  static constexpr int kSuccessors = 4;

  MockSource(int64_t vocab_size, int64_t seq_len, uint64_t seed);

  int64_t seq_len() const override { return seq_len_; }
  int64_t samples_per_epoch() const override { return int64_t{1} << 40; }
  void get(int64_t index, int32_t* out) const override;

 private:
  int64_t vocab_size_;
  int64_t seq_len_;
  uint64_t seed_;
  std::vector<int32_t> tokens_;      // A active token ids
  std::vector<int32_t> successors_;  // A x kSuccessors states
};

}  // namespace pajama
