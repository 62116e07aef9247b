// Logits parity with transformers' LlamaForCausalLM (fp32, CPU), both directions, through
// tests/model/hf_parity.py run with $PAJAMA_PYTHON. Without a Python that imports
// transformers the test fails (never skips): parity is a feature, not an extra.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/wait.h>

#include <torch/torch.h>

#include "model/hf_checkpoint.h"
#include "model/llama.h"
#include "model/safetensors.h"
#include "test_util.h"

namespace pajama {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

constexpr double kTolerance = 1e-4;

using testing::CommandResult;
using testing::quote;

// "<python> <source>/tests/model/hf_parity.py", or a failure explaining what is missing.
std::string parity_script() {
  const char* py = std::getenv("PAJAMA_PYTHON");
  const char* src = std::getenv("PAJAMA_SOURCE_DIR");
  if (py == nullptr || *py == '\0' || src == nullptr || *src == '\0') {
    ADD_FAILURE() << "PAJAMA_PYTHON / PAJAMA_SOURCE_DIR are not set: run through ctest, configured with "
                     "-DPAJAMA_PYTHON=<python with torch, transformers, safetensors> (scripts/setup.sh makes one)";
    return "";
  }
  const CommandResult probe = testing::run_command(quote(py) + " -c 'import transformers, safetensors, torch'");
  if (probe.exit_code != 0) {
    ADD_FAILURE() << "PAJAMA_PYTHON=" << py << " cannot import transformers/safetensors/torch:\n" << probe.output;
    return "";
  }
  return quote(py) + " " + quote((fs::path(src) / "tests/model/hf_parity.py").string());
}

TEST(HfParity, HuggingFaceModelLoadsAndMatchesLogits) {
  const std::string script = parity_script();
  ASSERT_FALSE(script.empty());
  TempDir dir("parity_from_hf");
  const CommandResult made = testing::run_command(script + " make " + quote(dir.path().string()));
  ASSERT_EQ(made.exit_code, 0) << made.output;

  const LlamaConfig cfg = read_hf_config(dir.path() / "hf");
  EXPECT_EQ(cfg.kv_heads(), 2);
  EXPECT_EQ(cfg.n_heads, 4);
  EXPECT_DOUBLE_EQ(cfg.rope_theta, 50000.0);
  EXPECT_DOUBLE_EQ(cfg.norm_eps, 1e-6);
  EXPECT_FALSE(cfg.tie_embeddings);
  Llama model(cfg);
  load_hf_weights(model, dir.path() / "hf");

  SafetensorsReader ref(dir.path() / "hf_logits.safetensors");
  const torch::Tensor tokens = ref.tensor("tokens");
  const torch::Tensor expected = ref.tensor("logits");
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = model->forward(tokens);
  ASSERT_EQ(logits.sizes(), expected.sizes());
  const double diff = testing::max_abs_diff(logits, expected);
  std::printf("HF -> pajama: max |logits diff| %.3e over %s (|logits| max %.3f)\n", diff,
              c10::str(logits.sizes()).c_str(), expected.abs().max().item<double>());
  EXPECT_LT(diff, kTolerance);
}

// A pajama model with non-trivial weights (norm gains away from 1) in `dir`/model, its
// logits on fixed tokens in `dir`/logits.safetensors.
void export_with_logits(const LlamaConfig& cfg, uint64_t seed, const fs::path& dir) {
  Llama model(cfg);
  model->init_weights(seed);
  {
    torch::NoGradGuard ng;
    torch::manual_seed(static_cast<int64_t>(seed));
    for (auto& p : model->parameters()) {
      if (p.dim() == 1) {
        p.copy_(1 + 0.2 * torch::randn_like(p));
      } else {
        p.mul_(0.15 / cfg.init_std);  // wider than init so every op shapes the logits
      }
    }
  }
  save_hf(model, dir / "model");
  const torch::Tensor tokens = torch::randint(0, cfg.vocab_size, {3, 17}, torch::kInt64);
  torch::NoGradGuard ng;
  save_safetensors(dir / "logits.safetensors", {{"tokens", tokens}, {"logits", model->forward(tokens)}});
}

TEST(HfParity, PajamaExportLoadsInTransformersAndMatchesLogits) {
  const std::string script = parity_script();
  ASSERT_FALSE(script.empty());
  LlamaConfig cfg{.vocab_size = 97, .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .ffn_dim = 96,
                  .norm_eps = 1e-6, .rope_theta = 50000.0, .max_seq_len = 64};
  TempDir untied("parity_to_hf_untied");
  export_with_logits(cfg, 21, untied.path());

  cfg.tie_embeddings = true;
  cfg.n_kv_heads = 4;
  cfg.rope_theta = 10000.0;
  TempDir tied("parity_to_hf_tied");
  export_with_logits(cfg, 22, tied.path());

  const CommandResult checked = testing::run_command(script + " check " + quote(untied.path().string()) + " " + quote(tied.path().string()));
  std::printf("%s", checked.output.c_str());
  EXPECT_EQ(checked.exit_code, 0) << checked.output;
}

}  // namespace
}  // namespace pajama
