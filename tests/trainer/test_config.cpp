#include <gtest/gtest.h>

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <functional>
#include <map>
#include <regex>
#include <set>

#include "core/error.h"
#include "common/support.h"
#include "model/param_count.h"
#include "parallel/zero_optimizer.h"
#include "trainer/memory_plan.h"
#include "trainer/train_config.h"
#include "trainer/trainable.h"

namespace pajama {
namespace {

using testing::TempDir;
using testing::write_file;

std::string configs_dir() { return testing::source_dir() + "/configs"; }

// Loads YAML text through a temporary file; returns the ConfigError message or "".
std::string load_error(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  TempDir dir;
  const auto file = dir.path() / "c.yaml";
  write_file(file, yaml);
  try {
    load_train_config(file.string(), overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, EveryShippedConfigLoadsAndValidates) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(configs_dir())) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    EXPECT_NO_THROW(load_train_config(entry.path().string(), {}));
    ++count;
  }
  EXPECT_GE(count, 11);
}

TEST(Config, PresetShapesMatchPublishedTable) {
  const std::map<std::string, std::array<int64_t, 4>> expected = {
      {"llama-7b", {4096, 32, 32, 32000}},  {"llama-13b", {5120, 40, 40, 32000}},
      {"llama-33b", {6656, 52, 60, 32000}}, {"llama-65b", {8192, 64, 80, 32000}},
      {"baichuan-7b", {4096, 32, 32, 64000}}};
  for (const auto& [name, shape] : expected) {
    const TrainConfig c = load_train_config(configs_dir() + "/" + name + ".yaml", {});
    EXPECT_EQ(c.model.llama.dim, shape[0]) << name;
    EXPECT_EQ(c.model.llama.n_heads, shape[1]) << name;
    EXPECT_EQ(c.model.llama.n_layers, shape[2]) << name;
    EXPECT_EQ(c.model.llama.vocab_size, shape[3]) << name;
  }
  const TrainConfig b = load_train_config(configs_dir() + "/baichuan-7b.yaml", {});
  EXPECT_EQ(b.model.llama.hidden_ffn_dim(), 11008);
  EXPECT_EQ(b.train.seq_len, 4096);
  EXPECT_DOUBLE_EQ(b.model.llama.norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(load_train_config(configs_dir() + "/llama-33b.yaml", {}).lr.lr, 1.5e-4);
}

TEST(Config, OverridesApplyWithTheSameChecks) {
  const std::string yaml = "train:\n  max_steps: 10\n";
  TempDir dir;
  write_file(dir.path() / "c.yaml", yaml);
  const TrainConfig c = load_train_config((dir.path() / "c.yaml").string(),
                                          {"train.max_steps=7", "optim.betas=[0.8, 0.9]", "model.preset=tiny"});
  EXPECT_EQ(c.train.max_steps, 7);
  EXPECT_DOUBLE_EQ(c.adamw.beta1, 0.8);
  EXPECT_EQ(c.model.llama.dim, 128);

  const std::string unknown = load_error(yaml, {"train.max_step=5"});
  EXPECT_NE(unknown.find("--set train.max_step=5"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("unknown key"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("max_steps"), std::string::npos) << "valid keys listed: " << unknown;

  const std::string bad_type = load_error(yaml, {"model.dim=wide"});
  EXPECT_NE(bad_type.find("--set model.dim=wide"), std::string::npos) << bad_type;
  EXPECT_NE(bad_type.find("expected an integer"), std::string::npos) << bad_type;
}

TEST(Config, UnknownTopLevelKeyNamesLineAndValidKeys) {
  const std::string msg = load_error("run:\n  name: x\ntrian:\n  max_steps: 3\n");
  EXPECT_NE(msg.find(":3: trian: unknown key"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train"), std::string::npos) << msg;
}

TEST(Config, TypoInNestedKeyNamesPathAndLine) {
  const std::string msg = load_error("train:\n  max_steps: 3\n  micro_batch: 4\n");
  EXPECT_NE(msg.find(":3: train.micro_batch: unknown key; valid keys under train:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("micro_batch_size"), std::string::npos) << msg;
}

TEST(Config, WrongTypeNamesKeyAndLine) {
  const std::string msg = load_error("model:\n  preset: tiny\n  dim: abc\n");
  EXPECT_NE(msg.find(":3: model.dim: expected an integer, got 'abc'"), std::string::npos) << msg;
  const std::string quoted = load_error("train:\n  max_steps: \"12\"\n");
  EXPECT_NE(quoted.find("train.max_steps: expected an integer"), std::string::npos) << quoted;
  const std::string list = load_error("optim:\n  betas: 0.9\n");
  EXPECT_NE(list.find("optim.betas: expected a list of numbers"), std::string::npos) << list;
}

TEST(Config, InvalidValueNamesKeyAndLine) {
  const std::string msg = load_error("model:\n  preset: tiny\n  n_heads: 4\n  n_kv_heads: 3\n");
  EXPECT_NE(msg.find(":4: model.n_heads 4 is not divisible by model.n_kv_heads 3"), std::string::npos) << msg;
  const std::string stage = load_error("parallel:\n  zero_stage: 3\n");
  EXPECT_NE(stage.find(":2: parallel.zero_stage must be 0, 1 or 2"), std::string::npos) << stage;
  const std::string preset = load_error("model:\n  preset: llama-8b\n");
  EXPECT_NE(preset.find("model.preset"), std::string::npos) << preset;
  EXPECT_NE(preset.find("llama-7b"), std::string::npos) << "valid presets listed: " << preset;
}

TEST(Config, PeakFlopsIsANumberOrAuto) {
  TempDir dir;
  write_file(dir.path() / "c.yaml", "log:\n  peak_flops: auto\n");
  EXPECT_EQ(load_train_config((dir.path() / "c.yaml").string(), {}).log.peak_flops, 0);
  const TrainConfig set = load_train_config((dir.path() / "c.yaml").string(), {"log.peak_flops=312.5e12"});
  EXPECT_EQ(set.log.peak_flops, 312.5e12);
  EXPECT_EQ(parse_train_config_text(dump_train_config(set), "dump").log.peak_flops, 312.5e12);
  const std::string msg = load_error("log:\n  peak_flops: fast\n");
  EXPECT_NE(msg.find(":2: log.peak_flops: 'fast' is neither a number"), std::string::npos) << msg;
  EXPECT_NE(load_error("log:\n  peak_flops: -1\n").find("log.peak_flops must be >= 0"), std::string::npos);
}

TEST(Config, UnevenGlobalBatchIsAnError) {
  const std::string msg = load_error("train:\n  micro_batch_size: 3\n  global_batch_size: 8\n");
  EXPECT_NE(msg.find("train.global_batch_size 8 is not a multiple of train.micro_batch_size 3"), std::string::npos)
      << msg;
}

TEST(Config, MissingFileNamesThePath) {
  try {
    load_train_config("/nonexistent/pajama.yaml", {});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/pajama.yaml: config file not found"), std::string::npos)
        << e.what();
  }
}

TEST(Config, SyntaxErrorNamesLine) {
  const std::string msg = load_error("train:\n  max_steps: [1, 2\n");
  EXPECT_NE(msg.find("YAML syntax error"), std::string::npos) << msg;
}

TEST(Config, ResolvedConfigRoundTrips) {
  const TrainConfig a = load_train_config(configs_dir() + "/tiny-corpus.yaml", {"optim.lr=0.002"});
  const std::string text = dump_train_config(a);
  const TrainConfig b = parse_train_config_text(text, "resolved");
  EXPECT_EQ(dump_train_config(b), text);
  EXPECT_DOUBLE_EQ(b.lr.lr, 0.002);
  ASSERT_EQ(b.data.datasets.size(), 2u);
  EXPECT_DOUBLE_EQ(b.data.datasets[1].weight, 0.4);
  EXPECT_NE(text.find("micro_batch_size: 4"), std::string::npos) << text;
}

// A checkpoint's config.yaml from another version: what this one does not know is
// reported with its line and skipped; the rest is read.
TEST(Config, LenientParseReportsUnknownAndMistypedKeys) {
  const std::string text =
      "model:\n  dim: 64\n  n_heads: 4\n  rope_scaling: yarn\ntrain:\n  max_steps: many\n  seq_len: 32\n"
      "telemetry:\n  on: true\n";
  std::vector<std::string> notes;
  const TrainConfig c = parse_train_config_lenient(text, "ckpt/config.yaml", notes);
  EXPECT_EQ(c.model.llama.dim, 64);
  EXPECT_EQ(c.train.seq_len, 32);
  EXPECT_EQ(c.train.max_steps, TrainLoopConfig{}.max_steps);
  ASSERT_EQ(notes.size(), 3u);
  EXPECT_NE(notes[0].find("ckpt/config.yaml:4: model.rope_scaling: unknown key"), std::string::npos) << notes[0];
  EXPECT_NE(notes[1].find("ckpt/config.yaml:6: train.max_steps: expected an integer, got 'many'"), std::string::npos)
      << notes[1];
  EXPECT_NE(notes[2].find("ckpt/config.yaml:8: telemetry: unknown key"), std::string::npos) << notes[2];
  // The strict parser still refuses the same text.
  EXPECT_THROW(parse_train_config_text(text, "ckpt/config.yaml"), ConfigError);
}

// The executable turns each of these into a non-zero exit and one error line naming the key.
TEST(ConfigCli, BadInputExitsNonZeroWithOneLine) {
  TempDir dir;
  const auto bad = dir.path() / "bad.yaml";
  write_file(bad, "model:\n  preset: tiny\n  n_kv_heads: 3\n");
  const std::string exe = testing::pajama_exe();
  struct Case {
    std::string args;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"info --config " + bad.string(), "model.n_heads 4 is not divisible by model.n_kv_heads 3"},
      {"info --config /nonexistent.yaml", "config file not found"},
      {"info --config " + configs_dir() + "/tiny.yaml --set train.micro_batch=2", "train.micro_batch: unknown key"},
      {"train --config " + configs_dir() + "/tiny.yaml --set model.dim=abc", "model.dim: expected an integer"},
  };
  for (const auto& c : cases) {
    const auto r = testing::run_command(exe + " " + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find("error: "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.args << "\n" << r.output;
  }
}

// train.trainable: `all`, or HF names and globs; the optimizer plans only what trains.
TEST(Config, TrainableSelectsParametersByNameAndGlob) {
  TempDir dir;
  write_file(dir.path() / "c.yaml", "model:\n  preset: llama-7b\n");
  const std::string file = (dir.path() / "c.yaml").string();
  const TrainConfig all = load_train_config(file, {});
  EXPECT_EQ(all.train.trainable, std::vector<std::string>{"all"});
  EXPECT_EQ(trainable_numel(all), count_parameters(all.model.llama));

  const TrainConfig stage1 = load_train_config(file, {"train.trainable=[model.embed_tokens.weight, lm_head.weight]"});
  EXPECT_EQ(trainable_numel(stage1), int64_t{2} * 32000 * 4096);
  // bf16 on 8 ranks, ZeRO-2: the weights stay whole; the fp32 gradient partition, master
  // and AdamW moments (4 + 4 + 8 bytes) cover only the trainable partition.
  const MemoryPlan p1 = plan_memory(stage1, 8, "bf16"), p_all = plan_memory(all, 8, "bf16");
  EXPECT_EQ(p1.weights_bytes, 2 * (count_parameters(stage1.model.llama) + zero_partition_numel(trainable_numel(stage1), 8) * 8 -
                                   trainable_numel(stage1)));
  EXPECT_EQ(p1.static_bytes - p1.weights_bytes, 16 * zero_partition_numel(trainable_numel(stage1), 8));
  EXPECT_LT(p1.static_bytes - p1.weights_bytes, (p_all.static_bytes - p_all.weights_bytes) / 20);
  EXPECT_EQ(plan_checkpoint(stage1, 8, "bf16").model_bytes, plan_checkpoint(all, 8, "bf16").model_bytes);
  // The resolved config renders the list and reads back the same.
  const TrainConfig back = parse_train_config_text(dump_train_config(stage1), "dump");
  EXPECT_EQ(back.train.trainable, stage1.train.trainable);

  const TrainConfig mlp = load_train_config(file, {"train.trainable=model.layers.*.mlp.*"});
  EXPECT_EQ(trainable_numel(mlp), int64_t{32} * 3 * 4096 * 11008);

  const std::vector<std::string> names = {"model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight",
                                          "model.layers.1.mlp.up_proj.weight", "lm_head.weight"};
  EXPECT_EQ(select_trainable(names, {"model.layers.*.up_proj.weight"}),
            (std::vector<std::string>{names[1], names[2]}));
  EXPECT_EQ(select_trainable(names, {"all"}), names);
  try {
    select_trainable(names, {"lm_head.weight", "model.embed.weight"});
    ADD_FAILURE() << "a pattern that matches nothing must be an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'model.embed.weight' matches no parameter"), std::string::npos) << e.what();
  }
  EXPECT_NE(load_error("train:\n  trainable: [all, lm_head.weight]\n", {}).find("train.trainable"),
            std::string::npos);
  EXPECT_NE(load_error("train:\n  trainable: []\n", {}).find("train.trainable"), std::string::npos);
  EXPECT_NE(load_error("model:\n  new_vocab_init: zeros\n", {}).find("model.new_vocab_init"), std::string::npos);
}

TEST(InfoCli, PrintsPublishedParameterCounts) {
  const std::map<std::string, std::string> expected = {{"llama-7b", "6738415616"},
                                                       {"llama-13b", "13015864320"},
                                                       {"llama-33b", "32528943616"},
                                                       {"llama-65b", "65285660672"},
                                                       {"baichuan-7b", "7000559616"}};
  for (const auto& [name, count] : expected) {
    const auto r = testing::run_command(testing::pajama_exe() + " info --config " + configs_dir() + "/" + name +
                                        ".yaml --ranks 8");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("\nparameters: " + count + "\n"), std::string::npos) << name << "\n" << r.output;
  }
}

// The memory plan against an 80 GiB device: LLaMA-65B's bf16 weights alone (130 GB) do
// not fit whatever the rank count; LLaMA-7B on 8 ranks at micro-batch 1, seq 2048 does.
TEST(InfoCli, DeviceMemoryVerdicts) {
  const auto big = testing::run_command(testing::pajama_exe() + " info --config " + configs_dir() +
                                        "/llama-65b.yaml --ranks 64 --device-memory 80");
  ASSERT_EQ(big.exit_code, 0) << big.output;
  EXPECT_NE(big.output.find("\nfits: no"), std::string::npos) << big.output;
  EXPECT_NE(big.output.find("the weights alone"), std::string::npos) << big.output;
  EXPECT_NE(big.output.find("ZeRO-3"), std::string::npos) << big.output;

  const auto seven = testing::run_command(testing::pajama_exe() + " info --config " + configs_dir() +
                                          "/llama-7b.yaml --ranks 8 --device-memory 80 --set train.micro_batch_size=1"
                                          " --set train.seq_len=2048");
  ASSERT_EQ(seven.exit_code, 0) << seven.output;
  EXPECT_NE(seven.output.find("\nfits: yes"), std::string::npos) << seven.output;
  EXPECT_NE(seven.output.find("\npeak memory per rank: "), std::string::npos) << seven.output;

  // Too large a micro-batch: "no", and the advice names a change that fits.
  const auto tight = testing::run_command(testing::pajama_exe() + " info --config " + configs_dir() +
                                          "/llama-7b.yaml --ranks 8 --device-memory 80 --set train.micro_batch_size=16"
                                          " --set train.global_batch_size=128 --set train.seq_len=2048");
  ASSERT_EQ(tight.exit_code, 0) << tight.output;
  EXPECT_NE(tight.output.find("\nfits: no"), std::string::npos) << tight.output;
  EXPECT_NE(tight.output.find("would fit with: train.activation_checkpointing: full"), std::string::npos)
      << tight.output;
}


// ---- validate() beside each config struct ------------------------------------------------------

// The field a failed check is about, by its owner's name, when it points at `member`;
// "" when the check passes.
std::string fault(const std::function<void()>& check, const void* member) {
  try {
    check();
  } catch (const ConfigError& e) {
    if (e.fields().empty()) return "(no field): " + std::string(e.what());
    const ConfigField& f = e.fields().front();
    return f.value == member ? f.name : f.name + " (at another address)";
  }
  return "";
}

TEST(ConfigValidate, EachStructNamesItsOwnField) {
  RunConfig run;
  EXPECT_EQ(fault([&] { run.validate(); }, nullptr), "");
  run.seed = -1;
  EXPECT_EQ(fault([&] { run.validate(); }, &run.seed), "seed");

  TrainLoopConfig train;
  EXPECT_EQ(fault([&] { train.validate(); }, nullptr), "");
  train.seq_len = 0;
  EXPECT_EQ(fault([&] { train.validate(); }, &train.seq_len), "seq_len");
  train = TrainLoopConfig{};
  train.z_loss = -1;  // checked by the model's TrainingOptions, reported on this struct's member
  EXPECT_EQ(fault([&] { train.validate(); }, &train.z_loss), "z_loss");
  train = TrainLoopConfig{};
  train.activation_checkpointing = "most";
  EXPECT_EQ(fault([&] { train.validate(); }, &train.activation_checkpointing), "activation_checkpointing");
  train = TrainLoopConfig{};
  train.trainable = {};
  EXPECT_EQ(fault([&] { train.validate(); }, &train.trainable), "trainable");

  CheckpointConfig checkpoint;
  EXPECT_EQ(fault([&] { checkpoint.validate(); }, nullptr), "");
  checkpoint.io_timeout_s = -1;
  EXPECT_EQ(fault([&] { checkpoint.validate(); }, &checkpoint.io_timeout_s), "io_timeout_s");

  LogConfig log;
  EXPECT_EQ(fault([&] { log.validate(); }, nullptr), "");
  log.every_steps = 0;
  EXPECT_EQ(fault([&] { log.validate(); }, &log.every_steps), "every_steps");

  EvalConfig eval;
  EXPECT_EQ(fault([&] { eval.validate(); }, nullptr), "");
  eval.batches = 0;
  EXPECT_EQ(fault([&] { eval.validate(); }, &eval.batches), "batches");

  LrScheduleConfig lr;
  EXPECT_EQ(fault([&] { lr.validate(); }, nullptr), "");
  lr.warmup_steps = 10;
  lr.decay_start = 5;
  EXPECT_EQ(fault([&] { lr.validate(); }, &lr.decay_start), "decay_start");

  AdamWConfig adamw;
  EXPECT_EQ(fault([&] { adamw.validate(); }, nullptr), "");
  adamw.beta2 = 1;
  EXPECT_EQ(fault([&] { adamw.validate(); }, &adamw.beta2), "beta2");

  ZeroConfig zero;
  EXPECT_EQ(fault([&] { zero.validate(); }, nullptr), "");
  zero.stage = 3;
  EXPECT_EQ(fault([&] { zero.validate(); }, &zero.stage), "stage");
  zero = ZeroConfig{};
  zero.reduce_dtype = "fp16";
  EXPECT_EQ(fault([&] { zero.validate(); }, &zero.reduce_dtype), "reduce_dtype");

  CommConfig comm;
  EXPECT_EQ(fault([&] { comm.validate(); }, nullptr), "");
  comm.timeout_s = 0;
  EXPECT_EQ(fault([&] { comm.validate(); }, &comm.timeout_s), "timeout_s");

  DataConfig data;
  EXPECT_EQ(fault([&] { data.validate(); }, nullptr), "");
  data.source = "shards";
  EXPECT_EQ(fault([&] { data.validate(); }, &data.datasets), "datasets");
  data.datasets = {DatasetSpec{"a", 1.0, ""}, DatasetSpec{"b", 0.0, ""}};
  EXPECT_EQ(fault([&] { data.validate(); }, &data.datasets[1].weight), "datasets[1].weight");
  data.datasets[1].weight = 1;
  data.valid_datasets = {DatasetSpec{"c", 1.0, ""}};
  data.valid_fraction = 0.1;
  EXPECT_EQ(fault([&] { data.validate(); }, &data.valid_datasets), "valid_datasets");

  ModelSection model;
  EXPECT_EQ(fault([&] { model.validate(); }, nullptr), "");
  model.new_vocab_init = "zeros";
  EXPECT_EQ(fault([&] { model.validate(); }, &model.new_vocab_init), "new_vocab_init");
  model = ModelSection{};
  model.llama.n_layers = 0;
  EXPECT_EQ(fault([&] { model.validate(); }, &model.llama.n_layers), "n_layers");

  TrainConfig all;
  EXPECT_EQ(fault([&] { all.validate(); }, nullptr), "");
  all.train.seq_len = all.model.llama.max_seq_len + 1;
  EXPECT_EQ(fault([&] { all.validate(); }, &all.train.seq_len), "seq_len");
}

// Every key path of the resolved config, list items as [0]: the keys a message may name.
std::set<std::string> resolved_key_paths() {
  TrainConfig c;
  c.data.datasets = {DatasetSpec{"p", 1.0, "n"}};
  c.data.valid_datasets = c.data.datasets;
  std::set<std::string> out;
  std::function<void(const YAML::Node&, const std::string&)> walk = [&](const YAML::Node& n, const std::string& path) {
    if (!path.empty()) out.insert(path);
    if (n.IsMap()) {
      for (const auto& kv : n) walk(kv.second, (path.empty() ? "" : path + ".") + kv.first.as<std::string>());
    } else if (n.IsSequence() && n.size() > 0 && n[0].IsMap()) {
      walk(n[0], path + "[0]");
    }
  };
  walk(YAML::Load(dump_train_config(c)), "");
  return out;
}

// Acceptance (issue 15): every check of every config struct, triggered from YAML, is
// reported at file:line with key paths that exist in the config, never a component's
// own field name or an invented key.
TEST(ConfigValidate, EveryErrorNamesRealKeyPathsAtFileAndLine) {
  struct Case {
    std::string yaml;
    std::string key;  // the key path the message must name
  };
  const std::vector<Case> cases = {
      {"run:\n  output_dir: ''\n", "run.output_dir"},
      {"run:\n  seed: -1\n", "run.seed"},
      {"model:\n  vocab_size: 0\n", "model.vocab_size"},
      {"model:\n  vocab_multiple_of: 0\n", "model.vocab_multiple_of"},
      {"model:\n  dim: 0\n", "model.dim"},
      {"model:\n  n_layers: 0\n", "model.n_layers"},
      {"model:\n  n_heads: 0\n", "model.n_heads"},
      {"model:\n  dim: 100\n  n_heads: 3\n", "model.n_heads"},
      {"model:\n  dim: 96\n  n_heads: 32\n", "model.dim"},
      {"model:\n  n_kv_heads: -1\n", "model.n_kv_heads"},
      {"model:\n  n_kv_heads: 5\n", "model.n_kv_heads"},
      {"model:\n  ffn_dim: -1\n", "model.ffn_dim"},
      {"model:\n  multiple_of: 0\n", "model.multiple_of"},
      {"model:\n  ffn_dim_multiplier: 0\n", "model.ffn_dim_multiplier"},
      {"model:\n  norm_eps: 0\n", "model.norm_eps"},
      {"model:\n  rope_theta: 0\n", "model.rope_theta"},
      {"model:\n  max_seq_len: 0\n", "model.max_seq_len"},
      {"model:\n  init_std: 0\n", "model.init_std"},
      {"model:\n  new_vocab_init: zeros\n", "model.new_vocab_init"},
      {"train:\n  max_steps: 0\n", "train.max_steps"},
      {"train:\n  micro_batch_size: 0\n", "train.micro_batch_size"},
      {"train:\n  global_batch_size: 0\n", "train.global_batch_size"},
      {"train:\n  micro_batch_size: 3\n  global_batch_size: 8\n", "train.global_batch_size"},
      {"train:\n  seq_len: 0\n", "train.seq_len"},
      {"train:\n  device: tpu\n", "train.device"},
      {"train:\n  dtype: fp16\n", "train.dtype"},
      {"train:\n  dtype: int8\n", "train.dtype"},
      {"train:\n  nonfinite: ignore\n", "train.nonfinite"},
      {"train:\n  max_consecutive_skips: -1\n", "train.max_consecutive_skips"},
      {"train:\n  spike_factor: 0.5\n", "train.spike_factor"},
      {"train:\n  threads: -1\n", "train.threads"},
      {"train:\n  activation_checkpointing: most\n", "train.activation_checkpointing"},
      {"train:\n  loss_chunk_tokens: 0\n", "train.loss_chunk_tokens"},
      {"train:\n  z_loss: -1\n", "train.z_loss"},
      {"train:\n  trainable: []\n", "train.trainable"},
      {"train:\n  trainable: ['']\n", "train.trainable"},
      {"train:\n  trainable: [all, lm_head.weight]\n", "train.trainable"},
      {"train:\n  seq_len: 4096\nmodel:\n  max_seq_len: 2048\n", "train.seq_len"},
      {"optim:\n  lr: 0\n", "optim.lr"},
      {"optim:\n  min_lr_ratio: 2\n", "optim.min_lr_ratio"},
      {"optim:\n  warmup_steps: -1\n", "optim.warmup_steps"},
      {"optim:\n  decay_steps: -1\n", "optim.decay_steps"},
      {"optim:\n  schedule: step\n", "optim.schedule"},
      {"optim:\n  decay_start: -1\n", "optim.decay_start"},
      {"optim:\n  decay_fraction: 0\n", "optim.decay_fraction"},
      {"optim:\n  decay_shape: exp\n", "optim.decay_shape"},
      {"optim:\n  warmup_steps: 10\n  decay_start: 5\n", "optim.decay_start"},
      {"optim:\n  decay_start: 50\n  decay_steps: 40\n", "optim.decay_start"},
      {"optim:\n  betas: [1.0, 0.95]\n", "optim.betas"},
      {"optim:\n  betas: [0.9, -0.1]\n", "optim.betas"},
      {"optim:\n  eps: 0\n", "optim.eps"},
      {"optim:\n  weight_decay: -1\n", "optim.weight_decay"},
      {"data:\n  source: web\n", "data.source"},
      {"data:\n  source: shards\n", "data.datasets"},
      {"data:\n  source: shards\n  datasets:\n    - {weight: 1}\n", "data.datasets[0].path"},
      {"data:\n  source: shards\n  datasets:\n    - {path: a, weight: 0}\n", "data.datasets[0].weight"},
      {"data:\n  valid_datasets:\n    - {path: a, weight: -1}\n", "data.valid_datasets[0].weight"},
      {"data:\n  valid_fraction: 1\n", "data.valid_fraction"},
      {"data:\n  valid_fraction: 0.1\n  valid_datasets:\n    - {path: a}\n", "data.valid_datasets"},
      {"parallel:\n  zero_stage: 3\n", "parallel.zero_stage"},
      {"parallel:\n  reduce_bucket_size: 0\n", "parallel.reduce_bucket_size"},
      {"parallel:\n  allgather_bucket_size: 0\n", "parallel.allgather_bucket_size"},
      {"parallel:\n  reduce_dtype: fp16\n", "parallel.reduce_dtype"},
      {"parallel:\n  timeout_s: 0\n", "parallel.timeout_s"},
      {"parallel:\n  first_step_timeout_s: -1\n", "parallel.first_step_timeout_s"},
      {"checkpoint:\n  every_steps: -1\n", "checkpoint.every_steps"},
      {"checkpoint:\n  keep_last: -1\n", "checkpoint.keep_last"},
      {"checkpoint:\n  keep_every: -1\n", "checkpoint.keep_every"},
      {"checkpoint:\n  resume: ''\n", "checkpoint.resume"},
      {"checkpoint:\n  io_timeout_s: -1\n", "checkpoint.io_timeout_s"},
      {"log:\n  every_steps: 0\n", "log.every_steps"},
      {"log:\n  peak_flops: -1\n", "log.peak_flops"},
      {"eval:\n  every_steps: -1\n", "eval.every_steps"},
      {"eval:\n  batches: 0\n", "eval.batches"},
  };
  const std::set<std::string> keys = resolved_key_paths();
  const std::regex located(R"(^\S*c\.yaml:\d+: )");
  const std::regex key_path(
      R"((^|[^\w.])((run|model|train|optim|data|parallel|checkpoint|log|eval)\.[\w.\[\]]*\w\]?))");
  const std::regex index(R"(\[\d+\])");
  for (const auto& c : cases) {
    SCOPED_TRACE(c.yaml);
    const std::string msg = load_error(c.yaml);
    ASSERT_FALSE(msg.empty()) << "accepted";
    EXPECT_TRUE(std::regex_search(msg, located)) << "no file:line: " << msg;
    EXPECT_NE(msg.find(c.key), std::string::npos) << msg;
    int named = 0;
    for (auto it = std::sregex_iterator(msg.begin(), msg.end(), key_path); it != std::sregex_iterator(); ++it) {
      const std::string path = std::regex_replace((*it)[2].str(), index, "[0]");
      EXPECT_TRUE(keys.count(path)) << "'" << path << "' is not a key of the config: " << msg;
      ++named;
    }
    EXPECT_GE(named, 1) << msg;
  }
  // The same through --set: the location is the override.
  const std::string set = load_error("", {"parallel.timeout_s=0"});
  EXPECT_EQ(set.rfind("--set parallel.timeout_s=0: parallel.timeout_s must be positive", 0), 0u) << set;
}

}  // namespace
}  // namespace pajama
