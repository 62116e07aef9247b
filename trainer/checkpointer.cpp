#include "trainer/checkpointer.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "model/safetensors.h"

namespace pajama {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kFormatVersion = 1;

std::string rank_tag(int rank) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%05d", rank);
  return buf;
}
std::string optim_file(int rank) { return "optim_rank" + rank_tag(rank) + ".safetensors"; }
std::string rank_file(int rank) { return "rank" + rank_tag(rank) + ".json"; }

std::optional<int64_t> parse_step_dir(const std::string& name) {
  if (name.rfind("step_", 0) != 0 || name.size() != 13) return std::nullopt;
  int64_t step = 0;
  auto [p, ec] = std::from_chars(name.data() + 5, name.data() + name.size(), step);
  if (ec != std::errc() || p != name.data() + name.size()) return std::nullopt;
  return step;
}

json file_entry(const fs::path& path) {
  return json{{"bytes", static_cast<int64_t>(fs::file_size(path))}, {"sha256", sha256_file_hex(path)}};
}

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

void check_same_shape(const LlamaConfig& saved, const LlamaConfig& now, const fs::path& dir) {
  const std::string diff = shape_differences(saved, now, "checkpoint", "config");
  PAJAMA_CHECK_AS(CheckpointError, diff.empty(), dir.string(), " holds a model of another shape:", diff,
                  "\nresume it with the shape it was trained with, or start a new run.output_dir");
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

}  // namespace

std::string checkpoint_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

std::string verify_checkpoint(const fs::path& dir) {
  const fs::path manifest_path = dir / "manifest.json";
  if (!fs::exists(manifest_path)) return "no manifest.json (the save did not finish)";
  json m;
  try {
    m = json::parse(read_file(manifest_path));
  } catch (const std::exception& e) {
    return str("manifest.json is unreadable: ", e.what());
  }
  try {
    if (m.at("format_version").get<int64_t>() != kFormatVersion) {
      return str("format_version ", m.at("format_version"), " is not supported (expected ", kFormatVersion, ")");
    }
    for (const auto& [name, entry] : m.at("files").items()) {
      const fs::path p = dir / name;
      if (!fs::exists(p)) return str("file ", name, " is missing");
      const auto bytes = static_cast<int64_t>(fs::file_size(p));
      if (bytes != entry.at("bytes").get<int64_t>()) {
        return str("file ", name, " has ", bytes, " bytes, manifest says ", entry.at("bytes"));
      }
      if (sha256_file_hex(p) != entry.at("sha256").get<std::string>()) return str("file ", name, " fails its sha256 check");
    }
  } catch (const json::exception& e) {
    return str("manifest.json is malformed: ", e.what());
  }
  return "";
}

Checkpointer::Checkpointer(const CheckpointConfig& cfg, const std::string& run_dir, Communicator& comm)
    : cfg_(cfg), run_dir_(run_dir), comm_(comm) {}

bool Checkpointer::should_save(int64_t step, int64_t max_steps) const {
  if (step == max_steps) return cfg_.save_final;
  return cfg_.every_steps > 0 && step % cfg_.every_steps == 0;
}

