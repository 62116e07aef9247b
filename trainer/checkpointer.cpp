// Checkpointer's save half: snapshot at the step boundary, background write of each
// rank's part into step_N.tmp, commit by rank 0 once every part is durable, pruning.
// The resume half is trainer/checkpoint_resume.cpp.
#include "trainer/checkpointer.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "model/hf_checkpoint.h"
#include "model/safetensors.h"

namespace pajama {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Rethrows the exception in flight as a CheckpointError after `context` (a failed
// collective stays a CommError): whichever helper failed while saving, the save failed.
// std::filesystem's errors name their path once, without libstdc++'s "[path]" echo.
[[noreturn]] void rethrow_as_checkpoint_error(const std::string& context) {
  try {
    throw;
  } catch (const CommError&) {
    rethrow_with_context(context);
  } catch (const fs::filesystem_error& e) {
    const std::string paths = e.path1().string() + (e.path2().empty() ? "" : " -> " + e.path2().string());
    throw CheckpointError(str(context, ": ", paths, ": ", e.code().message()));
  } catch (const std::exception& e) {
    throw CheckpointError(str(context, ": ", e.what()));
  }
}

// Writes a small text file atomically and returns its integrity entry.
FileEntry write_small_file(const fs::path& path, const std::string& contents) {
  write_file_atomic<CheckpointError>(path, contents);
  return entry_of_bytes(contents);
}

FileEntry write_tensors(const fs::path& path, const NamedTensors& tensors,
                        const std::map<std::string, std::string>& metadata) {
  ChunkedHasher h;
  save_safetensors(path, tensors, metadata, [&](const void* data, size_t size) { h.update(data, size); });
  return h.finish();
}

json parameter_steps_json(const ZeroOptimizer& optimizer) {
  json j = json::object();
  for (const auto& [name, steps] : optimizer.parameter_steps()) j[name] = steps;
  return j;
}

}  // namespace

int64_t SavePart::bytes() const {
  int64_t n = 0;
  for (const auto& [name, t] : optimizer) n += static_cast<int64_t>(t.nbytes());
  for (const auto& [name, t] : weights) n += static_cast<int64_t>(t.nbytes());
  return n;
}

namespace {

void test_delay(int ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// The background writer runs at the lowest CPU priority: where the cores are all busy
// training (CPU runs, whose MPI ranks also spin while they wait for each other), the
// writer takes the time the training threads leave, instead of slowing one rank and
// with it every other. On GPU hosts the cores are mostly idle and nothing changes.
void yield_to_training() {
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 19);  // best effort
}

// Writes one rank's part into part.tmp_dir. The rank file is written last: its
// presence says the rank's optimizer file is durable.
void write_part(const SavePart& part, HostSnapshot* snapshot, const CheckpointTestHooks& hooks) {
  if (snapshot != nullptr) snapshot->wait_host();
  std::error_code ec;
  fs::create_directories(part.tmp_dir, ec);
  PAJAMA_CHECK_AS(CheckpointError, fs::is_directory(part.tmp_dir), "cannot create ", part.tmp_dir.string(), ": ",
                  ec.message());
  PAJAMA_CHECK_AS(CheckpointError, hooks.fail_rank != part.rank || hooks.fail_step != part.step, "rank ", part.rank,
                  ": injected write failure (PAJAMA_TEST_CHECKPOINT_FAIL)");
  const FileEntry optim_entry = write_tensors(part.tmp_dir / optim_file_name(part.rank), part.optimizer,
                                              {{"format", "pt"}, {"pajama", "optimizer-partition"}});
  test_delay(hooks.delay_ms);
  if (!part.weights.empty()) {
    Manifest m;
    m.files["model.safetensors"] = write_tensors(part.tmp_dir / "model.safetensors", part.weights, {{"format", "pt"}});
    test_delay(hooks.delay_ms);
    m.files["config.json"] = write_small_file(part.tmp_dir / "config.json", part.config_json);
    m.files["config.yaml"] = write_small_file(part.tmp_dir / "config.yaml", part.config_yaml);
    m.files["trainer_state.json"] = write_small_file(part.tmp_dir / "trainer_state.json", part.trainer_state_json);
    write_file_atomic<CheckpointError>(part.tmp_dir / "manifest.partial.json", m.to_json().dump(1));
  }
  const json rank_meta = {
      {"rank", part.rank}, {"slices", part.slices}, {"file", optim_file_name(part.rank)}, {"entry", optim_entry.to_json()}};
  write_file_atomic<CheckpointError>(part.tmp_dir / rank_file_name(part.rank), rank_meta.dump(1));
}

}  // namespace

CheckpointTestHooks CheckpointTestHooks::from_env() {
  CheckpointTestHooks h;
  if (const char* v = std::getenv("PAJAMA_TEST_CHECKPOINT_DELAY_MS")) h.delay_ms = std::atoi(v);
  if (const char* v = std::getenv("PAJAMA_TEST_CHECKPOINT_FAIL")) {
    const std::string spec = v;
    const size_t colon = spec.find(':');
    PAJAMA_CHECK(colon != std::string::npos, "PAJAMA_TEST_CHECKPOINT_FAIL must be RANK:STEP, got '", spec, "'");
    h.fail_rank = std::atoi(spec.substr(0, colon).c_str());
    h.fail_step = std::atoll(spec.substr(colon + 1).c_str());
  }
  return h;
}

Checkpointer::Checkpointer(const CheckpointConfig& cfg, const std::string& run_dir, Communicator& comm,
                           const torch::Device& device)
    : cfg_(cfg), run_dir_(run_dir), comm_(comm), device_(device), hooks_(CheckpointTestHooks::from_env()) {}

Checkpointer::~Checkpointer() {
  if (in_flight_ && in_flight_->write.valid()) in_flight_->write.wait();
}

// Every rank learns the problem of the lowest rank that has one ("" when none has).
std::string Checkpointer::agree_on_problem(const std::string& local) {
  if (comm_.size() == 1) return local;
  const int64_t mine = local.empty() ? 0 : comm_.size() - comm_.rank();
  const int64_t first = max_over_ranks(comm_, {mine})[0];
  if (first == 0) return "";
  return broadcast_string(comm_, local, static_cast<int>(comm_.size() - first));
}

bool Checkpointer::should_save(int64_t step, int64_t max_steps) const {
  if (step == max_steps) return cfg_.save_final;
  return cfg_.every_steps > 0 && step % cfg_.every_steps == 0;
}

double Checkpointer::io_timeout_s(int64_t bytes) const {
  if (cfg_.io_timeout_s > 0) return cfg_.io_timeout_s;
  return comm_.timeout_s() + static_cast<double>(bytes) / 20e6;  // a slow shared filesystem: 20 MB/s
}

// Left over from a save that crashed; only before this process's first save, so that
// no rank is writing into a .tmp directory yet. Best effort: where the directory cannot
// be listed, every rank's write fails on it next and says why.
void Checkpointer::remove_stale_tmp_dirs() {
  if (stale_tmp_removed_) return;
  std::error_code ec;
  if (comm_.rank() == 0 && fs::is_directory(checkpoints_dir(), ec)) {
    for (const auto& e : fs::directory_iterator(checkpoints_dir(), ec)) {
      const std::string name = e.path().filename().string();
      if (name.size() > 4 && name.ends_with(".tmp") && name.starts_with("step_")) fs::remove_all(e.path(), ec);
    }
  }
  comm_.barrier();
  stale_tmp_removed_ = true;
}

SavePart Checkpointer::capture(int64_t step, Llama& model, ZeroOptimizer& optimizer, const TrainerState& state,
                               const std::string& config_yaml) {
  SavePart part;
  part.step = step;
  part.rank = comm_.rank();
  part.tmp_dir = checkpoints_dir() / (checkpoint_dir_name(step) + ".tmp");
  part.slices = json::array();
  std::vector<torch::Tensor> sources;
  for (const auto& s : optimizer.owned_slices()) {
    if (s.end <= s.begin) continue;
    part.slices.push_back({{"name", s.name}, {"shape", s.shape}, {"begin", s.begin}, {"end", s.end}});
    for (const std::string& kind : optimizer.state_kinds()) {
      part.optimizer.emplace_back(s.name + "/" + kind, torch::Tensor());
      sources.push_back(optimizer.state_slice(kind, s.name).detach());
    }
  }
  const size_t optimizer_count = sources.size();
  if (part.rank == 0) {
    for (const auto& p : model->named_parameters()) {
      part.weights.emplace_back(p.key(), torch::Tensor());
      sources.push_back(p.value().detach());
    }
    part.config_json = hf_config_json(model->config(), sources.back().scalar_type());
    part.config_yaml = config_yaml;
    part.trainer_state_json = json{{"step", state.step},
                                   {"consumed_samples", state.consumed_samples},
                                   {"tokens_seen", state.tokens_seen},
                                   {"optimizer_steps", optimizer.step_count()},
                                   {"parameter_steps", parameter_steps_json(optimizer)},
                                   {"world_size", comm_.size()}}
                                  .dump(2);
  }
  std::vector<torch::Tensor> host;
  if (cfg_.async) {
    const bool first = !snapshot_;
    if (first) snapshot_ = make_host_snapshot(device_);
    snapshot_->capture(sources);
    if (first) {
      log_info("async checkpoint snapshot: ", static_cast<double>(snapshot_->bytes()) / 1e6,
               " MB of host memory on this rank (allocated once, reused by every save)");
    }
    host = snapshot_->buffers();
  } else {
    for (const auto& t : sources) host.push_back(t.to(torch::kCPU).contiguous());
  }
  for (size_t i = 0; i < optimizer_count; ++i) part.optimizer[i].second = host[i];
  for (size_t i = optimizer_count; i < host.size(); ++i) part.weights[i - optimizer_count].second = host[i];
  return part;
}

void Checkpointer::save(int64_t step, Llama& model, ZeroOptimizer& optimizer, const TrainerState& state,
                        const std::string& config_yaml) {
  CommSite site("checkpoint: save");
  flush();
  const fs::path final_dir = checkpoints_dir() / checkpoint_dir_name(step);
  try {
    remove_stale_tmp_dirs();
    auto part = std::make_shared<SavePart>(capture(step, model, optimizer, state, config_yaml));
    InFlight job;
    job.step = step;
    job.max_bytes = max_over_ranks(comm_, {part->bytes()})[0];  // before any rank's I/O starts
    HostSnapshot* snapshot = snapshot_.get();
    const CheckpointTestHooks hooks = hooks_;
    if (cfg_.async) {
      job.write = std::async(std::launch::async, [part, snapshot, hooks] {
        yield_to_training();
        write_part(*part, snapshot, hooks);
      });
    } else {
      std::promise<void> done;
      try {
        write_part(*part, nullptr, hooks);
        done.set_value();
      } catch (...) {
        done.set_exception(std::current_exception());
      }
      job.write = done.get_future();
    }
    in_flight_ = std::move(job);
  } catch (...) {
    rethrow_as_checkpoint_error("saving checkpoint " + final_dir.string());
  }
  if (!cfg_.async) flush();
}

bool Checkpointer::end_of_step(bool stop_requested) {
  const bool pending = in_flight_ && in_flight_->write.wait_for(std::chrono::seconds(0)) != std::future_status::ready;
  const std::vector<int64_t> any = max_over_ranks(comm_, {stop_requested ? 1 : 0, pending ? 1 : 0});
  if (in_flight_ && any[1] == 0) finish_in_flight();
  return any[0] != 0;
}

void Checkpointer::flush() {
  CommSite site("checkpoint: flush");
  if (!in_flight_) return;
  if (in_flight_->write.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    log_info("waiting for checkpoint ", checkpoint_dir_name(in_flight_->step), " to be written");
    in_flight_->write.wait();
  }
  finish_in_flight();
  comm_.barrier();  // every rank returns with the checkpoint committed
}

void Checkpointer::before_parameter_update() {
  if (in_flight_ && snapshot_) snapshot_->fence_device();
}

void Checkpointer::finish_in_flight() {
  InFlight job = std::move(*in_flight_);
  in_flight_.reset();
  const fs::path final_dir = checkpoints_dir() / checkpoint_dir_name(job.step);
  std::string problem;
  try {
    job.write.get();
  } catch (const std::exception& e) {
    problem = e.what();
  }
  {
    // The slowest writer may still be writing when the others get here.
    ScopedCommTimeout deadline(comm_, io_timeout_s(job.max_bytes));
    problem = agree_on_problem(problem);
  }
  PAJAMA_CHECK_AS(CheckpointError, problem.empty(), "saving checkpoint ", final_dir.string(), ": ", problem);
  if (comm_.rank() != 0) return;
  try {
    commit(job.step, checkpoints_dir() / (checkpoint_dir_name(job.step) + ".tmp"));
  } catch (...) {
    rethrow_as_checkpoint_error("saving checkpoint " + final_dir.string());
  }
}

void Checkpointer::commit(int64_t step, const fs::path& tmp_dir) {
  const fs::path final_dir = checkpoints_dir() / checkpoint_dir_name(step);
  Manifest m;
  m.format_version = kCheckpointFormatVersion;
  m.step = step;
  m.world_size = comm_.size();
  const json partial = json::parse(read_file<CheckpointError>(tmp_dir / "manifest.partial.json"));
  for (const auto& [name, entry] : partial.at("files").items()) m.files[name] = FileEntry::from_json(entry);
  m.ranks = json::array();
  for (int r = 0; r < comm_.size(); ++r) {
    const std::string text = read_file<CheckpointError>(tmp_dir / rank_file_name(r));
    const json meta = json::parse(text);
    m.files[meta.at("file").get<std::string>()] = FileEntry::from_json(meta.at("entry"));
    m.files[rank_file_name(r)] = entry_of_bytes(text);
    m.ranks.push_back({{"file", meta.at("file")}, {"slices", meta.at("slices")}});
  }
  std::error_code ec;
  fs::remove(tmp_dir / "manifest.partial.json", ec);
  PAJAMA_CHECK_AS(CheckpointError, !ec, "removing ", (tmp_dir / "manifest.partial.json").string(), ": ", ec.message());
  write_file_atomic<CheckpointError>(tmp_dir / "manifest.json", m.to_json().dump(1));
  fsync_directory(tmp_dir);
  test_delay(hooks_.delay_ms);
  fs::remove_all(final_dir, ec);  // an older save of the same step (a resumed run redoing it)
  PAJAMA_CHECK_AS(CheckpointError, !ec, "removing the older ", final_dir.filename().string(), ": ", ec.message());
  fs::rename(tmp_dir, final_dir, ec);
  PAJAMA_CHECK_AS(CheckpointError, !ec, "renaming ", tmp_dir.filename().string(), " into place: ", ec.message());
  fsync_directory(checkpoints_dir());
  test_delay(hooks_.delay_ms);
  write_file_atomic<CheckpointError>(checkpoints_dir() / "latest", checkpoint_dir_name(step) + "\n");
  prune(step);
  log_info("checkpoint saved: ", final_dir.string());
}

void Checkpointer::prune(int64_t newest_step) {
  if (cfg_.keep_last <= 0) return;
  std::vector<int64_t> steps;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(checkpoints_dir(), ec)) {
    if (auto s = parse_checkpoint_dir_name(e.path().filename().string())) steps.push_back(*s);
  }
  PAJAMA_CHECK_AS(CheckpointError, !ec, "listing ", checkpoints_dir().string(), " to prune: ", ec.message());
  std::sort(steps.rbegin(), steps.rend());
  int64_t kept = 0;
  for (int64_t s : steps) {
    if (s > newest_step) continue;  // never touch newer ones (left by another run config)
    if (kept < cfg_.keep_last) {
      ++kept;
      continue;
    }
    if (cfg_.keep_every > 0 && s % cfg_.keep_every == 0) continue;
    fs::remove_all(checkpoints_dir() / checkpoint_dir_name(s), ec);
  }
}

}  // namespace pajama
