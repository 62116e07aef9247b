// Each op against a definition written independently here, plus a central-difference
// gradient check of a whole transformer block in fp64.
#include <gtest/gtest.h>

#include <cmath>

#include <torch/torch.h>

#include "core/error.h"
#include "model/attention.h"
#include "model/cross_entropy.h"
#include "model/llama_config.h"
#include "model/mlp.h"
#include "model/rms_norm.h"
#include "model/rope.h"
#include "model/transformer_block.h"
#include "test_util.h"

namespace pajama {
namespace {

using testing::max_abs_diff;

torch::Tensor randn(std::vector<int64_t> shape, torch::ScalarType dtype = torch::kFloat32) {
  return torch::randn(shape, torch::TensorOptions().dtype(dtype));
}

// ---- RMSNorm ----------------------------------------------------------------------------------

torch::Tensor reference_rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  const torch::Tensor xd = x.to(torch::kFloat64);
  return xd / torch::sqrt(xd.pow(2).mean(-1, true) + eps) * w.to(torch::kFloat64);
}

TEST(RMSNorm, MatchesDefinitionFp32) {
  torch::manual_seed(1);
  const torch::Tensor x = randn({3, 5, 16}) * 3, w = randn({16});
  const torch::Tensor y = rms_norm(x, w, 1e-6);
  EXPECT_EQ(y.scalar_type(), torch::kFloat32);
  EXPECT_LT(max_abs_diff(y, reference_rms_norm(x, w, 1e-6)), 1e-5);
  // eps matters when the row is small.
  const torch::Tensor tiny = randn({2, 16}) * 1e-3;
  EXPECT_LT(max_abs_diff(rms_norm(tiny, w, 1e-5), reference_rms_norm(tiny, w, 1e-5)), 1e-5);
}

TEST(RMSNorm, Bf16ComputesInFp32AndCastsBack) {
  torch::manual_seed(2);
  const torch::Tensor x = randn({4, 32}).to(torch::kBFloat16), w = randn({32}).to(torch::kBFloat16);
  const torch::Tensor y = rms_norm(x, w, 1e-5);
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  // HF: weight * (x.float() * rsqrt(var + eps)).to(bf16)
  const torch::Tensor xf = x.to(torch::kFloat32);
  const torch::Tensor hf = w * (xf * torch::rsqrt(xf.pow(2).mean(-1, true) + 1e-5)).to(torch::kBFloat16);
  EXPECT_EQ(max_abs_diff(y, hf), 0.0);
}

TEST(RMSNorm, BackwardMatchesAutogradOfDefinition) {
  torch::manual_seed(3);
  const torch::Tensor x0 = randn({2, 3, 8}, torch::kFloat64), w0 = randn({8}, torch::kFloat64);
  const torch::Tensor g = randn({2, 3, 8}, torch::kFloat64);
  torch::Tensor x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_();
  (rms_norm(x, w, 1e-6) * g).sum().backward();
  torch::Tensor xr = x0.clone().requires_grad_(), wr = w0.clone().requires_grad_();
  (reference_rms_norm(xr, wr, 1e-6) * g).sum().backward();
  EXPECT_LT(max_abs_diff(x.grad(), xr.grad()), 1e-12);
  EXPECT_LT(max_abs_diff(w.grad(), wr.grad()), 1e-12);
}

// ---- RoPE -------------------------------------------------------------------------------------

// Meta's formulation: rotate interleaved pairs (x[2i], x[2i+1]) as complex numbers by
// pos * theta^(-2i/hd). HF's rotate_half layout relates to it by FORMATS 5.5's row permutation:
// HF index r < hd/2 holds Meta index 2r, r >= hd/2 holds Meta index 2(r - hd/2) + 1.
torch::Tensor reference_rope_via_meta(const torch::Tensor& x_hf, double theta) {
  const int64_t seq = x_hf.size(1), hd = x_hf.size(3), half = hd / 2;
  std::vector<int64_t> hf_to_meta(static_cast<size_t>(hd));
  for (int64_t r = 0; r < hd; ++r) hf_to_meta[static_cast<size_t>(r)] = r < half ? 2 * r : 2 * (r - half) + 1;
  torch::Tensor x_meta = torch::empty_like(x_hf, torch::kFloat64);
  for (int64_t r = 0; r < hd; ++r) x_meta.select(3, hf_to_meta[static_cast<size_t>(r)]).copy_(x_hf.select(3, r));
  // complex rotation
  const torch::Tensor pairs = x_meta.reshape({x_hf.size(0), seq, x_hf.size(2), half, 2}).contiguous();
  const torch::Tensor z = torch::view_as_complex(pairs);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const torch::Tensor freqs = torch::pow(theta, -torch::arange(0, hd, 2, f64) / static_cast<double>(hd));
  const torch::Tensor angles = torch::outer(torch::arange(seq, f64), freqs);  // (T, hd/2)
  const torch::Tensor rot = torch::polar(torch::ones_like(angles), angles).view({1, seq, 1, half});
  const torch::Tensor y_meta = torch::view_as_real(z * rot).reshape(x_hf.sizes());
  torch::Tensor y_hf = torch::empty_like(y_meta);
  for (int64_t r = 0; r < hd; ++r) y_hf.select(3, r).copy_(y_meta.select(3, hf_to_meta[static_cast<size_t>(r)]));
  return y_hf;
}

TEST(Rope, MatchesMetaComplexFormulationUnderHfPermutation) {
  torch::manual_seed(4);
  const torch::Tensor x = randn({2, 7, 3, 16});  // (B, T, H, hd)
  RopeTables tables(16, 32, 10000.0);
  const auto [cos, sin] = tables.get(7, torch::kCPU, torch::kFloat32);
  const torch::Tensor y = apply_rope(x, cos, sin);  // (B, H, T, hd)
  ASSERT_EQ(y.sizes(), torch::IntArrayRef({2, 3, 7, 16}));
  EXPECT_TRUE(y.is_contiguous());
  EXPECT_LT(max_abs_diff(y.transpose(1, 2), reference_rope_via_meta(x, 10000.0)), 1e-5);
}

TEST(Rope, ExplicitElementFormulaWithOtherTheta) {
  torch::manual_seed(5);
  const int64_t hd = 8, seq = 5;
  const double theta = 50000.0;
  const torch::Tensor x = randn({1, seq, 2, hd}, torch::kFloat64);
  RopeTables tables(hd, seq, theta);
  const auto [cos, sin] = tables.get(seq, torch::kCPU, torch::kFloat64);
  const torch::Tensor y = apply_rope(x, cos, sin).transpose(1, 2);
  auto xa = x.accessor<double, 4>();
  auto ya = y.accessor<double, 4>();
  for (int64_t t = 0; t < seq; ++t) {
    for (int64_t h = 0; h < 2; ++h) {
      for (int64_t i = 0; i < hd / 2; ++i) {
        const double a = static_cast<double>(t) * std::pow(theta, -2.0 * static_cast<double>(i) / hd);
        const double x1 = xa[0][t][h][i], x2 = xa[0][t][h][i + hd / 2];
        // tables are fp32, so allow fp32 rounding of cos/sin
        EXPECT_NEAR(ya[0][t][h][i], x1 * std::cos(a) - x2 * std::sin(a), 1e-6);
        EXPECT_NEAR(ya[0][t][h][i + hd / 2], x2 * std::cos(a) + x1 * std::sin(a), 1e-6);
      }
    }
  }
}

TEST(Rope, BackwardIsTheInverseRotation) {
  torch::manual_seed(6);
  RopeTables tables(8, 16, 10000.0);
  const auto [cos, sin] = tables.get(6, torch::kCPU, torch::kFloat64);
  const torch::Tensor x0 = randn({2, 6, 3, 8}, torch::kFloat64), g = randn({2, 3, 6, 8}, torch::kFloat64);
  torch::Tensor x = x0.clone().requires_grad_();
  (apply_rope(x, cos, sin) * g).sum().backward();
  // Autograd through HF's written-out formula: x*cos + rotate_half(x)*sin.
  torch::Tensor xr = x0.clone().requires_grad_();
  const torch::Tensor xt = xr.transpose(1, 2);
  const torch::Tensor c = torch::cat({cos, cos}, -1), s = torch::cat({sin, sin}, -1);
  const torch::Tensor rot = torch::cat({-xt.narrow(-1, 4, 4), xt.narrow(-1, 0, 4)}, -1);
  ((xt * c + rot * s) * g).sum().backward();
  EXPECT_LT(max_abs_diff(x.grad(), xr.grad()), 1e-12);
}

TEST(Rope, RejectsSequencesBeyondTheTables) {
  RopeTables tables(8, 4, 10000.0);
  EXPECT_THROW(tables.get(5, torch::kCPU, torch::kFloat32), Error);
}

// ---- attention --------------------------------------------------------------------------------

// Per head: softmax(q k^T / sqrt(hd) + causal mask) v, query head h reading kv head h / (H/KV).
torch::Tensor naive_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const int64_t n_heads = q.size(1), n_kv = k.size(1), seq = q.size(2), hd = q.size(3);
  torch::Tensor out = torch::zeros_like(q, torch::kFloat64);
  const torch::Tensor mask = torch::ones({seq, seq}, torch::kBool).triu(1);
  for (int64_t h = 0; h < n_heads; ++h) {
    const int64_t kvh = h / (n_heads / n_kv);
    const torch::Tensor qh = q.select(1, h).to(torch::kFloat64), kh = k.select(1, kvh).to(torch::kFloat64);
    const torch::Tensor vh = v.select(1, kvh).to(torch::kFloat64);
    torch::Tensor scores = torch::matmul(qh, kh.transpose(-1, -2)) / std::sqrt(static_cast<double>(hd));
    scores = scores.masked_fill(mask, -std::numeric_limits<double>::infinity());
    out.select(1, h).copy_(torch::matmul(torch::softmax(scores, -1), vh));
  }
  return out;
}

