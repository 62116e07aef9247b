// CUDA kernels against their references, in process: SDPA's backend (flash or cuDNN,
// read from ATen's own choice for the exact tensors the model passes) and its output and
// gradients against the math backend; the chunked LM-head cross-entropy against the
// whole-logits formula; activation checkpointing against no checkpointing; the host-sync
// counter itself.
#include <gtest/gtest.h>

#include <ATen/SDPBackend.h>

#include <map>
#include <string>

#include "model/attention.h"
#include "model/cross_entropy.h"
#include "model/llama.h"
#include "model/rope.h"
#include "model/training_options.h"
#include "parallel/host_sync.h"
#include "gpu_test_util.h"

namespace pajama {
namespace {

const torch::Device kCuda(torch::kCUDA, 0);

// max |a - b| / max |b|: the error relative to the reference's scale.
double scaled_error(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor bf = b.detach().to(torch::kCPU, torch::kFloat64);
  const double scale = std::max(bf.abs().max().item<double>(), 1e-12);
  return (a.detach().to(torch::kCPU, torch::kFloat64) - bf).abs().max().item<double>() / scale;
}

struct AttentionShape {
  const char* name;
  int64_t batch, seq, heads, kv_heads, head_dim;
};

// q and k as the model makes them (RoPE writes (B, H, T, hd)), v as a (B, T, H, hd) view
// transposed to (B, H, T, hd): exactly AttentionImpl::forward's layout.
struct Qkv {
  torch::Tensor q, k, v;
};
Qkv model_layout_qkv(const AttentionShape& s, torch::ScalarType dtype) {
  torch::manual_seed(7);
  const auto opts = torch::TensorOptions().device(kCuda).dtype(dtype);
  RopeTables rope(s.head_dim, s.seq, 10000.0);
  const auto [cos, sin] = rope.get(s.seq, kCuda, dtype);
  Qkv r;
  r.q = apply_rope(torch::randn({s.batch, s.seq, s.heads, s.head_dim}, opts), cos, sin);
  r.k = apply_rope(torch::randn({s.batch, s.seq, s.kv_heads, s.head_dim}, opts), cos, sin);
  r.v = torch::randn({s.batch, s.seq, s.kv_heads, s.head_dim}, opts).transpose(1, 2);
  return r;
}

const AttentionShape kShapes[] = {
    {"tiny (GQA 4/2, hd 32)", 4, 128, 4, 2, 32},
    {"1B (16 heads, hd 128)", 2, 2048, 16, 16, 128},
    {"1B GQA (16/4, hd 128)", 2, 2048, 16, 4, 128},
    {"7B (32 heads, hd 128)", 1, 4096, 32, 32, 128},
};

TEST(GpuSdpa, Bf16RunsFlashOrCudnnOnTheModelsLayout) {
  PAJAMA_NEED_GPU();
  for (const auto& s : kShapes) {
    const Qkv t = model_layout_qkv(s, torch::kBFloat16);
    const int64_t choice = at::_fused_sdp_choice(t.q, t.k, t.v, {}, 0.0, /*is_causal=*/true, std::nullopt,
                                                 /*enable_gqa=*/s.kv_heads != s.heads);
    const auto backend = static_cast<at::SDPBackend>(choice);
    std::printf("[sdpa] %-24s bf16 backend %lld (1 flash, 2 efficient, 3 cudnn, 0 math)\n", s.name,
                static_cast<long long>(choice));
    EXPECT_TRUE(backend == at::SDPBackend::flash_attention || backend == at::SDPBackend::cudnn_attention)
        << s.name << ": SDPA chose backend " << choice << " for bf16, not flash (1) or cuDNN (3)";
  }
}

// Output and input gradients of the fused bf16 kernel against the math backend in fp32
// on the same (bf16-rounded) inputs. bf16 keeps 8 significant bits: one rounding of the
// output is 2^-9 relative; the softmax-weighted sums over up to 4096 keys and the bf16
// probabilities in the kernel add a few of those. 2e-2 of the reference's largest value
// allows ~10 roundings and still catches a wrong mask, scale or GQA grouping (errors of
// order 1).
TEST(GpuSdpa, Bf16MatchesMathBackendInFp32) {
  PAJAMA_NEED_GPU();
  for (const auto& s : kShapes) {
    if (s.seq > 2048) continue;  // the fp32 math reference of the 7B shape needs 2 GB per (B, H) slice
    Qkv t = model_layout_qkv(s, torch::kBFloat16);
    for (auto* x : {&t.q, &t.k, &t.v}) x->requires_grad_(true);
    const torch::Tensor out = causal_attention(t.q, t.k, t.v);
    const torch::Tensor grad_out = torch::randn_like(out);
    out.backward(grad_out);

    std::vector<torch::Tensor> ref_in;
    for (const auto* x : {&t.q, &t.k, &t.v}) ref_in.push_back(x->detach().to(torch::kFloat32).requires_grad_(true));
    const auto [ref_out, attn] = at::_scaled_dot_product_attention_math(
        ref_in[0], ref_in[1], ref_in[2], {}, 0.0, /*is_causal=*/true, {}, std::nullopt, s.kv_heads != s.heads);
    ref_out.backward(grad_out.to(torch::kFloat32));
    EXPECT_LT(scaled_error(out, ref_out), 2e-2) << s.name << " output";
    EXPECT_LT(scaled_error(t.q.grad(), ref_in[0].grad()), 2e-2) << s.name << " dq";
    EXPECT_LT(scaled_error(t.k.grad(), ref_in[1].grad()), 2e-2) << s.name << " dk";
    EXPECT_LT(scaled_error(t.v.grad(), ref_in[2].grad()), 2e-2) << s.name << " dv";
  }
}

// fp32 on CUDA (whatever backend takes it) against the math backend: equal to fp32 rounding.
TEST(GpuSdpa, Fp32MatchesMathBackend) {
  PAJAMA_NEED_GPU();
  const AttentionShape s = kShapes[0];
  const Qkv t = model_layout_qkv(s, torch::kFloat32);
  const torch::Tensor out = causal_attention(t.q, t.k, t.v);
  const auto [ref, attn] = at::_scaled_dot_product_attention_math(t.q, t.k, t.v, {}, 0.0, true, {}, std::nullopt, true);
  EXPECT_LT(scaled_error(out, ref), 1e-5);
}

// The chunked head + cross-entropy on CUDA against the whole-logits formula written here,
// in fp64 on the CPU from the same inputs: loss and both gradients, with padding rows
// masked and z-loss on. fp32: reduction-order rounding only (1e-5). bf16: the chunk logits
// are bf16 matmuls (a rounding of 2^-9 relative on logits of order 10, i.e. ~0.02 absolute,
// averaging out over tokens in the loss); 1e-2 relative on the loss and 3e-2 of the largest
// gradient.
TEST(GpuChunkedCrossEntropy, MatchesWholeLogitsReference) {
  PAJAMA_NEED_GPU();
  const int64_t n = 700, d = 96, vocab = 1000, valid = 990;
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    torch::manual_seed(3);
    const torch::Tensor h0 = torch::randn({n, d}, torch::kFloat64);
    const torch::Tensor w0 = torch::randn({vocab, d}, torch::kFloat64) * 0.2;
    const torch::Tensor targets = torch::randint(0, valid, {n}, torch::kInt64);
    const double z = 1e-3;

    // Reference: the inputs as the kernel sees them (rounded to dtype), fp64 from there on.
    const torch::Tensor h_ref = h0.to(dtype).to(torch::kFloat64).requires_grad_(true);
    const torch::Tensor w_ref = w0.to(dtype).to(torch::kFloat64).requires_grad_(true);
    torch::Tensor logits = h_ref.matmul(w_ref.t());
    logits = logits.narrow(1, 0, valid);
    const torch::Tensor lse = logits.logsumexp(1);
    const torch::Tensor ref = (lse - logits.gather(1, targets.unsqueeze(1)).squeeze(1)).mean() + z * lse.square().mean();
    ref.backward();

    const torch::Tensor h = h0.to(kCuda, dtype).requires_grad_(true);
    const torch::Tensor w = w0.to(kCuda, dtype).requires_grad_(true);
    const torch::Tensor loss = chunked_linear_cross_entropy(h, w, targets.to(kCuda), /*chunk_tokens=*/128, z, valid);
    loss.backward();
    const bool f32 = dtype == torch::kFloat32;
    const double l = loss.item<double>(), r = ref.item<double>();
    EXPECT_LT(std::abs(l - r) / r, f32 ? 1e-5 : 1e-2) << c10::toString(dtype) << ": loss " << l << " vs " << r;
    EXPECT_LT(scaled_error(h.grad(), h_ref.grad()), f32 ? 1e-5 : 3e-2) << c10::toString(dtype) << " dhidden";
    EXPECT_LT(scaled_error(w.grad(), w_ref.grad()), f32 ? 1e-5 : 3e-2) << c10::toString(dtype) << " dweight";
    EXPECT_EQ(w.grad().narrow(0, valid, vocab - valid).abs().max().item<double>(), 0.0) << "padding rows got gradient";
  }
}

LlamaConfig small_model() {
  return {.vocab_size = 512, .dim = 128, .n_layers = 3, .n_heads = 4, .n_kv_heads = 2, .ffn_dim = 352,
          .max_seq_len = 128};
}

struct Step {
  torch::Tensor loss;
  std::map<std::string, torch::Tensor> grads;
};

Step model_step(ActivationCheckpointing mode, torch::ScalarType dtype) {
  const LlamaConfig cfg = small_model();
  Llama m(cfg);
  m->init_weights(11);
  m->to(kCuda, dtype);
  TrainingOptions opts;
  opts.checkpointing = mode;
  opts.loss_chunk_tokens = 100;
  m->set_training_options(opts);
  torch::manual_seed(5);
  const torch::Tensor tokens = torch::randint(0, cfg.vocab_size, {4, 96}, torch::kInt64).to(kCuda);
  const torch::Tensor targets = torch::randint(0, cfg.vocab_size, {4, 96}, torch::kInt64).to(kCuda);
  Step s;
  s.loss = m->loss(tokens, targets);
  s.loss.backward();
  for (const auto& p : m->named_parameters()) s.grads[p.key()] = p.value().grad().to(torch::kCPU, torch::kFloat64);
  return s;
}

// Recomputation replays the same kernels on the same inputs, so in fp32 (math attention,
// deterministic cuBLAS) the gradients agree to rounding; in bf16 the flash/cuDNN backward
// may accumulate in a different order (atomics), hence 1e-2 of the largest gradient.
TEST(GpuActivationCheckpointing, FullAndSelectiveEqualNone) {
  PAJAMA_NEED_GPU();
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    const bool f32 = dtype == torch::kFloat32;
    const Step none = model_step(ActivationCheckpointing::kNone, dtype);
    for (const auto mode : {ActivationCheckpointing::kFull, ActivationCheckpointing::kSelective}) {
      const Step other = model_step(mode, dtype);
      EXPECT_LT(std::abs(other.loss.item<double>() - none.loss.item<double>()), f32 ? 1e-6 : 1e-3)
          << c10::toString(dtype);
      for (const auto& [name, g] : none.grads) {
        EXPECT_LT(scaled_error(other.grads.at(name), g), f32 ? 1e-5 : 1e-2) << c10::toString(dtype) << " " << name;
      }
    }
  }
}

// The counter sees a blocking read and not an asynchronous kernel.
TEST(GpuHostSyncCounter, CountsItemAndNotKernels) {
  PAJAMA_NEED_GPU();
  HostSyncCounter syncs;
  const torch::Tensor a = torch::randn({256, 256}, torch::TensorOptions().device(kCuda));
  torch::Tensor b = a.matmul(a).relu_();
  EXPECT_EQ(syncs.take(), 0) << "kernels alone";
  (void)b.sum().item<double>();
  (void)b.cpu();
  EXPECT_EQ(syncs.take(), 2) << "one .item() and one .cpu()";
  const torch::Tensor pinned = torch::empty({1024}, torch::TensorOptions().pinned_memory(true));
  (void)pinned.to(kCuda, /*non_blocking=*/true);
  EXPECT_EQ(syncs.take(), 0) << "a non-blocking copy from pinned memory";
}

}  // namespace
}  // namespace pajama
