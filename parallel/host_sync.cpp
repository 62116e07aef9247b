#include "parallel/host_sync.h"

#include "core/error.h"

namespace pajama {

#ifdef PAJAMA_WITH_CUDA
std::unique_ptr<HostSyncCounter::Impl> make_host_sync_counter();  // parallel/cuda/host_sync_cuda.cpp
#endif

HostSyncCounter::HostSyncCounter() {
#ifdef PAJAMA_WITH_CUDA
  impl_ = make_host_sync_counter();
#else
  PAJAMA_FAIL_AS(Error, "counting CUDA host synchronisations needs a build with CUDA (PAJAMA_CUDA=ON)");
#endif
}

HostSyncCounter::~HostSyncCounter() = default;

int64_t HostSyncCounter::take() { return impl_->take(); }

}  // namespace pajama
