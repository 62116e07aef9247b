// Checked CUDA runtime calls, shared by the CUDA sources of parallel/:
//   PAJAMA_CUDA_CHECK("[rank 3]", cudaSetDevice(i));
// throws DeviceError "<context>: cudaSetDevice(i) failed: <CUDA's message>".
#pragma once

#include <cuda_runtime.h>

#include "core/error.h"
#include "parallel/device_memory.h"

#define PAJAMA_CUDA_CHECK(context, call)                                                              \
  do {                                                                                                \
    const cudaError_t pajama_cuda_rc_ = (call);                                                       \
    if (pajama_cuda_rc_ != cudaSuccess) [[unlikely]] {                                                \
      PAJAMA_FAIL_AS(::pajama::DeviceError, context, ": ", #call, " failed: ",                        \
                     cudaGetErrorString(pajama_cuda_rc_));                                            \
    }                                                                                                 \
  } while (0)
