// Hugging Face interop for whole runs: a training checkpoint converted with
// `pajama convert --to-hf` loads in transformers with the same logits, and a
// transformers-made model used as model.init_from gives the same first-step loss.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <nlohmann/json.hpp>

#include "data/sample_source_factory.h"
#include "data/token_loader.h"
#include "model/hf_checkpoint.h"
#include "model/llama.h"
#include "model/safetensors.h"
#include "common/support.h"
#include "trainer/train_config.h"

namespace pajama {
namespace {

namespace fs = std::filesystem;
using testing::python;
using testing::TempDir;

std::string script() { return testing::source_dir() + "/tests/trainer/hf_roundtrip.py"; }
std::string tiny() { return testing::source_dir() + "/configs/tiny.yaml"; }

void write_raw(const fs::path& p, const void* data, size_t bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
}

std::vector<float> read_floats(const fs::path& p) {
  const std::string bytes = testing::read_file(p);
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

TEST(HfInterop, ConvertedCheckpointLoadsInTransformersWithSameLogits) {
  TempDir dir;
  const std::string run = dir.str("run");
  auto r = testing::run_command(testing::pajama_exe() + " train --config " + tiny() + " --set run.output_dir=" + run +
                                " --set train.max_steps=3 --set log.every_steps=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::run_command(testing::pajama_exe() + " convert --checkpoint " + run + " --to-hf " + dir.str("hf") +
                           " --max-shard-gb 0.002");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir.path() / "hf" / "config.json"));
  EXPECT_TRUE(fs::exists(dir.path() / "hf" / "model.safetensors.index.json")) << "2 MB shards should split the model";

