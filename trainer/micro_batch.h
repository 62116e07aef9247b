// One micro-batch of a TokenLoader as the model takes it: the loader's int32 samples of
// seq_len+1 tokens, moved to the device as int64 and split into inputs (tokens 0..t-1)
// and next-token targets (tokens 1..t). Shared by the training step and the Evaluator.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "data/token_loader.h"

namespace pajama {

struct MicroBatch {
  torch::Tensor inputs;   // [micro_batch, seq_len] int64 on the device
  torch::Tensor targets;  // [micro_batch, seq_len] int64 on the device
};

// Fills `buffer` (resized to micro_batch * (seq_len + 1)) with micro-step `m` of the
// loader's current global batch and returns it on `device`. For a GPU the samples go
// into pinned memory from LibTorch's caching host allocator instead and travel as int32
// with a non-blocking copy, cast to int64 on the GPU: the host never waits for the copy,
// and the allocator hands the pinned block out again only once the copy has finished.
inline MicroBatch load_micro_batch(const TokenLoader& loader, int64_t m, std::vector<int32_t>& buffer,
                                   const torch::Device& device) {
  const int64_t b = loader.micro_batch();
  const int64_t t = loader.seq_len();
  torch::Tensor tokens;
  if (device.is_cuda()) {
    const torch::Tensor host = torch::empty({b, t + 1}, torch::TensorOptions().dtype(torch::kInt32).pinned_memory(true));
    loader.fill_micro_batch(m, host.data_ptr<int32_t>());
    tokens = host.to(torch::TensorOptions().device(device).dtype(torch::kInt32), /*non_blocking=*/true)
                 .to(torch::kInt64);
  } else {
    buffer.resize(static_cast<size_t>(b * (t + 1)));
    loader.fill_micro_batch(m, buffer.data());
    tokens = torch::from_blob(buffer.data(), {b, t + 1}, torch::kInt32).to(torch::kInt64);
  }
  return {tokens.narrow(1, 0, t), tokens.narrow(1, 1, t)};
}

}  // namespace pajama
