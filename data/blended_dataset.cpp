#include "data/blended_dataset.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace pajama {

BlendedDataset::BlendedDataset(std::vector<std::shared_ptr<const SampleSource>> sources, std::vector<double> weights,
                               int64_t num_samples_hint)
    : sources_(std::move(sources)), weights_(std::move(weights)) {
  PAJAMA_CHECK_AS(ConfigError, !sources_.empty(), "a blend needs at least one dataset");
  PAJAMA_CHECK_AS(ConfigError, sources_.size() <= 65535, "a blend holds at most 65535 datasets, got ",
                  sources_.size());
  PAJAMA_CHECK_AS(ConfigError, weights_.size() == sources_.size(), "blend of ", sources_.size(), " datasets got ",
                  weights_.size(), " weights");
  double sum = 0.0;
  for (size_t d = 0; d < weights_.size(); ++d) {
    PAJAMA_CHECK(sources_[d] != nullptr, "blend dataset ", d, " is null");
    // A zero weight could still win a tie of all-zero errors in the greedy rule, so
    // a dataset that should not be read must be left out instead.
    PAJAMA_CHECK_AS(ConfigError, std::isfinite(weights_[d]) && weights_[d] > 0.0, "blend weight ", d, " is ",
                    weights_[d], "; weights must be positive (leave a dataset out to not use it)");
    sum += weights_[d];
  }
  for (double& w : weights_) w /= sum;
  seq_len_ = sources_[0]->seq_len();
  for (size_t d = 0; d < sources_.size(); ++d) {
    PAJAMA_CHECK(sources_[d]->seq_len() == seq_len_, "blend dataset ", d, " has seq_len ", sources_[d]->seq_len(),
                 ", dataset 0 has ", seq_len_);
    samples_per_epoch_ += sources_[d]->samples_per_epoch();
  }
  counts_.assign(sources_.size(), 0);
  std::lock_guard<std::mutex> lock(mutex_);
  build_until(std::max<int64_t>(num_samples_hint, 1));
}

void BlendedDataset::build_until(int64_t end) const {
  auto built = static_cast<int64_t>(source_of_.size());
  if (end <= built) return;
  // Grow in chunks of at least 1/8 of what exists so on-demand extension is amortised.
  end = std::max(end, built + std::max<int64_t>(built / 8, 64 * kChunk));
  end = (end + kChunk - 1) / kChunk * kChunk;
  source_of_.reserve(static_cast<size_t>(end));
  const size_t num = sources_.size();
  for (int64_t s = built; s < end; ++s) {
    if (s % kChunk == 0) chunk_counts_.insert(chunk_counts_.end(), counts_.begin(), counts_.end());
    const double sd = std::max(static_cast<double>(s), 1.0);
    size_t best = 0;
    double best_error = weights_[0] * sd - static_cast<double>(counts_[0]);
    for (size_t d = 1; d < num; ++d) {
      const double error = weights_[d] * sd - static_cast<double>(counts_[d]);
      if (error > best_error) {
        best_error = error;
        best = d;
      }
    }
    source_of_.push_back(static_cast<uint16_t>(best));
    ++counts_[best];
  }
}

std::pair<int, int64_t> BlendedDataset::locate(int64_t index) const {
  PAJAMA_CHECK(index >= 0, "negative blend sample index ", index);
  std::lock_guard<std::mutex> lock(mutex_);
  build_until(index + 1);
  const uint16_t d = source_of_[static_cast<size_t>(index)];
  const int64_t chunk = index / kChunk;
  int64_t count = chunk_counts_[static_cast<size_t>(chunk) * sources_.size() + d];
  const uint16_t* p = source_of_.data();
  for (int64_t s = chunk * kChunk; s < index; ++s) count += (p[s] == d);
  return {d, count};
}

void BlendedDataset::get(int64_t index, int32_t* out) const {
  const auto [d, i] = locate(index);
  sources_[static_cast<size_t>(d)]->get(i, out);
}

}  // namespace pajama
