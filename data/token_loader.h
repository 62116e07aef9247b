// Hands data-parallel rank r of N its micro-batches. The state is one number,
// consumed_samples: optimizer step s covers global samples [c, c + global_batch),
// rank r owns the contiguous block [c + r*G/N, c + (r+1)*G/N) and micro-step m of
// it is the m-th run of micro_batch samples in that block. No overlap, no gaps, and
// a run resumed from c on any number of ranks sees the same global stream.
#pragma once

#include <cstdint>
#include <memory>

#include "data/sample_source.h"

namespace pajama {

class TokenLoader {
 public:
  // global_batch must equal micro_batch * dp_size * accumulation steps (ConfigError otherwise).
  TokenLoader(std::shared_ptr<const SampleSource> source, int64_t global_batch, int64_t micro_batch,
              int dp_rank, int dp_size);

  int64_t seq_len() const { return source_->seq_len(); }
  int64_t global_batch() const { return global_batch_; }
  int64_t micro_batch() const { return micro_batch_; }
  int dp_rank() const { return dp_rank_; }
  int dp_size() const { return dp_size_; }
  int64_t num_micro_steps() const { return num_micro_steps_; }

  // Fills out[micro_batch * (seq_len+1)] (row-major) with micro-step `micro_step`
  // of the current optimizer step for this rank: global samples
  // consumed + dp_rank*G/N + micro_step*micro_batch + [0, micro_batch).
  void fill_micro_batch(int64_t micro_step, int32_t* out) const;
  // Marks the current optimizer step consumed (consumed_samples += global_batch).
  void advance() { consumed_samples_ += global_batch_; }

  int64_t consumed_samples() const { return consumed_samples_; }
  // Resume: any value >= 0 (it need not be a multiple of this run's global batch,
  // so a run may resume with another global batch size).
  void set_consumed_samples(int64_t consumed);

 private:
  std::shared_ptr<const SampleSource> source_;
  int64_t global_batch_;
  int64_t micro_batch_;
  int dp_rank_;
  int dp_size_;
  int64_t num_micro_steps_;
  int64_t consumed_samples_ = 0;
};

}  // namespace pajama
