// Measured memory of the device a rank trains on, for metrics and the memory plan's
// check: on the CPU the process's resident set (VmRSS) and its high-water mark (VmHWM);
// on CUDA the caching allocator's allocated bytes and their peak on that device.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "core/error.h"

namespace pajama {

// A failed CUDA runtime call (parallel/cuda/cuda_check.h): the device, not the
// communication or the data, failed.
class DeviceError : public Error {
 public:
  using Error::Error;
};

struct MemoryReading {
  int64_t current_bytes = 0;
  int64_t peak_bytes = 0;  // since the process started (CPU) or the allocator's stats were reset (CUDA)
};

MemoryReading read_memory(const torch::Device& device);
// A GPU's total memory in bytes; 0 for the CPU (no fixed budget to check against).
int64_t device_total_memory(const torch::Device& device);
// The GPU's product name (cudaDeviceProp::name, e.g. "NVIDIA H100 80GB HBM3"); "cpu".
std::string device_name(const torch::Device& device);
// The GPU of the rank with this local rank on its node: one rank per GPU, so a local rank
// beyond the node's GPUs is a ConfigError (ranks sharing a GPU would make NCCL hang or fail).
torch::Device local_gpu(int rank, int local_rank);

}  // namespace pajama
