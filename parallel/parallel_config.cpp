#include "parallel/parallel_config.h"

#include "core/error.h"

namespace pajama {

void AdamWConfig::validate() const {
  PAJAMA_CHECK_FIELD(beta1 >= 0 && beta1 < 1, beta1, "beta1 must be in [0, 1), got ", beta1);
  PAJAMA_CHECK_FIELD(beta2 >= 0 && beta2 < 1, beta2, "beta2 must be in [0, 1), got ", beta2);
  PAJAMA_CHECK_FIELD(eps > 0, eps, "eps must be positive, got ", eps);
  PAJAMA_CHECK_FIELD(weight_decay >= 0, weight_decay, "weight_decay must be >= 0, got ", weight_decay);
}

void ZeroConfig::validate() const {
  PAJAMA_CHECK_FIELD(stage >= 0 && stage <= 2, stage, "stage must be 0, 1 or 2 (ZeRO-3 is not supported), got ",
                     stage);
  PAJAMA_CHECK_FIELD(reduce_bucket_size > 0, reduce_bucket_size, "reduce_bucket_size must be positive, got ",
                     reduce_bucket_size);
  PAJAMA_CHECK_FIELD(allgather_bucket_size > 0, allgather_bucket_size,
                     "allgather_bucket_size must be positive, got ", allgather_bucket_size);
  PAJAMA_CHECK_FIELD(reduce_dtype == "fp32" || reduce_dtype == "bf16", reduce_dtype,
                     "reduce_dtype must be fp32 or bf16, got '", reduce_dtype, "'");
}

void CommConfig::validate() const {
  PAJAMA_CHECK_FIELD(timeout_s > 0, timeout_s, "timeout_s must be positive, got ", timeout_s);
  if (first_step_timeout_s < 0) {
    throw ConfigError({PAJAMA_FIELD(first_step_timeout_s), PAJAMA_FIELD(timeout_s)},
                      str("first_step_timeout_s must be >= 0 (0 = 3 x timeout_s), got ", first_step_timeout_s));
  }
}

}  // namespace pajama
