// Where one training step's time goes on the CPU: the trainer's step for one rank
// (mock tokens, ZeRO on a world of one, AdamW), timed phase by phase:
//   forward (hidden states + chunked loss, whose gradients are formed in forward),
//   backward, optimizer (zero_grad + norm + clip + fused AdamW + gather).
// Run by hand; results go to docs/BENCHMARKS.md:
//   step_profile [--preset 125m] [--batch 2] [--seq 256] [--steps 8] [--warmup 3] [--threads N]
//                [--checkpointing none|full|selective] [--dtype fp32|bf16]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <torch/torch.h>

#include "model/llama.h"
#include "model/parameter_order.h"
#include "parallel/adamw.h"
#include "parallel/communicator.h"
#include "parallel/zero_optimizer.h"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

const char* arg(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace pajama;
  const std::string preset = arg(argc, argv, "--preset", "125m");
  const int64_t batch = std::atoll(arg(argc, argv, "--batch", "2"));
  const int64_t seq = std::atoll(arg(argc, argv, "--seq", "256"));
  const int steps = std::atoi(arg(argc, argv, "--steps", "8"));
  const int warmup = std::atoi(arg(argc, argv, "--warmup", "3"));
  const int threads = std::atoi(arg(argc, argv, "--threads", "0"));
  const bool bf16 = std::string(arg(argc, argv, "--dtype", "fp32")) == "bf16";
  if (threads > 0) torch::set_num_threads(threads);

  LlamaConfig cfg = llama_preset(preset);
  cfg.max_seq_len = std::max(cfg.max_seq_len, seq);
  Llama model(cfg);
  model->init_weights(1234);
  if (bf16) model->to(torch::kBFloat16);
  TrainingOptions opts;
  opts.checkpointing = parse_activation_checkpointing(arg(argc, argv, "--checkpointing", "none"));
  model->set_training_options(opts);

  auto comm = make_communicator(World{}, torch::Device(torch::kCPU), CommConfig{});
  ZeroOptimizer opt(parameters_in_forward_order(*model), adamw_factory(AdamWConfig{}), ZeroConfig{}, *comm);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  const torch::Tensor tokens = torch::randint(cfg.vocab_size, {batch, seq + 1}, gen, torch::kInt64);
  const torch::Tensor inputs = tokens.narrow(1, 0, seq), targets = tokens.narrow(1, 1, seq);

  double fwd = 0, bwd = 0, step = 0;
  for (int s = 0; s < warmup + steps; ++s) {
    auto t0 = Clock::now();
    opt.zero_grad();
    opt.begin_micro_step(0, 1);
    const double z = since(t0);
    t0 = Clock::now();
    torch::Tensor loss = model->loss(inputs, targets);
    const double f = since(t0);
    t0 = Clock::now();
    loss.backward();
    const double b = since(t0);
    t0 = Clock::now();
    opt.step(1e-4, 1.0);
    const double o = since(t0) + z;
    if (s >= warmup) {
      fwd += f;
      bwd += b;
      step += o;
    }
  }
  const double total = fwd + bwd + step;
  std::printf("%s batch %lld x seq %lld, %d threads, %s, checkpointing %s: %.0f tokens/s\n", preset.c_str(),
              static_cast<long long>(batch), static_cast<long long>(seq), torch::get_num_threads(),
              bf16 ? "bf16" : "fp32", to_string(opts.checkpointing).c_str(),
              static_cast<double>(batch * seq * steps) / total);
  std::printf("  forward (incl. loss and its gradients) %7.3f s/step  %5.1f%%\n", fwd / steps, 100 * fwd / total);
  std::printf("  backward                               %7.3f s/step  %5.1f%%\n", bwd / steps, 100 * bwd / total);
  std::printf("  optimizer (zero, norm, clip, AdamW)    %7.3f s/step  %5.1f%%\n", step / steps, 100 * step / total);
  return 0;
}
