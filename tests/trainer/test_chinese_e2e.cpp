// Chinese continued pretraining end to end (docs/CHINESE.md): LLaMA's tokenizer merged with
// a Chinese one, a transformers-made LLaMA grown to the merged vocabulary, stage 1 training
// only the embedding and the head, stage 2 resuming it with everything trainable on one
// and two ranks, and the export loading in transformers with the merged tokenizer.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "model/safetensors.h"
#include "common/support.h"
#include "common/llama_tokenizer.h"

namespace pajama {
namespace {

namespace fs = std::filesystem;
using testing::python;
using testing::TempDir;

std::string script() { return testing::source_dir() + "/tests/trainer/chinese_cpt.py"; }

fs::path llama_tokenizer() { return testing::llama_tokenizer_path(); }

// The trained model's shape as transformers made it (chinese_cpt.py make), the merged
// vocabulary padded to a multiple of 64, shards of the merged tokenizer.
std::string train_cmd(const std::string& run, const std::string& hf, int64_t vocab, const std::string& shard,
                      const std::string& tokenizer, const std::string& extra) {
  return testing::pajama_exe() + " train --config " + testing::source_dir() + "/configs/tiny.yaml" +
         " --set run.output_dir=" + run + " --set model.init_from=" + hf + " --set model.vocab_size=" +
         std::to_string(vocab) +
         " --set model.vocab_multiple_of=64 --set model.dim=64 --set model.n_layers=2 --set model.n_heads=4"
         " --set model.n_kv_heads=2 --set model.ffn_dim=176 --set train.seq_len=64 --set train.global_batch_size=4 --set train.micro_batch_size=2"
         " --set train.threads=1 --set log.every_steps=1 --set checkpoint.every_steps=0 --set optim.warmup_steps=1"
         " --set data.source=shards --set data.tokenizer=" + tokenizer + " --set 'data.datasets=[{path: " + shard +
         ", weight: 1}]' " + extra;
}

TEST(ChineseContinuedPretraining, MergeStageOneStageTwoExport) {
  PAJAMA_REQUIRE_LLAMA_TOKENIZER();
  TempDir dir;
  const std::string exe = testing::pajama_exe();
  auto r = testing::run_command("python3 " + testing::source_dir() + "/scripts/make_sample_corpus.py --output " +
                                dir.str("corpus"));
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // 1. A Chinese tokenizer (its output directory created by `tokenizer train`), merged
  //    into LLaMA's (only pieces with CJK characters).
  r = testing::run_command(exe + " tokenizer train --input " + dir.str("corpus/zh.jsonl") +
                           " --vocab-size 8000 --output " + dir.str("tok/zh"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string merged = dir.str("merged/merged.model");
  r = testing::run_command(exe + " tokenizer merge --base " + llama_tokenizer().string() + " --add " +
                           dir.str("tok/zh.model") + " --output " + merged + " --only-cjk --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const int64_t added = testing::last_json_line(r.output).at("added").get<int64_t>();
  ASSERT_GT(added, 1000) << r.output;
  const int64_t vocab = 32000 + added;

  // 2. Shards of the Chinese text with the merged tokenizer; a released model to start from.
  r = testing::run_command(exe + " prepare --input " + dir.str("corpus/zh.jsonl") + " --tokenizer " + merged +
                           " --output " + dir.str("zh_shard") + " --no-progress");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::run_command(python() + " " + script() + " make " + dir.str("hf0"));
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // 3. Stage 1: embeddings and head only.
  const std::string stage1 = dir.str("stage1");
  r = testing::run_command(train_cmd(stage1, dir.str("hf0"), vocab, dir.str("zh_shard"), merged,
                                     "--set train.max_steps=4 --set optim.lr=1e-3"
                                     " --set 'train.trainable=[model.embed_tokens.weight, lm_head.weight]'"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("vocabulary grown from 32000 to " + std::to_string(vocab)), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 of 21 parameter tensors train"), std::string::npos) << r.output;
  r = testing::run_command(exe + " convert --checkpoint " + stage1 + " --to-hf " + dir.str("hf1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;

  {
    SafetensorsReader before(dir.path() / "hf0" / "model.safetensors");
    SafetensorsReader after(dir.path() / "hf1" / "model.safetensors");
    int64_t compared = 0;
    for (const std::string& name : before.names()) {
      const torch::Tensor a = before.tensor(name), b = after.tensor(name);
      if (name == "model.embed_tokens.weight" || name == "lm_head.weight") {
        ASSERT_EQ(b.size(0), vocab) << name << ": the export has the merged vocabulary's rows, not the padding";
        const torch::Tensor old_rows = b.narrow(0, 0, 32000);
        EXPECT_FALSE(torch::equal(old_rows, a)) << name << " trained in stage 1";
        // Which old rows changed: the embedding only where Chinese text used them; the head everywhere.
        const int64_t changed = (old_rows != a).any(1).sum().item<int64_t>();
        EXPECT_GT(changed, 0) << name;
        EXPECT_TRUE(torch::isfinite(b.narrow(0, 32000, added)).all().item<bool>()) << name;
        EXPECT_GT(b.narrow(0, 32000, added).abs().sum().item<double>(), 0) << name << ": new rows exist";
      } else {
        EXPECT_TRUE(torch::equal(a, b)) << name << " is frozen in stage 1 and must be bitwise unchanged";
        ++compared;
      }
    }
    EXPECT_EQ(compared, 2 * 9 + 1);
  }

  // 4. The export loads in transformers with the merged tokenizer and runs on Chinese text.
  testing::write_file(dir.path() / "zh.txt", "床前明月光，疑是地上霜。举头望明月，低头思故乡。\n");
  r = testing::run_command(python() + " " + script() + " run " + dir.str("hf1") + " " + dir.str("zh.txt"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output.substr(r.output.rfind("{")));
  std::printf("merged vocabulary %lld (+%lld); transformers on the export: %s\n", static_cast<long long>(vocab),
              static_cast<long long>(added), j.dump().c_str());
  EXPECT_EQ(j.at("tokenizer_size"), vocab) << r.output;
  EXPECT_EQ(j.at("model_vocab"), vocab) << r.output;
  EXPECT_GE(j.at("max_id").get<int64_t>(), 32000) << "the merged pieces should be used: " << r.output;
  EXPECT_TRUE(j.at("finite").get<bool>()) << r.output;
  EXPECT_TRUE(j.at("round_trip").get<bool>()) << r.output;

  // 5. Stage 2: everything trains, resuming stage 1's checkpoint in a new run directory, on 1 and 2 ranks.
  const std::string resume = " --set checkpoint.resume=" + stage1 + "/checkpoints/step_00000004 --set train.max_steps=8";
  std::vector<std::vector<testing::MetricRecord>> curves;
  for (int np : {1, 2}) {
    const std::string run = dir.str("stage2_np" + std::to_string(np));
    r = testing::run_command((np > 1 ? testing::mpirun(np) : std::string()) +
                             train_cmd(run, dir.str("hf0"), vocab, dir.str("zh_shard"), merged, resume));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("resumed from"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("optimizer state restored for 2 parameter tensor(s)"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("started fresh (zero moments, step count 0) for 19 parameter tensor(s)"),
              std::string::npos)
        << r.output;
    curves.push_back(testing::read_metrics(run));
    // Per-parameter step counts: the embedding and head continue stage 1's 4 steps, the rest counted from 0.
    const auto state =
        nlohmann::json::parse(testing::read_file(fs::path(run) / "checkpoints" / "step_00000008" / "trainer_state.json"));
    const auto& steps = state.at("parameter_steps");
    EXPECT_EQ(steps.size(), 21u);
    for (const auto& [name, n] : steps.items()) {
      EXPECT_EQ(n.get<int64_t>(), name == "model.embed_tokens.weight" || name == "lm_head.weight" ? 8 : 4) << name;
    }
  }
  ASSERT_EQ(curves[0].size(), 4u);
  ASSERT_EQ(curves[1].size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    std::printf("stage 2 step %lld: loss %.6f (1 rank) %.6f (2 ranks)\n", static_cast<long long>(curves[0][i].step),
                curves[0][i].loss, curves[1][i].loss);
    EXPECT_EQ(curves[0][i].step, static_cast<int64_t>(5 + i));
    EXPECT_NEAR(curves[1][i].loss, curves[0][i].loss, 1e-5 * curves[0][i].loss) << "step " << curves[0][i].step;
    EXPECT_NEAR(curves[1][i].grad_norm, curves[0][i].grad_norm, 1e-4 * curves[0][i].grad_norm)
        << "step " << curves[0][i].step;
  }
}

// One optimizer state tensor of a checkpoint, assembled from every rank's file.
torch::Tensor saved_state(const fs::path& ckpt, const std::string& name, const std::string& kind) {
  const auto m = nlohmann::json::parse(testing::read_file(ckpt / "manifest.json"));
  torch::Tensor out;
  for (const auto& rank : m.at("ranks")) {
    for (const auto& s : rank.at("slices")) {
      if (s.at("name") != name) continue;
      int64_t numel = 1;
      for (int64_t d : s.at("shape").get<std::vector<int64_t>>()) numel *= d;
      if (!out.defined()) out = torch::full({numel}, std::nan(""), torch::kFloat32);
      const int64_t begin = s.at("begin"), end = s.at("end");
      out.narrow(0, begin, end - begin).copy_(
          SafetensorsReader(ckpt / rank.at("file").get<std::string>()).tensor(name + "/" + kind));
    }
  }
  return out;
}

// Resuming a checkpoint into a larger model.vocab_size, in bf16, on another rank count:
// the saved rows and their AdamW state come back (4 ranks: partition boundaries inside
// the embedding and the head), new rows start at the mean of the saved ones (their fp32
// master from the loaded weights, not the fresh model's random init) whether or not they
// fit the old padding, and padding rows stay exactly zero.
TEST(ChineseContinuedPretraining, ResumeGrowsTheVocabulary) {
  TempDir dir;
  const std::string run = dir.str("run");
  const std::string base = testing::pajama_exe() + " train --config " + testing::source_dir() +
                           "/configs/tiny.yaml --set run.output_dir=" + run +
                           " --set train.dtype=bf16 --set model.n_layers=2 --set log.every_steps=1"
                           " --set model.vocab_multiple_of=64 --set train.threads=1";
  const fs::path ckpts = fs::path(run) / "checkpoints";
  auto r = testing::run_command(base + " --set train.max_steps=2 --set model.vocab_size=4090");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // 4090 -> 4095 tokens: still 4096 rows; then 4095 -> 4200 tokens, 4224 rows.
  struct Growth {
    int64_t from, to, rows, step;
    std::string launcher;
  };
  for (const Growth& g : {Growth{4090, 4095, 4096, 3, testing::mpirun(4)}, Growth{4095, 4200, 4224, 4, ""}}) {
    r = testing::run_command(g.launcher + base + " --set train.max_steps=" + std::to_string(g.step) +
                             " --set model.vocab_size=" + std::to_string(g.to) + " --set optim.lr=1e-7");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("vocabulary grown on resume from " + std::to_string(g.from) + " to " + std::to_string(g.to)),
              std::string::npos)
        << r.output;
    char prev_name[32], next_name[32];
    std::snprintf(prev_name, sizeof prev_name, "step_%08lld", static_cast<long long>(g.step - 1));
    std::snprintf(next_name, sizeof next_name, "step_%08lld", static_cast<long long>(g.step));
    const fs::path prev = ckpts / prev_name, next = ckpts / next_name;
    SafetensorsReader before(prev / "model.safetensors"), after(next / "model.safetensors");
    for (const std::string name : {"model.embed_tokens.weight", "lm_head.weight"}) {
      const torch::Tensor a = before.tensor(name).to(torch::kFloat32), b = after.tensor(name).to(torch::kFloat32);
      const int64_t dim = b.size(1);
      ASSERT_EQ(b.size(0), g.rows) << name;
      EXPECT_LT((b.narrow(0, 0, g.from) - a.narrow(0, 0, g.from)).abs().max().item<double>(), 1e-2)
          << name << ": saved rows restored";
      const torch::Tensor mean = a.narrow(0, 0, g.from).mean(0, /*keepdim=*/true);
      EXPECT_LT((b.narrow(0, g.from, g.to - g.from) - mean).abs().max().item<double>(), 2e-3)
          << name << ": new rows at the mean (" << g.from << " -> " << g.to << ")";
      EXPECT_TRUE(torch::equal(b.narrow(0, g.to, g.rows - g.to), torch::zeros({g.rows - g.to, dim})))
          << name << ": padding stays zero";
      // AdamW's second moment of the saved rows decays by beta2 = 0.95 at most per step:
      // restored at the right offsets, it cannot fall below 0.95 x the saved one.
      const torch::Tensor v_prev = saved_state(prev, name, "exp_avg_sq").narrow(0, 0, g.from * dim);
      const torch::Tensor v_next = saved_state(next, name, "exp_avg_sq").narrow(0, 0, g.from * dim);
      ASSERT_FALSE(torch::isnan(v_next).any().item<bool>()) << name;
      EXPECT_GT(v_prev.max().item<double>(), 0) << name;
      EXPECT_TRUE((v_next >= v_prev * (0.95 * (1 - 1e-6))).all().item<bool>()) << name << " at step " << g.step;
    }
  }
  r = testing::run_command(testing::pajama_exe() + " convert --checkpoint " + run + " --to-hf " + dir.str("hf"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(SafetensorsReader(dir.path() / "hf" / "model.safetensors").entry("lm_head.weight").shape,
            (std::vector<int64_t>{4200, 128}));
}

}  // namespace
}  // namespace pajama
