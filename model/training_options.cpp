#include "model/training_options.h"

#include "core/error.h"

namespace pajama {

ActivationCheckpointing parse_activation_checkpointing(const std::string& name) {
  if (name == "none") return ActivationCheckpointing::kNone;
  if (name == "full") return ActivationCheckpointing::kFull;
  if (name == "selective") return ActivationCheckpointing::kSelective;
  throw ConfigError({ConfigField{"activation_checkpointing", &name}},
                    str("activation_checkpointing: unknown value '", name, "'; valid values: none, full, selective"));
}

std::string to_string(ActivationCheckpointing mode) {
  switch (mode) {
    case ActivationCheckpointing::kNone:
      return "none";
    case ActivationCheckpointing::kFull:
      return "full";
    case ActivationCheckpointing::kSelective:
      return "selective";
  }
  PAJAMA_FAIL_AS(Error, "invalid ActivationCheckpointing value ", static_cast<int>(mode));
}

void TrainingOptions::validate() const {
  (void)to_string(checkpointing);  // rejects an out-of-range enum value
  PAJAMA_CHECK_FIELD(loss_chunk_tokens > 0, loss_chunk_tokens, "loss_chunk_tokens must be positive, got ",
                     loss_chunk_tokens);
  PAJAMA_CHECK_FIELD(z_loss >= 0, z_loss, "z_loss must be >= 0, got ", z_loss);
}

}  // namespace pajama
