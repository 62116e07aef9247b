// AdamW (decoupled weight decay, Loshchilov & Hutter) as a ShardOptimizer: the fused
// ATen kernel that torch.optim.AdamW(fused=True) calls, one call per decay group over
// the segments of this rank's partition. State: exp_avg and exp_avg_sq (fp32).
#pragma once

#include "parallel/parallel_config.h"
#include "parallel/shard_optimizer.h"

namespace pajama {

ShardOptimizerFactory adamw_factory(const AdamWConfig& config);

}  // namespace pajama
