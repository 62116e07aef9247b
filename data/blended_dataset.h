// BlendedDataset: a weighted mixture of SampleSources with Megatron's semantics.
// Weights are normalised (w / sum w) and are proportions of *samples* (not tokens).
// Sample k of the blend is sample c_d(k) of source d(k), where d(k) follows
// Megatron's greedy "largest sampling error" rule (helpers.cpp::build_blending_indices):
//   counts[d] = 0; for s = 0, 1, ...:
//     d(s) = argmax_d ( w[d] * max(s, 1) - counts[d] )   (ties -> lowest d)
//     c_d(s) = counts[d(s)]++
// No RNG: the assignment depends on the weights alone. It is built eagerly for
// num_samples_hint samples and extended in chunks on demand, so every index >= 0 has
// a deterministic answer. A source asked past its epoch continues into its next
// epoch (SampleSource contract). Memory: 2 bytes per built sample plus the counts
// at every kChunk-th sample. get() is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "data/sample_source.h"

namespace pajama {

class BlendedDataset : public SampleSource {
 public:
  static constexpr int64_t kChunk = 1024;  // samples between stored count snapshots

  // 1 <= sources.size() <= 65535; weights > 0, one per source; all sources share seq_len.
  BlendedDataset(std::vector<std::shared_ptr<const SampleSource>> sources, std::vector<double> weights,
                 int64_t num_samples_hint);

  int64_t seq_len() const override { return seq_len_; }
  // The sum of the sources' samples per epoch ("one pass over everything" at the
  // blend's scale; the mixture itself has no epochs).
  int64_t samples_per_epoch() const override { return samples_per_epoch_; }
  void get(int64_t index, int32_t* out) const override;

  // (source, sample index in that source) of blend sample `index`.
  std::pair<int, int64_t> locate(int64_t index) const;
  const std::vector<double>& weights() const { return weights_; }  // normalised
  const SampleSource& source(int d) const { return *sources_[static_cast<size_t>(d)]; }

 private:
  // Extends the assignment to cover samples [0, end). Caller holds mutex_.
  void build_until(int64_t end) const;

  std::vector<std::shared_ptr<const SampleSource>> sources_;
  std::vector<double> weights_;
  int64_t seq_len_ = 0;
  int64_t samples_per_epoch_ = 0;

  mutable std::mutex mutex_;
  mutable std::vector<uint16_t> source_of_;      // d(s) for every built sample s
  mutable std::vector<int64_t> chunk_counts_;    // counts[] before sample c*kChunk, D per chunk
  mutable std::vector<int64_t> counts_;          // counts[] after the last built sample
};

}  // namespace pajama
