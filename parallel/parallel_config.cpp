#include "parallel/parallel_config.h"

#include "core/error.h"

namespace pajama {

void AdamWConfig::validate() const {
  PAJAMA_CHECK_AS(ConfigError, beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "optim.betas must be in [0, 1), got [",
                  beta1, ", ", beta2, "]");
  PAJAMA_CHECK_AS(ConfigError, eps > 0, "optim.eps must be positive, got ", eps);
  PAJAMA_CHECK_AS(ConfigError, weight_decay >= 0, "optim.weight_decay must be >= 0, got ", weight_decay);
}

void ZeroConfig::validate() const {
  PAJAMA_CHECK_AS(ConfigError, stage >= 0 && stage <= 2,
                  "parallel.zero_stage must be 0, 1 or 2 (ZeRO-3 is not supported), got ", stage);
  PAJAMA_CHECK_AS(ConfigError, reduce_bucket_size > 0, "parallel.reduce_bucket_size must be positive, got ",
                  reduce_bucket_size);
  PAJAMA_CHECK_AS(ConfigError, allgather_bucket_size > 0, "parallel.allgather_bucket_size must be positive, got ",
                  allgather_bucket_size);
  PAJAMA_CHECK_AS(ConfigError, reduce_dtype == "fp32" || reduce_dtype == "bf16",
                  "parallel.reduce_dtype must be fp32 or bf16, got '", reduce_dtype, "'");
}

void CommConfig::validate() const {
  PAJAMA_CHECK_AS(ConfigError, timeout_s > 0, "parallel.timeout_s must be positive, got ", timeout_s);
  PAJAMA_CHECK_AS(ConfigError, first_step_timeout_s >= 0,
                  "parallel.first_step_timeout_s must be >= 0 (0 = 3 x parallel.timeout_s), got ", first_step_timeout_s);
}

}  // namespace pajama
