// ZeRO-sharded AdamW over data-parallel ranks (DeepSpeed's stage semantics):
//   stage 0: gradients all-reduced, every rank holds full optimizer state;
//   stage 1: optimizer state (fp32 master, m, v) partitioned, gradients all-reduced;
//   stage 2: as 1, and gradients reduce-scattered in buckets so each rank keeps only
//            its partition.
// Parameters live in one flat buffer per dtype with the model's tensors as views,
// evenly partitioned across ranks (padding recorded, never leaked into results).
//
// One optimizer step, as the trainer drives it:
//   opt.zero_grad();
//   for m in micro-steps: opt.begin_micro_step(m, num_micro); loss_m.backward();
//   double norm = opt.step(lr, grad_clip);   // reduce, clip by global norm, AdamW, all-gather
// Gradients are averaged over ranks (ReduceOp::kAvg); the trainer scales each micro
// loss by 1/num_micro so the result is the mean over the global batch.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/parallel_config.h"

namespace pajama {

using NamedParameters = std::vector<std::pair<std::string, torch::Tensor>>;

// Elements each of `num_ranks` ranks owns for `num_params` parameters: the flat buffer
// padded to a multiple of 16 * num_ranks, split evenly. `pajama info` uses the same rule.
int64_t zero_partition_numel(int64_t num_params, int64_t num_ranks);

struct ZeroMemoryStats {
  int64_t param_numel = 0;          // P, total parameters (without padding)
  int64_t padded_numel = 0;         // P rounded up so it splits evenly
  int64_t partition_numel = 0;      // per rank: padded_numel / N
  int64_t master_numel = 0;         // fp32 master values held by this rank
  int64_t adam_m_numel = 0;         // first moments held by this rank
  int64_t adam_v_numel = 0;         // second moments held by this rank
  int64_t grad_numel_kept = 0;      // gradient elements this rank keeps after reduction
};

class ZeroOptimizer {
 public:
  // Takes over `params` (the model's parameters, in model order): copies them into a
  // flat buffer and re-points each parameter at its view. All ranks must pass the
  // same names, shapes and order.
  ZeroOptimizer(const NamedParameters& params, const AdamWConfig& adamw, const ZeroConfig& zero,
                Communicator& comm);
  ~ZeroOptimizer();

  void zero_grad();
  // Tells the optimizer which micro-step's backward comes next (stage 2 reduces in
  // the last one's backward, as buckets fill).
  void begin_micro_step(int64_t micro_step, int64_t num_micro_steps);
  // Finishes gradient reduction, computes the global gradient L2 norm (one all-reduce
  // of per-partition squared sums), clips to grad_clip (<= 0: no clipping), runs
  // AdamW on this rank's partition and all-gathers the updated parameters.
  // Returns the global norm before clipping.
  double step(double lr, double grad_clip);

  ZeroMemoryStats memory_stats() const;
  int64_t step_count() const;
  // Stage 2: how many gradient buckets the current/last step reduced from the gradient
  // hooks while backward was still running (the rest are reduced in step()); 0 otherwise.
  int64_t num_buckets_reduced_in_backward() const;

  // Checkpoint support (per parameter name, global coordinates): for each parameter,
  // the [begin, end) range of its flattened elements that this rank owns, and
  // accessors to the owned slices of master weights and moments.
  struct OwnedSlice {
    std::string name;
    std::vector<int64_t> shape;   // global shape
    int64_t begin = 0;            // first owned element in the flattened parameter
    int64_t end = 0;              // one past the last owned element
  };
  std::vector<OwnedSlice> owned_slices() const;
  // "master", "exp_avg", "exp_avg_sq": the owned elements of `name` (fp32, 1-D view).
  torch::Tensor state_slice(const std::string& kind, const std::string& name);
  void set_step_count(int64_t steps);
  // After state slices were overwritten: recompute model parameters from the master
  // weights (all-gather), so every rank's model equals the restored state.
  void sync_params_from_master();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pajama
