#include "parallel/device_memory.h"

#include <fstream>
#include <string>

#include "core/error.h"

namespace pajama {

#ifdef PAJAMA_WITH_CUDA
MemoryReading read_cuda_memory(int device_index);  // parallel/cuda/device_memory_cuda.cpp
int64_t cuda_total_memory(int device_index);
std::string cuda_device_name(int device_index);
#endif

namespace {

// "VmHWM:   123456 kB" -> bytes
int64_t proc_status_kb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  PAJAMA_CHECK(in, "cannot read /proc/self/status for the process's memory");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1)) * 1024;
  }
  PAJAMA_FAIL_AS(Error, "no ", key, " line in /proc/self/status");
}

}  // namespace

MemoryReading read_memory(const torch::Device& device) {
  if (device.is_cuda()) {
#ifdef PAJAMA_WITH_CUDA
    return read_cuda_memory(device.index());
#else
    PAJAMA_FAIL_AS(Error, "read_memory: this build has no CUDA");
#endif
  }
  return MemoryReading{proc_status_kb("VmRSS"), proc_status_kb("VmHWM")};
}

int64_t device_total_memory(const torch::Device& device) {
  if (!device.is_cuda()) return 0;
#ifdef PAJAMA_WITH_CUDA
  return cuda_total_memory(device.index());
#else
  PAJAMA_FAIL_AS(Error, "device_total_memory: this build has no CUDA");
#endif
}

torch::Device local_gpu(int rank, int local_rank) {
  const auto count = static_cast<int>(torch::cuda::device_count());
  PAJAMA_CHECK_AS(ConfigError, local_rank < count, "rank ", rank, " is rank ", local_rank,
                  " on its node, which has ", count, " visible GPU(s): start at most one rank per GPU "
                  "(mpirun -np / --npernode, srun --ntasks-per-node) or check CUDA_VISIBLE_DEVICES");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
}

std::string device_name(const torch::Device& device) {
  if (!device.is_cuda()) return "cpu";
#ifdef PAJAMA_WITH_CUDA
  return cuda_device_name(device.index());
#else
  PAJAMA_FAIL_AS(Error, "device_name: this build has no CUDA");
#endif
}

}  // namespace pajama
