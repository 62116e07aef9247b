// A copy of a set of tensors in host memory that a background thread can write to disk
// while training goes on (asynchronous checkpoints). The host buffers are allocated on
// the first capture and reused by later ones of the same shapes, so the extra host
// memory is bytes() for the whole run, not one allocation per save.
//   CPU:  capture() copies synchronously; the buffers are ready when it returns.
//   CUDA: the buffers are pinned; capture() queues device-to-host copies on a side
//         stream that first waits for the current stream's work (the step that produced
//         the values). fence_device() makes the current stream wait for the copies
//         (before the next optimizer step overwrites the sources: no host sync);
//         wait_host() blocks the calling thread until the copies have landed.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace pajama {

class HostSnapshot {
 public:
  virtual ~HostSnapshot() = default;
  // Starts copying `sources` into the host buffers (buffer i <- sources[i], contiguous,
  // same dtype). The sources may live on the CPU or the snapshot's device.
  virtual void capture(const std::vector<torch::Tensor>& sources) = 0;
  virtual void fence_device() = 0;
  virtual void wait_host() = 0;
  const std::vector<torch::Tensor>& buffers() const { return buffers_; }
  int64_t bytes() const;

 protected:
  // Reuses the buffers when the shapes and dtypes match, else allocates new ones.
  void ensure_buffers(const std::vector<torch::Tensor>& sources, bool pinned);
  std::vector<torch::Tensor> buffers_;
};

// The snapshot kind for tensors on `device` (CUDA needs a build with CUDA).
std::unique_ptr<HostSnapshot> make_host_snapshot(const torch::Device& device);

}  // namespace pajama
