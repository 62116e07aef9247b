// ZeRO over data-parallel ranks (DeepSpeed's stage semantics):
//   stage 0: gradients all-reduced, every rank holds the full optimizer state;
//   stage 1: optimizer state (fp32 master, moments) partitioned, gradients all-reduced
//            once per step from one full fp32 gradient buffer;
//   stage 2: as 1, but in every micro-step's backward the gradients are copied into
//            bucket-sized transient buffers as they become ready and reduce-scattered
//            bucket by bucket into this rank's fp32 partition, where micro-steps
//            accumulate. No full-size gradient buffer exists.
// Parameters live in one flat buffer with the model's tensors as views, evenly
// partitioned across ranks (padding recorded, never leaked into results). The master
// weights are fp32: with fp32 parameters they are this rank's slice of the flat
// parameters themselves (no second copy); with bf16 parameters a separate fp32 copy.
// Gradients accumulate in fp32 whatever the parameter dtype. The update itself is a
// ShardOptimizer (parallel/adamw.h), which knows nothing of ranks or buckets.
//
// One optimizer step, as the trainer drives it:
//   opt.zero_grad();
//   for m in micro-steps: opt.begin_micro_step(m, num_micro); loss_m.backward();
//   double norm = opt.step(lr, grad_clip);   // reduce, clip by global norm, update, all-gather
// Gradients are averaged over ranks (ReduceOp::kAvg); the trainer scales each micro
// loss by 1/num_micro so the result is the mean over the global batch.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/parallel_config.h"
#include "parallel/shard_optimizer.h"

namespace pajama {

using NamedParameters = std::vector<std::pair<std::string, torch::Tensor>>;

// Elements each of `num_ranks` ranks owns for `num_params` parameters: the flat buffer
// padded to a multiple of 16 * num_ranks, split evenly. `pajama info` uses the same rule.
int64_t zero_partition_numel(int64_t num_params, int64_t num_ranks);
// Elements of one stage-2 reduce bucket: reduce_bucket_size rounded up to a multiple of
// num_ranks (so every bucket splits evenly), at most the padded parameter count.
int64_t zero_bucket_numel(int64_t reduce_bucket_size, int64_t num_params, int64_t num_ranks);

// What the optimizer holds on this rank, in elements (dtypes in the comments).
struct ZeroMemoryStats {
  int64_t param_numel = 0;          // P, total parameters (without padding)
  int64_t padded_numel = 0;         // P rounded up so it splits evenly
  int64_t partition_numel = 0;      // per rank: padded_numel / N
  int64_t master_numel = 0;         // fp32 master values this rank updates
  bool master_is_separate = false;  // a copy besides the parameters (bf16 parameters) or a view of them (fp32)
  int64_t state_numel = 0;          // fp32 optimizer state elements (AdamW: 2 per updated element)
  int64_t grad_numel_kept = 0;      // fp32 gradient elements held between backward and step
  int64_t bucket_numel = 0;         // stage 2: elements of one transient bucket buffer (reduce dtype)
  int64_t max_buckets_open = 0;     // stage 2: most bucket buffers alive at once so far (measured)
};

class ZeroOptimizer {
 public:
  // Takes over `params`: copies them into a flat buffer in the order given and
  // re-points each parameter at its view. All ranks must pass the same names, shapes
  // and order. Pass them in the order forward first uses them: backward then produces
  // gradients from the last bucket down and each bucket is reduced as soon as it fills
  // (at most two bucket buffers alive); another order is correct but keeps buckets open
  // longer. Checkpoints store state per parameter name, so the order is not persisted. `make_optimizer` builds the update rule for this
  // rank's partition (e.g. adamw_factory(config)).
  ZeroOptimizer(const NamedParameters& params, const ShardOptimizerFactory& make_optimizer, const ZeroConfig& zero,
                Communicator& comm);
  ~ZeroOptimizer();

  void zero_grad();
  // Tells the optimizer which micro-step's backward comes next. Stage 2 finishes the
  // previous micro-step's reductions here (buckets whose gradients never all arrived).
  void begin_micro_step(int64_t micro_step, int64_t num_micro_steps);
  // Finishes gradient reduction, computes the global gradient L2 norm (one all-reduce
  // of per-partition squared sums), clips to grad_clip (<= 0: no clipping), updates
  // this rank's partition and all-gathers the updated parameters.
  // Returns the global norm before clipping.
  double step(double lr, double grad_clip);
  // The same in two halves, so the caller can decide between them (skip a step whose
  // loss or gradients are not finite, or whose norm spikes). prepare_step finishes the
  // reduction and returns the global norm, NaN when any rank's gradients are not finite
  // or any rank passed local_nonfinite != 0 (a 0-dim tensor on the device, e.g. its
  // loss's !isfinite; undefined = 0), learnt in the norm's one all-reduce. Then exactly
  // one of apply_step (clip, update, all-gather) or skip_step (nothing changes).
  double prepare_step(const torch::Tensor& local_nonfinite);
  void apply_step(double lr, double grad_clip);
  void skip_step();

  ZeroMemoryStats memory_stats() const;
  int64_t step_count() const;
  // Stage 2: how many bucket reductions the current/last step issued from the gradient
  // hooks while backward was still running (the rest at micro-step ends); 0 otherwise.
  int64_t num_buckets_reduced_in_backward() const;

  // Checkpoint support (per parameter name, global coordinates): for each parameter,
  // the [begin, end) range of its flattened elements that this rank owns, and
  // accessors to the owned slices of master weights and optimizer state.
  struct OwnedSlice {
    std::string name;
    std::vector<int64_t> shape;   // global shape
    int64_t begin = 0;            // first owned element in the flattened parameter
    int64_t end = 0;              // one past the last owned element
  };
  std::vector<OwnedSlice> owned_slices() const;
  // "master" followed by the update rule's state names (AdamW: exp_avg, exp_avg_sq).
  std::vector<std::string> state_kinds() const;
  // The owned elements of `name` for one of state_kinds() (fp32, 1-D view).
  torch::Tensor state_slice(const std::string& kind, const std::string& name);
  void set_step_count(int64_t steps);
  // Optimizer steps each parameter has taken (bias correction counts per parameter: one
  // trained in an earlier stage continues its count, one that starts fresh counts from 0).
  // Every rank returns all parameters, in the order given to the constructor.
  std::vector<std::pair<std::string, int64_t>> parameter_steps() const;
  void set_parameter_steps(const std::string& name, int64_t steps);
  // Sets the master weights from the model's current parameters (after they were loaded
  // from a checkpoint, before restored state slices overwrite what the checkpoint has);
  // a no-op for fp32 parameters, whose master is the parameters themselves.
  void master_from_params();
  // After state slices were overwritten: recompute model parameters from the master
  // weights (all-gather), so every rank's model equals the restored state.
  void sync_params_from_master();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pajama
