// The whole model: pinned parameter names (checkpoints rely on them), parameter and FLOP
// counts against published numbers, init, loss, config validation.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include <ATen/CPUGeneratorImpl.h>

#include <torch/torch.h>

#include "core/error.h"
#include "model/generate.h"
#include "model/kv_cache.h"
#include "model/llama.h"
#include "model/llama_config.h"
#include "model/param_count.h"
#include "test_util.h"

namespace pajama {
namespace {

LlamaConfig small_config(bool tied = false) { return testing::small_gqa_config(2, tied); }

std::vector<std::string> names_of(Llama& m) {
  std::vector<std::string> names;
  for (const auto& p : m->named_parameters()) names.push_back(p.key());
  return names;
}

TEST(Llama, ParameterNamesArePinnedToHuggingFace) {
  Llama m(small_config());
  const std::vector<std::string> expected = {
      "model.embed_tokens.weight",
      "model.layers.0.self_attn.q_proj.weight",
      "model.layers.0.self_attn.k_proj.weight",
      "model.layers.0.self_attn.v_proj.weight",
      "model.layers.0.self_attn.o_proj.weight",
      "model.layers.0.mlp.gate_proj.weight",
      "model.layers.0.mlp.up_proj.weight",
      "model.layers.0.mlp.down_proj.weight",
      "model.layers.0.input_layernorm.weight",
      "model.layers.0.post_attention_layernorm.weight",
      "model.layers.1.self_attn.q_proj.weight",
      "model.layers.1.self_attn.k_proj.weight",
      "model.layers.1.self_attn.v_proj.weight",
      "model.layers.1.self_attn.o_proj.weight",
      "model.layers.1.mlp.gate_proj.weight",
      "model.layers.1.mlp.up_proj.weight",
      "model.layers.1.mlp.down_proj.weight",
      "model.layers.1.input_layernorm.weight",
      "model.layers.1.post_attention_layernorm.weight",
      "model.norm.weight",
      "lm_head.weight",
  };
  EXPECT_EQ(names_of(m), expected);
  EXPECT_TRUE(m->named_buffers().is_empty()) << "RoPE tables must not be parameters or buffers";

  Llama tied(small_config(/*tied=*/true));
  auto tied_expected = expected;
  tied_expected.pop_back();
  EXPECT_EQ(names_of(tied), tied_expected);
}

TEST(Llama, ParameterShapes) {
  Llama m(small_config());
  auto params = m->named_parameters();
  EXPECT_EQ(params["model.embed_tokens.weight"].sizes(), torch::IntArrayRef({37, 16}));
  EXPECT_EQ(params["model.layers.0.self_attn.q_proj.weight"].sizes(), torch::IntArrayRef({16, 16}));
  EXPECT_EQ(params["model.layers.0.self_attn.k_proj.weight"].sizes(), torch::IntArrayRef({8, 16}));
  EXPECT_EQ(params["model.layers.0.self_attn.v_proj.weight"].sizes(), torch::IntArrayRef({8, 16}));
  EXPECT_EQ(params["model.layers.0.self_attn.o_proj.weight"].sizes(), torch::IntArrayRef({16, 16}));
  EXPECT_EQ(params["model.layers.0.mlp.gate_proj.weight"].sizes(), torch::IntArrayRef({24, 16}));
  EXPECT_EQ(params["model.layers.0.mlp.down_proj.weight"].sizes(), torch::IntArrayRef({16, 24}));
  EXPECT_EQ(params["model.norm.weight"].sizes(), torch::IntArrayRef({16}));
  EXPECT_EQ(params["lm_head.weight"].sizes(), torch::IntArrayRef({37, 16}));
}

TEST(ParamCount, ParameterShapesMatchTheModel) {
  for (int64_t multiple : {int64_t{1}, int64_t{8}}) {
    for (bool tied : {false, true}) {
      LlamaConfig c = small_config();
      c.vocab_multiple_of = multiple;
      c.tie_embeddings = tied;
      Llama m(c);
      std::map<std::string, std::vector<int64_t>> built;
      for (const auto& p : m->named_parameters()) built[p.key()] = p.value().sizes().vec();
      std::map<std::string, std::vector<int64_t>> planned;
      int64_t total = 0;
      for (const auto& p : parameter_shapes(c)) {
        planned[p.name] = p.shape;
        total += p.numel();
      }
      EXPECT_EQ(planned, built) << "vocab_multiple_of " << multiple << " tied " << tied;
      EXPECT_EQ(total, count_parameters(c));
    }
  }
}

// model.vocab_multiple_of pads the embedding and head rows; logits and the loss are
// those of the unpadded model with the same real rows.
TEST(Llama, PaddedVocabularyBehavesLikeTheUnpaddedModel) {
  LlamaConfig c = small_config();  // vocab 37
  Llama plain(c);
  plain->init_weights(5);
  c.vocab_multiple_of = 16;
  ASSERT_EQ(c.padded_vocab_size(), 48);
  Llama padded(c);
  {
    torch::NoGradGuard no_grad;
    auto src = plain->named_parameters();
    for (auto& p : padded->named_parameters()) {
      p.value().zero_();
      p.value().narrow(0, 0, src[p.key()].size(0)).copy_(src[p.key()]);
    }
    padded->head_weight().narrow(0, 37, 11).fill_(3.0);  // large padding logits must not matter
  }
  EXPECT_EQ(padded->model->embed_tokens->weight.size(0), 48);
  const torch::Tensor tokens = torch::randint(0, 37, {2, 9}, torch::kInt64);
  const torch::Tensor targets = torch::randint(0, 37, {2, 9}, torch::kInt64);
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = padded->forward(tokens);
  EXPECT_EQ(logits.size(2), 37);
  EXPECT_TRUE(torch::allclose(logits, plain->forward(tokens), 1e-5, 1e-6));
  EXPECT_NEAR(padded->loss(tokens, targets).item<double>(), plain->loss(tokens, targets).item<double>(), 1e-6);
}

// The KV cache path gives forward()'s logits at every position: the prompt as one block,
// then a block of 3 at an offset (explicit causal mask), then single tokens.
TEST(Llama, CachedForwardEqualsFullForward) {
  LlamaConfig c = small_config();
  c.vocab_multiple_of = 8;  // padded rows must not show in the cached logits either
  Llama m(c);
  m->init_weights(9);
  const torch::Tensor tokens = torch::randint(0, c.vocab_size, {2, 12}, torch::kInt64);
  torch::NoGradGuard no_grad;
  const torch::Tensor full = m->forward(tokens);
  KvCache cache(c, 2, 12, torch::kCPU, torch::kFloat32);
  std::vector<torch::Tensor> parts = {m->forward_cached(tokens.narrow(1, 0, 5), cache),
                                      m->forward_cached(tokens.narrow(1, 5, 3), cache)};
  for (int64_t t = 8; t < 12; ++t) parts.push_back(m->forward_cached(tokens.narrow(1, t, 1), cache));
  EXPECT_EQ(cache.length, 12);
  const torch::Tensor cached = torch::cat(parts, 1);
  ASSERT_EQ(cached.sizes(), full.sizes());
  EXPECT_LT((cached - full).abs().max().item<double>(), 1e-5);
  EXPECT_THROW(m->forward_cached(tokens.narrow(1, 0, 1), cache), Error);  // the cache is full
}

// Greedy decoding with the cache chooses the same tokens as recomputing the whole
// sequence at every step, token for token; sampling is reproducible from the seed.
TEST(Llama, GreedyWithCacheEqualsWithout) {
  LlamaConfig c = small_config();
  c.max_seq_len = 64;
  Llama m(c);
  m->init_weights(4);
  {
    // Wider weights: the default init's greedy output repeats one token, which a wrong
    // cache could match too.
    torch::NoGradGuard no_grad;
    for (auto& p : m->parameters()) p.mul_(8);
  }
  const std::vector<int64_t> prompt = {3, 17, 5, 29, 1};
  GenerateOptions o;
  o.temperature = 0;
  o.max_new_tokens = 24;
  const std::vector<int64_t> cached = generate(m, prompt, o);
  o.use_cache = false;
  const std::vector<int64_t> plain = generate(m, prompt, o);
  EXPECT_EQ(cached, plain);
  EXPECT_EQ(cached.size(), 24u);
  EXPECT_GE(std::set<int64_t>(cached.begin(), cached.end()).size(), 6u) << "degenerate continuation";
  o.use_cache = true;
  o.temperature = 1.0;
  o.top_k = 5;
  o.top_p = 0.9;
  o.seed = 11;
  const std::vector<int64_t> a = generate(m, prompt, o), b = generate(m, prompt, o);
  EXPECT_EQ(a, b);
  o.seed = 12;
  EXPECT_NE(generate(m, prompt, o), a);
  o.max_new_tokens = 60;  // 5 + 60 > max_seq_len 64
  EXPECT_THROW(generate(m, prompt, o), ConfigError);
}

// top-k keeps exactly the k largest; top-p the smallest set reaching p.
TEST(Generate, TopKAndTopPFiltering) {
  const torch::Tensor logits = torch::log(torch::tensor({0.5, 0.25, 0.15, 0.1}, torch::kFloat32));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  GenerateOptions o;
  o.temperature = 1.0;
  std::set<int64_t> seen;
  o.top_k = 2;
  for (int i = 0; i < 200; ++i) seen.insert(choose_token(logits, o, gen));
  EXPECT_EQ(seen, (std::set<int64_t>{0, 1}));
  o.top_k = 0;
  o.top_p = 0.7;  // 0.5 + 0.25 reach 0.7: tokens 0 and 1
  seen.clear();
  for (int i = 0; i < 200; ++i) seen.insert(choose_token(logits, o, gen));
  EXPECT_EQ(seen, (std::set<int64_t>{0, 1}));
  o.top_p = 0.5;  // token 0 alone reaches it
  seen.clear();
  for (int i = 0; i < 50; ++i) seen.insert(choose_token(logits, o, gen));
  EXPECT_EQ(seen, (std::set<int64_t>{0}));
  o.temperature = 0;
  EXPECT_EQ(choose_token(torch::tensor({0.1, 2.0, 0.3}), o, gen), 1);
}

TEST(ParamCount, PublishedPresetCounts) {
  EXPECT_EQ(count_parameters(llama_preset("llama-7b")), 6738415616);
  EXPECT_EQ(count_parameters(llama_preset("llama-13b")), 13015864320);
  EXPECT_EQ(count_parameters(llama_preset("llama-33b")), 32528943616);
  EXPECT_EQ(count_parameters(llama_preset("llama-65b")), 65285660672);
  EXPECT_EQ(count_parameters(llama_preset("llama2-7b")), 6738415616);
  EXPECT_EQ(count_parameters(llama_preset("baichuan-7b")), 7000559616);
  EXPECT_EQ(count_embedding_parameters(llama_preset("llama-7b")), 32000 * 4096);
  EXPECT_EQ(llama_preset("llama-7b").hidden_ffn_dim(), 11008);
  EXPECT_EQ(llama_preset("llama-65b").hidden_ffn_dim(), 22016);
}

TEST(ParamCount, EqualsConstructedModel) {
  for (bool tied : {false, true}) {
    for (int64_t kv : {0, 1, 2}) {
      LlamaConfig c = small_config(tied);
      c.n_kv_heads = kv;
      Llama m(c);
      int64_t numel = 0;
      for (const auto& p : m->parameters()) numel += p.numel();
      EXPECT_EQ(count_parameters(c), numel) << "tied " << tied << " kv " << kv;
    }
  }
  for (const auto& name : {"tiny"}) {
    LlamaConfig c = llama_preset(name);
    Llama m(c);
    int64_t numel = 0;
    for (const auto& p : m->parameters()) numel += p.numel();
    EXPECT_EQ(count_parameters(c), numel) << name;
  }
}

TEST(ParamCount, FlopsPerToken) {
  const LlamaConfig c = llama_preset("llama-7b");
  const double expected = 6.0 * (6738415616.0 - 32000.0 * 4096) + 12.0 * 32 * 4096 * 2048;
  EXPECT_DOUBLE_EQ(flops_per_token(c, 2048), expected);
}

TEST(Llama, InitIsDeterministicAndLeavesGlobalRngAlone) {
  LlamaConfig c = small_config();
  Llama a(c), b(c), other(c);
  torch::manual_seed(123);
  const torch::Tensor before = torch::rand({4});
  torch::manual_seed(123);
  a->init_weights(42);
  const torch::Tensor after = torch::rand({4});
  EXPECT_TRUE(torch::equal(before, after)) << "init_weights touched the global RNG";
  b->init_weights(42);
  other->init_weights(43);
  auto pa = a->named_parameters(), pb = b->named_parameters(), po = other->named_parameters();
  for (const auto& p : pa) {
    EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
    if (p.value().dim() == 1) {
      EXPECT_TRUE(torch::equal(p.value(), torch::ones_like(p.value()))) << p.key();
    } else {
      EXPECT_FALSE(torch::equal(p.value(), po[p.key()])) << p.key();
    }
  }
  // normal(0, init_std): check the statistics of a larger draw.
  LlamaConfig big = small_config();
  big.vocab_size = 4000;
  big.init_std = 0.05;
  Llama m(big);
  m->init_weights(7);
  const torch::Tensor e = m->model->embed_tokens->weight;
  EXPECT_NEAR(e.mean().item<double>(), 0.0, 0.002);
  EXPECT_NEAR(e.std().item<double>(), 0.05, 0.002);
}

TEST(Llama, ForwardShapesDtypesAndLoss) {
  torch::manual_seed(0);
  Llama m(small_config());
  m->init_weights(1);
  const torch::Tensor tokens = torch::randint(0, 37, {3, 10}, torch::kInt64);
  const torch::Tensor targets = torch::randint(0, 37, {3, 10}, torch::kInt64);
  const torch::Tensor logits = m->forward(tokens);
  EXPECT_EQ(logits.sizes(), torch::IntArrayRef({3, 10, 37}));
  EXPECT_EQ(logits.scalar_type(), torch::kFloat32);

  // Independent mean cross-entropy.
  const torch::Tensor logp = torch::log_softmax(logits.to(torch::kFloat64), -1);
  const double expected = -logp.gather(-1, targets.unsqueeze(-1)).mean().item<double>();
  const torch::Tensor loss = m->loss(tokens, targets);
  EXPECT_EQ(loss.dim(), 0);
  EXPECT_EQ(loss.scalar_type(), torch::kFloat32);
  EXPECT_NEAR(loss.item<double>(), expected, 1e-5);
  // At init the prediction is close to uniform.
  EXPECT_NEAR(loss.item<double>(), std::log(37.0), 0.1);

  // Every parameter receives a gradient.
  loss.backward();
  for (const auto& p : m->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }

  // bf16 parameters: logits in bf16, loss in fp32, close to the fp32 loss.
  Llama half(small_config());
  half->init_weights(1);
  half->to(torch::kBFloat16);
  EXPECT_EQ(half->forward(tokens).scalar_type(), torch::kBFloat16);
  const torch::Tensor half_loss = half->loss(tokens, targets);
  EXPECT_EQ(half_loss.scalar_type(), torch::kFloat32);
  EXPECT_NEAR(half_loss.item<double>(), loss.item<double>(), 0.02);
}

TEST(Llama, CausalityFutureTokensDoNotChangeEarlierLogits) {
  Llama m(small_config());
  m->init_weights(5);
  torch::Tensor a = torch::randint(0, 37, {1, 8}, torch::kInt64);
  torch::Tensor b = a.clone();
  b[0][7] = (a[0][7].item<int64_t>() + 1) % 37;
  torch::NoGradGuard ng;
  EXPECT_EQ(testing::max_abs_diff(m->forward(a).narrow(1, 0, 7), m->forward(b).narrow(1, 0, 7)), 0.0);
}

TEST(Llama, TiedHeadUsesTheEmbedding) {
  Llama m(small_config(true));
  m->init_weights(3);
  const torch::Tensor tokens = torch::randint(0, 37, {2, 5}, torch::kInt64);
  torch::NoGradGuard ng;
  const torch::Tensor expected = torch::matmul(m->hidden_states(tokens), m->model->embed_tokens->weight.t());
  EXPECT_LT(testing::max_abs_diff(m->forward(tokens), expected), 1e-6);
}

TEST(Llama, SurvivesParametersRepointedIntoAFlatBuffer) {
  // What the ZeRO optimizer does: every parameter becomes a view of one flat buffer.
  Llama m(small_config());
  m->init_weights(9);
  const torch::Tensor tokens = torch::randint(0, 37, {2, 6}, torch::kInt64);
  torch::Tensor before;
  {
    torch::NoGradGuard ng;
    before = m->forward(tokens);
  }
  int64_t total = 0;
  for (const auto& p : m->parameters()) total += p.numel();
  torch::Tensor flat = torch::empty({total});
  int64_t offset = 0;
  for (auto& p : m->parameters()) {
    torch::Tensor view = flat.narrow(0, offset, p.numel()).view(p.sizes());
    view.copy_(p.detach());
    p.set_data(view);
    offset += p.numel();
  }
  {
    torch::NoGradGuard ng;
    EXPECT_EQ(testing::max_abs_diff(m->forward(tokens), before), 0.0);
    flat.zero_();  // now every weight is zero: logits must be exactly zero
    EXPECT_EQ(m->forward(tokens).abs().max().item<double>(), 0.0);
  }
}

TEST(Llama, RejectsBadInputs) {
  Llama m(small_config());
  EXPECT_THROW(m->forward(torch::zeros({1, 13}, torch::kInt64)), Error);  // > max_seq_len
  EXPECT_THROW(m->forward(torch::zeros({1, 4}, torch::kInt32)), Error);
  EXPECT_THROW(m->loss(torch::zeros({1, 4}, torch::kInt64), torch::zeros({1, 3}, torch::kInt64)), Error);
}

// ---- LlamaConfig::validate ----------------------------------------------------------------------

std::string config_error(const LlamaConfig& c) {
  try {
    c.validate();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// The field a failed validate() is about, by its name in LlamaConfig; "" when it passes,
// "(elsewhere)" when the error does not point at c's own member.
std::string fault_of(const LlamaConfig& c) {
  try {
    c.validate();
  } catch (const ConfigError& e) {
    if (e.fields().empty()) return "(no field)";
    const ConfigField& f = e.fields().front();
    const auto* base = reinterpret_cast<const char*>(&c);
    const auto* at = static_cast<const char*>(f.value);
    return at >= base && at < base + sizeof c ? f.name : "(elsewhere)";
  }
  return "";
}

TEST(LlamaConfig, ValidateNamesTheOffendingField) {
  EXPECT_EQ(config_error(small_config()), "");
  for (const auto& name : llama_preset_names()) EXPECT_EQ(config_error(llama_preset(name)), "") << name;

  LlamaConfig c = small_config();
  c.n_kv_heads = 3;
  EXPECT_EQ(fault_of(c), "n_kv_heads");
  EXPECT_NE(config_error(c).find("n_heads 4 is not divisible by n_kv_heads 3"), std::string::npos) << config_error(c);
  c = small_config();
  c.n_heads = 3;
  EXPECT_EQ(fault_of(c), "dim");
  c = small_config();
  c.dim = 12;  // head_dim 3: odd
  EXPECT_NE(config_error(c).find("even"), std::string::npos) << config_error(c);
  c = small_config();
  c.vocab_size = 0;
  EXPECT_EQ(fault_of(c), "vocab_size");
  c = small_config();
  c.norm_eps = 0;
  EXPECT_EQ(fault_of(c), "norm_eps");
  c = small_config();
  c.max_seq_len = 0;
  EXPECT_EQ(fault_of(c), "max_seq_len");
  EXPECT_NE(config_error(c).find("max_seq_len must be positive, got 0"), std::string::npos) << config_error(c);

  c = small_config();
  c.n_kv_heads = 3;
  EXPECT_THROW(Llama{c}, ConfigError);
  EXPECT_THROW(llama_preset("llama-8b"), ConfigError);
}

}  // namespace
}  // namespace pajama
