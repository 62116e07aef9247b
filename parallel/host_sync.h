// Counts the host synchronisations LibTorch makes on CUDA (a `.item()`, a `.cpu()`, a
// blocking host-to-device copy from pageable memory, a stream or device synchronize):
// c10's sync debug mode reports each one as a warning, and this counter's warning
// handler counts them instead of printing. Syncs in autograd's device threads are
// counted too (the engine replays their warnings on the thread that called backward).
// Raw cudaStreamSynchronize calls outside LibTorch are not seen.
//
//   HostSyncCounter syncs;            // on the training thread; one alive at a time
//   ... step ...
//   int64_t n = syncs.take();         // syncs since construction or the last take()
//
// A diagnostic for the GPU tests and benchmarks (PAJAMA_COUNT_HOST_SYNCS=1 makes `train`
// report `host_syncs` in metrics.jsonl); on a build without CUDA constructing one is an
// error.
#pragma once

#include <cstdint>
#include <memory>

namespace pajama {

class HostSyncCounter {
 public:
  HostSyncCounter();
  ~HostSyncCounter();
  HostSyncCounter(const HostSyncCounter&) = delete;
  HostSyncCounter& operator=(const HostSyncCounter&) = delete;

  // Synchronisations counted since construction or the previous take().
  int64_t take();

  struct Impl {  // the CUDA side (parallel/cuda/host_sync_cuda.cpp)
    virtual ~Impl() = default;
    virtual int64_t take() = 0;
  };

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pajama
