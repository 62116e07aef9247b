#include "trainer/trainer.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/signals.h"
#include "data/sample_source_factory.h"
#include "model/param_count.h"
#include "parallel/adamw.h"
#include "parallel/device_memory.h"
#include "trainer/micro_batch.h"
#include "trainer/run_setup.h"
#include "trainer/hf_init.h"
#include "trainer/lr_schedule.h"

namespace pajama {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// The spike rule's running median: over the last kSpikeWindow applied steps, once at
// least kSpikeMinHistory of them exist.
constexpr size_t kSpikeWindow = 100;
constexpr size_t kSpikeMinHistory = 20;

void append_line(const fs::path& path, const std::string& line) {
  std::FILE* f = std::fopen(path.c_str(), "a");
  PAJAMA_CHECK(f != nullptr, "cannot open ", path.string(), " for appending: ", std::strerror(errno));
  std::fprintf(f, "%s\n", line.c_str());
  std::fclose(f);
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

NanTestHook NanTestHook::from_env() {
  NanTestHook h;
  const char* v = std::getenv("PAJAMA_TEST_NAN");
  if (v == nullptr) return h;
  long long rank = -1, step = -1, count = 1;
  double factor = h.factor;
  const int n = std::sscanf(v, "%lld:%lld:%lld:%lf", &rank, &step, &count, &factor);
  PAJAMA_CHECK(n >= 2 && rank >= 0 && step >= 1 && count >= 1, "PAJAMA_TEST_NAN must be RANK:STEP[:COUNT[:FACTOR]], got '",
               v, "'");
  h.rank = static_cast<int>(rank);
  h.step = step;
  h.count = count;
  h.factor = factor;
  return h;
}

Trainer::Trainer(const TrainConfig& cfg, const World& world, Communicator& comm)
    : cfg_(cfg),
      world_(world),
      device_(resolve_device(cfg.train, world)),
      dtype_(resolve_dtype(cfg.train, device_)),
      comm_(comm),
      nan_hook_(NanTestHook::from_env()) {
  log_info("run ", cfg.run.name, ": ", cfg.run.output_dir);
  set_cpu_threads(cfg.train, world);
  // What the process holds before the model exists: the baseline the memory plan and
  // the peak-memory metric are measured from.
  rest_memory_bytes_ = read_memory(device_).current_bytes;
  const auto seed = static_cast<uint64_t>(cfg.run.seed);
  torch::manual_seed(seed);

  const LlamaConfig& mc = cfg.model.llama;
  model_ = Llama(mc);
  model_->init_weights(seed);
  model_->to(device_, dtype_);
  if (!cfg.model.init_from.empty()) {
    log_info("initialising weights from Hugging Face directory ", cfg.model.init_from);
    init_from_hf(model_, cfg.model.init_from, cfg.model.new_vocab_init, seed);
  }

  model_->set_training_options(training_options(cfg.train));

  check_memory_plan(cfg, world, device_, dtype_);
  const NamedParameters params = trainable_parameters(model_, cfg.train.trainable);
  optimizer_ = std::make_unique<ZeroOptimizer>(params, adamw_factory(cfg.adamw), cfg.zero, comm_);

  const int64_t num_samples = cfg.train.max_steps * cfg.train.global_batch_size;
  auto source = make_sample_source(cfg.data, Split::kTrain, cfg.train.seq_len, mc.vocab_size, seed, num_samples);
  loader_ = std::make_unique<TokenLoader>(source, cfg.train.global_batch_size, cfg.train.micro_batch_size,
                                          world.rank, world.size);

  std::vector<NamedSampleSource> valid =
      cfg.eval.every_steps > 0 ? make_validation_sources(cfg.data, cfg.train.seq_len, mc.vocab_size, seed)
                               : std::vector<NamedSampleSource>{};
  PAJAMA_CHECK_AS(ConfigError, cfg.eval.every_steps == 0 || !valid.empty(),
                  "eval.every_steps is ", cfg.eval.every_steps,
                  " but there is no validation data; set data.valid_fraction or data.valid_datasets, "
                  "or eval.every_steps: 0");
  checkpointer_ = std::make_unique<Checkpointer>(cfg.checkpoint, cfg.run.output_dir, comm_, device_);
  if (auto state = checkpointer_->maybe_resume(model_, *optimizer_, dump_train_config(cfg), cfg.model.new_vocab_init, seed)) {
    step_ = state->step;
    tokens_seen_ = state->tokens_seen;
    loader_->set_consumed_samples(state->consumed_samples);
  }
  // After the resume: records of steps past the checkpoint are dropped first.
  metrics_ = std::make_unique<MetricsLogger>(cfg.run.output_dir, world.is_main(), step_);
  evaluator_ = std::make_unique<Evaluator>(
      cfg.eval, std::move(valid), cfg.train.global_batch_size, cfg.train.micro_batch_size, comm_, cfg.run.output_dir,
      [this](const std::string& tag, int64_t step, double value) { metrics_->scalar(tag, step, value); });

  flops_per_token_ = flops_per_token(mc, cfg.train.seq_len);
  peak_flops_ = resolve_peak_flops(cfg.log.peak_flops, device_, dtype_);
  log_info("model: ", count_parameters(mc), " parameters, ", flops_per_token_ / 1e9, " GFLOP/token at seq ",
           cfg.train.seq_len, "; device ", device_.str(), " ", c10::toString(dtype_), "; ", world.size,
           " rank(s), ZeRO-", cfg.zero.stage, ", ", loader_->num_micro_steps(), " micro-step(s) of ",
           cfg.train.micro_batch_size, " per rank per step");
}

Trainer::~Trainer() = default;

int Trainer::train() {
  install_stop_signal_handlers({SIGTERM, SIGUSR1}, {SIGINT});  // kept for the process's life
  start_time_ = last_log_time_ = Clock::now();
  last_log_step_ = step_;
  const int64_t max_steps = cfg_.train.max_steps;
  if (step_ >= max_steps) {
    log_info("nothing to do: the run is already at step ", step_, " of train.max_steps ", max_steps,
             "; raise train.max_steps to continue");
    return 0;
  }
  const int64_t first_step = step_;
  start_host_sync_count();
  while (step_ < max_steps) {
    // The first step allocates, sets up NCCL's channels and fills the first batches: it
    // gets its own, longer deadline.
    std::optional<ScopedCommTimeout> first_deadline;
    if (step_ == first_step) first_deadline.emplace(comm_, cfg_.comm.first_step_deadline());
    StepStats stats = train_step();
    first_deadline.reset();
    ++step_;
    tokens_seen_ += cfg_.train.global_batch_size * cfg_.train.seq_len;
    loader_->advance();
    count_host_syncs(/*in_step=*/true);
    maybe_log(stats);
    if (evaluator_->should_run(step_, max_steps)) evaluator_->run(model_, device_, step_);
    count_host_syncs(/*in_step=*/false);

    // One all-reduce per step: the stop flag and whether a background save is done.
    const bool stop = [&] {
      CommSite site("trainer: end of step");
      return checkpointer_->end_of_step(stop_signal_received() != 0);
    }();
    count_host_syncs(/*in_step=*/true);
    if (stop || checkpointer_->should_save(step_, max_steps)) {
      checkpointer_->save(step_, model_, *optimizer_,
                          TrainerState{step_, loader_->consumed_samples(), tokens_seen_}, dump_train_config(cfg_));
    }
    count_host_syncs(/*in_step=*/false);
    if (stop) {
      checkpointer_->flush();
      log_info("stop requested by a signal: checkpoint for step ", step_, " written to ", cfg_.run.output_dir,
               "; run the same command again to resume (exit code ", kExitStopped, ")");
      return kExitStopped;
    }
  }
  checkpointer_->flush();
  log_info("training done: ", step_, " steps, ", tokens_seen_, " tokens, ",
           format_duration(seconds_between(start_time_, Clock::now())));
  return 0;
}

void Trainer::start_host_sync_count() {
  const char* env = std::getenv("PAJAMA_COUNT_HOST_SYNCS");
  if (env == nullptr || std::string(env) != "1") return;
  PAJAMA_CHECK_AS(ConfigError, device_.is_cuda(), "PAJAMA_COUNT_HOST_SYNCS=1 counts CUDA host synchronisations, but this "
                  "run trains on ", device_.str(), "; unset it or train on a GPU");
  host_syncs_ = std::make_unique<HostSyncCounter>();
  log_info("counting CUDA host synchronisations per step (PAJAMA_COUNT_HOST_SYNCS=1): host_syncs in metrics.jsonl");
}

void Trainer::count_host_syncs(bool in_step) {
  if (!host_syncs_) return;
  const int64_t n = host_syncs_->take();
  if (in_step) step_syncs_ += n;
}

StepStats Trainer::train_step() {
  StepStats s;
  s.lr = learning_rate(cfg_.lr, step_, cfg_.train.max_steps);
  const int64_t num_micro = loader_->num_micro_steps();
  optimizer_->zero_grad();
  s.loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(device_));
  const bool inject_nan = nan_hook_.fires(world_.rank, step_ + 1);
  for (int64_t m = 0; m < num_micro; ++m) {
    const MicroBatch batch = load_micro_batch(*loader_, m, batch_buffer_, device_);
    optimizer_->begin_micro_step(m, num_micro);
    // Each micro loss is scaled by 1/num_micro so the accumulated gradient is the
    // mean over this rank's share of the batch; the optimizer averages over ranks.
    auto loss = model_->loss(batch.inputs, batch.targets) / static_cast<double>(num_micro);
    if (inject_nan) loss = loss * nan_hook_.factor;
    loss.backward();
    s.loss_sum += loss.detach();
  }
  // Whether any rank's loss or gradients are not finite rides on the norm's all-reduce.
  s.grad_norm = optimizer_->prepare_step(torch::isfinite(s.loss_sum).logical_not().to(torch::kFloat32));
  s.skipped = skip_reason(s.grad_norm);
  if (!s.skipped.empty()) {
    optimizer_->skip_step();
    record_skip(s);
    return s;
  }
  consecutive_skips_ = 0;
  if (cfg_.train.spike_factor > 0) {
    recent_norms_.push_back(s.grad_norm);
    if (recent_norms_.size() > kSpikeWindow) recent_norms_.erase(recent_norms_.begin());
  }
  checkpointer_->before_parameter_update();  // a GPU snapshot's copies finish before the update
  optimizer_->apply_step(s.lr, cfg_.train.grad_clip);
  return s;
}

std::string Trainer::skip_reason(double grad_norm) const {
  const int64_t step = step_ + 1;
  const int64_t first = loader_->consumed_samples(), last = first + cfg_.train.global_batch_size;
  if (!std::isfinite(grad_norm)) {
    PAJAMA_CHECK(cfg_.train.nonfinite == "skip", "step ", step, ": the loss or the gradients are not finite on at "
                 "least one rank (data: global samples [", first, ", ", last, ")); train.nonfinite is stop. Resume from "
                 "the last checkpoint, e.g. with a lower optim.lr, or set train.nonfinite: skip");
    return "non-finite loss or gradient norm on at least one rank";
  }
  if (cfg_.train.spike_factor > 0 && recent_norms_.size() >= kSpikeMinHistory) {
    std::vector<double> sorted = recent_norms_;
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() / 2), sorted.end());
    const double median = sorted[sorted.size() / 2];
    if (grad_norm > cfg_.train.spike_factor * median) {
      return str("gradient norm ", grad_norm, " > train.spike_factor ", cfg_.train.spike_factor, " x running median ",
                 median);
    }
  }
  return "";
}

