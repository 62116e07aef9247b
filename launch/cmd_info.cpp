// pajama info --config X.yaml [--set ...] [--ranks N] [--json]: size and cost of a
// configured model before renting a cluster; --json prints the same figures as one JSON
// object (bytes, not GiB) for scripts and tests.
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "launch/command.h"
#include "model/param_count.h"
#include "parallel/zero_optimizer.h"
#include "trainer/memory_plan.h"
#include "trainer/train_config.h"

namespace {

struct InfoOptions {
  std::string config;
  std::vector<std::string> overrides;
  int64_t ranks = 1;
  double device_memory_gib = 0;  // 0: no fit check
  bool json = false;
};

// train.dtype as the run would resolve it: auto is bf16 unless the run is pinned to the CPU.
std::string planned_dtype(const pajama::TrainConfig& cfg) {
  if (cfg.train.dtype != "auto") return cfg.train.dtype;
  return cfg.train.device == "cpu" ? "fp32" : "bf16";
}

bool planned_device_is_gpu(const pajama::TrainConfig& cfg) { return cfg.train.device != "cpu"; }

void print_checkpoint_plan(const pajama::TrainConfig& cfg, int64_t n, const std::string& dtype) {
  const pajama::CheckpointPlan ck = pajama::plan_checkpoint(cfg, n, dtype);
  const auto gib = [](int64_t b) { return pajama::format_gib(static_cast<double>(b)); };
  std::printf("checkpoint: %s each (model %s %s, optimizer %s: fp32 master + AdamW moments)\n",
              gib(ck.checkpoint_bytes).c_str(), gib(ck.model_bytes).c_str(), dtype.c_str(),
              gib(ck.optimizer_bytes).c_str());
  if (ck.kept > 0) {
    std::printf("  on disk with checkpoint.keep_last %" PRId64 ": %s%s\n", ck.kept,
                gib(ck.kept * ck.checkpoint_bytes).c_str(),
                cfg.checkpoint.keep_every > 0 ? " (plus every checkpoint.keep_every-th step)" : "");
  } else {
    std::printf("  on disk: every checkpoint is kept (checkpoint.keep_last 0)\n");
  }
  if (cfg.checkpoint.async) {
    std::printf("  async save snapshot, host memory%s: rank 0 %s, other ranks %s\n",
                planned_device_is_gpu(cfg) ? " (pinned)" : "", gib(ck.snapshot_rank0_bytes).c_str(),
                gib(ck.snapshot_rank_bytes).c_str());
  } else {
    std::printf("  saves write in the foreground (checkpoint.async false): no snapshot memory\n");
  }
}

void print_fit(const pajama::TrainConfig& cfg, int64_t n, const std::string& dtype, const pajama::MemoryPlan& plan,
               int64_t device) {
  const pajama::FitAdvice advice = pajama::advise_fit(cfg, n, dtype, device);
  std::printf("fits: %s (%s of %s)\n", advice.fits ? "yes" : "no",
              pajama::format_gib(static_cast<double>(plan.peak_bytes)).c_str(),
              pajama::format_gib(static_cast<double>(device)).c_str());
  if (!advice.reason.empty()) std::printf("  why: %s\n", advice.reason.c_str());
  for (const auto& r : advice.remedies) std::printf("  would fit with: %s\n", r.c_str());
}

// `device`: --device-memory in bytes, 0 for no fit check.
void print_json(const pajama::TrainConfig& cfg, int64_t ranks, const std::string& dtype, int64_t device) {
  const pajama::LlamaConfig& m = cfg.model.llama;
  const int64_t trainable = pajama::trainable_numel(cfg);
  const pajama::MemoryPlan plan = pajama::plan_memory(cfg, ranks, dtype);
  const pajama::CheckpointPlan ck = pajama::plan_checkpoint(cfg, ranks, dtype);
  nlohmann::ordered_json j;
  j["model"] = {{"preset", cfg.model.preset.empty() ? "custom" : cfg.model.preset},
                {"vocab_size", m.vocab_size},
                {"padded_vocab_size", m.padded_vocab_size()},
                {"dim", m.dim},
                {"n_layers", m.n_layers},
                {"n_heads", m.n_heads},
                {"n_kv_heads", m.kv_heads()},
                {"ffn_dim", m.hidden_ffn_dim()},
                {"tie_embeddings", m.tie_embeddings}};
  j["parameters"] = pajama::count_parameters(m);
  j["trainable_parameters"] = trainable;
  j["embedding_parameters"] = pajama::count_embedding_parameters(m);
  j["flops_per_token"] = pajama::flops_per_token(m, cfg.train.seq_len);
  nlohmann::ordered_json terms = nlohmann::ordered_json::array();
  for (const auto& t : plan.terms) terms.push_back({{"name", t.name}, {"bytes", t.bytes}, {"detail", t.detail}});
  j["memory"] = {{"ranks", ranks},
                 {"zero_stage", cfg.zero.stage},
                 {"dtype", dtype},
                 {"partition_numel", pajama::zero_partition_numel(trainable, ranks)},
                 {"terms", terms},
                 {"static_bytes", plan.static_bytes},
                 {"peak_bytes", plan.peak_bytes}};
  j["checkpoint"] = {{"model_bytes", ck.model_bytes},
                     {"optimizer_bytes", ck.optimizer_bytes},
                     {"checkpoint_bytes", ck.checkpoint_bytes},
                     {"kept", ck.kept},
                     {"snapshot_rank0_bytes", ck.snapshot_rank0_bytes},
                     {"snapshot_rank_bytes", ck.snapshot_rank_bytes}};
  if (device > 0) {
    const pajama::FitAdvice advice = pajama::advise_fit(cfg, ranks, dtype, device);
    j["fit"] = {{"device_bytes", device}, {"fits", advice.fits}, {"reason", advice.reason}, {"remedies", advice.remedies}};
  }
  std::printf("%s\n", j.dump().c_str());
}

void run_info(const InfoOptions& o) {
  PAJAMA_CHECK_AS(pajama::ConfigError, o.ranks >= 1, "--ranks must be >= 1, got ", o.ranks);
  PAJAMA_CHECK_AS(pajama::ConfigError, o.device_memory_gib >= 0, "--device-memory must be >= 0 GiB, got ",
                  o.device_memory_gib);
  const pajama::TrainConfig cfg = pajama::load_train_config(o.config, o.overrides);
  const auto device = static_cast<int64_t>(o.device_memory_gib * 1024.0 * 1024.0 * 1024.0);
  if (o.json) {
    print_json(cfg, o.ranks, planned_dtype(cfg), device);
    return;
  }
  const pajama::LlamaConfig& m = cfg.model.llama;
  const int64_t all = pajama::count_parameters(m), p = pajama::trainable_numel(cfg);
  const int64_t n = o.ranks;
  const int64_t part = pajama::zero_partition_numel(p, n);
  const double fpt = pajama::flops_per_token(m, cfg.train.seq_len);
  std::printf("model: %s (vocab %" PRId64 ", dim %" PRId64 ", layers %" PRId64 ", heads %" PRId64 "/%" PRId64
              " kv, ffn %" PRId64 ", %s head)\n",
              cfg.model.preset.empty() ? "custom" : cfg.model.preset.c_str(), m.vocab_size, m.dim, m.n_layers,
              m.n_heads, m.kv_heads(), m.hidden_ffn_dim(), m.tie_embeddings ? "tied" : "untied");
  std::printf("parameters: %" PRId64 "\n", all);
  if (p != all) {
    std::printf("trainable parameters: %" PRId64 " (train.trainable; %" PRId64 " frozen: weights only, no gradients or "
                "optimizer state)\n",
                p, all - p);
  }
  if (m.padded_vocab_size() != m.vocab_size) {
    std::printf("vocabulary rows: %" PRId64 " (vocab %" PRId64 " padded to a multiple of %" PRId64 ")\n",
                m.padded_vocab_size(), m.vocab_size, m.vocab_multiple_of);
  }
  std::printf("embedding parameters: %" PRId64 "\n", pajama::count_embedding_parameters(m));
  std::printf("flops per token: %.6e (seq_len %" PRId64 ", 6*non-embedding params + 12*layers*dim*seq)\n", fpt,
              cfg.train.seq_len);
  std::printf("flops per step: %.6e (global batch %" PRId64 " x %" PRId64 " tokens)\n",
              fpt * static_cast<double>(cfg.train.global_batch_size * cfg.train.seq_len),
              cfg.train.global_batch_size, cfg.train.seq_len);

  const std::string dtype = planned_dtype(cfg);
  const pajama::MemoryPlan plan = pajama::plan_memory(cfg, n, dtype);
  std::printf("memory per rank at %" PRId64 " rank(s): ZeRO-%" PRId64 ", %s parameters, reduce %s, micro-batch %" PRId64
              " x seq %" PRId64 ", activation checkpointing %s\n",
              n, cfg.zero.stage, dtype.c_str(), cfg.zero.reduce_dtype.c_str(), cfg.train.micro_batch_size,
              cfg.train.seq_len, cfg.train.activation_checkpointing.c_str());
  std::printf("  partition: %" PRId64 " elements per rank (%" PRId64 " padding in total)\n", part, part * n - p);
  for (const auto& t : plan.terms) {
    const std::string label = t.name + ":";
    std::printf("  %-24s %12s  (%s)\n", label.c_str(), pajama::format_gib(static_cast<double>(t.bytes)).c_str(),
                t.detail.c_str());
  }
  std::printf("peak memory per rank: %s\n", pajama::format_gib(static_cast<double>(plan.peak_bytes)).c_str());
  print_checkpoint_plan(cfg, n, dtype);
  if (device > 0) print_fit(cfg, n, dtype, plan, device);
}

void register_info(CLI::App& app) {
  auto opts = std::make_shared<InfoOptions>();
  auto* sub = app.add_subcommand("info", "Print a configured model's parameters, FLOPs per token and memory per rank");
  sub->add_option("--config,-c", opts->config, "YAML config")->required();
  sub->add_option("--set", opts->overrides, "Override a config key (repeatable)");
  sub->add_option("--ranks,-n", opts->ranks, "Data-parallel ranks for the memory plan");
  sub->add_option("--device-memory", opts->device_memory_gib,
                  "Device memory in GiB: print whether the plan fits and, if not, what would");
  sub->add_flag("--json", opts->json, "Print the figures as one JSON object (bytes) instead of text");
  sub->callback([opts] { run_info(*opts); });
}

}  // namespace

PAJAMA_COMMAND(info, register_info);