TEST(Attention, CausalMatchesNaiveMultiHead) {
  torch::manual_seed(7);
  const torch::Tensor q = randn({2, 4, 9, 8}), k = randn({2, 4, 9, 8}), v = randn({2, 4, 9, 8});
  EXPECT_LT(max_abs_diff(causal_attention(q, k, v), naive_attention(q, k, v)), 1e-5);
}

TEST(Attention, GroupedQueryMatchesNaive) {
  torch::manual_seed(8);
  for (int64_t n_kv : {1, 2}) {
    const torch::Tensor q = randn({2, 4, 11, 8}), k = randn({2, n_kv, 11, 8}), v = randn({2, n_kv, 11, 8});
    EXPECT_LT(max_abs_diff(causal_attention(q, k, v), naive_attention(q, k, v)), 1e-5) << "n_kv_heads " << n_kv;
  }
}

TEST(Attention, ModuleComposesProjectionsRopeAndAttention) {
  torch::manual_seed(9);
  const int64_t dim = 32, heads = 4, kv = 2, hd = 8, seq = 6;
  Attention attn(dim, heads, kv);
  {
    torch::NoGradGuard ng;
    for (auto& p : attn->parameters()) p.normal_(0, 0.2);
  }
  RopeTables tables(hd, seq, 10000.0);
  const auto [cos, sin] = tables.get(seq, torch::kCPU, torch::kFloat32);
  const torch::Tensor x = randn({2, seq, dim});
  const torch::Tensor y = attn->forward(x, cos, sin);
  // Written out: project, rotate (Meta formulation), attend per head, project out.
  auto heads_of = [&](const torch::Tensor& w, int64_t n) { return torch::matmul(x, w.t()).view({2, seq, n, hd}); };
  const torch::Tensor q = reference_rope_via_meta(heads_of(attn->q_proj->weight, heads), 10000.0).transpose(1, 2);
  const torch::Tensor k = reference_rope_via_meta(heads_of(attn->k_proj->weight, kv), 10000.0).transpose(1, 2);
  const torch::Tensor v = heads_of(attn->v_proj->weight, kv).transpose(1, 2).to(torch::kFloat64);
  const torch::Tensor o = naive_attention(q, k, v).transpose(1, 2).reshape({2, seq, dim});
  const torch::Tensor expected = torch::matmul(o, attn->o_proj->weight.to(torch::kFloat64).t());
  EXPECT_LT(max_abs_diff(y, expected), 1e-5);
}