void Trainer::record_skip(const StepStats& stats) {
  const int64_t step = step_ + 1;
  const int64_t first = loader_->consumed_samples(), last = first + cfg_.train.global_batch_size;
  ++consecutive_skips_;
  ++skipped_steps_;
  log_warn("step ", step, " skipped (", stats.skipped, "); its data, global samples [", first, ", ", last,
           "), is not used; ", consecutive_skips_, " skipped in a row, ", skipped_steps_, " in this run");
  if (world_.is_main()) {
    const nlohmann::json j = {{"step", step},
                              {"reason", stats.skipped},
                              {"grad_norm", std::isfinite(stats.grad_norm) ? nlohmann::json(stats.grad_norm) : nullptr},
                              {"consumed_samples", first},
                              {"samples", {first, last}}};
    append_line(fs::path(cfg_.run.output_dir) / "skipped_steps.jsonl", j.dump());
  }
  PAJAMA_CHECK(consecutive_skips_ <= cfg_.train.max_consecutive_skips, consecutive_skips_,
               " steps in a row were skipped (train.max_consecutive_skips ", cfg_.train.max_consecutive_skips,
               "), the last at step ", step, " (data: global samples [", first, ", ", last, ")): ", stats.skipped,
               ". Stopping; resume from the last checkpoint, e.g. with a lower optim.lr");
}

