#include "parallel/host_snapshot.h"

#include "core/error.h"

namespace pajama {

#ifdef PAJAMA_WITH_CUDA
std::unique_ptr<HostSnapshot> make_cuda_host_snapshot(const torch::Device& device);  // cuda/host_snapshot_cuda.cpp
#endif

namespace {

class CpuHostSnapshot final : public HostSnapshot {
 public:
  void capture(const std::vector<torch::Tensor>& sources) override {
    ensure_buffers(sources, /*pinned=*/false);
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < sources.size(); ++i) buffers_[i].copy_(sources[i].detach().reshape(buffers_[i].sizes()));
  }
  void fence_device() override {}
  void wait_host() override {}
};

}  // namespace

int64_t HostSnapshot::bytes() const {
  int64_t n = 0;
  for (const auto& b : buffers_) n += static_cast<int64_t>(b.nbytes());
  return n;
}

void HostSnapshot::ensure_buffers(const std::vector<torch::Tensor>& sources, bool pinned) {
  bool same = buffers_.size() == sources.size();
  for (size_t i = 0; same && i < sources.size(); ++i) {
    same = buffers_[i].sizes() == sources[i].sizes() && buffers_[i].scalar_type() == sources[i].scalar_type();
  }
  if (same) return;
  buffers_.clear();
  buffers_.reserve(sources.size());
  for (const auto& s : sources) {
    buffers_.push_back(torch::empty(s.sizes(), torch::TensorOptions().dtype(s.scalar_type()).pinned_memory(pinned)));
  }
}

std::unique_ptr<HostSnapshot> make_host_snapshot(const torch::Device& device) {
  if (device.is_cuda()) {
#ifdef PAJAMA_WITH_CUDA
    return make_cuda_host_snapshot(device);
#else
    PAJAMA_FAIL_AS(Error, "make_host_snapshot: this build has no CUDA");
#endif
  }
  return std::make_unique<CpuHostSnapshot>();
}

}  // namespace pajama