// ---- SwiGLU -----------------------------------------------------------------------------------

TEST(SwiGLU, MatchesDefinition) {
  torch::manual_seed(10);
  const torch::Tensor g = randn({3, 10}) * 4, u = randn({3, 10});
  const torch::Tensor expected = g / (1 + torch::exp(-g)) * u;
  EXPECT_LT(max_abs_diff(swiglu(g, u), expected), 1e-5);

  Mlp mlp(6, 10);
  {
    torch::NoGradGuard ng;
    for (auto& p : mlp->parameters()) p.normal_(0, 0.5);
  }
  const torch::Tensor x = randn({2, 3, 6});
  const torch::Tensor a = torch::matmul(x, mlp->gate_proj->weight.t()), b = torch::matmul(x, mlp->up_proj->weight.t());
  const torch::Tensor ref = torch::matmul(a * torch::sigmoid(a) * b, mlp->down_proj->weight.t());
  EXPECT_LT(max_abs_diff(mlp->forward(x), ref), 1e-5);
}

// ---- chunked linear cross-entropy --------------------------------------------------------------

// The definition, through autograd: logits = h W^T, -mean(log_softmax[target]) + z * mean(lse^2).
torch::Tensor reference_loss(const torch::Tensor& h, const torch::Tensor& w, const torch::Tensor& targets,
                             double z_loss) {
  const torch::Tensor logits = torch::matmul(h, w.t());
  const torch::Tensor nll = torch::nll_loss(torch::log_softmax(logits, 1), targets);
  return nll + z_loss * torch::logsumexp(logits, 1).square().mean();
}

