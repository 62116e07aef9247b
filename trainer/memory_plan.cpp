#include "trainer/memory_plan.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "model/memory_estimate.h"
#include "model/param_count.h"
#include "trainer/trainable.h"
#include "parallel/zero_optimizer.h"

namespace pajama {
namespace {

// Stage 2 keeps at most two bucket buffers alive (parallel/zero_optimizer.h); the
// backends reduce in place in them.
constexpr int64_t kOpenBuckets = 2;

std::string elements(int64_t n) {
  char buf[32];
  if (n >= 1'000'000'000) {
    std::snprintf(buf, sizeof buf, "%.2fB", static_cast<double>(n) / 1e9);
  } else if (n >= 1'000'000) {
    std::snprintf(buf, sizeof buf, "%.1fM", static_cast<double>(n) / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  }
  return buf;
}

}  // namespace

int64_t trainable_numel(const TrainConfig& cfg) {
  const std::vector<ParameterShape> shapes = parameter_shapes(cfg.model.llama);
  std::vector<std::string> names;
  for (const auto& s : shapes) names.push_back(s.name);
  const std::vector<std::string> chosen = select_trainable(names, cfg.train.trainable);
  int64_t n = 0;
  for (const auto& s : shapes) {
    if (std::find(chosen.begin(), chosen.end(), s.name) != chosen.end()) n += s.numel();
  }
  return n;
}

std::string format_gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

namespace {

// The sizes the plan's terms are made of, for one rank.
struct PlanSizes {
  int64_t e = 4;        // bytes per parameter and activation element (dtype)
  int64_t rb = 4;       // bytes per reduced gradient element (zero.reduce_dtype)
  int64_t p = 0;        // trainable parameters: the optimizer's flat buffer holds these
  int64_t frozen = 0;   // the others (train.trainable): weights alone
  int64_t part = 0;     // this rank's partition
  int64_t padded = 0;   // the flat buffer, padded to split evenly
  int64_t own = 0;      // elements this rank updates
  bool buckets = false; // stage 2 on several ranks: gradients reduced through buckets
};

void add_term(MemoryPlan& plan, const std::string& name, const std::string& detail, int64_t bytes) {
  plan.terms.push_back(MemoryTerm{name, detail, bytes});
}

// What is held all step: weights, gradients, master weights, optimizer state.
void add_static_terms(MemoryPlan& plan, const PlanSizes& z) {
  const std::string& dtype = plan.dtype;
  add_term(plan, "weights",
           z.frozen == 0 ? str(dtype, ", replicated, ", elements(z.padded), " elements")
                         : str(dtype, ", replicated, ", elements(z.padded), " trainable + ", elements(z.frozen),
                               " frozen elements"),
           z.e * (z.padded + z.frozen));
  plan.weights_bytes = z.e * (z.padded + z.frozen);
  add_term(plan, "gradients",
           z.buckets ? str("fp32 partition of ", elements(z.part)) : str("fp32, all ", elements(z.padded), " elements"),
           4 * (z.buckets ? z.part : z.padded));
  add_term(plan, "master weights",
           z.e == 4 ? std::string("none: fp32 parameters are their own master") : str("fp32, ", elements(z.own), " elements"),
           z.e == 4 ? 0 : 4 * z.own);
  add_term(plan, "optimizer state", str("AdamW exp_avg + exp_avg_sq, fp32, ", elements(z.own), " elements each"),
           8 * z.own);
}

// Transients of the backward phase: activations (their estimate includes the
// parameter-sized gradients on their way to the fp32 accumulator), the loss, buckets and,
// on CPU ranks, MPI's temporaries.
void add_backward_terms(MemoryPlan& plan, const TrainConfig& cfg, const PlanSizes& z) {
  const LlamaConfig& m = cfg.model.llama;
  const TrainingOptions opts = training_options(cfg.train);
  const ActivationMemory act = estimate_activation_memory(m, opts, cfg.train.micro_batch_size, cfg.train.seq_len, z.e);
  add_term(plan, "activations",
           str("micro-batch ", cfg.train.micro_batch_size, " x ", cfg.train.seq_len, " tokens, checkpointing ",
               to_string(opts.checkpointing), "; saved ", format_gib(static_cast<double>(act.saved_bytes)),
               ", backward transient ", format_gib(static_cast<double>(act.backward_peak_bytes))),
           act.saved_bytes + act.backward_peak_bytes);
  add_term(plan, "loss chunk",
           str(std::min(opts.loss_chunk_tokens, cfg.train.micro_batch_size * cfg.train.seq_len), " tokens x ",
               m.vocab_size, " vocabulary, beyond what backward holds"),
           std::max<int64_t>(0, act.loss_bytes - act.backward_peak_bytes));
  const int64_t bucket = z.buckets ? zero_bucket_numel(cfg.zero.reduce_bucket_size, z.p, plan.ranks) : 0;
  add_term(plan, "communication buckets",
           z.buckets ? str(kOpenBuckets, " x ", elements(bucket), " elements in ", cfg.zero.reduce_dtype)
                     : std::string("none: gradients are reduced from the fp32 buffer in place"),
           z.buckets ? kOpenBuckets * bucket * z.rb : 0);
  // MPI (CPU ranks): OpenMPI's non-blocking collectives stage a message in temporaries of
  // about twice its size; the largest message is one bucket (stage 2) or one all-reduce
  // chunk of reduce_bucket_size elements (stages 0/1). NCCL reduces in place.
  if (plan.ranks > 1 && cfg.train.device == "cpu") {
    const int64_t message =
        z.buckets ? bucket * z.rb
                  : std::min(zero_bucket_numel(cfg.zero.reduce_bucket_size, z.p, plan.ranks) * z.rb, 4 * z.padded);
    add_term(plan, "MPI temporaries", str("2 x the largest message (", format_gib(static_cast<double>(message)), ")"),
             2 * message);
  }
}

}  // namespace

MemoryPlan plan_memory(const TrainConfig& cfg, int64_t ranks, const std::string& dtype) {
  PAJAMA_CHECK_AS(ConfigError, ranks >= 1, "the memory plan needs at least one rank, got ", ranks);
  PAJAMA_CHECK_AS(ConfigError, dtype == "fp32" || dtype == "bf16", "the memory plan needs dtype fp32 or bf16, got '",
                  dtype, "'");
  PlanSizes z;
  z.e = dtype == "bf16" ? 2 : 4;
  z.rb = cfg.zero.reduce_dtype == "bf16" ? 2 : 4;
  z.p = trainable_numel(cfg);
  z.frozen = count_parameters(cfg.model.llama) - z.p;
  z.part = zero_partition_numel(z.p, ranks);
  z.padded = z.part * ranks;
  z.own = cfg.zero.stage == 0 ? z.padded : z.part;
  z.buckets = cfg.zero.stage == 2 && ranks > 1;

  MemoryPlan plan;
  plan.ranks = ranks;
  plan.stage = cfg.zero.stage;
  plan.dtype = dtype;
  add_static_terms(plan, z);
  for (const auto& t : plan.terms) plan.static_bytes += t.bytes;
  const size_t first_transient = plan.terms.size();
  add_backward_terms(plan, cfg, z);
  int64_t backward = 0;
  for (size_t i = first_transient; i < plan.terms.size(); ++i) backward += plan.terms[i].bytes;
  // The optimizer step runs after the activations are freed; its temporaries (one
  // 4M-element chunk of the norm, scalars) are small beside them.
  plan.peak_bytes = plan.static_bytes + backward;
  return plan;
}

FitAdvice advise_fit(const TrainConfig& cfg, int64_t ranks, const std::string& dtype, int64_t device_bytes) {
  FitAdvice advice;
  const MemoryPlan plan = plan_memory(cfg, ranks, dtype);
  advice.fits = plan.peak_bytes <= device_bytes;
  if (advice.fits) return advice;
  if (plan.weights_bytes >= device_bytes) {
    advice.reason = (str("the weights alone (", format_gib(static_cast<double>(plan.weights_bytes)),
                                  ") exceed the device: needs parameter sharding (ZeRO-3) or tensor parallelism, "
                                  "which pajama does not implement"));
    return advice;
  }
  auto try_fit = [&](TrainConfig c, int64_t n, const std::string& what) {
    const MemoryPlan alt = plan_memory(c, n, dtype);
    if (alt.peak_bytes <= device_bytes) {
      advice.remedies.push_back(str(what, " (peak ", format_gib(static_cast<double>(alt.peak_bytes)), ")"));
      return true;
    }
    return false;
  };
  if (cfg.train.activation_checkpointing != "full") {
    TrainConfig c = cfg;
    c.train.activation_checkpointing = "full";
    try_fit(c, ranks, "train.activation_checkpointing: full");
  }
  if (cfg.train.micro_batch_size > 1) {
    TrainConfig c = cfg;
    c.train.micro_batch_size = 1;
    if (!try_fit(c, ranks, "train.micro_batch_size: 1")) {
      c.train.activation_checkpointing = "full";
      try_fit(c, ranks, "train.micro_batch_size: 1 with train.activation_checkpointing: full");
    }
  }
  if (cfg.zero.stage < 2) {
    TrainConfig c = cfg;
    c.zero.stage = 2;
    try_fit(c, ranks, "parallel.zero_stage: 2");
  }
  for (int64_t n = ranks * 2; n <= 4096; n *= 2) {
    if (try_fit(cfg, n, str(n, " data-parallel ranks"))) break;
  }
  if (advice.remedies.empty()) {
    advice.reason = "no single change fits: the weights plus their optimizer state need parameter sharding (ZeRO-3) "
                    "or tensor parallelism, or combine these changes with a shorter train.seq_len";
  }
  return advice;
}

CheckpointPlan plan_checkpoint(const TrainConfig& cfg, int64_t ranks, const std::string& dtype) {
  PAJAMA_CHECK_AS(ConfigError, ranks >= 1, "the checkpoint plan needs at least one rank, got ", ranks);
  const int64_t all = count_parameters(cfg.model.llama), p = trainable_numel(cfg);
  const int64_t e = dtype == "bf16" ? 2 : 4;
  // master + exp_avg + exp_avg_sq, fp32, of the trainable parameters. Stage 0 replicates the optimizer: every rank
  // writes all of it. Otherwise each rank writes its partition, at most `part` elements.
  const int64_t per_element = 12;
  const bool replicated = cfg.zero.stage == 0 || ranks == 1;
  const int64_t own = replicated ? p : zero_partition_numel(p, ranks);
  CheckpointPlan plan;
  plan.model_bytes = e * all;
  plan.optimizer_bytes = per_element * p * (cfg.zero.stage == 0 ? ranks : 1);
  plan.checkpoint_bytes = plan.model_bytes + plan.optimizer_bytes;
  plan.kept = cfg.checkpoint.keep_last;
  if (cfg.checkpoint.async) {
    plan.snapshot_rank0_bytes = plan.model_bytes + per_element * own;
    plan.snapshot_rank_bytes = ranks > 1 ? per_element * own : 0;
  }
  return plan;
}

}  // namespace pajama