void Checkpointer::save(int64_t step, Llama& model, ZeroOptimizer& optimizer, const TrainerState& state,
                        const std::string& config_yaml) {
  const int rank = comm_.rank();
  const fs::path final_dir = checkpoints_dir() / checkpoint_dir_name(step);
  const fs::path tmp_dir = checkpoints_dir() / (checkpoint_dir_name(step) + ".tmp");
  try {
    if (rank == 0) {
      fs::remove_all(tmp_dir);  // left over from a save that crashed
      fs::create_directories(tmp_dir);
    }
    comm_.barrier();

    // Every rank: its optimizer partition, stored per parameter name.
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    json slices = json::array();
    for (const auto& s : optimizer.owned_slices()) {
      if (s.end <= s.begin) continue;
      slices.push_back({{"name", s.name}, {"shape", s.shape}, {"begin", s.begin}, {"end", s.end}});
      for (const std::string& kind : optimizer.state_kinds()) {
        tensors.emplace_back(s.name + "/" + kind, optimizer.state_slice(kind, s.name).detach().to(torch::kCPU).contiguous());
      }
    }
    const fs::path optim_path = tmp_dir / optim_file(rank);
    save_safetensors(optim_path, tensors, {{"format", "pt"}, {"pajama", "optimizer-partition"}});
    json rank_meta = {{"rank", rank}, {"slices", slices}, {"file", optim_file(rank)}, {"entry", file_entry(optim_path)}};
    write_file_atomic(tmp_dir / rank_file(rank), rank_meta.dump(1));

    if (rank == 0) {
      std::vector<std::pair<std::string, torch::Tensor>> weights;
      for (const auto& p : model->named_parameters()) {
        weights.emplace_back(p.key(), p.value().detach().to(torch::kCPU).contiguous());
      }
      save_safetensors(tmp_dir / "model.safetensors", weights, {{"format", "pt"}});
      write_file_atomic(tmp_dir / "config.yaml", config_yaml);
      const json ts = {{"step", state.step},
                       {"consumed_samples", state.consumed_samples},
                       {"tokens_seen", state.tokens_seen},
                       {"optimizer_steps", optimizer.step_count()},
                       {"world_size", comm_.size()}};
      write_file_atomic(tmp_dir / "trainer_state.json", ts.dump(2));
    }
    comm_.barrier();

    if (rank == 0) {
      json files = json::object();
      json ranks = json::array();
      for (const char* f : {"model.safetensors", "config.yaml", "trainer_state.json"}) {
        files[f] = file_entry(tmp_dir / f);
      }
      for (int r = 0; r < comm_.size(); ++r) {
        const json meta = json::parse(read_file(tmp_dir / rank_file(r)));
        files[meta.at("file").get<std::string>()] = meta.at("entry");
        files[rank_file(r)] = file_entry(tmp_dir / rank_file(r));
        ranks.push_back({{"file", meta.at("file")}, {"slices", meta.at("slices")}});
      }
      const json manifest = {{"format", "pajama-checkpoint"}, {"format_version", kFormatVersion},
                             {"step", step},                  {"world_size", comm_.size()},
                             {"files", files},                {"ranks", ranks}};
      write_file_atomic(tmp_dir / "manifest.json", manifest.dump(1));
      fsync_directory(tmp_dir);
      if (fs::exists(final_dir)) fs::remove_all(final_dir);
      fs::rename(tmp_dir, final_dir);
      fsync_directory(checkpoints_dir());
      write_file_atomic(checkpoints_dir() / "latest", checkpoint_dir_name(step) + "\n");
      prune(step);
      log_info("checkpoint saved: ", final_dir.string());
    }
    comm_.barrier();
  } catch (...) {
    rethrow_with_context("saving checkpoint ", final_dir.string());
  }
}

void Checkpointer::prune(int64_t newest_step) {
  if (cfg_.keep_last <= 0) return;
  std::vector<int64_t> steps;
  for (const auto& e : fs::directory_iterator(checkpoints_dir())) {
    if (auto s = parse_step_dir(e.path().filename().string())) steps.push_back(*s);
  }
  std::sort(steps.rbegin(), steps.rend());
  int64_t kept = 0;
  for (int64_t s : steps) {
    if (s > newest_step) continue;  // never touch newer ones (left by another run config)
    if (kept < cfg_.keep_last) {
      ++kept;
      continue;
    }
    if (cfg_.keep_every > 0 && s % cfg_.keep_every == 0) continue;
    std::error_code ec;
    fs::remove_all(checkpoints_dir() / checkpoint_dir_name(s), ec);
  }
}

