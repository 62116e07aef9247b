// The GPU tests' guard: without a visible CUDA device they fail when PAJAMA_REQUIRE_GPU=1
// (scripts/gpu_check.sh sets it on the GPU machine) and are skipped otherwise; CI leaves
// the `gpu` label out of its run (scripts/test.sh).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include <torch/torch.h>

namespace pajama::testing {

inline bool gpu_required() {
  const char* v = std::getenv("PAJAMA_REQUIRE_GPU");
  return v != nullptr && std::string(v) == "1";
}

}  // namespace pajama::testing

#define PAJAMA_NEED_GPU()                                                                             \
  do {                                                                                                \
    if (!torch::cuda::is_available()) {                                                               \
      if (::pajama::testing::gpu_required()) {                                                        \
        FAIL() << "PAJAMA_REQUIRE_GPU=1 but LibTorch sees no CUDA device (check nvidia-smi, "          \
                  "CUDA_VISIBLE_DEVICES, and that this build links the CUDA LibTorch)";               \
      }                                                                                               \
      GTEST_SKIP() << "no CUDA device (set PAJAMA_REQUIRE_GPU=1 to make this a failure)";             \
    }                                                                                                 \
  } while (0)