struct LossAndGrads {
  torch::Tensor loss, grad_hidden, grad_weight;
};

// Value and gradients of loss * 0.7 (a non-unit incoming gradient, as the trainer's 1/A).
template <typename F>
LossAndGrads loss_and_grads(const torch::Tensor& h0, const torch::Tensor& w0, F&& f) {
  torch::Tensor h = h0.clone().requires_grad_(), w = w0.clone().requires_grad_();
  const torch::Tensor loss = f(h, w);
  (loss * 0.7).backward();
  return {loss.detach(), h.grad(), w.grad()};
}

TEST(ChunkedCrossEntropy, MatchesUnchunkedReferenceFp32) {
  torch::manual_seed(12);
  const int64_t n = 13, d = 8, vocab = 29;
  const torch::Tensor h0 = randn({n, d}), w0 = randn({vocab, d}) * 0.7;
  const torch::Tensor targets = torch::randint(0, vocab, {n}, torch::kInt64);
  for (double z : {0.0, 0.1}) {
    const LossAndGrads ref = loss_and_grads(h0, w0, [&](auto& h, auto& w) { return reference_loss(h, w, targets, z); });
    for (int64_t chunk : {int64_t{1}, int64_t{4}, int64_t{5}, int64_t{13}, int64_t{1000}}) {
      const LossAndGrads got = loss_and_grads(
          h0, w0, [&](auto& h, auto& w) { return chunked_linear_cross_entropy(h, w, targets, chunk, z); });
      EXPECT_EQ(got.loss.scalar_type(), torch::kFloat32);
      EXPECT_EQ(got.loss.dim(), 0);
      EXPECT_NEAR(got.loss.item<double>(), ref.loss.item<double>(), 1e-6) << "chunk " << chunk << " z " << z;
      EXPECT_LT(max_abs_diff(got.grad_hidden, ref.grad_hidden), 1e-6) << "chunk " << chunk << " z " << z;
      EXPECT_LT(max_abs_diff(got.grad_weight, ref.grad_weight), 1e-6) << "chunk " << chunk << " z " << z;
    }
  }
  // z_loss = 0 is the plain cross-entropy, and z > 0 adds exactly z * mean(lse^2).
  const torch::Tensor logits = torch::matmul(h0, w0.t());
  const double ce = torch::nll_loss(torch::log_softmax(logits, 1), targets).item<double>();
  const double lse2 = torch::logsumexp(logits, 1).square().mean().item<double>();
  EXPECT_NEAR(chunked_linear_cross_entropy(h0, w0, targets, 4, 0.0).item<double>(), ce, 1e-6);
  EXPECT_NEAR(chunked_linear_cross_entropy(h0, w0, targets, 4, 0.25).item<double>(), ce + 0.25 * lse2, 1e-5);
}

