// safetensors bytes and validation, HF config.json mapping, save_hf/load_hf_weights
// round trips (single file and sharded), and the errors a mismatched checkpoint gives.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "core/fs.h"
#include "model/hf_checkpoint.h"
#include "model/llama.h"
#include "model/safetensors.h"
#include "model/vocab_resize.h"
#include "test_util.h"

namespace pajama {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::TempDir;

std::string golden_bytes() {
  std::string header = R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_EQ(header.size(), 85u);
  header += "   ";
  std::string out("\x58\0\0\0\0\0\0\0", 8);
  out += header;
  out += std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
  return out;
}

TEST(Safetensors, WriterProducesTheGoldenBytes) {
  const torch::Tensor w = torch::tensor({1.0f, 2.0f});
  EXPECT_EQ(serialize_safetensors({{"w", w}}), golden_bytes());
  TempDir dir("golden");
  save_safetensors(dir.path() / "w.safetensors", {{"w", w}});
  EXPECT_EQ(read_file(dir.path() / "w.safetensors"), golden_bytes());
}

TEST(Safetensors, ReaderReadsTheGoldenBytes) {
  TempDir dir("golden_read");
  write_file_atomic(dir.path() / "g.safetensors", golden_bytes());
  SafetensorsReader r(dir.path() / "g.safetensors");
  EXPECT_EQ(r.names(), std::vector<std::string>{"w"});
  EXPECT_EQ(r.metadata().at("format"), "pt");
  EXPECT_TRUE(torch::equal(r.tensor("w"), torch::tensor({1.0f, 2.0f})));
  EXPECT_THROW(r.tensor("v"), CheckpointError);
}

TEST(Safetensors, RoundTripsDtypesScalarsAndEmptyTensors) {
  TempDir dir("roundtrip");
  torch::manual_seed(0);
  const NamedTensors tensors = {
      {"f32", torch::randn({3, 4})},
      {"f16", torch::randn({5}).to(torch::kFloat16)},
      {"bf16", torch::randn({2, 3}).to(torch::kBFloat16)},
      {"i64", torch::arange(7, torch::kInt64)},
      {"i32", torch::arange(5, torch::kInt32).view({5, 1})},
      {"scalar", torch::tensor(3.5)},
      {"empty", torch::zeros({0, 4})},
      {"strided", torch::randn({4, 6}).t()},
  };
  save_safetensors(dir.path() / "t.safetensors", tensors, {{"format", "pt"}, {"note", "x"}});
  SafetensorsReader r(dir.path() / "t.safetensors");
  EXPECT_EQ(r.names().size(), tensors.size());
  EXPECT_EQ(r.metadata().at("note"), "x");
  for (const auto& [name, t] : tensors) {
    const torch::Tensor back = r.tensor(name);
    EXPECT_EQ(back.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(back.sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(back, t)) << name;
  }
  EXPECT_EQ(r.entry("bf16").dtype, "BF16");
  // Header padded so the data starts 8-aligned.
  const std::string bytes = read_file(dir.path() / "t.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
}

// Writes a file with the given header (padded) and `data_bytes` zero bytes of data.
fs::path write_raw(const TempDir& dir, const std::string& name, const std::string& header, size_t data_bytes,
                   bool fix_length = true) {
  std::string h = header;
  uint64_t n = h.size();
  std::string out(8, '\0');
  if (!fix_length) n = 1'000'000;
  std::memcpy(out.data(), &n, 8);
  out += h + std::string(data_bytes, '\0');
  const fs::path p = dir.path() / name;
  write_file_atomic(p, out);
  return p;
}

std::string reader_error(const fs::path& p) {
  try {
    SafetensorsReader r(p);
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, ReaderRejectsMalformedFilesNamingFileAndTensor) {
  TempDir dir("bad");
  auto expect_error = [&](const fs::path& p, const std::string& needle) {
    const std::string msg = reader_error(p);
    EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "expected '" << needle << "' in: " << msg;
  };
  write_file_atomic(dir.path() / "short.safetensors", "abc");
  expect_error(dir.path() / "short.safetensors", "not a safetensors file");
  expect_error(write_raw(dir, "len.safetensors", R"({"a":1})", 0, /*fix_length=*/false), "header length");
  expect_error(write_raw(dir, "brace.safetensors", R"([1,2])", 0), "'{'");
  expect_error(write_raw(dir, "json.safetensors", R"({"a": )", 0), "JSON");
  expect_error(write_raw(dir, "size.safetensors", R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
               "'t'");
  expect_error(write_raw(dir, "dtype.safetensors", R"({"t":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8),
               "Q4");
  expect_error(write_raw(dir, "hole.safetensors",
                         R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                         R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                         12),
               "'b'");
  expect_error(write_raw(dir, "overlap.safetensors",
                         R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                         8),
               "'b'");
  expect_error(write_raw(dir, "bounds.safetensors", R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4),
               "outside");
  expect_error(write_raw(dir, "trail.safetensors", R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8),
               "trailing");
  expect_error(write_raw(dir, "dup.safetensors",
                         R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                         R"("t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                         8),
               "twice");
  expect_error(write_raw(dir, "meta.safetensors", R"({"__metadata__":{"a":1}})", 0), "__metadata__");
  expect_error(dir.path() / "absent.safetensors", "cannot open");
}

// ---- Hugging Face directories -------------------------------------------------------------------

LlamaConfig tiny(bool tied = false) {
  return {.vocab_size = 41, .dim = 24, .n_layers = 2, .n_heads = 6, .n_kv_heads = 2, .ffn_dim = 40, .norm_eps = 1e-6,
          .rope_theta = 50000.0, .max_seq_len = 32, .tie_embeddings = tied};
}

void expect_same_weights(Llama& a, Llama& b) {
  auto pb = b->named_parameters();
  ASSERT_EQ(a->named_parameters().size(), pb.size());
  for (const auto& p : a->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
}

TEST(HfCheckpoint, SaveThenLoadRoundTripsConfigAndWeights) {
  for (bool tied : {false, true}) {
    TempDir dir("hf_single");
    Llama m(tiny(tied));
    m->init_weights(11);
    save_hf(m, dir.path());
    EXPECT_TRUE(fs::exists(dir.path() / "model.safetensors"));
    EXPECT_FALSE(fs::exists(dir.path() / "model.safetensors.index.json"));

    const json cfg = json::parse(read_file(dir.path() / "config.json"));
    EXPECT_EQ(cfg["architectures"], json::array({"LlamaForCausalLM"}));
    EXPECT_EQ(cfg["model_type"], "llama");
    EXPECT_EQ(cfg["rope_theta"], 50000.0);
    EXPECT_EQ(cfg["rope_parameters"]["rope_theta"], 50000.0);
    EXPECT_EQ(cfg["rope_parameters"]["rope_type"], "default");
    EXPECT_EQ(cfg["torch_dtype"], "float32");
    EXPECT_EQ(cfg["bos_token_id"], 1);
    EXPECT_EQ(cfg["eos_token_id"], 2);
    EXPECT_EQ(cfg["tie_word_embeddings"], tied);
    EXPECT_EQ(cfg["num_key_value_heads"], 2);
    EXPECT_EQ(cfg["intermediate_size"], 40);

    const LlamaConfig back = read_hf_config(dir.path());
    EXPECT_EQ(back.vocab_size, 41);
    EXPECT_EQ(back.dim, 24);
    EXPECT_EQ(back.n_layers, 2);
    EXPECT_EQ(back.n_heads, 6);
    EXPECT_EQ(back.kv_heads(), 2);
    EXPECT_EQ(back.hidden_ffn_dim(), 40);
    EXPECT_EQ(back.max_seq_len, 32);
    EXPECT_DOUBLE_EQ(back.norm_eps, 1e-6);
    EXPECT_DOUBLE_EQ(back.rope_theta, 50000.0);
    EXPECT_EQ(back.tie_embeddings, tied);

    Llama loaded(back);
    load_hf_weights(loaded, dir.path());
    expect_same_weights(m, loaded);
    SafetensorsReader r(dir.path() / "model.safetensors");
    EXPECT_EQ(r.contains("lm_head.weight"), !tied);
    EXPECT_EQ(r.metadata().at("format"), "pt");
  }
}

// A padded vocabulary (model.vocab_multiple_of) is exported without its padding rows, and
// a released model loads into a larger vocabulary: its rows first, new rows by the rule.
TEST(HfCheckpoint, PaddingIsDroppedAtExportAndVocabularyGrowsOnLoad) {
  TempDir dir("hf_padded");
  LlamaConfig c = tiny(false);  // vocab 41
  c.vocab_multiple_of = 16;
  Llama m(c);
  m->init_weights(3);
  save_hf(m, dir.path());
  const json cfg = json::parse(read_file(dir.path() / "config.json"));
  EXPECT_EQ(cfg["vocab_size"], 41);
  EXPECT_FALSE(cfg.contains("pajama_vocab_multiple_of"));
  SafetensorsReader r(dir.path() / "model.safetensors");
  EXPECT_EQ(r.entry("model.embed_tokens.weight").shape, (std::vector<int64_t>{41, 24}));
  EXPECT_EQ(r.entry("lm_head.weight").shape, (std::vector<int64_t>{41, 24}));

  LlamaConfig grown = c;
  grown.vocab_size = 50;  // padded to 64
  Llama g(grown);
  load_hf_weights(g, dir.path(), /*vocab_rows=*/41);
  for (const char* name : {"model.embed_tokens.weight", "lm_head.weight"}) {
    torch::Tensor w = g->named_parameters()[name];
    const torch::Tensor released = r.tensor(name);
    EXPECT_TRUE(torch::equal(w.narrow(0, 0, 41), released)) << name;
    init_new_vocab_rows(w, 41, 50, "mean", 7);
    const torch::Tensor mean = released.mean(0);
    for (int64_t row = 41; row < 50; ++row) EXPECT_TRUE(torch::allclose(w[row], mean, 1e-6, 1e-7)) << name << row;
    EXPECT_TRUE(torch::equal(w.narrow(0, 50, 14), torch::zeros({14, 24}))) << name << ": padding rows are zero";
    EXPECT_TRUE(torch::equal(w.narrow(0, 0, 41), released)) << name << ": released rows untouched";
  }
  // mean_noise: the mean plus small noise, the same for the same seed.
  torch::Tensor a = g->lm_head->weight.detach().clone(), b = a.clone();
  init_new_vocab_rows(a, 41, 50, "mean_noise", 7);
  init_new_vocab_rows(b, 41, 50, "mean_noise", 7);
  EXPECT_TRUE(torch::equal(a, b));
  const torch::Tensor dev = a.narrow(0, 41, 9) - r.tensor("lm_head.weight").mean(0);
  EXPECT_GT(dev.abs().max().item<double>(), 0);
  EXPECT_LT(dev.std().item<double>(), 0.05 * r.tensor("lm_head.weight").std().item<double>());
  EXPECT_THROW(init_new_vocab_rows(a, 41, 50, "zeros", 7), ConfigError);
  // Fewer rows than the files hold: the rest of the files' rows (padding) is not read;
  // more rows than they hold is an error.
  load_hf_weights(g, dir.path(), /*vocab_rows=*/40);
  EXPECT_TRUE(torch::equal(g->lm_head->weight.narrow(0, 0, 40), r.tensor("lm_head.weight").narrow(0, 0, 40)));
  EXPECT_THROW(load_hf_weights(g, dir.path(), /*vocab_rows=*/45), CheckpointError);
}

TEST(HfCheckpoint, ShardedSaveRoundTrips) {
  TempDir dir("hf_sharded");
  Llama m(tiny());
  m->init_weights(12);
  // 41*24*4 = 3936 bytes for the embedding: every shard holds one or a few tensors.
  save_hf(m, dir.path(), /*max_shard_bytes=*/4000);
  const json index = json::parse(read_file(dir.path() / "model.safetensors.index.json"));
  int64_t total = 0;
  for (const auto& p : m->parameters()) total += p.numel() * 4;
  EXPECT_EQ(index["metadata"]["total_size"], total);
  std::set<std::string> files;
  for (const auto& [name, file] : index["weight_map"].items()) files.insert(file.get<std::string>());
  ASSERT_GT(files.size(), 2u);
  for (size_t i = 1; i <= files.size(); ++i) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i, files.size());
    EXPECT_EQ(files.count(name), 1u) << name;
  }
  for (const auto& f : files) {
    EXPECT_TRUE(fs::exists(dir.path() / f)) << f;
    EXPECT_LE(fs::file_size(dir.path() / f), 4000u + 1024u) << f;
  }
  EXPECT_FALSE(fs::exists(dir.path() / "model.safetensors"));
  EXPECT_EQ(index["weight_map"].size(), m->named_parameters().size());

  Llama loaded(read_hf_config(dir.path()));
  load_hf_weights(loaded, dir.path());
  expect_same_weights(m, loaded);

  // Saving again unsharded replaces the index.
  save_hf(m, dir.path());
  EXPECT_FALSE(fs::exists(dir.path() / "model.safetensors.index.json"));
}

TEST(HfCheckpoint, LoadConvertsDtypesAndIgnoresInvFreq) {
  TempDir dir("hf_bf16");
  Llama m(tiny());
  m->init_weights(13);
  m->to(torch::kBFloat16);
  save_hf(m, dir.path());
  EXPECT_EQ(json::parse(read_file(dir.path() / "config.json"))["torch_dtype"], "bfloat16");
  // Add an old-style rotary buffer.
  NamedTensors tensors;
  for (const auto& p : m->named_parameters()) tensors.emplace_back(p.key(), p.value());
  tensors.emplace_back("model.layers.0.self_attn.rotary_emb.inv_freq", torch::ones({2}));
  save_safetensors(dir.path() / "model.safetensors", tensors);

  Llama fp32(tiny());
  load_hf_weights(fp32, dir.path());
  auto pm = m->named_parameters();
  for (const auto& p : fp32->named_parameters()) {
    EXPECT_EQ(p.value().scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::equal(p.value(), pm[p.key()].to(torch::kFloat32))) << p.key();
  }
}

std::string checkpoint_error(Llama& m, const fs::path& dir) {
  try {
    load_hf_weights(m, dir);
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

TEST(HfCheckpoint, MismatchListsEveryDifferingName) {
  TempDir dir("hf_mismatch");
  Llama m(tiny());
  m->init_weights(14);
  save_hf(m, dir.path());

  LlamaConfig deeper = tiny();
  deeper.n_layers = 3;
  Llama three(deeper);
  std::string msg = checkpoint_error(three, dir.path());
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.layers.2.self_attn.q_proj.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.layers.2.post_attention_layernorm.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find(dir.path().string()), std::string::npos) << msg;

  LlamaConfig shallow = tiny();
  shallow.n_layers = 1;
  Llama one(shallow);
  msg = checkpoint_error(one, dir.path());
  EXPECT_NE(msg.find("unexpected"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.layers.1.mlp.up_proj.weight"), std::string::npos) << msg;

  LlamaConfig wider = tiny();
  wider.vocab_size = 50;
  Llama w(wider);
  msg = checkpoint_error(w, dir.path());
  EXPECT_NE(msg.find("shape mismatch"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.embed_tokens.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("lm_head.weight"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("model.norm.weight"), std::string::npos) << msg;

  // Nothing was copied into a model that failed to load.
  EXPECT_EQ(three->model->embed_tokens->weight.abs().sum().item<double>(), 0.0);
  // An extra lm_head is ignored when the config ties it to the embedding.
  Llama tied(tiny(true));
  EXPECT_EQ(checkpoint_error(tied, dir.path()), "");
  EXPECT_TRUE(torch::equal(tied->model->embed_tokens->weight, m->model->embed_tokens->weight));

  TempDir empty("hf_empty");
  Llama fresh(tiny());
  msg = checkpoint_error(fresh, empty.path());
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
}

void write_config(const TempDir& dir, const json& j) { write_file_atomic(dir.path() / "config.json", j.dump()); }

std::string config_error(const fs::path& dir) {
  try {
    read_hf_config(dir);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(HfCheckpoint, ReadConfigVariants) {
  TempDir dir("hf_config");
  // A transformers 4.3x export: rope_theta at the top, kv heads null, defaults elsewhere.
  json j = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},     {"hidden_size", 64},
            {"intermediate_size", 96},               {"num_hidden_layers", 2},    {"num_attention_heads", 4},
            {"num_key_value_heads", nullptr},        {"rope_theta", 500000.0},    {"vocab_size", 97},
            {"rms_norm_eps", 1e-5},                  {"tie_word_embeddings", true}, {"rope_scaling", nullptr}};
  write_config(dir, j);
  LlamaConfig c = read_hf_config(dir.path());
  EXPECT_EQ(c.kv_heads(), 4);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.max_seq_len, 2048);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-5);

  // transformers 5: rope_parameters only.
  j.erase("rope_theta");
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1234.0}};
  j["num_key_value_heads"] = 2;
  j["max_position_embeddings"] = 4096;
  write_config(dir, j);
  c = read_hf_config(dir.path());
  EXPECT_DOUBLE_EQ(c.rope_theta, 1234.0);
  EXPECT_EQ(c.kv_heads(), 2);
  EXPECT_EQ(c.max_seq_len, 4096);

  json bad = j;
  bad["head_dim"] = 32;
  write_config(dir, bad);
  EXPECT_NE(config_error(dir.path()).find("head_dim"), std::string::npos);
  bad = j;
  bad["model_type"] = "mistral";
  write_config(dir, bad);
  EXPECT_NE(config_error(dir.path()).find("mistral"), std::string::npos);
  bad = j;
  bad["architectures"] = {"BaichuanForCausalLM"};
  write_config(dir, bad);
  EXPECT_NE(config_error(dir.path()).find("LlamaForCausalLM"), std::string::npos);
  bad = j;
  bad["num_key_value_heads"] = 3;
  write_config(dir, bad);
  EXPECT_NE(config_error(dir.path()).find("n_kv_heads"), std::string::npos);
  bad = j;
  bad["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 1.0}};
  write_config(dir, bad);
  EXPECT_NE(config_error(dir.path()).find("llama3"), std::string::npos);
  bad = j;
  bad["attention_bias"] = true;
  write_config(dir, bad);
  EXPECT_NE(config_error(dir.path()).find("bias"), std::string::npos);
  write_file_atomic(dir.path() / "config.json", "{not json");
  EXPECT_NE(config_error(dir.path()).find("config.json"), std::string::npos);
  TempDir empty("hf_noconfig");
  EXPECT_NE(config_error(empty.path()).find("no config.json"), std::string::npos);
}

}  // namespace
}  // namespace pajama
