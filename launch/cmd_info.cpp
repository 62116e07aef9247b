// pajama info --config X.yaml [--set ...] [--ranks N]: size and cost of a configured
// model before renting a cluster.
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "launch/command.h"
#include "model/param_count.h"
#include "parallel/zero_optimizer.h"
#include "trainer/train_config.h"

namespace {

struct InfoOptions {
  std::string config;
  std::vector<std::string> overrides;
  int64_t ranks = 1;
};

std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

void run_info(const InfoOptions& o) {
  PAJAMA_CHECK_AS(pajama::ConfigError, o.ranks >= 1, "--ranks must be >= 1, got ", o.ranks);
  const pajama::TrainConfig cfg = pajama::load_train_config(o.config, o.overrides);
  const pajama::LlamaConfig& m = cfg.model.llama;
  const int64_t p = pajama::count_parameters(m);
  const int64_t n = o.ranks;
  const int64_t part = pajama::zero_partition_numel(p, n);
  const double fpt = pajama::flops_per_token(m, cfg.train.seq_len);
  std::printf("model: %s (vocab %" PRId64 ", dim %" PRId64 ", layers %" PRId64 ", heads %" PRId64 "/%" PRId64
              " kv, ffn %" PRId64 ", %s head)\n",
              cfg.model.preset.empty() ? "custom" : cfg.model.preset.c_str(), m.vocab_size, m.dim, m.n_layers,
              m.n_heads, m.kv_heads(), m.hidden_ffn_dim(), m.tie_embeddings ? "tied" : "untied");
  std::printf("parameters: %" PRId64 "\n", p);
  std::printf("embedding parameters: %" PRId64 "\n", pajama::count_embedding_parameters(m));
  std::printf("flops per token: %.6e (seq_len %" PRId64 ", 6*non-embedding params + 12*layers*dim*seq)\n", fpt,
              cfg.train.seq_len);
  std::printf("flops per step: %.6e (global batch %" PRId64 " x %" PRId64 " tokens)\n",
              fpt * static_cast<double>(cfg.train.global_batch_size * cfg.train.seq_len),
              cfg.train.global_batch_size, cfg.train.seq_len);
  std::printf("ZeRO-2 memory per rank at %" PRId64 " rank(s), bf16 params/grads, fp32 master + AdamW:\n", n);
  std::printf("  partition: %" PRId64 " elements per rank (%" PRId64 " padding in total)\n", part, part * n - p);
  std::printf("  weights (bf16, replicated):   %s\n", gib(2.0 * static_cast<double>(p)).c_str());
  std::printf("  gradients (bf16, partition):  %s\n", gib(2.0 * static_cast<double>(part)).c_str());
  std::printf("  master weights (fp32):        %s\n", gib(4.0 * static_cast<double>(part)).c_str());
  std::printf("  AdamW m and v (fp32):         %s\n", gib(8.0 * static_cast<double>(part)).c_str());
  std::printf("  total (without activations and buckets): %s\n",
              gib(2.0 * static_cast<double>(p) + 14.0 * static_cast<double>(part)).c_str());
}

void register_info(CLI::App& app) {
  auto opts = std::make_shared<InfoOptions>();
  auto* sub = app.add_subcommand("info", "Print a configured model's parameters, FLOPs per token and memory per rank");
  sub->add_option("--config,-c", opts->config, "YAML config")->required();
  sub->add_option("--set", opts->overrides, "Override a config key (repeatable)");
  sub->add_option("--ranks,-n", opts->ranks, "Data-parallel ranks for the ZeRO-2 memory estimate");
  sub->callback([opts] { run_info(*opts); });
}

}  // namespace

PAJAMA_COMMAND(info, register_info);
