// A SampleSource is the training data as a function of a global sample index:
// sample k is seq_len+1 token ids, fixed by the seed alone. Everything above it
// (the loader, resume, resharding) is arithmetic on sample indices.
#pragma once

#include <cstdint>

namespace pajama {

class SampleSource {
 public:
  virtual ~SampleSource() = default;
  // Tokens per sample minus one (inputs are sample[0..T), targets sample[1..T]).
  virtual int64_t seq_len() const = 0;
  // Samples in one pass (epoch) over the data; indices past it continue into later
  // epochs, each shuffled afresh from (seed, epoch).
  virtual int64_t samples_per_epoch() const = 0;
  // Writes the seq_len+1 tokens of global sample `index` (>= 0) into out.
  // Must be safe to call concurrently from several threads.
  virtual void get(int64_t index, int32_t* out) const = 0;
};

}  // namespace pajama