double Trainer::global_mean_loss(const torch::Tensor& local_loss) {
  CommSite site("trainer: mean loss");
  torch::Tensor l = local_loss.to(torch::kFloat64).reshape({1}).contiguous();
  if (device_.is_cuda()) l = l.to(torch::kFloat32);
  comm_.all_reduce(l, ReduceOp::kAvg);
  return l.item<double>();
}

double Trainer::max_over_ranks(double value) {
  CommSite site("trainer: peak memory");
  torch::Tensor t = torch::full({1}, value, torch::TensorOptions().dtype(torch::kFloat32).device(device_));
  comm_.all_reduce(t, ReduceOp::kMax);
  return t.item<double>();
}

void Trainer::maybe_log(const StepStats& stats) {
  const int64_t max_steps = cfg_.train.max_steps;
  if (step_ % cfg_.log.every_steps != 0 && step_ != max_steps) return;
  StepMetrics m;
  m.step = step_;
  m.max_steps = max_steps;
  m.loss = global_mean_loss(stats.loss_sum);
  m.lr = stats.lr;
  m.grad_norm = stats.grad_norm;
  m.skipped_steps = skipped_steps_;
  const auto now = Clock::now();
  const double dt = seconds_between(last_log_time_, now);
  const double steps = static_cast<double>(step_ - last_log_step_);
  m.tokens_per_s = dt > 0 ? steps * static_cast<double>(cfg_.train.global_batch_size * cfg_.train.seq_len) / dt : 0;
  if (peak_flops_ > 0) m.mfu = m.tokens_per_s * flops_per_token_ / (peak_flops_ * world_.size);
  m.elapsed_s = seconds_between(start_time_, now);
  m.tokens_seen = tokens_seen_;
  m.eta_s = steps > 0 ? dt / steps * static_cast<double>(max_steps - step_) : 0;
  m.peak_memory_mb = max_over_ranks(static_cast<double>(read_memory(device_).peak_bytes - rest_memory_bytes_)) / 1e6;
  if (host_syncs_) {
    m.host_syncs = step_syncs_;
    m.host_sync_steps = step_ - last_log_step_;
    step_syncs_ = 0;
  }
  metrics_->log(m);
  last_log_time_ = now;
  last_log_step_ = step_;
}