// Vocabulary padding: rows past valid_vocab behave as if absent (same loss and gradients
// as the unpadded head) and get exactly zero gradient.
TEST(ChunkedCrossEntropy, PaddedRowsAreMaskedOut) {
  torch::manual_seed(21);
  const int64_t n = 11, d = 8, vocab = 29, padded = 32;
  const torch::Tensor h0 = randn({n, d}), w0 = randn({padded, d}) * 0.7;
  const torch::Tensor targets = torch::randint(0, vocab, {n}, torch::kInt64);
  const torch::Tensor real = w0.narrow(0, 0, vocab).clone();
  for (double z : {0.0, 0.1}) {
    const LossAndGrads ref =
        loss_and_grads(h0, real, [&](auto& h, auto& w) { return reference_loss(h, w, targets, z); });
    const LossAndGrads got = loss_and_grads(
        h0, w0, [&](auto& h, auto& w) { return chunked_linear_cross_entropy(h, w, targets, 4, z, vocab); });
    EXPECT_NEAR(got.loss.item<double>(), ref.loss.item<double>(), 1e-6) << "z " << z;
    EXPECT_LT(max_abs_diff(got.grad_hidden, ref.grad_hidden), 1e-6);
    EXPECT_LT(max_abs_diff(got.grad_weight.narrow(0, 0, vocab), ref.grad_weight), 1e-6);
    EXPECT_TRUE(torch::equal(got.grad_weight.narrow(0, vocab, padded - vocab), torch::zeros({padded - vocab, d})));
  }
  torch::NoGradGuard no_grad;
  EXPECT_NEAR(chunked_linear_cross_entropy(h0, w0, targets, 4, 0.0, vocab).item<double>(),
              reference_loss(h0, real, targets, 0.0).item<double>(), 1e-6);
  EXPECT_THROW(chunked_linear_cross_entropy(h0, w0, targets, 4, 0.0, padded + 1), Error);
}

TEST(ChunkedCrossEntropy, Fp64CentralDifferences) {
  torch::manual_seed(13);
  const int64_t n = 5, d = 4, vocab = 7;
  const double z = 0.3;
  torch::Tensor h = randn({n, d}, torch::kFloat64).requires_grad_(), w = randn({vocab, d}, torch::kFloat64).requires_grad_();
  const torch::Tensor targets = torch::randint(0, vocab, {n}, torch::kInt64);
  auto objective = [&]() { return chunked_linear_cross_entropy(h, w, targets, /*chunk_tokens=*/2, z); };
  const torch::Tensor loss = objective();
  EXPECT_EQ(loss.scalar_type(), torch::kFloat64);
  (loss * 1.5).backward();
  const double eps = 1e-6;
  torch::NoGradGuard ng;
  for (torch::Tensor* t : {&h, &w}) {
    const torch::Tensor flat = t->view({-1});
    const torch::Tensor grad = t->grad().view({-1});
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double orig = flat[i].item<double>();
      flat[i].fill_(orig + eps);
      const double up = objective().item<double>();
      flat[i].fill_(orig - eps);
      const double down = objective().item<double>();
      flat[i].fill_(orig);
      EXPECT_NEAR(grad[i].item<double>(), 1.5 * (up - down) / (2 * eps), 1e-8) << (t == &h ? "hidden" : "weight")
                                                                              << "[" << i << "]";
    }
  }
}

TEST(ChunkedCrossEntropy, Bf16GivesBf16GradientsCloseToFp32) {
  torch::manual_seed(14);
  const int64_t n = 37, d = 16, vocab = 50;
  const torch::Tensor h0 = randn({n, d}).to(torch::kBFloat16), w0 = (randn({vocab, d}) * 0.5).to(torch::kBFloat16);
  const torch::Tensor targets = torch::randint(0, vocab, {n}, torch::kInt64);
  // The reference sees the same (bf16-representable) values in fp32.
  const LossAndGrads ref = loss_and_grads(h0.to(torch::kFloat32), w0.to(torch::kFloat32),
                                          [&](auto& h, auto& w) { return reference_loss(h, w, targets, 0.01); });
  for (int64_t chunk : {int64_t{8}, int64_t{64}}) {
    const LossAndGrads got = loss_and_grads(
        h0, w0, [&](auto& h, auto& w) { return chunked_linear_cross_entropy(h, w, targets, chunk, 0.01); });
    EXPECT_EQ(got.loss.scalar_type(), torch::kFloat32);
    EXPECT_EQ(got.grad_hidden.scalar_type(), torch::kBFloat16);
    EXPECT_EQ(got.grad_weight.scalar_type(), torch::kBFloat16);
    EXPECT_NEAR(got.loss.item<double>(), ref.loss.item<double>(), 0.02);
    // bf16 logits and gradients: a few bf16 ulps of the largest gradient.
    EXPECT_LT(max_abs_diff(got.grad_hidden, ref.grad_hidden), 0.02 * ref.grad_hidden.abs().max().item<double>());
    EXPECT_LT(max_abs_diff(got.grad_weight, ref.grad_weight), 0.02 * ref.grad_weight.abs().max().item<double>());
  }
}

