#include "trainer/train_config.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "trainer/config_binder.h"
#include "trainer/trainable.h"
#include "model/vocab_resize.h"

namespace pajama {
namespace {

void bind_model(ConfigBinder& b, ModelSection& m) {
  b.field("preset", m.preset);
  if (b.loading() && !m.preset.empty()) {
    try {
      m.llama = llama_preset(m.preset);
    } catch (const ConfigError& e) {
      b.fail("preset", e.what());
    }
  }
  LlamaConfig& c = m.llama;
  b.field("vocab_size", c.vocab_size);
  b.field("vocab_multiple_of", c.vocab_multiple_of);
  b.field("dim", c.dim);
  b.field("n_layers", c.n_layers);
  b.field("n_heads", c.n_heads);
  b.field("n_kv_heads", c.n_kv_heads);
  b.field("ffn_dim", c.ffn_dim);
  b.field("multiple_of", c.multiple_of);
  b.field("ffn_dim_multiplier", c.ffn_dim_multiplier);
  b.field("norm_eps", c.norm_eps);
  b.field("rope_theta", c.rope_theta);
  b.field("max_seq_len", c.max_seq_len);
  b.field("tie_embeddings", c.tie_embeddings);
  b.field("init_std", c.init_std);
  b.field("init_from", m.init_from);
  b.field("new_vocab_init", m.new_vocab_init);
}

void bind_optim(ConfigBinder& b, LrScheduleConfig& lr, AdamWConfig& adamw) {
  b.field("lr", lr.lr);
  b.field("min_lr_ratio", lr.min_lr_ratio);
  b.field("warmup_steps", lr.warmup_steps);
  b.field("decay_steps", lr.decay_steps);
  b.field("schedule", lr.schedule);
  b.field("decay_start", lr.decay_start);
  b.field("decay_fraction", lr.decay_fraction);
  b.field("decay_shape", lr.decay_shape);
  b.field("weight_decay", adamw.weight_decay);
  std::vector<double> betas = {adamw.beta1, adamw.beta2};
  b.field("betas", betas);
  b.attribute("betas", {&adamw.beta1, &adamw.beta2});
  if (b.loading()) {
    if (betas.size() != 2) b.fail("betas", str("expected two numbers [beta1, beta2], got ", betas.size()));
    adamw.beta1 = betas[0];
    adamw.beta2 = betas[1];
  }
  b.field("eps", adamw.eps);
}

void bind_dataset(ConfigBinder& b, DatasetSpec& d) {
  b.field("path", d.path);
  b.field("weight", d.weight);
  b.field("name", d.name);
}

void bind_run(ConfigBinder& b, RunConfig& c) {
  b.field("name", c.name);
  b.field("output_dir", c.output_dir);
  b.field("seed", c.seed);
}

void bind_train(ConfigBinder& b, TrainLoopConfig& c) {
  b.field("max_steps", c.max_steps);
  b.field("micro_batch_size", c.micro_batch_size);
  b.field("global_batch_size", c.global_batch_size);
  b.field("seq_len", c.seq_len);
  b.field("grad_clip", c.grad_clip);
  b.field("device", c.device);
  b.field("dtype", c.dtype);
  b.field("threads", c.threads);
  b.field("activation_checkpointing", c.activation_checkpointing);
  b.field("loss_chunk_tokens", c.loss_chunk_tokens);
  b.field("z_loss", c.z_loss);
  b.field("trainable", c.trainable);
  b.field("nonfinite", c.nonfinite);
  b.field("max_consecutive_skips", c.max_consecutive_skips);
  b.field("spike_factor", c.spike_factor);
}

void bind_data(ConfigBinder& b, DataConfig& c) {
  b.field("source", c.source);
  b.list<DatasetSpec>("datasets", c.datasets, bind_dataset);
  b.list<DatasetSpec>("valid_datasets", c.valid_datasets, bind_dataset);
  b.field("valid_fraction", c.valid_fraction);
  b.field("tokenizer", c.tokenizer);
}

void bind_parallel(ConfigBinder& b, ZeroConfig& zero, CommConfig& comm) {
  b.field("zero_stage", zero.stage);
  b.field("reduce_bucket_size", zero.reduce_bucket_size);
  b.field("allgather_bucket_size", zero.allgather_bucket_size);
  b.field("overlap_comm", zero.overlap_comm);
  b.field("reduce_dtype", zero.reduce_dtype);
  b.field("timeout_s", comm.timeout_s);
  b.field("first_step_timeout_s", comm.first_step_timeout_s);
}

void bind_checkpoint(ConfigBinder& b, CheckpointConfig& c) {
  b.field("every_steps", c.every_steps);
  b.field("keep_last", c.keep_last);
  b.field("keep_every", c.keep_every);
  b.field("resume", c.resume);
  b.field("save_final", c.save_final);
  b.field("async", c.async);
  b.field("io_timeout_s", c.io_timeout_s);
}

void bind_log(ConfigBinder& b, LogConfig& c) {
  b.field("every_steps", c.every_steps);
  // A number, or `auto` (the same as 0): a known GPU's dense bf16 peak.
  std::string peak = "auto";
  if (c.peak_flops != 0) {
    char buf[32];
    peak.assign(buf, std::to_chars(buf, buf + sizeof buf, c.peak_flops).ptr);  // shortest exact form
  }
  b.field("peak_flops", peak);
  b.attribute("peak_flops", {&c.peak_flops});
  if (!b.loading()) return;
  if (peak == "auto") {
    c.peak_flops = 0;
    return;
  }
  size_t used = 0;
  try {
    c.peak_flops = std::stod(peak, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != peak.size() || peak.empty()) {
    b.fail("peak_flops", "'" + peak + "' is neither a number of FLOP/s (e.g. 989e12) nor auto");
  }
}

void bind_eval(ConfigBinder& b, EvalConfig& c) {
  b.field("every_steps", c.every_steps);
  b.field("batches", c.batches);
}

// The one map from YAML sections to the config structs.
void bind_all(ConfigBinder& b, TrainConfig& c) {
  b.section("run", [&](ConfigBinder& s) { bind_run(s, c.run); });
  b.section("model", [&](ConfigBinder& s) { bind_model(s, c.model); });
  b.section("train", [&](ConfigBinder& s) { bind_train(s, c.train); });
  b.section("optim", [&](ConfigBinder& s) { bind_optim(s, c.lr, c.adamw); });
  b.section("data", [&](ConfigBinder& s) { bind_data(s, c.data); });
  b.section("parallel", [&](ConfigBinder& s) { bind_parallel(s, c.zero, c.comm); });
  b.section("checkpoint", [&](ConfigBinder& s) { bind_checkpoint(s, c.checkpoint); });
  b.section("log", [&](ConfigBinder& s) { bind_log(s, c.log); });
  b.section("eval", [&](ConfigBinder& s) { bind_eval(s, c.eval); });
  b.finish();
}

TrainConfig bind_and_validate(const YAML::Node& root, const std::shared_ptr<ConfigOrigins>& origins) {
  TrainConfig cfg;
  ConfigBinder b = ConfigBinder::loader(root, origins);
  bind_all(b, cfg);
  try {
    cfg.validate();
  } catch (const ConfigError& e) {
    rethrow_with_location(*origins, e);
  }
  return cfg;
}

}  // namespace

void RunConfig::validate() const {
  PAJAMA_CHECK_FIELD(!output_dir.empty(), output_dir, "output_dir must not be empty");
  PAJAMA_CHECK_FIELD(seed >= 0, seed, "seed must be >= 0, got ", seed);
}

void ModelSection::validate() const {
  llama.validate();
  check_new_vocab_rule(new_vocab_init);
}

namespace {

// `e` about `own` members where its fields have their names: the model's training
// options are copies of TrainLoopConfig's fields under the same names.
ConfigError about_own_fields(const ConfigError& e, const std::vector<ConfigField>& own) {
  std::vector<ConfigField> fields = e.fields();
  for (ConfigField& f : fields) {
    for (const ConfigField& o : own) {
      if (f.name == o.name) f.value = o.value;
    }
  }
  return ConfigError(std::move(fields), e.what());
}

}  // namespace

void TrainLoopConfig::validate() const {
  PAJAMA_CHECK_FIELD(max_steps > 0, max_steps, "max_steps must be positive, got ", max_steps);
  PAJAMA_CHECK_FIELD(micro_batch_size > 0, micro_batch_size, "micro_batch_size must be positive, got ",
                     micro_batch_size);
  PAJAMA_CHECK_FIELD(global_batch_size > 0, global_batch_size, "global_batch_size must be positive, got ",
                     global_batch_size);
  if (global_batch_size % micro_batch_size != 0) {
    throw ConfigError({PAJAMA_FIELD(global_batch_size), PAJAMA_FIELD(micro_batch_size)},
                      str("global_batch_size ", global_batch_size, " is not a multiple of micro_batch_size ",
                          micro_batch_size));
  }
  PAJAMA_CHECK_FIELD(seq_len > 0, seq_len, "seq_len must be positive, got ", seq_len);
  PAJAMA_CHECK_FIELD(device == "auto" || device == "cpu" || device == "cuda", device,
                     "device must be auto, cpu or cuda; got '", device, "'");
  PAJAMA_CHECK_FIELD(dtype != "fp16" && dtype != "float16", dtype,
                     "dtype fp16 is not supported: it needs dynamic loss scaling, whose collapse made "
                     "Chinese-LLaMA move to bf16; use dtype: bf16 (same memory, fp32's exponent range)");
  PAJAMA_CHECK_FIELD(dtype == "auto" || dtype == "fp32" || dtype == "bf16", dtype,
                     "dtype must be auto, fp32 or bf16; got '", dtype, "'");
  PAJAMA_CHECK_FIELD(nonfinite == "skip" || nonfinite == "stop", nonfinite, "nonfinite must be skip or stop; got '",
                     nonfinite, "'");
  PAJAMA_CHECK_FIELD(max_consecutive_skips >= 0, max_consecutive_skips, "max_consecutive_skips must be >= 0, got ",
                     max_consecutive_skips);
  PAJAMA_CHECK_FIELD(spike_factor == 0 || spike_factor > 1, spike_factor,
                     "spike_factor must be 0 (off) or > 1, got ", spike_factor);
  PAJAMA_CHECK_FIELD(threads >= 0, threads, "threads must be >= 0, got ", threads);
  try {
    training_options(*this).validate();
  } catch (const ConfigError& e) {
    throw about_own_fields(e, {PAJAMA_FIELD(loss_chunk_tokens), PAJAMA_FIELD(z_loss)});
  }
  validate_trainable(trainable);
}

TrainingOptions training_options(const TrainLoopConfig& train) {
  TrainingOptions o;
  o.checkpointing = parse_activation_checkpointing(train.activation_checkpointing);
  o.loss_chunk_tokens = train.loss_chunk_tokens;
  o.z_loss = train.z_loss;
  return o;
}

void CheckpointConfig::validate() const {
  PAJAMA_CHECK_FIELD(every_steps >= 0, every_steps, "every_steps must be >= 0 (0 = off), got ", every_steps);
  PAJAMA_CHECK_FIELD(keep_last >= 0, keep_last, "keep_last must be >= 0, got ", keep_last);
  PAJAMA_CHECK_FIELD(keep_every >= 0, keep_every, "keep_every must be >= 0, got ", keep_every);
  PAJAMA_CHECK_FIELD(!resume.empty(), resume, "resume must be auto, none or a checkpoint path");
  PAJAMA_CHECK_FIELD(io_timeout_s >= 0, io_timeout_s, "io_timeout_s must be >= 0 (0 = auto), got ", io_timeout_s);
}

void LogConfig::validate() const {
  PAJAMA_CHECK_FIELD(every_steps > 0, every_steps, "every_steps must be positive, got ", every_steps);
  PAJAMA_CHECK_FIELD(peak_flops >= 0, peak_flops, "peak_flops must be >= 0, got ", peak_flops);
}

void TrainConfig::validate() const {
  run.validate();
  model.validate();
  train.validate();
  lr.validate();
  adamw.validate();
  data.validate();
  zero.validate();
  comm.validate();
  checkpoint.validate();
  log.validate();
  eval.validate();
  if (train.seq_len > model.llama.max_seq_len) {
    throw ConfigError({ConfigField{"seq_len", &train.seq_len}, ConfigField{"max_seq_len", &model.llama.max_seq_len}},
                      str("seq_len ", train.seq_len, " exceeds max_seq_len ", model.llama.max_seq_len,
                          "; raise max_seq_len"));
  }
}

TrainConfig load_train_config(const std::string& file, const std::vector<std::string>& overrides) {
  auto origins = std::make_shared<ConfigOrigins>();
  YAML::Node root = load_yaml_with_overrides(file, overrides, *origins);
  return bind_and_validate(root, origins);
}

namespace {

YAML::Node load_yaml_text(const std::string& yaml_text, const std::string& origin) {
  try {
    YAML::Node root = YAML::Load(yaml_text);
    PAJAMA_CHECK_AS(ConfigError, root.IsMap(), origin, ": the top level must be a map of sections");
    return root;
  } catch (const YAML::Exception& e) {
    throw ConfigError(str(origin, ": cannot parse config: ", e.what()));
  }
}

}  // namespace

TrainConfig parse_train_config_text(const std::string& yaml_text, const std::string& origin) {
  auto origins = std::make_shared<ConfigOrigins>();
  origins->file = origin;
  return bind_and_validate(load_yaml_text(yaml_text, origin), origins);
}

TrainConfig parse_train_config_lenient(const std::string& yaml_text, const std::string& origin,
                                       std::vector<std::string>& notes) {
  auto origins = std::make_shared<ConfigOrigins>();
  origins->file = origin;
  origins->lenient_notes = &notes;
  TrainConfig cfg;
  ConfigBinder b = ConfigBinder::loader(load_yaml_text(yaml_text, origin), origins);
  bind_all(b, cfg);
  try {
    cfg.validate();
  } catch (const ConfigError& e) {
    notes.push_back("no longer valid: " + origins->describe(e));
  }
  return cfg;
}

std::string dump_train_config(const TrainConfig& cfg) {
  YAML::Node out(YAML::NodeType::Map);
  ConfigBinder b = ConfigBinder::dumper(out);
  TrainConfig copy = cfg;
  bind_all(b, copy);
  YAML::Emitter e;
  e << out;
  return std::string(e.c_str()) + "\n";
}

}  // namespace pajama
