#include "trainer/checkpointer.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <thread>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "model/hf_checkpoint.h"
#include "model/safetensors.h"
#include "model/vocab_resize.h"

namespace pajama {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Flattens a YAML tree into "a.b.c" -> value text, for logging what changed.
void flatten(const YAML::Node& n, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      flatten(it->second, prefix.empty() ? it->first.as<std::string>() : prefix + "." + it->first.as<std::string>(),
              out);
    }
  } else {
    YAML::Emitter e;
    e << YAML::Flow << n;
    out[prefix] = e.c_str();
  }
}

void log_config_changes(const std::string& saved_yaml, const std::string& now_yaml) {
  std::map<std::string, std::string> a, b;
  flatten(YAML::Load(saved_yaml), "", a);
  flatten(YAML::Load(now_yaml), "", b);
  for (const auto& [k, v] : b) {
    auto it = a.find(k);
    if (it == a.end()) {
      log_info("config changed since the checkpoint: ", k, " = ", v, " (new key)");
    } else if (it->second != v) {
      log_info("config changed since the checkpoint: ", k, ": ", it->second, " -> ", v);
    }
  }
}

// Every rank learns the problem of the lowest rank that has one ("" when none has).
std::string agree_on_problem(Communicator& comm, const std::string& local) {
  if (comm.size() == 1) return local;
  const int64_t mine = local.empty() ? 0 : comm.size() - comm.rank();
  const int64_t first = max_over_ranks(comm, {mine})[0];
  if (first == 0) return "";
  return broadcast_string(comm, local, static_cast<int>(comm.size() - first));
}

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

bool overlaps(const ZeroOptimizer::OwnedSlice& mine, const json& saved_slices) {
  for (const auto& s : saved_slices) {
    if (s.at("name").get<std::string>() != mine.name) continue;
    if (std::max(s.at("begin").get<int64_t>(), mine.begin) < std::min(s.at("end").get<int64_t>(), mine.end)) return true;
  }
  return false;
}

// Parameters the checkpoint holds optimizer state for (the ones its run trained).
std::set<std::string> saved_state_names(const Manifest& m) {
  std::set<std::string> names;
  for (const auto& saved_rank : m.ranks) {
    for (const auto& s : saved_rank.at("slices")) names.insert(s.at("name").get<std::string>());
  }
  return names;
}

json parameter_steps_json(const ZeroOptimizer& optimizer) {
  json j = json::object();
  for (const auto& [name, steps] : optimizer.parameter_steps()) j[name] = steps;
  return j;
}

std::string name_list(const std::vector<std::string>& names) {
  const size_t shown = std::min<size_t>(names.size(), 6);
  std::string out = join(std::span(names).first(shown));
  if (names.size() > shown) out += str(", ... (", names.size() - shown, " more)");
  return out;
}

