// CUDA side of parallel/host_snapshot.h: pinned buffers filled on a side stream.
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <optional>

#include "core/error.h"
#include "parallel/host_snapshot.h"

namespace pajama {
namespace {

class CudaHostSnapshot final : public HostSnapshot {
 public:
  explicit CudaHostSnapshot(const torch::Device& device)
      : device_(device), side_(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index())) {}

  void capture(const std::vector<torch::Tensor>& sources) override {
    wait_host();  // the buffers may still be in use by a previous capture's copies
    ensure_buffers(sources, /*pinned=*/true);
    c10::cuda::CUDAGuard guard(device_.index());
    // The side stream starts after the work that produced the values.
    at::cuda::CUDAEvent produced;
    produced.record(c10::cuda::getCurrentCUDAStream(device_.index()));
    produced.block(side_);
    {
      c10::cuda::CUDAStreamGuard on_side(side_);
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < sources.size(); ++i) {
        buffers_[i].copy_(sources[i].detach().reshape(buffers_[i].sizes()), /*non_blocking=*/true);
      }
    }
    copied_.emplace();
    copied_->record(side_);
    fenced_ = false;
  }

  void fence_device() override {
    if (!copied_ || fenced_) return;
    c10::cuda::CUDAGuard guard(device_.index());
    copied_->block(c10::cuda::getCurrentCUDAStream(device_.index()));
    fenced_ = true;
  }

  void wait_host() override {
    if (copied_) copied_->synchronize();
  }

 private:
  torch::Device device_;
  c10::cuda::CUDAStream side_;
  std::optional<at::cuda::CUDAEvent> copied_;
  bool fenced_ = true;
};

}  // namespace

std::unique_ptr<HostSnapshot> make_cuda_host_snapshot(const torch::Device& device) {
  return std::make_unique<CudaHostSnapshot>(device);
}

}  // namespace pajama
