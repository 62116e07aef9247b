// Configuration owned by parallel/: the optimizer (AdamW on each rank's partition)
// and how ZeRO partitions and communicates. trainer/ maps YAML keys onto these; each
// validate() throws ConfigError about its own fields (core/error.h ConfigField).
#pragma once

#include <cstdint>
#include <string>

namespace pajama {

struct AdamWConfig {
  double beta1 = 0.9;          // first-moment decay
  double beta2 = 0.95;         // second-moment decay
  double eps = 1e-8;           // added to the second moment's square root
  double weight_decay = 0.1;   // decoupled; not applied to 1-D tensors (norm weights)
  void validate() const;
};

struct ZeroConfig {
  int64_t stage = 2;                          // 0 = all-reduce (plain DP), 1 = optimizer states sharded, 2 = + gradients sharded
  int64_t reduce_bucket_size = 50'000'000;    // elements per gradient reduce-scatter bucket (DeepSpeed's name)
  int64_t allgather_bucket_size = 50'000'000; // elements per parameter all-gather bucket (DeepSpeed's name)
  bool overlap_comm = true;                   // reduce buckets while backward runs (GPU); CPU reduces as buckets fill
  std::string reduce_dtype = "fp32";          // dtype gradients travel in: fp32 or bf16 (accumulation is fp32)
  void validate() const;
};

struct CommConfig {
  double timeout_s = 600.0;    // a collective that takes longer is an error naming the rank and the operation
  double first_step_timeout_s = 0;  // the same for the first training step (allocations, NCCL set-up, first
                                    // batches); 0 = 3 x timeout_s
  double first_step_deadline() const { return first_step_timeout_s > 0 ? first_step_timeout_s : 3 * timeout_s; }
  void validate() const;
};

}  // namespace pajama