  // pajama's logits for the same weights and tokens.
  const TrainConfig cfg = load_train_config(tiny(), {});
  Llama model(cfg.model.llama);
  {
    SafetensorsReader w(fs::path(run) / "checkpoints" / "step_00000003" / "model.safetensors");
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) p.value().copy_(w.tensor(p.key()));
  }
  const int64_t batch = 2, width = 17;
  auto tokens = torch::randint(0, cfg.model.llama.vocab_size, {batch, width}, torch::kInt32);
  write_raw(dir.path() / "tokens.bin", tokens.data_ptr<int32_t>(), batch * width * 4);
  torch::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    logits = model->forward(tokens.narrow(1, 0, width - 1).to(torch::kInt64)).contiguous();
  }
  r = testing::run_command(python() + " " + script() + " logits " + dir.str("hf") + " " + dir.str("tokens.bin") + " " +
                           dir.str("hf_logits.bin"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto hf = read_floats(dir.path() / "hf_logits.bin");
  ASSERT_EQ(static_cast<int64_t>(hf.size()), logits.numel());
  const float* ours = logits.data_ptr<float>();
  double max_diff = 0;
  for (size_t i = 0; i < hf.size(); ++i) max_diff = std::max(max_diff, std::abs(double(hf[i]) - ours[i]));
  EXPECT_LT(max_diff, 1e-4);
  std::printf("max |logits(pajama) - logits(transformers)| = %.3g\n", max_diff);
}

// convert's defaults follow the run: a bf16 run exports bf16, the tokenizer files carry
// the BOS/EOS policy the shards were prepared with (here: no BOS, EOS), and a
// generation_config.json names the tokenizer's ids; --dtype overrides the dtype.
// transformers loads the tokenizer and applies that policy.
TEST(HfInterop, ConvertFollowsTheRunsDtypeAndTokenPolicy) {
  TempDir dir;
  {
    std::ofstream corpus(dir.path() / "corpus.txt");
    const char* words[] = {"river", "stone", "light", "garden", "winter", "harbor", "signal", "copper", "meadow", "lantern"};
    for (int i = 0; i < 3000; ++i) {
      for (int w = 0; w < 12; ++w) corpus << words[(i * 7 + w * 3 + w * w) % 10] << (w == 11 ? "\n" : " ");
    }
  }
  const std::string exe = testing::pajama_exe();
  auto r = testing::run_command(exe + " tokenizer train --input " + dir.str("corpus.txt") +
                                " --vocab-size 400 --output " + dir.str("tok"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::run_command(exe + " prepare --input " + dir.str("corpus.txt") + " --tokenizer " + dir.str("tok.model") +
                           " --output " + dir.str("shard") + " --no-bos --eos --no-progress");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string run = dir.str("run");
  r = testing::run_command(exe + " train --config " + tiny() + " --set run.output_dir=" + run +
                           " --set train.max_steps=2 --set train.dtype=bf16 --set model.n_layers=2"
                           " --set data.source=shards --set data.tokenizer=" + dir.str("tok.model") +
                           " --set 'data.datasets=[{path: " + dir.str("shard") + ", weight: 1}]'");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  r = testing::run_command(exe + " convert --checkpoint " + run + " --to-hf " + dir.str("hf"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("add_bos_token false, add_eos_token true"), std::string::npos) << r.output;
  const auto config = nlohmann::json::parse(testing::read_file(dir.path() / "hf" / "config.json"));
  EXPECT_EQ(config.at("torch_dtype"), "bfloat16");
  EXPECT_EQ(SafetensorsReader(dir.path() / "hf" / "model.safetensors").entry("lm_head.weight").dtype, "BF16");
  const auto tok_cfg = nlohmann::json::parse(testing::read_file(dir.path() / "hf" / "tokenizer_config.json"));
  EXPECT_EQ(tok_cfg.at("add_bos_token"), false);
  EXPECT_EQ(tok_cfg.at("add_eos_token"), true);
  const auto gen = nlohmann::json::parse(testing::read_file(dir.path() / "hf" / "generation_config.json"));
  EXPECT_EQ(gen.at("bos_token_id"), 1);
  EXPECT_EQ(gen.at("eos_token_id"), 2);

  // transformers reads the tokenizer files with that policy: no BOS first, EOS last.
  r = testing::run_command(python() + " -c \"import transformers as t; "
                           "tok = t.AutoTokenizer.from_pretrained('" + dir.str("hf") + "'); "
                           "print('ids', tok('river stone light')['input_ids'])\"");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const size_t at = r.output.find("ids [");
  ASSERT_NE(at, std::string::npos) << r.output;
  const std::string ids = r.output.substr(at + 5, r.output.find(']', at) - at - 5);
  EXPECT_NE(ids.rfind("1,", 0), 0u) << ids;                  // no BOS (id 1) first
  EXPECT_EQ(ids.substr(ids.rfind(',') + 1), " 2") << ids;    // EOS (id 2) last

  r = testing::run_command(exe + " convert --checkpoint " + run + " --to-hf " + dir.str("hf32") + " --dtype float32");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(testing::read_file(dir.path() / "hf32" / "config.json")).at("torch_dtype"),
            "float32");
  r = testing::run_command(exe + " convert --checkpoint " + run + " --to-hf " + dir.str("bad") + " --dtype int8");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--dtype int8 is not supported"), std::string::npos) << r.output;
}

TEST(HfInterop, InitFromTransformersModelGivesTheSameFirstStepLoss) {
  TempDir dir;
  auto r = testing::run_command(python() + " " + script() + " make " + dir.str("hf"));
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // The first global batch of the tiny config (mock data, one rank).
  const TrainConfig cfg = load_train_config(tiny(), {});
  auto source = make_sample_source(cfg.data, Split::kTrain, cfg.train.seq_len, cfg.model.llama.vocab_size,
                                   static_cast<uint64_t>(cfg.run.seed), 1000);
  TokenLoader loader(source, cfg.train.global_batch_size, cfg.train.micro_batch_size, 0, 1);
  const int64_t width = cfg.train.seq_len + 1;
  std::vector<int32_t> all(static_cast<size_t>(cfg.train.global_batch_size * width));
  for (int64_t m = 0; m < loader.num_micro_steps(); ++m) {
    loader.fill_micro_batch(m, all.data() + m * cfg.train.micro_batch_size * width);
  }
  write_raw(dir.path() / "batch.bin", all.data(), all.size() * 4);
  r = testing::run_command(python() + " " + script() + " loss " + dir.str("hf") + " " + dir.str("batch.bin") +
                           " --batch " + std::to_string(cfg.train.global_batch_size) + " --width " +
                           std::to_string(width));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const double hf_loss = testing::last_json_line(r.output).at("loss").get<double>();

  const std::string run = dir.str("run");
  r = testing::run_command(testing::pajama_exe() + " train --config " + tiny() + " --set run.output_dir=" + run +
                           " --set model.init_from=" + dir.str("hf") + " --set train.max_steps=5 --set log.every_steps=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<double> losses;
  for (const auto& m : testing::read_metrics(run)) losses.push_back(m.loss);
  ASSERT_EQ(losses.size(), 5u);
  EXPECT_NEAR(losses[0], hf_loss, 1e-4 * hf_loss) << "pajama " << losses[0] << " vs transformers " << hf_loss;
  EXPECT_LT(losses.back(), losses[0]) << "training continues from the imported weights";
}

TEST(HfInterop, InitFromGrowsTheVocabularyWithMeanRows) {
  TempDir dir;
  auto r = testing::run_command(python() + " " + script() + " make " + dir.str("hf"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string run = dir.str("run");
  r = testing::run_command(testing::pajama_exe() + " train --config " + tiny() + " --set run.output_dir=" + run +
                           " --set model.init_from=" + dir.str("hf") +
                           " --set model.vocab_size=4160 --set train.max_steps=1 --set optim.lr=1e-12");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("vocabulary grown from 4096 to 4160"), std::string::npos) << r.output;
  SafetensorsReader w(fs::path(run) / "checkpoints" / "step_00000001" / "model.safetensors");
  const auto emb = w.tensor("model.embed_tokens.weight");
  ASSERT_EQ(emb.size(0), 4160);
  const auto mean = emb.narrow(0, 0, 4096).mean(0);
  EXPECT_LT((emb[4100] - mean).abs().max().item<double>(), 1e-6);
}

// Baichuan-7B's layout (q/k/v fused in W_pack, model_type baichuan) loads as the
// LLaMA it is: same logits as transformers gives for the unfused model.
TEST(HfInterop, BaichuanWPackIsSplitIntoQkv) {
  TempDir dir;
  auto r = testing::run_command(python() + " " + script() + " make-baichuan " + dir.str());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const LlamaConfig cfg = read_hf_config(dir.path() / "baichuan");
  EXPECT_EQ(cfg.vocab_size, 4096);
  EXPECT_DOUBLE_EQ(cfg.norm_eps, 1e-6);
  Llama model(cfg);
  load_hf_weights(model, dir.path() / "baichuan");
  const int64_t batch = 2, width = 17;
  auto tokens = torch::randint(0, cfg.vocab_size, {batch, width}, torch::kInt32);
  write_raw(dir.path() / "tokens.bin", tokens.data_ptr<int32_t>(), batch * width * 4);
  torch::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    logits = model->forward(tokens.narrow(1, 0, width - 1).to(torch::kInt64)).contiguous();
  }
  r = testing::run_command(python() + " " + script() + " logits " + dir.str("llama") + " " + dir.str("tokens.bin") +
                           " " + dir.str("hf_logits.bin"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto hf = read_floats(dir.path() / "hf_logits.bin");
  ASSERT_EQ(static_cast<int64_t>(hf.size()), logits.numel());
  double max_diff = 0;
  for (size_t i = 0; i < hf.size(); ++i) max_diff = std::max(max_diff, std::abs(double(hf[i]) - logits.data_ptr<float>()[i]));
  EXPECT_LT(max_diff, 1e-4);
}

// pajama generate (greedy, KV cache) on a transformers-made model chooses the tokens
// transformers' generate(do_sample=False) chooses, token for token.
TEST(HfInterop, GreedyGenerateEqualsTransformers) {
  TempDir dir;
  // A wide init: with transformers' 0.02 the tiny model's greedy output is one token
  // repeated, which would not tell a correct cache from a broken one.
  auto r = testing::run_command(python() + " " + script() + " make " + dir.str("hf") + " --init-range 0.3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string prompt = "1 450 2148 17 3301 9 77";
  r = testing::run_command(testing::pajama_exe() + " generate --hf " + dir.str("hf") + " --prompt-ids '" + prompt +
                           "' --max-new-tokens 32 --temperature 0 --print-ids --device cpu 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The ids are the last line of each output (logs and progress bars come before it).
  const auto last_line = [](std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s.substr(s.find_last_of("\n\r") + 1);
  };
  const std::string ours = last_line(r.output);
  r = testing::run_command(python() + " " + script() + " generate " + dir.str("hf") + " '" + prompt + "' 32 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string theirs = last_line(r.output);
  EXPECT_EQ(ours, theirs);
  EXPECT_EQ(std::count(ours.begin(), ours.end(), ' '), 31) << ours;
  std::set<std::string> distinct;
  std::istringstream words(ours);
  for (std::string w; words >> w;) distinct.insert(w);
  EXPECT_GE(distinct.size(), 8u) << "a degenerate continuation proves little: " << ours;
  std::printf("greedy continuation (pajama = transformers): %s\n", ours.c_str());
}

// pajama eval: per-file loss equal to transformers' on the same windows (an independent
// implementation of the windowing with SentencePiece's own encoder), and the same on
// 1 and 2 ranks.
TEST(HfInterop, EvalEqualsTransformersOnOneAndTwoRanks) {
  TempDir dir;
  const char* words[2][6] = {{"river", "stone", "light", "garden", "winter", "harbor"},
                             {"alpha", "beta", "gamma", "delta", "omega", "sigma"}};
  for (int c = 0; c < 2; ++c) {
    std::ofstream out(dir.path() / (c == 0 ? "a.jsonl" : "b.jsonl"));
    for (int i = 0; i < 40 + 13 * c; ++i) {
      out << "{\"text\": \"";
      for (int w = 0; w < 7 + i % 5; ++w) out << words[c][(i * 5 + w * w + c) % 6] << (w == 6 + i % 5 ? "\"}\n" : " ");
    }
  }
  const std::string exe = testing::pajama_exe();
  auto r = testing::run_command(exe + " tokenizer train --input " + dir.str("a.jsonl") + " " + dir.str("b.jsonl") +
                                " --vocab-size 300 --output " + dir.str("tok"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::run_command(python() + " " + script() + " make " + dir.str("hf"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string files = dir.str("a.jsonl") + " " + dir.str("b.jsonl");
  const std::string args = " eval --hf " + dir.str("hf") + " --tokenizer " + dir.str("tok.model") + " --input " + files +
                           " --seq-len 32 --batch-size 3 --device cpu 2>/dev/null";
  std::vector<nlohmann::json> results;
  for (int np : {1, 2}) {
    r = testing::run_command((np > 1 ? testing::mpirun(np) : std::string()) + exe + args);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    results.push_back(nlohmann::json::parse(r.output.substr(r.output.rfind("{\"files\""))));
  }
  r = testing::run_command(python() + " " + testing::source_dir() + "/tests/trainer/eval_reference.py " + dir.str("hf") +
                           " " + dir.str("tok.model") + " 32 " + files + " 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ref = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  ASSERT_EQ(results[0].at("files").size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const auto& f = results[0].at("files")[i];
    const double want = ref.at(f.at("path").get<std::string>());
    EXPECT_NEAR(f.at("loss").get<double>(), want, 1e-4 * want) << f.dump();
    EXPECT_NEAR(results[1].at("files")[i].at("loss").get<double>(), f.at("loss").get<double>(), 1e-6 * want)
        << "2 ranks";
  }
  const double la = results[0]["files"][0]["loss"], lb = results[0]["files"][1]["loss"];
  const double ta = results[0]["files"][0]["tokens"], tb = results[0]["files"][1]["tokens"];
  EXPECT_NEAR(results[0].at("loss").get<double>(), (la * ta + lb * tb) / (ta + tb), 1e-9);
  std::printf("eval (pajama = transformers): %s\n", results[0].dump().c_str());
}

}  // namespace
}  // namespace pajama
