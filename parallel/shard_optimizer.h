// The element-wise optimizer that a ZeroOptimizer runs on this rank's partition.
// ZeRO owns where gradients and parameters live and how they move between ranks;
// a ShardOptimizer only turns (fp32 master, fp32 gradient) into an updated master and
// keeps its own per-element state. Adding an optimizer means adding one of these and a
// factory; parallel/zero_optimizer.cpp does not change.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace pajama {

// One parameter's owned elements inside the partition: [offset, offset + length).
struct ShardSegment {
  int64_t offset = 0;
  int64_t length = 0;
  bool decay = false;  // weight decay applies (matrices and embeddings, not 1-D norm gains)
};

struct ShardLayout {
  int64_t numel = 0;                  // elements of the partition this rank updates
  std::vector<ShardSegment> segments; // in flat order, disjoint, inside [0, numel)
  torch::Device device{torch::kCPU};
};

class ShardOptimizer {
 public:
  virtual ~ShardOptimizer() = default;
  // Names of the per-element fp32 state tensors, as checkpoints store them.
  virtual std::vector<std::string> state_names() const = 0;
  // The whole partition's state `name`, (layout.numel) fp32; writable (checkpoint restore).
  virtual torch::Tensor state(const std::string& name) = 0;
  // One update of `master` (layout.numel fp32, in place) from fp32 `grads` of the same size.
  virtual void step(torch::Tensor& master, const torch::Tensor& grads, double lr) = 0;
  // The bias-correction step counter, restored from a checkpoint: of every segment, or of
  // one (a parameter whose state starts fresh, or was trained for fewer steps).
  virtual void set_step_count(int64_t steps) = 0;
  virtual void set_segment_step_count(size_t segment, int64_t steps) = 0;
};

using ShardOptimizerFactory = std::function<std::unique_ptr<ShardOptimizer>(const ShardLayout&)>;

}  // namespace pajama
