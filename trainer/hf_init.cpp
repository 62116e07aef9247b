#include "trainer/hf_init.h"

#include "core/error.h"
#include "core/log.h"
#include "model/hf_checkpoint.h"

namespace pajama {

void init_from_hf(Llama& model, const std::filesystem::path& hf_dir) {
  const LlamaConfig hf = read_hf_config(hf_dir);
  const LlamaConfig& cfg = model->config();
  const std::string diff =
      shape_differences(hf, cfg, hf_dir.string() + " has", "the config has", /*include_vocab=*/false);
  PAJAMA_CHECK_AS(ConfigError, diff.empty(), "model.init_from: the released model's shape differs from the config:",
                  diff, "\nset the model keys to the released shape (only model.vocab_size may be larger)");
  PAJAMA_CHECK_AS(ConfigError, cfg.vocab_size >= hf.vocab_size, "model.vocab_size ", cfg.vocab_size,
                  " is smaller than the released vocabulary ", hf.vocab_size, " of ", hf_dir.string(),
                  "; shrinking a vocabulary is not supported");
  if (cfg.vocab_size == hf.vocab_size) {
    load_hf_weights(*model, hf_dir);
    return;
  }
  // Load into a model of the released shape, then copy with the vocabulary grown.
  LlamaConfig released = cfg;
  released.vocab_size = hf.vocab_size;
  Llama source(released);
  source->to(model->parameters().front().device(), model->parameters().front().scalar_type());
  load_hf_weights(*source, hf_dir);
  torch::NoGradGuard no_grad;
  auto src = source->named_parameters();
  for (auto& p : model->named_parameters()) {
    const torch::Tensor& s = src[p.key()];
    if (s.sizes() == p.value().sizes()) {
      p.value().copy_(s);
    } else {
      const int64_t old_rows = s.size(0);
      p.value().narrow(0, 0, old_rows).copy_(s);
      p.value().narrow(0, old_rows, p.value().size(0) - old_rows).copy_(s.mean(0, /*keepdim=*/true).expand({p.value().size(0) - old_rows, s.size(1)}));
    }
  }
  log_info("model.init_from: vocabulary grown from ", hf.vocab_size, " to ", cfg.vocab_size,
           " rows; new embedding and head rows start at the mean of the released rows");
}

}  // namespace pajama
