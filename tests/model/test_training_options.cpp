// Llama's training options: activation checkpointing (full: bitwise equal to none on the CPU,
// gradients through the ordinary AccumulateGrad path; selective: equal to rounding), the
// chunked loss inside Llama::loss, option parsing and validation, and the shape of the
// activation-memory estimate (its numbers are checked against measurement by
// bench/model_memory_bench, not here).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <torch/torch.h>

#include "core/error.h"
#include "model/checkpoint.h"
#include "model/llama.h"
#include "model/memory_estimate.h"
#include "model/training_options.h"
#include "test_util.h"

namespace pajama {
namespace {

using testing::max_abs_diff;

LlamaConfig gqa_config(bool tied) { return testing::small_gqa_config(3, tied); }

struct StepResult {
  torch::Tensor loss;
  std::map<std::string, torch::Tensor> grads;  // undefined where a parameter got none
};

// One forward + backward of Llama::loss from the same init and batch.
StepResult run_step(const LlamaConfig& cfg, ActivationCheckpointing mode, const std::vector<std::string>& frozen = {},
                    torch::ScalarType dtype = torch::kFloat32, int64_t chunk = 7, double z_loss = 1e-3) {
  Llama m(cfg);
  m->init_weights(17);
  m->to(dtype);
  for (const auto& name : frozen) m->named_parameters()[name].requires_grad_(false);
  TrainingOptions opts;
  opts.checkpointing = mode;
  opts.loss_chunk_tokens = chunk;
  opts.z_loss = z_loss;
  m->set_training_options(opts);
  torch::manual_seed(4);
  const torch::Tensor tokens = torch::randint(0, cfg.vocab_size, {3, 10}, torch::kInt64);
  const torch::Tensor targets = torch::randint(0, cfg.vocab_size, {3, 10}, torch::kInt64);
  StepResult r;
  r.loss = m->loss(tokens, targets);
  (r.loss * 0.5).backward();
  for (const auto& p : m->named_parameters()) r.grads[p.key()] = p.value().grad();
  return r;
}

TEST(ActivationCheckpointing, FullIsBitwiseEqualToNone) {
  for (bool tied : {false, true}) {
    const LlamaConfig cfg = gqa_config(tied);
    const StepResult none = run_step(cfg, ActivationCheckpointing::kNone);
    const StepResult full = run_step(cfg, ActivationCheckpointing::kFull);
    EXPECT_TRUE(torch::equal(none.loss, full.loss)) << "tied " << tied;
    ASSERT_EQ(none.grads.size(), full.grads.size());
    for (const auto& [name, g] : none.grads) {
      ASSERT_TRUE(g.defined()) << name;
      ASSERT_TRUE(full.grads.at(name).defined()) << name << " tied " << tied;
      EXPECT_TRUE(torch::equal(g, full.grads.at(name)))
          << name << " tied " << tied << " max diff " << max_abs_diff(g, full.grads.at(name));
    }
  }
}

TEST(ActivationCheckpointing, SelectiveMatchesNone) {
  for (bool tied : {false, true}) {
    const LlamaConfig cfg = gqa_config(tied);
    const StepResult none = run_step(cfg, ActivationCheckpointing::kNone);
    const StepResult sel = run_step(cfg, ActivationCheckpointing::kSelective);
    EXPECT_NEAR(sel.loss.item<double>(), none.loss.item<double>(), 1e-6 * none.loss.abs().item<double>());
    for (const auto& [name, g] : none.grads) {
      ASSERT_TRUE(sel.grads.at(name).defined()) << name;
      const double scale = g.abs().max().item<double>();
      EXPECT_LE(max_abs_diff(g, sel.grads.at(name)), 1e-6 * scale) << name << " tied " << tied;
    }
  }
}

TEST(ActivationCheckpointing, FrozenParametersGetNoGradient) {
  const LlamaConfig cfg = gqa_config(false);
  const std::vector<std::string> frozen = {"model.layers.0.self_attn.q_proj.weight",
                                           "model.layers.1.mlp.up_proj.weight",
                                           "model.layers.2.input_layernorm.weight", "model.embed_tokens.weight"};
  const StepResult none = run_step(cfg, ActivationCheckpointing::kNone, frozen);
  for (auto mode : {ActivationCheckpointing::kFull, ActivationCheckpointing::kSelective}) {
    const StepResult r = run_step(cfg, mode, frozen);
    for (const auto& [name, g] : none.grads) {
      const bool is_frozen = std::find(frozen.begin(), frozen.end(), name) != frozen.end();
      EXPECT_EQ(r.grads.at(name).defined(), !is_frozen) << name << " " << to_string(mode);
      if (is_frozen || !g.defined()) continue;
      if (mode == ActivationCheckpointing::kFull) {
        EXPECT_TRUE(torch::equal(g, r.grads.at(name))) << name;
      } else {
        EXPECT_LE(max_abs_diff(g, r.grads.at(name)), 1e-6 * g.abs().max().item<double>()) << name;
      }
    }
  }
}

// Counts post-accumulate-grad hook calls, the way the ZeRO optimizer's hooks see backward.
struct CountingHook : torch::autograd::PostAccumulateGradHook {
  explicit CountingHook(int* c) : count(c) {}
  void operator()(const torch::autograd::Variable&) override { ++*count; }
  int* count;
};

TEST(ActivationCheckpointing, PostAccumulateGradHooksFireOncePerParameter) {
  for (auto mode : {ActivationCheckpointing::kNone, ActivationCheckpointing::kFull, ActivationCheckpointing::kSelective}) {
    for (bool tied : {false, true}) {
      Llama m(gqa_config(tied));
      m->init_weights(3);
      TrainingOptions opts;
      opts.checkpointing = mode;
      m->set_training_options(opts);
      auto params = m->named_parameters();
      std::map<std::string, int> counts;
      for (auto& p : params) counts[p.key()] = 0;
      for (auto& p : params) {
        torch::autograd::impl::set_post_acc_grad_hooks(p.value(), std::make_unique<CountingHook>(&counts[p.key()]));
      }
      const torch::Tensor tokens = torch::randint(0, 37, {2, 8}, torch::kInt64);
      for (int step = 1; step <= 2; ++step) {  // a second backward accumulates into existing .grad
        m->loss(tokens, tokens).backward();
        for (const auto& [name, c] : counts) {
          EXPECT_EQ(c, step) << name << " " << to_string(mode) << " tied " << tied;
        }
      }
      for (auto& p : params) torch::autograd::impl::set_post_acc_grad_hooks(p.value(), nullptr);
    }
  }
}

TEST(ActivationCheckpointing, EvalAndBf16) {
  const LlamaConfig cfg = gqa_config(true);
  Llama m(cfg);
  m->init_weights(5);
  const torch::Tensor tokens = torch::randint(0, 37, {2, 9}, torch::kInt64);
  torch::Tensor reference;
  {
    torch::NoGradGuard ng;
    reference = m->loss(tokens, tokens);
  }
  for (auto mode : {ActivationCheckpointing::kFull, ActivationCheckpointing::kSelective}) {
    TrainingOptions opts;
    opts.checkpointing = mode;
    m->set_training_options(opts);
    torch::NoGradGuard ng;  // the evaluator's path: no graph, plain blocks
    EXPECT_TRUE(torch::equal(m->loss(tokens, tokens), reference)) << to_string(mode);
  }
  // bf16 parameters: every mode trains, bf16 gradients, losses agree.
  const StepResult none = run_step(cfg, ActivationCheckpointing::kNone, {}, torch::kBFloat16);
  for (auto mode : {ActivationCheckpointing::kFull, ActivationCheckpointing::kSelective}) {
    const StepResult r = run_step(cfg, mode, {}, torch::kBFloat16);
    EXPECT_EQ(r.loss.scalar_type(), torch::kFloat32);
    EXPECT_NEAR(r.loss.item<double>(), none.loss.item<double>(), 1e-2) << to_string(mode);
    for (const auto& [name, g] : none.grads) {
      EXPECT_EQ(r.grads.at(name).scalar_type(), torch::kBFloat16) << name;
      EXPECT_LE(max_abs_diff(g, r.grads.at(name)), 0.05 * g.abs().max().item<double>() + 1e-6) << name;
    }
  }
}

TEST(Checkpoint, GenericFunctionOfOneTensor) {
  // checkpoint() on its own: value, input gradient, parameter gradient, and the plain
  // path without grad mode.
  torch::manual_seed(6);
  const torch::Tensor w = torch::randn({5, 5}).requires_grad_();
  auto fn = [&](const torch::Tensor& x) { return torch::tanh(torch::matmul(x, w)).square(); };
  torch::Tensor x1 = torch::randn({3, 5}).requires_grad_();
  torch::Tensor x2 = x1.detach().clone().requires_grad_();
  const torch::Tensor y1 = fn(x1);
  y1.sum().backward();
  const torch::Tensor gw1 = w.grad().clone();
  w.mutable_grad() = torch::Tensor();
  const torch::Tensor y2 = checkpoint(fn, x2, {w});
  EXPECT_TRUE(y2.requires_grad());
  EXPECT_TRUE(torch::equal(y1, y2));
  y2.sum().backward();
  EXPECT_TRUE(torch::equal(x1.grad(), x2.grad()));
  EXPECT_TRUE(torch::equal(w.grad(), gw1));
  torch::NoGradGuard ng;
  EXPECT_FALSE(checkpoint(fn, x2, {w}).requires_grad());
}

// ---- Llama::loss with the chunked loss --------------------------------------------------------

TEST(LlamaLoss, ChunkSizeDoesNotChangeTheLossOrGradients) {
  for (bool tied : {false, true}) {
    const LlamaConfig cfg = gqa_config(tied);
    const StepResult one = run_step(cfg, ActivationCheckpointing::kNone, {}, torch::kFloat32, /*chunk=*/1, 0.0);
    for (int64_t chunk : {int64_t{8}, int64_t{30}, int64_t{1024}}) {
      const StepResult r = run_step(cfg, ActivationCheckpointing::kNone, {}, torch::kFloat32, chunk, 0.0);
      EXPECT_NEAR(r.loss.item<double>(), one.loss.item<double>(), 1e-6);
      for (const auto& [name, g] : one.grads) {
        EXPECT_LE(max_abs_diff(g, r.grads.at(name)), 1e-6 * g.abs().max().item<double>()) << name;
      }
    }
  }
}

TEST(LlamaLoss, ZLossAddsMeanSquaredLogSumExp) {
  Llama m(gqa_config(false));
  m->init_weights(8);
  const torch::Tensor tokens = torch::randint(0, 37, {2, 9}, torch::kInt64);
  const torch::Tensor targets = torch::randint(0, 37, {2, 9}, torch::kInt64);
  torch::NoGradGuard ng;
  const torch::Tensor logits = m->forward(tokens).view({-1, 37}).to(torch::kFloat64);
  const double ce = torch::nll_loss(torch::log_softmax(logits, 1), targets.view(-1)).item<double>();
  const double lse2 = torch::logsumexp(logits, 1).square().mean().item<double>();
  EXPECT_NEAR(m->loss(tokens, targets).item<double>(), ce, 1e-5);
  TrainingOptions opts;
  opts.z_loss = 0.5;
  m->set_training_options(opts);
  EXPECT_NEAR(m->loss(tokens, targets).item<double>(), ce + 0.5 * lse2, 1e-5);
}

// ---- TrainingOptions ----------------------------------------------------------------------------

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// The field a ConfigError is about: its name and whether it points at `member`.
std::string field_of(const std::function<void()>& f, const void* member) {
  try {
    f();
  } catch (const ConfigError& e) {
    if (e.fields().empty()) return "(no field)";
    return e.fields().front().name + (e.fields().front().value == member ? "" : " (another address)");
  }
  return "";
}

TEST(TrainingOptions, ParseAndValidate) {
  EXPECT_EQ(parse_activation_checkpointing("none"), ActivationCheckpointing::kNone);
  EXPECT_EQ(parse_activation_checkpointing("full"), ActivationCheckpointing::kFull);
  EXPECT_EQ(parse_activation_checkpointing("selective"), ActivationCheckpointing::kSelective);
  for (auto mode : {ActivationCheckpointing::kNone, ActivationCheckpointing::kFull, ActivationCheckpointing::kSelective}) {
    EXPECT_EQ(parse_activation_checkpointing(to_string(mode)), mode);
  }
  const std::string name = "Full";
  const std::string bad = error_of([&] { parse_activation_checkpointing(name); });
  EXPECT_NE(bad.find("none, full, selective"), std::string::npos) << bad;
  EXPECT_EQ(field_of([&] { parse_activation_checkpointing(name); }, &name), "activation_checkpointing");

  TrainingOptions ok;
  EXPECT_EQ(error_of([&] { ok.validate(); }), "");
  TrainingOptions o;
  o.loss_chunk_tokens = 0;
  EXPECT_EQ(field_of([&] { o.validate(); }, &o.loss_chunk_tokens), "loss_chunk_tokens");
  EXPECT_NE(error_of([&] { o.validate(); }).find("loss_chunk_tokens must be positive"), std::string::npos);
  o = TrainingOptions{};
  o.z_loss = -1e-4;
  EXPECT_EQ(field_of([&] { o.validate(); }, &o.z_loss), "z_loss");
  Llama m(gqa_config(false));
  EXPECT_THROW(m->set_training_options(o), ConfigError);
  EXPECT_EQ(m->training_options().z_loss, 0.0);
}

// ---- activation-memory estimate ----------------------------------------------------------------

TEST(MemoryEstimate, OrdersModesAndScalesWithTokens) {
  const LlamaConfig cfg = llama_preset("125m");
  auto est = [&](ActivationCheckpointing mode, int64_t b, int64_t t, int64_t bytes = 4) {
    TrainingOptions o;
    o.checkpointing = mode;
    return estimate_activation_memory(cfg, o, b, t, bytes);
  };
  const auto none = est(ActivationCheckpointing::kNone, 4, 256);
  const auto sel = est(ActivationCheckpointing::kSelective, 4, 256);
  const auto full = est(ActivationCheckpointing::kFull, 4, 256);
  EXPECT_GT(none.saved_bytes, sel.saved_bytes);
  EXPECT_GT(sel.saved_bytes, full.saved_bytes);
  EXPECT_GE(full.backward_peak_bytes, none.backward_peak_bytes);  // one block recomputed
  EXPECT_EQ(none.loss_bytes, full.loss_bytes);
  EXPECT_GT(none.peak_bytes(), full.peak_bytes() + 500'000'000);  // the acceptance line, as estimated
  // Saved activations are linear in tokens; bf16 halves them (up to the fp32 logsumexp/rstd).
  EXPECT_EQ(est(ActivationCheckpointing::kNone, 8, 256).saved_bytes, 2 * none.saved_bytes);
  EXPECT_EQ(est(ActivationCheckpointing::kNone, 2, 512).saved_bytes, none.saved_bytes);
  EXPECT_LT(est(ActivationCheckpointing::kNone, 4, 256, 2).saved_bytes, none.saved_bytes * 51 / 100);
  EXPECT_THROW(est(ActivationCheckpointing::kNone, 0, 256), Error);
}

}  // namespace
}  // namespace pajama
