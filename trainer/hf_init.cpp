#include "trainer/hf_init.h"

#include "core/error.h"
#include "core/log.h"
#include "model/hf_checkpoint.h"
#include "model/vocab_resize.h"

namespace pajama {

void init_from_hf(Llama& model, const std::filesystem::path& hf_dir, const std::string& new_rows_rule,
                  uint64_t seed) {
  const LlamaConfig hf = read_hf_config(hf_dir);
  const LlamaConfig& cfg = model->config();
  const std::string diff =
      shape_differences(hf, cfg, hf_dir.string() + " has", "the config has", "model.", /*include_vocab=*/false);
  PAJAMA_CHECK_AS(ConfigError, diff.empty(), "model.init_from: the released model's shape differs from the config:",
                  diff, "\nset the model keys to the released shape (only model.vocab_size may be larger)");
  PAJAMA_CHECK_AS(ConfigError, cfg.vocab_size >= hf.vocab_size, "model.vocab_size ", cfg.vocab_size,
                  " is smaller than the released vocabulary ", hf.vocab_size, " of ", hf_dir.string(),
                  "; shrinking a vocabulary is not supported");
  // The released rows go straight into the first rows of the model's parameters.
  load_hf_weights(model, hf_dir, hf.vocab_size);
  for (auto& p : model->named_parameters()) {
    if (is_vocab_parameter(p.key())) init_new_vocab_rows(p.value(), hf.vocab_size, cfg.vocab_size, new_rows_rule, seed);
  }
  if (cfg.vocab_size > hf.vocab_size) {
    log_info("model.init_from: vocabulary grown from ", hf.vocab_size, " to ", cfg.vocab_size,
             " rows; new embedding and head rows start at the ",
             new_rows_rule == "mean" ? "mean of the released rows" : "mean of the released rows plus noise",
             " (model.new_vocab_init: ", new_rows_rule, ")");
  }
  if (cfg.padded_vocab_size() > cfg.vocab_size) {
    log_info("model.vocab_multiple_of ", cfg.vocab_multiple_of, ": ", cfg.padded_vocab_size() - cfg.vocab_size,
             " padding rows (zero, masked in the loss, dropped at export)");
  }
}

}  // namespace pajama
