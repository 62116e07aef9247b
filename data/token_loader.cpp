#include "data/token_loader.h"

#include <utility>

#include "core/error.h"

namespace pajama {

TokenLoader::TokenLoader(std::shared_ptr<const SampleSource> source, int64_t global_batch,
                         int64_t micro_batch, int dp_rank, int dp_size)
    : source_(std::move(source)),
      global_batch_(global_batch),
      micro_batch_(micro_batch),
      dp_rank_(dp_rank),
      dp_size_(dp_size) {
  PAJAMA_CHECK(source_ != nullptr, "TokenLoader needs a sample source");
  PAJAMA_CHECK_AS(ConfigError, micro_batch > 0 && global_batch > 0 && dp_size > 0, "the micro-batch (", micro_batch,
                  ") and the global batch (", global_batch, ") must be positive");
  PAJAMA_CHECK_AS(ConfigError, global_batch % (micro_batch * dp_size) == 0, "a global batch of ", global_batch,
                  " sequences does not split evenly into micro-batches of ", micro_batch, " over ", dp_size,
                  " ranks (need a multiple of ", micro_batch * dp_size,
                  "); change the global batch size, the micro-batch size or the rank count");
  PAJAMA_CHECK(dp_rank >= 0 && dp_rank < dp_size, "dp_rank ", dp_rank, " out of range for ", dp_size, " ranks");
  num_micro_steps_ = global_batch / (micro_batch * dp_size);
}

void TokenLoader::set_consumed_samples(int64_t consumed) {
  PAJAMA_CHECK_AS(CheckpointError, consumed >= 0, "loader state: consumed_samples ", consumed, " is negative");
  consumed_samples_ = consumed;
}

void TokenLoader::fill_micro_batch(int64_t micro_step, int32_t* out) const {
  PAJAMA_CHECK(micro_step >= 0 && micro_step < num_micro_steps_, "micro_step ", micro_step, " out of range [0, ",
               num_micro_steps_, ")");
  const int64_t per_rank = global_batch_ / dp_size_;
  const int64_t first = consumed_samples_ + dp_rank_ * per_rank + micro_step * micro_batch_;
  const int64_t row = source_->seq_len() + 1;
  for (int64_t i = 0; i < micro_batch_; ++i) source_->get(first + i, out + i * row);
}

}  // namespace pajama