int run_training(const std::string& config_file, const std::vector<std::string>& overrides) {
  const World world = discover_world();
  set_log_rank(world.rank, world.size);
  TrainConfig cfg;
  try {
    cfg = load_train_config(config_file, overrides);
  } catch (const ConfigError& e) {
    // Every rank reads the same file and fails the same way; say it once.
    if (world.is_main()) log_error(e.what());
    return 2;
  }
  const std::string resolved = dump_train_config(cfg);
  std::unique_ptr<Communicator> comm;
  try {
    const torch::Device device = resolve_device(cfg.train, world);
    comm = make_communicator(world, device, cfg.comm);
    if (world.is_main()) {
      std::filesystem::create_directories(cfg.run.output_dir);
      write_file_atomic(std::filesystem::path(cfg.run.output_dir) / "config.yaml", resolved);
      log_info("resolved config (", config_file, "):\n", resolved);
    }
    {
      CommSite site("start-up");
      comm->barrier();
    }
    Trainer trainer(cfg, world, *comm);
    return trainer.train();
  } catch (const std::exception& e) {
    const int code = dynamic_cast<const ConfigError*>(&e) != nullptr ? 2 : 1;
    log_error(e.what());
    // Peers whose collectives time out at about the same moment get a little time to
    // print their recent collectives before the abort ends them.
    if (dynamic_cast<const CommError*>(&e) != nullptr && world.size > 1) std::this_thread::sleep_for(std::chrono::seconds(2));
    if (comm && world.size > 1) comm->abort(code);
    return code;
  }
}

}  // namespace pajama

