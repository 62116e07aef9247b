// CUDA side of parallel/device_memory.h: the caching allocator's statistics and the
// device's total memory.
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime.h>

#include <string>

#include "core/error.h"
#include "parallel/cuda/cuda_check.h"
#include "parallel/device_memory.h"

namespace pajama {

MemoryReading read_cuda_memory(int device_index) {
  using c10::CachingAllocator::StatType;
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device_index));
  const auto& allocated = stats.allocated_bytes[static_cast<size_t>(StatType::AGGREGATE)];
  return MemoryReading{allocated.current, allocated.peak};
}

int64_t cuda_total_memory(int device_index) {
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_index));
  size_t free_bytes = 0, total_bytes = 0;
  PAJAMA_CUDA_CHECK(str("GPU ", device_index), cudaMemGetInfo(&free_bytes, &total_bytes));
  return static_cast<int64_t>(total_bytes);
}

std::string cuda_device_name(int device_index) {
  cudaDeviceProp prop{};
  PAJAMA_CUDA_CHECK(str("GPU ", device_index), cudaGetDeviceProperties(&prop, device_index));
  return prop.name;
}

}  // namespace pajama