// What a resume with another train.trainable or a grown vocabulary restored (rank 0).
void log_restored_state(const ZeroOptimizer& optimizer, const std::vector<std::string>& fresh,
                        const std::set<std::string>& saved, int64_t saved_vocab, int64_t vocab) {
  std::set<std::string> training;
  for (const auto& [name, steps] : optimizer.parameter_steps()) training.insert(name);
  std::vector<std::string> unused;
  for (const auto& name : saved) {
    if (training.count(name) == 0) unused.push_back(name);
  }
  if (!fresh.empty() || !unused.empty()) {
    log_info("optimizer state restored for ", training.size() - fresh.size(), " parameter tensor(s)");
  }
  if (!fresh.empty()) {
    log_info("optimizer state started fresh (zero moments, step count 0) for ", fresh.size(),
             " parameter tensor(s) the checkpoint did not train: ", name_list(fresh));
  }
  if (!unused.empty()) {
    log_info("optimizer state of ", unused.size(), " parameter tensor(s) in the checkpoint is not used (frozen by "
             "train.trainable): ", name_list(unused));
  }
  if (vocab > saved_vocab) {
    log_info("vocabulary grown on resume from ", saved_vocab, " to ", vocab,
             " tokens: new embedding and head rows start by model.new_vocab_init with fresh optimizer state");
  }
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
    problem = agree_on_problem(comm_, problem);
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

// checkpoint.resume as a list of directories to try in order (the same on every rank).
std::vector<fs::path> Checkpointer::resume_candidates() {
  if (cfg_.resume != "auto") return {fs::path(cfg_.resume)};
  std::string listing;  // rank 0's: one directory name a line, or "!" and why it cannot list
  if (comm_.rank() == 0) {
    std::error_code ec;
    std::vector<int64_t> steps;
    if (fs::exists(checkpoints_dir(), ec)) {
      for (const auto& e : fs::directory_iterator(checkpoints_dir(), ec)) {
        if (auto s = parse_checkpoint_dir_name(e.path().filename().string())) steps.push_back(*s);
      }
    }
    std::sort(steps.rbegin(), steps.rend());
    for (int64_t s : steps) listing += checkpoint_dir_name(s) + "\n";
    if (ec) listing = "!" + ec.message();
  }
  listing = broadcast_string(comm_, listing, 0);
  PAJAMA_CHECK_AS(CheckpointError, !listing.starts_with("!"), "checkpoint.resume auto: cannot list ",
                  checkpoints_dir().string(), ": ", listing.substr(std::min<size_t>(1, listing.size())));
  std::vector<fs::path> out;
  for (size_t pos = 0; pos < listing.size();) {
    const size_t nl = listing.find('\n', pos);
    out.push_back(checkpoints_dir() / listing.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

std::string Checkpointer::verify_together(const fs::path& dir, const Manifest& m, ZeroOptimizer& optimizer) {
  const int n = comm_.size();
  // Which saved optimizer files each rank reads (it owns elements they hold).
  const auto saved_ranks = static_cast<int64_t>(m.ranks.size());
  torch::Tensor reads = torch::zeros({n, std::max<int64_t>(saved_ranks, 1)}, torch::kInt32);
  std::map<std::string, int64_t> file_index;
  for (int64_t s = 0; s < saved_ranks; ++s) {
    file_index[m.ranks[s].at("file").get<std::string>()] = s;
    for (const auto& mine : optimizer.owned_slices()) {
      if (mine.end > mine.begin && overlaps(mine, m.ranks[s].at("slices"))) reads[comm_.rank()][s] = 1;
    }
  }
  if (n > 1) {
    torch::Tensor t = reads.to(comm_.device());
    comm_.all_reduce(t, ReduceOp::kSum);
    reads = t.cpu();
  }
  const auto reads_of = reads.accessor<int32_t, 2>();
  // Every rank assigns the same way: a range goes to the least-loaded rank among those
  // that read its file (all ranks read the model; nobody reads the metadata: rank 0).
  std::vector<int64_t> load(static_cast<size_t>(n), 0);
  std::vector<VerifyTask> mine;
  int64_t total = 0;
  for (const VerifyTask& t : verify_tasks(m)) {
    std::vector<int> readers;
    if (t.file == "model.safetensors") {
      for (int r = 0; r < n; ++r) readers.push_back(r);
    } else if (auto it = file_index.find(t.file); it != file_index.end()) {
      for (int r = 0; r < n; ++r) {
        if (reads_of[r][it->second] != 0) readers.push_back(r);
      }
    }
    if (readers.empty()) readers.push_back(0);
    const int who = *std::min_element(readers.begin(), readers.end(), [&](int a, int b) { return load[a] < load[b]; });
    load[static_cast<size_t>(who)] += t.length;
    total += t.length;
    if (who == comm_.rank()) mine.push_back(t);
  }
  std::string problem;
  int64_t done = 0;
  const int64_t share = load[static_cast<size_t>(comm_.rank())];
  auto last_report = Clock::now();
  const auto start = last_report;
  for (const VerifyTask& t : mine) {
    problem = verify_task(dir, m, t);
    if (!problem.empty()) break;
    done += t.length;
    if (Clock::now() - last_report > std::chrono::seconds(10)) {
      log_info("verifying ", dir.string(), ": ", done / 1000000, " of ", share / 1000000, " MB of this rank's share (",
               total / 1000000, " MB over ", n, " rank(s))");
      last_report = Clock::now();
    }
  }
  if (share > (int64_t{1} << 30)) {
    log_info("verified ", share / 1000000, " MB of ", dir.string(), " in ",
             std::chrono::duration<double>(Clock::now() - start).count(), " s (rank 0's share)");
  }
  ScopedCommTimeout deadline(comm_, io_timeout_s(*std::max_element(load.begin(), load.end())));
  return agree_on_problem(comm_, problem);
}

void Checkpointer::load_weights(Llama& model, const fs::path& dir, int64_t saved_vocab, const std::string& new_vocab_init,
                                uint64_t seed) {
  // Every rank holds the full model (replicated under ZeRO-1/2).
  SafetensorsReader weights(dir / "model.safetensors");
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    torch::Tensor t = weights.tensor(p.key());
    torch::Tensor dst = p.value();
    // The vocabulary's parameters: the saved tokens' rows (never the saved padding, which
    // may be more or fewer rows than this model's) fill the first rows; the rest are new
    // tokens (a grown vocabulary, even one that fits the old padding) and padding.
    const bool vocab = is_vocab_parameter(p.key()) && t.dim() == 2 && t.size(0) >= saved_vocab &&
                       dst.size(0) >= saved_vocab;
    if (vocab) {
      t = t.narrow(0, 0, saved_vocab);
      dst = dst.narrow(0, 0, saved_vocab);
    }
    PAJAMA_CHECK_AS(CheckpointError, t.sizes() == dst.sizes(), "model.safetensors: ", p.key(), " has shape ",
                    t.sizes(), ", the model expects ", dst.sizes());
    dst.copy_(t);
    if (vocab) init_new_vocab_rows(p.value(), saved_vocab, model->config().vocab_size, new_vocab_init, seed);
  }
}

// Copies every saved range that overlaps a range this rank owns, and checks that the
// owned ranges are covered completely: up to the saved vocabulary's rows for a grown
// embedding or head (the new rows start fresh), nothing for a parameter the checkpoint
// did not train (it starts fresh).
std::vector<std::string> Checkpointer::load_optimizer_ranges(ZeroOptimizer& optimizer, const fs::path& dir,
                                                             const Manifest& m, int64_t saved_vocab) {
  const std::set<std::string> saved_names = saved_state_names(m);
  std::vector<std::string> fresh;
  for (const auto& [name, steps] : optimizer.parameter_steps()) {
    if (saved_names.count(name) == 0) fresh.push_back(name);
  }
  std::map<std::string, std::unique_ptr<SafetensorsReader>> readers;
  torch::NoGradGuard no_grad;
  for (const auto& mine : optimizer.owned_slices()) {
    if (mine.end <= mine.begin || saved_names.count(mine.name) == 0) continue;
    int64_t want_end = mine.end;  // elements past the saved ones (grown rows) start fresh
    std::vector<std::pair<int64_t, int64_t>> covered;
    for (const auto& saved_rank : m.ranks) {
      for (const auto& s : saved_rank.at("slices")) {
        if (s.at("name").get<std::string>() != mine.name) continue;
        const auto saved_shape = s.at("shape").get<std::vector<int64_t>>();
        int64_t usable = std::numeric_limits<int64_t>::max();
        if (is_vocab_parameter(mine.name)) {
          // Only the saved tokens' rows (row-major: the first saved_vocab * dim elements);
          // new tokens' and padding rows start fresh, whatever the padding was.
          const bool fits = saved_shape.size() == 2 && mine.shape.size() == 2 && saved_shape[1] == mine.shape[1] &&
                            saved_vocab <= saved_shape[0] && saved_vocab <= mine.shape[0];
          PAJAMA_CHECK_AS(CheckpointError, fits, "optimizer state of ", mine.name, " has shape ",
                          c10::IntArrayRef(saved_shape), " in the checkpoint, the model ", c10::IntArrayRef(mine.shape));
          usable = saved_vocab * mine.shape[1];
          want_end = std::min(want_end, std::max(mine.begin, usable));
        } else {
          PAJAMA_CHECK_AS(CheckpointError, saved_shape == mine.shape, "optimizer state of ", mine.name, " has shape ",
                          c10::IntArrayRef(saved_shape), " in the checkpoint, the model ", c10::IntArrayRef(mine.shape));
        }
        const int64_t b = s.at("begin").get<int64_t>(), e = s.at("end").get<int64_t>();
        const int64_t lo = std::max(b, mine.begin), hi = std::min({e, mine.end, usable});
        if (lo >= hi) continue;
        const std::string file = saved_rank.at("file").get<std::string>();
        auto& reader = readers[file];
        if (!reader) reader = std::make_unique<SafetensorsReader>(dir / file);
        for (const std::string& kind : optimizer.state_kinds()) {
          torch::Tensor src = reader->tensor(mine.name + "/" + kind).narrow(0, lo - b, hi - lo);
          optimizer.state_slice(kind, mine.name).narrow(0, lo - mine.begin, hi - lo).copy_(src);
        }
        covered.emplace_back(lo, hi);
      }
    }
    std::sort(covered.begin(), covered.end());
    int64_t reach = mine.begin;
    for (const auto& [lo, hi] : covered) {
      PAJAMA_CHECK_AS(CheckpointError, lo <= reach, "optimizer state of ", mine.name, " elements [", reach, ", ", lo,
                      ") are missing from the checkpoint");
      reach = std::max(reach, hi);
    }
    PAJAMA_CHECK_AS(CheckpointError, reach >= want_end, "optimizer state of ", mine.name, " elements [", reach, ", ",
                    want_end, ") are missing from the checkpoint");
  }
  return fresh;
}

std::optional<TrainerState> Checkpointer::maybe_resume(Llama& model, ZeroOptimizer& optimizer,
                                                       const std::string& config_yaml, const std::string& new_vocab_init,
                                                       uint64_t seed) {
  CommSite site("checkpoint: resume");
  const LlamaConfig& shape = model->config();
  if (cfg_.resume == "none") return std::nullopt;
  const std::vector<fs::path> candidates = resume_candidates();
  fs::path dir;
  Manifest manifest;
  std::string problems;
  for (const fs::path& candidate : candidates) {
    std::string problem = agree_on_problem(comm_, read_manifest(candidate, manifest));
    if (problem.empty()) problem = verify_together(candidate, manifest, optimizer);
    if (problem.empty()) {
      dir = candidate;
      break;
    }
    PAJAMA_CHECK_AS(CheckpointError, cfg_.resume == "auto", "checkpoint.resume ", cfg_.resume,
                    " cannot be used: ", problem);
    if (comm_.rank() == 0) log_warn("skipping checkpoint ", candidate.string(), ": ", problem);
    problems += str("\n  ", candidate.filename().string(), ": ", problem);
  }
  // Checkpoints exist but none verifies: starting from step 0 would silently throw away
  // the run (and a requeued job would do it again and again), so it is an error.
  PAJAMA_CHECK_AS(CheckpointError, candidates.empty() || !dir.empty(), "checkpoint.resume auto: none of the ",
                  candidates.size(), " checkpoints in ", checkpoints_dir().string(), " is complete and intact:", problems,
                  "\nrestore one (e.g. from a copy), move them out of the run directory to start from step 0, or resume "
                  "another with checkpoint.resume: PATH");
  if (dir.empty()) return std::nullopt;

  try {
    const CheckpointModel saved = read_checkpoint_model(dir, manifest);
    if (comm_.rank() == 0) {
      for (const auto& note : saved.notes) log_warn("checkpoint config (", manifest.format_version, "): ", note);
    }
    const std::string diff =
        shape_differences(saved.shape, shape, "checkpoint", "config", "model.", /*include_vocab=*/false);
    PAJAMA_CHECK_AS(CheckpointError, diff.empty(), dir.string(), " holds a model of another shape:", diff,
                    "\nresume it with the shape it was trained with, or start a new run.output_dir");
    PAJAMA_CHECK_AS(CheckpointError, saved.shape.vocab_size <= shape.vocab_size, dir.string(), " has a vocabulary of ",
                    saved.shape.vocab_size, " tokens, the config's model.vocab_size is ", shape.vocab_size,
                    "; a vocabulary can grow on resume, not shrink");
    if (comm_.rank() == 0) log_config_changes(read_file<CheckpointError>(dir / "config.yaml"), config_yaml);

    load_weights(model, dir, saved.shape.vocab_size, new_vocab_init, seed);
    // Parameters without saved state start from the loaded weights (bf16: a new fp32 master).
    optimizer.master_from_params();
    const std::vector<std::string> fresh = load_optimizer_ranges(optimizer, dir, manifest, saved.shape.vocab_size);
    const json ts = json::parse(read_file<CheckpointError>(dir / "trainer_state.json"));
    const auto optimizer_steps = ts.at("optimizer_steps").get<int64_t>();
    optimizer.set_step_count(optimizer_steps);
    // Per-parameter counts (written since train.trainable exists); older checkpoints
    // trained every saved parameter for optimizer_steps.
    const json per_param = ts.value("parameter_steps", json::object());
    for (const auto& [name, steps] : optimizer.parameter_steps()) {
      (void)steps;
      const bool is_fresh = std::find(fresh.begin(), fresh.end(), name) != fresh.end();
      optimizer.set_parameter_steps(name, is_fresh ? 0 : per_param.value(name, optimizer_steps));
    }
    optimizer.sync_params_from_master();
    if (comm_.rank() == 0) {
      log_restored_state(optimizer, fresh, saved_state_names(manifest), saved.shape.vocab_size, shape.vocab_size);
    }

    TrainerState state;
    state.step = ts.at("step").get<int64_t>();
    state.consumed_samples = ts.at("consumed_samples").get<int64_t>();
    state.tokens_seen = ts.at("tokens_seen").get<int64_t>();
    log_info("resumed from ", dir.string(), " (step ", state.step, ", format ", manifest.format_version,
             ", written by ", manifest.world_size, " rank(s), now ", comm_.size(), ")");
    return state;
  } catch (const json::exception& e) {
    PAJAMA_FAIL_AS(CheckpointError, "loading checkpoint ", dir.string(), ": malformed metadata: ", e.what());
  } catch (...) {
    rethrow_with_context("loading checkpoint ", dir.string());
  }
}

}  // namespace pajama
