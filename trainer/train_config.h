// The whole run's configuration: the sections users write in YAML, each a struct
// owned by the module it configures, plus the few settings only the trainer uses.
// load_train_config() reads a file, applies --set overrides, binds strictly and
// validates; dump_train_config() renders the resolved config as YAML.
// Every struct's validate() throws ConfigError about its own fields by their member
// names (core/error.h ConfigField); the binder (trainer/config_binder.h) names them by
// the YAML key path they were bound from, with the file and line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/data_config.h"
#include "model/llama_config.h"
#include "model/training_options.h"
#include "parallel/parallel_config.h"
#include "trainer/evaluator.h"
#include "trainer/lr_schedule.h"

namespace pajama {

struct RunConfig {
  std::string name = "pajama";          // run name, shown in logs and metrics
  std::string output_dir = "runs/pajama";  // run directory; a second run with the same one continues it
  int64_t seed = 1234;                  // seeds model init and data order
  void validate() const;
};

struct ModelSection {
  std::string preset;                   // a published shape (llama-7b, baichuan-7b, ...); fields below override it
  LlamaConfig llama;
  std::string init_from;                // Hugging Face LLaMA directory to start from ("" = random init)
  std::string new_vocab_init = "mean";  // rows added by a larger vocab_size: mean | mean_noise (model/vocab_resize.h)
  void validate() const;
};

struct TrainLoopConfig {
  int64_t max_steps = 100;              // optimizer steps
  int64_t micro_batch_size = 1;         // sequences per rank per forward/backward
  int64_t global_batch_size = 8;        // sequences per optimizer step over all ranks
  int64_t seq_len = 256;                // tokens per sequence
  double grad_clip = 1.0;               // global-norm clipping threshold (<= 0: off)
  std::string device = "auto";          // auto | cpu | cuda (auto: cuda when available)
  std::string dtype = "auto";           // auto | fp32 | bf16 (auto: bf16 on cuda, fp32 on cpu)
  int64_t threads = 0;                  // CPU threads per rank (0: cores / ranks on the node)
  std::string activation_checkpointing = "none";  // none | full | selective (model/training_options.h)
  int64_t loss_chunk_tokens = 1024;     // tokens per chunk of the LM head + cross-entropy
  double z_loss = 0.0;                  // weight of mean(logsumexp^2) in the loss (0 = off)
  std::vector<std::string> trainable = {"all"};  // all | HF parameter names / globs (trainer/trainable.h)
  std::string nonfinite = "skip";       // a non-finite loss or gradient on any rank: skip the update | stop
  int64_t max_consecutive_skips = 10;   // skipped steps in a row (non-finite or spikes) before the run aborts
  double spike_factor = 0;              // skip a step whose gradient norm exceeds this x the running median (0 = off)
  void validate() const;
};

// The model's training options from the train section.
TrainingOptions training_options(const TrainLoopConfig& train);

struct CheckpointConfig {
  int64_t every_steps = 0;              // save every N steps (0 = only at the end and on signals)
  int64_t keep_last = 3;                // keep the newest K checkpoints (0 = all)
  int64_t keep_every = 0;               // also keep every M-th step forever (0 = none)
  std::string resume = "auto";          // auto (newest complete one in the run dir) | none | PATH
  bool save_final = true;               // save when max_steps is reached
  bool async = true;                    // snapshot to host memory, write in the background
  double io_timeout_s = 0;              // deadline of collectives that wait on checkpoint I/O
                                        // (0 = auto: parallel.timeout_s + bytes at 20 MB/s)
  void validate() const;
};

struct LogConfig {
  int64_t every_steps = 10;             // console line + metrics.jsonl record every N steps
  double peak_flops = 0;                // per-device peak FLOP/s for MFU (0 = auto: known GPUs in bf16)
  void validate() const;
};

struct TrainConfig {
  RunConfig run;
  ModelSection model;
  TrainLoopConfig train;
  LrScheduleConfig lr;                  // YAML section optim (schedule part)
  AdamWConfig adamw;                    // YAML section optim (AdamW part)
  DataConfig data;
  ZeroConfig zero;                      // YAML section parallel
  CommConfig comm;                      // YAML section parallel (timeout_s)
  CheckpointConfig checkpoint;
  LogConfig log;
  EvalConfig eval;
  void validate() const;                // each section's validate(), then seq_len vs max_seq_len
};

TrainConfig load_train_config(const std::string& file, const std::vector<std::string>& overrides);
std::string dump_train_config(const TrainConfig& cfg);
// Parses YAML text produced by dump_train_config (checkpoints carry it).
TrainConfig parse_train_config_text(const std::string& yaml_text, const std::string& origin);
// The same for a config written by another pajama version (a checkpoint's config.yaml):
// unknown keys, values of the wrong type and failed checks are appended to `notes`
// ("file:line: key: what") and skipped; the defaults stand in for what was skipped.
TrainConfig parse_train_config_lenient(const std::string& yaml_text, const std::string& origin,
                                       std::vector<std::string>& notes);

}  // namespace pajama