TEST(ChunkedCrossEntropy, NoGradPathAndPartialGradients) {
  torch::manual_seed(15);
  const torch::Tensor h0 = randn({9, 6}), w0 = randn({11, 6});
  const torch::Tensor targets = torch::randint(0, 11, {9}, torch::kInt64);
  torch::Tensor h = h0.clone().requires_grad_(), w = w0.clone().requires_grad_();
  const torch::Tensor with_grad = chunked_linear_cross_entropy(h, w, targets, 4, 0.1);
  torch::Tensor without;
  {
    torch::NoGradGuard ng;
    without = chunked_linear_cross_entropy(h, w, targets, 4, 0.1);
  }
  EXPECT_FALSE(without.requires_grad());
  EXPECT_TRUE(torch::equal(without, with_grad.detach()));
  // Only the hidden states require grad (a frozen head): the head gets nothing.
  torch::Tensor h2 = h0.clone().requires_grad_();
  chunked_linear_cross_entropy(h2, w0, targets, 4, 0.1).backward();
  with_grad.backward();
  EXPECT_LT(max_abs_diff(h2.grad(), h.grad()), 1e-7);
  EXPECT_FALSE(w0.grad().defined());
}

TEST(ChunkedCrossEntropy, RejectsBadInputs) {
  const torch::Tensor h = randn({4, 3}), w = randn({5, 3});
  const torch::Tensor t = torch::zeros({4}, torch::kInt64);
  EXPECT_THROW(chunked_linear_cross_entropy(h, w, t, 0, 0.0), Error);
  EXPECT_THROW(chunked_linear_cross_entropy(h, w, t, 2, -1.0), Error);
  EXPECT_THROW(chunked_linear_cross_entropy(h, w.to(torch::kFloat64), t, 2, 0.0), Error);
  EXPECT_THROW(chunked_linear_cross_entropy(h, randn({5, 4}), t, 2, 0.0), Error);
  EXPECT_THROW(chunked_linear_cross_entropy(h, w, torch::zeros({3}, torch::kInt64), 2, 0.0), Error);
  EXPECT_THROW(chunked_linear_cross_entropy(h, w, t.to(torch::kInt32), 2, 0.0), Error);
}

// ---- finite-difference gradient check ----------------------------------------------------------

TEST(GradCheck, TransformerBlockFp64CentralDifferences) {
  torch::manual_seed(11);
  LlamaConfig cfg;
  cfg.dim = 16;
  cfg.n_heads = 4;
  cfg.n_kv_heads = 2;
  cfg.ffn_dim = 24;
  cfg.norm_eps = 1e-6;
  TransformerBlock block(cfg);
  block->to(torch::kFloat64);
  {
    torch::NoGradGuard ng;
    for (auto& p : block->named_parameters()) {
      if (p.value().dim() == 1) {
        p.value().copy_(1 + 0.3 * torch::randn_like(p.value()));
      } else {
        p.value().normal_(0, 0.3);
      }
    }
  }
  RopeTables tables(cfg.head_dim(), 8, 10000.0);
  const auto [cos, sin] = tables.get(5, torch::kCPU, torch::kFloat64);
  const torch::Tensor x = randn({2, 5, 16}, torch::kFloat64).requires_grad_();
  const torch::Tensor r = randn({2, 5, 16}, torch::kFloat64);
  auto objective = [&]() { return (block->forward(x, cos, sin) * r).sum(); };

  objective().backward();
  std::vector<std::pair<std::string, torch::Tensor>> targets = {{"x", x}};
  for (auto& p : block->named_parameters()) targets.emplace_back(p.key(), p.value());

  const double h = 1e-6;
  torch::NoGradGuard ng;
  int checked = 0;
  for (auto& [name, t] : targets) {
    const torch::Tensor grad = t.grad().clone();
    const torch::Tensor flat = t.view({-1});
    // A few elements spread over the tensor.
    for (int64_t i : {int64_t{0}, flat.numel() / 3, flat.numel() - 1}) {
      const double orig = flat[i].item<double>();
      flat[i].fill_(orig + h);
      const double up = objective().item<double>();
      flat[i].fill_(orig - h);
      const double down = objective().item<double>();
      flat[i].fill_(orig);
      const double numeric = (up - down) / (2 * h);
      const double analytic = grad.view({-1})[i].item<double>();
      EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::abs(numeric))) << name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3 * 10);  // x + 9 parameters
}

}  // namespace
}  // namespace pajama