std::optional<TrainerState> Checkpointer::maybe_resume(Llama& model, ZeroOptimizer& optimizer,
                                                       const LlamaConfig& shape, const std::string& config_yaml) {
  if (cfg_.resume == "none") return std::nullopt;
  // Rank 0 picks and verifies the checkpoint; everyone loads the same one.
  std::string chosen;
  std::string error;
  if (comm_.rank() == 0) {
    if (cfg_.resume == "auto") {
      std::vector<int64_t> steps;
      if (fs::exists(checkpoints_dir())) {
        for (const auto& e : fs::directory_iterator(checkpoints_dir())) {
          if (auto s = parse_step_dir(e.path().filename().string())) steps.push_back(*s);
        }
      }
      std::sort(steps.rbegin(), steps.rend());
      for (int64_t s : steps) {
        const fs::path dir = checkpoints_dir() / checkpoint_dir_name(s);
        const std::string problem = verify_checkpoint(dir);
        if (problem.empty()) {
          chosen = dir.string();
          break;
        }
        log_warn("skipping checkpoint ", dir.string(), ": ", problem);
      }
      if (chosen.empty() && !steps.empty()) {
        log_warn("no complete checkpoint in ", checkpoints_dir().string(), "; starting from step 0");
      }
    } else {
      const std::string problem = verify_checkpoint(cfg_.resume);
      if (problem.empty()) {
        chosen = cfg_.resume;
      } else {
        error = str("checkpoint.resume ", cfg_.resume, " cannot be used: ", problem);
      }
    }
  }
  error = broadcast_string(comm_, error, 0);
  PAJAMA_CHECK_AS(CheckpointError, error.empty(), error);
  chosen = broadcast_string(comm_, chosen, 0);
  if (chosen.empty()) return std::nullopt;

  const fs::path dir(chosen);
  try {
    const std::string saved_yaml = read_file(dir / "config.yaml");
    check_same_shape(parse_train_config_text(saved_yaml, (dir / "config.yaml").string()).model.llama, shape, dir);
    if (comm_.rank() == 0) log_config_changes(saved_yaml, config_yaml);

    const json manifest = json::parse(read_file(dir / "manifest.json"));
    const json ts = json::parse(read_file(dir / "trainer_state.json"));

    // Weights: every rank holds the full model (replicated under ZeRO-1/2).
    {
      SafetensorsReader weights(dir / "model.safetensors");
      torch::NoGradGuard no_grad;
      for (auto& p : model->named_parameters()) {
        torch::Tensor t = weights.tensor(p.key());
        PAJAMA_CHECK_AS(CheckpointError, t.sizes() == p.value().sizes(), "model.safetensors: ", p.key(), " has shape ",
                        t.sizes(), ", the model expects ", p.value().sizes());
        p.value().copy_(t);
      }
    }

    // Optimizer state: copy every saved range that overlaps a range this rank owns.
    std::map<std::string, std::unique_ptr<SafetensorsReader>> readers;
    for (const auto& mine : optimizer.owned_slices()) {
      if (mine.end <= mine.begin) continue;
      std::vector<std::pair<int64_t, int64_t>> covered;
      for (const auto& saved_rank : manifest.at("ranks")) {
        for (const auto& s : saved_rank.at("slices")) {
          if (s.at("name").get<std::string>() != mine.name) continue;
          PAJAMA_CHECK_AS(CheckpointError, s.at("shape").get<std::vector<int64_t>>() == mine.shape, "optimizer state of ",
                          mine.name, " has another shape in the checkpoint");
          const int64_t b = s.at("begin").get<int64_t>(), e = s.at("end").get<int64_t>();
          const int64_t lo = std::max(b, mine.begin), hi = std::min(e, mine.end);
          if (lo >= hi) continue;
          const std::string file = saved_rank.at("file").get<std::string>();
          auto& reader = readers[file];
          if (!reader) reader = std::make_unique<SafetensorsReader>(dir / file);
          torch::NoGradGuard no_grad;
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
      PAJAMA_CHECK_AS(CheckpointError, reach >= mine.end, "optimizer state of ", mine.name, " elements [", reach, ", ",
                      mine.end, ") are missing from the checkpoint");
    }
    optimizer.set_step_count(ts.at("optimizer_steps").get<int64_t>());
    optimizer.sync_params_from_master();

    TrainerState state;
    state.step = ts.at("step").get<int64_t>();
    state.consumed_samples = ts.at("consumed_samples").get<int64_t>();
    state.tokens_seen = ts.at("tokens_seen").get<int64_t>();
    log_info("resumed from ", dir.string(), " (step ", state.step, ", written by ", manifest.at("world_size"),
             " rank(s), now ", comm_.size(), ")");
    return state;
  } catch (const json::exception& e) {
    PAJAMA_FAIL_AS(CheckpointError, "loading checkpoint ", dir.string(), ": malformed metadata: ", e.what());
  } catch (...) {
    rethrow_with_context("loading checkpoint ", dir.string());
  }
}

}  // namespace pajama
