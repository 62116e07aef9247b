// Checkpointer's resume half: choose the checkpoint (checkpoint.resume auto, none or
// PATH), verify it on every rank together, check the model's shape, load the weights
// and re-slice the saved optimizer ranges onto this run's partition. The save half is
// trainer/checkpointer.cpp.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <span>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "model/safetensors.h"
#include "model/vocab_resize.h"
#include "trainer/checkpointer.h"

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

// Each trained parameter's step count: 0 for `fresh` ones, else the checkpoint's
// per-parameter count (written since train.trainable exists), else its optimizer_steps
// (older checkpoints trained every saved parameter for all of them).
void restore_step_counts(ZeroOptimizer& optimizer, const json& trainer_state, const std::vector<std::string>& fresh) {
  const auto optimizer_steps = trainer_state.at("optimizer_steps").get<int64_t>();
  optimizer.set_step_count(optimizer_steps);
  const json per_param = trainer_state.value("parameter_steps", json::object());
  for (const auto& [name, steps] : optimizer.parameter_steps()) {
    (void)steps;
    const bool is_fresh = std::find(fresh.begin(), fresh.end(), name) != fresh.end();
    optimizer.set_parameter_steps(name, is_fresh ? 0 : per_param.value(name, optimizer_steps));
  }
}

// Who verifies what: a range goes to the least-loaded rank among those that read its
// file (all ranks read the model; nobody reads the metadata: rank 0). `reads` (ranks x
// saved ranks) says which saved optimizer files each rank reads; every rank plans alike.
struct VerifyPlan {
  std::vector<VerifyTask> mine;  // this rank's tasks
  std::vector<int64_t> load;     // bytes each rank verifies
  int64_t total = 0;
};

VerifyPlan plan_verification(const Manifest& m, const torch::Tensor& reads, int rank) {
  const auto n = static_cast<int>(reads.size(0));
  std::map<std::string, int64_t> file_index;
  for (size_t s = 0; s < m.ranks.size(); ++s) {
    file_index[m.ranks[s].at("file").get<std::string>()] = static_cast<int64_t>(s);
  }
  const auto reads_of = reads.accessor<int32_t, 2>();
  VerifyPlan plan;
  plan.load.assign(static_cast<size_t>(n), 0);
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
    const int who = *std::min_element(readers.begin(), readers.end(),
                                      [&](int a, int b) { return plan.load[a] < plan.load[b]; });
    plan.load[static_cast<size_t>(who)] += t.length;
    plan.total += t.length;
    if (who == rank) plan.mine.push_back(t);
  }
  return plan;
}

}  // namespace

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
  for (int64_t s = 0; s < saved_ranks; ++s) {
    for (const auto& mine : optimizer.owned_slices()) {
      if (mine.end > mine.begin && overlaps(mine, m.ranks[s].at("slices"))) reads[comm_.rank()][s] = 1;
    }
  }
  if (n > 1) {
    torch::Tensor t = reads.to(comm_.device());
    comm_.all_reduce(t, ReduceOp::kSum);
    reads = t.cpu();
  }
  const VerifyPlan plan = plan_verification(m, reads, comm_.rank());
  std::string problem;
  int64_t done = 0;
  const int64_t share = plan.load[static_cast<size_t>(comm_.rank())];
  auto last_report = Clock::now();
  const auto start = last_report;
  for (const VerifyTask& t : plan.mine) {
    problem = verify_task(dir, m, t);
    if (!problem.empty()) break;
    done += t.length;
    if (Clock::now() - last_report > std::chrono::seconds(10)) {
      log_info("verifying ", dir.string(), ": ", done / 1000000, " of ", share / 1000000, " MB of this rank's share (",
               plan.total / 1000000, " MB over ", n, " rank(s))");
      last_report = Clock::now();
    }
  }
  if (share > (int64_t{1} << 30)) {
    log_info("verified ", share / 1000000, " MB of ", dir.string(), " in ",
             std::chrono::duration<double>(Clock::now() - start).count(), " s (rank 0's share)");
  }
  ScopedCommTimeout deadline(comm_, io_timeout_s(*std::max_element(plan.load.begin(), plan.load.end())));
  return agree_on_problem(problem);
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
  if (cfg_.resume == "none") return std::nullopt;
  Manifest manifest;
  const fs::path dir = choose_checkpoint(optimizer, manifest);
  if (dir.empty()) return std::nullopt;
  try {
    return load_checkpoint(dir, manifest, model, optimizer, config_yaml, new_vocab_init, seed);
  } catch (const json::exception& e) {
    PAJAMA_FAIL_AS(CheckpointError, "loading checkpoint ", dir.string(), ": malformed metadata: ", e.what());
  } catch (...) {
    rethrow_with_context("loading checkpoint ", dir.string());
  }
}

fs::path Checkpointer::choose_checkpoint(ZeroOptimizer& optimizer, Manifest& manifest) {
  const std::vector<fs::path> candidates = resume_candidates();
  std::string problems;
  for (const fs::path& candidate : candidates) {
    std::string problem = agree_on_problem(read_manifest(candidate, manifest));
    if (problem.empty()) problem = verify_together(candidate, manifest, optimizer);
    if (problem.empty()) return candidate;
    PAJAMA_CHECK_AS(CheckpointError, cfg_.resume == "auto", "checkpoint.resume ", cfg_.resume,
                    " cannot be used: ", problem);
    if (comm_.rank() == 0) log_warn("skipping checkpoint ", candidate.string(), ": ", problem);
    problems += str("\n  ", candidate.filename().string(), ": ", problem);
  }
  // Checkpoints exist but none verifies: starting from step 0 would silently throw away
  // the run (and a requeued job would do it again and again), so it is an error.
  PAJAMA_CHECK_AS(CheckpointError, candidates.empty(), "checkpoint.resume auto: none of the ", candidates.size(),
                  " checkpoints in ", checkpoints_dir().string(), " is complete and intact:", problems,
                  "\nrestore one (e.g. from a copy), move them out of the run directory to start from step 0, or resume "
                  "another with checkpoint.resume: PATH");
  return {};
}

TrainerState Checkpointer::load_checkpoint(const fs::path& dir, const Manifest& manifest, Llama& model,
                                           ZeroOptimizer& optimizer, const std::string& config_yaml,
                                           const std::string& new_vocab_init, uint64_t seed) {
  const LlamaConfig& shape = model->config();
  const CheckpointModel saved = read_checkpoint_model(dir, manifest);
  if (comm_.rank() == 0) {
    for (const auto& note : saved.notes) log_warn("checkpoint config (", manifest.format_version, "): ", note);
  }
  const std::string diff = shape_differences(saved.shape, shape, "checkpoint", "config", "model.",
                                             /*include_vocab=*/false);
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
  restore_step_counts(optimizer, ts, fresh);
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
}

}  // namespace pajama
